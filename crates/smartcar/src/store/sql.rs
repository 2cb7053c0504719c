//! What the SQL token stores share: how a row holds the tokens (clear or encrypted), the
//! refresh-token fingerprint compare-and-swap works on, lock timeouts, and error mapping that
//! never echoes a token.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::Error;
use crate::tokens::{AccessToken, RefreshToken, Tokens};

/// How long a refresh lock may be held and waited for (SQL stores).
///
/// - `lease`: a holder that neither releases nor crashes (a hung process, a refresh that never
///   returns) loses the lock after this long, so the others can go on. Default 30 s.
/// - `wait`: a caller gives up waiting for the lock after this long with
///   [`Error::TokenStore`]. Default 60 s (longer than the lease, so that a hung holder is
///   evicted before its waiters give up).
///
/// ```
/// use std::time::Duration;
/// let timeouts = smartcar::store::LockTimeouts {
///     lease: Duration::from_secs(20),
///     wait: Duration::from_secs(45),
/// };
/// assert!(timeouts.wait > timeouts.lease);
/// assert_eq!(smartcar::store::LockTimeouts::default().lease, Duration::from_secs(30));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockTimeouts {
    /// After this long a held lock is taken away from its holder.
    pub lease: Duration,
    /// After this long a caller stops waiting for the lock.
    pub wait: Duration,
}

impl Default for LockTimeouts {
    fn default() -> Self {
        LockTimeouts {
            lease: Duration::from_secs(30),
            wait: Duration::from_secs(60),
        }
    }
}

/// Format byte of a clear (JSON) row.
const CLEAR: u8 = 0;
/// Format byte of an encrypted row.
#[cfg(feature = "encryption")]
const SEALED: u8 = 1;

/// Turns [`Tokens`] into the bytes of the `tokens` column and back.
#[derive(Clone, Default)]
pub(crate) struct Codec {
    #[cfg(feature = "encryption")]
    pub(crate) cipher: Option<super::TokenCipher>,
    /// Refuse rows stored in clear (`require_encryption`).
    #[cfg(feature = "encryption")]
    pub(crate) require_encryption: bool,
}

/// Whether [`Codec::open`] may return a row stored in clear.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Clear {
    /// Unless the store requires encryption.
    AsConfigured,
    /// Always (`encrypt_clear_rows` reads them to encrypt them).
    #[cfg_attr(not(feature = "encryption"), allow(dead_code))]
    Allowed,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Row {
    access_token: AccessToken,
    refresh_token: RefreshToken,
    expires_at: chrono::DateTime<chrono::Utc>,
    refresh_expires_at: chrono::DateTime<chrono::Utc>,
}

impl Codec {
    pub(crate) fn encrypted(&self) -> bool {
        #[cfg(feature = "encryption")]
        {
            self.cipher.is_some()
        }
        #[cfg(not(feature = "encryption"))]
        {
            false
        }
    }

    /// Whether rows in clear are refused.
    pub(crate) fn requires_encryption(&self) -> bool {
        #[cfg(feature = "encryption")]
        {
            self.require_encryption
        }
        #[cfg(not(feature = "encryption"))]
        {
            false
        }
    }

    /// The column bytes for `tokens` stored under `key`.
    pub(crate) fn seal(&self, key: &str, tokens: &Tokens) -> Result<Vec<u8>, Error> {
        if self.requires_encryption() && !self.encrypted() {
            return Err(Error::Configuration {
                setting: "require_encryption".to_owned(),
                message:
                    "the store requires encryption but has no TokenCipher: call with_cipher as well"
                        .to_owned(),
            });
        }
        let row = Row {
            access_token: tokens.access_token.clone(),
            refresh_token: tokens.refresh_token.clone(),
            expires_at: tokens.expires_at,
            refresh_expires_at: tokens.refresh_expires_at,
        };
        let json = serde_json::to_vec(&row).map_err(|_| store_error("cannot encode tokens"))?;
        #[cfg(feature = "encryption")]
        if let Some(cipher) = &self.cipher {
            let mut out = vec![SEALED];
            out.extend(cipher.seal(key, &json)?);
            return Ok(out);
        }
        let _ = key;
        let mut out = Vec::with_capacity(json.len() + 1);
        out.push(CLEAR);
        out.extend(json);
        Ok(out)
    }

