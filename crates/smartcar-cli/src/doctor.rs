//! `smartcar doctor`: checks the configuration against the platform and says what to fix.
//!
//! Each check says what it costs: none of them reads a vehicle, so none is billed against a
//! vehicle's monthly allowance; the network ones send token, Connect, management or plain
//! requests. A check that cannot run because an earlier one failed is skipped, and says why.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;
use smartcar::ErrorKind;
use smartcar::api::op::Host;

use crate::DoctorArgs;
use crate::app::Ctx;
use crate::config::{SECRETS, SETTINGS, Source};
use crate::exit::{CliError, Exit};

/// A check's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Ok,
    Warn,
    Fail,
    Skip,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

struct Check {
    name: &'static str,
    status: Status,
    detail: String,
    cost: &'static str,
    fix: Option<String>,
}

struct Report {
    checks: Vec<Check>,
}

impl Report {
    fn add(
        &mut self,
        name: &'static str,
        status: Status,
        detail: impl Into<String>,
        cost: &'static str,
        fix: Option<String>,
    ) {
        self.checks.push(Check {
            name,
            status,
            detail: detail.into(),
            cost,
            fix,
        });
    }
}

const FREE: &str = "no request";

/// What a value looks like, without showing it.
fn shape(value: &str) -> &'static str {
    let v = value.trim();
    let is_uuid = v.len() == 36
        && v.chars().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if is_uuid {
        "a UUID"
    } else if v.starts_with("client_") {
        "a client_… id"
    } else if v.starts_with("http://") || v.starts_with("https://") {
        "a URL"
    } else if v.contains(char::is_whitespace) {
        "text with spaces"
    } else {
        "an opaque string"
    }
}

