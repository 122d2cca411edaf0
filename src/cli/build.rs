//! `forge build TEMPLATE`: load the template, then for each build of each source prepare it
//! (every spec and script loaded, so a broken one fails before anything is created), log in
//! and run it ([`crate::build`]: journal, `--skip-unchanged`, pipeline, manifest, retention);
//! the worst build's exit code is the command's.
//!
//! Exit codes: 0 built, 1 the template is invalid or a build failed (its resources cleaned up),
//! 2 usage error, 3 built but the build's `retention {}` failed (the new image is kept),
//! 75 another run of the same template holds its lock ([`crate::lock`]; nothing
//! was done), 130 interrupted (SIGINT/SIGTERM; resources cleaned up). With `--skip-unchanged`,
//! when every build was up to date: `--skipped-exit-code` (default 0).

use std::path::PathBuf;
use std::process::ExitCode;

use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::build::{self, Ended};
use crate::cli::validate::VarArgs;
use crate::lock::{self, LockError};
use crate::names;
use crate::openstack::compute::ComputeClient;
use crate::openstack::image::ImageClient;
use crate::openstack::network::NetworkClient;
use crate::openstack::{CloudConfig, ConfigEnv, Session};
use crate::pipeline::{signals, OnError, Progress};
use crate::steps::Clients;
use crate::template::{self, Auth, Build, Source, Template};

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

/// Exit code when another run of the same template holds the lock (sysexits' EX_TEMPFAIL:
/// try again later).
pub const EXIT_LOCKED: u8 = 75;

pub fn run(args: Args, progress: Progress) -> ExitCode {
    let template = match template::load(&args.template, &args.vars.load_options()) {
        Ok(t) => t,
        Err(diags) => {
            eprintln!("{diags}");
            // As `forge validate`: 1 for an invalid template, 2 for an unreadable one.
            return ExitCode::from(diags.exit_code());
        }
    };
    // Held until the process exits: the kernel releases it however the run ends.
    let _lock = match lock::acquire(&args.template) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("forge build: {e}");
            let busy = matches!(e, LockError::Busy { .. });
            return ExitCode::from(if busy { EXIT_LOCKED } else { 1 });
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("forge build: cannot start the async runtime: {e}");
            return ExitCode::from(1);
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
            return ExitCode::from(1);
        }
        let (mut code, mut ran, mut skipped) = (0u8, 0, 0);
        for b in &template.builds {
            for source_ref in &b.sources {
                let Some(src) = template.source(source_ref) else {
                    code = code.max(1);
                    continue;
                };
                match build_one(&opts, &template, b, src, &progress, &cancel).await {
                    Ended::Skipped => skipped += 1,
                    ended => (code, ran) = (worst(code, exit_code(ended)), ran + 1),
                }
                if cancel.is_cancelled() {
                    return ExitCode::from(code);
                }
            }
        }
        if code == 0 && ran == 0 && skipped > 0 {
            code = args.skipped_exit_code;
        }
        ExitCode::from(code)
    })
}

