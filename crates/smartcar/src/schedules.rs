//! The arguments of the Vehicle API v3 charge schedules: a [`TimeOfDay`], a [`ChargingWindow`]
//! between two of them, the [`ChargeLocation`] a schedule is bound to, and the per-day windows
//! of a [`WeeklySchedule`]. Each is validated when built, so a schedule the platform would
//! refuse (`"25:00"`, a latitude of 120°) is an [`Error::InvalidInput`] before anything is sent.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::Weekday;
use smartcar_api::types;

use crate::Error;

/// A local time of day to the minute, as charge schedules take it (`HH:mm`, 24 h).
///
/// ```
/// use smartcar::v3::TimeOfDay;
///
/// let ten_pm: TimeOfDay = "22:00".parse()?;
/// assert_eq!(ten_pm, TimeOfDay::new(22, 0)?);
/// assert_eq!(ten_pm.to_string(), "22:00");
/// assert!("24:00".parse::<TimeOfDay>().is_err());
/// assert!("7:5".parse::<TimeOfDay>().is_err()); // two digits each
/// # Ok::<(), smartcar::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay {
    hour: u8,
    minute: u8,
}

impl TimeOfDay {
    /// `hour` (0–23) and `minute` (0–59).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an hour or minute out of range.
    pub fn new(hour: u8, minute: u8) -> Result<TimeOfDay, Error> {
        if hour > 23 || minute > 59 {
            return Err(Error::invalid(
                "time of day",
                format!("{hour}:{minute:02} is not a time between 00:00 and 23:59"),
            ));
        }
        Ok(TimeOfDay { hour, minute })
    }

    /// The hour, 0–23.
    pub fn hour(self) -> u8 {
        self.hour
    }

    /// The minute, 0–59.
    pub fn minute(self) -> u8 {
        self.minute
    }
}

impl FromStr for TimeOfDay {
    type Err = Error;

    /// Reads `HH:mm` (two digits each, 24 h).
    fn from_str(text: &str) -> Result<TimeOfDay, Error> {
        let bad = || {
            Error::invalid(
                "time of day",
                format!("`{text}` is not a time written HH:mm (24 h, e.g. 07:30 or 22:00)"),
            )
        };
        let (h, m) = text.split_once(':').ok_or_else(bad)?;
        let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !two_digits(h) || !two_digits(m) {
            return Err(bad());
        }
        let hour = h.parse().map_err(|_| bad())?;
        let minute = m.parse().map_err(|_| bad())?;
        TimeOfDay::new(hour, minute).map_err(|_| bad())
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// When charging runs: from `start` to `stop`, local time. A stop before the start spans
/// midnight (`22:00`–`06:00`); equal times are refused (an empty window).
///
/// ```
/// use smartcar::v3::ChargingWindow;
///
/// let night = ChargingWindow::parse("22:00", "06:00")?;
/// assert_eq!(night.start().to_string(), "22:00");
/// assert!(ChargingWindow::parse("08:00", "08:00").is_err());
/// # Ok::<(), smartcar::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChargingWindow {
    start: TimeOfDay,
    stop: TimeOfDay,
}

impl ChargingWindow {
    /// The window from `start` to `stop`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when both are the same time.
    pub fn new(start: TimeOfDay, stop: TimeOfDay) -> Result<ChargingWindow, Error> {
        if start == stop {
            return Err(Error::invalid(
                "charging window",
                format!("it starts and stops at {start}: give two different times"),
            ));
        }
        Ok(ChargingWindow { start, stop })
    }

    /// The window from two `HH:mm` texts.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed time or an empty window.
    pub fn parse(start: &str, stop: &str) -> Result<ChargingWindow, Error> {
        ChargingWindow::new(start.parse()?, stop.parse()?)
    }

    /// When charging starts.
    pub fn start(self) -> TimeOfDay {
        self.start
    }

    /// When charging stops.
    pub fn stop(self) -> TimeOfDay {
        self.stop
    }

    fn body(self) -> types::ChargeWindow {
        types::ChargeWindow {
            start_time: self.start.to_string(),
            stop_time: self.stop.to_string(),
        }
    }
}

/// The charging location a schedule is bound to (the vehicle applies the schedule when it
/// charges there), in degrees.
///
/// ```
/// use smartcar::v3::ChargeLocation;
///
/// let home = ChargeLocation::new(37.7749, -122.4194)?;
/// assert_eq!(home.latitude(), 37.7749);
/// assert!(ChargeLocation::new(-122.4194, 37.7749).is_err()); // swapped
/// # Ok::<(), smartcar::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChargeLocation {
    latitude: f64,
    longitude: f64,
}

impl ChargeLocation {
    /// A location at `latitude` (−90 to 90) and `longitude` (−180 to 180).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a coordinate out of range or not finite.
    pub fn new(latitude: f64, longitude: f64) -> Result<ChargeLocation, Error> {
        crate::values::check_coordinates("charge location", latitude, longitude)?;
        Ok(ChargeLocation {
            latitude,
            longitude,
        })
    }

    /// The latitude.
    pub fn latitude(self) -> f64 {
        self.latitude
    }

    /// The longitude.
    pub fn longitude(self) -> f64 {
        self.longitude
    }

