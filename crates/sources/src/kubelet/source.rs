//! One kubelet as a [`MetricsSource`]: fetch its summary, convert it, count what went wrong.

use super::client::{KubeletClient, ScrapeError};
use super::convert::summary_to_sets_counted;
use crate::self_metrics::{KubeletCauseLabels, SourceMetrics};
use crate::{MetricsSource, SourceError};
use async_trait::async_trait;
use heapster_model::{DataBatch, Timestamp};

/// A node's kubelet, reached at `url`.
pub struct KubeletSource {
    pub node: String,
    pub host_id: Option<String>,
    pub url: String,
    pub client: KubeletClient,
    /// Where failed scrapes and dropped duplicates are counted.
    pub metrics: SourceMetrics,
}

#[async_trait]
impl MetricsSource for KubeletSource {
    fn name(&self) -> String {
        format!("kubelet:{}", self.node)
    }

    async fn scrape(&self, timestamp: Timestamp) -> Result<DataBatch, SourceError> {
        let summary = self.client.summary(&self.url).await.map_err(|e: ScrapeError| {
            self.metrics.kubelet_scrape_errors.get_or_create(&KubeletCauseLabels { cause: e.cause().into() }).inc();
            SourceError::Other(format!("kubelet {} ({}): {e}", self.node, self.url))
        })?;
        let (sets, duplicates) = summary_to_sets_counted(&summary, &self.node, self.host_id.as_deref(), timestamp);
        self.metrics.count_duplicates(&self.node, duplicates);
        Ok(DataBatch { timestamp, sets: sets.into_iter().collect() })
    }
}
