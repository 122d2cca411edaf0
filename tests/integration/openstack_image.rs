//! Glance client and the source-image step against the real test cloud (tests/cloud/up.sh).

use crate::cloud;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use forge::openstack::image::{
    ImageClient, ImageQuery, ImageStatus, ImageUpdate, MemberStatus, NewImage, Visibility,
};
use forge::pipeline::{Progress, Step, StepContext};
use forge::steps::source_image::{
    resolve, SourceImageFilter, SourceImageInput, SourceImageStep, SourceSelector,
};
use forge::steps::BuildState;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

fn filter_input(f: SourceImageFilter) -> SourceImageInput {
    SourceImageInput {
        source_image_filter: Some(f),
        ..Default::default()
    }
}

fn new_image(name: &str, tags: &[&str], props: &[(&str, &str)]) -> NewImage {
    let mut n = NewImage::named(name);
    n.tags = tags.iter().map(|t| t.to_string()).collect();
    n.properties = props
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    n
}

#[tokio::test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn filter_by_tags_and_name_and_property_is_one_request() {
    if !cloud::available(false) {
        return;
    }
    let admin = ImageClient::new(cloud::session(cloud::ADMIN).await);
    let tag = cloud::unique("filter");
    cloud::with_tag_cleanup(&admin, &tag, async {
        let data = cloud::data_file(4096, 1);
        // A hostile name: query encoding must keep `&tag=` and quotes inside the value.
        let name = format!("{tag} base & 'quoted' \"x\" $(id) `id`&tag=other");
        let want = cloud::active_image(
            &admin,
            &new_image(&name, &[&tag, "base"], &[("os_distro", "debian")]),
            data.path(),
        )
        .await;
        // Decoys, each missing one criterion.
        for (n, tags, props) in [
            (
                name.as_str(),
                vec![tag.as_str()],
                vec![("os_distro", "debian")],
            ),
            (
                name.as_str(),
                vec![tag.as_str(), "base"],
                vec![("os_distro", "ubuntu")],
            ),
            (
                "other-name",
                vec![tag.as_str(), "base"],
                vec![("os_distro", "debian")],
            ),
        ] {
            cloud::active_image(&admin, &new_image(n, &tags, &props), data.path()).await;
        }
        // Same everything but not active (no data): excluded by status=active.
        admin
            .create(&new_image(
                &name,
                &[&tag, "base"],
                &[("os_distro", "debian")],
            ))
            .await
            .unwrap();

        let input = filter_input(SourceImageFilter {
            name: Some(name.clone()),
            tags: vec![tag.clone(), "base".into()],
            properties: BTreeMap::from([("os_distro".into(), "debian".into())]),
            ..Default::default()
        });
        let selector = input.validate().unwrap();
        let before = admin.session().request_count();
        let got = resolve(&admin, &selector).await.unwrap();
        let requests = admin.session().request_count() - before;
        eprintln!("figure: requests for an unambiguous source_image_filter query: {requests}");
        assert_eq!(got.image.id, want.id);
        assert_eq!(requests, 1, "an unambiguous filter must cost one request");

        // The step itself: prints and records the image.
        let mut step = SourceImageStep::new(admin.clone(), input);
        let mut state = BuildState::default();
        let cx = StepContext {
            cancel: CancellationToken::new(),
            progress: Progress::hidden(),
            build_succeeded: false,
        };
        step.run(&mut state, &cx).await.unwrap();
        assert_eq!(state.source_image.unwrap().id, want.id);
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn sixty_images_are_paged_with_our_own_marker_links() {
    if !cloud::available(false) {
        return;
    }
    let admin = ImageClient::new(cloud::session(cloud::ADMIN).await);
    let tag = cloud::unique("paging");
    cloud::with_tag_cleanup(&admin, &tag, async {
        let created: BTreeSet<String> = futures::stream::iter(0..60)
            .map(|i| {
                let admin = admin.clone();
                let tag = tag.clone();
                async move {
                    admin
                        .create(&new_image(&format!("{tag}-{i}"), &[&tag, "paging"], &[]))
                        .await
                        .unwrap()
                        .id
                }
            })
            .buffer_unordered(6)
            .collect()
            .await;
        assert_eq!(created.len(), 60);
        // Two tags: Glance's own `next` link would drop the second `tag=` and list more.
        let query = ImageQuery {
            tags: vec![tag.clone(), "paging".into()],
            sort: Some("created_at:desc,id:asc".into()),
            ..Default::default()
        };
        let before = admin.session().request_count();
        let listed = admin.list(&query, Some(7)).await.unwrap();
        let requests = admin.session().request_count() - before;
        let ids: BTreeSet<String> = listed.iter().map(|i| i.id.clone()).collect();
        assert_eq!(listed.len(), 60, "no image listed twice");
        assert_eq!(ids, created);
        eprintln!("figure: 60 images, page size 7: {requests} requests");
        assert_eq!(requests, 9, "ceil(60/7) pages");
        // Sorted newest first across page boundaries.
        assert!(listed
            .windows(2)
            .all(|w| w[0].created_at >= w[1].created_at));
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn most_recent_picks_the_newest_and_ambiguity_lists_candidates() {
    if !cloud::available(false) {
        return;
    }
    let admin = ImageClient::new(cloud::session(cloud::ADMIN).await);
    let tag = cloud::unique("recent");
    cloud::with_tag_cleanup(&admin, &tag, async {
        let data = cloud::data_file(1024, 2);
        let mut made = Vec::new();
        for i in 0..3 {
            if i > 0 {
                // created_at has one-second resolution on MySQL-backed clouds.
                tokio::time::sleep(Duration::from_millis(1100)).await;
            }
            let img = cloud::active_image(
                &admin,
                &new_image(&format!("{tag}-v{i}"), &[&tag], &[]),
                data.path(),
            )
            .await;
            made.push(img);
        }
        let filter = SourceImageFilter {
            tags: vec![tag.clone()],
            most_recent: true,
            ..Default::default()
        };
        let before = admin.session().request_count();
        let got = resolve(&admin, &filter_input(filter.clone()).validate().unwrap())
            .await
            .unwrap();
        assert_eq!(admin.session().request_count() - before, 1);
        assert_eq!(got.image.id, made[2].id, "newest of three");
        assert!(got.tie.is_none());

        let ambiguous = SourceImageFilter {
            most_recent: false,
            ..filter
        };
        let err = resolve(&admin, &filter_input(ambiguous).validate().unwrap())
            .await
            .unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("3 active images match"), "{msg}");
        assert!(msg.contains("most_recent"), "{msg}");
        for img in &made {
            assert!(msg.contains(&img.id), "candidate {} missing: {msg}", img.id);
            assert!(msg.contains(img.name.as_deref().unwrap()), "{msg}");
        }

        // source_image_name: exact and ambiguous.
        let by_name = SourceImageInput {
            source_image_name: Some(format!("{tag}-v1")),
            ..Default::default()
        };
        let got = resolve(&admin, &by_name.validate().unwrap()).await.unwrap();
        assert_eq!(got.image.id, made[1].id);
        cloud::active_image(
            &admin,
            &new_image(&format!("{tag}-v1"), &[&tag], &[]),
            data.path(),
        )
        .await;
        let err = resolve(&admin, &by_name.validate().unwrap())
            .await
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("2 active images match"),
            "{err:#}"
        );

        // No match shows the query; a bad id is clear.
        let none = filter_input(SourceImageFilter {
            tags: vec![tag.clone()],
            name: Some("no-such-name".into()),
            ..Default::default()
        });
        let err = format!(
            "{:#}",
            resolve(&admin, &none.validate().unwrap())
                .await
                .unwrap_err()
        );
        assert!(err.contains("no active image matches"), "{err}");
        assert!(
            err.contains("name=no-such-name") && err.contains(&format!("tag={tag}")),
            "{err}"
        );
        let err = resolve(
            &admin,
            &SourceSelector::Id("00000000-0000-0000-0000-000000000000".into()),
        )
        .await
        .unwrap_err();
        assert!(format!("{err:#}").contains("no such image"), "{err:#}");
        // A queued image cannot be a source.
        let queued = admin
            .create(&new_image(&format!("{tag}-q"), &[&tag], &[]))
            .await
            .unwrap();
        let err = resolve(&admin, &SourceSelector::Id(queued.id.clone()))
            .await
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("'queued', expected 'active'"),
            "{err:#}"
        );
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn shared_image_is_seen_by_the_other_project_only_after_accepting() {
    if !cloud::available(false) {
        return;
    }
    let admin = ImageClient::new(cloud::session(cloud::ADMIN).await);
    let demo_session = cloud::session(cloud::DEMO).await;
    let demo_project = demo_session.project_id().await.unwrap().unwrap();
    let demo = ImageClient::new(demo_session);
    let tag = cloud::unique("share");
    cloud::with_tag_cleanup(&admin, &tag, async {
        let data = cloud::data_file(1024, 3);
        let mut n = new_image(&format!("{tag}-shared"), &[&tag], &[]);
        n.visibility = Some(Visibility::Shared);
        let img = cloud::active_image(&admin, &n, data.path()).await;
        admin.add_member(&img.id, &demo_project).await.unwrap();

        let input = filter_input(SourceImageFilter {
            tags: vec![tag.clone()],
            ..Default::default()
        });
        let selector = input.validate().unwrap();
        let err = resolve(&demo, &selector).await.unwrap_err();
        assert!(
            format!("{err:#}").contains("no active image matches"),
            "{err:#}"
        );
        // Pending is visible when asked for explicitly.
        let pending = ImageQuery {
            tags: vec![tag.clone()],
            member_status: Some(MemberStatus::Pending),
            ..Default::default()
        };
        assert_eq!(demo.list(&pending, None).await.unwrap().len(), 1);

        demo.set_member_status(&img.id, &demo_project, MemberStatus::Accepted)
            .await
            .unwrap();
        let got = resolve(&demo, &selector).await.unwrap();
        assert_eq!(got.image.id, img.id);
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn update_patches_properties_tags_visibility_min_disk_and_delete_is_idempotent() {
    if !cloud::available(false) {
        return;
    }
    let admin = ImageClient::new(cloud::session(cloud::ADMIN).await);
    let tag = cloud::unique("update");
    cloud::with_tag_cleanup(&admin, &tag, async {
        let img = admin
            .create(&new_image(
                &format!("{tag}-u"),
                &[&tag],
                &[("keep", "1"), ("old", "x")],
            ))
            .await
            .unwrap();
        let hostile = "v with spaces 'q' \"dq\" $(touch /tmp/pwn) `id`\nline2";
        let update = ImageUpdate {
            set_properties: BTreeMap::from([
                ("keep".into(), "2".into()),
                ("new_prop".into(), hostile.into()),
            ]),
            remove_properties: vec!["old".into()],
            add_tags: vec!["published".into()],
            visibility: Some(Visibility::Private),
            min_disk: Some(3),
            ..Default::default()
        };
        let before = admin.session().request_count();
        let updated = admin.update(&img, &update).await.unwrap();
        assert_eq!(admin.session().request_count() - before, 1, "one PATCH");
        assert_eq!(updated.property("keep"), Some("2"));
        assert_eq!(updated.property("new_prop"), Some(hostile));
        assert!(!updated.properties.contains_key("old"));
        assert!(updated.tags.contains(&tag) && updated.tags.contains(&"published".to_string()));
        assert_eq!(updated.visibility, "private");
        assert_eq!(updated.min_disk, 3);
        // Glance filters on the new property value verbatim.
        let q = ImageQuery {
            tags: vec![tag.clone()],
            properties: BTreeMap::from([("new_prop".into(), hostile.into())]),
            status: Some(ImageStatus::Queued),
            ..Default::default()
        };
        assert_eq!(admin.list(&q, None).await.unwrap().len(), 1);

        assert!(admin.delete(&img.id).await.unwrap());
        assert!(
            !admin.delete(&img.id).await.unwrap(),
            "second delete: already gone"
        );
        let err = admin.get(&img.id).await.unwrap_err();
        assert!(err.is_not_found(), "{err}");
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
async fn a_name_that_looks_like_glance_operator_syntax_matches_exactly() {
    if !cloud::available(false) {
        return;
    }
    let admin = ImageClient::new(cloud::session(cloud::ADMIN).await);
    let tag = cloud::unique("inop");
    cloud::with_tag_cleanup(&admin, &tag, async {
        let tricky = format!("in:{tag}-a,{tag}-b");
        let want = admin
            .create(&new_image(&tricky, &[&tag], &[]))
            .await
            .unwrap();
        // Decoys that `name=in:a,b` unquoted would match instead.
        for n in [format!("{tag}-a"), format!("{tag}-b")] {
            admin.create(&new_image(&n, &[&tag], &[])).await.unwrap();
        }
        let q = ImageQuery {
            name: Some(tricky),
            tags: vec![tag.clone()],
            ..Default::default()
        };
        let found: Vec<String> = admin
            .list(&q, None)
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(found, vec![want.id]);
    })
    .await;
}
