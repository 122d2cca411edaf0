//! The typed validator tree a spec loads into.

use std::fmt;
use std::path::{Path, PathBuf};

/// A loaded image spec: declared arguments plus the top-level validators (an implicit `all`).
/// Every script it names has been found and read.
#[derive(Debug, Clone)]
pub struct Spec {
    pub(crate) path: PathBuf,
    /// sha256 (hex) of the spec file's bytes as loaded: the file is read once.
    pub(crate) sha256: String,
    pub(crate) arguments: Vec<Argument>,
    pub(crate) validators: Vec<Validator>,
}

impl Spec {
    /// The spec file as given to [`crate::spec::load`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// sha256 (hex) of the spec file's content, as it was loaded.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Declared arguments, in declaration order (hidden ones included).
    pub fn arguments(&self) -> &[Argument] {
        &self.arguments
    }

    /// The top-level validators, run in order as an `all`.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// A location in this spec as `FILE:LINE:COL`.
    pub fn locate(&self, at: Location) -> String {
        format!("{}:{at}", self.path.display())
    }

    /// How many validators of each type the tree holds, nested ones included (`"package"` → 3).
    pub fn count_by_type(&self) -> std::collections::BTreeMap<&'static str, usize> {
        let mut counts = std::collections::BTreeMap::new();
        fn walk(vs: &[Validator], counts: &mut std::collections::BTreeMap<&'static str, usize>) {
            for v in vs {
                *counts.entry(v.kind.type_name()).or_insert(0) += 1;
                for child in v.kind.children() {
                    walk(child, counts);
                }
            }
        }
        walk(&self.validators, &mut counts);
        counts
    }
}

/// A declared argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Argument {
    pub name: String,
    pub description: Option<String>,
    /// The default's text (`1` for the YAML int 1); `None` when absent or null.
    pub default: Option<String>,
    pub required: bool,
    /// Allowed values as text; empty = unconstrained.
    pub choices: Vec<String>,
    /// Accepted on the command line but left out of listings (forge fix 13).
    pub hidden: bool,
}

/// 1-based line and column of a validator (or value) in its spec file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One validator: where it is and what it does.
#[derive(Debug, Clone)]
pub struct Validator {
    /// Position of the validator's type key (`package:`).
    pub location: Location,
    pub kind: ValidatorKind,
}

#[derive(Debug, Clone)]
pub enum ValidatorKind {
    /// Packages checked (and installed) as one unit, in one command each.
    Package(Vec<Package>),
    Script(Script),
    CopyScript(CopyScript),
    All(Vec<Validator>),
    Any(Vec<Validator>),
    /// Cases in list order; the first whose key equals the distro id or its family runs.
    OsCase(Vec<Case>),
    /// Cases keyed by the argument's value, compared as strings.
    ArgumentCase {
        argument: String,
        cases: Vec<Case>,
    },
    ArgumentSet {
        argument: String,
        value: String,
    },
}

impl ValidatorKind {
    /// The YAML key of this validator type.
    pub fn type_name(&self) -> &'static str {
        match self {
            ValidatorKind::Package(_) => "package",
            ValidatorKind::Script(_) => "script",
            ValidatorKind::CopyScript(_) => "copy_script",
            ValidatorKind::All(_) => "all",
            ValidatorKind::Any(_) => "any",
            ValidatorKind::OsCase(_) => "os_case",
            ValidatorKind::ArgumentCase { .. } => "argument_case",
            ValidatorKind::ArgumentSet { .. } => "argument_set",
        }
    }

    /// Nested validator lists (children of `all`/`any`, each case's list).
    pub fn children(&self) -> Vec<&[Validator]> {
        match self {
            ValidatorKind::All(v) | ValidatorKind::Any(v) => vec![v.as_slice()],
            ValidatorKind::OsCase(cases) | ValidatorKind::ArgumentCase { cases, .. } => {
                cases.iter().map(|c| c.validators.as_slice()).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// One case of an `os_case` or `argument_case`: its key and its validators (an implicit `all`).
#[derive(Debug, Clone)]
pub struct Case {
    pub key: String,
    pub validators: Vec<Validator>,
}

/// A package name with an optional version pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: Option<String>,
}

/// Where a script's text came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptSource {
    /// The file found under a resource root.
    File(PathBuf),
    /// `inline:` text in the spec.
    Inline,
}

/// A `script` validator, its text already read.
#[derive(Debug, Clone)]
pub struct Script {
    /// The path as written in the spec (or the label of an inline script).
    pub name: String,
    pub source: ScriptSource,
    pub content: Vec<u8>,
    /// Extra argument names exported to the script (after `test_only` and `distro`).
    pub env_vars: Vec<String>,
    /// Argument that receives the script's stdout (trailing newlines stripped).
    pub output: Option<String>,
}

/// A `copy_script` validator: the file's bytes go to `destination` (`/tmp/<basename>`).
#[derive(Debug, Clone)]
pub struct CopyScript {
    pub name: String,
    pub source: ScriptSource,
    pub content: Vec<u8>,
    pub destination: String,
}
