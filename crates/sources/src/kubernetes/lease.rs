//! `coordination.k8s.io/v1` Leases, the one client both of heapster's uses share: the eventer's leader election
//! (one Lease many replicas compete for) and the shards' membership (one Lease per replica, listed by label).
//!
//! Writes use the API server's optimistic concurrency (a replace names the resourceVersion it read), so a 409 is
//! an answer, not an error: another replica wrote first. A 403 (no RBAC for leases) means Leases cannot be used at
//! all and is told apart from failures worth retrying.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use std::time::Duration;

/// Why a Lease request failed.
#[derive(Debug)]
pub enum LeaseError {
    /// The Lease API cannot be used at all (no RBAC for leases, no namespace, no coordination API): why.
    Unusable(String),
    /// Anything worth retrying (the API server unreachable, a timeout, a 5xx).
    Failed(kube::Error),
}

impl std::fmt::Display for LeaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeaseError::Unusable(why) => f.write_str(why),
            LeaseError::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// 403 means Leases cannot be used; anything else is worth retrying.
fn classify(e: kube::Error) -> LeaseError {
    match &e {
        kube::Error::Api(s) if s.code == 403 => LeaseError::Unusable(format!("403 Forbidden: {}", s.message)),
        _ => LeaseError::Failed(e),
    }
}

fn conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// The Leases of one namespace.
#[derive(Clone)]
pub struct Leases {
    api: Api<Lease>,
    pub namespace: String,
}

impl Leases {
    pub fn new(client: kube::Client, namespace: &str) -> Leases {
        Leases { api: Api::namespaced(client, namespace), namespace: namespace.to_owned() }
    }

    pub async fn get(&self, name: &str) -> Result<Option<Lease>, LeaseError> {
        self.api.get_opt(name).await.map_err(classify)
    }

    /// Creates `lease`; `None` when one of that name exists already (another replica created it first).
    pub async fn create(&self, lease: &Lease) -> Result<Option<Lease>, LeaseError> {
        match self.api.create(&PostParams::default(), lease).await {
            Ok(l) => Ok(Some(l)),
            Err(e) if conflict(&e) => Ok(None),
            // No such namespace, or no coordination.k8s.io API on this server.
            Err(kube::Error::Api(s)) if s.code == 404 => Err(LeaseError::Unusable(format!("404: {}", s.message))),
            Err(e) => Err(classify(e)),
        }
    }

    /// Writes `lease` over the version it was read at; `None` when another replica wrote it since (409).
    pub async fn replace(&self, lease: &Lease) -> Result<Option<Lease>, LeaseError> {
        let name = lease.metadata.name.as_deref().unwrap_or_default();
        match self.api.replace(name, &PostParams::default(), lease).await {
            Ok(l) => Ok(Some(l)),
            Err(e) if conflict(&e) => Ok(None),
            Err(e) => Err(classify(e)),
        }
    }

    /// The Leases carrying the label `selector` (`key=value`).
    pub async fn list(&self, selector: &str) -> Result<Vec<Lease>, LeaseError> {
        self.api.list(&ListParams::default().labels(selector)).await.map(|l| l.items).map_err(classify)
    }

    /// Deletes the Lease `name`; one already gone is not an error.
    pub async fn delete(&self, name: &str) -> Result<(), LeaseError> {
        match self.api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(classify(e)),
        }
    }
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX)
}

/// A Lease named `name` held by `identity` from now, for `duration`.
pub fn held_by(namespace: &str, name: &str, identity: &str, duration: Duration) -> Lease {
    let now = now();
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(identity.to_owned()),
            lease_duration_seconds: Some(seconds(duration)),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: Some(0),
            ..Default::default()
        }),
    }
}

/// Stamps `lease` as renewed now by `identity` for `duration`; a change of holder is counted as a transition.
pub fn renew(lease: &mut Lease, identity: &str, duration: Duration) {
    let now = now();
    let spec = lease.spec.get_or_insert_with(Default::default);
    if spec.holder_identity.as_deref() != Some(identity) {
        spec.acquire_time = Some(now.clone());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.holder_identity = Some(identity.to_owned());
    spec.lease_duration_seconds = Some(seconds(duration));
    spec.renew_time = Some(now);
}

/// The holder and how long the Lease is held from its last renewal (`default` when it does not say).
pub fn holder(lease: &Lease, default: Duration) -> (String, Duration) {
    let spec = lease.spec.as_ref();
    let holder = spec.and_then(|s| s.holder_identity.clone()).unwrap_or_default();
    let secs = spec.and_then(|s| s.lease_duration_seconds).map(|s| s.max(1) as u64);
    (holder, secs.map(Duration::from_secs).unwrap_or(default))
}

/// Whether `lease` was renewed less than its duration before `at`, by this machine's clock (clocks of a cluster
/// are kept within far less than a Lease duration by NTP).
pub fn live_at(lease: &Lease, at: k8s_openapi::jiff::Timestamp) -> bool {
    let Some(spec) = lease.spec.as_ref() else { return false };
    let (Some(renew), Some(secs)) = (spec.renew_time.as_ref(), spec.lease_duration_seconds) else { return false };
    let expires = renew.0.as_millisecond().saturating_add(i64::from(secs.max(0)) * 1000);
    expires > at.as_millisecond()
}
