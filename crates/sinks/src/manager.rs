//! Fans each batch out to every sink, each through its own bounded queue and task.
//!
//! Heapster waited for all sinks with one shared timeout and then dropped the batch for whoever was late, without
//! a trace. Here a slow sink only fills its own queue; when that queue is full the oldest batch is dropped, and the
//! drop is counted and logged with the time range lost.
//!
//! A batch whose export failed for a reason worth retrying (server down, timeout, 5xx) stays at the head of its
//! queue and is tried again with exponential backoff, so an outage shorter than the queue loses nothing and
//! batches still arrive in order. Only a rejection (bad data, bad credentials) drops a batch at once.
//!
//! With a spool ([`SinkManagerConfig::spool`], `--sink_buffer_dir`) each sink has two tasks: a spooler that
//! appends every batch to the sink's [`Spool`] on disk as it arrives (write-through, see [`crate::spool`]) and
//! keeps the newest `queue_batches` of them in memory, and a sender that sends the oldest unacknowledged batch
//! (from memory when it is still there, else from disk), retries it with backoff while the sink fails, and
//! acknowledges it once taken. An outage then costs only disk, up to the spool's bound; a restart resumes at the
//! first batch not acknowledged. What the bound drops is counted in `heapster_sink_batches_dropped` and logged
//! with its time range. A batch the spool cannot store (a full disk) is sent from memory in its place in the
//! order, counted in `heapster_sink_batches_unspooled`: a full disk costs durability, not delivery.
//!
//! A sink given governor options (`max_series=`, `labels_deny=`, ...) has a [`Governor`] that [`SinkManager::push`]
//! runs on each batch before queueing it: the sink, its queue and its spool only ever hold what it is to write.

use crate::governor::{Governor, Governors};
use crate::self_metrics::{self, SinkCauseLabels, SinkErrorLabels, SinkLabels, SinkMetrics};
use crate::spool::{Spool, SpoolConfig, rfc3339, sink_dir};
use crate::{DataSink, SinkError};
use heapster_cost::{CostExt, Stage};
use heapster_model::DataBatch;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How much each sink may fall behind, and how long one export may take.
#[derive(Debug, Clone)]
pub struct SinkManagerConfig {
    /// Batches held in memory per sink before the oldest is dropped (with a spool: before the oldest is only on
    /// disk).
    pub queue_batches: usize,
    /// Deadline of one `export` call (`--sink_export_data_timeout`).
    pub export_timeout: Duration,
    /// A durable spool per sink (`--sink_buffer_dir`); `None` keeps batches in memory only.
    pub spool: Option<SpoolConfig>,
}

impl Default for SinkManagerConfig {
    fn default() -> Self {
        SinkManagerConfig { queue_batches: 8, export_timeout: Duration::from_secs(20), spool: None }
    }
}

/// What [`SinkManager::push`] appends to, per sink.
struct Queue {
    batches: Mutex<VecDeque<Arc<DataBatch>>>,
    /// Wakes the sink's task when a batch arrives or on shutdown.
    notify: Notify,
    closed: AtomicBool,
}

