//! `tasker events tail`: prints durable domain events. With `--consumer NAME` it
//! reads as that consumer (starting after its acknowledged sequence) and
//! acknowledges each batch once printed, so a crash between the two prints a batch
//! again (at least once); without it, it reads every stored event and acknowledges
//! nothing. `--follow` keeps waiting for new events until SIGTERM/SIGINT.
//!
//! `tasker events prune --older-than AGE`: deletes durable events stored more than
//! AGE ago that every known consumer has acknowledged (`--include-unacknowledged`:
//! by age alone), in batches, and prints how many it deleted.

use super::output::line;
use super::signal::Termination;
use super::{tasker_store, CliError, EXIT_OK};
use crate::clock;
use crate::config::EngineConfig;
use crate::events::domain::StoredDomainEvent;
use crate::events::subscriber::EventSubscriber;
use crate::store::DomainEventPruneParams;
use clap::Subcommand;
use std::time::Duration;

/// Most events read per batch.
const BATCH: u32 = 500;

/// Most events deleted per statement by `prune` (each batch is its own transaction).
const PRUNE_BATCH: u32 = 10_000;

/// How long one wait of `--follow` lasts before it checks again.
const FOLLOW_WAIT: Duration = Duration::from_secs(5);

/// `tasker events …`
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Print durable domain events, oldest first.
    Tail {
        /// Read as this consumer (after its acknowledged sequence) and acknowledge what is printed.
        #[arg(long)]
        consumer: Option<String>,
        /// Keep waiting for new events until SIGTERM/SIGINT.
        #[arg(long)]
        follow: bool,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        /// Only events whose name matches this pattern (`*` matches anything: `order.*`).
        #[arg(long)]
        name: Option<String>,
    },
    /// Delete durable events stored longer ago than an age, once every consumer has them.
    Prune {
        /// Age of the events to delete, e.g. `7d`, `12h`, `30min`.
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: Duration,
        /// Also delete events some consumer has not acknowledged yet (by age alone).
        #[arg(long)]
        include_unacknowledged: bool,
    },
}

/// Runs an `events` subcommand.
pub async fn run(config: EngineConfig, cmd: EventsCommand) -> Result<i32, CliError> {
    match cmd {
        EventsCommand::Tail {
            consumer,
            follow,
            json,
            name,
        } => tail(config, consumer, follow, json, name).await,
        EventsCommand::Prune {
            older_than,
            include_unacknowledged,
        } => prune(config, older_than, !include_unacknowledged).await,
    }
}

/// Deletes old events in batches until none is left to delete.
async fn prune(config: EngineConfig, older_than: Duration, acknowledged_only: bool) -> Result<i32, CliError> {
    let age_ms = i64::try_from(older_than.as_millis())
        .map_err(|_| CliError::BadInput(format!("--older-than {older_than:?} is too long")))?;
    let store = tasker_store(&config.database_url).await?;
    let params = DomainEventPruneParams {
        stored_before: clock::system().now_ms().saturating_sub(age_ms),
        acknowledged_only,
        limit: PRUNE_BATCH,
    };
    let mut deleted = 0u64;
    loop {
        match store.domain_event_prune(params.clone()).await {
            Ok(0) => break,
            Ok(n) => deleted += n,
            Err(e) => {
                store.close().await;
                return Err(CliError::Failed(format!(
                    "pruning domain events (deleted {deleted} before the error): {e}"
                )));
            }
        }
    }
    store.close().await;
    line(format!(
        "pruned {deleted} domain event(s) stored more than {} ago",
        humantime::format_duration(older_than)
    ));
    Ok(EXIT_OK)
}

/// Prints events, as `tail` promises.
async fn tail(
    config: EngineConfig,
    consumer: Option<String>,
    follow: bool,
    json: bool,
    name: Option<String>,
) -> Result<i32, CliError> {
    let mut stop = if follow { Some(Termination::install()?) } else { None };
    let store = tasker_store(&config.database_url).await?;
    let acks = consumer.is_some();
    let mut subscriber =
        EventSubscriber::new(store.clone(), clock::system(), consumer.as_deref().unwrap_or("")).with_name_pattern(name);
    if !acks {
        subscriber = subscriber.starting_after(0);
    }
    let failed = |e: crate::store::StoreError| CliError::Failed(format!("reading domain events: {e}"));
    loop {
        let batch = match stop.as_mut() {
            None => subscriber.poll(BATCH, Duration::ZERO).await.map_err(failed)?,
            Some(stop) => tokio::select! {
                batch = subscriber.poll(BATCH, FOLLOW_WAIT) => batch.map_err(failed)?,
                _ = stop.wait() => break,
            },
        };
        if batch.is_empty() && stop.is_none() {
            break;
        }
        for event in &batch {
            print(event, json);
        }
        if let (true, Some(last)) = (acks, batch.last()) {
            subscriber.ack(last.sequence).await.map_err(failed)?;
        }
    }
    store.close().await;
    Ok(EXIT_OK)
}

fn print(event: &StoredDomainEvent, json: bool) {
    if json {
        match serde_json::to_string(event) {
            Ok(text) => line(text),
            Err(e) => eprintln!("error: cannot render event {}: {e}", event.sequence),
        }
        return;
    }
    let e = &event.event;
    let step = match (&e.step_name, e.task_uuid) {
        (Some(step), Some(task)) => format!(" task={task} step={step}"),
        _ => String::new(),
    };
    line(format!(
        "#{} {} {} [{}]{step} {}",
        event.sequence,
        e.fired_at,
        e.name,
        serde_json::to_value(e.mode)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        e.payload
    ));
}
