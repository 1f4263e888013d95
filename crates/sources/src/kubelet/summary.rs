//! The kubelet's `GET /stats/summary` document (API group `stats/v1alpha1`), as serde types.
//!
//! Field names follow `k8s.io/kubelet/pkg/apis/stats/v1alpha1/types.go` exactly. Only what heapster reads (or may
//! soon read) is declared; serde skips every other field, so a newer kubelet that adds fields still decodes.
//!
//! Sample times are kept only where heapster reads them (CPU, memory, network, start times): parsing an RFC 3339
//! string is a good part of the decode cost, and filesystem, swap and PSI samples are taken with the CPU sample.
//!
//! Every number is an `Option`: the kubelet omits a value it could not read (`omitempty` on a pointer), and an
//! absent value must stay absent downstream rather than turn into a zero that looks like a real reading. Every
//! list may be `null` (a nil Go slice), which decodes as empty.

use chrono::{DateTime, Utc};
use heapster_model::LabelValue;
use serde::{Deserialize, Deserializer};

/// Decodes a Summary from the bytes of a response body, as the kubelet client does ([`crate::json`]).
///
/// Takes a slice rather than a reader because reading the whole body first and then parsing is about 1.7x faster
/// than `from_reader` (measured, see NOTES-ECOSYSTEM.md), and the body must be bounded anyway.
pub fn decode(bytes: &[u8]) -> Result<Summary, serde_json::Error> {
    crate::json::from_slice(bytes)
}

/// An RFC 3339 time through chrono's own RFC 3339 parser. serde's `DateTime` goes through `FromStr`, which walks a
/// generic format description: about 1 % of heapster's CPU at 2,000 nodes. Anything that parser refuses is given
/// to `FromStr` as before, so no time that decoded before fails now.
fn rfc3339<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    struct Time;
    impl<'de> serde::de::Visitor<'de> for Time {
        type Value = Option<DateTime<Utc>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an RFC 3339 time")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            if let Some(t) = utc_seconds(s) {
                return Ok(Some(t));
            }
            let t = DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).or_else(|_| s.parse());
            t.map(Some).map_err(E::custom)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
    }
    d.deserialize_option(Time)
}

/// The kubelet's own form of a time, `2023-11-10T06:20:43Z` or with a fraction (`06:20:43.123456789Z`), read
/// directly; `None` for anything else (another offset, a leap second, a malformed field), which goes to chrono.
///
/// heapster reads four times per pod and three per container: chrono's RFC 3339 parser (a date validated through
/// its calendar tables) was about 1 % of heapster's CPU at 1,000 nodes.
fn utc_seconds(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        b.get(range)?.iter().try_fold(0i64, |n, &c| c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0')))
    };
    let shape = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if b.len() < 20 || shape.iter().any(|&(i, c)| b[i] != c) || b[b.len() - 1] != b'Z' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let nanos = match &b[19..b.len() - 1] {
        [] => 0,
        [b'.', frac @ ..] if (1..=9).contains(&frac.len()) => {
            digits(20..20 + frac.len())? * 10i64.pow(9 - frac.len() as u32)
        }
        _ => return None,
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    DateTime::from_timestamp(days * 86_400 + hour * 3_600 + minute * 60 + second, nanos as u32)
}

/// A Go nil slice marshals as `null`; treat it like `[]`.
fn nullable_vec<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// The whole response: one node and the pods running on it.
///
/// `node` is required: every kubelet sends it, and without it any JSON object (such as an API server's `Status`
/// error body, when scraping through the proxy) would pass for an empty Summary.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Summary {
    pub node: NodeStats,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub pods: Vec<PodStats>,
}

/// Node-wide figures plus the kubelet's system containers (`kubelet`, `runtime`, `misc`, `pods`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NodeStats {
    pub node_name: String,
    /// Absent on old kubelets and on nodes where the kubelet could not find its own cgroups.
    #[serde(deserialize_with = "nullable_vec")]
    pub system_containers: Vec<ContainerStats>,
    /// When node-level collection (re)started, usually the kubelet's start, not the machine's boot.
    #[serde(deserialize_with = "rfc3339")]
    pub start_time: Option<DateTime<Utc>>,
    pub cpu: Option<CpuStats>,
    pub memory: Option<MemoryStats>,
    pub network: Option<NetworkStats>,
    /// The filesystem holding the kubelet's root directory (nodefs).
    pub fs: Option<FsStats>,
    pub runtime: Option<RuntimeStats>,
    pub rlimit: Option<RlimitStats>,
    pub swap: Option<SwapStats>,
    /// Only PSI so far (kubelet 1.33+ on cgroup v2).
    pub io: Option<IoStats>,
}

