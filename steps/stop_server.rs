//! Stop server: stop the server and wait for SHUTOFF, so the snapshot is consistent.
//! Nothing to clean up (the boot step deletes the server).

use std::time::Duration;

use anyhow::{anyhow, Context};
use async_trait::async_trait;

use crate::openstack::compute::ComputeClient;
use crate::openstack::wait::WaitOptions;
use crate::pipeline::{Step, StepContext};
use crate::steps::BuildState;

pub struct StopServerStep {
    pub compute: ComputeClient,
    pub timeout: Duration,
}

#[async_trait]
impl Step<BuildState> for StopServerStep {
    fn name(&self) -> &str {
        "stop server"
    }

    async fn run(&mut self, state: &mut BuildState, cx: &StepContext) -> anyhow::Result<()> {
        let id = state
            .server_id
            .clone()
            .ok_or_else(|| anyhow!("no server to stop"))?;
        // The SSH session would only see the connection drop.
        state.remote = None;
        self.compute
            .stop_server(
                &id,
                WaitOptions::with_timeout(self.timeout),
                &cx.cancel,
                &cx.progress,
            )
            .await
            .with_context(|| format!("stopping server {id}"))?;
        Ok(())
    }
}
