//! The SSH remote (russh): runs the validator engine's commands on a running server.
//!
//! - Authentication: one private key file (ed25519, RSA, ECDSA; OpenSSH or PEM format), decrypted
//!   with the passphrase in [`PASSPHRASE_ENV`] when it is encrypted. Key material never reaches a log,
//!   an error or `Debug` output.
//! - Host keys: checked against a known_hosts file. Strict by default (an unknown host is refused);
//!   [`HostKeyPolicy::AcceptNew`] records a host seen for the first time. A changed key is always
//!   refused.
//! - Connecting retries refused/unreachable/reset connections with backoff until the connect
//!   timeout, and stops at once when cancelled. Wrong keys and host-key problems are not retried.
//! - Each command is one SSH `exec` channel, run through `/bin/sh -c` as root (`sudo -n` when the
//!   login user is not root). [`Remote::run_script`] and [`Remote::write_file`] send the file on the
//!   command's stdin, so a script's upload, chmod and run cost one round trip.
//! - Cancelling (the token given to [`SshRemote::connect`], or dropping a command's future) sends
//!   SIGTERM to the command and closes its channel. OpenSSH delivers that signal only for non-root
//!   logins (it refuses signal requests in root sessions, which run without privilege
//!   separation); a root command stops when it next writes to the closed channel.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use russh::client::{self, Handle, Msg};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, ChannelWriteHalf, Sig};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::{shell_quote, CommandOutput, Remote, RemoteError};

/// Environment variable holding the passphrase of an encrypted private key.
pub const PASSPHRASE_ENV: &str = "FORGE_SSH_KEY_PASSPHRASE";

/// Where to connect: `USER@HOST[:PORT]` (IPv6 as `USER@[ADDR]:PORT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: String,
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for SshTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}@[{}]:{}", self.user, self.host, self.port)
        } else {
            write!(f, "{}@{}:{}", self.user, self.host, self.port)
        }
    }
}

impl FromStr for SshTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let expected = "expected USER@HOST or USER@HOST:PORT";
        let (user, rest) = s
            .split_once('@')
            .ok_or_else(|| format!("invalid SSH target {s:?}: no user ({expected})"))?;
        if user.is_empty() {
            return Err(format!("invalid SSH target {s:?}: empty user ({expected})"));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("invalid SSH target {s:?}: missing ']' ({expected})"))?;
            match after {
                "" => (host, None),
                p => match p.strip_prefix(':') {
                    Some(p) => (host, Some(p)),
                    None => return Err(format!("invalid SSH target {s:?} ({expected})")),
                },
            }
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h, Some(p)),
                Some(_) => {
                    return Err(format!(
                        "invalid SSH target {s:?}: write an IPv6 address as [ADDR]:PORT"
                    ))
                }
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(format!("invalid SSH target {s:?}: empty host ({expected})"));
        }
        let port = match port {
            None => 22,
            Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| {
                format!("invalid SSH target {s:?}: port {p:?} is not a number in 1..65535")
            })?,
        };
        Ok(SshTarget {
            user: user.to_string(),
            host: host.to_string(),
            port,
        })
    }
}

/// What to do with a host whose key is not in the known_hosts file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// Refuse it (like OpenSSH's `StrictHostKeyChecking=yes`).
    #[default]
    Strict,
    /// Record its key and go on (like `StrictHostKeyChecking=accept-new`). A changed key is still
    /// refused.
    AcceptNew,
}

/// Everything needed to open an SSH session.
#[derive(Debug, Clone)]
pub struct SshOptions {
    pub target: SshTarget,
    /// Private key file.
    pub key_file: PathBuf,
    /// Passphrase for an encrypted key (see [`SshOptions::passphrase_from_env`]).
    pub passphrase: Option<SecretString>,
    /// The known_hosts file checked (and, with `AcceptNew`, appended to).
    pub known_hosts: PathBuf,
    pub host_key_policy: HostKeyPolicy,
    /// How long to keep trying to connect (TCP connect, handshake and authentication).
    pub connect_timeout: Duration,
    /// Treat a rejected key as "not yet" and keep trying until `connect_timeout`: a server that
    /// just booted runs sshd before cloud-init has installed the key (Packer retries too). Off
    /// for hosts that are already up, where a rejection is an answer.
    pub retry_rejected_key: bool,
}

