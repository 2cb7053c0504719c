//! Envelopes of deliveries, built from the generated types (`types::WebhookEvent`,
//! `types::VehicleStateData`, `types::V2WebhookEvent`, …) and serialised once per attempt.
//!
//! Layout choices (the platform published two; we send the newer one of the event reference
//! pages): `data.triggers: [{code, name, group}]` (`[{code: "FIRST_DELIVERY"}]` after a
//! subscription), signals `{code, name, group, body, meta: {oemUpdatedAt, fetchedAt}}` with no
//! `status` when the value was read; a signal that could not be read has no body and
//! `status: {value: ERROR, error: {type, code, …}}` (`PERMISSION` when the connection lacks its
//! permission, `COMPATIBILITY`/`VEHICLE_NOT_CAPABLE` when the vehicle cannot provide it).
//! `meta.version` is `4.0`, `meta.mode` `LIVE` or `SIMULATED`, the vehicle's make upper case.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use smartcar_api::open_enums::{
    ChargeEventType, ErrorType, ResolutionType, SignalCode, V2WebhookEventName, VehicleErrorState,
    VehicleMode, WebhookEventType,
};
use smartcar_api::types;

use super::send::Target;
use crate::model::Vehicle;
use crate::v3::signals::{self, Reading};

fn object<T: serde::Serialize>(value: &T) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// The vehicle as webhook payloads show it.
pub(crate) fn webhook_vehicle(v: &Vehicle) -> types::WebhookVehicle {
    types::WebhookVehicle {
        id: v.id.clone(),
        make: Some(v.make.to_ascii_uppercase()),
        model: Some(v.model.clone()),
        year: Some(v.year.into()),
        vin: None,
    }
}

/// `LIVE` / `SIMULATED`.
pub(crate) fn meta_mode(v: &Vehicle) -> String {
    v.mode.to_ascii_uppercase()
}

/// `data` of a `VEHICLE_STATE` event: the webhook's `codes` read from `v` with the
/// connection's permissions, fired by `triggers` (signal codes; none: `FIRST_DELIVERY`).
pub(crate) fn vehicle_state_data(
    v: &Vehicle,
    user_id: &str,
    scopes: &BTreeSet<String>,
    codes: &[String],
    triggers: &[&str],
    now_ms: i64,
) -> (Map<String, Value>, i32) {
    let signals: Vec<types::WebhookSignal> = codes
        .iter()
        .map(|code| {
            let def = signals::def(code);
            let reading = match def {
                Some(def) => Reading::of(v, def, |p| scopes.contains(p)),
                None => Reading::NotCapable,
            };
            let ok = matches!(reading, Reading::Value(_));
            let (status, body) = reading.status_body();
            types::WebhookSignal {
                code: SignalCode::from(code.as_str()),
                name: def.map(|d| d.name.to_owned()),
                group: def.map(|d| d.group.to_owned()),
                body,
                status: (!ok).then_some(status),
                meta: Some(types::WebhookSignalMeta {
                    oem_updated_at: ok.then(|| v.data_age.timestamp_millis().into()),
                    fetched_at: Some(now_ms.into()),
                    retrieved_at: None,
                }),
            }
        })
        .collect();
    let triggers = if triggers.is_empty() {
        vec![types::WebhookTrigger {
            code: Some("FIRST_DELIVERY".to_owned()),
            name: None,
            group: None,
            type_: None,
            signal: None,
        }]
    } else {
        triggers
            .iter()
            .map(|code| {
                let def = signals::def(code);
                types::WebhookTrigger {
                    code: Some((*code).to_owned()),
                    name: def.map(|d| d.name.to_owned()),
                    group: def.map(|d| d.group.to_owned()),
                    type_: None,
                    signal: None,
                }
            })
            .collect()
    };
    let count = i32::try_from(signals.len()).unwrap_or(i32::MAX);
    let data = types::VehicleStateData {
        user: Some(types::WebhookUser {
            id: user_id.to_owned(),
        }),
        vehicle: webhook_vehicle(v),
        triggers,
        signals,
    };
    (object(&data), count)
}

