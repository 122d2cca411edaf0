//! The kill matrix: for every step of `forge build`, SIGKILL forge while that step runs (after
//! its create call where it has one: the journal's `created` record is the trigger), count
//! what the run left in the test cloud, run `forge cleanup --run ID --yes`, and assert that
//! nothing of the run remains (servers, keypairs, images). Prints the matrix.
//!
//! Also: a dry run deletes nothing; `--all-stale` skips a run that is still alive; without a
//! journal the sweep finds the resources by name and `forge_run_id`; a run that finished ok
//! keeps its image.
//!
//! Real parts: the test cloud (Nova, Glance, Keystone), netns sshd hosts, the `forge` binary.
//! The fake virt driver has no cloud-init, so a CLOUD-INIT STAND-IN (hand-written, named as
//! such) authorizes a temporary keypair's public key on the test host, as in `build_e2e.rs`.

use crate::build;
use crate::cloud;
use crate::fixture::Fixture;
use crate::hosts;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use build::{forge_cleanup, journal_dir, leftovers, run_id, Knobs};
use forge::journal::{self, Record};

/// Where the SIGKILL lands.
#[derive(Clone, Copy)]
enum Trigger {
    /// As soon as forge announces the step (`==> step`): for steps that create nothing.
    Announced,
    /// Once the journal holds the step's `created` record of this kind.
    Created(&'static str),
}

/// How a row changes the template.
type Change = fn(&mut Knobs);

fn rows() -> Vec<(&'static str, Trigger, Change)> {
    use Trigger::*;
    vec![
        ("source image", Announced, |_| {}),
        ("flavor", Announced, |_| {}),
        ("keypair", Created("keypair"), |_| {}),
        ("boot server", Created("server"), |_| {}),
        ("connect", Announced, |k| {
            // Nothing listens there: connect retries until it is killed.
            k.ssh_host = "127.0.0.1".into();
            k.ssh_port = 1;
        }),
        ("provision", Announced, |k| k.script_sleep = 5),
        ("stop server", Announced, |_| {}),
        ("snapshot", Created("image"), |_| {}),
        ("publish", Announced, |_| {}),
    ]
}

/// A started build being watched.
struct Watched {
    child: Child,
    lines: mpsc::Receiver<String>,
    text: String,
    run: Option<String>,
    dir: PathBuf,
}

impl Watched {
    fn start(template: &Path) -> Watched {
        let mut child = build::spawn_forge_build(template);
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Watched {
            child,
            lines: rx,
            text: String::new(),
            run: None,
            dir: template.parent().unwrap().to_path_buf(),
        }
    }

    fn journal(&self) -> Option<PathBuf> {
        self.run
            .as_ref()
            .map(|r| journal_dir(&self.dir).join(format!("{r}.jsonl")))
    }

    fn records(&self) -> Vec<Record> {
        self.journal()
            .and_then(|p| journal::read(&p).ok())
            .unwrap_or_default()
    }

    /// Read output until `step` is announced and `trigger` holds, running the cloud-init
    /// stand-in on the way; true when it got there before the build ended.
    fn wait_for(&mut self, step: &str, trigger: Trigger, stand_in: &mut dyn FnMut(&str)) -> bool {
        let announce = format!("==> {step}");
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut announced = false;
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(5)) {
                Ok(line) => {
                    if self.run.is_none() {
                        self.run = run_id(&line);
                    }
                    if let Some(name) = line.trim_start().strip_prefix("temporary keypair: ") {
                        stand_in(name);
                    }
                    announced |= line == announce;
                    self.text.push_str(&line);
                    self.text.push('\n');
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return false,
            }
            let ready = announced
                && match trigger {
                    Trigger::Announced => true,
                    Trigger::Created(kind) => self.records().iter().any(|r| {
                        matches!(r, Record::Created { step: s, kind: k, .. } if s == step && k.as_str() == kind)
                    }),
                };
            if ready {
                return true;
            }
        }
        false
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.text.push_str(&line);
            self.text.push('\n');
        }
    }
}

