//! A stable-Rust fuzzer for heapster's decoders: what reads bytes from disk (spool records and batches), from
//! kubelets and cAdvisor (Summary and cAdvisor JSON), from the command line (`--source`/`--sink` values), from API
//! clients (label and field selectors) and from InfluxDB (`/query` answers read by `--historical_source`).
//!
//! **Why not `cargo fuzz`.** It needs a nightly toolchain and libFuzzer's C++; this machine builds stable Rust
//! only. So this is a blind mutational fuzzer: each execution takes a seed (the repo's small corpus in
//! `crates/fuzz/corpus/<target>/`, the recorded responses in `../shared/fixtures/` when present, and inputs built
//! here), applies a few random byte-level and structure-aware mutations, and runs the target under
//! `catch_unwind`. It finds what single decoders do wrong with damaged or hostile input (panics, arithmetic
//! overflow in debug builds, allocations out of proportion to the input); it does not steer by coverage.
//!
//! **Unbounded allocation.** A counting global allocator ([`Counting`], installed by the binary and the tests)
//! records the peak bytes live during each execution; an execution whose peak exceeds [`alloc_limit`] of its
//! input counts as a failure, like a panic.

pub mod targets;

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One thing to fuzz.
pub struct Target {
    pub name: &'static str,
    /// Inputs built in code, on top of the corpus files.
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Recorded files in `../shared/fixtures` that seed this target, when they are there.
    pub fixtures: &'static [&'static str],
    /// Decodes `input`; must return (any `Result`) rather than panic, whatever the bytes.
    pub run: fn(&[u8]),
    /// Tokens the mutator splices in (JSON keys, option names), besides bytes.
    pub dictionary: &'static [&'static str],
}

/// A global allocator that counts live bytes and their peak, so that an execution's allocations can be measured.
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            let live = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
}

/// The most an execution may allocate for an input of `len` bytes: JSON decoding into maps and strings takes some
/// tens of bytes per input byte, and anything near this is a count or length taken on trust.
pub fn alloc_limit(len: usize) -> usize {
    (16 << 20) + 256 * len
}

/// What one target's run found.
#[derive(Debug, Default)]
pub struct Report {
    pub executions: u64,
    pub elapsed: Duration,
    /// Inputs that panicked, with the message.
    pub panics: Vec<(Vec<u8>, String)>,
    /// Inputs whose execution allocated more than [`alloc_limit`], with the peak.
    pub allocations: Vec<(Vec<u8>, usize)>,
    /// The largest peak of any execution, and the input length it came with.
    pub max_peak: (usize, usize),
    /// Whether the counting allocator was installed (peaks are zero otherwise).
    pub counted: bool,
}

impl Report {
    pub fn per_second(&self) -> f64 {
        self.executions as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn clean(&self) -> bool {
        self.panics.is_empty() && self.allocations.is_empty()
    }
}

/// The corpus of `target`: its directory in the repo, the fixtures it names (when `../shared/fixtures` exists)
/// and its built seeds.
pub fn corpus(target: &Target) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = (target.seeds)();
    if let Ok(dir) = std::fs::read_dir(root.join("corpus").join(target.name)) {
        let mut files: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        out.extend(files.iter().filter_map(|f| std::fs::read(f).ok()));
    }
    let fixtures = root.join("../../../shared/fixtures");
    out.extend(target.fixtures.iter().filter_map(|f| std::fs::read(fixtures.join(f)).ok()));
    out
}

/// Runs `target` on every corpus input, then on `executions` mutated ones (random from `seed`), stopping early
/// after `limit` if given. Panics and oversized allocations are collected, not raised.
pub fn fuzz(target: &Target, executions: u64, seed: u64, limit: Option<Duration>) -> Report {
    let corpus = corpus(target);
    assert!(!corpus.is_empty(), "{}: no seeds", target.name);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut report = Report::default();
    quiet_panics();
    QUIET.set(true);
    let started = Instant::now();
    let mut input = Vec::new();
    for i in 0..(corpus.len() as u64).saturating_add(executions) {
        input.clear();
        match corpus.get(i as usize) {
            Some(c) => input.extend_from_slice(c),
            None => mutate(&mut rng, &corpus, target.dictionary, &mut input),
        }
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let result = catch_unwind(AssertUnwindSafe(|| (target.run)(&input)));
        let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
        report.counted |= peak > 0;
        if peak > report.max_peak.0 {
            report.max_peak = (peak, input.len());
        }
        if let Err(e) = result {
            let msg = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
            report.panics.push((input.clone(), msg.unwrap_or_default()));
        } else if peak > alloc_limit(input.len()) {
            report.allocations.push((input.clone(), peak));
        }
        report.executions += 1;
        if i % 4096 == 0 && limit.is_some_and(|l| started.elapsed() >= l) {
            break;
        }
    }
    report.elapsed = started.elapsed();
    QUIET.set(false);
    report
}

