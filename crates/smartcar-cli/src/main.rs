//! `smartcar`: the command-line tool for the people who run a Smartcar integration.
//!
//! Connect a car, list vehicles, read their data, send commands, manage connections and
//! webhook subscriptions, watch webhook deliveries arrive, find out why a credential is refused
//! (`smartcar doctor`), and run the platform simulator (`smartcar sim`). Built on the
//! `smartcar-sdk` crate only. `smartcar --help` lists the commands; the crate's README lists
//! the settings, the exit codes and the output formats.

mod app;
mod commands;
mod config;
mod doctor;
mod exit;
mod listen;
mod ops;
mod output;
mod state;

use std::process::ExitCode;

use clap::{Args, CommandFactory as _, Parser, Subcommand, ValueEnum};

/// The help's last section: settings, files and exit codes.
const AFTER_HELP: &str = "\
Settings (a flag wins over the environment, the environment over the config file):
  SMARTCAR_CLIENT_ID, SMARTCAR_CLIENT_SECRET      the application's OAuth client
  SMARTCAR_REDIRECT_URI                           Connect's redirect (authorization-code flow)
  SMARTCAR_V3_REDIRECT_URI                        Connect's redirect (machine-to-machine flow)
  SMARTCAR_MANAGEMENT_TOKEN                       application management token (webhooks)
  SMARTCAR_MODE                                   live, simulated or test
  SMARTCAR_ORIGIN                                 every Smartcar host at one origin (a simulator)
  SMARTCAR_API_ORIGIN, SMARTCAR_AUTH_ORIGIN, ...  one host each, as the official SDKs read them
The config file has one table per profile with the same names in lower case without
`SMARTCAR_` (client_id = \"...\"). Tokens are kept in state.sqlite beside it, never printed.

Exit codes: 0 success, 1 other failure, 2 usage, 3 configuration, 4 credentials or
authorization refused, 5 request refused by the platform, 6 rate limit or budget,
7 platform unreachable or failing, 8 `doctor` found a problem.";

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "smartcar",
    version,
    about = "Connect cars, read their data, send commands and check webhooks of a Smartcar integration",
    after_help = AFTER_HELP,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The settings profile: a table of the config file, and its own connected users
    #[arg(
        long,
        global = true,
        env = "SMARTCAR_PROFILE",
        default_value = "default"
    )]
    pub profile: String,
    /// The config file (default: config.toml in the config directory)
    #[arg(long, global = true, env = "SMARTCAR_CONFIG", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Serve every Smartcar host from this origin (a simulator: http://127.0.0.1:8080)
    #[arg(long, global = true, value_name = "URL")]
    pub origin: Option<String>,
    /// JSON output: one object per line (results, stream items and errors)
    #[arg(long, global = true)]
    pub json: bool,
    /// Log what happens to stderr (-v info, -vv debug, -vvv trace); secrets are never logged
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect a user's car through Smartcar Connect and keep the grant
    Connect(ConnectArgs),
    /// List the connected vehicles (v3 connections and this tool's v2.0 users)
    Vehicles(VehiclesArgs),
    /// Read a vehicle: v3 signals (`smartcar read V tractionbattery-stateofcharge`) or v2.0
    /// endpoints (`smartcar read V odometer location`)
    Read(ReadArgs),
    /// Lock a vehicle's doors
    Lock(CommandArgs),
    /// Unlock a vehicle's doors
    Unlock(CommandArgs),
    /// Start or stop charging, set the charge limit, manage charge schedules
    Charge {
        #[command(subcommand)]
        action: ChargeAction,
    },
    /// Send a destination to the vehicle's navigation
    Destination(DestinationArgs),
    /// The application's connections (Management API v3)
    Connections {
        #[command(subcommand)]
        action: ConnectionsAction,
    },
    /// Whether a VIN can be connected with the given permissions
    Compatibility(CompatibilityArgs),
    /// Webhooks: list, subscribe vehicles, and receive deliveries locally
    Webhooks {
        #[command(subcommand)]
        action: WebhooksAction,
    },
    /// Operations over every connected vehicle: `fleet read` (v3, one billed call per vehicle)
    Fleet {
        #[command(subcommand)]
        action: FleetAction,
    },
    /// The durable webhook queue of `smartcar::pipeline`: its counts and dead letters
    Pipeline(PipelineArgs),
    /// Check the configuration against the platform and say what to fix
    Doctor(DoctorArgs),
    /// Run the Smartcar platform simulator (the flags of `smartcar-sim`; `smartcar sim --help`)
    #[command(disable_help_flag = true)]
    Sim {
        /// The simulator's flags
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "FLAGS"
        )]
        args: Vec<String>,
    },
    /// Print a shell completion script (`smartcar completions bash > ~/.local/share/bash-completion/completions/smartcar`)
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
}

