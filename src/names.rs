//! The names that tie a build to its cleanup and retention, defined once: the build label, the
//! names forge gives the cloud resources of a run, and the `forge_*` image properties. Steps
//! create resources under these names, `forge cleanup` sweeps by them, retention and
//! `forge images` match a build's images by them: they are the contract between those parts.

use std::collections::BTreeMap;
use std::path::Path;

use crate::template::{Build, Source};

/// Property: the run that created the image (snapshot, upload) or server (metadata).
pub const RUN_ID: &str = "forge_run_id";
/// Property: the template's file name (see [`template_file`]).
pub const TEMPLATE: &str = "forge_template";
/// Property: the build label (see [`build_label`]).
pub const BUILD: &str = "forge_build";
/// Property: the inputs' fingerprint, written last by publish (`--skip-unchanged`).
pub const FINGERPRINT: &str = "forge_fingerprint";
/// Property: the source image's id.
pub const SOURCE_IMAGE: &str = "forge_source_image";

/// The identity properties only publish may set: a snapshot blanks any it inherits from its
/// source image.
pub const INHERITED_IDENTITY: [&str; 4] = [TEMPLATE, BUILD, FINGERPRINT, SOURCE_IMAGE];

/// Glance's sort for "newest first", ties broken by the lowest id: the order that makes "most
/// recent" deterministic (`created_at` has one-second resolution on MySQL-backed clouds).
pub const NEWEST_FIRST: &str = "created_at:desc,id:asc";

/// The label of one build of one source, as Packer names it: `NAME.TYPE.SOURCE`
/// (`nightly.openstack.debian`, `offline.image-file.disk`), or `TYPE.SOURCE` for an unnamed
/// build block. Every source kind is labelled the same way.
pub fn build_label(build: &Build, src: &Source) -> String {
    match &build.name {
        Some(n) => format!("{n}.{}", source_label(src)),
        None => source_label(src),
    }
}

/// A source as Packer names it, `TYPE.SOURCE` (`openstack.debian`): what the journal records
/// of a template-auth run and `forge cleanup` looks up to log in again.
pub fn source_label(src: &Source) -> String {
    format!("{}.{}", src.kind().label(), src.name())
}

/// The template's file name as `forge_template` holds it: without the directory, so the
/// identity does not depend on the machine or the working directory.
pub fn template_file(template: &Path) -> String {
    template
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| template.display().to_string())
}

/// The properties that identify which build made an image: `forge_template` and `forge_build`.
/// Retention matches images on both.
pub fn forge_properties(template: &Path, build_label: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TEMPLATE.to_string(), template_file(template)),
        (BUILD.to_string(), build_label.to_string()),
    ])
}

/// The build server of run `run_id`.
pub fn server_name(run_id: &str) -> String {
    format!("forge-{run_id}")
}

/// The temporary Nova keypair of run `run_id`.
pub fn keypair_name(run_id: &str) -> String {
    format!("forge-{run_id}-key")
}

/// The description of run `run_id`'s floating IP (Neutron has no names for them).
pub fn floating_ip_label(run_id: &str) -> String {
    format!("forge-{run_id}-fip")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_and_identity() {
        assert_eq!(server_name("r1"), "forge-r1");
        assert_eq!(keypair_name("r1"), "forge-r1-key");
        assert_eq!(floating_ip_label("r1"), "forge-r1-fip");
        let p = forge_properties(Path::new("/x/y/t.pkr.hcl"), "b.image-file.s");
        assert_eq!(p[TEMPLATE], "t.pkr.hcl");
        assert_eq!(p[BUILD], "b.image-file.s");
    }
}
