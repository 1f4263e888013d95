//! `--sink=influxdb:http://host:8086?db=k8s&...`: batches as line protocol to InfluxDB 1.x, in Heapster 1.x's
//! schema (the default), its `withfields=true` variant, or the seed's `schema=legacy`; with `token=`/`bucket=`,
//! to the InfluxDB 2.x/3.x write API (`/api/v2/write`) instead. Bodies are gzip-compressed unless `gzip=false`.
//!
//! The parts, as in every sink folder: [`config`] (the options, checked once), [`encoder`] (bytes on the wire),
//! [`service`] (HTTP, database creation, the retry-or-report verdict). Retrying itself is the manager's: a batch
//! that failed for a reason worth retrying stays at the head of this sink's queue.

pub mod config;
pub mod encoder;
pub mod events;
pub mod grafana;
pub mod historical;
pub mod service;

pub use config::{Api, InfluxdbConfig, Schema};

use crate::self_metrics::SinkCounters;
use crate::{ConfigError, DataSink, SinkError, SinkKind, SinkMetrics};
use async_trait::async_trait;
use heapster_model::{DataBatch, KindDoc, Options, SpecUri};
use std::sync::Arc;

/// The InfluxDB sink in the sink table; its server is also read back by `--historical_source`.
pub const KIND: SinkKind = SinkKind {
    doc: KindDoc {
        key: "influxdb",
        aliases: &[],
        usage: "influxdb:http://HOST:8086?opts",
        summary: "InfluxDB 1.x line protocol in Heapster's schema (or withfields=true, schema=legacy); with \
                  token=/org=/bucket=, the InfluxDB 2.x/3.x write API.",
        options: config::OPTIONS,
    },
    build: |uri, metrics| Ok(Arc::new(InfluxdbSink::new(uri, metrics)?)),
    historical: Some(|uri| Ok(Arc::new(historical::InfluxdbHistorical::from_uri(uri)?))),
};

/// The InfluxDB sink: encodes on the manager's task, writes through [`service::Transport`].
pub struct InfluxdbSink {
    config: Arc<InfluxdbConfig>,
    transport: Arc<service::Transport>,
    name: String,
    counters: SinkCounters,
}

impl InfluxdbSink {
    /// Parses the `--sink` value and builds the HTTP client, counting on `metrics`; contacts no server (InfluxDB
    /// may start later).
    pub fn new(uri: &SpecUri, metrics: &SinkMetrics) -> Result<Self, ConfigError> {
        let options = Options::new("--sink", uri, config::OPTIONS)?;
        let config = InfluxdbConfig::from_options(&options)?;
        let name = config.name();
        let counters = metrics.for_kind(KIND.doc.key).sink(&name);
        let transport =
            service::Transport::new(config.clone(), name.clone(), counters.clone()).map_err(|e| options.error(e))?;
        Ok(InfluxdbSink { config: Arc::new(config), transport: Arc::new(transport), name, counters })
    }

    /// [`InfluxdbSink::new`] with self-metrics on a registry of its own, for tests and benchmarks that write
    /// without a `/metrics`.
    pub fn from_uri(uri: &SpecUri) -> Result<Self, ConfigError> {
        Self::new(uri, &SinkMetrics::detached())
    }
}

#[async_trait]
impl DataSink for InfluxdbSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError> {
        let encoded = encoder::encode(&batch, &self.config);
        if encoded.unrepresentable > 0 {
            self.counters.dropped("not a finite number", encoded.unrepresentable as u64);
            tracing::debug!(sink = %self.name, "{} NaN or infinite values left out", encoded.unrepresentable);
        }
        if encoded.bodies.is_empty() {
            return Ok(());
        }
        self.transport.write_all(encoded.bodies).await
    }

    async fn check(&self) -> crate::SinkCheck {
        self.transport.check().await
    }
}
