//! Connect's modes over plain HTTP, as a browser walks them (a client that does not follow
//! redirects, posting the pages' forms as `application/x-www-form-urlencoded`): `mode=test`
//! and `mode=simulated` walk the platform's page sequence (preamble, brand list, login,
//! permissions) with any e-mail; live mode keeps the one-page form. Every approval is checked
//! through the token endpoint, the API v2.0 and the management API.

use serde_json::{Value, json};
use smartcar_sim::testing::{client, exchange, location, param, request_id};
use smartcar_sim::{ApproveOptions, Simulator};

/// The scope of every authorization here: one required permission, two optional ones.
const SCOPE: &str = "required:read_vehicle_info read_odometer read_location";

/// Each test brand's make and model as its test vehicle reports them (`fleet::TEST_BRANDS`).
const TEST_VEHICLES: &[(&str, &str)] = &[
    ("ACURA", "RDX"),
    ("AUDI", "e-tron"),
    ("BMW", "i3"),
    ("BUICK", "Encore GX"),
    ("CADILLAC", "LYRIQ"),
    ("CHEVROLET", "Volt"),
    ("CHRYSLER", "Pacifica"),
    ("DODGE", "Durango"),
    ("FORD", "Mustang Mach-E"),
    ("GMC", "Sierra"),
    ("HONDA", "Accord"),
    ("HYUNDAI", "IONIQ 5"),
    ("INFINITI", "QX50"),
    ("JAGUAR", "I-PACE"),
    ("JEEP", "Wrangler 4xe"),
    ("KIA", "Niro EV"),
    ("LAND ROVER", "Range Rover"),
    ("LEXUS", "RX 450h"),
    ("LINCOLN", "Aviator"),
    ("MERCEDES-BENZ", "EQS"),
    ("MINI", "Cooper SE"),
    ("NISSAN", "LEAF"),
    ("POLESTAR", "2"),
    ("PORSCHE", "Taycan"),
    ("RAM", "1500"),
    ("RIVIAN", "R1T"),
    ("SUBARU", "Solterra"),
    ("TESLA", "Model S"),
    ("TOYOTA", "RAV4 Prime"),
    ("VOLKSWAGEN", "ID.4"),
    ("VOLVO", "XC40 Recharge"),
];

struct Env {
    sim: Simulator,
    http: reqwest::Client,
    base: String,
}

async fn start() -> Env {
    let sim = Simulator::builder()
        .seed(11)
        .start()
        .await
        .expect("simulator");
    let base = sim.base_url();
    Env {
        sim,
        http: client(),
        base,
    }
}

