//! The Vehicle API v3 with an application token (the machine-to-machine flow): a per-user handle
//! that sends `sc-user-id`, typed signals, commands, and the v3 connections.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use smartcar_api::op::{Endpoint, Operation};
use smartcar_api::open_enums::{SignalCode, SignalStatusValue};
use smartcar_api::{ops, types};

use crate::Error;
use crate::checks::check_id;
use crate::request::{Call, Response};
use crate::send::Authorizer;
use crate::session::ApplicationSession;

/// Page size asked for when a call reads every page.
const PAGE_SIZE: u32 = 100;
/// Upper bound on pages read by one call (a server that never ends paging cannot loop us).
const MAX_PAGES: u32 = 1_000;

/// Reads every page of a v3 list: `fetch(page)` gives the page's items and whether the page has
/// a `next` link (the stop rules are those of [`crate::paging::pages`]).
async fn all_pages<T, F, Fut>(mut fetch: F) -> Result<Vec<T>, Error>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, bool), Error>>,
{
    let pages = crate::paging::pages(1u32, MAX_PAGES, |page| {
        let fut = fetch(page);
        async move {
            let (items, more) = fut.await?;
            Ok((items, more.then_some(page + 1)))
        }
    });
    crate::paging::collect(pages).await
}

/// Whether a page's links name a next page.
fn has_next(links: Option<&types::PageLinks>) -> bool {
    links.and_then(|l| l.next.as_ref()).is_some()
}

/// How far back before the login's start a connection may have been created and still count
/// for [`ApplicationSession::verify_user_id`]: 30 seconds, for the clocks of your server and
/// Smartcar's disagreeing a little. Keep it small: it widens the window described there.
pub const USER_ID_SKEW: std::time::Duration = std::time::Duration::from_secs(30);

/// Why [`ApplicationSession::verify_user_id`] did not accept a `user_id`.
///
/// The first two variants mean: **do not sign this browser in as that user**. The `user_id`
/// of a Connect redirect is an identifier anyone can copy into a URL, not a proof that the
/// browser's owner finished Connect.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum UserIdError {
    /// The platform knows no connection between this user and this application: a made-up or
    /// mistyped id, a user who never approved this application, or one who disconnected since.
    #[error(
        "user id {user_id:?} has no connection to this application: it was not approved in Smartcar Connect (a made-up or copied id, or a user who disconnected); do not sign this browser in, send it through Connect again"
    )]
    NotConnected {
        /// The rejected id (an identifier, not a secret).
        user_id: String,
    },
    /// The user has connections to this application, but none was created during this login:
    /// the id belongs to someone who approved earlier (possibly another person whose id was
    /// copied into the redirect).
    #[error(
        "user id {user_id:?} approved no vehicle during this login (newest connection created {newest:?}, login started {login_started_at}); do not sign this browser in, send it through Connect again"
    )]
    NotConnectedDuringLogin {
        /// The rejected id.
        user_id: String,
        /// When the user's newest connection was created, if the platform said.
        newest: Option<DateTime<Utc>>,
        /// When the login started (as given).
        login_started_at: DateTime<Utc>,
    },
    /// The check could not be made: malformed id, or listing the connections failed (API,
    /// transport, token). Nothing was verified; treat it as a refusal and show a retry.
    #[error("the user id could not be verified: {0}")]
    Check(#[from] Error),
}

