//! Secrets audit, in a test binary of its own (it installs a TRACE subscriber; see
//! `sdk_tracing.rs`): the whole quickstart flow — Connect, code exchange, reads, a command, a
//! refresh, the v3 machine-to-machine flow, the management API with the AMT, webhook
//! verification — plus the error paths that tend to echo secrets (a replayed code, a reused
//! refresh token the platform quotes back, a wrong client secret), with every public value the
//! flow touches printed with `{:?}` (and errors also with `{}` and their source chain). Neither
//! the trace output nor any of those prints may contain the client secret, an access or
//! refresh token, an authorization code, an application token or the AMT.
//!
//! Then what a server *returns* (issue 15, bug 1), from a hostile platform on 127.0.0.1: tokens
//! in 2xx token answers the SDK cannot read, or in token-endpoint error pages, must reach
//! neither an error nor a TRACE line; API error bodies echoing the call's own bearer token or
//! management token (as sent, URL-encoded, JSON-escaped) are redacted.

use std::fmt::{Debug, Write as _};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use smartcar::management::ConnectionFilter;
use smartcar::store::{MemoryTokenStore, TokenStore};
use smartcar::tokens::RefreshToken;
use smartcar::webhooks::WebhookVerifier;
use smartcar::{ApplicationSession, Client, Error, ErrorKind, Redirect, Session};
use smartcar_sim::{ApproveOptions, Simulator};
use smartcar_tests::flow::{CALLBACK, PERMISSIONS, client_for};
use smartcar_tests::trace::TraceCapture;

/// Everything printed, and the secrets met on the way.
#[derive(Default)]
struct Audit {
    printed: String,
    secrets: Vec<(String, String)>,
    values: usize,
}

impl Audit {
    fn show(&mut self, what: &str, value: &impl Debug) {
        writeln!(self.printed, "{what}: {value:?} / {value:#?}").unwrap();
        self.values += 1;
    }

    fn show_error(&mut self, what: &str, e: &impl std::error::Error) {
        self.show(what, e);
        writeln!(self.printed, "{what}: {e}").unwrap();
        let mut source = e.source();
        while let Some(s) = source {
            writeln!(self.printed, "  caused by: {s} / {s:?}").unwrap();
            source = s.source();
        }
    }

