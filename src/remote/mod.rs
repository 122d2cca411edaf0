//! How the validator engine reaches a target: one trait, implemented over SSH (running servers)
//! and libguestfs (disk images). The engine never knows which one it talks to.

use async_trait::async_trait;

#[cfg(feature = "guestfs")]
pub mod guestfs;

/// What a command printed and how it exited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOutput {
    /// Exit status; non-zero means the command failed (a validation failure, not a transport error).
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }
    pub fn stdout_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// A transport failure: the target could not be reached or did not answer. Unlike a command that
/// exits non-zero, this aborts a validator run (an `any` does not catch it).
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("cannot reach {target}: {reason}")]
    Unreachable { target: String, reason: String },
    #[error("{target}: {reason}")]
    Transport { target: String, reason: String },
    #[error("cancelled")]
    Cancelled,
}

/// A target that runs commands as root, writes files and reports its distro id.
#[async_trait]
pub trait Remote: Send + Sync {
    /// A short human name for messages (`root@10.0.0.5:22`, `disk.qcow2`).
    fn describe(&self) -> String;

    /// Run `cmd` through `/bin/sh -c` as root (via `sudo -n` when the login user is not root).
    /// A non-zero exit is returned in [`CommandOutput::status`], never as an error.
    async fn run(&self, cmd: &str) -> Result<CommandOutput, RemoteError>;

    /// Write `data` to the absolute `path` as root with the given permission bits.
    async fn write_file(&self, path: &str, data: &[u8], mode: u32) -> Result<(), RemoteError>;

    /// The distro id: `ID` from `/etc/os-release` over SSH, inspection under libguestfs
    /// (`debian`, `ubuntu`, `centos`, `rhel`, `fedora`, ...).
    async fn distro(&self) -> Result<String, RemoteError>;

    /// Write `content` to `path` (mode 0700), then run `cmd`. Remotes that can do this in one round
    /// trip (SSH: the content travels on the command's stdin) override it.
    async fn run_script(
        &self,
        path: &str,
        content: &[u8],
        cmd: &str,
    ) -> Result<CommandOutput, RemoteError> {
        self.write_file(path, content, 0o700).await?;
        self.run(cmd).await
    }
}

/// POSIX single-quote `s` for a shell: `it's` → `'it'\''s'`. Safe for any byte string, newlines
/// and `$(...)` included.
pub fn shell_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn quotes_hostile_values() {
        assert_eq!(shell_quote("plain"), "'plain'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$(rm -rf /)`x`\n"), "'$(rm -rf /)`x`\n'");
    }
}
pub mod ssh;
