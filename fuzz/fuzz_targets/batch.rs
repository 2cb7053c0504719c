//! Batch answers: the body of `POST /batch` through `BatchResponse` and every typed accessor.
//! Properties: never panics; an item with a non-2xx code is an API error carrying that code
//! (500 when it is not a status) and a request id when the batch had one; a read that was not
//! answered is `InvalidInput`; every other failure is a decode error.

#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use smartcar::{BatchResponse, Error, ErrorKind};

fn check<T: std::fmt::Debug>(
    b: &BatchResponse,
    path: &str,
    r: Result<smartcar::Response<T>, Error>,
) {
    let item = b
        .items()
        .iter()
        .find(|i| i.path == path || i.path.trim_end_matches('/') == path.trim_end_matches('/'));
    match (&r, item) {
        (Err(e), None) => assert_eq!(e.kind(), ErrorKind::InvalidInput),
        (_, None) => panic!("{path} answered without an item"),
        (Ok(ok), Some(i)) => {
            assert!((200..300).contains(&i.code));
            if b.meta.request_id.is_some() {
                assert!(ok.meta.request_id.is_some());
            }
        }
        (Err(e), Some(i)) if !(200..300).contains(&i.code) => {
            assert_eq!(e.kind(), ErrorKind::Api);
            let expected = u16::try_from(i.code).unwrap_or(500);
            assert_eq!(e.status(), Some(expected));
            if b.meta.request_id.is_some() {
                assert!(e.request_id().is_some());
            }
        }
        (Err(e), Some(_)) => assert_eq!(e.kind(), ErrorKind::Decode),
    }
    if let Err(e) = &r {
        let _ = (e.to_string(), format!("{e:?}"));
    }
}

fuzz_target!(|data: &[u8]| {
    let m = common::parse(data, 200);
    let Ok(b) = smartcar::fuzzing::batch_response(&m.headers, m.body) else {
        return;
    };
    check(&b, "/", b.attributes());
    check(&b, "/vin", b.vin());
    check(&b, "/odometer", b.odometer());
    check(&b, "/location", b.location());
    check(&b, "/fuel", b.fuel());
    check(&b, "/battery", b.battery());
    check(&b, "/battery/capacity", b.battery_capacity());
    check(&b, "/battery/nominal_capacity", b.nominal_capacity());
    check(&b, "/charge", b.charge());
    check(&b, "/charge/limit", b.charge_limit());
    check(&b, "/engine/oil", b.engine_oil());
    check(&b, "/tires/pressure", b.tire_pressure());
    check(&b, "/security", b.lock_status());
    check(
        &b,
        "/diagnostics/system_status",
        b.diagnostic_system_status(),
    );
    check(&b, "/diagnostics/dtcs", b.diagnostic_trouble_codes());
});
