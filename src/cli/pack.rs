//! `forge pack`: run an image spec against a disk image file offline, through libguestfs (the
//! successor of Sahara's `sahara-image-pack`).
//!
//! In place by default (as Sahara). With `--output`, the input is only ever a read-only backing
//! file: the spec runs on a copy-on-write overlay in a temp dir next to the output, which is then
//! flattened (`qemu-img convert`) to a temp file and renamed into place only when the spec is
//! satisfied, so a failure leaves neither a changed input nor an output file ([`crate::disk`],
//! shared with image-file builds, as is the upload).

use std::path::PathBuf;
use std::process::ExitCode;
#[cfg(feature = "guestfs")]
use std::{collections::BTreeMap, path::Path, time::Instant};

/// Exit codes as `forge check`.
const EXIT_FAILED: u8 = 1;
const EXIT_ERROR: u8 = 2;
const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Without --output the image is MODIFIED IN PLACE (as sahara-image-pack does); --test-only never \
modifies it (writes go to a throw-away snapshot). With --output FILE the input is left \
byte-identical and FILE is a new, self-contained qcow2, written only when the spec is satisfied.

Exit status (as forge check): 0 spec satisfied, 1 validation failed (each failure listed with its \
spec location), 2 usage, spec or argument error or the image could not be opened or processed \
(libguestfs, qemu-img), 130 interrupted.

With --upload the result (the --output file, or the image packed in place) is streamed into Glance \
as a new image, its checksum verified, and forge waits until it is active; a failed or interrupted \
upload deletes the half-made image. The cloud is found as for forge build (--cloud, OS_CLOUD, \
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
    /// SIGINT/SIGTERM (exit 130); the image was closed first.
    Interrupted,
}

pub fn run(args: Args) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("forge pack: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    runtime.block_on(async {
        let cancel = tokio_util::sync::CancellationToken::new();
        if let Err(e) = crate::pipeline::signals::install(cancel.clone()) {
            tracing::warn!("cannot listen for SIGINT/SIGTERM: {e}");
        }
        match pack(&args, &cancel).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(Stop::Usage(message)) => {
                eprintln!("{message}");
                ExitCode::from(EXIT_ERROR)
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
                ExitCode::from(EXIT_FAILED)
            }
            Err(Stop::Failed(message)) => {
                eprintln!("forge pack: {message}");
                ExitCode::from(EXIT_ERROR)
            }
            Err(Stop::Interrupted) => {
                eprintln!("forge pack: interrupted");
                ExitCode::from(EXIT_INTERRUPTED)
            }
        }
    })
}

#[cfg(not(feature = "guestfs"))]
async fn pack(_: &Args, _: &tokio_util::sync::CancellationToken) -> Result<(), Stop> {
    Err(Stop::Usage(
        "forge pack: this forge was built without the `guestfs` feature (libguestfs)".into(),
    ))
}

#[cfg(feature = "guestfs")]
async fn pack(args: &Args, cancel: &tokio_util::sync::CancellationToken) -> Result<(), Stop> {
    use crate::disk::DiskError;
    use crate::remote::guestfs::{detect_format, GuestfsOptions, GuestfsRemote};
    use crate::spec::{Mode, RunError, RunOptions};

    let started = Instant::now();
    // Everything that can be checked without an appliance is checked first: a launch is slow.
    let spec = crate::spec::load(&args.spec, &args.resource_root)
        .map_err(|e| Stop::Usage(e.to_string()))?;
    let arguments: BTreeMap<String, String> = args.args.iter().cloned().collect();
    crate::spec::check_arguments(&spec, &arguments).map_err(|e| Stop::Usage(e.to_string()))?;
    let input_format = detect_format(&args.image).map_err(|e| Stop::Usage(e.to_string()))?;
    // Log in before the (slow) launch, so bad credentials cost nothing.
    let glance = if args.upload.upload {
        Some(upload::connect(&args.upload).await?)
    } else {
        None
    };

    // With --output: a private overlay over the input, in a temp dir beside the output so the
    // final rename stays on one file system. The TempDir removes itself on every return path.
    let staging = match &args.output {
        Some(output) => Some(staging(&args.image, &input_format, output)?),
        None => None,
    };
    let target = staging
        .as_ref()
        .map_or_else(|| args.image.clone(), |s| s.overlay().to_path_buf());

    let options = GuestfsOptions {
        image: target,
        root_filesystem: args.root_filesystem.clone(),
        network: args.network,
        // Test-only in place must not change the image, yet `copy_script` and command capture
        // write to /tmp: a discarded snapshot allows both.
        discard_writes: args.test_only && staging.is_none(),
    };
    let remote = tokio::select! {
        opened = GuestfsRemote::open(options) => opened.map_err(|e| Stop::Failed(e.to_string()))?,
        () = cancel.cancelled() => return Err(Stop::Interrupted),
    };
    let launch = remote.launch_time();

    let run_options = RunOptions {
        mode: if args.test_only {
            Mode::TestOnly
        } else {
            Mode::Reconcile
        },
        distro_override: args.distro.clone(),
    };
    let outcome = crate::spec::run(&spec, &remote, &arguments, &run_options, cancel).await;
    if cancel.is_cancelled() {
        eprintln!("==> closing the image (a running command finishes first)");
    }
    // Close on every path; a failed sync matters even when the spec passed.
    let closed = remote.close().await;
    let report = match outcome {
        Ok(report) => report,
        Err(RunError::Validation { failures }) => return Err(Stop::Validation(failures)),
        Err(RunError::Arguments(message)) => {
            return Err(Stop::Usage(format!("{}: {message}", args.spec.display())))
        }
        Err(RunError::Remote(e)) => return Err(Stop::Failed(e.to_string())),
        Err(RunError::Cancelled) => return Err(Stop::Interrupted),
    };
    closed.map_err(|e| Stop::Failed(e.to_string()))?;

    if let (Some(staging), Some(output)) = (&staging, &args.output) {
        staging
            .flatten(Some(output), cancel)
            .await
            .map_err(|e| match e {
                DiskError::Cancelled => Stop::Interrupted,
                e => Stop::Failed(e.to_string()),
            })?;
    }
    let published = match &glance {
        Some(images) => {
            let (file, format) = match &args.output {
                Some(output) => (output.as_path(), "qcow2"),
                None => (args.image.as_path(), input_format.as_str()),
            };
            Some(upload::publish(images, &args.upload, file, format, cancel).await?)
        }
        None => None,
    };
    eprintln!(
        "==> {}: spec satisfied ({}); {} validators, {} commands, 1 appliance launch ({:.1} s), {:.1} s in all{}",
        args.image.display(),
        if args.test_only { "test-only" } else { "reconcile" },
        report.validators_run,
        report.round_trips,
        launch.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        match &args.output {
            Some(out) => format!("; wrote {}", out.display()),
            None if args.test_only => String::new(),
            None => "; modified in place".to_string(),
        }
    );
    if let Some(id) = published {
        println!("{id}");
    }
    Ok(())
}

