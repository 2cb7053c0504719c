//! The one authenticated send path: every API call of the SDK goes through [`Client::send`]
//! with an [`Authorizer`].
//!
//! ```text
//! handle method ─▶ Call (from an ops::* operation: method, host, template, retry class)
//!               ─▶ Client::send(call, authorizer)
//!                    ├─ Authorizer::credential   (the one place credentials are built)
//!                    ├─ Client::execute          (request.rs: span per attempt, retries, backoff)
//!                    ├─ 401 → Authorizer::renewed → execute once more (user and app tokens)
//!                    └─ RawResponse::decode      (body + Meta)
//! ```

use serde::de::DeserializeOwned;
use smartcar_api::op::Security;

use crate::Error;
use crate::client::Client;
use crate::request::{Call, Credential, OperationName, RawResponse, Response};
use crate::session::{ApplicationSession, Session};

/// Who a call acts as, and how its credential is obtained (and renewed after a 401).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Authorizer<'a> {
    /// A user's session: the access token, refreshed ahead of expiry, and once more after a
    /// 401.
    User(&'a Session),
    /// The application token (client credentials), renewed once after a 401; with the user's
    /// id, sent as `sc-user-id`, when the call is user-scoped.
    App(&'a ApplicationSession, Option<&'a str>),
    /// The application management token: Basic `default:<token>` or Bearer, as the
    /// operation's security scheme says.
    Management(&'a str),
    /// The client id and secret (Basic).
    ClientBasic,
}

impl Authorizer<'_> {
    /// The credential of a first attempt.
    async fn credential(&self, client: &Client, security: Security) -> Result<Credential, Error> {
        Ok(match *self {
            Authorizer::User(session) => Credential::User(session.access_token().await?),
            Authorizer::App(app, _) => Credential::App(app.token().await?),
            Authorizer::Management(token) => match security {
                Security::ManagementBasic => {
                    Credential::Basic("default".to_owned(), token.to_owned())
                }
                _ => Credential::Bearer(token.to_owned()),
            },
            Authorizer::ClientBasic => {
                let secret = client.client_secret()?;
                Credential::Basic(client.client_id().to_owned(), secret.secret().to_owned())
            }
        })
    }

    /// A new credential after the platform refused `rejected` with a 401 (a token revoked, or
    /// clocks that disagree), or `None` when this kind of credential cannot be renewed.
    async fn renewed(&self, rejected: &Credential) -> Option<Result<Credential, Error>> {
        match (*self, rejected) {
            (Authorizer::User(session), Credential::User(token)) => Some(
                session
                    .access_token_after_rejection(token)
                    .await
                    .map(Credential::User),
            ),
            (Authorizer::App(app, _), _) => Some(app.renew().await.map(Credential::App)),
            _ => None,
        }
    }
}

impl Client {
    /// Sends `call` as `auth` and decodes its JSON body (an empty body decodes as `null`).
    ///
    /// A 401 is answered before anything is executed, so after one the credential is renewed
    /// (user and application tokens) and the call sent once more, commands included.
    pub(crate) async fn send<T: DeserializeOwned>(
        &self,
        call: Call,
        auth: Authorizer<'_>,
    ) -> Result<Response<T>, Error> {
        let (method, template) = (call.method.clone(), call.template);
        let raw = self.send_raw(call, auth).await?;
        raw.decode(&OperationName(&method, template))
    }

    /// As [`send`](Self::send), without decoding the body.
    pub(crate) async fn send_raw(
        &self,
        mut call: Call,
        auth: Authorizer<'_>,
    ) -> Result<RawResponse, Error> {
        if let Authorizer::App(_, user_id) = auth {
            call = call.header("sc-user-id", user_id)?;
        }
        let credential = auth.credential(self, call.security).await?;
        match self.execute(&call, &credential).await {
            Err(Error::Api(e)) if e.status == 401 => match auth.renewed(&credential).await {
                Some(renewed) => self.execute(&call, &renewed?).await,
                None => Err(Error::Api(e)),
            },
            other => other,
        }
    }
}
