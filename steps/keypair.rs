//! Keypair: generate an ed25519 key and register it as a temporary Nova keypair
//! `forge-<run>-key`, unless the template names an existing keypair and its private key.
//! Cleanup deletes the temporary keypair; the private key lives in a temp dir removed with the
//! state.

use std::path::PathBuf;

use anyhow::Context;
use async_trait::async_trait;
use russh::keys::ssh_key::{self, private::Ed25519Keypair, LineEnding};

use crate::journal::Kind;
use crate::names;
use crate::openstack::compute::ComputeClient;
use crate::pipeline::{Step, StepContext};
use crate::steps::state::KeypairState;
use crate::steps::BuildState;

pub struct KeypairStep {
    pub compute: ComputeClient,
    /// `ssh_keypair_name` + `ssh_private_key_file`: use these instead of a temporary keypair.
    pub existing: Option<(String, PathBuf)>,
}

/// A fresh ed25519 key: (private key in OpenSSH format, public key line).
fn generate_key(comment: &str) -> anyhow::Result<(zeroize::Zeroizing<String>, String)> {
    let seed: [u8; 32] = rand::random();
    let mut key = ssh_key::PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment(comment);
    let private = key
        .to_openssh(LineEnding::LF)
        .context("encoding the generated key")?;
    let public = key
        .public_key()
        .to_openssh()
        .context("encoding the public key")?;
    Ok((private, public))
}

#[async_trait]
impl Step<BuildState> for KeypairStep {
    fn name(&self) -> &str {
        "keypair"
    }

    async fn run(&mut self, state: &mut BuildState, cx: &StepContext) -> anyhow::Result<()> {
        if let Some((name, file)) = &self.existing {
            cx.progress
                .println(&format!("    using keypair {name} ({})", file.display()));
            state.keypair = Some(KeypairState {
                name: name.clone(),
                private_key_file: file.clone(),
                temporary: false,
                dir: None,
            });
            return Ok(());
        }
        let name = names::keypair_name(&state.run_id);
        let (private, public) = generate_key(&name)?;
        let dir = tempfile::Builder::new()
            .prefix("forge-key-")
            .tempdir()
            .context("creating a directory for the temporary key")?;
        let file = dir.path().join("id_ed25519");
        write_private(&file, private.as_bytes())?;
        // Recorded before the call: if the answer is lost, cleanup still deletes by name.
        state.keypair = Some(KeypairState {
            name: name.clone(),
            private_key_file: file,
            temporary: true,
            dir: Some(dir),
        });
        state.journal.intent(self.name(), Kind::Keypair, &name)?;
        self.compute
            .create_keypair(&name, &public)
            .await
            .with_context(|| format!("registering keypair {name}"))?;
        state
            .journal
            .created(self.name(), Kind::Keypair, &name, &name)?;
        cx.progress
            .println(&format!("    temporary keypair: {name}"));
        Ok(())
    }

    async fn cleanup(&mut self, state: &mut BuildState, _cx: &StepContext) -> anyhow::Result<()> {
        let Some(kp) = state.keypair.as_ref().filter(|k| k.temporary) else {
            return Ok(());
        };
        let name = kp.name.clone();
        self.compute
            .delete_keypair(&name)
            .await
            .with_context(|| format!("deleting keypair {name}"))?;
        state.journal.deleted(Kind::Keypair, &name)?;
        state.keypair = None;
        Ok(())
    }

    fn leftovers(&self, state: &BuildState) -> Vec<String> {
        match &state.keypair {
            Some(k) if k.temporary => {
                vec![format!("keypair {0}: openstack keypair delete {0}", k.name)]
            }
            _ => Vec::new(),
        }
    }
}

fn write_private(path: &std::path::Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_keys_are_distinct_openssh_ed25519() {
        let (a, pa) = super::generate_key("c").unwrap();
        let (b, pb) = super::generate_key("c").unwrap();
        assert!(a.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        assert!(pa.starts_with("ssh-ed25519 ") && pa.ends_with(" c"));
        assert_ne!(*a, *b);
        assert_ne!(pa, pb);
    }
}
