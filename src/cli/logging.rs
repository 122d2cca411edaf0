//! tracing-subscriber setup: `-q`, `-v`, `-vv`, or a `FORGE_LOG` filter; lines go to stderr
//! through [`Progress`] so they never tear a progress bar.

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::pipeline::Progress;

/// Install the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init(verbose: u8, quiet: bool, progress: Progress) {
    let default = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "forge=debug,info",
        (false, _) => "forge=trace,debug",
    };
    let filter = std::env::var("FORGE_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(verbose > 0)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_writer(ProgressWriter(progress))
        .try_init();
}

#[derive(Clone)]
struct ProgressWriter(Progress);

impl std::io::Write for ProgressWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_stderr(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for ProgressWriter {
    type Writer = ProgressWriter;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
