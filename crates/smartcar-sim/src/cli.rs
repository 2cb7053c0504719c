//! The simulator's command line, shared by the `smartcar-sim` binary and the `smartcar sim`
//! subcommand of the `smartcar` CLI: `PROGRAM [OPTIONS]` runs the simulator (127.0.0.1 by
//! default) until SIGINT (Ctrl-C) or SIGTERM, as the seeded application or as yours
//! (`--client-id`, `--redirect-uri`, … or their `SMARTCAR_SIM_*` environment variables, or a
//! TOML `--config` file; a flag wins over its variable, a variable over the file).
//!
//! Two functions: [`run`] parses the arguments, prints the help, an error or the banner (and
//! `--print-env`'s variables) and serves until a stop signal; [`usage`] is the help text.
//!
//! ```no_run
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     // `smartcar sim --port 0 …`: the arguments after the subcommand.
//!     smartcar_sim::cli::run("smartcar sim", std::env::args().skip(2)).await
//! }
//! ```

use std::process::ExitCode;

/// The help text; `{program}` stands for the name the command is run as (see [`usage`]).
const USAGE: &str = "\
smartcar-sim: an offline simulator of the Smartcar platform (every host on one port of 127.0.0.1)

Usage: {program} [OPTIONS]

Options:
  --port N       port (default 8080; 0 picks a free port)
  --host ADDR    address to listen on (default 127.0.0.1; 0.0.0.0 in a container)
  --seed N       seed of the fleet and the application's credentials (default 1)
  --vehicles N   number of vehicles (default 6)
  --users N      number of users (default 3)
  --no-log       do not keep the in-memory request log
  --log-max-mib N
                 memory bound of the request log in MiB (default 64)
  --header-timeout S
                 seconds a client may take to send a request's headers, and may leave a
                 kept-alive connection idle (default 10)
  --body-timeout S
                 seconds a client may take to send a request's body after its headers
                 (default 30; past it: 408)
  --command-duration S
                 seconds a v3 command runs (default 0: answered at once; above 0: 202
                 PENDING, then SUCCESS once that much simulated time has passed)
  --platform-limits
                 turn on Smartcar's request limits with the docs' values: an application
                 bucket of 120 requests refilling 2 a minute (429 RATE_LIMIT/SMARTCAR_API),
                 2 requests per vehicle per 120 s (429 RATE_LIMIT/VEHICLE, retry-after), 500
                 calls per vehicle per month (430 BILLING/VEHICLE_REQUEST_LIMIT); the three
                 flags below set one each (default: all off)
  --app-rate-limit CAPACITY/PER_MINUTE
  --vehicle-throttle BURST/SECONDS
  --monthly-allowance N
  --config FILE  read options from a TOML file (keys as the flags without `--`; the
                 application under [application], webhooks as [[webhooks]]; see
                 docs/testing-offline.md). The environment and flags win over it.
  --print-env FORMAT
                 print the environment variables that point Smartcar's SDKs (and their
                 end-to-end suites) at this simulator, as FORMAT: sh, dotenv or json, on
                 stdout, before anything else (the banner then goes to stderr)
  -h, --help     print this help

Your application (default: credentials derived from --seed, printed at start):
  --client-id ID
  --client-secret SECRET
  --redirect-uri URI
                 a redirect URI of the authorization-code flow (repeatable)
  --user-id-redirect-uri URI
                 a redirect URI of the machine-to-machine flow: Connect answers it with a
                 user_id (repeatable)
  --management-token TOKEN
                 the application management token (webhook signatures, management API,
                 and the key of the control API under /_sim)
  --webhook ID=URL
                 a v3 webhook of the application with that id, delivering to URL
                 (repeatable; verify it through the control API before deliveries)

Every option but --help can come from the environment instead, as SMARTCAR_SIM_ and the
flag's name in upper case with `_` for `-` (SMARTCAR_SIM_PORT, SMARTCAR_SIM_CLIENT_ID,
SMARTCAR_SIM_COMMAND_DURATION, SMARTCAR_SIM_NO_LOG=true, SMARTCAR_SIM_CONFIG, ...); the
repeatable ones are plural and space-separated: SMARTCAR_SIM_REDIRECT_URIS,
SMARTCAR_SIM_USER_ID_REDIRECT_URIS, SMARTCAR_SIM_WEBHOOKS. A flag wins over its variable, a
variable over the file.

Connect: mode=live (the default) shows one page; mode=test and mode=simulated walk Smartcar's
pages (preamble, brand list, login, permissions) where any e-mail and password sign in and
open an account holding the brand's test vehicle. Stop with SIGINT (Ctrl-C) or SIGTERM.

Memory: the request log keeps the last 10,000 exchanges, of each at most 1 MiB of the request
body and 1 MiB of the response body (copies), and never more than --log-max-mib in all: the
oldest exchanges are dropped first. Request bodies over 16 MiB are refused (413). With --no-log
nothing is kept.
";

/// Parsed command line.
#[derive(Clone, Debug, PartialEq)]
struct Args {
    port: u16,
    host: std::net::IpAddr,
    app: crate::ApplicationSettings,
    seed: u64,
    vehicles: usize,
    users: usize,
    log: bool,
    log_max_mib: usize,
    header_timeout: u64,
    body_timeout: u64,
    command_duration_ms: u64,
    print_env: Option<EnvFormat>,
    limits: crate::limits::Limits,
}

/// How `--print-env` writes the variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EnvFormat {
    /// `export NAME='value'` lines.
    Sh,
    /// `NAME=value` lines.
    Dotenv,
    /// One JSON object on one line.
    Json,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            port: 8080,
            host: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            app: crate::ApplicationSettings::default(),
            seed: 1,
            vehicles: 6,
            users: 3,
            log: true,
            log_max_mib: 64,
            header_timeout: 10,
            body_timeout: 30,
            command_duration_ms: 0,
            print_env: None,
            limits: crate::limits::Limits::default(),
        }
    }
}

