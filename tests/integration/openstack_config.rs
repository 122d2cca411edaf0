//! Cloud configuration lookup from real files: clouds.yaml search path, OS_CLIENT_CONFIG_FILE,
//! OS_CLOUD, secure.yaml, OS_* overrides, and errors that point at the file, line and column
//! without ever echoing a secret. Needs no cloud.

use std::path::Path;

use forge::openstack::config::{AuthMethod, Interface, ProjectRef, Scope};
use forge::openstack::{CloudConfig, ConfigEnv};
use secrecy::ExposeSecret;

const CLOUDS: &str = "\
clouds:
  alpha:
    auth:
      auth_url: http://keystone.example:5000
      username: alice
      project_name: proj
      user_domain_name: Default
      project_domain_id: default
    region_name: RegionOne
  beta:
    auth_type: v3applicationcredential
    auth:
      auth_url: https://beta.example/identity/v3/
      application_credential_id: ac-id
      application_credential_secret: beta-appcred-secret-value
    interface: internal
    verify: false
    block_storage_endpoint_override: http://cinder.example:8776/v3
";

const SECURE: &str = "\
clouds:
  alpha:
    auth:
      password: alpha-password-secret-value
";

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn env(vars: &[(&str, &str)], cwd: Option<&Path>) -> ConfigEnv {
    ConfigEnv::from_vars(
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        cwd.map(Path::to_path_buf),
    )
}

#[test]
fn clouds_and_secure_yaml_from_the_xdg_directory_merge() {
    let home = tempfile::tempdir().unwrap();
    let xdg = home.path().join("xdg");
    write(&xdg.join("openstack"), "clouds.yaml", CLOUDS);
    write(&xdg.join("openstack"), "secure.yaml", SECURE);
    let e = env(
        &[
            ("XDG_CONFIG_HOME", xdg.to_str().unwrap()),
            ("OS_CLOUD", "alpha"),
        ],
        None,
    );
    let c = CloudConfig::load(None, &e).unwrap();
    assert_eq!(c.name, "alpha");
    assert_eq!(c.auth_url, "http://keystone.example:5000/v3");
    assert_eq!(c.region.as_deref(), Some("RegionOne"));
    match &c.auth {
        AuthMethod::Password { password, .. } => {
            assert_eq!(password.expose_secret(), "alpha-password-secret-value")
        }
        other => panic!("expected password auth, got {other:?}"),
    }
    assert!(matches!(
        &c.scope,
        Scope::Project { project: ProjectRef::Name { name, .. } } if name == "proj"
    ));
    assert!(!format!("{c:?}").contains("alpha-password-secret-value"));

    // `cloud =` in the template beats OS_CLOUD.
    let c = CloudConfig::load(Some("beta"), &e).unwrap();
    assert_eq!(c.name, "beta");
    assert!(matches!(c.auth, AuthMethod::ApplicationCredential { .. }));
    assert_eq!(c.interface, Interface::Internal);
    assert!(c.insecure, "verify: false turns verification off");
    assert_eq!(c.auth_url, "https://beta.example/identity/v3");
    assert_eq!(
        c.endpoint_overrides
            .get("block-storage")
            .map(String::as_str),
        Some("http://cinder.example:8776/v3")
    );
    assert!(!format!("{c:?}").contains("beta-appcred-secret-value"));
}

