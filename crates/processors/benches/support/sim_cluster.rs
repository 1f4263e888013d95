//! A simulated cluster's batches and metadata, built as heapster builds them, for the chain bench and the tests
//! that check the chain on realistic sets.

use chrono::{DateTime, Utc};
use heapster_model::DataBatch;
use heapster_processors::metadata::{ContainerMeta, NodeMeta, PodMeta, StaticMetadata};
use heapster_sim::kubelet::{NodeSpec, Template, render};

/// What the simulator's API server lists for these nodes (see `heapster_sim::apiserver`): every pod with the
/// labels `app` and `sim`, requests and limits on each container; every node with capacity and allocatable.
pub fn metadata(template: &Template, specs: &[NodeSpec], now: DateTime<Utc>) -> StaticMetadata {
    const MI: i64 = 1 << 20;
    const GI: i64 = 1 << 30;
    let mut md = StaticMetadata::new();
    for spec in specs {
        md.insert_node(
            NodeMeta::new(&spec.name, 4000, 16 * GI)
                .allocatable(3800, 15 * GI)
                .ephemeral(100 * GI, 90 * GI)
                .label("kubernetes.io/hostname", &spec.name)
                .label("kubernetes.io/os", "linux"),
        );
        for pod in spec.pods(template, now) {
            let app = pod.name.split('-').next().unwrap_or("app").to_owned();
            let mut meta = PodMeta::new(&pod.namespace, &pod.name, &pod.uid)
                .label("app", app)
                .label("sim", "true")
                .on_node(&spec.name);
            for c in &pod.containers {
                meta = meta.container(
                    ContainerMeta::new(c, format!("registry.invalid/{c}:1.0"))
                        .cpu(Some(100), Some(500))
                        .memory(Some(64 * MI), Some(256 * MI))
                        .restarts(0),
                );
            }
            md = md.with_namespace(&pod.namespace, format!("ns-uid-{}", pod.namespace));
            md.insert_pod(meta);
        }
    }
    md
}

/// One round's batch: every node's Summary at `now`, converted as the kubelet source does.
pub fn batch(template: &Template, specs: &[NodeSpec], now: DateTime<Utc>) -> DataBatch {
    let ts = now.timestamp_millis();
    let mut b = DataBatch { timestamp: ts, ..Default::default() };
    for spec in specs {
        let body = render(template, spec, now);
        let summary = heapster_sources::kubelet::decode(body.as_bytes()).expect("the simulator's Summary decodes");
        b.sets.extend(heapster_sources::kubelet::summary_to_sets(&summary, &spec.name, None, ts));
    }
    b
}
