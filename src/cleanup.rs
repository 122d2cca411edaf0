//! `forge cleanup`'s model: which runs need cleaning, what of theirs still exists in the cloud,
//! and deleting it.
//!
//! Sources, for one run id:
//! - its journal (see [`crate::journal`]): every resource with an id, and the run's cloud;
//! - a sweep of the cloud, which also finds what only has an *intent* record (the process died
//!   between the create call and the id) and works without any journal: the server named
//!   `forge-<run>`, the keypair `forge-<run>-key`, images with property `forge_run_id=<run>` in
//!   the project, floating IPs described `forge-<run>-fip` (skipped when the cloud has no
//!   network service).
//!
//! Images: a run whose journal says it finished ok made its image on purpose; cleanup never
//! deletes any image of such a run. Without a journal (another machine, `--run ID`) an image that
//! carries `forge_build` went through the publish step, the build's last, so it is kept too
//! (forge cannot tell whether its build succeeded; delete it by hand if unwanted); an image
//! without it is an unfinished snapshot and is deleted.
//!
//! Order: newest first, the reverse of the build's creation order: images, floating IPs,
//! servers (each deleted and waited for until gone), keypairs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::journal::{self, CloudInfo, Journal, JournalError, Record, TemplateAuth};
use crate::names;
use crate::openstack::config::AuthMethod;
use crate::openstack::image::ImageQuery;
use crate::openstack::wait::WaitOptions;
use crate::openstack::{Clients, Error as CloudError, Session};
use crate::pipeline::Progress;

/// How long cleanup waits for one server to be gone.
const SERVER_DELETE_TIMEOUT: Duration = Duration::from_secs(300);

/// Errors of cleanup.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(
        "invalid run id '{0}': expected 1 to 64 letters, digits and '-' (as printed by \
         `forge build`: `==> build NAME (run ID)`)"
    )]
    BadRunId(String),
    #[error(
        "run {run}: its journal says it ran on {journal}, but this login is {current}; \
         log in to that cloud (--cloud NAME, or OS_* variables)"
    )]
    WrongCloud {
        run: String,
        journal: String,
        current: String,
    },
    #[error("journal directory {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
}

/// Check a run id given on the command line. Run ids become part of Nova name filters (regular
/// expressions) and Glance queries, so only the characters forge's own ids use are accepted.
pub fn check_run_id(id: &str) -> Result<(), CleanupError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(CleanupError::BadRunId(id.to_string()))
    }
}

/// One run as its journal (if any) describes it.
#[derive(Debug, Clone)]
pub struct Run {
    pub run_id: String,
    /// The journal file; `None` when cleanup works from the cloud alone.
    pub path: Option<PathBuf>,
    /// This run's records, in order.
    pub records: Vec<Record>,
    /// A live process (the build, or another cleanup) holds the journal's lock.
    pub live: bool,
}

impl Run {
    /// A run known only by its id (no journal).
    pub fn without_journal(run_id: &str) -> Run {
        Run {
            run_id: run_id.to_string(),
            path: None,
            records: Vec::new(),
            live: false,
        }
    }

    /// `Some(ok)` when the build wrote its `finished` record.
    pub fn finished(&self) -> Option<bool> {
        self.records.iter().rev().find_map(|r| match r {
            Record::Finished { ok, .. } => Some(*ok),
            _ => None,
        })
    }

    /// A cleanup already left nothing of this run.
    pub fn cleaned(&self) -> bool {
        self.records
            .iter()
            .any(|r| matches!(r, Record::Cleaned { .. }))
    }

    /// Where the run's resources are, when the journal says.
    pub fn cloud(&self) -> Option<&CloudInfo> {
        self.records.iter().find_map(|r| match r {
            Record::Cloud { cloud, .. } => Some(cloud),
            _ => None,
        })
    }

    /// Whether `--all-stale` cleans this run: not live, not cleaned, and either killed (no
    /// `finished` record) or with a resource its journal does not show deleted (a build whose
    /// own cleanup failed). A finished-ok run's image is its product, not a leftover.
    pub fn needs_cleanup(&self) -> bool {
        if self.live || self.cleaned() {
            return false;
        }
        match self.finished() {
            None => true,
            Some(ok) => journal::resources(&self.records)
                .iter()
                .any(|r| !(r.deleted || ok && r.kind == Kind::Image)),
        }
    }
}

