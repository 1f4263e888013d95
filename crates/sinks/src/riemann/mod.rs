//! `--sink=riemann:http://host:5555?...` for heapster (metrics) and `heapster eventer` (Kubernetes events):
//! Riemann events as length-framed protobuf `Msg`s over TCP, each answered by the server. The `http://` of
//! Heapster's examples names the host and port only: Riemann's port 5555 speaks protobuf, not HTTP.
//!
//! Riemann answers every message, so unlike the UDP and line sinks this one knows what was taken: `ok=false` is
//! counted per cause and the batch dropped, a connection that breaks or is refused is retried by the manager.

pub mod config;
pub mod encoder;
pub mod proto;
pub mod service;
#[cfg(test)]
mod tests;

pub use config::RiemannConfig;

use crate::events::{EventSink, EventSinkKind};
use crate::self_metrics::SinkCounters;
use crate::util::transport::TcpConfig;
use crate::{ConfigError, DataSink, SinkError, SinkKind, SinkMetrics};
use async_trait::async_trait;
use heapster_model::events::EventBatch;
use heapster_model::{DataBatch, KindDoc, SpecUri};
use std::sync::Arc;

const DOC: KindDoc = KindDoc {
    key: "riemann",
    aliases: &[],
    usage: "riemann:http://HOST:5555?opts",
    summary: "Riemann events (protobuf over TCP, each message acknowledged): one per value, or per Kubernetes event.",
    options: config::OPTIONS,
};

/// The Riemann metrics sink in the sink table.
pub const KIND: SinkKind =
    SinkKind { doc: DOC, build: |uri, metrics| Ok(Arc::new(RiemannSink::new(uri, metrics)?)), historical: None };

/// The Riemann event sink in the event sink table.
pub const EVENTS: EventSinkKind =
    EventSinkKind { doc: DOC, build: |uri, metrics| Ok(Arc::new(RiemannEventSink::new(uri, metrics)?)) };

/// What both sinks are made of: the options, the connection, and the counters under the sink's name.
struct Shared {
    config: RiemannConfig,
    client: service::Client,
    name: String,
    counters: SinkCounters,
}

impl Shared {
    /// Parses the `--sink` value; connects at the first export (Riemann may start later).
    fn new(uri: &SpecUri, metrics: &SinkMetrics) -> Result<Self, ConfigError> {
        let config = RiemannConfig::from_uri(uri)?;
        let name = config.name();
        let counters = metrics.for_kind(DOC.key).sink(&name);
        let client =
            service::Client::new(config.endpoint.clone(), TcpConfig::default(), config.batch_size, counters.clone());
        Ok(Shared { config, client, name, counters })
    }
}

pub struct RiemannSink(Shared);

impl RiemannSink {
    pub fn new(uri: &SpecUri, metrics: &SinkMetrics) -> Result<Self, ConfigError> {
        Shared::new(uri, metrics).map(RiemannSink)
    }
}

#[async_trait]
impl DataSink for RiemannSink {
    fn name(&self) -> String {
        self.0.name.clone()
    }

    async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError> {
        let encoded = encoder::metrics(&batch, &self.0.config);
        if encoded.unrepresentable > 0 {
            self.0.counters.dropped("not a finite number", encoded.unrepresentable as u64);
        }
        self.0.client.send(encoded.events).await
    }
}

pub struct RiemannEventSink(Shared);

impl RiemannEventSink {
    pub fn new(uri: &SpecUri, metrics: &SinkMetrics) -> Result<Self, ConfigError> {
        Shared::new(uri, metrics).map(RiemannEventSink)
    }
}

#[async_trait]
impl EventSink for RiemannEventSink {
    fn name(&self) -> String {
        self.0.name.clone()
    }

    async fn export(&self, batch: &EventBatch) -> Result<(), SinkError> {
        if !self.0.config.store_events {
            self.0.counters.dropped("storeEvents=false", batch.events.len() as u64);
            return Ok(());
        }
        self.0.client.send(encoder::events(batch, &self.0.config)).await
    }
}
