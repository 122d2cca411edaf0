//! `forge pack`: run an image spec against a disk image file offline, through libguestfs (the
//! successor of Sahara's `sahara-image-pack`). A command over the pipeline runner, as `forge
//! build`: the steps are [`crate::steps::pack_pipeline`] (the image-file build's open image,
//! provision, close image and, with `--upload`, upload image and publish), so an upload is
//! journaled like a build's image and `forge cleanup` finds it after a SIGKILL.
//!
//! In place by default (as Sahara). With `--output`, the input is only ever a read-only backing
//! file: the spec runs on a copy-on-write overlay in a temp dir next to the output, which is then
//! flattened (`qemu-img convert`) to a temp file and renamed into place only when everything
//! (the upload too) succeeded, so a failure leaves neither a changed input nor a new output
//! ([`crate::disk`]).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::exit::Exit;
#[cfg(feature = "guestfs")]
use std::{collections::BTreeMap, path::Path, time::Instant};

use crate::pipeline::Progress;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Without --output the image is MODIFIED IN PLACE (as sahara-image-pack does); --test-only never \
modifies it (writes go to a throw-away snapshot). With --output FILE the input is left \
byte-identical and FILE is a new, self-contained qcow2, written only when the spec is satisfied.

Exit status (as forge check): 0 spec satisfied, 1 validation failed (each failure listed with its \
spec location), 2 usage, spec or argument error or the image could not be opened or processed \
(libguestfs, qemu-img), 4 --upload could not log in to the cloud, 130 interrupted.

With --upload the result (the --output file, or the image packed in place) is streamed into Glance \
as a new image, its checksum verified, and forge waits until it is active; a failed or interrupted \
upload deletes the half-made image. The upload is journaled as a build's (property forge_run_id, \
journal in $XDG_STATE_HOME/forge/runs; the run id is printed): after a crash or SIGKILL, \
`forge cleanup --run ID --yes` deletes it. The cloud is found as for forge build (--cloud, OS_CLOUD, \
clouds.yaml, OS_* variables) and logged in to before the appliance launches.

libguestfs reads LIBGUESTFS_BACKEND, LIBGUESTFS_BACKEND_SETTINGS (e.g. force_tcg where KVM is \
unusable) and LIBGUESTFS_CACHEDIR from the environment.")]
pub struct Args {
    /// The disk image (any format qemu-img detects: qcow2, raw, vmdk, ...).
    #[arg(long, value_name = "FILE")]
    pub image: PathBuf,
    /// The image spec (Sahara YAML).
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    /// Only check the image against the spec; change nothing.
    #[arg(long)]
    pub test_only: bool,
    /// The device to mount as / (default: found by inspection). Skips inspection (faster); the
    /// distro then comes from the image's /etc/os-release.
    #[arg(long, value_name = "DEV")]
    pub root_filesystem: Option<String>,
    /// A spec argument (repeatable; the last value of a name wins).
    #[arg(long = "arg", value_name = "NAME=VALUE", value_parser = parse_arg)]
    pub args: Vec<(String, String)>,
    /// More directories to look for scripts in, after the spec's own (repeatable).
    #[arg(long, value_name = "DIR")]
    pub resource_root: Vec<PathBuf>,
    /// Use this distro id instead of the one inspection finds.
    #[arg(long, value_name = "ID")]
    pub distro: Option<String>,
    /// Give the appliance a network (off by default), e.g. to install packages from a mirror.
    #[arg(long)]
    pub network: bool,
    /// Write the result to this new qcow2 and leave the input untouched.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub upload: UploadArgs,
}

/// `--upload`: publish the packed image to Glance.
#[derive(Debug, Clone, clap::Args)]
pub struct UploadArgs {
    /// Upload the result to Glance as a new image (needs --image-name).
    #[arg(long, requires = "image_name", conflicts_with = "test_only")]
    pub upload: bool,
    /// The clouds.yaml entry (default: OS_CLOUD, then the OS_* variables).
    #[arg(long, value_name = "NAME", requires = "upload")]
    pub cloud: Option<String>,
    /// Name of the new Glance image.
    #[arg(long, value_name = "NAME", requires = "upload")]
    pub image_name: Option<String>,
    /// A property of the new image (repeatable).
    #[arg(long = "image-property", value_name = "KEY=VALUE", value_parser = parse_arg, requires = "upload")]
    pub image_properties: Vec<(String, String)>,
    /// A tag of the new image (repeatable).
    #[arg(long = "image-tag", value_name = "TAG", requires = "upload")]
    pub image_tags: Vec<String>,
    /// public, private, shared or community (Glance's default when absent: shared).
    #[arg(long, value_name = "VISIBILITY", requires = "upload")]
    pub image_visibility: Option<String>,
}

fn parse_arg(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err("expected NAME=VALUE".to_string()),
    }
}

