//! Adds what the API server knows about a pod to its pod and container sets, as Heapster 1.6's
//! `pod_based_enricher.go`:
//!
//! - on pod and container sets: `pod_id` (the pod's UID), `labels` (the pod's Kubernetes labels, see
//!   [`LabelCopier`]) and the stored labels;
//! - on container sets: `container_base_image` (unless the source set one), `cpu|memory|ephemeral_storage/request`
//!   and `/limit` from the container's spec, `restart_count` from its status;
//! - on pod sets: the same requests and limits summed over the spec's containers;
//! - a pod set for a known pod whose containers were scraped but whose pod was not, built from a container's
//!   labels (Heapster did the same, so that the pod and its namespace still add up);
//! - a container set holding only requests and limits for each spec container the batch lacks (a container that
//!   is waiting, not running, still reserves its requests), as Heapster's stubs.
//!
//! A request or limit the spec leaves out is reported as 0, as Heapster did: no request reserves nothing, and
//! Heapster's dashboards read a 0 limit as "no limit".
//!
//! A set whose pod is unknown (metadata lags a new pod by a watch event) is left as the source made it: kept,
//! not dropped (Heapster 1.6 kept it too; earlier versions dropped it), and counted in [`PodBasedEnricher::unenriched_sets`].
//!
//! Sets are matched to pods by namespace and name, as in Heapster, and take the API object's UID as `pod_id`: a
//! static pod's sets carry the kubelet's own UID (the mirror pod's `kubernetes.io/config.mirror` annotation), so
//! matching by UID would leave every control-plane pod of a kubeadm cluster unenriched.
//!
//! Deviations from Heapster:
//! - Pod requests and limits are summed here rather than left to the pod aggregator, so that a pod set carries
//!   them even when some of its containers are missing from the batch; the pod aggregator does not add to them.
//! - Heapster moved `create_time` to the pod's `status.startTime`; the metadata does not carry it and the sources
//!   already set the start time the kubelet reports.
//! - Created pod and container sets also carry `pod_namespace` (the seed's label) and the pod's `nodename` when no
//!   container label gives one.

use crate::label_copier::{LabelCopier, PodEnricherConfig};
use crate::metadata::{ClusterMetadata, ContainerMeta, PodMeta};
use crate::{Counter, DataProcessor};
use heapster_model::keys::{self, MetricSetType};
use heapster_model::labels;
use heapster_model::{DataBatch, LabelValue, Labels, MetricSet, MetricValue};
use std::collections::hash_map::Entry;
use std::sync::Arc;

/// Request and limit metrics: the same six the node aggregator sums, in name order, so that setting them (and
/// `restart_count` after them) is an append or one merge into a set's sorted metrics.
const RESOURCE_METRICS: [&str; 6] = [
    "cpu/limit",
    "cpu/request",
    "ephemeral_storage/limit",
    "ephemeral_storage/request",
    "memory/limit",
    "memory/request",
];

/// A container's requests and limits in [`RESOURCE_METRICS`] order; unset ones are 0.
fn resources(c: &ContainerMeta) -> [i64; 6] {
    [
        c.cpu_limit_millis(),
        c.cpu_request_millis(),
        c.ephemeral_limit(),
        c.ephemeral_request(),
        c.memory_limit(),
        c.memory_request(),
    ]
    .map(|v| v.unwrap_or(0))
}

/// Labels a created pod or container set copies from its sibling.
const PLACEMENT_LABELS: [&str; 3] = [labels::NODENAME, labels::HOSTNAME, labels::HOST_ID];

/// See the module docs.
pub struct PodBasedEnricher {
    metadata: Arc<dyn ClusterMetadata>,
    copier: LabelCopier,
    unenriched: Counter,
    /// The `labels` value of the pods enriched last round, by the address of their labels (held, so the address
    /// is not reused): labels are replaced, not changed, and pods with the same labels (a workload's replicas)
    /// share them, so pods whose labels are the same object have the same value. Joining them again for each pod
    /// and round was a tenth of this processor's work.
    joined: JoinedCache,
}

type JoinedCache = foldhash::HashMap<usize, (Arc<Labels>, LabelValue)>;

