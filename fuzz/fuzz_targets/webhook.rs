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
    // An empty or blank key is refused: an HMAC keyed with it would let anyone sign.
    let Ok(verifier) = WebhookVerifier::new(amt.clone()) else {
        assert!(amt.trim().is_empty(), "refused a real key");
        return;
    };
    assert!(!amt.trim().is_empty(), "accepted an empty key");
    // The age check is its own property below; here every signed body must verify.
    let verifier = verifier.max_body(64 * 1024).without_max_age();
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
    let other = WebhookVerifier::new(format!("{amt}x")).expect("not empty");
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

    let debug = format!("{verifier:?}");
    if amt.len() >= 8
        && !"WebhookVerifier { amt: \"[redacted]\", max_body: 65536, max_age: None, .. }"
            .contains(&amt)
    {
        assert!(!debug.contains(&amt));
    }

    // Replay window: with a clock at the epoch, a v3 delivery verifies exactly when its signed
    // `deliveredAt` is within the max age before now and the allowed skew after it.
    if let Ok(d) = &verified {
        let now = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH + chrono::Duration::days(20_000);
        let aged = verifier
            .clone()
            .max_age(std::time::Duration::from_secs(300))
            .clock(move || now);
        let outcome = aged.verify(Some(&right), body);
        match d.delivered_at {
            None => assert_eq!(outcome.as_ref(), Ok(d)),
            Some(at) => {
                let age = now.timestamp_millis().saturating_sub(at);
                match outcome {
                    Ok(_) => assert!((-60_000..=300_000).contains(&age), "age {age} accepted"),
                    Err(WebhookError::TooOld { .. }) => assert!(age > 300_000),
                    Err(WebhookError::FromTheFuture { .. }) => assert!(age < -60_000),
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
        }
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
