//! Support for the tests that run against the real test cloud started by `tests/cloud/up.sh`
//! (Keystone, Glance, Placement, Nova with the fake virt driver, Neutron, Cinder on 127.0.0.1;
//! see the script's header for its one stand-in and how Neutron and Cinder are set up).
//!
//! Tests that use it are `#[ignore = "needs the test cloud: tests/cloud/up.sh"]`; run with
//! `--include-ignored`, they fail when the cloud is not running (see `tests/infra/mod.rs`).

use std::future::Future;
use std::net::{SocketAddr, TcpStream};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use forge::openstack::image::{ImageClient, ImageQuery, NewImage};
use forge::openstack::{CloudConfig, ConfigEnv, Session};
use futures::FutureExt;

// Included by each helper so that each works in any test binary.
#[allow(clippy::duplicate_mod)]
#[path = "../infra/mod.rs"]
mod infra;

/// Admin of project `admin` (sees every project's images).
pub const ADMIN: &str = "forge-admin";
/// Member of project `demo`.
pub const DEMO: &str = "forge-demo";

/// Where up.sh keeps its state (`TESTCLOUD_DIR`, default `/tmp/forge-testcloud`).
pub fn state_dir() -> PathBuf {
    std::env::var_os("TESTCLOUD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/forge-testcloud"))
}

/// The clouds.yaml up.sh writes.
pub fn clouds_yaml() -> PathBuf {
    state_dir().join("clouds.yaml")
}

/// The password of clouds.yaml entry `cloud_name` ([`ADMIN`] or [`DEMO`]), as up.sh wrote it.
pub fn password(cloud_name: &str) -> String {
    let text = std::fs::read_to_string(clouds_yaml()).expect("clouds.yaml");
    let section = text
        .split(&format!("{cloud_name}:"))
        .nth(1)
        .expect("the cloud in clouds.yaml");
    section
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .expect("a password in clouds.yaml")
        .trim()
        .to_string()
}

fn listening(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// Checks that the cloud is up (and Nova, with `needs_nova`); panics naming what is missing.
/// Always `true` when it returns: the `bool` keeps `if !cloud::available(..) { return; }`
/// callers compiling.
pub fn available(needs_nova: bool) -> bool {
    let mut missing = Vec::new();
    // up.sh writes it mode 600 (it holds passwords): readable by root, who runs up.sh.
    if let Err(e) = std::fs::read_to_string(clouds_yaml()) {
        missing.push(format!("readable {} ({e})", clouds_yaml().display()));
    }
    for (name, port) in [("keystone", 5000), ("glance", 9292)] {
        if !listening(port) {
            missing.push(format!("{name} on 127.0.0.1:{port}"));
        }
    }
    if needs_nova && !listening(8774) {
        missing.push("nova-api on 127.0.0.1:8774".into());
    }
    let missing = (!missing.is_empty()).then(|| format!("missing: {}", missing.join(", ")));
    infra::require("the test cloud", "sudo tests/cloud/up.sh", missing);
    true
}

/// Neutron (`neutron-server`, real since up.sh runs it) and Cinder's API, for
/// [`available_with`].
pub const NEUTRON: (&str, u16) = ("neutron-server", 9696);
pub const CINDER: (&str, u16) = ("cinder-api", 8776);

/// Like [`available`]`(true)` (Nova too), and also each of `services` listening.
pub fn available_with(services: &[(&str, u16)]) -> bool {
    available(true);
    let missing: Vec<String> = services
        .iter()
        .filter(|(_, port)| !listening(*port))
        .map(|(name, port)| format!("{name} on 127.0.0.1:{port}"))
        .collect();
    let missing = (!missing.is_empty()).then(|| {
        format!(
            "missing: {} (a cloud from an older up.sh?)",
            missing.join(", ")
        )
    });
    infra::require("the test cloud", "sudo tests/cloud/up.sh", missing);
    true
}

/// Configuration lookup as forge does it, pointed at up.sh's clouds.yaml only.
pub fn config_env() -> ConfigEnv {
    ConfigEnv::from_vars(
        [("OS_CLIENT_CONFIG_FILE", clouds_yaml().display().to_string())],
        None,
    )
}

/// A logged-in session for `cloud` (ADMIN or DEMO).
pub async fn session(cloud: &str) -> Arc<Session> {
    let config = CloudConfig::load(Some(cloud), &config_env()).expect("test cloud config");
    Session::connect(config).await.expect("login to test cloud")
}

/// A name no other test (or earlier run) uses: `forge-test-<label>-<pid>-<n>-<nanos>`.
pub fn unique(label: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "forge-test-{label}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Delete every image tagged `tag` or with property `forge_run=tag` (snapshots carry that
/// property, not tags), as admin (sees all projects). Returns how many.
pub async fn delete_tagged(images: &ImageClient, tag: &str) -> usize {
    let by_tag = ImageQuery {
        tags: vec![tag.to_string()],
        ..Default::default()
    };
    let by_property = ImageQuery {
        properties: [("forge_run".to_string(), tag.to_string())].into(),
        ..Default::default()
    };
    let mut n = 0;
    for query in [by_tag, by_property] {
        let found = images.list(&query, Some(100)).await.unwrap_or_default();
        n += found.len();
        for image in found {
            let _ = images.delete(&image.id).await;
        }
    }
    n
}

/// Like [`with_tag_cleanup`], and also deletes the servers whose name starts with `tag` and
/// the keypair `<tag>-kp`: a compute test that fails half-way leaves nothing in Nova either.
pub async fn with_compute_cleanup<F: Future>(
    session: &Arc<Session>,
    tag: &str,
    body: F,
) -> F::Output {
    use forge::openstack::compute::ComputeClient;
    use forge::openstack::wait::WaitOptions;
    let result = AssertUnwindSafe(body).catch_unwind().await;
    let nova = ComputeClient::new(session.clone());
    for server in nova.list_servers(Some(tag)).await.unwrap_or_default() {
        let _ = nova
            .delete_server_and_wait(
                &server.id,
                WaitOptions::with_timeout(Duration::from_secs(60)),
                &tokio_util::sync::CancellationToken::new(),
                &forge::pipeline::Progress::hidden(),
            )
            .await;
    }
    let _ = nova.delete_keypair(&format!("{tag}-kp")).await;
    delete_tagged(&ImageClient::new(session.clone()), tag).await;
    match result {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Run `body`, then delete the images tagged `tag` even when `body` panicked (the panic is
/// re-raised afterwards), so a failing test leaves nothing in Glance.
pub async fn with_tag_cleanup<F: Future>(admin: &ImageClient, tag: &str, body: F) -> F::Output {
    let result = AssertUnwindSafe(body).catch_unwind().await;
    delete_tagged(admin, tag).await;
    match result {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// A small file with `len` bytes of `fill`, for images that must be `active`.
pub fn data_file(len: usize, fill: u8) -> tempfile::NamedTempFile {
    use std::io::Write;
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(&vec![fill; len]).expect("write temp file");
    f
}

/// Create an image and upload `data` so it becomes `active`.
pub async fn active_image(
    images: &ImageClient,
    new: &NewImage,
    data: &std::path::Path,
) -> forge::openstack::image::Image {
    let created = images.create(new).await.expect("create image");
    images
        .upload_file(&created.id, data, &forge::pipeline::Progress::hidden())
        .await
        .expect("upload image data")
        .image
}
