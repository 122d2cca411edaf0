//! Wall time of `forge validate` on the shipped templates (the goal: well under 50 ms).
//!
//! Run: `cargo bench --bench validate` (release) or `cargo bench --profile dev --bench validate`.
//! Prints, per template, the whole process (spawn + parse + check + exit) and the in-process
//! check alone; min / median / max over several runs. A benchmark prints figures: it never fails
//! on them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use forge::template::{self, CheckLevel, LoadOptions};

const RUNS: usize = 30;

fn stats(mut xs: Vec<Duration>) -> (f64, f64, f64) {
    xs.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(xs[0]), ms(xs[xs.len() / 2]), ms(xs[xs.len() - 1]))
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let forge = env!("CARGO_BIN_EXE_forge");
    let mut templates: Vec<PathBuf> = std::fs::read_dir(root.join("templates"))
        .expect("templates/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "hcl"))
        .collect();
    templates.sort();

    println!("forge validate, {RUNS} runs each (ms: min / median / max)");
    for t in &templates {
        let rel = t.strip_prefix(&root).unwrap_or(t);
        let process = time_process(forge, &root, rel);
        let in_process = time_in_process(t);
        let (pmin, pmed, pmax) = stats(process);
        let (imin, imed, imax) = stats(in_process);
        println!(
            "{:<28} process {pmin:6.2} / {pmed:6.2} / {pmax:6.2}   check() {imin:6.3} / {imed:6.3} / {imax:6.3}",
            rel.display()
        );
    }
}

fn time_process(forge: &str, root: &Path, template: &Path) -> Vec<Duration> {
    (0..RUNS)
        .map(|_| {
            let t0 = Instant::now();
            let out = Command::new(forge)
                .arg("validate")
                .arg(template)
                .current_dir(root)
                .output()
                .expect("run forge");
            let dt = t0.elapsed();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            dt
        })
        .collect()
}

fn time_in_process(template: &Path) -> Vec<Duration> {
    let opts = LoadOptions::default();
    (0..RUNS)
        .map(|_| {
            let t0 = Instant::now();
            let d = template::check(template, &opts, CheckLevel::Full);
            let dt = t0.elapsed();
            assert!(d.is_empty(), "{d}");
            dt
        })
        .collect()
}
