//! Pods, namespaces and nodes from the API server, kept as the processors' [`ClusterMetadata`]: only the fields
//! heapster uses (names, UIDs, labels, node, requests and limits, restart counts, capacity), not whole objects.

use heapster_model::metadata::{ClusterMetadata, ContainerMeta, NamespaceMeta, NodeMeta, PodMeta};
use heapster_model::shared::Shared;
use heapster_model::{LabelValue, Labels, quantity};
use k8s_openapi::api::core::v1::NodeAddress;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::runtime::watcher;
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// An object [`Objects`] finds by the namespace (empty for a cluster's object) and name it holds.
trait Named {
    fn namespace(&self) -> &str {
        ""
    }
    fn name(&self) -> &str;
}

impl Named for PodMeta {
    fn namespace(&self) -> &str {
        &self.namespace
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Named for NamespaceMeta {
    fn name(&self) -> &str {
        &self.name
    }
}

impl Named for NodeEntry {
    fn name(&self) -> &str {
        &self.meta.name
    }
}

/// One kind's objects by namespace and name, read from the objects themselves: a key beside each (a
/// `namespace/name` string for a pod) was a copy of both, some 60 bytes a pod with its slot.
struct Objects<V> {
    table: hashbrown::HashTable<Arc<V>>,
    hasher: foldhash::fast::RandomState,
}

impl<V> Default for Objects<V> {
    fn default() -> Self {
        Objects { table: hashbrown::HashTable::new(), hasher: Default::default() }
    }
}

impl<V: Named> Objects<V> {
    fn hash(&self, namespace: &str, name: &str) -> u64 {
        self.hasher.hash_one((namespace, name))
    }

    fn get(&self, namespace: &str, name: &str) -> Option<&Arc<V>> {
        self.table.find(self.hash(namespace, name), named(namespace, name))
    }

    /// Adds `v`, or replaces the object of its name.
    fn insert(&mut self, v: Arc<V>) {
        let (namespace, name) = (v.namespace(), v.name());
        let hash = self.hash(namespace, name);
        let hasher = |v: &Arc<V>| self.hasher.hash_one((v.namespace(), v.name()));
        match self.table.entry(hash, named(namespace, name), hasher) {
            hashbrown::hash_table::Entry::Occupied(mut e) => *e.get_mut() = v,
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(v);
            }
        }
    }

    fn remove(&mut self, namespace: &str, name: &str) {
        let hash = self.hash(namespace, name);
        if let Ok(e) = self.table.find_entry(hash, named(namespace, name)) {
            e.remove();
        }
    }

    fn len(&self) -> usize {
        self.table.len()
    }

    fn values(&self) -> impl Iterator<Item = &Arc<V>> {
        self.table.iter()
    }
}

/// Whether an object is the one of that namespace and name.
fn named<'a, V: Named>(namespace: &'a str, name: &'a str) -> impl Fn(&Arc<V>) -> bool + 'a {
    move |v| v.name() == name && v.namespace() == namespace
}

/// One kind's objects, as the watcher last saw them.
struct Table<V> {
    live: RwLock<Objects<V>>,
    /// Whether a whole list has arrived at least once: before that, an object missing from `live` says nothing.
    listed: AtomicBool,
}

impl<V: Named> Table<V> {
    fn new() -> Self {
        Table { live: RwLock::new(Objects::default()), listed: AtomicBool::new(false) }
    }

