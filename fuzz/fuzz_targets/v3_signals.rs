//! v3 signals: a `GET /v3/vehicles/{id}/signals` body decoded and turned into `Signal`s.
//! Properties: never panics; `number`/`flag`/`text`/`unit` agree with the body sent;
//! `is_success` agrees with the status; timestamps are kept when representable.

#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use smartcar::api::types;
use smartcar::fuzzing::{decode_response, signal};

fuzz_target!(|data: &[u8]| {
    let m = common::parse(data, 200);
    let resources: Vec<types::SignalResource> = if m.word == "one" {
        match decode_response::<types::SignalResource>("GET /signal", 200, &m.headers, m.body) {
            Ok(r) => vec![r.data],
            Err(_) => return,
        }
    } else {
        match decode_response::<types::SignalsResponse>("GET /signals", 200, &m.headers, m.body) {
            Ok(r) => r.data.data,
            Err(_) => return,
        }
    };
    for resource in resources {
        let body = resource.attributes.body.clone();
        let retrieved = resource
            .meta
            .as_ref()
            .and_then(|m| m.retrieved_at.as_ref())
            .and_then(types::Timestamp::to_datetime);
        let s = signal(resource);
        let value = body.get("value");
        assert_eq!(s.number(), value.and_then(|v| v.as_f64()));
        assert_eq!(s.flag(), value.and_then(|v| v.as_bool()));
        assert_eq!(s.text(), value.and_then(|v| v.as_str()));
        assert_eq!(s.unit(), body.get("unit").and_then(|v| v.as_str()));
        assert_eq!(
            s.is_success(),
            s.status == smartcar::api::open_enums::SignalStatusValue::Success
        );
        // Epoch milliseconds or ISO-8601 text: the same instant either way, or none.
        assert_eq!(s.retrieved_at, retrieved);
        let _ = format!("{s:?}");
    }
});