/// What the command line asks for.
#[derive(Debug, PartialEq)]
enum Command {
    Run(Box<Args>),
    Help,
}

fn number<T>(flag: &str, value: Option<String>, min: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
    let n: T = value
        .parse()
        .map_err(|_| format!("{flag} needs a number, found `{value}`"))?;
    if n < min {
        return Err(format!("{flag} must be at least {min}, found {n}"));
    }
    Ok(n)
}

/// A non-empty text value.
fn text(flag: &str, value: Option<String>) -> Result<String, String> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(format!("{flag} needs a value")),
    }
}

/// An IP address.
fn address(flag: &str, value: Option<String>) -> Result<std::net::IpAddr, String> {
    let value = text(flag, value)?;
    value
        .parse()
        .map_err(|_| format!("{flag} needs an IP address such as 127.0.0.1, found `{value}`"))
}

/// `--config FILE`: the options of a TOML file (keys as the flags, without `--`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileOptions {
    port: Option<u16>,
    host: Option<std::net::IpAddr>,
    seed: Option<u64>,
    vehicles: Option<usize>,
    users: Option<usize>,
    log: Option<bool>,
    log_max_mib: Option<usize>,
    header_timeout: Option<u64>,
    body_timeout: Option<u64>,
    command_duration: Option<f64>,
    platform_limits: Option<bool>,
    app_rate_limit: Option<String>,
    vehicle_throttle: Option<String>,
    monthly_allowance: Option<u32>,
    application: Option<FileApplication>,
    #[serde(default)]
    webhooks: Vec<FileWebhook>,
}

/// `[application]` of a config file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileApplication {
    client_id: Option<String>,
    client_secret: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    user_id_redirect_uris: Vec<String>,
    management_token: Option<String>,
}

/// `[[webhooks]]` of a config file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileWebhook {
    id: Option<String>,
    url: String,
    version: Option<String>,
    name: Option<String>,
    #[serde(default)]
    signals: Vec<String>,
}

/// Seconds as a whole number of milliseconds (at most a day).
fn seconds_ms(what: &str, secs: f64) -> Result<u64, String> {
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("{what} must be 0 to 86400 seconds, found {secs}"));
    }
    Ok((secs * 1000.0).round() as u64)
}

/// A switch's variable: `true`/`1` or `false`/`0`.
fn flag_on(name: &str, value: &str) -> Result<bool, String> {
    match value.trim() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        other => Err(format!("{name} needs true or false, found `{other}`")),
    }
}

/// `--app-rate-limit CAPACITY/PER_MINUTE`.
fn app_rate_limit(what: &str, value: &str) -> Result<crate::limits::AppBucket, String> {
    crate::limits::parse_app_bucket(value).map_err(|e| format!("{what}: {e}"))
}

/// `--vehicle-throttle BURST/SECONDS`.
fn vehicle_throttle(what: &str, value: &str) -> Result<crate::limits::VehicleThrottle, String> {
    crate::limits::parse_vehicle_throttle(value).map_err(|e| format!("{what}: {e}"))
}

/// The format `--print-env` names.
fn env_format(what: &str, value: &str) -> Result<EnvFormat, String> {
    match value.trim() {
        "sh" => Ok(EnvFormat::Sh),
        "dotenv" => Ok(EnvFormat::Dotenv),
        "json" => Ok(EnvFormat::Json),
        other => Err(format!("{what} needs sh, dotenv or json, found `{other}`")),
    }
}

/// At least `min`.
fn at_least<T: PartialOrd + std::fmt::Display>(what: &str, n: T, min: T) -> Result<T, String> {
    if n < min {
        return Err(format!("{what} must be at least {min}, found {n}"));
    }
    Ok(n)
}

/// `ID=URL` of `--webhook` (a v3 webhook).
fn webhook(flag: &str, value: &str) -> Result<crate::WebhookSettings, String> {
    match value.split_once('=') {
        Some((id, url)) if !id.trim().is_empty() && !url.trim().is_empty() => {
            Ok(crate::WebhookSettings::new(id.trim(), url.trim()))
        }
        _ => Err(format!(
            "{flag} needs ID=URL (the webhook's id, then where deliveries go), found `{value}`"
        )),
    }
}

