//! Benchmark: `forge check` of a real corpus spec (Sahara's Spark plugin spec) in test-only mode
//! against a real SSH test host (tests/hosts) that already satisfies it. Prints the SSH round
//! trips per check and the median wall time, batched (forge's default: plannable stretches go
//! as one program) and one command per call, with and without connection setup; then replays
//! the one-by-one commands with the OpenSSH client over one multiplexed connection
//! (ControlMaster), side by side, as the peer to compare against (what a shell-script
//! provisioner does). Ends with `ssh_check: forge/openssh = R (goal <= G)`.
//!
//! Run: `sudo tests/hosts/setup.sh` once, then `cargo bench --bench ssh_check`.
//! Set FORGE_BENCH_RUNS to change the number of runs (default 15).

#[allow(dead_code)] // the benchmark uses a few of the test helpers
#[path = "../tests/hosts/mod.rs"]
mod hosts;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use forge::remote::ssh::SshRemote;
use forge::remote::{shell_quote, CommandOutput, Remote, RemoteError};
use forge::spec::{self, Mode, RunOptions};
use hosts::{spark_spec, stand_in_scripts, Key, TestHost};
use tokio_util::sync::CancellationToken;

/// One remote call, as the engine made it, for the OpenSSH replay.
enum Call {
    Run(String),
    Script {
        path: String,
        content: Vec<u8>,
        cmd: String,
    },
    Write {
        path: String,
        data: Vec<u8>,
        mode: u32,
    },
    Distro,
}

/// Passes every call to the SSH remote and records it.
struct Recorder<'a> {
    inner: &'a SshRemote,
    calls: Mutex<Vec<Call>>,
}

impl Recorder<'_> {
    fn record(&self, c: Call) {
        self.calls.lock().unwrap().push(c);
    }
}

#[async_trait]
impl Remote for Recorder<'_> {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn run(&self, cmd: &str) -> Result<CommandOutput, RemoteError> {
        self.record(Call::Run(cmd.into()));
        self.inner.run(cmd).await
    }
    async fn write_file(&self, path: &str, data: &[u8], mode: u32) -> Result<(), RemoteError> {
        self.record(Call::Write {
            path: path.into(),
            data: data.into(),
            mode,
        });
        self.inner.write_file(path, data, mode).await
    }
    async fn distro(&self) -> Result<String, RemoteError> {
        self.record(Call::Distro);
        self.inner.distro().await
    }
    async fn run_script(
        &self,
        path: &str,
        content: &[u8],
        cmd: &str,
    ) -> Result<CommandOutput, RemoteError> {
        self.record(Call::Script {
            path: path.into(),
            content: content.into(),
            cmd: cmd.into(),
        });
        self.inner.run_script(path, content, cmd).await
    }
}

