//! Benchmark: `forge check` of a real corpus spec (Sahara's Spark plugin spec) in test-only mode
//! against a real SSH test host (tests/hosts) that already satisfies it. Prints the SSH round
//! trips per check and the median wall time, with and without connection setup.
//!
//! Run: `sudo tests/hosts/setup.sh` once, then `cargo bench --bench ssh_check`.
//! Set FORGE_BENCH_RUNS to change the number of runs (default 15).

#[path = "../tests/hosts/mod.rs"]
mod hosts;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use forge::remote::ssh::SshRemote;
use forge::spec::{self, Mode, RunOptions};
use hosts::{spark_spec, stand_in_scripts, Key, TestHost};
use tokio_util::sync::CancellationToken;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; there is nothing to filter.
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

        let mut total = Vec::new();
        let mut check_only = Vec::new();
        let mut round_trips = 0;
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
            remote.close().await;
            total.push(started.elapsed());
            round_trips = report.round_trips;
            validators = report.validators_run;
        }
        println!(
            "ssh_check: {} (test-only, satisfied host, --distro ubuntu), {runs} runs",
            spec_path.file_name().unwrap_or_default().to_string_lossy()
        );
        println!("  validators run per check:   {validators}");
        println!("  SSH round trips per check:  {round_trips} (engine), {commands} (SSH commands)");
        println!(
            "  median wall time, check:    {:.1} ms",
            median(check_only).as_secs_f64() * 1e3
        );
        println!(
            "  median wall time, connect + check + disconnect: {:.1} ms",
            median(total).as_secs_f64() * 1e3
        );
    });
}
