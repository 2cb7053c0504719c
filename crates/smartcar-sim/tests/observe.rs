//! The request log, the counters, the handle's accessors and graceful shutdown.

use std::time::Duration;

use smartcar_sim::testing::{authorize_url, client, code_for, exchange, location};
use smartcar_sim::{Fault, Simulator};

#[tokio::test]
async fn every_response_has_a_request_id() {
    let sim = Simulator::start().await.unwrap();
    for path in ["/healthz", "/nope", "/oauth/token"] {
        let r = client()
            .get(format!("{}{path}", sim.base_url()))
            .send()
            .await
            .unwrap();
        let id = r.headers()["sc-request-id"].to_str().unwrap();
        assert_eq!(id.len(), 36, "{path}");
    }
}

#[tokio::test]
async fn the_log_records_exchanges_with_secrets_masked() {
    let sim = Simulator::start().await.unwrap();
    let app = sim.app();
    // Connect redirect: the code in Location is masked.
    let r = client()
        .get(authorize_url(&sim, "sim_auto_approve=true"))
        .send()
        .await
        .unwrap();
    let code = smartcar_sim::testing::param(&location(&r), "code").unwrap();
    let (status, tokens) = exchange(&sim, &code).await;
    assert_eq!(status, 200);

    let log = sim.requests();
    assert_eq!(log.len(), 2);
    let connect = &log[0];
    assert_eq!(connect.seq, 1);
    assert_eq!(connect.method, "GET");
    assert_eq!(connect.path, "/oauth/authorize");
    assert_eq!(connect.template.as_deref(), Some("/oauth/authorize"));
    assert!(
        connect
            .query
            .as_deref()
            .unwrap()
            .contains("sim_auto_approve=true")
    );
    assert_eq!(connect.status, 302);
    assert_eq!(
        connect.response_header("location"),
        Some("http://localhost:8000/callback?code=***&state=st-1")
    );

    let token = &log[1];
    assert_eq!(token.method, "POST");
    assert_eq!(token.path, "/oauth/token");
    assert_eq!(token.header("Authorization"), Some("Basic ***"));
    assert_eq!(
        token.form(),
        vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), "***".to_owned()),
            ("redirect_uri".to_owned(), app.redirect_uris[0].clone()),
        ]
    );
    assert_eq!(token.status, 200);
    let body = token.response_json().unwrap();
    assert_eq!(body["access_token"], "***");
    assert_eq!(body["refresh_token"], "***");
    assert_eq!(body["expires_in"], 7200);
    assert!(token.response_header("sc-request-id").is_some());
    let everything = format!("{log:?}");
    for secret in [
        app.client_secret.as_str(),
        code.as_str(),
        tokens["access_token"].as_str().unwrap(),
        tokens["refresh_token"].as_str().unwrap(),
    ] {
        assert!(!everything.contains(secret), "a secret reached the log");
    }

    sim.clear_requests();
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn streamed_faults_are_logged_when_they_end() {
    let sim = Simulator::start().await.unwrap();
    sim.faults()
        .inject(Fault::stall(Duration::from_millis(50)))
        .on("/healthz")
        .once();
    let r = client()
        .get(format!("{}/healthz", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "ok");
    // The entry is pushed when hyper drops the body, just after the last byte was sent.
    let mut log = sim.requests();
    for _ in 0..100 {
        if !log.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        log = sim.requests();
    }
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].fault, Some("stall_body"));
    assert_eq!(log[0].fault_kind, Some(smartcar_sim::FaultKind::StallBody));
    assert_eq!(log[0].response_text(), "ok");
}

