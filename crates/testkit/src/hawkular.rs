//! A strict stand-in for Hawkular Metrics (a Java server, no package of it installs here), as its REST API
//! documentation defines the calls Heapster's sink makes, under `/hawkular/metrics` (or another base):
//!
//! - every request names its tenant in `Hawkular-Tenant`, else 400 `{"errorMsg":"Tenant is not specified. Use
//!   'Hawkular-Tenant' header."}`; with credentials set, `Authorization` must carry them (Basic or Bearer),
//!   else 401;
//! - `POST /gauges/raw` and `/counters/raw`: `Content-Type: application/json`, a JSON array of
//!   `{"id":..,"data":[{"timestamp":<ms>,"value":..}]}` (non-empty id and data, nothing else; a gauge value a
//!   number, a counter value a whole number), else 400 with `errorMsg`; 200 when stored;
//! - `PUT /gauges/<id>/tags` and `/counters/<id>/tags`: a JSON object of string tags, added to the definition
//!   (made if new); 200;
//! - `GET /metrics`: the tenant's definitions `[{"id","type","tenantId","tags"}]`, 204 when it has none.
//!
//! It keeps data points and definitions per tenant, counts requests by path, and can be told to fail the next
//! requests.

use crate::json_api::{JsonApi, Request};
use axum::http::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// (tenant, type, id).
pub type MetricKey = (String, String, String);

#[derive(Default)]
struct State {
    base: String,
    /// Expected `Authorization` header, if any.
    authorization: Option<String>,
    data: BTreeMap<MetricKey, Vec<(i64, f64)>>,
    tags: BTreeMap<MetricKey, BTreeMap<String, String>>,
    requests: BTreeMap<String, usize>,
    fail: (usize, u16, usize),
}

pub struct HawkularFake(JsonApi<State>);

fn error(msg: &str) -> String {
    json!({ "errorMsg": msg }).to_string()
}

impl HawkularFake {
    /// A fake under `base` (`/hawkular/metrics`) taking requests with this `Authorization` header (None: any).
    pub fn start(base: &str, authorization: Option<&str>) -> HawkularFake {
        let state = State { base: base.into(), authorization: authorization.map(str::to_owned), ..State::default() };
        HawkularFake(JsonApi::start("hawkular", state, handle))
    }

    pub fn url(&self) -> String {
        self.0.url()
    }

    /// Data points stored, by (tenant, type, id): (timestamp ms, value).
    pub fn data(&self) -> BTreeMap<MetricKey, Vec<(i64, f64)>> {
        self.0.state().data.clone()
    }

    /// Definition tags, by (tenant, type, id).
    pub fn tags(&self) -> BTreeMap<MetricKey, BTreeMap<String, String>> {
        self.0.state().tags.clone()
    }

    /// Requests by `METHOD path-pattern` (`POST gauges/raw`, `PUT tags`, `GET metrics`).
    pub fn requests(&self) -> BTreeMap<String, usize> {
        self.0.state().requests.clone()
    }

    /// After `skip` more requests, the next `count` are answered `status`.
    pub fn fail_after(&self, skip: usize, status: u16, count: usize) {
        self.0.state().fail = (skip, status, count);
    }
}

