//! Retention and promotion of one build's images: which to keep, hide or delete, and which image
//! a channel tag (such as `stable`) points at.
//!
//! **A build's images** are the images of the current project (`owner`) whose `forge_template`
//! and `forge_build` properties name the build (see [`crate::names::forge_properties`]), hidden
//! ones included (Glance leaves those out of listings unless asked, so they are asked for
//! separately: that is how hidden images still age out). Newest first by `created_at`; ties
//! (1 s resolution on MySQL-backed clouds) are broken by id, descending.
//!
//! **Channels** are Glance tags of the form `channel:NAME` (`channel:stable`): recognised by the
//! prefix alone, so a tag set by hand (`openstack image set --tag channel:stable`) counts too,
//! and no other tag (the template's own `image_tags`) is ever mistaken for one. An image holding
//! any channel tag is never hidden or deleted.
//!
//! **The plan is data** ([`plan`]): which image gets which [`Action`] and why, decided from the
//! images, the [`Retention`] settings, the time and what Nova said about servers using them.
//! [`apply`] acts on a plan and re-checks servers just before each delete.
//!
//! **Who can see which servers**: an admin lists every project's servers booted from an image
//! (`all_tenants`). Anyone else sees only their own project's servers, so an image visible to
//! other projects (public, shared, community) may be in use where they cannot look: such an
//! image is never deleted by a non-admin (hidden at most), see [`UsageChecker`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::names;
use crate::openstack::compute::ComputeClient;
use crate::openstack::image::{Image, ImageClient, ImageQuery};
use crate::openstack::Error as ApiError;
pub use crate::template::Retention;

/// The tag prefix that marks a channel tag: `channel:stable`.
pub const CHANNEL_PREFIX: &str = "channel:";

/// How many servers using an image are named in messages.
const SERVERS_SHOWN: u32 = 5;

/// What can go wrong listing, planning or acting on a build's images.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The token is not scoped to a project, so "this project's images" means nothing.
    #[error(
        "the credentials are not scoped to a project; retention works on one project's images"
    )]
    NoProject,
    #[error("invalid channel name '{name}': {why}")]
    BadChannel { name: String, why: String },
    #[error("image {image} is not an image of {build}: {why}")]
    NotOfBuild {
        image: String,
        build: String,
        why: String,
    },
    #[error("image {image} is '{status}', only an active image can be promoted")]
    NotActive { image: String, status: String },
}

/// Which build's images: the `forge_template` and `forge_build` properties, in one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildId {
    /// The template's file name (`forge_template`).
    pub template: String,
    /// The build label, e.g. `nightly.openstack.debian` (`forge_build`).
    pub build: String,
    /// The owning project's id.
    pub owner: String,
}

impl BuildId {
    /// The identity of build `label` of `template` in the project `images` is logged in to.
    pub async fn of(images: &ImageClient, template: &Path, label: &str) -> Result<BuildId, Error> {
        let owner = images
            .session()
            .project_id()
            .await?
            .ok_or(Error::NoProject)?;
        Ok(BuildId {
            template: names::template_file(template),
            build: label.to_string(),
            owner,
        })
    }

    /// The Glance query for this build's (visible) images.
    pub fn query(&self) -> ImageQuery {
        ImageQuery {
            owner: Some(self.owner.clone()),
            properties: BTreeMap::from([
                (names::TEMPLATE.to_string(), self.template.clone()),
                (names::BUILD.to_string(), self.build.clone()),
            ]),
            ..ImageQuery::default()
        }
    }

    /// Why `image` is not one of this build's images, or `None` when it is.
    pub fn mismatch(&self, image: &Image) -> Option<String> {
        let owner = image.owner.as_deref().unwrap_or("");
        if owner != self.owner {
            return Some(format!("owned by project '{owner}', not '{}'", self.owner));
        }
        for (key, want) in [
            (names::TEMPLATE, &self.template),
            (names::BUILD, &self.build),
        ] {
            match image.property(key) {
                Some(v) if v == want => {}
                Some(v) => return Some(format!("{key} is '{v}', not '{want}'")),
                None => return Some(format!("it has no {key} property")),
            }
        }
        None
    }
}