/// The same calls through `ssh -S CONTROL` (the master connection already open), the way a
/// shell-script provisioner would make them: one `ssh` process per call.
fn replay_with_openssh(host: &TestHost, control: &str, calls: &[Call]) -> Duration {
    let started = Instant::now();
    for call in calls {
        let (cmd, stdin): (String, Option<&[u8]>) = match call {
            Call::Run(c) => (c.clone(), None),
            Call::Distro => ("cat /etc/os-release".into(), None),
            Call::Script { path, content, cmd } => {
                let p = shell_quote(path);
                (
                    format!(
                        "cat > {p} && chmod 700 {p} && exec /bin/sh -c {} </dev/null",
                        shell_quote(cmd)
                    ),
                    Some(content),
                )
            }
            Call::Write { path, data, mode } => {
                let p = shell_quote(path);
                (format!("cat > {p} && chmod {mode:o} {p}"), Some(data))
            }
        };
        let mut child = Command::new("ssh")
            .args(["-S", control, "-o", "BatchMode=yes"])
            .arg(host.target("root"))
            .arg(format!("/bin/sh -c {}", shell_quote(&cmd)))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh");
        let mut input = child.stdin.take().expect("stdin");
        if let Some(data) = stdin {
            input.write_all(data).expect("write stdin");
        }
        drop(input);
        child.wait().expect("ssh");
    }
    started.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; there is nothing to filter. Under `cargo test` it needs the
    // SSH test hosts like an #[ignore]d test: it runs only with --include-ignored.
    let asked = std::env::args()
        .any(|a| ["--bench", "--include-ignored", "--ignored"].contains(&a.as_str()));
    if !asked {
        eprintln!("ssh_check: not run (needs the SSH test hosts; `cargo bench --bench ssh_check`)");
        return;
    }
    let Some(host) = TestHost::start("bench ssh_check") else {
        return;
    };
    host.use_repo();
    let runs: usize = std::env::var("FORGE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15)
        .max(1);
    let (spec_path, scripts) = spark_spec();
    let roots = tempfile::tempdir().expect("tempdir");
    stand_in_scripts(roots.path(), scripts);
    let spec = spec::load(&spec_path, &[roots.path().to_path_buf()]).expect("load spec");
    let args = BTreeMap::new();
    // The host is Debian; the spec has ubuntu and redhat branches.
    let opts = |mode| RunOptions {
        mode,
        distro_override: Some("ubuntu".into()),
    };
    let ssh = host.ssh_options("root", Key::Ed25519);
    let rt = hosts::runtime();
    rt.block_on(async {
        let cancel = CancellationToken::new();
        // Satisfy the spec first (installs the dummy packages, runs the stand-ins).
        let remote = SshRemote::connect(&ssh, &cancel).await.expect("connect");
        spec::run(&spec, &remote, &args, &opts(Mode::Reconcile), &cancel)
            .await
            .expect("reconcile");
        remote.close().await;

        // Record one check's calls for the OpenSSH replay.
        let remote = SshRemote::connect(&ssh, &cancel).await.expect("connect");
        let recorder = Recorder {
            inner: &remote,
            calls: Mutex::new(Vec::new()),
        };
        spec::run_unbatched(&spec, &recorder, &args, &opts(Mode::TestOnly), &cancel)
            .await
            .expect("check");
        let calls = recorder.calls.into_inner().unwrap();
        // The floor under every call: one SSH command that does nothing.
        let mut noop = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            remote.run("true").await.expect("true");
            noop.push(t.elapsed());
        }
        remote.close().await;

        let mut total = Vec::new();
        let mut check_only = Vec::new();
        let mut unbatched = Vec::new();
        let mut round_trips = 0;
        let mut unbatched_trips = 0;
        let mut commands = 0;
        let mut validators = 0;
        for _ in 0..runs {
            let started = Instant::now();
            let remote = SshRemote::connect(&ssh, &cancel).await.expect("connect");
            let connected = Instant::now();
            let report = spec::run(&spec, &remote, &args, &opts(Mode::TestOnly), &cancel)
                .await
                .expect("the satisfied host passes the check");
            check_only.push(connected.elapsed());
            commands = remote.commands_run();
            let t = Instant::now();
            let one = spec::run_unbatched(&spec, &remote, &args, &opts(Mode::TestOnly), &cancel)
                .await
                .expect("the satisfied host passes the check one by one");
            unbatched.push(t.elapsed());
            unbatched_trips = one.round_trips;
            remote.close().await;
            total.push(started.elapsed() - t.elapsed());
            round_trips = report.round_trips;
            validators = report.validators_run;
        }
        // The peer: OpenSSH's client over a ControlMaster connection, same calls.
        let cm = tempfile::tempdir().expect("tempdir");
        let control = cm.path().join("cm").display().to_string();
        let known = host.known_hosts().display().to_string();
        let key = Key::Ed25519.path().display().to_string();
        let master = Command::new("ssh")
            .args(["-M", "-N", "-f", "-S", &control, "-i", &key, "-o", "IdentitiesOnly=yes"])
            .args(["-o", &format!("UserKnownHostsFile={known}"), "-o", "BatchMode=yes"])
            .arg(host.target("root"))
            .status()
            .expect("ssh master");
        assert!(master.success(), "OpenSSH master connection failed");
        let openssh: Vec<Duration> = (0..runs)
            .map(|_| replay_with_openssh(&host, &control, &calls))
            .collect();
        let _ = Command::new("ssh")
            .args(["-S", &control, "-O", "exit"])
            .arg(host.target("root"))
            .stderr(Stdio::null())
            .status();

        let forge_check = median(check_only);
        let peer = median(openssh);
        println!(
            "ssh_check: {} (test-only, satisfied host, --distro ubuntu), {runs} runs",
            spec_path.file_name().unwrap_or_default().to_string_lossy()
        );
        println!("  validators run per check:   {validators}");
        println!(
            "  SSH round trips per check:  {round_trips} batched (engine; {commands} SSH commands), \
             {unbatched_trips} one command per call"
        );
        println!(
            "  median wall time, check:    {:.1} ms batched, {:.1} ms one by one",
            forge_check.as_secs_f64() * 1e3,
            median(unbatched).as_secs_f64() * 1e3
        );
        println!(
            "  median wall time, connect + check + disconnect: {:.1} ms",
            median(total).as_secs_f64() * 1e3
        );
        println!(
            "  median wall time of one no-op SSH command (`true`): {:.1} ms",
            median(noop).as_secs_f64() * 1e3
        );
        println!(
            "  peer: the same {} one-by-one calls with OpenSSH `ssh -S` (multiplexed): {:.1} ms",
            calls.len(),
            peer.as_secs_f64() * 1e3,
        );
        println!("ssh_check round trips: {round_trips} (goal <= 5)");
        println!(
            "ssh_check: forge/openssh = {:.2} (goal <= 1.00)",
            forge_check.as_secs_f64() / peer.as_secs_f64()
        );
    });
}
