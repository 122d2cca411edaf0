//! The spec loader: the 13 real Sahara specs load, their shape is what the YAML says, scripts
//! resolve over ordered resource roots, and every kind of malformed input gives one clear,
//! located error instead of a panic. `forge spec args` is exercised through the real binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use forge::spec::{self, ScriptSource, SpecError, ValidatorKind};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sahara")
}

fn corpus_specs() -> Vec<PathBuf> {
    let mut specs: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    specs.sort();
    specs
}

/// Every script path a corpus spec names: all live under `centos/`, `ubuntu/` or `common/`
/// (SOURCES.md). Found by scanning the text, independently of the loader under test.
fn script_paths(yaml: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in yaml.split(|c: char| c.is_whitespace() || c == ':' || c == '[' || c == ']') {
        if ["centos/", "ubuntu/", "common/"]
            .iter()
            .any(|p| word.starts_with(p))
        {
            out.push(word.to_string());
        }
    }
    out
}

/// A temp resource root holding a non-empty stand-in for every script `yaml` names.
fn standins_for(yaml: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for p in script_paths(yaml) {
        let file = root.path().join(&p);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, format!("#!/bin/bash\n# stand-in for {p}\n")).unwrap();
    }
    root
}

/// Load corpus spec `name` (a file-name prefix) with stand-in scripts in an extra root.
fn load_corpus(prefix: &str) -> spec::Spec {
    let path = corpus_specs()
        .into_iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no corpus spec {prefix}"));
    let yaml = std::fs::read_to_string(&path).unwrap();
    let root = standins_for(&yaml);
    spec::load(&path, &[root.path().to_path_buf()]).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn all_thirteen_corpus_specs_load() {
    let specs = corpus_specs();
    assert_eq!(specs.len(), 13, "the corpus has 13 specs");
    for path in specs {
        let yaml = std::fs::read_to_string(&path).unwrap();
        let root = standins_for(&yaml);
        let spec = spec::load(&path, &[root.path().to_path_buf()])
            .unwrap_or_else(|e| panic!("{} failed to load:\n{e}", path.display()));
        assert!(!spec.validators().is_empty(), "{}", path.display());
        assert!(!spec.arguments().is_empty(), "{}", path.display());
    }
}

fn counts(spec: &spec::Spec) -> BTreeMap<&'static str, usize> {
    spec.count_by_type()
}

#[test]
fn cdh_5_13_shape() {
    let spec = load_corpus("sahara-plugin-cdh__sahara_plugin_cdh__plugins__cdh__v5_13_0");
    // Counted by hand from the YAML.
    let expected: BTreeMap<&str, usize> = [
        ("package", 22),
        ("script", 10),
        ("os_case", 4),
        ("argument_case", 1),
        ("any", 1),
        ("all", 3),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts(&spec), expected);
    assert_eq!(spec.validators().len(), 22);

    let names: Vec<&str> = spec.arguments().iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "java_distro",
            "plugin_version",
            "hdfs_lib_dir",
            "unlimited_security_location"
        ]
    );
    let java = &spec.arguments()[0];
    assert_eq!(java.default.as_deref(), Some("cloudera-jdk"));
    assert_eq!(java.choices, ["openjdk", "oracle-java", "cloudera-jdk"]);
    assert!(!java.required && !java.hidden);
    let plugin = &spec.arguments()[1];
    assert_eq!(plugin.default.as_deref(), Some("5.13.0"));
    assert!(plugin.hidden);
    assert_eq!(plugin.choices, ["5.13.0"]);

    // The argument_case → openjdk case holds an `any` of two `all`s, each one package.
    let ValidatorKind::ArgumentCase { argument, cases } = &spec.validators()[1].kind else {
        panic!("second validator should be an argument_case")
    };
    assert_eq!(argument, "java_distro");
    let keys: Vec<&str> = cases.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["openjdk", "cloudera-jdk"]);
    let ValidatorKind::Any(alternatives) = &cases[0].validators[0].kind else {
        panic!("openjdk case should start with any")
    };
    assert_eq!(alternatives.len(), 2);
    // Locations point at the validator's key in the file.
    assert_eq!(spec.validators()[1].location.line, 36);
    assert_eq!(spec.validators()[1].location.column, 5);
}

