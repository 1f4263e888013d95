//! `--source=kubernetes.summary_api:<API server URL>?options` (and `kubernetes:`, which means the same: kubelets
//! answer 404 on the old cAdvisor paths): discover nodes from the API server, scrape each Ready node's kubelet
//! Summary API.
//!
//! Nodes are kept by a kube-rs reflector (list, then watch, re-listing with backoff when the watch breaks), so a
//! round never waits for the API server: it scrapes the nodes known at that moment.

mod metadata;
mod options;

pub use metadata::KubeMetadata;
pub use options::{AddressType, Connection, KubernetesOptions, SERVICE_ACCOUNT_DIR};

use crate::kubelet::{KubeletClient, KubeletSource};
use crate::{MetricsSource, MetricsSourceProvider};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use prometheus_client::metrics::gauge::Gauge;
use std::sync::{Arc, LazyLock};

/// Nodes skipped this round because their Ready condition is not True (scraping them would only time out).
pub static NOT_READY_NODES: LazyLock<Gauge> = LazyLock::new(Gauge::default);
/// Nodes known from the API server.
pub static KNOWN_NODES: LazyLock<Gauge> = LazyLock::new(Gauge::default);

/// Kubelet sources for every Ready node the API server knows.
pub struct KubernetesProvider {
    /// Pods, namespaces and nodes for the enrichers, from the same API server.
    pub metadata: Arc<KubeMetadata>,
    nodes: reflector::Store<Node>,
    options: KubernetesOptions,
    client: KubeletClient,
}

impl KubernetesProvider {
    /// Connects to the API server and starts watching nodes. Must be called inside a tokio runtime.
    pub async fn start(options: KubernetesOptions) -> Result<Self, String> {
        crate::ensure_crypto_provider();
        let connection = options.connection().await?;
        Self::start_with(options, connection).await
    }

    /// As [`Self::start`], with the connection already resolved (tests resolve it with their own environment).
    pub async fn start_with(options: KubernetesOptions, connection: Connection) -> Result<Self, String> {
        crate::ensure_crypto_provider();
        let server = connection.kube.cluster_url.to_string();
        let kube =
            kube::Client::try_from(connection.kube).map_err(|e| format!("kubernetes client for {server}: {e}"))?;
        probe(&kube, &server).await?;
        let (reader, writer) = reflector::store();
        let metadata = KubeMetadata::start(kube.clone());
        let api = kube::Api::<Node>::all(kube);
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(|n: &mut Node| n.metadata.managed_fields = None)
            .reflect(writer);
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                if let Err(e) = event {
                    tracing::warn!("watching nodes: {e}; retrying with backoff");
                }
            }
        });
        let client = KubeletClient::new(connection.kubelet)?;
        Ok(KubernetesProvider { metadata, nodes: reader, options, client })
    }

    /// Waits until the first list of nodes arrived (start-up, tests).
    pub async fn ready(&self) {
        let _ = self.nodes.wait_until_ready().await;
    }
}

/// Asks the API server for its version once, so that a configuration that can never work (an untrusted
/// certificate, refused credentials) stops heapster at start-up with a line saying what to change. An API server
/// that is merely unreachable is only warned about: the watches keep retrying.
async fn probe(kube: &kube::Client, server: &str) -> Result<(), String> {
    let e = match tokio::time::timeout(std::time::Duration::from_secs(15), kube.apiserver_version()).await {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(e)) => e,
        Err(_) => {
            tracing::warn!("API server {server}: no answer within 15s; watching nodes anyway, with retries");
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
    tracing::warn!("API server {server}: {e}; watching nodes anyway, with retries");
    Ok(())
}

fn is_ready(node: &Node) -> bool {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

impl MetricsSourceProvider for KubernetesProvider {
    fn sources(&self) -> Vec<Arc<dyn MetricsSource>> {
        let nodes = self.nodes.state();
        KNOWN_NODES.set(nodes.len() as i64);
        let mut not_ready = 0;
        let mut out: Vec<Arc<dyn MetricsSource>> = Vec::with_capacity(nodes.len());
        for node in nodes.iter() {
            let Some(name) = node.metadata.name.clone() else { continue };
            if !is_ready(node) {
                not_ready += 1;
                continue;
            }
            let Some(host) = self.options.address_of(node) else {
                tracing::warn!(
                    "node {name} has none of the address types {:?}: not scraped",
                    self.options.preferred_address_types
                );
                continue;
            };
            let host_id = self
                .options
                .host_id_annotation
                .as_ref()
                .and_then(|a| node.metadata.annotations.as_ref().and_then(|m| m.get(a)).cloned());
            let scheme = if self.options.kubelet_https { "https" } else { "http" };
            let host = if host.contains(':') { format!("[{host}]") } else { host };
            let url = format!("{scheme}://{host}:{}/stats/summary", self.options.kubelet_port);
            out.push(Arc::new(KubeletSource { node: name, host_id, url, client: self.client.clone() }));
        }
        NOT_READY_NODES.set(not_ready);
        out
    }
}

#[cfg(test)]
mod provider_tests;
#[cfg(test)]
mod tls_tests;
