//! The sources' own health on heapster's `/metrics`, registered on the registry the binary owns and handed to
//! every source when it is built, so that each test can own its counters instead of sharing process-wide ones.

use crate::kubelet::Duplicates;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Labels of [`SourceMetrics::unavailable`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UnavailableLabels {
    pub source: String,
    pub metric: String,
    pub reason: String,
}

/// Labels of [`SourceMetrics::kubelet_scrape_errors`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KubeletCauseLabels {
    /// [`crate::kubelet::ScrapeError::cause`].
    pub cause: String,
}

/// Labels of [`SourceMetrics::kubelet_duplicates_dropped`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `pod`, `container` or `system_container`.
    pub kind: String,
}

/// Labels of [`SourceMetrics::cadvisor_scrape_errors`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CadvisorCauseLabels {
    /// `subcontainers` or `machine`: which document failed.
    pub document: String,
    /// [`crate::cadvisor::FetchError::cause`].
    pub cause: String,
}

/// Every source's self-metrics. Clones share the same series, so a provider hands a clone to each source it makes.
#[derive(Clone, Default)]
pub struct SourceMetrics {
    /// 1 for every metric a source cannot read on this host (so it is absent, not zero), with the reason.
    pub unavailable: Family<UnavailableLabels, Gauge>,
    /// Failed kubelet scrapes by cause (`timeout`, `malformed`, `too_large`, ...).
    pub kubelet_scrape_errors: Family<KubeletCauseLabels, Counter>,
    /// Summary entries dropped because a newer one had the same key, by kind.
    pub kubelet_duplicates_dropped: Family<KindLabels, Counter>,
    /// Failed cAdvisor requests by document and cause. Per host failures are in the scrape loop's
    /// `heapster_scrape_errors{source}`.
    pub cadvisor_scrape_errors: Family<CadvisorCauseLabels, Counter>,
    /// Pods a kubelet reported that the API server does not list on its node, dropped.
    pub kubelet_unknown_pods_dropped: Counter,
    /// Nodes known from the API server.
    pub kubernetes_nodes: Gauge,
    /// Nodes skipped this round because their Ready condition is not True (scraping them would only time out).
    pub kubernetes_nodes_not_ready: Gauge,
    /// The duplicates each node's kubelet last reported, so that a node listing the same duplicates every round is
    /// logged at warn once (when what it reports changes), then at debug. Only nodes with duplicates are kept.
    last_duplicates: Arc<Mutex<HashMap<String, Duplicates>>>,
    /// Nodes whose unknown pods were logged at warn: once per node, then at debug (a pod created or deleted a
    /// moment ago is unknown for a round, so the count comes and goes).
    warned_unknown_pods: Arc<Mutex<HashSet<String>>>,
}

impl SourceMetrics {
    /// Registers every family on `registry` (heapster's `/metrics`) and returns the handles the sources count with.
    pub fn register(registry: &mut Registry) -> SourceMetrics {
        let m = SourceMetrics::default();
        registry.register(
            "heapster_source_metric_unavailable",
            "Metrics a source cannot read on this host (absent from its batches, not zero)",
            m.unavailable.clone(),
        );
        registry.register(
            "heapster_kubelet_scrape_errors",
            "Kubelet scrapes that gave no data, by cause",
            m.kubelet_scrape_errors.clone(),
        );
        registry.register(
            "heapster_kubelet_duplicates_dropped",
            "Pods, containers and system containers a kubelet listed twice under one name; the newest was kept",
            m.kubelet_duplicates_dropped.clone(),
        );
        registry.register(
            "heapster_cadvisor_scrape_errors",
            "cAdvisor requests that gave no data, by document (subcontainers, machine) and cause",
            m.cadvisor_scrape_errors.clone(),
        );
        registry.register(
            "heapster_kubelet_unknown_pods_dropped",
            "Pods a kubelet reported that the API server does not list on that node; dropped",
            m.kubelet_unknown_pods_dropped.clone(),
        );
        registry.register(
            "heapster_kubernetes_nodes",
            "Nodes known from the Kubernetes API server",
            m.kubernetes_nodes.clone(),
        );
        registry.register(
            "heapster_kubernetes_nodes_not_ready",
            "Nodes skipped because their Ready condition is not True",
            m.kubernetes_nodes_not_ready.clone(),
        );
        m
    }

    /// Counts the pods of `node` dropped because the API server does not list them there, and says so once.
    pub(crate) fn count_unknown_pods(&self, node: &str, dropped: usize) {
        if dropped == 0 {
            return;
        }
        self.kubelet_unknown_pods_dropped.inc_by(dropped as u64);
        if self.warned_unknown_pods.lock().unwrap_or_else(|p| p.into_inner()).insert(node.to_owned()) {
            tracing::warn!(
                node,
                dropped,
                "kubelet reported pods the API server does not list on this node: dropped (counted in \
                 heapster_kubelet_unknown_pods_dropped_total; logged once per node, then at debug)"
            );
        } else {
            tracing::debug!(node, dropped, "kubelet reported pods the API server does not list on this node");
        }
    }

    /// Counts the duplicates a node's kubelet listed and logs them; says whether it was logged at warn (the first
    /// time, or when what the node lists changed).
    pub(crate) fn count_duplicates(&self, node: &str, d: Duplicates) -> bool {
        for (kind, n) in [("pod", d.pods), ("container", d.containers), ("system_container", d.system_containers)] {
            if n > 0 {
                self.kubelet_duplicates_dropped.get_or_create(&KindLabels { kind: kind.into() }).inc_by(n as u64);
            }
        }
        let mut last = self.last_duplicates.lock().unwrap_or_else(|p| p.into_inner());
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
}
