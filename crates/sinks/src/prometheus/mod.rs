//! `--sink=prometheus:http://prom:9090/api/v1/write?...`: batches as Prometheus remote write 1.0 (snappy protobuf)
//! to Prometheus (`--web.enable-remote-write-receiver`), VictoriaMetrics, Mimir, Thanos receive and the like.
//! Heapster had no such sink; its users scraped nothing and wrote to InfluxDB. Names and labels follow
//! Prometheus' conventions ([`encoder`]); retries are the manager's.

pub mod config;
pub mod encoder;
pub mod service;

pub use config::PrometheusConfig;

use crate::self_metrics::SinkCounters;
use crate::{ConfigError, DataSink, SinkError, SinkKind, SinkMetrics};
use async_trait::async_trait;
use heapster_model::{DataBatch, KindDoc, Options, SpecUri};
use std::sync::Arc;

/// The remote-write sink in the sink table.
pub const KIND: SinkKind = SinkKind {
    doc: KindDoc {
        key: "prometheus",
        aliases: &[],
        usage: "prometheus:http://HOST:9090/api/v1/write?opts",
        summary: "Prometheus remote write 1.0 (snappy protobuf) to Prometheus, VictoriaMetrics, Mimir, Thanos: \
                  heapster_<metric>_<unit>[_total] with heapster's labels.",
        options: config::OPTIONS,
    },
    build: |uri, metrics| Ok(Arc::new(PrometheusSink::new(uri, metrics)?)),
    historical: None,
};

/// Encodes on the manager's task and writes through [`service::Transport`].
pub struct PrometheusSink {
    config: PrometheusConfig,
    transport: service::Transport,
    name: String,
    counters: SinkCounters,
}

impl PrometheusSink {
    /// Parses the `--sink` value and builds the client; contacts no server.
    pub fn new(uri: &SpecUri, metrics: &SinkMetrics) -> Result<Self, ConfigError> {
        let options = Options::new("--sink", uri, config::OPTIONS)?;
        let config = PrometheusConfig::from_options(&options)?;
        let name = config.name();
        let counters = metrics.for_kind(KIND.doc.key).sink(&name);
        let transport = service::Transport::new(config.clone(), counters.clone()).map_err(|e| options.error(e))?;
        Ok(PrometheusSink { config, transport, name, counters })
    }
}

#[async_trait]
impl DataSink for PrometheusSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError> {
        let encoded = encoder::encode(&batch, &self.config);
        if encoded.duplicates > 0 {
            self.counters.dropped("duplicate series", encoded.duplicates as u64);
        }
        self.transport.write_all(encoded.bodies).await
    }
}

#[cfg(test)]
mod tests;
