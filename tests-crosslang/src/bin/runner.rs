//! `tasker-crosslang`: runs the conformance scenarios with each language's handlers
//! on each backend, prints the table scenario × language × backend (and the mixed
//! scenarios' table), the differences, and exits 0 when every run matched, 1
//! otherwise, 2 when the suite could not be set up. `scripts/conformance` builds and
//! installs the language packages and passes them here.

use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tasker_crosslang::group::{self, GroupSpec, RunOptions, Topology};
use tasker_crosslang::scenario::{self, Scenario};
use tasker_crosslang::workers::Toolchain;
use tasker_crosslang::{report, Backend, Language};

#[derive(Debug, Parser)]
#[command(
    name = "tasker-crosslang",
    about = "Runs the cross-language conformance scenarios and compares the outcomes"
)]
struct Args {
    /// The scenarios folder.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"))]
    scenarios: PathBuf,
    /// Run only these scenarios (folder names); repeat for several.
    #[arg(long = "scenario")]
    only: Vec<String>,
    /// Languages to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "rust,python,ruby,typescript")]
    languages: Vec<String>,
    /// Backends to run on, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    backends: Vec<String>,
    /// An existing PostgreSQL database whose user may create databases.
    #[arg(long, env = "TASKER_TEST_DATABASE_URL")]
    postgres_url: Option<String>,
    /// A Python with the tasker-core wheel installed.
    #[arg(long, env = "TASKER_CROSSLANG_PYTHON")]
    python: Option<PathBuf>,
    /// A Ruby whose GEM_HOME/GEM_PATH hold the tasker-core gem.
    #[arg(long, env = "TASKER_CROSSLANG_RUBY")]
    ruby: Option<PathBuf>,
    /// A folder with tasker-core in node_modules and the compiled worker in out/.
    #[arg(long, env = "TASKER_CROSSLANG_NODE_APP")]
    node_app: Option<PathBuf>,
    /// The crosslang-rust-worker binary (default: next to this one).
    #[arg(long)]
    rust_worker: Option<PathBuf>,
    /// Swap a handler for its deliberately broken variant: LANGUAGE:CALLABLE.
    #[arg(long = "break")]
    broken: Vec<String>,
    /// Groups (database + workers) run at once.
    #[arg(long, default_value_t = 3)]
    jobs: usize,
    /// Where worker logs go (default: a temporary folder, kept when a run fails).
    #[arg(long)]
    logs: Option<PathBuf>,
    /// Longest wait for a group's tasks, in seconds.
    #[arg(long, default_value_t = 120)]
    wait_secs: u64,
    /// Skip the mixed-language scenarios.
    #[arg(long)]
    no_mixed: bool,
    /// Also print every run's observed outcome (YAML), to help write expectations.
    #[arg(long)]
    print_observed: bool,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("tasker-crosslang: {e}");
            std::process::exit(2);
        }
    }
}

fn parse_list<T>(names: &[String], parse: fn(&str) -> Option<T>, what: &str) -> Result<Vec<T>, String> {
    names
        .iter()
        .map(|n| parse(n.trim()).ok_or_else(|| format!("unknown {what} `{n}`")))
        .collect()
}

