//! Template functions, evaluated through `forge::template::load` on real template files.

use std::path::{Path, PathBuf};

use forge::template::{self, LoadOptions, Template};

fn write(dir: &Path, locals: &str) -> PathBuf {
    let p = dir.join("f.pkr.hcl");
    std::fs::write(
        &p,
        format!(
            r#"locals {{
{locals}
}}
source "openstack" "s" {{
  source_image_name = "debian"
  flavor            = "m1.small"
  ssh_username      = "debian"
  image_name        = "x"
}}
build {{
  sources = [source.openstack.s]
}}
"#
        ),
    )
    .unwrap();
    p
}

fn load(dir: &Path, locals: &str) -> Template {
    let p = write(dir, locals);
    template::load(&p, &LoadOptions::default()).unwrap_or_else(|d| panic!("should load:\n{d}"))
}

fn local<'a>(t: &'a Template, name: &str) -> &'a str {
    t.locals[name]
        .value
        .as_str()
        .unwrap_or_else(|| panic!("local {name} is not a string: {:?}", t.locals[name]))
}

#[test]
fn string_functions() {
    let dir = tempfile::tempdir().unwrap();
    let t = load(
        dir.path(),
        r#"  lo   = lower("Debian-12")
  up   = upper("Debian-12")
  rep  = replace("debian-12-amd64", "-", "_")
  j    = join(",", ["a", "b"], ["c"])
  j1   = join("-", [])
  nest = upper(replace(lower("A.B"), ".", "/"))"#,
    );
    assert_eq!(local(&t, "lo"), "debian-12");
    assert_eq!(local(&t, "up"), "DEBIAN-12");
    assert_eq!(local(&t, "rep"), "debian_12_amd64");
    assert_eq!(local(&t, "j"), "a,b,c");
    assert_eq!(local(&t, "j1"), "");
    assert_eq!(local(&t, "nest"), "A/B");
}

#[test]
fn time_and_uuid_functions() {
    let dir = tempfile::tempdir().unwrap();
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let t = load(
        dir.path(),
        r#"  now   = timestamp()
  fixed = formatdate("YYYY-MM-DD hh:mm:ss ZZZ", "2026-03-07T04:05:09Z")
  day   = formatdate("YYYYMMDD", timestamp())
  a     = uuidv4()
  b     = uuidv4()"#,
    );
    let after = chrono::Utc::now() + chrono::Duration::seconds(1);
    let now = chrono::DateTime::parse_from_rfc3339(local(&t, "now")).expect("RFC 3339");
    assert!(
        now >= before && now <= after,
        "{now} not between {before} and {after}"
    );
    assert_eq!(local(&t, "fixed"), "2026-03-07 04:05:09 UTC");
    assert_eq!(local(&t, "day"), now.format("%Y%m%d").to_string());
    let (a, b) = (local(&t, "a"), local(&t, "b"));
    assert_ne!(a, b);
    for u in [a, b] {
        let id = uuid::Uuid::parse_str(u).expect("a UUID");
        assert_eq!(id.get_version_num(), 4);
    }
}

#[test]
fn env_and_file_functions() {
    let dir = tempfile::tempdir().unwrap();
    // A name no other test uses: tests in this binary run in parallel.
    let var = format!("FORGE_TEST_ENV_FN_{}", std::process::id());
    std::env::set_var(&var, "value with spaces");
    std::fs::create_dir(dir.path().join("files")).unwrap();
    std::fs::write(dir.path().join("files/user-data.yaml"), "#cloud-config\n").unwrap();
    let t = load(
        dir.path(),
        &format!(
            r#"  set   = env("{var}")
  unset = env("{var}_UNSET")
  data  = file("files/user-data.yaml")
  root  = path.root"#
        ),
    );
    std::env::remove_var(&var);
    assert_eq!(local(&t, "set"), "value with spaces");
    assert_eq!(local(&t, "unset"), "");
    // Relative to the template's directory, whatever the cwd.
    assert_eq!(local(&t, "data"), "#cloud-config\n");
    assert_eq!(Path::new(local(&t, "root")), dir.path());
}

#[test]
fn function_errors_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        r#"  a = file("no-such-file")
  b = upper("x", "y")
  c = formatdate("YYYY-MM-DD", "yesterday")
  d = replace("abc", "", "x")
  e = lower(["list"])"#,
    );
    let d = template::load(&p, &LoadOptions::default()).unwrap_err();
    let lines: Vec<String> = d
        .iter()
        .map(|x| x.to_string().lines().next().unwrap().to_string())
        .collect();
    let f = p.display();
    assert_eq!(lines.len(), 5, "{lines:#?}");
    let want = [
        format!("{f}:2:7: error: local `a`: "),
        format!("{f}:3:7: error: local `b`: "),
        format!("{f}:4:7: error: local `c`: "),
        format!("{f}:5:7: error: local `d`: "),
        format!("{f}:6:7: error: local `e`: "),
    ];
    for (l, w) in lines.iter().zip(&want) {
        assert!(l.starts_with(w.as_str()), "want {w}…\n got {l}");
    }
    assert!(
        lines[0].contains("cannot read") && lines[0].contains("no-such-file"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("upper"), "{}", lines[1]);
    assert!(
        lines[2].contains("not an RFC 3339 timestamp"),
        "{}",
        lines[2]
    );
    assert!(lines[3].contains("must not be empty"), "{}", lines[3]);
}
