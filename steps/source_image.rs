//! Step 1, source image: resolve `source_image` (an id), `source_image_name` (an exact name)
//! or `source_image_filter` (Packer's semantics) to one active Glance image, print it and put
//! it in the state bag. Nothing to clean up.
//!
//! The filter asks Glance for `status=active&member_status=accepted` plus the user's filters,
//! newest first (`sort=created_at:desc,id:asc`) with `limit=2`: one request answers both "which
//! image" and "was it the only one". More than one match is an error listing the candidates
//! unless `most_recent = true`. `created_at` has one-second resolution on MySQL-backed clouds,
//! so the newest can tie: the tie is broken by the lowest id (`id:asc` is Glance's second sort
//! key) and reported.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context};
use async_trait::async_trait;

use crate::openstack::image::{
    Image, ImageClient, ImageQuery, ImageStatus, MemberStatus, Visibility,
};
use crate::pipeline::{Step, StepContext};
use crate::steps::BuildState;

/// How the template picks the source image: exactly one of the three is set.
#[derive(Debug, Clone, Default)]
pub struct SourceImageInput {
    /// An image id.
    pub source_image: Option<String>,
    /// An exact image name; more than one active image with it is an error.
    pub source_image_name: Option<String>,
    pub source_image_filter: Option<SourceImageFilter>,
}

/// Packer's `source_image_filter`: `filters { name, owner, tags, visibility, properties }` and
/// `most_recent`.
#[derive(Debug, Clone, Default)]
pub struct SourceImageFilter {
    pub name: Option<String>,
    pub owner: Option<String>,
    /// All of these tags.
    pub tags: Vec<String>,
    /// `public`, `private`, `shared` or `community`; anything else is an error.
    pub visibility: Option<String>,
    pub properties: BTreeMap<String, String>,
    pub most_recent: bool,
}

/// A checked [`SourceImageInput`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSelector {
    Id(String),
    Name(String),
    Filter {
        query: ImageQuery,
        most_recent: bool,
    },
}

/// Newest first, ties by lowest id: the order that makes "most recent" deterministic.
const NEWEST_FIRST: &str = "created_at:desc,id:asc";

impl SourceImageInput {
    /// Check the input without the network (`forge validate`): exactly one way to pick the
    /// image, and enum values Glance accepts.
    pub fn validate(&self) -> anyhow::Result<SourceSelector> {
        let given = [
            self.source_image.is_some(),
            self.source_image_name.is_some(),
            self.source_image_filter.is_some(),
        ]
        .iter()
        .filter(|g| **g)
        .count();
        if given != 1 {
            bail!(
                "set exactly one of source_image, source_image_name, source_image_filter \
                 ({given} given)"
            );
        }
        if let Some(id) = &self.source_image {
            if id.trim().is_empty() {
                bail!("source_image is empty");
            }
            return Ok(SourceSelector::Id(id.clone()));
        }
        if let Some(name) = &self.source_image_name {
            if name.is_empty() {
                bail!("source_image_name is empty");
            }
            return Ok(SourceSelector::Name(name.clone()));
        }
        let f = self
            .source_image_filter
            .as_ref()
            .ok_or_else(|| anyhow!("source_image_filter missing"))?;
        let visibility = f
            .visibility
            .as_deref()
            .map(str::parse::<Visibility>)
            .transpose()
            .context("source_image_filter.filters.visibility")?;
        let query = ImageQuery {
            name: f.name.clone(),
            owner: f.owner.clone(),
            tags: f.tags.clone(),
            visibility,
            member_status: Some(MemberStatus::Accepted),
            status: Some(ImageStatus::Active),
            properties: f.properties.clone(),
            sort: Some(NEWEST_FIRST.into()),
        };
        query
            .params()
            .context("source_image_filter.filters.properties")?;
        Ok(SourceSelector::Filter {
            query,
            most_recent: f.most_recent,
        })
    }
}

/// The image found and, when `most_recent` had to break a tie, what was decided.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub image: Image,
    pub tie: Option<String>,
}

/// Resolve `selector` against Glance: one request when the answer is unambiguous.
pub async fn resolve(images: &ImageClient, selector: &SourceSelector) -> anyhow::Result<Resolved> {
    match selector {
        SourceSelector::Id(id) => {
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
        SourceSelector::Name(name) => {
            let query = ImageQuery {
                name: Some(name.clone()),
                status: Some(ImageStatus::Active),
                sort: Some(NEWEST_FIRST.into()),
                ..Default::default()
            };
            let what = format!("source_image_name '{name}'");
            pick(images, &query, false, &what).await
        }
        SourceSelector::Filter { query, most_recent } => {
            pick(images, query, *most_recent, "source_image_filter").await
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

/// The step: resolves the input and records the image in [`BuildState::source_image`].
pub struct SourceImageStep {
    images: ImageClient,
    input: SourceImageInput,
}

impl SourceImageStep {
    pub fn new(images: ImageClient, input: SourceImageInput) -> SourceImageStep {
        SourceImageStep { images, input }
    }
}

#[async_trait]
impl Step<BuildState> for SourceImageStep {
    fn name(&self) -> &str {
        "source image"
    }

    async fn run(&mut self, state: &mut BuildState, cx: &StepContext) -> anyhow::Result<()> {
        let selector = self.input.validate()?;
        let resolved = resolve(&self.images, &selector).await?;
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

    #[test]
    fn exactly_one_selector_and_valid_enums() {
        assert!(SourceImageInput::default().validate().is_err());
        let both = SourceImageInput {
            source_image: Some("x".into()),
            source_image_name: Some("y".into()),
            ..Default::default()
        };
        assert!(format!("{:#}", both.validate().unwrap_err()).contains("exactly one"));
        let bad = SourceImageInput {
            source_image_filter: Some(SourceImageFilter {
                visibility: Some("everyone".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let e = format!("{:#}", bad.validate().unwrap_err());
        assert!(
            e.contains("visibility") && e.contains("everyone") && e.contains("community"),
            "{e}"
        );
        let ok = SourceImageInput {
            source_image_filter: Some(SourceImageFilter {
                name: Some("n".into()),
                visibility: Some("shared".into()),
                tags: vec!["a".into()],
                most_recent: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        match ok.validate().unwrap() {
            SourceSelector::Filter { query, most_recent } => {
                assert!(most_recent);
                assert_eq!(query.status, Some(ImageStatus::Active));
                assert_eq!(query.member_status, Some(MemberStatus::Accepted));
                assert_eq!(query.visibility, Some(Visibility::Shared));
                assert_eq!(query.sort.as_deref(), Some(NEWEST_FIRST));
            }
            other => panic!("expected a filter, got {other:?}"),
        }
    }
}
