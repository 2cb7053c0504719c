//! Response bodies of every endpoint type, decoded the way each call decodes them (status,
//! `Meta` headers, body). The first line is `<status> <type>` (the type by name; an unknown
//! name picks one by hash). Properties: never panics; a non-2xx status is an API error with
//! that status; a decode error keeps the status and only a short excerpt of the body; a value
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
use smartcar::api::types;
use smartcar::fuzzing::decode_response_with_token;

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

macro_rules! endpoints {
    ($($name:literal => $ty:ty,)*) => {
        const NAMES: &[&str] = &[$($name),*];
        fn dispatch(name: &str, m: &common::Message<'_>) {
            let name = if NAMES.contains(&name) {
                name
            } else {
                NAMES[name.bytes().map(usize::from).sum::<usize>() % NAMES.len()]
            };
            match name {
                $($name => check::<$ty>(m),)*
                _ => unreachable!(),
            }
        }
    };
}

endpoints! {
    "user" => types::User,
    "vehicles" => types::VehicleList,
    "attributes" => types::VehicleAttributes,
    "vin" => types::Vin,
    "odometer" => types::Odometer,
    "location" => types::Location,
    "fuel" => types::FuelTank,
    "battery" => types::Battery,
    "battery_capacity" => types::BatteryCapacity,
    "nominal_capacity" => types::NominalCapacity,
    "charge" => types::ChargeStatus,
    "charge_limit" => types::ChargeLimit,
    "engine_oil" => types::EngineOil,
    "tire_pressure" => types::TirePressure,
    "security" => types::LockStatus,
    "system_status" => types::DiagnosticSystemStatus,
    "dtcs" => types::DiagnosticTroubleCodes,
    "action" => types::ActionResponse,
    "status" => types::StatusResponse,
    "permissions" => types::Permissions,
    "service_history" => Vec<types::ServiceRecord>,
    "webhook_subscription" => types::WebhookSubscription,
    "batch" => types::BatchResponse,
    "compatibility_v1" => types::CompatibilityV1,
    "compatibility_v2" => types::CompatibilityV2,
    "compatibility_matrix" => types::CompatibilityMatrix,
    "connections" => types::ConnectionList,
    "deleted_connections" => types::DeletedConnections,
    "v3_vehicle" => types::VehicleResponse,
    "v3_vehicle_resource" => types::VehicleResource,
    "v3_signals" => types::SignalsResponse,
    "v3_signal" => types::SignalResource,
    "v3_execution" => types::CommandExecution,
    "v3_executions" => types::CommandExecutionResponse,
    "v3_connection" => types::ConnectionResource,
    "v3_connections" => types::ConnectionListV3,
    "v3_connection_response" => types::ConnectionResponseV3,
    "v3_subscription" => types::SubscriptionResource,
    "v3_subscriptions" => types::SubscriptionList,
    "v3_subscription_response" => types::SubscriptionResponse,
    "v3_subscription_accepted" => types::SubscriptionAccepted,
}

fuzz_target!(|data: &[u8]| {
    let m = common::parse(data, 200);
    dispatch(m.word, &m);
});
