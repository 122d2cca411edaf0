//! Step 7, provision: the template's provisioners in order over the build's remote (the SSH
//! session of an OpenStack build, the libguestfs session of an image-file build):
//! `validators` runs an image spec (reconcile mode, or test-only when the provisioner says so),
//! `shell` runs inline commands or uploads and runs a script. With `verify`, every spec then
//! runs again in test-only mode to prove the result. Nothing to clean up: the server or the
//! overlay goes away.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use async_trait::async_trait;

use crate::pipeline::{Step, StepContext};
use crate::remote::Remote;
use crate::spec::{self, Mode, RunOptions, Spec};
use crate::steps::BuildState;

/// One provisioner, ready to run (specs are loaded before the build creates anything).
pub enum Provisioner {
    Validators {
        spec: Spec,
        arguments: BTreeMap<String, String>,
        /// Names of arguments whose values must not be shown.
        sensitive: Vec<String>,
        test_only: bool,
    },
    Inline(Vec<String>),
    Script {
        path: PathBuf,
        content: Vec<u8>,
    },
}

pub struct ProvisionStep {
    pub provisioners: Vec<Provisioner>,
    /// Run every spec again in test-only mode after provisioning.
    pub verify: bool,
    /// The distro id specs see instead of the detected one (`forge pack --distro`).
    pub distro_override: Option<String>,
}

#[async_trait]
impl Step<BuildState> for ProvisionStep {
    fn name(&self) -> &str {
        "provision"
    }

    async fn run(&mut self, state: &mut BuildState, cx: &StepContext) -> anyhow::Result<()> {
        let remote = state
            .remote
            .clone()
            .ok_or_else(|| anyhow!("nothing to provision: no SSH session or disk image"))?;
        let remote: &dyn Remote = remote.as_ref();
        for p in &self.provisioners {
            match p {
                Provisioner::Validators {
                    spec,
                    arguments,
                    sensitive,
                    test_only,
                } => {
                    let mode = if *test_only {
                        Mode::TestOnly
                    } else {
                        Mode::Reconcile
                    };
                    let distro = self.distro_override.clone();
                    let report = run_spec(spec, remote, arguments, mode, distro, cx).await?;
                    cx.progress.println(&format!(
                        "    {} ({mode:?}): {} validators, {} round trips, {:.1}s",
                        spec.path().display(),
                        report.validators_run,
                        report.round_trips,
                        report.duration.as_secs_f64()
                    ));
                    for (k, v) in report.arguments {
                        let shown = if sensitive.contains(&k) {
                            "<sensitive>".to_string()
                        } else {
                            v
                        };
                        state.arguments.insert(k, shown);
                    }
                }
                Provisioner::Inline(commands) => {
                    for command in commands {
                        let out = remote.run(command).await?;
                        for line in out.stdout_lossy().lines() {
                            cx.progress.println(&format!("    | {line}"));
                        }
                        if !out.success() {
                            bail!(
                                "inline command exited with {}: {}\n{}",
                                out.status,
                                command,
                                out.stderr_lossy().trim_end()
                            );
                        }
                    }
                    cx.progress
                        .println(&format!("    shell: {} inline command(s)", commands.len()));
                }
                Provisioner::Script { path, content } => {
                    let name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "script".into());
                    let remote_path = format!("/tmp/forge-{}-{name}", state.run_id);
                    let out = remote
                        .run_script(
                            &remote_path,
                            content,
                            &crate::remote::shell_quote(&remote_path),
                        )
                        .await?;
                    if !out.success() {
                        bail!(
                            "script {} exited with {}:\n{}",
                            path.display(),
                            out.status,
                            out.stderr_lossy().trim_end()
                        );
                    }
                    cx.progress
                        .println(&format!("    shell: {}", path.display()));
                }
            }
        }
        if self.verify {
            for p in &self.provisioners {
                if let Provisioner::Validators {
                    spec, arguments, ..
                } = p
                {
                    let distro = self.distro_override.clone();
                    run_spec(spec, remote, arguments, Mode::TestOnly, distro, cx)
                        .await
                        .context("verification (test-only) failed after provisioning")?;
                    cx.progress
                        .println(&format!("    verified {}", spec.path().display()));
                }
            }
        }
        Ok(())
    }
}

async fn run_spec(
    spec: &Spec,
    remote: &dyn Remote,
    arguments: &BTreeMap<String, String>,
    mode: Mode,
    distro_override: Option<String>,
    cx: &StepContext,
) -> anyhow::Result<spec::RunReport> {
    let opts = RunOptions {
        mode,
        distro_override,
    };
    spec::run(spec, remote, arguments, &opts, &cx.cancel)
        .await
        .with_context(|| format!("image spec {}", spec.path().display()))
}
