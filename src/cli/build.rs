//! `forge build TEMPLATE`: load the template, load every spec and script it names (so a broken
//! one fails before anything is created), log in, run each build's pipeline (OpenStack or
//! image-file, by its source), write the manifest.
//!
//! Exit codes: 0 built, 1 the template is invalid or a build failed (its resources cleaned up),
//! 2 usage error, 130 interrupted (SIGINT/SIGTERM; resources cleaned up).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::cli::validate::VarArgs;
use crate::journal::Journal;
use crate::manifest::{self, BuildEntry, ResourceEntry, SourceImageEntry, StepEntry};
use crate::openstack::compute::ComputeClient;
use crate::openstack::image::ImageClient;
use crate::openstack::network::NetworkClient;
use crate::openstack::{CloudConfig, ConfigEnv, Session};
use crate::pipeline::{signals, OnError, Outcome, Progress, Report, Runner, Step};
use crate::steps::provision::Provisioner;
use crate::steps::{self, BuildState, Clients};
use crate::template::{
    self, Auth, Build, PostProcessor, Provisioner as TemplateProvisioner, ShellProvisioner, Source,
    Template,
};

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
}

pub fn run(args: Args, progress: Progress) -> ExitCode {
    let template = match template::load(&args.template, &args.vars.load_options()) {
        Ok(t) => t,
        Err(diags) => {
            eprintln!("{diags}");
            // As `forge validate`: 1 for an invalid template, 2 for an unreadable one.
            return ExitCode::from(diags.exit_code());
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
    runtime.block_on(async move {
        let cancel = CancellationToken::new();
        if let Err(e) = signals::install(cancel.clone()) {
            eprintln!("forge build: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
        let mut code = 0u8;
        for build in &template.builds {
            for source_ref in &build.sources {
                match template.source(source_ref) {
                    Some(src) => {
                        let c = build_one(&args, &template, build, src, &progress, &cancel).await;
                        code = code.max(c);
                        if cancel.is_cancelled() {
                            return ExitCode::from(code);
                        }
                    }
                    None => code = code.max(1),
                }
            }
        }
        ExitCode::from(code)
    })
}

/// One build of one source; returns the exit code.
async fn build_one(
    args: &Args,
    template: &Template,
    build: &Build,
    src: &Source,
    progress: &Progress,
    cancel: &CancellationToken,
) -> u8 {
    let label = match &build.name {
        Some(n) => format!("{n}.{}.{}", src.kind().label(), src.name()),
        None => format!("{}.{}", src.kind().label(), src.name()),
    };
    let run_id = uuid::Uuid::new_v4().to_string();
    progress.println(&format!("==> build {label} (run {run_id})"));

    let (mut steps, mut state) = match prepare(args, build, src, &label, &run_id).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "forge build: {label}: {}",
                template.redact(&format!("{e:#}"))
            );
            return 1;
        }
    };
    let runner = Runner {
        on_error: args.on_error,
        timeout: Some(src.build_timeout()),
        grace: Duration::from_secs(30),
        progress: progress.clone(),
    };
    let report = runner.run(&mut steps, &mut state, cancel).await;
    if let Err(e) = state.journal.finished(report.outcome.is_success()) {
        tracing::warn!("{e}");
    }
    summarize(&label, &report, template);

    if !report.outcome.is_success() {
        return match report.outcome {
            Outcome::Cancelled { .. } => 130,
            _ => 1,
        };
    }
    let entry = manifest_entry(&label, src.kind().label(), &run_id, &state, &report);
    for pp in &build.post_processors {
        match pp {
            PostProcessor::Manifest { output } => match manifest::append(output, entry.clone()) {
                Ok(()) => progress.println(&format!("==> manifest: {}", output.display())),
                Err(e) => {
                    eprintln!("forge build: manifest: {e}");
                    return 1;
                }
            },
        }
    }
    if let Some(image) = &state.image {
        println!("{}", image.id);
    }
    if report.is_clean_success() {
        0
    } else {
        1
    }
}

/// Everything before the first step: specs and scripts loaded (so a broken one fails before
/// anything is created), the cloud logged in to, the pipeline assembled, the journal opened.
async fn prepare(
    args: &Args,
    build: &Build,
    src: &Source,
    label: &str,
    run_id: &str,
) -> anyhow::Result<(Vec<Box<dyn Step<BuildState>>>, BuildState)> {
    let provisioners = load_provisioners(build, &args.resource_roots)?;
    let clients = connect(src.auth()).await?;
    let forge_properties = steps::forge_properties(&args.template, label);
    let verify = args.verify;
    let steps = match src {
        Source::OpenStack(s) => {
            steps::openstack_pipeline(s, &clients, provisioners, verify, forge_properties)?
        }
        #[cfg(feature = "guestfs")]
        Source::ImageFile(s) => {
            steps::image_file_pipeline(s, &clients.image, provisioners, verify, forge_properties)?
        }
        #[cfg(not(feature = "guestfs"))]
        Source::ImageFile(_) => anyhow::bail!(
            "image-file sources need libguestfs: this forge was built without the `guestfs` feature"
        ),
    };
    let journal_path = args
        .journal
        .clone()
        .unwrap_or_else(|| Journal::default_path(run_id));
    let journal = Journal::create(&journal_path, run_id)?;
    tracing::debug!("journal: {}", journal_path.display());
    let state = BuildState {
        run_id: run_id.to_string(),
        journal,
        ..BuildState::default()
    };
    Ok((steps, state))
}

/// Load every spec and read every script the build's provisioners name.
fn load_provisioners(build: &Build, roots: &[PathBuf]) -> anyhow::Result<Vec<Provisioner>> {
    let mut out = Vec::new();
    for p in &build.provisioners {
        out.push(match p {
            TemplateProvisioner::Validators(v) => {
                let spec = crate::spec::load(&v.spec, roots)?;
                let arguments = v
                    .arguments
                    .iter()
                    .map(|(k, a)| (k.clone(), a.value.clone()))
                    .collect();
                // A wrong argument fails here, before anything is created or launched.
                crate::spec::check_arguments(&spec, &arguments)
                    .with_context(|| format!("image spec {}", v.spec.display()))?;
                Provisioner::Validators {
                    spec,
                    arguments,
                    sensitive: v
                        .arguments
                        .iter()
                        .filter(|(_, a)| a.sensitive)
                        .map(|(k, _)| k.clone())
                        .collect(),
                    test_only: v.test_only,
                }
            }
            TemplateProvisioner::Shell(ShellProvisioner::Inline(cmds)) => {
                Provisioner::Inline(cmds.clone())
            }
            TemplateProvisioner::Shell(ShellProvisioner::Script(path)) => Provisioner::Script {
                path: path.clone(),
                content: std::fs::read(path)
                    .with_context(|| format!("shell script {}", path.display()))?,
            },
        });
    }
    Ok(out)
}

/// Log in with the template's auth settings on top of `clouds.yaml` and `OS_*` (the template
/// wins, as Packer's explicit settings do).
async fn connect(auth: &Auth) -> anyhow::Result<Clients> {
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

/// Print how the build ended, the failed cleanups and (with `--on-error=abort`) the leftovers.
fn summarize(label: &str, report: &Report, template: &Template) {
    let outcome = template.redact(&report.outcome.to_string());
    eprintln!("==> {label}: {outcome}");
    for c in &report.cleanups {
        if let Some(e) = &c.error {
            eprintln!(
                "==> cleanup of '{}' failed: {} (run `forge cleanup` later)",
                c.name,
                template.redact(e)
            );
        }
    }
    if !report.leftovers.is_empty() {
        eprintln!("==> --on-error=abort: left behind:");
        for l in &report.leftovers {
            eprintln!("    {l}");
        }
    }
}

fn manifest_entry(
    label: &str,
    builder_type: &str,
    run_id: &str,
    state: &BuildState,
    report: &Report,
) -> BuildEntry {
    let build_time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    BuildEntry {
        name: label.to_string(),
        builder_type: builder_type.into(),
        build_time,
        artifact_id: state
            .image
            .as_ref()
            .map(|i| i.id.clone())
            .unwrap_or_default(),
        run_id: run_id.to_string(),
        custom_data: BTreeMap::new(),
        source_image: state.source_image.as_ref().map(|i| SourceImageEntry {
            id: i.id.clone(),
            name: i.name.clone().unwrap_or_default(),
            checksum: i.os_hash_value.clone().or_else(|| i.checksum.clone()),
        }),
        arguments: state.arguments.clone(),
        steps: report
            .steps
            .iter()
            .map(|s| StepEntry {
                name: s.name.clone(),
                seconds: s.duration.as_secs_f64(),
                ok: s.ok,
            })
            .collect(),
        resources: state
            .journal
            .resources()
            .into_iter()
            .map(|r| ResourceEntry {
                kind: r.kind,
                id: r.id.unwrap_or_default(),
                name: r.name,
                deleted: r.deleted,
            })
            .collect(),
        skipped: false,
    }
}
