//! `forge completions SHELL` and `forge man`: shell completions and manual pages generated from
//! the command-line definition itself (clap_complete, clap_mangen), so they never drift from
//! `--help`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::exit::Exit;
use crate::cli::Cli;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to write completions for (on stdout).
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write forge.1 and one page per subcommand (forge-build.1, ...) into DIR instead of
    /// printing forge.1 on stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Print the completion script for `shell` on stdout.
pub fn completions(args: CompletionsArgs) -> ExitCode {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "forge", &mut out);
    write_stdout(&out)
}

/// Print `forge.1`, or write every page into `--dir`.
pub fn man(args: ManArgs) -> ExitCode {
    let cmd = Cli::command();
    match args.dir {
        None => {
            let mut out = Vec::new();
            if let Err(e) = clap_mangen::Man::new(cmd).render(&mut out) {
                eprintln!("error: rendering the manual page: {e}");
                return Exit::Failed.into();
            }
            write_stdout(&out)
        }
        Some(dir) => match write_pages(&cmd, &dir) {
            Ok(n) => {
                eprintln!("wrote {n} manual pages to {}", dir.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                Exit::Failed.into()
            }
        },
    }
}

fn write_pages(cmd: &clap::Command, dir: &Path) -> anyhow::Result<usize> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = cmd.clone();
    // Subcommand pages need their full names (`forge-build`), which `build` assigns.
    cmd.build();
    let mut n = 0;
    write_tree(&cmd, dir, &mut n)?;
    Ok(n)
}

fn write_tree(cmd: &clap::Command, dir: &Path, n: &mut usize) -> anyhow::Result<()> {
    use anyhow::Context;
    // After `Command::build`, a subcommand's display name is its full name (`forge-build`).
    let name = cmd.get_display_name().unwrap_or(cmd.get_name());
    let path = dir.join(format!("{name}.1"));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut buf)
        .with_context(|| format!("rendering {name}.1"))?;
    std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
    *n += 1;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_tree(sub, dir, n)?;
    }
    Ok(())
}

fn write_stdout(bytes: &[u8]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`forge man | head`) is not worth an error message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: writing to stdout: {e}");
            Exit::Failed.into()
        }
    }
}
