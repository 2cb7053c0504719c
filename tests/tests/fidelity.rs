//! The SDK against the shapes Smartcar's own evidence shows, where the live platform, the
//! official SDKs' mocks and the docs disagree (issue 17). Each shape is served over HTTP: the
//! simulator serves the live one; a small axum server in the test serves the others.

use axum::Json;
use axum::routing::{get, post};
use serde_json::json;
use smartcar::{ApplicationSession, Client, Permission};
use smartcar_sim::Simulator;
use smartcar_tests::flow::{CALLBACK, client_for, connect_user_id};

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
    let platform = axum::Router::new()
        .route(
            "/oauth2/token",
            post(|| async {
                Json(json!({"access_token": "app-token-0123456789", "token_type": "Bearer", "expires_in": 3600}))
            }),
        )
        .route(
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, platform).await;
    });
    let client = Client::builder()
        .client_id("client-id")
        .client_secret("client-secret-0123456789")
        .redirect_uri(CALLBACK)
        .origin(&origin)
        .build()
        .unwrap();
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
