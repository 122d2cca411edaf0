//! `forge check` / `forge reconcile` (being built; see the issue tracker).

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image spec.
    #[arg(long)]
    pub spec: std::path::PathBuf,
}

pub fn run(_args: Args, _test_only: bool) -> ExitCode {
    eprintln!("forge check: not implemented yet");
    ExitCode::from(2)
}
