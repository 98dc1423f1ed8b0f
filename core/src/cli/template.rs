//! `tasker template validate|visualize`.

use super::{CliError, EXIT_OK};
use crate::template::mermaid::to_mermaid;
use crate::template::{load_file, HandlerLookup, TemplateRegistry};
use clap::Subcommand;
use std::path::PathBuf;

/// `tasker template …`
#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Check a template file or every template in a folder; report every problem.
    Validate {
        /// A YAML file or a folder of them.
        path: PathBuf,
        /// Also report handlers that the built-in Rust worker does not know.
        #[arg(long)]
        check_handlers: bool,
    },
    /// Print a template's DAG as a Mermaid graph.
    Visualize {
        /// A YAML file.
        path: PathBuf,
    },
}

/// Runs a `tasker template` subcommand.
pub fn run(cmd: TemplateCommand) -> Result<i32, CliError> {
    match cmd {
        TemplateCommand::Validate { path, check_handlers } => {
            let handlers = crate::examples::registry();
            let lookup: Option<&dyn HandlerLookup> = if check_handlers { Some(&handlers) } else { None };
            if path.is_dir() {
                let registry =
                    TemplateRegistry::load_dir(&path, lookup).map_err(|e| CliError::BadInput(e.to_string()))?;
                for t in registry.list() {
                    super::output::line(format!(
                        "ok  {}/{}@{}  ({})",
                        t.template.namespace, t.template.name, t.template.version, t.origin
                    ));
                }
                super::output::line(format!("{} template(s) valid", registry.list().len()));
            } else if path.is_file() {
                let t = load_file(&path, lookup).map_err(|e| CliError::BadInput(e.to_string()))?;
                super::output::line(format!(
                    "ok  {}/{}@{}  ({})",
                    t.template.namespace, t.template.name, t.template.version, t.origin
                ));
            } else {
                return Err(CliError::BadInput(format!(
                    "`{}` is neither a file nor a folder",
                    path.display()
                )));
            }
            Ok(EXIT_OK)
        }
        TemplateCommand::Visualize { path } => {
            let t = load_file(&path, None).map_err(|e| CliError::BadInput(e.to_string()))?;
            super::output::line(to_mermaid(&t.template).trim_end());
            Ok(EXIT_OK)
        }
    }
}
