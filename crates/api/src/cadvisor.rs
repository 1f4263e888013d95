//! cAdvisor's v1.3 REST API, served from the store, so that a central heapster can scrape a fleet of plain hosts
//! that each run heapster in local mode (`--source=cadvisor:external?hostsFile=...` on the central one):
//!
//! - `GET /api/v1.3/subcontainers/[PATH]`: the container at cgroup PATH (default `/`) and every container under
//!   it, as a JSON array of `ContainerInfo`;
//! - `GET /api/v1.3/containers/[PATH]`: that container alone, with its direct children named in `subcontainers`;
//! - `GET /api/v1.3/machine/`: this host's cores, memory size and IDs.
//!
//! Containers are rebuilt from the store: the node is `/`, its system container `a/b` is the cgroup `/a/b`, and a
//! pod container on the node becomes `/kubepods/<ns>/<pod>/<container>` with Kubernetes' Docker labels, so that
//! the scraping side files it under its pod again. Each carries its last [`SAMPLES`] batches as `stats`, stamped
//! with the batch time. The document types are [`heapster_model::cadvisor`]'s, the same the `cadvisor` source
//! decodes, so the two sides cannot drift.
//!
//! A heapster holding several nodes (a central one) serves the node named by `?node=NAME`, else this host's own
//! node, else its only node; otherwise it answers 404 listing the nodes it has.

use crate::ApiState;
use crate::error::ApiError;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use chrono::{DateTime, Utc};
use heapster_model::cadvisor::{
    ContainerInfo, ContainerReference, ContainerSpec, ContainerStats, CpuCfs, CpuSpec, CpuStats, CpuUsage, DiskIoStats,
    FsStats, InterfaceStats, MachineInfo, MemoryData, MemorySpec, MemoryStats, NetworkStats, PerDiskStats,
};
use heapster_model::{MetricSetType, MetricValue, Timestamp, keys, labels};
use heapster_store::Store;
use std::collections::{BTreeMap, HashMap};

/// Samples per container: enough for a scraper to see two consecutive readings, few enough to stay cheap.
pub const SAMPLES: usize = 3;

/// Prefix of the synthetic cgroup paths given to pod containers.
pub const PODS_PREFIX: &str = "/kubepods";

const BASE: &str = "/api/v1.3";

/// Every cAdvisor route, with and without the trailing `/` (cAdvisor's clients use both).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(&format!("{BASE}/subcontainers"), get(subcontainers_root))
        .route(&format!("{BASE}/subcontainers/"), get(subcontainers_root))
        .route(&format!("{BASE}/subcontainers/{{*path}}"), get(subcontainers))
        .route(&format!("{BASE}/containers"), get(container_root))
        .route(&format!("{BASE}/containers/"), get(container_root))
        .route(&format!("{BASE}/containers/{{*path}}"), get(container))
        .route(&format!("{BASE}/machine"), get(machine))
        .route(&format!("{BASE}/machine/"), get(machine))
}

type Params = Query<HashMap<String, String>>;

async fn subcontainers_root(
    State(st): State<ApiState>,
    Query(q): Params,
) -> Result<Json<Vec<ContainerInfo>>, ApiError> {
    subtree(&st, &q, "/")
}

async fn subcontainers(
    State(st): State<ApiState>,
    Path(path): Path<String>,
    Query(q): Params,
) -> Result<Json<Vec<ContainerInfo>>, ApiError> {
    subtree(&st, &q, &path)
}

async fn container_root(State(st): State<ApiState>, Query(q): Params) -> Result<Json<ContainerInfo>, ApiError> {
    one(&st, &q, "/")
}

async fn container(
    State(st): State<ApiState>,
    Path(path): Path<String>,
    Query(q): Params,
) -> Result<Json<ContainerInfo>, ApiError> {
    one(&st, &q, &path)
}

async fn machine() -> Json<MachineInfo> {
    Json(machine_info(std::path::Path::new("/")))
}

/// `a/b/` -> `/a/b`; empty -> `/`.
fn normalize(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() { "/".to_owned() } else { format!("/{trimmed}") }
}

/// Whether `name` is `root` or below it.
fn under(name: &str, root: &str) -> bool {
    root == "/" || name == root || name.strip_prefix(root).is_some_and(|rest| rest.starts_with('/'))
}

fn subtree(st: &ApiState, q: &HashMap<String, String>, path: &str) -> Result<Json<Vec<ContainerInfo>>, ApiError> {
    let node = pick_node(&st.store, q.get("node").map(String::as_str))?;
    let root = normalize(path);
    let containers = containers_of(&st.store, &node);
    let step = resolution_ms(st);
    let infos: Vec<ContainerInfo> = containers
        .iter()
        .filter(|(name, _)| under(name, &root))
        .filter_map(|(name, key)| container_info(&st.store, key, name, step))
        .collect();
    // An intermediate path the store has no set for (a pod's parent) still lists what is under it.
    if infos.is_empty() {
        return Err(ApiError::not_found(format!("no container {root:?} on node {node:?}")));
    }
    Ok(Json(infos))
}

