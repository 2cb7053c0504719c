//! Webhooks: registration (what the Dashboard does), the verification challenge, and signed
//! deliveries of v3 (`VERIFY`, `VEHICLE_STATE`, `VEHICLE_ERROR`, payload version 4.0) and v2.0
//! (`verify`, `eventBased`, `scheduled`, `dynamic`) envelopes, driven by the simulator handle.
//!
//! How the simulated platform delivers:
//!
//! - `POST` to the webhook's callback URL with `Content-Type: application/json`,
//!   `SC-Signature` (lowercase hex HMAC-SHA256 of the exact body bytes, keyed with the
//!   application management token) and `User-Agent: Smartcar/<simulator version>`; no
//!   redirects are followed; each attempt may take 15 s.
//! - A data delivery succeeds on any 2xx. A failed one is retried with the same event id and
//!   a new delivery id after each wait of the simulator's retry schedule (the platform's 25 s,
//!   50 s, 100 s by default; see [`Simulator::set_webhook_retry_delays`]), then dropped.
//! - A verification challenge succeeds when the receiver answers 200 (v2.0 webhooks: any 2xx)
//!   with a JSON body `{"challenge": hex(HMAC-SHA256(key = AMT, message = challenge))}`
//!   and `Content-Type: application/json`; it is not retried.
//! - Only verified webhooks get data, and only about vehicles subscribed to them (v2.0
//!   subscribe or management API v3 subscription). A v3 subscription to a verified v3 webhook
//!   sends a `FIRST_DELIVERY` `VEHICLE_STATE` event in the background.
//! - Every delivery, with each attempt's exact body, signature and result, is kept in a log
//!   (the last 1 000): [`Simulator::webhook_deliveries`].
//!
//! The management API v3 reads the application's webhooks (`GET /v3/webhooks`, filtered and
//! paged, and `GET /v3/webhooks/{webhook_id}`, application token; both build each resource the
//! same way). Verified: the paths, the `{data: WebhookResource}` answer of the single read
//! (docs: get-webhook). Simulator choices (unverified): every webhook is enabled, never
//! auto-subscribes, has no triggers and lists its signals as `data` by code only; only v3
//! webhooks are resources (a v2.0 webhook's id is 404 `RESOURCE_NOT_FOUND`, as an unknown id).
//!
//! [`Simulator::set_webhook_retry_delays`]: crate::Simulator::set_webhook_retry_delays
//! [`Simulator::webhook_deliveries`]: crate::Simulator::webhook_deliveries

mod events;
mod send;
mod subscriptions;

use std::collections::BTreeSet;
use std::time::Duration;

use axum::Router;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;
use smartcar_api::open_enums::{ChargeEventType, V2WebhookEventName, WebhookEventType};
use smartcar_api::{ops, types};

use crate::model::{DeliveryOutcome, Grant, Vehicle, Webhook, WebhookError, WebhookVersion, World};
use crate::routing::Route;
use crate::state::{AppState, random_id};
use crate::v2::{BatchItem, Units};
use events::V3Envelope;
use send::{Answer, Event, Target, accept_2xx};

/// Routes of this part of the platform: the management API v3's subscriptions (a subscription
/// to a verified webhook starts a first delivery; the v2.0 subscribe endpoints live with the
/// v2.0 API). Deliveries go out; nothing else comes in.
pub(crate) fn routes() -> Router<AppState> {
    use subscriptions as s;
    [
        Route::new(ops::LIST_SUBSCRIPTIONS, s::list).and(ops::CREATE_SUBSCRIPTION, s::create),
        Route::new(ops::GET_SUBSCRIPTION, s::get_one).and(ops::DELETE_SUBSCRIPTION, s::delete_one),
        Route::new(ops::LIST_WEBHOOKS, list_webhooks),
        Route::new(ops::GET_WEBHOOK, get_webhook),
    ]
    .into_iter()
    .fold(Router::new(), |r, route| {
        route.register(r, crate::v3::wrong_method)
    })
}

