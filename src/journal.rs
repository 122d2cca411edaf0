//! The resource journal: every cloud resource a build creates or deletes, in order.
//!
//! A build appends an *intent* record before each create call, a *created* record with the id as
//! soon as the API returns it, and a *deleted* record when cleanup removed it. With a file attached
//! each record is appended and fsynced before the call it announces, so a SIGKILL at any instant
//! leaves a journal that names everything that may exist (`forge cleanup` reads it). The same
//! records feed the manifest's resource list.
//!
//! A *cloud* record says where the resources are (cloud name, auth URL, project, region; never
//! a secret), so cleanup logs in to the right cloud. While a build runs it holds an exclusive
//! `flock` on its journal: a journal whose lock can be taken belongs to no live process (the
//! kernel drops the lock when the process dies, SIGKILL and reboot included). Journals written
//! before the cloud and cleaned records existed read as before.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The kinds of cloud resource a run creates, in deletion order (the reverse of creation
/// order). Serialized as the journal has always spelled them (`image`, `floating_ip`, `server`,
/// `keypair`), so older journals read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Image,
    FloatingIp,
    Server,
    Keypair,
}

impl Kind {
    /// The journal's (and the manifest's) name for the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::FloatingIp => "floating_ip",
            Kind::Server => "server",
            Kind::Keypair => "keypair",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of a journal file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Record {
    /// A create call is about to be made.
    Intent {
        run_id: String,
        step: String,
        kind: Kind,
        name: String,
    },
    /// The create call returned this id.
    Created {
        run_id: String,
        step: String,
        kind: Kind,
        name: String,
        id: String,
    },
    /// Cleanup removed the resource (or found it already gone).
    Deleted {
        run_id: String,
        kind: Kind,
        id: String,
    },
    /// The run ended; `ok` tells whether the build succeeded.
    Finished { run_id: String, ok: bool },
    /// Where the run's resources live. Written once, after login, before any create.
    Cloud { run_id: String, cloud: CloudInfo },
    /// `forge cleanup` deleted everything the run left: a later cleanup has nothing to do.
    Cleaned { run_id: String },
}

impl Record {
    /// The run this record belongs to.
    pub fn run_id(&self) -> &str {
        match self {
            Record::Intent { run_id, .. }
            | Record::Created { run_id, .. }
            | Record::Deleted { run_id, .. }
            | Record::Finished { run_id, .. }
            | Record::Cloud { run_id, .. }
            | Record::Cleaned { run_id } => run_id,
        }
    }
}

/// Which cloud a run used: enough to log in to the same one again and to notice a different
/// one. Holds no secret: the login method and where its credentials came from, never them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CloudInfo {
    /// The `clouds.yaml` entry; else `template` (the template's `identity_endpoint`) or
    /// `envvars` (`OS_*` variables).
    pub name: String,
    /// Keystone URL (normalised, ends in `/v3`).
    pub auth_url: String,
    /// The project the token was scoped to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The `clouds.yaml` entry logged in with, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<String>,
    /// The project as configured (its name or id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The domain as configured (the project's, else the user's; name or id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// `password`, `token` or `application_credential`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<String>,
    /// Where the credentials came from (`template attribute `password` at t.pkr.hcl:9:14`,
    /// `environment variable OS_PASSWORD`, a `clouds.yaml` key's place).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    /// Set when the template's auth attributes took part in the login: cleanup loads that
    /// template's source again to log in the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateAuth>,
}

/// The template and source whose auth attributes a run logged in with.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TemplateAuth {
    /// The template file (absolute).
    pub path: PathBuf,
    /// The source, `openstack.NAME` or `image-file.NAME`.
    pub source: String,
}

/// A resource as the journal last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub kind: Kind,
    pub name: String,
    /// `None` while only the intent is known (the create call may or may not have happened).
    pub id: Option<String>,
    pub deleted: bool,
}

/// Errors writing or reading a journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "journal {path} is locked by a running forge process (a build still running, or a \
         cleanup in progress)"
    )]
    Locked { path: String },
    #[error("journal {path}:{line}: not a journal record: {message}")]
    Parse {
        path: String,
        line: usize,
        message: String,
    },
}

/// An append-only record of one run's resources, in memory and optionally in a file.
#[derive(Debug, Default)]
pub struct Journal {
    run_id: String,
    records: Vec<Record>,
    file: Option<(PathBuf, File)>,
}

impl Journal {
    /// A journal kept in memory only: `forge pack` without `--upload` creates nothing in a cloud,
    /// so there is nothing for `forge cleanup` to find.
    pub fn in_memory(run_id: &str) -> Journal {
        Journal {
            run_id: run_id.to_string(),
            ..Journal::default()
        }
    }

