//! How metric sets are keyed, as in Heapster's `ms_keys.go`. Keys are what the model API and the store index by.

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// What kind of entity a metric set describes. Stored in the `type` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricSetType {
    PodContainer,
    Pod,
    #[serde(rename = "ns")]
    Namespace,
    Node,
    SysContainer,
    Cluster,
}

impl MetricSetType {
    pub const ALL: [MetricSetType; 6] = [
        MetricSetType::PodContainer,
        MetricSetType::Pod,
        MetricSetType::Namespace,
        MetricSetType::Node,
        MetricSetType::SysContainer,
        MetricSetType::Cluster,
    ];

    /// The value of the `type` label.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricSetType::PodContainer => "pod_container",
            MetricSetType::Pod => "pod",
            MetricSetType::Namespace => "ns",
            MetricSetType::Node => "node",
            MetricSetType::SysContainer => "sys_container",
            MetricSetType::Cluster => "cluster",
        }
    }

    /// The `type` label's value, shared: every set carries one, and one string per kind (and thread, so that
    /// scrape tasks on different cores do not contend for its count) costs no allocation per set.
    pub fn label_value(self) -> crate::LabelValue {
        thread_local! {
            static VALUES: [crate::LabelValue; 6] = MetricSetType::ALL.map(|t| crate::LabelValue::from(t.as_str()));
        }
        VALUES.with(|v| v[self as usize].clone())
    }
}

impl fmt::Display for MetricSetType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MetricSetType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        MetricSetType::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| format!("unknown metric set type {s:?}"))
    }
}

/// Concatenates `parts`. Keys are built for every set of every round (by sources, and by processors to find a
/// set's pod); `format!` cost several times what copying the pieces does.
fn concat(parts: &[&str]) -> String {
    let mut key = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        key.push_str(p);
    }
    key
}

pub fn pod_container_key(namespace: &str, pod: &str, container: &str) -> String {
    concat(&["namespace:", namespace, "/pod:", pod, "/container:", container])
}

pub fn pod_key(namespace: &str, pod: &str) -> String {
    concat(&["namespace:", namespace, "/pod:", pod])
}

pub fn namespace_key(namespace: &str) -> String {
    concat(&["namespace:", namespace])
}

pub fn node_key(node: &str) -> String {
    concat(&["node:", node])
}

pub fn node_container_key(node: &str, container: &str) -> String {
    concat(&["node:", node, "/container:", container])
}

pub fn cluster_key() -> String {
    "cluster".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_heapster() {
        assert_eq!(
            pod_container_key("kube-system", "dns", "kubedns"),
            "namespace:kube-system/pod:dns/container:kubedns"
        );
        assert_eq!(pod_key("a", "b"), "namespace:a/pod:b");
        assert_eq!(namespace_key("a"), "namespace:a");
        assert_eq!(node_key("n1"), "node:n1");
        assert_eq!(node_container_key("n1", "system.slice/docker"), "node:n1/container:system.slice/docker");
        assert_eq!(cluster_key(), "cluster");
    }

    #[test]
    fn types_round_trip() {
        for t in MetricSetType::ALL {
            assert_eq!(t.as_str().parse::<MetricSetType>().unwrap(), t);
        }
        assert!("bogus".parse::<MetricSetType>().is_err());
    }
}
