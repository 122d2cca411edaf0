//! The validator engine's semantics (validator-spec.md), one command per remote call
//! (`spec::run_unbatched`: these tests pin exact command sequences; `spec_batch.rs` proves the
//! batched path reaches the same results), against two remotes:
//!
//! - `FakeRemote`, a hand-written fake (named so on purpose): it records every call and answers
//!   from a closure, so tests can pin exact command sequences, pass structure and round-trip
//!   counts, which no real host answers deterministically. Real sshd and libguestfs runs of this
//!   engine are the SSH and pack helpers' integration tests.
//! - `LocalShell`, a real remote: commands run through this machine's `/bin/sh`, so quoting,
//!   shebangs, output capture and the dpkg check command are proven against real programs.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use forge::remote::{shell_quote, CommandOutput, Remote, RemoteError};
use forge::spec::{self, Mode, RunError, RunOptions, RunReport, Spec};
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------- helpers

/// Load `yaml` as `image.yaml` in a fresh temp dir holding `scripts` (path, content).
fn spec_from(yaml: &str, scripts: &[(&str, &[u8])]) -> (Spec, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in scripts {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    }
    let path = dir.path().join("image.yaml");
    std::fs::write(&path, yaml).unwrap();
    let spec = spec::load(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
    (spec, dir)
}

fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn opts(mode: Mode) -> RunOptions {
    RunOptions {
        mode,
        distro_override: None,
    }
}

async fn run(
    spec: &Spec,
    remote: &dyn Remote,
    a: &BTreeMap<String, String>,
    mode: Mode,
) -> Result<RunReport, RunError> {
    spec::run_unbatched(spec, remote, a, &opts(mode), &CancellationToken::new()).await
}

fn failures(r: Result<RunReport, RunError>) -> Vec<spec::Failure> {
    match r {
        Err(RunError::Validation { failures }) => failures,
        other => panic!("expected a validation failure, got {other:?}"),
    }
}

fn ok(status: i32) -> CommandOutput {
    CommandOutput {
        status,
        ..Default::default()
    }
}

fn out(status: i32, stdout: &str, stderr: &str) -> CommandOutput {
    CommandOutput {
        status,
        stdout: stdout.as_bytes().to_vec(),
        stderr: stderr.as_bytes().to_vec(),
    }
}

// ---------------------------------------------------------------- FakeRemote

#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Distro,
    Run(String),
    Write {
        path: String,
        data: Vec<u8>,
        mode: u32,
    },
    Script {
        path: String,
        content: Vec<u8>,
        cmd: String,
    },
}

enum Reply {
    Out(CommandOutput),
    Transport,
    /// Never answers (to test cancellation).
    Hang,
}

type Handler = Box<dyn Fn(&Call, &[Call]) -> Reply + Send + Sync>;

/// FakeRemote: a hand-written stand-in for a target (see the module docs for why). `handler`
/// sees the call and every earlier call, so it can model state (installed after an install).
struct FakeRemote {
    distro: String,
    calls: Mutex<Vec<Call>>,
    handler: Handler,
}

impl FakeRemote {
    fn new(
        distro: &str,
        handler: impl Fn(&Call, &[Call]) -> Reply + Send + Sync + 'static,
    ) -> Self {
        FakeRemote {
            distro: distro.into(),
            calls: Mutex::new(Vec::new()),
            handler: Box::new(handler),
        }
    }

    /// A target where every command succeeds.
    fn satisfied(distro: &str) -> Self {
        Self::new(distro, |_, _| Reply::Out(ok(0)))
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn runs(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Run(cmd) => Some(cmd),
                _ => None,
            })
            .collect()
    }

    fn scripts(&self) -> Vec<(Vec<u8>, String)> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Script { content, cmd, .. } => Some((content, cmd)),
                _ => None,
            })
            .collect()
    }

    async fn answer(&self, call: Call) -> Result<CommandOutput, RemoteError> {
        let reply = {
            let mut calls = self.calls.lock().unwrap();
            let reply = (self.handler)(&call, &calls);
            calls.push(call);
            reply
        };
        match reply {
            Reply::Out(o) => Ok(o),
            Reply::Transport => Err(RemoteError::Transport {
                target: "fake".into(),
                reason: "connection reset".into(),
            }),
            Reply::Hang => std::future::pending().await,
        }
    }
}

#[async_trait]
impl Remote for FakeRemote {
    fn describe(&self) -> String {
        "fake".into()
    }
    async fn run(&self, cmd: &str) -> Result<CommandOutput, RemoteError> {
        self.answer(Call::Run(cmd.into())).await
    }
    async fn write_file(&self, path: &str, data: &[u8], mode: u32) -> Result<(), RemoteError> {
        self.answer(Call::Write {
            path: path.into(),
            data: data.into(),
            mode,
        })
        .await
        .map(|_| ())
    }
    async fn distro(&self) -> Result<String, RemoteError> {
        self.answer(Call::Distro).await?;
        Ok(self.distro.clone())
    }
    async fn run_script(
        &self,
        path: &str,
        content: &[u8],
        cmd: &str,
    ) -> Result<CommandOutput, RemoteError> {
        self.answer(Call::Script {
            path: path.into(),
            content: content.into(),
            cmd: cmd.into(),
        })
        .await
    }
}

