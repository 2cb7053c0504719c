//! The simulated platform's data: the registered application, users, vehicles, connections,
//! authorization codes, tokens and webhooks. Everything lives in one [`World`] behind one mutex
//! (see `state.rs`); handlers lock it briefly, never across an `.await`.
//!
//! Vehicle state is kept in metric units (km, litres, kPa, kWh) and converted on output.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};

/// `x` rounded to `digits` decimals: how the simulator draws readings and how both APIs quote
/// computed ones (ranges, converted units, percentages).
pub(crate) fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// The application registered with the simulator (what a developer creates in the Dashboard).
#[derive(Clone, Debug)]
pub struct App {
    /// OAuth client id (a UUID).
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// Registered redirect URIs (exact match, as the real platform requires).
    pub redirect_uris: Vec<String>,
    /// Application management token: webhook signatures and the v2.0 management API.
    pub amt: String,
    /// Display name shown on the Connect page.
    pub name: String,
    /// Registered redirect URIs that use the v3 / application-token flow: Connect redirects to
    /// them with `user_id` + `state` instead of `code` + `state`. (The real platform decides
    /// this by the application's settings; the simulator by the redirect URI.) Every URI here
    /// is registered as well, whether or not `redirect_uris` lists it.
    pub user_id_redirect_uris: Vec<String>,
}

/// A person with a connected-services account: logs in on the Connect page.
#[derive(Clone, Debug)]
pub struct SimUser {
    /// Smartcar user id (a UUID): `GET /v2.0/user`, the v3 `user_id` redirect, `sc-user-id`.
    pub id: String,
    /// Login shown on the Connect page.
    pub email: String,
    /// The vehicles on this user's account, in display order.
    pub vehicle_ids: Vec<String>,
}

/// Powertrain of a simulated vehicle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Powertrain {
    /// Battery electric.
    Bev,
    /// Internal combustion.
    Ice,
    /// Plug-in hybrid.
    Phev,
    /// (Non plug-in) hybrid.
    Hev,
}

impl Powertrain {
    /// Every powertrain, in the order the compatibility answers list them.
    pub const ALL: [Powertrain; 4] = [
        Powertrain::Bev,
        Powertrain::Ice,
        Powertrain::Phev,
        Powertrain::Hev,
    ];

    /// The platform's name (`BEV`, `ICE`, `PHEV`, `HEV`).
    pub fn as_str(self) -> &'static str {
        match self {
            Powertrain::Bev => "BEV",
            Powertrain::Ice => "ICE",
            Powertrain::Phev => "PHEV",
            Powertrain::Hev => "HEV",
        }
    }

    /// Has a traction battery that plugs in (battery, charge endpoints).
    pub fn plugs_in(self) -> bool {
        matches!(self, Powertrain::Bev | Powertrain::Phev)
    }

    /// Has a fuel tank (fuel endpoint, engine oil).
    pub fn burns_fuel(self) -> bool {
        !matches!(self, Powertrain::Bev)
    }
}

/// Fuel tank state (ICE, PHEV, HEV).
#[derive(Clone, Debug, PartialEq)]
pub struct Fuel {
    /// Tank size in litres.
    pub capacity_liters: f64,
    /// Fill level, fraction 0–1.
    pub percent: f64,
    /// Range on a full tank in km.
    pub full_range_km: f64,
}

impl Fuel {
    /// Fuel left, litres.
    pub fn amount_liters(&self) -> f64 {
        self.percent * self.capacity_liters
    }

    /// Range on the fuel left, km.
    pub fn range_km(&self) -> f64 {
        self.percent * self.full_range_km
    }
}

/// Traction battery state (BEV, PHEV).
#[derive(Clone, Debug, PartialEq)]
pub struct Battery {
    /// Usable capacity in kWh.
    pub capacity_kwh: f64,
    /// State of charge, fraction 0–1.
    pub percent: f64,
    /// Range at 100 % in km.
    pub full_range_km: f64,
    /// Whether Smartcar "determined" the nominal capacity (source `SMARTCAR`, one candidate)
    /// or the user must pick among candidates (null capacity, several candidates, a URL).
    pub nominal_determined: bool,
    /// Plugged in.
    pub plugged_in: bool,
    /// Charging right now.
    pub charging: bool,
    /// Charge limit, fraction 0.5–1.
    pub charge_limit: f64,
}

