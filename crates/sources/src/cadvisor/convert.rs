//! Turns one host's cAdvisor containers into heapster metric sets, as Heapster's cAdvisor-era kubelet and
//! external-cAdvisor sources did (`metrics/sources/kubelet/kubelet.go`, `metrics/core/metrics.go`).
//!
//! Which set a container becomes:
//! - `/` is the node, `node:<host>` (type `node`);
//! - a container with Kubernetes labels (`io.kubernetes.pod.name`, `.pod.namespace`, `.container.name`) is
//!   `namespace:<ns>/pod:<pod>/container:<c>` (type `pod_container`), except the pod's infrastructure container
//!   (`POD`), which holds the pod's network namespace and becomes the pod itself, `namespace:<ns>/pod:<pod>`
//!   (type `pod`), carrying only the network counters (its CPU and memory are the pause process's, not the pod's);
//! - anything else is `node:<host>/container:<path without the leading />` (type `sys_container`), the key the
//!   local source gives the same cgroup, so a host reads the same either way; the daemons Heapster knew get the
//!   names dashboards query (`/docker`, `/docker-daemon`, `/system.slice/docker.service` -> `docker-daemon`;
//!   `/kubelet`, `/system.slice/kubelet.service` -> `kubelet`).
//!
//! Values come from the newest sample; `scrape_time` is its timestamp and `create_time` the spec's
//! `creation_time`, so rates divide by cAdvisor's real interval. What the document leaves out, or what a `has_*`
//! flag says is not measured, is left out here too: never a zero standing in for an unknown.

use heapster_model::cadvisor::{
    ContainerInfo, ContainerSpec, ContainerStats, FsStats, MachineInfo, NetworkStats, has, known_time,
};
use heapster_model::{Labels, MetricSet, MetricSetType, MetricValue, Timestamp, keys, labels};
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

/// Kubernetes' Docker label naming a container's pod: with the namespace label, what makes a pod container.
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
/// Kubernetes' Docker label naming a container's namespace.
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// Kubernetes' Docker label with the pod's UID, heapster's `pod_id`.
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
/// Kubernetes' Docker label with the container's name in its pod spec.
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// The name Kubernetes gives a pod's infrastructure (pause) container.
pub const INFRA_CONTAINER: &str = "POD";

/// Memory limits at or above this are cAdvisor's "unlimited" (2^64-1, or 2^63 rounded down to a page on cgroup v1),
/// not limits. No machine has 4 EiB of RAM.
pub const UNLIMITED: u64 = 1 << 62;

/// What one cAdvisor container is to heapster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// The root cgroup `/`: the whole machine.
    Node,
    /// A cgroup outside Kubernetes, by its heapster name (`docker-daemon`, `system.slice/sshd.service`).
    SysContainer(String),
    /// A pod's infrastructure container, standing for the pod's network namespace.
    Pod { namespace: String, pod: String, uid: Option<String> },
    /// A container of a pod.
    PodContainer { namespace: String, pod: String, container: String, uid: Option<String> },
}

/// Heapster's names for the daemons' cgroups; other paths lose only their leading `/`.
pub fn system_container_name(path: &str) -> &str {
    match path {
        "/docker" | "/docker-daemon" | "/system.slice/docker.service" => "docker-daemon",
        "/kubelet" | "/system.slice/kubelet.service" => "kubelet",
        other => other.trim_start_matches('/'),
    }
}

/// Decides which set `c` becomes. `None` for a container with no usable name.
pub fn classify(c: &ContainerInfo) -> Option<Kind> {
    let name = c.reference.name.as_str();
    if name == "/" {
        return Some(Kind::Node);
    }
    // The runtime's labels are on the reference; cAdvisor repeats them in the spec, which some versions fill alone.
    let label = |k: &str| c.reference.labels.get(k).or_else(|| c.spec.labels.get(k)).filter(|v| !v.is_empty()).cloned();
    if let (Some(namespace), Some(pod)) = (label(LABEL_POD_NAMESPACE), label(LABEL_POD_NAME)) {
        let uid = label(LABEL_POD_UID);
        return match label(LABEL_CONTAINER_NAME) {
            Some(c) if c == INFRA_CONTAINER => Some(Kind::Pod { namespace, pod, uid }),
            Some(container) => Some(Kind::PodContainer { namespace, pod, container, uid }),
            None => None,
        };
    }
    let sys = system_container_name(name);
    (!sys.is_empty()).then(|| Kind::SysContainer(sys.to_owned()))
}