/// The package names a check or install command names (pins stripped for apt's `name=version`
/// and dpkg's `forge_pkg 'name' 'version'`; rpm's `name-version` is kept whole).
fn named_packages(cmd: &str) -> Vec<String> {
    let unquote = |w: &str| w.trim_matches('\'').to_string();
    if let Some(rest) = cmd
        .strip_prefix("rpm -q ")
        .or_else(|| cmd.strip_prefix("yum install -y "))
    {
        return rest.split(' ').map(unquote).collect();
    }
    if let Some((_, rest)) = cmd.split_once("apt-get -y install ") {
        return rest
            .split(' ')
            .map(|w| unquote(w).split('=').next().unwrap_or_default().to_string())
            .collect();
    }
    cmd.split("forge_pkg '")
        .skip(1)
        .map(|w| w.split('\'').next().unwrap_or_default().to_string())
        .collect()
}

fn is_check(cmd: &str) -> bool {
    cmd.starts_with("rpm -q ") || cmd.contains("forge_pkg()")
}

/// A package-manager model: `installed` from the start; `installable` succeed on install.
fn package_host(
    distro: &str,
    installed: &'static [&'static str],
    installable: &'static [&'static str],
) -> FakeRemote {
    FakeRemote::new(distro, move |call, earlier| {
        let Call::Run(cmd) = call else {
            return Reply::Out(ok(0));
        };
        let has = |p: &str| {
            installed.contains(&p)
                || (installable.contains(&p)
                    && earlier.iter().any(|c| {
                        matches!(c, Call::Run(prev)
                            if !is_check(prev) && named_packages(prev).iter().any(|n| n == p))
                    }))
        };
        let names = named_packages(cmd);
        if is_check(cmd) {
            match names.iter().find(|p| !has(p)) {
                None => Reply::Out(ok(0)),
                Some(p) => Reply::Out(out(1, "", &format!("package {p} is not installed"))),
            }
        } else if names.iter().all(|p| installable.contains(&p.as_str())) {
            Reply::Out(ok(0))
        } else {
            Reply::Out(out(100, "", "E: Unable to locate package"))
        }
    })
}

// ---------------------------------------------------------------- package

const TWO_PACKAGES: &str =
    "validators:\n  - package:\n      - wget\n      - java: {version: \"8\"}\n";

#[tokio::test]
async fn debian_check_is_one_command_with_name_and_version() {
    let (spec, _d) = spec_from(TWO_PACKAGES, &[]);
    let remote = FakeRemote::satisfied("debian");
    let report = run(&spec, &remote, &args(&[]), Mode::TestOnly)
        .await
        .unwrap();
    let calls = remote.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0], Call::Distro);
    let check = &remote.runs()[0];
    assert!(check.contains("forge_pkg 'wget' '' || r=1; forge_pkg 'java' '8' || r=1; exit $r"));
    assert!(check.contains("dpkg-query -W -f='${Status}|${Version}' \"$1\""));
    assert_eq!(report.round_trips, 2);
    assert_eq!(report.validators_run, 1);
    assert_eq!(
        report.arguments.get("distro").map(String::as_str),
        Some("debian")
    );
}

#[tokio::test]
async fn debian_reconcile_installs_with_name_equals_version_then_checks_again() {
    let (spec, _d) = spec_from(TWO_PACKAGES, &[]);
    let remote = package_host("ubuntu", &[], &["wget", "java"]);
    let report = run(&spec, &remote, &args(&[]), Mode::Reconcile)
        .await
        .unwrap();
    let runs = remote.runs();
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert!(is_check(&runs[0]));
    assert_eq!(named_packages(&runs[0]), ["wget", "java"]);
    assert_eq!(
        runs[1],
        "DEBIAN_FRONTEND=noninteractive apt-get -y install 'wget' 'java=8'"
    );
    assert_eq!(
        runs[2], runs[0],
        "the same check runs again after the install"
    );
    assert_eq!(report.round_trips, 4);
}

#[tokio::test]
async fn redhat_commands_use_name_dash_version() {
    let (spec, _d) = spec_from(TWO_PACKAGES, &[]);
    let remote = package_host("rocky", &[], &["wget", "java-8"]);
    run(&spec, &remote, &args(&[]), Mode::Reconcile)
        .await
        .unwrap();
    assert_eq!(
        remote.runs(),
        [
            "rpm -q 'wget' 'java-8'",
            "yum install -y 'wget' 'java-8'",
            "rpm -q 'wget' 'java-8'"
        ]
    );
}

