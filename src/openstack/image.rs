//! Glance v2: list with server-side filters and pagination, get, create, streamed upload with
//! checksum verification, JSON-patch update, members, delete.
//!
//! Glance behaviours this client is built around (observed on the test cloud):
//! repeated `tag=` is AND; the `next` link drops repeated parameters, so the next page is
//! built from our own filters plus `marker`; unknown query keys are property filters
//! (`foo=bar`); `member_status` defaults to `accepted`; errors come as HTML unless
//! `Accept: application/json` is sent (the session always sends it).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Digest;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use super::error::Error;
use super::identity::Session;
use super::wait::{delete_idempotent, wait_for, Poll, WaitOptions};
use crate::pipeline::Progress;

const SERVICE: &str = "image";

/// One Glance image. Properties Glance does not define are in `properties`.
#[derive(Debug, Clone, Deserialize)]
pub struct Image {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub status: String,
    #[serde(default)]
    pub visibility: String,
    #[serde(default)]
    pub owner: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub size: Option<u64>,
    /// MD5 of the data (legacy).
    #[serde(default)]
    pub checksum: Option<String>,
    #[serde(default)]
    pub os_hash_algo: Option<String>,
    #[serde(default)]
    pub os_hash_value: Option<String>,
    #[serde(default)]
    pub min_disk: u64,
    #[serde(default)]
    pub min_ram: u64,
    #[serde(default)]
    pub disk_format: Option<String>,
    #[serde(default)]
    pub container_format: Option<String>,
    /// Every other key: user properties and Glance's own extras (`self`, `file`, ...).
    #[serde(flatten)]
    pub properties: BTreeMap<String, Value>,
}

impl Image {
    /// A user property as text (`None` when absent or not a string).
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties.get(key).and_then(Value::as_str)
    }

    /// Whether the image is hidden (`os_hidden`): left out of listings unless asked for.
    pub fn hidden(&self) -> bool {
        self.properties
            .get("os_hidden")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// `id (name, created 2026-…)`, how steps print an image.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}, created {})",
            self.id,
            self.name.as_deref().unwrap_or("<no name>"),
            self.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }
}