/// Every run recorded in the `*.jsonl` journals of `dir`, in file-name order, and the journals
/// that could not be read. A missing directory holds no runs.
pub fn scan(dir: &Path) -> Result<(Vec<Run>, Vec<JournalError>), CleanupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(source) => {
            return Err(CleanupError::Dir {
                path: dir.display().to_string(),
                source,
            })
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl") && p.is_file())
        .collect();
    paths.sort();
    let mut runs = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let read = journal::read(&path).and_then(|r| Ok((r, journal::is_locked(&path)?)));
        let (records, live) = match read {
            Ok(x) => x,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        // A file given to several builds with `--journal` holds several runs.
        let mut by_run: BTreeMap<String, Vec<Record>> = BTreeMap::new();
        let mut order = Vec::new();
        for r in records {
            let id = r.run_id().to_string();
            if !by_run.contains_key(&id) {
                order.push(id.clone());
            }
            by_run.entry(id).or_default().push(r);
        }
        for id in order {
            let records = by_run.remove(&id).unwrap_or_default();
            runs.push(Run {
                run_id: id,
                path: Some(path.clone()),
                records,
                live,
            });
        }
    }
    Ok((runs, errors))
}

/// Resource kinds, in deletion order: the journal's.
pub use crate::journal::Kind;

/// One cloud resource of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: Kind,
    /// The API id (a keypair's is its name).
    pub id: String,
    pub name: String,
    /// How cleanup found it: `journal`, or which sweep.
    pub found: &'static str,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.id == self.name {
            write!(f, "{} {}", self.kind.as_str(), self.name)
        } else {
            write!(f, "{} {} ({})", self.kind.as_str(), self.name, self.id)
        }
    }
}

/// What cleanup would do for one run.
#[derive(Debug, Default)]
pub struct Plan {
    pub run_id: String,
    /// Still exists: to delete, in this order.
    pub delete: Vec<Target>,
    /// Exists and stays, with the reason.
    pub keep: Vec<(Target, String)>,
    /// In the journal, not recorded deleted, but already gone (recorded deleted on `--yes`).
    pub gone: Vec<Target>,
    /// Remarks for the user (what could not be swept).
    pub notes: Vec<String>,
}

/// The clients of the cloud cleanup works in (the same [`Clients`] a build logs in with), and
/// where they are logged in.
#[derive(Clone)]
pub struct Cloud {
    pub clients: Clients,
    pub info: CloudInfo,
}

impl Cloud {
    /// `clients`, with where they are logged in.
    pub async fn new(clients: Clients) -> Result<Cloud, CloudError> {
        let info = cloud_info(clients.session(), None).await?;
        Ok(Cloud { clients, info })
    }

    /// Refuse to clean a run whose journal names another cloud or project.
    pub fn check_run(&self, run: &Run) -> Result<(), CleanupError> {
        let Some(j) = run.cloud() else {
            return Ok(());
        };
        let c = &self.info;
        if same_cloud(j, c) {
            Ok(())
        } else {
            Err(CleanupError::WrongCloud {
                run: run.run_id.clone(),
                journal: describe(j),
                current: describe(c),
            })
        }
    }
}

/// Whether a login (`current`) reaches the resources a journal's cloud record names: same
/// Keystone, and the same project and region where the journal recorded them. The cloud's
/// *name* may differ (another machine's clouds.yaml).
pub fn same_cloud(journal: &CloudInfo, current: &CloudInfo) -> bool {
    journal.auth_url == current.auth_url
        && (journal.project_id.is_none() || journal.project_id == current.project_id)
        && (journal.region.is_none() || journal.region == current.region)
}

fn describe(c: &CloudInfo) -> String {
    format!(
        "cloud '{}' ({}, project {}, region {})",
        c.name,
        c.auth_url,
        c.project_id.as_deref().unwrap_or("-"),
        c.region.as_deref().unwrap_or("-")
    )
}

