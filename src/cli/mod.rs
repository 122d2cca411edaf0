//! Thin command layer: each subcommand parses its arguments and calls into the library.
//!
//! Exit codes: one table for every command, [`exit::Exit`].

pub mod build;
pub mod check;
pub mod cleanup;
pub mod docs;
pub mod exit;
pub mod images;
pub mod logging;
pub mod pack;
pub mod spec;
pub mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// forge: build OpenStack images from HCL templates and Sahara image specs.
#[derive(Debug, Parser)]
#[command(name = "forge", version, about, propagate_version = true, after_help = exit::TABLE)]
pub struct Cli {
    /// More output (-v debug, -vv trace). FORGE_LOG takes a tracing filter for finer control.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image from a template: boot, provision over SSH, snapshot, publish.
    Build(build::Args),
    /// Check a template offline: syntax, types, references, spec files. No network.
    Validate(validate::Args),
    /// Run an image spec in test-only mode against a host over SSH (changes nothing).
    Check(check::Args),
    /// Run an image spec in reconcile mode against a host over SSH.
    Reconcile(check::Args),
    /// Inspect image specs.
    #[command(subcommand)]
    Spec(spec::Command),
    /// Run an image spec against a disk image offline through libguestfs.
    Pack(pack::Args),
    /// Delete what killed or failed builds left in the cloud (dry run unless --yes).
    Cleanup(cleanup::Args),
    /// A build's published images: list, prune (retention), promote (channel tags).
    #[command(subcommand)]
    Images(images::Command),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(docs::CompletionsArgs),
    /// Print the manual page on stdout, or write every page with --dir DIR.
    Man(docs::ManArgs),
}

/// The process arguments with Packer's single-dash `-var`/`-var-file` spelled `--var`/`--var-file`
/// (clap would read `-var` as `-v -a -r`). Nothing after `--` is touched.
pub fn args() -> Vec<std::ffi::OsString> {
    let mut out = Vec::new();
    let mut rest = false;
    for a in std::env::args_os() {
        let s = a.to_str().unwrap_or("");
        if rest || s == "--" {
            rest = true;
            out.push(a);
        } else if s == "-var"
            || s == "-var-file"
            || s.starts_with("-var=")
            || s.starts_with("-var-file=")
        {
            out.push(format!("-{s}").into());
        } else {
            out.push(a);
        }
    }
    out
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let progress = crate::pipeline::Progress::for_stderr(cli.quiet);
    logging::init(cli.verbose, cli.quiet, progress.clone());
    match cli.command {
        Command::Build(args) => build::run(args, progress),
        Command::Validate(args) => validate::run(args),
        Command::Check(args) => check::run(args, true),
        Command::Reconcile(args) => check::run(args, false),
        Command::Spec(cmd) => spec::run(cmd),
        Command::Pack(args) => pack::run(args, progress),
        Command::Cleanup(args) => cleanup::run(args, progress),
        Command::Images(cmd) => images::run(cmd),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
    }
}
