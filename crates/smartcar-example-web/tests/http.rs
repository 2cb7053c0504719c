//! The web example over HTTP, without a browser: the v3 (`user_id`) flow to the vehicle table
//! and its Lock button (with the command's execution record), the Subscribe to webhook button,
//! the state and CSRF checks, and webhooks delivered by the simulator;
//! the security fixes: a v3 `user_id` accepted only for a user who connected during the
//! login, no webhook accepted without a management token, no token on an error page (against
//! a hostile token endpoint), the sealed login cookie, session expiry, limits and logout,
//! security headers, and the header and body timeouts.

use std::time::Duration;

use smartcar_example_web::{Config, Running, serve, simulator_config};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

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

    // The forged redirects consumed nothing: the victim's own redirect still signs them in.
    let r = http
        .get(&back)
        .header("cookie", &login_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/vehicles");
    let session = cookie_of(&r, "sc_session");
    assert!(
        vehicles_page(&app, &http, &session)
            .await
            .contains("id=\"vehicles\"")
    );

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

/// The `oemUpdatedAt` of the vehicle's signals, and its odometer, for the next event.
fn set_odometer(sim: &Simulator, vehicle: &str, km: f64, updated: chrono::DateTime<chrono::Utc>) {
    sim.edit_vehicle(vehicle, |v| {
        v.odometer_km = km;
        v.data_age = updated;
    })
    .unwrap();
}

/// The value cell of `signal` of `vehicle` in the page's "Latest values from webhooks" table.
fn latest_value(page: &str, vehicle: &str, signal: &str) -> Option<String> {
    let row = format!("<tr data-vehicle=\"{vehicle}\" data-signal=\"{signal}\">");
    let rest = &page[page.find(&row)? + row.len()..];
    let cell = &rest[rest.find("<td class=\"value\">")? + "<td class=\"value\">".len()..];
    Some(cell[..cell.find("</td>")?].to_owned())
}

/// Webhooks go through the SDK's durable pipeline: the simulator's deliveries are stored,
/// handled in the background, and the vehicle page shows each signal's newest value; a late
/// event with an older `oemUpdatedAt` does not overwrite it.
#[tokio::test]
async fn a_simulator_webhook_shows_its_values_on_the_vehicle_page() {
    let (sim, app, http) = setup().await;
    sim.set_webhook_retry_delays(&[]);
    let hook = sim.add_webhook(
        &format!("{}/webhooks", app.url()),
        WebhookVersion::V3,
        "latest values",
        &["odometer-traveleddistance"],
    );
    assert!(sim.verify_webhook(&hook).await.unwrap(), "VERIFY answered");
    let (back, login_cookie) = login(&sim, &app, &http, "v2").await;
    let r = http
        .get(&back)
        .header("cookie", &login_cookie)
        .send()
        .await
        .unwrap();
    let session = cookie_of(&r, "sc_session");
    let user = sim.users()[0].clone();
    let vehicle = user.vehicle_ids[0].clone();
    let now = sim.now();
    set_odometer(&sim, &vehicle, 12345.5, now - chrono::Duration::minutes(10));
    let client = smartcar::Client::builder()
        .client_id(sim.app().client_id)
        .client_secret(sim.app().client_secret)
        .origin(&sim.base_url())
        .build()
        .unwrap();
    smartcar::ApplicationSession::new(&client)
        .subscribe(&hook, &vehicle, &user.id)
        .await
        .unwrap(); // its FIRST_DELIVERY carries the odometer
    let signal = "odometer-traveleddistance";
    let mut page = String::new();
    for _ in 0..250 {
        page = vehicles_page(&app, &http, &session).await;
        if latest_value(&page, &vehicle, signal).is_some_and(|v| v.contains("12345.5")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let shown = latest_value(&page, &vehicle, signal);
    assert!(
        shown.as_deref().is_some_and(|v| v.contains("12345.5")),
        "{page}"
    );
    assert!(
        page.contains("<h2>Latest values from webhooks</h2>"),
        "{page}"
    );

    // A late event (older oemUpdatedAt): handled, but the newer value stays.
    set_odometer(&sim, &vehicle, 999.0, now - chrono::Duration::hours(2));
    let late = sim
        .trigger_vehicle_state(&hook, &vehicle, &[signal])
        .await
        .unwrap();
    assert!(late.delivered, "{late:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let page = vehicles_page(&app, &http, &session).await;
    assert_eq!(latest_value(&page, &vehicle, signal), shown, "{page}");

    // A newer one replaces it; its platform retry (same bytes) is stored once.
    set_odometer(&sim, &vehicle, 12400.25, now);
    let newer = sim
        .trigger_vehicle_state(&hook, &vehicle, &[signal])
        .await
        .unwrap();
    assert!(newer.delivered, "{newer:?}");
    let attempt = newer.attempts.last().unwrap();
    let retry = http
        .post(format!("{}/webhooks", app.url()))
        .header("sc-signature", &attempt.signature)
        .body(attempt.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 200);
    let mut page = String::new();
    for _ in 0..250 {
        page = vehicles_page(&app, &http, &session).await;
        if latest_value(&page, &vehicle, signal).is_some_and(|v| v.contains("12400.25")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        latest_value(&page, &vehicle, signal).is_some_and(|v| v.contains("12400.25")),
        "{page}"
    );
    // Listed once per event: the FIRST_DELIVERY, the late one, the newer one.
    assert_eq!(
        page.matches("<li>VEHICLE_STATE (v3)</li>").count(),
        3,
        "{page}"
    );

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

/// Serves the app against `sim` with its configuration edited by `edit`.
async fn start_app(sim: &Simulator, edit: impl FnOnce(&mut Config)) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let mut config = simulator_config(sim, url).unwrap();
    edit(&mut config);
    serve(listener, config)
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `/login?flow=…` without going through Connect: the login cookie and the `state`.
async fn start_login(app: &Running, http: &reqwest::Client, flow: &str) -> (String, String) {
    let r = http
        .get(format!("{}/login?flow={flow}", app.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = cookie_of(&r, "sc_login");
    let connect = Url::parse(&location(&r)).unwrap();
    let state = connect
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    (cookie, state)
}

fn has_cookie(response: &reqwest::Response, name: &str) -> bool {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.starts_with(&format!("{name}=")) && !v.starts_with(&format!("{name}=;")))
}

/// Bug 2: a browser that starts a v3 login and approves nothing cannot sign in as another
/// user by writing their id into the redirect, nor with a made-up id.
#[tokio::test]
async fn v3_exchange_accepts_only_a_user_who_connected_during_the_login() {
    let sim = Simulator::builder().users(2).start().await.unwrap();
    // No skew: the victim's approval below is a few milliseconds older than the attack.
    let app = start_app(&sim, |c| c.options.user_id_skew = Duration::ZERO).await;
    let http = http_client();
    let victim = sim.users()[1].clone();

    // The victim signs in honestly (the honest flow works with the check in place).
    let r = http
        .get(format!("{}/login?flow=v3", app.url()))
        .send()
        .await
        .unwrap();
    let victim_login = cookie_of(&r, "sc_login");
    let back = sim
        .approve(&location(&r), ApproveOptions::new().user(&victim.email))
        .unwrap();
    assert!(back.as_str().contains(&victim.id), "{back}");
    let r = http
        .get(back.as_str())
        .header("cookie", &victim_login)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the honest v3 login signs in");
    assert!(has_cookie(&r, "sc_session"));
    tokio::time::sleep(Duration::from_millis(30)).await;

    // The attacker starts their own login, approves nothing, and names the victim.
    let (attacker_login, state) = start_login(&app, &http, "v3").await;
    let forged = format!("{}/exchange?user_id={}&state={state}", app.url(), victim.id);
    let r = http
        .get(&forged)
        .header("cookie", &attacker_login)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!has_cookie(&r, "sc_session"), "no session for the attacker");
    let page = r.text().await.unwrap();
    assert!(page.contains("could not be verified"), "{page}");
    assert!(!page.contains(&victim.vehicle_ids[0]), "{page}");

    // A made-up id (fresh login: each login is single use).
    let (attacker_login, state) = start_login(&app, &http, "v3").await;
    let r = http
        .get(format!(
            "{}/exchange?user_id=0b5e8d4c-3f7a-4b1e-9c2d-6a8f0e1d2c3b&state={state}",
            app.url()
        ))
        .header("cookie", &attacker_login)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!has_cookie(&r, "sc_session"));

    app.stop().await;
    sim.shutdown().await;
}

/// Bug 3: with `SMARTCAR_MANAGEMENT_TOKEN=` (empty), deliveries and challenges signed with the
/// empty key are refused.
#[tokio::test]
async fn an_empty_management_token_refuses_every_delivery() {
    let sim = Simulator::start().await.unwrap();
    let app = start_app(&sim, |c| c.webhook_amt = Some(String::new())).await;
    let http = http_client();
    let url = format!("{}/webhooks", app.url());
    let delivery = r#"{"eventId":"e1","eventType":"VEHICLE_STATE","data":{"vehicle":{"id":"v"},"signals":[]},"meta":{"deliveryId":"d","deliveredAt":1}}"#;
    let challenge = r#"{"eventId":"e2","eventType":"VERIFY","data":{"challenge":"forged"},"meta":{"deliveryId":"d2","deliveredAt":1}}"#;
    for body in [delivery, challenge] {
        let r = http
            .post(&url)
            .header(
                "sc-signature",
                smartcar::webhooks::sign("", body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{body}");
        assert!(!r.text().await.unwrap().contains("challenge"));
    }
    // The simulator's own (correctly keyed) challenge is refused too: no key, no webhooks.
    let hook = sim.add_webhook(
        &url,
        WebhookVersion::V3,
        "web",
        &["odometer-traveleddistance"],
    );
    assert!(!sim.verify_webhook(&hook).await.unwrap());
    app.stop().await;
    sim.shutdown().await;
}

const ACCESS: &str = "hostile-access-token-0123456789abcdef";
const REFRESH: &str = "hostile-refresh-token-fedcba9876543210";

/// Bug 1: a token endpoint answering 200 with a body the SDK cannot decode (fresh tokens and
/// `expires_in: "bad"`): the page shows a fixed message (and Smartcar's request id when the
/// error carries one), never a token.
#[tokio::test]
async fn an_undecodable_token_answer_never_reaches_the_page() {
    use axum::routing::post;
    let mock = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mock_url = format!("http://{}", mock.local_addr().unwrap());
    let platform = axum::Router::new().route(
        "/oauth/token",
        post(|| async {
            (
                [("content-type", "application/json"), ("sc-request-id", "req-0042")],
                format!(
                    r#"{{"access_token":"{ACCESS}","token_type":"Bearer","expires_in":"bad","refresh_token":"{REFRESH}"}}"#
                ),
            )
        }),
    );
    let mock_task = tokio::spawn(async move {
        let _ = axum::serve(mock, platform).await;
    });

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_url = format!("http://{}", listener.local_addr().unwrap());
    let client = smartcar::Client::builder()
        .client_id("client-id")
        .client_secret("client-secret-0123456789")
        .redirect_uri(format!("{app_url}/callback"))
        .origin(&mock_url)
        .build()
        .unwrap();
    let app = serve(
        listener,
        Config {
            client,
            public_url: Url::parse(&app_url).unwrap(),
            webhook_amt: None,
            webhook_id: None,
            options: Default::default(),
        },
    );
    let http = http_client();
    let (cookie, state) = start_login(&app, &http, "v2").await;
    let r = http
        .get(format!("{app_url}/callback?code=abc&state={state}"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert!(!has_cookie(&r, "sc_session"));
    let page = r.text().await.unwrap();
    assert!(page.contains("did not answer as expected"), "{page}");
    assert!(
        page.contains("req-0042"),
        "the request id helps the operator: {page}"
    );
    for secret in [ACCESS, REFRESH, "hostile-", "client-secret"] {
        assert!(!page.contains(secret), "{secret} on the page: {page}");
    }
    app.stop().await;
    mock_task.abort();
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let (sim, app, http) = setup().await;
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/login"),
        ("GET", "/vehicles"),
        ("GET", "/callback?state=x&code=y"),
        ("GET", "/nowhere"),
        ("POST", "/webhooks"),
    ] {
        let url = format!("{}{path}", app.url());
        let r = match method {
            "GET" => http.get(&url),
            _ => http.post(&url),
        }
        .send()
        .await
        .unwrap();
        let h = r.headers();
        assert_eq!(
            h["content-security-policy"],
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
            "{path}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
    }
    app.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn the_login_cookie_is_sealed_and_https_cookies_are_secure_host_cookies() {
    let (sim, app, http) = setup().await;
    let (cookie, state) = start_login(&app, &http, "v2").await;
    assert!(
        !cookie.contains(&state),
        "the state is not readable in {cookie}"
    );
    // A tampered cookie is refused like no cookie at all.
    let value = cookie.split_once('=').unwrap().1;
    let last = value.chars().last().unwrap();
    let flipped = format!(
        "sc_login={}{}",
        &value[..value.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    let r = http
        .get(format!("{}/callback?code=abc&state={state}", app.url()))
        .header("cookie", &flipped)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(sim.request_count("POST", "/oauth/token"), 0);
    app.stop().await;

    // Over https: `__Host-` names and `Secure`.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = simulator_config(
        &sim,
        Url::parse(&format!("https://127.0.0.1:{port}")).unwrap(),
    )
    .unwrap();
    let app = serve(listener, config);
    let r = http
        .get(format!("http://127.0.0.1:{port}/login"))
        .send()
        .await
        .unwrap();
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.starts_with("__Host-sc_login="), "{set}");
    assert!(
        set.contains("; Secure") && set.contains("; Path=/"),
        "{set}"
    );
    app.stop().await;
    sim.shutdown().await;
}

/// A v2 sign-in through Connect (approved in-process); the session cookie.
async fn sign_in(
    sim: &Simulator,
    app: &Running,
    http: &reqwest::Client,
    old: Option<&str>,
) -> reqwest::Response {
    let (back, login_cookie) = login(sim, app, http, "v2").await;
    let cookies = match old {
        Some(old) => format!("{login_cookie}; {old}"),
        None => login_cookie,
    };
    http.get(&back)
        .header("cookie", cookies)
        .send()
        .await
        .unwrap()
}

fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned()
}

async fn signed_in(app: &Running, http: &reqwest::Client, session: &str) -> bool {
    let r = http
        .get(format!("{}/vehicles", app.url()))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    r.status() == 200
}

#[tokio::test]
async fn logout_and_a_new_login_end_the_session() {
    let (sim, app, http) = setup().await;
    let first = cookie_of(&sign_in(&sim, &app, &http, None).await, "sc_session");
    assert!(signed_in(&app, &http, &first).await);

    // Signing in again in the same browser ends the first session.
    let second = cookie_of(
        &sign_in(&sim, &app, &http, Some(&first)).await,
        "sc_session",
    );
    assert_ne!(first, second);
    assert!(
        !signed_in(&app, &http, &first).await,
        "the old session ended"
    );
    assert!(signed_in(&app, &http, &second).await);

    // Logout needs the session's CSRF token.
    let logout = format!("{}/logout", app.url());
    let r = http
        .post(&logout)
        .header("cookie", &second)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(signed_in(&app, &http, &second).await);
    let page = vehicles_page(&app, &http, &second).await;
    let r = http
        .post(&logout)
        .header("cookie", &second)
        .form(&[("csrf", csrf_of(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cleared = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cleared.starts_with("sc_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert!(!signed_in(&app, &http, &second).await, "logged out");
    app.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn sessions_expire_on_the_server_and_creation_is_rate_limited() {
    let sim = Simulator::start().await.unwrap();
    let app = start_app(&sim, |c| {
        c.options.session_ttl = Duration::from_millis(300);
        c.options.new_sessions_per_minute = 1;
    })
    .await;
    let http = http_client();
    let session = cookie_of(&sign_in(&sim, &app, &http, None).await, "sc_session");
    assert!(signed_in(&app, &http, &session).await);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !signed_in(&app, &http, &session).await,
        "expired on the server"
    );

    // A failing attempt (a forged state) does not spend the budget ...
    let (cookie, _) = start_login(&app, &http, "v2").await;
    let r = http
        .get(format!("{}/callback?code=x&state=forged", app.url()))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // ... the second sign-in of the minute is refused.
    let r = sign_in(&sim, &app, &http, None).await;
    assert_eq!(r.status(), 429);
    assert!(!has_cookie(&r, "sc_session"));
    app.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn the_lock_notice_names_only_a_vehicle_of_the_page() {
    let (sim, app, http) = setup().await;
    let session = cookie_of(&sign_in(&sim, &app, &http, None).await, "sc_session");
    let page = |q: String| {
        let (http, url, session) = (http.clone(), app.url().to_owned(), session.clone());
        async move {
            http.get(format!("{url}/vehicles?locked={q}"))
                .header("cookie", session)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let crafted = page("Your%20account%20is%20suspended".into()).await;
    assert!(!crafted.contains("id=\"notice\""), "{crafted}");
    assert!(!crafted.contains("suspended"));
    let id = sim.users()[0].vehicle_ids[0].clone();
    let real = page(id.clone()).await;
    assert!(real.contains("id=\"notice\""), "{real}");
    app.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn slow_headers_and_slow_bodies_are_cut_off() {
    let sim = Simulator::start().await.unwrap();
    let app = start_app(&sim, |c| {
        c.options.header_read_timeout = Duration::from_millis(500);
        c.options.body_timeout = Duration::from_millis(500);
    })
    .await;
    let addr = app.url().trim_start_matches("http://").to_owned();

    // Headers that never end: the connection is closed.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection stayed open");

    // A body that never ends: 408.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(
        b"POST /logout HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ncsrf=",
    )
    .await
    .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf))
        .await
        .expect("an answer before the client finished")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    app.stop().await;
    sim.shutdown().await;
}

/// A flood of logins (more than the 10 000 pending logins the server used to keep) does not
/// evict a login in progress: the login lives in the browser's sealed cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_logins_does_not_evict_a_login_in_progress() {
    let (sim, app, http) = setup().await;
    let r = http
        .get(format!("{}/login", app.url()))
        .send()
        .await
        .unwrap();
    let victim_login = cookie_of(&r, "sc_login");
    let back = sim.approve(&location(&r), ApproveOptions::new()).unwrap();

    let started = std::time::Instant::now();
    let mut flood = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let (http, url) = (http.clone(), format!("{}/login", app.url()));
        flood.spawn(async move {
            for _ in (worker..10_016).step_by(16) {
                let r = http.get(&url).send().await.unwrap();
                assert_eq!(r.status(), 303);
            }
        });
    }
    while let Some(done) = flood.join_next().await {
        done.unwrap();
    }
    eprintln!("10 016 logins in {:?}", started.elapsed());

    let r = http
        .get(back.as_str())
        .header("cookie", &victim_login)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the victim's login survived the flood");
    assert!(has_cookie(&r, "sc_session"));
    app.stop().await;
    sim.shutdown().await;
}

/// When the session table is full, new sign-ins are refused: nobody already signed in is
/// logged out by them.
#[tokio::test]
async fn a_full_session_table_refuses_new_sign_ins_instead_of_logging_users_out() {
    let sim = Simulator::start().await.unwrap();
    let app = start_app(&sim, |c| c.options.max_sessions = 1).await;
    let http = http_client();
    let first = cookie_of(&sign_in(&sim, &app, &http, None).await, "sc_session");
    let r = sign_in(&sim, &app, &http, None).await;
    assert_eq!(r.status(), 503);
    assert!(!has_cookie(&r, "sc_session"));
    assert!(
        signed_in(&app, &http, &first).await,
        "the first user is still signed in"
    );
    app.stop().await;
    sim.shutdown().await;
}

/// A v3 sign-in through Connect (approved in-process); the session cookie.
async fn sign_in_v3(sim: &Simulator, app: &Running, http: &reqwest::Client) -> String {
    let (back, login_cookie) = login(sim, app, http, "v3").await;
    let r = http
        .get(&back)
        .header("cookie", &login_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    cookie_of(&r, "sc_session")
}

/// `GET {path}` (e.g. a redirect's location) as the browser holding `session`.
async fn page_at(app: &Running, http: &reqwest::Client, session: &str, path: &str) -> String {
    let r = http
        .get(format!("{}{path}", app.url()))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

/// `POST /vehicles/{vehicle}/{action}` with `csrf`, as the browser holding `session`.
async fn post_form(
    app: &Running,
    http: &reqwest::Client,
    session: &str,
    vehicle: &str,
    action: &str,
    csrf: &str,
) -> reqwest::Response {
    http.post(format!("{}/vehicles/{vehicle}/{action}", app.url()))
        .header("cookie", session)
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap()
}

fn sdk_client(sim: &Simulator) -> smartcar::Client {
    smartcar::Client::builder()
        .client_id(sim.app().client_id)
        .client_secret(sim.app().client_secret)
        .origin(&sim.base_url())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_v3_lock_shows_the_command_execution() {
    let (sim, app, http) = setup().await;
    let session = sign_in_v3(&sim, &app, &http).await;
    let id = sim.users()[0].vehicle_ids[0].clone();
    sim.edit_vehicle(&id, |v| {
        v.locked = false;
        v.in_motion = false;
    })
    .unwrap();
    let csrf = csrf_of(&vehicles_page(&app, &http, &session).await);

    let r = post_form(&app, &http, &session, &id, "lock", &csrf).await;
    assert_eq!(r.status(), 303);
    let target = location(&r);
    let query: Vec<(String, String)> = Url::parse(&format!("{}{target}", app.url()))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let execution = query
        .iter()
        .find(|(k, _)| k == "execution")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no execution in {target}"));
    assert!(
        sim.state().world().v3.executions.contains_key(&execution),
        "the simulator recorded {execution}"
    );

    let page = page_at(&app, &http, &session, &target).await;
    let notice = page
        .lines()
        .find(|l| l.contains("id=\"notice\""))
        .unwrap_or_else(|| panic!("no notice in {page}"));
    assert!(notice.contains("Lock sent to"), "{notice}");
    assert!(
        notice.contains(&format!("<span id=\"execution\">{execution}</span>")),
        "{notice}"
    );
    assert!(
        notice.contains("<span id=\"execution-status\">SUCCESS</span> (sync)"),
        "{notice}"
    );
    assert_eq!(
        sim.request_count("GET", "/v3/vehicles/{vehicle_id}/commands/{execution_id}"),
        1,
        "the page read the execution back"
    );

    // A made-up execution id puts no words on the page: the plain lock notice.
    let crafted = page_at(
        &app,
        &http,
        &session,
        &format!("/vehicles?locked={id}&execution=Your-account-is-suspended"),
    )
    .await;
    assert!(crafted.contains("Lock command sent to"), "{crafted}");
    assert!(!crafted.contains("suspended"), "{crafted}");
    assert!(!crafted.contains("id=\"execution\""), "{crafted}");

    app.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_v3_vehicle_is_subscribed_to_the_first_webhook() {
    let (sim, app, http) = setup().await;
    sim.set_webhook_retry_delays(&[]);
    let hook = sim.add_webhook(
        &format!("{}/webhooks", app.url()),
        WebhookVersion::V3,
        "web example",
        &["odometer-traveleddistance"],
    );
    assert!(sim.verify_webhook(&hook).await.unwrap(), "VERIFY answered");
    let session = sign_in_v3(&sim, &app, &http).await;
    let user = sim.users()[0].clone();
    let id = user.vehicle_ids[0].clone();
    let page = vehicles_page(&app, &http, &session).await;
    assert_eq!(
        page.matches("class=\"subscribe\">Subscribe to webhook</button>")
            .count(),
        user.vehicle_ids.len(),
        "one button per vehicle: {page}"
    );
    assert!(page.contains(&format!("action=\"/vehicles/{id}/subscribe\"")));
    let csrf = csrf_of(&page);

    // Without the session's CSRF token, or without a session, nothing is subscribed.
    let forged = post_form(&app, &http, &session, &id, "subscribe", "not-the-token").await;
    assert_eq!(forged.status(), 403);
    let anonymous = post_form(&app, &http, "sc_session=none", &id, "subscribe", &csrf).await;
    assert_eq!(anonymous.status(), 303);
    assert_eq!(location(&anonymous), "/");
    assert!(sim.state().world().subscriptions.is_empty());

    let r = post_form(&app, &http, &session, &id, "subscribe", &csrf).await;
    assert_eq!(r.status(), 303);
    let target = location(&r);
    assert_eq!(target, format!("/vehicles?subscribed={id}&webhook={hook}"));

    // The platform has the subscription: for this webhook, vehicle and user.
    let subscriptions = smartcar::ApplicationSession::new(&sdk_client(&sim))
        .subscriptions(Some(&hook), Some(&id), Some(&user.id))
        .await
        .unwrap();
    assert_eq!(subscriptions.len(), 1, "{subscriptions:?}");

    let page = page_at(&app, &http, &session, &target).await;
    assert!(
        page.contains("id=\"subscribed\">Subscribed to webhook web example for"),
        "{page}"
    );

    // The subscription's first delivery reaches the app and is listed.
    let mut listed = false;
    for _ in 0..100 {
        if vehicles_page(&app, &http, &session)
            .await
            .contains("<li>VEHICLE_STATE (v3)</li>")
        {
            listed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(listed, "{:?}", sim.webhook_deliveries());

    // A made-up webhook id names nothing.
    let crafted = page_at(
        &app,
        &http,
        &session,
        &format!("/vehicles?subscribed={id}&webhook=Your-account-is-suspended"),
    )
    .await;
    assert!(!crafted.contains("id=\"subscribed\""), "{crafted}");
    assert!(!crafted.contains("suspended"), "{crafted}");

    app.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn the_configured_webhook_is_the_one_subscribed() {
    let sim = Simulator::start().await.unwrap();
    let first = sim.add_webhook(
        "http://127.0.0.1:9/first",
        WebhookVersion::V3,
        "first",
        &["odometer-traveleddistance"],
    );
    let chosen = sim.add_webhook(
        "http://127.0.0.1:9/chosen",
        WebhookVersion::V3,
        "",
        &["odometer-traveleddistance"],
    );
    let configured = chosen.clone();
    let app = start_app(&sim, |c| c.webhook_id = Some(configured)).await;
    let http = http_client();
    let session = sign_in_v3(&sim, &app, &http).await;
    let id = sim.users()[0].vehicle_ids[0].clone();
    let csrf = csrf_of(&vehicles_page(&app, &http, &session).await);
    let r = post_form(&app, &http, &session, &id, "subscribe", &csrf).await;
    assert_eq!(r.status(), 303);
    let subscriptions: Vec<_> = sim
        .state()
        .world()
        .subscriptions
        .values()
        .map(|s| (s.webhook_id.clone(), s.vehicle_id.clone()))
        .collect();
    assert_eq!(subscriptions, [(chosen.clone(), id.clone())]);
    assert_ne!(first, chosen);
    // A webhook without a name is shown by its id.
    let page = page_at(&app, &http, &session, &location(&r)).await;
    assert!(
        page.contains(&format!("Subscribed to webhook {chosen} for")),
        "{page}"
    );
    app.stop().await;

    // A configured id that is not a webhook of the application: a clear page.
    let app = start_app(&sim, |c| {
        c.webhook_id = Some("0b5e8d4c-3f7a-4b1e-9c2d-6a8f0e1d2c3b".into())
    })
    .await;
    let session = sign_in_v3(&sim, &app, &http).await;
    let csrf = csrf_of(&vehicles_page(&app, &http, &session).await);
    let r = post_form(&app, &http, &session, &id, "subscribe", &csrf).await;
    assert_eq!(r.status(), 404);
    let page = r.text().await.unwrap();
    assert!(page.contains("SMARTCAR_WEBHOOK_ID"), "{page}");
    assert!(page.contains("Smartcar Dashboard"), "{page}");
    assert_eq!(sim.state().world().subscriptions.len(), 1);
    app.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn subscribing_without_a_webhook_says_to_create_one() {
    let (sim, app, http) = setup().await;
    let session = sign_in_v3(&sim, &app, &http).await;
    let id = sim.users()[0].vehicle_ids[0].clone();
    let csrf = csrf_of(&vehicles_page(&app, &http, &session).await);
    let r = post_form(&app, &http, &session, &id, "subscribe", &csrf).await;
    assert_eq!(r.status(), 404);
    let page = r.text().await.unwrap();
    assert!(page.contains("No webhook to subscribe to"), "{page}");
    assert!(
        page.contains("Create one in the Smartcar Dashboard"),
        "{page}"
    );
    assert!(sim.state().world().subscriptions.is_empty());

    // A v2 session has no Subscribe button, and the route refuses it.
    sim.add_webhook(
        "http://127.0.0.1:9/",
        WebhookVersion::V3,
        "web example",
        &["odometer-traveleddistance"],
    );
    let v2 = cookie_of(&sign_in(&sim, &app, &http, None).await, "sc_session");
    let page = vehicles_page(&app, &http, &v2).await;
    assert!(!page.contains("Subscribe to webhook"), "{page}");
    let r = post_form(&app, &http, &v2, &id, "subscribe", &csrf_of(&page)).await;
    assert_eq!(r.status(), 400);
    assert!(sim.state().world().subscriptions.is_empty());
    app.stop().await;
    sim.shutdown().await;
}
