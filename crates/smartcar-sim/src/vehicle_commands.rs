//! What a command does to the simulated vehicle: ONE set of rules, applied by the v2.0 command
//! endpoints (`v2/commands.rs`) and the v3 ones (`v3/commands.rs`) alike, so that the two APIs
//! can never disagree about how the car answers.
//!
//! | Command | Effect | Refusals, checked in this order |
//! |---|---|---|
//! | lock, unlock | locks / unlocks the doors | 409 `VEHICLE_STATE`/`IN_MOTION` while moving; lock only: 409 `VEHICLE_STATE`/`DOOR_OPEN` with a door open |
//! | start charging | charging | 501 `COMPATIBILITY`/`VEHICLE_NOT_CAPABLE` without a traction battery that plugs in; 409 `VEHICLE_STATE`/`CHARGING_PLUG_NOT_CONNECTED` unplugged; 409 `VEHICLE_STATE`/`FULLY_CHARGED` when not charging and at or above the charge limit |
//! | stop charging | not charging | 501 without a plug-in battery; 409 `CHARGING_PLUG_NOT_CONNECTED` unplugged |
//! | set the charge limit (fraction 0.5–1) | sets it; charging stops when the new limit is already reached | 501 without a plug-in battery |
//! | set the destination | sets it | — |
//!
//! START while charging and STOP while not charging succeed (idempotent). A refused command
//! changes nothing; an accepted one also sets the vehicle's data age to now (it reported its
//! new state), which shows in v2 `sc-data-age` and v3 `oemUpdatedAt`.
//!
//! Errors are in the v2.0 shape; the v3 API converts them with [`ApiError::into_v3`]. Checking
//! the request (token, permission, body) is each API's business and happens before: the v2.0
//! body gives the charge limit as a fraction 0.5–1, the v3 body as a percentage 50–100, which
//! `v3/commands.rs` converts to the fraction.
//!
//! (The v2.0 and v3 commands were first written apart; the v3 set lacked `DOOR_OPEN`,
//! `FULLY_CHARGED` and the stop on a reached limit. The platform refuses a command for the
//! vehicle's state whichever API carries it, so both now follow the union above.)

use chrono::{DateTime, Utc};

use crate::error::ApiError;
use crate::model::{Battery, Vehicle};

/// A command to the vehicle, its parameters already validated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Command {
    /// Lock the doors.
    Lock,
    /// Unlock the doors.
    Unlock,
    /// Start charging.
    StartCharge,
    /// Stop charging.
    StopCharge,
    /// Set the charge limit, a fraction 0.5–1.
    SetChargeLimit(f64),
    /// Send a destination to the navigation system: latitude, longitude in degrees.
    SetDestination(f64, f64),
}

/// Applies `command` to `v` at `now` with the rules of the module documentation: on success the
/// vehicle has changed and its data age is `now`; on failure it is untouched.
pub(crate) fn apply(v: &mut Vehicle, command: Command, now: DateTime<Utc>) -> Result<(), ApiError> {
    match command {
        Command::Lock | Command::Unlock => {
            if v.in_motion {
                return Err(ApiError::vehicle_state("IN_MOTION"));
            }
            let lock = command == Command::Lock;
            if lock && v.doors_open.iter().any(|open| *open) {
                return Err(ApiError::vehicle_state("DOOR_OPEN"));
            }
            v.locked = lock;
        }
        Command::StartCharge | Command::StopCharge => {
            let b = plugged_in_battery(v)?;
            let start = command == Command::StartCharge;
            if start && !b.charging && b.at_limit() {
                return Err(ApiError::vehicle_state("FULLY_CHARGED"));
            }
            b.charging = start;
        }
        Command::SetChargeLimit(limit) => {
            let b = v.battery.as_mut().ok_or_else(ApiError::not_capable)?;
            b.charge_limit = limit;
            if b.charging && b.at_limit() {
                b.charging = false;
            }
        }
        Command::SetDestination(latitude, longitude) => {
            v.destination = Some((latitude, longitude));
        }
    }
    v.data_age = now;
    Ok(())
}