#[tokio::test]
async fn test_only_reports_missing_packages_and_installs_nothing() {
    let (spec, d) = spec_from(TWO_PACKAGES, &[]);
    let remote = package_host("debian", &["wget"], &["java"]);
    let f = failures(run(&spec, &remote, &args(&[]), Mode::TestOnly).await);
    assert_eq!(f.len(), 1);
    assert_eq!(
        f[0].location,
        format!("{}:2:5", d.path().join("image.yaml").display())
    );
    assert_eq!(f[0].validator, "package");
    assert_eq!(
        f[0].message,
        "not installed: wget java=8 (exit status 1): package java is not installed"
    );
    assert_eq!(remote.runs().len(), 1, "no install in test-only mode");
}

#[tokio::test]
async fn failed_install_is_a_failure_without_a_second_check() {
    let (spec, _d) = spec_from("validators:\n  - package: nosuch\n", &[]);
    let remote = package_host("centos", &[], &[]);
    let f = failures(run(&spec, &remote, &args(&[]), Mode::Reconcile).await);
    assert_eq!(
        f[0].message,
        "installing nosuch failed (exit status 100): E: Unable to locate package"
    );
    assert_eq!(remote.runs().len(), 2);
}

#[tokio::test]
async fn unknown_distro_is_a_validation_failure() {
    let (spec, _d) = spec_from("validators:\n  - package: wget\n", &[]);
    let remote = FakeRemote::satisfied("plan9");
    let f = failures(run(&spec, &remote, &args(&[]), Mode::Reconcile).await);
    assert_eq!(
        f[0].message,
        "unknown distro plan9: cannot verify or install packages"
    );
    assert!(remote.runs().is_empty());
}

// ---------------------------------------------------------------- os_case

/// Which case of an os_case runs, observed through an argument_set in each case.
async fn os_case_pick(cases: &[&str], distro: &str) -> Option<String> {
    let mut yaml = String::from("validators:\n  - os_case:\n");
    for c in cases {
        yaml.push_str(&format!(
            "      - {c}:\n          - argument_set: {{argument_name: picked, value: {c}}}\n"
        ));
    }
    let (spec, _d) = spec_from(&yaml, &[]);
    let remote = FakeRemote::satisfied("unused");
    let o = RunOptions {
        mode: Mode::Reconcile,
        distro_override: Some(distro.into()),
    };
    let report = spec::run_unbatched(&spec, &remote, &args(&[]), &o, &CancellationToken::new())
        .await
        .unwrap();
    assert!(remote.calls().is_empty(), "distro_override saves the query");
    report.arguments.get("picked").cloned()
}

#[tokio::test]
async fn os_case_first_match_by_id_or_family() {
    let cases = ["fedora", "redhat", "debian", "ubuntu"];
    for (distro, expected) in [
        ("fedora", Some("fedora")),
        ("centos", Some("redhat")),
        ("rhel", Some("redhat")),
        ("rocky", Some("redhat")),
        ("almalinux", Some("redhat")),
        ("ol", Some("redhat")),
        ("oraclelinux", Some("redhat")),
        ("scientificlinux", Some("redhat")),
        ("scientific", Some("redhat")),
        ("redhatenterpriseserver", Some("redhat")),
        ("debian", Some("debian")),
        // ubuntu's family is debian, and the debian case comes first.
        ("ubuntu", Some("debian")),
        ("arch", None),
        ("CentOS", None),
    ] {
        assert_eq!(
            os_case_pick(&cases, distro).await.as_deref(),
            expected,
            "distro {distro}"
        );
    }
    // First match wins: the family case before the specific one takes centos.
    assert_eq!(
        os_case_pick(&["redhat", "centos"], "centos")
            .await
            .as_deref(),
        Some("redhat")
    );
    assert_eq!(
        os_case_pick(&["ubuntu", "debian"], "ubuntu")
            .await
            .as_deref(),
        Some("ubuntu")
    );
}

#[tokio::test]
async fn os_case_reads_distro_at_run_time() {
    let yaml = "validators:\n  - argument_set: {argument_name: distro, value: centos}\n  - os_case:\n      - ubuntu:\n          - package: apt-thing\n      - redhat:\n          - package: rpm-thing\n";
    let (spec, _d) = spec_from(yaml, &[]);
    let remote = FakeRemote::satisfied("ubuntu");
    run(&spec, &remote, &args(&[]), Mode::TestOnly)
        .await
        .unwrap();
    assert_eq!(remote.runs(), ["rpm -q 'rpm-thing'"]);
}

// ---------------------------------------------------------------- any / all

const ANY_AB: &str = "validators:\n  - any:\n      - package: a\n      - package: b\n";

