//! Every kind of injected fault, over real HTTP.

use std::time::{Duration, Instant};

use serde_json::Value;
use smartcar_sim::testing::{client, code_for, exchange, refresh};
use smartcar_sim::{Fault, Simulator};

async fn get(sim: &Simulator, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", sim.base_url()))
        .send()
        .await
        .unwrap()
}

async fn client_credentials(sim: &Simulator) -> reqwest::Response {
    let app = sim.app();
    client()
        .post(format!("{}/oauth2/token", sim.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn rate_limit_with_and_without_retry_after_for_the_next_n_requests() {
    let sim = Simulator::start().await.unwrap();
    let id = sim
        .faults()
        .inject(Fault::rate_limit(30))
        .on("/healthz")
        .times(2);
    for _ in 0..2 {
        let r = get(&sim, "/healthz").await;
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "30");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["type"], "RATE_LIMIT");
        assert_eq!(body["code"], "VEHICLE");
        assert_eq!(body["statusCode"], 429);
        assert_eq!(body["resolution"]["type"], "RETRY_LATER");
    }
    assert_eq!(get(&sim, "/healthz").await.status(), 200);
    assert_eq!(sim.faults().hits(id), 2);
    assert_eq!(sim.faults().active(), 0);

    sim.faults()
        .inject(Fault::rate_limit_without_retry_after())
        .on("/healthz")
        .once();
    let r = get(&sim, "/healthz").await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_none());
}

#[tokio::test]
async fn server_errors_carry_the_v2_body_of_their_type() {
    let sim = Simulator::start().await.unwrap();
    for (status, kind, code) in [
        (500, "SERVER", "INTERNAL"),
        (502, "UPSTREAM", "UNKNOWN_ISSUE"),
        (503, "SERVER", "INTERNAL"),
        (504, "UPSTREAM", "NO_RESPONSE"),
    ] {
        sim.faults()
            .inject(Fault::status(status))
            .on("/healthz")
            .once();
        let r = get(&sim, "/healthz").await;
        assert_eq!(r.status().as_u16(), status);
        assert_eq!(r.headers()["content-type"], "application/json");
        let request_id = r.headers()["sc-request-id"].to_str().unwrap().to_owned();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["type"], kind, "{status}");
        assert_eq!(body["code"], code, "{status}");
        assert_eq!(body["statusCode"], status);
        assert_eq!(body["requestId"], request_id.as_str());
    }
}

#[tokio::test]
async fn vehicle_errors_by_path_pattern_and_vehicle_in_v2_and_v3_shapes() {
    let sim = Simulator::start().await.unwrap();
    let vehicles = sim.users()[0].vehicle_ids.clone();
    sim.faults()
        .inject(Fault::vehicle_state("ASLEEP"))
        .on("/v2.0/vehicles/{vehicle_id}/odometer")
        .method("GET")
        .vehicle(&vehicles[0])
        .always();
    let r = get(&sim, &format!("/v2.0/vehicles/{}/odometer", vehicles[0])).await;
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "VEHICLE_STATE");
    assert_eq!(body["code"], "ASLEEP");
    assert_eq!(
        body["description"],
        "The vehicle is in a sleep state and temporarily unable to perform your request."
    );
    // Another vehicle, another path or another method is not affected.
    let r = get(&sim, &format!("/v2.0/vehicles/{}/odometer", vehicles[1])).await;
    assert_ne!(r.status(), 409);
    let r = client()
        .post(format!(
            "{}/v2.0/vehicles/{}/odometer",
            sim.base_url(),
            vehicles[0]
        ))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 409);

    sim.faults().clear();
    sim.faults()
        .inject(Fault::upstream("NO_RESPONSE"))
        .on("/v3/**")
        .once();
    let r = get(&sim, &format!("/v3/vehicles/{}/signals", vehicles[0])).await;
    assert_eq!(r.status(), 502);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["status"], "502");
    assert_eq!(body["errors"][0]["code"], "NO_RESPONSE");
    assert_eq!(body["errors"][0]["type"], "UPSTREAM");

    sim.faults()
        .inject(Fault::compatibility("VEHICLE_NOT_CAPABLE"))
        .on("/v2.0/vehicles/*/fuel")
        .once();
    let r = get(&sim, &format!("/v2.0/vehicles/{}/fuel", vehicles[1])).await;
    assert_eq!(r.status(), 501);
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "VEHICLE_NOT_CAPABLE"
    );
}

#[tokio::test]
async fn html_pages_empty_bodies_and_wrong_content_types() {
    let sim = Simulator::start().await.unwrap();
    sim.faults().inject(Fault::html_502()).on("/healthz").once();
    let r = get(&sim, "/healthz").await;
    assert_eq!(r.status(), 502);
    assert_eq!(r.headers()["content-type"], "text/html");
    assert!(r.text().await.unwrap().contains("<h1>502 Bad Gateway</h1>"));

    sim.faults()
        .inject(Fault::empty_body(503))
        .on("/healthz")
        .once();
    let r = get(&sim, "/healthz").await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("content-type").is_none());
    assert_eq!(r.text().await.unwrap(), "");

    sim.faults()
        .inject(Fault::wrong_content_type())
        .on("/oauth2/token")
        .once();
    let r = client_credentials(&sim).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(body["token_type"], "Bearer");
}

