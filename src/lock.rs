//! The per-template run lock: two `forge build` runs of the same template must not overlap on
//! one host (a slow night running into the next one would build twice and race on retention).
//!
//! The lock is an advisory `flock(2)` on `<state>/forge/locks/<stem>-<hash>.lock`, where
//! `<state>` is `$XDG_STATE_HOME` (or `~/.local/state`, the journal's base too) and `<hash>` is
//! the start of the sha256 of the template's canonical path, so `./t.hcl` and `/abs/t.hcl` are
//! the same lock. The kernel releases it when the process exits, however it exits: no stale
//! locks after a crash or SIGKILL. The file itself stays (removing it would let a third run lock
//! a fresh file while a second one holds the old); it holds the holder's pid and start time, for
//! the message the next run prints.
//!
//! `flock` through rustix (already in the tree via tempfile): `std::fs::File::try_lock` needs
//! Rust 1.89 and the crate's `rust-version` is 1.85.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};
use sha2::{Digest, Sha256};

/// Errors taking the lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error(
        "another forge run of {template} is in progress ({holder}); lock file {lock}",
        template = template.display(),
        lock = lock.display()
    )]
    Busy {
        template: PathBuf,
        lock: PathBuf,
        /// What the holder wrote into the lock file (`pid 123, started …`).
        holder: String,
    },
    #[error("{what} {path}: {source}", path = path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A held lock; dropping it (or exiting) releases it.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    _file: File,
}

impl RunLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A non-blocking `flock(2)` on `file`, exclusive or shared: `Ok(false)` when another open file
/// description holds a conflicting lock. Also marks build journals as live (`journal.rs`).
pub fn try_flock(file: &File, exclusive: bool) -> std::io::Result<bool> {
    let op = if exclusive {
        FlockOperation::NonBlockingLockExclusive
    } else {
        FlockOperation::NonBlockingLockShared
    };
    match flock(file, op) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Take the lock of `template` in the default lock directory, without waiting.
pub fn acquire(template: &Path) -> Result<RunLock, LockError> {
    acquire_in(&default_dir(), template)
}

/// Take the lock of `template` in `dir`, without waiting: [`LockError::Busy`] names the holder.
pub fn acquire_in(dir: &Path, template: &Path) -> Result<RunLock, LockError> {
    let canonical = template.canonicalize().map_err(|source| LockError::Io {
        what: "template",
        path: template.to_path_buf(),
        source,
    })?;
    let path = dir.join(lock_name(&canonical));
    let io = |what, source| LockError::Io {
        what,
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| io("lock directory of", e))?;
    // Not truncated on open: the holder's note must survive until we own the lock.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io("lock file", e))?;
    match try_flock(&file, true) {
        Ok(true) => {}
        Ok(false) => {
            let mut note = String::new();
            let _ = file.read_to_string(&mut note);
            let holder = match note.trim() {
                "" => "holder unknown".to_string(),
                n => n.to_string(),
            };
            return Err(LockError::Busy {
                template: canonical,
                lock: path,
                holder,
            });
        }
        Err(e) => return Err(io("locking", e)),
    }
    let note = format!(
        "pid {}, started {}",
        std::process::id(),
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    );
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(note.as_bytes()))
        .map_err(|e| io("lock file", e))?;
    Ok(RunLock { path, _file: file })
}

/// `$XDG_STATE_HOME/forge/locks` (`~/.local/state/forge/locks` when unset), like the journal.
pub fn default_dir() -> PathBuf {
    std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/var/tmp"))
        .join("forge/locks")
}

/// `<file stem>-<16 hex of sha256(canonical path)>.lock`: readable, and unique per path.
fn lock_name(canonical: &Path) -> String {
    let stem = canonical
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let hash = hex::encode(Sha256::digest(canonical.as_os_str().as_encoded_bytes()));
    format!("{stem}-{}.lock", &hash[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_of_the_same_template_is_refused_with_the_holder_named() {
        let dir = tempfile::tempdir().unwrap();
        let template = dir.path().join("t.pkr.hcl");
        std::fs::write(&template, "").unwrap();
        let locks = dir.path().join("locks");
        let held = acquire_in(&locks, &template).unwrap();
        // A different spelling of the same path is the same lock; flock conflicts between two
        // open file descriptions even within one process.
        let same = dir.path().join("./sub/../t.pkr.hcl");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let err = acquire_in(&locks, &same).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, LockError::Busy { .. }), "{msg}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())) && msg.contains("t.pkr.hcl"),
            "{msg}"
        );
        // Another template is independent.
        let other = dir.path().join("other.pkr.hcl");
        std::fs::write(&other, "").unwrap();
        let _other = acquire_in(&locks, &other).unwrap();
        // Released on drop.
        drop(held);
        // Another test of this process may be between fork and exec right now: its child then
        // shares the (close-on-exec) descriptor, and the lock, until it execs. Wait that out.
        let mut again = acquire_in(&locks, &template);
        for _ in 0..100 {
            if !matches!(again, Err(LockError::Busy { .. })) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            again = acquire_in(&locks, &template);
        }
        let again = again.unwrap();
        assert!(again.path().starts_with(&locks));
        assert!(again
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("t.pkr-"));
    }

    #[test]
    fn a_missing_template_is_an_error_not_a_lock() {
        let dir = tempfile::tempdir().unwrap();
        let err = acquire_in(dir.path(), &dir.path().join("absent.hcl")).unwrap_err();
        assert!(err.to_string().contains("absent.hcl"), "{err}");
    }
}
