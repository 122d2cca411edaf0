//! `forge cleanup (--run ID | --all-stale)`: delete what builds that did not finish left in the
//! cloud, from their journals and a sweep by name and `forge_run_id` (see [`crate::cleanup`]).
//!
//! Dry run unless `--yes`: one line per resource it would delete (stdout). With `--yes` it
//! prints each deletion, appends `deleted` records to the run's journal and, once nothing is
//! left, a `cleaned` record, so a second cleanup has nothing to do.
//!
//! Which cloud: `--cloud NAME`, else the `clouds.yaml` entry the journal names, else `OS_CLOUD` /
//! `OS_*`. A run whose journal names another auth URL, project or region is refused.
//!
//! Exit codes: 0 nothing left to delete (dry run: the listing succeeded), 1 something could not
//! be deleted or looked up (a failed login, a live run asked for by `--run`, an unreadable
//! journal), 2 usage error.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::cleanup::{self, Cloud, Run};
use crate::journal::Journal;
use crate::openstack::{CloudConfig, ConfigEnv, Session};
use crate::pipeline::Progress;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["run", "all_stale"])))]
pub struct Args {
    /// Clean this run (its id as `forge build` printed it). Works without a journal too:
    /// then only the cloud sweep finds its resources.
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// Clean every run whose journal shows it did not finish (or left something behind) and
    /// whose build is no longer running.
    #[arg(long)]
    pub all_stale: bool,
    /// The clouds.yaml entry to log in to (default: the one the journal names, else
    /// OS_CLOUD / OS_* variables).
    #[arg(long, value_name = "NAME")]
    pub cloud: Option<String>,
    /// Where the journals are (default: `$XDG_STATE_HOME/forge/runs`).
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,
    /// Delete. Without it, only list what would be deleted.
    #[arg(long)]
    pub yes: bool,
}