/// Converts one host's containers into `(key, set)` pairs, the node first.
///
/// `host` names the node in keys and labels (the hosts file's `Name`). `machine`, when known, gives the node's
/// `cpu/limit` (cores x 1000), `memory/limit` and `host_id` (the cloud instance). `round` is the scrape loop's
/// time, for a container with no timed sample. Where two containers map to one key (`/docker` and
/// `/docker-daemon`, or a restarted pod container whose predecessor is still listed), the newest by creation time
/// is kept: summing them would count twice.
pub fn containers_to_sets(
    containers: &[ContainerInfo],
    machine: Option<&MachineInfo>,
    host: &str,
    round: Timestamp,
) -> Vec<(String, MetricSet)> {
    let mut node_labels = Labels::new();
    node_labels.insert(labels::HOSTNAME, host.to_owned());
    node_labels.insert(labels::NODENAME, host.to_owned());
    if let Some(id) = machine.map(|m| m.instance_id.as_str()).filter(|id| !id.is_empty() && *id != "None") {
        node_labels.insert(labels::HOST_ID, id.to_owned());
    }

    let mut node: Option<(String, MetricSet)> = None;
    let mut others: BTreeMap<String, MetricSet> = BTreeMap::new();
    for c in containers {
        let Some(kind) = classify(c) else {
            tracing::debug!(host, container = %c.reference.name, "skipping a pod container with no container name");
            continue;
        };
        let (key, set) = convert_one(c, &kind, &node_labels, round);
        if kind == Kind::Node {
            node = Some((key, set));
            continue;
        }
        match others.entry(key) {
            Entry::Vacant(e) => {
                e.insert(set);
            }
            Entry::Occupied(mut e) => {
                if set.create_time >= e.get().create_time {
                    e.insert(set);
                }
            }
        }
    }
    let mut out = Vec::with_capacity(others.len() + 1);
    // A host always has its node set, even when cAdvisor left out `/`, so the node is listed while it answers.
    let (key, mut set) = node.unwrap_or_else(|| {
        let mut set = MetricSet { scrape_time: round, labels: node_labels.clone(), ..Default::default() };
        set.set_kind(MetricSetType::Node);
        (keys::node_key(host), set)
    });
    if let Some(m) = machine {
        set.put_u64("cpu/limit", m.num_cores.filter(|&n| n > 0).map(|n| n.saturating_mul(1000)));
        set.put_u64("memory/limit", m.memory_capacity.filter(|&b| b > 0 && b < UNLIMITED));
    }
    out.push((key, set));
    out.extend(others);
    out
}

fn convert_one(c: &ContainerInfo, kind: &Kind, node_labels: &Labels, round: Timestamp) -> (String, MetricSet) {
    let host = &node_labels[labels::NODENAME];
    let stats = c.newest_stats();
    let scrape_time = stats.and_then(|s| s.timestamp).map(|t| t.timestamp_millis()).unwrap_or(round);
    let create_time = known_time(c.spec.creation_time).map(|t| t.timestamp_millis());
    let mut set = MetricSet {
        create_time: create_time.unwrap_or(0),
        scrape_time,
        labels: node_labels.clone(),
        ..Default::default()
    };
    let (set_type, key) = match kind {
        Kind::Node => (MetricSetType::Node, keys::node_key(host)),
        Kind::SysContainer(name) => {
            set.labels.insert(labels::CONTAINER_NAME, name.clone());
            (MetricSetType::SysContainer, keys::node_container_key(host, name))
        }
        Kind::Pod { namespace, pod, uid } | Kind::PodContainer { namespace, pod, uid, .. } => {
            set.labels.insert(labels::POD_NAME, pod.clone());
            set.labels.insert(labels::NAMESPACE_NAME, namespace.clone());
            set.labels.insert(labels::POD_NAMESPACE, namespace.clone());
            if let Some(uid) = uid {
                set.labels.insert(labels::POD_ID, uid.clone());
            }
            match kind {
                Kind::PodContainer { container, .. } => {
                    set.labels.insert(labels::CONTAINER_NAME, container.clone());
                    if !c.spec.image.is_empty() {
                        set.labels.insert(labels::CONTAINER_BASE_IMAGE, c.spec.image.clone());
                    }
                    (MetricSetType::PodContainer, keys::pod_container_key(namespace, pod, container))
                }
                _ => (MetricSetType::Pod, keys::pod_key(namespace, pod)),
            }
        }
    };
    set.set_kind(set_type);
    if let Some(start) = create_time {
        // Clock skew between the sample and the creation time must not produce a negative counter.
        set.set("uptime", MetricValue::Int(scrape_time.saturating_sub(start).max(0)));
    }
    let spec = &c.spec;
    if let Some(s) = stats {
        if matches!(kind, Kind::Pod { .. }) {
            // The pause container's own CPU and memory are not the pod's: only its network namespace is.
            add_network(&mut set, spec, s, false);
        } else {
            add_cpu(&mut set, spec, s);
            add_memory(&mut set, spec, s);
            add_network(&mut set, spec, s, *kind == Kind::Node);
            add_filesystems(&mut set, spec, &s.filesystem);
            add_disk_io(&mut set, spec, s);
        }
    }
    if !matches!(kind, Kind::Pod { .. }) {
        add_limits(&mut set, spec, matches!(kind, Kind::PodContainer { .. }));
    }
    (key, set)
}