/// `GET /v3/webhooks`: the application's v3 webhooks, filtered and paged. The simulator's
/// webhooks are always enabled and never auto-subscribe; each delivers its signals as `data`.
async fn list_webhooks(
    axum::extract::State(state): axum::extract::State<AppState>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
    headers: axum::http::HeaderMap,
) -> crate::v3::V3Result {
    use crate::v3::{Page, Query, app_only, invalid, json};
    let query = Query::parse(raw.as_deref());
    let flag = |key: &str| match query.last(key) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(invalid(key, "Must be true or false.")),
    };
    let body = {
        let world = state.world();
        app_only(&state, &world, &headers)?;
        let (enabled, auto) = (flag("filter[isEnabled]")?, flag("filter[autoSubscribe]")?);
        let contains = |value: &str, key: &str| {
            query
                .last(key)
                .is_none_or(|f| value.to_lowercase().contains(&f.to_lowercase()))
        };
        let page = Page::from_query(&query, "page[number]", "page[size]")?;
        let matching: Vec<&Webhook> = world
            .webhooks
            .values()
            .filter(|w| {
                w.version == WebhookVersion::V3
                    && contains(&w.name, "filter[name]")
                    && contains(&w.callback_url, "filter[callbackUri]")
                    && enabled != Some(false)
                    && auto != Some(true)
            })
            .collect();
        let base = crate::routing::v3_link(ops::ListWebhooks::path());
        let data = page
            .slice(&matching)
            .iter()
            .map(|w| webhook_resource(w))
            .collect();
        let (meta, links) = page.meta_links(matching.len(), |n| {
            format!("{base}?page[number]={n}&page[size]={}", page.size)
        });
        types::WebhookList {
            data,
            meta: Some(meta),
            links: Some(links),
        }
    };
    Ok(json(axum::http::StatusCode::OK, &body))
}

/// The resource of a v3 webhook (`GET /v3/webhooks`, `GET /v3/webhooks/{webhook_id}`).
fn webhook_resource(w: &Webhook) -> types::WebhookResource {
    types::WebhookResource {
        id: w.id.clone(),
        type_: "webhook".to_owned(),
        attributes: types::WebhookResourceAttributes {
            name: Some(w.name.clone()),
            callback_uri: Some(w.callback_url.clone()),
            is_enabled: Some(true),
            triggers: Vec::new(),
            data: w
                .signals
                .iter()
                .map(|code| types::WebhookSignalRef {
                    code: Some(code.clone()),
                    group: None,
                    name: None,
                })
                .collect(),
            error_callback_uri: None,
            auto_subscribe: Some(false),
        },
        // Relative to the management API v3's base URL, as the platform writes its links.
        links: Some(types::WebhookResourceLinks {
            self_: Some(crate::routing::v3_link(ops::GetWebhook::path(&w.id))),
        }),
        meta: None,
    }
}

/// `GET /v3/webhooks/{webhook_id}`: one v3 webhook of the application (404 `RESOURCE_NOT_FOUND`
/// for an unknown id or a v2.0 webhook, which the v3 API does not list either).
async fn get_webhook(
    axum::extract::State(state): axum::extract::State<AppState>,
    path: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
    headers: axum::http::HeaderMap,
) -> crate::v3::V3Result {
    use crate::v3::{app_only, json, not_found, path1};
    let id = path1(path)?;
    let body = {
        let world = state.world();
        app_only(&state, &world, &headers)?;
        let webhook = world
            .webhooks
            .get(&id)
            .filter(|w| w.version == WebhookVersion::V3)
            .ok_or_else(not_found)?;
        types::WebhookResponse {
            data: webhook_resource(webhook),
        }
    };
    Ok(json(axum::http::StatusCode::OK, &body))
}

