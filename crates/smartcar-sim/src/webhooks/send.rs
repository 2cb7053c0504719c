//! Sending a delivery: sign the exact bytes, POST them, judge the answer, retry on failure with
//! the simulator's schedule, log the outcome.

use std::time::Duration;

use axum::http::header::{CONTENT_TYPE, USER_AGENT};

use crate::model::{DeliveryAttempt, DeliveryOutcome, V3State, WebhookVersion};
use crate::state::{AppState, random_id};

/// The `User-Agent` of deliveries (`Smartcar/{version}`; the version is the simulator's).
pub(crate) const DELIVERY_USER_AGENT: &str = concat!("Smartcar/", env!("CARGO_PKG_VERSION"));

/// Where and how a delivery goes. Holds the application management token: no `Debug`.
pub(crate) struct Target {
    /// Webhook id.
    pub id: String,
    /// Webhook name.
    pub name: String,
    /// Callback URL.
    pub url: String,
    /// Envelope version.
    pub version: WebhookVersion,
    /// The signing key (application management token).
    pub amt: String,
}

/// What a receiver answered to one attempt.
pub(crate) struct Answer {
    /// HTTP status, when it answered.
    pub status: Option<u16>,
    /// `Content-Type` of the answer.
    pub content_type: Option<String>,
    /// The answer's body.
    pub body: Vec<u8>,
}

/// Success for a data delivery: any 2xx.
pub(crate) fn accept_2xx(answer: &Answer) -> Result<(), String> {
    match answer.status {
        Some(s) if (200..300).contains(&s) => Ok(()),
        Some(s) => Err(format!("the receiver answered {s}")),
        None => Err("no answer".to_owned()),
    }
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    signature: &str,
) -> Result<Answer, String> {
    let response = client
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .header("SC-Signature", signature)
        .header(USER_AGENT, DELIVERY_USER_AGENT)
        .body(body)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.bytes().await.map_err(|e| describe(&e))?.to_vec();
    Ok(Answer {
        status: Some(status),
        content_type,
        body,
    })
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        format!("transport error: {e}")
    }
}

/// One event to send (all its attempts share `event_id`).
pub(crate) struct Event<'a> {
    /// `VERIFY`, `VEHICLE_STATE`, … (for the log).
    pub event_type: &'a str,
    /// The event id, if the envelope has one.
    pub event_id: Option<String>,
    /// The vehicles it is about.
    pub vehicle_ids: Vec<String>,
    /// Retry failed attempts with the simulator's schedule (not for verification challenges).
    pub retry: bool,
}

/// Sends `event` to `target`: `body_for(delivery_id, delivered_at_ms)` builds the exact bytes
/// of each attempt (v3: a new `deliveryId` per attempt; v2 envelopes get `None`), which are
/// signed and POSTed; `accept` judges the answer. Logs and returns the outcome.
pub(crate) async fn send(
    state: &AppState,
    target: &Target,
    event: Event<'_>,
    mut body_for: impl FnMut(Option<&str>, i64) -> Vec<u8>,
    accept: impl Fn(&Answer) -> Result<(), String>,
) -> DeliveryOutcome {
    let (delays, timeout) = {
        let world = state.world();
        (world.v3.retry_delays.clone(), world.v3.delivery_timeout)
    };
    let delays: &[Duration] = if event.retry { &delays } else { &[] };
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .build();
    let mut attempts = Vec::with_capacity(delays.len() + 1);
    let mut delivered = false;
    for attempt in 0..=delays.len() {
        if attempt > 0 {
            tokio::time::sleep(delays[attempt - 1]).await;
        }
        let delivery_id = (target.version == WebhookVersion::V3).then(random_id);
        let sent_at = state.now();
        let body = body_for(delivery_id.as_deref(), sent_at.timestamp_millis());
        let signature = super::signature(&target.amt, &body);
        let text = String::from_utf8_lossy(&body).into_owned();
        let result = match &client {
            Ok(client) => post(client, &target.url, body, &signature).await,
            Err(e) => Err(format!("no HTTP client: {e}")),
        };
        let (status, error) = match result {
            Ok(answer) => (answer.status, accept(&answer).err()),
            Err(e) => (None, Some(e)),
        };
        let ok = error.is_none();
        attempts.push(DeliveryAttempt {
            delivery_id,
            sent_at,
            body: text,
            signature,
            status,
            error,
        });
        if ok {
            delivered = true;
            break;
        }
    }
    let outcome = DeliveryOutcome {
        webhook_id: target.id.clone(),
        event_type: event.event_type.to_owned(),
        event_id: event.event_id,
        vehicle_ids: event.vehicle_ids,
        delivered,
        attempts,
    };
    {
        let mut world = state.world();
        let log = &mut world.v3.deliveries;
        log.push_back(outcome.clone());
        while log.len() > V3State::MAX_DELIVERIES {
            log.pop_front();
        }
    }
    outcome
}
