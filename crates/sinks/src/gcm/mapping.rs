//! Which heapster metrics become which Cloud Monitoring metrics, and on which monitored resource.
//!
//! `stackdriver` follows Heapster's `metrics/sinks/stackdriver` (its "new resource model"): the metric names,
//! kinds, value types and scales of `TranslateMetric`, on `k8s_container`, `k8s_pod` and `k8s_node`, with the
//! derived "evictable" memory (usage - working set). `gcm` follows `metrics/sinks/gcm`: every catalog metric under
//! its own name, on the `global` resource, with Heapster's GCM labels as metric labels (`metrics=autoscaling`:
//! only the node autoscaling metrics, labelled by host).

use heapster_model::catalog::{self, MetricType, ValueType};
use heapster_model::keys::MetricSetType;

/// GAUGE or CUMULATIVE, as the API spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Cumulative,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "GAUGE",
            Kind::Cumulative => "CUMULATIVE",
        }
    }
}

/// INT64 or DOUBLE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    Int64,
    Double,
}

impl Value {
    pub fn as_str(self) -> &'static str {
        match self {
            Value::Int64 => "INT64",
            Value::Double => "DOUBLE",
        }
    }
}

/// The monitored resource a series is written on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Container,
    Pod,
    Node,
    /// `gcm`'s: the project alone, as Heapster's GCM sink wrote (it set no resource).
    Global,
}

impl Resource {
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Container => "k8s_container",
            Resource::Pod => "k8s_pod",
            Resource::Node => "k8s_node",
            Resource::Global => "global",
        }
    }
}

/// Where a series' value comes from in a metric set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// An unlabelled metric.
    Metric(&'static str),
    /// `memory/usage - memory/working_set`: the memory the kernel can take back (Heapster's `memory/bytes_used`).
    Evictable,
    /// A labelled metric, one series per label set.
    Labeled(&'static str),
}

/// The metric labels a series carries besides fixed ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    None,
    /// `component` = the system container's name (`kubelet`, `runtime`).
    Component,
    /// `volume_name` = the filesystem's `resource_id` without Heapster's `Volume:` prefix.
    Volume,
    /// `make`, `model`, `accelerator_id`.
    Accelerator,
}

/// One heapster metric of one set type as one Cloud Monitoring metric.
#[derive(Debug, Clone, Copy)]
pub struct Mapping {
    pub set: MetricSetType,
    pub source: Source,
    /// The name after the prefix (`container/cpu/core_usage_time`).
    pub name: &'static str,
    pub kind: Kind,
    pub value: Value,
    /// Multiplies the value (nanoseconds to seconds, millicores to cores).
    pub scale: f64,
    /// UCUM, as the API takes it.
    pub unit: &'static str,
    pub resource: Resource,
    pub fixed: &'static [(&'static str, &'static str)],
    pub extra: Extra,
    pub description: &'static str,
}

use Extra as E;
use Kind::{Cumulative, Gauge};
use MetricSetType::{Node, Pod, PodContainer, SysContainer};
use Resource::{Container as C, Node as N, Pod as P};
use Source::{Evictable, Labeled as L, Metric as M};
use Value::{Double, Int64};

#[allow(clippy::too_many_arguments)]
const fn sd(
    set: MetricSetType,
    source: Source,
    name: &'static str,
    kind: Kind,
    value: Value,
    scale: f64,
    unit: &'static str,
    resource: Resource,
    fixed: &'static [(&'static str, &'static str)],
    extra: Extra,
    description: &'static str,
) -> Mapping {
    Mapping { set, source, name, kind, value, scale, unit, resource, fixed, extra, description }
}

const EVICTABLE: &[(&str, &str)] = &[("memory_type", "evictable")];
const NON_EVICTABLE: &[(&str, &str)] = &[("memory_type", "non-evictable")];
const MS: f64 = 1e-3;
const NS: f64 = 1e-9;