impl SshOptions {
    /// Options with the defaults: `~/.ssh/known_hosts`, strict, 30 s, passphrase from
    /// [`PASSPHRASE_ENV`].
    pub fn new(target: SshTarget, key_file: PathBuf) -> SshOptions {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        SshOptions {
            target,
            key_file,
            passphrase: Self::passphrase_from_env(),
            known_hosts: home.join(".ssh").join("known_hosts"),
            host_key_policy: HostKeyPolicy::Strict,
            connect_timeout: Duration::from_secs(30),
            retry_rejected_key: false,
        }
    }

    /// The passphrase in [`PASSPHRASE_ENV`], if set and not empty.
    pub fn passphrase_from_env() -> Option<SecretString> {
        std::env::var(PASSPHRASE_ENV)
            .ok()
            .filter(|p| !p.is_empty())
            .map(SecretString::from)
    }
}

/// Why a connection could not be set up. Messages name the file or host and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("{path}: cannot read the private key: {reason}")]
    Key { path: String, reason: String },
    #[error("{path}: the private key is encrypted: put its passphrase in {PASSPHRASE_ENV}")]
    KeyEncrypted { path: String },
    #[error("{path}: the private key is encrypted and the passphrase in {PASSPHRASE_ENV} does not open it")]
    KeyPassphrase { path: String },
    #[error("{target}: host key {fingerprint} is not in {known_hosts}; add it there, or pass --accept-new to record it on first sight")]
    UnknownHostKey {
        target: String,
        fingerprint: String,
        known_hosts: String,
    },
    #[error("{target}: HOST KEY CHANGED: the server offered {fingerprint}, which differs from {known_hosts}:{line}; refusing to connect (possible man-in-the-middle)")]
    HostKeyChanged {
        target: String,
        fingerprint: String,
        known_hosts: String,
        line: usize,
    },
    #[error("{known_hosts}: cannot use the known_hosts file: {reason}")]
    KnownHosts { known_hosts: String, reason: String },
    #[error("{target}: the server refused the key {key} for user {user}")]
    AuthRejected {
        target: String,
        user: String,
        key: String,
    },
    #[error("{target}: user {user} cannot run commands as root: `sudo -n` failed: {reason}")]
    NoSudo {
        target: String,
        user: String,
        reason: String,
    },
    #[error("cannot reach {target} within {secs} s: {last}")]
    Timeout {
        target: String,
        secs: u64,
        last: String,
    },
    #[error("cancelled")]
    Cancelled,
}

impl From<SshError> for RemoteError {
    fn from(e: SshError) -> RemoteError {
        match e {
            SshError::Cancelled => RemoteError::Cancelled,
            SshError::Timeout { target, secs, last } => RemoteError::Unreachable {
                target,
                reason: format!("no connection within {secs} s: {last}"),
            },
            // The message already names the host or the file; Transport only adds a prefix.
            other => RemoteError::Transport {
                target: "ssh".into(),
                reason: other.to_string(),
            },
        }
    }
}

/// A connected, authenticated SSH session that implements [`Remote`].
pub struct SshRemote {
    handle: Handle<HostKeyChecker>,
    target: SshTarget,
    /// Commands go through `sudo -n` (the login user is not `root`).
    sudo: bool,
    cancel: CancellationToken,
    distro: OnceCell<String>,
    commands: AtomicUsize,
}

impl std::fmt::Debug for SshRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshRemote")
            .field("target", &self.target)
            .field("sudo", &self.sudo)
            .finish_non_exhaustive()
    }
}

/// The outcome of the host-key check, recorded by the handler because russh only reports a
/// generic "unknown key" when the check says no.
#[derive(Debug, Clone)]
enum HostKeyProblem {
    Unknown { fingerprint: String },
    Changed { fingerprint: String, line: usize },
    File(String),
}