#[test]
fn mapr_shape() {
    let spec = load_corpus("sahara-plugin-mapr");
    let expected: BTreeMap<&str, usize> = [
        ("package", 3),
        ("script", 15),
        ("copy_script", 11),
        ("os_case", 4),
        ("argument_case", 2),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts(&spec), expected);
    assert_eq!(spec.validators().len(), 6);

    let args: Vec<(&str, Option<&str>, bool)> = spec
        .arguments()
        .iter()
        .map(|a| (a.name.as_str(), a.default.as_deref(), a.hidden))
        .collect();
    assert_eq!(
        args,
        [
            ("java_distro", Some("openjdk"), false),
            ("plugin_version", Some("5.2.0"), true),
            // The YAML integer 1 keeps its spelling.
            ("scala_version", Some("1"), true),
            ("hdfs_lib_dir", Some("/usr/lib/hadoop-mapreduce"), false),
        ]
    );

    // The first package validator lists seven packages in one unit.
    let ValidatorKind::Package(pkgs) = &spec.validators()[1].kind else {
        panic!("second validator should be a package list")
    };
    let names: Vec<&str> = pkgs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["mtools", "rpcbind", "sdparm", "syslinux", "unzip", "wget", "zip"]
    );

    // copy_script destinations are /tmp/<basename>.
    let mut dests = Vec::new();
    fn walk(vs: &[spec::Validator], dests: &mut Vec<String>) {
        for v in vs {
            if let ValidatorKind::CopyScript(c) = &v.kind {
                dests.push(c.destination.clone());
            }
            for child in v.kind.children() {
                walk(child, dests);
            }
        }
    }
    walk(spec.validators(), &mut dests);
    assert_eq!(dests[0], "/tmp/package_utils.sh");
    assert!(dests.contains(&"/tmp/spec_5.2.0_ubuntu.json".to_string()));
}

#[test]
fn ambari_inline_script_and_env_vars() {
    let spec = load_corpus("sahara-plugin-ambari");
    let ValidatorKind::OsCase(cases) = &spec.validators()[0].kind else {
        panic!("first validator should be an os_case")
    };
    assert_eq!(cases[0].key, "ubuntu");
    let ValidatorKind::Script(s) = &cases[0].validators[0].kind else {
        panic!("ubuntu case should hold a script")
    };
    assert_eq!(s.name, "apt_update");
    assert_eq!(s.source, ScriptSource::Inline);
    assert_eq!(s.content, b"apt-get update");
    // argument_case keys that look like versions stay strings.
    let ValidatorKind::ArgumentCase { cases, .. } = &spec.validators()[2].kind else {
        panic!("third validator should be an argument_case")
    };
    assert_eq!(cases[0].key, "2.6.2.0");
}

// ---- script resolution over roots ----

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn script_of(spec: &spec::Spec) -> &spec::Script {
    match &spec.validators()[0].kind {
        ValidatorKind::Script(s) => s,
        other => panic!("expected a script, got {other:?}"),
    }
}

#[test]
fn spec_directory_wins_over_extra_roots_and_empty_files_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let extra1 = tempfile::tempdir().unwrap();
    let extra2 = tempfile::tempdir().unwrap();
    let spec_path = dir.path().join("image.yaml");
    write(
        &spec_path,
        "validators:\n  - script: common/a\n  - script: common/b\n  - script: common/c\n",
    );
    write(&dir.path().join("common/a"), "echo spec-dir\n");
    write(&extra1.path().join("common/a"), "echo extra1\n");
    // b: empty in the spec dir, a directory in extra1, a file in extra2.
    write(&dir.path().join("common/b"), "");
    std::fs::create_dir_all(extra1.path().join("common/b")).unwrap();
    write(&extra2.path().join("common/b"), "echo extra2\n");
    // c: only in extra1.
    write(&extra1.path().join("common/c"), "echo c\n");

    let roots = [extra1.path().to_path_buf(), extra2.path().to_path_buf()];
    let spec = spec::load(&spec_path, &roots).unwrap();
    let contents: Vec<(String, ScriptSource)> = spec
        .validators()
        .iter()
        .map(|v| match &v.kind {
            ValidatorKind::Script(s) => (
                String::from_utf8(s.content.clone()).unwrap(),
                s.source.clone(),
            ),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(contents[0].0, "echo spec-dir\n");
    assert_eq!(
        contents[0].1,
        ScriptSource::File(dir.path().join("common/a"))
    );
    assert_eq!(contents[1].0, "echo extra2\n");
    assert_eq!(contents[2].0, "echo c\n");
}

#[test]
fn script_bytes_are_read_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let spec_path = dir.path().join("s.yaml");
    write(&spec_path, "validators:\n  - script: bin/x\n");
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    let bytes = b"#!/bin/sh\n\xff\xfe not utf-8 \r\n".to_vec();
    std::fs::write(dir.path().join("bin/x"), &bytes).unwrap();
    let spec = spec::load(&spec_path, &[]).unwrap();
    assert_eq!(script_of(&spec).content, bytes);
}