/// An e-mail no one used before.
fn random_email() -> String {
    format!("driver-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// A page's status and HTML.
struct Page {
    status: u16,
    url: url::Url,
    html: String,
}

impl Page {
    async fn of(response: reqwest::Response) -> Page {
        let status = response.status().as_u16();
        assert!(
            response.headers().get("location").is_none(),
            "a page, not a redirect (status {status})"
        );
        let url = response.url().clone();
        let html = response.text().await.expect("body");
        Page { status, url, html }
    }

    #[track_caller]
    fn has(&self, text: &str) {
        assert!(self.html.contains(text), "no {text:?} in\n{}", self.html);
    }

    #[track_caller]
    fn lacks(&self, text: &str) {
        assert!(!self.html.contains(text), "{text:?} in\n{}", self.html);
    }

    /// Every attribute value that follows `marker` (which ends with the value's opening
    /// quote), in page order.
    fn values_after(&self, marker: &str) -> Vec<String> {
        self.html
            .match_indices(marker)
            .map(|(i, _)| {
                let rest = &self.html[i + marker.len()..];
                rest[..rest.find('"').unwrap()].to_owned()
            })
            .collect()
    }

    /// The ids of the brand buttons (`button#<ID>.brand-list-item`), in page order.
    fn brands(&self) -> Vec<String> {
        self.values_after("class=\"brand-list-item\" id=\"")
    }

    /// The values of the page's `vehicle` inputs.
    fn vehicles(&self) -> Vec<String> {
        self.values_after("name=\"vehicle\" value=\"")
    }

    /// The `<input>` of a permission checkbox.
    fn permission_input(&self, permission: &str) -> &str {
        let marker = format!("name=\"permission\" value=\"{permission}\"");
        let at = self
            .html
            .find(&marker)
            .unwrap_or_else(|| panic!("no checkbox for {permission}"));
        let start = self.html[..at].rfind("<input").unwrap();
        let end = at + self.html[at..].find('>').unwrap() + 1;
        &self.html[start..end]
    }
}

impl Env {
    /// An authorize URL for the code-flow redirect URI with [`SCOPE`], `state=st-7`, plus
    /// `extra` (`mode=test`, `make=TESLA`, …).
    fn authorize_url(&self, extra: &[(&str, &str)]) -> String {
        let app = self.sim.app();
        let mut url = url::Url::parse(&format!("{}/oauth/authorize", self.base)).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &app.client_id)
            .append_pair("redirect_uri", &app.redirect_uris[0])
            .append_pair("scope", SCOPE)
            .append_pair("state", "st-7")
            .extend_pairs(extra);
        url.into()
    }

    async fn open(&self, extra: &[(&str, &str)]) -> Page {
        let response = self
            .http
            .get(self.authorize_url(extra))
            .send()
            .await
            .unwrap();
        Page::of(response).await
    }

    /// Posts a page's form as a browser does (to the form's target, `/oauth/authorize`).
    async fn submit(&self, fields: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}/oauth/authorize", self.base))
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    async fn submit_page(&self, fields: &[(&str, &str)]) -> Page {
        Page::of(self.submit(fields).await).await
    }

    /// Opens a Connect URL with `extra`, continues, picks `brand`, signs in as `email`:
    /// the request id and the permissions page.
    async fn to_permissions(
        &self,
        extra: &[(&str, &str)],
        brand: &str,
        email: &str,
    ) -> (String, Page) {
        let first = self.open(extra).await;
        assert_eq!(first.status, 200);
        let request = request_id(&first.html);
        let brands = self
            .submit_page(&[("request", &request), ("action", "continue")])
            .await;
        brands.has("id=\"brand-search\"");
        let login = self
            .submit_page(&[("request", &request), ("action", "brand"), ("brand", brand)])
            .await;
        login.has("id=\"sign-in-button\"");
        let permissions = self
            .submit_page(&[
                ("request", &request),
                ("action", "sign_in"),
                ("username", email),
                ("password", "x"),
            ])
            .await;
        assert_eq!(permissions.status, 200);
        permissions.has("id=\"approval-button\"");
        (request, permissions)
    }

    /// Approves the permissions page (optional `permissions` left checked, the page's one
    /// vehicle chosen): the vehicle id and the redirect.
    async fn approve(
        &self,
        request: &str,
        page: &Page,
        permissions: &[&str],
    ) -> (String, url::Url) {
        let vehicles = page.vehicles();
        assert_eq!(vehicles.len(), 1, "one vehicle offered: {vehicles:?}");
        let mut fields = vec![("request", request), ("action", "approve")];
        fields.extend(permissions.iter().map(|p| ("permission", *p)));
        fields.push(("vehicle", &vehicles[0]));
        let response = self.submit(&fields).await;
        assert_eq!(response.status(), 302);
        (vehicles[0].clone(), location(&response))
    }

    /// Exchanges the redirect's code: the access token.
    async fn token(&self, redirect: &url::Url) -> String {
        let code = param(redirect, "code").unwrap_or_else(|| panic!("no code in {redirect}"));
        let (status, tokens) = exchange(&self.sim, &code).await;
        assert_eq!(status, 200, "{tokens}");
        tokens["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// A v2.0 read with a user access token.
    async fn api(&self, token: &str, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// The management API's connections of a vehicle (Basic `default:<amt>`).
    async fn connections(&self, vehicle: &str) -> Vec<Value> {
        let response = self
            .http
            .get(format!("{}/v2.0/management/connections", self.base))
            .query(&[("vehicle_id", vehicle)])
            .basic_auth("default", Some(self.sim.app().amt))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["connections"].as_array().expect("connections").clone()
    }
}

#[tokio::test]
async fn test_mode_walks_the_platforms_pages() {
    let env = start().await;
    let redirect_uri = env.sim.app().redirect_uris[0].clone();

    // The preamble.
    let preamble = env.open(&[("mode", "test")]).await;
    assert_eq!(preamble.status, 200);
    preamble.has("id=\"continue-button\"");
    preamble.has("Simulated Smartcar Connect · mode test");
    preamble.lacks("id=\"brand-search\"");
    let request = request_id(&preamble.html);
    assert!(!request.is_empty());

    // The brand list.
    let brands = env
        .submit_page(&[("request", &request), ("action", "continue")])
        .await;
    assert_eq!(brands.status, 200);
    brands.has("id=\"brand-search\"");
    brands.lacks("id=\"continue-button\"");
    for (id, name) in [
        ("CHEVROLET", "Chevrolet"),
        ("FORD", "Ford"),
        ("TESLA", "Tesla"),
        ("MERCEDES_BENZ", "Mercedes-Benz"),
    ] {
        brands.has(&format!(
            "<button type=\"submit\" class=\"brand-list-item\" id=\"{id}\" name=\"brand\" \
             value=\"{id}\">{name}</button>"
        ));
    }
    assert_eq!(brands.brands().len(), TEST_VEHICLES.len());

    // Searching narrows the list.
    let found = env
        .submit_page(&[("request", &request), ("action", "search"), ("q", "chev")])
        .await;
    assert_eq!(found.status, 200);
    assert_eq!(found.brands(), ["CHEVROLET"]);
    found.has("id=\"brand-search\" name=\"q\" value=\"chev\"");

    // A brand: its login page, at the form's target (no Connect query any more).
    let response = env
        .submit(&[
            ("request", &request),
            ("action", "brand"),
            ("brand", "FORD"),
        ])
        .await;
    let login = Page::of(response).await;
    assert_eq!(login.status, 200);
    assert_eq!(login.url.path(), "/oauth/authorize");
    assert_eq!(login.url.query(), None);
    login.has("<form method=\"post\" action=\"/oauth/authorize\">");
    login.has("<h1>Sign in to Ford</h1>");
    login.has("id=\"username\"");
    login.has("id=\"password\"");
    login.has("id=\"sign-in-button\"");
    login.has("id=\"back-button\"");
    login.lacks(&redirect_uri);
    login.lacks("id=\"brand-search\"");

    // Any e-mail and password sign in: the permissions page.
    let email = random_email();
    let permissions = env
        .submit_page(&[
            ("request", &request),
            ("action", "sign_in"),
            ("username", &email),
            ("password", "x"),
        ])
        .await;
    assert_eq!(permissions.status, 200);
    permissions.has("class=\"page-content\"");
    permissions.has("id=\"approval-button\"");
    permissions.has("id=\"deny-button\"");
    assert_eq!(
        permissions.permission_input("read_vehicle_info"),
        "<input type=\"checkbox\" name=\"permission\" value=\"read_vehicle_info\" checked disabled>"
    );
    for optional in ["read_odometer", "read_location"] {
        assert_eq!(
            permissions.permission_input(optional),
            format!("<input type=\"checkbox\" name=\"permission\" value=\"{optional}\" checked>")
        );
    }
    permissions.has("Mustang Mach-E");

    // Approve with read_location unchecked (a browser leaves out unchecked and disabled boxes).
    let (vehicle, redirect) = env
        .approve(&request, &permissions, &["read_odometer"])
        .await;
    assert_eq!(
        redirect.as_str().split('?').next(),
        Some(redirect_uri.as_str())
    );
    assert_eq!(param(&redirect, "state").as_deref(), Some("st-7"));
    assert_eq!(param(&redirect, "error"), None);
    let token = env.token(&redirect).await;

    let (status, vehicles) = env.api(&token, "/v2.0/vehicles").await;
    assert_eq!(status, 200);
    assert_eq!(vehicles["vehicles"], json!([vehicle]));
    let (status, attributes) = env.api(&token, &format!("/v2.0/vehicles/{vehicle}/")).await;
    assert_eq!(status, 200);
    assert_eq!(attributes["id"], vehicle.as_str());
    assert_eq!(attributes["make"], "FORD");
    assert_eq!(attributes["model"], "Mustang Mach-E");
    let (status, granted) = env
        .api(&token, &format!("/v2.0/vehicles/{vehicle}/permissions"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        granted["permissions"],
        json!(["read_odometer", "read_vehicle_info"])
    );
    let (status, body) = env
        .api(&token, &format!("/v2.0/vehicles/{vehicle}/location"))
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["type"], "PERMISSION");
    let (status, body) = env
        .api(&token, &format!("/v2.0/vehicles/{vehicle}/odometer"))
        .await;
    assert_eq!(status, 200, "{body}");

    let connections = env.connections(&vehicle).await;
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0]["vehicleId"], vehicle.as_str());
    assert_eq!(connections[0]["mode"], "test");
    let user = env
        .sim
        .users()
        .into_iter()
        .find(|u| u.email == email)
        .expect("the account the login opened");
    assert_eq!(connections[0]["userId"], user.id.as_str());
    assert_eq!(user.vehicle_ids, std::slice::from_ref(&vehicle));

    // The request ended with the redirect.
    let response = env
        .submit(&[("request", &request), ("action", "approve")])
        .await;
    assert_eq!(response.status(), 400);
    let page = Page::of(response).await;
    page.has("This authorization request is unknown or has expired.");
}

#[tokio::test]
async fn the_same_email_reopens_its_account_and_another_gets_another_vehicle() {
    let env = start().await;
    let email = random_email();
    let mode = [("mode", "test")];

    let (request, page) = env.to_permissions(&mode, "FORD", &email).await;
    let (first, redirect) = env.approve(&request, &page, &["read_odometer"]).await;
    assert!(param(&redirect, "code").is_some());

    // The same e-mail and brand: the same account and vehicle (offered before approving).
    let (request, page) = env.to_permissions(&mode, "FORD", &email).await;
    assert_eq!(page.vehicles(), std::slice::from_ref(&first));
    let (again, redirect) = env.approve(&request, &page, &[]).await;
    assert_eq!(again, first);
    let token = env.token(&redirect).await;
    let (_, vehicles) = env.api(&token, "/v2.0/vehicles").await;
    assert_eq!(vehicles["vehicles"], json!([first]));
    // The same e-mail typed in another case is the same account.
    let (_, page) = env
        .to_permissions(&mode, "FORD", &email.to_ascii_uppercase())
        .await;
    assert_eq!(page.vehicles(), std::slice::from_ref(&first));
    let accounts: Vec<_> = env
        .sim
        .users()
        .into_iter()
        .filter(|u| u.email == email)
        .collect();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].vehicle_ids, std::slice::from_ref(&first));

    // Another e-mail: another account, another vehicle of the same model.
    let other = random_email();
    let (request, page) = env.to_permissions(&mode, "FORD", &other).await;
    let (second, redirect) = env.approve(&request, &page, &["read_odometer"]).await;
    assert_ne!(second, first);
    let token = env.token(&redirect).await;
    let (_, attributes) = env.api(&token, &format!("/v2.0/vehicles/{second}")).await;
    assert_eq!(attributes["make"], "FORD");
    assert_eq!(attributes["model"], "Mustang Mach-E");
    let (_, vehicles) = env.api(&token, "/v2.0/vehicles").await;
    assert_eq!(vehicles["vehicles"], json!([second]));
}

