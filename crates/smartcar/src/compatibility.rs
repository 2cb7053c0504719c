//! Compatibility: whether a VIN supports a set of permissions (v1.0 and v2.0, client id +
//! secret, Basic; deprecated by Smartcar), and the Compatibility API v3's compatible vehicle
//! models (public), cached as Smartcar asks.

use std::collections::HashMap;
use std::sync::Arc;

use smartcar_api::op::Operation;
use smartcar_api::open_enums::PowertrainType;
use smartcar_api::{ops, types};

use crate::client::{Client, CompatibleCached as Cached};
use crate::request::{Call, Response};
use crate::send::Authorizer;
use crate::vin::Vin;
use crate::{Error, Permission};

impl Client {
    /// Whether the vehicle with `vin` is compatible with `permissions`, with the capability
    /// behind each permission (`GET /v2.0/compatibility`; `country` is ISO 3166-1 alpha-2,
    /// default `US`).
    ///
    /// ```no_run
    /// # async fn demo(client: smartcar::Client) -> Result<(), smartcar::Error> {
    /// use smartcar::Permission;
    ///
    /// let r = client
    ///     .compatibility("5YJSA1E29LF000000", &[Permission::ReadOdometer, Permission::ControlSecurity], Some("US"))
    ///     .await?;
    /// println!("{:?}", r.data);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed VIN, no permission or a bad country code (nothing
    /// is sent); [`Error::Configuration`] without a client secret; API and transport errors.
    pub async fn compatibility(
        &self,
        vin: &str,
        permissions: &[Permission],
        country: Option<&str>,
    ) -> Result<Response<types::CompatibilityV2>, Error> {
        let call = self.compatibility_call(&ops::GET_COMPATIBILITY, vin, permissions, country)?;
        self.send(call, Authorizer::ClientBasic).await
    }

    /// The v1.0 form of the check: whether the vehicle is compatible, as a bare boolean
    /// (`GET /v1.0/compatibility`; errors come in the v1.0 body shape, read into [`Error::Api`]).
    ///
    /// ```no_run
    /// # async fn demo(client: smartcar::Client) -> Result<(), smartcar::Error> {
    /// let r = client
    ///     .compatibility_v1("5YJSA1E29LF000000", &[smartcar::Permission::ReadOdometer], None)
    ///     .await?;
    /// println!("{:?}", r.data);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`compatibility`](Self::compatibility).
    pub async fn compatibility_v1(
        &self,
        vin: &str,
        permissions: &[Permission],
        country: Option<&str>,
    ) -> Result<Response<types::CompatibilityV1>, Error> {
        let call =
            self.compatibility_call(&ops::GET_COMPATIBILITY_V1, vin, permissions, country)?;
        self.send(call, Authorizer::ClientBasic).await
    }

    /// Compatible makes, models and years of a region (`GET /v2.0/compatibility/matrix`),
    /// optionally restricted to a powertrain, makes and permissions.
    ///
    /// ```no_run
    /// # async fn demo(client: smartcar::Client) -> Result<(), smartcar::Error> {
    /// use smartcar::api::types::CompatibilityRegion;
    ///
    /// let matrix = client
    ///     .compatibility_matrix(CompatibilityRegion::Us, None, &["TESLA"], &[smartcar::Permission::ReadBattery])
    ///     .await?;
    /// println!("{:?}", matrix.data);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] without a client secret; API and transport errors.
    pub async fn compatibility_matrix(
        &self,
        region: types::CompatibilityRegion,
        powertrain: Option<smartcar_api::open_enums::PowertrainType>,
        makes: &[&str],
        permissions: &[Permission],
    ) -> Result<Response<types::CompatibilityMatrix>, Error> {
        let mut query = vec![("region", region.to_string())];
        if let Some(p) = powertrain {
            query.push(("type", p.to_string()));
        }
        if !makes.is_empty() {
            query.push(("make", makes.join(" ")));
        }
        if !permissions.is_empty() {
            let scope: Vec<String> = permissions.iter().map(ToString::to_string).collect();
            query.push(("scope", scope.join(" ")));
        }
        let call = Call::new(
            &ops::GET_COMPATIBILITY_MATRIX,
            self.origins(),
            &ops::GetCompatibilityMatrix::path(),
            &query,
        );
        self.send(call, Authorizer::ClientBasic).await
    }

    fn compatibility_call(
        &self,
        op: &'static Operation,
        vin: &str,
        permissions: &[Permission],
        country: Option<&str>,
    ) -> Result<Call, Error> {
        let vin = Vin::parse(vin)?;
        if permissions.is_empty() {
            return Err(Error::invalid("permissions", "at least one is needed"));
        }
        let country = country.unwrap_or("US");
        if country.len() != 2 || !country.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(Error::invalid(
                "country",
                format!("`{country}` is not an ISO 3166-1 alpha-2 code"),
            ));
        }
        let scope: Vec<String> = permissions.iter().map(ToString::to_string).collect();
        // Checked before anything else is built, as before the call is sent.
        self.client_secret()?;
        Ok(Call::new(
            op,
            self.origins(),
            op.path,
            &[
                ("vin", vin.as_str().to_owned()),
                ("scope", scope.join(" ")),
                ("country", country.to_ascii_uppercase()),
            ],
        ))
    }
}