fn handle(s: &mut State, r: &Request) -> (u16, String) {
    let Some(path) = r.path.strip_prefix(&s.base).and_then(|p| p.strip_prefix('/')) else {
        return (404, error("not found"));
    };
    let segments: Vec<&str> = path.split('/').collect();
    let route = match (&r.method, segments.as_slice()) {
        (&Method::POST, [t @ ("gauges" | "counters"), "raw"]) => format!("POST {t}/raw"),
        (&Method::PUT, ["gauges" | "counters", _, "tags"]) => "PUT tags".into(),
        (&Method::GET, ["metrics"]) => "GET metrics".into(),
        _ => return (404, error(&format!("no route for {} {path}", r.method))),
    };
    *s.requests.entry(route.clone()).or_default() += 1;
    if let Some(want) = &s.authorization
        && r.header("authorization") != Some(want.as_str())
    {
        return (401, error("Unauthorized"));
    }
    let Some(tenant) = r.header("hawkular-tenant").filter(|t| !t.is_empty()).map(str::to_owned) else {
        return (400, error("Tenant is not specified. Use 'Hawkular-Tenant' header."));
    };
    match &mut s.fail {
        (0, status, left) if *left > 0 => {
            *left -= 1;
            return (*status, error("injected failure"));
        }
        (skip, _, left) if *left > 0 => *skip -= 1,
        _ => {}
    }
    if r.method != Method::GET && !r.is_json() {
        return (415, error("Content-Type must be application/json"));
    }
    let kind = |t: &str| if t == "gauges" { "gauge" } else { "counter" }.to_owned();
    match segments.as_slice() {
        [t, "raw"] => match raw(&r.body, *t == "counters") {
            Ok(metrics) => {
                for (id, points) in metrics {
                    s.data.entry((tenant.clone(), kind(t), id)).or_default().extend(points);
                }
                (200, String::new())
            }
            Err(e) => (400, error(&e)),
        },
        [t, id, "tags"] => {
            let id = percent_encoding::percent_decode_str(id).decode_utf8_lossy().into_owned();
            let Ok(Value::Object(tags)) = serde_json::from_slice::<Value>(&r.body) else {
                return (400, error("Tags must be a JSON object"));
            };
            let mut parsed = BTreeMap::new();
            for (k, v) in tags {
                let Value::String(v) = v else { return (400, error(&format!("Tag {k} is not a string"))) };
                parsed.insert(k, v);
            }
            s.tags.entry((tenant, kind(t), id)).or_default().extend(parsed);
            (200, String::new())
        }
        _ => {
            let defs: Vec<Value> = s
                .tags
                .iter()
                .filter(|((t, _, _), _)| *t == tenant)
                .map(|((t, k, id), tags)| json!({"id": id, "type": k, "tenantId": t, "tags": tags}))
                .collect();
            if defs.is_empty() { (204, String::new()) } else { (200, Value::Array(defs).to_string()) }
        }
    }
}

type Points = Vec<(String, Vec<(i64, f64)>)>;

fn raw(body: &[u8], counters: bool) -> Result<Points, String> {
    let Ok(Value::Array(metrics)) = serde_json::from_slice::<Value>(body) else {
        return Err("Payload is empty or not a JSON array".into());
    };
    let mut out = Vec::with_capacity(metrics.len());
    for m in metrics {
        let Value::Object(m) = m else { return Err("Metric is not a JSON object".into()) };
        if let Some(k) = m.keys().find(|k| !matches!(k.as_str(), "id" | "data")) {
            return Err(format!("Unrecognized field \"{k}\""));
        }
        let id = m.get("id").and_then(Value::as_str).filter(|i| !i.is_empty()).ok_or("Metric id is required")?;
        let data =
            m.get("data").and_then(Value::as_array).filter(|d| !d.is_empty()).ok_or("Data points are required")?;
        let mut points = Vec::with_capacity(data.len());
        for p in data {
            let Value::Object(p) = p else { return Err("Data point is not a JSON object".into()) };
            if let Some(k) = p.keys().find(|k| !matches!(k.as_str(), "timestamp" | "value" | "tags")) {
                return Err(format!("Unrecognized field \"{k}\""));
            }
            let ts =
                p.get("timestamp").and_then(Value::as_i64).ok_or("Timestamp is required and must be a whole number")?;
            let v = p.get("value").ok_or("Value is required")?;
            let value = if counters {
                v.as_i64().ok_or(format!("Counter value {v}: Cannot deserialize value of type long"))? as f64
            } else {
                v.as_f64().ok_or(format!("Gauge value {v}: Cannot deserialize value of type double"))?
            };
            points.push((ts, value));
        }
        out.push((id.to_owned(), points));
    }
    Ok(out)
}
