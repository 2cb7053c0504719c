//! The Rust SDK for the [Smartcar](https://smartcar.com) connected-car API.
//!
//! This crate (package `smartcar-sdk`, library `smartcar`) will hold the high-level client:
//! the OAuth flow, the token lifecycle, and one typed method per endpoint on vehicle handles.
//! It is a placeholder for now; the generated low-level client is available as [`api`].
//!
//! ```
//! use smartcar::api::Auth;
//!
//! let auth = Auth::bearer("an-access-token");
//! assert_eq!(format!("{auth:?}"), "Auth::Bearer([redacted])");
//! ```

#![deny(missing_docs)]

/// The low-level client generated from the OpenAPI description (the `smartcar-api` crate).
pub use smartcar_api as api;