macro_rules! api_enum {
    ($(#[$m:meta])* $name:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, as the API spells it.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The API's spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(Error::InvalidValue {
                        what: $what.into(),
                        value: s.into(),
                        expected: [$($text),+].join(", "),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

api_enum!(
    /// Who can see an image.
    Visibility, "visibility", {
        Public => "public", Private => "private", Shared => "shared", Community => "community",
    }
);

api_enum!(
    /// An image's lifecycle state.
    ImageStatus, "image status", {
        Queued => "queued", Saving => "saving", Active => "active", Killed => "killed",
        Deleted => "deleted", PendingDelete => "pending_delete", Deactivated => "deactivated",
        Uploading => "uploading", Importing => "importing",
    }
);

api_enum!(
    /// A project's answer to an image shared with it.
    MemberStatus, "member_status", {
        Accepted => "accepted", Pending => "pending", Rejected => "rejected", All => "all",
    }
);

/// Query keys Glance (or this client) gives a meaning: not usable as property filters.
const RESERVED_KEYS: &[&str] = &[
    "name",
    "owner",
    "tag",
    "tags",
    "visibility",
    "member_status",
    "status",
    "sort",
    "sort_key",
    "sort_dir",
    "limit",
    "marker",
];

/// Server-side filters for [`ImageClient::list`]. Every field becomes a query parameter; the
/// same parameters are repeated on every page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageQuery {
    /// Exact name.
    pub name: Option<String>,
    /// Owning project id.
    pub owner: Option<String>,
    /// All of these tags (Glance ANDs repeated `tag=`).
    pub tags: Vec<String>,
    pub visibility: Option<Visibility>,
    pub member_status: Option<MemberStatus>,
    pub status: Option<ImageStatus>,
    /// Property equality filters, e.g. `os_distro=ubuntu`.
    pub properties: BTreeMap<String, String>,
    /// `key:dir[,key:dir]`, e.g. `created_at:desc,id:asc`.
    pub sort: Option<String>,
}

impl ImageQuery {
    /// The query parameters, in a stable order. Rejects property names that would collide
    /// with a real filter (they would silently change the query otherwise).
    pub fn params(&self) -> Result<Vec<(String, String)>, Error> {
        let mut p: Vec<(String, String)> = Vec::new();
        let mut push = |k: &str, v: &str| p.push((k.to_string(), v.to_string()));
        if let Some(v) = &self.name {
            push("name", &exact_name(v)?);
        }
        if let Some(v) = &self.owner {
            push("owner", v);
        }
        for t in &self.tags {
            push("tag", t);
        }
        if let Some(v) = self.visibility {
            push("visibility", v.as_str());
        }
        if let Some(v) = self.member_status {
            push("member_status", v.as_str());
        }
        if let Some(v) = self.status {
            push("status", v.as_str());
        }
        for (k, v) in &self.properties {
            if RESERVED_KEYS.contains(&k.as_str()) || k.is_empty() {
                return Err(Error::InvalidValue {
                    what: "property filter name".into(),
                    value: k.clone(),
                    expected: format!(
                        "a property name other than {} (use the dedicated filter)",
                        RESERVED_KEYS.join(", ")
                    ),
                });
            }
            push(k, v);
        }
        if let Some(v) = &self.sort {
            push("sort", v);
        }
        Ok(p)
    }

    /// `GET /v2/images?…` as a human reads it, for "no match" errors.
    pub fn describe(&self) -> String {
        match self.params() {
            Ok(p) if !p.is_empty() => {
                let q: Vec<String> = p.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("GET /v2/images?{}", q.join("&"))
            }
            _ => "GET /v2/images".into(),
        }
    }
}

/// The `name=` value that matches `name` exactly. Glance reads `name=in:a,b` as "a or b", so a
/// name starting with `in:` is sent quoted (`in:"in:a,b"`); Glance has no escape for a `"`
/// inside the quotes, so such a name cannot be matched exactly and is refused.
fn exact_name(name: &str) -> Result<String, Error> {
    if !name.starts_with("in:") {
        return Ok(name.to_string());
    }
    if name.contains('"') {
        return Err(Error::InvalidValue {
            what: "image name filter".into(),
            value: name.into(),
            expected: "a name that does not both start with `in:` and contain `\"` \
                (Glance cannot match that exactly)"
                .into(),
        });
    }
    Ok(format!("in:\"{name}\""))
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct ImagePage {
    pub images: Vec<Image>,
    /// Glance said there may be more (it sent a `next` link).
    pub more: bool,
}

#[derive(Deserialize)]
struct ListBody {
    images: Vec<Image>,
    #[serde(default)]
    next: Option<String>,
}

/// A new image's record (no data yet).
#[derive(Debug, Clone)]
pub struct NewImage {
    pub name: String,
    pub disk_format: String,
    pub container_format: String,
    /// Glance's default, when unset, is `shared`.
    pub visibility: Option<Visibility>,
    pub tags: Vec<String>,
    pub min_disk: Option<u64>,
    pub min_ram: Option<u64>,
    pub properties: BTreeMap<String, String>,
}

impl NewImage {
    /// A raw/bare image with just a name.
    pub fn named(name: &str) -> NewImage {
        NewImage {
            name: name.into(),
            disk_format: "raw".into(),
            container_format: "bare".into(),
            visibility: None,
            tags: Vec::new(),
            min_disk: None,
            min_ram: None,
            properties: BTreeMap::new(),
        }
    }
}

/// Changes to an image, sent as one JSON-patch request.
#[derive(Debug, Clone, Default)]
pub struct ImageUpdate {
    pub name: Option<String>,
    /// Set (add or replace) these properties.
    pub set_properties: BTreeMap<String, String>,
    pub remove_properties: Vec<String>,
    /// Tags added to the image's current tags.
    pub add_tags: Vec<String>,
    pub visibility: Option<Visibility>,
    pub min_disk: Option<u64>,
}

impl ImageUpdate {
    /// The JSON-patch operations that take `current` to the wanted state (`add` for new
    /// properties, `replace` for existing ones, as Glance requires).
    pub fn patch(&self, current: &Image) -> Vec<Value> {
        let mut ops = Vec::new();
        if let Some(name) = &self.name {
            ops.push(json!({"op": "replace", "path": "/name", "value": name}));
        }
        for (k, v) in &self.set_properties {
            let op = if current.properties.contains_key(k) {
                "replace"
            } else {
                "add"
            };
            ops.push(json!({"op": op, "path": pointer(k), "value": v}));
        }
        for k in &self.remove_properties {
            if current.properties.contains_key(k) {
                ops.push(json!({"op": "remove", "path": pointer(k)}));
            }
        }
        if !self.add_tags.is_empty() {
            let mut tags = current.tags.clone();
            for t in &self.add_tags {
                if !tags.contains(t) {
                    tags.push(t.clone());
                }
            }
            ops.push(json!({"op": "replace", "path": "/tags", "value": tags}));
        }
        if let Some(v) = self.visibility {
            ops.push(json!({"op": "replace", "path": "/visibility", "value": v.as_str()}));
        }
        if let Some(d) = self.min_disk {
            ops.push(json!({"op": "replace", "path": "/min_disk", "value": d}));
        }
        ops
    }
}

/// A JSON pointer to a top-level key (RFC 6901 escaping).
fn pointer(key: &str) -> String {
    format!("/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// What an upload did.
#[derive(Debug, Clone)]
pub struct UploadReport {
    pub bytes: u64,
    pub elapsed: Duration,
    /// The image as Glance holds it after the upload (status `active`).
    pub image: Image,
}

impl UploadReport {
    /// Throughput in MiB/s.
    pub fn mib_per_sec(&self) -> f64 {
        self.bytes as f64 / (1024.0 * 1024.0) / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Glance v2 client.
#[derive(Debug, Clone)]
pub struct ImageClient {
    session: Arc<Session>,
}

impl ImageClient {
    pub fn new(session: Arc<Session>) -> ImageClient {
        ImageClient { session }
    }

    /// The session this client sends through (for request counts).
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// One page: the query's parameters plus `limit` and `marker` (the last id of the previous
    /// page). One request.
    pub async fn list_page(
        &self,
        query: &ImageQuery,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<ImagePage, Error> {
        let mut params = query.params()?;
        if let Some(l) = limit {
            params.push(("limit".into(), l.to_string()));
        }
        if let Some(m) = marker {
            params.push(("marker".into(), m.to_string()));
        }
        let url = self.session.url(SERVICE, &["v2", "images"]).await?;
        let body: ListBody = self
            .session
            .send_json(Method::GET, url, |r| r.query(&params))
            .await?;
        Ok(ImagePage {
            more: body.next.is_some() && !body.images.is_empty(),
            images: body.images,
        })
    }

    /// Every image matching `query`, `page_size` per request (Glance's default 25 when
    /// `None`). Pages are chained by `marker`, never by Glance's `next` link.
    pub async fn list(
        &self,
        query: &ImageQuery,
        page_size: Option<u32>,
    ) -> Result<Vec<Image>, Error> {
        let mut all: Vec<Image> = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self.list_page(query, page_size, marker.as_deref()).await?;
            let more = page.more;
            all.extend(page.images);
            match (more, all.last()) {
                (true, Some(last)) if marker.as_deref() != Some(last.id.as_str()) => {
                    marker = Some(last.id.clone())
                }
                _ => break,
            }
        }
        Ok(all)
    }

    /// Every image matching `query`, hidden ones included. Glance lists either the visible
    /// images (by default) or only the hidden ones (`os_hidden=true`, which Glance reads as its
    /// own filter, not a property one), so this asks both ways. Newest first (`created_at`,
    /// then id, both descending: `created_at` has 1 s resolution on MySQL-backed clouds).
    pub async fn list_with_hidden(
        &self,
        query: &ImageQuery,
        page_size: Option<u32>,
    ) -> Result<Vec<Image>, Error> {
        let mut all = self.list(query, page_size).await?;
        let mut hidden = query.clone();
        hidden.properties.insert("os_hidden".into(), "true".into());
        all.extend(self.list(&hidden, page_size).await?);
        all.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        all.dedup_by(|a, b| a.id == b.id);
        Ok(all)
    }

    /// Hide or unhide the image (`os_hidden`, a boolean Glance will not take as a string).
    pub async fn set_hidden(&self, id: &str, hidden: bool) -> Result<Image, Error> {
        let body = json!([{"op": "replace", "path": "/os_hidden", "value": hidden}]).to_string();
        self.patch(id, body.into_bytes()).await
    }

    /// One JSON-patch request (RFC 6902, Glance's media type) on image `id`.
    async fn patch(&self, id: &str, body: Vec<u8>) -> Result<Image, Error> {
        let url = self.session.url(SERVICE, &["v2", "images", id]).await?;
        self.session
            .send_json(Method::PATCH, url, |r| {
                r.header(
                    "Content-Type",
                    "application/openstack-images-v2.1-json-patch",
                )
                .body(body)
            })
            .await
    }

    /// Add one tag (idempotent; other tags are untouched, so concurrent tag changes do not
    /// overwrite each other as a whole-list replace would).
    pub async fn add_tag(&self, id: &str, tag: &str) -> Result<(), Error> {
        let url = self
            .session
            .url(SERVICE, &["v2", "images", id, "tags", tag])
            .await?;
        self.session.send(Method::PUT, url, |r| r).await.map(drop)
    }

    /// Remove one tag; `Ok(false)` when the image did not carry it.
    pub async fn remove_tag(&self, id: &str, tag: &str) -> Result<bool, Error> {
        let url = self
            .session
            .url(SERVICE, &["v2", "images", id, "tags", tag])
            .await?;
        match self.session.send(Method::DELETE, url, |r| r).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One image by id.
    pub async fn get(&self, id: &str) -> Result<Image, Error> {
        let url = self.session.url(SERVICE, &["v2", "images", id]).await?;
        self.session.send_json(Method::GET, url, |r| r).await
    }

    /// Create the record; the image is `queued` until data is uploaded.
    pub async fn create(&self, new: &NewImage) -> Result<Image, Error> {
        let mut body = json!({
            "name": new.name,
            "disk_format": new.disk_format,
            "container_format": new.container_format,
        });
        if let Some(v) = new.visibility {
            body["visibility"] = json!(v.as_str());
        }
        if !new.tags.is_empty() {
            body["tags"] = json!(new.tags);
        }
        if let Some(d) = new.min_disk {
            body["min_disk"] = json!(d);
        }
        if let Some(r) = new.min_ram {
            body["min_ram"] = json!(r);
        }
        for (k, v) in &new.properties {
            body[k] = json!(v);
        }
        let url = self.session.url(SERVICE, &["v2", "images"]).await?;
        self.session
            .send_json(Method::POST, url, |r| r.json(&body))
            .await
    }

    /// Stream `path` into the image (constant memory: 1 MiB chunks), hashing on the way, then
    /// check the result against Glance's `os_hash_value` (sha512 by default) and `checksum`
    /// (md5). Progress shows bytes sent and throughput.
    pub async fn upload_file(
        &self,
        id: &str,
        path: &Path,
        progress: &Progress,
    ) -> Result<UploadReport, Error> {
        let io_err = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = tokio::fs::File::open(path).await.map_err(io_err)?;
        let size = file.metadata().await.map_err(io_err)?.len();
        let hashes = Arc::new(Mutex::new(Hashes::new()));
        let line =
            Arc::new(progress.spinner(&format!("uploading {} to image {id}", path.display())));
        let started = Instant::now();

        // Why hand-rolled: the body must hash and report progress as it streams, so a plain
        // `ReaderStream` is not enough; `unfold` keeps the state in one place.
        let state = (file, hashes.clone(), 0u64, line.clone(), started);
        let stream = futures::stream::unfold(
            state,
            move |(mut file, hashes, sent, line, t0)| async move {
                let mut buf = vec![0u8; 1 << 20];
                match file.read(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        if let Ok(mut h) = hashes.lock() {
                            h.update(&buf);
                        }
                        let sent = sent + n as u64;
                        let secs = t0.elapsed().as_secs_f64().max(1e-3);
                        line.set_message(&format!(
                            "  uploading: {} / {} MiB ({:.0} MiB/s)",
                            sent >> 20,
                            size >> 20,
                            sent as f64 / 1048576.0 / secs
                        ));
                        Some((Ok::<_, std::io::Error>(buf), (file, hashes, sent, line, t0)))
                    }
                    Err(e) => Some((Err(e), (file, hashes, sent, line, t0))),
                }
            },
        );
        let url = self
            .session
            .url(SERVICE, &["v2", "images", id, "file"])
            .await?;
        let sent = self
            .session
            .send(Method::PUT, url, |r| {
                // Bounded, but by the size: 5 minutes plus 1 s per MiB (≥ 1 MiB/s).
                r.timeout(Duration::from_secs(300 + (size >> 20)))
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Length", size)
                    .body(reqwest::Body::wrap_stream(stream))
            })
            .await;
        let elapsed = started.elapsed();
        // The body (and its clone of the line) is dropped once the request is done.
        if let Ok(line) = Arc::try_unwrap(line) {
            line.finish(sent.is_ok(), elapsed);
        }
        sent?;

        let image = self.get(id).await?;
        let (sha512, md5) = match hashes.lock() {
            Ok(h) => h.clone().finish(),
            Err(_) => {
                return Err(Error::Unsupported(
                    "upload hashing state was poisoned".into(),
                ))
            }
        };
        verify_hashes(&image, &sha512, &md5)?;
        Ok(UploadReport {
            bytes: size,
            elapsed,
            image,
        })
    }

    /// Apply `update` to `current` in one JSON-patch request; returns the updated image.
    pub async fn update(&self, current: &Image, update: &ImageUpdate) -> Result<Image, Error> {
        let ops = update.patch(current);
        if ops.is_empty() {
            return Ok(current.clone());
        }
        let body = serde_json::to_vec(&ops).map_err(|e| Error::Protocol {
            method: "PATCH".into(),
            url: format!("image {}", current.id),
            message: e.to_string(),
        })?;
        self.patch(&current.id, body).await
    }

    /// Share the image with a project (its status there starts `pending`).
    pub async fn add_member(&self, image_id: &str, project_id: &str) -> Result<(), Error> {
        let url = self
            .session
            .url(SERVICE, &["v2", "images", image_id, "members"])
            .await?;
        self.session
            .send(Method::POST, url, |r| {
                r.json(&json!({"member": project_id}))
            })
            .await
            .map(drop)
    }

    /// As the member project: accept (or reject) an image shared with it.
    pub async fn set_member_status(
        &self,
        image_id: &str,
        project_id: &str,
        status: MemberStatus,
    ) -> Result<(), Error> {
        let url = self
            .session
            .url(SERVICE, &["v2", "images", image_id, "members", project_id])
            .await?;
        self.session
            .send(Method::PUT, url, |r| {
                r.json(&json!({"status": status.as_str()}))
            })
            .await
            .map(drop)
    }

    /// Delete; `Ok(false)` when the image was already gone. Retries transient errors for
    /// up to 30 s (cleanup must not leak an image because Glance was busy).
    pub async fn delete(&self, id: &str) -> Result<bool, Error> {
        let url = self.session.url(SERVICE, &["v2", "images", id]).await?;
        delete_idempotent(
            Duration::from_secs(30),
            |_| false,
            || self.session.send(Method::DELETE, url.clone(), |r| r),
        )
        .await
    }

    /// Wait until the image is `active`; `killed`, `deleted` and `pending_delete` (or the
    /// image vanishing) are failures.
    pub async fn wait_active(
        &self,
        id: &str,
        opts: WaitOptions,
        cancel: &CancellationToken,
        progress: &Progress,
    ) -> Result<Image, Error> {
        wait_for(
            &format!("image {id} active"),
            opts,
            cancel,
            progress,
            || async {
                match self.get(id).await {
                    Ok(img) => Ok(match img.status.as_str() {
                        "active" => Poll::Done(img),
                        s @ ("killed" | "deleted" | "pending_delete" | "deactivated") => {
                            Poll::Failed(format!("image status is '{s}'"))
                        }
                        s => Poll::Pending(s.to_string()),
                    }),
                    Err(e) if e.is_not_found() => Ok(Poll::Failed("image was deleted".into())),
                    Err(e) => Err(e),
                }
            },
        )
        .await
    }
}

#[derive(Clone)]
struct Hashes {
    sha512: sha2::Sha512,
    md5: md5::Context,
}

impl Hashes {
    fn new() -> Hashes {
        Hashes {
            sha512: sha2::Sha512::new(),
            md5: md5::Context::new(),
        }
    }
    fn update(&mut self, data: &[u8]) {
        self.sha512.update(data);
        self.md5.consume(data);
    }
    fn finish(self) -> (String, String) {
        (
            hex::encode(self.sha512.finalize()),
            format!("{:x}", self.md5.finalize()),
        )
    }
}

fn verify_hashes(image: &Image, sha512: &str, md5: &str) -> Result<(), Error> {
    let mismatch = |algo: &str, local: &str, remote: &str| Error::Checksum {
        image: image.id.clone(),
        algo: algo.into(),
        local: local.into(),
        remote: remote.into(),
    };
    match (
        image.os_hash_algo.as_deref(),
        image.os_hash_value.as_deref(),
    ) {
        (Some("sha512"), Some(v)) if v != sha512 => return Err(mismatch("sha512", sha512, v)),
        (Some("sha512"), Some(_)) => {}
        (Some(other), Some(_)) => {
            tracing::warn!(
                "image {}: Glance hashes with {other}; verified the md5 checksum only",
                image.id
            );
        }
        _ => {}
    }
    match image.checksum.as_deref() {
        Some(v) if v != md5 => Err(mismatch("md5", md5, v)),
        Some(_) => Ok(()),
        None if image.os_hash_value.is_none() => Err(Error::Protocol {
            method: "GET".into(),
            url: format!("image {}", image.id),
            message: "Glance reported neither os_hash_value nor checksum after the upload".into(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(props: &[(&str, &str)], tags: &[&str]) -> Image {
        let mut v = json!({"id": "i", "status": "active", "created_at": "2026-01-01T00:00:00Z",
            "tags": tags});
        for (k, val) in props {
            v[*k] = json!(val);
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn query_params_repeat_tags_keep_properties_and_reject_reserved_names() {
        let mut q = ImageQuery {
            name: Some("n".into()),
            tags: vec!["a".into(), "b".into()],
            status: Some(ImageStatus::Active),
            sort: Some("created_at:desc".into()),
            ..Default::default()
        };
        q.properties.insert("os_distro".into(), "debian".into());
        let p = q.params().unwrap();
        let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            p,
            vec![
                ("name", "n"),
                ("tag", "a"),
                ("tag", "b"),
                ("status", "active"),
                ("os_distro", "debian"),
                ("sort", "created_at:desc")
            ]
        );
        q.properties.insert("marker".into(), "x".into());
        assert!(q.params().unwrap_err().to_string().contains("marker"));
    }

    #[test]
    fn names_that_look_like_the_in_operator_are_quoted() {
        assert_eq!(exact_name("plain, \"name\"").unwrap(), "plain, \"name\"");
        assert_eq!(exact_name("in:a,b").unwrap(), "in:\"in:a,b\"");
        assert!(exact_name("in:a\"b").is_err());
    }

    #[test]
    fn enum_values_parse_or_name_the_choices() {
        assert_eq!(
            "community".parse::<Visibility>().unwrap(),
            Visibility::Community
        );
        let e = "Public".parse::<Visibility>().unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid visibility 'Public': expected public, private, shared, community"
        );
        assert!("bogus".parse::<MemberStatus>().is_err());
    }

    #[test]
    fn patch_adds_new_replaces_existing_and_unions_tags() {
        let cur = image(&[("a", "1")], &["t1"]);
        let up = ImageUpdate {
            set_properties: [("a".into(), "2".into()), ("b/c".into(), "3".into())].into(),
            add_tags: vec!["t1".into(), "t2".into()],
            visibility: Some(Visibility::Private),
            min_disk: Some(5),
            ..Default::default()
        };
        assert_eq!(
            up.patch(&cur),
            vec![
                json!({"op": "replace", "path": "/a", "value": "2"}),
                json!({"op": "add", "path": "/b~1c", "value": "3"}),
                json!({"op": "replace", "path": "/tags", "value": ["t1", "t2"]}),
                json!({"op": "replace", "path": "/visibility", "value": "private"}),
                json!({"op": "replace", "path": "/min_disk", "value": 5}),
            ]
        );
    }

    #[test]
    fn checksum_mismatch_is_reported() {
        let img = image(
            &[
                ("os_hash_algo", "sha512"),
                ("os_hash_value", "aa"),
                ("checksum", "bb"),
            ],
            &[],
        );
        let e = verify_hashes(&img, "cc", "bb").unwrap_err().to_string();
        assert!(
            e.contains("sha512") && e.contains("cc") && e.contains("aa"),
            "{e}"
        );
        assert!(verify_hashes(&img, "aa", "bb").is_ok());
        assert!(verify_hashes(&img, "aa", "xx").is_err());
    }
}
