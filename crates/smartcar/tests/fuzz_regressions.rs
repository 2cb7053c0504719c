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

/// Issue 15, bug 1: a 2xx token answer the SDK cannot read kept a 200-character excerpt of
/// the body (the fresh tokens) and serde's message, which quotes the offending value. Now
/// neither: the message is the SDK's own, and it still says what was wrong and where.
#[test]
fn an_unreadable_2xx_token_answer_keeps_nothing_of_the_body() {
    let access = "fresh-ACCESS-9c2e7b1d40f3";
    let refresh = "fresh-REFRESH-5a8d0e3c6b21";
    let cases: [(&str, String); 4] = [
        (
            "`expires_in` has a value of the wrong type",
            format!(
                r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":"{refresh}","refresh_token":"{refresh}"}}"#
            ),
        ),
        (
            "it ends before its JSON does",
            format!(r#"{{"access_token":"{access}","refresh_token":"{refresh}"#),
        ),
        (
            "it has no `access_token`",
            format!(r#"{{"token":"{access}","refresh_token":"{refresh}"}}"#),
        ),
        (
            "it is not valid JSON",
            format!(r#"{{"access_token":"{access}" "refresh_token":"{refresh}"}}"#),
        ),
    ];
    for grant in [
        TokenGrant::Code,
        TokenGrant::Refresh,
        TokenGrant::ClientCredentials,
    ] {
        for (said, body) in &cases {
            let e = token_response(grant, "sent-secret-123", 200, &json(), body.as_bytes())
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Decode);
            let smartcar::Error::Decode(d) = &e else {
                unreachable!()
            };
            assert!(d.body_excerpt.is_empty(), "{d:?}");
            assert!(d.message.contains(said), "{grant:?}: {}", d.message);
            for text in [e.to_string(), format!("{e:?}")] {
                assert!(!text.contains("fresh-"), "{text}");
            }
        }
    }
    // An HTML page with status 200, and an application-token answer to a code exchange.
    let mut html = HeaderMap::new();
    html.insert("content-type", HeaderValue::from_static("text/html"));
    let page = format!("<p>{access} {refresh}</p>");
    let e = token_response(TokenGrant::Code, "c-1234", 200, &html, page.as_bytes()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.to_string().contains("text/html"), "{e}");
    assert!(!format!("{e} {e:?}").contains("fresh-"), "{e:?}");
    let app_answer =
        format!(r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":3600}}"#);
    let e = token_response(
        TokenGrant::Code,
        "c-1234",
        200,
        &json(),
        app_answer.as_bytes(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("no refresh_token"), "{e}");
    assert!(!format!("{e} {e:?}").contains("fresh-"), "{e:?}");
}

/// Issue 15, bug 1: a token endpoint's error page (status ≥ 400, not an OAuth error) was
/// quoted in the error: it is described by status, media type and size only.
#[test]
fn a_token_endpoint_error_page_is_not_quoted() {
    let mut html = HeaderMap::new();
    html.insert(
        "content-type",
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let page = "<h1>Bad Gateway</h1><pre>fresh-ACCESS-9c2e7b1d40f3</pre>";
    let e = token_response(TokenGrant::Refresh, "r-1234", 502, &html, page.as_bytes()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Api);
    assert_eq!(e.status(), Some(502));
    let text = e.to_string();
    assert!(text.contains("HTTP 502 Bad Gateway"), "{text}");
    assert!(text.contains("text/html"), "{text}");
    assert!(!format!("{text} {e:?}").contains("fresh-"), "{e:?}");
}

/// Issue 15, bug 1: an API error body echoing the call's own bearer token, as sent and
/// URL-encoded, is redacted (`RawResponse::checked`).
#[test]
fn an_api_error_echoing_the_bearer_token_is_redacted() {
    let token = "tok/en+A=5e1f0c9d7a2b";
    let body = r#"{"type":"AUTHENTICATION","description":"token tok/en+A=5e1f0c9d7a2b or tok%2Fen%2BA%3D5e1f0c9d7a2b or tok%2fen%2bA%3d5e1f0c9d7a2b"}"#;
    let e = smartcar::fuzzing::decode_response_with_token::<serde_json::Value>(
        "GET /v2.0/vehicles/{vehicle_id}/odometer",
        token,
        401,
        &json(),
        body.as_bytes(),
    )
    .unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(!text.contains("5e1f0c9d7a2b"), "{text}");
    assert!(
        text.contains("token [redacted] or [redacted] or [redacted]"),
        "{text}"
    );
}

/// responses: a signal value re-encoded and decoded again came back as another number
/// (`9.146920931147969e139` → `9.146920931147968e139`): serde_json parsed floats inexactly
/// until the workspace enabled its `float_roundtrip` feature. Vehicle data read and written
/// back must keep its numbers.
#[test]
fn numbers_survive_a_re_encoding() {
    for value in [
        "91469209311479685915478867101691508573052309614601829772042177877654512675167294466822669642539097171683712811557706604211582630250510548992.0",
        "115071.50046583333",
        "5.66927505629344e168",
    ] {
        let body = format!(
            r#"{{"id":"odometer-traveleddistance","type":"signal","attributes":{{"code":"odometer-traveleddistance","status":{{"value":"SUCCESS"}},"body":{{"unit":"kilometers","value":{value}}}}}}}"#
        );
        let r = smartcar::fuzzing::decode_response::<smartcar::api::types::SignalResource>(
            "GET /fuzz",
            200,
            &json(),
            body.as_bytes(),
        )
        .unwrap();
        let once = serde_json::to_string(&r.data).unwrap();
        let again: smartcar::api::types::SignalResource = serde_json::from_str(&once).unwrap();
        assert_eq!(
            serde_json::to_value(&r.data).unwrap(),
            serde_json::to_value(&again).unwrap(),
            "{value} → {once}"
        );
    }
}

/// token_response: a 2xx answer that is not JSON is described by its media type; a media type
/// that carries the secret sent (`apqlcode-SECRET-…ication/json`, found by the fuzz smoke)
/// reached the message, because only the request id was redacted.
#[test]
fn a_secret_echoed_in_the_content_type_of_a_non_json_answer_is_redacted() {
    let code = "code-SECRET-4f9e2a7713c0";
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("apqlcode-SECRET-4f9e2a7713c0ication/json"),
    );
    let e = token_response(TokenGrant::Code, code, 200, &headers, b"not json").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    for text in [e.to_string(), format!("{e:?}")] {
        assert!(!text.contains(code), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }
}