impl ApplicationSession {
    /// The handle on the user named by a Connect redirect's `user_id` (the machine-to-machine
    /// flow, [`Redirect::UserId`](crate::Redirect::UserId)), **once the platform confirms that
    /// this user connected a vehicle to this application during this login**.
    ///
    /// The `state` of the redirect proves which browser *started* the login, not which user
    /// finished it; the `user_id` is an identifier, not a credential. Without this check a
    /// browser that starts a login and approves nothing can put any other user's id into the
    /// redirect URL and be signed in on their vehicles. This lists the user's connections to
    /// this application with the application token and accepts the user only if one of them was
    /// created at or after `login_started_at - skew` ([`USER_ID_SKEW`] is a good `skew`: the
    /// two clocks may differ a little). Keep `login_started_at` with the login's state (in
    /// your session or a sealed cookie), taken when you sent the browser to Connect.
    ///
    /// What remains: a victim who connects a vehicle to *your* application inside the window
    /// of an attacker's pending login (from its start minus `skew` until the attacker's
    /// redirect) is still accepted for the attacker. Keep logins short-lived (e.g. 10 minutes),
    /// the skew small, and each login single use.
    ///
    /// If the platform keeps a connection's original `createdAt` when a user approves again a
    /// vehicle already connected, such a re-approval is refused: ask the user to disconnect
    /// the vehicle first, or use the authorization-code flow, whose code is a credential.
    ///
    /// ```no_run
    /// # async fn demo(
    /// #     client: smartcar::Client,
    /// #     redirect_query: &str,
    /// #     state: smartcar::connect::State,
    /// #     login_started_at: std::time::SystemTime,
    /// # ) -> Result<(), Box<dyn std::error::Error>> {
    /// use smartcar::{ApplicationSession, Redirect};
    /// use smartcar::v3::USER_ID_SKEW;
    ///
    /// let app = ApplicationSession::new(&client);
    /// if let Redirect::UserId(user_id) = client.handle_redirect(redirect_query, &state)? {
    ///     // Refuses made-up ids and ids of users who connected before this login started.
    ///     let user = app.verify_user_id(&user_id, login_started_at, USER_ID_SKEW).await?;
    ///     println!("signed in as {}", user.id());
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`UserIdError::NotConnected`] (no connection at all: unknown, made up, disconnected),
    /// [`UserIdError::NotConnectedDuringLogin`] (only connections older than the login), and
    /// [`UserIdError::Check`] when the check could not be made (malformed id, API, transport,
    /// token errors).
    pub async fn verify_user_id(
        &self,
        user_id: &str,
        login_started_at: std::time::SystemTime,
        skew: std::time::Duration,
    ) -> Result<UserV3, UserIdError> {
        let user = self.user(user_id)?;
        // A login through Connect's simulated or test mode made connections of that mode.
        let connections = self.connections_any_mode(Some(user_id), None).await?;
        let started: DateTime<Utc> = login_started_at.into();
        let skew = chrono::Duration::from_std(skew).unwrap_or(chrono::Duration::MAX);
        let earliest = started
            .checked_sub_signed(skew)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        // `connections_any_mode` keeps only this user's connections, whatever the server's
        // filter did.
        let created: Vec<Option<DateTime<Utc>>> = connections
            .iter()
            .map(|c| c.meta.as_ref().and_then(|m| m.created_at))
            .collect();
        if created.is_empty() {
            return Err(UserIdError::NotConnected {
                user_id: user_id.to_owned(),
            });
        }
        if created.iter().flatten().any(|at| *at >= earliest) {
            return Ok(user);
        }
        Err(UserIdError::NotConnectedDuringLogin {
            user_id: user_id.to_owned(),
            newest: created.into_iter().flatten().max(),
            login_started_at: started,
        })
    }

    /// A handle on one Smartcar user (the `user_id` of the Connect redirect): every call sends
    /// `sc-user-id`. It trusts the id as given: for an id from a redirect, use
    /// [`verify_user_id`](Self::verify_user_id) instead.
    ///
    /// ```no_run
    /// # async fn demo(app: smartcar::ApplicationSession) -> Result<(), smartcar::Error> {
    /// let user = app.user("93b3ea2d-6a4a-4ea5-9d1b-3a5e2c8f0b71")?;
    /// println!("{:?}", user.vehicle_ids().await?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an empty or malformed id.
    pub fn user(&self, user_id: impl Into<String>) -> Result<UserV3, Error> {
        let user_id = user_id.into();
        check_id("user id", &user_id)?;
        Ok(UserV3 {
            app: self.clone(),
            user_id,
        })
    }

    /// Every connection of the application of this user and/or vehicle (all pages; live
    /// vehicles only, as the platform's default). [`connections_matching`](Self::connections_matching)
    /// takes every filter.
    ///
    /// ```no_run
    /// # async fn demo(app: smartcar::ApplicationSession) -> Result<(), smartcar::Error> {
    /// for connection in app.connections(None, None).await? {
    ///     println!("{} {:?}", connection.id, connection.attributes.permissions);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// API, transport, timeout, decode and token errors.
    pub async fn connections(
        &self,
        user_id: Option<&str>,
        vehicle_id: Option<&str>,
    ) -> Result<Vec<types::ConnectionResource>, Error> {
        let query = ConnectionQuery {
            user_id: user_id.map(str::to_owned),
            vehicle_id: vehicle_id.map(str::to_owned),
            ..ConnectionQuery::default()
        };
        self.connections_matching(&query).await
    }

    /// Every connection of the application matching `query` (all pages): by user, vehicle,
    /// the `external_id` given to Connect, or the vehicles' mode.
    ///
    /// ```no_run
    /// # async fn demo(app: smartcar::ApplicationSession) -> Result<(), smartcar::Error> {
    /// use smartcar::v3::ConnectionQuery;
    ///
    /// let query = ConnectionQuery {
    ///     external_id: Some("customer-4711".into()),
    ///     ..ConnectionQuery::default()
    /// };
    /// for connection in app.connections_matching(&query).await? {
    ///     println!("{}", connection.relationships.vehicle.data.id);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// API, transport, timeout, decode and token errors.
    pub async fn connections_matching(
        &self,
        filter: &ConnectionQuery,
    ) -> Result<Vec<types::ConnectionResource>, Error> {
        all_pages(|page| async move {
            let mut query = vec![
                ("page[number]", page.to_string()),
                ("page[size]", PAGE_SIZE.to_string()),
            ];
            let filters = [
                ("filter[userId]", filter.user_id.clone()),
                ("filter[vehicleId]", filter.vehicle_id.clone()),
                ("filter[user.externalId]", filter.external_id.clone()),
                (
                    "filter[vehicle.mode]",
                    filter.mode.as_ref().map(|m| m.as_str().to_owned()),
                ),
            ];
            query.extend(filters.into_iter().filter_map(|(k, v)| Some((k, v?))));
            let call = Call::new(
                &ops::LIST_CONNECTIONS_V3,
                self.client().origins(),
                &ops::ListConnectionsV3::path(),
                &query,
            );
            let r: Response<types::ConnectionListV3> = self.send(call, None).await?;
            Ok((r.data.data, has_next(r.data.links.as_ref())))
        })
        .await
    }

    /// The connections of a user (or of a vehicle) whatever the mode they were made in: the
    /// platform lists `live` vehicles' connections unless asked for another mode
    /// (`filter[vehicle.mode]`; that default is read from Smartcar's published spec,
    /// unverified), and a user who went through Connect's simulated or test mode has only
    /// connections of that mode. Asks for the default first, then `simulated`, then `test`,
    /// and stops at the first that has any: one request for a live user.
    ///
    /// ```no_run
    /// # async fn demo(app: smartcar::ApplicationSession) -> Result<(), smartcar::Error> {
    /// // A vehicle connected in Connect's simulated mode is found too.
    /// let found = app.connections_any_mode(None, Some("36ab27d0-fd9d-4455-823a-ce30af709ffc")).await?;
    /// println!("{:?}", found.first().map(|c| &c.relationships.user.data.id));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// API, transport, timeout, decode and token errors (an unknown id is no error: the list
    /// is empty).
    pub async fn connections_any_mode(
        &self,
        user_id: Option<&str>,
        vehicle_id: Option<&str>,
    ) -> Result<Vec<types::ConnectionResource>, Error> {
        use smartcar_api::open_enums::VehicleMode;
        let mine = |c: &types::ConnectionResource| {
            user_id.is_none_or(|u| c.relationships.user.data.id == u)
                && vehicle_id.is_none_or(|v| c.relationships.vehicle.data.id == v)
        };
        for mode in [None, Some(VehicleMode::Simulated), Some(VehicleMode::Test)] {
            let query = ConnectionQuery {
                user_id: user_id.map(str::to_owned),
                vehicle_id: vehicle_id.map(str::to_owned),
                mode,
                ..ConnectionQuery::default()
            };
            let found: Vec<_> = match self.connections_matching(&query).await {
                Ok(list) => list.into_iter().filter(|c| mine(c)).collect(),
                // An id the platform does not know at all.
                Err(Error::Api(e)) if e.status == 404 => Vec::new(),
                Err(e) => return Err(e),
            };
            if !found.is_empty() {
                return Ok(found);
            }
        }
        Ok(Vec::new())
    }

    /// One webhook of the application (webhooks are created in the Dashboard).
    ///
    /// ```no_run
    /// # async fn demo(app: smartcar::ApplicationSession) -> Result<(), smartcar::Error> {
    /// let webhook = app.webhook("3c90c3cc-0d44-4b50-8888-8dd25736052a").await?;
    /// println!("{:?}", webhook.data.attributes);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed id; API (404), transport and token errors.
    pub async fn webhook(
        &self,
        webhook_id: &str,
    ) -> Result<Response<types::WebhookResource>, Error> {
        check_id("webhook id", webhook_id)?;
        let call = Call::new(
            &ops::GET_WEBHOOK,
            self.client().origins(),
            &ops::GetWebhook::path(webhook_id),
            &[],
        );
        let r: Response<types::WebhookResponse> = self.send(call, None).await?;
        Ok(r.map(|w| w.data))
    }

    /// One connection by id.
    ///
    /// ```no_run
    /// # async fn demo(app: smartcar::ApplicationSession) -> Result<(), smartcar::Error> {
    /// let connection = app.connection("c0a8012e-7f3b-4d2a-9e1c-5b6d7e8f9a0b").await?;
    /// println!("vehicle {}", connection.data.relationships.vehicle.data.id);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed id; API (404), transport and token errors.
    pub async fn connection(
        &self,
        connection_id: &str,
    ) -> Result<Response<types::ConnectionResource>, Error> {
        check_id("connection id", connection_id)?;
        let call = Call::new(
            &ops::GET_CONNECTION_V3,
            self.client().origins(),
            &ops::GetConnectionV3::path(connection_id),
            &[],
        );
        let r: Response<types::ConnectionResponseV3> = self.send(call, None).await?;
        Ok(r.map(|c| c.data))
    }

    /// Removes a connection (disconnects the vehicle from the application).
    ///
    /// ```no_run
    /// # async fn demo(app: smartcar::ApplicationSession) -> Result<(), smartcar::Error> {
    /// app.delete_connection("c0a8012e-7f3b-4d2a-9e1c-5b6d7e8f9a0b").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed id; API, transport and token errors.
    pub async fn delete_connection(&self, connection_id: &str) -> Result<(), Error> {
        check_id("connection id", connection_id)?;
        let call = Call::new(
            &ops::DELETE_CONNECTION_V3,
            self.client().origins(),
            &ops::DeleteConnectionV3::path(connection_id),
            &[],
        );
        let _: Response<serde_json::Value> = self.send(call, None).await?;
        Ok(())
    }

    /// Every webhook subscription matching the filters (all pages).
    ///
    /// ```no_run
    /// # async fn demo(app: smartcar::ApplicationSession) -> Result<(), smartcar::Error> {
    /// let subscriptions = app.subscriptions(Some("my-webhook-id"), None, None).await?;
    /// for s in &subscriptions {
    ///     println!("{}", s.id);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// API, transport, timeout, decode and token errors.
    pub async fn subscriptions(
        &self,
        webhook_id: Option<&str>,
        vehicle_id: Option<&str>,
        user_id: Option<&str>,
    ) -> Result<Vec<types::SubscriptionResource>, Error> {
        all_pages(|page| async move {
            let mut query = vec![
                ("page[number]", page.to_string()),
                ("page[size]", PAGE_SIZE.to_string()),
            ];
            for (k, v) in [
                ("filter[webhookId]", webhook_id),
                ("filter[vehicleId]", vehicle_id),
                ("filter[userId]", user_id),
            ] {
                if let Some(v) = v {
                    query.push((k, v.to_owned()));
                }
            }
            let call = Call::new(
                &ops::LIST_SUBSCRIPTIONS,
                self.client().origins(),
                &ops::ListSubscriptions::path(),
                &query,
            );
            let r: Response<types::SubscriptionList> = self.send(call, None).await?;
            Ok((r.data.data, has_next(r.data.links.as_ref())))
        })
        .await
    }

    /// The application's webhooks (management API v3, `GET /v3/webhooks`), every page, with
    /// optional filters: `name` and `callback_uri` match case-insensitively by substring.
    ///
    /// ```no_run
    /// # async fn demo(app: smartcar::ApplicationSession) -> Result<(), smartcar::Error> {
    /// for webhook in app.webhooks(None, None).await? {
    ///     println!("{} {:?} {:?}", webhook.id, webhook.attributes.name, webhook.attributes.callback_uri);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// API, transport, timeout, decode and token errors.
    pub async fn webhooks(
        &self,
        name: Option<&str>,
        callback_uri: Option<&str>,
    ) -> Result<Vec<types::WebhookResource>, Error> {
        all_pages(|page| async move {
            let mut query = vec![
                ("page[number]", page.to_string()),
                ("page[size]", PAGE_SIZE.to_string()),
            ];
            for (k, v) in [
                ("filter[name]", name),
                ("filter[callbackUri]", callback_uri),
            ] {
                if let Some(v) = v {
                    query.push((k, v.to_owned()));
                }
            }
            let call = Call::new(
                &ops::LIST_WEBHOOKS,
                self.client().origins(),
                &ops::ListWebhooks::path(),
                &query,
            );
            let r: Response<types::WebhookList> = self.send(call, None).await?;
            Ok((r.data.data, has_next(r.data.links.as_ref())))
        })
        .await
    }

    /// One webhook subscription by id.
    ///
    /// ```no_run
    /// # async fn demo(app: smartcar::ApplicationSession) -> Result<(), smartcar::Error> {
    /// let subscription = app.subscription("5f2d8e6a-1b3c-4d5e-8f9a-0b1c2d3e4f5a").await?;
    /// println!("{:?}", subscription.data.attributes);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed id; API, transport and token errors.
    pub async fn subscription(
        &self,
        subscription_id: &str,
    ) -> Result<Response<types::SubscriptionResource>, Error> {
        check_id("subscription id", subscription_id)?;
        let call = Call::new(
            &ops::GET_SUBSCRIPTION,
            self.client().origins(),
            &ops::GetSubscription::path(subscription_id),
            &[],
        );
        let r: Response<types::SubscriptionResponse> = self.send(call, None).await?;
        Ok(r.map(|s| s.data))
    }

    /// Deletes a webhook subscription (unsubscribes the vehicle).
    ///
    /// ```no_run
    /// # async fn demo(app: smartcar::ApplicationSession) -> Result<(), smartcar::Error> {
    /// app.unsubscribe("5f2d8e6a-1b3c-4d5e-8f9a-0b1c2d3e4f5a").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed id; API, transport and token errors.
    pub async fn unsubscribe(&self, subscription_id: &str) -> Result<(), Error> {
        check_id("subscription id", subscription_id)?;
        let call = Call::new(
            &ops::DELETE_SUBSCRIPTION,
            self.client().origins(),
            &ops::DeleteSubscription::path(subscription_id),
            &[],
        );
        let _: Response<serde_json::Value> = self.send(call, None).await?;
        Ok(())
    }

    /// Subscribes a user's vehicle to a webhook (management API v3; answered 202: creation is
    /// asynchronous and the first delivery follows).
    ///
    /// ```no_run
    /// # async fn demo(app: smartcar::ApplicationSession, user: smartcar::v3::UserV3, vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
    /// app.subscribe("my-webhook-id", vehicle.id(), user.id()).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for malformed ids; API, transport, timeout and token errors.
    pub async fn subscribe(
        &self,
        webhook_id: &str,
        vehicle_id: &str,
        user_id: &str,
    ) -> Result<(), Error> {
        check_id("webhook id", webhook_id)?;
        check_id("vehicle id", vehicle_id)?;
        check_id("user id", user_id)?;
        let body = types::SubscriptionRequest {
            data: types::SubscriptionRequestData {
                attributes: types::SubscriptionRequestDataAttributes {
                    webhook_id: webhook_id.to_owned(),
                    vehicle_id: vehicle_id.to_owned(),
                    user_id: Some(user_id.to_owned()),
                },
            },
        };
        let call = Call::new(
            &ops::CREATE_SUBSCRIPTION,
            self.client().origins(),
            &ops::CreateSubscription::path(),
            &[],
        )
        .json(Some(&body))?;
        let _: Response<serde_json::Value> = self.send(call, None).await?;
        Ok(())
    }

    /// Sends a call with the application token (renewed once after a 401), as the user
    /// `user_id` when given (`sc-user-id`).
    async fn send<T: DeserializeOwned>(
        &self,
        call: Call,
        user_id: Option<&str>,
    ) -> Result<Response<T>, Error> {
        self.client()
            .send(call, Authorizer::App(self, user_id))
            .await
    }
}

