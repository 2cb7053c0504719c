//! The context every command runs in, and the dispatch.

use std::process::ExitCode;
use std::sync::Arc;

use smartcar::{ApplicationSession, Client, Session};

use crate::config::Settings;
use crate::exit::{CliError, Exit};
use crate::output::Out;
use crate::state::{Api, State};
use crate::{ApiArg, Cli, Command, VehicleArg};

/// What a command needs: the settings, the output, and (built when first needed) the SDK
/// client, the application session and the state file.
pub struct Ctx {
    pub settings: Settings,
    pub out: Out,
    client: Option<Client>,
    app: Option<ApplicationSession>,
    state: Option<Arc<State>>,
}

/// A vehicle, through the API it is used with.
pub enum Target {
    V3 {
        vehicle: smartcar::v3::VehicleV3,
        user_id: String,
    },
    V2 {
        vehicle: smartcar::v2::Vehicle,
        user_id: String,
    },
}

impl Target {
    pub fn user_id(&self) -> &str {
        match self {
            Target::V3 { user_id, .. } | Target::V2 { user_id, .. } => user_id,
        }
    }
}

impl Ctx {
    pub fn client(&mut self) -> Result<Client, CliError> {
        if self.client.is_none() {
            self.client = Some(self.settings.client()?);
        }
        Ok(self.client.clone().expect("set above"))
    }

    pub fn app(&mut self) -> Result<ApplicationSession, CliError> {
        if self.app.is_none() {
            let client = self.client()?;
            self.app = Some(ApplicationSession::new(&client));
        }
        Ok(self.app.clone().expect("set above"))
    }

    pub async fn state(&mut self) -> Result<Arc<State>, CliError> {
        if self.state.is_none() {
            self.state = Some(Arc::new(State::open(&self.settings).await?));
        }
        Ok(self.state.clone().expect("set above"))
    }

    /// A v2.0 user's session from the state file.
    pub async fn session(&mut self, user_id: &str) -> Result<Session, CliError> {
        let client = self.client()?;
        let state = self.state().await?;
        Ok(Session::resume(&client, state.store.clone(), state.token_key(user_id)).await?)
    }

    /// The user of a vehicle's v3 connection (live, simulated or test), asked of the
    /// Management API.
    pub async fn v3_owner(&mut self, vehicle_id: &str) -> Result<Option<String>, CliError> {
        let app = self.app()?;
        let connections = app.connections_any_mode(None, Some(vehicle_id)).await?;
        Ok(connections
            .first()
            .map(|c| c.relationships.user.data.id.clone()))
    }

