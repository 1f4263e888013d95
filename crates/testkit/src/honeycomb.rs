//! A strict stand-in for Honeycomb's batch events API (no Honeycomb server exists outside its SaaS), as its
//! published API reference defines `POST /1/batch/{datasetSlug}`:
//!
//! - the key in `X-Honeycomb-Team`, else 401 `{"error":"unknown API key - check your credentials"}`;
//! - `Content-Type: application/json`, an optional `Content-Encoding: gzip`; a body over 5 MB is 413;
//! - the body a non-empty JSON array of events, else 400 with the API's message (`request body should not be
//!   empty`, `request body is malformed and cannot be read`);
//! - each event an object of `data` (an object, required), `time` (RFC 3339) and `samplerate` (a positive
//!   integer) and nothing else (the API ignores other keys; this fake refuses them, which is how Heapster's
//!   `Timestamp` key, ignored by the real API, shows here), and `data`'s values strings, numbers or booleans
//!   (the API would also take nested JSON; heapster never sends any); an event over 1 MB or with more than 2000 fields is
//!   answered 400 on its own (`Event has too many columns.`);
//! - a 200 answer with one `{"status":202}` (or `{"status":400,"error":".."}`) per event, in order.
//!
//! It keeps the events it took, and can be told to fail the next requests or the next events.

use crate::json_api::{JsonApi, Request, error};
use axum::http::Method;
use serde_json::{Map, Value};

pub const MAX_BODY_BYTES: usize = 5_000_000;
pub const MAX_EVENT_BYTES: usize = 1_000_000;
pub const MAX_COLUMNS: usize = 2000;

/// One event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub dataset: String,
    pub time: Option<chrono::DateTime<chrono::FixedOffset>>,
    pub data: Map<String, Value>,
}

#[derive(Default)]
struct State {
    key: String,
    events: Vec<StoredEvent>,
    requests: usize,
    gzipped: usize,
    /// The next requests are answered with this status, whole.
    fail_requests: Option<(u16, usize)>,
    /// The next events are answered with this status, each.
    fail_events: Option<(u16, usize)>,
    refused: Vec<String>,
}

pub struct HoneycombFake(JsonApi<State>);

impl HoneycombFake {
    /// A fake taking `key` as the team's write key.
    pub fn start(key: &str) -> HoneycombFake {
        HoneycombFake(JsonApi::start("honeycomb", State { key: key.into(), ..State::default() }, handle))
    }

    pub fn url(&self) -> String {
        self.0.url()
    }

    pub fn events(&self) -> Vec<StoredEvent> {
        self.0.state().events.clone()
    }

    /// Requests received, and how many of them came gzipped.
    pub fn requests(&self) -> (usize, usize) {
        let s = self.0.state();
        (s.requests, s.gzipped)
    }

    /// Every per-event error answered so far.
    pub fn refused(&self) -> Vec<String> {
        self.0.state().refused.clone()
    }

    /// The next `count` requests are answered `status` as a whole.
    pub fn fail_requests(&self, status: u16, count: usize) {
        self.0.state().fail_requests = Some((status, count));
    }

    /// The next `count` events are answered `status` in the 200's array (and not stored).
    pub fn fail_events(&self, status: u16, count: usize) {
        self.0.state().fail_events = Some((status, count));
    }
}

fn take(fault: &mut Option<(u16, usize)>) -> Option<u16> {
    match fault {
        Some((status, left)) if *left > 0 => {
            *left -= 1;
            Some(*status)
        }
        _ => None,
    }
}

fn handle(s: &mut State, r: &Request) -> (u16, String) {
    s.requests += 1;
    s.gzipped += usize::from(r.gzipped);
    let Some(dataset) = r.path.strip_prefix("/1/batch/").filter(|d| !d.is_empty() && !d.contains('/')) else {
        return (404, error("not found"));
    };
    if r.method != Method::POST {
        return (405, error("method not allowed"));
    }
    if r.header("x-honeycomb-team") != Some(s.key.as_str()) {
        return (401, error("unknown API key - check your credentials"));
    }
    if let Some(status) = take(&mut s.fail_requests) {
        return (status, error("injected failure"));
    }
    if !r.is_json() {
        return (400, error("request body is malformed and cannot be read as JSON: content type is not JSON"));
    }
    if r.body.len() > MAX_BODY_BYTES {
        return (413, error("request body is too large"));
    }
    let dataset = percent_encoding::percent_decode_str(dataset).decode_utf8_lossy().into_owned();
    let events: Vec<Value> = match serde_json::from_slice(&r.body) {
        Ok(Value::Array(events)) => events,
        _ => return (400, error("request body is malformed and cannot be read as JSON")),
    };
    if events.is_empty() {
        return (400, error("request body should not be empty"));
    }
    let mut answers = Vec::with_capacity(events.len());
    for e in events {
        let size = e.to_string().len();
        let answer = match check(e) {
            Err(why) => Err(why),
            Ok(_) if size > MAX_EVENT_BYTES => Err(format!("event exceeds max event size of {MAX_EVENT_BYTES} bytes")),
            Ok(stored) => Ok(stored),
        };
        match (answer, take(&mut s.fail_events)) {
            (_, Some(status)) => answers.push(serde_json::json!({"status": status, "error": "injected failure"})),
            (Ok((time, data)), None) => {
                s.events.push(StoredEvent { dataset: dataset.clone(), time, data });
                answers.push(serde_json::json!({"status": 202}));
            }
            (Err(why), None) => {
                s.refused.push(why.clone());
                answers.push(serde_json::json!({"status": 400, "error": why}));
            }
        }
    }
    (200, Value::Array(answers).to_string())
}

type Checked = (Option<chrono::DateTime<chrono::FixedOffset>>, Map<String, Value>);

fn check(e: Value) -> Result<Checked, String> {
    let Value::Object(mut e) = e else { return Err("event is not a JSON object".into()) };
    if let Some(k) = e.keys().find(|k| !matches!(k.as_str(), "data" | "time" | "samplerate")) {
        return Err(format!("unknown event key {k:?} (expected data, time, samplerate)"));
    }
    let time = match e.remove("time") {
        None => None,
        Some(Value::String(t)) => {
            Some(chrono::DateTime::parse_from_rfc3339(&t).map_err(|_| format!("time {t:?} is not RFC 3339"))?)
        }
        Some(t) => return Err(format!("time {t} is not a string")),
    };
    if let Some(rate) = e.remove("samplerate")
        && rate.as_u64().is_none_or(|r| r == 0)
    {
        return Err(format!("samplerate {rate} is not a positive integer"));
    }
    let Some(Value::Object(data)) = e.remove("data") else { return Err("event has no data object".into()) };
    if data.len() > MAX_COLUMNS {
        return Err("Event has too many columns.".into());
    }
    if let Some((k, _)) = data.iter().find(|(_, v)| v.is_object() || v.is_array()) {
        return Err(format!("field {k:?} is not a string, number or boolean"));
    }
    Ok((time, data))
}