/// `--upload`: log in, then create, stream, verify and wait for the Glance image.
#[cfg(feature = "guestfs")]
mod upload {
    use std::path::Path;
    use std::str::FromStr;

    use tokio_util::sync::CancellationToken;

    use super::{Stop, UploadArgs};
    use crate::openstack::image::{ImageClient, NewImage, Visibility};
    use crate::openstack::{CloudConfig, ConfigEnv, Session};
    use crate::pipeline::Progress;
    use crate::steps::upload_image::upload_and_wait;

    pub async fn connect(args: &UploadArgs) -> Result<ImageClient, Stop> {
        if let Some(v) = &args.image_visibility {
            Visibility::from_str(v).map_err(|e| Stop::Usage(format!("--image-visibility: {e}")))?;
        }
        let config = CloudConfig::load(args.cloud.as_deref(), &ConfigEnv::from_process())
            .map_err(|e| Stop::Usage(format!("--upload: {e}")))?;
        let session = Session::connect(config)
            .await
            .map_err(|e| Stop::Failed(format!("--upload: {e}")))?;
        Ok(ImageClient::new(session))
    }

    /// Create the image, stream `file` into it, wait until active; delete it on any failure.
    pub async fn publish(
        images: &ImageClient,
        args: &UploadArgs,
        file: &Path,
        disk_format: &str,
        cancel: &CancellationToken,
    ) -> Result<String, Stop> {
        let mut new = NewImage::named(args.image_name.as_deref().unwrap_or_default());
        new.disk_format = disk_format.to_string();
        new.tags = args.image_tags.clone();
        new.properties = args.image_properties.iter().cloned().collect();
        new.visibility = args
            .image_visibility
            .as_deref()
            .map(Visibility::from_str)
            .transpose()
            .map_err(|e| Stop::Usage(e.to_string()))?;
        let created = images
            .create(&new)
            .await
            .map_err(|e| Stop::Failed(format!("--upload: {e}")))?;
        let progress = Progress::for_stderr(false);
        let timeout = std::time::Duration::from_secs(1800);
        let result = upload_and_wait(images, &created.id, file, timeout, cancel, &progress)
            .await
            .map_err(|e| match cancel.is_cancelled() {
                true => Stop::Interrupted,
                false => Stop::Failed(format!("--upload: {e:#}")),
            });
        match result {
            Ok(image) => {
                eprintln!("==> uploaded to Glance: {}", image.describe());
                Ok(image.id)
            }
            Err(stop) => {
                // No half-made images: the one this run created goes away.
                if let Err(e) = images.delete(&created.id).await {
                    eprintln!(
                        "forge pack: could not delete the unfinished image {}: {e}",
                        created.id
                    );
                }
                Err(stop)
            }
        }
    }
}

/// The staging of an `--output` run: a temp dir beside the output holding the overlay the spec
/// runs on. The output must not be the input itself.
#[cfg(feature = "guestfs")]
fn staging(input: &Path, input_format: &str, output: &Path) -> Result<crate::disk::Staging, Stop> {
    use crate::disk::{parent_dir, DiskError, Staging};
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
    Staging::new(input, input_format, &parent_dir(output)).map_err(|e| match e {
        DiskError::TempDir { .. } => Stop::Usage(format!("--output {}: {e}", output.display())),
        e => Stop::Failed(e.to_string()),
    })
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