/// The russh client handler: checks the server's host key against the known_hosts file.
struct HostKeyChecker {
    host: String,
    port: u16,
    known_hosts: PathBuf,
    policy: HostKeyPolicy,
    problem: Arc<Mutex<Option<HostKeyProblem>>>,
}

impl HostKeyChecker {
    fn verdict(&self, key: &PublicKey) -> Result<(), HostKeyProblem> {
        use russh::keys::known_hosts::{known_host_keys_path, learn_known_hosts_path};
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let known = known_host_keys_path(&self.host, self.port, &self.known_hosts)
            .map_err(|e| HostKeyProblem::File(e.to_string()))?;
        let mut changed_line = None;
        for (line, recorded) in &known {
            if recorded.key_data() == key.key_data() {
                return Ok(());
            }
            if recorded.algorithm() == key.algorithm() {
                changed_line = Some(*line);
            }
        }
        if let Some(line) = changed_line {
            return Err(HostKeyProblem::Changed { fingerprint, line });
        }
        match self.policy {
            HostKeyPolicy::AcceptNew if known.is_empty() => {
                learn_known_hosts_path(&self.host, self.port, key, &self.known_hosts)
                    .map_err(|e| HostKeyProblem::File(e.to_string()))?;
                tracing::info!(
                    "recorded the host key of {}:{} ({fingerprint}) in {}",
                    self.host,
                    self.port,
                    self.known_hosts.display()
                );
                Ok(())
            }
            // A host with keys of other types on record is not "new": offering an unknown
            // algorithm must not let a key in unchecked.
            _ => Err(HostKeyProblem::Unknown { fingerprint }),
        }
    }
}

impl client::Handler for HostKeyChecker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            // Host certificates would need a CA line in known_hosts; not supported.
            PublicKeyOrCertificate::Certificate(cert) => {
                let fingerprint = cert.public_key().fingerprint(HashAlg::Sha256).to_string();
                self.record(HostKeyProblem::Unknown { fingerprint });
                return Ok(false);
            }
        };
        match self.verdict(key) {
            Ok(()) => Ok(true),
            Err(problem) => {
                self.record(problem);
                Ok(false)
            }
        }
    }
}

impl HostKeyChecker {
    fn record(&self, problem: HostKeyProblem) {
        if let Ok(mut slot) = self.problem.lock() {
            *slot = Some(problem);
        }
    }
}

/// One failed connection attempt: retry it (network trouble) or give up (a decision was made).
enum Attempt {
    Retry(String),
    Fatal(SshError),
}

