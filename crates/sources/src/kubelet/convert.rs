//! Turns a decoded [`Summary`] into heapster metric sets, as Heapster 1.6's `metrics/sources/summary/summary.go`
//! did, plus what kubelets report since (pod-level CPU and memory, PSI).
//!
//! Rules that hold throughout:
//! - A value the kubelet left out is left out here too: no zeros stand in for unknowns, and nothing here fails.
//! - `create_time` is the entity's `startTime`; `scrape_time` is when the kubelet sampled it (CPU, else memory,
//!   else network `time`), falling back to the caller's round time, so rates divide by the real interval.
//! - `uptime` is measured to the set's own `scrape_time`, not to "now", so the same document always converts the same.

use super::summary::{
    AcceleratorStats, ContainerStats, CpuStats, FsStats, IoStats, MemoryStats, NetworkStats, PodStats, PsiStats,
    Summary,
};
use chrono::{DateTime, Utc};
use heapster_model::catalog::CUSTOM_PREFIX;
use heapster_model::{LabelValue, Labels, MetricMap, MetricSet, MetricSetType, MetricValue, Timestamp, keys, labels};
use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::hash::Hash;

/// `resource_id` of a node's root filesystem and of a container's writable layer (Heapster's `RootFsKey`).
pub const ROOT_FS_RESOURCE_ID: &str = "/";
/// `resource_id` of a container's log files (Heapster's `LogsKey`).
pub const LOGS_RESOURCE_ID: &str = "logs";
/// Prefix of a pod volume's `resource_id`: `Volume:<volume name>` (Heapster's `VolumeResourcePrefix`).
pub const VOLUME_RESOURCE_PREFIX: &str = "Volume:";

/// The names Heapster gave system containers before the Summary API existed; dashboards and alerts still query
/// `node:<n>/container:docker-daemon`. `kubelet` and `pods` keep their names, as in Heapster.
fn legacy_system_container_name(name: &str) -> &str {
    match name {
        "runtime" => "docker-daemon",
        "misc" => "system",
        other => other,
    }
}

/// Converts one kubelet's Summary into `(key, set)` pairs: the node, its system containers, then each pod followed
/// by its containers. Keys are unique.
///
/// `node_name` names the node in keys and labels, rather than the document's `nodeName`, so that keys match the
/// name discovery and enrichment know the node by. `host_id` is the cloud provider's instance ID, when known.
/// `scrape_time` (ms) stands in for sets whose samples carry no time of their own.
///
/// Where the kubelet reports two pods with one namespace/name (a pod deleted and re-created with the same name), or
/// two containers with one name in a pod (a restarted container whose predecessor is still listed), only the one
/// with the newest `startTime` is kept: summing or alternating between them would count usage twice or make
/// counters jump.
pub fn summary_to_sets(
    summary: &Summary,
    node_name: &str,
    host_id: Option<&str>,
    scrape_time: Timestamp,
) -> Vec<(String, MetricSet)> {
    summary_to_sets_counted(summary, node_name, host_id, scrape_time).0
}

/// What [`summary_to_sets`] left out of one document because another entry had the same key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Duplicates {
    /// Pods dropped for a newer pod of the same namespace/name (a recreated pod, or one listed twice).
    pub pods: usize,
    /// Containers dropped for a newer one of the same name in the same (kept) pod.
    pub containers: usize,
    /// System containers dropped for a newer one of the same name.
    pub system_containers: usize,
}

impl Duplicates {
    pub fn is_empty(&self) -> bool {
        *self == Duplicates::default()
    }
}

