//! The connections heapster's server holds, bounded before any request is read: clients that connect and send
//! nothing, or a byte at a time, must not take the file descriptors scraping needs, nor memory, before
//! authentication ever sees them.
//!
//! Two caps: one over all connections, derived from the open-file limit so that at least half of it stays for scraping,
//! sinks and the API server's watches; one per client address, so that one client cannot fill the first. At the overall
//! cap a new connection closes the oldest one with no request in flight (as nginx reuses idle keep-alive connections
//! when it runs out), so that a probe or `kubectl top` still gets in while many clients hold connections open; only
//! when every connection is answering a request is the new one refused.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// How many connections may be held, overall and per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub total: usize,
    pub per_client: usize,
}

impl ConnectionLimits {
    /// `--max_connections` and `--max_connections_per_client`, 0 meaning derived from `open_files` (the soft
    /// RLIMIT_NOFILE, see [`heapster_net::server_connection_share`]); per client a quarter of the total.
    pub fn new(total: usize, per_client: usize, open_files: u64) -> ConnectionLimits {
        let total = match total {
            0 => heapster_net::server_connection_share(open_files),
            n => n,
        };
        let per_client = match per_client {
            0 => (total / 4).max(1),
            n => n.min(total),
        };
        ConnectionLimits { total, per_client }
    }

    /// From the flags and this process's open-file limit.
    pub fn from_flags(total: usize, per_client: usize) -> ConnectionLimits {
        let open_files = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(u64::MAX);
        ConnectionLimits::new(total, per_client, open_files)
    }
}

/// Raises this process's soft open-file limit to its hard limit, as Go's runtime does at start (Go 1.19) for the
/// original Heapster: container runtimes set a soft limit of 1,024 beside a hard one of 524,288 or more, and kept
/// kubelet connections and clients' connections are a descriptor each. Returns the limit before and after when it
/// was raised.
pub fn raise_open_file_limit() -> Option<(u64, u64)> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let (soft, hard) = (limit.current?, limit.maximum);
    if hard.is_some_and(|h| h <= soft) {
        return None;
    }
    // An unlimited hard limit is not a count of descriptors: the kernel's own cap (fs.nr_open) is.
    let target = hard.unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|t| t.trim().parse().ok()).unwrap_or(soft)
    });
    if target <= soft {
        return None;
    }
    limit.current = Some(target);
    setrlimit(Resource::Nofile, limit).ok()?;
    Some((soft, target))
}

/// Labels of a refused or closed connection.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    /// `per_client` (the client's address holds --max_connections_per_client), `limit` (--max_connections
    /// reached, every connection busy) or `evicted` (closed to make room for a new one).
    reason: String,
}

/// The counters on `/metrics`; clones share them.
#[derive(Clone, Default)]
pub struct ConnectionMetrics {
    open: Gauge,
    dropped: Family<ReasonLabels, Counter>,
}

impl ConnectionMetrics {
    /// Registers the counters in heapster's registry.
    pub fn new(registry: &mut Registry) -> ConnectionMetrics {
        let m = ConnectionMetrics::default();
        registry.register("heapster_http_connections", "Client connections held by heapster's server", m.open.clone());
        registry.register(
            "heapster_http_connections_dropped",
            "Client connections refused (reason per_client or limit) or closed to make room (evicted)",
            m.dropped.clone(),
        );
        m
    }

    fn dropped(&self, reason: &str) {
        self.dropped.get_or_create(&ReasonLabels { reason: reason.into() }).inc();
    }
}

/// What a connection's task watches: whether it answers a request now, and the request to close.
#[derive(Default)]
pub struct Slot {
    busy: AtomicBool,
    close: Notify,
}

impl Slot {
    /// Marks a request in flight (`true`) or answered (`false`): only connections without one are evicted.
    pub fn set_busy(&self, busy: bool) {
        self.busy.store(busy, Ordering::Relaxed);
    }

    /// Completes when the connection should close (evicted, or the server stops); at once if that was asked
    /// before.
    pub async fn closed(&self) {
        self.close.notified().await
    }
}

#[derive(Default)]
struct State {
    next_id: u64,
    /// Connections counted against the cap, oldest first; an evicted one leaves at once, before it has closed.
    open: BTreeMap<u64, Arc<Slot>>,
    per_client: HashMap<IpAddr, usize>,
    /// Every live connection, evicted ones included, for the shutdown to wait on.
    alive: usize,
}

/// The server's connections, shared by the accept loop and the connections' tasks.
pub struct Connections {
    limits: ConnectionLimits,
    state: Mutex<State>,
    metrics: ConnectionMetrics,
}

