//! `--sink=otlp:http://HOST:4318?...`: batches as OTLP/HTTP protobuf to `/v1/metrics` of an OpenTelemetry
//! collector (its `otlp` receiver) or any backend that takes OTLP (Grafana Mimir, Prometheus 3's
//! `/api/v1/otlp`, VictoriaMetrics, vendors' endpoints). Heapster had no such sink. How heapster's metrics and
//! labels become OTLP resources, names and types is in [`encoder`]; what answers mean, in [`service`]; retries
//! are the manager's.

pub mod config;
pub mod encoder;
pub mod proto;
pub mod service;

pub use config::OtlpConfig;

use crate::{ConfigError, DataSink, SinkError, SinkKind, SinkMetrics};
use async_trait::async_trait;
use heapster_model::{DataBatch, KindDoc, Options, SpecUri};
use std::sync::Arc;

/// The OTLP sink in the sink table.
pub const KIND: SinkKind = SinkKind {
    doc: KindDoc {
        key: "otlp",
        aliases: &[],
        usage: "otlp:http://HOST:4318?opts",
        summary: "OpenTelemetry OTLP/HTTP protobuf to /v1/metrics (collector, Mimir, Prometheus 3, vendors): \
                  heapster.<metric> with Kubernetes resource attributes (k8s.pod.name, ...).",
        options: config::OPTIONS,
    },
    build: |uri, metrics| Ok(Arc::new(OtlpSink::new(uri, metrics)?)),
    historical: None,
};

/// Encodes on the manager's task and writes through [`service::Transport`].
pub struct OtlpSink {
    encoder: encoder::Encoder,
    transport: service::Transport,
    name: String,
}

impl OtlpSink {
    /// Parses the `--sink` value and builds the client; contacts no server.
    pub fn new(uri: &SpecUri, metrics: &SinkMetrics) -> Result<Self, ConfigError> {
        let options = Options::new("--sink", uri, config::OPTIONS)?;
        let config = OtlpConfig::from_options(&options)?;
        let name = config.name();
        let counters = metrics.for_kind(KIND.doc.key).sink(&name);
        let encoder = encoder::Encoder::new(&config);
        let transport = service::Transport::new(config, counters).map_err(|e| options.error(e))?;
        Ok(OtlpSink { encoder, transport, name })
    }
}

#[async_trait]
impl DataSink for OtlpSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError> {
        self.transport.write_all(self.encoder.encode(&batch).bodies).await
    }
}

#[cfg(test)]
mod tests;
