//! `smartcar-sim [OPTIONS]`: run the Smartcar platform simulator (127.0.0.1 by default) until
//! SIGINT (Ctrl-C) or SIGTERM, as the seeded application or as yours (`--client-id`, `--redirect-uri`, … or their
//! `SMARTCAR_SIM_*` environment variables). The command line is [`smartcar_sim::cli`].

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    smartcar_sim::cli::run("smartcar-sim", std::env::args().skip(1)).await
}
