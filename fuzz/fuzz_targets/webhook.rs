//! Webhook deliveries: `WebhookVerifier::verify` and `Delivery::parse`. The first line is the
//! management token (the key), the second a signature header as received, the rest the body.
//! Properties: never panics; the right signature (lower or upper case, with spaces around)
//! verifies and gives what `Delivery::parse` gives; a body with one bit flipped, another key or
//! a truncated signature fails with `BadSignature`; a fuzzed header verifies only if it is the
//! right signature; the key never shows in `Debug`; the challenge answer is the HMAC.

#![no_main]

use libfuzzer_sys::fuzz_target;
use smartcar::webhooks::{Delivery, WebhookError, WebhookVerifier, sign};

fn line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

fuzz_target!(|data: &[u8]| {
    let (key, rest) = line(data);
    let (header, body) = line(rest);
    let amt = String::from_utf8_lossy(key).into_owned();
    let verifier = WebhookVerifier::new(amt.clone()).max_body(64 * 1024);
    let right = sign(&amt, body);
    assert_eq!(right.len(), 64);

    let verified = verifier.verify(Some(&right), body);
    if body.len() > 64 * 1024 {
        assert!(matches!(verified, Err(WebhookError::BodyTooLarge { .. })));
        return;
    }
    assert_eq!(verified, Delivery::parse(body));
    let upper = format!("  {}\t", right.to_uppercase());
    assert_eq!(verifier.verify(Some(&upper), body), verified);

    let bad = Err(WebhookError::BadSignature);
    if !body.is_empty() {
        let mut flipped = body.to_vec();
        let i = (amt.len() + body.len() * 7) % body.len();
        flipped[i] ^= 1 << (body.len() % 8);
        assert_eq!(verifier.verify(Some(&right), &flipped), bad);
    }
    let other = WebhookVerifier::new(format!("{amt}x"));
    assert_eq!(other.verify(Some(&right), body), bad);
    assert_eq!(verifier.verify(Some(&right[..62]), body), bad);
    assert_eq!(
        verifier.verify(None, body),
        Err(WebhookError::MissingSignature)
    );

    let header = String::from_utf8_lossy(header);
    match verifier.verify(Some(&header), body) {
        Ok(_) => assert_eq!(header.trim().to_lowercase(), right),
        Err(WebhookError::BadSignature | WebhookError::MissingSignature) => {}
        Err(WebhookError::Malformed(_)) => assert_eq!(header.trim().to_lowercase(), right),
        Err(e) => panic!("unexpected {e:?}"),
    }

    if amt.len() >= 8 && !"WebhookVerifier { amt: \"[redacted]\", max_body: 65536 }".contains(&amt)
    {
        assert!(!format!("{verifier:?}").contains(&amt));
    }
    if let Ok(challenge) = std::str::from_utf8(body) {
        assert_eq!(
            verifier.challenge_response(challenge)["challenge"],
            sign(&amt, body)
        );
    }
    if let Ok(delivery) = &verified {
        let _ = format!("{delivery:?}");
    }
});
