//! Event sinks: where `heapster eventer` ships Kubernetes events. Each kind lives in its sink's folder beside the
//! metrics sink of the same server (`log/`, `influxdb/`, `gcl/`) and is listed by one line of [`EVENT_SINKS`].
//!
//! The eventer hands each sink its batches in resource-version order and moves that sink's cursor only after
//! [`EventSink::export`] returned `Ok`, so a sink sees every event version at least once; a sink makes resends
//! harmless (an InfluxDB point keyed by the version, a Cloud Logging `insertId`) or says what it already holds
//! ([`EventSink::holds_through`]), which together make it exactly once.

use crate::{ConfigError, SinkError, SinkMetrics};
use async_trait::async_trait;
use heapster_model::events::EventBatch;
use heapster_model::{KindDoc, SpecUri};
use std::sync::Arc;

/// One destination for Kubernetes events.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Names the sink in logs, self-metrics and its state file (`log`, `influxdb:http://...`).
    fn name(&self) -> String;

    /// Writes one batch, all of it or nothing worth keeping: `Err(Retry)` sends the same batch again later,
    /// `Err(Reject)` skips it (counted).
    async fn export(&self, batch: &EventBatch) -> Result<(), SinkError>;

    /// The resource version through which this sink already holds every event, when it can read that back from
    /// its own output (a log file). `None` leaves the eventer's state file in charge.
    async fn holds_through(&self) -> Option<u64> {
        None
    }
}

/// How an eventer `--sink` value becomes an event sink of one kind.
pub type BuildEventSink = fn(&SpecUri, &SinkMetrics) -> Result<Arc<dyn EventSink>, ConfigError>;

/// One kind of event sink: what `heapster eventer --help` says about it and how a `--sink` value becomes one.
pub struct EventSinkKind {
    pub doc: KindDoc,
    pub build: BuildEventSink,
}

/// Every event sink kind this build knows, in the order `--help` lists them.
pub const EVENT_SINKS: &[EventSinkKind] = &[
    crate::log::events::KIND,
    crate::influxdb::events::KIND,
    crate::gcl::KIND,
    crate::riemann::EVENTS,
    crate::elasticsearch::EVENTS,
    crate::honeycomb::EVENTS,
    crate::kafka::EVENTS,
];

/// Turns one eventer `--sink` value into an event sink. Contacts no server.
pub fn build(uri: &SpecUri, metrics: &SinkMetrics) -> Result<Arc<dyn EventSink>, ConfigError> {
    match EVENT_SINKS.iter().find(|k| k.doc.is(&uri.key)) {
        Some(kind) => (kind.build)(uri, metrics),
        None => {
            let known: Vec<&str> = EVENT_SINKS.iter().map(|k| k.doc.key).collect();
            Err(ConfigError::new(
                "--sink",
                uri,
                &[],
                format!("unknown event sink {:?}; this build knows: {}", uri.key, known.join(", ")),
            ))
        }
    }
}

/// The event sinks' part of `heapster eventer --help`.
pub fn help() -> String {
    heapster_model::options::render_help(&EVENT_SINKS.iter().map(|k| k.doc).collect::<Vec<_>>())
}
