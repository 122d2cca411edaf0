//! Inputs the fuzzers (`tests/fuzz_loaders.rs`) found that broke a loader, each kept as a test
//! after the fix. Each must give a located error (or load), never a panic or a crash.

use std::path::{Path, PathBuf};

use forge::template::{self, CheckLevel, LoadOptions};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The spec error's text, which must be located at `line:col` of the file.
fn spec_error(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "image.yaml", text);
    let e = forge::spec::load(&p, &[]).expect_err("a spec that deep was accepted");
    e.to_string()
}

/// Found by the spec fuzzer: a block list nested 5 000 levels (`- - - - ...`) overflowed the
/// stack (the process aborted) in the recursive tree conversion.
#[test]
fn deeply_nested_block_list_is_an_error_not_a_stack_overflow() {
    let text = format!("validators:\n  {}package: a\n", "- ".repeat(5_000));
    let msg = spec_error(&text);
    assert!(msg.contains("nest more than 128 levels"), "{msg}");
    assert!(msg.contains("image.yaml:2:"), "not located: {msg}");
}

#[test]
fn deeply_nested_flow_collections_are_an_error_not_a_stack_overflow() {
    for (open, close) in [("[", "]"), ("{a: ", "}")] {
        let text = format!(
            "validators: {}1{}\n",
            open.repeat(20_000),
            close.repeat(20_000)
        );
        let msg = spec_error(&text);
        // saphyr's scanner has a limit of its own for flow collections; either is fine.
        assert!(
            msg.contains("nest more than 128 levels") || msg.contains("recursion limit"),
            "{open}: {msg}"
        );
        assert!(msg.contains("image.yaml:1:"), "not located: {msg}");
    }
}

/// Aliases nest an anchor's tree inside another without any nesting in the text: a chain of
/// anchors builds depth from a flat file. saphyr bounds the nodes, forge the depth.
#[test]
fn alias_chains_cannot_build_a_tree_too_deep_to_walk() {
    let mut text = String::from("a0: &a0 [x]\n");
    for i in 1..300 {
        text.push_str(&format!("a{i}: &a{i} [*a{}]\n", i - 1));
    }
    text.push_str("validators: *a299\n");
    let msg = spec_error(&text);
    assert!(
        msg.contains("nest more than 128 levels") || msg.contains("alias expansion"),
        "{msg}"
    );
}

/// A spec nested as deeply as real ones are still loads (the limit is far above them).
#[test]
fn ordinary_nesting_still_loads() {
    let mut v = String::from("package: a");
    for _ in 0..20 {
        v = format!("all:\n- {}", v.replace('\n', "\n  "));
    }
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "image.yaml",
        &format!("validators:\n- {}\n", v.replace('\n', "\n  ")),
    );
    forge::spec::load(&p, &[]).unwrap_or_else(|e| panic!("{e}"));
}

/// Template check with every diagnostic rendered; returns the rendered text.
fn template_check(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "t.pkr.hcl", text);
    let d = template::check(&p, &LoadOptions::default(), CheckLevel::Full);
    let _ = d.to_json().to_string();
    d.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn deeply_nested_template_expressions_are_an_error_not_a_stack_overflow() {
    for (open, close) in [("[", "]"), ("(", ")"), ("{a = ", "}")] {
        let text = format!(
            "locals {{\n  x = {}1{}\n}}\n",
            open.repeat(20_000),
            close.repeat(20_000)
        );
        let msg = template_check(&text);
        assert!(msg.contains("t.pkr.hcl:2:"), "{open}: not located: {msg}");
    }
}

/// Not found by the fuzzer but by reading its dictionary's gaps: `file("/dev/zero")` made
/// `forge validate` read forever (and fill memory). Now the token is in the dictionary and
/// `file()` reads only regular files, up to 16 MiB.
#[test]
fn file_of_a_device_is_an_error_not_a_hang() {
    for dev in ["/dev/zero", "/dev/stdin", "/dev/null"] {
        let msg = template_check(&format!("locals {{\n  x = file(\"{dev}\")\n}}\n"));
        assert!(
            msg.contains(&format!("cannot read {dev}: not a regular file")),
            "{dev}: {msg}"
        );
        assert!(msg.contains("t.pkr.hcl:2:"), "not located: {msg}");
    }
}

/// Found in review: opening a FIFO blocks until a writer appears, so `file()` must look at the
/// file type before it opens. (If it opened first, this test would hang, not fail.)
#[test]
fn file_of_a_fifo_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success());
    let shown = fifo.display().to_string();
    let msg = template_check(&format!("locals {{\n  x = file(\"{shown}\")\n}}\n"));
    assert!(
        msg.contains(&format!("cannot read {shown}: not a regular file")),
        "{msg}"
    );
}
