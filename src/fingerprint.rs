//! The input fingerprint: a sha256 over everything that determines what ends up *inside* a
//! built image, so `forge build --skip-unchanged` can ask Glance whether an image built from the
//! same inputs already exists. It is stored on the published image as `forge_fingerprint`.
//!
//! It is computed in two parts, because the source image is only known once Glance resolved it:
//! 1. [`Inputs`], the static inputs, known before anything touches the cloud. Their canonical
//!    serialization ([`Inputs::canonical`], format `forge-fingerprint/1`) is compact JSON:
//!    struct fields in declaration order, maps sorted by key, lists in template order, every
//!    file as the sha256 hex of its bytes (content, never its path). [`Inputs::digest`] is the
//!    sha256 of that text.
//! 2. [`fingerprint`] combines that digest with the resolved source image's id and its
//!    `os_hash_algo:os_hash_value`.
//!
//! What is in: the template's file name and the build label (so two templates never share an
//! image); of the source: flavor, networks, security groups, availability zone, user data
//! (content), config drive, floating-IP network and the SSH user; every provisioner in order:
//! a spec's file content, the content of every script it resolves (tree order, every branch),
//! its argument values and `test_only`; inline shell commands; shell script content.
//!
//! What is out, and why:
//! - Auth, credentials, `ssh_host`/`ssh_port`/keys and timeouts: how forge reaches the cloud and
//!   the server, not what the image contains.
//! - Publish metadata (`image_name`, `image_properties`, `image_tags`, `image_visibility`,
//!   `image_members`, `image_min_disk`) and post-processors: they do not change the disk, and
//!   they are where volatile values live (`image_name = "x-${timestamp()}"`,
//!   `build_date = timestamp()`): including them would make every night look changed.
//!   A metadata-only change therefore does not trigger a rebuild under `--skip-unchanged`.
//! - Sensitive values (arguments from sensitive variables; sensitive strings inside inline
//!   commands and inline user data are replaced by `<sensitive>`): the property is readable by
//!   anyone who can see the image, and a low-entropy secret hashed into it could be recovered by
//!   brute force. Only the argument's name is kept, so rotating a secret alone does not trigger
//!   a rebuild (build without `--skip-unchanged` after a rotation).
//!
//! A volatile value that *does* reach the image (an argument set to `timestamp()`) changes the
//! fingerprint on every run: that is honest, the image content would differ.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::names;
use crate::openstack::image::Image;
use crate::spec::{Spec, Validator, ValidatorKind};
use crate::template::{Argument, OpenStackSource, Template, UserData};

/// The version tag of the canonical form; bump it when the form changes.
pub const FORMAT: &str = "forge-fingerprint/1";

/// What stands in for a sensitive value.
const SENSITIVE: &str = "<sensitive>";

/// The static inputs of one build, in canonical order.
#[derive(Debug, Clone, Serialize)]
pub struct Inputs {
    pub format: &'static str,
    /// The template's file name (as `forge_template`).
    pub template: String,
    /// The build label (as `forge_build`), e.g. `nightly.openstack.debian`.
    pub build: String,
    pub source: SourceInputs,
    pub provisioners: Vec<ProvisionerInputs>,
}

/// What of an `openstack` source shapes the image.
#[derive(Debug, Clone, Serialize)]
pub struct SourceInputs {
    pub flavor: String,
    pub networks: Vec<String>,
    pub security_groups: Vec<String>,
    pub availability_zone: Option<String>,
    /// sha256 of the user data (inline text with sensitive strings redacted, or file content).
    pub user_data_sha256: Option<String>,
    pub config_drive: bool,
    pub floating_ip_network: Option<String>,
    pub ssh_username: String,
}

/// One provisioner, in template order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProvisionerInputs {
    Validators {
        spec_sha256: String,
        /// Every `script`/`copy_script` the spec resolved, in tree order.
        scripts_sha256: Vec<String>,
        /// Sensitive values are replaced by `<sensitive>`.
        arguments: BTreeMap<String, String>,
        test_only: bool,
    },
    ShellInline {
        commands: Vec<String>,
    },
    ShellScript {
        sha256: String,
    },
}

