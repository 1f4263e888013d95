//! `--sink=kafka:?brokers=HOST:9092&...` for heapster (metrics to `timeseriestopic`) and `heapster eventer`
//! (Kubernetes events to `eventstopic`): one JSON message per value or per event version, in Heapster's format
//! ([`encoder`]), produced with acks=all ([`service`]).
//!
//! Events: `export` returns `Ok` only once every message is acknowledged, so the eventer moves its cursor only
//! past events the brokers hold. A batch cut short (a broker gone mid-way, a SIGKILL before the cursor was saved)
//! is sent again whole, so a consumer may read a version twice; each message's key is `<event uid>/<resourceVersion>`,
//! which names the version, for consumers (or a compacted topic) to drop the copy.

pub mod config;
pub mod encoder;
pub mod service;
#[cfg(test)]
mod tests;

pub use config::KafkaConfig;

use crate::events::{EventSink, EventSinkKind};
use crate::self_metrics::SinkCounters;
use crate::{ConfigError, DataSink, SinkError, SinkKind, SinkMetrics};
use async_trait::async_trait;
use heapster_model::events::EventBatch;
use heapster_model::{DataBatch, KindDoc, SpecUri};
use std::sync::Arc;
use std::time::Duration;

const DOC: KindDoc = KindDoc {
    key: "kafka",
    aliases: &[],
    usage: "kafka:?brokers=HOST:9092&opts",
    summary: "Kafka topics (acks=all): one JSON message per value, or per Kubernetes event version.",
    options: config::OPTIONS,
};

/// The Kafka metrics sink in the sink table.
pub const KIND: SinkKind =
    SinkKind { doc: DOC, build: |uri, metrics| Ok(Arc::new(KafkaSink::new(uri, metrics)?)), historical: None };

/// The Kafka event sink in the event sink table.
pub const EVENTS: EventSinkKind =
    EventSinkKind { doc: DOC, build: |uri, metrics| Ok(Arc::new(KafkaEventSink::new(uri, metrics)?)) };

/// What both sinks are made of: the producer for their topic and the counters under the sink's name.
struct Shared {
    producer: service::Producer,
    name: String,
    counters: SinkCounters,
}

impl Shared {
    /// Parses the `--sink` value and reads the TLS files; connects at the first export (Kafka may start later).
    fn new(uri: &SpecUri, metrics: &SinkMetrics, events: bool, deadline: Duration) -> Result<Self, ConfigError> {
        let config = KafkaConfig::from_uri(uri)?;
        let topic = if events { &config.events_topic } else { &config.metrics_topic };
        let name = config.name(topic);
        let counters = metrics.for_kind(DOC.key).sink(&name);
        let producer = service::Producer::new(&config, topic, deadline, counters.clone())
            .map_err(|e| ConfigError::new("--sink", uri, config::OPTIONS, e))?;
        Ok(Shared { producer, name, counters })
    }

    async fn send(&self, encoded: encoder::Encoded) -> Result<(), SinkError> {
        if encoded.unrepresentable > 0 {
            self.counters.dropped("not a finite number", encoded.unrepresentable as u64);
        }
        self.producer.send(encoded.messages).await
    }
}

pub struct KafkaSink(Shared);

impl KafkaSink {
    pub fn new(uri: &SpecUri, metrics: &SinkMetrics) -> Result<Self, ConfigError> {
        Shared::new(uri, metrics, false, service::DEADLINE).map(KafkaSink)
    }

    /// With a shorter wait for brokers that do not answer (tests of the retry path).
    pub fn with_deadline(uri: &SpecUri, metrics: &SinkMetrics, deadline: Duration) -> Result<Self, ConfigError> {
        Shared::new(uri, metrics, false, deadline).map(KafkaSink)
    }
}

#[async_trait]
impl DataSink for KafkaSink {
    fn name(&self) -> String {
        self.0.name.clone()
    }

    async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError> {
        self.0.send(encoder::metrics(&batch)).await
    }
}

pub struct KafkaEventSink(Shared);

impl KafkaEventSink {
    pub fn new(uri: &SpecUri, metrics: &SinkMetrics) -> Result<Self, ConfigError> {
        Shared::new(uri, metrics, true, service::DEADLINE).map(KafkaEventSink)
    }
}

#[async_trait]
impl EventSink for KafkaEventSink {
    fn name(&self) -> String {
        self.0.name.clone()
    }

    async fn export(&self, batch: &EventBatch) -> Result<(), SinkError> {
        self.0.send(encoder::events(batch)).await
    }
}
