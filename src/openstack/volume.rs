//! Cinder (Block Storage v3): volumes created empty or from an image (size, type, availability
//! zone), get, list, wait (an `error*` state fails the wait, with Cinder's user message when it
//! has one; Ctrl-C cancels it), delete, upload to Glance as an image.
//!
//! The endpoint is the catalog's `block-storage` entry, else `volumev3`, else `volume` (clouds
//! register Cinder under any of these names; `<type>_endpoint_override` applies to each). Its
//! URL already ends in the project id (`.../v3/<project>`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::error::Error;
use super::identity::Session;
use super::wait::{delete_idempotent, wait_for, Poll, WaitOptions};
use crate::pipeline::Progress;

/// The catalog types Cinder v3 is found under, in order of preference.
const SERVICE_TYPES: [&str; 3] = ["block-storage", "volumev3", "volume"];

/// One volume as Cinder shows it (the parts forge reads).
#[derive(Debug, Clone, Deserialize)]
pub struct Volume {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub status: String,
    /// GiB.
    pub size: u64,
    #[serde(default)]
    pub volume_type: Option<String>,
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// `"true"` once the volume holds an image (Cinder sends a string).
    #[serde(default)]
    pub bootable: String,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The image the volume was created from, when it was.
    #[serde(default)]
    pub volume_image_metadata: Option<BTreeMap<String, String>>,
}

impl Volume {
    /// Whether Cinder marks the volume bootable.
    pub fn is_bootable(&self) -> bool {
        self.bootable == "true"
    }
}

/// Where a volume is attached.
#[derive(Debug, Clone, Deserialize)]
pub struct Attachment {
    #[serde(default)]
    pub server_id: Option<String>,
    #[serde(default)]
    pub attachment_id: Option<String>,
    #[serde(default)]
    pub device: Option<String>,
}

/// Everything a volume is created with.
#[derive(Debug, Clone, Default)]
pub struct NewVolume {
    pub name: String,
    /// GiB; at least the image's size when `image_id` is set.
    pub size_gib: u64,
    /// Fill the volume from this Glance image (the volume becomes bootable).
    pub image_id: Option<String>,
    /// A volume type name or id; the cloud's default when `None`.
    pub volume_type: Option<String>,
    pub availability_zone: Option<String>,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

impl NewVolume {
    fn body(&self) -> Value {
        let mut v = json!({"name": self.name, "size": self.size_gib});
        if let Some(i) = &self.image_id {
            v["imageRef"] = json!(i);
        }
        if let Some(t) = &self.volume_type {
            v["volume_type"] = json!(t);
        }
        if let Some(az) = &self.availability_zone {
            v["availability_zone"] = json!(az);
        }
        if let Some(d) = &self.description {
            v["description"] = json!(d);
        }
        if !self.metadata.is_empty() {
            v["metadata"] = json!(self.metadata);
        }
        json!({ "volume": v })
    }
}

/// What `os-volume_upload_image` started: the new image's id (it is `queued`/`saving` until
/// Cinder has copied the data; wait for it with the image client).
#[derive(Debug, Clone, Deserialize)]
pub struct ImageUpload {
    pub image_id: String,
    #[serde(default)]
    pub image_name: String,
    #[serde(default)]
    pub disk_format: String,
    #[serde(default)]
    pub container_format: String,
}

#[derive(Deserialize)]
struct VolumeBody {
    volume: Volume,
}

/// Cinder client.
#[derive(Debug, Clone)]
pub struct VolumeClient {
    session: Arc<Session>,
}

impl VolumeClient {
    pub fn new(session: Arc<Session>) -> VolumeClient {
        VolumeClient { session }
    }

    /// The endpoint joined with `segments`, from the first catalog type that has one.
    async fn url(&self, segments: &[&str]) -> Result<Url, Error> {
        let mut first_err = None;
        for service in SERVICE_TYPES {
            match self.session.url(service, segments).await {
                Err(e @ Error::NoEndpoint { .. }) => {
                    first_err.get_or_insert(e);
                }
                other => return other,
            }
        }
        Err(first_err.unwrap_or_else(|| Error::Unsupported("no block-storage endpoint".into())))
    }

    /// Ask Cinder to create a volume; returns it at once (`creating`: record its id, then
    /// [`VolumeClient::wait_available`]).
    pub async fn create(&self, new: &NewVolume) -> Result<Volume, Error> {
        if new.size_gib == 0 {
            return Err(Error::InvalidValue {
                what: "volume size".into(),
                value: "0".into(),
                expected: "a size of at least 1 GiB".into(),
            });
        }
        let body = new.body();
        let url = self.url(&["volumes"]).await?;
        let b: VolumeBody = self
            .session
            .send_json(Method::POST, url, |r| r.json(&body))
            .await?;
        Ok(b.volume)
    }

    /// One volume.
    pub async fn get(&self, id: &str) -> Result<Volume, Error> {
        let url = self.url(&["volumes", id]).await?;
        let b: VolumeBody = self.session.send_json(Method::GET, url, |r| r).await?;
        Ok(b.volume)
    }

    /// This project's volumes, or only those named exactly `name`.
    pub async fn list(&self, name: Option<&str>) -> Result<Vec<Volume>, Error> {
        #[derive(Deserialize)]
        struct List {
            volumes: Vec<Volume>,
        }
        let url = self.url(&["volumes", "detail"]).await?;
        let b: List = self
            .session
            .send_json(Method::GET, url, |r| match name {
                Some(n) => r.query(&[("name", n)]),
                None => r,
            })
            .await?;
        Ok(b.volumes)
    }

