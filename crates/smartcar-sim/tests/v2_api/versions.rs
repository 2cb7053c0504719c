//! Version segments and error bodies as the official Python SDK's live end-to-end suite
//! (v6.17.0, `tests/e2e/test_exception.py`, `test_vehicle.py`) reads them: the vehicle API
//! under `/v1.0` with v1.0 error bodies, a well-formed unknown version served as v2.0, a
//! malformed one a JSON 404, a malformed vehicle id a 400, and the v2.0 error bodies spelled
//! out as the platform does.

use serde_json::{Value, json};
use smartcar_api::types;

use crate::support::*;

const AUTHENTICATION: &str = "The authorization header is missing or malformed, or it contains invalid or expired authentication credentials. Please check for missing parameters, spelling and casing mistakes, and other syntax issues.";

/// A v1.0 error: status, `error`, a message, `code` null, `statusCode` and `requestId` (the
/// header's), JSON, and nothing outside `V1Error`.
#[track_caller]
fn assert_v1_error(r: &Resp, status: u16, error: &str) {
    assert_eq!(r.status, status, "{:#}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.body["error"], error, "{:#}", r.body);
    assert!(
        r.body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{:#}",
        r.body
    );
    assert_eq!(r.body.get("code"), Some(&Value::Null), "{:#}", r.body);
    assert_eq!(r.body["statusCode"], status);
    assert_eq!(r.body["requestId"].as_str(), r.header("sc-request-id"));
    assert!(r.body.get("type").is_none() && r.body.get("resolution").is_none());
    assert_typed::<types::V1Error>(&r.body);
}

#[tokio::test]
async fn the_vehicle_api_under_v1_answers_v1_errors() {
    let env = Env::start().await;
    let user = env.user(0);
    let vid = env.sim.state().world().users[0].vehicle_ids[0].clone();
    let token = env.token(&user, &[&vid], &["read_odometer", "read_vehicle_info"]);
    let odometer_km = env.vehicle(&vid).odometer_km;

    // Successes: the v2.0 bodies and headers (test_v1_request: imperial, sc-request-id).
    let r = env
        .get_units(
            &token,
            &format!("/v1.0/vehicles/{vid}/odometer"),
            "imperial",
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    assert_eq!(r.body, json!({"distance": round2(odometer_km / 1.609_344)}));
    assert_eq!(r.header("sc-unit-system"), Some("imperial"));
    assert!(r.header("sc-request-id").is_some());
    let r = env.get(&token, &format!("/v1.0/vehicles/{vid}/")).await;
    assert_eq!(r.body["id"], vid.as_str());
    let r = env.get(&token, "/v1.0/user").await;
    assert_eq!(r.body, json!({"id": user}));

    // Batch (test_batch_unauthorized_permission_v1): the envelope; an item outside the grant
    // is a 403 with a statusCode.
    let r = env
        .post(
            &token,
            &format!("/v1.0/vehicles/{vid}/batch"),
            json!({"requests": [{"path": "/odometer"}, {"path": "/location"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    assert_eq!(r.body["responses"][0]["code"], 200);
    assert_eq!(r.body["responses"][1]["code"], 403);
    assert_eq!(r.body["responses"][1]["body"]["statusCode"], 403);

    // Errors in the v1.0 shape.
    assert_v1_error(
        &env.get(&token, "/v1.0/vehicles/bad_id/").await,
        400,
        "validation_error",
    );
    let r = env
        .get(&token, &format!("/v1.0/vehicles/{vid}/location"))
        .await;
    assert_v1_error(&r, 403, "permission_error");
    assert_eq!(
        r.body["message"],
        "Insufficient permissions to access requested resource."
    );
    assert_eq!(r.header("retry-after"), None);
    assert_v1_error(
        &env.get("nope", &format!("/v1.0/vehicles/{vid}/odometer"))
            .await,
        401,
        "authentication_error",
    );
    assert_v1_error(
        &env.get(&token, &format!("/v1.0/vehicles/{vid}/nothing"))
            .await,
        404,
        "resource_not_found_error",
    );
    assert_v1_error(
        &env.get_units(&token, &format!("/v1.0/vehicles/{vid}/odometer"), "kelvin")
            .await,
        400,
        "validation_error",
    );
    // The v1.0 compatibility check keeps its own route.
    let (_, id, secret) = env.app();
    let r = env
        .send(
            env.http
                .get(env.url("/v1.0/compatibility?scope=read_vin"))
                .basic_auth(&id, Some(&secret)),
        )
        .await;
    assert_v1_error(&r, 400, "validation_error");
}

#[tokio::test]
async fn a_well_formed_unknown_version_is_served_as_v2() {
    let env = Env::start().await;
    let user = env.user(0);
    let vid = env.sim.state().world().users[0].vehicle_ids[0].clone();
    let token = env.token(&user, &[&vid], &ALL_SCOPES);

    // test_vehicle_bad_api_version (a): "Smartcar API will default to latest version number,
    // so long as version follows the format \d+\.\d+".
    let v2 = env
        .get(&token, &format!("/v2.0/vehicles/{vid}/odometer"))
        .await;
    let r = env
        .get(&token, &format!("/v99999999.99/vehicles/{vid}/odometer"))
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    assert_eq!(r.body, v2.body);
    assert_eq!(r.header("sc-unit-system"), Some("metric"));
    assert_eq!(r.headers.get_all("sc-request-id").iter().count(), 1);
    // Errors, query strings and the other v2.0 paths (compatibility) follow.
    env.get(&token, "/v2.1/vehicles/bad_id/")
        .await
        .assert_error(400, "VALIDATION", None);
    let r = env
        .get(&token, &format!("/v3.5/vehicles/{vid}/permissions?limit=1"))
        .await;
    assert_eq!(r.body["permissions"].as_array().map(Vec::len), Some(1));
    let (_, id, secret) = env.app();
    let r = env
        .send(
            env.http
                .get(env.url("/v7.0/compatibility?vin=0SCGMCT0386A85356&scope=read_odometer"))
                .basic_auth(&id, Some(&secret)),
        )
        .await;
    assert_eq!(r.body["compatible"], true, "{:#}", r.body);
    // The request log keeps the path as sent.
    assert!(
        env.sim
            .requests()
            .iter()
            .any(|q| q.path == format!("/v99999999.99/vehicles/{vid}/odometer") && q.status == 200)
    );

    // (b): a malformed segment is a 404 with a JSON body and a statusCode.
    for bad in ["vJohnny%20Appleseed", "v4", "v2.x"] {
        let r = env
            .get(&token, &format!("/{bad}/vehicles/{vid}/odometer"))
            .await;
        assert_eq!(r.header("content-type"), Some("application/json"), "{bad}");
        r.assert_error(404, "RESOURCE_NOT_FOUND", Some("VERSION"));
    }
}

#[tokio::test]
async fn v2_error_bodies_as_the_platform_spells_them() {
    let env = Env::start().await;
    let user = env.user(0);
    let vid = env.sim.state().world().users[0].vehicle_ids[0].clone();
    let token = env.token(&user, &[&vid], &["read_charge"]);

    // 401 (test_bad_access_token_api, test_request_override_header): the exact description,
    // code null, resolution an object with a null type, no detail.
    let r = env
        .get("abc", &format!("/v2.0/vehicles/{vid}/odometer"))
        .await;
    r.assert_error(401, "AUTHENTICATION", None);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.body["description"], AUTHENTICATION);
    assert_eq!(r.body.get("code"), Some(&Value::Null));
    assert_eq!(r.body["resolution"], json!({"type": null}));
    assert!(r.body.get("detail").is_none());
    // docURL of a code-less error ends in `#null` (node-sdk's live end-to-end suite).
    assert_eq!(
        r.body["docURL"],
        "https://smartcar.com/docs/errors/api-errors/authentication-errors#null"
    );

    // 403 (test_out_of_permission_scope): code null, REAUTHENTICATE, no Retry-After (the
    // Python SDK would count an eleventh field).
    let r = env
        .get(&token, &format!("/v2.0/vehicles/{vid}/odometer"))
        .await;
    r.assert_error(403, "PERMISSION", None);
    assert_eq!(r.body.get("code"), Some(&Value::Null));
    assert_eq!(r.body["resolution"], json!({"type": "REAUTHENTICATE"}));
    assert_eq!(r.header("retry-after"), None);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.body["docURL"],
        "https://smartcar.com/docs/errors/api-errors/permission-errors#null"
    );

    // Subscribing to a webhook id that is not one (node-sdk's live `subscribe - error`): 400
    // VALIDATION, code null; an unknown well-formed id is a 404.
    let subscriber = env.token(&user, &[&vid], &ALL_SCOPES);
    let r = env
        .post(
            &subscriber,
            &format!("/v2.0/vehicles/{vid}/webhooks/webhookID"),
            json!({}),
        )
        .await;
    r.assert_error(400, "VALIDATION", None);
    assert_eq!(r.body.get("code"), Some(&Value::Null));
    env.post(
        &subscriber,
        &format!("/v2.0/vehicles/{vid}/webhooks/0f6f7c4e-0000-4000-8000-000000000000"),
        json!({}),
    )
    .await
    .assert_error(404, "RESOURCE_NOT_FOUND", Some("PATH"));

    // A malformed vehicle id (test_vehicle_state_error): 400, a resolution without a type;
    // an unknown well-formed id stays a 404.
    for path in ["/v2.0/vehicles/bad_id/", "/v2.0/vehicles/bad_id/odometer"] {
        let r = env.get(&token, path).await;
        r.assert_validation("\"vehicle_id\" must be a valid GUID");
        assert_eq!(r.body["resolution"], json!({"type": null}));
        assert_eq!(r.body["detail"][0]["field"], json!(["vehicle_id"]));
    }
    let r = env
        .post(
            &token,
            "/v2.0/vehicles/bad_id/batch",
            json!({"requests": [{"path": "/odometer"}]}),
        )
        .await;
    r.assert_error(400, "VALIDATION", None);
    env.get(
        &token,
        "/v2.0/vehicles/0f6f7c4e-0000-4000-8000-000000000000/odometer",
    )
    .await
    .assert_error(404, "RESOURCE_NOT_FOUND", Some("PATH"));
    // The token comes first.
    env.get("abc", "/v2.0/vehicles/bad_id/")
        .await
        .assert_error(401, "AUTHENTICATION", None);

    // Every 2xx carries sc-request-id; the escape hatch's GET echoes sc-unit-system.
    let r = env
        .get_units(&token, &format!("/v2.0/vehicles/{vid}/charge"), "imperial")
        .await;
    assert_eq!(r.status, 200);
    assert!(r.header("sc-request-id").is_some());
    let all = env.token(&user, &[&vid], &ALL_SCOPES);
    let r = env
        .get_units(&all, &format!("/v2.0/vehicles/{vid}/odometer"), "imperial")
        .await;
    assert_eq!(r.header("sc-unit-system"), Some("imperial"));
    assert!(r.header("sc-request-id").is_some());
}
