//! Connections, users and webhook subscriptions of the v3 APIs over real HTTP: filters,
//! paging, single resources, deletions and their effect on tokens.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use smartcar_api::types;
use smartcar_sim::model::{Powertrain, WebhookVersion};
use smartcar_sim::testing::v3::*;

/// Every connection id over all pages of `query`, following `links.next`.
async fn connection_pages(env: &Env, query: &str) -> Vec<Value> {
    let mut next = Some(format!("/connections?{query}"));
    let mut out = Vec::new();
    let mut guard = 0;
    while let Some(link) = next {
        guard += 1;
        assert!(guard < 20);
        let answer = get(env, &format!("/v3{link}"), Some(&env.app), None).await;
        assert_eq!(answer.status, 200, "{link}: {:#}", answer.body);
        let page: types::ConnectionListV3 = typed(&answer.body);
        out.extend(answer.body["data"].as_array().unwrap().iter().cloned());
        next = page.links.and_then(|l| l.next);
    }
    out
}

#[tokio::test]
async fn connections_filter_page_get_and_delete() {
    let env = start().await;
    let (u0, u1) = (user(&env.sim, 0), user(&env.sim, 1));
    let a = add_vehicle(&env.sim, &u0, Powertrain::Bev);
    let b = add_vehicle(&env.sim, &u0, Powertrain::Ice);
    let c = add_vehicle(&env.sim, &u0, Powertrain::Phev);
    let d = add_vehicle(&env.sim, &u1, Powertrain::Bev);
    env.sim.state().world().vehicles.get_mut(&c).unwrap().mode = "simulated";
    let mut ids = Vec::new();
    for (u, v) in [(&u0, &a), (&u0, &b), (&u0, &c), (&u1, &d)] {
        ids.push(connect(
            &env.sim,
            u,
            v,
            &["read_vehicle_info", "read_odometer"],
        ));
        env.sim.state().clock.advance(Duration::from_secs(1));
    }

    // Every live connection (the default), newest first, one page.
    let all = get(&env, "/v3/connections", Some(&env.app), None).await;
    assert_eq!(all.status, 200);
    assert!(all.request_id.is_some());
    let list: types::ConnectionListV3 = typed(&all.body);
    let order: Vec<&str> = list.data.iter().map(|c| c.id.as_str()).collect();
    let newest_first: Vec<&str> = [&ids[3], &ids[1], &ids[0]].map(String::as_str).to_vec();
    assert_eq!(
        order, newest_first,
        "the simulated vehicle's connection is left out"
    );
    let meta = list.meta.clone().unwrap();
    assert_eq!(
        (meta.page, meta.page_size, meta.total_count),
        (Some(1), Some(10), Some(3))
    );
    let first = &all.body["data"][0];
    assert_eq!(first["type"], "connection");
    assert_eq!(first["relationships"]["vehicle"]["data"]["id"], d.as_str());
    assert_eq!(first["relationships"]["vehicle"]["data"]["type"], "vehicle");
    assert_eq!(first["relationships"]["user"]["data"]["id"], u1.as_str());
    assert_eq!(
        first["attributes"]["permissions"],
        serde_json::json!(["read_odometer", "read_vehicle_info"])
    );
    assert_eq!(first["attributes"]["vehicle"]["powertrainType"], "BEV");
    assert_eq!(first["links"]["self"], format!("/connections/{}", ids[3]));
    assert!(first["meta"]["createdAt"].is_string());

    // Filters.
    let of_u0 = connection_pages(&env, &format!("filter[userId]={u0}")).await;
    assert_eq!(of_u0.len(), 2);
    assert!(
        of_u0
            .iter()
            .all(|c| c["relationships"]["user"]["data"]["id"] == u0.as_str())
    );
    let of_b = connection_pages(&env, &format!("filter[vehicleId]={b}")).await;
    assert_eq!(of_b.len(), 1);
    assert_eq!(of_b[0]["id"], ids[1].as_str());
    let simulated = connection_pages(&env, "filter[vehicle.mode]=simulated").await;
    assert_eq!(simulated.len(), 1);
    assert_eq!(simulated[0]["id"], ids[2].as_str());
    assert_eq!(simulated[0]["attributes"]["vehicle"]["mode"], "simulated");
    let simulated_of_u0 = connection_pages(
        &env,
        &format!("filter[userId]={u0}&filter[vehicle.mode]=simulated"),
    )
    .await;
    assert_eq!(simulated_of_u0, simulated);
    let live = connection_pages(&env, "filter[vehicle.mode]=live").await;
    assert_eq!(live, all.body["data"].as_array().unwrap().clone());
    // The former name is not read: the default (live) applies.
    assert_eq!(connection_pages(&env, "filter[mode]=simulated").await, live);
    let both = connection_pages(&env, &format!("filter[userId]={u1}&filter[vehicleId]={a}")).await;
    assert!(both.is_empty());
    for bad in ["racing", "LIVE", ""] {
        let bad = get(
            &env,
            &format!("/v3/connections?filter[vehicle.mode]={bad}"),
            Some(&env.app),
            None,
        )
        .await;
        assert_v3_error(&bad, 400, "VALIDATION", None);
    }
    let bad = get(&env, "/v3/connections?page[size]=0", Some(&env.app), None).await;
    assert_v3_error(&bad, 400, "VALIDATION", None);

    // Paging by 1, the filters kept in the links.
    let page1 = get(
        &env,
        &format!("/v3/connections?filter[userId]={u0}&page[size]=1"),
        Some(&env.app),
        None,
    )
    .await;
    let links = &page1.body["links"];
    assert_eq!(
        links["next"],
        format!("/connections?filter[userId]={u0}&page[number]=2&page[size]=1")
    );
    assert_eq!(links["last"], links["next"]);
    assert!(links.get("previous").is_none());
    let paged = connection_pages(&env, &format!("filter[userId]={u0}&page[size]=1")).await;
    assert_eq!(paged, of_u0);
    let page1 = get(
        &env,
        "/v3/connections?filter[vehicle.mode]=simulated&page[size]=1",
        Some(&env.app),
        None,
    )
    .await;
    assert_eq!(
        page1.body["links"]["self"],
        "/connections?filter[vehicle.mode]=simulated&page[number]=1&page[size]=1"
    );

    // One connection.
    let one = get(
        &env,
        &format!("/v3/connections/{}", ids[0]),
        Some(&env.app),
        None,
    )
    .await;
    assert_eq!(one.status, 200);
    let one: types::ConnectionResponseV3 = typed(&one.body);
    assert_eq!(one.data.relationships.vehicle.data.id, a);
    let missing = get(&env, "/v3/connections/nope", Some(&env.app), None).await;
    assert_v3_error(&missing, 404, "RESOURCE_NOT_FOUND", Some("PATH"));

    // Application token only.
    let user_token = user_token(&env.sim, &u0, &[&a, &b], &["read_vehicle_info"]);
    assert_v3_error(
        &get(&env, "/v3/connections", Some(&user_token), None).await,
        401,
        "AUTHENTICATION",
        None,
    );
    assert_v3_error(
        &get(&env, "/v3/connections", None, None).await,
        401,
        "AUTHENTICATION",
        None,
    );

    // Delete one connection: gone, and no token reaches the vehicle any more.
    assert_eq!(
        get(&env, &format!("/v3/vehicles/{a}"), Some(&user_token), None)
            .await
            .status,
        200
    );
    let deleted = delete(&env, &format!("/v3/connections/{}", ids[0]), Some(&env.app)).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, Value::Null);
    assert!(deleted.request_id.is_some());
    assert_eq!(
        get(
            &env,
            &format!("/v3/connections/{}", ids[0]),
            Some(&env.app),
            None
        )
        .await
        .status,
        404
    );
    assert_eq!(
        delete(&env, &format!("/v3/connections/{}", ids[0]), Some(&env.app))
            .await
            .status,
        404
    );
    assert_v3_error(
        &get(&env, &format!("/v3/vehicles/{a}"), Some(&user_token), None).await,
        403,
        "PERMISSION",
        None,
    );
    assert_v3_error(
        &get(
            &env,
            &format!("/v3/vehicles/{a}/signals"),
            Some(&env.app),
            Some(&u0),
        )
        .await,
        403,
        "PERMISSION",
        None,
    );
    assert_eq!(
        get(&env, &format!("/v3/vehicles/{b}"), Some(&user_token), None)
            .await
            .status,
        200
    );

    // Delete the user: every connection gone.
    assert_eq!(
        delete(&env, &format!("/v3/users/{u0}"), Some(&env.app))
            .await
            .status,
        204
    );
    assert!(
        connection_pages(&env, &format!("filter[userId]={u0}"))
            .await
            .is_empty()
    );
    assert_eq!(connection_pages(&env, "").await.len(), 1);
    assert_eq!(
        get(&env, &format!("/v3/vehicles/{b}"), Some(&user_token), None)
            .await
            .status,
        403
    );
    assert_v3_error(
        &delete(&env, "/v3/users/nobody", Some(&env.app)).await,
        404,
        "RESOURCE_NOT_FOUND",
        Some("PATH"),
    );
    assert_eq!(
        delete(&env, &format!("/v3/users/{u1}"), None).await.status,
        401
    );
}

