//! `forge check` (test-only) and `forge reconcile`: run an image spec against a host over SSH.
//!
//! Exit codes: 0 the host meets the spec (check) or was brought into line (reconcile); 1 it does
//! not, every failed validator listed on stdout with its spec location; 2 no verdict: a usage,
//! spec, argument, key, host-key or connection error (one line on stderr); 130 interrupted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::exit::Exit;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::remote::ssh::{HostKeyPolicy, SshOptions, SshRemote, SshTarget};
use crate::spec::{self, Mode, RunError, RunOptions, Spec};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The host to check, as USER@HOST[:PORT] (IPv6: USER@[ADDR]:PORT). A user other than root
    /// needs passwordless sudo.
    #[arg(long, value_name = "USER@HOST[:PORT]", value_parser = parse_target)]
    pub ssh: SshTarget,
    /// Private key file (ed25519, RSA or ECDSA). An encrypted key's passphrase is read from
    /// FORGE_SSH_KEY_PASSPHRASE.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// known_hosts file to check the host key against [default: ~/.ssh/known_hosts].
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Record the key of a host not yet in known_hosts instead of refusing it (a changed key is
    /// always refused).
    #[arg(long)]
    pub accept_new: bool,
    /// The image spec (Sahara YAML).
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    /// A spec argument; repeat for several. The value is passed verbatim (quoted on the host).
    #[arg(long = "arg", value_name = "NAME=VALUE", value_parser = parse_arg)]
    pub args: Vec<(String, String)>,
    /// Another directory to look for the spec's scripts in, after the spec's own directory;
    /// repeat for several, searched in order.
    #[arg(long = "resource-root", value_name = "DIR")]
    pub resource_roots: Vec<PathBuf>,
    /// Use this distro id instead of the host's /etc/os-release ID (e.g. ubuntu, centos).
    #[arg(long, value_name = "ID")]
    pub distro: Option<String>,
    /// Seconds to keep trying to connect (TCP, handshake, authentication).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub connect_timeout: u64,
}

fn parse_target(s: &str) -> Result<SshTarget, String> {
    s.parse()
}

fn parse_arg(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

/// Run `forge check` (`test_only`) or `forge reconcile`.
pub fn run(args: Args, test_only: bool) -> ExitCode {
    let command = if test_only { "check" } else { "reconcile" };
    match execute(args, test_only) {
        Ok(code) => code,
        Err(Outcome::Usage(msg)) => {
            eprintln!("forge {command}: error: {msg}");
            Exit::Usage.into()
        }
        Err(Outcome::Spec(msg)) => {
            eprintln!("{msg}");
            Exit::Usage.into()
        }
        Err(Outcome::Cancelled) => {
            eprintln!("forge {command}: cancelled");
            Exit::Interrupted.into()
        }
    }
}

/// Why there is no verdict.
enum Outcome {
    /// Exit 2 with this message.
    Usage(String),
    /// Exit 2: spec errors, already `FILE:LINE:COL: error: ...` lines.
    Spec(String),
    Cancelled,
}

fn execute(args: Args, test_only: bool) -> Result<ExitCode, Outcome> {
    // Everything that needs no network first, so a typo never waits for a connect timeout.
    let spec = spec::load(&args.spec, &args.resource_roots)
        .map_err(|e| Outcome::Spec(e.to_string().trim_end().to_string()))?;
    let values = collect_args(&args.args)?;
    check_arguments(&spec, &values)?;
    let known_hosts = match &args.known_hosts {
        Some(p) => p.clone(),
        None => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".ssh").join("known_hosts"))
            .ok_or_else(|| Outcome::Usage("HOME is not set: pass --known-hosts FILE".into()))?,
    };
    let mut opts = SshOptions::new(args.ssh.clone(), args.key.clone());
    opts.known_hosts = known_hosts;
    opts.connect_timeout = Duration::from_secs(args.connect_timeout);
    opts.host_key_policy = if args.accept_new {
        HostKeyPolicy::AcceptNew
    } else {
        HostKeyPolicy::Strict
    };
    let run_opts = RunOptions {
        mode: if test_only {
            Mode::TestOnly
        } else {
            Mode::Reconcile
        },
        distro_override: args.distro.clone(),
    };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Outcome::Usage(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async {
        let cancel = CancellationToken::new();
        if let Err(e) = crate::pipeline::signals::install(cancel.clone()) {
            tracing::warn!("cannot listen for Ctrl-C: {e}");
        }
        let remote = SshRemote::connect(&opts, &cancel)
            .await
            .map_err(|e| match e {
                crate::remote::ssh::SshError::Cancelled => Outcome::Cancelled,
                e => Outcome::Usage(e.to_string()),
            })?;
        tracing::debug!("connected to {}", args.ssh);
        let result = spec::run(&spec, &remote, &values, &run_opts, &cancel).await;
        let commands = remote.commands_run();
        remote.close().await;
        report(&args, &spec, test_only, result, commands)
    })
}

/// Turn the engine's answer into output and an exit code.
fn report(
    args: &Args,
    spec: &Spec,
    test_only: bool,
    result: Result<spec::RunReport, RunError>,
    commands: usize,
) -> Result<ExitCode, Outcome> {
    let spec_path = spec.path().display();
    match result {
        Ok(r) => {
            let verb = if test_only { "meets" } else { "now meets" };
            println!(
                "ok: {} {verb} {spec_path} ({} validators, {} SSH commands, {:.2} s)",
                args.ssh,
                r.validators_run,
                commands,
                r.duration.as_secs_f64()
            );
            Ok(Exit::Ok.into())
        }
        Err(RunError::Validation { failures }) => {
            for f in &failures {
                println!("{}: {}: {}", f.location, f.validator, f.message);
            }
            let what = if test_only {
                "does not meet"
            } else {
                "could not be brought to meet"
            };
            eprintln!(
                "forge {}: {} {what} {spec_path}: {} failed validator(s)",
                if test_only { "check" } else { "reconcile" },
                args.ssh,
                failures.len()
            );
            Ok(Exit::Failed.into())
        }
        Err(RunError::Arguments(msg)) => Err(Outcome::Usage(msg)),
        Err(RunError::Remote(crate::remote::RemoteError::Cancelled)) | Err(RunError::Cancelled) => {
            Err(Outcome::Cancelled)
        }
        Err(RunError::Remote(e)) => Err(Outcome::Usage(e.to_string())),
    }
}

/// `--arg` pairs as a map; a name given twice is an error rather than a silent override.
fn collect_args(pairs: &[(String, String)]) -> Result<BTreeMap<String, String>, Outcome> {
    let mut map = BTreeMap::new();
    for (name, value) in pairs {
        if map.insert(name.clone(), value.clone()).is_some() {
            return Err(Outcome::Usage(format!(
                "--arg {name} is given more than once"
            )));
        }
    }
    Ok(map)
}

/// The engine checks arguments again when it runs; checking here too reports a misspelt or
/// missing argument at once, before a connect.
fn check_arguments(spec: &Spec, values: &BTreeMap<String, String>) -> Result<(), Outcome> {
    crate::spec::check_arguments(spec, values).map_err(|e| Outcome::Usage(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_args() {
        assert_eq!(
            parse_arg("a=b=c").unwrap(),
            ("a".to_string(), "b=c".to_string())
        );
        assert_eq!(parse_arg("a=").unwrap(), ("a".to_string(), String::new()));
        assert!(parse_arg("=x").is_err());
        assert!(parse_arg("novalue").is_err());
        let dup = vec![("a".into(), "1".into()), ("a".into(), "2".into())];
        assert!(collect_args(&dup).is_err());
    }
}