impl SshRemote {
    /// Load the key, connect (retrying until `opts.connect_timeout`), check the host key,
    /// authenticate, and for a non-root user check that `sudo -n` works.
    /// `cancel` stops the connect and, later, every running command.
    pub async fn connect(
        opts: &SshOptions,
        cancel: &CancellationToken,
    ) -> Result<SshRemote, SshError> {
        let key = Arc::new(load_key(&opts.key_file, opts.passphrase.as_ref())?);
        let config = Arc::new(client::Config {
            nodelay: true,
            keepalive_interval: Some(Duration::from_secs(15)),
            preferred: host_key_preference(opts),
            ..Default::default()
        });
        let deadline = Instant::now() + opts.connect_timeout;
        let mut backoff = Duration::from_millis(100);
        let mut attempts = 0u32;
        let handle = loop {
            attempts += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let attempt =
                tokio::time::timeout(remaining, Self::attempt(opts, config.clone(), key.clone()));
            let last = tokio::select! {
                _ = cancel.cancelled() => return Err(SshError::Cancelled),
                r = attempt => match r {
                    Ok(Ok(handle)) => break handle,
                    Ok(Err(Attempt::Fatal(e))) => return Err(e),
                    Ok(Err(Attempt::Retry(why))) => why,
                    Err(_) => "timed out".to_string(),
                },
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(SshError::Timeout {
                    target: opts.target.to_string(),
                    secs: opts.connect_timeout.as_secs(),
                    last: format!("{last} (after {attempts} attempts)"),
                });
            }
            tracing::debug!("connecting to {}: {last}; retrying", opts.target);
            // Jitter so that parallel builds do not retry in lockstep.
            let jitter = Duration::from_millis(rand::random::<u64>() % 50);
            let pause = (backoff + jitter).min(deadline - now);
            tokio::select! {
                _ = cancel.cancelled() => return Err(SshError::Cancelled),
                _ = tokio::time::sleep(pause) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        };
        let remote = SshRemote {
            handle,
            target: opts.target.clone(),
            sudo: opts.target.user != "root",
            cancel: cancel.child_token(),
            distro: OnceCell::new(),
            commands: AtomicUsize::new(0),
        };
        if remote.sudo {
            // Fail here with a clear message rather than with every command later.
            let out = remote.exec("true", None).await.map_err(|e| match e {
                RemoteError::Cancelled => SshError::Cancelled,
                e => SshError::NoSudo {
                    target: opts.target.to_string(),
                    user: opts.target.user.clone(),
                    reason: e.to_string(),
                },
            })?;
            if !out.success() {
                return Err(SshError::NoSudo {
                    target: opts.target.to_string(),
                    user: opts.target.user.clone(),
                    reason: out.stderr_lossy().trim().to_string(),
                });
            }
        }
        Ok(remote)
    }

    /// One TCP connect + SSH handshake + authentication.
    async fn attempt(
        opts: &SshOptions,
        config: Arc<client::Config>,
        key: Arc<PrivateKey>,
    ) -> Result<Handle<HostKeyChecker>, Attempt> {
        let target = opts.target.to_string();
        let problem = Arc::new(Mutex::new(None));
        let checker = HostKeyChecker {
            host: opts.target.host.clone(),
            port: opts.target.port,
            known_hosts: opts.known_hosts.clone(),
            policy: opts.host_key_policy,
            problem: problem.clone(),
        };
        let addr = (opts.target.host.as_str(), opts.target.port);
        let mut handle = match client::connect(config, addr, checker).await {
            Ok(h) => h,
            Err(e) => {
                let recorded = problem.lock().ok().and_then(|mut p| p.take());
                let known_hosts = opts.known_hosts.display().to_string();
                return Err(match recorded {
                    Some(HostKeyProblem::Unknown { fingerprint }) => {
                        Attempt::Fatal(SshError::UnknownHostKey {
                            target,
                            fingerprint,
                            known_hosts,
                        })
                    }
                    Some(HostKeyProblem::Changed { fingerprint, line }) => {
                        Attempt::Fatal(SshError::HostKeyChanged {
                            target,
                            fingerprint,
                            known_hosts,
                            line,
                        })
                    }
                    Some(HostKeyProblem::File(reason)) => Attempt::Fatal(SshError::KnownHosts {
                        known_hosts,
                        reason,
                    }),
                    None => Attempt::Retry(e.to_string()),
                });
            }
        };
        let hash = if key.algorithm().is_rsa() {
            handle
                .best_supported_rsa_hash()
                .await
                .map_err(|e| Attempt::Retry(e.to_string()))?
                .flatten()
        } else {
            None
        };
        let auth = handle
            .authenticate_publickey(
                opts.target.user.clone(),
                PrivateKeyWithHashAlg::new(key, hash),
            )
            .await
            .map_err(|e| Attempt::Retry(e.to_string()))?;
        if auth.success() {
            return Ok(handle);
        }
        let rejected = SshError::AuthRejected {
            target,
            user: opts.target.user.clone(),
            key: opts.key_file.display().to_string(),
        };
        if opts.retry_rejected_key {
            Err(Attempt::Retry(rejected.to_string()))
        } else {
            Err(Attempt::Fatal(rejected))
        }
    }

    /// How many commands (SSH round trips) this session has run.
    pub fn commands_run(&self) -> usize {
        self.commands.load(Ordering::Relaxed)
    }

    /// Whether commands go through `sudo -n`.
    pub fn uses_sudo(&self) -> bool {
        self.sudo
    }

    /// Say goodbye to the server (dropping the remote also ends the session, less politely).
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }

