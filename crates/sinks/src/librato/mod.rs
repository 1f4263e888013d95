//! `--sink=librato:?username=&token=&prefix=&tags=&tag_<name>=`: batches as Librato (SolarWinds AppOptics)
//! tagged measurements, `POST <api>/v1/measurements` with HTTP basic auth, at most `batch_points` per request
//! (see [`encoder`]).
//!
//! Heapster logged and dropped on any error and never read the answer. Here a 202's summary is read (`failed`
//! measurements counted), a 400 or 401 is counted by its cause and not retried, and a server that is down, slow,
//! rate-limiting (429) or answering 5xx keeps the batch queued; a retry sends only the requests not yet taken.

pub mod config;
pub mod encoder;
#[cfg(test)]
mod tests;

pub use config::LibratoConfig;

use crate::util::http::{Answer, ClientSettings, HttpClient, Verdict};
use crate::util::json_batch::{self, Delivered, Posted, Refusals, batch_identity};
use crate::{ConfigError, DataSink, SinkError, SinkKind, SinkMetrics};
use async_trait::async_trait;
use heapster_model::{DataBatch, KindDoc, SpecUri};
use std::sync::Arc;

pub const KIND: SinkKind = SinkKind {
    doc: KindDoc {
        key: "librato",
        aliases: &[],
        usage: "librato:?username=U&token=T&opts",
        summary: "Librato tagged measurements (/v1/measurements): Heapster's names (prefix.cpu.usage_rate) and labels as tags.",
        options: config::OPTIONS,
    },
    build: |uri, metrics| Ok(Arc::new(LibratoSink::new(uri, metrics)?)),
    historical: None,
};

pub struct LibratoSink {
    config: LibratoConfig,
    http: HttpClient,
    delivered: Delivered,
    name: String,
    server: String,
}

impl LibratoSink {
    /// Contacts no server.
    pub fn new(uri: &SpecUri, metrics: &SinkMetrics) -> Result<Self, ConfigError> {
        let config = LibratoConfig::from_uri(uri)?;
        let name = config.name();
        let counters = metrics.for_kind(KIND.doc.key).sink(&name);
        let settings = ClientSettings {
            timeout: config.timeout,
            insecure: false,
            ca_file: None,
            trust_hint: "a server certificate the system trusts",
            insecure_hint: "api=http://",
        };
        let server = format!("Librato at {}", config.measurements_url);
        let http = HttpClient::new(settings, counters, server.clone())
            .map_err(|e| ConfigError::new("--sink", uri, config::OPTIONS, e))?;
        Ok(LibratoSink { config, http, delivered: Delivered::default(), name, server })
    }
}

/// A bounded cause from Librato's 400 (`{"errors":{"params":{"name":["is not present"]}}}`): the first field and
/// message (`name is not present`), at most 60 characters.
fn cause_of(answer: &Answer) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(&answer.text).ok()?;
    let errors = v.get("errors")?.as_object()?;
    let (group, detail) = errors.iter().next()?;
    let text = match detail {
        serde_json::Value::Object(fields) => {
            let (field, msgs) = fields.iter().next()?;
            let msg = msgs.as_array().and_then(|m| m.first()).and_then(|m| m.as_str()).unwrap_or("");
            format!("{field} {msg}")
        }
        serde_json::Value::Array(msgs) => msgs.first().and_then(|m| m.as_str()).unwrap_or(group).to_owned(),
        _ => group.clone(),
    };
    Some(text.trim().chars().take(60).collect::<String>().to_lowercase())
}

#[async_trait]
impl DataSink for LibratoSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError> {
        let c = &self.config;
        let encoded = encoder::encode(&batch, &c.prefix, &c.tags, c.batch_points);
        let counters = self.http.counters();
        if encoded.unrepresentable > 0 {
            counters.dropped("not a finite number", encoded.unrepresentable as u64);
        }
        let ts = batch.timestamp.to_string();
        let progress = self
            .delivered
            .begin(batch_identity(std::iter::once(ts.as_str()).chain(batch.sets.keys().map(String::as_str))));
        let mut refusals = Refusals::default();
        for body in encoded.bodies {
            let key = format!("{}+{}", body.keys[0], body.items);
            if progress.done(&key) {
                continue;
            }
            let n = body.items as u64;
            let request = self
                .http
                .client()
                .post(c.measurements_url.clone())
                .basic_auth(&c.username, Some(&c.token))
                .header("Content-Type", "application/json")
                .body(body.text);
            let judge = |a: &Answer| {
                (a.status.as_u16() == 400).then(|| cause_of(a)).flatten().map(|c| Verdict::Reject { cause: c.into() })
            };
            match json_batch::post(&self.http, request, &self.server, judge).await? {
                Posted::Accepted(answer) => {
                    // {"measurements":{"summary":{"total":N,"accepted":N,"failed":F,"filtered":0}}}
                    let failed = serde_json::from_str::<serde_json::Value>(&answer.text)
                        .ok()
                        .and_then(|v| v.pointer("/measurements/summary/failed").and_then(|f| f.as_u64()))
                        .unwrap_or(0)
                        .min(n);
                    if failed > 0 {
                        counters.rejected("failed", failed);
                        refusals.add("failed", failed, &answer.text);
                    }
                    counters.written(n - failed);
                }
                Posted::Refused { cause, answer } => {
                    counters.rejected(&cause, n);
                    refusals.add(&cause, n, &format!("{}: {}", answer.status, answer.text));
                }
            }
            progress.mark([key]);
        }
        refusals.into_result(&self.server)
    }
}