/// The container runtime's filesystems.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RuntimeStats {
    pub image_fs: Option<FsStats>,
    /// Where writable layers live when split from the image filesystem (kubelet 1.29+).
    pub container_fs: Option<FsStats>,
}

/// Process-count limits of the whole node. Signed, as upstream declares them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RlimitStats {
    pub maxpid: Option<i64>,
    pub curproc: Option<i64>,
}

/// One pod: its own cgroup's figures (kubelet 1.9+), its network namespace, its volumes and its containers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodStats {
    pub pod_ref: PodReference,
    #[serde(deserialize_with = "rfc3339")]
    pub start_time: Option<DateTime<Utc>>,
    /// May hold two entries with one name while a restarted container's predecessor is still being reported.
    #[serde(deserialize_with = "nullable_vec")]
    pub containers: Vec<ContainerStats>,
    pub cpu: Option<CpuStats>,
    pub memory: Option<MemoryStats>,
    pub network: Option<NetworkStats>,
    #[serde(rename = "volume", deserialize_with = "nullable_vec")]
    pub volumes: Vec<VolumeStats>,
    /// Containers' writable layers, their logs and emptyDir volumes together.
    #[serde(rename = "ephemeral-storage")]
    pub ephemeral_storage: Option<FsStats>,
    #[serde(rename = "process_stats")]
    pub process_stats: Option<ProcessStats>,
    pub swap: Option<SwapStats>,
    pub io: Option<IoStats>,
}

/// Which pod a [`PodStats`] describes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
/// Decoded straight into label values: each becomes a label of the pod's set and of each of its containers'.
pub struct PodReference {
    pub name: LabelValue,
    pub namespace: LabelValue,
    pub uid: LabelValue,
}

/// Number of processes in a pod.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProcessStats {
    pub process_count: Option<u64>,
}

/// One container of a pod, or one system container of the node.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerStats {
    /// Decoded straight into the `container_name` label's value.
    pub name: LabelValue,
    /// When collection for this container (re)started: a restart shows as a new start time.
    #[serde(deserialize_with = "rfc3339")]
    pub start_time: Option<DateTime<Utc>>,
    pub cpu: Option<CpuStats>,
    pub memory: Option<MemoryStats>,
    #[serde(deserialize_with = "nullable_vec")]
    pub accelerators: Vec<AcceleratorStats>,
    /// The container's writable layer.
    pub rootfs: Option<FsStats>,
    pub logs: Option<FsStats>,
    #[serde(deserialize_with = "nullable_vec")]
    pub user_defined_metrics: Vec<UserDefinedMetric>,
    pub swap: Option<SwapStats>,
    pub io: Option<IoStats>,
}

/// Traffic counters of one network interface, as listed in `interfaces` (its `name` is not read).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct InterfaceStats {
    rx_bytes: Option<u64>,
    rx_errors: Option<u64>,
    tx_bytes: Option<u64>,
    tx_errors: Option<u64>,
}

/// The sum of every listed interface's counters, each absent when no interface reports it; what heapster reads of
/// `interfaces` (a counter the inline block lacks). Summed as the list is decoded: a vector of interfaces with
/// their names, three per pod, was 2 % of heapster's CPU at 1,000 nodes, for a fallback rarely taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InterfaceSums {
    pub rx_bytes: Option<u64>,
    pub rx_errors: Option<u64>,
    pub tx_bytes: Option<u64>,
    pub tx_errors: Option<u64>,
}

impl InterfaceSums {
    fn add(&mut self, i: InterfaceStats) {
        let add = |sum: &mut Option<u64>, v: Option<u64>| {
            if let Some(v) = v {
                *sum = Some(sum.map_or(v, |s| s.saturating_add(v)));
            }
        };
        add(&mut self.rx_bytes, i.rx_bytes);
        add(&mut self.rx_errors, i.rx_errors);
        add(&mut self.tx_bytes, i.tx_bytes);
        add(&mut self.tx_errors, i.tx_errors);
    }
}

