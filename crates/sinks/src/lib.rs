//! Sinks: where batches go after the processors. Each sink is one folder (`log/`, later `influxdb/`, ...) with
//! the same shape: config parsed from the `--sink` URI once, an encoder, a transport, tests beside them.
//!
//! Every sink sits behind [`manager::SinkManager`], which gives it its own bounded queue and deadline, so a slow
//! or dead sink never holds up scraping, the store or the other sinks, and what it drops is counted. With
//! `--sink_buffer_dir` the queue is backed by a durable [`spool`] per sink, so outages and restarts lose nothing.

pub mod influxdb;
pub mod log;
pub mod manager;
pub mod metrics;
pub mod spool;
pub mod util;

use async_trait::async_trait;
use heapster_model::{DataBatch, SpecUri};
use std::sync::Arc;

pub use manager::{SinkManager, SinkManagerConfig};
pub use spool::SpoolConfig;

/// Why a sink could not take a batch.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Worth trying again later (server down, timeout, 5xx).
    #[error("{0} (will retry)")]
    Transient(String),
    /// Retrying will not help (rejected data, bad credentials).
    #[error("{0}")]
    Permanent(String),
}

/// Why a `--sink` value could not be turned into a sink. Reported at start-up, before anything runs.
#[derive(Debug, thiserror::Error)]
#[error("--sink={uri}: {reason}")]
pub struct ConfigError {
    pub uri: String,
    pub reason: String,
}

/// One destination for batches.
#[async_trait]
pub trait DataSink: Send + Sync {
    /// Names the sink in logs and self-metrics (`log`, `influxdb:http://...`).
    fn name(&self) -> String;

    /// Writes one batch. Called by the manager with one batch at a time per sink, in order.
    async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError>;
}

/// The sink keys this build knows, for `--help` and error messages.
pub const KNOWN_SINKS: &[&str] = &["log", "influxdb"];

/// Turns one `--sink` value into a sink.
pub fn build(uri: &SpecUri) -> Result<Arc<dyn DataSink>, ConfigError> {
    match uri.key.as_str() {
        "log" => Ok(Arc::new(log::LogSink::from_uri(uri)?)),
        "influxdb" => Ok(Arc::new(influxdb::InfluxdbSink::from_uri(uri)?)),
        other => Err(ConfigError {
            uri: uri.to_string(),
            reason: format!("unknown sink {other:?}; this build knows: {}", KNOWN_SINKS.join(", ")),
        }),
    }
}

/// `--help`'s list of sink kinds with their options. (This branch's stand-in: the sink table replaces it.)
pub fn help() -> String {
    use heapster_model::options::{KindDoc, OptionSpec, render_help};
    const INFLUXDB: &[OptionSpec] = &[
        OptionSpec::new("db", "k8s", "the 1.x database"),
        OptionSpec::new("user", "root", "the 1.x user"),
        OptionSpec::secret("pw", "the 1.x password (default root)"),
        OptionSpec::new("retention", "", "a retention policy to create and write to (1.x)"),
        OptionSpec::new("secure", "false", "https even when the URL says http"),
        OptionSpec::new("insecuressl", "false", "accept any server certificate"),
        OptionSpec::new("withfields", "false", "one measurement per metric group, values as fields"),
        OptionSpec::new("schema", "heapster", "heapster or legacy"),
        OptionSpec::new("cluster_name", "default", "the cluster_name tag"),
        OptionSpec::new("disable_counter_metrics", "false", "leave out cumulative metrics"),
        OptionSpec::new("concurrency", "1", "requests of one batch in flight"),
        OptionSpec::new("timeout", "10s", "deadline of one request"),
        OptionSpec::new("batch_points", "10000", "points per request"),
        OptionSpec::new("gzip", "true", "gzip request bodies"),
        OptionSpec::secret("token", "the 2.x/3.x API token"),
        OptionSpec::new("org", "", "the 2.x organisation"),
        OptionSpec::new("bucket", "", "the 2.x/3.x bucket (default: db)"),
    ];
    render_help(&[
        KindDoc { key: "log", aliases: &[], usage: "log", summary: "Prints every batch to stdout.", options: &[] },
        KindDoc {
            key: "influxdb",
            aliases: &[],
            usage: "influxdb:http://HOST:8086[?opts]",
            summary: "InfluxDB 1.x, 2.x or 3.x, in Heapster's schema.",
            options: INFLUXDB,
        },
    ])
}
