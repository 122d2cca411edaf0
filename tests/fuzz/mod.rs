//! A structure-aware mutation fuzzer for forge's two loaders (HCL templates, YAML image specs).
//!
//! Why not cargo-fuzz or AFL++: cargo-fuzz needs a nightly toolchain, which a CI machine that
//! reaches only crates.io, PyPI, npm and Debian cannot install; cargo-afl builds its own AFL++
//! and needs a fork server, which does not fit `cargo test` on stable. So this is a plain,
//! deterministic mutation harness that runs as ordinary `#[test]`s: it starts from the shipped
//! seeds and applies mutations that know both languages (tokens, nesting, numbers, line ends,
//! invalid UTF-8), checks every input under `catch_unwind`, and bounds the time per input.
//!
//! Crash safety of the harness itself: each input is written to a fixed file before the loader
//! reads it (both loaders take a path), so if an input kills the process (stack overflow,
//! abort) the file still holds it; a watchdog thread ends the process when one input runs for
//! longer than [`Fuzz::per_input_limit`], leaving the input in the same file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// splitmix64: tiny, and its sequence never changes with a crate upgrade, so a printed seed
/// reproduces a run forever (rand's `StdRng` makes no such promise).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Tokens that matter to HCL templates (and to forge's model of them).
pub const HCL_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "\"",
    "${",
    "%{",
    "}",
    "=",
    ",",
    ".",
    ":",
    "?",
    "...",
    "=>",
    "\n",
    "\r\n",
    "\t",
    " ",
    "#",
    "//",
    "/*",
    "*/",
    "\\",
    "\\\"",
    "\\u0000",
    "\\U0010FFFF",
    "<<EOF\n",
    "<<-EOF\n",
    "\nEOF\n",
    "EOF",
    "var.",
    "local.",
    "source.",
    "source.openstack.",
    "var.greeting",
    "local.x",
    "self.",
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1.5",
    "1e400",
    "-9223372036854775809",
    "18446744073709551616",
    "99999999999999999999999999999999",
    "0x1F",
    "timestamp()",
    "uuidv4()",
    "formatdate(\"YYYY-MM-DD\", timestamp())",
    "formatdate(\"\", \"\")",
    "formatdate(\"hh:mm ZZZ\", \"2024-13-45T99:99:99Z\")",
    "env(\"HOME\")",
    "env(\"\")",
    "file(\"\")",
    "file(\"specs/debian/image.yaml\")",
    "file(\"..\")",
    "file(\"/dev/zero\")",
    "upper(",
    "for x in",
    "if",
    "else",
    "endif",
    "endfor",
    "%{ if true }x%{ endif }",
    "${var.greeting}",
    "$${",
    "variable \"v\" {",
    "locals {",
    "source \"openstack\" \"x\" {",
    "source \"image-file\" \"y\" {",
    "build {",
    "provisioner \"validators\" {",
    "provisioner \"shell\" {",
    "post-processor \"manifest\" {",
    "sensitive = true",
    "type = string",
    "type = number",
    "type = list(string)",
    "type = map(string)",
    "type = bool",
    "default = null",
    "spec = \"specs/debian/image.yaml\"",
    "inline = [\"echo\"]",
    "sources = [\"source.openstack.x\"]",
    "ssh_timeout = \"-5m\"",
    "ssh_timeout = \"99999999999h\"",
    "ssh_port = 70000",
    "image_min_disk = -1",
    "é",
    "\u{202e}",
    "\u{feff}",
    "\u{10ffff}",
    "💥",
];

/// Tokens that matter to YAML image specs.
pub const YAML_TOKENS: &[&str] = &[
    ":",
    ": ",
    "- ",
    "-",
    "?",
    "? ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "\n",
    "\r\n",
    "\t",
    "  ",
    "    ",
    "#",
    "&a ",
    "*a",
    "&b [*a, *a, *a, *a]",
    "<<: *a",
    "!!str ",
    "!!int ",
    "!!binary ",
    "!!map ",
    "!foo ",
    "!<tag:yaml.org,2002:str> ",
    "|",
    "|-",
    ">",
    ">+",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "%TAG ! tag:x,2000:\n",
    "\"",
    "'",
    "\\",
    "\\x00",
    "\\u2028",
    "~",
    "null",
    "yes",
    "no",
    "on",
    "off",
    "true",
    "1e400",
    "0x1F",
    "0o17",
    "-.inf",
    ".nan",
    "99999999999999999999999999999",
    "-9223372036854775809",
    "validators:",
    "arguments:",
    "package: ",
    "script: ",
    "copy_script: ",
    "all:",
    "any:",
    "os_case:",
    "argument_case:",
    "argument_set:",
    "redhat:",
    "debian:",
    "argument_name: ",
    "cases:",
    "value: ",
    "default: ",
    "required: true",
    "choices: [a, b]",
    "env_vars: [x]",
    "output: ",
    "version: ",
    "hidden: true",
    "description: ",
    "scripts/",
    "../",
    "/etc/passwd",
    "set_timezone.sh",
    "é",
    "\u{feff}",
    "\u{85}",
    "💥",
];

