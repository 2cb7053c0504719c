//! Error bodies: `ApiError::from_response` on any status, headers and body (v2, v1, v3,
//! HTML, empty, garbage). Properties: never panics; the status and `sc-request-id` header are
//! kept (unless the body names its own request id); the shape is V3 exactly when the body is
//! a JSON object with an `errors` array; the description is never empty and an unrecognised
//! body appears only as a short single-line excerpt; `retry-after` never panics.

#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use smartcar::error::{ApiError, BodyShape};

fuzz_target!(|data: &[u8]| {
    let m = common::parse(data, 500);
    let e = ApiError::from_response(m.status, &m.headers, m.body);
    assert_eq!(e.status, m.status);
    let json: Option<serde_json::Value> = serde_json::from_slice(m.body).ok();
    let has_errors = json
        .as_ref()
        .and_then(|j| j.as_object())
        .is_some_and(|o| o.get("errors").is_some_and(|e| e.is_array()));
    assert_eq!(e.shape == BodyShape::V3, has_errors);
    assert!(!e.description.is_empty());
    if e.shape == BodyShape::Unrecognized && !m.body.is_empty() {
        let excerpt = smartcar::fuzzing::excerpt(m.body);
        assert!(e.description.ends_with(&excerpt));
        assert!(excerpt.chars().count() <= 201, "excerpt too long");
        assert!(!excerpt.contains('\n'));
    }
    let header_id = m.headers.get("sc-request-id").and_then(|v| v.to_str().ok());
    if let Some(id) = header_id {
        assert!(e.request_id.is_some(), "request id {id} lost");
    }
    let text = e.to_string();
    assert!(text.contains(&format!("HTTP {}", m.status)));
    if matches!(m.status, 429 | 500 | 502 | 503 | 504) {
        assert!(e.is_retryable());
    }
    let _ = format!("{e:?}");
    if let Ok(v) = std::str::from_utf8(m.body) {
        let _ = smartcar::fuzzing::retry_after(v);
    }
});
