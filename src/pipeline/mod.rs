//! The step runner: steps share a typed state bag, and every step whose `run` started gets its
//! `cleanup` called, newest first, when a step fails, the build is cancelled (SIGINT/SIGTERM) or
//! the build's deadline passes.
//!
//! The runner is generic over the state bag `S`, so the compiler checks who reads what: the
//! OpenStack build uses [`crate::steps::BuildState`], tests use small purpose-built states.

pub mod progress;
pub mod signals;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

pub use progress::Progress;

/// What a step gets besides the state bag.
#[derive(Clone)]
pub struct StepContext {
    /// Cancelled on SIGINT/SIGTERM or when the deadline passes. Waits inside steps must observe
    /// it. During cleanup this token is never cancelled: cleanup must finish.
    pub cancel: CancellationToken,
    pub progress: Progress,
    /// In `cleanup`: whether the build succeeded (a snapshot is kept only then). False in `run`.
    pub build_succeeded: bool,
}

/// One stage of a build. `run` does the work and records what it created in the state bag the
/// moment an API returns its id, so that `cleanup` can undo even a half-finished run.
#[async_trait]
pub trait Step<S: Send>: Send {
    /// Short name shown in progress and reports (`boot server`).
    fn name(&self) -> &str;

    async fn run(&mut self, state: &mut S, cx: &StepContext) -> anyhow::Result<()>;

    /// Undo what `run` created. Called for every step whose `run` started, the failed one
    /// included; must be idempotent and tolerate what `run` never got to create.
    async fn cleanup(&mut self, _state: &mut S, _cx: &StepContext) -> anyhow::Result<()> {
        Ok(())
    }

    /// With `--on-error=abort`: what this step left behind, one line each, with ids.
    fn leftovers(&self, _state: &S) -> Vec<String> {
        Vec::new()
    }
}

/// What to do when the build does not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnError {
    /// Run the cleanup of every started step, newest first (the default).
    #[default]
    Cleanup,
    /// Skip cleanup and print what was left behind, for debugging.
    Abort,
}

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    Succeeded,
    Failed { step: String, error: anyhow::Error },
    Cancelled { step: Option<String> },
    DeadlineExceeded { step: Option<String> },
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Succeeded)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = |s: &Option<String>| match s {
            Some(s) => format!(" during step '{s}'"),
            None => String::new(),
        };
        match self {
            Outcome::Succeeded => write!(f, "build succeeded"),
            Outcome::Failed { step, error } => write!(f, "step '{step}' failed: {error:#}"),
            Outcome::Cancelled { step } => write!(f, "build cancelled{}", at(step)),
            Outcome::DeadlineExceeded { step } => write!(f, "build deadline exceeded{}", at(step)),
        }
    }
}

/// Timing and result of one step's run.
#[derive(Debug, Clone)]
pub struct StepRecord {
    pub name: String,
    pub duration: Duration,
    pub ok: bool,
}

/// Result of one step's cleanup.
#[derive(Debug, Clone)]
pub struct CleanupRecord {
    pub name: String,
    pub duration: Duration,
    /// `None` when the cleanup succeeded; the error text otherwise.
    pub error: Option<String>,
}

/// Everything the runner observed, for the summary and the manifest.
#[derive(Debug)]
pub struct Report {
    pub outcome: Outcome,
    pub steps: Vec<StepRecord>,
    pub cleanups: Vec<CleanupRecord>,
    /// With `--on-error=abort`: what the started steps left behind.
    pub leftovers: Vec<String>,
}

impl Report {
    /// True when the build succeeded and every cleanup that ran succeeded.
    pub fn is_clean_success(&self) -> bool {
        self.outcome.is_success() && self.cleanups.iter().all(|c| c.error.is_none())
    }
}

/// Runs steps in order and rolls back on failure, cancellation or deadline.
#[derive(Clone)]
pub struct Runner {
    pub on_error: OnError,
    /// The whole build must finish within this; past it the running step is cancelled.
    pub timeout: Option<Duration>,
    /// How long a cancelled step may take to notice its token and return before it is dropped.
    pub grace: Duration,
    pub progress: Progress,
}

impl Default for Runner {
    fn default() -> Self {
        Runner {
            on_error: OnError::Cleanup,
            timeout: None,
            grace: Duration::from_secs(30),
            progress: Progress::hidden(),
        }
    }
}

