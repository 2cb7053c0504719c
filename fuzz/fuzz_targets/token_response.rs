//! Token-endpoint answers (code exchange, refresh, client credentials), through `oauth2`'s
//! parsing and the SDK's mapping. The first line is `<status> <code|refresh|client>`, then
//! headers, an empty line and the body. Properties: never panics; the secret sent (code,
//! refresh token or client secret) never appears in an error's `Display` or `Debug`, not even
//! truncated, whatever the platform echoes; a refused refresh token below 500 (except 401 and
//! 429) is `ReauthorizationRequired`; tokens received are redacted in `Debug`; an expiry is at
//! most a year away, whatever `expires_in` says.

#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use smartcar::ErrorKind;
use smartcar::fuzzing::{CLIENT_SECRET, TokenGrant, TokenOutcome, token_response};

const CODE: &str = "code-SECRET-4f9e2a7713c0";
const REFRESH: &str = "refresh-SECRET-b81d06e5a2";

fuzz_target!(|data: &[u8]| {
    let m = common::parse(data, 200);
    let (grant, secret) = match m.word {
        "refresh" => (TokenGrant::Refresh, REFRESH),
        "client" => (TokenGrant::ClientCredentials, CLIENT_SECRET),
        _ => (TokenGrant::Code, CODE),
    };
    if !(100..=999).contains(&m.status) {
        return; // not an HTTP status: no response can carry it
    }
    match token_response(grant, secret, m.status, &m.headers, m.body) {
        Ok(TokenOutcome::User(tokens)) => {
            assert!(grant != TokenGrant::ClientCredentials);
            let debug = format!("{tokens:?}");
            assert!(
                !debug.contains(tokens.access_token.secret())
                    || tokens.access_token.secret().len() < 12
            );
            assert!(tokens.expires_at <= chrono::Utc::now() + chrono::Duration::days(367));
        }
        Ok(TokenOutcome::Application(token)) => {
            assert_eq!(grant, TokenGrant::ClientCredentials);
            let _ = format!("{token:?}");
            assert!(token.expires_at <= chrono::Utc::now() + chrono::Duration::days(367));
        }
        Err(e) => {
            for text in [e.to_string(), format!("{e:?}")] {
                assert!(!common::leaks(&text, secret, data), "secret leaked: {text}");
            }
            if grant == TokenGrant::Refresh && e.kind() == ErrorKind::OAuth {
                let status = e.status().unwrap_or(0);
                assert!(
                    status >= 500 || matches!(status, 401 | 429),
                    "refused refresh at {status} not reauth"
                );
            }
        }
    }
});
