//! The SSH remote against real OpenSSH hosts (tests/hosts): authentication, host-key checking,
//! connect timeouts, cancellation, sudo, and the command/file/script primitives the engine uses.

use crate::hosts;

use std::time::{Duration, Instant};

use forge::remote::ssh::{HostKeyPolicy, SshError, SshRemote};
use forge::remote::{Remote, RemoteError};
use hosts::{Key, TestHost, KEY_PASSPHRASE};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

async fn connect(host: &TestHost, user: &str, key: Key) -> SshRemote {
    SshRemote::connect(&host.ssh_options(user, key), &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("connect {}: {e}", host.target(user)))
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn ed25519_key_runs_commands_as_root_with_output_and_status() {
    let host = host_or_skip!("ed25519_key_runs_commands_as_root_with_output_and_status");
    hosts::runtime().block_on(async {
        let r = connect(&host, "root", Key::Ed25519).await;
        assert!(!r.uses_sudo());
        let out = r.run("id -u").await.unwrap();
        assert_eq!((out.status, out.stdout_lossy().trim()), (0, "0"));
        let out = r.run("echo to-out; echo to-err >&2; exit 3").await.unwrap();
        assert_eq!(out.status, 3);
        assert_eq!(out.stdout, b"to-out\n");
        assert_eq!(out.stderr, b"to-err\n");
        // The command reaches /bin/sh exactly as given: quotes and $(...) are the shell's to read.
        let out = r
            .run(r#"printf '%s|' "a'b" '$(x)' "`echo tick`""#)
            .await
            .unwrap();
        assert_eq!(out.stdout_lossy(), "a'b|$(x)|tick|");
        assert_eq!(r.describe(), format!("root@{}:22", host.addr));
    });
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn rsa_key_authenticates() {
    let host = host_or_skip!("rsa_key_authenticates");
    hosts::runtime().block_on(async {
        let r = connect(&host, "root", Key::Rsa).await;
        let out = r.run("hostname").await.unwrap();
        assert_eq!(out.stdout_lossy().trim(), host.name);
    });
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn encrypted_key_needs_its_passphrase() {
    let host = host_or_skip!("encrypted_key_needs_its_passphrase");
    hosts::runtime().block_on(async {
        let cancel = CancellationToken::new();
        let mut opts = host.ssh_options("root", Key::Ed25519Passphrase);
        let err = SshRemote::connect(&opts, &cancel).await.unwrap_err();
        assert!(matches!(err, SshError::KeyEncrypted { .. }), "{err}");
        assert!(
            err.to_string().contains("FORGE_SSH_KEY_PASSPHRASE"),
            "{err}"
        );

        opts.passphrase = Some(SecretString::from("not it"));
        let err = SshRemote::connect(&opts, &cancel).await.unwrap_err();
        assert!(matches!(err, SshError::KeyPassphrase { .. }), "{err}");
        assert!(!err.to_string().contains("not it"), "{err}");

        opts.passphrase = Some(SecretString::from(KEY_PASSPHRASE));
        let r = SshRemote::connect(&opts, &cancel).await.unwrap();
        assert!(r.run("true").await.unwrap().success());
    });
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn wrong_key_is_rejected_with_a_clear_error_and_no_retry() {
    let host = host_or_skip!("wrong_key_is_rejected_with_a_clear_error_and_no_retry");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("stranger");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let secret = std::fs::read_to_string(&key).unwrap();
    hosts::runtime().block_on(async {
        let mut opts = host.ssh_options("root", Key::Ed25519);
        opts.key_file = key.clone();
        opts.connect_timeout = Duration::from_secs(20);
        let started = Instant::now();
        let err = SshRemote::connect(&opts, &CancellationToken::new())
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, SshError::AuthRejected { .. }), "{msg}");
        assert_eq!(
            msg,
            format!(
                "root@{}:22: the server refused the key {} for user root",
                host.addr,
                key.display()
            )
        );
        // A rejected key is a decision, not a network hiccup: no waiting out the timeout.
        assert!(started.elapsed() < Duration::from_secs(10));
        for line in secret.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!msg.contains(line));
            assert!(!format!("{err:?}").contains(line));
        }
    });
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn a_rejected_key_is_retried_when_asked_until_it_is_authorized() {
    // A freshly booted server runs sshd before cloud-init installs the key; the build's connect
    // step asks for exactly this retry.
    let host = host_or_skip!("a_rejected_key_is_retried_when_asked_until_it_is_authorized");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("late");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let public = std::fs::read(key.with_extension("pub")).unwrap();
    let before = host.read("/root/.ssh/authorized_keys").unwrap_or_default();
    hosts::runtime().block_on(async {
        let mut opts = host.ssh_options("root", Key::Ed25519);
        opts.key_file = key.clone();
        opts.connect_timeout = Duration::from_secs(30);
        opts.retry_rejected_key = true;
        let connecting =
            tokio::spawn(async move { SshRemote::connect(&opts, &CancellationToken::new()).await });
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!connecting.is_finished(), "gave up on a rejected key");
        let mut keys = before.clone();
        keys.extend_from_slice(&public);
        host.write("/root/.ssh/authorized_keys", &keys, 0o600);
        let remote = connecting
            .await
            .unwrap()
            .expect("connects once the key is authorized");
        assert!(remote.run("true").await.unwrap().success());
    });
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn unknown_host_key_is_refused_unless_accept_new_records_it() {
    let host = host_or_skip!("unknown_host_key_is_refused_unless_accept_new_records_it");
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known_hosts");
    hosts::runtime().block_on(async {
        let cancel = CancellationToken::new();
        let mut opts = host.ssh_options("root", Key::Ed25519);
        opts.known_hosts = known.clone(); // does not exist yet
        let err = SshRemote::connect(&opts, &cancel).await.unwrap_err();
        assert!(matches!(err, SshError::UnknownHostKey { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("SHA256:") && msg.contains("--accept-new"),
            "{msg}"
        );
        assert!(!known.exists(), "strict mode must not record anything");

        opts.host_key_policy = HostKeyPolicy::AcceptNew;
        let r = SshRemote::connect(&opts, &cancel).await.unwrap();
        assert!(r.run("true").await.unwrap().success());
        let recorded = std::fs::read_to_string(&known).unwrap();
        let real = std::fs::read_to_string(host.known_hosts()).unwrap();
        assert_eq!(recorded.trim(), real.trim(), "records what OpenSSH would");

        // Recorded: strict mode now accepts the host.
        opts.host_key_policy = HostKeyPolicy::Strict;
        SshRemote::connect(&opts, &cancel).await.unwrap();
    });
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn changed_host_key_is_refused_even_with_accept_new() {
    let host = host_or_skip!("changed_host_key_is_refused_even_with_accept_new");
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other");
    assert!(std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap()
        .success());
    let pubkey = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let known = dir.path().join("known_hosts");
    let fields: Vec<&str> = pubkey.split_whitespace().collect();
    std::fs::write(
        &known,
        format!("# comment\n{} {} {}\n", host.addr, fields[0], fields[1]),
    )
    .unwrap();
    hosts::runtime().block_on(async {
        let mut opts = host.ssh_options("root", Key::Ed25519);
        opts.known_hosts = known.clone();
        opts.host_key_policy = HostKeyPolicy::AcceptNew;
        let err = SshRemote::connect(&opts, &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(
            matches!(err, SshError::HostKeyChanged { line: 1, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("HOST KEY CHANGED"), "{err}");
    });
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn unreachable_host_gives_up_at_the_connect_timeout() {
    let host = host_or_skip!("unreachable_host_gives_up_at_the_connect_timeout");
    hosts::runtime().block_on(async {
        // Nothing listens on port 2222: every attempt is refused at once, so this exercises
        // the retry loop until the deadline.
        let mut opts = host.ssh_options("root", Key::Ed25519);
        opts.target.port = 2222;
        opts.connect_timeout = Duration::from_secs(2);
        let started = Instant::now();
        let err = SshRemote::connect(&opts, &CancellationToken::new())
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, SshError::Timeout { secs: 2, .. }), "{err}");
        assert!(err.to_string().contains("cannot reach"), "{err}");
        assert!(took >= Duration::from_secs(2), "gave up early: {took:?}");
        assert!(
            took < Duration::from_secs(5),
            "overran the timeout: {took:?}"
        );
        let remote: RemoteError = err.into();
        assert!(matches!(remote, RemoteError::Unreachable { .. }));

        // An address nobody answers (no ARP reply): TCP connect hangs, the deadline cuts it.
        let mut opts = host.ssh_options("root", Key::Ed25519);
        opts.target.host = format!("{}.3", host.addr.rsplit_once('.').unwrap().0);
        opts.connect_timeout = Duration::from_millis(1500);
        let started = Instant::now();
        let err = SshRemote::connect(&opts, &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(err, SshError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(4));
    });
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn connect_and_commands_stop_when_cancelled() {
    let host = host_or_skip!("connect_and_commands_stop_when_cancelled");
    hosts::runtime().block_on(async {
        // Cancelling a connect that would retry for a minute.
        let mut opts = host.ssh_options("root", Key::Ed25519);
        opts.target.port = 2222;
        opts.connect_timeout = Duration::from_secs(60);
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            c.cancel();
        });
        let started = Instant::now();
        let err = SshRemote::connect(&opts, &cancel).await.unwrap_err();
        assert!(matches!(err, SshError::Cancelled), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));

        // Cancelling a running command: it returns at once and the remote process is stopped.
        // As root, OpenSSH ignores the SIGTERM forge sends (sshd runs root sessions without
        // privilege separation and refuses signal requests there), so the command ends when
        // it next writes to the closed channel.
        assert_cancel_stops(
            &host,
            "root",
            "echo $$ > /tmp/root.pid; while :; do echo tick; sleep 0.1; done",
            "/tmp/root.pid",
        )
        .await;
        // Through sudo, the SIGTERM reaches even a command that prints nothing.
        host.add_user("builder", true);
        assert_cancel_stops(
            &host,
            "builder",
            "echo $$ > /tmp/sudo.pid; exec sleep 60",
            "/tmp/sudo.pid",
        )
        .await;
    });
}

async fn assert_cancel_stops(host: &TestHost, user: &str, cmd: &str, pidfile: &str) {
    let cancel = CancellationToken::new();
    let r = SshRemote::connect(&host.ssh_options(user, Key::Ed25519), &cancel)
        .await
        .unwrap();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        c.cancel();
    });
    let started = Instant::now();
    let err = r.run(cmd).await.unwrap_err();
    assert!(matches!(err, RemoteError::Cancelled), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(r.run("true").await, Err(RemoteError::Cancelled)));

    let probe = connect(host, "root", Key::Ed25519).await;
    let check = format!("kill -0 \"$(cat {pidfile})\" 2>/dev/null");
    for _ in 0..50 {
        if !probe.run(&check).await.unwrap().success() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{user}: the cancelled command is still running on the host");
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn non_root_user_runs_as_root_through_sudo() {
    let host = host_or_skip!("non_root_user_runs_as_root_through_sudo");
    host.add_user("builder", true);
    host.add_user("nosudo", false);
    hosts::runtime().block_on(async {
        let r = connect(&host, "builder", Key::Ed25519).await;
        assert!(r.uses_sudo());
        let out = r.run("id -un; echo \"$0\"").await.unwrap();
        assert_eq!(out.stdout_lossy(), "root\n/bin/sh\n");
        r.write_file("/etc/forge-sudo-test", b"x\n", 0o640)
            .await
            .unwrap();
        assert_eq!(host.read("/etc/forge-sudo-test").unwrap(), b"x\n");
        let out = r
            .run_script("/root/s.sh", b"#!/bin/sh\nid -u\n", "/root/s.sh")
            .await
            .unwrap();
        assert_eq!(out.stdout_lossy(), "0\n");

        let err = SshRemote::connect(
            &host.ssh_options("nosudo", Key::Ed25519),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, SshError::NoSudo { .. }), "{err}");
        assert!(err.to_string().contains("sudo -n"), "{err}");
    });
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn write_file_and_run_script_move_bytes_verbatim_in_one_round_trip() {
    let host = host_or_skip!("write_file_and_run_script_move_bytes_verbatim_in_one_round_trip");
    hosts::runtime().block_on(async {
        let r = connect(&host, "root", Key::Ed25519).await;
        let hostile: Vec<u8> = b"a b 'q' \"d\" $(touch /tmp/pwned) `x`\n\0\xff\nend"
            .iter()
            .copied()
            .chain((0..=255u8).cycle().take(300_000)) // larger than one SSH window/packet
            .collect();
        let path = "/tmp/it's $(a) file";
        let before = r.commands_run();
        r.write_file(path, &hostile, 0o640).await.unwrap();
        assert_eq!(r.commands_run() - before, 1);
        assert_eq!(host.read(path).unwrap(), hostile);
        let mode = host.sh_ok(&format!("stat -c %a {}", forge::remote::shell_quote(path)));
        assert_eq!(mode.trim(), "640");
        assert!(host.read("/tmp/pwned").is_none());

        let script = b"#!/bin/sh\nread line || echo stdin-is-empty\necho \"args:$1\"\nexit 7\n";
        let before = r.commands_run();
        let out = r
            .run_script("/tmp/my script", script, "'/tmp/my script' 'x y'")
            .await
            .unwrap();
        assert_eq!(
            r.commands_run() - before,
            1,
            "write+chmod+run is one round trip"
        );
        assert_eq!(out.status, 7);
        assert_eq!(out.stdout_lossy(), "stdin-is-empty\nargs:x y\n");
        assert_eq!(host.read("/tmp/my script").unwrap(), script);
        let mode = host.sh_ok("stat -c %a '/tmp/my script'");
        assert_eq!(mode.trim(), "700");

        // A failed write is a transport error naming the path.
        let err = r
            .write_file("/nonexistent-dir/f", b"x", 0o600)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("cannot write /nonexistent-dir/f"),
            "{err}"
        );
    });
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn distro_is_the_unquoted_os_release_id() {
    let host = host_or_skip!("distro_is_the_unquoted_os_release_id");
    hosts::runtime().block_on(async {
        let r = connect(&host, "root", Key::Ed25519).await;
        assert_eq!(r.distro().await.unwrap(), "debian");
        let before = r.commands_run();
        assert_eq!(r.distro().await.unwrap(), "debian");
        assert_eq!(
            r.commands_run(),
            before,
            "the distro is read once per session"
        );

        std::fs::remove_file(host.root().join("etc/os-release")).unwrap();
        host.write(
            "/etc/os-release",
            b"NAME=\"Rocky Linux\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n",
            0o644,
        );
        let r = connect(&host, "root", Key::Ed25519).await;
        assert_eq!(r.distro().await.unwrap(), "rocky");
    });
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn host_recorded_only_by_another_key_type_is_checked_on_that_type() {
    let host = host_or_skip!("host_recorded_only_by_another_key_type_is_checked_on_that_type");
    hosts::runtime().block_on(async {
        // Give the host a second host key (ECDSA) besides its ed25519 one.
        let r = connect(&host, "root", Key::Ed25519).await;
        let out = r
            .run(
                "ssh-keygen -q -t ecdsa -N '' -f /etc/ssh/ssh_host_ecdsa_key && \
                 echo 'HostKey /etc/ssh/ssh_host_ecdsa_key' >> /etc/ssh/sshd_config.d/test-host.conf && \
                 kill -HUP \"$(cat /run/sshd.pid)\"",
            )
            .await
            .unwrap();
        assert!(out.success(), "{}", out.stderr_lossy());
    });
    // A known_hosts that only knows the ECDSA key: forge must ask for that key type.
    let ecdsa = String::from_utf8(host.read("/etc/ssh/ssh_host_ecdsa_key.pub").unwrap()).unwrap();
    let fields: Vec<&str> = ecdsa.split_whitespace().collect();
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known_hosts");
    std::fs::write(
        &known,
        format!("{} {} {}\n", host.addr, fields[0], fields[1]),
    )
    .unwrap();
    hosts::runtime().block_on(async {
        let mut opts = host.ssh_options("root", Key::Ed25519);
        opts.known_hosts = known;
        let r = SshRemote::connect(&opts, &CancellationToken::new())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(r.run("true").await.unwrap().success());
    });
}

#[test]
#[ignore = "needs the SSH test hosts: tests/hosts/setup.sh"]
fn command_leaving_a_background_process_on_its_output_returns() {
    let host = host_or_skip!("command_leaving_a_background_process_on_its_output_returns");
    hosts::runtime().block_on(async {
        let r = connect(&host, "root", Key::Ed25519).await;
        // The background sleep keeps the channel's stdout open after the shell exits.
        let started = Instant::now();
        let out = r
            .run("echo $$ > /tmp/bg.pid; sleep 30 & echo started; exit 4")
            .await
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert_eq!((out.status, out.stdout_lossy().as_str()), (4, "started\n"));
        // The background process was left alone (the command wanted it).
        let out = r.run("pgrep -x sleep >/dev/null").await.unwrap();
        assert!(out.success(), "the background process was killed");
        // The session is still usable.
        assert!(r.run("true").await.unwrap().success());
    });
}
