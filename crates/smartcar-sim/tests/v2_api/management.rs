//! The management API v2.0: connections, cursor paging, filters, deletion.

use serde_json::{Value, json};
use smartcar_api::types;
use smartcar_sim::model::Powertrain;

use crate::support::*;

async fn list(env: &Env, query: &str) -> Resp {
    let (amt, _, _) = env.app();
    env.send(
        env.http
            .get(env.url(&format!("/v2.0/management/connections{query}")))
            .basic_auth("default", Some(amt)),
    )
    .await
}

async fn delete(env: &Env, query: &str) -> Resp {
    let (amt, _, _) = env.app();
    env.send(
        env.http
            .delete(env.url(&format!("/v2.0/management/connections{query}")))
            .basic_auth("default", Some(amt)),
    )
    .await
}

/// 7 connections: user 0 with vehicles v0..v4, user 1 with v0 and v5; one simulated vehicle
/// (v4). Connected one minute apart, oldest first; returns the (user, vehicle) pairs newest
/// first.
fn populate(env: &Env) -> Vec<(String, String)> {
    let vs: Vec<String> = (0..6)
        .map(|i| env.add_vehicle(Powertrain::Bev, 200 + i))
        .collect();
    env.edit(&vs[4], |v| v.mode = "simulated");
    let (u0, u1) = (env.user(0), env.user(1));
    let pairs = vec![
        (u0.clone(), vs[0].clone()),
        (u0.clone(), vs[1].clone()),
        (u1.clone(), vs[0].clone()),
        (u0.clone(), vs[2].clone()),
        (u0.clone(), vs[3].clone()),
        (u1.clone(), vs[5].clone()),
        (u0.clone(), vs[4].clone()),
    ];
    let start = env.sim.state().now() - chrono::Duration::hours(1);
    let mut w = env.sim.state().world();
    for (i, (u, v)) in pairs.iter().enumerate() {
        let at = start + chrono::Duration::minutes(i as i64);
        w.connect(
            u,
            v,
            &Default::default(),
            at,
            smartcar_sim::state::random_id,
        );
    }
    drop(w);
    pairs.into_iter().rev().collect()
}