fn subscription_body(webhook: &str, vehicle: &str, user: Option<&str>) -> String {
    let mut attributes = serde_json::json!({"webhookId": webhook, "vehicleId": vehicle});
    if let Some(u) = user {
        attributes["userId"] = u.into();
    }
    serde_json::json!({"data": {"attributes": attributes}}).to_string()
}

async fn subscribe(env: &Env, body: &str) -> Answer {
    post(env, "/v3/subscriptions", Some(&env.app), None, Some(body)).await
}

#[tokio::test]
async fn subscriptions_crud_with_filters() {
    let env = start().await;
    let (u0, u1) = (user(&env.sim, 0), user(&env.sim, 1));
    let a = add_vehicle(&env.sim, &u0, Powertrain::Bev);
    let b = add_vehicle(&env.sim, &u0, Powertrain::Ice);
    let d = add_vehicle(&env.sim, &u1, Powertrain::Bev);
    let lonely = add_vehicle(&env.sim, &u1, Powertrain::Ice);
    env.sim.state().world().vehicles.get_mut(&b).unwrap().mode = "simulated";
    for (u, v) in [(&u0, &a), (&u0, &b), (&u1, &d)] {
        connect(&env.sim, u, v, &["read_battery"]);
    }
    // Unverified webhooks: nothing is delivered, so no receiver is needed.
    let w1 = env
        .sim
        .add_webhook("http://127.0.0.1:9/one", WebhookVersion::V3, "One", &[]);
    let w2 = env
        .sim
        .add_webhook("http://127.0.0.1:9/two", WebhookVersion::V3, "Two", &[]);

    // Create.
    let created = subscribe(&env, &subscription_body(&w1, &a, Some(&u0))).await;
    assert_eq!(created.status, 202, "{:#}", created.body);
    let accepted: types::SubscriptionAccepted = typed(&created.body);
    assert_eq!(
        accepted.meta.and_then(|m| m.message).as_deref(),
        Some("subscription creation in progress")
    );
    env.sim.state().clock.advance(Duration::from_secs(1));
    assert_eq!(
        subscribe(&env, &subscription_body(&w1, &b, None))
            .await
            .status,
        202
    );
    env.sim.state().clock.advance(Duration::from_secs(1));
    assert_eq!(
        subscribe(&env, &subscription_body(&w2, &d, None))
            .await
            .status,
        202
    );
    env.sim.state().clock.advance(Duration::from_secs(1));
    assert_eq!(
        subscribe(&env, &subscription_body(&w2, &a, None))
            .await
            .status,
        202
    );
    // Again: idempotent.
    assert_eq!(
        subscribe(&env, &subscription_body(&w1, &a, None))
            .await
            .status,
        202
    );
    assert_eq!(env.sim.state().world().subscriptions.len(), 4);
    assert!(
        env.sim.webhook_deliveries().is_empty(),
        "unverified webhooks get nothing"
    );

    // Refusals.
    for (body, status, kind) in [
        (
            subscription_body("nope", &a, None),
            404,
            "RESOURCE_NOT_FOUND",
        ),
        (
            subscription_body(&w1, "nope", None),
            404,
            "RESOURCE_NOT_FOUND",
        ),
        (subscription_body(&w1, &lonely, None), 403, "PERMISSION"),
        (subscription_body(&w1, &d, Some(&u0)), 403, "PERMISSION"),
        (
            r#"{"data":{"attributes":{"webhookId":"x"}}}"#.to_owned(),
            400,
            "VALIDATION",
        ),
        ("{".to_owned(), 400, "VALIDATION"),
        ("[]".to_owned(), 400, "VALIDATION"),
    ] {
        let answer = subscribe(&env, &body).await;
        let code = (status == 404).then_some("PATH");
        assert_v3_error(&answer, status, kind, code);
    }
    let no_token = post(
        &env,
        "/v3/subscriptions",
        None,
        None,
        Some(&subscription_body(&w1, &a, None)),
    )
    .await;
    assert_v3_error(&no_token, 401, "AUTHENTICATION", None);

    // List, newest first, and filters.
    let all = get(&env, "/v3/subscriptions", Some(&env.app), None).await;
    assert_eq!(all.status, 200);
    let list: types::SubscriptionList = typed(&all.body);
    let pairs: Vec<(String, String)> = list
        .data
        .iter()
        .map(|s| {
            let r = s.relationships.clone().unwrap();
            (r.webhook.unwrap().data.id, r.vehicle.unwrap().data.id)
        })
        .collect();
    assert_eq!(
        pairs,
        vec![
            (w2.clone(), a.clone()),
            (w2.clone(), d.clone()),
            (w1.clone(), b.clone()),
            (w1.clone(), a.clone())
        ]
    );
    let first = &all.body["data"][0];
    assert_eq!(first["type"], "subscription");
    assert_eq!(first["relationships"]["user"]["data"]["id"], u0.as_str());
    let make = env.sim.state().world().vehicles[&a].make.clone();
    assert_eq!(first["attributes"]["vehicle"]["make"], make.as_str());
    assert_eq!(list.meta.unwrap().total_count, Some(4));

    let count = |query: String| {
        let env = &env;
        async move {
            let answer = get(
                env,
                &format!("/v3/subscriptions?{query}"),
                Some(&env.app),
                None,
            )
            .await;
            assert_eq!(answer.status, 200, "{query}: {:#}", answer.body);
            let list: types::SubscriptionList = typed(&answer.body);
            list.data
                .iter()
                .map(|s| s.id.clone())
                .collect::<BTreeSet<_>>()
                .len()
        }
    };
    assert_eq!(count(format!("filter[webhookId]={w1}")).await, 2);
    assert_eq!(count(format!("filter[userId]={u1}")).await, 1);
    assert_eq!(count(format!("filter[vehicleId]={a}")).await, 2);
    assert_eq!(count("filter[vehicle.mode]=simulated".into()).await, 1);
    assert_eq!(
        count(format!("filter[vehicle.mode]=live&filter[webhookId]={w1}")).await,
        1
    );
    assert_v3_error(
        &get(
            &env,
            "/v3/subscriptions?filter[vehicle.mode]=LIVE",
            Some(&env.app),
            None,
        )
        .await,
        400,
        "VALIDATION",
        None,
    );
    let page2 = get(
        &env,
        "/v3/subscriptions?page[number]=2&page[size]=3",
        Some(&env.app),
        None,
    )
    .await;
    assert_eq!(page2.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        page2.body["links"]["previous"],
        "/subscriptions?page[number]=1&page[size]=3"
    );
    assert!(page2.body["links"].get("next").is_none());

    // One, delete.
    let id = list.data[0].id.clone();
    let one = get(
        &env,
        &format!("/v3/subscriptions/{id}"),
        Some(&env.app),
        None,
    )
    .await;
    assert_eq!(one.status, 200);
    let one: types::SubscriptionResponse = typed(&one.body);
    assert_eq!(one.data.id, id);
    assert_eq!(
        one.data.links.unwrap().self_,
        Some(format!("/subscriptions/{id}"))
    );
    assert_eq!(
        delete(&env, &format!("/v3/subscriptions/{id}"), Some(&env.app))
            .await
            .status,
        204
    );
    assert_v3_error(
        &get(
            &env,
            &format!("/v3/subscriptions/{id}"),
            Some(&env.app),
            None,
        )
        .await,
        404,
        "RESOURCE_NOT_FOUND",
        Some("PATH"),
    );
    assert_eq!(
        delete(&env, &format!("/v3/subscriptions/{id}"), Some(&env.app))
            .await
            .status,
        404
    );
    assert_eq!(count(String::new()).await, 3);

    // Disconnecting a vehicle ends its subscriptions.
    let conn = env
        .sim
        .state()
        .world()
        .connection(&u0, &a)
        .unwrap()
        .id
        .clone();
    assert_eq!(
        delete(&env, &format!("/v3/connections/{conn}"), Some(&env.app))
            .await
            .status,
        204
    );
    assert_eq!(count(format!("filter[vehicleId]={a}")).await, 0);
}

