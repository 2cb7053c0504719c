//! Command arguments that mean the same thing in the Vehicle API v2.0 and v3, each encoded the
//! way its API version expects: a [`ChargeLimit`] is a fraction (`0.8`) on v2.0 and a
//! percentage (`80`) on v3, so neither number can be sent to the wrong version by mistake.

use std::fmt;

use smartcar_api::types;

use crate::Error;

/// The state of charge at which charging stops, from 50 % to 100 %.
///
/// Build it from the unit you have; each API version gets its own encoding (v2.0 sends
/// `{"limit": 0.8}`, v3 `{"percent": 80}`). A number that looks like the other unit is refused
/// with a hint, so `0.8` as a percentage or `80` as a fraction never reaches a vehicle.
///
/// ```
/// use smartcar::ChargeLimit;
///
/// let limit = ChargeLimit::percent(80.0)?;
/// assert_eq!(limit.as_fraction(), 0.8);
/// assert_eq!(ChargeLimit::fraction(0.8)?, limit);
/// assert!(ChargeLimit::percent(0.8).is_err()); // a fraction passed as a percentage
/// assert!(ChargeLimit::fraction(80.0).is_err()); // a percentage passed as a fraction
/// # Ok::<(), smartcar::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct ChargeLimit(Repr);

/// What the caller gave, kept as given so that each encoding of it is exact.
#[derive(Clone, Copy)]
enum Repr {
    Percent(f64),
    Fraction(f64),
}

impl ChargeLimit {
    /// The lowest limit Smartcar accepts, in percent.
    pub const MIN_PERCENT: f64 = 50.0;
    /// The highest limit, in percent.
    pub const MAX_PERCENT: f64 = 100.0;

    /// A limit in percent, from 50 to 100.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] outside 50–100 (with a hint when the number looks like a
    /// fraction), or for a number that is not finite.
    pub fn percent(percent: f64) -> Result<ChargeLimit, Error> {
        if (Self::MIN_PERCENT..=Self::MAX_PERCENT).contains(&percent) {
            return Ok(ChargeLimit(Repr::Percent(percent)));
        }
        let hint = if (0.5..=1.0).contains(&percent) {
            format!(
                "; it looks like a fraction: use ChargeLimit::fraction({percent}) or ChargeLimit::percent({})",
                percent * 100.0
            )
        } else {
            String::new()
        };
        Err(Error::invalid(
            "charge limit",
            format!("{percent} is not a percentage from 50 to 100{hint}"),
        ))
    }

    /// A limit as a fraction of a full battery, from 0.5 to 1.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] outside 0.5–1 (with a hint when the number looks like a
    /// percentage), or for a number that is not finite.
    pub fn fraction(fraction: f64) -> Result<ChargeLimit, Error> {
        if (0.5..=1.0).contains(&fraction) {
            return Ok(ChargeLimit(Repr::Fraction(fraction)));
        }
        let hint = if (Self::MIN_PERCENT..=Self::MAX_PERCENT).contains(&fraction) {
            format!("; it looks like a percentage: use ChargeLimit::percent({fraction})")
        } else {
            String::new()
        };
        Err(Error::invalid(
            "charge limit",
            format!("{fraction} is not a fraction from 0.5 to 1{hint}"),
        ))
    }

    /// The limit in percent (50–100).
    pub fn as_percent(self) -> f64 {
        match self.0 {
            Repr::Percent(p) => p,
            // 0.57 * 100 is 56.99999999999999 in binary floating point: round off the noise.
            Repr::Fraction(f) => (f * 100.0 * 1e9).round() / 1e9,
        }
    }

    /// The limit as a fraction (0.5–1).
    pub fn as_fraction(self) -> f64 {
        match self.0 {
            Repr::Percent(p) => p / 100.0,
            Repr::Fraction(f) => f,
        }
    }

    /// The v2.0 request body (`{"limit": fraction}`).
    pub(crate) fn v2_body(self) -> types::ChargeLimitRequest {
        types::ChargeLimitRequest {
            limit: self.as_fraction(),
        }
    }

    /// The v3 request body (`{"data": {"attributes": {"percent": percent}}}`).
    pub(crate) fn v3_body(self) -> types::SetChargeLimitCommand {
        types::SetChargeLimitCommand {
            data: types::SetChargeLimitCommandData {
                attributes: types::SetChargeLimitCommandDataAttributes {
                    percent: self.as_percent(),
                },
            },
        }
    }
}

impl PartialEq for ChargeLimit {
    fn eq(&self, other: &Self) -> bool {
        self.as_percent() == other.as_percent()
    }
}

