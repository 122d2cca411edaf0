//! `forge check` / `forge reconcile` (the real binary) against real SSH hosts (tests/hosts):
//! exit codes, failure listings with spec locations, package installs from the local apt repo,
//! hostile argument values, test-only leaving the host untouched, sudo, a real corpus spec.

use crate::hosts;

use std::path::Path;
use std::time::{Duration, Instant};

use hosts::{forge, spark_spec, stand_in_scripts, Key, SpecDir, TestHost};

fn flags(host: &TestHost, user: &str, spec: &Path) -> Vec<String> {
    let mut f = host.cli_flags(user);
    f.push("--spec".into());
    f.push(spec.display().to_string());
    f
}

fn cmd(verb: &str, rest: Vec<String>) -> Vec<String> {
    let mut v = vec![verb.to_string()];
    v.extend(rest);
    v
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn package_from_local_repo_fails_check_then_reconciles_then_passes() {
    let host = host_or_skip!("package_from_local_repo_fails_check_then_reconciles_then_passes");
    host.use_repo();
    let d = SpecDir::new();
    let spec = d.file("spec.yaml", "validators:\n  - package: [hello, tree]\n");

    let (code, out, err) = forge(cmd("check", flags(&host, "root", &spec)));
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    let loc = format!("{}:2:5: package: ", spec.display());
    assert!(out.starts_with(&loc), "{out}");
    assert!(out.contains("hello"), "{out}");
    assert!(err.contains("does not meet"), "{err}");
    assert!(!host.installed("hello") && !host.installed("tree"));

    let (code, out, err) = forge(cmd("reconcile", flags(&host, "root", &spec)));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(host.installed("hello") && host.installed("tree"));
    assert_eq!(host.sh_ok("hello"), "Hello, world!\n");

    let (code, out, err) = forge(cmd("check", flags(&host, "root", &spec)));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.starts_with("ok: root@"), "{out}");
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn hostile_argument_values_arrive_verbatim() {
    let host = host_or_skip!("hostile_argument_values_arrive_verbatim");
    let d = SpecDir::new();
    d.file(
        "save",
        "#!/bin/sh\nprintf '%s' \"$value\" > /root/value\nprintf '%s' \"$other\" > /root/other\n",
    );
    let spec = d.file(
        "spec.yaml",
        "arguments:\n  value:\n    required: true\n  other:\n    default: x\n\
         validators:\n  - script:\n      save:\n        env_vars: [value, other]\n",
    );
    let hostile = "sp ace 'single' \"double\" $(touch /tmp/pwned-dollar) `touch /tmp/pwned-tick` \
                   $HOME \\back\\slash ;& | > <\nsecond line\n\ttab\n\n";
    let other = "it's=\"=\"";
    let mut args = flags(&host, "root", &spec);
    args.extend([
        "--arg".into(),
        format!("value={hostile}"),
        "--arg".into(),
        format!("other={other}"),
    ]);
    let (code, out, err) = forge(cmd("reconcile", args));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(host.read("/root/value").unwrap(), hostile.as_bytes());
    assert_eq!(host.read("/root/other").unwrap(), other.as_bytes());
    assert!(host.read("/tmp/pwned-dollar").is_none());
    assert!(host.read("/tmp/pwned-tick").is_none());
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn test_only_mode_changes_nothing_on_the_host() {
    let host = host_or_skip!("test_only_mode_changes_nothing_on_the_host");
    host.use_repo();
    let d = SpecDir::new();
    // Each script changes the host in reconcile mode and only looks in test-only mode.
    d.file(
        "configure",
        "#!/bin/sh\nif [ \"$test_only\" = 1 ]; then grep -q forge /etc/motd; exit; fi\n\
         echo forge >> /etc/motd\n",
    );
    d.file("probe", "#!/bin/sh\nprintf 'probed\\n'\n");
    let spec = d.file(
        "spec.yaml",
        r#"
arguments:
  level:
    default: "1"
validators:
  - script:
      probe:
        output: probed
  - argument_set:
      argument_name: level
      value: "2"
  - os_case:
      - debian:
          - any:
              - package: sl
              - script: configure
  - package: [hello, tree]
"#,
    );
    let before = host.snapshot();
    let (code, out, err) = forge(cmd("check", flags(&host, "root", &spec)));
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    let after = host.snapshot();
    // The engine creates and removes its script files in /tmp, which touches /tmp's mtime; no
    // other change, and nothing left inside /tmp.
    let changes: Vec<String> = before
        .diff(&after)
        .into_iter()
        .filter(|c| !(c == "+ /tmp" || c.starts_with("~ /tmp (")))
        .collect();
    assert_eq!(
        changes,
        Vec::<String>::new(),
        "test-only mode changed the host"
    );
    assert!(std::fs::read_dir(host.root().join("tmp"))
        .unwrap()
        .next()
        .is_none());
    assert!(!host.installed("hello") && !host.installed("sl"));

    // After a reconcile the same check passes, and still changes nothing.
    let (code, out, err) = forge(cmd("reconcile", flags(&host, "root", &spec)));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let reconciled = after.diff(&host.snapshot());
    assert!(
        reconciled
            .iter()
            .any(|c| c.contains("/var/lib/dpkg/status")),
        "the snapshot sees what reconcile changed: {reconciled:?}"
    );
    let before = host.snapshot();
    let (code, out, err) = forge(cmd("check", flags(&host, "root", &spec)));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let changes: Vec<String> = before
        .diff(&host.snapshot())
        .into_iter()
        .filter(|c| !c.starts_with("~ /tmp ("))
        .collect();
    assert_eq!(changes, Vec::<String>::new());
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn non_root_user_reconciles_through_sudo() {
    let host = host_or_skip!("non_root_user_reconciles_through_sudo");
    host.use_repo();
    host.add_user("builder", true);
    let d = SpecDir::new();
    d.file("whoami", "#!/bin/sh\nid -un > /root/whoami\n");
    let spec = d.file(
        "spec.yaml",
        "validators:\n  - package: hello\n  - script: whoami\n",
    );
    let (code, out, err) = forge(cmd("reconcile", flags(&host, "builder", &spec)));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(host.installed("hello"));
    assert_eq!(host.read("/root/whoami").unwrap(), b"root\n");

    host.add_user("plain", false);
    let (code, _, err) = forge(cmd("check", flags(&host, "plain", &spec)));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("sudo -n"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn connection_problems_are_one_clear_line_and_exit_2() {
    let host = host_or_skip!("connection_problems_are_one_clear_line_and_exit_2");
    let d = SpecDir::new();
    let spec = d.file("spec.yaml", "validators:\n  - package: hello\n");

    // Unknown host key (empty known_hosts): refused, and --accept-new records it.
    let known = d.path().join("known_hosts");
    let mut args = flags(&host, "root", &spec);
    let i = args.iter().position(|a| a == "--known-hosts").unwrap();
    args[i + 1] = known.display().to_string();
    let (code, _, err) = forge(cmd("check", args.clone()));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("is not in") && err.contains("--accept-new"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    args.push("--accept-new".into());
    let (code, out, err) = forge(cmd("check", args));
    assert_eq!(code, 1, "hello is not installed: {out}{err}");
    assert!(std::fs::read_to_string(&known)
        .unwrap()
        .contains(&host.addr));

    // A valid key the host does not authorize.
    let stranger = d.path().join("stranger");
    assert!(std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .status()
        .unwrap()
        .success());
    let mut args = flags(&host, "root", &spec);
    let i = args.iter().position(|a| a == "--key").unwrap();
    args[i + 1] = stranger.display().to_string();
    let (code, _, err) = forge(cmd("check", args));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the server refused the key"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // Not a key at all.
    let mut args = flags(&host, "root", &spec);
    let i = args.iter().position(|a| a == "--key").unwrap();
    args[i + 1] = d.file("bogus", "not a key\n").display().to_string();
    let (code, _, err) = forge(cmd("check", args));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bogus: cannot read the private key"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // Unreachable: gives up at --connect-timeout.
    let mut args = flags(&host, "root", &spec);
    args[1] = format!("root@{}:2222", host.addr);
    let i = args.iter().position(|a| a == "--connect-timeout").unwrap();
    args[i + 1] = "2".into();
    let started = Instant::now();
    let (code, _, err) = forge(cmd("check", args));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("cannot reach") && err.contains("within 2 s"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn usage_spec_and_argument_errors_exit_2_before_connecting() {
    // No host needed: these must fail before any connection. The target does not exist, and a
    // long connect timeout proves nothing waited for it.
    let d = SpecDir::new();
    let spec = d.file(
        "spec.yaml",
        "arguments:\n  java:\n    required: true\n    choices: [openjdk, oracle]\n\
         validators:\n  - package: hello\n",
    );
    let base = |spec: &Path| -> Vec<String> {
        [
            "check",
            "--ssh",
            "root@192.0.2.1",
            "--key",
            "/nonexistent/key",
            "--connect-timeout",
            "60",
            "--spec",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([spec.display().to_string()])
        .collect()
    };
    let started = Instant::now();

    let (code, _, err) = forge(base(&spec));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("argument `java` is required"), "{err}");

    let mut args = base(&spec);
    args.extend(["--arg".into(), "java=ibm".into()]);
    let (code, _, err) = forge(args);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("expected one of openjdk, oracle"), "{err}");

    let mut args = base(&spec);
    args.extend([
        "--arg".into(),
        "java=openjdk".into(),
        "--arg".into(),
        "jvm=1".into(),
    ]);
    let (code, _, err) = forge(args);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown argument `jvm`"), "{err}");

    // A spec error names FILE:LINE:COL.
    let bad = d.file("bad.yaml", "validators:\n  - pakage: hello\n");
    let (code, _, err) = forge(base(&bad));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with(&format!("{}:2:5: error:", bad.display())),
        "{err}"
    );

    // Usage errors from clap.
    let mut args = base(&spec);
    args[2] = "no-user-here".into();
    let (code, _, err) = forge(args);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invalid SSH target"), "{err}");

    assert!(
        started.elapsed() < Duration::from_secs(20),
        "something waited for the network"
    );
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn interrupt_cancels_a_running_reconcile() {
    let host = host_or_skip!("interrupt_cancels_a_running_reconcile");
    host.add_user("builder", true);
    let d = SpecDir::new();
    d.file(
        "slow",
        "#!/bin/sh\necho $$ > /root/slow.pid\nexec sleep 60\n",
    );
    let spec = d.file("spec.yaml", "validators:\n  - script: slow\n");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_forge"))
        .arg("reconcile")
        .args(flags(&host, "builder", &spec))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the script runs on the host.
    let started = Instant::now();
    while host.read("/root/slow.pid").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the script never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let interrupted = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            interrupted.elapsed() < Duration::from_secs(10),
            "forge did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cancelled"));
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn corpus_spark_spec_in_test_only_mode() {
    let host = host_or_skip!("corpus_spark_spec_in_test_only_mode");
    host.use_repo(); // has dummy openjdk-8-jdk, ntp, hadoop-hdfs-* packages
    let (spec, scripts) = spark_spec();
    let roots = tempfile::tempdir().unwrap();
    stand_in_scripts(roots.path(), scripts);
    let mut args = flags(&host, "root", &spec);
    args.extend([
        "--resource-root".into(),
        roots.path().display().to_string(),
        // The spec has ubuntu and redhat branches; the host is Debian.
        "--distro".into(),
        "ubuntu".into(),
    ]);

    let before = host.snapshot();
    let (code, out, err) = forge(cmd("check", args.clone()));
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    // The first validator fails (fail-fast `all`): the ubuntu wget_cdh_repo stand-in.
    assert!(out.contains("ubuntu/wget_cdh_repo"), "{out}");
    assert!(out.contains(&format!("{}:", spec.display())), "{out}");
    let changes: Vec<String> = before
        .diff(&host.snapshot())
        .into_iter()
        .filter(|c| !(c == "+ /tmp" || c.starts_with("~ /tmp (")))
        .collect();
    assert_eq!(
        changes,
        Vec::<String>::new(),
        "test-only mode changed the host"
    );

    let (code, out, err) = forge(cmd("reconcile", args.clone()));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    for p in [
        "openjdk-8-jdk",
        "ntp",
        "hadoop-hdfs-namenode",
        "hadoop-hdfs-datanode",
    ] {
        assert!(host.installed(p), "{p}");
    }
    let (code, out, err) = forge(cmd("check", args));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn rsa_and_passphrase_keys_work_from_the_cli() {
    let host = host_or_skip!("rsa_and_passphrase_keys_work_from_the_cli");
    let d = SpecDir::new();
    let spec = d.file(
        "spec.yaml",
        "validators:\n  - script:\n      ok:\n        inline: 'true'\n",
    );
    let mut args = flags(&host, "root", &spec);
    let i = args.iter().position(|a| a == "--key").unwrap();
    args[i + 1] = Key::Rsa.path().display().to_string();
    let (code, out, err) = forge(cmd("check", args.clone()));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");

    args[i + 1] = Key::Ed25519Passphrase.path().display().to_string();
    let (code, _, err) = forge(cmd("check", args.clone()));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("FORGE_SSH_KEY_PASSPHRASE"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_forge"))
        .args(cmd("check", args))
        .env("FORGE_SSH_KEY_PASSPHRASE", hosts::KEY_PASSPHRASE)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
