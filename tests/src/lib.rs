//! End-to-end tests of the Smartcar SDK.
//!
//! The tests in `tests/` run the high-level `smartcar` crate against the simulator
//! (`smartcar-sim`) on 127.0.0.1 — never against mocks of our own client — and snapshot wire
//! requests with insta. This library will hold the helpers they share (starting a simulator,
//! building a client pointed at it, redacting secrets from captured requests).

#![deny(missing_docs)]

pub mod spec;
