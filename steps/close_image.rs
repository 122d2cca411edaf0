//! Close image: unmount, sync and close the libguestfs session (a failed sync fails the build),
//! then, when the image was an overlay, flatten overlay and input into a standalone qcow2 in
//! the temp dir: what `upload image` sends. An image changed in place is sent as it is.
//!
//! The template's `output` (`forge pack --output`) is replaced only when the whole build
//! succeeded, by this step's cleanup (one rename, after upload and publish): a failed or
//! interrupted build leaves the previous `output` as it was, and no new one.

use std::path::PathBuf;

use anyhow::{anyhow, Context};
use async_trait::async_trait;

use crate::pipeline::{Step, StepContext};
use crate::steps::open_image::close;
use crate::steps::BuildState;

pub struct CloseImageStep {
    /// `output`: where the flattened qcow2 is kept once the build succeeded.
    pub output: Option<PathBuf>,
}

#[async_trait]
impl Step<BuildState> for CloseImageStep {
    fn name(&self) -> &str {
        "close image"
    }

    async fn run(&mut self, state: &mut BuildState, cx: &StepContext) -> anyhow::Result<()> {
        let mut disk = state
            .disk
            .take()
            .ok_or_else(|| anyhow!("no disk image to close"))?;
        let closed = close(state, &mut disk).await;
        // Put it back whatever happened: `open image`'s cleanup removes the temp dir.
        let disk = state.disk.insert(disk);
        closed.context("closing the disk image")?;
        let packed = match (&disk.staging, &disk.in_place) {
            (Some(staging), _) => {
                let flat = staging
                    .flatten(&cx.cancel)
                    .await
                    .context("flattening the disk image")?;
                (flat, "qcow2".to_string())
            }
            (None, Some(in_place)) => in_place.clone(),
            // Opened with its writes discarded: nothing to send or keep.
            (None, None) => return Ok(()),
        };
        let size = std::fs::metadata(&packed.0).map(|m| m.len()).unwrap_or(0);
        cx.progress.println(&format!(
            "    packed {} ({:.1} MiB)",
            packed.0.display(),
            size as f64 / 1048576.0
        ));
        disk.packed = Some(packed);
        Ok(())
    }

    /// On success only: move the flattened file to `output`.
    async fn cleanup(&mut self, state: &mut BuildState, cx: &StepContext) -> anyhow::Result<()> {
        let (true, Some(output)) = (cx.build_succeeded, &self.output) else {
            return Ok(());
        };
        // Only a flattened file in the temp dir moves; an image changed in place stays.
        let Some(disk) = state.disk.as_mut().filter(|d| d.staging.is_some()) else {
            return Ok(());
        };
        let Some((flat, _)) = disk.packed.take() else {
            return Ok(());
        };
        crate::disk::keep(&flat, output)
            .with_context(|| format!("keeping the packed image as {}", output.display()))?;
        cx.progress
            .println(&format!("    wrote {}", output.display()));
        Ok(())
    }
}
