//! The token endpoints over real HTTP: code exchange, single use, refresh rotation with grace
//! and reuse detection, expiry on the simulated clock, client credentials.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use serde_json::json;
use smartcar_sim::testing::{client, code_for, exchange, refresh};
use smartcar_sim::{Config, Simulator};

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h
}

/// Whether the simulator accepts `token` as a user access token right now.
fn access_ok(sim: &Simulator, token: &str) -> bool {
    let world = sim.state().world();
    smartcar_sim::auth::user_grant(sim.state(), &world, &bearer(token)).is_ok()
}

fn access_token_exists(sim: &Simulator, token: &str) -> bool {
    sim.state().world().access_tokens.contains_key(token)
}

async fn post_form(
    sim: &Simulator,
    path: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, Option<String>, serde_json::Value) {
    let mut request = client()
        .post(format!("{}{path}", sim.base_url()))
        .form(form);
    if let Some((user, password)) = basic {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let www = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, www, response.json().await.unwrap())
}

#[tokio::test]
async fn code_exchange_with_basic_auth_returns_bearer_tokens() {
    let sim = Simulator::start().await.unwrap();
    let code = code_for(&sim, "");
    let (status, body) = exchange(&sim, &code).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 7200);
    let access = body["access_token"].as_str().unwrap();
    let refresh_token = body["refresh_token"].as_str().unwrap();
    assert_eq!(access.len(), 36, "UUID tokens");
    assert_ne!(access, refresh_token);
    assert_eq!(body.as_object().unwrap().len(), 4);
    assert!(access_ok(&sim, access));
    let user = sim.users()[0].clone();
    let world = sim.state().world();
    let grant = &world.access_tokens[access].grant;
    assert_eq!(grant.user_id, user.id);
    assert_eq!(grant.vehicle_ids, user.vehicle_ids);
    assert!(grant.scopes.contains("read_odometer"));
}

#[tokio::test]
async fn client_authentication_basic_form_or_nothing() {
    let sim = Simulator::start().await.unwrap();
    let app = sim.app();
    let redirect = app.redirect_uris[0].as_str();
    // Form credentials are accepted too.
    let code = code_for(&sim, "");
    let (status, _, body) = post_form(
        &sim,
        "/oauth/token",
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("client_id", &app.client_id),
            ("client_secret", &app.client_secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let code = code_for(&sim, "");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect),
    ];
    let (status, www, body) =
        post_form(&sim, "/oauth/token", Some((&app.client_id, "wrong")), &form).await;
    assert_eq!(status, 401);
    assert_eq!(www.as_deref(), Some("Basic realm=\"Smartcar\""));
    assert_eq!(
        body,
        json!({"error": "invalid_client", "error_description": "Invalid client credentials."})
    );
    let (status, www, body) = post_form(&sim, "/oauth/token", None, &form).await;
    assert_eq!(status, 401);
    assert_eq!(www, None);
    assert_eq!(body["error"], "invalid_client");
    // The code survived the failed attempts.
    let (status, _) = exchange(&sim, &code).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn bad_grants_and_bad_bodies_get_oauth_errors() {
    let sim = Simulator::start().await.unwrap();
    let app = sim.app();
    let auth = Some((app.client_id.as_str(), app.client_secret.as_str()));
    let (status, _, body) =
        post_form(&sim, "/oauth/token", auth, &[("grant_type", "password")]).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "unsupported_grant_type", "error_description": "Unsupported grant_type: password."})
    );
    let (status, _, body) = post_form(&sim, "/oauth/token", auth, &[]).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "Missing grant_type."})
    );
    // JSON instead of a form: still an OAuth error, never a plain-text rejection.
    let response = client()
        .post(format!("{}/oauth/token", sim.base_url()))
        .basic_auth(&app.client_id, Some(&app.client_secret))
        .json(&json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let (status, _, body) = post_form(
        &sim,
        "/oauth/token?flags=country:DE",
        auth,
        &[
            ("grant_type", "authorization_code"),
            ("code", "bad code here"),
            ("redirect_uri", "x"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "Invalid code: bad code here."})
    );
    let (status, _, body) = post_form(
        &sim,
        "/oauth/token",
        auth,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "THIS_SHOULD_NOT_WORK"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "Invalid refresh_token: THIS_SHOULD_NOT_WORK."})
    );
}

