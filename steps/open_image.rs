//! Open image: check the input's format, then open it through libguestfs (one appliance
//! launch) as the [`Target`] says: a copy-on-write overlay in a private temp dir (the input is
//! never written: image-file builds, `forge pack --output`), the image itself (`forge pack` in
//! place), or the image with its writes discarded (`forge pack --test-only`). The session
//! becomes the build's [`BuildState::remote`]. Cleanup closes the session if `close image` did
//! not, and removes the temp dir with everything in it (with `--on-error=abort` too: it goes
//! when forge exits).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use async_trait::async_trait;

use crate::disk::Staging;
use crate::pipeline::{Step, StepContext};
use crate::remote::guestfs::{detect_format, GuestfsOptions, GuestfsRemote};
use crate::steps::state::DiskState;
use crate::steps::BuildState;

/// What the appliance opens.
pub enum Target {
    /// An overlay over the input, in a temp dir made here: beside `output` (so the result is
    /// renamed into place) or in the system temp dir.
    Overlay { staging_parent: PathBuf },
    /// The input itself, read-write.
    InPlace,
    /// The input itself behind a throw-away snapshot: commands may write, the file never changes.
    DiscardWrites,
}

pub struct OpenImageStep {
    /// The input disk image (`path`, `--image`).
    pub path: PathBuf,
    /// The format the template declares (`format`) or `forge pack` detected; the file must have it.
    pub format: String,
    pub target: Target,
    /// `root_filesystem`; `None` finds the root by inspection.
    pub root_filesystem: Option<String>,
    /// `network`: give the appliance a network.
    pub network: bool,
}

#[async_trait]
impl Step<BuildState> for OpenImageStep {
    fn name(&self) -> &str {
        "open image"
    }

    async fn run(&mut self, state: &mut BuildState, cx: &StepContext) -> anyhow::Result<()> {
        let detected = detect_format(&self.path)?;
        if detected != self.format {
            bail!(
                "{}: the template says format \"{}\" but qemu-img detects \"{detected}\"; \
                 set format = \"{detected}\" if that is right",
                self.path.display(),
                self.format
            );
        }
        let (staging, in_place) = match &self.target {
            Target::Overlay { staging_parent } => {
                let staging = Staging::new(&self.path, &self.format, staging_parent)
                    .with_context(|| format!("making an overlay of {}", self.path.display()))?;
                (Some(staging), None)
            }
            Target::InPlace => (None, Some((self.path.clone(), self.format.clone()))),
            Target::DiscardWrites => (None, None),
        };
        let image = staging
            .as_ref()
            .map_or_else(|| self.path.clone(), |s| s.overlay().to_path_buf());
        state.disk = Some(DiskState {
            staging,
            guestfs: None,
            in_place,
            packed: None,
        });
        let options = GuestfsOptions {
            image,
            root_filesystem: self.root_filesystem.clone(),
            network: self.network,
            // Test-only in place must not change the image, yet `copy_script` and command
            // capture write to /tmp: a discarded snapshot allows both.
            discard_writes: matches!(self.target, Target::DiscardWrites),
        };
        // The launch cannot be interrupted; on cancel the worker closes the handle by itself
        // once the launch is done (it sees that nobody waits for it any more).
        let remote = tokio::select! {
            opened = GuestfsRemote::open(options) => opened
                .with_context(|| format!("opening {} through libguestfs", self.path.display()))?,
            () = cx.cancel.cancelled() => return Err(anyhow!("cancelled while the appliance launched")),
        };
        cx.progress.println(&format!(
            "    {}: root {}, appliance launched in {:.1}s",
            self.path.display(),
            remote.root(),
            remote.launch_time().as_secs_f64()
        ));
        let remote = Arc::new(remote);
        state.remote = Some(remote.clone());
        if let Some(disk) = state.disk.as_mut() {
            disk.guestfs = Some(remote);
        }
        Ok(())
    }

    async fn cleanup(&mut self, state: &mut BuildState, _cx: &StepContext) -> anyhow::Result<()> {
        let Some(mut disk) = state.disk.take() else {
            return Ok(());
        };
        let closed = close(state, &mut disk)
            .await
            .context("closing the disk image");
        // Dropping the staging removes the temp dir: overlay and any flattened file.
        drop(disk);
        closed
    }
}

/// Close the libguestfs session, if still open: unmount, sync, stop the appliance. Shared with
/// `close image`, which does it on the success path.
pub(crate) async fn close(state: &mut BuildState, disk: &mut DiskState) -> anyhow::Result<()> {
    // Provisioners are done with it; this drops the shared handle so ours is the last one.
    state.remote = None;
    let Some(remote) = disk.guestfs.take() else {
        return Ok(());
    };
    match Arc::try_unwrap(remote) {
        Ok(remote) => Ok(remote.close().await?),
        // Unreachable in a build (only the state held it); dropping the last holder closes it.
        Err(_) => bail!("the disk image is still in use"),
    }
}
