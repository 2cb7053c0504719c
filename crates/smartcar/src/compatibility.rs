//! Compatibility: whether a VIN supports a set of permissions (client id + secret, Basic).

use http::Method;
use smartcar_api::types;

use crate::client::Client;
use crate::request::{Call, Credential, Idempotency, Response};
use crate::vin::Vin;
use crate::{Error, Permission};

impl Client {
    /// Whether the vehicle with `vin` is compatible with `permissions`, with the capability
    /// behind each permission (`GET /v2.0/compatibility`; `country` is ISO 3166-1 alpha-2,
    /// default `US`).
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
        let secret = self.client_secret()?;
        let call = Call::new(
            Method::GET,
            &self.origins().api,
            "/v2.0/compatibility",
            "/v2.0/compatibility",
            &[
                ("vin", vin.as_str().to_owned()),
                ("scope", scope.join(" ")),
                ("country", country.to_ascii_uppercase()),
            ],
            Credential::Basic(self.client_id().to_owned(), secret.secret().to_owned()),
            Idempotency::Idempotent,
        );
        self.fetch(call).await
    }
}
