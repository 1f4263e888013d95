//! cAdvisor's v1.3 REST API documents (`/api/v1.3/subcontainers/`, `/containers/`, `/machine/`) as serde types.
//!
//! Both directions use these: the `cadvisor` source decodes them from plain hosts (Heapster's CoreOS mode), and the
//! HTTP API encodes them so that one heapster can scrape another. Keeping one definition here, in the crate both
//! depend on, means the two sides cannot drift apart. They are plain data with no I/O, like the rest of this crate.
//!
//! Field names follow `github.com/google/cadvisor/info/v1` (`container.go`, `machine.go`). Only what heapster
//! reads or serves is declared; serde skips every other field, so newer cAdvisors still decode.
//!
//! Numbers are `Option`s. cAdvisor writes most of them without `omitempty`, so a zero may mean "unknown"; an
//! `Option` at least keeps a value that is not in the document from turning into a zero that looks like a reading.
//! Go's nil slices and maps arrive as `null` and decode as empty.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// A Go nil slice or map marshals as `null`; treat it like an empty one.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Go's zero `time.Time` (`0001-01-01T00:00:00Z`) means "not known"; anything before 1970 is taken as that.
pub fn known_time(t: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    t.filter(|t| t.timestamp() > 0)
}

/// Names one container: the cgroup path (`/`, `/system.slice/docker.service`, `/docker/<id>`) plus what the
/// runtime calls it. Also the element type of [`ContainerInfo::subcontainers`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerReference {
    /// The runtime's ID (a Docker container ID); empty for raw cgroups.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The cgroup path, absolute: `/` is the whole machine.
    pub name: String,
    /// Other names: for Docker, the container's name (`k8s_<container>.<hash>_<pod>_<ns>_<uid>_<n>`) and its ID.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Which runtime named it (`docker`); empty for raw cgroups.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Container labels; Kubernetes' `io.kubernetes.pod.name` and friends say which pod a container belongs to.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// One container with its spec and its recent samples (`/api/v1.3/subcontainers/` answers an array of them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerInfo {
    #[serde(flatten)]
    pub reference: ContainerReference,
    /// Direct children, by name only.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub subcontainers: Vec<ContainerReference>,
    pub spec: ContainerSpec,
    /// Samples, oldest first (cAdvisor keeps about a minute of them at 1 s housekeeping).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub stats: Vec<ContainerStats>,
}

impl ContainerInfo {
    /// The newest sample, by timestamp rather than position, so an unsorted array still gives the right one.
    pub fn newest_stats(&self) -> Option<&ContainerStats> {
        self.stats.iter().max_by_key(|s| s.timestamp)
    }
}

/// What a container is and which resources cAdvisor measures for it (`has_*`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerSpec {
    /// When the container (its cgroup) was created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<DateTime<Utc>>,
    /// The runtime's labels, repeated here by cAdvisor.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `Some(false)` means cAdvisor does not measure CPU for this container: its `cpu` figures are not readings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_cpu: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_memory: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemorySpec>,
    /// False for containers in the host's network namespace, whose `network` block is all zeros.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_network: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_filesystem: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_diskio: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_custom_metrics: Option<bool>,
    /// The container's image, for `container_base_image`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image: String,
}

/// Whether a `has_*` flag lets its figures through: only an explicit `false` stops them, so a document that leaves
/// the flags out is still read.
pub fn has(flag: Option<bool>) -> bool {
    flag != Some(false)
}

/// CPU settings of a cgroup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuSpec {
    /// CPU shares (1024 = one core's weight): a relative weight, which Kubernetes sets from the CPU request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_limit: Option<u64>,
    /// CPUs the container may run on (`0-1`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mask: String,
    /// CFS quota and period, in µs: `quota / period` cores is the hard limit. Absent or 0 when unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
}

/// Memory settings of a cgroup. "Unlimited" is a huge number (2^64-1, or 2^63 rounded to pages on cgroup v1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemorySpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_limit: Option<u64>,
}

/// One sample of a container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerStats {
    /// When cAdvisor took the sample: the set's `scrape_time`.
    pub timestamp: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diskio: Option<DiskIoStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkStats>,
    /// One entry per filesystem (device) the container uses.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub filesystem: Vec<FsStats>,
}

/// CPU figures of one sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<CpuUsage>,
    /// CFS throttling (cAdvisor 0.21+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cfs: Option<CpuCfs>,
    /// Runnable + uninterruptible tasks x 1000, smoothed; 0 unless cAdvisor runs with its load reader.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_average: Option<i64>,
}

/// Cumulative CPU time, in ns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<u64>,
}

