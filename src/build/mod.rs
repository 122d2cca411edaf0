//! One build of one source, from the loaded template to its manifest entry: what happens before,
//! around and after the pipeline of `steps/mod.rs`. [`prepare`] loads every spec and script the
//! build names (so a broken one fails before anything is created or logged in to) and reads
//! the user data once; [`Prepared::run`] opens the journal, makes the `--skip-unchanged` check,
//! runs the pipeline, prints the summary, writes the manifest entry and applies retention.
//! `forge build` (`src/cli/build.rs`) logs in between the two and turns [`Ended`] into its
//! exit code.

mod load;
mod report;
mod skip;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::journal::Journal;
use crate::names;
use crate::pipeline::{OnError, Outcome, Progress, Runner, Step};
use crate::steps::provision::Provisioner;
use crate::steps::{self, BuildState, Clients};
use crate::template::{Build, Source, Template, UserData};

/// How `forge build` was asked to build.
#[derive(Debug, Clone)]
pub struct Options {
    pub on_error: OnError,
    /// Run every spec again in test-only mode after provisioning.
    pub verify: bool,
    /// Extra directories where image-spec scripts are looked up.
    pub resource_roots: Vec<PathBuf>,
    /// The journal file; `None` for the default location of the run.
    pub journal: Option<PathBuf>,
    pub skip_unchanged: bool,
}

/// How one build ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The image was built. `clean`: every cleanup succeeded; `retention_ok`: the build's
    /// `retention {}` (if any) was applied without a failure.
    Built { clean: bool, retention_ok: bool },
    /// `--skip-unchanged` found an up-to-date image.
    Skipped,
    /// The build, or something before or after it, failed (reported on stderr).
    Failed,
    /// SIGINT/SIGTERM; resources cleaned up.
    Interrupted,
}

/// A build ready to log in and run: its specs and scripts loaded, its files read.
pub struct Prepared<'t> {
    template: &'t Template,
    build: &'t Build,
    src: &'t Source,
    /// The build label (`NAME.TYPE.SOURCE`).
    pub label: String,
    pub run_id: String,
    provisioners: Vec<Provisioner>,
    /// The OpenStack source's user data, as the server gets it.
    user_data: Option<Vec<u8>>,
    /// The digest of the static fingerprint inputs (OpenStack sources only).
    inputs_digest: Option<String>,
}

/// Load what run `run_id` of build `build` of `src` needs before anything is created: every
/// spec (its arguments checked) and script, the user data file; the fingerprint inputs from
/// those.
pub fn prepare<'t>(
    opts: &Options,
    template: &'t Template,
    build: &'t Build,
    src: &'t Source,
    run_id: &str,
) -> anyhow::Result<Prepared<'t>> {
    let label = names::build_label(build, src);
    let provisioners = load::load_provisioners(build, &opts.resource_roots)?;
    let (user_data, inputs_digest) = match src {
        Source::OpenStack(s) => {
            let user_data = match &s.user_data {
                None => None,
                Some(UserData::Inline(text)) => Some(text.clone().into_bytes()),
                Some(UserData::File(path)) => Some(
                    std::fs::read(path)
                        .with_context(|| format!("user_data_file {}", path.display()))?,
                ),
            };
            // Only OpenStack sources are fingerprinted (`--skip-unchanged`); see `fingerprint.rs`.
            let inputs = load::inputs(template, &label, s, user_data.as_deref(), &provisioners);
            tracing::debug!("fingerprint inputs: {}", inputs.canonical());
            (user_data, Some(inputs.digest()))
        }
        Source::ImageFile(_) => (None, None),
    };
    Ok(Prepared {
        template,
        build,
        src,
        label,
        run_id: run_id.to_string(),
        provisioners,
        user_data,
        inputs_digest,
    })
}

