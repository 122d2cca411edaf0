//! The fault matrix: for every step of `forge build`, make it fail (an API error from the cloud,
//! an SSH failure, a failing validator, a timeout), and separately send SIGINT while it runs;
//! after each run, list the cloud's servers, keypairs and images of that run and assert that
//! nothing forge created remains and the source image is untouched. Prints the matrix.

use crate::build;
use crate::cloud;
use crate::fixture::Fixture;

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use build::{forge_build_command, leftovers, run_id, Knobs};
use reqwest::Method;

/// One cell: which step, what goes wrong, how the template (or environment) is changed.
struct Fault {
    step: &'static str,
    fault: &'static str,
    change: Change,
    env: &'static [(&'static str, &'static str)],
}

const HUGE_FLAVOR: &str = "forge-test-huge";

fn faults() -> Vec<Fault> {
    vec![
        Fault {
            step: "source image",
            fault: "API: no image matches the filter",
            change: |k| k.base_name = "no-such-image-anywhere".into(),
            env: &[],
        },
        Fault {
            step: "flavor",
            fault: "API: unknown flavor",
            change: |k| k.flavor = "no-such-flavor".into(),
            env: &[],
        },
        Fault {
            step: "keypair",
            fault: "local: temporary key cannot be written",
            change: |k| k.keypair = None,
            env: &[("TMPDIR", "/nonexistent/forge-test")],
        },
        Fault {
            step: "boot server",
            fault: "API: server goes to ERROR (no valid host)",
            change: |k| k.flavor = HUGE_FLAVOR.into(),
            env: &[],
        },
        Fault {
            step: "connect",
            fault: "SSH: connection refused until ssh_timeout",
            change: |k| {
                k.ssh_host = "127.0.0.1".into();
                k.ssh_port = 1;
                k.ssh_timeout = "2s".into();
            },
            env: &[],
        },
        Fault {
            step: "provision",
            fault: "failing validator",
            change: |k| k.failing_validator = true,
            env: &[],
        },
        Fault {
            step: "snapshot",
            fault: "timeout: image_timeout 1ms",
            change: |k| k.image_timeout = "1ms".into(),
            env: &[],
        },
        Fault {
            step: "publish",
            fault: "API: read-only property rejected",
            change: |k| k.extra_properties = "os_hash_value = \"forged\"".into(),
            env: &[],
        },
    ]
}

/// Steps interrupted with SIGINT, and how to slow the build so the signal lands in them.
/// How a cell changes the good template.
type Change = fn(&mut Knobs);

fn interrupts() -> Vec<(&'static str, Change)> {
    vec![
        ("source image", |_| {}),
        ("flavor", |_| {}),
        // A temporary keypair: the step makes an API call the signal can land in.
        ("keypair", |k| k.keypair = None),
        ("boot server", |_| {}),
        ("connect", |k| {
            // Nothing listens there: connect retries until it is interrupted.
            k.ssh_host = "127.0.0.1".into();
            k.ssh_port = 1;
        }),
        ("provision", |k| k.script_sleep = 5),
        ("stop server", |_| {}),
        ("snapshot", |_| {}),
        ("publish", |_| {}),
    ]
}

struct Row {
    step: String,
    fault: String,
    outcome: String,
    leaked: usize,
}

