//! The user-level v2.0 API: the user, their vehicles, and one typed method per vehicle endpoint.
//!
//! Legacy: Smartcar has deprecated the Vehicle API v2.0 (retirement announced for Q3 2026). New
//! integrations use [`smartcar::v3`](crate::v3) ([`VehicleV3`](crate::v3::VehicleV3)) and the
//! machine-to-machine flow (Connect's `user_id`, one application token for every user). This
//! module stays supported for existing integrations; each public method names its v3 equivalent
//! where there is one.

use std::sync::{Arc, OnceLock};

use http::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use smartcar_api::op::{Endpoint, Operation};
use smartcar_api::{ops, types};

use crate::Error;
use crate::checks::check_id;
use crate::config::UnitSystem;
use crate::request::{Call, RawResponse, Response};
use crate::send::Authorizer;
use crate::session::Session;

/// The path template of the escape hatch ([`Vehicle::request`]) in spans and errors: the
/// vehicle's path followed by `/*`.
fn escape_template() -> &'static str {
    static TEMPLATE: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("{}/*", ops::GET_VEHICLE_ATTRIBUTES.path));
    TEMPLATE.as_str()
}

impl Session {
    /// Asks Smartcar for the user id behind this session's token (`GET /v2.0/user`): a
    /// request, unlike [`ApplicationSession::user`](crate::ApplicationSession::user), which
    /// only makes a handle.
    ///
    /// Legacy v2.0: in v3 the user id comes with Connect's redirect
    /// ([`Redirect::UserId`](crate::Redirect::UserId), accepted through
    /// [`ApplicationSession::verify_user_id`](crate::ApplicationSession::verify_user_id)).
    ///
    /// ```no_run
    /// # async fn demo(session: smartcar::Session) -> Result<(), smartcar::Error> {
    /// let user_id = session.fetch_user_id().await?.data;
    /// println!("user {user_id}");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// API, transport, timeout, decode and token errors.
    pub async fn fetch_user_id(&self) -> Result<Response<String>, Error> {
        let call = Call::new(
            &ops::GET_USER,
            self.client().origins(),
            &ops::GetUser::path(),
            &[],
        );
        let user: Response<types::User> = self.client().send(call, Authorizer::User(self)).await?;
        Ok(user.map(|u| u.id))
    }

    /// One page of the user's vehicle ids (`GET /v2.0/vehicles`; `limit` at most 50).
    ///
    /// Legacy v2.0: the v3 equivalent is [`UserV3::vehicle_ids`](crate::v3::UserV3::vehicle_ids).
    ///
    /// ```no_run
    /// # async fn demo(session: smartcar::Session) -> Result<(), smartcar::Error> {
    /// let page = session.vehicle_ids(Some(50), None).await?;
    /// println!("{} of {} vehicles", page.data.vehicles.len(), page.data.paging.count);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a limit outside 1–50; API and transport errors.
    pub async fn vehicle_ids(
        &self,
        limit: Option<u32>,
        offset: Option<u32>,
    ) -> Result<Response<types::VehicleList>, Error> {
        if limit.is_some_and(|l| !(1..=50).contains(&l)) {
            return Err(Error::invalid("limit", "between 1 and 50"));
        }
        let mut query = Vec::new();
        if let Some(l) = limit {
            query.push(("limit", l.to_string()));
        }
        if let Some(o) = offset {
            query.push(("offset", o.to_string()));
        }
        let call = Call::new(
            &ops::LIST_VEHICLES,
            self.client().origins(),
            &ops::ListVehicles::path(),
            &query,
        );
        self.client().send(call, Authorizer::User(self)).await
    }

    /// A handle on one of the user's vehicles. Cheap; no request is sent.
    ///
    /// Legacy v2.0: the v3 equivalent is [`UserV3::vehicle`](crate::v3::UserV3::vehicle).
    ///
    /// ```no_run
    /// # async fn demo(session: smartcar::Session) -> Result<(), smartcar::Error> {
    /// let vehicle = session.vehicle("36ab27d0-fd9d-4455-823a-ce30af709ffc")?;
    /// let odometer = vehicle.odometer().await?;
    /// # let _ = odometer;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when `id` is empty, `.`/`..`, or has a character outside letters,
    /// digits, `-`, `.`, `_`, `~`.
    pub fn vehicle(&self, id: impl Into<String>) -> Result<Vehicle, Error> {
        let id = id.into();
        check_id("vehicle id", &id)?;
        Ok(Vehicle {
            session: self.clone(),
            units: self.client().unit_system(),
            id,
            urls: Arc::default(),
        })
    }
}

/// How many v2.0 reads a [`Vehicle`] has (the `read!` methods).
const READS: usize = 15;

/// The URL of each read of one vehicle, built on first use and shared by the handle's clones:
/// percent-encoding a path into a URL costs more than the rest of what the SDK does per call.
#[derive(Default)]
struct ReadUrls([OnceLock<url::Url>; READS]);

impl std::fmt::Debug for ReadUrls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadUrls")
    }
}