impl PodBasedEnricher {
    /// Reads pods from `metadata`; `config` is the `--label_separator`, `--ignore_label`, `--store_label` flags.
    pub fn new(metadata: Arc<dyn ClusterMetadata>, config: PodEnricherConfig) -> Self {
        PodBasedEnricher {
            metadata,
            copier: LabelCopier::new(&config),
            unenriched: Counter::default(),
            joined: JoinedCache::default(),
        }
    }

    /// Pod and container sets left unenriched so far because their pod was unknown, had another UID, or the set
    /// named no pod.
    pub fn unenriched_sets(&self) -> Counter {
        self.unenriched.clone()
    }

    fn enrich_common(&self, set: &mut MetricSet, pod: &PodMeta) {
        self.enrich_common_joined(set, pod, &self.copier.joined(&pod.labels), false);
    }

    /// [`PodBasedEnricher::enrich_common`] with the pod's `labels` value already joined; `has_uid`: the set is
    /// known to carry `pod_id` = the pod's UID already.
    fn enrich_common_joined(&self, set: &mut MetricSet, pod: &PodMeta, joined: &LabelValue, has_uid: bool) {
        // Sets from the kubelet mostly carry the pod's UID already (static pods carry another): then there is
        // nothing to write, and no key or value to allocate.
        if !has_uid {
            match set.labels.get_mut(labels::POD_ID) {
                Some(uid) if *uid == pod.uid => {}
                Some(uid) => uid.clone_from(&pod.uid),
                None => {
                    set.labels.insert(labels::POD_ID, pod.uid.clone());
                }
            }
        }
        self.copier.copy_joined(&pod.labels, joined, &mut set.labels);
    }

    /// Enriches a container set; returns which of the pod's spec containers it is, if any.
    fn enrich_container(
        &self,
        set: &mut MetricSet,
        pod: &PodMeta,
        joined: &LabelValue,
        has_uid: bool,
    ) -> Option<usize> {
        self.enrich_common_joined(set, pod, joined, has_uid);
        let name = set.labels.get(labels::CONTAINER_NAME)?;
        let i = pod.containers.iter().position(|c| c.name == *name)?;
        set_container_meta(set, &pod.containers[i]);
        Some(i)
    }

    fn enrich_pod(&self, set: &mut MetricSet, pod: &PodMeta, joined: &LabelValue, has_uid: bool) {
        self.enrich_common_joined(set, pod, joined, has_uid);
        let mut sums = [0i64; 6];
        for c in pod.containers.iter() {
            for (sum, v) in sums.iter_mut().zip(resources(c)) {
                *sum = sum.saturating_add(v);
            }
        }
        set.metrics.insert_all(RESOURCE_METRICS.into_iter().zip(sums.map(MetricValue::Int)));
    }

    /// A pod set for `pod`, placed where `container` ran.
    fn new_pod_set(&self, pod: &PodMeta, container: &MetricSet) -> MetricSet {
        let mut set = MetricSet {
            create_time: container.create_time,
            scrape_time: container.scrape_time,
            labels: identity_labels(MetricSetType::Pod, pod),
            ..Default::default()
        };
        copy_placement(&container.labels, &mut set.labels, pod);
        self.enrich_pod(&mut set, pod, &self.copier.joined(&pod.labels), false);
        set
    }

    /// A set with only `c`'s requests, limits and restart count, for a spec container the batch lacks.
    fn stub_container_set(&self, pod: &PodMeta, c: &ContainerMeta, pod_set: &MetricSet) -> MetricSet {
        let mut set = MetricSet {
            create_time: pod_set.create_time,
            scrape_time: pod_set.scrape_time,
            labels: identity_labels(MetricSetType::PodContainer, pod),
            ..Default::default()
        };
        set.labels.insert(labels::CONTAINER_NAME, c.name.clone());
        copy_placement(&pod_set.labels, &mut set.labels, pod);
        self.enrich_common(&mut set, pod);
        set_container_meta(&mut set, c);
        set
    }
}

/// `type`, namespace and pod name labels of a created set.
fn identity_labels(kind: MetricSetType, pod: &PodMeta) -> Labels {
    Labels::from([
        (labels::TYPE, LabelValue::from(kind.as_str())),
        (labels::NAMESPACE_NAME, pod.namespace.clone()),
        (labels::POD_NAMESPACE, pod.namespace.clone()),
        (labels::POD_NAME, pod.name.clone()),
    ])
}

