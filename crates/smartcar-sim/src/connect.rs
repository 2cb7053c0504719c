//! Smartcar Connect: the authorization page (`GET /oauth/authorize`), its form
//! (`POST /oauth/authorize`) and the re-authentication page (`GET /oauth/reauthenticate`).
//!
//! Validation follows the real platform: an unknown `client_id` or a `redirect_uri` that is not
//! registered (exact match) gets an HTML error page with status 400 and no redirect (Connect
//! cannot trust the redirect target); every other configuration problem (`response_type`,
//! unknown permission, `mode`, `approval_prompt`, `single_select`, `single_select_vin`) is
//! redirected back with `error=configuration_error`, `error_description`, `status_code=400`,
//! `error_message` and `state`.
//!
//! The validated request is kept server-side under a random id that expires after an hour
//! (simulated time); the form carries only that id, the e-mail, the chosen vehicles and the
//! button pressed, so nothing in the page can widen the grant.
//!
//! Which flow answers: a redirect URI listed in `App::user_id_redirect_uris` (by default
//! `http://localhost:8000/exchange`, the redirect of Smartcar's backend tutorial) gets
//! `user_id` + `state` (the v3 / application-token flow); every other registered redirect URI
//! gets `code` + `state` (authorization-code flow). The real platform decides this from the
//! application's settings in the Dashboard.
//!
//! Logins: any e-mail of a simulated user; `smartcar@vehicle-incompatible.com` and
//! `smartcar@invalid-subscription.com` (Connect errors); `<TYPE>.<CODE>@smartcar.com` for any
//! error of the catalogue (`VEHICLE_STATE.ASLEEP@smartcar.com`): a test account whose vehicle
//! fails every request with that error. The password field is ignored.
//!
//! `single_select_vin`: the page offers the vehicle with that VIN, the fleet's if one has it,
//! else the vehicle the VIN describes (a Smartcar test VIN fails every request with its
//! error). Showing the page changes nothing: only Approve adds the vehicle to the user's
//! account (creating it if no vehicle has that VIN). At most [`MAX_VIN_VEHICLES`] vehicles are
//! created that way in a simulator's life; past that, approving a new VIN shows an error page.
//!
//! Without a browser: add `sim_auto_approve=true` (or `deny`) to the authorize URL, optionally
//! with `sim_user=<e-mail>` and `sim_vehicles=<id>,<id>`: the page is skipped and Connect
//! redirects at once. In-process, `Simulator::approve` does the same.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use smartcar_api::open_enums::{ConnectErrorCode, Permission};
use smartcar_api::{ops, types};

use crate::fleet::{self, Rng};
use crate::model::{AuthCode, SimUser, World};
use crate::routing::{Route, sim_paths};
use crate::state::{AppState, Pending, PendingKind, Shared, Step, random_id};

/// How long a shown Connect page stays answerable.
const PENDING_TTL_MINUTES: i64 = 60;
/// How many unanswered Connect pages are kept.
const PENDING_CAPACITY: usize = 10_000;
/// How many vehicles approving a `single_select_vin` may create (VINs no vehicle had).
pub(crate) const MAX_VIN_VEHICLES: usize = 1_000;
/// How many vehicles the logins of test and simulated mode may create in a simulator's life.
pub(crate) const MAX_TEST_VEHICLES: usize = 10_000;

/// Routes of this part of the platform.
pub(crate) fn routes() -> Router<AppState> {
    // The approval form posts back to the page's own path (`sim_paths::CONNECT_FORM`, not an
    // operation of the spec).
    let authorize = Route::new(ops::AUTHORIZE, authorize_page)
        .handlers()
        .post(authorize_form);
    Router::new()
        .route(sim_paths::CONNECT_FORM, authorize)
        .route(
            ops::REAUTHENTICATE.path,
            Route::new(ops::REAUTHENTICATE, reauthenticate_page).handlers(),
        )
}

/// What a Connect step answers.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A 302 to the application's redirect URI.
    Redirect(url::Url),
    /// A page (status, HTML).
    Page(StatusCode, String),
    /// An error page without redirect (status, message).
    ErrorPage(StatusCode, String),
}

impl IntoResponse for Outcome {
    fn into_response(self) -> Response {
        let mut response = match self {
            Outcome::Redirect(url) => {
                let mut r = StatusCode::FOUND.into_response();
                if let Ok(v) = HeaderValue::from_str(url.as_str()) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                r
            }
            Outcome::Page(status, html) => (status, Html(html)).into_response(),
            Outcome::ErrorPage(status, message) => {
                (status, Html(error_page(&message))).into_response()
            }
        };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

struct Html(String);

impl IntoResponse for Html {
    fn into_response(self) -> Response {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            self.0,
        )
            .into_response()
    }
}

/// The user's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Approve,
    Deny,
    Login,
}

/// The user's answer on the page (or from `approve`).
#[derive(Clone, Debug)]
pub(crate) struct Decision {
    pub(crate) action: Action,
    /// Login e-mail; `None` = the user the page shows.
    pub(crate) email: Option<String>,
    /// Vehicles chosen; `None` = all the page offers (the first with single select).
    pub(crate) vehicle_ids: Option<Vec<String>>,
}

fn query_pairs(raw: Option<&str>) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    map
}

/// Everything the page needs to say in plain words about a permission.
fn describe_permission(name: &str) -> &'static str {
    match name {
        "read_alerts" => "Receive alerts from your vehicle",
        "read_battery" => "Read your EV's battery level and range",
        "read_charge" => "Know whether your vehicle is charging",
        "read_charge_events" => "Receive charging events",
        "read_charge_locations" => "Read your charging locations",
        "read_charge_records" => "Read your charging history",
        "read_climate" => "Read your vehicle's climate settings",
        "read_compass" => "Read the direction your vehicle is facing",
        "read_diagnostics" => "Read your vehicle's diagnostics and trouble codes",
        "read_engine_oil" => "Read your engine oil life",
        "read_extended_vehicle_info" => "Read your vehicle's configuration",
        "read_fuel" => "Read your fuel level and range",
        "read_location" => "Access your vehicle's location",
        "read_odometer" => "Retrieve total distance traveled",
        "read_security" => "Know whether your vehicle is locked",
        "read_service_history" => "Read your vehicle's service records",
        "read_speedometer" => "Read your vehicle's speed",
        "read_thermometer" => "Read temperatures measured by your vehicle",
        "read_tires" => "Read your tire pressure",
        "read_user_profile" => "Read your connected-services profile",
        "read_vehicle_info" => "Know the make, model and year of your vehicle",
        "read_vin" => "Read your VIN",
        "control_charge" => "Start or stop charging and set the charge limit",
        "control_climate" => "Control your vehicle's climate",
        "control_navigation" => "Send destinations to your vehicle's navigation",
        "control_pin" => "Manage your vehicle's PIN",
        "control_security" => "Lock or unlock your vehicle",
        "control_trunk" => "Open your vehicle's trunk",
        _ => "Access your vehicle",
    }
}