#[tokio::test]
async fn any_tries_every_alternative_in_test_only_before_reconciling() {
    // Neither installed; a cannot be installed, b can (sahara-reference B-ANY-3).
    let (spec, _d) = spec_from(ANY_AB, &[]);
    let remote = package_host("centos", &[], &["b"]);
    run(&spec, &remote, &args(&[]), Mode::Reconcile)
        .await
        .unwrap();
    assert_eq!(
        remote.runs(),
        [
            "rpm -q 'a'",
            "rpm -q 'b'",
            "rpm -q 'a'",
            "yum install -y 'a'",
            "rpm -q 'b'",
            "yum install -y 'b'",
            "rpm -q 'b'",
        ]
    );
}

#[tokio::test]
async fn any_installs_nothing_when_a_later_alternative_already_passes() {
    let (spec, _d) = spec_from(ANY_AB, &[]);
    let remote = package_host("centos", &["b"], &["a"]);
    let report = run(&spec, &remote, &args(&[]), Mode::Reconcile)
        .await
        .unwrap();
    assert_eq!(remote.runs(), ["rpm -q 'a'", "rpm -q 'b'"]);
    assert_eq!(report.validators_run, 3);
}

#[tokio::test]
async fn any_failure_lists_itself_then_the_last_pass() {
    let (spec, d) = spec_from(ANY_AB, &[]);
    let file = d.path().join("image.yaml");
    let remote = package_host("centos", &[], &[]);
    let f = failures(run(&spec, &remote, &args(&[]), Mode::TestOnly).await);
    let shown: Vec<(String, &str, &str)> = f
        .iter()
        .map(|x| (x.location.clone(), x.validator.as_str(), x.message.as_str()))
        .collect();
    assert_eq!(shown.len(), 3, "{f:?}");
    assert_eq!(shown[0].0, format!("{}:2:5", file.display()));
    assert_eq!(shown[0].1, "any");
    assert!(shown[0]
        .2
        .starts_with("none of its 2 alternatives passed (checked)"));
    assert_eq!(shown[1].0, format!("{}:3:9", file.display()));
    assert!(shown[1].2.starts_with("not installed: a"));
    assert_eq!(shown[2].0, format!("{}:4:9", file.display()));
    assert!(shown[2].2.starts_with("not installed: b"));
    assert_eq!(remote.runs().len(), 2, "test-only: one pass");

    // In reconcile mode the listed failures are pass 2's (install failures), not pass 1's.
    let remote = package_host("centos", &[], &[]);
    let f = failures(run(&spec, &remote, &args(&[]), Mode::Reconcile).await);
    assert_eq!(f.len(), 3);
    assert!(f[0].message.contains("checked and then reconciled"));
    assert!(f[1].message.starts_with("installing a failed"));
    assert!(f[2].message.starts_with("installing b failed"));
}

#[tokio::test]
async fn empty_any_fails_and_empty_all_passes() {
    let (spec, _d) = spec_from("validators:\n  - all: []\n  - any: []\n", &[]);
    let remote = FakeRemote::satisfied("debian");
    let f = failures(run(&spec, &remote, &args(&[]), Mode::Reconcile).await);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].validator, "any");
}

#[tokio::test]
async fn all_is_fail_fast() {
    let yaml = "validators:\n  - all:\n      - package: missing\n      - script: s/never\n  - script: s/never\n";
    let (spec, _d) = spec_from(yaml, &[("s/never", b"echo hi\n")]);
    let remote = package_host("debian", &[], &[]);
    let f = failures(run(&spec, &remote, &args(&[]), Mode::TestOnly).await);
    assert_eq!(f.len(), 1);
    assert!(
        remote.scripts().is_empty(),
        "nothing after the failure runs"
    );
}

#[tokio::test]
async fn transport_failure_aborts_even_inside_any() {
    let (spec, _d) = spec_from(ANY_AB, &[]);
    let remote = FakeRemote::new("debian", |call, _| match call {
        Call::Run(_) => Reply::Transport,
        _ => Reply::Out(ok(0)),
    });
    match run(&spec, &remote, &args(&[]), Mode::Reconcile).await {
        Err(RunError::Remote(RemoteError::Transport { reason, .. })) => {
            assert_eq!(reason, "connection reset")
        }
        other => panic!("expected a remote error, got {other:?}"),
    }
    assert_eq!(
        remote.runs().len(),
        1,
        "the second alternative is not tried"
    );
}

#[tokio::test]
async fn writes_in_a_failed_any_branch_persist() {
    let yaml = "validators:\n  - any:\n      - all:\n          - argument_set: {argument_name: z, value: from-failed}\n          - package: missing\n      - all:\n          - argument_set: {argument_name: w, value: from-second}\n";
    let (spec, _d) = spec_from(yaml, &[]);
    let remote = package_host("debian", &[], &[]);
    let report = run(&spec, &remote, &args(&[]), Mode::TestOnly)
        .await
        .unwrap();
    assert_eq!(report.arguments["z"], "from-failed");
    assert_eq!(report.arguments["w"], "from-second");
}

// ---------------------------------------------------------------- arguments

