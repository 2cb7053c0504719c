//! Receiving Smartcar webhooks: signature verification (constant time), the verification
//! challenge, replay protection, and typed events (v3 payload version 4.0 and legacy v2.0).
//!
//! Every delivery carries `SC-Signature`: the lowercase hex HMAC-SHA256 of the raw body, keyed
//! with the application management token (AMT). Verify it over the *raw bytes* received, before
//! parsing (re-serialising a parsed body, as some official SDKs do, breaks on any formatting
//! difference). An empty key would let anyone sign: [`WebhookVerifier::new`] refuses one.
//!
//! ```
//! use smartcar::webhooks::{WebhookEvent, WebhookVerifier};
//!
//! let verifier = WebhookVerifier::new("amt")?;
//! let now_ms = chrono::Utc::now().timestamp_millis();
//! let body = format!(r#"{{"eventId":"e-1","eventType":"VERIFY","data":{{"challenge":"challenge"}},"meta":{{"deliveryId":"d-1","deliveredAt":{now_ms}}}}}"#);
//! let signature = smartcar::webhooks::sign("amt", body.as_bytes());
//! let delivery = verifier.verify(Some(&signature), body.as_bytes())?;
//! match &delivery.event {
//!     WebhookEvent::Verify { challenge } => {
//!         // Answer 200 with this JSON body:
//!         let reply = verifier.challenge_response(challenge);
//!         assert_eq!(reply["challenge"], "9baf5a7464bd86740ad5a06e439dcf535a075022ed2c92d74efacf646d79328e");
//!     }
//!     other => println!("{other:?}"),
//! }
//! // A tampered body fails, in constant time.
//! assert!(verifier.verify(Some(&signature), b"{}").is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Replays and duplicates
//!
//! A valid signature proves that Smartcar produced the body, not that it is the first time
//! you see it: whoever captured one delivery (a proxy log, a leaked request dump) could send
//! it again. Two defences, both needed:
//!
//! - **Freshness (v3).** v3 bodies carry `meta.deliveredAt` (epoch milliseconds), inside the
//!   signed bytes, set anew on every delivery attempt. After the HMAC, the verifier refuses a
//!   delivery older than [`WebhookVerifier::max_age`] ([`DEFAULT_MAX_AGE`], 5 minutes, by
//!   default; [`WebhookError::TooOld`]) or more than [`MAX_CLOCK_SKEW`] in the future
//!   ([`WebhookError::FromTheFuture`]). Keep the receiver's clock synchronised (NTP).
//!   v2.0 bodies carry no signed timestamp: for them only deduplication helps.
//! - **Deduplication.** Delivery is at least once: Smartcar retries until it gets a 2xx, so
//!   the same event can arrive more than once even without an attacker. Remember what you
//!   processed for at least the max age and skip repeats. v3: key on
//!   [`Delivery::event_id`] (`eventId`, constant across retries; `meta.deliveryId` changes
//!   per attempt). v2.0: no event id in the envelope; key on the webhook id
//!   ([`Delivery::webhook_id`]) plus a SHA-256 of the raw body (a retry sends the same
//!   bytes), or on the payload's own `eventId` for `eventBased` deliveries.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use zeroize::Zeroizing;

use crate::runtime::{Clock, SharedClock};
use serde_json::Value;
use sha2::Sha256;
use smartcar_api::types;

type HmacSha256 = Hmac<Sha256>;

/// Name of the signature header.
pub const SIGNATURE_HEADER: &str = "sc-signature";

/// Default largest body accepted (1 MiB); deliveries are a few kilobytes.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// Default oldest v3 delivery accepted, by its signed `meta.deliveredAt`: 5 minutes. Smartcar
/// stamps every attempt (retries included) when it sends it, so a genuine delivery is seconds
/// old when it arrives; five minutes leaves room for a slow network and a receiver whose
/// clock is a little behind, and closes the window for replaying a captured delivery.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(5 * 60);