/// HTML-escapes text for element content and quoted attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn redirect_with(base: &str, pairs: serde_json::Value) -> Outcome {
    let Ok(mut url) = url::Url::parse(base) else {
        return Outcome::ErrorPage(
            StatusCode::BAD_REQUEST,
            "The redirect URI of this application is not a valid URL.".into(),
        );
    };
    if let serde_json::Value::Object(map) = pairs {
        let mut query = url.query_pairs_mut();
        for (k, v) in map {
            match v {
                serde_json::Value::String(s) => {
                    query.append_pair(&k, &s);
                }
                serde_json::Value::Null => {}
                other => {
                    query.append_pair(&k, &other.to_string());
                }
            }
        }
    }
    Outcome::Redirect(url)
}

fn connect_error(
    redirect_uri: &str,
    state: Option<&str>,
    error: types::ConnectCallbackError,
) -> Outcome {
    let error = types::ConnectCallbackError {
        state: state.map(str::to_owned),
        ..error
    };
    redirect_with(
        redirect_uri,
        serde_json::to_value(error).unwrap_or_default(),
    )
}

fn plain_error(code: &str, description: &str) -> types::ConnectCallbackError {
    types::ConnectCallbackError {
        error: ConnectErrorCode::from(code),
        error_description: Some(description.to_owned()),
        error_message: None,
        make: None,
        model: None,
        state: None,
        status_code: None,
        vin: None,
        year: None,
    }
}

fn configuration_error(redirect_uri: &str, state: Option<&str>, message: &str) -> Outcome {
    let error = types::ConnectCallbackError {
        status_code: Some("400".into()),
        error_message: Some(message.to_owned()),
        ..plain_error(
            "configuration_error",
            "There has been an error in the configuration of your application.",
        )
    };
    connect_error(redirect_uri, state, error)
}

/// Client id and redirect URI checks shared by both pages: failures are pages, not redirects.
fn check_client(
    world: &World,
    query: &HashMap<String, String>,
    redirect_required: bool,
) -> Result<(String, String), Outcome> {
    let bad = |m: &str| Outcome::ErrorPage(StatusCode::BAD_REQUEST, m.to_owned());
    let client_id = query
        .get("client_id")
        .or_else(|| query.get("application_id"))
        .ok_or_else(|| bad("The request is missing the client_id parameter."))?;
    if *client_id != world.app.client_id {
        return Err(bad(
            "Invalid client_id: no application is registered with this id.",
        ));
    }
    let redirect_uri = match query.get("redirect_uri") {
        Some(uri) => uri.clone(),
        None if !redirect_required => world
            .app
            .redirect_uris
            .first()
            .cloned()
            .ok_or_else(|| bad("The application has no redirect URI."))?,
        None => return Err(bad("The request is missing the redirect_uri parameter.")),
    };
    let registered = world.app.redirect_uris.contains(&redirect_uri)
        || world.app.user_id_redirect_uris.contains(&redirect_uri);
    if !registered {
        return Err(bad(
            "Invalid redirect_uri: it does not exactly match a redirect URI registered for this application.",
        ));
    }
    Ok((client_id.clone(), redirect_uri))
}

/// Validates an authorize query into a pending request (not yet stored).
pub(crate) fn validate_authorize(
    shared: &Shared,
    raw_query: Option<&str>,
) -> Result<Pending, Outcome> {
    let query = query_pairs(raw_query);
    let world = shared.world();
    let (client_id, redirect_uri) = check_client(&world, &query, false)?;
    let state = query.get("state").cloned();
    let st = state.as_deref();
    let config = |m: &str| configuration_error(&redirect_uri, st, m);

    let no_code = match query.get("response_type").map(String::as_str) {
        Some("code") => false,
        Some("none") => true,
        Some(other) => {
            return Err(config(&format!(
                "Invalid response_type: {other}. Use response_type=code (or none)."
            )));
        }
        None => {
            return Err(config(
                "The request is missing the response_type parameter.",
            ));
        }
    };
    let hosted_finish = no_code && !query.contains_key("redirect_uri");
    let external_id = external_id(&query).map_err(|m| config(&m))?;
    let mut scopes = Vec::new();
    let mut required = BTreeSet::new();
    match query.get("scope") {
        Some(scope) => {
            for word in scope.split([' ', '+', ',']).filter(|w| !w.is_empty()) {
                let (is_required, name) = match word.strip_prefix("required:") {
                    Some(name) => (true, name),
                    None => (false, word),
                };
                if Permission::from(name).is_unknown() {
                    return Err(config(&format!("Invalid permission: {name}.")));
                }
                if !scopes.iter().any(|s| s == name) {
                    scopes.push(name.to_owned());
                }
                if is_required {
                    required.insert(name.to_owned());
                }
            }
            if scopes.is_empty() {
                return Err(config("The scope parameter names no permission."));
            }
        }
        // Newer docs: without `scope`, the permissions configured in the Dashboard apply; the
        // simulated application has every permission configured.
        None => scopes = Permission::KNOWN.iter().map(|s| (*s).to_owned()).collect(),
    }
    let mode = query.get("mode").cloned().unwrap_or_else(|| "live".into());
    if !matches!(mode.as_str(), "live" | "simulated" | "test") {
        return Err(config(&format!(
            "Invalid mode: {mode}. Use live, simulated or test."
        )));
    }
    if let Some(prompt) = query.get("approval_prompt")
        && !matches!(prompt.as_str(), "auto" | "force")
    {
        return Err(config(&format!(
            "Invalid approval_prompt: {prompt}. Use auto or force."
        )));
    }
    let single_select = match query.get("single_select").map(String::as_str) {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => {
            return Err(config(&format!(
                "Invalid single_select: {v}. Use true or false."
            )));
        }
    };
    let single_select_vin = match query.get("single_select_vin") {
        None => None,
        Some(vin) if !single_select => {
            return Err(config(&format!(
                "single_select_vin={vin} requires single_select=true."
            )));
        }
        Some(vin) if !fleet::vin_is_valid(vin) => {
            return Err(config(&format!("Invalid single_select_vin: {vin}.")));
        }
        Some(vin) => Some(vin.to_ascii_uppercase()),
    };
    let make = query
        .get("make")
        .filter(|m| !m.is_empty())
        .map(|m| m.to_ascii_uppercase());
    let shown_user = query
        .get("sim_user")
        .and_then(|e| world.user_by_email(e))
        .or_else(|| world.users.first())
        .map(|u| u.id.clone())
        .unwrap_or_default();
    let user_flow = world.app.user_id_redirect_uris.contains(&redirect_uri);
    // Test and simulated mode walk the real page sequence; `make` skips the brand list.
    let step = if mode == "live" {
        Step::Single
    } else {
        Step::Preamble
    };
    let brand = make
        .as_deref()
        .and_then(fleet::test_brand)
        .map(|b| b.id.to_owned());
    Ok(Pending {
        step,
        brand,
        login_vehicles: None,
        kind: PendingKind::Authorize,
        client_id,
        redirect_uri,
        state,
        scopes,
        required,
        make,
        single_select,
        single_select_vin,
        mode,
        user_flow,
        no_code,
        hosted_finish,
        external_id,
        shown_user,
        expires_at: shared.now() + Duration::minutes(PENDING_TTL_MINUTES),
        seed: shared.seed,
    })
}

