//! The metric families of the two pages: names, types and HELP texts as the kubelet serves them, and the heapster
//! metric each one is read from.
//!
//! cAdvisor's texts are those of `google/cadvisor` `metrics/prometheus.go` (checked against a kubelet 1.35
//! `/metrics/cadvisor` capture); the resource metrics are `kubernetes/kubernetes`
//! `pkg/kubelet/metrics/collectors/resource_metrics.go` as of 1.29, where they became `[STABLE]` and `scrape_error`
//! was renamed `resource_scrape_error` (both are served, for scrapers of either age).

use super::Kind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Type {
    Counter,
    Gauge,
}

impl Type {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
        }
    }
}

/// How a stored value becomes the exposed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conv {
    Same,
    /// Nanoseconds to seconds.
    Seconds,
    /// Millicores (or milli-anything) to units.
    Units,
    /// A limit in millicores to a CFS quota in microseconds per [`CFS_PERIOD_US`].
    CfsQuota,
    /// A limit in millicores to the CFS period, which the kubelet always sets to [`CFS_PERIOD_US`].
    CfsPeriod,
    /// A request in millicores to cgroup CPU shares, as the kubelet's `MilliCPUToShares` does.
    Shares,
}

/// The kubelet's CFS period (`--cpu-cfs-quota-period` default, 100ms).
pub(crate) const CFS_PERIOD_US: i64 = 100_000;

/// One heapster metric feeding a family.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    pub metric: &'static str,
    pub conv: Conv,
    /// Labels this row adds (`cpu="total"`), written after the set's own.
    pub extra: &'static str,
}