/// The last journal record as a short text, for the matrix.
fn last_record(records: &[Record]) -> String {
    match records.last() {
        Some(Record::Intent { kind, .. }) => format!("intent {kind}"),
        Some(Record::Created { kind, .. }) => format!("created {kind}"),
        Some(Record::Deleted { kind, .. }) => format!("deleted {kind}"),
        Some(Record::Finished { ok, .. }) => format!("finished ok={ok}"),
        Some(Record::Cloud { .. }) => "cloud".into(),
        Some(Record::Cleaned { .. }) => "cleaned".into(),
        None => "(none)".into(),
    }
}

/// The test host's sshd behind a port on 127.0.0.1 that refuses connections until the
/// temporary keypair is authorized. forge's connect step retries a refused connection, so the
/// build waits for the CLOUD-INIT STAND-IN instead of racing it (a build that connects first
/// is refused the key and fails). Plain TCP relay; threads stop when the gate is dropped.
struct Gate {
    port: u16,
    target: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Gate {
    fn new(host: &hosts::TestHost) -> Gate {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        Gate {
            port,
            target: format!("{}:22", host.addr),
            stop: Arc::default(),
        }
    }

    /// Start accepting on the port and relaying to the host's sshd.
    fn open(&self) {
        use std::sync::atomic::Ordering;
        let listener =
            std::net::TcpListener::bind(("127.0.0.1", self.port)).expect("bind the gate port");
        listener.set_nonblocking(true).unwrap();
        let (target, stop) = (self.target.clone(), self.stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let Ok(server) = std::net::TcpStream::connect(&target) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

struct Row {
    step: &'static str,
    at_kill: String,
    before: String,
    after: usize,
    /// Wall time of `forge cleanup --yes`.
    seconds: f64,
}

#[test]
#[ignore = "needs the test cloud and the SSH test hosts: tests/cloud/up.sh, tests/hosts/setup.sh"]
fn sigkill_in_every_step_then_cleanup_leaves_nothing() {
    let f = Fixture::new("kill").repo().base_image(7).start();
    let (rt, host, session, images, tag) = (&f.rt, f.host(), &f.session, &f.images, &f.tag);

    let mut matrix = Vec::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for (step, trigger, change) in rows() {
            let dir = tempfile::tempdir().unwrap();
            // A temporary keypair in every row: cleanup must find keypairs too.
            let gate = Gate::new(host);
            let mut knobs = Knobs::good(host, tag, "unused");
            knobs.keypair = None;
            knobs.ssh_host = "127.0.0.1".into();
            knobs.ssh_port = gate.port;
            change(&mut knobs);
            let template = knobs.write(dir.path());
            let mut w = Watched::start(&template);
            let reached = w.wait_for(step, trigger, &mut |name| {
                build::authorize_from_nova(rt, session, host, name);
                gate.open();
            });
            w.kill();
            assert!(reached, "{step}: the build never got there:\n{}", w.text);
            let id = w.run.clone().expect("run id");
            let records = w.records();
            let finished_ok = records
                .iter()
                .any(|r| matches!(r, Record::Finished { ok: true, .. }));
            let before = rt.block_on(leftovers(session, &id));
            if step != "source image" && step != "flavor" {
                assert!(
                    before.count() > 0,
                    "{step}: killed after a create, yet nothing to clean: the kill missed\n{}",
                    w.text
                );
            }
            let jdir = journal_dir(dir.path());
            let started = Instant::now();
            let (code, out, err) = forge_cleanup(&jdir, &["--run", &id, "--yes"]);
            let seconds = started.elapsed().as_secs_f64();
            assert_eq!(code, 0, "{step}: cleanup failed:\n{out}{err}");
            let after = rt.block_on(leftovers(session, &id));
            let left = if finished_ok {
                // The kill landed after the build's last record: its image is its product,
                // and cleanup must have kept it.
                assert_eq!(after.images.len(), 1, "{step}: {out}{err}");
                assert!(out.contains("kept image"), "{step}: {out}");
                rt.block_on(async {
                    for i in &after.images {
                        let _ = images.delete(i).await;
                    }
                });
                after.servers.len() + after.keypairs.len()
            } else {
                after.count()
            };
            matrix.push(Row {
                step,
                at_kill: if finished_ok {
                    "finished before the kill".into()
                } else {
                    last_record(&records)
                },
                before: format!(
                    "{} ({}s {}k {}i)",
                    before.count(),
                    before.servers.len(),
                    before.keypairs.len(),
                    before.images.len()
                ),
                after: left,
                seconds,
            });
            assert_eq!(left, 0, "{step}: left {after:?}\n{out}{err}\n{}", w.text);
            // A second cleanup has nothing to do and makes no change.
            let (code2, out2, err2) = forge_cleanup(&jdir, &["--run", &id, "--yes"]);
            assert_eq!(code2, 0, "{out2}{err2}");
            assert!(err2.contains("already cleaned"), "{step}: {out2}{err2}");
        }
    }));
    eprintln!("\nkill matrix (SIGKILL during step -> leaked before cleanup -> after `forge cleanup --run ID --yes`):");
    eprintln!(
        "{:<13} {:<26} {:<24} {:<6} cleanup",
        "step", "journal at kill", "before (server/key/img)", "after"
    );
    for r in &matrix {
        eprintln!(
            "{:<13} {:<26} {:<24} {:<6} {:.2}s",
            r.step, r.at_kill, r.before, r.after, r.seconds
        );
    }
    rt.block_on(cloud::delete_tagged(images, tag));
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

/// Start a build with a temporary keypair and SIGKILL it once `step` created `kind`.
fn killed_build(
    host: &hosts::TestHost,
    tag: &str,
    dir: &Path,
    step: &str,
    kind: &'static str,
) -> String {
    let mut knobs = Knobs::good(host, tag, "unused");
    knobs.keypair = None;
    let template = knobs.write(dir);
    let mut w = Watched::start(&template);
    let reached = w.wait_for(step, Trigger::Created(kind), &mut |_| {});
    w.kill();
    assert!(reached, "the build never reached {step}:\n{}", w.text);
    w.run.clone().expect("run id")
}

/// Without `--yes` nothing is deleted and the journal is not written; each resource is listed
/// on one line. A login to another project than the journal's is refused. Then `--yes`
/// deletes them.
#[test]
#[ignore = "needs the test cloud and the SSH test hosts: tests/cloud/up.sh, tests/hosts/setup.sh"]
fn a_dry_run_lists_and_deletes_nothing() {
    let f = Fixture::new("kill-dry").host().base_image(8).start();
    let (rt, host, session, images, tag) = (&f.rt, f.host(), &f.session, &f.images, &f.tag);
    let dir = tempfile::tempdir().unwrap();
    let id = killed_build(host, tag, dir.path(), "boot server", "server");
    let jdir = journal_dir(dir.path());
    let journal_file = jdir.join(format!("{id}.jsonl"));
    let journal_before = std::fs::read_to_string(&journal_file).unwrap();
    let before = rt.block_on(leftovers(session, &id));

    // The journal names the admin project: a login to another project is refused.
    let (code_other, out_other, err_other) =
        forge_cleanup(&jdir, &["--run", &id, "--cloud", cloud::DEMO, "--yes"]);
    let (code, out, err) = forge_cleanup(&jdir, &["--run", &id]);
    let after_dry = rt.block_on(leftovers(session, &id));
    let journal_after_dry = std::fs::read_to_string(&journal_file).unwrap();
    let (code_yes, out_yes, err_yes) = forge_cleanup(&jdir, &["--run", &id, "--yes"]);
    let after = rt.block_on(leftovers(session, &id));
    rt.block_on(cloud::delete_tagged(images, tag));

    assert_eq!(code_other, 1, "{out_other}{err_other}");
    assert!(
        err_other.contains("its journal says it ran on") && out_other.is_empty(),
        "{out_other}{err_other}"
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(before.servers.len(), 1, "{before:?}");
    assert_eq!(before.keypairs.len(), 1, "{before:?}");
    assert!(
        out.contains(&format!(
            "would delete server forge-{id} ({})",
            before.servers[0]
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("would delete keypair forge-{id}-key")),
        "{out}"
    );
    assert_eq!(out.lines().count(), 2, "one line per resource:\n{out}");
    assert!(err.contains("add --yes"), "{err}");
    assert_eq!(
        after_dry.servers, before.servers,
        "dry run deleted a server"
    );
    assert_eq!(
        after_dry.keypairs, before.keypairs,
        "dry run deleted a keypair"
    );
    assert_eq!(
        journal_after_dry, journal_before,
        "dry run wrote to the journal"
    );
    assert_eq!(code_yes, 0, "{out_yes}{err_yes}");
    assert!(
        out_yes.contains(&format!("deleted server forge-{id}")),
        "{out_yes}"
    );
    assert_eq!(after.count(), 0, "{after:?}\n{out_yes}{err_yes}");
}

/// `--all-stale` cleans a killed run and skips, untouched, a build that is still running in
/// the same journal directory.
#[test]
#[ignore = "needs the test cloud and the SSH test hosts: tests/cloud/up.sh, tests/hosts/setup.sh"]
fn all_stale_skips_a_live_run() {
    let f = Fixture::new("kill-stale")
        .repo()
        .keypair()
        .base_image(9)
        .start();
    let (rt, host, session, images, tag) = (&f.rt, f.host(), &f.session, &f.images, &f.tag);
    let compute = &f.compute;
    let keypair = f.keypair();
    // One state directory for both builds: their journals sit side by side.
    let dir = tempfile::tempdir().unwrap();
    let dead_dir = dir.path().join("dead");
    let live_dir = dir.path().join("live");
    std::fs::create_dir_all(&dead_dir).unwrap();
    std::fs::create_dir_all(&live_dir).unwrap();
    let dead = killed_build(host, tag, &dead_dir, "boot server", "server");

    let mut knobs = Knobs::good(host, tag, keypair);
    knobs.script_sleep = 30;
    let template = knobs.write(&live_dir);
    let mut live = Watched::start(&template);
    let reached = live.wait_for("provision", Trigger::Announced, &mut |_| {});
    let live_id = live.run.clone();
    // Move the dead run's journal beside the live one's.
    let jdir = journal_dir(&live_dir);
    std::fs::rename(
        journal_dir(&dead_dir).join(format!("{dead}.jsonl")),
        jdir.join(format!("{dead}.jsonl")),
    )
    .unwrap();
    let live_before = live_id
        .as_ref()
        .map(|id| rt.block_on(leftovers(session, id)));
    let (code, out, err) = forge_cleanup(&jdir, &["--all-stale", "--yes"]);
    let live_after = live_id
        .as_ref()
        .map(|id| rt.block_on(leftovers(session, id)));
    let dead_after = rt.block_on(leftovers(session, &dead));
    // End the live build; its own cleanup runs.
    let _ = std::process::Command::new("kill")
        .args(["-INT", &live.child.id().to_string()])
        .status();
    let status = live.child.wait().unwrap();
    let live_end = live_id
        .as_ref()
        .map(|id| rt.block_on(leftovers(session, id)));
    rt.block_on(async {
        let _ = compute.delete_keypair(keypair).await;
        cloud::delete_tagged(images, tag).await;
    });

    assert!(
        reached,
        "the live build never reached provision:\n{}",
        live.text
    );
    let live_id = live_id.unwrap();
    let (live_before, live_after) = (live_before.unwrap(), live_after.unwrap());
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains(&format!("skipped run {live_id}: still running")),
        "{err}"
    );
    assert!(
        out.contains(&format!("deleted server forge-{dead}")),
        "{out}"
    );
    assert!(!out.contains(&live_id), "the live run was touched:\n{out}");
    assert_eq!(dead_after.count(), 0, "{dead_after:?}");
    assert_eq!(live_before.servers.len(), 1, "{live_before:?}");
    assert_eq!(
        live_after.servers, live_before.servers,
        "live server deleted"
    );
    assert_eq!(status.code(), Some(130));
    assert_eq!(live_end.unwrap().count(), 0);
}

/// With no journal (another machine), `--run ID` finds the server by name, the keypair by
/// name and the unfinished snapshot by its `forge_run_id` property, and deletes them.
#[test]
#[ignore = "needs the test cloud and the SSH test hosts: tests/cloud/up.sh, tests/hosts/setup.sh"]
fn cleanup_without_a_journal_sweeps_by_name_and_property() {
    let f = Fixture::new("kill-sweep").repo().base_image(10).start();
    let (rt, host, session, images, tag) = (&f.rt, f.host(), &f.session, &f.images, &f.tag);
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::new(host);
    let mut knobs = Knobs::good(host, tag, "unused");
    knobs.keypair = None;
    knobs.ssh_host = "127.0.0.1".into();
    knobs.ssh_port = gate.port;
    let template = knobs.write(dir.path());
    let mut w = Watched::start(&template);
    let reached = w.wait_for("snapshot", Trigger::Created("image"), &mut |name| {
        build::authorize_from_nova(rt, session, host, name);
        gate.open();
    });
    w.kill();
    assert!(reached, "the build never reached snapshot:\n{}", w.text);
    let id = w.run.clone().unwrap();
    std::fs::remove_dir_all(journal_dir(dir.path())).unwrap();
    let before = rt.block_on(leftovers(session, &id));
    let empty = tempfile::tempdir().unwrap();
    let (code, out, err) = forge_cleanup(
        empty.path(),
        &["--run", &id, "--cloud", cloud::ADMIN, "--yes"],
    );
    let after = rt.block_on(leftovers(session, &id));
    rt.block_on(cloud::delete_tagged(images, tag));
    assert_eq!(
        (
            before.servers.len(),
            before.keypairs.len(),
            before.images.len()
        ),
        (1, 1, 1),
        "{before:?}"
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains(&format!("no journal of run {id}")), "{err}");
    assert!(out.contains(&format!("deleted image {tag}-built")), "{out}");
    assert_eq!(after.count(), 0, "{after:?}\n{out}{err}");
}

/// A build that finished ok: cleanup keeps its image, from the journal and, without one, by the
/// publish step's `forge_build` property.
#[test]
#[ignore = "needs the test cloud and the SSH test hosts: tests/cloud/up.sh, tests/hosts/setup.sh"]
fn a_finished_build_keeps_its_image() {
    let f = Fixture::new("kill-ok")
        .repo()
        .keypair()
        .base_image(11)
        .start();
    let (rt, host, session, images, tag) = (&f.rt, f.host(), &f.session, &f.images, &f.tag);
    let compute = &f.compute;
    let keypair = f.keypair();
    let dir = tempfile::tempdir().unwrap();
    let template = Knobs::good(host, tag, keypair).write(dir.path());
    let (code, stdout, stderr) = build::forge_build(&template, &[]);
    let id = run_id(&stderr).expect("run id");
    let jdir = journal_dir(dir.path());
    let (c1, o1, e1) = forge_cleanup(&jdir, &["--run", &id, "--yes"]);
    let after_journal = rt.block_on(leftovers(session, &id));
    std::fs::remove_dir_all(&jdir).unwrap();
    let (c2, o2, e2) = forge_cleanup(&jdir, &["--run", &id, "--cloud", cloud::ADMIN, "--yes"]);
    let after_sweep = rt.block_on(leftovers(session, &id));
    rt.block_on(async {
        let _ = compute.delete_keypair(keypair).await;
        for i in &after_sweep.images {
            let _ = images.delete(i).await;
        }
        cloud::delete_tagged(images, tag).await;
    });
    assert_eq!(code, 0, "{stderr}");
    let image = stdout.trim().to_string();
    assert_eq!(c1, 0, "{o1}{e1}");
    assert_eq!(after_journal.images, vec![image.clone()], "{o1}{e1}");
    assert_eq!(c2, 0, "{o2}{e2}");
    assert!(o2.contains("kept image"), "{o2}");
    assert_eq!(after_sweep.images, vec![image], "{o2}{e2}");
}

/// Usage errors exit 2 with a message, before any network access.
#[test]
fn usage_errors_exit_2() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_forge"))
            .arg("cleanup")
            .args(args)
            .env_remove("OS_CLOUD")
            .env_remove("OS_AUTH_URL")
            .output()
            .expect("run forge cleanup");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--run") && err.contains("--all-stale"),
        "{err}"
    );
    let (code, err) = run(&["--run", "x", "--all-stale"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(&["--run", "x$(touch /tmp/pwned)"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("invalid run id 'x$(touch /tmp/pwned)'"),
        "{err}"
    );
}
