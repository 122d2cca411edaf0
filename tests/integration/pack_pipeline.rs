//! The image-file steps as `forge pack` and `forge build` share them, where they meet the cloud:
//! a SIGKILLed `forge pack --upload` leaves an image that `forge cleanup` finds by the journal
//! and deletes, and a build that fails after `close image` keeps the previous `output`.
//!
//! Real parts: the `forge` binary, libguestfs (TCG) over the Debian test image of
//! `tests/image/setup.sh`, the test cloud's Glance (`tests/cloud/up.sh`). Two appliance
//! launches (one per test).
#![cfg(feature = "guestfs")]

use crate::build;
use crate::cloud;
use crate::image;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use forge::journal::{self, Record};
use forge::openstack::image::{Image, ImageClient, ImageQuery};

/// A spec that changes one file: as little appliance time as a real spec takes.
fn quick_spec(dir: &Path) -> PathBuf {
    let spec = dir.join("quick.yaml");
    std::fs::write(
        &spec,
        "validators:\n  - script:\n      mark:\n        inline: |\n          echo packed > /root/pack-mark\n",
    )
    .unwrap();
    spec
}

/// Images in Glance carrying `forge_run_id = run_id`, in every project (admin).
async fn images_of_run(images: &ImageClient, run_id: &str) -> Vec<Image> {
    let query = ImageQuery {
        properties: [("forge_run_id".to_string(), run_id.to_string())].into(),
        ..Default::default()
    };
    images.list(&query, Some(50)).await.expect("list images")
}

fn ready() -> Option<PathBuf> {
    let base = image::base_image()?;
    cloud::available(false).then_some(base)
}

/// SIGKILL `forge pack --output --upload` once its journal records the Glance image (the
/// upload then runs: ~450 MiB), then `forge cleanup --run ID --yes` deletes that image, found
/// through the journal. The killed pack wrote no `--output`.
#[test]
#[ignore = "needs the test cloud and the libguestfs test image: tests/cloud/up.sh, tests/image/setup.sh"]
fn a_sigkilled_pack_upload_is_found_and_deleted_by_cleanup() {
    let Some(base) = ready() else {
        return;
    };
    let input = image::overlay(&base, "pack-kill");
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("packed.qcow2");
    let state_home = dir.path().join("state");
    let tag = cloud::unique("pack-kill");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let images = rt.block_on(async { ImageClient::new(cloud::session(cloud::ADMIN).await) });

    let mut child = image::forge()
        .env("OS_CLIENT_CONFIG_FILE", cloud::clouds_yaml())
        .env("XDG_STATE_HOME", &state_home)
        .env_remove("OS_CLOUD")
        .env_remove("FORGE_LOG")
        .args(["pack", "--image"])
        .arg(&input.path)
        .arg("--spec")
        .arg(quick_spec(dir.path()))
        .arg("--output")
        .arg(&output)
        .args(["--upload", "--cloud", cloud::ADMIN, "--image-name", &tag])
        .args(["--image-tag", &tag])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn forge pack");
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });

    // Wait for the run id, then for the journal's `created image` record of `upload image`.
    let journal_dir = state_home.join("forge/runs");
    let (mut text, mut run, mut created) = (String::new(), None::<String>, None::<String>);
    let deadline = Instant::now() + Duration::from_secs(300);
    while created.is_none() && Instant::now() < deadline {
        match lines.recv_timeout(Duration::from_millis(5)) {
            Ok(line) => {
                run = run.or_else(|| build::run_id(&line));
                text.push_str(&line);
                text.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let Some(run) = &run else { continue };
        let records = journal::read(&journal_dir.join(format!("{run}.jsonl"))).unwrap_or_default();
        created = records.iter().find_map(|r| match r {
            Record::Created { step, kind, id, .. } if step == "upload image" && kind == "image" => {
                Some(id.clone())
            }
            _ => None,
        });
    }
    let _ = child.kill(); // SIGKILL
    let status = child.wait().unwrap();
    while let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
        text.push_str(&line);
        text.push('\n');
    }
    eprintln!("--- forge pack (killed: {status:?})\n{text}");
    let run = run.unwrap_or_else(|| panic!("no run id printed:\n{text}"));
    let id = created.unwrap_or_else(|| panic!("the upload never started:\n{text}"));
    let records = journal::read(&journal_dir.join(format!("{run}.jsonl"))).unwrap();

    let before = rt.block_on(images_of_run(&images, &run));
    let at_kill: Vec<String> = before
        .iter()
        .map(|i| format!("{} {}", i.id, i.status))
        .collect();
    eprintln!("images of run {run} after the kill: {at_kill:?}");
    let (code, out, err) = build::forge_cleanup(
        &journal_dir,
        &["--run", &run, "--cloud", cloud::ADMIN, "--yes"],
    );
    eprintln!("--- forge cleanup -> {code}\n{out}{err}");
    let after = rt.block_on(images_of_run(&images, &run));
    // Whatever the assertions say, nothing of this test stays in Glance.
    rt.block_on(async {
        for i in &after {
            let _ = images.delete(&i.id).await;
        }
        cloud::delete_tagged(&images, &tag).await;
    });

    assert!(
        !records.iter().any(|r| matches!(r, Record::Finished { .. })),
        "the pack finished before the kill: {records:?}"
    );
    assert_eq!(
        before.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        vec![id.as_str()],
        "the killed pack's image, tagged forge_run_id, is in Glance"
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("deleted image {tag}")), "{out}");
    assert!(after.is_empty(), "left after cleanup: {after:?}");
    assert!(!output.exists(), "a killed pack wrote --output");
}

