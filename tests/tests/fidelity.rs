//! The SDK against the shapes Smartcar's own evidence shows, where the live platform, the
//! official SDKs' mocks and the docs disagree (issue 17). Each shape is served over HTTP: the
//! simulator serves the live one; a small axum server in the test serves the others.

use axum::Json;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};
use smartcar::api::open_enums::ResolutionType;
use smartcar::connect::RedirectExtras;
use smartcar::v3::VehicleV3;
use smartcar::{ApplicationSession, Client, Permission, Redirect};
use smartcar_sim::{ApproveOptions, Simulator};
use smartcar_tests::flow::{CALLBACK, approve, client_for, connect_user_id};

const VEHICLE: &str = "36ab27d0-fd9d-4455-823a-ce30af709ffc";
const USER: &str = "93b3ea2d-6a4a-4ea5-9d1b-3a5e2c8f0b71";

/// `GET /v3/vehicles/{id}`: the live platform answers the resource unwrapped (node-sdk's
/// end-to-end test reads `response.body.id`), the docs' example wraps it in `data`. Both read
/// the same.
#[tokio::test]
async fn the_v3_vehicle_is_read_unwrapped_and_wrapped() {
    // Unwrapped: the simulator, as the live platform.
    let sim = Simulator::start().await.unwrap();
    // The machine-to-machine flow: Connect answers the `/exchange` redirect with a user_id.
    let client = client_for(&sim, "http://localhost:8000/exchange")
        .build()
        .unwrap();
    let user_id = connect_user_id(&sim, &client, [Permission::ReadVehicleInfo]);
    let app = ApplicationSession::new(&client);
    let vehicle_id = sim.users()[0].vehicle_ids[0].clone();
    let info = app
        .user(user_id)
        .unwrap()
        .vehicle(vehicle_id.clone())
        .unwrap()
        .info()
        .await
        .unwrap();
    assert_eq!(info.data.id, vehicle_id);
    let logged = sim
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with(&vehicle_id))
        .expect("the read reached the simulator");
    let answer: serde_json::Value = serde_json::from_slice(&logged.response_body).unwrap();
    assert!(answer.get("data").is_none(), "unwrapped: {answer}");

    // Wrapped: the docs' shape, from a platform of the test's own.
    let platform = axum::Router::new().route(
        "/v3/vehicles/{id}",
        get(|| async {
            Json(json!({"data": {
                "id": VEHICLE,
                "type": "vehicle",
                "attributes": {"make": "Toyota", "model": "Camry", "year": 2020,
                               "powertrainType": "ICE", "mode": "live"},
                "links": {"self": format!("/vehicles/{VEHICLE}")}
            }}))
        }),
    );
    let (client, server) = smartcar_tests::platform::serve(platform).await;
    let info = ApplicationSession::new(&client)
        .user(USER)
        .unwrap()
        .vehicle(VEHICLE)
        .unwrap()
        .info()
        .await
        .unwrap();
    assert_eq!(info.data.id, VEHICLE);
    assert_eq!(info.data.attributes.model, "Camry");
    server.abort();
}

/// The redirect URI the simulator answers with a `user_id` (the machine-to-machine flow).
const EXCHANGE: &str = "http://localhost:8000/exchange";

/// The v3 handle of `VEHICLE` for `USER` on `client`.
fn vehicle_of(client: &Client) -> VehicleV3 {
    ApplicationSession::new(client)
        .user(USER)
        .unwrap()
        .vehicle(VEHICLE)
        .unwrap()
}

/// A simulator, the M2M flow run for `scopes`, and the user's first vehicle.
async fn m2m(scopes: &[Permission]) -> (Simulator, Client, String, String) {
    let sim = Simulator::start().await.unwrap();
    let client = client_for(&sim, EXCHANGE).build().unwrap();
    let user_id = connect_user_id(&sim, &client, scopes.iter().cloned());
    let vehicle_id = sim.users()[0].vehicle_ids[0].clone();
    (sim, client, user_id, vehicle_id)
}