const ARGS_SPEC: &str = "arguments:\n  jdk:\n    description: Java\n    default: openjdk\n    choices: [openjdk, oracle]\n  release:\n    description: The release\n    required: true\n  secret_level:\n    default: 1\n    hidden: true\nvalidators:\n  - argument_case:\n      argument_name: jdk\n      cases:\n        oracle:\n          - argument_set: {argument_name: chosen, value: oracle}\n";

#[tokio::test]
async fn argument_resolution_errors_are_clear_and_cost_no_round_trip() {
    let (spec, _d) = spec_from(ARGS_SPEC, &[]);
    let remote = FakeRemote::satisfied("debian");
    let err = run(&spec, &remote, &args(&[("jdk", "zulu")]), Mode::TestOnly)
        .await
        .unwrap_err();
    let RunError::Arguments(msg) = err else {
        panic!("expected an argument error, got {err:?}")
    };
    assert_eq!(
        msg,
        "value `zulu` for argument `jdk` is not allowed: expected one of openjdk, oracle\n\
         argument `release` is required (The release): pass it as release=VALUE"
    );
    let err = run(
        &spec,
        &remote,
        &args(&[("release", "1"), ("jdkk", "x")]),
        Mode::TestOnly,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().starts_with("unknown argument `jdkk`;"),
        "{err}"
    );
    assert!(err
        .to_string()
        .ends_with("declares: jdk, release, secret_level"));
    assert!(remote.calls().is_empty());
}

#[tokio::test]
async fn defaults_hidden_arguments_and_argument_case() {
    let (spec, _d) = spec_from(ARGS_SPEC, &[]);
    let remote = FakeRemote::satisfied("debian");
    let report = run(&spec, &remote, &args(&[("release", "r1")]), Mode::TestOnly)
        .await
        .unwrap();
    assert_eq!(report.arguments["jdk"], "openjdk");
    assert_eq!(report.arguments["secret_level"], "1");
    assert!(
        !report.arguments.contains_key("chosen"),
        "no case for openjdk"
    );

    // A hidden argument is still accepted from the caller.
    let report = run(
        &spec,
        &remote,
        &args(&[("release", "r1"), ("jdk", "oracle"), ("secret_level", "9")]),
        Mode::TestOnly,
    )
    .await
    .unwrap();
    assert_eq!(report.arguments["secret_level"], "9");
    assert_eq!(report.arguments["chosen"], "oracle");
}

#[tokio::test]
async fn argument_case_keys_compare_as_strings() {
    let yaml = "arguments:\n  v: {default: \"8\"}\nvalidators:\n  - argument_case:\n      argument_name: v\n      cases:\n        8:\n          - argument_set: {argument_name: hit, value: int-key}\n        1.10:\n          - argument_set: {argument_name: hit, value: float-key}\n";
    let (spec, _d) = spec_from(yaml, &[]);
    let remote = FakeRemote::satisfied("debian");
    let r = run(&spec, &remote, &args(&[]), Mode::TestOnly)
        .await
        .unwrap();
    assert_eq!(r.arguments["hit"], "int-key");
    // `1.10` keeps its spelling (a float would have become 1.1).
    let r = run(&spec, &remote, &args(&[("v", "1.10")]), Mode::TestOnly)
        .await
        .unwrap();
    assert_eq!(r.arguments["hit"], "float-key");
    let r = run(&spec, &remote, &args(&[("v", "1.1")]), Mode::TestOnly)
        .await
        .unwrap();
    assert!(!r.arguments.contains_key("hit"));
}

#[tokio::test]
async fn argument_case_on_an_unset_argument_fails() {
    let yaml = "validators:\n  - argument_case:\n      argument_name: JAVA_VERSION\n      cases:\n        \"8\": []\n";
    let (spec, _d) = spec_from(yaml, &[]);
    let f = failures(
        run(
            &spec,
            &FakeRemote::satisfied("debian"),
            &args(&[]),
            Mode::TestOnly,
        )
        .await,
    );
    assert_eq!(f[0].validator, "argument_case");
    assert_eq!(f[0].message, "argument `JAVA_VERSION` not found");
}

// ---------------------------------------------------------------- scripts

/// The `'NAME=VALUE'` words env(1) receives in a script command, in order.
fn env_words(cmd: &str) -> Vec<String> {
    let rest = cmd
        .strip_prefix("env ")
        .expect("script commands start with env");
    // Drop the runner (`'/tmp/forge-….sh'` or `bash '/tmp/forge-….sh'`) and what follows.
    let rest = &rest[..rest.find("; s=$?").expect("a status trailer")];
    let cut = rest.rfind(" '/tmp/forge-").expect("a runner");
    let rest = rest[..cut].trim_end_matches(" bash");
    let mut words = Vec::new();
    let mut chars = rest.chars().peekable();
    // Parse POSIX single-quoted words until the first unquoted word (the runner).
    while chars.peek() == Some(&'\'') {
        let mut word = String::new();
        loop {
            chars.next(); // opening quote
            for c in chars.by_ref() {
                if c == '\'' {
                    break;
                }
                word.push(c);
            }
            // `'\''` continues the word with a literal quote.
            if chars.peek() == Some(&'\\') {
                chars.next();
                chars.next();
                word.push('\'');
                continue;
            }
            break;
        }
        words.push(word);
        if chars.peek() == Some(&' ') {
            chars.next();
        }
    }
    words
}