    /// The full command line sent to the server for `cmd`: `/bin/sh -c` whatever the login shell
    /// is, behind `sudo -n` for a non-root user.
    fn wrap(&self, cmd: &str) -> String {
        if self.sudo {
            format!("sudo -n -- /bin/sh -c {}", shell_quote(cmd))
        } else {
            format!("/bin/sh -c {}", shell_quote(cmd))
        }
    }

    /// Run `cmd` (as root) in one channel, feeding `stdin` if given (else an immediate EOF).
    async fn exec(&self, cmd: &str, stdin: Option<&[u8]>) -> Result<CommandOutput, RemoteError> {
        let transport = |reason: String| RemoteError::Transport {
            target: self.target.to_string(),
            reason,
        };
        if self.cancel.is_cancelled() {
            return Err(RemoteError::Cancelled);
        }
        self.commands.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let channel = tokio::select! {
            _ = self.cancel.cancelled() => return Err(RemoteError::Cancelled),
            c = self.handle.channel_open_session() => c.map_err(|e| transport(format!("cannot open a session channel: {e}")))?,
        };
        let (mut read, write) = channel.split();
        // From here on, leaving early (cancel, error, or the caller dropping this future) stops the
        // remote command.
        let mut guard = ChannelGuard(Some(write));
        let write = guard.half();
        let send = async {
            write
                .exec(true, self.wrap(cmd))
                .await
                .map_err(|e| transport(format!("cannot start the command: {e}")))?;
            if let Some(data) = stdin {
                write
                    .data_bytes(bytes::Bytes::copy_from_slice(data))
                    .await
                    .map_err(|e| transport(format!("cannot send the command's input: {e}")))?;
            }
            write
                .eof()
                .await
                .map_err(|e| transport(format!("cannot close the command's input: {e}")))
        };
        tokio::select! {
            _ = self.cancel.cancelled() => return Err(RemoteError::Cancelled),
            r = send => r?,
        }

        let mut out = CommandOutput::default();
        let mut status = None;
        loop {
            let msg = tokio::select! {
                _ = self.cancel.cancelled() => return Err(RemoteError::Cancelled),
                m = read.wait() => m,
                // The command exited but the channel stays open: a background process it started
                // still holds its stdout/stderr (`service x start` without redirection). OpenSSH's
                // client would hang; close the channel instead, without signalling the process.
                _ = tokio::time::sleep(OUTPUT_LINGER), if status.is_some() => {
                    tracing::debug!(
                        "{}: command exited but its output stays open (a background process?); closing the channel",
                        self.target
                    );
                    let _ = write.close().await;
                    break;
                }
            };
            match msg {
                Some(ChannelMsg::Data { data }) => out.stdout.extend_from_slice(&data),
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                    out.stderr.extend_from_slice(&data)
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    status = Some(i32::try_from(exit_status).unwrap_or(255))
                }
                Some(ChannelMsg::ExitSignal {
                    signal_name,
                    error_message,
                    ..
                }) => {
                    // Like a shell: killed by a signal is a failure, not a transport error.
                    status = Some(128 + signal_number(&signal_name));
                    if !error_message.is_empty() {
                        out.stderr.extend_from_slice(error_message.as_bytes());
                    }
                }
                Some(ChannelMsg::Failure) => {
                    return Err(transport("the server refused to run the command".into()))
                }
                Some(ChannelMsg::Close) | None => break,
                Some(_) => {}
            }
        }
        guard.disarm();
        out.status = status.ok_or_else(|| {
            transport("the connection closed before the command reported its exit status".into())
        })?;
        tracing::debug!(
            "{}: command finished with status {} in {:?}",
            self.target,
            out.status,
            started.elapsed()
        );
        Ok(out)
    }
}

/// How long to wait for the rest of a command's output after it exited (see [`SshRemote::exec`]).
const OUTPUT_LINGER: Duration = Duration::from_secs(2);

