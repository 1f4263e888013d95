//! Adds `namespace_id` (the namespace's UID) to container, pod and namespace sets, as Heapster 1.6's
//! `namespace_based_enricher.go`. A namespace unknown to metadata leaves the set as it is; such sets are counted.

use crate::metadata::{ClusterMetadata, NamespaceMeta};
use crate::{Counter, DataProcessor};
use heapster_model::keys::MetricSetType;
use heapster_model::labels;
use heapster_model::{DataBatch, MetricSet};
use std::sync::Arc;

/// See the module docs.
pub struct NamespaceBasedEnricher {
    metadata: Arc<dyn ClusterMetadata>,
    unknown: Counter,
}

impl NamespaceBasedEnricher {
    /// Reads namespaces from `metadata`.
    pub fn new(metadata: Arc<dyn ClusterMetadata>) -> Self {
        NamespaceBasedEnricher { metadata, unknown: Counter::default() }
    }

    /// Namespaced sets left without `namespace_id` so far because their namespace was unknown.
    pub fn unenriched_sets(&self) -> Counter {
        self.unknown.clone()
    }
}

fn is_namespaced(set: &MetricSet) -> bool {
    matches!(set.set_type(), Some(t) if t == MetricSetType::PodContainer.as_str()
        || t == MetricSetType::Pod.as_str()
        || t == MetricSetType::Namespace.as_str())
}

impl DataProcessor for NamespaceBasedEnricher {
    fn name(&self) -> &'static str {
        "namespace_based_enricher"
    }

    /// Each set is enriched from the metadata alone.
    fn for_one_source(&self) -> Option<Box<dyn DataProcessor>> {
        Some(Box::new(NamespaceBasedEnricher { metadata: self.metadata.clone(), unknown: self.unknown.clone() }))
    }

    fn counters(&self) -> Vec<(&'static str, Counter)> {
        vec![(crate::UNENRICHED_SETS, self.unknown.clone())]
    }

    fn process(&mut self, mut batch: DataBatch) -> DataBatch {
        let mut unknown = 0;
        // Sets of one namespace come one after another (keys start with it): the last answer is asked again.
        let mut last: Option<(heapster_model::LabelValue, Option<Arc<NamespaceMeta>>)> = None;
        for (key, set) in batch.sets.iter_mut().filter(|(_, s)| is_namespaced(s)) {
            let Some(name) = set.labels.get(labels::NAMESPACE_NAME) else { continue };
            let ns = match &last {
                Some((n, ns)) if n == name => ns.clone(),
                _ => {
                    let ns = self.metadata.namespace(name);
                    last = Some((name.clone(), ns.clone()));
                    ns
                }
            };
            match ns {
                Some(ns) => {
                    set.labels.insert(labels::NAMESPACE_ID, ns.uid.clone());
                }
                None => {
                    tracing::debug!(set = %key, namespace = %name, "namespace unknown to metadata");
                    unknown += 1;
                }
            }
        }
        self.unknown.add(unknown);
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::StaticMetadata;
    use heapster_model::Labels;

    fn set(kind: &str, ns: &str) -> MetricSet {
        MetricSet {
            labels: Labels::from([(labels::TYPE, kind.to_owned()), (labels::NAMESPACE_NAME, ns.to_owned())]),
            ..Default::default()
        }
    }

    #[test]
    fn sets_namespace_id_on_namespaced_sets_only() {
        let md = StaticMetadata::new().with_namespace("shop", "ns-uid-1");
        let mut e = NamespaceBasedEnricher::new(md.shared());
        let unknown = e.unenriched_sets();
        let mut b = DataBatch::default();
        b.sets.insert("c".into(), set("pod_container", "shop"));
        b.sets.insert("p".into(), set("pod", "shop"));
        b.sets.insert("ns".into(), set("ns", "shop"));
        b.sets.insert("other".into(), set("pod", "gone"));
        b.sets.insert("node".into(), set("node", "shop"));
        let out = e.process(b);
        for k in ["c", "p", "ns"] {
            assert_eq!(out.sets[k].labels[labels::NAMESPACE_ID], "ns-uid-1", "{k}");
        }
        assert!(!out.sets["other"].labels.contains_key(labels::NAMESPACE_ID));
        assert!(!out.sets["node"].labels.contains_key(labels::NAMESPACE_ID));
        assert_eq!(unknown.get(), 1);
    }
}
