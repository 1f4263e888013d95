//! The node's metric set: the root cgroup where it counts everything, procfs for the rest.

use super::cgroup::{Context, add_disk_io, add_network, add_psi, int};
use super::parse;
use super::{CgroupDirs, Mounts, Reader, now_ms};
use heapster_model::labels::RESOURCE_ID;
use heapster_model::{Labels, MetricSet, MetricValue};
use std::path::Path;

/// Reads the node. Memory comes from `/proc/meminfo` rather than the root cgroup: cgroup2 has no root
/// `memory.current`, and meminfo is the same on v1 and v2.
pub(crate) fn read(
    proc: &Path,
    mounts: &Mounts,
    root: Option<&CgroupDirs>,
    ctx: &Context,
    r: &mut Reader,
) -> MetricSet {
    let mut set = MetricSet::default();
    let (busy_jiffies, btime) = r.read_for("cpu/usage", &proc.join("stat")).map(parse::proc_stat).unwrap_or_default();
    if let Some(bt) = btime {
        set.create_time = bt * 1000;
    }

    // CPU usage: the root cpuacct counts in ns; cgroup2's root cpu.stat in µs; /proc/stat in jiffies.
    let cpuacct =
        root.and_then(|d| d.v1.get("cpuacct")).and_then(|d| r.read(&d.join("cpuacct.usage")).and_then(parse::single));
    let v2 = root
        .and_then(|d| d.v2.as_deref())
        .and_then(|d| r.read(&d.join("cpu.stat")).and_then(|t| parse::flat_keyed(t, "usage_usec")));
    let ticks = rustix::param::clock_ticks_per_second();
    let usage = cpuacct.or(v2.map(|us| us * 1000)).or(busy_jiffies.map(|j| j * (1_000_000_000 / ticks.max(1))));
    int(&mut set, "cpu/usage", usage);
    let cpus = std::thread::available_parallelism().map(|n| n.get() as u64).ok();
    let online = r.read(Path::new("/sys/devices/system/cpu/online")).and_then(count_cpus).or(cpus);
    int(&mut set, "cpu/limit", online.map(|n| n * 1000));
    if let Some(l) = r.read_for("cpu/load", &proc.join("loadavg")).and_then(parse::loadavg_1m) {
        set.set("cpu/load", MetricValue::Int((l * 1000.0).round() as i64));
    }

    if let Some(t) = r.read_for("memory/usage", &proc.join("meminfo")) {
        let total = parse::meminfo(t, "MemTotal");
        let usage = total.zip(parse::meminfo(t, "MemFree")).map(|(t, f)| t.saturating_sub(f));
        let inactive = parse::meminfo(t, "Inactive(file)");
        let (rss, cache) = (parse::meminfo(t, "AnonPages"), parse::meminfo(t, "Cached"));
        int(&mut set, "memory/usage", usage);
        int(&mut set, "memory/working_set", usage.zip(inactive).map(|(u, i)| u.saturating_sub(i)));
        int(&mut set, "memory/rss", rss);
        int(&mut set, "memory/cache", cache);
        int(&mut set, "memory/limit", total);
    }
    if let Some(t) = r.read_for("memory/page_faults", &proc.join("vmstat")) {
        let (pf, maj, oom) =
            (parse::flat_keyed(t, "pgfault"), parse::flat_keyed(t, "pgmajfault"), parse::flat_keyed(t, "oom_kill"));
        int(&mut set, "memory/page_faults", pf);
        int(&mut set, "memory/major_page_faults", maj);
        int(&mut set, "memory/oom_kills", oom);
    }
    add_psi(&mut set, r, |resource| proc.join("pressure").join(resource));

    // The host's own network namespace: pid 1's, so this is right even when heapster runs in a container.
    let net = r
        .read(&proc.join("1/net/dev"))
        .map(str::to_owned)
        .or_else(|| r.read(&proc.join("self/net/dev")).map(str::to_owned));
    match net {
        Some(t) => add_network(&mut set, parse::net_dev_total(&t)),
        None => r.missing.push(("network/rx", "cannot read /proc/1/net/dev".into())),
    }

    read_filesystems(mounts, &mut set);
    // Whole disks that have done any I/O (skips idle loop and ram devices).
    if let Some(t) = r.read_for("disk/io_read_bytes", &proc.join("diskstats")) {
        let disks = parse::diskstats(t)
            .into_iter()
            .filter(|(_, name, io)| Path::new("/sys/block").join(name).exists() && io.read_bytes + io.write_bytes > 0)
            .map(|(id, _, io)| (ctx.device_name(&id), io));
        add_disk_io(&mut set, disks);
    }
    set.scrape_time = now_ms();
    if set.create_time > 0 {
        set.set("uptime", MetricValue::Int((set.scrape_time - set.create_time).max(0)));
    }
    set
}

/// `0-3,6` -> 5.
fn count_cpus(text: &str) -> Option<u64> {
    let mut n = 0;
    for part in text.trim().split(',') {
        n += match part.split_once('-') {
            Some((a, b)) => b.parse::<u64>().ok()? - a.parse::<u64>().ok()? + 1,
            None => part.parse::<u64>().map(|_| 1).ok()?,
        };
    }
    Some(n)
}

/// filesystem/* for every mounted block device, labelled `resource_id=/dev/<name>`.
fn read_filesystems(mounts: &Mounts, set: &mut MetricSet) {
    for m in &mounts.block {
        let Ok(st) = rustix::fs::statvfs(&m.mount_point) else { continue };
        let frsize = st.f_frsize;
        let labels = Labels::from([(RESOURCE_ID.to_owned(), m.device.clone())]);
        let values = [
            ("filesystem/usage", st.f_blocks.saturating_sub(st.f_bfree) * frsize),
            ("filesystem/limit", st.f_blocks * frsize),
            ("filesystem/available", st.f_bavail * frsize),
            ("filesystem/inodes", st.f_files),
            ("filesystem/inodes_free", st.f_ffree),
        ];
        for (name, v) in values {
            set.add_labeled(name, labels.clone(), MetricValue::Int(v.min(i64::MAX as u64) as i64));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_lists() {
        assert_eq!(super::count_cpus("0-1\n"), Some(2));
        assert_eq!(super::count_cpus("0-3,6,8-9"), Some(7));
        assert_eq!(super::count_cpus("0"), Some(1));
    }
}