/// The Connect mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Real cars
    Live,
    /// Smartcar's simulated vehicles
    Simulated,
    /// Test mode: any credentials, test vehicles
    Test,
}

/// `smartcar connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The Connect mode (default: SMARTCAR_MODE, else live)
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// A permission to ask for (repeatable or comma-separated; default: read_vehicle_info,
    /// read_vin, read_odometer, read_location, read_battery, read_charge, read_fuel,
    /// read_security, control_security, control_charge, control_navigation)
    #[arg(long = "scope", value_delimiter = ',', value_name = "PERMISSION")]
    pub scopes: Vec<String>,
    /// The machine-to-machine flow: Connect returns a user_id served with the application
    /// token (redirect: SMARTCAR_V3_REDIRECT_URI, else SMARTCAR_REDIRECT_URI)
    #[arg(long)]
    pub v3: bool,
    /// The redirect URI (overrides the configured one; it must be registered)
    #[arg(long, value_name = "URI")]
    pub redirect_uri: Option<String>,
    /// Do not try to open a browser; print the Connect URL only
    #[arg(long)]
    pub no_browser: bool,
    /// Seconds to wait for the browser to come back
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
}

/// `smartcar vehicles`.
#[derive(Debug, Args)]
pub struct VehiclesArgs {
    /// Only this user's vehicles
    #[arg(long, value_name = "USER_ID")]
    pub user: Option<String>,
    /// Also read each v2.0 vehicle's make, model and year (one billed call per vehicle; v3
    /// connections carry them for free)
    #[arg(long)]
    pub details: bool,
    /// Only connections of vehicles in this mode (default: every mode, one request each)
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
}

/// Which API a vehicle is used through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ApiArg {
    /// Vehicle API v3 with the application token
    V3,
    /// Vehicle API v2.0 with the user's tokens (legacy)
    V2,
}

/// A vehicle and how to reach it.
#[derive(Debug, Args)]
pub struct VehicleArg {
    /// The vehicle id
    pub vehicle: String,
    /// Force the API (default: v3 when the vehicle has a v3 connection, else v2.0)
    #[arg(long, value_enum)]
    pub api: Option<ApiArg>,
}

/// A vehicle to send a command to.
#[derive(Debug, Args)]
pub struct CommandArgs {
    #[command(flatten)]
    pub target: VehicleArg,
    /// Seconds to wait for a v3 command to finish (0: return once the platform accepted it)
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub wait: u64,
}

/// `smartcar read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    #[command(flatten)]
    pub target: VehicleArg,
    /// v3 signal codes (default: every signal), or v2.0 endpoints (default: a batch of the
    /// common ones): attributes, vin, odometer, location, fuel, battery, battery-capacity,
    /// nominal-capacity, charge, charge-limit, engine-oil, tire-pressure, lock-status,
    /// diagnostic-system-status, diagnostic-trouble-codes
    #[arg(value_name = "SIGNAL|ENDPOINT")]
    pub items: Vec<String>,
}

/// `smartcar charge …`.
#[derive(Debug, Subcommand)]
pub enum ChargeAction {
    /// Start charging
    Start(CommandArgs),
    /// Stop charging
    Stop(CommandArgs),
    /// Set the charge limit, in percent (50–100)
    Limit {
        #[command(flatten)]
        target: CommandArgs,
        /// The limit in percent
        percent: f64,
    },
    /// Charge schedules (v3): list them, set a daily one, or delete one
    Schedule {
        #[command(flatten)]
        target: VehicleArg,
        /// Set a daily schedule charging between two times, `HH:MM-HH:MM` (needs --at)
        #[arg(long, value_name = "START-STOP", conflicts_with = "delete")]
        daily: Option<String>,
        /// Where the schedule applies, `LAT,LNG`
        #[arg(long, value_name = "LAT,LNG", allow_hyphen_values = true)]
        at: Option<String>,
        /// Delete the schedule with this id
        #[arg(long, value_name = "SCHEDULE_ID")]
        delete: Option<String>,
    },
}

/// `smartcar destination`.
#[derive(Debug, Args)]
pub struct DestinationArgs {
    #[command(flatten)]
    pub target: CommandArgs,
    /// Latitude and longitude, `LAT,LNG` (48.8584,2.2945)
    #[arg(value_name = "LAT,LNG", allow_hyphen_values = true)]
    pub position: String,
}

