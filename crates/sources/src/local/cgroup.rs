//! One cgroup's metrics, from whichever hierarchy has each controller.

use super::parse::{self, DeviceIo};
use super::{CgroupDirs, Known, Reader, now_ms};
use heapster_model::labels::RESOURCE_ID;
use heapster_model::{Labels, MetricSet, MetricValue};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Facts about the host that every cgroup's reading needs, gathered once per scrape.
pub(crate) struct Context {
    pub proc_root: PathBuf,
    /// The host's network namespace (`net:[4026531833]`); a cgroup whose processes are elsewhere gets network
    /// metrics from their namespace.
    pub host_netns: Option<String>,
    /// Controllers enabled in cgroup2 (`cgroup.controllers` of its root).
    pub v2_controllers: Vec<String>,
    /// `major:minor` -> `/dev/<name>`, so disk metrics of cgroups and of the node use the same `resource_id`.
    pub devices: HashMap<String, String>,
}

impl Context {
    pub fn new(proc_root: &Path, h: &super::Hierarchies, reader: &mut Reader) -> Context {
        let host_netns = std::fs::read_link(proc_root.join("1/ns/net"))
            .or_else(|_| std::fs::read_link(proc_root.join("self/ns/net")))
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
        let v2_controllers = h
            .v2
            .as_ref()
            .and_then(|root| {
                reader.read(&root.join("cgroup.controllers")).map(|t| t.split_whitespace().map(String::from).collect())
            })
            .unwrap_or_default();
        let devices = reader
            .read(&proc_root.join("diskstats"))
            .map(|t| parse::diskstats(t).into_iter().map(|(id, name, _)| (id, format!("/dev/{name}"))).collect())
            .unwrap_or_default();
        Context { proc_root: proc_root.to_owned(), host_netns, v2_controllers, devices }
    }

    fn v2_has(&self, controller: &str) -> bool {
        self.v2_controllers.iter().any(|c| c == controller)
    }

    pub fn device_name(&self, id: &str) -> String {
        self.devices.get(id).cloned().unwrap_or_else(|| id.to_owned())
    }
}

pub(crate) fn int(set: &mut MetricSet, name: &'static str, v: Option<u64>) {
    if let Some(v) = v {
        set.set(name, MetricValue::Int(v.min(i64::MAX as u64) as i64));
    }
}

/// Reads one cgroup. `None` when it disappeared while being read.
pub(crate) fn read(dirs: &CgroupDirs, ctx: &Context, known: &mut Known, r: &mut Reader) -> Option<MetricSet> {
    let mut set = MetricSet::default();
    let v2 = dirs.v2.as_deref();
    // cgroup2's cpu.stat is read only when it is the source of something (each read costs ~12 µs of kernel time).
    let need_v2_cpu = !dirs.v1.contains_key("cpuacct") || (!dirs.v1.contains_key("cpu") && ctx.v2_has("cpu"));
    let v2_cpu_stat = v2.filter(|_| need_v2_cpu).and_then(|d| r.read(&d.join("cpu.stat")).map(str::to_owned));

    // CPU usage: v1 cpuacct, else cgroup2's cpu.stat (always there, even without the cpu controller).
    if let Some(d) = dirs.v1.get("cpuacct") {
        int(&mut set, "cpu/usage", r.read_for("cpu/usage", &d.join("cpuacct.usage")).and_then(parse::single));
    } else if let Some(t) = &v2_cpu_stat {
        int(&mut set, "cpu/usage", parse::flat_keyed(t, "usage_usec").map(|us| us * 1000));
    } else {
        r.missing.push(("cpu/usage", "no cpuacct controller and no cgroup2 for this cgroup".into()));
    }

    // CPU limit and throttling: the cpu controller.
    if let Some(d) = dirs.v1.get("cpu") {
        let quota = r.read(&d.join("cpu.cfs_quota_us")).and_then(|t| t.trim().parse::<i64>().ok());
        if let Some(q) = quota.filter(|&q| q > 0) {
            let period = r.read(&d.join("cpu.cfs_period_us")).and_then(parse::single);
            if let Some(m) = period.and_then(|p| parse::cfs_millicores(q, p)) {
                set.set("cpu/limit", MetricValue::Int(m));
            }
        }
        if let Some(t) = r.read_for("cpu/throttled_time", &d.join("cpu.stat")) {
            let (periods, time) = (parse::flat_keyed(t, "nr_throttled"), parse::flat_keyed(t, "throttled_time"));
            int(&mut set, "cpu/throttled_periods", periods);
            int(&mut set, "cpu/throttled_time", time);
        }
    } else if let (Some(d), true) = (v2, ctx.v2_has("cpu")) {
        if let Some(m) = r.read(&d.join("cpu.max")).and_then(parse::v2_cpu_max) {
            set.set("cpu/limit", MetricValue::Int(m));
        }
        if let Some(t) = &v2_cpu_stat {
            int(&mut set, "cpu/throttled_periods", parse::flat_keyed(t, "nr_throttled"));
            int(&mut set, "cpu/throttled_time", parse::flat_keyed(t, "throttled_usec").map(|us| us * 1000));
        }
    } else {
        r.missing.push(("cpu/throttled_time", "no cpu controller for this cgroup (v1 or cgroup2)".into()));
    }

    read_memory(dirs, ctx, &mut set, r);
    read_block_io(dirs, ctx, &mut set, r);

    // PSI: cgroup2 only.
    if let Some(d) = v2 {
        add_psi(&mut set, r, |resource| d.join(format!("{resource}.pressure")));
    } else {
        r.missing
            .push(("cpu/pressure_some", "PSI needs cgroup2, and this cgroup is not in a cgroup2 hierarchy".into()));
    }

    // Processes: their network namespace and their run states.
    let procs_dir = dirs.v1.get("cpu").or(dirs.v1.get("memory")).map(PathBuf::as_path).or(v2)?;
    let pids: Vec<u32> = match r.read(&procs_dir.join("cgroup.procs")) {
        Some(t) => t.lines().filter_map(|l| l.trim().parse().ok()).collect(),
        None if !procs_dir.exists() => return None,
        None => Vec::new(),
    };
    read_network(&pids, ctx, &mut set, r);
    if pids.is_empty() {
        // No process, no load; decay what there was so a cgroup that empties shows it falling to zero.
        known.load = known.load.map(|(l, at)| (l * (-((now_ms() - at) as f64) / 10_000.0).exp(), now_ms()));
        set.set("cpu/load", MetricValue::Int(known.load.map_or(0.0, |(l, _)| l).round() as i64));
    } else {
        read_load(dirs, ctx, known, &mut set, r);
    }
    set.scrape_time = now_ms();
    Some(set)
}