    fn secret(&mut self, name: &str, value: &str) {
        assert!(value.len() >= 8, "{name} is long enough to search for");
        self.secrets.push((name.to_owned(), value.to_owned()));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn quickstart_flow_prints_and_traces_no_secret() {
    let capture = TraceCapture::start();
    let mut audit = Audit::default();

    let sim = Simulator::start().await.unwrap();
    let app = sim.app();
    audit.secret("client secret", &app.client_secret);
    audit.secret("AMT", &app.amt);
    let client = client_for(&sim, CALLBACK).build().unwrap();
    audit.show("Client", &client);
    audit.show("Origins", client.origins());
    audit.show("RetryPolicy", client.retry_policy());
    audit.show(
        "ClientBuilder",
        &Client::builder()
            .client_id(app.client_id.clone())
            .client_secret(app.client_secret.clone()),
    );
    audit.show(
        "ClientSecret",
        &smartcar::config::ClientSecret::new(app.client_secret.clone()),
    );

    // Connect and the code exchange.
    let builder = client.authorize().scopes(PERMISSIONS);
    audit.show("AuthorizeBuilder", &builder);
    let auth = builder.build().unwrap();
    audit.show("AuthorizationUrl", &auth);
    let redirect = sim
        .approve(auth.url.as_str(), ApproveOptions::new())
        .unwrap();
    let handled = client
        .handle_redirect(redirect.as_str(), &auth.state)
        .unwrap();
    audit.show("Redirect", &handled);
    let Redirect::Code(code) = handled else {
        panic!("expected a code")
    };
    audit.secret("authorization code", code.secret());
    audit.show("AuthorizationCode", &code);
    let tokens = client.exchange_code(&code).await.unwrap();
    audit.secret("access token", tokens.access_token.secret());
    audit.secret("refresh token", tokens.refresh_token.secret());
    audit.show("Tokens", &tokens);
    audit.show("AccessToken", &tokens.access_token);
    audit.show("RefreshToken", &tokens.refresh_token);

    let store = Arc::new(MemoryTokenStore::new());
    let session = Session::create(&client, store.clone(), "user-1", tokens.clone())
        .await
        .unwrap();
    audit.show("Session", &session);
    audit.show("MemoryTokenStore", &*store);
    let user = session.fetch_user_id().await.unwrap();
    audit.show("user", &user);
    let vehicle = session
        .vehicle(sim.users()[0].vehicle_ids[0].clone())
        .unwrap();
    audit.show("Vehicle", &vehicle);
    audit.show("odometer", &vehicle.odometer().await.unwrap());
    audit.show("lock", &vehicle.lock().await.unwrap());
    audit.show(
        "permissions",
        &vehicle.permissions(None, None).await.unwrap(),
    );
    let ids: Vec<_> = session.vehicles().collect().await;
    audit.show("vehicles", &ids);
    // An API error (a read without the permission).
    let e = vehicle.charge().await.unwrap_err();
    audit.show_error("API error", &e);

    // Refresh and rotation.
    sim.advance(Duration::from_secs(2 * 3600));
    audit.show("odometer after expiry", &vehicle.odometer().await.unwrap());
    let rotated = store.load("user-1").await.unwrap().unwrap();
    assert_ne!(rotated.refresh_token, tokens.refresh_token);
    audit.secret("rotated access token", rotated.access_token.secret());
    audit.secret("rotated refresh token", rotated.refresh_token.secret());
    audit.show("rotated Tokens", &rotated);
    audit.show("Session after refresh", &session);
    audit.show("MemoryTokenStore after refresh", &*store);

    // v3, machine to machine.
    let m2m = client
        .authorize()
        .redirect_uri("http://localhost:8000/exchange")
        .scopes(PERMISSIONS)
        .build()
        .unwrap();
    let redirect = sim
        .approve(m2m.url.as_str(), ApproveOptions::new())
        .unwrap();
    let handled = client
        .handle_redirect(redirect.as_str(), &m2m.state)
        .unwrap();
    audit.show("Redirect (user id)", &handled);
    let Redirect::UserId(user_id) = handled else {
        panic!("expected a user id")
    };
    let app_session = ApplicationSession::new(&client);
    let app_token = app_session.token().await.unwrap();
    audit.secret("application token", app_token.secret());
    audit.show("ApplicationTokenValue", &app_token);
    audit.show("ApplicationSession", &app_session);
    audit.show(
        "ApplicationToken",
        &client.request_application_token().await.unwrap(),
    );
    let user = app_session.user(user_id).unwrap();
    audit.show("UserV3", &user);
    let vehicle_ids = user.vehicle_ids().await.unwrap();
    let v3 = user.vehicle(vehicle_ids[0].clone()).unwrap();
    audit.show("VehicleV3", &v3);
    audit.show("v3 info", &v3.info().await.unwrap());
    audit.show("v3 signals", &v3.signals().await.unwrap());
    audit.show("v3 unlock", &v3.unlock().await.unwrap());
    audit.show("v3 connections", &user.connections().await.unwrap());

    // Management with the AMT.
    let management = client.management(app.amt.clone());
    audit.show("Management", &management);
    let connections: Vec<_> = management
        .connections(ConnectionFilter::default())
        .collect()
        .await;
    assert!(connections.iter().all(Result::is_ok));
    audit.show("management connections", &connections);
    let wrong_amt = client.management("wrong-management-token-0123456789");
    audit.secret("wrong AMT", "wrong-management-token-0123456789");
    let e = wrong_amt
        .connections_page(&ConnectionFilter::default(), None)
        .await
        .unwrap_err();
    audit.show_error("management error", &e);

    // Webhooks, keyed with the AMT.
    let verifier = WebhookVerifier::new(app.amt.clone()).unwrap();
    audit.show("WebhookVerifier", &verifier);
    let e = verifier.verify(Some("00ff"), b"{}").unwrap_err();
    audit.show_error("webhook error", &e);
    audit.show("challenge answer", &verifier.challenge_response("abc"));

    // A wrong client secret.
    let wrong = client_for(&sim, CALLBACK)
        .client_secret("wrong-client-secret-0123456789")
        .build()
        .unwrap();
    audit.secret("wrong client secret", "wrong-client-secret-0123456789");
    audit.show("Client with a wrong secret", &wrong);
    let e = wrong.request_application_token().await.unwrap_err();
    audit.show_error("wrong client secret", &e);
    let e = wrong
        .refresh_tokens(&rotated.refresh_token)
        .await
        .unwrap_err();
    audit.show_error("refresh with a wrong client secret", &e);

    // The code again: the platform refuses it (may quote it back) and revokes what it issued.
    let e = client.exchange_code(&code).await.unwrap_err();
    audit.show_error("replayed code", &e);

    // Last, as it revokes the family: the first refresh token again, after the grace period.
    // The platform answers `Invalid refresh_token: <the token>.`
    sim.advance(Duration::from_secs(120));
    let e = client
        .refresh_tokens(&tokens.refresh_token)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ReauthorizationRequired);
    audit.show_error("reused refresh token", &e);
    let e = client
        .refresh_tokens(&RefreshToken::new("never-issued-refresh-token-42"))
        .await
        .unwrap_err();
    audit.secret("unknown refresh token", "never-issued-refresh-token-42");
    audit.show_error("unknown refresh token", &e);
    let e: Error = vehicle.odometer().await.map(|_| ()).unwrap_err();
    audit.show_error("revoked session", &e);
    sim.shutdown().await;

    let log = capture.text();
    assert!(log.contains("smartcar.request"), "the trace was captured");
    // Controls: the prints carry the non-secret values (so a secret would be seen too), and
    // the search finds a secret where there is one.
    assert!(audit.printed.contains(&app.client_id), "ids are printed");
    assert!(audit.printed.contains(vehicle.id()), "ids are printed");
    let (_, refresh) = audit
        .secrets
        .iter()
        .find(|(name, _)| name == "refresh token")
        .unwrap();
    assert!(
        format!("leaked: {}", tokens.refresh_token.secret()).contains(refresh.as_str()),
        "the search finds a token in clear"
    );
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "at a fine level"
    );
    let mut leaks = Vec::new();
    for (name, secret) in &audit.secrets {
        if log.contains(secret.as_str()) {
            leaks.push(format!("{name} in the TRACE output"));
        }
        if audit.printed.contains(secret.as_str()) {
            let line = audit
                .printed
                .lines()
                .find(|l| l.contains(secret.as_str()))
                .unwrap_or_default()
                .replace(secret.as_str(), "<SECRET>");
            leaks.push(format!("{name} printed: {line}"));
        }
    }
    println!(
        "secrets audit: {} values printed, {} secrets searched, {} bytes of trace",
        audit.values,
        audit.secrets.len(),
        log.len()
    );
    assert!(leaks.is_empty(), "{leaks:#?}");
}

