//! The step runner with small purpose-built steps: cleanup order, the failed step's own cleanup,
//! cancellation and deadlines triggering rollback, `--on-error=abort`.

use std::time::Duration;

use async_trait::async_trait;
use forge::pipeline::{sleep_or_cancel, OnError, Outcome, Runner, Step, StepContext};
use tokio_util::sync::CancellationToken;

/// The state bag of these tests: a log of what happened, and what is "created" right now.
#[derive(Default)]
struct Log {
    events: Vec<String>,
    live: Vec<String>,
    cleanup_saw_success: Option<bool>,
}

enum Behaviour {
    Ok,
    Fail,
    /// Wait up to a minute, observing the cancellation token.
    Long,
    /// Wait up to a minute, ignoring the token (a badly written step).
    Stubborn,
}

struct TestStep {
    name: String,
    behaviour: Behaviour,
    cleanup_fails: bool,
}

fn step(name: &str, behaviour: Behaviour) -> Box<dyn Step<Log>> {
    Box::new(TestStep {
        name: name.to_string(),
        behaviour,
        cleanup_fails: false,
    })
}

#[async_trait]
impl Step<Log> for TestStep {
    fn name(&self) -> &str {
        &self.name
    }

    async fn run(&mut self, log: &mut Log, cx: &StepContext) -> anyhow::Result<()> {
        log.events.push(format!("run {}", self.name));
        // Record the "resource" before any wait, as real steps record ids.
        log.live.push(self.name.clone());
        match self.behaviour {
            Behaviour::Ok => Ok(()),
            Behaviour::Fail => anyhow::bail!("{} exploded", self.name),
            Behaviour::Long => {
                sleep_or_cancel(Duration::from_secs(60), &cx.cancel).await?;
                Ok(())
            }
            Behaviour::Stubborn => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(())
            }
        }
    }

    async fn cleanup(&mut self, log: &mut Log, cx: &StepContext) -> anyhow::Result<()> {
        log.events.push(format!("cleanup {}", self.name));
        log.cleanup_saw_success = Some(cx.build_succeeded);
        assert!(!cx.cancel.is_cancelled(), "cleanup must get a live token");
        log.live.retain(|n| n != &self.name);
        if self.cleanup_fails {
            anyhow::bail!("cleanup of {} failed", self.name);
        }
        Ok(())
    }

    fn leftovers(&self, log: &Log) -> Vec<String> {
        log.live
            .iter()
            .filter(|n| **n == self.name)
            .map(|n| format!("resource {n}"))
            .collect()
    }
}

fn events(log: &Log) -> Vec<&str> {
    log.events.iter().map(String::as_str).collect()
}

#[tokio::test]
async fn success_runs_every_step_then_cleans_up_newest_first() {
    let mut steps = vec![
        step("a", Behaviour::Ok),
        step("b", Behaviour::Ok),
        step("c", Behaviour::Ok),
    ];
    let mut log = Log::default();
    let report = Runner::default()
        .run(&mut steps, &mut log, &CancellationToken::new())
        .await;
    assert!(report.outcome.is_success(), "{}", report.outcome);
    assert_eq!(
        events(&log),
        [
            "run a",
            "run b",
            "run c",
            "cleanup c",
            "cleanup b",
            "cleanup a"
        ]
    );
    assert_eq!(log.cleanup_saw_success, Some(true));
    assert_eq!(report.steps.len(), 3);
    assert!(report.is_clean_success());
}

#[tokio::test]
async fn failure_cleans_up_the_failed_step_and_its_predecessors_in_reverse() {
    let mut steps = vec![
        step("a", Behaviour::Ok),
        step("b", Behaviour::Ok),
        step("c", Behaviour::Fail),
        step("d", Behaviour::Ok),
    ];
    let mut log = Log::default();
    let report = Runner::default()
        .run(&mut steps, &mut log, &CancellationToken::new())
        .await;
    match &report.outcome {
        Outcome::Failed { step, error } => {
            assert_eq!(step, "c");
            assert!(error.to_string().contains("c exploded"));
        }
        other => panic!("expected failure, got {other}"),
    }
    assert_eq!(
        events(&log),
        [
            "run a",
            "run b",
            "run c",
            "cleanup c",
            "cleanup b",
            "cleanup a"
        ],
        "d must never run; c's own cleanup must run"
    );
    assert!(log.live.is_empty(), "leaked: {:?}", log.live);
    assert_eq!(log.cleanup_saw_success, Some(false));
}

