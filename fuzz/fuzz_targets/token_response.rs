//! Token-endpoint answers (code exchange, refresh, client credentials), through `oauth2`'s
//! parsing and the SDK's mapping. The first line is `<status> <code|refresh|client>`, then
//! headers, an empty line and the body. Properties: never panics; the secret sent (code,
//! refresh token or client secret) never appears in an error's `Display` or `Debug`, not even
//! truncated, whatever the platform echoes; a refused refresh token below 500 (except 401 and
//! 429) is `ReauthorizationRequired`; tokens received are redacted in `Debug`; an expiry is at
//! most a year away, whatever `expires_in` says.
//!
//! And nothing the endpoint *returns* that may be a token reaches an error (issue 15, bug 1):
//! a JSON string value of the answer, of 12 characters or more — every one in a 2xx answer
//! (where tokens are issued, so any value may be one), and in any other answer those under a
//! token key (`access_token`, `refresh_token`, `id_token`) that the body does not repeat
//! elsewhere (an error description may legitimately be shown) — appears in the error's
//! `Display` or `Debug` only if it also appears in the error for the same answer with that
//! value replaced by filler of the same length. That exemption is what keeps the property
//! true and still meaningful: a value equal to one of the SDK's own words (`refresh_token`,
//! `POST /oauth/token`, a media type or request id taken from the headers) shows up whether
//! the body carries it or not, whereas a value copied from the body disappears with it.
//! Values are found by scanning the text, so truncated JSON counts too.
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
            let shown = format!("{e} {e:?}");
            let success = (200..300).contains(&m.status);
            let body_text = String::from_utf8_lossy(m.body);
            for s in common::json_strings(m.body) {
                let value = s.value.as_str();
                if value.chars().count() < 12 || !shown.contains(value) {
                    continue;
                }
                // The OAuth `error` code is shown on purpose (it says what went wrong), in
                // whatever answer carries it; the property is about the other values.
                if s.key.as_deref() == Some("error") {
                    continue;
                }
                let token_key = matches!(
                    s.key.as_deref(),
                    Some("access_token" | "refresh_token" | "id_token")
                );
                if !success && (!token_key || body_text.matches(value).count() > 1) {
                    continue;
                }
                let Some(other) = common::without(m.body, value) else {
                    continue;
                };
                let again = token_response(grant, secret, m.status, &m.headers, &other);
                let ours = again.is_err_and(|e| format!("{e} {e:?}").contains(value));
                assert!(
                    ours,
                    "a value the endpoint returned reached the error: {value:?} in {shown}"
                );
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
