//! Disk image files that must not change: the work happens on a copy-on-write overlay in a
//! private temp dir, then `qemu-img convert` flattens overlay and input into a standalone qcow2.
//! Shared by `forge pack --output` and image-file builds, so both treat the input the same way.
//!
//! The temp dir is made beside the final file (so moving the result into place is a rename on
//! one file system) and removes itself, overlay and half-written files included, when dropped.
//! The result replaces the final file only by [`keep`], once everything else succeeded: a
//! failed run leaves the previous file as it was.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

/// Name prefix of the temp dirs [`Staging`] makes.
pub const STAGING_PREFIX: &str = ".forge-pack-";

/// Why an overlay could not be made or flattened.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("cannot create a temp dir in {dir}: {source}")]
    TempDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run qemu-img: {0}")]
    Spawn(std::io::Error),
    #[error("qemu-img {operation}: {message}")]
    QemuImg {
        operation: &'static str,
        message: String,
    },
    #[error("cannot move the result to {path}: {source}")]
    Rename {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cancelled")]
    Cancelled,
}

/// A private temp dir holding a copy-on-write overlay whose read-only backing file is the input.
#[derive(Debug)]
pub struct Staging {
    dir: tempfile::TempDir,
    overlay: PathBuf,
}

impl Staging {
    /// Make a temp dir inside `parent` and a qcow2 overlay in it over `input` (of
    /// `input_format`, given explicitly: qemu must never probe a format). `input` is only read.
    pub fn new(input: &Path, input_format: &str, parent: &Path) -> Result<Staging, DiskError> {
        let dir = tempfile::Builder::new()
            .prefix(STAGING_PREFIX)
            .tempdir_in(parent)
            .map_err(|source| DiskError::TempDir {
                dir: parent.to_path_buf(),
                source,
            })?;
        let overlay = dir.path().join("overlay.qcow2");
        // qemu resolves a relative backing name against the overlay's directory: pass it absolute.
        let input = std::path::absolute(input).map_err(DiskError::Spawn)?;
        let out = std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", input_format, "-b"])
            .arg(&input)
            .arg(&overlay)
            .output()
            .map_err(DiskError::Spawn)?;
        check("create", &out)?;
        Ok(Staging { dir, overlay })
    }

    /// The overlay to open read-write.
    pub fn overlay(&self) -> &Path {
        &self.overlay
    }

    /// The temp dir (removed when `self` is dropped).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Flatten the overlay (and its backing input) into a standalone qcow2 in the temp dir and
    /// return its path. Cancelling kills `qemu-img`. [`keep`] moves it into place once the work
    /// it is part of has succeeded.
    pub async fn flatten(&self, cancel: &CancellationToken) -> Result<PathBuf, DiskError> {
        let flat = self.dir.path().join("flat.qcow2");
        let started = Instant::now();
        let child = tokio::process::Command::new("qemu-img")
            .args(["convert", "-O", "qcow2"])
            .arg(&self.overlay)
            .arg(&flat)
            .kill_on_drop(true)
            .output();
        let out = tokio::select! {
            out = child => out.map_err(DiskError::Spawn)?,
            () = cancel.cancelled() => return Err(DiskError::Cancelled),
        };
        check("convert", &out)?;
        tracing::info!(
            "{}: flattened in {:.1} s",
            flat.display(),
            started.elapsed().as_secs_f64()
        );
        Ok(flat)
    }
}

/// Move a flattened file (from [`Staging::flatten`], whose temp dir is beside `output`) to
/// `output` by one rename: `output` is at every instant either its previous file or the new,
/// complete one.
pub fn keep(flat: &Path, output: &Path) -> Result<(), DiskError> {
    std::fs::rename(flat, output).map_err(|source| DiskError::Rename {
        path: output.to_path_buf(),
        source,
    })
}

/// The directory a new `output` file goes in (`.` for a bare file name).
pub fn parent_dir(output: &Path) -> PathBuf {
    match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn check(operation: &'static str, out: &std::process::Output) -> Result<(), DiskError> {
    if out.status.success() {
        Ok(())
    } else {
        Err(DiskError::QemuImg {
            operation,
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(program: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
        let out = std::process::Command::new(program)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Real qemu-img and qemu-io on a small raw file: a write through the overlay reaches the
    /// flattened copy, which has no backing file, and never the input.
    #[tokio::test]
    #[ignore = "needs qemu-utils: tests/image/setup.sh"]
    async fn overlay_then_flatten_leaves_the_input_alone() {
        if let Err(e) = std::process::Command::new("qemu-io")
            .arg("--version")
            .output()
        {
            panic!("not run: needs qemu-utils (qemu-img, qemu-io): {e}; run tests/image/setup.sh");
        }
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.raw");
        std::fs::write(&input, vec![7u8; 1 << 20]).unwrap();
        let staging = Staging::new(&input, "raw", dir.path()).unwrap();
        assert!(staging
            .dir()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(STAGING_PREFIX));
        run(
            "qemu-io",
            &[
                "-f".as_ref(),
                "qcow2".as_ref(),
                "-c".as_ref(),
                "write -P 0x55 4096 4096".as_ref(),
                staging.overlay().as_os_str(),
            ],
        );
        let output = dir.path().join("out.qcow2");
        std::fs::write(&output, b"the previous output").unwrap();
        let flat = staging.flatten(&CancellationToken::new()).await.unwrap();
        assert!(flat.starts_with(staging.dir()), "{}", flat.display());
        assert_eq!(
            std::fs::read(&output).unwrap(),
            b"the previous output",
            "flatten touched the output before keep"
        );
        keep(&flat, &output).unwrap();
        let info = run(
            "qemu-img",
            &[
                "info".as_ref(),
                "--output=json".as_ref(),
                output.as_os_str(),
            ],
        );
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(info["format"], "qcow2");
        assert!(info.get("backing-filename").is_none(), "{info}");
        let raw = dir.path().join("check.raw");
        run(
            "qemu-img",
            &[
                "convert".as_ref(),
                "-O".as_ref(),
                "raw".as_ref(),
                output.as_os_str(),
                raw.as_os_str(),
            ],
        );
        let mut want = vec![7u8; 1 << 20];
        want[4096..8192].fill(0x55);
        assert!(
            std::fs::read(&raw).unwrap() == want,
            "the write is not in the output"
        );
        assert!(
            std::fs::read(&input).unwrap() == vec![7u8; 1 << 20],
            "the input changed"
        );
        let temp = staging.dir().to_path_buf();
        drop(staging);
        assert!(!temp.exists(), "the temp dir outlived the staging");
    }

    #[test]
    fn a_missing_parent_dir_is_a_clear_error() {
        let err = Staging::new(
            Path::new("/nonexistent/in.qcow2"),
            "qcow2",
            Path::new("/nonexistent/forge-dir"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/forge-dir"), "{err}");
    }
}
