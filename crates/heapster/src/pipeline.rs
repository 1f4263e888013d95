//! The scrape loop, as Heapster's `manager.go`: every resolution, scrape every source concurrently (each under
//! its own deadline), merge, run the processors in order, then hand the batch to the store and the sinks.

use crate::self_metrics::{PipelineMetrics, SourceLabels};
use heapster_model::{DataBatch, Timestamp};
use heapster_processors::DataProcessor;
use heapster_sinks::SinkManager;
use heapster_sources::MetricsSourceProvider;
use heapster_store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Everything one round needs.
pub struct Pipeline {
    pub provider: Arc<dyn MetricsSourceProvider>,
    pub processors: Vec<Box<dyn DataProcessor>>,
    pub store: Arc<Store>,
    pub sinks: SinkManager,
    pub resolution: Duration,
    pub metrics: PipelineMetrics,
}

pub fn now_ms() -> Timestamp {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as Timestamp).unwrap_or(0)
}

/// How long until the next multiple of `resolution` in wall-clock time, so that batches of every heapster (and
/// every restart) land on the same timestamps.
fn until_next_tick(resolution: Duration) -> (Duration, Timestamp) {
    let res = resolution.as_millis().max(1) as i64;
    let now = now_ms();
    let next = (now / res + 1) * res;
    (Duration::from_millis((next - now) as u64), next)
}

impl Pipeline {
    /// Runs rounds until `stop` turns true, then lets the sinks drain. The first round runs at once, so the APIs
    /// have data right after start-up; later rounds are aligned to the resolution.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> SinkManager {
        let mut timestamp = now_ms();
        loop {
            self.round(timestamp).await;
            let (wait, next) = until_next_tick(self.resolution);
            tokio::select! {
                _ = tokio::time::sleep(wait) => timestamp = next,
                _ = stop.changed() => break,
            }
        }
        self.sinks
    }

    /// One round: scrape, process, store, export.
    pub async fn round(&mut self, timestamp: Timestamp) {
        let started = Instant::now();
        let batch = self.scrape(timestamp).await;
        let batch = self.processors.iter_mut().fold(batch, |b, p| p.process(b));
        self.metrics.batch_sets.set(batch.sets.len() as i64);
        self.metrics.batch_points.set(batch.point_count() as i64);
        self.metrics.last_batch_timestamp.set(timestamp as f64 / 1000.0);
        self.metrics.batches.inc();
        let batch = Arc::new(batch);
        self.store.ingest(batch.clone());
        self.sinks.push(batch);
        self.metrics.round_seconds.observe(started.elapsed().as_secs_f64());
    }

    /// Scrapes every source concurrently. A source that fails or misses the deadline (90% of the resolution)
    /// costs only its own sets this round.
    async fn scrape(&self, timestamp: Timestamp) -> DataBatch {
        let deadline = self.resolution.mul_f64(0.9);
        let mut tasks = tokio::task::JoinSet::new();
        for source in self.provider.sources() {
            tasks.spawn(async move {
                let name = source.name();
                let started = Instant::now();
                let result = tokio::time::timeout(deadline, source.scrape(timestamp)).await;
                (name, started.elapsed(), result)
            });
        }
        let mut merged = DataBatch { timestamp, ..Default::default() };
        while let Some(joined) = tasks.join_next().await {
            let Ok((name, took, result)) = joined else { continue };
            let labels = SourceLabels { source: name.clone() };
            self.metrics.scrape_seconds.get_or_create(&labels).observe(took.as_secs_f64());
            match result {
                Ok(Ok(batch)) => merged.sets.extend(batch.sets),
                Ok(Err(e)) => {
                    self.metrics.scrape_errors.get_or_create(&labels).inc();
                    tracing::warn!("scrape of {name} failed: {e}");
                }
                Err(_) => {
                    self.metrics.scrape_errors.get_or_create(&labels).inc();
                    tracing::warn!("scrape of {name} took longer than {deadline:?}: skipped this round");
                }
            }
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_aligned_to_the_resolution() {
        let (wait, next) = until_next_tick(Duration::from_secs(15));
        assert_eq!(next % 15_000, 0);
        assert!(wait <= Duration::from_secs(15));
    }
}
