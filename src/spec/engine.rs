//! Runs a loaded [`Spec`] against a [`Remote`] in reconcile or test-only mode
//! (`validator-spec.md`; Sahara semantics plus forge's fixes). The engine knows nothing about SSH
//! or libguestfs: every effect goes through the four `Remote` methods, and every call is one
//! round trip in [`RunReport::round_trips`].
//!
//! Script protocol (one `Remote::run_script` call per script): the file's bytes are uploaded
//! unchanged to `/tmp/forge-<uuid>.sh` and run as
//! `env 'NAME=VALUE'... /tmp/forge-<uuid>.sh` when it starts with `#!` (else `... bash <path>`),
//! then removed. Sahara prepends `export` lines instead, which hides the shebang and executes
//! unquoted values; passing them through env(1) keeps the script verbatim, quotes every value and
//! still allows names bash would reject (`java-version`).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use indexmap::IndexMap;
use tokio_util::sync::CancellationToken;

use super::batch;
use super::model::{CopyScript, Package, Script, Spec, Validator, ValidatorKind};
use crate::remote::{shell_quote, CommandOutput, Remote, RemoteError};

/// Reconcile (make it so) or test-only (check, change nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    Reconcile,
    /// The default, because it never changes the target.
    #[default]
    TestOnly,
}

impl Mode {
    /// The `test_only` value scripts receive.
    fn flag(self) -> &'static str {
        match self {
            Mode::Reconcile => "0",
            Mode::TestOnly => "1",
        }
    }
}

/// How to run a spec.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub mode: Mode,
    /// Use this distro id instead of asking the remote (saves a round trip).
    pub distro_override: Option<String>,
}

/// What a successful run did.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// Remote calls made: commands, file writes, script runs, the distro query.
    pub round_trips: usize,
    /// Validators executed, composites included; an `any` alternative tried twice counts twice.
    pub validators_run: usize,
    pub duration: Duration,
    /// The final argument map: declared arguments, `distro`, and values set during the run.
    pub arguments: BTreeMap<String, String>,
}

/// One failed validator, with its place in the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// `FILE:LINE:COL` of the validator's type key.
    pub location: String,
    /// The validator type (`package`, `script`, `any`, ...).
    pub validator: String,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.location, self.validator, self.message)
    }
}

/// Why a run did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A required argument is missing, a value is not among the choices, or an argument is unknown.
    #[error("{0}")]
    Arguments(String),
    /// The target does not meet the spec. An `any` lists its alternatives' failures after itself.
    #[error("{}", format_failures(.failures))]
    Validation { failures: Vec<Failure> },
    /// The target could not be reached: the run stopped.
    #[error("remote failure: {0}")]
    Remote(RemoteError),
    #[error("cancelled")]
    Cancelled,
}

fn format_failures(failures: &[Failure]) -> String {
    let lines: Vec<String> = failures.iter().map(|f| f.to_string()).collect();
    lines.join("\n")
}

/// The distro family forge uses for `os_case` and `package` (validator-spec fix 12): Sahara's
/// table plus `debian`, `rocky`, `almalinux`, `ol`/`oraclelinux` and `scientific`/`scientificlinux`.
pub fn distro_family(distro: &str) -> Option<&'static str> {
    match distro {
        "centos"
        | "centos7"
        | "fedora"
        | "redhat"
        | "rhel"
        | "redhatenterpriseserver"
        | "rocky"
        | "almalinux"
        | "ol"
        | "oraclelinux"
        | "scientificlinux"
        // Scientific Linux's /etc/os-release ID (libguestfs says scientificlinux).
        | "scientific" => Some("redhat"),
        "ubuntu" | "debian" => Some("debian"),
        _ => None,
    }
}

