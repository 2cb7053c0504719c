//! The simulator's Connect in test mode in a real browser, through the element ids Smartcar's
//! official SDKs' end-to-end suites select on the real Connect (`button#continue-button`,
//! `button#<BRAND>.brand-list-item`, `input#brand-search`, `input#username`,
//! `input#password`, `button#sign-in-button`, `.page-content`, `button#approval-button`,
//! `button#deny-button`): headless Chromium (`browser/connect-test-mode.mjs`) picks Ford,
//! signs in with a new e-mail and any password, leaves one optional permission unchecked and
//! approves; the code it brings back is exchanged and the account read over HTTP. The same
//! e-mail reopens the same account; Deny ends with `access_denied`.
//!
//! Prerequisites as for `browser.rs` (skipped with a message without them, except under CI).

use serde_json::Value;
use smartcar_sim::{ApplicationSettings, Simulator};

mod common;

/// The application's redirect target: a loopback listener answering every request with a
/// small page, until the test ends. Returns the redirect URI.
async fn application() -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let body = "<h1 id=\"app\">back in the app</h1>";
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/auth")
}

/// One browser run through Connect; returns what the browser saw.
async fn connect(url: &str, redirect: &str, email: &str, shot: &str, deny: bool) -> Value {
    let (url, redirect, email, shot) = (
        url.to_owned(),
        redirect.to_owned(),
        email.to_owned(),
        shot.to_owned(),
    );
    tokio::task::spawn_blocking(move || {
        let mut args = vec![
            url.as_str(),
            &redirect,
            "FORD",
            "Ford",
            email.as_str(),
            &shot,
        ];
        if deny {
            args.push("deny");
        }
        common::run_node("connect-test-mode.mjs", &args)
    })
    .await
    .expect("browser thread")
}

/// A v2.0 read with the user's access token.
async fn read(http: &reqwest::Client, base: &str, access: &str, path: &str) -> Value {
    http.get(format!("{base}{path}"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn query(url: &str, key: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_mode_connect_in_chromium_with_the_real_element_ids() {
    if !common::browser_available("connect test-mode browser test") {
        return;
    }
    let redirect_uri = application().await;
    let sim = Simulator::builder()
        .application(ApplicationSettings {
            client_id: Some("e2e-client".into()),
            client_secret: Some("e2e-secret".into()),
            redirect_uris: vec![redirect_uri.clone()],
            ..ApplicationSettings::default()
        })
        .start()
        .await
        .expect("start the simulator");
    let base = sim.base_url();
    let url = format!(
        "{base}/oauth/authorize?response_type=code&client_id=e2e-client&approval_prompt=auto\
         &mode=test&redirect_uri={}\
         &scope=required%3Aread_vehicle_info+required%3Aread_odometer+read_location+read_battery",
        url::form_urlencoded::byte_serialize(redirect_uri.as_bytes()).collect::<String>()
    );
    let dir = common::target_dir().join("browser");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    let shot = dir.join("connect-test-mode.png");
    let shot = shot.to_string_lossy();
    let email = format!(
        "{}@email.com",
        sim.mint_app_token().get(..12).unwrap_or("new-user")
    );

    let seen = connect(&url, &redirect_uri, &email, &shot, false).await;
    // Every page after the preamble is the form's target: the query (and the redirect URI in
    // it) is gone from the address bar, as suites waiting for the redirect URI need.
    assert_eq!(
        seen["urlAfterPreamble"],
        format!("{base}/oauth/authorize").as_str()
    );
    assert!(seen["brandCount"].as_u64().unwrap() >= 20, "{seen}");
    assert_eq!(seen["visibleAfterSearch"], serde_json::json!(["FORD"]));
    assert_eq!(seen["loginTitle"], "Sign in to Ford");
    let permissions: Vec<(String, bool)> = seen["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["required"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        permissions,
        [
            ("read_vehicle_info".to_owned(), true),
            ("read_odometer".to_owned(), true),
            ("read_location".to_owned(), false),
            ("read_battery".to_owned(), false),
        ]
    );
    assert_eq!(seen["unchecked"], "read_location");
    let redirect = seen["redirect"].as_str().expect("redirected");
    assert!(redirect.starts_with(&redirect_uri), "{redirect}");
    let code = query(redirect, "code").expect("a code");

    // The code is good at the token endpoint; the account holds Ford's test vehicle, granted
    // the permissions left checked.
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{base}/oauth/token"))
        .basic_auth("e2e-client", Some("e2e-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = token["access_token"].as_str().expect("access token");
    let vehicles = read(&http, &base, access, "/v2.0/vehicles").await;
    let ids = vehicles["vehicles"].as_array().unwrap();
    assert_eq!(ids.len(), 1, "{vehicles}");
    let id = ids[0].as_str().unwrap().to_owned();
    assert_eq!(seen["vehicles"], serde_json::json!([id]));
    let attributes = read(&http, &base, access, &format!("/v2.0/vehicles/{id}")).await;
    assert_eq!(attributes["make"], "FORD");
    assert_eq!(attributes["model"], "Mustang Mach-E");
    let granted = read(
        &http,
        &base,
        access,
        &format!("/v2.0/vehicles/{id}/permissions"),
    )
    .await;
    let mut granted: Vec<&str> = granted["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    granted.sort_unstable();
    assert_eq!(
        granted,
        ["read_battery", "read_odometer", "read_vehicle_info"]
    );

    // The same e-mail signs in to the same account and vehicle.
    let again = connect(&url, &redirect_uri, &email, &shot, false).await;
    assert_eq!(again["vehicles"], serde_json::json!([id]));

    // Deny: back to the application with access_denied.
    let denied = connect(&url, &redirect_uri, &email, &shot, true).await;
    let back = denied["redirect"].as_str().expect("redirected");
    assert_eq!(query(back, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(back, "code"), None);
    sim.shutdown().await;
}
