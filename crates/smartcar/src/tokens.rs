//! Tokens: a user's access and refresh tokens ([`Tokens`], from
//! [`Client::exchange_code`](crate::Client::exchange_code)), and the application token of the M2M
//! flow ([`ApplicationToken`]). Token values are secret newtypes whose `Debug` shows
//! `[redacted]`; [`REFRESH_TOKEN_LIFETIME`] is how long a refresh token lives.
//!
//! ```no_run
//! # async fn demo(client: smartcar::Client, code: smartcar::connect::AuthorizationCode) -> Result<(), smartcar::Error> {
//! use smartcar::tokens::Tokens;
//!
//! let tokens: Tokens = client.exchange_code(&code).await?;
//! if tokens.is_refresh_expired() {
//!     println!("send the user through Connect again");
//! }
//! println!("{tokens:?}"); // the values show as [redacted]
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

macro_rules! secret_string {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// `Debug` shows `[redacted]`; the value is only reachable through `secret()`. `==`
        /// compares in constant time (for values of equal length), and the value is wiped
        /// from memory when dropped (copies made with `secret().to_owned()` are not).
        ///
        /// ```no_run
        #[doc = concat!("let value = smartcar::tokens::", stringify!($name), "::new(\"example\");")]
        #[doc = concat!("assert_eq!(format!(\"{value:?}\"), \"", stringify!($name), "([redacted])\");")]
        /// assert_eq!(value.secret(), "example");
        /// ```
        #[derive(Clone, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
            }
        }

        impl Eq for $name {}

        impl $name {
            /// Overwrites the value's whole buffer with zeros (what `Drop` does).
            fn wipe(&mut self) {
                self.0.zeroize();
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                self.wipe();
            }
        }

        impl $name {
            /// Wraps a value.
            ///
            /// ```no_run
            #[doc = concat!("let value = smartcar::tokens::", stringify!($name), "::new(\"example\");")]
            /// # let _ = value;
            /// ```
            pub fn new(value: impl Into<String>) -> Self {
                $name(value.into())
            }

            /// The value.
            ///
            /// # Security warning
            /// Never log or display it.
            ///
            /// ```no_run
            #[doc = concat!("# let value = smartcar::tokens::", stringify!($name), "::new(\"example\");")]
            /// let header = format!("Bearer {}", value.secret());
            /// # let _ = header;
            /// ```
            pub fn secret(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_string!(
    /// A user's access token (v2.0 vehicle API; valid 2 hours).
    AccessToken
);
secret_string!(
    /// A user's refresh token (valid 60 days, single use: every refresh rotates it).
    RefreshToken
);
secret_string!(
    /// An application token from the client-credentials grant (valid 1 hour).
    ApplicationTokenValue
);

/// How long a refresh token lives (a documented constant: the token endpoint does not say).
///
/// ```no_run
/// let days = smartcar::tokens::REFRESH_TOKEN_LIFETIME.as_secs() / 86_400;
/// assert_eq!(days, 60);
/// ```
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 24 * 3600);

/// A user's tokens with their expiries.
///
/// `Serialize`/`Deserialize` write the token values in clear, for token stores; `Debug` does not.
///
/// ```
/// use chrono::{Duration, Utc};
/// let t = smartcar::tokens::Tokens {
///     access_token: smartcar::tokens::AccessToken::new("a"),
///     refresh_token: smartcar::tokens::RefreshToken::new("r"),
///     expires_at: Utc::now() + Duration::hours(2),
///     refresh_expires_at: Utc::now() + Duration::days(60),
/// };
/// assert!(!t.is_expired());
/// assert!(t.expires_within(std::time::Duration::from_secs(3 * 3600)));
/// assert!(!format!("{t:?}").contains("\"a\""));
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// The access token.
    pub access_token: AccessToken,
    /// The refresh token.
    pub refresh_token: RefreshToken,
    /// When the access token expires.
    pub expires_at: DateTime<Utc>,
    /// When the refresh token expires (issue time + 60 days).
    pub refresh_expires_at: DateTime<Utc>,
}

impl Tokens {
    /// Whether the access token has expired.
    ///
    /// ```no_run
    /// # fn demo(tokens: smartcar::tokens::Tokens) {
    /// if tokens.is_expired() {
    ///     println!("refresh first");
    /// }
    /// # }
    /// ```
    pub fn is_expired(&self) -> bool {
        self.expires_within(Duration::ZERO)
    }

    /// Whether the access token expires within `margin` from now.
    ///
    /// ```no_run
    /// # fn demo(tokens: smartcar::tokens::Tokens) {
    /// let soon = tokens.expires_within(std::time::Duration::from_secs(300));
    /// # let _ = soon;
    /// # }
    /// ```
    pub fn expires_within(&self, margin: Duration) -> bool {
        self.expires_within_at(Utc::now(), margin)
    }