async fn run(args: Args) -> Result<bool, String> {
    let languages = parse_list(&args.languages, Language::parse, "language")?;
    let backends = parse_list(&args.backends, Backend::parse, "backend")?;
    let mut broken = Vec::new();
    for b in &args.broken {
        let (l, callable) = b
            .split_once(':')
            .ok_or_else(|| format!("--break {b}: expected LANGUAGE:CALLABLE"))?;
        let l = Language::parse(l).ok_or_else(|| format!("--break {b}: unknown language `{l}`"))?;
        broken.push((l, callable.to_string()));
    }
    let mut scenarios = scenario::load_all(&args.scenarios).map_err(|e| e.to_string())?;
    if !args.only.is_empty() {
        for name in &args.only {
            if !scenarios.iter().any(|s| &s.name == name) {
                return Err(format!("no scenario `{name}` in {}", args.scenarios.display()));
            }
        }
        scenarios.retain(|s| args.only.contains(&s.name));
    }
    let (mixed, single): (Vec<Arc<Scenario>>, Vec<Arc<Scenario>>) = scenarios.into_iter().partition(|s| s.mixed);

    let mut groups = Vec::new();
    for &backend in &backends {
        if !single.is_empty() {
            for &l in &languages {
                groups.push(GroupSpec {
                    topology: Topology::Single(l),
                    backend,
                    scenarios: single.clone(),
                    broken: broken.clone(),
                });
            }
        }
        if mixed.is_empty() || args.no_mixed {
            continue;
        }
        let needed = mixed_languages(&mixed);
        if needed.iter().all(|l| languages.contains(l)) {
            groups.push(GroupSpec {
                topology: Topology::Processes(needed.clone()),
                backend,
                scenarios: mixed.clone(),
                broken: broken.clone(),
            });
        } else {
            let names: Vec<&str> = needed.iter().map(|l| l.name()).collect();
            eprintln!(
                "note: the mixed scenarios' processes topology needs {}; not all are selected",
                names.join(", ")
            );
        }
        for &host in languages.iter().filter(|l| **l != Language::Rust) {
            groups.push(GroupSpec {
                topology: Topology::Embedded(host),
                backend,
                scenarios: mixed.clone(),
                broken: broken.clone(),
            });
        }
    }
    if groups.is_empty() {
        return Err("nothing to run".into());
    }

    let repo = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let repo = repo.canonicalize().unwrap_or(repo);
    let rust_worker = match args.rust_worker {
        Some(p) => p,
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("crosslang-rust-worker"),
    };
    let tools = Toolchain {
        repo,
        python: args.python,
        ruby: args.ruby,
        node_app: args.node_app,
        rust_worker,
    };
    let temp_logs;
    let log_dir = match args.logs {
        Some(d) => {
            std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
            d
        }
        None => {
            temp_logs = tempfile::Builder::new()
                .prefix("tasker-crosslang-logs-")
                .tempdir()
                .map_err(|e| e.to_string())?;
            temp_logs.path().to_path_buf()
        }
    };
    let options = RunOptions {
        admin_url: args.postgres_url,
        log_dir: log_dir.clone(),
        wait: Duration::from_secs(args.wait_secs),
    };

    let started = Instant::now();
    eprintln!(
        "conformance: {} group(s) ({} scenario(s), {} mixed), {} at a time; logs in {}",
        groups.len(),
        single.len() + mixed.len(),
        mixed.len(),
        args.jobs.max(1),
        log_dir.display()
    );
    let limit = Arc::new(tokio::sync::Semaphore::new(args.jobs.max(1)));
    let mut running = tokio::task::JoinSet::new();
    for (order, g) in groups.into_iter().enumerate() {
        let (tools, options, limit) = (tools.clone(), options.clone(), limit.clone());
        // A group's future borrows its spec across awaits, which rustc cannot prove
        // Send for every lifetime; each group runs on a blocking thread of its own.
        let runtime = tokio::runtime::Handle::current();
        running.spawn_blocking(move || {
            let _slot = runtime.block_on(limit.acquire_owned());
            let t0 = Instant::now();
            let runs = runtime.block_on(group::run_group(&g, &tools, &options));
            let failed = runs.iter().filter(|r| !r.passed()).count();
            eprintln!(
                "  {}/{}: {} case(s) in {:.1} s{}",
                g.topology.label(),
                g.backend,
                runs.len(),
                t0.elapsed().as_secs_f64(),
                if failed > 0 {
                    format!(", {failed} not as expected")
                } else {
                    String::new()
                }
            );
            (order, runs)
        });
    }
    let mut all = Vec::new();
    while let Some(joined) = running.join_next().await {
        all.push(joined.map_err(|e| format!("a group panicked: {e}"))?);
    }
    all.sort_by_key(|(order, _)| *order);
    let mut runs: Vec<_> = all.into_iter().flat_map(|(_, r)| r).collect();
    report::cross_compare(&mut runs);
    if args.print_observed {
        for r in &runs {
            if let Some(o) = &r.observed {
                println!("--- {}/{} · {}", r.scenario, r.case, r.column());
                println!("{}", serde_yaml_ng::to_string(o).unwrap_or_default());
            }
        }
    }
    let (text, ok) = report::render(&runs);
    print!("{text}");
    println!("finished in {:.1} s", started.elapsed().as_secs_f64());
    if !ok {
        // Keep the logs of a failed run for whoever reads the report.
        if let Ok(kept) = tempfile::Builder::new().prefix("tasker-crosslang-logs-").tempdir() {
            let kept = kept.keep();
            let _ = copy_dir(&log_dir, &kept);
            println!("worker logs: {}", kept.display());
        }
    }
    Ok(ok)
}

/// The languages a mixed scenario's steps are routed to, in table order.
fn mixed_languages(mixed: &[Arc<Scenario>]) -> Vec<Language> {
    let mut out: Vec<Language> = Vec::new();
    for s in mixed {
        let t = &s.template.template;
        for ns in t.step_namespaces() {
            if let Some(l) = ns.rsplit('.').next().and_then(Language::parse) {
                if !out.contains(&l) {
                    out.push(l);
                }
            }
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}