fn add_cpu(set: &mut MetricSet, spec: &ContainerSpec, s: &ContainerStats) {
    let Some(cpu) = s.cpu.as_ref().filter(|_| has(spec.has_cpu)) else { return };
    set.put_u64("cpu/usage", cpu.usage.as_ref().and_then(|u| u.total));
    if let Some(load) = cpu.load_average {
        set.set("cpu/load", MetricValue::Int(load.max(0)));
    }
    if let Some(cfs) = &cpu.cfs {
        set.put_u64("cpu/throttled_time", cfs.throttled_time);
        set.put_u64("cpu/throttled_periods", cfs.throttled_periods);
    }
}

fn add_memory(set: &mut MetricSet, spec: &ContainerSpec, s: &ContainerStats) {
    let Some(mem) = s.memory.as_ref().filter(|_| has(spec.has_memory)) else { return };
    set.put_u64("memory/usage", mem.usage);
    set.put_u64("memory/working_set", mem.working_set);
    set.put_u64("memory/rss", mem.rss);
    set.put_u64("memory/cache", mem.cache);
    // This cgroup's own faults, as Heapster read them; the hierarchical figures when cAdvisor gave only those.
    let data = mem.container_data.as_ref().or(mem.hierarchical_data.as_ref());
    set.put_u64("memory/page_faults", data.and_then(|d| d.pgfault));
    set.put_u64("memory/major_page_faults", data.and_then(|d| d.pgmajfault));
}

/// The node counts its default interface (the inline counters), as Heapster did: summing would add what a bridge
/// (`cbr0`, `docker0`) forwards for containers on top of what `eth0` already carried. A container counts every
/// interface of its namespace. Each falls back to the other form when its own is missing.
fn add_network(set: &mut MetricSet, spec: &ContainerSpec, s: &ContainerStats, node: bool) {
    let Some(net) = s.network.as_ref().filter(|_| has(spec.has_network)) else { return };
    let pick = |get: fn(&heapster_model::cadvisor::InterfaceStats) -> Option<u64>, net: &NetworkStats| {
        let summed = || net.interfaces.iter().filter_map(get).reduce(u64::saturating_add);
        let inline = get(&net.default);
        if node || net.interfaces.is_empty() { inline.or_else(summed) } else { summed().or(inline) }
    };
    set.put_u64("network/rx", pick(|i| i.rx_bytes, net));
    set.put_u64("network/rx_errors", pick(|i| i.rx_errors, net));
    set.put_u64("network/tx", pick(|i| i.tx_bytes, net));
    set.put_u64("network/tx_errors", pick(|i| i.tx_errors, net));
}

