//! `forge build TEMPLATE`: load the template, load every spec and script it names (so a broken
//! one fails before anything is created), log in, run each build's pipeline (OpenStack or
//! image-file, by its source), write the manifest.
//!
//! Exit codes: 0 built, 1 the template is invalid or a build failed (its resources cleaned up),
//! 2 usage error, 3 built but the build's `retention {}` failed (the new image is kept),
//! 75 another run of the same template holds its lock ([`crate::lock`]; nothing
//! was done), 130 interrupted (SIGINT/SIGTERM; resources cleaned up). With `--skip-unchanged`,
//! when every build was up to date: `--skipped-exit-code` (default 0).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::cli::validate::VarArgs;
use crate::fingerprint::{self, Inputs};
use crate::journal::Journal;
use crate::lock::{self, LockError};
use crate::manifest::{self, BuildEntry, ResourceEntry, SourceImageEntry, StepEntry};
use crate::openstack::compute::ComputeClient;
use crate::openstack::image::{Image, ImageClient, ImageQuery, ImageStatus};
use crate::openstack::network::NetworkClient;
use crate::openstack::{CloudConfig, ConfigEnv, Session};
use crate::pipeline::{signals, OnError, Outcome, Progress, Report, Runner, Step};
use crate::steps::provision::Provisioner;
use crate::steps::{self, BuildState, Clients};
use crate::template::{
    self, Auth, Build, OpenStackSource, PostProcessor, Provisioner as TemplateProvisioner,
    ShellProvisioner, Source, Template,
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

/// How one build ended.
enum Ended {
    /// Ran: 0 built, 1 failed, 130 interrupted.
    Ran(u8),
    /// `--skip-unchanged` found an up-to-date image.
    Skipped,
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
    runtime.block_on(async move {
        let cancel = CancellationToken::new();
        if let Err(e) = signals::install(cancel.clone()) {
            eprintln!("forge build: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
        let (mut code, mut ran, mut skipped) = (0u8, 0, 0);
        for build in &template.builds {
            for source_ref in &build.sources {
                match template.source(source_ref) {
                    Some(src) => {
                        match build_one(&args, &template, build, src, &progress, &cancel).await {
                            Ended::Ran(c) => (code, ran) = (worst(code, c), ran + 1),
                            Ended::Skipped => skipped += 1,
                        }
                        if cancel.is_cancelled() {
                            return ExitCode::from(code);
                        }
                    }
                    None => code = code.max(1),
                }
            }
        }
        if code == 0 && ran == 0 && skipped > 0 {
            code = args.skipped_exit_code;
        }
        ExitCode::from(code)
    })
}

/// One build of one source.
async fn build_one(
    args: &Args,
    template: &Template,
    build: &Build,
    src: &Source,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Ended {
    let label = build_label(build, src);
    match build_or_skip(args, template, build, src, &label, progress, cancel).await {
        Ok(ended) => ended,
        Err(code) => Ended::Ran(code),
    }
}

fn build_label(build: &Build, src: &Source) -> String {
    match &build.name {
        Some(n) => format!("{n}.{}.{}", src.kind().label(), src.name()),
        None => format!("{}.{}", src.kind().label(), src.name()),
    }
}

/// [`build_one`], with every failure as its exit code.
async fn build_or_skip(
    args: &Args,
    template: &Template,
    build: &Build,
    src: &Source,
    label: &str,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<Ended, u8> {
    let run_id = uuid::Uuid::new_v4().to_string();
    progress.println(&format!("==> build {label} (run {run_id})"));
    let fail = |e: anyhow::Error| {
        let e = template.redact(&format!("{e:#}"));
        eprintln!("forge build: {label}: {e}");
        1
    };

    let (mut steps, mut state, clients) = prepare(args, template, build, src, label, &run_id)
        .await
        .map_err(fail)?;
    if let (true, Source::OpenStack(src), Some(digest)) =
        (args.skip_unchanged, src, state.inputs_digest.clone())
    {
        let (source, fp, existing) = up_to_date(&clients, src, &digest).await.map_err(fail)?;
        if let Some(image) = existing {
            skipped(build, label, &run_id, &source, &image, &fp, progress).map_err(fail)?;
            if let Err(e) = state.journal.finished(true) {
                tracing::warn!("{e}");
            }
            return Ok(Ended::Skipped);
        }
        progress.println(&format!(
            "    fingerprint {fp}: no active image built from these inputs; building"
        ));
    } else if args.skip_unchanged {
        progress
            .println("    --skip-unchanged: image-file sources are not fingerprinted; building");
    }
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
    summarize(label, &report, template);

    if !report.outcome.is_success() {
        return Err(match report.outcome {
            Outcome::Cancelled { .. } => 130,
            _ => 1,
        });
    }
    let entry = manifest_entry(label, src.kind().label(), &run_id, &state, &report);
    for pp in &build.post_processors {
        match pp {
            PostProcessor::Manifest { output } => match manifest::append(output, entry.clone()) {
                Ok(()) => progress.println(&format!("==> manifest: {}", output.display())),
                Err(e) => {
                    eprintln!("forge build: manifest: {e}");
                    return Err(1);
                }
            },
        }
    }
    if let Some(image) = &state.image {
        println!("{}", image.id);
    }
    let mut code = if report.is_clean_success() { 0 } else { 1 };
    if let Some(policy) = &build.retention {
        let ok = super::images::after_build(template, label, &clients, policy, progress);
        if !ok.await && code == 0 {
            code = RETENTION_FAILED;
        }
    }
    Ok(Ended::Ran(code))
}

/// Exit code: the image was built, but applying the build's `retention {}` failed.
pub const RETENTION_FAILED: u8 = 3;

/// The exit code of several builds: the worst one, where a failed build (1) outranks a
/// retention failure (3) although its number is lower.
fn worst(a: u8, b: u8) -> u8 {
    match (a, b) {
        (RETENTION_FAILED, 0) | (0, RETENTION_FAILED) => RETENTION_FAILED,
        (RETENTION_FAILED, x) | (x, RETENTION_FAILED) => x,
        _ => a.max(b),
    }
}

/// `--skip-unchanged`: resolve the source image (as step 1 does), compute the fingerprint and
/// ask Glance for the newest active image of this project that carries it. Only publish, the
/// last step, writes `forge_fingerprint`, so a failed run's image never matches.
async fn up_to_date(
    clients: &Clients,
    src: &OpenStackSource,
    inputs_digest: &str,
) -> anyhow::Result<(Image, String, Option<Image>)> {
    let selector = steps::source_image_input(&src.source_image).validate()?;
    let source = steps::source_image::resolve(&clients.image, &selector)
        .await?
        .image;
    let fp = fingerprint::fingerprint(inputs_digest, &source);
    let query = ImageQuery {
        owner: clients.image.session().project_id().await?,
        status: Some(ImageStatus::Active),
        properties: BTreeMap::from([("forge_fingerprint".to_string(), fp.clone())]),
        sort: Some("created_at:desc,id:asc".into()),
        ..ImageQuery::default()
    };
    let page = clients
        .image
        .list_page(&query, Some(1), None)
        .await
        .context("looking for an image with the same forge_fingerprint")?;
    Ok((source, fp, page.images.into_iter().next()))
}

/// Report a skipped build: the existing image on stdout (as a built one would be) and in the
/// manifest with `"skipped": true`.
fn skipped(
    build: &Build,
    label: &str,
    run_id: &str,
    source: &Image,
    image: &Image,
    fp: &str,
    progress: &Progress,
) -> anyhow::Result<()> {
    eprintln!(
        "==> {label}: up to date, nothing built (--skip-unchanged): image {} has \
         forge_fingerprint {fp} (built by run {})",
        image.describe(),
        image.property("forge_run_id").unwrap_or("?")
    );
    let entry = BuildEntry {
        name: label.to_string(),
        builder_type: "openstack".into(),
        build_time: unix_now(),
        artifact_id: image.id.clone(),
        run_id: run_id.to_string(),
        source_image: Some(source_entry(source)),
        skipped: true,
        fingerprint: Some(fp.to_string()),
        ..BuildEntry::default()
    };
    for pp in &build.post_processors {
        match pp {
            PostProcessor::Manifest { output } => {
                manifest::append(output, entry.clone())?;
                progress.println(&format!("==> manifest: {}", output.display()));
            }
        }
    }
    println!("{}", image.id);
    Ok(())
}

/// Everything before the first step: specs and scripts loaded (so a broken one fails before
/// anything is created), the cloud logged in to, the pipeline assembled, the journal opened.
async fn prepare(
    args: &Args,
    template: &Template,
    build: &Build,
    src: &Source,
    label: &str,
    run_id: &str,
) -> anyhow::Result<(Vec<Box<dyn Step<BuildState>>>, BuildState, Clients)> {
    let provisioners = load_provisioners(build, &args.resource_roots)?;
    // Only OpenStack sources are fingerprinted (`--skip-unchanged`); see `fingerprint.rs`.
    let inputs = match src {
        Source::OpenStack(s) => {
            let inputs = inputs(template, label, s, &provisioners)?;
            tracing::debug!("fingerprint inputs: {}", inputs.canonical());
            Some(inputs)
        }
        Source::ImageFile(_) => None,
    };
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
    let mut journal = Journal::create(&journal_path, run_id)?;
    tracing::debug!("journal: {}", journal_path.display());
    // Where the resources will be, so `forge cleanup` logs in to the same cloud.
    journal.cloud(crate::cleanup::cloud_info(clients.image.session()).await?)?;
    let state = BuildState {
        run_id: run_id.to_string(),
        journal,
        inputs_digest: inputs.map(|i| i.digest()),
        ..BuildState::default()
    };
    Ok((steps, state, clients))
}

/// The build's static fingerprint inputs, from the loaded provisioners (so every spec and
/// script is hashed as it will run).
fn inputs(
    template: &Template,
    label: &str,
    src: &OpenStackSource,
    provisioners: &[Provisioner],
) -> anyhow::Result<Inputs> {
    let mut inputs = Inputs::new(template, label, src)?;
    for p in provisioners {
        match p {
            Provisioner::Validators {
                spec,
                arguments,
                sensitive,
                test_only,
            } => inputs.validators(spec, arguments, sensitive, *test_only)?,
            Provisioner::Inline(cmds) => inputs.shell_inline(template, cmds),
            Provisioner::Script { content, .. } => inputs.shell_script(content),
        }
    }
    Ok(inputs)
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

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn source_entry(i: &Image) -> SourceImageEntry {
    SourceImageEntry {
        id: i.id.clone(),
        name: i.name.clone().unwrap_or_default(),
        checksum: i.os_hash_value.clone().or_else(|| i.checksum.clone()),
    }
}

fn manifest_entry(
    label: &str,
    builder_type: &str,
    run_id: &str,
    state: &BuildState,
    report: &Report,
) -> BuildEntry {
    let build_time = unix_now();
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
        source_image: state.source_image.as_ref().map(source_entry),
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
        fingerprint: state
            .image
            .as_ref()
            .and_then(|i| i.property("forge_fingerprint"))
            .map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::{worst, RETENTION_FAILED};

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