/// The JSON answer of the newest logged request whose path ends with `suffix`.
fn logged_answer(sim: &Simulator, suffix: &str) -> Value {
    let logged = sim
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with(suffix))
        .unwrap_or_else(|| panic!("no request to …{suffix} reached the simulator"));
    serde_json::from_slice(&logged.response_body).unwrap()
}

/// Item 2: the live signals list sends `included.vehicle.attributes.year` as a string (ruby-sdk
/// e2e), `GET /v3/vehicles/{id}` a number; both decode, and read as the same year.
#[tokio::test]
async fn the_model_year_is_read_as_a_string_and_as_a_number() {
    let (sim, client, user_id, vehicle_id) =
        m2m(&[Permission::ReadVehicleInfo, Permission::ReadOdometer]).await;
    let vehicle = ApplicationSession::new(&client)
        .user(user_id)
        .unwrap()
        .vehicle(vehicle_id.clone())
        .unwrap();
    let signals = vehicle.signals().await.expect("a string year decodes");
    assert!(!signals.is_empty());
    let listed = logged_answer(&sim, "/signals");
    let text_year = &listed["included"]["vehicle"]["attributes"]["year"];
    assert!(text_year.is_string(), "the live shape: {text_year}");

    let info = vehicle.info().await.unwrap();
    let number_year = &logged_answer(&sim, &vehicle_id)["attributes"]["year"];
    assert!(number_year.is_number(), "{number_year}");
    assert_eq!(
        info.data
            .attributes
            .year
            .number()
            .map(|y| y.to_string())
            .as_deref(),
        text_year.as_str()
    );
}

