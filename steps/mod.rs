//! The build's steps, one file per step with its run and cleanup side by side, and the state bag
//! they share. Steps depend on the core modules (`pipeline`, `openstack`, `remote`, `spec`),
//! never the reverse.

pub mod source_image;
pub mod state;

pub use state::BuildState;
