//! The HTTP side of the Elasticsearch sinks: the index templates installed before the first write, and `_bulk`
//! requests of at most 1,000 items and 2 MB (Heapster's bulk processor's limits), `bulkWorkers` at a time,
//! spread over the nodes given and moving to the next when one does not answer.
//!
//! A bulk answer is read item by item: items taken are counted written; items the server was too busy for
//! (429, `es_rejected_execution_exception`) or could not place for now (5xx) are sent again, and only they;
//! items refused for what they are (`mapper_parsing_exception`, ...) are counted per cause and not sent again.
//! Heapster logged per-item errors at a verbose level and went on, so lost documents went unseen.

use super::config::ElasticsearchConfig;
use super::encoder::{self, Items};
use crate::SinkError;
use crate::self_metrics::SinkCounters;
use crate::util::http::{Answer, ClientSettings, HttpClient, Verdict};
use reqwest::Method;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Heapster's bulk processor flushed at 1,000 actions or 2 MB, whichever came first.
const BULK_ITEMS: usize = 1000;
const BULK_BYTES: usize = 2 << 20;

pub struct Client {
    http: HttpClient,
    config: ElasticsearchConfig,
    /// The node the next request goes to; moved on when one does not answer.
    node: AtomicUsize,
    /// Set once every template was installed.
    ready: AtomicBool,
    name: String,
}

/// What became of one bulk request's items.
#[derive(Default)]
struct Outcome {
    /// Items to send again (indices into the batch's items), with the cause.
    again: Vec<usize>,
    again_cause: Option<String>,
    /// The request as a whole was refused: why.
    refused: Option<String>,
}

impl Client {
    pub fn new(config: ElasticsearchConfig, name: String, counters: SinkCounters) -> Result<Self, String> {
        let settings = ClientSettings::new(config.timeout, config.insecure, config.ca_file.clone());
        let http = HttpClient::new(settings, counters, format!("Elasticsearch at {}", config.nodes[0]))?;
        Ok(Client { http, config, node: AtomicUsize::new(0), ready: AtomicBool::new(false), name })
    }

    pub fn counters(&self) -> &SinkCounters {
        self.http.counters()
    }

