//! Support for the `forge build` tests: a template writer with knobs for each fault, the
//! `forge build` process, and a census of what a run left in the test cloud.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;

use forge::openstack::compute::ComputeClient;
use forge::openstack::image::{ImageClient, ImageQuery};
use forge::openstack::Session;
use reqwest::Method;

use crate::cloud;
use crate::hosts;

/// What a build left in the cloud, by its run id: servers and keypairs named `forge-<run>…`,
/// images carrying `forge_run_id`.
#[derive(Debug)]
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

pub async fn leftovers(session: &Arc<Session>, run_id: &str) -> Leftovers {
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
    let query = ImageQuery {
        properties: [("forge_run_id".to_string(), run_id.to_string())].into(),
        ..Default::default()
    };
    // Snapshots carry forge_run_id from createImage's metadata, before publish runs.
    let images = ImageClient::new(session.clone())
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

/// The template's variable parts. `Knobs::good` builds successfully.
#[derive(Debug, Clone)]
pub struct Knobs {
    pub base_name: String,
    pub tag: String,
    pub flavor: String,
    pub ssh_host: String,
    pub ssh_port: u16,
    /// `Some(name)`: use this registered keypair with the test key; `None`: temporary keypair.
    pub keypair: Option<String>,
    pub ssh_timeout: String,
    pub image_timeout: String,
    /// Extra `image_properties` entries (HCL `key = "value"` pairs).
    pub extra_properties: String,
    /// The spec's script exits non-zero in reconcile mode.
    pub failing_validator: bool,
    /// The spec's script sleeps this many seconds (to be interrupted).
    pub script_sleep: u32,
}

impl Knobs {
    pub fn good(host: &hosts::TestHost, tag: &str, keypair: &str) -> Knobs {
        Knobs {
            base_name: format!("{tag}-base"),
            tag: tag.to_string(),
            flavor: "m1.tiny".into(),
            ssh_host: host.addr.clone(),
            ssh_port: 22,
            keypair: Some(keypair.to_string()),
            ssh_timeout: "30s".into(),
            image_timeout: "2m".into(),
            extra_properties: String::new(),
            failing_validator: false,
            script_sleep: 0,
        }
    }

    /// Write `t.pkr.hcl`, `image.yaml` and its script into `dir`; returns the template path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        std::fs::write(
            dir.join("image.yaml"),
            "arguments:\n  greeting:\n    description: written to /root/greeting\n    default: none\n\
             validators:\n  - package: hello\n  - script:\n      greet:\n        env_vars: [greeting]\n",
        )
        .unwrap();
        let fail = if self.failing_validator {
            "echo 'validator failed on purpose' >&2; exit 3\n"
        } else {
            ""
        };
        std::fs::write(
            dir.join("greet"),
            format!(
                "#!/bin/bash\nif [ \"$test_only\" = 1 ]; then test -f /root/greeting; exit; fi\n\
                 sleep {}\n{fail}printf '%s' \"$greeting\" > /root/greeting\n",
                self.script_sleep
            ),
        )
        .unwrap();
        let keypair = match &self.keypair {
            Some(name) => format!(
                "ssh_keypair_name     = \"{name}\"\n  ssh_private_key_file = \"{}\"",
                hosts::Key::Ed25519.path().display()
            ),
            None => String::new(),
        };
        let path = dir.join("t.pkr.hcl");
        std::fs::write(
            &path,
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
  flavor        = "{flavor}"
  ssh_username  = "root"
  ssh_host      = "{ssh_host}"
  ssh_port      = {ssh_port}
  {keypair}
  ssh_timeout   = "{ssh_timeout}"
  boot_timeout  = "2m"
  image_timeout = "{image_timeout}"
  image_name    = "{tag}-built"
  image_tags    = ["{tag}", "e2e-built"]
  image_properties = {{
    os_distro = "debian"
    built_by  = "forge-e2e"
    {extra}
  }}
  image_visibility = "private"
  image_min_disk   = 2
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
                base_name = self.base_name,
                tag = self.tag,
                flavor = self.flavor,
                ssh_host = self.ssh_host,
                ssh_port = self.ssh_port,
                ssh_timeout = self.ssh_timeout,
                image_timeout = self.image_timeout,
                extra = self.extra_properties,
            ),
        )
        .unwrap();
        path
    }
}

