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
//! [`Simulator::set_webhook_retry_delays`]: crate::Simulator::set_webhook_retry_delays
//! [`Simulator::webhook_deliveries`]: crate::Simulator::webhook_deliveries

mod events;
mod send;

use std::collections::BTreeSet;
use std::time::Duration;

use axum::Router;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;
use smartcar_api::open_enums::{ChargeEventType, V2WebhookEventName, WebhookEventType};
use smartcar_api::types;

use crate::model::{DeliveryOutcome, Grant, Vehicle, Webhook, WebhookError, WebhookVersion, World};
use crate::state::{AppState, random_id};
use crate::v2::{BatchItem, Units};
use events::V3Envelope;
use send::{Answer, Event, Target, accept_2xx};

/// Routes of this part of the platform: none (deliveries go out, nothing comes in; the v2.0
/// subscribe endpoints live with the v2.0 API and the v3 subscriptions with the v3 API).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
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

impl crate::Simulator {
    /// Registers a webhook for the application, as creating one in the Smartcar Dashboard does,
    /// and returns its id. It starts unverified: call [`Simulator::verify_webhook`] to send the
    /// verification challenge; until it is answered correctly the webhook gets no deliveries.
    ///
    /// `signals` are, for a [`WebhookVersion::V3`] webhook, the signal codes every
    /// `VEHICLE_STATE` event carries (`tractionbattery-stateofcharge`, …); for a
    /// [`WebhookVersion::V2`] webhook, the v2.0 paths its `scheduled` / `dynamic` events carry
    /// (`/odometer`, `/battery`, … any GET path under `/v2.0/vehicles/{id}`, as in a batch).
    ///
    /// ```
    /// use smartcar_sim::Simulator;
    /// use smartcar_sim::model::WebhookVersion;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let sim = Simulator::start().await?;
    /// let id = sim.add_webhook(
    ///     "http://127.0.0.1:9/webhook",
    ///     WebhookVersion::V3,
    ///     "Battery monitor",
    ///     &["tractionbattery-stateofcharge", "odometer-traveleddistance"],
    /// );
    /// assert!(sim.state().world().webhooks.contains_key(&id));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// [`Simulator::verify_webhook`]: crate::Simulator::verify_webhook
    pub fn add_webhook(
        &self,
        callback_url: &str,
        version: WebhookVersion,
        name: &str,
        signals: &[&str],
    ) -> String {
        let id = random_id();
        self.state().world().webhooks.insert(
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

    /// Deletes a webhook and its subscriptions; returns whether it existed.
    ///
    /// ```
    /// # use smartcar_sim::{Simulator, model::WebhookVersion};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let sim = Simulator::start().await?;
    /// let id = sim.add_webhook("http://127.0.0.1:9/", WebhookVersion::V2, "Old", &["/odometer"]);
    /// assert!(sim.remove_webhook(&id));
    /// assert!(!sim.remove_webhook(&id));
    /// # Ok(())
    /// # }
    /// ```
    pub fn remove_webhook(&self, webhook_id: &str) -> bool {
        let mut world = self.state().world();
        world
            .subscriptions
            .retain(|_, s| s.webhook_id != webhook_id);
        world.v3.verified_webhooks.remove(webhook_id);
        world.webhooks.remove(webhook_id).is_some()
    }

    /// Sets the waits before each retry of a failed delivery (the platform: 25 s, 50 s, 100 s,
    /// the default). An empty list: no retries.
    ///
    /// ```
    /// # use smartcar_sim::Simulator;
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let sim = Simulator::start().await?;
    /// sim.set_webhook_retry_delays(&[Duration::from_millis(10), Duration::from_millis(20)]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_webhook_retry_delays(&self, delays: &[Duration]) {
        self.state().world().v3.retry_delays = delays.to_vec();
    }

    /// The delivery log: every delivery sent (challenges included), oldest first, each with its
    /// attempts' exact bodies, signatures and results. Keeps the last 1 000.
    ///
    /// ```
    /// # use smartcar_sim::Simulator;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let sim = Simulator::start().await?;
    /// assert!(sim.webhook_deliveries().is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn webhook_deliveries(&self) -> Vec<crate::model::DeliveryOutcome> {
        self.state().world().v3.deliveries.iter().cloned().collect()
    }

    /// The `SC-Signature` the platform sends with `body`: lowercase hex HMAC-SHA256 of the
    /// bytes keyed with the application management token. (The answer to a verification
    /// challenge is the same function of the challenge.)
    ///
    /// ```
    /// # use smartcar_sim::Simulator;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let sim = Simulator::start().await?;
    /// let signature = sim.webhook_signature(br#"{"pizza":"pasta"}"#);
    /// assert_eq!(signature.len(), 64);
    /// # Ok(())
    /// # }
    /// ```
    pub fn webhook_signature(&self, body: &[u8]) -> String {
        let amt = self.state().world().app.amt.clone();
        signature(&amt, body)
    }

