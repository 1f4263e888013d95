//! Parsers of the kernel's text files, as pure functions over their contents so that every format (cgroup v1,
//! cgroup v2, procfs) is tested from recorded files, including the ones this machine does not have.

/// A `key value` per line file (`memory.stat`, `cpu.stat`, `memory.events`, `/proc/vmstat`): the value of `key`.
pub fn flat_keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        if k == key { v.trim().parse().ok() } else { None }
    })
}

/// A file holding one number (`cpuacct.usage`, `memory.usage_in_bytes`, `memory.current`).
pub fn single(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// v1 `memory.limit_in_bytes`: the kernel's "unlimited" is a page-rounded `i64::MAX`, reported as absent.
pub fn v1_memory_limit(text: &str) -> Option<u64> {
    single(text).filter(|&v| v < (1 << 62))
}

/// v2 `memory.max`: `max` means unlimited, reported as absent.
pub fn v2_max(text: &str) -> Option<u64> {
    match text.trim() {
        "max" => None,
        v => v.parse().ok(),
    }
}

/// CPU limit in millicores from a CFS quota and period (both in µs); `None` when there is no quota.
pub fn cfs_millicores(quota_us: i64, period_us: u64) -> Option<i64> {
    (quota_us > 0 && period_us > 0).then(|| quota_us * 1000 / period_us as i64)
}

/// v2 `cpu.max` (`"max 100000"` or `"50000 100000"`) in millicores.
pub fn v2_cpu_max(text: &str) -> Option<i64> {
    let mut it = text.split_whitespace();
    let quota = it.next()?.parse::<i64>().ok()?;
    let period = it.next()?.parse::<u64>().ok()?;
    cfs_millicores(quota, period)
}

/// PSI files (`cpu.pressure`, `/proc/pressure/io`): the `total=` microseconds of the `some` and `full` lines.
pub fn psi_totals(text: &str) -> (Option<u64>, Option<u64>) {
    let mut some = None;
    let mut full = None;
    for line in text.lines() {
        let total = line.split_whitespace().find_map(|f| f.strip_prefix("total=")).and_then(|v| v.parse().ok());
        if line.starts_with("some ") {
            some = total;
        } else if line.starts_with("full ") {
            full = total;
        }
    }
    (some, full)
}

/// Bytes read and written per device (`major:minor`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeviceIo {
    pub read_bytes: u64,
    pub write_bytes: u64,
}

/// v1 `blkio.throttle.io_service_bytes`: lines `8:0 Read 1234`, `8:0 Write 5678`, ..., `Total N`.
pub fn v1_blkio(text: &str) -> Vec<(String, DeviceIo)> {
    let mut out: Vec<(String, DeviceIo)> = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(dev), Some(op), Some(v)) = (f.next(), f.next(), f.next()) else { continue };
        let Ok(v) = v.parse::<u64>() else { continue };
        let i = match out.iter().position(|(d, _)| d == dev) {
            Some(i) => i,
            None => {
                out.push((dev.to_owned(), DeviceIo::default()));
                out.len() - 1
            }
        };
        match op {
            "Read" => out[i].1.read_bytes += v,
            "Write" => out[i].1.write_bytes += v,
            _ => {}
        }
    }
    out
}

/// v2 `io.stat`: lines `8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0`.
pub fn v2_io_stat(text: &str) -> Vec<(String, DeviceIo)> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let dev = f.next()?;
            let mut io = DeviceIo::default();
            for kv in f {
                match kv.split_once('=') {
                    Some(("rbytes", v)) => io.read_bytes = v.parse().ok()?,
                    Some(("wbytes", v)) => io.write_bytes = v.parse().ok()?,
                    _ => {}
                }
            }
            Some((dev.to_owned(), io))
        })
        .collect()
}

/// Counters of one interface from `/proc/<pid>/net/dev`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NetCounters {
    pub rx_bytes: u64,
    pub rx_errors: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
}

