//! What sharded replicas write to a shared sink. Two groups of real heapster replicas share one simulated cluster
//! through Leases (each group under its own Lease prefix, so each is a membership of its own) and write through the
//! influxdb sink (its 2.x API) into one real VictoriaMetrics, each group under its own `cluster_name`:
//!
//! - `omit`, two replicas with the defaults: no namespace or cluster series at all (each replica's sum of its own
//!   nodes would overwrite the other's under the same tags), and every node's and pod's series once per round;
//! - `export`, three replicas with `--shard_export_rollups`: the cluster series once per replica, each labelled
//!   with its own `shard`, adding up to the pods' total and to what the model API answers for the cluster.
//!
//! VictoriaMetrics keeps every sample written (no `-dedup.minScrapeInterval`), so a series written twice at one
//! timestamp shows two values there.

mod common;

use common::Heapster;
use heapster_sim::{SimConfig, Simulation};
use heapster_testkit::VictoriaMetrics;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const NODES: usize = 12;
const PODS_PER_NODE: usize = 3;
const RESOLUTION: Duration = Duration::from_secs(2);
const NAMESPACE: &str = "monitoring";
/// The settled rounds compared.
const ROUNDS: i64 = 3;
const METRIC: &str = "memory/usage_value";

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn poll(what: &str, limit: Duration, ok: impl Fn() -> bool) {
    let until = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < until, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn start(sim: &Simulation, vm: &VictoriaMetrics, group: &str, identity: &str, extra: &[&str]) -> Heapster {
    let mut args = vec![
        common::sim_source(sim),
        format!("--metric_resolution={}s", RESOLUTION.as_secs()),
        format!("--sink=influxdb:{}?bucket=k8s&cluster_name={group}", vm.url()),
        format!("--shard_lease_namespace={NAMESPACE}"),
        format!("--shard_lease_prefix={group}"),
        format!("--shard_identity={identity}"),
        "--shard_lease_duration=3s".into(),
        "--log_level=warn".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Heapster::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The value of the sample `name` (no labels) in the replica's `/metrics`.
fn sample(h: &Heapster, name: &str) -> Option<f64> {
    let (status, text) = h.get("/metrics");
    if status != 200 {
        return None;
    }
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Waits until every replica of the group counts all of them as members, and returns the timestamps of the
/// [`ROUNDS`] rounds that start from two rounds later (each replica filters its nodes from its next round on).
fn settled_rounds(group: &[Heapster]) -> Vec<i64> {
    poll("every replica sees the others", Duration::from_secs(20), || {
        group.iter().all(|h| sample(h, "heapster_shard_members") == Some(group.len() as f64))
    });
    let res = RESOLUTION.as_millis() as i64;
    let first = (now_ms() / res + 2) * res;
    (0..ROUNDS).map(|i| first + i * res).collect()
}

/// One series as VictoriaMetrics exports it: its labels, and timestamp (ms) -> the values stored there.
type Series = (BTreeMap<String, String>, BTreeMap<i64, Vec<f64>>);

/// Every series of `METRIC` with these labels in VictoriaMetrics: labels -> timestamp -> values.
fn series(vm: &VictoriaMetrics, cluster: &str, selector: &str) -> Vec<Series> {
    vm.export(&format!("{{__name__=\"{METRIC}\",cluster_name=\"{cluster}\",{selector}}}"))
}

/// Waits until VictoriaMetrics has the pods' points of every round in `rounds`.
fn wait_for_rounds(vm: &VictoriaMetrics, cluster: &str, rounds: &[i64]) {
    let last = *rounds.last().unwrap();
    poll(&format!("{cluster}: every pod's point at {last}"), RESOLUTION * 4 + Duration::from_secs(10), || {
        let pods = series(vm, cluster, "type=\"pod\"");
        pods.len() >= NODES * PODS_PER_NODE && pods.iter().all(|(_, p)| p.contains_key(&last))
    });
}

/// Each node's and each pod's series is one series, written once at every round of `rounds`, by one replica and
/// without a `shard` label. Returns the pods' total of each round.
fn entities_once(vm: &VictoriaMetrics, cluster: &str, rounds: &[i64]) -> BTreeMap<i64, f64> {
    let mut totals = BTreeMap::new();
    for (kind, expected) in [("node", NODES), ("pod", NODES * PODS_PER_NODE)] {
        let all = series(vm, cluster, &format!("type=\"{kind}\""));
        assert_eq!(all.len(), expected, "{cluster}: {kind} series: {:?}", all.iter().map(|s| &s.0).collect::<Vec<_>>());
        for (labels, points) in &all {
            assert!(!labels.contains_key("shard"), "{cluster}: a {kind} series labelled with a shard: {labels:?}");
            for t in rounds {
                let values = points.get(t).map(Vec::as_slice).unwrap_or_default();
                assert_eq!(values.len(), 1, "{cluster}: {labels:?} at {t}: {values:?} (written other than once)");
                if kind == "pod" {
                    *totals.entry(*t).or_insert(0.0) += values[0];
                }
            }
        }
    }
    totals
}

#[test]
fn sharded_replicas_write_each_entity_once_and_roll_ups_only_when_labelled_by_shard() {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let sim = rt
        .block_on(Simulation::start(SimConfig { nodes: NODES, pods_per_node: PODS_PER_NODE, ..Default::default() }))
        .unwrap();
    let vm = VictoriaMetrics::start();
    let omit: Vec<Heapster> = ["omit-a", "omit-b"].iter().map(|id| start(&sim, &vm, "omit", id, &[])).collect();
    let shards = ["export-a", "export-b", "export-c"];
    let export: Vec<Heapster> =
        shards.iter().map(|id| start(&sim, &vm, "export", id, &["--shard_export_rollups"])).collect();

    let omit_rounds = settled_rounds(&omit);
    let export_rounds = settled_rounds(&export);
    wait_for_rounds(&vm, "omit", &omit_rounds);
    wait_for_rounds(&vm, "export", &export_rounds);

    // Default: the partial roll-ups never reach the sink, not even in the rounds before the replicas saw each
    // other; the nodes and pods arrive once each.
    let rollups = vm.export("{cluster_name=\"omit\",type=~\"ns|cluster\"}");
    assert!(rollups.is_empty(), "roll-ups written without --shard_export_rollups: {:?}", rollups[0].0);
    assert!(vm.export("{cluster_name=\"omit\",shard!=\"\"}").is_empty());
    entities_once(&vm, "omit", &omit_rounds);
    // The replicas' own APIs still serve the cluster, summed over both.
    let (status, body) = omit[0].get(&format!("/api/v1/model/metrics/{}", METRIC.trim_end_matches("_value")));
    assert_eq!(status, 200, "{body}");

    // --shard_export_rollups: one cluster series per replica, each with its own shard label, written once a
    // round; their sum is the pods' total, and what any replica's model API answers for the cluster.
    let pods_total = entities_once(&vm, "export", &export_rounds);
    let cluster = series(&vm, "export", "type=\"cluster\"");
    let labelled: BTreeSet<&str> = cluster.iter().filter_map(|(l, _)| l.get("shard").map(String::as_str)).collect();
    assert_eq!(labelled, shards.into_iter().collect(), "{:?}", cluster.iter().map(|s| &s.0).collect::<Vec<_>>());
    assert_eq!(cluster.len(), shards.len());
    let model =
        common::points(&export[1].json(&format!("/api/v1/model/metrics/{}", METRIC.trim_end_matches("_value"))));
    for t in &export_rounds {
        let mut sum = 0.0;
        for (labels, points) in &cluster {
            let values = points.get(t).map(Vec::as_slice).unwrap_or_default();
            assert_eq!(values.len(), 1, "{labels:?} at {t}: {values:?}");
            assert!(values[0] > 0.0, "{labels:?} at {t}: every replica has nodes");
            sum += values[0];
        }
        assert_eq!(sum, pods_total[t], "at {t}: the shards' cluster series add up to the pods' total");
        assert_eq!(model.get(t), Some(&sum), "at {t}: the model API's cluster total (fan-out)");
    }
    // The namespace series are labelled too: each namespace once per replica that has its pods.
    let namespaces = series(&vm, "export", "type=\"ns\"");
    assert!(!namespaces.is_empty());
    for (labels, _) in &namespaces {
        assert!(shards.contains(&labels.get("shard").map(String::as_str).unwrap_or("")), "{labels:?}");
    }
    println!("took {:?}", started.elapsed());
}
