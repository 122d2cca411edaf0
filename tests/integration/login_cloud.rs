//! One typed login (issue 12): the template's auth attributes, `clouds.yaml`/`secure.yaml` and
//! `OS_*` resolve into one configuration whose settings keep where they came from; errors name
//! that place; `forge validate` checks the template's auth offline; a refused login has its own
//! exit code (4); `forge cleanup` logs in again for a run that used template auth.
//!
//! Real parts: the test cloud's Keystone, Glance and Nova (`tests/cloud/up.sh`), the `forge`
//! binary. The offline tests need nothing.

use crate::cloud;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use forge::journal::{Journal, Kind, TemplateAuth};
use forge::openstack::image::NewImage;
use forge::openstack::{Clients, CloudConfig, CloudSpec, ConfigEnv, Origin};
use forge::template::LoadOptions;

const AUTH_URL: &str = "http://127.0.0.1:5000/v3";

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn forge(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_forge"));
    c.args(args).current_dir(cwd);
    // Nothing of the caller's cloud configuration leaks into the run.
    for (k, _) in std::env::vars() {
        if k.starts_with("OS_") || k.starts_with("FORGE_VAR_") {
            c.env_remove(k);
        }
    }
    c.env("HOME", cwd).env("XDG_CONFIG_HOME", cwd.join("xdg"));
    c.env("XDG_STATE_HOME", cwd.join("state"));
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run forge")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// An OpenStack source whose login is configured by the template alone; `password` is an HCL
/// expression.
fn template(dir: &Path, password: &str) -> PathBuf {
    let path = dir.join("login.pkr.hcl");
    std::fs::write(
        &path,
        format!(
            r#"variable "pw" {{
  type      = string
  sensitive = true
  default   = ""
}}

source "openstack" "x" {{
  identity_endpoint   = "{AUTH_URL}"
  username            = "demo"
  password            = {password}
  user_domain_name    = "Default"
  tenant_name         = "demo"
  project_domain_name = "Default"
  region              = "RegionOne"
  source_image_name   = "forge-no-such-image"
  flavor              = "m1.tiny"
  ssh_username        = "cirros"
  image_name          = "forge-login-test"
}}

build {{
  sources = ["source.openstack.x"]
}}
"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn validate_reports_the_bad_identity_endpoint_at_its_line_and_column() {
    let dir = tempdir();
    let path = dir.path().join("bad.pkr.hcl");
    std::fs::write(
        &path,
        r#"source "openstack" "x" {
  identity_endpoint = "keystone.example:5000"
  username          = "admin"
  password          = "pw-do-not-echo"
  application_credential_id = "ac-id"
  tenant_name       = "admin"
  project_name      = "admin"
  endpoint_type     = "sideways"
  source_image_name = "cirros"
  flavor            = "m1.tiny"
  ssh_username      = "cirros"
  image_name        = "x"
}

source "openstack" "y" {
  identity_endpoint = "https://keystone.example:5000/v3"
  application_credential_name = "ac"
  application_credential_secret = "ac-do-not-echo"
  source_image_name = "cirros"
  flavor            = "m1.tiny"
  ssh_username      = "cirros"
  image_name        = "x"
}

build {
  sources = ["source.openstack.x", "source.openstack.y"]
}
"#,
    )
    .unwrap();
    let out = forge(&["validate", "bad.pkr.hcl"], &[], dir.path());
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("bad.pkr.hcl:2:23: error: `identity_endpoint`: 'keystone.example:5000': expected an http:// or https:// URL"),
        "{all}"
    );
    assert!(
        all.contains("bad.pkr.hcl:5:31: error: `application_credential_id` sets application credential login, but password login"),
        "{all}"
    );
    assert!(
        all.contains(
            "bad.pkr.hcl:7:3: error: `project_name` and `tenant_name` are the same setting"
        ),
        "{all}"
    );
    assert!(
        all.contains("bad.pkr.hcl:8:23: error: `endpoint_type` must be public, internal or admin"),
        "{all}"
    );
    // The template alone configures the login of "y": the credential's name needs a user.
    assert!(
        all.contains("bad.pkr.hcl:17:33: error: application credential login configured here"),
        "{all}"
    );
    // Only lines with problems are shown: the password's line is not one of them.
    assert!(!all.contains("do-not-echo"), "{all}");
}