/// Sum over every interface of `/proc/<pid>/net/dev` but loopback, as cAdvisor counts a container's traffic.
pub fn net_dev_total(text: &str) -> NetCounters {
    let mut t = NetCounters::default();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else { continue };
        if name.trim() == "lo" {
            continue;
        }
        let v: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        if v.len() < 16 {
            continue;
        }
        t.rx_bytes += v[0];
        t.rx_errors += v[2];
        t.tx_bytes += v[8];
        t.tx_errors += v[10];
    }
    t
}

/// `/proc/diskstats`: (major:minor, name, bytes read, bytes written). Sectors are 512 bytes whatever the device.
pub fn diskstats(text: &str) -> Vec<(String, String, DeviceIo)> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            let read = f[5].parse::<u64>().ok()? * 512;
            let write = f[9].parse::<u64>().ok()? * 512;
            Some((format!("{}:{}", f[0], f[1]), f[2].to_owned(), DeviceIo { read_bytes: read, write_bytes: write }))
        })
        .collect()
}

/// `/proc/meminfo`: the value of `key` in bytes (the file says kB).
pub fn meminfo(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(kb * 1024)
    })
}

/// `/proc/stat`: total non-idle CPU time in jiffies (user, nice, system, irq, softirq, steal) and `btime`.
pub fn proc_stat(text: &str) -> (Option<u64>, Option<i64>) {
    let mut busy = None;
    let mut btime = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("cpu ") {
            let v: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            if v.len() >= 8 {
                busy = Some(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
            }
        } else if let Some(rest) = line.strip_prefix("btime ") {
            btime = rest.trim().parse().ok();
        }
    }
    (busy, btime)
}

