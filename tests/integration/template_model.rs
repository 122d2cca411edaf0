//! The typed model `forge build` consumes: the shipped nightly template, loaded and inspected.

use std::path::PathBuf;
use std::time::Duration;

use forge::template::{
    self, DiskFormat, LoadOptions, PostProcessor, Provisioner, ShellProvisioner, Source,
    SourceImage, SourceKind, Visibility,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn nightly_template_loads_into_typed_values() {
    let path = root().join("templates/nightly.pkr.hcl");
    let opts = LoadOptions {
        vars: vec!["flavor=m1.large".into()],
        ..Default::default()
    };
    let t = template::load(&path, &opts).unwrap_or_else(|d| panic!("{d}"));

    assert_eq!(t.sources.len(), 1);
    let Source::OpenStack(s) = &t.sources[0] else {
        panic!("expected an openstack source")
    };
    assert_eq!(s.name, "debian-nightly");
    assert_eq!(s.auth.cloud_name(), Some("devstack"));
    assert_eq!(s.flavor, "m1.large", "-var overrides the default");
    assert_eq!(s.networks, ["private"]);
    let SourceImage::Filter(f) = &s.source_image else {
        panic!("expected a filter, got {:?}", s.source_image)
    };
    assert_eq!(f.name.as_deref(), Some("debian-12-genericcloud-amd64"));
    assert_eq!(f.tags, ["debian", "bookworm"]);
    assert_eq!(f.visibility, Some(Visibility::Public));
    assert!(f.most_recent);
    assert!(s.config_drive);
    assert_eq!(s.ssh.username, "debian");
    assert_eq!(s.ssh.port, 22, "default port");
    assert_eq!(s.timeouts.ssh, Duration::from_secs(300));
    assert_eq!(s.timeouts.boot, Duration::from_secs(600));
    assert_eq!(s.timeouts.image, Duration::from_secs(1800));
    assert_eq!(s.timeouts.build, Duration::from_secs(3600));
    assert!(
        s.image.name.starts_with("debian-12-nightly-"),
        "{}",
        s.image.name
    );
    // formatdate("YYYYMMDD-hhmm", timestamp()) → 13 characters.
    assert_eq!(s.image.name.len(), "debian-12-nightly-".len() + 13);
    assert_eq!(s.image.visibility, Some(Visibility::Private));
    assert_eq!(s.image.tags, ["debian", "bookworm", "nightly"]);
    assert_eq!(s.image.properties["os_distro"], "debian");
    assert_eq!(s.image.min_disk, Some(4));

    assert_eq!(t.builds.len(), 1);
    let b = &t.builds[0];
    assert_eq!(b.name.as_deref(), Some("debian-nightly"));
    assert_eq!(b.sources.len(), 1);
    assert_eq!(b.sources[0].kind, SourceKind::OpenStack);
    assert!(t.source(&b.sources[0]).is_some());
    assert_eq!(b.provisioners.len(), 3);
    assert_eq!(
        b.provisioners[0],
        Provisioner::Shell(ShellProvisioner::Inline(vec!["sudo apt-get update".into()]))
    );
    let Provisioner::Validators(v) = &b.provisioners[1] else {
        panic!("expected validators")
    };
    // Relative to the template's directory.
    assert_eq!(v.spec, root().join("templates/specs/debian/image.yaml"));
    assert!(!v.test_only);
    assert_eq!(v.arguments["timezone"].value, "Etc/UTC");
    let Provisioner::Validators(check) = &b.provisioners[2] else {
        panic!("expected validators")
    };
    assert!(check.test_only);
    let PostProcessor::Manifest { output } = &b.post_processors[0];
    assert!(output.starts_with(root().join("templates")));
}

#[test]
fn image_file_source_is_modelled() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pack.pkr.hcl");
    // The input files must exist (validate checks them).
    std::fs::create_dir(dir.path().join("images")).unwrap();
    std::fs::write(dir.path().join("images/base.raw"), "").unwrap();
    std::fs::write(dir.path().join("q.qcow2"), "").unwrap();
    std::fs::write(
        &p,
        r#"source "image-file" "base" {
  path   = "images/base.raw"
  format = "raw"
  image_name = "base"
}
source "image-file" "q" {
  path = "q.qcow2"
  image_name = "q"
}
source "image-file" "bad" {
  format = "vmdk"
  image_name = "bad"
}
build {
  sources = [source.image-file.base, source.image-file.q]
}
"#,
    )
    .unwrap();
    let d = template::load(&p, &LoadOptions::default()).unwrap_err();
    let lines: Vec<String> = d
        .iter()
        .map(|x| x.to_string().lines().next().unwrap().to_string())
        .collect();
    let f = p.display();
    assert_eq!(
        lines,
        [
            format!("{f}:10:1: error: missing required attribute `path` in source \"image-file\" \"bad\""),
            format!("{f}:11:12: error: `format` must be one of qcow2, raw, found \"vmdk\""),
        ]
    );
    let text = std::fs::read_to_string(&p).unwrap();
    let start = text.find("source \"image-file\" \"bad\"").unwrap();
    let end = text.find("build {").unwrap();
    std::fs::write(&p, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let t = template::load(&p, &LoadOptions::default()).unwrap_or_else(|d| panic!("{d}"));
    let [Source::ImageFile(a), Source::ImageFile(b)] = t.sources.as_slice() else {
        panic!("{:?}", t.sources)
    };
    assert_eq!(a.path, dir.path().join("images/base.raw"));
    assert_eq!(a.format, DiskFormat::Raw);
    assert_eq!(b.format, DiskFormat::Qcow2, "qcow2 by default");
}
