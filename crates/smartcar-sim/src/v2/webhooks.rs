//! The v2.0 webhook subscription endpoints. They only record the subscription in the world;
//! deliveries are `webhooks.rs`'s business.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use smartcar_api::{ops, types};

use super::{grant, json, respond, vehicle_access};
use crate::auth;
use crate::error::ApiError;
use crate::model::Subscription;
use crate::state::{AppState, random_id};

/// `POST /v2.0/vehicles/{id}/webhooks/{webhook_id}` with the vehicle's access token: subscribes
/// the vehicle (for the token's user). Subscribing again is a no-op that answers the same.
/// Unknown webhook: see [`unknown_webhook`].
pub(crate) async fn subscribe(
    State(state): State<AppState>,
    ids: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let result =
        ids.map_err(|_| ApiError::not_found())
            .and_then(|Path((vehicle_id, webhook_id))| {
                let mut world = state.world();
                let user_id = {
                    let g = grant(&state, &world, &headers)?;
                    vehicle_access(
                        &state,
                        &world,
                        g,
                        &vehicle_id,
                        ops::SUBSCRIBE_WEBHOOK.permissions.first().copied(),
                        false,
                    )?;
                    g.user_id.clone()
                };
                if !world.webhooks.contains_key(&webhook_id) {
                    return Err(unknown_webhook(&webhook_id));
                }
                let exists = world
                    .subscriptions
                    .values()
                    .any(|s| s.webhook_id == webhook_id && s.vehicle_id == vehicle_id);
                if !exists {
                    let id = random_id();
                    let subscription = Subscription {
                        id: id.clone(),
                        webhook_id: webhook_id.clone(),
                        vehicle_id: vehicle_id.clone(),
                        user_id,
                        created_at: state.now(),
                    };
                    world.subscriptions.insert(id, subscription);
                }
                Ok(types::WebhookSubscription {
                    webhook_id,
                    vehicle_id,
                })
            });
    respond(result.map(|body| json(StatusCode::OK, &body, &[])))
}

/// An unknown webhook id: 400 `VALIDATION` when it is not shaped as a webhook id (a UUID), as
/// the platform answers (node-sdk's live end-to-end `subscribe - error`: `webhookID` → 400,
/// code null); 404 `RESOURCE_NOT_FOUND` for a well-formed one (unverified).
fn unknown_webhook(webhook_id: &str) -> ApiError {
    if super::id_shaped(webhook_id) {
        ApiError::not_found()
    } else {
        ApiError::validation("webhook_id", "\"webhook_id\" must be a valid GUID")
    }
}

/// `DELETE /v2.0/vehicles/{id}/webhooks/{webhook_id}` with `Authorization: Bearer <AMT>`:
/// removes the vehicle's subscriptions to the webhook (none is fine). Unknown vehicle or
/// webhook: 404.
pub(crate) async fn unsubscribe(
    State(state): State<AppState>,
    ids: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let result =
        ids.map_err(|_| ApiError::not_found())
            .and_then(|Path((vehicle_id, webhook_id))| {
                let mut world = state.world();
                auth::management_bearer(&world, &headers)?;
                if !world.vehicles.contains_key(&vehicle_id)
                    || !world.webhooks.contains_key(&webhook_id)
                {
                    return Err(ApiError::not_found());
                }
                world
                    .subscriptions
                    .retain(|_, s| !(s.webhook_id == webhook_id && s.vehicle_id == vehicle_id));
                Ok(types::StatusResponse {
                    status: Some("success".to_owned()),
                })
            });
    respond(result.map(|body| json(StatusCode::OK, &body, &[])))
}
