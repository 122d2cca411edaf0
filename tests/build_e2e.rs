//! `forge build` end to end against the real test cloud (Keystone, Glance, Nova with the fake
//! virt driver) and a real SSH test host: source filter → boot → SSH reconcile → stop →
//! snapshot → publish → manifest; then nothing forge created may remain.
//!
//! Servers booted by the fake driver have no network, so the template's `ssh_host` points at a
//! test host (network namespace + real sshd). Packer needs the same arrangement.

mod cloud;
mod hosts;

use std::path::{Path, PathBuf};
use std::process::Command;

use forge::openstack::compute::ComputeClient;
use forge::openstack::image::{ImageClient, NewImage, Visibility};
use forge::openstack::Session;
use reqwest::Method;

/// What a build left in the cloud, by this run's id: servers named `forge-<run>…`, keypairs
/// named `forge-<run>…`, and images carrying `forge_run_id`.
pub struct Leftovers {
    pub servers: Vec<String>,
    pub keypairs: Vec<String>,
    pub images: Vec<String>,
}

impl Leftovers {
    pub fn count(&self) -> usize {
        self.servers.len() + self.keypairs.len() + self.images.len()
    }
}

pub async fn leftovers(session: &std::sync::Arc<Session>, run_id: &str) -> Leftovers {
    let compute = ComputeClient::new(session.clone());
    let prefix = format!("forge-{run_id}");
    let servers = compute
        .list_servers(Some(&prefix))
        .await
        .expect("list servers")
        .into_iter()
        .filter(|s| s.name.starts_with(&prefix))
        .map(|s| s.id)
        .collect();
    #[derive(serde::Deserialize)]
    struct Keypairs {
        keypairs: Vec<Wrapped>,
    }
    #[derive(serde::Deserialize)]
    struct Wrapped {
        keypair: Named,
    }
    #[derive(serde::Deserialize)]
    struct Named {
        name: String,
    }
    let url = session
        .url("compute", &["os-keypairs"])
        .await
        .expect("keypairs url");
    let kps: Keypairs = session
        .send_json(Method::GET, url, |r| r)
        .await
        .expect("list keypairs");
    let keypairs = kps
        .keypairs
        .into_iter()
        .map(|k| k.keypair.name)
        .filter(|n| n.starts_with(&prefix))
        .collect();
    let images = ImageClient::new(session.clone());
    let query = forge::openstack::image::ImageQuery {
        properties: [("forge_run_id".to_string(), run_id.to_string())].into(),
        ..Default::default()
    };
    let images = images
        .list(&query, Some(50))
        .await
        .expect("list images")
        .into_iter()
        .map(|i| i.id)
        .collect();
    Leftovers {
        servers,
        keypairs,
        images,
    }
}

/// A template directory: `t.pkr.hcl`, `image.yaml` and its script.
fn write_template(dir: &Path, host: &hosts::TestHost, base_name: &str, tag: &str, keypair: &str) {
    std::fs::write(
        dir.join("image.yaml"),
        r#"arguments:
  greeting:
    description: written to /root/greeting
    default: none
validators:
  - package: hello
  - script:
      greet:
        env_vars: [greeting]
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("greet"),
        "#!/bin/bash\nif [ \"$test_only\" = 1 ]; then test -f /root/greeting; exit; fi\n\
         printf '%s' \"$greeting\" > /root/greeting\n",
    )
    .unwrap();
    let key = hosts::Key::Ed25519.path();
    std::fs::write(
        dir.join("t.pkr.hcl"),
        format!(
            r#"variable "greeting" {{
  type    = string
  default = "hello"
}}

source "openstack" "e2e" {{
  cloud = "{admin}"
  source_image_filter {{
    filters {{
      name = "{base_name}"
      tags = ["{tag}"]
    }}
    most_recent = true
  }}
  flavor               = "m1.tiny"
  ssh_username         = "root"
  ssh_host             = "{addr}"
  ssh_keypair_name     = "{keypair}"
  ssh_private_key_file = "{key}"
  ssh_timeout          = "30s"
  boot_timeout         = "2m"
  image_timeout        = "2m"
  image_name           = "{tag}-built"
  image_tags           = ["{tag}", "e2e-built"]
  image_properties     = {{ os_distro = "debian", built_by = "forge-e2e" }}
  image_visibility     = "private"
  image_min_disk       = 2
}}

build {{
  name    = "e2e"
  sources = ["source.openstack.e2e"]
  provisioner "validators" {{
    spec      = "image.yaml"
    arguments = {{ greeting = var.greeting }}
  }}
  provisioner "shell" {{
    inline = ["echo built > /root/built-by-forge"]
  }}
  post-processor "manifest" {{
    output = "manifest.json"
  }}
}}
"#,
            admin = cloud::ADMIN,
            addr = host.addr,
            key = key.display(),
        ),
    )
    .unwrap();
}

/// Run `forge build` on the template with the test cloud's clouds.yaml.
fn forge_build(template: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_forge"))
        .arg("build")
        .arg(template)
        .args(extra)
        .env("OS_CLIENT_CONFIG_FILE", cloud::clouds_yaml())
        .env("XDG_STATE_HOME", template.parent().unwrap())
        .env_remove("OS_CLOUD")
        .output()
        .expect("run forge build");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn public_key(private: &Path) -> String {
    let mut p = PathBuf::from(private);
    p.set_extension("pub");
    std::fs::read_to_string(&p)
        .or_else(|_| std::fs::read_to_string(format!("{}.pub", private.display())))
        .expect("public key of the test key")
}

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
            .create_keypair(&keypair, public_key(&hosts::Key::Ed25519.path()).trim())
            .await
            .expect("register the test key");
        let data = cloud::data_file(1 << 20, 7);
        let mut new = NewImage::named(&format!("{tag}-base"));
        new.tags = vec![tag.clone()];
        new.visibility = Some(Visibility::Private);
        let base = cloud::active_image(&images, &new, data.path()).await;

        let dir = tempfile::tempdir().unwrap();
        write_template(dir.path(), &host, &format!("{tag}-base"), &tag, &keypair);
        let hostile = "it's \"quoted\" $(touch /tmp/pwned) `id` & spaces";
        let (code, stdout, stderr) = forge_build(
            &dir.path().join("t.pkr.hcl"),
            &["-var", &format!("greeting={hostile}")],
        );
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
