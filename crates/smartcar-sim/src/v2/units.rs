//! The `sc-unit-system` request header and the metric → imperial conversions of the v2 API.
//!
//! The world keeps every reading in metric units (km, litres, kPa). A request with
//! `sc-unit-system: imperial` gets miles, US gallons and psi; percentages stay fractions 0–1.
//! Converted values (and metric ones, for symmetry) are rounded to two decimals, as the platform's
//! examples are.

use axum::http::HeaderMap;

use crate::error::ApiError;
use crate::model::round;

/// Kilometres in a mile (international mile, exact).
pub(crate) const KM_PER_MILE: f64 = 1.609_344;
/// Litres in a US gallon (exact).
pub(crate) const LITRES_PER_US_GALLON: f64 = 3.785_411_784;
/// Kilopascals in a psi (pound-force per square inch).
pub(crate) const KPA_PER_PSI: f64 = 6.894_757_293_168_361;

/// The unit system of a v2 response body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Units {
    /// Kilometres, litres, kilopascals (the default).
    Metric,
    /// Miles, US gallons, psi.
    Imperial,
}

impl Units {
    /// The request's `sc-unit-system` header: absent means metric; the value is matched
    /// without regard to case (`Imperial` works) and echoed in lower case; anything else
    /// (including an empty value) is 400 `VALIDATION`.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Result<Self, ApiError> {
        let Some(value) = headers.get("sc-unit-system") else {
            return Ok(Units::Metric);
        };
        let value = value.to_str().unwrap_or("").trim();
        if value.eq_ignore_ascii_case("metric") {
            Ok(Units::Metric)
        } else if value.eq_ignore_ascii_case("imperial") {
            Ok(Units::Imperial)
        } else {
            Err(ApiError::validation(
                "sc-unit-system",
                "\"sc-unit-system\" must be one of [metric, imperial]",
            ))
        }
    }

    /// `metric` or `imperial`, as the response header carries it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Units::Metric => "metric",
            Units::Imperial => "imperial",
        }
    }

    /// A distance given in kilometres.
    pub(crate) fn distance(self, km: f64) -> f64 {
        self.convert(km, KM_PER_MILE)
    }

    /// A volume given in litres.
    pub(crate) fn volume(self, litres: f64) -> f64 {
        self.convert(litres, LITRES_PER_US_GALLON)
    }

    /// A pressure given in kilopascals.
    pub(crate) fn pressure(self, kpa: f64) -> f64 {
        self.convert(kpa, KPA_PER_PSI)
    }

    /// `metric` as is or divided by `metric_per_imperial`, rounded to two decimals.
    fn convert(self, metric: f64, metric_per_imperial: f64) -> f64 {
        round(
            match self {
                Units::Metric => metric,
                Units::Imperial => metric / metric_per_imperial,
            },
            2,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn parses_the_header() {
        let mut h = HeaderMap::new();
        assert_eq!(Units::from_headers(&h).ok(), Some(Units::Metric));
        h.insert("sc-unit-system", HeaderValue::from_static("Imperial"));
        assert_eq!(Units::from_headers(&h).ok(), Some(Units::Imperial));
        h.insert("sc-unit-system", HeaderValue::from_static("metric"));
        assert_eq!(Units::from_headers(&h).ok(), Some(Units::Metric));
        for bad in ["", "si", "imperialx"] {
            h.insert("sc-unit-system", HeaderValue::from_static(bad));
            let err = Units::from_headers(&h).err().map(|e| e.status().as_u16());
            assert_eq!(err, Some(400), "{bad:?}");
        }
    }

    #[test]
    fn converts() {
        assert_eq!(Units::Imperial.distance(160.9344), 100.0);
        assert_eq!(Units::Imperial.volume(37.85411784), 10.0);
        assert_eq!(Units::Imperial.pressure(240.0), 34.81);
        assert_eq!(Units::Metric.pressure(240.04), 240.04);
    }
}
