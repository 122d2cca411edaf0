//! The libguestfs remote against a real Debian image under real libguestfs (TCG): commands,
//! exit status, stdout/stderr, hostile values, file writes, distro, close. Needs
//! `tests/image/setup.sh`; two appliance launches.
#![cfg(feature = "guestfs")]

use crate::image;

use forge::remote::guestfs::{GuestfsError, GuestfsOptions, GuestfsRemote};
use forge::remote::{shell_quote, Remote, RemoteError};

fn options(image: &std::path::Path) -> GuestfsOptions {
    GuestfsOptions {
        image: image.to_path_buf(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the libguestfs test image: tests/image/setup.sh"]
async fn runs_commands_writes_files_and_closes() {
    let Some(base) = image::base_image() else {
        return;
    };
    image::set_guestfs_env_once();
    let disk = image::overlay(&base, "remote");
    let remote = GuestfsRemote::open(options(&disk.path))
        .await
        .expect("open the image");

    assert_eq!(remote.distro().await.unwrap(), "debian");
    assert_eq!(remote.root(), "/dev/sda1");

    // Exit status, stdout and stderr come back separately; failure is a status, not an error.
    let out = remote
        .run("echo out; echo err >&2; exit 3")
        .await
        .expect("a failing command is not a transport error");
    assert_eq!(
        (out.status, out.stdout_lossy(), out.stderr_lossy()),
        (3, "out\n".into(), "err\n".into())
    );
    assert_eq!(remote.run("false").await.unwrap().status, 1);
    assert_eq!(
        remote.run("no-such-command-forge").await.unwrap().status,
        127
    );

    // Root, with a usable environment.
    let out = remote
        .run("id -u; echo \"$HOME\"; command -v dpkg; umask")
        .await
        .unwrap();
    assert_eq!(out.stdout_lossy(), "0\n/root\n/usr/bin/dpkg\n0022\n");

    // A hostile value survives quoting byte for byte and executes nothing.
    let hostile =
        "it's $(touch /tmp/pwned1) `touch /tmp/pwned2` \"q\" ; touch /tmp/pwned3\nline2 \\";
    let out = remote
        .run(&format!("printf %s {}", shell_quote(hostile)))
        .await
        .unwrap();
    assert_eq!((out.status, out.stdout_lossy()), (0, hostile.to_string()));
    let out = remote
        .run("ls /tmp/pwned1 /tmp/pwned2 /tmp/pwned3")
        .await
        .unwrap();
    assert_ne!(out.status, 0, "a hostile value ran: {}", out.stdout_lossy());

    // Output is bytes, not text.
    let out = remote.run(r"printf '\377\000\001'").await.unwrap();
    assert_eq!(out.stdout, vec![0xff, 0, 1]);

    // Files: content, mode, an awkward name, a large file (upload path).
    let path = "/root/forge file's \"name\" $(x)";
    remote.write_file(path, b"data\n", 0o640).await.unwrap();
    let out = remote
        .run(&format!("stat -c %a {0}; cat {0}", shell_quote(path)))
        .await
        .unwrap();
    assert_eq!(out.stdout_lossy(), "640\ndata\n");
    let big = vec![b'x'; 3 << 20];
    remote.write_file("/root/big", &big, 0o600).await.unwrap();
    let out = remote.run("wc -c < /root/big").await.unwrap();
    assert_eq!(out.stdout_lossy().trim(), (3 << 20).to_string());
    let out = remote
        .run_script("/root/s.sh", b"#!/bin/sh\necho script-ran\n", "/root/s.sh")
        .await
        .unwrap();
    assert_eq!(out.stdout_lossy(), "script-ran\n");

    // A write that cannot happen is reported, naming the target.
    let err = remote
        .write_file("/no/such/dir/f", b"x", 0o644)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RemoteError::Transport { reason, .. } if reason.contains("/no/such/dir/f")),
        "{err}"
    );

    remote.close().await.expect("close syncs and shuts down");

    // Read back with guestfish (a second launch): the writes persisted, the work dir is gone.
    let seen = image::guest_sh(
        &disk.path,
        &format!(
            "cat {}; stat -c %a /root/big; ls -a /tmp",
            shell_quote(path)
        ),
    );
    assert!(seen.starts_with("data\n600\n"), "{seen}");
    assert!(!seen.contains(".forge-guestfs-"), "work dir left: {seen}");
}

#[tokio::test]
async fn open_reports_a_missing_image_without_launching() {
    let err = GuestfsRemote::open(options(std::path::Path::new("/nonexistent/forge.qcow2")))
        .await
        .unwrap_err();
    assert!(matches!(err, GuestfsError::Image { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/forge.qcow2"),
        "{err}"
    );
}

#[tokio::test]
async fn open_rejects_a_file_that_is_not_a_disk_image_format_it_can_name() {
    // qemu-img calls any unrecognised file "raw"; a directory is refused before qemu-img runs.
    let dir = tempfile::tempdir().unwrap();
    let err = GuestfsRemote::open(options(dir.path())).await.unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
}