#[tokio::test]
async fn argument_set_and_output_flow_into_later_scripts_in_sahara_env_order() {
    let yaml = "arguments:\n  b_arg: {default: bee}\n  a_arg: {default: ay}\nvalidators:\n  - argument_set: {argument_name: z_set, value: zed}\n  - script:\n      s/producer:\n        output: y_out\n  - script:\n      s/consumer:\n        env_vars: [y_out, a_arg, z_set, b_arg, undeclared]\n";
    let (spec, _d) = spec_from(
        yaml,
        &[
            ("s/producer", b"echo produced\n"),
            ("s/consumer", b"#!/bin/sh\nenv\n"),
        ],
    );
    let remote = FakeRemote::new("ubuntu", |call, _| match call {
        Call::Script { content, .. } if content.starts_with(b"echo produced") => {
            Reply::Out(out(0, "line one\nline two\n\n", ""))
        }
        _ => Reply::Out(ok(0)),
    });
    let report = run(&spec, &remote, &args(&[]), Mode::Reconcile)
        .await
        .unwrap();
    assert_eq!(report.arguments["y_out"], "line one\nline two");
    let scripts = remote.scripts();
    // The producer gets only the implicit variables.
    assert_eq!(env_words(&scripts[0].1), ["distro=ubuntu", "test_only=0"]);
    // Declared args in declaration order, distro, runtime-set keys in first-set order, test_only
    // last; names absent from the map give nothing.
    assert_eq!(
        env_words(&scripts[1].1),
        [
            "b_arg=bee",
            "a_arg=ay",
            "distro=ubuntu",
            "z_set=zed",
            "y_out=line one\nline two",
            "test_only=0"
        ]
    );
    assert_eq!(report.round_trips, 3);
}

#[tokio::test]
async fn hostile_values_are_single_quoted() {
    let hostile = "it's $(touch /tmp/pwned) `id` \"q\" ; rm -rf / \n next line\\";
    let yaml = "arguments:\n  v: {default: x}\nvalidators:\n  - script:\n      s/x:\n        env_vars: [v]\n";
    let (spec, _d) = spec_from(yaml, &[("s/x", b"echo\n")]);
    let remote = FakeRemote::satisfied("debian");
    run(&spec, &remote, &args(&[("v", hostile)]), Mode::TestOnly)
        .await
        .unwrap();
    let cmd = &remote.scripts()[0].1;
    assert!(
        cmd.starts_with(&format!("env {} ", shell_quote(&format!("v={hostile}")))),
        "{cmd}"
    );
    assert_eq!(env_words(cmd)[0], format!("v={hostile}"));
}

#[tokio::test]
async fn shebang_decides_the_interpreter_and_content_is_verbatim() {
    let yaml = "validators:\n  - script: s/with\n  - script: s/without\n";
    let with: &[u8] = b"#!/usr/bin/perl\nprint 1;\n";
    let without: &[u8] = b"echo $BASH_VERSION\n";
    let (spec, _d) = spec_from(yaml, &[("s/with", with), ("s/without", without)]);
    let remote = FakeRemote::satisfied("debian");
    run(&spec, &remote, &args(&[]), Mode::TestOnly)
        .await
        .unwrap();
    let calls = remote.calls();
    let Call::Script { path, content, cmd } = &calls[1] else {
        panic!("{calls:?}")
    };
    assert!(path.starts_with("/tmp/forge-") && path.ends_with(".sh"));
    assert_eq!(content, with, "no header is injected into the script");
    assert_eq!(
        cmd,
        &format!("env 'distro=debian' 'test_only=1' '{path}'; s=$?; rm -f '{path}'; exit $s")
    );
    let Call::Script { path, content, cmd } = &calls[2] else {
        panic!("{calls:?}")
    };
    assert_eq!(content, without);
    assert_eq!(
        cmd,
        &format!("env 'distro=debian' 'test_only=1' bash '{path}'; s=$?; rm -f '{path}'; exit $s")
    );
}

#[tokio::test]
async fn failing_script_reports_status_and_stderr() {
    let (spec, _d) = spec_from(
        "validators:\n  - script: common/x\n",
        &[("common/x", b"exit 3\n")],
    );
    let remote = FakeRemote::new("debian", |call, _| match call {
        Call::Script { .. } => Reply::Out(out(3, "some stdout", "first\nboom")),
        _ => Reply::Out(ok(0)),
    });
    let f = failures(run(&spec, &remote, &args(&[]), Mode::Reconcile).await);
    assert_eq!(f[0].validator, "script");
    assert_eq!(
        f[0].message,
        "`common/x` failed (exit status 3): first\n    boom"
    );
}

