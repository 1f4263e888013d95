//! Turns one `--source` value into a provider of sources.

use crate::cadvisor::{CadvisorClient, CadvisorOptions, CadvisorSource, Hosts, HostsProvider};
use crate::kubernetes::{KubernetesOptions, KubernetesProvider};
use crate::local::{LocalSource, LocalSourceConfig};
use crate::{MetricsSourceProvider, StaticProvider};
use heapster_model::SpecUri;
use heapster_model::metadata::ClusterMetadata;
use std::sync::Arc;

/// The source keys this build knows, for `--help` and error messages.
pub const KNOWN_SOURCES: &[&str] = &["local", "kubernetes.summary_api", "kubernetes", "cadvisor"];

/// Why a `--source` value could not be turned into a source. Reported at start-up, before anything runs.
#[derive(Debug, thiserror::Error)]
#[error("--source={uri}: {reason}")]
pub struct ConfigError {
    pub uri: String,
    pub reason: String,
}

impl ConfigError {
    fn new(uri: &SpecUri, reason: impl Into<String>) -> Self {
        ConfigError { uri: uri.to_string(), reason: reason.into() }
    }
}

/// A built `--source`: what to scrape, and for Kubernetes sources the cluster metadata the enrichers need.
pub struct BuiltSource {
    pub provider: Arc<dyn MetricsSourceProvider>,
    pub metadata: Option<Arc<dyn ClusterMetadata>>,
}

/// Builds the provider for one `--source`. Kubernetes sources connect to the API server here.
pub async fn build(uri: &SpecUri) -> Result<BuiltSource, ConfigError> {
    match uri.key.as_str() {
        "local" => {
            if !uri.target.is_empty() {
                return Err(ConfigError::new(uri, "the local source reads this host and takes no URL"));
            }
            let mut config = LocalSourceConfig::default();
            for (k, v) in &uri.options {
                match k.as_str() {
                    "hostname" if !v.is_empty() => config.hostname = v.clone(),
                    _ => {
                        return Err(ConfigError::new(
                            uri,
                            format!("unknown option {k:?}; the local source takes hostname=NAME"),
                        ));
                    }
                }
            }
            let source = LocalSource::new(config).map_err(|e| ConfigError::new(uri, e.to_string()))?;
            Ok(BuiltSource { provider: Arc::new(StaticProvider(vec![Arc::new(source)])), metadata: None })
        }
        // Kubelets answer 404 on the old cAdvisor paths, so `kubernetes` means the Summary API too.
        "kubernetes.summary_api" | "kubernetes" => {
            let options = KubernetesOptions::parse(uri).map_err(|e| ConfigError::new(uri, e))?;
            let provider = KubernetesProvider::start(options).await.map_err(|e| ConfigError::new(uri, e))?;
            let metadata: Arc<dyn ClusterMetadata> = provider.metadata.clone();
            Ok(BuiltSource { provider: Arc::new(provider), metadata: Some(metadata) })
        }
        // Heapster's CoreOS mode: plain hosts running cAdvisor (or heapster, which serves the same API).
        "cadvisor" => {
            let options = CadvisorOptions::parse(uri).map_err(|e| ConfigError::new(uri, e))?;
            let client = CadvisorClient::new(options.client).map_err(|e| ConfigError::new(uri, e))?;
            let provider: Arc<dyn MetricsSourceProvider> = match options.hosts {
                Hosts::External { hosts_file } => Arc::new(
                    HostsProvider::new(hosts_file, options.port, client).map_err(|e| ConfigError::new(uri, e))?,
                ),
                Hosts::Standalone { hostname } => {
                    let base = crate::cadvisor::hosts::base_url("127.0.0.1", options.port);
                    Arc::new(StaticProvider(vec![Arc::new(CadvisorSource::new(hostname, base, client))]))
                }
            };
            Ok(BuiltSource { provider, metadata: None })
        }
        other => Err(ConfigError::new(
            uri,
            format!("unknown source {other:?}; this build knows: {}", KNOWN_SOURCES.join(", ")),
        )),
    }
}
