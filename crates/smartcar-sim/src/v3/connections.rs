//! Connections and users of the Vehicle API v3 (application token only).
//!
//! - `GET /v3/connections`: filters `filter[userId]`, `filter[vehicleId]`,
//!   `filter[vehicle.mode]` (`live`, `simulated`, `test`; another value is 400) and
//!   `filter[user.externalId]` (the `external_id` given to Connect, exact match; a connection
//!   without one never matches); paged by `page[number]` (from 1) and `page[size]` (1–100,
//!   default 10); newest connection first (ties: newest recorded first). Links repeat the
//!   filters given: `/connections?filter[userId]=…&page[number]=2&page[size]=10`.
//!   Without `filter[vehicle.mode]` only `live` vehicles' connections are listed (the default
//!   the filter's description gives, from readings of Smartcar's published spec: unverified).
//!   The former name `filter[mode]` is no longer read (ignored like any unknown parameter).
//! - `GET /v3/connections/{connection_id}`: 404 for an unknown id.
//! - `DELETE /v3/connections/{connection_id}`: disconnects the vehicle from the application
//!   (its tokens no longer reach it, its webhook subscriptions end); 204, 404 for an unknown id.
//! - `DELETE /v3/users/{user_id}`: removes every connection of the user (and so every vehicle
//!   their tokens reached, and their subscriptions); 204, 404 for a user the platform does not
//!   know. The user's connected-services account itself stays, so they can connect again.
//! - `createdAt` and `updatedAt` are both the simulated time of the (last) connection: a
//!   connection is created when the user approves in Connect (or by
//!   `Simulator::mint_access_token`), never at fleet generation (the fleet starts without
//!   connections) nor by showing the Connect page. Approving the same vehicle again renews the
//!   connection: the id stays, both times become the new approval's, and the permissions are
//!   merged. So "this user has a connection created after this login started" holds exactly
//!   when the user approved during that login.

use std::collections::BTreeSet;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use smartcar_api::open_enums::Permission;
use smartcar_api::types;

use super::{
    Page, Query, V3Result, app_only, display_make, encode, invalid, json, no_content, not_found,
    path1, vehicle_attributes,
};
use crate::model::{Connection, World};
use crate::state::AppState;

/// The modes a `filter[vehicle.mode]` (connections, subscriptions) may name.
pub(crate) const MODES: [&str; 3] = ["live", "simulated", "test"];

/// The vehicle mode `GET /v3/connections` lists without `filter[vehicle.mode]`.
const DEFAULT_MODE: &str = "live";

/// Reads a mode filter (400 for a value outside [`MODES`]).
pub(crate) fn mode_filter<'q>(
    query: &'q Query,
    key: &str,
) -> Result<Option<&'q str>, crate::error::ApiError> {
    match query.last(key) {
        Some(mode) if !MODES.contains(&mode) => Err(invalid(
            key,
            &format!("`{key}` must be one of live, simulated, test."),
        )),
        other => Ok(other),
    }
}

/// `?filter[...]=…&` for the links of a filtered list (names and values as given).
pub(crate) fn filter_prefix(filters: &[(&str, Option<&str>)]) -> String {
    filters
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}&", encode(v))))
        .collect()
}

fn resource(world: &World, c: &Connection) -> types::ConnectionResource {
    let vehicle = world
        .vehicles
        .get(&c.vehicle_id)
        .map(|v| vehicle_attributes(v, display_make(&v.make)));
    types::ConnectionResource {
        id: c.id.clone(),
        type_: "connection".to_owned(),
        attributes: types::ConnectionResourceAttributes {
            permissions: c
                .scopes
                .iter()
                .map(|s| Permission::from(s.as_str()))
                .collect(),
            vehicle,
        },
        relationships: types::ConnectionRelationships {
            vehicle: types::Relationship {
                data: types::ResourceIdentifier {
                    id: c.vehicle_id.clone(),
                    type_: "vehicle".to_owned(),
                },
                links: Some(types::RelationshipLinks {
                    related: Some(format!("/vehicles/{}", c.vehicle_id)),
                }),
            },
            user: types::Relationship {
                data: types::ResourceIdentifier {
                    id: c.user_id.clone(),
                    type_: "user".to_owned(),
                },
                links: None,
            },
        },
        meta: Some(types::ResourceTimestamps {
            created_at: Some(c.connected_at),
            updated_at: Some(c.connected_at),
        }),
        links: Some(types::ResourceLinks {
            self_: Some(format!("/connections/{}", c.id)),
        }),
    }
}

