//! The simulator against the spec: drive every generated operation of
//! `openapi/smartcar.yaml` over real HTTP (successes and a few refusals), then validate every
//! JSON body the simulator sent — as recorded in its request log — against the schema the spec
//! gives for that operation and status, strictly (no undocumented field).
//!
//! Operations are named by their generated `smartcar_api::ops` constants: the method comes from
//! the constant and the path from its marker type's `path(..)`, so a renamed or removed
//! operation fails to compile. The v2 reads are not listed here: they are every
//! `GET /v2.0/vehicles/{vehicle_id}…` of `ops::ALL` with no other parameter. The test fails,
//! naming them, when an operation of `ops::ALL` (generated) was never driven; a new operation
//! needs one call below (the state it needs — a webhook, a subscription — is what a table
//! could not provide), except a `GET` without path parameters, which is sent as it is with the
//! credential of its security scheme.

use std::collections::BTreeSet;
use std::sync::Mutex;

use serde_json::{Value, json};
use smartcar_api::op::{Host, Method, Operation, Security};
use smartcar_api::ops;
use smartcar_sim::Simulator;
use smartcar_sim::model::WebhookVersion;
use smartcar_tests::spec::{Spec, Strictness};

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
    /// The operations sent at least once.
    driven: Mutex<BTreeSet<&'static str>>,
}