/// Validates a re-authentication query.
pub(crate) fn validate_reauthenticate(
    shared: &Shared,
    raw_query: Option<&str>,
) -> Result<Pending, Outcome> {
    let query = query_pairs(raw_query);
    let world = shared.world();
    let no_code = query.get("response_type").map(String::as_str) == Some("none");
    let (client_id, redirect_uri) = check_client(&world, &query, !no_code)?;
    let state = query.get("state").cloned();
    if !no_code && query.get("response_type").map(String::as_str) != Some("vehicle_id") {
        return Err(configuration_error(
            &redirect_uri,
            state.as_deref(),
            "Invalid response_type. Re-authentication uses response_type=vehicle_id (or none).",
        ));
    }
    let external_id = external_id(&query)
        .map_err(|m| configuration_error(&redirect_uri, state.as_deref(), &m))?;
    let vehicle_id = query
        .get("vehicle_id")
        .filter(|v| world.vehicles.contains_key(v.as_str()))
        .ok_or_else(|| {
            Outcome::ErrorPage(
                StatusCode::BAD_REQUEST,
                "Invalid vehicle_id: no such vehicle.".into(),
            )
        })?;
    let shown_user = world
        .users
        .iter()
        .find(|u| u.vehicle_ids.contains(vehicle_id))
        .or_else(|| world.users.first())
        .map(|u| u.id.clone())
        .unwrap_or_default();
    Ok(Pending {
        step: Step::Single,
        brand: None,
        login_vehicles: None,
        kind: PendingKind::Reauthenticate(vehicle_id.clone()),
        client_id,
        redirect_uri,
        state,
        scopes: Vec::new(),
        required: BTreeSet::new(),
        make: None,
        single_select: false,
        single_select_vin: None,
        mode: "live".into(),
        user_flow: false,
        no_code: false,
        hosted_finish: no_code && !query.contains_key("redirect_uri"),
        external_id,
        shown_user,
        expires_at: shared.now() + Duration::minutes(PENDING_TTL_MINUTES),
        seed: shared.seed,
    })
}

/// FNV-1a: a stable hash for deriving seeds from e-mails and VINs.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The account behind a login e-mail, creating the test account of a
/// `<TYPE>.<CODE>@smartcar.com` identity on first use. `Err` = a Connect error to redirect with,
/// `Ok(None)` = no such account.
fn login(
    world: &mut World,
    email: &str,
    seed: u64,
    now: DateTime<Utc>,
) -> Result<Option<String>, Box<types::ConnectCallbackError>> {
    let email = email.trim();
    if email.eq_ignore_ascii_case("smartcar@vehicle-incompatible.com") {
        return Err(Box::new(types::ConnectCallbackError {
            vin: Some("0SCAUDI012FE3B132".into()),
            make: Some("AUDI".into()),
            model: Some("A4".into()),
            year: Some("2015".into()),
            ..plain_error(
                "vehicle_incompatible",
                "The user's vehicle is not compatible.",
            )
        }));
    }
    if email.eq_ignore_ascii_case("smartcar@invalid-subscription.com") {
        return Err(Box::new(plain_error(
            "invalid_subscription",
            "The user's vehicle does not have an active connected-services subscription.",
        )));
    }
    if let Some(user) = world.user_by_email(email) {
        return Ok(Some(user.id.clone()));
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Ok(None);
    };
    if !domain.eq_ignore_ascii_case("smartcar.com") {
        return Ok(None);
    }
    let Some((kind, code)) = local.split_once('.') else {
        return Ok(None);
    };
    let (kind, code) = (kind.to_ascii_uppercase(), code.to_ascii_uppercase());
    if crate::error::lookup(&kind, Some(&code)).is_none() {
        return Ok(None);
    }
    let mut rng = Rng::new(seed ^ stable_hash(&email.to_ascii_lowercase()));
    let mut vehicle = fleet::make_vehicle(&mut rng, now);
    vehicle.forced_error = Some((kind, code));
    let user = SimUser {
        id: rng.uuid(),
        email: email.to_ascii_lowercase(),
        vehicle_ids: vec![vehicle.id.clone()],
    };
    let id = user.id.clone();
    world.vehicles.insert(vehicle.id.clone(), vehicle);
    world.users.push(user);
    Ok(Some(id))
}

/// Whether a request's logins open test-mode accounts: `mode=test` or `mode=simulated` on an
/// authorization (re-authentication logs in to the vehicle's own account).
fn is_test_account_mode(pending: &Pending) -> bool {
    pending.mode != "live" && matches!(pending.kind, PendingKind::Authorize)
}

/// The make and model a test or simulated account's vehicle of `brand` has: the brand's test
/// vehicle in test mode; in simulated mode make `SIMULATED` and the powertrain as model, as
/// Smartcar's simulated vehicles show (v3 facts §6).
fn account_vehicle_label(brand: &fleet::TestBrand, mode: &str) -> (String, String) {
    if mode == "simulated" {
        ("SIMULATED".to_owned(), brand.powertrain.as_str().to_owned())
    } else {
        (fleet::test_brand_make(brand), brand.model.to_owned())
    }
}