/// As [`summary_to_sets`], also saying how many duplicate entries were dropped. Containers of a dropped pod are not
/// counted: they went with their pod.
pub fn summary_to_sets_counted(
    summary: &Summary,
    node_name: &str,
    host_id: Option<&str>,
    scrape_time: Timestamp,
) -> (Vec<(String, MetricSet)>, Duplicates) {
    let mut dropped = Duplicates::default();
    let containers: usize = summary.pods.iter().map(|p| p.containers.len()).sum();
    let mut out = Vec::with_capacity(1 + summary.node.system_containers.len() + summary.pods.len() + containers);

    let mut node_labels = Labels::new();
    let node_name_value = LabelValue::from(node_name);
    node_labels.insert(labels::NODENAME, node_name_value.clone());
    node_labels.insert(labels::HOSTNAME, node_name_value);
    if let Some(id) = host_id {
        node_labels.insert(labels::HOST_ID, id.to_owned());
    }

    let node = &summary.node;
    let sample_time = sample_time(node.cpu.as_ref(), node.memory.as_ref(), node.network.as_ref());
    let mut set = new_set(&node_labels, MetricSetType::Node, ms(node.start_time), sample_time, scrape_time);
    add_cpu(&mut set, node.cpu.as_ref());
    set.put_u64("ephemeral_storage/usage", node.fs.as_ref().and_then(|fs| fs.used_bytes));
    add_io(&mut set, node.io.as_ref());
    add_memory(&mut set, node.memory.as_ref());
    add_network(&mut set, node.network.as_ref());
    add_uptime(&mut set, ms(node.start_time));
    add_fs(&mut set, ROOT_FS_RESOURCE_ID, node.fs.as_ref());
    reserve_for_chain(&mut set);
    out.push((keys::node_key(node_name), set));

    let keep = newest_by_key(&node.system_containers, |c| c.name.as_str(), |c| ms(c.start_time));
    dropped.system_containers = keep.iter().filter(|k| !**k).count();
    for (c, _) in node.system_containers.iter().zip(keep).filter(|(c, keep)| *keep && !c.name.is_empty()) {
        let name = match legacy_system_container_name(&c.name) {
            legacy if legacy != c.name.as_str() => LabelValue::from(legacy),
            _ => c.name.clone(),
        };
        let key = keys::node_container_key(node_name, &name);
        out.push((key, container_set(&node_labels, MetricSetType::SysContainer, name, c, scrape_time)));
    }

    let keep =
        newest_by_key(&summary.pods, |p| (p.pod_ref.namespace.as_str(), p.pod_ref.name.as_str()), |p| ms(p.start_time));
    dropped.pods = keep.iter().filter(|k| !**k).count();
    for (pod, _) in summary.pods.iter().zip(keep).filter(|(_, keep)| *keep) {
        let r = &pod.pod_ref;
        if r.name.is_empty() || r.namespace.is_empty() {
            tracing::debug!(node = node_name, uid = %r.uid, "skipping a pod with no name or namespace");
            continue;
        }
        let pod_set = pod_set(&node_labels, pod, scrape_time);
        let keep = newest_by_key(&pod.containers, |c| c.name.as_str(), |c| ms(c.start_time));
        dropped.containers += keep.iter().filter(|k| !**k).count();
        let mut container_sets = Vec::with_capacity(pod.containers.len());
        for (c, _) in pod.containers.iter().zip(keep).filter(|(c, keep)| *keep && !c.name.is_empty()) {
            let set = container_set(&pod_set.labels, MetricSetType::PodContainer, c.name.clone(), c, scrape_time);
            container_sets.push((keys::pod_container_key(&r.namespace, &r.name, &c.name), set));
        }
        out.push((keys::pod_key(&r.namespace, &r.name), pod_set));
        out.extend(container_sets);
    }
    (out, dropped)
}

fn pod_set(node_labels: &Labels, pod: &PodStats, scrape_time: Timestamp) -> MetricSet {
    let r = &pod.pod_ref;
    let sample_time = sample_time(pod.cpu.as_ref(), pod.memory.as_ref(), pod.network.as_ref());
    let mut set = new_set(node_labels, MetricSetType::Pod, ms(pod.start_time), sample_time, scrape_time);
    set.labels.insert_all([
        (labels::POD_ID, r.uid.clone()),
        (labels::POD_NAME, r.name.clone()),
        (labels::NAMESPACE_NAME, r.namespace.clone()),
        (labels::POD_NAMESPACE, r.namespace.clone()),
    ]);
    add_cpu(&mut set, pod.cpu.as_ref());
    set.put_u64("ephemeral_storage/usage", pod.ephemeral_storage.as_ref().and_then(|fs| fs.used_bytes));
    add_io(&mut set, pod.io.as_ref());
    add_memory(&mut set, pod.memory.as_ref());
    add_network(&mut set, pod.network.as_ref());
    add_uptime(&mut set, ms(pod.start_time));
    set.labeled_metrics.reserve_exact(FS_METRICS * pod.volumes.len());
    for v in &pod.volumes {
        add_fs(&mut set, &format!("{VOLUME_RESOURCE_PREFIX}{}", v.name), Some(&v.fs()));
    }
    reserve_for_chain(&mut set);
    set
}

