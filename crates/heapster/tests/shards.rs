//! Shards (`--shard_lease_namespace`): three real heapster replicas share 3,000 simulated nodes through Leases on
//! the simulated API server. The simulated kubelets log when each was asked for its Summary, so a round's scrapes
//! are counted per node, whoever made them.

mod common;

use common::Heapster;
use heapster_sim::{SimConfig, Simulation};
use heapster_sources::kubernetes::shard;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const NODES: usize = 3000;
/// Long, with a kubelet timeout to match, because the simulator (a debug build in this process) spends several
/// CPU-ms on each Summary and is asked for 3,000 within the first tenth of a round: on a shared machine it can take
/// tens of seconds to answer them all.
const RESOLUTION: Duration = Duration::from_secs(60);
const LEASE: Duration = Duration::from_secs(30);
const NAMESPACE: &str = "monitoring";
const PREFIX: &str = "heapster-shard";

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn start(sim: &Simulation, identity: &str) -> Heapster {
    Heapster::start(&[
        &format!(
            "--source=kubernetes.summary_api:{}?inClusterConfig=false&kubeletPort={}&kubeletPreferredAddressTypes=InternalIP&kubeletTimeout=45s",
            sim.api_url(),
            sim.nodes[0].addr.port()
        ),
        &format!("--metric_resolution={}s", RESOLUTION.as_secs()),
        // Few requests queued in the simulator at once, so that its API server (in the same process as the
        // kubelets) answers the Lease renewals between Summaries rather than after a round's worth of them.
        "--max_concurrent_scrapes=32",
        &format!("--shard_lease_namespace={NAMESPACE}"),
        &format!("--shard_identity={identity}"),
        &format!("--shard_lease_duration={}s", LEASE.as_secs()),
        "--log_level=warn,heapster_sources::kubernetes::shard=info",
    ])
}

