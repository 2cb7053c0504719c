//! Compatibility: whether a VIN supports a set of permissions (client id + secret, Basic).

use smartcar_api::op::Operation;
use smartcar_api::{ops, types};

use crate::client::Client;
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
