//! How the simulator's routes come from the spec's operation table ([`smartcar_api::ops`]), and
//! the few paths that are the simulator's own.
//!
//! Every route of the simulated API is registered with an operation's path template
//! (`ops::GET_ODOMETER.path`, which axum reads as it is) and the operation's method, through
//! [`Route`]; a handler that needs a permission takes it from the operation
//! (`op.permissions`). So the simulator cannot serve a path, a method or a permission the spec
//! does not document, and a misspelled operation is a compile error.
//!
//! The paths that are *not* operations of the Smartcar API live in [`sim_paths`], and nowhere
//! else.

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodFilter, MethodRouter, on};
use smartcar_api::op::{Method, Operation};
use smartcar_api::ops;

/// Paths the simulator serves that are not operations of the Smartcar API.
pub(crate) mod sim_paths {
    use smartcar_api::ops;

    /// The Connect page's approval form posts back to the page's own path (the form's target is
    /// not a documented operation; Smartcar's real form posts elsewhere).
    pub(crate) const CONNECT_FORM: &str = ops::AUTHORIZE.path;

    /// Liveness probe of the simulator itself (`"ok"`).
    pub(crate) const HEALTHZ: &str = "/healthz";

    /// Prefix of the control API (`crate::control`): no Smartcar host has a path under it.
    pub(crate) const CONTROL: &str = "/_sim";

    /// Whether `path` belongs to the control API (never faulted; `/healthz` is, for the fault
    /// tests' sake).
    pub(crate) fn is_control_path(path: &str) -> bool {
        path.strip_prefix(CONTROL)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// The method filter of an operation's method.
fn filter(method: Method) -> MethodFilter {
    match method {
        Method::Get => MethodFilter::GET,
        Method::Post => MethodFilter::POST,
        Method::Put => MethodFilter::PUT,
        Method::Patch => MethodFilter::PATCH,
        Method::Delete => MethodFilter::DELETE,
    }
}

/// One path of the API with the handlers of its operations (one per method).
pub(crate) struct Route<S> {
    path: &'static str,
    /// Another version segment to serve the path under (see [`Route::under`]).
    segment: Option<&'static str>,
    methods: MethodRouter<S>,
}

impl<S: Clone + Send + Sync + 'static> Route<S> {
    /// The route of `op`, answered by `handler`.
    pub(crate) fn new<H, T>(op: Operation, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        Route {
            path: op.path,
            segment: None,
            methods: on(filter(op.method), handler),
        }
    }

    /// Adds `op`, another operation on the same path, answered by `handler`.
    ///
    /// # Panics
    ///
    /// When `op` is on another path: the routes are built from constants, so this is a bug
    /// that every simulator start (and the crate's tests) would show at once.
    pub(crate) fn and<H, T>(self, op: Operation, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        assert_eq!(
            op.path, self.path,
            "{} is not on the path of the route it is added to",
            op.id
        );
        Route {
            methods: self.methods.on(filter(op.method), handler),
            ..self
        }
    }

    /// The path template.
    pub(crate) fn path(&self) -> &'static str {
        self.path
    }

    /// The handlers; any other method gets axum's 405.
    pub(crate) fn handlers(self) -> MethodRouter<S> {
        self.methods
    }

    /// The handlers, with `fallback` for any other method.
    pub(crate) fn methods<H, T>(self, fallback: H) -> MethodRouter<S>
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.methods.fallback(fallback)
    }

    /// Registers the route on `router` at its path and at its path with a trailing `/` (the
    /// platform accepts both: the official Node SDK calls `GET /v3/vehicles/{id}/` and its live
    /// end-to-end tests pass), other methods answered by `fallback`.
    pub(crate) fn register<H, T>(self, router: Router<S>, fallback: H) -> Router<S>
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let path = match self.segment {
            Some(segment) => with_segment(self.path, segment),
            None => self.path.to_owned(),
        };
        let methods = self.methods(fallback);
        router
            .route(&path, methods.clone())
            .route(&format!("{path}/"), methods)
    }

    /// The same route served under another version segment: `/v1.0/vehicles/{vehicle_id}`
    /// for the operation `/v2.0/vehicles/{vehicle_id}` (how the v2.0 vehicle API is also served
    /// as v1.0). Only [`Route::register`] uses the segment; [`Route::path`] stays the
    /// operation's.
    pub(crate) fn under(self, segment: &'static str) -> Self {
        Route {
            segment: Some(segment),
            ..self
        }
    }
}

/// `path` with its first segment replaced by `segment` (`/v2.0/user` → `/v1.0/user`).
pub(crate) fn with_segment(path: &str, segment: &str) -> String {
    let rest = path
        .strip_prefix('/')
        .map_or(path, |p| &p[first_segment(path).len().min(p.len())..]);
    format!("/{segment}{rest}")
}

/// The first segment of a path (`v2.0` of `/v2.0/vehicles`, `oauth` of `/oauth/token`).
pub(crate) fn first_segment(path: &str) -> &str {
    path.trim_start_matches('/').split('/').next().unwrap_or("")
}

