//! Sinks: where batches go after the processors. Each sink is one folder (`log/`, `influxdb/`, ...) with the same
//! shape: its options declared once and read from the `--sink` URI once, an encoder, a transport, tests beside
//! them, and a [`SinkKind`] that one line of [`SINKS`] lists. What sinks share (HTTP clients, gzip, bodies cut by
//! size, the retry-or-reject verdict, TCP line, UDP datagram and framed TCP writers) is in [`util`]; their
//! self-metrics come from [`self_metrics`].
//!
//! Every sink sits behind [`manager::SinkManager`], which gives it its own bounded queue and deadline, so a slow
//! or dead sink never holds up scraping, the store or the other sinks, and what it drops is counted. With
//! `--sink_buffer_dir` the queue is backed by a durable [`spool`] per sink, so outages and restarts lose nothing.
//! Options every sink takes (`max_series=`, `labels_deny=`, ...) are read here, in [`build`], and applied by the
//! manager through a [`governor`] per sink.

pub mod elasticsearch;
pub mod events;
pub mod gcl;
pub mod gcm;
pub mod governor;
#[cfg(test)]
mod governor_tests;
pub mod graphite;
pub mod hawkular;
pub mod honeycomb;
pub mod influxdb;
pub mod kafka;
pub mod librato;
pub mod log;
pub mod manager;
pub mod opentsdb;
pub mod otlp;
pub mod prometheus;
pub mod riemann;
pub mod self_metrics;
pub mod spool;
pub mod statsd;
pub mod util;
pub mod wavefront;

use async_trait::async_trait;
use heapster_model::historical::HistoricalSource;
use heapster_model::{DataBatch, KindDoc, SpecUri};
use std::sync::Arc;

pub use heapster_model::ConfigError;
pub use manager::{SinkManager, SinkManagerConfig};
pub use self_metrics::SinkMetrics;
pub use spool::SpoolConfig;

/// Why a sink could not take a batch, as the manager acts on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// Worth trying again later (server down, timeout, 5xx): the batch stays at the head of the sink's queue.
    #[error("{0} (will retry)")]
    Retry(String),
    /// Retrying will not help (rejected data, bad credentials): the batch is dropped at once.
    #[error("{0}")]
    Reject(String),
}

/// One destination for batches.
#[async_trait]
pub trait DataSink: Send + Sync {
    /// Names the sink in logs and self-metrics (`log`, `influxdb:http://...`).
    fn name(&self) -> String;

    /// Writes one batch. Called by the manager with one batch at a time per sink, in order.
    async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError>;

    /// The cardinality governor's options given in the sink's URI, which the manager applies before the sink
    /// sees a batch. Only [`build`]'s wrapper has them.
    fn governor(&self) -> Option<&governor::GovernorConfig> {
        None
    }

    /// One cheap request that tells whether the sink's server is reachable and takes the configured credentials,
    /// writing nothing, for `heapster doctor`. Kinds without such a request say so.
    async fn check(&self) -> SinkCheck {
        SinkCheck::Skip("no cheap check for this kind of sink: its first write tells (heapster's log)".into())
    }
}

/// What [`DataSink::check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkCheck {
    /// Reachable, credentials taken; the text says what was seen.
    Ok(String),
    /// What is wrong, and the option or server change that fixes it.
    Fail { problem: String, fix: String },
    /// Not checked, and why.
    Skip(String),
}

/// A sink built with governor options: the sink itself, and the options for the manager.
struct Governed {
    sink: Arc<dyn DataSink>,
    config: governor::GovernorConfig,
}

#[async_trait]
impl DataSink for Governed {
    fn name(&self) -> String {
        self.sink.name()
    }

    async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError> {
        self.sink.export(batch).await
    }

    async fn check(&self) -> SinkCheck {
        self.sink.check().await
    }

    fn governor(&self) -> Option<&governor::GovernorConfig> {
        Some(&self.config)
    }
}

/// How a `--sink` value becomes a sink of one kind, counting on the given self-metrics.
pub type BuildSink = fn(&SpecUri, &SinkMetrics) -> Result<Arc<dyn DataSink>, ConfigError>;

/// How a `--historical_source` value becomes a reader of one kind's server.
pub type BuildHistorical = fn(&SpecUri) -> Result<Arc<dyn HistoricalSource>, ConfigError>;

/// One kind of sink: what `--help` says about it, how a `--sink` value becomes one, and, when the kind's server
/// can be read back, how `--historical_source` becomes a reader.
pub struct SinkKind {
    pub doc: KindDoc,
    pub build: BuildSink,
    pub historical: Option<BuildHistorical>,
}

