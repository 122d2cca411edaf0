//! Nova v2.1: flavors, keypairs, servers (create, get, wait, stop, delete), `createImage`.
//!
//! Microversions: the first call asks the endpoint's version document for the cloud's range
//! and uses the highest version both sides know (at most [`MAX_MICROVERSION`]); every request
//! then carries it. Features that need a minimum (`networks: none` 2.37, `createImage`
//! answering with the image id 2.45) check the negotiated version and fail clearly.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use reqwest::{Method, RequestBuilder, Url};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::error::Error;
use super::identity::Session;
use super::wait::{delete_idempotent, retry_idempotent, wait_for, Poll, WaitOptions};
use crate::pipeline::Progress;

const SERVICE: &str = "compute";

/// How long deletes (and stops) keep retrying transient errors.
const CLEANUP_RETRY: Duration = Duration::from_secs(30);

/// The highest compute microversion this client is written against.
pub const MAX_MICROVERSION: Microversion = Microversion(2, 90);

/// A compute API microversion, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Microversion(pub u32, pub u32);

impl fmt::Display for Microversion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl Microversion {
    /// `"2.93"` → `Microversion(2, 93)`; empty (a pre-microversion cloud) → `None`.
    pub fn parse(s: &str) -> Option<Microversion> {
        let (a, b) = s.split_once('.')?;
        Some(Microversion(a.parse().ok()?, b.parse().ok()?))
    }

    /// The version to use given the cloud's `[min, max]`.
    pub fn negotiate(min: Microversion, max: Microversion) -> Result<Microversion, Error> {
        let chosen = max.min(MAX_MICROVERSION);
        if chosen < min {
            return Err(Error::Unsupported(format!(
                "the compute API needs microversion ≥ {min}; forge speaks up to {MAX_MICROVERSION}"
            )));
        }
        Ok(chosen)
    }
}

/// A flavor.
#[derive(Debug, Clone, Deserialize)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub ram: u64,
    #[serde(default)]
    pub vcpus: u64,
    #[serde(default)]
    pub disk: u64,
}

/// A keypair as Nova returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct Keypair {
    pub name: String,
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// Which networks a new server gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Networks {
    /// `"auto"`: Nova picks or creates one (2.37+).
    Auto,
    /// `"none"`: no network at all (2.37+).
    None,
    /// These network ids.
    Ids(Vec<String>),
}

/// Everything a server is created with.
#[derive(Clone)]
pub struct NewServer {
    pub name: String,
    pub image_id: String,
    pub flavor_id: String,
    pub networks: Networks,
    /// Security group names.
    pub security_groups: Vec<String>,
    pub availability_zone: Option<String>,
    /// Raw user data (cloud-init); base64-encoded on the wire.
    pub user_data: Option<Vec<u8>>,
    pub config_drive: bool,
    pub metadata: BTreeMap<String, String>,
    pub key_name: Option<String>,
    /// Boot from this existing Cinder volume (`block_device_mapping_v2`, boot index 0) instead
    /// of `image_id`; the volume outlives the server (`delete_on_termination: false`).
    pub boot_volume: Option<String>,
}

impl fmt::Debug for NewServer {
    // user_data can hold credentials for the guest: show its size only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewServer")
            .field("name", &self.name)
            .field("image_id", &self.image_id)
            .field("flavor_id", &self.flavor_id)
            .field("networks", &self.networks)
            .field("security_groups", &self.security_groups)
            .field("availability_zone", &self.availability_zone)
            .field(
                "user_data",
                &self
                    .user_data
                    .as_ref()
                    .map(|u| format!("<{} bytes>", u.len())),
            )
            .field("config_drive", &self.config_drive)
            .field("metadata", &self.metadata)
            .field("key_name", &self.key_name)
            .field("boot_volume", &self.boot_volume)
            .finish()
    }
}

impl NewServer {
    /// A server with no network, no key and no extras.
    pub fn new(name: &str, image_id: &str, flavor_id: &str) -> NewServer {
        NewServer {
            name: name.into(),
            image_id: image_id.into(),
            flavor_id: flavor_id.into(),
            networks: Networks::None,
            security_groups: Vec::new(),
            availability_zone: None,
            user_data: None,
            config_drive: false,
            metadata: BTreeMap::new(),
            key_name: None,
            boot_volume: None,
        }
    }