impl Battery {
    /// Range on the charge left, km.
    pub fn range_km(&self) -> f64 {
        self.percent * self.full_range_km
    }

    /// Charged to (or above) the charge limit.
    pub fn at_limit(&self) -> bool {
        self.percent >= self.charge_limit
    }

    /// The nominal capacities both APIs offer for this battery (v2.0
    /// `GET /battery/nominal_capacity`, v3 `tractionbattery-nominalcapacity`), as (kWh,
    /// description): when Smartcar determined the capacity, it alone (`{powertrain}:Standard`);
    /// otherwise three candidates for the user to pick, rounded to two decimals: 10 kWh less
    /// (`Standard Range`), the capacity (`Long Range`), 10 kWh more (`Extended Range`).
    pub fn nominal_capacities(&self, powertrain: Powertrain) -> Vec<(f64, String)> {
        let kind = powertrain.as_str();
        if self.nominal_determined {
            return vec![(self.capacity_kwh, format!("{kind}:Standard"))];
        }
        [
            (-10.0, "Standard Range"),
            (0.0, "Long Range"),
            (10.0, "Extended Range"),
        ]
        .into_iter()
        .map(|(delta, trim)| {
            (
                round(self.capacity_kwh + delta, 2),
                format!("{kind}:{trim}"),
            )
        })
        .collect()
    }

    /// The charging state both APIs report (v2.0 `GET /charge` `state`, v3
    /// `charge-detailedchargingstatus`): `CHARGING` while charging; `FULLY_CHARGED` when plugged
    /// in at or above the charge limit; otherwise `NOT_CHARGING`.
    pub fn charge_state(&self) -> smartcar_api::open_enums::ChargeState {
        use smartcar_api::open_enums::ChargeState;
        if self.charging {
            ChargeState::Charging
        } else if self.plugged_in && self.at_limit() {
            ChargeState::FullyCharged
        } else {
            ChargeState::NotCharging
        }
    }
}

/// A dealer service record.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceRecord {
    /// Record id.
    pub id: String,
    /// When.
    pub date: DateTime<Utc>,
    /// Odometer at the service, km.
    pub odometer_km: f64,
    /// Tasks done.
    pub tasks: Vec<String>,
    /// Total cost and currency.
    pub cost: Option<(f64, String)>,
}

/// A simulated vehicle.
#[derive(Clone, Debug, PartialEq)]
pub struct Vehicle {
    /// Smartcar vehicle id (a UUID; never the VIN).
    pub id: String,
    /// 17-character VIN with a valid check digit (or one of Smartcar's test VINs).
    pub vin: String,
    /// Make, upper case as the v2 API sends it (`TESLA`).
    pub make: String,
    /// Model (`Model 3`).
    pub model: String,
    /// Model year.
    pub year: i32,
    /// Powertrain.
    pub powertrain: Powertrain,
    /// `live` or `simulated`.
    pub mode: &'static str,
    /// Odometer in km.
    pub odometer_km: f64,
    /// Latitude in degrees.
    pub latitude: f64,
    /// Longitude in degrees.
    pub longitude: f64,
    /// Heading in degrees (0 = north).
    pub heading: f64,
    /// Fuel tank, when the powertrain has one.
    pub fuel: Option<Fuel>,
    /// Traction battery, when the powertrain plugs in.
    pub battery: Option<Battery>,
    /// Engine oil life, fraction 0–1 (when it burns fuel).
    pub oil_life: Option<f64>,
    /// Tire pressures in kPa: front left, front right, back left, back right.
    pub tires_kpa: [f64; 4],
    /// Doors locked.
    pub locked: bool,
    /// Door open: front left, front right, back left, back right.
    pub doors_open: [bool; 4],
    /// Window open: front left, front right, back left, back right.
    pub windows_open: [bool; 4],
    /// Moving (lock/unlock then fail with `VEHICLE_STATE` / `IN_MOTION`).
    pub in_motion: bool,
    /// Last destination sent to the navigation system.
    pub destination: Option<(f64, f64)>,
    /// Dealer service history, newest first.
    pub service_records: Vec<ServiceRecord>,
    /// Active trouble codes with when they were set.
    pub dtcs: Vec<(String, Option<DateTime<Utc>>)>,
    /// Diagnostic systems: id, healthy, description.
    pub systems: Vec<(String, bool, Option<String>)>,
    /// When the vehicle last reported (the `sc-data-age` of its reads).
    pub data_age: DateTime<Utc>,
    /// Every request to this vehicle fails with this v2 error (`type`, `code`): Smartcar's test
    /// VINs (`0SCLR…`) and test e-mails (`VEHICLE_STATE.ASLEEP@smartcar.com`) trigger these.
    pub forced_error: Option<(String, String)>,
    /// Charge schedules created through the Vehicle API v3, oldest first; the vehicle keeps them
    /// until they are deleted (they show as LOCATION timers of the `charge-chargetimers`
    /// signal).
    pub charge_schedules: Vec<ChargeSchedule>,
}

