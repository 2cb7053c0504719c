//! Batch answers: the body of `POST /batch` through `BatchResponse` and every typed accessor.
//! Properties: never panics; an item with a non-2xx code is an API error carrying that code
//! (500 when it is not a status) and a request id when the batch had one; a read that was not
//! answered is `InvalidInput`; every other failure is a decode error.

#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use smartcar::v2::BatchResponse;
use smartcar::{Error, ErrorKind};
use smartcar_api::op::Operation;
use smartcar_api::ops;

/// A v2 read's path inside a batch (`/odometer`; `/` for the attributes), from the spec's
/// `x-batch`. One accessor per read the batch builder offers, each named by its operation.
fn item(op: &Operation) -> &'static str {
    op.batch_path.unwrap_or(op.path)
}

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
    check(&b, item(&ops::GET_VEHICLE_ATTRIBUTES), b.attributes());
    check(&b, item(&ops::GET_VIN), b.vin());
    check(&b, item(&ops::GET_ODOMETER), b.odometer());
    check(&b, item(&ops::GET_LOCATION), b.location());
    check(&b, item(&ops::GET_FUEL), b.fuel());
    check(&b, item(&ops::GET_BATTERY), b.battery());
    check(&b, item(&ops::GET_BATTERY_CAPACITY), b.battery_capacity());
    check(&b, item(&ops::GET_NOMINAL_CAPACITY), b.nominal_capacity());
    check(&b, item(&ops::GET_CHARGE_STATUS), b.charge());
    check(&b, item(&ops::GET_CHARGE_LIMIT), b.charge_limit());
    check(&b, item(&ops::GET_ENGINE_OIL), b.engine_oil());
    check(&b, item(&ops::GET_TIRE_PRESSURE), b.tire_pressure());
    check(&b, item(&ops::GET_LOCK_STATUS), b.lock_status());
    check(
        &b,
        item(&ops::GET_DIAGNOSTIC_SYSTEM_STATUS),
        b.diagnostic_system_status(),
    );
    check(
        &b,
        item(&ops::GET_DIAGNOSTIC_TROUBLE_CODES),
        b.diagnostic_trouble_codes(),
    );
});
