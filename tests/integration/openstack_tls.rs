//! TLS against a real HTTPS endpoint: a TLS terminator started in the test (a self-signed CA
//! made with rcgen, a server certificate for 127.0.0.1 signed by it, tokio-rustls) that
//! forwards bytes to the test cloud's Keystone. It is a real TLS server, not a fake: forge's
//! HTTP client verifies its certificate exactly as it would a cloud's.
//!
//! Shown here: verification is on by default (no CA → a clear error naming the URL and the
//! certificate problem, no secret); `cacert` from clouds.yaml, `OS_CACERT` or the template
//! makes it succeed; `insecure` succeeds with a warning.

use crate::cloud;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use forge::openstack::{CloudConfig, ConfigEnv, Session};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

/// The test cloud's Keystone (plain HTTP), which the terminator forwards to.
const KEYSTONE: &str = "127.0.0.1:5000";

/// A TLS terminator in front of Keystone, and the files a client needs to trust it.
struct Proxy {
    /// `https://127.0.0.1:PORT/v3`
    auth_url: String,
    /// The CA that signed the server certificate (PEM).
    ca_pem: PathBuf,
    /// Another CA, which did not sign it.
    other_ca_pem: PathBuf,
    dir: tempfile::TempDir,
}

fn ca(name: &str) -> (rcgen::Certificate, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert, rcgen::Issuer::new(params, key))
}

/// Starts the terminator on the current runtime; it serves until the runtime ends.
async fn start_proxy() -> Proxy {
    let (ca_cert, issuer) = ca("forge test CA");
    let (other_ca, _) = ca("forge unrelated CA");
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_cert = params.signed_by(&server_key, &issuer).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ca_pem = dir.path().join("ca.pem");
    std::fs::write(&ca_pem, ca_cert.pem()).unwrap();
    let other_ca_pem = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca_pem, other_ca.pem()).unwrap();

    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![server_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that rejects the certificate ends the handshake: nothing to forward.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut upstream) = TcpStream::connect(KEYSTONE).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    Proxy {
        auth_url: format!("https://127.0.0.1:{port}/v3"),
        ca_pem,
        other_ca_pem,
        dir,
    }
}

impl Proxy {
    /// A clouds.yaml: the test cloud's, with Keystone behind the terminator and `extra` keys
    /// (e.g. `cacert: ...`) added to every cloud.
    fn clouds_yaml(&self, name: &str, extra: &str) -> PathBuf {
        let text = std::fs::read_to_string(cloud::clouds_yaml()).unwrap();
        assert!(text.contains("http://127.0.0.1:5000/v3"), "{text}");
        let mut out = text.replace("http://127.0.0.1:5000/v3", &self.auth_url);
        if !extra.is_empty() {
            out = out.replace(
                "    identity_api_version: 3\n",
                &format!("    identity_api_version: 3\n    {extra}\n"),
            );
        }
        let path = self.dir.path().join(name);
        std::fs::write(&path, out).unwrap();
        path
    }
}

fn env_for(clouds_yaml: &Path, extra: &[(&str, &str)]) -> ConfigEnv {
    let mut vars = vec![(
        "OS_CLIENT_CONFIG_FILE".to_string(),
        clouds_yaml.display().to_string(),
    )];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    ConfigEnv::from_vars(vars, None)
}

async fn connect(env: &ConfigEnv) -> Result<Arc<Session>, forge::openstack::Error> {
    let config = CloudConfig::load(Some(cloud::ADMIN), env).expect("config");
    Session::connect(config).await
}

/// The error and all its causes, as a user sees them with `{:#}`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn password(cloud_name: &str) -> String {
    let v = forge_yaml_password(cloud_name);
    assert!(!v.is_empty());
    v
}