    fn body(self) -> types::ChargeScheduleLocation {
        types::ChargeScheduleLocation {
            latitude: self.latitude,
            longitude: self.longitude,
        }
    }
}

/// A charging window per weekday, for a weekly schedule; days without one do not charge on
/// schedule.
///
/// ```
/// use chrono::Weekday;
/// use smartcar::v3::{ChargingWindow, WeeklySchedule};
///
/// let night = ChargingWindow::parse("22:00", "06:00")?;
/// let week = WeeklySchedule::new()
///     .day(Weekday::Mon, night)
///     .day(Weekday::Wed, night)
///     .day(Weekday::Sat, ChargingWindow::parse("00:00", "08:00")?);
/// assert_eq!(week.days().count(), 3);
/// # Ok::<(), smartcar::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WeeklySchedule {
    // Keyed by days from Monday, for a stable order.
    days: BTreeMap<u32, ChargingWindow>,
}

impl WeeklySchedule {
    /// No day yet.
    pub fn new() -> WeeklySchedule {
        WeeklySchedule::default()
    }

    /// Charges on `day` in `window` (replacing an earlier window of that day).
    #[must_use]
    pub fn day(mut self, day: Weekday, window: ChargingWindow) -> WeeklySchedule {
        self.days.insert(day.num_days_from_monday(), window);
        self
    }

    /// The days with a window, from Monday.
    pub fn days(&self) -> impl Iterator<Item = (Weekday, ChargingWindow)> + '_ {
        self.days.iter().filter_map(|(n, w)| {
            let day = Weekday::try_from(u8::try_from(*n).ok()?).ok()?;
            Some((day, *w))
        })
    }
}

/// The request body of the daily schedule.
pub(crate) fn daily_body(
    location: ChargeLocation,
    window: ChargingWindow,
) -> types::DailyChargeScheduleRequest {
    types::DailyChargeScheduleRequest {
        data: types::DailyChargeScheduleRequestData {
            attributes: types::DailyChargeScheduleAttributes {
                location: location.body(),
                start_time: window.start.to_string(),
                stop_time: window.stop.to_string(),
            },
        },
    }
}

/// The request body of the weekly schedule.
///
/// # Errors
///
/// [`Error::InvalidInput`] when no day has a window.
pub(crate) fn weekly_body(
    location: ChargeLocation,
    week: &WeeklySchedule,
) -> Result<types::WeeklyChargeScheduleRequest, Error> {
    if week.days.is_empty() {
        return Err(Error::invalid(
            "weekly schedule",
            "it has no day: add at least one with WeeklySchedule::day",
        ));
    }
    let mut days = types::WeeklyChargeDays {
        monday: None,
        tuesday: None,
        wednesday: None,
        thursday: None,
        friday: None,
        saturday: None,
        sunday: None,
    };
    for (day, window) in week.days() {
        let slot = match day {
            Weekday::Mon => &mut days.monday,
            Weekday::Tue => &mut days.tuesday,
            Weekday::Wed => &mut days.wednesday,
            Weekday::Thu => &mut days.thursday,
            Weekday::Fri => &mut days.friday,
            Weekday::Sat => &mut days.saturday,
            Weekday::Sun => &mut days.sunday,
        };
        *slot = Some(window.body());
    }
    Ok(types::WeeklyChargeScheduleRequest {
        data: types::WeeklyChargeScheduleRequestData {
            attributes: types::WeeklyChargeScheduleAttributes {
                location: location.body(),
                days,
            },
        },
    })
}

/// The request body of the workweek schedule.
pub(crate) fn workweek_body(
    location: ChargeLocation,
    weekdays: ChargingWindow,
    weekends: ChargingWindow,
) -> types::WorkweekChargeScheduleRequest {
    types::WorkweekChargeScheduleRequest {
        data: types::WorkweekChargeScheduleRequestData {
            attributes: types::WorkweekChargeScheduleAttributes {
                location: location.body(),
                weekdays: weekdays.body(),
                weekends: weekends.body(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_strictly_and_written_with_two_digits() {
        for bad in [
            "", "7:30", "07:3", "24:00", "23:60", "ab:cd", "07-30", "07:30:00", "+7:30",
        ] {
            assert!(bad.parse::<TimeOfDay>().is_err(), "{bad:?}");
        }
        let t: TimeOfDay = "07:05".parse().unwrap();
        assert_eq!(
            (t.hour(), t.minute(), t.to_string()),
            (7, 5, "07:05".into())
        );
        assert!(TimeOfDay::new(24, 0).is_err());
    }

    #[test]
    fn bodies_carry_the_windows_as_given() {
        let home = ChargeLocation::new(52.52, 13.405).unwrap();
        let night = ChargingWindow::parse("22:00", "06:00").unwrap();
        let week = WeeklySchedule::new().day(Weekday::Sun, night);
        let body = serde_json::to_value(weekly_body(home, &week).unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"data": {"attributes": {
                "location": {"latitude": 52.52, "longitude": 13.405},
                "days": {"sunday": {"startTime": "22:00", "stopTime": "06:00"}}
            }}})
        );
        assert!(weekly_body(home, &WeeklySchedule::new()).is_err());
        assert!(ChargeLocation::new(f64::NAN, 0.0).is_err());
    }
}
