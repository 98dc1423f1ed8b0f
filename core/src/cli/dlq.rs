//! `tasker dlq list|show|resolve`: the dead-letter queue for operators.
//!
//! - `tasker dlq list [--status open|resolved|all] [--reason R] [--namespace NS]
//!   [--limit N] [--offset N] [--json]` lists entries, newest first (open ones by default).
//! - `tasker dlq show ENTRY_ID [--json]` shows one entry: why it was recorded, and the
//!   task with its steps as they were when it was recorded (the snapshot).
//! - `tasker dlq sweep [--json]` runs the staleness sweep once now, with the configured
//!   thresholds (`[staleness]`, `TASKER_STALENESS_*`), and lists what it recorded
//!   (engines sweep every `staleness.interval_ms` on their own).
//! - `tasker dlq resolve ENTRY_ID --retry-step STEP | --resolve-step STEP |
//!   --complete-step STEP --result JSON [--note TEXT] [--by NAME] [--json]` resolves
//!   an open entry by acting on one step of its task (STEP is the step's UUID or
//!   name): run it again with its attempts reset, mark it resolved by hand (its
//!   successors run), or complete it with the given JSON result (its successors
//!   receive it). The task is then re-evaluated and resumes; running workers pick up
//!   the steps made ready. Resolving an entry twice fails (exit 1); an unknown entry
//!   or step, or a step whose state does not allow the action, is bad input (exit 2).

use super::output::{line, print_json};
use super::{CliError, EXIT_OK};
use crate::config::EngineConfig;
use crate::store::{DlqAction, DlqEntry, DlqListParams, DlqResolveOutcome, DlqResolveParams, DlqStatus, SharedStore};
use clap::{Args, Subcommand};
use serde_json::Value;
use uuid::Uuid;

/// `tasker dlq …`
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead-letter entries, newest first.
    List {
        /// open, resolved or all.
        #[arg(long, default_value = "open")]
        status: String,
        /// Only entries recorded for this reason (e.g. step_lease_lost, error_unresolved).
        #[arg(long)]
        reason: Option<String>,
        /// Only entries of tasks in this namespace.
        #[arg(long)]
        namespace: Option<String>,
        /// Most entries to list.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Entries to skip.
        #[arg(long, default_value_t = 0)]
        offset: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one entry with the snapshot of its task.
    Show {
        /// The entry's id.
        entry_id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Resolve an open entry by acting on one step of its task.
    Resolve(ResolveArgs),
    /// Run the staleness sweep once now and list what it recorded.
    Sweep {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `tasker dlq resolve`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("action").required(true).multiple(false)
    .args(["retry_step", "resolve_step", "complete_step"])))]