    fn get(&self, namespace: &str, name: &str) -> Option<Arc<V>> {
        self.live.read().unwrap().get(namespace, name).cloned()
    }
}

/// Follows `api` and keeps `table` equal to what it lists, converting each object with `convert`.
fn follow<T, V>(
    api: Api<T>,
    table: Arc<Table<V>>,
    mut convert: impl FnMut(&T) -> Option<V> + Send + 'static,
    what: &'static str,
) where
    T: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    T::DynamicType: Default,
    V: Named + Send + Sync + 'static,
{
    // A re-list builds a fresh table and swaps it in when complete, so deleted objects do not linger.
    let mut relist: Option<Objects<V>> = None;
    super::watch::follow(api, what, move |event| match event {
        watcher::Event::Init => relist = Some(Objects::default()),
        watcher::Event::InitApply(o) => {
            if let (Some(fresh), Some(v)) = (relist.as_mut(), convert(&o)) {
                fresh.insert(Arc::new(v));
            }
        }
        watcher::Event::InitDone => {
            if let Some(fresh) = relist.take() {
                *table.live.write().unwrap() = fresh;
                table.listed.store(true, Ordering::Release);
            }
        }
        watcher::Event::Apply(o) => {
            if let Some(v) = convert(&o) {
                table.live.write().unwrap().insert(Arc::new(v));
            }
        }
        watcher::Event::Delete(o) => {
            let md = o.meta();
            if let Some(name) = md.name.as_deref() {
                table.live.write().unwrap().remove(md.namespace.as_deref().unwrap_or_default(), name);
            }
        }
    });
}

fn resources(
    r: Option<&ResourceRequirements>,
    which: fn(&ResourceRequirements) -> Option<&BTreeMap<String, Quantity>>,
    name: &str,
) -> Option<String> {
    r.and_then(which).and_then(|m| m.get(name)).map(|q| q.0.clone())
}

/// What pods have alike, kept once for all of them (see [`PodMeta`]): replicas of a workload have the same labels
/// and containers, and thousands of pods the same namespace, node, image and container names.
#[derive(Default)]
struct Alike {
    strings: Shared<str>,
    labels: Shared<Labels>,
    containers: Shared<[ContainerMeta]>,
}

impl Alike {
    fn string(&mut self, s: &str) -> LabelValue {
        self.strings.get(s).into()
    }

    /// Drops what no pod holds any more (pods replaced, re-listed or deleted), once a table has doubled since its
    /// last sweep. Strings last: some are held only by labels or containers swept just before.
    fn sweep_if_grown(&mut self) {
        self.labels.sweep_if_grown();
        self.containers.sweep_if_grown();
        self.strings.sweep_if_grown();
    }
}

fn pod_meta(p: &Pod, alike: &mut Alike) -> Option<PodMeta> {
    let md = &p.metadata;
    let (ns, name) = (md.namespace.as_deref()?, md.name.as_deref()?);
    let spec = p.spec.as_ref()?;
    let statuses = p.status.as_ref().and_then(|s| s.container_statuses.as_ref());
    let containers = spec
        .containers
        .iter()
        .map(|c| {
            let r = c.resources.as_ref();
            let req = |n: &str| resources(r, |r| r.requests.as_ref(), n);
            let lim = |n: &str| resources(r, |r| r.limits.as_ref(), n);
            let restarts =
                statuses.and_then(|s| s.iter().find(|s| s.name == c.name)).map(|s| i64::from(s.restart_count));
            ContainerMeta::new(alike.string(&c.name), alike.string(c.image.as_deref().unwrap_or_default()))
                .cpu(
                    req("cpu").as_deref().and_then(quantity::millicores),
                    lim("cpu").as_deref().and_then(quantity::millicores),
                )
                .memory(
                    req("memory").as_deref().and_then(quantity::bytes),
                    lim("memory").as_deref().and_then(quantity::bytes),
                )
                .ephemeral(
                    req("ephemeral-storage").as_deref().and_then(quantity::bytes),
                    lim("ephemeral-storage").as_deref().and_then(quantity::bytes),
                )
                .restarts(restarts)
        })
        .collect::<Vec<_>>();
    let meta = PodMeta {
        namespace: alike.string(ns),
        name: name.into(),
        uid: md.uid.as_deref().unwrap_or_default().into(),
        labels: alike.labels.share(Arc::new(kube_labels(md.labels.as_ref()))),
        node_name: alike.string(spec.node_name.as_deref().unwrap_or_default()),
        containers: alike.containers.share(containers.into()),
    };
    alike.sweep_if_grown();
    Some(meta)
}

/// An object's Kubernetes labels as heapster keeps them.
fn kube_labels(labels: Option<&BTreeMap<String, String>>) -> Labels {
    labels.into_iter().flatten().map(|(k, v)| (k.clone(), v.as_str())).collect()
}

fn namespace_meta(n: &Namespace) -> Option<NamespaceMeta> {
    let name = n.metadata.name.clone()?;
    Some(NamespaceMeta { name, uid: n.metadata.uid.as_deref().unwrap_or_default().into() })
}

/// A node as the enrichers and the kubelet sources need it, both from one watch.
pub struct NodeEntry {
    pub meta: Arc<NodeMeta>,
    /// Whether its Ready condition is True: others are not scraped (it would only time out).
    pub ready: bool,
    pub addresses: Vec<NodeAddress>,
    /// The value of the `host_id_annotation=` annotation, when that is given and the node has it. Only that one
    /// is kept: a node's annotations (its CNI's, CSI drivers', kubeadm's) run to a kilobyte or more.
    pub host_id: Option<String>,
}

fn node_entry(n: &Node, host_id_annotation: Option<&str>) -> Option<NodeEntry> {
    let meta = node_meta(n)?;
    let status = n.status.as_ref();
    let conditions = status.and_then(|s| s.conditions.as_ref());
    let entry = NodeEntry {
        meta: Arc::new(meta),
        ready: conditions.is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
        addresses: status.and_then(|s| s.addresses.clone()).unwrap_or_default(),
        host_id: host_id_annotation.and_then(|a| n.metadata.annotations.as_ref()?.get(a)).cloned(),
    };
    Some(entry)
}

fn node_meta(n: &Node) -> Option<NodeMeta> {
    let name = n.metadata.name.clone()?;
    let status = n.status.as_ref();
    let get = |m: Option<&BTreeMap<String, Quantity>>, k: &str| m.and_then(|m| m.get(k)).map(|q| q.0.clone());
    let cap = status.and_then(|s| s.capacity.as_ref());
    let alloc = status.and_then(|s| s.allocatable.as_ref());
    let cpu_cap = get(cap, "cpu").as_deref().and_then(quantity::millicores).unwrap_or(0);
    let mem_cap = get(cap, "memory").as_deref().and_then(quantity::bytes).unwrap_or(0);
    let meta = NodeMeta {
        name,
        cpu_capacity_millis: cpu_cap,
        memory_capacity: mem_cap,
        ephemeral_capacity: get(cap, "ephemeral-storage").as_deref().and_then(quantity::bytes),
        cpu_allocatable_millis: get(alloc, "cpu").as_deref().and_then(quantity::millicores).unwrap_or(cpu_cap),
        memory_allocatable: get(alloc, "memory").as_deref().and_then(quantity::bytes).unwrap_or(mem_cap),
        ephemeral_allocatable: get(alloc, "ephemeral-storage").as_deref().and_then(quantity::bytes),
        schedulable: !n.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false),
        labels: kube_labels(n.metadata.labels.as_ref()),
    };
    Some(meta)
}

