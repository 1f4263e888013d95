//! The JSON objects of the metrics API (`k8s.io/metrics/pkg/apis/metrics`), borrowed from the store's strings so
//! that writing a big list allocates little per item.

use super::Usage;
use crate::types::rfc3339;
use heapster_model::Labels;
use heapster_model::quantity::{binary_si, decimal_si};
use serde::Serialize;

/// `metadata` of a NodeMetrics, PodMetrics, Node or Pod.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Meta<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<&'a str>,
    pub creation_timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<&'a Labels>,
}

/// `usage`: CPU in nanocores and memory in bytes, as canonical quantities.
#[derive(Debug, Serialize)]
pub(crate) struct ResourceList {
    pub cpu: String,
    pub memory: String,
}

impl From<Usage> for ResourceList {
    fn from(u: Usage) -> Self {
        ResourceList { cpu: decimal_si(u.cpu_nanocores, -9), memory: binary_si(u.memory_bytes) }
    }
}

/// A NodeMetrics. `kind` and `apiVersion` are set on a get and left out of list items, as a real server does.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NodeMetrics<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<&'static str>,
    pub metadata: Meta<'a>,
    pub timestamp: String,
    pub window: &'a str,
    pub usage: ResourceList,
}

/// One container of a PodMetrics.
#[derive(Debug, Serialize)]
pub(crate) struct ContainerMetrics<'a> {
    pub name: &'a str,
    pub usage: ResourceList,
}

/// A PodMetrics; `kind` and `apiVersion` as in [`NodeMetrics`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PodMetrics<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<&'static str>,
    pub metadata: Meta<'a>,
    pub timestamp: String,
    pub window: &'a str,
    pub containers: Vec<ContainerMetrics<'a>>,
}

/// The RFC 3339 form of a store timestamp, in seconds as Kubernetes' `metav1.Time` sends it.
pub(crate) fn time(ts: heapster_model::Timestamp) -> String {
    rfc3339(ts - ts.rem_euclid(1000))
}
