//! The Kubernetes chain on the simulator's sets, converted by the kubelet source as in heapster.

#[path = "../benches/support/sim_cluster.rs"]
mod sim_cluster;

use chrono::{DateTime, Duration, Utc};
use heapster_model::{DataBatch, MetricSetType};
use heapster_processors::{NodeAutoscalingConfig, PodEnricherConfig, kubernetes_chain};
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
