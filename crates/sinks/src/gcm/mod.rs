//! `--sink=gcm` and `--sink=stackdriver`: metrics to Google Cloud Monitoring (API v3, REST), in the layouts of
//! Heapster's two sinks of those names. `stackdriver` writes Heapster's Kubernetes metrics on the `k8s_container`,
//! `k8s_pod` and `k8s_node` resources; `gcm` writes every catalog metric on the `global` resource.
//!
//! The parts: [`config`] (options), [`mapping`] (which metric becomes which), [`encoder`] (the JSON and the
//! service's rules), [`service`] (descriptors, requests, partial failures). Credentials, project and cluster come
//! from [`crate::util::google`].

pub mod config;
pub mod encoder;
pub mod mapping;
pub mod service;

pub use config::GcmConfig;

use crate::util::google::{ApiSpec, Env, GoogleApi, auth};
use crate::{ConfigError, DataSink, SinkError, SinkKind, SinkMetrics};
use async_trait::async_trait;
use heapster_model::{DataBatch, KindDoc, Options, SpecUri};
use std::sync::Arc;

/// `--sink=gcm` in the sink table.
pub const GCM: SinkKind = SinkKind {
    doc: KindDoc {
        key: "gcm",
        aliases: &[],
        usage: "gcm[?opts]",
        summary: "Google Cloud Monitoring, Heapster's GCM layout: every metric on the global resource. Credentials: \
                  $GOOGLE_APPLICATION_CREDENTIALS (a service-account key file), else the GCE/GKE metadata server.",
        options: config::GCM_OPTIONS,
    },
    build: |uri, metrics| Ok(Arc::new(GcmSink::new(uri, metrics, &Env::from_process())?)),
    historical: None,
};

/// `--sink=stackdriver` in the sink table.
pub const STACKDRIVER: SinkKind = SinkKind {
    doc: KindDoc {
        key: "stackdriver",
        aliases: &[],
        usage: "stackdriver[?opts]",
        summary: "Google Cloud Monitoring, Heapster's Stackdriver layout: k8s_container, k8s_pod and k8s_node \
                  resources. Credentials as for gcm.",
        options: config::STACKDRIVER_OPTIONS,
    },
    build: |uri, metrics| Ok(Arc::new(GcmSink::new(uri, metrics, &Env::from_process())?)),
    historical: None,
};

/// Either of the two Cloud Monitoring sinks.
pub struct GcmSink {
    service: Arc<service::Service>,
    name: String,
}

impl GcmSink {
    /// Parses the `--sink` value and reads the key file; contacts no server.
    pub fn new(uri: &SpecUri, metrics: &SinkMetrics, env: &Env) -> Result<Self, ConfigError> {
        let stackdriver = uri.key == STACKDRIVER.doc.key;
        let kind = if stackdriver { &STACKDRIVER } else { &GCM };
        let o = Options::new("--sink", uri, kind.doc.options)?;
        let config = GcmConfig::from_options(&o, stackdriver)?;
        let name = o.redacted();
        let counters = metrics.for_kind(kind.doc.key).sink(&name);
        let spec = ApiSpec {
            service: "Cloud Monitoring",
            scope: auth::MONITORING_WRITE,
            role: "roles/monitoring.metricWriter",
            needs_cluster: stackdriver,
        };
        let api = GoogleApi::new(&o, env, spec, counters, format!("Cloud Monitoring at {}", config.endpoint))?;
        if let Some(p) = api.configured_project() {
            tracing::info!(sink = %name, project = p, "Cloud Monitoring sink for project {p}");
        }
        Ok(GcmSink { service: Arc::new(service::Service::new(api, config)), name })
    }

    pub fn service(&self) -> &Arc<service::Service> {
        &self.service
    }
}

#[async_trait]
impl DataSink for GcmSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError> {
        self.service.export(&batch).await
    }
}

#[cfg(test)]
mod tests;
