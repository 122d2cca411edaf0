//! forge's integration tests, one test binary (`cargo test --test integration`): one link of the
//! crate instead of one per file. Each file beside this one is a module named after the area it
//! tests; the shared helpers stay beside the scripts that set up what they drive.
//!
//! A new test file: `tests/integration/<area>_<topic>.rs`, declared below with `mod <name>;`
//! (alphabetical), using the helpers as `use crate::{build, cloud, hosts, image};`. Tests that
//! need the test cloud, SSH hosts or the libguestfs image are `#[ignore = "needs ..."]`d (see
//! README "Tests"). Run one file with `cargo test --test integration <name>::`.
//!
//! The fuzz campaign (`tests/fuzz_loaders.rs`) stays its own binary: it runs for minutes and its
//! watchdog ends the whole process when an input hangs.

// Helpers (shared by many files).
#[path = "../build/mod.rs"]
mod build;
#[path = "../cloud/mod.rs"]
mod cloud;
#[macro_use]
#[path = "../hosts/mod.rs"]
mod hosts;
#[path = "../fixture/mod.rs"]
mod fixture;
#[cfg(feature = "guestfs")]
#[path = "../image/mod.rs"]
mod image;
#[allow(clippy::duplicate_mod)] // also in each helper, which must work in any test binary
#[path = "../infra/mod.rs"]
mod infra;

// Tests.
mod build_e2e;
mod build_faults;
mod build_image_file;
mod build_kill;
mod build_nightly;
mod cli_docs;
mod fuzz_regressions;
mod images_retention;
mod login_cloud;
mod openstack_auth;
mod openstack_compute;
mod openstack_config;
mod openstack_image;
mod openstack_network;
mod openstack_tls;
mod openstack_upload;
mod openstack_volume;
mod pack_cli;
mod pack_pipeline;
mod pack_remote;
mod pipeline;
mod seam_build_images;
mod secrets;
mod spec_batch;
mod spec_engine;
mod spec_load;
mod ssh_cli;
mod ssh_remote;
mod ssh_spec;
mod template_functions;
mod template_model;
mod template_retention;
mod template_robust;
mod template_validate;
mod template_vars;