/// One Smartcar user, seen by the application (v3): connections and vehicles.
///
/// ```no_run
/// # async fn demo(app: smartcar::ApplicationSession) -> Result<(), smartcar::Error> {
/// let user = app.user("93b3ea2d-6a4a-4ea5-9d1b-3a5e2c8f0b71")?;
/// for vehicle_id in user.vehicle_ids().await? {
///     let info = user.vehicle(vehicle_id)?.info().await?;
///     println!("{} {}", info.data.attributes.make, info.data.attributes.model);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct UserV3 {
    app: ApplicationSession,
    user_id: String,
}

impl UserV3 {
    /// The Smartcar user id.
    ///
    /// ```no_run
    /// # fn demo(user: smartcar::v3::UserV3) {
    /// println!("user {}", user.id());
    /// # }
    /// ```
    pub fn id(&self) -> &str {
        &self.user_id
    }

    /// This user's connections (all pages), in the mode they were made in: live, else
    /// simulated, else test (a user who went through Connect's simulated or test mode has
    /// connections of that mode only, which the platform lists only when asked).
    ///
    /// ```no_run
    /// # async fn demo(user: smartcar::v3::UserV3) -> Result<(), smartcar::Error> {
    /// for connection in user.connections().await? {
    ///     println!("{} {:?}", connection.relationships.vehicle.data.id, connection.attributes.permissions);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// API, transport, timeout, decode and token errors.
    pub async fn connections(&self) -> Result<Vec<types::ConnectionResource>, Error> {
        self.app
            .connections_any_mode(Some(&self.user_id), None)
            .await
    }