fn copy_placement(from: &Labels, to: &mut Labels, pod: &PodMeta) {
    for key in PLACEMENT_LABELS {
        if let Some(v) = from.get(key) {
            to.insert(key, v.clone());
        }
    }
    if !to.contains_key(labels::NODENAME) && !pod.node_name.is_empty() {
        to.insert(labels::NODENAME, pod.node_name.clone());
    }
}

fn set_container_meta(set: &mut MetricSet, c: &ContainerMeta) {
    // All at once: one merge into the set's sorted metrics rather than a search and a shift for each.
    let requests = RESOURCE_METRICS.into_iter().zip(resources(c).map(MetricValue::Int));
    let restarts = c.restart_count().map(|n| ("restart_count", MetricValue::Int(n)));
    set.metrics.insert_all(requests.chain(restarts));
    if !c.image.is_empty() && !set.labels.contains_key(labels::CONTAINER_BASE_IMAGE) {
        set.labels.insert(labels::CONTAINER_BASE_IMAGE, c.image.clone());
    }
}

/// The pod of the last set looked at. A pod's sets (the pod's, then its containers') are next to each other in key
/// order, so keeping the last one's metadata, `labels` value and place among the pods seen saves a metadata lookup
/// (two key strings allocated and hashed), a cache lookup and a key format for every set but the first.
#[derive(Default)]
struct CurrentPod {
    /// What the metadata was asked: the set's `namespace_name` and `pod_name`.
    namespace: String,
    name: String,
    /// Whether `namespace`/`name` hold a lookup yet.
    valid: bool,
    pod: Option<Arc<PodMeta>>,
    /// The `labels` value of `pod`, once a set was enriched with it.
    joined: Option<LabelValue>,
    /// Where `pod` is in the pods seen, once a set was enriched with it.
    seen: Option<usize>,
}

impl CurrentPod {
    fn is(&self, namespace: &str, name: &str) -> bool {
        self.valid && self.namespace == namespace && self.name == name
    }

    fn reset(&mut self, namespace: &str, name: &str, pod: Option<Arc<PodMeta>>) {
        self.namespace.clear();
        self.namespace.push_str(namespace);
        self.name.clear();
        self.name.push_str(name);
        self.valid = true;
        self.pod = pod;
        self.joined = None;
        self.seen = None;
    }
}

/// Whether `set` is a pod or pod-container set, and which pod it names.
fn pod_ref(set: &MetricSet) -> Option<(MetricSetType, Option<(&str, &str)>)> {
    let kind = match set.set_type()? {
        t if t == MetricSetType::Pod.as_str() => MetricSetType::Pod,
        t if t == MetricSetType::PodContainer.as_str() => MetricSetType::PodContainer,
        _ => return None,
    };
    let ns = set.labels.get(labels::NAMESPACE_NAME).filter(|s| !s.is_empty());
    let name = set.labels.get(labels::POD_NAME).filter(|s| !s.is_empty());
    Some((kind, ns.zip(name).map(|(n, p)| (n.as_str(), p.as_str()))))
}

