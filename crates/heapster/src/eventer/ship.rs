//! One shipper per event sink: its own watch, started from its own cursor, pushed every `--frequency` as
//! Heapster's eventer pushed, and its cursor moved only once the sink took the batch.
//!
//! A watch per sink (rather than one watch fanned out) is what lets each sink fall behind on its own: while a
//! sink's export is retried, its shipper reads nothing more, the API server holds the rest (or ends the watch,
//! which resumes from the last version read), and the other sinks go on. Memory stays bounded by one batch.

use super::EventerMetrics;
use super::cursor::Cursors;
use heapster_model::events::{EventBatch, EventVersion};
use heapster_sinks::SinkError;
use heapster_sinks::events::EventSink;
use heapster_sources::kubernetes::events::{EventItem, Start, follow};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Versions in one batch at most; more than that between two pushes are pushed at once.
const MAX_BATCH: usize = 10_000;

pub struct Shipper {
    pub sink: Arc<dyn EventSink>,
    pub cursors: Cursors,
    pub frequency: Duration,
    pub export_timeout: Duration,
    pub metrics: EventerMetrics,
}

/// Why a shipper ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Control {
    Run,
    /// Push what is pending once, then end (shutdown).
    Drain,
    /// End now (leadership lost): another replica resumes from the cursor.
    Halt,
}

impl Shipper {
    pub async fn run(self, client: kube::Client, mut control: watch::Receiver<Control>) {
        let name = self.sink.name();
        let held = self.sink.holds_through().await;
        let mut saved = self.cursors.load(&name).max(held);
        let start = saved.map_or(Start::Now, Start::After);
        match saved {
            Some(rv) => tracing::info!("eventer: {name} resumes after resource version {rv}"),
            None => tracing::info!("eventer: {name} starts with events from now on"),
        }
        let (tx, mut rx) = mpsc::channel(1024);
        let mut watch = tokio::spawn(follow(client.clone(), start, tx));
        let mut pending: Vec<EventVersion> = Vec::new();
        let mut reached = saved;
        let mut next_push = next_tick(self.frequency);
        loop {
            let push = tokio::select! {
                item = rx.recv() => match item {
                    Some(EventItem::Version(v)) => {
                        self.metrics.received.inc();
                        reached = v.event.resource_version().or(reached);
                        pending.push(v);
                        pending.len() >= MAX_BATCH
                    }
                    Some(EventItem::Reached(rv)) => {
                        reached = Some(rv);
                        // The first start's "now" is recorded at once, so that a crash before the first push
                        // still resumes from here rather than from a later "now".
                        saved.is_none()
                    }
                    // The watch task only ends when this end is dropped; if it died anyway (a panic), start
                    // another from the last version received rather than spin on a closed channel.
                    None => {
                        tracing::error!("eventer: {name}: the event watch stopped; starting it again");
                        let (tx, new_rx) = mpsc::channel(1024);
                        rx = new_rx;
                        watch = tokio::spawn(follow(client.clone(), reached.map_or(Start::Now, Start::After), tx));
                        false
                    }
                },
                _ = tokio::time::sleep_until(next_push) => {
                    next_push = next_tick(self.frequency);
                    true
                }
                _ = control.changed() => {
                    let c = *control.borrow();
                    if c == Control::Halt {
                        break;
                    }
                    c == Control::Drain
                }
            };
            if push {
                let batch = EventBatch { timestamp: now_millis(), events: std::mem::take(&mut pending) };
                if !self.push(&name, &batch, &mut control).await {
                    break;
                }
                if reached > saved
                    && let Some(rv) = reached
                {
                    match self.cursors.save(&name, rv) {
                        Ok(()) => saved = reached,
                        Err(e) => tracing::warn!("eventer: {name}: cannot record resource version {rv}: {e}"),
                    }
                    self.metrics.cursor.get_or_create(&vec![("sink", name.clone())]).set(rv as i64);
                }
            }
            if *control.borrow() != Control::Run {
                break;
            }
        }
        watch.abort();
    }

    /// Exports one batch, retrying what is worth retrying until it is taken or rejected. `false` when told to
    /// halt meanwhile (the batch was not recorded as taken; whoever ships next sends it again).
    async fn push(&self, name: &str, batch: &EventBatch, control: &mut watch::Receiver<Control>) -> bool {
        self.metrics.pushed();
        let labels = vec![("sink", name.to_owned())];
        let mut delay = Duration::from_secs(1);
        loop {
            let result = match tokio::time::timeout(self.export_timeout, self.sink.export(batch)).await {
                Ok(r) => r,
                Err(_) => Err(SinkError::Retry(format!("no answer within {:?}", self.export_timeout))),
            };
            match result {
                Ok(()) => {
                    self.metrics.shipped.get_or_create(&labels).inc_by(batch.events.len() as u64);
                    return true;
                }
                Err(SinkError::Reject(e)) => {
                    tracing::warn!("eventer: {name} rejected {} event versions: {e}", batch.events.len());
                    self.metrics.rejected.get_or_create(&labels).inc_by(batch.events.len() as u64);
                    return true;
                }
                Err(SinkError::Retry(e)) => {
                    self.metrics.failures.get_or_create(&labels).inc();
                    tracing::warn!(
                        "eventer: {name}: {e}; {} event versions wait, retrying in {delay:?}",
                        batch.events.len()
                    );
                }
            }
            let told = tokio::select! {
                _ = tokio::time::sleep(delay) => None,
                c = control.wait_for(|c| *c != Control::Run) => Some(c.map(|c| *c).unwrap_or(Control::Halt)),
            };
            match told {
                None => {}
                Some(Control::Halt | Control::Run) => return false,
                // Draining: one more try, then give up without recording the batch.
                Some(Control::Drain) => {
                    let last = tokio::time::timeout(self.export_timeout, self.sink.export(batch)).await;
                    return matches!(last, Ok(Ok(())));
                }
            }
            delay = (delay * 2).min(Duration::from_secs(60));
        }
    }
}

/// The next multiple of `frequency` since the epoch, as Heapster's eventer pushed "at fixed times".
fn next_tick(frequency: Duration) -> Instant {
    let f = frequency.as_millis().max(1) as i64;
    let now = now_millis();
    let wait = f - now.rem_euclid(f);
    Instant::now() + Duration::from_millis(wait as u64)
}

fn now_millis() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}
