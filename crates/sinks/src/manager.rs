//! Fans each batch out to every sink, each through its own bounded queue and task.
//!
//! Heapster waited for all sinks with one shared timeout and then dropped the batch for whoever was late, without
//! a trace. Here a slow sink only fills its own queue; when that queue is full the oldest batch is dropped, and the
//! drop is counted and logged with the time range lost.
//!
//! A batch whose export failed for a reason worth retrying (server down, timeout, 5xx) stays at the head of its
//! queue and is tried again with exponential backoff, so an outage shorter than the queue loses nothing and
//! batches still arrive in order. Only a rejection (bad data, bad credentials) drops a batch at once.

use crate::metrics::{self, SinkErrorLabels};
use crate::{DataSink, SinkError};
use heapster_model::DataBatch;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How much each sink may fall behind, and how long one export may take.
#[derive(Debug, Clone, Copy)]
pub struct SinkManagerConfig {
    /// Batches held in memory per sink before the oldest is dropped.
    pub queue_batches: usize,
    /// Deadline of one `export` call (`--sink_export_data_timeout`).
    pub export_timeout: Duration,
}

impl Default for SinkManagerConfig {
    fn default() -> Self {
        SinkManagerConfig { queue_batches: 8, export_timeout: Duration::from_secs(20) }
    }
}

struct Queue {
    batches: Mutex<VecDeque<Arc<DataBatch>>>,
    /// Wakes the sink's task when a batch arrives or on shutdown.
    notify: Notify,
    closed: std::sync::atomic::AtomicBool,
}

struct Handle {
    name: String,
    queue: Arc<Queue>,
    task: JoinHandle<()>,
}

/// Owns one task per sink. Dropping it without [`SinkManager::shutdown`] abandons queued batches.
pub struct SinkManager {
    handles: Vec<Handle>,
    config: SinkManagerConfig,
}

impl SinkManager {
    /// Starts one task per sink. Must be called inside a tokio runtime.
    pub fn start(sinks: Vec<Arc<dyn DataSink>>, config: SinkManagerConfig) -> Self {
        let handles = sinks
            .into_iter()
            .map(|sink| {
                let name = sink.name();
                let queue = Arc::new(Queue {
                    batches: Mutex::new(VecDeque::new()),
                    notify: Notify::new(),
                    closed: Default::default(),
                });
                let task = tokio::spawn(run(sink, queue.clone(), config.export_timeout, config.queue_batches));
                Handle { name, queue, task }
            })
            .collect();
        SinkManager { handles, config }
    }

    /// Hands `batch` to every sink without waiting for any of them.
    pub fn push(&self, batch: Arc<DataBatch>) {
        for h in &self.handles {
            let dropped = {
                let mut q = h.queue.batches.lock().unwrap();
                q.push_back(batch.clone());
                let dropped = if q.len() > self.config.queue_batches { q.pop_front() } else { None };
                metrics::QUEUED.get_or_create(&metrics::sink(&h.name)).set(q.len() as i64);
                dropped
            };
            if let Some(d) = dropped {
                metrics::DROPPED.get_or_create(&metrics::sink(&h.name)).inc();
                tracing::warn!(
                    sink = %h.name,
                    "sink queue full ({} batches): dropped the batch of timestamp {} ({} points); the sink is too \
                     slow or down",
                    self.config.queue_batches,
                    d.timestamp,
                    d.point_count()
                );
            }
            h.queue.notify.notify_one();
        }
    }

    /// Lets every sink write what it has queued, for at most `deadline`, then stops the tasks.
    pub async fn shutdown(self, deadline: Duration) {
        let until = Instant::now() + deadline;
        for h in &self.handles {
            h.queue.closed.store(true, std::sync::atomic::Ordering::SeqCst);
            h.queue.notify.notify_one();
        }
        for h in self.handles {
            let left = until.saturating_duration_since(Instant::now());
            let abort = h.task.abort_handle();
            if tokio::time::timeout(left, h.task).await.is_err() {
                abort.abort();
                let lost = h.queue.batches.lock().unwrap().len();
                tracing::warn!(sink = %h.name, "shutdown deadline passed: {lost} queued batches not written");
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
            if queue.closed.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            queue.notify.notified().await;
            continue;
        };
        metrics::QUEUED.get_or_create(&labels).set(queue.batches.lock().unwrap().len() as i64);
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, sink.export(batch.clone())).await;
        metrics::EXPORT_SECONDS.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
        let kind = match result {
            Ok(Ok(())) => {
                metrics::EXPORTED.get_or_create(&labels).inc();
                backoff = RETRY_MIN;
                continue;
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
        metrics::ERRORS.get_or_create(&SinkErrorLabels { sink: name.clone(), kind: kind.into() }).inc();
        if kind == "permanent" {
            continue;
        }
        if queue.closed.load(std::sync::atomic::Ordering::SeqCst) {
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
        let until = tokio::time::Instant::now() + backoff;
        backoff = (backoff * 2).min(RETRY_MAX);
        while tokio::time::Instant::now() < until && !queue.closed.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                _ = queue.notify.notified() => {}
            }
        }
        if queue.closed.load(std::sync::atomic::Ordering::SeqCst) {
            let lost = queue.batches.lock().unwrap().len();
            tracing::warn!(sink = %name, "shutting down while the sink fails: {lost} batches not written");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;

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
        let cfg = SinkManagerConfig { queue_batches: 2, export_timeout: Duration::from_secs(5) };
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
            if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(SinkError::Transient("down".into()));
            }
            self.seen.lock().unwrap().push(batch.timestamp);
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_shorter_than_the_queue_loses_nothing_and_keeps_order() {
        let sink = Arc::new(Flaky { down: true.into(), seen: Mutex::default() });
        let cfg = SinkManagerConfig { queue_batches: 8, export_timeout: Duration::from_secs(5) };
        let m = SinkManager::start(vec![sink.clone()], cfg);
        for ts in 1..=5 {
            m.push(batch(ts));
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        assert!(sink.seen.lock().unwrap().is_empty());
        sink.down.store(false, std::sync::atomic::Ordering::SeqCst);
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
        let cfg = SinkManagerConfig { queue_batches: 2, export_timeout: Duration::from_millis(50) };
        let m = SinkManager::start(vec![stuck.clone()], cfg);
        m.push(batch(1));
        tokio::time::sleep(Duration::from_millis(200)).await;
        m.shutdown(Duration::from_secs(1)).await;
        let timeouts =
            metrics::ERRORS.get_or_create(&SinkErrorLabels { sink: "stuck-test".into(), kind: "timeout".into() }).get();
        assert_eq!(timeouts, 1);
        assert!(stuck.seen.lock().unwrap().is_empty());
    }
}