impl<'de> Deserialize<'de> for InterfaceSums {
    /// A list of interfaces (or `null`, a nil Go slice), summed.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Sums;
        impl<'de> serde::de::Visitor<'de> for Sums {
            type Value = InterfaceSums;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of network interfaces")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<InterfaceSums, A::Error> {
                let mut sums = InterfaceSums::default();
                while let Some(i) = seq.next_element::<InterfaceStats>()? {
                    sums.add(i);
                }
                Ok(sums)
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<InterfaceSums, E> {
                Ok(InterfaceSums::default())
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<InterfaceSums, E> {
                Ok(InterfaceSums::default())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<InterfaceSums, D::Error> {
                d.deserialize_seq(self)
            }
        }
        d.deserialize_option(Sums)
    }
}

/// A network namespace's counters: the default interface's inline (the only layout before kubelet 1.8) plus, since
/// then, every interface in `interfaces`. Written out rather than `#[serde(flatten)]`ed, because flatten buffers the
/// whole object and made decoding measurably slower.
#[derive(Debug, Clone, Default)]
pub struct NetworkStats {
    pub time: Option<DateTime<Utc>>,
    /// The default interface (usually `eth0`).
    pub name: String,
    pub rx_bytes: Option<u64>,
    pub rx_errors: Option<u64>,
    pub tx_bytes: Option<u64>,
    pub tx_errors: Option<u64>,
    /// Every listed interface, summed; left empty (the list skipped, not decoded) when the inline counters before
    /// it were all there, since heapster reads the sums only for a counter the inline block lacks.
    pub interfaces: InterfaceSums,
}

impl NetworkStats {
    fn inline_complete(&self) -> bool {
        [self.rx_bytes, self.rx_errors, self.tx_bytes, self.tx_errors].iter().all(Option::is_some)
    }
}

/// Decoded by hand for one reason: the kubelet writes the inline counters before `interfaces` (Go's field order),
/// so once they are all read the list can be skipped instead of decoded. Decoding three interfaces per pod was
/// 12 % of a Summary's decode (`summary_decode` under callgrind); skipping still checks that it is well-formed JSON.
/// An object whose list comes first is decoded whole, as before.
impl<'de> Deserialize<'de> for NetworkStats {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(field_identifier, rename_all = "camelCase")]
        enum Field {
            Time,
            Name,
            RxBytes,
            RxErrors,
            TxBytes,
            TxErrors,
            Interfaces,
            #[serde(other)]
            Other,
        }
        struct Time(Option<DateTime<Utc>>);
        impl<'de> Deserialize<'de> for Time {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                rfc3339(d).map(Time)
            }
        }
        struct Network;
        impl<'de> serde::de::Visitor<'de> for Network {
            type Value = NetworkStats;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a network stats object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<NetworkStats, A::Error> {
                let mut n = NetworkStats::default();
                while let Some(field) = map.next_key::<Field>()? {
                    match field {
                        Field::Time => n.time = map.next_value::<Time>()?.0,
                        // `null` as Go writes no string, like the derived fields' `default`.
                        Field::Name => n.name = map.next_value::<Option<String>>()?.unwrap_or_default(),
                        Field::RxBytes => n.rx_bytes = map.next_value()?,
                        Field::RxErrors => n.rx_errors = map.next_value()?,
                        Field::TxBytes => n.tx_bytes = map.next_value()?,
                        Field::TxErrors => n.tx_errors = map.next_value()?,
                        Field::Interfaces if n.inline_complete() => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                        Field::Interfaces => n.interfaces = map.next_value()?,
                        Field::Other => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(n)
            }
        }
        const FIELDS: &[&str] = &["time", "name", "rxBytes", "rxErrors", "txBytes", "txErrors", "interfaces"];
        d.deserialize_struct("NetworkStats", FIELDS, Network)
    }
}

/// CPU time of a cgroup.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CpuStats {
    #[serde(deserialize_with = "rfc3339")]
    pub time: Option<DateTime<Utc>>,
    /// The kubelet's own rate over its housekeeping window; heapster derives rates itself from the counter.
    pub usage_nano_cores: Option<u64>,
    pub usage_core_nano_seconds: Option<u64>,
    pub psi: Option<PsiStats>,
}