// ---- malformed input: one clear located error each ----

/// Load `yaml` from a temp dir that holds the scripts `scripts` (non-empty stand-ins).
fn load_err(yaml: &str, scripts: &[&str]) -> (SpecError, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.yaml");
    std::fs::write(&path, yaml).unwrap();
    for s in scripts {
        write(&dir.path().join(s), "echo stand-in\n");
    }
    match spec::load(&path, &[]) {
        Ok(_) => panic!("expected a spec error for:\n{yaml}"),
        Err(e) => (e, path),
    }
}

/// Assert exactly one problem at `line:col` whose message contains `needle`, and that Display is
/// the one line `FILE:LINE:COL: error: MESSAGE`.
#[track_caller]
fn assert_one(yaml: &str, scripts: &[&str], line: usize, col: usize, needle: &str) {
    let (err, path) = load_err(yaml, scripts);
    assert_eq!(
        err.problems().len(),
        1,
        "expected one problem for:\n{yaml}\ngot:\n{err}"
    );
    let shown = err.to_string();
    let prefix = format!("{}:{line}:{col}: error: ", path.display());
    assert!(
        shown.starts_with(&prefix),
        "expected prefix {prefix:?}, got {shown:?}"
    );
    assert!(shown.contains(needle), "expected {needle:?} in {shown:?}");
    assert!(!shown.contains('\n'), "one line: {shown:?}");
}

#[test]
fn bad_yaml_syntax() {
    assert_one(
        "validators:\n  - package: [a, b\n",
        &[],
        3,
        1,
        "invalid YAML",
    );
    assert_one(
        "validators:\n  - package: a\n   bad indent: x\n",
        &[],
        3,
        4,
        "invalid YAML",
    );
}

#[test]
fn duplicate_keys_are_rejected() {
    assert_one(
        "arguments:\n  a: {default: x}\n  a: {default: y}\nvalidators: []\n",
        &[],
        3,
        3,
        "duplicated key",
    );
}

#[test]
fn top_level_shape_errors() {
    assert_one("- package: a\n", &[], 1, 1, "expected a mapping");
    assert_one("arguments: {}\n", &[], 1, 1, "missing `validators`");
    assert_one(
        "validators: ~\n",
        &[],
        1,
        13,
        "expected a list of validators, found null",
    );
    assert_one(
        "validators:\n  package: a\n",
        &[],
        2,
        3,
        "expected a list of validators, found a mapping",
    );
    assert_one("", &[], 1, 1, "the spec is empty");
    assert_one(
        "validators: []\n---\nvalidators: []\n",
        &[],
        3,
        1,
        "second YAML document",
    );
}

#[test]
fn validator_item_shape_errors() {
    assert_one(
        "validators:\n  - package: a\n    script: b\n",
        &["b"],
        2,
        5,
        "found a mapping with 2 keys",
    );
    assert_one("validators:\n  - wget\n", &[], 2, 5, "expected a validator");
}

#[test]
fn unknown_validator_names_the_key() {
    assert_one(
        "validators:\n  - all:\n      - pakage: wget\n",
        &[],
        3,
        9,
        "unknown validator type `pakage`; expected one of package, script",
    );
}

#[test]
fn missing_script_is_a_load_error_even_in_a_branch_that_never_runs() {
    assert_one(
        "validators:\n  - os_case:\n      - plan9:\n          - script: plan9/setup\n",
        &[],
        4,
        21,
        "script `plan9/setup` not found",
    );
    assert_one(
        "validators:\n  - script: /etc/passwd\n",
        &[],
        2,
        13,
        "expected a path relative to a resource root",
    );
}

#[test]
fn package_form_errors() {
    assert_one(
        "validators:\n  - package: []\n",
        &[],
        2,
        14,
        "expected at least one package, found an empty list",
    );
    assert_one(
        "validators:\n  - package: {java: {version: 8}}\n",
        &[],
        2,
        31,
        "expected a string, found an integer (quote it: \"8\")",
    );
    assert_one(
        "validators:\n  - package: {java: {}, hadoop: {}}\n",
        &[],
        2,
        14,
        "one package per mapping",
    );
    assert_one(
        "validators:\n  - package: 8\n",
        &[],
        2,
        14,
        "package name: expected a string, found an integer",
    );
    assert_one(
        "validators:\n  - package: [a, [b]]\n",
        &[],
        2,
        18,
        "nested list",
    );
    assert_one(
        "validators:\n  - package: {java: ~}\n",
        &[],
        2,
        21,
        "expected a mapping of properties",
    );
    assert_one(
        "validators:\n  - package: --force-yes\n",
        &[],
        2,
        14,
        "does not start with `-`",
    );
}

