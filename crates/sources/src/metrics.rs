//! Self-metrics of the sources, registered into heapster's `/metrics` by the binary.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::LazyLock;

/// Labels of [`UNAVAILABLE`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UnavailableLabels {
    pub source: String,
    pub metric: String,
    pub reason: String,
}

/// 1 for every metric a source cannot read on this host (so it is absent, not zero), with the reason.
pub static UNAVAILABLE: LazyLock<Family<UnavailableLabels, Gauge>> = LazyLock::new(Family::default);

pub fn register(registry: &mut Registry) {
    registry.register(
        "heapster_source_metric_unavailable",
        "Metrics a source cannot read on this host (absent from its batches, not zero)",
        UNAVAILABLE.clone(),
    );
    registry.register(
        "heapster_kubelet_scrape_errors",
        "Kubelet scrapes that gave no data, by cause",
        crate::kubelet::source::SCRAPE_ERRORS.clone(),
    );
    registry.register(
        "heapster_kubelet_duplicates_dropped",
        "Pods, containers and system containers a kubelet listed twice under one name; the newest was kept",
        crate::kubelet::source::DUPLICATES_DROPPED.clone(),
    );
    registry.register(
        "heapster_cadvisor_scrape_errors",
        "cAdvisor requests that gave no data, by document (subcontainers, machine) and cause",
        crate::cadvisor::source::SCRAPE_ERRORS.clone(),
    );
    registry.register(
        "heapster_kubernetes_nodes",
        "Nodes known from the Kubernetes API server",
        crate::kubernetes::KNOWN_NODES.clone(),
    );
    registry.register(
        "heapster_kubernetes_nodes_not_ready",
        "Nodes skipped because their Ready condition is not True",
        crate::kubernetes::NOT_READY_NODES.clone(),
    );
}
