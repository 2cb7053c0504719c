//! The local servers: Connect's redirect (`connect`) and the webhook receiver
//! (`webhooks listen`).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};
use smartcar::webhooks::{Delivery, SIGNATURE_HEADER, WebhookEvent, WebhookVerifier};
use tokio::sync::{mpsc, watch};

use crate::ListenArgs;
use crate::app::Ctx;
use crate::exit::{CliError, Exit};
use crate::output::Out;

/// Serves `redirect`'s path on `listener` until a browser requests it (other paths get 404);
/// returns the full URL requested. Bounded by `timeout`.
pub async fn wait_for_redirect(
    listener: tokio::net::TcpListener,
    redirect: &url::Url,
    timeout: Duration,
) -> Result<url::Url, CliError> {
    let (tx, mut rx) = mpsc::channel::<url::Url>(1);
    let base = redirect.clone();
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let tx = tx.clone();
        let base = base.clone();
        async move {
            let target = uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            match base.join(&target) {
                Ok(url) if url.path() == base.path() => {
                    let _ = tx.try_send(url);
                    Html(
                        "<!doctype html><meta charset=utf-8><title>Smartcar</title>\
                         <p>Done: you can close this window and go back to the terminal.</p>",
                    )
                    .into_response()
                }
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.changed().await;
            })
            .await;
    });
    let got = tokio::time::timeout(timeout, rx.recv()).await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    match got {
        Ok(Some(url)) => Ok(url),
        _ => Err(CliError::new(
            Exit::Failure,
            format!(
                "the browser did not come back to {redirect} within {} s",
                timeout.as_secs()
            ),
        )
        .hint("run `smartcar connect` again, open the printed URL and approve (--timeout gives more time)")),
    }
}

/// What the receiver shares between requests.
struct Listener {
    verifier: WebhookVerifier,
    forward: Option<url::Url>,
    http: reqwest::Client,
    out: Out,
    handled: AtomicU64,
    rejected: AtomicU64,
    count: Option<u64>,
    done: watch::Sender<bool>,
}

/// `smartcar webhooks listen`.
pub async fn listen(ctx: &mut Ctx, args: ListenArgs) -> Result<ExitCode, CliError> {
    let amt = ctx.settings.require(
        "SMARTCAR_MANAGEMENT_TOKEN",
        "deliveries are signed with the application management token",
    )?;
    let verifier = WebhookVerifier::new(amt)?;
    let forward = match &args.forward {
        Some(f) => Some(url::Url::parse(f).map_err(|e| {
            CliError::new(Exit::Refused, format!("--forward `{f}` is not a URL: {e}"))
        })?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind((args.host, args.port))
        .await
        .map_err(|e| {
            CliError::new(
                Exit::Failure,
                format!("cannot listen on {}:{}: {e}", args.host, args.port),
            )
            .hint("pick another --port (0 picks a free one)")
        })?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}/");
    let (done, mut done_rx) = watch::channel(false);
    let shared = Arc::new(Listener {
        verifier,
        forward,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| {
                CliError::new(Exit::Failure, format!("cannot build an HTTP client: {e}"))
            })?,
        out: ctx.out,
        handled: AtomicU64::new(0),
        rejected: AtomicU64::new(0),
        count: args.count,
        done,
    });
    if ctx.out.json {
        println!("{}", json!({"listening": url}));
    } else {
        println!("Listening for webhook deliveries on {url} (any path; Ctrl-C to stop)");
        if let Some(f) = &shared.forward {
            println!("Forwarding each verified delivery to {f}");
        }
        println!(
            "Point a webhook's callback URI here (for the real platform, through a tunnel to this port).\n"
        );
    }
    let state = shared.clone();
    let app = axum::Router::new()
        .fallback(move |headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move { receive(&state, &headers, body).await }
        })
        .layer(axum::extract::DefaultBodyLimit::max(
            smartcar::webhooks::DEFAULT_MAX_BODY,
        ));
    let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = done_rx.wait_for(|d| *d) => {}
        }
    });
    serve.await?;
    let handled = shared.handled.load(Ordering::Relaxed);
    let rejected = shared.rejected.load(Ordering::Relaxed);
    ctx.out.note(format!(
        "\n{handled} delivery(ies): {} verified, {rejected} rejected",
        handled - rejected
    ));
    Ok(ExitCode::SUCCESS)
}

