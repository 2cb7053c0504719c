//! The simulator's webhook controls (what the Dashboard and the platform's triggers do), over
//! the delivery logic of the crate's `webhooks` module.

use std::time::Duration;

use crate::model::{DeliveryOutcome, WebhookError, WebhookVersion};
use crate::server::Simulator;
use crate::webhooks;

impl Simulator {
    /// Registers a webhook for the application, as creating one in the Smartcar Dashboard does,
    /// and returns its id. It starts unverified: call [`Simulator::verify_webhook`] to send the
    /// verification challenge; until it is answered correctly the webhook gets no deliveries.
    ///
    /// `signals` are, for a [`WebhookVersion::V3`] webhook, the signal codes every
    /// `VEHICLE_STATE` event carries (`tractionbattery-stateofcharge`, …); for a
    /// [`WebhookVersion::V2`] webhook, the v2.0 paths its `scheduled` / `dynamic` events carry
    /// (`/odometer`, `/battery`, … any GET path under `/v2.0/vehicles/{id}`, as in a batch).
    ///
    /// ```
    /// use smartcar_sim::Simulator;
    /// use smartcar_sim::model::WebhookVersion;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let sim = Simulator::start().await?;
    /// let id = sim.add_webhook(
    ///     "http://127.0.0.1:9/webhook",
    ///     WebhookVersion::V3,
    ///     "Battery monitor",
    ///     &["tractionbattery-stateofcharge", "odometer-traveleddistance"],
    /// );
    /// assert!(sim.state().world().webhooks.contains_key(&id));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// [`Simulator::verify_webhook`]: crate::Simulator::verify_webhook
    pub fn add_webhook(
        &self,
        callback_url: &str,
        version: WebhookVersion,
        name: &str,
        signals: &[&str],
    ) -> String {
        webhooks::add_webhook(self.state(), callback_url, version, name, signals)
    }

    /// Deletes a webhook and its subscriptions; returns whether it existed.
    ///
    /// ```
    /// # use smartcar_sim::{Simulator, model::WebhookVersion};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let sim = Simulator::start().await?;
    /// let id = sim.add_webhook("http://127.0.0.1:9/", WebhookVersion::V2, "Old", &["/odometer"]);
    /// assert!(sim.remove_webhook(&id));
    /// assert!(!sim.remove_webhook(&id));
    /// # Ok(())
    /// # }
    /// ```
    pub fn remove_webhook(&self, webhook_id: &str) -> bool {
        webhooks::remove_webhook(self.state(), webhook_id)
    }

