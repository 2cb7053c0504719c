//! The user-level v2.0 API: the user, their vehicles, and one typed method per vehicle endpoint.

use http::{HeaderMap, Method};
use serde::Serialize;
use serde::de::DeserializeOwned;
use smartcar_api::types;

use crate::Error;
use crate::config::{UnitSystem, join};
use crate::request::{Call, Credential, Idempotency, Response, header};
use crate::session::Session;

impl Session {
    /// The Smartcar user id behind this session's token (`GET /v2.0/user`).
    ///
    /// # Errors
    ///
    /// API, transport, timeout, decode and token errors.
    pub async fn user(&self) -> Result<Response<types::User>, Error> {
        self.send(
            Method::GET,
            "/v2.0/user",
            "/v2.0/user",
            &[],
            None::<&()>,
            Idempotency::Idempotent,
            None,
        )
        .await
    }

    /// One page of the user's vehicle ids (`GET /v2.0/vehicles`; `limit` at most 50).
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
        self.send(
            Method::GET,
            "/v2.0/vehicles",
            "/v2.0/vehicles",
            &query,
            None::<&()>,
            Idempotency::Idempotent,
            None,
        )
        .await
    }

    /// A handle on one of the user's vehicles. Cheap; no request is sent.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when `id` is empty or contains `/`, `?` or `#`.
    pub fn vehicle(&self, id: impl Into<String>) -> Result<Vehicle, Error> {
        let id = id.into();
        if id.is_empty() || id.contains(['/', '?', '#']) || id.trim() != id {
            return Err(Error::invalid(
                "vehicle id",
                format!("`{id}` is not a Smartcar vehicle id"),
            ));
        }
        Ok(Vehicle {
            session: self.clone(),
            units: self.client().unit_system(),
            id,
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn send<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        template: &'static str,
        query: &[(&str, String)],
        body: Option<&B>,
        idempotency: Idempotency,
        units: Option<UnitSystem>,
    ) -> Result<Response<T>, Error> {
        let token = self.access_token().await?;
        match self
            .send_with(
                &token,
                method.clone(),
                path,
                template,
                query,
                body,
                idempotency,
                units,
            )
            .await
        {
            // The platform refused a token we believed valid (revoked, or clocks disagree):
            // refresh once and try again. A 401 is answered before anything is executed, so
            // this is safe for commands too.
            Err(Error::Api(e)) if e.status == 401 => {
                let token = self.access_token_after_rejection(&token).await?;
                self.send_with(
                    &token,
                    method,
                    path,
                    template,
                    query,
                    body,
                    idempotency,
                    units,
                )
                .await
            }
            other => other,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_with<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        token: &crate::AccessToken,
        method: Method,
        path: &str,
        template: &'static str,
        query: &[(&str, String)],
        body: Option<&B>,
        idempotency: Idempotency,
        units: Option<UnitSystem>,
    ) -> Result<Response<T>, Error> {
        let mut url = join(&self.client().origins().api, path);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let mut headers = HeaderMap::new();
        if let Some(u) = units {
            header(&mut headers, "sc-unit-system", u.as_str())?;
        }
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| Error::invalid("request body", e.to_string()))?;
        let call = Call {
            method,
            url,
            template,
            headers,
            body,
            credential: Credential::Bearer(token.secret().to_owned()),
            idempotency,
        };
        let operation = call.operation();
        let raw = self.client().execute(call).await?;
        Ok(Response {
            data: raw.json(&operation)?,
            meta: crate::request::Meta::from_headers(&raw.headers),
        })
    }
}

fn check_path_id(what: &'static str, id: &str) -> Result<(), Error> {
    if id.is_empty() || id.contains(['/', '?', '#']) || id.trim() != id {
        return Err(Error::invalid(
            what,
            format!("`{id}` is not a valid {what}"),
        ));
    }
    Ok(())
}

/// One connected vehicle of a [`Session`]'s user: one method per v2.0 endpoint. Cheap to clone.
///
/// Each read returns the typed body with its [`Response::meta`] (data age, fetched at, unit
/// system, request id). Distances are kilometres (metric, the default) or miles (imperial),
/// volumes litres or US gallons, pressures kilopascals or psi; percentages are fractions 0–1.
#[derive(Clone, Debug)]
pub struct Vehicle {
    session: Session,
    id: String,
    units: UnitSystem,
}

macro_rules! read {
    ($(#[$doc:meta])* $name:ident, $suffix:literal, $template:literal, $ty:ty) => {
        $(#[$doc])*
        ///
        /// # Errors
        ///
        /// API errors (e.g. 403 `PERMISSION` without the permission, 409 `VEHICLE_STATE`, 501
        /// `COMPATIBILITY` when the vehicle cannot report it), transport, timeout, decode and
        /// token errors.
        pub async fn $name(&self) -> Result<Response<$ty>, Error> {
            self.get(concat!("/", $suffix), $template).await
        }
    };
}

impl Vehicle {
    /// The vehicle id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The unit system this handle asks for.
    pub fn unit_system(&self) -> UnitSystem {
        self.units
    }

    /// This handle, asking for `units` (the session's other handles are unaffected).
    pub fn with_unit_system(mut self, units: UnitSystem) -> Vehicle {
        self.units = units;
        self
    }

    /// The session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    fn path(&self, suffix: &str) -> String {
        let suffix = suffix.trim_end_matches('/');
        format!("/v2.0/vehicles/{}{}", self.id, suffix)
    }

    async fn get<T: DeserializeOwned>(
        &self,
        suffix: &str,
        template: &'static str,
    ) -> Result<Response<T>, Error> {
        self.session
            .send(
                Method::GET,
                &self.path(suffix),
                template,
                &[],
                None::<&()>,
                Idempotency::Idempotent,
                Some(self.units),
            )
            .await
    }

    async fn command<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        suffix: &str,
        template: &'static str,
        body: Option<&B>,
    ) -> Result<Response<T>, Error> {
        self.session
            .send(
                method,
                &self.path(suffix),
                template,
                &[],
                body,
                Idempotency::Command,
                None,
            )
            .await
    }

    read!(
        /// Make, model and year (`read_vehicle_info`).
        attributes, "", "/v2.0/vehicles/{vehicle_id}", types::VehicleAttributes
    );
    read!(
        /// The VIN (`read_vin`).
        vin, "vin", "/v2.0/vehicles/{vehicle_id}/vin", types::Vin
    );
    read!(
        /// The odometer (`read_odometer`): km or miles.
        odometer, "odometer", "/v2.0/vehicles/{vehicle_id}/odometer", types::Odometer
    );
    read!(
        /// The location in degrees (`read_location`).
        location, "location", "/v2.0/vehicles/{vehicle_id}/location", types::Location
    );
    read!(
        /// The fuel tank (`read_fuel`): litres or US gallons, fraction, km or miles.
        fuel, "fuel", "/v2.0/vehicles/{vehicle_id}/fuel", types::FuelTank
    );
    read!(
        /// The traction battery's charge (fraction) and range (`read_battery`).
        battery, "battery", "/v2.0/vehicles/{vehicle_id}/battery", types::Battery
    );
    read!(
        /// The traction battery's capacity in kWh (`read_battery`).
        battery_capacity, "battery/capacity", "/v2.0/vehicles/{vehicle_id}/battery/capacity", types::BatteryCapacity
    );
    read!(
        /// The nominal capacity and the candidates (`read_battery`).
        nominal_capacity, "battery/nominal_capacity", "/v2.0/vehicles/{vehicle_id}/battery/nominal_capacity", types::NominalCapacity
    );
    read!(
        /// Plugged in and charging state (`read_charge`).
        charge, "charge", "/v2.0/vehicles/{vehicle_id}/charge", types::ChargeStatus
    );
    read!(
        /// The charge limit, a fraction (`read_charge`).
        charge_limit, "charge/limit", "/v2.0/vehicles/{vehicle_id}/charge/limit", types::ChargeLimit
    );
    read!(
        /// Engine oil life, a fraction (`read_engine_oil`).
        engine_oil, "engine/oil", "/v2.0/vehicles/{vehicle_id}/engine/oil", types::EngineOil
    );
    read!(
        /// Tire pressures, kPa or psi (`read_tires`).
        tire_pressure, "tires/pressure", "/v2.0/vehicles/{vehicle_id}/tires/pressure", types::TirePressure
    );
    read!(
        /// Lock status, doors, windows, sunroof, storage, charging port (`read_security`).
        lock_status, "security", "/v2.0/vehicles/{vehicle_id}/security", types::LockStatus
    );
    read!(
        /// The health of the vehicle's systems (`read_diagnostics`).
        diagnostic_system_status, "diagnostics/system_status", "/v2.0/vehicles/{vehicle_id}/diagnostics/system_status", types::DiagnosticSystemStatus
    );
    read!(
        /// Active diagnostic trouble codes (`read_diagnostics`).
        diagnostic_trouble_codes, "diagnostics/dtcs", "/v2.0/vehicles/{vehicle_id}/diagnostics/dtcs", types::DiagnosticTroubleCodes
    );

    /// Locks the vehicle (`control_security`). Sent once: a command is only retried when the
    /// platform certainly did not execute it (429, or no connection).
    ///
    /// # Errors
    ///
    /// API errors (409 `VEHICLE_STATE`/`IN_MOTION`…), transport, timeout, token errors.
    pub async fn lock(&self) -> Result<Response<types::ActionResponse>, Error> {
        self.security(types::SecurityAction::Lock).await
    }

    /// Unlocks the vehicle (`control_security`).
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
        self.command(
            Method::POST,
            "/security",
            "/v2.0/vehicles/{vehicle_id}/security",
            Some(&body),
        )
        .await
    }

    /// Starts charging (`control_charge`).
    ///
    /// # Errors
    ///
    /// API errors (409 `CHARGING_PLUG_NOT_CONNECTED`…), transport, timeout, token errors.
    pub async fn start_charge(&self) -> Result<Response<types::ActionResponse>, Error> {
        self.charge_action(types::ChargeAction::Start).await
    }

    /// Stops charging (`control_charge`).
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
        self.command(
            Method::POST,
            "/charge",
            "/v2.0/vehicles/{vehicle_id}/charge",
            Some(&body),
        )
        .await
    }

    /// Sets the charge limit, a fraction from 0.5 to 1 (`control_charge`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] outside 0.5–1 (nothing is sent); API and transport errors.
    pub async fn set_charge_limit(
        &self,
        limit: f64,
    ) -> Result<Response<types::ActionResponse>, Error> {
        if !(0.5..=1.0).contains(&limit) {
            return Err(Error::invalid(
                "charge limit",
                format!("{limit} is outside 0.5–1 (a fraction, not a percentage)"),
            ));
        }
        let body = types::ChargeLimitRequest { limit };
        self.command(
            Method::POST,
            "/charge/limit",
            "/v2.0/vehicles/{vehicle_id}/charge/limit",
            Some(&body),
        )
        .await
    }

    /// Sends a destination to the navigation system (`control_navigation`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a latitude outside ±90 or a longitude outside ±180; API and
    /// transport errors.
    pub async fn send_destination(
        &self,
        latitude: f64,
        longitude: f64,
    ) -> Result<Response<types::ActionResponse>, Error> {
        if !(-90.0..=90.0).contains(&latitude) || !(-180.0..=180.0).contains(&longitude) {
            return Err(Error::invalid(
                "destination",
                format!("({latitude}, {longitude}) is not a latitude/longitude in degrees"),
            ));
        }
        let body = types::DestinationRequest {
            latitude,
            longitude,
        };
        self.command(
            Method::POST,
            "/navigation/destination",
            "/v2.0/vehicles/{vehicle_id}/navigation/destination",
            Some(&body),
        )
        .await
    }

    /// Subscribes this vehicle to a webhook (v2.0, with the vehicle's access token).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed webhook id; API (404 unknown webhook), transport,
    /// timeout and token errors.
    pub async fn subscribe(
        &self,
        webhook_id: &str,
    ) -> Result<Response<types::WebhookSubscription>, Error> {
        check_path_id("webhook id", webhook_id)?;
        self.command(
            Method::POST,
            &format!("/webhooks/{webhook_id}"),
            "/v2.0/vehicles/{vehicle_id}/webhooks/{webhook_id}",
            None::<&()>,
        )
        .await
    }

    /// Unsubscribes this vehicle from a webhook. The platform authenticates this call with the
    /// application management token (AMT), not the vehicle's token.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed webhook id; API, transport and timeout errors.
    pub async fn unsubscribe(
        &self,
        management_token: &str,
        webhook_id: &str,
    ) -> Result<Response<types::StatusResponse>, Error> {
        check_path_id("webhook id", webhook_id)?;
        let client = self.session.client();
        let url = join(
            &client.origins().api,
            &self.path(&format!("/webhooks/{webhook_id}")),
        );
        let call = Call {
            method: Method::DELETE,
            url,
            template: "/v2.0/vehicles/{vehicle_id}/webhooks/{webhook_id}",
            headers: HeaderMap::new(),
            body: None,
            credential: Credential::Bearer(management_token.to_owned()),
            idempotency: Idempotency::Idempotent,
        };
        let operation = call.operation();
        let raw = client.execute(call).await?;
        Ok(Response {
            data: raw.json(&operation)?,
            meta: crate::request::Meta::from_headers(&raw.headers),
        })
    }

    /// Revokes the application's access to this vehicle.
    ///
    /// # Errors
    ///
    /// API, transport, timeout and token errors.
    pub async fn disconnect(&self) -> Result<Response<types::StatusResponse>, Error> {
        self.command(
            Method::DELETE,
            "/application",
            "/v2.0/vehicles/{vehicle_id}/application",
            None::<&()>,
        )
        .await
    }
}
