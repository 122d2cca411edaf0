//! `forge images list|prune|promote TEMPLATE`: a build's published images, their retention and
//! channel promotion. The template supplies the cloud (each source's auth settings), the build's
//! identity (template file name + build label) and its `retention {}` settings; flags override.
//!
//! `prune` is a dry run unless `--yes`: it prints the plan, one line per image. `promote` acts
//! at once (`--dry-run` to preview): it changes no image data and is undone by promoting the
//! previous image again.
//!
//! Exit codes: 0 done, 1 an action failed or was refused (promote of a foreign or inactive
//! image), 2 usage or input error (bad template, unknown build, no retention settings).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};

use crate::cli::exit::Exit;
use crate::cli::validate::VarArgs;
use crate::names;
use crate::openstack::Clients;
use crate::retention::{self, BuildId, Retention};
use crate::template::{self, Auth, Build, Template};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List a build's images (hidden ones included), newest first, with their channels.
    List(ListArgs),
    /// Keep the newest N images of a build; hide older ones, delete old unused ones. Dry run
    /// unless --yes.
    Prune(PruneArgs),
    /// Move a channel tag (`channel:NAME`) to one active image of a build.
    Promote(PromoteArgs),
}

/// Which template and which of its builds.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The template file (HCL).
    pub template: PathBuf,
    /// Only this build: a build label (`NAME.TYPE.SOURCE`) or a build block's `name`.
    /// Default: every build of the template.
    #[arg(long = "build", value_name = "NAME")]
    pub build: Option<String>,
    #[command(flatten)]
    pub vars: VarArgs,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub target: Target,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub target: Target,
    /// Keep the newest N active images (overrides the template's `retention { keep }`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub keep: Option<u32>,
    /// Hide (os_hidden) the older images; `--hide-older=false` turns the template's setting off.
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub hide_older: Option<bool>,
    /// Delete older images at least this old that no server uses (e.g. 30d, 12h, 90s).
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub delete_unused_after: Option<Duration>,
    /// Act. Without it nothing changes: the plan is printed.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, clap::Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    pub target: Target,
    /// The image that gets the channel.
    #[arg(long, value_name = "ID")]
    pub image: String,
    /// The channel, e.g. `stable` (tag `channel:stable`).
    #[arg(long, value_name = "NAME")]
    pub channel: String,
    /// Print what would change and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_age(s: &str) -> Result<Duration, String> {
    template::parse_age(s)
}

/// Run an `images` subcommand.
pub fn run(cmd: Command) -> ExitCode {
    let target = match &cmd {
        Command::List(a) => &a.target,
        Command::Prune(a) => &a.target,
        Command::Promote(a) => &a.target,
    };
    let template = match template::load(&target.template, &target.vars.load_options()) {
        Ok(t) => t,
        Err(diags) => {
            eprintln!("{diags}");
            return Exit::Usage.into();
        }
    };
    let builds = match select(&template, target.build.as_deref()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("forge images: {e}");
            return Exit::Usage.into();
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("forge images: cannot start the async runtime: {e}");
            return Exit::Failed.into();
        }
    };
    let result = runtime.block_on(async {
        match &cmd {
            Command::List(_) => list(&template, &builds).await,
            Command::Prune(a) => prune(&template, &builds, a).await,
            Command::Promote(a) => promote(&template, &builds, a).await,
        }
    });
    match result {
        Ok(code) => code.into(),
        Err(e) => {
            eprintln!("forge images: {}", template.redact(&format!("{e:#}")));
            Exit::of_error(&e).into()
        }
    }
}

/// One build of one source (of any kind), as `forge build` labels it.
struct Selected<'t> {
    label: String,
    retention: Option<&'t Retention>,
    auth: &'t Auth,
}

/// The template's builds (`NAME.TYPE.SOURCE`), or those `wanted` names (a label or a build
/// block's name). Errors list what there is.
fn select<'t>(template: &'t Template, wanted: Option<&str>) -> anyhow::Result<Vec<Selected<'t>>> {
    let mut every = Vec::new();
    for build in &template.builds {
        for src in build.sources.iter().filter_map(|r| template.source(r)) {
            every.push((build, names::build_label(build, src), src.auth()));
        }
    }
    let labels: Vec<&str> = every.iter().map(|(_, l, _)| l.as_str()).collect();
    let hit =
        |b: &Build, label: &str| wanted.is_none_or(|w| w == label || b.name.as_deref() == Some(w));
    let all: Vec<Selected<'t>> = every
        .iter()
        .filter(|(b, label, _)| hit(b, label))
        .map(|(b, label, auth)| Selected {
            label: label.clone(),
            retention: b.retention.as_ref(),
            auth,
        })
        .collect();
    if all.is_empty() {
        match wanted {
            Some(w) => bail!(
                "no build '{w}' in {}; its builds: {}",
                template.path.display(),
                if labels.is_empty() {
                    "none".into()
                } else {
                    labels.join(", ")
                }
            ),
            None => bail!("{} has no build", template.path.display()),
        }
    }
    Ok(all)
}