    fn body(&self, version: Microversion) -> Result<Value, Error> {
        let mut s = json!({
            "name": self.name,
            "imageRef": self.image_id,
            "flavorRef": self.flavor_id,
        });
        match &self.networks {
            Networks::Auto | Networks::None if version < Microversion(2, 37) => {
                return Err(Error::Unsupported(format!(
                    "networks 'auto'/'none' need compute microversion 2.37; the cloud offers {version}"
                )))
            }
            Networks::Auto => s["networks"] = json!("auto"),
            Networks::None => s["networks"] = json!("none"),
            Networks::Ids(ids) => {
                s["networks"] = Value::Array(ids.iter().map(|id| json!({"uuid": id})).collect())
            }
        }
        if !self.security_groups.is_empty() {
            s["security_groups"] = Value::Array(
                self.security_groups
                    .iter()
                    .map(|n| json!({"name": n}))
                    .collect(),
            );
        }
        if let Some(az) = &self.availability_zone {
            s["availability_zone"] = json!(az);
        }
        if let Some(ud) = &self.user_data {
            s["user_data"] = json!(base64::engine::general_purpose::STANDARD.encode(ud));
        }
        if self.config_drive {
            s["config_drive"] = json!(true);
        }
        if !self.metadata.is_empty() {
            s["metadata"] = json!(self.metadata);
        }
        if let Some(k) = &self.key_name {
            s["key_name"] = json!(k);
        }
        if let Some(volume) = &self.boot_volume {
            // the image is the volume's
            if let Some(o) = s.as_object_mut() {
                o.remove("imageRef");
            }
            s["block_device_mapping_v2"] = json!([{
                "boot_index": 0,
                "uuid": volume,
                "source_type": "volume",
                "destination_type": "volume",
                "delete_on_termination": false,
            }]);
        }
        Ok(json!({ "server": s }))
    }
}

/// A server as Nova shows it (the parts forge reads).
#[derive(Debug, Clone, Deserialize)]
pub struct Server {
    pub id: String,
    pub name: String,
    pub status: String,
    #[serde(rename = "OS-EXT-STS:task_state", default)]
    pub task_state: Option<String>,
    #[serde(default)]
    pub fault: Option<Fault>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub addresses: BTreeMap<String, Value>,
}

/// Why a server is in ERROR.
#[derive(Debug, Clone, Deserialize)]
pub struct Fault {
    #[serde(default)]
    pub code: Option<u16>,
    #[serde(default)]
    pub message: String,
}

impl Server {
    /// `ACTIVE`, or `ACTIVE (image_uploading)` while a task runs: what a wait shows.
    fn state_text(&self) -> String {
        match &self.task_state {
            Some(t) => format!("{} ({t})", self.status),
            None => self.status.clone(),
        }
    }

    fn fault_text(&self) -> String {
        match &self.fault {
            Some(f) => format!(
                "status ERROR: {}{}",
                f.message,
                f.code.map(|c| format!(" (code {c})")).unwrap_or_default()
            ),
            None => "status ERROR (Nova gave no fault)".into(),
        }
    }
}

/// Nova client.
#[derive(Debug, Clone)]
pub struct ComputeClient {
    session: Arc<Session>,
    version: Arc<OnceCell<Microversion>>,
}

impl ComputeClient {
    pub fn new(session: Arc<Session>) -> ComputeClient {
        ComputeClient {
            session,
            version: Arc::new(OnceCell::new()),
        }
    }

