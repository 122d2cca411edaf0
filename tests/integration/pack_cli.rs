//! `forge pack` end to end: the real binary, real libguestfs (TCG), a real Debian image with a
//! local apt repository (`tests/image/setup.sh`). Each test packs its own overlay of the base
//! image; results are read back with `guestfish`, independently of forge. Six appliance launches; the --output test also uploads to the test cloud.
#![cfg(feature = "guestfs")]

use crate::cloud;
use crate::image;

use std::path::Path;

/// A spec argument with everything a shell could trip over.
const HOSTILE: &str =
    "it's $(touch /root/pwned1) `touch /root/pwned2` \"q\" ; touch /root/pwned3\nline 2 $HOME";

fn spec(name: &str) -> String {
    image::specs_dir().join(name).display().to_string()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".forge-pack-"))
        .collect()
}

#[test]
#[ignore = "needs the libguestfs test image: tests/image/setup.sh"]
fn reconcile_in_place_installs_runs_and_copies_then_test_only_passes_without_writing() {
    let Some(base) = image::base_image() else {
        return;
    };
    let disk = image::overlay(&base, "inplace");
    let img = disk.path.display().to_string();
    let arg = format!("marker_text={HOSTILE}");
    let spec = spec("reconcile.yaml");

    let out = image::pack(&["--image", &img, "--spec", &spec, "--arg", &arg]);
    assert_eq!(out.status.code(), Some(0), "reconcile failed");

    // Test-only proves the reconcile, and (a discarded snapshot) changes nothing. The root named
    // by hand gives the same result as inspection.
    let before = image::sha256(&disk.path);
    let out = image::pack(&[
        "--image",
        &img,
        "--spec",
        &spec,
        "--arg",
        &arg,
        "--test-only",
        "--root-filesystem",
        "/dev/sda1",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "test-only after reconcile failed"
    );
    assert_eq!(
        image::sha256(&disk.path),
        before,
        "test-only wrote the image"
    );

    let seen = image::guest_sh(
        &disk.path,
        "dpkg-query -W -f='${Package} ${db:Status-Status}\\n' hello tree jq; \
         echo ---; cat /root/forge-marker; echo; echo ---; cat /tmp/pack_helper.sh; \
         echo ---; cat /root/any-second-branch; echo ---; ls /root",
    );
    let parts: Vec<&str> = seen.split("---\n").collect();
    assert_eq!(parts.len(), 5, "{seen}");
    assert_eq!(
        parts[0], "hello installed\njq installed\ntree installed\n",
        "packages from the local repo (dpkg-query sorts by name)"
    );
    assert_eq!(
        parts[1],
        format!("{HOSTILE}\n"),
        "the argument reached the script verbatim"
    );
    let helper =
        std::fs::read_to_string(image::specs_dir().join("scripts/helpers/pack_helper.sh")).unwrap();
    assert_eq!(parts[2], helper, "copy_script copied the bytes verbatim");
    assert_eq!(
        parts[3], "second branch ran\n",
        "a failing command in an `any` branch fell through to the next branch"
    );
    assert!(
        !parts[4].contains("pwned"),
        "a hostile value executed: {}",
        parts[4]
    );
}

/// `--output` plus `--upload`: one appliance launch serves both (launches are slow).
#[test]
#[ignore = "needs the test cloud and the libguestfs test image: tests/cloud/up.sh, tests/image/setup.sh"]
fn output_writes_a_standalone_qcow2_leaves_the_input_byte_identical_and_uploads_it() {
    let Some(base) = image::base_image() else {
        return;
    };
    if !cloud::available(false) {
        return;
    }
    let disk = image::overlay(&base, "output-in");
    let out_dir = tempfile::tempdir().unwrap();
    let output = out_dir.path().join("packed.qcow2");
    let before = image::sha256(&disk.path);
    let tag = cloud::unique("pack-upload");

    let out = image::forge()
        .env("OS_CLIENT_CONFIG_FILE", cloud::clouds_yaml())
        .args([
            "pack",
            "--image",
            &disk.path.display().to_string(),
            "--spec",
            &spec("reconcile.yaml"),
            "--output",
            &output.display().to_string(),
            "--upload",
            "--cloud",
            cloud::ADMIN,
            "--image-name",
            &tag,
            "--image-tag",
            &tag,
            "--image-property",
            "os_distro=debian",
            "--image-visibility",
            "private",
        ])
        .output()
        .expect("run forge pack");
    eprintln!("{}", image::text(&out.stderr));
    let image_id = image::text(&out.stdout).trim().to_string();
    let uploaded = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let images = forge::openstack::image::ImageClient::new(cloud::session(cloud::ADMIN).await);
        let got = images.get(&image_id).await;
        cloud::delete_tagged(&images, &tag).await;
        got
    });
    assert_eq!(out.status.code(), Some(0), "pack --output --upload failed");
    let uploaded = uploaded.expect("the uploaded image");
    assert_eq!(uploaded.status, "active");
    assert_eq!(uploaded.disk_format.as_deref(), Some("qcow2"));
    assert_eq!(uploaded.tags, vec![tag.clone()]);
    assert_eq!(uploaded.property("os_distro"), Some("debian"));
    assert_eq!(
        uploaded.size,
        Some(std::fs::metadata(&output).unwrap().len()),
        "Glance holds exactly the output file"
    );
    assert_eq!(image::sha256(&disk.path), before, "the input changed");
    assert!(
        leftovers(out_dir.path()).is_empty(),
        "temp files left behind"
    );

    let info = image::qemu_img_info(&output);
    assert_eq!(info["format"], "qcow2");
    assert!(
        info.get("backing-filename").is_none(),
        "output still has a backing file: {info}"
    );
    let seen = image::guest_sh(
        &output,
        "dpkg-query -W -f='${Package}\\n' hello; cat /root/forge-marker",
    );
    assert_eq!(seen, "hello\nplain\n", "the output holds the packed result");
}

