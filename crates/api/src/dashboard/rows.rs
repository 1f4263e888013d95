//! The rows behind the dashboard's lists: every node, namespace, pod and container of the store's newest batch,
//! with the names a search matches and, read on first use, the newest CPU and memory a list sorts by.
//!
//! # Cost
//! With 150,000 pods, one read of the store per set (its newest CPU, its labels) is most of a page's cost, so the
//! rows are built once per batch and shared by every request until a newer batch arrives ([`snapshot`]):
//! - one pass over the store's keys classifies every set (keys follow Heapster's scheme, see
//!   [`heapster_model::keys`]) for all four lists at once;
//! - the CPU and memory columns of a list are read on the first request that sorts by them, so a list sorted by
//!   name never pays for them;
//! - a pod's node comes from its `nodename` (else `hostname`) label, read alone ([`Store::label`]), one node name
//!   allocation shared by its pods.

use heapster_model::{Labels, MetricSetType, MetricValue, Timestamp, labels as l};
use heapster_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

/// Metric names the rows read; also the first series of the CPU and memory charts.
pub const CPU: &str = "cpu/usage_rate";
/// Working set rather than usage: what the kubelet evicts on and `kubectl top` shows.
pub const MEMORY: &str = "memory/working_set";

/// The dashboard's lists. Containers include the system containers (cgroups) of nodes, which are all the
/// containers a standalone heapster sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Nodes,
    Namespaces,
    Pods,
    Containers,
}

impl Kind {
    /// The list's path segment and the `kind` of its answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Nodes => "nodes",
            Kind::Namespaces => "namespaces",
            Kind::Pods => "pods",
            Kind::Containers => "containers",
        }
    }
}

/// One metric set as a list shows it. Lean on purpose (a key, byte ranges into it, a shared node name): with
/// 300,000 pods and containers, separate strings for every name doubled the rows' memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub key: Box<str>,
    pub set_type: MetricSetType,
    name: Span,
    namespace: Option<Span>,
    pod: Option<Span>,
    /// A node's or system container's node, from its key; a pod's or pod container's, from its labels. One
    /// allocation per node name, shared by its pods.
    node: Option<Arc<str>>,
}

/// A byte range of a row's key.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span(u32, u32);

impl Row {
    fn part(&self, span: Span) -> &str {
        &self.key[span.0 as usize..span.1 as usize]
    }

    /// The last part of the key: the node, namespace, pod or container name.
    pub fn name(&self) -> &str {
        self.part(self.name)
    }

    /// The namespace of a namespace, pod or pod container.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.map(|s| self.part(s))
    }

    /// The pod of a pod or pod container.
    pub fn pod(&self) -> Option<&str> {
        self.pod.map(|s| self.part(s))
    }

    /// The node a set runs on (a node is its own), when known.
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// Whether one of the row's names (namespace, pod, node, container) contains `lowercase`, ignoring case.
    pub fn mentions(&self, lowercase: &str) -> bool {
        if lowercase.is_empty() {
            return true;
        }
        [self.namespace(), self.pod(), self.node(), Some(self.name())]
            .into_iter()
            .flatten()
            .any(|hay| contains_ignoring_case(hay, lowercase))
    }
}

/// Kubernetes names are lowercase already (RFC 1123), so the usual case is a plain substring search without
/// allocating; other ASCII names compare bytes ignoring case, and the rest (cgroups may be named anything) are
/// lowercased first.
fn contains_ignoring_case(hay: &str, lowercase: &str) -> bool {
    if !hay.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
        return hay.contains(lowercase);
    }
    if hay.is_ascii() {
        let n = lowercase.as_bytes();
        return hay.as_bytes().windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    hay.to_lowercase().contains(lowercase)
}

/// The rows of one list as of one batch, sorted by key, and their value columns once read.
#[derive(Debug, Default)]
pub struct Rows {
    pub rows: Vec<Row>,
    cpu: OnceLock<Vec<Option<MetricValue>>>,
    memory: OnceLock<Vec<Option<MetricValue>>>,
}

impl Rows {
    /// Newest `cpu/usage_rate` of every row, by row index; read from the store on first use.
    pub fn cpu(&self, store: &Store) -> &[Option<MetricValue>] {
        self.cpu.get_or_init(|| self.column(store, CPU))
    }