/// Run `spec` against `remote`. `args` are the caller's values by argument name; undeclared
/// names are an error. See the module docs and `validator-spec.md` for the semantics. Stretches
/// whose commands are known ahead go to the target as one program each ([`super::batch`]).
pub async fn run(
    spec: &Spec,
    remote: &dyn Remote,
    args: &BTreeMap<String, String>,
    opts: &RunOptions,
    cancel: &CancellationToken,
) -> Result<RunReport, RunError> {
    run_with(spec, remote, args, opts, cancel, true).await
}

/// [`run`] with one remote call per command (no batching): the reference the batched path is
/// tested against, and what tests pinning exact command sequences use.
pub async fn run_unbatched(
    spec: &Spec,
    remote: &dyn Remote,
    args: &BTreeMap<String, String>,
    opts: &RunOptions,
    cancel: &CancellationToken,
) -> Result<RunReport, RunError> {
    run_with(spec, remote, args, opts, cancel, false).await
}

async fn run_with(
    spec: &Spec,
    remote: &dyn Remote,
    args: &BTreeMap<String, String>,
    opts: &RunOptions,
    cancel: &CancellationToken,
    batching: bool,
) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let map = resolve_arguments(spec, args)?;
    let mut engine = Engine {
        spec,
        remote,
        cancel,
        map,
        round_trips: 0,
        validators_run: 0,
        batching,
    };
    let outcome = async {
        let distro = match &opts.distro_override {
            Some(d) => d.clone(),
            None => engine.call(remote.distro()).await?.trim().to_string(),
        };
        // After the declared arguments: Sahara's env order is declared args, distro, runtime keys.
        engine.map.insert("distro".into(), distro);
        engine.all(&spec.validators, opts.mode).await
    }
    .await;
    match outcome {
        Ok(()) => Ok(RunReport {
            round_trips: engine.round_trips,
            validators_run: engine.validators_run,
            duration: started.elapsed(),
            arguments: engine.map.into_iter().collect(),
        }),
        Err(Stop::Failed(failures)) => Err(RunError::Validation { failures }),
        Err(Stop::Abort(e)) => Err(e),
    }
}

/// Check `args` against the spec's declarations (unknown names, required arguments, choices)
/// without touching a remote: what the CLIs call before connecting or launching an appliance.
pub fn check_arguments(spec: &Spec, args: &BTreeMap<String, String>) -> Result<(), RunError> {
    resolve_arguments(spec, args).map(|_| ())
}

/// Declared arguments in declaration order, each from the caller or its default
/// (sahara-reference §2.2). Every problem is reported, one per line.
fn resolve_arguments(
    spec: &Spec,
    args: &BTreeMap<String, String>,
) -> Result<IndexMap<String, String>, RunError> {
    let mut problems = Vec::new();
    for name in args.keys() {
        if !spec.arguments().iter().any(|a| &a.name == name) {
            let declared: Vec<&str> = spec.arguments().iter().map(|a| a.name.as_str()).collect();
            problems.push(if declared.is_empty() {
                format!(
                    "unknown argument `{name}`: {} declares no arguments",
                    spec.path().display()
                )
            } else {
                format!(
                    "unknown argument `{name}`; {} declares: {}",
                    spec.path().display(),
                    declared.join(", ")
                )
            });
        }
    }
    let mut map = IndexMap::new();
    for arg in spec.arguments() {
        match args.get(&arg.name) {
            None if arg.required => {
                let about = arg
                    .description
                    .as_deref()
                    .map(|d| format!(" ({})", d.trim()))
                    .unwrap_or_default();
                problems.push(format!(
                    "argument `{}` is required{about}: pass it as {}=VALUE",
                    arg.name, arg.name
                ));
            }
            None => {
                // The loader guarantees a non-required argument has a default.
                map.insert(arg.name.clone(), arg.default.clone().unwrap_or_default());
            }
            Some(value) if !arg.choices.is_empty() && !arg.choices.contains(value) => {
                problems.push(format!(
                    "value `{value}` for argument `{}` is not allowed: expected one of {}",
                    arg.name,
                    arg.choices.join(", ")
                ));
            }
            Some(value) => {
                map.insert(arg.name.clone(), value.clone());
            }
        }
    }
    if problems.is_empty() {
        Ok(map)
    } else {
        Err(RunError::Arguments(problems.join("\n")))
    }
}

