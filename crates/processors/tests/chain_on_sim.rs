//! The Kubernetes chain on the simulator's sets, converted by the kubelet source as in heapster.

#[path = "../benches/support/sim_cluster.rs"]
mod sim_cluster;

use chrono::{DateTime, Duration, Utc};
use heapster_model::{DataBatch, MetricSet, MetricSetType, MetricValue, labels};
use heapster_processors::{
    ClusterAggregator, ClusterFrom, DataProcessor, NamespaceAggregator, NamespaceBasedEnricher, NodeAggregator,
    NodeAutoscalingConfig, NodeAutoscalingEnricher, PodAggregator, PodBasedEnricher, PodEnricherConfig, RateCalculator,
    kubernetes_chain, kubernetes_chain_with, per_source,
};
use heapster_sim::kubelet::{NodeSpec, Template};
use std::collections::HashMap;

/// The kubelet source makes each set with room for what the processors add to it (rates, requests and limits,
/// sums; `labels`, `namespace_id`, `container_base_image`), so that no processor grows a set's metrics or labels
/// vector again: each growth was a reallocation and a copy, for every set of every round.
#[test]
fn the_chain_adds_to_simulated_sets_within_the_room_they_were_made_with() {
    let template = Template::builtin();
    let epoch = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
    let specs: Vec<NodeSpec> =
        (0..3).map(|i| NodeSpec { name: format!("node-{i}"), index: i, pods: 10, epoch, churn: None }).collect();
    let metadata = sim_cluster::metadata(&template, &specs, epoch).shared();
    let mut chain = kubernetes_chain(metadata, PodEnricherConfig::default(), NodeAutoscalingConfig::default());
    let mut run = |b: DataBatch| chain.iter_mut().fold(b, |b, p| p.process(b));
    let at = |r: i64| epoch + Duration::seconds(600 + 15 * r);
    // The first round has no rates yet.
    run(sim_cluster::batch(&template, &specs, at(0)));

    let batch = sim_cluster::batch(&template, &specs, at(1));
    let before: HashMap<String, (usize, usize, usize)> = batch
        .sets
        .iter()
        .map(|(k, s)| (k.clone(), (s.metrics.len(), s.metrics.capacity(), s.labels.capacity())))
        .collect();
    let out = run(batch);
    let mut checked = HashMap::<&str, usize>::new();
    for (key, set) in &out.sets {
        let Some(&(len, capacity, label_capacity)) = before.get(key) else { continue };
        let kind = set.kind.expect("the kubelet source sets the kind");
        assert!(set.metrics.len() > len, "{key}: the chain added nothing, so this checks nothing");
        assert!(
            set.metrics.len() <= capacity,
            "{key} ({kind:?}): made with room for {capacity} metrics, {len} from the kubelet, {} after the chain",
            set.metrics.len()
        );
        assert!(
            set.labels.len() <= label_capacity,
            "{key} ({kind:?}): made with room for {label_capacity} labels, {} after the chain: {:?}",
            set.labels.len(),
            set.labels
        );
        *checked.entry(kind.as_str()).or_default() += 1;
    }
    for kind in [MetricSetType::PodContainer, MetricSetType::Pod, MetricSetType::Node, MetricSetType::SysContainer] {
        assert!(checked.get(kind.as_str()).is_some_and(|n| *n > 0), "no {kind:?} set checked: {checked:?}");
    }
}

/// heapster runs the chain's first seven processors in each node's scrape, on that node's sets alone, with the node
/// aggregator and the node autoscaling enricher moved before the namespace and cluster aggregators (see
/// `per_source`), and adds up the nodes' namespace sums as it gathers their sets. Over rounds with pods replaced,
/// pods the metadata does not know yet, pods whose own set or one of whose containers the kubelet left out (the
/// enricher makes a pod set and a stub container set), and a node missing from one round, every batch and every
/// count of unenriched sets must equal what Heapster's order gives on
/// the whole batch.
#[test]
fn per_node_processing_gives_the_batches_of_heapsters_order_on_the_whole_batch() {
    per_node_processing_matches_heapsters_order(ClusterFrom::Namespaces);
    per_node_processing_matches_heapsters_order(ClusterFrom::Nodes);
}

