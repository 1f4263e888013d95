//! Metric sources: each one turns something it can read (this host's cgroups, a kubelet, a cAdvisor) into
//! [`DataBatch`]es keyed and labelled as the model crate says.
//!
//! A [`MetricsSourceProvider`] says what to scrape this round (one source per node); the scrape loop in the
//! binary runs every source concurrently, each with its own deadline, and merges their batches.

pub mod cadvisor;
pub mod factory;
pub mod http;
pub mod json;
pub mod kubelet;
pub mod kubernetes;
pub mod local;
pub mod self_metrics;

use async_trait::async_trait;
use heapster_model::{DataBatch, Timestamp};
use std::sync::Arc;

pub use factory::{BuiltSource, Readiness, SOURCES, SourceKind, build, help, kind};
pub use heapster_model::options::ConfigError;
pub use self_metrics::SourceMetrics;

pub use heapster_net::ensure_crypto_provider;

/// Why one source produced no batch this round. The scrape loop logs it and counts it per source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{source_name}: reading {path}: {err}")]
    Io { source_name: String, path: String, err: std::io::Error },
    #[error("{0}")]
    Other(String),
}

/// One thing to scrape, such as this host or one kubelet.
#[async_trait]
pub trait MetricsSource: Send + Sync {
    /// Names the source in logs and self-metrics (`local:vm`, `kubelet:10.0.0.1:10250`).
    fn name(&self) -> String;

    /// Reads the current values. `timestamp` is the batch time the scrape loop assigned to this round; each set's
    /// own `scrape_time` says when its values were really read.
    async fn scrape(&self, timestamp: Timestamp) -> Result<DataBatch, SourceError>;

    /// As [`Self::scrape`], giving up at `deadline` (the scrape loop's, a little before the round's own): a source
    /// that makes requests ends them there itself, so that a slow target fails with its own cause (`timeout`)
    /// instead of being cut off by the round. At resolutions up to 11 s the round's deadline came before the
    /// kubelets' 10 s timeout, and `cause="timeout"` never counted. Sources that read this host need no deadline.
    async fn scrape_until(
        &self,
        timestamp: Timestamp,
        deadline: tokio::time::Instant,
    ) -> Result<DataBatch, SourceError> {
        let _ = deadline;
        self.scrape(timestamp).await
    }
}

/// The deadline of a scrape made without one ([`MetricsSource::scrape`]): far enough that each request's own
/// timeout decides, so that sources need one code path, with a deadline.
pub(crate) fn no_deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + std::time::Duration::from_secs(365 * 24 * 3600)
}

/// Says which sources to scrape this round; Kubernetes discovery changes the answer as nodes come and go.
pub trait MetricsSourceProvider: Send + Sync {
    fn sources(&self) -> Vec<Arc<dyn MetricsSource>>;
}

/// A provider whose sources never change (the local host, a fixed list).
pub struct StaticProvider(pub Vec<Arc<dyn MetricsSource>>);

impl MetricsSourceProvider for StaticProvider {
    fn sources(&self) -> Vec<Arc<dyn MetricsSource>> {
        self.0.clone()
    }
}
