//! `cargo run -p smartcar-example-web`: the example web app on <http://localhost:8000>.
//!
//! Without `SMARTCAR_CLIENT_ID` it starts the Smartcar simulator in-process and uses it; with
//! `SMARTCAR_CLIENT_ID`, `SMARTCAR_CLIENT_SECRET` and `SMARTCAR_REDIRECT_URI` it uses the real
//! platform (the app listens on the redirect URI's port; a non-empty `SMARTCAR_MANAGEMENT_TOKEN`
//! lets `/webhooks` accept deliveries). `SMARTCAR_WEBHOOK_ID` names the webhook the "Subscribe to
//! webhook" button subscribes vehicles to (default: the application's first webhook; in
//! simulator mode one pointing at this app's `/webhooks` is created and verified at start).
//! `PORT` changes the port in simulator mode (default 8000); `SMARTCAR_EXAMPLE_COOKIE_KEY` (64
//! hex digits) fixes the key sealing the login cookie; `SMARTCAR_EXAMPLE_WEBHOOK_DB` names the
//! SQLite file of the webhook pipeline and the latest signal values (default: a file in the
//! temp directory, removed on exit).

use std::process::ExitCode;

use smartcar_example_web::{Config, Options, serve, simulator_config};
use smartcar_sim::Simulator;
use smartcar_sim::model::WebhookVersion;
use tokio::net::TcpListener;
use url::Url;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    let (_sim, running) = if std::env::var_os("SMARTCAR_CLIENT_ID").is_some() {
        let client = smartcar::Client::from_env()?;
        let redirect = client.redirect_uri().cloned().ok_or(
            "SMARTCAR_REDIRECT_URI is not set: set it to http://localhost:8000/callback and \
             register it in the Smartcar Dashboard",
        )?;
        let port = redirect.port_or_known_default().unwrap_or(8000);
        let public_url = Url::parse(&redirect.origin().ascii_serialization())?;
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
        let config = Config {
            client,
            public_url,
            // An empty value is the same as none: an empty HMAC key would let anyone sign.
            webhook_amt: std::env::var("SMARTCAR_MANAGEMENT_TOKEN")
                .ok()
                .filter(|amt| !amt.trim().is_empty()),
            webhook_id: webhook_id(),
            options: options()?,
        };
        println!("using the Smartcar platform (client id from SMARTCAR_CLIENT_ID)");
        (None, serve(listener, config))
    } else {
        let port: u16 = match std::env::var("PORT") {
            Ok(p) => p
                .parse()
                .map_err(|_| format!("PORT is not a port number: {p}"))?,
            Err(_) => 8000,
        };
        let sim = Simulator::start().await?;
        let listener = TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| {
            format!("cannot listen on 127.0.0.1:{port}: {e} (set PORT to use another port)")
        })?;
        let public_url = Url::parse(&format!("http://localhost:{port}"))?;
        let mut config = simulator_config(&sim, public_url)?;
        config.options = options()?;
        config.webhook_id = webhook_id();
        println!(
            "using the embedded Smartcar simulator at {}",
            sim.base_url()
        );
        println!("  log in as {} (any password)", sim.users()[0].email);
        let running = serve(listener, config);
        // A webhook for the "Subscribe to webhook" button, delivering to this app (verified:
        // the app answers the simulator's challenge).
        let hook = sim.add_webhook(
            &format!("{}/webhooks", running.url()),
            WebhookVersion::V3,
            "web example",
            &[
                "odometer-traveleddistance",
                "tractionbattery-stateofcharge",
                "closure-islocked",
            ],
        );
        if !sim.verify_webhook(&hook).await.unwrap_or(false) {
            eprintln!("warning: the app did not answer the simulator's webhook challenge");
        }
        (Some(sim), running)
    };
    println!("open {}/login  (Ctrl-C to stop)", running.url());
    tokio::signal::ctrl_c().await?;
    running.stop().await;
    Ok(())
}

/// `SMARTCAR_WEBHOOK_ID`, unless unset or empty.
fn webhook_id() -> Option<String> {
    std::env::var("SMARTCAR_WEBHOOK_ID")
        .ok()
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
}

/// The app's options; `SMARTCAR_EXAMPLE_COOKIE_KEY` (64 hex digits) fixes the key sealing the
/// login cookie (needed when several instances serve one site), else a random key per process.
fn options() -> Result<Options, BoxError> {
    let mut options = Options::default();
    if let Ok(hex_key) = std::env::var("SMARTCAR_EXAMPLE_COOKIE_KEY") {
        let key = hex::decode(hex_key.trim())
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or(
                "SMARTCAR_EXAMPLE_COOKIE_KEY must be 64 hex digits (32 bytes), e.g. from \
                 `openssl rand -hex 32`; unset it to use a random key per process",
            )?;
        options.cookie_key = Some(key);
    }
    if let Some(path) = std::env::var_os("SMARTCAR_EXAMPLE_WEBHOOK_DB").filter(|p| !p.is_empty()) {
        options.webhook_queue = Some(path.into());
    }
    Ok(options)
}
