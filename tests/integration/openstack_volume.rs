//! Cinder, against the test cloud's real Cinder (api, scheduler, volume with the NFS driver on a
//! bind-mounted local share, volume type `nfs`; see tests/cloud/up.sh): a volume from an image
//! with size, type and availability zone; a fake-driver server booted from it (the volume
//! outlives the server); get and list; an impossible volume fails its wait
//! with Cinder's message (not a timeout); a wait is cancellable; upload to Glance as a raw
//! image; delete. No stand-in: every answer is Cinder's.

use crate::cloud;

use std::time::{Duration, Instant};

use forge::openstack::compute::{ComputeClient, NewServer};
use forge::openstack::error::Error;
use forge::openstack::image::{ImageClient, NewImage};
use forge::openstack::volume::{NewVolume, VolumeClient};
use forge::openstack::wait::WaitOptions;
use forge::pipeline::Progress;
use reqwest::Method;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

fn opts() -> WaitOptions {
    WaitOptions::with_timeout(Duration::from_secs(240))
}

/// Run `body`, then delete every volume named with `tag`'s prefix and the images tagged or
/// named so (the uploaded image carries its name only), even when `body` panicked.
async fn with_volume_cleanup<F: std::future::Future>(
    volumes: &VolumeClient,
    images: &ImageClient,
    tag: &str,
    body: F,
) -> F::Output {
    use futures::FutureExt;
    let result = std::panic::AssertUnwindSafe(body).catch_unwind().await;
    for v in volumes.list(None).await.unwrap_or_default() {
        if v.name.as_deref().is_some_and(|n| n.starts_with(tag)) {
            let _ = volumes.delete(&v.id).await;
        }
    }
    cloud::delete_tagged(images, tag).await;
    let query = forge::openstack::image::ImageQuery {
        name: Some(format!("{tag}-fromvol")),
        ..Default::default()
    };
    for image in images.list(&query, Some(10)).await.unwrap_or_default() {
        let _ = images.delete(&image.id).await;
    }
    match result {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

#[tokio::test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn volume_from_image_upload_to_image_delete() {
    if !cloud::available_with(&[cloud::CINDER]) {
        return;
    }
    let session = cloud::session(cloud::ADMIN).await;
    let volumes = VolumeClient::new(session.clone());
    let images = ImageClient::new(session.clone());
    let tag = cloud::unique("vol");
    let cancel = CancellationToken::new();
    let progress = Progress::hidden();
    with_volume_cleanup(&volumes, &images, &tag, async {
        let data = cloud::data_file(1 << 20, 0x5a);
        let mut src = NewImage::named(&format!("{tag}-src"));
        src.tags = vec![tag.clone()];
        let source = cloud::active_image(&images, &src, data.path()).await;

        let new = NewVolume {
            name: format!("{tag}-root"),
            size_gib: 1,
            image_id: Some(source.id.clone()),
            volume_type: Some("nfs".into()),
            availability_zone: Some("nova".into()),
            metadata: [("forge_run".to_string(), tag.clone())].into(),
            ..Default::default()
        };
        let t0 = Instant::now();
        let created = volumes.create(&new).await.unwrap();
        let volume = volumes
            .wait_available(&created.id, opts(), &cancel, &progress)
            .await
            .unwrap();
        eprintln!("volume from a 1 MiB image: available in {:?}", t0.elapsed());
        assert_eq!(volume.size, 1);
        assert_eq!(volume.volume_type.as_deref(), Some("nfs"));
        assert_eq!(volume.availability_zone.as_deref(), Some("nova"));
        assert!(volume.is_bootable(), "{volume:?}");
        assert_eq!(volume.metadata["forge_run"], tag);
        let meta = volume.volume_image_metadata.clone().unwrap_or_default();
        assert_eq!(meta.get("image_id"), Some(&source.id));
        let listed = volumes.list(Some(&new.name)).await.unwrap();
        assert_eq!(
            listed.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(),
            [volume.id.as_str()]
        );

        let t1 = Instant::now();
        let upload = volumes
            .upload_to_image(&volume.id, &format!("{tag}-fromvol"), "raw", false)
            .await
            .unwrap();
        assert_eq!(upload.disk_format, "raw");
        let image = images
            .wait_active(&upload.image_id, opts(), &cancel, &progress)
            .await
            .unwrap();
        volumes
            .wait_available(&volume.id, opts(), &cancel, &progress)
            .await
            .unwrap();
        eprintln!(
            "upload of the 1 GiB volume: image active in {:?}",
            t1.elapsed()
        );
        assert_eq!(image.size, Some(1 << 30));
        assert_eq!(image.disk_format.as_deref(), Some("raw"));

        assert!(volumes.delete(&volume.id).await.unwrap());
        volumes
            .wait_deleted(&volume.id, opts(), &cancel, &progress)
            .await
            .unwrap();
        assert!(!volumes.delete(&volume.id).await.unwrap(), "already gone");
        assert!(images.delete(&image.id).await.unwrap());
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn impossible_volume_fails_its_wait_with_cinders_message() {
    if !cloud::available_with(&[cloud::CINDER]) {
        return;
    }
    let session = cloud::session(cloud::ADMIN).await;
    let volumes = VolumeClient::new(session.clone());
    let images = ImageClient::new(session.clone());
    let tag = cloud::unique("volerr");
    with_volume_cleanup(&volumes, &images, &tag, async {
        // a type whose backend does not exist: the scheduler finds none, the volume goes 'error'
        let types = session.url("volumev3", &["types"]).await.unwrap();
        let body = json!({"volume_type": {"name": format!("{tag}-nowhere"),
            "extra_specs": {"volume_backend_name": "no-such-backend"}}});
        let made: Value = session
            .send_json(Method::POST, types.clone(), |r| r.json(&body))
            .await
            .unwrap();
        let type_id = made["volume_type"]["id"].as_str().unwrap().to_string();
        let new = NewVolume {
            name: format!("{tag}-nowhere"),
            size_gib: 1,
            volume_type: Some(type_id.clone()),
            ..Default::default()
        };
        let created = volumes.create(&new).await.unwrap();
        let t0 = Instant::now();
        let err = volumes
            .wait_available(
                &created.id,
                opts(),
                &CancellationToken::new(),
                &Progress::hidden(),
            )
            .await
            .unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(200), "not a timeout");
        let text = err.to_string();
        assert!(matches!(err, Error::Failed { .. }), "{text}");
        assert!(text.contains("volume status is 'error'"), "{text}");
        assert!(
            text.contains("allocate volume"),
            "Cinder's user message: {text}"
        );
        assert!(volumes.delete(&created.id).await.unwrap());
        volumes
            .wait_deleted(
                &created.id,
                opts(),
                &CancellationToken::new(),
                &Progress::hidden(),
            )
            .await
            .unwrap();
        let url = session.url("volumev3", &["types", &type_id]).await.unwrap();
        session.send(Method::DELETE, url, |r| r).await.unwrap();

        let zero = NewVolume {
            name: format!("{tag}-zero"),
            ..Default::default()
        };
        let err = volumes.create(&zero).await.unwrap_err().to_string();
        assert!(err.contains("at least 1 GiB"), "{err}");
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn volume_wait_is_cancellable() {
    if !cloud::available_with(&[cloud::CINDER]) {
        return;
    }
    let session = cloud::session(cloud::ADMIN).await;
    let volumes = VolumeClient::new(session.clone());
    let images = ImageClient::new(session.clone());
    let tag = cloud::unique("volcancel");
    with_volume_cleanup(&volumes, &images, &tag, async {
        let created = volumes
            .create(&NewVolume {
                name: format!("{tag}-v"),
                size_gib: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        // 'in-use' never comes for a volume nobody attaches: only the cancel ends the wait
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            c2.cancel();
        });
        let t0 = Instant::now();
        let err = volumes
            .wait_in_use(&created.id, opts(), &cancel, &Progress::hidden())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Cancelled { .. }), "{err}");
        assert!(t0.elapsed() < Duration::from_secs(30));
        volumes
            .wait_available(
                &created.id,
                opts(),
                &CancellationToken::new(),
                &Progress::hidden(),
            )
            .await
            .unwrap();
        assert!(volumes.delete(&created.id).await.unwrap());
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn server_boots_from_volume_and_the_volume_outlives_it() {
    if !cloud::available_with(&[cloud::CINDER]) {
        return;
    }
    let session = cloud::session(cloud::ADMIN).await;
    let volumes = VolumeClient::new(session.clone());
    let images = ImageClient::new(session.clone());
    let nova = ComputeClient::new(session.clone());
    let tag = cloud::unique("bfv");
    let cancel = CancellationToken::new();
    let progress = Progress::hidden();
    with_volume_cleanup(
        &volumes,
        &images,
        &tag,
        cloud::with_compute_cleanup(&session, &tag, async {
            let data = cloud::data_file(1 << 20, 0x42);
            let mut src = NewImage::named(&format!("{tag}-src"));
            src.tags = vec![tag.clone()];
            let source = cloud::active_image(&images, &src, data.path()).await;
            let created = volumes
                .create(&NewVolume {
                    name: format!("{tag}-root"),
                    size_gib: 1,
                    image_id: Some(source.id.clone()),
                    ..Default::default()
                })
                .await
                .unwrap();
            volumes
                .wait_available(&created.id, opts(), &cancel, &progress)
                .await
                .unwrap();

            let mut new = NewServer::new(&format!("{tag}-vm"), "", "1");
            new.boot_volume = Some(created.id.clone());
            let id = nova.create_server(&new).await.unwrap();
            let server = nova
                .wait_active(&id, opts(), &cancel, &progress)
                .await
                .unwrap();
            assert_eq!(server.status, "ACTIVE");
            let attached = volumes
                .wait_in_use(&created.id, opts(), &cancel, &progress)
                .await
                .unwrap();
            assert_eq!(
                attached.attachments[0].server_id.as_deref(),
                Some(id.as_str())
            );

            nova.delete_server_and_wait(&id, opts(), &cancel, &progress)
                .await
                .unwrap();
            let kept = volumes
                .wait_available(&created.id, opts(), &cancel, &progress)
                .await
                .unwrap();
            assert!(kept.attachments.is_empty(), "{kept:?}");
            assert!(volumes.delete(&created.id).await.unwrap());
        }),
    )
    .await;
}
