//! Every metric heapster knows, described once.
//!
//! Heapster kept these descriptions in `metrics/core/metrics.go`; the seed's ten metrics come first, then what
//! Heapster 1.6 added, then what heapster-rs adds beyond it (OOM kills, CPU throttling, PSI). A metric that is not
//! in this table can still flow through the pipeline as `custom/<name>` (kubelet user-defined metrics).

use serde::Serialize;

/// Whether a value only grows (until its container restarts) or can go either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    /// Monotonic counter since the entity started; rates are derived from it.
    Cumulative,
    /// A point-in-time reading.
    Gauge,
}

impl MetricType {
    /// The name Heapster used in its metric-export schema and the seed's InfluxDB series names.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Cumulative => "cumulative",
            MetricType::Gauge => "gauge",
        }
    }
}

/// Whether values are whole numbers or fractions. Kept through the pipeline so that the APIs do not truncate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    Int64,
    Float,
}

/// Units, spelled as Heapster's metric-export schema spelled them. Rates keep the unit of their counter and mean
/// "per second", as in Heapster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Units {
    #[serde(rename = "count")]
    Count,
    #[serde(rename = "bytes")]
    Bytes,
    #[serde(rename = "ms")]
    Milliseconds,
    #[serde(rename = "us")]
    Microseconds,
    #[serde(rename = "ns")]
    Nanoseconds,
    #[serde(rename = "millicores")]
    Millicores,
    /// A fraction between 0 and 1 (node utilization and reservation).
    #[serde(rename = "ratio")]
    Ratio,
}

impl Units {
    /// The short name used in schemas and in the seed's InfluxDB series names (`cpu/usage_ns_cumulative`).
    pub fn as_str(self) -> &'static str {
        match self {
            Units::Count => "count",
            Units::Bytes => "bytes",
            Units::Milliseconds => "ms",
            Units::Microseconds => "us",
            Units::Nanoseconds => "ns",
            Units::Millicores => "millicores",
            Units::Ratio => "ratio",
        }
    }
}

/// One metric: how it is named, what it measures and how its values behave.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetricDescriptor {
    pub name: &'static str,
    pub description: &'static str,
    #[serde(rename = "type")]
    pub metric_type: MetricType,
    pub value_type: ValueType,
    pub units: Units,
    /// True when each value carries extra labels (`resource_id` for filesystems and disks, the accelerator labels),
    /// so one metric set holds several series of this metric.
    pub labeled: bool,
    /// For a `_rate` metric, the cumulative metric it is computed from.
    pub rate_of: Option<&'static str>,
}

const fn metric(
    name: &'static str,
    metric_type: MetricType,
    value_type: ValueType,
    units: Units,
    description: &'static str,
) -> MetricDescriptor {
    MetricDescriptor { name, description, metric_type, value_type, units, labeled: false, rate_of: None }
}

const fn labeled(mut d: MetricDescriptor) -> MetricDescriptor {
    d.labeled = true;
    d
}

/// A per-second rate of `counter`, a gauge in the counter's units.
const fn rate(name: &'static str, counter: &'static str, units: Units, description: &'static str) -> MetricDescriptor {
    MetricDescriptor {
        name,
        description,
        metric_type: MetricType::Gauge,
        value_type: ValueType::Float,
        units,
        labeled: false,
        rate_of: Some(counter),
    }
}

/// A rate whose values are whole numbers (`cpu/usage_rate` in millicores, as Heapster typed it).
const fn int_rate(mut d: MetricDescriptor) -> MetricDescriptor {
    d.value_type = ValueType::Int64;
    d
}

use MetricType::{Cumulative, Gauge};
use Units::*;
use ValueType::{Float, Int64};