/// How a charge schedule repeats: the three `POST /v3/vehicles/{id}/charge-schedules/…`
/// operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChargeScheduleKind {
    /// One window every day.
    Daily,
    /// A window per chosen weekday.
    Weekly,
    /// One window Monday to Friday, another on the weekend.
    Workweek,
}

impl ChargeScheduleKind {
    /// Every kind.
    pub const ALL: [ChargeScheduleKind; 3] = [
        ChargeScheduleKind::Daily,
        ChargeScheduleKind::Weekly,
        ChargeScheduleKind::Workweek,
    ];

    /// The platform's name (`daily`, `weekly`, `workweek`: `scheduleType`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChargeScheduleKind::Daily => "daily",
            ChargeScheduleKind::Weekly => "weekly",
            ChargeScheduleKind::Workweek => "workweek",
        }
    }
}

/// A charge schedule bound to a charging location.
#[derive(Clone, Debug, PartialEq)]
pub struct ChargeSchedule {
    /// Schedule id (`sched_…`), what `DELETE …/charge-schedules/{schedule_id}` takes.
    pub id: String,
    /// How it repeats.
    pub kind: ChargeScheduleKind,
    /// Latitude of the charging location, degrees.
    pub latitude: f64,
    /// Longitude of the charging location, degrees.
    pub longitude: f64,
    /// When charging runs, week order (Monday first).
    pub windows: Vec<ChargeScheduleWindow>,
}

/// One charging window of a schedule: local times and the days it applies to.
#[derive(Clone, Debug, PartialEq)]
pub struct ChargeScheduleWindow {
    /// Start, local `HH:mm`.
    pub start: String,
    /// Stop, local `HH:mm` (before the start: the window spans midnight).
    pub stop: String,
    /// The days it applies to, Monday first.
    pub days: Vec<chrono::Weekday>,
}

/// One vehicle connected by one user to the application, with the permissions granted.
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    /// Connection id (v3 connections API).
    pub id: String,
    /// The user who connected it.
    pub user_id: String,
    /// The vehicle.
    pub vehicle_id: String,
    /// Granted permissions (plain names, no `required:` prefix).
    pub scopes: BTreeSet<String>,
    /// When it was (last) connected.
    pub connected_at: DateTime<Utc>,
    /// The application's own id of the vehicle owner (Connect's `external_id`), if given.
    pub external_id: Option<String>,
}

/// An authorization code from the Connect redirect (single use, 10 minutes).
#[derive(Clone, Debug)]
pub struct AuthCode {
    /// The application it was issued to.
    pub client_id: String,
    /// The `redirect_uri` given to Connect; the token request must repeat it exactly.
    pub redirect_uri: String,
    /// The user who approved.
    pub user_id: String,
    /// The vehicles approved.
    pub vehicle_ids: Vec<String>,
    /// The permissions granted.
    pub scopes: BTreeSet<String>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// Already exchanged (a second exchange fails and, per RFC 6749 §10.5, revokes the tokens
    /// issued from it).
    pub used: bool,
    /// The token family the exchange of this code started (revoked if the code is replayed).
    pub issued_family: Option<u64>,
}

/// What an access or refresh token grants.
#[derive(Clone, Debug, PartialEq)]
pub struct Grant {
    /// The application.
    pub client_id: String,
    /// The user.
    pub user_id: String,
    /// The vehicles this token reaches.
    pub vehicle_ids: Vec<String>,
    /// The permissions.
    pub scopes: BTreeSet<String>,
    /// The token family: every token descending from one authorization code. Reusing a rotated
    /// refresh token after its grace period revokes the whole family (OAuth 2.0 security BCP).
    pub family: u64,
}

