//! forge: turns an HCL build template into a pipeline of steps that build an OpenStack image.
//!
//! Module map (the flow reads top to bottom):
//! - [`template`]: HCL template → typed build configuration; `forge validate`.
//! - [`pipeline`]: the step runner with rollback, generic over a typed state bag.
//! - [`build`]: one build of one source around its pipeline: prepare (specs, scripts, user data
//!   read once, fingerprint inputs), journal, `--skip-unchanged`, summary, manifest, retention.
//! - [`steps`]: one file per build step (run and cleanup side by side) and the build's state bag;
//!   the pipelines themselves, top to bottom, in `steps/mod.rs`.
//! - [`names`]: the build's identity, defined once: build label, `forge-<run>` resource names,
//!   `forge_*` image properties (the contract between steps, cleanup and retention).
//! - [`openstack`]: clients that mirror the OpenStack APIs (identity, image, compute, network).
//! - [`remote`]: how commands reach a target: SSH or libguestfs, behind one trait.
//! - [`spec`]: the Sahara image-spec validator language: loader and engine.
//! - [`disk`]: copy-on-write overlays of disk image files and their flattening (qemu-img).
//! - [`journal`]: the fsynced record of every resource a run creates and deletes (typed kinds).
//! - [`cleanup`]: `forge cleanup`: find and delete what killed runs left in the cloud.
//! - [`manifest`]: the Packer-compatible build manifest.
//! - [`fingerprint`]: the input digest `--skip-unchanged` compares; [`lock`]: one run per template.
//! - [`retention`]: which of a build's images to keep, hide or delete; channel promotion.
//! - [`cli`]: the thin command layer behind `src/main.rs`.

pub mod build;
pub mod cleanup;
pub mod cli;
pub mod disk;
pub mod fingerprint;
pub mod journal;
pub mod lock;
pub mod manifest;
pub mod names;
pub mod openstack;
pub mod pipeline;
pub mod remote;
pub mod retention;
pub mod spec;
#[path = "../steps/mod.rs"]
pub mod steps;
pub mod template;