#[test]
fn argument_errors() {
    assert_one(
        "arguments:\n  distro: {default: x}\nvalidators: []\n",
        &[],
        2,
        3,
        "argument name `distro` is reserved",
    );
    assert_one(
        "arguments:\n  test_only: {default: x}\nvalidators: []\n",
        &[],
        2,
        3,
        "argument name `test_only` is reserved",
    );
    assert_one(
        "arguments:\n  jdk:\n    default: zulu\n    choices: [openjdk, oracle]\nvalidators: []\n",
        &[],
        3,
        14,
        "default `zulu` is not one of its choices (openjdk, oracle)",
    );
    assert_one(
        "arguments:\n  jdk:\n    description: x\nvalidators: []\n",
        &[],
        3,
        5,
        "argument `jdk` is not required and must specify a default value",
    );
    assert_one(
        "arguments:\n  jdk: {default: \"\"}\nvalidators: []\n",
        &[],
        2,
        18,
        "must specify a default value",
    );
    assert_one(
        "arguments:\n  jdk: openjdk\nvalidators: []\n",
        &[],
        2,
        8,
        "argument `jdk`: expected a mapping",
    );
    assert_one(
        "arguments: ~\nvalidators: []\n",
        &[],
        1,
        12,
        "`arguments`: expected a mapping",
    );
    // The list form from Sahara's docs never worked.
    assert_one(
        "arguments:\n  - java-distro: {default: x}\nvalidators: []\n",
        &[],
        2,
        3,
        "`arguments`: expected a mapping of argument names to definitions, found a list",
    );
    assert_one(
        "arguments:\n  jdk: {default: x, required: maybe}\nvalidators: []\n",
        &[],
        2,
        31,
        "expected true or false, found a string",
    );
    assert_one(
        "arguments:\n  jdk: {default: x, choices: x}\nvalidators: []\n",
        &[],
        2,
        30,
        "expected a list of values",
    );
}

#[test]
fn required_argument_without_default_is_fine_and_yaml11_booleans_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    std::fs::write(
        &path,
        "arguments:\n  a: {required: yes}\n  b: {default: 0, required: True}\nvalidators: []\n",
    )
    .unwrap();
    let spec = spec::load(&path, &[]).unwrap();
    assert!(spec.arguments()[0].required);
    assert_eq!(spec.arguments()[0].default, None);
    assert_eq!(spec.arguments()[1].default.as_deref(), Some("0"));
}

#[test]
fn case_and_set_errors() {
    assert_one(
        "validators:\n  - os_case:\n      redhat: []\n",
        &[],
        3,
        7,
        "os_case: expected a list of single-key mappings",
    );
    assert_one(
        "validators:\n  - os_case:\n      - {redhat: [], ubuntu: []}\n",
        &[],
        3,
        9,
        "found a mapping with 2 keys",
    );
    assert_one(
        "validators:\n  - argument_case:\n      argument_name: a\n      cases: {}\n",
        &[],
        4,
        14,
        "with at least one entry",
    );
    assert_one(
        "validators:\n  - argument_case:\n      argument_name: a\n",
        &[],
        3,
        7,
        "argument_case: missing `cases`",
    );
    assert_one(
        "validators:\n  - argument_case:\n      argument_name: a\n      cases: {x: []}\n      default: []\n",
        &[],
        5,
        7,
        "unknown key `default`",
    );
    assert_one(
        "validators:\n  - argument_case:\n      argument_name: a\n      cases:\n        8: []\n        \"8\": []\n",
        &[],
        6,
        9,
        "duplicate case `8`",
    );
    assert_one(
        "validators:\n  - argument_set: {argument_name: a, value: 8}\n",
        &[],
        2,
        45,
        "argument_set value: expected a string, found an integer",
    );
    assert_one(
        "validators:\n  - argument_set: {argument_name: a}\n",
        &[],
        2,
        19,
        "argument_set: missing `value`",
    );
}