/// `smartcar doctor`.
pub async fn doctor(ctx: &mut Ctx, args: DoctorArgs) -> Result<ExitCode, CliError> {
    let out = ctx.out;
    let settings = ctx.settings.clone();
    // The settings, secrets described rather than shown.
    if !out.json {
        println!(
            "Profile {} (config file {}{})",
            settings.profile,
            settings.config_file.display(),
            if settings.config_file.exists() {
                ""
            } else {
                ", absent"
            }
        );
    }
    for name in SETTINGS {
        let Some(value) = settings.get(name) else {
            continue;
        };
        let shown = if SECRETS.contains(name) {
            format!(
                "set ({}, {} characters)",
                shape(value),
                value.chars().count()
            )
        } else {
            value.to_owned()
        };
        let source = settings.source(name).map(Source::describe).unwrap_or("-");
        if out.json {
            println!(
                "{}",
                json!({"setting": name, "source": source, "value": shown})
            );
        } else {
            println!("  {name:<34} {source:<12} {shown}");
        }
    }
    if !out.json {
        println!();
    }

    let mut report = Report { checks: Vec::new() };
    let id = settings.get("SMARTCAR_CLIENT_ID");
    let secret = settings.get("SMARTCAR_CLIENT_SECRET");
    let amt = settings.get("SMARTCAR_MANAGEMENT_TOKEN");
    let redirect = settings.get("SMARTCAR_REDIRECT_URI");
    let v3_redirect = settings.get("SMARTCAR_V3_REDIRECT_URI");

    // --- the settings themselves (no request) ---
    match id {
        None => report.add(
            "client id",
            Status::Fail,
            "SMARTCAR_CLIENT_ID is not set",
            FREE,
            Some("copy the client id from the Smartcar Dashboard (Configuration)".into()),
        ),
        Some(v) => {
            let s = shape(v);
            let ok = matches!(s, "a UUID" | "a client_… id");
            report.add(
                "client id",
                if ok { Status::Ok } else { Status::Warn },
                s.to_string(),
                FREE,
                (!ok).then(|| {
                    "Smartcar client ids are UUIDs (8229df9f-91a0-4ff0-a1ae-a1f38ee24d07): check \
                     that this is the client id, not the application's name or a secret"
                        .into()
                }),
            );
        }
    }
    match secret {
        None => report.add(
            "client secret",
            Status::Fail,
            "SMARTCAR_CLIENT_SECRET is not set",
            FREE,
            Some("copy the client secret from the Smartcar Dashboard (shown once when created; generate a new one if lost)".into()),
        ),
        Some(s) if Some(s) == id => report.add(
            "client secret",
            Status::Fail,
            "the client secret is the client id",
            FREE,
            Some("set SMARTCAR_CLIENT_SECRET to the secret, not the id".into()),
        ),
        Some(s) if Some(s) == amt => report.add(
            "client secret",
            Status::Fail,
            "the client secret and the management token are the same value",
            FREE,
            Some(
                "they are two different secrets of the Dashboard: the client secret (OAuth, \
                 application tokens) and the application management token (webhook signatures, \
                 management API); one of the two settings holds the other's value"
                    .into(),
            ),
        ),
        Some(s) if s.trim() != s => report.add(
            "client secret",
            Status::Fail,
            "the client secret has spaces or a line break at an end",
            FREE,
            Some("remove them (a copy-paste from the Dashboard or a file with a newline)".into()),
        ),
        Some(s) => report.add(
            "client secret",
            Status::Ok,
            format!("set ({})", shape(s)),
            FREE,
            None,
        ),
    }
    match amt {
        None => report.add(
            "management token",
            Status::Warn,
            "SMARTCAR_MANAGEMENT_TOKEN is not set: webhooks cannot be verified",
            FREE,
            Some(
                "copy the application management token from the Dashboard if you receive webhooks"
                    .into(),
            ),
        ),
        Some(_) => report.add("management token", Status::Ok, "set", FREE, None),
    }
    for (name, uri) in [("redirect URI", redirect), ("v3 redirect URI", v3_redirect)] {
        let Some(uri) = uri else {
            if name == "redirect URI" {
                report.add(
                    name,
                    Status::Warn,
                    "SMARTCAR_REDIRECT_URI is not set: Connect cannot run",
                    FREE,
                    Some("set it to a redirect URI registered in the Dashboard".into()),
                );
            }
            continue;
        };
        match url::Url::parse(uri) {
            Err(e) => report.add(
                name,
                Status::Fail,
                format!("`{uri}` is not a URL ({e})"),
                FREE,
                Some("write the URI exactly as registered in the Dashboard".into()),
            ),
            Ok(u) if u.fragment().is_some() => report.add(
                name,
                Status::Fail,
                format!("{uri} has a fragment (#…), which a redirect URI may not have"),
                FREE,
                Some("remove the #… part here and in the Dashboard".into()),
            ),
            Ok(_) => report.add(name, Status::Ok, uri.to_owned(), FREE, None),
        }
    }

    if args.offline {
        return finish(out, report);
    }

    // --- the network ---
    let client = match ctx.client() {
        Ok(c) => c,
        Err(e) => {
            report.add(
                "client",
                Status::Fail,
                e.message.clone(),
                FREE,
                e.hint.clone(),
            );
            return finish(out, report);
        }
    };
    // Reachability and clock, once per distinct origin.
    let mut seen: Vec<url::Url> = Vec::new();
    let mut unreachable = Vec::new();
    for host in Host::ALL {
        let origin = client.origins().origin(host).clone();
        let base = origin.join("/").unwrap_or_else(|_| origin.clone());
        if seen.contains(&base) {
            continue;
        }
        seen.push(base.clone());
        let started = Instant::now();
        let answer = client
            .http()
            .get(base.clone())
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match answer {
            Ok(r) => {
                let ms = started.elapsed().as_millis();
                report.add(
                    "host reachable",
                    Status::Ok,
                    format!("{base} answered HTTP {} in {ms} ms", r.status().as_u16()),
                    "1 plain request",
                    None,
                );
                if let Some(date) = r
                    .headers()
                    .get("date")
                    .and_then(|d| d.to_str().ok())
                    .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
                {
                    let skew = chrono::Utc::now().signed_duration_since(date).num_seconds();
                    let (status, fix) = if skew.abs() > 300 {
                        (Status::Fail, Some("synchronise this machine's clock (NTP): tokens look expired or not yet valid, and webhook deliveries are refused as replays".to_owned()))
                    } else if skew.abs() > 30 {
                        (
                            Status::Warn,
                            Some("synchronise this machine's clock (NTP)".to_owned()),
                        )
                    } else {
                        (Status::Ok, None)
                    };
                    report.add(
                        "clock",
                        status,
                        format!(
                            "this machine is {} s {} {base}",
                            skew.abs(),
                            if skew >= 0 { "ahead of" } else { "behind" }
                        ),
                        "same request",
                        fix,
                    );
                }
            }
            Err(e) => {
                unreachable.push(base.clone());
                report.add(
                    "host reachable",
                    Status::Fail,
                    format!("{base}: {}", smartcar_error_text(&e)),
                    "1 plain request",
                    Some(format!(
                        "check the network, a proxy or firewall, and any SMARTCAR_*_ORIGIN override that points at {base}"
                    )),
                );
            }
        }
    }

    // The token host: a client-credentials grant (no vehicle call, nothing billed).
    let app = ctx.app()?;
    let iam = client.origins().origin(Host::Iam).join("/").ok();
    let token_ok = if iam.as_ref().is_some_and(|u| unreachable.contains(u)) {
        report.add(
            "token host accepts the client",
            Status::Skip,
            "the token host is unreachable",
            FREE,
            None,
        );
        false
    } else {
        match app.renew().await {
            Ok(_) => {
                report.add(
                    "token host accepts the client",
                    Status::Ok,
                    "client id and secret accepted (an application token was issued)",
                    "1 token request",
                    None,
                );
                true
            }
            Err(e) => {
                let refused = matches!(e.kind(), ErrorKind::OAuth) || e.status() == Some(401);
                let mut fix = String::new();
                if refused {
                    fix.push_str(
                        "the token host refused the client id or secret. Check, in the Smartcar \
                         Dashboard: SMARTCAR_CLIENT_ID is the client id (not the application's \
                         name); SMARTCAR_CLIENT_SECRET is the client secret (not the application \
                         management token, which signs webhooks; not an old secret that was \
                         regenerated); both belong to the same application",
                    );
                    if secret.is_some() && secret == amt {
                        fix.push_str(". Here the secret IS the management token");
                    }
                } else {
                    fix.push_str("see the message; `smartcar -v doctor` shows the exchange");
                }
                report.add(
                    "token host accepts the client",
                    Status::Fail,
                    e.to_string(),
                    "1 token request",
                    Some(fix),
                );
                false
            }
        }
    };

    // Connect: does it know the client id and the redirect URIs? (The page is requested, not
    // followed: nothing is approved.)
    for (name, uri) in [
        ("Connect accepts the redirect URI", redirect),
        ("Connect accepts the v3 redirect URI", v3_redirect),
    ] {
        let Some(uri) = uri else { continue };
        let url = match client.authorize().redirect_uri(uri).build() {
            Ok(a) => a.url,
            Err(e) => {
                report.add(name, Status::Fail, e.to_string(), FREE, None);
                continue;
            }
        };
        match client
            .http()
            .get(url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
        {
            Ok(r) if r.status().is_client_error() => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                report.add(
                    name,
                    Status::Fail,
                    format!("Connect answered HTTP {status}: {}", page_text(&text)),
                    "1 Connect page",
                    Some(format!(
                        "register {uri} exactly (scheme, host, port, path, trailing slash) as a \
                         redirect URI of this application in the Smartcar Dashboard, or fix \
                         SMARTCAR_CLIENT_ID if Connect does not know it"
                    )),
                );
            }
            Ok(r) => report.add(
                name,
                Status::Ok,
                format!("Connect answered HTTP {}", r.status().as_u16()),
                "1 Connect page",
                None,
            ),
            Err(e) => report.add(
                name,
                Status::Fail,
                smartcar_error_text(&e),
                "1 Connect page",
                None,
            ),
        }
    }

    // Webhooks: none delivering to the redirect URI (the two are often confused).
    if token_ok {
        match app.webhooks(None, None).await {
            Ok(hooks) => {
                let redirects: Vec<url::Url> = [redirect, v3_redirect]
                    .into_iter()
                    .flatten()
                    .filter_map(|u| url::Url::parse(u).ok())
                    .collect();
                let mut confused = Vec::new();
                for w in &hooks {
                    let Some(cb) = w.attributes.callback_uri.as_deref() else {
                        continue;
                    };
                    let Ok(cb) = url::Url::parse(cb) else {
                        continue;
                    };
                    if redirects.iter().any(|r| {
                        r.host_str() == cb.host_str()
                            && r.port_or_known_default() == cb.port_or_known_default()
                            && r.path() == cb.path()
                    }) {
                        confused.push(format!("{} → {cb}", w.id));
                    }
                }
                if confused.is_empty() {
                    report.add(
                        "webhook callbacks",
                        Status::Ok,
                        format!(
                            "{} webhook(s), none delivering to a redirect URI",
                            hooks.len()
                        ),
                        "1 management request",
                        None,
                    );
                } else {
                    report.add(
                        "webhook callbacks",
                        Status::Fail,
                        format!(
                            "webhook(s) delivering to the Connect redirect URI: {}",
                            confused.join(", ")
                        ),
                        "1 management request",
                        Some(
                            "the redirect URI receives the browser after Connect (GET with \
                             code or user_id); the webhook callback URI receives signed POSTs \
                             from Smartcar. Give the webhook its own endpoint (e.g. /webhooks) \
                             in the Dashboard"
                                .into(),
                        ),
                    );
                }
            }
            Err(e) => report.add(
                "webhook callbacks",
                Status::Warn,
                format!("could not list webhooks: {e}"),
                "1 management request",
                None,
            ),
        }
    } else {
        report.add(
            "webhook callbacks",
            Status::Skip,
            "needs an application token",
            FREE,
            None,
        );
    }

    // The management token: the management API v2.0 accepts it (Basic default:AMT).
    if let Some(amt) = amt {
        let filter = smartcar::management::ConnectionFilter {
            limit: Some(1),
            ..Default::default()
        };
        match client.management(amt).connections_page(&filter, None).await {
            Ok(_) => report.add(
                "management token accepted",
                Status::Ok,
                "the management API accepted it",
                "1 management request",
                None,
            ),
            Err(e) if e.status() == Some(401) || e.status() == Some(403) => report.add(
                "management token accepted",
                Status::Fail,
                e.to_string(),
                "1 management request",
                Some(
                    "SMARTCAR_MANAGEMENT_TOKEN must be the application management token of the \
                     Dashboard (the key of webhook signatures), not the client secret"
                        .into(),
                ),
            ),
            Err(e) => report.add(
                "management token accepted",
                Status::Warn,
                format!("could not check: {e}"),
                "1 management request",
                None,
            ),
        }
    }
    finish(out, report)
}