impl Runner {
    /// Run `steps` over `state`. `cancel` is the build's interrupt (see [`signals`]).
    pub async fn run<S: Send>(
        &self,
        steps: &mut [Box<dyn Step<S>>],
        state: &mut S,
        cancel: &CancellationToken,
    ) -> Report {
        // The steps see `build`: cancelled by an interrupt (through the parent) or the deadline.
        let build = cancel.child_token();
        let deadline_hit = Arc::new(AtomicBool::new(false));
        let deadline_task = self.timeout.map(|t| {
            let (build, hit) = (build.clone(), deadline_hit.clone());
            tokio::spawn(async move {
                tokio::time::sleep(t).await;
                hit.store(true, Ordering::SeqCst);
                build.cancel();
            })
        });
        let stopped_outcome = |step: Option<String>| {
            if deadline_hit.load(Ordering::SeqCst) {
                Outcome::DeadlineExceeded { step }
            } else {
                Outcome::Cancelled { step }
            }
        };

        let cx = StepContext {
            cancel: build.clone(),
            progress: self.progress.clone(),
            build_succeeded: false,
        };
        let mut records = Vec::new();
        let mut started = 0;
        let mut outcome = Outcome::Succeeded;
        for step in steps.iter_mut() {
            if build.is_cancelled() {
                outcome = stopped_outcome(None);
                break;
            }
            let name = step.name().to_string();
            started += 1;
            let line = self.progress.step_started(&name);
            let t0 = Instant::now();
            let result = run_observing(step.as_mut(), state, &cx, self.grace).await;
            let duration = t0.elapsed();
            let ok = result.is_ok() && !build.is_cancelled();
            line.finish(ok, duration);
            records.push(StepRecord {
                name: name.clone(),
                duration,
                ok,
            });
            if build.is_cancelled() {
                // Whatever the step returned, the build was interrupted while it ran.
                outcome = stopped_outcome(Some(name));
                break;
            }
            if let Err(error) = result {
                outcome = Outcome::Failed { step: name, error };
                break;
            }
        }
        if let Some(task) = deadline_task {
            task.abort();
        }

        let mut cleanups = Vec::new();
        let mut leftovers = Vec::new();
        let started_steps = &mut steps[..started];
        match (outcome.is_success(), self.on_error) {
            (false, OnError::Abort) => {
                for step in started_steps.iter() {
                    leftovers.extend(step.leftovers(state));
                }
            }
            // As in Packer, cleanup runs on success too: the temporary keypair and server go
            // away either way; steps that keep their work on success (the snapshot) look at
            // `build_succeeded`.
            _ => {
                let _cleaning = signals::CleanupGuard::enter();
                let ccx = StepContext {
                    cancel: CancellationToken::new(),
                    progress: self.progress.clone(),
                    build_succeeded: outcome.is_success(),
                };
                for step in started_steps.iter_mut().rev() {
                    let name = step.name().to_string();
                    let t0 = Instant::now();
                    let error = match step.cleanup(state, &ccx).await {
                        Ok(()) => None,
                        Err(e) => {
                            tracing::error!("cleanup of step '{name}' failed: {e:#}");
                            Some(format!("{e:#}"))
                        }
                    };
                    cleanups.push(CleanupRecord {
                        name,
                        duration: t0.elapsed(),
                        error,
                    });
                }
            }
        }
        Report {
            outcome,
            steps: records,
            cleanups,
            leftovers,
        }
    }
}

/// Run one step; when the build is cancelled, give the step `grace` to notice its token and
/// return (so it can record an id that is in flight), then drop it.
async fn run_observing<S: Send>(
    step: &mut dyn Step<S>,
    state: &mut S,
    cx: &StepContext,
    grace: Duration,
) -> anyhow::Result<()> {
    let fut = step.run(state, cx);
    tokio::pin!(fut);
    tokio::select! {
        r = &mut fut => return r,
        _ = cx.cancel.cancelled() => {}
    }
    match tokio::time::timeout(grace, &mut fut).await {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!(
            "did not stop within {grace:?} of being cancelled"
        )),
    }
}

/// Sleep for `d` unless `cancel` fires first; returns `Err` when cancelled. Waits inside steps use
/// this (or select on the token themselves).
pub async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) -> Result<(), Cancelled> {
    tokio::select! {
        _ = tokio::time::sleep(d) => Ok(()),
        _ = cancel.cancelled() => Err(Cancelled),
    }
}

/// A wait or a step noticed its cancellation token.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;