/// Where one cgroup version keeps the memory figures: the same metrics under other names.
struct MemoryFiles {
    usage: &'static str,
    stat: &'static str,
    inactive_file: &'static str,
    rss: &'static str,
    cache: &'static str,
    pgfault: &'static str,
    pgmajfault: &'static str,
    limit: &'static str,
    parse_limit: fn(&str) -> Option<u64>,
    oom_events: &'static str,
}

const MEMORY_V1: MemoryFiles = MemoryFiles {
    usage: "memory.usage_in_bytes",
    stat: "memory.stat",
    inactive_file: "total_inactive_file",
    rss: "total_rss",
    cache: "total_cache",
    pgfault: "total_pgfault",
    pgmajfault: "total_pgmajfault",
    limit: "memory.limit_in_bytes",
    parse_limit: parse::v1_memory_limit,
    oom_events: "memory.oom_control",
};

const MEMORY_V2: MemoryFiles = MemoryFiles {
    usage: "memory.current",
    stat: "memory.stat",
    inactive_file: "inactive_file",
    rss: "anon",
    cache: "file",
    pgfault: "pgfault",
    pgmajfault: "pgmajfault",
    limit: "memory.max",
    parse_limit: parse::v2_max,
    oom_events: "memory.events",
};

fn read_memory(dirs: &CgroupDirs, ctx: &Context, set: &mut MetricSet, r: &mut Reader) {
    let (d, f) = match (dirs.v1.get("memory"), dirs.v2.as_deref()) {
        (Some(d), _) => (d.as_path(), &MEMORY_V1),
        (None, Some(d)) if ctx.v2_has("memory") => (d, &MEMORY_V2),
        _ => {
            r.missing.push(("memory/usage", "no memory controller for this cgroup (v1 or cgroup2)".into()));
            return;
        }
    };
    let usage = r.read_for("memory/usage", &d.join(f.usage)).and_then(parse::single);
    int(set, "memory/usage", usage);
    if let Some(t) = r.read_for("memory/working_set", &d.join(f.stat)) {
        let inactive = parse::flat_keyed(t, f.inactive_file);
        int(set, "memory/working_set", usage.zip(inactive).map(|(u, i)| u.saturating_sub(i)));
        int(set, "memory/rss", parse::flat_keyed(t, f.rss));
        int(set, "memory/cache", parse::flat_keyed(t, f.cache));
        int(set, "memory/page_faults", parse::flat_keyed(t, f.pgfault));
        int(set, "memory/major_page_faults", parse::flat_keyed(t, f.pgmajfault));
    }
    int(set, "memory/limit", r.read(&d.join(f.limit)).and_then(f.parse_limit));
    if let Some(t) = r.read_for("memory/oom_kills", &d.join(f.oom_events)) {
        int(set, "memory/oom_kills", parse::flat_keyed(t, "oom_kill"));
    }
}

