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
///
/// No `Debug`: `Management` holds a secret.
#[derive(Clone, Copy)]
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
    /// Nothing: a public endpoint (the Compatibility API v3).
    Public,
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
            Authorizer::Public => Credential::None,
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use smartcar_api::op::{Host, Method};
    use smartcar_api::ops;

    use crate::request::Retry;
    use crate::store::BoxFuture;
    use crate::{Error, MemoryTokenStore, Origins, RetryPolicy, Session, TransportKind};

    #[test]
    fn the_retry_class_of_every_operation_comes_from_the_spec() {
        for op in ops::ALL {
            let retry = Retry::of(op);
            if op.command {
                assert_eq!(retry, Retry::Once, "{op} is a command");
            }
            if op.method == Method::Get {
                assert_eq!(retry, Retry::Idempotent, "{op} is a read");
            }
            if op.method == Method::Post && !op.idempotent {
                assert_eq!(retry, Retry::Once, "{op} is not idempotent");
            }
        }
        // The batch POST is declared idempotent: retried as a read.
        assert_eq!(Retry::of(&ops::BATCH), Retry::Idempotent);
    }

    #[test]
    fn every_host_maps_to_its_own_origin() {
        let production = Origins::production();
        for host in Host::ALL {
            assert_eq!(
                production.origin(host).as_str().trim_end_matches('/'),
                host.production(),
                "{host:?}"
            );
        }
    }

    #[test]
    fn one_backoff_schedule() {
        let policy = RetryPolicy::default();
        let budget = Duration::from_secs(30);
        let at = |attempt, retry_after, jitter| {
            policy.delay(attempt, Duration::ZERO, budget, retry_after, jitter)
        };
        assert_eq!(at(1, None, None), Some(Duration::from_millis(250)));
        assert_eq!(at(2, None, None), Some(Duration::from_millis(500)));
        assert_eq!(at(2, None, Some(0.5)), Some(Duration::from_millis(250)));
        // The server's retry-after wins over the schedule.
        let asked = Some(Duration::from_secs(2));
        assert_eq!(at(1, asked, Some(0.1)), asked);
        // Three attempts in all.
        assert_eq!(at(3, None, None), None);
        // Never past the budget.
        assert_eq!(
            policy.delay(1, Duration::from_secs(29), budget, asked, None),
            None
        );
        let capped = RetryPolicy::default()
            .max_attempts(30)
            .max_backoff(Duration::from_secs(1));
        assert_eq!(
            capped.delay(20, Duration::ZERO, budget, None, None),
            Some(Duration::from_secs(1))
        );
    }

    /// Records the waits instead of sleeping.
    #[derive(Clone, Default)]
    struct Waits(Arc<Mutex<Vec<Duration>>>);

    impl crate::Sleep for Waits {
        fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
            self.0.lock().unwrap().push(duration);
            Box::pin(async {})
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_typed_and_a_command_is_sent_again() {
        // A port nobody listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let waits = Waits::default();
        let client = crate::Client::builder()
            .client_id("id")
            .client_secret("secret")
            .origin(&format!("http://127.0.0.1:{port}"))
            .sleep(waits.clone())
            .build()
            .unwrap();
        let now = chrono::Utc::now();
        let tokens = crate::Tokens {
            access_token: crate::AccessToken::new("access-token-0123456789"),
            refresh_token: crate::RefreshToken::new("refresh-token-0123456789"),
            expires_at: now + chrono::Duration::hours(1),
            refresh_expires_at: now + chrono::Duration::days(60),
        };
        let session = Session::create(&client, Arc::new(MemoryTokenStore::new()), "k", tokens)
            .await
            .unwrap();
        let error = session.vehicle("v1").unwrap().lock().await.unwrap_err();
        assert_eq!(
            error.transport_kind(),
            Some(TransportKind::Connect),
            "{error}"
        );
        assert!(
            matches!(&error, Error::Transport { message, .. } if message == "could not connect")
        );
        assert!(
            error.to_string().contains(ops::CONTROL_SECURITY.path),
            "{error}"
        );
        // The lock never reached a server: sent again, three attempts in all.
        assert_eq!(waits.0.lock().unwrap().len(), 2);
    }
}
