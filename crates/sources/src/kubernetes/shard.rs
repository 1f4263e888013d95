//! Shards: several heapster replicas share a cluster's nodes, coordinated by the cluster's own API server rather
//! than by a protocol of heapster's.
//!
//! Each replica holds a `coordination.k8s.io/v1` Lease of its own (`<prefix>-<identity>`, labelled
//! [`LABEL`]`=<prefix>`, its base URL in the annotation [`ADDRESS_ANNOTATION`]) and renews it every third of its
//! duration. The members are the replicas whose Lease was renewed less than its duration ago. A node belongs to
//! the `replication` members that weigh most for it by rendezvous (highest-random-weight) hashing, so a member
//! joining or leaving moves only its own share of nodes, and every replica decides the same without talking to the
//! others. A replica that dies stops renewing and its nodes go to the others within one Lease duration; one that
//! stops cleanly deletes its Lease, so they move at once.

use super::lease::{self, LeaseError, Leases};
use k8s_openapi::api::coordination::v1::Lease;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// The label whose value (the Lease prefix) marks the Leases of one set of shards, so that a replica lists only
/// its peers'.
pub const LABEL: &str = "heapster.k8s.io/shard";

/// The annotation holding a replica's base URL (`https://10.1.2.3:8082`), where the others read its data.
pub const ADDRESS_ANNOTATION: &str = "heapster.k8s.io/address";

/// Where the kubernetes source finds the membership once the binary set it (unset: every node is scraped).
pub type ShardSlot = Arc<OnceLock<Arc<Membership>>>;

/// How this replica takes part.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    pub namespace: String,
    /// Prefix of every replica's Lease name, and the value of their [`LABEL`].
    pub prefix: String,
    pub identity: String,
    /// This replica's base URL, for the others.
    pub address: String,
    pub duration: Duration,
    /// Replicas that scrape each node (1, or 2 for sinks that de-duplicate).
    pub replication: usize,
}

impl ShardConfig {
    pub fn lease_name(&self) -> String {
        format!("{}-{}", self.prefix, self.identity)
    }
}

/// One live replica.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    pub identity: String,
    /// Its base URL; empty when its Lease does not say.
    pub address: String,
}

/// The shards' own health on heapster's `/metrics`.
#[derive(Clone, Default)]
pub struct ShardMetrics {
    pub members: Gauge,
    pub nodes_assigned: Gauge,
    pub lease_errors: Counter,
    pub membership_changes: Counter,
}

impl ShardMetrics {
    pub fn register(registry: &mut Registry) -> ShardMetrics {
        let m = ShardMetrics::default();
        registry.register(
            "heapster_shard_members",
            "Live replicas (Leases renewed in time), this one included",
            m.members.clone(),
        );
        registry.register(
            "heapster_shard_nodes_assigned",
            "Nodes this replica scraped in its last round (its share of the Ready nodes)",
            m.nodes_assigned.clone(),
        );
        registry.register(
            "heapster_shard_lease_errors",
            "Renewals or lists of the shard Leases that failed; the last membership is kept meanwhile",
            m.lease_errors.clone(),
        );
        registry.register(
            "heapster_shard_membership_changes",
            "Times the set of live replicas changed (each moves nodes between replicas)",
            m.membership_changes.clone(),
        );
        m
    }
}

/// The live replicas as this one last saw them, and which nodes are its own.
pub struct Membership {
    identity: String,
    replication: usize,
    members: RwLock<Arc<Vec<Member>>>,
    pub metrics: ShardMetrics,
}

impl Membership {
    /// Until the first list of Leases, this replica alone: it scrapes every node rather than none.
    pub fn new(config: &ShardConfig, metrics: ShardMetrics) -> Membership {
        let me = Member { identity: config.identity.clone(), address: config.address.clone() };
        metrics.members.set(1);
        Membership {
            identity: config.identity.clone(),
            replication: config.replication.max(1),
            members: RwLock::new(Arc::new(vec![me])),
            metrics,
        }
    }

