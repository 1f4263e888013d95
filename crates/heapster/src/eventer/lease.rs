//! Which replica ships events: the holder of a `coordination.k8s.io/v1` Lease, taken and renewed as client-go's
//! leader election does (optimistic concurrency on the Lease's resourceVersion, expiry judged by when this replica
//! last saw the record change, never by comparing clocks across machines).
//!
//! The Lease also carries every sink's cursor ([`super::cursor::LEASE_ANNOTATION`]), written at each renewal, so
//! the next holder resumes where this one stopped.

use super::cursor::{Cursors, LEASE_ANNOTATION};
use heapster_sources::kubernetes::lease::{self, LeaseError, Leases};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
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
    let api = Leases::new(client, &config.namespace);
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
    api: &Leases,
    config: &LeaseConfig,
    cursors: &Cursors,
    observed: &mut Option<Observed>,
) -> Result<Attempt, kube::Error> {
    let outcome = match api.get(&config.name).await {
        Ok(Some(lease)) => renew(api, config, cursors, observed, lease).await,
        Ok(None) => {
            let mut lease = lease::held_by(&config.namespace, &config.name, &config.identity, config.duration);
            lease.metadata.annotations = Some([(LEASE_ANNOTATION.to_owned(), cursors.to_annotation())].into());
            api.create(&lease).await.map(|l| if l.is_some() { Attempt::Held } else { Attempt::NotHeld })
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(a) => Ok(a),
        Err(LeaseError::Unusable(why)) => Ok(Attempt::Unusable(why)),
        Err(LeaseError::Failed(e)) => Err(e),
    }
}

/// Renews the Lease read as `lease` when this replica holds it or its holder stopped renewing it.
async fn renew(
    api: &Leases,
    config: &LeaseConfig,
    cursors: &Cursors,
    observed: &mut Option<Observed>,
    mut lease: k8s_openapi::api::coordination::v1::Lease,
) -> Result<Attempt, LeaseError> {
    if let Some(json) = lease.metadata.annotations.as_ref().and_then(|a| a.get(LEASE_ANNOTATION)) {
        cursors.merge_annotation(json);
    }
    let (holder, held_for) = lease::holder(&lease, config.duration);
    let renewed = lease.spec.as_ref().and_then(|s| s.renew_time.clone());
    let changed = observed.as_ref().is_none_or(|o| o.holder != holder || o.renew != renewed);
    if changed {
        *observed = Some(Observed { holder: holder.clone(), renew: renewed, at: Instant::now() });
    }
    let since = observed.as_ref().map(|o| o.at.elapsed()).unwrap_or_default();
    if !holder.is_empty() && holder != config.identity && since < held_for {
        return Ok(Attempt::NotHeld);
    }
    lease::renew(&mut lease, &config.identity, config.duration);
    lease
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(LEASE_ANNOTATION.into(), cursors.to_annotation());
    match api.replace(&lease).await? {
        Some(l) => {
            let renew = l.spec.and_then(|s| s.renew_time);
            *observed = Some(Observed { holder: config.identity.clone(), renew, at: Instant::now() });
            Ok(Attempt::Held)
        }
        // Another replica wrote the Lease since we read it: it moved first.
        None => Ok(Attempt::NotHeld),
    }
}
