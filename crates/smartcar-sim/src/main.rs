//! `smartcar-sim [--port N] [--seed N] [--vehicles N] [--users N] [--no-log] [--log-max-mib N]
//! [--header-timeout S] [--body-timeout S]`: run the Smartcar platform simulator on 127.0.0.1
//! until Ctrl-C.

use std::process::ExitCode;

const USAGE: &str = "\
smartcar-sim: an offline simulator of the Smartcar platform (every host on one port of 127.0.0.1)

Usage: smartcar-sim [OPTIONS]

Options:
  --port N       port on 127.0.0.1 (default 8080; 0 picks a free port)
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

Memory: the request log keeps the last 10,000 exchanges, of each at most 1 MiB of the request
body and 1 MiB of the response body (copies), and never more than --log-max-mib in all: the
oldest exchanges are dropped first. Request bodies over 16 MiB are refused (413). With --no-log
nothing is kept.
";

/// Parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Args {
    port: u16,
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

/// Parses the arguments after the program name (`--flag value` or `--flag=value`).
fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut parsed = Args::default();
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
            other => return Err(format!("unknown argument `{other}`")),
        }
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
        Err(e) => {
            eprintln!("error: cannot listen on 127.0.0.1:{}: {e}", args.port);
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
        parse(args.iter().map(|s| (*s).to_owned()))
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