/// A login in test or simulated mode, where any e-mail and any password sign in: the
/// `TYPE.CODE@smartcar.com` identities and the two Connect-error e-mails keep their meaning;
/// any other e-mail opens (first time: creates) an account holding the test vehicle of the
/// brand chosen (`pending.brand`; for a login without the brand list, `make` or a brand drawn
/// from the e-mail). The same e-mail reopens the same account and vehicle; everything is
/// derived from the simulator's seed and the e-mail. Sets `pending.login_vehicles` to the
/// vehicles the page then offers. `Err`: the outcome to answer with (a Connect error redirect,
/// or an error page past [`MAX_TEST_VEHICLES`]).
fn test_login(
    world: &mut World,
    pending: &mut Pending,
    email: &str,
    seed: u64,
    now: DateTime<Utc>,
) -> Result<String, Outcome> {
    let email = email.trim().to_ascii_lowercase();
    let st = pending.state.clone();
    let existing = match login(world, &email, seed, now) {
        Err(error) => return Err(connect_error(&pending.redirect_uri, st.as_deref(), *error)),
        Ok(found) => found,
    };
    if let Some(id) = &existing {
        let forced = world.user(id).is_some_and(|u| {
            !u.vehicle_ids.is_empty()
                && u.vehicle_ids.iter().all(|v| {
                    world
                        .vehicles
                        .get(v)
                        .is_some_and(|v| v.forced_error.is_some())
                })
        });
        if forced {
            // A `TYPE.CODE@smartcar.com` identity: its vehicle fails with that error, whatever
            // the brand.
            pending.login_vehicles = None;
            return Ok(id.clone());
        }
    }
    let brand = pending
        .brand
        .as_deref()
        .and_then(fleet::test_brand)
        .unwrap_or_else(|| {
            let i = stable_hash(&email) % fleet::TEST_BRANDS.len() as u64;
            &fleet::TEST_BRANDS[i as usize]
        });
    let mut rng = Rng::new(seed ^ stable_hash(&format!("{email}|{}|{}", brand.id, pending.mode)));
    let user_id = match existing {
        Some(id) => id,
        None => {
            let id = rng.uuid();
            world.users.push(SimUser {
                id: id.clone(),
                email: email.clone(),
                vehicle_ids: Vec::new(),
            });
            id
        }
    };
    let (make, model) = account_vehicle_label(brand, &pending.mode);
    let owned: Vec<String> = world
        .user(&user_id)
        .map(|u| u.vehicle_ids.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|id| {
            world
                .vehicles
                .get(id)
                .is_some_and(|v| v.make == make && v.model == model)
        })
        .collect();
    if !owned.is_empty() {
        pending.login_vehicles = Some(owned);
        return Ok(user_id);
    }
    if world.test_vehicles_created >= MAX_TEST_VEHICLES {
        return Err(Outcome::ErrorPage(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "This simulator already created {MAX_TEST_VEHICLES} test-mode vehicles: log in \
                 with an e-mail used before, or restart it."
            ),
        ));
    }
    let mut vehicle = fleet::make_test_vehicle(&mut rng, now, brand);
    if pending.mode == "simulated" {
        vehicle.mode = "simulated";
    } else {
        vehicle.mode = "test";
    }
    vehicle.make = make;
    vehicle.model = model;
    let vehicle_id = vehicle.id.clone();
    world.test_vehicles_created += 1;
    world.vehicles.insert(vehicle_id.clone(), vehicle);
    if let Some(user) = world.users.iter_mut().find(|u| u.id == user_id) {
        user.vehicle_ids.push(vehicle_id.clone());
    }
    pending.login_vehicles = Some(vec![vehicle_id]);
    Ok(user_id)
}

/// The vehicle a `single_select_vin` offers: the fleet's vehicle with that VIN, else the one
/// approving it would create (derived from the seed and the VIN; not stored).
fn vin_vehicle<'w>(
    world: &'w World,
    vin: &str,
    seed: u64,
    now: DateTime<Utc>,
) -> std::borrow::Cow<'w, crate::model::Vehicle> {
    match world
        .vehicles
        .values()
        .find(|v| v.vin.eq_ignore_ascii_case(vin))
    {
        Some(v) => std::borrow::Cow::Borrowed(v),
        None => {
            let mut rng = Rng::new(seed ^ stable_hash(vin));
            let mut vehicle = fleet::make_vehicle(&mut rng, now);
            vehicle.vin = vin.to_owned();
            vehicle.forced_error =
                fleet::test_vin_error(vin).map(|(t, c)| (t.to_owned(), c.to_owned()));
            std::borrow::Cow::Owned(vehicle)
        }
    }
}

/// On Approve: the vehicle with `vin` joins `user_id`'s account, created first if no vehicle
/// has that VIN (at most [`MAX_VIN_VEHICLES`] in all; `Err` past that).
fn ensure_vin_vehicle(
    world: &mut World,
    user_id: &str,
    vin: &str,
    seed: u64,
    now: DateTime<Utc>,
) -> Result<String, Outcome> {
    let vehicle = vin_vehicle(world, vin, seed, now);
    let id = vehicle.id.clone();
    if let std::borrow::Cow::Owned(vehicle) = vehicle {
        if world.vin_vehicles_created >= MAX_VIN_VEHICLES {
            return Err(Outcome::ErrorPage(
                StatusCode::BAD_REQUEST,
                format!(
                    "This simulator already created {MAX_VIN_VEHICLES} vehicles for single_select_vin: \
                     use the VIN of a vehicle it has, or restart it."
                ),
            ));
        }
        world.vin_vehicles_created += 1;
        world.vehicles.insert(id.clone(), vehicle);
    }
    if let Some(user) = world.users.iter_mut().find(|u| u.id == user_id)
        && !user.vehicle_ids.contains(&id)
    {
        user.vehicle_ids.push(id.clone());
    }
    Ok(id)
}

/// The vehicles the page offers `user_id` (make bypass, single-select VIN). Changes nothing.
fn offered(
    world: &World,
    pending: &Pending,
    user_id: &str,
    seed: u64,
    now: DateTime<Utc>,
) -> Vec<String> {
    if let PendingKind::Reauthenticate(vehicle_id) = &pending.kind {
        return vec![vehicle_id.clone()];
    }
    if let Some(vin) = &pending.single_select_vin {
        return vec![vin_vehicle(world, vin, seed, now).id.clone()];
    }
    if let Some(ids) = &pending.login_vehicles {
        return ids.clone();
    }
    let Some(user) = world.user(user_id) else {
        return Vec::new();
    };
    user.vehicle_ids
        .iter()
        .filter(|id| {
            pending.make.as_deref().is_none_or(|make| {
                world
                    .vehicles
                    .get(id.as_str())
                    .is_some_and(|v| v.make.eq_ignore_ascii_case(make))
            })
        })
        .cloned()
        .collect()
}

