//! CPU of one kubelet's Summary on its way to metric sets: the JSON decode, then the conversion, per document and
//! per pod, on the recorded fixture the simulator serves. The cluster bench measures the
//! same stage inside heapster (`decode` in its bill) but varies by a few percent run to run; this isolates it.
//!
//! `cargo bench -p heapster-sources --bench summary_decode` (`ITERS` documents per run, default 2,000). It prints
//! serde_json's decode alone too: heapster's decoder before simd-json, and the cluster bench's calibration.

use std::hint::black_box;
use std::time::Instant;

fn main() {
    let iters: u32 = std::env::var("ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../sim/fixtures");
    for name in ["kubelet_stats_summary_k8s1.28_multicontainer.json"] {
        let body = std::fs::read(format!("{dir}/{name}")).expect("fixture");
        let pods = heapster_sources::kubelet::decode(&body).expect("fixture decodes").pods.len();
        // Warm up caches and the allocator, then the best of five runs: the machine is shared.
        let (mut decode_ns, mut convert_ns, mut serde_json_ns) = (f64::MAX, f64::MAX, f64::MAX);
        for _ in 0..5 {
            // serde_json alone, heapster's decoder before simd-json (and the cluster bench's calibration).
            let started = Instant::now();
            for _ in 0..iters {
                let text = std::str::from_utf8(black_box(&body)).unwrap();
                black_box(serde_json::from_str::<heapster_sources::kubelet::Summary>(text).unwrap());
            }
            serde_json_ns = serde_json_ns.min(started.elapsed().as_nanos() as f64 / f64::from(iters));
            let started = Instant::now();
            for _ in 0..iters {
                black_box(heapster_sources::kubelet::decode(black_box(&body)).unwrap());
            }
            decode_ns = decode_ns.min(started.elapsed().as_nanos() as f64 / f64::from(iters));
            let summary = heapster_sources::kubelet::decode(&body).unwrap();
            let started = Instant::now();
            for _ in 0..iters {
                black_box(heapster_sources::kubelet::summary_to_sets(black_box(&summary), "node-1", None, 0));
            }
            convert_ns = convert_ns.min(started.elapsed().as_nanos() as f64 / f64::from(iters));
        }
        println!(
            "{name}: {} bytes, {pods} pods: decode {:.1} us ({:.2} us per pod, {:.0} MB/s; serde_json alone {:.1} us), \
             convert {:.1} us ({:.2} us per pod)",
            body.len(),
            decode_ns / 1e3,
            decode_ns / 1e3 / pods as f64,
            body.len() as f64 / decode_ns * 1e3,
            serde_json_ns / 1e3,
            convert_ns / 1e3,
            convert_ns / 1e3 / pods as f64,
        );
    }
}
