//! One kubelet as a [`MetricsSource`]: fetch its summary, convert it, count what went wrong.

use super::client::{KubeletClient, ScrapeError};
use super::convert::summary_to_sets;
use crate::{MetricsSource, SourceError};
use async_trait::async_trait;
use heapster_model::{DataBatch, Timestamp};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::sync::LazyLock;

/// Labels of [`SCRAPE_ERRORS`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabels {
    pub cause: String,
}

/// Failed kubelet scrapes by cause (`timeout`, `malformed`, `too_large`, ...), registered by
/// [`crate::metrics::register`].
pub static SCRAPE_ERRORS: LazyLock<Family<CauseLabels, Counter>> = LazyLock::new(Family::default);

/// A node's kubelet, reached at `url`.
pub struct KubeletSource {
    pub node: String,
    pub host_id: Option<String>,
    pub url: String,
    pub client: KubeletClient,
}

#[async_trait]
impl MetricsSource for KubeletSource {
    fn name(&self) -> String {
        format!("kubelet:{}", self.node)
    }

    async fn scrape(&self, timestamp: Timestamp) -> Result<DataBatch, SourceError> {
        let summary = self.client.summary(&self.url).await.map_err(|e: ScrapeError| {
            SCRAPE_ERRORS.get_or_create(&CauseLabels { cause: e.cause().into() }).inc();
            SourceError::Other(format!("kubelet {} ({}): {e}", self.node, self.url))
        })?;
        let sets = summary_to_sets(&summary, &self.node, self.host_id.as_deref(), timestamp);
        Ok(DataBatch { timestamp, sets: sets.into_iter().collect() })
    }
}