/// A pod's container or a node's system container; `base` already holds the pod's or the node's labels.
fn container_set(
    base: &Labels,
    kind: MetricSetType,
    name: LabelValue,
    c: &ContainerStats,
    scrape_time: Timestamp,
) -> MetricSet {
    let sample_time = sample_time(c.cpu.as_ref(), c.memory.as_ref(), None);
    let mut set = new_set(base, kind, ms(c.start_time), sample_time, scrape_time);
    set.labels.insert(labels::CONTAINER_NAME, name);
    add_cpu(&mut set, c.cpu.as_ref());
    for m in &c.user_defined_metrics {
        // Heapster kept gauges, counters and deltas and skipped anything else. The model has no per-value type,
        // so what the container declared is not carried further (custom metrics get no rates either way).
        let known = matches!(m.metric_type.as_str(), "gauge" | "cumulative" | "delta");
        if let (true, false, Some(v)) = (known, m.name.is_empty(), m.value) {
            set.metrics.insert(Cow::Owned(format!("{CUSTOM_PREFIX}{}", m.name)), MetricValue::Float(v));
        }
    }
    // The kubelet's own definition of a container's ephemeral-storage use (what its limit is enforced against):
    // writable layer plus logs.
    let used = [c.rootfs.as_ref(), c.logs.as_ref()].into_iter().flatten().filter_map(|fs| fs.used_bytes);
    set.put_u64("ephemeral_storage/usage", used.reduce(u64::saturating_add));
    add_io(&mut set, c.io.as_ref());
    add_memory(&mut set, c.memory.as_ref());
    add_uptime(&mut set, ms(c.start_time));
    let filesystems = usize::from(c.rootfs.is_some()) + usize::from(c.logs.is_some());
    set.labeled_metrics.reserve_exact(FS_METRICS * filesystems + ACCELERATOR_METRICS * c.accelerators.len());
    add_fs(&mut set, ROOT_FS_RESOURCE_ID, c.rootfs.as_ref());
    add_fs(&mut set, LOGS_RESOURCE_ID, c.logs.as_ref());
    add_accelerators(&mut set, &c.accelerators);
    reserve_for_chain(&mut set);
    set
}

fn new_set(
    base: &Labels,
    kind: MetricSetType,
    start: Option<Timestamp>,
    sample_time: Option<Timestamp>,
    fallback: Timestamp,
) -> MetricSet {
    let scrape_time = sample_time.unwrap_or(fallback);
    let (from_kubelet, from_chain) = expected_metrics(kind);
    // Room for the labels added later as well: the container's name here, then `labels`, `namespace_id` and
    // `container_base_image` (pod enricher, namespace enricher), `schedulable` on nodes. Each would otherwise
    // grow the vector again, to twice its size. A pod's base is its node's labels: it adds its `type` and four
    // of its own (`pod_set`) besides `labels` and `namespace_id`.
    let later = if kind == MetricSetType::Pod { 7 } else { 4 };
    let mut labels = Labels::with_capacity(base.len() + later);
    // A container's base is its pod's labels: their `type` would be copied only to be replaced just below.
    labels.extend(base.iter().filter(|(k, _)| *k != labels::TYPE).map(|(k, v)| (k.clone(), v.clone())));
    let mut set = MetricSet {
        create_time: start.unwrap_or(0),
        scrape_time,
        labels,
        metrics: MetricMap::with_capacity(from_kubelet + from_chain),
        ..Default::default()
    };
    set.set_kind(kind);
    set
}