/// One build of one source: prepare (specs and scripts loaded), log in, run.
async fn build_one(
    opts: &build::Options,
    template: &Template,
    b: &Build,
    src: &Source,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Ended {
    let label = names::build_label(b, src);
    let run_id = uuid::Uuid::new_v4().to_string();
    progress.println(&format!("==> build {label} (run {run_id})"));
    let fail = |e: anyhow::Error| {
        let e = template.redact(&format!("{e:#}"));
        eprintln!("forge build: {label}: {e}");
        Ended::Failed
    };
    let prepared = match build::prepare(opts, template, b, src, &run_id) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    match connect(src.auth()).await {
        Ok(clients) => prepared.run(opts, &clients, progress, cancel).await,
        Err(e) => fail(e),
    }
}

/// Exit code: the image was built, but applying the build's `retention {}` failed.
pub const RETENTION_FAILED: u8 = 3;

/// A build's exit code: 0 built, 1 failed (or built but a cleanup failed), 3 built but its
/// retention failed, 130 interrupted.
fn exit_code(ended: Ended) -> u8 {
    match ended {
        Ended::Built { clean: false, .. } | Ended::Failed => 1,
        Ended::Built {
            retention_ok: false,
            ..
        } => RETENTION_FAILED,
        Ended::Built { .. } | Ended::Skipped => 0,
        Ended::Interrupted => 130,
    }
}

/// The exit code of several builds: the worst one, where a failed build (1) outranks a
/// retention failure (3) although its number is lower.
fn worst(a: u8, b: u8) -> u8 {
    match (a, b) {
        (RETENTION_FAILED, 0) | (0, RETENTION_FAILED) => RETENTION_FAILED,
        (RETENTION_FAILED, x) | (x, RETENTION_FAILED) => x,
        _ => a.max(b),
    }
}

/// Log in with the template's auth settings on top of `clouds.yaml` and `OS_*` (the template
/// wins, as Packer's explicit settings do).
pub(crate) async fn connect(auth: &Auth) -> anyhow::Result<Clients> {
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    let mut set = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            vars.push((k.to_string(), v.to_string()));
        }
    };
    set("OS_AUTH_URL", auth.identity_endpoint.as_deref());
    set("OS_REGION_NAME", auth.region.as_deref());
    set("OS_USERNAME", auth.username.as_deref());
    set(
        "OS_PASSWORD",
        auth.password.as_ref().map(|s| s.expose_secret()),
    );
    set("OS_USER_DOMAIN_NAME", auth.user_domain_name.as_deref());
    set("OS_PROJECT_NAME", auth.project_name.as_deref());
    set(
        "OS_PROJECT_DOMAIN_NAME",
        auth.project_domain_name.as_deref(),
    );
    set(
        "OS_APPLICATION_CREDENTIAL_ID",
        auth.application_credential_id.as_deref(),
    );
    set(
        "OS_APPLICATION_CREDENTIAL_SECRET",
        auth.application_credential_secret
            .as_ref()
            .map(|s| s.expose_secret()),
    );
    if auth.application_credential_id.is_some() {
        set("OS_AUTH_TYPE", Some("v3applicationcredential"));
    }
    if auth.insecure {
        set("OS_INSECURE", Some("true"));
    }
    let cacert = auth.cacert.as_ref().map(|p| p.display().to_string());
    set("OS_CACERT", cacert.as_deref());
    // Later entries win in ConfigEnv, so the template's values override the environment's.
    let env = ConfigEnv::from_vars(vars, std::env::current_dir().ok());
    let config = CloudConfig::load(auth.cloud.as_deref(), &env)?;
    let session = Session::connect(config).await?;
    Ok(Clients {
        image: ImageClient::new(session.clone()),
        compute: ComputeClient::new(session.clone()),
        network: NetworkClient::new(session),
    })
}

#[cfg(test)]
mod tests {
    use super::{exit_code, worst, Ended, RETENTION_FAILED};

    #[test]
    fn how_a_build_ended_maps_to_the_documented_codes() {
        let built = |clean, retention_ok| Ended::Built {
            clean,
            retention_ok,
        };
        assert_eq!(exit_code(built(true, true)), 0);
        assert_eq!(exit_code(built(false, true)), 1);
        assert_eq!(exit_code(built(false, false)), 1);
        assert_eq!(exit_code(built(true, false)), RETENTION_FAILED);
        assert_eq!(exit_code(Ended::Failed), 1);
        assert_eq!(exit_code(Ended::Interrupted), 130);
    }

    #[test]
    fn a_failed_build_outranks_a_failed_retention() {
        assert_eq!(worst(0, RETENTION_FAILED), RETENTION_FAILED);
        assert_eq!(worst(RETENTION_FAILED, 0), RETENTION_FAILED);
        assert_eq!(worst(RETENTION_FAILED, 1), 1);
        assert_eq!(worst(1, RETENTION_FAILED), 1);
        assert_eq!(worst(RETENTION_FAILED, 130), 130);
        assert_eq!(worst(0, 1), 1);
        assert_eq!(worst(1, 130), 130);
    }
}
