//! Response bodies of every operation, decoded the way each call decodes them (status,
//! `Meta` headers, body). The first line is `<status> <operationId>`: the body is decoded as
//! that operation's response type (every operation of `smartcar_api::ops`, through the
//! generated `for_each_endpoint!`); any other word picks an operation or a nested resource by
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
use smartcar_api::op::{Endpoint, Operation};
use smartcar_api::{ops, types};

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

/// Decodes `m` as the response type of the operation whose id is `id`, for every operation of
/// the table (`smartcar_api::for_each_endpoint!`): a new operation needs nothing here.
/// `false` when `id` names no operation with a JSON body.
macro_rules! by_operation {
    ($($marker:ident),*) => {
        fn check_operation(id: &str, m: &common::Message<'_>) -> bool {
            $(
                if id == <ops::$marker as Endpoint>::OP.id {
                    if <ops::$marker as Endpoint>::OP.response.is_none() {
                        return false;
                    }
                    check::<<ops::$marker as Endpoint>::Response>(m);
                    return true;
                }
            )*
            false
        }
    };
}
smartcar_api::for_each_endpoint!(by_operation);

/// The resources the bodies nest, fuzzed on their own (an input whose word is not an
/// operation id picks one of these or an operation by its hash).
macro_rules! nested {
    ($($ty:ty),* $(,)?) => {
        const NESTED: usize = [$(stringify!($ty)),*].len();
        fn check_nested(index: usize, m: &common::Message<'_>) {
            let mut i = 0;
            $(
                if index == i {
                    check::<$ty>(m);
                }
                i += 1;
            )*
            let _ = i;
        }
    };
}

nested! {
    types::VehicleResource,
    types::CommandExecution,
    types::ConnectionResource,
    types::SubscriptionResource,
    types::SignalResource,
}

/// The operation named by the word (`200 get_odometer`); otherwise an operation with a body
/// or a nested resource, picked by the word's hash.
fn dispatch(word: &str, m: &common::Message<'_>) {
    if check_operation(word, m) {
        return;
    }
    let with_body: Vec<&Operation> = ops::ALL.iter().filter(|op| op.response.is_some()).collect();
    let pick = word.bytes().map(usize::from).sum::<usize>() % (with_body.len() + NESTED);
    match with_body.get(pick) {
        Some(op) => assert!(check_operation(op.id, m), "{} has a body", op.id),
        None => check_nested(pick - with_body.len(), m),
    }
}

fuzz_target!(|data: &[u8]| {
    let m = common::parse(data, 200);
    dispatch(m.word, &m);
});