/// Applies a config file's options over `parsed`.
fn apply_file(parsed: &mut Args, path: &str, text: &str) -> Result<(), String> {
    let file: FileOptions =
        toml::from_str(text).map_err(|e| format!("{path} is not a valid config file: {e}"))?;
    let what = |key: &str| format!("`{key}` in {path}");
    macro_rules! take {
        ($($key:ident),*) => {$(if let Some(v) = file.$key { parsed.$key = v; })*};
    }
    take!(
        port,
        host,
        seed,
        log,
        log_max_mib,
        header_timeout,
        body_timeout
    );
    if let Some(n) = file.vehicles {
        parsed.vehicles = at_least(&what("vehicles"), n, 1)?;
    }
    if let Some(n) = file.users {
        parsed.users = at_least(&what("users"), n, 1)?;
    }
    parsed.log_max_mib = at_least(&what("log-max-mib"), parsed.log_max_mib, 1)?;
    parsed.header_timeout = at_least(&what("header-timeout"), parsed.header_timeout, 1)?;
    parsed.body_timeout = at_least(&what("body-timeout"), parsed.body_timeout, 1)?;
    if let Some(secs) = file.command_duration {
        parsed.command_duration_ms = seconds_ms(&what("command-duration"), secs)?;
    }
    if file.platform_limits == Some(true) {
        parsed.limits = crate::limits::Limits::platform();
    }
    if let Some(text) = &file.app_rate_limit {
        parsed.limits.app = Some(
            crate::limits::parse_app_bucket(text)
                .map_err(|e| format!("{}: {e}", what("app-rate-limit")))?,
        );
    }
    if let Some(text) = &file.vehicle_throttle {
        parsed.limits.vehicle = Some(
            crate::limits::parse_vehicle_throttle(text)
                .map_err(|e| format!("{}: {e}", what("vehicle-throttle")))?,
        );
    }
    if let Some(n) = file.monthly_allowance {
        parsed.limits.monthly_allowance = Some(n);
    }
    if let Some(app) = file.application {
        parsed.app.client_id = app.client_id;
        parsed.app.client_secret = app.client_secret;
        parsed.app.management_token = app.management_token;
        parsed.app.redirect_uris = app.redirect_uris;
        parsed.app.user_id_redirect_uris = app.user_id_redirect_uris;
    }
    for hook in file.webhooks {
        let version = match hook.version.as_deref().unwrap_or("v3") {
            "v3" | "3" | "3.0" => crate::model::WebhookVersion::V3,
            "v2" | "2" | "2.0" => crate::model::WebhookVersion::V2,
            other => {
                return Err(format!(
                    "{}: version is v3 or v2, found `{other}`",
                    what("webhooks")
                ));
            }
        };
        parsed.app.webhooks.push(crate::WebhookSettings {
            id: hook.id,
            callback_url: hook.url,
            version,
            name: hook.name,
            signals: hook.signals,
        });
    }
    Ok(())
}

/// The environment's options (`SMARTCAR_SIM_*`, read through `env`) over `parsed`.
fn apply_env(parsed: &mut Args, env: &dyn Fn(&str) -> Option<String>) -> Result<(), String> {
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if let Some(v) = var("SMARTCAR_SIM_PORT") {
        parsed.port = number("SMARTCAR_SIM_PORT", Some(v), 0)?;
    }
    if let Some(v) = var("SMARTCAR_SIM_SEED") {
        parsed.seed = number("SMARTCAR_SIM_SEED", Some(v), 0)?;
    }
    if let Some(v) = var("SMARTCAR_SIM_HOST") {
        parsed.host = address("SMARTCAR_SIM_HOST", Some(v))?;
    }
    if let Some(v) = var("SMARTCAR_SIM_VEHICLES") {
        parsed.vehicles = number("SMARTCAR_SIM_VEHICLES", Some(v), 1)?;
    }
    if let Some(v) = var("SMARTCAR_SIM_USERS") {
        parsed.users = number("SMARTCAR_SIM_USERS", Some(v), 1)?;
    }
    if let Some(v) = var("SMARTCAR_SIM_NO_LOG") {
        parsed.log = !flag_on("SMARTCAR_SIM_NO_LOG", &v)?;
    }
    if let Some(v) = var("SMARTCAR_SIM_LOG_MAX_MIB") {
        parsed.log_max_mib = number("SMARTCAR_SIM_LOG_MAX_MIB", Some(v), 1)?;
    }
    if let Some(v) = var("SMARTCAR_SIM_HEADER_TIMEOUT") {
        parsed.header_timeout = number("SMARTCAR_SIM_HEADER_TIMEOUT", Some(v), 1)?;
    }
    if let Some(v) = var("SMARTCAR_SIM_BODY_TIMEOUT") {
        parsed.body_timeout = number("SMARTCAR_SIM_BODY_TIMEOUT", Some(v), 1)?;
    }
    if let Some(v) = var("SMARTCAR_SIM_COMMAND_DURATION") {
        let secs: f64 = number("SMARTCAR_SIM_COMMAND_DURATION", Some(v), 0.0)?;
        parsed.command_duration_ms = seconds_ms("SMARTCAR_SIM_COMMAND_DURATION", secs)?;
    }
    if let Some(v) = var("SMARTCAR_SIM_PLATFORM_LIMITS")
        && flag_on("SMARTCAR_SIM_PLATFORM_LIMITS", &v)?
    {
        parsed.limits = crate::limits::Limits::platform();
    }
    if let Some(v) = var("SMARTCAR_SIM_APP_RATE_LIMIT") {
        parsed.limits.app = Some(app_rate_limit("SMARTCAR_SIM_APP_RATE_LIMIT", &v)?);
    }
    if let Some(v) = var("SMARTCAR_SIM_VEHICLE_THROTTLE") {
        parsed.limits.vehicle = Some(vehicle_throttle("SMARTCAR_SIM_VEHICLE_THROTTLE", &v)?);
    }
    if let Some(v) = var("SMARTCAR_SIM_MONTHLY_ALLOWANCE") {
        parsed.limits.monthly_allowance =
            Some(number("SMARTCAR_SIM_MONTHLY_ALLOWANCE", Some(v), 1)?);
    }
    if let Some(v) = var("SMARTCAR_SIM_PRINT_ENV") {
        parsed.print_env = Some(env_format("SMARTCAR_SIM_PRINT_ENV", &v)?);
    }
    let text = |name: &str, to: &mut Option<String>| {
        if let Some(v) = var(name) {
            *to = Some(v);
        }
    };
    text("SMARTCAR_SIM_CLIENT_ID", &mut parsed.app.client_id);
    text("SMARTCAR_SIM_CLIENT_SECRET", &mut parsed.app.client_secret);
    text(
        "SMARTCAR_SIM_MANAGEMENT_TOKEN",
        &mut parsed.app.management_token,
    );
    let list = |name: &str| -> Option<Vec<String>> {
        var(name).map(|v| v.split_whitespace().map(str::to_owned).collect())
    };
    if let Some(uris) = list("SMARTCAR_SIM_REDIRECT_URIS") {
        parsed.app.redirect_uris = uris;
    }
    if let Some(uris) = list("SMARTCAR_SIM_USER_ID_REDIRECT_URIS") {
        parsed.app.user_id_redirect_uris = uris;
    }
    if let Some(hooks) = list("SMARTCAR_SIM_WEBHOOKS") {
        parsed.app.webhooks = hooks
            .iter()
            .map(|h| webhook("SMARTCAR_SIM_WEBHOOKS", h))
            .collect::<Result<_, _>>()?;
    }
    Ok(())
}

