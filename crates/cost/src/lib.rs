//! heapster's own bill: how much CPU each stage of its pipeline uses, measured with the kernel's per-thread CPU
//! clock (`CLOCK_THREAD_CPUTIME_ID`), and what a round costs per node scraped.
//!
//! A [`Stage`] is a named counter of CPU nanoseconds. A [`Guard`] from [`Stage::start`] (or [`Stage::enter`] by
//! name) reads the calling thread's CPU clock when made and again when dropped, and adds the difference to its
//! stage. Guards nest: CPU spent under an inner guard is counted for the inner stage only, so no nanosecond is
//! counted twice. Async work is measured per poll with [`Costed`] ([`CostExt::costed`]): a task's CPU is what its
//! polls took on whichever worker ran them, and never the time it spent waiting.
//!
//! Whatever no guard covers (the runtime's own threads, HTTP connection tasks, timers, the allocator's background
//! work) is [`OTHER`]: the process's CPU time (`CLOCK_PROCESS_CPUTIME_ID`, the same figure as utime + stime in
//! `/proc/self/stat`) minus the named stages. So the stages of a [`Snapshot`] always sum to the process total.
//!
//! ```
//! let decode = heapster_cost::Stage::named("doc-example");
//! {
//!     let _cpu = decode.start();
//!     let _sum: u64 = (0..100_000u64).sum();
//! }
//! let snap = heapster_cost::snapshot();
//! assert!(snap.stages.iter().any(|(name, _)| name == "doc-example"));
//! assert!(snap.total_ns() >= decode.cpu_ns());
//! ```
//!
//! [`Ledger`] keeps a mark of every counter at the end of each round, for the per-round and per-node figures of
//! `/api/v1/cost` and the dashboard's Cost page.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

/// Sources' response decoding: JSON to a kubelet Summary or cAdvisor's containers, and on to metric sets.
pub const DECODE: &str = "decode";
/// The scrape tasks' own work outside decoding: requests, reading bodies, merging the sources' sets.
pub const SCRAPE: &str = "scrape";
/// The processor chain (rates, enrichment, aggregation).
pub const PROCESSORS: &str = "processors";
/// The embedded store taking a batch in.
pub const STORE: &str = "store";
/// HTTP handlers: the model API, metrics.k8s.io, the dashboard, `/metrics`.
pub const API: &str = "api";
/// What no guard covers: the process's CPU minus every named stage.
pub const OTHER: &str = "other";
/// A sink's stage is `sink:<its name>`: encoding, compressing and sending its batches.
pub fn sink_stage(sink: &str) -> String {
    format!("sink:{sink}")
}

/// The stages every heapster has, in the order the pipeline runs them; sinks' stages come after.
pub const FIXED: [&str; 5] = [SCRAPE, DECODE, PROCESSORS, STORE, API];

/// CPU time the calling thread has used, in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    ns(rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime))
}

/// CPU time the whole process has used (every thread, user and system), in nanoseconds.
pub fn process_cpu_ns() -> u64 {
    ns(rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime))
}

fn ns(t: rustix::time::Timespec) -> u64 {
    (t.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec as u64)
}

struct Counter {
    name: String,
    ns: AtomicU64,
}

/// Every stage made so far, in the order of first use. Stages live as long as the process.
static STAGES: Mutex<Vec<Stage>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One named CPU counter. Cheap to clone; every clone counts into the same counter.
#[derive(Clone)]
pub struct Stage(Arc<Counter>);

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stage({}, {} ns)", self.name(), self.cpu_ns())
    }
}

impl Stage {
    /// The stage called `name`, made on first use. Takes a lock: keep the result where a stage is entered often.
    pub fn named(name: &str) -> Stage {
        let mut stages = lock(&STAGES);
        if let Some(s) = stages.iter().find(|s| s.name() == name) {
            return s.clone();
        }
        let s = Stage(Arc::new(Counter { name: name.to_owned(), ns: AtomicU64::new(0) }));
        stages.push(s.clone());
        s
    }

    /// Counts the calling thread's CPU into stage `name` until the guard drops.
    pub fn enter(name: &str) -> Guard {
        Stage::named(name).start()
    }