/// Stops a remote command whose future is dropped before it finished: SIGTERM (OpenSSH honours
/// `signal` requests) then close the channel. Hand-written because russh channels do nothing on
/// drop.
struct ChannelGuard(Option<ChannelWriteHalf<Msg>>);

impl ChannelGuard {
    fn half(&self) -> &ChannelWriteHalf<Msg> {
        // Always Some until disarm/drop; the Option only exists so Drop can move it out.
        self.0
            .as_ref()
            .unwrap_or_else(|| unreachable!("guard used after disarm"))
    }
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for ChannelGuard {
    fn drop(&mut self) {
        if let Some(write) = self.0.take() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = write.signal(Sig::TERM).await;
                    let _ = write.close().await;
                });
            }
        }
    }
}

fn signal_number(sig: &Sig) -> i32 {
    match sig {
        Sig::HUP => 1,
        Sig::INT => 2,
        Sig::QUIT => 3,
        Sig::ILL => 4,
        Sig::ABRT => 6,
        Sig::FPE => 8,
        Sig::KILL => 9,
        Sig::USR1 => 10,
        Sig::SEGV => 11,
        Sig::PIPE => 13,
        Sig::ALRM => 14,
        Sig::TERM => 15,
        _ => 0,
    }
}

/// Ask for the host-key algorithms already recorded for this host first, as OpenSSH does:
/// otherwise a host recorded with, say, only its ECDSA key would present its ed25519 key and be
/// refused as unknown. Unreadable files are reported later, by the host-key check itself.
fn host_key_preference(opts: &SshOptions) -> russh::Preferred {
    use russh::keys::known_hosts::known_host_keys_path;
    use russh::keys::Algorithm;
    let default = russh::Preferred::default();
    let known = known_host_keys_path(&opts.target.host, opts.target.port, &opts.known_hosts)
        .unwrap_or_default();
    let mut first: Vec<Algorithm> = Vec::new();
    for (_, key) in &known {
        let algs = match key.algorithm() {
            // A recorded RSA key can sign with SHA-2 (the server offers what it allows).
            Algorithm::Rsa { .. } => vec![
                Algorithm::Rsa {
                    hash: Some(HashAlg::Sha512),
                },
                Algorithm::Rsa {
                    hash: Some(HashAlg::Sha256),
                },
            ],
            other => vec![other],
        };
        for a in algs {
            if !first.contains(&a) {
                first.push(a);
            }
        }
    }
    if first.is_empty() {
        return default;
    }
    let rest = default.key.iter().filter(|a| !first.contains(a)).cloned();
    let key: Vec<Algorithm> = first.iter().cloned().chain(rest).collect();
    russh::Preferred {
        key: key.into(),
        ..default
    }
}

/// Read a private key, decrypting it with `passphrase` when needed. Errors name the file, never
/// the key or the passphrase.
fn load_key(path: &Path, passphrase: Option<&SecretString>) -> Result<PrivateKey, SshError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| SshError::Key {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    use russh::keys::{decode_secret_key, Error};
    match decode_secret_key(&text, passphrase.map(|p| p.expose_secret())) {
        Ok(key) => Ok(key),
        Err(Error::KeyIsEncrypted) => Err(SshError::KeyEncrypted { path: shown }),
        // A wrong passphrase surfaces as a generic decryption error; tell it apart by whether
        // the key asks for one at all.
        Err(_)
            if passphrase.is_some()
                && matches!(decode_secret_key(&text, None), Err(Error::KeyIsEncrypted)) =>
        {
            Err(SshError::KeyPassphrase { path: shown })
        }
        Err(e) => Err(SshError::Key {
            path: shown,
            reason: e.to_string(),
        }),
    }
}

/// The `ID` field of an os-release file, unquoted; `linux` when absent (os-release(5) default).
pub fn os_release_id(text: &str) -> String {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("ID="))
        .next_back()
        .map(|v| {
            let v = v.trim();
            let unquoted = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            unquoted.replace("\\\"", "\"").to_ascii_lowercase()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "linux".to_string())
}