/// The cluster as the processors and the kubelet sources see it, kept current by three watches (nodes are
/// watched once, for both).
pub struct KubeMetadata {
    pods: Arc<Table<PodMeta>>,
    namespaces: Arc<Table<NamespaceMeta>>,
    nodes: Arc<Table<NodeEntry>>,
}

impl KubeMetadata {
    /// Starts watching pods, namespaces and nodes, keeping of each node's annotations only `host_id_annotation`.
    /// Must be called inside a tokio runtime.
    pub fn start(client: Client, host_id_annotation: Option<String>) -> Arc<Self> {
        let md = Arc::new(KubeMetadata {
            pods: Arc::new(Table::new()),
            namespaces: Arc::new(Table::new()),
            nodes: Arc::new(Table::new()),
        });
        let mut alike = Alike::default();
        follow(Api::<Pod>::all(client.clone()), md.pods.clone(), move |p| pod_meta(p, &mut alike), "pods");
        follow(Api::<Namespace>::all(client.clone()), md.namespaces.clone(), namespace_meta, "namespaces");
        let node = move |n: &Node| node_entry(n, host_id_annotation.as_deref());
        follow(Api::<Node>::all(client), md.nodes.clone(), node, "nodes");
        md
    }

    /// Number of pods known (tests, start-up).
    pub fn pod_count(&self) -> usize {
        self.pods.live.read().unwrap().len()
    }

    /// Whether the API server lists the pod `namespace/name` on `node`; `None` until pods were listed once.
    ///
    /// A pod the API server places on another node is not this kubelet's either (a StatefulSet pod recreated
    /// elsewhere under the same name, or a kubelet making pods up).
    pub fn pod_on_node(&self, namespace: &str, name: &str, node: &str) -> Option<bool> {
        if !self.pods.listed.load(Ordering::Acquire) {
            return None;
        }
        let pod = self.pods.get(namespace, name);
        Some(pod.is_some_and(|p| p.node_name.is_empty() || p.node_name == node))
    }