impl fmt::Display for BuildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "build {} of template {}", self.build, self.template)
    }
}

/// The build's images (hidden ones included), newest first.
pub async fn list(images: &ImageClient, build: &BuildId) -> Result<Vec<Image>, Error> {
    Ok(images.list_with_hidden(&build.query(), Some(100)).await?)
}

/// The tag that marks channel `name` (`stable` → `channel:stable`). Names are what a tag can
/// carry safely in URLs and shells: letters, digits, `.`, `_`, `-`, at most 64.
pub fn channel_tag(name: &str) -> Result<String, Error> {
    let bad = |why: &str| Error::BadChannel {
        name: name.to_string(),
        why: why.to_string(),
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.len() > 64 {
        return Err(bad("longer than 64 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(bad("use only letters, digits, '.', '_' and '-'"));
    }
    Ok(format!("{CHANNEL_PREFIX}{name}"))
}

/// The channel tags an image holds.
pub fn channels(image: &Image) -> Vec<&str> {
    image
        .tags
        .iter()
        .map(String::as_str)
        .filter(|t| t.starts_with(CHANNEL_PREFIX))
        .collect()
}

/// Whether servers use an image, as far as this account can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Usage {
    /// No server (that this account can see, and it can see all that matter) uses it.
    Unused,
    /// These servers (ids, at most a few) were booted from it.
    InUse(Vec<String>),
    /// Not known; the text says why (the image is then never deleted).
    Unknown(String),
}

/// What retention does with one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Leave it as it is.
    Keep,
    /// Set `os_hidden`.
    Hide,
    /// Delete it.
    Delete,
    /// Not an active image: neither counted nor touched (a failed or unfinished upload).
    Skip,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::Hide => "hide",
            Action::Delete => "delete",
            Action::Skip => "skip",
        }
    }
}

/// One image and what the plan does with it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub image: Image,
    pub action: Action,
    /// Why, for humans.
    pub reason: String,
}

impl Entry {
    /// `hide    ID (name, created …) [hidden] [channel:stable]: reason`, one line.
    pub fn line(&self) -> String {
        let mut marks = String::new();
        if self.image.hidden() {
            marks.push_str(" [hidden]");
        }
        for c in channels(&self.image) {
            marks.push_str(&format!(" [{c}]"));
        }
        format!(
            "{:<7} {}{marks}: {}",
            self.action.as_str(),
            self.image.describe(),
            self.reason
        )
    }
}

/// The images whose fate depends on whether servers use them: active, beyond the newest
/// `keep`, holding no channel tag, and at least `delete_unused_after` old. Ask Nova about these
/// (see [`UsageChecker`]) and pass the answers to [`plan`].
pub fn deletion_candidates<'a>(
    images: &'a [Image],
    policy: &Retention,
    now: DateTime<Utc>,
) -> Vec<&'a Image> {
    classify(images, policy, now)
        .into_iter()
        .filter_map(|(image, c)| matches!(c, Class::Old { past_limit: true }).then_some(image))
        .collect()
}

/// The plan for `images` (newest first, as [`list`] returns them). `usage` holds what Nova said
/// about the [`deletion_candidates`]; a candidate missing from it is not deleted.
pub fn plan(
    images: &[Image],
    policy: &Retention,
    now: DateTime<Utc>,
    usage: &BTreeMap<String, Usage>,
) -> Vec<Entry> {
    let keep = policy.keep;
    classify(images, policy, now)
        .into_iter()
        .map(|(image, class)| {
            let (action, reason) = match class {
                Class::Inactive => (
                    Action::Skip,
                    format!("status '{}': not counted, not touched", image.status),
                ),
                Class::Newest(n) => (Action::Keep, format!("newest, {n} of {keep} kept")),
                Class::Channel => (
                    Action::Keep,
                    format!("holds {}", channels(image).join(", ")),
                ),
                Class::Old { past_limit } => old(image, policy, now, past_limit, usage),
            };
            Entry {
                image: image.clone(),
                action,
                reason,
            }
        })
        .collect()
}