/// How many metrics a set of `kind` gets from a kubelet, about, and how many the Kubernetes processor chain adds
/// to it after: rates of its counters, then requests, limits and `restart_count` (containers and pods), sums of
/// containers (pods) and the node aggregation and autoscaling metrics (nodes); counted on the simulator's sets.
///
/// Sets are made with room for both, so that the processors do not grow every set's vector again, each in turn
/// (a reallocation and a copy of the set's metrics: about a tenth of the chain's instructions, and allocator
/// slack held until the batch is freed). See [`reserve_for_chain`] for sets that got more from their kubelet.
fn expected_metrics(kind: MetricSetType) -> (usize, usize) {
    match kind {
        MetricSetType::PodContainer => (10, 10),
        MetricSetType::Pod => (14, 14),
        MetricSetType::Node => (14, 25),
        MetricSetType::SysContainer => (8, 3),
        _ => (0, 0),
    }
}

/// Keeps the room [`expected_metrics`] promises the processors once the kubelet's metrics are in: a set that got
/// more than expected grows once, here, to exactly what the chain will fill.
fn reserve_for_chain(set: &mut MetricSet) {
    let (_, from_chain) = set.kind.map(expected_metrics).unwrap_or_default();
    set.metrics.reserve_exact(from_chain);
}

/// `uptime`, when the start time is known. Set last, as it sorts last: the sets' metrics are kept sorted by name,
/// and the builders above add them in name order (`cpu/`, `custom/`, `ephemeral_storage/`, `io/`, `memory/`,
/// `network/`, `uptime`) so that each is appended rather than inserted (see [`heapster_model::MetricMap`]).
fn add_uptime(set: &mut MetricSet, start: Option<Timestamp>) {
    if let Some(start) = start {
        // Clock skew between the kubelet's sample and its start time must not produce a negative counter.
        set.set("uptime", MetricValue::Int(set.scrape_time.saturating_sub(start).max(0)));
    }
}

/// When the kubelet read these values, as Heapster's `getScrapeTime`: the samples are taken together, so the first
/// time present stands for all.
fn sample_time(cpu: Option<&CpuStats>, mem: Option<&MemoryStats>, net: Option<&NetworkStats>) -> Option<Timestamp> {
    ms(cpu.and_then(|c| c.time)).or_else(|| ms(mem.and_then(|m| m.time))).or_else(|| ms(net.and_then(|n| n.time)))
}

fn ms(t: Option<DateTime<Utc>>) -> Option<Timestamp> {
    t.map(|t| t.timestamp_millis())
}

fn add_cpu(set: &mut MetricSet, cpu: Option<&CpuStats>) {
    let Some(cpu) = cpu else { return };
    add_psi(set, ["cpu/pressure_some", "cpu/pressure_full"], cpu.psi.as_ref());
    set.put_u64("cpu/usage", cpu.usage_core_nano_seconds);
}

/// In name order, as every `add_*` here (see [`add_uptime`]).
fn add_memory(set: &mut MetricSet, mem: Option<&MemoryStats>) {
    let Some(mem) = mem else { return };
    set.put_u64("memory/major_page_faults", mem.major_page_faults);
    set.put_u64("memory/page_faults", mem.page_faults);
    add_psi(set, ["memory/pressure_some", "memory/pressure_full"], mem.psi.as_ref());
    set.put_u64("memory/rss", mem.rss_bytes);
    set.put_u64("memory/usage", mem.usage_bytes);
    set.put_u64("memory/working_set", mem.working_set_bytes);
}

fn add_io(set: &mut MetricSet, io: Option<&IoStats>) {
    add_psi(set, ["io/pressure_some", "io/pressure_full"], io.and_then(|io| io.psi.as_ref()));
}

