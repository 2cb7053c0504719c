//! Smartcar Connect: the authorization URL, and the redirect back to the application.

use std::borrow::Cow;
use std::fmt;

use oauth2::{AuthUrl, ClientId, CsrfToken, RedirectUrl, Scope};
use subtle::ConstantTimeEq;
use url::Url;

use crate::client::Client;
use crate::config::Mode;
use crate::error::ConnectError;
use crate::vin::Vin;
use crate::{Error, Permission};

/// A scope of the Connect URL: a permission, optionally marked required (the user cannot
/// deselect it: `required:read_odometer`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ScopeRequest {
    permission: Permission,
    required: bool,
}

impl ScopeRequest {
    /// An optional permission.
    pub fn optional(permission: impl Into<Permission>) -> Self {
        ScopeRequest {
            permission: permission.into(),
            required: false,
        }
    }

    /// A permission the user cannot deselect.
    pub fn required(permission: impl Into<Permission>) -> Self {
        ScopeRequest {
            permission: permission.into(),
            required: true,
        }
    }

    fn to_scope(&self) -> String {
        if self.required {
            format!("required:{}", self.permission)
        } else {
            self.permission.to_string()
        }
    }
}

impl From<Permission> for ScopeRequest {
    fn from(p: Permission) -> Self {
        ScopeRequest::optional(p)
    }
}

/// The `state` of one Connect login: store it with the user's session and give it back to
/// [`Client::handle_redirect`]. `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct State(String);

impl State {
    /// Wraps a state value (e.g. read back from the session).
    pub fn new(value: impl Into<String>) -> Self {
        State(value.into())
    }

    /// The value (for storing in the session).
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("State([redacted])")
    }
}

/// A Connect URL and the `state` it carries. `Debug` shows the URL with its `state`
/// parameter masked (a logged state would let whoever reads the log finish the login).
#[derive(Clone)]
pub struct AuthorizationUrl {
    /// Where to send the user's browser.
    pub url: Url,
    /// What the redirect must echo back.
    pub state: State,
}

impl fmt::Debug for AuthorizationUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.url.clone();
        let pairs: Vec<(String, String)> = self
            .url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "state" {
                    "[redacted]".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        if !pairs.is_empty() {
            shown.query_pairs_mut().clear().extend_pairs(pairs);
        }
        let mut text = shown.to_string();
        // Belt and braces: the raw value, wherever else it might appear.
        let state = self.state.secret();
        if state.len() >= 4 {
            text = crate::error::redact(&text, &[state]);
        }
        f.debug_struct("AuthorizationUrl")
            .field("url", &text)
            .field("state", &self.state)
            .finish()
    }
}

/// Builds a Smartcar Connect URL. Start it with [`Client::authorize`].
///
/// Every option of Connect is covered: scopes (typed or raw, optional or required), state
/// (random by default), forced approval prompt, mode, make bypass, single select (optionally by
/// VIN), flags, the developer's user id, the `external_id` echoed back and kept on the
/// connections, and a flow that ends on Smartcar's completion page
/// ([`hosted_completion`](Self::hosted_completion)).
///
/// ```
/// use smartcar::{Client, Permission};
/// use smartcar::config::Mode;
/// let client = Client::builder()
///     .client_id("8229df9f-91a0-4ff0-a1ae-a1f38ee24d07")
///     .redirect_uri("https://example.com/home")
///     .build()?;
/// let auth = client
///     .authorize()
///     .scope(Permission::ReadOdometer)
///     .required(Permission::ReadVehicleInfo)
///     .state("0facda3319")
///     .make("TESLA")
///     .single_select_vin("5YJSA1E14FF101307")
///     .flag("country", "DE")
///     .mode(Mode::Live)
///     .build()?;
/// assert!(auth.url.as_str().starts_with("https://connect.smartcar.com/oauth/authorize?response_type=code&client_id=8229df9f"));
/// assert_eq!(auth.state.secret(), "0facda3319");
/// # Ok::<(), smartcar::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "call .build() to get the URL"]
pub struct AuthorizeBuilder<'c> {
    client: &'c Client,
    scopes: Vec<String>,
    state: Option<String>,
    force_prompt: bool,
    mode: Option<Mode>,
    make: Option<String>,
    single_select: Option<bool>,
    single_select_vin: Option<String>,
    flags: Vec<(String, String)>,
    user: Option<String>,
    redirect_uri: Option<String>,
    external_id: Option<String>,
    hosted_completion: bool,
}