    /// The tokens of the column bytes stored under `key`.
    pub(crate) fn open(&self, key: &str, bytes: &[u8], clear: Clear) -> Result<Tokens, Error> {
        let _ = key;
        let json: Vec<u8> = match bytes.split_first() {
            #[cfg(feature = "encryption")]
            Some((&CLEAR, _)) if self.require_encryption && clear == Clear::AsConfigured => {
                return Err(Error::TokenStore {
                    message: format!(
                        "the tokens under key {} are stored in clear and this store requires encryption: \
                         encrypt the rows written before encryption was turned on with \
                         encrypt_clear_rows() (once, on a store with the cipher), or delete the row \
                         so that the user connects again",
                        super::store_key_hash(key)
                    ),
                    source: Some(Box::new(super::ClearTokensRefused::new(key))),
                });
            }
            Some((&CLEAR, json)) => {
                let _ = clear;
                json.to_vec()
            }
            #[cfg(feature = "encryption")]
            Some((&SEALED, sealed)) => match &self.cipher {
                Some(cipher) => cipher.open(key, sealed)?,
                None => {
                    return Err(store_error(
                        "the stored tokens are encrypted: configure the store with the key (TokenCipher)",
                    ));
                }
            },
            #[cfg(not(feature = "encryption"))]
            Some((&1, _)) => {
                return Err(store_error(
                    "the stored tokens are encrypted: enable the `encryption` feature and configure the key",
                ));
            }
            _ => return Err(store_error("the stored tokens are in an unknown format")),
        };
        // Not the serde error: its message may quote part of the row.
        let row: Row = serde_json::from_slice(&json)
            .map_err(|_| store_error("the stored tokens cannot be decoded"))?;
        Ok(Tokens {
            access_token: row.access_token,
            refresh_token: row.refresh_token,
            expires_at: row.expires_at,
            refresh_expires_at: row.refresh_expires_at,
        })
    }
}

/// An error unless the codec has a cipher (for `encrypt_clear_rows`).
#[cfg(feature = "encryption")]
pub(crate) fn require_cipher(codec: &Codec) -> Result<(), Error> {
    if codec.encrypted() {
        Ok(())
    } else {
        Err(Error::Configuration {
            setting: "encrypt_clear_rows".to_owned(),
            message: "the store has no TokenCipher: call with_cipher first".to_owned(),
        })
    }
}

/// SHA-256 of a refresh token: what compare-and-swap compares (the token itself may be
/// encrypted with a random nonce, so it cannot be compared in SQL).
pub(crate) fn fingerprint(refresh: &RefreshToken) -> Vec<u8> {
    Sha256::digest(refresh.secret().as_bytes()).to_vec()
}

/// Milliseconds since the Unix epoch (informational columns).
pub(crate) fn millis(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

/// `what`, naming the key by its [`store_key_hash`](super::store_key_hash) (never the key).
pub(crate) fn of_key(what: &str, key: &str) -> String {
    format!("{what} of key {}", super::store_key_hash(key))
}

/// An [`Error::TokenStore`] without a source.
pub(crate) fn store_error(message: impl Into<String>) -> Error {
    Error::TokenStore {
        message: message.into(),
        source: None,
    }
}

/// Maps a database error: the message says what was being done; the source is the driver's
/// error (which carries SQL state and server messages, never our bound values).
pub(crate) fn db_error(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Error {
    let what = what.into();
    move |e| Error::TokenStore {
        message: what,
        source: Some(Box::new(e)),
    }
}

/// A 64-bit lock id for `key` (same in every process).
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn lock_id(key: &str) -> i64 {
    let digest = Sha256::new()
        .chain_update(b"smartcar-sdk refresh lock\0")
        .chain_update(key.as_bytes())
        .finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens {
            access_token: AccessToken::new("access-1"),
            refresh_token: RefreshToken::new("refresh-1"),
            expires_at: chrono::Utc::now(),
            refresh_expires_at: chrono::Utc::now() + chrono::Duration::days(60),
        }
    }

    #[test]
    fn clear_rows_round_trip_exactly() {
        let codec = Codec::default();
        let t = tokens();
        let bytes = codec.seal("k", &t).unwrap();
        assert_eq!(bytes[0], CLEAR);
        assert_eq!(codec.open("k", &bytes, Clear::AsConfigured).unwrap(), t);
    }

    #[test]
    fn garbage_is_an_error_without_content() {
        let codec = Codec::default();
        for bytes in [&b""[..], b"\x00{\"access_token\":\"secret-x\"", b"\x07abc"] {
            let e = codec.open("k", bytes, Clear::AsConfigured).unwrap_err();
            assert!(!format!("{e} {e:?}").contains("secret-x"), "{e:?}");
        }
    }

    #[test]
    fn lock_ids_differ_by_key() {
        assert_eq!(lock_id("a"), lock_id("a"));
        assert_ne!(lock_id("a"), lock_id("b"));
    }
}
