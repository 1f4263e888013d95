//! `--sink=elasticsearch:http://host:9200?...` for heapster (metrics) and `heapster eventer` (Kubernetes events):
//! Heapster's documents through `_bulk`, into daily indices whose mapping and aliases an index template installed
//! before the first write. Elasticsearch 2 and 5 get Heapster's layout (one index a day, a mapping type per
//! family); 6 and later allow one type per index, so each family gets its own daily index, reachable under the
//! same alias as in Heapster (`heapster-cpu`, `heapster-events`).
//!
//! Every document has an `_id` made from its content (an event's: its uid and resource version), so a batch sent
//! again after a failure or a restart overwrites what arrived instead of adding it twice.

pub mod config;
pub mod encoder;
pub mod service;
#[cfg(test)]
mod tests;

pub use config::ElasticsearchConfig;

use crate::events::{EventSink, EventSinkKind};
use crate::{ConfigError, DataSink, SinkError, SinkKind, SinkMetrics};
use async_trait::async_trait;
use heapster_model::events::EventBatch;
use heapster_model::{DataBatch, KindDoc, SpecUri};
use std::sync::Arc;

const DOC: KindDoc = KindDoc {
    key: "elasticsearch",
    aliases: &[],
    usage: "elasticsearch:http://HOST:9200?opts",
    summary: "Elasticsearch 2, 5, 6, 7 or 8 through _bulk, Heapster's documents in daily indices (metrics and events).",
    options: config::OPTIONS,
};

/// The Elasticsearch metrics sink in the sink table.
pub const KIND: SinkKind =
    SinkKind { doc: DOC, build: |uri, metrics| Ok(Arc::new(ElasticsearchSink::new(uri, metrics)?)), historical: None };

/// The Elasticsearch event sink in the event sink table.
pub const EVENTS: EventSinkKind =
    EventSinkKind { doc: DOC, build: |uri, metrics| Ok(Arc::new(ElasticsearchEventSink::new(uri, metrics)?)) };

/// What both sinks are made of: the options and the client, under the sink's name.
struct Shared {
    config: ElasticsearchConfig,
    client: Arc<service::Client>,
    name: String,
}

impl Shared {
    /// Parses the `--sink` value; contacts the server at the first export (it may start later).
    fn new(uri: &SpecUri, metrics: &SinkMetrics) -> Result<Self, ConfigError> {
        let config = ElasticsearchConfig::from_uri(uri)?;
        let name = config.name();
        let counters = metrics.for_kind(DOC.key).sink(&name);
        let client = service::Client::new(config.clone(), name.clone(), counters)
            .map_err(|e| ConfigError::new("--sink", uri, config::OPTIONS, e))?;
        Ok(Shared { config, client: Arc::new(client), name })
    }
}

pub struct ElasticsearchSink(Shared);

impl ElasticsearchSink {
    pub fn new(uri: &SpecUri, metrics: &SinkMetrics) -> Result<Self, ConfigError> {
        Shared::new(uri, metrics).map(ElasticsearchSink)
    }
}

#[async_trait]
impl DataSink for ElasticsearchSink {
    fn name(&self) -> String {
        self.0.name.clone()
    }

    async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError> {
        let encoded = encoder::metrics(&batch, &self.0.config);
        if encoded.unrepresentable > 0 {
            self.0.client.counters().dropped("not a finite number", encoded.unrepresentable as u64);
        }
        self.0.client.write(Arc::new(encoded.items)).await
    }
}

pub struct ElasticsearchEventSink(Shared);

impl ElasticsearchEventSink {
    pub fn new(uri: &SpecUri, metrics: &SinkMetrics) -> Result<Self, ConfigError> {
        Shared::new(uri, metrics).map(ElasticsearchEventSink)
    }
}

#[async_trait]
impl EventSink for ElasticsearchEventSink {
    fn name(&self) -> String {
        self.0.name.clone()
    }

    async fn export(&self, batch: &EventBatch) -> Result<(), SinkError> {
        self.0.client.write(Arc::new(encoder::events(batch, &self.0.config))).await
    }
}