impl Client {
    /// Starts a Connect URL.
    pub fn authorize(&self) -> AuthorizeBuilder<'_> {
        AuthorizeBuilder {
            client: self,
            scopes: Vec::new(),
            state: None,
            force_prompt: false,
            mode: None,
            make: None,
            single_select: None,
            single_select_vin: None,
            flags: Vec::new(),
            user: None,
            redirect_uri: None,
            external_id: None,
            hosted_completion: false,
        }
    }
}

impl AuthorizeBuilder<'_> {
    /// Asks for a permission (optional for the user).
    pub fn scope(mut self, scope: impl Into<ScopeRequest>) -> Self {
        self.scopes.push(scope.into().to_scope());
        self
    }

    /// Asks for several permissions.
    pub fn scopes<S: Into<ScopeRequest>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes
            .extend(scopes.into_iter().map(|s| s.into().to_scope()));
        self
    }

    /// Asks for a permission the user cannot deselect.
    pub fn required(self, permission: impl Into<Permission>) -> Self {
        self.scope(ScopeRequest::required(permission))
    }

    /// Adds a scope string as is (for permissions this SDK does not know yet).
    pub fn raw_scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// Uses this `state` instead of a random one.
    pub fn state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }

    /// Shows the approval page even to a user who already approved (`approval_prompt=force`).
    pub fn force_prompt(mut self, force: bool) -> Self {
        self.force_prompt = force;
        self
    }

    /// Overrides the client's mode for this login.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Skips brand selection for this make (`make=TESLA`).
    pub fn make(mut self, make: impl Into<String>) -> Self {
        self.make = Some(make.into());
        self
    }

    /// Lets the user select only one vehicle.
    pub fn single_select(mut self, enabled: bool) -> Self {
        self.single_select = Some(enabled);
        self
    }

    /// Lets the user select only the vehicle with this VIN (implies single select; takes
    /// precedence over [`make`](Self::make)). The VIN is validated by [`build`](Self::build).
    pub fn single_select_vin(mut self, vin: impl Into<String>) -> Self {
        self.single_select_vin = Some(vin.into());
        self
    }

    /// Adds a feature flag (`flags=name:value name2:value2`).
    pub fn flag(mut self, name: impl Into<String>, value: impl ToString) -> Self {
        self.flags.push((name.into(), value.to_string()));
        self
    }

    /// The developer's own id of the vehicle owner (Dashboard analytics).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Overrides the client's redirect URI for this login.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }

    /// Your own identifier of the vehicle owner (`external_id`): Connect echoes it on the
    /// redirect ([`RedirectExtras::external_id`]) and keeps it on the connections it creates, so
    /// the connections API can find them by it. The literal `"null"` clears a stored one.
    /// Validated by [`build`](Self::build): 1 to 255 characters, no control characters.
    ///
    /// ```
    /// # let client = smartcar::Client::builder().client_id("id").redirect_uri("https://app.example/cb").build()?;
    /// let auth = client.authorize().external_id("customer-4711").build()?;
    /// assert!(auth.url.as_str().contains("external_id=customer-4711"));
    /// # Ok::<(), smartcar::Error>(())
    /// ```
    pub fn external_id(mut self, external_id: impl Into<String>) -> Self {
        self.external_id = Some(external_id.into());
        self
    }

    /// Ends the flow on Smartcar's own completion page instead of redirecting back
    /// (`response_type=none`, no `redirect_uri`): for a Connect link sent by e-mail or text
    /// message. No code and no user id come back; learn of the new connections from
    /// [`ApplicationSession::connections`](crate::ApplicationSession::connections) (find them
    /// by [`external_id`](Self::external_id)) or from webhooks.
    ///
    /// ```
    /// # let client = smartcar::Client::builder().client_id("id").build()?;
    /// let link = client.authorize().external_id("customer-4711").hosted_completion().build()?;
    /// assert!(link.url.as_str().contains("response_type=none"));
    /// assert!(!link.url.as_str().contains("redirect_uri"));
    /// # Ok::<(), smartcar::Error>(())
    /// ```
    pub fn hosted_completion(mut self) -> Self {
        self.hosted_completion = true;
        self
    }

    /// The URL and its state.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an invalid VIN, scope or flag; [`Error::Configuration`] when
    /// there is no redirect URI or the Connect origin is unusable.
    pub fn build(self) -> Result<AuthorizationUrl, Error> {
        let client = self.client;
        if let Some(id) = &self.external_id {
            check_external_id(id)?;
        }
        let redirect = match &self.redirect_uri {
            // oauth2 needs some redirect URI to build the URL; it is removed below.
            None if self.hosted_completion => Url::parse("https://unused.invalid/")
                .map_err(|e| Error::config("redirect_uri", e.to_string()))?,
            Some(uri) => crate::checks::check_redirect_uri(uri)
                .map_err(|e| Error::invalid("redirect URI", e))?,
            None => client.redirect_uri().cloned().ok_or_else(|| {
                Error::config(
                    "redirect_uri",
                    "the Connect flow needs a redirect URI (ClientBuilder::redirect_uri or SMARTCAR_REDIRECT_URI)",
                )
            })?,
        };
        for scope in &self.scopes {
            let name = scope.strip_prefix("required:").unwrap_or(scope);
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(Error::invalid(
                    "scope",
                    format!("`{scope}` is not a permission name (lower case, digits, `_`)"),
                ));
            }
        }
        for (name, value) in &self.flags {
            if name.is_empty() || name.contains([' ', ':']) || value.contains(' ') {
                return Err(Error::invalid(
                    "flag",
                    format!(
                        "`{name}:{value}`: names and values may not contain spaces (nor names `:`)"
                    ),
                ));
            }
        }
        let vin = self
            .single_select_vin
            .as_deref()
            .map(Vin::parse)
            .transpose()?;

        let auth_url = AuthUrl::from_url(client.origins().authorize_url());
        let oauth = oauth2::basic::BasicClient::new(ClientId::new(client.client_id().to_owned()))
            .set_auth_uri(auth_url)
            .set_redirect_uri(RedirectUrl::from_url(redirect));
        let state = self.state.clone();
        let mut request = oauth
            .authorize_url(move || match state {
                Some(s) => CsrfToken::new(s),
                None => CsrfToken::new_random(),
            })
            .add_scopes(self.scopes.iter().map(|s| Scope::new(s.clone())))
            .add_extra_param(
                "approval_prompt",
                if self.force_prompt { "force" } else { "auto" },
            )
            .add_extra_param("mode", self.mode.unwrap_or(client.mode()).as_str());
        if let Some(make) = &self.make {
            request = request.add_extra_param("make", make.clone());
        }
        match (&vin, self.single_select) {
            (Some(vin), _) => {
                request = request
                    .add_extra_param("single_select", "true")
                    .add_extra_param("single_select_vin", vin.as_str().to_owned());
            }
            (None, Some(enabled)) => {
                request = request.add_extra_param("single_select", enabled.to_string());
            }
            (None, None) => {}
        }
        if !self.flags.is_empty() {
            let flags: Vec<String> = self.flags.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            request = request.add_extra_param("flags", flags.join(" "));
        }
        if let Some(user) = &self.user {
            request = request.add_extra_param("user", Cow::Owned(user.clone()));
        }
        if let Some(id) = &self.external_id {
            request = request.add_extra_param("external_id", Cow::Owned(id.clone()));
        }
        let (mut url, state) = request.url();
        if self.hosted_completion {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, _)| self.redirect_uri.is_some() || k != "redirect_uri")
                .map(|(k, v)| {
                    let v = if k == "response_type" {
                        "none".into()
                    } else {
                        v
                    };
                    (k.into_owned(), v.into_owned())
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        Ok(AuthorizationUrl {
            url,
            state: State(state.secret().clone()),
        })
    }
}

