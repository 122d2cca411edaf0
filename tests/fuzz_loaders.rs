//! Fuzzing the two loaders that read user files: HCL templates (`forge validate`'s full check,
//! which also loads the specs a template names) and YAML image specs. Each target runs
//! `FORGE_FUZZ_EXECS` inputs (default 100 000) from a fixed seed; none may panic, hang or
//! crash, and every diagnostic must render (text and JSON). See `tests/fuzz/mod.rs` for the
//! mutator and why it is not cargo-fuzz.
//!
//! Reproduce a run: `FORGE_FUZZ_SEED=0x... cargo test --test fuzz_loaders -- --nocapture`.

mod fuzz;

use std::path::Path;

use forge::template::{self, CheckLevel, LoadOptions};
use fuzz::{files, root, Fuzz, HCL_TOKENS, YAML_TOKENS};

/// A scratch directory laid out like a template's: the shipped specs under `specs/`, so the
/// seed templates' `spec = ...` and `file(...)` find real files and the spec path is covered.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("forge-fuzz-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    for src in files(&root().join("templates/specs"), &[""]) {
        let rel = src.strip_prefix(root().join("templates")).unwrap();
        let dst = dir.path().join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&src, &dst).unwrap();
    }
    dir
}

fn read_all(paths: Vec<std::path::PathBuf>) -> Vec<Vec<u8>> {
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// Everything a user can see of a template check: each diagnostic as text and the JSON form.
fn check_template(path: &Path) {
    let opts = LoadOptions {
        vars: vec!["greeting=hi $(id)".into()],
        ..Default::default()
    };
    let d = template::check(path, &opts, CheckLevel::Full);
    for x in d.iter() {
        let _ = x.to_string();
    }
    let _ = d.to_json().to_string();
    if d.is_empty() {
        // A valid template must also load into its typed form.
        template::load(path, &opts).unwrap_or_else(|d| panic!("check passed, load failed: {d}"));
    }
}

fn check_spec(path: &Path) {
    match forge::spec::load(path, &[]) {
        Ok(spec) => {
            let _ = format!("{spec:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fn assert_clean(outcome: fuzz::Outcome, want: u64) {
    let panics: Vec<String> = outcome
        .panics
        .iter()
        .map(|(input, msg)| format!("{msg}\n  input: {:?}", String::from_utf8_lossy(input)))
        .collect();
    assert!(
        panics.is_empty(),
        "{} inputs panicked:\n{}",
        panics.len(),
        panics.join("\n")
    );
    assert_eq!(outcome.execs, want);
}

#[test]
fn fuzz_template_loader() {
    let dir = workdir();
    let mut seeds = files(&root().join("templates"), &[".hcl"]);
    seeds.extend(files(&root().join("tests/fixtures/templates"), &[".hcl"]));
    seeds.extend(files(&root().join("tests/fuzz/seeds"), &[".hcl"]));
    let f = Fuzz::new(
        "template",
        read_all(seeds),
        HCL_TOKENS,
        dir.path().join("input.pkr.hcl"),
    );
    let want = f.execs;
    assert_clean(f.run(check_template), want);
}

#[test]
fn fuzz_spec_loader() {
    let dir = workdir();
    let mut seeds = files(&root().join("tests/fixtures/sahara"), &[".yaml"]);
    seeds.extend(files(&root().join("templates/specs"), &[".yaml"]));
    seeds.extend(files(&root().join("tests/image/specs"), &[".yaml"]));
    // Beside the debian spec's scripts, so `script: set_timezone.sh`-style names resolve.
    let f = Fuzz::new(
        "spec",
        read_all(seeds),
        YAML_TOKENS,
        dir.path().join("specs/debian/input.yaml"),
    );
    let want = f.execs;
    assert_clean(f.run(check_spec), want);
}

/// The harness itself can fail: a check that panics on some inputs is caught, counted and
/// reported with the input, and the run goes on.
#[test]
fn the_harness_catches_and_reports_panics() {
    let dir = workdir();
    let mut f = Fuzz::new(
        "harness-self-test",
        vec![b"a = 1\n".to_vec()],
        HCL_TOKENS,
        dir.path().join("input.txt"),
    );
    f.execs = 300;
    let outcome = f.run(|p| {
        let text = std::fs::read(p).unwrap();
        assert!(!text.contains(&b'{'), "found a brace");
    });
    assert!(
        !outcome.panics.is_empty(),
        "no mutant had a brace in 300 tries"
    );
    assert!(outcome
        .panics
        .iter()
        .all(|(input, msg)| input.contains(&b'{') && msg.contains("found a brace")));
    assert!(outcome.execs > 0 && outcome.execs <= 300);
}