#[test]
#[ignore = "needs the test cloud and the libguestfs test image: tests/cloud/up.sh, tests/image/setup.sh"]
fn failing_validator_leaves_no_output_and_the_input_untouched() {
    let Some(base) = image::base_image() else {
        return;
    };
    let disk = image::overlay(&base, "failing");
    let out_dir = tempfile::tempdir().unwrap();
    let output = out_dir.path().join("never.qcow2");
    let before = image::sha256(&disk.path);

    let out = image::pack(&[
        "--image",
        &disk.path.display().to_string(),
        "--spec",
        &spec("failing.yaml"),
        "--output",
        &output.display().to_string(),
    ]);
    let stderr = image::text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a failed validator is exit 1");
    assert!(
        stderr.contains("failing.yaml:"),
        "failure without its spec location: {stderr}"
    );
    assert!(!output.exists(), "--output was written despite the failure");
    assert!(
        leftovers(out_dir.path()).is_empty(),
        "temp files left behind"
    );
    assert_eq!(image::sha256(&disk.path), before, "the input changed");
}

#[test]
fn usage_and_spec_errors_exit_2_before_any_launch() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let disk_s = disk.display().to_string();
    let bad_spec = dir.path().join("bad.yaml");
    std::fs::write(&bad_spec, "validators:\n  - no_such_validator: x\n").unwrap();
    let needs_arg = dir.path().join("needs-arg.yaml");
    std::fs::write(
        &needs_arg,
        "arguments:\n  release:\n    description: the release\n    required: true\nvalidators: []\n",
    )
    .unwrap();

    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--image".into(),
                disk_s.clone(),
                "--spec".into(),
                bad_spec.display().to_string(),
            ],
            "bad.yaml:2:",
        ),
        (
            vec![
                "--image".into(),
                "/nonexistent/forge.qcow2".into(),
                "--spec".into(),
                spec("failing.yaml"),
            ],
            "/nonexistent/forge.qcow2",
        ),
        (
            vec![
                "--image".into(),
                disk_s.clone(),
                "--spec".into(),
                spec("failing.yaml"),
                "--output".into(),
                disk_s.clone(),
            ],
            "is the input image",
        ),
        (
            vec![
                "--image".into(),
                disk_s.clone(),
                "--spec".into(),
                spec("failing.yaml"),
                "--arg".into(),
                "novalue".into(),
            ],
            "NAME=VALUE",
        ),
        (
            // A missing required argument is caught before the (slow) appliance launch.
            vec![
                "--image".into(),
                disk_s.clone(),
                "--spec".into(),
                needs_arg.display().to_string(),
            ],
            "argument `release` is required",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = image::pack(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = image::text(&out.stderr);
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in {stderr}"
        );
    }
}
