//! Compatibility: whether a VIN supports a set of permissions (client id + secret, Basic).

use http::{HeaderMap, Method};
use smartcar_api::types;

use crate::client::Client;
use crate::config::join;
use crate::request::{Call, Credential, Idempotency, Meta, Response};
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
        let mut url = join(&self.origins().api, "/v2.0/compatibility");
        url.query_pairs_mut()
            .append_pair("vin", vin.as_str())
            .append_pair("scope", &scope.join(" "))
            .append_pair("country", &country.to_ascii_uppercase());
        let secret = self.client_secret()?;
        let call = Call {
            method: Method::GET,
            url,
            template: "/v2.0/compatibility",
            headers: HeaderMap::new(),
            body: None,
            credential: Credential::Basic(self.client_id().to_owned(), secret.secret().to_owned()),
            idempotency: Idempotency::Idempotent,
        };
        let operation = call.operation();
        let raw = self.execute(call).await?;
        Ok(Response {
            data: raw.json(&operation)?,
            meta: Meta::from_headers(&raw.headers),
        })
    }
}