/// Log in with the build's auth and name its images.
async fn open(template: &Path, s: &Selected<'_>) -> anyhow::Result<(Clients, BuildId)> {
    let clients = Clients::connect(s.auth).await?;
    let id = BuildId::of(&clients.image, template, &s.label).await?;
    Ok((clients, id))
}

async fn list(template: &Template, builds: &[Selected<'_>]) -> anyhow::Result<Exit> {
    for s in builds {
        let (clients, id) = open(&template.path, s).await?;
        let images = retention::list(&clients.image, &id).await?;
        println!(
            "==> {id} in project {}: {} image(s)",
            id.owner,
            images.len()
        );
        for i in &images {
            let mut marks: Vec<&str> = Vec::new();
            if i.hidden() {
                marks.push("hidden");
            }
            marks.extend(retention::channels(i));
            println!(
                "    {} {} {}{}",
                i.status,
                i.describe(),
                i.visibility,
                if marks.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", marks.join("] ["))
                }
            );
        }
    }
    Ok(Exit::Ok)
}

/// The template's retention settings for a build with the flags on top.
fn policy(block: Option<&Retention>, a: &PruneArgs, label: &str) -> anyhow::Result<Retention> {
    let mut p = match (block, a.keep) {
        (Some(r), _) => r.clone(),
        (None, Some(keep)) => Retention {
            keep,
            hide_older: false,
            delete_unused_after: None,
        },
        (None, None) => bail!(
            "build {label} has no `retention {{}}` block; pass --keep N (and --hide-older, \
             --delete-unused-after AGE) or add one"
        ),
    };
    if let Some(k) = a.keep {
        p.keep = k;
    }
    if let Some(h) = a.hide_older {
        p.hide_older = h;
    }
    if let Some(d) = a.delete_unused_after {
        p.delete_unused_after = Some(d);
    }
    Ok(p)
}

async fn prune(
    template: &Template,
    builds: &[Selected<'_>],
    a: &PruneArgs,
) -> anyhow::Result<Exit> {
    // Settle every build's settings before touching anything. Without --build, builds that
    // have no settings are passed over (said so); with it, or when none has any, it is an error.
    let mut work = Vec::new();
    for s in builds {
        match policy(s.retention, a, &s.label) {
            Ok(p) => work.push((s, p)),
            Err(e) if a.target.build.is_some() || builds.len() == 1 => {
                eprintln!("forge images prune: {e}");
                return Ok(Exit::Usage);
            }
            Err(_) => eprintln!("==> {}: no retention block, passed over", s.label),
        }
    }
    if work.is_empty() {
        eprintln!(
            "forge images prune: no build of {} has a `retention {{}}` block; pass --keep N",
            template.path.display()
        );
        return Ok(Exit::Usage);
    }
    let mut failed = 0;
    for (s, p) in &work {
        let (clients, id) = open(&template.path, s).await?;
        let mut out = |l: &str| println!("{l}");
        failed += retention::prune_build(&clients.image, &clients.compute, &id, p, a.yes, &mut out)
            .await
            .with_context(|| format!("planning retention of {id}"))?;
    }
    if !a.yes {
        println!("==> dry run: nothing changed (pass --yes to act)");
    }
    Ok(if failed > 0 { Exit::Failed } else { Exit::Ok })
}

async fn promote(
    template: &Template,
    builds: &[Selected<'_>],
    a: &PromoteArgs,
) -> anyhow::Result<Exit> {
    let [s] = builds else {
        let labels: Vec<&str> = builds.iter().map(|s| s.label.as_str()).collect();
        eprintln!(
            "forge images promote: {} has several builds ({}); choose one with --build",
            template.path.display(),
            labels.join(", ")
        );
        return Ok(Exit::Usage);
    };
    if let Err(e) = retention::channel_tag(&a.channel) {
        eprintln!("forge images promote: {e}");
        return Ok(Exit::Usage);
    }
    let (clients, id) = open(&template.path, s).await?;
    let plan = match retention::plan_promotion(&clients.image, &id, &a.image, &a.channel).await {
        Ok(p) => p,
        Err(e @ (retention::Error::NotOfBuild { .. } | retention::Error::NotActive { .. })) => {
            eprintln!("forge images promote: refused: {e}");
            return Ok(Exit::Failed);
        }
        Err(retention::Error::Api(e)) if e.is_not_found() => {
            eprintln!(
                "forge images promote: refused: no image {} (or not visible to this project)",
                a.image
            );
            return Ok(Exit::Failed);
        }
        Err(e) => return Err(anyhow!(e)),
    };
    println!("==> promote to {} of {id}", plan.tag);
    if a.dry_run {
        for l in plan.lines() {
            println!("    would {l}");
        }
        println!("==> dry run: nothing changed");
        return Ok(Exit::Ok);
    }
    retention::promote(&clients.image, &plan, &mut |l| println!("    {l}")).await?;
    Ok(Exit::Ok)
}