    /// The live replicas, sorted by identity.
    pub fn members(&self) -> Arc<Vec<Member>> {
        self.members.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Base URLs of the other live replicas, sorted: where a request for the whole cluster fans out to.
    pub fn others(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .members()
            .iter()
            .filter(|m| m.identity != self.identity && !m.address.is_empty())
            .map(|m| m.address.clone())
            .collect();
        out.sort();
        out
    }

    /// Whether this replica scrapes `node`.
    pub fn owns(&self, node: &str) -> bool {
        let members = self.members();
        owns(node, &self.identity, members.iter().map(|m| m.identity.as_str()), self.replication)
    }

    /// Replaces the members; says whether they changed.
    fn set(&self, members: Vec<Member>) -> bool {
        let mut held = self.members.write().unwrap_or_else(|p| p.into_inner());
        if **held == members {
            return false;
        }
        self.metrics.members.set(members.len() as i64);
        self.metrics.membership_changes.inc();
        *held = Arc::new(members);
        true
    }
}

/// The rendezvous weight of `member` for `node`: SHA-256, whose output is fixed by its standard, so that replicas
/// built by different compilers or for different machines agree (std's and foldhash's hashes may change between
/// releases).
pub fn weight(member: &str, node: &str) -> u64 {
    let digest = Sha256::new().chain_update(member).chain_update([0]).chain_update(node).finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 digest has 32 bytes"))
}

/// Whether `me` is among the `replication` of `members` that weigh most for `node` (ties broken by identity).
pub fn owns<'a>(node: &str, me: &str, members: impl Iterator<Item = &'a str>, replication: usize) -> bool {
    let mine = (weight(me, node), me);
    members.filter(|m| *m != me).filter(|m| (weight(m, node), *m) > mine).take(replication).count() < replication
}