#[tokio::test]
async fn deny_redirects_with_access_denied() {
    let env = start().await;
    let (request, page) = env
        .to_permissions(&[("mode", "test")], "TESLA", &random_email())
        .await;
    let vehicles = page.vehicles();
    let response = env
        .submit(&[
            ("request", &request),
            ("action", "deny"),
            ("vehicle", &vehicles[0]),
        ])
        .await;
    assert_eq!(response.status(), 302);
    let redirect = location(&response);
    assert_eq!(
        redirect.as_str().split('?').next(),
        Some(env.sim.app().redirect_uris[0].as_str())
    );
    assert_eq!(param(&redirect, "error").as_deref(), Some("access_denied"));
    assert_eq!(
        param(&redirect, "error_description").as_deref(),
        Some("User denied access to application.")
    );
    assert_eq!(param(&redirect, "state").as_deref(), Some("st-7"));
    assert_eq!(param(&redirect, "code"), None);
    // Nothing was connected.
    assert!(env.connections(&vehicles[0]).await.is_empty());
}

#[tokio::test]
async fn an_action_out_of_order_shows_the_same_page_again() {
    let env = start().await;
    let preamble = env.open(&[("mode", "test")]).await;
    let request = request_id(&preamble.html);

    // Approve on the preamble: the preamble again, no redirect.
    let response = env
        .submit(&[("request", &request), ("action", "approve")])
        .await;
    assert_eq!(response.status(), 200);
    let again = Page::of(response).await;
    again.has("id=\"continue-button\"");
    again.has("<p class=\"error\" id=\"error\">Continue from this page.</p>");
    again.lacks("id=\"approval-button\"");
    assert_eq!(request_id(&again.html), request);

    // Signing in on the brand list: the brand list again.
    let brands = env
        .submit_page(&[("request", &request), ("action", "continue")])
        .await;
    brands.has("id=\"brand-search\"");
    let again = env
        .submit_page(&[
            ("request", &request),
            ("action", "sign_in"),
            ("username", "someone@example.com"),
        ])
        .await;
    assert_eq!(again.status, 200);
    again.has("id=\"brand-search\"");
    again.has("Continue from this page.");
    assert!(
        env.sim
            .users()
            .iter()
            .all(|u| u.email != "someone@example.com")
    );

    // An unknown brand: the list again, asking for one.
    let again = env
        .submit_page(&[
            ("request", &request),
            ("action", "brand"),
            ("brand", "TRABANT"),
        ])
        .await;
    again.has("id=\"brand-search\"");
    again.has("Choose your vehicle&#39;s brand.");

    // The walk goes on from where it stands.
    let login = env
        .submit_page(&[("request", &request), ("action", "brand"), ("brand", "BMW")])
        .await;
    login.has("<h1>Sign in to BMW</h1>");
    // An empty e-mail: the login page again.
    let again = env
        .submit_page(&[
            ("request", &request),
            ("action", "sign_in"),
            ("username", " "),
        ])
        .await;
    again.has("id=\"sign-in-button\"");
    again.has("Enter the e-mail of your connected-services account.");
}