/// How far in the future a v3 delivery's `meta.deliveredAt` may be (the sender's clock ahead
/// of the receiver's): 1 minute.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Why a delivery was rejected.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// No `SC-Signature` header.
    #[error("the webhook delivery has no SC-Signature header")]
    MissingSignature,
    /// The signature does not match the body (wrong AMT, tampered or forged body).
    #[error("the webhook signature does not match the body")]
    BadSignature,
    /// The body is larger than the configured limit.
    #[error("the webhook body is {size} bytes, more than the {limit}-byte limit")]
    BodyTooLarge {
        /// Bytes received.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The (correctly signed) body is not a webhook envelope.
    #[error("the webhook body is not a Smartcar webhook envelope: {0}")]
    Malformed(String),
    /// The correctly signed v3 delivery was sent longer ago than the verifier's max age: a
    /// replay of a captured delivery, or a receiver clock far ahead.
    #[error(
        "the webhook delivery was sent {age_ms} ms ago (meta.deliveredAt {delivered_at}), more than the {max_age:?} accepted: a replayed delivery, or this server's clock is wrong (synchronise it with NTP)"
    )]
    TooOld {
        /// `meta.deliveredAt`, epoch milliseconds.
        delivered_at: i64,
        /// How old it was when checked, in milliseconds.
        age_ms: i64,
        /// The verifier's max age.
        max_age: Duration,
    },
    /// The correctly signed v3 delivery is stamped more than [`MAX_CLOCK_SKEW`] in the future:
    /// the clocks disagree (this server's is behind).
    #[error(
        "the webhook delivery is stamped {ahead_ms} ms in the future (meta.deliveredAt {delivered_at}), more than the {max_skew:?} of clock skew accepted: synchronise this server's clock with NTP"
    )]
    FromTheFuture {
        /// `meta.deliveredAt`, epoch milliseconds.
        delivered_at: i64,
        /// How far ahead of the receiver's clock it was, in milliseconds.
        ahead_ms: i64,
        /// The skew accepted ([`MAX_CLOCK_SKEW`]).
        max_skew: Duration,
    },
}

