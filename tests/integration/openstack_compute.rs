//! Nova client against the real test cloud (fake virt driver; see tests/cloud/up.sh for the
//! snapshot-upload stand-in): flavors, keypairs, a server's whole life, and nothing left over.

use crate::cloud;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use forge::openstack::compute::{ComputeClient, Microversion, NewServer};
use forge::openstack::image::{ImageClient, NewImage};
use forge::openstack::wait::WaitOptions;
use forge::pipeline::Progress;
use tokio_util::sync::CancellationToken;

/// A real ed25519 public key (public keys are not secrets).
const PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGEW3Da63yFA1SmktcVnOGQqz/8hP34haQuIrI246EyD forge-test";

#[tokio::test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn microversion_flavors_and_keypairs() {
    if !cloud::available(true) {
        return;
    }
    let nova = ComputeClient::new(cloud::session(cloud::ADMIN).await);
    let v = nova.microversion().await.unwrap();
    assert_eq!(
        v,
        Microversion(2, 90),
        "cloud offers 2.93, forge speaks 2.90"
    );

    let by_id = nova.find_flavor("1").await.unwrap();
    assert_eq!(by_id.name, "m1.tiny");
    let by_name = nova.find_flavor("m1.small").await.unwrap();
    assert_eq!(by_name.id, "2");
    let err = nova
        .find_flavor("m1.huge/../1")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("m1.small") && err.contains("m1.tiny"), "{err}");

    let name = cloud::unique("kp");
    let kp = nova.create_keypair(&name, PUBLIC_KEY).await.unwrap();
    assert_eq!(kp.name, name);
    assert!(kp.fingerprint.is_some());
    assert!(nova.delete_keypair(&name).await.unwrap());
    assert!(!nova.delete_keypair(&name).await.unwrap(), "already gone");
}

#[tokio::test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn boot_stop_snapshot_delete_leaves_nothing_behind() {
    if !cloud::available(true) {
        return;
    }
    let session = cloud::session(cloud::ADMIN).await;
    let nova = ComputeClient::new(session.clone());
    let glance = ImageClient::new(session.clone());
    let tag = cloud::unique("life");
    let cancel = CancellationToken::new();
    let progress = Progress::hidden();
    let opts = WaitOptions::with_timeout(Duration::from_secs(180));

    cloud::with_compute_cleanup(&session, &tag, async {
        let data = cloud::data_file(1 << 20, 7);
        let mut src = NewImage::named(&format!("{tag}-src"));
        src.tags = vec![tag.clone()];
        let source = cloud::active_image(&glance, &src, data.path()).await;
        let key = format!("{tag}-kp");
        nova.create_keypair(&key, PUBLIC_KEY).await.unwrap();

        let mut new = NewServer::new(&format!("{tag}-vm"), &source.id, "1");
        new.key_name = Some(key.clone());
        new.config_drive = true;
        new.user_data = Some(b"#cloud-config\nruncmd: [\"echo $(id) `id` 'q'\"]\n".to_vec());
        new.metadata = BTreeMap::from([
            ("forge_run".to_string(), tag.clone()),
            (
                "hostile".to_string(),
                "$(rm -rf /) `id` 'q' \"dq\"".to_string(),
            ),
        ]);
        let t0 = Instant::now();
        let id = nova.create_server(&new).await.unwrap();
        let server = nova
            .wait_active(&id, opts, &cancel, &progress)
            .await
            .unwrap();
        let boot = t0.elapsed();
        assert_eq!(server.status, "ACTIVE");
        assert_eq!(server.metadata["hostile"], new.metadata["hostile"]);

        let t1 = Instant::now();
        let stopped = nova
            .stop_server(&id, opts, &cancel, &progress)
            .await
            .unwrap();
        let stop = t1.elapsed();
        assert_eq!(stopped.status, "SHUTOFF");

        let t2 = Instant::now();
        let snap_meta = BTreeMap::from([("forge_run".to_string(), tag.clone())]);
        let snap_id = nova
            .create_image(&id, &format!("{tag}-snap"), &snap_meta)
            .await
            .unwrap();
        let snap = glance
            .wait_active(&snap_id, opts, &cancel, &progress)
            .await
            .unwrap();
        let snapshot = t2.elapsed();
        // The snapshot task may still be finishing on the server: let it, before deleting.
        nova.wait_idle(&id, opts, &cancel, &progress).await.unwrap();
        assert_eq!(snap.property("forge_run"), Some(tag.as_str()));
        assert_eq!(snap.property("image_type"), Some("snapshot"));

        let t3 = Instant::now();
        assert!(nova
            .delete_server_and_wait(&id, opts, &cancel, &progress)
            .await
            .unwrap());
        let delete = t3.elapsed();
        eprintln!(
            "figure: fake-driver boot {:.2}s, stop {:.2}s, snapshot active {:.2}s, delete {:.2}s",
            boot.as_secs_f64(),
            stop.as_secs_f64(),
            snapshot.as_secs_f64(),
            delete.as_secs_f64()
        );
        assert!(glance.delete(&snap_id).await.unwrap());
        assert!(glance.delete(&source.id).await.unwrap());
        assert!(nova.delete_keypair(&key).await.unwrap());

        // Nothing left: no server by id or name, no image, no keypair.
        match nova.get_server(&id).await {
            Err(e) => assert!(e.is_not_found(), "{e}"),
            Ok(s) => assert_eq!(s.status, "DELETED"),
        }
        assert!(nova.list_servers(Some(&tag)).await.unwrap().is_empty());
        assert!(glance.get(&snap_id).await.unwrap_err().is_not_found());
        assert!(glance.get(&source.id).await.unwrap_err().is_not_found());
        assert!(!nova.delete_keypair(&key).await.unwrap());
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn waits_are_cancellable_and_bounded() {
    if !cloud::available(true) {
        return;
    }
    let session = cloud::session(cloud::ADMIN).await;
    let nova = ComputeClient::new(session.clone());
    let glance = ImageClient::new(session);
    let tag = cloud::unique("cancel");
    cloud::with_tag_cleanup(&glance, &tag, async {
        // A queued image never becomes active by itself: the wait must time out, then cancel.
        let mut n = NewImage::named(&tag);
        n.tags = vec![tag.clone()];
        let img = glance.create(&n).await.unwrap();
        let t0 = Instant::now();
        let err = glance
            .wait_active(
                &img.id,
                WaitOptions::with_timeout(Duration::from_millis(800)),
                &CancellationToken::new(),
                &Progress::hidden(),
            )
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("timed out") && err.to_string().contains("queued"),
            "{err}"
        );
        assert!(t0.elapsed() < Duration::from_secs(5));

        let cancel = CancellationToken::new();
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            c.cancel();
        });
        let err = glance
            .wait_active(
                &img.id,
                WaitOptions::default(),
                &cancel,
                &Progress::hidden(),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("cancelled"), "{err}");

        // A server that does not exist: the wait fails at once instead of polling.
        let err = nova
            .wait_active(
                "00000000-0000-0000-0000-000000000000",
                WaitOptions::default(),
                &CancellationToken::new(),
                &Progress::hidden(),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("deleted"), "{err}");
    })
    .await;
}
