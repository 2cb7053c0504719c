//! The Connect redirect (`Client::handle_redirect`) on any URL or query string. Properties:
//! never panics; a redirect is accepted for at most one of two different states; prefixing a
//! matching `state` makes any query pass the state check; an accepted code never shows in
//! `Debug`.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use smartcar::connect::State;
use smartcar::{Client, ErrorKind, Redirect};

const STATE: &str = "st-Zq81";

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    static CLIENT: OnceLock<Client> = OnceLock::new();
    let client =
        CLIENT.get_or_init(|| Client::builder().client_id("fuzz").build().expect("client"));
    let right = client.handle_redirect(&input, &State::new(STATE));
    let other = client.handle_redirect(&input, &State::new("st-Zq82"));
    let passed = |r: &Result<Redirect, smartcar::Error>| !matches!(r, Err(e) if e.kind() == ErrorKind::StateMismatch);
    assert!(
        !(passed(&right) && passed(&other)),
        "one redirect, two states"
    );
    for r in [&right, &other] {
        match r {
            Ok(Redirect::Code(_)) => assert_eq!(format!("{r:?}"), "Ok(Redirect::Code([redacted]))"),
            Ok(other) => {
                let _ = format!("{other:?}");
            }
            Err(e) => {
                let _ = (e.to_string(), format!("{e:?}"));
            }
        }
    }
    let query: String = input.chars().filter(|c| *c != '#' && *c != '?').collect();
    let prefixed = format!("https://app.example/cb?state={STATE}&{query}");
    let r = client.handle_redirect(&prefixed, &State::new(STATE));
    assert!(
        passed(&r),
        "state {STATE} first, yet a mismatch: {prefixed}"
    );
});
