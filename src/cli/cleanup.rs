//! `forge cleanup (--run ID | --all-stale)`: delete what builds that did not finish left in the
//! cloud, from their journals and a sweep by name and `forge_run_id` (see [`crate::cleanup`]).
//!
//! Dry run unless `--yes`: one line per resource it would delete (stdout). With `--yes` it
//! prints each deletion, appends `deleted` records to the run's journal and, once nothing is
//! left, a `cleaned` record, so a second cleanup has nothing to do.
//!
//! Which cloud: `--cloud NAME`; else, for a run that logged in with its template's auth
//! attributes, that template's source again (load it with the build's `--var`/`--var-file`
//! and `FORGE_VAR_*`, so credentials held in variables are found again); else the `clouds.yaml`
//! entry the journal names; else `OS_CLOUD` / `OS_*`. A run whose journal names another auth
//! URL, project or region is refused.
//!
//! Exit codes ([`Exit`]): 0 nothing left to delete (dry run: the listing succeeded), 1
//! something could not be deleted or looked up (a live run asked for by `--run`, an unreadable
//! journal, a login to another cloud than the run's), 2 usage error, 4 could not log in.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context};

use crate::cleanup::{self, Cloud, Run};
use crate::cli::exit::Exit;
use crate::cli::validate::VarArgs;
use crate::journal::{Journal, TemplateAuth};
use crate::openstack::{Clients, CloudSpec, Origin};
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
    /// For a run that logged in with its template's auth attributes: the variables to load
    /// that template with (as given to `forge build`).
    #[command(flatten)]
    pub vars: VarArgs,
}

pub fn run(args: Args, progress: Progress) -> ExitCode {
    if let Some(id) = &args.run {
        if let Err(e) = cleanup::check_run_id(id) {
            eprintln!("forge cleanup: {e}");
            return Exit::Usage.into();
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
            return Exit::Usage.into();
        }
    };
    let mut code = Exit::Ok;
    for e in &unreadable {
        eprintln!("forge cleanup: skipped: {e}");
        code = Exit::Failed;
    }
    let selected = match select(&args, &dir, runs) {
        Ok(s) => s,
        Err(c) => return c.max(code).into(),
    };
    if selected.is_empty() {
        eprintln!("==> no stale runs in {}", dir.display());
        return code.into();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("forge cleanup: cannot start the async runtime: {e}");
            return Exit::Failed.into();
        }
    };
    let c = runtime.block_on(clean_runs(&args, &selected, &progress));
    code.max(c).into()
}

/// The runs to work on. `Err(code)` ends the command.
fn select(args: &Args, dir: &std::path::Path, runs: Vec<Run>) -> Result<Vec<Run>, Exit> {
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
        return Err(Exit::Failed);
    }
    if mine.iter().all(Run::cleaned) {
        eprintln!("==> run {id}: already cleaned, nothing to do");
        return Ok(Vec::new());
    }
    Ok(mine)
}

async fn clean_runs(args: &Args, runs: &[Run], progress: &Progress) -> Exit {
    let mut code = Exit::Ok;
    // One login per way of logging in, shared by the runs that used it.
    let mut clouds: BTreeMap<Login, Cloud> = BTreeMap::new();
    let mut to_delete = 0usize;
    for run in runs {
        let how = login_for(args, run);
        if !clouds.contains_key(&how) {
            match login(&how, &args.vars).await {
                Ok(c) => {
                    clouds.insert(how.clone(), c);
                }
                Err(e) => {
                    eprintln!("forge cleanup: run {}: {e:#}", run.run_id);
                    code = code.max(Exit::of_error(&e));
                    continue;
                }
            }
        }
        let Some(cloud) = clouds.get(&how) else {
            continue;
        };
        if let Err(e) = cloud.check_run(run) {
            eprintln!("forge cleanup: {e}");
            code = code.max(Exit::Failed);
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
            Ok(false) => code = code.max(Exit::Failed),
            Err(e) => {
                eprintln!("forge cleanup: run {}: {e}", run.run_id);
                code = code.max(Exit::Failed);
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

/// How cleanup logs in for a run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Login {
    /// A `clouds.yaml` entry: `--cloud`, or the one the journal names (`from` says which).
    Cloud { name: String, from: String },
    /// The auth attributes of a template's source, as the build used them.
    Template(TemplateAuth),
    /// `OS_CLOUD` / `OS_*`.
    Env,
}

/// `--cloud`, else what the run's journal says it logged in with.
fn login_for(args: &Args, run: &Run) -> Login {
    if let Some(name) = &args.cloud {
        return Login::Cloud {
            name: name.clone(),
            from: "--cloud".into(),
        };
    }
    let Some(info) = run.cloud() else {
        return Login::Env;
    };
    if let Some(t) = &info.template {
        return Login::Template(t.clone());
    }
    // Journals from before `cloud` was recorded name the entry in `name` (`envvars`: OS_*).
    let entry = info
        .cloud
        .clone()
        .or_else(|| Some(info.name.clone()).filter(|n| n != "envvars" && n != "template"));
    match entry {
        Some(name) => Login::Cloud {
            name,
            from: format!("the journal of run {}", run.run_id),
        },
        None => Login::Env,
    }
}

/// Log in as `how` says. A template is loaded with `vars` (and `FORGE_VAR_*`), as the build
/// loaded it.
async fn login(how: &Login, vars: &VarArgs) -> anyhow::Result<Cloud> {
    let spec = match how {
        Login::Cloud { name, from } => CloudSpec::named(Some(name), Origin::Flag(from.clone())),
        Login::Env => CloudSpec::default(),
        Login::Template(t) => {
            let template = crate::template::load(&t.path, &vars.load_options()).map_err(|d| {
                anyhow!(
                    "the run logged in with the auth attributes of {} in {}, which cannot be \
                     loaded again (pass the build's --var/--var-file, or log in with \
                     --cloud NAME or OS_* variables):\n{d}",
                    t.source,
                    t.path.display()
                )
            })?;
            let src = template
                .sources
                .iter()
                .find(|s| crate::names::source_label(s) == t.source)
                .with_context(|| {
                    format!(
                        "the run logged in with the auth attributes of {}, which {} no longer \
                         has (log in with --cloud NAME or OS_* variables)",
                        t.source,
                        t.path.display()
                    )
                })?;
            src.auth().clone()
        }
    };
    let clients = Clients::connect(&spec).await?;
    let cloud = Cloud::new(clients)
        .await
        .map_err(crate::openstack::LoginError)?;
    Ok(cloud)
}