impl Client {
    /// The Connect re-authentication URL for a vehicle whose connected-services login changed
    /// (`CONNECTED_SERVICES_ACCOUNT` / `AUTHENTICATION_FAILED`; the error's
    /// [`ApiError::resolution_url`](crate::error::ApiError::resolution_url) is a partial form of it).
    /// On success Connect redirects with `vehicle_id` ([`Redirect::VehicleId`]).
    ///
    /// ```
    /// # let client = smartcar::Client::builder().client_id("id").redirect_uri("https://app.example/cb").build()?;
    /// let auth = client.reauthenticate_url("36ab27d0-fd9d-4455-823a-ce30af709ffc", None)?;
    /// assert!(auth.url.as_str().contains("response_type=vehicle_id"));
    /// # Ok::<(), smartcar::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed vehicle id; [`Error::Configuration`] without a
    /// redirect URI.
    pub fn reauthenticate_url(
        &self,
        vehicle_id: &str,
        state: Option<&str>,
    ) -> Result<AuthorizationUrl, Error> {
        crate::checks::check_id("vehicle id", vehicle_id)?;
        let redirect = self.redirect_uri().cloned().ok_or_else(|| {
            Error::config("redirect_uri", "re-authentication needs a redirect URI")
        })?;
        let state = match state {
            Some(s) => s.to_owned(),
            None => CsrfToken::new_random().secret().clone(),
        };
        let mut url = self.origins().url(&smartcar_api::ops::REAUTHENTICATE);
        url.query_pairs_mut()
            .append_pair("response_type", "vehicle_id")
            .append_pair("client_id", self.client_id())
            .append_pair("vehicle_id", vehicle_id)
            .append_pair("redirect_uri", redirect.as_str())
            .append_pair("state", &state);
        Ok(AuthorizationUrl {
            url,
            state: State(state),
        })
    }
}