    /// The ids of the vehicles this user connected.
    ///
    /// ```no_run
    /// # async fn demo(user: smartcar::v3::UserV3) -> Result<(), smartcar::Error> {
    /// let ids: Vec<String> = user.vehicle_ids().await?;
    /// println!("{} vehicles", ids.len());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`connections`](Self::connections).
    pub async fn vehicle_ids(&self) -> Result<Vec<String>, Error> {
        Ok(self
            .connections()
            .await?
            .into_iter()
            .map(|c| c.relationships.vehicle.data.id)
            .collect())
    }

    /// A handle on one of the user's vehicles. Cheap; no request is sent.
    ///
    /// ```no_run
    /// # async fn demo(user: smartcar::v3::UserV3) -> Result<(), smartcar::Error> {
    /// let vehicle = user.vehicle("36ab27d0-fd9d-4455-823a-ce30af709ffc")?;
    /// vehicle.lock().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an empty or malformed id.
    pub fn vehicle(&self, vehicle_id: impl Into<String>) -> Result<VehicleV3, Error> {
        let id = vehicle_id.into();
        check_id("vehicle id", &id)?;
        Ok(VehicleV3 {
            user: self.clone(),
            id,
        })
    }

    /// Removes the user and all their connections and data (`DELETE /v3/users/{id}`).
    ///
    /// ```no_run
    /// # async fn demo(user: smartcar::v3::UserV3) -> Result<(), smartcar::Error> {
    /// user.delete().await?; // the user, their connections and their data
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// API, transport, timeout and token errors.
    pub async fn delete(&self) -> Result<(), Error> {
        let call = Call::new(
            &ops::DELETE_USER_V3,
            self.app.client().origins(),
            &ops::DeleteUserV3::path(&self.user_id),
            &[],
        );
        let _: Response<serde_json::Value> = self.app.send(call, None).await?;
        Ok(())
    }
}