#[tokio::test]
async fn an_error_identity_gets_a_vehicle_failing_with_its_error() {
    let env = start().await;
    let (request, page) = env
        .to_permissions(
            &[("mode", "test")],
            "FORD",
            "VEHICLE_STATE.ASLEEP@smartcar.com",
        )
        .await;
    let (vehicle, redirect) = env.approve(&request, &page, &["read_odometer"]).await;
    let token = env.token(&redirect).await;
    let (status, vehicles) = env.api(&token, "/v2.0/vehicles").await;
    assert_eq!(status, 200);
    assert_eq!(vehicles["vehicles"], json!([vehicle]));
    for read in ["odometer", ""] {
        let (status, body) = env
            .api(&token, &format!("/v2.0/vehicles/{vehicle}/{read}"))
            .await;
        assert_eq!(status, 409, "{read}: {body}");
        assert_eq!(body["type"], "VEHICLE_STATE");
        assert_eq!(body["code"], "ASLEEP");
    }
}

#[tokio::test]
async fn the_incompatible_identity_redirects_at_sign_in() {
    let env = start().await;
    let preamble = env.open(&[("mode", "test")]).await;
    let request = request_id(&preamble.html);
    env.submit_page(&[("request", &request), ("action", "continue")])
        .await
        .has("id=\"brand-search\"");
    env.submit_page(&[
        ("request", &request),
        ("action", "brand"),
        ("brand", "AUDI"),
    ])
    .await
    .has("id=\"username\"");
    let response = env
        .submit(&[
            ("request", &request),
            ("action", "sign_in"),
            ("username", "smartcar@vehicle-incompatible.com"),
            ("password", "x"),
        ])
        .await;
    assert_eq!(response.status(), 302);
    let redirect = location(&response);
    assert_eq!(
        redirect.as_str().split('?').next(),
        Some(env.sim.app().redirect_uris[0].as_str())
    );
    assert_eq!(
        param(&redirect, "error").as_deref(),
        Some("vehicle_incompatible")
    );
    assert_eq!(param(&redirect, "make").as_deref(), Some("AUDI"));
    assert_eq!(param(&redirect, "model").as_deref(), Some("A4"));
    assert_eq!(param(&redirect, "year").as_deref(), Some("2015"));
    assert_eq!(
        param(&redirect, "vin").as_deref(),
        Some("0SCAUDI012FE3B132")
    );
    assert_eq!(param(&redirect, "state").as_deref(), Some("st-7"));
    assert_eq!(param(&redirect, "code"), None);
}