/// `filesystem/*` per device. cAdvisor of this era fills `available` and `inodes_free` only for filesystems it
/// ran `statfs` on (the node's), and writes zeros for a container's layer: when all of them are zero they are
/// unknowns and are left out. `inodes` needs `has_inodes` (cAdvisor 0.24+).
fn add_filesystems(set: &mut MetricSet, spec: &ContainerSpec, filesystems: &[FsStats]) {
    if !has(spec.has_filesystem) {
        return;
    }
    for fs in filesystems.iter().filter(|fs| !fs.device.is_empty()) {
        let l = labels::resource_id(&fs.device);
        set.put_labeled_u64("filesystem/usage", &l, fs.usage);
        set.put_labeled_u64("filesystem/limit", &l, fs.capacity);
        let nonzero = |v: Option<u64>| v.is_some_and(|v| v > 0);
        let statfs = fs.has_inodes == Some(true) || nonzero(fs.available) || nonzero(fs.inodes_free);
        if statfs {
            set.put_labeled_u64("filesystem/available", &l, fs.available);
            set.put_labeled_u64("filesystem/inodes_free", &l, fs.inodes_free);
            if has(fs.has_inodes) {
                set.put_labeled_u64("filesystem/inodes", &l, fs.inodes);
            }
        }
    }
}

/// `disk/io_{read,write}_bytes` per device from `io_service_bytes`, summed when a device is listed twice.
fn add_disk_io(set: &mut MetricSet, spec: &ContainerSpec, s: &ContainerStats) {
    let Some(io) = s.diskio.as_ref().filter(|_| has(spec.has_diskio)) else { return };
    let mut per_device: BTreeMap<String, (Option<u64>, Option<u64>)> = BTreeMap::new();
    for d in &io.io_service_bytes {
        let e = per_device.entry(d.resource_id()).or_default();
        let add = |acc: Option<u64>, v: Option<&u64>| match (acc, v) {
            (a, None) => a,
            (a, Some(&v)) => Some(a.unwrap_or(0).saturating_add(v)),
        };
        e.0 = add(e.0, d.stats.get("Read"));
        e.1 = add(e.1, d.stats.get("Write"));
    }
    for (device, (read, write)) in per_device {
        let l = labels::resource_id(&device);
        set.put_labeled_u64("disk/io_read_bytes", &l, read);
        set.put_labeled_u64("disk/io_write_bytes", &l, write);
    }
}