/// The catalog. Order is the order of the docs and of `metric-export-schema`.
pub const CATALOG: &[MetricDescriptor] = &[
    // --- The seed's metrics (Heapster v0.9 - v0.11) ---
    metric("uptime", Cumulative, Int64, Milliseconds, "Number of milliseconds since the container was started"),
    metric("cpu/usage", Cumulative, Int64, Nanoseconds, "Cumulative CPU usage on all cores"),
    metric("memory/usage", Gauge, Int64, Bytes, "Total memory usage"),
    metric("memory/page_faults", Cumulative, Int64, Count, "Number of page faults"),
    metric(
        "memory/working_set",
        Gauge,
        Int64,
        Bytes,
        "Total working set usage. Working set is the memory being used and not easily dropped by the kernel",
    ),
    metric("network/rx", Cumulative, Int64, Bytes, "Cumulative number of bytes received over the network"),
    metric(
        "network/rx_errors",
        Cumulative,
        Int64,
        Count,
        "Cumulative number of errors while receiving over the network",
    ),
    metric("network/tx", Cumulative, Int64, Bytes, "Cumulative number of bytes sent over the network"),
    metric("network/tx_errors", Cumulative, Int64, Count, "Cumulative number of errors while sending over the network"),
    labeled(metric(
        "filesystem/usage",
        Gauge,
        Int64,
        Bytes,
        "Total number of bytes used on a filesystem identified by label 'resource_id'",
    )),
    // --- Heapster 1.x ---
    // An integer, as in Heapster: its InfluxDB field is an integer and a float would be a field type conflict.
    int_rate(rate("cpu/usage_rate", "cpu/usage", Millicores, "CPU usage on all cores in millicores")),
    metric("cpu/request", Gauge, Int64, Millicores, "CPU request (the guaranteed amount of resources) in millicores"),
    metric("cpu/limit", Gauge, Int64, Millicores, "CPU hard limit in millicores"),
    metric(
        "cpu/load",
        Gauge,
        Int64,
        Count,
        "CPU load: runnable and uninterruptible tasks x 1000, smoothed over 10 s (cAdvisor's load_average)",
    ),
    metric("cpu/node_capacity", Gauge, Float, Millicores, "CPU capacity of a node"),
    metric("cpu/node_allocatable", Gauge, Float, Millicores, "CPU allocatable of a node"),
    metric("cpu/node_reservation", Gauge, Float, Ratio, "Share of CPU that is reserved (requested) on a node"),
    metric("cpu/node_utilization", Gauge, Float, Ratio, "CPU utilization as a share of node allocatable"),
    metric("memory/rss", Gauge, Int64, Bytes, "RSS memory usage"),
    metric("memory/cache", Gauge, Int64, Bytes, "Cache memory usage"),
    metric("memory/major_page_faults", Cumulative, Int64, Count, "Number of major page faults"),
    rate("memory/page_faults_rate", "memory/page_faults", Count, "Number of page faults per second"),
    rate("memory/major_page_faults_rate", "memory/major_page_faults", Count, "Number of major page faults per second"),
    metric("memory/request", Gauge, Int64, Bytes, "Memory request (the guaranteed amount of resources) in bytes"),
    metric("memory/limit", Gauge, Int64, Bytes, "Memory hard limit in bytes"),
    metric("memory/node_capacity", Gauge, Float, Bytes, "Memory capacity of a node"),
    metric("memory/node_allocatable", Gauge, Float, Bytes, "Memory allocatable of a node"),
    metric("memory/node_reservation", Gauge, Float, Ratio, "Share of memory that is reserved (requested) on a node"),
    metric("memory/node_utilization", Gauge, Float, Ratio, "Memory utilization as a share of memory allocatable"),
    rate("network/rx_rate", "network/rx", Bytes, "Number of bytes received over the network per second"),
    rate(
        "network/rx_errors_rate",
        "network/rx_errors",
        Count,
        "Number of errors while receiving over the network per second",
    ),
    rate("network/tx_rate", "network/tx", Bytes, "Number of bytes sent over the network per second"),
    rate(
        "network/tx_errors_rate",
        "network/tx_errors",
        Count,
        "Number of errors while sending over the network per second",
    ),
    labeled(metric("filesystem/limit", Gauge, Int64, Bytes, "Total size of the filesystem in bytes")),
    labeled(metric("filesystem/available", Gauge, Int64, Bytes, "Bytes available to non-root users on the filesystem")),
    labeled(metric("filesystem/inodes", Gauge, Int64, Count, "Total number of inodes on the filesystem")),
    labeled(metric("filesystem/inodes_free", Gauge, Int64, Count, "Number of free inodes on the filesystem")),
    labeled(metric("disk/io_read_bytes", Cumulative, Int64, Bytes, "Number of bytes read from a disk partition")),
    labeled(metric("disk/io_write_bytes", Cumulative, Int64, Bytes, "Number of bytes written to a disk partition")),
    labeled(rate(
        "disk/io_read_bytes_rate",
        "disk/io_read_bytes",
        Bytes,
        "Number of bytes read from a disk partition per second",
    )),
    labeled(rate(
        "disk/io_write_bytes_rate",
        "disk/io_write_bytes",
        Bytes,
        "Number of bytes written to a disk partition per second",
    )),
    metric("ephemeral_storage/request", Gauge, Int64, Bytes, "Ephemeral storage request in bytes"),
    metric("ephemeral_storage/limit", Gauge, Int64, Bytes, "Ephemeral storage hard limit in bytes"),
    metric("ephemeral_storage/usage", Gauge, Int64, Bytes, "Ephemeral storage usage in bytes"),
    metric("ephemeral_storage/node_capacity", Gauge, Float, Bytes, "Ephemeral storage capacity of a node"),
    metric("ephemeral_storage/node_allocatable", Gauge, Float, Bytes, "Ephemeral storage allocatable of a node"),
    metric(
        "ephemeral_storage/node_reservation",
        Gauge,
        Float,
        Ratio,
        "Share of ephemeral storage that is reserved (requested) on a node",
    ),
    metric(
        "ephemeral_storage/node_utilization",
        Gauge,
        Float,
        Ratio,
        "Ephemeral storage utilization as a share of allocatable",
    ),
    labeled(metric("accelerator/memory_total", Gauge, Int64, Bytes, "Memory capacity of an accelerator")),
    labeled(metric("accelerator/memory_used", Gauge, Int64, Bytes, "Memory used by an accelerator")),
    labeled(metric(
        "accelerator/duty_cycle",
        Gauge,
        Int64,
        Count,
        "Percent of time over the past sample period during which the accelerator was actively processing",
    )),
    metric("restart_count", Gauge, Int64, Count, "Number of times the container has been restarted"),
    // --- Beyond Heapster ---
    metric(
        "memory/oom_kills",
        Cumulative,
        Int64,
        Count,
        "Number of processes killed by the OOM killer in the container",
    ),
    metric("cpu/throttled_time", Cumulative, Int64, Nanoseconds, "Time the container was throttled by its CPU quota"),
    metric(
        "cpu/throttled_periods",
        Cumulative,
        Int64,
        Count,
        "Number of CFS periods in which the container was throttled",
    ),
    rate(
        "cpu/throttled_time_rate",
        "cpu/throttled_time",
        Nanoseconds,
        "Nanoseconds throttled per second (1e9 = throttled all the time)",
    ),
    rate("cpu/throttled_periods_rate", "cpu/throttled_periods", Count, "Throttled CFS periods per second"),
    metric("cpu/pressure_some", Cumulative, Int64, Microseconds, "PSI: time some tasks were stalled waiting for CPU"),
    metric("cpu/pressure_full", Cumulative, Int64, Microseconds, "PSI: time all tasks were stalled waiting for CPU"),
    metric("memory/pressure_some", Cumulative, Int64, Microseconds, "PSI: time some tasks were stalled on memory"),
    metric("memory/pressure_full", Cumulative, Int64, Microseconds, "PSI: time all tasks were stalled on memory"),
    metric("io/pressure_some", Cumulative, Int64, Microseconds, "PSI: time some tasks were stalled on I/O"),
    metric("io/pressure_full", Cumulative, Int64, Microseconds, "PSI: time all tasks were stalled on I/O"),
    rate("cpu/pressure_some_rate", "cpu/pressure_some", Microseconds, "PSI: microseconds stalled on CPU per second"),
    rate(
        "cpu/pressure_full_rate",
        "cpu/pressure_full",
        Microseconds,
        "PSI: microseconds fully stalled on CPU per second",
    ),
    rate(
        "memory/pressure_some_rate",
        "memory/pressure_some",
        Microseconds,
        "PSI: microseconds stalled on memory per second",
    ),
    rate(
        "memory/pressure_full_rate",
        "memory/pressure_full",
        Microseconds,
        "PSI: microseconds fully stalled on memory per second",
    ),
    rate("io/pressure_some_rate", "io/pressure_some", Microseconds, "PSI: microseconds stalled on I/O per second"),
    rate(
        "io/pressure_full_rate",
        "io/pressure_full",
        Microseconds,
        "PSI: microseconds fully stalled on I/O per second",
    ),
];