impl DataProcessor for PodBasedEnricher {
    fn name(&self) -> &'static str {
        "pod_based_enricher"
    }

    /// A pod's sets all come from its node's kubelet, and the metadata is shared.
    fn for_one_source(&self) -> Option<Box<dyn DataProcessor>> {
        Some(Box::new(PodBasedEnricher {
            metadata: self.metadata.clone(),
            copier: self.copier.clone(),
            unenriched: self.unenriched.clone(),
            joined: JoinedCache::default(),
        }))
    }

    fn counters(&self) -> Vec<(&'static str, Counter)> {
        vec![(crate::UNENRICHED_SETS, self.unenriched.clone())]
    }

    fn process(&mut self, mut batch: DataBatch) -> DataBatch {
        // Pods seen this round, in the order first seen, and where each is in that list by pod key.
        let mut seen: Vec<SeenPod> = Vec::new();
        let mut seen_at: foldhash::HashMap<String, usize> = foldhash::HashMap::default();
        let mut unenriched = 0u64;
        let mut current = CurrentPod::default();
        let mut last_round = std::mem::take(&mut self.joined);
        let mut this_round = JoinedCache::with_capacity_and_hasher(last_round.len(), Default::default());
        for (key, set) in batch.sets.iter_mut() {
            let Some((kind, named)) = pod_ref(set) else { continue };
            let Some((ns, name)) = named else {
                unenriched += 1;
                continue;
            };
            if !current.is(ns, name) {
                let pod = self.metadata.pod(ns, name);
                current.reset(ns, name, pod);
            }
            let Some(pod) = current.pod.clone() else {
                tracing::debug!(set = %key, "pod unknown to metadata: left unenriched");
                unenriched += 1;
                continue;
            };
            // Matched by namespace and name, as Heapster did: a static pod's sets carry the kubelet's UID (the
            // mirror pod's `kubernetes.io/config.mirror` annotation), not the mirror pod's, and take its UID here.
            let has_uid = set.labels.get(labels::POD_ID).is_some_and(|uid| *uid == pod.uid);
            let joined = current.joined.get_or_insert_with(|| {
                let at = Arc::as_ptr(&pod.labels) as usize;
                let (_, joined) = match this_round.entry(at) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => e.insert(
                        last_round.remove(&at).unwrap_or_else(|| (pod.labels.clone(), self.copier.joined(&pod.labels))),
                    ),
                };
                joined.clone()
            });
            let container = match kind {
                MetricSetType::Pod => {
                    self.enrich_pod(set, &pod, joined, has_uid);
                    None
                }
                _ => self.enrich_container(set, &pod, joined, has_uid),
            };
            let i = *current.seen.get_or_insert_with(|| {
                *seen_at.entry(keys::pod_key(&pod.namespace, &pod.name)).or_insert_with_key(|pod_key| {
                    seen.push(SeenPod::new(pod.clone(), pod_key.clone()));
                    seen.len() - 1
                })
            });
            seen[i].saw(key, kind, container);
        }
        drop(last_round);
        self.joined = this_round;
        self.unenriched.add(unenriched);

        for SeenPod { pod, pod_key, container_key, pod_set_seen, containers_seen } in seen {
            if !pod_set_seen && !batch.sets.contains_key(&pod_key) {
                let Some(container) = container_key.and_then(|k| batch.sets.get(&k)) else { continue };
                tracing::debug!(pod = %pod_key, "no pod set: creating one from its containers");
                let pod_set = self.new_pod_set(&pod, container);
                batch.sets.insert(pod_key.clone(), pod_set);
            }
            let mut stubs = Vec::new();
            for (i, c) in pod.containers.iter().enumerate() {
                if i < 64 && containers_seen & (1 << i) != 0 {
                    continue;
                }
                let key = keys::pod_container_key(&pod.namespace, &pod.name, &c.name);
                if !batch.sets.contains_key(&key) {
                    stubs.push((key, self.stub_container_set(&pod, c, &batch.sets[&pod_key])));
                }
            }
            batch.sets.extend(stubs);
        }
        batch
    }
}

/// A pod enriched this round.
struct SeenPod {
    pod: Arc<PodMeta>,
    pod_key: String,
    /// The key of its first container set in key order, to place a pod set created for it.
    container_key: Option<String>,
    /// Whether its pod set, and which of its spec containers' sets (bit `i` for container `i`), were among the
    /// sets enriched. Those are in the batch for sure; only the others are looked up there (a search of string
    /// compares over thousands of keys) to find what to create.
    pod_set_seen: bool,
    containers_seen: u64,
}

impl SeenPod {
    fn new(pod: Arc<PodMeta>, pod_key: String) -> Self {
        SeenPod { pod, pod_key, container_key: None, pod_set_seen: false, containers_seen: 0 }
    }

