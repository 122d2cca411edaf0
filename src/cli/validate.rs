//! `forge validate TEMPLATE`: check a template offline and report every problem at once.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::exit::Exit;

use crate::template::{self, CheckLevel, LoadOptions};

/// Where template variables come from; shared by every command that loads a template.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct VarArgs {
    /// Set a template variable (repeatable; later wins). Also accepted as `-var`.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read variable values from an HCL file of `name = value` lines (repeatable; later wins,
    /// `--var` wins over all). Also accepted as `-var-file`.
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
}

impl VarArgs {
    /// The load options these flags describe, plus this process's `FORGE_VAR_*` variables.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            vars: self.vars.clone(),
            var_files: self.var_files.clone(),
            env: Vec::new(),
        }
        .with_process_env()
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The template file (HCL).
    pub template: PathBuf,
    /// Stop after checking HCL syntax.
    #[arg(long)]
    pub syntax_only: bool,
    /// Print the result as JSON on stdout: {"valid", "errors", "diagnostics": [...]}.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub vars: VarArgs,
}

/// Exit 0 when valid, 1 when the template has problems, 2 on usage or unreadable input.
pub fn run(args: Args) -> ExitCode {
    let level = if args.syntax_only {
        CheckLevel::Syntax
    } else {
        CheckLevel::Full
    };
    let diags = template::check(&args.template, &args.vars.load_options(), level);
    if args.json {
        println!("{}", diags.to_json());
    } else if diags.is_empty() {
        let what = if args.syntax_only {
            "syntax is valid"
        } else {
            "valid"
        };
        println!("{}: {what}", args.template.display());
    } else {
        eprintln!("{diags}");
        let n = diags.len();
        eprintln!(
            "\nforge validate: {n} problem{} in {}",
            if n == 1 { "" } else { "s" },
            args.template.display()
        );
    }
    Exit::of_diagnostics(&diags).into()
}
