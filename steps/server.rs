//! Boot server: create `forge-<run>` from the source image and flavor with the keypair,
//! networks, security groups, AZ, user data and config drive of the template, tagged with
//! `forge_run_id` metadata, and wait for ACTIVE. Cleanup deletes it and waits until it is gone.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, Context};
use async_trait::async_trait;

use crate::journal::Kind;
use crate::names;
use crate::openstack::compute::{ComputeClient, Networks, NewServer, Server};
use crate::openstack::network::NetworkClient;
use crate::openstack::wait::WaitOptions;
use crate::pipeline::{Step, StepContext};
use crate::steps::BuildState;

pub struct BootServerStep {
    pub compute: ComputeClient,
    pub network: NetworkClient,
    /// Network ids or names; empty means `none` (no network).
    pub networks: Vec<String>,
    pub security_groups: Vec<String>,
    pub availability_zone: Option<String>,
    pub user_data: Option<Vec<u8>>,
    pub config_drive: bool,
    /// Bound on ACTIVE and on deletion at cleanup.
    pub timeout: Duration,
}

#[async_trait]
impl Step<BuildState> for BootServerStep {
    fn name(&self) -> &str {
        "boot server"
    }

    async fn run(&mut self, state: &mut BuildState, cx: &StepContext) -> anyhow::Result<()> {
        let image = state
            .source_image
            .as_ref()
            .ok_or_else(|| anyhow!("no source image resolved"))?;
        let flavor = state
            .flavor
            .as_ref()
            .ok_or_else(|| anyhow!("no flavor resolved"))?;
        let name = names::server_name(&state.run_id);
        let mut new = NewServer::new(&name, &image.id, &flavor.id);
        new.networks = if self.networks.is_empty() {
            Networks::None
        } else {
            let mut ids = Vec::new();
            for n in &self.networks {
                ids.push(
                    self.network
                        .find_network(n)
                        .await
                        .with_context(|| format!("network '{n}'"))?,
                );
            }
            Networks::Ids(ids)
        };
        new.security_groups = self.security_groups.clone();
        new.availability_zone = self.availability_zone.clone();
        new.user_data = self.user_data.clone();
        new.config_drive = self.config_drive;
        new.metadata = BTreeMap::from([(names::RUN_ID.to_string(), state.run_id.clone())]);
        new.key_name = state.keypair.as_ref().map(|k| k.name.clone());

        state.journal.intent(self.name(), Kind::Server, &name)?;
        let id = self
            .compute
            .create_server(&new)
            .await
            .with_context(|| format!("creating server {name}"))?;
        // Recorded before the wait: a failed or interrupted boot is still cleaned up.
        state.server_id = Some(id.clone());
        state
            .journal
            .created(self.name(), Kind::Server, &name, &id)?;
        cx.progress.println(&format!("    server: {name} ({id})"));
        let server = self
            .compute
            .wait_active(
                &id,
                WaitOptions::with_timeout(self.timeout),
                &cx.cancel,
                &cx.progress,
            )
            .await
            .with_context(|| format!("server {id} did not become ACTIVE"))?;
        state.server_address = first_ipv4(&server);
        Ok(())
    }

    async fn cleanup(&mut self, state: &mut BuildState, cx: &StepContext) -> anyhow::Result<()> {
        let Some(id) = state.server_id.clone() else {
            return Ok(());
        };
        self.compute
            .delete_server_and_wait(
                &id,
                WaitOptions::with_timeout(self.timeout),
                &cx.cancel,
                &cx.progress,
            )
            .await
            .with_context(|| format!("deleting server {id}"))?;
        state.journal.deleted(Kind::Server, &id)?;
        state.server_id = None;
        Ok(())
    }

    fn leftovers(&self, state: &BuildState) -> Vec<String> {
        state
            .server_id
            .iter()
            .map(|id| format!("server {id}: openstack server delete {id}"))
            .collect()
    }
}

/// The first IPv4 address Nova reports for the server, fixed or floating.
fn first_ipv4(server: &Server) -> Option<String> {
    server
        .addresses
        .values()
        .filter_map(|v| v.as_array())
        .flatten()
        .filter(|a| a.get("version").and_then(|v| v.as_u64()) == Some(4))
        .find_map(|a| a.get("addr").and_then(|v| v.as_str()).map(str::to_string))
}
