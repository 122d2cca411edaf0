//! Neutron, against the test cloud's real Neutron (ML2 with the linuxbridge agent; the external
//! network `public`, router `forge-router` and admin's network `private` behind it are made by
//! tests/cloud/up.sh): networks by id or name, a fake-driver server's port, floating IPs
//! allocated, associated, released; a floating IP the user gave is disassociated and left
//! allocated. No stand-in: every answer is Neutron's.

use crate::cloud;

use std::sync::Arc;
use std::time::Duration;

use forge::openstack::compute::{ComputeClient, Networks, NewServer};
use forge::openstack::image::{ImageClient, NewImage};
use forge::openstack::network::NetworkClient;
use forge::openstack::wait::WaitOptions;
use forge::openstack::Session;
use forge::pipeline::Progress;
use reqwest::Method;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// Boot a fake-driver server named `<tag>-vm` from a fresh 1 MiB image, on `networks`.
async fn server(session: &Arc<Session>, tag: &str, networks: Networks) -> String {
    let glance = ImageClient::new(session.clone());
    let nova = ComputeClient::new(session.clone());
    let data = cloud::data_file(1 << 20, 3);
    let mut src = NewImage::named(&format!("{tag}-src"));
    src.tags = vec![tag.to_string()];
    let image = cloud::active_image(&glance, &src, data.path()).await;
    let mut new = NewServer::new(&format!("{tag}-vm"), &image.id, "1");
    new.networks = networks;
    let id = nova.create_server(&new).await.unwrap();
    nova.wait_active(
        &id,
        WaitOptions::with_timeout(Duration::from_secs(180)),
        &CancellationToken::new(),
        &Progress::hidden(),
    )
    .await
    .unwrap();
    id
}

/// Release the floating IPs described `desc` (what a failed test left), then re-raise.
async fn with_fip_cleanup<F: std::future::Future>(
    neutron: &NetworkClient,
    desc: &str,
    body: F,
) -> F::Output {
    use futures::FutureExt;
    let result = std::panic::AssertUnwindSafe(body).catch_unwind().await;
    for fip in neutron.list_floating_ips(desc).await.unwrap_or_default() {
        let _ = neutron.release_floating_ip(&fip.id).await;
    }
    match result {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

#[tokio::test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn networks_by_id_or_name_and_ambiguous_names() {
    if !cloud::available_with(&[cloud::NEUTRON]) {
        return;
    }
    let session = cloud::session(cloud::ADMIN).await;
    let neutron = NetworkClient::new(session.clone());
    let public = neutron.find_network("public").await.unwrap();
    assert_eq!(neutron.find_network(&public).await.unwrap(), public);
    let err = neutron.find_network("nope").await.unwrap_err().to_string();
    assert!(
        err.contains("'nope'") && err.contains("existing network"),
        "{err}"
    );

    // two networks with one name: the name alone is refused, each id still works
    let name = cloud::unique("twin");
    let url = session.url("network", &["v2.0", "networks"]).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let body = json!({"network": {"name": name}});
        let v: Value = session
            .send_json(Method::POST, url.clone(), |r| r.json(&body))
            .await
            .unwrap();
        ids.push(v["network"]["id"].as_str().unwrap().to_string());
    }
    let err = neutron.find_network(&name).await.map_err(|e| e.to_string());
    let by_id = neutron
        .find_network(&ids[1])
        .await
        .map_err(|e| e.to_string());
    for id in &ids {
        let url = session
            .url("network", &["v2.0", "networks", id])
            .await
            .unwrap();
        session.send(Method::DELETE, url, |r| r).await.unwrap();
    }
    let err = err.unwrap_err();
    assert!(err.contains("2 networks are called that"), "{err}");
    assert_eq!(by_id.unwrap(), ids[1]);
}