/// A transport error's text without the URL's query (it may carry a state or a client id).
fn smartcar_error_text(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection refused or no route"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut deepest = None;
    while let Some(s) = source {
        deepest = Some(s.to_string());
        source = s.source();
    }
    match deepest {
        Some(d) => format!("{kind} ({d})"),
        None => kind.to_owned(),
    }
}

/// The text of an HTML error page, tags removed, at most 200 characters.
fn page_text(html: &str) -> String {
    // Style sheets and scripts are not text.
    let mut html = html.to_owned();
    for tag in ["style", "script", "head"] {
        while let Some(start) = html.find(&format!("<{tag}")) {
            let close = format!("</{tag}>");
            match html[start..].find(&close) {
                Some(end) => html.replace_range(start..start + end + close.len(), " "),
                None => break,
            }
        }
    }
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut joined = words.join(" ");
    if joined.chars().count() > 200 {
        joined = joined.chars().take(200).collect::<String>() + "…";
    }
    joined
}

fn finish(out: crate::output::Out, report: Report) -> Result<ExitCode, CliError> {
    let failed = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .count();
    let warned = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Warn)
        .count();
    for c in &report.checks {
        if out.json {
            println!(
                "{}",
                json!({
                    "check": c.name,
                    "status": c.status.label().to_ascii_lowercase(),
                    "detail": c.detail,
                    "cost": c.cost,
                    "fix": c.fix,
                })
            );
        } else {
            println!(
                "{:<5} {:<37} {}  [{}]",
                c.status.label(),
                c.name,
                c.detail,
                c.cost
            );
            if let Some(fix) = &c.fix
                && c.status != Status::Ok
            {
                println!("      what to do: {fix}");
            }
        }
    }
    if !out.json {
        println!(
            "\n{} check(s): {failed} failed, {warned} warning(s); no vehicle call was made (nothing billed)",
            report.checks.len()
        );
    }
    if failed > 0 {
        Ok(Exit::Doctor.code())
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

/// `smartcar webhooks check URL`: what a webhook endpoint does with signed test deliveries
/// (`meta.mode` `TEST`, ids prefixed `smartcar-cli-check-`). No request to Smartcar.
pub async fn webhook_check(ctx: &mut Ctx, url: &str) -> Result<ExitCode, CliError> {
    let amt = ctx
        .settings
        .require(
            "SMARTCAR_MANAGEMENT_TOKEN",
            "test deliveries are signed with the application management token",
        )?
        .to_owned();
    let target = url::Url::parse(url)
        .map_err(|e| CliError::new(Exit::Refused, format!("`{url}` is not a URL: {e}")))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| CliError::new(Exit::Failure, format!("cannot build an HTTP client: {e}")))?;
    let now = chrono::Utc::now().timestamp_millis();
    let id = |what: &str| format!("smartcar-cli-check-{what}-{now}");
    let envelope = |event_type: &str, data: serde_json::Value| {
        json!({
            "eventId": id(event_type),
            "eventType": event_type,
            "vehicleId": if event_type == "VERIFY" { None } else { Some(id("vehicle")) },
            "data": data,
            "meta": {
                "version": "4.0",
                "webhookId": id("webhook"),
                "webhookName": "smartcar webhooks check",
                "deliveryId": id("delivery"),
                "deliveredAt": now,
                "mode": "TEST",
            },
        })
    };
    let send = |body: Vec<u8>, signature: String| {
        let http = http.clone();
        let target = target.clone();
        async move {
            http.post(target)
                .header("content-type", "application/json")
                .header(smartcar::webhooks::SIGNATURE_HEADER, signature)
                .body(body)
                .send()
                .await
        }
    };
    let mut report = Report { checks: Vec::new() };
    const COST: &str = "1 request to your endpoint";

    // 1. VERIFY.
    let challenge = id("challenge");
    let verify = serde_json::to_vec(&envelope("VERIFY", json!({ "challenge": challenge })))
        .unwrap_or_default();
    let expected = smartcar::webhooks::sign(&amt, challenge.as_bytes());
    match send(verify.clone(), smartcar::webhooks::sign(&amt, &verify)).await {
        Ok(r) => {
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap_or(serde_json::Value::Null);
            let answered = body.get("challenge").and_then(|c| c.as_str());
            if (200..300).contains(&status) && answered == Some(expected.as_str()) {
                report.add(
                    "VERIFY answered",
                    Status::Ok,
                    format!("HTTP {status}, the right challenge"),
                    COST,
                    None,
                );
            } else {
                report.add(
                    "VERIFY answered",
                    Status::Fail,
                    format!(
                        "HTTP {status}, {}",
                        match answered {
                            Some(_) => "a wrong challenge hash",
                            None => "no `challenge` in a JSON body",
                        }
                    ),
                    COST,
                    Some(
                        "answer 200 with {\"challenge\": HEX} where HEX is the lowercase hex \
                         HMAC-SHA256 of data.challenge keyed with the application management \
                         token (not the client secret)"
                            .into(),
                    ),
                );
            }
        }
        Err(e) => {
            report.add(
                "VERIFY answered",
                Status::Fail,
                smartcar_error_text(&e),
                COST,
                Some("is the endpoint running and reachable from this machine?".into()),
            );
            return finish(ctx.out, report);
        }
    }

    // 2 and 3. The same signed event, compact and pretty-printed.
    let event = envelope(
        "VEHICLE_STATE",
        json!({
            "vehicle": {"id": id("vehicle"), "make": "TESLA", "model": "Model 3", "year": 2024},
            "user": {"id": id("user")},
            "triggers": [{"type": "SIGNAL_UPDATED", "code": "odometer-traveleddistance"}],
            "signals": [{
                "code": "odometer-traveleddistance",
                "name": "TraveledDistance",
                "group": "Odometer",
                "body": {"value": 12345.6, "unit": "km"},
            }],
        }),
    );
    let compact = serde_json::to_vec(&event).unwrap_or_default();
    let pretty = serde_json::to_vec_pretty(&event).unwrap_or_default();
    for (name, body, fix) in [
        (
            "signed event accepted",
            compact,
            "your endpoint refused a correctly signed delivery: compute the HMAC-SHA256 of the \
             raw body bytes with the application management token and compare it with \
             SC-Signature (lowercase hex)",
        ),
        (
            "signed event accepted, other formatting",
            pretty,
            "your endpoint accepts one formatting of the body and refuses another, both \
             correctly signed: it checks the signature over a re-serialized body (Node's \
             JSON.stringify(req.body), Python's json.dumps) instead of the raw bytes as received. \
             This is how a VERIFY that passes goes with deliveries that all fail",
        ),
    ] {
        let signature = smartcar::webhooks::sign(&amt, &body);
        match send(body, signature).await {
            Ok(r) if r.status().is_success() => report.add(
                name,
                Status::Ok,
                format!("HTTP {}", r.status().as_u16()),
                COST,
                None,
            ),
            Ok(r) => report.add(
                name,
                Status::Fail,
                format!("HTTP {}", r.status().as_u16()),
                COST,
                Some(fix.into()),
            ),
            Err(e) => report.add(name, Status::Fail, smartcar_error_text(&e), COST, None),
        }
    }

    // 4. A forged delivery.
    let forged = serde_json::to_vec(&event).unwrap_or_default();
    let wrong = smartcar::webhooks::sign("not-the-management-token", &forged);
    match send(forged, wrong).await {
        Ok(r) if r.status().is_client_error() => report.add(
            "forged event refused",
            Status::Ok,
            format!("HTTP {}", r.status().as_u16()),
            COST,
            None,
        ),
        Ok(r) => report.add(
            "forged event refused",
            Status::Fail,
            format!("HTTP {}", r.status().as_u16()),
            COST,
            Some(
                "your endpoint accepted a delivery whose SC-Signature is wrong: anyone can \
                 post events to it. Refuse (401) what does not verify"
                    .into(),
            ),
        ),
        Err(e) => report.add(
            "forged event refused",
            Status::Fail,
            smartcar_error_text(&e),
            COST,
            None,
        ),
    }
    finish(ctx.out, report)
}
