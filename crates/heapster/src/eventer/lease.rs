//! Which replica ships events: the holder of a `coordination.k8s.io/v1` Lease, taken and renewed as client-go's
//! leader election does (optimistic concurrency on the Lease's resourceVersion, expiry judged by when this replica
//! last saw the record change, never by comparing clocks across machines).
//!
//! The Lease also carries every sink's cursor ([`super::cursor::LEASE_ANNOTATION`]), written at each renewal, so
//! the next holder resumes where this one stopped.

use super::cursor::{Cursors, LEASE_ANNOTATION};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's name in `holderIdentity`.
    pub identity: String,
    pub duration: Duration,
    pub retry: Duration,
}

/// The record as last seen, and when this replica saw it change.
struct Observed {
    holder: String,
    renew: Option<MicroTime>,
    at: Instant,
}

enum Attempt {
    Held,
    NotHeld,
    /// The Lease API cannot be used at all (no RBAC for leases, no coordination API): why.
    Unusable(String),
}

/// Takes and renews the Lease for as long as the process runs, telling `leader` whether this replica holds it.
/// When Leases cannot be used at all, says so once and ships without them.
pub async fn elect(client: kube::Client, config: LeaseConfig, cursors: Cursors, leader: watch::Sender<bool>) {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let mut observed: Option<Observed> = None;
    let mut renewed: Option<Instant> = None;
    loop {
        match attempt(&api, &config, &cursors, &mut observed).await {
            Ok(Attempt::Held) => {
                if !*leader.borrow() {
                    tracing::info!("eventer: holding Lease {}/{}; shipping events", config.namespace, config.name);
                }
                renewed = Some(Instant::now());
                leader.send_replace(true);
            }
            Ok(Attempt::NotHeld) => {
                if *leader.borrow() {
                    tracing::warn!(
                        "eventer: Lease {}/{} taken by another replica; stopping",
                        config.namespace,
                        config.name
                    );
                }
                leader.send_replace(false);
            }
            Ok(Attempt::Unusable(why)) => {
                tracing::warn!(
                    "eventer: cannot use Lease {}/{} ({why}); shipping events without coordination, as Heapster's \
                     eventer did. Run one replica, or grant get/create/update on leases.coordination.k8s.io (see \
                     deploy/), or pass --leader_elect=false to silence this",
                    config.namespace,
                    config.name
                );
                leader.send_replace(true);
                return;
            }
            Err(e) => {
                tracing::warn!("eventer: Lease {}/{}: {e}", config.namespace, config.name);
                // Stop before another replica may take over: renewals failed for two thirds of the duration.
                if *leader.borrow() && renewed.is_none_or(|t| t.elapsed() > config.duration * 2 / 3) {
                    tracing::warn!("eventer: could not renew the Lease in time; stopping until it is held again");
                    leader.send_replace(false);
                }
            }
        }
        tokio::time::sleep(config.retry).await;
    }
}

async fn attempt(
    api: &Api<Lease>,
    config: &LeaseConfig,
    cursors: &Cursors,
    observed: &mut Option<Observed>,
) -> Result<Attempt, kube::Error> {
    let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
    let duration_seconds = i32::try_from(config.duration.as_secs()).unwrap_or(i32::MAX);
    let existing = match api.get_opt(&config.name).await {
        Ok(l) => l,
        Err(e) => return unusable(e),
    };
    let Some(mut lease) = existing else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                namespace: Some(config.namespace.clone()),
                annotations: Some([(LEASE_ANNOTATION.to_owned(), cursors.to_annotation())].into()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(duration_seconds),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&Default::default(), &lease).await {
            Ok(_) => Ok(Attempt::Held),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::NotHeld),
            // No such namespace, or no coordination.k8s.io API on this server.
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(Attempt::Unusable(format!("404: {}", s.message))),
            Err(e) => unusable(e),
        };
    };
    if let Some(json) = lease.metadata.annotations.as_ref().and_then(|a| a.get(LEASE_ANNOTATION)) {
        cursors.merge_annotation(json);
    }
    let spec = lease.spec.get_or_insert_with(Default::default);
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let changed = observed.as_ref().is_none_or(|o| o.holder != holder || o.renew != spec.renew_time);
    if changed {
        *observed = Some(Observed { holder: holder.clone(), renew: spec.renew_time.clone(), at: Instant::now() });
    }
    let held_for = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(duration_seconds).max(1) as u64);
    let since = observed.as_ref().map(|o| o.at.elapsed()).unwrap_or_default();
    if !holder.is_empty() && holder != config.identity && since < held_for {
        return Ok(Attempt::NotHeld);
    }
    if holder != config.identity {
        spec.acquire_time = Some(now.clone());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.holder_identity = Some(config.identity.clone());
    spec.lease_duration_seconds = Some(duration_seconds);
    spec.renew_time = Some(now);
    lease
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(LEASE_ANNOTATION.into(), cursors.to_annotation());
    match api.replace(&config.name, &Default::default(), &lease).await {
        Ok(l) => {
            let spec = l.spec.unwrap_or_default();
            *observed = Some(Observed { holder: config.identity.clone(), renew: spec.renew_time, at: Instant::now() });
            Ok(Attempt::Held)
        }
        // Another replica wrote the Lease since we read it: it moved first.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::NotHeld),
        Err(e) => unusable(e),
    }
}

/// 403 (no RBAC for leases) means Leases cannot be used; anything else is worth retrying.
fn unusable(e: kube::Error) -> Result<Attempt, kube::Error> {
    match &e {
        kube::Error::Api(s) if s.code == 403 => Ok(Attempt::Unusable(format!("403 Forbidden: {}", s.message))),
        _ => Err(e),
    }
}
