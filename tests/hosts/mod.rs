//! Real SSH test hosts for the integration tests: each [`TestHost`] is an OpenSSH `sshd` serving
//! its own copy-on-write Debian root in its own network namespace (`tests/hosts/host.sh`), built
//! from the base that `tests/hosts/setup.sh` prepares once. Dropping a host tears it down.
//!
//! Tests that use it are `#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]`; run
//! with `--include-ignored`, they fail when the base is missing (see `tests/infra/mod.rs`).

use std::collections::BTreeMap;
use std::hash::Hasher;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use forge::remote::ssh::{HostKeyPolicy, SshOptions, SshTarget};

// Included by each helper so that each works in any test binary.
#[allow(clippy::duplicate_mod)]
#[path = "../infra/mod.rs"]
mod infra;

pub const HOST_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hosts/host.sh");
pub const SETUP_SH: &str = "tests/hosts/setup.sh";

/// The directory setup.sh builds into.
pub fn testhosts_dir() -> PathBuf {
    std::env::var_os("TESTHOSTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/forge-testhosts"))
}

/// The client keys setup.sh makes (all authorized for root and for users made by `add_user`).
#[derive(Debug, Clone, Copy)]
pub enum Key {
    Ed25519,
    Rsa,
    /// ed25519, encrypted with [`KEY_PASSPHRASE`].
    Ed25519Passphrase,
}

pub const KEY_PASSPHRASE: &str = "forge pass";

impl Key {
    pub fn path(self) -> PathBuf {
        let name = match self {
            Key::Ed25519 => "id_ed25519",
            Key::Rsa => "id_rsa",
            Key::Ed25519Passphrase => "id_ed25519_pass",
        };
        testhosts_dir().join("keys").join(name)
    }
}

/// Why the hosts cannot run here, if they cannot.
fn missing_infrastructure() -> Option<String> {
    // The owner of /proc/self is our uid. The hosts need root for netns, mounts and chroot.
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1);
    if uid != 0 {
        return Some("SSH test hosts need root".into());
    }
    let dir = testhosts_dir();
    for need in [
        dir.join("forge-hostbase/.forge-ready"),
        dir.join("forge-repo/Packages.gz"),
        Key::Ed25519.path(),
        Key::Rsa.path(),
        Key::Ed25519Passphrase.path(),
    ] {
        if !need.exists() {
            return Some(format!("{} is missing", need.display()));
        }
    }
    None
}

/// Checks that the hosts can run here; panics naming what is missing. Always `Some` when it
/// returns (the `Option` keeps `?` callers compiling).
pub fn check_infrastructure(test: &str) -> Option<()> {
    let missing = missing_infrastructure().map(|why| format!("{test}: {why}"));
    infra::require("the SSH test hosts", &format!("sudo {SETUP_SH}"), missing);
    Some(())
}

