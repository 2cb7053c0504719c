//! Webhook subscriptions of the management API v3 (application token only).
//!
//! - `POST /v3/subscriptions` (`SubscriptionRequest`): the webhook and the vehicle must exist
//!   (404 otherwise) and the vehicle must be connected to the application — by `userId` when
//!   given, else by any user, the oldest connection's user being recorded (403 `PERMISSION`
//!   otherwise). Answers 202 `{"meta":{"message":"subscription creation in progress"}}`.
//!   Subscribing a vehicle that already is subscribed to the webhook is idempotent (202, nothing
//!   new). A new subscription to a verified v3 webhook gets a `VEHICLE_STATE` delivery with the
//!   trigger `FIRST_DELIVERY`, sent in the background right away (the platform: "within
//!   minutes"); see `Simulator::webhook_deliveries`.
//! - `GET /v3/subscriptions`: filters `filter[userId]`, `filter[webhookId]`,
//!   `filter[vehicleId]`, `filter[vehicle.mode]` (`live`/`simulated`/`test`, else 400); paged by
//!   `page[number]` / `page[size]` (1–100, default 10); newest first.
//! - `GET /v3/subscriptions/{id}`, `DELETE /v3/subscriptions/{id}` (204): 404 for an unknown id.
//! - The vehicle's make is upper case here, as in the management API's examples (`TESLA`).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use smartcar_api::types;

use crate::model::{Subscription, World};
use crate::state::{AppState, random_id};
use crate::v3::connections::{filter_prefix, mode_filter};
use crate::v3::{
    Page, Query, V3Result, app_only, body_bytes, invalid, json, no_content, not_found, path1,
    permission, vehicle_attributes,
};

fn relationship(kind: &str, id: &str) -> Option<types::Relationship> {
    Some(types::Relationship {
        data: types::ResourceIdentifier {
            id: id.to_owned(),
            type_: kind.to_owned(),
        },
        links: None,
    })
}

fn resource(world: &World, s: &Subscription) -> types::SubscriptionResource {
    types::SubscriptionResource {
        id: s.id.clone(),
        type_: "subscription".to_owned(),
        attributes: Some(types::SubscriptionResourceAttributes {
            vehicle: world
                .vehicles
                .get(&s.vehicle_id)
                .map(|v| vehicle_attributes(v, v.make.to_ascii_uppercase())),
        }),
        meta: Some(types::ResourceTimestamps {
            created_at: Some(s.created_at),
            updated_at: Some(s.created_at),
        }),
        relationships: Some(types::SubscriptionResourceRelationships {
            webhook: relationship("webhook", &s.webhook_id),
            user: relationship("user", &s.user_id),
            vehicle: relationship("vehicle", &s.vehicle_id),
        }),
        links: Some(types::ResourceLinks {
            self_: Some(format!("/subscriptions/{}", s.id)),
        }),
    }
}

/// `POST /v3/subscriptions`.
pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> V3Result {
    let now = state.now();
    let created = {
        let mut world = state.world();
        app_only(&state, &world, &headers)?;
        let body = body_bytes(body)?;
        let request: types::SubscriptionRequest = serde_json::from_slice(&body).map_err(|e| {
            invalid(
                "data.attributes",
                &format!("The request body is not a subscription request: {e}"),
            )
        })?;
        let types::SubscriptionRequestDataAttributes {
            webhook_id,
            vehicle_id,
            user_id,
        } = request.data.attributes;
        if !world.webhooks.contains_key(&webhook_id) || !world.vehicles.contains_key(&vehicle_id) {
            return Err(not_found());
        }
        let user_id = match user_id {
            Some(user) => world
                .connection(&user, &vehicle_id)
                .map(|c| c.user_id.clone()),
            None => world
                .connections
                .iter()
                .find(|c| c.vehicle_id == vehicle_id)
                .map(|c| c.user_id.clone()),
        }
        .ok_or_else(permission)?;
        let exists = world
            .subscriptions
            .values()
            .any(|s| s.webhook_id == webhook_id && s.vehicle_id == vehicle_id);
        if exists {
            None
        } else {
            let id = random_id();
            world.subscriptions.insert(
                id.clone(),
                Subscription {
                    id,
                    webhook_id: webhook_id.clone(),
                    vehicle_id: vehicle_id.clone(),
                    user_id,
                    created_at: now,
                },
            );
            Some((webhook_id, vehicle_id))
        }
    };
    if let Some((webhook_id, vehicle_id)) = created {
        super::spawn_first_delivery(state.clone(), webhook_id, vehicle_id);
    }
    let accepted = types::SubscriptionAccepted {
        meta: Some(types::SubscriptionAcceptedMeta {
            message: Some("subscription creation in progress".to_owned()),
        }),
    };
    Ok(json(StatusCode::ACCEPTED, &accepted))
}

/// `GET /v3/subscriptions`.
pub(crate) async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> V3Result {
    let query = Query::parse(raw.as_deref());
    let body = {
        let world = state.world();
        app_only(&state, &world, &headers)?;
        let user = query.last("filter[userId]");
        let webhook = query.last("filter[webhookId]");
        let vehicle = query.last("filter[vehicleId]");
        let mode = mode_filter(&query, "filter[vehicle.mode]")?;
        let page = Page::from_query(&query, "page[number]", "page[size]")?;
        let mut matching: Vec<&Subscription> = world
            .subscriptions
            .values()
            .filter(|s| {
                user.is_none_or(|u| s.user_id == u)
                    && webhook.is_none_or(|w| s.webhook_id == w)
                    && vehicle.is_none_or(|v| s.vehicle_id == v)
                    && mode.is_none_or(|m| {
                        world
                            .vehicles
                            .get(&s.vehicle_id)
                            .is_some_and(|v| v.mode == m)
                    })
            })
            .collect();
        matching.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        let data = page
            .slice(&matching)
            .iter()
            .map(|s| resource(&world, s))
            .collect();
        let prefix = filter_prefix(&[
            ("filter[userId]", user),
            ("filter[webhookId]", webhook),
            ("filter[vehicleId]", vehicle),
            ("filter[vehicle.mode]", mode),
        ]);
        let (meta, links) = page.meta_links(matching.len(), |n| {
            format!(
                "/subscriptions?{prefix}page[number]={n}&page[size]={}",
                page.size
            )
        });
        types::SubscriptionList {
            data,
            meta: Some(meta),
            links: Some(links),
        }
    };
    Ok(json(StatusCode::OK, &body))
}

/// `GET /v3/subscriptions/{subscription_id}`.
pub(crate) async fn get_one(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> V3Result {
    let id = path1(path)?;
    let body = {
        let world = state.world();
        app_only(&state, &world, &headers)?;
        let subscription = world.subscriptions.get(&id).ok_or_else(not_found)?;
        types::SubscriptionResponse {
            data: resource(&world, subscription),
        }
    };
    Ok(json(StatusCode::OK, &body))
}

/// `DELETE /v3/subscriptions/{subscription_id}`.
pub(crate) async fn delete_one(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> V3Result {
    let id = path1(path)?;
    let mut world = state.world();
    app_only(&state, &world, &headers)?;
    world.subscriptions.remove(&id).ok_or_else(not_found)?;
    Ok(no_content())
}