pub fn run(args: Args, progress: Progress) -> ExitCode {
    if let Some(id) = &args.run {
        if let Err(e) = cleanup::check_run_id(id) {
            eprintln!("forge cleanup: {e}");
            return ExitCode::from(2);
        }
    }
    let dir = args
        .journal_dir
        .clone()
        .unwrap_or_else(Journal::default_dir);
    let (runs, unreadable) = match cleanup::scan(&dir) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("forge cleanup: {e}");
            return ExitCode::from(2);
        }
    };
    let mut code = 0u8;
    for e in &unreadable {
        eprintln!("forge cleanup: skipped: {e}");
        code = 1;
    }
    let selected = match select(&args, &dir, runs) {
        Ok(s) => s,
        Err(c) => return ExitCode::from(c.max(code)),
    };
    if selected.is_empty() {
        eprintln!("==> no stale runs in {}", dir.display());
        return ExitCode::from(code);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("forge cleanup: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let c = runtime.block_on(clean_runs(&args, &selected, &progress));
    ExitCode::from(code.max(c))
}

/// The runs to work on. `Err(code)` ends the command.
fn select(args: &Args, dir: &std::path::Path, runs: Vec<Run>) -> Result<Vec<Run>, u8> {
    let Some(id) = &args.run else {
        let mut out = Vec::new();
        for r in runs {
            if r.live {
                eprintln!("==> skipped run {}: still running", r.run_id);
            } else if r.needs_cleanup() {
                out.push(r);
            }
        }
        return Ok(out);
    };
    let mine: Vec<Run> = runs.into_iter().filter(|r| &r.run_id == id).collect();
    if mine.is_empty() {
        eprintln!(
            "==> no journal of run {id} in {}: looking for its resources in the cloud only \
             (published images are kept)",
            dir.display()
        );
        return Ok(vec![Run::without_journal(id)]);
    }
    if let Some(r) = mine.iter().find(|r| r.live) {
        eprintln!(
            "forge cleanup: run {id} is still running (its journal {} is locked): not touched",
            r.path.as_deref().unwrap_or(dir).display()
        );
        return Err(1);
    }
    if mine.iter().all(Run::cleaned) {
        eprintln!("==> run {id}: already cleaned, nothing to do");
        return Ok(Vec::new());
    }
    Ok(mine)
}

async fn clean_runs(args: &Args, runs: &[Run], progress: &Progress) -> u8 {
    let mut code = 0u8;
    // One login per cloud, shared by the runs that used it.
    let mut clouds: BTreeMap<Option<String>, Cloud> = BTreeMap::new();
    let mut to_delete = 0usize;
    for run in runs {
        let name = args.cloud.clone().or_else(|| {
            run.cloud()
                .map(|c| c.name.clone())
                // `envvars`: the build was configured by OS_* variables; so is this login.
                .filter(|n| n != "envvars")
        });
        if !clouds.contains_key(&name) {
            match login(name.as_deref()).await {
                Ok(c) => {
                    clouds.insert(name.clone(), c);
                }
                Err(e) => {
                    eprintln!("forge cleanup: run {}: {e:#}", run.run_id);
                    code = 1;
                    continue;
                }
            }
        }
        let Some(cloud) = clouds.get(&name) else {
            continue;
        };
        if let Err(e) = cloud.check_run(run) {
            eprintln!("forge cleanup: {e}");
            code = 1;
            continue;
        }
        let result = if args.yes {
            delete_run(run, cloud, progress).await
        } else {
            list_run(run, cloud).await.map(|n| {
                to_delete += n;
                true
            })
        };
        match result {
            Ok(true) => {}
            Ok(false) => code = 1,
            Err(e) => {
                eprintln!("forge cleanup: run {}: {e}", run.run_id);
                code = 1;
            }
        }
    }
    if !args.yes && to_delete > 0 {
        eprintln!("==> dry run: {to_delete} resource(s) would be deleted; add --yes to delete");
    }
    code
}

/// Dry run: print the plan; returns how many resources would be deleted.
async fn list_run(run: &Run, cloud: &Cloud) -> Result<usize, cleanup::CleanupError> {
    let plan = cleanup::plan(run, cloud).await?;
    for n in &plan.notes {
        eprintln!("    note: {n}");
    }
    for t in &plan.delete {
        println!(
            "would delete {t}  [run {}, found by {}]",
            run.run_id, t.found
        );
    }
    for (t, why) in &plan.keep {
        println!("keep {t}  [run {}]: {why}", run.run_id);
    }
    if plan.delete.is_empty() {
        eprintln!("==> run {}: nothing to delete", run.run_id);
    }
    Ok(plan.delete.len())
}

/// `--yes`: delete, journaling each deletion. `Ok(false)`: something is left.
async fn delete_run(
    run: &Run,
    cloud: &Cloud,
    progress: &Progress,
) -> Result<bool, cleanup::CleanupError> {
    // Holding the journal's lock keeps a second cleanup (or a build reusing the file) out.
    let mut journal = match &run.path {
        Some(p) => Some(Journal::reopen(p, &run.run_id)?),
        None => None,
    };
    let mut say = |line: &str| println!("{line}");
    let out = cleanup::execute(run, cloud, journal.as_mut(), progress, &mut say).await?;
    for (t, why) in &out.kept {
        println!("kept {t}: {why}");
    }
    for (t, e) in &out.failed {
        eprintln!("forge cleanup: could not delete {t}: {e}");
    }
    if out.clean {
        eprintln!(
            "==> run {}: {} deleted, nothing left",
            run.run_id,
            out.deleted.len()
        );
    } else {
        eprintln!(
            "==> run {}: {} deleted, {} could not be deleted (run forge cleanup again)",
            run.run_id,
            out.deleted.len(),
            out.failed.len()
        );
    }
    Ok(out.clean)
}

/// Log in to `cloud` (a clouds.yaml entry), or as OS_CLOUD / OS_* say when `None`.
async fn login(cloud: Option<&str>) -> anyhow::Result<Cloud> {
    let env = ConfigEnv::from_process();
    let config = CloudConfig::load(cloud, &env)?;
    let session = Session::connect(config).await?;
    Ok(Cloud::new(session).await?)
}