/// The longest `external_id` sent (the simulator's bound; Smartcar's own rules are
/// unverified).
const EXTERNAL_ID_MAX: usize = 255;

fn check_external_id(id: &str) -> Result<(), Error> {
    if id.is_empty() || id.chars().count() > EXTERNAL_ID_MAX || id.chars().any(char::is_control) {
        return Err(Error::invalid(
            "external_id",
            format!("use 1 to {EXTERNAL_ID_MAX} printable characters"),
        ));
    }
    Ok(())
}

/// What else Connect's redirect may carry, next to the [`Redirect`] outcome. Read it with
/// [`RedirectExtras::parse`] **after** [`Client::handle_redirect`] accepted the redirect (its
/// values are only as trustworthy as the rest of the URL).
///
/// ```
/// use smartcar::connect::RedirectExtras;
///
/// let query = "?user_id=u-1&state=s-1&external_id=customer-4711";
/// let extras = RedirectExtras::parse(query);
/// assert_eq!(extras.external_id.as_deref(), Some("customer-4711"));
/// assert!(extras.virtual_key_url.is_none());
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedirectExtras {
    /// The `external_id` the Connect URL carried ([`AuthorizeBuilder::external_id`]).
    pub external_id: Option<String>,
    /// Where to send the user to add the virtual key some makes (Tesla) need before commands
    /// work; only an `http(s)` URL is kept. Whether Connect sends it is unverified.
    pub virtual_key_url: Option<Url>,
}

impl RedirectExtras {
    /// Reads the extras of a redirect query string (or whole URL); absent or empty values are
    /// `None`.
    pub fn parse(redirect: &str) -> RedirectExtras {
        let query = redirect.split_once('?').map_or(redirect, |(_, q)| q);
        let query = query.split('#').next().unwrap_or("");
        let get = |name: &str| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.into_owned())
        };
        RedirectExtras {
            external_id: get("external_id"),
            virtual_key_url: get("virtual_key_url")
                .and_then(|u| Url::parse(&u).ok())
                .filter(|u| matches!(u.scheme(), "https" | "http")),
        }
    }
}

/// What Smartcar Connect sent back to the redirect URI, once the state is verified.
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq)]
pub enum Redirect {
    /// Authorization-code flow: exchange the code for tokens ([`Client::exchange_code`]).
    Code(AuthorizationCode),
    /// Application-token flow (v3): the Smartcar user id to send as `sc-user-id`.
    ///
    /// An identifier, **not a credential**: the checked `state` proves which browser started
    /// the login, not which user finished it, and anyone can put another user's id into the
    /// redirect URL. Before signing the browser in as this user, check with
    /// [`ApplicationSession::verify_user_id`](crate::ApplicationSession::verify_user_id) that
    /// the user connected a vehicle to your application during this login (a connection
    /// created at or after the login's start, minus a small skew).
    UserId(String),
    /// Re-authentication succeeded for this vehicle; existing tokens keep working.
    VehicleId(String),
}