/// `smartcar connections …`.
#[derive(Debug, Subcommand)]
pub enum ConnectionsAction {
    /// List connections
    List {
        /// Only this user's
        #[arg(long, value_name = "USER_ID")]
        user: Option<String>,
        /// Only this vehicle's
        #[arg(long, value_name = "VEHICLE_ID")]
        vehicle: Option<String>,
        /// Only vehicles in this mode (default: every mode, one request each)
        #[arg(long, value_enum)]
        mode: Option<ModeArg>,
    },
    /// Delete a connection (the user's grant for that vehicle ends)
    Delete {
        /// The connection id (`smartcar connections list`)
        connection: String,
    },
}

/// `smartcar compatibility`.
#[derive(Debug, Args)]
pub struct CompatibilityArgs {
    /// The VIN
    pub vin: String,
    /// Permissions to check (repeatable or comma-separated; default read_vehicle_info)
    #[arg(long = "scope", value_delimiter = ',', value_name = "PERMISSION")]
    pub scopes: Vec<String>,
    /// Two-letter country code (default US)
    #[arg(long)]
    pub country: Option<String>,
}

/// `smartcar webhooks …`.
#[derive(Debug, Subcommand)]
pub enum WebhooksAction {
    /// List the application's webhooks
    List,
    /// List subscriptions
    Subscriptions {
        /// Only this webhook's
        #[arg(long, value_name = "WEBHOOK_ID")]
        webhook: Option<String>,
        /// Only this vehicle's
        #[arg(long, value_name = "VEHICLE_ID")]
        vehicle: Option<String>,
    },
    /// Subscribe a vehicle to a webhook
    Subscribe {
        /// The webhook id (`smartcar webhooks list`)
        webhook: String,
        /// The vehicle id
        vehicle: String,
        /// The vehicle's user (default: looked up from the vehicle's connection)
        #[arg(long, value_name = "USER_ID")]
        user: Option<String>,
    },
    /// Remove a subscription
    Unsubscribe {
        /// The subscription id (`smartcar webhooks subscriptions`)
        subscription: String,
    },
    /// Receive deliveries on this machine: verify each signature, answer VERIFY, print each
    /// event, optionally forward the raw body
    Listen(ListenArgs),
    /// Send signed test deliveries to your webhook endpoint and check how it answers: VERIFY,
    /// a signed event, the same event formatted differently (a body re-serialized before the
    /// signature check fails it), a forged one (must be refused)
    Check {
        /// Your endpoint's URL (the webhook's callback URI)
        url: String,
    },
}

/// `smartcar webhooks listen`.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// The port on 127.0.0.1 (0 picks a free one; the URL is printed)
    #[arg(long, default_value_t = 4040)]
    pub port: u16,
    /// The address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Forward each verified delivery's raw body and signature to this URL
    #[arg(long, value_name = "URL")]
    pub forward: Option<String>,
    /// Stop after this many deliveries (default: until Ctrl-C)
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

/// `smartcar fleet …`.
#[derive(Debug, Subcommand)]
pub enum FleetAction {
    /// Read every v3-connected vehicle (all signals in one call each), in parallel, with a
    /// progress bar; one line per vehicle, failures included
    Read {
        /// Signal codes to show (default: how many signals each vehicle returned)
        #[arg(value_name = "SIGNAL")]
        signals: Vec<String>,
        /// Only this user's vehicles
        #[arg(long, value_name = "USER_ID")]
        user: Option<String>,
        /// Vehicles read at once
        #[arg(long, default_value_t = 16, value_name = "N")]
        concurrency: usize,
        /// Only vehicles in this mode (default: every mode)
        #[arg(long, value_enum)]
        mode: Option<ModeArg>,
    },
}

/// `smartcar pipeline`.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// The queue's database: an SQLite file path (or `sqlite:PATH`), or a `postgres://` URL
    #[arg(long, env = "SMARTCAR_PIPELINE_DB", value_name = "DB")]
    pub db: String,
    #[command(subcommand)]
    pub action: PipelineAction,
}

/// `smartcar pipeline …`.
#[derive(Debug, Subcommand)]
pub enum PipelineAction {
    /// Events queued, retrying, in flight, dead
    Stats,
    /// The dead letters, newest first
    DeadLetters {
        /// At most this many
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Also print each body (it may hold personal data: location, VIN)
        #[arg(long)]
        bodies: bool,
    },
    /// Put a dead letter back in the queue (after fixing what made the handler fail)
    Requeue {
        /// The dead letter's id (`smartcar pipeline dead-letters`)
        id: i64,
    },
    /// Delete a dead letter for good
    Delete {
        /// The dead letter's id
        id: i64,
    },
}

/// `smartcar doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Only check the configuration itself; send nothing
    #[arg(long)]
    pub offline: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = &cli.command {
        clap_complete::generate(
            *shell,
            &mut Cli::command(),
            "smartcar",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    output::init_tracing(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.global.json;
    match runtime.block_on(app::run(cli)) {
        Ok(code) => code,
        Err(e) => e.report(json),
    }
}