impl fmt::Debug for ChargeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChargeLimit({} %)", self.as_percent())
    }
}

impl fmt::Display for ChargeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} %", self.as_percent())
    }
}

/// A place to send to a vehicle's navigation system: latitude and longitude in degrees (WGS 84).
///
/// ```
/// use smartcar::Destination;
///
/// let golden_gate = Destination::new(37.8199, -122.4783)?;
/// assert_eq!(golden_gate.latitude(), 37.8199);
/// assert!(Destination::new(-122.4783, 37.8199).is_err()); // swapped: latitude beyond ±90
/// # Ok::<(), smartcar::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Destination {
    latitude: f64,
    longitude: f64,
}

impl Destination {
    /// A destination at `latitude` (−90 to 90) and `longitude` (−180 to 180), in degrees.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a coordinate out of range or not finite.
    pub fn new(latitude: f64, longitude: f64) -> Result<Destination, Error> {
        check_coordinates("destination", latitude, longitude)?;
        Ok(Destination {
            latitude,
            longitude,
        })
    }

    /// The latitude in degrees.
    pub fn latitude(self) -> f64 {
        self.latitude
    }

    /// The longitude in degrees.
    pub fn longitude(self) -> f64 {
        self.longitude
    }

    /// The v2.0 request body.
    pub(crate) fn v2_body(self) -> types::DestinationRequest {
        types::DestinationRequest {
            latitude: self.latitude,
            longitude: self.longitude,
        }
    }

    /// The v3 request body (`{"data": {"attributes": {"latitude": …, "longitude": …}}}`).
    pub(crate) fn v3_body(self) -> types::SetDestinationCommand {
        types::SetDestinationCommand {
            data: types::SetDestinationCommandData {
                attributes: types::SetDestinationCommandDataAttributes {
                    latitude: self.latitude,
                    longitude: self.longitude,
                },
            },
        }
    }
}

/// [`Error::InvalidInput`] about `what` unless `latitude` is in −90–90 and `longitude` in
/// −180–180 degrees (not finite: refused), with a hint when the two look swapped.
pub(crate) fn check_coordinates(
    what: &'static str,
    latitude: f64,
    longitude: f64,
) -> Result<(), Error> {
    if (-90.0..=90.0).contains(&latitude) && (-180.0..=180.0).contains(&longitude) {
        return Ok(());
    }
    let hint = if (-90.0..=90.0).contains(&longitude) && (-180.0..=180.0).contains(&latitude) {
        " (swapped? the latitude comes first)"
    } else {
        ""
    };
    Err(Error::invalid(
        what,
        format!(
            "({latitude}, {longitude}) is not a latitude (−90 to 90) and a longitude \
             (−180 to 180) in degrees{hint}"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_version_gets_its_encoding() {
        let limit = ChargeLimit::percent(80.0).unwrap();
        assert_eq!(
            serde_json::to_string(&limit.v2_body()).unwrap(),
            r#"{"limit":0.8}"#
        );
        assert_eq!(
            serde_json::to_value(limit.v3_body()).unwrap(),
            serde_json::json!({"data": {"attributes": {"percent": 80.0}}})
        );
        let limit = ChargeLimit::fraction(0.57).unwrap();
        assert_eq!(limit.as_percent(), 57.0);
        assert_eq!(limit.as_fraction(), 0.57);
        assert_eq!(ChargeLimit::percent(57.0).unwrap(), limit);
    }

    #[test]
    fn the_other_unit_is_refused_with_a_hint() {
        let e = ChargeLimit::percent(0.8).unwrap_err().to_string();
        assert!(e.contains("ChargeLimit::fraction(0.8)"), "{e}");
        let e = ChargeLimit::fraction(80.0).unwrap_err().to_string();
        assert!(e.contains("ChargeLimit::percent(80)"), "{e}");
        for bad in [f64::NAN, f64::INFINITY, 49.9, 100.1, 0.0, -80.0] {
            assert!(ChargeLimit::percent(bad).is_err(), "{bad}");
            assert!(ChargeLimit::fraction(bad / 100.0).is_err(), "{bad}");
        }
        assert!(ChargeLimit::percent(50.0).is_ok() && ChargeLimit::fraction(1.0).is_ok());
    }

    #[test]
    fn destinations_are_checked() {
        assert!(Destination::new(90.0, 180.0).is_ok());
        assert!(Destination::new(f64::NAN, 0.0).is_err());
        let e = Destination::new(-122.4, 37.8).unwrap_err().to_string();
        assert!(e.contains("swapped"), "{e}");
        assert!(
            !Destination::new(91.0, 200.0)
                .unwrap_err()
                .to_string()
                .contains("swapped")
        );
    }
}