/// How an image stands before servers are asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Inactive,
    /// The n-th newest active image, n ≤ keep.
    Newest(u32),
    Channel,
    /// Beyond the newest `keep`; `past_limit`: old enough to delete if unused.
    Old {
        past_limit: bool,
    },
}

fn classify<'a>(
    images: &'a [Image],
    policy: &Retention,
    now: DateTime<Utc>,
) -> Vec<(&'a Image, Class)> {
    let mut active = 0u32;
    images
        .iter()
        .map(|image| {
            let class = if image.status != "active" {
                Class::Inactive
            } else {
                active += 1;
                if active <= policy.keep {
                    Class::Newest(active)
                } else if !channels(image).is_empty() {
                    Class::Channel
                } else {
                    Class::Old {
                        past_limit: policy
                            .delete_unused_after
                            .is_some_and(|limit| age(image, now) >= limit),
                    }
                }
            };
            (image, class)
        })
        .collect()
}

/// An image beyond the newest `keep` with no channel: delete, hide or keep it.
fn old(
    image: &Image,
    policy: &Retention,
    now: DateTime<Utc>,
    past_limit: bool,
    usage: &BTreeMap<String, Usage>,
) -> (Action, String) {
    let beyond = format!("older than the newest {}", policy.keep);
    let hide_or_keep = |why: String| {
        if policy.hide_older && !image.hidden() {
            (Action::Hide, why)
        } else if image.hidden() {
            (Action::Keep, format!("{why}; already hidden"))
        } else {
            (Action::Keep, format!("{why}; hide_older is off"))
        }
    };
    if !past_limit {
        return hide_or_keep(beyond);
    }
    let limit = policy.delete_unused_after.unwrap_or_default();
    let aged = format!(
        "{} old (limit {})",
        short_duration(age(image, now)),
        short_duration(limit)
    );
    match usage.get(&image.id) {
        Some(Usage::Unused) => (
            Action::Delete,
            format!("{beyond}, {aged}, used by no server"),
        ),
        Some(Usage::InUse(servers)) => hide_or_keep(format!(
            "{aged} but in use by server {}: not deleted",
            servers.join(", ")
        )),
        Some(Usage::Unknown(why)) => hide_or_keep(format!("{aged} but {why}: not deleted")),
        None => hide_or_keep(format!(
            "{aged} but servers using it were not checked: not deleted"
        )),
    }
}

/// How long ago the image was created (zero for a clock behind Glance's).
fn age(image: &Image, now: DateTime<Utc>) -> Duration {
    (now - image.created_at).to_std().unwrap_or_default()
}

/// `3d4h`, `12m5s`, `0s`: the two largest units.
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    let parts = [
        (s / 86400, "d"),
        (s / 3600 % 24, "h"),
        (s / 60 % 60, "m"),
        (s % 60, "s"),
    ];
    let first = parts.iter().position(|(n, _)| *n > 0).unwrap_or(3);
    parts[first..]
        .iter()
        .take(2)
        .filter(|(n, _)| *n > 0 || first == 3)
        .map(|(n, u)| format!("{n}{u}"))
        .collect()
}

/// Which servers this account can list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerScope {
    /// Every project's (admin: `all_tenants`).
    AllProjects,
    /// Only the current project's (Nova refused `all_tenants`).
    OwnProject,
}

/// Asks Nova which servers use an image. The first question tries every project's servers;
/// when Nova refuses (403: not an admin) it falls back to the own project's, and from then on an
/// image others can see is reported [`Usage::Unknown`].
pub struct UsageChecker {
    compute: ComputeClient,
    scope: Option<ServerScope>,
}