#[test]
fn search_order_cwd_then_home_and_os_client_config_file_first() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("home");
    let cwd = t.path().join("cwd");
    write(&home.join(".config/openstack"), "clouds.yaml", CLOUDS);
    write(
        &cwd,
        "clouds.yml",
        "clouds:\n  alpha:\n    auth:\n      auth_url: http://from-cwd\n      token: t\n",
    );
    let explicit = write(
        &t.path().join("elsewhere"),
        "my-clouds.yaml",
        "clouds:\n  alpha:\n    auth:\n      auth_url: http://from-env-file\n      token: t\n",
    );
    let home_s = home.to_str().unwrap();
    // (alpha in ~/.config has no password: secure.yaml or OS_PASSWORD supplies it.)
    let c = CloudConfig::load(
        Some("alpha"),
        &env(&[("HOME", home_s), ("OS_PASSWORD", "p")], None),
    )
    .unwrap();
    assert_eq!(c.auth_url, "http://keystone.example:5000/v3");
    let c = CloudConfig::load(Some("alpha"), &env(&[("HOME", home_s)], Some(&cwd))).unwrap();
    assert_eq!(
        c.auth_url, "http://from-cwd/v3",
        "./clouds.yml before ~/.config"
    );
    let c = CloudConfig::load(
        Some("alpha"),
        &env(
            &[
                ("HOME", home_s),
                ("OS_CLIENT_CONFIG_FILE", explicit.to_str().unwrap()),
            ],
            Some(&cwd),
        ),
    )
    .unwrap();
    assert_eq!(c.auth_url, "http://from-env-file/v3");
}

#[test]
fn os_variables_override_single_keys_of_the_cloud() {
    let t = tempfile::tempdir().unwrap();
    let f = write(t.path(), "clouds.yaml", CLOUDS);
    let e = env(
        &[
            ("OS_CLIENT_CONFIG_FILE", f.to_str().unwrap()),
            ("OS_PASSWORD", "from-env-pw"),
            ("OS_REGION_NAME", "RegionTwo"),
            ("OS_INSECURE", "true"),
        ],
        None,
    );
    let c = CloudConfig::load(Some("alpha"), &e).unwrap();
    assert_eq!(c.region.as_deref(), Some("RegionTwo"));
    assert!(c.insecure);
    match &c.auth {
        AuthMethod::Password { password, .. } => {
            assert_eq!(password.expose_secret(), "from-env-pw")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn errors_name_file_line_column_and_never_echo_secrets() {
    let t = tempfile::tempdir().unwrap();
    let f = |name: &str, text: &str| write(t.path(), name, text);
    let load = |file: &Path, cloud: &str| {
        CloudConfig::load(
            Some(cloud),
            &env(&[("OS_CLIENT_CONFIG_FILE", file.to_str().unwrap())], None),
        )
        .unwrap_err()
        .to_string()
    };

    let p = f("unknown.yaml", CLOUDS);
    let e = load(&p, "gamma");
    assert!(
        e.contains("no cloud named 'gamma'") && e.contains("alpha, beta"),
        "{e}"
    );

    let p = f(
        "badiface.yaml",
        "clouds:\n  a:\n    auth:\n      auth_url: http://k\n      username: u\n      \
         user_domain_id: default\n      password: pw-do-not-echo\n    interface: sideways\n",
    );
    let e = load(&p, "a");
    assert!(e.contains(&format!("{}:8:16", p.display())), "{e}");
    assert!(
        e.contains("sideways") && e.contains("public, internal or admin"),
        "{e}"
    );
    assert!(!e.contains("pw-do-not-echo"), "{e}");

    let p = f(
        "badverify.yaml",
        "clouds:\n  a:\n    auth:\n      auth_url: http://k\n      token: tok-do-not-echo\n    \
         verify: maybe\n",
    );
    let e = load(&p, "a");
    assert!(
        e.contains(":6:13") && e.contains("verify") && e.contains("true or false"),
        "{e}"
    );
    assert!(!e.contains("tok-do-not-echo"), "{e}");

    let p = f("syntax.yaml", "clouds:\n  a: [unclosed\n");
    let e = load(&p, "a");
    assert!(e.starts_with(&p.display().to_string()), "{e}");

    let p = f(
        "dup.yaml",
        "clouds:\n  a:\n    auth:\n      auth_url: http://k\n  a:\n    region_name: x\n",
    );
    let e = load(&p, "a");
    assert!(e.to_lowercase().contains("duplicate"), "{e}");

    let p = f(
        "missing.yaml",
        "clouds:\n  a:\n    auth:\n      auth_url: http://k\n      username: u\n      \
         user_domain_name: Default\n",
    );
    let e = load(&p, "a");
    assert!(e.contains("missing auth.password"), "{e}");

    let e = CloudConfig::load(Some("x"), &env(&[], None))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no clouds.yaml was found"), "{e}");
}