impl Queue {
    fn closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

/// What a spooled sink's two tasks share.
struct Spooled {
    spool: Mutex<Spool>,
    /// The newest spooled batches with their sequence numbers, so that a sink that keeps up is sent from memory.
    cache: Mutex<VecDeque<(u64, Arc<DataBatch>)>>,
    /// Batches the spool could not store (a full disk), oldest first, each after the spooled batch it followed:
    /// sent from memory in their place in the order rather than lost while the sink is healthy.
    unspooled: Mutex<VecDeque<Unspooled>>,
    /// Wakes the sender when a batch was spooled or the spooler is done.
    wake: Notify,
    /// Set when the spooler has written everything pushed before shutdown.
    spooler_done: AtomicBool,
}

/// A batch held in memory only, see [`Spooled::unspooled`].
struct Unspooled {
    /// Tells it apart when the sender is done with it (the spooler may have dropped it meanwhile).
    id: u64,
    /// The sequence number of the newest batch spooled before it: it is sent after that one and before the next.
    after: u64,
    batch: Arc<DataBatch>,
}

impl Spooled {
    /// Batches waiting: in the spool and in memory only.
    fn pending(&self, spool: &Spool) -> i64 {
        (spool.pending_count() + lock(&self.unspooled).len() as u64) as i64
    }
}

struct Handle {
    name: String,
    /// Points of the batches the sink took, for heapster's bill (points per second per sink).
    points: Arc<AtomicU64>,
    queue: Arc<Queue>,
    /// The sink's task; with a spool, the spooler.
    task: JoinHandle<()>,
    /// With a spool: the shared state and the sender task.
    sender: Option<(Arc<Spooled>, JoinHandle<()>)>,
    /// With governor options: what cuts each batch before it is queued.
    governor: Option<Mutex<Governor>>,
}

/// Owns one task per sink (two with a spool). Dropping it without [`SinkManager::shutdown`] abandons queued
/// batches (spooled ones stay on disk).
pub struct SinkManager {
    handles: Vec<Handle>,
    config: SinkManagerConfig,
    metrics: SinkMetrics,
}

/// A lock that a panicked holder does not make unusable: the data behind these locks stays consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SinkManager {
    /// Starts one task per sink. Must be called inside a tokio runtime.
    ///
    /// # Panics
    /// When a spool cannot be opened; [`SinkManager::try_start`] reports that instead.
    pub fn start(sinks: Vec<Arc<dyn DataSink>>, config: SinkManagerConfig, metrics: SinkMetrics) -> Self {
        Self::try_start(sinks, config, metrics).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts one task per sink (two with a spool), opening each sink's spool and scheduling what an earlier run
    /// left unsent in it before anything new. Counts on `metrics`. Must be called inside a tokio runtime.
    pub fn try_start(
        sinks: Vec<Arc<dyn DataSink>>,
        config: SinkManagerConfig,
        metrics: SinkMetrics,
    ) -> Result<Self, String> {
        let mut handles: Vec<Handle> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for sink in sinks {
            let name = sink.name();
            let labels = self_metrics::sink(&name);
            let governor = sink.governor().map(|c| Mutex::new(Governor::new(&name, c.clone(), metrics.clone())));
            let queue = Arc::new(Queue {
                batches: Mutex::new(VecDeque::new()),
                notify: Notify::new(),
                closed: Default::default(),
            });
            let points = Arc::new(AtomicU64::new(0));
            let cpu = Stage::named(&heapster_cost::sink_stage(&name));
            let delivery = Delivery {
                sink,
                labels: labels.clone(),
                timeout: config.export_timeout,
                metrics: metrics.clone(),
                points: points.clone(),
                cpu: cpu.clone(),
            };
            let queued = metrics.queued.get_or_create(&labels).clone();
            let dropped = metrics.dropped.get_or_create(&labels).clone();
            let Some(spool_config) = &config.spool else {
                let memory =
                    Memory { queue: queue.clone(), limit: config.queue_batches, queued, dropped, name: name.clone() };
                let task = tokio::spawn(delivery.run(memory));
                handles.push(Handle { name, points, queue, task, sender: None, governor });
                continue;
            };
            // Two sinks of the same name (the same URL twice) get a spool each, told apart by their order.
            let n = seen.entry(name.clone()).or_default();
            *n += 1;
            let key = if *n == 1 { name.clone() } else { format!("{name}#{n}") };
            let dir = sink_dir(&spool_config.dir, &key);
            let spool = match Spool::open(&dir, &name, spool_config.max_bytes) {
                Ok(s) => s,
                Err(e) => {
                    for h in handles {
                        h.task.abort();
                        if let Some((_, t)) = h.sender {
                            t.abort();
                        }
                    }
                    return Err(format!("--sink_buffer_dir: cannot open the spool {} of {name}: {e}", dir.display()));
                }
            };
            dropped.inc_by(spool.lost());
            let damaged = |cause: &str| SinkCauseLabels { sink: name.clone(), cause: cause.to_owned() };
            if spool.lost() > 0 {
                metrics.spool_damaged.get_or_create(&damaged("corrupt")).inc_by(spool.lost());
            }
            if let Some(a) = spool.ack_ahead() {
                metrics.spool_damaged.get_or_create(&damaged("ack_ahead")).inc_by(a.resent);
            }
            match spool.pending() {
                Some(p) => tracing::info!(
                    sink = %name,
                    "spool {}: {} batches from {} to {} not yet written by the last run: sending them first",
                    dir.display(),
                    p.batches,
                    rfc3339(p.first),
                    rfc3339(p.last)
                ),
                None => tracing::info!(sink = %name, "spool {}: empty", dir.display()),
            }
            queued.set(spool.pending_count() as i64);
            let spooled = Arc::new(Spooled {
                spool: Mutex::new(spool),
                cache: Mutex::new(VecDeque::new()),
                unspooled: Mutex::new(VecDeque::new()),
                wake: Notify::new(),
                spooler_done: AtomicBool::new(false),
            });
            let spooler = Spooler {
                name: name.clone(),
                queue: queue.clone(),
                s: spooled.clone(),
                cache_limit: config.queue_batches,
                cpu: cpu.clone(),
                queued: queued.clone(),
                dropped: dropped.clone(),
                unspooled: metrics.unspooled.get_or_create(&labels).clone(),
            };
            let task = tokio::spawn(spooler.run());
            let backlog =
                FromSpool { name: name.clone(), queue: queue.clone(), s: spooled.clone(), cpu, queued, dropped };
            let sender = tokio::spawn(delivery.run(backlog));
            handles.push(Handle { name, points, queue, task, sender: Some((spooled, sender)), governor });
        }
        Ok(SinkManager { handles, config, metrics })
    }

    /// Whether no sink is configured: the store is then a batch's only reader.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// What heapster's bill reads of each sink at a round's end: points taken, batches waiting, spool bytes.
    pub fn readings(&self) -> impl Fn() -> Vec<heapster_cost::SinkReading> + Send + Sync + 'static {
        let sinks: Vec<_> = self
            .handles
            .iter()
            .map(|h| {
                let queued = self.metrics.queued.get_or_create(&self_metrics::sink(&h.name)).clone();
                (h.name.clone(), h.points.clone(), queued, h.sender.as_ref().map(|(s, _)| s.clone()))
            })
            .collect();
        move || {
            sinks
                .iter()
                .map(|(name, points, queued, spooled)| heapster_cost::SinkReading {
                    name: name.clone(),
                    points: points.load(Ordering::Relaxed),
                    queued_batches: queued.get().max(0) as u64,
                    spooled: spooled.is_some(),
                    spool_bytes: spooled.as_ref().map(|s| lock(&s.spool).bytes()),
                })
                .collect()
        }
    }