impl UsageChecker {
    pub fn new(compute: ComputeClient) -> UsageChecker {
        UsageChecker {
            compute,
            scope: None,
        }
    }

    /// The scope found by the first question (`None` before it).
    pub fn scope(&self) -> Option<ServerScope> {
        self.scope
    }

    /// Whether servers use `image`. One request (two the first time for a non-admin).
    pub async fn usage(&mut self, image: &Image) -> Result<Usage, ApiError> {
        if self.scope != Some(ServerScope::OwnProject) {
            match self
                .compute
                .servers_using_image(&image.id, true, SERVERS_SHOWN)
                .await
            {
                Ok(servers) => {
                    self.scope = Some(ServerScope::AllProjects);
                    return Ok(in_use(servers));
                }
                Err(e) if e.status() == Some(403) => {
                    tracing::debug!(
                        "listing every project's servers refused ({e}); own project only"
                    );
                    self.scope = Some(ServerScope::OwnProject);
                }
                Err(e) => return Err(e),
            }
        }
        if image.visibility != "private" {
            return Ok(Usage::Unknown(format!(
                "it is {} and this account cannot list other projects' servers",
                image.visibility
            )));
        }
        let servers = self
            .compute
            .servers_using_image(&image.id, false, SERVERS_SHOWN)
            .await?;
        Ok(in_use(servers))
    }
}

fn in_use(servers: Vec<crate::openstack::compute::Server>) -> Usage {
    if servers.is_empty() {
        Usage::Unused
    } else {
        Usage::InUse(servers.into_iter().map(|s| s.id).collect())
    }
}

/// A build's images and the plan for them.
#[derive(Debug, Clone)]
pub struct Plan {
    pub build: BuildId,
    pub policy: Retention,
    pub entries: Vec<Entry>,
    /// Whose servers were checked (`None`: no image needed checking).
    pub scope: Option<ServerScope>,
}

impl Plan {
    /// How many entries have `action`.
    pub fn count(&self, action: Action) -> usize {
        self.entries.iter().filter(|e| e.action == action).count()
    }
}

/// List the build's images, ask Nova about the deletion candidates, and plan. Changes nothing.
pub async fn make_plan(
    images: &ImageClient,
    checker: &mut UsageChecker,
    build: &BuildId,
    policy: &Retention,
    now: DateTime<Utc>,
) -> Result<Plan, Error> {
    let found = list(images, build).await?;
    let mut usage = BTreeMap::new();
    for image in deletion_candidates(&found, policy, now) {
        usage.insert(image.id.clone(), checker.usage(image).await?);
    }
    Ok(Plan {
        build: build.clone(),
        policy: policy.clone(),
        entries: plan(&found, policy, now, &usage),
        scope: checker.scope(),
    })
}