#[tokio::test]
async fn a_make_in_the_url_skips_the_brand_list() {
    let env = start().await;
    let preamble = env.open(&[("mode", "test"), ("make", "TESLA")]).await;
    preamble.has("id=\"continue-button\"");
    let request = request_id(&preamble.html);
    let login = env
        .submit_page(&[("request", &request), ("action", "continue")])
        .await;
    assert_eq!(login.status, 200);
    login.has("<h1>Sign in to Tesla</h1>");
    login.has("id=\"username\"");
    login.has("id=\"sign-in-button\"");
    login.lacks("id=\"brand-search\"");
    login.lacks("brand-list-item");
    // The make is fixed: no way back to the list.
    login.lacks("id=\"back-button\"");
    let again = env
        .submit_page(&[("request", &request), ("action", "back")])
        .await;
    again.has("id=\"sign-in-button\"");
    again.lacks("id=\"brand-search\"");

    let permissions = env
        .submit_page(&[
            ("request", &request),
            ("action", "sign_in"),
            ("username", &random_email()),
            ("password", "x"),
        ])
        .await;
    let (vehicle, redirect) = env
        .approve(&request, &permissions, &["read_odometer", "read_location"])
        .await;
    let token = env.token(&redirect).await;
    let (_, attributes) = env.api(&token, &format!("/v2.0/vehicles/{vehicle}")).await;
    assert_eq!(attributes["make"], "TESLA");
    assert_eq!(attributes["model"], "Model S");
    let (_, granted) = env
        .api(&token, &format!("/v2.0/vehicles/{vehicle}/permissions"))
        .await;
    assert_eq!(
        granted["permissions"],
        json!(["read_location", "read_odometer", "read_vehicle_info"])
    );
}

