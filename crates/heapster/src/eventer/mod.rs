//! `heapster eventer` (or this binary started as `eventer`): Heapster's second binary, which ships every
//! Kubernetes event to its sinks, taking the original eventer's flags.
//!
//! Where the original lost events on every restart and after every broken watch, each sink here has a cursor
//! ([`cursor`]) that only moves once the sink took a batch, a watch that resumes from it ([`ship`]), and, with two
//! replicas, a Lease that lets only one of them ship and hands the cursors to the next ([`lease`]).

mod cursor;
mod flags;
mod lease;
mod ship;

use cursor::Cursors;
use flags::{EventerFlags, MAX_SCRAPE_DELAY};
use heapster_sources::kubernetes::{Cluster, KubernetesOptions};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use ship::{Control, Shipper};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Runs the eventer with `args` (the program name first). Never returns before shutdown.
pub fn main(args: Vec<String>) -> ExitCode {
    let flags = EventerFlags::from_args(args);
    if let Err(e) = flags.validate() {
        eprintln!("eventer: {e}");
        return ExitCode::from(2);
    }
    let (level, compat) = (flags.log_level.clone(), flags.compat.clone());
    crate::launch("eventer", &level, &compat, || run(flags))
}

/// The original eventer's self-metrics (`eventer_*`, same names) and heapster-rs's per-sink ones.
#[derive(Clone)]
pub struct EventerMetrics {
    /// `eventer_scraper_events_total_number`: event versions read from the API server.
    received: Counter,
    /// `eventer_manager_last_time_seconds` and `eventer_scraper_last_time_seconds`: the last push.
    last_push: Gauge<f64, std::sync::atomic::AtomicU64>,
    last_scrape: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// The last push in milliseconds, for /healthz.
    last_push_ms: Arc<AtomicI64>,
    shipped: Family<Vec<(&'static str, String)>, Counter>,
    rejected: Family<Vec<(&'static str, String)>, Counter>,
    failures: Family<Vec<(&'static str, String)>, Counter>,
    cursor: Family<Vec<(&'static str, String)>, Gauge>,
    leader: Gauge,
}

impl EventerMetrics {
    fn register(r: &mut Registry) -> Self {
        let m = EventerMetrics {
            received: Counter::default(),
            last_push: Gauge::default(),
            last_scrape: Gauge::default(),
            last_push_ms: Arc::new(AtomicI64::new(unix_millis())),
            shipped: Family::default(),
            rejected: Family::default(),
            failures: Family::default(),
            cursor: Family::default(),
            leader: Gauge::default(),
        };
        // prometheus-client appends `_total` to counters; the original's name has none, so it is served as the
        // counter Heapster's client_golang served under that exact name.
        r.register("eventer_scraper_events_total_number", "The total number of events.", m.received.clone());
        r.register(
            "eventer_scraper_last_time_seconds",
            "Last time of event since unix epoch in seconds.",
            m.last_scrape.clone(),
        );
        r.register(
            "eventer_manager_last_time_seconds",
            "Last time of eventer housekeep since unix epoch in seconds.",
            m.last_push.clone(),
        );
        r.register("heapster_eventer_events_shipped", "Event versions each sink took.", m.shipped.clone());
        r.register(
            "heapster_eventer_events_rejected",
            "Event versions a sink refused for good (skipped, not retried).",
            m.rejected.clone(),
        );
        r.register("heapster_eventer_export_failures", "Exports that failed and were retried.", m.failures.clone());
        r.register(
            "heapster_eventer_resource_version",
            "The resource version through which each sink holds every event.",
            m.cursor.clone(),
        );
        r.register("heapster_eventer_leader", "1 while this replica ships events (holds the Lease).", m.leader.clone());
        m
    }

    fn pushed(&self) {
        let now = unix_millis();
        self.last_push_ms.store(now, Ordering::Relaxed);
        self.last_push.set(now as f64 / 1000.0);
        self.last_scrape.set(now as f64 / 1000.0);
    }
}

fn unix_millis() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// This replica's name in the Lease: the pod's name (or host name) and something unique to this process, as
/// client-go's `hostname_uuid`.
fn identity() -> String {
    let host = ["POD_NAME", "HOSTNAME"].iter().find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()));
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    format!("{}_{}{:08x}", host.unwrap_or_else(|| "eventer".into()), std::process::id(), nanos)
}

async fn run(flags: EventerFlags) -> Result<(), String> {
    let mut registry = Registry::default();
    let sink_metrics = heapster_sinks::SinkMetrics::register(&mut registry);
    let metrics = EventerMetrics::register(&mut registry);

    let source = &flags.sources[0];
    if !heapster_sources::kubernetes::is_kubernetes(source) {
        return Err(format!("--source={source}: the eventer reads events from kubernetes[:URL][?options] only"));
    }
    let sinks = flags
        .sinks
        .iter()
        .map(|uri| heapster_sinks::events::build(uri, &sink_metrics))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let options = KubernetesOptions::parse(source).map_err(|e| e.to_string())?;
    let cluster = Cluster::connect(options).await?;
    heapster_sources::kubernetes::probe(&cluster.client, &cluster.server).await?;
    if sinks.is_empty() {
        tracing::warn!("eventer: no --sink given; events are read and dropped");
    }
    for sink in &sinks {
        tracing::info!("eventer: starting with sink {}", sink.name());
    }
    let cursors = Cursors::open(flags.events_state_dir.clone())?;

    let (leader_tx, mut leader) = watch::channel(!flags.leader_elect);
    if flags.leader_elect {
        let (namespace, name) = flags.lease();
        let config = lease::LeaseConfig {
            namespace,
            name,
            identity: identity(),
            duration: flags.lease_duration,
            retry: flags.lease_retry,
        };
        tracing::info!("eventer: waiting for Lease {}/{} as {}", config.namespace, config.name, config.identity);
        tokio::spawn(lease::elect(cluster.client.clone(), config, cursors.clone(), leader_tx));
    }

    let addr = SocketAddr::new(flags.healthz_ip, flags.healthz_port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e} (choose another --healthz-port)"))?;
    let app = health_router(Arc::new(registry), metrics.clone(), leader.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    tracing::info!("eventer {} serving /healthz and /metrics on {addr}", env!("CARGO_PKG_VERSION"));

    let shutdown = crate::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        // Wait to lead (or for shutdown).
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            r = leader.wait_for(|l| *l) => if r.is_err() { return Ok(()) },
        }
        metrics.leader.set(1);
        let (control_tx, control) = watch::channel(Control::Run);
        let tasks: Vec<_> = sinks
            .iter()
            .map(|sink| {
                let shipper = Shipper {
                    sink: sink.clone(),
                    cursors: cursors.clone(),
                    frequency: flags.frequency,
                    export_timeout: Duration::from_secs(60),
                    metrics: metrics.clone(),
                };
                tokio::spawn(shipper.run(cluster.client.clone(), control.clone()))
            })
            .collect();
        let stopping = tokio::select! {
            _ = &mut shutdown => true,
            _ = leader.wait_for(|l| !*l) => false,
        };
        metrics.leader.set(0);
        if stopping {
            tracing::info!("eventer: stopping: pushing what is pending");
            control_tx.send_replace(Control::Drain);
            let all = async {
                for t in tasks {
                    let _ = t.await;
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(20), all).await;
            return Ok(());
        }
        control_tx.send_replace(Control::Halt);
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// `/healthz` as the original's: unhealthy when no push happened within 3 minutes, except on a replica that
/// waits for the Lease (it pushes nothing by design); `/metrics` in Prometheus text.
fn health_router(registry: Arc<Registry>, metrics: EventerMetrics, leader: watch::Receiver<bool>) -> axum::Router {
    use axum::http::StatusCode;
    use axum::routing::get;
    let healthz = move || {
        let last = metrics.last_push_ms.load(Ordering::Relaxed);
        let leading = *leader.borrow();
        async move {
            let since = Duration::from_millis(unix_millis().saturating_sub(last).max(0) as u64);
            if leading && since > MAX_SCRAPE_DELAY {
                let msg = format!("No event batch within {MAX_SCRAPE_DELAY:?} (latest: {since:?} ago)");
                return (StatusCode::INTERNAL_SERVER_ERROR, msg);
            }
            (StatusCode::OK, "ok".to_owned())
        }
    };
    let metrics_text = move || {
        let registry = registry.clone();
        async move {
            let mut text = String::new();
            let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
            ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
        }
    };
    axum::Router::new().route("/healthz", get(healthz)).route("/metrics", get(metrics_text))
}
