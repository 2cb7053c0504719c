//! The Vehicle API v3 (`vehicle.api.smartcar.com/v3`: vehicle, signals, commands, charge
//! schedules, connections, users), the compatible-vehicles list of the compatibility API v3
//! (`compatibility.api.smartcar.com/v3`, no authentication: `compatible`), and the helpers the
//! management API v3 (`management.api.smartcar.com/v3`: webhooks and their subscriptions,
//! served by `webhooks`) shares with them.
//!
//! Every body is serialised from the generated types of `smartcar-api`; every error comes in the
//! v3 `{"errors": [...]}` shape.
//!
//! # Authentication (choices where the platform's behaviour is unverified)
//!
//! - Vehicle endpoints take `Authorization: Bearer <application token>` (client credentials)
//!   plus `sc-user-id: <user id>`: the user must have connected the vehicle, and the
//!   connection's permissions apply. `sc-user-id` is required on commands (400 `VALIDATION`
//!   without it) and optional on the reads (`GET /v3/vehicles/{id}`, the signals: no official
//!   SDK sends it there and their live end-to-end reads succeed): without it the vehicle must
//!   be connected by some user of the application (404 otherwise), and the permissions of its
//!   newest connection apply.
//! - They also accept a user's v2 access token without `sc-user-id` (the official Python SDK
//!   sends v3 requests that way): the token's grant then decides. With both, `sc-user-id` must
//!   name the token's user (403 otherwise).
//! - Order of checks: 401 `AUTHENTICATION` (missing, unknown or expired token), 400 (missing
//!   `sc-user-id`), 404 `RESOURCE_NOT_FOUND` (unknown vehicle id), 403 `PERMISSION` (user unknown
//!   or without a connection to the vehicle, or permission not granted), then the error a test
//!   VIN forces.
//! - Connections, users, webhooks and subscriptions take the application token only; the
//!   compatible-vehicles list takes no credential (an `Authorization` header is ignored).
//!
//! # Make
//!
//! The vehicle API v3 (vehicle resource, connections, `included.vehicle`) spells the make as the
//! docs' v3 examples do, in title case (`Tesla`, `Toyota`; acronyms of up to three letters stay
//! upper case: `BMW`). The management API v3 (subscriptions) and webhook payloads use the upper
//! case of their examples and of v2 (`TESLA`).

pub(crate) mod commands;
mod compatible;
pub(crate) mod connections;
mod schedules;
pub(crate) mod signals;
pub(crate) mod test_data;

use std::collections::BTreeSet;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use smartcar_api::open_enums::{PowertrainType, VehicleMode};
use smartcar_api::{ops, types};

use crate::auth;
use crate::error::ApiError;
use crate::model::{Vehicle, World};
use crate::routing::Route;
use crate::state::{AppState, Shared, random_id};

/// Routes of the Vehicle API v3 (the management API v3's subscriptions are served by
/// `webhooks`, which owns what they drive).
pub(crate) fn routes() -> Router<AppState> {
    use commands as c;
    [
        Route::new(ops::GET_VEHICLE_V3, get_vehicle),
        Route::new(ops::LIST_SIGNALS, signals::list),
        Route::new(ops::GET_SIGNAL, signals::get_one),
        Route::new(ops::START_CHARGE_V3, c::charge_start),
        Route::new(ops::STOP_CHARGE_V3, c::charge_stop),
        Route::new(ops::SET_CHARGE_LIMIT_V3, c::set_limit),
        Route::new(ops::LOCK_V3, c::lock),
        Route::new(ops::UNLOCK_V3, c::unlock),
        Route::new(ops::SET_DESTINATION_V3, c::set_destination),
        Route::new(ops::GET_COMMAND_EXECUTION, c::get_execution),
        Route::new(ops::SET_DAILY_CHARGE_SCHEDULE_V3, schedules::set_daily),
        Route::new(ops::SET_WEEKLY_CHARGE_SCHEDULE_V3, schedules::set_weekly),
        Route::new(
            ops::SET_WORKWEEK_CHARGE_SCHEDULE_V3,
            schedules::set_workweek,
        ),
        Route::new(ops::DELETE_CHARGE_SCHEDULE_V3, schedules::delete),
        Route::new(ops::LIST_COMPATIBLE_VEHICLES, compatible::list),
        Route::new(ops::LIST_CONNECTIONS_V3, connections::list),
        Route::new(ops::GET_CONNECTION_V3, connections::get_one)
            .and(ops::DELETE_CONNECTION_V3, connections::delete_one),
        Route::new(ops::DELETE_USER_V3, connections::delete_user),
    ]
    .into_iter()
    .fold(Router::new(), |r, route| route.register(r, wrong_method))
}