#[tokio::test]
async fn connections_filter_on_the_connect_external_id() {
    use smartcar_sim::ApproveOptions;
    use smartcar_sim::testing::{authorize_url, param};
    let env = start().await;
    let (u0, u1) = (user(&env.sim, 0), user(&env.sim, 1));
    // Connect with `external_id`: the connections carry it.
    let redirect = env
        .sim
        .approve(
            &authorize_url(&env.sim, "external_id=crm-42"),
            ApproveOptions::new(),
        )
        .expect("approved");
    assert_eq!(param(&redirect, "external_id").as_deref(), Some("crm-42"));
    let redirect = env
        .sim
        .approve(
            &authorize_url(&env.sim, "external_id=crm%2043"),
            ApproveOptions::new().user("driver2@example.com"),
        )
        .expect("approved");
    assert_eq!(param(&redirect, "external_id").as_deref(), Some("crm 43"));
    // A connection without one.
    let lonely = add_vehicle(&env.sim, &u1, Powertrain::Bev);
    connect(&env.sim, &u1, &lonely, &["read_odometer"]);

    let of_42 = connection_pages(&env, "filter[user.externalId]=crm-42").await;
    let vehicles_of_u0 = env.sim.state().world().users[0].vehicle_ids.len();
    assert_eq!(of_42.len(), vehicles_of_u0);
    assert!(
        of_42
            .iter()
            .all(|c| c["relationships"]["user"]["data"]["id"] == u0.as_str())
    );
    let of_43 = connection_pages(&env, "filter[user.externalId]=crm%2043").await;
    assert!(!of_43.is_empty());
    assert!(
        of_43
            .iter()
            .all(|c| c["relationships"]["user"]["data"]["id"] == u1.as_str()
                && c["relationships"]["vehicle"]["data"]["id"] != lonely.as_str())
    );
    assert_eq!(
        connection_pages(
            &env,
            &format!("filter[user.externalId]=crm-42&filter[userId]={u1}")
        )
        .await
        .len(),
        0
    );
    assert!(
        connection_pages(&env, "filter[user.externalId]=crm")
            .await
            .is_empty(),
        "exact match"
    );
    // The filter is kept in the links, encoded.
    let page = get(
        &env,
        "/v3/connections?filter[user.externalId]=crm%2043&page[size]=1",
        Some(&env.app),
        None,
    )
    .await;
    assert_eq!(
        page.body["links"]["self"],
        "/connections?filter[user.externalId]=crm+43&page[number]=1&page[size]=1"
    );
}

