//! Batched validators (`spec::run`) reach exactly what the one-command-per-call path
//! (`spec::run_unbatched`) reaches: the same verdict, failures (location, type, message), final
//! argument map, validator count and effects on the target, in fewer round trips.
//!
//! Both run against `LocalShell`, a real remote on this machine (commands through `/bin/sh -c`,
//! files really written, the real `dpkg-query`); a stand-in only where noted (`stub_dpkg`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use forge::remote::{CommandOutput, Remote, RemoteError};
use forge::spec::{self, Mode, RunError, RunOptions, RunReport, Spec};
use tokio_util::sync::CancellationToken;

/// A real remote on this machine. `path` prepends a directory to PATH (for `stub_dpkg`).
struct LocalShell {
    path: Option<PathBuf>,
}

#[async_trait]
impl Remote for LocalShell {
    fn describe(&self) -> String {
        "local shell".into()
    }
    async fn run(&self, cmd: &str) -> Result<CommandOutput, RemoteError> {
        let mut c = tokio::process::Command::new("/bin/sh");
        c.arg("-c").arg(cmd);
        if let Some(p) = &self.path {
            c.env(
                "PATH",
                format!("{}:{}", p.display(), std::env::var("PATH").unwrap()),
            );
        }
        let o = c.output().await.map_err(|e| RemoteError::Transport {
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

fn spec_in(dir: &Path, yaml: &str, scripts: &[(&str, &[u8])]) -> Spec {
    std::fs::create_dir_all(dir).unwrap();
    for (path, content) in scripts {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    }
    let path = dir.join("image.yaml");
    std::fs::write(&path, yaml).unwrap();
    spec::load(&path, &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn need_dpkg() {
    // Every Debian machine (CI included) has it; elsewhere these tests cannot mean anything.
    assert!(
        Path::new("/usr/bin/dpkg-query").exists(),
        "these tests need a Debian-family machine (dpkg-query)"
    );
}

type Run = Result<RunReport, RunError>;

async fn both(
    spec: &Spec,
    remote: &LocalShell,
    args: &[(&str, &str)],
    mode: Mode,
    between: impl Fn(),
) -> (Run, Run) {
    let args: BTreeMap<String, String> = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let opts = RunOptions {
        mode,
        distro_override: None,
    };
    let cancel = CancellationToken::new();
    let one = spec::run_unbatched(spec, remote, &args, &opts, &cancel).await;
    between();
    let batched = spec::run(spec, remote, &args, &opts, &cancel).await;
    (one, batched)
}

/// The two results agree in everything but round trips; returns (one-by-one, batched) trips.
fn assert_same(one: &Run, batched: &Run) -> (usize, usize) {
    match (one, batched) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.arguments, b.arguments, "argument maps differ");
            assert_eq!(
                a.validators_run, b.validators_run,
                "validator counts differ"
            );
            (a.round_trips, b.round_trips)
        }
        (Err(RunError::Validation { failures: a }), Err(RunError::Validation { failures: b })) => {
            assert_eq!(a, b, "failures differ");
            (0, 0)
        }
        (a, b) => panic!("results differ:\n one-by-one: {a:?}\n batched: {b:?}"),
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|_| "<absent>".into())
}

#[tokio::test]
async fn satisfied_tree_same_result_in_two_round_trips() {
    need_dpkg();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let yaml = format!(
        r#"arguments:
  flavour: {{default: plain}}
  dest: {{default: "{out}"}}
validators:
  - package: [bash, coreutils]
  - script:
      s/record:
        env_vars: [flavour, dest]
  - os_case:
      - redhat:
          - package: no-such-rpm
      - debian:
          - package: dpkg
          - argument_set: {{argument_name: flavour, value: "from set"}}
  - argument_case:
      argument_name: flavour
      cases:
        plain:
          - script: s/wrong
        "from set":
          - all:
              - script:
                  s/record:
                    env_vars: [flavour, dest]
              - package: bash
"#,
        out = out.display()
    );
    let record = b"#!/bin/sh\nprintf '%s|%s|%s\\n' \"$flavour\" \"$distro\" \"$test_only\" >> \"$dest/log\"\n";
    let spec = spec_in(
        dir.path(),
        &yaml,
        &[
            ("s/record", record),
            ("s/wrong", b"touch \"$dest/wrong\"\nexit 1\n"),
        ],
    );
    let remote = LocalShell { path: None };
    for mode in [Mode::TestOnly, Mode::Reconcile] {
        let log = out.join("log");
        let (one, batched) = both(&spec, &remote, &[], mode, || {
            let _ = std::fs::rename(&log, out.join("log.one"));
        })
        .await;
        let (a, b) = assert_same(&one, &batched);
        assert!(one.is_ok(), "{one:?}");
        assert_eq!((a, b), (6, 2), "{mode:?}: distro + one program");
        // Same effects on the target, in the same order, with the same environment.
        let flag = if mode == Mode::TestOnly { "1" } else { "0" };
        let want = format!("plain|debian|{flag}\nfrom set|debian|{flag}\n");
        assert_eq!(read(&out.join("log.one")), want);
        assert_eq!(read(&log), want);
        assert!(!out.join("wrong").exists());
        std::fs::remove_file(&log).unwrap();
    }
}

#[tokio::test]
async fn a_failure_stops_the_program_where_the_engine_stops() {
    need_dpkg();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let yaml = format!(
        "arguments:\n  dest: {{default: \"{}\"}}\nvalidators:\n  - script:\n      s/mark:\n        env_vars: [dest]\n  - package: [bash, forge-no-such-package]\n  - script:\n      s/after:\n        env_vars: [dest]\n",
        out.display()
    );
    let spec = spec_in(
        dir.path(),
        &yaml,
        &[
            ("s/mark", b"echo ran >> \"$dest/mark\"\n"),
            ("s/after", b"touch \"$dest/after\"\n"),
        ],
    );
    let remote = LocalShell { path: None };
    let (one, batched) = both(&spec, &remote, &[], Mode::TestOnly, || {}).await;
    assert_same(&one, &batched);
    let Err(RunError::Validation { failures }) = &batched else {
        panic!("{batched:?}")
    };
    assert_eq!(failures.len(), 1);
    assert!(
        failures[0].location.ends_with("image.yaml:7:5"),
        "{}",
        failures[0].location
    );
    assert!(
        failures[0]
            .message
            .contains("not installed: bash forge-no-such-package (exit status 1): package forge-no-such-package is not installed"),
        "{}",
        failures[0].message
    );
    assert_eq!(
        read(&out.join("mark")),
        "ran\nran\n",
        "the script before ran in both"
    );
    assert!(!out.join("after").exists(), "nothing after the failure ran");
}

#[tokio::test]
async fn reconcile_install_failure_and_script_failure_read_the_same() {
    need_dpkg();
    let dir = tempfile::tempdir().unwrap();
    // A stand-in apt-get (named so): the real one would install packages on this machine.
    let stub = dir.path().join("bin");
    std::fs::create_dir(&stub).unwrap();
    let apt = stub.join("apt-get");
    std::fs::write(
        &apt,
        "#!/bin/sh\necho \"E: Unable to locate package $3\" >&2\nexit 100\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&apt, std::fs::Permissions::from_mode(0o755)).unwrap();
    let yaml = "validators:\n  - package: bash\n  - package: forge-no-such-package\n";
    let spec = spec_in(&dir.path().join("a"), yaml, &[]);
    let remote = LocalShell {
        path: Some(stub.clone()),
    };
    let (one, batched) = both(&spec, &remote, &[], Mode::Reconcile, || {}).await;
    assert_same(&one, &batched);
    let Err(RunError::Validation { failures }) = &batched else {
        panic!("{batched:?}")
    };
    assert!(
        failures[0].message.contains(
            "installing forge-no-such-package failed (exit status 100): E: Unable to locate package forge-no-such-package"
        ),
        "{}",
        failures[0].message
    );

    let yaml = "validators:\n  - script:\n      fine:\n        inline: echo fine\n  - script:\n      bad:\n        inline: \"echo out; echo err >&2; exit 3\"\n";
    let spec = spec_in(&dir.path().join("b"), yaml, &[]);
    let (one, batched) = both(&spec, &remote, &[], Mode::Reconcile, || {}).await;
    assert_same(&one, &batched);
    let Err(RunError::Validation { failures }) = &batched else {
        panic!("{batched:?}")
    };
    assert!(
        failures[0].message.ends_with("failed (exit status 3): err"),
        "{}",
        failures[0].message
    );
}

#[tokio::test]
async fn hostile_values_and_binary_scripts_arrive_verbatim() {
    need_dpkg();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let pwned = out.join("pwned");
    let hostile = format!(
        "sp ace 'single' \"double\" $(touch {p}) `touch {p}` ; touch {p} \\ \n\tFORGE-R 0 0 x y\nFORGE_x",
        p = pwned.display()
    );
    let yaml = format!(
        "arguments:\n  v: {{default: x}}\n  dest: {{default: \"{}\"}}\nvalidators:\n  - script:\n      s/echo:\n        env_vars: [v, dest]\n  - script:\n      s/bin:\n        env_vars: [dest]\n",
        out.display()
    );
    // Non-UTF-8 bytes and a heredoc-looking line in the script itself.
    let mut bin =
        b"#!/bin/sh\n# \xff\xfe\x00 bytes\ncat <<'FORGE_EOF' > \"$dest/bin\"\nFORGE_x\nFORGE_EOF\n"
            .to_vec();
    bin.extend_from_slice(&[b'#', 0x80, b'\n']);
    let spec = spec_in(
        dir.path(),
        &yaml,
        &[
            ("s/echo", b"printf '%s' \"$v\" > \"$dest/v.$test_only\"\n"),
            ("s/bin", &bin),
        ],
    );
    let remote = LocalShell { path: None };
    let (one, batched) = both(&spec, &remote, &[("v", &hostile)], Mode::TestOnly, || {
        std::fs::rename(out.join("v.1"), out.join("v.one")).unwrap();
    })
    .await;
    let (a, b) = assert_same(&one, &batched);
    assert_eq!((a, b), (3, 2));
    assert_eq!(read(&out.join("v.one")), hostile);
    assert_eq!(read(&out.join("v.1")), hostile);
    assert_eq!(read(&out.join("bin")), "FORGE_x\n");
    assert!(!pwned.exists(), "a value was executed");
}

#[tokio::test]
async fn barriers_output_any_and_copy_script_keep_their_order() {
    need_dpkg();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let yaml = format!(
        r#"arguments:
  dest: {{default: "{out}"}}
  picked: {{default: none}}
validators:
  - package: bash
  - script:
      s/pick:
        output: picked
  - argument_case:
      argument_name: picked
      cases:
        second:
          - package: coreutils
          - script:
              s/log:
                env_vars: [dest, picked]
  - any:
      - package: forge-no-such-package
      - all:
          - package: bash
          - script:
              s/log:
                env_vars: [dest, picked]
  - copy_script: s/log
  - package: dpkg
  - script:
      s/log:
        env_vars: [dest, picked]
"#,
        out = out.display()
    );
    let spec = spec_in(
        dir.path(),
        &yaml,
        &[
            ("s/pick", b"echo second\n"),
            ("s/log", b"echo \"$picked\" >> \"$dest/log\"\n"),
        ],
    );
    let remote = LocalShell { path: None };
    let log = out.join("log");
    let (one, batched) = both(&spec, &remote, &[], Mode::TestOnly, || {
        std::fs::rename(&log, out.join("log.one")).unwrap();
    })
    .await;
    let (a, b) = assert_same(&one, &batched);
    assert!(b < a, "batched {b} vs {a}");
    assert_eq!(read(&out.join("log.one")), "second\nsecond\nsecond\n");
    assert_eq!(read(&log), "second\nsecond\nsecond\n");
    assert_eq!(batched.unwrap().arguments["picked"], "second");
}

/// The corpus CDH 5.13 spec in test-only mode on a satisfied Ubuntu target: 22 round trips one by
/// one, 2 batched. "Satisfied" needs every CDH package installed, so `dpkg-query` is a stand-in
/// (named so) that reports every package installed; the scripts and the program run for real.
#[tokio::test]
async fn corpus_cdh_in_two_round_trips() {
    need_dpkg();
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
            std::fs::write(f, "[ \"$test_only\" = 1 ] || exit 1\n").unwrap();
        }
    }
    let spec = spec::load(&path, &[root.path().to_path_buf()]).unwrap();
    let stub = root.path().join("bin");
    std::fs::create_dir(&stub).unwrap();
    let dq = stub.join("dpkg-query");
    std::fs::write(&dq, "#!/bin/sh\nprintf 'install ok installed|1.0'\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dq, std::fs::Permissions::from_mode(0o755)).unwrap();
    let remote = LocalShell { path: Some(stub) };
    let opts = RunOptions {
        mode: Mode::TestOnly,
        distro_override: Some("ubuntu".into()),
    };
    let cancel = CancellationToken::new();
    let none = BTreeMap::new();
    let one = spec::run_unbatched(&spec, &remote, &none, &opts, &cancel).await;
    let batched = spec::run(&spec, &remote, &none, &opts, &cancel).await;
    let (a, b) = assert_same(&one, &batched);
    // The distro comes from the override: one by one 15 package checks + 6 scripts.
    assert_eq!((a, b), (21, 1), "round trips one-by-one vs batched");
    assert_eq!(batched.unwrap().validators_run, 27);
}
