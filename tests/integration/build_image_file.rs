//! `forge build` of a template whose source is `source "image-file"`: the real binary, real
//! libguestfs (TCG) over the Debian test image of `tests/image/setup.sh`, and the real test cloud
//! of `tests/cloud/up.sh` (Glance). Results are read back independently of forge: Glance's own
//! record, `md5sum`/`sha256sum`, `qemu-img info` and `guestfish`.
//!
//! Appliance launches: three `forge build`s (one each) plus one `guestfish` read-back.
#![cfg(feature = "guestfs")]

use crate::build;
use crate::cloud;
use crate::image;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use forge::openstack::image::{Image, ImageClient, ImageQuery};

/// One build's files: the input (an overlay of the base image, so the base is never at risk),
/// the template and spec beside it, and where `output` points.
struct Case {
    dir: tempfile::TempDir,
    input: image::Overlay,
    template: PathBuf,
    output: PathBuf,
    tag: String,
}

/// A template building `input` with the validators `spec` (a file in `tests/image/specs`, or
/// an absolute path) and its `arguments` (an HCL map), an inline shell command and a manifest;
/// with `keep_output`, the packed qcow2 is kept as `packed.qcow2` beside the template.
fn case(base: &Path, label: &str, spec: &Path, arguments: &str, keep_output: bool) -> Case {
    let tag = cloud::unique(label);
    let dir = tempfile::Builder::new()
        .prefix(&format!("forge-build-file-{label}-"))
        .tempdir()
        .unwrap();
    let input = image::overlay(base, label);
    let output = dir.path().join("packed.qcow2");
    let template = dir.path().join("t.pkr.hcl");
    std::fs::write(
        &template,
        format!(
            r#"source "image-file" "disk" {{
  path             = "{input}"
  format           = "qcow2"
  root_filesystem  = "/dev/sda1"
  {output}
  cloud            = "{admin}"
  image_name       = "{tag}"
  image_tags       = ["{tag}", "image-file"]
  image_properties = {{ os_distro = "debian" }}
  image_visibility = "private"
  image_min_disk   = 3
  image_timeout    = "5m"
}}

build {{
  name    = "file"
  sources = ["source.image-file.disk"]
  provisioner "validators" {{
    spec      = "{spec}"
    arguments = {arguments}
  }}
  provisioner "shell" {{
    inline = ["echo built > /root/built-by-forge"]
  }}
  post-processor "manifest" {{
    output = "manifest.json"
  }}
}}
"#,
            input = input.path.display(),
            admin = cloud::ADMIN,
            spec = image::specs_dir().join(spec).display(),
            arguments = arguments,
            output = if keep_output {
                r#"output           = "packed.qcow2""#
            } else {
                ""
            },
        ),
    )
    .unwrap();
    Case {
        dir,
        input,
        template,
        output,
        tag,
    }
}

/// `forge build` as the other build tests run it (test cloud, journal beside the template),
/// plus the libguestfs environment.
fn forge_build(template: &Path) -> Command {
    let mut c = build::forge_build_command(template, &[]);
    c.envs(image::guestfs_env());
    c
}

fn run_build(template: &Path) -> Output {
    let started = Instant::now();
    let out = forge_build(template).output().expect("run forge build");
    eprintln!(
        "forge build -> {:?} in {:.1} s\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        started.elapsed().as_secs_f64(),
        image::text(&out.stdout),
        image::text(&out.stderr)
    );
    out
}

fn run_id(stderr: &str) -> String {
    build::run_id(stderr).unwrap_or_else(|| panic!("no run id in:\n{stderr}"))
}

/// Images in Glance carrying `forge_run_id = run_id` (set at creation, before publish).
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