    /// Wait until the volume is `available` (created, uploaded or detached). Any `error*`
    /// status fails the wait with Cinder's message for it; a vanished volume fails too.
    pub async fn wait_available(
        &self,
        id: &str,
        opts: WaitOptions,
        cancel: &CancellationToken,
        progress: &Progress,
    ) -> Result<Volume, Error> {
        self.wait_status(id, "available", opts, cancel, progress)
            .await
    }

    /// Wait until the volume is `in-use` (attached), failing like [`Self::wait_available`].
    pub async fn wait_in_use(
        &self,
        id: &str,
        opts: WaitOptions,
        cancel: &CancellationToken,
        progress: &Progress,
    ) -> Result<Volume, Error> {
        self.wait_status(id, "in-use", opts, cancel, progress).await
    }

    async fn wait_status(
        &self,
        id: &str,
        want: &str,
        opts: WaitOptions,
        cancel: &CancellationToken,
        progress: &Progress,
    ) -> Result<Volume, Error> {
        wait_for(
            &format!("volume {id} {want}"),
            opts,
            cancel,
            progress,
            || async {
                match self.get(id).await {
                    Ok(v) if v.status == want => Ok(Poll::Done(v)),
                    Ok(v) if v.status.starts_with("error") => {
                        Ok(Poll::Failed(self.error_text(&v).await))
                    }
                    Ok(v) if v.status == "deleting" => {
                        Ok(Poll::Failed("volume is being deleted".into()))
                    }
                    Ok(v) => Ok(Poll::Pending(v.status)),
                    Err(e) if e.is_not_found() => Ok(Poll::Failed("volume was deleted".into())),
                    Err(e) => Err(e),
                }
            },
        )
        .await
    }

    /// `status 'error'`, with Cinder's newest user message about the volume (microversion
    /// 3.3's `/messages`) when there is one: a volume has no fault field of its own.
    async fn error_text(&self, v: &Volume) -> String {
        #[derive(Deserialize)]
        struct Messages {
            messages: Vec<Message>,
        }
        #[derive(Deserialize)]
        struct Message {
            user_message: String,
        }
        let status = format!("volume status is '{}'", v.status);
        let Ok(url) = self.url(&["messages"]).await else {
            return status;
        };
        let found: Result<Messages, Error> = self
            .session
            .send_json(Method::GET, url, |r| {
                r.header("OpenStack-API-Version", "volume 3.3").query(&[
                    ("resource_uuid", v.id.as_str()),
                    ("sort", "created_at:desc"),
                ])
            })
            .await;
        match found {
            Ok(m) => match m.messages.first() {
                Some(msg) => format!("{status}: {}", msg.user_message),
                None => status,
            },
            Err(_) => status,
        }
    }

    /// Delete; `Ok(false)` when the volume was already gone. Retries transient errors, and for
    /// a while a 400 (Cinder refuses while the volume is busy, e.g. still detaching).
    pub async fn delete(&self, id: &str) -> Result<bool, Error> {
        let url = self.url(&["volumes", id]).await?;
        delete_idempotent(
            Duration::from_secs(30),
            |e| e.status() == Some(400),
            || self.session.send(Method::DELETE, url.clone(), |r| r),
        )
        .await
    }

    /// Wait until the volume is gone (404); `error_deleting` fails the wait.
    pub async fn wait_deleted(
        &self,
        id: &str,
        opts: WaitOptions,
        cancel: &CancellationToken,
        progress: &Progress,
    ) -> Result<(), Error> {
        wait_for(
            &format!("volume {id} deleted"),
            opts,
            cancel,
            progress,
            || async {
                match self.get(id).await {
                    Ok(v) if v.status.starts_with("error") => {
                        Ok(Poll::Failed(self.error_text(&v).await))
                    }
                    Ok(v) => Ok(Poll::Pending(v.status)),
                    Err(e) if e.is_not_found() => Ok(Poll::Done(())),
                    Err(e) => Err(e),
                }
            },
        )
        .await
    }

    /// Copy the volume's data into a new Glance image `image_name` (`os-volume_upload_image`)
    /// in `disk_format` (`raw`, `qcow2`, ...; Cinder converts), container `bare`. `force`
    /// uploads an attached (`in-use`) volume. The volume is `uploading` until the copy is done.
    pub async fn upload_to_image(
        &self,
        id: &str,
        image_name: &str,
        disk_format: &str,
        force: bool,
    ) -> Result<ImageUpload, Error> {
        #[derive(Deserialize)]
        struct Body {
            #[serde(rename = "os-volume_upload_image")]
            upload: ImageUpload,
        }
        let body = json!({"os-volume_upload_image": {
            "image_name": image_name,
            "disk_format": disk_format,
            "container_format": "bare",
            "force": force,
        }});
        let url = self.url(&["volumes", id, "action"]).await?;
        let b: Body = self
            .session
            .send_json(Method::POST, url, |r| r.json(&body))
            .await?;
        Ok(b.upload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_carries_only_what_is_set() {
        let plain = NewVolume {
            name: "v".into(),
            size_gib: 1,
            ..Default::default()
        };
        assert_eq!(plain.body(), json!({"volume": {"name": "v", "size": 1}}));
        let full = NewVolume {
            name: "v".into(),
            size_gib: 2,
            image_id: Some("img".into()),
            volume_type: Some("fast".into()),
            availability_zone: Some("az1".into()),
            description: Some("d".into()),
            metadata: [("k".to_string(), "x".to_string())].into(),
        };
        assert_eq!(
            full.body(),
            json!({"volume": {"name": "v", "size": 2, "imageRef": "img", "volume_type": "fast",
                "availability_zone": "az1", "description": "d", "metadata": {"k": "x"}}})
        );
    }
}
