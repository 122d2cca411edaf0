//! HCL build templates: parse, evaluate variables and functions, check, and produce a typed build.
//!
//! The flow: `parse` (hcl-edit, keeps spans) → `vars` (variables with Packer's precedence) →
//! `locals` → `source` / `build` (typed decoding through `decode::Reader`) → [`model`].
//! Every problem becomes a located [`Diagnostic`]; all of them are collected in one run.
//!
//! Relative paths in a template (`spec`, `script`, `user_data_file`, `ssh_private_key_file`,
//! `file()`, manifest `output`, image-file `path`) resolve against the template's directory.

mod build;
mod check;
mod decode;
pub mod diagnostics;
mod eval;
mod functions;
mod locals;
pub mod model;
mod parse;
mod source;
mod vars;

use std::path::{Path, PathBuf};

pub use decode::parse_age;
pub use diagnostics::{Diagnostic, Diagnostics};
pub use model::*;
pub use vars::ENV_PREFIX;

/// Where variable values come from, besides defaults.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-var NAME=VALUE`, as given, in order (later wins).
    pub vars: Vec<String>,
    /// `-var-file FILE`, in order (later wins; `-var` wins over all of them).
    pub var_files: Vec<PathBuf>,
    /// Environment variables; only `FORGE_VAR_<name>` entries are used.
    pub env: Vec<(String, String)>,
}

impl LoadOptions {
    /// Adds this process's `FORGE_VAR_*` environment variables (non-UTF-8 ones are skipped).
    pub fn with_process_env(mut self) -> Self {
        self.env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        self
    }
}

/// How far [`check`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckLevel {
    /// HCL syntax only.
    Syntax,
    /// Everything `forge validate` checks: types, references, required and conflicting
    /// attributes, enums, files named by provisioners.
    Full,
}

/// Loads a template into its typed, fully evaluated form, or every problem found.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Template, Diagnostics> {
    match check::run(path, opts, false) {
        (Some(t), d) if d.is_empty() => Ok(t),
        (_, d) => Err(d.sorted()),
    }
}

/// Checks a template offline (what `forge validate` runs); empty when it is valid.
pub fn check(path: &Path, opts: &LoadOptions, level: CheckLevel) -> Diagnostics {
    check::run(path, opts, level == CheckLevel::Syntax)
        .1
        .sorted()
}