/// Any other method on a v3 path: 404 `RESOURCE_NOT_FOUND` / `PATH` in the v3 shape (the
/// catalogue has no 405; axum's own 405 would have no JSON body).
pub(crate) async fn wrong_method() -> ApiError {
    not_found()
}

/// What a handler answers: a response, or an error (already in the v3 shape).
pub(crate) type V3Result = Result<Response, ApiError>;

const SC_REQUEST_ID: HeaderName = HeaderName::from_static("sc-request-id");

fn request_id_header() -> HeaderValue {
    HeaderValue::from_str(&random_id()).unwrap_or(HeaderValue::from_static("0"))
}

/// A JSON response with `sc-request-id`, serialised once from a generated type.
pub(crate) fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [
                (CONTENT_TYPE, HeaderValue::from_static("application/json")),
                (SC_REQUEST_ID, request_id_header()),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => ApiError::v2("SERVER", Some("INTERNAL"))
            .into_v3()
            .into_response(),
    }
}

/// `204 No Content` with `sc-request-id`.
pub(crate) fn no_content() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(SC_REQUEST_ID, request_id_header())],
    )
        .into_response()
}

/// 404 `RESOURCE_NOT_FOUND` / `PATH`, v3 shape.
pub(crate) fn not_found() -> ApiError {
    ApiError::not_found().into_v3()
}

/// 403 `PERMISSION`, v3 shape.
pub(crate) fn permission() -> ApiError {
    ApiError::permission().into_v3()
}

/// 400 `VALIDATION`, v3 shape.
pub(crate) fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::validation(field, message).into_v3()
}

/// The raw body, or 400 `VALIDATION` when it could not be read (e.g. larger than axum's 2 MB
/// limit).
pub(crate) fn body_bytes(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<axum::body::Bytes, ApiError> {
    body.map_err(|_| invalid("body", "The request body could not be read."))
}

/// The single path parameter, or 404 when axum could not decode it.
pub(crate) fn path1(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(p)| p).map_err(|_| not_found())
}

/// The two path parameters, or 404 when axum could not decode them.
pub(crate) fn path2(
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(String, String), ApiError> {
    path.map(|Path(p)| p).map_err(|_| not_found())
}

/// Who may reach a vehicle through a v3 request, and with which permissions.
pub(crate) struct Access<'w> {
    /// The vehicle.
    pub vehicle: &'w Vehicle,
    /// The permissions of the user's connection (or of the token's grant).
    pub scopes: Option<&'w BTreeSet<String>>,
}

impl Access<'_> {
    /// Whether `permission` was granted.
    pub fn allows(&self, permission: &str) -> bool {
        self.scopes.is_some_and(|s| s.contains(permission))
    }
}

