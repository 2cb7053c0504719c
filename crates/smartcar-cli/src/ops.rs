//! Operators' commands over many vehicles and over the webhook queue: `fleet read`,
//! `pipeline stats|dead-letters|requeue|delete`.

use std::process::ExitCode;

use futures_util::StreamExt as _;
use serde_json::{Value, json};
use smartcar::fleet::FanOut;
use smartcar::pipeline::WebhookPipeline;
use smartcar::webhooks::WebhookVerifier;

use crate::app::Ctx;
use crate::exit::{CliError, Exit};
use crate::output::{Table, progress};
use crate::{FleetAction, PipelineAction, PipelineArgs};

/// `smartcar fleet read`.
pub async fn fleet(ctx: &mut Ctx, action: FleetAction) -> Result<ExitCode, CliError> {
    let FleetAction::Read {
        signals,
        user,
        concurrency,
        mode,
    } = action;
    if concurrency == 0 {
        return Err(CliError::new(
            Exit::Refused,
            "--concurrency must be at least 1",
        ));
    }
    let app = ctx.app()?;
    let connections = crate::app::list_connections(&app, user.as_deref(), None, mode).await?;
    let owners: std::collections::HashMap<String, String> = connections
        .iter()
        .map(|c| {
            (
                c.relationships.vehicle.data.id.clone(),
                c.relationships.user.data.id.clone(),
            )
        })
        .collect();
    let total = connections.len() as u64;
    let bar = progress(ctx.out, total, "reading vehicles");
    let ticks = bar.clone();
    let mut stream = FanOut::new()
        .concurrency(concurrency)
        .total(total)
        .on_progress(move |p| ticks.set_position(p.done))
        .latest_v3(&app, futures_util::stream::iter(connections));
    let wanted: Vec<String> = signals.iter().map(|s| s.to_ascii_lowercase()).collect();
    let mut columns: Vec<(&str, &str)> = vec![
        ("VEHICLE", "vehicle_id"),
        ("USER", "user_id"),
        ("STATUS", "status"),
    ];
    for code in &wanted {
        columns.push((code, code));
    }
    if wanted.is_empty() {
        columns.push(("SIGNALS", "signal_count"));
    }
    let mut table = Table::new(&columns);
    let mut failed = 0u64;
    while let Some(r) = stream.next().await {
        let mut row = json!({
            "vehicle_id": r.vehicle_id,
            "user_id": owners.get(&r.vehicle_id),
        });
        match &r.result {
            Ok(list) => {
                row["status"] = json!("ok");
                row["signal_count"] = json!(list.len());
                let mut values = serde_json::Map::new();
                for s in list.iter() {
                    let code = s.code.to_string().to_ascii_lowercase();
                    if wanted.is_empty() || wanted.contains(&code) {
                        let value = crate::commands::signal_value(s).unwrap_or(Value::Null);
                        if !wanted.is_empty() {
                            row[code.as_str()] = value.clone();
                        }
                        values.insert(code, value);
                    }
                }
                if ctx.out.json {
                    row["signals"] = Value::Object(values);
                }
            }
            Err(e) => {
                failed += 1;
                row["status"] = json!(format!("{:?}", e.kind()));
                row["error"] = json!(e.to_string());
            }
        }
        if ctx.out.json {
            // A stream: each vehicle's line as soon as it is read.
            println!("{row}");
        } else {
            table.push(row);
        }
    }
    bar.finish_and_clear();
    if !ctx.out.json {
        ctx.out.table(&table);
    }
    ctx.out.note(format!(
        "{total} vehicle(s) read, {failed} failed · {total} request(s), one billed call each"
    ));
    Ok(ExitCode::SUCCESS)
}

/// `smartcar pipeline …`.
pub async fn pipeline(ctx: &mut Ctx, args: PipelineArgs) -> Result<ExitCode, CliError> {
    // These calls never verify a delivery; the verifier a pipeline is built with is unused here,
    // so the management token is not required.
    let verifier = WebhookVerifier::new(
        ctx.settings
            .get("SMARTCAR_MANAGEMENT_TOKEN")
            .unwrap_or("operator-commands-verify-nothing"),
    )?;
    let storage = |e: smartcar::pipeline::PipelineError| {
        CliError::new(Exit::Failure, format!("the webhook queue: {e}"))
            .hint("check --db (SMARTCAR_PIPELINE_DB): an SQLite file path or a postgres:// URL")
    };
    let db = args.db.trim();
    let pipeline = if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        WebhookPipeline::postgres(db, verifier)
            .await
            .map_err(storage)?
    } else {
        let path = db.strip_prefix("sqlite:").unwrap_or(db);
        if !std::path::Path::new(path).exists() {
            return Err(CliError::config(format!("no SQLite file at {path}"))
                .hint("give the path your WebhookPipeline::sqlite opens"));
        }
        WebhookPipeline::sqlite(path, verifier)
            .await
            .map_err(storage)?
    };
    match args.action {
        PipelineAction::Stats => {
            let stats = pipeline.stats().await.map_err(storage)?;
            ctx.out.record(&json!({
                "queued": stats.queued,
                "retrying": stats.retrying,
                "in_flight": stats.in_flight,
                "expired_leases": stats.expired_leases,
                "dead_letters": stats.dead_letters,
                "oldest_queued_at": stats.oldest_queued_at.map(|t| t.to_rfc3339()),
            }));
        }
        PipelineAction::DeadLetters { limit, bodies } => {
            let dead = pipeline.dead_letters(limit).await.map_err(storage)?;
            let mut columns = vec![
                ("ID", "id"),
                ("EVENT", "event_type"),
                ("VEHICLE", "vehicle_id"),
                ("ATTEMPTS", "attempts"),
                ("DEAD AT", "dead_at"),
                ("REASON", "reason"),
            ];
            if bodies {
                columns.push(("BODY", "body"));
            }
            let mut table = Table::new(&columns);
            for d in &dead {
                let mut row = json!({
                    "id": d.id,
                    "dedup_key": d.dedup_key,
                    "event_type": d.event_type,
                    "vehicle_id": d.vehicle_id,
                    "is_test": d.is_test,
                    "attempts": d.attempts,
                    "reason": d.reason,
                    "received_at": d.received_at.to_rfc3339(),
                    "dead_at": d.dead_at.to_rfc3339(),
                });
                if bodies {
                    row["body"] = json!(String::from_utf8_lossy(&d.body));
                }
                table.push(row);
            }
            ctx.out.table(&table);
            ctx.out.note(format!("{} dead letter(s)", table.len()));
        }
        PipelineAction::Requeue { id } => {
            let done = pipeline.requeue_dead_letter(id).await.map_err(storage)?;
            found(done, id)?;
            ctx.out.record(&json!({"id": id, "requeued": true}));
        }
        PipelineAction::Delete { id } => {
            let done = pipeline.delete_dead_letter(id).await.map_err(storage)?;
            found(done, id)?;
            ctx.out.record(&json!({"id": id, "deleted": true}));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A requeue or delete that matched no dead letter is a refusal.
fn found(done: bool, id: i64) -> Result<(), CliError> {
    if done {
        Ok(())
    } else {
        Err(CliError::new(Exit::Refused, format!("no dead letter {id}"))
            .hint("`smartcar pipeline dead-letters` lists them"))
    }
}