/// CFS bandwidth control: how often the quota throttled the container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuCfs {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub periods: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttled_periods: Option<u64>,
    /// Nanoseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttled_time: Option<u64>,
}

/// Memory figures of one sample, in bytes (page faults in counts).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_set: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failcnt: Option<u64>,
    /// Page faults of this cgroup alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_data: Option<MemoryData>,
    /// Page faults of this cgroup and its descendants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hierarchical_data: Option<MemoryData>,
}

/// Page-fault counters (`memory.stat` pgfault and pgmajfault).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pgfault: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pgmajfault: Option<u64>,
}

/// Counters of one network interface.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InterfaceStats {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_errors: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_errors: Option<u64>,
}

/// The container's network namespace: the inline counters are its default interface (kept for old clients),
/// `interfaces` lists every interface.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkStats {
    #[serde(flatten)]
    pub default: InterfaceStats,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceStats>,
}

/// Usage of one filesystem.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FsStats {
    /// The block device (`/dev/sda1`): heapster's `resource_id`.
    pub device: String,
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub fs_type: String,
    /// Size of the filesystem in bytes (Go's `Limit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available: Option<u64>,
    /// Whether `inodes` and `inodes_free` are readings (cAdvisor 0.24+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_inodes: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inodes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inodes_free: Option<u64>,
}

/// Block-I/O counters, per device. heapster reads `io_service_bytes` (`Read`, `Write`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiskIoStats {
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes: Vec<PerDiskStats>,
}

/// One device's counters, keyed `Read`, `Write`, `Sync`, `Async`, `Total`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PerDiskStats {
    /// The device's name (`/dev/sda`), when cAdvisor knows it (newer versions); else only major:minor.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub device: String,
    pub major: u64,
    pub minor: u64,
    #[serde(deserialize_with = "nullable")]
    pub stats: BTreeMap<String, u64>,
}

impl PerDiskStats {
    /// heapster's `resource_id` for this device: its name, or `major:minor` when cAdvisor did not give one.
    pub fn resource_id(&self) -> String {
        if self.device.is_empty() { format!("{}:{}", self.major, self.minor) } else { self.device.clone() }
    }
}

/// `/api/v1.3/machine/`: the host's size. Fetched rarely, since it changes only with hardware.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MachineInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_cores: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_frequency_khz: Option<u64>,
    /// Bytes of RAM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_capacity: Option<u64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub machine_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub system_uuid: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub boot_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cloud_provider: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub instance_type: String,
    /// The cloud instance (`i-abcabcab`): heapster's `host_id`. cAdvisor writes `None` when it does not know.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub instance_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_and_missing_fields_decode_as_absent() {
        let c: ContainerInfo = serde_json::from_str(
            r#"{"name":"/","aliases":null,"labels":null,"subcontainers":null,"spec":{"labels":null},
                "stats":[{"timestamp":"2016-06-17T16:07:50.026851815Z","filesystem":null,"memory":{"usage":5}}]}"#,
        )
        .unwrap();
        assert_eq!(c.reference.name, "/");
        let s = c.newest_stats().unwrap();
        assert_eq!(s.memory.as_ref().unwrap().usage, Some(5));
        assert_eq!(s.memory.as_ref().unwrap().rss, None);
        assert!(s.cpu.is_none() && s.filesystem.is_empty());
        assert!(has(c.spec.has_cpu), "an absent flag does not hide figures");
    }

    #[test]
    fn round_trips_through_json() {
        let c = ContainerInfo {
            reference: ContainerReference { name: "/system.slice/a.service".into(), ..Default::default() },
            spec: ContainerSpec { has_cpu: Some(true), ..Default::default() },
            stats: vec![ContainerStats {
                timestamp: Some("2020-01-01T00:00:00.5Z".parse().unwrap()),
                cpu: Some(CpuStats {
                    usage: Some(CpuUsage { total: Some(u64::MAX), ..Default::default() }),
                    ..Default::default()
                }),
                network: Some(NetworkStats {
                    default: InterfaceStats { name: "eth0".into(), rx_bytes: Some(7), ..Default::default() },
                    interfaces: Vec::new(),
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains(r#""rx_bytes":7"#) && json.contains(r#""name":"eth0""#), "{json}");
        assert!(!json.contains("null"), "absent values are left out, not null: {json}");
        assert_eq!(serde_json::from_str::<ContainerInfo>(&json).unwrap(), c);
    }

    #[test]
    fn go_zero_times_are_unknown() {
        assert_eq!(known_time(Some("0001-01-01T00:00:00Z".parse().unwrap())), None);
        assert!(known_time(Some("2016-06-03T18:08:06.908607Z".parse().unwrap())).is_some());
    }
}
