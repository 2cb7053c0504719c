//! Secrets audit, in a test binary of its own (it installs a TRACE subscriber; see
//! `sdk_tracing.rs`): the whole quickstart flow — Connect, code exchange, reads, a command, a
//! refresh, the v3 machine-to-machine flow, the management API with the AMT, webhook
//! verification — plus the error paths that tend to echo secrets (a replayed code, a reused
//! refresh token the platform quotes back, a wrong client secret), with every public value the
//! flow touches printed with `{:?}` (and errors also with `{}` and their source chain). Neither
//! the trace output nor any of those prints may contain the client secret, an access or
//! refresh token, an authorization code, an application token or the AMT.

use std::fmt::{Debug, Write as _};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use smartcar::webhooks::WebhookVerifier;
use smartcar::{
    ApplicationSession, Client, ConnectionFilter, Error, ErrorKind, MemoryTokenStore, Redirect,
    RefreshToken, Session, TokenStore,
};
use smartcar_sim::{ApproveOptions, Simulator};
use smartcar_tests::flow::{CALLBACK, PERMISSIONS, client_for};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

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
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
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
        &smartcar::ClientSecret::new(app.client_secret.clone()),
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
    let user = session.user().await.unwrap();
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

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
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
