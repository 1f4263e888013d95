//! One kubelet as a [`MetricsSource`]: fetch its summary, convert it, count what went wrong.

use super::client::{KubeletClient, ScrapeError};
use super::convert::{Duplicates, summary_to_sets_counted};
use crate::{MetricsSource, SourceError};
use async_trait::async_trait;
use heapster_model::{DataBatch, Timestamp};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// Labels of [`SCRAPE_ERRORS`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabels {
    pub cause: String,
}

/// Failed kubelet scrapes by cause (`timeout`, `malformed`, `too_large`, ...), registered by
/// [`crate::metrics::register`].
pub static SCRAPE_ERRORS: LazyLock<Family<CauseLabels, Counter>> = LazyLock::new(Family::default);

/// Labels of [`DUPLICATES_DROPPED`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `pod`, `container` or `system_container`.
    pub kind: String,
}

/// Summary entries dropped because a newer one had the same key (see [`super::convert::summary_to_sets`]), by
/// kind; registered by [`crate::metrics::register`].
pub static DUPLICATES_DROPPED: LazyLock<Family<KindLabels, Counter>> = LazyLock::new(Family::default);

/// The duplicates each node's kubelet last reported, so that a node listing the same duplicates every round is
/// logged at warn once (when what it reports changes), then at debug. Only nodes with duplicates are kept.
static LAST_DUPLICATES: LazyLock<Mutex<HashMap<String, Duplicates>>> = LazyLock::new(Default::default);

/// Counts `d` and logs it; says whether it was logged at warn (the first time, or when it changed).
pub(crate) fn count_duplicates(node: &str, d: Duplicates) -> bool {
    for (kind, n) in [("pod", d.pods), ("container", d.containers), ("system_container", d.system_containers)] {
        if n > 0 {
            DUPLICATES_DROPPED.get_or_create(&KindLabels { kind: kind.into() }).inc_by(n as u64);
        }
    }
    let mut last = LAST_DUPLICATES.lock().unwrap_or_else(|p| p.into_inner());
    let before = last.get(node).copied().unwrap_or_default();
    if d == before {
        if !d.is_empty() {
            tracing::debug!(node, ?d, "kubelet still lists duplicate entries; kept the newest of each");
        }
        return false;
    }
    if d.is_empty() {
        last.remove(node);
        tracing::info!(node, "kubelet no longer lists duplicate pods or containers");
        false
    } else {
        last.insert(node.to_owned(), d);
        tracing::warn!(
            node,
            pods = d.pods,
            containers = d.containers,
            system_containers = d.system_containers,
            "kubelet listed pods or containers twice under one name (recreated or restarted): kept the newest of \
             each, dropped the others (counted in heapster_kubelet_duplicates_dropped_total; logged again when \
             this changes)"
        );
        true
    }
}

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
        let (sets, duplicates) = summary_to_sets_counted(&summary, &self.node, self.host_id.as_deref(), timestamp);
        count_duplicates(&self.node, duplicates);
        Ok(DataBatch { timestamp, sets: sets.into_iter().collect() })
    }
}