#[test]
fn script_property_errors() {
    assert_one(
        "validators:\n  - script:\n      common/x:\n",
        &["common/x"],
        3,
        15,
        "expected a mapping of properties",
    );
    assert_one(
        "validators:\n  - script:\n      common/x: {env_vars: a}\n",
        &["common/x"],
        3,
        28,
        "env_vars: expected a list of argument names",
    );
    assert_one(
        "validators:\n  - script:\n      common/x: {env_vars: [\"a=b\"]}\n",
        &["common/x"],
        3,
        29,
        "without `=`",
    );
    assert_one(
        "validators:\n  - copy_script: common/resources/\n",
        &[],
        2,
        18,
        "ends in a file name",
    );
    assert_one(
        "validators:\n  - script: [a]\n",
        &[],
        2,
        13,
        "expected a script path",
    );
}

#[test]
fn several_problems_are_all_reported_one_line_each() {
    let (err, path) = load_err(
        "arguments:\n  distro: {default: x}\nvalidators:\n  - script: a/missing\n  - frobnicate: 1\n",
        &[],
    );
    let lines: Vec<String> = err.to_string().lines().map(str::to_string).collect();
    let p = path.display();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].starts_with(&format!("{p}:2:3: error: argument name `distro`")));
    assert!(lines[1].starts_with(&format!("{p}:4:13: error: script `a/missing`")));
    assert!(lines[2].starts_with(&format!(
        "{p}:5:5: error: unknown validator type `frobnicate`"
    )));
}

#[test]
fn unreadable_and_non_utf8_specs() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let err = spec::load(&missing, &[]).unwrap_err();
    assert!(err.to_string().starts_with(&format!(
        "{}: error: cannot read the spec",
        missing.display()
    )));

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, b"validators:\n  - package: caf\xe9\n").unwrap();
    let err = spec::load(&bad, &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}:2:17: error: the spec is not valid UTF-8", bad.display())
    );
}

/// Every prefix of a real spec (most of them broken YAML or broken shapes) loads or fails
/// cleanly: no panic on any input.
#[test]
fn truncated_specs_never_panic() {
    let path = corpus_specs()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("sahara-plugin-ambari"))
        .unwrap();
    let yaml = std::fs::read_to_string(&path).unwrap();
    let root = standins_for(&yaml);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("image.yaml");
    let mut failures = 0;
    for end in (0..yaml.len()).step_by(5) {
        if !yaml.is_char_boundary(end) {
            continue;
        }
        std::fs::write(&target, &yaml[..end]).unwrap();
        if let Err(e) = spec::load(&target, &[root.path().to_path_buf()]) {
            failures += 1;
            for p in e.problems() {
                assert!(p.position.is_some(), "unlocated problem: {p}");
            }
        }
    }
    assert!(failures > 0);
}

// ---- forge spec args ----

fn forge() -> Command {
    Command::new(env!("CARGO_BIN_EXE_forge"))
}

#[test]
fn spec_args_lists_visible_arguments() {
    let path = corpus_specs()
        .into_iter()
        .find(|p| {
            p.to_string_lossy()
                .contains("sahara-plugin-cdh__sahara_plugin_cdh__plugins__cdh__v5_13_0")
        })
        .unwrap();
    let root = standins_for(&std::fs::read_to_string(&path).unwrap());
    let out = forge()
        .args(["spec", "args"])
        .arg(&path)
        .arg("--resource-root")
        .arg(root.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with(
        "java_distro\n    The distribution of Java to install. Defaults to openjdk.\n    default: cloudera-jdk\n    choices: openjdk, oracle-java, cloudera-jdk\n"
    ), "{stdout}");
    assert!(stdout.contains("hdfs_lib_dir\n"));
    assert!(stdout.contains("unlimited_security_location\n"));
    // plugin_version is hidden.
    assert!(!stdout.contains("plugin_version"), "{stdout}");
}

#[test]
fn spec_args_marks_required_and_exits_2_on_spec_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "arguments:\n  release: {required: true, description: Which release}\nvalidators: []\n",
    )
    .unwrap();
    let out = forge().args(["spec", "args"]).arg(&good).output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "release  (required)\n    Which release\n"
    );

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "validators:\n  - script: nowhere/x\n").unwrap();
    let out = forge().args(["spec", "args"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with(&format!(
            "{}:2:13: error: script `nowhere/x` not found",
            bad.display()
        )),
        "{stderr}"
    );
}

#[test]
fn tags_and_aliases_work_as_in_pyyaml() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    std::fs::write(
        &path,
        "validators:\n  - &pk\n    package: {java: {version: !!str 8}}\n  - *pk\n",
    )
    .unwrap();
    let spec = spec::load(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.validators().len(), 2);
    for v in spec.validators() {
        let ValidatorKind::Package(p) = &v.kind else {
            panic!("expected packages")
        };
        assert_eq!(p[0].version.as_deref(), Some("8"));
    }
}