fn read_block_io(dirs: &CgroupDirs, ctx: &Context, set: &mut MetricSet, r: &mut Reader) {
    let devices: Vec<(String, DeviceIo)> = if let Some(d) = dirs.v1.get("blkio") {
        r.read_for("disk/io_read_bytes", &d.join("blkio.throttle.io_service_bytes"))
            .map(parse::v1_blkio)
            .unwrap_or_default()
    } else if let (Some(d), true) = (dirs.v2.as_deref(), ctx.v2_has("io")) {
        r.read_for("disk/io_read_bytes", &d.join("io.stat")).map(parse::v2_io_stat).unwrap_or_default()
    } else {
        r.missing.push(("disk/io_read_bytes", "no blkio/io controller for this cgroup (v1 or cgroup2)".into()));
        Vec::new()
    };
    add_disk_io(set, devices.into_iter().map(|(id, io)| (ctx.device_name(&id), io)));
}

/// Adds the PSI totals of cpu, memory and io, reading each resource's file from `path(resource)`.
pub(crate) fn add_psi(set: &mut MetricSet, r: &mut Reader, path: impl Fn(&str) -> PathBuf) {
    for (resource, some, full) in [
        ("cpu", "cpu/pressure_some", "cpu/pressure_full"),
        ("memory", "memory/pressure_some", "memory/pressure_full"),
        ("io", "io/pressure_some", "io/pressure_full"),
    ] {
        if let Some(t) = r.read_for(some, &path(resource)) {
            let (s, f) = parse::psi_totals(t);
            int(set, some, s);
            int(set, full, f);
        }
    }
}

/// Adds `disk/io_read_bytes` and `disk/io_write_bytes` per device.
pub(crate) fn add_disk_io(set: &mut MetricSet, devices: impl Iterator<Item = (String, DeviceIo)>) {
    for (name, io) in devices {
        let labels = Labels::from([(RESOURCE_ID.to_owned(), name)]);
        set.add_labeled("disk/io_read_bytes", labels.clone(), MetricValue::Int(io.read_bytes as i64));
        set.add_labeled("disk/io_write_bytes", labels, MetricValue::Int(io.write_bytes as i64));
    }
}

/// Network counters for a cgroup whose processes live in their own network namespace. Cgroups sharing the host's
/// namespace get none: their traffic is the node's, and counting it per cgroup would count it many times.
fn read_network(pids: &[u32], ctx: &Context, set: &mut MetricSet, r: &mut Reader) {
    let Some(host) = &ctx.host_netns else { return };
    for pid in pids.iter().take(3) {
        let proc = ctx.proc_root.join(pid.to_string());
        let Ok(ns) = std::fs::read_link(proc.join("ns/net")) else { continue };
        if ns.as_os_str() == host.as_str() {
            return;
        }
        if let Some(t) = r.read(&proc.join("net/dev")) {
            add_network(set, parse::net_dev_total(t));
            return;
        }
    }
}

pub(crate) fn add_network(set: &mut MetricSet, n: parse::NetCounters) {
    int(set, "network/rx", Some(n.rx_bytes));
    int(set, "network/rx_errors", Some(n.rx_errors));
    int(set, "network/tx", Some(n.tx_bytes));
    int(set, "network/tx_errors", Some(n.tx_errors));
}

/// cAdvisor's load average: runnable and uninterruptible threads x 1000, smoothed exponentially over 10 s.
fn read_load(dirs: &CgroupDirs, ctx: &Context, known: &mut Known, set: &mut MetricSet, r: &mut Reader) {
    let tasks_file = match (dirs.v1.get("cpu"), dirs.v2.as_deref()) {
        (Some(d), _) => d.join("tasks"),
        (None, Some(d)) => d.join("cgroup.threads"),
        (None, None) => return,
    };
    let Some(tids) =
        r.read(&tasks_file).map(|t| t.lines().filter_map(|l| l.trim().parse::<u32>().ok()).collect::<Vec<_>>())
    else {
        return;
    };
    let mut running = 0u32;
    for tid in tids {
        let state = r.read(&ctx.proc_root.join(format!("{tid}/stat"))).and_then(parse::task_state);
        running += u32::from(matches!(state, Some('R' | 'D')));
    }
    let now = now_ms();
    let instant = f64::from(running) * 1000.0;
    let smoothed = match known.load {
        Some((prev, at)) if now > at => {
            let decay = (-((now - at) as f64) / 10_000.0).exp();
            prev * decay + instant * (1.0 - decay)
        }
        _ => instant,
    };
    known.load = Some((smoothed, now));
    set.set("cpu/load", MetricValue::Int(smoothed.round() as i64));
}