#[test]
#[ignore = "needs the test cloud and the libguestfs test image: tests/cloud/up.sh, tests/image/setup.sh"]
fn an_image_file_build_provisions_offline_uploads_and_publishes() {
    let Some(base) = ready() else {
        return;
    };
    let c = case(
        &base,
        "file-ok",
        Path::new("reconcile.yaml"),
        r#"{ marker_text = "from a build" }"#,
        true,
    );
    let before = image::sha256(&c.input.path);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let images = rt.block_on(async { ImageClient::new(cloud::session(cloud::ADMIN).await) });

    let out = run_build(&c.template);
    let stderr = image::text(&out.stderr);
    let id = image::text(&out.stdout).trim().to_string();
    let got = rt.block_on(cloud::with_tag_cleanup(&images, &c.tag, async {
        images.get(&id).await
    }));
    assert_eq!(out.status.code(), Some(0), "the build failed");
    let run = run_id(&stderr);

    let got = got.expect("the published image");
    assert_eq!(got.status, "active");
    assert_eq!(got.name.as_deref(), Some(c.tag.as_str()));
    assert_eq!(got.disk_format.as_deref(), Some("qcow2"));
    assert_eq!(got.tags.len(), 2, "{:?}", got.tags);
    assert!(got.tags.contains(&c.tag) && got.tags.contains(&"image-file".to_string()));
    assert_eq!(got.visibility, "private");
    assert_eq!(got.property("os_distro"), Some("debian"));
    assert_eq!(got.property("forge_run_id"), Some(run.as_str()));
    assert_eq!(got.property("forge_build"), Some("file.image-file.disk"));
    assert_eq!(got.property("forge_template"), Some("t.pkr.hcl"));
    assert_eq!(got.min_disk, 3);
    assert_eq!(
        got.checksum.as_deref(),
        Some(image::md5(&c.output).as_str()),
        "Glance holds exactly the output file"
    );

    assert_eq!(image::sha256(&c.input.path), before, "the input changed");
    assert!(
        image::staging_leftovers(c.dir.path()).is_empty(),
        "temp files left"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.dir.path().join("manifest.json")).unwrap())
            .unwrap();
    let entry = &manifest["builds"][0];
    assert_eq!(entry["builder_type"], "image-file");
    assert_eq!(entry["artifact_id"], id.as_str());
    assert_eq!(entry["arguments"]["marker_text"], "from a build");

    let info = image::qemu_img_info(&c.output);
    assert_eq!(info["format"], "qcow2");
    assert!(info.get("backing-filename").is_none(), "{info}");
    let seen = image::guest_sh(
        &c.output,
        "dpkg-query -W -f='${Package} ${db:Status-Status}\\n' hello; cat /root/forge-marker; \
         echo; cat /root/built-by-forge",
    );
    assert_eq!(seen.trim_end(), "hello installed\nfrom a build\nbuilt");
}

#[test]
#[ignore = "needs the test cloud and the libguestfs test image: tests/cloud/up.sh, tests/image/setup.sh"]
fn a_failing_validator_leaves_no_image_no_output_and_the_input_untouched() {
    let Some(base) = ready() else {
        return;
    };
    let c = case(&base, "file-fail", Path::new("failing.yaml"), "{}", true);
    let before = image::sha256(&c.input.path);

    let out = run_build(&c.template);
    let stderr = image::text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a failed build is exit 1");
    assert!(stderr.contains("deliberate failure"), "{stderr}");
    let run = run_id(&stderr);
    let left = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let images = ImageClient::new(cloud::session(cloud::ADMIN).await);
        images_of_run(&images, &run).await
    });
    assert!(left.is_empty(), "images left: {left:?}");
    assert!(!c.output.exists(), "output written despite the failure");
    assert!(
        image::staging_leftovers(c.dir.path()).is_empty(),
        "temp files left"
    );
    assert_eq!(image::sha256(&c.input.path), before, "the input changed");
}

