//! What the Kubernetes processors need to know about the cluster: pods (labels, node, containers' requests and
//! limits), namespaces (UIDs) and nodes (capacity, allocatable, schedulability, labels).
//!
//! Heapster read these from informer caches (`PodLister`, `NodeLister`, a namespace store) inside each processor.
//! Here they sit behind one trait, [`ClusterMetadata`], filled by Kubernetes discovery in `heapster-sources`, so
//! that processors stay free of I/O and are tested with [`StaticMetadata`].
//!
//! Quantities are already converted to the units metrics use: CPU in millicores, memory and storage in bytes.
//! `None` means "not set in the spec" (no request, no limit), which is not the same as zero; processors decide
//! what to report for it (Heapster reported 0).

use crate::{LabelValue, Labels};
use std::collections::HashMap;
use std::sync::Arc;

/// One container of a pod's spec (`spec.containers[]`), with its restart count from `status.containerStatuses[]`.
///
/// Kept for every pod of the cluster, so kept small: the requests, limits and restart count in one array with a
/// bit each saying whether it is set, where seven `Option<i64>` took 112 bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ContainerMeta {
    pub name: LabelValue,
    /// The image as the spec names it (becomes the `container_base_image` label, shared by every set of it).
    pub image: LabelValue,
    /// By [`Field`]; `values[i]` is meaningful when bit `i` of `set` is.
    values: [i64; 7],
    set: u8,
}

/// What [`ContainerMeta::values`] holds, in order.
#[derive(Clone, Copy)]
enum Field {
    CpuRequest,
    CpuLimit,
    MemoryRequest,
    MemoryLimit,
    EphemeralRequest,
    EphemeralLimit,
    Restarts,
}

impl ContainerMeta {
    /// A container with no requests, limits or status.
    pub fn new(name: impl Into<LabelValue>, image: impl Into<LabelValue>) -> Self {
        ContainerMeta { name: name.into(), image: image.into(), ..Default::default() }
    }

    fn get(&self, f: Field) -> Option<i64> {
        (self.set & 1 << f as u8 != 0).then(|| self.values[f as usize])
    }

    fn put(&mut self, f: Field, v: Option<i64>) {
        self.values[f as usize] = v.unwrap_or(0);
        self.set = self.set & !(1 << f as u8) | u8::from(v.is_some()) << f as u8;
    }

    /// The CPU request, in millicores.
    pub fn cpu_request_millis(&self) -> Option<i64> {
        self.get(Field::CpuRequest)
    }

    /// The CPU limit, in millicores.
    pub fn cpu_limit_millis(&self) -> Option<i64> {
        self.get(Field::CpuLimit)
    }

    /// The memory request, in bytes.
    pub fn memory_request(&self) -> Option<i64> {
        self.get(Field::MemoryRequest)
    }

    /// The memory limit, in bytes.
    pub fn memory_limit(&self) -> Option<i64> {
        self.get(Field::MemoryLimit)
    }

    /// The ephemeral-storage request, in bytes.
    pub fn ephemeral_request(&self) -> Option<i64> {
        self.get(Field::EphemeralRequest)
    }

    /// The ephemeral-storage limit, in bytes.
    pub fn ephemeral_limit(&self) -> Option<i64> {
        self.get(Field::EphemeralLimit)
    }

    /// `None` when the container has no status yet.
    pub fn restart_count(&self) -> Option<i64> {
        self.get(Field::Restarts)
    }

    /// Sets the CPU request and limit, in millicores.
    pub fn cpu(mut self, request: Option<i64>, limit: Option<i64>) -> Self {
        self.put(Field::CpuRequest, request);
        self.put(Field::CpuLimit, limit);
        self
    }

    /// Sets the memory request and limit, in bytes.
    pub fn memory(mut self, request: Option<i64>, limit: Option<i64>) -> Self {
        self.put(Field::MemoryRequest, request);
        self.put(Field::MemoryLimit, limit);
        self
    }

    /// Sets the ephemeral-storage request and limit, in bytes.
    pub fn ephemeral(mut self, request: Option<i64>, limit: Option<i64>) -> Self {
        self.put(Field::EphemeralRequest, request);
        self.put(Field::EphemeralLimit, limit);
        self
    }

    /// Sets the restart count (`None`: no status yet).
    pub fn restarts(mut self, n: impl Into<Option<i64>>) -> Self {
        self.put(Field::Restarts, n.into());
        self
    }
}