/// Lowercase hex HMAC-SHA256 of `body` keyed with `amt`: the `SC-Signature` Smartcar sends, and
/// the answer to a verification challenge (with the challenge as the body).
pub fn sign(amt: &str, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(amt.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Verifies deliveries with the application management token.
///
/// Checks, in order: the body size, the signature (constant time), then, for v3 deliveries,
/// the signed `meta.deliveredAt` against [`max_age`](Self::max_age) (see the module's
/// [replay notes](self#replays-and-duplicates)). The key is wiped from memory on drop.
#[derive(Clone)]
pub struct WebhookVerifier {
    amt: Zeroizing<String>,
    max_body: usize,
    max_age: Option<Duration>,
    clock: Option<SharedClock>,
}

impl fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("amt", &"[redacted]")
            .field("max_body", &self.max_body)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl WebhookVerifier {
    /// A verifier keyed with the application management token (AMT; Smartcar's dashboard,
    /// application settings), checking v3 deliveries' age against [`DEFAULT_MAX_AGE`].
    ///
    /// ```
    /// use smartcar::webhooks::WebhookVerifier;
    /// assert!(WebhookVerifier::new("").is_err());
    /// let verifier = WebhookVerifier::new("the-management-token")?;
    /// # let _ = verifier;
    /// # Ok::<(), smartcar::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for an empty or whitespace-only
    /// key: an HMAC keyed with it proves nothing (anyone can compute it), so a receiver built
    /// on it would accept forged deliveries. Set the application management token (e.g. from
    /// `SMARTCAR_MANAGEMENT_TOKEN`), or do not mount the webhook route at all.
    pub fn new(amt: impl Into<String>) -> Result<Self, crate::Error> {
        let amt = Zeroizing::new(amt.into());
        if amt.trim().is_empty() {
            return Err(crate::Error::invalid(
                "webhook key",
                "the application management token is empty, and an empty HMAC key would let \
                 anyone forge deliveries: set the application management token from the \
                 Smartcar dashboard (e.g. SMARTCAR_MANAGEMENT_TOKEN), or do not receive webhooks",
            ));
        }
        Ok(WebhookVerifier {
            amt,
            max_body: DEFAULT_MAX_BODY,
            max_age: Some(DEFAULT_MAX_AGE),
            clock: None,
        })
    }

    /// Refuses v3 deliveries whose signed `meta.deliveredAt` is older than `max_age` (default
    /// [`DEFAULT_MAX_AGE`]) with [`WebhookError::TooOld`], and those more than
    /// [`MAX_CLOCK_SKEW`] in the future with [`WebhookError::FromTheFuture`]. v2.0 deliveries
    /// carry no signed timestamp and are not checked: deduplicate them (see the module docs).
    ///
    /// ```
    /// # let verifier = smartcar::webhooks::WebhookVerifier::new("amt")?;
    /// let verifier = verifier.max_age(std::time::Duration::from_secs(60));
    /// # let _ = verifier;
    /// # Ok::<(), smartcar::Error>(())
    /// ```
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Turns the age check off (every correctly signed delivery is accepted, however old).
    /// Only for replaying stored deliveries on purpose, or behind your own deduplication with
    /// no time bound; a captured delivery can then be replayed forever.
    pub fn without_max_age(mut self) -> Self {
        self.max_age = None;
        self
    }

    /// Reads "now" for the age check from `clock` instead of the system clock (a simulator
    /// with a movable clock, tests).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The configured max age of v3 deliveries (`None`: not checked).
    pub fn age_limit(&self) -> Option<Duration> {
        self.max_age
    }

    /// Rejects bodies larger than `bytes` (default [`DEFAULT_MAX_BODY`]).
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The configured body limit.
    pub fn body_limit(&self) -> usize {
        self.max_body
    }

    /// Checks `signature` (the `SC-Signature` header) against the raw `body` in constant time,
    /// then parses the envelope.
    ///
    /// Verification challenges are signed too and are checked like any delivery: answering an
    /// unsigned challenge would let anyone obtain the HMAC of a body of their choosing, that
    /// is, a valid signature for a forged delivery.
    ///
    /// # Errors
    ///
    /// [`WebhookError`]: missing or wrong signature, body too large, malformed envelope, a v3
    /// delivery outside the max age ([`TooOld`](WebhookError::TooOld),
    /// [`FromTheFuture`](WebhookError::FromTheFuture)).
    pub fn verify(&self, signature: Option<&str>, body: &[u8]) -> Result<Delivery, WebhookError> {
        if body.len() > self.max_body {
            return Err(WebhookError::BodyTooLarge {
                size: body.len(),
                limit: self.max_body,
            });
        }
        let signature = signature
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(WebhookError::MissingSignature)?;
        let expected = hex::decode(signature).map_err(|_| WebhookError::BadSignature)?;
        let mut mac =
            HmacSha256::new_from_slice(self.amt.as_bytes()).expect("HMAC takes any key length");
        mac.update(body);
        // `verify_slice` compares in constant time.
        mac.verify_slice(&expected)
            .map_err(|_| WebhookError::BadSignature)?;
        let delivery = Delivery::parse(body)?;
        if let (Some(max_age), Some(delivered_at)) = (self.max_age, delivery.delivered_at) {
            let now = match &self.clock {
                Some(clock) => clock.now(),
                None => chrono::Utc::now(),
            }
            .timestamp_millis();
            let age_ms = now.saturating_sub(delivered_at);
            let limit = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
            if age_ms > limit(max_age) {
                return Err(WebhookError::TooOld {
                    delivered_at,
                    age_ms,
                    max_age,
                });
            }
            if age_ms < 0 && age_ms.saturating_neg() > limit(MAX_CLOCK_SKEW) {
                return Err(WebhookError::FromTheFuture {
                    delivered_at,
                    ahead_ms: age_ms.saturating_neg(),
                    max_skew: MAX_CLOCK_SKEW,
                });
            }
        }
        Ok(delivery)
    }

    /// The JSON body answering a verification challenge: `{"challenge": hex HMAC(AMT, challenge)}`.
    pub fn challenge_response(&self, challenge: &str) -> Value {
        serde_json::json!({ "challenge": sign(&self.amt, challenge.as_bytes()) })
    }
}

/// A verified delivery: the typed event and its delivery metadata.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The event.
    pub event: WebhookEvent,
    /// `eventId` (v3): constant across retries of the same event — deduplicate on it.
    pub event_id: Option<String>,
    /// `meta.deliveryId` (v3): differs per attempt.
    pub delivery_id: Option<String>,
    /// `meta.deliveredAt` (v3), epoch milliseconds.
    pub delivered_at: Option<i64>,
    /// The webhook id (`meta.webhookId` in v3, `webhookId` in v2).
    pub webhook_id: Option<String>,
    /// The payload version (`4.0`, `2.0`).
    pub version: Option<String>,
    /// `meta.mode` (v3): `LIVE`, `SIMULATED`, or `TEST` for a test delivery about no real
    /// vehicle ([`is_test`](Self::is_test)).
    pub mode: Option<smartcar_api::open_enums::WebhookMode>,
    /// The whole body as JSON, for fields this SDK does not model.
    pub raw: Value,
}

/// A webhook event. Unknown event types are kept, not rejected.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum WebhookEvent {
    /// A verification challenge (v3 `VERIFY` or v2 `verify`): answer with
    /// [`WebhookVerifier::challenge_response`].
    Verify {
        /// The challenge.
        challenge: String,
    },
    /// v3 `VEHICLE_STATE`: signal values.
    VehicleState(Box<types::VehicleStateData>),
    /// v3 `VEHICLE_ERROR`: errors (and their resolution) of a vehicle.
    VehicleError(Box<types::VehicleErrorData>),
    /// Any v2.0 delivery other than `verify` (`eventBased`, `scheduled`, `dynamic`).
    V2(Box<V2Event>),
    /// An event type this SDK does not know yet; the body is in [`Delivery::raw`].
    Unknown {
        /// `eventType` (v3) or `eventName` (v2).
        event_type: String,
    },
}

