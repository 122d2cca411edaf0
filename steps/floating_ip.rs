//! Floating IP (only when `floating_ip_network` is set): allocate an address from that
//! network and associate it with the server. Cleanup releases what this step allocated.

use anyhow::{anyhow, Context};
use async_trait::async_trait;

use crate::journal::Kind;
use crate::names;
use crate::openstack::network::NetworkClient;
use crate::pipeline::{Step, StepContext};
use crate::steps::BuildState;

pub struct FloatingIpStep {
    pub network: NetworkClient,
    /// Network id or name to allocate from.
    pub pool: String,
}

#[async_trait]
impl Step<BuildState> for FloatingIpStep {
    fn name(&self) -> &str {
        "floating IP"
    }

    async fn run(&mut self, state: &mut BuildState, cx: &StepContext) -> anyhow::Result<()> {
        let server = state
            .server_id
            .clone()
            .ok_or_else(|| anyhow!("no server to attach a floating IP to"))?;
        let net = self
            .network
            .find_network(&self.pool)
            .await
            .with_context(|| format!("floating IP network '{}'", self.pool))?;
        let label = names::floating_ip_label(&state.run_id);
        state
            .journal
            .intent(self.name(), Kind::FloatingIp, &label)?;
        let fip = self
            .network
            .allocate_floating_ip_described(&net, Some(&label))
            .await
            .context("allocating a floating IP")?;
        state
            .journal
            .created(self.name(), Kind::FloatingIp, &label, &fip.id)?;
        let address = fip.floating_ip_address.clone();
        state.floating_ip = Some(fip.clone());
        self.network
            .associate_floating_ip(&fip.id, &server)
            .await
            .with_context(|| format!("associating {address} with server {server}"))?;
        cx.progress.println(&format!("    floating IP: {address}"));
        state.server_address = Some(address);
        Ok(())
    }

    async fn cleanup(&mut self, state: &mut BuildState, _cx: &StepContext) -> anyhow::Result<()> {
        let Some(fip) = state.floating_ip.clone() else {
            return Ok(());
        };
        self.network
            .release_floating_ip(&fip.id)
            .await
            .with_context(|| format!("releasing floating IP {}", fip.floating_ip_address))?;
        state.journal.deleted(Kind::FloatingIp, &fip.id)?;
        state.floating_ip = None;
        Ok(())
    }

    fn leftovers(&self, state: &BuildState) -> Vec<String> {
        state
            .floating_ip
            .iter()
            .map(|f| {
                format!(
                    "floating IP {}: openstack floating ip delete {}",
                    f.floating_ip_address, f.id
                )
            })
            .collect()
    }
}
