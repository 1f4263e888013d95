//! The provider against the simulated cluster (plain http) when nodes misbehave: issue 3's "a node that vanishes
//! mid-scrape" and "a kubelet that never answers", seen from the source side. (That the scrape loop's round
//! deadline cuts a kubelet that never answers is tested in heapster's pipeline.)

use super::*;
use crate::self_metrics::KubeletCauseLabels;
use heapster_model::SpecUri;
use heapster_sim::{SimConfig, Simulation};
use std::time::Duration;

async fn provider(sim: &Simulation, extra: &str) -> KubernetesProvider {
    let spec = format!(
        "kubernetes.summary_api:{}?inClusterConfig=false&kubeletPort={}&kubeletPreferredAddressTypes=InternalIP{extra}",
        sim.api_url(),
        sim.nodes[0].addr.port()
    );
    let uri: SpecUri = spec.parse().unwrap();
    let cluster = Cluster::connect(KubernetesOptions::parse(&uri).unwrap()).await.unwrap();
    let p = KubernetesProvider::start(&cluster, SourceMetrics::default()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), p.ready()).await.expect("a node list within 10s");
    p
}

fn names(sources: &[Arc<dyn MetricsSource>]) -> Vec<String> {
    let mut n: Vec<String> = sources.iter().map(|s| s.name()).collect();
    n.sort();
    n
}

fn connect_errors(p: &KubernetesProvider) -> u64 {
    p.metrics.kubelet_scrape_errors.get_or_create(&KubeletCauseLabels { cause: "connect".into() }).get()
}

/// A node deleted while heapster runs: a scrape of it that was already planned fails with cause `connect`
/// (counted), the other nodes' scrapes are unaffected, and once the API server's DELETED event arrives the node is
/// no longer among the sources, so it is not scraped (nor logged about) again.
#[tokio::test]
async fn a_node_that_vanishes_fails_its_scrape_then_leaves_the_source_list() {
    let sim = Simulation::start(SimConfig { nodes: 4, pods_per_node: 2, ..Default::default() }).await.unwrap();
    let p = provider(&sim, "").await;
    let round = p.sources();
    assert_eq!(names(&round), ["kubelet:sim-node-0", "kubelet:sim-node-1", "kubelet:sim-node-2", "kubelet:sim-node-3"]);

    // Mid-run: the round's sources are planned, then node 1 vanishes before its scrape.
    let before = connect_errors(&p);
    sim.delete_node(1);
    for s in &round {
        let result = s.scrape(1).await;
        if s.name() == "kubelet:sim-node-1" {
            let e = result.expect_err("the vanished node gives no batch");
            assert!(e.to_string().contains("sim-node-1"), "the error names the node: {e}");
        } else {
            let batch = result.unwrap_or_else(|e| panic!("{}: {e}", s.name()));
            assert_eq!(batch.sets.keys().filter(|k| k.contains("/pod:") && !k.contains("/container:")).count(), 2);
        }
    }
    assert!(connect_errors(&p) > before, "counted under cause=connect");

    // The DELETED event (the simulated API server diffs once a second) takes it out of the list.
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    let next = loop {
        let sources = p.sources();
        if sources.len() == 3 {
            break sources;
        }
        assert!(tokio::time::Instant::now() < until, "still listed: {:?}", names(&sources));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(names(&next), ["kubelet:sim-node-0", "kubelet:sim-node-2", "kubelet:sim-node-3"]);
    for s in &next {
        assert!(s.scrape(2).await.is_ok(), "{}", s.name());
    }
    // Its pods went from the metadata too.
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while p.metadata.pod_count() != 6 {
        assert!(tokio::time::Instant::now() < until, "pods known: {}", p.metadata.pod_count());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A kubelet whose node is still listed but whose process is gone: scraped (the API server still says Ready),
/// failing fast with cause `connect` every round, while the others answer.
#[tokio::test]
async fn a_dead_kubelet_on_a_listed_node_fails_fast_with_connect() {
    let sim = Simulation::start(SimConfig { nodes: 3, pods_per_node: 1, ..Default::default() }).await.unwrap();
    let p = provider(&sim, "&kubeletTimeout=1h").await;
    sim.stop_kubelet(0);
    for _ in 0..2 {
        let sources = p.sources();
        assert_eq!(sources.len(), 3);
        for s in &sources {
            // With a 1 h client timeout, only a refused connection ends this quickly; a hang fails here.
            let result = tokio::time::timeout(Duration::from_secs(30), s.scrape(1)).await.expect("no hang");
            assert_eq!(result.is_err(), s.name() == "kubelet:sim-node-0", "{}", s.name());
        }
    }
}

/// Kept kubelet connections are bounded (`ClientConfig::max_kept`, from the open-file limit): the first nodes by
/// name keep theirs between rounds, the rest ask for `Connection: close` and connect afresh each round; all are
/// scraped alike.
#[tokio::test]
async fn only_the_kept_connection_budget_of_kubelets_keep_their_connections() {
    let sim = Simulation::start(SimConfig { nodes: 4, pods_per_node: 1, ..Default::default() }).await.unwrap();
    let spec = format!(
        "kubernetes.summary_api:{}?inClusterConfig=false&kubeletPort={}&kubeletPreferredAddressTypes=InternalIP",
        sim.api_url(),
        sim.nodes[0].addr.port()
    );
    let mut cluster =
        Cluster::connect(KubernetesOptions::parse(&spec.parse::<SpecUri>().unwrap()).unwrap()).await.unwrap();
    assert!(cluster.kubelet.keep_alive && cluster.kubelet.max_kept > 4, "{:?}", cluster.kubelet);
    cluster.kubelet.max_kept = 2;
    let p = KubernetesProvider::start(&cluster, SourceMetrics::default()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), p.ready()).await.expect("a node list within 10s");
    for round in 0..3 {
        let sources = p.sources();
        assert_eq!(sources.len(), 4);
        for s in sources {
            s.scrape(0).await.unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
    }
    let used: Vec<usize> = (0..4).map(|i| sim.connections_used(i)).collect();
    assert_eq!(used, [1, 1, 3, 3], "connections per node over 3 rounds (nodes 0 and 1 first by name)");
}
