//! Publish: set the new image's properties (the template's, plus forge's own:
//! `forge_run_id`, `forge_source_image` and the build's identity such as
//! `forge_template`/`forge_build`), tags, visibility and min_disk in one JSON-patch request, then
//! share it with the members. The image is the snapshot (OpenStack build) or the upload
//! (image-file build). Nothing to clean up of its own: on a later failure the step that made
//! the image deletes it.
//!
//! `forge_fingerprint` (what `--skip-unchanged` looks for) is written last: in the same request
//! when there are no members, else in one more request after the sharing succeeded. So an
//! image left by a run that failed anywhere (even with `--on-error=abort`) never carries it.

use std::collections::BTreeMap;

use anyhow::{anyhow, Context};
use async_trait::async_trait;

use crate::fingerprint;
use crate::names;
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
        // Only this step may say an image is up to date, never the template.
        properties.remove(names::FINGERPRINT);
        properties.extend(self.forge_properties.clone());
        properties.insert(names::RUN_ID.into(), state.run_id.clone());
        if let Some(src) = &state.source_image {
            properties.insert(names::SOURCE_IMAGE.into(), src.id.clone());
        }
        let fingerprint = match (&state.inputs_digest, &state.source_image) {
            (Some(digest), Some(src)) => Some(fingerprint::fingerprint(digest, src)),
            _ => None,
        };
        let last = BTreeMap::from_iter(fingerprint.map(|f| (names::FINGERPRINT.to_string(), f)));
        if self.members.is_empty() {
            properties.extend(last.clone());
        }
        let update = ImageUpdate {
            set_properties: properties,
            add_tags: self.tags.clone(),
            visibility: self.visibility,
            min_disk: self.min_disk,
            ..ImageUpdate::default()
        };
        let mut image = self
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
        if !self.members.is_empty() && !last.is_empty() {
            let update = ImageUpdate {
                set_properties: last,
                ..ImageUpdate::default()
            };
            image = self
                .images
                .update(&image, &update)
                .await
                .with_context(|| format!("publishing image {id}: forge_fingerprint"))?;
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
