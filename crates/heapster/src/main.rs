//! The `heapster` binary: parses flags, wires sources -> processors -> store and sinks -> HTTP API, and shuts
//! down cleanly on SIGTERM or SIGINT.

mod allocator;
mod compat_flags;
mod doctor;
mod eventer;
mod flags;
mod heapster_summaries;
mod kube_proxy;
mod pipeline;
mod self_metrics;
mod server;

use flags::Flags;
use heapster_api::types::ValueStyle;
use heapster_processors::{
    ClusterAggregator, ClusterFrom, DataProcessor, NodeAutoscalingConfig, PodEnricherConfig, RateCalculator,
};
use heapster_sinks::{SinkManager, SinkManagerConfig, SpoolConfig};
use heapster_sources::kubernetes::lease::Leases;
use heapster_sources::kubernetes::shard;
use heapster_sources::{MetricsSource, MetricsSourceProvider};
use heapster_store::{Store, StoreConfig};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

fn main() -> ExitCode {
    // `heapster eventer ...`, or this binary installed (or linked) as `eventer`: Heapster's events binary.
    let mut args: Vec<String> = std::env::args().collect();
    let started_as = args.first().map(|a| std::path::Path::new(a).file_name().unwrap_or_default().to_owned());
    if started_as.is_some_and(|n| n == "eventer") {
        return eventer::main(args);
    }
    if args.get(1).is_some_and(|a| a == "eventer") {
        args.remove(0);
        return eventer::main(args);
    }
    if args.get(1).is_some_and(|a| a == "doctor") {
        args.remove(0);
        return doctor::main(args);
    }
    let flags = Flags::from_env();
    if let Err(e) = flags.validate() {
        eprintln!("heapster: {e}");
        return ExitCode::from(2);
    }
    allocator::keep_freed_pages_for_rounds_of(flags.metric_resolution);
    let (level, compat) = (flags.log_level.clone(), flags.compat.clone());
    launch("heapster", &level, &compat, || run(flags))
}