    /// What `/api/v1/cardinality` shows: every sink with governor options. `None` when no sink has any.
    pub fn cardinality(&self) -> Option<Arc<dyn heapster_model::cardinality::CardinalityReport>> {
        let views: Vec<_> = self.handles.iter().filter_map(|h| h.governor.as_ref()).map(|g| lock(g).view()).collect();
        (!views.is_empty()).then(|| Arc::new(Governors(views)) as _)
    }

    /// Hands `batch` to every sink without waiting for any of them; a governed sink gets it as its governor cut it.
    pub fn push(&self, batch: Arc<DataBatch>) {
        for h in &self.handles {
            let labels = self_metrics::sink(&h.name);
            let batch = match &h.governor {
                Some(g) => {
                    // The cut is the sink's work: its bill, not the pipeline's.
                    let _cpu = Stage::enter(&heapster_cost::sink_stage(&h.name));
                    lock(g).govern(&batch)
                }
                None => batch.clone(),
            };
            let dropped = {
                let mut q = lock(&h.queue.batches);
                q.push_back(batch);
                let dropped = if q.len() > self.config.queue_batches { q.pop_front() } else { None };
                if h.sender.is_none() {
                    self.metrics.queued.get_or_create(&labels).set(q.len() as i64);
                }
                dropped
            };
            if let Some(d) = dropped {
                self.metrics.dropped.get_or_create(&labels).inc();
                let why =
                    if h.sender.is_some() { "the spool's disk is too slow" } else { "the sink is too slow or down" };
                tracing::warn!(
                    sink = %h.name,
                    "sink queue full ({} batches): dropped the batch of timestamp {} ({}, {} points); {why}",
                    self.config.queue_batches,
                    d.timestamp,
                    rfc3339(d.timestamp),
                    d.point_count()
                );
            }
            h.queue.notify.notify_one();
        }
    }

    /// Lets every sink write what it has queued, for at most `deadline`, then stops the tasks. With a spool,
    /// what was not written stays on disk for the next start.
    pub async fn shutdown(self, deadline: Duration) {
        let until = Instant::now() + deadline;
        for h in &self.handles {
            h.queue.closed.store(true, Ordering::SeqCst);
            h.queue.notify.notify_one();
            if let Some((s, _)) = &h.sender {
                s.wake.notify_one();
            }
        }
        for h in self.handles {
            let left = until.saturating_duration_since(Instant::now());
            let abort = h.task.abort_handle();
            if tokio::time::timeout(left, h.task).await.is_err() {
                abort.abort();
                let lost = lock(&h.queue.batches).len();
                let what = if h.sender.is_some() { "spooled" } else { "written" };
                tracing::warn!(sink = %h.name, "shutdown deadline passed: {lost} queued batches not {what}");
            }
            let Some((spooled, sender)) = h.sender else { continue };
            spooled.spooler_done.store(true, Ordering::SeqCst);
            spooled.wake.notify_one();
            let left = until.saturating_duration_since(Instant::now());
            let abort = sender.abort_handle();
            if tokio::time::timeout(left, sender).await.is_err() {
                abort.abort();
                let spool = lock(&spooled.spool);
                tracing::info!(
                    sink = %h.name,
                    "shutdown deadline passed: {} batches stay in the spool {} for the next start",
                    spool.pending_count(),
                    spool.dir().display()
                );
            }
        }
    }
}

/// First wait before retrying a failed batch; doubled per failure up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(500);
/// Longest wait between retries, so a server that comes back is written to within seconds.
const RETRY_MAX: Duration = Duration::from_secs(10);

/// Where a sink's delivery loop takes its batches from, oldest first: the in-memory queue ([`Memory`]) or the
/// spool ([`FromSpool`]). The loop itself (export, retry with backoff, shutdown) is [`Delivery::run`], once.
trait Backlog: Send {
    /// What identifies a batch handed out by [`Backlog::next`] when it is done with or kept.
    type Ticket: Send;
    /// The oldest batch not yet delivered, waiting for one; `None` once the manager is closed and nothing is left.
    async fn next(&mut self) -> Option<(Self::Ticket, Arc<DataBatch>)>;
    /// The sink took the batch, or rejected it (sending it again would be rejected again): forget it.
    async fn done(&mut self, ticket: Self::Ticket);
    /// The export failed and will be tried again: the batch stays first. False when it was dropped instead.
    fn keep(&mut self, ticket: Self::Ticket, batch: Arc<DataBatch>) -> bool;
    fn queue(&self) -> &Queue;
    /// What cuts a backoff short to re-check the queue (a new batch, shutdown).
    fn wake(&self) -> &Notify;
    /// Says what stays unwritten when the manager stops while the sink fails; `in_hand` when the batch that
    /// failed last was not kept.
    fn give_up(&self, in_hand: bool);
}