#[test]
#[ignore = "needs the test cloud and the SSH test hosts: tests/cloud/up.sh, tests/hosts/setup.sh"]
fn every_fault_and_interrupt_in_every_step_leaks_nothing() {
    let f = Fixture::new("faults").repo().keypair().start();
    let (rt, host, session, images, tag) = (&f.rt, f.host(), &f.session, &f.images, &f.tag);
    let compute = &f.compute;
    let keypair = f.keypair();
    let base = rt.block_on(async {
        ensure_huge_flavor(session).await;
        build::base_image(images, tag, 3).await
    });

    let mut rows = Vec::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for f in faults() {
            let dir = tempfile::tempdir().unwrap();
            let mut knobs = Knobs::good(host, tag, keypair);
            (f.change)(&mut knobs);
            let template = knobs.write(dir.path());
            let mut cmd = forge_build_command(&template, &[]);
            for (k, v) in f.env {
                cmd.env(k, v);
            }
            let out = cmd.output().expect("run forge build");
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            let id = run_id(&stderr).unwrap_or_else(|| panic!("no run id in:\n{stderr}"));
            let left = rt.block_on(leftovers(session, &id));
            assert_eq!(out.status.code(), Some(1), "{}: {stderr}", f.step);
            assert!(
                stderr.contains(&format!("step '{}' failed", f.step)),
                "{} should fail in its own step:\n{stderr}",
                f.step
            );
            rows.push(Row {
                step: f.step.into(),
                fault: f.fault.into(),
                outcome: "failed, cleaned up".into(),
                leaked: left.count(),
            });
            assert_eq!(left.count(), 0, "{}: leaked {left:?}\n{stderr}", f.step);
        }
        for (step, slow) in interrupts() {
            let dir = tempfile::tempdir().unwrap();
            let mut knobs = Knobs::good(host, tag, keypair);
            slow(&mut knobs);
            let template = knobs.write(dir.path());
            let (code, stderr) = interrupt_during(&template, step);
            let id = run_id(&stderr).unwrap_or_else(|| panic!("no run id in:\n{stderr}"));
            let left = rt.block_on(leftovers(session, &id));
            let outcome = match code {
                130 => {
                    let during = stderr
                        .lines()
                        .find_map(|l| l.split("cancelled during step '").nth(1))
                        .map(|s| s.trim_end_matches('\'').to_string())
                        .unwrap_or_else(|| "?".into());
                    format!("interrupted in '{during}', cleaned up")
                }
                // The last step can finish before the signal lands: a published image is
                // then the build's result, not a leak.
                0 if step == "publish" => "finished before the signal".into(),
                other => panic!("{step}: unexpected exit {other}:\n{stderr}"),
            };
            let leaked = if code == 0 {
                rt.block_on(async {
                    for i in &left.images {
                        let _ = images.delete(i).await;
                    }
                });
                left.servers.len() + left.keypairs.len()
            } else {
                left.count()
            };
            rows.push(Row {
                step: step.into(),
                fault: "SIGINT".into(),
                outcome,
                leaked,
            });
            assert_eq!(leaked, 0, "{step} + SIGINT: leaked {left:?}\n{stderr}");
        }
    }));

    eprintln!("\nfault matrix (step x fault -> leaked resources):");
    eprintln!("{:<14} {:<44} {:<44} leaked", "step", "fault", "outcome");
    for r in &rows {
        eprintln!(
            "{:<14} {:<44} {:<44} {}",
            r.step, r.fault, r.outcome, r.leaked
        );
    }
    rt.block_on(async {
        let base_after = images
            .get(&base.id)
            .await
            .expect("source image still there");
        assert_eq!(base_after.status, "active", "source image touched");
        assert_eq!(base_after.tags, base.tags, "source image touched");
        let _ = compute.delete_keypair(keypair).await;
        cloud::delete_tagged(images, tag).await;
    });
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

/// Start `forge build`, send SIGINT as soon as it announces `step`, wait for it to exit.
/// Returns (exit code, stderr).
fn interrupt_during(template: &std::path::Path, step: &str) -> (i32, String) {
    let mut child = build::spawn_forge_build(template);
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let trigger = format!("==> {step}");
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut sent = false;
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if !sent && line == trigger {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            sent = true;
        }
        text.push_str(&line);
        text.push('\n');
    }
    let status = child.wait().expect("wait for forge");
    let _ = reader.join();
    assert!(sent, "forge never announced step '{step}':\n{text}");
    (status.code().unwrap_or(-1), text)
}

/// A flavor no compute node can host, so a server booted with it goes to ERROR.
async fn ensure_huge_flavor(session: &std::sync::Arc<forge::openstack::Session>) {
    let url = session.url("compute", &["flavors"]).await.expect("url");
    let body = serde_json::json!({"flavor": {"name": HUGE_FLAVOR, "ram": 64 * 1024 * 1024,
        "vcpus": 1024, "disk": 1}});
    // A 409 means an earlier run created it already.
    let _ = session.send(Method::POST, url, |r| r.json(&body)).await;
}

/// A second Ctrl-C while the build is cleaning up is ignored with a message: cleanup finishes
/// and nothing leaks.
#[test]
#[ignore = "needs the test cloud and the SSH test hosts: tests/cloud/up.sh, tests/hosts/setup.sh"]
fn a_second_interrupt_during_cleanup_is_ignored() {
    let f = Fixture::new("sigint2")
        .repo()
        .keypair()
        .base_image(5)
        .start();
    let (rt, host, session, images, tag) = (&f.rt, f.host(), &f.session, &f.images, &f.tag);
    let compute = &f.compute;
    let keypair = f.keypair();
    let dir = tempfile::tempdir().unwrap();
    let mut knobs = Knobs::good(host, tag, keypair);
    knobs.script_sleep = 5;
    let template = knobs.write(dir.path());

    let mut child = build::spawn_forge_build(&template);
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let sigint = |pid: u32| {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
    };
    let mut text = String::new();
    let mut sent = 0;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(120)) {
        // First signal while provisioning; the second as soon as cleanup starts waiting for the
        // server to go away.
        if (sent == 0 && line == "==> provision")
            || (sent == 1 && line.contains("waiting for server") && line.contains("deleted"))
        {
            sigint(child.id());
            sent += 1;
        }
        text.push_str(&line);
        text.push('\n');
    }
    let status = child.wait().expect("wait");
    let _ = reader.join();
    let id = run_id(&text).expect("run id");
    let left = rt.block_on(leftovers(session, &id));
    rt.block_on(async {
        let _ = compute.delete_keypair(keypair).await;
        cloud::delete_tagged(images, tag).await;
    });
    assert_eq!(sent, 2, "{text}");
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(
        text.contains("SIGINT ignored: cleanup is in progress and must finish"),
        "{text}"
    );
    assert_eq!(left.count(), 0, "leaked {left:?}\n{text}");
}
