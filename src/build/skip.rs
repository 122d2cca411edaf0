//! `--skip-unchanged`: is there already an image built from these inputs?

use std::collections::BTreeMap;

use anyhow::Context;

use super::report::{source_entry, unix_now, write_manifests};
use crate::fingerprint;
use crate::manifest::BuildEntry;
use crate::names;
use crate::openstack::image::{Image, ImageQuery, ImageStatus};
use crate::pipeline::Progress;
use crate::steps::source_image::{self, Resolved};
use crate::steps::Clients;
use crate::template::{Build, OpenStackSource};

/// `--skip-unchanged`: resolve the source image (for the source-image step too), compute the
/// fingerprint and ask Glance for the newest active image of this project that carries it.
/// Only publish, the last step, writes `forge_fingerprint`, so a failed run's image never
/// matches.
pub(super) async fn up_to_date(
    clients: &Clients,
    src: &OpenStackSource,
    inputs_digest: &str,
) -> anyhow::Result<(Resolved, String, Option<Image>)> {
    let resolved = source_image::resolve(&clients.image, &src.source_image).await?;
    let fp = fingerprint::fingerprint(inputs_digest, &resolved.image);
    let query = ImageQuery {
        owner: clients.image.session().project_id().await?,
        status: Some(ImageStatus::Active),
        properties: BTreeMap::from([(names::FINGERPRINT.to_string(), fp.clone())]),
        sort: Some(names::NEWEST_FIRST.into()),
        ..ImageQuery::default()
    };
    let page = clients
        .image
        .list_page(&query, Some(1), None)
        .await
        .with_context(|| format!("looking for an image with the same {}", names::FINGERPRINT))?;
    Ok((resolved, fp, page.images.into_iter().next()))
}

/// Report a skipped build: the existing image on stdout (as a built one would be) and in the
/// manifest with `"skipped": true`.
pub(super) fn skipped(
    build: &Build,
    label: &str,
    run_id: &str,
    source: &Image,
    image: &Image,
    fp: &str,
    progress: &Progress,
) -> anyhow::Result<()> {
    eprintln!(
        "==> {label}: up to date, nothing built (--skip-unchanged): image {} has \
         forge_fingerprint {fp} (built by run {})",
        image.describe(),
        image.property(names::RUN_ID).unwrap_or("?")
    );
    let entry = BuildEntry {
        name: label.to_string(),
        builder_type: "openstack".into(),
        build_time: unix_now(),
        artifact_id: image.id.clone(),
        run_id: run_id.to_string(),
        source_image: Some(source_entry(source)),
        skipped: true,
        fingerprint: Some(fp.to_string()),
        ..BuildEntry::default()
    };
    write_manifests(build, &entry, progress)?;
    println!("{}", image.id);
    Ok(())
}
