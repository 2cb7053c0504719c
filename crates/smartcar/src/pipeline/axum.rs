//! The receiver as an axum route (feature `axum`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::Router;
//! use smartcar::pipeline::WebhookPipeline;
//! use smartcar::webhooks::WebhookVerifier;
//!
//! let verifier = WebhookVerifier::new(std::env::var("SMARTCAR_MANAGEMENT_TOKEN")?)?;
//! let pipeline = WebhookPipeline::sqlite("webhooks.db", verifier).await?;
//! let app: Router = Router::new().route("/webhooks", smartcar::pipeline::axum::route(&pipeline));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! # let _ = (app, listener);
//! // axum::serve(listener, app).await?; and run pipeline.consumer() somewhere.
//! # Ok(()) }
//! ```

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};

use super::{Accepted, PipelineError, WebhookPipeline};
use crate::webhooks::{SIGNATURE_HEADER, WebhookError};

/// A `POST` route receiving deliveries into `pipeline` (see
/// [`WebhookPipeline::accept`]): 200 once stored (or a duplicate, or dead-lettered), 200
/// with the JSON answer for a verification challenge, 401 without a body for a missing or
/// wrong signature or a delivery outside the max age, 413 for a body over the verifier's
/// limit, 503 when the queue could not be written (the platform retries).
pub fn route<S>(pipeline: &WebhookPipeline) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    let pipeline = pipeline.clone();
    post(move |request: Request| {
        let pipeline = pipeline.clone();
        async move { receive(&pipeline, request).await }
    })
}

/// What [`route`] does, for a handler of your own: reads the signature header and the body
/// (up to the verifier's limit) and answers as [`route`] says.
pub async fn receive(pipeline: &WebhookPipeline, request: Request) -> Response {
    let signature = request
        .headers()
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let limit = pipeline.verifier().body_limit();
    let body = match axum::body::to_bytes(request.into_body(), limit.saturating_add(1)).await {
        Ok(body) => body,
        Err(_) => {
            return response(Err(PipelineError::Rejected(WebhookError::BodyTooLarge {
                size: limit.saturating_add(1),
                limit,
            })));
        }
    };
    response(pipeline.accept(signature.as_deref(), &body).await)
}

fn response(result: Result<Accepted, PipelineError>) -> Response {
    match result {
        Ok(Accepted::Challenge(reply)) => axum::Json(reply).into_response(),
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => {
            if !e.is_rejection() {
                tracing::error!(error = %e, "webhook delivery not stored; answered 503 so that the platform retries");
            }
            StatusCode::from_u16(e.status())
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
                .into_response()
        }
    }
}
