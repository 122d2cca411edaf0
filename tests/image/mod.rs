//! Support for the `forge pack` tests: the base Debian image built by `tests/image/setup.sh`, a
//! copy-on-write overlay per test, hashing, and reading files back with `guestfish` (an
//! independent reader: the code under test does not verify itself).
//!
//! libguestfs runs here under TCG (`LIBGUESTFS_BACKEND_SETTINGS=force_tcg`): KVM is unusable on
//! the CI machines. Each appliance launch costs about 15 s, so tests keep launches few.
//!
//! Tests that use it are `#[ignore = "needs the libguestfs test image: tests/image/setup.sh"]`;
//! run with `--include-ignored`, they fail when the image is missing (`tests/infra/mod.rs`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

// Included by each helper so that each works in any test binary.
#[allow(clippy::duplicate_mod)]
#[path = "../infra/mod.rs"]
mod infra;

pub const SETUP: &str = "tests/image/setup.sh";

/// Where setup.sh keeps its state (`FORGE_IMAGE_DIR`, default `/tmp/forge-image`).
pub fn state_dir() -> PathBuf {
    std::env::var_os("FORGE_IMAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/forge-image"))
}

/// The test fixtures (specs and scripts).
pub fn specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/image/specs")
}

/// The prepared base image; panics when setup.sh has not run. Always `Some` when it returns
/// (the `Option` keeps `let Some(base) = .. else { return }` callers compiling).
pub fn base_image() -> Option<PathBuf> {
    let dir = state_dir();
    let base = dir.join("base.qcow2");
    let ready = base.is_file() && dir.join(".appliance-ok").is_file() && on_path("guestfish");
    let missing = (!ready).then(|| format!("no libguestfs test image at {}", base.display()));
    infra::require(
        "the libguestfs test image",
        &format!("sudo {SETUP}"),
        missing,
    );
    Some(base)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// The libguestfs environment the tests use: direct backend, TCG, setup.sh's appliance cache.
pub fn guestfs_env() -> [(&'static str, String); 3] {
    [
        ("LIBGUESTFS_BACKEND", "direct".to_string()),
        ("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg".to_string()),
        (
            "LIBGUESTFS_CACHEDIR",
            state_dir().join("gcache").display().to_string(),
        ),
    ]
}

/// Set [`guestfs_env`] in this process, for tests that open a `GuestfsRemote` in-process.
/// Done once, before any handle exists (libguestfs reads the variables when a handle is created).
pub fn set_guestfs_env_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for (k, v) in guestfs_env() {
            std::env::set_var(k, v);
        }
    });
}

/// A copy-on-write overlay of the base image in its own temp dir; the base is never written.
pub struct Overlay {
    /// Held, not read: dropping it removes the overlay.
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn overlay(base: &Path, name: &str) -> Overlay {
    let dir = tempfile::Builder::new()
        .prefix(&format!("forge-pack-{name}-"))
        .tempdir()
        .expect("temp dir");
    let path = dir.path().join(format!("{name}.qcow2"));
    let out = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(base)
        .arg(&path)
        .output()
        .expect("run qemu-img");
    assert!(
        out.status.success(),
        "qemu-img create: {}",
        text(&out.stderr)
    );
    Overlay { _dir: dir, path }
}

/// `forge` with the libguestfs environment set.
pub fn forge() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_forge"));
    cmd.envs(guestfs_env());
    cmd
}

/// Run `forge pack ARGS...`, echo its output for the test log, return it.
pub fn pack(args: &[&str]) -> Output {
    let started = std::time::Instant::now();
    let out = forge().arg("pack").args(args).output().expect("run forge");
    eprintln!(
        "forge pack {args:?} -> {:?} in {:.1} s\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        started.elapsed().as_secs_f64(),
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// SHA-256 of a file, hex.
pub fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success(), "sha256sum: {}", text(&out.stderr));
    text(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a hash")
        .to_string()
}

/// MD5 of a file, hex (what Glance reports as an image's `checksum`).
pub fn md5(path: &Path) -> String {
    let out = Command::new("md5sum")
        .arg(path)
        .output()
        .expect("run md5sum");
    assert!(out.status.success(), "md5sum: {}", text(&out.stderr));
    text(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a hash")
        .to_string()
}

/// The staging temp dirs (`forge::disk::STAGING_PREFIX`) left in `dir`.
pub fn staging_leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.starts_with(forge::disk::STAGING_PREFIX))
        .collect()
}

/// Run `script` under `/bin/sh` inside `image`, read-only, through `guestfish -i` (one launch).
/// Returns stdout; panics when guestfish fails.
pub fn guest_sh(image: &Path, script: &str) -> String {
    let out = Command::new("guestfish")
        .envs(guestfs_env())
        .args(["--ro", "-a"])
        .arg(image)
        .args(["-i", "sh", script])
        .output()
        .expect("run guestfish");
    assert!(
        out.status.success(),
        "guestfish sh {script:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `qemu-img info` as JSON.
pub fn qemu_img_info(image: &Path) -> serde_json::Value {
    let out = Command::new("qemu-img")
        .args(["info", "-U", "--output=json"])
        .arg(image)
        .output()
        .expect("run qemu-img");
    assert!(out.status.success(), "qemu-img info: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("qemu-img JSON")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
