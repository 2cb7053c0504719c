//! The management API v2.0 (`management.smartcar.com`, `Authorization: Basic
//! base64("default:" + AMT)`): list and delete the application's connections.
//!
//! - `GET /v2.0/management/connections`: filters `user_id`, `vehicle_id`, `mode`; newest first
//!   (ties by connection id); `limit` 1–100 (default 10). Paging is by an opaque `cursor`: the
//!   URL-safe base64 of the sort key (connected-at in nanoseconds and connection id) of the last
//!   connection of the page, so pages stay consistent when connections are added or removed in
//!   between. `paging.cursor` is null on the last page; an undecodable cursor is 400
//!   `VALIDATION`.
//! - `DELETE` the same path with `user_id` and/or `vehicle_id` (both: that pair only, as the docs
//!   say; neither: 400 `VALIDATION`): the deleted connections, whose tokens no longer reach the
//!   vehicles. Nothing matching is not an error (an empty list).
//! - Both also answer with a trailing slash (the Python SDK sends `/connections/`).

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use smartcar_api::open_enums::VehicleMode;
use smartcar_api::types;

use smartcar_api::ops;

use crate::auth;
use crate::error::ApiError;
use crate::model::Connection;
use crate::routing::Route;
use crate::state::AppState;
use crate::v2::{Query, both, fill, json, millis, respond, to_value};

/// Routes of the management API v2.0.
pub(crate) fn routes() -> Router<AppState> {
    both(
        Router::new(),
        Route::new(ops::LIST_CONNECTIONS, list).and(ops::DELETE_CONNECTIONS, delete),
    )
}

/// The sort key of a connection (newest first = descending).
fn key(c: &Connection) -> (i64, &str) {
    (
        c.connected_at.timestamp_nanos_opt().unwrap_or(i64::MAX),
        c.id.as_str(),
    )
}

fn encode_cursor(c: &Connection) -> String {
    let (nanos, id) = key(c);
    URL_SAFE_NO_PAD.encode(format!("{nanos}:{id}"))
}

fn decode_cursor(raw: &str) -> Result<(i64, String), ApiError> {
    let invalid = || ApiError::validation("cursor", "\"cursor\" is not a valid cursor");
    let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (nanos, id) = text.split_once(':').ok_or_else(invalid)?;
    let nanos = nanos.parse::<i64>().map_err(|_| invalid())?;
    if id.is_empty() {
        return Err(invalid());
    }
    Ok((nanos, id.to_owned()))
}

/// A filter value: absent or empty means no filter.
fn filter<'q>(q: &'q Query, name: &str) -> Option<&'q str> {
    q.get(name).filter(|v| !v.is_empty())
}

/// `GET /v2.0/management/connections`.
async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::parse(q.as_deref());
    let result = (|| {
        let world = state.world();
        auth::management_basic(&world, &headers)?;
        let limit = q.int("limit", 10, 1, 100)? as usize;
        let user_id = filter(&q, "user_id");
        let vehicle_id = filter(&q, "vehicle_id");
        let mode = filter(&q, "mode");
        if mode.is_some_and(|m| !matches!(m, "live" | "simulated" | "test")) {
            return Err(ApiError::validation(
                "mode",
                "\"mode\" must be one of [live, simulated, test]",
            ));
        }
        let after = filter(&q, "cursor").map(decode_cursor).transpose()?;
        let mode_of = |c: &Connection| world.vehicles.get(&c.vehicle_id).map_or("live", |v| v.mode);
        let mut matching: Vec<&Connection> = world
            .connections
            .iter()
            .filter(|c| {
                user_id.is_none_or(|u| c.user_id == u)
                    && vehicle_id.is_none_or(|v| c.vehicle_id == v)
                    && mode.is_none_or(|m| mode_of(c) == m)
                    && after
                        .as_ref()
                        .is_none_or(|(nanos, id)| key(c) < (*nanos, id.as_str()))
            })
            .collect();
        matching.sort_unstable_by(|a, b| key(b).cmp(&key(a)));
        let more = matching.len() > limit;
        matching.truncate(limit);
        let cursor = if more {
            matching.last().map(|c| encode_cursor(c))
        } else {
            None
        };
        let body = types::ConnectionList {
            connections: matching
                .iter()
                .map(|c| types::Connection {
                    user_id: c.user_id.clone(),
                    vehicle_id: c.vehicle_id.clone(),
                    connected_at: millis(c.connected_at),
                    mode: Some(VehicleMode::from(mode_of(c))),
                })
                .collect(),
            paging: Some(types::CursorPaging {
                cursor,
                count: None,
            }),
        };
        drop(world);
        let mut body = to_value(&body);
        if let Some(paging) = body.get_mut("paging") {
            fill(paging, "cursor", serde_json::Value::Null);
        }
        Ok(json(StatusCode::OK, &body, &[]))
    })();
    respond(result)
}

/// `DELETE /v2.0/management/connections`.
async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::parse(q.as_deref());
    let result = (|| {
        let mut world = state.world();
        auth::management_basic(&world, &headers)?;
        let user_id = filter(&q, "user_id");
        let vehicle_id = filter(&q, "vehicle_id");
        if user_id.is_none() && vehicle_id.is_none() {
            return Err(ApiError::validation(
                "user_id",
                "\"value\" must contain at least one of [user_id, vehicle_id]",
            ));
        }
        let removed = world.disconnect(user_id, vehicle_id);
        drop(world);
        let body = types::DeletedConnections {
            connections: removed
                .into_iter()
                .map(|c| types::DeletedConnection {
                    user_id: c.user_id,
                    vehicle_id: c.vehicle_id,
                    connected_at: None,
                })
                .collect(),
        };
        Ok(json(StatusCode::OK, &body, &[]))
    })();
    respond(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(
            decode_cursor(&URL_SAFE_NO_PAD.encode("123:abc")).ok(),
            Some((123, "abc".to_owned()))
        );
        for bad in [
            "",
            "!!!",
            &URL_SAFE_NO_PAD.encode("x:abc"),
            &URL_SAFE_NO_PAD.encode("12:"),
        ] {
            assert!(decode_cursor(bad).is_err(), "{bad:?}");
        }
    }
}
