//! Source image: resolve `source_image` (an id), `source_image_name` (an exact name)
//! or `source_image_filter` (Packer's semantics) to one active Glance image, print it and put
//! it in the state bag. Nothing to clean up.
//!
//! The filter asks Glance for `status=active&member_status=accepted` plus the user's filters,
//! newest first (`sort=created_at:desc,id:asc`) with `limit=2`: one request answers both "which
//! image" and "was it the only one". More than one match is an error listing the candidates
//! unless `most_recent = true`. `created_at` has one-second resolution on MySQL-backed clouds,
//! so the newest can tie: the tie is broken by the lowest id (`id:asc` is Glance's second sort
//! key) and reported.

use anyhow::{bail, Context};
use async_trait::async_trait;

use crate::names;
use crate::openstack::image::{Image, ImageClient, ImageQuery, ImageStatus, MemberStatus};
use crate::pipeline::{Step, StepContext};
use crate::steps::BuildState;
use crate::template::{ImageFilter, SourceImage};

/// The Glance query of a `source_image_filter`: the template's filters as they are (one
/// `Visibility` type from template to request), active images this project may use, newest
/// first. Its parameters are computed once, by the request.
pub fn filter_query(f: &ImageFilter) -> ImageQuery {
    ImageQuery {
        name: f.name.clone(),
        owner: f.owner.clone(),
        tags: f.tags.clone(),
        visibility: f.visibility,
        member_status: Some(MemberStatus::Accepted),
        status: Some(ImageStatus::Active),
        properties: f.properties.clone(),
        sort: Some(names::NEWEST_FIRST.into()),
    }
}

/// The image found and, when `most_recent` had to break a tie, what was decided.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub image: Image,
    pub tie: Option<String>,
}

/// Resolve the template's selector against Glance: one request when the answer is unambiguous.
pub async fn resolve(images: &ImageClient, source: &SourceImage) -> anyhow::Result<Resolved> {
    match source {
        SourceImage::Id(id) => {
            if id.trim().is_empty() {
                bail!("source_image is empty");
            }
            let image = match images.get(id).await {
                Ok(i) => i,
                Err(e) if e.is_not_found() => {
                    bail!("source_image '{id}': no such image (or not visible to this project)")
                }
                Err(e) => return Err(e).context(format!("source_image '{id}'")),
            };
            if image.status != "active" {
                bail!(
                    "source_image {}: status is '{}', expected 'active'",
                    image.describe(),
                    image.status
                );
            }
            Ok(Resolved { image, tie: None })
        }
        SourceImage::Name(name) => {
            if name.is_empty() {
                bail!("source_image_name is empty");
            }
            let query = ImageQuery {
                name: Some(name.clone()),
                status: Some(ImageStatus::Active),
                sort: Some(names::NEWEST_FIRST.into()),
                ..Default::default()
            };
            let what = format!("source_image_name '{name}'");
            pick(images, &query, false, &what).await
        }
        SourceImage::Filter(f) => {
            pick(
                images,
                &filter_query(f),
                f.most_recent,
                "source_image_filter",
            )
            .await
        }
    }
}

async fn pick(
    images: &ImageClient,
    query: &ImageQuery,
    most_recent: bool,
    what: &str,
) -> anyhow::Result<Resolved> {
    let page = images
        .list_page(query, Some(2), None)
        .await
        .with_context(|| format!("{what}: {}", query.describe()))?;
    let mut found = page.images.into_iter();
    let (first, second) = (found.next(), found.next());
    match (first, second) {
        (None, _) => bail!(
            "{what}: no active image matches (query: {})",
            query.describe()
        ),
        (Some(image), None) => Ok(Resolved { image, tie: None }),
        (Some(image), Some(next)) if most_recent => {
            let tie = (next.created_at == image.created_at).then(|| {
                format!(
                    "{} and {} (at least) both show created_at {}; picked {}, the first in \
                     Glance's order created_at desc, id asc (a cloud that stores sub-second \
                     times orders by those before the id)",
                    image.id,
                    next.id,
                    image.created_at.to_rfc3339(),
                    image.id
                )
            });
            Ok(Resolved { image, tie })
        }
        (Some(_), Some(_)) => {
            // Ambiguous: only now fetch every candidate, to show them all.
            let all = images
                .list(query, Some(100))
                .await
                .with_context(|| format!("{what}: listing the candidates"))?;
            let mut lines: Vec<String> = all
                .iter()
                .take(20)
                .map(|i| {
                    format!(
                        "  {}  {}  {}",
                        i.id,
                        i.name.as_deref().unwrap_or("<no name>"),
                        i.created_at.to_rfc3339()
                    )
                })
                .collect();
            if all.len() > 20 {
                lines.push(format!("  … and {} more", all.len() - 20));
            }
            let hint = if what == "source_image_filter" {
                "set most_recent = true or narrow the filter"
            } else {
                "use source_image with an id"
            };
            bail!(
                "{what}: {} active images match ({hint}):\n{}",
                all.len(),
                lines.join("\n")
            )
        }
    }
}

/// The step: resolves the template's selector and records the image in
/// [`BuildState::source_image`]. An image already resolved for this run (by the
/// `--skip-unchanged` check) is used as it is: the source is resolved once per run.
pub struct SourceImageStep {
    images: ImageClient,
    source: SourceImage,
    resolved: Option<Resolved>,
}

impl SourceImageStep {
    /// `resolved`: this run's earlier resolution of `source`, if any.
    pub fn new(images: ImageClient, source: SourceImage, resolved: Option<Resolved>) -> Self {
        SourceImageStep {
            images,
            source,
            resolved,
        }
    }
}

#[async_trait]
impl Step<BuildState> for SourceImageStep {
    fn name(&self) -> &str {
        "source image"
    }

    async fn run(&mut self, state: &mut BuildState, cx: &StepContext) -> anyhow::Result<()> {
        let resolved = match self.resolved.take() {
            Some(r) => r,
            None => resolve(&self.images, &self.source).await?,
        };
        if let Some(tie) = &resolved.tie {
            cx.progress.println(&format!("    note: {tie}"));
            tracing::warn!("source image tie: {tie}");
        }
        cx.progress
            .println(&format!("    source image: {}", resolved.image.describe()));
        state.source_image = Some(resolved.image);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openstack::image::Visibility;

    #[test]
    fn the_filter_reaches_the_query_as_it_is() {
        let f = ImageFilter {
            name: Some("n".into()),
            visibility: Some(Visibility::Shared),
            tags: vec!["a".into()],
            most_recent: true,
            ..Default::default()
        };
        let query = filter_query(&f);
        assert_eq!(query.status, Some(ImageStatus::Active));
        assert_eq!(query.member_status, Some(MemberStatus::Accepted));
        assert_eq!(query.visibility, Some(Visibility::Shared));
        assert_eq!(query.tags, ["a"]);
        assert_eq!(query.sort.as_deref(), Some(names::NEWEST_FIRST));
    }
}