/// Where a session is logged in: what a build journals and cleanup compares. `template` is
/// the template and source whose auth the login used (recorded only when a template attribute
/// took part).
pub async fn cloud_info(
    session: &Session,
    template: Option<TemplateAuth>,
) -> Result<CloudInfo, CloudError> {
    use crate::openstack::config::{DomainRef, ProjectRef, Scope, UserRef};
    let config = session.config();
    let domain = |d: &DomainRef| match d {
        DomainRef::Id(s) | DomainRef::Name(s) => s.clone(),
    };
    let (project, project_domain) = match &config.scope {
        Scope::Project {
            project: ProjectRef::Id(id),
        } => (Some(id.clone()), None),
        Scope::Project {
            project: ProjectRef::Name { name, domain: d },
        } => (Some(name.clone()), Some(domain(d))),
        Scope::Domain(d) => (None, Some(domain(d))),
        Scope::None => (None, None),
    };
    let user_domain = match &config.auth {
        AuthMethod::Password {
            user: UserRef::Name { domain: d, .. },
            ..
        } => Some(domain(d)),
        _ => None,
    };
    Ok(CloudInfo {
        name: config.name.clone(),
        auth_url: config.auth_url.clone(),
        project_id: session.project_id().await?,
        region: config.region.clone(),
        cloud: config.cloud.clone(),
        project,
        domain: project_domain.or(user_domain),
        auth_method: Some(config.method().as_str().to_string()),
        credentials: config.credentials_origin().map(|o| o.describe()),
        template: template.filter(|_| config.uses_template()),
    })
}