/// How one export ended, as the loop acts on it.
enum Outcome {
    Written,
    /// Refused for good: dropped at once.
    Rejected,
    /// Worth another try (an error worth retrying, or the deadline passed).
    Failed,
}

/// One sink's delivery: exports the oldest batch of its backlog, one at a time and in order, retries it with
/// backoff while the sink fails, and stops when the manager closes.
struct Delivery {
    sink: Arc<dyn DataSink>,
    labels: SinkLabels,
    timeout: Duration,
    metrics: SinkMetrics,
    /// Points of the batches the sink took.
    points: Arc<AtomicU64>,
    /// The sink's stage in heapster's bill: its exports' CPU (encoding, compressing, sending) and its spool's.
    cpu: Stage,
}

impl Delivery {
    async fn run(self, mut backlog: impl Backlog) {
        let mut backoff = RETRY_MIN;
        while let Some((ticket, batch)) = backlog.next().await {
            match self.attempt(&batch).await {
                Outcome::Written => {
                    backlog.done(ticket).await;
                    backoff = RETRY_MIN;
                }
                Outcome::Rejected => backlog.done(ticket).await,
                Outcome::Failed => {
                    if backlog.queue().closed() {
                        // Shutting down and the sink is failing: waiting out backoffs would only delay the exit.
                        backlog.give_up(true);
                        return;
                    }
                    if backlog.keep(ticket, batch) {
                        self.metrics.retries.get_or_create(&self.labels).inc();
                    }
                    back_off(&mut backoff, backlog.queue(), backlog.wake()).await;
                    if backlog.queue().closed() {
                        backlog.give_up(false);
                        return;
                    }
                }
            }
        }
    }

    /// One export within its deadline, timed and counted (failures by kind: `transient`, `permanent`, `timeout`)
    /// and logged.
    async fn attempt(&self, batch: &Arc<DataBatch>) -> Outcome {
        let (name, timeout) = (&self.labels.sink, self.timeout);
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, self.sink.export(batch.clone()).costed(&self.cpu)).await;
        self.metrics.exported_in(&self.labels, started.elapsed());
        let (outcome, kind) = match result {
            Ok(Ok(())) => {
                self.metrics.exported.get_or_create(&self.labels).inc();
                self.points.fetch_add(batch.point_count() as u64, Ordering::Relaxed);
                return Outcome::Written;
            }
            Ok(Err(SinkError::Retry(e))) => {
                tracing::warn!(sink = %name, "export of batch {} failed: {e}", batch.timestamp);
                (Outcome::Failed, "transient")
            }
            Ok(Err(SinkError::Reject(e))) => {
                tracing::error!(sink = %name, "export of batch {} rejected: {e}", batch.timestamp);
                (Outcome::Rejected, "permanent")
            }
            Err(_) => {
                tracing::warn!(sink = %name, "export of batch {} took longer than {timeout:?}: abandoned", batch.timestamp);
                (Outcome::Failed, "timeout")
            }
        };
        self.metrics.errors.get_or_create(&SinkErrorLabels { sink: name.clone(), kind: kind.into() }).inc();
        outcome
    }
}

/// Waits `backoff` before a retry (cut short when the manager closes; a `wake` only re-checks), then doubles it up
/// to [`RETRY_MAX`].
async fn back_off(backoff: &mut Duration, queue: &Queue, wake: &Notify) {
    let until = tokio::time::Instant::now() + *backoff;
    *backoff = (*backoff * 2).min(RETRY_MAX);
    while tokio::time::Instant::now() < until && !queue.closed() {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => {}
            _ = wake.notified() => {}
        }
    }
}

/// The backlog without a spool: the batches [`SinkManager::push`] queued, at most `limit`.
struct Memory {
    queue: Arc<Queue>,
    limit: usize,
    queued: Gauge,
    dropped: Counter,
    name: String,
}

impl Backlog for Memory {
    type Ticket = ();

    async fn next(&mut self) -> Option<((), Arc<DataBatch>)> {
        loop {
            let next = {
                let mut q = lock(&self.queue.batches);
                let next = q.pop_front();
                self.queued.set(q.len() as i64);
                next
            };
            match next {
                Some(batch) => return Some(((), batch)),
                None if self.queue.closed() => return None,
                None => self.queue.notify.notified().await,
            }
        }
    }

    async fn done(&mut self, _: ()) {}

    fn keep(&mut self, _: (), batch: Arc<DataBatch>) -> bool {
        // Back at the head, unless newer batches filled the queue meanwhile: then it is the oldest, and goes.
        {
            let mut q = lock(&self.queue.batches);
            if q.len() < self.limit {
                q.push_front(batch);
                self.queued.set(q.len() as i64);
                return true;
            }
        }
        self.dropped.inc();
        tracing::warn!(
            sink = %self.name,
            "sink queue full ({} batches) while retrying: dropped the batch of timestamp {} ({} points)",
            self.limit,
            batch.timestamp,
            batch.point_count()
        );
        false
    }