fn pairs_of(body: &Value) -> Vec<(String, String)> {
    body["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .map(|c| {
            (
                c["userId"].as_str().unwrap_or_default().to_owned(),
                c["vehicleId"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn pages_with_a_cursor_until_null() {
    let env = Env::start().await;
    let expected = populate(&env);
    let first = list(&env, "").await;
    assert_eq!(first.status, 200, "{:#}", first.body);
    assert_typed::<types::ConnectionList>(&first.body);
    assert_eq!(
        pairs_of(&first.body),
        expected,
        "default limit 10 holds all 7"
    );
    assert_eq!(first.body["paging"], json!({"cursor": null}));
    let c0 = &first.body["connections"][0];
    assert_eq!(c0["mode"], "simulated");
    assert_eq!(first.body["connections"][1]["mode"], "live");
    let at = c0["connectedAt"].as_str().expect("connectedAt");
    assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages <= 10, "cursor never ended");
        let q = match &cursor {
            Some(c) => format!("?limit=3&cursor={c}"),
            None => "?limit=3".to_owned(),
        };
        let r = list(&env, &q).await;
        assert_eq!(r.status, 200, "{:#}", r.body);
        assert_typed::<types::ConnectionList>(&r.body);
        let page = pairs_of(&r.body);
        assert!(page.len() <= 3);
        seen.extend(page);
        match &r.body["paging"]["cursor"] {
            Value::String(c) => cursor = Some(c.clone()),
            Value::Null => break,
            other => panic!("cursor {other}"),
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, expected);

    // A connection added between pages does not disturb the following pages.
    let r = list(&env, "?limit=3").await;
    let cursor = r.body["paging"]["cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let late = env.add_vehicle(Powertrain::Ice, 299);
    env.token(&env.user(2), &[&late], &[]);
    let r = list(&env, &format!("?limit=3&cursor={cursor}")).await;
    assert_eq!(pairs_of(&r.body), expected[3..6]);
    // Trailing slash, as the Python SDK sends.
    let r = list(&env, "/?limit=1").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["connections"][0]["vehicleId"], late);
}

#[tokio::test]
async fn filters_and_validation() {
    let env = Env::start().await;
    let expected = populate(&env);
    let u1 = env.user(1);
    let r = list(&env, &format!("?user_id={u1}")).await;
    let want: Vec<_> = expected.iter().filter(|(u, _)| *u == u1).cloned().collect();
    assert_eq!(pairs_of(&r.body), want);
    let v0 = &expected[6].1;
    let r = list(&env, &format!("?vehicle_id={v0}")).await;
    let want: Vec<_> = expected.iter().filter(|(_, v)| v == v0).cloned().collect();
    assert_eq!(want.len(), 2);
    assert_eq!(pairs_of(&r.body), want);
    let r = list(&env, &format!("?vehicle_id={v0}&user_id={u1}")).await;
    assert_eq!(pairs_of(&r.body).len(), 1);
    let r = list(&env, "?mode=simulated").await;
    assert_eq!(pairs_of(&r.body), expected[..1]);
    let r = list(&env, "?mode=live&limit=100").await;
    assert_eq!(pairs_of(&r.body), expected[1..]);

    for (q, message) in [
        ("?limit=0", "\"limit\" must be greater than or equal to 1"),
        ("?limit=101", "\"limit\" must be less than or equal to 100"),
        ("?limit=x", "\"limit\" must be a number"),
        (
            "?mode=prod",
            "\"mode\" must be one of [live, simulated, test]",
        ),
        ("?cursor=garbage!", "\"cursor\" is not a valid cursor"),
        ("?cursor=Zm9vYmFy", "\"cursor\" is not a valid cursor"),
    ] {
        list(&env, q).await.assert_validation(message);
    }
    let r = env
        .send(env.http.get(env.url("/v2.0/management/connections")))
        .await;
    r.assert_error(401, "AUTHENTICATION", None);
    let (amt, _, _) = env.app();
    let r = env
        .send(
            env.http
                .get(env.url("/v2.0/management/connections"))
                .basic_auth("other", Some(amt.clone())),
        )
        .await;
    r.assert_error(401, "AUTHENTICATION", None);
    let r = env
        .send(
            env.http
                .get(env.url("/v2.0/management/connections"))
                .bearer_auth(amt),
        )
        .await;
    r.assert_error(401, "AUTHENTICATION", None);
}

#[tokio::test]
async fn delete_connections() {
    let env = Env::start().await;
    let expected = populate(&env);
    let (u0, u1) = (env.user(0), env.user(1));
    let shared = expected[6].1.clone(); // v0: connected by both users
    let token = env.token(&u0, &[&shared], &["read_odometer"]);

    delete(&env, "")
        .await
        .assert_validation("\"value\" must contain at least one of [user_id, vehicle_id]");
    delete(&env, "?user_id=")
        .await
        .assert_validation("\"value\" must contain at least one of [user_id, vehicle_id]");

    // Both: only that pair.
    let r = delete(&env, &format!("?user_id={u1}&vehicle_id={shared}")).await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    assert_eq!(
        r.body,
        json!({"connections": [{"userId": u1, "vehicleId": shared}]})
    );
    assert_typed::<types::DeletedConnections>(&r.body);
    assert_eq!(
        list(&env, "?limit=100").await.body["connections"]
            .as_array()
            .map(Vec::len),
        Some(6)
    );
    // u0's token still reaches the shared vehicle.
    let odometer = format!("/v2.0/vehicles/{shared}/odometer");
    assert_eq!(env.get(&token, &odometer).await.status, 200);

    // By vehicle: u0's connection of it goes, and the token loses it.
    let r = delete(&env, &format!("/?vehicle_id={shared}")).await;
    assert_eq!(pairs_of(&r.body), [(u0.clone(), shared.clone())]);
    env.get(&token, &odometer)
        .await
        .assert_error(403, "PERMISSION", None);

    // By user.
    let r = delete(&env, &format!("?user_id={u0}")).await;
    assert_eq!(pairs_of(&r.body).len(), 4);
    let left = list(&env, "").await;
    assert_eq!(pairs_of(&left.body), [(u1.clone(), expected[1].1.clone())]);
    // Nothing left to delete: an empty list.
    let r = delete(&env, &format!("?user_id={u0}")).await;
    assert_eq!(r.body, json!({"connections": []}));

    let r = env
        .send(
            env.http
                .delete(env.url(&format!("/v2.0/management/connections?user_id={u1}"))),
        )
        .await;
    r.assert_error(401, "AUTHENTICATION", None);
}
