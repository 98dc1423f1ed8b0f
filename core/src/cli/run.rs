//! `tasker run`: create a task from a template and run it to the end in this
//! process, on the embedded engine, with the built-in Rust example handlers.

use super::output::{print_json, TaskOutput};
use super::{CliError, EXIT_FAILED, EXIT_OK};
use crate::config::EngineConfig;
use crate::engine::{Engine, EngineError};
use crate::orchestration::task_request::TemplateRef;
use crate::orchestration::{CreateTaskError, TaskSubmission};
use crate::state::TaskState;
use crate::template::{load_file, TemplateRegistry};
use clap::Args;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `tasker run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A template file (YAML), or namespace/name[@version] found in --templates.
    template: String,
    /// The task context, as JSON.
    #[arg(long, default_value = "{}")]
    context: String,
    /// Folder of templates to resolve namespace/name[@version] in.
    #[arg(long, env = "TASKER_TEMPLATES")]
    templates: Option<PathBuf>,
    /// Give up waiting after this many seconds (the task keeps its state).
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Print only the final JSON.
    #[arg(long, short)]
    quiet: bool,
}

/// Runs `tasker run`.
pub async fn run(config: EngineConfig, args: RunArgs) -> Result<i32, CliError> {
    let context: serde_json::Value = serde_json::from_str(&args.context)
        .map_err(|e| CliError::BadInput(format!("--context is not valid JSON: {e}")))?;
    let handlers = crate::examples::registry();
    let (template, registry) = resolve_template(&args)?;
    // Every namespace the template's steps run in: this process runs the whole task.
    let namespaces: Vec<String> = template
        .template
        .step_namespaces()
        .into_iter()
        .map(String::from)
        .collect();
    let unknown: Vec<String> = template
        .template
        .steps
        .iter()
        .filter(|s| handlers.get(&s.handler.callable).is_none())
        .map(|s| format!("step `{}` (handler `{}`)", s.name, s.handler.callable))
        .collect();
    if !unknown.is_empty() {
        return Err(CliError::BadInput(format!(
            "{}: no Rust handler for {}; `tasker run` knows: {}",
            template.origin,
            unknown.join(", "),
            handlers.callables().join(", ")
        )));
    }

    let engine = Engine::start(config, handlers, registry, namespaces)
        .await
        .map_err(|e| CliError::BadInput(e.to_string()))?;
    let started = Instant::now();
    let events = engine.events().subscribe();
    let created = engine
        .submit(TaskSubmission::new(TemplateRef::Loaded(template.clone()), context))
        .await;
    let created = match created {
        Ok(c) => c,
        Err(e) => {
            engine.shutdown().await;
            return Err(match e {
                CreateTaskError::Store(_) | CreateTaskError::StoreFailed { .. } | CreateTaskError::Closed => {
                    CliError::Failed(e.to_string())
                }
                other => CliError::BadInput(other.to_string()),
            });
        }
    };
    let t = &template.template;
    if !args.quiet {
        let note = if created.created {
            ""
        } else {
            " (already existed: same identity)"
        };
        eprintln!(
            "task {} {}/{}@{} created{note}",
            created.task_uuid, t.namespace, t.name, t.version
        );
    }
    let progress = tokio::spawn(super::progress::follow(events, created.task_uuid, args.quiet));
    let waited = tokio::select! {
        w = engine.wait_for_task(created.task_uuid, Duration::from_secs(args.timeout_secs)) => w,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted: stopping (running steps are handed back to the queue)");
            engine.shutdown().await;
            return Ok(EXIT_FAILED);
        }
    };
    // Let the progress printer catch up with the final events before printing the result.
    tokio::time::sleep(Duration::from_millis(20)).await;
    progress.abort();
    if let Err(EngineError::WaitTimedOut { .. }) = &waited {
        // Do not wait for running handlers: hand their steps back to the queue so the
        // stored task matches what we report (unfinished; a later run can resume it).
        let drained = engine.shutdown_with_grace(Duration::ZERO).await;
        if drained.released > 0 {
            eprintln!("{} running step(s) handed back to the queue", drained.released);
        }
    } else {
        engine.shutdown().await;
    }
    match waited {
        Ok(task) => {
            let state = task.state;
            if !args.quiet {
                eprintln!("finished in {:.1} ms", started.elapsed().as_secs_f64() * 1000.0);
            }
            print_json(&TaskOutput::from(task));
            Ok(if state == TaskState::Complete {
                EXIT_OK
            } else {
                EXIT_FAILED
            })
        }
        Err(e @ EngineError::WaitTimedOut { .. }) => Err(CliError::Failed(e.to_string())),
        Err(e) => Err(CliError::Failed(e.to_string())),
    }
}

/// The template to run and the registry to run it with.
fn resolve_template(args: &RunArgs) -> Result<(Arc<crate::template::LoadedTemplate>, TemplateRegistry), CliError> {
    let path = Path::new(&args.template);
    if path.is_file() {
        let loaded = load_file(path, None).map_err(|e| CliError::BadInput(e.to_string()))?;
        let mut registry = TemplateRegistry::new();
        let loaded = registry.insert(loaded);
        return Ok((loaded, registry));
    }
    // Not an existing file: a YAML file name that is missing, or a template key.
    if args.template.ends_with(".yaml") || args.template.ends_with(".yml") {
        return Err(CliError::BadInput(format!(
            "template file `{}` not found",
            args.template
        )));
    }
    let Some(dir) = &args.templates else {
        return Err(CliError::BadInput(format!(
            "`{}` is not a file; to run a template by name, pass --templates DIR (or set TASKER_TEMPLATES)",
            args.template
        )));
    };
    let registry = TemplateRegistry::load_dir(dir, None).map_err(|e| CliError::BadInput(e.to_string()))?;
    let loaded = registry
        .resolve(&args.template)
        .map_err(|e| CliError::BadInput(e.to_string()))?;
    Ok((loaded, registry))
}
