//! `POST /v2.0/vehicles/{id}/batch`: several GET endpoints of one vehicle in one request, each
//! executed by the same [`reads::access`] and [`reads::reply`] as its own route.
//!
//! - The batch itself needs a valid token and a vehicle in the grant (401/404/403 fail it
//!   whole); each item then checks its own permission and the vehicle's state, so one failing
//!   item (403, 409, 501) never fails the others.
//! - The body is validated before anything runs: missing `requests`, a non-array, an empty list,
//!   more than [`MAX_REQUESTS`] items, an item without a string `path`, or a path that is not a
//!   GET endpoint of the vehicle fail the whole batch with 400 `VALIDATION`. (An empty list is
//!   rejected: there is nothing to bill or answer; the real API's behaviour is unverified.)
//! - Paths are relative to the vehicle, with or without the leading `/`, with or without a
//!   trailing `/`; `/` is the attributes. A query string is honoured (`/permissions?limit=2`,
//!   `/service/history?startDate=…`). The response echoes each path normalised with a leading
//!   `/` and no trailing one.
//! - `sc-unit-system` applies to every item; each item's `headers` carry its `sc-data-age`,
//!   `sc-fetched-at` and `sc-unit-system` (as its own route would), `{}` for an error.
//!
//! The v2.0 webhook `scheduled` / `dynamic` deliveries build their per-vehicle items with the
//! same [`Item`] (see `webhooks/mod.rs`), so a webhook item is exactly the batch item of its
//! path.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json as j};
use smartcar_api::types;

use super::reads::{self, Read};
use super::{
    Query, RequestBody, Units, fill, grant, json, json_object, path_param, request_bytes, respond,
    to_value, vehicle_access,
};
use crate::error::ApiError;
use crate::model::{Grant, World};
use crate::state::{AppState, Shared};

/// The most sub-requests one batch may carry (a simulator bound; the platform documents none).
pub(crate) const MAX_REQUESTS: usize = 100;

/// One sub-request: a path relative to the vehicle, normalised.
pub(crate) struct Item {
    /// The path to echo: a leading `/`, no trailing one, the query kept.
    path: String,
    /// Its read; `None` when the path is not a GET endpoint of the vehicle.
    read: Option<&'static Read>,
    query: Query,
}

impl Item {
    /// The sub-request of `path` (with or without the leading and trailing `/`, `/` for the
    /// attributes, maybe with a query string).
    pub(crate) fn new(path: &str) -> Self {
        let (path_part, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let canonical = format!("/{}", path_part.trim_matches('/'));
        let read = reads::find(&canonical);
        let path = match query {
            Some(q) => format!("{canonical}?{q}"),
            None => canonical,
        };
        Item {
            path,
            read,
            query: Query::parse(query),
        }
    }

    /// Runs the sub-request on vehicle `id` for `grant`, with the same [`reads::access`] and
    /// [`reads::reply`] as its own route: its item, 200 with the body and the route's headers,
    /// or the error's status and body (404 for a path that is not a GET endpoint).
    pub(crate) fn run(
        self,
        state: &Shared,
        world: &World,
        grant: &Grant,
        id: &str,
        units: Units,
    ) -> types::BatchResponseItem {
        let result = self.read.ok_or_else(ApiError::not_found).and_then(|read| {
            let vehicle = reads::access(state, world, grant, id, read)?;
            reads::reply(state, world, grant, vehicle, read, units, &self.query)
        });
        match result {
            Ok(reply) => types::BatchResponseItem {
                path: self.path,
                code: 200,
                headers: reply
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
                body: Some(reply.body),
            },
            Err(e) => types::BatchResponseItem {
                path: self.path,
                code: i32::from(e.status().as_u16()),
                headers: Default::default(),
                body: Some(e.body().clone()),
            },
        }
    }
}

fn item_error(index: usize, message: String) -> ApiError {
    ApiError::validation("requests", &message).with_detail(vec![
        j!({"field": ["requests", index, "path"], "message": message}),
    ])
}

/// Validates the body into sub-requests.
fn parse(body: &[u8]) -> Result<Vec<Item>, ApiError> {
    let body = json_object(body)?;
    let requests = match body.get("requests") {
        None | Some(Value::Null) => {
            return Err(ApiError::validation("requests", "\"requests\" is required"));
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ApiError::validation(
                "requests",
                "\"requests\" must be an array",
            ));
        }
    };
    if requests.is_empty() {
        return Err(ApiError::validation(
            "requests",
            "\"requests\" must contain at least 1 items",
        ));
    }
    if requests.len() > MAX_REQUESTS {
        return Err(ApiError::validation(
            "requests",
            &format!("\"requests\" must contain less than or equal to {MAX_REQUESTS} items"),
        ));
    }
    requests
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = match item.get("path") {
                Some(Value::String(p)) => p,
                None | Some(Value::Null) => {
                    return Err(item_error(i, format!("\"requests[{i}].path\" is required")));
                }
                Some(_) => {
                    return Err(item_error(
                        i,
                        format!("\"requests[{i}].path\" must be a string"),
                    ));
                }
            };
            let item = Item::new(path);
            if item.read.is_none() {
                let canonical = item.path.split('?').next().unwrap_or_default();
                return Err(item_error(
                    i,
                    format!(
                        "\"requests[{i}].path\" {canonical:?} is not a GET endpoint of the vehicle"
                    ),
                ));
            }
            Ok(item)
        })
        .collect()
}

/// `POST /v2.0/vehicles/{id}/batch`.
pub(crate) async fn batch(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: RequestBody,
) -> Response {
    let items = request_bytes(&body).and_then(parse);
    let result = path_param(id).and_then(|id| {
        let world = state.world();
        let g = grant(&state, &world, &headers)?;
        vehicle_access(&state, &world, g, &id, None, false)?;
        let units = Units::from_headers(&headers)?;
        let items = items?;
        let responses = items
            .into_iter()
            .map(|item| item.run(&state, &world, g, &id, units))
            .collect();
        let mut body = to_value(&types::BatchResponse { responses });
        let mut succeeded = 0u32;
        if let Some(Value::Array(items)) = body.get_mut("responses") {
            for item in items {
                fill(item, "headers", Value::Object(Default::default()));
                if item["code"]
                    .as_u64()
                    .is_some_and(|c| (200..300).contains(&c))
                {
                    succeeded += 1;
                }
            }
        }
        Ok((body, succeeded))
    });
    // Each successful item is a call billed against the vehicle's monthly allowance
    // (`limits`); the batch request itself is not (unverified which the platform counts).
    respond(result.map(|(body, succeeded)| {
        let mut response = json(StatusCode::OK, &body, &[]);
        response
            .extensions_mut()
            .insert(crate::limits::BilledCalls(succeeded));
        response
    }))
}