/// Where a family's values come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source {
    /// Heapster metrics without labels.
    Metrics(&'static [Row]),
    /// A filesystem or disk metric, one series per `resource_id`, exposed as `device`.
    PerDevice(&'static str),
    /// The set's create time, in seconds.
    StartTime,
    /// One unlabelled line: heapster serves what it has, so there is no scrape error to report here.
    Zero,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub typ: Type,
    /// Which sets have it.
    pub kinds: &'static [Kind],
    pub source: Source,
    /// Whether samples carry the batch time, as the kubelet stamps usage (not specs).
    pub stamped: bool,
}

const fn row(metric: &'static str, conv: Conv) -> Row {
    Row { metric, conv, extra: "" }
}

const ALL: &[Kind] = &[Kind::Node, Kind::System, Kind::Pod, Kind::Container];
const NODE: &[Kind] = &[Kind::Node];
const POD: &[Kind] = &[Kind::Pod];
const CONTAINER: &[Kind] = &[Kind::Container];
const NONE: &[Kind] = &[];

use Conv::*;
use Type::*;

/// A family of every cgroup (node, system container, pod, container), read from heapster metrics.
const fn cg(name: &'static str, help: &'static str, typ: Type, rows: &'static [Row]) -> Family {
    Family { name, help, typ, kinds: ALL, source: Source::Metrics(rows), stamped: true }
}

/// The same, for one heapster metric per device.
const fn dev(name: &'static str, help: &'static str, typ: Type, metric: &'static str) -> Family {
    Family { name, help, typ, kinds: ALL, source: Source::PerDevice(metric), stamped: true }
}

/// A container spec value: the kubelet does not stamp these.
const fn spec(name: &'static str, help: &'static str, rows: &'static [Row]) -> Family {
    Family { name, help, typ: Gauge, kinds: CONTAINER, source: Source::Metrics(rows), stamped: false }
}

/// `/metrics/cadvisor`, in the kubelet's (alphabetical) order.
pub(crate) static CADVISOR: &[Family] = &[
    cg(
        "container_cpu_cfs_throttled_periods_total",
        "Number of throttled period intervals.",
        Counter,
        &[row("cpu/throttled_periods", Same)],
    ),
    cg(
        "container_cpu_cfs_throttled_seconds_total",
        "Total time duration the container has been throttled.",
        Counter,
        &[row("cpu/throttled_time", Seconds)],
    ),
    cg(
        "container_cpu_load_average_10s",
        "Value of container cpu load average over the last 10 seconds.",
        Gauge,
        &[row("cpu/load", Same)],
    ),
    cg(
        "container_cpu_usage_seconds_total",
        "Cumulative cpu time consumed in seconds.",
        Counter,
        &[Row { metric: "cpu/usage", conv: Seconds, extra: "cpu=\"total\"" }],
    ),
    dev("container_fs_inodes_free", "Number of available Inodes", Gauge, "filesystem/inodes_free"),
    dev("container_fs_inodes_total", "Number of Inodes", Gauge, "filesystem/inodes"),
    dev(
        "container_fs_limit_bytes",
        "Number of bytes that can be consumed by the container on this filesystem.",
        Gauge,
        "filesystem/limit",
    ),
    dev("container_fs_reads_bytes_total", "Cumulative count of bytes read", Counter, "disk/io_read_bytes"),
    dev(
        "container_fs_usage_bytes",
        "Number of bytes that are consumed by the container on this filesystem.",
        Gauge,
        "filesystem/usage",
    ),
    dev("container_fs_writes_bytes_total", "Cumulative count of bytes written", Counter, "disk/io_write_bytes"),
    cg("container_memory_cache", "Number of bytes of page cache memory.", Gauge, &[row("memory/cache", Same)]),
    cg(
        "container_memory_failures_total",
        "Cumulative count of memory allocation failures.",
        Counter,
        &[
            Row { metric: "memory/page_faults", conv: Same, extra: "failure_type=\"pgfault\",scope=\"container\"" },
            Row {
                metric: "memory/major_page_faults",
                conv: Same,
                extra: "failure_type=\"pgmajfault\",scope=\"container\"",
            },
        ],
    ),
    cg("container_memory_rss", "Size of RSS in bytes.", Gauge, &[row("memory/rss", Same)]),
    cg(
        "container_memory_usage_bytes",
        "Current memory usage in bytes, including all memory regardless of when it was accessed",
        Gauge,
        &[row("memory/usage", Same)],
    ),
    cg(
        "container_memory_working_set_bytes",
        "Current working set in bytes.",
        Gauge,
        &[row("memory/working_set", Same)],
    ),
    cg(
        "container_network_receive_bytes_total",
        "Cumulative count of bytes received",
        Counter,
        &[row("network/rx", Same)],
    ),
    cg(
        "container_network_receive_errors_total",
        "Cumulative count of errors encountered while receiving",
        Counter,
        &[row("network/rx_errors", Same)],
    ),
    cg(
        "container_network_transmit_bytes_total",
        "Cumulative count of bytes transmitted",
        Counter,
        &[row("network/tx", Same)],
    ),
    cg(
        "container_network_transmit_errors_total",
        "Cumulative count of errors encountered while transmitting",
        Counter,
        &[row("network/tx_errors", Same)],
    ),
    cg(
        "container_oom_events_total",
        "Count of out of memory events observed for the container",
        Counter,
        &[row("memory/oom_kills", Same)],
    ),
    Family {
        name: "container_scrape_error",
        help: "1 if there was an error while getting container metrics, 0 otherwise",
        typ: Gauge,
        kinds: NONE,
        source: Source::Zero,
        stamped: false,
    },
    spec("container_spec_cpu_period", "CPU period of the container.", &[row("cpu/limit", CfsPeriod)]),
    spec("container_spec_cpu_quota", "CPU quota of the container.", &[row("cpu/limit", CfsQuota)]),
    spec("container_spec_cpu_shares", "CPU share of the container.", &[row("cpu/request", Shares)]),
    spec("container_spec_memory_limit_bytes", "Memory limit for the container.", &[row("memory/limit", Same)]),
    Family {
        name: "container_start_time_seconds",
        help: "Start time of the container since unix epoch in seconds.",
        typ: Gauge,
        kinds: ALL,
        source: Source::StartTime,
        stamped: false,
    },
    Family {
        name: "machine_cpu_cores",
        help: "Number of logical CPU cores.",
        typ: Gauge,
        kinds: NODE,
        source: Source::Metrics(&[row("cpu/node_capacity", Units)]),
        stamped: false,
    },
    Family {
        name: "machine_memory_bytes",
        help: "Amount of memory installed on the machine.",
        typ: Gauge,
        kinds: NODE,
        source: Source::Metrics(&[row("memory/node_capacity", Same)]),
        stamped: false,
    },
];

const fn usage(
    name: &'static str,
    help: &'static str,
    typ: Type,
    kinds: &'static [Kind],
    rows: &'static [Row],
) -> Family {
    Family { name, help, typ, kinds, source: Source::Metrics(rows), stamped: true }
}

/// `/metrics/resource`, in the kubelet's order.
pub(crate) static RESOURCE: &[Family] = &[
    usage(
        "container_cpu_usage_seconds_total",
        "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
        Counter,
        CONTAINER,
        &[row("cpu/usage", Seconds)],
    ),
    usage(
        "container_memory_working_set_bytes",
        "[STABLE] Current working set of the container in bytes",
        Gauge,
        CONTAINER,
        &[row("memory/working_set", Same)],
    ),
    Family {
        name: "container_start_time_seconds",
        help: "[STABLE] Start time of the container since unix epoch in seconds",
        typ: Gauge,
        kinds: CONTAINER,
        source: Source::StartTime,
        // The kubelet stamps it with the start time itself.
        stamped: true,
    },
    usage(
        "node_cpu_usage_seconds_total",
        "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
        Counter,
        NODE,
        &[row("cpu/usage", Seconds)],
    ),
    usage(
        "node_memory_working_set_bytes",
        "[STABLE] Current working set of the node in bytes",
        Gauge,
        NODE,
        &[row("memory/working_set", Same)],
    ),
    usage(
        "pod_cpu_usage_seconds_total",
        "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
        Counter,
        POD,
        &[row("cpu/usage", Seconds)],
    ),
    usage(
        "pod_memory_working_set_bytes",
        "[STABLE] Current working set of the pod in bytes",
        Gauge,
        POD,
        &[row("memory/working_set", Same)],
    ),
    Family {
        name: "resource_scrape_error",
        help: "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise",
        typ: Gauge,
        kinds: NONE,
        source: Source::Zero,
        stamped: false,
    },
    Family {
        name: "scrape_error",
        help: "[ALPHA] (Deprecated since 1.29.0) 1 if there was an error while getting container metrics, 0 otherwise",
        typ: Gauge,
        kinds: NONE,
        source: Source::Zero,
        stamped: false,
    },
];