thread_local! {
    /// Set while this thread fuzzes: its panics are expected findings, not messages for the terminal.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Wraps the panic hook once so that panics on a fuzzing thread print nothing (other threads, other tests, print
/// as before).
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.get() {
                previous(info);
            }
        }));
    });
}

/// A new input in `out`: a corpus entry (or a piece of one) changed by one to eight mutations.
fn mutate(rng: &mut fastrand::Rng, corpus: &[Vec<u8>], dictionary: &[&str], out: &mut Vec<u8>) {
    let base = &corpus[rng.usize(..corpus.len())];
    out.extend_from_slice(base);
    for _ in 0..rng.usize(1..=8) {
        let len = out.len();
        match rng.u8(..12) {
            // Flip a bit, or set a byte to something random or to an edge value.
            0 if len > 0 => out[rng.usize(..len)] ^= 1 << rng.u8(..8),
            1 if len > 0 => out[rng.usize(..len)] = rng.u8(..),
            2 if len > 0 => {
                out[rng.usize(..len)] = *rng.choice(&[0u8, 0xff, 0x7f, 0x80, b'"', b'{', b'[', b'9']).unwrap()
            }
            // Cut: a prefix (a torn read), a range out, a window (a smaller input, so faster runs).
            3 if len > 0 => out.truncate(rng.usize(..len)),
            4 if len > 1 => {
                let a = rng.usize(..len);
                let b = rng.usize(a..=len.min(a + 64));
                out.drain(a..b);
            }
            5 if len > 16 => {
                let a = rng.usize(..len);
                let b = rng.usize(a..=len);
                out.drain(b..);
                out.drain(..a);
            }
            // Repeat a range (deep nesting, long lists), or splice in a piece of another input.
            6 if len > 0 => {
                let a = rng.usize(..len);
                let b = rng.usize(a..=len.min(a + 256));
                let piece = out[a..b].to_vec();
                for _ in 0..rng.usize(1..=16) {
                    out.splice(b..b, piece.iter().copied());
                }
            }
            7 => {
                let other = &corpus[rng.usize(..corpus.len())];
                if !other.is_empty() {
                    let a = rng.usize(..other.len());
                    let b = rng.usize(a..=other.len().min(a + 512));
                    let at = rng.usize(..=len);
                    out.splice(at..at, other[a..b].iter().copied());
                }
            }
            // Dictionary tokens and numbers at the edges of their types.
            8 if !dictionary.is_empty() => {
                let at = rng.usize(..=len);
                out.splice(at..at, rng.choice(dictionary).unwrap().bytes());
            }
            9 => {
                let n: &[u8] = rng
                    .choice([&b"-1"[..], b"18446744073709551616", b"1e999", b"-9223372036854775809", b"0.0", b"NaN"])
                    .unwrap();
                let at = rng.usize(..=len);
                out.splice(at..at, n.iter().copied());
            }
            // Little-endian integers at the edges (lengths, counts, sequence numbers).
            10 if len >= 4 => {
                let at = rng.usize(..=len - 4);
                let v = *rng.choice(&[0u32, 1, u32::MAX, u32::MAX / 2, 1 << 31, 4096]).unwrap();
                out[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            _ if len >= 8 => {
                let at = rng.usize(..=len - 8);
                out[at..at + 8].copy_from_slice(&rng.u64(..).to_le_bytes());
            }
            _ => out.push(rng.u8(..)),
        }
    }
}

/// Saves the inputs a report found under `dir/<target>-<n>` and says where.
pub fn save(target: &str, report: &Report, dir: &Path) -> Vec<PathBuf> {
    let _ = std::fs::create_dir_all(dir);
    let inputs = report.panics.iter().map(|(i, _)| i).chain(report.allocations.iter().map(|(i, _)| i));
    inputs
        .enumerate()
        .take(20)
        .filter_map(|(n, input)| {
            let path = dir.join(format!("{target}-{n}"));
            std::fs::write(&path, input).ok().map(|()| path)
        })
        .collect()
}
