//! The v2.0 webhook subscribe / unsubscribe endpoints.

use serde_json::json;
use smartcar_api::types;
use smartcar_sim::model::{Powertrain, Webhook, WebhookVersion};

use crate::support::*;

#[tokio::test]
async fn subscribe_and_unsubscribe() {
    let env = Env::start().await;
    let bev = env.add_vehicle(Powertrain::Bev, 41);
    let user = env.user(0);
    let token = env.token(&user, &[&bev], &[]);
    let webhook = "5a8e5e38-1e12-4011-a36d-56f120053f9e";
    env.sim.state().world().webhooks.insert(
        webhook.into(),
        Webhook {
            id: webhook.into(),
            name: "Charging".into(),
            callback_url: "http://127.0.0.1:9/hook".into(),
            version: WebhookVersion::V2,
            signals: vec![],
        },
    );
    let p = format!("/v2.0/vehicles/{bev}/webhooks/{webhook}");
    for _ in 0..2 {
        let r = env
            .send(env.http.post(env.url(&p)).bearer_auth(&token))
            .await;
        assert_eq!(r.status, 200, "{:#}", r.body);
        assert_eq!(r.body, json!({"webhookId": webhook, "vehicleId": bev}));
        assert_typed::<types::WebhookSubscription>(&r.body);
    }
    {
        let w = env.sim.state().world();
        let subs: Vec<_> = w.subscriptions.values().collect();
        assert_eq!(subs.len(), 1, "subscribing twice records one subscription");
        assert_eq!(subs[0].webhook_id, webhook);
        assert_eq!(subs[0].vehicle_id, bev);
        assert_eq!(subs[0].user_id, user);
        assert!(w.subscriptions.contains_key(&subs[0].id));
    }

    // An unknown webhook: 404 when the id is well formed, 400 VALIDATION when it is not one.
    let unknown = format!("/v2.0/vehicles/{bev}/webhooks/0f6f7c4e-0000-4000-8000-000000000000");
    env.send(env.http.post(env.url(&unknown)).bearer_auth(&token))
        .await
        .assert_error(404, "RESOURCE_NOT_FOUND", Some("PATH"));
    let malformed = format!("/v2.0/vehicles/{bev}/webhooks/nope");
    env.send(env.http.post(env.url(&malformed)).bearer_auth(&token))
        .await
        .assert_error(400, "VALIDATION", None);
    env.send(env.http.post(env.url(&p)).bearer_auth("bad"))
        .await
        .assert_error(401, "AUTHENTICATION", None);

    // Unsubscribe takes the application management token, not the access token.
    env.send(env.http.delete(env.url(&p)).bearer_auth(&token))
        .await
        .assert_error(401, "AUTHENTICATION", None);
    assert_eq!(env.sim.state().world().subscriptions.len(), 1);
    let (amt, _, _) = env.app();
    let r = env
        .send(
            env.http
                .delete(env.url(&p))
                .bearer_auth(&amt)
                .header("content-type", "application/json")
                .body("{}"),
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    assert_eq!(r.body, json!({"status": "success"}));
    assert!(env.sim.state().world().subscriptions.is_empty());
    env.send(env.http.delete(env.url(&unknown)).bearer_auth(&amt))
        .await
        .assert_error(404, "RESOURCE_NOT_FOUND", Some("PATH"));
}
