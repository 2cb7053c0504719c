//! The commands that call the platform: connect, vehicles, read, commands, connections,
//! compatibility, webhook subscriptions.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use serde_json::{Value, json};
use smartcar::api::types;
use smartcar::store::MemoryTokenStore;
use smartcar::{Permission, Redirect, Session};

use crate::app::{Ctx, Target};
use crate::exit::{CliError, Exit};
use crate::output::{Table, progress};
use crate::state::Api;
use crate::{
    ChargeAction, CommandArgs, CompatibilityArgs, ConnectArgs, ConnectionsAction, DestinationArgs,
    ReadArgs, VehiclesArgs, WebhooksAction,
};

/// What `connect` asks for without `--scope`.
const DEFAULT_SCOPES: &[&str] = &[
    "read_vehicle_info",
    "read_vin",
    "read_odometer",
    "read_location",
    "read_battery",
    "read_charge",
    "read_fuel",
    "read_security",
    "control_security",
    "control_charge",
    "control_navigation",
];

/// Parses permission names; an unknown one is refused with the known ones listed.
fn permissions(names: &[String], default: &[&str]) -> Result<Vec<Permission>, CliError> {
    let names: Vec<String> = if names.is_empty() {
        default.iter().map(|s| (*s).to_owned()).collect()
    } else {
        names.iter().map(|s| s.trim().to_owned()).collect()
    };
    names
        .iter()
        .map(|name| {
            let p = Permission::from(name.as_str());
            if matches!(p, Permission::Unknown(_)) {
                Err(CliError::new(
                    Exit::Refused,
                    format!("`{name}` is not a Smartcar permission"),
                )
                .hint("permissions look like read_odometer, read_battery, control_security (see https://smartcar.com/docs/api-reference/permissions)"))
            } else {
                Ok(p)
            }
        })
        .collect()
}