/// The API version segment of the v2.0 API (`v2.0`), from the spec.
pub(crate) fn v2_segment() -> &'static str {
    first_segment(ops::GET_USER.path)
}

/// The API version segment of the v3 APIs (`v3`), from the spec.
pub(crate) fn v3_segment() -> &'static str {
    first_segment(ops::GET_VEHICLE_V3.path)
}

/// The API version segment of the v1.0 API (`v1.0`), from the spec (its one documented
/// operation is the v1.0 compatibility check; the v2.0 vehicle API is also served under it,
/// see `v2::routes`).
pub(crate) fn v1_segment() -> &'static str {
    first_segment(ops::GET_COMPATIBILITY_V1.path)
}

/// Whether `segment` is a well-formed version (`v` + digits + `.` + digits: `v99999999.99`)
/// that no operation of the spec has. The platform serves those as its latest version, v2.0
/// (python-sdk `tests/e2e/test_exception.py::test_vehicle_bad_api_version`, live: "Smartcar
/// API will default to latest version number, so long as version follows the format
/// `\d+\.\d+`"); a segment of another shape (`vJohnny%20Appleseed`) is a 404 there.
pub(crate) fn is_version_alias(segment: &str) -> bool {
    let Some((major, minor)) = segment
        .strip_prefix('v')
        .and_then(|rest| rest.split_once('.'))
    else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(major) && digits(minor) && !is_known_version(segment)
}

/// A v3 `links` value: an operation's path relative to the v3 base URLs
/// (`https://vehicle.api.smartcar.com/v3`, `https://management.api.smartcar.com/v3`), as the
/// platform writes its links (`/vehicles/{id}/signals/{code}`, `/webhooks/{id}`).
pub(crate) fn v3_link(path: String) -> String {
    match path
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(v3_segment()))
    {
        Some(rest) => rest.to_string(),
        None => path,
    }
}

/// The operation of the spec a request with `method` reached, by the route `template` it
/// matched (`MatchedPath`; a trailing `/` is the same route, see [`Route::register`]).
pub(crate) fn operation_at(method: &str, template: &str) -> Option<&'static Operation> {
    let template = template.strip_suffix('/').unwrap_or(template);
    ops::ALL
        .iter()
        .find(|op| op.method.as_str() == method && op.path == template)
}

/// Whether `segment` is the version segment of some operation of the spec (`v1.0`, `v2.0`,
/// `v3`).
pub(crate) fn is_known_version(segment: &str) -> bool {
    ops::ALL
        .iter()
        .any(|op| op.path.starts_with("/v") && first_segment(op.path) == segment)
}

/// Whether `path` is one of the OAuth token endpoints (the authorization-code / refresh grant
/// or the client-credentials grant), with or without more after it.
pub(crate) fn is_token_endpoint(path: &str) -> bool {
    path.starts_with(ops::EXCHANGE_TOKEN.path)
        || path.starts_with(ops::REQUEST_APPLICATION_TOKEN.path)
}

/// The prefix of the per-vehicle v2.0 paths (`/v2.0/vehicles/{vehicle_id}`), from the spec.
pub(crate) fn v2_vehicle_prefix() -> &'static str {
    ops::GET_VEHICLE_ATTRIBUTES.path
}

/// `op`'s path relative to the vehicle (`/odometer`, `""` for the attributes), when it is a
/// per-vehicle v2.0 path.
pub(crate) fn v2_relative(op: &Operation) -> Option<&'static str> {
    op.path.strip_prefix(v2_vehicle_prefix())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_relative_paths_come_from_the_table() {
        assert_eq!(v2_segment(), "v2.0");
        assert_eq!(v3_segment(), "v3");
        assert!(is_known_version("v1.0"));
        assert!(!is_known_version("v4"));
        assert!(!is_known_version("oauth"));
        assert_eq!(v1_segment(), "v1.0");
        assert!(is_version_alias("v99999999.99"));
        assert!(is_version_alias("v2.1"));
        for not_alias in [
            "v2.0",
            "v1.0",
            "v3",
            "v4",
            "vJohnny%20Appleseed",
            "v.1",
            "v1.",
            "oauth",
        ] {
            assert!(!is_version_alias(not_alias), "{not_alias}");
        }
        assert_eq!(
            with_segment(ops::GET_USER.path, "v1.0"),
            format!("/v1.0{}", &ops::GET_USER.path[5..])
        );
        assert_eq!(v2_relative(&ops::GET_ODOMETER), Some("/odometer"));
        assert_eq!(v2_relative(&ops::GET_VEHICLE_ATTRIBUTES), Some(""));
        assert_eq!(v2_relative(&ops::GET_VEHICLE_V3), None);
        assert!(is_token_endpoint(&ops::ExchangeToken::path()));
        assert!(is_token_endpoint(&format!(
            "{}/",
            ops::RequestApplicationToken::path()
        )));
        assert!(!is_token_endpoint(&ops::Authorize::path()));
    }

    #[test]
    #[should_panic(expected = "get_odometer is not on the path")]
    fn an_operation_on_another_path_is_refused() {
        let _ = Route::<()>::new(ops::GET_VIN, || async {}).and(ops::GET_ODOMETER, || async {});
    }
}