/// One mutation of `input`, with `tokens` as the dictionary and `seeds` to splice from.
pub fn mutate(rng: &mut Rng, input: &mut Vec<u8>, tokens: &[&str], seeds: &[Vec<u8>]) {
    let len = input.len();
    let at = |rng: &mut Rng| if len == 0 { 0 } else { rng.below(len + 1) };
    match rng.below(14) {
        // Flip a bit.
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(8);
        }
        // A random byte, often one that is interesting in these languages or breaks UTF-8.
        1 if len > 0 => {
            let i = rng.below(len);
            let any = rng.next() as u8;
            input[i] = *rng.pick(&[
                0, b'\n', b'\r', b'"', b'{', b'}', b'[', b']', b'$', b'\\', 0x80, 0xc3, 0xff, any,
            ]);
        }
        // Insert a token (the workhorse).
        2..=4 => {
            let i = at(rng);
            let t = rng.pick(tokens).as_bytes().to_vec();
            input.splice(i..i, t);
        }
        // Delete a range.
        5 if len > 0 => {
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(64));
            input.drain(i..i + n);
        }
        // Duplicate a range somewhere else.
        6 if len > 0 => {
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(256));
            let chunk = input[i..i + n].to_vec();
            let j = at(rng);
            input.splice(j..j, chunk);
        }
        // Splice: our head, another seed's tail.
        7 if !seeds.is_empty() => {
            let other = rng.pick(seeds);
            let i = at(rng).min(input.len());
            let j = if other.is_empty() {
                0
            } else {
                rng.below(other.len())
            };
            input.truncate(i);
            input.extend_from_slice(&other[j..]);
        }
        // Deep nesting: many openers (sometimes closed again).
        8 => {
            let i = at(rng);
            let opener = *rng.pick(&["[", "{", "(", "${", "- ", "[[", "{a: ", "a = {", "!x ["]);
            let depth = *rng.pick(&[8, 16, 64, 130, 200, 1_000, 20_000]);
            let mut chunk = opener.repeat(depth);
            if rng.chance(2) {
                let closer: String = opener
                    .chars()
                    .rev()
                    .filter_map(|c| match c {
                        '[' => Some(']'),
                        '{' => Some('}'),
                        '(' => Some(')'),
                        _ => None,
                    })
                    .collect();
                chunk.push_str(&closer.repeat(depth));
            }
            input.splice(i..i, chunk.into_bytes());
        }
        // A huge or odd number in place of a digit run, or anywhere.
        9 => {
            let n = *rng.pick(&[
                "99999999999999999999999999999999999999",
                "-99999999999999999999999999999999999999",
                "1e999999",
                "18446744073709551615",
                "9223372036854775808",
                "-0",
                "0.0000000000000000000000001",
                "4294967296",
            ]);
            let i = input
                .iter()
                .position(|b| b.is_ascii_digit())
                .filter(|_| rng.chance(2));
            match i {
                Some(i) => {
                    let end = input[i..]
                        .iter()
                        .position(|b| !b.is_ascii_digit())
                        .map_or(input.len(), |e| i + e);
                    input.splice(i..end, n.bytes());
                }
                None => {
                    let i = at(rng);
                    input.splice(i..i, n.bytes());
                }
            }
        }
        // Line ends: all CRLF, or lone CRs.
        10 => {
            let from: &[u8] = b"\n";
            let to: &[u8] = if rng.chance(2) { b"\r\n" } else { b"\r" };
            *input = replace_all(input, from, to);
        }
        // Truncate.
        11 if len > 0 => input.truncate(rng.below(len)),
        // A long run of one character (long strings, long lines, indentation).
        12 => {
            let i = at(rng);
            let c = *rng.pick(&[" ", "a", "\"", "\\", "#", "\t", "\n", "é"]);
            let n = *rng.pick(&[10, 100, 1_000, 70_000]);
            input.splice(i..i, c.repeat(n).into_bytes());
        }
        // Swap two lines (keys move between blocks, indentation changes meaning).
        _ => {
            let mut lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
            if lines.len() > 1 {
                let a = rng.below(lines.len());
                let b = rng.below(lines.len());
                lines.swap(a, b);
                *input = lines.join(&b'\n');
            }
        }
    }
}