/// Every sink kind this build knows, in the order `--help` lists them.
pub const SINKS: &[SinkKind] = &[
    log::KIND,
    influxdb::KIND,
    gcm::GCM,
    gcm::STACKDRIVER,
    graphite::KIND,
    opentsdb::KIND,
    wavefront::KIND,
    statsd::KIND,
    riemann::KIND,
    prometheus::KIND,
    otlp::KIND,
    elasticsearch::KIND,
    honeycomb::KIND,
    librato::KIND,
    hawkular::KIND,
    kafka::KIND,
];

fn known(kinds: impl Iterator<Item = &'static SinkKind>) -> String {
    kinds.map(|k| k.doc.key).collect::<Vec<_>>().join(", ")
}

/// Turns one `--sink` value into a sink, its self-metrics on `metrics`. Contacts no server. The options every
/// sink takes ([`governor::OPTIONS`]) are read first and taken out; the sink's own build reads the rest.
pub fn build(uri: &SpecUri, metrics: &SinkMetrics) -> Result<Arc<dyn DataSink>, ConfigError> {
    match SINKS.iter().find(|k| k.doc.is(&uri.key)) {
        Some(kind) => {
            let (config, own) = governor::GovernorConfig::take(uri, kind.doc.options)?;
            let sink = (kind.build)(&own, metrics)?;
            Ok(match config {
                Some(config) => Arc::new(Governed { sink, config }),
                None => sink,
            })
        }
        None => Err(ConfigError::new(
            "--sink",
            uri,
            &[],
            format!("unknown sink {:?}; this build knows: {}", uri.key, known(SINKS.iter())),
        )),
    }
}

/// Turns the `--historical_source` value into the reader behind `/api/v1/historical`. Contacts no server.
pub fn historical(uri: &SpecUri) -> Result<Arc<dyn HistoricalSource>, ConfigError> {
    match SINKS.iter().find(|k| k.doc.is(&uri.key)).and_then(|k| k.historical) {
        Some(build) => build(uri),
        None => Err(ConfigError::new(
            "--historical_source",
            uri,
            &[],
            format!(
                "unknown historical source {:?}; this build knows: {}",
                uri.key,
                known(SINKS.iter().filter(|k| k.historical.is_some()))
            ),
        )),
    }
}

/// The sinks' part of `heapster --help`: every kind with its options and their defaults.
pub fn help() -> String {
    let mut h = heapster_model::options::render_help(&SINKS.iter().map(|k| k.doc).collect::<Vec<_>>());
    h.push_str("\n  Every sink also takes (a cardinality governor, see /api/v1/cardinality):");
    for o in governor::OPTIONS {
        h.push_str(&format!("\n      {}= {}", o.name, o.help));
    }
    h.push('\n');
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> SinkMetrics {
        SinkMetrics::detached()
    }

    #[test]
    fn the_table_builds_every_kind_and_names_them_when_one_is_unknown() {
        assert_eq!(build(&"log".parse().unwrap(), &metrics()).unwrap().name(), "log");
        let influx = build(&"influxdb:http://h:8086?pw=x".parse().unwrap(), &metrics()).unwrap();
        assert_eq!(influx.name(), "influxdb:http://h:8086/?db=k8s");
        let e = build(&"nosuchsink".parse().unwrap(), &metrics()).err().unwrap().to_string();
        assert_eq!(
            e,
            "--sink=nosuchsink: unknown sink \"nosuchsink\"; this build knows: log, influxdb, gcm, stackdriver, graphite, opentsdb, wavefront, statsd, riemann, prometheus, otlp, elasticsearch, honeycomb, librato, hawkular, kafka"
        );
    }

    #[test]
    fn historical_sources_come_from_the_same_table() {
        assert!(historical(&"influxdb:http://h:8086".parse().unwrap()).is_ok());
        for key in ["log", "x"] {
            let e = historical(&key.parse().unwrap()).err().unwrap().to_string();
            let want =
                format!("--historical_source={key}: unknown historical source {key:?}; this build knows: influxdb");
            assert_eq!(e, want);
        }
    }

    #[test]
    fn help_lists_every_kind_with_its_options() {
        let h = help();
        for kind in SINKS {
            assert!(h.contains(kind.doc.usage), "{h}");
            for o in kind.doc.options {
                assert!(h.contains(&format!("{}=", o.name)), "{}: {h}", o.name);
            }
        }
        assert!(h.contains("db= [k8s]"), "{h}");
    }
}
