//! Connect: open the SSH session provisioners use, retrying until `ssh_timeout`
//! (cancellable), a rejected key included (cloud-init may not have installed it yet).
//! `ssh_host` overrides the server's address. The host key of a server this build
//! just booted cannot be known beforehand, so it is trusted on first sight and pinned for the
//! rest of the build (a temporary known_hosts file). The session becomes the build's
//! [`BuildState::remote`]; cleanup closes it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use async_trait::async_trait;

use crate::pipeline::{Step, StepContext};
use crate::remote::ssh::{HostKeyPolicy, SshOptions, SshRemote, SshTarget};
use crate::steps::BuildState;

pub struct ConnectStep {
    pub username: String,
    /// `ssh_host`: connect here instead of the server's address.
    pub host: Option<String>,
    pub port: u16,
    pub timeout: Duration,
    /// Holds the per-build known_hosts file.
    known_hosts_dir: Option<tempfile::TempDir>,
    /// The session this step opened (also in `state.remote`), kept typed so cleanup can close it.
    session: Option<Arc<SshRemote>>,
}

impl ConnectStep {
    /// Connect as `username` to `host` (the server's address when `None`) on `port`, trying for
    /// at most `timeout`.
    pub fn new(username: String, host: Option<String>, port: u16, timeout: Duration) -> Self {
        ConnectStep {
            username,
            host,
            port,
            timeout,
            known_hosts_dir: None,
            session: None,
        }
    }
}

#[async_trait]
impl Step<BuildState> for ConnectStep {
    fn name(&self) -> &str {
        "connect"
    }

    async fn run(&mut self, state: &mut BuildState, cx: &StepContext) -> anyhow::Result<()> {
        let host = self
            .host
            .clone()
            .or_else(|| state.server_address.clone())
            .ok_or_else(|| {
                anyhow!("the server has no IPv4 address; set ssh_host or floating_ip_network")
            })?;
        let key: PathBuf = state
            .keypair
            .as_ref()
            .map(|k| k.private_key_file.clone())
            .ok_or_else(|| anyhow!("no keypair to log in with"))?;
        let dir = tempfile::Builder::new()
            .prefix("forge-known-hosts-")
            .tempdir()
            .context("creating a temporary known_hosts directory")?;
        let target = SshTarget {
            user: self.username.clone(),
            host,
            port: self.port,
        };
        let mut opts = SshOptions::new(target.clone(), key);
        opts.known_hosts = dir.path().join("known_hosts");
        opts.host_key_policy = HostKeyPolicy::AcceptNew;
        opts.connect_timeout = self.timeout;
        // cloud-init installs the key some time after sshd starts answering.
        opts.retry_rejected_key = true;
        self.known_hosts_dir = Some(dir);
        let remote = SshRemote::connect(&opts, &cx.cancel)
            .await
            .with_context(|| format!("connecting to {target}"))?;
        cx.progress.println(&format!("    connected to {target}"));
        let session = Arc::new(remote);
        state.remote = Some(session.clone());
        self.session = Some(session);
        Ok(())
    }

    async fn cleanup(&mut self, state: &mut BuildState, _cx: &StepContext) -> anyhow::Result<()> {
        state.remote = None;
        if let Some(ssh) = self.session.take() {
            // Other holders (none after provisioning) would keep it open until they drop it.
            if let Ok(ssh) = Arc::try_unwrap(ssh) {
                ssh.close().await;
            }
        }
        self.known_hosts_dir = None;
        Ok(())
    }
}