/// `/proc/loadavg`: the one-minute load average.
pub fn loadavg_1m(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// State letter of `/proc/<pid>/stat` (the field after the parenthesised command, which may hold spaces).
pub fn task_state(stat: &str) -> Option<char> {
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_MEMORY_STAT: &str = "cache 9203712\nrss 4808704\npgfault 46055\npgmajfault 0\ninactive_file 0\n\
        hierarchical_memory_limit 9223372036854771712\ntotal_cache 18931712\ntotal_rss 9129984\n\
        total_pgfault 14596301\ntotal_pgmajfault 4085\ntotal_inactive_anon 4108288\ntotal_inactive_file 5513216\n";

    /// Recorded from a cgroup v2 container (kernel 6.1) with its memory controller enabled.
    const V2_MEMORY_STAT: &str = "anon 212963328\nfile 4730880\nkernel 1327104\nkernel_stack 49152\n\
        pagetables 573440\nshmem 0\nfile_mapped 2465792\nfile_dirty 0\nactive_anon 212942848\n\
        inactive_anon 0\nactive_file 2596864\ninactive_file 2134016\nunevictable 0\npgfault 53742\n\
        pgmajfault 11\n";

    #[test]
    fn memory_stat_v1_and_v2() {
        assert_eq!(flat_keyed(V1_MEMORY_STAT, "total_inactive_file"), Some(5_513_216));
        assert_eq!(flat_keyed(V1_MEMORY_STAT, "total_rss"), Some(9_129_984));
        assert_eq!(flat_keyed(V1_MEMORY_STAT, "rss"), Some(4_808_704), "keys match whole words");
        assert_eq!(flat_keyed(V2_MEMORY_STAT, "inactive_file"), Some(2_134_016));
        assert_eq!(flat_keyed(V2_MEMORY_STAT, "anon"), Some(212_963_328));
        assert_eq!(flat_keyed(V2_MEMORY_STAT, "pgmajfault"), Some(11));
        assert_eq!(flat_keyed(V2_MEMORY_STAT, "total_rss"), None);
    }

    #[test]
    fn cpu_stat_v1_and_v2() {
        let v1 = "nr_periods 120\nnr_throttled 31\nthrottled_time 2851000000\nnr_bursts 0\nburst_time 0\n";
        assert_eq!(flat_keyed(v1, "nr_throttled"), Some(31));
        assert_eq!(flat_keyed(v1, "throttled_time"), Some(2_851_000_000));
        let v2 = "usage_usec 518668025\nuser_usec 419184661\nsystem_usec 99483364\nnr_periods 7\n\
            nr_throttled 3\nthrottled_usec 91234\n";
        assert_eq!(flat_keyed(v2, "usage_usec"), Some(518_668_025));
        assert_eq!(flat_keyed(v2, "throttled_usec"), Some(91_234));
    }

    #[test]
    fn limits() {
        assert_eq!(v1_memory_limit("9223372036854771712\n"), None);
        assert_eq!(v1_memory_limit("268435456\n"), Some(268_435_456));
        assert_eq!(v2_max("max\n"), None);
        assert_eq!(v2_max("536870912\n"), Some(536_870_912));
        assert_eq!(v2_cpu_max("max 100000\n"), None);
        assert_eq!(v2_cpu_max("50000 100000\n"), Some(500));
        assert_eq!(v2_cpu_max("250000 100000\n"), Some(2500));
        assert_eq!(cfs_millicores(-1, 100_000), None);
        assert_eq!(cfs_millicores(150_000, 100_000), Some(1500));
    }

    #[test]
    fn pressure() {
        let cpu =
            "some avg10=0.00 avg60=0.13 avg300=0.05 total=2938056\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=17\n";
        assert_eq!(psi_totals(cpu), (Some(2_938_056), Some(17)));
        assert_eq!(psi_totals("some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n"), (Some(5), None));
    }

    #[test]
    fn block_io_v1_and_v2() {
        let v1 = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n8:0 Total 12288\n\
            253:0 Read 1\n253:0 Write 2\nTotal 12291\n";
        assert_eq!(
            v1_blkio(v1),
            vec![
                ("8:0".to_owned(), DeviceIo { read_bytes: 4096, write_bytes: 8192 }),
                ("253:0".to_owned(), DeviceIo { read_bytes: 1, write_bytes: 2 })
            ]
        );
        let v2 = "254:0 rbytes=1048576 wbytes=2097152 rios=10 wios=20 dbytes=0 dios=0\n";
        assert_eq!(
            v2_io_stat(v2),
            vec![("254:0".to_owned(), DeviceIo { read_bytes: 1_048_576, write_bytes: 2_097_152 })]
        );
        let disks = "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n 254       0 vda 9241 3210 812345 5234 \
            4412 9231 223344 8812 0 9120 14046 0 0 0 0 0 0\n";
        let d = diskstats(disks);
        assert_eq!(
            d[1],
            ("254:0".into(), "vda".into(), DeviceIo { read_bytes: 812_345 * 512, write_bytes: 223_344 * 512 })
        );
    }

    #[test]
    fn net_dev_skips_loopback_and_sums_the_rest() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
            face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
            lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0\n  \
            eth0: 1000 10 1 0 0 0 0 0 2000 20 2 0 0 0 0 0\n  \
            veth1: 500 5 0 0 0 0 0 0 700 7 0 0 0 0 0 0\n";
        assert_eq!(net_dev_total(text), NetCounters { rx_bytes: 1500, rx_errors: 1, tx_bytes: 2700, tx_errors: 2 });
    }

    #[test]
    fn procfs_files() {
        let info = "MemTotal:       24608392 kB\nMemFree:        23701932 kB\nInactive(file):   201236 kB\n";
        assert_eq!(meminfo(info, "MemTotal"), Some(24_608_392 * 1024));
        assert_eq!(meminfo(info, "Inactive(file)"), Some(201_236 * 1024));
        assert_eq!(meminfo(info, "Mem"), None);
        let stat = "cpu  100 5 50 1000 7 3 2 1 0 0\ncpu0 50 2 25 500 3 1 1 0 0 0\nbtime 1764039000\n";
        assert_eq!(proc_stat(stat), (Some(100 + 5 + 50 + 3 + 2 + 1), Some(1_764_039_000)));
        assert_eq!(loadavg_1m("0.52 0.31 0.20 2/171 4242\n"), Some(0.52));
        assert_eq!(task_state("4242 (sh -c (x)) R 1 4242 ..."), Some('R'));
        assert_eq!(task_state("17 (kworker/0:1) I 2 0"), Some('I'));
    }
}