#[tokio::test]
async fn codes_are_single_use_and_a_replay_revokes_the_tokens() {
    let sim = Simulator::start().await.unwrap();
    let code = code_for(&sim, "");
    let (_, first) = exchange(&sim, &code).await;
    let access = first["access_token"].as_str().unwrap().to_owned();
    let refresh_token = first["refresh_token"].as_str().unwrap().to_owned();
    assert!(access_ok(&sim, &access));
    let (status, body) = exchange(&sim, &code).await;
    assert_eq!(status, 400);
    assert_eq!(body["error_description"], format!("Invalid code: {code}."));
    assert!(
        !access_token_exists(&sim, &access),
        "replay revokes (RFC 6749 §10.5)"
    );
    let (status, _) = refresh(&sim, &refresh_token).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn redirect_uri_must_match_and_codes_expire() {
    let sim = Simulator::start().await.unwrap();
    let app = sim.app();
    let code = code_for(&sim, "");
    let (status, _, body) = post_form(
        &sim,
        "/oauth/token",
        Some((&app.client_id, &app.client_secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:8000/callback"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "Invalid redirect_uri: http://127.0.0.1:8000/callback."})
    );
    // Still usable with the right one...
    assert_eq!(exchange(&sim, &code).await.0, 200);
    // ...but a code older than 10 minutes is not.
    let late = code_for(&sim, "");
    sim.advance(Duration::from_secs(601));
    let (status, body) = exchange(&sim, &late).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn refresh_rotates_with_grace_then_reuse_revokes_the_family() {
    let sim = Simulator::start().await.unwrap();
    let (_, first) = exchange(&sim, &code_for(&sim, "")).await;
    let a1 = first["access_token"].as_str().unwrap().to_owned();
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();

    let (status, second) = refresh(&sim, &r1).await;
    assert_eq!(status, 200, "{second}");
    let a2 = second["access_token"].as_str().unwrap().to_owned();
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(a2, a1);
    assert_ne!(r2, r1);
    assert_eq!(second["expires_in"], 7200);
    assert!(
        access_ok(&sim, &a1),
        "the old access token lives until its own expiry"
    );
    assert!(access_ok(&sim, &a2));
    assert_eq!(sim.refresh_count(), 1);

    // A retry within the grace period gets the same pair back.
    sim.advance(Duration::from_secs(30));
    let (status, retry) = refresh(&sim, &r1).await;
    assert_eq!(status, 200);
    assert_eq!(retry["access_token"], a2.as_str());
    assert_eq!(retry["refresh_token"], r2.as_str());
    assert_eq!(retry["expires_in"], 7200 - 30);
    assert_eq!(sim.refresh_count(), 1, "a retry is not a new rotation");

    // After the grace period: reuse means theft; the family is revoked.
    sim.advance(Duration::from_secs(31));
    let (status, body) = refresh(&sim, &r1).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        body["error_description"],
        format!("Invalid refresh_token: {r1}.")
    );
    assert!(!access_ok(&sim, &a1));
    assert!(!access_ok(&sim, &a2));
    let (status, _) = refresh(&sim, &r2).await;
    assert_eq!(status, 400, "the newest refresh token died with its family");
}

#[tokio::test]
async fn the_new_refresh_token_keeps_working_and_grace_is_configurable() {
    let config = Config {
        refresh_grace: Duration::from_secs(600),
        ..Config::default()
    };
    let sim = Simulator::builder().config(config).start().await.unwrap();
    let (_, first) = exchange(&sim, &code_for(&sim, "")).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    let (_, second) = refresh(&sim, &r1).await;
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    sim.advance(Duration::from_secs(300));
    let (status, retry) = refresh(&sim, &r1).await;
    assert_eq!(status, 200, "within a 10-minute grace");
    assert_eq!(retry["refresh_token"], r2.as_str());
    let (status, third) = refresh(&sim, &r2).await;
    assert_eq!(status, 200);
    assert_ne!(third["refresh_token"], r2.as_str());
    assert_eq!(sim.refresh_count(), 2);
}

#[tokio::test]
async fn tokens_expire_on_the_simulated_clock() {
    let sim = Simulator::start().await.unwrap();
    let (_, tokens) = exchange(&sim, &code_for(&sim, "")).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    sim.advance(Duration::from_secs(2 * 3600 - 1));
    assert!(access_ok(&sim, &access));
    sim.advance(Duration::from_secs(1));
    assert!(!access_ok(&sim, &access), "2 hours");
    // The refresh token outlives it by 60 days.
    sim.advance(Duration::from_secs(60 * 24 * 3600));
    let (status, body) = refresh(&sim, &refresh_token).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn client_credentials_in_the_form_or_basic() {
    let sim = Simulator::start().await.unwrap();
    let app = sim.app();
    let (status, _, body) = post_form(
        &sim,
        "/oauth2/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", &app.client_secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body.get("refresh_token").is_none());
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(token.split('.').count(), 3, "shaped like a JWT");
    let check = |sim: &Simulator| {
        let world = sim.state().world();
        smartcar_sim::auth::app_token(sim.state(), &world, &bearer(&token)).is_ok()
    };
    assert!(check(&sim));
    sim.advance(Duration::from_secs(3600));
    assert!(!check(&sim), "1 hour");

    let (status, _, _) = post_form(
        &sim,
        "/oauth2/token",
        Some((&app.client_id, &app.client_secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, body) = post_form(
        &sim,
        "/oauth2/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", "wrong"),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    let (status, _, body) = post_form(
        &sim,
        "/oauth2/token",
        None,
        &[("client_id", &app.client_id)],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "Missing grant_type."})
    );
    let (status, _, body) = post_form(
        &sim,
        "/oauth2/token",
        Some((&app.client_id, &app.client_secret)),
        &[("grant_type", "authorization_code")],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn sdk_style_token_urls_are_served() {
    let sim = Simulator::start().await.unwrap();
    let app = sim.app();
    // Node/Java/Ruby append /oauth/token to SMARTCAR_AUTH_ORIGIN, which sdk_env() sets to the
    // full token URL.
    let auth = sim
        .origins()
        .sdk_env()
        .into_iter()
        .find(|(k, _)| *k == "SMARTCAR_AUTH_ORIGIN")
        .unwrap()
        .1;
    let code = code_for(&sim, "");
    let response = client()
        .post(format!("{auth}/oauth/token"))
        .basic_auth(&app.client_id, Some(&app.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", app.redirect_uris[0].as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn minted_tokens_work_like_exchanged_ones() {
    let sim = Simulator::start().await.unwrap();
    let user = sim.users()[0].clone();
    let tokens = sim.mint_access_token(
        &user.id,
        &[user.vehicle_ids[0].as_str()],
        &["read_odometer"],
    );
    assert_eq!(format!("{tokens:?}"), "MintedTokens([redacted])");
    assert!(access_ok(&sim, &tokens.access_token));
    let (status, _) = refresh(&sim, &tokens.refresh_token).await;
    assert_eq!(status, 200);
    let app_token = sim.mint_app_token();
    let world = sim.state().world();
    assert!(smartcar_sim::auth::app_token(sim.state(), &world, &bearer(&app_token)).is_ok());
    assert!(world.connection(&user.id, &user.vehicle_ids[0]).is_some());
}

/// python-sdk's live e2e refreshes early in its session (`test_refresh_code_with_flag`) and
/// goes on with the access token it had (about 60 more tests): a refresh rotates the refresh
/// token, not the access token it replaced.
#[tokio::test]
async fn the_access_token_a_refresh_replaced_keeps_answering_api_calls() {
    let sim = Simulator::start().await.unwrap();
    let (_, first) = exchange(&sim, &code_for(&sim, "")).await;
    let old = first["access_token"].as_str().unwrap().to_owned();
    let (status, second) = refresh(&sim, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{second}");
    let new = second["access_token"].as_str().unwrap().to_owned();
    let user = |token: String| {
        let url = format!("{}{}", sim.base_url(), smartcar_api::ops::GET_USER.path);
        async move {
            let r = client().get(url).bearer_auth(token).send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let (status, body) = user(old.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(user(new).await.0, 200);
    // Until its own expiry (2 hours from its issue).
    sim.advance(Duration::from_secs(2 * 3600 - 1));
    assert_eq!(user(old.clone()).await.0, 200);
    sim.advance(Duration::from_secs(1));
    assert_eq!(user(old).await.0, 401);
}