impl Inputs {
    /// Start the inputs of build `build_label` of `template` from source `src`. `user_data` is
    /// the user data as the server gets it (a `user_data_file` read once by the caller); inline
    /// user data is hashed with its sensitive strings redacted.
    pub fn new(
        template: &Template,
        build_label: &str,
        src: &OpenStackSource,
        user_data: Option<&[u8]>,
    ) -> Inputs {
        let user_data_sha256 = match (&src.user_data, user_data) {
            (Some(UserData::Inline(text)), _) => Some(sha256_hex(template.redact(text).as_bytes())),
            (_, Some(bytes)) => Some(sha256_hex(bytes)),
            (_, None) => None,
        };
        Inputs {
            format: FORMAT,
            template: names::template_file(&template.path),
            build: build_label.to_string(),
            source: SourceInputs {
                flavor: src.flavor.clone(),
                networks: src.networks.clone(),
                security_groups: src.security_groups.clone(),
                availability_zone: src.availability_zone.clone(),
                user_data_sha256,
                config_drive: src.config_drive,
                floating_ip_network: src.floating_ip_network.clone(),
                ssh_username: src.ssh.username.clone(),
            },
            provisioners: Vec::new(),
        }
    }

    /// Add a `validators` provisioner: the spec file's content (hashed when it was loaded), every
    /// script it resolved, and the argument values (sensitive ones replaced by `<sensitive>`).
    pub fn validators(
        &mut self,
        spec: &Spec,
        arguments: &BTreeMap<String, Argument>,
        test_only: bool,
    ) {
        let mut scripts_sha256 = Vec::new();
        collect_scripts(spec.validators(), &mut scripts_sha256);
        let arguments = arguments
            .iter()
            .map(|(k, a)| {
                let v = if a.sensitive {
                    SENSITIVE.to_string()
                } else {
                    a.value.clone()
                };
                (k.clone(), v)
            })
            .collect();
        self.provisioners.push(ProvisionerInputs::Validators {
            spec_sha256: spec.sha256().to_string(),
            scripts_sha256,
            arguments,
            test_only,
        });
    }

    /// Add inline shell commands (sensitive strings in them replaced by `<sensitive>`).
    pub fn shell_inline(&mut self, template: &Template, commands: &[String]) {
        self.provisioners.push(ProvisionerInputs::ShellInline {
            commands: commands.iter().map(|c| template.redact(c)).collect(),
        });
    }

    /// Add a shell script by its content.
    pub fn shell_script(&mut self, content: &[u8]) {
        self.provisioners.push(ProvisionerInputs::ShellScript {
            sha256: sha256_hex(content),
        });
    }

