//! The `forge` command: parse arguments, set up logging, dispatch to [`forge::cli`].

use std::process::ExitCode;

use clap::Parser;
use forge::cli::exit::Exit;
use forge::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(cli::args()) {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version on stdout (exit 0) and usage errors on stderr (exit 2).
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Ok
            }
            .into();
        }
    };
    cli::run(cli)
}