/// Interrupted while provisioning an image without `output`: exit 130, no image in Glance, the
/// temp dir gone, the input untouched.
#[test]
#[ignore = "needs the test cloud and the libguestfs test image: tests/cloud/up.sh, tests/image/setup.sh"]
fn sigint_during_provision_cleans_up() {
    let Some(base) = ready() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let spec = scratch.path().join("slow.yaml");
    std::fs::write(
        &spec,
        "validators:\n  - script:\n      slow:\n        inline: |\n          sleep 8\n          touch /root/slow-done\n",
    )
    .unwrap();
    // Without `output` the overlay and the packed file live in a temp dir under TMPDIR.
    let c = case(&base, "file-int", &spec, "{}", false);
    let before = image::sha256(&c.input.path);
    let tmp = scratch.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();

    let mut child = forge_build(&c.template)
        .env("TMPDIR", &tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn forge build");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut sent = false;
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if !sent && line == "==> provision" {
            // Let the slow script start in the guest: closing must wait for it, then clean up.
            std::thread::sleep(Duration::from_secs(3));
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            sent = true;
        }
        text.push_str(&line);
        text.push('\n');
    }
    let status = child.wait().expect("wait for forge");
    let _ = reader.join();
    eprintln!("{text}");
    assert!(sent, "forge never started provisioning");
    assert_eq!(status.code(), Some(130), "an interrupted build is exit 130");
    let run = run_id(&text);
    let left = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let images = ImageClient::new(cloud::session(cloud::ADMIN).await);
        images_of_run(&images, &run).await
    });
    assert!(left.is_empty(), "images left: {left:?}");
    assert!(
        text.contains(&format!(
            "{}/{}",
            tmp.display(),
            forge::disk::STAGING_PREFIX
        )),
        "the overlay was not in TMPDIR:\n{text}"
    );
    assert!(image::staging_leftovers(&tmp).is_empty(), "temp files left");
    assert!(image::staging_leftovers(c.dir.path()).is_empty());
    assert_eq!(image::sha256(&c.input.path), before, "the input changed");
}

/// A spec argument the spec does not declare fails the build before the (slow) appliance
/// launch and before anything is created in the cloud.
#[test]
#[ignore = "needs the test cloud and the libguestfs test image: tests/cloud/up.sh, tests/image/setup.sh"]
fn a_wrong_spec_argument_fails_before_the_launch() {
    let Some(base) = ready() else {
        return;
    };
    let c = case(
        &base,
        "file-arg",
        Path::new("failing.yaml"),
        "{ nope = \"x\" }",
        true,
    );
    let out = run_build(&c.template);
    let stderr = image::text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unknown argument `nope`"), "{stderr}");
    assert!(!stderr.contains("==> open image"), "a step ran: {stderr}");
    assert!(!c.output.exists());
}

/// `forge validate` checks every image-file setting offline, each error at its place.
#[test]
fn validate_reports_image_file_settings_at_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.qcow2");
    std::fs::write(&disk, b"not really a disk").unwrap();
    let t = dir.path().join("t.pkr.hcl");
    std::fs::write(
        &t,
        r#"source "image-file" "a" {
  path            = "disk.qcow2"
  root_filesystem = "sda1"
  network         = "yes"
  output          = "disk.qcow2"
  image_visibility = "everyone"
  image_timeout   = "soon"
  flavor          = "m1.tiny"
}
source "image-file" "b" {
  path       = "absent.qcow2"
  image_name = "b"
  output     = "no/such/dir/out.qcow2"
}
build {
  sources = ["source.image-file.a", "source.image-file.b"]
}
"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_forge"))
        .args(["validate", t.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = image::text(&out.stderr);
    let f = t.display();
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(": error: ")).collect();
    let expected = [
        format!("{f}:1:1: error: missing required attribute `image_name`"),
        format!("{f}:3:21: error: `root_filesystem` must be a device such as \"/dev/sda1\""),
        format!("{f}:4:21: error: `network` must be a bool"),
        format!(
            "{f}:5:21: error: output {} is the input `path`",
            disk.display()
        ),
        format!("{f}:6:22: error: `image_visibility` must be one of"),
        format!("{f}:7:21: error: `image_timeout`: invalid duration"),
        format!("{f}:8:3: error: unknown attribute `flavor`"),
        format!(
            "{f}:11:16: error: path {} does not exist",
            dir.path().join("absent.qcow2").display()
        ),
        format!(
            "{f}:13:16: error: output {} is in a directory that does not exist",
            dir.path().join("no/such/dir/out.qcow2").display()
        ),
    ];
    for want in &expected {
        assert!(
            errors.iter().any(|e| e.starts_with(want.as_str())),
            "missing {want:?} in:\n{stderr}"
        );
    }
    assert_eq!(errors.len(), expected.len(), "{stderr}");
}
