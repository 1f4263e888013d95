//! `heapster eventer --sink=gcl`: Kubernetes events to Google Cloud Logging (API v2 `entries.write`), in the log
//! Heapster's eventer wrote (`kubernetes.io/events`), on the `k8s_pod`, `k8s_node` or `k8s_cluster` resource of
//! the event's object. Entries are keyed by event version ([`encoder::insert_id`]), so a batch sent again is kept
//! once by the service; with the eventer's cursor that makes delivery exactly once.

pub mod encoder;

use crate::events::{EventSink, EventSinkKind};
use crate::util::google::{
    self, ApiSpec, CLUSTER_LOCATION, CLUSTER_NAME, Env, GoogleApi, GoogleError, PROJECT, TIMEOUT, ZONE, auth,
    rpc_code_name,
};
use crate::util::http::Verdict;
use crate::{ConfigError, SinkError, SinkMetrics};
use async_trait::async_trait;
use heapster_model::events::EventBatch;
use heapster_model::{KindDoc, OptionSpec, Options, SpecUri};
use std::sync::Arc;

/// Where Cloud Logging answers.
pub const DEFAULT_ENDPOINT: &str = "https://logging.googleapis.com";

/// `--sink=gcl`'s options.
pub const OPTIONS: &[OptionSpec] = &[
    PROJECT,
    CLUSTER_NAME,
    CLUSTER_LOCATION,
    ZONE,
    OptionSpec::new("endpoint", DEFAULT_ENDPOINT, "Cloud Logging API base URL"),
    TIMEOUT,
];

/// `--sink=gcl` in the event sink table.
pub const KIND: EventSinkKind = EventSinkKind {
    doc: KindDoc {
        key: "gcl",
        aliases: &[],
        usage: "gcl[?opts]",
        summary: "Google Cloud Logging, log kubernetes.io/events, one entry per event version (resent entries are \
                  kept once). Credentials: $GOOGLE_APPLICATION_CREDENTIALS, else the GCE/GKE metadata server.",
        options: OPTIONS,
    },
    build: |uri, metrics| Ok(Arc::new(GclSink::new(uri, metrics, &Env::from_process())?)),
};

/// The Cloud Logging event sink.
pub struct GclSink {
    api: GoogleApi,
    url: String,
    name: String,
}

impl GclSink {
    /// Parses the `--sink` value and reads the key file; contacts no server.
    pub fn new(uri: &SpecUri, metrics: &SinkMetrics, env: &Env) -> Result<Self, ConfigError> {
        let o = Options::new("--sink", uri, OPTIONS)?;
        google::no_target(&o)?;
        let endpoint = google::endpoint(&o, "endpoint", DEFAULT_ENDPOINT)?;
        let name = o.redacted();
        let counters = metrics.for_kind(KIND.doc.key).sink(&name);
        let spec = ApiSpec {
            service: "Cloud Logging",
            scope: auth::LOGGING_WRITE,
            role: "roles/logging.logWriter",
            needs_cluster: true,
        };
        let api = GoogleApi::new(&o, env, spec, counters, format!("Cloud Logging at {endpoint}"))?;
        Ok(GclSink { api, url: format!("{endpoint}/v2/entries:write"), name })
    }

    async fn write(&self, body: &[u8], n: usize, project: &str) -> Result<(), SinkError> {
        let counters = self.api.http().counters();
        let (verdict, answer) = self.api.post_json(&self.url, body).await?;
        match verdict {
            Verdict::Accepted => {
                counters.written(n as u64);
                Ok(())
            }
            Verdict::Retry { .. } => Err(SinkError::Retry(self.api.describe(&answer, project))),
            Verdict::Reject { cause } => {
                let partial = GoogleError::parse(&answer.text)
                    .and_then(|e| e.detail("google.logging.v2.WriteLogEntriesPartialErrors").cloned());
                let Some(partial) = partial else {
                    counters.rejected(&cause, n as u64);
                    return Err(SinkError::Reject(self.api.describe(&answer, project)));
                };
                let errors = partial["logEntryErrors"].as_object().cloned().unwrap_or_default();
                for status in errors.values() {
                    counters.rejected(rpc_code_name(status["code"].as_i64().unwrap_or(2)), 1);
                }
                counters.written(n.saturating_sub(errors.len()) as u64);
                tracing::warn!(
                    "{}: {} of {n} entries refused (counted, not retried)",
                    self.api.describe(&answer, project),
                    errors.len()
                );
                Ok(())
            }
        }
    }
}

#[async_trait]
impl EventSink for GclSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn export(&self, batch: &EventBatch) -> Result<(), SinkError> {
        if batch.events.is_empty() {
            return Ok(());
        }
        let identity = self.api.identity().await?;
        let log_name = encoder::log_name(&identity.project);
        let mut entries = Vec::with_capacity(batch.events.len());
        for v in &batch.events {
            match encoder::entry(v, identity, &log_name, batch.timestamp) {
                Some(e) => entries.push(e),
                None => {
                    self.api.http().counters().dropped("entry over 256 KB", 1);
                    tracing::warn!(
                        sink = %self.name,
                        "event {} left out: over Cloud Logging's 256 KB per entry even with its message cut",
                        encoder::insert_id(v)
                    );
                }
            }
        }
        // In order, one at a time: a retry resends from the first request, and the service keeps resent entries
        // once by their insertId. A request refused whole does not keep the others from being written.
        let mut refused = None;
        for (body, n) in encoder::requests(&entries) {
            match self.write(&body, n, &identity.project).await {
                Err(SinkError::Reject(why)) => refused = Some(SinkError::Reject(why)),
                other => other?,
            }
        }
        refused.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests;
