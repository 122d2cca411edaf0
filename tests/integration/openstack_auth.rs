//! Keystone authentication against the real test cloud: password (clouds.yaml), application
//! credential and token (OS_* variables), catalog lookup, and secrets absent from every
//! Debug and error text.

use crate::cloud;

use std::panic::AssertUnwindSafe;

use forge::openstack::config::AuthMethod;
use forge::openstack::{CloudConfig, ConfigEnv, Session};
use futures::FutureExt;
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

const AUTH_URL: &str = "http://127.0.0.1:5000/v3";

/// The password up.sh put in clouds.yaml (to check it never shows up, and to log in by hand).
fn password_of(config: &CloudConfig) -> String {
    match &config.auth {
        AuthMethod::Password { password, .. } => password.expose_secret().to_string(),
        other => panic!("expected password auth, got {other:?}"),
    }
}

fn env(vars: &[(&str, &str)]) -> ConfigEnv {
    ConfigEnv::from_vars(vars.iter().map(|(k, v)| (*k, *v)), None)
}

#[tokio::test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn password_auth_from_clouds_yaml_gives_a_scoped_catalog() {
    if !cloud::available(false) {
        return;
    }
    let admin = cloud::session(cloud::ADMIN).await;
    assert!(admin.project_id().await.unwrap().is_some());
    assert_eq!(
        admin.endpoint("image").await.unwrap(),
        "http://127.0.0.1:9292"
    );
    assert_eq!(admin.endpoint("identity").await.unwrap(), AUTH_URL);
    let demo = cloud::session(cloud::DEMO).await;
    assert_ne!(
        demo.project_id().await.unwrap(),
        admin.project_id().await.unwrap()
    );
    // One login per session, not per request.
    let before = demo.request_count();
    demo.endpoint("image").await.unwrap();
    assert_eq!(demo.request_count(), before);
    let dbg = format!("{admin:?} {:?}", admin.config());
    let password = password_of(admin.config());
    assert!(!dbg.contains(&password), "{dbg}");
}

#[tokio::test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn wrong_password_is_a_clear_401_without_the_password() {
    if !cloud::available(false) {
        return;
    }
    let pw = "wrong-pw-'\"$(id)`id`-do-not-echo";
    let config = CloudConfig::load(
        None,
        &env(&[
            ("OS_AUTH_URL", AUTH_URL),
            ("OS_USERNAME", "admin"),
            ("OS_USER_DOMAIN_NAME", "Default"),
            ("OS_PROJECT_NAME", "admin"),
            ("OS_PROJECT_DOMAIN_NAME", "Default"),
            ("OS_PASSWORD", pw),
        ]),
    )
    .unwrap();
    let err = Session::connect(config).await.unwrap_err();
    let text = format!("{err} / {err:?}");
    assert!(text.contains("401"), "{text}");
    assert!(text.contains("/v3/auth/tokens"), "{text}");
    assert!(!text.contains("do-not-echo"), "{text}");
}