fn per_node_processing_matches_heapsters_order(cluster: ClusterFrom) {
    let template = Template::builtin();
    let epoch = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
    // Pods are replaced every 2 minutes; the metadata knows only the first ones, then the ones of round 4.
    let churn = Some(std::time::Duration::from_secs(120));
    let specs: Vec<NodeSpec> =
        (0..4).map(|i| NodeSpec { name: format!("node-{i}"), index: i, pods: 12, epoch, churn }).collect();
    let at = |r: i64| epoch + Duration::seconds(15 * r);
    let mut metadata = sim_cluster::metadata(&template, &specs, epoch);
    let later = sim_cluster::metadata(&template, &specs, at(4));
    let config = PodEnricherConfig::default();
    let shared = |md: &heapster_processors::StaticMetadata| md.clone().shared();

    // Each side's metadata is replaced by the same new view at round 4, through a shared handle.
    let view = std::sync::Arc::new(std::sync::RwLock::new(shared(&metadata)));
    let md: std::sync::Arc<dyn heapster_processors::ClusterMetadata> = std::sync::Arc::new(Swappable(view.clone()));
    let mut heapster: Vec<Box<dyn DataProcessor>> = vec![
        Box::new(RateCalculator::new()),
        Box::new(PodBasedEnricher::new(md.clone(), config.clone())),
        Box::new(NamespaceBasedEnricher::new(md.clone())),
        Box::new(PodAggregator::new()),
        Box::new(NamespaceAggregator::default()),
        Box::new(NodeAggregator::default()),
        Box::new(ClusterAggregator::new(cluster)),
        Box::new(NodeAutoscalingEnricher::new(md.clone(), &config, NodeAutoscalingConfig::default())),
    ];
    let heapster_counters: Vec<_> = heapster.iter().flat_map(|p| p.counters()).collect();
    let chain = kubernetes_chain_with(md.clone(), config.clone(), NodeAutoscalingConfig::default(), cluster);
    let split_counters: Vec<_> = chain.iter().flat_map(|p| p.counters()).collect();
    // Each node's sets as the kubelet source gives them, less the first pod's own set and the second pod's first
    // container: a kubelet before 1.9 sent no pod sets, and a waiting container has none.
    let node_batch = |spec: &NodeSpec, r: i64| {
        let mut b = sim_cluster::batch(&template, std::slice::from_ref(spec), at(r));
        let pods: Vec<String> =
            b.sets.iter().filter(|(_, s)| s.kind == Some(MetricSetType::Pod)).map(|(k, _)| k.clone()).collect();
        let container = b.sets.keys().find(|k| k.starts_with(&format!("{}/container:", pods[1]))).cloned();
        let removed = [pods[0].clone(), container.expect("the second pod has a container")];
        for key in &removed {
            b.sets.remove(key);
        }
        (b, removed)
    };
    let mut made = [0, 0];
    let (per_node, mut rest) = per_source::split(chain);
    assert_eq!(per_node.names().len(), 7, "{:?}", per_node.names());
    // So with no sink, heapster stores each node's pods and containers from its scrape.
    assert!(
        rest.iter().all(|p| !p.needs_container_sets() && !p.needs_pod_sets()),
        "the cluster aggregator reads neither"
    );

    let (mut rates, mut enriched, mut unenriched, mut namespaces) = (0, 0, 0, 0);
    for r in 0..10 {
        if r == 4 {
            metadata = later.clone();
            *view.write().unwrap() = shared(&metadata);
        }
        // node-2 gives nothing in round 6, as a kubelet that timed out.
        let nodes: Vec<&NodeSpec> = specs.iter().filter(|s| !(r == 6 && s.index == 2)).collect();
        let whole = {
            let mut b = DataBatch { timestamp: at(r).timestamp_millis(), ..Default::default() };
            let mut removed = Vec::new();
            for spec in &nodes {
                let (one, left_out) = node_batch(spec, r);
                b.sets.extend(one.sets);
                removed.push(left_out);
            }
            let b = heapster.iter_mut().fold(b, |b, p| p.process(b));
            for [pod, container] in &removed {
                made[0] += usize::from(b.sets.contains_key(pod));
                made[1] += usize::from(b.sets.contains_key(container));
            }
            b
        };
        let split = {
            let mut sets = Vec::new();
            let mut kept = HashMap::new();
            for spec in &nodes {
                let mut chain = per_node.take(&spec.name).expect("per-node processors");
                let one = per_node.run(&mut chain, node_batch(spec, r).0);
                sets.extend(one.sets);
                kept.insert(spec.name.clone(), chain);
            }
            per_node.keep(kept);
            let b = DataBatch { timestamp: at(r).timestamp_millis(), sets: per_node.gather(sets) };
            rest.iter_mut().fold(b, |b, p| p.process(b))
        };
        assert_eq!(whole.sets.len(), split.sets.len(), "round {r}");
        for ((k1, s1), (k2, s2)) in whole.sets.iter().zip(&split.sets) {
            assert_eq!(k1, k2, "round {r}");
            if s1
                .set_type()
                .is_some_and(|t| [MetricSetType::Namespace.as_str(), MetricSetType::Cluster.as_str()].contains(&t))
            {
                assert_same_sums(s1, s2, &format!("round {r}: {k1}"));
            } else {
                assert_eq!(s1, s2, "round {r}: {k1}");
            }
        }
        for set in whole.sets.values() {
            rates += usize::from(set.get("cpu/usage_rate").is_some());
            enriched += usize::from(set.labels.contains_key(labels::NAMESPACE_ID));
            namespaces += usize::from(set.set_type() == Some(MetricSetType::Namespace.as_str()));
            let pod_level = [MetricSetType::Pod.as_str(), MetricSetType::PodContainer.as_str()];
            unenriched += usize::from(
                set.set_type().is_some_and(|t| pod_level.contains(&t)) && !set.labels.contains_key(labels::LABELS),
            );
        }
    }
    let counts =
        |c: &[(&'static str, heapster_processors::Counter)]| c.iter().map(|(n, c)| (*n, c.get())).collect::<Vec<_>>();
    assert_eq!(counts(&heapster_counters), counts(&split_counters), "unenriched sets counted alike");
    assert!(heapster_counters.iter().any(|(_, c)| c.get() > 0), "no set was left unenriched: this checks nothing");
    assert!(made.iter().all(|&n| n > 0), "pod sets and stub container sets made by the chain: {made:?}");
    // What the comparison covered: rates, enrichment, pods unknown to the metadata, namespace roll-ups.
    assert!(
        rates > 500 && enriched > 1000 && unenriched > 10 && namespaces > 10,
        "{rates} {enriched} {unenriched} {namespaces}"
    );
}

/// `got` is `want` but for the order in which their fractional sums were added: each node's pods are summed
/// first, then the nodes' sums, where the whole batch adds pod after pod. (Heapster added them in Go's map order,
/// which changes from run to run.)
fn assert_same_sums(want: &MetricSet, got: &MetricSet, what: &str) {
    assert_eq!((&want.labels, want.create_time, want.scrape_time), (&got.labels, got.create_time, got.scrape_time));
    let names = |s: &MetricSet| s.metrics.keys().map(|k| k.to_string()).collect::<Vec<_>>();
    assert_eq!(names(want), names(got), "{what}");
    for ((name, &w), (_, &g)) in want.metrics.iter().zip(got.metrics.iter()) {
        match (w, g) {
            (MetricValue::Float(w), MetricValue::Float(g)) => {
                assert!((w - g).abs() <= 1e-12 * w.abs().max(g.abs()), "{what}: {name} {w} != {g}")
            }
            _ => assert_eq!(w, g, "{what}: {name}"),
        }
    }
}

/// Metadata whose view a test can replace, as the API server watch replaces heapster's.
struct Swappable(std::sync::Arc<std::sync::RwLock<std::sync::Arc<dyn heapster_processors::ClusterMetadata>>>);

impl heapster_processors::ClusterMetadata for Swappable {
    fn pod(&self, namespace: &str, name: &str) -> Option<std::sync::Arc<heapster_processors::PodMeta>> {
        self.0.read().unwrap().pod(namespace, name)
    }
    fn namespace(&self, name: &str) -> Option<std::sync::Arc<heapster_processors::NamespaceMeta>> {
        self.0.read().unwrap().namespace(name)
    }
    fn node(&self, name: &str) -> Option<std::sync::Arc<heapster_processors::NodeMeta>> {
        self.0.read().unwrap().node(name)
    }
    fn pods_on_node(&self, node: &str) -> Vec<std::sync::Arc<heapster_processors::PodMeta>> {
        self.0.read().unwrap().pods_on_node(node)
    }
}