/// Memory of a cgroup.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MemoryStats {
    #[serde(deserialize_with = "rfc3339")]
    pub time: Option<DateTime<Utc>>,
    /// Limit minus working set; absent when there is no limit.
    pub available_bytes: Option<u64>,
    pub usage_bytes: Option<u64>,
    pub working_set_bytes: Option<u64>,
    pub rss_bytes: Option<u64>,
    pub page_faults: Option<u64>,
    pub major_page_faults: Option<u64>,
    pub psi: Option<PsiStats>,
}

/// I/O of a cgroup. The Summary carries only pressure here, no byte counters.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct IoStats {
    pub psi: Option<PsiStats>,
}

/// Pressure stall information of one resource (kubelet 1.33+, cgroup v2 only).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PsiStats {
    pub full: Option<PsiData>,
    pub some: Option<PsiData>,
}

/// One PSI line. `total` is in microseconds, as the kernel reports it; the kubelet passes it through unchanged.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PsiData {
    pub total: Option<u64>,
    pub avg10: Option<f64>,
    pub avg60: Option<f64>,
    pub avg300: Option<f64>,
}

/// Swap of a cgroup or of the node.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SwapStats {
    pub swap_available_bytes: Option<u64>,
    pub swap_usage_bytes: Option<u64>,
}

/// One GPU or TPU attached to a container (the kubelet stopped filling these in 1.20+; kept for old nodes).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AcceleratorStats {
    pub make: String,
    pub model: String,
    pub id: String,
    pub memory_total: Option<u64>,
    pub memory_used: Option<u64>,
    /// Percent of the last sample period (10 s) during which the accelerator was busy.
    pub duty_cycle: Option<u64>,
}

/// A pod volume's filesystem figures, named. The [`FsStats`] fields are written out rather than flattened (see
/// [`NetworkStats`]); [`VolumeStats::fs`] gives them back as one value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VolumeStats {
    pub name: String,
    pub available_bytes: Option<u64>,
    pub capacity_bytes: Option<u64>,
    pub used_bytes: Option<u64>,
    pub inodes_free: Option<u64>,
    pub inodes: Option<u64>,
    pub inodes_used: Option<u64>,
}

impl VolumeStats {
    /// The volume's filesystem figures without its name.
    pub fn fs(&self) -> FsStats {
        FsStats {
            available_bytes: self.available_bytes,
            capacity_bytes: self.capacity_bytes,
            used_bytes: self.used_bytes,
            inodes_free: self.inodes_free,
            inodes: self.inodes,
            inodes_used: self.inodes_used,
        }
    }
}

/// Space and inodes of a filesystem, or of one user's share of it (`usedBytes` of a container rootfs counts only
/// that container's writable layer).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FsStats {
    pub available_bytes: Option<u64>,
    pub capacity_bytes: Option<u64>,
    pub used_bytes: Option<u64>,
    pub inodes_free: Option<u64>,
    pub inodes: Option<u64>,
    pub inodes_used: Option<u64>,
}

/// A metric a container exposes itself (cAdvisor custom metrics). Rare, and gone from recent kubelets.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct UserDefinedMetric {
    pub name: String,
    /// `gauge`, `cumulative` or `delta`.
    #[serde(rename = "type")]
    pub metric_type: String,
    pub units: String,
    pub value: Option<f64>,
}

#[cfg(test)]
mod time_tests {
    use super::*;

    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct T {
        #[serde(deserialize_with = "rfc3339")]
        time: Option<DateTime<Utc>>,
    }

    fn time(json: &str) -> Result<Option<DateTime<Utc>>, serde_json::Error> {
        serde_json::from_str::<T>(json).map(|t| t.time)
    }

