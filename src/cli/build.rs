//! `forge build TEMPLATE`: load the template, then for each build of each source prepare it
//! (every spec and script loaded, so a broken one fails before anything is created), log in
//! and run it ([`crate::build`]: journal, `--skip-unchanged`, pipeline, manifest, retention);
//! the worst build's exit code is the command's.
//!
//! Exit codes ([`Exit`]): 0 built, 1 the template is invalid or a build failed (its resources
//! cleaned up), 2 usage error, 3 built but the build's `retention {}` failed (the new image is
//! kept), 4 could not log in, 75 another run of the same template holds its lock
//! ([`crate::lock`]; nothing was done), 130 interrupted (SIGINT/SIGTERM; resources cleaned up).
//! With `--skip-unchanged`, when every build was up to date: `--skipped-exit-code` (default 0).

use std::path::PathBuf;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::build::{self, Ended};
use crate::cli::exit::Exit;
use crate::cli::validate::VarArgs;
use crate::lock::{self, LockError};
use crate::names;
use crate::openstack::Clients;
use crate::pipeline::{signals, OnError, Progress};
use crate::template::{self, Build, Source, Template};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The template file (HCL).
    pub template: PathBuf,
    #[command(flatten)]
    pub vars: VarArgs,
    /// On failure: `cleanup` undoes what the build created (default); `abort` leaves it and
    /// prints what was left and how to remove it.
    #[arg(long, value_enum, default_value_t = OnError::Cleanup)]
    pub on_error: OnError,
    /// After provisioning, run every image spec again in test-only mode to prove the result.
    #[arg(long)]
    pub verify: bool,
    /// Extra directories where image-spec scripts are looked up (after the spec's own).
    #[arg(long = "resource-root", value_name = "DIR")]
    pub resource_roots: Vec<PathBuf>,
    /// Journal file of the resources this run creates (default:
    /// `$XDG_STATE_HOME/forge/runs/<run-id>.jsonl`).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Before creating anything, look in Glance for an active image of this project built from
    /// the same inputs (property `forge_fingerprint`); if there is one, build nothing, print it
    /// and record it in the manifest with `"skipped": true`.
    #[arg(long)]
    pub skip_unchanged: bool,
    /// Exit code when `--skip-unchanged` skipped every build (default 0), for schedulers that
    /// want to tell a skipped night from a built one.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        requires = "skip_unchanged"
    )]
    pub skipped_exit_code: u8,
}

pub fn run(args: Args, progress: Progress) -> ExitCode {
    let template = match template::load(&args.template, &args.vars.load_options()) {
        Ok(t) => t,
        Err(diags) => {
            eprintln!("{diags}");
            // As `forge validate`: 1 for an invalid template, 2 for an unreadable one.
            return Exit::of_diagnostics(&diags).into();
        }
    };
    // Held until the process exits: the kernel releases it however the run ends.
    let _lock = match lock::acquire(&args.template) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("forge build: {e}");
            let busy = matches!(e, LockError::Busy { .. });
            return if busy { Exit::Locked } else { Exit::Failed }.into();
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("forge build: cannot start the async runtime: {e}");
            return Exit::Failed.into();
        }
    };
    let opts = build::Options {
        on_error: args.on_error,
        verify: args.verify,
        resource_roots: args.resource_roots.clone(),
        journal: args.journal.clone(),
        skip_unchanged: args.skip_unchanged,
    };
    runtime.block_on(async move {
        let cancel = CancellationToken::new();
        if let Err(e) = signals::install(cancel.clone()) {
            eprintln!("forge build: cannot install signal handlers: {e}");
            return Exit::Failed.into();
        }
        let (mut code, mut ran, mut skipped) = (Exit::Ok, 0, 0);
        for b in &template.builds {
            for source_ref in &b.sources {
                let Some(src) = template.source(source_ref) else {
                    code = code.max(Exit::Failed);
                    continue;
                };
                match build_one(&opts, &template, b, src, &progress, &cancel).await {
                    None => skipped += 1,
                    Some(c) => (code, ran) = (code.max(c), ran + 1),
                }
                if cancel.is_cancelled() {
                    return code.into();
                }
            }
        }
        if code == Exit::Ok && ran == 0 && skipped > 0 {
            code = Exit::Skipped(args.skipped_exit_code);
        }
        code.into()
    })
}

/// One build of one source: prepare (specs and scripts loaded), log in, run. `None`:
/// `--skip-unchanged` found it up to date.
async fn build_one(
    opts: &build::Options,
    template: &Template,
    b: &Build,
    src: &Source,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Option<Exit> {
    let label = names::build_label(b, src);
    let run_id = uuid::Uuid::new_v4().to_string();
    progress.println(&format!("==> build {label} (run {run_id})"));
    let fail = |e: anyhow::Error| {
        let msg = template.redact(&format!("{e:#}"));
        eprintln!("forge build: {label}: {msg}");
        Some(Exit::of_error(&e))
    };
    let prepared = match build::prepare(opts, template, b, src, &run_id) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    match Clients::connect(src.auth()).await {
        Ok(clients) => exit_of(prepared.run(opts, &clients, progress, cancel).await),
        Err(e) => fail(e.into()),
    }
}

/// A build's exit status (`None`: skipped): built, failed (or built but a cleanup failed),
/// built but its retention failed, interrupted.
fn exit_of(ended: Ended) -> Option<Exit> {
    Some(match ended {
        Ended::Skipped => return None,
        Ended::Built { clean: false, .. } | Ended::Failed => Exit::Failed,
        Ended::Built {
            retention_ok: false,
            ..
        } => Exit::RetentionFailed,
        Ended::Built { .. } => Exit::Ok,
        Ended::Interrupted => Exit::Interrupted,
    })
}

#[cfg(test)]
mod tests {
    use super::{exit_of, Ended, Exit};

    #[test]
    fn how_a_build_ended_maps_to_the_documented_codes() {
        let built = |clean, retention_ok| Ended::Built {
            clean,
            retention_ok,
        };
        assert_eq!(exit_of(built(true, true)), Some(Exit::Ok));
        assert_eq!(exit_of(built(false, true)), Some(Exit::Failed));
        assert_eq!(exit_of(built(false, false)), Some(Exit::Failed));
        assert_eq!(exit_of(built(true, false)), Some(Exit::RetentionFailed));
        assert_eq!(exit_of(Ended::Failed), Some(Exit::Failed));
        assert_eq!(exit_of(Ended::Interrupted), Some(Exit::Interrupted));
        assert_eq!(exit_of(Ended::Skipped), None);
    }
}