/// Authenticates a vehicle request (see the module documentation for the rules) and checks
/// `permission` when one is needed.
pub(crate) fn vehicle_access<'w>(
    shared: &Shared,
    world: &'w World,
    headers: &HeaderMap,
    vehicle_id: &str,
    user_required: bool,
    permission_needed: Option<&str>,
) -> Result<Access<'w>, ApiError> {
    let user_header = headers
        .get("sc-user-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let forced = |vehicle: &Vehicle| auth::forced_error(vehicle).map_err(ApiError::into_v3);
    if app_only(shared, world, headers).is_ok() {
        let Some(user_id) = user_header else {
            if user_required {
                return Err(invalid(
                    "sc-user-id",
                    "The sc-user-id header is required with an application token.",
                ));
            }
            // Without a user, the vehicle's newest connection to the application decides.
            let vehicle = world.vehicles.get(vehicle_id).ok_or_else(not_found)?;
            let connection = world
                .connections
                .iter()
                .filter(|c| c.vehicle_id == vehicle_id)
                .max_by_key(|c| c.connected_at)
                .ok_or_else(not_found)?;
            if permission_needed.is_some_and(|p| !connection.scopes.contains(p)) {
                return Err(permission());
            }
            forced(vehicle)?;
            return Ok(Access {
                vehicle,
                scopes: Some(&connection.scopes),
            });
        };
        let vehicle = world.vehicles.get(vehicle_id).ok_or_else(not_found)?;
        let connection = world
            .connection(user_id, vehicle_id)
            .ok_or_else(permission)?;
        if permission_needed.is_some_and(|p| !connection.scopes.contains(p)) {
            return Err(permission());
        }
        forced(vehicle)?;
        return Ok(Access {
            vehicle,
            scopes: Some(&connection.scopes),
        });
    }
    // Not a valid application token: a valid user access token, or 401.
    if let Ok(grant) = auth::user_grant(shared, world, headers) {
        if user_header.is_some_and(|u| u != grant.user_id) {
            return Err(permission());
        }
        let vehicle = auth::vehicle(world, grant, vehicle_id, permission_needed)
            .map_err(ApiError::into_v3)?;
        return Ok(Access {
            vehicle,
            scopes: Some(&grant.scopes),
        });
    }
    Err(ApiError::authentication().into_v3())
}

/// Checks the application token of a connections / users / subscriptions request.
pub(crate) fn app_only(
    shared: &Shared,
    world: &World,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let client_id = auth::app_token(shared, world, headers)?;
    if auth::secret_eq(&client_id, &world.app.client_id) {
        Ok(())
    } else {
        Err(ApiError::authentication().into_v3())
    }
}

/// The make as the vehicle API v3 spells it: title case (`TESLA` → `Tesla`,
/// `MERCEDES-BENZ` → `Mercedes-Benz`), acronyms of up to three letters upper case (`BMW`).
pub(crate) fn display_make(make: &str) -> String {
    if make.len() <= 3 {
        return make.to_ascii_uppercase();
    }
    let mut out = String::with_capacity(make.len());
    let mut start = true;
    for c in make.chars() {
        if start {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c.to_ascii_lowercase());
        }
        start = !c.is_ascii_alphanumeric();
    }
    out
}

/// `attributes` of a vehicle resource, with the make spelled as given.
pub(crate) fn vehicle_attributes(v: &Vehicle, make: String) -> types::VehicleResourceAttributes {
    types::VehicleResourceAttributes {
        make,
        model: v.model.clone(),
        year: v.year.into(),
        powertrain_type: Some(PowertrainType::from(v.powertrain.as_str())),
        mode: Some(VehicleMode::from(v.mode)),
    }
}

/// The vehicle resource (`GET /v3/vehicles/{id}`, `included.vehicle`).
pub(crate) fn vehicle_resource(v: &Vehicle) -> types::VehicleResource {
    types::VehicleResource {
        id: v.id.clone(),
        type_: "vehicle".to_owned(),
        attributes: vehicle_attributes(v, display_make(&v.make)),
        links: Some(types::ResourceLinks {
            self_: Some(format!("/vehicles/{}", v.id)),
        }),
    }
}

/// `GET /v3/vehicles/{vehicle_id}`.
async fn get_vehicle(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> V3Result {
    let vehicle_id = path1(path)?;
    let body = {
        let world = state.world();
        let access = vehicle_access(&state, &world, &headers, &vehicle_id, false, None)?;
        // Unwrapped, as the live platform answers (the spec's VehicleResponse has the evidence).
        types::VehicleResponse::Resource(vehicle_resource(access.vehicle))
    };
    Ok(json(StatusCode::OK, &body))
}

/// Query parameters: the v2.0 parser; in v3 the last value of a repeated name wins
/// ([`Query::last`]).
pub(crate) use crate::v2::Query;

/// Largest page size of the v3 lists (signals, connections, subscriptions).
pub(crate) const MAX_PAGE_SIZE: usize = 100;
/// Default page size of the v3 lists.
pub(crate) const DEFAULT_PAGE_SIZE: usize = 10;

/// A requested page: number from 1, size 1–[`MAX_PAGE_SIZE`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Page {
    pub number: usize,
    pub size: usize,
}