/// Carry out the plan's hides and deletes, in order, calling `report` once per action with
/// its outcome. Servers are asked again right before each delete (one may have been booted
/// since the plan); an image now in use is left alone. Returns how many actions failed.
pub async fn apply(
    images: &ImageClient,
    checker: &mut UsageChecker,
    plan: &Plan,
    report: &mut dyn FnMut(&Entry, Result<String, String>),
) -> usize {
    let mut failed = 0;
    for entry in &plan.entries {
        if matches!(entry.action, Action::Hide | Action::Delete) {
            // A promote (say, a rollback) may have run since the plan: look again.
            match images.get(&entry.image.id).await {
                Ok(now) if !channels(&now).is_empty() => {
                    report(
                        entry,
                        Ok(format!(
                            "now holds {}: left alone",
                            channels(&now).join(", ")
                        )),
                    );
                    continue;
                }
                Ok(now) if now.status != "active" => {
                    report(entry, Ok(format!("now {}: left alone", now.status)));
                    continue;
                }
                Ok(_) => {}
                Err(e) if e.is_not_found() => {
                    report(entry, Ok("already gone".to_string()));
                    continue;
                }
                Err(e) => {
                    failed += 1;
                    report(entry, Err(format!("looking at it again: {e}: left alone")));
                    continue;
                }
            }
        }
        let outcome = match entry.action {
            Action::Keep | Action::Skip => continue,
            Action::Hide => images
                .set_hidden(&entry.image.id, true)
                .await
                .map(|_| "hidden".to_string())
                .map_err(|e| e.to_string()),
            Action::Delete => match checker.usage(&entry.image).await {
                Ok(Usage::Unused) => match images.delete(&entry.image.id).await {
                    Ok(true) => Ok("deleted".to_string()),
                    Ok(false) => Ok("already gone".to_string()),
                    Err(e) => Err(e.to_string()),
                },
                Ok(Usage::InUse(servers)) => Err(format!(
                    "now in use by server {}: not deleted",
                    servers.join(", ")
                )),
                Ok(Usage::Unknown(why)) => Err(format!("{why}: not deleted")),
                Err(e) => Err(format!("checking servers: {e}: not deleted")),
            },
        };
        if outcome.is_err() {
            failed += 1;
        }
        report(entry, outcome);
    }
    failed
}

/// What `promote` will do: tag `image` with the channel (and unhide it, so the channel's
/// consumers find it in listings), then untag every other image of the build holding it.
#[derive(Debug, Clone)]
pub struct Promotion {
    pub tag: String,
    pub image: Image,
    /// The build's other images that hold the tag now.
    pub previous: Vec<Image>,
}

impl Promotion {
    /// The actions, one line each.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.image.tags.contains(&self.tag) {
            out.push(format!(
                "already tagged {}: {}",
                self.tag,
                self.image.describe()
            ));
        } else {
            out.push(format!("tag    {} {}", self.tag, self.image.describe()));
        }
        if self.image.hidden() {
            out.push(format!("unhide {}", self.image.describe()));
        }
        for p in &self.previous {
            out.push(format!("untag  {} {}", self.tag, p.describe()));
        }
        out
    }
}

/// Plan moving channel `channel` to image `image_id`. Refuses an image that is not one of the
/// build's (another project's, another template's or build's) or not active.
pub async fn plan_promotion(
    images: &ImageClient,
    build: &BuildId,
    image_id: &str,
    channel: &str,
) -> Result<Promotion, Error> {
    let tag = channel_tag(channel)?;
    let image = images.get(image_id).await?;
    if let Some(why) = build.mismatch(&image) {
        return Err(Error::NotOfBuild {
            image: image.id,
            build: build.to_string(),
            why,
        });
    }
    if image.status != "active" {
        return Err(Error::NotActive {
            image: image.id,
            status: image.status,
        });
    }
    let previous = list(images, build)
        .await?
        .into_iter()
        .filter(|i| i.id != image.id && i.tags.contains(&tag))
        .collect();
    Ok(Promotion {
        tag,
        image,
        previous,
    })
}

/// Move the tag: first onto the new image (so at every moment some image holds the channel),
/// then off the previous ones. `report` gets one line per action done.
pub async fn promote(
    images: &ImageClient,
    p: &Promotion,
    report: &mut dyn FnMut(String),
) -> Result<(), Error> {
    if !p.image.tags.contains(&p.tag) {
        images.add_tag(&p.image.id, &p.tag).await?;
        report(format!("tagged {} {}", p.tag, p.image.id));
    }
    if p.image.hidden() {
        images.set_hidden(&p.image.id, false).await?;
        report(format!("unhid {}", p.image.id));
    }
    for prev in &p.previous {
        if images.remove_tag(&prev.id, &p.tag).await? {
            report(format!("untagged {} {}", p.tag, prev.id));
        }
    }
    Ok(())
}