    /// Newest `memory/working_set` of every row, by row index; read from the store on first use.
    pub fn memory(&self, store: &Store) -> &[Option<MetricValue>] {
        self.memory.get_or_init(|| self.column(store, MEMORY))
    }

    /// A column if a request already read it, so that displayed values are the ones a page was sorted by.
    pub fn cpu_if_read(&self) -> Option<&[Option<MetricValue>]> {
        self.cpu.get().map(Vec::as_slice)
    }

    /// As [`Rows::cpu_if_read`].
    pub fn memory_if_read(&self) -> Option<&[Option<MetricValue>]> {
        self.memory.get().map(Vec::as_slice)
    }

    fn column(&self, store: &Store, metric: &str) -> Vec<Option<MetricValue>> {
        let none = Labels::new();
        self.rows.iter().map(|r| store.latest(&r.key, metric, &none).map(|p| p.value)).collect()
    }
}

/// Every list as of one batch.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The store's newest batch when the rows were read; `None` for an empty store.
    pub timestamp: Option<Timestamp>,
    lists: [Rows; 4],
}

impl Snapshot {
    /// One list's rows.
    pub fn rows(&self, kind: Kind) -> &Rows {
        &self.lists[kind as usize]
    }
}

/// The snapshot of one store.
struct Cached {
    /// Weak, so a dropped store (tests make many) is never matched by a new one at the same address.
    store: Weak<Store>,
    snapshot: Arc<Snapshot>,
}

/// The snapshot of every store that was asked for. A global rather than a field of `ApiState`, so the cache costs
/// the rest of the API nothing; it holds one entry per live store (one in the binary).
static CACHE: Mutex<Vec<Cached>> = Mutex::new(Vec::new());

/// Every list as of the store's newest batch, built at most once per batch.
///
/// Blocks for the build (a few hundred milliseconds per 100,000 sets): call it off the async runtime. The lock is
/// held while building, so concurrent requests after a new batch wait for one build instead of each doing it.
pub fn snapshot(store: &Arc<Store>) -> Arc<Snapshot> {
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    cache.retain(|c| c.store.strong_count() > 0);
    let timestamp = store.latest_timestamp();
    let slot = cache.iter().position(|c| std::ptr::eq(c.store.as_ptr(), Arc::as_ptr(store)));
    if let Some(i) = slot
        && cache[i].snapshot.timestamp == timestamp
    {
        return cache[i].snapshot.clone();
    }
    if let Some(i) = slot {
        cache.swap_remove(i);
    }
    let snapshot = Arc::new(build(store, timestamp));
    cache.push(Cached { store: Arc::downgrade(store), snapshot: snapshot.clone() });
    snapshot
}

fn build(store: &Store, timestamp: Option<Timestamp>) -> Snapshot {
    let mut lists: [Vec<Row>; 4] = Default::default();
    let mut node_names: HashMap<Box<str>, Arc<str>> = HashMap::new();
    let mut intern = |name: &str| -> Arc<str> {
        match node_names.get(name) {
            Some(n) => n.clone(),
            None => node_names.entry(name.into()).or_insert_with(|| name.into()).clone(),
        }
    };
    for key in store.keys() {
        let Some((kind, set_type)) = classify(&key) else { continue };
        let node = match set_type {
            MetricSetType::Pod | MetricSetType::PodContainer => node_label(store, &key).map(|n| intern(&n)),
            _ => None,
        };
        lists[kind as usize].push(row(key, set_type, node, &mut intern));
    }
    Snapshot { timestamp, lists: lists.map(|rows| Rows { rows, ..Default::default() }) }
}

/// Which list a key belongs to, from its shape: `node:N`, `node:N/container:C`, `namespace:NS`,
/// `namespace:NS/pod:P`, `namespace:NS/pod:P/container:C`. The cluster set is in none.
fn classify(key: &str) -> Option<(Kind, MetricSetType)> {
    if let Some(rest) = key.strip_prefix("node:") {
        return Some(if rest.contains("/container:") {
            (Kind::Containers, MetricSetType::SysContainer)
        } else {
            (Kind::Nodes, MetricSetType::Node)
        });
    }
    let rest = key.strip_prefix("namespace:")?;
    Some(match rest.split_once("/pod:") {
        None => (Kind::Namespaces, MetricSetType::Namespace),
        Some((_, pod)) if pod.contains("/container:") => (Kind::Containers, MetricSetType::PodContainer),
        Some(_) => (Kind::Pods, MetricSetType::Pod),
    })
}

