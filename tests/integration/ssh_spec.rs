//! The validator engine over the real SSH remote, against real hosts (tests/hosts): every validator
//! type, `any`'s two passes, the argument map flowing between validators, shebangs. Effects are
//! read straight from the host's file tree, not through forge.

use crate::hosts;

use std::collections::BTreeMap;

use forge::remote::ssh::SshRemote;
use forge::spec::{self, Mode, RunError, RunOptions, RunReport, Spec};
use hosts::{Key, SpecDir, TestHost};
use tokio_util::sync::CancellationToken;

fn run_spec(
    host: &TestHost,
    spec: &Spec,
    args: &[(&str, &str)],
    mode: Mode,
    distro: Option<&str>,
) -> (Result<RunReport, RunError>, usize) {
    let args: BTreeMap<String, String> = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let opts = RunOptions {
        mode,
        distro_override: distro.map(str::to_string),
    };
    hosts::runtime().block_on(async {
        let cancel = CancellationToken::new();
        let remote = SshRemote::connect(&host.ssh_options("root", Key::Ed25519), &cancel)
            .await
            .expect("connect");
        let r = spec::run(spec, &remote, &args, &opts, &cancel).await;
        (r, remote.commands_run())
    })
}

fn text(host: &TestHost, path: &str) -> String {
    String::from_utf8(
        host.read(path)
            .unwrap_or_else(|| panic!("{path} missing on the host")),
    )
    .unwrap()
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn every_validator_type_runs_in_reconcile_mode() {
    let host = host_or_skip!("every_validator_type_runs_in_reconcile_mode");
    host.use_repo();
    let d = SpecDir::new();
    d.file(
        "scripts/record",
        "#!/bin/sh\nprintf '%s\\n' \"$what distro=$distro test_only=$test_only\" >> /root/record\n",
    );
    d.file("resources/helper.sh", "helper() { echo helped; }\n");
    d.file(
        "scripts/use_helper",
        "#!/bin/sh\n. /tmp/helper.sh\nhelper > /root/helper-out\n",
    );
    let spec = d.load(
        r#"
arguments:
  flavour:
    default: plain
    choices: [plain, fancy]
  what:
    default: unset
validators:
  - package: hello
  - copy_script: resources/helper.sh
  - script: scripts/use_helper
  - argument_set:
      argument_name: what
      value: from-argument-set
  - argument_case:
      argument_name: flavour
      cases:
        plain:
          - script:
              scripts/record:
                env_vars: [what]
        fancy:
          - script:
              never:
                inline: "touch /root/fancy"
  - os_case:
      - redhat:
          - script:
              rh:
                inline: "touch /root/wrong-case"
      - debian:
          - script:
              deb:
                inline: "touch /root/debian-case"
      - debian:
          - script:
              second-match:
                inline: "touch /root/second-match"
  - all:
      - script:
          a:
            inline: "echo a >> /root/all"
      - script:
          b:
            inline: "echo b >> /root/all"
  - any:
      - script:
          fails:
            inline: "exit 1"
      - script:
          works:
            inline: "touch /root/any-ok"
"#,
    );
    assert!(!host.installed("hello"));
    let (r, commands) = run_spec(&host, &spec, &[], Mode::Reconcile, None);
    let report = r.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        host.installed("hello"),
        "package installed from the local repo"
    );
    assert_eq!(
        host.read("/tmp/helper.sh").unwrap(),
        b"helper() { echo helped; }\n"
    );
    assert_eq!(text(&host, "/root/helper-out"), "helped\n");
    assert_eq!(
        text(&host, "/root/record"),
        "from-argument-set distro=debian test_only=0\n"
    );
    assert!(host.read("/root/fancy").is_none());
    assert!(host.read("/root/wrong-case").is_none());
    assert!(host.read("/root/debian-case").is_some());
    assert!(
        host.read("/root/second-match").is_none(),
        "os_case: first match only"
    );
    assert_eq!(text(&host, "/root/all"), "a\nb\n");
    assert!(host.read("/root/any-ok").is_some());
    assert_eq!(report.arguments["what"], "from-argument-set");
    assert_eq!(report.arguments["distro"], "debian");
    // The engine's count and the transport's agree: every remote call is one SSH command.
    assert_eq!(report.round_trips, commands);

    // The ubuntu id maps to the debian family; `fancy` takes the other argument_case branch.
    let (r, _) = run_spec(
        &host,
        &spec,
        &[("flavour", "fancy")],
        Mode::Reconcile,
        Some("ubuntu"),
    );
    r.unwrap_or_else(|e| panic!("{e}"));
    assert!(host.read("/root/fancy").is_some());
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn package_validator_is_one_command_per_check_and_install() {
    let host = host_or_skip!("package_validator_is_one_command_per_check_and_install");
    host.use_repo();
    let d = SpecDir::new();
    let spec = d.load("validators:\n  - package: [hello, tree, sl]\n");
    let (r, commands) = run_spec(&host, &spec, &[], Mode::Reconcile, Some("debian"));
    r.unwrap_or_else(|e| panic!("{e}"));
    // check, install, check again; the distro came from --distro.
    assert_eq!(commands, 3);
    for p in ["hello", "tree", "sl"] {
        assert!(host.installed(p), "{p}");
    }
    let (r, commands) = run_spec(&host, &spec, &[], Mode::TestOnly, Some("debian"));
    r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(commands, 1, "a satisfied package validator is one command");
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn any_reconciles_the_second_alternative_only_after_pass_one_fails() {
    let host = host_or_skip!("any_reconciles_the_second_alternative_only_after_pass_one_fails");
    let d = SpecDir::new();
    // Each alternative logs its name and mode. `first` can never succeed; `second` succeeds in
    // test-only mode only once it has been reconciled (its marker exists).
    d.file(
        "first",
        "#!/bin/sh\necho \"first test_only=$test_only\" >> /root/any.log\nexit 1\n",
    );
    d.file(
        "second",
        "#!/bin/sh\necho \"second test_only=$test_only\" >> /root/any.log\n\
         if [ \"$test_only\" = 1 ]; then test -e /root/second.done; else touch /root/second.done; fi\n",
    );
    let spec = d.load("validators:\n  - any:\n      - script: first\n      - script: second\n");

    let (r, _) = run_spec(&host, &spec, &[], Mode::Reconcile, None);
    r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        text(&host, "/root/any.log"),
        "first test_only=1\nsecond test_only=1\nfirst test_only=0\nsecond test_only=0\n",
        "pass 1 tries every alternative in test-only mode before pass 2 reconciles"
    );

    // Now satisfied: pass 1 stops at `second`, no reconcile pass.
    std::fs::remove_file(host.root().join("root/any.log")).unwrap();
    let (r, _) = run_spec(&host, &spec, &[], Mode::Reconcile, None);
    r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        text(&host, "/root/any.log"),
        "first test_only=1\nsecond test_only=1\n"
    );

    // In test-only mode a failing `any` never runs pass 2 and reports the alternatives.
    std::fs::remove_file(host.root().join("root/second.done")).unwrap();
    std::fs::remove_file(host.root().join("root/any.log")).unwrap();
    let (r, _) = run_spec(&host, &spec, &[], Mode::TestOnly, None);
    let Err(RunError::Validation { failures }) = r else {
        panic!("expected a validation failure, got {r:?}");
    };
    assert!(
        failures.iter().any(|f| f.validator == "any"),
        "{failures:?}"
    );
    assert_eq!(
        text(&host, "/root/any.log"),
        "first test_only=1\nsecond test_only=1\n"
    );
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn argument_set_and_output_flow_into_later_scripts() {
    let host = host_or_skip!("argument_set_and_output_flow_into_later_scripts");
    let d = SpecDir::new();
    d.file("produce", "#!/bin/sh\necho \"made on $(hostname)\"\n\n");
    d.file(
        "consume",
        "#!/bin/sh\nprintf '%s|%s|%s' \"$greeting\" \"$produced\" \"${hidden_from_me-unset}\" > /root/flow\n",
    );
    let spec = d.load(
        r#"
arguments:
  greeting:
    default: hello
  produced:
    default: nothing
  hidden_from_me:
    default: secret
validators:
  - argument_set:
      argument_name: greeting
      value: set by the spec
  - script:
      produce:
        output: produced
  - script:
      consume:
        env_vars: [greeting, produced]
"#,
    );
    let (r, _) = run_spec(&host, &spec, &[], Mode::Reconcile, None);
    let report = r.unwrap_or_else(|e| panic!("{e}"));
    // Trailing newlines of the output are stripped; variables not listed are not exported.
    let expected = format!("set by the spec|made on {}|unset", host.name);
    assert_eq!(text(&host, "/root/flow"), expected);
    assert_eq!(
        report.arguments["produced"],
        format!("made on {}", host.name)
    );
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn scripts_run_under_their_own_shebang_or_bash() {
    let host = host_or_skip!("scripts_run_under_their_own_shebang_or_bash");
    let d = SpecDir::new();
    // perl-base is in every Debian root; `$]` is perl's version variable.
    d.file(
        "perl",
        "#!/usr/bin/env perl\nopen(my $f, '>', '/root/perl') or die; print $f \"perl $]\\n\";\n",
    );
    // /bin/sh is dash on Debian: the interpreter is visible in /proc/$$/exe.
    d.file("dash", "#!/bin/sh\nreadlink /proc/$$/exe > /root/dash\n");
    // No shebang: runs under bash, so bash-only syntax works.
    d.file(
        "noshebang",
        "arr=(one two)\n[[ ${arr[1]} == two ]] && echo \"bash ${BASH_VERSINFO[0]}\" > /root/bash\n",
    );
    let spec = d.load("validators:\n  - script: perl\n  - script: dash\n  - script: noshebang\n");
    let (r, _) = run_spec(&host, &spec, &[], Mode::Reconcile, None);
    r.unwrap_or_else(|e| panic!("{e}"));
    assert!(text(&host, "/root/perl").starts_with("perl 5."));
    assert_eq!(text(&host, "/root/dash").trim(), "/usr/bin/dash");
    assert!(text(&host, "/root/bash").starts_with("bash 5"));
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn failed_script_reports_its_location_and_output() {
    let host = host_or_skip!("failed_script_reports_its_location_and_output");
    let d = SpecDir::new();
    d.file(
        "broken",
        "#!/bin/sh\necho 'something went wrong' >&2\nexit 42\n",
    );
    let spec = d.load("validators:\n  - script: broken\n");
    let (r, _) = run_spec(&host, &spec, &[], Mode::Reconcile, None);
    let Err(RunError::Validation { failures }) = r else {
        panic!("expected a validation failure, got {r:?}");
    };
    assert_eq!(failures.len(), 1, "{failures:?}");
    let f = &failures[0];
    assert_eq!(f.location, format!("{}:2:5", spec.path().display()));
    assert_eq!(f.validator, "script");
    assert!(f.message.contains("something went wrong"), "{}", f.message);
}
