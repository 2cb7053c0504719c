//! Encryption of tokens at rest (feature `encryption`).

// Used by the SQL stores; alone, the feature only exposes the type.
#![cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]

use std::fmt;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::Error;

fn store_error(message: &str) -> Error {
    Error::TokenStore {
        message: message.to_owned(),
        source: None,
    }
}

const NONCE_LEN: usize = 12;

/// Encrypts the token values the SQL stores write (ChaCha20-Poly1305, a random 96-bit nonce
/// per write, the store key as associated data so a row cannot be moved to another key).
///
/// Off by default: without it the token values are stored in clear and the database's own
/// access control protects them. With it, someone who reads the database (a backup, a replica,
/// a leaked dump) learns nothing but expiry times. Keep the 32-byte key outside the database
/// (a secret manager, an environment variable); losing it means every user must reconnect.
/// A store with a cipher still reads rows written in clear (and encrypts them on the next
/// write), so encryption can be turned on for an existing table. Once every row is encrypted
/// (the stores' `encrypt_clear_rows` does it in one pass), the stores' `require_encryption`
/// makes a clear row an error ([`ClearTokensRefused`]) instead of something read: someone who
/// can write to the database then cannot plant tokens of their own choosing.
///
/// `Debug` never shows the key.
///
/// ```
/// let cipher = smartcar::store::TokenCipher::from_hex(
///     "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
/// )?;
/// assert_eq!(format!("{cipher:?}"), "TokenCipher([redacted])");
/// # Ok::<(), smartcar::Error>(())
/// ```
#[derive(Clone)]
pub struct TokenCipher {
    aead: ChaCha20Poly1305,
}

impl TokenCipher {
    /// A cipher with this 256-bit key.
    ///
    /// ```
    /// let cipher = smartcar::store::TokenCipher::new([7u8; 32]); // use a random key of your own
    /// # let _ = cipher;
    /// ```
    pub fn new(key: [u8; 32]) -> Self {
        TokenCipher {
            aead: ChaCha20Poly1305::new(Key::from_slice(&key)),
        }
    }

    /// A cipher with a key given as 64 hex digits (e.g. from `openssl rand -hex 32`).
    ///
    /// ```no_run
    /// let key = std::env::var("TOKEN_KEY").expect("TOKEN_KEY is set");
    /// let cipher = smartcar::store::TokenCipher::from_hex(&key)?;
    /// # let _ = cipher;
    /// # Ok::<(), smartcar::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] when it is not 64 hex digits (the value is not echoed).
    pub fn from_hex(key: &str) -> Result<Self, Error> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(key.trim(), &mut bytes).map_err(|_| Error::Configuration {
            setting: "TokenCipher key".to_owned(),
            message: "expected 64 hex digits (32 bytes)".to_owned(),
        })?;
        Ok(Self::new(bytes))
    }

    fn aad(key: &str) -> Vec<u8> {
        let mut aad = b"smartcar-sdk tokens v1\0".to_vec();
        aad.extend_from_slice(key.as_bytes());
        aad
    }

    /// nonce ‖ ciphertext+tag.
    pub(crate) fn seal(&self, key: &str, plain: &[u8]) -> Result<Vec<u8>, Error> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = Self::aad(key);
        let sealed = self
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| store_error("cannot encrypt tokens"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend(sealed);
        Ok(out)
    }

    pub(crate) fn open(&self, key: &str, data: &[u8]) -> Result<Vec<u8>, Error> {
        if data.len() < NONCE_LEN {
            return Err(store_error("the stored tokens are truncated"));
        }
        let (nonce, sealed) = data.split_at(NONCE_LEN);
        let aad = Self::aad(key);
        self.aead
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| {
                store_error(
                    "the stored tokens cannot be decrypted (wrong key, or the row was altered or moved to another key)",
                )
            })
    }
}

/// Why a SQL store that requires encryption (`require_encryption` of `SqliteTokenStore` and
/// `PostgresTokenStore`) refused the tokens stored under a key: they are stored in clear.
///
/// The source of the [`Error::TokenStore`] that `load` (and a compare-and-swap that reads the
/// row back) returns. What to do: encrypt the rows written before encryption was turned on,
/// once, with `encrypt_clear_rows` on a store that has the cipher; or delete the row, so that
/// the user connects again. A clear row that appears after that was written by something
/// without the key: find out what.
///
/// ```
/// # fn demo(e: &smartcar::Error) {
/// use std::error::Error as _;
/// if let Some(refused) = e.source().and_then(|s| s.downcast_ref::<smartcar::store::ClearTokensRefused>()) {
///     eprintln!("clear tokens under key {}", refused.key_hash());
/// }
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClearTokensRefused {
    key_hash: String,
}

impl ClearTokensRefused {
    pub(crate) fn new(key: &str) -> Self {
        ClearTokensRefused {
            key_hash: super::store_key_hash(key),
        }
    }

    /// The [`store_key_hash`](crate::store_key_hash) of the key whose row is in clear.
    ///
    /// ```
    /// # fn demo(refused: &smartcar::store::ClearTokensRefused) {
    /// println!("{}", refused.key_hash());
    /// # }
    /// ```
    pub fn key_hash(&self) -> &str {
        &self.key_hash
    }
}

impl fmt::Display for ClearTokensRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the tokens under key {} are stored in clear and this store requires encryption",
            self.key_hash
        )
    }
}

impl std::error::Error for ClearTokensRefused {}

impl fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenCipher([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding_to_the_key() {
        let c = TokenCipher::new([1; 32]);
        let sealed = c.seal("alice", b"secret-value").unwrap();
        assert!(!sealed.windows(12).any(|w| w == b"secret-value"));
        assert_eq!(c.open("alice", &sealed).unwrap(), b"secret-value");
        assert!(c.open("bob", &sealed).is_err(), "bound to the key");
        assert!(TokenCipher::new([2; 32]).open("alice", &sealed).is_err());
        assert_ne!(
            c.seal("alice", b"secret-value").unwrap(),
            sealed,
            "fresh nonce"
        );
        assert!(c.open("alice", &sealed[..5]).is_err());
    }

    #[test]
    fn bad_hex_keys_are_configuration_errors_without_the_value() {
        let e = TokenCipher::from_hex("zz-not-a-key").unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Configuration);
        assert!(!e.to_string().contains("zz-not-a-key"));
        assert!(TokenCipher::from_hex(&"ab".repeat(31)).is_err());
    }
}