    /// Whether nodes were listed at least once (`/healthz`).
    pub fn nodes_listed(&self) -> bool {
        self.nodes.listed.load(Ordering::Acquire)
    }

    /// Every node known, by name.
    pub fn nodes(&self) -> Vec<(String, Arc<NodeEntry>)> {
        let nodes = self.nodes.live.read().unwrap();
        let mut out: Vec<_> = nodes.values().map(|v| (v.meta.name.clone(), v.clone())).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

impl ClusterMetadata for KubeMetadata {
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<PodMeta>> {
        self.pods.get(namespace, name)
    }

    fn namespace(&self, name: &str) -> Option<Arc<NamespaceMeta>> {
        self.namespaces.get("", name)
    }

    fn node(&self, name: &str) -> Option<Arc<NodeMeta>> {
        self.nodes.get("", name).map(|e| e.meta.clone())
    }

    fn pods_on_node(&self, node: &str) -> Vec<Arc<PodMeta>> {
        self.pods.live.read().unwrap().values().filter(|p| p.node_name == node).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, app: &str, restarts: i32) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "shop", "name": name, "uid": format!("uid-{name}"),
                         "labels": {"app": app, "pod-template-hash": "7d9f8"}},
            "spec": {"nodeName": "node-1", "containers": [{
                "name": "web", "image": "nginx:1.25",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
            }]},
            "status": {"containerStatuses": [{"name": "web", "image": "nginx:1.25", "imageID": "", "ready": true,
                                               "restartCount": restarts}]},
        }))
        .unwrap()
    }

    /// Replicas of a workload keep one copy of what they have alike; what differs is their own, and what no pod
    /// holds any more is dropped.
    #[test]
    fn pods_share_what_they_have_alike() {
        let mut alike = Alike::default();
        let a = pod_meta(&pod("web-1", "web", 0), &mut alike).unwrap();
        let b = pod_meta(&pod("web-2", "web", 0), &mut alike).unwrap();
        let c = pod_meta(&pod("web-3", "web", 2), &mut alike).unwrap();
        let d = pod_meta(&pod("db-1", "db", 0), &mut alike).unwrap();
        assert_eq!(
            (a.namespace.as_str(), a.name.as_str(), a.uid.as_str(), a.node_name.as_str()),
            ("shop", "web-1", "uid-web-1", "node-1")
        );
        assert_eq!(a.labels.get("app").map(|v| v.as_str()), Some("web"));
        let web = &a.containers[0];
        assert_eq!((web.name.as_str(), web.image.as_str()), ("web", "nginx:1.25"));
        assert_eq!((web.cpu_request_millis(), web.cpu_limit_millis()), (Some(100), None));
        assert_eq!((web.memory_request(), web.memory_limit()), (Some(64 << 20), Some(256 << 20)));
        assert_eq!((web.ephemeral_request(), web.restart_count()), (None, Some(0)));

        assert!(Arc::ptr_eq(&a.labels, &b.labels) && Arc::ptr_eq(&a.labels, &c.labels));
        assert!(!Arc::ptr_eq(&a.labels, &d.labels));
        assert!(Arc::ptr_eq(&a.containers, &b.containers) && Arc::ptr_eq(&a.containers, &d.containers));
        assert!(!Arc::ptr_eq(&a.containers, &c.containers), "restarted: a container of its own");
        assert_eq!(c.containers[0].restart_count(), Some(2));
        assert!(a.namespace.ptr_eq(&d.namespace) && a.node_name.ptr_eq(&d.node_name));
        assert!(c.containers[0].image.ptr_eq(&web.image));

        drop((a, b, c));
        alike.labels.sweep();
        alike.containers.sweep();
        assert_eq!((alike.labels.len(), alike.containers.len()), (1, 1), "only db-1's are held");
    }

    #[test]
    fn of_a_nodes_annotations_only_the_host_id_one_is_kept() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "node-1", "annotations": {"example.com/host-id": "h-42", "flannel.alpha.coreos.com/backend-data": "{}"}},
        }))
        .unwrap();
        assert_eq!(node_entry(&node, Some("example.com/host-id")).unwrap().host_id.as_deref(), Some("h-42"));
        assert_eq!(node_entry(&node, Some("example.com/other")).unwrap().host_id, None);
        assert_eq!(node_entry(&node, None).unwrap().host_id, None);
    }
}
