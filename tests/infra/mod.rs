//! What a test that needs infrastructure (the test cloud, the SSH test hosts, the libguestfs
//! image, a system package) does when it runs: such a test is `#[ignore = "needs ..."]`d, so a
//! plain `cargo test` reports it as *ignored* (not run) instead of passing it having done
//! nothing; CI runs it with `--include-ignored`, and then a missing part fails it, naming the
//! script that sets the part up. There is no "skipped but passed".
//!
//! Included by each helper module (cloud, hosts, image) by path, so it works in any test binary.

/// Whether this process was asked to run `#[ignore]`d tests (or is a benchmark run by
/// `cargo bench`, which passes `--bench`).
fn running_ignored() -> bool {
    std::env::args().any(|a| ["--include-ignored", "--ignored", "--bench"].contains(&a.as_str()))
}

/// Called by a test (through its helper) before it touches `part`, set up by `setup`; `missing`
/// says why the part is absent, if it is. Panics when the part is absent, and when the test is
/// not `#[ignore]`d: then it would pass or fail with the machine, unseen.
pub fn require(part: &str, setup: &str, missing: Option<String>) {
    if !running_ignored() {
        panic!(
            "this test needs {part} but is not #[ignore]d: mark it \
             #[ignore = \"needs {part}: {setup}\"] and run it with `cargo test -- --include-ignored`"
        );
    }
    if let Some(why) = missing {
        panic!("not run: needs {part}: {why}; set it up with `{setup}`");
    }
}