    #[test]
    fn times_decode_as_chrono_did() {
        for s in [
            "2023-10-05T12:34:56Z",
            "2023-10-05T12:34:56.123456789+02:00",
            "2024-02-29T23:59:60Z",
            "2024-02-29T23:59:59.5Z",
            "2023-11-10T06:20:43.000001Z",
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999Z",
            "2000-02-29T00:00:00Z",
            "2100-12-31T23:59:59.123456789Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
        ] {
            let want: Option<DateTime<Utc>> = s.parse().ok();
            assert_eq!(time(&format!(r#"{{"time":"{s}"}}"#)).unwrap(), want, "{s}");
            if s.ends_with('Z') && !s.contains(":60") {
                assert_eq!(utc_seconds(s), want, "{s}: the kubelet's form is read without chrono");
            }
        }
        assert_eq!(time("{}").unwrap(), None);
        assert_eq!(time(r#"{"time":null}"#).unwrap(), None);
        for bad in ["2023-02-29T00:00:00Z", "2023-13-01T00:00:00Z", "2023-10-05T24:00:00Z", "2023-10-05T12:34:5xZ"] {
            assert!(time(&format!(r#"{{"time":"{bad}"}}"#)).is_err(), "{bad}");
        }
        assert!(time(r#"{"time":"yesterday"}"#).is_err());
        assert!(time(r#"{"time":5}"#).is_err());
    }
}

#[cfg(test)]
mod interface_tests {
    use super::*;

    fn sums(json: &str) -> InterfaceSums {
        serde_json::from_str::<NetworkStats>(json).unwrap().interfaces
    }

    #[test]
    fn interfaces_are_summed_per_counter_and_a_counter_none_reports_stays_absent() {
        let got = sums(
            r#"{"interfaces":[{"name":"eth0","rxBytes":5,"txBytes":1},{"name":"eth1","rxBytes":7,"rxErrors":null},
               {"name":"big","rxBytes":18446744073709551615}]}"#,
        );
        let want = InterfaceSums { rx_bytes: Some(u64::MAX), rx_errors: None, tx_bytes: Some(1), tx_errors: None };
        assert_eq!(got, want, "summed, saturating; rxErrors null everywhere stays absent");
        assert_eq!(sums(r#"{"interfaces":[{"rxBytes":5},{"rxBytes":7}]}"#).rx_bytes, Some(12));
        for empty in [r#"{"interfaces":null}"#, r#"{"interfaces":[]}"#, "{}"] {
            assert_eq!(sums(empty), InterfaceSums::default(), "{empty}");
        }
        assert!(serde_json::from_str::<NetworkStats>(r#"{"interfaces":{"rxBytes":1}}"#).is_err());
    }

    #[test]
    fn the_list_is_skipped_only_after_every_inline_counter() {
        let list = r#""interfaces":[{"name":"eth0","rxBytes":5,"rxErrors":1,"txBytes":6,"txErrors":2},{"rxBytes":7}]"#;
        let inline = r#""time":"2023-11-10T06:20:44Z","name":"eth0","rxBytes":5,"rxErrors":1,"txBytes":6,"txErrors":2"#;
        let n: NetworkStats = serde_json::from_str(&format!("{{{inline},{list}}}")).unwrap();
        assert_eq!((n.rx_bytes, n.rx_errors, n.tx_bytes, n.tx_errors), (Some(5), Some(1), Some(6), Some(2)));
        assert_eq!((n.name.as_str(), n.time.map(|t| t.timestamp())), ("eth0", Some(1_699_597_244)));
        assert_eq!(n.interfaces, InterfaceSums::default(), "complete inline counters: the list is not read");
        // The list before the counters, or a counter missing before it: summed, for the counter the block lacks.
        let n: NetworkStats = serde_json::from_str(&format!("{{{list},{inline}}}")).unwrap();
        assert_eq!((n.interfaces.rx_bytes, n.rx_bytes), (Some(12), Some(5)));
        let n: NetworkStats = serde_json::from_str(&format!(r#"{{"rxBytes":5,"txBytes":6,{list}}}"#)).unwrap();
        assert_eq!((n.interfaces.rx_errors, n.interfaces.tx_bytes), (Some(1), Some(6)));
        // A skipped list must still be JSON; unknown fields and nulls are taken as the derived decoders took them.
        assert!(serde_json::from_str::<NetworkStats>(&format!(r#"{{{inline},"interfaces":[{{]}}"#)).is_err());
        let n: NetworkStats =
            serde_json::from_str(r#"{"name":null,"rxBytes":null,"extra":{"a":[1]},"time":null}"#).unwrap();
        assert_eq!((n.name.as_str(), n.rx_bytes, n.time), ("", None, None));
        assert!(serde_json::from_str::<NetworkStats>(r#"{"rxBytes":"5"}"#).is_err());
    }
}