/// The value of the sample `name` (no labels) in the replica's `/metrics`; `None` when it does not answer.
fn sample(h: &Heapster, name: &str) -> Option<f64> {
    let (status, text) = h.get("/metrics");
    if status != 200 {
        return None;
    }
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn poll(what: &str, limit: Duration, ok: impl Fn() -> bool) {
    let until = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < until, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The round (its start, ms) that starts after `after_ms`, once it is over: its scrapes are all logged.
fn next_round(after_ms: i64) -> i64 {
    let res = RESOLUTION.as_millis() as i64;
    let start = (after_ms / res + 1) * res;
    while now_ms() < start + res {
        std::thread::sleep(Duration::from_millis(250));
    }
    start
}

/// The first few of `wrong`, for a message.
fn few(wrong: &[(usize, usize)]) -> String {
    format!("{} nodes, first (node, scrapes): {:?}", wrong.len(), &wrong[..wrong.len().min(8)])
}

/// Nodes scraped other than exactly once in the round starting at `start`, as (node index, scrapes).
fn not_once(sim: &Simulation, start: i64) -> Vec<(usize, usize)> {
    let counts = sim.scrapes_between(start, start + RESOLUTION.as_millis() as i64);
    counts.into_iter().enumerate().filter(|(_, c)| *c != 1).collect()
}

/// The nodes `me` owns among `members`, by the replicas' own rule.
fn share(me: &str, members: &[&str]) -> Vec<usize> {
    (0..NODES).filter(|i| shard::owns(&format!("sim-node-{i}"), me, members.iter().copied(), 1)).collect()
}

#[test]
fn three_replicas_scrape_each_node_once_and_survivors_take_over_a_killed_replicas_share() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let sim =
        rt.block_on(Simulation::start(SimConfig { nodes: NODES, pods_per_node: 2, ..Default::default() })).unwrap();
    let names = ["replica-a", "replica-b", "replica-c"];
    let mut replicas: Vec<Heapster> = names.iter().map(|n| start(&sim, n)).collect();

    // Each replica's Lease, labelled for the others, with where it serves.
    for (h, name) in replicas.iter().zip(names) {
        poll("every replica holds its Lease", Duration::from_secs(60), || {
            sim.events().lease(NAMESPACE, &format!("{PREFIX}-{name}")).is_some()
        });
        let lease = sim.events().lease(NAMESPACE, &format!("{PREFIX}-{name}")).unwrap();
        assert_eq!(lease["metadata"]["labels"][shard::LABEL], PREFIX, "{lease}");
        assert_eq!(lease["metadata"]["annotations"][shard::ADDRESS_ANNOTATION], format!("http://127.0.0.1:{}", h.port));
        assert_eq!(lease["spec"]["holderIdentity"], name);
    }
    poll("every replica sees 3 members", Duration::from_secs(60), || {
        replicas.iter().all(|h| sample(h, "heapster_shard_members") == Some(3.0))
    });

    // Once all see each other: every node exactly once per round, each replica its rendezvous share.
    let joined = now_ms();
    let mut round = next_round(joined);
    let until = Instant::now() + RESOLUTION * 8;
    loop {
        let wrong = not_once(&sim, round);
        if wrong.is_empty() {
            break;
        }
        assert!(Instant::now() < until, "no round scraped every node exactly once; last: {}", few(&wrong));
        round = next_round(round);
    }
    let round = next_round(round);
    let wrong = not_once(&sim, round);
    assert!(wrong.is_empty(), "the round after a complete one: not scraped once: {}", few(&wrong));
    for (h, name) in replicas.iter().zip(names) {
        let expected = share(name, &names).len() as f64;
        assert_eq!(sample(h, "heapster_shard_nodes_assigned"), Some(expected), "{name}'s share");
        assert!((800.0..1200.0).contains(&expected), "{name}: {expected} of {NODES}");
    }
    // Any replica answers metrics.k8s.io for every node: its own share from its store, the others' through the
    // fan-out to the members its Leases name.
    for (h, name) in replicas.iter().zip(names) {
        let (status, body) = h.get("/apis/metrics.k8s.io/v1beta1/nodes");
        assert_eq!(status, 200, "{name}: {body}");
        let list: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut listed: Vec<&str> =
            list["items"].as_array().unwrap().iter().filter_map(|i| i["metadata"]["name"].as_str()).collect();
        listed.sort_unstable();
        listed.dedup();
        assert_eq!(listed.len(), NODES, "{name} lists {} of {NODES} nodes", listed.len());
    }

    // SIGKILL: no clean shutdown, the Lease stays until it expires.
    let dead = share(names[0], &names);
    replicas[0].child.kill().unwrap();
    replicas[0].child.wait().unwrap();
    let killed = now_ms();
    let mut round = next_round(killed - RESOLUTION.as_millis() as i64);
    let taken_over = loop {
        let wrong = not_once(&sim, round);
        let twice: Vec<_> = wrong.iter().filter(|(_, c)| *c > 1).copied().collect();
        assert!(twice.is_empty(), "round {round}: scraped twice after the kill: {}", few(&twice));
        let lost: Vec<_> = wrong.iter().filter(|(i, _)| dead.binary_search(i).is_err()).copied().collect();
        assert!(lost.is_empty(), "round {round}: missed outside the dead replica's share: {}", few(&lost));
        if wrong.is_empty() {
            break round;
        }
        assert!(
            round < killed + (LEASE + RESOLUTION * 4).as_millis() as i64,
            "the dead replica's {} nodes were not taken over: {} still missed",
            dead.len(),
            wrong.len()
        );
        round = next_round(round);
    };
    println!("killed at {killed}, every node scraped again in the round of {taken_over}");
    poll("the survivors see 2 members", Duration::from_secs(30), || {
        replicas[1..].iter().all(|h| sample(h, "heapster_shard_members") == Some(2.0))
    });
    // The survivors share the nodes by the same rule.
    for (h, name) in replicas[1..].iter().zip(&names[1..]) {
        let expected = share(name, &names[1..]).len() as f64;
        assert_eq!(sample(h, "heapster_shard_nodes_assigned"), Some(expected), "{name}'s share of two");
    }

    // SIGTERM: the Lease is deleted, so the last replica takes every node without waiting for it to expire. Sent
    // in the second half of a round, when the simulator (whose API server shares this process with the kubelets)
    // is not busy answering the round's Summaries.
    let res = RESOLUTION.as_millis() as i64;
    while now_ms() % res < res / 2 {
        std::thread::sleep(Duration::from_millis(250));
    }
    let status = Command::new("kill").arg("-TERM").arg(replicas[1].child.id().to_string()).status().unwrap();
    assert!(status.success());
    poll("replica-b's Lease deleted on SIGTERM", Duration::from_secs(30), || {
        sim.events().lease(NAMESPACE, &format!("{PREFIX}-{}", names[1])).is_none()
    });
    poll("replica-c alone", Duration::from_secs(30), || sample(&replicas[2], "heapster_shard_members") == Some(1.0));
}