fn replace_all(input: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + input.len() / 16);
    let mut i = 0;
    while i < input.len() {
        if input[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    out
}

/// Every file under `dir` (recursively) whose name ends with one of `suffixes`.
pub fn files(dir: &Path, suffixes: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if suffixes.iter().any(|s| p.to_string_lossy().ends_with(s)) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The crate root (seeds live there).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Inputs are cut to this size (the seeds are 0.3–6 KiB; 100 KiB still holds any deep-nesting
/// or long-run mutation).
const MAX_INPUT: usize = 100 * 1024;

/// A fuzzing campaign over one loader.
pub struct Fuzz {
    /// Shown in messages and used in file names.
    pub name: &'static str,
    pub seeds: Vec<Vec<u8>>,
    pub tokens: &'static [&'static str],
    /// How many inputs to run (`FORGE_FUZZ_EXECS`, default 100 000).
    pub execs: u64,
    /// Fixed seed so a run is reproducible (`FORGE_FUZZ_SEED` overrides).
    pub seed: u64,
    /// One input may run at most this long (`FORGE_FUZZ_INPUT_SECS`, default 10 s) before the
    /// watchdog ends the process as hung.
    pub per_input_limit: Duration,
    /// Where the input under test is written; the loader reads it from there.
    pub input_path: PathBuf,
}

/// What a campaign did.
#[derive(Debug)]
pub struct Outcome {
    pub execs: u64,
    /// (input, panic message) of each input that panicked; saved under `target/.../fuzz-*`.
    pub panics: Vec<(Vec<u8>, String)>,
    /// The slowest input's time.
    pub slowest: Duration,
}

fn env_number(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

impl Fuzz {
    pub fn new(
        name: &'static str,
        seeds: Vec<Vec<u8>>,
        tokens: &'static [&'static str],
        input_path: PathBuf,
    ) -> Fuzz {
        assert!(!seeds.is_empty(), "{name}: no seed inputs found");
        Fuzz {
            name,
            seeds,
            tokens,
            execs: env_number("FORGE_FUZZ_EXECS").unwrap_or(100_000),
            seed: env_number("FORGE_FUZZ_SEED").unwrap_or(0x666f_7267_6521),
            per_input_limit: Duration::from_secs(env_number("FORGE_FUZZ_INPUT_SECS").unwrap_or(10)),
            input_path,
        }
    }

    /// Runs `check` on `execs` inputs, split over `FORGE_FUZZ_THREADS` worker threads (default:
    /// the machine's cores, at most 4). Each worker starts with the seeds as they are, then
    /// tries mutants (1–4 stacked mutations of a seed or of an earlier mutant), with its own
    /// random stream (`seed` + worker number) and its own input file.
    pub fn run(&self, check: impl Fn(&Path) + Sync) -> Outcome {
        let threads = env_number("FORGE_FUZZ_THREADS")
            .map(|n| n.max(1) as usize)
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map_or(1, |n| n.get())
                    .min(4)
            });
        let paths: Vec<PathBuf> = (0..threads)
            .map(|t| {
                let name = self.input_path.file_name().unwrap().to_string_lossy();
                self.input_path.with_file_name(format!("w{t}-{name}"))
            })
            .collect();
        eprintln!(
            "fuzz {}: {} execs on {threads} threads, seed {:#x}, {} seed inputs; the inputs under \
             test are kept in {} (w0-, w1-...)",
            self.name,
            self.execs,
            self.seed,
            self.seeds.len(),
            self.input_path.parent().unwrap().display()
        );
        quiet_panics_on_fuzz_workers();
        let t0 = Instant::now();
        // Per worker: when its current input started (ms since t0, +1; 0 = idle).
        let started: Vec<AtomicU64> = (0..threads).map(|_| AtomicU64::new(0)).collect();
        let done = AtomicBool::new(false);
        let results: Vec<Worker> = std::thread::scope(|s| {
            let limit = self.per_input_limit;
            let (started, done, paths) = (&started, &done, &paths);
            // The watchdog: a loader cannot be stopped from another thread, so a hung input
            // ends the process, naming the file that holds it.
            s.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                    let now = t0.elapsed().as_millis() as u64;
                    for (t, st) in started.iter().enumerate() {
                        let st = st.load(Ordering::Relaxed);
                        if st > 0 && now.saturating_sub(st) > limit.as_millis() as u64 {
                            eprintln!(
                                "fuzz {}: one input ran longer than {limit:?} (hang); it is in {}",
                                self.name,
                                paths[t].display()
                            );
                            std::process::exit(3);
                        }
                    }
                }
            });
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let execs = self.execs / threads as u64
                        + u64::from((t as u64) < self.execs % threads as u64);
                    let check = &check;
                    std::thread::Builder::new()
                        .name(format!("fuzz-worker-{t}"))
                        .spawn_scoped(s, move || {
                            self.worker(t as u64, execs, &paths[t], &started[t], t0, check)
                        })
                        .expect("start a fuzz worker")
                })
                .collect();
            let r = handles
                .into_iter()
                .map(|h| h.join().expect("a fuzz worker died"))
                .collect();
            done.store(true, Ordering::Relaxed);
            r
        });
        let elapsed = t0.elapsed();
        let mut outcome = Outcome {
            execs: 0,
            panics: Vec::new(),
            slowest: Duration::ZERO,
        };
        for w in results {
            outcome.execs += w.ran;
            outcome.panics.extend(w.panics);
            outcome.slowest = outcome.slowest.max(w.slowest);
        }
        eprintln!(
            "fuzz {}: {} execs in {:.1} s = {:.0} execs/s; slowest input {:.1} ms; {} panics",
            self.name,
            outcome.execs,
            elapsed.as_secs_f64(),
            outcome.execs as f64 / elapsed.as_secs_f64().max(1e-9),
            outcome.slowest.as_secs_f64() * 1e3,
            outcome.panics.len()
        );
        outcome
    }

    fn worker(
        &self,
        t: u64,
        execs: u64,
        path: &Path,
        started: &AtomicU64,
        t0: Instant,
        check: &(impl Fn(&Path) + Sync),
    ) -> Worker {
        let mut rng = Rng::new(self.seed.wrapping_add(t));
        // Earlier mutants are parents too (cheap depth without coverage feedback).
        let mut pool: Vec<Vec<u8>> = self.seeds.clone();
        let mut w = Worker {
            ran: 0,
            panics: Vec::new(),
            slowest: Duration::ZERO,
        };
        for n in 0..execs {
            let input = if (n as usize) < self.seeds.len() {
                self.seeds[n as usize].clone()
            } else {
                let mut x = rng.pick(&pool).clone();
                for _ in 0..1 + rng.below(4) {
                    mutate(&mut rng, &mut x, self.tokens, &self.seeds);
                }
                // Keep inputs bounded (big mutations can stack up).
                x.truncate(MAX_INPUT);
                x
            };
            std::fs::write(path, &input).expect("write the fuzz input");
            let began = Instant::now();
            started.store(t0.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(path)));
            started.store(0, Ordering::Relaxed);
            w.slowest = w.slowest.max(began.elapsed());
            w.ran += 1;
            if let Err(p) = r {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "(non-string panic)".into());
                let saved = path.with_file_name(format!(
                    "fuzz-{}-panic-w{t}-{}.bin",
                    self.name,
                    w.panics.len()
                ));
                let _ = std::fs::write(&saved, &input);
                w.panics
                    .push((input, format!("{msg} (input saved in {})", saved.display())));
                if w.panics.len() >= 20 {
                    break; // enough to fix first
                }
            } else if input.len() > MAX_INPUT / 4 {
                // Huge mutants are tried once, not bred from: they would slow every later run.
            } else if pool.len() < 512 {
                pool.push(input);
            } else if rng.chance(8) {
                let i = self.seeds.len() + rng.below(pool.len() - self.seeds.len());
                pool[i] = input;
            }
        }
        w
    }
}

struct Worker {
    ran: u64,
    panics: Vec<(Vec<u8>, String)>,
    slowest: Duration,
}

/// Panics on fuzz workers are collected and reported at the end, not printed one by one; every
/// other thread keeps the usual message (so a failing assertion still shows).
fn quiet_panics_on_fuzz_workers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prior = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let fuzzing = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("fuzz-worker-"));
            if !fuzzing {
                prior(info);
            }
        }));
    });
}