/// How a validator stopped: a validation failure (caught by `any`) or an abort (never caught).
enum Stop {
    Failed(Vec<Failure>),
    Abort(RunError),
}

type Outcome = Result<(), Stop>;

struct Engine<'a> {
    spec: &'a Spec,
    remote: &'a dyn Remote,
    cancel: &'a CancellationToken,
    /// The one argument map of the run, in insertion order (the order scripts see variables in).
    map: IndexMap<String, String>,
    round_trips: usize,
    validators_run: usize,
    /// Send plannable stretches as one program ([`super::batch`]); off after a target turned
    /// out to lack `base64`.
    batching: bool,
}

impl<'a> Engine<'a> {
    /// One remote call: counted, abandoned when the run is cancelled.
    async fn call<T>(
        &mut self,
        fut: impl Future<Output = Result<T, RemoteError>>,
    ) -> Result<T, Stop> {
        if self.cancel.is_cancelled() {
            return Err(Stop::Abort(RunError::Cancelled));
        }
        self.round_trips += 1;
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(Stop::Abort(RunError::Cancelled)),
            r = fut => r.map_err(|e| Stop::Abort(match e {
                RemoteError::Cancelled => RunError::Cancelled,
                e => RunError::Remote(e),
            })),
        }
    }

    fn fail(&self, v: &Validator, message: String) -> Stop {
        Stop::Failed(vec![Failure {
            location: self.spec.locate(v.location),
            validator: v.kind.type_name().to_string(),
            message,
        }])
    }

    async fn all(&mut self, validators: &'a [Validator], mode: Mode) -> Outcome {
        let mut i = 0;
        while i < validators.len() {
            if self.batching {
                let plan = batch::plan(&validators[i..], mode, &self.map);
                // One leaf gains nothing from a program around it.
                if plan.leaves >= 2 && self.run_batch(&plan, mode).await? {
                    i += plan.consumed;
                    continue;
                }
            }
            self.exec(&validators[i], mode).await?;
            i += 1;
        }
        Ok(())
    }

    /// Run a planned stretch as one program and walk the plan over its records, reaching the
    /// verdicts the one-by-one path would. `Ok(false)`: the target cannot run programs (no
    /// `base64`), nothing ran, batching is now off.
    async fn run_batch(&mut self, plan: &batch::Plan<'a>, mode: Mode) -> Result<bool, Stop> {
        if self.cancel.is_cancelled() {
            return Err(Stop::Abort(RunError::Cancelled));
        }
        let path = format!("/tmp/forge-batch-{}.sh", uuid::Uuid::new_v4().simple());
        let program = plan.program();
        let qpath = shell_quote(&path);
        let cmd = format!("sh {qpath}; s=$?; rm -f {qpath}; exit $s");
        tracing::debug!(
            leaves = plan.leaves,
            bytes = program.len(),
            "validator batch"
        );
        let remote = self.remote;
        let out = self
            .call(remote.run_script(&path, program.as_bytes(), &cmd))
            .await?;
        if out.status == batch::NO_BASE64 {
            tracing::debug!("target has no base64: validators run one command at a time");
            self.batching = false;
            return Ok(false);
        }
        let broken = |why: &str| {
            Stop::Abort(RunError::Remote(RemoteError::Transport {
                target: remote.describe(),
                reason: format!("validator batch {why}{}", detail(&out)),
            }))
        };
        if out.status != 0 {
            return Err(broken("ended unexpectedly"));
        }
        let Some(mut records) = batch::Records::parse(&out.stdout, plan.leaves) else {
            return Err(broken("printed unreadable results"));
        };
        for item in &plan.items {
            self.validators_run += 1;
            match item {
                batch::Item::Enter => {}
                batch::Item::Set { argument, value } => {
                    self.map.insert(argument.to_string(), value.to_string());
                }
                batch::Item::Leaf { v, leaf, kind } => {
                    let mut next = || records.next(*leaf).ok_or_else(|| broken("stopped early"));
                    match kind {
                        batch::LeafKind::Package(cmds) => {
                            let check = next()?;
                            if check.success() {
                                continue;
                            }
                            let verdict = if mode == Mode::TestOnly {
                                not_installed(cmds, &check)
                            } else {
                                let install = next()?;
                                if !install.success() {
                                    install_failed(cmds, &install)
                                } else {
                                    let recheck = next()?;
                                    if recheck.success() {
                                        continue;
                                    }
                                    still_not_installed(cmds, &recheck)
                                }
                            };
                            return Err(self.fail(v, verdict));
                        }
                        batch::LeafKind::Script(script) => {
                            let out = next()?;
                            if !out.success() {
                                return Err(self.fail(v, script_failed(script, &out)));
                            }
                        }
                    }
                }
            }
        }
        Ok(true)
    }

    fn exec<'s>(&'s mut self, v: &'a Validator, mode: Mode) -> BoxFuture<'s, Outcome> {
        Box::pin(async move {
            if self.cancel.is_cancelled() {
                return Err(Stop::Abort(RunError::Cancelled));
            }
            self.validators_run += 1;
            match &v.kind {
                ValidatorKind::All(children) => self.all(children, mode).await,
                ValidatorKind::Any(children) => self.any(v, children, mode).await,
                ValidatorKind::OsCase(cases) => {
                    // Read at run time: `argument_set` or a script `output` may have changed it.
                    let distro = self.map.get("distro").cloned().unwrap_or_default();
                    let family = distro_family(&distro);
                    match cases
                        .iter()
                        .find(|c| c.key == distro || Some(c.key.as_str()) == family)
                    {
                        Some(case) => self.all(&case.validators, mode).await,
                        None => Ok(()),
                    }
                }
                ValidatorKind::ArgumentCase { argument, cases } => {
                    let Some(value) = self.map.get(argument).cloned() else {
                        return Err(self.fail(v, format!("argument `{argument}` not found")));
                    };
                    match cases.iter().find(|c| c.key == value) {
                        Some(case) => self.all(&case.validators, mode).await,
                        None => Ok(()),
                    }
                }
                ValidatorKind::ArgumentSet { argument, value } => {
                    self.map.insert(argument.clone(), value.clone());
                    Ok(())
                }
                ValidatorKind::Package(packages) => self.package(v, packages, mode).await,
                ValidatorKind::Script(script) => self.script(v, script, mode).await,
                ValidatorKind::CopyScript(copy) => self.copy_script(copy).await,
            }
        })
    }

    /// Pass 1 tries every alternative in test-only mode; only if none passes and the run
    /// reconciles, pass 2 tries them again in reconcile mode. The error lists the last pass.
    async fn any(&mut self, v: &'a Validator, children: &'a [Validator], mode: Mode) -> Outcome {
        let mut passes = vec![Mode::TestOnly];
        if mode == Mode::Reconcile {
            passes.push(Mode::Reconcile);
        }
        let mut failures = Vec::new();
        for pass in passes {
            failures.clear();
            for child in children {
                match self.exec(child, pass).await {
                    Ok(()) => return Ok(()),
                    Err(Stop::Failed(f)) => failures.extend(f),
                    Err(abort) => return Err(abort),
                }
            }
        }
        let pass = match mode {
            Mode::Reconcile => "checked and then reconciled",
            Mode::TestOnly => "checked",
        };
        let Stop::Failed(mut all) = self.fail(
            v,
            format!(
                "none of its {} alternatives passed ({pass}); their failures follow",
                children.len()
            ),
        ) else {
            unreachable!("fail() builds a validation failure")
        };
        all.extend(failures);
        Err(Stop::Failed(all))
    }

    /// One check command; in reconcile mode, on failure one install command and the check again.
    async fn package(&mut self, v: &Validator, packages: &[Package], mode: Mode) -> Outcome {
        let distro = self.map.get("distro").cloned().unwrap_or_default();
        let Some(family) = distro_family(&distro) else {
            return Err(self.fail(
                v,
                format!("unknown distro {distro}: cannot verify or install packages"),
            ));
        };
        let cmds = PackageCommands::new(family, packages);
        tracing::debug!(at = %v.location, mode = ?mode, "package {}", cmds.display);
        let remote = self.remote;
        let check = self.call(remote.run(&cmds.check)).await?;
        if check.success() {
            return Ok(());
        }
        if mode == Mode::TestOnly {
            return Err(self.fail(v, not_installed(&cmds, &check)));
        }
        let install = self.call(remote.run(&cmds.install)).await?;
        if !install.success() {
            return Err(self.fail(v, install_failed(&cmds, &install)));
        }
        let recheck = self.call(remote.run(&cmds.check)).await?;
        if recheck.success() {
            Ok(())
        } else {
            Err(self.fail(v, still_not_installed(&cmds, &recheck)))
        }
    }

    /// Write the script verbatim and run it in one `run_script` call, with the exported
    /// arguments passed through env(1) as single-quoted `NAME=VALUE` words.
    async fn script(&mut self, v: &Validator, script: &Script, mode: Mode) -> Outcome {
        let exported = script_env(&self.map, script, mode);
        let path = format!("/tmp/forge-{}.sh", uuid::Uuid::new_v4().simple());
        // Names only: values may be anything the user passed.
        tracing::debug!(at = %v.location, mode = ?mode, env = ?script.env_vars, "script {}", script.name);
        let cmd = script_command(&path, &script.content, &exported);
        let remote = self.remote;
        let out = self
            .call(remote.run_script(&path, &script.content, &cmd))
            .await?;
        if !out.success() {
            return Err(self.fail(v, script_failed(script, &out)));
        }
        if let Some(name) = &script.output {
            // Trailing newlines stripped, as shell command substitution does (forge fix 9).
            let value = out.stdout_lossy().trim_end_matches('\n').to_string();
            self.map.insert(name.clone(), value);
        }
        Ok(())
    }

    /// Writes the bytes verbatim to `/tmp/<basename>` in both modes (forge fix 5).
    async fn copy_script(&mut self, copy: &CopyScript) -> Outcome {
        tracing::debug!("copy_script {} -> {}", copy.name, copy.destination);
        let remote = self.remote;
        self.call(remote.write_file(&copy.destination, &copy.content, 0o644))
            .await
    }
}

