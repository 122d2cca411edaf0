//! Close image: unmount, sync and close the libguestfs session
//! (a failed sync fails the build), then flatten overlay and input into a standalone qcow2: the
//! template's `output`, or a temp file `upload image` sends and `open image`'s cleanup removes.
//! Cleanup removes the `output` this step wrote unless the build succeeded: a failed build
//! leaves no artifact behind.

use std::path::PathBuf;

use anyhow::{anyhow, Context};
use async_trait::async_trait;

use crate::pipeline::{Step, StepContext};
use crate::steps::open_image::close;
use crate::steps::BuildState;

pub struct CloseImageStep {
    /// `output`: where the packed qcow2 is kept.
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
        let packed = disk
            .staging
            .flatten(self.output.as_deref(), &cx.cancel)
            .await
            .context("flattening the disk image")?;
        disk.wrote_output = self.output.is_some();
        let size = std::fs::metadata(&packed).map(|m| m.len()).unwrap_or(0);
        cx.progress.println(&format!(
            "    packed {} ({:.1} MiB)",
            packed.display(),
            size as f64 / 1048576.0
        ));
        disk.packed = Some(packed);
        Ok(())
    }

    async fn cleanup(&mut self, state: &mut BuildState, cx: &StepContext) -> anyhow::Result<()> {
        if cx.build_succeeded {
            return Ok(());
        }
        let Some(disk) = state.disk.as_mut().filter(|d| d.wrote_output) else {
            return Ok(());
        };
        if let Some(output) = disk.packed.take() {
            match std::fs::remove_file(&output) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("removing {}", output.display()))
                }
                _ => disk.wrote_output = false,
            }
        }
        Ok(())
    }

    fn leftovers(&self, state: &BuildState) -> Vec<String> {
        state
            .disk
            .iter()
            .filter(|d| d.wrote_output)
            .filter_map(|d| d.packed.as_ref())
            .map(|p| {
                let shown = p.display().to_string();
                format!(
                    "output {shown}: rm -- {}",
                    crate::remote::shell_quote(&shown)
                )
            })
            .collect()
    }
}