    /// A journal that also appends to `path` (created, with its directory, if absent). Holds an
    /// exclusive lock on the file until dropped, which marks the run as live; fails with
    /// [`JournalError::Locked`] when another process holds it.
    pub fn create(path: &Path, run_id: &str) -> Result<Journal, JournalError> {
        let io = |source| JournalError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        lock(path, &file)?;
        drop_torn_tail(path, &file)?;
        Ok(Journal {
            run_id: run_id.to_string(),
            records: Vec::new(),
            file: Some((path.to_path_buf(), file)),
        })
    }

    /// Continue an existing journal (for `forge cleanup`): lock it as [`Journal::create`] does,
    /// then load the records of `run_id` it already holds. The file must exist.
    pub fn reopen(path: &Path, run_id: &str) -> Result<Journal, JournalError> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|source| JournalError::Io {
                path: path.display().to_string(),
                source,
            })?;
        lock(path, &file)?;
        drop_torn_tail(path, &file)?;
        // Read after locking: no build can be appending any more.
        let records = read(path)?
            .into_iter()
            .filter(|r| r.run_id() == run_id)
            .collect();
        Ok(Journal {
            run_id: run_id.to_string(),
            records,
            file: Some((path.to_path_buf(), file)),
        })
    }

    /// The default location: `$XDG_STATE_HOME/forge/runs/<run-id>.jsonl`
    /// (`~/.local/state/forge/runs/...` when `XDG_STATE_HOME` is unset).
    pub fn default_path(run_id: &str) -> PathBuf {
        Journal::default_dir().join(format!("{run_id}.jsonl"))
    }

    /// Where journals go by default: `$XDG_STATE_HOME/forge/runs` (`forge cleanup` looks there).
    pub fn default_dir() -> PathBuf {
        let base = std::env::var_os("XDG_STATE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(|| PathBuf::from("/var/tmp"));
        base.join("forge/runs")
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Announce a create call. Call before the API request.
    pub fn intent(&mut self, step: &str, kind: Kind, name: &str) -> Result<(), JournalError> {
        self.append(Record::Intent {
            run_id: self.run_id.clone(),
            step: step.into(),
            kind,
            name: name.into(),
        })
    }

    /// Record the id a create call returned. Call the moment the API returns, before any wait.
    pub fn created(
        &mut self,
        step: &str,
        kind: Kind,
        name: &str,
        id: &str,
    ) -> Result<(), JournalError> {
        self.append(Record::Created {
            run_id: self.run_id.clone(),
            step: step.into(),
            kind,
            name: name.into(),
            id: id.into(),
        })
    }

    /// Record that a resource is gone.
    pub fn deleted(&mut self, kind: Kind, id: &str) -> Result<(), JournalError> {
        self.append(Record::Deleted {
            run_id: self.run_id.clone(),
            kind,
            id: id.into(),
        })
    }

    /// Record the end of the run.
    pub fn finished(&mut self, ok: bool) -> Result<(), JournalError> {
        self.append(Record::Finished {
            run_id: self.run_id.clone(),
            ok,
        })
    }

    /// Record which cloud the run uses. Call after login, before the first create.
    pub fn cloud(&mut self, cloud: CloudInfo) -> Result<(), JournalError> {
        self.append(Record::Cloud {
            run_id: self.run_id.clone(),
            cloud,
        })
    }

    /// Record that `forge cleanup` left nothing of the run.
    pub fn cleaned(&mut self) -> Result<(), JournalError> {
        self.append(Record::Cleaned {
            run_id: self.run_id.clone(),
        })
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Every resource the run touched, in creation order, with its latest state.
    pub fn resources(&self) -> Vec<Resource> {
        resources(&self.records)
    }

    fn append(&mut self, record: Record) -> Result<(), JournalError> {
        if let Some((path, file)) = &mut self.file {
            let io = |source| JournalError::Io {
                path: path.display().to_string(),
                source,
            };
            let mut line = serde_json::to_vec(&record).map_err(|e| io(e.into()))?;
            line.push(b'\n');
            // One write per record, then fsync: the record is on disk before the call it announces.
            file.write_all(&line).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        self.records.push(record);
        Ok(())
    }
}

/// Take the exclusive, non-blocking `flock` that marks a journal as in use. `flock` rather than
/// a pid file: the kernel releases it when the process dies however it dies, so a stale lock
/// cannot outlive a SIGKILL or a reboot. (`std::fs::File::try_lock` needs Rust 1.89; forge's
/// minimum is 1.85, and rustix is already in the dependency tree.)
fn lock(path: &Path, file: &File) -> Result<(), JournalError> {
    match crate::lock::try_flock(file, true) {
        Ok(true) => Ok(()),
        Ok(false) => Err(JournalError::Locked {
            path: path.display().to_string(),
        }),
        Err(source) => Err(JournalError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Cut a torn last line (a writer died mid-record) before appending: [`read`] tolerates a torn
/// line only at the end, so a record appended after it would make the journal unreadable.
fn drop_torn_tail(path: &Path, file: &File) -> Result<(), JournalError> {
    let io = |source| JournalError::Io {
        path: path.display().to_string(),
        source,
    };
    let data = std::fs::read(path).map_err(io)?;
    if data.last().is_some_and(|b| *b != b'\n') {
        let keep = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        file.set_len(keep as u64).map_err(io)?;
    }
    Ok(())
}

/// Whether a live process holds the journal at `path` (a running build or cleanup). Probes
/// with a shared lock, released at once.
pub fn is_locked(path: &Path) -> Result<bool, JournalError> {
    let io = |source| JournalError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    // Dropping the file releases the probe's lock.
    crate::lock::try_flock(&file, false)
        .map(|got| !got)
        .map_err(io)
}

/// Read a journal file. A torn last line (the process died mid-write) is ignored; any other bad
/// line is an error with its line number.
pub fn read(path: &Path) -> Result<Vec<Record>, JournalError> {
    let text = std::fs::read_to_string(path).map_err(|source| JournalError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let lines: Vec<&str> = text.split('\n').collect();
    let mut records = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(r) => records.push(r),
            // Only the final line can be torn: it has no newline after it.
            Err(_) if i == lines.len() - 1 => break,
            Err(e) => {
                return Err(JournalError::Parse {
                    path: path.display().to_string(),
                    line: i + 1,
                    message: e.to_string(),
                })
            }
        }
    }
    Ok(records)
}

/// Fold records into resources: intents become resources, created fills the id, deleted marks
/// them gone.
pub fn resources(records: &[Record]) -> Vec<Resource> {
    let mut out: Vec<Resource> = Vec::new();
    for r in records {
        match r {
            Record::Intent { kind, name, .. } => out.push(Resource {
                kind: *kind,
                name: name.clone(),
                id: None,
                deleted: false,
            }),
            Record::Created { kind, name, id, .. } => {
                match out
                    .iter_mut()
                    .rev()
                    .find(|x| x.kind == *kind && x.name == *name && x.id.is_none())
                {
                    Some(x) => x.id = Some(id.clone()),
                    None => out.push(Resource {
                        kind: *kind,
                        name: name.clone(),
                        id: Some(id.clone()),
                        deleted: false,
                    }),
                }
            }
            Record::Deleted { kind, id, .. } => {
                for x in out.iter_mut() {
                    if x.kind == *kind && x.id.as_deref() == Some(id.as_str()) {
                        x.deleted = true;
                    }
                }
            }
            Record::Finished { .. } | Record::Cloud { .. } | Record::Cleaned { .. } => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_the_file_and_fold_into_resources() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs/r1.jsonl");
        let mut j = Journal::create(&path, "r1").unwrap();
        j.intent("keypair", Kind::Keypair, "forge-r1-key").unwrap();
        j.created("keypair", Kind::Keypair, "forge-r1-key", "forge-r1-key")
            .unwrap();
        j.intent("boot server", Kind::Server, "forge-r1").unwrap();
        j.created("boot server", Kind::Server, "forge-r1", "uuid-1")
            .unwrap();
        j.intent("snapshot", Kind::Image, "forge-r1-image").unwrap();
        j.deleted(Kind::Server, "uuid-1").unwrap();
        let read_back = read(&path).unwrap();
        assert_eq!(read_back, j.records());
        let res = resources(&read_back);
        assert_eq!(res.len(), 3);
        assert_eq!(res[1].id.as_deref(), Some("uuid-1"));
        assert!(res[1].deleted);
        assert!(!res[0].deleted);
        assert_eq!(res[2].id, None, "intent without an id: may exist");
        // The kinds keep the spelling journals have always had.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#""kind":"keypair""#) && text.contains(r#""kind":"server""#));
        assert_eq!(res[1].kind, Kind::Server);
    }

    #[test]
    fn a_torn_last_line_is_ignored_but_a_bad_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let good = r#"{"event":"intent","run_id":"r","step":"s","kind":"server","name":"n"}"#;
        std::fs::write(&path, format!("{good}\n{{\"event\":\"crea")).unwrap();
        assert_eq!(read(&path).unwrap().len(), 1);
        std::fs::write(&path, format!("garbage\n{good}\n")).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("j.jsonl:1"), "{err}");
    }

    #[test]
    fn appending_after_a_torn_line_keeps_the_journal_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let good = r#"{"event":"intent","run_id":"r","step":"s","kind":"server","name":"n"}"#;
        std::fs::write(&path, format!("{good}\n{{\"event\":\"crea")).unwrap();
        let mut j = Journal::reopen(&path, "r").unwrap();
        j.deleted(Kind::Server, "abc").unwrap();
        drop(j);
        let records = read(&path).unwrap();
        assert_eq!(records.len(), 2, "{records:?}");
        // A file that is nothing but a torn line is emptied, too.
        std::fs::write(&path, "{\"event\":\"inte").unwrap();
        let mut j = Journal::create(&path, "r").unwrap();
        j.finished(true).unwrap();
        drop(j);
        assert_eq!(read(&path).unwrap().len(), 1);
    }
}
