//! Response bodies of every operation, decoded the way each call decodes them (status,
//! `Meta` headers, body). The first line is `<status> <operationId>`: the body is decoded as
//! that operation's response type (from `smartcar_api::ops`); any other word picks a type by
//! hash. Properties: never panics; a non-2xx status
//! is an API error with that status; a decode error keeps the status and only a short excerpt
//! of the body; a value
//! that decodes serialises to JSON that decodes again to the same value; the call's own
//! bearer token never appears in an API error, whatever the body echoes (as sent,
//! URL-encoded or JSON-escaped: the seeds' `bearer` bodies quote it).

#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use smartcar::ErrorKind;
use smartcar::fuzzing::decode_response_with_token;
use smartcar_api::op::Operation;
use smartcar_api::types;

/// The bearer token the fuzzed call "sent"; error bodies may echo it.
const TOKEN: &str = "bearer/TOKEN+3c9f1e7a5d";

fn check<T: DeserializeOwned + Serialize>(m: &common::Message<'_>) {
    match decode_response_with_token::<T>("GET /fuzz", TOKEN, m.status, &m.headers, m.body) {
        Ok(r) => {
            assert!((200..300).contains(&m.status));
            let once = serde_json::to_string(&r.data).expect("serialises");
            let again: T = serde_json::from_str(&once)
                .unwrap_or_else(|e| panic!("re-decoding {once} failed: {e}"));
            // Compared as JSON values: maps (headers) have no order.
            let (a, b) = (serde_json::to_value(&r.data), serde_json::to_value(&again));
            assert_eq!(a.expect("to value"), b.expect("to value"), "{once}");
            if r.meta.data_age.is_some() {
                assert!(m.headers.contains_key("sc-data-age"));
            }
        }
        Err(e) if !(200..300).contains(&m.status) => {
            assert_eq!(e.kind(), ErrorKind::Api);
            assert_eq!(e.status(), Some(m.status));
            let shown = format!("{e} {e:?}");
            for form in [
                TOKEN,
                "bearer%2FTOKEN%2B3c9f1e7a5d",
                "bearer%2fTOKEN%2b3c9f1e7a5d",
            ] {
                assert!(!shown.contains(form), "the bearer token leaked: {shown}");
            }
        }
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Decode);
            assert_eq!(e.status(), Some(m.status));
            let smartcar::Error::Decode(d) = &e else {
                unreachable!()
            };
            assert!(d.body_excerpt.chars().count() <= 201);
            let _ = (e.to_string(), format!("{e:?}"));
        }
    }
}

/// Whether two pieces of Rust type text are the same once whitespace is ignored
/// (`stringify!` may space out `Vec<types::X>`).
fn same_type(a: &str, b: &str) -> bool {
    a.chars()
        .filter(|c| !c.is_whitespace())
        .eq(b.chars().filter(|c| !c.is_whitespace()))
}

/// Every success-body type of the operation table (`Operation::response`, e.g.
/// `types::Odometer`) and the resources those bodies nest. The first line's word is an
/// `operationId` (`200 get_odometer`): the body is decoded as that operation's response type,
/// so a new operation needs nothing here unless its body is a new type.
/// `tests/tests/fuzz_corpus.rs` checks that every response type of `ops::ALL` (the token
/// grants aside: `token_response` fuzzes those) is listed, and that every operation with a
/// body has a seed `corpus/responses/seed-<operationId>`.
macro_rules! bodies {
    ($($ty:ty),* $(,)?) => {
        const TYPES: &[&str] = &[$(stringify!($ty)),*];
        /// Decodes `m` as the type written `text`; `false` when it is not listed.
        fn check_type(text: &str, m: &common::Message<'_>) -> bool {
            $(
                if same_type(text, stringify!($ty)) {
                    check::<$ty>(m);
                    return true;
                }
            )*
            false
        }
    };
}

bodies! {
    types::CompatibilityV1,
    types::CompatibilityV2,
    types::CompatibilityMatrix,
    types::ConnectionList,
    types::DeletedConnections,
    types::User,
    types::VehicleList,
    types::VehicleAttributes,
    types::StatusResponse,
    types::BatchResponse,
    types::Battery,
    types::BatteryCapacity,
    types::NominalCapacity,
    types::ChargeStatus,
    types::ActionResponse,
    types::ChargeLimit,
    types::DiagnosticTroubleCodes,
    types::DiagnosticSystemStatus,
    types::EngineOil,
    types::FuelTank,
    types::Location,
    types::Odometer,
    types::Permissions,
    types::LockStatus,
    Vec<types::ServiceRecord>,
    types::TirePressure,
    types::Vin,
    types::WebhookSubscription,
    types::ConnectionListV3,
    types::ConnectionResponseV3,
    types::SubscriptionList,
    types::SubscriptionAccepted,
    types::SubscriptionResponse,
    types::VehicleResponse,
    types::CommandExecutionResponse,
    types::SignalsResponse,
    types::SignalResource,
    // Nested resources.
    types::VehicleResource,
    types::CommandExecution,
    types::ConnectionResource,
    types::SubscriptionResource,
}

/// The operation's response type when the word is an `operationId` with a listed body type;
/// otherwise a listed type picked by the word's hash.
fn dispatch(word: &str, m: &common::Message<'_>) {
    let by_operation = Operation::by_id(word)
        .and_then(|op| op.response)
        .is_some_and(|text| check_type(text, m));
    if !by_operation {
        let picked = TYPES[word.bytes().map(usize::from).sum::<usize>() % TYPES.len()];
        assert!(check_type(picked, m), "{picked} is listed");
    }
}

fuzz_target!(|data: &[u8]| {
    let m = common::parse(data, 200);
    dispatch(m.word, &m);
});