/// A signal's value with its status and timestamps. Unknown signal codes are kept
/// ([`SignalCode::Unknown`]).
///
/// ```no_run
/// # async fn demo(vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
/// use smartcar::v3::SignalCode;
///
/// let signal = vehicle.signal(SignalCode::OdometerTraveleddistance).await?;
/// if signal.is_success() {
///     println!("{:?} {:?} at {:?}", signal.number(), signal.unit(), signal.retrieved_at);
/// }
/// # Ok(()) }
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    /// The code, e.g. [`SignalCode::TractionbatteryStateofcharge`].
    pub code: SignalCode,
    /// PascalCase name (`StateOfCharge`).
    pub name: Option<String>,
    /// PascalCase group (`TractionBattery`).
    pub group: Option<String>,
    /// `SUCCESS`, `ERROR` or `UNAVAILABLE`.
    pub status: SignalStatusValue,
    /// The error when the status is `ERROR`.
    pub error: Option<types::SignalError>,
    /// The body as sent (`{unit, value}`, `{value}`, `{values: [...]}`, or specific).
    pub body: serde_json::Map<String, serde_json::Value>,
    /// When Smartcar retrieved the value (sent as epoch milliseconds or ISO-8601 text; `None`
    /// when absent or unreadable).
    pub retrieved_at: Option<DateTime<Utc>>,
    /// When the manufacturer last updated it.
    pub oem_updated_at: Option<DateTime<Utc>>,
}

impl Signal {
    /// `body.value` as a number (`{unit, value}` and numeric `{value}` signals).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
    /// let soc = vehicle.signal(smartcar::v3::SignalCode::TractionbatteryStateofcharge).await?;
    /// if let Some(percent) = soc.number() {
    ///     println!("{percent} %");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn number(&self) -> Option<f64> {
        self.body.get("value").and_then(serde_json::Value::as_f64)
    }

    /// `body.value` as a boolean (`IsLocked`, `IsCharging`, …).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
    /// let signal = vehicle.signal("closure-islocked").await?;
    /// println!("locked: {:?}", signal.flag());
    /// # Ok(()) }
    /// ```
    pub fn flag(&self) -> Option<bool> {
        self.body.get("value").and_then(serde_json::Value::as_bool)
    }

    /// `body.value` as text (`GearState`, `Nickname`, …).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
    /// let signal = vehicle.signal("transmission-gearstate").await?;
    /// println!("gear: {:?}", signal.text());
    /// # Ok(()) }
    /// ```
    pub fn text(&self) -> Option<&str> {
        self.body.get("value").and_then(serde_json::Value::as_str)
    }

    /// `body.unit` (`kilometers`, `percent`, `kWh`, …).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
    /// let signal = vehicle.signal(smartcar::v3::SignalCode::OdometerTraveleddistance).await?;
    /// println!("{:?} {}", signal.number(), signal.unit().unwrap_or(""));
    /// # Ok(()) }
    /// ```
    pub fn unit(&self) -> Option<&str> {
        self.body.get("unit").and_then(serde_json::Value::as_str)
    }

    /// Whether the value was retrieved.
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
    /// for signal in vehicle.signals().await? {
    ///     if !signal.is_success() {
    ///         println!("{:?}: {:?} {:?}", signal.code, signal.status, signal.error);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_success(&self) -> bool {
        self.status == SignalStatusValue::Success
    }

    pub(crate) fn from_resource(r: types::SignalResource) -> Signal {
        // Epoch milliseconds or ISO-8601 text: Smartcar's evidence shows both.
        let ms = |v: Option<&types::Timestamp>| v.and_then(types::Timestamp::to_datetime);
        Signal {
            code: r.attributes.code,
            name: r.attributes.name,
            group: r.attributes.group,
            status: r.attributes.status.value,
            error: r.attributes.status.error,
            body: r.attributes.body,
            retrieved_at: ms(r.meta.as_ref().and_then(|m| m.retrieved_at.as_ref())),
            oem_updated_at: ms(r.meta.as_ref().and_then(|m| m.oem_updated_at.as_ref())),
        }
    }
}

/// Every signal of a vehicle ([`VehicleV3::signals`]): a slice of [`Signal`] (it derefs to
/// `[Signal]` and iterates), and a hint when it is empty.
///
/// ```no_run
/// # async fn demo(vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
/// let signals = vehicle.signals().await?;
/// println!("{} signals, {} read", signals.len(), signals.iter().filter(|s| s.is_success()).count());
/// let all: Vec<smartcar::v3::Signal> = signals.into_vec();
/// # let _ = all;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Signals {
    signals: Vec<Signal>,
}

impl Signals {
    /// Why the list is empty, if it is: see [`EmptySignalsHint`].
    pub fn empty_hint(&self) -> Option<EmptySignalsHint> {
        self.signals
            .is_empty()
            .then_some(EmptySignalsHint::NoStoredValues)
    }

    /// The signals.
    pub fn into_vec(self) -> Vec<Signal> {
        self.signals
    }
}

impl std::ops::Deref for Signals {
    type Target = [Signal];

    fn deref(&self) -> &[Signal] {
        &self.signals
    }
}

impl IntoIterator for Signals {
    type Item = Signal;
    type IntoIter = std::vec::IntoIter<Signal>;

    fn into_iter(self) -> Self::IntoIter {
        self.signals.into_iter()
    }
}

impl<'a> IntoIterator for &'a Signals {
    type Item = &'a Signal;
    type IntoIter = std::slice::Iter<'a, Signal>;

    fn into_iter(self) -> Self::IntoIter {
        self.signals.iter()
    }
}

/// Why [`VehicleV3::signals`] answered no signal at all (the platform's `200` with
/// `data: []`), with what to do in its `Display`.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmptySignalsHint {
    /// Smartcar holds no stored value for this vehicle. v3 signal reads are answered from the
    /// values Smartcar stores, which it collects for a vehicle subscribed to a webhook with data
    /// signals; subscribe it ([`ApplicationSession::subscribe`]) and read again after the first
    /// delivery. (Observed against the live platform by a third party; not in Smartcar's docs.)
    NoStoredValues,
}

impl std::fmt::Display for EmptySignalsHint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EmptySignalsHint::NoStoredValues => f.write_str(
                "Smartcar answered no signal for this vehicle: v3 signal reads come from the values \
                 Smartcar stores for vehicles subscribed to a webhook with data signals; subscribe \
                 the vehicle (ApplicationSession::subscribe) and read again after its first delivery",
            ),
        }
    }
}