#[tokio::test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn application_credential_and_token_auth() {
    if !cloud::available(false) {
        return;
    }
    let demo = cloud::session(cloud::DEMO).await;
    let demo_project = demo.project_id().await.unwrap();
    let user = demo.user_id().await.unwrap();
    let name = cloud::unique("appcred");

    // A real application credential, made through Keystone's API.
    let url = demo
        .url("identity", &["users", &user, "application_credentials"])
        .await
        .unwrap();
    let created: Value = demo
        .send_json(Method::POST, url, |r| {
            r.json(&json!({"application_credential": {"name": name}}))
        })
        .await
        .unwrap();
    let id = created["application_credential"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = created["application_credential"]["secret"]
        .as_str()
        .unwrap()
        .to_string();

    // Assertions run inside catch_unwind so the credential is deleted even when one fails.
    let result = AssertUnwindSafe(async {
        let config = CloudConfig::load(
            None,
            &env(&[
                ("OS_AUTH_URL", "http://127.0.0.1:5000"),
                ("OS_AUTH_TYPE", "v3applicationcredential"),
                ("OS_APPLICATION_CREDENTIAL_ID", &id),
                ("OS_APPLICATION_CREDENTIAL_SECRET", &secret),
            ]),
        )
        .unwrap();
        assert!(!format!("{config:?}").contains(&secret));
        let s = Session::connect(config).await.unwrap();
        assert_eq!(s.project_id().await.unwrap(), demo_project);
        assert!(s.endpoint("image").await.is_ok());
        assert!(!format!("{s:?}").contains(&secret));

        let bad = CloudConfig::load(
            None,
            &env(&[
                ("OS_AUTH_URL", AUTH_URL),
                ("OS_APPLICATION_CREDENTIAL_ID", &id),
                (
                    "OS_APPLICATION_CREDENTIAL_SECRET",
                    "not-the-secret-do-not-echo",
                ),
            ]),
        )
        .unwrap();
        let err = Session::connect(bad).await.unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(
            text.contains("401") && !text.contains("do-not-echo"),
            "{text}"
        );
    })
    .catch_unwind()
    .await;

    let url = demo
        .url(
            "identity",
            &["users", &user, "application_credentials", &id],
        )
        .await
        .unwrap();
    demo.send(Method::DELETE, url, |r| r).await.unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }

    // Token auth: a token obtained outside forge, exchanged for a project-scoped one.
    let response = reqwest::Client::new()
        .post(format!("{AUTH_URL}/auth/tokens"))
        .json(
            &json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "demo", "domain": {"id": "default"}, "password": password_of(demo.config())
            }}}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let token = response.headers()["x-subject-token"]
        .to_str()
        .unwrap()
        .to_string();
    let config = CloudConfig::load(
        None,
        &env(&[
            ("OS_AUTH_URL", AUTH_URL),
            ("OS_TOKEN", &token),
            ("OS_PROJECT_NAME", "demo"),
            ("OS_PROJECT_DOMAIN_ID", "default"),
        ]),
    )
    .unwrap();
    assert!(!format!("{config:?}").contains(&token));
    let s = Session::connect(config).await.unwrap();
    assert_eq!(s.project_id().await.unwrap(), demo_project);
    assert!(!format!("{s:?}").contains(&token));
}

#[tokio::test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn unknown_region_names_what_the_catalog_has() {
    if !cloud::available(false) {
        return;
    }
    let mut config = CloudConfig::load(Some(cloud::ADMIN), &cloud::config_env()).unwrap();
    config.region = Some("Atlantis".into());
    let s = Session::connect(config).await.unwrap();
    let err = s.endpoint("image").await.unwrap_err().to_string();
    assert!(err.contains("'image'") && err.contains("Atlantis"), "{err}");
    assert!(err.contains("image (public, RegionOne)"), "{err}");

    let mut config = CloudConfig::load(Some(cloud::ADMIN), &cloud::config_env()).unwrap();
    config.cacert = Some("/nonexistent/ca.pem".into());
    let err = Session::connect(config).await.unwrap_err().to_string();
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
}

/// Collects everything forge logs (at TRACE) into a buffer.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn insecure_warns_and_logs_never_carry_the_password() {
    if !cloud::available(false) {
        return;
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // #[tokio::test] runs on one thread, so a thread-local default sees every event.
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut config = CloudConfig::load(Some(cloud::ADMIN), &cloud::config_env()).unwrap();
    let password = password_of(&config);
    config.insecure = true;
    let s = Session::connect(config).await.unwrap();
    forge::openstack::image::ImageClient::new(s)
        .list_page(&Default::default(), Some(1), None)
        .await
        .unwrap();

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).to_string();
    assert!(
        logs.contains("TLS certificate verification is disabled"),
        "{logs}"
    );
    assert!(
        logs.contains("/v2/images"),
        "requests are logged at debug: {logs}"
    );
    assert!(!logs.contains(&password), "{logs}");
    assert!(!logs.to_lowercase().contains("x-auth-token"), "{logs}");
}