/// Parses the arguments after the program name (`--flag value` or `--flag=value`), over the
/// process environment, over the config file.
fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    parse_with(args, &|name| std::env::var(name).ok(), &|path| {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
    })
}

/// Splits `--flag=value` into the flag and its inline value.
fn split_flag(arg: &str) -> (String, Option<String>) {
    match arg.split_once('=') {
        Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
        _ => (arg.to_owned(), None),
    }
}

/// [`parse`] with the environment read through `env` and files through `read`.
fn parse_with(
    args: impl IntoIterator<Item = String>,
    env: &dyn Fn(&str) -> Option<String>,
    read: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Command, String> {
    let args: Vec<String> = args.into_iter().collect();
    let mut parsed = Args::default();
    // The file first (named by the flag or the environment), then the environment, then flags.
    let mut config = env("SMARTCAR_SIM_CONFIG").filter(|v| !v.trim().is_empty());
    let mut i = 0;
    while i < args.len() {
        let (flag, inline) = split_flag(&args[i]);
        if flag == "--config" {
            config = Some(text(
                "--config",
                inline.or_else(|| args.get(i + 1).cloned()),
            )?);
        }
        i += 1;
    }
    if let Some(path) = &config {
        let contents = read(path)?;
        apply_file(&mut parsed, path, &contents)?;
    }
    apply_env(&mut parsed, env)?;
    // Repeatable flags replace the earlier list at their first use.
    let (mut code_uris, mut user_id_uris, mut hooks) =
        (None::<Vec<String>>, None::<Vec<String>>, None::<Vec<_>>);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = split_flag(&arg);
        let mut value = || inline.clone().or_else(|| args.next());
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--config" => {
                value();
            }
            "--port" => parsed.port = number("--port", value(), 0)?,
            "--seed" => parsed.seed = number("--seed", value(), 0)?,
            "--vehicles" => parsed.vehicles = number("--vehicles", value(), 1)?,
            "--users" => parsed.users = number("--users", value(), 1)?,
            "--no-log" if inline.is_none() => parsed.log = false,
            "--log-max-mib" => parsed.log_max_mib = number("--log-max-mib", value(), 1)?,
            "--header-timeout" => {
                parsed.header_timeout = number("--header-timeout", value(), 1)?;
            }
            "--body-timeout" => parsed.body_timeout = number("--body-timeout", value(), 1)?,
            "--command-duration" => {
                let secs: f64 = number("--command-duration", value(), 0.0)?;
                parsed.command_duration_ms = seconds_ms("--command-duration", secs)?;
            }
            "--platform-limits" if inline.is_none() => {
                parsed.limits = crate::limits::Limits::platform();
            }
            "--app-rate-limit" => {
                parsed.limits.app = Some(app_rate_limit(
                    "--app-rate-limit",
                    &text("--app-rate-limit", value())?,
                )?);
            }
            "--vehicle-throttle" => {
                parsed.limits.vehicle = Some(vehicle_throttle(
                    "--vehicle-throttle",
                    &text("--vehicle-throttle", value())?,
                )?);
            }
            "--monthly-allowance" => {
                parsed.limits.monthly_allowance = Some(number("--monthly-allowance", value(), 1)?);
            }
            "--print-env" => {
                parsed.print_env = Some(env_format("--print-env", &text("--print-env", value())?)?);
            }
            "--host" => parsed.host = address("--host", value())?,
            "--client-id" => parsed.app.client_id = Some(text("--client-id", value())?),
            "--client-secret" => {
                parsed.app.client_secret = Some(text("--client-secret", value())?);
            }
            "--management-token" => {
                parsed.app.management_token = Some(text("--management-token", value())?);
            }
            "--redirect-uri" => code_uris
                .get_or_insert_with(Vec::new)
                .push(text("--redirect-uri", value())?),
            "--user-id-redirect-uri" => user_id_uris
                .get_or_insert_with(Vec::new)
                .push(text("--user-id-redirect-uri", value())?),
            "--webhook" => hooks
                .get_or_insert_with(Vec::new)
                .push(webhook("--webhook", &text("--webhook", value())?)?),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if let Some(uris) = code_uris {
        parsed.app.redirect_uris = uris;
    }
    if let Some(uris) = user_id_uris {
        parsed.app.user_id_redirect_uris = uris;
    }
    if let Some(hooks) = hooks {
        parsed.app.webhooks = hooks;
    }
    Ok(Command::Run(Box::new(parsed)))
}

/// The help text (`-h`, `--help`, and after an error), with `program` as the command's name in
/// its `Usage:` line: `"smartcar-sim"` for the simulator's binary, `"smartcar sim"` for the
/// `smartcar` CLI's subcommand.
///
/// ```
/// let help = smartcar_sim::cli::usage("smartcar sim");
/// assert!(help.contains("\nUsage: smartcar sim [OPTIONS]\n"));
/// assert!(help.contains("--print-env FORMAT"));
/// ```
pub fn usage(program: &str) -> String {
    USAGE.replacen("{program}", program, 1)
}