/// Why `forge pack` stopped; each kind has its exit code.
#[derive(Debug)]
#[cfg_attr(not(feature = "guestfs"), allow(dead_code))]
enum Stop {
    /// Usage, spec or argument error (exit 2). Already formatted for the user.
    Usage(String),
    /// The spec is not satisfied (exit 1).
    Validation(Vec<crate::spec::Failure>),
    /// The image could not be opened or processed: libguestfs, qemu-img, I/O (exit 2, as a
    /// connection error in `forge check`).
    Failed(String),
    /// `--upload` could not log in to the cloud (exit 4).
    Login(String),
    /// SIGINT/SIGTERM (exit 130); the image was closed first.
    Interrupted,
}

pub fn run(args: Args, progress: Progress) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("forge pack: cannot start the async runtime: {e}");
            return Exit::Usage.into();
        }
    };
    runtime.block_on(async {
        let cancel = tokio_util::sync::CancellationToken::new();
        if let Err(e) = crate::pipeline::signals::install(cancel.clone()) {
            tracing::warn!("cannot listen for SIGINT/SIGTERM: {e}");
        }
        match pack(&args, &progress, &cancel).await {
            Ok(()) => Exit::Ok.into(),
            Err(Stop::Usage(message)) => {
                eprintln!("{message}");
                Exit::Usage.into()
            }
            Err(Stop::Validation(failures)) => {
                for f in &failures {
                    eprintln!("{}: {}: {}", f.location, f.validator, f.message);
                }
                let image_state = match (&args.output, args.test_only) {
                    (Some(out), _) => format!(
                        "{} was not written; {} is unchanged",
                        out.display(),
                        args.image.display()
                    ),
                    (None, true) => format!("{} is unchanged", args.image.display()),
                    (None, false) => format!(
                        "{} was modified in place up to the failure",
                        args.image.display()
                    ),
                };
                eprintln!(
                    "forge pack: spec not satisfied ({} failure{}); {image_state}",
                    failures.len(),
                    if failures.len() == 1 { "" } else { "s" }
                );
                Exit::Failed.into()
            }
            Err(Stop::Failed(message)) => {
                eprintln!("forge pack: {message}");
                Exit::Usage.into()
            }
            Err(Stop::Login(message)) => {
                eprintln!("forge pack: {message}");
                Exit::Login.into()
            }
            Err(Stop::Interrupted) => {
                eprintln!("forge pack: interrupted");
                Exit::Interrupted.into()
            }
        }
    })
}

#[cfg(not(feature = "guestfs"))]
async fn pack(_: &Args, _: &Progress, _: &tokio_util::sync::CancellationToken) -> Result<(), Stop> {
    Err(Stop::Usage(
        "forge pack: this forge was built without the `guestfs` feature (libguestfs)".into(),
    ))
}