/// The cloud's password, read from up.sh's clouds.yaml (to prove it is not echoed).
fn forge_yaml_password(cloud_name: &str) -> String {
    let text = std::fs::read_to_string(cloud::clouds_yaml()).unwrap();
    let section = text.split(&format!("{cloud_name}:")).nth(1).unwrap();
    section
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .unwrap()
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn verification_is_on_by_default_and_cacert_turns_it_into_trust() {
    if !cloud::available(false) {
        return;
    }
    let proxy = start_proxy().await;
    let secret = password(cloud::ADMIN);

    // No CA: the system roots do not know this one. Clear error, URL, reason, no password.
    let plain = proxy.clouds_yaml("plain.yaml", "");
    let e = connect(&env_for(&plain, &[]))
        .await
        .expect_err("an unknown CA was trusted");
    let msg = chain(&e);
    assert!(
        msg.contains(&format!("{}/auth/tokens", proxy.auth_url)),
        "the error does not name the URL: {msg}"
    );
    assert!(
        msg.contains("certificate") && msg.contains("UnknownIssuer"),
        "the error does not say what is wrong with the certificate: {msg}"
    );
    assert!(!msg.contains(&secret), "the password leaked: {msg}");
    assert!(
        !format!("{e:?}").contains(&secret),
        "the password leaked into Debug"
    );

    // A CA bundle that did not sign the server's certificate is no better.
    let wrong = proxy.clouds_yaml(
        "wrong.yaml",
        &format!("cacert: {}", proxy.other_ca_pem.display()),
    );
    let e = connect(&env_for(&wrong, &[]))
        .await
        .expect_err("the wrong CA was trusted");
    assert!(chain(&e).contains("UnknownIssuer"), "{}", chain(&e));

    // `cacert` in clouds.yaml.
    let good = proxy.clouds_yaml("good.yaml", &format!("cacert: {}", proxy.ca_pem.display()));
    let s = connect(&env_for(&good, &[]))
        .await
        .unwrap_or_else(|e| panic!("login with cacert in clouds.yaml failed: {}", chain(&e)));
    // The session really works through the terminator (a second authenticated call).
    assert!(!s.user_id().await.unwrap().is_empty());

    // OS_CACERT over a clouds.yaml without one.
    let ca = proxy.ca_pem.display().to_string();
    connect(&env_for(&plain, &[("OS_CACERT", &ca)]))
        .await
        .unwrap_or_else(|e| panic!("login with OS_CACERT failed: {}", chain(&e)));

    // A cacert that is not a PEM bundle: a clear error naming the file, not a panic.
    let junk = proxy.dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let e = connect(&env_for(
        &plain,
        &[("OS_CACERT", &junk.display().to_string())],
    ))
    .await
    .expect_err("junk accepted as a CA bundle");
    assert!(chain(&e).contains("junk.pem"), "{}", chain(&e));
}

/// `forge build` with the CA named in the template: the build logs in through TLS and gets as
/// far as resolving the source image (which does not exist, so it stops there and creates
/// nothing). Without `cacert` it stops at login with the certificate error; `insecure = true`
/// logs in and warns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn forge_build_uses_the_templates_cacert_and_warns_when_insecure() {
    if !cloud::available(false) {
        return;
    }
    let proxy = start_proxy().await;
    let secret = password(cloud::ADMIN);
    let clouds = proxy.clouds_yaml("plain.yaml", "");
    let missing_image = cloud::unique("tls-no-such-image");
    let ca = proxy.ca_pem.display().to_string();

    let build = |tls_line: String| {
        let dir = proxy.dir.path().join(cloud::unique("tpl"));
        std::fs::create_dir_all(&dir).unwrap();
        let template = dir.join("t.pkr.hcl");
        std::fs::write(
            &template,
            format!(
                r#"source "openstack" "tls" {{
  cloud             = "{admin}"
  {tls_line}
  source_image_name = "{missing_image}"
  flavor            = "m1.tiny"
  ssh_username      = "root"
  image_name        = "{missing_image}-built"
}}

build {{
  sources = [source.openstack.tls]
}}
"#,
                admin = cloud::ADMIN,
            ),
        )
        .unwrap();
        let clouds = clouds.clone();
        let secret = secret.clone();
        async move {
            let out = tokio::task::spawn_blocking(move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_forge"))
                    .args(["-vv", "build"])
                    .arg(&template)
                    .env("OS_CLIENT_CONFIG_FILE", &clouds)
                    .env("XDG_STATE_HOME", template.parent().unwrap())
                    .env_remove("OS_CLOUD")
                    .env_remove("OS_CACERT")
                    .env_remove("FORGE_LOG")
                    .output()
                    .unwrap()
            })
            .await
            .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(!stderr.contains(&secret), "the password leaked:\n{stderr}");
            (out.status.code(), stderr)
        }
    };

    let (code, stderr) = build(String::new()).await;
    // A login that fails has its own exit code.
    assert_eq!(code, Some(4), "{stderr}");
    assert!(
        stderr.contains(&proxy.auth_url) && stderr.contains("UnknownIssuer"),
        "without cacert the build must stop at login, naming the URL and the problem:\n{stderr}"
    );
    assert!(
        !stderr.contains(&missing_image),
        "got past login:\n{stderr}"
    );

    let (code, stderr) = build(format!("cacert = \"{ca}\"")).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("UnknownIssuer"), "{stderr}");
    assert!(
        stderr.contains(&missing_image),
        "with cacert the build must log in and reach the source image lookup:\n{stderr}"
    );

    let (code, stderr) = build("insecure = true".into()).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("TLS certificate verification is disabled"),
        "insecure must warn:\n{stderr}"
    );
    assert!(stderr.contains(&missing_image), "{stderr}");
}
