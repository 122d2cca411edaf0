//! Flavor: resolve the template's `flavor` (id or name) to a Nova flavor. Nothing to
//! clean up.

use anyhow::Context;
use async_trait::async_trait;

use crate::openstack::compute::ComputeClient;
use crate::pipeline::{Step, StepContext};
use crate::steps::BuildState;

pub struct FlavorStep {
    pub compute: ComputeClient,
    /// Flavor id or name.
    pub flavor: String,
}

#[async_trait]
impl Step<BuildState> for FlavorStep {
    fn name(&self) -> &str {
        "flavor"
    }

    async fn run(&mut self, state: &mut BuildState, cx: &StepContext) -> anyhow::Result<()> {
        let flavor = self
            .compute
            .find_flavor(&self.flavor)
            .await
            .with_context(|| format!("flavor '{}'", self.flavor))?;
        cx.progress.println(&format!(
            "    flavor: {} ({}, {} MiB RAM, {} vCPU, {} GiB disk)",
            flavor.name, flavor.id, flavor.ram, flavor.vcpus, flavor.disk
        ));
        state.flavor = Some(flavor);
        Ok(())
    }
}
