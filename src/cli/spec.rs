//! `forge spec ...` (being built; see the issue tracker).

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List a spec's arguments.
    Args { file: std::path::PathBuf },
}

pub fn run(_cmd: Command) -> ExitCode {
    eprintln!("forge spec: not implemented yet");
    ExitCode::from(2)
}