/// A v2.0 delivery: the envelope and its payload, typed by `eventName`.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct V2Event {
    /// The envelope (`version`, `webhookId`, `eventName`, `mode`, raw `payload`).
    pub envelope: types::V2WebhookEvent,
    /// The payload.
    pub payload: V2Payload,
}

/// The payload of a v2.0 delivery.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum V2Payload {
    /// `eventBased`: a charging event of one vehicle.
    EventBased(types::V2EventBasedPayload),
    /// `scheduled` or `dynamic`: batch-like data items per vehicle.
    VehicleData(types::V2DynamicPayload),
    /// A payload this SDK cannot type (kept as sent in the envelope).
    Other,
}

impl Delivery {
    /// Parses a webhook body (without verifying it: use [`WebhookVerifier::verify`]).
    ///
    /// # Errors
    ///
    /// [`WebhookError::Malformed`] when the body is not JSON or not an envelope.
    pub fn parse(body: &[u8]) -> Result<Delivery, WebhookError> {
        let raw: Value =
            serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
        if raw.get("eventType").is_some() {
            Self::parse_v3(raw)
        } else if raw.get("eventName").is_some() {
            Self::parse_v2(raw)
        } else {
            Err(WebhookError::Malformed(
                "neither `eventType` (v3) nor `eventName` (v2)".to_owned(),
            ))
        }
    }

    fn parse_v3(raw: Value) -> Result<Delivery, WebhookError> {
        let envelope: types::WebhookEvent = serde_json::from_value(raw.clone())
            .map_err(|e| WebhookError::Malformed(e.to_string()))?;
        let data = Value::Object(envelope.data.clone());
        let malformed = |e: serde_json::Error| WebhookError::Malformed(e.to_string());
        use smartcar_api::open_enums::WebhookEventType as T;
        let event = match &envelope.event_type {
            T::Verify => WebhookEvent::Verify {
                challenge: data
                    .get("challenge")
                    .and_then(Value::as_str)
                    .ok_or_else(|| WebhookError::Malformed("VERIFY without data.challenge".into()))?
                    .to_owned(),
            },
            T::VehicleState => WebhookEvent::VehicleState(Box::new(
                serde_json::from_value(data).map_err(malformed)?,
            )),
            T::VehicleError => WebhookEvent::VehicleError(Box::new(
                serde_json::from_value(data).map_err(malformed)?,
            )),
            other => WebhookEvent::Unknown {
                event_type: other.to_string(),
            },
        };
        Ok(Delivery {
            event,
            event_id: Some(envelope.event_id),
            delivery_id: Some(envelope.meta.delivery_id),
            delivered_at: Some(envelope.meta.delivered_at),
            webhook_id: envelope.meta.webhook_id,
            version: envelope.meta.version,
            mode: envelope.meta.mode,
            raw,
        })
    }

    /// Whether this is a test delivery (`meta.mode` `TEST`): acknowledge it, act on nothing.
    ///
    /// ```
    /// let body = br#"{"eventId":"e","eventType":"VEHICLE_STATE","vehicleId":"v","data":{"vehicle":{"id":"v"},"signals":[]},"meta":{"version":"4.0","deliveryId":"d","deliveredAt":1,"mode":"TEST"}}"#;
    /// let delivery = smartcar::webhooks::Delivery::parse(body)?;
    /// assert!(delivery.is_test());
    /// # Ok::<(), smartcar::webhooks::WebhookError>(())
    /// ```
    pub fn is_test(&self) -> bool {
        self.mode == Some(smartcar_api::open_enums::WebhookMode::Test)
    }

