//! The Vehicle API v2.0, compatibility and management v2.0 of the simulator, over real HTTP.

use smartcar_sim::testing::v2 as support;

mod account;
mod batch;
mod commands;
mod compat;
mod management;
mod reads;
mod versions;
mod webhooks;

mod smoke {
    use crate::support::*;

    #[tokio::test]
    async fn routes_build_and_unknown_paths_are_404() {
        let env = Env::start().await;
        let user = env.user(0);
        let vid = env.sim.state().world().users[0].vehicle_ids[0].clone();
        let token = env.token(&user, &[&vid], &ALL_SCOPES);
        let r = env.get(&token, &format!("/v2.0/vehicles/{vid}/nope")).await;
        r.assert_error(404, "RESOURCE_NOT_FOUND", Some("PATH"));
        let r = env.get(&token, "/v2.0/whatever/else").await;
        r.assert_error(404, "RESOURCE_NOT_FOUND", Some("PATH"));
        let r = env
            .get(&token, &format!("/v2.0/vehicles/{vid}/odometer"))
            .await;
        assert_eq!(r.status, 200, "{:#}", r.body);
        // One sc-request-id on a success, and on an error the one its body names.
        assert_eq!(r.headers.get_all("sc-request-id").iter().count(), 1);
        let r = env
            .get("bad", &format!("/v2.0/vehicles/{vid}/odometer"))
            .await;
        let ids: Vec<_> = r.headers.get_all("sc-request-id").iter().collect();
        assert_eq!(ids.len(), 1);
        assert_eq!(ids[0].to_str().ok(), r.body["requestId"].as_str());
    }
}

/// The body checker must itself catch what it is for.
mod checker {
    use serde_json::json;
    use smartcar_api::types;

    use crate::support::assert_typed;

    fn rejects(body: serde_json::Value) -> bool {
        std::panic::catch_unwind(|| {
            assert_typed::<types::FuelTank>(&body);
        })
        .is_err()
    }

    #[test]
    fn accepts_the_spec_and_rejects_the_rest() {
        assert!(!rejects(
            json!({"amountRemaining": 1.0, "percentRemaining": 0.5, "range": null})
        ));
        assert!(
            rejects(json!({"amountRemaining": 1.0, "extra": 1})),
            "unknown field"
        );
        assert!(rejects(json!({"amountRemaining": "1.0"})), "wrong type");
        assert!(
            rejects(json!({"amountRemaining": 1.0, "extra": null})),
            "unknown null field"
        );
    }
}
