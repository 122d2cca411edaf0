//! `forge validate` (being built; see the issue tracker).

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The input file.
    pub file: std::path::PathBuf,
}

pub fn run(_args: Args) -> ExitCode {
    eprintln!("forge validate: not implemented yet");
    ExitCode::from(2)
}
