//! Vehicle identification numbers.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A syntactically valid VIN: 17 characters from `0-9` and `A-Z` without `I`, `O` and `Q`,
/// upper-cased.
///
/// The check digit (position 9) is *not* required: it is mandatory in North America only, and
/// Smartcar's own test VINs (`0SCLR…`) do not carry one. [`Vin::has_valid_check_digit`] tells.
///
/// ```
/// let vin: smartcar::Vin = "1hgcm82633a004352".parse()?;
/// assert_eq!(vin.as_str(), "1HGCM82633A004352");
/// assert!(vin.has_valid_check_digit());
/// assert!("1HGCM82633A00435".parse::<smartcar::Vin>().is_err()); // 16 characters
/// assert!("1HGCM82633AO04352".parse::<smartcar::Vin>().is_err()); // letter O
/// # Ok::<(), smartcar::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vin(String);

impl Vin {
    /// Validates and upper-cases `vin`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] saying what is wrong.
    pub fn parse(vin: &str) -> Result<Vin, Error> {
        let upper = vin.trim().to_ascii_uppercase();
        let len = upper.chars().count();
        if len != 17 {
            return Err(Error::invalid(
                "VIN",
                format!("`{vin}` has {len} characters; a VIN has 17"),
            ));
        }
        if let Some(bad) = upper.chars().find(|c| transliterate(*c).is_none()) {
            return Err(Error::invalid(
                "VIN",
                format!("`{vin}` contains `{bad}`; VINs use 0-9 and A-Z except I, O and Q"),
            ));
        }
        Ok(Vin(upper))
    }

    /// The VIN, upper case.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether position 9 holds the ISO 3779 / 49 CFR 565 check digit.
    pub fn has_valid_check_digit(&self) -> bool {
        const WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
        let sum: u32 = self
            .0
            .chars()
            .zip(WEIGHTS)
            .map(|(c, w)| transliterate(c).unwrap_or(0) * w)
            .sum();
        let expected = match sum % 11 {
            10 => 'X',
            d => char::from_digit(d, 10).unwrap_or('0'),
        };
        self.0.chars().nth(8) == Some(expected)
    }
}

fn transliterate(c: char) -> Option<u32> {
    Some(match c {
        '0'..='9' => c as u32 - '0' as u32,
        'A' | 'J' => 1,
        'B' | 'K' | 'S' => 2,
        'C' | 'L' | 'T' => 3,
        'D' | 'M' | 'U' => 4,
        'E' | 'N' | 'V' => 5,
        'F' | 'W' => 6,
        'G' | 'P' | 'X' => 7,
        'H' | 'Y' => 8,
        'R' | 'Z' => 9,
        _ => return None,
    })
}

impl FromStr for Vin {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Vin::parse(s)
    }
}

impl fmt::Display for Vin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Vin {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_vins_parse_without_check_digit() {
        let v = Vin::parse("0SCLR0002E8896323").unwrap();
        assert!(!v.has_valid_check_digit());
        assert!(
            Vin::parse("JH4KA7561PC008269")
                .unwrap()
                .has_valid_check_digit()
        );
        assert_eq!(
            Vin::parse("").unwrap_err().to_string(),
            "invalid VIN: `` has 0 characters; a VIN has 17"
        );
    }
}