impl fmt::Debug for Redirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Redirect::Code(_) => f.write_str("Redirect::Code([redacted])"),
            Redirect::UserId(id) => f.debug_tuple("Redirect::UserId").field(id).finish(),
            Redirect::VehicleId(id) => f.debug_tuple("Redirect::VehicleId").field(id).finish(),
        }
    }
}

/// A single-use authorization code (valid 10 minutes). `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizationCode(String);

impl AuthorizationCode {
    /// Wraps a code.
    pub fn new(code: impl Into<String>) -> Self {
        AuthorizationCode(code.into())
    }

    /// The code.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AuthorizationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthorizationCode([redacted])")
    }
}

impl Client {
    /// Reads the query string (or the whole URL) Connect redirected to, checks its `state`
    /// against the one issued, in constant time, and returns what it carries.
    ///
    /// ```
    /// # let client = smartcar::Client::builder().client_id("id").build()?;
    /// let expected = smartcar::connect::State::new("s-1");
    /// let got = client.handle_redirect("https://app.example/cb?code=abc&state=s-1", &expected)?;
    /// assert!(matches!(got, smartcar::Redirect::Code(_)));
    /// let err = client.handle_redirect("?error=access_denied&error_description=User+denied&state=s-1", &expected);
    /// assert_eq!(err.unwrap_err().kind(), smartcar::ErrorKind::Connect);
    /// let forged = client.handle_redirect("?code=abc&state=other", &expected);
    /// assert_eq!(forged.unwrap_err().kind(), smartcar::ErrorKind::StateMismatch);
    /// # Ok::<(), smartcar::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::StateMismatch`] when the state is missing or different (checked before
    /// anything else); [`Error::Connect`] for Connect's error redirects; [`Error::InvalidInput`]
    /// when the query carries none of `code`, `user_id`, `vehicle_id`, `error`.
    pub fn handle_redirect(
        &self,
        redirect: &str,
        expected_state: &State,
    ) -> Result<Redirect, Error> {
        let query = match redirect.split_once('?') {
            Some((_, q)) => q,
            None => redirect,
        };
        let query = query.split('#').next().unwrap_or("");
        let get = |name: &str| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let state = get("state").unwrap_or_default();
        let expected = expected_state.secret().as_bytes();
        if !(state.len() == expected.len() && bool::from(state.as_bytes().ct_eq(expected))) {
            return Err(Error::StateMismatch);
        }
        if let Some(error) = get("error") {
            return Err(Error::Connect(Box::new(ConnectError {
                error: error.as_str().into(),
                description: get("error_description"),
                vin: get("vin"),
                make: get("make"),
                model: get("model"),
                year: get("year"),
                status_code: get("status_code"),
                error_message: get("error_message"),
            })));
        }
        if let Some(code) = get("code").filter(|c| !c.is_empty()) {
            return Ok(Redirect::Code(AuthorizationCode(code)));
        }
        if let Some(user) = get("user_id").filter(|c| !c.is_empty()) {
            return Ok(Redirect::UserId(user));
        }
        if let Some(vehicle) = get("vehicle_id").filter(|c| !c.is_empty()) {
            return Ok(Redirect::VehicleId(vehicle));
        }
        Err(Error::invalid(
            "Connect redirect",
            "it carries none of code, user_id, vehicle_id or error",
        ))
    }
}

#[cfg(test)]
mod debug_tests {
    #[test]
    fn authorization_url_debug_masks_the_state() {
        let client = crate::Client::builder()
            .client_id("client-id")
            .redirect_uri("https://app.example/callback")
            .build()
            .unwrap();
        let auth = client
            .authorize()
            .state("state-SECRET-9f3a1c")
            .build()
            .unwrap();
        assert!(auth.url.as_str().contains("state=state-SECRET-9f3a1c"));
        let shown = format!("{auth:?} {auth:#?}");
        assert!(!shown.contains("state-SECRET"), "{shown}");
        assert!(shown.contains("state=%5Bredacted%5D"), "{shown}");
        assert!(
            shown.contains("client_id=client-id"),
            "the rest is shown: {shown}"
        );
    }
}