/// Runs the simulator's command line: parses `args` (the arguments after the program's name;
/// `--flag value` or `--flag=value`) over the `SMARTCAR_SIM_*` environment variables and the
/// `--config` file, then serves until SIGINT (Ctrl-C) or SIGTERM and shuts down.
///
/// `program` is the command's name in the help and error text (see [`usage`]). What it
/// prints and returns:
///
/// - `-h`/`--help`: the help on stdout, [`ExitCode::SUCCESS`];
/// - an invalid argument, variable, file or setting: `error: …` and the help on stderr, exit
///   code 2;
/// - an address it cannot listen on: `error: cannot listen on …` on stderr,
///   [`ExitCode::FAILURE`];
/// - otherwise the banner (address, application, fleet, Connect URLs, the SDKs' environment)
///   on stdout — on stderr with `--print-env`, whose variables then come first on stdout —,
///   and, once stopped, [`ExitCode::SUCCESS`].
///
/// Call it inside a Tokio runtime with I/O and time enabled (`#[tokio::main]`); it installs
/// the process's SIGINT and SIGTERM handlers.
///
/// ```no_run
/// #[tokio::main]
/// async fn main() -> std::process::ExitCode {
///     smartcar_sim::cli::run("smartcar-sim", ["--port", "0", "--seed", "7"]).await
/// }
/// ```
pub async fn run<I, S>(program: &str, args: I) -> ExitCode
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let help = usage(program);
    let args = match parse(args.into_iter().map(Into::into)) {
        Ok(Command::Run(args)) => *args,
        Ok(Command::Help) => {
            print!("{help}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{help}");
            return ExitCode::from(2);
        }
    };
    let sim = match crate::Simulator::builder()
        .port(args.port)
        .host(args.host)
        .application(args.app.clone())
        .seed(args.seed)
        .vehicles(args.vehicles)
        .users(args.users)
        .log_requests(args.log)
        .log_max_bytes(args.log_max_mib.saturating_mul(1024 * 1024))
        .header_read_timeout(std::time::Duration::from_secs(args.header_timeout))
        .body_timeout(std::time::Duration::from_secs(args.body_timeout))
        .limits(args.limits.clone())
        .config(crate::Config {
            command_duration: std::time::Duration::from_millis(args.command_duration_ms),
            ..crate::Config::default()
        })
        .start()
        .await
    {
        Ok(sim) => sim,
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            eprintln!("error: {e}\n\n{help}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: cannot listen on {}:{}: {e}", args.host, args.port);
            return ExitCode::FAILURE;
        }
    };
    match args.print_env {
        Some(format) => {
            // The variables alone on stdout (a harness reads them); the banner to stderr.
            println!("{}", env_text(&sim, format));
            eprintln!("{}", banner(&sim, &args.app));
        }
        None => println!("{}", banner(&sim, &args.app)),
    }
    match stop_signal().await {
        // stderr: a harness may have closed the stdout it read --print-env from.
        Ok(name) => eprintln!("\n{name}: shutting down"),
        Err(e) => eprintln!("error: cannot wait for a stop signal ({e}); shutting down"),
    }
    sim.shutdown().await;
    ExitCode::SUCCESS
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM (`docker stop`, `kill`, a test harness stopping its
/// child), whichever comes first, and names it.
async fn stop_signal() -> std::io::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map(|()| "SIGINT"),
            _ = term.recv() => Ok("SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.map(|()| "Ctrl-C")
    }
}