#[tokio::test]
async fn truncated_json_and_unknown_enum_values_alter_the_real_response() {
    let sim = Simulator::start().await.unwrap();
    let whole = client_credentials(&sim).await.text().await.unwrap();
    sim.faults()
        .inject(Fault::truncated_json())
        .on("/oauth2/token")
        .once();
    let r = client_credentials(&sim).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let cut = r.text().await.unwrap();
    assert_eq!(cut.len(), whole.len() / 2);
    assert!(serde_json::from_str::<Value>(&cut).is_err());

    sim.faults()
        .inject(Fault::unknown_enum())
        .on("/v2.0/no-such-path")
        .once();
    let r = get(&sim, "/v2.0/no-such-path").await;
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["type"], "SOMETHING_NEW",
        "the error type is an open enum"
    );
    assert_eq!(body["code"], "PATH", "codes are free strings");
}

#[tokio::test]
async fn delays_and_stalls_take_real_time() {
    let sim = Simulator::start().await.unwrap();
    sim.faults()
        .inject(Fault::delay(Duration::from_millis(300)))
        .on("/healthz")
        .once();
    let started = Instant::now();
    let r = get(&sim, "/healthz").await;
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    let whole = client_credentials(&sim).await.text().await.unwrap();
    sim.faults()
        .inject(Fault::stall(Duration::from_millis(400)))
        .on("/oauth2/token")
        .once();
    let started = Instant::now();
    let r = client_credentials(&sim).await;
    let headers_after = started.elapsed();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(
        headers_after < Duration::from_millis(400),
        "the head and half the body come first"
    );
    assert_eq!(body.len(), whole.len());
    assert!(serde_json::from_str::<Value>(&body).is_ok());
}

#[tokio::test]
async fn huge_bodies_and_connection_resets() {
    let sim = Simulator::start().await.unwrap();
    sim.faults()
        .inject(Fault::huge_body())
        .on("/healthz")
        .once();
    let r = get(&sim, "/healthz").await;
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap();
    assert_eq!(body.len(), 10 * 1024 * 1024);
    assert!(body.starts_with(b"{\"data\":\"aaa"));
    assert!(body.ends_with(b"aaa\"}"));

    sim.faults()
        .inject(Fault::connection_reset())
        .on("/healthz")
        .once();
    let result = async {
        let r = client()
            .get(format!("{}/healthz", sim.base_url()))
            .send()
            .await?;
        r.bytes().await
    }
    .await;
    assert!(result.is_err(), "{result:?}");
    // The server is still up.
    assert_eq!(get(&sim, "/healthz").await.status(), 200);
}

#[tokio::test]
async fn a_failing_refresh_then_a_successful_retry() {
    let sim = Simulator::start().await.unwrap();
    let (_, tokens) = exchange(&sim, &code_for(&sim, "")).await;
    let r1 = tokens["refresh_token"].as_str().unwrap().to_owned();
    sim.faults()
        .inject(Fault::status(500))
        .on("/oauth/token")
        .method("POST")
        .once();
    let (status, body) = refresh(&sim, &r1).await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        serde_json::json!({"error": "server_error", "error_description": "An internal error occurred."})
    );
    assert_eq!(
        sim.refresh_count(),
        0,
        "the fault answered before the handler"
    );
    sim.faults()
        .inject(Fault::rate_limit(2))
        .on("/oauth/token")
        .once();
    let (status, body) = refresh(&sim, &r1).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"], "temporarily_unavailable");
    let (status, _) = refresh(&sim, &r1).await;
    assert_eq!(status, 200);
    assert_eq!(sim.refresh_count(), 1);
}

#[tokio::test]
async fn probabilities_are_seeded_and_reproducible() {
    async fn pattern(seed: u64) -> Vec<u16> {
        let sim = Simulator::builder().seed(seed).start().await.unwrap();
        let id = sim
            .faults()
            .inject(Fault::status(503))
            .on("/healthz")
            .with_probability(0.3)
            .always();
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(get(&sim, "/healthz").await.status().as_u16());
        }
        let failures = statuses.iter().filter(|s| **s == 503).count() as u64;
        assert_eq!(sim.faults().hits(id), failures);
        assert!((4..=20).contains(&failures), "{failures} of 40");
        statuses
    }
    assert_eq!(pattern(5).await, pattern(5).await);
    assert_ne!(pattern(5).await, pattern(6).await);
}

/// `Fault::Garbage` puts bytes on the socket that are not HTTP (a TLS alert record), then
/// closes; the next connection is served normally. `Fault::ExtraFields` adds an undocumented
/// field to every object of the real body.
#[tokio::test]
async fn garbage_on_the_socket_and_extra_fields() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let sim = Simulator::start().await.unwrap();
    sim.faults().inject(Fault::garbage()).on("/healthz").once();
    let mut socket = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut received = Vec::new();
    // The server closes after the garbage (a reset instead of a clean close is as good).
    let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut received))
        .await
        .expect("the connection is closed");
    assert!(received.starts_with(b"\x15\x03\x01"), "{received:?}");
    assert!(!received.windows(4).any(|w| w == b"HTTP"), "{received:?}");
    assert_eq!(get(&sim, "/healthz").await.status(), 200);

    // Through an HTTP client: an error, not a response.
    sim.faults().inject(Fault::garbage()).on("/healthz").once();
    let result = client()
        .get(format!("{}/healthz", sim.base_url()))
        .send()
        .await;
    assert!(result.is_err(), "{result:?}");

    sim.faults()
        .inject(Fault::extra_fields())
        .on("/oauth2/token")
        .once();
    let body: Value = client_credentials(&sim).await.json().await.unwrap();
    assert!(body["access_token"].is_string(), "{body}");
    assert_eq!(
        body["x_simulator_extra"]["added"],
        Value::Bool(true),
        "{body}"
    );
}
