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
//! Deviations from Heapster:
//! - When the set's `pod_id` (the kubelet's UID) differs from the known pod's UID, the metadata describes another
//!   pod of the same name (deleted and re-created, e.g. a StatefulSet pod); the set is left unenriched and counted
//!   rather than given the other pod's labels and requests.
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
use heapster_model::{DataBatch, Labels, MetricSet, MetricValue};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Request and limit metrics, in the order they are set: the same six the node aggregator sums.
const RESOURCE_METRICS: &[&str] = crate::node_aggregator::DEFAULT_METRICS;

/// A container's requests and limits in [`RESOURCE_METRICS`] order; unset ones are 0.
fn resources(c: &ContainerMeta) -> [i64; 6] {
    [c.cpu_request_millis, c.cpu_limit_millis, c.memory_request, c.memory_limit, c.ephemeral_request, c.ephemeral_limit]
        .map(|v| v.unwrap_or(0))
}

/// Labels a created pod or container set copies from its sibling.
const PLACEMENT_LABELS: [&str; 3] = [labels::NODENAME, labels::HOSTNAME, labels::HOST_ID];

/// See the module docs.
pub struct PodBasedEnricher {
    metadata: Arc<dyn ClusterMetadata>,
    copier: LabelCopier,
    unenriched: Counter,
}

impl PodBasedEnricher {
    /// Reads pods from `metadata`; `config` is the `--label_separator`, `--ignore_label`, `--store_label` flags.
    pub fn new(metadata: Arc<dyn ClusterMetadata>, config: PodEnricherConfig) -> Self {
        PodBasedEnricher { metadata, copier: LabelCopier::new(&config), unenriched: Counter::default() }
    }

    /// Pod and container sets left unenriched so far because their pod was unknown, had another UID, or the set
    /// named no pod.
    pub fn unenriched_sets(&self) -> Counter {
        self.unenriched.clone()
    }

    fn enrich_common(&self, set: &mut MetricSet, pod: &PodMeta) {
        set.labels.insert(labels::POD_ID.to_owned(), pod.uid.clone());
        self.copier.copy(&pod.labels, &mut set.labels);
    }

    fn enrich_container(&self, set: &mut MetricSet, pod: &PodMeta) {
        self.enrich_common(set, pod);
        let Some(name) = set.labels.get(labels::CONTAINER_NAME) else { return };
        let Some(c) = pod.find_container(name) else { return };
        set_container_meta(set, c);
    }

    fn enrich_pod(&self, set: &mut MetricSet, pod: &PodMeta) {
        self.enrich_common(set, pod);
        let mut sums = [0i64; 6];
        for c in &pod.containers {
            for (sum, v) in sums.iter_mut().zip(resources(c)) {
                *sum = sum.saturating_add(v);
            }
        }
        for (name, v) in RESOURCE_METRICS.iter().copied().zip(sums) {
            set.set(name, MetricValue::Int(v));
        }
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
        self.enrich_pod(&mut set, pod);
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
        set.labels.insert(labels::CONTAINER_NAME.to_owned(), c.name.clone());
        copy_placement(&pod_set.labels, &mut set.labels, pod);
        self.enrich_common(&mut set, pod);
        set_container_meta(&mut set, c);
        set
    }
}

/// `type`, namespace and pod name labels of a created set.
fn identity_labels(kind: MetricSetType, pod: &PodMeta) -> Labels {
    Labels::from([
        (labels::TYPE.to_owned(), kind.as_str().to_owned()),
        (labels::NAMESPACE_NAME.to_owned(), pod.namespace.clone()),
        (labels::POD_NAMESPACE.to_owned(), pod.namespace.clone()),
        (labels::POD_NAME.to_owned(), pod.name.clone()),
    ])
}

fn copy_placement(from: &Labels, to: &mut Labels, pod: &PodMeta) {
    for key in PLACEMENT_LABELS {
        if let Some(v) = from.get(key) {
            to.insert(key.to_owned(), v.clone());
        }
    }
    if !to.contains_key(labels::NODENAME) && !pod.node_name.is_empty() {
        to.insert(labels::NODENAME.to_owned(), pod.node_name.clone());
    }
}

