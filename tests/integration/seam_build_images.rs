//! `forge images list|prune|promote` on a template whose build has an image-file source, against
//! the real test cloud (tests/cloud/up.sh). `forge build` labels such a build
//! `NAME.image-file.SOURCE` and applies its retention; the images commands must see the same
//! build (they used to answer "has no OpenStack build"). The build's images are made directly
//! in Glance with the identity properties publish sets: nothing is built here.

use crate::cloud;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use forge::names;
use forge::openstack::image::{Image, ImageClient, ImageQuery, NewImage, Visibility};

const LABEL: &str = "off.image-file.disk";

/// `forge images ARGS...` against the test cloud: (exit code, stdout, stderr).
fn forge_images(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_forge"))
        .arg("images")
        .args(args)
        .env("OS_CLIENT_CONFIG_FILE", cloud::clouds_yaml())
        .env_remove("OS_CLOUD")
        .env_remove("FORGE_LOG")
        .output()
        .expect("run forge images");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A template whose one build is `off.image-file.disk` on the admin cloud, file `<tag>.pkr.hcl`.
fn image_file_template(dir: &Path, tag: &str) -> PathBuf {
    let disk = dir.join("disk.qcow2");
    std::fs::write(&disk, b"not built here").unwrap();
    let p = dir.join(format!("{tag}.pkr.hcl"));
    std::fs::write(
        &p,
        format!(
            r#"source "image-file" "disk" {{
  path       = "disk.qcow2"
  cloud      = "{admin}"
  image_name = "unused"
}}
build {{
  name    = "off"
  sources = ["source.image-file.disk"]
  retention {{
    keep       = 1
    hide_older = true
  }}
}}
"#,
            admin = cloud::ADMIN
        ),
    )
    .unwrap();
    p
}

async fn build_image(images: &ImageClient, tag: &str, file: &str, n: u32) -> Image {
    let mut new = NewImage::named(&format!("{tag}-{n}"));
    new.tags = vec![tag.to_string()];
    new.visibility = Some(Visibility::Private);
    new.properties = BTreeMap::from([
        (names::TEMPLATE.to_string(), file.to_string()),
        (names::BUILD.to_string(), LABEL.to_string()),
    ]);
    let data = cloud::data_file(1 << 12, 7);
    cloud::active_image(images, &new, data.path()).await
}

#[test]
fn images_commands_see_an_image_file_build() {
    if !cloud::available(true) {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let session = cloud::session(cloud::ADMIN).await;
        let images = ImageClient::new(session.clone());
        let tag = cloud::unique("seam-imgfile");
        let dir = tempfile::tempdir().unwrap();
        let template = image_file_template(dir.path(), &tag);
        let t = template.to_str().unwrap();
        let file = format!("{tag}.pkr.hcl");
        let result = {
            use futures::FutureExt;
            std::panic::AssertUnwindSafe(async {
                let old = build_image(&images, &tag, &file, 1).await;
                // Distinct created_at (one-second resolution).
                tokio::time::sleep(Duration::from_millis(1100)).await;
                let new = build_image(&images, &tag, &file, 2).await;

                let (code, stdout, stderr) = forge_images(&["list", t]);
                assert_eq!(code, 0, "{stdout}\n{stderr}");
                assert!(stdout.contains(&format!("build {LABEL}")), "{stdout}");
                assert!(stdout.contains("2 image(s)"), "{stdout}");
                assert!(
                    stdout.contains(&old.id) && stdout.contains(&new.id),
                    "{stdout}"
                );
                // Selected by the build block's name and by the label.
                for sel in ["off", LABEL] {
                    let (code, stdout, stderr) = forge_images(&["list", t, "--build", sel]);
                    assert_eq!(code, 0, "--build {sel}: {stdout}\n{stderr}");
                    assert!(stdout.contains("2 image(s)"), "{stdout}");
                }

                // The template's retention block: keep 1, hide the older.
                let (code, stdout, stderr) = forge_images(&["prune", t, "--yes"]);
                assert_eq!(code, 0, "{stdout}\n{stderr}");
                assert!(stdout.contains(&format!("hidden: {}", old.id)), "{stdout}");
                assert!(images.get(&old.id).await.unwrap().hidden());
                assert!(!images.get(&new.id).await.unwrap().hidden());

                let (code, stdout, stderr) =
                    forge_images(&["promote", t, "--image", &new.id, "--channel", "stable"]);
                assert_eq!(code, 0, "{stdout}\n{stderr}");
                let tags = images.get(&new.id).await.unwrap().tags;
                assert!(tags.iter().any(|x| x == "channel:stable"), "{tags:?}");
            })
            .catch_unwind()
            .await
        };
        let query = ImageQuery {
            tags: vec![tag.clone()],
            ..Default::default()
        };
        for image in images
            .list_with_hidden(&query, Some(100))
            .await
            .unwrap_or_default()
        {
            let _ = images.delete(&image.id).await;
        }
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    });
}