    /// Whether this is the first delivery after the vehicle was subscribed (a `VEHICLE_STATE`
    /// whose trigger is `FIRST_DELIVERY`, in the newer `{code}` or the older `{type}` layout):
    /// it carries every subscribed signal, changed or not.
    ///
    /// ```
    /// let body = br#"{"eventId":"e","eventType":"VEHICLE_STATE","vehicleId":"v","data":{"vehicle":{"id":"v"},"triggers":[{"code":"FIRST_DELIVERY"}],"signals":[]},"meta":{"version":"4.0","deliveryId":"d","deliveredAt":1,"mode":"LIVE"}}"#;
    /// assert!(smartcar::webhooks::Delivery::parse(body)?.is_first_delivery());
    /// # Ok::<(), smartcar::webhooks::WebhookError>(())
    /// ```
    pub fn is_first_delivery(&self) -> bool {
        const FIRST: &str = "FIRST_DELIVERY";
        matches!(&self.event, WebhookEvent::VehicleState(state)
        if state.triggers.iter().any(|t| {
            t.code.as_deref() == Some(FIRST) || t.type_.as_deref() == Some(FIRST)
        }))
    }

    /// The newest `oemUpdatedAt` of the delivery's signals: when the manufacturer last updated
    /// the freshest value it carries. Deliveries are not ordered (retries, several attempts in
    /// flight); keep a vehicle's values only when this is newer than what you stored.
    ///
    /// ```
    /// let body = br#"{"eventId":"e","eventType":"VEHICLE_STATE","vehicleId":"v","data":{"vehicle":{"id":"v"},"signals":[
    ///   {"code":"odometer-traveleddistance","body":{"value":1},"meta":{"oemUpdatedAt":1731940328000}},
    ///   {"code":"tractionbattery-stateofcharge","body":{"value":80},"meta":{"oemUpdatedAt":1731940329000}}]},
    ///   "meta":{"version":"4.0","deliveryId":"d","deliveredAt":1731940330000}}"#;
    /// let delivery = smartcar::webhooks::Delivery::parse(body)?;
    /// assert_eq!(delivery.latest_oem_update().map(|t| t.timestamp_millis()), Some(1731940329000));
    /// # Ok::<(), smartcar::webhooks::WebhookError>(())
    /// ```
    pub fn latest_oem_update(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let WebhookEvent::VehicleState(state) = &self.event else {
            return None;
        };
        state
            .signals
            .iter()
            .filter_map(|s| s.meta.as_ref()?.oem_updated_at.as_ref()?.to_datetime())
            .max()
    }