#[test]
fn errors_name_the_env_variable_the_clouds_yaml_key_or_the_template_attribute() {
    let dir = tempdir();
    // env
    let env = ConfigEnv::from_vars([("OS_AUTH_URL", "keystone.example:5000")], None);
    let e = CloudConfig::load(None, &env).unwrap_err().to_string();
    assert!(
        e.starts_with("env OS_AUTH_URL: invalid auth.auth_url"),
        "{e}"
    );

    // clouds.yaml
    let yaml = dir.path().join("clouds.yaml");
    std::fs::write(
        &yaml,
        "clouds:\n  c:\n    auth:\n      auth_url: keystone.example:5000\n      username: u\n",
    )
    .unwrap();
    let env = ConfigEnv::from_vars(
        [("OS_CLIENT_CONFIG_FILE", yaml.display().to_string())],
        None,
    );
    let e = CloudConfig::load(Some("c"), &env).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}:4:17: invalid auth.auth_url", yaml.display())),
        "{e}"
    );

    // template: its value wins over the variable's, and a bad one is blamed on the template.
    let at = Origin::Template {
        file: "t.pkr.hcl".into(),
        line: 3,
        column: 23,
        attribute: "identity_endpoint".into(),
    };
    let spec = CloudSpec {
        auth_url: Some(forge::openstack::config::Located::new(
            "ftp://k".to_string(),
            at,
        )),
        ..CloudSpec::default()
    };
    let env = ConfigEnv::from_vars([("OS_AUTH_URL", "http://k:5000")], None);
    let e = CloudConfig::resolve(&spec, &env).unwrap_err().to_string();
    assert!(
        e.starts_with("t.pkr.hcl:3:23: invalid identity_endpoint: 'ftp://k'"),
        "{e}"
    );
}

#[test]
fn template_settings_override_the_environment_and_keep_their_place() {
    let dir = tempdir();
    let path = template(dir.path(), "\"pw-from-template-do-not-echo\"");
    let t = forge::template::load(&path, &LoadOptions::default()).expect("template loads");
    let spec = t.sources[0].auth();
    let env = ConfigEnv::from_vars(
        [
            ("OS_AUTH_URL", "http://elsewhere:5000"),
            ("OS_USERNAME", "someone-else"),
            ("OS_PASSWORD", "pw-from-env-do-not-echo"),
            ("OS_INTERFACE", "internal"),
        ],
        None,
    );
    let c = CloudConfig::resolve(spec, &env).unwrap();
    assert_eq!(c.auth_url, AUTH_URL);
    assert_eq!(c.name, "template");
    let origin = |k: &str| c.origin(k).map(|o| o.to_string()).unwrap_or_default();
    let file = path.display().to_string();
    assert_eq!(origin("auth.auth_url"), format!("{file}:8:25"));
    assert_eq!(origin("auth.password"), format!("{file}:10:25"));
    // Packer's `tenant_name` is forge's project name.
    assert_eq!(origin("auth.project_name"), format!("{file}:12:25"));
    // What the template leaves open still comes from the environment.
    assert_eq!(origin("interface"), "env OS_INTERFACE");
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("do-not-echo"), "{dbg}");
}

#[test]
fn a_refused_template_login_exits_4_naming_the_template_not_the_secret() {
    if !cloud::available(false) {
        return;
    }
    let dir = tempdir();
    template(dir.path(), "\"wrong-pw-'\\\"$(id)-do-not-echo\"");
    for args in [
        &["build", "login.pkr.hcl"][..],
        &["images", "list", "login.pkr.hcl"][..],
    ] {
        let out = forge(args, &[], dir.path());
        let all = text(&out);
        assert_eq!(out.status.code(), Some(4), "forge {args:?}: {all}");
        assert!(all.contains("Keystone refused the credentials"), "{all}");
        assert!(
            all.contains("credentials from template attribute `password` at login.pkr.hcl:10:25"),
            "{all}"
        );
        assert!(!all.contains("do-not-echo"), "{all}");
    }
}