/// Plan one build's retention, print it, and act on it when `act`. Returns how many actions
/// failed. Lines go to `out` (stdout for `forge images prune`, the progress stream after a
/// build).
pub async fn prune_build(
    images: &ImageClient,
    compute: &ComputeClient,
    id: &BuildId,
    policy: &Retention,
    act: bool,
    out: &mut dyn FnMut(&str),
) -> Result<usize, Error> {
    let mut checker = UsageChecker::new(compute.clone());
    let plan = make_plan(images, &mut checker, id, policy, Utc::now()).await?;
    out(&format!(
        "==> retention of {id} in project {}: {} image(s); keep {}, hide older: {}, delete \
         unused after: {}{}",
        id.owner,
        plan.entries.len(),
        policy.keep,
        if policy.hide_older { "yes" } else { "no" },
        policy
            .delete_unused_after
            .map(short_duration)
            .unwrap_or_else(|| "never".into()),
        match plan.scope {
            Some(ServerScope::OwnProject) => {
                " (servers checked in this project only: not an admin)"
            }
            _ => "",
        }
    ));
    for e in &plan.entries {
        let changes = matches!(e.action, Action::Hide | Action::Delete);
        let prefix = if changes && !act { "would " } else { "" };
        out(&format!("    {prefix}{}", e.line()));
    }
    if !act {
        return Ok(0);
    }
    let failed = apply(images, &mut checker, &plan, &mut |e, r| match r {
        Ok(done) => out(&format!("    {done}: {}", e.image.id)),
        Err(why) => out(&format!(
            "    FAILED to {} {}: {why}",
            e.action.as_str(),
            e.image.id
        )),
    })
    .await;
    Ok(failed)
}