#[tokio::test]
async fn simulated_mode_walks_the_same_pages_to_a_simulated_vehicle() {
    let env = start().await;
    let preamble = env.open(&[("mode", "simulated")]).await;
    assert_eq!(preamble.status, 200);
    preamble.has("id=\"continue-button\"");
    preamble.has("Simulated Smartcar Connect · mode simulated");
    let request = request_id(&preamble.html);
    let brands = env
        .submit_page(&[("request", &request), ("action", "continue")])
        .await;
    brands.has("id=\"brand-search\"");
    brands.has("class=\"brand-list-item\" id=\"CHEVROLET\"");
    let login = env
        .submit_page(&[
            ("request", &request),
            ("action", "brand"),
            ("brand", "CHEVROLET"),
        ])
        .await;
    login.has("<h1>Sign in to Chevrolet</h1>");
    let permissions = env
        .submit_page(&[
            ("request", &request),
            ("action", "sign_in"),
            ("username", &random_email()),
            ("password", "x"),
        ])
        .await;
    permissions.has("class=\"page-content\"");
    permissions.has("id=\"approval-button\"");
    permissions.has("SIMULATED PHEV");

    let (vehicle, redirect) = env
        .approve(&request, &permissions, &["read_odometer"])
        .await;
    let token = env.token(&redirect).await;
    let (status, attributes) = env.api(&token, &format!("/v2.0/vehicles/{vehicle}")).await;
    assert_eq!(status, 200);
    assert_eq!(attributes["make"], "SIMULATED");
    assert_eq!(attributes["model"], "PHEV");
    let connections = env.connections(&vehicle).await;
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0]["mode"], "simulated");
}

