//! Retention and promotion against the real test cloud (Keystone, Glance, Nova with the fake
//! virt driver): `retention {}` applied after real builds, `forge images prune|promote|list`,
//! and the servers check on Nova.
//!
//! Every test names its build uniquely (the template file is `<unique tag>.pkr.hcl`, so
//! `forge_template` differs), because retention acts on every image of a build and other tests
//! build `t.pkr.hcl` concurrently. Images older than a limit are never fabricated: the only
//! age used is Glance's real `created_at`, with limits chosen between real values.

use crate::build;
use crate::cloud;
use crate::fixture::Fixture;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use build::{forge_build, Knobs};
use chrono::Utc;
use forge::openstack::compute::{ComputeClient, NewServer};
use forge::openstack::image::{Image, ImageClient, ImageQuery, NewImage, Visibility};
use forge::openstack::wait::WaitOptions;
use forge::openstack::Session;
use forge::pipeline::Progress;
use forge::retention::{self, Action, BuildId, Retention, ServerScope, Usage, UsageChecker};
use tokio_util::sync::CancellationToken;

/// `cloud::with_compute_cleanup`, plus the images tagged `tag` that are hidden (Glance leaves
/// those out of the listing that helper deletes from), so a test leaves nothing behind even
/// when it fails half-way.
async fn with_cleanup<F: std::future::Future>(
    session: &Arc<Session>,
    tag: &str,
    body: F,
) -> F::Output {
    use futures::FutureExt;
    let result = cloud::with_compute_cleanup(
        session,
        tag,
        std::panic::AssertUnwindSafe(body).catch_unwind(),
    )
    .await;
    let images = ImageClient::new(session.clone());
    let query = ImageQuery {
        tags: vec![tag.to_string()],
        ..Default::default()
    };
    for image in images
        .list_with_hidden(&query, Some(100))
        .await
        .unwrap_or_default()
    {
        let _ = images.delete(&image.id).await;
    }
    match result {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// `forge images ARGS...` against the test cloud: (exit code, stdout, stderr).
fn forge_images(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_forge"))
        .arg("images")
        .args(args)
        .env("OS_CLIENT_CONFIG_FILE", cloud::clouds_yaml())
        .env_remove("OS_CLOUD")
        .env_remove("FORGE_LOG")
        .output()
        .expect("run forge images");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The build's images as (id, hidden, sorted tags), newest first: a snapshot to compare.
async fn state(images: &ImageClient, id: &BuildId) -> Vec<(String, bool, Vec<String>)> {
    retention::list(images, id)
        .await
        .expect("list the build's images")
        .into_iter()
        .map(|i| {
            let mut tags = i.tags.clone();
            tags.sort();
            (i.id.clone(), i.hidden(), tags)
        })
        .collect()
}

async fn gone(images: &ImageClient, id: &str) -> bool {
    match images.get(id).await {
        Err(e) if e.is_not_found() => true,
        Ok(i) => i.status == "deleted" || i.status == "pending_delete",
        Err(e) => panic!("get image {id}: {e}"),
    }
}

async fn build_id(session: &Arc<Session>, template: &str, label: &str) -> BuildId {
    BuildId {
        template: template.to_string(),
        build: label.to_string(),
        owner: session
            .project_id()
            .await
            .expect("project id")
            .expect("scoped token"),
    }
}

/// A delete limit between the real ages of two images (`older` created before `younger`):
/// 1 s younger than `older` is now, in milliseconds, so `older` stays past it whatever comes
/// later and `younger` stays under it for (gap − 1 s). Panics if the gap is too small to be safe.
fn limit_between(older: &Image, younger: &Image) -> String {
    let gap = younger.created_at - older.created_at;
    assert!(
        gap >= chrono::TimeDelta::seconds(3),
        "images {} and {} were created {gap} apart; the test needs ≥ 3 s to place a limit",
        older.id,
        younger.id
    );
    let age = Utc::now() - older.created_at;
    format!(
        "{}ms",
        (age - chrono::TimeDelta::seconds(1)).num_milliseconds()
    )
}

/// Five real builds of a template with `retention { keep = 2, hide_older = true }`: after each,
/// the newest two are visible and the rest hidden. Then `forge images prune` with a delete limit
/// between the real `created_at` of the 2nd and 3rd builds: the dry run changes nothing, `--yes`
/// deletes exactly the two oldest. Last, a sixth build whose retention fails (a protected image)
/// exits 3 and keeps its new image.
#[test]
#[ignore = "needs the test cloud and the SSH test hosts: tests/cloud/up.sh, tests/hosts/setup.sh"]
fn keep_two_over_five_builds_hides_then_prune_deletes_by_real_age() {
    let f = Fixture::new("ret5").repo().keypair().base_image(5).start();
    let (host, session, images, tag) = (f.host(), &f.session, &f.images, &f.tag);
    let keypair = f.keypair();
    f.rt.block_on(async {
        with_cleanup(session, tag, async {
            let dir = tempfile::tempdir().unwrap();
            let written = Knobs::good(host, tag, keypair).write(dir.path());
            let text = std::fs::read_to_string(&written).unwrap().replace(
                "  post-processor \"manifest\"",
                "  retention {\n    keep                = 2\n    hide_older          = true\n    \
                 delete_unused_after = \"30d\"\n  }\n  post-processor \"manifest\"",
            );
            assert!(text.contains("retention {"), "template layout changed");
            let file = format!("{tag}.pkr.hcl");
            let template = dir.path().join(&file);
            std::fs::write(&template, text).unwrap();
            std::fs::remove_file(&written).unwrap();
            let id = build_id(session, &file, "e2e.openstack.e2e").await;

            let mut built: Vec<String> = Vec::new();
            for n in 1..=5 {
                let (code, stdout, stderr) = forge_build(&template, &[]);
                assert_eq!(code, 0, "build {n} failed:\n{stderr}");
                built.push(stdout.trim().to_string());
                assert!(
                    stderr.contains("==> retention of build e2e.openstack.e2e"),
                    "build {n} did not apply retention:\n{stderr}"
                );
                // Newest first: the last two built are visible, every earlier one hidden.
                let want: Vec<(String, bool)> = built
                    .iter()
                    .rev()
                    .enumerate()
                    .map(|(i, id)| (id.clone(), i >= 2))
                    .collect();
                let got: Vec<(String, bool)> = state(images, &id)
                    .await
                    .into_iter()
                    .map(|(i, h, _)| (i, h))
                    .collect();
                assert_eq!(got, want, "after build {n}:\n{stderr}");
                if n >= 3 {
                    let hidden_now = &built[n - 3];
                    assert!(
                        stderr.contains(&format!("hidden: {hidden_now}")),
                        "build {n} did not report hiding {hidden_now}:\n{stderr}"
                    );
                }
            }

            let all = retention::list(images, &id).await.unwrap();
            let by_id: BTreeMap<&str, &Image> = all.iter().map(|i| (i.id.as_str(), i)).collect();
            let before = state(images, &id).await;

            // Dry run (no --yes): the plan names both deletes; nothing changes.
            let limit = limit_between(by_id[built[1].as_str()], by_id[built[2].as_str()]);
            let t = template.to_str().unwrap();
            let (code, stdout, stderr) =
                forge_images(&["prune", t, "--delete-unused-after", &limit]);
            assert_eq!(code, 0, "dry run failed:\n{stdout}\n{stderr}");
            for old in &built[..2] {
                assert!(
                    stdout.contains(&format!("would delete  {old}")),
                    "dry run does not plan deleting {old}:\n{stdout}"
                );
            }
            assert!(
                stdout.contains(&format!("keep    {}", built[2])),
                "{stdout}"
            );
            assert!(stdout.contains("dry run: nothing changed"), "{stdout}");
            assert_eq!(
                state(images, &id).await,
                before,
                "the dry run changed something"
            );

            // --yes: the two oldest are deleted, the third stays hidden, the newest two stay.
            let limit = limit_between(by_id[built[1].as_str()], by_id[built[2].as_str()]);
            let (code, stdout, stderr) =
                forge_images(&["prune", t, "--delete-unused-after", &limit, "--yes"]);
            assert_eq!(code, 0, "prune failed:\n{stdout}\n{stderr}");
            for old in &built[..2] {
                assert!(stdout.contains(&format!("deleted: {old}")), "{stdout}");
                assert!(gone(images, old).await, "image {old} still exists");
            }
            let after: Vec<(String, bool)> = state(images, &id)
                .await
                .into_iter()
                .map(|(i, h, _)| (i, h))
                .collect();
            assert_eq!(
                after,
                vec![
                    (built[4].clone(), false),
                    (built[3].clone(), false),
                    (built[2].clone(), true)
                ]
            );

            // A retention that fails after a good build: Glance refuses to delete a protected
            // image. The build exits 3 and its new image stays.
            std::fs::write(
                &template,
                std::fs::read_to_string(&template)
                    .unwrap()
                    .replace("\"30d\"", "\"0s\""),
            )
            .unwrap();
            set_protected(session, &built[2], true).await;
            let (code, stdout, stderr) = forge_build(&template, &[]);
            set_protected(session, &built[2], false).await;
            assert_eq!(code, 3, "expected exit 3 (retention failed):\n{stderr}");
            let new_image = stdout.trim();
            assert!(
                stderr.contains("retention: 1 action(s) failed (the new image is kept)"),
                "{stderr}"
            );
            assert!(
                stderr.contains(&format!("FAILED to delete {}", built[2])),
                "{stderr}"
            );
            assert_eq!(
                images.get(new_image).await.expect("new image").status,
                "active"
            );
            assert!(
                gone(images, &built[3]).await,
                "the unprotected old image survived"
            );
        })
        .await;
    });
}

/// Set Glance's `protected` flag (a protected image cannot be deleted).
async fn set_protected(session: &Arc<Session>, id: &str, protected: bool) {
    let url = session
        .url("image", &["v2", "images", id])
        .await
        .expect("image url");
    let body = serde_json::json!([{"op": "replace", "path": "/protected", "value": protected}]);
    session
        .send(reqwest::Method::PATCH, url, |r| {
            r.header(
                "Content-Type",
                "application/openstack-images-v2.1-json-patch",
            )
            .body(body.to_string())
        })
        .await
        .expect("set protected");
}

/// A minimal template whose one build is `rel.openstack.s`, on the admin cloud; its file name
/// is `<tag>.pkr.hcl` (the build's `forge_template`). Nothing in it is built.
fn release_template(dir: &Path, tag: &str, retention: &str) -> PathBuf {
    let p = dir.join(format!("{tag}.pkr.hcl"));
    std::fs::write(
        &p,
        format!(
            r#"source "openstack" "s" {{
  cloud             = "{admin}"
  source_image_name = "unused"
  flavor            = "m1.tiny"
  ssh_username      = "root"
  image_name        = "unused"
}}
build {{
  name    = "rel"
  sources = ["source.openstack.s"]
{retention}
}}
"#,
            admin = cloud::ADMIN
        ),
    )
    .unwrap();
    p
}

/// An image published as build `label` of `template` would be (the identity properties forge
/// sets), made directly in Glance; `active` uploads data. Tagged `tag` for cleanup.
async fn build_image(
    images: &ImageClient,
    tag: &str,
    template: &str,
    label: &str,
    n: &str,
    active: bool,
) -> Image {
    let mut new = NewImage::named(&format!("{tag}-{n}"));
    new.tags = vec![tag.to_string()];
    new.visibility = Some(Visibility::Private);
    new.properties = BTreeMap::from([
        ("forge_template".to_string(), template.to_string()),
        ("forge_build".to_string(), label.to_string()),
    ]);
    if active {
        let data = cloud::data_file(1 << 16, 3);
        cloud::active_image(images, &new, data.path()).await
    } else {
        images.create(&new).await.expect("create image record")
    }
}

/// Three images of one build made a second apart (distinct `created_at`), oldest first.
async fn three_images(images: &ImageClient, tag: &str, file: &str) -> Vec<Image> {
    let mut out = Vec::new();
    for n in 1..=3 {
        if n > 1 {
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        out.push(build_image(images, tag, file, "rel.openstack.s", &n.to_string(), true).await);
    }
    out
}

fn has_tag(images: &[(String, bool, Vec<String>)], id: &str, tag: &str) -> bool {
    images
        .iter()
        .any(|(i, _, tags)| i == id && tags.iter().any(|t| t == tag))
}

/// `promote` tags the image (unhiding it), moves the tag off the build's other images, refuses
/// foreign, inactive and missing images and hostile channel names, and a channel-tagged image
/// survives a prune that would otherwise delete it.
#[test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
fn promote_moves_the_channel_tag_and_protects_the_image() {
    let f = Fixture::new("promote").start();
    let (session, images, tag) = (&f.session, &f.images, &f.tag);
    f.rt.block_on(async {
        with_cleanup(session, tag, async {
            let dir = tempfile::tempdir().unwrap();
            let file = format!("{tag}.pkr.hcl");
            let template = release_template(dir.path(), tag, "");
            let t = template.to_str().unwrap();
            let id = build_id(session, &file, "rel.openstack.s").await;
            let imgs = three_images(images, tag, &file).await;
            let (one, two, three) = (&imgs[0].id, &imgs[1].id, &imgs[2].id);
            let foreign = build_image(images, tag, &file, "other.openstack.s", "f", true).await;
            let queued = build_image(images, tag, &file, "rel.openstack.s", "q", false).await;
            images.set_hidden(one, true).await.expect("hide image one");

            let (code, stdout, stderr) =
                forge_images(&["promote", t, "--image", one, "--channel", "stable"]);
            assert_eq!(code, 0, "{stdout}\n{stderr}");
            assert!(
                stdout.contains(&format!("tagged channel:stable {one}")),
                "{stdout}"
            );
            assert!(stdout.contains(&format!("unhid {one}")), "{stdout}");
            let s = state(images, &id).await;
            assert!(has_tag(&s, one, "channel:stable"));
            assert!(
                s.iter().any(|(i, h, _)| i == one && !h),
                "promoted image still hidden"
            );

            // A dry run changes nothing.
            let before = state(images, &id).await;
            let (code, stdout, _) = forge_images(&[
                "promote",
                t,
                "--image",
                three,
                "--channel",
                "stable",
                "--dry-run",
            ]);
            assert_eq!(code, 0);
            assert!(
                stdout.contains(&format!("would untag  channel:stable {one}")),
                "{stdout}"
            );
            assert_eq!(state(images, &id).await, before);

            // The tag moves: on three, off one.
            let (code, stdout, stderr) =
                forge_images(&["promote", t, "--image", three, "--channel", "stable"]);
            assert_eq!(code, 0, "{stdout}\n{stderr}");
            assert!(
                stdout.contains(&format!("untagged channel:stable {one}")),
                "{stdout}"
            );
            let s = state(images, &id).await;
            assert!(has_tag(&s, three, "channel:stable"));
            assert!(!has_tag(&s, one, "channel:stable"));

            // Refusals change nothing.
            let before = state(images, &id).await;
            let (code, _, stderr) =
                forge_images(&["promote", t, "--image", &foreign.id, "--channel", "stable"]);
            assert_eq!(code, 1, "{stderr}");
            assert!(
                stderr.contains("refused") && stderr.contains("forge_build is 'other.openstack.s'"),
                "{stderr}"
            );
            let (code, _, stderr) =
                forge_images(&["promote", t, "--image", &queued.id, "--channel", "stable"]);
            assert_eq!(code, 1, "{stderr}");
            assert!(stderr.contains("is 'queued'"), "{stderr}");
            let (code, _, stderr) = forge_images(&[
                "promote",
                t,
                "--image",
                "00000000-0000-0000-0000-000000000000",
                "--channel",
                "stable",
            ]);
            assert_eq!(code, 1, "{stderr}");
            assert!(stderr.contains("no image"), "{stderr}");
            for hostile in ["$(touch /tmp/pwned)", "a b", "`id`", "x\ny", "a/b", ""] {
                let (code, _, stderr) =
                    forge_images(&["promote", t, "--image", two, "--channel", hostile]);
                assert_eq!(code, 2, "channel {hostile:?} accepted:\n{stderr}");
                assert!(stderr.contains("invalid channel name"), "{stderr}");
            }
            assert_eq!(state(images, &id).await, before);
            assert!(!images
                .get(&foreign.id)
                .await
                .unwrap()
                .tags
                .iter()
                .any(|t| t.starts_with("channel:")));

            // `list` shows the channel.
            let (code, stdout, _) = forge_images(&["list", t]);
            assert_eq!(code, 0);
            let line = stdout
                .lines()
                .find(|l| l.contains(three.as_str()))
                .expect("listed");
            assert!(line.contains("[channel:stable]"), "{stdout}");

            // Channel images survive: keep 1 + delete anything unused keeps three (newest, and
            // stable) and one (channel lts), deletes two, skips the queued image.
            let (code, _, stderr) =
                forge_images(&["promote", t, "--image", one, "--channel", "lts"]);
            assert_eq!(code, 0, "{stderr}");
            let (code, stdout, stderr) = forge_images(&[
                "prune",
                t,
                "--keep",
                "1",
                "--hide-older",
                "--delete-unused-after",
                "0s",
                "--yes",
            ]);
            assert_eq!(code, 0, "{stdout}\n{stderr}");
            assert!(
                stdout.contains(&format!("keep    {one}")) && stdout.contains("holds channel:lts"),
                "{stdout}"
            );
            assert!(
                stdout.contains(&format!("skip    {}", queued.id)),
                "{stdout}"
            );
            assert!(
                gone(images, two).await,
                "unprotected image two survived:\n{stdout}"
            );
            for kept in [one, three, &queued.id, &foreign.id] {
                assert!(!gone(images, kept).await, "{kept} was deleted:\n{stdout}");
            }
        })
        .await;
    });
}

/// An image a server was booted from is never deleted: not by the plan, not by `apply` when the
/// server appears after planning, not by `forge images prune --yes`; once the server is gone,
/// prune deletes it.
#[test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
fn prune_refuses_an_image_in_use_by_a_server() {
    let f = Fixture::new("inuse").start();
    let (session, images, tag) = (&f.session, &f.images, &f.tag);
    let compute = &f.compute;
    f.rt.block_on(async {
        with_cleanup(session, tag, async {
            let dir = tempfile::tempdir().unwrap();
            let file = format!("{tag}.pkr.hcl");
            let template = release_template(
                dir.path(),
                tag,
                "  retention {\n    keep = 1\n    delete_unused_after = \"0s\"\n  }",
            );
            let t = template.to_str().unwrap();
            let id = build_id(session, &file, "rel.openstack.s").await;
            let imgs = three_images(images, tag, &file).await;
            let old = &imgs[0];
            let policy = Retention {
                keep: 1,
                hide_older: false,
                delete_unused_after: Some(Duration::ZERO),
            };

            // Planned while unused: both older images are to be deleted.
            let mut checker = UsageChecker::new(compute.clone());
            let plan = retention::make_plan(images, &mut checker, &id, &policy, Utc::now())
                .await
                .expect("plan");
            assert_eq!(plan.scope, Some(ServerScope::AllProjects));
            assert_eq!(plan.count(Action::Delete), 2, "{:#?}", plan.entries);

            // A server boots from the oldest before the plan is applied.
            let server = compute
                .create_server(&NewServer::new(&format!("{tag}-vm"), &old.id, "1"))
                .await
                .expect("boot a server from the old image");
            compute
                .wait_active(
                    &server,
                    WaitOptions::with_timeout(Duration::from_secs(60)),
                    &CancellationToken::new(),
                    &Progress::hidden(),
                )
                .await
                .expect("server active");
            let mut outcomes = Vec::new();
            let failed = retention::apply(images, &mut checker, &plan, &mut |e, r| {
                outcomes.push((e.image.id.clone(), r))
            })
            .await;
            assert_eq!(failed, 1, "{outcomes:?}");
            let refused = outcomes
                .iter()
                .find(|(i, _)| i == &old.id)
                .expect("old image acted on");
            let msg = refused
                .1
                .clone()
                .expect_err("deleting an in-use image must fail");
            assert!(
                msg.contains(&format!("now in use by server {server}")),
                "{msg}"
            );
            assert!(!gone(images, &old.id).await, "in-use image was deleted");
            assert!(gone(images, &imgs[1].id).await, "unused image survived");

            // The CLI's plan sees the server and keeps the image (hidden with --hide-older).
            let (code, stdout, stderr) = forge_images(&["prune", t, "--hide-older", "--yes"]);
            assert_eq!(code, 0, "{stdout}\n{stderr}");
            assert!(
                stdout.contains(&format!("in use by server {server}: not deleted")),
                "{stdout}"
            );
            assert!(stdout.contains(&format!("hidden: {}", old.id)), "{stdout}");
            let now = images.get(&old.id).await.expect("in-use image exists");
            assert!(now.hidden());

            // Server gone: the image goes too.
            compute
                .delete_server_and_wait(
                    &server,
                    WaitOptions::with_timeout(Duration::from_secs(60)),
                    &CancellationToken::new(),
                    &Progress::hidden(),
                )
                .await
                .expect("delete server");
            let (code, stdout, stderr) = forge_images(&["prune", t, "--yes"]);
            assert_eq!(code, 0, "{stdout}\n{stderr}");
            assert!(stdout.contains(&format!("deleted: {}", old.id)), "{stdout}");
            assert!(gone(images, &old.id).await);
            assert_eq!(
                state(images, &id)
                    .await
                    .into_iter()
                    .map(|s| s.0)
                    .collect::<Vec<_>>(),
                vec![imgs[2].id.clone()]
            );
        })
        .await;
    });
}

/// A project member cannot list other projects' servers: the checker falls back to its own
/// project and will not vouch for an image other projects can see.
#[test]
#[ignore = "needs the test cloud: tests/cloud/up.sh"]
fn a_non_admin_checks_its_own_project_and_never_vouches_for_shared_images() {
    let f = Fixture::new("nonadmin").cloud(cloud::DEMO).start();
    let (session, images, tag) = (&f.session, &f.images, &f.tag);
    f.rt.block_on(async {
        with_cleanup(session, tag, async {
            let private = build_image(images, tag, "x.pkr.hcl", "b", "p", true).await;
            let mut new = NewImage::named(&format!("{tag}-shared"));
            new.tags = vec![tag.clone()];
            new.visibility = Some(Visibility::Shared);
            let shared = images.create(&new).await.expect("create shared image");

            let mut checker = UsageChecker::new(ComputeClient::new(session.clone()));
            assert_eq!(checker.usage(&private).await.expect("usage"), Usage::Unused);
            assert_eq!(checker.scope(), Some(ServerScope::OwnProject));
            match checker.usage(&shared).await.expect("usage") {
                Usage::Unknown(why) => assert!(why.contains("shared"), "{why}"),
                other => panic!("a shared image was vouched for: {other:?}"),
            }
        })
        .await;
    });
}

/// Mistakes in what to prune are usage errors (exit 2), found before any cloud is asked: a
/// build with no retention settings and no --keep, an unknown --build, a bad --keep or age.
#[test]
fn prune_usage_errors_exit_2_before_touching_the_cloud() {
    let dir = tempfile::tempdir().unwrap();
    let template = release_template(dir.path(), "usage", "");
    let t = template.to_str().unwrap();
    // An unreachable cloud: a usage error must be reported before any login is tried.
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_forge"))
            .arg("images")
            .args(args)
            .env("OS_CLIENT_CONFIG_FILE", dir.path().join("no-clouds.yaml"))
            .env_remove("OS_CLOUD")
            .output()
            .expect("run forge images");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&["prune", t]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("has no `retention {}` block; pass --keep N"),
        "{stderr}"
    );
    let (code, stderr) = run(&["prune", t, "--keep", "2", "--build", "nope"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("no build 'nope'") && stderr.contains("rel.openstack.s"),
        "{stderr}"
    );
    let (code, stderr) = run(&["prune", t, "--keep", "0"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--keep"), "{stderr}");
    let (code, stderr) = run(&["prune", t, "--keep", "1", "--delete-unused-after", "$(id)"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("invalid duration"), "{stderr}");
    let (code, stderr) = run(&["prune", t, "--keep", "1", "--hide-older=maybe"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--hide-older"), "{stderr}");
}