/// Lowercase hex HMAC-SHA256 of `message` keyed with `key` (`SC-Signature`, challenge
/// answers).
pub(crate) fn signature(key: &str, message: &[u8]) -> String {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    match Hmac::<Sha256>::new_from_slice(key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(message);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// The webhook as a delivery target, if it exists, has `version` and is verified.
fn target(
    world: &World,
    webhook_id: &str,
    version: WebhookVersion,
) -> Result<Target, WebhookError> {
    let webhook = world
        .webhooks
        .get(webhook_id)
        .ok_or_else(|| WebhookError::UnknownWebhook(webhook_id.to_owned()))?;
    if webhook.version != version {
        return Err(WebhookError::WrongVersion(format!(
            "webhook {webhook_id} delivers {:?} envelopes",
            webhook.version
        )));
    }
    if !world.v3.verified_webhooks.contains(webhook_id) {
        return Err(WebhookError::NotVerified(webhook_id.to_owned()));
    }
    Ok(to_target(world, webhook))
}

fn to_target(world: &World, webhook: &Webhook) -> Target {
    Target {
        id: webhook.id.clone(),
        name: webhook.name.clone(),
        url: webhook.callback_url.clone(),
        version: webhook.version,
        amt: world.app.amt.clone(),
    }
}

/// The subscribed vehicle (a snapshot), its subscriber and the subscriber's permissions.
fn subscribed(
    world: &World,
    webhook_id: &str,
    vehicle_id: &str,
) -> Result<(Vehicle, String, BTreeSet<String>), WebhookError> {
    let vehicle = world
        .vehicles
        .get(vehicle_id)
        .ok_or_else(|| WebhookError::UnknownVehicle(vehicle_id.to_owned()))?;
    let subscription = world
        .subscriptions
        .values()
        .find(|s| s.webhook_id == webhook_id && s.vehicle_id == vehicle_id)
        .ok_or_else(|| WebhookError::NotSubscribed {
            webhook_id: webhook_id.to_owned(),
            vehicle_id: Some(vehicle_id.to_owned()),
        })?;
    let scopes = world
        .connection(&subscription.user_id, vehicle_id)
        .map(|c| c.scopes.clone())
        .unwrap_or_default();
    Ok((vehicle.clone(), subscription.user_id.clone(), scopes))
}

/// Sends a `VEHICLE_STATE` event (see [`crate::Simulator::trigger_vehicle_state`]).
pub(crate) async fn deliver_vehicle_state(
    state: &AppState,
    webhook_id: &str,
    vehicle_id: &str,
    triggers: &[&str],
) -> Result<DeliveryOutcome, WebhookError> {
    let now_ms = state.now().timestamp_millis();
    let (target, vehicle, data, count) = {
        let world = state.world();
        let target = target(&world, webhook_id, WebhookVersion::V3)?;
        let (vehicle, user_id, scopes) = subscribed(&world, webhook_id, vehicle_id)?;
        let codes = world
            .webhooks
            .get(webhook_id)
            .map(|w| w.signals.clone())
            .unwrap_or_default();
        let (data, count) =
            events::vehicle_state_data(&vehicle, &user_id, &scopes, &codes, triggers, now_ms);
        (target, vehicle, data, count)
    };
    Ok(send_vehicle_event(
        state,
        &target,
        &vehicle,
        WebhookEventType::VehicleState,
        Some(count),
        &data,
    )
    .await)
}

/// Sends a v3 event about `vehicle` (`VEHICLE_STATE`, `VEHICLE_ERROR`) carrying `data`: a new
/// event id, the vehicle's mode in `meta`, retried on failure. Waits for the outcome.
async fn send_vehicle_event(
    state: &AppState,
    target: &Target,
    vehicle: &Vehicle,
    event_type: WebhookEventType,
    signal_count: Option<i32>,
    data: &Map<String, Value>,
) -> DeliveryOutcome {
    let event_id = random_id();
    let event = Event {
        event_type: event_type.as_str(),
        event_id: Some(event_id.clone()),
        vehicle_ids: vec![vehicle.id.clone()],
        retry: true,
    };
    let envelope = V3Envelope {
        event_id: &event_id,
        event_type: event_type.clone(),
        vehicle_id: Some(&vehicle.id),
        signal_count,
        mode: Some(events::meta_mode(vehicle)),
    };
    send::send(
        state,
        target,
        event,
        |delivery_id, at| events::v3_body(target, &envelope, data, delivery_id, at),
        accept_2xx,
    )
    .await
}

/// Sends the `FIRST_DELIVERY` of a new subscription in the background when the webhook is a
/// verified v3 webhook (nothing otherwise).
pub(crate) fn spawn_first_delivery(state: AppState, webhook_id: String, vehicle_id: String) {
    let eligible = {
        let world = state.world();
        target(&world, &webhook_id, WebhookVersion::V3).is_ok()
    };
    if eligible {
        tokio::spawn(async move {
            // The outcome is in the delivery log; nobody waits for it here.
            let _ = deliver_vehicle_state(&state, &webhook_id, &vehicle_id, &[]).await;
        });
    }
}

/// Whether a challenge answer is right: 200 (v2.0: any 2xx), JSON, the expected digest.
fn accept_challenge(answer: &Answer, expected: &str, any_2xx: bool) -> Result<(), String> {
    match answer.status {
        Some(200) => {}
        Some(s) if any_2xx && (200..300).contains(&s) => {}
        Some(s) => return Err(format!("the receiver answered {s}")),
        None => return Err("no answer".to_owned()),
    }
    let json = answer
        .content_type
        .as_deref()
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err("the answer is not application/json".to_owned());
    }
    let reply: types::WebhookChallengeResponse = serde_json::from_slice(&answer.body)
        .map_err(|e| format!("the answer is not {{\"challenge\": …}}: {e}"))?;
    if crate::auth::secret_eq(&reply.challenge, expected) {
        Ok(())
    } else {
        Err("wrong challenge answer".to_owned())
    }
}

/// What [`Simulator::add_webhook`](crate::Simulator::add_webhook) does.
pub(crate) fn add_webhook(
    state: &AppState,
    callback_url: &str,
    version: WebhookVersion,
    name: &str,
    signals: &[&str],
) -> String {
    let id = random_id();
    state.world().webhooks.insert(
        id.clone(),
        Webhook {
            id: id.clone(),
            name: name.to_owned(),
            callback_url: callback_url.to_owned(),
            version,
            signals: signals.iter().map(|s| (*s).to_owned()).collect(),
        },
    );
    id
}

/// What [`Simulator::remove_webhook`](crate::Simulator::remove_webhook) does.
pub(crate) fn remove_webhook(state: &AppState, webhook_id: &str) -> bool {
    let mut world = state.world();
    world
        .subscriptions
        .retain(|_, s| s.webhook_id != webhook_id);
    world.v3.verified_webhooks.remove(webhook_id);
    world.webhooks.remove(webhook_id).is_some()
}

/// What [`Simulator::set_webhook_retry_delays`](crate::Simulator::set_webhook_retry_delays) does.
pub(crate) fn set_webhook_retry_delays(state: &AppState, delays: &[Duration]) {
    state.world().v3.retry_delays = delays.to_vec();
}

/// What [`Simulator::webhook_deliveries`](crate::Simulator::webhook_deliveries) does.
pub(crate) fn webhook_deliveries(state: &AppState) -> Vec<crate::model::DeliveryOutcome> {
    state.world().v3.deliveries.iter().cloned().collect()
}

/// What [`Simulator::webhook_signature`](crate::Simulator::webhook_signature) does.
pub(crate) fn webhook_signature(state: &AppState, body: &[u8]) -> String {
    let amt = state.world().app.amt.clone();
    signature(&amt, body)
}

/// What [`Simulator::verify_webhook`](crate::Simulator::verify_webhook) does.
pub(crate) async fn verify_webhook(
    state: &AppState,
    webhook_id: &str,
) -> Result<bool, WebhookError> {
    let target = {
        let world = state.world();
        let webhook = world
            .webhooks
            .get(webhook_id)
            .ok_or_else(|| WebhookError::UnknownWebhook(webhook_id.to_owned()))?;
        to_target(&world, webhook)
    };
    let challenge = random_id();
    let expected = signature(&target.amt, challenge.as_bytes());
    let event_id = random_id();
    let v2 = target.version == WebhookVersion::V2;
    let event = Event {
        event_type: if v2 { "verify" } else { "VERIFY" },
        event_id: (!v2).then(|| event_id.clone()),
        vehicle_ids: Vec::new(),
        retry: false,
    };
    let envelope = V3Envelope {
        event_id: &event_id,
        event_type: WebhookEventType::Verify,
        vehicle_id: None,
        signal_count: None,
        mode: None,
    };
    let data = events::verify_data(&challenge);
    let outcome = send::send(
        state,
        &target,
        event,
        |delivery_id, at| {
            if v2 {
                events::v2_body(
                    &target,
                    V2WebhookEventName::Verify,
                    None,
                    events::v2_verify_payload(&challenge),
                )
            } else {
                events::v3_body(&target, &envelope, &data, delivery_id, at)
            }
        },
        |answer| accept_challenge(answer, &expected, v2),
    )
    .await;
    let mut world = state.world();
    if outcome.delivered {
        world.v3.verified_webhooks.insert(webhook_id.to_owned());
    } else {
        world.v3.verified_webhooks.remove(webhook_id);
    }
    Ok(outcome.delivered)
}

/// What [`Simulator::trigger_vehicle_state`](crate::Simulator::trigger_vehicle_state) does.
pub(crate) async fn trigger_vehicle_state(
    state: &AppState,
    webhook_id: &str,
    vehicle_id: &str,
    triggers: &[&str],
) -> Result<DeliveryOutcome, WebhookError> {
    deliver_vehicle_state(state, webhook_id, vehicle_id, triggers).await
}

/// What [`Simulator::trigger_vehicle_error`](crate::Simulator::trigger_vehicle_error) does.
pub(crate) async fn trigger_vehicle_error(
    state: &AppState,
    webhook_id: &str,
    vehicle_id: &str,
    error_type: &str,
    code: Option<&str>,
    resolved: bool,
    signals: &[&str],
) -> Result<DeliveryOutcome, WebhookError> {
    let (target, vehicle, data) = {
        let world = state.world();
        let target = target(&world, webhook_id, WebhookVersion::V3)?;
        let (vehicle, user_id, _) = subscribed(&world, webhook_id, vehicle_id)?;
        let data =
            events::vehicle_error_data(&vehicle, &user_id, error_type, code, resolved, signals)
                .ok_or_else(|| {
                    WebhookError::InvalidArgument(format!("no error {error_type}/{code:?}"))
                })?;
        (target, vehicle, data)
    };
    Ok(send_vehicle_event(
        state,
        &target,
        &vehicle,
        WebhookEventType::VehicleError,
        None,
        &data,
    )
    .await)
}

/// What [`Simulator::trigger_charging_event`](crate::Simulator::trigger_charging_event) does.
pub(crate) async fn trigger_charging_event(
    state: &AppState,
    webhook_id: &str,
    vehicle_id: &str,
    event_type: &str,
) -> Result<DeliveryOutcome, WebhookError> {
    if !ChargeEventType::KNOWN.contains(&event_type) {
        return Err(WebhookError::InvalidArgument(format!(
            "no charging event {event_type}"
        )));
    }
    let (target, vehicle) = {
        let world = state.world();
        let target = target(&world, webhook_id, WebhookVersion::V2)?;
        let (vehicle, _, _) = subscribed(&world, webhook_id, vehicle_id)?;
        (target, vehicle)
    };
    let event_id = random_id();
    let payload = events::v2_event_based_payload(
        &event_id,
        &vehicle.id,
        ChargeEventType::from(event_type),
        state.now(),
    );
    let event = Event {
        event_type: "eventBased",
        event_id: Some(event_id.clone()),
        vehicle_ids: vec![vehicle.id.clone()],
        retry: true,
    };
    Ok(send::send(
        state,
        &target,
        event,
        |_, _| {
            events::v2_body(
                &target,
                V2WebhookEventName::EventBased,
                Some(vehicle.mode),
                payload.clone(),
            )
        },
        accept_2xx,
    )
    .await)
}

/// What [`Simulator::trigger_v2_data`](crate::Simulator::trigger_v2_data) does.
pub(crate) async fn trigger_v2_data(
    state: &AppState,
    webhook_id: &str,
    scheduled: bool,
) -> Result<DeliveryOutcome, WebhookError> {
    let (target, mode, vehicles) = {
        let world = state.world();
        let target = target(&world, webhook_id, WebhookVersion::V2)?;
        let paths = world
            .webhooks
            .get(webhook_id)
            .map(|w| w.signals.clone())
            .unwrap_or_default();
        let mut vehicles = Vec::new();
        let mut mode = None;
        let mut subscriptions: Vec<_> = world
            .subscriptions
            .values()
            .filter(|s| s.webhook_id == webhook_id)
            .collect();
        subscriptions.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        for s in subscriptions {
            let Ok((vehicle, user_id, scopes)) = subscribed(&world, webhook_id, &s.vehicle_id)
            else {
                continue;
            };
            mode.get_or_insert(vehicle.mode);
            // The subscriber's permissions on this one vehicle: each item is what
            // `POST /v2.0/vehicles/{id}/batch` answers for its path with such a token.
            let grant = Grant {
                client_id: world.app.client_id.clone(),
                user_id,
                vehicle_ids: vec![vehicle.id.clone()],
                scopes,
                family: 0,
            };
            vehicles.push(types::V2WebhookVehicleData {
                vehicle_id: vehicle.id.clone(),
                request_id: Some(random_id()),
                data: paths
                    .iter()
                    .map(|p| {
                        BatchItem::new(p).run(state, &world, &grant, &vehicle.id, Units::Metric)
                    })
                    .collect(),
            });
        }
        if vehicles.is_empty() {
            return Err(WebhookError::NotSubscribed {
                webhook_id: webhook_id.to_owned(),
                vehicle_id: None,
            });
        }
        (target, mode, vehicles)
    };
    let vehicle_ids = vehicles.iter().map(|v| v.vehicle_id.clone()).collect();
    let payload = events::v2_data_payload(vehicles);
    let (name, label) = if scheduled {
        (V2WebhookEventName::Scheduled, "scheduled")
    } else {
        (V2WebhookEventName::Dynamic, "dynamic")
    };
    let event = Event {
        event_type: label,
        event_id: None,
        vehicle_ids,
        retry: true,
    };
    Ok(send::send(
        state,
        &target,
        event,
        |_, _| events::v2_body(&target, name.clone(), mode, payload.clone()),
        accept_2xx,
    )
    .await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_test_vectors() {
        // Smartcar's Node SDK test vectors (key = AMT, message = challenge / raw body).
        assert_eq!(
            signature("amt", b"challenge"),
            "9baf5a7464bd86740ad5a06e439dcf535a075022ed2c92d74efacf646d79328e"
        );
        assert_eq!(
            signature("amt", br#"{"pizza":"pasta"}"#),
            "4c05a8da471f05156ad717baa4017acd13a3a809850b9ca7d3301dcaaa854f70"
        );
    }

    #[test]
    fn challenge_answers() {
        let expected = signature("amt", b"challenge");
        let answer = |status, ct: &str, body: &str| Answer {
            status: Some(status),
            content_type: Some(ct.to_owned()),
            body: body.as_bytes().to_vec(),
        };
        let good = format!(r#"{{"challenge":"{expected}"}}"#);
        assert!(
            accept_challenge(&answer(200, "application/json", &good), &expected, false).is_ok()
        );
        assert!(
            accept_challenge(
                &answer(200, "application/json; charset=utf-8", &good),
                &expected,
                false
            )
            .is_ok()
        );
        assert!(
            accept_challenge(&answer(204, "application/json", &good), &expected, false).is_err()
        );
        assert!(accept_challenge(&answer(201, "application/json", &good), &expected, true).is_ok());
        assert!(accept_challenge(&answer(200, "text/plain", &good), &expected, false).is_err());
        assert!(
            accept_challenge(
                &answer(200, "application/json", r#"{"challenge":"challenge"}"#),
                &expected,
                false
            )
            .is_err()
        );
        assert!(
            accept_challenge(&answer(200, "application/json", "nope"), &expected, false).is_err()
        );
    }
}
