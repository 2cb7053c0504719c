//! The simulator playing a test suite's own application (issue 18): the client id, secret,
//! redirect URIs and management token a suite registered with Smartcar, instead of the ones
//! derived from the seed; the SDK runs both Connect flows against it.

use smartcar::{Client, Permission, Redirect};
use smartcar_api::ops;
use smartcar_sim::{ApplicationSettings, ApproveOptions, Simulator, WebhookSettings};

const CODE_URI: &str = "http://localhost:3000/auth/callback";
const M2M_URI: &str = "http://localhost:3000/auth/exchange";

async fn sim() -> Simulator {
    Simulator::builder()
        .application(ApplicationSettings {
            client_id: Some("suite-client-id".into()),
            client_secret: Some("suite-client-secret-0123456789".into()),
            redirect_uris: vec![CODE_URI.into()],
            user_id_redirect_uris: vec![M2M_URI.into()],
            management_token: Some("suite-management-token".into()),
            webhooks: vec![WebhookSettings::new(
                "suite-webhook",
                "http://127.0.0.1:9/suite-hook",
            )],
        })
        .start()
        .await
        .unwrap()
}

fn client(sim: &Simulator, secret: &str, redirect: &str) -> Client {
    Client::builder()
        .client_id("suite-client-id")
        .client_secret(secret)
        .redirect_uri(redirect)
        .origin(&sim.base_url())
        .build()
        .unwrap()
}

/// Connect for `read_odometer` on `client`, approved by the simulator's first user: the
/// redirect URL and what the SDK reads from it.
fn connect_once(sim: &Simulator, client: &Client) -> (url::Url, Redirect) {
    let auth = client
        .authorize()
        .scope(Permission::ReadOdometer)
        .build()
        .unwrap();
    smartcar_tests::flow::approve(sim, client, &auth, ApproveOptions::new())
}

#[tokio::test]
async fn both_flows_run_with_the_suites_own_application() {
    let sim = sim().await;
    let app = sim.app();
    assert_eq!(app.client_id, "suite-client-id");
    assert_eq!(app.amt, "suite-management-token");
    assert!(app.redirect_uris.contains(&M2M_URI.to_owned()), "{app:?}");

    // Authorization code on the suite's redirect URI, exchanged with the suite's secret.
    let code_client = client(&sim, "suite-client-secret-0123456789", CODE_URI);
    let (redirect, read) = connect_once(&sim, &code_client);
    assert!(redirect.as_str().starts_with(CODE_URI), "{redirect}");
    let Redirect::Code(code) = read else {
        panic!("a code: {redirect}")
    };
    code_client.exchange_code(&code).await.unwrap();

    // The machine-to-machine flow on the other URI.
    let m2m = client(&sim, "suite-client-secret-0123456789", M2M_URI);
    let (redirect, read) = connect_once(&sim, &m2m);
    assert!(matches!(read, Redirect::UserId(_)), "{redirect}");
    smartcar::ApplicationSession::new(&m2m)
        .token()
        .await
        .unwrap();

    // The suite's webhook exists under the id the suite knows it by.
    let webhook = reqwest::Client::new()
        .get(format!(
            "{}{}",
            sim.base_url(),
            ops::GetWebhook::path("suite-webhook")
        ))
        .bearer_auth(sim.mint_app_token())
        .send()
        .await
        .unwrap();
    assert_eq!(webhook.status(), 200);
    let webhook: serde_json::Value = webhook.json().await.unwrap();
    assert_eq!(webhook["data"]["id"], "suite-webhook", "{webhook}");

    // The seeded credentials are not the application's any more.
    let wrong = client(&sim, "not-the-secret-0123456789", CODE_URI);
    let refused = smartcar::ApplicationSession::new(&wrong)
        .token()
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(401), "{refused}");
    let seeded = Simulator::start().await.unwrap().app();
    let stale = seeded
        .redirect_uris
        .iter()
        .find(|u| !app.redirect_uris.contains(u))
        .expect("the seeded redirect URIs differ");
    let other = client(&sim, "suite-client-secret-0123456789", stale);
    let page = other.authorize().build().unwrap();
    assert!(
        sim.approve(page.url.as_str(), ApproveOptions::new())
            .is_err()
    );
}

#[tokio::test]
async fn invalid_settings_are_refused_before_listening() {
    for settings in [
        ApplicationSettings {
            client_id: Some(" ".into()),
            ..ApplicationSettings::default()
        },
        ApplicationSettings {
            redirect_uris: vec!["localhost:3000/callback".into()],
            ..ApplicationSettings::default()
        },
        ApplicationSettings {
            user_id_redirect_uris: vec!["ftp://localhost/x".into()],
            ..ApplicationSettings::default()
        },
    ] {
        let error = Simulator::builder()
            .application(settings.clone())
            .start()
            .await
            .unwrap_err();
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::InvalidInput,
            "{settings:?}"
        );
    }
}
