//! What the cluster benchmark and the soak run share: heapster started as the release binary against the
//! simulator, and its costs read from /proc and its own /metrics page.

#![allow(dead_code, reason = "each benchmark uses its part")]
use heapster_sim::Simulation;
use heapster_sources::kubelet::Summary;
use std::process::{Child, Command, Stdio};

pub fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The cargo target directory this benchmark was built in (`CARGO_TARGET_DIR` or the workspace's `target`): the
/// bench runs from `<target>/release/deps/`, and heapster's release binary is looked for beside it.
pub fn target_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the benchmark's own path");
    exe.ancestors().nth(3).expect("the benchmark runs from <target>/release/deps").to_path_buf()
}

/// (user + system CPU seconds, RSS bytes, peak RSS bytes) of a process.
pub fn usage(pid: u32) -> (f64, u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = fields.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks / 100.0, kb("VmRSS:") * 1024, kb("VmHWM:") * 1024)
}

/// Raises this process's open-file limit (soft and, when allowed, hard) to at least `want`, for it and the heapster it
/// starts: the simulator holds a listener and a connection per node, heapster a kept connection per node within what
/// its server leaves of its limit. Returns the limit reached, saying so when it is less (the hard limit is raised only
/// with CAP_SYS_RESOURCE).
pub fn raise_open_files(want: u64) -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    let soft = now.current.unwrap_or(u64::MAX);
    if soft >= want {
        return soft;
    }
    if setrlimit(Resource::Nofile, Rlimit { current: Some(want), maximum: now.maximum.map(|h| h.max(want)) }).is_ok() {
        return want;
    }
    let soft = now.maximum.map_or(want, |h| h.min(want));
    let _ = setrlimit(Resource::Nofile, Rlimit { current: Some(soft), maximum: now.maximum });
    eprintln!("open-file limit: wanted {want}, have {soft} (raise the hard limit: ulimit -Hn {want} as root)");
    soft
}

/// Open file descriptors of a process.
pub fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// A value from heapster's /metrics text (the first line of that name).
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
}

/// The sum over every line of a labelled counter, such as the scrape errors per cause.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}

pub async fn metrics_page(port: u16) -> Option<String> {
    reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.ok()?.text().await.ok()
}

/// The release binary scraping the simulator, with a store window of `window_rounds` rounds; returns the child
/// and its HTTP port.
pub fn start_heapster(sim: &Simulation, resolution: u64, window_rounds: u64) -> (Child, u16) {
    start_heapster_with(sim, resolution, window_rounds, &[])
}

/// As [`start_heapster`], with more flags.
pub fn start_heapster_with(sim: &Simulation, resolution: u64, window_rounds: u64, extra: &[String]) -> (Child, u16) {
    start_heapster_limited(sim, resolution, window_rounds, extra, None)
}

/// As [`start_heapster_with`], with an open-file limit of `nofile` (soft and hard) for heapster: it keeps kubelet
/// connections within what its server leaves of its limit, and the simulator in this process needs room for their other
/// ends.
pub fn start_heapster_limited(
    sim: &Simulation,
    resolution: u64,
    window_rounds: u64,
    extra: &[String],
    nofile: Option<u64>,
) -> (Child, u16) {
    let kubelet_port = sim.nodes[0].addr.port();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bin = target_dir().join("release/heapster");
    assert!(bin.exists(), "build it first: cargo build --release ({} is missing)", bin.display());
    let mut command = match nofile {
        // `ulimit` before exec: heapster keeps the shell's process id, which the benchmarks read /proc by.
        Some(n) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(format!("ulimit -n {n} && exec \"$0\" \"$@\"")).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let child = command
        .args([
            &format!("--source=kubernetes.summary_api:http://{}?inClusterConfig=false&kubeletPort={kubelet_port}&kubeletPreferredAddressTypes=InternalIP", sim.api_server),
            &format!("--metric_resolution={resolution}s"),
            &format!("--store_window={}s", resolution * window_rounds),
            "--listen_ip=127.0.0.1",
            &format!("--heapster_port={port}"),
            "--log_level=warn",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    (child, port)
}

/// `calibrate()` on the machine of the seventh session of 2026-12-04, where the 5,000-node figures of the README's
/// performance section that the targets were judged against were measured: `summary_decode`'s decode took 98.5 us
/// there. The calibration runs serde_json on heapster's Summary types, which was heapster's decoder until
/// 2026-12-05 (simd-json since), so the reference is rescaled only when those types' work changes: by 1,818.2 /
/// 1,886.7 (callgrind instructions) for the interface lists skipped since 2026-12-05. Otherwise a faster decoder
/// would read as a faster machine.
pub const REFERENCE_DECODE_US: f64 = 98.5 * 1818.2 / 1886.7;

/// Microseconds this machine takes to decode the simulator's recorded kubelet Summary (57 kB, the 1.28 fixture)
/// with serde_json, the best of five runs: a fixed piece of work, so that CPU figures from machines of different
/// speeds (2.2x apart between two sessions here) can be compared through it. Run while nothing else of the bench
/// is, at the start and at the end.
pub fn calibrate() -> f64 {
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../sim/fixtures/kubelet_stats_summary_k8s1.28_multicontainer.json"
    ))
    .expect("the simulator's fixture");
    let iters = 500;
    (0..5)
        .map(|_| {
            let started = std::time::Instant::now();
            for _ in 0..iters {
                let text = std::str::from_utf8(std::hint::black_box(&body)).expect("fixture");
                std::hint::black_box(serde_json::from_str::<Summary>(text).expect("fixture"));
            }
            started.elapsed().as_secs_f64() * 1e6 / f64::from(iters)
        })
        .fold(f64::INFINITY, f64::min)
}
