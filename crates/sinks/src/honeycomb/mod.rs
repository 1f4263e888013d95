//! `--sink=honeycomb:?dataset=&writekey=&apihost=` for heapster (metrics) and `heapster eventer` (Kubernetes
//! events): Honeycomb batch-API events, one per metric set or per event version (see [`encoder`]), sent by
//! [`service::Client`], which reads the API's per-event answers.

pub mod config;
pub mod encoder;
pub mod service;
#[cfg(test)]
mod tests;

pub use config::HoneycombConfig;

use crate::events::{EventSink, EventSinkKind};
use crate::util::json_batch::batch_identity;
use crate::{ConfigError, DataSink, SinkError, SinkKind, SinkMetrics};
use async_trait::async_trait;
use heapster_model::events::EventBatch;
use heapster_model::{DataBatch, KindDoc, SpecUri};
use service::{Client, Item};
use std::sync::Arc;

const DOC: KindDoc = KindDoc {
    key: "honeycomb",
    aliases: &[],
    usage: "honeycomb:?dataset=D&writekey=K",
    summary: "Honeycomb's batch events API: one event per metric set (gauges and labels), or per Kubernetes event.",
    options: config::OPTIONS,
};

/// The Honeycomb metrics sink in the sink table.
pub const KIND: SinkKind = SinkKind {
    doc: DOC,
    build: |uri, metrics| Ok(Arc::new(HoneycombSink::new(uri, metrics, env_key())?)),
    historical: None,
};

/// The Honeycomb event sink in the event sink table.
pub const EVENTS: EventSinkKind =
    EventSinkKind { doc: DOC, build: |uri, metrics| Ok(Arc::new(HoneycombEventSink::new(uri, metrics, env_key())?)) };

fn env_key() -> Option<String> {
    std::env::var(config::WRITEKEY_ENV).ok()
}

fn client(uri: &SpecUri, metrics: &SinkMetrics, env_key: Option<String>) -> Result<(Client, String), ConfigError> {
    let config = HoneycombConfig::from_uri(uri, env_key)?;
    let name = config.name();
    let counters = metrics.for_kind(DOC.key).sink(&name);
    let client = Client::new(config, counters).map_err(|e| ConfigError::new("--sink", uri, config::OPTIONS, e))?;
    Ok((client, name))
}

pub struct HoneycombSink {
    client: Client,
    name: String,
}

impl HoneycombSink {
    /// `env_key`: `$HONEYCOMB_WRITEKEY`. Contacts no server.
    pub fn new(uri: &SpecUri, metrics: &SinkMetrics, env_key: Option<String>) -> Result<Self, ConfigError> {
        let (client, name) = client(uri, metrics, env_key)?;
        Ok(HoneycombSink { client, name })
    }
}

#[async_trait]
impl DataSink for HoneycombSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError> {
        let (events, unrepresentable) = encoder::metrics(&batch);
        if unrepresentable > 0 {
            self.client.counters().dropped("not a finite number", unrepresentable as u64);
        }
        let ts = batch.timestamp.to_string();
        let id = batch_identity(std::iter::once(ts.as_str()).chain(batch.sets.keys().map(String::as_str)));
        let items = events
            .into_iter()
            .filter(|(_, e)| e.values > 0)
            .map(|(key, e)| Item { key, json: e.json, points: e.values as u64 })
            .collect();
        let (_, refusals) = self.client.send(id, items).await?;
        refusals.into_result(self.client.server())
    }
}

pub struct HoneycombEventSink {
    client: Client,
    name: String,
}

impl HoneycombEventSink {
    /// `env_key`: `$HONEYCOMB_WRITEKEY`. Contacts no server.
    pub fn new(uri: &SpecUri, metrics: &SinkMetrics, env_key: Option<String>) -> Result<Self, ConfigError> {
        let (client, name) = client(uri, metrics, env_key)?;
        Ok(HoneycombEventSink { client, name })
    }
}

#[async_trait]
impl EventSink for HoneycombEventSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    /// `Ok` once every event version was taken or refused (refusals counted and logged, not retried: the eventer
    /// would count the whole batch as rejected otherwise).
    async fn export(&self, batch: &EventBatch) -> Result<(), SinkError> {
        let ids: Vec<String> = batch.events.iter().map(encoder::event_id).collect();
        let id = batch_identity(ids.iter().map(String::as_str));
        let items = batch
            .events
            .iter()
            .zip(ids)
            .map(|(v, key)| Item { json: encoder::event(v, &key, batch.timestamp), key, points: 1 })
            .collect();
        let (_, refusals) = self.client.send(id, items).await?;
        if let Err(SinkError::Reject(why)) = refusals.into_result(self.client.server()) {
            tracing::warn!(sink = %self.name, "{why} (counted, not retried)");
        }
        Ok(())
    }
}
