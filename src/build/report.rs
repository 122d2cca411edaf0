//! How a build is reported: the summary on stderr and its manifest entry.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::manifest::{self, BuildEntry, ResourceEntry, SourceImageEntry, StepEntry};
use crate::names;
use crate::openstack::image::Image;
use crate::pipeline::{Progress, Report};
use crate::steps::BuildState;
use crate::template::{Build, PostProcessor, Template};

/// Append `entry` to the file of every `manifest` post-processor of `build`.
pub(super) fn write_manifests(
    build: &Build,
    entry: &BuildEntry,
    progress: &Progress,
) -> anyhow::Result<()> {
    for pp in &build.post_processors {
        match pp {
            PostProcessor::Manifest { output } => {
                manifest::append(output, entry.clone())?;
                progress.println(&format!("==> manifest: {}", output.display()));
            }
        }
    }
    Ok(())
}

/// Print how the build ended, the failed cleanups and (with `--on-error=abort`) the leftovers.
pub(super) fn summarize(label: &str, report: &Report, template: &Template) {
    let outcome = template.redact(&report.outcome.to_string());
    eprintln!("==> {label}: {outcome}");
    for c in &report.cleanups {
        if let Some(e) = &c.error {
            eprintln!(
                "==> cleanup of '{}' failed: {} (run `forge cleanup` later)",
                c.name,
                template.redact(e)
            );
        }
    }
    if !report.leftovers.is_empty() {
        eprintln!("==> --on-error=abort: left behind:");
        for l in &report.leftovers {
            eprintln!("    {l}");
        }
    }
}

pub(super) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

pub(super) fn source_entry(i: &Image) -> SourceImageEntry {
    SourceImageEntry {
        id: i.id.clone(),
        name: i.name.clone().unwrap_or_default(),
        checksum: i.os_hash_value.clone().or_else(|| i.checksum.clone()),
    }
}

pub(super) fn manifest_entry(
    label: &str,
    builder_type: &str,
    run_id: &str,
    state: &BuildState,
    report: &Report,
) -> BuildEntry {
    BuildEntry {
        name: label.to_string(),
        builder_type: builder_type.into(),
        build_time: unix_now(),
        artifact_id: state
            .image
            .as_ref()
            .map(|i| i.id.clone())
            .unwrap_or_default(),
        run_id: run_id.to_string(),
        custom_data: BTreeMap::new(),
        source_image: state.source_image.as_ref().map(source_entry),
        arguments: state.arguments.clone(),
        steps: report
            .steps
            .iter()
            .map(|s| StepEntry {
                name: s.name.clone(),
                seconds: s.duration.as_secs_f64(),
                ok: s.ok,
            })
            .collect(),
        resources: state
            .journal
            .resources()
            .into_iter()
            .map(|r| ResourceEntry {
                kind: r.kind.as_str().to_string(),
                id: r.id.unwrap_or_default(),
                name: r.name,
                deleted: r.deleted,
            })
            .collect(),
        skipped: false,
        fingerprint: state
            .image
            .as_ref()
            .and_then(|i| i.property(names::FINGERPRINT))
            .map(str::to_string),
    }
}
