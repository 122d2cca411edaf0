//! The one wait loop every client uses: bounded by a timeout, cancellable, polling adaptively
//! (first poll after ~150 ms, then ×1.5 up to a cap, each interval jittered ±20 % so parallel
//! builds do not poll in lockstep), with a spinner that shows the last state seen.

use std::future::Future;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::error::Error;
use crate::pipeline::Progress;

/// How long and how often to poll.
#[derive(Debug, Clone, Copy)]
pub struct WaitOptions {
    /// Give up after this long.
    pub timeout: Duration,
    /// First interval between polls.
    pub initial: Duration,
    /// Intervals grow to at most this.
    pub max_interval: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            timeout: Duration::from_secs(600),
            initial: Duration::from_millis(150),
            max_interval: Duration::from_secs(3),
        }
    }
}

impl WaitOptions {
    /// The defaults with another timeout.
    pub fn with_timeout(timeout: Duration) -> Self {
        WaitOptions {
            timeout,
            ..Default::default()
        }
    }
}

/// What one poll saw.
#[derive(Debug)]
pub enum Poll<T> {
    /// The wait is over.
    Done(T),
    /// Not yet; the text is the state seen (shown on the spinner and in a timeout error).
    Pending(String),
    /// A terminal state: the wait fails with this reason.
    Failed(String),
}

/// Poll until `poll` says done or failed, the timeout passes, or `cancel` fires. Transient
/// errors (no answer, 5xx) count as "still pending" until the deadline; others end the wait.
pub async fn wait_for<T, F, Fut>(
    what: &str,
    opts: WaitOptions,
    cancel: &CancellationToken,
    progress: &Progress,
    mut poll: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>, Error>>,
{
    let started = Instant::now();
    let line = progress.spinner(&format!("waiting for {what}"));
    let mut interval = opts.initial;
    let mut last = String::from("(not polled yet)");
    let result = loop {
        match poll().await {
            Ok(Poll::Done(v)) => break Ok(v),
            Ok(Poll::Failed(reason)) => {
                break Err(Error::Failed {
                    what: what.to_string(),
                    reason,
                })
            }
            Ok(Poll::Pending(state)) => {
                if state != last {
                    line.set_message(&format!("  waiting for {what}: {state}"));
                }
                last = state;
            }
            Err(e) if e.is_transient() => {
                tracing::debug!("transient error while waiting for {what}: {e}");
                last = format!("transient error: {e}");
            }
            Err(e) => break Err(e),
        }
        let elapsed = started.elapsed();
        if elapsed >= opts.timeout {
            break Err(Error::Timeout {
                what: what.to_string(),
                timeout: opts.timeout,
                last,
            });
        }
        let jitter = rand::thread_rng().gen_range(0.8..1.2);
        let sleep = interval.mul_f64(jitter).min(opts.timeout - elapsed);
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = cancel.cancelled() => break Err(Error::Cancelled { what: what.to_string() }),
        }
        interval = interval.mul_f64(1.5).min(opts.max_interval);
    };
    line.finish(result.is_ok(), started.elapsed());
    result
}

/// Run an idempotent request (a DELETE) again while it fails with an error `retry` accepts
/// (always: transient ones, see [`Error::is_transient`]), backing off with jitter, for at most
/// `budget`. Cleanup uses this: a 5xx from a busy service must not leak a resource.
pub async fn retry_idempotent<T, F, Fut>(
    budget: Duration,
    retry: impl Fn(&Error) -> bool,
    mut op: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let deadline = Instant::now() + budget;
    let mut pause = Duration::from_millis(200);
    loop {
        match op().await {
            Err(e) if (e.is_transient() || retry(&e)) && Instant::now() < deadline => {
                tracing::debug!("retrying after: {e}");
                let jitter = rand::thread_rng().gen_range(0.8..1.2);
                tokio::time::sleep(pause.mul_f64(jitter)).await;
                pause = pause.mul_f64(1.5).min(Duration::from_secs(3));
            }
            other => return other,
        }
    }
}

/// A cleanup DELETE: [`retry_idempotent`], then `Ok(true)` when it deleted, `Ok(false)` when the
/// resource was already gone (404).
pub async fn delete_idempotent<T, F, Fut>(
    budget: Duration,
    retry: impl Fn(&Error) -> bool,
    op: F,
) -> Result<bool, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    match retry_idempotent(budget, retry, op).await {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast(timeout_ms: u64) -> WaitOptions {
        WaitOptions {
            timeout: Duration::from_millis(timeout_ms),
            initial: Duration::from_millis(5),
            max_interval: Duration::from_millis(20),
        }
    }

    #[tokio::test]
    async fn done_after_some_pending_polls() {
        let mut n = 0;
        let v = wait_for(
            "x",
            fast(5_000),
            &CancellationToken::new(),
            &Progress::hidden(),
            || {
                n += 1;
                let n = n;
                async move {
                    Ok(if n < 4 {
                        Poll::Pending(format!("poll {n}"))
                    } else {
                        Poll::Done(n)
                    })
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(v, 4);
    }

    #[tokio::test]
    async fn terminal_state_fails_timeout_reports_last_state_cancel_stops() {
        let e = wait_for::<(), _, _>(
            "server s",
            fast(5_000),
            &CancellationToken::new(),
            &Progress::hidden(),
            || async { Ok(Poll::Failed("ERROR: no valid host".into())) },
        )
        .await
        .unwrap_err();
        assert_eq!(e.to_string(), "server s failed: ERROR: no valid host");

        let e = wait_for::<(), _, _>(
            "image i",
            fast(60),
            &CancellationToken::new(),
            &Progress::hidden(),
            || async { Ok(Poll::Pending("saving".into())) },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, Error::Timeout { ref last, .. } if last == "saving"),
            "{e}"
        );

        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            c2.cancel();
        });
        let t0 = Instant::now();
        let e = wait_for::<(), _, _>("x", fast(60_000), &cancel, &Progress::hidden(), || async {
            Ok(Poll::Pending("p".into()))
        })
        .await
        .unwrap_err();
        assert!(matches!(e, Error::Cancelled { .. }), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(5));
    }
}