/// One connected vehicle of a [`Session`]'s user: one method per v2.0 endpoint. Cheap to clone.
///
/// # Legacy
///
/// Smartcar has deprecated the Vehicle API v2.0 (retirement announced for Q3 2026). New
/// integrations use [`smartcar::v3`](crate::v3): a [`VehicleV3`](crate::v3::VehicleV3) from
/// [`ApplicationSession::user`](crate::ApplicationSession::user), in the machine-to-machine flow
/// (Connect returns a `user_id`; one application token serves every user). `Vehicle` stays
/// supported for existing integrations; each method below names its v3 equivalent where there
/// is one.
///
/// Each read returns the typed body with its [`Response::meta`] (data age, fetched at, unit
/// system, request id). Distances are kilometres (metric, the default) or miles (imperial),
/// volumes litres or US gallons, pressures kilopascals or psi; percentages are fractions 0–1.
///
/// ```no_run
/// # async fn demo(session: smartcar::Session) -> Result<(), smartcar::Error> {
/// use smartcar::config::UnitSystem;
///
/// let vehicle = session.vehicle("36ab27d0-fd9d-4455-823a-ce30af709ffc")?;
/// let odometer = vehicle.clone().with_unit_system(UnitSystem::Imperial).odometer().await?;
/// println!("{} miles", odometer.data.distance);
/// vehicle.lock().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Vehicle {
    session: Session,
    id: String,
    units: UnitSystem,
    urls: Arc<ReadUrls>,
}

