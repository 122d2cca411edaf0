//! `forge validate` as a user runs it: the real binary on the shipped templates and on broken
//! fixtures, checking exit codes, every located message, and the JSON output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn forge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_forge"))
        .args(args)
        .current_dir(root())
        .env_remove("FORGE_LOG")
        .output()
        .expect("run forge")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every `FILE:LINE:COL: error: MESSAGE` header line of stderr.
fn headers(out: &Output) -> Vec<String> {
    text(&out.stderr)
        .lines()
        .filter(|l| l.contains(": error: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn shipped_templates_are_valid() {
    let mut n = 0;
    for entry in std::fs::read_dir(root().join("templates")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "hcl") {
            let rel = path
                .strip_prefix(root())
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            let out = forge(&["validate", &rel]);
            assert!(
                out.status.success(),
                "{rel} should be valid:\n{}",
                text(&out.stderr)
            );
            assert_eq!(text(&out.stdout).trim(), format!("{rel}: valid"));
            n += 1;
        }
    }
    assert!(
        n >= 2,
        "expected at least the nightly and minimal templates, found {n}"
    );
}

#[test]
fn shipped_templates_validate_from_another_directory() {
    // Relative paths (the spec) resolve against the template's directory, not the cwd.
    let out = Command::new(env!("CARGO_BIN_EXE_forge"))
        .args([
            "validate",
            root().join("templates/nightly.pkr.hcl").to_str().unwrap(),
        ])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn broken_template_reports_every_problem_located_in_one_run() {
    let f = "tests/fixtures/templates/broken.pkr.hcl";
    let out = forge(&["validate", f]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let expected = [
        // missing required: at the block header
        "6:1: error: missing required attribute `flavor` in source \"openstack\" \"bad\"",
        // bad reference, with a suggestion
        "7:23: error: reference to undeclared variable `var.regoin` (did you mean `var.region`?)",
        // both source_image and a filter
        "9:3: error: `source_image_filter` conflicts with `source_image`",
        // bad enum inside the filter
        "12:20: error: `visibility` must be one of public, private, shared, community, found \"secret\"",
        // unknown attribute
        "15:3: error: unknown attribute `flavour` in source \"openstack\" \"bad\" (did you mean `flavor`?)",
        // wrong type
        "17:22: error: `ssh_port` must be a whole number from 1 to 65535, found a string \"twenty-two\"",
        // bad enum
        "19:22: error: `image_visibility` must be one of public, private, shared, community, found \"everyone\"",
        // bad source reference
        "23:36: error: reference to undeclared source `source.openstack.missing`",
        // a spec file that does not exist
        "26:12: error: spec file tests/fixtures/templates/no/such/spec.yaml does not exist",
    ];
    let got = headers(&out);
    assert_eq!(got.len(), expected.len(), "got:\n{}", got.join("\n"));
    for (g, e) in got.iter().zip(expected) {
        assert!(
            g.starts_with(&format!("{f}:{e}")),
            "expected {f}:{e}\n     got {g}"
        );
    }
    assert!(text(&out.stderr).contains("forge validate: 9 problems in"));
}

#[test]
fn diagnostics_show_the_line_with_a_caret() {
    let out = forge(&["validate", "tests/fixtures/templates/broken.pkr.hcl"]);
    let err = text(&out.stderr);
    let want = "\
tests/fixtures/templates/broken.pkr.hcl:15:3: error: unknown attribute `flavour` in source \"openstack\" \"bad\" (did you mean `flavor`?)
   |
15 |   flavour          = \"m1.small\"
   |   ^^^^^^^";
    assert!(
        err.contains(want),
        "missing snippet:\n{want}\n--- in ---\n{err}"
    );
}

#[test]
fn unterminated_block_points_at_its_opening_brace() {
    let out = forge(&["validate", "tests/fixtures/templates/unterminated.pkr.hcl"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        headers(&out),
        ["tests/fixtures/templates/unterminated.pkr.hcl:1:24: error: syntax error: this `{` is never closed (expected `}` before the end of the file)"]
    );
}

#[test]
fn syntax_error_mid_file_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.pkr.hcl");
    std::fs::write(&p, "build {\n  sources = [source.openstack.x\n}\n").unwrap();
    let out = forge(&["validate", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let h = headers(&out);
    assert_eq!(h.len(), 1, "{h:?}");
    assert!(
        h[0].starts_with(&format!("{}:3:1: error: syntax error", p.display())),
        "{h:?}"
    );
}

#[test]
fn syntax_only_skips_semantic_checks() {
    let out = forge(&[
        "validate",
        "--syntax-only",
        "tests/fixtures/templates/broken.pkr.hcl",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("syntax is valid"));
    let out = forge(&[
        "validate",
        "--syntax-only",
        "tests/fixtures/templates/unterminated.pkr.hcl",
    ]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn json_lists_every_diagnostic() {
    let out = forge(&[
        "validate",
        "--json",
        "tests/fixtures/templates/broken.pkr.hcl",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"], 9);
    let first = &v["diagnostics"][0];
    assert_eq!(first["file"], "tests/fixtures/templates/broken.pkr.hcl");
    assert_eq!(first["line"], 6);
    assert_eq!(first["column"], 1);
    assert_eq!(first["severity"], "error");
    assert!(first["message"].as_str().unwrap().contains("`flavor`"));

    let ok = forge(&["validate", "--json", "templates/minimal.pkr.hcl"]);
    assert!(ok.status.success());
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"valid": true, "errors": 0, "diagnostics": []})
    );
}

#[test]
fn usage_and_input_errors_exit_2() {
    // Unknown flag (clap).
    assert_eq!(
        forge(&["validate", "--nope", "x.hcl"]).status.code(),
        Some(2)
    );
    // Missing template file.
    let out = forge(&["validate", "does-not-exist.pkr.hcl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("does-not-exist.pkr.hcl: error: cannot read template"));
    // Malformed -var.
    let out = forge(&["validate", "templates/nightly.pkr.hcl", "-var", "novalue"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("`novalue` is not NAME=VALUE"));
    // Missing var file.
    let out = forge(&[
        "validate",
        "templates/nightly.pkr.hcl",
        "-var-file",
        "nope.hcl",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn packer_style_single_dash_var_flags_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let vf = dir.path().join("v.pkrvars.hcl");
    std::fs::write(&vf, "flavor = \"m1.large\"\n").unwrap();
    let out = forge(&[
        "validate",
        "templates/nightly.pkr.hcl",
        "-var",
        "cloud=other",
        "-var-file",
        vf.to_str().unwrap(),
        "--var=motd=hi",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A -var that fails the variable's validation rule is reported at the rule, once: not again
    // where the value is used as an enum.
    let out = forge(&[
        "validate",
        "templates/nightly.pkr.hcl",
        "-var",
        "visibility=everyone",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let h = headers(&out);
    assert_eq!(h.len(), 1, "{h:?}");
    assert!(h[0].starts_with("templates/nightly.pkr.hcl:35:21: error: invalid value \"everyone\" for variable `visibility` (from -var): The visibility must be one of"), "{h:?}");
}

/// One template per problem class, each checked for its exact position: a problem must be found
/// on its own too, not only next to others.
#[test]
fn each_problem_class_alone() {
    let dir = tempfile::tempdir().unwrap();
    let base = "source \"openstack\" \"s\" {\n  source_image_name = \"debian\"\n  flavor = \"m1.small\"\n  ssh_username = \"debian\"\n  image_name = \"x\"\n";
    let tail = "}\nbuild {\n  sources = [source.openstack.s]\n}\n";
    let cases: [(&str, &str, &str); 7] = [
        (
            "  config_drive = \"maybe\"\n",
            "6:18",
            "`config_drive` must be a bool",
        ),
        (
            "  networks = \"net\"\n",
            "6:14",
            "`networks` must be a list of strings, found a string",
        ),
        (
            "  ssh_timeout = \"5 minutes\"\n",
            "6:17",
            "`ssh_timeout`: unknown unit",
        ),
        (
            "  availability_zone = upper(var.nope)\n",
            "6:29",
            "reference to undeclared variable `var.nope`",
        ),
        (
            "  region = lowr(\"X\")\n",
            "6:12",
            "unknown function `lowr` (did you mean `lower`?)",
        ),
        (
            "  source_image = \"abc\"\n",
            "6:3",
            "`source_image` conflicts with `source_image_name`",
        ),
        (
            "  user_data = \"a\"\n  user_data_file = \"b\"\n",
            "7:3",
            "`user_data_file` conflicts with `user_data`",
        ),
    ];
    for (i, (extra, at, msg)) in cases.iter().enumerate() {
        let p = dir.path().join(format!("case{i}.pkr.hcl"));
        std::fs::write(&p, format!("{base}{extra}{tail}")).unwrap();
        let out = forge(&["validate", p.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "case {i}");
        let h = headers(&out);
        let want = format!("{}:{at}: error: {msg}", p.display());
        assert!(
            h.iter().any(|l| l.starts_with(&want)),
            "case {i}: want {want}\ngot {h:#?}"
        );
    }
}

#[test]
fn provisioner_files_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.pkr.hcl");
    std::fs::write(dir.path().join("present.sh"), "#!/bin/sh\ntrue\n").unwrap();
    std::fs::write(dir.path().join("disk.qcow2"), "").unwrap();
    std::fs::write(
        &p,
        r#"source "image-file" "disk" {
  path = "disk.qcow2"
  image_name = "disk"
}
build {
  sources = ["source.image-file.disk"]
  provisioner "shell" {
    script = "present.sh"
  }
  provisioner "shell" {
    script = "absent.sh"
  }
  provisioner "shell" {}
  provisioner "ansible" {}
}
"#,
    )
    .unwrap();
    let out = forge(&["validate", p.to_str().unwrap()]);
    let h = headers(&out);
    let f = p.display().to_string();
    assert_eq!(h.len(), 3, "{h:#?}");
    assert!(
        h[0].starts_with(&format!(
            "{f}:11:14: error: script {} does not exist",
            Path::new(dir.path()).join("absent.sh").display()
        )),
        "{h:#?}"
    );
    assert!(
        h[1].starts_with(&format!(
            "{f}:13:3: error: provisioner \"shell\" needs `inline`"
        )),
        "{h:#?}"
    );
    assert!(
        h[2].starts_with(&format!(
            "{f}:14:15: error: unknown provisioner type \"ansible\""
        )),
        "{h:#?}"
    );
}

#[test]
fn forge_var_environment_variables_are_read() {
    let run = |value: &str| {
        Command::new(env!("CARGO_BIN_EXE_forge"))
            .args(["validate", "templates/nightly.pkr.hcl"])
            .current_dir(root())
            .env("FORGE_VAR_visibility", value)
            .output()
            .unwrap()
    };
    assert!(run("community").status.success());
    let out = run("everyone");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(
            "invalid value \"everyone\" for variable `visibility` (from environment variable FORGE_VAR_visibility)"
        ),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_broken_spec_is_reported_at_its_own_location_with_the_template_problems() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.pkr.hcl");
    std::fs::write(
        dir.path().join("image.yaml"),
        "validators:\n  - package: wget\n  - bogus: x\n  - script: missing/script\n",
    )
    .unwrap();
    std::fs::write(
        &p,
        r#"source "image-file" "disk" {
  path = "disk.qcow2"
}
build {
  sources = ["source.image-file.disk"]
  provisioner "validators" {
    spec = "image.yaml"
  }
  provisioner "shell" {
    script = "absent.sh"
  }
}
"#,
    )
    .unwrap();
    let out = forge(&["validate", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let h = headers(&out);
    let spec = dir.path().join("image.yaml").display().to_string();
    assert!(
        h.iter()
            .any(|l| l.starts_with(&format!("{spec}:3:5: error: ")) && l.contains("bogus")),
        "{h:#?}"
    );
    assert!(
        h.iter()
            .any(|l| l.starts_with(&format!("{spec}:4:")) && l.contains("missing/script")),
        "{h:#?}"
    );
    assert!(
        h.iter()
            .any(|l| l.contains("script") && l.contains("absent.sh")),
        "the template's own problem is reported in the same run: {h:#?}"
    );
}