/// What `heapster` and `heapster eventer` both do around their work: log to standard error through `log_level`,
/// say what each compatibility flag given means here, install the TLS provider before any client is built
/// (reqwest has none of its own here), run on a runtime of `--max_procs` threads (Heapster's GOMAXPROCS), and end
/// with one line naming `program` when the work fails.
pub(crate) fn launch<F>(
    program: &str,
    log_level: &str,
    compat: &compat_flags::Compat,
    work: impl FnOnce() -> F,
) -> ExitCode
where
    F: std::future::Future<Output = Result<(), String>>,
{
    let Ok(filter) = tracing_subscriber::EnvFilter::try_new(log_level) else {
        eprintln!("{program}: --log_level={log_level:?} is not a log filter (try info or debug)");
        return ExitCode::from(2);
    };
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    if let Some((was, now)) = server::connections::raise_open_file_limit() {
        tracing::debug!("open-file limit raised from {was} to {now} (the hard limit)");
    }
    for notice in &compat.notices {
        tracing::info!("{notice}");
    }
    heapster_sources::ensure_crypto_provider();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = compat.max_procs {
        runtime.worker_threads(n);
    }
    let runtime = runtime.enable_all().build().expect("tokio runtime");
    match runtime.block_on(work()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sources from every `--source`, merged into one provider.
struct Providers(Vec<Arc<dyn MetricsSourceProvider>>);

impl MetricsSourceProvider for Providers {
    fn sources(&self) -> Vec<Arc<dyn MetricsSource>> {
        self.0.iter().flat_map(|p| p.sources()).collect()
    }
}

async fn run(flags: Flags) -> Result<(), String> {
    // The pipeline's stages first in heapster's bill, the sinks' after them.
    heapster_cost::register_fixed();
    let mut registry = prometheus_client::registry::Registry::default();
    let source_metrics = heapster_sources::SourceMetrics::register(&mut registry);
    let pipeline_metrics = self_metrics::PipelineMetrics::new(&mut registry);
    let heapster_names = pipeline_metrics.heapster.clone();
    let http_metrics = pipeline_metrics.heapster.http.clone();
    let sink_metrics = heapster_sinks::SinkMetrics::register(&mut registry)
        .observe_exports(move |sink, took| heapster_names.exported(sink, took));
    let server_metrics = server::ServerMetrics::new(&mut registry);
    // Checked before anything starts, so that a bad URL is one line at start-up.
    let static_peers = heapster_api::peers::StaticPeers::parse(&flags.peers)?;

    let mut providers = Vec::new();
    let mut metadata = None;
    let mut cluster = None;
    let mut ready = Vec::new();
    for uri in flags.sources_or_default() {
        let built = heapster_sources::build(&uri, &source_metrics).await.map_err(|e| e.to_string())?;
        providers.push(built.provider);
        metadata = metadata.or(built.metadata);
        // The first kubernetes source's client also serves the /api/v1/nodes pass-through and the TokenReviews.
        cluster = cluster.or(built.cluster);
        ready.extend(built.ready);
    }
    let shards = match (flags.shard(), cluster.as_ref()) {
        (Some(config), Some(cluster)) => Some(join_shards(config, cluster, &mut registry)),
        _ => None,
    };
    let rollups = match &shards {
        None => pipeline::SinkRollups::Whole,
        Some((config, _, _)) if flags.shard_export_rollups => pipeline::SinkRollups::Labelled(config.identity.clone()),
        Some(_) => pipeline::SinkRollups::Omitted,
    };
    if let Some(line) = rollups.describe() {
        tracing::info!("{line}");
    }
    let fanout = fan_out(&flags, static_peers, shards.as_ref().map(|(_, m, _)| m.clone()), &mut registry)?;
    let sinks = flags
        .sinks
        .iter()
        .map(|uri| heapster_sinks::build(uri, &sink_metrics))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;

    let historical =
        flags.historical_source.as_ref().map(heapster_sinks::historical).transpose().map_err(|e| e.to_string())?;

    // --disable_metric_sink (Heapster's in-memory sink off): only the newest batch, which /healthz still reads.
    let window = if flags.compat.disable_metric_sink { flags.metric_resolution } else { flags.store_window };
    let store = Arc::new(Store::new(StoreConfig { window, resolution: flags.metric_resolution }));
    // With a Kubernetes source, Heapster's whole chain (enrichment and roll-ups); standalone, rates and the cluster.
    let processors: Vec<Box<dyn DataProcessor>> = match metadata {
        Some(md) => heapster_processors::kubernetes_chain_with(
            md,
            PodEnricherConfig {
                label_separator: flags.label_separator.clone(),
                ignore_labels: flags.ignore_label.clone(),
                store_labels: flags.store_label.clone(),
            },
            NodeAutoscalingConfig::default(),
            flags.cluster_aggregation,
        ),
        None => vec![Box::new(RateCalculator::new()), Box::new(ClusterAggregator::new(ClusterFrom::Nodes))],
    };
    self_metrics::ProcessorCounters::register(&mut registry, &processors);
    let sink_manager = SinkManager::try_start(
        sinks,
        SinkManagerConfig {
            queue_batches: flags.sink_queue_batches,
            export_timeout: flags.sink_export_data_timeout,
            spool: flags.sink_buffer_dir().map(|dir| SpoolConfig { dir, max_bytes: flags.sink_buffer_max_bytes }),
        },
        sink_metrics,
    )?;
    // heapster's own bill: the last hour of rounds at the default resolution (a few hundred bytes a round).
    let cost = Arc::new(heapster_cost::Ledger::new(240).with_sinks(sink_manager.readings()));

    let ip = flags.listen_ip.0.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    let addr = SocketAddr::new(ip, flags.heapster_port);
    let server_setup = server::ServerSetup::from_flags(&flags, cluster.as_ref(), server_metrics)?;
    let listener = bind(addr).await?;
    tracing::info!(
        "heapster {} serving on {}://{} (resolution {:?}, store window {:?})",
        env!("CARGO_PKG_VERSION"),
        server_setup.scheme(),
        listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        flags.metric_resolution,
        flags.store_window
    );

    let app = heapster_api::router(heapster_api::ApiState {
        historical,
        store: store.clone(),
        registry: Arc::new(registry),
        resolution: flags.metric_resolution,
        max_staleness: flags.metric_resolution * 3,
        kube_api: cluster.as_ref().map(kube_proxy::for_cluster),
        ready: (!ready.is_empty()).then(|| -> Arc<dyn Fn() -> Result<(), String> + Send + Sync> {
            Arc::new(move || ready.iter().try_for_each(|r| r()))
        }),
        values: if flags.api_typed_values { ValueStyle::Typed } else { ValueStyle::Heapster },
        export: !flags.compat.disable_export,
        fanout,
        cost: Some(cost.clone()),
        cardinality: sink_manager.cardinality(),
    })
    .layer(axum::middleware::from_fn_with_state(http_metrics, heapster_summaries::instrument));

    let (stop_tx, stop_rx) = watch::channel(false);
    let pipeline = pipeline::Pipeline {
        provider: Arc::new(Providers(providers)),
        processors,
        store,
        sinks: sink_manager,
        resolution: flags.metric_resolution,
        metrics: pipeline_metrics,
        max_concurrent: flags.max_concurrent_scrapes,
        stream_sets: !flags.store_whole_rounds,
        rollups,
        cost,
        ingester: Default::default(),
    };
    let pipeline_task = tokio::spawn(pipeline.run(stop_rx.clone()));

    let mut server_stop = stop_rx.clone();
    let server = server::serve(listener, app, server_setup, async move {
        let _ = server_stop.wait_for(|s| *s).await;
    });
    let server_task = tokio::spawn(server);

    let shard_task = shards
        .map(|(config, membership, leases)| tokio::spawn(shard::run(leases, config, membership, stop_rx.clone())));

    shutdown_signal().await;
    tracing::info!("stopping: finishing the current round and flushing sinks");
    let _ = stop_tx.send(true);
    if let Some(task) = shard_task {
        // The Lease goes first, so that the others take this replica's nodes from their next round.
        let _ = tokio::time::timeout(shard::LEAVE_TIMEOUT + Duration::from_secs(1), task).await;
    }
    if let Ok(sinks) = pipeline_task.await {
        sinks.shutdown(Duration::from_secs(10)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), server_task).await;
    tracing::info!("stopped");
    Ok(())
}

/// The shards' live members as the fan-out's peers: the Leases say who they are and where they listen.
struct ShardPeers(Arc<shard::Membership>);

impl heapster_api::peers::Peers for ShardPeers {
    fn others(&self) -> Vec<String> {
        self.0.others()
    }
}

/// The other replicas reads fan out to (the shards' Leases, or `--peers`), asked with the sinks' HTTP client: one
/// deadline, one CA.
fn fan_out(
    flags: &Flags,
    static_peers: heapster_api::peers::StaticPeers,
    membership: Option<Arc<shard::Membership>>,
    registry: &mut prometheus_client::registry::Registry,
) -> Result<Option<Arc<heapster_api::fanout::FanOut>>, String> {
    use heapster_api::peers::Peers;
    let peers: Arc<dyn Peers> = match membership {
        Some(_) if !static_peers.others().is_empty() => {
            return Err("--peers and --shard_lease_namespace: with shards the peers come from their Leases; \
                        drop --peers"
                .into());
        }
        Some(m) => Arc::new(ShardPeers(m)),
        // `--peers=` (an empty list, as a manifest's template may leave it) is no fan-out.
        None if static_peers.others().is_empty() => return Ok(None),
        None => Arc::new(static_peers),
    };
    let settings = heapster_sinks::util::http::ClientSettings {
        timeout: flags.peers_timeout,
        insecure: false,
        ca_file: flags.peers_ca_file.clone(),
        trust_hint: "--peers_ca_file",
        insecure_hint: "--peers with http:// URLs",
    };
    let client = heapster_sinks::util::http::client(&settings).map_err(|e| format!("--peers_ca_file: {e}"))?;
    let token = Some(flags.peers_token_file.clone()).filter(|p| !p.as_os_str().is_empty());
    Ok(Some(Arc::new(heapster_api::fanout::FanOut::new(peers, client, token, registry))))
}

/// Makes this replica's membership, which the kubernetes source filters its nodes with from its next round; the
/// Lease is taken when the returned parts are run ([`shard::run`]).
fn join_shards(
    config: shard::ShardConfig,
    cluster: &heapster_sources::kubernetes::Cluster,
    registry: &mut prometheus_client::registry::Registry,
) -> (shard::ShardConfig, Arc<shard::Membership>, Leases) {
    let membership = Arc::new(shard::Membership::new(&config, shard::ShardMetrics::register(registry)));
    let _ = cluster.shard.set(membership.clone());
    tracing::info!(
        "shard: joining as {} (Lease {}/{}, replication {}, serving others at {})",
        config.identity,
        config.namespace,
        config.lease_name(),
        config.replication,
        config.address
    );
    let leases = Leases::new(cluster.client.clone(), &config.namespace);
    (config, membership, leases)
}

/// Binds the API port; on a dual-stack host `[::]` also takes IPv4.
async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => Ok(l),
        // No IPv6 on this host: fall back to IPv4's any-address.
        Err(_) if addr.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED) => {
            let v4 = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), addr.port());
            tokio::net::TcpListener::bind(v4).await.map_err(|e| bind_error(v4, e))
        }
        Err(e) => Err(bind_error(addr, e)),
    }
}

fn bind_error(addr: SocketAddr, e: std::io::Error) -> String {
    format!("cannot listen on {addr}: {e} (is another heapster running? choose another --heapster_port)")
}

pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}
