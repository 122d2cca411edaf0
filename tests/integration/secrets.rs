//! Secrets never show: real `forge build` runs against the test cloud and a real SSH test host,
//! at the most verbose levels (`-vv` and `FORGE_LOG=trace`, which turns on every dependency's
//! logs too: reqwest, hyper, rustls, russh), with known secret values:
//! - the cloud password (clouds.yaml) and a wrong one given in the template (a failing login);
//! - an application credential created in Keystone for this test (id + secret);
//! - a `sensitive = true` variable passed to a validator as an argument;
//! - the temporary private key forge generates (read from forge's temp dir while it exists);
//! - the Keystone token (never known to the test: any Fernet token starts with `gAAAAA`).
//!
//! Then stdout, stderr, the manifest, the journal and every file forge wrote (its state dir,
//! its temp dir, its HOME) are searched for each of them; `forge validate --json` too.

use crate::build;
use crate::cloud;
use crate::fixture::Fixture;

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use build::{leftovers, Knobs};
use forge::openstack::Session;
use reqwest::Method;

/// Where one forge run may write: its state dir (journal), temp dir (key, known_hosts), HOME.
struct Sandbox {
    root: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let root = tempfile::tempdir().unwrap();
        for d in ["state", "tmp", "home"] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        Sandbox { root }
    }
    fn dir(&self, d: &str) -> PathBuf {
        self.root.path().join(d)
    }
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_forge"));
        c.args(args)
            .env("OS_CLIENT_CONFIG_FILE", cloud::clouds_yaml())
            .env("XDG_STATE_HOME", self.dir("state"))
            .env("TMPDIR", self.dir("tmp"))
            .env("HOME", self.dir("home"))
            .env_remove("OS_CLOUD")
            .env_remove("FORGE_LOG");
        c
    }
}

/// Everything a run showed or left: (where, content).
#[derive(Default)]
struct Evidence(Vec<(String, Vec<u8>)>);

impl Evidence {
    fn add(&mut self, what: impl Into<String>, data: impl Into<Vec<u8>>) {
        self.0.push((what.into(), data.into()));
    }
    /// Every regular file under `dir`, except `skip` (files the test itself wrote).
    fn add_files(&mut self, dir: &Path, skip: &BTreeSet<PathBuf>) {
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    todo.push(p);
                } else if p.is_file() && !skip.contains(&p) {
                    if let Ok(data) = std::fs::read(&p) {
                        self.add(p.display().to_string(), data);
                    }
                }
            }
        }
    }
    fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(n, _)| n.as_str()).collect()
    }
    /// Where each secret appears (empty when none does).
    fn leaks(&self, secrets: &[(&str, String)]) -> Vec<String> {
        let mut out = Vec::new();
        for (what, data) in &self.0 {
            let text = String::from_utf8_lossy(data);
            for (label, secret) in secrets {
                if let Some(at) = text.find(secret.as_str()) {
                    let context: String = text[at..].chars().take(secret.len() + 40).collect();
                    let before: String = text[..at].chars().rev().take(80).collect();
                    let before: String = before.chars().rev().collect();
                    out.push(format!("{label} in {what}: ...{before}{context}..."));
                }
            }
        }
        out
    }
}

/// An application credential of the test user, created for this test (deleted by `drop_it`).
struct AppCredential {
    session: Arc<Session>,
    user: String,
    id: String,
    secret: String,
}

