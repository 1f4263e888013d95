//! `--sink=statsd:udp://host:8125?...`: every value as a statsd gauge over UDP, in Heapster's etsystatsd layout
//! (the labels in the dotted name, for statsd in front of Graphite) or its influxstatsd layout (labels as tags,
//! for Telegraf), packed `numMetricsPerMsg` lines to a datagram.
//!
//! UDP acknowledges nothing: what the sink can know is that the kernel took every datagram. A statsd that is not
//! listening shows as the kernel's "port unreachable" on a later send, which is retried like a TCP server that
//! is down; sending a batch again only repeats gauges, which statsd keeps the last of.

pub mod config;
pub mod encoder;
#[cfg(test)]
mod tests;

pub use config::StatsdConfig;

use crate::self_metrics::SinkCounters;
use crate::util::transport::{UdpConfig, UdpWriter};
use crate::{ConfigError, DataSink, SinkError, SinkKind, SinkMetrics};
use async_trait::async_trait;
use heapster_model::{DataBatch, KindDoc, SpecUri};
use std::sync::Arc;

/// The statsd sink in the sink table.
pub const KIND: SinkKind = SinkKind {
    doc: KindDoc {
        key: "statsd",
        aliases: &[],
        usage: "statsd:udp://HOST:8125?opts",
        summary: "Gauges over UDP to a statsd daemon: etsystatsd (labels in the dotted name, for Graphite) or \
                  influxstatsd (name,tag=value, for Telegraf).",
        options: config::OPTIONS,
    },
    build: |uri, metrics| Ok(Arc::new(StatsdSink::new(uri, metrics)?)),
    historical: None,
};

pub struct StatsdSink {
    config: StatsdConfig,
    writer: UdpWriter,
    name: String,
    counters: SinkCounters,
}

impl StatsdSink {
    /// Parses the `--sink` value; resolves and sends nothing yet.
    pub fn new(uri: &SpecUri, metrics: &SinkMetrics) -> Result<Self, ConfigError> {
        let config = StatsdConfig::from_uri(uri)?;
        let name = config.name();
        let counters = metrics.for_kind(KIND.doc.key).sink(&name);
        let udp = UdpConfig { max_lines: config.metrics_per_msg, ..UdpConfig::default() };
        let writer = UdpWriter::new(config.endpoint.clone(), udp);
        Ok(StatsdSink { config, writer, name, counters })
    }

    /// [`StatsdSink::new`] with self-metrics on a registry of its own, for tests and benchmarks.
    pub fn from_uri(uri: &SpecUri) -> Result<Self, ConfigError> {
        Self::new(uri, &SinkMetrics::detached())
    }
}

#[async_trait]
impl DataSink for StatsdSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError> {
        let encoded = encoder::encode(&batch, &self.config);
        if encoded.unrepresentable > 0 {
            self.counters.dropped("not a finite number", encoded.unrepresentable as u64);
        }
        if encoded.untyped > 0 {
            self.counters.dropped("no etsystatsd path for the set's type", encoded.untyped as u64);
        }
        if encoded.lines.is_empty() {
            return Ok(());
        }
        match self.writer.send(encoded.lines.as_bytes()).await {
            Ok(sent) => {
                self.counters.request("ok");
                // Only a line alone in its datagram can be too long for UDP, so datagrams dropped are lines.
                if sent.dropped > 0 {
                    self.counters.dropped("longer than a UDP datagram", sent.dropped as u64);
                }
                self.counters.written((encoded.points - sent.dropped) as u64);
                Ok(())
            }
            Err(e) => {
                self.counters.request(e.cause().label());
                Err(e.into())
            }
        }
    }
}
