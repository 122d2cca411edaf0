//! Snapshot: `createImage` of the stopped server, then wait for the image to become
//! active (bounded by `image_timeout`, cancellable). The step owns the new image until the
//! build succeeds: if anything fails later, cleanup deletes it (Packer leaks it).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, Context};
use async_trait::async_trait;

use crate::journal::Kind;
use crate::names;
use crate::openstack::compute::ComputeClient;
use crate::openstack::image::ImageClient;
use crate::openstack::wait::WaitOptions;
use crate::pipeline::{Step, StepContext};
use crate::steps::BuildState;

pub struct SnapshotStep {
    pub compute: ComputeClient,
    pub images: ImageClient,
    /// The image's name (`image_name`).
    pub image_name: String,
    pub timeout: Duration,
}

#[async_trait]
impl Step<BuildState> for SnapshotStep {
    fn name(&self) -> &str {
        "snapshot"
    }

    async fn run(&mut self, state: &mut BuildState, cx: &StepContext) -> anyhow::Result<()> {
        let server = state
            .server_id
            .clone()
            .ok_or_else(|| anyhow!("no server to snapshot"))?;
        // Nova copies the source image's properties into the snapshot. When the source is itself
        // a forge image, its identity would make this unpublished snapshot look like the parent
        // build's image to retention, `--skip-unchanged` and cleanup; blank it until publish.
        let mut metadata: BTreeMap<String, String> = names::INHERITED_IDENTITY
            .iter()
            .map(|k| (k.to_string(), String::new()))
            .collect();
        metadata.insert(names::RUN_ID.to_string(), state.run_id.clone());
        state
            .journal
            .intent(self.name(), Kind::Image, &self.image_name)?;
        let id = self
            .compute
            .create_image(&server, &self.image_name, &metadata)
            .await
            .with_context(|| format!("snapshotting server {server}"))?;
        state.image_id = Some(id.clone());
        state
            .journal
            .created(self.name(), Kind::Image, &self.image_name, &id)?;
        cx.progress
            .println(&format!("    image: {} ({id})", self.image_name));
        self.images
            .wait_active(
                &id,
                WaitOptions::with_timeout(self.timeout),
                &cx.cancel,
                &cx.progress,
            )
            .await
            .with_context(|| format!("image {id} did not become active"))?;
        Ok(())
    }

    async fn cleanup(&mut self, state: &mut BuildState, cx: &StepContext) -> anyhow::Result<()> {
        super::delete_unfinished_image(&self.images, state, cx).await
    }

    fn leftovers(&self, state: &BuildState) -> Vec<String> {
        super::image_leftovers(state)
    }
}