/// The `NAME=VALUE` words (single-quoted) a script receives through env(1): `test_only`,
/// `distro` and its declared `env_vars`, in the argument map's order.
pub(super) fn script_env(
    map: &IndexMap<String, String>,
    script: &Script,
    mode: Mode,
) -> Vec<String> {
    let mut vars = map.clone();
    vars.insert("test_only".into(), mode.flag().into());
    vars.iter()
        .filter(|(name, _)| {
            name.as_str() == "test_only"
                || name.as_str() == "distro"
                || script.env_vars.iter().any(|e| e == *name)
        })
        .map(|(name, value)| shell_quote(&format!("{name}={value}")))
        .collect()
}

fn not_installed(cmds: &PackageCommands, check: &CommandOutput) -> String {
    format!("not installed: {}{}", cmds.display, detail(check))
}

fn install_failed(cmds: &PackageCommands, install: &CommandOutput) -> String {
    format!("installing {} failed{}", cmds.display, detail(install))
}

fn still_not_installed(cmds: &PackageCommands, recheck: &CommandOutput) -> String {
    format!(
        "still not installed after installing: {}{}",
        cmds.display,
        detail(recheck)
    )
}

fn script_failed(script: &Script, out: &CommandOutput) -> String {
    format!("`{}` failed{}", script.name, detail(out))
}

