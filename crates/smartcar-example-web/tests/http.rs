//! The web example over HTTP, without a browser: the v3 (`user_id`) flow to the vehicle table
//! and its Lock button, the state and CSRF checks, and webhooks delivered by the simulator.

use smartcar_sim::model::WebhookVersion;
use smartcar_sim::{ApproveOptions, Simulator};

async fn setup() -> (Simulator, smartcar_example_web::Running, reqwest::Client) {
    let sim = Simulator::start().await.unwrap();
    let app =
        smartcar_example_web::start_on_simulator(&sim, "127.0.0.1:0".parse().unwrap(), "127.0.0.1")
            .await
            .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    (sim, app, http)
}

/// `name=value` of the `Set-Cookie` named `name`.
fn cookie_of(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_owned()
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The `/vehicles` page as the browser holding `session` sees it.
async fn vehicles_page(
    app: &smartcar_example_web::Running,
    http: &reqwest::Client,
    session: &str,
) -> String {
    http.get(format!("{}/vehicles", app.url()))
        .header("cookie", session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `/login?flow=…` → Connect, approved in-process; returns the redirect back and the cookie.
async fn login(
    sim: &Simulator,
    app: &smartcar_example_web::Running,
    http: &reqwest::Client,
    flow: &str,
) -> (String, String) {
    let r = http
        .get(format!("{}/login?flow={flow}", app.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let login_cookie = cookie_of(&r, "sc_login");
    let connect = location(&r);
    assert!(connect.starts_with(&sim.base_url()), "{connect}");
    let back = sim.approve(&connect, ApproveOptions::new()).unwrap();
    (back.to_string(), login_cookie)
}

#[tokio::test]
async fn v3_flow_shows_the_table_and_locks_with_the_csrf_token() {
    let (sim, app, http) = setup().await;
    let (back, login_cookie) = login(&sim, &app, &http, "v3").await;
    assert!(
        back.starts_with(&format!("{}/exchange?", app.url())),
        "{back}"
    );
    assert!(back.contains("user_id="), "{back}");

    let r = http
        .get(&back)
        .header("cookie", &login_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/vehicles");
    let session = cookie_of(&r, "sc_session");

    // A replay of the same redirect is refused: the login is single use.
    let replay = http
        .get(&back)
        .header("cookie", &login_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400);

    let page = vehicles_page(&app, &http, &session).await;
    assert!(page.contains("Vehicle API v3"), "{page}");
    let user = sim.users()[0].clone();
    for id in &user.vehicle_ids {
        let v = sim.vehicles().into_iter().find(|v| &v.id == id).unwrap();
        // v3 spells makes as brands ("Tesla"), v2 in capitals ("TESLA").
        let name = format!("{} {} {}", v.year, v.make, v.model).to_lowercase();
        assert!(
            page.to_lowercase().contains(&name),
            "{name} missing from {page}"
        );
        assert!(page.contains(&v.vin), "VIN {} missing from {page}", v.vin);
    }
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let id = user.vehicle_ids[0].clone();
    sim.edit_vehicle(&id, |v| {
        v.locked = false;
        v.in_motion = false;
    })
    .unwrap();
    let lock_url = format!("{}/vehicles/{id}/lock", app.url());

    // Without the session's CSRF token, nothing is sent to the car.
    let forged = http
        .post(&lock_url)
        .header("cookie", &session)
        .form(&[("csrf", "not-the-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(!sim.state().world().vehicles[&id].locked);

    let ok = http
        .post(&lock_url)
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    assert!(
        sim.state().world().vehicles[&id].locked,
        "locked through v3"
    );

    app.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_redirect_without_this_browsers_login_is_refused_before_any_exchange() {
    let (sim, app, http) = setup().await;
    let (back, login_cookie) = login(&sim, &app, &http, "v2").await;
    assert!(
        back.starts_with(&format!("{}/callback?", app.url())),
        "{back}"
    );

    // Another browser (no login cookie), or a forged state: refused, the code never exchanged.
    let no_cookie = http.get(&back).send().await.unwrap();
    assert_eq!(no_cookie.status(), 400);
    let forged = back.replace("state=", "state=x");
    let r = http
        .get(&forged)
        .header("cookie", &login_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("not valid"));
    assert_eq!(sim.request_count("POST", "/oauth/token"), 0);

    // Nothing to see without a session.
    let r = http
        .get(format!("{}/vehicles", app.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/");

    app.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn simulator_webhooks_are_verified_and_shown() {
    let (sim, app, http) = setup().await;
    sim.set_webhook_retry_delays(&[]);
    let url = format!("{}/webhooks", app.url());

    // The simulator's verification challenge is answered.
    let hook = sim.add_webhook(
        &url,
        WebhookVersion::V3,
        "web example",
        &["odometer-traveleddistance"],
    );
    assert!(sim.verify_webhook(&hook).await.unwrap(), "VERIFY answered");

    // The user connects (granting read_odometer), then the app subscribes the vehicle.
    let (back, login_cookie) = login(&sim, &app, &http, "v2").await;
    let r = http
        .get(&back)
        .header("cookie", &login_cookie)
        .send()
        .await
        .unwrap();
    let session = cookie_of(&r, "sc_session");

    // A signed delivery is accepted and listed on the vehicle page.
    let user = sim.users()[0].clone();
    let vehicle = user.vehicle_ids[0].clone();
    let client = smartcar::Client::builder()
        .client_id(sim.app().client_id)
        .client_secret(sim.app().client_secret)
        .origin(&sim.base_url())
        .build()
        .unwrap();
    smartcar::ApplicationSession::new(&client)
        .subscribe(&hook, &vehicle, &user.id)
        .await
        .unwrap();
    let outcome = sim
        .trigger_vehicle_state(&hook, &vehicle, &["odometer-traveleddistance"])
        .await
        .unwrap();
    assert!(outcome.delivered, "{outcome:?}");

    // Unsigned or wrongly signed: 401, not recorded.
    let body = r#"{"eventId":"e","eventType":"VEHICLE_STATE","data":{"vehicle":{"id":"v"},"signals":[]},"meta":{"deliveryId":"d","deliveredAt":1}}"#;
    let unsigned = http.post(&url).body(body).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    let wrong = http
        .post(&url)
        .header(
            "sc-signature",
            smartcar::webhooks::sign("not-the-amt", body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let page = vehicles_page(&app, &http, &session).await;
    // Every distinct event the simulator delivered, once (retries share an event id).
    let mut delivered: Vec<String> = sim
        .webhook_deliveries()
        .into_iter()
        .filter(|d| d.delivered && d.event_type == "VEHICLE_STATE")
        .filter_map(|d| d.event_id)
        .collect();
    delivered.sort();
    delivered.dedup();
    assert!(!delivered.is_empty());
    let listed = page.matches("<li>VEHICLE_STATE (v3)</li>").count();
    assert_eq!(listed, delivered.len(), "{page}");

    app.stop().await;
    sim.shutdown().await;
}

#[test]
fn html_is_escaped() {
    assert_eq!(
        smartcar_example_web::esc(r#"<a href="x">'&'</a>"#),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
}
