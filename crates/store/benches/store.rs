//! Bytes per stored point and ingest/query cost of the embedded store on cluster-like data.
//!
//! `cargo bench -p heapster-store` (NODES=1000 for the full-size run). Builds NODES nodes x 30 pods x 2
//! containers with the metrics a kubelet gives (counters that grow unevenly, gauges that wander, float rates),
//! ingests a full window and then a block's worth (64) of batches more, so every set has dropped a block, and
//! prints figures per point and per series: at the end, and the most the store held once the window was full
//! (what must be provisioned).

use heapster_model::{DataBatch, Labels, MetricSet, MetricValue};
use heapster_store::{Store, StoreConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// xorshift64*: deterministic noise, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Per-entity state that evolves batch to batch.
#[derive(Clone)]
struct Entity {
    key: String,
    labels: Labels,
    cpu: i64,
    mem: i64,
    rx: i64,
    tx: i64,
    faults: i64,
    cpu_mcores: f64,
    pod: bool,
}

/// The set of one entity at `ts`. Rates come from the second batch on, as the rate calculator gives them: so a set's
/// series were first stored without them, and its values then arrive in another order than its series were made.
fn step(e: &mut Entity, rng: &mut Rng, ts: i64, rates: bool) -> MetricSet {
    let dt = 15.0;
    let cpu_delta = (e.cpu_mcores * (0.8 + 0.4 * rng.unit()) * 1e6 * dt) as i64;
    e.cpu += cpu_delta;
    e.mem = (e.mem + (rng.unit() * 2_000_000.0) as i64 - 1_000_000).max(1 << 20);
    let rx_d = (rng.unit() * 50_000.0) as i64;
    let tx_d = (rng.unit() * 30_000.0) as i64;
    e.rx += rx_d;
    e.tx += tx_d;
    let f_d = (rng.unit() * 100.0) as i64;
    e.faults += f_d;
    let mut s = MetricSet { create_time: 1, scrape_time: ts, labels: e.labels.clone(), ..Default::default() };
    let i = MetricValue::Int;
    let f = MetricValue::Float;
    s.set("uptime", i(ts));
    s.set("cpu/usage", i(e.cpu));
    if rates {
        s.set("cpu/usage_rate", f(cpu_delta as f64 / 1e6 / dt));
    }
    s.set("cpu/request", i(100));
    s.set("cpu/limit", i(500));
    s.set("memory/usage", i(e.mem));
    s.set("memory/working_set", i(e.mem - 4096 * (e.mem % 7)));
    s.set("memory/rss", i(e.mem / 2));
    s.set("memory/cache", i(e.mem / 3));
    s.set("memory/request", i(128 << 20));
    s.set("memory/limit", i(256 << 20));
    s.set("memory/page_faults", i(e.faults));
    s.set("memory/major_page_faults", i(e.faults / 1000));
    if rates {
        s.set("memory/page_faults_rate", f(f_d as f64 / dt));
    }
    if rates {
        s.set("memory/major_page_faults_rate", f(0.0));
    }
    s.set("restart_count", i(0));
    if e.pod {
        s.set("network/rx", i(e.rx));
        s.set("network/tx", i(e.tx));
        s.set("network/rx_errors", i(0));
        s.set("network/tx_errors", i(0));
        if rates {
            s.set("network/rx_rate", f(rx_d as f64 / dt));
        }
        if rates {
            s.set("network/tx_rate", f(tx_d as f64 / dt));
        }
        if rates {
            s.set("network/rx_errors_rate", f(0.0));
        }
        if rates {
            s.set("network/tx_errors_rate", f(0.0));
        }
    } else {
        for (id, used) in [("/", e.mem / 10), ("logs", e.faults * 10)] {
            let l = Labels::from([("resource_id".to_owned(), id.to_owned())]);
            s.add_labeled("filesystem/usage", l.clone(), i(used));
            s.add_labeled("filesystem/limit", l.clone(), i(100 << 30));
            s.add_labeled("filesystem/available", l, i((100 << 30) - used));
        }
    }
    s
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<usize>().ok()).unwrap_or(0) * 4096
}

fn main() {
    let nodes: usize = std::env::var("NODES").ok().and_then(|n| n.parse().ok()).unwrap_or(200);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut entities = Vec::new();
    for n in 0..nodes {
        for p in 0..30 {
            let pod_labels = |t: &str| {
                Labels::from([
                    ("type".to_owned(), t.to_owned()),
                    ("namespace_name".to_owned(), format!("ns{}", p % 5)),
                    ("pod_name".to_owned(), format!("pod-{n}-{p}")),
                    ("nodename".to_owned(), format!("node-{n}")),
                ])
            };
            let base = Entity {
                key: format!("namespace:ns{}/pod:pod-{n}-{p}", p % 5),
                labels: pod_labels("pod"),
                cpu: 0,
                mem: 64 << 20,
                rx: 0,
                tx: 0,
                faults: 0,
                cpu_mcores: 5.0 + rng.unit() * 200.0,
                pod: true,
            };
            for c in 0..2 {
                let mut e = base.clone();
                e.key = format!("{}/container:c{c}", base.key);
                e.labels = pod_labels("pod_container");
                e.labels.insert("container_name", format!("c{c}"));
                e.pod = false;
                entities.push(e);
            }
            entities.push(base);
        }
    }
    let store = Store::new(StoreConfig { window: Duration::from_secs(900), resolution: Duration::from_secs(15) });
    let rss_before = rss_bytes();
    let mut ingest = Duration::ZERO;
    let mut values = 0usize;
    let batches = 60 + 64 + 10;
    let mut peak = 0;
    for b in 0..batches {
        let ts = 1_700_000_000_000 + b * 15_000;
        let mut batch = DataBatch { timestamp: ts, ..Default::default() };
        for e in entities.iter_mut() {
            let set = step(e, &mut rng, ts, b > 0);
            batch.sets.insert(e.key.clone(), set);
        }
        values += batch.point_count();
        let batch = Arc::new(batch);
        let t = Instant::now();
        store.ingest(batch);
        ingest += t.elapsed();
        if b >= 60 && b % 4 == 0 {
            peak = peak.max(store.stats().bytes);
        }
    }
    let st = store.stats();
    let rss = rss_bytes().saturating_sub(rss_before);
    let key = &entities[0].key;
    let t = Instant::now();
    let reps = 10_000;
    let mut n = 0;
    for _ in 0..reps {
        n += store.points(key, "cpu/usage", &Labels::new(), None, None).map_or(0, |p| p.len());
    }
    let query = t.elapsed();
    println!(
        "store: {nodes} nodes, {} sets, {} series, {} points in the window ({batches} batches ingested)",
        st.sets, st.series, st.points
    );
    println!(
        "  {:.2} bytes per stored point (all overhead included: {} MiB counted)",
        st.bytes as f64 / st.points as f64,
        st.bytes >> 20
    );
    println!(
        "  {:.0} bytes per series, {:.3} MiB per node",
        st.bytes as f64 / st.series as f64,
        st.bytes as f64 / nodes as f64 / 1048576.0
    );
    println!(
        "  peak once the window was full: {:.0} bytes per series, {:.3} MiB per node",
        peak as f64 / st.series as f64,
        peak as f64 / nodes as f64 / 1048576.0
    );
    println!("  RSS growth {} MiB (includes the batches in flight and allocator slack)", rss >> 20);
    println!("  ingest {:.0} ns per value", ingest.as_nanos() as f64 / values as f64);
    println!("  query: {:.2} µs per full-window series ({} points)", query.as_secs_f64() * 1e6 / reps as f64, n / reps);
}