    /// Counts the calling thread's CPU into this stage until the guard drops.
    pub fn start(&self) -> Guard {
        Guard {
            stage: self.clone(),
            started: thread_cpu_ns(),
            nested_before: NESTED.get(),
            _one_thread: Default::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// CPU counted so far, in nanoseconds.
    pub fn cpu_ns(&self) -> u64 {
        self.0.ns.load(Ordering::Relaxed)
    }
}

/// The fixed stages, made once.
pub static SCRAPE_STAGE: LazyLock<Stage> = LazyLock::new(|| Stage::named(SCRAPE));
pub static DECODE_STAGE: LazyLock<Stage> = LazyLock::new(|| Stage::named(DECODE));
pub static PROCESSORS_STAGE: LazyLock<Stage> = LazyLock::new(|| Stage::named(PROCESSORS));
pub static STORE_STAGE: LazyLock<Stage> = LazyLock::new(|| Stage::named(STORE));
pub static API_STAGE: LazyLock<Stage> = LazyLock::new(|| Stage::named(API));

/// Makes the fixed stages, so that they are reported (at zero) before their first use.
pub fn register_fixed() {
    for s in [&SCRAPE_STAGE, &DECODE_STAGE, &PROCESSORS_STAGE, &STORE_STAGE, &API_STAGE] {
        LazyLock::force(s);
    }
}

thread_local! {
    /// CPU nanoseconds that guards finished on this thread have measured in all, whole (their inner guards'
    /// included). A guard subtracts what grew here while it was open: that was counted by an inner guard.
    static NESTED: Cell<u64> = const { Cell::new(0) };
}

/// Counts the thread's CPU into its stage from its making to its drop, less what inner guards counted.
#[must_use = "the CPU is counted until the guard drops"]
pub struct Guard {
    stage: Stage,
    started: u64,
    nested_before: u64,
    /// Not `Send`: a guard held across an `.await` would count other tasks' CPU on this thread (and miss its own
    /// on the next); a spawned future holding one does not compile. Async work uses [`Costed`].
    _one_thread: std::marker::PhantomData<*const ()>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let took = thread_cpu_ns().saturating_sub(self.started);
        let inner = NESTED.get().wrapping_sub(self.nested_before);
        self.stage.0.ns.fetch_add(took.saturating_sub(inner), Ordering::Relaxed);
        NESTED.set(self.nested_before.wrapping_add(took));
    }
}

/// A future whose every poll is counted into a stage. See [`CostExt::costed`].
pub struct Costed<F> {
    stage: Stage,
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for Costed<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let _cpu = this.stage.start();
        this.inner.as_mut().poll(cx)
    }
}

/// Counts a future's polls into a stage.
pub trait CostExt: Future + Sized {
    /// This future, with the CPU of each of its polls counted into `stage` (boxed once, to poll it in place).
    fn costed(self, stage: &Stage) -> Costed<Self> {
        Costed { stage: stage.clone(), inner: Box::pin(self) }
    }
}

impl<F: Future> CostExt for F {}

/// Every stage's CPU and the process's, read together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Named stages in the order of first use, in nanoseconds; [`OTHER`] is not among them.
    pub stages: Vec<(String, u64)>,
    /// The process's CPU time, read after the stages (so it is never below their sum).
    pub process_ns: u64,
}

impl Snapshot {
    /// The process's CPU that no stage counted.
    pub fn other_ns(&self) -> u64 {
        self.process_ns.saturating_sub(self.stages.iter().map(|(_, n)| n).sum())
    }

    /// The named stages and then [`OTHER`]: their sum is the process total (or the named stages' sum, should a
    /// clock ever run ahead of the process's).
    pub fn with_other(&self) -> Vec<(String, u64)> {
        let mut all = self.stages.clone();
        all.push((OTHER.to_owned(), self.other_ns()));
        all
    }

    /// The sum of [`Snapshot::with_other`].
    pub fn total_ns(&self) -> u64 {
        self.with_other().iter().map(|(_, n)| n).sum()
    }

    /// Counter by counter, what `self` has more than `earlier` (a stage `earlier` lacks counts from zero).
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        let stages = self
            .stages
            .iter()
            .map(|(name, n)| {
                let before = earlier.stages.iter().find(|(e, _)| e == name).map_or(0, |(_, b)| *b);
                (name.clone(), n.saturating_sub(before))
            })
            .collect();
        Snapshot { stages, process_ns: self.process_ns.saturating_sub(earlier.process_ns) }
    }
}

/// Every stage's CPU now.
pub fn snapshot() -> Snapshot {
    let stages = lock(&STAGES).iter().map(|s| (s.name().to_owned(), s.cpu_ns())).collect();
    Snapshot { stages, process_ns: process_cpu_ns() }
}

/// One sink as the ledger reads it at the end of a round.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SinkReading {
    pub name: String,
    /// Points the sink took since the start (counted per batch exported).
    pub points: u64,
    /// Batches waiting: in its memory queue, or with a spool, not yet acknowledged in it.
    pub queued_batches: u64,
    /// Whether its batches go through a spool on disk.
    pub spooled: bool,
    /// Bytes of its spool on disk, when it has one.
    pub spool_bytes: Option<u64>,
}

/// Reads the sinks at a round's end.
pub type ReadSinks = dyn Fn() -> Vec<SinkReading> + Send + Sync;