/// A pod as the API server knows it.
///
/// Kept for every pod of the cluster (150,000 at 5,000 nodes), so what replicas of one workload have alike (their
/// labels, containers, namespace and node) can be shared between them rather than copied into each, as Kubernetes
/// discovery does (see [`crate::shared::Shared`]): about 650 bytes a pod when each had its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodMeta {
    pub namespace: LabelValue,
    pub name: LabelValue,
    /// Becomes the `pod_id` label, shared by every set of the pod.
    pub uid: LabelValue,
    /// The pod's Kubernetes labels (`metadata.labels`).
    pub labels: Arc<Labels>,
    /// `spec.nodeName`; empty while the pod is not scheduled.
    pub node_name: LabelValue,
    /// `spec.containers`, in spec order. Init containers are not listed: they do not run beside the others, and
    /// Heapster left them out too.
    pub containers: Arc<[ContainerMeta]>,
}

impl PodMeta {
    /// A pod with no labels, node or containers.
    pub fn new(namespace: impl Into<LabelValue>, name: impl Into<LabelValue>, uid: impl Into<LabelValue>) -> Self {
        PodMeta { namespace: namespace.into(), name: name.into(), uid: uid.into(), ..Default::default() }
    }

    /// Adds a Kubernetes label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.labels).insert(key.into(), value.into());
        self
    }

    /// Sets the node the pod is bound to.
    pub fn on_node(mut self, node: impl Into<LabelValue>) -> Self {
        self.node_name = node.into();
        self
    }

    /// Appends a container to the spec.
    pub fn container(mut self, c: ContainerMeta) -> Self {
        let mut containers = self.containers.to_vec();
        containers.push(c);
        self.containers = containers.into();
        self
    }

    /// The spec's container of that name.
    pub fn find_container(&self, name: &str) -> Option<&ContainerMeta> {
        self.containers.iter().find(|c| c.name == name)
    }
}

/// A namespace as the API server knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceMeta {
    pub name: String,
    /// Becomes the `namespace_id` label, shared by every set of the namespace.
    pub uid: LabelValue,
}

/// A node as the API server knows it (`status.capacity`, `status.allocatable`, `spec.unschedulable`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeMeta {
    pub name: String,
    pub cpu_capacity_millis: i64,
    pub memory_capacity: i64,
    /// `None` on nodes that do not report ephemeral storage (before Kubernetes 1.8, or with the feature off).
    pub ephemeral_capacity: Option<i64>,
    pub cpu_allocatable_millis: i64,
    pub memory_allocatable: i64,
    pub ephemeral_allocatable: Option<i64>,
    /// `!spec.unschedulable`.
    pub schedulable: bool,
    /// The node's Kubernetes labels (see [`PodMeta::labels`]).
    pub labels: Labels,
}

impl NodeMeta {
    /// A schedulable node whose allocatable equals its capacity and that reports no ephemeral storage.
    pub fn new(name: impl Into<String>, cpu_millis: i64, memory: i64) -> Self {
        NodeMeta {
            name: name.into(),
            cpu_capacity_millis: cpu_millis,
            memory_capacity: memory,
            cpu_allocatable_millis: cpu_millis,
            memory_allocatable: memory,
            schedulable: true,
            ..Default::default()
        }
    }

    /// Sets allocatable CPU (millicores) and memory (bytes), below capacity by what the kubelet reserves.
    pub fn allocatable(mut self, cpu_millis: i64, memory: i64) -> Self {
        (self.cpu_allocatable_millis, self.memory_allocatable) = (cpu_millis, memory);
        self
    }

    /// Sets ephemeral-storage capacity and allocatable, in bytes.
    pub fn ephemeral(mut self, capacity: i64, allocatable: i64) -> Self {
        (self.ephemeral_capacity, self.ephemeral_allocatable) = (Some(capacity), Some(allocatable));
        self
    }

    /// Sets whether new pods may be scheduled here.
    pub fn schedulable(mut self, schedulable: bool) -> Self {
        self.schedulable = schedulable;
        self
    }

    /// Adds a Kubernetes label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }
}

/// A read-only view of the cluster, as of the latest list/watch. Lookups are by name, as Heapster's listers were;
/// an unknown object is `None`, never an error: metadata lags the kubelets by a watch event or so, and processors
/// must cope.
pub trait ClusterMetadata: Send + Sync {
    /// The pod `namespace/name`.
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<PodMeta>>;
    /// The namespace `name`.
    fn namespace(&self, name: &str) -> Option<Arc<NamespaceMeta>>;
    /// The node `name`.
    fn node(&self, name: &str) -> Option<Arc<NodeMeta>>;
    /// Every pod bound to `node`, in no particular order.
    fn pods_on_node(&self, node: &str) -> Vec<Arc<PodMeta>>;
}

/// An in-memory [`ClusterMetadata`], for tests, the simulator and standalone mode (where it stays empty).
#[derive(Debug, Clone, Default)]
pub struct StaticMetadata {
    pods: HashMap<(String, String), Arc<PodMeta>>,
    namespaces: HashMap<String, Arc<NamespaceMeta>>,
    nodes: HashMap<String, Arc<NodeMeta>>,
}