    fn queue(&self) -> &Queue {
        &self.queue
    }

    fn wake(&self) -> &Notify {
        &self.queue.notify
    }

    fn give_up(&self, in_hand: bool) {
        let lost = lock(&self.queue.batches).len() + usize::from(in_hand);
        tracing::warn!(sink = %self.name, "shutting down while the sink fails: {lost} batches not written");
    }
}

/// A spooled sink's first task: appends each pushed batch to the spool (off the async threads), keeps the newest
/// `cache_limit` in memory for the sender, and counts and logs what the spool's bound drops. A batch the spool
/// cannot store (its disk full even after the oldest segments were dropped) is kept in memory only, at most
/// `cache_limit` of them: a full disk must not stop delivery to a sink that is up.
struct Spooler {
    name: String,
    queue: Arc<Queue>,
    s: Arc<Spooled>,
    cache_limit: usize,
    /// The sink's stage in heapster's bill: writing its spool is part of what the sink costs.
    cpu: Stage,
    queued: Gauge,
    dropped: Counter,
    unspooled: Counter,
}

impl Spooler {
    async fn run(self) {
        let Spooler { name, queue, s, cache_limit, cpu, queued, dropped, unspooled } = self;
        // Whether the last append failed: the failure is logged once, not once per batch, and so is the recovery.
        let mut failing = false;
        let mut ids = 0u64;
        loop {
            let next = lock(&queue.batches).pop_front();
            let Some(batch) = next else {
                if queue.closed() {
                    s.spooler_done.store(true, Ordering::SeqCst);
                    s.wake.notify_one();
                    return;
                }
                queue.notify.notified().await;
                continue;
            };
            let (s2, b2, q2, cpu2) = (s.clone(), batch.clone(), queued.clone(), cpu.clone());
            let appended = tokio::task::spawn_blocking(move || {
                let _cpu = cpu2.start();
                let mut spool = lock(&s2.spool);
                let (appended, spool_dropped) = spool.append(&b2);
                // Under the lock, so that the sender's newer count is never overwritten by this one.
                q2.set(s2.pending(&spool));
                (appended, spool_dropped, spool.last_seq(), spool.max_bytes(), spool.dir().to_owned())
            })
            .await;
            let (appended, spool_dropped, last_seq, max_bytes, dir) = match appended {
                Ok(a) => a,
                Err(e) => {
                    dropped.inc();
                    tracing::error!(sink = %name, "spool writer failed on the batch of {}: {e}", rfc3339(batch.timestamp));
                    continue;
                }
            };
            let disk_full = appended.is_err();
            for d in spool_dropped {
                dropped.inc_by(d.batches);
                let why = if disk_full {
                    format!("its disk ({}) is full", dir.display())
                } else {
                    format!("it holds {max_bytes} bytes, --sink_buffer_max_bytes")
                };
                tracing::warn!(
                    sink = %name,
                    "spool full ({why}): dropped the oldest batches not yet written, {d}; the sink has been failing \
                     that long"
                );
            }
            match appended {
                Ok(seq) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!(sink = %name, "spool {}: writable again, batches are spooled again", dir.display());
                    }
                    let mut cache = lock(&s.cache);
                    cache.push_back((seq, batch));
                    while cache.len() > cache_limit {
                        cache.pop_front();
                    }
                }
                Err(e) => {
                    unspooled.inc();
                    if !std::mem::replace(&mut failing, true) {
                        tracing::error!(
                            sink = %name,
                            "cannot write to the spool {}: {e}: sending batches from memory only (at most {cache_limit} \
                             kept; lost if heapster stops before the sink takes them); free space on that \
                             filesystem or point --sink_buffer_dir elsewhere",
                            dir.display()
                        );
                    }
                    ids += 1;
                    let over = {
                        let mut mem = lock(&s.unspooled);
                        mem.push_back(Unspooled { id: ids, after: last_seq, batch });
                        if mem.len() > cache_limit { mem.pop_front() } else { None }
                    };
                    if let Some(d) = over {
                        dropped.inc();
                        tracing::warn!(
                            sink = %name,
                            "sink queue full ({cache_limit} batches, the spool's disk full too): dropped the batch of \
                             {} ({} points)",
                            rfc3339(d.batch.timestamp),
                            d.batch.point_count()
                        );
                    }
                    queued.set(s.pending(&lock(&s.spool)));
                }
            }
            s.wake.notify_one();
        }
    }
}

/// What the sender of a spooled sink is sending: a spooled batch by its sequence number, or one kept in memory
/// only (see [`Spooled::unspooled`]) by its id.
enum Ticket {
    Spooled(u64),
    Memory(u64),
}

/// The backlog of a spooled sink: the oldest unacknowledged batch (from memory while it is still there, else from
/// disk), acknowledged once taken or rejected, with the batches the spool could not store in their place in the
/// order. The spool, not memory, bounds an outage.
struct FromSpool {
    name: String,
    queue: Arc<Queue>,
    s: Arc<Spooled>,
    /// The sink's stage in heapster's bill: reading back and acknowledging its spool.
    cpu: Stage,
    queued: Gauge,
    dropped: Counter,
}