impl Prepared<'_> {
    /// Run the build with `clients` (logged in with the source's auth). Failures are reported
    /// on stderr (redacted) and end as [`Ended::Failed`].
    pub async fn run(
        self,
        opts: &Options,
        clients: &Clients,
        progress: &Progress,
        cancel: &CancellationToken,
    ) -> Ended {
        let (template, label) = (self.template, self.label.clone());
        match self.run_inner(opts, clients, progress, cancel).await {
            Ok(ended) => ended,
            Err(e) => {
                let e = template.redact(&format!("{e:#}"));
                eprintln!("forge build: {label}: {e}");
                Ended::Failed
            }
        }
    }

    async fn run_inner(
        self,
        opts: &Options,
        clients: &Clients,
        progress: &Progress,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Ended> {
        let Prepared {
            template,
            build,
            src,
            label,
            run_id,
            provisioners,
            user_data,
            inputs_digest,
        } = self;
        let journal_path = opts
            .journal
            .clone()
            .unwrap_or_else(|| Journal::default_path(&run_id));
        let mut journal = Journal::create(&journal_path, &run_id)?;
        tracing::debug!("journal: {}", journal_path.display());
        // Where the resources will be, so `forge cleanup` logs in to the same cloud (with this
        // template's auth again, when it took part).
        let template_auth = crate::journal::TemplateAuth {
            path: std::fs::canonicalize(&template.path).unwrap_or_else(|_| template.path.clone()),
            source: names::source_label(src),
        };
        let cloud = crate::cleanup::cloud_info(clients.session(), Some(template_auth)).await?;
        journal.cloud(cloud)?;
        let mut state = BuildState {
            run_id: run_id.clone(),
            journal,
            inputs_digest,
            ..BuildState::default()
        };

        // The source image as the skip check resolved it: the step reuses it.
        let mut source = None;
        if let (true, Source::OpenStack(s), Some(digest)) =
            (opts.skip_unchanged, src, state.inputs_digest.clone())
        {
            let (resolved, fp, existing) = skip::up_to_date(clients, s, &digest).await?;
            if let Some(image) = existing {
                skip::skipped(
                    build,
                    &label,
                    &run_id,
                    &resolved.image,
                    &image,
                    &fp,
                    progress,
                )?;
                if let Err(e) = state.journal.finished(true) {
                    tracing::warn!("{e}");
                }
                return Ok(Ended::Skipped);
            }
            progress.println(&format!(
                "    fingerprint {fp}: no active image built from these inputs; building"
            ));
            source = Some(resolved);
        } else if opts.skip_unchanged {
            progress.println(
                "    --skip-unchanged: image-file sources are not fingerprinted; building",
            );
        }

        let forge_properties = names::forge_properties(&template.path, &label);
        let mut steps: Vec<Box<dyn Step<BuildState>>> = match src {
            Source::OpenStack(s) => steps::openstack_pipeline(
                s,
                clients,
                provisioners,
                opts.verify,
                forge_properties,
                user_data,
                source,
            )?,
            #[cfg(feature = "guestfs")]
            Source::ImageFile(s) => steps::image_file_pipeline(
                s,
                &clients.image,
                provisioners,
                opts.verify,
                forge_properties,
            )?,
            #[cfg(not(feature = "guestfs"))]
            Source::ImageFile(_) => {
                let _ = state.journal.finished(false);
                anyhow::bail!(
                    "image-file sources need libguestfs: this forge was built without the \
                     `guestfs` feature"
                )
            }
        };
        let runner = Runner {
            on_error: opts.on_error,
            timeout: Some(src.build_timeout()),
            grace: Duration::from_secs(30),
            progress: progress.clone(),
        };
        let report = runner.run(&mut steps, &mut state, cancel).await;
        if let Err(e) = state.journal.finished(report.outcome.is_success()) {
            tracing::warn!("{e}");
        }
        report::summarize(&label, &report, template);
        match report.outcome {
            Outcome::Succeeded => {}
            Outcome::Cancelled { .. } => return Ok(Ended::Interrupted),
            _ => return Ok(Ended::Failed),
        }

        let entry = report::manifest_entry(&label, src.kind().label(), &run_id, &state, &report);
        if let Err(e) = report::write_manifests(build, &entry, progress) {
            eprintln!("forge build: manifest: {e}");
            return Ok(Ended::Failed);
        }
        if let Some(image) = &state.image {
            println!("{}", image.id);
        }
        let retention_ok = match &build.retention {
            None => true,
            Some(policy) => {
                let mut out = |l: &str| progress.println(l);
                let (images, compute) = (&clients.image, &clients.compute);
                let path = &template.path;
                match crate::retention::after_build(images, compute, path, &label, policy, &mut out)
                    .await
                {
                    Ok(0) => true,
                    Ok(n) => {
                        eprintln!(
                            "forge build: {label}: retention: {n} action(s) failed (the new \
                             image is kept)"
                        );
                        false
                    }
                    Err(e) => {
                        let e = template.redact(&format!("{e:#}"));
                        eprintln!(
                            "forge build: {label}: retention failed (the new image is kept): {e}"
                        );
                        false
                    }
                }
            }
        };
        Ok(Ended::Built {
            clean: report.is_clean_success(),
            retention_ok,
        })
    }
}