/// How long an answer of the Compatibility API v3 is kept: 24 hours, the minimum Smartcar's
/// docs ask for ("cache the results for a minimum of 24 hours"; the data changes at most daily).
pub const COMPATIBLE_VEHICLES_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// At most this many filters' answers are kept (each a few hundred kB at most).
const COMPATIBLE_CACHE_ENTRIES: usize = 64;

/// The filters of [`Client::compatible_vehicles`]; `None` leaves one out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CompatibleVehiclesFilter {
    /// `US`, `CA` or `EUROPE` (`filter[region]`).
    pub region: Option<smartcar_api::open_enums::CompatibleRegion>,
    /// A make, any case (`filter[make]`): `TESLA`, `bmw`.
    pub make: Option<String>,
    /// `ICE`, `BEV`, `PHEV`… (`filter[powertrainType]`; hybrids are reported as `ICE`).
    pub powertrain: Option<PowertrainType>,
}

impl CompatibleVehiclesFilter {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if let Some(r) = &self.region {
            query.push(("filter[region]", r.to_string()));
        }
        if let Some(m) = &self.make {
            query.push(("filter[make]", m.trim().to_ascii_uppercase()));
        }
        if let Some(p) = &self.powertrain {
            query.push(("filter[powertrainType]", p.to_string()));
        }
        query
    }
}

impl Client {
    /// The vehicle models Smartcar supports, with the signals and commands each offers (the
    /// Compatibility API v3, `GET https://compatibility.api.smartcar.com/v3/compatible-vehicles`,
    /// public: no credential is sent). It replaces the deprecated per-VIN
    /// [`compatibility`](Self::compatibility) check: look the user's make and model up here.
    ///
    /// Answers are cached in the client for [`COMPATIBLE_VEHICLES_TTL`] (24 hours, as
    /// Smartcar's docs ask) per filter; a failed refresh does not drop the cached answer.
    /// [`clear_compatible_vehicles_cache`](Self::clear_compatible_vehicles_cache) forgets them.
    ///
    /// ```no_run
    /// # async fn demo(client: smartcar::Client) -> Result<(), smartcar::Error> {
    /// use smartcar::api::open_enums::CompatibleRegion;
    /// use smartcar::compatibility::CompatibleVehiclesFilter;
    ///
    /// let filter = CompatibleVehiclesFilter {
    ///     region: Some(CompatibleRegion::Us),
    ///     make: Some("Tesla".into()),
    ///     ..Default::default()
    /// };
    /// for model in client.compatible_vehicles(&filter).await?.iter() {
    ///     let a = &model.attributes;
    ///     println!("{} {} {}–{}: {} capabilities", a.make, a.model, a.years.start, a.years.end, a.capabilities.len());
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// API (400 for an unknown region), transport, timeout and decode errors.
    pub async fn compatible_vehicles(
        &self,
        filter: &CompatibleVehiclesFilter,
    ) -> Result<Arc<Vec<types::CompatibleVehicle>>, Error> {
        let query = filter.query();
        let now = self.inner.clock.now();
        let ttl =
            chrono::Duration::from_std(COMPATIBLE_VEHICLES_TTL).unwrap_or(chrono::Duration::MAX);
        if let Some(hit) = self
            .cache()
            .get(&query)
            .filter(|c| now - c.fetched_at < ttl && c.fetched_at <= now)
        {
            return Ok(hit.models.clone());
        }
        let call = Call::new(
            &ops::LIST_COMPATIBLE_VEHICLES,
            self.origins(),
            &ops::ListCompatibleVehicles::path(),
            &query,
        );
        let r: Response<types::CompatibleVehicleList> = self.send(call, Authorizer::Public).await?;
        let models = Arc::new(r.data.data);
        let mut cache = self.cache();
        if cache.len() >= COMPATIBLE_CACHE_ENTRIES && !cache.contains_key(&query) {
            // Drop the oldest answer.
            if let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, c)| c.fetched_at)
                .map(|(k, _)| k.clone())
            {
                cache.remove(&oldest);
            }
        }
        cache.insert(
            query,
            Cached {
                fetched_at: now,
                models: models.clone(),
            },
        );
        Ok(models)
    }

    /// Forgets every cached answer of [`compatible_vehicles`](Self::compatible_vehicles): the
    /// next call asks the platform again.
    pub fn clear_compatible_vehicles_cache(&self) {
        self.cache().clear();
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<(&'static str, String)>, Cached>> {
        // A panic while holding the lock cannot leave the map half-written: recover it.
        self.inner
            .compatible_vehicles
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