/// One delivery: verify, print, answer (or forward).
async fn receive(state: &Listener, headers: &HeaderMap, body: Bytes) -> Response {
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let received_at = chrono::Utc::now();
    let response = match state.verifier.verify(signature, &body) {
        Err(e) => {
            state.rejected.fetch_add(1, Ordering::Relaxed);
            let hint = match e {
                smartcar::webhooks::WebhookError::BadSignature => {
                    "SC-Signature is not the HMAC-SHA256 of this raw body keyed with \
                     SMARTCAR_MANAGEMENT_TOKEN: that setting is not this application's \
                     management token (a common mix-up: the client secret), or something \
                     changed the body on the way"
                }
                smartcar::webhooks::WebhookError::MissingSignature => {
                    "not a Smartcar delivery, or a proxy dropped the SC-Signature header"
                }
                _ => "see the message",
            };
            print_event(
                state.out,
                json!({
                    "received_at": received_at.to_rfc3339(),
                    "verified": false,
                    "error": e.to_string(),
                    "hint": hint,
                }),
                format!(
                    "{}  REJECTED  {e}\n            {hint}",
                    received_at.format("%H:%M:%S")
                ),
            );
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": e.to_string()})),
            )
                .into_response()
        }
        Ok(delivery) => {
            let (summary, mut record) = describe(&delivery);
            record["received_at"] = json!(received_at.to_rfc3339());
            record["verified"] = json!(true);
            let answer = if let Some(target) = &state.forward {
                let forwarded = state
                    .http
                    .post(target.clone())
                    .header("content-type", "application/json")
                    .header(SIGNATURE_HEADER, signature.unwrap_or_default())
                    .body(body.clone())
                    .send()
                    .await;
                match forwarded {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        record["forwarded"] = json!(status);
                        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                        let bytes = r.bytes().await.unwrap_or_default();
                        (code, [("content-type", "application/json")], bytes).into_response()
                    }
                    Err(e) => {
                        record["forwarded"] = json!(format!("failed: {e}"));
                        StatusCode::BAD_GATEWAY.into_response()
                    }
                }
            } else {
                match &delivery.event {
                    WebhookEvent::Verify { challenge } => (
                        StatusCode::OK,
                        axum::Json(state.verifier.challenge_response(challenge)),
                    )
                        .into_response(),
                    _ => (StatusCode::OK, axum::Json(json!({}))).into_response(),
                }
            };
            let forwarded = record
                .get("forwarded")
                .map(|f| format!("\n            forwarded: {}", crate::output::cell(Some(f))))
                .unwrap_or_default();
            print_event(
                state.out,
                record,
                format!("{}  {summary}{forwarded}", received_at.format("%H:%M:%S")),
            );
            answer
        }
    };
    let handled = state.handled.fetch_add(1, Ordering::Relaxed) + 1;
    if state.count.is_some_and(|n| handled >= n) {
        let _ = state.done.send(true);
    }
    response
}

fn print_event(out: Out, record: Value, human: String) {
    if out.json {
        println!("{record}");
    } else {
        println!("{human}");
    }
}

/// A delivery's one-line summary (plus detail lines) and its JSON record.
fn describe(d: &Delivery) -> (String, Value) {
    let mut record = json!({
        "event_id": d.event_id,
        "delivery_id": d.delivery_id,
        "webhook_id": d.webhook_id,
        "version": d.version,
        "mode": d.mode.as_ref().map(|m| m.to_string()),
    });
    let webhook = d.webhook_id.as_deref().unwrap_or("-");
    let summary = match &d.event {
        WebhookEvent::Verify { .. } => {
            record["event_type"] = json!("VERIFY");
            format!("VERIFY  challenge answered (webhook {webhook})")
        }
        WebhookEvent::VehicleState(data) => {
            record["event_type"] = json!("VEHICLE_STATE");
            record["vehicle_id"] = json!(data.vehicle.id);
            let triggers: Vec<String> = data
                .triggers
                .iter()
                .filter_map(|t| t.code.clone())
                .collect();
            let signals: Vec<Value> = data
                .signals
                .iter()
                .map(|s| {
                    let mut body = s.body.clone();
                    let unit = body.remove("unit");
                    json!({"code": s.code.to_string(), "value": body.remove("value").unwrap_or(Value::Object(body)), "unit": unit})
                })
                .collect();
            record["triggers"] = json!(triggers);
            record["signals"] = json!(signals);
            let mut text = format!(
                "VEHICLE_STATE  vehicle {}{}  webhook {webhook}  event {}\n            triggers: {}",
                data.vehicle.id,
                vehicle_name(&data.vehicle),
                d.event_id.as_deref().unwrap_or("-"),
                if triggers.is_empty() {
                    "-".to_owned()
                } else {
                    triggers.join(", ")
                }
            );
            for s in signals.iter().take(12) {
                text.push_str(&format!(
                    "\n            {} = {}{}",
                    crate::output::cell(s.get("code")),
                    crate::output::cell(s.get("value")),
                    s.get("unit")
                        .and_then(Value::as_str)
                        .map(|u| format!(" {u}"))
                        .unwrap_or_default()
                ));
            }
            if signals.len() > 12 {
                text.push_str(&format!("\n            … and {} more", signals.len() - 12));
            }
            text
        }
        WebhookEvent::VehicleError(data) => {
            record["event_type"] = json!("VEHICLE_ERROR");
            record["vehicle_id"] = json!(data.vehicle.id);
            let errors: Vec<Value> = data
                .errors
                .iter()
                .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
                .collect();
            record["errors"] = json!(errors);
            let mut text = format!(
                "VEHICLE_ERROR  vehicle {}{}  webhook {webhook}",
                data.vehicle.id,
                vehicle_name(&data.vehicle)
            );
            for e in &errors {
                text.push_str(&format!("\n            {e}"));
            }
            text
        }
        WebhookEvent::V2(event) => {
            record["event_type"] = json!("v2");
            let envelope = serde_json::to_value(&event.envelope).unwrap_or(Value::Null);
            let name = envelope
                .get("eventName")
                .and_then(Value::as_str)
                .unwrap_or("v2 event")
                .to_owned();
            record["event_name"] = json!(name);
            format!("{name} (v2.0 webhook {webhook})")
        }
        WebhookEvent::Unknown { event_type } => {
            record["event_type"] = json!(event_type);
            format!(
                "{event_type}  (an event type this version does not know; the body is in --json)"
            )
        }
        _ => "an event this version does not know".to_owned(),
    };
    record["body"] = d.raw.clone();
    (summary, record)
}

fn vehicle_name(v: &smartcar::api::types::WebhookVehicle) -> String {
    let parts: Vec<String> = [
        v.year
            .as_ref()
            .and_then(|y| y.number())
            .map(|y| y.to_string()),
        v.make.clone(),
        v.model.clone(),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(" "))
    }
}