/// A hostile platform on 127.0.0.1: every path answers `status` with `content_type` and `body`.
async fn hostile(
    status: u16,
    content_type: &'static str,
    body: String,
) -> (String, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move {
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [
                    ("content-type", content_type),
                    ("sc-request-id", "req-hostile-1"),
                ],
                body,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, task)
}

/// Bug 1 of issue 15: a token endpoint answering 2xx with a body the SDK cannot read (a bad
/// `expires_in`, a truncated body, an HTML page with status 200, an application-token answer
/// to a code exchange, JSON labelled `text/plain`), or an error status with a page quoting the
/// tokens, must not put the tokens it *returns* into the error (`Display`, `Debug`, source
/// chain) nor into a TRACE line. Each answer comes from a hostile server over real HTTP, to
/// the code exchange, the refresh and the client-credentials request.
#[tokio::test(flavor = "current_thread")]
async fn tokens_the_server_returns_never_reach_errors_or_traces() {
    let capture = TraceCapture::start();
    let mut audit = Audit::default();

    const ACCESS: &str = "fresh-ACCESS-token-5e1f0c9d7a2b4e68";
    const REFRESH: &str = "fresh-REFRESH-token-0b6d3f8e1c7a9240";
    audit.secret("returned access token", ACCESS);
    audit.secret("returned refresh token", REFRESH);
    let long = "x".repeat(150);
    let answers: Vec<(&str, u16, &'static str, String)> = vec![
        (
            "expires_in quoting a token",
            200,
            "application/json",
            format!(
                r#"{{"access_token":"{ACCESS}","token_type":"Bearer","expires_in":"{REFRESH}","refresh_token":"{REFRESH}"}}"#
            ),
        ),
        (
            "bad expires_in",
            200,
            "application/json",
            format!(
                r#"{{"access_token":"{ACCESS}","token_type":"Bearer","expires_in":"bad","refresh_token":"{REFRESH}"}}"#
            ),
        ),
        (
            "truncated",
            200,
            "application/json",
            format!(
                r#"{{"access_token":"{ACCESS}","token_type":"Bearer","refresh_token":"{REFRESH}"#
            ),
        ),
        (
            "HTML with status 200",
            200,
            "text/html",
            format!("<html><body>token {ACCESS} refresh {REFRESH}</body></html>"),
        ),
        (
            "text/plain JSON with a wrong token_type",
            200,
            "text/plain",
            format!(
                r#"{{"access_token":"{ACCESS}","token_type":["{REFRESH}"],"refresh_token":"{REFRESH}"}}"#
            ),
        ),
        (
            "tokens past the excerpt cut",
            200,
            "application/json",
            format!(
                r#"{{"padding":"{long}","access_token":"{ACCESS}","expires_in":{{}},"refresh_token":"{REFRESH}"}}"#
            ),
        ),
        (
            "500 page quoting the tokens",
            500,
            "text/html",
            format!("<h1>upstream said</h1><pre>{ACCESS} {REFRESH}</pre>"),
        ),
        (
            "400 v2 body with the tokens in detail",
            400,
            "application/json",
            format!(
                r#"{{"type":"VALIDATION","description":"bad","detail":[{{"access_token":"{ACCESS}","refresh_token":"{REFRESH}"}}]}}"#
            ),
        ),
    ];
    for (name, status, content_type, body) in answers {
        let (origin, server) = hostile(status, content_type, body).await;
        let client = Client::builder()
            .client_id("client-id")
            .client_secret("client-secret-0123456789")
            .redirect_uri("https://app.example/callback")
            .origin(&origin)
            .disable_retries()
            .build()
            .unwrap();
        let code = smartcar::connect::AuthorizationCode::new("code-0123456789");
        let e = client.exchange_code(&code).await.unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::Decode | ErrorKind::Api),
            "{name}: {e}"
        );
        if status == 200 {
            assert_eq!(e.request_id(), Some("req-hostile-1"), "{name}: {e}");
            let smartcar::Error::Decode(d) = &e else {
                panic!("{name}: {e:?}")
            };
            assert!(d.body_excerpt.is_empty(), "{name}: {d:?}");
        }
        audit.show_error(&format!("{name}: code exchange"), &e);
        let e = client
            .refresh_tokens(&RefreshToken::new("sent-refresh-token-42"))
            .await
            .unwrap_err();
        audit.show_error(&format!("{name}: refresh"), &e);
        // Answers without a refresh token are fine for client credentials: only the failures
        // are audited.
        if let Err(e) = client.request_application_token().await {
            audit.show_error(&format!("{name}: application token"), &e);
        }
        server.abort();
    }
    // The error for a bad `expires_in` still says what was wrong, in the SDK's words.
    assert!(
        audit
            .printed
            .contains("`expires_in` has a value of the wrong type"),
        "{}",
        audit.printed
    );
    assert!(audit.printed.contains("HTTP 500"), "the status is kept");

    let log = capture.text();
    assert!(
        log.contains("connected to 127.0.0.1"),
        "the trace was captured: {log}"
    );
    let mut leaks = Vec::new();
    for (name, secret) in &audit.secrets {
        // Whole, or cut (the first 12 characters).
        for needle in [secret.as_str(), &secret[..12]] {
            if log.contains(needle) {
                leaks.push(format!("{name} in the TRACE output"));
            }
            if let Some(line) = audit.printed.lines().find(|l| l.contains(needle)) {
                leaks.push(format!("{name} printed: {line}"));
            }
        }
    }
    assert!(leaks.is_empty(), "{leaks:#?}");
}

