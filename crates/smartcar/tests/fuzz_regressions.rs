//! Inputs the fuzz targets (`fuzz/`, `cargo xtask fuzz`) found to break a property, replayed
//! through the same entry points, so that the fixes stay fixed without a fuzzer.

use http::{HeaderMap, HeaderValue};
use smartcar::ErrorKind;
use smartcar::fuzzing::{TokenGrant, TokenOutcome, token_response};

fn json() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h
}

/// token_response: a refresh token echoed in the OAuth `error` code (not only in
/// `error_description`) reached the error message.
#[test]
fn a_secret_echoed_in_the_oauth_error_code_is_redacted() {
    let refresh = "refresh-SECRET-b81d06e5a2";
    let body = br#"{"error":"invalid_grcf7ba rnteftoken refresh-SECRET-b81d06e5a2"}"#;
    let e = token_response(TokenGrant::Refresh, refresh, 400, &json(), body).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ReauthorizationRequired);
    for text in [e.to_string(), format!("{e:?}")] {
        assert!(!text.contains(refresh), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }
}

/// token_response: an `expires_in` too large for a date (here about 3 million years) made
/// `expires_at` overflow and panic.
#[test]
fn a_huge_expires_in_does_not_overflow() {
    let body = br#"{"access_token":"a","token_type":"Bearer","expires_in":99999999999999,"refresh_token":"r"}"#;
    let year = chrono::Duration::days(367);
    let Ok(TokenOutcome::User(tokens)) =
        token_response(TokenGrant::Code, "code-1", 200, &json(), body)
    else {
        panic!("a valid token response");
    };
    assert!(tokens.expires_at > chrono::Utc::now() + chrono::Duration::days(300));
    assert!(tokens.expires_at <= chrono::Utc::now() + year);
    let body = br#"{"access_token":"a","token_type":"Bearer","expires_in":18446744073709551615}"#;
    let Ok(TokenOutcome::Application(token)) =
        token_response(TokenGrant::ClientCredentials, "", 200, &json(), body)
    else {
        panic!("a valid token response");
    };
    assert!(token.expires_at <= chrono::Utc::now() + year);
}

/// token_response: an error status whose body is not an OAuth error is read as an API error;
/// a secret echoed in one of its fields (`code` here) reached the message, since only the
/// description was redacted.
#[test]
fn a_secret_echoed_in_a_non_oauth_error_body_is_redacted() {
    let code = "code-SECRET-4f9e2a7713c0";
    let body = br#"{"type":"X","code":"code-SECRET-4f9e2a7713c0"}"#;
    let e = token_response(TokenGrant::Code, code, 400, &json(), body).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Api);
    for text in [e.to_string(), format!("{e:?}")] {
        assert!(!text.contains(code), "{text}");
    }
}

/// token_response: a secret that straddles the 200-character cut of the body excerpt was cut
/// before it was redacted, leaving its first characters in the message.
#[test]
fn a_secret_at_the_excerpt_cut_is_not_half_kept() {
    let code = "code-SECRET-4f9e2a7713c0";
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("text/html"));
    headers.insert(
        "sc-request-id",
        HeaderValue::from_static("code-SECRET-4f9e2a7713c0"),
    );
    let body = format!("{}{code} tail", "x".repeat(190));
    let e = token_response(TokenGrant::Code, code, 502, &headers, body.as_bytes()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Api);
    for text in [e.to_string(), format!("{e:?}")] {
        assert!(!text.contains("code-SECRE"), "{text}");
    }
    let e = token_response(TokenGrant::Code, code, 200, &json(), body.as_bytes()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    for text in [e.to_string(), format!("{e:?}")] {
        assert!(!text.contains("code-SECRE"), "{text}");
    }
}