macro_rules! read {
    ($(#[$doc:meta])* $name:ident, $index:literal, $op:ident, $ty:ty) => {
        $(#[$doc])*
        ///
        /// ```no_run
        /// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
        #[doc = concat!("let r = vehicle.", stringify!($name), "().await?;")]
        /// println!("{:?}, data age {:?}", r.data, r.meta.data_age);
        /// # Ok(()) }
        /// ```
        ///
        /// # Errors
        ///
        /// API errors (e.g. 403 `PERMISSION` without the permission, 409 `VEHICLE_STATE`, 501
        /// `COMPATIBILITY` when the vehicle cannot report it), transport, timeout, decode and
        /// token errors.
        pub async fn $name(&self) -> Result<Response<$ty>, Error> {
            // The spec's operation; its response type must be `$ty` (a compile error if not).
            const OP: &Operation = <ops::$op as Endpoint>::OP;
            self.get::<ops::$op>($index, OP, ops::$op::path).await
        }
    };
}

impl Vehicle {
    /// The vehicle id.
    ///
    /// Legacy v2.0: the v3 equivalent is [`VehicleV3::id`](crate::v3::VehicleV3::id).
    ///
    /// ```no_run
    /// # fn demo(vehicle: smartcar::v2::Vehicle) {
    /// println!("vehicle {}", vehicle.id());
    /// # }
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The unit system this handle asks for.
    ///
    /// Legacy v2.0: v3 has no unit system; each signal names its unit
    /// ([`Signal::unit`](crate::v3::Signal::unit)).
    ///
    /// ```no_run
    /// # fn demo(vehicle: smartcar::v2::Vehicle) {
    /// println!("units: {}", vehicle.unit_system().as_str());
    /// # }
    /// ```
    pub fn unit_system(&self) -> UnitSystem {
        self.units
    }

    /// This handle, asking for `units` (the session's other handles are unaffected).
    ///
    /// Legacy v2.0: v3 has no unit system; each signal names its unit
    /// ([`Signal::unit`](crate::v3::Signal::unit)).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
    /// let imperial = vehicle.with_unit_system(smartcar::config::UnitSystem::Imperial);
    /// let fuel = imperial.fuel().await?; // US gallons and miles
    /// # let _ = fuel;
    /// # Ok(()) }
    /// ```
    pub fn with_unit_system(mut self, units: UnitSystem) -> Vehicle {
        self.units = units;
        self
    }

    /// The session.
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
    /// let user_id = vehicle.session().fetch_user_id().await?.data;
    /// println!("{} belongs to {user_id}", vehicle.id());
    /// # Ok(()) }
    /// ```
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// A read; `index` (below [`READS`], one per read) names its slot in the URL cache.
    async fn get<E: Endpoint>(
        &self,
        index: usize,
        op: &'static Operation,
        path: fn(&str) -> String,
    ) -> Result<Response<E::Response>, Error>
    where
        E::Response: DeserializeOwned,
    {
        let url = self.urls.0[index].get_or_init(|| {
            crate::config::join(
                self.session.client().origins().origin(op.host),
                &path(&self.id),
            )
        });
        let call = Call::to(op, url.clone()).unit_system(Some(self.units));
        self.send(call).await
    }

    /// A command `E` of this vehicle at `path` (from `E`'s path function), with its body.
    /// The body and the answer are those of the operation `E` (a compile error otherwise).
    async fn command<E: Endpoint>(
        &self,
        path: &str,
        body: Option<&E::Request>,
    ) -> Result<Response<E::Response>, Error>
    where
        E::Request: Serialize,
        E::Response: DeserializeOwned,
    {
        let call = Call::new(E::OP, self.session.client().origins(), path, &[]).json(body)?;
        self.send(call).await
    }

    /// Sends a call with this vehicle's session.
    async fn send<T: DeserializeOwned>(&self, call: Call) -> Result<Response<T>, Error> {
        self.session
            .client()
            .send(call, Authorizer::User(&self.session))
            .await
    }

    read!(
        /// Make, model and year (`read_vehicle_info`).
        ///
        /// Legacy v2.0: the v3 equivalent is [`VehicleV3::info`](crate::v3::VehicleV3::info).
        attributes, 0, GetVehicleAttributes, types::VehicleAttributes
    );
    read!(
        /// The VIN (`read_vin`).
        ///
        /// Legacy v2.0: in v3, [`VehicleV3::signal`](crate::v3::VehicleV3::signal) with
        /// [`SignalCode::VehicleidentificationVin`](crate::v3::SignalCode::VehicleidentificationVin).
        vin, 1, GetVin, types::Vin
    );
    read!(
        /// The odometer (`read_odometer`): km or miles.
        ///
        /// Legacy v2.0: in v3, [`VehicleV3::signal`](crate::v3::VehicleV3::signal) with
        /// [`SignalCode::OdometerTraveleddistance`](crate::v3::SignalCode::OdometerTraveleddistance).
        odometer, 2, GetOdometer, types::Odometer
    );
    read!(
        /// The location in degrees (`read_location`).
        ///
        /// Legacy v2.0: in v3, [`VehicleV3::signal`](crate::v3::VehicleV3::signal) with
        /// [`SignalCode::LocationPreciselocation`](crate::v3::SignalCode::LocationPreciselocation).
        location, 3, GetLocation, types::Location
    );
    read!(
        /// The fuel tank (`read_fuel`): litres or US gallons, fraction, km or miles.
        ///
        /// Legacy v2.0: in v3, [`VehicleV3::signal`](crate::v3::VehicleV3::signal) with
        /// [`SignalCode::InternalcombustionengineFuellevel`](crate::v3::SignalCode::InternalcombustionengineFuellevel),
        /// `…Amountremaining` and `…Range`.
        fuel, 4, GetFuel, types::FuelTank
    );
    read!(
        /// The traction battery's charge (fraction) and range (`read_battery`).
        ///
        /// Legacy v2.0: in v3, [`VehicleV3::signal`](crate::v3::VehicleV3::signal) with
        /// [`SignalCode::TractionbatteryStateofcharge`](crate::v3::SignalCode::TractionbatteryStateofcharge)
        /// and [`SignalCode::TractionbatteryRange`](crate::v3::SignalCode::TractionbatteryRange).
        battery, 5, GetBattery, types::Battery
    );
    read!(
        /// The traction battery's capacity in kWh (`read_battery`).
        ///
        /// Legacy v2.0: in v3, [`VehicleV3::signal`](crate::v3::VehicleV3::signal) with
        /// [`SignalCode::TractionbatteryNominalcapacity`](crate::v3::SignalCode::TractionbatteryNominalcapacity).
        battery_capacity, 6, GetBatteryCapacity, types::BatteryCapacity
    );
    read!(
        /// The nominal capacity and the candidates (`read_battery`).
        ///
        /// Legacy v2.0: in v3, [`VehicleV3::signal`](crate::v3::VehicleV3::signal) with
        /// [`SignalCode::TractionbatteryNominalcapacity`](crate::v3::SignalCode::TractionbatteryNominalcapacity).
        nominal_capacity, 7, GetNominalCapacity, types::NominalCapacity
    );
    read!(
        /// Plugged in and charging state (`read_charge`).
        ///
        /// Legacy v2.0: in v3, [`VehicleV3::signal`](crate::v3::VehicleV3::signal) with
        /// [`SignalCode::ChargeIscharging`](crate::v3::SignalCode::ChargeIscharging) and
        /// [`SignalCode::ChargeIschargingcableconnected`](crate::v3::SignalCode::ChargeIschargingcableconnected).
        charge, 8, GetChargeStatus, types::ChargeStatus
    );
    read!(
        /// The charge limit, a fraction (`read_charge`).
        ///
        /// Legacy v2.0: in v3, [`VehicleV3::signal`](crate::v3::VehicleV3::signal) with
        /// [`SignalCode::ChargeChargelimits`](crate::v3::SignalCode::ChargeChargelimits).
        charge_limit, 9, GetChargeLimit, types::ChargeLimit
    );
    read!(
        /// Engine oil life, a fraction (`read_engine_oil`).
        ///
        /// Legacy v2.0: in v3, [`VehicleV3::signal`](crate::v3::VehicleV3::signal) with
        /// [`SignalCode::InternalcombustionengineOillife`](crate::v3::SignalCode::InternalcombustionengineOillife).
        engine_oil, 10, GetEngineOil, types::EngineOil
    );
    read!(
        /// Tire pressures, kPa or psi (`read_tires`).
        ///
        /// Legacy v2.0: in v3, [`VehicleV3::signal`](crate::v3::VehicleV3::signal) with
        /// [`SignalCode::WheelTires`](crate::v3::SignalCode::WheelTires).
        tire_pressure, 11, GetTirePressure, types::TirePressure
    );
    read!(
        /// Lock status, doors, windows, sunroof, storage, charging port (`read_security`).
        ///
        /// Legacy v2.0: in v3, [`VehicleV3::signal`](crate::v3::VehicleV3::signal) with
        /// [`SignalCode::ClosureIslocked`](crate::v3::SignalCode::ClosureIslocked) and the other
        /// `closure-*` signals (doors, windows, sunroof, trunks).
        lock_status, 12, GetLockStatus, types::LockStatus
    );
    read!(
        /// The health of the vehicle's systems (`read_diagnostics`).
        ///
        /// Legacy v2.0: in v3, the `diagnostics-*` signals through
        /// [`VehicleV3::signal`](crate::v3::VehicleV3::signal) (e.g.
        /// [`SignalCode::DiagnosticsAbs`](crate::v3::SignalCode::DiagnosticsAbs)).
        diagnostic_system_status, 13, GetDiagnosticSystemStatus, types::DiagnosticSystemStatus
    );
    read!(
        /// Active diagnostic trouble codes (`read_diagnostics`).
        ///
        /// Legacy v2.0: in v3, [`VehicleV3::signal`](crate::v3::VehicleV3::signal) with
        /// [`SignalCode::DiagnosticsDtclist`](crate::v3::SignalCode::DiagnosticsDtclist).
        diagnostic_trouble_codes, 14, GetDiagnosticTroubleCodes, types::DiagnosticTroubleCodes
    );

    /// Locks the vehicle (`control_security`). Sent once: a command is only retried when the
    /// platform certainly did not execute it (429, or no connection).
    ///
    /// Legacy v2.0: the v3 equivalent is [`VehicleV3::lock`](crate::v3::VehicleV3::lock).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
    /// let r = vehicle.lock().await?;
    /// println!("{} {:?}", r.data.status, r.data.message);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// API errors (409 `VEHICLE_STATE`/`IN_MOTION`…), transport, timeout, token errors.
    pub async fn lock(&self) -> Result<Response<types::ActionResponse>, Error> {
        self.security(types::SecurityAction::Lock).await
    }

    /// Unlocks the vehicle (`control_security`).
    ///
    /// Legacy v2.0: the v3 equivalent is [`VehicleV3::unlock`](crate::v3::VehicleV3::unlock).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
    /// let r = vehicle.unlock().await?;
    /// println!("{}", r.data.status);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`lock`](Self::lock).
    pub async fn unlock(&self) -> Result<Response<types::ActionResponse>, Error> {
        self.security(types::SecurityAction::Unlock).await
    }

    async fn security(
        &self,
        action: types::SecurityAction,
    ) -> Result<Response<types::ActionResponse>, Error> {
        let body = types::SecurityActionRequest { action };
        self.command::<ops::ControlSecurity>(&ops::ControlSecurity::path(&self.id), Some(&body))
            .await
    }

    /// Starts charging (`control_charge`).
    ///
    /// Legacy v2.0: the v3 equivalent is [`VehicleV3::start_charge`](crate::v3::VehicleV3::start_charge).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
    /// let r = vehicle.start_charge().await?;
    /// println!("{}", r.data.status);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// API errors (409 `CHARGING_PLUG_NOT_CONNECTED`…), transport, timeout, token errors.
    pub async fn start_charge(&self) -> Result<Response<types::ActionResponse>, Error> {
        self.charge_action(types::ChargeAction::Start).await
    }

    /// Stops charging (`control_charge`).
    ///
    /// Legacy v2.0: the v3 equivalent is [`VehicleV3::stop_charge`](crate::v3::VehicleV3::stop_charge).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
    /// let r = vehicle.stop_charge().await?;
    /// println!("{}", r.data.status);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`start_charge`](Self::start_charge).
    pub async fn stop_charge(&self) -> Result<Response<types::ActionResponse>, Error> {
        self.charge_action(types::ChargeAction::Stop).await
    }

    async fn charge_action(
        &self,
        action: types::ChargeAction,
    ) -> Result<Response<types::ActionResponse>, Error> {
        let body = types::ChargeActionRequest { action };
        self.command::<ops::ControlCharge>(&ops::ControlCharge::path(&self.id), Some(&body))
            .await
    }

    /// Sets the charge limit (`control_charge`). v2.0 encodes it as a fraction; the
    /// [`ChargeLimit`](crate::ChargeLimit) does that, whichever unit it was built from.
    ///
    /// Legacy v2.0: the v3 equivalent is
    /// [`VehicleV3::set_charge_limit`](crate::v3::VehicleV3::set_charge_limit).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
    /// use smartcar::ChargeLimit;
    ///
    /// vehicle.set_charge_limit(ChargeLimit::percent(80.0)?).await?; // sends {"limit": 0.8}
    /// # Ok(()) }
    /// ```
    ///
    /// A bare number does not compile, so a percentage cannot reach v2.0 as a fraction:
    ///
    /// ```compile_fail
    /// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
    /// vehicle.set_charge_limit(0.8).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// API and transport errors.
    pub async fn set_charge_limit(
        &self,
        limit: crate::ChargeLimit,
    ) -> Result<Response<types::ActionResponse>, Error> {
        self.command::<ops::SetChargeLimit>(
            &ops::SetChargeLimit::path(&self.id),
            Some(&limit.v2_body()),
        )
        .await
    }

    /// Sends a destination to the navigation system (`control_navigation`); the same name and
    /// argument as [`VehicleV3::set_destination`](crate::v3::VehicleV3::set_destination).
    ///
    /// Legacy v2.0: the v3 equivalent is
    /// [`VehicleV3::set_destination`](crate::v3::VehicleV3::set_destination).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
    /// use smartcar::Destination;
    ///
    /// vehicle.set_destination(Destination::new(37.7749, -122.4194)?).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// API and transport errors.
    pub async fn set_destination(
        &self,
        destination: crate::Destination,
    ) -> Result<Response<types::ActionResponse>, Error> {
        self.command::<ops::SendDestination>(
            &ops::SendDestination::path(&self.id),
            Some(&destination.v2_body()),
        )
        .await
    }

    /// Subscribes this vehicle to a webhook (v2.0, with the vehicle's access token).
    ///
    /// Legacy v2.0: the v3 equivalent is
    /// [`ApplicationSession::subscribe`](crate::ApplicationSession::subscribe).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
    /// let r = vehicle.subscribe("8c5c7c1e-2d3a-4e4b-9c3f-1a2b3c4d5e6f").await?;
    /// println!("{} subscribed to {}", r.data.vehicle_id, r.data.webhook_id);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed webhook id; API (404 unknown webhook), transport,
    /// timeout and token errors.
    pub async fn subscribe(
        &self,
        webhook_id: &str,
    ) -> Result<Response<types::WebhookSubscription>, Error> {
        check_id("webhook id", webhook_id)?;
        self.command::<ops::SubscribeWebhook>(
            &ops::SubscribeWebhook::path(&self.id, webhook_id),
            None::<&()>,
        )
        .await
    }

    /// Unsubscribes this vehicle from a webhook. The platform authenticates this call with the
    /// application management token (AMT), not the vehicle's token.
    ///
    /// Legacy v2.0: the v3 equivalent is
    /// [`ApplicationSession::unsubscribe`](crate::ApplicationSession::unsubscribe) (by subscription
    /// id).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v2::Vehicle, management_token: &str) -> Result<(), smartcar::Error> {
    /// vehicle.unsubscribe(management_token, "8c5c7c1e-2d3a-4e4b-9c3f-1a2b3c4d5e6f").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed webhook id; API, transport and timeout errors.
    pub async fn unsubscribe(
        &self,
        management_token: &str,
        webhook_id: &str,
    ) -> Result<Response<types::StatusResponse>, Error> {
        check_id("webhook id", webhook_id)?;
        let client = self.session.client();
        let call = Call::new(
            &ops::UNSUBSCRIBE_WEBHOOK,
            client.origins(),
            &ops::UnsubscribeWebhook::path(&self.id, webhook_id),
            &[],
        );
        client
            .send(call, Authorizer::Management(management_token))
            .await
    }

    /// Revokes the application's access to this vehicle.
    ///
    /// Legacy v2.0: the v3 equivalent is
    /// [`ApplicationSession::delete_connection`](crate::ApplicationSession::delete_connection) (by
    /// connection id).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
    /// vehicle.disconnect().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// API, transport, timeout and token errors.
    pub async fn disconnect(&self) -> Result<Response<types::StatusResponse>, Error> {
        self.command::<ops::Disconnect>(&ops::Disconnect::path(&self.id), None::<&()>)
            .await
    }
}

/// Pages of [`Session::vehicles`].
const VEHICLE_PAGE: u32 = 50;
/// Upper bound on pages read by one stream.
const MAX_VEHICLE_PAGES: u32 = 10_000;

/// A stream of the user's vehicles, paging by itself.
///
/// Legacy v2.0: in v3, [`UserV3::vehicle_ids`](crate::v3::UserV3::vehicle_ids).
///
/// ```no_run
/// use futures_util::TryStreamExt;
/// # async fn demo(session: smartcar::Session) -> Result<(), smartcar::Error> {
/// let vehicles: smartcar::v2::VehicleStream = session.vehicles();
/// let all: Vec<smartcar::v2::Vehicle> = vehicles.try_collect().await?;
/// println!("{} vehicles", all.len());
/// # Ok(()) }
/// ```
pub type VehicleStream =
    std::pin::Pin<Box<dyn futures_core::Stream<Item = Result<Vehicle, Error>> + Send>>;

impl Session {
    /// Every vehicle the user connected, as a stream that fetches pages of 50 as it goes. A
    /// failing page is an error item, after which the stream ends.
    ///
    /// Legacy v2.0: in v3, [`UserV3::vehicle_ids`](crate::v3::UserV3::vehicle_ids) (every page)
    /// and [`UserV3::vehicle`](crate::v3::UserV3::vehicle).
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// # async fn demo(session: smartcar::Session) -> Result<(), smartcar::Error> {
    /// let mut vehicles = session.vehicles();
    /// while let Some(vehicle) = vehicles.next().await {
    ///     println!("{}", vehicle?.id());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn vehicles(&self) -> VehicleStream {
        use futures_util::StreamExt;
        let session = self.clone();
        let fetcher = self.clone();
        let ids = crate::paging::pages(0u32, MAX_VEHICLE_PAGES, move |offset| {
            let s = fetcher.clone();
            async move {
                let page = s.vehicle_ids(Some(VEHICLE_PAGE), Some(offset)).await?.data;
                let next =
                    crate::paging::next_offset(offset, page.vehicles.len(), page.paging.count);
                Ok((page.vehicles, next))
            }
        });
        Box::pin(ids.map(move |id| id.and_then(|id| session.vehicle(id))))
    }
}

impl Vehicle {
    /// One page of the permissions granted for this vehicle (`limit` default 25).
    ///
    /// Legacy v2.0: in v3, each of [`UserV3::connections`](crate::v3::UserV3::connections)
    /// carries its permissions (`attributes.permissions`).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
    /// let page = vehicle.permissions(Some(25), None).await?;
    /// for permission in &page.data.permissions {
    ///     println!("{permission:?}");
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// API, transport, timeout, decode and token errors.
    pub async fn permissions(
        &self,
        limit: Option<u32>,
        offset: Option<u32>,
    ) -> Result<Response<types::Permissions>, Error> {
        let mut query = Vec::new();
        if let Some(l) = limit {
            query.push(("limit", l.to_string()));
        }
        if let Some(o) = offset {
            query.push(("offset", o.to_string()));
        }
        let call = Call::new(
            &ops::GET_PERMISSIONS,
            self.session.client().origins(),
            &ops::GetPermissions::path(&self.id),
            &query,
        );
        self.send(call).await
    }

    /// Whether every one of `permissions` was granted for this vehicle (reads all pages).
    ///
    /// Legacy v2.0: in v3, each of [`UserV3::connections`](crate::v3::UserV3::connections)
    /// carries its permissions (`attributes.permissions`).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
    /// use smartcar::Permission;
    ///
    /// if vehicle.has_permissions(&[Permission::ControlSecurity]).await? {
    ///     vehicle.unlock().await?;
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`permissions`](Self::permissions).
    pub async fn has_permissions(&self, permissions: &[crate::Permission]) -> Result<bool, Error> {
        let all = crate::paging::pages(0u32, 1_000, |offset| async move {
            let page = self.permissions(Some(100), Some(offset)).await?.data;
            let next =
                crate::paging::next_offset(offset, page.permissions.len(), page.paging.count);
            Ok((page.permissions, next))
        });
        let granted: std::collections::HashSet<_> =
            crate::paging::collect(all).await?.into_iter().collect();
        Ok(permissions.iter().all(|p| granted.contains(p)))
    }

    /// Dealer service records between two dates (both optional), sent as `start_date` and
    /// `end_date` (the spelling of the Node, Java and Ruby SDKs; Python's `startDate` is
    /// reachable through [`request`](Self::request) should the platform prefer it).
    ///
    /// Legacy v2.0: in v3, [`VehicleV3::signal`](crate::v3::VehicleV3::signal) with
    /// [`SignalCode::ServiceRecords`](crate::v3::SignalCode::ServiceRecords).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
    /// let since = chrono::Utc::now() - chrono::Duration::days(365);
    /// let history = vehicle.service_history(Some(since), None).await?;
    /// println!("{} service records", history.data.len());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when `start` is after `end`; API and transport errors.
    pub async fn service_history(
        &self,
        start: Option<chrono::DateTime<chrono::Utc>>,
        end: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Response<Vec<types::ServiceRecord>>, Error> {
        if let (Some(s), Some(e)) = (start, end)
            && s > e
        {
            return Err(Error::invalid("date range", "start is after end"));
        }
        let mut query = Vec::new();
        if let Some(s) = start {
            query.push((
                "start_date",
                s.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ));
        }
        if let Some(e) = end {
            query.push((
                "end_date",
                e.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ));
        }
        let call = Call::new(
            &ops::GET_SERVICE_HISTORY,
            self.session.client().origins(),
            &ops::GetServiceHistory::path(&self.id),
            &query,
        )
        .unit_system(Some(self.units));
        self.send(call).await
    }

    /// The escape hatch: any v2.0 path of this vehicle (`"/tesla/speedometer"`), with the same
    /// authentication, retries (for GET), errors and tracing as the typed methods.
    ///
    /// Legacy v2.0: the make-specific endpoints it reaches (`/tesla/…`, …) are deprecated with
    /// v2.0; in v3, a signal the SDK does not list is read by its code with
    /// [`VehicleV3::signal`](crate::v3::VehicleV3::signal).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
    /// use smartcar::config::Method;
    ///
    /// let r = vehicle.request(Method::GET, "/tesla/speedometer", None).await?;
    /// println!("{}", r.data);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a path that does not start with `/`; API and transport
    /// errors.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response<serde_json::Value>, Error> {
        if !path.starts_with('/') || path.contains(['?', '#']) {
            return Err(Error::invalid(
                "path",
                format!("`{path}` must start with `/` and carry no query"),
            ));
        }
        // Under the vehicle's own path: its host and authentication.
        let base = &ops::GET_VEHICLE_ATTRIBUTES;
        let full = format!(
            "{}{}",
            ops::GetVehicleAttributes::path(&self.id),
            path.trim_end_matches('/')
        );
        let url = crate::config::join(self.session.client().origins().origin(base.host), &full);
        let call = Call::unlisted(base, method, url, escape_template())
            .unit_system(Some(self.units))
            .json(body)?;
        self.send(call).await
    }

    /// Starts a batch: several reads in one request.
    ///
    /// Legacy v2.0: the v3 equivalent is [`VehicleV3::signals`](crate::v3::VehicleV3::signals)
    /// (every signal, paged).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
    /// let batch = vehicle.batch().odometer().battery().location().send().await?;
    /// let odometer = batch.odometer()?;          // its own Result: one failure never fails the others
    /// if let Ok(battery) = batch.battery() { println!("{}", battery.data.percent_remaining); }
    /// # let _ = odometer; Ok(()) }
    /// ```
    pub fn batch(&self) -> BatchBuilder<'_> {
        BatchBuilder {
            vehicle: self,
            reads: Vec::new(),
        }
    }
}