impl Driver {
    /// Sends `op` to `path` (its filled template, with any query).
    async fn call(
        &self,
        op: Operation,
        path: &str,
        auth: Auth<'_>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, Value) {
        self.driven.lock().unwrap().insert(op.id);
        let mut req = self
            .http
            .request(op.method.http(), format!("{}{path}", self.base));
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

    /// As [`call`](Self::call), for the status alone.
    async fn status(
        &self,
        op: Operation,
        path: &str,
        auth: Auth<'_>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> u16 {
        self.call(op, path, auth, headers, body).await.0
    }

    /// Sends `op` (a token endpoint) with a form body.
    async fn form(&self, op: Operation, auth: Auth<'_>, form: &[(&str, &str)]) -> (u16, Value) {
        self.driven.lock().unwrap().insert(op.id);
        assert_eq!(op.method, Method::Post, "{op}");
        let mut req = self
            .http
            .post(format!("{}{}", self.base, op.path))
            .form(form);
        if let Auth::Basic(u, p) = auth {
            req = req.basic_auth(u, Some(p));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

/// Fills a read's `{vehicle_id}`.
fn with_vehicle(op: &Operation, vehicle_id: &str) -> String {
    op.fill(&[vehicle_id])
        .expect("a read whose only path parameter is the vehicle")
}

/// The v2 reads: every GET under `/v2.0/vehicles/{vehicle_id}` whose only parameter is the
/// vehicle.
fn v2_reads() -> Vec<&'static Operation> {
    ops::ALL
        .iter()
        .filter(|op| {
            op.generated
                && op.host == Host::Api
                && op.method == Method::Get
                && op.path.starts_with("/v2.0/vehicles/{vehicle_id}")
                && op.path_params == ["vehicle_id"]
        })
        .collect()
}

/// Finds the operation of `ops::ALL` a concrete request path belongs to (literal segments must
/// match).
fn operation_for(method: &str, path: &str) -> Option<&'static Operation> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    ops::ALL
        .iter()
        .filter(|op| op.method.as_str().eq_ignore_ascii_case(method))
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

/// A v2 read's path inside a batch request (`/odometer`), from the spec's `x-batch`.
fn batch_path(op: &Operation) -> &'static str {
    op.batch_path
        .expect("a read the batch endpoint accepts (x-batch)")
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
        driven: Mutex::default(),
    };
    let user = sim.users()[0].clone();
    let vehicles: Vec<_> = sim.vehicles();
    let all_ids: Vec<&str> = vehicles.iter().map(|v| v.id.as_str()).collect();
    let scopes = Operation::all_permissions();
    let minted = sim.mint_access_token(&user.id, &all_ids, &scopes);
    let token = minted.access_token.as_str();
    let basic_client = Auth::Basic(&app.client_id, &app.client_secret);

    // --- tokens: a real Connect approval, code exchange, refresh, client credentials.
    let authorize = format!(
        "{}?response_type=code&client_id={}&redirect_uri=http%3A%2F%2Flocalhost%3A8000%2Fcallback&scope=read_odometer&state=s1",
        ops::Authorize::path(),
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
            ops::EXCHANGE_TOKEN,
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
            ops::EXCHANGE_TOKEN,
            basic_client,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = d
        .form(
            ops::EXCHANGE_TOKEN,
            basic_client,
            &[("grant_type", "authorization_code"), ("code", "nope")],
        )
        .await;
    assert_eq!(s, 400);
    let (s, app_token) = d
        .form(
            ops::REQUEST_APPLICATION_TOKEN,
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
            ops::REQUEST_APPLICATION_TOKEN,
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
        d.status(ops::GET_USER, &ops::GetUser::path(), bearer, &[], None)
            .await,
        200
    );
    assert_eq!(
        d.status(
            ops::LIST_VEHICLES,
            &format!("{}?limit=2&offset=1", ops::ListVehicles::path()),
            bearer,
            &[],
            None
        )
        .await,
        200
    );
    assert_eq!(
        d.status(
            ops::GET_USER,
            &ops::GetUser::path(),
            Auth::Bearer("bad"),
            &[],
            None
        )
        .await,
        401
    );

    // --- every v2 read on every vehicle (EV-only reads refuse ICE cars: those errors are checked too).
    let reads = v2_reads();
    assert!(
        reads.len() >= 17,
        "the v2 reads of ops::ALL: {}",
        reads.len()
    );
    let mut succeeded = BTreeSet::new();
    for v in &vehicles {
        for read in &reads {
            for units in ["metric", "imperial"] {
                let (s, _) = d
                    .call(
                        **read,
                        &with_vehicle(read, &v.id),
                        bearer,
                        &[("sc-unit-system", units)],
                        None,
                    )
                    .await;
                if s == 200 {
                    succeeded.insert(read.id);
                }
            }
        }
    }
    let never: Vec<&str> = reads
        .iter()
        .map(|r| r.id)
        .filter(|id| !succeeded.contains(id))
        .collect();
    assert!(never.is_empty(), "reads that never succeeded: {never:?}");
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

    // --- v2 commands and batch.
    let ok_or_state = |s: u16| s == 200 || s == 409;
    assert_eq!(
        d.status(
            ops::CONTROL_SECURITY,
            &ops::ControlSecurity::path(&ev.id),
            bearer,
            &[],
            Some(json!({"action": "LOCK"}))
        )
        .await,
        200
    );
    assert_eq!(
        d.status(
            ops::CONTROL_SECURITY,
            &ops::ControlSecurity::path(&ev.id),
            bearer,
            &[],
            Some(json!({"action": "OPEN"}))
        )
        .await,
        400
    );
    assert!(ok_or_state(
        d.call(
            ops::CONTROL_CHARGE,
            &ops::ControlCharge::path(&ev.id),
            bearer,
            &[],
            Some(json!({"action": "START"}))
        )
        .await
        .0
    ));
    assert_eq!(
        d.status(
            ops::SET_CHARGE_LIMIT,
            &ops::SetChargeLimit::path(&ev.id),
            bearer,
            &[],
            Some(json!({"limit": 0.8}))
        )
        .await,
        200
    );
    assert_eq!(
        d.status(
            ops::SET_CHARGE_LIMIT,
            &ops::SetChargeLimit::path(&ev.id),
            bearer,
            &[],
            Some(json!({"limit": 2}))
        )
        .await,
        400
    );
    assert_eq!(
        d.status(
            ops::SEND_DESTINATION,
            &ops::SendDestination::path(&ev.id),
            bearer,
            &[],
            Some(json!({"latitude": 51.5, "longitude": 0.12}))
        )
        .await,
        200
    );
    let batch = json!({"requests": [
        {"path": batch_path(&ops::GET_ODOMETER)},
        {"path": batch_path(&ops::GET_FUEL)},
        {"path": batch_path(&ops::GET_BATTERY)},
    ]});
    assert_eq!(
        d.status(
            ops::BATCH,
            &ops::Batch::path(&ev.id),
            bearer,
            &[("sc-unit-system", "imperial")],
            Some(batch)
        )
        .await,
        200
    );
    assert_eq!(
        d.status(
            ops::BATCH,
            &ops::Batch::path(&ev.id),
            bearer,
            &[],
            Some(json!({}))
        )
        .await,
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
        d.status(
            ops::SUBSCRIBE_WEBHOOK,
            &ops::SubscribeWebhook::path(&ev.id, &hook),
            bearer,
            &[],
            None
        )
        .await,
        200
    );
    assert_eq!(
        d.status(
            ops::UNSUBSCRIBE_WEBHOOK,
            &ops::UnsubscribeWebhook::path(&ev.id, &hook),
            Auth::Bearer(&app.amt),
            &[],
            None
        )
        .await,
        200
    );

    // --- compatibility.
    let vin = &ev.vin;
    assert_eq!(
        d.status(
            ops::GET_COMPATIBILITY_V1,
            &format!(
                "{}?vin={vin}&scope=read_odometer",
                ops::GetCompatibilityV1::path()
            ),
            basic_client,
            &[],
            None
        )
        .await,
        200
    );
    assert_eq!(
        d.status(
            ops::GET_COMPATIBILITY_V1,
            &format!("{}?scope=read_odometer", ops::GetCompatibilityV1::path()),
            basic_client,
            &[],
            None
        )
        .await,
        400
    );
    assert_eq!(
        d.status(
            ops::GET_COMPATIBILITY,
            &format!(
                "{}?vin={vin}&scope=read_odometer%20read_battery&country=US",
                ops::GetCompatibility::path()
            ),
            basic_client,
            &[],
            None
        )
        .await,
        200
    );
    assert_eq!(
        d.status(
            ops::GET_COMPATIBILITY_MATRIX,
            &format!("{}?region=US&type=BEV", ops::GetCompatibilityMatrix::path()),
            basic_client,
            &[],
            None
        )
        .await,
        200
    );
    assert_eq!(
        d.status(
            ops::GET_COMPATIBILITY_MATRIX,
            &format!("{}?region=US", ops::GetCompatibilityMatrix::path()),
            Auth::None,
            &[],
            None
        )
        .await,
        401
    );

    // --- compatibility v3 (no credential).
    assert_eq!(
        d.status(
            ops::LIST_COMPATIBLE_VEHICLES,
            &format!(
                "{}?filter[region]=US&filter[make]=tesla&filter[powertrainType]=BEV",
                ops::ListCompatibleVehicles::path()
            ),
            Auth::None,
            &[],
            None
        )
        .await,
        200
    );
    assert_eq!(
        d.status(
            ops::LIST_COMPATIBLE_VEHICLES,
            &format!(
                "{}?filter[region]=MARS",
                ops::ListCompatibleVehicles::path()
            ),
            Auth::None,
            &[],
            None
        )
        .await,
        400
    );

    // --- management v2.
    let amt_basic = Auth::Basic("default", &app.amt);
    assert_eq!(
        d.status(
            ops::LIST_CONNECTIONS,
            &format!("{}?limit=2", ops::ListConnections::path()),
            amt_basic,
            &[],
            None
        )
        .await,
        200
    );
    assert_eq!(
        d.status(
            ops::LIST_CONNECTIONS,
            &format!("{}?cursor=garbage!", ops::ListConnections::path()),
            amt_basic,
            &[],
            None
        )
        .await,
        400
    );

    // --- v3.
    let app_bearer = Auth::Bearer(&app_token);
    let uid: &[(&str, &str)] = &[("sc-user-id", &user.id)];
    assert_eq!(
        d.status(
            ops::GET_VEHICLE_V3,
            &ops::GetVehicleV3::path(&ev.id),
            app_bearer,
            uid,
            None
        )
        .await,
        200
    );
    assert_eq!(
        d.status(
            ops::LIST_SIGNALS,
            &format!("{}?page=1&pageSize=5", ops::ListSignals::path(&ev.id)),
            app_bearer,
            uid,
            None
        )
        .await,
        200
    );
    assert_eq!(
        d.status(
            ops::GET_SIGNAL,
            &ops::GetSignal::path(&ev.id, "tractionbattery-stateofcharge"),
            app_bearer,
            uid,
            None
        )
        .await,
        200
    );
    assert_eq!(
        d.status(
            ops::GET_SIGNAL,
            &ops::GetSignal::path(&ev.id, "no-such-signal"),
            app_bearer,
            uid,
            None
        )
        .await,
        404
    );
    // Signal reads need no `sc-user-id` (the official SDKs send none); commands do.
    assert_eq!(
        d.status(
            ops::LIST_SIGNALS,
            &ops::ListSignals::path(&ev.id),
            app_bearer,
            &[],
            None
        )
        .await,
        200
    );
    assert_eq!(
        d.status(
            ops::LOCK_V3,
            &ops::LockV3::path(&ev.id),
            app_bearer,
            &[],
            None
        )
        .await,
        400
    );
    let (s, exec) = d
        .call(
            ops::UNLOCK_V3,
            &ops::UnlockV3::path(&ev.id),
            app_bearer,
            uid,
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        d.status(
            ops::LOCK_V3,
            &ops::LockV3::path(&ev.id),
            app_bearer,
            uid,
            None
        )
        .await,
        200
    );
    assert!(ok_or_state(
        d.call(
            ops::START_CHARGE_V3,
            &ops::StartChargeV3::path(&ev.id),
            app_bearer,
            uid,
            None
        )
        .await
        .0
    ));
    assert!(ok_or_state(
        d.call(
            ops::STOP_CHARGE_V3,
            &ops::StopChargeV3::path(&ev.id),
            app_bearer,
            uid,
            None
        )
        .await
        .0
    ));
    assert_eq!(
        d.status(
            ops::SET_CHARGE_LIMIT_V3,
            &ops::SetChargeLimitV3::path(&ev.id),
            app_bearer,
            uid,
            Some(json!({"data": {"attributes": {"percent": 80}}}))
        )
        .await,
        200
    );
    assert_eq!(
        d.status(
            ops::SET_DESTINATION_V3,
            &ops::SetDestinationV3::path(&ev.id),
            app_bearer,
            uid,
            Some(json!({"data": {"attributes": {"latitude": 1.0, "longitude": 2.0}}}))
        )
        .await,
        200
    );
    // Charge schedules: the EV is made a Tesla (which takes every kind), then read back
    // through `charge-chargetimers` and deleted.
    if let Some(v) = sim.state().world().vehicles.get_mut(&ev.id) {
        v.make = "TESLA".to_owned();
    }
    let location = json!({"latitude": 37.7749, "longitude": -122.4194});
    let window = json!({"startTime": "22:00", "stopTime": "06:00"});
    let (s, daily) = d
        .call(
            ops::SET_DAILY_CHARGE_SCHEDULE_V3,
            &ops::SetDailyChargeScheduleV3::path(&ev.id),
            app_bearer,
            uid,
            Some(json!({"data": {"attributes": {"location": location, "startTime": "08:00", "stopTime": "10:00"}}})),
        )
        .await;
    assert_eq!(s, 200, "{daily}");
    assert_eq!(
        d.status(
            ops::SET_DAILY_CHARGE_SCHEDULE_V3,
            &ops::SetDailyChargeScheduleV3::path(&ev.id),
            app_bearer,
            uid,
            Some(json!({"data": {"attributes": {"location": location, "startTime": "8am", "stopTime": "10:00"}}})),
        ).await,
        400
    );
    assert_eq!(
        d.status(
            ops::SET_WEEKLY_CHARGE_SCHEDULE_V3,
            &ops::SetWeeklyChargeScheduleV3::path(&ev.id),
            app_bearer,
            uid,
            Some(json!({"data": {"attributes": {"location": location, "days": {"monday": window, "friday": window}}}})),
        ).await,
        200
    );
    assert_eq!(
        d.status(
            ops::SET_WORKWEEK_CHARGE_SCHEDULE_V3,
            &ops::SetWorkweekChargeScheduleV3::path(&ev.id),
            app_bearer,
            uid,
            Some(json!({"data": {"attributes": {"location": location, "weekdays": window, "weekends": window}}})),
        ).await,
        200
    );
    assert_eq!(
        d.status(
            ops::GET_SIGNAL,
            &ops::GetSignal::path(&ev.id, "charge-chargetimers"),
            app_bearer,
            uid,
            None
        )
        .await,
        200
    );
    let schedule_id = daily["data"]["attributes"]["scheduleId"].as_str().unwrap();
    assert_eq!(
        d.status(
            ops::DELETE_CHARGE_SCHEDULE_V3,
            &ops::DeleteChargeScheduleV3::path(&ev.id, schedule_id),
            app_bearer,
            uid,
            None
        )
        .await,
        200
    );
    assert_eq!(
        d.status(
            ops::DELETE_CHARGE_SCHEDULE_V3,
            &ops::DeleteChargeScheduleV3::path(&ev.id, schedule_id),
            app_bearer,
            uid,
            None
        )
        .await,
        404
    );
    let exec_id = exec["data"]["id"].as_str().unwrap();
    assert_eq!(
        d.status(
            ops::GET_COMMAND_EXECUTION,
            &ops::GetCommandExecution::path(&ev.id, exec_id),
            app_bearer,
            uid,
            None
        )
        .await,
        200
    );
    let (s, conns) = d
        .call(
            ops::LIST_CONNECTIONS_V3,
            &format!(
                "{}?filter[userId]={}&page[size]=2",
                ops::ListConnectionsV3::path(),
                user.id
            ),
            app_bearer,
            &[],
            None,
        )
        .await;
    assert_eq!(s, 200);
    let conn_id = conns["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        d.status(
            ops::LIST_CONNECTIONS_V3,
            &format!(
                "{}?filter[vehicle.mode]=live&filter[user.externalId]=crm-1",
                ops::ListConnectionsV3::path()
            ),
            app_bearer,
            &[],
            None,
        )
        .await,
        200
    );
    assert_eq!(
        d.status(
            ops::LIST_CONNECTIONS_V3,
            &format!(
                "{}?filter[vehicle.mode]=racing",
                ops::ListConnectionsV3::path()
            ),
            app_bearer,
            &[],
            None,
        )
        .await,
        400
    );
    assert_eq!(
        d.status(
            ops::GET_CONNECTION_V3,
            &ops::GetConnectionV3::path(&conn_id),
            app_bearer,
            &[],
            None
        )
        .await,
        200
    );

    let hook3 = sim.add_webhook(
        "http://127.0.0.1:9/hook3",
        WebhookVersion::V3,
        "conformance3",
        &["odometer-traveleddistance"],
    );
    assert_eq!(
        d.status(
            ops::GET_WEBHOOK,
            &ops::GetWebhook::path(&hook3),
            app_bearer,
            &[],
            None
        )
        .await,
        200
    );
    assert_eq!(
        d.status(
            ops::GET_WEBHOOK,
            &ops::GetWebhook::path("no-such-webhook"),
            app_bearer,
            &[],
            None
        )
        .await,
        404
    );
    let sub = json!({"data": {"attributes": {"webhookId": hook3, "vehicleId": ev.id, "userId": user.id}}});
    assert_eq!(
        d.status(
            ops::CREATE_SUBSCRIPTION,
            &ops::CreateSubscription::path(),
            app_bearer,
            &[],
            Some(sub)
        )
        .await,
        202
    );
    let (s, subs) = d
        .call(
            ops::LIST_SUBSCRIPTIONS,
            &format!(
                "{}?filter[webhookId]={hook3}",
                ops::ListSubscriptions::path()
            ),
            app_bearer,
            &[],
            None,
        )
        .await;
    assert_eq!(s, 200);
    let sub_id = subs["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        d.status(
            ops::GET_SUBSCRIPTION,
            &ops::GetSubscription::path(&sub_id),
            app_bearer,
            &[],
            None
        )
        .await,
        200
    );
    assert_eq!(
        d.status(
            ops::DELETE_SUBSCRIPTION,
            &ops::DeleteSubscription::path(&sub_id),
            app_bearer,
            &[],
            None
        )
        .await,
        204
    );