/// Start a host (panics when the hosts cannot run here).
#[macro_export]
macro_rules! host_or_skip {
    ($test:expr) => {
        match hosts::TestHost::start($test) {
            Some(h) => h,
            None => unreachable!("TestHost::start panics when the hosts are missing"),
        }
    };
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// One running test host. Tear-down happens on drop (also when the test panics).
#[derive(Debug)]
pub struct TestHost {
    pub name: String,
    pub addr: String,
    dir: PathBuf,
}

impl TestHost {
    /// Start a fresh host for `test`; panics when the infrastructure is absent (never `None`).
    ///
    /// Subnet indexes: each process starts at a pid-derived offset and walks 1..=254; the netns
    /// name is derived from the index and `ip netns add` refuses an existing name, so two tests
    /// (in this process or another `cargo test` binary) can never claim the same subnet.
    pub fn start(test: &str) -> Option<TestHost> {
        check_infrastructure(test)?;
        let offset = (std::process::id() as usize).wrapping_mul(37);
        for _ in 0..254 {
            let index = 1 + (offset + NEXT.fetch_add(1, Ordering::SeqCst)) % 254;
            let name = format!("fs{index}");
            let out = Command::new("bash")
                .args([HOST_SH, "up", &name, &index.to_string()])
                .output()
                .expect("run host.sh");
            match out.status.code() {
                Some(0) => {
                    let addr = String::from_utf8_lossy(&out.stdout).trim().to_string();
                    return Some(TestHost {
                        dir: testhosts_dir().join("hosts").join(&name),
                        name,
                        addr,
                    });
                }
                Some(4) => continue, // taken
                _ => panic!(
                    "{test}: host.sh up {name} failed:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            }
        }
        panic!("{test}: no free test-host subnet (run tests/hosts/teardown.sh?)");
    }

    /// The host's root directory as seen from this machine (the merged overlay).
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// A known_hosts file that holds exactly this host's key.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// `USER@ADDR`.
    pub fn target(&self, user: &str) -> String {
        format!("{user}@{}", self.addr)
    }

    /// SSH options for `user` with `key`, strict checking against this host's known_hosts.
    pub fn ssh_options(&self, user: &str, key: Key) -> SshOptions {
        let target: SshTarget = self.target(user).parse().expect("target");
        SshOptions {
            target,
            key_file: key.path(),
            passphrase: None,
            known_hosts: self.known_hosts(),
            host_key_policy: HostKeyPolicy::Strict,
            connect_timeout: Duration::from_secs(10),
            retry_rejected_key: false,
        }
    }

    fn host_sh(&self, args: &[&str]) {
        let out = Command::new("bash")
            .arg(HOST_SH)
            .args(args)
            .output()
            .expect("run host.sh");
        assert!(
            out.status.success(),
            "host.sh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Add a login user with the setup keys; with `sudo`, passwordless sudo.
    pub fn add_user(&self, user: &str, sudo: bool) {
        let name = self.name.clone();
        if sudo {
            self.host_sh(&["add-user", &name, user]);
        } else {
            self.host_sh(&["add-user", &name, user, "nosudo"]);
        }
    }

    /// Make the local apt repository (tests/hosts/setup.sh) the host's only apt source.
    pub fn use_repo(&self) {
        let name = self.name.clone();
        self.host_sh(&["use-repo", &name]);
    }

    /// Run `cmd` with `/bin/sh` chrooted into the host's root, bypassing SSH and forge: for
    /// setting up and inspecting state.
    pub fn sh(&self, cmd: &str) -> Output {
        Command::new("chroot")
            .arg(self.root())
            .args(["/bin/sh", "-c", cmd])
            .output()
            .expect("chroot")
    }

    /// Like [`TestHost::sh`], asserting success; returns stdout.
    pub fn sh_ok(&self, cmd: &str) -> String {
        let out = self.sh(cmd);
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A file of the host (absolute path inside the host), if it exists.
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        std::fs::read(self.root().join(path.trim_start_matches('/'))).ok()
    }

    /// Write a file into the host (absolute path inside the host), creating directories.
    pub fn write(&self, path: &str, data: &[u8], mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.root().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Whether a package is installed on the host (dpkg's own record).
    pub fn installed(&self, package: &str) -> bool {
        let out = self.sh(&format!(
            "dpkg-query -W -f '${{Status}}' {package} 2>/dev/null"
        ));
        String::from_utf8_lossy(&out.stdout) == "install ok installed"
    }

    /// Every file, directory, link and whiteout that differs from the shared base: the overlay's
    /// upper layer records every change made through the host, deletions included, so comparing
    /// two snapshots of it shows any change to the host's file tree (content, mode, owner, mtime).
    pub fn snapshot(&self) -> Snapshot {
        let mut entries = BTreeMap::new();
        walk(&self.dir.join("upper"), Path::new("/"), &mut entries);
        Snapshot(entries)
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .args([HOST_SH, "down", &self.name])
            .output();
    }
}

/// Path (inside the host) → a description of what is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot(pub BTreeMap<PathBuf, String>);

impl Snapshot {
    /// Human-readable differences (`+ added`, `- removed`, `~ changed`), empty when equal.
    pub fn diff(&self, after: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        for (p, before) in &self.0 {
            match after.0.get(p) {
                None => out.push(format!("- {}", p.display())),
                Some(a) if a != before => out.push(format!("~ {} ({before} -> {a})", p.display())),
                _ => {}
            }
        }
        for p in after.0.keys() {
            if !self.0.contains_key(p) {
                out.push(format!("+ {}", p.display()));
            }
        }
        out
    }
}

fn walk(dir: &Path, inside: &Path, out: &mut BTreeMap<PathBuf, String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let path = e.path();
        let rel = inside.join(e.file_name());
        let Ok(m) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let common = format!(
            "mode={:o} uid={} gid={} mtime={}.{}",
            m.mode(),
            m.uid(),
            m.gid(),
            m.mtime(),
            m.mtime_nsec()
        );
        let ft = m.file_type();
        let what = if ft.is_dir() {
            walk(&path, &rel, out);
            format!("dir {common}")
        } else if ft.is_symlink() {
            let to = std::fs::read_link(&path).unwrap_or_default();
            format!("link -> {} {common}", to.display())
        } else if ft.is_file() {
            let data = std::fs::read(&path).unwrap_or_default();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            h.write(&data);
            format!("file size={} hash={:x} {common}", data.len(), h.finish())
        } else {
            // overlayfs whiteouts (deletions) are 0/0 character devices
            format!("special rdev={} {common}", m.rdev())
        };
        out.insert(rel, what);
    }
}

/// A tokio runtime for tests that call the library directly.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A temporary directory holding a spec and its scripts.
pub struct SpecDir {
    pub dir: tempfile::TempDir,
}

impl SpecDir {
    pub fn new() -> SpecDir {
        SpecDir {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write `rel` (a script or the spec) under the directory.
    pub fn file(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    /// Write `spec.yaml` and load it.
    pub fn load(&self, yaml: &str) -> forge::spec::Spec {
        let p = self.file("spec.yaml", yaml);
        forge::spec::load(&p, &[]).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Run the `forge` binary; returns (exit code, stdout, stderr).
pub fn forge<I, S>(args: I) -> (i32, String, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = Command::new(env!("CARGO_BIN_EXE_forge"))
        .args(args)
        .env_remove("FORGE_SSH_KEY_PASSPHRASE")
        .output()
        .expect("run forge");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl TestHost {
    /// The `forge check`/`reconcile` connection flags for `user` with the ed25519 key.
    pub fn cli_flags(&self, user: &str) -> Vec<String> {
        vec![
            "--ssh".into(),
            self.target(user),
            "--key".into(),
            Key::Ed25519.path().display().to_string(),
            "--known-hosts".into(),
            self.known_hosts().display().to_string(),
            "--connect-timeout".into(),
            "10".into(),
        ]
    }
}

/// Write a stand-in for every script of a corpus spec: in reconcile mode it records that it ran,
/// in test-only mode it checks that record (a real spec's scripts are idempotent the same way).
pub fn stand_in_scripts(root: &Path, names: &[&str]) {
    for name in names {
        let p = root.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let marker = format!("/var/lib/forge-standin/{}", name.replace('/', "__"));
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\nif [ \"$test_only\" = 1 ]; then test -e {marker}; exit; fi\n\
                 mkdir -p /var/lib/forge-standin && touch {marker}\n"
            ),
        )
        .unwrap();
    }
}

/// The Spark plugin's spec from the Sahara corpus, and the scripts it names.
pub fn spark_spec() -> (PathBuf, &'static [&'static str]) {
    let spec = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
        "tests/fixtures/sahara/sahara-plugin-spark__sahara_plugin_spark__plugins__spark.yaml",
    );
    (
        spec,
        &[
            "centos/wget_cdh_repo",
            "ubuntu/wget_cdh_repo",
            "common/install_spark",
            "ubuntu/config_spark",
            "common/install_extjs",
            "centos/turn_off_services",
            "ubuntu/turn_off_services",
            "common/manipulate_s3",
            "common/add_jar",
        ],
    )
}