#[test]
fn cleanup_logs_in_again_with_the_template_auth_of_the_run() {
    if !cloud::available(true) {
        return;
    }
    let dir = tempdir();
    let pw = cloud::password(cloud::DEMO);
    let path = template(dir.path(), "var.pw");
    let opts = LoadOptions {
        vars: vec![format!("pw={pw}")],
        ..LoadOptions::default()
    };
    let t = forge::template::load(&path, &opts).expect("template loads");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let journals = dir.path().join("journals");
    std::fs::create_dir_all(&journals).unwrap();
    let run_id = uuid::Uuid::new_v4().to_string();
    let journal_path = journals.join(format!("{run_id}.jsonl"));

    // A run as `forge build` starts one: template login (no clouds.yaml, no OS_*), cloud record,
    // one image created, then the process "dies" (no finished record).
    let (clients, image_id) = rt.block_on(async {
        let empty = ConfigEnv::from_vars(Vec::<(String, String)>::new(), None);
        let clients = Clients::connect_in(t.sources[0].auth(), &empty)
            .await
            .expect("template login");
        let mut journal = Journal::create(&journal_path, &run_id).unwrap();
        let record = TemplateAuth {
            path: path.canonicalize().unwrap(),
            source: "openstack.x".into(),
        };
        let info = forge::cleanup::cloud_info(clients.session(), Some(record))
            .await
            .unwrap();
        journal.cloud(info).unwrap();
        let name = format!("forge-{run_id}");
        journal.intent("snapshot", Kind::Image, &name).unwrap();
        let mut new = NewImage::named(&name);
        new.properties
            .insert("forge_run_id".to_string(), run_id.clone());
        let image = clients.image.create(&new).await.expect("create image");
        journal
            .created("snapshot", Kind::Image, &name, &image.id)
            .unwrap();
        (clients, image.id)
    });

    let record = std::fs::read_to_string(&journal_path).unwrap();
    assert!(!record.contains(&pw), "the journal holds the password");
    let cloud_line = record.lines().find(|l| l.contains("\"cloud\"")).unwrap();
    for expected in [
        "\"name\":\"template\"",
        "\"auth_method\":\"password\"",
        "template attribute `password`",
        "\"source\":\"openstack.x\"",
        "\"project\":\"demo\"",
        "\"domain\":\"Default\"",
        "\"region\":\"RegionOne\"",
    ] {
        assert!(cloud_line.contains(expected), "{expected} in {cloud_line}");
    }

    let journal_dir = journals.display().to_string();
    let args = [
        "cleanup",
        "--run",
        run_id.as_str(),
        "--yes",
        "--journal-dir",
        journal_dir.as_str(),
    ];
    // Without the variable the template's password is empty: Keystone refuses (exit 4), and
    // nothing is touched.
    let out = forge(&args, &[], dir.path());
    let all = text(&out);
    assert_eq!(out.status.code(), Some(4), "{all}");
    assert!(all.contains("template attribute `password`"), "{all}");
    let still = rt.block_on(clients.image.get(&image_id));
    assert!(still.is_ok(), "the image must survive a refused login");

    // With it (as the build had it), cleanup logs in as the build did and deletes the image.
    let out = forge(&args, &[("FORGE_VAR_pw", pw.as_str())], dir.path());
    let all = text(&out);
    let gone = rt.block_on(clients.image.get(&image_id));
    if gone.is_ok() {
        let _ = rt.block_on(clients.image.delete(&image_id));
    }
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        gone.as_ref().err().is_some_and(|e| e.is_not_found()),
        "image still there: {all}"
    );
    assert!(!all.contains(&pw), "{all}");
}