/// How long a replica stopping waits for its Lease to be deleted: well within a pod's default 30 s grace period.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Holds this replica's Lease and follows the others' until `stop` turns true, then deletes it so that its nodes
/// move to the others at once.
pub async fn run(leases: Leases, config: ShardConfig, membership: Arc<Membership>, mut stop: watch::Receiver<bool>) {
    let name = config.lease_name();
    let selector = format!("{LABEL}={}", config.prefix);
    let mut written: Option<Lease> = None;
    let mut seen = Seen::default();
    let mut failing = false;
    loop {
        match step(&leases, &config, &name, &selector, &mut written, &mut seen).await {
            Ok(members) => {
                if failing {
                    tracing::info!("shard: the Lease API answers again");
                    failing = false;
                }
                if membership.set(members) {
                    let names: Vec<String> = membership.members().iter().map(|m| m.identity.clone()).collect();
                    tracing::info!("shard: {} live replicas ({}); nodes re-assigned", names.len(), names.join(", "));
                }
            }
            Err(e) => {
                written = None;
                membership.metrics.lease_errors.inc();
                if !failing {
                    let hint = match e {
                        LeaseError::Unusable(_) => {
                            "; grant get, list, create, update and delete on leases.coordination.k8s.io (see deploy/)"
                        }
                        LeaseError::Failed(_) => "",
                    };
                    tracing::warn!(
                        "shard: cannot renew or list the Leases in {} ({e}){hint}; keeping the last membership of {} \
                         replicas until it answers",
                        config.namespace,
                        membership.members().len()
                    );
                    failing = true;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(config.duration / 3) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    match tokio::time::timeout(LEAVE_TIMEOUT, leases.delete(&name)).await {
        Ok(Ok(())) => tracing::info!("shard: deleted Lease {}/{name}; its nodes go to the others", config.namespace),
        Ok(Err(e)) => tracing::warn!("shard: could not delete Lease {}/{name} ({e}); it expires", config.namespace),
        Err(_) => tracing::warn!("shard: deleting Lease {}/{name} timed out; it expires", config.namespace),
    }
}

/// Each Lease's resourceVersion as last listed, and when this replica saw it change (by its own monotonic clock;
/// `None` while it has not seen it change).
#[derive(Default)]
struct Seen(std::collections::HashMap<String, (String, Option<std::time::Instant>)>);

impl Seen {
    /// The live Leases of a fresh list: renewed less than their duration ago by the renewTime they carry, or seen
    /// to change less than their duration ago. The second keeps a member whose renewal reached the API server late
    /// (renewTime is stamped before the write, and a loaded API server may take seconds) and makes a skewed clock
    /// harmless; a Lease never seen to change (a dead replica's, found at start-up) counts only as long as its
    /// renewTime says.
    fn live<'a>(&mut self, listed: &'a [Lease], default: Duration) -> Vec<&'a Lease> {
        let now = k8s_openapi::jiff::Timestamp::now();
        let at = std::time::Instant::now();
        let mut next = std::collections::HashMap::with_capacity(listed.len());
        let mut out = Vec::with_capacity(listed.len());
        for lease in listed {
            let name = lease.metadata.name.clone().unwrap_or_default();
            let version = lease.metadata.resource_version.clone().unwrap_or_default();
            let changed_at = match self.0.get(&name) {
                Some((v, t)) if *v == version => *t,
                Some(_) => Some(at),
                None => None,
            };
            let (_, held_for) = lease::holder(lease, default);
            if lease::live_at(lease, now) || changed_at.is_some_and(|t| t.elapsed() < held_for) {
                out.push(lease);
            }
            next.insert(name, (version, changed_at));
        }
        self.0 = next;
        out
    }
}

/// Renews this replica's Lease (creating it when absent) and lists the live ones.
async fn step(
    leases: &Leases,
    config: &ShardConfig,
    name: &str,
    selector: &str,
    written: &mut Option<Lease>,
    seen: &mut Seen,
) -> Result<Vec<Member>, LeaseError> {
    // The Lease as last written carries its resourceVersion: renewing it needs no read first.
    let mut lease = match written.take() {
        Some(l) => Some(l),
        None => leases.get(name).await?,
    };
    *written = match lease.as_mut() {
        Some(l) => {
            lease::renew(l, &config.identity, config.duration);
            mark(l, config);
            // A conflict: the Lease changed since (a write that timed out yet landed); read it again next time.
            leases.replace(l).await?
        }
        None => {
            let mut l = lease::held_by(&leases.namespace, name, &config.identity, config.duration);
            mark(&mut l, config);
            leases.create(&l).await?
        }
    };
    let listed = leases.list(selector).await?;
    let mut members: Vec<Member> = seen
        .live(&listed, config.duration)
        .into_iter()
        .filter_map(|l| {
            let identity = l.spec.as_ref()?.holder_identity.clone().filter(|h| !h.is_empty())?;
            let address = l.metadata.annotations.as_ref().and_then(|a| a.get(ADDRESS_ANNOTATION)).cloned();
            Some(Member { identity, address: address.unwrap_or_default() })
        })
        .collect();
    // This replica is alive whatever the list says (its renewal may have lost a race with a stale write).
    if !members.iter().any(|m| m.identity == config.identity) {
        members.push(Member { identity: config.identity.clone(), address: config.address.clone() });
    }
    members.sort();
    members.dedup_by(|a, b| a.identity == b.identity);
    Ok(members)
}

/// Labels the Lease as one of this set of shards and records where this replica serves.
fn mark(lease: &mut Lease, config: &ShardConfig) {
    lease.metadata.labels.get_or_insert_with(Default::default).insert(LABEL.into(), config.prefix.clone());
    lease
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(ADDRESS_ANNOTATION.into(), config.address.clone());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(members: &[String], nodes: &[String]) -> Vec<String> {
        nodes
            .iter()
            .map(|n| members.iter().find(|m| owns(n, m, members.iter().map(String::as_str), 1)).unwrap().clone())
            .collect()
    }

    /// Each node has exactly `replication` owners, and the shares are even.
    #[test]
    fn every_node_has_replication_owners_and_shares_are_even() {
        let members: Vec<String> = (0..4).map(|i| format!("heapster-{i}")).collect();
        let nodes: Vec<String> = (0..8000).map(|i| format!("node-{i:05}")).collect();
        for replication in [1, 2] {
            let mut share = vec![0usize; members.len()];
            for n in &nodes {
                let owners: Vec<usize> = (0..members.len())
                    .filter(|&i| owns(n, &members[i], members.iter().map(String::as_str), replication))
                    .collect();
                assert_eq!(owners.len(), replication, "{n}: {owners:?}");
                owners.iter().for_each(|&i| share[i] += 1);
            }
            let fair = nodes.len() * replication / members.len();
            for s in share {
                assert!(s.abs_diff(fair) < fair / 10, "shares {s} against {fair} (replication {replication})");
            }
        }
    }

    /// A fourth replica joining takes about a quarter of the nodes, all from the others, and moves nothing else.
    #[test]
    fn a_member_joining_moves_only_its_share() {
        let nodes: Vec<String> = (0..9000).map(|i| format!("sim-node-{i}")).collect();
        let three: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let four: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let before = assignment(&three, &nodes);
        let after = assignment(&four, &nodes);
        let moved: Vec<usize> = (0..nodes.len()).filter(|&i| before[i] != after[i]).collect();
        assert!(moved.iter().all(|&i| after[i] == "d"), "only the newcomer gains nodes");
        let share = nodes.len() / 4;
        assert!(moved.len().abs_diff(share) < share / 10, "{} moved, about {share} expected", moved.len());
        // And leaving gives back exactly those.
        assert_eq!(assignment(&three, &nodes), before);
    }

    #[test]
    fn weights_are_fixed_across_builds() {
        // `printf 'a\0node-1' | sha256sum`, first 8 bytes: what every replica, of any build, must compute.
        assert_eq!(weight("a", "node-1"), 0x38c5_da04_3aa7_91de);
        assert_ne!(weight("a", "node-1"), weight("b", "node-1"));
    }

    fn lease_renewed(name: &str, version: &str, seconds_ago: i64) -> Lease {
        let mut l = lease::held_by("ns", name, name, Duration::from_secs(15));
        let t = k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(seconds_ago);
        l.spec.as_mut().unwrap().renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(t));
        l.metadata.resource_version = Some(version.into());
        l
    }

    fn live_names(seen: &mut Seen, listed: &[Lease]) -> Vec<String> {
        seen.live(listed, Duration::from_secs(15)).iter().map(|l| l.metadata.name.clone().unwrap()).collect()
    }

    /// A dead replica's Lease found at start-up is out; a renewal that reached the API server late (its renewTime
    /// already past the duration by this clock) keeps its replica in, as long as the Lease keeps changing.
    #[test]
    fn liveness_is_by_renew_time_or_by_a_change_seen() {
        let mut seen = Seen::default();
        let listed = [lease_renewed("fresh", "1", 1), lease_renewed("dead", "2", 60), lease_renewed("late", "3", 20)];
        assert_eq!(live_names(&mut seen, &listed), ["fresh"]);
        // "late" writes again, its renewTime still behind this clock; "dead" does not change.
        let listed = [lease_renewed("fresh", "4", 1), lease_renewed("dead", "2", 65), lease_renewed("late", "5", 20)];
        assert_eq!(live_names(&mut seen, &listed), ["fresh", "late"]);
        assert_eq!(live_names(&mut seen, &listed), ["fresh", "late"], "within the duration of the change seen");
    }

    #[test]
    fn others_are_the_live_peers_addresses_sorted() {
        let config = ShardConfig {
            namespace: "kube-system".into(),
            prefix: "heapster".into(),
            identity: "b".into(),
            address: "http://10.0.0.2:8082".into(),
            duration: Duration::from_secs(15),
            replication: 1,
        };
        let m = Membership::new(&config, ShardMetrics::default());
        assert!(m.others().is_empty());
        let member = |i: &str, a: &str| Member { identity: i.into(), address: a.into() };
        assert!(m.set(vec![
            member("a", "http://10.0.0.9:8082"),
            member("b", "http://10.0.0.2:8082"),
            member("c", "http://10.0.0.1:8082"),
            member("d", ""),
        ]));
        assert_eq!(m.others(), ["http://10.0.0.1:8082", "http://10.0.0.9:8082"]);
        assert_eq!(m.metrics.members.get(), 4);
    }
}
