//! The kinds of `--source` this build knows, and how one `--source` value becomes a provider of sources.

use crate::cadvisor::{CadvisorClient, CadvisorOptions, CadvisorSource, Hosts, HostsProvider};
use crate::kubernetes::{Cluster, KubernetesOptions, KubernetesProvider};
use crate::local::{LocalSource, LocalSourceConfig};
use crate::self_metrics::SourceMetrics;
use crate::{MetricsSourceProvider, StaticProvider};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use heapster_model::SpecUri;
use heapster_model::metadata::ClusterMetadata;
use heapster_model::options::{ConfigError, KindDoc, OptionSpec, Options, render_help};
use std::sync::Arc;

/// A built `--source`: what to scrape, and for Kubernetes sources the cluster metadata the enrichers need and the
/// connection the binary's pass-through and TokenReview share.
pub struct BuiltSource {
    pub provider: Arc<dyn MetricsSourceProvider>,
    pub metadata: Option<Arc<dyn ClusterMetadata>>,
    pub cluster: Option<Cluster>,
    /// Whether the source can have produced anything yet, with the reason when not (for `/healthz`).
    pub ready: Option<Readiness>,
}

/// `Ok` once a source can produce data, else the one-line reason it cannot yet.
pub type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

impl BuiltSource {
    fn fixed(provider: Arc<dyn MetricsSourceProvider>) -> Self {
        BuiltSource { provider, metadata: None, cluster: None, ready: None }
    }
}

/// Makes a kind's provider from its checked options; self-metrics are counted on the handles given.
pub type Builder = for<'a> fn(Options<'a>, SourceMetrics) -> BoxFuture<'a, Result<BuiltSource, ConfigError>>;

/// One kind of `--source`: how `--help` shows it, and how it is built.
pub struct SourceKind {
    pub doc: KindDoc,
    pub build: Builder,
}

/// Every kind of `--source`, in `--help`'s order.
pub const SOURCES: &[SourceKind] = &[
    SourceKind {
        doc: KindDoc {
            key: "local",
            aliases: &[],
            usage: "local[?hostname=NAME]",
            summary: "This host, read from its cgroups and procfs: every cgroup is a container. The default.",
            options: LOCAL_OPTIONS,
        },
        build: |o, m| async move { local(&o, m) }.boxed(),
    },
    SourceKind {
        doc: KindDoc {
            key: crate::kubernetes::KEY,
            // Kubelets answer 404 on the old cAdvisor paths, so `kubernetes` means the Summary API too.
            aliases: &["kubernetes"],
            usage: "kubernetes.summary_api:[https://APISERVER][?opts]",
            summary: "Nodes from the Kubernetes API server; each Ready node's kubelet Summary API.",
            options: crate::kubernetes::OPTIONS,
        },
        build: |o, m| kubernetes(o, m).boxed(),
    },
    SourceKind {
        doc: KindDoc {
            key: "cadvisor",
            aliases: &[],
            usage: "cadvisor:external?hostsFile=PATH[&opts] | cadvisor:?standalone=true[&opts]",
            summary: "Hosts running cAdvisor (or heapster) without a kubelet: Heapster's CoreOS mode.",
            options: crate::cadvisor::OPTIONS,
        },
        build: |o, m| async move { cadvisor(&o, m) }.boxed(),
    },
];

const LOCAL_OPTIONS: &[OptionSpec] = &[OptionSpec::new("hostname", "", "the node's name (default: the system's)")];

/// The kind `key` names (its key or an alias).
pub fn kind(key: &str) -> Option<&'static SourceKind> {
    SOURCES.iter().find(|k| k.doc.is(key))
}

/// `--help`'s list of source kinds with their options.
pub fn help() -> String {
    render_help(&SOURCES.iter().map(|k| k.doc).collect::<Vec<_>>())
}

/// Builds the provider for one `--source`. Kubernetes sources connect to the API server here.
pub async fn build(uri: &SpecUri, metrics: &SourceMetrics) -> Result<BuiltSource, ConfigError> {
    let Some(kind) = kind(&uri.key) else {
        let known: Vec<&str> =
            SOURCES.iter().flat_map(|k| std::iter::once(&k.doc.key).chain(k.doc.aliases)).copied().collect();
        let reason = format!("unknown source {:?}; this build knows: {}", uri.key, known.join(", "));
        return Err(ConfigError::new("--source", uri, &[], reason));
    };
    (kind.build)(Options::new("--source", uri, kind.doc.options)?, metrics.clone()).await
}

fn local(o: &Options, metrics: SourceMetrics) -> Result<BuiltSource, ConfigError> {
    if !o.uri().target.is_empty() {
        return Err(o.error("the local source reads this host and takes no URL"));
    }
    let mut config = LocalSourceConfig::default();
    if let Some(name) = o.non_empty("hostname") {
        config.hostname = name.to_owned();
    }
    let source = LocalSource::new(config, metrics).map_err(|e| o.error(e.to_string()))?;
    Ok(BuiltSource::fixed(Arc::new(StaticProvider(vec![Arc::new(source)]))))
}

async fn kubernetes(o: Options<'_>, metrics: SourceMetrics) -> Result<BuiltSource, ConfigError> {
    let options = KubernetesOptions::from_options(&o)?;
    let cluster = Cluster::connect(options).await.map_err(|e| o.error(e))?;
    let provider = KubernetesProvider::start(&cluster, metrics).await.map_err(|e| o.error(e))?;
    let metadata: Arc<dyn ClusterMetadata> = provider.metadata.clone();
    let ready = provider.readiness(&cluster.server);
    Ok(BuiltSource {
        provider: Arc::new(provider),
        metadata: Some(metadata),
        cluster: Some(cluster),
        ready: Some(ready),
    })
}

/// Heapster's CoreOS mode: plain hosts running cAdvisor (or heapster, which serves the same API).
fn cadvisor(o: &Options, metrics: SourceMetrics) -> Result<BuiltSource, ConfigError> {
    let options = CadvisorOptions::from_options(o)?;
    let client = CadvisorClient::new(options.client).map_err(|e| o.error(e))?;
    let provider: Arc<dyn MetricsSourceProvider> = match options.hosts {
        Hosts::External { hosts_file } => {
            Arc::new(HostsProvider::new(hosts_file, options.port, client, metrics).map_err(|e| o.error(e))?)
        }
        Hosts::Standalone { hostname } => {
            let base = crate::cadvisor::hosts::base_url("127.0.0.1", options.port);
            Arc::new(StaticProvider(vec![Arc::new(CadvisorSource::new(hostname, base, client, metrics))]))
        }
    };
    Ok(BuiltSource::fixed(provider))
}