/// `forge build TEMPLATE ARGS...` with the test cloud's clouds.yaml; the journal goes beside the
/// template.
pub fn forge_build_command(template: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_forge"));
    c.arg("build")
        .arg(template)
        .args(extra)
        .env("OS_CLIENT_CONFIG_FILE", cloud::clouds_yaml())
        .env("XDG_STATE_HOME", template.parent().unwrap())
        .env_remove("OS_CLOUD")
        .env_remove("FORGE_LOG");
    c
}

/// Run `forge build` to the end: (exit code, stdout, stderr).
pub fn forge_build(template: &Path, extra: &[&str]) -> (i32, String, String) {
    let out: Output = forge_build_command(template, extra)
        .output()
        .expect("run forge build");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Start `forge build` with piped output (for interrupting it).
pub fn spawn_forge_build(template: &Path) -> Child {
    forge_build_command(template, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn forge build")
}

/// The run id forge printed (`==> build NAME (run ID)`).
pub fn run_id(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .find_map(|l| l.split("(run ").nth(1))
        .map(|rest| rest.trim_end_matches(')').to_string())
}

/// The public half of a test key.
pub fn public_key(private: &Path) -> String {
    std::fs::read_to_string(format!("{}.pub", private.display()))
        .expect("public key of the test key")
        .trim()
        .to_string()
}

/// Where `forge build` (run by [`forge_build_command`]) keeps the journals of a template in
/// `dir`: `$XDG_STATE_HOME/forge/runs` with `XDG_STATE_HOME` = the template's directory.
pub fn journal_dir(dir: &Path) -> PathBuf {
    dir.join("forge/runs")
}

/// `forge cleanup --journal-dir JOURNAL_DIR ARGS...` against the test cloud:
/// (exit code, stdout, stderr).
pub fn forge_cleanup(journal_dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_forge"))
        .arg("cleanup")
        .arg("--journal-dir")
        .arg(journal_dir)
        .args(args)
        .env("OS_CLIENT_CONFIG_FILE", cloud::clouds_yaml())
        .env_remove("OS_CLOUD")
        .env_remove("FORGE_LOG")
        .output()
        .expect("run forge cleanup");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Register the SSH test hosts' Ed25519 key in Nova as `<tag>-kp` (the tests' fixed keypair);
/// returns its name.
pub async fn register_key(compute: &ComputeClient, tag: &str) -> String {
    let keypair = format!("{tag}-kp");
    compute
        .create_keypair(&keypair, &public_key(&hosts::Key::Ed25519.path()))
        .await
        .expect("register the test key");
    keypair
}

/// Upload a base image `<tag>-base`, tagged `tag`, private, whose data is 1 MiB of `fill`;
/// returns it once active.
pub async fn base_image(
    images: &ImageClient,
    tag: &str,
    fill: u8,
) -> forge::openstack::image::Image {
    let data = cloud::data_file(1 << 20, fill);
    let mut new = forge::openstack::image::NewImage::named(&format!("{tag}-base"));
    new.tags = vec![tag.to_string()];
    new.visibility = Some(forge::openstack::image::Visibility::Private);
    cloud::active_image(images, &new, data.path()).await
}

/// CLOUD-INIT STAND-IN (the fake virt driver boots nothing, so no cloud-init runs): read the
/// keypair's public key from Nova, as cloud-init would from the metadata service, and authorize
/// it for root on the test host.
pub fn authorize_from_nova(
    rt: &tokio::runtime::Runtime,
    session: &Arc<Session>,
    host: &hosts::TestHost,
    keypair: &str,
) {
    let public = rt.block_on(async {
        let url = session
            .url("compute", &["os-keypairs", keypair])
            .await
            .unwrap();
        let v: serde_json::Value = session.send_json(Method::GET, url, |r| r).await.unwrap();
        v["keypair"]["public_key"].as_str().unwrap().to_string()
    });
    let keys = host.read("/root/.ssh/authorized_keys").unwrap_or_default();
    let mut keys = String::from_utf8(keys).unwrap();
    keys.push_str(&public);
    keys.push('\n');
    host.write("/root/.ssh/authorized_keys", keys.as_bytes(), 0o600);
}