    /// The negotiated microversion (asked once per client).
    pub async fn microversion(&self) -> Result<Microversion, Error> {
        self.version
            .get_or_try_init(|| async {
                #[derive(Deserialize)]
                struct Doc {
                    version: Ver,
                }
                #[derive(Deserialize)]
                struct Ver {
                    #[serde(default)]
                    version: String,
                    #[serde(default)]
                    min_version: String,
                }
                let url = self.session.url(SERVICE, &[]).await?;
                let doc: Doc = self.session.send_json(Method::GET, url, |r| r).await?;
                match (
                    Microversion::parse(&doc.version.min_version),
                    Microversion::parse(&doc.version.version),
                ) {
                    (Some(min), Some(max)) => Microversion::negotiate(min, max),
                    _ => Err(Error::Unsupported(
                        "the compute endpoint does not support microversions (pre-2.1 Nova)".into(),
                    )),
                }
            })
            .await
            .copied()
    }

    async fn url(&self, segments: &[&str]) -> Result<Url, Error> {
        self.session.url(SERVICE, segments).await
    }

    /// Send with the negotiated microversion headers.
    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<T, Error> {
        let v = self.microversion().await?.to_string();
        self.session
            .send_json(method, url, |r| {
                build(
                    r.header("OpenStack-API-Version", format!("compute {v}"))
                        .header("X-OpenStack-Nova-API-Version", v),
                )
            })
            .await
    }

