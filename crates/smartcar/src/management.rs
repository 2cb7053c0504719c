//! The management API v2.0 (application management token): the application's connections.
//! Start with [`Client::management`](crate::Client::management).
//!
//! ```no_run
//! # async fn demo(client: smartcar::Client) -> Result<(), smartcar::Error> {
//! use smartcar::management::ConnectionFilter;
//!
//! let management = client.management("application-management-token");
//! let filter = ConnectionFilter { user_id: Some("a-user-id".into()), ..Default::default() };
//! let page = management.connections_page(&filter, None).await?;
//! println!("{} connections", page.data.connections.len());
//! # Ok(()) }
//! ```

use std::fmt;

use smartcar_api::op::Operation;
use smartcar_api::{ops, types};

use crate::Error;
use crate::client::Client;
use crate::request::{Call, Response};
use crate::send::Authorizer;

/// Upper bound on pages read by one stream.
const MAX_PAGES: u32 = 100_000;

/// Filters of [`Management::connections`].
///
/// ```no_run
/// # async fn demo(management: smartcar::management::Management) {
/// let filter = smartcar::management::ConnectionFilter {
///     user_id: Some("93b3ea2d-6a4a-4ea5-9d1b-3a5e2c8f0b71".into()),
///     ..Default::default()
/// };
/// let connections = management.connections(filter);
/// # let _ = connections;
/// # }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionFilter {
    /// Only this user's connections.
    pub user_id: Option<String>,
    /// Only this vehicle's connections.
    pub vehicle_id: Option<String>,
    /// Only `live`, `simulated` or `test` connections.
    pub mode: Option<smartcar_api::open_enums::VehicleMode>,
    /// Page size, 1–100 (default 10 on the platform; the stream asks for 100).
    pub limit: Option<u32>,
}

/// A stream of connections, paging by cursor by itself.
///
/// ```no_run
/// use futures_util::StreamExt;
/// # async fn demo(management: smartcar::management::Management) -> Result<(), smartcar::Error> {
/// let mut connections: smartcar::management::ConnectionStream = management.connections(Default::default());
/// while let Some(connection) = connections.next().await {
///     println!("{:?}", connection?);
/// }
/// # Ok(()) }
/// ```
pub type ConnectionStream =
    std::pin::Pin<Box<dyn futures_core::Stream<Item = Result<types::Connection, Error>> + Send>>;

/// The application's connections, authenticated with the application management token (AMT).
/// Start it with [`Client::management`].
///
/// ```no_run
/// # async fn demo(client: smartcar::Client) -> Result<(), smartcar::Error> {
/// let management = client.management("application-management-token");
/// management.delete_connections(None, Some("36ab27d0-fd9d-4455-823a-ce30af709ffc")).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Management {
    client: Client,
    amt: String,
}