impl Page {
    /// Reads the page number and size from the query (400 `VALIDATION` for anything but a
    /// whole number in range).
    pub fn from_query(query: &Query, number_key: &str, size_key: &str) -> Result<Self, ApiError> {
        let read = |key: &str, default: usize, max: usize| -> Result<usize, ApiError> {
            match query.last(key) {
                None => Ok(default),
                Some(raw) => match raw.trim().parse::<usize>() {
                    Ok(n) if (1..=max).contains(&n) => Ok(n),
                    _ => Err(invalid(
                        key,
                        &format!("`{key}` must be a whole number from 1 to {max}."),
                    )),
                },
            }
        };
        Ok(Page {
            number: read(number_key, 1, i32::MAX as usize)?,
            size: read(size_key, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?,
        })
    }

    /// The items of this page out of `items`.
    pub fn slice<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let start = (self.number - 1).saturating_mul(self.size).min(items.len());
        let end = start.saturating_add(self.size).min(items.len());
        &items[start..end]
    }

    /// `meta` and `links` of this page of `total` items; `link(number)` formats the link to a
    /// page.
    pub fn meta_links(
        &self,
        total: usize,
        link: impl Fn(usize) -> String,
    ) -> (types::PageMeta, types::PageLinks) {
        let last = total.div_ceil(self.size).max(1);
        let to_i32 = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        let meta = types::PageMeta {
            page: Some(to_i32(self.number)),
            page_size: Some(to_i32(self.size)),
            total_count: Some(to_i32(total)),
        };
        let links = types::PageLinks {
            self_: Some(link(self.number)),
            first: Some(link(1)),
            previous: (self.number > 1).then(|| link(self.number - 1)),
            next: (self.number < last).then(|| link(self.number + 1)),
            last: Some(link(last)),
        };
        (meta, links)
    }
}

/// Percent-encodes a query value for a link.
pub(crate) fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Epoch milliseconds.
pub(crate) fn epoch_ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_in_title_case() {
        assert_eq!(display_make("TESLA"), "Tesla");
        assert_eq!(display_make("BMW"), "BMW");
        assert_eq!(display_make("MERCEDES-BENZ"), "Mercedes-Benz");
        assert_eq!(display_make("LAND ROVER"), "Land Rover");
    }

    #[test]
    fn pages_and_links() {
        let q = Query::parse(Some("page=2&pageSize=3"));
        let p = Page::from_query(&q, "page", "pageSize").unwrap_or(Page { number: 0, size: 0 });
        assert_eq!((p.number, p.size), (2, 3));
        let items: Vec<u32> = (0..7).collect();
        assert_eq!(p.slice(&items), &[3, 4, 5]);
        let (meta, links) = p.meta_links(items.len(), |n| format!("p{n}"));
        assert_eq!(meta.total_count, Some(7));
        assert_eq!(links.previous.as_deref(), Some("p1"));
        assert_eq!(links.next.as_deref(), Some("p3"));
        assert_eq!(links.last.as_deref(), Some("p3"));
        for bad in ["page=0", "page=x", "pageSize=101", "pageSize=0", "page=-1"] {
            assert!(Page::from_query(&Query::parse(Some(bad)), "page", "pageSize").is_err());
        }
        let far = Page { number: 9, size: 3 };
        assert!(far.slice(&items).is_empty());
        let empty = Page {
            number: 1,
            size: 10,
        };
        let (_, links) = empty.meta_links(0, |n| format!("p{n}"));
        assert_eq!(links.last.as_deref(), Some("p1"));
        assert_eq!(links.next, None);
    }
}