    async fn send_empty(
        &self,
        method: Method,
        url: Url,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<reqwest::Response, Error> {
        let v = self.microversion().await?.to_string();
        self.session
            .send(method, url, |r| {
                build(
                    r.header("OpenStack-API-Version", format!("compute {v}"))
                        .header("X-OpenStack-Nova-API-Version", v),
                )
            })
            .await
    }

    /// A flavor by id, or else by exact name (ambiguous names are an error).
    pub async fn find_flavor(&self, id_or_name: &str) -> Result<Flavor, Error> {
        #[derive(Deserialize)]
        struct One {
            flavor: Flavor,
        }
        #[derive(Deserialize)]
        struct Many {
            flavors: Vec<Flavor>,
        }
        match self
            .send::<One>(
                Method::GET,
                self.url(&["flavors", id_or_name]).await?,
                |r| r,
            )
            .await
        {
            Ok(one) => return Ok(one.flavor),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        let url = self.url(&["flavors", "detail"]).await?;
        let all: Many = self
            .send(Method::GET, url, |r| r.query(&[("is_public", "None")]))
            .await?;
        let mut matches: Vec<Flavor> = all
            .flavors
            .iter()
            .filter(|f| f.name == id_or_name)
            .cloned()
            .collect();
        match matches.len() {
            1 => Ok(matches.remove(0)),
            0 => {
                let mut names: Vec<&str> = all.flavors.iter().map(|f| f.name.as_str()).collect();
                names.sort();
                Err(Error::InvalidValue {
                    what: "flavor".into(),
                    value: id_or_name.into(),
                    expected: format!("a flavor id or name; available: {}", names.join(", ")),
                })
            }
            _ => Err(Error::InvalidValue {
                what: "flavor".into(),
                value: id_or_name.into(),
                expected: format!(
                    "an unambiguous name; {} flavors are called that (ids {}): use an id",
                    matches.len(),
                    matches
                        .iter()
                        .map(|f| f.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }

    /// Register a public key under `name`.
    pub async fn create_keypair(&self, name: &str, public_key: &str) -> Result<Keypair, Error> {
        #[derive(Deserialize)]
        struct Body {
            keypair: Keypair,
        }
        let url = self.url(&["os-keypairs"]).await?;
        let body = json!({"keypair": {"name": name, "public_key": public_key}});
        let b: Body = self.send(Method::POST, url, |r| r.json(&body)).await?;
        Ok(b.keypair)
    }

    /// One keypair of the authenticated user by name (404 when it does not exist; keypairs are
    /// per user, not per project).
    pub async fn get_keypair(&self, name: &str) -> Result<Keypair, Error> {
        #[derive(Deserialize)]
        struct Body {
            keypair: Keypair,
        }
        let url = self.url(&["os-keypairs", name]).await?;
        let b: Body = self.send(Method::GET, url, |r| r).await?;
        Ok(b.keypair)
    }

    /// Delete a keypair; `Ok(false)` when it was already gone. Retries transient errors.
    pub async fn delete_keypair(&self, name: &str) -> Result<bool, Error> {
        let url = self.url(&["os-keypairs", name]).await?;
        delete_idempotent(
            CLEANUP_RETRY,
            |_| false,
            || self.send_empty(Method::DELETE, url.clone(), |r| r),
        )
        .await
    }

    /// Ask Nova to create a server; returns its id at once (record it before waiting).
    pub async fn create_server(&self, new: &NewServer) -> Result<String, Error> {
        #[derive(Deserialize)]
        struct Created {
            server: IdOnly,
        }
        #[derive(Deserialize)]
        struct IdOnly {
            id: String,
        }
        let body = new.body(self.microversion().await?)?;
        let url = self.url(&["servers"]).await?;
        let c: Created = self.send(Method::POST, url, |r| r.json(&body)).await?;
        Ok(c.server.id)
    }

    /// One server.
    pub async fn get_server(&self, id: &str) -> Result<Server, Error> {
        #[derive(Deserialize)]
        struct Body {
            server: Server,
        }
        let b: Body = self
            .send(Method::GET, self.url(&["servers", id]).await?, |r| r)
            .await?;
        Ok(b.server)
    }

    /// Servers of this project whose name matches `name` (a regex to Nova).
    pub async fn list_servers(&self, name: Option<&str>) -> Result<Vec<Server>, Error> {
        #[derive(Deserialize)]
        struct Body {
            servers: Vec<Server>,
        }
        let url = self.url(&["servers", "detail"]).await?;
        let b: Body = self
            .send(Method::GET, url, |r| match name {
                Some(n) => r.query(&[("name", n)]),
                None => r,
            })
            .await?;
        Ok(b.servers)
    }

    /// Servers booted from `image_id` (Nova's `image=` filter), at most `limit`. With
    /// `all_projects` every project's servers (`all_tenants`, admin only: Nova answers 403 to
    /// others); without, only this project's. Soft-deleted and shelved servers are listed too;
    /// volume-backed servers carry no image and are not.
    pub async fn servers_using_image(
        &self,
        image_id: &str,
        all_projects: bool,
        limit: u32,
    ) -> Result<Vec<Server>, Error> {
        #[derive(Deserialize)]
        struct Body {
            servers: Vec<Server>,
        }
        let url = self.url(&["servers", "detail"]).await?;
        let mut query = vec![
            ("image", image_id.to_string()),
            ("limit", limit.to_string()),
        ];
        if all_projects {
            query.push(("all_tenants", "1".into()));
        }
        let b: Body = self.send(Method::GET, url, |r| r.query(&query)).await?;
        Ok(b.servers)
    }

    /// Wait until the server is `status` (with no task running). `ERROR` fails with Nova's
    /// fault message; a vanished server fails too.
    async fn wait_status(
        &self,
        id: &str,
        status: &str,
        opts: WaitOptions,
        cancel: &CancellationToken,
        progress: &Progress,
    ) -> Result<Server, Error> {
        wait_for(
            &format!("server {id} {status}"),
            opts,
            cancel,
            progress,
            || async {
                match self.get_server(id).await {
                    Ok(s) if s.status == status && s.task_state.is_none() => Ok(Poll::Done(s)),
                    Ok(s) if s.status == "ERROR" => Ok(Poll::Failed(s.fault_text())),
                    Ok(s) if s.status == "DELETED" || s.status == "SOFT_DELETED" => {
                        Ok(Poll::Failed(format!("server is {}", s.status)))
                    }
                    Ok(s) => Ok(Poll::Pending(s.state_text())),
                    Err(e) if e.is_not_found() => Ok(Poll::Failed("server was deleted".into())),
                    Err(e) => Err(e),
                }
            },
        )
        .await
    }

    /// Wait for `ACTIVE`.
    pub async fn wait_active(
        &self,
        id: &str,
        opts: WaitOptions,
        cancel: &CancellationToken,
        progress: &Progress,
    ) -> Result<Server, Error> {
        self.wait_status(id, "ACTIVE", opts, cancel, progress).await
    }

    /// Stop the server and wait for `SHUTOFF`.
    pub async fn stop_server(
        &self,
        id: &str,
        opts: WaitOptions,
        cancel: &CancellationToken,
        progress: &Progress,
    ) -> Result<Server, Error> {
        let url = self.url(&["servers", id, "action"]).await?;
        // Asking again is harmless (a stop has no effect on a stopped server), so transient
        // errors are retried; a 409 (already stopping or stopped) leaves the verdict to the wait.
        let asked = retry_idempotent(
            CLEANUP_RETRY,
            |_| false,
            || {
                self.send_empty(Method::POST, url.clone(), |r| {
                    r.json(&json!({"os-stop": null}))
                })
            },
        )
        .await;
        match asked {
            Ok(_) => {}
            Err(e) if e.status() == Some(409) => {
                tracing::debug!("stop of server {id} answered 409 ({e}); waiting for SHUTOFF")
            }
            Err(e) => return Err(e),
        }
        self.wait_status(id, "SHUTOFF", opts, cancel, progress)
            .await
    }

    /// Snapshot the server; returns the new image's id as soon as Nova answers (record it,
    /// then wait for it to become active in Glance).
    pub async fn create_image(
        &self,
        server_id: &str,
        name: &str,
        metadata: &BTreeMap<String, String>,
    ) -> Result<String, Error> {
        let version = self.microversion().await?;
        let url = self.url(&["servers", server_id, "action"]).await?;
        let body = json!({"createImage": {"name": name, "metadata": metadata}});
        let response = self
            .send_empty(Method::POST, url.clone(), |r| r.json(&body))
            .await?;
        if version >= Microversion(2, 45) {
            #[derive(Deserialize)]
            struct Body {
                image_id: String,
            }
            let b: Body = super::identity::read_json("POST", url.as_str(), response).await?;
            return Ok(b.image_id);
        }
        // Before 2.45 the id is only in the Location header (…/images/<id>).
        response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.rsplit('/').next())
            .map(str::to_string)
            .ok_or_else(|| Error::Protocol {
                method: "POST".into(),
                url: url.to_string(),
                message: "createImage answered without an image id".into(),
            })
    }

    /// Ask Nova to delete the server; `Ok(false)` when it was already gone. Retried for up to
    /// a minute on transient errors and on 409 (Nova refuses while a task such as a snapshot
    /// upload finishes): cleanup must not give up on a server deletable a moment later.
    pub async fn delete_server(&self, id: &str) -> Result<bool, Error> {
        let url = self.url(&["servers", id]).await?;
        delete_idempotent(
            Duration::from_secs(60),
            |e| e.status() == Some(409),
            || self.send_empty(Method::DELETE, url.clone(), |r| r),
        )
        .await
    }

    /// Wait until the server is gone (404). `ERROR` during deletion fails.
    pub async fn wait_deleted(
        &self,
        id: &str,
        opts: WaitOptions,
        cancel: &CancellationToken,
        progress: &Progress,
    ) -> Result<(), Error> {
        wait_for(
            &format!("server {id} deleted"),
            opts,
            cancel,
            progress,
            || async {
                match self.get_server(id).await {
                    // Only a 404 means gone: a server whose status reads DELETED is still
                    // listed (and counted against quotas) until Nova destroys its record.
                    Err(e) if e.is_not_found() => Ok(Poll::Done(())),
                    Ok(s) if s.status == "ERROR" && s.task_state.is_none() => {
                        Ok(Poll::Failed(format!("deletion failed: {}", s.fault_text())))
                    }
                    Ok(s) => Ok(Poll::Pending(s.state_text())),
                    Err(e) => Err(e),
                }
            },
        )
        .await
    }

    /// Wait until no task runs on the server (`OS-EXT-STS:task_state` empty), e.g. after
    /// `createImage` before deleting it: Nova answers 409 or fails the delete while a
    /// snapshot upload is still finishing.
    pub async fn wait_idle(
        &self,
        id: &str,
        opts: WaitOptions,
        cancel: &CancellationToken,
        progress: &Progress,
    ) -> Result<Server, Error> {
        wait_for(
            &format!("server {id} idle"),
            opts,
            cancel,
            progress,
            || async {
                match self.get_server(id).await {
                    Ok(s) if s.task_state.is_none() => Ok(Poll::Done(s)),
                    Ok(s) => Ok(Poll::Pending(s.state_text())),
                    Err(e) if e.is_not_found() => Ok(Poll::Failed("server was deleted".into())),
                    Err(e) => Err(e),
                }
            },
        )
        .await
    }

    /// Delete the server and wait until it is gone: what a cleanup calls. When Nova leaves the
    /// server in `ERROR` (a failed delete, which real clouds do now and then), the delete is
    /// issued again, up to 3 times. Gone means a 404 (see [`ComputeClient::wait_deleted`]).
    /// `Ok(false)`: already gone.
    pub async fn delete_server_and_wait(
        &self,
        id: &str,
        opts: WaitOptions,
        cancel: &CancellationToken,
        progress: &Progress,
    ) -> Result<bool, Error> {
        if !self.delete_server(id).await? {
            return Ok(false);
        }
        let mut attempt = 1;
        loop {
            let failed = match self.wait_deleted(id, opts, cancel, progress).await {
                Ok(()) => return Ok(true),
                Err(e @ Error::Failed { .. }) => e,
                Err(e) => return Err(e),
            };
            if attempt == 3 {
                return Err(failed);
            }
            tracing::warn!(
                "{failed}; deleting server {id} again (attempt {})",
                attempt + 1
            );
            attempt += 1;
            self.delete_server(id).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_picks_the_highest_common_version() {
        let v = |s| Microversion::parse(s).unwrap();
        assert_eq!(
            Microversion::negotiate(v("2.1"), v("2.93")).unwrap(),
            v("2.90")
        );
        assert_eq!(
            Microversion::negotiate(v("2.1"), v("2.60")).unwrap(),
            v("2.60")
        );
        assert!(Microversion::negotiate(v("2.95"), v("2.99")).is_err());
        assert!(v("2.9") < v("2.10"));
        assert_eq!(Microversion::parse(""), None);
    }

    #[test]
    fn boot_volume_replaces_the_image_with_a_kept_volume() {
        let mut s = NewServer::new("n", "img", "1");
        s.boot_volume = Some("vol-1".into());
        let b = s.body(Microversion(2, 90)).unwrap();
        assert!(b["server"].get("imageRef").is_none(), "{b}");
        assert_eq!(
            b["server"]["block_device_mapping_v2"],
            json!([{"boot_index": 0, "uuid": "vol-1", "source_type": "volume",
                "destination_type": "volume", "delete_on_termination": false}])
        );
    }

    #[test]
    fn server_body_carries_every_option_and_hides_user_data_in_debug() {
        let mut s = NewServer::new("n", "img", "1");
        s.networks = Networks::Ids(vec!["net1".into()]);
        s.security_groups = vec!["default".into()];
        s.availability_zone = Some("nova".into());
        s.user_data = Some(b"#cloud-config\npassword: pw-in-user-data\n".to_vec());
        s.config_drive = true;
        s.metadata.insert("forge_run".into(), "r1".into());
        s.key_name = Some("k".into());
        let b = s.body(Microversion(2, 90)).unwrap();
        assert_eq!(b["server"]["networks"], json!([{"uuid": "net1"}]));
        assert_eq!(b["server"]["security_groups"], json!([{"name": "default"}]));
        assert_eq!(b["server"]["availability_zone"], "nova");
        assert_eq!(b["server"]["config_drive"], true);
        assert_eq!(b["server"]["metadata"]["forge_run"], "r1");
        assert_eq!(b["server"]["key_name"], "k");
        let ud = base64::engine::general_purpose::STANDARD
            .decode(b["server"]["user_data"].as_str().unwrap())
            .unwrap();
        assert_eq!(ud, s.user_data.clone().unwrap());
        assert!(!format!("{s:?}").contains("pw-in-user-data"));
        s.networks = Networks::None;
        assert!(s.body(Microversion(2, 36)).is_err());
        assert_eq!(
            s.body(Microversion(2, 37)).unwrap()["server"]["networks"],
            "none"
        );
    }
}
