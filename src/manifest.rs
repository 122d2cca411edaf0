//! The `manifest` post-processor's file: Packer-compatible (`builds[].name`, `builder_type`,
//! `build_time`, `artifact_id`, `custom_data`, `last_run_uuid`), with `packer_run_uuid` called
//! `run_id`, plus what forge knows that Packer does not: the source image, the resolved
//! arguments, per-step durations and every resource created and deleted.
//!
//! Like Packer, a new build is appended to an existing manifest file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The whole manifest file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Manifest {
    pub builds: Vec<BuildEntry>,
    /// The run id of the newest build (Packer's `last_run_uuid`).
    #[serde(default)]
    pub last_run_uuid: String,
}

/// One build's record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BuildEntry {
    pub name: String,
    pub builder_type: String,
    /// Unix time when the build finished.
    pub build_time: i64,
    /// The published image id (empty when skipped or failed).
    pub artifact_id: String,
    pub run_id: String,
    #[serde(default)]
    pub custom_data: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_image: Option<SourceImageEntry>,
    /// Argument values the validators ran with; sensitive values are redacted by the caller.
    #[serde(default)]
    pub arguments: BTreeMap<String, String>,
    #[serde(default)]
    pub steps: Vec<StepEntry>,
    #[serde(default)]
    pub resources: Vec<ResourceEntry>,
    #[serde(default)]
    pub skipped: bool,
    /// The image's `forge_fingerprint` (see `crate::fingerprint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SourceImageEntry {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StepEntry {
    pub name: String,
    pub seconds: f64,
    pub ok: bool,
}

/// A cloud resource forge created, and whether it deleted it again.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResourceEntry {
    /// `server`, `keypair`, `floating_ip`, `image`, ...
    pub kind: String,
    pub id: String,
    pub name: String,
    pub deleted: bool,
}

/// Errors reading or writing a manifest file.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: existing manifest is not valid JSON: {message}")]
    Parse {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
}

/// Append `entry` to the manifest at `path` (created when absent), atomically: a reader never sees
/// a half-written file.
pub fn append(path: &Path, entry: BuildEntry) -> Result<(), ManifestError> {
    let shown = path.display().to_string();
    let io = |source| ManifestError::Io {
        path: shown.clone(),
        source,
    };
    let mut manifest = match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice::<Manifest>(&bytes).map_err(|e| ManifestError::Parse {
                path: shown.clone(),
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            })?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
        Err(e) => return Err(io(e)),
    };
    manifest.last_run_uuid = entry.run_id.clone();
    manifest.builds.push(entry);
    let mut text = serde_json::to_string_pretty(&manifest).map_err(|e| io(e.into()))?;
    text.push('\n');
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_builds_and_tracks_the_last_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/manifest.json");
        for id in ["run-1", "run-2"] {
            append(
                &path,
                BuildEntry {
                    name: "nightly".into(),
                    builder_type: "openstack".into(),
                    run_id: id.into(),
                    artifact_id: format!("image-of-{id}"),
                    ..Default::default()
                },
            )
            .unwrap();
        }
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(m["last_run_uuid"], "run-2");
        assert_eq!(m["builds"].as_array().unwrap().len(), 2);
        assert_eq!(m["builds"][0]["artifact_id"], "image-of-run-1");
        assert_eq!(m["builds"][1]["builder_type"], "openstack");
    }

    #[test]
    fn a_corrupt_manifest_is_reported_with_its_position_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.json");
        std::fs::write(&path, "{\n  \"builds\": [,]\n}").unwrap();
        let err = append(&path, BuildEntry::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("manifest.json:2:"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\n  \"builds\": [,]\n}"
        );
    }
}
