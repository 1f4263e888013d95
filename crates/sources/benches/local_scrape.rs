//! CPU cost of one collection of the local source, with N extra cgroups created for the run.
//!
//! `cargo bench -p heapster-sources --bench local_scrape` (as root). Prints CPU time (user + system, all threads)
//! per collection and per cgroup; the cgroups are removed afterwards.

use heapster_sources::MetricsSource;
use heapster_sources::local::{LocalSource, LocalSourceConfig};
use std::path::PathBuf;

fn cpu_time_ms() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
    ms(u.ru_utime) + ms(u.ru_stime)
}

/// Creates `n` cgroups in every hierarchy the local source reads, removed on drop.
struct Cgroups(Vec<PathBuf>);

impl Cgroups {
    fn create(n: usize) -> Cgroups {
        let roots: Vec<PathBuf> = ["cpu", "cpuacct", "memory", "blkio", "unified"]
            .iter()
            .map(|c| PathBuf::from("/sys/fs/cgroup").join(c))
            .filter(|p| p.is_dir())
            .collect();
        let roots = if roots.is_empty() { vec![PathBuf::from("/sys/fs/cgroup")] } else { roots };
        let mut dirs = Vec::new();
        for i in 0..n {
            for r in &roots {
                let d = r.join(format!("heapster-bench-{}-{i}", std::process::id()));
                std::fs::create_dir(&d).unwrap_or_else(|e| panic!("cannot create {}: {e} (run as root)", d.display()));
                dirs.push(d);
            }
        }
        Cgroups(dirs)
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let source = LocalSource::new(LocalSourceConfig::default(), Default::default()).expect("local source");
    let baseline = rt.block_on(source.scrape(0)).unwrap().sets.len();
    println!("local source: {baseline} sets on this host before the benchmark's cgroups");
    for n in [100usize, 1000] {
        let _cgroups = Cgroups::create(n);
        let warm = rt.block_on(source.scrape(0)).unwrap();
        assert!(warm.sets.len() >= n, "only {} sets for {n} cgroups", warm.sets.len());
        let rounds = if n >= 1000 { 10 } else { 30 };
        let start = cpu_time_ms();
        let wall = std::time::Instant::now();
        let mut points = 0;
        for _ in 0..rounds {
            points = rt.block_on(source.scrape(0)).unwrap().point_count();
        }
        let per = (cpu_time_ms() - start) / rounds as f64;
        let sets = warm.sets.len();
        println!(
            "{n:>5} cgroups ({sets} sets, {points} values): {per:.2} ms CPU per collection, {:.1} µs per set, wall {:.2} ms",
            per * 1000.0 / sets as f64,
            wall.elapsed().as_secs_f64() * 1000.0 / rounds as f64
        );
    }
}