/// Heapster's stackdriver sink, metric by metric (its `TranslateMetric` and `TranslateLabeledMetric`).
#[rustfmt::skip]
pub const STACKDRIVER: &[Mapping] = &[
    sd(PodContainer, M("uptime"), "container/uptime", Gauge, Double, MS, "s", C, &[], E::None, "Time since the container started"),
    sd(PodContainer, M("cpu/limit"), "container/cpu/limit_cores", Gauge, Double, MS, "1", C, &[], E::None, "CPU cores limit of the container"),
    sd(PodContainer, M("cpu/request"), "container/cpu/request_cores", Gauge, Double, MS, "1", C, &[], E::None, "CPU cores requested by the container"),
    sd(PodContainer, M("cpu/usage"), "container/cpu/core_usage_time", Cumulative, Double, NS, "s", C, &[], E::None, "CPU time used by the container on all cores"),
    sd(PodContainer, M("memory/limit"), "container/memory/limit_bytes", Gauge, Int64, 1.0, "By", C, &[], E::None, "Memory limit of the container"),
    sd(PodContainer, Evictable, "container/memory/used_bytes", Gauge, Int64, 1.0, "By", C, EVICTABLE, E::None, "Memory used by the container"),
    sd(PodContainer, M("memory/working_set"), "container/memory/used_bytes", Gauge, Int64, 1.0, "By", C, NON_EVICTABLE, E::None, "Memory used by the container"),
    sd(PodContainer, M("memory/request"), "container/memory/request_bytes", Gauge, Int64, 1.0, "By", C, &[], E::None, "Memory requested by the container"),
    sd(PodContainer, M("ephemeral_storage/limit"), "container/ephemeral_storage/limit_bytes", Gauge, Int64, 1.0, "By", C, &[], E::None, "Ephemeral storage limit of the container"),
    sd(PodContainer, M("ephemeral_storage/request"), "container/ephemeral_storage/request_bytes", Gauge, Int64, 1.0, "By", C, &[], E::None, "Ephemeral storage requested by the container"),
    sd(PodContainer, M("ephemeral_storage/usage"), "container/ephemeral_storage/used_bytes", Gauge, Int64, 1.0, "By", C, &[], E::None, "Ephemeral storage used by the container"),
    sd(PodContainer, M("restart_count"), "container/restart_count", Cumulative, Int64, 1.0, "1", C, &[], E::None, "Restarts of the container"),
    sd(PodContainer, L("accelerator/memory_total"), "container/accelerator/memory_total", Gauge, Int64, 1.0, "By", C, &[], E::Accelerator, "Accelerator memory"),
    sd(PodContainer, L("accelerator/memory_used"), "container/accelerator/memory_used", Gauge, Int64, 1.0, "By", C, &[], E::Accelerator, "Accelerator memory used"),
    sd(PodContainer, L("accelerator/duty_cycle"), "container/accelerator/duty_cycle", Gauge, Int64, 1.0, "1", C, &[], E::Accelerator, "Percent of time the accelerator was busy"),
    sd(Pod, M("network/rx"), "pod/network/received_bytes_count", Cumulative, Int64, 1.0, "By", P, &[], E::None, "Bytes received by the pod"),
    sd(Pod, M("network/tx"), "pod/network/sent_bytes_count", Cumulative, Int64, 1.0, "By", P, &[], E::None, "Bytes sent by the pod"),
    sd(Pod, L("filesystem/usage"), "pod/volume/used_bytes", Gauge, Int64, 1.0, "By", P, &[], E::Volume, "Bytes used on the pod's volume"),
    sd(Pod, L("filesystem/limit"), "pod/volume/total_bytes", Gauge, Int64, 1.0, "By", P, &[], E::Volume, "Size of the pod's volume"),
    sd(Node, M("cpu/node_capacity"), "node/cpu/total_cores", Gauge, Double, MS, "1", N, &[], E::None, "CPU cores of the node"),
    sd(Node, M("cpu/node_allocatable"), "node/cpu/allocatable_cores", Gauge, Double, MS, "1", N, &[], E::None, "Allocatable CPU cores of the node"),
    sd(Node, M("cpu/usage"), "node/cpu/core_usage_time", Cumulative, Double, NS, "s", N, &[], E::None, "CPU time used on the node"),
    sd(Node, M("memory/node_capacity"), "node/memory/total_bytes", Gauge, Int64, 1.0, "By", N, &[], E::None, "Memory of the node"),
    sd(Node, M("memory/node_allocatable"), "node/memory/allocatable_bytes", Gauge, Int64, 1.0, "By", N, &[], E::None, "Allocatable memory of the node"),
    sd(Node, Evictable, "node/memory/used_bytes", Gauge, Int64, 1.0, "By", N, EVICTABLE, E::None, "Memory used on the node"),
    sd(Node, M("memory/working_set"), "node/memory/used_bytes", Gauge, Int64, 1.0, "By", N, NON_EVICTABLE, E::None, "Memory used on the node"),
    sd(Node, M("network/rx"), "node/network/received_bytes_count", Cumulative, Int64, 1.0, "By", N, &[], E::None, "Bytes received by the node"),
    sd(Node, M("network/tx"), "node/network/sent_bytes_count", Cumulative, Int64, 1.0, "By", N, &[], E::None, "Bytes sent by the node"),
    sd(Node, M("ephemeral_storage/node_capacity"), "node/ephemeral_storage/total_bytes", Gauge, Int64, 1.0, "By", N, &[], E::None, "Ephemeral storage of the node"),
    sd(SysContainer, Evictable, "node_daemon/memory/used_bytes", Gauge, Int64, 1.0, "By", N, EVICTABLE, E::Component, "Memory used by a system daemon"),
    sd(SysContainer, M("memory/working_set"), "node_daemon/memory/used_bytes", Gauge, Int64, 1.0, "By", N, NON_EVICTABLE, E::Component, "Memory used by a system daemon"),
    sd(SysContainer, M("cpu/usage"), "node_daemon/cpu/core_usage_time", Cumulative, Double, NS, "s", N, &[], E::Component, "CPU time used by a system daemon"),
];