impl Backlog for FromSpool {
    type Ticket = Ticket;

    async fn next(&mut self) -> Option<(Ticket, Arc<DataBatch>)> {
        let s = self.s.clone();
        loop {
            let next = lock(&s.spool).first_pending();
            let memory = lock(&s.unspooled)
                .front()
                .filter(|u| next.is_none_or(|seq| u.after < seq))
                .map(|u| (u.id, u.batch.clone()));
            if let Some((id, b)) = memory {
                return Some((Ticket::Memory(id), b));
            }
            let Some(seq) = next else {
                if self.queue.closed() && s.spooler_done.load(Ordering::SeqCst) {
                    return None;
                }
                s.wake.notified().await;
                continue;
            };
            let cached = {
                let mut cache = lock(&s.cache);
                while cache.front().is_some_and(|(q, _)| *q < seq) {
                    cache.pop_front();
                }
                cache.front().filter(|(q, _)| *q == seq).map(|(_, b)| b.clone())
            };
            if let Some(b) = cached {
                return Some((Ticket::Spooled(seq), b));
            }
            let (s2, cpu) = (s.clone(), self.cpu.clone());
            let read = tokio::task::spawn_blocking(move || {
                let _cpu = cpu.start();
                lock(&s2.spool).read(seq)
            });
            match read.await {
                Ok(Ok(b)) => return Some((Ticket::Spooled(seq), Arc::new(b))),
                // Dropped by the spool's bound meanwhile: counted there.
                Ok(Err(_)) if lock(&s.spool).first_pending() != Some(seq) => {}
                Ok(Err(e)) => {
                    self.dropped.inc();
                    tracing::error!(sink = %self.name, "spool: {e}: batch skipped");
                    self.done(Ticket::Spooled(seq)).await;
                }
                Err(e) => {
                    tracing::error!(sink = %self.name, "spool reader failed: {e}");
                    return None;
                }
            }
        }
    }

