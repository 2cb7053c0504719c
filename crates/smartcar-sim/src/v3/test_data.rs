//! Smartcar's v3 test-data vehicle: `tst2e255-d3c8-4f90-9fec-e6e68b98e9cb`, read with the static
//! bearer token `test-data-token` (no `sc-user-id`, no Connect). The official SDKs' live
//! end-to-end suites read it on the real platform: python-sdk (`tests/conftest.py` `v3_vehicle`:
//! `GET /v3/vehicles/{id}`, `…/signals`, `…/signals/odometer-traveleddistance`) and node-sdk
//! (`test/end-to-end`: `getVehicle` answers its id, the first signal of the list and the
//! odometer signal are `SUCCESS`). Every simulated world holds it ([`seed`]).
//!
//! Simulator choices (unverified: the platform documents nothing about this vehicle):
//! - The token is a user access token of a test-data user that no seeded user is, reaching
//!   only this vehicle, with every permission, valid for a century of simulated time. It works
//!   wherever a user access token does (the v2.0 API too).
//! - The vehicle is a battery-electric Tesla Model 3 in `test` mode, odometer 115 071.5 km (the
//!   java-sdk's `SignalsV3.json` fixture of this vehicle id reads 115071.50046584333 km and
//!   lists charge timers, which the simulator gives Teslas); everything else is drawn from a
//!   generator of its own seed, so the seeded fleet's stream is untouched.
//! - It belongs to no user and has no connection: Connect never offers it, the management and
//!   v3 connection lists never show it, and `Simulator::vehicles` leaves it out.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use smartcar_api::open_enums::Permission;

use crate::fleet::{Rng, make_vehicle};
use crate::model::{AccessToken, Grant, Vehicle, World};

/// The test-data vehicle's id (python-sdk `E2E_SMARTCAR_V3_TEST_VEHICLE_ID`'s default).
pub(crate) const VEHICLE_ID: &str = "tst2e255-d3c8-4f90-9fec-e6e68b98e9cb";

/// Its static access token (python-sdk `E2E_SMARTCAR_V3_TEST_ACCESS_TOKEN`'s default).
pub(crate) const TOKEN: &str = "test-data-token";

/// The seed of the test-data vehicle's own generator (any fixed value: not the fleet's).
const SEED: u64 = 0x7e57_da7a;

/// Whether `id` is the test-data vehicle.
pub(crate) fn is_test_data_vehicle(id: &str) -> bool {
    id == VEHICLE_ID
}

/// The test-data vehicle, as of `now`.
fn vehicle(now: DateTime<Utc>) -> Vehicle {
    let mut rng = Rng::new(SEED);
    let mut v = make_vehicle(&mut rng, now);
    for _ in 0..10_000 {
        if v.make == "TESLA" && v.model == "Model 3" {
            break;
        }
        v = make_vehicle(&mut rng, now);
    }
    v.id = VEHICLE_ID.to_owned();
    v.mode = "test";
    v.odometer_km = 115_071.5;
    v.in_motion = false;
    v.forced_error = None;
    v
}

/// Adds the test-data vehicle and its token to `world` (after the application's settings, so
/// that the token belongs to the application the simulator plays). Nothing else changes: no
/// user, connection or fleet draw.
pub(crate) fn seed(world: &mut World, now: DateTime<Utc>) {
    let vehicle = vehicle(now);
    let user_id = Rng::new(SEED ^ 1).uuid();
    let scopes: BTreeSet<String> = Permission::KNOWN.iter().map(|p| (*p).to_owned()).collect();
    world.access_tokens.insert(
        TOKEN.to_owned(),
        AccessToken {
            grant: Grant {
                client_id: world.app.client_id.clone(),
                user_id,
                vehicle_ids: vec![vehicle.id.clone()],
                scopes,
                // No authorization code started it: family 0 is never issued (families count
                // from 1), so no revocation of an issued family reaches it.
                family: 0,
            },
            expires_at: now + Duration::days(36_525),
        },
    );
    world.vehicles.insert(vehicle.id.clone(), vehicle);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_vehicle_every_time() {
        let now = crate::fleet::default_epoch();
        let a = vehicle(now);
        assert_eq!(a, vehicle(now));
        assert_eq!((a.make.as_str(), a.model.as_str()), ("TESLA", "Model 3"));
        assert!(a.battery.is_some() && a.fuel.is_none());
        assert!(crate::fleet::vin_is_valid(&a.vin), "{}", a.vin);
        assert!(is_test_data_vehicle(&a.id));
    }
}