/// An access token (2 hours).
#[derive(Clone, Debug)]
pub struct AccessToken {
    /// What it grants.
    pub grant: Grant,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// A refresh token (60 days, single use with a grace period).
#[derive(Clone, Debug)]
pub struct RefreshToken {
    /// What it grants.
    pub grant: Grant,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// When it was used to refresh (it is then rotated out; see [`crate::Config::refresh_grace`]).
    pub used_at: Option<DateTime<Utc>>,
    /// The tokens that one refresh returned, handed out again when the same refresh token is
    /// retried within the grace period (so a client that lost the response can recover).
    pub rotated_to: Option<(String, String)>,
}

/// A client-credentials application token (1 hour, no refresh token).
#[derive(Clone, Debug)]
pub struct AppToken {
    /// The application.
    pub client_id: String,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// Payload version a webhook delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookVersion {
    /// Legacy v2.0 envelopes (`eventName`, `payload`).
    V2,
    /// v3 envelopes, payload version 4.0 (`eventType`, `data`, `meta`).
    V3,
}

/// A webhook configured for the application (what the Dashboard creates).
#[derive(Clone, Debug)]
pub struct Webhook {
    /// Webhook id (a UUID).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Where deliveries are POSTed.
    pub callback_url: String,
    /// Envelope version.
    pub version: WebhookVersion,
    /// Signal codes delivered with each `VEHICLE_STATE` event (v3).
    pub signals: Vec<String>,
}

/// A vehicle subscribed to a webhook (v2 subscribe or v3 subscription).
#[derive(Clone, Debug, PartialEq)]
pub struct Subscription {
    /// Subscription id (v3).
    pub id: String,
    /// The webhook.
    pub webhook_id: String,
    /// The vehicle.
    pub vehicle_id: String,
    /// The user (v3; for v2 subscriptions the connection's user).
    pub user_id: String,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// The whole simulated platform.
#[derive(Clone, Debug)]
pub struct World {
    /// The registered application.
    pub app: App,
    /// Users, in creation order (the first is the default Connect login).
    pub users: Vec<SimUser>,
    /// Vehicles by id.
    pub vehicles: BTreeMap<String, Vehicle>,
    /// Connections (user × vehicle × application), newest last.
    pub connections: Vec<Connection>,
    /// Authorization codes by code.
    pub codes: HashMap<String, AuthCode>,
    /// Access tokens by token.
    pub access_tokens: HashMap<String, AccessToken>,
    /// Refresh tokens by token.
    pub refresh_tokens: HashMap<String, RefreshToken>,
    /// Application tokens by token.
    pub app_tokens: HashMap<String, AppToken>,
    /// Webhooks by id.
    pub webhooks: BTreeMap<String, Webhook>,
    /// Webhook subscriptions by id.
    pub subscriptions: BTreeMap<String, Subscription>,
    /// Next token family number.
    pub next_family: u64,
    /// Vehicle API v3 command executions and webhook delivery state.
    pub v3: V3State,
    /// Vehicles created by approving a Connect `single_select_vin` that no vehicle had
    /// (bounded: see the module docs of Connect).
    pub vin_vehicles_created: usize,
    /// Vehicles created for the accounts of Connect's test and simulated modes (bounded: see
    /// the module docs of Connect).
    pub test_vehicles_created: usize,
}

impl World {
    /// The user with this id.
    pub fn user(&self, id: &str) -> Option<&SimUser> {
        self.users.iter().find(|u| u.id == id)
    }

    /// The user with this e-mail (case-insensitive).
    pub fn user_by_email(&self, email: &str) -> Option<&SimUser> {
        self.users
            .iter()
            .find(|u| u.email.eq_ignore_ascii_case(email))
    }

    /// The connection of `vehicle_id` for `user_id`, if the user connected it.
    pub fn connection(&self, user_id: &str, vehicle_id: &str) -> Option<&Connection> {
        self.connections
            .iter()
            .find(|c| c.user_id == user_id && c.vehicle_id == vehicle_id)
    }

