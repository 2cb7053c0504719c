//! `GET /v2.0/user` and `GET /v2.0/vehicles`.

use serde_json::json;
use smartcar_api::types;
use smartcar_sim::model::Powertrain;

use crate::support::*;

#[tokio::test]
async fn user_with_and_without_trailing_slash() {
    let env = Env::start().await;
    let user = env.user(1);
    let token = env.token(&user, &[], &[]);
    for p in ["/v2.0/user", "/v2.0/user/"] {
        let r = env.get(&token, p).await;
        assert_eq!(r.status, 200, "{p}");
        assert_eq!(r.body, json!({"id": user}));
        assert_typed::<types::User>(&r.body);
    }
    env.get("nope", "/v2.0/user")
        .await
        .assert_error(401, "AUTHENTICATION", None);
}

#[tokio::test]
async fn vehicles_are_paged() {
    let env = Env::start().await;
    let ids: Vec<String> = (0..12)
        .map(|i| env.add_vehicle(Powertrain::Bev, 100 + i))
        .collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let user = env.user(0);
    let token = env.token(&user, &refs, &["read_odometer"]);

    for p in ["/v2.0/vehicles", "/v2.0/vehicles/"] {
        let r = env.get(&token, p).await;
        assert_eq!(r.status, 200, "{p}");
        assert_eq!(
            r.body,
            json!({"vehicles": ids[..10], "paging": {"count": 12, "offset": 0}})
        );
        assert_typed::<types::VehicleList>(&r.body);
    }
    let r = env.get(&token, "/v2.0/vehicles?limit=5&offset=10").await;
    assert_eq!(
        r.body,
        json!({"vehicles": ids[10..], "paging": {"count": 12, "offset": 10}})
    );
    let r = env.get(&token, "/v2.0/vehicles?limit=50").await;
    assert_eq!(r.body["vehicles"].as_array().map(Vec::len), Some(12));
    let r = env.get(&token, "/v2.0/vehicles?offset=40").await;
    assert_eq!(
        r.body,
        json!({"vehicles": [], "paging": {"count": 12, "offset": 40}})
    );

    for (q, message) in [
        ("limit=0", "\"limit\" must be greater than or equal to 1"),
        ("limit=51", "\"limit\" must be less than or equal to 50"),
        ("limit=ten", "\"limit\" must be a number"),
        ("limit=2.5", "\"limit\" must be an integer"),
        ("offset=-1", "\"offset\" must be greater than or equal to 0"),
        ("offset=", "\"offset\" must be a number"),
    ] {
        let r = env.get(&token, &format!("/v2.0/vehicles?{q}")).await;
        r.assert_validation(message);
    }

    // After a disconnect the vehicle leaves the list.
    let r = env
        .delete(&token, &format!("/v2.0/vehicles/{}/application", ids[0]))
        .await;
    assert_eq!(r.status, 200);
    let r = env.get(&token, "/v2.0/vehicles?limit=1").await;
    assert_eq!(
        r.body,
        json!({"vehicles": [ids[1]], "paging": {"count": 11, "offset": 0}})
    );
}
