//! The whole Smartcar flow against the embedded simulator, no credentials needed:
//!
//! ```sh
//! cargo run -p smartcar-sdk --example quickstart
//! ```
//!
//! 1. start the simulator in-process (127.0.0.1, a free port);
//! 2. build the Connect URL and approve it as the simulated user;
//! 3. exchange the code for tokens and keep them in a token store;
//! 4. list the user's vehicles and print what each reports;
//! 5. lock one, move the clock two hours and watch the session refresh its token;
//! 6. the machine-to-machine (v3) flow: `user_id` redirect, application token, connections,
//!    signals.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smartcar::{
    ApplicationSession, Client, MemoryTokenStore, Permission, Redirect, Session, TokenStore,
};
use smartcar_sim::{ApproveOptions, Simulator};

fn step(n: u32, what: &str) {
    println!("\n[{n}] {what}");
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("\nerror: {e}");
        if let Some(e) = e.downcast_ref::<smartcar::Error>() {
            eprintln!("kind: {:?}", e.kind());
            if let Some(id) = e.request_id() {
                eprintln!("Smartcar request id (quote it to support): {id}");
            }
        }
        std::process::exit(1);
    }
}

async fn run() -> Result<(), BoxError> {
    let started = Instant::now();
    step(1, "starting the Smartcar simulator");
    let sim = Simulator::start().await?;
    let app = sim.app();
    println!(
        "    listening on {} (every Smartcar host on one port)",
        sim.base_url()
    );

    let client = Client::builder()
        .client_id(app.client_id.clone())
        .client_secret(app.client_secret.clone())
        .redirect_uri("http://localhost:8000/callback")
        .origin(&sim.base_url())
        // The SDK follows the simulator's clock, which the demo moves forward.
        .clock({
            let state = sim.state().clone();
            move || state.now()
        })
        .build()?;

    step(2, "Smartcar Connect");
    let auth = client
        .authorize()
        .scopes([
            Permission::ReadVehicleInfo,
            Permission::ReadVin,
            Permission::ReadOdometer,
            Permission::ReadBattery,
            Permission::ReadFuel,
            Permission::ReadLocation,
            Permission::ReadSecurity,
            Permission::ControlSecurity,
        ])
        .build()?;
    println!("    Connect URL: {}", auth.url);
    let redirect = sim.approve(auth.url.as_str(), ApproveOptions::new())?;
    println!(
        "    approved as {}; redirected to {}",
        sim.users()[0].email,
        redirect.path()
    );

    step(3, "exchanging the authorization code");
    let Redirect::Code(code) = client.handle_redirect(redirect.as_str(), &auth.state)? else {
        return Err("Connect did not return an authorization code".into());
    };
    let tokens = client.exchange_code(&code).await?;
    println!("    access token valid until {}", tokens.expires_at);
    let store: Arc<MemoryTokenStore> = Arc::new(MemoryTokenStore::new());
    let session = Session::create(&client, store.clone(), "demo-user", tokens).await?;

    step(4, "the user's vehicles");
    let user = session.user().await?;
    println!("    Smartcar user {}", user.data.id);
    let ids = session.vehicle_ids(None, None).await?;
    println!(
        "    {:<28} {:<17} {:>12} {:>14} {:>20} {:>7}",
        "vehicle", "VIN", "odometer km", "battery/fuel", "location", "locked"
    );
    for id in &ids.data.vehicles {
        let v = session.vehicle(id.clone())?;
        let a = v.attributes().await?.data;
        let vin = v.vin().await?.data.vin;
        let odo = v.odometer().await?.data.distance;
        let energy = match v.battery().await {
            Ok(b) => format!("{:.0}% battery", b.data.percent_remaining * 100.0),
            Err(_) => match v.fuel().await {
                Ok(f) => f
                    .data
                    .percent_remaining
                    .map(|p| format!("{:.0}% fuel", p * 100.0))
                    .unwrap_or_else(|| "fuel n/a".into()),
                Err(e) => format!("n/a ({:?})", e.kind()),
            },
        };
        let loc = v.location().await?.data;
        let locked = v.lock_status().await?.data.is_locked;
        println!(
            "    {:<28} {:<17} {:>12.1} {:>14} {:>20} {:>7}",
            format!("{} {} {}", a.year, a.make, a.model),
            vin,
            odo,
            energy,
            format!("{:.4}, {:.4}", loc.latitude, loc.longitude),
            locked
        );
    }

    let first = session.vehicle(ids.data.vehicles[0].clone())?;
    step(5, "lock, then token refresh");
    first.lock().await?;
    println!("    locked: {}", first.lock_status().await?.data.is_locked);
    let before = store.load("demo-user").await?.map(|t| t.expires_at);
    sim.advance(Duration::from_secs(2 * 3600));
    println!("    (simulated clock moved 2 hours ahead)");
    first.odometer().await?;
    let after = store.load("demo-user").await?.map(|t| t.expires_at);
    println!(
        "    refreshed {} time(s); token expiry {:?} -> {:?}",
        sim.refresh_count(),
        before.map(|t| t.to_rfc3339()),
        after.map(|t| t.to_rfc3339())
    );

    step(6, "machine-to-machine flow (Vehicle API v3)");
    let m2m = client
        .authorize()
        .redirect_uri("http://localhost:8000/exchange");
    let m2m = m2m
        .scopes([Permission::ReadVehicleInfo, Permission::ReadOdometer])
        .build()?;
    let redirect = sim.approve(m2m.url.as_str(), ApproveOptions::new())?;
    let Redirect::UserId(user_id) = client.handle_redirect(redirect.as_str(), &m2m.state)? else {
        return Err("Connect did not return a user_id".into());
    };
    println!("    Connect returned user_id {user_id}");
    let app_session = ApplicationSession::new(&client);
    let user = app_session.user(user_id)?;
    let vehicle_ids = user.vehicle_ids().await?;
    println!(
        "    {} connected vehicle(s) for this user",
        vehicle_ids.len()
    );
    if let Some(id) = vehicle_ids.first() {
        let vehicle = user.vehicle(id.clone())?;
        let info = vehicle.info().await?.data.attributes;
        let signals = vehicle.signals().await?;
        println!(
            "    {} {} {}: {} signals, for example:",
            info.year,
            info.make,
            info.model,
            signals.len()
        );
        for s in signals.iter().filter(|s| s.number().is_some()).take(5) {
            println!(
                "      {:<40} {} {}",
                s.code,
                s.number().unwrap_or_default(),
                s.unit().unwrap_or("")
            );
        }
        let exec = vehicle.unlock().await?;
        println!("    v3 unlock: {:?}", exec.data.attributes.status.value);
    }

    sim.shutdown().await;
    println!("\ndone in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
