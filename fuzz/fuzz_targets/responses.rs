//! Response bodies of every operation, decoded the way each call decodes them (status,
//! `Meta` headers, body). The first line is `<status> <operationId>` (or the name of a nested
//! resource; an unknown word picks one by hash). Properties: never panics; a non-2xx status
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
use smartcar_api::op::Endpoint;
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

/// The words the first line may name: every operation with a JSON success body, by its
/// `operationId` (`200 get_odometer`), decoded as that operation's generated response type;
/// then the resources those bodies nest, by name. `tests/tests/fuzz_corpus.rs` checks that every
/// such operation of `ops::ALL` is listed here (except the token grants: `token_response`
/// fuzzes those) and has a seed `corpus/responses/seed-<operationId>`.
macro_rules! endpoints {
    (ops: [$($op:ident),* $(,)?], nested: [$($name:literal => $ty:ty),* $(,)?] $(,)?) => {
        const NAMES: &[&str] = &[$(<ops::$op as Endpoint>::OP.id,)* $($name,)*];
        fn dispatch(name: &str, m: &common::Message<'_>) {
            let name = if NAMES.contains(&name) {
                name
            } else {
                NAMES[name.bytes().map(usize::from).sum::<usize>() % NAMES.len()]
            };
            $(
                if name == <ops::$op as Endpoint>::OP.id {
                    return check::<<ops::$op as Endpoint>::Response>(m);
                }
            )*
            match name {
                $($name => check::<$ty>(m),)*
                _ => unreachable!("{name} is in NAMES"),
            }
        }
    };
}

endpoints! {
    ops: [
        GetCompatibilityV1,
        GetCompatibility,
        GetCompatibilityMatrix,
        ListConnections,
        DeleteConnections,
        GetUser,
        ListVehicles,
        GetVehicleAttributes,
        Disconnect,
        Batch,
        GetBattery,
        GetBatteryCapacity,
        GetNominalCapacity,
        GetChargeStatus,
        ControlCharge,
        GetChargeLimit,
        SetChargeLimit,
        GetDiagnosticTroubleCodes,
        GetDiagnosticSystemStatus,
        GetEngineOil,
        GetFuel,
        GetLocation,
        SendDestination,
        GetOdometer,
        GetPermissions,
        GetLockStatus,
        ControlSecurity,
        GetServiceHistory,
        GetTirePressure,
        GetVin,
        SubscribeWebhook,
        UnsubscribeWebhook,
        ListConnectionsV3,
        GetConnectionV3,
        ListSubscriptions,
        CreateSubscription,
        GetSubscription,
        GetVehicleV3,
        SetChargeLimitV3,
        StartChargeV3,
        StopChargeV3,
        SetDestinationV3,
        LockV3,
        UnlockV3,
        GetCommandExecution,
        ListSignals,
        GetSignal,
    ],
    nested: [
        "v3_vehicle_resource" => types::VehicleResource,
        "v3_execution" => types::CommandExecution,
        "v3_connection" => types::ConnectionResource,
        "v3_subscription" => types::SubscriptionResource,
    ],
}

fuzz_target!(|data: &[u8]| {
    let m = common::parse(data, 200);
    dispatch(m.word, &m);
});