pub struct ResolveArgs {
    /// The entry's id.
    pub entry_id: String,
    /// Run this step (UUID or name) again, attempts reset.
    #[arg(long, value_name = "STEP")]
    pub retry_step: Option<String>,
    /// Mark this step (UUID or name) resolved by hand; its successors run.
    #[arg(long, value_name = "STEP")]
    pub resolve_step: Option<String>,
    /// Complete this step (UUID or name) with --result; its successors receive it.
    #[arg(long, value_name = "STEP", requires = "result")]
    pub complete_step: Option<String>,
    /// The JSON result recorded for --complete-step.
    #[arg(long, value_name = "JSON", requires = "complete_step")]
    pub result: Option<String>,
    /// A note kept with the entry.
    #[arg(long)]
    pub note: Option<String>,
    /// Who resolves (default: $USER, else `cli`).
    #[arg(long)]
    pub by: Option<String>,
    /// Print the resolved entry as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `tasker dlq` subcommand.
pub async fn run(config: EngineConfig, cmd: DlqCommand) -> Result<i32, CliError> {
    let store = super::tasker_store_with(&config.database_url, crate::store::StoreOptions { listen: false }).await?;
    let result = match cmd {
        DlqCommand::List {
            status,
            reason,
            namespace,
            limit,
            offset,
            json,
        } => {
            let filter = (reason, namespace);
            list(&store, &status, filter, (limit, offset), json).await
        }
        DlqCommand::Show { entry_id, json } => show(&store, &entry_id, json).await,
        DlqCommand::Resolve(args) => resolve(&store, args).await,
        DlqCommand::Sweep { json } => sweep(&store, &config, json).await,
    };
    store.close().await;
    result
}

fn failed(e: crate::store::StoreError) -> CliError {
    CliError::Failed(e.to_string())
}

fn entry_uuid(s: &str) -> Result<Uuid, CliError> {
    Uuid::parse_str(s).map_err(|e| CliError::BadInput(format!("`{s}` is not a DLQ entry id: {e}")))
}

async fn sweep(store: &SharedStore, config: &EngineConfig, json: bool) -> Result<i32, CliError> {
    let sweep = crate::orchestration::staleness::StalenessSweep::new(
        store.clone(),
        crate::clock::system(),
        crate::events::WakeHub::default(),
        format!("cli-sweep-{}", Uuid::now_v7()),
        config.staleness.clone(),
        crate::orchestration::staleness::DlqMetrics::unregistered(),
    );
    let report = sweep.sweep_once().await.map_err(failed)?;
    if json {
        print_json(&report.recorded);
    } else {
        print_table(&report.recorded);
        eprintln!(
            "recorded {} of {} stale task(s) found",
            report.recorded.len(),
            report.detected.len()
        );
    }
    Ok(EXIT_OK)
}

/// `filter`: (reason, namespace); `page`: (limit, offset).
async fn list(
    store: &SharedStore,
    status: &str,
    filter: (Option<String>, Option<String>),
    page: (u32, u32),
    json: bool,
) -> Result<i32, CliError> {
    let status = match status {
        "all" => None,
        s => Some(
            s.parse::<DlqStatus>()
                .map_err(|e| CliError::BadInput(format!("{e}, or all")))?,
        ),
    };
    let reason = filter
        .0
        .map(|r| r.parse::<crate::store::DlqReason>().map_err(CliError::BadInput))
        .transpose()?;
    let entries = store
        .dlq_list(DlqListParams {
            status,
            reason,
            namespace: filter.1,
            limit: page.0,
            offset: page.1,
        })
        .await
        .map_err(failed)?;
    if json {
        print_json(&entries);
    } else {
        print_table(&entries);
    }
    Ok(EXIT_OK)
}

fn print_table(entries: &[DlqEntry]) {
    line(format!(
        "{:<36}  {:<8}  {:<34}  {:<36}  {:<24}  STALE_FOR",
        "ENTRY", "STATUS", "REASON", "TASK", "TEMPLATE"
    ));
    for e in entries {
        line(format!(
            "{:<36}  {:<8}  {:<34}  {:<36}  {:<24}  {}",
            e.entry_id,
            e.status.as_str(),
            e.reason.as_str(),
            e.task_uuid,
            format!("{}/{}", e.namespace, e.task_name),
            human_ms(e.stale_for_ms)
        ));
    }
}

/// `90061000` → `1d 1h 1m 1s`; under a second → `N ms`.
fn human_ms(ms: i64) -> String {
    if ms < 1_000 {
        return format!("{ms} ms");
    }
    let s = ms / 1_000;
    let parts = [
        (s / 86_400, "d"),
        (s / 3_600 % 24, "h"),
        (s / 60 % 60, "m"),
        (s % 60, "s"),
    ];
    parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn show(store: &SharedStore, entry_id: &str, json: bool) -> Result<i32, CliError> {
    let id = entry_uuid(entry_id)?;
    let entry = store
        .dlq_get(id)
        .await
        .map_err(failed)?
        .ok_or_else(|| CliError::BadInput(format!("no DLQ entry {id}")))?;
    if json {
        print_json(&entry);
    } else {
        print_entry(&entry);
    }
    Ok(EXIT_OK)
}

fn print_entry(e: &DlqEntry) {
    line(format!("entry:       {}", e.entry_id));
    line(format!("status:      {}", e.status.as_str()));
    line(format!("reason:      {}", e.reason));
    line(format!(
        "task:        {} ({}/{}), {} when recorded",
        e.task_uuid,
        e.namespace,
        e.task_name,
        e.task_state.as_str()
    ));
    if let Some(step) = e.step_uuid {
        line(format!("step:        {step}"));
    }
    line(format!(
        "stale:       `{}` for {} (threshold {})",
        e.stale_state,
        human_ms(e.stale_for_ms),
        human_ms(e.threshold_ms)
    ));
    line(format!(
        "detected at: {} ms by {}",
        e.detected_at,
        e.detected_by.as_deref().unwrap_or("?")
    ));
    if let Some(r) = e.resolution {
        line(format!(
            "resolved:    {r} on step {} by {} at {} ms{}",
            e.resolution_step_uuid.map(|u| u.to_string()).unwrap_or_default(),
            e.resolved_by.as_deref().unwrap_or("?"),
            e.resolved_at.unwrap_or_default(),
            e.resolution_note
                .as_deref()
                .map(|n| format!(" — {n}"))
                .unwrap_or_default()
        ));
    }
    line("steps at detection:");
    line(format!("  {:<36}  {:<24}  {:<36}  ATTEMPTS", "STEP", "NAME", "STATE"));
    for s in e.snapshot["steps"].as_array().into_iter().flatten() {
        let text = |k: &str| s[k].as_str().unwrap_or("").to_string();
        line(format!(
            "  {:<36}  {:<24}  {:<36}  {}/{}",
            text("step_uuid"),
            text("name"),
            text("state"),
            s["attempts"],
            s["max_attempts"]
        ));
    }
}

/// A step named by UUID or by name (looked up among the entry's task's steps).
async fn step_of(store: &SharedStore, entry_id: Uuid, step: &str) -> Result<Uuid, CliError> {
    if let Ok(uuid) = Uuid::parse_str(step) {
        return Ok(uuid);
    }
    let entry = store
        .dlq_get(entry_id)
        .await
        .map_err(failed)?
        .ok_or_else(|| CliError::BadInput(format!("no DLQ entry {entry_id}")))?;
    let task = store
        .task_get(entry.task_uuid)
        .await
        .map_err(failed)?
        .ok_or_else(|| CliError::Failed(format!("the task {} of entry {entry_id} is gone", entry.task_uuid)))?;
    task.steps
        .iter()
        .find(|s| s.name == step)
        .map(|s| s.step_uuid)
        .ok_or_else(|| CliError::BadInput(format!("task {} has no step `{step}`", entry.task_uuid)))
}

async fn resolve(store: &SharedStore, args: ResolveArgs) -> Result<i32, CliError> {
    let entry_id = entry_uuid(&args.entry_id)?;
    let action = if let Some(step) = &args.retry_step {
        DlqAction::RetryStep {
            step_uuid: step_of(store, entry_id, step).await?,
        }
    } else if let Some(step) = &args.resolve_step {
        DlqAction::ResolveStep {
            step_uuid: step_of(store, entry_id, step).await?,
        }
    } else {
        let step = args.complete_step.as_deref().unwrap_or_default();
        let text = args.result.as_deref().unwrap_or_default();
        let result: Value =
            serde_json::from_str(text).map_err(|e| CliError::BadInput(format!("--result is not valid JSON: {e}")))?;
        DlqAction::CompleteStep {
            step_uuid: step_of(store, entry_id, step).await?,
            result,
        }
    };
    let actor = args
        .by
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "cli".into());
    let now = crate::clock::system().now_ms();
    // A completion fires the step's declared success events (durable ones; a fast
    // event has no subscriber in this process).
    let publisher = crate::worker::domain_event::DomainEventPublisher::new(
        crate::events::domain::DomainEventBus::default(),
        crate::worker::template_cache::TemplateCache::default().with_store(store.clone()),
        std::sync::Arc::new(crate::metrics::EngineMetrics::new()),
    );
    let events = publisher
        .resolution_events(&store, entry_id, &action, now)
        .await
        .map_err(failed)?;
    let outcome = store
        .dlq_resolve(DlqResolveParams {
            entry_id,
            action,
            note: args.note,
            processor: format!("cli-{actor}"),
            actor,
            now,
            events: events.durable,
        })
        .await
        .map_err(failed)?;
    match outcome {
        DlqResolveOutcome::Resolved {
            entry, step_state, task, ..
        } => {
            if args.json {
                print_json(&entry);
            } else {
                line(format!(
                    "resolved {} ({}): step {} is now {}; task {} is {}",
                    entry.entry_id,
                    entry.resolution.map(|r| r.as_str()).unwrap_or("?"),
                    entry.resolution_step_uuid.map(|u| u.to_string()).unwrap_or_default(),
                    step_state.as_str(),
                    entry.task_uuid,
                    task.map(|t| t.to.as_str()).unwrap_or("unchanged")
                ));
            }
            Ok(EXIT_OK)
        }
        DlqResolveOutcome::NotFound => Err(CliError::BadInput(format!("no DLQ entry {entry_id}"))),
        DlqResolveOutcome::AlreadyResolved { entry } => Err(CliError::Failed(format!(
            "DLQ entry {entry_id} was already resolved ({} by {} at {} ms)",
            entry.resolution.map(|r| r.as_str()).unwrap_or("?"),
            entry.resolved_by.as_deref().unwrap_or("?"),
            entry.resolved_at.unwrap_or_default()
        ))),
        DlqResolveOutcome::StepNotInTask { step_uuid } => Err(CliError::BadInput(format!(
            "step {step_uuid} is not a step of the task of DLQ entry {entry_id}"
        ))),
        DlqResolveOutcome::StepNotResolvable {
            step_uuid,
            state,
            resolution,
        } => Err(CliError::BadInput(format!(
            "cannot {resolution} step {step_uuid}: it is `{state}` (retry needs `error` or `waiting_for_retry`; resolve and complete need an unfinished step)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::human_ms;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human_ms(250), "250 ms");
        assert_eq!(human_ms(90_061_000), "1d 1h 1m 1s");
        assert_eq!(human_ms(3_600_000), "1h");
    }
}