    /// The canonical serialization (see the module docs).
    pub fn canonical(&self) -> String {
        // Serializing plain structs, strings and BTreeMaps cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// sha256 hex of [`Inputs::canonical`].
    pub fn digest(&self) -> String {
        sha256_hex(self.canonical().as_bytes())
    }
}

/// The fingerprint: the static inputs' digest combined with the source image's id and content
/// hash (`os_hash_algo:os_hash_value`, or the legacy md5 `checksum` when Glance has none).
pub fn fingerprint(inputs_digest: &str, source: &Image) -> String {
    let hash = match (&source.os_hash_algo, &source.os_hash_value) {
        (Some(algo), Some(value)) => format!("{algo}:{value}"),
        _ => match &source.checksum {
            Some(md5) => format!("md5:{md5}"),
            None => "none".to_string(),
        },
    };
    let text = format!(
        "{FORMAT}\ninputs {inputs_digest}\nsource-id {}\nsource-hash {hash}\n",
        source.id
    );
    sha256_hex(text.as_bytes())
}

fn collect_scripts(validators: &[Validator], out: &mut Vec<String>) {
    for v in validators {
        match &v.kind {
            ValidatorKind::Script(s) => out.push(sha256_hex(&s.content)),
            ValidatorKind::CopyScript(s) => out.push(sha256_hex(&s.content)),
            _ => {}
        }
        for child in v.kind.children() {
            collect_scripts(child, out);
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{self, LoadOptions, Provisioner, ShellProvisioner, Source};
    use std::path::PathBuf;

    /// A template directory: `t.pkr.hcl` with a validators provisioner (spec + script), an
    /// inline shell provisioner and a shell script; `extra` goes into the source block.
    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new(extra: &str) -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            std::fs::write(
                d.join("image.yaml"),
                "arguments:\n  greeting:\n    default: none\nvalidators:\n  - script: greet\n",
            )
            .unwrap();
            std::fs::write(d.join("greet"), "#!/bin/sh\necho hi\n").unwrap();
            std::fs::write(d.join("setup.sh"), "#!/bin/sh\ntrue\n").unwrap();
            std::fs::write(
                d.join("t.pkr.hcl"),
                format!(
                    r#"variable "greeting" {{
  type    = string
  default = "hello"
}}
variable "password" {{
  type      = string
  default   = "hunter2"
  sensitive = true
}}
variable "timeout" {{
  type    = string
  default = "5m"
}}
source "openstack" "s" {{
  source_image_name = "base"
  flavor            = "m1.tiny"
  ssh_username      = "root"
  ssh_timeout       = var.timeout
  image_name        = "built-${{uuidv4()}}"
  image_properties  = {{ build_date = timestamp() }}
  {extra}
}}
build {{
  name    = "b"
  sources = ["source.openstack.s"]
  provisioner "validators" {{
    spec      = "image.yaml"
    arguments = {{ greeting = var.greeting, password = var.password }}
  }}
  provisioner "shell" {{
    inline = ["echo ${{var.password}} | chpasswd"]
  }}
  provisioner "shell" {{
    script = "setup.sh"
  }}
}}
"#
                ),
            )
            .unwrap();
            Fixture { dir }
        }

        fn path(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }

