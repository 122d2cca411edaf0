//! Neutron floating IPs: allocate from a network, associate with a server's port, release.
//!
//! `FakeNeutron` below is a hand-written fake, named as such: the test cloud has no real
//! Neutron (its stand-in only answers lists with `[]`, because Nova needs a network endpoint),
//! and real Neutron with an external network and router cannot run here. Authentication still
//! goes through the real Keystone; only the network endpoint is pointed at the fake, through
//! the `network_endpoint_override` setting that users have too.

use crate::cloud;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use forge::openstack::network::NetworkClient;
use forge::openstack::{CloudConfig, Session};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// FAKE Neutron (see the module doc): floating IPs in memory, one external network
/// `ext-net` (id `net-ext-1`) and one port `port-1` on server `server-1`.
#[derive(Default)]
struct FakeNeutron {
    fips: BTreeMap<String, Value>,
    /// `METHOD path body` of every request, for assertions.
    log: Vec<String>,
}

impl FakeNeutron {
    fn handle(&mut self, method: &str, target: &str, body: &str) -> (u16, Value) {
        self.log.push(format!("{method} {target} {body}"));
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        match (method, path) {
            ("GET", "/v2.0/networks") => {
                let hit = query == "id=net-ext-1" || query == "name=ext-net";
                let nets = if hit {
                    vec![json!({"id": "net-ext-1"})]
                } else {
                    vec![]
                };
                (200, json!({ "networks": nets }))
            }
            ("GET", "/v2.0/ports") => {
                let ports = if query == "device_id=server-1" {
                    vec![json!({"id": "port-1"})]
                } else {
                    vec![]
                };
                (200, json!({ "ports": ports }))
            }
            ("POST", "/v2.0/floatingips") => {
                let id = format!("fip-{}", self.fips.len() + 1);
                let fip = json!({"id": id, "floating_ip_address": "203.0.113.7",
                    "floating_network_id": body["floatingip"]["floating_network_id"],
                    "port_id": null});
                self.fips.insert(id, fip.clone());
                (201, json!({ "floatingip": fip }))
            }
            (m, p) if p.starts_with("/v2.0/floatingips/") => {
                let id = &p["/v2.0/floatingips/".len()..];
                match (m, self.fips.get_mut(id)) {
                    ("PUT", Some(fip)) => {
                        fip["port_id"] = body["floatingip"]["port_id"].clone();
                        (200, json!({ "floatingip": fip.clone() }))
                    }
                    ("DELETE", Some(_)) => {
                        self.fips.remove(id);
                        (204, Value::Null)
                    }
                    _ => (404, json!({"NeutronError": {"message": "not found"}})),
                }
            }
            _ => (404, json!({"NeutronError": {"message": "no such route"}})),
        }
    }
}

/// Serve `fake` on a loopback port: a minimal HTTP/1.1 server, one request per connection.
async fn serve(fake: Arc<Mutex<FakeNeutron>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let fake = fake.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                reader.read_line(&mut line).await.ok()?;
                let mut parts = line.split_whitespace();
                let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
                let mut length = 0usize;
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).await.ok()?;
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            length = v.trim().parse().ok()?;
                        }
                    }
                }
                let mut body = vec![0u8; length];
                reader.read_exact(&mut body).await.ok()?;
                let (status, value) =
                    fake.lock()
                        .ok()?
                        .handle(&method, &target, &String::from_utf8_lossy(&body));
                let text = if value.is_null() {
                    String::new()
                } else {
                    value.to_string()
                };
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
                reader.get_mut().write_all(response.as_bytes()).await.ok()
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn floating_ip_allocate_associate_release() {
    if !cloud::available(false) {
        return;
    }
    let fake = Arc::new(Mutex::new(FakeNeutron::default()));
    let url = serve(fake.clone()).await;
    let mut config = CloudConfig::load(Some(cloud::ADMIN), &cloud::config_env()).unwrap();
    config.endpoint_overrides.insert("network".into(), url);
    let neutron = NetworkClient::new(Session::connect(config).await.unwrap());

    let net = neutron.find_network("ext-net").await.unwrap();
    assert_eq!(net, "net-ext-1");
    let err = neutron.find_network("nope").await.unwrap_err().to_string();
    assert!(err.contains("'nope'"), "{err}");

    let fip = neutron.allocate_floating_ip(&net).await.unwrap();
    assert_eq!(fip.floating_ip_address, "203.0.113.7");
    assert_eq!(fip.floating_network_id.as_deref(), Some("net-ext-1"));
    let fip = neutron
        .associate_floating_ip(&fip.id, "server-1")
        .await
        .unwrap();
    assert_eq!(fip.port_id.as_deref(), Some("port-1"));
    let err = neutron
        .associate_floating_ip(&fip.id, "server-without-port")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no network port"), "{err}");
    assert!(neutron.release_floating_ip(&fip.id).await.unwrap());
    assert!(
        !neutron.release_floating_ip(&fip.id).await.unwrap(),
        "already gone"
    );

    let log = fake.lock().unwrap().log.clone();
    assert!(log.iter().any(
        |l| l == r#"POST /v2.0/floatingips {"floatingip":{"floating_network_id":"net-ext-1"}}"#
    ));
    assert!(log
        .iter()
        .any(|l| l == r#"PUT /v2.0/floatingips/fip-1 {"floatingip":{"port_id":"port-1"}}"#));
    assert!(
        fake.lock().unwrap().fips.is_empty(),
        "nothing left allocated"
    );
}