    /// Records (or refreshes) a connection and returns its id. Re-connecting a vehicle keeps
    /// the connection id and merges the permissions.
    pub fn connect(
        &mut self,
        user_id: &str,
        vehicle_id: &str,
        scopes: &BTreeSet<String>,
        now: DateTime<Utc>,
        new_id: impl FnOnce() -> String,
    ) -> String {
        if let Some(c) = self
            .connections
            .iter_mut()
            .find(|c| c.user_id == user_id && c.vehicle_id == vehicle_id)
        {
            c.scopes.extend(scopes.iter().cloned());
            c.connected_at = now;
            return c.id.clone();
        }
        let id = new_id();
        self.connections.push(Connection {
            id: id.clone(),
            user_id: user_id.to_owned(),
            vehicle_id: vehicle_id.to_owned(),
            scopes: scopes.clone(),
            connected_at: now,
            external_id: None,
        });
        id
    }

    /// Sets (`Some`), keeps (`None`) or clears (`Some("null")`, as Connect's `external_id=null`)
    /// the external id of a connection.
    pub fn set_external_id(&mut self, connection_id: &str, external_id: Option<&str>) {
        let Some(external_id) = external_id else {
            return;
        };
        if let Some(c) = self.connections.iter_mut().find(|c| c.id == connection_id) {
            c.external_id = (external_id != "null").then(|| external_id.to_owned());
        }
    }

    /// Removes the connections matching the filters (both `None` removes nothing) and every
    /// token that reached only those vehicles' data for those users. Returns what was removed.
    pub fn disconnect(
        &mut self,
        user_id: Option<&str>,
        vehicle_id: Option<&str>,
    ) -> Vec<Connection> {
        if user_id.is_none() && vehicle_id.is_none() {
            return Vec::new();
        }
        let matches = |c: &Connection| {
            user_id.is_none_or(|u| c.user_id == u) && vehicle_id.is_none_or(|v| c.vehicle_id == v)
        };
        let (removed, kept): (Vec<_>, Vec<_>) =
            self.connections.drain(..).partition(|c| matches(c));
        self.connections = kept;
        for c in &removed {
            self.revoke_vehicle(&c.user_id, &c.vehicle_id);
            self.subscriptions
                .retain(|_, s| !(s.user_id == c.user_id && s.vehicle_id == c.vehicle_id));
        }
        removed
    }

    /// Takes `vehicle_id` out of every access and refresh token of `user_id` (the tokens stay
    /// valid for the user's other vehicles).
    pub fn revoke_vehicle(&mut self, user_id: &str, vehicle_id: &str) {
        let grants = self.access_tokens.values_mut().map(|t| &mut t.grant);
        let grants = grants.chain(self.refresh_tokens.values_mut().map(|t| &mut t.grant));
        for grant in grants.filter(|g| g.user_id == user_id) {
            grant.vehicle_ids.retain(|v| v != vehicle_id);
        }
    }