        /// Load the template with `-var` settings and compute its inputs, as `forge build` does.
        fn inputs(&self, vars: &[&str]) -> (Inputs, String) {
            let opts = LoadOptions {
                vars: vars.iter().map(|v| v.to_string()).collect(),
                ..Default::default()
            };
            let t =
                template::load(&self.path("t.pkr.hcl"), &opts).unwrap_or_else(|d| panic!("{d}"));
            let Source::OpenStack(src) = &t.sources[0] else {
                panic!("openstack source expected")
            };
            let user_data = match &src.user_data {
                Some(template::UserData::File(p)) => Some(std::fs::read(p).unwrap()),
                _ => None,
            };
            let mut inputs = Inputs::new(&t, "b.openstack.s", src, user_data.as_deref());
            for p in &t.builds[0].provisioners {
                match p {
                    Provisioner::Validators(v) => {
                        let spec = crate::spec::load(&v.spec, &[]).unwrap();
                        inputs.validators(&spec, &v.arguments, v.test_only);
                    }
                    Provisioner::Shell(ShellProvisioner::Inline(c)) => inputs.shell_inline(&t, c),
                    Provisioner::Shell(ShellProvisioner::Script(p)) => {
                        inputs.shell_script(&std::fs::read(p).unwrap())
                    }
                }
            }
            (inputs, src.image.name.clone())
        }
    }

    fn image(id: &str, algo: Option<&str>, value: Option<&str>) -> Image {
        serde_json::from_value(serde_json::json!({
            "id": id, "status": "active", "created_at": "2026-11-22T00:00:00Z",
            "os_hash_algo": algo, "os_hash_value": value, "checksum": "0123",
        }))
        .unwrap()
    }

    #[test]
    fn the_canonical_form_is_the_documented_json() {
        let f = Fixture::new("");
        let (inputs, _) = f.inputs(&[]);
        let sha = |s: &str| sha256_hex(s.as_bytes());
        let spec = std::fs::read_to_string(f.path("image.yaml")).unwrap();
        let want = format!(
            concat!(
                r#"{{"format":"forge-fingerprint/1","template":"t.pkr.hcl","build":"b.openstack.s","#,
                r#""source":{{"flavor":"m1.tiny","networks":[],"security_groups":[],"#,
                r#""availability_zone":null,"user_data_sha256":null,"config_drive":false,"#,
                r#""floating_ip_network":null,"ssh_username":"root"}},"#,
                r#""provisioners":[{{"validators":{{"spec_sha256":"{spec}","scripts_sha256":["{greet}"],"#,
                r#""arguments":{{"greeting":"hello","password":"<sensitive>"}},"test_only":false}}}},"#,
                r#"{{"shell_inline":{{"commands":["echo <sensitive> | chpasswd"]}}}},"#,
                r#"{{"shell_script":{{"sha256":"{setup}"}}}}]}}"#
            ),
            spec = sha(&spec),
            greet = sha("#!/bin/sh\necho hi\n"),
            setup = sha("#!/bin/sh\ntrue\n"),
        );
        assert_eq!(inputs.canonical(), want);
        assert_eq!(inputs.digest(), sha(&want));
    }

    #[test]
    fn volatile_names_and_properties_do_not_change_the_digest() {
        let f = Fixture::new("");
        let (a, name_a) = f.inputs(&[]);
        let (b, name_b) = f.inputs(&[]);
        assert_ne!(name_a, name_b, "uuidv4() in image_name differs per load");
        assert_eq!(a.digest(), b.digest());
        assert!(!a.canonical().contains("build_date"), "{}", a.canonical());
    }

    #[test]
    fn what_shapes_the_image_changes_the_digest_and_nothing_else_does() {
        let f = Fixture::new("");
        let (base, _) = f.inputs(&[]);
        let base = base.digest();
        // An argument value.
        assert_ne!(f.inputs(&["greeting=bye"]).0.digest(), base);
        // A timeout is not an input.
        assert_eq!(f.inputs(&["timeout=10m"]).0.digest(), base);
        // A sensitive value is kept out (see the module docs).
        assert_eq!(f.inputs(&["password=other"]).0.digest(), base);
        // A script the spec resolves: content counts...
        std::fs::write(f.path("greet"), "#!/bin/sh\necho hello\n").unwrap();
        let changed = f.inputs(&[]).0.digest();
        assert_ne!(changed, base);
        // ...and only content: the same bytes again give the same digest.
        std::fs::write(f.path("greet"), "#!/bin/sh\necho hi\n").unwrap();
        assert_eq!(f.inputs(&[]).0.digest(), base);
        // The shell script's content.
        std::fs::write(f.path("setup.sh"), "#!/bin/sh\nfalse\n").unwrap();
        assert_ne!(f.inputs(&[]).0.digest(), base);
        // The spec itself.
        std::fs::write(f.path("setup.sh"), "#!/bin/sh\ntrue\n").unwrap();
        let spec = std::fs::read_to_string(f.path("image.yaml")).unwrap();
        std::fs::write(f.path("image.yaml"), spec.replace("none", "nobody")).unwrap();
        assert_ne!(f.inputs(&[]).0.digest(), base);
        // Source settings that shape the build.
        let g = Fixture::new("config_drive = true");
        assert_ne!(g.inputs(&[]).0.digest(), base);
    }

    #[test]
    fn the_same_spec_and_scripts_at_another_path_give_the_same_digest() {
        let f = Fixture::new("");
        let g = Fixture::new("");
        assert_ne!(f.path("t.pkr.hcl"), g.path("t.pkr.hcl"));
        assert_eq!(f.inputs(&[]).0.digest(), g.inputs(&[]).0.digest());
    }

    #[test]
    fn the_fingerprint_covers_the_source_image_id_and_content_hash() {
        let digest = "d".repeat(64);
        let a = fingerprint(&digest, &image("id-1", Some("sha512"), Some("aa")));
        assert_eq!(a.len(), 64);
        assert_eq!(
            a,
            fingerprint(&digest, &image("id-1", Some("sha512"), Some("aa")))
        );
        assert_ne!(
            a,
            fingerprint(&digest, &image("id-2", Some("sha512"), Some("aa")))
        );
        assert_ne!(
            a,
            fingerprint(&digest, &image("id-1", Some("sha512"), Some("bb")))
        );
        assert_ne!(
            a,
            fingerprint(&"e".repeat(64), &image("id-1", Some("sha512"), Some("aa")))
        );
        // Without os_hash_*, the legacy checksum still ties it to the content.
        assert_ne!(
            fingerprint(&digest, &image("id-1", None, None)),
            fingerprint(&digest, &image("id-1", Some("sha512"), Some("aa")))
        );
    }
}