/// Prefix of metrics that come from outside the catalog (kubelet user-defined metrics).
pub const CUSTOM_PREFIX: &str = "custom/";

/// Looks a metric up by name. Linear, but the catalog is small and this is not on the per-point path.
pub fn find(name: &str) -> Option<&'static MetricDescriptor> {
    CATALOG.iter().find(|d| d.name == name)
}

/// The `_rate` metric derived from `counter`, if the catalog has one.
pub fn rate_of(counter: &str) -> Option<&'static MetricDescriptor> {
    CATALOG.iter().find(|d| d.rate_of == Some(counter))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique() {
        let mut seen = HashSet::new();
        for d in CATALOG {
            assert!(seen.insert(d.name), "{} twice in the catalog", d.name);
        }
    }

    #[test]
    fn seed_metrics_have_the_seed_types_and_units() {
        let want = [
            ("uptime", Cumulative, Milliseconds),
            ("cpu/usage", Cumulative, Nanoseconds),
            ("memory/usage", Gauge, Bytes),
            ("memory/page_faults", Cumulative, Count),
            ("memory/working_set", Gauge, Bytes),
            ("network/rx", Cumulative, Bytes),
            ("network/rx_errors", Cumulative, Count),
            ("network/tx", Cumulative, Bytes),
            ("network/tx_errors", Cumulative, Count),
            ("filesystem/usage", Gauge, Bytes),
        ];
        for (name, t, u) in want {
            let d = find(name).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!((d.metric_type, d.units), (t, u), "{name}");
        }
    }

    #[test]
    fn every_rate_points_at_a_cumulative_counter_with_the_same_labelling() {
        let mut rates = 0;
        for d in CATALOG.iter().filter(|d| d.rate_of.is_some()) {
            let c = find(d.rate_of.unwrap()).expect("rate of an unknown metric");
            assert_eq!(c.metric_type, Cumulative, "{} is a rate of a gauge", d.name);
            assert_eq!(c.labeled, d.labeled, "{}", d.name);
            assert_eq!(d.name, format!("{}_rate", c.name));
            rates += 1;
        }
        assert!(rates >= 14);
        assert_eq!(rate_of("network/rx").unwrap().name, "network/rx_rate");
        assert!(rate_of("uptime").is_none());
    }
}