#[cfg(feature = "guestfs")]
async fn pack(
    args: &Args,
    progress: &Progress,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<(), Stop> {
    use crate::journal::Journal;
    use crate::pipeline::{OnError, Outcome, Runner};
    use crate::remote::guestfs::detect_format;
    use crate::steps::open_image::Target;
    use crate::steps::provision::Provisioner;
    use crate::steps::{BuildState, Pack};

    let started = Instant::now();
    // Everything that can be checked without an appliance is checked first: a launch is slow.
    let spec = crate::spec::load(&args.spec, &args.resource_root)
        .map_err(|e| Stop::Usage(e.to_string()))?;
    let arguments: BTreeMap<String, String> = args.args.iter().cloned().collect();
    crate::spec::check_arguments(&spec, &arguments).map_err(|e| Stop::Usage(e.to_string()))?;
    let format = detect_format(&args.image).map_err(|e| Stop::Usage(e.to_string()))?;
    let target = match (&args.output, args.test_only) {
        (Some(output), _) => Target::Overlay {
            staging_parent: output_dir(&args.image, output)?,
        },
        (None, true) => Target::DiscardWrites,
        (None, false) => Target::InPlace,
    };
    let run_id = uuid::Uuid::new_v4().to_string();
    // Log in before the (slow) launch, so bad credentials cost nothing. Only an upload creates
    // anything in a cloud, so only then is the journal a file `forge cleanup` reads.
    let (upload, journal) = if args.upload.upload {
        let (upload, journal) = upload::prepare(&args.upload, &run_id).await?;
        progress.println(&format!("==> pack {} (run {run_id})", args.image.display()));
        (Some(upload), journal)
    } else {
        (None, Journal::in_memory(&run_id))
    };
    let provisioner = Provisioner::Validators {
        spec,
        // `--arg` values are the user's own command line: none is marked sensitive.
        arguments: arguments
            .into_iter()
            .map(|(k, value)| {
                let arg = crate::template::Argument {
                    value,
                    sensitive: false,
                };
                (k, arg)
            })
            .collect(),
        test_only: args.test_only,
    };
    let pack = Pack {
        image: args.image.clone(),
        format,
        target,
        root_filesystem: args.root_filesystem.clone(),
        network: args.network,
        distro_override: args.distro.clone(),
        output: args.output.clone(),
    };
    let mut steps = crate::steps::pack_pipeline(pack, provisioner, upload);
    let mut state = BuildState {
        run_id,
        journal,
        ..BuildState::default()
    };
    let runner = Runner {
        on_error: OnError::Cleanup,
        timeout: None,
        grace: std::time::Duration::from_secs(30),
        progress: progress.clone(),
    };
    let notice = {
        let (cancel, progress) = (cancel.clone(), progress.clone());
        tokio::spawn(async move {
            cancel.cancelled().await;
            progress.println("==> closing the image (a running command finishes first)");
        })
    };
    let report = runner.run(&mut steps, &mut state, cancel).await;
    notice.abort();
    if let Err(e) = state.journal.finished(report.outcome.is_success()) {
        tracing::warn!("{e}");
    }
    match report.outcome {
        Outcome::Succeeded => {}
        Outcome::Cancelled { .. } | Outcome::DeadlineExceeded { .. } => {
            return Err(Stop::Interrupted)
        }
        Outcome::Failed { step, error } => return Err(stopped(&step, error, &args.spec)),
    }
    if let Some(c) = report.cleanups.iter().find(|c| c.error.is_some()) {
        return Err(Stop::Failed(format!(
            "cleanup of '{}' failed: {}",
            c.name,
            c.error.as_deref().unwrap_or_default()
        )));
    }
    eprintln!(
        "==> {}: spec satisfied ({}); {:.1} s in all{}",
        args.image.display(),
        if args.test_only {
            "test-only"
        } else {
            "reconcile"
        },
        started.elapsed().as_secs_f64(),
        match &args.output {
            Some(out) => format!("; wrote {}", out.display()),
            None if args.test_only => String::new(),
            None => "; modified in place".to_string(),
        }
    );
    if let Some(image) = &state.image {
        eprintln!("==> uploaded to Glance: {}", image.describe());
        println!("{}", image.id);
    }
    Ok(())
}

/// A failed step as `forge pack` reports it: the spec's own verdicts keep their exit codes.
#[cfg(feature = "guestfs")]
fn stopped(step: &str, error: anyhow::Error, spec: &Path) -> Stop {
    use crate::spec::RunError;
    for cause in error.chain() {
        match cause.downcast_ref::<RunError>() {
            Some(RunError::Validation { failures }) => return Stop::Validation(failures.clone()),
            Some(RunError::Arguments(message)) => {
                return Stop::Usage(format!("{}: {message}", spec.display()))
            }
            Some(RunError::Cancelled) => return Stop::Interrupted,
            Some(RunError::Remote(_)) | None => {}
        }
    }
    Stop::Failed(format!("step '{step}' failed: {error:#}"))
}

/// `--upload`: log in, open the run's journal (with the cloud it names, as a build's), and the
/// image settings from the command line.
#[cfg(feature = "guestfs")]
mod upload {
    use std::str::FromStr;

    use super::{Stop, UploadArgs};
    use crate::journal::Journal;
    use crate::openstack::image::Visibility;
    use crate::openstack::{Clients, CloudSpec, Origin};
    use crate::steps::PackUpload;

    pub async fn prepare(args: &UploadArgs, run_id: &str) -> Result<(PackUpload, Journal), Stop> {
        let visibility = args
            .image_visibility
            .as_deref()
            .map(Visibility::from_str)
            .transpose()
            .map_err(|e| Stop::Usage(format!("--image-visibility: {e}")))?;
        let spec = CloudSpec::named(args.cloud.as_deref(), Origin::Flag("--cloud".into()));
        let clients = Clients::connect(&spec)
            .await
            .map_err(|e| Stop::Login(format!("--upload: {:#}", anyhow::Error::from(e))))?;
        let failed = |e: &dyn std::fmt::Display| Stop::Failed(format!("--upload: {e}"));
        let mut journal =
            Journal::create(&Journal::default_path(run_id), run_id).map_err(|e| failed(&e))?;
        let cloud = crate::cleanup::cloud_info(clients.session(), None)
            .await
            .map_err(|e| failed(&e))?;
        journal.cloud(cloud).map_err(|e| failed(&e))?;
        let upload = PackUpload {
            images: clients.image,
            name: args.image_name.clone().unwrap_or_default(),
            properties: args.image_properties.iter().cloned().collect(),
            tags: args.image_tags.clone(),
            visibility,
        };
        Ok((upload, journal))
    }
}

/// Where the temp dir of an `--output` run goes: beside the output, so the result is renamed
/// into place on one file system. The output must not be the input itself.
#[cfg(feature = "guestfs")]
fn output_dir(input: &Path, output: &Path) -> Result<PathBuf, Stop> {
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same(input, output) {
        return Err(Stop::Usage(format!(
            "--output {} is the input image; leave --output out to modify it in place",
            output.display()
        )));
    }
    let dir = crate::disk::parent_dir(output);
    if !dir.is_dir() {
        return Err(Stop::Usage(format!(
            "--output {}: {} is not a directory",
            output.display(),
            dir.display()
        )));
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::parse_arg;

    #[test]
    fn arg_values_keep_everything_after_the_first_equals() {
        assert_eq!(
            parse_arg("k=a=b c"),
            Ok(("k".to_string(), "a=b c".to_string()))
        );
        assert_eq!(parse_arg("k="), Ok(("k".to_string(), String::new())));
        assert!(parse_arg("=v").is_err());
        assert!(parse_arg("novalue").is_err());
    }
}