fn one(st: &ApiState, q: &HashMap<String, String>, path: &str) -> Result<Json<ContainerInfo>, ApiError> {
    let node = pick_node(&st.store, q.get("node").map(String::as_str))?;
    let root = normalize(path);
    let containers = containers_of(&st.store, &node);
    let key = containers.iter().find(|(name, _)| *name == root).map(|(_, k)| k);
    let info = key.and_then(|k| container_info(&st.store, k, &root, resolution_ms(st)));
    let mut info = info.ok_or_else(|| ApiError::not_found(format!("no container {root:?} on node {node:?}")))?;
    // Direct children only, as cAdvisor lists them.
    info.subcontainers = containers
        .iter()
        .filter(|(name, _)| *name != root && under(name, &root))
        .filter(|(name, _)| !name[root.len()..].trim_start_matches('/').contains('/'))
        .map(|(name, _)| ContainerReference { name: name.clone(), ..Default::default() })
        .collect();
    Ok(Json(info))
}

fn resolution_ms(st: &ApiState) -> i64 {
    i64::try_from(st.resolution.as_millis()).unwrap_or(i64::MAX).max(1)
}

/// This host's name, as the local source names its node by default.
fn this_host() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|s| s.trim().to_owned())
}

/// The node to serve: the one asked for, else this host's, else the only one.
fn pick_node(store: &Store, asked: Option<&str>) -> Result<String, ApiError> {
    let nodes: Vec<String> = store
        .keys_of_type(MetricSetType::Node)
        .iter()
        .filter_map(|k| k.strip_prefix("node:").map(str::to_owned))
        .collect();
    if let Some(n) = asked {
        return nodes
            .iter()
            .find(|x| *x == n)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("no node {n:?} in this heapster; it has {nodes:?}")));
    }
    if let [only] = nodes.as_slice() {
        return Ok(only.clone());
    }
    if let Some(me) = this_host().filter(|h| nodes.contains(h)) {
        return Ok(me);
    }
    if nodes.is_empty() {
        return Err(ApiError::not_found("no node in the store yet: the first scrape has not finished"));
    }
    Err(ApiError::not_found(format!(
        "this heapster holds {} nodes; choose one with ?node=NAME: {nodes:?}",
        nodes.len()
    )))
}

/// (cgroup name, store key) of the node and of every container on it, sorted by name.
fn containers_of(store: &Store, node: &str) -> Vec<(String, String)> {
    let mut out = vec![("/".to_owned(), keys::node_key(node))];
    let prefix = keys::node_container_key(node, "");
    for key in store.keys_of_type(MetricSetType::SysContainer) {
        if let Some(name) = key.strip_prefix(&prefix).filter(|n| !n.is_empty()) {
            out.push((format!("/{}", name.trim_start_matches('/')), key.clone()));
        }
    }
    for key in store.keys_of_type(MetricSetType::PodContainer) {
        let Some(info) = store.set_info(&key) else { continue };
        if info.labels.get_str(labels::NODENAME) != Some(node) {
            continue;
        }
        let l = |k: &str| info.labels.get(k).cloned().unwrap_or_default();
        let name = format!(
            "{PODS_PREFIX}/{}/{}/{}",
            l(labels::NAMESPACE_NAME),
            l(labels::POD_NAME),
            l(labels::CONTAINER_NAME)
        );
        out.push((name, key));
    }
    out.sort();
    out
}

/// One stored value of a labelled metric: (metric, resource_id) -> value.
type LabeledValues = BTreeMap<(String, String), MetricValue>;

/// The values of one batch.
#[derive(Default)]
struct Sample {
    values: HashMap<String, MetricValue>,
    labeled: LabeledValues,
}

impl Sample {
    fn u(&self, metric: &str) -> Option<u64> {
        unsigned(self.values.get(metric).copied())
    }
}

/// Counters and gauges are integers; a float or a negative value has no place in cAdvisor's unsigned fields.
fn unsigned(v: Option<MetricValue>) -> Option<u64> {
    match v? {
        MetricValue::Int(i) => u64::try_from(i).ok(),
        MetricValue::Float(_) => None,
    }
}

