//! The `retention {}` block of a template's `build {}`: decoded into `Build::retention`, and
//! every bad or hostile value reported at its line and column (`forge validate` included).
//! Offline: no cloud needed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use forge::template::{self, CheckLevel, LoadOptions, Retention};

/// A valid template whose build block ends with `retention` (the text of the build's extra
/// lines). The retention lines start on line 9.
fn write(dir: &Path, retention: &str) -> PathBuf {
    let p = dir.join("r.pkr.hcl");
    std::fs::write(
        &p,
        format!(
            r#"source "openstack" "s" {{
  source_image_name = "debian"
  flavor            = "m1.small"
  ssh_username      = "debian"
  image_name        = "x"
}}
build {{
  sources = [source.openstack.s]
{retention}
}}
"#
        ),
    )
    .unwrap();
    p
}

fn retention_of(text: &str) -> Option<Retention> {
    let dir = tempfile::tempdir().unwrap();
    let t = template::load(&write(dir.path(), text), &LoadOptions::default())
        .unwrap_or_else(|d| panic!("should load:\n{d}"));
    t.builds[0].retention.clone()
}

/// The (line, column, message) of every problem `forge validate` would report.
fn problems(text: &str) -> Vec<(usize, usize, String)> {
    let dir = tempfile::tempdir().unwrap();
    let d = template::check(
        &write(dir.path(), text),
        &LoadOptions::default(),
        CheckLevel::Full,
    );
    d.iter()
        .map(|d| {
            (
                d.line.unwrap_or(0),
                d.column.unwrap_or(0),
                d.message.clone(),
            )
        })
        .collect()
}

/// Exactly one problem, at `line:col`, whose message contains every one of `words`.
fn assert_one(text: &str, line: usize, col: usize, words: &[&str]) {
    let p = problems(text);
    assert_eq!(p.len(), 1, "expected one problem for {text:?}, got {p:#?}");
    let (l, c, msg) = &p[0];
    assert_eq!((*l, *c), (line, col), "position of {msg:?} for {text:?}");
    for w in words {
        assert!(msg.contains(w), "{msg:?} does not mention {w:?}");
    }
}

#[test]
fn a_full_block_decodes_with_days_in_the_age() {
    let r = retention_of(
        "  retention {\n    keep = 2\n    hide_older = true\n    delete_unused_after = \"30d\"\n  }",
    )
    .expect("retention decoded");
    assert_eq!(
        r,
        Retention {
            keep: 2,
            hide_older: true,
            delete_unused_after: Some(Duration::from_secs(30 * 86400)),
        }
    );
}

#[test]
fn only_keep_is_required_and_the_rest_defaults_to_changing_nothing() {
    let r = retention_of("  retention {\n    keep = 5\n  }").expect("retention decoded");
    assert_eq!(
        r,
        Retention {
            keep: 5,
            hide_older: false,
            delete_unused_after: None,
        }
    );
    assert_eq!(retention_of(""), None);
}

#[test]
fn values_come_from_variables_too() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v.pkr.hcl");
    let body = std::fs::read_to_string(write(
        dir.path(),
        "  retention {\n    keep = var.keep\n    delete_unused_after = var.age\n  }",
    ))
    .unwrap();
    std::fs::write(
        &p,
        format!(
            "variable \"keep\" {{\n  default = 3\n}}\nvariable \"age\" {{\n  default = \"12h\"\n}}\n{body}"
        ),
    )
    .unwrap();
    let opts = LoadOptions {
        vars: vec!["age=1d12h".into()],
        ..Default::default()
    };
    let t = template::load(&p, &opts).unwrap_or_else(|d| panic!("should load:\n{d}"));
    let r = t.builds[0].retention.clone().unwrap();
    assert_eq!(r.keep, 3);
    assert_eq!(r.delete_unused_after, Some(Duration::from_secs(36 * 3600)));
}

#[test]
fn bad_keep_values_are_positioned() {
    // `keep = ` is on line 10; its value starts at column 12.
    for (value, words) in [
        (
            "0",
            &["`keep` must be a whole number from 1 to 1000", "number"][..],
        ),
        ("-2", &["from 1 to 1000"][..]),
        ("2.5", &["from 1 to 1000"][..]),
        ("1001", &["from 1 to 1000"][..]),
        ("\"many\"", &["from 1 to 1000", "\"many\""][..]),
        ("true", &["from 1 to 1000", "bool"][..]),
        ("[2]", &["from 1 to 1000"][..]),
    ] {
        assert_one(
            &format!("  retention {{\n    keep = {value}\n  }}"),
            10,
            12,
            words,
        );
    }
}

#[test]
fn bad_ages_are_positioned_and_say_what_is_expected() {
    // `delete_unused_after = ` is on line 11; its value starts at column 27.
    for (value, words) in [
        ("\"30 days\"", &["unknown unit \" days\"", "\"30d\""][..]),
        (
            "\"-1d\"",
            &["invalid duration \"-1d\"", "units d, h, m, s, ms"][..],
        ),
        ("\"30\"", &["missing unit"][..]),
        ("\"1w\"", &["unknown unit \"w\""][..]),
        ("\"\"", &["empty duration"][..]),
        ("30", &["must be an age string"][..]),
        (&format!("\"{}d\"", "9".repeat(400)), &["too long"][..]),
        (
            "\"$(rm -rf /)`id`\\n\"",
            &["invalid duration \"$(rm -rf /)`id`\n\""][..],
        ),
    ] {
        assert_one(
            &format!("  retention {{\n    keep = 2\n    delete_unused_after = {value}\n  }}"),
            11,
            27,
            words,
        );
    }
}

#[test]
fn structural_mistakes_are_positioned() {
    assert_one(
        "  retention {\n    hide_older = true\n  }",
        9,
        3,
        &["missing required attribute `keep` in retention"],
    );
    assert_one(
        "  retention {\n    keep = 2\n    hide_older = \"yes\"\n  }",
        11,
        18,
        &["`hide_older` must be a bool"],
    );
    assert_one(
        "  retention {\n    keep = 2\n    hide_oldre = true\n  }",
        11,
        5,
        &[
            "unknown attribute `hide_oldre`",
            "did you mean `hide_older`",
        ],
    );
    assert_one(
        "  retention {\n    keep = 2\n    keep = 3\n  }",
        11,
        5,
        &["redefined attribute"],
    );
    assert_one(
        "  retention \"x\" {\n    keep = 2\n  }",
        9,
        3,
        &["a retention block takes no labels"],
    );
    assert_one(
        "  retention {\n    keep = 2\n  }\n  retention {\n    keep = 3\n  }",
        12,
        3,
        &["one `retention` block (first on line 9)"],
    );
    assert_one("  retention {\n    keep = var.nope\n  }", 10, 12, &["nope"]);
}

#[test]
fn forge_validate_accepts_the_block_and_reports_bad_values_with_file_line_column() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "  retention {\n    keep = 2\n    hide_older = true\n    delete_unused_after = \"30d\"\n  }",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_forge"))
        .arg("validate")
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = write(
        dir.path(),
        "  retention {\n    keep = 0\n    delete_unused_after = \"soon\"\n  }",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_forge"))
        .arg("validate")
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let file = bad.display().to_string();
    assert!(
        stderr.contains(&format!("{file}:10:12: error: `keep`")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{file}:11:27: error: `delete_unused_after`")),
        "{stderr}"
    );
}