#[tokio::test]
async fn webhooks_are_read_one_by_one_and_listed() {
    let env = start().await;
    let hook = env.sim.add_webhook(
        "http://127.0.0.1:9/hook",
        WebhookVersion::V3,
        "Charging",
        &["odometer-traveleddistance", "tractionbattery-stateofcharge"],
    );
    let legacy = env
        .sim
        .add_webhook("http://127.0.0.1:9/v2", WebhookVersion::V2, "Legacy", &[]);
    let path = smartcar_api::ops::GetWebhook::path(&hook);
    let one = get(&env, &path, Some(&env.app), None).await;
    assert_eq!(one.status, 200, "{:#}", one.body);
    assert!(one.request_id.is_some());
    let response: types::WebhookResponse = smartcar_sim::testing::assert_typed(&one.body);
    assert_eq!(response.data.id, hook);
    assert_eq!(response.data.type_, "webhook");
    let a = &response.data.attributes;
    assert_eq!(a.name.as_deref(), Some("Charging"));
    assert_eq!(a.callback_uri.as_deref(), Some("http://127.0.0.1:9/hook"));
    let codes: Vec<_> = a.data.iter().filter_map(|s| s.code.clone()).collect();
    assert_eq!(
        codes,
        ["odometer-traveleddistance", "tractionbattery-stateofcharge"]
    );
    assert_eq!(
        one.body["data"]["links"]["self"],
        format!("/webhooks/{hook}")
    );
    // The same resource as in the list.
    let list = get(
        &env,
        &smartcar_api::ops::ListWebhooks::path(),
        Some(&env.app),
        None,
    )
    .await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["data"], serde_json::json!([one.body["data"]]));

    // Unknown, a v2.0 webhook, no or another kind of token.
    for id in ["nope", legacy.as_str()] {
        assert_v3_error(
            &get(
                &env,
                &smartcar_api::ops::GetWebhook::path(id),
                Some(&env.app),
                None,
            )
            .await,
            404,
            "RESOURCE_NOT_FOUND",
            Some("PATH"),
        );
    }
    assert_v3_error(
        &get(&env, &path, None, None).await,
        401,
        "AUTHENTICATION",
        None,
    );
    let u0 = user(&env.sim, 0);
    let user_token = user_token(&env.sim, &u0, &[], &["read_vehicle_info"]);
    assert_v3_error(
        &get(&env, &path, Some(&user_token), None).await,
        401,
        "AUTHENTICATION",
        None,
    );
}