/// `GET /v3/connections`.
pub(super) async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> V3Result {
    let query = Query::parse(raw.as_deref());
    let body = {
        let world = state.world();
        app_only(&state, &world, &headers)?;
        let user = query.last("filter[userId]");
        let vehicle = query.last("filter[vehicleId]");
        let mode = mode_filter(&query, "filter[vehicle.mode]")?;
        let external_id = query.last("filter[user.externalId]");
        let page = Page::from_query(&query, "page[number]", "page[size]")?;
        let mut matching: Vec<(usize, &Connection)> = world
            .connections
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                user.is_none_or(|u| c.user_id == u)
                    && vehicle.is_none_or(|v| c.vehicle_id == v)
                    && external_id.is_none_or(|e| c.external_id.as_deref() == Some(e))
                    && world
                        .vehicles
                        .get(&c.vehicle_id)
                        .is_some_and(|v| v.mode == mode.unwrap_or(DEFAULT_MODE))
            })
            .collect();
        matching.sort_by(|(ia, a), (ib, b)| b.connected_at.cmp(&a.connected_at).then(ib.cmp(ia)));
        let data = page
            .slice(&matching)
            .iter()
            .map(|(_, c)| resource(&world, c))
            .collect();
        let prefix = filter_prefix(&[
            ("filter[userId]", user),
            ("filter[vehicleId]", vehicle),
            ("filter[vehicle.mode]", mode),
            ("filter[user.externalId]", external_id),
        ]);
        let (meta, links) = page.meta_links(matching.len(), |n| {
            format!(
                "/connections?{prefix}page[number]={n}&page[size]={}",
                page.size
            )
        });
        types::ConnectionListV3 {
            data,
            meta: Some(meta),
            links: Some(links),
        }
    };
    Ok(json(StatusCode::OK, &body))
}

/// `GET /v3/connections/{connection_id}`.
pub(super) async fn get_one(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> V3Result {
    let id = path1(path)?;
    let body = {
        let world = state.world();
        app_only(&state, &world, &headers)?;
        let connection = world
            .connections
            .iter()
            .find(|c| c.id == id)
            .ok_or_else(not_found)?;
        types::ConnectionResponseV3 {
            data: resource(&world, connection),
        }
    };
    Ok(json(StatusCode::OK, &body))
}

/// `DELETE /v3/connections/{connection_id}`.
pub(super) async fn delete_one(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> V3Result {
    let id = path1(path)?;
    let mut world = state.world();
    app_only(&state, &world, &headers)?;
    let (user_id, vehicle_id) = world
        .connections
        .iter()
        .find(|c| c.id == id)
        .map(|c| (c.user_id.clone(), c.vehicle_id.clone()))
        .ok_or_else(not_found)?;
    world.disconnect(Some(&user_id), Some(&vehicle_id));
    Ok(no_content())
}

/// `DELETE /v3/users/{user_id}`.
pub(super) async fn delete_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> V3Result {
    let user_id = path1(path)?;
    let mut world = state.world();
    app_only(&state, &world, &headers)?;
    let known: BTreeSet<&str> = world
        .users
        .iter()
        .map(|u| u.id.as_str())
        .chain(world.connections.iter().map(|c| c.user_id.as_str()))
        .collect();
    if !known.contains(user_id.as_str()) {
        return Err(not_found());
    }
    world.disconnect(Some(&user_id), None);
    Ok(no_content())
}