    /// One request to the current node, sent again to the next node while it fails for now and `retries`
    /// allows; a node that does not answer makes the next request go to the next one.
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
        timeout: Option<Duration>,
        retries: usize,
    ) -> Result<(Verdict, Answer), SinkError> {
        let mut attempt = 0;
        loop {
            let at = self.node.load(Ordering::Relaxed) % self.config.nodes.len();
            let url = self.config.nodes[at].join(path).map_err(|e| SinkError::Reject(format!("{path}: {e}")))?;
            let mut req = self.http.client().request(method.clone(), url);
            if let Some((user, password)) = &self.config.auth {
                req = req.basic_auth(user, Some(password));
            }
            if let Some((content_type, body)) = &body {
                req = req.header(reqwest::header::CONTENT_TYPE, *content_type).body(body.clone());
            }
            if let Some(t) = timeout {
                req = req.timeout(t);
            }
            let sent = self.http.send(req, |_| None).await;
            if !matches!(&sent, Err(_) | Ok((Verdict::Retry { .. }, _))) {
                return sent;
            }
            self.node.fetch_add(1, Ordering::Relaxed);
            if attempt >= retries {
                return sent;
            }
            attempt += 1;
        }
    }

    /// Before the first write: the version check (`healthCheck`) and the index templates. A server that does
    /// not answer leaves the batch queued; one that refuses a template refuses the batch, and the next export
    /// tries again (the options may not fit the server: the message names `ver=`).
    async fn prepare(&self) -> Result<(), SinkError> {
        if self.ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        let retries = self.config.max_retries;
        if self.config.health_check {
            let (verdict, answer) =
                self.request(Method::GET, "", None, Some(self.config.startup_healthcheck_timeout), retries).await?;
            match verdict {
                Verdict::Accepted => self.check_version(&answer.text),
                Verdict::Retry { cause } => return Err(SinkError::Retry(format!("health check: {cause}"))),
                Verdict::Reject { .. } => {
                    return Err(SinkError::Reject(format!("health check: {}", describe(&answer))));
                }
            }
        }
        for t in encoder::templates(&self.config) {
            let body = serde_json::to_vec(&t.body).expect("a JSON value serializes");
            let (verdict, answer) =
                self.request(Method::PUT, &t.path, Some(("application/json", body)), None, retries).await?;
            match verdict {
                Verdict::Accepted => {}
                Verdict::Retry { .. } => {
                    return Err(SinkError::Retry(format!("{}: {}", t.path, describe(&answer))));
                }
                Verdict::Reject { .. } => {
                    return Err(SinkError::Reject(format!(
                        "{}: {} (does ver={} match the server?)",
                        t.path,
                        describe(&answer),
                        self.config.version
                    )));
                }
            }
        }
        self.ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn check_version(&self, info: &str) {
        let number = serde_json::from_str::<serde_json::Value>(info)
            .ok()
            .and_then(|v| v["version"]["number"].as_str().map(str::to_owned));
        let major = number.as_deref().and_then(|n| n.split('.').next()).and_then(|m| m.parse::<u8>().ok());
        if major.is_some_and(|m| m != self.config.version) {
            tracing::warn!(
                sink = %self.name,
                "the server is Elasticsearch {}, but ver={}: set ver={} for documents it maps as intended",
                number.unwrap_or_default(),
                self.config.version,
                major.unwrap_or_default()
            );
        }
    }

    /// Writes every item: all of them taken, or refused for good (counted), is `Ok`. Items still not taken
    /// after `maxRetries` more rounds leave the batch to the sink's queue (`Retry`), whose next export sends
    /// the same items with the same `_id`s, overwriting those that did arrive.
    pub async fn write(self: &Arc<Self>, items: Arc<Items>) -> Result<(), SinkError> {
        if items.is_empty() {
            return Ok(());
        }
        self.prepare().await?;
        let mut pending: Vec<usize> = (0..items.len()).collect();
        let mut refused = None;
        let mut last_cause = String::new();
        for round in 0..=self.config.max_retries {
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(100 << round.min(5))).await;
            }
            let mut again = Vec::new();
            let mut chunks = chunks(&items, &pending).into_iter().peekable();
            while chunks.peek().is_some() {
                let mut set = tokio::task::JoinSet::new();
                for chunk in chunks.by_ref().take(self.config.bulk_workers) {
                    let (me, items) = (self.clone(), items.clone());
                    set.spawn(async move { me.bulk(&items, chunk).await });
                }
                while let Some(r) = set.join_next().await {
                    let o = r.map_err(|e| SinkError::Retry(format!("bulk task failed: {e}")))?;
                    again.extend(o.again);
                    if let Some(c) = o.again_cause {
                        last_cause = c;
                    }
                    refused = o.refused.or(refused);
                }
            }
            pending = again;
            if pending.is_empty() {
                break;
            }
        }
        if !pending.is_empty() {
            return Err(SinkError::Retry(format!(
                "{} of {} documents not taken yet: {last_cause}",
                pending.len(),
                items.len()
            )));
        }
        refused.map_or(Ok(()), |why| Err(SinkError::Reject(why)))
    }

    /// One `_bulk` request of `chunk` (indices into `items`).
    async fn bulk(&self, items: &Items, chunk: Vec<usize>) -> Outcome {
        let body = if chunk.len() == items.len() {
            items.all().to_vec()
        } else {
            let mut body = Vec::with_capacity(chunk.iter().map(|&i| items.bytes(i).len()).sum());
            for &i in &chunk {
                body.extend_from_slice(items.bytes(i));
            }
            body
        };
        let n = chunk.iter().map(|&i| u64::from(items.points(i))).sum();
        let (verdict, answer) =
            match self.request(Method::POST, "_bulk", Some(("application/x-ndjson", body)), None, 0).await {
                Ok(r) => r,
                Err(e) => return Outcome { again: chunk, again_cause: Some(e.to_string()), refused: None },
            };
        match verdict {
            Verdict::Accepted => {}
            Verdict::Retry { .. } => {
                return Outcome { again: chunk, again_cause: Some(describe(&answer)), refused: None };
            }
            Verdict::Reject { cause } => {
                self.counters().rejected(&cause, n);
                return Outcome { refused: Some(format!("_bulk: {}", describe(&answer))), ..Default::default() };
            }
        }
        let Some(results) = item_results(&answer.text, chunk.len()).filter(|r| r.len() == chunk.len()) else {
            // An answer that does not say what became of each item: nothing is known to have arrived.
            return Outcome {
                again: chunk,
                again_cause: Some("a _bulk answer without one result per item".into()),
                refused: None,
            };
        };
        let mut out = Outcome::default();
        let mut written = 0;
        let mut first_refusal = None;
        for (&i, (status, cause)) in chunk.iter().zip(results) {
            if (200..300).contains(&status) {
                written += u64::from(items.points(i));
            } else if status == 429 || status >= 500 || cause == "es_rejected_execution_exception" {
                out.again.push(i);
                out.again_cause = Some(format!("{status} {cause}"));
            } else {
                self.counters().rejected(&cause, u64::from(items.points(i)));
                first_refusal.get_or_insert((status, cause));
            }
        }
        self.counters().written(written);
        if let Some((status, cause)) = first_refusal {
            tracing::warn!(sink = %self.name, "Elasticsearch refused documents ({status} {cause}): counted, not sent again");
        }
        out
    }
}

