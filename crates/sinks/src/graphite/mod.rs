//! `--sink=graphite:tcp://HOST:2003?prefix=kubernetes`: batches as Graphite plaintext lines in Heapster's path
//! layout (see [`encoder`]), to carbon or anything that speaks its plaintext protocol (VictoriaMetrics,
//! go-carbon, graphite-relay), over TCP or, as Heapster's client also allowed, UDP.
//!
//! The protocol acknowledges nothing: a write that the kernel took counts as written. A server that is down or
//! stops reading fails the write as worth retrying, and the manager keeps the batch; what had been sent of it
//! is sent again, which carbon stores once (one value per path and second).

pub mod config;
pub mod encoder;

pub use config::{GraphiteConfig, Protocol};

use crate::self_metrics::SinkCounters;
use crate::util::transport::{Chunks, TcpConfig, TcpLineWriter, TransportError, UdpConfig, UdpWriter};
use crate::{ConfigError, DataSink, SinkError, SinkKind, SinkMetrics};
use async_trait::async_trait;
use heapster_model::{DataBatch, KindDoc, SpecUri};
use std::sync::Arc;

pub const KIND: SinkKind = SinkKind {
    doc: KindDoc {
        key: "graphite",
        aliases: &[],
        usage: "graphite:tcp://HOST:2003?opts",
        summary: "Graphite plaintext lines in Heapster's paths (PREFIX.nodes.HOST.pods.NS.POD...), over tcp:// or \
                  udp://, to carbon or any Graphite receiver.",
        options: config::OPTIONS,
    },
    build: |uri, metrics| Ok(Arc::new(GraphiteSink::new(uri, metrics)?)),
    historical: None,
};

enum Writer {
    Tcp(TcpLineWriter),
    Udp(UdpWriter),
}

pub struct GraphiteSink {
    config: GraphiteConfig,
    writer: Writer,
    name: String,
    counters: SinkCounters,
}

impl GraphiteSink {
    /// Contacts no server: the first batch connects (Heapster connected here, and a carbon that was down when
    /// heapster started stopped it).
    pub fn new(uri: &SpecUri, metrics: &SinkMetrics) -> Result<Self, ConfigError> {
        let config = GraphiteConfig::from_uri(uri)?;
        let name = config.name();
        let counters = metrics.for_kind(KIND.doc.key).sink(&name);
        let writer = match config.protocol {
            Protocol::Tcp => Writer::Tcp(TcpLineWriter::new(
                config.endpoint.clone(),
                TcpConfig { timeout: config.timeout, ..TcpConfig::default() },
            )),
            Protocol::Udp => Writer::Udp(UdpWriter::new(
                config.endpoint.clone(),
                UdpConfig { timeout: config.timeout, ..UdpConfig::default() },
            )),
        };
        Ok(GraphiteSink { config, writer, name, counters })
    }

    /// [`GraphiteSink::new`] counting on a registry of its own, for tests and benchmarks.
    pub fn from_uri(uri: &SpecUri) -> Result<Self, ConfigError> {
        Self::new(uri, &SinkMetrics::detached())
    }

    /// Sends one chunk; the lines the transport could not send at all (a line longer than any UDP datagram).
    async fn send(&self, chunk: &str) -> Result<u64, TransportError> {
        match &self.writer {
            Writer::Tcp(w) => w.write(chunk.as_bytes()).await.map(|()| 0),
            Writer::Udp(w) => w.send(chunk.as_bytes()).await.map(|s| s.dropped as u64),
        }
    }
}

#[async_trait]
impl DataSink for GraphiteSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError> {
        let encoded = encoder::encode(&batch, &self.config.prefix, encoder::CHUNK_BYTES);
        if encoded.unrepresentable > 0 {
            self.counters.dropped("not a finite number", encoded.unrepresentable as u64);
        }
        let mut log = Chunks::new(&self.counters);
        for chunk in &encoded.chunks {
            log.record(chunk, self.send(chunk).await)?;
        }
        log.finish()
    }
}

#[cfg(test)]
mod tests;
