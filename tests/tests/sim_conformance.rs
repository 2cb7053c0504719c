//! The simulator against the spec: drive every generated operation of
//! `openapi/smartcar.yaml` over real HTTP (successes and a few refusals), then validate every
//! JSON body the simulator sent — as recorded in its request log — against the schema the spec
//! gives for that operation and status, strictly (no undocumented field).

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};
use smartcar_sim::Simulator;
use smartcar_sim::model::WebhookVersion;
use smartcar_tests::spec::{Operation, Spec, Strictness};

/// How a request authenticates.
#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    Basic(&'a str, &'a str),
}

struct Driver {
    http: reqwest::Client,
    base: String,
}

impl Driver {
    async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        req = match auth {
            Auth::None => req,
            Auth::Bearer(t) => req.bearer_auth(t),
            Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
        };
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("simulator answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn form(&self, path: &str, auth: Auth<'_>, form: &[(&str, &str)]) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Auth::Basic(u, p) = auth {
            req = req.basic_auth(u, Some(p));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

/// Finds the operation a concrete request path belongs to (literal segments must match).
fn operation_for<'a>(
    ops: &'a [Operation<'a>],
    method: &str,
    path: &str,
) -> Option<&'a Operation<'a>> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    ops.iter()
        .filter(|op| op.method.eq_ignore_ascii_case(method))
        .filter(|op| {
            let template: Vec<&str> = op.path.split('/').collect();
            template.len() == segments.len()
                && template
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t.starts_with('{') || t == s)
        })
        // The template with the most literal segments wins (`/commands/charge/start` over
        // `/commands/{execution_id}`).
        .max_by_key(|op| op.path.split('/').filter(|t| !t.starts_with('{')).count())
}

