//! `--source=kubernetes.summary_api:<API server URL>?options` (and `kubernetes:`, which means the same: kubelets
//! answer 404 on the old cAdvisor paths): discover nodes from the API server, scrape each Ready node's kubelet
//! Summary API.
//!
//! Nodes are kept by one watch ([`watch`]: list, then watch, re-listing at once on 410 Gone) shared with the
//! enrichers' metadata, so a round never waits for the API server: it scrapes the nodes known at that moment.

pub mod events;
pub mod lease;
mod metadata;
mod options;
pub mod shard;
mod watch;

pub use metadata::{KubeMetadata, NodeEntry};
pub use options::{AddressType, Connection, KubeletEndpoint, KubernetesOptions, OPTIONS, SERVICE_ACCOUNT_DIR};

use crate::kubelet::{ClientConfig, KubeletClient, KubeletSource};
use crate::self_metrics::SourceMetrics;
use crate::{MetricsSource, MetricsSourceProvider};
use std::sync::Arc;

/// The `--source` key of this kind (`kubernetes` is its alias).
pub const KEY: &str = "kubernetes.summary_api";

/// Whether a `--source` value names this kind.
pub fn is_kubernetes(uri: &heapster_model::SpecUri) -> bool {
    crate::kind(&uri.key).is_some_and(|k| k.doc.key == KEY)
}

/// One kubernetes `--source`, resolved once at start-up: its options, and one API server client that the node
/// discovery, the metadata watches, the `/api/v1/nodes` pass-through and the TokenReview authenticator all share
/// (as metrics-server's `Config.Complete()` makes one rest config for everything).
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    /// The API server's URL, for messages.
    pub server: String,
    pub options: KubernetesOptions,
    /// The kubelet client's settings, which take the bearer token and trust of the API server connection.
    pub kubelet: ClientConfig,
    /// Which of the nodes this replica scrapes, once the binary joined the shards (`--shard_lease_namespace`).
    pub shard: shard::ShardSlot,
}

impl Cluster {
    /// Reads the kubeconfig, service account and CA files the options name, and makes the client. Nothing is
    /// asked of the API server yet. Must be called inside a tokio runtime (the client spawns its worker).
    pub async fn connect(options: KubernetesOptions) -> Result<Cluster, String> {
        let connection = options.connection().await?;
        Cluster::new(options, connection)
    }

    /// As [`Self::connect`], with the connection already resolved (tests resolve it with their own environment).
    ///
    /// kube's own retry of 429, 503 and 504 answers is turned off: it retries each request up to 15 times with
    /// delays growing towards minutes, so during an API server outage a watch sat in it unseen and came back long
    /// after the server did. The watches retry on their own terms ([`watch`]), and a pass-through request or a
    /// TokenReview should fail within its deadline rather than hang.
    pub fn new(options: KubernetesOptions, connection: Connection) -> Result<Cluster, String> {
        crate::ensure_crypto_provider();
        let server = connection.kube.cluster_url.to_string();
        let mut config = connection.kube;
        config.default_retry = false;
        let client = kube::Client::try_from(config).map_err(|e| format!("kubernetes client for {server}: {e}"))?;
        Ok(Cluster { client, server, options, kubelet: connection.kubelet, shard: Default::default() })
    }
}

/// Kubelet sources for every Ready node the API server knows.
pub struct KubernetesProvider {
    /// Pods, namespaces and nodes for the enrichers, from the same API server.
    pub metadata: Arc<KubeMetadata>,
    options: KubernetesOptions,
    client: KubeletClient,
    metrics: SourceMetrics,
    shard: shard::ShardSlot,
}

impl KubernetesProvider {
    /// Checks that the cluster's API server accepts heapster, then starts watching nodes, pods and namespaces.
    pub async fn start(cluster: &Cluster, metrics: SourceMetrics) -> Result<Self, String> {
        probe(&cluster.client, &cluster.server).await?;
        let metadata = KubeMetadata::start(cluster.client.clone(), cluster.options.host_id_annotation.clone());
        let client = KubeletClient::new(cluster.kubelet.clone())?;
        Ok(KubernetesProvider {
            metadata,
            options: cluster.options.clone(),
            client,
            metrics,
            shard: cluster.shard.clone(),
        })
    }

