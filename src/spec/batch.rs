//! Batching: a stretch of validators whose commands are all known before the first one runs is
//! sent to the target as ONE shell program (one round trip) instead of one command per leaf.
//!
//! The program runs the leaves in document order with the engine's own control flow (a
//! `package` check, and in reconcile mode its install and re-check; each script uploaded, run
//! and removed), stops at the first failure exactly where the engine would stop, and prints one
//! framed record per command it ran (status, stdout and stderr in base64). The engine then walks
//! the same plan over the records and reaches the same verdicts, messages, locations and argument
//! map as the one-command-per-leaf path; `tests/spec_batch.rs` proves the two agree.
//!
//! What can be planned ahead: `package` (when the distro family is known), `script` without
//! `output`, `argument_set` (applied to the planned map), and `all` / `os_case` /
//! `argument_case` whose chosen branch is itself plannable (they are inlined). Barriers, run by
//! the engine one by one: `any` (its passes depend on verdicts), a script whose `output` feeds
//! the argument map, `copy_script`, and anything that fails before it reaches the target (an
//! unknown distro, a missing `argument_case` argument).

use indexmap::IndexMap;

use super::engine::{distro_family, script_env, Mode, PackageCommands};
use super::model::{Script, Validator, ValidatorKind};
use crate::remote::{shell_quote, CommandOutput};

/// One step of a plan, in execution order.
pub(super) enum Item<'a> {
    /// A composite (`all`, `os_case`, `argument_case`) entered: counted as run.
    Enter,
    /// `argument_set`.
    Set { argument: &'a str, value: &'a str },
    /// A leaf whose commands are in the program; `leaf` numbers its records.
    Leaf {
        v: &'a Validator,
        leaf: usize,
        kind: LeafKind<'a>,
    },
}

pub(super) enum LeafKind<'a> {
    Package(PackageCommands),
    Script(&'a Script),
}

/// The plannable prefix of a validator list.
pub(super) struct Plan<'a> {
    pub items: Vec<Item<'a>>,
    /// How many validators of the list the plan covers (from its start).
    pub consumed: usize,
    pub leaves: usize,
    /// The shell program, built by [`Plan::program`].
    body: String,
}

/// Exit status of the program when the target lacks `base64` (the engine then runs the stretch
/// one command at a time).
pub(super) const NO_BASE64: i32 = 97;

/// Plan as much of `validators` (from its start) as can be known ahead, given the run's current
/// argument map.
pub(super) fn plan<'a>(
    validators: &'a [Validator],
    mode: Mode,
    map: &IndexMap<String, String>,
) -> Plan<'a> {
    let mut p = Planner {
        mode,
        map: map.clone(),
        items: Vec::new(),
        body: String::new(),
        leaves: 0,
    };
    let mut consumed = 0;
    for v in validators {
        // Each top-level validator is planned whole or not at all.
        let mark = (p.items.len(), p.body.len(), p.leaves, p.map.clone());
        if !p.add(v) {
            p.items.truncate(mark.0);
            p.body.truncate(mark.1);
            p.leaves = mark.2;
            p.map = mark.3;
            break;
        }
        consumed += 1;
    }
    Plan {
        items: p.items,
        consumed,
        leaves: p.leaves,
        body: p.body,
    }
}

struct Planner<'a> {
    mode: Mode,
    /// The argument map as it will be when the planned point is reached.
    map: IndexMap<String, String>,
    items: Vec<Item<'a>>,
    body: String,
    leaves: usize,
}