#[async_trait]
impl Remote for SshRemote {
    fn describe(&self) -> String {
        self.target.to_string()
    }

    async fn run(&self, cmd: &str) -> Result<CommandOutput, RemoteError> {
        self.exec(cmd, None).await
    }

    async fn write_file(&self, path: &str, data: &[u8], mode: u32) -> Result<(), RemoteError> {
        let p = shell_quote(path);
        let cmd = format!("umask 077 && cat > {p} && chmod {mode:o} {p}");
        let out = self.exec(&cmd, Some(data)).await?;
        if out.success() {
            Ok(())
        } else {
            Err(RemoteError::Transport {
                target: self.target.to_string(),
                reason: format!("cannot write {path}: {}", out.stderr_lossy().trim()),
            })
        }
    }

    async fn distro(&self) -> Result<String, RemoteError> {
        self.distro
            .get_or_try_init(|| async {
                let out = self.exec("cat /etc/os-release", None).await?;
                if !out.success() {
                    return Err(RemoteError::Transport {
                        target: self.target.to_string(),
                        reason: format!(
                            "cannot read /etc/os-release: {}",
                            out.stderr_lossy().trim()
                        ),
                    });
                }
                Ok(os_release_id(&out.stdout_lossy()))
            })
            .await
            .cloned()
    }

    /// One round trip: the script travels on stdin of a single command that writes it, makes it
    /// executable and runs `cmd` (stdin then `/dev/null`, as for any other command).
    async fn run_script(
        &self,
        path: &str,
        content: &[u8],
        cmd: &str,
    ) -> Result<CommandOutput, RemoteError> {
        let p = shell_quote(path);
        let full = format!(
            "umask 077 && cat > {p} && chmod 700 {p} && exec /bin/sh -c {} </dev/null",
            shell_quote(cmd)
        );
        self.exec(&full, Some(content)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        let t: SshTarget = "root@10.0.0.5".parse().unwrap();
        assert_eq!(
            (t.user.as_str(), t.host.as_str(), t.port),
            ("root", "10.0.0.5", 22)
        );
        let t: SshTarget = "debian@host.example:2222".parse().unwrap();
        assert_eq!(
            (t.user.as_str(), t.host.as_str(), t.port),
            ("debian", "host.example", 2222)
        );
        let t: SshTarget = "u@[fe80::1]:2200".parse().unwrap();
        assert_eq!((t.host.as_str(), t.port), ("fe80::1", 2200));
        assert_eq!(t.to_string(), "u@[fe80::1]:2200");
        for bad in [
            "host",
            "@host",
            "u@",
            "u@h:0",
            "u@h:x",
            "u@h:70000",
            "u@fe80::1",
            "u@[::1",
        ] {
            let err = bad.parse::<SshTarget>().unwrap_err();
            assert!(err.contains("invalid SSH target"), "{bad}: {err}");
        }
    }

    #[test]
    fn reads_os_release_id() {
        assert_eq!(os_release_id("NAME=\"Debian\"\nID=debian\n"), "debian");
        assert_eq!(os_release_id("ID=\"rhel\"\nID_LIKE=\"fedora\"\n"), "rhel");
        assert_eq!(os_release_id("ID='ubuntu'\n"), "ubuntu");
        assert_eq!(os_release_id("NAME=x\n"), "linux");
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let mut o = SshOptions::new("root@h".parse().unwrap(), "/k".into());
        o.passphrase = Some(SecretString::from("hunter2"));
        assert!(!format!("{o:?}").contains("hunter2"));
    }

    #[test]
    fn key_errors_name_the_file_and_never_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(
            &path,
            "-----BEGIN OPENSSH PRIVATE KEY-----\nnot base64 at all\n",
        )
        .unwrap();
        let err = load_key(&path, None).unwrap_err().to_string();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
        assert!(!err.contains("not base64"), "{err}");
        let err = load_key(&dir.path().join("missing"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read the private key"), "{err}");
    }
}
