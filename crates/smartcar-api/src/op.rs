//! What an operation of the spec *is*, as data: the types behind the generated [`ops`] table.
//!
//! `cargo xtask generate` writes one [`Operation`] constant per operation of
//! `openapi/smartcar.yaml` into [`ops`] (`ops::GET_ODOMETER`), one marker type implementing
//! [`Endpoint`] (`ops::GetOdometer`, which also builds the operation's path from named
//! arguments), and [`ops::ALL`]. The SDK, the simulator and the tests name operations through
//! these, so a misspelled operation is a compile error and a path, host, permission or
//! "is this a command" can only come from the spec.
//!
//! ```
//! use smartcar_api::op::{Endpoint, Host, Method};
//! use smartcar_api::ops;
//!
//! let op = ops::GET_ODOMETER;
//! assert_eq!(op.method, Method::Get);
//! assert_eq!(op.host, Host::Api);
//! assert_eq!(op.path, "/v2.0/vehicles/{vehicle_id}/odometer");
//! assert_eq!(op.permissions, ["read_odometer"]);
//! assert!(!op.command);
//! assert_eq!(ops::GetOdometer::path("abc"), "/v2.0/vehicles/abc/odometer");
//! // The response type comes with the marker type.
//! let _: Option<<ops::GetOdometer as Endpoint>::Response> = None::<smartcar_api::types::Odometer>;
//! ```
//!
//! [`ops`]: crate::ops
//! [`ops::ALL`]: crate::ops::ALL

use std::fmt;

/// The HTTP method of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
}

impl Method {
    /// The method's name, upper case (`"GET"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// The same method as an [`http::Method`](reqwest::Method).
    pub fn http(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Smartcar host an operation is served from (the spec's per-path `servers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Host {
    /// `https://connect.smartcar.com`: the browser-facing Connect pages.
    Connect,
    /// `https://auth.smartcar.com`: authorization-code and refresh-token grants.
    Auth,
    /// `https://iam.smartcar.com`: client-credentials application tokens.
    Iam,
    /// `https://api.smartcar.com`: Vehicle API v2.0 and compatibility.
    Api,
    /// `https://management.smartcar.com`: management API v2.0.
    Management,
    /// `https://vehicle.api.smartcar.com`: Vehicle API v3.
    Vehicle,
    /// `https://management.api.smartcar.com`: management API v3.
    ManagementV3,
    /// `https://compatibility.api.smartcar.com`: the Compatibility API v3 (public).
    Compatibility,
}

impl Host {
    /// Every host, in the order above.
    pub const ALL: [Host; 8] = [
        Host::Connect,
        Host::Auth,
        Host::Iam,
        Host::Api,
        Host::Management,
        Host::Vehicle,
        Host::ManagementV3,
        Host::Compatibility,
    ];

    /// Smartcar's production origin of this host (`https://api.smartcar.com`).
    pub const fn production(self) -> &'static str {
        match self {
            Host::Connect => "https://connect.smartcar.com",
            Host::Auth => "https://auth.smartcar.com",
            Host::Iam => "https://iam.smartcar.com",
            Host::Api => "https://api.smartcar.com",
            Host::Management => "https://management.smartcar.com",
            Host::Vehicle => "https://vehicle.api.smartcar.com",
            Host::ManagementV3 => "https://management.api.smartcar.com",
            Host::Compatibility => "https://compatibility.api.smartcar.com",
        }
    }
}

/// How an operation authenticates (the spec's security scheme).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Security {
    /// Nothing (Connect pages; the client-credentials grant carries its credentials in the
    /// body).
    None,
    /// A user's access token from Connect (`Authorization: Bearer`; scheme `smartcarConnect`).
    UserToken,
    /// An application token from the client-credentials grant (`Authorization: Bearer`;
    /// vehicle-scoped v3 calls add `sc-user-id`; scheme `applicationToken`).
    ApplicationToken,
    /// The client id and secret (`Authorization: Basic`; scheme `clientBasic`).
    ClientBasic,
    /// The application management token as a Basic password, user `default` (scheme
    /// `managementBasic`).
    ManagementBasic,
    /// The application management token as a bearer token (scheme `managementBearer`).
    ManagementBearer,
}