    /// Sends the verification challenge to a webhook (v3 `VERIFY` or v2.0 `verify` envelope)
    /// and returns whether the receiver answered it correctly (see the module documentation);
    /// the webhook is then verified, or unverified again. The attempt is in
    /// [`Simulator::webhook_deliveries`].
    ///
    /// ```no_run
    /// # use smartcar_sim::{Simulator, model::WebhookVersion};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sim = Simulator::start().await?;
    /// let id = sim.add_webhook("http://127.0.0.1:8000/webhooks", WebhookVersion::V3, "Fleet", &[]);
    /// if !sim.verify_webhook(&id).await? {
    ///     eprintln!("{:?}", sim.webhook_deliveries().last());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`WebhookError::UnknownWebhook`].
    ///
    /// [`Simulator::webhook_deliveries`]: crate::Simulator::webhook_deliveries
    pub async fn verify_webhook(&self, webhook_id: &str) -> Result<bool, WebhookError> {
        let state = self.state();
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

    /// Sends a v3 `VEHICLE_STATE` event about a subscribed vehicle to a verified v3 webhook:
    /// `data.signals` are the webhook's signal codes read from the vehicle's current state
    /// with the subscriber's permissions, `data.triggers` the given signal codes (none:
    /// `FIRST_DELIVERY`). Waits for the delivery (retries included) and returns its outcome.
    ///
    /// ```no_run
    /// # use smartcar_sim::Simulator;
    /// # async fn demo(sim: &Simulator, webhook_id: &str, vehicle_id: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// let outcome = sim
    ///     .trigger_vehicle_state(webhook_id, vehicle_id, &["tractionbattery-stateofcharge"])
    ///     .await?;
    /// assert!(outcome.delivered, "{:?}", outcome.attempts);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// Unknown webhook or vehicle, a v2.0 webhook, an unverified webhook, a vehicle not
    /// subscribed to it ([`WebhookError`]).
    pub async fn trigger_vehicle_state(
        &self,
        webhook_id: &str,
        vehicle_id: &str,
        triggers: &[&str],
    ) -> Result<DeliveryOutcome, WebhookError> {
        deliver_vehicle_state(self.state(), webhook_id, vehicle_id, triggers).await
    }

    /// Sends a v3 `VEHICLE_ERROR` event about a subscribed vehicle to a verified v3 webhook:
    /// one error of the platform's catalogue (`error_type`, `code`: e.g. `"VEHICLE_STATE"`,
    /// `Some("ASLEEP")`; `"PERMISSION"`, `None`), in state `ERROR`, or `RESOLVED` when
    /// `resolved`, naming the affected `signals`.
    ///
    /// ```no_run
    /// # use smartcar_sim::Simulator;
    /// # async fn demo(sim: &Simulator, webhook_id: &str, vehicle_id: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// let outcome = sim
    ///     .trigger_vehicle_error(
    ///         webhook_id,
    ///         vehicle_id,
    ///         "COMPATIBILITY",
    ///         Some("VEHICLE_NOT_CAPABLE"),
    ///         false,
    ///         &["location-preciselocation"],
    ///     )
    ///     .await?;
    /// # let _ = outcome;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Simulator::trigger_vehicle_state`], and [`WebhookError::InvalidArgument`] for an
    /// error type and code the catalogue does not have.
    ///
    /// [`Simulator::trigger_vehicle_state`]: crate::Simulator::trigger_vehicle_state
    pub async fn trigger_vehicle_error(
        &self,
        webhook_id: &str,
        vehicle_id: &str,
        error_type: &str,
        code: Option<&str>,
        resolved: bool,
        signals: &[&str],
    ) -> Result<DeliveryOutcome, WebhookError> {
        let state = self.state();
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

    /// Sends a v2.0 `eventBased` event (`CHARGING_STARTED`, `CHARGING_STOPPED` or
    /// `CHARGING_COMPLETED`) about a subscribed vehicle to a verified v2.0 webhook.
    ///
    /// ```no_run
    /// # use smartcar_sim::Simulator;
    /// # async fn demo(sim: &Simulator, webhook_id: &str, vehicle_id: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// let outcome = sim
    ///     .trigger_charging_event(webhook_id, vehicle_id, "CHARGING_STARTED")
    ///     .await?;
    /// # let _ = outcome;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// Unknown webhook or vehicle, a v3 webhook, an unverified webhook, a vehicle not
    /// subscribed to it, an unknown event type ([`WebhookError`]).
    pub async fn trigger_charging_event(
        &self,
        webhook_id: &str,
        vehicle_id: &str,
        event_type: &str,
    ) -> Result<DeliveryOutcome, WebhookError> {
        if !ChargeEventType::KNOWN.contains(&event_type) {
            return Err(WebhookError::InvalidArgument(format!(
                "no charging event {event_type}"
            )));
        }
        let state = self.state();
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

    /// Sends a v2.0 data event to a verified v2.0 webhook: `scheduled` (`true`) or `dynamic`,
    /// with, for every vehicle subscribed to the webhook, one item per v2.0 path of the webhook,
    /// read from the vehicle's current state with the subscriber's permissions, in metric
    /// units. Each item is exactly what `POST /v2.0/vehicles/{id}/batch` answers for the path
    /// (same code: any GET path of the vehicle works, a query string included; a path that
    /// is not one is a 404 item; a missing permission a 403, a powertrain that lacks the data a
    /// 501, a test VIN its forced error).
    ///
    /// ```no_run
    /// # use smartcar_sim::Simulator;
    /// # async fn demo(sim: &Simulator, webhook_id: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// let outcome = sim.trigger_v2_data(webhook_id, true).await?;
    /// # let _ = outcome;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// Unknown webhook, a v3 webhook, an unverified webhook, no vehicle subscribed
    /// ([`WebhookError`]).
    pub async fn trigger_v2_data(
        &self,
        webhook_id: &str,
        scheduled: bool,
    ) -> Result<DeliveryOutcome, WebhookError> {
        let state = self.state();
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