/// Limits from the spec. `cpu/limit` is the CFS quota (shares are a weight, not a limit); a pod container's
/// shares are what Kubernetes derived from its CPU request, so they give `cpu/request` (2 shares is "no
/// request"). `memory/limit` only when it is a real one, not cAdvisor's "unlimited".
fn add_limits(set: &mut MetricSet, spec: &ContainerSpec, pod_container: bool) {
    if let Some(cpu) = spec.cpu.as_ref().filter(|_| has(spec.has_cpu)) {
        if let (Some(q), Some(p)) = (cpu.quota.filter(|&q| q > 0), cpu.period.filter(|&p| p > 0)) {
            set.set("cpu/limit", MetricValue::from_u64(q.saturating_mul(1000) / p));
        }
        if pod_container && let Some(shares) = cpu.limit.filter(|&s| s > 2) {
            set.set("cpu/request", MetricValue::from_u64(shares.saturating_mul(1000) / 1024));
        }
    }
    if let Some(mem) = spec.memory.as_ref().filter(|_| has(spec.has_memory)) {
        set.put_u64("memory/limit", mem.limit.filter(|&l| l > 0 && l < UNLIMITED));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cadvisor::client::decode_subcontainers;

    fn sets(json: &str) -> Vec<(String, MetricSet)> {
        containers_to_sets(&decode_subcontainers(json.as_bytes()).unwrap(), None, "h1", 42)
    }

    fn get<'a>(sets: &'a [(String, MetricSet)], key: &str) -> &'a MetricSet {
        sets.iter().find(|(k, _)| k == key).map(|(_, s)| s).unwrap_or_else(|| panic!("no set {key}"))
    }

    #[test]
    fn an_empty_list_still_names_the_node() {
        let s = sets("[]");
        assert_eq!(s.len(), 1);
        let n = get(&s, "node:h1");
        assert_eq!((n.set_type(), n.scrape_time, n.metrics.len()), (Some("node"), 42, 0));
    }

    #[test]
    fn daemons_get_heapsters_names_and_other_cgroups_keep_their_path() {
        let s = sets(
            r#"[{"name":"/system.slice/docker.service"},{"name":"/kubelet"},{"name":"/system.slice/sshd.service"},
                {"name":"/user.slice"}]"#,
        );
        let keys: Vec<_> = s.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "node:h1",
                "node:h1/container:docker-daemon",
                "node:h1/container:kubelet",
                "node:h1/container:system.slice/sshd.service",
                "node:h1/container:user.slice"
            ]
        );
        let d = get(&s, "node:h1/container:system.slice/sshd.service");
        assert_eq!(d.labels[labels::CONTAINER_NAME], "system.slice/sshd.service");
        assert_eq!(d.set_type(), Some("sys_container"));
    }

    #[test]
    fn unmeasured_resources_and_unlimited_limits_stay_absent() {
        let s = sets(
            r#"[{"name":"/a","spec":{"has_cpu":false,"has_memory":true,"has_network":false,
                  "cpu":{"limit":1024,"quota":50000,"period":100000},"memory":{"limit":18446744073709551615}},
                 "stats":[{"timestamp":"2020-01-01T00:00:00Z","cpu":{"usage":{"total":5}},"memory":{"usage":7},
                           "network":{"name":"","rx_bytes":0}}]},
                {"name":"/b","spec":{"memory":{"limit":9223372036854771712}},"stats":[{"memory":{"rss":1}}]}]"#,
        );
        let a = get(&s, "node:h1/container:a");
        assert_eq!(a.metrics.keys().collect::<Vec<_>>(), ["memory/usage"]);
        assert_eq!(a.scrape_time, 1_577_836_800_000);
        let b = get(&s, "node:h1/container:b");
        assert_eq!(b.metrics.keys().collect::<Vec<_>>(), ["memory/rss"], "cgroup v1's unlimited is no limit");
        assert_eq!(b.scrape_time, 42, "an untimed sample takes the round's time");
    }

    #[test]
    fn quota_is_the_cpu_limit_and_a_pod_containers_shares_its_request() {
        let s = sets(
            r#"[{"name":"/docker/x","labels":{"io.kubernetes.pod.name":"p","io.kubernetes.pod.namespace":"ns",
                 "io.kubernetes.container.name":"c"},
                 "spec":{"cpu":{"limit":512,"quota":50000,"period":100000},"memory":{"limit":1048576}}}]"#,
        );
        let c = get(&s, "namespace:ns/pod:p/container:c");
        assert_eq!(c.get("cpu/limit"), Some(MetricValue::Int(500)));
        assert_eq!(c.get("cpu/request"), Some(MetricValue::Int(500)));
        assert_eq!(c.get("memory/limit"), Some(MetricValue::Int(1_048_576)));
    }

    #[test]
    fn the_newer_of_two_containers_with_one_key_wins() {
        let s = sets(
            r#"[{"name":"/docker-daemon","spec":{"creation_time":"2020-01-02T00:00:00Z"},"stats":[{"memory":{"usage":2}}]},
                {"name":"/docker","spec":{"creation_time":"2020-01-01T00:00:00Z"},"stats":[{"memory":{"usage":1}}]}]"#,
        );
        assert_eq!(s.len(), 2);
        assert_eq!(get(&s, "node:h1/container:docker-daemon").get("memory/usage"), Some(MetricValue::Int(2)));
    }

    #[test]
    fn disk_io_is_summed_per_device_and_named_by_major_minor_without_a_name() {
        let s = sets(
            r#"[{"name":"/","stats":[{"diskio":{"io_service_bytes":[
                {"major":8,"minor":0,"stats":{"Read":1,"Write":2}},{"major":8,"minor":0,"stats":{"Read":10}},
                {"device":"/dev/vdb","major":252,"minor":16,"stats":{"Write":5}}]}}]}]"#,
        );
        let n = get(&s, "node:h1");
        let find = |name: &str, id: &str| {
            n.labeled_metrics.iter().find(|m| m.name == name && m.labels[labels::RESOURCE_ID] == id).map(|m| m.value)
        };
        assert_eq!(find("disk/io_read_bytes", "8:0"), Some(MetricValue::Int(11)));
        assert_eq!(find("disk/io_write_bytes", "8:0"), Some(MetricValue::Int(2)));
        assert_eq!(find("disk/io_write_bytes", "/dev/vdb"), Some(MetricValue::Int(5)));
        assert_eq!(find("disk/io_read_bytes", "/dev/vdb"), None, "no Read figure, no read metric");
    }
}
