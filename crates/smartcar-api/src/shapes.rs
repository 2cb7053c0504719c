//! Readers for the values Smartcar sends in more than one shape (see `x-evidence` in the spec):
//! a model year as a number or a string, a timestamp as epoch milliseconds or ISO-8601 text, a
//! resolution as an object or a bare type. The generated types decode every shape; these
//! methods give the one value a program wants.

use chrono::{DateTime, TimeZone, Utc};

use crate::open_enums::{CommandStatusValue, ResolutionType};
use crate::types::{DateOrDateTime, ModelYear, ResolutionValue, Timestamp};

impl ModelYear {
    /// The year as a number, whichever shape it came in (`2021` or `"2021"`); `None` for text
    /// that is not a year.
    ///
    /// ```
    /// use smartcar_api::types::ModelYear;
    ///
    /// let number: ModelYear = serde_json::from_str("2021").unwrap();
    /// let text: ModelYear = serde_json::from_str(r#""2021""#).unwrap();
    /// assert_eq!(number.number(), Some(2021));
    /// assert_eq!(text.number(), Some(2021));
    /// ```
    pub fn number(&self) -> Option<i32> {
        match self {
            ModelYear::Int32(year) => Some(*year),
            ModelYear::String(text) => text.trim().parse().ok(),
        }
    }
}

impl Timestamp {
    /// The instant, from epoch milliseconds or from an RFC 3339 / ISO-8601 string (with an
    /// offset, or without one meaning UTC); `None` when it is neither.
    ///
    /// ```
    /// use smartcar_api::types::Timestamp;
    ///
    /// let ms: Timestamp = serde_json::from_str("1752104218549").unwrap();
    /// let iso: Timestamp = serde_json::from_str(r#""2025-07-09T23:36:58.549Z""#).unwrap();
    /// assert_eq!(ms.to_datetime(), iso.to_datetime());
    /// assert!(ms.to_datetime().is_some());
    /// ```
    pub fn to_datetime(&self) -> Option<DateTime<Utc>> {
        match self {
            Timestamp::Int64(ms) => Utc.timestamp_millis_opt(*ms).single(),
            Timestamp::String(text) => {
                let text = text.trim();
                DateTime::parse_from_rfc3339(text)
                    .map(|t| t.with_timezone(&Utc))
                    .ok()
                    .or_else(|| {
                        chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                            .ok()
                            .map(|t| t.and_utc())
                    })
            }
        }
    }
}

impl DateOrDateTime {
    /// The instant: the date-time as sent, or a date alone at midnight UTC.
    ///
    /// ```
    /// use smartcar_api::types::DateOrDateTime;
    ///
    /// let full: DateOrDateTime = serde_json::from_str(r#""2022-06-15T00:00:00Z""#).unwrap();
    /// let date: DateOrDateTime = serde_json::from_str(r#""2022-06-15""#).unwrap();
    /// assert_eq!(full.to_datetime(), date.to_datetime());
    /// ```
    pub fn to_datetime(&self) -> DateTime<Utc> {
        match self {
            DateOrDateTime::Variant0(t) => *t,
            DateOrDateTime::Variant1(d) => d.and_time(chrono::NaiveTime::MIN).and_utc(),
        }
    }
}

impl From<DateTime<Utc>> for Timestamp {
    /// Epoch milliseconds, the shape webhook deliveries use.
    fn from(t: DateTime<Utc>) -> Self {
        Timestamp::Int64(t.timestamp_millis())
    }
}

impl CommandStatusValue {
    /// Whether the command has finished (`SUCCESS`, `FAILED`, `ERROR`, or a status this crate
    /// does not know); `PENDING` and `IN_PROGRESS` are still running.
    ///
    /// ```
    /// use smartcar_api::open_enums::CommandStatusValue;
    ///
    /// assert!(!CommandStatusValue::Pending.is_final());
    /// assert!(CommandStatusValue::Success.is_final());
    /// assert!(CommandStatusValue::from("SOMETHING_NEW").is_final());
    /// ```
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            CommandStatusValue::Pending | CommandStatusValue::InProgress
        )
    }
}

impl ResolutionValue {
    /// `resolution.type`, or the bare string sent in its place.
    ///
    /// ```
    /// use smartcar_api::open_enums::ResolutionType;
    /// use smartcar_api::types::ResolutionValue;
    ///
    /// let object: ResolutionValue = serde_json::from_str(r#"{"type":"REAUTHENTICATE"}"#).unwrap();
    /// let bare: ResolutionValue = serde_json::from_str(r#""REAUTHENTICATE""#).unwrap();
    /// assert_eq!(object.kind(), Some(&ResolutionType::Reauthenticate));
    /// assert_eq!(bare.kind(), object.kind());
    /// ```
    pub fn kind(&self) -> Option<&ResolutionType> {
        match self {
            ResolutionValue::Details(details) => details.type_.as_ref(),
            ResolutionValue::Type(kind) => Some(kind),
        }
    }

    /// `resolution.url`: where to send the user, when the platform gave one.
    pub fn url(&self) -> Option<&str> {
        match self {
            ResolutionValue::Details(details) => details.url.as_deref(),
            ResolutionValue::Type(_) => None,
        }
    }
}