/// Applies the user's answer to a validated request.
pub(crate) fn decide(shared: &Shared, pending: &mut Pending, decision: Decision) -> Outcome {
    let st = pending.state.clone();
    if decision.action == Action::Deny {
        return connect_error(
            &pending.redirect_uri,
            st.as_deref(),
            plain_error("access_denied", "User denied access to application."),
        );
    }
    let now = shared.now();
    let mut world = shared.world();
    let user_id = match decision.email.as_deref() {
        None => pending.shown_user.clone(),
        Some(email) if is_test_account_mode(pending) => {
            match test_login(&mut world, pending, email, shared.seed, now) {
                Ok(id) => id,
                Err(outcome) => return outcome,
            }
        }
        Some(email) => match login(&mut world, email, shared.seed, now) {
            Err(error) => return connect_error(&pending.redirect_uri, st.as_deref(), *error),
            Ok(Some(id)) => id,
            Ok(None) => {
                let message = format!("No connected-services account uses the e-mail {email}.");
                return Outcome::Page(StatusCode::OK, render_any(&world, pending, Some(&message)));
            }
        },
    };
    let switched = user_id != pending.shown_user;
    pending.shown_user = user_id.clone();
    let available = offered(&world, pending, &user_id, shared.seed, now);
    if decision.action == Action::Login || (switched && decision.vehicle_ids.is_some()) {
        let message = switched.then(|| "Choose the vehicles to share.".to_owned());
        return Outcome::Page(
            StatusCode::OK,
            render_any(&world, pending, message.as_deref()),
        );
    }
    if let PendingKind::Reauthenticate(vehicle_id) = &pending.kind {
        let owns = world
            .user(&user_id)
            .is_some_and(|u| u.vehicle_ids.contains(vehicle_id));
        if !owns {
            let message = "This vehicle is not on that account.";
            return Outcome::Page(StatusCode::OK, render_any(&world, pending, Some(message)));
        }
        if let Some(v) = world.vehicles.get_mut(vehicle_id)
            && v.forced_error.as_ref().is_some_and(|(t, c)| {
                t == "CONNECTED_SERVICES_ACCOUNT" && c == "AUTHENTICATION_FAILED"
            })
        {
            v.forced_error = None;
        }
        let vehicle_id = vehicle_id.clone();
        if let Some(id) = world
            .connection(&user_id, &vehicle_id)
            .map(|c| c.id.clone())
        {
            world.set_external_id(&id, pending.external_id.as_deref());
        }
        if pending.hosted_finish {
            return finished_page(&world);
        }
        let body = types::ConnectCallbackVehicle {
            state: st,
            vehicle_id,
            external_id: echoed(pending),
        };
        return redirect_with(
            &pending.redirect_uri,
            serde_json::to_value(body).unwrap_or_default(),
        );
    }
    if available.is_empty() {
        return connect_error(
            &pending.redirect_uri,
            st.as_deref(),
            plain_error(
                "no_vehicles",
                "No vehicles found. Please add vehicles to your account and try again.",
            ),
        );
    }
    let chosen: Vec<String> = match decision.vehicle_ids {
        None if pending.single_select => available.iter().take(1).cloned().collect(),
        None => available.clone(),
        Some(ids) => available
            .iter()
            .filter(|v| ids.contains(v))
            .cloned()
            .collect(),
    };
    if chosen.is_empty() || (pending.single_select && chosen.len() > 1) {
        let message = if chosen.is_empty() {
            "Select at least one vehicle."
        } else {
            "Select only one vehicle."
        };
        return Outcome::Page(StatusCode::OK, render_any(&world, pending, Some(message)));
    }
    if let Some(vin) = &pending.single_select_vin {
        // Only now, on Approve, does the offered vehicle join the account.
        if let Err(outcome) = ensure_vin_vehicle(&mut world, &user_id, vin, shared.seed, now) {
            return outcome;
        }
    }
    let scopes: BTreeSet<String> = pending.scopes.iter().cloned().collect();
    for vehicle_id in &chosen {
        let id = world.connect(&user_id, vehicle_id, &scopes, now, random_id);
        world.set_external_id(&id, pending.external_id.as_deref());
    }
    if pending.hosted_finish {
        return finished_page(&world);
    }
    if pending.no_code {
        // `response_type=none` with a redirect URI: the outcome only (unverified which
        // parameters the platform adds); the connections API tells the rest.
        let mut query = serde_json::Map::new();
        if let Some(st) = st {
            query.insert("state".into(), st.into());
        }
        if let Some(id) = echoed(pending) {
            query.insert("external_id".into(), id.into());
        }
        return redirect_with(&pending.redirect_uri, query.into());
    }
    if pending.user_flow {
        let body = types::ConnectCallbackUser {
            state: st,
            user_id,
            external_id: echoed(pending),
            virtual_key_url: None,
        };
        return redirect_with(
            &pending.redirect_uri,
            serde_json::to_value(body).unwrap_or_default(),
        );
    }
    let code = random_id();
    let ttl = Duration::from_std(shared.config.code_ttl).unwrap_or(Duration::minutes(10));
    world.codes.insert(
        code.clone(),
        AuthCode {
            client_id: pending.client_id.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            user_id,
            vehicle_ids: chosen,
            scopes,
            expires_at: now + ttl,
            used: false,
            issued_family: None,
        },
    );
    let body = types::ConnectCallbackCode {
        code,
        state: st,
        external_id: echoed(pending),
        virtual_key_url: None,
    };
    redirect_with(
        &pending.redirect_uri,
        serde_json::to_value(body).unwrap_or_default(),
    )
}

/// Connect's `external_id` as the redirect echoes it (not the clearing `null`).
fn echoed(pending: &Pending) -> Option<String> {
    pending.external_id.clone().filter(|id| id != "null")
}

/// The longest `external_id` accepted (unverified: the docs' Connect URL reference has
/// validation rules this simulator approximates).
const EXTERNAL_ID_MAX: usize = 255;

/// `external_id` of a Connect query: printable, at most [`EXTERNAL_ID_MAX`] characters.
fn external_id(query: &HashMap<String, String>) -> Result<Option<String>, String> {
    match query.get("external_id") {
        None => Ok(None),
        Some(id)
            if id.is_empty()
                || id.chars().count() > EXTERNAL_ID_MAX
                || id.chars().any(char::is_control) =>
        {
            Err(format!(
                "Invalid external_id: use 1 to {EXTERNAL_ID_MAX} printable characters."
            ))
        }
        Some(id) => Ok(Some(id.clone())),
    }
}

/// The Smartcar-hosted completion page (`response_type=none` without a redirect URI).
fn finished_page(world: &World) -> Outcome {
    Outcome::Page(
        StatusCode::OK,
        page(
            "Smartcar Connect – done",
            &format!(
                "<h1 id=\"done\">You're all set</h1>\n<p>Your vehicle is now connected to {}. \
                 You can close this window.</p>\n<p class=\"sim\">Simulated Smartcar Connect</p>\n",
                esc(&world.app.name)
            ),
        ),
    )
}