impl fmt::Debug for Management {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Management")
            .field("amt", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl Client {
    /// The management API, with the application management token.
    ///
    /// ```no_run
    /// # fn demo(client: smartcar::Client) {
    /// let management = client.management(std::env::var("SMARTCAR_MANAGEMENT_TOKEN").unwrap_or_default());
    /// # let _ = management;
    /// # }
    /// ```
    pub fn management(&self, management_token: impl Into<String>) -> Management {
        Management {
            client: self.clone(),
            amt: management_token.into(),
        }
    }
}

impl Management {
    /// One page of connections (newest first); `cursor` is the previous page's `paging.cursor`
    /// (no `paging`, or no cursor in it: the last page).
    ///
    /// ```no_run
    /// # async fn demo(management: smartcar::management::Management) -> Result<(), smartcar::Error> {
    /// let filter = smartcar::management::ConnectionFilter { limit: Some(100), ..Default::default() };
    /// let first = management.connections_page(&filter, None).await?;
    /// println!("{} connections", first.data.connections.len());
    /// if let Some(cursor) = first.data.paging.as_ref().and_then(|p| p.cursor.as_deref()) {
    ///     let next = management.connections_page(&filter, Some(cursor)).await?;
    ///     # let _ = next;
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a limit outside 1–100; API and transport errors.
    pub async fn connections_page(
        &self,
        filter: &ConnectionFilter,
        cursor: Option<&str>,
    ) -> Result<Response<types::ConnectionList>, Error> {
        if filter.limit.is_some_and(|l| !(1..=100).contains(&l)) {
            return Err(Error::invalid("limit", "between 1 and 100"));
        }
        let mut query = Vec::new();
        if let Some(l) = filter.limit {
            query.push(("limit", l.to_string()));
        }
        if let Some(c) = cursor {
            query.push(("cursor", c.to_owned()));
        }
        if let Some(u) = &filter.user_id {
            query.push(("user_id", u.clone()));
        }
        if let Some(v) = &filter.vehicle_id {
            query.push(("vehicle_id", v.clone()));
        }
        if let Some(m) = &filter.mode {
            query.push(("mode", m.to_string()));
        }
        self.send(&ops::LIST_CONNECTIONS, &query).await
    }

    /// Every connection matching `filter`, as a stream that follows the cursor. It ends on the
    /// last page, or when the cursor stops advancing; a failing page is an error item, after
    /// which the stream ends.
    ///
    /// ```no_run
    /// use futures_util::TryStreamExt;
    /// # async fn demo(management: smartcar::management::Management) -> Result<(), smartcar::Error> {
    /// let all: Vec<_> = management.connections(Default::default()).try_collect().await?;
    /// println!("{} connections", all.len());
    /// # Ok(()) }
    /// ```
    pub fn connections(&self, filter: ConnectionFilter) -> ConnectionStream {
        let mgmt = self.clone();
        let filter = ConnectionFilter {
            limit: filter.limit.or(Some(100)),
            ..filter
        };
        Box::pin(crate::paging::pages(
            None::<String>,
            MAX_PAGES,
            move |cursor: Option<String>| {
                let (mgmt, filter) = (mgmt.clone(), filter.clone());
                async move {
                    let page = mgmt
                        .connections_page(&filter, cursor.as_deref())
                        .await?
                        .data;
                    // Follow the cursor only while it advances.
                    // Without `paging` (some fixtures leave it out) there is no next page.
                    let next = page
                        .paging
                        .and_then(|p| p.cursor)
                        .filter(|c| Some(c) != cursor.as_ref());
                    Ok((page.connections, next.map(Some)))
                }
            },
        ))
    }

    /// Deletes the connections of a user, of a vehicle, or of that vehicle for that user.
    ///
    /// ```no_run
    /// # async fn demo(management: smartcar::management::Management) -> Result<(), smartcar::Error> {
    /// let deleted = management
    ///     .delete_connections(Some("93b3ea2d-6a4a-4ea5-9d1b-3a5e2c8f0b71"), None)
    ///     .await?;
    /// println!("{:?}", deleted.data);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when neither id is given or one is malformed (nothing is sent);
    /// API and transport errors.
    pub async fn delete_connections(
        &self,
        user_id: Option<&str>,
        vehicle_id: Option<&str>,
    ) -> Result<Response<types::DeletedConnections>, Error> {
        let mut query = Vec::new();
        if let Some(u) = user_id {
            // An empty or odd id must not widen what a delete matches.
            crate::checks::check_id("user id", u)?;
            query.push(("user_id", u.to_owned()));
        }
        if let Some(v) = vehicle_id {
            crate::checks::check_id("vehicle id", v)?;
            query.push(("vehicle_id", v.to_owned()));
        }
        if query.is_empty() {
            return Err(Error::invalid(
                "connection filter",
                "give a user id, a vehicle id or both: deleting every connection is not an option",
            ));
        }
        self.send(&ops::DELETE_CONNECTIONS, &query).await
    }

    /// Sends `op` (a management operation without path parameters) with `query`, as the
    /// application management token.
    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static Operation,
        query: &[(&str, String)],
    ) -> Result<Response<T>, Error> {
        let call = Call::new(op, self.client.origins(), op.path, query);
        self.client
            .send(call, Authorizer::Management(&self.amt))
            .await
    }
}