/// Item 3: signal reads need no `sc-user-id` with an application token (no official SDK sends
/// it there and their live reads pass); commands still do.
#[tokio::test]
async fn signal_reads_need_no_sc_user_id_but_commands_do() {
    let (sim, _client, _user_id, vehicle_id) =
        m2m(&[Permission::ReadOdometer, Permission::ControlSecurity]).await;
    let token = sim.mint_app_token();
    let http = reqwest::Client::new();
    let base = sim.base_url();
    let list = http
        .get(format!("{base}/v3/vehicles/{vehicle_id}/signals"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    let body: Value = list.json().await.unwrap();
    assert!(
        body["data"].as_array().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    let one = http
        .get(format!(
            "{base}/v3/vehicles/{vehicle_id}/signals/odometer-traveleddistance"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let one: Value = one.json().await.unwrap();
    assert_eq!(one["attributes"]["status"]["value"], "SUCCESS", "{one}");

    let lock = http
        .post(format!(
            "{base}/v3/vehicles/{vehicle_id}/commands/security/lock"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(lock.status(), 400, "commands still name their user");
}

/// Item 4: Connect's newer parameters: `external_id` comes back on the redirect and stays on the
/// connections; `application_id` stands for `client_id`; `response_type=none` without a
/// redirect URI ends on a completion page.
#[tokio::test]
async fn connect_carries_external_id_and_can_end_on_smartcars_page() {
    let sim = Simulator::start().await.unwrap();
    let client = client_for(&sim, EXCHANGE).build().unwrap();
    let auth = client
        .authorize()
        .scope(Permission::ReadOdometer)
        .external_id("customer-4711")
        .build()
        .unwrap();
    let (redirect, read) = approve(&sim, &client, &auth, ApproveOptions::new());
    let Redirect::UserId(user_id) = read else {
        panic!("expected a user id: {redirect}")
    };
    let extras = RedirectExtras::parse(redirect.as_str());
    assert_eq!(extras.external_id.as_deref(), Some("customer-4711"));
    let kept: Vec<Option<String>> = {
        let world = sim.state().world();
        world
            .connections
            .iter()
            .filter(|c| c.user_id == user_id)
            .map(|c| c.external_id.clone())
            .collect()
    };
    assert!(!kept.is_empty());
    assert!(
        kept.iter().all(|id| id.as_deref() == Some("customer-4711")),
        "{kept:?}"
    );

    // `application_id`, the newer name of `client_id`.
    let renamed = auth
        .url
        .as_str()
        .replacen("client_id=", "application_id=", 1);
    let again = sim.approve(&renamed, ApproveOptions::new()).unwrap();
    assert!(
        client.handle_redirect(again.as_str(), &auth.state).is_ok(),
        "{again}"
    );

    // `response_type=none` without a redirect URI: Smartcar's completion page, no redirect.
    let link = client
        .authorize()
        .scope(Permission::ReadOdometer)
        .external_id("customer-0815")
        .hosted_completion()
        .build()
        .unwrap();
    assert!(!link.url.as_str().contains("redirect_uri"), "{}", link.url);
    let page = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}&sim_auto_approve=true", link.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"done\""), "{html}");
    let world = sim.state().world();
    assert!(
        world
            .connections
            .iter()
            .any(|c| c.user_id == user_id && c.external_id.as_deref() == Some("customer-0815")),
        "the hosted flow connected the vehicles under the new external id"
    );
}

/// Item 5: service history filtered by `start_date` (Node, Java, Ruby; what the SDK sends) and
/// by `startDate` (Python) alike.
#[tokio::test]
async fn service_history_is_filtered_by_either_date_spelling() {
    let sim = Simulator::start().await.unwrap();
    let vehicle = sim
        .vehicles()
        .into_iter()
        .find(|v| v.service_records.len() >= 2)
        .expect("the default fleet has a vehicle with service records");
    let user = sim
        .users()
        .into_iter()
        .find(|u| u.vehicle_ids.contains(&vehicle.id))
        .unwrap();
    let mut dates: Vec<_> = vehicle.service_records.iter().map(|r| r.date).collect();
    dates.sort();
    let since = dates[dates.len() - 1];
    let expected = dates.iter().filter(|d| **d >= since).count();
    assert!(expected < dates.len(), "the filter must drop something");
    let tokens = sim.mint_access_token(&user.id, &[&vehicle.id], &["read_service_history"]);
    let http = reqwest::Client::new();
    let day = since.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    for name in ["start_date", "startDate"] {
        let answer: Value = http
            .get(format!(
                "{}/v2.0/vehicles/{}/service/history",
                sim.base_url(),
                vehicle.id
            ))
            .query(&[(name, day.as_str())])
            .bearer_auth(&tokens.access_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            answer.as_array().map(Vec::len),
            Some(expected),
            "{name}: {answer}"
        );
    }

    // The SDK sends the snake_case pair.
    let client = client_for(&sim, CALLBACK).build().unwrap();
    let store = std::sync::Arc::new(smartcar::store::MemoryTokenStore::new());
    let session = smartcar::Session::create(
        &client,
        store,
        "user-1",
        smartcar::tokens::Tokens {
            access_token: smartcar::tokens::AccessToken::new(tokens.access_token.clone()),
            refresh_token: smartcar::tokens::RefreshToken::new(tokens.refresh_token.clone()),
            expires_at: sim.now() + chrono::Duration::hours(1),
            refresh_expires_at: sim.now() + chrono::Duration::days(30),
        },
    )
    .await
    .unwrap();
    let history = session
        .vehicle(vehicle.id.clone())
        .unwrap()
        .service_history(Some(since), None)
        .await
        .unwrap();
    assert_eq!(history.data.len(), expected);
    let sent = sim
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with("/service/history"))
        .unwrap();
    let query = sent.query.unwrap_or_default();
    assert!(query.contains("start_date="), "{query}");
}

/// Item 6: `resolution` as a bare string (java-sdk `ErrorPermissionV2.json`), in a v2.0 error,
/// a v3 error and a v3 signal's error.
#[tokio::test]
async fn a_bare_string_resolution_is_read() {
    let routes = axum::Router::new()
        .route(
            "/v2.0/compatibility",
            get(|| async {
                (
                    StatusCode::FORBIDDEN,
                    Json(json!({"type": "PERMISSION", "code": null, "description": "Re-authenticate.",
                                "statusCode": 403, "requestId": "r-1", "resolution": "REAUTHENTICATE"})),
                )
            }),
        )
        .route(
            "/v3/vehicles/{id}",
            get(|| async {
                (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"errors": [{"status": "401", "type": "AUTHENTICATION", "code": null,
                                            "title": "Unauthorized", "detail": "Log in again.",
                                            "resolution": "REAUTHENTICATE"}]})),
                )
            }),
        )
        .route(
            "/v3/vehicles/{id}/signals/{code}",
            get(|| async {
                Json(json!({"id": "odometer-traveleddistance", "type": "signal",
                            "attributes": {"code": "odometer-traveleddistance", "name": "TraveledDistance",
                                           "group": "Odometer",
                                           "status": {"value": "ERROR", "error": {"type": "CONNECTED_SERVICES_ACCOUNT",
                                                      "code": "AUTHENTICATION_FAILED", "resolution": "REAUTHENTICATE"}}},
                            "meta": {"retrievedAt": 1752104218549i64}}))
            }),
        );
    let (client, server) = smartcar_tests::platform::serve(routes).await;
    let v2 = client
        .compatibility("5YJSA1E29LF000000", &[Permission::ReadOdometer], None)
        .await
        .unwrap_err();
    assert_eq!(
        v2.api().and_then(|e| e.resolution.clone()),
        Some(ResolutionType::Reauthenticate),
        "{v2}"
    );
    let v3 = vehicle_of(&client).info().await.unwrap_err();
    assert_eq!(
        v3.api().and_then(|e| e.resolution.clone()),
        Some(ResolutionType::Reauthenticate),
        "{v3}"
    );
    let signal = vehicle_of(&client)
        .signal("odometer-traveleddistance")
        .await
        .expect("a string resolution inside a signal decodes");
    let resolution = signal.error.and_then(|e| e.resolution).unwrap();
    assert_eq!(resolution.kind(), Some(&ResolutionType::Reauthenticate));
    server.abort();
}

