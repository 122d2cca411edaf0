//! The Sahara image-spec validator language: loader (YAML → typed tree) and engine.
//!
//! - [`load`] reads a spec, checks every form (`sahara-reference.md` §2–3, forge's fixes in
//!   `validator-spec.md`) and reads every script it names; errors name FILE:LINE:COL.
//! - [`run`] executes the tree against any [`crate::remote::Remote`] in reconcile or test-only
//!   mode.

mod batch;
mod engine;
mod error;
mod load;
mod model;
mod yaml;

pub use engine::{
    check_arguments, distro_family, run, run_unbatched, Failure, Mode, RunError, RunOptions,
    RunReport,
};
pub use error::{Problem, SpecError};
pub use load::load;
pub use model::{
    Argument, Case, CopyScript, Location, Package, Script, ScriptSource, Spec, Validator,
    ValidatorKind,
};
