//! `forge spec ...`: inspect image specs.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::exit::Exit;

use crate::spec::{self, Spec};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List a spec's arguments: name, description, default, required, choices (hidden ones are
    /// left out). Loads the whole spec, so it also reports every spec error.
    Args {
        /// The image spec (YAML).
        file: PathBuf,
        /// Extra directory to look for scripts in, after the spec's own directory (repeatable).
        #[arg(long = "resource-root", value_name = "DIR")]
        resource_roots: Vec<PathBuf>,
    },
}

pub fn run(cmd: Command) -> ExitCode {
    match cmd {
        Command::Args {
            file,
            resource_roots,
        } => match spec::load(&file, &resource_roots) {
            Ok(spec) => {
                print!("{}", format_arguments(&spec));
                Exit::Ok.into()
            }
            Err(e) => {
                eprintln!("{e}");
                Exit::Usage.into()
            }
        },
    }
}

/// The argument listing: one block per visible argument, in declaration order.
pub fn format_arguments(spec: &Spec) -> String {
    let mut out = String::new();
    let visible: Vec<_> = spec.arguments().iter().filter(|a| !a.hidden).collect();
    if visible.is_empty() {
        let _ = writeln!(out, "{}: no arguments", spec.path().display());
        return out;
    }
    for arg in visible {
        let required = if arg.required { "  (required)" } else { "" };
        let _ = writeln!(out, "{}{required}", arg.name);
        if let Some(d) = &arg.description {
            let _ = writeln!(out, "    {}", d.trim());
        }
        if let Some(d) = &arg.default {
            let _ = writeln!(out, "    default: {d}");
        }
        if !arg.choices.is_empty() {
            let _ = writeln!(out, "    choices: {}", arg.choices.join(", "));
        }
    }
    out
}