#[tokio::test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn floating_ip_allocate_associate_release() {
    if !cloud::available_with(&[cloud::NEUTRON]) {
        return;
    }
    let session = cloud::session(cloud::ADMIN).await;
    let neutron = NetworkClient::new(session.clone());
    let tag = cloud::unique("fip");
    let desc = format!("{tag}-fip");
    with_fip_cleanup(
        &neutron,
        &desc,
        cloud::with_compute_cleanup(&session, &tag, async {
            let private = neutron.find_network("private").await.unwrap();
            let public = neutron.find_network("public").await.unwrap();
            let id = server(&session, &tag, Networks::Ids(vec![private.clone()])).await;

            // Nova made the port on 'private' and Neutron bound it to the fake host's agent
            let ports = neutron.server_ports(&id).await.unwrap();
            assert_eq!(ports.len(), 1, "{ports:?}");
            assert_eq!(ports[0].network_id, private);
            assert!(
                ports[0].fixed_ips[0].ip_address.starts_with("10.10.0."),
                "{ports:?}"
            );

            let fip = neutron
                .allocate_floating_ip_described(&public, Some(&desc))
                .await
                .unwrap();
            assert!(fip.floating_ip_address.starts_with("203.0.113."), "{fip:?}");
            assert_eq!(fip.floating_network_id.as_deref(), Some(public.as_str()));
            assert_eq!(fip.port_id, None);
            let listed = neutron.list_floating_ips(&desc).await.unwrap();
            assert_eq!(
                listed.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
                [fip.id.as_str()]
            );

            let associated = neutron.associate_floating_ip(&fip.id, &id).await.unwrap();
            assert_eq!(associated.port_id.as_deref(), Some(ports[0].id.as_str()));
            assert_eq!(
                neutron.get_floating_ip(&fip.id).await.unwrap().port_id,
                associated.port_id
            );

            assert!(neutron.release_floating_ip(&fip.id).await.unwrap());
            assert!(
                !neutron.release_floating_ip(&fip.id).await.unwrap(),
                "already gone"
            );
            let gone = neutron.get_floating_ip(&fip.id).await.unwrap_err();
            assert!(gone.is_not_found(), "{gone}");
            assert!(neutron.list_floating_ips(&desc).await.unwrap().is_empty());
        }),
    )
    .await;
}

#[tokio::test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn server_without_port_gets_no_floating_ip() {
    if !cloud::available_with(&[cloud::NEUTRON]) {
        return;
    }
    let session = cloud::session(cloud::ADMIN).await;
    let neutron = NetworkClient::new(session.clone());
    let tag = cloud::unique("fipnone");
    let desc = format!("{tag}-fip");
    with_fip_cleanup(
        &neutron,
        &desc,
        cloud::with_compute_cleanup(&session, &tag, async {
            let public = neutron.find_network("public").await.unwrap();
            let id = server(&session, &tag, Networks::None).await;
            assert!(neutron.server_ports(&id).await.unwrap().is_empty());
            let fip = neutron
                .allocate_floating_ip_described(&public, Some(&desc))
                .await
                .unwrap();
            let err = neutron
                .associate_floating_ip(&fip.id, &id)
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains("no network port"), "{err}");
            assert!(neutron.release_floating_ip(&fip.id).await.unwrap());
        }),
    )
    .await;
}

#[tokio::test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn given_floating_ip_is_disassociated_and_left_allocated() {
    if !cloud::available_with(&[cloud::NEUTRON]) {
        return;
    }
    let session = cloud::session(cloud::ADMIN).await;
    let neutron = NetworkClient::new(session.clone());
    let nova = ComputeClient::new(session.clone());
    let tag = cloud::unique("fipgiven");
    let desc = format!("{tag}-fip");
    with_fip_cleanup(
        &neutron,
        &desc,
        cloud::with_compute_cleanup(&session, &tag, async {
            let private = neutron.find_network("private").await.unwrap();
            let public = neutron.find_network("public").await.unwrap();
            // allocated beforehand, as a user who names `floating_ip` in a template would
            let given = neutron
                .allocate_floating_ip_described(&public, Some(&desc))
                .await
                .unwrap();
            let id = server(&session, &tag, Networks::Ids(vec![private])).await;
            let associated = neutron.associate_floating_ip(&given.id, &id).await.unwrap();
            assert!(associated.port_id.is_some());

            let back = neutron.disassociate_floating_ip(&given.id).await.unwrap();
            assert_eq!(back.port_id, None);
            nova.delete_server_and_wait(
                &id,
                WaitOptions::with_timeout(Duration::from_secs(120)),
                &CancellationToken::new(),
                &Progress::hidden(),
            )
            .await
            .unwrap();
            let kept = neutron.get_floating_ip(&given.id).await.unwrap();
            assert_eq!(kept.floating_ip_address, given.floating_ip_address);
            assert_eq!(kept.port_id, None);
            assert!(neutron.release_floating_ip(&given.id).await.unwrap());
        }),
    )
    .await;
}