    /// Ready once the API server listed at least one node: until then nothing can be scraped, and a heapster that
    /// cannot list nodes (no RBAC, no API server) must not look healthy. Latched: nodes that go away later are the
    /// cluster's business, not heapster's health.
    pub fn readiness(&self, server: &str) -> crate::Readiness {
        let metadata = self.metadata.clone();
        let server = server.to_owned();
        let seen = std::sync::atomic::AtomicBool::new(false);
        Arc::new(move || {
            use std::sync::atomic::Ordering;
            if seen.load(Ordering::Relaxed) || (metadata.nodes_listed() && !metadata.nodes().is_empty()) {
                seen.store(true, Ordering::Relaxed);
                return Ok(());
            }
            Err(format!(
                "no node listed yet by the API server {server}: check that it is reachable and that heapster's \
                 ClusterRole grants list and watch on nodes (heapster's log says why the watch fails)"
            ))
        })
    }

    /// Waits until the first list of nodes arrived (start-up, tests).
    pub async fn ready(&self) {
        while !self.metadata.nodes_listed() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// Asks the API server for its version once, so that a configuration that can never work (an untrusted
/// certificate, refused credentials) stops heapster at start-up with a line saying what to change. An API server
/// that is merely unreachable is only warned about: the watches keep retrying.
pub async fn probe(kube: &kube::Client, server: &str) -> Result<(), String> {
    let e = match tokio::time::timeout(std::time::Duration::from_secs(15), kube.apiserver_version()).await {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(e)) => e,
        Err(_) => {
            tracing::warn!("API server {server}: no answer within 15s; going on, with retries");
            return Ok(());
        }
    };
    if let Some(tls) = heapster_net::tls_failure(&e) {
        let trust = "the CA of the auth= kubeconfig, or the service account's ca.crt,";
        return Err(format!("API server {server}: {}", heapster_net::describe_tls(&tls, trust, "insecure=true")));
    }
    if let kube::Error::Api(status) = &e
        && (status.code == 401 || status.code == 403)
    {
        return Err(format!(
            "API server {server} answered {} ({}): credentials refused; check the token or certificate of the \
             auth= kubeconfig's user, or the service account (useServiceAccount=true, inClusterConfig=true)",
            status.code, status.message
        ));
    }
    let auth_failed = match &e {
        kube::Error::Auth(_) => true,
        kube::Error::Service(inner) => inner.downcast_ref::<kube::client::AuthError>().is_some(),
        _ => false,
    };
    if auth_failed {
        return Err(format!("API server {server}: cannot authenticate with the configured credentials: {e}"));
    }
    tracing::warn!("API server {server}: {e}; going on, with retries");
    Ok(())
}

impl MetricsSourceProvider for KubernetesProvider {
    fn sources(&self) -> Vec<Arc<dyn MetricsSource>> {
        let nodes = self.metadata.nodes();
        self.metrics.kubernetes_nodes.set(nodes.len() as i64);
        let mut not_ready = 0;
        let shard = self.shard.get();
        let mut out: Vec<Arc<dyn MetricsSource>> = Vec::with_capacity(nodes.len());
        // The first nodes (by name, so the same ones each round) keep their connections; the rest reconnect.
        let max_kept = self.client.max_kept();
        for (name, node) in nodes {
            if !node.ready {
                not_ready += 1;
                continue;
            }
            // Another replica's share; judged among Ready nodes only, as every replica lists the same ones.
            if shard.is_some_and(|s| !s.owns(&name)) {
                continue;
            }
            let Some(endpoint) = self.options.kubelet_endpoint(&node.addresses) else {
                tracing::warn!(
                    "node {name} has none of the address types {:?}: not scraped",
                    self.options.preferred_address_types
                );
                continue;
            };
            let host_id = node.host_id.clone();
            let url = endpoint.url("/stats/summary");
            out.push(Arc::new(KubeletSource {
                node: name,
                host_id,
                url,
                client: if out.len() < max_kept { self.client.clone() } else { self.client.reconnecting() },
                metrics: self.metrics.clone(),
                api_pods: Some(self.metadata.clone()),
            }));
        }
        self.metrics.kubernetes_nodes_not_ready.set(not_ready);
        if let Some(s) = shard {
            s.metrics.nodes_assigned.set(out.len() as i64);
        }
        out
    }
}

#[cfg(test)]
mod provider_tests;
#[cfg(test)]
mod tls_tests;