/// The filters of [`ApplicationSession::connections_matching`]; `None` leaves one out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionQuery {
    /// Only this user's connections (`filter[userId]`).
    pub user_id: Option<String>,
    /// Only this vehicle's (`filter[vehicleId]`).
    pub vehicle_id: Option<String>,
    /// Only those made through a Connect URL with this `external_id`
    /// (`filter[user.externalId]`).
    pub external_id: Option<String>,
    /// `live` (the platform's default) or `simulated` vehicles (`filter[vehicle.mode]`).
    pub mode: Option<smartcar_api::open_enums::VehicleMode>,
}

/// The charge timers of a vehicle ([`VehicleV3::charge_schedules`]).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct ChargeSchedules {
    /// `SUCCESS`, or why there are no timers (`ERROR`, `UNAVAILABLE`).
    pub status: SignalStatusValue,
    /// The error when the status is `ERROR`.
    pub error: Option<types::SignalError>,
    /// Every timer (empty unless the status is `SUCCESS`).
    pub timers: Vec<types::ChargeTimer>,
    /// When Smartcar retrieved them.
    pub retrieved_at: Option<DateTime<Utc>>,
}

/// A v3 command without a body.
macro_rules! v3_command {
    ($(#[$doc:meta])* $name:ident, $marker:ident) => {
        $(#[$doc])*
        ///
        /// ```no_run
        /// # async fn demo(vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
        #[doc = concat!("let execution = vehicle.", stringify!($name), "().await?;")]
        /// println!("{} {:?}", execution.data.id, execution.data.attributes);
        /// # Ok(()) }
        /// ```
        ///
        /// # Errors
        ///
        /// API errors (409 `VEHICLE_STATE`, 501 `COMPATIBILITY`…), transport, timeout and
        /// token errors.
        pub async fn $name(&self) -> Result<Response<types::CommandExecution>, Error> {
            self.command::<ops::$marker>(&ops::$marker::path(&self.id), None)
                .await
        }
    };
}

/// One vehicle of a [`UserV3`]: its resource, signals and commands.
///
/// ```no_run
/// # async fn demo(user: smartcar::v3::UserV3) -> Result<(), smartcar::Error> {
/// use smartcar::v3::SignalCode;
///
/// let vehicle = user.vehicle("36ab27d0-fd9d-4455-823a-ce30af709ffc")?;
/// let soc = vehicle.signal(SignalCode::TractionbatteryStateofcharge).await?;
/// println!("{:?}", soc.number());
/// vehicle.start_charge().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct VehicleV3 {
    user: UserV3,
    id: String,
}

impl VehicleV3 {
    /// The vehicle id.
    ///
    /// ```no_run
    /// # fn demo(vehicle: smartcar::v3::VehicleV3) {
    /// println!("vehicle {}", vehicle.id());
    /// # }
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Sends a call of this vehicle as its user.
    async fn send<T: DeserializeOwned>(&self, call: Call) -> Result<Response<T>, Error> {
        self.user.app.send(call, Some(&self.user.user_id)).await
    }

    /// A call of `op` at `path` (from `op`'s path function), with `query`.
    fn call(&self, op: &'static Operation, path: &str, query: &[(&str, String)]) -> Call {
        Call::new(op, self.user.app.client().origins(), path, query)
    }

    /// Make, model, year, powertrain and mode. The live API answers the resource itself and
    /// Smartcar's docs show it wrapped in `data`: both are read.
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
    /// let info = vehicle.info().await?;
    /// let a = &info.data.attributes;
    /// println!("{} {} {}", a.year, a.make, a.model);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// API, transport, timeout, decode and token errors.
    pub async fn info(&self) -> Result<Response<types::VehicleResource>, Error> {
        let call = self.call(
            &ops::GET_VEHICLE_V3,
            &ops::GetVehicleV3::path(&self.id),
            &[],
        );
        // The live API answers the resource itself; Smartcar's docs show it wrapped in `data`.
        let r: Response<types::VehicleResponse> = self.send(call).await?;
        Ok(r.map(|v| match v {
            types::VehicleResponse::Resource(resource) => resource,
            types::VehicleResponse::ResponseWrapped(wrapped) => wrapped.data,
        }))
    }

    /// Every signal of the vehicle (all pages). Each carries its own status: a signal the
    /// vehicle could not provide is in the list with status `ERROR` or `UNAVAILABLE`, not an
    /// HTTP error. An empty list comes with a hint ([`Signals::empty_hint`]).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
    /// let signals = vehicle.signals().await?;
    /// if let Some(hint) = signals.empty_hint() {
    ///     eprintln!("{hint}");
    /// }
    /// for signal in &signals {
    ///     println!("{:?} = {:?}", signal.code, signal.body);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// API, transport, timeout, decode and token errors.
    pub async fn signals(&self) -> Result<Signals, Error> {
        let signals = all_pages(|page| async move {
            let query = [
                ("page", page.to_string()),
                ("pageSize", PAGE_SIZE.to_string()),
            ];
            let call = self.call(
                &ops::LIST_SIGNALS,
                &ops::ListSignals::path(&self.id),
                &query,
            );
            let r: Response<types::SignalsResponse> = self.send(call).await?;
            let more = has_next(r.data.links.as_ref());
            Ok((
                r.data.data.into_iter().map(Signal::from_resource).collect(),
                more,
            ))
        })
        .await?;
        Ok(Signals { signals })
    }

    /// One signal by code (e.g. `SignalCode::OdometerTraveleddistance`, or any code as a string).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
    /// use smartcar::v3::SignalCode;
    ///
    /// let odometer = vehicle.signal(SignalCode::OdometerTraveleddistance).await?;
    /// let other = vehicle.signal("tractionbattery-stateofcharge").await?;
    /// println!("{:?} {:?}", odometer.number(), other.number());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed code; API (404 for an unknown code), transport,
    /// timeout, decode and token errors.
    pub async fn signal(&self, code: impl Into<SignalCode>) -> Result<Signal, Error> {
        let code = code.into();
        let s = code.as_str();
        if s.is_empty()
            || !s
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(Error::invalid(
                "signal code",
                format!("`{s}` is not a signal code"),
            ));
        }
        let call = self.call(&ops::GET_SIGNAL, &ops::GetSignal::path(&self.id, s), &[]);
        let r: Response<types::SignalResource> = self.send(call).await?;
        Ok(Signal::from_resource(r.data))
    }

    /// The operation `E` at `path` (from `E`'s path function), with its body; the body and the
    /// answer are those of `E` (a compile error otherwise). Not retried unless `E` is
    /// idempotent: a command may have reached the vehicle.
    async fn endpoint<E>(
        &self,
        path: &str,
        body: Option<&E::Request>,
    ) -> Result<Response<E::Response>, Error>
    where
        E: Endpoint,
        E::Request: Serialize,
        E::Response: DeserializeOwned,
    {
        let call = self.call(E::OP, path, &[]).json(body)?;
        self.send(call).await
    }

    /// A command `E` at `path`, with its body: its execution record.
    async fn command<E>(
        &self,
        path: &str,
        body: Option<&E::Request>,
    ) -> Result<Response<types::CommandExecution>, Error>
    where
        E: Endpoint<Response = types::CommandExecutionResponse>,
        E::Request: Serialize,
    {
        Ok(self.endpoint::<E>(path, body).await?.map(|c| c.data))
    }

    /// A charge-schedule operation `E` at `path`, with its body: its execution record.
    async fn schedule<E>(
        &self,
        path: &str,
        body: Option<&E::Request>,
    ) -> Result<Response<types::ChargeScheduleExecution>, Error>
    where
        E: Endpoint<Response = types::ChargeScheduleExecutionResponse>,
        E::Request: Serialize,
    {
        Ok(self.endpoint::<E>(path, body).await?.map(|c| c.data))
    }

    /// Creates a daily charge schedule at `location` (`control_charge`; Tesla and Volvo, other
    /// makes answer 501 `COMPATIBILITY`). The execution's `scheduleId` is what
    /// [`delete_charge_schedule`](Self::delete_charge_schedule) takes; the schedule also shows
    /// in [`charge_schedules`](Self::charge_schedules).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
    /// use smartcar::v3::{ChargeLocation, ChargingWindow};
    ///
    /// let home = ChargeLocation::new(37.7749, -122.4194)?;
    /// let created = vehicle
    ///     .set_daily_charge_schedule(home, ChargingWindow::parse("22:00", "06:00")?)
    ///     .await?;
    /// println!("schedule {:?}", created.data.attributes.schedule_id);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// API errors (501 `COMPATIBILITY` for a make without schedules, 403 without
    /// `control_charge`), transport and token errors. Not retried: it may have reached the car.
    pub async fn set_daily_charge_schedule(
        &self,
        location: crate::v3::ChargeLocation,
        window: crate::v3::ChargingWindow,
    ) -> Result<Response<types::ChargeScheduleExecution>, Error> {
        let body = crate::schedules::daily_body(location, window);
        self.schedule::<ops::SetDailyChargeScheduleV3>(
            &ops::SetDailyChargeScheduleV3::path(&self.id),
            Some(&body),
        )
        .await
    }

    /// Creates a weekly charge schedule: its own window per weekday (Tesla).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
    /// use chrono::Weekday;
    /// use smartcar::v3::{ChargeLocation, ChargingWindow, WeeklySchedule};
    ///
    /// let night = ChargingWindow::parse("22:00", "06:00")?;
    /// let week = WeeklySchedule::new().day(Weekday::Mon, night).day(Weekday::Thu, night);
    /// vehicle.set_weekly_charge_schedule(ChargeLocation::new(37.7749, -122.4194)?, &week).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a week without a day; as
    /// [`set_daily_charge_schedule`](Self::set_daily_charge_schedule) otherwise.
    pub async fn set_weekly_charge_schedule(
        &self,
        location: crate::v3::ChargeLocation,
        week: &crate::v3::WeeklySchedule,
    ) -> Result<Response<types::ChargeScheduleExecution>, Error> {
        let body = crate::schedules::weekly_body(location, week)?;
        self.schedule::<ops::SetWeeklyChargeScheduleV3>(
            &ops::SetWeeklyChargeScheduleV3::path(&self.id),
            Some(&body),
        )
        .await
    }

    /// Creates a workweek charge schedule: one window Monday to Friday, one at the weekend
    /// (Tesla).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
    /// use smartcar::v3::{ChargeLocation, ChargingWindow};
    ///
    /// vehicle
    ///     .set_workweek_charge_schedule(
    ///         ChargeLocation::new(37.7749, -122.4194)?,
    ///         ChargingWindow::parse("22:00", "06:00")?,
    ///         ChargingWindow::parse("00:00", "08:00")?,
    ///     )
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`set_daily_charge_schedule`](Self::set_daily_charge_schedule).
    pub async fn set_workweek_charge_schedule(
        &self,
        location: crate::v3::ChargeLocation,
        weekdays: crate::v3::ChargingWindow,
        weekends: crate::v3::ChargingWindow,
    ) -> Result<Response<types::ChargeScheduleExecution>, Error> {
        let body = crate::schedules::workweek_body(location, weekdays, weekends);
        self.schedule::<ops::SetWorkweekChargeScheduleV3>(
            &ops::SetWorkweekChargeScheduleV3::path(&self.id),
            Some(&body),
        )
        .await
    }

    /// Deletes a charge schedule by the `scheduleId` its creation answered (or that a LOCATION
    /// timer of [`charge_schedules`](Self::charge_schedules) carries).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
    /// for timer in vehicle.charge_schedules().await?.timers {
    ///     if let Some(id) = &timer.schedule_id {
    ///         vehicle.delete_charge_schedule(id).await?;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed id; API (404 for an unknown schedule),
    /// transport and token errors.
    pub async fn delete_charge_schedule(
        &self,
        schedule_id: &str,
    ) -> Result<Response<types::ChargeScheduleExecution>, Error> {
        check_id("schedule id", schedule_id)?;
        self.schedule::<ops::DeleteChargeScheduleV3>(
            &ops::DeleteChargeScheduleV3::path(&self.id, schedule_id),
            None,
        )
        .await
    }

    /// Every charge timer of the vehicle, those set in the car or its app included: the
    /// `charge-chargetimers` signal, which is how Smartcar's docs say to read schedules back.
    /// Timers created through the API carry `schedule_type` and `schedule_id`. As for every v3
    /// signal, a vehicle that could not provide it is not an HTTP error: the answer's `status`
    /// says so (and `timers` is empty).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
    /// let schedules = vehicle.charge_schedules().await?;
    /// for timer in &schedules.timers {
    ///     println!("{:?} {:?} {:?}", timer.type_, timer.schedule_id, timer.schedules);
    /// }
    /// if let Some(error) = &schedules.error {
    ///     println!("not available: {error:?}");
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the signal's body is not a list of timers; API, transport and
    /// token errors.
    pub async fn charge_schedules(&self) -> Result<ChargeSchedules, Error> {
        let signal = self.signal(SignalCode::ChargeChargetimers).await?;
        let timers = if signal.body.is_empty() {
            Vec::new()
        } else {
            let body: types::ChargeTimersBody =
                serde_json::from_value(serde_json::Value::Object(signal.body)).map_err(|e| {
                    Error::Decode(Box::new(crate::error::DecodeError {
                        operation: format!(
                            "{} {} (charge-chargetimers)",
                            ops::GET_SIGNAL.method.as_str(),
                            ops::GET_SIGNAL.path
                        ),
                        status: Some(200),
                        request_id: None,
                        message: format!("the signal body is not a list of charge timers: {e}"),
                        body_excerpt: String::new(),
                    }))
                })?;
            body.values
        };
        Ok(ChargeSchedules {
            status: signal.status,
            error: signal.error,
            timers,
            retrieved_at: signal.retrieved_at,
        })
    }

    v3_command!(
        /// Locks the vehicle (`control_security`).
        lock, LockV3
    );
    v3_command!(
        /// Unlocks the vehicle (`control_security`).
        unlock, UnlockV3
    );
    v3_command!(
        /// Starts charging (`control_charge`).
        start_charge, StartChargeV3
    );
    v3_command!(
        /// Stops charging (`control_charge`).
        stop_charge, StopChargeV3
    );

    /// Sets the charge limit (`control_charge`). v3 encodes it as a percentage; the
    /// [`ChargeLimit`](crate::ChargeLimit) does that, whichever unit it was built from.
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
    /// use smartcar::ChargeLimit;
    ///
    /// vehicle.set_charge_limit(ChargeLimit::percent(80.0)?).await?; // sends {"percent": 80.0}
    /// # Ok(()) }
    /// ```
    ///
    /// A bare number does not compile:
    ///
    /// ```compile_fail
    /// # async fn demo(vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
    /// vehicle.set_charge_limit(80.0).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// API and transport errors.
    pub async fn set_charge_limit(
        &self,
        limit: crate::ChargeLimit,
    ) -> Result<Response<types::CommandExecution>, Error> {
        self.command::<ops::SetChargeLimitV3>(
            &ops::SetChargeLimitV3::path(&self.id),
            Some(&limit.v3_body()),
        )
        .await
    }

    /// Sends a destination to the navigation system (`control_navigation`); the same name and
    /// argument as [`Vehicle::set_destination`](crate::v2::Vehicle::set_destination).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
    /// use smartcar::Destination;
    ///
    /// let execution = vehicle.set_destination(Destination::new(37.7749, -122.4194)?).await?;
    /// println!("{}", execution.data.id);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// API and transport errors.
    pub async fn set_destination(
        &self,
        destination: crate::Destination,
    ) -> Result<Response<types::CommandExecution>, Error> {
        self.command::<ops::SetDestinationV3>(
            &ops::SetDestinationV3::path(&self.id),
            Some(&destination.v3_body()),
        )
        .await
    }

    /// Follows a command the platform accepted but had not finished (a `202 Accepted` with
    /// status `PENDING`, `executionMode: async`): reads its recorded execution until its status
    /// is final ([`CommandStatusValue::is_final`](smartcar_api::open_enums::CommandStatusValue::is_final)),
    /// first after 2 seconds, then doubling the wait up to 30 seconds, for at most `max_wait`
    /// (by the client's clock). An execution already final is returned as is, without a request.
    /// Reading the execution is a GET: it is retried like any read; the command itself is never
    /// sent again.
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
    /// use std::time::Duration;
    ///
    /// let accepted = vehicle.unlock().await?.data;
    /// let done = vehicle.wait_for_command(accepted, Duration::from_secs(300)).await?;
    /// if !done.attributes.status.value.is_final() {
    ///     println!("still running after 5 minutes: {}", done.id);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// Those of [`command_execution`](Self::command_execution). Still running after `max_wait`
    /// is not an error: the last record is returned (its status not final).
    pub async fn wait_for_command(
        &self,
        execution: types::CommandExecution,
        max_wait: std::time::Duration,
    ) -> Result<types::CommandExecution, Error> {
        const FIRST: std::time::Duration = std::time::Duration::from_secs(2);
        const LONGEST: std::time::Duration = std::time::Duration::from_secs(30);
        let client = self.user.app.client();
        let start = client.inner.clock.now();
        let deadline =
            start + chrono::Duration::from_std(max_wait).unwrap_or(chrono::Duration::MAX);
        let mut wait = FIRST;
        let mut current = execution;
        // Bounded twice: by the deadline, and by as many reads as `max_wait` holds first waits
        // (a clock that does not move, or a sleep that does not wait, cannot loop us).
        let most = max_wait.as_secs() / FIRST.as_secs() + 1;
        for _ in 0..most {
            let now = client.inner.clock.now();
            if current.attributes.status.value.is_final() || now >= deadline {
                break;
            }
            let left = (deadline - now).to_std().unwrap_or_default();
            client.inner.sleep.sleep(wait.min(left)).await;
            current = self.command_execution(&current.id).await?.data;
            wait = (wait * 2).min(LONGEST);
        }
        Ok(current)
    }

    /// A command execution recorded earlier (e.g. to follow an asynchronous one).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v3::VehicleV3) -> Result<(), smartcar::Error> {
    /// let started = vehicle.unlock().await?;
    /// let now = vehicle.command_execution(&started.data.id).await?;
    /// println!("{:?}", now.data.attributes);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed id; API, transport, timeout and token errors.
    pub async fn command_execution(
        &self,
        execution_id: &str,
    ) -> Result<Response<types::CommandExecution>, Error> {
        check_id("execution id", execution_id)?;
        let call = self.call(
            &ops::GET_COMMAND_EXECUTION,
            &ops::GetCommandExecution::path(&self.id, execution_id),
            &[],
        );
        let r: Response<types::CommandExecutionResponse> = self.send(call).await?;
        Ok(r.map(|c| c.data))
    }
}