/// `data` of a `VEHICLE_ERROR` event (`None`: `kind`/`code` is not in the error catalogue).
pub(crate) fn vehicle_error_data(
    v: &Vehicle,
    user_id: &str,
    kind: &str,
    code: Option<&str>,
    resolved: bool,
    signal_codes: &[&str],
) -> Option<Map<String, Value>> {
    let spec = crate::error::lookup(kind, code)?;
    let item = types::VehicleErrorItem {
        type_: ErrorType::from(kind),
        code: code.map(str::to_owned),
        state: Some(if resolved {
            VehicleErrorState::Resolved
        } else {
            VehicleErrorState::Error
        }),
        description: Some(spec.description.to_owned()),
        suggested_user_message: spec.user_message.map(str::to_owned),
        doc_url: Some(format!(
            "https://smartcar.com/docs/errors/api-errors/{}",
            spec.doc
        )),
        resolution: spec.resolution.map(|r| {
            types::ResolutionDetails {
                type_: Some(ResolutionType::from(r)),
                url: None,
            }
            .into()
        }),
        signals: signal_codes
            .iter()
            .map(|code| {
                let def = signals::def(code);
                types::SignalRef {
                    code: (*code).to_owned(),
                    name: def.map(|d| d.name.to_owned()),
                    group: def.map(|d| d.group.to_owned()),
                }
            })
            .collect(),
    };
    Some(object(&types::VehicleErrorData {
        user: Some(types::WebhookUser {
            id: user_id.to_owned(),
        }),
        vehicle: webhook_vehicle(v),
        errors: vec![item],
    }))
}

/// What a v3 envelope carries besides `data`.
pub(crate) struct V3Envelope<'a> {
    /// Same in every attempt.
    pub event_id: &'a str,
    /// `VERIFY`, `VEHICLE_STATE`, `VEHICLE_ERROR`.
    pub event_type: WebhookEventType,
    /// Top-level `vehicleId` (not on `VERIFY`).
    pub vehicle_id: Option<&'a str>,
    /// `meta.signalCount` (`VEHICLE_STATE` only).
    pub signal_count: Option<i32>,
    /// `meta.mode` (not on `VERIFY`).
    pub mode: Option<String>,
}

/// The bytes of one attempt of a v3 delivery.
pub(crate) fn v3_body(
    target: &Target,
    envelope: &V3Envelope<'_>,
    data: &Map<String, Value>,
    delivery_id: Option<&str>,
    delivered_at: i64,
) -> Vec<u8> {
    let event = types::WebhookEvent {
        event_id: envelope.event_id.to_owned(),
        event_type: envelope.event_type.clone(),
        vehicle_id: envelope.vehicle_id.map(str::to_owned),
        data: data.clone(),
        meta: types::WebhookMeta {
            version: Some("4.0".to_owned()),
            webhook_id: Some(target.id.clone()),
            webhook_name: Some(target.name.clone()),
            delivery_id: delivery_id.unwrap_or_default().to_owned(),
            delivered_at,
            signal_count: envelope.signal_count,
            mode: envelope
                .mode
                .as_deref()
                .map(smartcar_api::open_enums::WebhookMode::from),
        },
    };
    serde_json::to_vec(&event).unwrap_or_default()
}

/// The bytes of a v2.0 delivery.
pub(crate) fn v2_body(
    target: &Target,
    event_name: V2WebhookEventName,
    mode: Option<&str>,
    payload: Map<String, Value>,
) -> Vec<u8> {
    let event = types::V2WebhookEvent {
        version: "2.0".to_owned(),
        webhook_id: target.id.clone(),
        event_name,
        mode: mode.map(VehicleMode::from),
        payload,
    };
    serde_json::to_vec(&event).unwrap_or_default()
}

/// `data` of a v3 `VERIFY` event.
pub(crate) fn verify_data(challenge: &str) -> Map<String, Value> {
    object(&types::WebhookVerifyData {
        challenge: challenge.to_owned(),
    })
}

/// `payload` of a v2 `verify` event.
pub(crate) fn v2_verify_payload(challenge: &str) -> Map<String, Value> {
    object(&types::V2VerifyPayload {
        challenge: challenge.to_owned(),
    })
}

/// `payload` of a v2 `eventBased` event.
pub(crate) fn v2_event_based_payload(
    event_id: &str,
    vehicle_id: &str,
    event_type: ChargeEventType,
    at: chrono::DateTime<chrono::Utc>,
) -> Map<String, Value> {
    object(&types::V2EventBasedPayload {
        event_id: event_id.to_owned(),
        vehicle_id: vehicle_id.to_owned(),
        event_type,
        event_time: Some(at),
    })
}

/// `payload` of a v2 `dynamic` / `scheduled` event.
pub(crate) fn v2_data_payload(vehicles: Vec<types::V2WebhookVehicleData>) -> Map<String, Value> {
    object(&types::V2DynamicPayload { vehicles })
}