/// What the simulator prints at start: where it listens, the application, the fleet, a Connect
/// URL and the SDKs' environment.
/// Secrets the simulator made up (from `--seed`) are shown, so that a client can be pointed at
/// it; secrets it was given (flags, variables, file: perhaps a real application's) are not
/// echoed.
fn banner(sim: &crate::Simulator, given: &crate::ApplicationSettings) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let base = sim.base_url();
    let app = sim.app();
    let origins = sim.origins();
    let _ = writeln!(
        out,
        "smartcar-sim listening on {base} (every Smartcar host is served here)\n"
    );
    let _ = writeln!(out, "Application");
    let _ = writeln!(out, "  client id       {}", app.client_id);
    let shown = |given: &Option<String>, value: &str| match given {
        Some(_) => "(as given; not shown)".to_owned(),
        None => value.to_owned(),
    };
    let _ = writeln!(
        out,
        "  client secret   {}",
        shown(&given.client_secret, &app.client_secret)
    );
    let _ = writeln!(
        out,
        "  management token {}",
        shown(&given.management_token, &app.amt)
    );
    for uri in &app.redirect_uris {
        let flow = if app.user_id_redirect_uris.contains(uri) {
            "v3 flow: user_id"
        } else {
            "code flow"
        };
        let _ = writeln!(out, "  redirect URI    {uri}  ({flow})");
    }
    let _ = writeln!(out, "\nUsers and vehicles");
    let vehicles = sim.vehicles();
    for user in sim.users() {
        let _ = writeln!(out, "  {}  (user id {})", user.email, user.id);
        for id in &user.vehicle_ids {
            if let Some(v) = vehicles.iter().find(|v| &v.id == id) {
                let _ = writeln!(
                    out,
                    "    {} {} {} {}  VIN {}  id {}",
                    v.year,
                    v.make,
                    v.model,
                    v.powertrain.as_str(),
                    v.vin,
                    v.id
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "\nConnect (open in a browser; add &sim_auto_approve=true to skip the page)"
    );
    let _ = writeln!(out, "  {}", connect_url(sim, ("state", "demo")));
    let _ = writeln!(
        out,
        "\nEnvironment for Smartcar's official SDKs (Python, Node, Java, Ruby):"
    );
    for (name, value) in origins.sdk_env().into_iter().chain(app.env()) {
        if name == "SMARTCAR_CLIENT_SECRET" && given.client_secret.is_some() {
            let _ = writeln!(out, "  # {name}: the secret you gave the simulator");
        } else {
            let _ = writeln!(out, "  export {name}={value}");
        }
    }
    let _ = writeln!(
        out,
        "  # SMARTCAR_AUTH_ORIGIN is the full token URL (Python, Rust crate); SDKs that append\n  # /oauth/token to it (Node, Java, Ruby) reach {base}/oauth/token/oauth/token, also served."
    );
    let _ = writeln!(
        out,
        "\nConnect in test mode (any e-mail and password; each e-mail is an account with the\n\
         brand's test vehicle):\n  {}",
        connect_url(sim, ("mode", "test"))
    );
    let webhooks: Vec<(String, String)> = sim
        .state()
        .world()
        .webhooks
        .values()
        .map(|w| (w.id.clone(), w.callback_url.clone()))
        .collect();
    if !webhooks.is_empty() {
        let _ = writeln!(
            out,
            "\nWebhooks (unverified until POST {base}/_sim/webhooks/ID/verify)"
        );
        for (id, url) in webhooks {
            let _ = writeln!(out, "  {id}  -> {url}");
        }
    }
    let _ = writeln!(
        out,
        "\nControl API: {base}/_sim (Authorization: Bearer <management token>): clock, faults,\n\
         vehicles, webhooks, request log, counters, Connect approval. See docs/testing-offline.md."
    );
    let _ = writeln!(out, "\nStop with Ctrl-C or SIGTERM.");
    out
}

/// A Connect URL of the application's first redirect URI for `read_vehicle_info
/// read_odometer`, with one more parameter (`state`, `mode`).
fn connect_url(sim: &crate::Simulator, (key, value): (&str, &str)) -> String {
    let app = sim.app();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &app.client_id)
        .append_pair(
            "redirect_uri",
            app.redirect_uris.first().map(String::as_str).unwrap_or(""),
        )
        .append_pair("scope", "read_vehicle_info read_odometer")
        .append_pair(key, value)
        .finish();
    format!(
        "{}{}?{query}",
        sim.origins().connect,
        smartcar_api::ops::AUTHORIZE.path
    )
}

/// The variables `--print-env` prints: the SDKs' origins and credentials
/// ([`crate::Origins::sdk_env`], [`crate::AppCredentials::env`]), the
/// `E2E_SMARTCAR_*` variables Smartcar's SDKs' end-to-end suites read, and the simulator's own
/// (`SMARTCAR_SIM_BASE_URL`, `SMARTCAR_SIM_CONTROL_URL`).
fn env_vars(sim: &crate::Simulator) -> Vec<(&'static str, String)> {
    let app = sim.app();
    let base = sim.base_url();
    let mut vars = sim.origins().sdk_env();
    vars.extend(app.env());
    vars.push(("E2E_SMARTCAR_CLIENT_ID", app.client_id.clone()));
    vars.push(("E2E_SMARTCAR_CLIENT_SECRET", app.client_secret.clone()));
    vars.push((
        "E2E_SMARTCAR_REDIRECT_URI",
        app.redirect_uris.first().cloned().unwrap_or_default(),
    ));
    vars.push(("E2E_SMARTCAR_AMT", app.amt.clone()));
    // The `smartcar` command-line tool's: the management token and the redirect URI of the
    // machine-to-machine flow.
    vars.push(("SMARTCAR_MANAGEMENT_TOKEN", app.amt.clone()));
    if let Some(uri) = app.user_id_redirect_uris.first() {
        vars.push(("SMARTCAR_V3_REDIRECT_URI", uri.clone()));
    }
    if let Some(id) = sim.state().world().webhooks.keys().next() {
        vars.push(("E2E_SMARTCAR_WEBHOOK_ID", id.clone()));
    }
    vars.push(("SMARTCAR_SIM_CONTROL_URL", format!("{base}/_sim")));
    vars.push(("SMARTCAR_SIM_BASE_URL", base));
    vars
}

/// [`env_vars`] in `format`.
fn env_text(sim: &crate::Simulator, format: EnvFormat) -> String {
    let vars = env_vars(sim);
    match format {
        EnvFormat::Json => {
            let map: serde_json::Map<String, serde_json::Value> = vars
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.into()))
                .collect();
            serde_json::Value::Object(map).to_string()
        }
        EnvFormat::Sh => vars
            .iter()
            .map(|(k, v)| format!("export {k}='{}'", v.replace('\'', "'\\''")))
            .collect::<Vec<_>>()
            .join("\n"),
        EnvFormat::Dotenv => vars
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Command, String> {
        parse_with(args.iter().map(|s| (*s).to_owned()), &|_| None, &|p| {
            Err(format!("no file {p}"))
        })
    }

    #[test]
    fn defaults_and_every_flag() {
        assert_eq!(run(&[]), Ok(Command::Run(Box::default())));
        assert_eq!(
            run(&[
                "--port",
                "0",
                "--seed=9",
                "--vehicles",
                "12",
                "--users=2",
                "--no-log",
                "--log-max-mib",
                "8",
                "--header-timeout=3",
                "--body-timeout",
                "5"
            ]),
            Ok(Command::Run(Box::new(Args {
                port: 0,
                host: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                app: crate::ApplicationSettings::default(),
                seed: 9,
                vehicles: 12,
                users: 2,
                log: false,
                log_max_mib: 8,
                header_timeout: 3,
                body_timeout: 5,
                command_duration_ms: 0,
                print_env: None,
                limits: crate::limits::Limits::default(),
            })))
        );
        assert_eq!(run(&["--port", "1", "-h"]), Ok(Command::Help));
    }

    #[test]
    fn bad_flags_are_explained() {
        assert_eq!(
            run(&["--port", "http"]),
            Err("--port needs a number, found `http`".into())
        );
        assert_eq!(
            run(&["--port", "70000"]),
            Err("--port needs a number, found `70000`".into())
        );
        assert_eq!(run(&["--seed"]), Err("--seed needs a value".into()));
        assert_eq!(
            run(&["--vehicles", "0"]),
            Err("--vehicles must be at least 1, found 0".into())
        );
        assert_eq!(run(&["--fast"]), Err("unknown argument `--fast`".into()));
        assert_eq!(
            run(&["--log-max-mib", "0"]),
            Err("--log-max-mib must be at least 1, found 0".into())
        );
        assert_eq!(
            run(&["--body-timeout=soon"]),
            Err("--body-timeout needs a number, found `soon`".into())
        );
        assert_eq!(
            run(&["--no-log=yes"]),
            Err("unknown argument `--no-log`".into())
        );
    }
}