    fn parse_v2(raw: Value) -> Result<Delivery, WebhookError> {
        let envelope: types::V2WebhookEvent = serde_json::from_value(raw.clone())
            .map_err(|e| WebhookError::Malformed(e.to_string()))?;
        use smartcar_api::open_enums::V2WebhookEventName as N;
        let event = match &envelope.event_name {
            N::Verify => WebhookEvent::Verify {
                challenge: envelope
                    .payload
                    .get("challenge")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        WebhookError::Malformed("verify without payload.challenge".into())
                    })?
                    .to_owned(),
            },
            N::Unknown(name) => WebhookEvent::Unknown {
                event_type: name.clone(),
            },
            name => {
                let payload = serde_json::Value::Object(envelope.payload.clone());
                let payload = match name {
                    N::EventBased => serde_json::from_value(payload)
                        .map(V2Payload::EventBased)
                        .map_err(|e| WebhookError::Malformed(e.to_string()))?,
                    N::Scheduled | N::Dynamic => serde_json::from_value(payload)
                        .map(V2Payload::VehicleData)
                        .map_err(|e| WebhookError::Malformed(e.to_string()))?,
                    _ => V2Payload::Other,
                };
                WebhookEvent::V2(Box::new(V2Event {
                    envelope: envelope.clone(),
                    payload,
                }))
            }
        };
        Ok(Delivery {
            event,
            event_id: None,
            delivery_id: None,
            delivered_at: None,
            webhook_id: Some(envelope.webhook_id),
            version: Some(envelope.version),
            // v2.0 envelopes name the vehicles' mode (`live`, `simulated`, `test`) in lower case.
            mode: envelope.mode.as_ref().map(|m| {
                smartcar_api::open_enums::WebhookMode::from(
                    m.as_str().to_ascii_uppercase().as_str(),
                )
            }),
            raw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smartcar_test_vectors() {
        assert_eq!(
            sign("amt", b"challenge"),
            "9baf5a7464bd86740ad5a06e439dcf535a075022ed2c92d74efacf646d79328e"
        );
        assert_eq!(
            sign("amt", br#"{"pizza":"pasta"}"#),
            "4c05a8da471f05156ad717baa4017acd13a3a809850b9ca7d3301dcaaa854f70"
        );
    }

    #[test]
    fn rejects_bad_input_with_typed_errors() {
        let v = WebhookVerifier::new("amt").unwrap().max_body(64);
        let body = br#"{"version":"2.0","webhookId":"w","eventName":"verify","payload":{"challenge":"c"}}"#;
        assert_eq!(v.verify(None, b"{}"), Err(WebhookError::MissingSignature));
        assert_eq!(v.verify(Some("zz"), b"{}"), Err(WebhookError::BadSignature));
        assert_eq!(
            v.verify(Some(&sign("other", b"{}")), b"{}"),
            Err(WebhookError::BadSignature)
        );
        assert!(matches!(
            v.verify(Some(&sign("amt", body)), body),
            Err(WebhookError::BodyTooLarge { .. })
        ));
        let v = WebhookVerifier::new("amt").unwrap();
        let truncated = &body[..body.len() - 5];
        assert!(matches!(
            v.verify(Some(&sign("amt", truncated)), truncated),
            Err(WebhookError::Malformed(_))
        ));
        let d = v.verify(Some(&sign("amt", body)), body).unwrap();
        assert_eq!(
            d.event,
            WebhookEvent::Verify {
                challenge: "c".into()
            }
        );
        assert_eq!(d.webhook_id.as_deref(), Some("w"));
    }

    #[test]
    fn an_empty_or_blank_key_is_refused() {
        for key in ["", " ", "\t\n "] {
            let e = WebhookVerifier::new(key).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
            assert!(
                e.to_string().contains("application management token"),
                "says what to set: {e}"
            );
        }
        // A key with spaces around is still a key (used as given).
        let v = WebhookVerifier::new(" k ").unwrap();
        let body = br#"{"version":"2.0","webhookId":"w","eventName":"verify","payload":{"challenge":"c"}}"#;
        assert!(v.verify(Some(&sign(" k ", body)), body).is_ok());
        // What an empty key would have accepted: a delivery "signed" with the empty key.
        assert_eq!(
            v.verify(Some(&sign("", body)), body),
            Err(WebhookError::BadSignature)
        );
    }

    fn v3_body(delivered_at: i64) -> Vec<u8> {
        format!(
            r#"{{"eventId":"e-1","eventType":"VEHICLE_TELEPORTED","data":{{}},"meta":{{"deliveryId":"d-1","deliveredAt":{delivered_at},"version":"4.0"}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn v3_deliveries_outside_the_max_age_are_refused_after_the_signature() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let now_ms = now.timestamp_millis();
        let v = WebhookVerifier::new("amt").unwrap().clock(move || now);
        assert_eq!(v.age_limit(), Some(DEFAULT_MAX_AGE));
        let check = |v: &WebhookVerifier, at: i64| {
            let body = v3_body(at);
            v.verify(Some(&sign("amt", &body)), &body)
        };
        // Fresh, a little old, a little ahead: accepted.
        assert!(check(&v, now_ms).is_ok());
        assert!(check(&v, now_ms - 299_000).is_ok());
        assert!(check(&v, now_ms + 59_000).is_ok());
        // A replay six minutes later.
        assert_eq!(
            check(&v, now_ms - 360_000),
            Err(WebhookError::TooOld {
                delivered_at: now_ms - 360_000,
                age_ms: 360_000,
                max_age: DEFAULT_MAX_AGE,
            })
        );
        assert!(matches!(
            check(&v, now_ms + 61_000),
            Err(WebhookError::FromTheFuture {
                ahead_ms: 61_000,
                ..
            })
        ));
        // Extremes do not overflow.
        assert!(matches!(
            check(&v, i64::MIN),
            Err(WebhookError::TooOld { .. })
        ));
        assert!(matches!(
            check(&v, i64::MAX),
            Err(WebhookError::FromTheFuture { .. })
        ));
        // The signature comes first: a stale forged body is a bad signature, not "too old".
        let body = v3_body(now_ms - 360_000);
        assert_eq!(
            v.verify(Some(&sign("other", &body)), &body),
            Err(WebhookError::BadSignature)
        );
        // A shorter max age, and none.
        let strict = v.clone().max_age(Duration::from_secs(10));
        assert!(matches!(
            check(&strict, now_ms - 11_000),
            Err(WebhookError::TooOld { .. })
        ));
        let off = v.without_max_age();
        assert_eq!(off.age_limit(), None);
        assert!(check(&off, 0).is_ok());
        // v2 deliveries carry no signed time: not checked.
        let v2 = br#"{"version":"2.0","webhookId":"w","eventName":"verify","payload":{"challenge":"c"}}"#;
        assert!(strict.verify(Some(&sign("amt", v2)), v2).is_ok());
    }

    #[test]
    fn v2_payloads_are_typed() {
        let body = br#"{"version":"2.0","webhookId":"w","eventName":"eventBased","mode":"live","payload":{"eventId":"e","vehicleId":"v","eventType":"CHARGING_STARTED","eventTime":"2022-04-01T12:00:00.000Z"}}"#;
        let d = Delivery::parse(body).unwrap();
        let WebhookEvent::V2(event) = d.event else {
            panic!("not v2")
        };
        let V2Payload::EventBased(p) = &event.payload else {
            panic!("{:?}", event.payload)
        };
        assert_eq!(p.vehicle_id, "v");
        let data = br#"{"version":"2.0","webhookId":"w","eventName":"dynamic","payload":{"vehicles":[{"vehicleId":"v","requestId":"r","data":[{"path":"/odometer","code":200,"body":{"distance":1.5},"headers":{}}]}]}}"#;
        let WebhookEvent::V2(event) = Delivery::parse(data).unwrap().event else {
            panic!("not v2")
        };
        assert!(
            matches!(&event.payload, V2Payload::VehicleData(v) if v.vehicles[0].data[0].code == 200)
        );
        let bad = br#"{"version":"2.0","webhookId":"w","eventName":"eventBased","payload":{"eventId":"e"}}"#;
        assert!(matches!(
            Delivery::parse(bad),
            Err(WebhookError::Malformed(_))
        ));
    }

    #[test]
    fn unknown_event_types_are_kept() {
        let body = br#"{"eventId":"e","eventType":"VEHICLE_TELEPORTED","data":{"x":1},"meta":{"deliveryId":"d","deliveredAt":5}}"#;
        let d = Delivery::parse(body).unwrap();
        assert_eq!(
            d.event,
            WebhookEvent::Unknown {
                event_type: "VEHICLE_TELEPORTED".into()
            }
        );
        assert_eq!(d.raw["data"]["x"], 1);
        assert_eq!(d.delivery_id.as_deref(), Some("d"));
    }

    #[test]
    fn vehicle_state_with_unknown_signal_is_kept() {
        let body = br#"{"eventId":"e","eventType":"VEHICLE_STATE","vehicleId":"v","data":{"user":{"id":"u"},"vehicle":{"id":"v","make":"TESLA","model":"Model 3","year":2020},"triggers":[{"code":"tractionbattery-stateofcharge"}],"signals":[{"code":"tractionbattery-stateofcharge","body":{"unit":"percent","value":78}},{"code":"warpdrive-flux","body":{"value":1.21}}]},"meta":{"version":"4.0","deliveryId":"d","deliveredAt":1,"webhookId":"w","mode":"LIVE"}}"#;
        let d = Delivery::parse(body).unwrap();
        let WebhookEvent::VehicleState(state) = d.event else {
            panic!("not a vehicle state")
        };
        assert_eq!(state.signals.len(), 2);
        assert!(state.signals[1].code.is_unknown());
        assert_eq!(state.user.as_ref().map(|u| u.id.as_str()), Some("u"));
    }
}

/// axum integration (cargo feature `axum`): an extractor that hands handlers verified, typed
/// deliveries, and a ready-made handler that also answers verification challenges.
///
/// ```no_run
/// use axum::{Router, http::StatusCode, routing::post};
/// use smartcar::webhooks::{WebhookEvent, WebhookVerifier, axum::{VerifiedDelivery, handler}};
///
/// // Either let the SDK answer challenges and call you for everything else…
/// // Refuses an empty token: never mount a webhook route without one.
/// let verifier = WebhookVerifier::new(std::env::var("SMARTCAR_MANAGEMENT_TOKEN")?)?;
/// let app: Router = Router::new().route(
///     "/webhooks",
///     handler(verifier.clone(), |delivery| async move {
///         if let WebhookEvent::VehicleState(state) = &delivery.event {
///             println!("{} signals from {}", state.signals.len(), state.vehicle.id);
///         }
///         StatusCode::OK
///     }),
/// );
///
/// // …or take the extractor in your own handler (the state must give a `WebhookVerifier`).
/// async fn receive(delivery: VerifiedDelivery) -> StatusCode {
///     println!("{:?} {:?}", delivery.event_id, delivery.event);
///     StatusCode::NO_CONTENT
/// }
/// let app2: Router = Router::new().route("/webhooks", post(receive)).with_state(verifier);
/// # let _ = (app, app2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "axum")]
pub mod axum {
    use std::future::Future;
    use std::ops::Deref;

    use axum::extract::{FromRef, FromRequest, Request};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::routing::{MethodRouter, post};

    use super::{Delivery, SIGNATURE_HEADER, WebhookError, WebhookEvent, WebhookVerifier};

    /// A delivery whose signature (and, for v3, age) was verified. Rejections answer 401 with
    /// no body for a missing or wrong signature and for a v3 delivery outside the max age
    /// (nothing leaks to a prober), 413 for a body over the limit, 400 for a signed body that
    /// is not an envelope.
    #[derive(Clone, Debug)]
    pub struct VerifiedDelivery(pub Delivery);

    impl Deref for VerifiedDelivery {
        type Target = Delivery;
        fn deref(&self) -> &Delivery {
            &self.0
        }
    }

    /// Why the extractor refused a request.
    #[derive(Debug)]
    pub struct WebhookRejection(pub WebhookError);

    impl IntoResponse for WebhookRejection {
        fn into_response(self) -> Response {
            match self.0 {
                WebhookError::MissingSignature
                | WebhookError::BadSignature
                | WebhookError::TooOld { .. }
                | WebhookError::FromTheFuture { .. } => StatusCode::UNAUTHORIZED.into_response(),
                WebhookError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
                _ => (StatusCode::BAD_REQUEST, "malformed webhook body").into_response(),
            }
        }
    }

    impl<S> FromRequest<S> for VerifiedDelivery
    where
        WebhookVerifier: FromRef<S>,
        S: Send + Sync,
    {
        type Rejection = WebhookRejection;

        async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
            let verifier = WebhookVerifier::from_ref(state);
            let signature = req
                .headers()
                .get(SIGNATURE_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let limit = verifier.body_limit();
            // Read at most limit + 1 bytes: enough to tell "too large" without buffering more.
            let body = axum::body::to_bytes(req.into_body(), limit.saturating_add(1))
                .await
                .map_err(|_| {
                    WebhookRejection(WebhookError::BodyTooLarge {
                        size: limit.saturating_add(1),
                        limit,
                    })
                })?;
            verifier
                .verify(signature.as_deref(), &body)
                .map(VerifiedDelivery)
                .map_err(WebhookRejection)
        }
    }

    /// A `POST` route that verifies every delivery, answers verification challenges itself,
    /// and calls `on_delivery` with every other verified delivery; its response is returned.
    pub fn handler<F, Fut, R, S>(verifier: WebhookVerifier, on_delivery: F) -> MethodRouter<S>
    where
        F: Fn(Delivery) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoResponse + 'static,
        S: Clone + Send + Sync + 'static,
    {
        post(move |req: Request| {
            let verifier = verifier.clone();
            let on_delivery = on_delivery.clone();
            async move {
                let delivery = match VerifiedDelivery::from_request(req, &verifier).await {
                    Ok(d) => d.0,
                    Err(rejection) => return rejection.into_response(),
                };
                if let WebhookEvent::Verify { challenge } = &delivery.event {
                    return axum::Json(verifier.challenge_response(challenge)).into_response();
                }
                on_delivery(delivery).await.into_response()
            }
        })
    }
}