/// Chooses the reads of a batch; see [`Vehicle::batch`].
///
/// Legacy v2.0: the v3 equivalent is [`VehicleV3::signals`](crate::v3::VehicleV3::signals).
///
/// ```no_run
/// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
/// let batch = vehicle.batch().vin().fuel().tire_pressure().send().await?;
/// println!("{:?}", batch.vin()?.data);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "call .send()"]
pub struct BatchBuilder<'v> {
    vehicle: &'v Vehicle,
    reads: Vec<&'static Operation>,
}

macro_rules! batch_paths {
    ($($(#[$doc:meta])* $name:ident => $op:ident, $ty:ty;)*) => {
        impl BatchBuilder<'_> {
            $(
                $(#[$doc])*
                ///
                /// ```no_run
                /// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
                #[doc = concat!("let batch = vehicle.batch().", stringify!($name), "().send().await?;")]
                #[doc = concat!("let r = batch.", stringify!($name), "()?;")]
                /// println!("{:?}", r.data);
                /// # Ok(()) }
                /// ```
                pub fn $name(mut self) -> Self {
                    const OP: &Operation = <ops::$op as Endpoint>::OP;
                    if !self.reads.iter().any(|op| op.id == OP.id) {
                        self.reads.push(OP);
                    }
                    self
                }
            )*
        }

        impl BatchResponse {
            $(
                $(#[$doc])*
                ///
                /// ```no_run
                /// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
                #[doc = concat!("let batch = vehicle.batch().", stringify!($name), "().send().await?;")]
                #[doc = concat!("let r = batch.", stringify!($name), "()?;")]
                /// println!("{:?}", r.data);
                /// # Ok(()) }
                /// ```
                ///
                /// # Errors
                ///
                /// This item's own error (API error with its status and body), or
                /// [`Error::InvalidInput`] if it was not requested.
                pub fn $name(&self) -> Result<Response<$ty>, Error> {
                    // The read's response type must be `$ty` (a compile error if not).
                    self.item::<ops::$op>()
                }
            )*
        }
    };
}

batch_paths! {
    /// Attributes (`/`).
    attributes => GetVehicleAttributes, types::VehicleAttributes;
    /// VIN.
    vin => GetVin, types::Vin;
    /// Odometer.
    odometer => GetOdometer, types::Odometer;
    /// Location.
    location => GetLocation, types::Location;
    /// Fuel tank.
    fuel => GetFuel, types::FuelTank;
    /// Battery.
    battery => GetBattery, types::Battery;
    /// Battery capacity.
    battery_capacity => GetBatteryCapacity, types::BatteryCapacity;
    /// Nominal capacity.
    nominal_capacity => GetNominalCapacity, types::NominalCapacity;
    /// Charge status.
    charge => GetChargeStatus, types::ChargeStatus;
    /// Charge limit.
    charge_limit => GetChargeLimit, types::ChargeLimit;
    /// Engine oil.
    engine_oil => GetEngineOil, types::EngineOil;
    /// Tire pressure.
    tire_pressure => GetTirePressure, types::TirePressure;
    /// Lock status.
    lock_status => GetLockStatus, types::LockStatus;
    /// Diagnostic system status.
    diagnostic_system_status => GetDiagnosticSystemStatus, types::DiagnosticSystemStatus;
    /// Diagnostic trouble codes.
    diagnostic_trouble_codes => GetDiagnosticTroubleCodes, types::DiagnosticTroubleCodes;
}

impl BatchBuilder<'_> {
    /// Sends the batch (one request).
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
    /// let batch = vehicle.batch().odometer().charge().send().await?;
    /// println!("batch request {:?}", batch.meta.request_id);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an empty batch; errors of the batch request itself (each
    /// item's own error is in the [`BatchResponse`]).
    pub async fn send(self) -> Result<BatchResponse, Error> {
        if self.reads.is_empty() {
            return Err(Error::invalid("batch", "no read was chosen"));
        }
        let body = types::BatchRequest {
            requests: self
                .reads
                .iter()
                .map(|op| types::BatchRequestItem {
                    path: batch_path(op).to_owned(),
                })
                .collect(),
        };
        let v = self.vehicle;
        let call = Call::new(
            &ops::BATCH,
            v.session.client().origins(),
            &ops::Batch::path(&v.id),
            &[],
        )
        .unit_system(Some(v.units))
        // The platform bills each item.
        .cost(u32::try_from(self.reads.len()).unwrap_or(u32::MAX))
        .json(Some(&body))?;
        let r: Response<types::BatchResponse> = v
            .session
            .client()
            .send(call, Authorizer::User(&v.session))
            .await?;
        Ok(BatchResponse {
            items: r.data.responses,
            meta: r.meta,
        })
    }
}

/// The answer of a batch: one typed `Result` per requested read.
///
/// Legacy v2.0: the v3 equivalent is [`VehicleV3::signals`](crate::v3::VehicleV3::signals), one
/// [`Signal`](crate::v3::Signal) with its own status per signal.
///
/// ```no_run
/// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
/// let batch = vehicle.batch().odometer().charge().send().await?;
/// match batch.charge() {
///     Ok(charge) => println!("{:?}", charge.data),
///     Err(e) => println!("charge failed: {e}"),
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct BatchResponse {
    pub(crate) items: Vec<types::BatchResponseItem>,
    /// The batch request's own meta (its `sc-request-id`).
    pub meta: crate::request::Meta,
}

impl BatchResponse {
    /// The raw items.
    ///
    /// ```no_run
    /// # async fn demo(vehicle: smartcar::v2::Vehicle) -> Result<(), smartcar::Error> {
    /// let batch = vehicle.batch().odometer().location().send().await?;
    /// for item in batch.items() {
    ///     println!("{} -> {}", item.path, item.code);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn items(&self) -> &[types::BatchResponseItem] {
        &self.items
    }

    /// The item of the read `op`, through the response rules of a single call
    /// ([`RawResponse::checked`], [`RawResponse::decode`]).
    fn item<E: Endpoint>(&self) -> Result<Response<E::Response>, Error>
    where
        E::Response: DeserializeOwned,
    {
        let op = E::OP;
        let path = batch_path(op);
        let item = self
            .items
            .iter()
            .find(|i| i.path == path || i.path.trim_end_matches('/') == path.trim_end_matches('/'))
            .ok_or_else(|| Error::invalid("batch item", format!("`{path}` was not requested")))?;
        let mut headers = http::HeaderMap::new();
        for (k, v) in &item.headers {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(k.as_bytes()),
                http::HeaderValue::from_str(v),
            ) {
                headers.insert(name, value);
            }
        }
        let body = serde_json::to_vec(item.body.as_ref().unwrap_or(&serde_json::Value::Null))
            .unwrap_or_default();
        let status = u16::try_from(item.code).unwrap_or(500);
        // No credential of the batch is in an item: nothing to redact.
        let raw = RawResponse::checked(status, headers, body.into(), "").map_err(|e| match e {
            Error::Api(mut api) => {
                if api.request_id.is_none() {
                    api.request_id = self.meta.request_id.clone();
                }
                Error::Api(api)
            }
            other => other,
        })?;
        let mut r = raw
            .decode(&format_args!("batch item {path}"))
            .map_err(|e| match e {
                Error::Decode(mut d) => {
                    if d.request_id.is_none() {
                        d.request_id = self.meta.request_id.clone();
                    }
                    Error::Decode(d)
                }
                other => other,
            })?;
        if r.meta.request_id.is_none() {
            r.meta.request_id = self.meta.request_id.clone();
        }
        Ok(r)
    }
}

/// The path of a v2.0 read inside a batch (`/odometer`; `/` for the attributes): the spec's
/// `x-batch` reads carry it; the batch builder offers no other read.
fn batch_path(op: &Operation) -> &'static str {
    op.batch_path.unwrap_or("/")
}
