//! Sending events to Honeycomb's batch API: `POST <apihost>/1/batch/<dataset>` with `X-Honeycomb-Team`, bodies of
//! at most `batch_events` events and 5 MB, each event answered on its own (`[{"status":202},{"status":400,
//! "error":".."}]`).
//!
//! Heapster read no answer at all. Here an event answered 202 is written; one refused (4xx) is counted by its
//! error and not sent again; one answered 429 or 5xx, or a request that got no answer, makes the export a retry,
//! which sends only the events not yet taken ([`Delivered`]): the API has no idempotency key, so not sending
//! twice is the only guard against duplicates.

use super::config::{HoneycombConfig, MAX_REQUEST_BYTES};
use crate::SinkError;
use crate::self_metrics::SinkCounters;
use crate::util::http::{ClientSettings, HttpClient, Verdict, gzip};
use crate::util::json_batch::{self, Delivered, JsonArrays, JsonBody, Posted, Refusals};
use std::collections::HashMap;

/// Honeycomb refuses an event over 1 MB; a larger one is left out before sending.
pub const MAX_EVENT_BYTES: usize = 1_000_000;

/// One event to send: its key (stable across retries of its batch), its JSON, and the points it counts for.
pub struct Item {
    pub key: String,
    pub json: String,
    pub points: u64,
}

/// What one export came to, beyond what the counters say.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Points of events the API refused (counted by cause).
    pub refused: u64,
}

pub struct Client {
    config: HoneycombConfig,
    http: HttpClient,
    delivered: Delivered,
    server: String,
}

impl Client {
    pub fn new(config: HoneycombConfig, counters: SinkCounters) -> Result<Self, String> {
        let settings = ClientSettings {
            timeout: config.timeout,
            insecure: false,
            ca_file: None,
            trust_hint: "a server certificate the system trusts",
            insecure_hint: "apihost=http://",
        };
        let server = format!("Honeycomb at {}", config.batch_url);
        let http = HttpClient::new(settings, counters, server.clone())?;
        Ok(Client { config, http, delivered: Delivered::default(), server })
    }

    pub fn counters(&self) -> &SinkCounters {
        self.http.counters()
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// Sends the items of the batch `batch_id` not yet delivered. `Err(Retry)` when some must be sent again;
    /// refusals are counted and returned in [`Sent`] (the caller says whether they fail the export).
    pub async fn send(&self, batch_id: u64, items: Vec<Item>) -> Result<(Sent, Refusals), SinkError> {
        let progress = self.delivered.begin(batch_id);
        let counters = self.http.counters();
        let mut points: HashMap<String, u64> = HashMap::with_capacity(items.len());
        let mut arrays = JsonArrays::new(self.config.batch_events, MAX_REQUEST_BYTES, "[", "]");
        for item in items {
            if progress.done(&item.key) {
                continue;
            }
            if item.json.len() > MAX_EVENT_BYTES || !arrays.push(item.key.clone(), &item.json) {
                counters.dropped("event over 1 MB", item.points);
                progress.mark([item.key]);
                continue;
            }
            points.insert(item.key, item.points);
        }
        let mut refusals = Refusals::default();
        let mut sent = Sent::default();
        let mut again = 0u64;
        for body in arrays.finish() {
            let n: u64 = body.keys.iter().map(|k| points[k]).sum();
            match self.post(&body).await? {
                Posted::Refused { cause, answer } => {
                    counters.rejected(&cause, n);
                    refusals.add(&cause, n, &format!("{}: {}", answer.status, answer.text));
                    sent.refused += n;
                    progress.mark(body.keys);
                }
                Posted::Accepted(answer) => {
                    let statuses = per_event(&answer.text);
                    if statuses.len() != body.keys.len() {
                        // Taken as a whole, but not answered event by event as the API does: nothing to resend.
                        tracing::warn!(
                            "{}: {} answers for {} events: {}",
                            self.server,
                            statuses.len(),
                            body.items,
                            json_batch::short(&answer.text)
                        );
                        counters.written(n);
                        progress.mark(body.keys);
                        continue;
                    }
                    for (key, (status, error)) in body.keys.into_iter().zip(statuses) {
                        let p = points[&key];
                        match status {
                            200..=299 => counters.written(p),
                            429 | 500..=599 => {
                                again += p;
                                continue;
                            }
                            _ => {
                                let cause = cause_of(status, &error);
                                counters.rejected(&cause, p);
                                refusals.add(&cause, p, &error);
                                sent.refused += p;
                            }
                        }
                        progress.mark([key]);
                    }
                }
            }
        }
        if again > 0 {
            return Err(SinkError::Retry(format!(
                "{}: {again} points to send again (429 or 5xx per event)",
                self.server
            )));
        }
        Ok((sent, refusals))
    }

    async fn post(&self, body: &JsonBody) -> Result<Posted, SinkError> {
        let mut request = self
            .http
            .client()
            .post(self.config.batch_url.clone())
            .header("Content-Type", "application/json")
            .header("X-Honeycomb-Team", &self.config.write_key);
        request = if self.config.gzip {
            request.header("Content-Encoding", "gzip").body(gzip(body.text.as_bytes()))
        } else {
            request.body(body.text.clone())
        };
        json_batch::post(&self.http, request, &self.server, |a| {
            // Honeycomb's whole-request refusals carry {"error": ".."}: the cause for 400 is its text.
            (a.status.as_u16() == 400).then(|| Verdict::Reject { cause: cause_of(400, &error_of(&a.text)).into() })
        })
        .await
    }
}

/// The per-event answers of a 200: (status, error).
fn per_event(text: &str) -> Vec<(u16, String)> {
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str(text) else { return Vec::new() };
    items
        .iter()
        .map(|i| {
            let status = i.get("status").and_then(|s| s.as_u64()).unwrap_or(0) as u16;
            (status, i.get("error").and_then(|e| e.as_str()).unwrap_or("").to_owned())
        })
        .collect()
}

fn error_of(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

/// A bounded label from Honeycomb's error text (`Event has too many columns.`): lower case, without the final
/// stop, at most 60 characters; the status when there is no text.
pub fn cause_of(status: u16, error: &str) -> String {
    let t = error.trim().trim_end_matches('.');
    if t.is_empty() {
        return format!("http {status}");
    }
    t.chars().take(60).collect::<String>().to_lowercase()
}