#[cfg(test)]
mod application_tests {
    use super::*;

    fn with_env(args: &[&str], env: &[(&str, &str)]) -> Result<Command, String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        parse_with(
            args.iter().map(|s| (*s).to_owned()),
            &move |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            &|p| Err(format!("no file {p}")),
        )
    }

    fn settings(command: Result<Command, String>) -> (Args, crate::ApplicationSettings) {
        match command {
            Ok(Command::Run(args)) => {
                let app = args.app.clone();
                (*args, app)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_application_comes_from_flags() {
        let (args, app) = settings(with_env(
            &[
                "--client-id",
                "cid",
                "--client-secret=sec",
                "--redirect-uri",
                "http://localhost:3000/a",
                "--redirect-uri=http://localhost:3000/b",
                "--user-id-redirect-uri",
                "http://localhost:3000/m2m",
                "--management-token",
                "amt",
                "--host",
                "0.0.0.0",
            ],
            &[],
        ));
        assert_eq!(args.host.to_string(), "0.0.0.0");
        assert_eq!(app.client_id.as_deref(), Some("cid"));
        assert_eq!(app.client_secret.as_deref(), Some("sec"));
        assert_eq!(app.management_token.as_deref(), Some("amt"));
        assert_eq!(
            app.redirect_uris,
            ["http://localhost:3000/a", "http://localhost:3000/b"]
        );
        assert_eq!(app.user_id_redirect_uris, ["http://localhost:3000/m2m"]);
    }

    #[test]
    fn the_environment_sets_defaults_and_flags_win() {
        let env = [
            ("SMARTCAR_SIM_CLIENT_ID", "env-id"),
            ("SMARTCAR_SIM_CLIENT_SECRET", "env-secret"),
            (
                "SMARTCAR_SIM_REDIRECT_URIS",
                "http://localhost:1/a  http://localhost:1/b",
            ),
            ("SMARTCAR_SIM_PORT", "0"),
            ("SMARTCAR_SIM_HOST", "127.0.0.1"),
            ("SMARTCAR_SIM_MANAGEMENT_TOKEN", ""),
        ];
        let (args, app) = settings(with_env(&[], &env));
        assert_eq!(args.port, 0);
        assert_eq!(app.client_id.as_deref(), Some("env-id"));
        assert_eq!(app.client_secret.as_deref(), Some("env-secret"));
        assert_eq!(
            app.redirect_uris,
            ["http://localhost:1/a", "http://localhost:1/b"]
        );
        assert_eq!(app.management_token, None, "an empty variable is unset");
        let (_, app) = settings(with_env(
            &[
                "--client-id=flag-id",
                "--redirect-uri",
                "http://localhost:2/c",
            ],
            &env,
        ));
        assert_eq!(app.client_id.as_deref(), Some("flag-id"));
        assert_eq!(app.redirect_uris, ["http://localhost:2/c"]);
        assert_eq!(app.client_secret.as_deref(), Some("env-secret"));
    }

    #[test]
    fn bad_application_values_are_explained() {
        assert_eq!(
            with_env(&["--client-id="], &[]),
            Err("--client-id needs a value".into())
        );
        assert_eq!(
            with_env(&["--host", "localhost"], &[]),
            Err("--host needs an IP address such as 127.0.0.1, found `localhost`".into())
        );
        assert_eq!(
            with_env(&[], &[("SMARTCAR_SIM_PORT", "x")]),
            Err("SMARTCAR_SIM_PORT needs a number, found `x`".into())
        );
    }
}

#[cfg(test)]
mod file_tests {
    use super::*;

    const FILE: &str = r#"
port = 0
seed = 7
vehicles = 2
command-duration = 1.5

[application]
client-id = "file-id"
client-secret = "file-secret"
redirect-uris = ["https://example.com/auth"]
management-token = "file-amt"

[[webhooks]]
id = "wh-1"
url = "http://127.0.0.1:9/hook"
version = "v2"

[[webhooks]]
url = "http://127.0.0.1:9/v3"
signals = ["odometer-traveleddistance"]
"#;

    fn run(args: &[&str], env: &[(&str, &str)], file: &'static str) -> Result<Command, String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        parse_with(
            args.iter().map(|s| (*s).to_owned()),
            &move |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            &move |path| {
                if path == "sim.toml" {
                    Ok(file.to_owned())
                } else {
                    Err(format!("cannot read {path}: no such file"))
                }
            },
        )
    }

    fn args(command: Result<Command, String>) -> Args {
        match command {
            Ok(Command::Run(args)) => *args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_config_file_sets_options_the_environment_and_flags_win() {
        let a = args(run(&["--config", "sim.toml"], &[], FILE));
        assert_eq!((a.port, a.seed, a.vehicles), (0, 7, 2));
        assert_eq!(a.command_duration_ms, 1500);
        assert_eq!(a.app.client_id.as_deref(), Some("file-id"));
        assert_eq!(a.app.management_token.as_deref(), Some("file-amt"));
        assert_eq!(a.app.redirect_uris, ["https://example.com/auth"]);
        assert_eq!(a.app.webhooks.len(), 2);
        assert_eq!(a.app.webhooks[0].id.as_deref(), Some("wh-1"));
        assert_eq!(a.app.webhooks[0].version, crate::model::WebhookVersion::V2);
        assert_eq!(a.app.webhooks[1].id, None);
        assert_eq!(a.app.webhooks[1].signals, ["odometer-traveleddistance"]);

        let env = [
            ("SMARTCAR_SIM_CONFIG", "sim.toml"),
            ("SMARTCAR_SIM_CLIENT_ID", "env-id"),
            ("SMARTCAR_SIM_SEED", "8"),
        ];
        let a = args(run(
            &["--seed=9", "--webhook", "wh-2=http://127.0.0.1:9/x"],
            &env,
            FILE,
        ));
        assert_eq!(a.app.client_id.as_deref(), Some("env-id"), "env over file");
        assert_eq!(a.seed, 9, "flag over env over file");
        assert_eq!(a.app.client_secret.as_deref(), Some("file-secret"));
        assert_eq!(
            a.app.webhooks.len(),
            1,
            "--webhook replaces the file's list"
        );
        assert_eq!(a.app.webhooks[0].id.as_deref(), Some("wh-2"));
    }

    #[test]
    fn request_limits_from_flags_variables_and_the_file() {
        use crate::limits::{AppBucket, Limits, VehicleThrottle};
        assert_eq!(
            args(run(&["--platform-limits"], &[], FILE)).limits,
            Limits::platform()
        );
        let a = args(run(
            &["--app-rate-limit", "10/5", "--vehicle-throttle=3/60"],
            &[("SMARTCAR_SIM_MONTHLY_ALLOWANCE", "50")],
            FILE,
        ));
        assert_eq!(
            a.limits,
            Limits {
                app: Some(AppBucket {
                    capacity: 10,
                    refill_per_minute: 5.0
                }),
                vehicle: Some(VehicleThrottle {
                    burst: 3,
                    window: std::time::Duration::from_secs(60)
                }),
                monthly_allowance: Some(50),
            }
        );
        let a = args(run(
            &["--config", "sim.toml"],
            &[],
            "monthly-allowance = 7\nvehicle-throttle = \"2/120\"\n",
        ));
        assert_eq!(a.limits.monthly_allowance, Some(7));
        assert_eq!(a.limits.vehicle.map(|t| t.burst), Some(2));
        assert_eq!(
            run(&["--app-rate-limit", "10"], &[], FILE).unwrap_err(),
            "--app-rate-limit: an application bucket is CAPACITY/PER_MINUTE (`120/2`), found `10`"
        );
        assert_eq!(
            run(&["--monthly-allowance", "0"], &[], FILE).unwrap_err(),
            "--monthly-allowance must be at least 1, found 0"
        );
    }

    #[test]
    fn every_flag_has_its_variable() {
        let env = [
            ("SMARTCAR_SIM_VEHICLES", "2"),
            ("SMARTCAR_SIM_USERS", "4"),
            ("SMARTCAR_SIM_NO_LOG", "true"),
            ("SMARTCAR_SIM_LOG_MAX_MIB", "8"),
            ("SMARTCAR_SIM_HEADER_TIMEOUT", "3"),
            ("SMARTCAR_SIM_BODY_TIMEOUT", "4"),
            ("SMARTCAR_SIM_COMMAND_DURATION", "2"),
            ("SMARTCAR_SIM_PRINT_ENV", "dotenv"),
            (
                "SMARTCAR_SIM_WEBHOOKS",
                "a=http://127.0.0.1:9/a b=http://127.0.0.1:9/b",
            ),
        ];
        let a = args(run(&[], &env, FILE));
        assert_eq!((a.vehicles, a.users, a.log), (2, 4, false));
        assert_eq!((a.log_max_mib, a.header_timeout, a.body_timeout), (8, 3, 4));
        assert_eq!(a.command_duration_ms, 2000);
        assert_eq!(a.print_env, Some(EnvFormat::Dotenv));
        let ids: Vec<_> = a.app.webhooks.iter().map(|w| w.id.clone()).collect();
        assert_eq!(ids, [Some("a".to_owned()), Some("b".to_owned())]);
        assert_eq!(
            run(&[], &[("SMARTCAR_SIM_NO_LOG", "maybe")], FILE).unwrap_err(),
            "SMARTCAR_SIM_NO_LOG needs true or false, found `maybe`"
        );
    }

    #[test]
    fn bad_files_and_values_are_explained() {
        let e = run(&["--config", "missing.toml"], &[], FILE).unwrap_err();
        assert_eq!(e, "cannot read missing.toml: no such file");
        let e = run(&["--config=sim.toml"], &[], "prot = 1\n").unwrap_err();
        assert!(e.starts_with("sim.toml is not a valid config file:"), "{e}");
        assert!(e.contains("prot"), "{e}");
        let e = run(&["--config=sim.toml"], &[], "vehicles = 0\n").unwrap_err();
        assert_eq!(e, "`vehicles` in sim.toml must be at least 1, found 0");
        let e = run(
            &["--config=sim.toml"],
            &[],
            "[[webhooks]]\nurl = \"http://x\"\nversion = \"v9\"\n",
        )
        .unwrap_err();
        assert_eq!(e, "`webhooks` in sim.toml: version is v3 or v2, found `v9`");
        assert_eq!(
            run(&["--webhook", "no-url"], &[], FILE).unwrap_err(),
            "--webhook needs ID=URL (the webhook's id, then where deliveries go), found `no-url`"
        );
        assert_eq!(
            run(&["--print-env", "xml"], &[], FILE).unwrap_err(),
            "--print-env needs sh, dotenv or json, found `xml`"
        );
        assert_eq!(
            run(&["--command-duration", "-1"], &[], FILE).unwrap_err(),
            "--command-duration must be at least 0, found -1"
        );
        let a = args(run(
            &["--print-env", "json", "--command-duration=0.25"],
            &[],
            FILE,
        ));
        assert_eq!(a.print_env, Some(EnvFormat::Json));
        assert_eq!(a.command_duration_ms, 250);
    }
}