    /// Revokes every access and refresh token of a token family (refresh-token reuse detected,
    /// or an authorization code replayed).
    pub fn revoke_family(&mut self, family: u64) {
        self.access_tokens.retain(|_, t| t.grant.family != family);
        self.refresh_tokens.retain(|_, t| t.grant.family != family);
    }
}

// ------------------------------------------------------------------------------------------------
// Vehicle API v3 commands and webhook deliveries: per-simulator state kept in `World::v3`, and the
// public types of the simulator handle's webhook controls (`Simulator::add_webhook`,
// `Simulator::verify_webhook`, `Simulator::trigger_vehicle_state`, …).
// ------------------------------------------------------------------------------------------------

/// Per-simulator state of the Vehicle API v3 and of webhook deliveries.
#[derive(Clone, Debug)]
pub struct V3State {
    /// Recorded v3 command executions by execution id, with the vehicle each belongs to (for
    /// `GET /v3/vehicles/{vehicle_id}/commands/{execution_id}`). Bounded: the oldest are
    /// forgotten beyond [`V3State::MAX_EXECUTIONS`].
    pub executions: HashMap<String, (String, smartcar_api::types::CommandExecution)>,
    /// Execution ids, oldest first (for forgetting the oldest).
    pub execution_order: std::collections::VecDeque<String>,
    /// Ids of the webhooks whose verification challenge was answered correctly. Unverified
    /// webhooks get no deliveries.
    pub verified_webhooks: BTreeSet<String>,
    /// The last deliveries (verification challenges included), oldest first. Bounded: the
    /// oldest are forgotten beyond [`V3State::MAX_DELIVERIES`].
    pub deliveries: std::collections::VecDeque<DeliveryOutcome>,
    /// Waits before each retry of a failed delivery. The real platform retries 3 times, after
    /// 25 s, 50 s and 100 s; tests usually shorten this (or empty it: no retries).
    pub retry_delays: Vec<std::time::Duration>,
    /// How long a receiver may take to answer one attempt (real: 15 s).
    pub delivery_timeout: std::time::Duration,
}

impl V3State {
    /// How many command executions are remembered.
    pub const MAX_EXECUTIONS: usize = 10_000;
    /// How many deliveries the log keeps.
    pub const MAX_DELIVERIES: usize = 1_000;
}

impl Default for V3State {
    fn default() -> Self {
        V3State {
            executions: HashMap::new(),
            execution_order: Default::default(),
            verified_webhooks: BTreeSet::new(),
            deliveries: Default::default(),
            retry_delays: [25, 50, 100].map(std::time::Duration::from_secs).to_vec(),
            delivery_timeout: std::time::Duration::from_secs(15),
        }
    }
}

/// One webhook delivery (one event, with all its attempts), as the simulator sent it.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryOutcome {
    /// The webhook.
    pub webhook_id: String,
    /// What was sent: `VERIFY`, `VEHICLE_STATE`, `VEHICLE_ERROR` (v3) or `verify`,
    /// `eventBased`, `dynamic`, `scheduled` (v2).
    pub event_type: String,
    /// The event id (v3 `eventId`, v2 `payload.eventId` of `eventBased` events), the same in
    /// every attempt.
    pub event_id: Option<String>,
    /// The vehicles the event is about (none for a verification challenge).
    pub vehicle_ids: Vec<String>,
    /// Whether an attempt succeeded (a 2xx answer; for a challenge: the right answer).
    pub delivered: bool,
    /// Every attempt, first first.
    pub attempts: Vec<DeliveryAttempt>,
}

/// One POST of a delivery to the webhook's callback URL.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryAttempt {
    /// The v3 `meta.deliveryId` of this attempt (new per attempt; `None` for v2 envelopes).
    pub delivery_id: Option<String>,
    /// When it was sent (simulated clock).
    pub sent_at: DateTime<Utc>,
    /// The exact body sent (the bytes the signature covers).
    pub body: String,
    /// The `SC-Signature` header sent: lowercase hex HMAC-SHA256 of `body`, keyed with the
    /// application management token.
    pub signature: String,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    /// Why the attempt failed (transport error, timeout, non-2xx status, wrong challenge
    /// answer); `None` when it succeeded.
    pub error: Option<String>,
}

/// Why a webhook control could not send anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookError {
    /// No webhook with this id.
    UnknownWebhook(String),
    /// No vehicle with this id.
    UnknownVehicle(String),
    /// The webhook has not been verified (see `Simulator::verify_webhook`): the platform sends
    /// nothing to it.
    NotVerified(String),
    /// The vehicle is not subscribed to the webhook (or, for a v2 data event, no vehicle is).
    NotSubscribed {
        /// The webhook.
        webhook_id: String,
        /// The vehicle (`None`: no vehicle at all).
        vehicle_id: Option<String>,
    },
    /// The event does not exist in the webhook's payload version (a v3 event to a v2 webhook
    /// or the reverse).
    WrongVersion(String),
    /// An argument is not one the platform knows (e.g. an unknown error type or event type).
    InvalidArgument(String),
}

impl std::fmt::Display for WebhookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebhookError::UnknownWebhook(id) => write!(f, "no webhook {id}"),
            WebhookError::UnknownVehicle(id) => write!(f, "no vehicle {id}"),
            WebhookError::NotVerified(id) => write!(f, "webhook {id} is not verified"),
            WebhookError::NotSubscribed {
                webhook_id,
                vehicle_id: Some(v),
            } => write!(f, "vehicle {v} is not subscribed to webhook {webhook_id}"),
            WebhookError::NotSubscribed { webhook_id, .. } => {
                write!(f, "no vehicle is subscribed to webhook {webhook_id}")
            }
            WebhookError::WrongVersion(what) => write!(f, "wrong webhook version: {what}"),
            WebhookError::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
        }
    }
}

impl std::error::Error for WebhookError {}
