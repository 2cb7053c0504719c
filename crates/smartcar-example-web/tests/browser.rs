//! The web example in a real browser: headless Chromium (Debian's `chromium`, driven by
//! `playwright-core` through `browser/flow.mjs`) opens `/login`, lands on the simulator's
//! Connect page, chooses one vehicle, approves, lands on the vehicle table, presses Lock, then
//! signs out, goes through Connect again and denies.
//!
//! Prerequisites are installed by `cargo xtask test` (`xtask/src/setup/browser.rs`). Without
//! them the test is skipped with a message, except under `CI=true`, where it fails.
//! Screenshots: `<target dir>/browser/vehicles.png` (and `-locked`, `-denied`).

use std::time::Instant;

use serde_json::Value;
use smartcar_sim::Simulator;

mod common;

fn row<'a>(rows: &'a Value, id: &str) -> &'a Value {
    rows.as_array()
        .expect("rows")
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no row for {id} in {rows}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_approve_table_lock_and_deny_in_chromium() {
    if !common::browser_available("browser test") {
        return;
    }

    let sim = Simulator::start().await.expect("start the simulator");
    let user = sim.users()[0].clone();
    // The user's second vehicle (so that choosing one is visible), unlocked and parked so that
    // the Lock button has something to do.
    let chosen = user
        .vehicle_ids
        .get(1)
        .or(user.vehicle_ids.first())
        .expect("the simulated user has vehicles")
        .clone();
    let vin = sim
        .edit_vehicle(&chosen, |v| {
            v.locked = false;
            v.in_motion = false;
            v.vin.clone()
        })
        .expect("chosen vehicle");
    let app = smartcar_example_web::start_on_simulator(
        &sim,
        "127.0.0.1:0".parse().expect("address"),
        "127.0.0.1",
    )
    .await
    .expect("start the web example");

    let dir = common::target_dir().join("browser");
    std::fs::create_dir_all(&dir).expect("create the screenshot directory");
    let screenshot = dir.join("vehicles.png");
    let _ = std::fs::remove_file(&screenshot);

    let started = Instant::now();
    let (url, id, shot) = (app.url().to_owned(), chosen.clone(), screenshot.clone());
    let seen = tokio::task::spawn_blocking(move || {
        common::run_node("flow.mjs", &[&url, &id, &shot.to_string_lossy()])
    })
    .await
    .expect("browser thread");
    eprintln!(
        "browser flow took {:.1} s; screenshot: {}",
        started.elapsed().as_secs_f64(),
        screenshot.display()
    );

    // /login sent the browser to the simulator's Connect page, which offered the user's cars.
    let connect = seen["connectUrl"].as_str().expect("connect url");
    assert!(
        connect.starts_with(&format!("{}/oauth/authorize?", sim.base_url())),
        "{connect}"
    );
    assert!(connect.contains("state="), "{connect}");
    let offered: Vec<&str> = seen["offered"]
        .as_array()
        .expect("offered")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        offered,
        user.vehicle_ids
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );

    // The table shows exactly the chosen vehicle, with the simulator's VIN, unlocked.
    let before = &seen["before"];
    assert_eq!(before.as_array().map(Vec::len), Some(1), "{before}");
    let car = sim
        .vehicles()
        .into_iter()
        .find(|v| v.id == chosen)
        .expect("vehicle");
    let r = row(before, &chosen);
    assert_eq!(r["vin"], vin.as_str());
    assert_eq!(
        r["name"],
        format!("{} {} {}", car.year, car.make, car.model).as_str()
    );
    assert_eq!(r["doors"], "unlocked");
    assert!(
        r["odometer"].as_str().is_some_and(|o| o.ends_with(" km")),
        "{r}"
    );

    // Pressing Lock locked the simulated car, and the table read it back.
    assert_eq!(row(&seen["after"], &chosen)["doors"], "locked");
    assert!(
        sim.state().world().vehicles[&chosen].locked,
        "the simulator's vehicle is locked"
    );
    assert_eq!(
        sim.request_count("POST", "/v2.0/vehicles/{vehicle_id}/security"),
        1
    );

    // Sign out ended the session: the cookie is gone and the table sends back home.
    assert_eq!(seen["afterLogout"], format!("{}/", app.url()).as_str());
    assert!(
        !seen["cookiesAfterLogout"]
            .to_string()
            .contains("sc_session"),
        "{}",
        seen["cookiesAfterLogout"]
    );

    // Tokens stay server-side: no access or refresh token in the page or the cookies.
    let html = seen["html"].as_str().expect("html");
    let cookies = seen["cookies"].to_string();
    let tokens: Vec<String> = sim.state().world().access_tokens.keys().cloned().collect();
    assert!(!tokens.is_empty(), "the simulator issued an access token");
    for token in &tokens {
        assert!(
            !html.contains(token.as_str()),
            "an access token is in the page"
        );
        assert!(
            !cookies.contains(token.as_str()),
            "an access token is in a cookie"
        );
    }

    // Deny: a friendly page, a way to try again.
    let denied = &seen["denied"];
    assert_eq!(denied["title"], "No vehicle connected");
    assert!(
        denied["message"]
            .as_str()
            .is_some_and(|m| m.contains("chose not to share")),
        "{denied}"
    );
    assert_eq!(denied["retry"], "/login");

    // The screenshot is a PNG of some substance.
    let png = std::fs::read(&screenshot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(png.len() > 5_000, "a screenshot of {} bytes", png.len());

    app.stop().await;
    sim.shutdown().await;
}