    /// Sets the waits before each retry of a failed delivery (the platform: 25 s, 50 s, 100 s,
    /// the default). An empty list: no retries.
    ///
    /// ```
    /// # use smartcar_sim::Simulator;
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let sim = Simulator::start().await?;
    /// sim.set_webhook_retry_delays(&[Duration::from_millis(10), Duration::from_millis(20)]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_webhook_retry_delays(&self, delays: &[Duration]) {
        webhooks::set_webhook_retry_delays(self.state(), delays)
    }

    /// The delivery log: every delivery sent (challenges included), oldest first, each with its
    /// attempts' exact bodies, signatures and results. Keeps the last 1 000.
    ///
    /// ```
    /// # use smartcar_sim::Simulator;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let sim = Simulator::start().await?;
    /// assert!(sim.webhook_deliveries().is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn webhook_deliveries(&self) -> Vec<crate::model::DeliveryOutcome> {
        webhooks::webhook_deliveries(self.state())
    }

    /// The `SC-Signature` the platform sends with `body`: lowercase hex HMAC-SHA256 of the
    /// bytes keyed with the application management token. (The answer to a verification
    /// challenge is the same function of the challenge.)
    ///
    /// ```
    /// # use smartcar_sim::Simulator;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let sim = Simulator::start().await?;
    /// let signature = sim.webhook_signature(br#"{"pizza":"pasta"}"#);
    /// assert_eq!(signature.len(), 64);
    /// # Ok(())
    /// # }
    /// ```
    pub fn webhook_signature(&self, body: &[u8]) -> String {
        webhooks::webhook_signature(self.state(), body)
    }

    /// Sends the verification challenge to a webhook (v3 `VERIFY` or v2.0 `verify` envelope)
    /// and returns whether the receiver answered it correctly (see the module documentation);
    /// the webhook is then verified, or unverified again. The attempt is in
    /// [`Simulator::webhook_deliveries`].
    ///
    /// ```no_run
    /// # use smartcar_sim::{Simulator, model::WebhookVersion};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sim = Simulator::start().await?;
    /// let id = sim.add_webhook("http://127.0.0.1:8000/webhooks", WebhookVersion::V3, "Fleet", &[]);
    /// if !sim.verify_webhook(&id).await? {
    ///     eprintln!("{:?}", sim.webhook_deliveries().last());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`WebhookError::UnknownWebhook`].
    ///
    /// [`Simulator::webhook_deliveries`]: crate::Simulator::webhook_deliveries
    pub async fn verify_webhook(&self, webhook_id: &str) -> Result<bool, WebhookError> {
        webhooks::verify_webhook(self.state(), webhook_id).await
    }

    /// Sends a v3 `VEHICLE_STATE` event about a subscribed vehicle to a verified v3 webhook:
    /// `data.signals` are the webhook's signal codes read from the vehicle's current state
    /// with the subscriber's permissions, `data.triggers` the given signal codes (none:
    /// `FIRST_DELIVERY`). Waits for the delivery (retries included) and returns its outcome.
    ///
    /// ```no_run
    /// # use smartcar_sim::Simulator;
    /// # async fn demo(sim: &Simulator, webhook_id: &str, vehicle_id: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// let outcome = sim
    ///     .trigger_vehicle_state(webhook_id, vehicle_id, &["tractionbattery-stateofcharge"])
    ///     .await?;
    /// assert!(outcome.delivered, "{:?}", outcome.attempts);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// Unknown webhook or vehicle, a v2.0 webhook, an unverified webhook, a vehicle not
    /// subscribed to it ([`WebhookError`]).
    pub async fn trigger_vehicle_state(
        &self,
        webhook_id: &str,
        vehicle_id: &str,
        triggers: &[&str],
    ) -> Result<DeliveryOutcome, WebhookError> {
        webhooks::trigger_vehicle_state(self.state(), webhook_id, vehicle_id, triggers).await
    }

    /// Sends a v3 `VEHICLE_ERROR` event about a subscribed vehicle to a verified v3 webhook:
    /// one error of the platform's catalogue (`error_type`, `code`: e.g. `"VEHICLE_STATE"`,
    /// `Some("ASLEEP")`; `"PERMISSION"`, `None`), in state `ERROR`, or `RESOLVED` when
    /// `resolved`, naming the affected `signals`.
    ///
    /// ```no_run
    /// # use smartcar_sim::Simulator;
    /// # async fn demo(sim: &Simulator, webhook_id: &str, vehicle_id: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// let outcome = sim
    ///     .trigger_vehicle_error(
    ///         webhook_id,
    ///         vehicle_id,
    ///         "COMPATIBILITY",
    ///         Some("VEHICLE_NOT_CAPABLE"),
    ///         false,
    ///         &["location-preciselocation"],
    ///     )
    ///     .await?;
    /// # let _ = outcome;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Simulator::trigger_vehicle_state`], and [`WebhookError::InvalidArgument`] for an
    /// error type and code the catalogue does not have.
    ///
    /// [`Simulator::trigger_vehicle_state`]: crate::Simulator::trigger_vehicle_state
    pub async fn trigger_vehicle_error(
        &self,
        webhook_id: &str,
        vehicle_id: &str,
        error_type: &str,
        code: Option<&str>,
        resolved: bool,
        signals: &[&str],
    ) -> Result<DeliveryOutcome, WebhookError> {
        webhooks::trigger_vehicle_error(
            self.state(),
            webhook_id,
            vehicle_id,
            error_type,
            code,
            resolved,
            signals,
        )
        .await
    }

    /// Sends a v2.0 `eventBased` event (`CHARGING_STARTED`, `CHARGING_STOPPED` or
    /// `CHARGING_COMPLETED`) about a subscribed vehicle to a verified v2.0 webhook.
    ///
    /// ```no_run
    /// # use smartcar_sim::Simulator;
    /// # async fn demo(sim: &Simulator, webhook_id: &str, vehicle_id: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// let outcome = sim
    ///     .trigger_charging_event(webhook_id, vehicle_id, "CHARGING_STARTED")
    ///     .await?;
    /// # let _ = outcome;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// Unknown webhook or vehicle, a v3 webhook, an unverified webhook, a vehicle not
    /// subscribed to it, an unknown event type ([`WebhookError`]).
    pub async fn trigger_charging_event(
        &self,
        webhook_id: &str,
        vehicle_id: &str,
        event_type: &str,
    ) -> Result<DeliveryOutcome, WebhookError> {
        webhooks::trigger_charging_event(self.state(), webhook_id, vehicle_id, event_type).await
    }

    /// Sends a v2.0 data event to a verified v2.0 webhook: `scheduled` (`true`) or `dynamic`,
    /// with, for every vehicle subscribed to the webhook, one item per v2.0 path of the webhook,
    /// read from the vehicle's current state with the subscriber's permissions, in metric
    /// units. Each item is exactly what `POST /v2.0/vehicles/{id}/batch` answers for the path
    /// (same code: any GET path of the vehicle works, a query string included; a path that
    /// is not one is a 404 item; a missing permission a 403, a powertrain that lacks the data a
    /// 501, a test VIN its forced error).
    ///
    /// ```no_run
    /// # use smartcar_sim::Simulator;
    /// # async fn demo(sim: &Simulator, webhook_id: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// let outcome = sim.trigger_v2_data(webhook_id, true).await?;
    /// # let _ = outcome;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// Unknown webhook, a v3 webhook, an unverified webhook, no vehicle subscribed
    /// ([`WebhookError`]).
    pub async fn trigger_v2_data(
        &self,
        webhook_id: &str,
        scheduled: bool,
    ) -> Result<DeliveryOutcome, WebhookError> {
        webhooks::trigger_v2_data(self.state(), webhook_id, scheduled).await
    }
}