/// The items of `pending` cut into requests of at most [`BULK_ITEMS`] and [`BULK_BYTES`] (one larger item alone).
fn chunks(items: &Items, pending: &[usize]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let (mut cur, mut bytes) = (Vec::new(), 0);
    for &i in pending {
        let len = items.bytes(i).len();
        if !cur.is_empty() && (cur.len() >= BULK_ITEMS || bytes + len > BULK_BYTES) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        cur.push(i);
        bytes += len;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A `_bulk` answer as far as the sink reads it: each item is `{"<action>": {"status", "error": {"type"}}}`.
/// Items are read into typed fields, skipping the rest (ids, shards, versions) without building it.
#[derive(serde::Deserialize)]
struct BulkAnswer {
    items: Vec<std::collections::HashMap<String, ItemAnswer>>,
}

#[derive(serde::Deserialize)]
struct ItemAnswer {
    status: u16,
    error: Option<ItemError>,
}

#[derive(serde::Deserialize)]
struct ItemError {
    #[serde(rename = "type")]
    type_: String,
}

/// Each item's status and error type (empty when it has none), in the order sent; `n` results of status 201
/// without reading the items when the answer says `"errors":false` near its start, as Elasticsearch writes it.
fn item_results(text: &str, n: usize) -> Option<Vec<(u16, String)>> {
    let head = &text[..text.len().min(64)];
    if head.contains("\"errors\":false") {
        return Some(vec![(201, String::new()); n]);
    }
    let answer: BulkAnswer = serde_json::from_str(text).ok()?;
    answer
        .items
        .into_iter()
        .map(|item| {
            let r = item.into_values().next()?;
            let cause = r.error.map_or_else(|| if r.status < 300 { "" } else { "unknown" }.to_owned(), |e| e.type_);
            Some((r.status, cause))
        })
        .collect()
}

/// Elasticsearch's error in a line: `400 mapper_parsing_exception: failed to parse ...`.
fn describe(answer: &Answer) -> String {
    let v: serde_json::Value = serde_json::from_str(&answer.text).unwrap_or_default();
    let e = &v["error"];
    match (e["type"].as_str(), e["reason"].as_str()) {
        (Some(t), Some(r)) => format!("{} {t}: {r}", answer.status.as_u16()),
        _ => format!("{}: {}", answer.status, answer.text.chars().take(200).collect::<String>()),
    }
}