/// Rebuilds one container from the store: its spec and its last [`SAMPLES`] batches.
fn container_info(store: &Store, key: &str, name: &str, step_ms: i64) -> Option<ContainerInfo> {
    let info = store.set_info(key)?;
    let latest = store.latest_timestamp()?;
    // A little over SAMPLES resolutions back: the batches a scraper can still use.
    let since = latest.saturating_sub(step_ms.saturating_mul(SAMPLES as i64 + 1));
    let mut samples: BTreeMap<Timestamp, Sample> = BTreeMap::new();
    for metric in &info.metric_names {
        for series in store.series_labels(key, metric) {
            let points = store.points(key, metric, &series, Some(since), None).unwrap_or_default();
            for p in points {
                let s = samples.entry(p.timestamp).or_default();
                match series.get(labels::RESOURCE_ID) {
                    Some(id) => {
                        s.labeled.insert((metric.clone(), id.to_string()), p.value);
                    }
                    None if series.is_empty() => {
                        s.values.insert(metric.clone(), p.value);
                    }
                    None => {} // Labelled by something else (accelerators): cAdvisor v1.3 has no place for it.
                }
            }
        }
    }
    let keep = samples.len().saturating_sub(SAMPLES);
    let samples: Vec<(Timestamp, Sample)> = samples.into_iter().skip(keep).collect();
    let newest = samples.last().map(|(_, s)| s);

    let mut reference = ContainerReference { name: name.to_owned(), ..Default::default() };
    if info.set_type == Some(MetricSetType::PodContainer) {
        for (docker_label, label) in [
            ("io.kubernetes.pod.name", labels::POD_NAME),
            ("io.kubernetes.pod.namespace", labels::NAMESPACE_NAME),
            ("io.kubernetes.pod.uid", labels::POD_ID),
            ("io.kubernetes.container.name", labels::CONTAINER_NAME),
        ] {
            if let Some(v) = info.labels.get(label) {
                reference.labels.insert(docker_label.to_owned(), v.to_string());
            }
        }
    }
    let any = |f: &dyn Fn(&Sample) -> bool| samples.iter().any(|(_, s)| f(s));
    let has_prefix = |s: &Sample, p: &str| {
        s.values.keys().any(|k| k.starts_with(p)) || s.labeled.keys().any(|(k, _)| k.starts_with(p))
    };
    let spec = ContainerSpec {
        creation_time: Some(info.create_time).filter(|&t| t > 0).and_then(DateTime::<Utc>::from_timestamp_millis),
        has_cpu: Some(any(&|s| s.values.contains_key("cpu/usage"))),
        // The node's cpu/limit is its core count, not a quota; cAdvisor gives it in machine info only.
        cpu: newest.filter(|_| name != "/").and_then(|s| s.u("cpu/limit")).map(|millicores| CpuSpec {
            quota: Some(millicores.saturating_mul(100)),
            period: Some(100_000),
            ..Default::default()
        }),
        has_memory: Some(any(&|s| s.values.contains_key("memory/usage"))),
        memory: newest
            .and_then(|s| s.u("memory/limit"))
            .map(|limit| MemorySpec { limit: Some(limit), ..Default::default() }),
        has_network: Some(any(&|s| has_prefix(s, "network/"))),
        has_filesystem: Some(any(&|s| has_prefix(s, "filesystem/"))),
        has_diskio: Some(any(&|s| has_prefix(s, "disk/"))),
        has_custom_metrics: Some(false),
        labels: reference.labels.clone(),
        image: info.labels.get(labels::CONTAINER_BASE_IMAGE).map(String::from).unwrap_or_default(),
    };
    let stats = samples.iter().map(|(ts, s)| stats_of(*ts, s)).collect();
    Some(ContainerInfo { reference, subcontainers: Vec::new(), spec, stats })
}

