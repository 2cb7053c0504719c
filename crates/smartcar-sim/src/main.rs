//! `smartcar-sim [OPTIONS]`: run the Smartcar platform simulator (127.0.0.1 by default) until
//! Ctrl-C, as the seeded application or as yours (`--client-id`, `--redirect-uri`, … or their
//! `SMARTCAR_SIM_*` environment variables).

use std::process::ExitCode;

const USAGE: &str = "\
smartcar-sim: an offline simulator of the Smartcar platform (every host on one port of 127.0.0.1)

Usage: smartcar-sim [OPTIONS]

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
                 the application management token (webhook signatures, management API)

Every option can come from the environment instead: SMARTCAR_SIM_PORT, SMARTCAR_SIM_HOST,
SMARTCAR_SIM_SEED, SMARTCAR_SIM_CLIENT_ID, SMARTCAR_SIM_CLIENT_SECRET,
SMARTCAR_SIM_REDIRECT_URIS and SMARTCAR_SIM_USER_ID_REDIRECT_URIS (space-separated),
SMARTCAR_SIM_MANAGEMENT_TOKEN. A flag wins over its variable.

Memory: the request log keeps the last 10,000 exchanges, of each at most 1 MiB of the request
body and 1 MiB of the response body (copies), and never more than --log-max-mib in all: the
oldest exchanges are dropped first. Request bodies over 16 MiB are refused (413). With --no-log
nothing is kept.
";

/// Parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Args {
    port: u16,
    host: std::net::IpAddr,
    app: smartcar_sim::ApplicationSettings,
    seed: u64,
    vehicles: usize,
    users: usize,
    log: bool,
    log_max_mib: usize,
    header_timeout: u64,
    body_timeout: u64,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            port: 8080,
            host: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            app: smartcar_sim::ApplicationSettings::default(),
            seed: 1,
            vehicles: 6,
            users: 3,
            log: true,
            log_max_mib: 64,
            header_timeout: 10,
            body_timeout: 30,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Run(Args),
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

/// The defaults the environment sets (`SMARTCAR_SIM_*`), read through `env`.
fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Args, String> {
    let mut parsed = Args::default();
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
    parsed.app.client_id = var("SMARTCAR_SIM_CLIENT_ID");
    parsed.app.client_secret = var("SMARTCAR_SIM_CLIENT_SECRET");
    parsed.app.management_token = var("SMARTCAR_SIM_MANAGEMENT_TOKEN");
    let list = |name: &str| -> Vec<String> {
        var(name)
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    parsed.app.redirect_uris = list("SMARTCAR_SIM_REDIRECT_URIS");
    parsed.app.user_id_redirect_uris = list("SMARTCAR_SIM_USER_ID_REDIRECT_URIS");
    Ok(parsed)
}

/// Parses the arguments after the program name (`--flag value` or `--flag=value`), over the
/// defaults of the process environment.
fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    parse_with(args, &|name| std::env::var(name).ok())
}

/// [`parse`] with the environment read through `env`.
fn parse_with(
    args: impl IntoIterator<Item = String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Command, String> {
    let mut parsed = from_env(env)?;
    // Repeatable flags replace the environment's list at their first use.
    let (mut code_uris, mut user_id_uris) = (None::<Vec<String>>, None::<Vec<String>>);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| args.next());
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
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
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if let Some(uris) = code_uris {
        parsed.app.redirect_uris = uris;
    }
    if let Some(uris) = user_id_uris {
        parsed.app.user_id_redirect_uris = uris;
    }
    Ok(Command::Run(parsed))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Command::Run(args)) => args,
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let sim = match smartcar_sim::Simulator::builder()
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
        .start()
        .await
    {
        Ok(sim) => sim,
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: cannot listen on {}:{}: {e}", args.host, args.port);
            return ExitCode::FAILURE;
        }
    };
    print_banner(&sim);
    match tokio::signal::ctrl_c().await {
        Ok(()) => println!("\nshutting down"),
        Err(e) => eprintln!("error: cannot wait for Ctrl-C ({e}); shutting down"),
    }
    sim.shutdown().await;
    ExitCode::SUCCESS
}

fn print_banner(sim: &smartcar_sim::Simulator) {
    let base = sim.base_url();
    let app = sim.app();
    let origins = sim.origins();
    println!("smartcar-sim listening on {base} (every Smartcar host is served here)\n");
    println!("Application");
    println!("  client id       {}", app.client_id);
    println!("  client secret   {}", app.client_secret);
    println!("  management token {}", app.amt);
    for uri in &app.redirect_uris {
        let flow = if app.user_id_redirect_uris.contains(uri) {
            "v3 flow: user_id"
        } else {
            "code flow"
        };
        println!("  redirect URI    {uri}  ({flow})");
    }
    println!("\nUsers and vehicles");
    let vehicles = sim.vehicles();
    for user in sim.users() {
        println!("  {}  (user id {})", user.email, user.id);
        for id in &user.vehicle_ids {
            if let Some(v) = vehicles.iter().find(|v| &v.id == id) {
                println!(
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
    println!("\nConnect (open in a browser; add &sim_auto_approve=true to skip the page)");
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &app.client_id)
        .append_pair(
            "redirect_uri",
            app.redirect_uris.first().map(String::as_str).unwrap_or(""),
        )
        .append_pair("scope", "read_vehicle_info read_odometer")
        .append_pair("state", "demo")
        .finish();
    println!(
        "  {}{}?{query}",
        origins.connect,
        smartcar_api::ops::AUTHORIZE.path
    );
    println!("\nEnvironment for Smartcar's official SDKs (Python, Node, Java, Ruby):");
    for (name, value) in origins.sdk_env().into_iter().chain(app.env()) {
        println!("  export {name}={value}");
    }
    println!(
        "  # SMARTCAR_AUTH_ORIGIN is the full token URL (Python, Rust crate); SDKs that append\n  # /oauth/token to it (Node, Java, Ruby) reach {base}/oauth/token/oauth/token, also served."
    );
    println!("\nPress Ctrl-C to stop.");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Command, String> {
        parse_with(args.iter().map(|s| (*s).to_owned()), &|_| None)
    }

    #[test]
    fn defaults_and_every_flag() {
        assert_eq!(run(&[]), Ok(Command::Run(Args::default())));
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
            Ok(Command::Run(Args {
                port: 0,
                host: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                app: smartcar_sim::ApplicationSettings::default(),
                seed: 9,
                vehicles: 12,
                users: 2,
                log: false,
                log_max_mib: 8,
                header_timeout: 3,
                body_timeout: 5,
            }))
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
        parse_with(args.iter().map(|s| (*s).to_owned()), &move |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    fn settings(command: Result<Command, String>) -> (Args, smartcar_sim::ApplicationSettings) {
        match command {
            Ok(Command::Run(args)) => {
                let app = args.app.clone();
                (args, app)
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
