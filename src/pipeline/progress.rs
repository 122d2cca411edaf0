//! Progress for humans: one indicatif line per running step and spinners for waits when stderr
//! is a terminal; plain log lines otherwise (CI, timers, pipes); nothing with `--quiet`.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone)]
enum Mode {
    Bars(MultiProgress),
    Plain,
    Hidden,
}

/// Where progress goes. Cheap to clone; all clones draw on the same terminal area.
#[derive(Clone)]
pub struct Progress {
    mode: Arc<Mode>,
}

impl Progress {
    /// Bars when stderr is a terminal, plain lines otherwise; hidden when `quiet`.
    pub fn for_stderr(quiet: bool) -> Progress {
        let mode = if quiet {
            Mode::Hidden
        } else if std::io::stderr().is_terminal() {
            Mode::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        } else {
            Mode::Plain
        };
        Progress {
            mode: Arc::new(mode),
        }
    }

    /// Plain lines on stderr, whatever stderr is.
    pub fn plain() -> Progress {
        Progress {
            mode: Arc::new(Mode::Plain),
        }
    }

    /// No output at all (tests, `--quiet`).
    pub fn hidden() -> Progress {
        Progress {
            mode: Arc::new(Mode::Hidden),
        }
    }

    /// Print a line without tearing the bars.
    pub fn println(&self, line: &str) {
        match &*self.mode {
            Mode::Bars(m) => {
                let _ = m.println(line);
            }
            Mode::Plain => eprintln!("{line}"),
            Mode::Hidden => {}
        }
    }

    /// Write raw bytes to stderr (used by the log writer) without tearing the bars.
    pub fn write_stderr(&self, buf: &[u8]) {
        let write = || {
            let _ = std::io::stderr().write_all(buf);
        };
        match &*self.mode {
            Mode::Bars(m) => m.suspend(write),
            _ => write(),
        }
    }

    /// A step started: a spinner line with its elapsed time, or a `==> name` log line.
    pub fn step_started(&self, name: &str) -> Line {
        self.line(name.to_string(), true)
    }

    /// A wait inside a step (`waiting for server ACTIVE`): a spinner with the elapsed time.
    pub fn spinner(&self, message: &str) -> Line {
        self.line(format!("  {message}"), false)
    }

    fn line(&self, message: String, step: bool) -> Line {
        let bar = match &*self.mode {
            Mode::Bars(m) => {
                let bar = m.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner:.cyan} {msg} [{elapsed}]")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(message.clone());
                bar.enable_steady_tick(Duration::from_millis(100));
                Some(bar)
            }
            Mode::Plain => {
                if step {
                    eprintln!("==> {message}");
                } else {
                    eprintln!("    {}", message.trim_start());
                }
                None
            }
            Mode::Hidden => None,
        };
        Line {
            bar,
            message,
            plain: matches!(&*self.mode, Mode::Plain),
        }
    }
}

/// A step's or a wait's line; finish it with the result.
pub struct Line {
    bar: Option<ProgressBar>,
    message: String,
    plain: bool,
}

impl Line {
    pub fn set_message(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
        }
    }

    pub fn finish(self, ok: bool, elapsed: Duration) {
        let mark = if ok { "✓" } else { "✗" };
        let text = format!(
            "{mark} {} ({:.1}s)",
            self.message.trim_start(),
            elapsed.as_secs_f64()
        );
        if let Some(bar) = &self.bar {
            bar.set_style(
                ProgressStyle::with_template("{msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.finish_with_message(text);
        } else if self.plain {
            eprintln!("    {text}");
        }
    }
}