impl<'a> Planner<'a> {
    /// Append `v` (inlined when composite); false when it is a barrier (the caller rolls back).
    fn add(&mut self, v: &'a Validator) -> bool {
        match &v.kind {
            ValidatorKind::Any(_) | ValidatorKind::CopyScript(_) => false,
            ValidatorKind::Script(s) if s.output.is_some() => false,
            ValidatorKind::All(children) => {
                self.items.push(Item::Enter);
                children.iter().all(|c| self.add(c))
            }
            ValidatorKind::OsCase(cases) => {
                let distro = self.map.get("distro").cloned().unwrap_or_default();
                let family = distro_family(&distro);
                self.items.push(Item::Enter);
                match cases
                    .iter()
                    .find(|c| c.key == distro || Some(c.key.as_str()) == family)
                {
                    Some(case) => case.validators.iter().all(|c| self.add(c)),
                    None => true,
                }
            }
            ValidatorKind::ArgumentCase { argument, cases } => {
                let Some(value) = self.map.get(argument).cloned() else {
                    return false; // fails before reaching the target: the engine reports it
                };
                self.items.push(Item::Enter);
                match cases.iter().find(|c| c.key == value) {
                    Some(case) => case.validators.iter().all(|c| self.add(c)),
                    None => true,
                }
            }
            ValidatorKind::ArgumentSet { argument, value } => {
                self.map.insert(argument.clone(), value.clone());
                self.items.push(Item::Set { argument, value });
                true
            }
            ValidatorKind::Package(packages) => {
                let distro = self.map.get("distro").cloned().unwrap_or_default();
                let Some(family) = distro_family(&distro) else {
                    return false;
                };
                let cmds = PackageCommands::new(family, packages);
                let leaf = self.leaf();
                let check = shell_quote(&cmds.check);
                match self.mode {
                    Mode::TestOnly => {
                        self.body += &format!("forge_r {leaf} {check} || exit 0\n");
                    }
                    Mode::Reconcile => {
                        let install = shell_quote(&cmds.install);
                        self.body += &format!(
                            "forge_r {leaf} {check} || {{ forge_r {leaf} {install} || exit 0; \
                             forge_r {leaf} {check} || exit 0; }}\n"
                        );
                    }
                }
                self.items.push(Item::Leaf {
                    v,
                    leaf,
                    kind: LeafKind::Package(cmds),
                });
                true
            }
            ValidatorKind::Script(script) => {
                let leaf = self.leaf();
                let path = format!("/tmp/forge-{}.sh", uuid::Uuid::new_v4().simple());
                let exported = script_env(&self.map, script, self.mode);
                let cmd = super::engine::script_command(&path, &script.content, &exported);
                // The script travels inside the program as base64 (any bytes, any size), is
                // written where the one-by-one path would upload it, and removes itself.
                let qpath = shell_quote(&path);
                let marker = format!("FORGE_{}", uuid::Uuid::new_v4().simple());
                self.body += &format!(
                    "base64 -d > {qpath} <<'{marker}' || exit 98\n{}\n{marker}\nchmod 700 {qpath}\n\
                     forge_r {leaf} {} || exit 0\n",
                    wrap76(&b64(&script.content)),
                    shell_quote(&cmd),
                );
                self.items.push(Item::Leaf {
                    v,
                    leaf,
                    kind: LeafKind::Script(script),
                });
                true
            }
        }
    }

    fn leaf(&mut self) -> usize {
        self.leaves += 1;
        self.leaves - 1
    }
}

impl Plan<'_> {
    /// The whole program: a prologue (temp dir, the record function), then the planned leaves.
    /// An empty output costs no process (most checks print nothing).
    pub fn program(&self) -> String {
        format!(
            "command -v base64 >/dev/null 2>&1 || exit {NO_BASE64}\n\
             d=$(mktemp -d /tmp/forge-batch.XXXXXX) || exit 98\n\
             trap 'rm -rf \"$d\"' EXIT\n\
             forge_r() {{ ( eval \"$2\" ) </dev/null >\"$d/o\" 2>\"$d/e\"; s=$?; \
             printf 'FORGE-R %s %s ' \"$1\" \"$s\"; \
             [ -s \"$d/o\" ] && base64 < \"$d/o\" | tr -d '\\n'; printf ' '; \
             [ -s \"$d/e\" ] && base64 < \"$d/e\" | tr -d '\\n'; printf '\\n'; return $s; }}\n\
             {}exit 0\n",
            self.body
        )
    }
}

/// The records of one program run, per leaf in the order the program ran its commands.
pub(super) struct Records {
    by_leaf: Vec<std::collections::VecDeque<CommandOutput>>,
}

impl Records {
    /// Parse the program's stdout. `None` when it is not what the program prints (the caller
    /// reports a transport error).
    pub fn parse(stdout: &[u8], leaves: usize) -> Option<Records> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut by_leaf = vec![std::collections::VecDeque::new(); leaves];
        for line in String::from_utf8_lossy(stdout).lines() {
            let mut f = line.split(' ');
            if f.next()? != "FORGE-R" {
                return None;
            }
            let leaf: usize = f.next()?.parse().ok()?;
            let status: i32 = f.next()?.parse().ok()?;
            let out = b64.decode(f.next()?).ok()?;
            let err = b64.decode(f.next()?).ok()?;
            by_leaf.get_mut(leaf)?.push_back(CommandOutput {
                status,
                stdout: out,
                stderr: err,
            });
        }
        Some(Records { by_leaf })
    }

    /// The next record of `leaf`, in the order the program ran its commands.
    pub fn next(&mut self, leaf: usize) -> Option<CommandOutput> {
        self.by_leaf.get_mut(leaf)?.pop_front()
    }
}

fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// base64 in 76-column lines, as base64(1) writes it (some decoders want bounded lines).
fn wrap76(s: &str) -> String {
    let lines: Vec<&str> = s
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    lines.join("\n")
}