/// A signal's value: its number, flag or text, else the `value` of its body.
pub fn signal_value(s: &smartcar::v3::Signal) -> Option<Value> {
    s.number()
        .map(|n| json!(n))
        .or_else(|| s.flag().map(|b| json!(b)))
        .or_else(|| s.text().map(|t| json!(t)))
        .or_else(|| s.body.get("value").cloned())
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

// ---------------------------------------------------------------------------------------------
// connect

/// `smartcar connect`.
pub async fn connect(ctx: &mut Ctx, args: ConnectArgs) -> Result<ExitCode, CliError> {
    let client = ctx.client()?;
    let redirect = args
        .redirect_uri
        .clone()
        .or_else(|| {
            args.v3
                .then(|| {
                    ctx.settings
                        .get("SMARTCAR_V3_REDIRECT_URI")
                        .map(str::to_owned)
                })
                .flatten()
        })
        .or_else(|| ctx.settings.get("SMARTCAR_REDIRECT_URI").map(str::to_owned))
        .ok_or_else(|| {
            CliError::config("no redirect URI: Connect needs one to send the browser back to").hint(
                "set SMARTCAR_REDIRECT_URI (SMARTCAR_V3_REDIRECT_URI for --v3) to a \
                     http://localhost:PORT/... URI registered in the Smartcar Dashboard, or pass \
                     --redirect-uri",
            )
        })?;
    let redirect_url = url::Url::parse(&redirect).map_err(|e| {
        CliError::config(format!("the redirect URI `{redirect}` is not a URL: {e}"))
    })?;
    if redirect_url.scheme() != "http"
        || !matches!(redirect_url.host_str(), Some("localhost" | "127.0.0.1"))
    {
        return Err(CliError::config(format!(
            "the redirect URI {redirect} does not point to this machine, so this tool cannot receive it"
        ))
        .hint(
            "register a http://localhost:PORT/callback redirect URI for your application in the \
             Smartcar Dashboard and pass it with --redirect-uri",
        ));
    }
    let scopes = permissions(&args.scopes, DEFAULT_SCOPES)?;
    let port = redirect_url.port_or_known_default().unwrap_or(80);
    // Listen before printing the URL, so a fast browser cannot arrive first.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| {
            CliError::new(
                Exit::Failure,
                format!("cannot listen on 127.0.0.1:{port} for the redirect: {e}"),
            )
            .hint("stop what uses that port, or register another redirect URI and pass it with --redirect-uri")
        })?;
    let mut authorize = client
        .authorize()
        .scopes(scopes)
        .redirect_uri(redirect.clone());
    if let Some(mode) = args.mode {
        authorize = authorize.mode(match mode {
            crate::ModeArg::Live => smartcar::config::Mode::Live,
            crate::ModeArg::Simulated => smartcar::config::Mode::Simulated,
            crate::ModeArg::Test => smartcar::config::Mode::Test,
        });
    }
    let auth = authorize.build()?;
    let login_started = std::time::SystemTime::now();
    if ctx.out.json {
        println!("{}", json!({"connect_url": auth.url.as_str()}));
    } else {
        println!(
            "Open this URL in a browser to connect a car:\n\n  {}\n",
            auth.url
        );
        eprintln!("Waiting for the browser to come back to {redirect} (Ctrl-C to give up)…");
    }
    if !args.no_browser && !ctx.out.json {
        open_browser(auth.url.as_str());
    }
    let came_back = crate::listen::wait_for_redirect(
        listener,
        &redirect_url,
        Duration::from_secs(args.timeout),
    )
    .await?;
    let state = ctx.state().await?;
    match client.handle_redirect(came_back.as_str(), &auth.state)? {
        Redirect::Code(code) => {
            let tokens = client.exchange_code(&code).await?;
            // The user id is the store key: read it with a session in memory first.
            let probe =
                Session::create(&client, Arc::new(MemoryTokenStore::new()), "new", tokens).await?;
            let user_id = probe.fetch_user_id().await?.data;
            let vehicles = probe.vehicle_ids(Some(50), None).await?.data.vehicles;
            let tokens = probe
                .tokens()
                .ok_or_else(|| CliError::new(Exit::Failure, "the new session holds no tokens"))?;
            Session::create(
                &client,
                state.store.clone(),
                state.token_key(&user_id),
                tokens,
            )
            .await?;
            state.remember(Api::V2, &user_id, &vehicles).await?;
            if args.v3 {
                ctx.out.note(
                    "note: Connect answered with an authorization code: this redirect URI is \
                     registered for the code flow (v2.0), not the machine-to-machine flow",
                );
            }
            ctx.out.record(&json!({
                "user_id": user_id,
                "api": "v2",
                "vehicles": vehicles,
            }));
            ctx.out.note(format!(
                "connected; the user's tokens are saved in {} (never printed)",
                ctx.settings.state_file().display()
            ));
        }
        Redirect::UserId(user_id) => {
            let app = ctx.app()?;
            let user = app
                .verify_user_id(&user_id, login_started, Duration::from_secs(120))
                .await
                .map_err(|e| {
                    CliError::new(Exit::Auth, format!("the user id Connect returned: {e}"))
                        .hint("run `smartcar connect --v3` again and approve in the browser")
                })?;
            let vehicles = user.vehicle_ids().await?;
            state.remember(Api::V3, &user_id, &vehicles).await?;
            ctx.out.record(&json!({
                "user_id": user_id,
                "api": "v3",
                "vehicles": vehicles,
            }));
            ctx.out.note(
                "connected; v3 calls use the application token with this user id (nothing \
                 per user to store)",
            );
        }
        Redirect::VehicleId(vehicle_id) => {
            ctx.out.record(&json!({"vehicle_id": vehicle_id}));
        }
        _ => {
            return Err(CliError::new(
                Exit::Failure,
                "Connect came back with a redirect this tool does not know",
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens `url` in the desktop's browser when there is a terminal; failures are silent (the
/// URL is printed anyway).
fn open_browser(url: &str) {
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() {
        return;
    }
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

// ---------------------------------------------------------------------------------------------
// vehicles

/// `smartcar vehicles`.
pub async fn vehicles(ctx: &mut Ctx, args: VehiclesArgs) -> Result<ExitCode, CliError> {
    let state = ctx.state().await?;
    let mut table = Table::new(&[
        ("VEHICLE", "vehicle_id"),
        ("API", "api"),
        ("USER", "user_id"),
        ("MODE", "mode"),
        ("MAKE", "make"),
        ("MODEL", "model"),
        ("YEAR", "year"),
    ]);
    // v3: the application's connections (Management API; no vehicle call billed). An
    // application without v3 access still lists its v2.0 users' vehicles, with a warning.
    let app = ctx.app()?;
    let v2_users = state.users(Api::V2).await?;
    let connections =
        match crate::app::list_connections(&app, args.user.as_deref(), None, args.mode).await {
            Ok(list) => list,
            Err(e) if !v2_users.is_empty() => {
                ctx.out.note(format!(
                    "warning: the v3 connections could not be listed: {}{}",
                    e.message,
                    e.hint.map(|h| format!(" ({h})")).unwrap_or_default()
                ));
                Vec::new()
            }
            Err(e) => return Err(e),
        };
    for c in &connections {
        let user = &c.relationships.user.data.id;
        let vehicle = &c.relationships.vehicle.data.id;
        let attrs = c.attributes.vehicle.as_ref();
        table.push(json!({
            "vehicle_id": vehicle,
            "api": "v3",
            "user_id": user,
            "mode": attrs.and_then(|a| a.mode.as_ref()).map(|m| m.to_string()),
            "make": attrs.map(|a| a.make.clone()),
            "model": attrs.map(|a| a.model.clone()),
            "year": attrs.and_then(|a| a.year.number()),
        }));
    }
    let pairs: Vec<(&str, &str)> = connections
        .iter()
        .map(|c| {
            (
                c.relationships.user.data.id.as_str(),
                c.relationships.vehicle.data.id.as_str(),
            )
        })
        .collect();
    state.remember_all(Api::V3, &pairs).await?;
    // v2.0: the users this profile connected, with their stored tokens.
    let mut failed = 0;
    for user_id in v2_users {
        if args.user.as_ref().is_some_and(|u| u != &user_id) {
            continue;
        }
        let listed = async {
            let session = ctx.session(&user_id).await?;
            let ids = session.vehicle_ids(Some(50), None).await?.data.vehicles;
            Ok::<_, CliError>((session, ids))
        }
        .await;
        let (session, ids) = match listed {
            Ok(x) => x,
            Err(e) => {
                failed += 1;
                ctx.out.note(format!(
                    "warning: user {user_id} (v2.0): {}{}",
                    e.message,
                    e.hint.map(|h| format!(" ({h})")).unwrap_or_default()
                ));
                continue;
            }
        };
        state.remember(Api::V2, &user_id, &ids).await?;
        let details: Vec<Option<types::VehicleAttributes>> = if args.details {
            let bar = progress(ctx.out, ids.len() as u64, "reading make, model and year");
            let mut reads = futures_util::stream::iter(ids.iter().map(|id| {
                let session = session.clone();
                let bar = bar.clone();
                async move {
                    let attrs = match session.vehicle(id.clone()) {
                        Ok(v) => v.attributes().await.ok().map(|r| r.data),
                        Err(_) => None,
                    };
                    bar.inc(1);
                    attrs
                }
            }))
            .buffered(8);
            let mut all = Vec::with_capacity(ids.len());
            while let Some(a) = reads.next().await {
                all.push(a);
            }
            bar.finish_and_clear();
            all
        } else {
            vec![None; ids.len()]
        };
        for (id, attrs) in ids.iter().zip(details) {
            table.push(json!({
                "vehicle_id": id,
                "api": "v2",
                "user_id": user_id,
                "make": attrs.as_ref().map(|a| a.make.clone()),
                "model": attrs.as_ref().map(|a| a.model.clone()),
                "year": attrs.as_ref().and_then(|a| a.year.number()),
            }));
        }
    }
    if table.is_empty() && failed == 0 {
        ctx.out
            .note("no connected vehicle: `smartcar connect` connects one");
        return Ok(ExitCode::SUCCESS);
    }
    ctx.out.table(&table);
    ctx.out.note(format!("{} vehicle(s)", table.len()));
    if !args.details && table.rows().iter().any(|r| r["api"] == "v2") {
        ctx.out.note(
            "v2.0 vehicles: --details reads their make, model and year (one billed call each)",
        );
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// read

/// The v2.0 reads `read` knows, by the name on the command line.
const V2_READS: &[&str] = &[
    "attributes",
    "vin",
    "odometer",
    "location",
    "fuel",
    "battery",
    "battery-capacity",
    "nominal-capacity",
    "charge",
    "charge-limit",
    "engine-oil",
    "tire-pressure",
    "lock-status",
    "diagnostic-system-status",
    "diagnostic-trouble-codes",
];

/// What v2.0 `read` asks for without names.
const V2_DEFAULT: &[&str] = &[
    "attributes",
    "vin",
    "odometer",
    "location",
    "battery",
    "charge",
    "fuel",
    "lock-status",
];

/// `smartcar read`.
pub async fn read(ctx: &mut Ctx, args: ReadArgs) -> Result<ExitCode, CliError> {
    match ctx.target(&args.target).await? {
        Target::V3 { vehicle, .. } => {
            let signals = vehicle.signals().await?;
            let wanted: Vec<String> = args.items.iter().map(|s| s.to_ascii_lowercase()).collect();
            let mut table = Table::new(&[
                ("SIGNAL", "code"),
                ("STATUS", "status"),
                ("UPDATED", "oem_updated_at"),
                ("UNIT", "unit"),
                ("VALUE", "value"),
            ]);
            let mut found = Vec::new();
            for s in signals.iter() {
                let code = s.code.to_string();
                if !wanted.is_empty() && !wanted.contains(&code.to_ascii_lowercase()) {
                    continue;
                }
                found.push(code.to_ascii_lowercase());
                let value = signal_value(s).unwrap_or_else(|| {
                    let mut body = s.body.clone();
                    body.remove("unit");
                    if body.is_empty() {
                        Value::Null
                    } else {
                        Value::Object(body)
                    }
                });
                table.push(json!({
                    "vehicle_id": vehicle.id(),
                    "code": code,
                    "value": value,
                    "unit": s.unit(),
                    "status": if s.is_success() { "ok".to_owned() } else {
                        s.error
                            .as_ref()
                            .map(|e| {
                                let e = to_value(e);
                                [e.get("type"), e.get("code")]
                                    .into_iter()
                                    .flatten()
                                    .filter_map(Value::as_str)
                                    .collect::<Vec<_>>()
                                    .join(":")
                            })
                            .filter(|t| !t.is_empty())
                            .unwrap_or_else(|| "error".into())
                    },
                    "error": s.error.as_ref().map(to_value),
                    "oem_updated_at": s.oem_updated_at.map(|t| t.to_rfc3339()),
                }));
            }
            ctx.out.table(&table);
            let missing: Vec<&String> = wanted.iter().filter(|w| !found.contains(w)).collect();
            if !missing.is_empty() {
                return Err(CliError::new(
                    Exit::Refused,
                    format!(
                        "the vehicle returned no signal {}",
                        missing
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .hint("`smartcar read VEHICLE` with no name lists every signal it returns"));
            }
            if signals.is_empty()
                && let Some(hint) = signals.empty_hint()
            {
                ctx.out.note(format!("no signals: {hint:?}"));
            }
            ctx.out
                .note(format!("{} signal(s) · 1 API call", table.len()));
        }
        Target::V2 { vehicle, .. } => {
            let names: Vec<String> = if args.items.is_empty() {
                V2_DEFAULT.iter().map(|s| (*s).to_owned()).collect()
            } else {
                args.items.iter().map(|s| s.to_ascii_lowercase()).collect()
            };
            let mut batch = vehicle.batch();
            for name in &names {
                batch = match name.as_str() {
                    "attributes" => batch.attributes(),
                    "vin" => batch.vin(),
                    "odometer" => batch.odometer(),
                    "location" => batch.location(),
                    "fuel" => batch.fuel(),
                    "battery" => batch.battery(),
                    "battery-capacity" => batch.battery_capacity(),
                    "nominal-capacity" => batch.nominal_capacity(),
                    "charge" => batch.charge(),
                    "charge-limit" => batch.charge_limit(),
                    "engine-oil" => batch.engine_oil(),
                    "tire-pressure" => batch.tire_pressure(),
                    "lock-status" => batch.lock_status(),
                    "diagnostic-system-status" => batch.diagnostic_system_status(),
                    "diagnostic-trouble-codes" => batch.diagnostic_trouble_codes(),
                    other => {
                        let is_signal = !matches!(
                            smartcar::v3::SignalCode::from(other),
                            smartcar::v3::SignalCode::Unknown(_)
                        );
                        let message = if is_signal {
                            format!(
                                "`{other}` is a Vehicle API v3 signal, and this vehicle is read \
                                 through v2.0 (it was connected with the authorization-code flow)"
                            )
                        } else {
                            format!("`{other}` is not a v2.0 read")
                        };
                        let hint = if is_signal {
                            format!(
                                "connect it with `smartcar connect --v3` to read signals, or read \
                                 v2.0 endpoints: {}",
                                V2_READS.join(", ")
                            )
                        } else {
                            format!("the v2.0 reads are: {}", V2_READS.join(", "))
                        };
                        return Err(CliError::new(Exit::Refused, message).hint(hint));
                    }
                };
            }
            let answer = batch.send().await?;
            let mut table = Table::new(&[
                ("ENDPOINT", "endpoint"),
                ("HTTP", "code"),
                ("VALUE", "value"),
            ]);
            for item in answer.items() {
                let value = match &item.body {
                    Some(Value::Object(map)) if item.code == 200 => {
                        let mut map = map.clone();
                        map.remove("meta");
                        Value::Object(map)
                    }
                    Some(body) => body
                        .get("description")
                        .or_else(|| body.get("message"))
                        .cloned()
                        .unwrap_or_else(|| body.clone()),
                    None => Value::Null,
                };
                table.push(json!({
                    "vehicle_id": vehicle.id(),
                    "endpoint": match item.path.trim_start_matches('/') {
                        "" => "attributes",
                        path => path,
                    },
                    "code": item.code,
                    "value": value,
                }));
            }
            ctx.out.table(&table);
            ctx.out.note(format!(
                "1 batch request · {} API call(s) billed",
                answer.items().len()
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// commands

/// Prints a command's outcome. A v3 execution is waited for (up to `wait`) when asked.
async fn command_outcome(
    ctx: &mut Ctx,
    target: &Target,
    command: &str,
    outcome: CommandOutcome,
    wait: u64,
) -> Result<ExitCode, CliError> {
    let record = match (target, outcome) {
        (Target::V3 { vehicle, .. }, CommandOutcome::V3(execution)) => {
            let execution = *execution;
            let execution = if wait > 0 && !is_final(&execution) {
                ctx.out.note(format!(
                    "{command}: accepted (execution {}), waiting up to {wait} s for the car…",
                    execution.id
                ));
                vehicle
                    .wait_for_command(execution, Duration::from_secs(wait))
                    .await?
            } else {
                execution
            };
            let status = execution.attributes.status.value.to_string();
            let record = json!({
                "vehicle_id": vehicle.id(),
                "user_id": target.user_id(),
                "command": command,
                "api": "v3",
                "execution_id": execution.id,
                "status": status,
                "error": execution.attributes.status.error.as_ref().map(to_value),
            });
            if status.eq_ignore_ascii_case("FAILED") {
                ctx.out.record(&record);
                return Err(CliError::new(
                    Exit::Refused,
                    format!("the vehicle did not carry out `{command}`"),
                )
                .hint("the error above says why; `smartcar read VEHICLE` shows its state"));
            }
            record
        }
        (Target::V2 { vehicle, .. }, CommandOutcome::V2(action)) => json!({
            "vehicle_id": vehicle.id(),
            "user_id": target.user_id(),
            "command": command,
            "api": "v2",
            "status": action.status,
            "message": action.message,
        }),
        _ => return Err(CliError::new(Exit::Failure, "mismatched command outcome")),
    };
    ctx.out.record(&record);
    Ok(ExitCode::SUCCESS)
}

fn is_final(execution: &types::CommandExecution) -> bool {
    !matches!(
        execution.attributes.status.value.to_string().as_str(),
        "PENDING" | "IN_PROGRESS" | "QUEUED" | "RUNNING"
    )
}

enum CommandOutcome {
    V3(Box<types::CommandExecution>),
    V2(types::ActionResponse),
}

impl CommandOutcome {
    fn v3(execution: types::CommandExecution) -> Self {
        CommandOutcome::V3(Box::new(execution))
    }
}

/// The commands without arguments, on either API.
#[derive(Clone, Copy)]
pub enum Simple {
    Lock,
    Unlock,
    StartCharge,
    StopCharge,
}

impl Simple {
    fn name(self) -> &'static str {
        match self {
            Simple::Lock => "lock",
            Simple::Unlock => "unlock",
            Simple::StartCharge => "charge start",
            Simple::StopCharge => "charge stop",
        }
    }
}

/// `smartcar lock|unlock`, `smartcar charge start|stop`.
pub async fn simple(
    ctx: &mut Ctx,
    args: CommandArgs,
    command: Simple,
) -> Result<ExitCode, CliError> {
    let target = ctx.target(&args.target).await?;
    let outcome = match &target {
        Target::V3 { vehicle, .. } => CommandOutcome::v3(
            match command {
                Simple::Lock => vehicle.lock().await?,
                Simple::Unlock => vehicle.unlock().await?,
                Simple::StartCharge => vehicle.start_charge().await?,
                Simple::StopCharge => vehicle.stop_charge().await?,
            }
            .data,
        ),
        Target::V2 { vehicle, .. } => CommandOutcome::V2(
            match command {
                Simple::Lock => vehicle.lock().await?,
                Simple::Unlock => vehicle.unlock().await?,
                Simple::StartCharge => vehicle.start_charge().await?,
                Simple::StopCharge => vehicle.stop_charge().await?,
            }
            .data,
        ),
    };
    command_outcome(ctx, &target, command.name(), outcome, args.wait).await
}

/// `smartcar charge …`.
pub async fn charge(ctx: &mut Ctx, action: ChargeAction) -> Result<ExitCode, CliError> {
    match action {
        ChargeAction::Start(args) => simple(ctx, args, Simple::StartCharge).await,
        ChargeAction::Stop(args) => simple(ctx, args, Simple::StopCharge).await,
        ChargeAction::Limit { target, percent } => {
            let limit = smartcar::ChargeLimit::percent(percent)?;
            let t = ctx.target(&target.target).await?;
            let outcome = match &t {
                Target::V3 { vehicle, .. } => {
                    CommandOutcome::v3(vehicle.set_charge_limit(limit).await?.data)
                }
                Target::V2 { vehicle, .. } => {
                    CommandOutcome::V2(vehicle.set_charge_limit(limit).await?.data)
                }
            };
            command_outcome(ctx, &t, "charge limit", outcome, target.wait).await
        }
        ChargeAction::Schedule {
            target,
            daily,
            at,
            delete,
        } => {
            let t = ctx.target(&target).await?;
            let Target::V3 { vehicle, .. } = &t else {
                return Err(CliError::new(
                    Exit::Refused,
                    "charge schedules are a Vehicle API v3 feature; this vehicle is connected through v2.0",
                )
                .hint("connect it with `smartcar connect --v3`"));
            };
            if let Some(id) = delete {
                let done = vehicle.delete_charge_schedule(&id).await?;
                ctx.out.record(&to_value(&done.data));
            } else if let Some(window) = daily {
                let (start, stop) = window.split_once('-').ok_or_else(|| {
                    CliError::new(Exit::Refused, format!("`{window}` is not START-STOP"))
                        .hint("write the window as 23:00-06:00")
                })?;
                let window = smartcar::v3::ChargingWindow::parse(start, stop)?;
                let at = at.ok_or_else(|| {
                    CliError::new(Exit::Refused, "a daily schedule needs --at LAT,LNG")
                        .hint("the place where the schedule applies, e.g. --at 37.7749,-122.4194")
                })?;
                let (lat, lng) = coordinates(&at)?;
                let location = smartcar::v3::ChargeLocation::new(lat, lng)?;
                let done = vehicle.set_daily_charge_schedule(location, window).await?;
                ctx.out.record(&to_value(&done.data));
            } else {
                let schedules = vehicle.charge_schedules().await?;
                let mut table = Table::new(&[
                    ("SCHEDULE", "scheduleId"),
                    ("TYPE", "scheduleType"),
                    ("SCHEDULES", "schedules"),
                ]);
                for timer in &schedules.timers {
                    table.push(to_value(timer));
                }
                ctx.out.table(&table);
                ctx.out
                    .note(format!("{} schedule(s) · 1 API call", table.len()));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `LAT,LNG` → two numbers.
fn coordinates(text: &str) -> Result<(f64, f64), CliError> {
    let bad = || {
        CliError::new(Exit::Refused, format!("`{text}` is not LAT,LNG"))
            .hint("write two decimal numbers separated by a comma, e.g. 48.8584,2.2945")
    };
    let (lat, lng) = text.split_once(',').ok_or_else(bad)?;
    let lat: f64 = lat.trim().parse().map_err(|_| bad())?;
    let lng: f64 = lng.trim().parse().map_err(|_| bad())?;
    Ok((lat, lng))
}

/// `smartcar destination`.
pub async fn destination(ctx: &mut Ctx, args: DestinationArgs) -> Result<ExitCode, CliError> {
    let (lat, lng) = coordinates(&args.position)?;
    let destination = smartcar::Destination::new(lat, lng)?;
    let target = ctx.target(&args.target.target).await?;
    let outcome = match &target {
        Target::V3 { vehicle, .. } => {
            CommandOutcome::v3(vehicle.set_destination(destination).await?.data)
        }
        Target::V2 { vehicle, .. } => {
            CommandOutcome::V2(vehicle.set_destination(destination).await?.data)
        }
    };
    command_outcome(ctx, &target, "destination", outcome, args.target.wait).await
}

// ---------------------------------------------------------------------------------------------
// connections, compatibility, webhooks

/// `smartcar connections …`.
pub async fn connections(ctx: &mut Ctx, action: ConnectionsAction) -> Result<ExitCode, CliError> {
    let app = ctx.app()?;
    match action {
        ConnectionsAction::List {
            user,
            vehicle,
            mode,
        } => {
            let list =
                crate::app::list_connections(&app, user.as_deref(), vehicle.as_deref(), mode)
                    .await?;
            let mut table = Table::new(&[
                ("CONNECTION", "connection_id"),
                ("USER", "user_id"),
                ("VEHICLE", "vehicle_id"),
                ("VEHICLE MODEL", "vehicle"),
                ("MODE", "mode"),
                ("PERMISSIONS", "permissions"),
                ("CREATED", "created_at"),
            ]);
            for c in &list {
                let v = c.attributes.vehicle.as_ref();
                table.push(json!({
                    "connection_id": c.id,
                    "user_id": c.relationships.user.data.id,
                    "vehicle_id": c.relationships.vehicle.data.id,
                    "vehicle": v.map(|v| format!(
                        "{} {} {}",
                        v.year.number().map(|y| y.to_string()).unwrap_or_default(),
                        v.make,
                        v.model
                    ).trim().to_owned()),
                    "mode": v.and_then(|v| v.mode.as_ref()).map(|m| m.to_string()),
                    "permissions": c.attributes.permissions.len(),
                    "created_at": c.meta.as_ref().and_then(|m| m.created_at).map(|t| t.to_rfc3339()),
                }));
            }
            ctx.out.table(&table);
            ctx.out.note(format!("{} connection(s)", table.len()));
        }
        ConnectionsAction::Delete { connection } => {
            app.delete_connection(&connection).await?;
            ctx.out
                .record(&json!({"connection_id": connection, "deleted": true}));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `smartcar compatibility`.
pub async fn compatibility(ctx: &mut Ctx, args: CompatibilityArgs) -> Result<ExitCode, CliError> {
    let client = ctx.client()?;
    let scopes = permissions(&args.scopes, &["read_vehicle_info"])?;
    let answer = client
        .compatibility(&args.vin, &scopes, args.country.as_deref())
        .await?
        .data;
    if ctx.out.json {
        let mut value = to_value(&answer);
        if let Some(map) = value.as_object_mut() {
            map.insert("vin".into(), json!(args.vin));
        }
        ctx.out.record(&value);
        return Ok(ExitCode::SUCCESS);
    }
    ctx.out.record(&json!({
        "vin": args.vin,
        "compatible": answer.compatible,
        "reason": answer.reason.as_ref().map(|r| r.to_string()),
    }));
    if !answer.capabilities.is_empty() {
        println!();
        let mut table = Table::new(&[
            ("PERMISSION", "permission"),
            ("ENDPOINT", "endpoint"),
            ("CAPABLE", "capable"),
            ("REASON", "reason"),
        ]);
        for c in &answer.capabilities {
            table.push(to_value(c));
        }
        ctx.out.table(&table);
    }
    Ok(ExitCode::SUCCESS)
}

/// `smartcar webhooks list|subscriptions|subscribe|unsubscribe`.
pub async fn webhooks(ctx: &mut Ctx, action: WebhooksAction) -> Result<ExitCode, CliError> {
    // `listen` needs the management token only.
    let action = match action {
        WebhooksAction::Listen(args) => return crate::listen::listen(ctx, args).await,
        WebhooksAction::Check { url } => return crate::doctor::webhook_check(ctx, &url).await,
        other => other,
    };
    let app = ctx.app()?;
    match action {
        WebhooksAction::List => {
            let list = app.webhooks(None, None).await?;
            let mut table = Table::new(&[
                ("WEBHOOK", "webhook_id"),
                ("NAME", "name"),
                ("CALLBACK", "callback_uri"),
                ("ENABLED", "enabled"),
                ("TRIGGERS", "triggers"),
                ("SIGNALS", "signals"),
            ]);
            for w in &list {
                table.push(json!({
                    "webhook_id": w.id,
                    "name": w.attributes.name,
                    "callback_uri": w.attributes.callback_uri,
                    "enabled": w.attributes.is_enabled,
                    "triggers": w.attributes.triggers.len(),
                    "signals": w.attributes.data.len(),
                }));
            }
            ctx.out.table(&table);
            ctx.out.note(format!("{} webhook(s)", table.len()));
        }
        WebhooksAction::Subscriptions { webhook, vehicle } => {
            let list = app
                .subscriptions(webhook.as_deref(), vehicle.as_deref(), None)
                .await?;
            let mut table = Table::new(&[
                ("SUBSCRIPTION", "subscription_id"),
                ("WEBHOOK", "webhook_id"),
                ("VEHICLE", "vehicle_id"),
                ("USER", "user_id"),
            ]);
            for s in &list {
                let rels = s.relationships.as_ref();
                let rel = |pick: fn(
                    &types::SubscriptionResourceRelationships,
                ) -> &Option<types::Relationship>| {
                    rels.and_then(|r| pick(r).as_ref())
                        .map(|r| r.data.id.clone())
                };
                table.push(json!({
                    "subscription_id": s.id,
                    "webhook_id": rel(|r| &r.webhook),
                    "vehicle_id": rel(|r| &r.vehicle),
                    "user_id": rel(|r| &r.user),
                }));
            }
            ctx.out.table(&table);
            ctx.out.note(format!("{} subscription(s)", table.len()));
        }
        WebhooksAction::Subscribe {
            webhook,
            vehicle,
            user,
        } => {
            let user = match user {
                Some(user) => user,
                None => ctx.v3_owner(&vehicle).await?.ok_or_else(|| {
                    CliError::new(
                        Exit::Refused,
                        format!("vehicle {vehicle} has no v3 connection"),
                    )
                    .hint("pass its user with --user, or connect it with `smartcar connect --v3`")
                })?,
            };
            app.subscribe(&webhook, &vehicle, &user).await?;
            ctx.out.record(&json!({
                "webhook_id": webhook,
                "vehicle_id": vehicle,
                "user_id": user,
                "subscribed": true,
            }));
        }
        WebhooksAction::Unsubscribe { subscription } => {
            app.unsubscribe(&subscription).await?;
            ctx.out
                .record(&json!({"subscription_id": subscription, "unsubscribed": true}));
        }
        WebhooksAction::Listen(_) | WebhooksAction::Check { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}