fn store_pending(shared: &Shared, pending: Pending) -> String {
    let id = random_id();
    let now = shared.now();
    let mut map = shared.pending();
    if map.len() >= PENDING_CAPACITY {
        map.retain(|_, p| p.expires_at > now);
        if map.len() >= PENDING_CAPACITY
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, p)| p.expires_at)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
    }
    map.insert(id.clone(), pending);
    id
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f6f8;margin:0}\
main{max-width:30rem;margin:2rem auto;background:#fff;border-radius:8px;padding:1.5rem 2rem;box-shadow:0 1px 4px #0002}\
h1{font-size:1.3rem}h2{font-size:1rem;margin-top:1.5rem}.sim{color:#666;font-size:.8rem}\
.error{background:#fde8e8;color:#8a1c1c;padding:.5rem .8rem;border-radius:4px}\
label{display:block;margin:.4rem 0}input[type=email],input[type=password]{width:100%;padding:.4rem;box-sizing:border-box}\
.vin{color:#666;font-size:.8rem}.actions{margin-top:1.5rem;display:flex;gap:1rem}\
button{padding:.5rem 1.2rem;font-size:1rem;border-radius:4px;border:1px solid #888;cursor:pointer}\
button.primary{background:#00819d;color:#fff;border-color:#00819d}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        esc(title)
    )
}

fn error_page(message: &str) -> String {
    page(
        "Smartcar Connect – error",
        &format!(
            "<h1>Something went wrong</h1>\n<p class=\"error\" id=\"error\">{}</p>\n\
             <p class=\"sim\">Simulated Smartcar Connect</p>\n",
            esc(message)
        ),
    )
}

/// The page a pending request is on.
fn render_any(world: &World, pending: &Pending, message: Option<&str>) -> String {
    match pending.step {
        Step::Single => render(world, pending, message),
        _ => render_guided(world, pending, message),
    }
}

/// One answer on a page of the test/simulated-mode sequence: moves the request to its next
/// page, or ends it (approve, deny, a login that is a Connect error). An action that does not
/// belong to the page the request is on (a stale tab, a hand-made post) shows that page again.
fn guided_step(shared: &Shared, pending: &mut Pending, form: Form) -> Outcome {
    let action = form.action.as_deref().unwrap_or("");
    let mut message = None;
    match (action, &pending.step) {
        ("continue", Step::Preamble) => {
            pending.step = if pending.brand.is_some() {
                Step::Login
            } else {
                Step::Brands(String::new())
            };
        }
        ("search", Step::Brands(_)) => {
            let text: String = form.search.unwrap_or_default().chars().take(64).collect();
            pending.step = Step::Brands(text);
        }
        ("brand", Step::Brands(_)) => match form.brand.as_deref().and_then(fleet::test_brand) {
            Some(brand) => {
                pending.brand = Some(brand.id.to_owned());
                pending.step = Step::Login;
            }
            None => message = Some("Choose your vehicle's brand.".to_owned()),
        },
        ("back", Step::Login) if pending.make.is_none() => {
            pending.step = Step::Brands(String::new());
        }
        ("sign_in", Step::Login) => {
            let username = form.username.unwrap_or_default();
            if username.trim().is_empty() || username.chars().any(char::is_control) {
                message = Some("Enter the e-mail of your connected-services account.".to_owned());
            } else {
                let now = shared.now();
                let mut world = shared.world();
                match test_login(&mut world, pending, &username, shared.seed, now) {
                    Ok(user_id) => {
                        pending.shown_user = user_id;
                        pending.step = Step::Permissions;
                    }
                    Err(outcome) => return outcome,
                }
            }
        }
        ("approve" | "deny", Step::Permissions) => {
            if action == "approve" {
                // Required permissions are locked on; an optional one counts only if it was
                // left checked.
                let kept: Vec<String> = pending
                    .scopes
                    .iter()
                    .filter(|s| pending.required.contains(*s) || form.permissions.contains(s))
                    .cloned()
                    .collect();
                if kept.is_empty() {
                    let html = render_guided(
                        &shared.world(),
                        pending,
                        Some("Allow at least one permission, or deny access."),
                    );
                    return Outcome::Page(StatusCode::OK, html);
                }
                pending.scopes = kept;
            }
            let decision = Decision {
                action: if action == "approve" {
                    Action::Approve
                } else {
                    Action::Deny
                },
                email: None,
                vehicle_ids: Some(form.vehicles),
            };
            return decide(shared, pending, decision);
        }
        _ => message = Some("Continue from this page.".to_owned()),
    }
    let html = render_guided(&shared.world(), pending, message.as_deref());
    Outcome::Page(StatusCode::OK, html)
}

/// A page of the test/simulated-mode sequence. Element ids and classes are those of the real
/// Connect that browser-driven suites select (Smartcar's SDKs' end-to-end tests): the preamble's
/// `button#continue-button`; the brand list's `button#<BRAND>.brand-list-item` and
/// `input#brand-search`; the login's `input#username`, `input#password`,
/// `button#sign-in-button`; the permissions page's `.page-content`, `button#approval-button` and
/// `button#deny-button`. Every step posts to the same path, so the URL after the first page no
/// longer carries the Connect query (nor the redirect URI).
fn render_guided(world: &World, pending: &Pending, message: Option<&str>) -> String {
    let app = esc(&world.app.name);
    let brand = pending.brand.as_deref().and_then(fleet::test_brand);
    let brand_name = brand.map_or("your vehicle's brand", |b| b.name);
    let mut body = String::new();
    let _ = writeln!(body, "<div class=\"page-content\">");
    let form_start = format!(
        "<form method=\"post\" action=\"{}\">\n<input type=\"hidden\" name=\"request\" value=\"\">",
        sim_paths::CONNECT_FORM
    );
    let mode_note = format!(
        "<p class=\"sim\">Simulated Smartcar Connect · mode {} · any e-mail and password sign in</p>",
        esc(&pending.mode)
    );
    let error = message
        .map(|m| format!("<p class=\"error\" id=\"error\">{}</p>\n", esc(m)))
        .unwrap_or_default();
    let title = match &pending.step {
        Step::Single | Step::Preamble => {
            let _ = writeln!(
                body,
                "<h1>{app} uses Smartcar to connect to your vehicle</h1>\n{mode_note}\n{error}\
                 <p>You will choose your vehicle's brand, sign in to its connected-services \
                 account and choose what {app} may see and do.</p>\n{form_start}\n\
                 <button type=\"submit\" class=\"primary\" id=\"continue-button\" name=\"action\" \
                 value=\"continue\">Continue</button>\n</form>"
            );
            "Connect your vehicle"
        }
        Step::Brands(search) => {
            let _ = writeln!(
                body,
                "<h1>Select your vehicle's brand</h1>\n{mode_note}\n{error}{form_start}\n\
                 <input type=\"hidden\" name=\"action\" value=\"search\">\n\
                 <label>Search <input type=\"search\" id=\"brand-search\" name=\"q\" value=\"{}\" \
                 autocomplete=\"off\" oninput=\"filterBrands(this.value)\"></label>\n</form>\n\
                 {form_start}\n<input type=\"hidden\" name=\"action\" value=\"brand\">\n\
                 <div class=\"brand-list\" id=\"brand-list\">",
                esc(search)
            );
            let needle = search.trim().to_ascii_lowercase();
            for b in fleet::TEST_BRANDS {
                if !needle.is_empty() && !b.name.to_ascii_lowercase().contains(&needle) {
                    continue;
                }
                let _ = writeln!(
                    body,
                    "<button type=\"submit\" class=\"brand-list-item\" id=\"{0}\" name=\"brand\" \
                     value=\"{0}\">{1}</button>",
                    esc(b.id),
                    esc(b.name)
                );
            }
            let _ = writeln!(
                body,
                "</div>\n</form>\n<script>function filterBrands(q){{q=q.trim().toLowerCase();\
                 document.querySelectorAll('.brand-list-item').forEach(function(b){{\
                 b.hidden=q!==''&&b.textContent.toLowerCase().indexOf(q)<0;}});}}</script>"
            );
            "Select your brand"
        }
        Step::Login => {
            let _ = writeln!(
                body,
                "<h1>Sign in to {}</h1>\n{mode_note}\n{error}{form_start}\n\
                 <input type=\"hidden\" name=\"action\" value=\"sign_in\">\n\
                 <label>E-mail <input type=\"text\" id=\"username\" name=\"username\" \
                 autocomplete=\"username\" required></label>\n\
                 <label>Password <input type=\"password\" id=\"password\" name=\"password\" \
                 autocomplete=\"current-password\"></label>\n\
                 <button type=\"submit\" class=\"primary\" id=\"sign-in-button\">Sign in</button>\n\
                 </form>",
                esc(brand_name)
            );
            if pending.make.is_none() {
                let _ = writeln!(
                    body,
                    "{form_start}\n<button type=\"submit\" id=\"back-button\" name=\"action\" \
                     value=\"back\">Choose another brand</button>\n</form>"
                );
            }
            "Sign in"
        }
        Step::Permissions => {
            let _ = writeln!(
                body,
                "<h1>{app} would like to</h1>\n{mode_note}\n{error}{form_start}\n\
                 <ul id=\"permissions\" class=\"permissions\">"
            );
            for scope in &pending.scopes {
                let required = pending.required.contains(scope);
                let _ = writeln!(
                    body,
                    "<li data-permission=\"{0}\"><label><input type=\"checkbox\" \
                     name=\"permission\" value=\"{0}\" checked{1}> {2}{3}</label></li>",
                    esc(scope),
                    if required { " disabled" } else { "" },
                    esc(describe_permission(scope)),
                    if required {
                        " <strong>(required)</strong>"
                    } else {
                        ""
                    }
                );
            }
            let _ = writeln!(body, "</ul>\n<h2>Vehicles</h2>\n<fieldset id=\"vehicles\">");
            let offered = offered(
                world,
                pending,
                &pending.shown_user,
                pending.seed,
                pending.expires_at,
            );
            let input_type = if pending.single_select {
                "radio"
            } else {
                "checkbox"
            };
            for (i, id) in offered.iter().enumerate() {
                let Some(v) = world.vehicles.get(id) else {
                    continue;
                };
                let checked = if !pending.single_select || i == 0 {
                    " checked"
                } else {
                    ""
                };
                let _ = writeln!(
                    body,
                    "<label><input type=\"{input_type}\" name=\"vehicle\" value=\"{}\"{checked}> \
                     {} {} {} <span class=\"vin\">VIN {}</span></label>",
                    esc(&v.id),
                    v.year,
                    esc(&v.make),
                    esc(&v.model),
                    esc(&v.vin)
                );
            }
            if offered.is_empty() {
                let _ = writeln!(body, "<p>No vehicles on this account.</p>");
            }
            let _ = writeln!(
                body,
                "</fieldset>\n<div class=\"actions\">\n\
                 <button type=\"submit\" class=\"primary\" id=\"approval-button\" name=\"action\" \
                 value=\"approve\">Allow</button>\n\
                 <button type=\"submit\" id=\"deny-button\" name=\"action\" value=\"deny\">Deny</button>\n\
                 </div>\n</form>"
            );
            "Allow access"
        }
    };
    let _ = writeln!(body, "</div>");
    page(&format!("{title} – {}", world.app.name), &body)
}

/// The Connect page of a pending request (its form's `request` id is filled in by [`respond`]).
fn render(world: &World, pending: &Pending, message: Option<&str>) -> String {
    let user = world.user(&pending.shown_user);
    let email = user.map(|u| u.email.as_str()).unwrap_or("");
    let mut body = String::new();
    let app = &world.app.name;
    match &pending.kind {
        PendingKind::Authorize => {
            let _ = writeln!(
                body,
                "<h1>{} wants to connect to your vehicle</h1>",
                esc(app)
            );
        }
        PendingKind::Reauthenticate(_) => {
            let _ = writeln!(body, "<h1>Log in again to keep {} connected</h1>", esc(app));
        }
    }
    let _ = writeln!(
        body,
        "<p class=\"sim\">Simulated Smartcar Connect · mode {}</p>",
        esc(&pending.mode)
    );
    if let Some(message) = message {
        let _ = writeln!(body, "<p class=\"error\" id=\"error\">{}</p>", esc(message));
    }
    let _ = writeln!(
        body,
        "<form method=\"post\" action=\"{}\" id=\"connect\">\n\
         <input type=\"hidden\" name=\"request\" value=\"\">",
        sim_paths::CONNECT_FORM
    );
    let _ = writeln!(
        body,
        "<label>E-mail <input type=\"email\" id=\"email\" name=\"email\" value=\"{}\" autocomplete=\"username\" required></label>\n\
         <label>Password <input type=\"password\" id=\"password\" name=\"password\" placeholder=\"any password\" autocomplete=\"current-password\"></label>\n\
         <button type=\"submit\" id=\"login\" name=\"action\" value=\"login\" formnovalidate>Log in with this e-mail</button>",
        esc(email)
    );
    if !pending.scopes.is_empty() {
        let _ = writeln!(
            body,
            "<h2>{} will be able to</h2>\n<ul id=\"permissions\">",
            esc(app)
        );
        for scope in &pending.scopes {
            let required = if pending.required.contains(scope) {
                " <strong>(required)</strong>"
            } else {
                ""
            };
            let _ = writeln!(
                body,
                "<li data-permission=\"{}\">{}{}</li>",
                esc(scope),
                esc(describe_permission(scope)),
                required
            );
        }
        let _ = writeln!(body, "</ul>");
    }
    let vehicles: Vec<std::borrow::Cow<'_, crate::model::Vehicle>> = match &pending.kind {
        PendingKind::Reauthenticate(id) => world
            .vehicles
            .get(id)
            .map(std::borrow::Cow::Borrowed)
            .into_iter()
            .collect(),
        // The VIN's vehicle (shown, not created: the page has no side effect); the time only
        // sets its data age, which the page does not show.
        PendingKind::Authorize => match &pending.single_select_vin {
            Some(vin) => vec![vin_vehicle(world, vin, pending.seed, pending.expires_at)],
            None => user
                .map(|u| u.vehicle_ids.as_slice())
                .unwrap_or_default()
                .iter()
                .filter_map(|id| world.vehicles.get(id.as_str()))
                .filter(|v| {
                    pending
                        .make
                        .as_deref()
                        .is_none_or(|m| v.make.eq_ignore_ascii_case(m))
                })
                .map(std::borrow::Cow::Borrowed)
                .collect(),
        },
    };
    let _ = writeln!(body, "<h2>Vehicles</h2>\n<fieldset id=\"vehicles\">");
    if vehicles.is_empty() {
        let _ = writeln!(body, "<p>No vehicles on this account.</p>");
    }
    let input_type = if pending.single_select {
        "radio"
    } else {
        "checkbox"
    };
    for (i, v) in vehicles.iter().enumerate() {
        let checked = if !pending.single_select || i == 0 {
            " checked"
        } else {
            ""
        };
        let input = if matches!(pending.kind, PendingKind::Reauthenticate(_)) {
            String::new()
        } else {
            format!(
                "<input type=\"{input_type}\" name=\"vehicle\" value=\"{}\"{checked}> ",
                esc(&v.id)
            )
        };
        let _ = writeln!(
            body,
            "<label>{input}{} {} {} <span class=\"vin\">VIN {}</span></label>",
            v.year,
            esc(&v.make),
            esc(&v.model),
            esc(&v.vin)
        );
    }
    let _ = writeln!(body, "</fieldset>");
    let _ = writeln!(
        body,
        "<div class=\"actions\">\n\
         <button type=\"submit\" class=\"primary\" id=\"approve\" name=\"action\" value=\"approve\">Allow</button>\n\
         <button type=\"submit\" id=\"deny\" name=\"action\" value=\"deny\" formnovalidate>Deny</button>\n\
         </div>\n</form>\n\
         <p class=\"sim\">Test logins: smartcar@vehicle-incompatible.com, smartcar@invalid-subscription.com, \
         VEHICLE_STATE.ASLEEP@smartcar.com (any TYPE.CODE of the error reference).</p>"
    );
    page(&format!("Connect your vehicle – {app}"), &body)
}

/// Stores `pending` and renders its page (the world is only read).
fn show(shared: &Shared, pending: Pending) -> Response {
    let html = render_any(&shared.world(), &pending, None);
    respond(shared, None, pending, Outcome::Page(StatusCode::OK, html))
}

/// `sim_auto_approve` / `sim_user` / `sim_vehicles` of an authorize URL.
fn auto_decision(raw_query: Option<&str>) -> Option<Decision> {
    let query = query_pairs(raw_query);
    let action = match query.get("sim_auto_approve")?.as_str() {
        "true" | "1" | "approve" => Action::Approve,
        "deny" => Action::Deny,
        _ => return None,
    };
    Some(Decision {
        action,
        email: query.get("sim_user").cloned(),
        vehicle_ids: query.get("sim_vehicles").map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        }),
    })
}

/// Answers with `outcome`: a page (the user must act again) keeps the request pending under
/// `id` (a new id when `None`) and carries that id in its form; anything else ends it.
fn respond(shared: &Shared, id: Option<String>, pending: Pending, outcome: Outcome) -> Response {
    match outcome {
        Outcome::Page(status, html) => {
            let id = match id {
                Some(id) => {
                    shared.pending().insert(id.clone(), pending);
                    id
                }
                None => store_pending(shared, pending),
            };
            let html = html.replace(
                "name=\"request\" value=\"\"",
                &format!("name=\"request\" value=\"{}\"", esc(&id)),
            );
            Outcome::Page(status, html).into_response()
        }
        other => {
            if let Some(id) = id {
                shared.pending().remove(&id);
            }
            other.into_response()
        }
    }
}

async fn authorize_page(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    connect_page(&state, query.as_deref(), validate_authorize)
}

async fn reauthenticate_page(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    connect_page(&state, query.as_deref(), validate_reauthenticate)
}

/// A Connect page (authorize, re-authenticate): the query `validate`d into a pending request,
/// then decided at once when the query asks for it (`auto_decision`), else shown.
fn connect_page(
    state: &AppState,
    query: Option<&str>,
    validate: fn(&Shared, Option<&str>) -> Result<Pending, Outcome>,
) -> Response {
    let mut pending = match validate(state, query) {
        Ok(p) => p,
        Err(outcome) => return outcome.into_response(),
    };
    if let Some(decision) = auto_decision(query) {
        let outcome = decide(state, &mut pending, decision);
        return respond(state, None, pending, outcome);
    }
    show(state, pending)
}

/// The fields a Connect page posts.
#[derive(Debug, Default)]
struct Form {
    request: Option<String>,
    email: Option<String>,
    action: Option<String>,
    vehicles: Vec<String>,
    /// Test and simulated mode: the login (`input#username`), the brand button pressed, the
    /// brand search text, the optional permissions left checked.
    username: Option<String>,
    brand: Option<String>,
    search: Option<String>,
    permissions: Vec<String>,
}

impl Form {
    fn parse(body: &[u8]) -> Form {
        let mut form = Form::default();
        for (k, v) in url::form_urlencoded::parse(body) {
            let v = v.into_owned();
            match k.as_ref() {
                "request" => form.request = Some(v),
                "email" => form.email = Some(v),
                "action" => form.action = Some(v),
                "vehicle" => form.vehicles.push(v),
                "username" => form.username = Some(v),
                "brand" => form.brand = Some(v),
                "q" => form.search = Some(v),
                "permission" => form.permissions.push(v),
                _ => {}
            }
        }
        form
    }
}

async fn authorize_form(State(state): State<AppState>, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let expired = || {
        Outcome::ErrorPage(
            StatusCode::BAD_REQUEST,
            "This authorization request is unknown or has expired. Please start again from the application."
                .into(),
        )
        .into_response()
    };
    let Some(id) = form.request.clone() else {
        return expired();
    };
    let now = state.now();
    let pending = state.pending().get(&id).cloned();
    let Some(mut pending) = pending.filter(|p| p.expires_at > now) else {
        state.pending().remove(&id);
        return expired();
    };
    if pending.step != Step::Single {
        let outcome = guided_step(&state, &mut pending, form);
        return respond(&state, Some(id), pending, outcome);
    }
    let action = match form.action.as_deref() {
        Some("approve") => Action::Approve,
        Some("deny") => Action::Deny,
        Some("login") => Action::Login,
        _ => {
            return Outcome::ErrorPage(StatusCode::BAD_REQUEST, "Unknown action.".into())
                .into_response();
        }
    };
    let decision = Decision {
        action,
        email: form.email.filter(|e| !e.trim().is_empty()),
        vehicle_ids: Some(form.vehicles),
    };
    let outcome = decide(&state, &mut pending, decision);
    respond(&state, Some(id), pending, outcome)
}

/// Outcome of an in-process approval ([`crate::Simulator::approve`]).
pub(crate) fn approve_in_process(
    shared: &Shared,
    url: &str,
    decision: Decision,
) -> Result<url::Url, (u16, String)> {
    let parsed = url::Url::parse(url)
        .or_else(|_| url::Url::parse(&format!("{}{}", shared.base_url, url)))
        .map_err(|_| (400, format!("not a URL: {url}")))?;
    let query = parsed.query();
    let validated = if parsed.path().ends_with(ops::REAUTHENTICATE.path) {
        validate_reauthenticate(shared, query)
    } else {
        validate_authorize(shared, query)
    };
    let mut pending = match validated {
        Ok(p) => p,
        Err(Outcome::Redirect(url)) => return Ok(url),
        Err(Outcome::ErrorPage(status, message)) => return Err((status.as_u16(), message)),
        Err(Outcome::Page(status, _)) => return Err((status.as_u16(), "unexpected page".into())),
    };
    match decide(shared, &mut pending, decision) {
        Outcome::Redirect(url) => Ok(url),
        Outcome::ErrorPage(status, message) => Err((status.as_u16(), message)),
        Outcome::Page(status, html) => {
            let message = html
                .split("id=\"error\">")
                .nth(1)
                .and_then(|rest| rest.split('<').next())
                .unwrap_or("the Connect page asked for more input")
                .to_owned();
            Err((status.as_u16(), message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