/// An image-file build whose publish fails (Glance refuses the reserved `os_glance_` property,
/// after `close image` flattened and `upload image` sent the new file) keeps the previous
/// `output` byte for byte, and leaves no image and no temp dir.
#[test]
#[ignore = "needs the test cloud and the libguestfs test image: tests/cloud/up.sh, tests/image/setup.sh"]
fn a_build_failing_after_close_image_keeps_the_previous_output() {
    let Some(base) = ready() else {
        return;
    };
    let input = image::overlay(&base, "file-keep");
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("packed.qcow2");
    let previous = b"the previous good output".to_vec();
    std::fs::write(&output, &previous).unwrap();
    let tag = cloud::unique("file-keep");
    let template = dir.path().join("t.pkr.hcl");
    std::fs::write(
        &template,
        format!(
            r#"source "image-file" "disk" {{
  path             = "{input}"
  format           = "qcow2"
  root_filesystem  = "/dev/sda1"
  output           = "packed.qcow2"
  cloud            = "{admin}"
  image_name       = "{tag}"
  image_tags       = ["{tag}"]
  image_properties = {{ os_glance_forge_test = "refused by Glance" }}
}}

build {{
  sources = ["source.image-file.disk"]
  provisioner "validators" {{
    spec = "{spec}"
  }}
}}
"#,
            input = input.path.display(),
            admin = cloud::ADMIN,
            spec = quick_spec(dir.path()).display(),
        ),
    )
    .unwrap();

    let out = build::forge_build_command(&template, &[])
        .envs(image::guestfs_env())
        .output()
        .expect("run forge build");
    let stderr = image::text(&out.stderr);
    eprintln!("forge build -> {:?}\n{stderr}", out.status.code());
    let run = build::run_id(&stderr).unwrap_or_else(|| panic!("no run id in:\n{stderr}"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let left = rt.block_on(async {
        let images = ImageClient::new(cloud::session(cloud::ADMIN).await);
        let left = images_of_run(&images, &run).await;
        for i in &left {
            let _ = images.delete(&i.id).await;
        }
        cloud::delete_tagged(&images, &tag).await;
        left
    });

    assert_eq!(out.status.code(), Some(1), "the build did not fail");
    assert!(
        stderr.contains("step 'publish' failed"),
        "failed elsewhere than publish: {stderr}"
    );
    assert!(
        stderr.contains("packed "),
        "close image did not flatten before the failure: {stderr}"
    );
    assert_eq!(
        std::fs::read(&output).unwrap(),
        previous,
        "the failed build replaced the previous output"
    );
    assert!(left.is_empty(), "images left: {left:?}");
    assert!(
        image::staging_leftovers(dir.path()).is_empty(),
        "temp files left"
    );
}
