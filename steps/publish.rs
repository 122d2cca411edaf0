//! Step 10, publish: set the new image's properties (the template's, plus forge's own:
//! `forge_run_id`, `forge_source_image` and the build's identity such as
//! `forge_template`/`forge_build`), tags, visibility and min_disk in one JSON-patch request, then
//! share it with the members. The image is the snapshot (OpenStack build) or the upload
//! (image-file build). Nothing to clean up of its own: on a later failure the step that made
//! the image deletes it.

use std::collections::BTreeMap;

use anyhow::{anyhow, Context};
use async_trait::async_trait;

use crate::openstack::image::{ImageClient, ImageUpdate, Visibility};
use crate::pipeline::{Step, StepContext};
use crate::steps::BuildState;

pub struct PublishStep {
    pub images: ImageClient,
    pub properties: BTreeMap<String, String>,
    /// forge's own properties (`forge_template`, `forge_build`, ...), set after the template's so
    /// a template cannot forge them.
    pub forge_properties: BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub visibility: Option<Visibility>,
    pub min_disk: Option<u64>,
    /// Project ids to share the image with.
    pub members: Vec<String>,
}

#[async_trait]
impl Step<BuildState> for PublishStep {
    fn name(&self) -> &str {
        "publish"
    }

    async fn run(&mut self, state: &mut BuildState, cx: &StepContext) -> anyhow::Result<()> {
        let id = state
            .image_id
            .clone()
            .ok_or_else(|| anyhow!("no image to publish"))?;
        let current = self.images.get(&id).await?;
        let mut properties = self.properties.clone();
        properties.extend(self.forge_properties.clone());
        properties.insert("forge_run_id".into(), state.run_id.clone());
        if let Some(src) = &state.source_image {
            properties.insert("forge_source_image".into(), src.id.clone());
        }
        let update = ImageUpdate {
            set_properties: properties,
            add_tags: self.tags.clone(),
            visibility: self.visibility,
            min_disk: self.min_disk,
            ..ImageUpdate::default()
        };
        let image = self
            .images
            .update(&current, &update)
            .await
            .with_context(|| format!("publishing image {id}"))?;
        for member in &self.members {
            self.images
                .add_member(&id, member)
                .await
                .with_context(|| format!("sharing image {id} with project {member}"))?;
        }
        cx.progress.println(&format!(
            "    published {} [{}] visibility {}",
            image.describe(),
            image.tags.join(", "),
            image.visibility
        ));
        state.image = Some(image);
        Ok(())
    }
}
