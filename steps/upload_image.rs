//! Upload image (image-file builds, `forge pack --upload`): create the Glance image (recorded in
//! the journal before the call and the moment Glance returns its id, and tagged with
//! `forge_run_id`, so `forge cleanup` finds it even after a SIGKILL), stream the packed file
//! into it with its checksum verified, and wait until it is active (bounded by `image_timeout`,
//! cancellable). Like the snapshot step, it owns the image until the build succeeds: cleanup
//! deletes it otherwise.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context};
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::openstack::image::{Image, ImageClient, NewImage};
use crate::openstack::wait::WaitOptions;
use crate::pipeline::{Progress, Step, StepContext};
use crate::steps::BuildState;

pub struct UploadImageStep {
    pub images: ImageClient,
    /// The image's name (`image_name`).
    pub image_name: String,
    pub timeout: Duration,
}

#[async_trait]
impl Step<BuildState> for UploadImageStep {
    fn name(&self) -> &str {
        "upload image"
    }

    async fn run(&mut self, state: &mut BuildState, cx: &StepContext) -> anyhow::Result<()> {
        let (file, format) = state
            .disk
            .as_ref()
            .and_then(|d| d.packed.clone())
            .ok_or_else(|| anyhow!("no packed disk image to upload"))?;
        let mut new = NewImage::named(&self.image_name);
        new.disk_format = format;
        // As a snapshot carries it from createImage: `forge cleanup` and the tests find an
        // unfinished image by it before publish runs.
        new.properties = BTreeMap::from([("forge_run_id".to_string(), state.run_id.clone())]);
        state
            .journal
            .intent(self.name(), "image", &self.image_name)?;
        let created = self
            .images
            .create(&new)
            .await
            .with_context(|| format!("creating image {}", self.image_name))?;
        state.image_id = Some(created.id.clone());
        state
            .journal
            .created(self.name(), "image", &self.image_name, &created.id)?;
        cx.progress
            .println(&format!("    image: {} ({})", self.image_name, created.id));
        upload_and_wait(
            &self.images,
            &created.id,
            &file,
            self.timeout,
            &cx.cancel,
            &cx.progress,
        )
        .await?;
        Ok(())
    }

    async fn cleanup(&mut self, state: &mut BuildState, cx: &StepContext) -> anyhow::Result<()> {
        super::delete_unfinished_image(&self.images, state, cx).await
    }

    fn leftovers(&self, state: &BuildState) -> Vec<String> {
        super::image_leftovers(state)
    }
}

/// Stream `file` into the existing image `id` (checksum verified), then wait until it is active
/// (at most `timeout`). Cancelling abandons both.
async fn upload_and_wait(
    images: &ImageClient,
    id: &str,
    file: &Path,
    timeout: Duration,
    cancel: &CancellationToken,
    progress: &Progress,
) -> anyhow::Result<Image> {
    let upload = async {
        let report = images
            .upload_file(id, file, progress)
            .await
            .with_context(|| format!("uploading {} to image {id}", file.display()))?;
        tracing::info!(
            "uploaded {} at {:.1} MiB/s",
            file.display(),
            report.mib_per_sec()
        );
        images
            .wait_active(id, WaitOptions::with_timeout(timeout), cancel, progress)
            .await
            .with_context(|| format!("image {id} did not become active"))
    };
    tokio::select! {
        r = upload => r,
        () = cancel.cancelled() => Err(anyhow!("cancelled while uploading image {id}")),
    }
}