/// Find what of `run` still exists: the journal's resources first (newest first), then the
/// sweep by name and property; sorted into deletion order, duplicates removed.
pub async fn plan(run: &Run, cloud: &Cloud) -> Result<Plan, CleanupError> {
    let run_id = run.run_id.as_str();
    check_run_id(run_id)?;
    let keep_images = run.finished() == Some(true);
    let mut plan = Plan {
        run_id: run_id.to_string(),
        ..Plan::default()
    };
    let mut found: Vec<Target> = Vec::new();

    for r in journal::resources(&run.records).into_iter().rev() {
        let (kind, Some(id), false) = (r.kind, r.id.clone(), r.deleted) else {
            // Intent only (the sweep looks for it) or already deleted.
            continue;
        };
        let t = Target {
            kind,
            id,
            name: r.name.clone(),
            found: "journal",
        };
        if exists(cloud, &t).await? {
            found.push(t);
        } else {
            plan.gone.push(t);
        }
    }

    let server_name = names::server_name(run_id);
    for s in cloud
        .clients
        .compute
        .list_servers(Some(&server_name))
        .await?
    {
        // Nova's name filter is a regular expression that also matches longer names.
        if s.name == server_name
            || s.metadata.get(names::RUN_ID).map(String::as_str) == Some(run_id)
        {
            found.push(Target {
                kind: Kind::Server,
                id: s.id,
                name: s.name,
                found: "name forge-<run>",
            });
        }
    }
    let keypair = names::keypair_name(run_id);
    match cloud.clients.compute.get_keypair(&keypair).await {
        Ok(k) => found.push(Target {
            kind: Kind::Keypair,
            id: k.name.clone(),
            name: k.name,
            found: "name forge-<run>-key",
        }),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    let query = ImageQuery {
        properties: [(names::RUN_ID.to_string(), run_id.to_string())].into(),
        // An admin sees every project's images: only this project's are ours to delete.
        owner: cloud.info.project_id.clone(),
        ..ImageQuery::default()
    };
    for i in cloud.clients.image.list(&query, Some(100)).await? {
        // A snapshot blanks the `forge_build` it may inherit from its source; only publish sets it.
        let published = i.property(names::BUILD).is_some_and(|b| !b.is_empty());
        let t = Target {
            kind: Kind::Image,
            name: i.name.clone().unwrap_or_default(),
            id: i.id,
            found: "property forge_run_id",
        };
        if run.path.is_none() && published {
            plan.keep.push((
                t,
                "published by the build's last step (property forge_build) and no journal \
                 says the build failed; delete it by hand if unwanted"
                    .into(),
            ));
        } else {
            found.push(t);
        }
    }
    let fip_label = names::floating_ip_label(run_id);
    match cloud.clients.network.list_floating_ips(&fip_label).await {
        Ok(fips) => found.extend(fips.into_iter().map(|f| Target {
            kind: Kind::FloatingIp,
            id: f.id,
            name: f.floating_ip_address,
            found: "description forge-<run>-fip",
        })),
        Err(CloudError::NoEndpoint { .. }) => plan
            .notes
            .push("the cloud has no network service: no floating IPs to look for".into()),
        Err(e) => return Err(e.into()),
    }

    let mut seen = std::collections::BTreeSet::new();
    found.retain(|t| seen.insert((t.kind, t.id.clone())));
    // Stable: within a kind, the journal's newest-first order stays.
    found.sort_by_key(|t| t.kind);
    for t in found {
        if t.kind == Kind::Image && keep_images {
            if !plan.keep.iter().any(|(k, _)| k.id == t.id) {
                plan.keep
                    .push((t, "the run finished ok: this is its image".into()));
            }
        } else if !plan.keep.iter().any(|(k, _)| k.id == t.id) {
            plan.delete.push(t);
        }
    }
    Ok(plan)
}

async fn exists(cloud: &Cloud, t: &Target) -> Result<bool, CloudError> {
    let r = match t.kind {
        Kind::Image => cloud.clients.image.get(&t.id).await.map(drop),
        Kind::Server => cloud.clients.compute.get_server(&t.id).await.map(drop),
        Kind::Keypair => cloud.clients.compute.get_keypair(&t.id).await.map(drop),
        // No single-floating-IP GET helper; release is idempotent, so assume it may exist.
        Kind::FloatingIp => return Ok(true),
    };
    match r {
        Ok(()) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Delete one resource (a server: and wait until it is gone). `Ok(false)`: already gone.
pub async fn delete(cloud: &Cloud, t: &Target, progress: &Progress) -> Result<bool, CloudError> {
    match t.kind {
        Kind::Image => cloud.clients.image.delete(&t.id).await,
        Kind::FloatingIp => cloud.clients.network.release_floating_ip(&t.id).await,
        Kind::Server => {
            cloud
                .clients
                .compute
                .delete_server_and_wait(
                    &t.id,
                    WaitOptions::with_timeout(SERVER_DELETE_TIMEOUT),
                    // Cleanup is not cancellable half-way: a Ctrl-C ends the process, and a
                    // later cleanup picks up from the journal.
                    &CancellationToken::new(),
                    progress,
                )
                .await
        }
        Kind::Keypair => cloud.clients.compute.delete_keypair(&t.id).await,
    }
}

/// What happened to one run.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Deleted now, or found already gone when deleting.
    pub deleted: Vec<Target>,
    pub kept: Vec<(Target, String)>,
    /// Could not be deleted, with the error.
    pub failed: Vec<(Target, String)>,
    /// The final sweep found nothing left to delete.
    pub clean: bool,
}

/// Delete what [`plan`] finds, then sweep again (a create that was still in flight when the
/// build died can surface late); up to three passes. Every deletion is appended to `journal`
/// as it happens, and a `cleaned` record once nothing is left. `say` gets one line per
/// resource.
pub async fn execute(
    run: &Run,
    cloud: &Cloud,
    mut journal: Option<&mut Journal>,
    progress: &Progress,
    say: &mut dyn FnMut(&str),
) -> Result<Outcome, CleanupError> {
    let mut out = Outcome::default();
    // What earlier passes deleted: the journal records `run` was read from do not show those
    // deletions, and a kind whose existence cannot be checked (floating IPs) would be planned
    // again forever.
    let mut handled = std::collections::BTreeSet::new();
    for pass in 0..3 {
        let mut plan = plan(run, cloud).await?;
        plan.delete
            .retain(|t| !handled.contains(&(t.kind, t.id.clone())));
        if pass == 0 {
            for t in &plan.gone {
                if let Some(j) = journal.as_deref_mut() {
                    j.deleted(t.kind, &t.id)?;
                }
            }
        }
        out.kept = plan.keep;
        if plan.delete.is_empty() {
            out.clean = true;
            break;
        }
        let mut failed_now = false;
        for t in plan.delete {
            match delete(cloud, &t, progress).await {
                Ok(deleted_now) => {
                    say(&format!(
                        "{} {t}",
                        if deleted_now {
                            "deleted"
                        } else {
                            "already gone:"
                        }
                    ));
                    if let Some(j) = journal.as_deref_mut() {
                        j.deleted(t.kind, &t.id)?;
                    }
                    handled.insert((t.kind, t.id.clone()));
                    out.deleted.push(t);
                }
                Err(e) => {
                    failed_now = true;
                    out.failed.push((t, e.to_string()));
                }
            }
        }
        if failed_now {
            break;
        }
    }
    if out.clean {
        if let Some(j) = journal {
            j.cleaned()?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_of(records: Vec<Record>) -> Run {
        Run {
            run_id: "r1".into(),
            path: Some("r1.jsonl".into()),
            records,
            live: false,
        }
    }

    /// A kind as an old journal spells it.
    fn kind_of(s: &str) -> Kind {
        serde_json::from_value(serde_json::Value::String(s.into())).unwrap()
    }

    fn intent(kind: &str, name: &str) -> Record {
        Record::Intent {
            run_id: "r1".into(),
            step: "s".into(),
            kind: kind_of(kind),
            name: name.into(),
        }
    }

    fn created(kind: &str, name: &str, id: &str) -> Record {
        Record::Created {
            run_id: "r1".into(),
            step: "s".into(),
            kind: kind_of(kind),
            name: name.into(),
            id: id.into(),
        }
    }

    fn deleted(kind: &str, id: &str) -> Record {
        Record::Deleted {
            run_id: "r1".into(),
            kind: kind_of(kind),
            id: id.into(),
        }
    }

    fn finished(ok: bool) -> Record {
        Record::Finished {
            run_id: "r1".into(),
            ok,
        }
    }

    #[test]
    fn which_runs_need_cleanup() {
        // Killed: no finished record, even with nothing but an intent.
        assert!(run_of(vec![intent("server", "forge-r1")]).needs_cleanup());
        // Failed, its own cleanup deleted everything.
        let tidy = vec![
            intent("server", "forge-r1"),
            created("server", "forge-r1", "u1"),
            deleted("server", "u1"),
            finished(false),
        ];
        assert!(!run_of(tidy.clone()).needs_cleanup());
        // Failed and its cleanup left the server.
        let left = vec![
            intent("server", "forge-r1"),
            created("server", "forge-r1", "u1"),
            finished(false),
        ];
        assert!(run_of(left.clone()).needs_cleanup());
        // Succeeded: the image is the product, the rest was deleted.
        let ok = vec![
            intent("server", "forge-r1"),
            created("server", "forge-r1", "u1"),
            intent("image", "built"),
            created("image", "built", "i1"),
            deleted("server", "u1"),
            finished(true),
        ];
        assert!(!run_of(ok).needs_cleanup());
        // Cleaned, or live: never.
        let mut cleaned = left.clone();
        cleaned.push(Record::Cleaned {
            run_id: "r1".into(),
        });
        assert!(!run_of(cleaned).needs_cleanup());
        let mut live = run_of(vec![intent("server", "forge-r1")]);
        live.live = true;
        assert!(!live.needs_cleanup());
    }

    #[test]
    fn a_login_must_reach_the_journals_cloud_project_and_region() {
        let j = CloudInfo {
            name: "prod".into(),
            auth_url: "https://k/v3".into(),
            project_id: Some("p1".into()),
            region: Some("r1".into()),
            ..CloudInfo::default()
        };
        let mut c = j.clone();
        c.name = "prod-from-another-machine".into();
        assert!(same_cloud(&j, &c));
        for change in [
            (|c: &mut CloudInfo| c.auth_url = "https://other/v3".into()) as fn(&mut CloudInfo),
            |c| c.project_id = Some("p2".into()),
            |c| c.project_id = None,
            |c| c.region = Some("r2".into()),
        ] {
            let mut c = j.clone();
            change(&mut c);
            assert!(!same_cloud(&j, &c), "{c:?}");
        }
        // A journal that recorded no region accepts any.
        let mut j2 = j.clone();
        j2.region = None;
        c.region = None;
        assert!(same_cloud(&j2, &c));
    }

    #[test]
    fn run_ids_are_checked_before_they_reach_a_query() {
        check_run_id("0f8c1a2b-1111-4222-8333-444455556666").unwrap();
        for bad in ["", ".*", "a b", "x$(reboot)", "a/b", "é", &"a".repeat(65)] {
            let e = check_run_id(bad).unwrap_err().to_string();
            assert!(e.contains("invalid run id"), "{bad}: {e}");
        }
    }

    #[test]
    fn scan_groups_runs_and_sees_the_build_lock() {
        let dir = tempfile::tempdir().unwrap();
        let live_path = dir.path().join("a.jsonl");
        let mut live = Journal::create(&live_path, "live-1").unwrap();
        live.intent("keypair", Kind::Keypair, "forge-live-1-key")
            .unwrap();
        let dead_path = dir.path().join("b.jsonl");
        {
            let mut dead = Journal::create(&dead_path, "dead-1").unwrap();
            dead.intent("boot server", Kind::Server, "forge-dead-1")
                .unwrap();
        } // dropped: lock released, as when the process dies
        {
            // A second run appended to the same file (`--journal` reused).
            let mut other = Journal::create(&dead_path, "dead-2").unwrap();
            other.finished(false).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "not a journal").unwrap();
        std::fs::write(dir.path().join("c.jsonl"), "garbage\n{}\n").unwrap();
        let (runs, errors) = scan(dir.path()).unwrap();
        let ids: Vec<(&str, bool)> = runs.iter().map(|r| (r.run_id.as_str(), r.live)).collect();
        assert_eq!(
            ids,
            [("live-1", true), ("dead-1", false), ("dead-2", false)]
        );
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().contains("c.jsonl:1"), "{}", errors[0]);
        assert!(!runs[0].needs_cleanup(), "a live run is never stale");
        assert!(runs[1].needs_cleanup());
        // Reopening a live journal fails; a dead one reopens with only its run's records.
        assert!(matches!(
            Journal::reopen(&live_path, "live-1"),
            Err(JournalError::Locked { .. })
        ));
        let j = Journal::reopen(&dead_path, "dead-1").unwrap();
        assert_eq!(j.records().len(), 1);
        drop(live);
        assert!(!journal::is_locked(&live_path).unwrap());
        assert!(scan(&dir.path().join("absent")).unwrap().0.is_empty());
    }

    #[test]
    fn a_journal_without_cloud_or_cleaned_records_still_reads() {
        // Written by forge before the cloud record existed.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.jsonl");
        std::fs::write(
            &path,
            concat!(
                r#"{"event":"intent","run_id":"r1","step":"boot server","kind":"server","name":"forge-r1"}"#,
                "\n",
                r#"{"event":"created","run_id":"r1","step":"boot server","kind":"server","name":"forge-r1","id":"u1"}"#,
                "\n"
            ),
        )
        .unwrap();
        let (runs, errors) = scan(dir.path()).unwrap();
        assert!(errors.is_empty());
        assert_eq!(runs[0].cloud(), None);
        assert_eq!(runs[0].finished(), None);
        assert!(runs[0].needs_cleanup());
        // And the new records round-trip.
        let mut j = Journal::reopen(&path, "r1").unwrap();
        let info = CloudInfo {
            name: "c".into(),
            auth_url: "http://k/v3".into(),
            project_id: Some("p".into()),
            region: None,
            ..CloudInfo::default()
        };
        j.cloud(info.clone()).unwrap();
        j.cleaned().unwrap();
        drop(j);
        let (runs, _) = scan(dir.path()).unwrap();
        assert_eq!(runs[0].cloud(), Some(&info));
        assert!(runs[0].cleaned());
        assert!(!runs[0].needs_cleanup());
    }
}