/// The traction battery, which must be plugged in: 501 without one, 409
/// `CHARGING_PLUG_NOT_CONNECTED` unplugged.
fn plugged_in_battery(v: &mut Vehicle) -> Result<&mut Battery, ApiError> {
    let b = v.battery.as_mut().ok_or_else(ApiError::not_capable)?;
    if b.plugged_in {
        Ok(b)
    } else {
        Err(ApiError::vehicle_state("CHARGING_PLUG_NOT_CONNECTED"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::{Rng, make_vehicle};
    use crate::model::Powertrain;

    fn vehicle(p: Powertrain) -> Vehicle {
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        (0..1000)
            .map(|seed| make_vehicle(&mut Rng::new(seed), epoch))
            .find(|v| v.powertrain == p)
            .expect("a vehicle of every powertrain")
    }

    fn refusal(result: Result<(), ApiError>) -> Option<(u16, String)> {
        result.err().map(|e| {
            let code = e.body()["code"].as_str().unwrap_or_default().to_owned();
            (e.status().as_u16(), code)
        })
    }

    fn ev(plugged_in: bool, charging: bool, percent: f64, limit: f64) -> Vehicle {
        let mut v = vehicle(Powertrain::Bev);
        let b = v.battery.as_mut().expect("battery");
        b.plugged_in = plugged_in;
        b.charging = charging;
        b.percent = percent;
        b.charge_limit = limit;
        v
    }

    #[test]
    fn lock_rules() {
        let now = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(1);
        let mut v = vehicle(Powertrain::Bev);
        v.locked = false;
        v.in_motion = true;
        let before = v.clone();
        for command in [Command::Lock, Command::Unlock] {
            let refused = refusal(apply(&mut v, command, now));
            assert_eq!(refused, Some((409, "IN_MOTION".into())));
            assert_eq!(v, before, "a refused command changes nothing");
        }
        v.in_motion = false;
        v.doors_open[3] = true;
        let refused = refusal(apply(&mut v, Command::Lock, now));
        assert_eq!(refused, Some((409, "DOOR_OPEN".into())));
        assert!(!v.locked);
        // Unlocking with a door open is fine.
        v.locked = true;
        assert!(apply(&mut v, Command::Unlock, now).is_ok());
        assert!(!v.locked);
        assert_eq!(v.data_age, now);
        v.doors_open[3] = false;
        assert!(apply(&mut v, Command::Lock, now).is_ok());
        assert!(v.locked);
    }

    #[test]
    fn charging_rules() {
        let now = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(1);
        let mut ice = vehicle(Powertrain::Ice);
        for command in [
            Command::StartCharge,
            Command::StopCharge,
            Command::SetChargeLimit(0.8),
        ] {
            let refused = refusal(apply(&mut ice, command, now));
            assert_eq!(refused, Some((501, "VEHICLE_NOT_CAPABLE".into())));
        }
        let mut unplugged = ev(false, false, 0.4, 0.8);
        for command in [Command::StartCharge, Command::StopCharge] {
            let refused = refusal(apply(&mut unplugged, command, now));
            assert_eq!(refused, Some((409, "CHARGING_PLUG_NOT_CONNECTED".into())));
        }
        // Full: START refused unless already charging; STOP fine.
        let mut full = ev(true, false, 0.8, 0.8);
        let refused = refusal(apply(&mut full, Command::StartCharge, now));
        assert_eq!(refused, Some((409, "FULLY_CHARGED".into())));
        assert!(apply(&mut full, Command::StopCharge, now).is_ok());
        let mut charging = ev(true, true, 0.9, 0.8);
        assert!(apply(&mut charging, Command::StartCharge, now).is_ok());
        // Idempotent START and STOP.
        let mut v = ev(true, false, 0.4, 0.8);
        for (command, charging) in [
            (Command::StartCharge, true),
            (Command::StartCharge, true),
            (Command::StopCharge, false),
            (Command::StopCharge, false),
        ] {
            assert!(apply(&mut v, command, now).is_ok());
            assert_eq!(v.battery.as_ref().map(|b| b.charging), Some(charging));
        }
        assert_eq!(v.data_age, now);
    }

    #[test]
    fn charge_limit_rules() {
        let now = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(1);
        // Above the charge: keeps charging.
        let mut v = ev(true, true, 0.6, 0.9);
        assert!(apply(&mut v, Command::SetChargeLimit(0.7), now).is_ok());
        let b = v.battery.clone().expect("battery");
        assert_eq!((b.charge_limit, b.charging), (0.7, true));
        // Reached: charging stops, and the state reads FULLY_CHARGED.
        assert!(apply(&mut v, Command::SetChargeLimit(0.5), now).is_ok());
        let b = v.battery.clone().expect("battery");
        assert_eq!((b.charge_limit, b.charging), (0.5, false));
        assert_eq!(b.charge_state().as_str(), "FULLY_CHARGED");
        // Unplugged is fine.
        let mut unplugged = ev(false, false, 0.4, 0.8);
        assert!(apply(&mut unplugged, Command::SetChargeLimit(1.0), now).is_ok());
        assert_eq!(unplugged.data_age, now);
    }

    #[test]
    fn destination() {
        let now = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(1);
        let mut v = vehicle(Powertrain::Ice);
        v.in_motion = true;
        assert!(apply(&mut v, Command::SetDestination(51.5, -0.12), now).is_ok());
        assert_eq!(v.destination, Some((51.5, -0.12)));
        assert_eq!(v.data_age, now);
    }
}
