//! What a build loads before anything is created: its provisioners (specs with their arguments
//! checked, scripts read) and its fingerprint inputs.

use std::path::PathBuf;

use anyhow::Context;

use crate::fingerprint::Inputs;
use crate::steps::provision::Provisioner;
use crate::template::{
    Build, OpenStackSource, Provisioner as TemplateProvisioner, ShellProvisioner, Template,
};

/// The build's static fingerprint inputs, from the loaded provisioners (so every spec and
/// script is hashed as it will run).
pub(super) fn inputs(
    template: &Template,
    label: &str,
    src: &OpenStackSource,
    user_data: Option<&[u8]>,
    provisioners: &[Provisioner],
) -> Inputs {
    let mut inputs = Inputs::new(template, label, src, user_data);
    for p in provisioners {
        match p {
            Provisioner::Validators {
                spec,
                arguments,
                test_only,
            } => inputs.validators(spec, arguments, *test_only),
            Provisioner::Inline(cmds) => inputs.shell_inline(template, cmds),
            Provisioner::Script { content, .. } => inputs.shell_script(content),
        }
    }
    inputs
}

/// Load every spec and read every script the build's provisioners name.
pub(super) fn load_provisioners(
    build: &Build,
    roots: &[PathBuf],
) -> anyhow::Result<Vec<Provisioner>> {
    let mut out = Vec::new();
    for p in &build.provisioners {
        out.push(match p {
            TemplateProvisioner::Validators(v) => {
                let spec = crate::spec::load(&v.spec, roots)?;
                let values = v
                    .arguments
                    .iter()
                    .map(|(k, a)| (k.clone(), a.value.clone()))
                    .collect();
                // A wrong argument fails here, before anything is created or launched.
                crate::spec::check_arguments(&spec, &values)
                    .with_context(|| format!("image spec {}", v.spec.display()))?;
                Provisioner::Validators {
                    spec,
                    arguments: v.arguments.clone(),
                    test_only: v.test_only,
                }
            }
            TemplateProvisioner::Shell(ShellProvisioner::Inline(cmds)) => {
                Provisioner::Inline(cmds.clone())
            }
            TemplateProvisioner::Shell(ShellProvisioner::Script(path)) => Provisioner::Script {
                path: path.clone(),
                content: std::fs::read(path)
                    .with_context(|| format!("shell script {}", path.display()))?,
            },
        });
    }
    Ok(out)
}