    /// Whether the access token expires within `margin` of `now`.
    ///
    /// ```no_run
    /// # fn demo(tokens: smartcar::tokens::Tokens) {
    /// let now = chrono::Utc::now();
    /// let soon = tokens.expires_within_at(now, std::time::Duration::from_secs(300));
    /// # let _ = soon;
    /// # }
    /// ```
    pub fn expires_within_at(&self, now: DateTime<Utc>, margin: Duration) -> bool {
        let margin = chrono::Duration::from_std(margin).unwrap_or(chrono::Duration::MAX);
        now + margin >= self.expires_at
    }

    /// Whether the refresh token has expired (the user must reconnect).
    ///
    /// ```no_run
    /// # fn demo(tokens: smartcar::tokens::Tokens) {
    /// if tokens.is_refresh_expired() {
    ///     println!("the user must reconnect through Smartcar Connect");
    /// }
    /// # }
    /// ```
    pub fn is_refresh_expired(&self) -> bool {
        self.is_refresh_expired_at(Utc::now())
    }

    /// Whether the refresh token has expired at `now`.
    ///
    /// ```no_run
    /// # fn demo(tokens: smartcar::tokens::Tokens) {
    /// let in_a_week = chrono::Utc::now() + chrono::Duration::days(7);
    /// let expiring = tokens.is_refresh_expired_at(in_a_week);
    /// # let _ = expiring;
    /// # }
    /// ```
    pub fn is_refresh_expired_at(&self, now: DateTime<Utc>) -> bool {
        now >= self.refresh_expires_at
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("expires_at", &self.expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish()
    }
}

/// An application token (client-credentials grant) with its expiry.
///
/// ```no_run
/// # async fn demo(client: smartcar::Client) -> Result<(), smartcar::Error> {
/// let app_token = client.request_application_token().await?;
/// println!("valid until {}", app_token.expires_at);
/// let header = format!("Bearer {}", app_token.token.secret());
/// # let _ = header;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationToken {
    /// The token.
    pub token: ApplicationTokenValue,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

impl ApplicationToken {
    /// Whether it expires within `margin` from now.
    ///
    /// ```no_run
    /// # fn demo(app_token: smartcar::tokens::ApplicationToken) {
    /// let renew = app_token.expires_within(std::time::Duration::from_secs(60));
    /// # let _ = renew;
    /// # }
    /// ```
    pub fn expires_within(&self, margin: Duration) -> bool {
        self.expires_within_at(Utc::now(), margin)
    }

    /// Whether it expires within `margin` of `now`.
    ///
    /// ```no_run
    /// # fn demo(app_token: smartcar::tokens::ApplicationToken) {
    /// let renew = app_token.expires_within_at(chrono::Utc::now(), std::time::Duration::from_secs(60));
    /// # let _ = renew;
    /// # }
    /// ```
    pub fn expires_within_at(&self, now: DateTime<Utc>, margin: Duration) -> bool {
        let margin = chrono::Duration::from_std(margin).unwrap_or(chrono::Duration::MAX);
        now + margin >= self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each secret newtype: equal values are equal (through the constant-time comparison),
    /// different values or lengths are not, clones and serde round trips keep the value, and
    /// dropping wipes the bytes the value owned.
    macro_rules! secret_checks {
        ($($name:ident),*) => {$(
            let a = $name::new("same-value-0123");
            assert_eq!(a, $name::new("same-value-0123"));
            assert_ne!(a, $name::new("same-value-0124"));
            assert_ne!(a, $name::new("same-value-012"));
            assert_eq!(a.clone(), a);
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, "\"same-value-0123\"");
            assert_eq!(serde_json::from_str::<$name>(&json).unwrap(), a);
            assert!(!format!("{a:?}").contains("same-value"));

            let mut value = $name::new("wipe-me-please-0123");
            value.wipe();
            assert!(value.0.is_empty());
            // SAFETY: `wipe` wrote zeros over the whole allocated capacity, so every byte of
            // the spare capacity is initialised.
            let spare = unsafe { value.0.as_mut_vec() }.spare_capacity_mut();
            assert!(spare.len() >= "wipe-me-please-0123".len());
            assert!(spare.iter().all(|b| unsafe { b.assume_init() } == 0));
        )*};
    }

    #[test]
    fn secret_newtypes_compare_in_constant_time_and_wipe_on_drop() {
        secret_checks!(AccessToken, RefreshToken, ApplicationTokenValue);
    }
}
