//! A platform of a test's own on 127.0.0.1, for the shapes the simulator does not send (the
//! docs' wrapped v3 vehicle, an empty signal list, a bare-string resolution…): the routes given,
//! plus a client-credentials grant, and a client pointed at it.

use axum::Json;
use axum::routing::post;
use serde_json::json;
use smartcar::Client;

/// The redirect URI the returned client is configured with.
pub const REDIRECT: &str = "http://localhost:8000/callback";

/// Serves `routes` plus `POST /oauth2/token` (an application token for any client) on a free
/// port of 127.0.0.1; returns a client pointed at it and the server task (abort it at the end).
pub async fn serve(routes: axum::Router) -> (Client, tokio::task::JoinHandle<()>) {
    let app = routes.route(
        "/oauth2/token",
        post(|| async {
            Json(json!({"access_token": "app-token-0123456789", "token_type": "Bearer", "expires_in": 3600}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port on 127.0.0.1");
    let origin = format!("http://{}", listener.local_addr().expect("bound"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let client = Client::builder()
        .client_id("client-id")
        .client_secret("client-secret-0123456789")
        .redirect_uri(REDIRECT)
        .origin(&origin)
        .build()
        .expect("a client");
    (client, server)
}