    /// Records that the sink is done with a batch: durably (off the async threads) for a spooled one.
    async fn done(&mut self, ticket: Ticket) {
        let seq = match ticket {
            Ticket::Spooled(seq) => seq,
            Ticket::Memory(id) => {
                lock(&self.s.unspooled).retain(|u| u.id != id);
                self.queued.set(self.s.pending(&lock(&self.s.spool)));
                return;
            }
        };
        let (s2, q2, cpu) = (self.s.clone(), self.queued.clone(), self.cpu.clone());
        let done = tokio::task::spawn_blocking(move || {
            let _cpu = cpu.start();
            let mut spool = lock(&s2.spool);
            let result = spool.ack(seq);
            q2.set(s2.pending(&spool));
            result
        })
        .await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(
                sink = %self.name,
                "spool: cannot record that batch {seq} was written ({e}): after a restart it may be sent again"
            ),
            Err(e) => tracing::warn!(sink = %self.name, "spool: recording batch {seq} as written failed: {e}"),
        }
    }

    /// Nothing to do: an unacknowledged batch stays the spool's first, an unspooled one the first in memory.
    fn keep(&mut self, _: Ticket, _: Arc<DataBatch>) -> bool {
        true
    }

    fn queue(&self) -> &Queue {
        &self.queue
    }

    fn wake(&self) -> &Notify {
        &self.s.wake
    }

    fn give_up(&self, _: bool) {
        let spool = lock(&self.s.spool);
        let memory = lock(&self.s.unspooled).len();
        let lost = if memory > 0 {
            format!("; {memory} held in memory only (the spool's disk was full) are lost")
        } else {
            String::new()
        };
        tracing::info!(
            sink = %self.name,
            "shutting down while the sink fails: {} batches stay in the spool {} for the next start{lost}",
            spool.pending_count(),
            spool.dir().display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use prometheus_client::registry::Registry;

    fn memory(queue_batches: usize, export_timeout: Duration) -> SinkManagerConfig {
        SinkManagerConfig { queue_batches, export_timeout, spool: None }
    }

    /// Self-metrics on a registry of the test's own.
    fn metrics() -> SinkMetrics {
        SinkMetrics::register(&mut Registry::default())
    }

    /// Records the timestamps it exported after sleeping `delay`; fails with `failure` while one is set.
    struct TestSink {
        name: &'static str,
        delay: Duration,
        failure: Mutex<Option<SinkError>>,
        seen: Mutex<Vec<i64>>,
    }

    impl TestSink {
        /// Down (failing with an error worth retrying) or up.
        fn new(name: &'static str, down: bool) -> Arc<TestSink> {
            Self::with(name, Duration::ZERO, down.then(|| SinkError::Retry("down".into())))
        }

        fn with(name: &'static str, delay: Duration, failure: Option<SinkError>) -> Arc<TestSink> {
            Arc::new(TestSink { name, delay, failure: Mutex::new(failure), seen: Mutex::default() })
        }

        fn set_up(&self) {
            *self.failure.lock().unwrap() = None;
        }

        fn seen(&self) -> Vec<i64> {
            self.seen.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl DataSink for TestSink {
        fn name(&self) -> String {
            self.name.into()
        }
        async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError> {
            tokio::time::sleep(self.delay).await;
            if let Some(e) = self.failure.lock().unwrap().clone() {
                return Err(e);
            }
            self.seen.lock().unwrap().push(batch.timestamp);
            Ok(())
        }
    }

    fn batch(ts: i64) -> Arc<DataBatch> {
        Arc::new(DataBatch { timestamp: ts, ..Default::default() })
    }

    fn count(family: &prometheus_client::metrics::family::Family<SinkLabels, Counter>, sink: &str) -> u64 {
        family.get_or_create(&self_metrics::sink(sink)).get()
    }

    #[tokio::test]
    async fn a_slow_sink_drops_its_oldest_batches_and_does_not_hold_up_a_fast_one() {
        let fast = TestSink::new("fast", false);
        let slow = TestSink::with("slow", Duration::from_millis(200), None);
        let m = metrics();
        let manager =
            SinkManager::start(vec![fast.clone(), slow.clone()], memory(2, Duration::from_secs(5)), m.clone());
        for ts in 1..=6 {
            manager.push(batch(ts));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        manager.shutdown(Duration::from_secs(5)).await;
        assert_eq!(fast.seen(), vec![1, 2, 3, 4, 5, 6]);
        let slow_seen = slow.seen();
        assert_eq!(slow_seen.first(), Some(&1), "the batch being exported is finished");
        assert_eq!(&slow_seen[slow_seen.len() - 2..], &[5, 6], "newest batches are kept: {slow_seen:?}");
        assert!(slow_seen.len() < 6, "some were dropped: {slow_seen:?}");
        assert_eq!(count(&m.dropped, "slow") as usize, 6 - slow_seen.len());
        assert_eq!(count(&m.dropped, "fast"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_shorter_than_the_queue_loses_nothing_and_keeps_order() {
        let sink = TestSink::new("flaky", true);
        let m = metrics();
        let manager = SinkManager::start(vec![sink.clone()], memory(8, Duration::from_secs(5)), m.clone());
        for ts in 1..=5 {
            manager.push(batch(ts));
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        assert!(sink.seen().is_empty());
        sink.set_up();
        for ts in 6..=7 {
            manager.push(batch(ts));
            tokio::time::sleep(Duration::from_secs(11)).await;
        }
        manager.shutdown(Duration::from_secs(5)).await;
        assert_eq!(sink.seen(), vec![1, 2, 3, 4, 5, 6, 7]);
        assert!(count(&m.retries, "flaky") >= 3);
        assert_eq!(count(&m.dropped, "flaky"), 0);
    }

    #[tokio::test]
    async fn an_export_past_its_deadline_is_counted_as_a_timeout() {
        let stuck = TestSink::with("stuck", Duration::from_secs(60), None);
        let m = metrics();
        let manager = SinkManager::start(vec![stuck.clone()], memory(2, Duration::from_millis(50)), m.clone());
        manager.push(batch(1));
        tokio::time::sleep(Duration::from_millis(200)).await;
        manager.shutdown(Duration::from_secs(1)).await;
        let timeouts = m.errors.get_or_create(&SinkErrorLabels { sink: "stuck".into(), kind: "timeout".into() }).get();
        assert_eq!(timeouts, 1);
        assert!(stuck.seen().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_rejected_batch_is_dropped_at_once_without_retries() {
        let m = metrics();
        let refusing = TestSink::with("refusing", Duration::ZERO, Some(SinkError::Reject("bad data".into())));
        let manager = SinkManager::start(vec![refusing], memory(8, Duration::from_secs(5)), m.clone());
        for ts in 1..=3 {
            manager.push(batch(ts));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        manager.shutdown(Duration::from_secs(1)).await;
        let rejected =
            m.errors.get_or_create(&SinkErrorLabels { sink: "refusing".into(), kind: "permanent".into() }).get();
        assert_eq!(rejected, 3);
        assert_eq!(count(&m.retries, "refusing"), 0);
    }

    fn spooled(dir: &std::path::Path, max_bytes: u64) -> SinkManagerConfig {
        SinkManagerConfig {
            queue_batches: 2,
            export_timeout: Duration::from_secs(5),
            spool: Some(SpoolConfig { dir: dir.to_owned(), max_bytes }),
        }
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("heapster-manager-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    async fn wait_until(what: &str, ok: impl Fn() -> bool) {
        // Generous: every batch costs two fsyncs, which a disk busy with builds can make slow.
        let until = Instant::now() + Duration::from_secs(60);
        while !ok() {
            assert!(Instant::now() < until, "{what}: not within 60 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_spooled_sink_loses_nothing_across_an_outage_longer_than_memory_and_a_restart() {
        let dir = temp_dir("restart");
        let m = metrics();
        // Down for six batches, three times what memory holds; then heapster stops.
        let down = TestSink::new("spooled", true);
        let manager = SinkManager::try_start(vec![down.clone()], spooled(&dir, 1 << 20), m.clone()).unwrap();
        for ts in 1..=6 {
            manager.push(batch(ts));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        manager.shutdown(Duration::from_secs(2)).await;
        assert!(down.seen().is_empty());

        // The next run, with the sink back: the six first, in order, then the new ones.
        let up = TestSink::new("spooled", false);
        let manager = SinkManager::try_start(vec![up.clone()], spooled(&dir, 1 << 20), m.clone()).unwrap();
        manager.push(batch(7));
        manager.push(batch(8));
        wait_until("all eight written", || up.seen().len() >= 8).await;
        manager.shutdown(Duration::from_secs(2)).await;
        assert_eq!(up.seen(), (1..=8).collect::<Vec<_>>());
        assert_eq!(count(&m.dropped, "spooled"), 0);
        assert_eq!(m.queued.get_or_create(&self_metrics::sink("spooled")).get(), 0);

        // And a third run sends none of them again.
        let again = TestSink::new("spooled", false);
        let manager = SinkManager::try_start(vec![again.clone()], spooled(&dir, 1 << 20), m.clone()).unwrap();
        manager.push(batch(9));
        wait_until("the new batch written", || !again.seen().is_empty()).await;
        manager.shutdown(Duration::from_secs(2)).await;
        assert_eq!(again.seen(), vec![9]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_full_spool_drops_its_oldest_batches_and_counts_them() {
        let dir = temp_dir("bound");
        let mut one = Vec::new();
        crate::spool::codec::encode(&batch(1), &mut one);
        // Each record in a segment of its own (the bound over 8 is less than one).
        let record = (crate::spool::record::encode(1, 1, &one).len() + crate::spool::record::SEGMENT_HEADER) as u64;
        let m = metrics();
        let down = TestSink::new("bounded", true);
        let manager = SinkManager::try_start(vec![down.clone()], spooled(&dir, record * 3), m.clone()).unwrap();
        for ts in 1..=10 {
            manager.push(batch(ts));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        manager.shutdown(Duration::from_secs(2)).await;
        assert_eq!(count(&m.dropped, "bounded"), 7);

        let up = TestSink::new("bounded", false);
        let manager = SinkManager::try_start(vec![up.clone()], spooled(&dir, record * 3), m.clone()).unwrap();
        wait_until("the kept batches written", || up.seen().len() >= 3).await;
        manager.shutdown(Duration::from_secs(2)).await;
        assert_eq!(up.seen(), vec![8, 9, 10], "the newest are kept, in order");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn damage_in_the_spool_is_counted_and_the_rest_sent() {
        let dir = temp_dir("damaged");
        let spool_dir = sink_dir(&dir, "damaged");
        let mut spool = Spool::open(&spool_dir, "damaged", 1 << 20).unwrap();
        for ts in 1..=5 {
            spool.append(&batch(ts)).0.unwrap();
        }
        drop(spool);
        let segment = std::fs::read_dir(&spool_dir).unwrap().next().unwrap().unwrap().path();
        let mut bytes = std::fs::read(&segment).unwrap();
        let at = bytes.len() - 3;
        bytes[at] ^= 0x40;
        std::fs::write(&segment, bytes).unwrap();
        std::fs::write(spool_dir.join("ack"), "77\n").unwrap();

        let (m, up) = (metrics(), TestSink::new("damaged", false));
        let manager = SinkManager::try_start(vec![up.clone()], spooled(&dir, 1 << 20), m.clone()).unwrap();
        wait_until("the kept batches written", || up.seen().len() >= 4).await;
        manager.shutdown(Duration::from_secs(2)).await;
        assert_eq!(up.seen(), vec![1, 2, 3, 4], "the last batch was damaged; the acknowledgement ahead is ignored");
        assert_eq!(count(&m.dropped, "damaged"), 1);
        let damaged = |cause: &str| {
            m.spool_damaged.get_or_create(&SinkCauseLabels { sink: "damaged".into(), cause: cause.into() }).get()
        };
        assert_eq!((damaged("corrupt"), damaged("ack_ahead")), (1, 4));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn two_sinks_of_the_same_name_get_a_spool_each() {
        let dir = temp_dir("twins");
        let (a, b) = (TestSink::new("twin", true), TestSink::new("twin", true));
        let manager = SinkManager::try_start(vec![a.clone(), b.clone()], spooled(&dir, 1 << 20), metrics()).unwrap();
        manager.push(batch(1));
        tokio::time::sleep(Duration::from_millis(50)).await;
        manager.shutdown(Duration::from_secs(2)).await;
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        let (a, b) = (TestSink::new("twin", false), TestSink::new("twin", false));
        let manager = SinkManager::try_start(vec![a.clone(), b.clone()], spooled(&dir, 1 << 20), metrics()).unwrap();
        wait_until("both written", || a.seen().len() == 1 && b.seen().len() == 1).await;
        manager.shutdown(Duration::from_secs(2)).await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_spool_that_cannot_be_opened_is_an_error_at_start() {
        let file = temp_dir("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let sink = TestSink::new("unopenable", false);
        let e = SinkManager::try_start(vec![sink], spooled(&file, 1 << 20), metrics()).err().expect("an error");
        assert!(e.contains("--sink_buffer_dir") && e.contains("unopenable"), "{e}");
        let _ = std::fs::remove_file(&file);
    }
}
