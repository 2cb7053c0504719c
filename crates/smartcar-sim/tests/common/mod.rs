//! Helpers shared by the simulator's integration tests.
#![allow(dead_code)]

use smartcar_sim::Simulator;

/// A client that does not follow redirects (Connect answers 302s the tests inspect).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// An authorize URL for the simulator's app with the code-flow redirect URI, plus `extra`.
pub fn authorize_url(sim: &Simulator, extra: &str) -> String {
    let app = sim.app();
    let mut url = url::Url::parse(&format!("{}/oauth/authorize", sim.base_url())).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &app.client_id)
        .append_pair("redirect_uri", &app.redirect_uris[0])
        .append_pair("scope", "read_odometer required:read_vehicle_info")
        .append_pair("state", "st-1");
    let mut s = url.to_string();
    if !extra.is_empty() {
        s.push('&');
        s.push_str(extra);
    }
    s
}

/// The `Location` of a redirect, parsed.
pub fn location(response: &reqwest::Response) -> url::Url {
    let value = response
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location header (status {})", response.status()))
        .to_str()
        .unwrap();
    url::Url::parse(value).unwrap()
}

/// A query parameter of a URL.
pub fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The hidden `request` id of a rendered Connect page.
pub fn request_id(html: &str) -> String {
    let marker = "name=\"request\" value=\"";
    let start = html.find(marker).expect("request field") + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

/// Runs Connect in-process and returns the code.
pub fn code_for(sim: &Simulator, extra: &str) -> String {
    let redirect = sim
        .approve(
            &authorize_url(sim, extra),
            smartcar_sim::ApproveOptions::new(),
        )
        .expect("approve");
    param(&redirect, "code").expect("code in redirect")
}

/// Exchanges a code with Basic auth; returns (status, JSON body).
pub async fn exchange(sim: &Simulator, code: &str) -> (u16, serde_json::Value) {
    let app = sim.app();
    let response = client()
        .post(format!("{}/oauth/token", sim.base_url()))
        .basic_auth(&app.client_id, Some(&app.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", app.redirect_uris[0].as_str()),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Refreshes with Basic auth; returns (status, JSON body).
pub async fn refresh(sim: &Simulator, token: &str) -> (u16, serde_json::Value) {
    let app = sim.app();
    let response = client()
        .post(format!("{}/oauth/token", sim.base_url()))
        .basic_auth(&app.client_id, Some(&app.client_secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}