    /// Notes the set under `key`, of `kind`, which is spec container `container` if that is known.
    fn saw(&mut self, key: &str, kind: MetricSetType, container: Option<usize>) {
        if kind == MetricSetType::Pod {
            self.pod_set_seen |= key == self.pod_key;
            return;
        }
        if self.container_key.is_none() {
            self.container_key = Some(key.to_owned());
        }
        if let Some(i) = container.filter(|&i| i < 64) {
            // The set stands for the stub only under the key the stub would get.
            let c = &self.pod.containers[i].name;
            if key.strip_prefix(self.pod_key.as_str()).and_then(|k| k.strip_prefix("/container:")) == Some(c) {
                self.containers_seen |= 1 << i;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::StaticMetadata;

    /// What the node aggregator sums is what this enricher sets, and in name order, as the merge wants it.
    #[test]
    fn resource_metrics_are_the_node_aggregators_in_name_order() {
        let mut summed = crate::node_aggregator::DEFAULT_METRICS.to_vec();
        summed.sort_unstable();
        assert_eq!(RESOURCE_METRICS.to_vec(), summed);
    }

    const GIB: i64 = 1 << 30;

    fn labels_of(kind: MetricSetType, ns: &str, pod: &str, container: Option<&str>) -> Labels {
        let mut l = Labels::from([
            (labels::TYPE, kind.as_str().to_owned()),
            (labels::NAMESPACE_NAME, ns.to_owned()),
            (labels::POD_NAMESPACE, ns.to_owned()),
            (labels::POD_NAME, pod.to_owned()),
            (labels::NODENAME, "n1".to_owned()),
            (labels::HOSTNAME, "n1".to_owned()),
        ]);
        if let Some(c) = container {
            l.insert(labels::CONTAINER_NAME, c.to_owned());
        }
        l
    }

    fn pod_set(ns: &str, pod: &str) -> MetricSet {
        let mut s = MetricSet { create_time: 1_000, scrape_time: 60_000, ..Default::default() };
        s.labels = labels_of(MetricSetType::Pod, ns, pod, None);
        s.set("cpu/usage_rate", MetricValue::Float(300.0));
        s
    }

    fn container_set(ns: &str, pod: &str, c: &str) -> MetricSet {
        let mut s = MetricSet { create_time: 2_000, scrape_time: 60_000, ..Default::default() };
        s.labels = labels_of(MetricSetType::PodContainer, ns, pod, Some(c));
        s.set("memory/usage", MetricValue::Int(GIB));
        s
    }

    fn web_pod() -> PodMeta {
        PodMeta::new("shop", "web-1", "uid-web-1")
            .label("tier", "front")
            .label("app", "web")
            .label("pod-template-hash", "7c9d")
            .on_node("n1")
            .container(
                ContainerMeta::new("nginx", "nginx:1.25")
                    .cpu(Some(250), Some(500))
                    .memory(Some(GIB / 4), Some(GIB / 2))
                    .ephemeral(Some(100), None)
                    .restarts(3),
            )
            .container(ContainerMeta::new("sidecar", "envoy:1.30").cpu(Some(100), None).restarts(0))
    }

    fn enricher(config: PodEnricherConfig) -> PodBasedEnricher {
        PodBasedEnricher::new(StaticMetadata::new().with_pod(web_pod()).shared(), config)
    }

    fn batch(sets: Vec<(String, MetricSet)>) -> DataBatch {
        DataBatch { timestamp: 60_000, sets: sets.into_iter().collect() }
    }

    fn int(set: &MetricSet, name: &str) -> Option<i64> {
        match set.get(name)? {
            MetricValue::Int(v) => Some(v),
            MetricValue::Float(v) => panic!("{name} is a float {v}"),
        }
    }

    #[test]
    fn enriches_pod_and_containers_with_labels_requests_limits_and_restarts() {
        let b = batch(vec![
            (keys::pod_key("shop", "web-1"), pod_set("shop", "web-1")),
            (keys::pod_container_key("shop", "web-1", "nginx"), container_set("shop", "web-1", "nginx")),
            (keys::pod_container_key("shop", "web-1", "sidecar"), container_set("shop", "web-1", "sidecar")),
        ]);
        let out = enricher(PodEnricherConfig::default()).process(b);
        assert_eq!(out.sets.len(), 3, "nothing created when everything was scraped");

        let nginx = &out.sets[&keys::pod_container_key("shop", "web-1", "nginx")];
        assert_eq!(nginx.labels[labels::POD_ID], "uid-web-1");
        assert_eq!(nginx.labels[labels::LABELS], "app:web,pod-template-hash:7c9d,tier:front");
        assert_eq!(nginx.labels[labels::CONTAINER_BASE_IMAGE], "nginx:1.25");
        assert_eq!(int(nginx, "cpu/request"), Some(250));
        assert_eq!(int(nginx, "cpu/limit"), Some(500));
        assert_eq!(int(nginx, "memory/request"), Some(GIB / 4));
        assert_eq!(int(nginx, "memory/limit"), Some(GIB / 2));
        assert_eq!(int(nginx, "ephemeral_storage/request"), Some(100));
        assert_eq!(int(nginx, "ephemeral_storage/limit"), Some(0), "unset limit reads 0, as in Heapster");
        assert_eq!(int(nginx, "restart_count"), Some(3));
        assert_eq!(int(nginx, "memory/usage"), Some(GIB), "source values untouched");

        let sidecar = &out.sets[&keys::pod_container_key("shop", "web-1", "sidecar")];
        assert_eq!(int(sidecar, "cpu/request"), Some(100));
        assert_eq!(int(sidecar, "memory/request"), Some(0));
        assert_eq!(int(sidecar, "restart_count"), Some(0));

        let pod = &out.sets[&keys::pod_key("shop", "web-1")];
        assert_eq!(pod.labels[labels::POD_ID], "uid-web-1");
        assert_eq!(pod.labels[labels::LABELS], "app:web,pod-template-hash:7c9d,tier:front");
        assert!(!pod.labels.contains_key(labels::CONTAINER_BASE_IMAGE));
        assert_eq!(int(pod, "cpu/request"), Some(350));
        assert_eq!(int(pod, "cpu/limit"), Some(500));
        assert_eq!(int(pod, "memory/request"), Some(GIB / 4));
        assert_eq!(int(pod, "memory/limit"), Some(GIB / 2));
        assert_eq!(int(pod, "ephemeral_storage/request"), Some(100));
        assert_eq!(int(pod, "ephemeral_storage/limit"), Some(0));
        assert_eq!(pod.get("cpu/usage_rate"), Some(MetricValue::Float(300.0)));
        assert_eq!(int(pod, "restart_count"), None, "restarts are per container; the pod aggregator sums them");
    }

    #[test]
    fn ignore_and_store_labels() {
        let config = PodEnricherConfig {
            label_separator: ";".into(),
            ignore_labels: vec!["pod-template-hash".into()],
            store_labels: vec!["app".into(), "layer=tier".into()],
        };
        let b = batch(vec![(keys::pod_key("shop", "web-1"), pod_set("shop", "web-1"))]);
        let out = enricher(config).process(b);
        let pod = &out.sets[&keys::pod_key("shop", "web-1")];
        assert_eq!(pod.labels[labels::LABELS], "app:web;tier:front");
        assert_eq!(pod.labels["app"], "web");
        assert_eq!(pod.labels["layer"], "front");
        assert!(!pod.labels.contains_key("tier"));
        let stub = &out.sets[&keys::pod_container_key("shop", "web-1", "nginx")];
        assert_eq!(stub.labels[labels::LABELS], "app:web;tier:front", "stubs get the same labels");
        assert_eq!(stub.labels["layer"], "front");
    }

    #[test]
    fn source_image_label_is_kept() {
        let mut c = container_set("shop", "web-1", "nginx");
        c.labels.insert(labels::CONTAINER_BASE_IMAGE, "nginx@sha256:abc");
        let out = enricher(PodEnricherConfig::default())
            .process(batch(vec![(keys::pod_container_key("shop", "web-1", "nginx"), c)]));
        let c = &out.sets[&keys::pod_container_key("shop", "web-1", "nginx")];
        assert_eq!(c.labels[labels::CONTAINER_BASE_IMAGE], "nginx@sha256:abc");
    }

    #[test]
    fn creates_the_pod_set_and_stub_containers_when_only_a_container_was_scraped() {
        let b =
            batch(vec![(keys::pod_container_key("shop", "web-1", "nginx"), container_set("shop", "web-1", "nginx"))]);
        let out = enricher(PodEnricherConfig::default()).process(b);
        assert_eq!(out.sets.len(), 3);
        let pod = &out.sets[&keys::pod_key("shop", "web-1")];
        assert_eq!(pod.set_type(), Some("pod"));
        assert_eq!(pod.labels[labels::POD_NAME], "web-1");
        assert_eq!(pod.labels[labels::NAMESPACE_NAME], "shop");
        assert_eq!(pod.labels[labels::NODENAME], "n1");
        assert_eq!(pod.labels[labels::POD_ID], "uid-web-1");
        assert_eq!((pod.create_time, pod.scrape_time), (2_000, 60_000));
        assert_eq!(int(pod, "cpu/request"), Some(350));
        assert_eq!(pod.get("memory/usage"), None, "usage is the pod aggregator's job");

        let stub = &out.sets[&keys::pod_container_key("shop", "web-1", "sidecar")];
        assert_eq!(stub.set_type(), Some("pod_container"));
        assert_eq!(stub.labels[labels::CONTAINER_NAME], "sidecar");
        assert_eq!(stub.labels[labels::CONTAINER_BASE_IMAGE], "envoy:1.30");
        assert_eq!(stub.labels[labels::HOSTNAME], "n1");
        assert_eq!(int(stub, "cpu/request"), Some(100));
        assert_eq!(stub.get("memory/usage"), None);
    }

    #[test]
    fn unknown_pods_are_kept_unenriched_and_counted() {
        let e = enricher(PodEnricherConfig::default());
        let counter = e.unenriched_sets();
        let mut e = e;
        let mut nameless = container_set("shop", "x", "c");
        nameless.labels.remove(labels::POD_NAME);
        let mut node = MetricSet::default();
        node.labels.insert(labels::TYPE, "node");
        let b = batch(vec![
            (keys::pod_key("shop", "ghost"), pod_set("shop", "ghost")),
            (keys::pod_container_key("shop", "ghost", "c"), container_set("shop", "ghost", "c")),
            ("nameless".into(), nameless),
            (keys::node_key("n1"), node),
        ]);
        let before = b.clone();
        let out = e.process(b);
        assert_eq!(out, before, "unknown pods pass through unchanged; no pod set or stubs invented");
        assert_eq!(counter.get(), 3, "two ghost sets and the set naming no pod; the node is not a pod");
    }

    #[test]
    fn pods_are_matched_by_name_as_heapster_so_static_pods_are_enriched() {
        // A static pod: the kubelet reports it under its own UID (the mirror pod's config.mirror annotation).
        let mut c = container_set("shop", "web-1", "nginx");
        c.labels.insert(labels::POD_ID, "uid-static-from-kubelet");
        let mut p = pod_set("shop", "web-1");
        p.labels.insert(labels::POD_ID, "uid-static-from-kubelet");
        let e = enricher(PodEnricherConfig::default());
        let counter = e.unenriched_sets();
        let mut e = e;
        let out = e.process(batch(vec![
            (keys::pod_key("shop", "web-1"), p),
            (keys::pod_container_key("shop", "web-1", "nginx"), c),
        ]));
        let pod = &out.sets[&keys::pod_key("shop", "web-1")];
        assert_eq!(pod.labels[labels::POD_ID], "uid-web-1", "the API object's UID, as Heapster wrote");
        assert!(pod.get("cpu/request").is_some(), "requests of the spec: {:?}", pod.metrics);
        let nginx = &out.sets[&keys::pod_container_key("shop", "web-1", "nginx")];
        assert_eq!(nginx.labels[labels::POD_ID], "uid-web-1");
        assert!(nginx.labels.get(labels::LABELS).is_some());
        assert_eq!(counter.get(), 0);
    }

    #[test]
    fn labels_are_empty_for_a_pod_without_labels() {
        let md = StaticMetadata::new().with_pod(PodMeta::new("ns", "p", "u").container(ContainerMeta::new("c", "i")));
        let mut e = PodBasedEnricher::new(md.shared(), PodEnricherConfig::default());
        let out = e.process(batch(vec![(keys::pod_container_key("ns", "p", "c"), container_set("ns", "p", "c"))]));
        assert_eq!(out.sets[&keys::pod_container_key("ns", "p", "c")].labels[labels::LABELS], "");
        assert_eq!(out.sets[&keys::pod_key("ns", "p")].labels[labels::LABELS], "");
    }

    /// Metadata that a test can change between rounds, as discovery does.
    struct Changing(std::sync::RwLock<StaticMetadata>);

    impl ClusterMetadata for Changing {
        fn pod(&self, namespace: &str, name: &str) -> Option<Arc<PodMeta>> {
            self.0.read().unwrap().pod(namespace, name)
        }
        fn namespace(&self, name: &str) -> Option<Arc<crate::metadata::NamespaceMeta>> {
            self.0.read().unwrap().namespace(name)
        }
        fn node(&self, name: &str) -> Option<Arc<crate::metadata::NodeMeta>> {
            self.0.read().unwrap().node(name)
        }
        fn pods_on_node(&self, node: &str) -> Vec<Arc<PodMeta>> {
            self.0.read().unwrap().pods_on_node(node)
        }
    }

    /// The `labels` value is kept from round to round for the same metadata, and made afresh when the pod's
    /// metadata is replaced (its labels changed).
    #[test]
    fn relabelled_pods_get_their_new_labels_next_round() {
        let md = Arc::new(Changing(std::sync::RwLock::new(StaticMetadata::new().with_pod(web_pod()))));
        let mut e = PodBasedEnricher::new(md.clone(), PodEnricherConfig::default());
        let key = keys::pod_container_key("shop", "web-1", "nginx");
        let round = |e: &mut PodBasedEnricher| {
            let out = e.process(batch(vec![(key.clone(), container_set("shop", "web-1", "nginx"))]));
            out.sets[&key].labels[labels::LABELS].clone()
        };
        assert_eq!(round(&mut e), "app:web,pod-template-hash:7c9d,tier:front");
        assert_eq!(round(&mut e), "app:web,pod-template-hash:7c9d,tier:front");
        md.0.write().unwrap().insert_pod(web_pod().label("tier", "back"));
        assert_eq!(round(&mut e), "app:web,pod-template-hash:7c9d,tier:back");
        md.0.write().unwrap().insert_pod(PodMeta { labels: Default::default(), ..web_pod() });
        assert_eq!(round(&mut e), "");
    }

    /// Sets are matched to pods by their labels, whatever their keys: sets of two pods in alternation are each
    /// enriched with their own pod, and a container set under a key other than its own does not stand in for
    /// the stub its spec container gets under its own key.
    #[test]
    fn alternating_pods_and_keys_that_are_not_their_own() {
        let db = PodMeta::new("shop", "db", "uid-db").label("app", "db").container(ContainerMeta::new("pg", "pg:16"));
        let md = StaticMetadata::new().with_pod(web_pod()).with_pod(db);
        let mut e = PodBasedEnricher::new(md.shared(), PodEnricherConfig::default());
        let out = e.process(batch(vec![
            ("a".into(), container_set("shop", "web-1", "nginx")),
            ("b".into(), container_set("shop", "db", "pg")),
            ("c".into(), container_set("shop", "web-1", "sidecar")),
            (keys::pod_container_key("shop", "db", "pg"), container_set("shop", "db", "pg")),
        ]));
        for (k, pod) in [("a", "web-1"), ("b", "db"), ("c", "web-1")] {
            let want = if pod == "db" { "app:db" } else { "app:web,pod-template-hash:7c9d,tier:front" };
            assert_eq!(out.sets[k].labels[labels::LABELS], want, "{k}");
        }
        assert_eq!(int(&out.sets["c"], "cpu/request"), Some(100));
        // web-1's containers were only under other keys: stubs under their own, and a pod set placed by "a".
        for c in ["nginx", "sidecar"] {
            let stub = &out.sets[&keys::pod_container_key("shop", "web-1", c)];
            assert_eq!(stub.get("memory/usage"), None, "{c} is a stub");
        }
        assert_eq!(out.sets[&keys::pod_key("shop", "web-1")].labels[labels::POD_ID], "uid-web-1");
        // db's container was also under its own key: no stub replaces it.
        assert_eq!(int(&out.sets[&keys::pod_container_key("shop", "db", "pg")], "memory/usage"), Some(GIB));
        assert_eq!(out.sets.len(), 4 + 2 + 2, "four scraped, two stubs, two pod sets");
    }
}