#[tokio::test]
async fn live_mode_keeps_the_one_page_form() {
    let env = start().await;
    let page = env.open(&[]).await;
    assert_eq!(page.status, 200);
    page.has("id=\"approve\"");
    page.has("id=\"deny\"");
    page.has("id=\"email\"");
    page.has("Simulated Smartcar Connect · mode live");
    page.lacks("continue-button");
    page.lacks("brand-search");
    page.lacks("approval-button");
    // The first user's vehicles are offered at once.
    let first = &env.sim.users()[0];
    assert_eq!(page.vehicles(), first.vehicle_ids);

    // `mode=live` is the same.
    let explicit = env.open(&[("mode", "live")]).await;
    explicit.has("id=\"approve\"");
    explicit.lacks("continue-button");

    // Approving the form: the fleet's vehicles, mode live.
    let request = request_id(&page.html);
    let mut fields = vec![("request", request.as_str()), ("action", "approve")];
    fields.extend(first.vehicle_ids.iter().map(|v| ("vehicle", v.as_str())));
    let response = env.submit(&fields).await;
    assert_eq!(response.status(), 302);
    let token = env.token(&location(&response)).await;
    let (_, vehicles) = env.api(&token, "/v2.0/vehicles").await;
    assert_eq!(vehicles["vehicles"], json!(first.vehicle_ids));
    let connections = env.connections(&first.vehicle_ids[0]).await;
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0]["mode"], "live");
}

#[tokio::test]
async fn in_process_approval_in_test_mode_opens_a_test_account() {
    let env = start().await;
    let url = env.authorize_url(&[("mode", "test")]);
    let before = env.sim.users().len();
    let redirect = env
        .sim
        .approve(&url, ApproveOptions::new().user("someone@example.org"))
        .expect("approve");
    assert_eq!(
        redirect.as_str().split('?').next(),
        Some(env.sim.app().redirect_uris[0].as_str())
    );
    assert_eq!(param(&redirect, "state").as_deref(), Some("st-7"));
    let token = env.token(&redirect).await;

    let users = env.sim.users();
    assert_eq!(users.len(), before + 1);
    let account = users
        .iter()
        .find(|u| u.email == "someone@example.org")
        .expect("a test account");
    assert_eq!(account.vehicle_ids.len(), 1);
    let vehicle = account.vehicle_ids[0].clone();

    let (_, vehicles) = env.api(&token, "/v2.0/vehicles").await;
    assert_eq!(vehicles["vehicles"], json!([vehicle]));
    let (status, attributes) = env.api(&token, &format!("/v2.0/vehicles/{vehicle}")).await;
    assert_eq!(status, 200);
    let make = attributes["make"].as_str().unwrap();
    let model = attributes["model"].as_str().unwrap();
    assert!(
        TEST_VEHICLES.contains(&(make, model)),
        "{make} {model} is not a brand's test vehicle"
    );
    let (_, granted) = env
        .api(&token, &format!("/v2.0/vehicles/{vehicle}/permissions"))
        .await;
    assert_eq!(
        granted["permissions"],
        json!(["read_location", "read_odometer", "read_vehicle_info"])
    );
    let connections = env.connections(&vehicle).await;
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0]["mode"], "test");

    // Again: the same account and vehicle.
    let again = env
        .sim
        .approve(&url, ApproveOptions::new().user("someone@example.org"))
        .expect("approve");
    let token = env.token(&again).await;
    let (_, vehicles) = env.api(&token, "/v2.0/vehicles").await;
    assert_eq!(vehicles["vehicles"], json!([vehicle]));
    assert_eq!(env.sim.users().len(), before + 1);
}
