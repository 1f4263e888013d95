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
//! with its time range.

use crate::metrics::{self, SinkErrorLabels, SinkLabels};
use crate::spool::{Spool, SpoolConfig, rfc3339, sink_dir};
use crate::{DataSink, SinkError};
use heapster_model::DataBatch;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
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

struct Queue {
    batches: Mutex<VecDeque<Arc<DataBatch>>>,
    /// Wakes the sink's task when a batch arrives or on shutdown.
    notify: Notify,
    closed: AtomicBool,
}

/// What a spooled sink's two tasks share.
struct Spooled {
    spool: Mutex<Spool>,
    /// The newest spooled batches with their sequence numbers, so that a sink that keeps up is sent from memory.
    cache: Mutex<VecDeque<(u64, Arc<DataBatch>)>>,
    /// Wakes the sender when a batch was spooled or the spooler is done.
    wake: Notify,
    /// Set when the spooler has written everything pushed before shutdown.
    spooler_done: AtomicBool,
}

struct Handle {
    name: String,
    queue: Arc<Queue>,
    /// The sink's task; with a spool, the spooler.
    task: JoinHandle<()>,
    /// With a spool: the shared state and the sender task.
    sender: Option<(Arc<Spooled>, JoinHandle<()>)>,
}

/// Owns one task per sink (two with a spool). Dropping it without [`SinkManager::shutdown`] abandons queued
/// batches (spooled ones stay on disk).
pub struct SinkManager {
    handles: Vec<Handle>,
    config: SinkManagerConfig,
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
    pub fn start(sinks: Vec<Arc<dyn DataSink>>, config: SinkManagerConfig) -> Self {
        Self::try_start(sinks, config).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts one task per sink (two with a spool), opening each sink's spool and scheduling what an earlier run
    /// left unsent in it before anything new. Must be called inside a tokio runtime.
    pub fn try_start(sinks: Vec<Arc<dyn DataSink>>, config: SinkManagerConfig) -> Result<Self, String> {
        let mut handles: Vec<Handle> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for sink in sinks {
            let name = sink.name();
            let queue = Arc::new(Queue {
                batches: Mutex::new(VecDeque::new()),
                notify: Notify::new(),
                closed: Default::default(),
            });
            let Some(spool_config) = &config.spool else {
                let task = tokio::spawn(run(sink, queue.clone(), config.export_timeout, config.queue_batches));
                handles.push(Handle { name, queue, task, sender: None });
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
            let labels = metrics::sink(&name);
            if spool.torn() > 0 {
                metrics::DROPPED.get_or_create(&labels).inc_by(spool.torn());
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
            metrics::QUEUED.get_or_create(&labels).set(spool.pending_count() as i64);
            let spooled = Arc::new(Spooled {
                spool: Mutex::new(spool),
                cache: Mutex::new(VecDeque::new()),
                wake: Notify::new(),
                spooler_done: AtomicBool::new(false),
            });
            let task = tokio::spawn(spooler(name.clone(), queue.clone(), spooled.clone(), config.queue_batches));
            let sender = tokio::spawn(send_spooled(sink, queue.clone(), spooled.clone(), config.export_timeout));
            handles.push(Handle { name, queue, task, sender: Some((spooled, sender)) });
        }
        Ok(SinkManager { handles, config })
    }

    /// Hands `batch` to every sink without waiting for any of them.
    pub fn push(&self, batch: Arc<DataBatch>) {
        for h in &self.handles {
            let dropped = {
                let mut q = h.queue.batches.lock().unwrap();
                q.push_back(batch.clone());
                let dropped = if q.len() > self.config.queue_batches { q.pop_front() } else { None };
                if h.sender.is_none() {
                    metrics::QUEUED.get_or_create(&metrics::sink(&h.name)).set(q.len() as i64);
                }
                dropped
            };
            if let Some(d) = dropped {
                metrics::DROPPED.get_or_create(&metrics::sink(&h.name)).inc();
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
                let lost = h.queue.batches.lock().unwrap().len();
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

async fn run(sink: Arc<dyn DataSink>, queue: Arc<Queue>, timeout: Duration, limit: usize) {
    let name = sink.name();
    let labels = metrics::sink(&name);
    let mut backoff = RETRY_MIN;
    loop {
        let next = queue.batches.lock().unwrap().pop_front();
        let Some(batch) = next else {
            if queue.closed.load(Ordering::SeqCst) {
                return;
            }
            queue.notify.notified().await;
            continue;
        };
        metrics::QUEUED.get_or_create(&labels).set(queue.batches.lock().unwrap().len() as i64);
        let Some(kind) = attempt(sink.as_ref(), &name, &labels, &batch, timeout).await else {
            backoff = RETRY_MIN;
            continue;
        };
        if kind == "permanent" {
            continue;
        }
        if queue.closed.load(Ordering::SeqCst) {
            // Shutting down and the sink is failing: waiting out backoffs would only delay the exit.
            let lost = queue.batches.lock().unwrap().len() + 1;
            tracing::warn!(sink = %name, "shutting down while the sink fails: {lost} batches not written");
            return;
        }
        // Back at the head, unless newer batches filled the queue meanwhile: then it is the oldest, and goes.
        let dropped = {
            let mut q = queue.batches.lock().unwrap();
            if q.len() >= limit {
                true
            } else {
                q.push_front(batch.clone());
                metrics::QUEUED.get_or_create(&labels).set(q.len() as i64);
                false
            }
        };
        if dropped {
            metrics::DROPPED.get_or_create(&labels).inc();
            tracing::warn!(
                sink = %name,
                "sink queue full ({limit} batches) while retrying: dropped the batch of timestamp {} ({} points)",
                batch.timestamp,
                batch.point_count()
            );
        } else {
            metrics::RETRIES.get_or_create(&labels).inc();
        }
        back_off(&mut backoff, &queue.closed, &queue.notify).await;
        if queue.closed.load(Ordering::SeqCst) {
            let lost = queue.batches.lock().unwrap().len();
            tracing::warn!(sink = %name, "shutting down while the sink fails: {lost} batches not written");
            return;
        }
    }
}

/// One export within its deadline, timed and counted: `None` when the sink took the batch, else the kind of failure
/// (`transient`, `permanent`, `timeout`), logged.
async fn attempt(
    sink: &dyn DataSink,
    name: &str,
    labels: &SinkLabels,
    batch: &Arc<DataBatch>,
    timeout: Duration,
) -> Option<&'static str> {
    let started = Instant::now();
    let result = tokio::time::timeout(timeout, sink.export(batch.clone())).await;
    metrics::EXPORT_SECONDS.get_or_create(labels).observe(started.elapsed().as_secs_f64());
    let kind = match result {
        Ok(Ok(())) => {
            metrics::EXPORTED.get_or_create(labels).inc();
            return None;
        }
        Ok(Err(SinkError::Transient(e))) => {
            tracing::warn!(sink = %name, "export of batch {} failed: {e}", batch.timestamp);
            "transient"
        }
        Ok(Err(SinkError::Permanent(e))) => {
            tracing::error!(sink = %name, "export of batch {} rejected: {e}", batch.timestamp);
            "permanent"
        }
        Err(_) => {
            tracing::warn!(sink = %name, "export of batch {} took longer than {timeout:?}: abandoned", batch.timestamp);
            "timeout"
        }
    };
    metrics::ERRORS.get_or_create(&SinkErrorLabels { sink: name.to_owned(), kind: kind.into() }).inc();
    Some(kind)
}

/// A spooled sink's first task: appends each pushed batch to the spool (off the async threads), keeps the newest
/// `cache_limit` in memory for the sender, and counts and logs what the spool's bound drops.
async fn spooler(name: String, queue: Arc<Queue>, s: Arc<Spooled>, cache_limit: usize) {
    let labels = metrics::sink(&name);
    loop {
        let next = lock(&queue.batches).pop_front();
        let Some(batch) = next else {
            if queue.closed.load(Ordering::SeqCst) {
                s.spooler_done.store(true, Ordering::SeqCst);
                s.wake.notify_one();
                return;
            }
            queue.notify.notified().await;
            continue;
        };
        let (s2, b2, l2) = (s.clone(), batch.clone(), labels.clone());
        let appended = tokio::task::spawn_blocking(move || {
            let mut spool = lock(&s2.spool);
            let appended = spool.append(&b2);
            // Under the lock, so that the sender's newer count is never overwritten by this one.
            metrics::QUEUED.get_or_create(&l2).set(spool.pending_count() as i64);
            appended.map(|(seq, dropped)| (seq, dropped, spool.max_bytes()))
        })
        .await;
        match appended {
            Ok(Ok((seq, dropped, max_bytes))) => {
                for d in dropped {
                    metrics::DROPPED.get_or_create(&labels).inc_by(d.batches);
                    tracing::warn!(
                        sink = %name,
                        "spool full ({max_bytes} bytes): dropped the oldest batches not yet written, {d}; the sink \
                         has been failing that long"
                    );
                }
                let mut cache = lock(&s.cache);
                cache.push_back((seq, batch));
                while cache.len() > cache_limit {
                    cache.pop_front();
                }
                s.wake.notify_one();
            }
            Ok(Err(e)) => {
                metrics::DROPPED.get_or_create(&labels).inc();
                tracing::error!(
                    sink = %name,
                    "cannot write the batch of {} to the spool: {e}: the batch is lost",
                    rfc3339(batch.timestamp)
                );
            }
            Err(e) => {
                metrics::DROPPED.get_or_create(&labels).inc();
                tracing::error!(sink = %name, "spool writer failed on the batch of {}: {e}", rfc3339(batch.timestamp));
            }
        }
    }
}

/// A spooled sink's second task: sends the oldest unacknowledged batch, in order, one at a time; retries it with
/// backoff while the sink fails (the spool, not memory, bounds an outage); acknowledges it once taken or rejected.
async fn send_spooled(sink: Arc<dyn DataSink>, queue: Arc<Queue>, s: Arc<Spooled>, timeout: Duration) {
    let name = sink.name();
    let labels = metrics::sink(&name);
    let mut backoff = RETRY_MIN;
    loop {
        let next = lock(&s.spool).first_pending();
        let Some(seq) = next else {
            if queue.closed.load(Ordering::SeqCst) && s.spooler_done.load(Ordering::SeqCst) {
                return;
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
        let batch = match cached {
            Some(b) => b,
            None => {
                let s2 = s.clone();
                match tokio::task::spawn_blocking(move || lock(&s2.spool).read(seq)).await {
                    Ok(Ok(b)) => Arc::new(b),
                    Ok(Err(_)) if lock(&s.spool).first_pending() != Some(seq) => {
                        continue; // Dropped by the spool's bound meanwhile: counted there.
                    }
                    Ok(Err(e)) => {
                        metrics::DROPPED.get_or_create(&labels).inc();
                        tracing::error!(sink = %name, "spool: {e}: batch skipped");
                        acknowledge(&s, seq, &name, &labels).await;
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(sink = %name, "spool reader failed: {e}");
                        return;
                    }
                }
            }
        };
        let Some(kind) = attempt(sink.as_ref(), &name, &labels, &batch, timeout).await else {
            acknowledge(&s, seq, &name, &labels).await;
            backoff = RETRY_MIN;
            continue;
        };
        if kind == "permanent" {
            // Rejected: sending it again would be rejected again.
            acknowledge(&s, seq, &name, &labels).await;
            continue;
        }
        metrics::RETRIES.get_or_create(&labels).inc();
        back_off(&mut backoff, &queue.closed, &s.wake).await;
        if queue.closed.load(Ordering::SeqCst) {
            // The sink fails and heapster stops: the spool keeps the rest for the next start.
            let spool = lock(&s.spool);
            tracing::info!(
                sink = %name,
                "shutting down while the sink fails: {} batches stay in the spool {} for the next start",
                spool.pending_count(),
                spool.dir().display()
            );
            return;
        }
    }
}

/// Records that the sink took batch `seq` (durably, off the async threads).
async fn acknowledge(s: &Arc<Spooled>, seq: u64, name: &str, labels: &SinkLabels) {
    let (s2, l2) = (s.clone(), labels.clone());
    let done = tokio::task::spawn_blocking(move || {
        let mut spool = lock(&s2.spool);
        let result = spool.ack(seq);
        metrics::QUEUED.get_or_create(&l2).set(spool.pending_count() as i64);
        result
    })
    .await;
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(
            sink = %name,
            "spool: cannot record that batch {seq} was written ({e}): after a restart it may be sent again"
        ),
        Err(e) => tracing::warn!(sink = %name, "spool: recording batch {seq} as written failed: {e}"),
    }
}

/// Waits `backoff` before a retry (cut short when the manager closes; a `wake` only re-checks), then doubles it up
/// to [`RETRY_MAX`].
async fn back_off(backoff: &mut Duration, closed: &AtomicBool, wake: &tokio::sync::Notify) {
    let until = tokio::time::Instant::now() + *backoff;
    *backoff = (*backoff * 2).min(RETRY_MAX);
    while tokio::time::Instant::now() < until && !closed.load(Ordering::SeqCst) {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => {}
            _ = wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;

    fn memory(queue_batches: usize, export_timeout: Duration) -> SinkManagerConfig {
        SinkManagerConfig { queue_batches, export_timeout, spool: None }
    }

    /// Records the timestamps it exported; sleeps `delay` per export.
    struct Slow {
        name: &'static str,
        delay: Duration,
        seen: Mutex<Vec<i64>>,
    }

    #[async_trait]
    impl DataSink for Slow {
        fn name(&self) -> String {
            self.name.into()
        }
        async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError> {
            tokio::time::sleep(self.delay).await;
            self.seen.lock().unwrap().push(batch.timestamp);
            Ok(())
        }
    }

    fn batch(ts: i64) -> Arc<DataBatch> {
        Arc::new(DataBatch { timestamp: ts, ..Default::default() })
    }

    #[tokio::test]
    async fn a_slow_sink_drops_its_oldest_batches_and_does_not_hold_up_a_fast_one() {
        let fast = Arc::new(Slow { name: "fast-test", delay: Duration::ZERO, seen: Mutex::default() });
        let slow = Arc::new(Slow { name: "slow-test", delay: Duration::from_millis(200), seen: Mutex::default() });
        let cfg = memory(2, Duration::from_secs(5));
        let m = SinkManager::start(vec![fast.clone(), slow.clone()], cfg);
        for ts in 1..=6 {
            m.push(batch(ts));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        m.shutdown(Duration::from_secs(5)).await;
        assert_eq!(*fast.seen.lock().unwrap(), vec![1, 2, 3, 4, 5, 6]);
        let slow_seen = slow.seen.lock().unwrap().clone();
        assert_eq!(slow_seen.first(), Some(&1), "the batch being exported is finished");
        assert_eq!(&slow_seen[slow_seen.len() - 2..], &[5, 6], "newest batches are kept: {slow_seen:?}");
        assert!(slow_seen.len() < 6, "some were dropped: {slow_seen:?}");
        let dropped = metrics::DROPPED.get_or_create(&metrics::sink("slow-test")).get();
        assert_eq!(dropped as usize, 6 - slow_seen.len());
    }

    /// Fails with a transient error while `down` is set; records what it exported.
    struct Flaky {
        down: std::sync::atomic::AtomicBool,
        seen: Mutex<Vec<i64>>,
    }

    #[async_trait]
    impl DataSink for Flaky {
        fn name(&self) -> String {
            "flaky-test".into()
        }
        async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(SinkError::Transient("down".into()));
            }
            self.seen.lock().unwrap().push(batch.timestamp);
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_shorter_than_the_queue_loses_nothing_and_keeps_order() {
        let sink = Arc::new(Flaky { down: true.into(), seen: Mutex::default() });
        let cfg = memory(8, Duration::from_secs(5));
        let m = SinkManager::start(vec![sink.clone()], cfg);
        for ts in 1..=5 {
            m.push(batch(ts));
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        assert!(sink.seen.lock().unwrap().is_empty());
        sink.down.store(false, Ordering::SeqCst);
        for ts in 6..=7 {
            m.push(batch(ts));
            tokio::time::sleep(Duration::from_secs(11)).await;
        }
        m.shutdown(Duration::from_secs(5)).await;
        assert_eq!(*sink.seen.lock().unwrap(), vec![1, 2, 3, 4, 5, 6, 7]);
        assert!(metrics::RETRIES.get_or_create(&metrics::sink("flaky-test")).get() >= 3);
        assert_eq!(metrics::DROPPED.get_or_create(&metrics::sink("flaky-test")).get(), 0);
    }

    #[tokio::test]
    async fn an_export_past_its_deadline_is_counted_as_a_timeout() {
        let stuck = Arc::new(Slow { name: "stuck-test", delay: Duration::from_secs(60), seen: Mutex::default() });
        let cfg = memory(2, Duration::from_millis(50));
        let m = SinkManager::start(vec![stuck.clone()], cfg);
        m.push(batch(1));
        tokio::time::sleep(Duration::from_millis(200)).await;
        m.shutdown(Duration::from_secs(1)).await;
        let timeouts =
            metrics::ERRORS.get_or_create(&SinkErrorLabels { sink: "stuck-test".into(), kind: "timeout".into() }).get();
        assert_eq!(timeouts, 1);
        assert!(stuck.seen.lock().unwrap().is_empty());
    }

    /// Fails with a transient error while `down` is set; records what it took. Named per test, for its metrics.
    struct Recorder {
        name: &'static str,
        down: std::sync::atomic::AtomicBool,
        seen: Mutex<Vec<i64>>,
    }

    impl Recorder {
        fn new(name: &'static str, down: bool) -> Arc<Recorder> {
            Arc::new(Recorder { name, down: down.into(), seen: Mutex::default() })
        }

        fn seen(&self) -> Vec<i64> {
            self.seen.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl DataSink for Recorder {
        fn name(&self) -> String {
            self.name.into()
        }
        async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(SinkError::Transient("down".into()));
            }
            self.seen.lock().unwrap().push(batch.timestamp);
            Ok(())
        }
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
        // Down for six batches, three times what memory holds; then heapster stops.
        let down = Recorder::new("spool-restart-test", true);
        let m = SinkManager::try_start(vec![down.clone()], spooled(&dir, 1 << 20)).unwrap();
        for ts in 1..=6 {
            m.push(batch(ts));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        m.shutdown(Duration::from_secs(2)).await;
        assert!(down.seen().is_empty());

        // The next run, with the sink back: the six first, in order, then the new ones.
        let up = Recorder::new("spool-restart-test", false);
        let m = SinkManager::try_start(vec![up.clone()], spooled(&dir, 1 << 20)).unwrap();
        m.push(batch(7));
        m.push(batch(8));
        wait_until("all eight written", || up.seen().len() >= 8).await;
        m.shutdown(Duration::from_secs(2)).await;
        assert_eq!(up.seen(), (1..=8).collect::<Vec<_>>());
        assert_eq!(metrics::DROPPED.get_or_create(&metrics::sink("spool-restart-test")).get(), 0);
        assert_eq!(metrics::QUEUED.get_or_create(&metrics::sink("spool-restart-test")).get(), 0);

        // And a third run sends none of them again.
        let again = Recorder::new("spool-restart-test", false);
        let m = SinkManager::try_start(vec![again.clone()], spooled(&dir, 1 << 20)).unwrap();
        m.push(batch(9));
        wait_until("the new batch written", || !again.seen().is_empty()).await;
        m.shutdown(Duration::from_secs(2)).await;
        assert_eq!(again.seen(), vec![9]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_full_spool_drops_its_oldest_batches_and_counts_them() {
        let dir = temp_dir("bound");
        let mut one = Vec::new();
        crate::spool::codec::encode(&batch(1), &mut one);
        let record = (24 + one.len()) as u64;
        let down = Recorder::new("spool-bound-test", true);
        let m = SinkManager::try_start(vec![down.clone()], spooled(&dir, record * 3)).unwrap();
        for ts in 1..=10 {
            m.push(batch(ts));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        m.shutdown(Duration::from_secs(2)).await;
        assert_eq!(metrics::DROPPED.get_or_create(&metrics::sink("spool-bound-test")).get(), 7);

        let up = Recorder::new("spool-bound-test", false);
        let m = SinkManager::try_start(vec![up.clone()], spooled(&dir, record * 3)).unwrap();
        wait_until("the kept batches written", || up.seen().len() >= 3).await;
        m.shutdown(Duration::from_secs(2)).await;
        assert_eq!(up.seen(), vec![8, 9, 10], "the newest are kept, in order");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn two_sinks_of_the_same_name_get_a_spool_each() {
        let dir = temp_dir("twins");
        let (a, b) = (Recorder::new("spool-twin-test", true), Recorder::new("spool-twin-test", true));
        let m = SinkManager::try_start(vec![a.clone(), b.clone()], spooled(&dir, 1 << 20)).unwrap();
        m.push(batch(1));
        tokio::time::sleep(Duration::from_millis(50)).await;
        m.shutdown(Duration::from_secs(2)).await;
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        let (a, b) = (Recorder::new("spool-twin-test", false), Recorder::new("spool-twin-test", false));
        let m = SinkManager::try_start(vec![a.clone(), b.clone()], spooled(&dir, 1 << 20)).unwrap();
        wait_until("both written", || a.seen().len() == 1 && b.seen().len() == 1).await;
        m.shutdown(Duration::from_secs(2)).await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_spool_that_cannot_be_opened_is_an_error_at_start() {
        let file = temp_dir("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let sink = Recorder::new("spool-error-test", false);
        let e = SinkManager::try_start(vec![sink], spooled(&file, 1 << 20)).err().expect("an error");
        assert!(e.contains("--sink_buffer_dir") && e.contains("spool-error-test"), "{e}");
        let _ = std::fs::remove_file(&file);
    }
}