impl StaticMetadata {
    /// Knows nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a pod.
    pub fn with_pod(mut self, pod: PodMeta) -> Self {
        self.insert_pod(pod);
        self
    }

    /// Adds (or replaces) a namespace.
    pub fn with_namespace(mut self, name: impl Into<String>, uid: impl Into<LabelValue>) -> Self {
        self.insert_namespace(NamespaceMeta { name: name.into(), uid: uid.into() });
        self
    }

    /// Adds (or replaces) a node.
    pub fn with_node(mut self, node: NodeMeta) -> Self {
        self.insert_node(node);
        self
    }

    /// Adds (or replaces) a pod in place.
    pub fn insert_pod(&mut self, pod: PodMeta) {
        self.pods.insert((pod.namespace.to_string(), pod.name.to_string()), Arc::new(pod));
    }

    /// Forgets a pod.
    pub fn remove_pod(&mut self, namespace: &str, name: &str) -> Option<Arc<PodMeta>> {
        self.pods.remove(&(namespace.to_owned(), name.to_owned()))
    }

    /// Adds (or replaces) a namespace in place.
    pub fn insert_namespace(&mut self, ns: NamespaceMeta) {
        self.namespaces.insert(ns.name.clone(), Arc::new(ns));
    }

    /// Adds (or replaces) a node in place.
    pub fn insert_node(&mut self, node: NodeMeta) {
        self.nodes.insert(node.name.clone(), Arc::new(node));
    }

    /// Wraps this into the shared handle processors take.
    pub fn shared(self) -> Arc<dyn ClusterMetadata> {
        Arc::new(self)
    }
}

impl ClusterMetadata for StaticMetadata {
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<PodMeta>> {
        self.pods.get(&(namespace.to_owned(), name.to_owned())).cloned()
    }

    fn namespace(&self, name: &str) -> Option<Arc<NamespaceMeta>> {
        self.namespaces.get(name).cloned()
    }

    fn node(&self, name: &str) -> Option<Arc<NodeMeta>> {
        self.nodes.get(name).cloned()
    }

    fn pods_on_node(&self, node: &str) -> Vec<Arc<PodMeta>> {
        self.pods.values().filter(|p| p.node_name == node).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each figure reads back as it was set, unset is not zero, and setting one again replaces it.
    #[test]
    fn a_containers_figures_read_back_as_set() {
        let c = ContainerMeta::new("c", "i")
            .cpu(Some(0), None)
            .memory(None, Some(-1))
            .ephemeral(Some(i64::MAX), Some(i64::MIN))
            .restarts(3);
        assert_eq!((c.cpu_request_millis(), c.cpu_limit_millis()), (Some(0), None));
        assert_eq!((c.memory_request(), c.memory_limit()), (None, Some(-1)));
        assert_eq!((c.ephemeral_request(), c.ephemeral_limit()), (Some(i64::MAX), Some(i64::MIN)));
        assert_eq!(c.restart_count(), Some(3));
        let c = c.cpu(None, Some(5)).restarts(None);
        assert_eq!((c.cpu_request_millis(), c.cpu_limit_millis(), c.restart_count()), (None, Some(5), None));
        assert_eq!(c.memory_limit(), Some(-1), "the others are untouched");
        assert_ne!(c, ContainerMeta::new("c", "i").cpu(None, Some(5)).memory(None, Some(-1)));
        assert!(std::mem::size_of::<ContainerMeta>() <= 96, "{} bytes", std::mem::size_of::<ContainerMeta>());
    }

    #[test]
    fn static_metadata_answers_what_it_was_given() {
        let md = StaticMetadata::new()
            .with_pod(PodMeta::new("ns", "a", "uid-a").on_node("n1"))
            .with_pod(PodMeta::new("ns", "b", "uid-b").on_node("n2"))
            .with_pod(PodMeta::new("other", "a", "uid-oa").on_node("n1"))
            .with_namespace("ns", "ns-uid")
            .with_node(NodeMeta::new("n1", 4000, 8 << 30));
        assert_eq!(md.pod("ns", "a").unwrap().uid, "uid-a");
        assert_eq!(md.pod("other", "a").unwrap().uid, "uid-oa");
        assert!(md.pod("ns", "c").is_none());
        assert_eq!(md.namespace("ns").unwrap().uid, "ns-uid");
        assert!(md.namespace("other").is_none());
        assert_eq!(md.node("n1").unwrap().cpu_allocatable_millis, 4000);
        let mut on_n1: Vec<_> = md.pods_on_node("n1").iter().map(|p| p.uid.clone()).collect();
        on_n1.sort();
        assert_eq!(on_n1, ["uid-a", "uid-oa"]);
        assert!(md.pods_on_node("n3").is_empty());
    }
}
