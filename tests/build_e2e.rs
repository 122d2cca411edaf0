//! `forge build` end to end against the real test cloud (Keystone, Glance, Nova with the fake
//! virt driver) and a real SSH test host: source filter → boot → SSH reconcile → stop →
//! snapshot → publish → manifest; then nothing forge created may remain.
//!
//! Servers booted by the fake driver have no network, so the template's `ssh_host` points at a
//! test host (network namespace + real sshd). Packer needs the same arrangement.

mod build;
mod cloud;
mod hosts;

use build::{forge_build, leftovers, public_key, Knobs};
use forge::openstack::compute::ComputeClient;
use forge::openstack::image::{ImageClient, NewImage, Visibility};

#[test]
fn build_publishes_the_image_and_leaves_nothing_behind() {
    if !cloud::available(true) {
        return;
    }
    let host = host_or_skip!("build_publishes_the_image_and_leaves_nothing_behind");
    host.use_repo();
    let rt = hosts::runtime();
    rt.block_on(async {
        let session = cloud::session(cloud::ADMIN).await;
        let images = ImageClient::new(session.clone());
        let compute = ComputeClient::new(session.clone());
        let tag = cloud::unique("e2e");
        let keypair = format!("{tag}-kp");
        compute
            .create_keypair(&keypair, &public_key(&hosts::Key::Ed25519.path()))
            .await
            .expect("register the test key");
        let data = cloud::data_file(1 << 20, 7);
        let mut new = NewImage::named(&format!("{tag}-base"));
        new.tags = vec![tag.clone()];
        new.visibility = Some(Visibility::Private);
        let base = cloud::active_image(&images, &new, data.path()).await;

        let dir = tempfile::tempdir().unwrap();
        let template = Knobs::good(&host, &tag, &keypair).write(dir.path());
        let hostile = "it's \"quoted\" $(touch /tmp/pwned) `id` & spaces";
        let (code, stdout, stderr) =
            forge_build(&template, &["-var", &format!("greeting={hostile}")]);
        let result = std::panic::AssertUnwindSafe(async {
            assert_eq!(code, 0, "forge build failed:\n{stderr}");
            let image_id = stdout.trim().to_string();
            let image = images.get(&image_id).await.expect("published image");
            assert_eq!(image.status, "active");
            assert_eq!(image.name.as_deref(), Some(format!("{tag}-built").as_str()));
            let mut tags = image.tags.clone();
            tags.sort();
            let mut want = vec![tag.clone(), "e2e-built".to_string()];
            want.sort();
            assert_eq!(tags, want);
            assert_eq!(image.property("os_distro"), Some("debian"));
            assert_eq!(image.property("built_by"), Some("forge-e2e"));
            assert_eq!(image.property("forge_source_image"), Some(base.id.as_str()));
            assert_eq!(image.visibility, "private");
            assert_eq!(image.min_disk, 2);
            // The provisioners really ran on the host, with the argument verbatim.
            assert!(
                host.installed("hello"),
                "package validator did not install hello"
            );
            assert_eq!(
                host.read("/root/greeting").as_deref(),
                Some(hostile.as_bytes())
            );
            assert_eq!(
                host.read("/root/built-by-forge").as_deref(),
                Some(&b"built\n"[..])
            );
            assert!(
                host.read("/tmp/pwned").is_none(),
                "a hostile argument was executed"
            );

            let manifest: serde_json::Value = serde_json::from_slice(
                &std::fs::read(dir.path().join("manifest.json")).expect("manifest written"),
            )
            .unwrap();
            let b = &manifest["builds"][0];
            assert_eq!(b["artifact_id"], image_id.as_str());
            assert_eq!(b["builder_type"], "openstack");
            assert_eq!(b["source_image"]["id"], base.id.as_str());
            assert_eq!(b["arguments"]["greeting"], hostile);
            let run_id = b["run_id"].as_str().unwrap().to_string();
            assert_eq!(manifest["last_run_uuid"], run_id.as_str());
            let steps: Vec<&str> = b["steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["name"].as_str().unwrap())
                .collect();
            assert_eq!(
                steps,
                [
                    "source image",
                    "flavor",
                    "keypair",
                    "boot server",
                    "connect",
                    "provision",
                    "stop server",
                    "snapshot",
                    "publish"
                ]
            );
            let resources = b["resources"].as_array().unwrap();
            let server = resources
                .iter()
                .find(|r| r["kind"] == "server")
                .expect("server in manifest");
            assert_eq!(server["deleted"], true);
            let snapshot = resources
                .iter()
                .find(|r| r["kind"] == "image")
                .expect("image in manifest");
            assert_eq!(snapshot["id"], image_id.as_str());
            assert_eq!(snapshot["deleted"], false);

            // Nothing but the published image remains of this run.
            let left = leftovers(&session, &run_id).await;
            assert!(left.servers.is_empty(), "servers left: {:?}", left.servers);
            assert!(
                left.keypairs.is_empty(),
                "keypairs left: {:?}",
                left.keypairs
            );
            assert_eq!(left.images, vec![image_id.clone()]);
            // The source image is untouched.
            let base_after = images.get(&base.id).await.unwrap();
            assert_eq!(base_after.status, "active");
            assert_eq!(base_after.tags, base.tags);
        })
        .catch_unwind_async()
        .await;
        let _ = compute.delete_keypair(&keypair).await;
        cloud::delete_tagged(&images, &tag).await;
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    });
}

/// `catch_unwind` for the async test bodies, so the cloud is cleaned even when an assertion
/// fails.
trait CatchUnwindAsync: std::future::Future + Sized {
    fn catch_unwind_async(self) -> futures::future::CatchUnwind<Self>
    where
        Self: std::panic::UnwindSafe,
    {
        futures::FutureExt::catch_unwind(self)
    }
}

impl<F: std::future::Future> CatchUnwindAsync for F {}