/// The metric labels `gcm` copies from a metric set (Heapster's `gcmLabels`, at most 10 per descriptor).
pub const GCM_LABELS: &[&str] = &[
    "type",
    "pod_name",
    "namespace_name",
    "hostname",
    "host_id",
    "container_name",
    "container_base_image",
    "resource_id",
];

/// The labels of `gcm`'s node autoscaling metrics (Heapster's `gcmNodeAutoscalingLabels`).
pub const GCM_AUTOSCALING_LABELS: &[&str] = &["hostname", "resource_id", "resource_type"];

/// Heapster's `NodeAutoscalingMetrics`: what `gcm?metrics=autoscaling` writes.
pub const NODE_AUTOSCALING: &[&str] = &[
    "cpu/node_capacity",
    "memory/node_capacity",
    "ephemeral_storage/node_capacity",
    "cpu/node_allocatable",
    "memory/node_allocatable",
    "ephemeral_storage/node_allocatable",
    "cpu/node_utilization",
    "memory/node_utilization",
    "ephemeral_storage/node_utilization",
    "cpu/node_reservation",
    "memory/node_reservation",
    "ephemeral_storage/node_reservation",
];

/// `gcm`'s kind and value type of a catalog metric: its own.
pub fn gcm_kind(d: &catalog::MetricDescriptor) -> (Kind, Value) {
    let kind = match d.metric_type {
        MetricType::Cumulative => Kind::Cumulative,
        MetricType::Gauge => Kind::Gauge,
    };
    let value = match d.value_type {
        ValueType::Int64 => Value::Int64,
        ValueType::Float => Value::Double,
    };
    (kind, value)
}

/// The UCUM unit of a catalog metric.
pub fn gcm_unit(d: &catalog::MetricDescriptor) -> &'static str {
    use catalog::Units::*;
    match d.units {
        Count | Ratio => "1",
        Bytes => "By",
        Milliseconds => "ms",
        Microseconds => "us",
        Nanoseconds => "ns",
        Millicores => "{millicores}",
    }
}

/// The metric label keys a stackdriver metric carries, over every mapping of that name (for its descriptor).
pub fn stackdriver_label_keys(name: &str) -> Vec<&'static str> {
    let mut keys = Vec::new();
    for m in STACKDRIVER.iter().filter(|m| m.name == name) {
        keys.extend(m.fixed.iter().map(|(k, _)| *k));
        match m.extra {
            Extra::None => {}
            Extra::Component => keys.push("component"),
            Extra::Volume => keys.push("volume_name"),
            Extra::Accelerator => keys.extend(["make", "model", "accelerator_id"]),
        }
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stackdriver_source_is_in_the_catalog_and_one_name_has_one_kind() {
        for m in STACKDRIVER {
            if let Source::Metric(n) | Source::Labeled(n) = m.source {
                let d = catalog::find(n).unwrap_or_else(|| panic!("{n} is not in the catalog"));
                assert_eq!(d.labeled, matches!(m.source, Source::Labeled(_)), "{n}");
            }
            for other in STACKDRIVER.iter().filter(|o| o.name == m.name) {
                assert_eq!((other.kind, other.value, other.unit), (m.kind, m.value, m.unit), "{}", m.name);
            }
        }
        assert_eq!(stackdriver_label_keys("node_daemon/memory/used_bytes"), ["component", "memory_type"]);
        assert!(stackdriver_label_keys("container/uptime").is_empty());
        for n in NODE_AUTOSCALING {
            assert!(catalog::find(n).is_some(), "{n}");
        }
    }
}
