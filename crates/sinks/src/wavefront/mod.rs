//! `--sink=wavefront:HOST:2878?clusterName=&prefix=&includeLabels=&includeContainers=&testMode=`: batches as
//! Wavefront data-format lines (see [`encoder`]) to a Wavefront proxy's metrics port, over one kept connection.
//!
//! Heapster dialled a new connection for every batch (and never closed the previous one), and lost the batch when
//! the proxy was down. Here the shared TCP writer keeps one connection, and a proxy that is down or stops reading
//! fails the batch as worth retrying, so the manager keeps it.

pub mod config;
pub mod encoder;

pub use config::WavefrontConfig;

use crate::self_metrics::SinkCounters;
use crate::util::transport::{Chunks, TcpConfig, TcpLineWriter};
use crate::{ConfigError, DataSink, SinkError, SinkKind, SinkMetrics};
use async_trait::async_trait;
use heapster_model::{DataBatch, KindDoc, SpecUri};
use std::sync::Arc;

pub const KIND: SinkKind = SinkKind {
    doc: KindDoc {
        key: "wavefront",
        aliases: &[],
        usage: "wavefront:HOST:2878?opts",
        summary: "Wavefront proxy lines (heapster.node.cpu.usage_rate VALUE TS source=HOST tags) in Heapster's form.",
        options: config::OPTIONS,
    },
    build: |uri, metrics| Ok(Arc::new(WavefrontSink::new(uri, metrics)?)),
    historical: None,
};

pub struct WavefrontSink {
    config: WavefrontConfig,
    writer: TcpLineWriter,
    name: String,
    counters: SinkCounters,
}

impl WavefrontSink {
    /// Contacts no server: the first batch connects.
    pub fn new(uri: &SpecUri, metrics: &SinkMetrics) -> Result<Self, ConfigError> {
        let config = WavefrontConfig::from_uri(uri)?;
        let name = config.name();
        let counters = metrics.for_kind(KIND.doc.key).sink(&name);
        let tcp = TcpConfig { timeout: config.timeout, ..TcpConfig::default() };
        let writer = TcpLineWriter::new(config.endpoint.clone(), tcp);
        Ok(WavefrontSink { config, writer, name, counters })
    }

    /// [`WavefrontSink::new`] counting on a registry of its own, for tests and benchmarks.
    pub fn from_uri(uri: &SpecUri) -> Result<Self, ConfigError> {
        Self::new(uri, &SinkMetrics::detached())
    }

    pub fn shape(&self) -> encoder::Shape<'_> {
        let c = &self.config;
        encoder::Shape {
            cluster_name: &c.cluster_name,
            prefix: &c.prefix,
            include_labels: c.include_labels,
            include_containers: c.include_containers,
        }
    }
}

#[async_trait]
impl DataSink for WavefrontSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError> {
        let encoded = encoder::encode(&batch, &self.shape(), crate::graphite::encoder::CHUNK_BYTES);
        if encoded.unrepresentable > 0 {
            self.counters.dropped("not a finite number", encoded.unrepresentable as u64);
        }
        if self.config.test_mode {
            // Heapster's testMode: the lines in the log, nothing sent.
            for line in encoded.chunks.iter().flat_map(|c| c.lines()) {
                tracing::info!(sink = %self.name, "{line}");
            }
            self.counters.written(encoded.points as u64);
            return Ok(());
        }
        let mut log = Chunks::new(&self.counters);
        for chunk in &encoded.chunks {
            log.record(chunk, self.writer.write(chunk.as_bytes()).await.map(|()| 0))?;
        }
        log.finish()
    }
}

#[cfg(test)]
mod tests;