    /// Finds how to reach a vehicle: a v3 connection first (from the state file, else the
    /// Management API), else a v2.0 user of this profile.
    pub async fn target(&mut self, arg: &VehicleArg) -> Result<Target, CliError> {
        let state = self.state().await?;
        let owners = state.owners(&arg.vehicle).await?;
        let known = |api: Api| {
            owners
                .iter()
                .find(|(a, _)| *a == api)
                .map(|(_, u)| u.clone())
        };
        let want_v3 = arg.api != Some(ApiArg::V2);
        let want_v2 = arg.api != Some(ApiArg::V3);
        let mut v3_user = if want_v3 { known(Api::V3) } else { None };
        if v3_user.is_none() && want_v3 && (arg.api == Some(ApiArg::V3) || known(Api::V2).is_none())
        {
            v3_user = self.v3_owner(&arg.vehicle).await?;
            if let Some(user) = &v3_user {
                state
                    .remember(Api::V3, user, std::slice::from_ref(&arg.vehicle))
                    .await?;
            }
        }
        if let Some(user_id) = v3_user {
            let vehicle = self
                .app()?
                .user(user_id.clone())?
                .vehicle(arg.vehicle.clone())?;
            return Ok(Target::V3 { vehicle, user_id });
        }
        if want_v2 && let Some(user_id) = known(Api::V2) {
            let vehicle = self.session(&user_id).await?.vehicle(arg.vehicle.clone())?;
            return Ok(Target::V2 { vehicle, user_id });
        }
        Err(CliError::new(
            Exit::Refused,
            format!(
                "vehicle {} has no {}connection this profile ({}) can use",
                arg.vehicle,
                match arg.api {
                    Some(ApiArg::V3) => "v3 ",
                    Some(ApiArg::V2) => "v2.0 ",
                    None => "",
                },
                self.settings.profile
            ),
        )
        .hint("`smartcar vehicles` lists the connected vehicles; `smartcar connect` connects one"))
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let out = Out {
        json: cli.global.json,
    };
    if let Command::Sim { args } = cli.command {
        return Ok(smartcar_sim::cli::run("smartcar sim", args).await);
    }
    let mut flags = vec![("SMARTCAR_ORIGIN", cli.global.origin.clone())];
    if let Command::Connect(args) = &cli.command {
        flags.push((
            "SMARTCAR_MODE",
            args.mode.map(|m| {
                match m {
                    crate::ModeArg::Live => "live",
                    crate::ModeArg::Simulated => "simulated",
                    crate::ModeArg::Test => "test",
                }
                .to_owned()
            }),
        ));
    }
    let settings = Settings::load(&cli.global.profile, cli.global.config.as_deref(), &flags)?;
    let mut ctx = Ctx {
        settings,
        out,
        client: None,
        app: None,
        state: None,
    };
    use crate::commands as c;
    match cli.command {
        Command::Connect(args) => c::connect(&mut ctx, args).await,
        Command::Vehicles(args) => c::vehicles(&mut ctx, args).await,
        Command::Read(args) => c::read(&mut ctx, args).await,
        Command::Lock(args) => c::simple(&mut ctx, args, c::Simple::Lock).await,
        Command::Unlock(args) => c::simple(&mut ctx, args, c::Simple::Unlock).await,
        Command::Charge { action } => c::charge(&mut ctx, action).await,
        Command::Destination(args) => c::destination(&mut ctx, args).await,
        Command::Connections { action } => c::connections(&mut ctx, action).await,
        Command::Compatibility(args) => c::compatibility(&mut ctx, args).await,
        Command::Webhooks { action } => c::webhooks(&mut ctx, action).await,
        Command::Fleet { action } => crate::ops::fleet(&mut ctx, action).await,
        Command::Pipeline(args) => crate::ops::pipeline(&mut ctx, args).await,
        Command::Doctor(args) => crate::doctor::doctor(&mut ctx, args).await,
        // Handled before the settings are read.
        Command::Sim { .. } | Command::Completions { .. } => Ok(ExitCode::SUCCESS),
    }
}

/// The application's v3 connections in `mode`, or in every mode (live, simulated, test: one
/// request each, the platform listing live ones only unless asked), newest first.
pub async fn list_connections(
    app: &ApplicationSession,
    user_id: Option<&str>,
    vehicle_id: Option<&str>,
    mode: Option<crate::ModeArg>,
) -> Result<Vec<smartcar::api::types::ConnectionResource>, CliError> {
    use smartcar::api::open_enums::VehicleMode;
    let modes = match mode {
        Some(crate::ModeArg::Live) => vec![VehicleMode::Live],
        Some(crate::ModeArg::Simulated) => vec![VehicleMode::Simulated],
        Some(crate::ModeArg::Test) => vec![VehicleMode::Test],
        None => vec![VehicleMode::Live, VehicleMode::Simulated, VehicleMode::Test],
    };
    let mut all = Vec::new();
    for mode in modes {
        let query = smartcar::v3::ConnectionQuery {
            user_id: user_id.map(str::to_owned),
            vehicle_id: vehicle_id.map(str::to_owned),
            mode: Some(mode),
            ..Default::default()
        };
        for c in app.connections_matching(&query).await? {
            if !all
                .iter()
                .any(|a: &smartcar::api::types::ConnectionResource| a.id == c.id)
            {
                all.push(c);
            }
        }
    }
    Ok(all)
}