#[tokio::test]
async fn copy_script_writes_verbatim_bytes_to_tmp_basename_in_test_only_mode() {
    let bytes: &[u8] = b"#!/bin/bash\nfn() { :; }\n\xff\n";
    let yaml = "validators:\n  - copy_script: common/resources/package_utils.sh\n  - copy_script:\n      label/deeper/inline.txt:\n        inline: hello\n";
    let (spec, _d) = spec_from(yaml, &[("common/resources/package_utils.sh", bytes)]);
    let remote = FakeRemote::satisfied("debian");
    let report = run(&spec, &remote, &args(&[]), Mode::TestOnly)
        .await
        .unwrap();
    assert_eq!(
        remote.calls()[1..],
        [
            Call::Write {
                path: "/tmp/package_utils.sh".into(),
                data: bytes.to_vec(),
                mode: 0o644
            },
            Call::Write {
                path: "/tmp/inline.txt".into(),
                data: b"hello".to_vec(),
                mode: 0o644
            }
        ]
    );
    assert_eq!(report.round_trips, 3);
}

// ---------------------------------------------------------------- cancellation

/// Callers spawn runs on tokio tasks: the run future must be `Send`.
#[test]
fn run_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let (spec, _d) = spec_from("validators: []\n", &[]);
    let remote = FakeRemote::satisfied("debian");
    let a = args(&[]);
    let o = opts(Mode::TestOnly);
    let cancel = CancellationToken::new();
    let fut = spec::run_unbatched(&spec, &remote, &a, &o, &cancel);
    assert_send(&fut);
}

#[tokio::test]
async fn cancelled_before_start_makes_no_call() {
    let (spec, _d) = spec_from(TWO_PACKAGES, &[]);
    let remote = FakeRemote::satisfied("debian");
    let cancel = CancellationToken::new();
    cancel.cancel();
    let r = spec::run_unbatched(&spec, &remote, &args(&[]), &opts(Mode::Reconcile), &cancel).await;
    assert!(matches!(r, Err(RunError::Cancelled)), "{r:?}");
    assert!(remote.calls().is_empty());
}

#[tokio::test]
async fn cancel_interrupts_a_hanging_remote_call() {
    let (spec, _d) = spec_from("validators:\n  - package: a\n  - package: b\n", &[]);
    let remote = FakeRemote::new("debian", |call, _| match call {
        Call::Run(_) => Reply::Hang,
        _ => Reply::Out(ok(0)),
    });
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        trigger.cancel();
    });
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        spec::run_unbatched(&spec, &remote, &args(&[]), &opts(Mode::Reconcile), &cancel),
    )
    .await
    .expect("the run must stop when cancelled");
    assert!(matches!(r, Err(RunError::Cancelled)), "{r:?}");
    assert_eq!(remote.runs().len(), 1, "nothing runs after the cancel");
}

// ---------------------------------------------------------------- a real corpus spec

#[tokio::test]
async fn corpus_cdh_round_trips_on_a_satisfied_ubuntu_host() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "tests/fixtures/sahara/sahara-plugin-cdh__sahara_plugin_cdh__plugins__cdh__v5_13_0.yaml",
    );
    let yaml = std::fs::read_to_string(&path).unwrap();
    let root = tempfile::tempdir().unwrap();
    for word in yaml.split(|c: char| c.is_whitespace() || c == ':') {
        if ["centos/", "ubuntu/", "common/"]
            .iter()
            .any(|p| word.starts_with(p))
        {
            let f = root.path().join(word);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, "exit 0\n").unwrap();
        }
    }
    let spec = spec::load(&path, &[root.path().to_path_buf()]).unwrap();
    let remote = FakeRemote::satisfied("ubuntu");
    let report = run(&spec, &remote, &args(&[]), Mode::TestOnly)
        .await
        .unwrap();
    // Counted by hand from the YAML for ubuntu with java_distro=cloudera-jdk: the distro query,
    // 15 package checks (one per validator) and 6 scripts.
    assert_eq!(report.round_trips, 22);
    assert_eq!(remote.runs().len(), 15);
    assert_eq!(remote.scripts().len(), 6);
    // 22 top-level validators plus the nested ones that ran: ubuntu/wget_repo, the cloudera-jdk
    // `all` and its package, ubuntu/turn_off_services, the ubuntu krb5 package.
    assert_eq!(report.validators_run, 27);
}

// ---------------------------------------------------------------- LocalShell: real /bin/sh

/// A real remote on this machine: commands run through `/bin/sh -c`, files are really written.
/// Used only with scripts and read-only checks (never package installs).
struct LocalShell;