/// The command that runs an uploaded script: its own shebang is honoured, a script without one
/// runs under bash (forge fix 8); the file is removed afterwards and the exit status kept.
pub(crate) fn script_command(path: &str, content: &[u8], exported: &[String]) -> String {
    let qpath = shell_quote(path);
    let runner = if content.starts_with(b"#!") {
        qpath.clone()
    } else {
        format!("bash {qpath}")
    };
    let env = if exported.is_empty() {
        String::new()
    } else {
        format!("env {} ", exported.join(" "))
    };
    format!("{env}{runner}; s=$?; rm -f {qpath}; exit $s")
}

/// The check and install commands of one `package` validator.
pub(super) struct PackageCommands {
    pub check: String,
    pub install: String,
    /// The packages as the family spells pins, for messages.
    pub display: String,
}

impl PackageCommands {
    pub fn new(family: &str, packages: &[Package]) -> Self {
        if family == "redhat" {
            // RPM spells a pin `name-version`, for `rpm -q` and `yum install` alike.
            let specs: Vec<String> = packages
                .iter()
                .map(|p| match &p.version {
                    Some(v) => format!("{}-{v}", p.name),
                    None => p.name.clone(),
                })
                .collect();
            let quoted: Vec<String> = specs.iter().map(|s| shell_quote(s)).collect();
            PackageCommands {
                check: format!("rpm -q {}", quoted.join(" ")),
                install: format!("yum install -y {}", quoted.join(" ")),
                display: specs.join(" "),
            }
        } else {
            // apt spells a pin `name=version`; dpkg cannot check one, so the check compares the
            // installed version itself. `dpkg -s` would also accept removed-but-configured
            // packages; the status must end in "installed".
            let specs: Vec<String> = packages
                .iter()
                .map(|p| match &p.version {
                    Some(v) => format!("{}={v}", p.name),
                    None => p.name.clone(),
                })
                .collect();
            let calls: Vec<String> = packages
                .iter()
                .map(|p| {
                    format!(
                        "forge_pkg {} {} || r=1",
                        shell_quote(&p.name),
                        shell_quote(p.version.as_deref().unwrap_or(""))
                    )
                })
                .collect();
            let check = format!("{DPKG_CHECK_FN} r=0; {}; exit $r", calls.join("; "));
            let quoted: Vec<String> = specs.iter().map(|s| shell_quote(s)).collect();
            PackageCommands {
                check,
                install: format!(
                    "DEBIAN_FRONTEND=noninteractive apt-get -y install {}",
                    quoted.join(" ")
                ),
                display: specs.join(" "),
            }
        }
    }
}