impl AppCredential {
    async fn create(session: &Arc<Session>, name: &str, secret: &str) -> AppCredential {
        let user = session.user_id().await.unwrap();
        let url = session
            .url("identity", &["users", &user, "application_credentials"])
            .await
            .unwrap();
        let body = serde_json::json!({"application_credential": {
            "name": name, "secret": secret, "description": "forge secrets test"}});
        let v: serde_json::Value = session
            .send_json(Method::POST, url, |r| r.json(&body))
            .await
            .expect("create an application credential");
        AppCredential {
            session: session.clone(),
            user,
            id: v["application_credential"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
            secret: secret.to_string(),
        }
    }
    async fn drop_it(&self) {
        let url = self
            .session
            .url(
                "identity",
                &["users", &self.user, "application_credentials", &self.id],
            )
            .await
            .unwrap();
        let _ = self.session.send(Method::DELETE, url, |r| r).await;
    }
}

/// `NAME = VALUE` lines added to the source block of a Knobs template.
fn add_to_source(template: &Path, lines: &str) {
    let text = std::fs::read_to_string(template).unwrap();
    let anchor = format!("  cloud = \"{}\"\n", cloud::ADMIN);
    assert!(text.contains(&anchor));
    let text = text.replacen(&anchor, &format!("{anchor}{lines}\n"), 1);
    std::fs::write(template, text).unwrap();
}

/// Make the `greeting` variable sensitive.
fn make_greeting_sensitive(template: &Path) {
    let text = std::fs::read_to_string(template).unwrap();
    let text = text.replacen(
        "  default = \"hello\"\n",
        "  default = \"hello\"\n  sensitive = true\n",
        1,
    );
    std::fs::write(template, text).unwrap();
}

/// Every file in `dir` now (the test's own files, not searched).
fn existing(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect()
}

/// The body lines of an OpenSSH private key that hold key material (the first lines are the
/// same for every unencrypted ed25519 key: format magic, cipher `none`, public key).
fn key_material(private: &str) -> Vec<String> {
    let body: Vec<&str> = private
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    body.iter().skip(2).map(|l| l.to_string()).collect()
}

/// Run forge to the end with stderr read line by line; `on_line` sees each line as it comes
/// (to act while forge runs). Returns (exit code, stdout, stderr).
fn run_streaming(mut cmd: Command, mut on_line: impl FnMut(&str)) -> (Option<i32>, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run forge");
    let stdout = child.stdout.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::BufReader::new(stdout), &mut s);
        s
    });
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let err_reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut text = String::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(180)) {
        on_line(&line);
        text.push_str(&line);
        text.push('\n');
    }
    let status = child.wait().unwrap();
    let _ = err_reader.join();
    let out = out_reader.join().unwrap();
    (
        status.code(),
        String::from_utf8_lossy(&out).into_owned(),
        text,
    )
}

