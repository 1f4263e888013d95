//! Where the cgroup hierarchies and block filesystems are, from `/proc/self/mountinfo`.
//!
//! Hosts differ: each v1 controller on its own (`cpu` and `cpuacct` apart, as on this machine), co-mounted
//! (`cpu,cpuacct`), hybrid (v1 plus an empty cgroup2 at `unified`), or pure cgroup2. Reading mountinfo instead of
//! assuming `/sys/fs/cgroup/<controller>` handles all of them.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The v1 controllers heapster reads.
pub const V1_CONTROLLERS: &[&str] = &["cpu", "cpuacct", "memory", "blkio"];

/// Cgroup hierarchies of this host.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Hierarchies {
    /// v1 controller -> mount point. Co-mounted controllers share a mount point.
    pub v1: BTreeMap<&'static str, PathBuf>,
    /// The cgroup2 mount, if any.
    pub v2: Option<PathBuf>,
}

impl Hierarchies {
    /// Every distinct mount point to walk for cgroups.
    pub fn roots(&self) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = self.v1.values().cloned().collect();
        roots.extend(self.v2.clone());
        roots.sort();
        roots.dedup();
        roots
    }
}

/// A mounted filesystem on a block device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMount {
    /// `/dev/vda`; becomes the `resource_id` label.
    pub device: String,
    pub mount_point: PathBuf,
    pub fs_type: String,
}

/// What mountinfo says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Mounts {
    pub cgroups: Hierarchies,
    /// One entry per device (its first mount), sorted by device.
    pub block: Vec<BlockMount>,
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the text of a mountinfo file.
pub fn parse_mountinfo(text: &str) -> Mounts {
    let mut m = Mounts::default();
    for line in text.lines() {
        // id parent major:minor root mount-point options [optional fields...] - fstype source super-options
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 5 || right.len() < 3 {
            continue;
        }
        let mount_point = PathBuf::from(unescape(left[4]));
        let (fs_type, source, super_opts) = (right[0], unescape(right[1]), right[2]);
        match fs_type {
            "cgroup" => {
                for opt in super_opts.split(',') {
                    if let Some(&c) = V1_CONTROLLERS.iter().find(|&&c| c == opt) {
                        m.cgroups.v1.entry(c).or_insert_with(|| mount_point.clone());
                    }
                }
            }
            "cgroup2" => {
                m.cgroups.v2.get_or_insert(mount_point);
            }
            _ if source.starts_with("/dev/") && !m.block.iter().any(|b| b.device == source) => {
                m.block.push(BlockMount { device: source, mount_point, fs_type: fs_type.to_owned() });
            }
            _ => {}
        }
    }
    m.block.sort_by(|a, b| a.device.cmp(&b.device));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine: every v1 controller apart, an empty cgroup2 at `unified`.
    const SEPARATE: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 27 254:0 /var/lib/x /mnt/bind rw,relatime - ext4 /dev/vda rw
";

    /// systemd's hybrid layout (Debian 10, Ubuntu 20.04): cpu and cpuacct co-mounted.
    const COMBINED: &str = "\
25 24 0:22 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw,nsdelegate
26 24 0:23 / /sys/fs/cgroup/systemd rw,nosuid shared:6 - cgroup cgroup rw,xattr,name=systemd
30 24 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpu,cpuacct
31 24 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,memory
29 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
40 29 8:17 / /data\\040disk rw,relatime shared:20 - xfs /dev/sdb1 rw
";

    /// A modern pure cgroup2 host.
    const PURE_V2: &str = "\
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
28 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
";

    #[test]
    fn separate_controllers() {
        let m = parse_mountinfo(SEPARATE);
        assert_eq!(m.cgroups.v1["cpu"], PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(m.cgroups.v1["cpuacct"], PathBuf::from("/sys/fs/cgroup/cpuacct"));
        assert_eq!(m.cgroups.v1.len(), 4, "name=systemd is not a controller we read");
        assert_eq!(m.cgroups.v2, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(m.cgroups.roots().len(), 5);
        assert_eq!(
            m.block,
            vec![BlockMount { device: "/dev/vda".into(), mount_point: "/".into(), fs_type: "ext4".into() }]
        );
    }

    #[test]
    fn combined_controllers_and_escaped_paths() {
        let m = parse_mountinfo(COMBINED);
        assert_eq!(m.cgroups.v1["cpu"], m.cgroups.v1["cpuacct"]);
        assert_eq!(m.cgroups.roots().len(), 3);
        assert_eq!(m.block[1].mount_point, PathBuf::from("/data disk"));
    }

    #[test]
    fn pure_v2() {
        let m = parse_mountinfo(PURE_V2);
        assert!(m.cgroups.v1.is_empty());
        assert_eq!(m.cgroups.roots(), vec![PathBuf::from("/sys/fs/cgroup")]);
        assert_eq!(m.block[0].device, "/dev/nvme0n1p2");
    }
}