/// Item 7: the token endpoint takes the client credentials in the form body
/// (client_secret_post, the Ruby SDK's way) as well as in the Basic header.
#[tokio::test]
async fn token_requests_may_carry_the_client_credentials_in_the_form() {
    let sim = Simulator::start().await.unwrap();
    let client = client_for(&sim, CALLBACK).build().unwrap();
    let app = sim.app();
    let http = reqwest::Client::new();
    for basic in [false, true] {
        let auth = client
            .authorize()
            .scope(Permission::ReadOdometer)
            .build()
            .unwrap();
        let (_, read) = approve(&sim, &client, &auth, ApproveOptions::new());
        let Redirect::Code(code) = read else {
            panic!("expected a code")
        };
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.secret().to_owned()),
            ("redirect_uri", CALLBACK.to_owned()),
        ];
        let mut request = http.post(format!("{}/oauth/token", sim.base_url()));
        if basic {
            request = request.basic_auth(&app.client_id, Some(&app.client_secret));
        } else {
            form.push(("client_id", app.client_id.clone()));
            form.push(("client_secret", app.client_secret.clone()));
        }
        let answer = request.form(&form).send().await.unwrap();
        assert_eq!(answer.status(), 200, "basic: {basic}");
        let tokens: Value = answer.json().await.unwrap();
        assert!(tokens["refresh_token"].is_string());
    }
    // Wrong credentials in the form are refused like wrong Basic credentials.
    let refused = http
        .post(format!("{}/oauth/token", sim.base_url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "not-a-token"),
            ("client_id", app.client_id.as_str()),
            ("client_secret", "wrong-secret-0123456789"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
}

/// Item 8: `flags` and `sc-unit-system` are declared where the official SDKs send them, and
/// the simulator answers such calls.
#[tokio::test]
async fn flags_and_unit_system_are_declared_where_the_sdks_send_them() {
    let spec = smartcar_tests::spec::Spec::load();
    let declared = |op: &smartcar_tests::spec::Operation<'_>, name: &str, place: &str| {
        op.op["parameters"].as_array().is_some_and(|ps| {
            ps.iter().any(|p| {
                let p = spec.resolve(p).unwrap_or(p);
                p["name"] == name && p["in"] == place
            })
        })
    };
    let mut missing = Vec::new();
    for op in spec.operations() {
        if op.path.starts_with("/v2.0/vehicles/{vehicle_id}") {
            if !declared(&op, "sc-unit-system", "header") {
                missing.push(format!("{} lacks sc-unit-system", op.id()));
            }
            if !declared(&op, "flags", "query") {
                missing.push(format!("{} lacks flags", op.id()));
            }
        }
        if ["get_vehicle_v3", "list_signals", "get_signal"].contains(&op.id())
            && !declared(&op, "flags", "query")
        {
            missing.push(format!("{} lacks flags", op.id()));
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");

    let (sim, _client, user_id, vehicle_id) = m2m(&[Permission::ReadOdometer]).await;
    let answer = reqwest::Client::new()
        .get(format!(
            "{}/v3/vehicles/{vehicle_id}/signals?flags=country:DE",
            sim.base_url()
        ))
        .bearer_auth(sim.mint_app_token())
        .header("sc-user-id", user_id)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

/// Item 9: the platform accepts a trailing slash (the Node SDK calls `GET /v3/vehicles/{id}/`
/// and its live end-to-end tests pass); so does the simulator, on every API.
#[tokio::test]
async fn paths_with_a_trailing_slash_are_served() {
    let (sim, _client, user_id, vehicle_id) = m2m(&[Permission::ReadVehicleInfo]).await;
    let token = sim.mint_app_token();
    let http = reqwest::Client::new();
    for path in [
        format!("/v3/vehicles/{vehicle_id}/"),
        format!("/v3/connections/?filter[userId]={user_id}"),
        "/v3/webhooks/".to_owned(),
        "/v3/subscriptions/".to_owned(),
    ] {
        let answer = http
            .get(format!("{}{path}", sim.base_url()))
            .bearer_auth(&token)
            .header("sc-user-id", &user_id)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{path}");
    }
    let body: Value = http
        .get(format!("{}/v3/vehicles/{vehicle_id}/", sim.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["id"], vehicle_id.as_str());
}

/// Item 10: signal timestamps as epoch milliseconds (live) and as ISO-8601 text (readings of
/// Smartcar's published spec) give the same instants.
#[tokio::test]
async fn signal_timestamps_are_read_from_epoch_ms_and_iso_8601() {
    let signal = |meta: Value| {
        json!({"id": "odometer-traveleddistance", "type": "signal",
               "attributes": {"code": "odometer-traveleddistance", "status": {"value": "SUCCESS"},
                              "body": {"unit": "kilometers", "value": 1234.5}},
               "meta": meta})
    };
    let epoch = signal(json!({"retrievedAt": 1752104218549i64, "oemUpdatedAt": 1752104118549i64}));
    let iso = signal(json!({"retrievedAt": "2025-07-09T23:36:58.549Z",
                            "oemUpdatedAt": "2025-07-09T23:35:18.549+00:00"}));
    let routes = axum::Router::new()
        .route(
            "/v3/vehicles/{id}/signals/odometer-traveleddistance",
            get(move || async move { Json(epoch) }),
        )
        .route(
            "/v3/vehicles/{id}/signals/tractionbattery-stateofcharge",
            get(move || async move { Json(iso) }),
        );
    let (client, server) = smartcar_tests::platform::serve(routes).await;
    let vehicle = vehicle_of(&client);
    let a = vehicle.signal("odometer-traveleddistance").await.unwrap();
    let b = vehicle
        .signal("tractionbattery-stateofcharge")
        .await
        .unwrap();
    assert!(a.retrieved_at.is_some() && a.oem_updated_at.is_some());
    assert_eq!(a.retrieved_at, b.retrieved_at);
    assert_eq!(a.oem_updated_at, b.oem_updated_at);
    assert_eq!(
        a.retrieved_at.unwrap().timestamp_millis(),
        1_752_104_218_549
    );
    server.abort();
}

/// Contested shapes (the official SDKs' fixtures disagree, no live evidence): a service record
/// with numeric ids, one `serviceDetails` object and a date-time (Java's mock) or string ids, a
/// details array and a date alone (Node's); a connection list without `paging` (Node's mocks);
/// a deleted connection with `connectedAt`. Every one decodes.
#[tokio::test]
async fn contested_shapes_are_all_decoded() {
    use smartcar::api::types::{ServiceDetails, TextOrNumber};
    use smartcar::management::ConnectionFilter;

    let routes = axum::Router::new()
        .route(
            "/v2.0/vehicles/java/service/history",
            get(|| async {
                Json(json!([{"serviceId": 12345, "serviceDate": "2022-07-10T16:20:00.000Z",
                             "odometerDistance": 50000, "serviceTasks": [{"taskId": 1, "taskDescription": "oil change"}],
                             "serviceDetails": {"type": "dealership"},
                             "serviceCost": {"totalCost": 100, "currency": "USD"}}]))
            }),
        )
        .route(
            "/v2.0/vehicles/node/service/history",
            get(|| async {
                Json(json!([{"serviceId": "service-123", "serviceDate": "2022-06-15",
                             "odometerDistance": 12500.5, "serviceTasks": [{"taskId": "task-456", "taskDescription": "Oil change"}],
                             "serviceDetails": [{"type": "OIL_CHANGE", "value": null}],
                             "serviceCost": {"totalCost": 49.99, "currency": "USD"}}]))
            }),
        )
        .route(
            "/v2.0/management/connections",
            get(|| async {
                Json(json!({"connections": [{"vehicleId": "vehicle1", "userId": "user1", "connectedAt": "2023-01-01T00:00:00.000Z"}]}))
            })
            .delete(|| async {
                Json(json!({"connections": [{"vehicleId": "vehicle1", "userId": "user1", "connectedAt": "2023-01-01T00:00:00.000Z"}]}))
            }),
        );
    let (client, server) = smartcar_tests::platform::serve(routes).await;
    let store = std::sync::Arc::new(smartcar::store::MemoryTokenStore::new());
    let now = chrono::Utc::now();
    let session = smartcar::Session::create(
        &client,
        store,
        "user-1",
        smartcar::tokens::Tokens {
            access_token: smartcar::tokens::AccessToken::new("access-token-0123456789"),
            refresh_token: smartcar::tokens::RefreshToken::new("refresh-token-0123456789"),
            expires_at: now + chrono::Duration::hours(1),
            refresh_expires_at: now + chrono::Duration::days(30),
        },
    )
    .await
    .unwrap();

    let java = session
        .vehicle("java")
        .unwrap()
        .service_history(None, None)
        .await
        .unwrap();
    let record = &java.data[0];
    assert_eq!(record.service_id, Some(TextOrNumber::Int64(12345)));
    assert!(matches!(
        record.service_details,
        Some(ServiceDetails::ServiceDetail(_))
    ));
    assert_eq!(
        record.service_tasks[0].task_id,
        Some(TextOrNumber::Int64(1))
    );
    let node = session
        .vehicle("node")
        .unwrap()
        .service_history(None, None)
        .await
        .unwrap();
    let record = &node.data[0];
    assert_eq!(
        record.service_id,
        Some(TextOrNumber::String("service-123".into()))
    );
    assert!(matches!(&record.service_details, Some(ServiceDetails::Array(a)) if a.len() == 1));
    assert_eq!(
        record
            .service_date
            .as_ref()
            .map(|d| d.to_datetime().to_rfc3339()),
        Some("2022-06-15T00:00:00+00:00".to_owned())
    );

    let management = client.management("amt-0123456789");
    let page = management
        .connections_page(&ConnectionFilter::default(), None)
        .await
        .unwrap();
    assert!(page.data.paging.is_none());
    assert_eq!(page.data.connections.len(), 1);
    let deleted = management
        .delete_connections(Some("user1"), None)
        .await
        .unwrap();
    assert!(deleted.data.connections[0].connected_at.is_some());
    server.abort();
}