#[tokio::test]
async fn every_operation_answers_bodies_that_match_the_spec() {
    let spec = Spec::load();
    let sim = Simulator::start().await.unwrap();
    let app = sim.app();
    let d = Driver {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        base: sim.base_url(),
    };
    let user = sim.users()[0].clone();
    let vehicles: Vec<_> = sim.vehicles();
    let all_ids: Vec<&str> = vehicles.iter().map(|v| v.id.as_str()).collect();
    let scopes = [
        "read_vehicle_info",
        "read_vin",
        "read_odometer",
        "read_location",
        "read_fuel",
        "read_battery",
        "read_charge",
        "read_engine_oil",
        "read_tires",
        "read_security",
        "read_service_history",
        "read_diagnostics",
        "control_security",
        "control_charge",
        "control_navigation",
    ];
    let minted = sim.mint_access_token(&user.id, &all_ids, &scopes);
    let token = minted.access_token.as_str();
    let basic_client = Auth::Basic(&app.client_id, &app.client_secret);

    // --- tokens: a real Connect approval, code exchange, refresh, client credentials.
    let authorize = format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri=http%3A%2F%2Flocalhost%3A8000%2Fcallback&scope=read_odometer&state=s1",
        app.client_id
    );
    let redirect = sim.approve(&authorize, Default::default()).unwrap();
    let code = redirect
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let (s, tokens) = d
        .form(
            "/oauth/token",
            basic_client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://localhost:8000/callback"),
            ],
        )
        .await;
    assert_eq!(s, 200, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (s, _) = d
        .form(
            "/oauth/token",
            basic_client,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = d
        .form(
            "/oauth/token",
            basic_client,
            &[("grant_type", "authorization_code"), ("code", "nope")],
        )
        .await;
    assert_eq!(s, 400);
    let (s, app_token) = d
        .form(
            "/oauth2/token",
            Auth::None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &app.client_id),
                ("client_secret", &app.client_secret),
            ],
        )
        .await;
    assert_eq!(s, 200);
    let app_token = app_token["access_token"].as_str().unwrap().to_owned();
    let (s, _) = d
        .form(
            "/oauth2/token",
            Auth::None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &app.client_id),
                ("client_secret", "wrong"),
            ],
        )
        .await;
    assert_eq!(s, 401);

    // --- v2 account level.
    let bearer = Auth::Bearer(token);
    assert_eq!(
        d.call(Method::GET, "/v2.0/user", bearer, &[], None).await.0,
        200
    );
    assert_eq!(
        d.call(
            Method::GET,
            "/v2.0/vehicles?limit=2&offset=1",
            bearer,
            &[],
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        d.call(Method::GET, "/v2.0/user", Auth::Bearer("bad"), &[], None)
            .await
            .0,
        401
    );

    // --- every v2 read on every vehicle (EV-only reads refuse ICE cars: those errors are checked too).
    let reads = [
        "",
        "/vin",
        "/odometer",
        "/location",
        "/fuel",
        "/battery",
        "/battery/capacity",
        "/battery/nominal_capacity",
        "/charge",
        "/charge/limit",
        "/engine/oil",
        "/tires/pressure",
        "/security",
        "/service/history",
        "/diagnostics/system_status",
        "/diagnostics/dtcs",
        "/permissions",
    ];
    let mut succeeded = BTreeSet::new();
    for v in &vehicles {
        for r in reads {
            for units in ["metric", "imperial"] {
                let (s, _) = d
                    .call(
                        Method::GET,
                        &format!("/v2.0/vehicles/{}{r}", v.id),
                        bearer,
                        &[("sc-unit-system", units)],
                        None,
                    )
                    .await;
                if s == 200 {
                    succeeded.insert(r);
                }
            }
        }
    }
    assert_eq!(
        succeeded.len(),
        reads.len(),
        "some read never succeeded: {succeeded:?}"
    );
    let ev = vehicles
        .iter()
        .find(|v| v.battery.is_some())
        .expect("an EV in the fleet");
    // Plugged in, half charged, not charging: every charge command can succeed.
    if let Some(b) = sim
        .state()
        .world()
        .vehicles
        .get_mut(&ev.id)
        .and_then(|v| v.battery.as_mut())
    {
        b.plugged_in = true;
        b.charging = false;
        b.percent = 0.5;
        b.charge_limit = 0.9;
    }
    let ev_path = |suffix: &str| format!("/v2.0/vehicles/{}{suffix}", ev.id);

    // --- v2 commands and batch.
    let ok_or_state = |s: u16| s == 200 || s == 409;
    assert_eq!(
        d.call(
            Method::POST,
            &ev_path("/security"),
            bearer,
            &[],
            Some(json!({"action": "LOCK"}))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        d.call(
            Method::POST,
            &ev_path("/security"),
            bearer,
            &[],
            Some(json!({"action": "OPEN"}))
        )
        .await
        .0,
        400
    );
    assert!(ok_or_state(
        d.call(
            Method::POST,
            &ev_path("/charge"),
            bearer,
            &[],
            Some(json!({"action": "START"}))
        )
        .await
        .0
    ));
    assert_eq!(
        d.call(
            Method::POST,
            &ev_path("/charge/limit"),
            bearer,
            &[],
            Some(json!({"limit": 0.8}))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        d.call(
            Method::POST,
            &ev_path("/charge/limit"),
            bearer,
            &[],
            Some(json!({"limit": 2}))
        )
        .await
        .0,
        400
    );
    assert_eq!(
        d.call(
            Method::POST,
            &ev_path("/navigation/destination"),
            bearer,
            &[],
            Some(json!({"latitude": 51.5, "longitude": 0.12}))
        )
        .await
        .0,
        200
    );
    let batch =
        json!({"requests": [{"path": "/odometer"}, {"path": "/fuel"}, {"path": "/battery"}]});
    assert_eq!(
        d.call(
            Method::POST,
            &ev_path("/batch"),
            bearer,
            &[("sc-unit-system", "imperial")],
            Some(batch)
        )
        .await
        .0,
        200
    );
    assert_eq!(
        d.call(
            Method::POST,
            &ev_path("/batch"),
            bearer,
            &[],
            Some(json!({}))
        )
        .await
        .0,
        400
    );

    // --- v2 webhooks.
    let hook = sim.add_webhook(
        "http://127.0.0.1:9/hook",
        WebhookVersion::V2,
        "conformance",
        &[],
    );
    assert_eq!(
        d.call(
            Method::POST,
            &ev_path(&format!("/webhooks/{hook}")),
            bearer,
            &[],
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        d.call(
            Method::DELETE,
            &ev_path(&format!("/webhooks/{hook}")),
            Auth::Bearer(&app.amt),
            &[],
            None
        )
        .await
        .0,
        200
    );

    // --- compatibility.
    let vin = &ev.vin;
    assert_eq!(
        d.call(
            Method::GET,
            &format!("/v1.0/compatibility?vin={vin}&scope=read_odometer"),
            basic_client,
            &[],
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        d.call(
            Method::GET,
            "/v1.0/compatibility?scope=read_odometer",
            basic_client,
            &[],
            None
        )
        .await
        .0,
        400
    );
    assert_eq!(
        d.call(
            Method::GET,
            &format!("/v2.0/compatibility?vin={vin}&scope=read_odometer%20read_battery&country=US"),
            basic_client,
            &[],
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        d.call(
            Method::GET,
            "/v2.0/compatibility/matrix?region=US&type=BEV",
            basic_client,
            &[],
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        d.call(
            Method::GET,
            "/v2.0/compatibility/matrix?region=US",
            Auth::None,
            &[],
            None
        )
        .await
        .0,
        401
    );

    // --- management v2.
    let amt_basic = Auth::Basic("default", &app.amt);
    assert_eq!(
        d.call(
            Method::GET,
            "/v2.0/management/connections?limit=2",
            amt_basic,
            &[],
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        d.call(
            Method::GET,
            "/v2.0/management/connections?cursor=garbage!",
            amt_basic,
            &[],
            None
        )
        .await
        .0,
        400
    );

    // --- v3.
    let app_bearer = Auth::Bearer(&app_token);
    let uid: &[(&str, &str)] = &[("sc-user-id", &user.id)];
    let v3 = |suffix: &str| format!("/v3/vehicles/{}{suffix}", ev.id);
    assert_eq!(
        d.call(Method::GET, &v3(""), app_bearer, uid, None).await.0,
        200
    );
    assert_eq!(
        d.call(
            Method::GET,
            &v3("/signals?page=1&pageSize=5"),
            app_bearer,
            uid,
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        d.call(
            Method::GET,
            &v3("/signals/tractionbattery-stateofcharge"),
            app_bearer,
            uid,
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        d.call(
            Method::GET,
            &v3("/signals/no-such-signal"),
            app_bearer,
            uid,
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(
        d.call(Method::GET, &v3("/signals"), app_bearer, &[], None)
            .await
            .0,
        400
    );
    let (s, exec) = d
        .call(
            Method::POST,
            &v3("/commands/security/unlock"),
            app_bearer,
            uid,
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        d.call(
            Method::POST,
            &v3("/commands/security/lock"),
            app_bearer,
            uid,
            None
        )
        .await
        .0,
        200
    );
    assert!(ok_or_state(
        d.call(
            Method::POST,
            &v3("/commands/charge/start"),
            app_bearer,
            uid,
            None
        )
        .await
        .0
    ));
    assert!(ok_or_state(
        d.call(
            Method::POST,
            &v3("/commands/charge/stop"),
            app_bearer,
            uid,
            None
        )
        .await
        .0
    ));
    assert_eq!(
        d.call(
            Method::POST,
            &v3("/commands/charge/set-limit"),
            app_bearer,
            uid,
            Some(json!({"data": {"attributes": {"percent": 80}}}))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        d.call(
            Method::POST,
            &v3("/commands/navigation/set-destination"),
            app_bearer,
            uid,
            Some(json!({"data": {"attributes": {"latitude": 1.0, "longitude": 2.0}}}))
        )
        .await
        .0,
        200
    );
    let exec_id = exec["data"]["id"].as_str().unwrap();
    assert_eq!(
        d.call(
            Method::GET,
            &v3(&format!("/commands/{exec_id}")),
            app_bearer,
            uid,
            None
        )
        .await
        .0,
        200
    );
    let (s, conns) = d
        .call(
            Method::GET,
            &format!("/v3/connections?filter[userId]={}&page[size]=2", user.id),
            app_bearer,
            &[],
            None,
        )
        .await;
    assert_eq!(s, 200);
    let conn_id = conns["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        d.call(
            Method::GET,
            &format!("/v3/connections/{conn_id}"),
            app_bearer,
            &[],
            None
        )
        .await
        .0,
        200
    );

    let hook3 = sim.add_webhook(
        "http://127.0.0.1:9/hook3",
        WebhookVersion::V3,
        "conformance3",
        &["odometer-traveleddistance"],
    );
    let sub = json!({"data": {"attributes": {"webhookId": hook3, "vehicleId": ev.id, "userId": user.id}}});
    assert_eq!(
        d.call(
            Method::POST,
            "/v3/subscriptions",
            app_bearer,
            &[],
            Some(sub)
        )
        .await
        .0,
        202
    );
    let (s, subs) = d
        .call(
            Method::GET,
            &format!("/v3/subscriptions?filter[webhookId]={hook3}"),
            app_bearer,
            &[],
            None,
        )
        .await;
    assert_eq!(s, 200);
    let sub_id = subs["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        d.call(
            Method::GET,
            &format!("/v3/subscriptions/{sub_id}"),
            app_bearer,
            &[],
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        d.call(
            Method::DELETE,
            &format!("/v3/subscriptions/{sub_id}"),
            app_bearer,
            &[],
            None
        )
        .await
        .0,
        204
    );

    // --- removals last.
    assert_eq!(
        d.call(
            Method::DELETE,
            &format!("/v3/connections/{conn_id}"),
            app_bearer,
            &[],
            None
        )
        .await
        .0,
        204
    );
    let other = vehicles.iter().find(|v| v.id != ev.id).unwrap();
    assert_eq!(
        d.call(
            Method::DELETE,
            &format!("/v2.0/vehicles/{}/application", other.id),
            bearer,
            &[],
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        d.call(
            Method::DELETE,
            &format!("/v2.0/management/connections?vehicle_id={}", ev.id),
            amt_basic,
            &[],
            None
        )
        .await
        .0,
        200
    );
    let last_user = &sim.users()[2];
    assert_eq!(
        d.call(
            Method::DELETE,
            &format!("/v3/users/{}", last_user.id),
            app_bearer,
            &[],
            None
        )
        .await
        .0,
        204
    );

    // --- now check everything the simulator sent.
    let ops = spec.operations();
    let generated: BTreeSet<&str> = ops
        .iter()
        .filter(|o| !o.codegen_skipped())
        .map(|o| o.id())
        .collect();
    let mut answered_2xx = BTreeSet::new();
    let mut failures = Vec::new();
    let log = sim.requests();
    assert!(
        log.len() > 200,
        "the log holds the exchanges ({})",
        log.len()
    );
    for exchange in &log {
        let Some(op) = operation_for(&ops, &exchange.method, &exchange.path) else {
            failures.push(format!(
                "{} {}: no operation in the spec",
                exchange.method, exchange.path
            ));
            continue;
        };
        let here = format!(
            "{} {} -> {}",
            exchange.method, exchange.path, exchange.status
        );
        let status = exchange.status.to_string();
        let range = format!("{}XX", &status[..1]);
        let Some(response) = spec
            .response(op, &status)
            .or_else(|| spec.response(op, &range))
        else {
            failures.push(format!("{here}: status not documented for {}", op.id()));
            continue;
        };
        if (200..300).contains(&exchange.status) {
            answered_2xx.insert(op.id());
        }
        let content_type = exchange
            .response_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        let schema = response.pointer("/content/application~1json/schema");
        match (schema, content_type.starts_with("application/json")) {
            (Some(schema), true) => {
                let body: Value = match serde_json::from_slice(&exchange.response_body) {
                    Ok(b) => b,
                    Err(e) => {
                        failures.push(format!("{here}: not JSON: {e}"));
                        continue;
                    }
                };
                if let Err(errors) = spec.check(schema, &body, Strictness::Strict) {
                    failures.push(format!(
                        "{here} ({}):\n    {}",
                        op.id(),
                        errors.join("\n    ")
                    ));
                }
            }
            (None, _) if exchange.response_body.is_empty() => {}
            (None, _) if !content_type.starts_with("application/json") => {}
            (schema, _) => failures.push(format!(
                "{here}: content type `{content_type}`, spec schema present: {}",
                schema.is_some()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} responses do not match the spec:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let missing: Vec<_> = generated.difference(&answered_2xx).collect();
    assert!(
        missing.is_empty(),
        "operations never answered with success: {missing:?}"
    );
    sim.shutdown().await;
}
