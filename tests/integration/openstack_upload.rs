//! Streamed Glance upload of a 200 MiB file against the real test cloud: memory stays flat
//! and the checksum Glance computed matches ours. Peak RSS is per process, so the test re-runs
//! itself in a fresh process of this binary that runs only this upload.

use crate::cloud;

use std::io::Write;

use forge::openstack::image::{ImageClient, NewImage};
use forge::pipeline::Progress;

/// Peak resident set size of this process so far (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Set in the child process that does the upload.
const CHILD: &str = "FORGE_TEST_UPLOAD_CHILD";

#[test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
fn upload_200_mib_streams_with_flat_memory_and_verified_checksum() {
    if std::env::var_os(CHILD).is_some() {
        return tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(upload_in_this_process());
    }
    let name = "openstack_upload::upload_200_mib_streams_with_flat_memory_and_verified_checksum";
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--include-ignored", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .expect("run the upload in a child process");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(out.status.success(), "the upload child failed");
    // It must have run (a renamed test would filter to nothing and "pass").
    assert!(stdout.contains("1 passed"), "the upload child ran no test");
}

async fn upload_in_this_process() {
    if !cloud::available(false) {
        return;
    }
    const SIZE: usize = 200 << 20;
    let admin = ImageClient::new(cloud::session(cloud::ADMIN).await);
    let tag = cloud::unique("upload");

    // Write the file in 1 MiB chunks of varying content (so a wrong offset changes the hash).
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let mut chunk = vec![0u8; 1 << 20];
    for i in 0..(SIZE >> 20) {
        for (j, b) in chunk.iter_mut().enumerate() {
            *b = (i * 31 + j * 7) as u8;
        }
        file.write_all(&chunk).unwrap();
    }
    file.flush().unwrap();
    drop(chunk);

    cloud::with_tag_cleanup(&admin, &tag, async {
        let mut new = NewImage::named(&tag);
        new.tags = vec![tag.clone()];
        let image = admin.create(&new).await.unwrap();
        let rss_before = peak_rss_kib();
        let report = admin
            .upload_file(&image.id, file.path(), &Progress::hidden())
            .await
            .unwrap();
        let rss_after = peak_rss_kib();
        eprintln!(
            "figure: 200 MiB upload: {:.2} s, {:.0} MiB/s, peak RSS {} MiB before, {} MiB after \
             (growth {} MiB)",
            report.elapsed.as_secs_f64(),
            report.mib_per_sec(),
            rss_before / 1024,
            rss_after / 1024,
            (rss_after.saturating_sub(rss_before)) / 1024
        );
        assert_eq!(report.bytes, SIZE as u64);
        assert_eq!(report.image.status, "active");
        assert_eq!(report.image.size, Some(SIZE as u64));
        assert_eq!(report.image.os_hash_algo.as_deref(), Some("sha512"));
        // Flat memory: the 200 MiB never sit in memory (1 MiB chunks, a few in flight).
        assert!(
            rss_after.saturating_sub(rss_before) < 48 * 1024,
            "peak RSS grew by {} MiB during a 200 MiB upload",
            (rss_after - rss_before) / 1024
        );
    })
    .await;
}
