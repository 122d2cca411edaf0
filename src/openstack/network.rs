//! Neutron v2.0: networks by id or name, a server's ports, floating IPs (allocate from an
//! external network, get, associate with a server's port, disassociate, release).

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::error::Error;
use super::identity::Session;
use super::wait::delete_idempotent;

const SERVICE: &str = "network";

/// A floating IP.
#[derive(Debug, Clone, Deserialize)]
pub struct FloatingIp {
    pub id: String,
    pub floating_ip_address: String,
    #[serde(default)]
    pub port_id: Option<String>,
    #[serde(default)]
    pub floating_network_id: Option<String>,
}

#[derive(Deserialize)]
struct FipBody {
    floatingip: FloatingIp,
}

/// A Neutron port (the parts forge reads).
#[derive(Debug, Clone, Deserialize)]
pub struct Port {
    pub id: String,
    pub network_id: String,
    #[serde(default)]
    pub device_id: String,
    #[serde(default)]
    pub fixed_ips: Vec<FixedIp>,
    /// `ACTIVE`, `DOWN`, `BUILD`.
    #[serde(default)]
    pub status: String,
}

/// One address of a port.
#[derive(Debug, Clone, Deserialize)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Named {
    id: String,
}

/// Neutron client.
#[derive(Debug, Clone)]
pub struct NetworkClient {
    session: Arc<Session>,
}

impl NetworkClient {
    pub fn new(session: Arc<Session>) -> NetworkClient {
        NetworkClient { session }
    }

    /// A network's id from its id or exact name (ambiguous names are an error).
    pub async fn find_network(&self, id_or_name: &str) -> Result<String, Error> {
        #[derive(Deserialize)]
        struct List {
            networks: Vec<Named>,
        }
        let url = self.session.url(SERVICE, &["v2.0", "networks"]).await?;
        let by_id: List = self
            .session
            .send_json(Method::GET, url.clone(), |r| r.query(&[("id", id_or_name)]))
            .await?;
        if let Some(n) = by_id.networks.first() {
            return Ok(n.id.clone());
        }
        let by_name: List = self
            .session
            .send_json(Method::GET, url, |r| r.query(&[("name", id_or_name)]))
            .await?;
        match by_name.networks.as_slice() {
            [one] => Ok(one.id.clone()),
            [] => Err(Error::InvalidValue {
                what: "floating IP network".into(),
                value: id_or_name.into(),
                expected: "the id or name of an existing network".into(),
            }),
            many => Err(Error::InvalidValue {
                what: "floating IP network".into(),
                value: id_or_name.into(),
                expected: format!(
                    "an unambiguous name; {} networks are called that: use an id",
                    many.len()
                ),
            }),
        }
    }

    /// Allocate a floating IP from the external network `network_id`.
    pub async fn allocate_floating_ip(&self, network_id: &str) -> Result<FloatingIp, Error> {
        self.allocate_floating_ip_described(network_id, None).await
    }

    /// Allocate a floating IP with a `description` (forge writes `forge-<run>-fip` there, so
    /// `forge cleanup` can find it after a crash: floating IPs have no name).
    pub async fn allocate_floating_ip_described(
        &self,
        network_id: &str,
        description: Option<&str>,
    ) -> Result<FloatingIp, Error> {
        let url = self.session.url(SERVICE, &["v2.0", "floatingips"]).await?;
        let mut body = json!({"floatingip": {"floating_network_id": network_id}});
        if let Some(d) = description {
            body["floatingip"]["description"] = json!(d);
        }
        let b: FipBody = self
            .session
            .send_json(Method::POST, url, |r| r.json(&body))
            .await?;
        Ok(b.floatingip)
    }

    /// The server's ports (Nova creates one per network it attaches).
    pub async fn server_ports(&self, server_id: &str) -> Result<Vec<Port>, Error> {
        #[derive(Deserialize)]
        struct Ports {
            ports: Vec<Port>,
        }
        let url = self.session.url(SERVICE, &["v2.0", "ports"]).await?;
        let ports: Ports = self
            .session
            .send_json(Method::GET, url, |r| r.query(&[("device_id", server_id)]))
            .await?;
        Ok(ports.ports)
    }

    /// Associate the floating IP with the server's first port.
    pub async fn associate_floating_ip(
        &self,
        fip_id: &str,
        server_id: &str,
    ) -> Result<FloatingIp, Error> {
        let ports = self.server_ports(server_id).await?;
        let port = ports.first().ok_or_else(|| {
            Error::Unsupported(format!(
                "server {server_id} has no network port to attach a floating IP to"
            ))
        })?;
        self.set_floating_ip_port(fip_id, Some(&port.id)).await
    }

    /// Detach the floating IP from its port, keeping it allocated (a floating IP the user gave
    /// is handed back like this, never released).
    pub async fn disassociate_floating_ip(&self, fip_id: &str) -> Result<FloatingIp, Error> {
        self.set_floating_ip_port(fip_id, None).await
    }

    async fn set_floating_ip_port(
        &self,
        fip_id: &str,
        port_id: Option<&str>,
    ) -> Result<FloatingIp, Error> {
        let url = self
            .session
            .url(SERVICE, &["v2.0", "floatingips", fip_id])
            .await?;
        let body = json!({"floatingip": {"port_id": port_id}});
        let b: FipBody = self
            .session
            .send_json(Method::PUT, url, |r| r.json(&body))
            .await?;
        Ok(b.floatingip)
    }

    /// One floating IP by id.
    pub async fn get_floating_ip(&self, fip_id: &str) -> Result<FloatingIp, Error> {
        let url = self
            .session
            .url(SERVICE, &["v2.0", "floatingips", fip_id])
            .await?;
        let b: FipBody = self.session.send_json(Method::GET, url, |r| r).await?;
        Ok(b.floatingip)
    }

    /// The project's floating IPs whose description is exactly `description`.
    pub async fn list_floating_ips(&self, description: &str) -> Result<Vec<FloatingIp>, Error> {
        #[derive(Deserialize)]
        struct List {
            floatingips: Vec<FloatingIp>,
        }
        let url = self.session.url(SERVICE, &["v2.0", "floatingips"]).await?;
        let list: List = self
            .session
            .send_json(Method::GET, url, |r| {
                r.query(&[("description", description)])
            })
            .await?;
        Ok(list.floatingips)
    }

    /// Release a floating IP; `Ok(false)` when it was already gone. Retries transient errors.
    pub async fn release_floating_ip(&self, fip_id: &str) -> Result<bool, Error> {
        let url = self
            .session
            .url(SERVICE, &["v2.0", "floatingips", fip_id])
            .await?;
        delete_idempotent(
            Duration::from_secs(30),
            |_| false,
            || self.session.send(Method::DELETE, url.clone(), |r| r),
        )
        .await
    }
}