fn set_container_meta(set: &mut MetricSet, c: &ContainerMeta) {
    for (name, v) in RESOURCE_METRICS.iter().copied().zip(resources(c)) {
        set.set(name, MetricValue::Int(v));
    }
    if let Some(n) = c.restart_count {
        set.set("restart_count", MetricValue::Int(n));
    }
    if !c.image.is_empty() {
        set.labels.entry(labels::CONTAINER_BASE_IMAGE.to_owned()).or_insert_with(|| c.image.clone());
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

    fn counters(&self) -> Vec<(&'static str, Counter)> {
        vec![(crate::UNENRICHED_SETS, self.unenriched.clone())]
    }

    fn process(&mut self, mut batch: DataBatch) -> DataBatch {
        // Pods seen this round, by pod key: their metadata and, for pods seen only through containers, the key of
        // one of their container sets (the first in key order) to place a created pod set.
        let mut seen: BTreeMap<String, (Arc<PodMeta>, Option<String>)> = BTreeMap::new();
        let mut unenriched = 0u64;
        for (key, set) in batch.sets.iter_mut() {
            let Some((kind, named)) = pod_ref(set) else { continue };
            let Some((ns, name)) = named else {
                unenriched += 1;
                continue;
            };
            let Some(pod) = self.metadata.pod(ns, name) else {
                tracing::debug!(set = %key, "pod unknown to metadata: left unenriched");
                unenriched += 1;
                continue;
            };
            if set.labels.get(labels::POD_ID).is_some_and(|uid| !uid.is_empty() && *uid != pod.uid) {
                tracing::debug!(set = %key, uid = %pod.uid, "pod known under another UID: left unenriched");
                unenriched += 1;
                continue;
            }
            match kind {
                MetricSetType::Pod => self.enrich_pod(set, &pod),
                _ => self.enrich_container(set, &pod),
            }
            let container_key = (kind == MetricSetType::PodContainer).then(|| key.clone());
            seen.entry(keys::pod_key(&pod.namespace, &pod.name))
                .and_modify(|(_, k)| {
                    if k.is_none() {
                        *k = container_key.clone();
                    }
                })
                .or_insert((pod, container_key));
        }
        self.unenriched.add(unenriched);

        for (pod_key, (pod, container_key)) in seen {
            if !batch.sets.contains_key(&pod_key) {
                let Some(container) = container_key.and_then(|k| batch.sets.get(&k)) else { continue };
                tracing::debug!(pod = %pod_key, "no pod set: creating one from its containers");
                let pod_set = self.new_pod_set(&pod, container);
                batch.sets.insert(pod_key.clone(), pod_set);
            }
            let mut stubs = Vec::new();
            let pod_set = &batch.sets[&pod_key];
            for c in &pod.containers {
                let key = keys::pod_container_key(&pod.namespace, &pod.name, &c.name);
                if !batch.sets.contains_key(&key) {
                    stubs.push((key, self.stub_container_set(&pod, c, pod_set)));
                }
            }
            batch.sets.extend(stubs);
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::StaticMetadata;

    const GIB: i64 = 1 << 30;

    fn labels_of(kind: MetricSetType, ns: &str, pod: &str, container: Option<&str>) -> Labels {
        let mut l = Labels::from([
            (labels::TYPE.to_owned(), kind.as_str().to_owned()),
            (labels::NAMESPACE_NAME.to_owned(), ns.to_owned()),
            (labels::POD_NAMESPACE.to_owned(), ns.to_owned()),
            (labels::POD_NAME.to_owned(), pod.to_owned()),
            (labels::NODENAME.to_owned(), "n1".to_owned()),
            (labels::HOSTNAME.to_owned(), "n1".to_owned()),
        ]);
        if let Some(c) = container {
            l.insert(labels::CONTAINER_NAME.to_owned(), c.to_owned());
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
        c.labels.insert(labels::CONTAINER_BASE_IMAGE.into(), "nginx@sha256:abc".into());
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
        node.labels.insert(labels::TYPE.into(), "node".into());
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
    fn a_pod_recreated_under_the_same_name_is_not_enriched_with_the_old_one() {
        let mut p = pod_set("shop", "web-1");
        p.labels.insert(labels::POD_ID.into(), "uid-new".into());
        let e = enricher(PodEnricherConfig::default());
        let counter = e.unenriched_sets();
        let mut e = e;
        let out = e.process(batch(vec![(keys::pod_key("shop", "web-1"), p)]));
        let pod = &out.sets[&keys::pod_key("shop", "web-1")];
        assert_eq!(pod.labels[labels::POD_ID], "uid-new");
        assert_eq!(pod.get("cpu/request"), None);
        assert_eq!(out.sets.len(), 1, "no stubs for a pod we could not match");
        assert_eq!(counter.get(), 1);
    }

    #[test]
    fn labels_are_empty_for_a_pod_without_labels() {
        let md = StaticMetadata::new().with_pod(PodMeta::new("ns", "p", "u").container(ContainerMeta::new("c", "i")));
        let mut e = PodBasedEnricher::new(md.shared(), PodEnricherConfig::default());
        let out = e.process(batch(vec![(keys::pod_container_key("ns", "p", "c"), container_set("ns", "p", "c"))]));
        assert_eq!(out.sets[&keys::pod_container_key("ns", "p", "c")].labels[labels::LABELS], "");
        assert_eq!(out.sets[&keys::pod_key("ns", "p")].labels[labels::LABELS], "");
    }
}