/// A pod's node as the pipeline labelled it (`nodename`, else `hostname`).
pub fn node_label(store: &Store, key: &str) -> Option<String> {
    [l::NODENAME, l::HOSTNAME].into_iter().filter_map(|name| store.label(key, name)).find(|n| !n.is_empty())
}

/// Splits a key into its names. Names of system containers contain `/` themselves (`system.slice/docker`), so
/// only the first `/container:` splits.
fn row(key: String, set_type: MetricSetType, node: Option<Arc<str>>, intern: &mut impl FnMut(&str) -> Arc<str>) -> Row {
    let span = |part: &str| {
        let start = part.as_ptr() as usize - key.as_ptr() as usize;
        Span(start as u32, (start + part.len()) as u32)
    };
    let (mut namespace, mut pod, mut node, mut name) = (None, None, node, span(&key));
    if let Some(rest) = key.strip_prefix("namespace:") {
        let (ns, rest) = rest.split_once("/pod:").map_or((rest, None), |(ns, r)| (ns, Some(r)));
        namespace = Some(span(ns));
        name = span(ns);
        if let Some(rest) = rest {
            let (p, c) = rest.split_once("/container:").map_or((rest, None), |(p, c)| (p, Some(c)));
            pod = Some(span(p));
            name = span(c.unwrap_or(p));
        }
    } else if let Some(rest) = key.strip_prefix("node:") {
        let (n, c) = rest.split_once("/container:").map_or((rest, None), |(n, c)| (n, Some(c)));
        node = Some(intern(n));
        name = span(c.unwrap_or(n));
    }
    Row { key: key.into_boxed_str(), set_type, name, namespace, pod, node }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row_of(key: &str, set_type: MetricSetType, node: Option<&str>) -> Row {
        row(key.to_owned(), set_type, node.map(Into::into), &mut |n: &str| n.into())
    }

    #[test]
    fn keys_split_into_names() {
        let r = row_of("namespace:ns/pod:p/container:c", MetricSetType::PodContainer, Some("n1"));
        assert_eq!((r.name(), r.namespace(), r.pod(), r.node()), ("c", Some("ns"), Some("p"), Some("n1")));
        let r = row_of("node:N1/container:system.slice/docker", MetricSetType::SysContainer, None);
        assert_eq!((r.name(), r.node(), r.pod(), r.namespace()), ("system.slice/docker", Some("N1"), None, None));
        let r = row_of("namespace:ns", MetricSetType::Namespace, None);
        assert_eq!((r.name(), r.namespace(), r.node()), ("ns", Some("ns"), None));
        let r = row_of("node:n1", MetricSetType::Node, None);
        assert_eq!((r.name(), r.node()), ("n1", Some("n1")));
    }

    #[test]
    fn search_matches_any_name_ignoring_case() {
        let r = row_of("namespace:kube-system/pod:DNS-1/container:kubedns", MetricSetType::PodContainer, Some("n7"));
        for q in ["", "kube", "dns-1", "n7", "kubedns", "system"] {
            assert!(r.mentions(q), "{q}");
        }
        // The key's own words are no names, and a search does not span two names.
        for q in ["namespace", "pod:", "container", "system/dns", "x"] {
            assert!(!r.mentions(q), "{q}");
        }
        let r = row_of("node:n1/container:Ünïcode/Slice", MetricSetType::SysContainer, None);
        assert!(r.mentions("ünïcode/slice"));
    }

    #[test]
    fn keys_classify_by_shape() {
        assert_eq!(classify("node:n1"), Some((Kind::Nodes, MetricSetType::Node)));
        assert_eq!(classify("node:n1/container:a/b"), Some((Kind::Containers, MetricSetType::SysContainer)));
        assert_eq!(classify("namespace:a"), Some((Kind::Namespaces, MetricSetType::Namespace)));
        assert_eq!(classify("namespace:a/pod:b"), Some((Kind::Pods, MetricSetType::Pod)));
        assert_eq!(classify("namespace:a/pod:b/container:c"), Some((Kind::Containers, MetricSetType::PodContainer)));
        assert_eq!(classify("cluster"), None);
        assert_eq!(classify("custom"), None);
    }
}