/// PSI totals (µs stalled since the cgroup was created) are counters; the kernel's avg10/60/300 are left out
/// because heapster derives its own rates from the totals.
fn add_psi(set: &mut MetricSet, [some, full]: [&'static str; 2], psi: Option<&PsiStats>) {
    let Some(psi) = psi else { return };
    set.put_u64(full, psi.full.as_ref().and_then(|d| d.total));
    set.put_u64(some, psi.some.as_ref().and_then(|d| d.total));
}

/// A set's `network/*`: the default interface (the inline counters), as Heapster read them for nodes and pods.
/// The kubelet lists every host interface but `lo`, `veth*` and `docker*`, so summing a node's would add what a
/// CNI bridge or overlay device (`cni0`, `flannel.1`) forwards for pods on top of what `eth0` already carried; a
/// pod's second network (Multus) is left out as Heapster left it out. A counter the inline block lacks comes from
/// the sum of the listed interfaces, and one no interface reports stays absent.
fn add_network(set: &mut MetricSet, net: Option<&NetworkStats>) {
    let Some(net) = net else { return };
    let all = &net.interfaces;
    set.put_u64("network/rx", net.rx_bytes.or(all.rx_bytes));
    set.put_u64("network/rx_errors", net.rx_errors.or(all.rx_errors));
    set.put_u64("network/tx", net.tx_bytes.or(all.tx_bytes));
    set.put_u64("network/tx_errors", net.tx_errors.or(all.tx_errors));
}

/// Labelled metrics [`add_fs`] sets per filesystem, at most; [`add_accelerators`] per accelerator.
const FS_METRICS: usize = 5;
const ACCELERATOR_METRICS: usize = 3;

fn add_fs(set: &mut MetricSet, resource_id: &str, fs: Option<&FsStats>) {
    let Some(fs) = fs else { return };
    let l = labels::resource_id(resource_id);
    set.put_labeled_u64("filesystem/usage", &l, fs.used_bytes);
    set.put_labeled_u64("filesystem/limit", &l, fs.capacity_bytes);
    set.put_labeled_u64("filesystem/available", &l, fs.available_bytes);
    set.put_labeled_u64("filesystem/inodes", &l, fs.inodes);
    set.put_labeled_u64("filesystem/inodes_free", &l, fs.inodes_free);
}

fn add_accelerators(set: &mut MetricSet, accelerators: &[AcceleratorStats]) {
    for a in accelerators {
        let l = std::sync::Arc::new(Labels::from([
            (labels::ACCELERATOR_MAKE, a.make.clone()),
            (labels::ACCELERATOR_MODEL, a.model.clone()),
            (labels::ACCELERATOR_ID, a.id.clone()),
        ]));
        set.put_labeled_u64("accelerator/memory_total", &l, a.memory_total);
        set.put_labeled_u64("accelerator/memory_used", &l, a.memory_used);
        set.put_labeled_u64("accelerator/duty_cycle", &l, a.duty_cycle);
    }
}

/// For each item, whether it is the one to keep among the items sharing its key: the newest start time wins, a
/// missing start time loses to any, and of equals the later one wins (as in Heapster, which let it overwrite).
fn newest_by_key<'a, T, K: Hash + Eq>(
    items: &'a [T],
    key: impl Fn(&'a T) -> K,
    start: impl Fn(&T) -> Option<Timestamp>,
) -> Vec<bool> {
    let mut keep = vec![true; items.len()];
    if items.len() < 2 {
        return keep;
    }
    // foldhash, not std's SipHash: the keys are the kubelet's own names, hashed for every pod of every node each
    // round (SipHash was 3 % of the conversion's instructions), and no one outside chooses them to collide here
    // but the kubelet, which could as well send a bigger document.
    let mut best: foldhash::HashMap<K, usize> =
        foldhash::HashMap::with_capacity_and_hasher(items.len(), Default::default());
    for (i, item) in items.iter().enumerate() {
        match best.entry(key(item)) {
            Entry::Vacant(e) => {
                e.insert(i);
            }
            Entry::Occupied(mut e) => {
                let prev = *e.get();
                if start(item) >= start(&items[prev]) {
                    keep[prev] = false;
                    e.insert(i);
                } else {
                    keep[i] = false;
                }
            }
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubelet::summary::decode;

    fn sets(json: &str) -> Vec<(String, MetricSet)> {
        summary_to_sets(&decode(json.as_bytes()).unwrap(), "n1", Some("i-123"), 42)
    }

    fn get<'a>(sets: &'a [(String, MetricSet)], key: &str) -> &'a MetricSet {
        sets.iter().find(|(k, _)| k == key).map(|(_, s)| s).unwrap_or_else(|| panic!("no set {key}"))
    }

    #[test]
    fn an_empty_document_yields_a_bare_node() {
        let s = sets(r#"{"node":{}}"#);
        assert_eq!(s.len(), 1);
        let node = get(&s, "node:n1");
        assert_eq!(node.set_type(), Some("node"));
        assert_eq!(node.labels[labels::HOST_ID], "i-123");
        assert_eq!(node.labels[labels::HOSTNAME], "n1");
        assert!(node.metrics.is_empty() && node.labeled_metrics.is_empty());
        assert_eq!((node.create_time, node.scrape_time), (0, 42));
    }

    #[test]
    fn nulls_and_missing_values_stay_absent() {
        let s = sets(
            r#"{"node":{"nodeName":"x","startTime":null,"systemContainers":null,
                "cpu":{"time":null},"memory":{"usageBytes":5},"network":{"interfaces":null}},
                "pods":[{"podRef":{"name":"p","namespace":"ns","uid":"u"},"containers":null,"volume":null}]}"#,
        );
        let node = get(&s, "node:n1");
        assert_eq!(node.metrics.keys().collect::<Vec<_>>(), ["memory/usage"]);
        let pod = get(&s, "namespace:ns/pod:p");
        assert!(pod.metrics.is_empty(), "{:?}", pod.metrics);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn system_containers_get_heapsters_legacy_names() {
        let s = sets(
            r#"{"node":{"systemContainers":[{"name":"runtime"},{"name":"misc"},{"name":"kubelet"},{"name":"pods"}]}}"#,
        );
        let keys: Vec<_> = s.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "node:n1",
                "node:n1/container:docker-daemon",
                "node:n1/container:system",
                "node:n1/container:kubelet",
                "node:n1/container:pods"
            ]
        );
        let d = get(&s, "node:n1/container:docker-daemon");
        assert_eq!(d.set_type(), Some("sys_container"));
        assert_eq!(d.labels[labels::CONTAINER_NAME], "docker-daemon");
    }

    #[test]
    fn the_newest_of_two_same_named_containers_wins_whatever_the_order() {
        for order in
            [("2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z"), ("2020-01-02T00:00:00Z", "2020-01-01T00:00:00Z")]
        {
            let json = format!(
                r#"{{"node":{{}},"pods":[{{"podRef":{{"name":"p","namespace":"ns"}},"containers":[
                    {{"name":"c","startTime":"{}","cpu":{{"usageCoreNanoSeconds":1}}}},
                    {{"name":"c","startTime":"{}","cpu":{{"usageCoreNanoSeconds":2}}}}]}}]}}"#,
                order.0, order.1
            );
            let s = sets(&json);
            assert_eq!(s.len(), 3, "node, pod, one container");
            let c = get(&s, "namespace:ns/pod:p/container:c");
            let newest = if order.0 > order.1 { 1 } else { 2 };
            assert_eq!(c.get("cpu/usage"), Some(MetricValue::Int(newest)));
            assert_eq!(c.create_time, 1_577_923_200_000);
        }
    }

    #[test]
    fn a_recreated_pod_with_the_same_name_replaces_the_old_one_and_its_containers() {
        let s = sets(
            r#"{"node":{},"pods":[
                {"podRef":{"name":"p","namespace":"ns","uid":"new"},"startTime":"2020-01-02T00:00:00Z",
                 "containers":[{"name":"a"}]},
                {"podRef":{"name":"p","namespace":"ns","uid":"old"},"startTime":"2020-01-01T00:00:00Z",
                 "containers":[{"name":"a"},{"name":"b"}]}]}"#,
        );
        let keys: Vec<_> = s.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["node:n1", "namespace:ns/pod:p", "namespace:ns/pod:p/container:a"]);
        assert_eq!(get(&s, "namespace:ns/pod:p").labels[labels::POD_ID], "new");
    }

    #[test]
    fn nodes_and_pods_count_their_default_interface_as_heapster() {
        let s = sets(
            r#"{"node":{"network":{"rxBytes":1,"txBytes":2,"interfaces":[
                {"name":"eth0","rxBytes":1,"txBytes":2},{"name":"cni0","rxBytes":100,"txBytes":200,"rxErrors":4}]}},
               "pods":[{"podRef":{"name":"p","namespace":"ns"},"network":{"rxBytes":7,"txErrors":0}},
                       {"podRef":{"name":"q","namespace":"ns"},"network":{"name":"eth0","rxBytes":10,"txBytes":20,"interfaces":[
                         {"name":"eth0","rxBytes":10,"txBytes":20},{"name":"net1","rxBytes":100,"txBytes":200}]}}]}"#,
        );
        // The node: eth0 only, so what cni0 forwards for pods is not counted twice; a counter eth0 lacks comes
        // from the interfaces.
        let node = get(&s, "node:n1");
        assert_eq!(node.get("network/rx"), Some(MetricValue::Int(1)));
        assert_eq!(node.get("network/tx"), Some(MetricValue::Int(2)));
        assert_eq!(node.get("network/rx_errors"), Some(MetricValue::Int(4)));
        assert_eq!(node.get("network/tx_errors"), None, "no interface reports tx errors");
        // Pods: the inline counters (the default interface), not the second network's.
        let p = get(&s, "namespace:ns/pod:p");
        assert_eq!(p.get("network/rx"), Some(MetricValue::Int(7)));
        assert_eq!(p.get("network/tx_errors"), Some(MetricValue::Int(0)));
        assert_eq!(p.get("network/tx"), None);
        let q = get(&s, "namespace:ns/pod:q");
        assert_eq!(q.get("network/rx"), Some(MetricValue::Int(10)));
        assert_eq!(q.get("network/tx"), Some(MetricValue::Int(20)));
    }

    #[test]
    fn accelerators_and_custom_metrics() {
        let s = sets(
            r#"{"node":{},"pods":[{"podRef":{"name":"p","namespace":"ns"},"containers":[{"name":"c",
                "accelerators":[{"make":"nvidia","model":"tesla-p100","id":"GPU-1","memoryTotal":16,"memoryUsed":8,
                                 "dutyCycle":50}],
                "userDefinedMetrics":[{"name":"qps","type":"gauge","units":"count","value":1.5},
                                      {"name":"odd","type":"histogram","value":1},
                                      {"name":"total","type":"cumulative","value":7}]}]}]}"#,
        );
        let c = get(&s, "namespace:ns/pod:p/container:c");
        assert_eq!(c.get("custom/qps"), Some(MetricValue::Float(1.5)));
        assert_eq!(c.get("custom/total"), Some(MetricValue::Float(7.0)));
        assert_eq!(c.get("custom/odd"), None);
        let duty: Vec<_> = c.labeled_metrics.iter().filter(|m| m.name == "accelerator/duty_cycle").collect();
        assert_eq!(duty.len(), 1);
        assert_eq!(duty[0].value, MetricValue::Int(50));
        assert_eq!(duty[0].labels[labels::ACCELERATOR_ID], "GPU-1");
        assert_eq!(duty[0].labels[labels::ACCELERATOR_MAKE], "nvidia");
        assert_eq!(duty[0].labels[labels::ACCELERATOR_MODEL], "tesla-p100");
    }

    #[test]
    fn uptime_runs_to_the_sample_time_and_never_goes_negative() {
        let s = sets(
            r#"{"node":{"startTime":"2020-01-01T00:00:10Z","cpu":{"time":"2020-01-01T00:00:00Z"}},
               "pods":[{"podRef":{"name":"p","namespace":"ns"},"startTime":"2020-01-01T00:00:00Z",
                        "memory":{"time":"2020-01-01T00:01:00.5Z"}}]}"#,
        );
        assert_eq!(get(&s, "node:n1").get("uptime"), Some(MetricValue::Int(0)));
        let pod = get(&s, "namespace:ns/pod:p");
        assert_eq!(pod.get("uptime"), Some(MetricValue::Int(60_500)));
        assert_eq!(pod.scrape_time - pod.create_time, 60_500);
    }

    #[test]
    fn huge_counters_saturate_instead_of_wrapping() {
        let s = sets(r#"{"node":{"cpu":{"usageCoreNanoSeconds":18446744073709551615}}}"#);
        assert_eq!(get(&s, "node:n1").get("cpu/usage"), Some(MetricValue::Int(i64::MAX)));
    }
}
