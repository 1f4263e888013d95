//! `--sink=opentsdb:http://HOST:4242?cluster=k8s-cluster`: batches as OpenTSDB `/api/put` JSON with Heapster's
//! metric names and tags (see [`encoder`]), to OpenTSDB or a server that speaks its HTTP API (VictoriaMetrics'
//! `-opentsdbHTTPListenAddr`).
//!
//! Requests ask for `?details`, so a refusal names each point's error: points OpenTSDB refused are counted by
//! cause and not retried; a server that is down, slow or answering 5xx keeps the batch queued (Heapster pinged
//! before every batch and dropped it when that failed).

pub mod config;
pub mod encoder;

pub use config::OpentsdbConfig;

use crate::util::http::{Answer, ClientSettings, HttpClient, Verdict};
use crate::{ConfigError, DataSink, SinkError, SinkKind, SinkMetrics};
use async_trait::async_trait;
use heapster_model::{DataBatch, KindDoc, SpecUri};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const KIND: SinkKind = SinkKind {
    doc: KindDoc {
        key: "opentsdb",
        aliases: &[],
        usage: "opentsdb:http://HOST:4242?opts",
        summary: "OpenTSDB /api/put JSON with Heapster's names (cpu_usage_cumulative) and tags plus cluster=.",
        options: config::OPTIONS,
    },
    build: |uri, metrics| Ok(Arc::new(OpentsdbSink::new(uri, metrics)?)),
    historical: None,
};

pub struct OpentsdbSink {
    config: OpentsdbConfig,
    http: HttpClient,
    name: String,
}

impl OpentsdbSink {
    /// Contacts no server.
    pub fn new(uri: &SpecUri, metrics: &SinkMetrics) -> Result<Self, ConfigError> {
        let options = heapster_model::Options::new("--sink", uri, config::OPTIONS)?;
        let config = OpentsdbConfig::from_options(&options)?;
        let name = config.name();
        let counters = metrics.for_kind(KIND.doc.key).sink(&name);
        let settings = ClientSettings {
            timeout: config.timeout,
            insecure: false,
            ca_file: None,
            trust_hint: "a server certificate the system trusts",
            insecure_hint: "http://",
        };
        let http = HttpClient::new(settings, counters, format!("OpenTSDB at {}", config.put_url))
            .map_err(|e| options.error(e))?;
        Ok(OpentsdbSink { config, http, name })
    }

    /// [`OpentsdbSink::new`] counting on a registry of its own, for tests and benchmarks.
    pub fn from_uri(uri: &SpecUri) -> Result<Self, ConfigError> {
        Self::new(uri, &SinkMetrics::detached())
    }

    /// One `/api/put` of `points` points. `Ok(None)` when all were stored, `Ok(Some(..))` naming a refusal
    /// (counted), `Err` when worth retrying.
    async fn put(&self, body: String, points: u64) -> Result<Option<String>, SinkError> {
        let request = self.http.client().post(self.config.put_url.clone()).header("Content-Type", "application/json");
        let (verdict, answer) = self.http.send(request.body(body), |_| None).await?;
        let counters = self.http.counters();
        match verdict {
            Verdict::Accepted => {
                counters.written(points);
                Ok(None)
            }
            Verdict::Retry { cause } => {
                Err(SinkError::Retry(format!("OpenTSDB answered {} ({cause}): {}", answer.status, short(&answer.text))))
            }
            Verdict::Reject { cause } => {
                let refused = refusals(&answer);
                let stored = refused.as_ref().map_or(0, |r| r.success.min(points));
                counters.written(stored);
                let mut causes = match refused {
                    Some(r) if !r.causes.is_empty() => r.causes,
                    _ => BTreeMap::from([(cause.into_owned(), points - stored)]),
                };
                // What the answer does not account for was refused too, for the status's reason.
                let named: u64 = causes.values().sum();
                if named < points - stored {
                    *causes.entry(format!("http {}", answer.status.as_u16())).or_default() += points - stored - named;
                }
                for (cause, n) in &causes {
                    counters.rejected(cause, *n);
                }
                Ok(Some(format!(
                    "OpenTSDB refused {} of {points} points ({}): {}: {}",
                    points - stored,
                    causes.keys().cloned().collect::<Vec<_>>().join(", "),
                    answer.status,
                    short(&answer.text)
                )))
            }
        }
    }
}

/// What a `?details` answer says: points stored, and points refused by cause.
struct Refusals {
    success: u64,
    causes: BTreeMap<String, u64>,
}

/// Reads OpenTSDB's `{"success":N,"failed":M,"errors":[{"datapoint":{..},"error":"..."}]}`; None for any other
/// answer (an `{"error":{..}}` about the request as a whole, a proxy's page).
fn refusals(answer: &Answer) -> Option<Refusals> {
    let v: serde_json::Value = serde_json::from_str(&answer.text).ok()?;
    let success = v.get("success")?.as_u64()?;
    let mut causes = BTreeMap::new();
    for e in v.get("errors").and_then(|e| e.as_array()).into_iter().flatten() {
        let text = e.get("error").and_then(|t| t.as_str()).unwrap_or("unknown");
        *causes.entry(cause_of(text)).or_default() += 1;
    }
    Some(Refusals { success, causes })
}

/// A bounded label from OpenTSDB's error text, which goes on to name the offending value (`Too many tags: 9
/// maximum allowed: 8, tags: {..}`, `Unable to parse value to a number`): the words before the first `:`.
fn cause_of(text: &str) -> String {
    let head = text.split(':').next().unwrap_or(text).trim();
    head.chars().take(60).collect::<String>().to_lowercase()
}

fn short(text: &str) -> &str {
    let t = text.trim();
    match t.char_indices().nth(300) {
        Some((i, _)) => &t[..i],
        None => t,
    }
}

#[async_trait]
impl DataSink for OpentsdbSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError> {
        let c = &self.config;
        let encoded = encoder::encode(&batch, &c.cluster, c.max_tags, c.batch_points);
        let counters = self.http.counters();
        if encoded.unrepresentable > 0 {
            counters.dropped("not a finite number", encoded.unrepresentable as u64);
        }
        if encoded.too_many_tags > 0 {
            counters.dropped("more than max_tags tags", encoded.too_many_tags as u64);
        }
        // A refusal does not stop the bodies after it: they are other points, and sending them again would not
        // help the refused ones.
        let mut refused = None;
        for (body, n) in encoded.bodies.into_iter().zip(encoded.counts) {
            if let Some(why) = self.put(body, n as u64).await? {
                refused.get_or_insert(why);
            }
        }
        refused.map_or(Ok(()), |why| Err(SinkError::Reject(why)))
    }
}

#[cfg(test)]
mod tests;