/// Counters at the end of one round.
#[derive(Debug, Clone)]
pub struct Mark {
    /// Rounds ended before and with this one.
    pub round: u64,
    pub at: Instant,
    /// Nodes the round scraped.
    pub nodes: u64,
    pub cpu: Snapshot,
    pub sinks: Vec<SinkReading>,
}

/// The marks of the newest rounds, and the one made at start, for figures per round and per node.
pub struct Ledger {
    start: Mark,
    marks: Mutex<VecDeque<Mark>>,
    keep: usize,
    sinks: Option<Box<ReadSinks>>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("keep", &self.keep).field("rounds", &lock(&self.marks).len()).finish()
    }
}

/// What rounds cost over an interval: the figures of `/api/v1/cost`.
#[derive(Debug, Clone)]
pub struct Report {
    /// Rounds in the interval (0 before the first round ended).
    pub rounds: u64,
    /// Seconds the interval lasted.
    pub seconds: f64,
    /// Nodes the newest round scraped, and on average over the interval's rounds.
    pub nodes_last: u64,
    pub nodes_mean: f64,
    /// CPU of the interval by stage, [`OTHER`] last: they sum to the process's CPU in the interval.
    pub cpu: Vec<(String, u64)>,
    /// Per sink: points per second over the interval, and its queue now.
    pub sinks: Vec<SinkRate>,
}

/// One sink's rate and queue.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkRate {
    pub reading: SinkReading,
    pub points_per_second: f64,
}

impl Report {
    /// The process's CPU in the interval, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        self.cpu.iter().map(|(_, n)| *n as f64).sum::<f64>() / 1e9
    }
}

impl Ledger {
    /// Keeps the marks of the newest `keep` rounds.
    pub fn new(keep: usize) -> Ledger {
        Ledger { start: mark(0, 0, &None), marks: Mutex::new(VecDeque::new()), keep: keep.max(1), sinks: None }
    }

    /// Reads the sinks with `read` at each mark.
    pub fn with_sinks(mut self, read: impl Fn() -> Vec<SinkReading> + Send + Sync + 'static) -> Ledger {
        self.sinks = Some(Box::new(read));
        self.start.sinks = read_sinks(&self.sinks);
        self
    }

    /// Marks the end of a round that scraped `nodes` nodes.
    pub fn round_ended(&self, nodes: u64) {
        let mut marks = lock(&self.marks);
        let round = marks.back().map_or(0, |m| m.round) + 1;
        marks.push_back(mark(round, nodes, &self.sinks));
        while marks.len() > self.keep {
            marks.pop_front();
        }
    }

    /// Rounds the ledger keeps marks of.
    pub fn keep(&self) -> usize {
        self.keep
    }

    /// The figures over the newest `last` rounds (as many as are kept), or since start when `None`. The sinks'
    /// queues are read now.
    pub fn report(&self, last: Option<usize>) -> Report {
        let marks = lock(&self.marks);
        let newest = marks.back().cloned().unwrap_or_else(|| self.start.clone());
        let from = match last {
            // The mark before the interval's first round; the start when fewer rounds are kept.
            Some(n) if n < marks.len() => marks[marks.len() - 1 - n].clone(),
            _ if last.is_some() && marks.len() == self.keep => marks[0].clone(),
            _ => self.start.clone(),
        };
        let nodes: Vec<u64> = marks.iter().filter(|m| m.round > from.round).map(|m| m.nodes).collect();
        drop(marks);
        let rounds = newest.round - from.round;
        let nodes_mean = if nodes.is_empty() { 0.0 } else { nodes.iter().sum::<u64>() as f64 / nodes.len() as f64 };
        let seconds = newest.at.duration_since(from.at).as_secs_f64();
        let now = read_sinks(&self.sinks);
        let sinks = now
            .into_iter()
            .map(|reading| {
                let points = |m: &Mark| m.sinks.iter().find(|s| s.name == reading.name).map_or(0, |s| s.points);
                let taken = points(&newest).saturating_sub(points(&from));
                let points_per_second = if seconds > 0.0 { taken as f64 / seconds } else { 0.0 };
                SinkRate { reading, points_per_second }
            })
            .collect();
        Report {
            rounds,
            seconds,
            nodes_last: newest.nodes,
            nodes_mean,
            cpu: newest.cpu.since(&from.cpu).with_other(),
            sinks,
        }
    }
}

fn read_sinks(read: &Option<Box<ReadSinks>>) -> Vec<SinkReading> {
    read.as_ref().map(|r| r()).unwrap_or_default()
}

fn mark(round: u64, nodes: u64, sinks: &Option<Box<ReadSinks>>) -> Mark {
    Mark { round, at: Instant::now(), nodes, cpu: snapshot(), sinks: read_sinks(sinks) }
}

#[cfg(test)]
mod tests;