#[tokio::test]
async fn cancellation_during_a_long_step_rolls_back() {
    let mut steps = vec![
        step("a", Behaviour::Ok),
        step("long", Behaviour::Long),
        step("never", Behaviour::Ok),
    ];
    let mut log = Log::default();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        trigger.cancel();
    });
    let t0 = std::time::Instant::now();
    let report = Runner::default().run(&mut steps, &mut log, &cancel).await;
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "the long step did not stop"
    );
    match &report.outcome {
        Outcome::Cancelled { step } => assert_eq!(step.as_deref(), Some("long")),
        other => panic!("expected cancellation, got {other}"),
    }
    assert_eq!(
        events(&log),
        ["run a", "run long", "cleanup long", "cleanup a"]
    );
    assert!(log.live.is_empty());
}

#[tokio::test]
async fn deadline_cancels_the_running_step_and_rolls_back() {
    let mut steps = vec![step("a", Behaviour::Ok), step("long", Behaviour::Long)];
    let mut log = Log::default();
    let runner = Runner {
        timeout: Some(Duration::from_millis(150)),
        ..Runner::default()
    };
    let report = runner
        .run(&mut steps, &mut log, &CancellationToken::new())
        .await;
    match &report.outcome {
        Outcome::DeadlineExceeded { step } => assert_eq!(step.as_deref(), Some("long")),
        other => panic!("expected deadline, got {other}"),
    }
    assert_eq!(
        events(&log),
        ["run a", "run long", "cleanup long", "cleanup a"]
    );
}

#[tokio::test]
async fn a_step_that_ignores_cancellation_is_dropped_after_the_grace_period() {
    let mut steps = vec![
        step("a", Behaviour::Ok),
        step("stubborn", Behaviour::Stubborn),
    ];
    let mut log = Log::default();
    let cancel = CancellationToken::new();
    let runner = Runner {
        grace: Duration::from_millis(200),
        ..Runner::default()
    };
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        trigger.cancel();
    });
    let t0 = std::time::Instant::now();
    let report = runner.run(&mut steps, &mut log, &cancel).await;
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert!(matches!(report.outcome, Outcome::Cancelled { .. }));
    assert_eq!(
        events(&log),
        ["run a", "run stubborn", "cleanup stubborn", "cleanup a"]
    );
}

#[tokio::test]
async fn cancelled_before_start_runs_nothing() {
    let mut steps = vec![step("a", Behaviour::Ok)];
    let mut log = Log::default();
    let cancel = CancellationToken::new();
    cancel.cancel();
    let report = Runner::default().run(&mut steps, &mut log, &cancel).await;
    assert!(matches!(report.outcome, Outcome::Cancelled { step: None }));
    assert!(log.events.is_empty());
}

#[tokio::test]
async fn a_failing_cleanup_does_not_stop_the_others() {
    let mut steps: Vec<Box<dyn Step<Log>>> = vec![
        step("a", Behaviour::Ok),
        Box::new(TestStep {
            name: "b".into(),
            behaviour: Behaviour::Ok,
            cleanup_fails: true,
        }),
        step("c", Behaviour::Fail),
    ];
    let mut log = Log::default();
    let report = Runner::default()
        .run(&mut steps, &mut log, &CancellationToken::new())
        .await;
    assert_eq!(
        events(&log),
        [
            "run a",
            "run b",
            "run c",
            "cleanup c",
            "cleanup b",
            "cleanup a"
        ]
    );
    let failed: Vec<_> = report
        .cleanups
        .iter()
        .filter(|c| c.error.is_some())
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(failed, ["b"]);
    assert!(!report.is_clean_success());
}

#[tokio::test]
async fn abort_mode_skips_cleanup_and_reports_leftovers() {
    let mut steps = vec![
        step("a", Behaviour::Ok),
        step("b", Behaviour::Ok),
        step("c", Behaviour::Fail),
    ];
    let mut log = Log::default();
    let runner = Runner {
        on_error: OnError::Abort,
        ..Runner::default()
    };
    let report = runner
        .run(&mut steps, &mut log, &CancellationToken::new())
        .await;
    assert_eq!(events(&log), ["run a", "run b", "run c"]);
    assert!(report.cleanups.is_empty());
    assert_eq!(report.leftovers, ["resource a", "resource b", "resource c"]);
}

#[tokio::test]
async fn abort_mode_still_cleans_up_after_success() {
    let mut steps = vec![step("a", Behaviour::Ok)];
    let mut log = Log::default();
    let runner = Runner {
        on_error: OnError::Abort,
        ..Runner::default()
    };
    let report = runner
        .run(&mut steps, &mut log, &CancellationToken::new())
        .await;
    assert!(report.outcome.is_success());
    assert_eq!(events(&log), ["run a", "cleanup a"]);
}