    // --- removals last.
    assert_eq!(
        d.status(
            ops::DELETE_CONNECTION_V3,
            &ops::DeleteConnectionV3::path(&conn_id),
            app_bearer,
            &[],
            None
        )
        .await,
        204
    );
    let other = vehicles.iter().find(|v| v.id != ev.id).unwrap();
    assert_eq!(
        d.status(
            ops::DISCONNECT,
            &ops::Disconnect::path(&other.id),
            bearer,
            &[],
            None
        )
        .await,
        200
    );
    assert_eq!(
        d.status(
            ops::DELETE_CONNECTIONS,
            &format!("{}?vehicle_id={}", ops::DeleteConnections::path(), ev.id),
            amt_basic,
            &[],
            None
        )
        .await,
        200
    );
    let last_user = &sim.users()[2];
    assert_eq!(
        d.status(
            ops::DELETE_USER_V3,
            &ops::DeleteUserV3::path(&last_user.id),
            app_bearer,
            &[],
            None
        )
        .await,
        204
    );

    // --- every GET without path parameters not driven above: sent with the credential its
    // security scheme names, no query, and must succeed (so such an operation needs no call
    // here; its answer is validated below like every other).
    let undriven_gets: Vec<Operation> = {
        let driven = d.driven.lock().unwrap();
        ops::ALL
            .iter()
            .filter(|op| {
                op.generated
                    && op.method == Method::Get
                    && op.path_params.is_empty()
                    && !driven.contains(op.id)
            })
            .copied()
            .collect()
    };
    for op in undriven_gets {
        let auth = match op.security {
            Security::None => Auth::None,
            Security::UserToken => bearer,
            Security::ApplicationToken => app_bearer,
            Security::ClientBasic => basic_client,
            Security::ManagementBasic => amt_basic,
            Security::ManagementBearer => Auth::Bearer(&app.amt),
        };
        let (s, body) = d.call(op, op.path, auth, &[], None).await;
        assert_eq!(s, 200, "{op} without parameters: {body}");
    }

    // --- now check everything the simulator sent.
    // Every generated operation was driven (the Connect pages are not generated: the approval
    // above goes through them in process).
    let driven = d.driven.lock().unwrap().clone();
    let not_driven: Vec<String> = ops::ALL
        .iter()
        .filter(|op| op.generated && !driven.contains(op.id))
        .map(|op| format!("{} ({op})", op.id.to_uppercase()))
        .collect();
    assert!(
        not_driven.is_empty(),
        "operations of ops::ALL this test never sends: add a call for each (an `ops` constant, \
         its `path(..)` and a body the simulator accepts):\n{}",
        not_driven.join("\n")
    );
    let generated: BTreeSet<&str> = ops::ALL
        .iter()
        .filter(|op| op.generated)
        .map(|op| op.id)
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
        let Some((table, op)) = operation_for(&exchange.method, &exchange.path)
            .and_then(|table| Some((table, spec.operation(table)?)))
        else {
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
            .response(&op, &status)
            .or_else(|| spec.response(&op, &range))
        else {
            failures.push(format!("{here}: status not documented for {}", table.id));
            continue;
        };
        if (200..300).contains(&exchange.status) {
            answered_2xx.insert(table.id);
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
                        table.id,
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