/// Retention after a successful build of `label` (any source kind): the build's `retention {}`
/// settings, applied at once with the build's own clients. Returns how many actions failed.
pub async fn after_build(
    images: &ImageClient,
    compute: &ComputeClient,
    template: &Path,
    label: &str,
    policy: &Retention,
    out: &mut dyn FnMut(&str),
) -> Result<usize, Error> {
    let id = BuildId::of(images, template, label).await?;
    prune_build(images, compute, &id, policy, true, out).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: &str = "2026-03-01T00:00:00Z";

    fn image(id: &str, days_old: i64, status: &str, tags: &[&str], hidden: bool) -> Image {
        let now: DateTime<Utc> = NOW.parse().unwrap();
        let created = now - chrono::TimeDelta::days(days_old);
        serde_json::from_value(json!({
            "id": id, "status": status, "created_at": created.to_rfc3339(),
            "tags": tags, "os_hidden": hidden, "visibility": "private",
        }))
        .unwrap()
    }

    fn policy(keep: u32, hide: bool, days: Option<u64>) -> Retention {
        Retention {
            keep,
            hide_older: hide,
            delete_unused_after: days.map(|d| Duration::from_secs(d * 86400)),
        }
    }

    fn actions(entries: &[Entry]) -> Vec<(&str, Action)> {
        entries
            .iter()
            .map(|e| (e.image.id.as_str(), e.action))
            .collect()
    }

    #[test]
    fn keeps_newest_hides_older_deletes_old_unused_and_spares_in_use_and_channels() {
        let now = NOW.parse().unwrap();
        let images = vec![
            image("a", 0, "active", &[], false),
            image("q", 0, "queued", &[], false),
            image("b", 1, "active", &[], false),
            image("c", 2, "active", &[], false),
            image("d", 40, "active", &["channel:stable"], false),
            image("e", 41, "active", &[], true),
            image("f", 42, "active", &[], false),
            image("g", 43, "active", &[], false),
        ];
        let p = policy(2, true, Some(30));
        let ids: Vec<&str> = deletion_candidates(&images, &p, now)
            .iter()
            .map(|i| i.id.as_str())
            .collect();
        assert_eq!(ids, ["e", "f", "g"]);
        let usage = BTreeMap::from([
            ("e".to_string(), Usage::Unused),
            ("f".to_string(), Usage::InUse(vec!["srv1".into()])),
        ]);
        let entries = plan(&images, &p, now, &usage);
        assert_eq!(
            actions(&entries),
            [
                ("a", Action::Keep),
                ("q", Action::Skip),
                ("b", Action::Keep),
                ("c", Action::Hide),
                ("d", Action::Keep),
                ("e", Action::Delete),
                ("f", Action::Hide),
                ("g", Action::Hide),
            ]
        );
        assert!(
            entries[6].reason.contains("in use by server srv1"),
            "{}",
            entries[6].reason
        );
        assert!(
            entries[7].reason.contains("not checked"),
            "{}",
            entries[7].reason
        );
        assert!(entries[4].reason.contains("channel:stable"));
        assert!(
            entries[5].reason.contains("41d old (limit 30d)"),
            "{}",
            entries[5].reason
        );
    }

    #[test]
    fn without_hide_or_delete_older_images_are_kept_and_hidden_ones_stay_hidden() {
        let now = NOW.parse().unwrap();
        let images = vec![
            image("a", 0, "active", &[], false),
            image("b", 50, "active", &[], true),
            image("c", 60, "active", &[], false),
        ];
        let entries = plan(&images, &policy(1, false, None), now, &BTreeMap::new());
        assert_eq!(
            actions(&entries),
            [
                ("a", Action::Keep),
                ("b", Action::Keep),
                ("c", Action::Keep)
            ]
        );
        assert!(entries[1].reason.contains("already hidden"));
        assert!(entries[2].reason.contains("hide_older is off"));
        assert!(deletion_candidates(&images, &policy(1, false, None), now).is_empty());
    }

    #[test]
    fn an_image_exactly_at_the_limit_is_a_candidate_and_a_younger_one_is_not() {
        let now = NOW.parse().unwrap();
        let images = vec![
            image("a", 0, "active", &[], false),
            image("b", 29, "active", &[], false),
            image("c", 30, "active", &[], false),
        ];
        let ids: Vec<&str> = deletion_candidates(&images, &policy(1, false, Some(30)), now)
            .iter()
            .map(|i| i.id.as_str())
            .collect();
        assert_eq!(ids, ["c"]);
    }

    #[test]
    fn channel_names_are_checked() {
        assert_eq!(channel_tag("stable").unwrap(), "channel:stable");
        assert_eq!(channel_tag("rc-1.2_x").unwrap(), "channel:rc-1.2_x");
        for bad in [
            "",
            "a b",
            "a/b",
            "$(id)",
            "`id`",
            "a\nb",
            "ü",
            &"x".repeat(65),
        ] {
            assert!(channel_tag(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn build_mismatch_names_the_difference() {
        let b = BuildId {
            template: "t.pkr.hcl".into(),
            build: "n.openstack.s".into(),
            owner: "p1".into(),
        };
        let mut img: Image = serde_json::from_value(json!({
            "id": "i", "status": "active", "created_at": NOW, "owner": "p1",
            "forge_template": "t.pkr.hcl", "forge_build": "n.openstack.s",
        }))
        .unwrap();
        assert_eq!(b.mismatch(&img), None);
        img.properties
            .insert("forge_build".into(), json!("other.openstack.s"));
        assert!(b
            .mismatch(&img)
            .unwrap()
            .contains("forge_build is 'other.openstack.s'"));
        img.owner = Some("p2".into());
        assert!(b.mismatch(&img).unwrap().contains("project 'p2'"));
    }

    #[test]
    fn durations_print_short() {
        assert_eq!(short_duration(Duration::from_secs(0)), "0s");
        assert_eq!(short_duration(Duration::from_secs(59)), "59s");
        assert_eq!(
            short_duration(Duration::from_secs(3 * 86400 + 4 * 3600 + 7)),
            "3d4h"
        );
        assert_eq!(short_duration(Duration::from_secs(30 * 86400)), "30d");
        assert_eq!(short_duration(Duration::from_secs(12 * 60 + 5)), "12m5s");
    }
}