#[tokio::test]
async fn counters_count_requests_templates_refreshes_and_connections() {
    let sim = Simulator::builder()
        .log_requests(false)
        .start()
        .await
        .unwrap();
    let base = sim.base_url();
    let shared = client();
    for _ in 0..5 {
        shared.get(format!("{base}/healthz")).send().await.unwrap();
    }
    let before = sim.connections_accepted();
    assert!(before >= 1);
    for _ in 0..3 {
        // A new client, so a new connection.
        client()
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(sim.connections_accepted(), before + 3);
    assert_eq!(sim.request_count("GET", "/healthz"), 8);
    assert_eq!(sim.request_count("POST", "/healthz"), 0);
    client()
        .get(format!("{base}/v2.0/vehicles/x/nothing"))
        .send()
        .await
        .unwrap();
    // Unknown v2.0 paths are answered by the v2 catch-all route and counted under it.
    assert_eq!(sim.request_count("GET", "/v2.0/{*rest}"), 1);
    assert_eq!(sim.request_count("GET", "/v2.0/vehicles/x/nothing"), 0);
    let (_, tokens) = exchange(&sim, &code_for(&sim, "")).await;
    smartcar_sim::testing::refresh(&sim, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(sim.request_count("POST", "/oauth/token"), 2);
    assert_eq!(sim.refresh_count(), 1);
    assert_eq!(sim.total_requests(), 11);
    assert!(sim.requests().is_empty(), "logging is off");
    sim.set_request_logging(true);
    client()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(sim.requests().len(), 1);
}

#[tokio::test]
async fn graceful_shutdown_finishes_requests_in_flight() {
    let sim = Simulator::start().await.unwrap();
    let base = sim.base_url();
    sim.faults()
        .inject(Fault::delay(Duration::from_millis(300)))
        .on("/healthz")
        .once();
    let in_flight = tokio::spawn({
        let url = format!("{base}/healthz");
        async move { client().get(url).send().await.map(|r| r.status().as_u16()) }
    });
    // Wait until the server has the request (it is counted before the delay starts).
    for _ in 0..500 {
        if sim.total_requests() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(sim.total_requests(), 1);
    sim.shutdown().await;
    assert_eq!(in_flight.await.unwrap().unwrap(), 200);
    let after = client().get(format!("{base}/healthz")).send().await;
    assert!(after.is_err(), "nothing listens any more");
}

#[tokio::test]
async fn handle_accessors_and_redacted_debug() {
    let epoch = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let sim = Simulator::builder()
        .seed(3)
        .users(2)
        .vehicles(5)
        .epoch(epoch)
        .start()
        .await
        .unwrap();
    assert_eq!(sim.users().len(), 2);
    assert_eq!(sim.vehicles().len(), 5);
    assert_eq!(sim.now(), epoch, "a fixed epoch stands still");
    sim.advance(Duration::from_secs(90));
    assert_eq!(sim.now(), epoch + chrono::Duration::seconds(90));

    let origins = sim.origins();
    let base = sim.base_url();
    assert_eq!(origins.connect, base);
    assert_eq!(origins.token_url, format!("{base}/oauth/token"));
    assert_eq!(origins.iam_token_url, format!("{base}/oauth2/token"));
    let env = origins.sdk_env();
    for name in [
        "SMARTCAR_API_ORIGIN",
        "SMARTCAR_AUTH_ORIGIN",
        "SMARTCAR_CONNECT_ORIGIN",
        "SMARTCAR_MANAGEMENT_API_ORIGIN",
        "SMARTCAR_VEHICLE_API_V3_ORIGIN",
        "SMARTCAR_API_V3_ORIGIN",
        "SMARTCAR_VEHICLE_API_ORIGIN",
        "SMARTCAR_IAM_ORIGIN",
        "SMARTCAR_MANAGEMENT_API_V3_ORIGIN",
    ] {
        assert!(env.iter().any(|(k, _)| *k == name), "{name}");
    }

    let app = sim.app();
    let debug = format!("{app:?} {sim:?}");
    assert!(debug.contains(&app.client_id));
    assert!(!debug.contains(&app.client_secret));
    assert!(!debug.contains(&app.amt));
    assert_eq!(
        app.env()[1],
        ("SMARTCAR_CLIENT_SECRET", app.client_secret.clone())
    );

    // Same seed, same application and fleet.
    let again = Simulator::builder()
        .seed(3)
        .users(2)
        .vehicles(5)
        .start()
        .await
        .unwrap();
    assert_eq!(again.app().client_id, app.client_id);
    assert_eq!(
        again.vehicles().iter().map(|v| &v.vin).collect::<Vec<_>>(),
        sim.vehicles().iter().map(|v| &v.vin).collect::<Vec<_>>()
    );
}

/// Every operation of the spec's table is served at its template with its method: the log
/// names the operation each request reached (so a route registered on a path or method the
/// spec does not have, or an operation left without a route, fails here).
#[tokio::test]
async fn every_operation_of_the_spec_is_routed_and_named_in_the_log() {
    use smartcar_api::ops;
    let sim = Simulator::start().await.unwrap();
    let http = client();
    for op in ops::ALL {
        let mut path = op.path.to_owned();
        for param in op.path_params {
            path = path.replace(&format!("{{{param}}}"), "x");
        }
        let response = http
            .request(op.method.http(), format!("{}{path}", sim.base_url()))
            .send()
            .await
            .unwrap();
        assert_ne!(response.status(), 405, "{op}: method not routed");
        let log = sim.requests();
        let last = log.last().expect("logged");
        assert_eq!(
            last.operation(),
            Some(op),
            "{op}: answered by another route"
        );
        assert_eq!(
            sim.operation_count(op),
            1,
            "{op}: counted once on its route"
        );
    }
    assert_eq!(
        sim.requests()
            .iter()
            .filter(|r| r.operation().is_some())
            .count(),
        ops::ALL.len()
    );
}
