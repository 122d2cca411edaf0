//! SIGINT/SIGTERM handling: the first signal cancels the build; later ones are ignored with a
//! message, because the cleanup that follows must finish or resources leak.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

static CLEANING: AtomicBool = AtomicBool::new(false);

/// Marks the span in which cleanup runs, so an interrupt then gets the right message.
pub struct CleanupGuard(());

impl CleanupGuard {
    pub fn enter() -> CleanupGuard {
        CLEANING.store(true, Ordering::SeqCst);
        CleanupGuard(())
    }
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        CLEANING.store(false, Ordering::SeqCst);
    }
}

/// Listen for SIGINT and SIGTERM for the rest of the process and cancel `cancel` on the first.
/// Must be called inside a tokio runtime.
pub fn install(cancel: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        loop {
            let which = tokio::select! {
                Some(()) = int.recv() => "SIGINT",
                Some(()) = term.recv() => "SIGTERM",
                else => break,
            };
            if !cancel.is_cancelled() {
                eprintln!("==> {which} received: stopping and cleaning up");
                cancel.cancel();
            } else if CLEANING.load(Ordering::SeqCst) {
                eprintln!("==> {which} ignored: cleanup is in progress and must finish");
            } else {
                eprintln!("==> {which} ignored: already stopping; cleanup follows");
            }
        }
    });
    Ok(())
}