/// A connection admitted: counted until dropped.
pub struct Admitted {
    id: u64,
    ip: IpAddr,
    pub slot: Arc<Slot>,
    owner: Arc<Connections>,
}

/// Why a connection was refused, for the debug line.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    PerClient(usize),
    Full(usize),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::PerClient(n) => write!(f, "the address holds {n} connections (--max_connections_per_client)"),
            Refused::Full(n) => write!(f, "{n} connections, all answering requests (--max_connections)"),
        }
    }
}

impl Connections {
    pub fn new(limits: ConnectionLimits, metrics: ConnectionMetrics) -> Arc<Connections> {
        Arc::new(Connections { limits, state: Mutex::default(), metrics })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a new connection from `ip`, closing the oldest idle one when at the cap.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refused> {
        let mut s = self.lock();
        let from_ip = s.per_client.get(&ip).copied().unwrap_or(0);
        if from_ip >= self.limits.per_client {
            self.metrics.dropped("per_client");
            return Err(Refused::PerClient(from_ip));
        }
        if s.open.len() >= self.limits.total {
            let victim = s.open.iter().find(|(_, slot)| !slot.busy.load(Ordering::Relaxed)).map(|(id, _)| *id);
            let Some(victim) = victim.and_then(|id| s.open.remove(&id)) else {
                self.metrics.dropped("limit");
                return Err(Refused::Full(s.open.len()));
            };
            victim.close.notify_one();
            self.metrics.dropped("evicted");
        }
        let id = s.next_id;
        s.next_id += 1;
        let slot = Arc::new(Slot::default());
        s.open.insert(id, slot.clone());
        *s.per_client.entry(ip).or_default() += 1;
        s.alive += 1;
        self.metrics.open.set(s.alive as i64);
        Ok(Admitted { id, ip, slot, owner: self.clone() })
    }

    /// Asks every connection to close once its request in flight is answered.
    pub fn close_all(&self) {
        let mut s = self.lock();
        for slot in std::mem::take(&mut s.open).into_values() {
            slot.close.notify_one();
        }
    }

    /// Connections still open, evicted ones included.
    pub fn alive(&self) -> usize {
        self.lock().alive
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut s = self.owner.lock();
        s.open.remove(&self.id);
        s.alive -= 1;
        if let Some(n) = s.per_client.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                s.per_client.remove(&self.ip);
            }
        }
        self.owner.metrics.open.set(s.alive as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_derived_from_the_open_file_limit() {
        assert_eq!(ConnectionLimits::new(0, 0, 1024), ConnectionLimits { total: 512, per_client: 128 });
        assert_eq!(ConnectionLimits::new(0, 0, 1 << 20), ConnectionLimits { total: 4096, per_client: 1024 });
        assert_eq!(ConnectionLimits::new(0, 0, 3), ConnectionLimits { total: 1, per_client: 1 });
        assert_eq!(ConnectionLimits::new(10, 0, 1024), ConnectionLimits { total: 10, per_client: 2 });
        assert_eq!(ConnectionLimits::new(10, 50, 1024), ConnectionLimits { total: 10, per_client: 10 });
    }

    #[tokio::test]
    async fn per_client_cap_and_eviction_of_the_oldest_idle_connection() {
        let c = Connections::new(ConnectionLimits { total: 3, per_client: 2 }, ConnectionMetrics::default());
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let a1 = c.admit(a).unwrap();
        let a2 = c.admit(a).unwrap();
        assert_eq!(c.admit(a).err(), Some(Refused::PerClient(2)));
        a1.slot.set_busy(true);
        let b1 = c.admit(b).unwrap();
        // Full: the oldest connection without a request in flight (a2, as a1 is busy) is asked to close.
        let b2 = c.admit(b).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), a2.slot.closed()).await.expect("a2 evicted");
        assert_eq!(c.alive(), 4, "an evicted connection counts as alive until it has closed");
        drop(a2);
        b1.slot.set_busy(true);
        b2.slot.set_busy(true);
        assert_eq!(c.admit(a).err(), Some(Refused::Full(3)), "every connection busy: the new one is refused");
        drop(b1);
        let a3 = c.admit(a).unwrap();
        c.close_all();
        for slot in [&a1.slot, &b2.slot, &a3.slot] {
            tokio::time::timeout(std::time::Duration::from_secs(5), slot.closed()).await.expect("closed");
        }
        drop((a1, b2, a3));
        assert_eq!((c.alive(), c.lock().per_client.len()), (0, 0));
    }
}