/// `RawResponse::checked`: an API error body echoing the call's own credential — the bearer
/// token as sent, URL-encoded (as a server quoting a query string shows it) or JSON-escaped,
/// and the management token of a Basic call — never reaches the error.
#[tokio::test(flavor = "current_thread")]
async fn api_error_bodies_echoing_the_callers_credential_are_redacted() {
    // What the bearer calls print, and what the management calls print: each must not show
    // its own credential (a call cannot redact a secret it never sent).
    let (mut bearer, mut management) = (Audit::default(), Audit::default());
    const ACCESS: &str = "api/ACCESS+token=5e1f0c9d7a2b";
    const ENCODED: &str = "api%2FACCESS%2Btoken%3D5e1f0c9d7a2b";
    const AMT: &str = "management-token-7f3e9a1c5b";
    bearer.secret("access token", ACCESS);
    bearer.secret("access token, URL-encoded", ENCODED);
    management.secret("AMT", AMT);
    let answers: Vec<(&str, u16, &'static str, String)> = vec![
        (
            "v2 body",
            403,
            "application/json",
            format!(
                r#"{{"type":"PERMISSION","description":"token {ACCESS} lacks it; see https://x/?access_token={ENCODED}","code":"{ACCESS}","detail":[{{"t":"{ACCESS}"}}],"requestId":"{ENCODED}"}}"#
            ),
        ),
        (
            "JSON-escaped",
            403,
            "application/json",
            r#"{"type":"PERMISSION","description":"token api\/ACCESS+token=5e1f0c9d7a2b"}"#
                .to_owned(),
        ),
        (
            "HTML page",
            502,
            "text/html",
            format!("<p>Bearer {ACCESS} / {ENCODED} / Basic password {AMT}</p>"),
        ),
        (
            "v1 body",
            403,
            "application/json",
            format!(r#"{{"error":"authentication_error","message":"bad credentials {AMT}"}}"#),
        ),
    ];
    for (name, status, content_type, body) in answers {
        let (origin, server) = hostile(status, content_type, body).await;
        let client = Client::builder()
            .client_id("client-id")
            .client_secret("client-secret-0123456789")
            .origin(&origin)
            .disable_retries()
            .build()
            .unwrap();
        let store = Arc::new(MemoryTokenStore::new());
        let tokens = smartcar::tokens::Tokens {
            access_token: smartcar::tokens::AccessToken::new(ACCESS),
            refresh_token: RefreshToken::new("refresh-token-0123456789"),
            expires_at: chrono::Utc::now() + chrono::Duration::hours(2),
            refresh_expires_at: chrono::Utc::now() + chrono::Duration::days(60),
        };
        let session = Session::create(&client, store, "user-1", tokens)
            .await
            .unwrap();
        let e = session
            .vehicle("vehicle-1")
            .unwrap()
            .odometer()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Api, "{name}: {e}");
        assert_eq!(e.status(), Some(status));
        bearer.show_error(&format!("{name}: bearer"), &e);
        let e = client
            .management(AMT)
            .connections_page(&ConnectionFilter::default(), None)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Api, "{name}: {e}");
        management.show_error(&format!("{name}: management"), &e);
        server.abort();
    }
    assert!(bearer.printed.contains("[redacted]"), "{}", bearer.printed);
    assert!(bearer.printed.contains("lacks it"), "the rest is kept");
    assert!(
        management.printed.contains("bad credentials [redacted]"),
        "{}",
        management.printed
    );
    let leaks: Vec<_> = [&bearer, &management]
        .into_iter()
        .flat_map(|audit| {
            audit.secrets.iter().filter_map(|(name, secret)| {
                audit
                    .printed
                    .lines()
                    .find(|l| l.contains(secret.as_str()))
                    .map(|l| format!("{name}: {l}"))
            })
        })
        .collect();
    assert!(leaks.is_empty(), "{leaks:#?}");
}
