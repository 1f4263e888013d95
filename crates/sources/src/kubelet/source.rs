//! One kubelet as a [`MetricsSource`]: fetch its summary, convert it, count what went wrong.

use super::client::{KubeletClient, ScrapeError};
use super::convert::summary_to_sets_counted;
use crate::kubernetes::KubeMetadata;
use crate::self_metrics::{KubeletCauseLabels, SourceMetrics};
use crate::{MetricsSource, SourceError};
use async_trait::async_trait;
use heapster_model::{DataBatch, Timestamp};
use std::sync::Arc;

/// A node's kubelet, reached at `url`.
pub struct KubeletSource {
    pub node: String,
    pub host_id: Option<String>,
    pub url: String,
    pub client: KubeletClient,
    /// Where failed scrapes and dropped duplicates are counted.
    pub metrics: SourceMetrics,
    /// The pods the API server lists, when nodes come from it: pods the kubelet reports that are not among them
    /// (on this node) are dropped and counted, so that a kubelet cannot fill the model with pods of its own.
    pub api_pods: Option<Arc<KubeMetadata>>,
}

#[async_trait]
impl MetricsSource for KubeletSource {
    fn name(&self) -> String {
        format!("kubelet:{}", self.node)
    }

    async fn scrape(&self, timestamp: Timestamp) -> Result<DataBatch, SourceError> {
        self.scrape_until(timestamp, crate::no_deadline()).await
    }

    async fn scrape_until(
        &self,
        timestamp: Timestamp,
        deadline: tokio::time::Instant,
    ) -> Result<DataBatch, SourceError> {
        let summary = self.client.summary_until(&self.url, deadline).await;
        let mut summary = summary.map_err(|e: ScrapeError| {
            self.metrics.kubelet_scrape_errors.get_or_create(&KubeletCauseLabels { cause: e.cause().into() }).inc();
            SourceError::Other(format!("kubelet {} ({}): {e}", self.node, self.url))
        })?;
        // Filtering and converting the summary to metric sets is decoding too, in heapster's bill.
        let _cpu = heapster_cost::DECODE_STAGE.start();
        if let Some(pods) = &self.api_pods {
            let before = summary.pods.len();
            summary.pods.retain(|p| pods.pod_on_node(&p.pod_ref.namespace, &p.pod_ref.name, &self.node) != Some(false));
            self.metrics.count_unknown_pods(&self.node, before - summary.pods.len());
        }
        let (sets, duplicates) = summary_to_sets_counted(&summary, &self.node, self.host_id.as_deref(), timestamp);
        self.metrics.count_duplicates(&self.node, duplicates);
        Ok(DataBatch { timestamp, sets: sets.into_iter().collect() })
    }
}