/// `forge_pkg NAME VERSION`: succeeds when NAME is installed (and at VERSION, when not empty);
/// otherwise says why on stderr.
const DPKG_CHECK_FN: &str = r#"forge_pkg() { s=$(dpkg-query -W -f='${Status}|${Version}' "$1" 2>/dev/null) || s=; case "$s" in *' installed|'*) ;; *) echo "package $1 is not installed" >&2; return 1;; esac; if [ -n "$2" ] && [ "${s#*|}" != "$2" ]; then echo "package $1 is at version ${s#*|}, not $2" >&2; return 1; fi; };"#;

/// ` (exit status N): <last lines of stderr, else stdout>` for failure messages.
fn detail(out: &CommandOutput) -> String {
    let stderr = out.stderr_lossy();
    let stdout = out.stdout_lossy();
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let lines: Vec<&str> = text.trim().lines().collect();
    let tail = &lines[lines.len().saturating_sub(10)..];
    // Continuation lines indented so a failure list stays readable.
    let mut tail = tail.join("\n    ");
    if tail.len() > 2000 {
        let mut cut = tail.len() - 2000;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail = format!("...{}", &tail[cut..]);
    }
    if tail.is_empty() {
        format!(" (exit status {})", out.status)
    } else {
        format!(" (exit status {}): {tail}", out.status)
    }
}