fn stats_of(ts: Timestamp, s: &Sample) -> ContainerStats {
    let cpu = CpuStats {
        usage: s.u("cpu/usage").map(|total| CpuUsage { total: Some(total), ..Default::default() }),
        cfs: (s.values.contains_key("cpu/throttled_time") || s.values.contains_key("cpu/throttled_periods")).then(
            || CpuCfs {
                throttled_time: s.u("cpu/throttled_time"),
                throttled_periods: s.u("cpu/throttled_periods"),
                ..Default::default()
            },
        ),
        load_average: s.values.get("cpu/load").and_then(|v| match v {
            MetricValue::Int(i) => Some(*i),
            MetricValue::Float(_) => None,
        }),
    };
    let faults = (s.values.contains_key("memory/page_faults") || s.values.contains_key("memory/major_page_faults"))
        .then(|| MemoryData { pgfault: s.u("memory/page_faults"), pgmajfault: s.u("memory/major_page_faults") });
    let memory = MemoryStats {
        usage: s.u("memory/usage"),
        cache: s.u("memory/cache"),
        rss: s.u("memory/rss"),
        working_set: s.u("memory/working_set"),
        failcnt: None,
        container_data: faults.clone(),
        hierarchical_data: faults,
    };
    let network = NetworkStats {
        default: InterfaceStats {
            name: String::new(),
            rx_bytes: s.u("network/rx"),
            rx_errors: s.u("network/rx_errors"),
            tx_bytes: s.u("network/tx"),
            tx_errors: s.u("network/tx_errors"),
        },
        interfaces: Vec::new(),
    };
    let lab = |metric: &str, id: &str| unsigned(s.labeled.get(&(metric.to_owned(), id.to_owned())).copied());
    let ids = |prefix: &str| {
        let mut ids: Vec<&str> =
            s.labeled.keys().filter(|(m, _)| m.starts_with(prefix)).map(|(_, id)| id.as_str()).collect();
        ids.dedup();
        ids
    };
    let filesystem = ids("filesystem/")
        .into_iter()
        .map(|id| FsStats {
            device: id.to_owned(),
            fs_type: String::new(),
            capacity: lab("filesystem/limit", id),
            usage: lab("filesystem/usage", id),
            available: lab("filesystem/available", id),
            has_inodes: Some(lab("filesystem/inodes", id).is_some()),
            inodes: lab("filesystem/inodes", id),
            inodes_free: lab("filesystem/inodes_free", id),
        })
        .collect();
    let io_service_bytes: Vec<PerDiskStats> = ids("disk/")
        .into_iter()
        .map(|id| {
            let mut stats = BTreeMap::new();
            let (read, write) = (lab("disk/io_read_bytes", id), lab("disk/io_write_bytes", id));
            stats.extend(read.map(|v| ("Read".to_owned(), v)));
            stats.extend(write.map(|v| ("Write".to_owned(), v)));
            if let (Some(r), Some(w)) = (read, write) {
                stats.insert("Total".to_owned(), r.saturating_add(w));
            }
            // cAdvisor names devices by major:minor; heapster's resource_id may already be one.
            let (major, minor) = id
                .split_once(':')
                .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
                .unwrap_or((0, 0));
            let device = if (major, minor) == (0, 0) { id.to_owned() } else { String::new() };
            PerDiskStats { device, major, minor, stats }
        })
        .collect();
    let nonempty_cpu = cpu.usage.is_some() || cpu.cfs.is_some() || cpu.load_average.is_some();
    let nonempty_mem = memory != MemoryStats::default();
    let nonempty_net = network != NetworkStats::default();
    ContainerStats {
        timestamp: DateTime::<Utc>::from_timestamp_millis(ts),
        cpu: nonempty_cpu.then_some(cpu),
        diskio: (!io_service_bytes.is_empty()).then_some(DiskIoStats { io_service_bytes }),
        memory: nonempty_mem.then_some(memory),
        network: nonempty_net.then_some(network),
        filesystem,
    }
}

/// This host's machine info, read under `root` (`/` in production, a fake tree in tests). A value that cannot be
/// read is left out.
pub fn machine_info(root: &std::path::Path) -> MachineInfo {
    let read = |p: &str| std::fs::read_to_string(root.join(p)).ok().map(|s| s.trim().to_owned());
    let num_cores = read("sys/devices/system/cpu/online")
        .and_then(|s| count_cpus(&s))
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get() as u64));
    let memory_capacity = read("proc/meminfo").and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    MachineInfo {
        num_cores,
        cpu_frequency_khz: read("sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").and_then(|s| s.parse().ok()),
        memory_capacity,
        machine_id: read("etc/machine-id").or_else(|| read("var/lib/dbus/machine-id")).unwrap_or_default(),
        system_uuid: read("sys/class/dmi/id/product_uuid").unwrap_or_default(),
        boot_id: read("proc/sys/kernel/random/boot_id").unwrap_or_default(),
        ..Default::default()
    }
}

/// `0-3,6` -> 5.
fn count_cpus(text: &str) -> Option<u64> {
    let mut n = 0;
    for part in text.trim().split(',') {
        n += match part.split_once('-') {
            Some((a, b)) => b.parse::<u64>().ok()?.checked_sub(a.parse::<u64>().ok()?)? + 1,
            None => part.parse::<u64>().map(|_| 1).ok()?,
        };
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_cpu_lists() {
        assert_eq!(normalize(""), "/");
        assert_eq!(normalize("system.slice/a.service/"), "/system.slice/a.service");
        assert!(under("/a/b", "/a") && under("/a", "/a") && under("/x", "/"));
        assert!(!under("/ab", "/a"));
        assert_eq!(count_cpus("0-1\n"), Some(2));
        assert_eq!(count_cpus("0-3,6"), Some(5));
    }

    #[test]
    fn this_hosts_machine_info() {
        let m = machine_info(std::path::Path::new("/"));
        assert!(m.num_cores.is_some_and(|n| n >= 1), "{m:?}");
        assert!(m.memory_capacity.is_some_and(|b| b > 1 << 20), "{m:?}");
    }
}