#[async_trait]
impl Remote for LocalShell {
    fn describe(&self) -> String {
        "local shell".into()
    }
    async fn run(&self, cmd: &str) -> Result<CommandOutput, RemoteError> {
        let o = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .output()
            .await
            .map_err(|e| RemoteError::Transport {
                target: "local".into(),
                reason: e.to_string(),
            })?;
        Ok(CommandOutput {
            status: o.status.code().unwrap_or(-1),
            stdout: o.stdout,
            stderr: o.stderr,
        })
    }
    async fn write_file(&self, path: &str, data: &[u8], mode: u32) -> Result<(), RemoteError> {
        use std::os::unix::fs::PermissionsExt;
        let io = |e: std::io::Error| RemoteError::Transport {
            target: "local".into(),
            reason: e.to_string(),
        };
        std::fs::write(path, data).map_err(io)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io)
    }
    async fn distro(&self) -> Result<String, RemoteError> {
        Ok("debian".into())
    }
}

#[tokio::test]
async fn real_shell_hostile_values_arrive_verbatim_and_nothing_executes() {
    let marker = tempfile::tempdir().unwrap();
    let pwned = marker.path().join("pwned");
    let hostile = format!(
        "sp ace 'single' \"double\" $(touch {p}) `touch {p}` ; touch {p} \\ \n\tsecond line $HOME",
        p = pwned.display()
    );
    let yaml = "arguments:\n  v: {default: x}\nvalidators:\n  - script:\n      s/echo:\n        env_vars: [v]\n        output: got\n";
    let (spec, _d) = spec_from(yaml, &[("s/echo", b"printf '%s' \"$v\"\n")]);
    let report = run(
        &spec,
        &LocalShell,
        &args(&[("v", &hostile)]),
        Mode::TestOnly,
    )
    .await
    .unwrap();
    assert_eq!(report.arguments["got"], hostile);
    assert!(!pwned.exists(), "a value was executed");
}

#[tokio::test]
#[ignore = "needs perl: apt-get install perl-base"]
async fn real_shell_shebang_is_honoured_and_the_script_file_is_removed() {
    let missing = (!Path::new("/usr/bin/perl").exists()).then(|| "no /usr/bin/perl".to_string());
    crate::infra::require("perl", "apt-get install perl-base", missing);
    let yaml = "validators:\n  - script:\n      s/perl:\n        output: perl_out\n  - script:\n      s/plain:\n        output: shell_out\n";
    let (spec, _d) = spec_from(
        yaml,
        &[
            (
                "s/perl",
                b"#!/usr/bin/perl\nprint \"perl says $ENV{test_only} $ENV{distro}\\n\";\n",
            ),
            (
                "s/plain",
                b"[ -n \"$BASH_VERSION\" ] && echo bash || echo not-bash\n",
            ),
        ],
    );
    let report = run(&spec, &LocalShell, &args(&[]), Mode::Reconcile)
        .await
        .unwrap();
    assert_eq!(report.arguments["perl_out"], "perl says 0 debian");
    assert_eq!(report.arguments["shell_out"], "bash");

    // The uploaded script is gone afterwards, whatever its exit status.
    let (spec, _d) = spec_from(
        "validators:\n  - script:\n      s/self:\n        output: me\n",
        &[("s/self", b"echo \"$0\"; exit 0\n")],
    );
    let report = run(&spec, &LocalShell, &args(&[]), Mode::TestOnly)
        .await
        .unwrap();
    let path = &report.arguments["me"];
    assert!(path.starts_with("/tmp/forge-"), "{path}");
    assert!(!Path::new(path).exists());
}

/// The debian check command against this machine's real dpkg database.
#[tokio::test]
#[ignore = "needs dpkg-query: a Debian-family machine"]
async fn real_dpkg_check_command() {
    let missing = std::process::Command::new("dpkg-query")
        .arg("--version")
        .output()
        .err()
        .map(|e| format!("dpkg-query: {e}"));
    crate::infra::require(
        "dpkg-query",
        "a Debian-family machine (apt-get install dpkg)",
        missing,
    );
    let bash_version = std::process::Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "bash"])
        .output()
        .unwrap();
    let bash_version = String::from_utf8(bash_version.stdout).unwrap();
    let check = |yaml: String| async move {
        let (spec, _d) = spec_from(&yaml, &[]);
        run(&spec, &LocalShell, &args(&[]), Mode::TestOnly).await
    };
    check("validators:\n  - package: [bash, coreutils]\n".into())
        .await
        .unwrap();
    check(format!(
        "validators:\n  - package: {{bash: {{version: \"{bash_version}\"}}}}\n"
    ))
    .await
    .unwrap();
    let f = failures(
        check("validators:\n  - package: {bash: {version: \"0.0-forge\"}}\n".into()).await,
    );
    assert_eq!(
        f[0].message,
        format!("not installed: bash=0.0-forge (exit status 1): package bash is at version {bash_version}, not 0.0-forge")
    );
    let f =
        failures(check("validators:\n  - package: [bash, forge-no-such-package]\n".into()).await);
    assert_eq!(
        f[0].message,
        "not installed: bash forge-no-such-package (exit status 1): package forge-no-such-package is not installed"
    );
}