/// One operation of the spec. Constants of this type are generated into
/// [`ops`](crate::ops); nothing else should build one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Operation {
    /// The spec's `operationId` (`get_odometer`).
    pub id: &'static str,
    /// The spec's first tag (`vehicles`).
    pub tag: &'static str,
    /// The HTTP method.
    pub method: Method,
    /// The host it is served from.
    pub host: Host,
    /// The path template, parameters in braces (`/v2.0/vehicles/{vehicle_id}/odometer`), which
    /// is also an axum route.
    pub path: &'static str,
    /// The path parameters, in the order they appear in [`path`](Self::path).
    pub path_params: &'static [&'static str],
    /// The query parameters it documents.
    pub query_params: &'static [&'static str],
    /// How it authenticates.
    pub security: Security,
    /// The permissions (Connect scopes) it needs; empty when it needs none in particular.
    pub permissions: &'static [&'static str],
    /// `true` for a command: it acts on a vehicle and is never retried blindly (only when the
    /// request surely was not executed: a 429, or a connection that never opened).
    pub command: bool,
    /// `true` when sending it twice has the effect of sending it once (safe methods, `PUT`,
    /// `DELETE`, and operations marked `x-idempotent` in the spec). Never `true` for a
    /// command.
    pub idempotent: bool,
    /// `false` for an operation documented but not generated (`x-codegen-skip`: the Connect
    /// pages, answered with HTML and redirects).
    pub generated: bool,
    /// The name of the request body's type in [`types`](crate::types), if it has a body.
    pub request: Option<&'static str>,
    /// The success body's type as written in Rust (`types::Odometer`,
    /// `Vec<types::ServiceRecord>`); `None` for no JSON body.
    pub response: Option<&'static str>,
    /// For a v2.0 read the batch endpoint accepts (`x-batch` in the spec): its path relative to
    /// the vehicle, as a batch request names it (`/odometer`; `/` for the vehicle itself).
    pub batch_path: Option<&'static str>,
}

impl Operation {
    /// `METHOD /path/template`, how logs and errors name the operation.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The operation with this `operationId`.
    pub fn by_id(id: &str) -> Option<&'static Operation> {
        crate::ops::ALL.iter().find(|op| op.id == id)
    }

    /// The path with `args` filled in, in the order of [`path_params`](Self::path_params),
    /// each percent-encoded as a path segment; `None` when the count differs. For code that
    /// iterates [`ops::ALL`](crate::ops::ALL); a known operation's marker type has a `path`
    /// function with named arguments instead.
    ///
    /// ```
    /// use smartcar_api::ops;
    ///
    /// let path = ops::GET_SIGNAL.fill(&["v 1", "odometer-traveleddistance"]);
    /// assert_eq!(path.as_deref(), Some("/v3/vehicles/v%201/signals/odometer-traveleddistance"));
    /// assert_eq!(ops::GET_SIGNAL.fill(&["v1"]), None);
    /// ```
    pub fn fill(&self, args: &[&str]) -> Option<String> {
        if args.len() != self.path_params.len() {
            return None;
        }
        let mut out = String::with_capacity(self.path.len() + 40);
        let mut rest = self.path;
        for arg in args {
            let start = rest.find('{')?;
            let end = start + rest[start..].find('}')?;
            out.push_str(&rest[..start]);
            out.push_str(&encode_segment(arg));
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        Some(out)
    }

    /// Every permission some operation needs (its Connect scopes or `x-permissions`), sorted,
    /// each once: what a token that may do everything asks for.
    ///
    /// ```
    /// let all = smartcar_api::op::Operation::all_permissions();
    /// assert!(all.contains(&"read_odometer") && all.contains(&"control_security"));
    /// ```
    pub fn all_permissions() -> Vec<&'static str> {
        let mut all: Vec<&'static str> = crate::ops::ALL
            .iter()
            .flat_map(|op| op.permissions.iter().copied())
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The v2.0 reads a batch request accepts, in [`ops::ALL`](crate::ops::ALL) order.
    pub fn batch_reads() -> impl Iterator<Item = &'static Operation> {
        crate::ops::ALL.iter().filter(|op| op.batch_path.is_some())
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// An operation at the type level: the generated marker types of [`ops`](crate::ops)
/// implement it, so generic code can ask for an operation and get its body types with it.
pub trait Endpoint {
    /// The operation's data (a `'static` reference, so generic code can hold on to it).
    const OP: &'static Operation;
    /// The request body (`()` for none).
    type Request;
    /// The success body (`()` for none).
    type Response;
}

/// Percent-encodes one path segment for an operation's path (what the generated `path`
/// functions use).
#[doc(hidden)]
pub fn encode_segment(value: &str) -> String {
    progenitor_client::encode_path(value)
}