#[test]
#[ignore = "needs the test cloud and the SSH test hosts: tests/cloud/up.sh, tests/hosts/setup.sh"]
fn no_secret_reaches_logs_errors_manifests_journals_or_files() {
    let f = Fixture::new("secrets").repo().start();
    let (rt, host, session, images, tag) = (&f.rt, f.host(), &f.session, &f.images, &f.tag);
    let nonce = tag.rsplit('-').next().unwrap().to_string();
    let sensitive = format!("SensitiveGreeting-{nonce}-it's \"q\" $(id)");
    let wrong_password = format!("WrongPassword-{nonce}");
    let app = rt.block_on(AppCredential::create(
        session,
        &format!("{tag}-appcred"),
        &format!("AppCredSecret-{nonce}"),
    ));
    rt.block_on(async {
        build::base_image(images, tag, 5).await;
    });

    let mut evidence = Evidence::default();
    let mut private_keys: Vec<String> = Vec::new();
    let mut run_ids = Vec::new();

    // Run A: a full, successful build, password login from clouds.yaml, temporary keypair,
    // a sensitive argument; -vv and FORGE_LOG=trace (every crate's trace output).
    let sandbox_a = Sandbox::new();
    let dir_a = tempfile::tempdir().unwrap();
    let mut knobs = Knobs::good(host, tag, "unused");
    knobs.keypair = None;
    let template_a = knobs.write(dir_a.path());
    make_greeting_sensitive(&template_a);
    let own_a = existing(dir_a.path());
    let mut cmd = sandbox_a.command(&["-vv", "build"]);
    cmd.arg(&template_a)
        .args(["-var", &format!("greeting={sensitive}")])
        .env("FORGE_LOG", "trace");
    let mut authorized = false;
    let (code, stdout, stderr) = run_streaming(cmd, |line| {
        let Some(name) = line.trim_start().strip_prefix("temporary keypair: ") else {
            return;
        };
        if authorized {
            return;
        }
        authorized = true;
        // The key forge generated, from its temp dir, while it exists.
        for d in std::fs::read_dir(sandbox_a.dir("tmp")).unwrap().flatten() {
            let f = d.path().join("id_ed25519");
            if let Ok(k) = std::fs::read_to_string(&f) {
                private_keys.push(k);
            }
        }
        // CLOUD-INIT STAND-IN, as in the other build tests.
        build::authorize_from_nova(rt, session, host, name);
    });
    run_ids.extend(build::run_id(&stderr));
    evidence.add("run A stdout", stdout.clone());
    evidence.add("run A stderr", stderr.clone());
    evidence.add_files(dir_a.path(), &own_a);
    evidence.add_files(sandbox_a.root.path(), &BTreeSet::new());
    let a_ok = code == Some(0);
    // The sensitive value really reached the host (so it was in play, not dropped).
    let greeting_on_host = host.read("/root/greeting");

    // Run B: application-credential login (template), then a failure after login (unknown
    // flavor); -vv only.
    let sandbox_b = Sandbox::new();
    let dir_b = tempfile::tempdir().unwrap();
    let mut knobs = Knobs::good(host, tag, "unused");
    knobs.flavor = format!("{tag}-no-such-flavor");
    let template_b = knobs.write(dir_b.path());
    make_greeting_sensitive(&template_b);
    add_to_source(
        &template_b,
        &format!(
            "  application_credential_id     = \"{}\"\n  application_credential_secret = \"{}\"",
            app.id, app.secret
        ),
    );
    let own_b = existing(dir_b.path());
    let mut cmd = sandbox_b.command(&["-vv", "build"]);
    cmd.arg(&template_b)
        .args(["-var", &format!("greeting={sensitive}")]);
    let (code_b, stdout, stderr_b) = run_streaming(cmd, |_| {});
    run_ids.extend(build::run_id(&stderr_b));
    evidence.add("run B stdout", stdout);
    evidence.add("run B stderr", stderr_b.clone());
    evidence.add_files(dir_b.path(), &own_b);
    evidence.add_files(sandbox_b.root.path(), &BTreeSet::new());

    // Run C: a wrong password in the template: Keystone says 401. FORGE_LOG=trace.
    let sandbox_c = Sandbox::new();
    let dir_c = tempfile::tempdir().unwrap();
    let template_c = Knobs::good(host, tag, "unused").write(dir_c.path());
    add_to_source(&template_c, &format!("  password = \"{wrong_password}\""));
    let own_c = existing(dir_c.path());
    let mut cmd = sandbox_c.command(&["-vv", "build"]);
    cmd.arg(&template_c).env("FORGE_LOG", "trace");
    let (code_c, stdout, stderr_c) = run_streaming(cmd, |_| {});
    evidence.add("run C stdout", stdout);
    evidence.add("run C stderr", stderr_c.clone());
    evidence.add_files(dir_c.path(), &own_c);
    evidence.add_files(sandbox_c.root.path(), &BTreeSet::new());

    // `forge validate --json`, valid and invalid: a sensitive value that fails its type check.
    let sandbox_v = Sandbox::new();
    let for_validate = format!(
        "{}\nvariable \"pin\" {{\n  type      = number\n  sensitive = true\n  default   = 0\n}}\n",
        std::fs::read_to_string(&template_a).unwrap()
    );
    let template_v = dir_a.path().join("v.pkr.hcl");
    std::fs::write(&template_v, for_validate).unwrap();
    for (label, pin) in [("valid", "1234"), ("invalid", sensitive.as_str())] {
        let out = sandbox_v
            .command(&["-vv", "validate", "--json"])
            .arg(&template_v)
            .args(["-var", &format!("greeting={sensitive}")])
            .args(["-var", &format!("pin={pin}")])
            .env("FORGE_LOG", "trace")
            .output()
            .unwrap();
        let code = out.status.code();
        assert_eq!(
            code,
            Some(if label == "valid" { 0 } else { 1 }),
            "validate --json ({label}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        evidence.add(format!("validate --json ({label}) stdout"), out.stdout);
        evidence.add(format!("validate --json ({label}) stderr"), out.stderr);
    }
    evidence.add_files(sandbox_v.root.path(), &BTreeSet::new());

    // Clean up what the test made before asserting.
    // The published image of run A carries the tag; after it is deleted nothing may remain.
    rt.block_on(cloud::delete_tagged(images, tag));
    let left: Vec<_> = run_ids
        .iter()
        .map(|id| rt.block_on(leftovers(session, id)))
        .collect();
    rt.block_on(app.drop_it());

    assert!(a_ok, "run A (the full build) failed:\n{stderr}");
    assert!(
        authorized,
        "run A never registered a temporary keypair:\n{stderr}"
    );
    assert_eq!(
        private_keys.len(),
        1,
        "the generated key was not found in forge's temp dir"
    );
    assert_eq!(
        greeting_on_host.as_deref(),
        Some(sensitive.as_bytes()),
        "the sensitive argument did not reach the host"
    );
    assert!(
        stderr.contains("reqwest") || stderr.contains("hyper"),
        "FORGE_LOG=trace did not show dependency logs; the test would prove little:\n{}",
        &stderr[..stderr.len().min(2000)]
    );
    assert_eq!(code_b, Some(1), "run B: {stderr_b}");
    assert!(
        stderr_b.contains("no-such-flavor"),
        "run B must log in with the application credential and fail at the flavor:\n{stderr_b}"
    );
    // A refused login has its own exit code.
    assert_eq!(code_c, Some(4), "run C: {stderr_c}");
    assert!(
        stderr_c.contains("401"),
        "run C must fail at login:\n{stderr_c}"
    );
    for l in &left {
        assert_eq!(l.count(), 0, "a run left resources: {l:?}");
    }
    // The manifest and the journal were written and are among the files searched.
    let names = evidence.names();
    assert!(
        names.iter().any(|n| n.ends_with("manifest.json")),
        "no manifest searched: {names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.contains("/state/") && n.ends_with(".jsonl")),
        "no journal searched: {names:?}"
    );

    let mut secrets: Vec<(&str, String)> = vec![
        ("cloud password", cloud::password(cloud::ADMIN)),
        ("wrong password", wrong_password.clone()),
        ("application credential secret", app.secret.clone()),
        ("sensitive variable", sensitive.clone()),
        // The quoting forge applies to arguments could show the value in another form.
        (
            "sensitive variable (unique part)",
            format!("SensitiveGreeting-{nonce}"),
        ),
        ("Keystone token (Fernet prefix)", "gAAAAA".to_string()),
        (
            "private key header",
            "BEGIN OPENSSH PRIVATE KEY".to_string(),
        ),
    ];
    for line in key_material(&private_keys[0]) {
        secrets.push(("generated private key", line));
    }
    let leaks = evidence.leaks(&secrets);
    assert!(
        leaks.is_empty(),
        "secrets leaked ({} places searched):\n{}",
        evidence.0.len(),
        leaks.join("\n")
    );
    eprintln!(
        "searched {} outputs and files for {} secret values: none found",
        evidence.0.len(),
        secrets.len()
    );
    // FORGE_SECRETS_KEEP=DIR keeps what was searched, to see what the logs hold.
    let keep = std::env::var_os("FORGE_SECRETS_KEEP").map(PathBuf::from);
    for (i, (what, data)) in evidence.0.iter().enumerate() {
        eprintln!("  {what}: {} bytes", data.len());
        if let Some(dir) = &keep {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(format!("{i:02}.txt")), data).unwrap();
        }
    }
}
