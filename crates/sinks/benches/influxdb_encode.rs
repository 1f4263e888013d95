//! What the InfluxDB sink costs per point: line-protocol encoding in each schema, gzip, and (when `influxd` is
//! on the PATH) whole writes into a real InfluxDB 1.x.
//!
//! `cargo bench -p heapster-sinks --bench influxdb_encode`, with `NODES` (default 100) and `PODS` (30 per node)
//! shaping the batch, `ROUNDS` (default 5) repetitions of each measurement, and `INFLUXD=0` to skip the real
//! server. A batch holds, per node, the node's set plus one pod and one container set per pod, each with the
//! catalog's first unlabelled metrics and two filesystems' labelled metrics, with Kubernetes-like labels.
//!
//! Figures are per unit: CPU time (this thread's, from `CLOCK_THREAD_CPUTIME_ID`) per 100,000 points, points per
//! second of that CPU time, and bytes per point. Run on a quiet machine: CPU time is less disturbed by other load
//! than wall time, but not immune to it (caches, frequency).

use heapster_model::catalog::{CATALOG, ValueType};
use heapster_model::{DataBatch, Labels, MetricSet, MetricValue};
use heapster_sinks::DataSink;
use heapster_sinks::influxdb::encoder::{self, Encoded};
use heapster_sinks::influxdb::{InfluxdbConfig, InfluxdbSink};
use heapster_testkit::Influxd;
use heapster_testkit::bench::median_cpu;
use std::sync::Arc;
use std::time::Instant;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// CPU seconds of `clock` (`CLOCK_THREAD_CPUTIME_ID` or `CLOCK_PROCESS_CPUTIME_ID`).
fn cpu(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; these clocks always exist on Linux.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn labels(pairs: &[(&str, String)]) -> Labels {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

/// One set with `n` unlabelled catalog metrics and two filesystems' labelled ones.
fn set(labels: Labels, n: usize, seed: u64) -> MetricSet {
    let mut s = MetricSet { labels, ..Default::default() };
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let value = |d: &heapster_model::catalog::MetricDescriptor, r: u64| match d.value_type {
        ValueType::Int64 => MetricValue::Int((r >> 20) as i64),
        ValueType::Float => MetricValue::Float((r >> 40) as f64 / 7.0),
    };
    for d in CATALOG.iter().filter(|d| !d.labeled).take(n) {
        s.set(d.name, value(d, next()));
    }
    for dev in ["/dev/vda1", "/dev/vdb"] {
        let l = Arc::new(Labels::from([("resource_id".to_owned(), dev.to_owned())]));
        for d in CATALOG.iter().filter(|d| d.labeled && d.name.starts_with("filesystem/")).take(3) {
            s.add_labeled(d.name, l.clone(), value(d, next()));
        }
    }
    s
}

/// NODES nodes with PODS pods of one container each, at `timestamp`.
fn batch(nodes: usize, pods: usize, timestamp: i64) -> DataBatch {
    let mut b = DataBatch { timestamp, ..Default::default() };
    for n in 0..nodes {
        let node = format!("node-{n:04}.cluster.example.com");
        let common = [("nodename", node.clone()), ("hostname", node.clone()), ("host_id", format!("i-{n:016x}"))];
        let mut l = common.to_vec();
        l.push(("type", "node".into()));
        b.sets.insert(format!("node:{node}"), set(labels(&l), 24, n as u64));
        for p in 0..pods {
            let ns = format!("team-{}", p % 7);
            let pod = format!("web-{n}-{p}-7d9f8c6b5-x2k4q");
            let mut l = common.to_vec();
            l.extend([
                ("namespace_name", ns.clone()),
                ("namespace_id", format!("ns-uid-{}", p % 7)),
                ("pod_name", pod.clone()),
                ("pod_id", format!("0c3b{n:04x}-{p:04x}-4f1e-9a7b-5d2e8c1f3a6b")),
                ("labels", format!("app:web-{p},pod-template-hash:7d9f8c6b5,tier:frontend")),
            ]);
            let mut pl = l.clone();
            pl.push(("type", "pod".into()));
            b.sets.insert(format!("namespace:{ns}/pod:{pod}"), set(labels(&pl), 20, (n * 1000 + p) as u64));
            l.extend([
                ("type", "pod_container".into()),
                ("container_name", "nginx".into()),
                ("container_base_image", "registry.example.com/nginx:1.25".into()),
            ]);
            b.sets.insert(
                format!("namespace:{ns}/pod:{pod}/container:nginx"),
                set(labels(&l), 20, (n * 1000 + p + 500) as u64),
            );
        }
    }
    b
}

fn config(opts: &str) -> InfluxdbConfig {
    InfluxdbConfig::from_uri(&format!("influxdb:http://127.0.0.1:1?{opts}").parse().unwrap()).unwrap()
}

fn per_100k(secs: f64, points: usize) -> String {
    let (ms, ns) = (secs * 1e3 * 100_000.0 / points as f64, secs * 1e9 / points as f64);
    let mps = points as f64 / secs / 1e6;
    format!("{ms:7.1} ms CPU per 100k points ({mps:5.2} M points/s of CPU, {ns:5.0} ns/point)")
}

fn main() {
    let (nodes, pods, rounds) = (env("NODES", 100), env("PODS", 30), env("ROUNDS", 5).max(1));
    let b = batch(nodes, pods, 1_700_000_000_000);
    println!(
        "batch: {nodes} nodes x {pods} pods (1 container each): {} metric sets, {} values; median of {rounds} runs",
        b.sets.len(),
        b.point_count()
    );

    println!("\n== line protocol encoding (one thread)");
    let mut heapster_bodies = Vec::new();
    for (schema, opts) in
        [("heapster (default)", ""), ("withfields=true", "withfields=true"), ("schema=legacy", "schema=legacy")]
    {
        let c = config(opts);
        let mut out = Encoded::default();
        let secs = median_cpu(rounds, || out = encoder::encode(&b, &c));
        let bytes: usize = out.bodies.iter().map(String::len).sum();
        println!("  {schema:20} {}; {:5.0} bytes/point", per_100k(secs, out.points), bytes as f64 / out.points as f64);
        if opts.is_empty() {
            heapster_bodies = out.bodies;
        }
    }

    println!("\n== gzip of the default schema's bodies (10,000 points per body)");
    let points: usize = heapster_bodies.iter().map(|b| b.lines().count()).sum();
    let raw: usize = heapster_bodies.iter().map(String::len).sum();
    let mut packed = 0;
    let secs = median_cpu(rounds, || packed = heapster_bodies.iter().map(|b| encoder::gzip(b.as_bytes()).len()).sum());
    println!(
        "  level 1 (the sink's) {}; {:5.1} bytes/point on the wire ({:.1}x smaller)",
        per_100k(secs, points),
        packed as f64 / points as f64,
        raw as f64 / packed as f64
    );
    for level in [6, 9] {
        let mut packed6 = 0;
        let secs = median_cpu(rounds, || {
            packed6 = heapster_bodies
                .iter()
                .map(|b| {
                    use std::io::Write as _;
                    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
                    e.write_all(b.as_bytes()).unwrap();
                    e.finish().unwrap().len()
                })
                .sum()
        });
        println!(
            "  level {level}              {}; {:5.1} bytes/point on the wire ({:.1}x smaller)",
            per_100k(secs, points),
            packed6 as f64 / points as f64,
            raw as f64 / packed6 as f64
        );
    }
    let c = config("");
    let secs = median_cpu(rounds, || {
        let e = encoder::encode(&b, &c);
        let n: usize = e.bodies.iter().map(|b| encoder::gzip(b.as_bytes()).len()).sum();
        std::hint::black_box(n);
    });
    println!("  encode + gzip (what the sink does per batch) {}", per_100k(secs, points));

    if std::env::var("INFLUXD").as_deref() != Ok("0") {
        if Influxd::installed() {
            real_writes(&Influxd::start(), nodes, pods, rounds);
        } else {
            println!("\n(influxd not on the PATH: no writes to a real InfluxDB; scripts/test installs it)");
        }
    }
}

/// Batches written by the sink itself (encode, gzip or not, HTTP) into a real InfluxDB 1.x on loopback.
fn real_writes(server: &Influxd, nodes: usize, pods: usize, rounds: usize) {
    println!("\n== writes into a real InfluxDB ({}) on 127.0.0.1, through the sink, concurrency=1", server.version());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for (what, opts) in [("gzip (default)", "db=bench_gzip"), ("gzip=false", "db=bench_plain&gzip=false")] {
        let uri = format!("influxdb:http://127.0.0.1:{}?{opts}", server.port).parse().unwrap();
        let sink = InfluxdbSink::from_uri(&uri).unwrap();
        // One batch first: creates the database and warms the connection.
        rt.block_on(sink.export(Arc::new(batch(nodes, pods, 1_700_000_000_000)))).unwrap();
        let batches: Vec<Arc<DataBatch>> =
            (1..=rounds as i64).map(|r| Arc::new(batch(nodes, pods, 1_700_000_000_000 + r * 15_000))).collect();
        let points: usize = batches.iter().map(|b| b.point_count()).sum();
        let (wall, me, srv) = (Instant::now(), cpu(libc::CLOCK_PROCESS_CPUTIME_ID), server.cpu_seconds());
        for b in batches {
            rt.block_on(sink.export(b)).unwrap();
        }
        let wall = wall.elapsed().as_secs_f64();
        let me = cpu(libc::CLOCK_PROCESS_CPUTIME_ID) - me;
        let srv = server.cpu_seconds() - srv;
        let per = |s: f64| s * 1e3 * 100_000.0 / points as f64;
        println!(
            "  {what:15} {:7.0} points/s written ({points} points in {wall:.2} s); CPU per 100k points: heapster \
             side {:6.1} ms, influxd {:6.1} ms",
            points as f64 / wall,
            per(me),
            per(srv)
        );
    }
}
