//! A strict stand-in for Librato's (SolarWinds AppOptics') tagged measurements API (no server of it exists
//! outside the service), as its API reference and naming rules define `POST /v1/measurements`:
//!
//! - HTTP basic auth with the user and token, else 401 `{"errors":{"request":["Authorization Required"]}}`;
//! - a JSON object of `tags` (the request's) and a non-empty `measurements` array (and nothing else);
//! - each measurement `name` (`A-Za-z0-9.:-_`, 1 to 255), a numeric `value`, an optional integer `time`
//!   (seconds), and `tags` whose names match `[-.:_\w]{1,64}` and values `[-.:_\w ]{1,255}`; a measurement
//!   with no tag at all (its own or the request's) is refused; other keys are refused;
//! - any refusal is a 400 of the whole request, `{"errors":{"params":{"<field>":["<message>"]}}}`;
//! - a 202 `{"measurements":{"summary":{"total":N,"accepted":N,"failed":0,"filtered":0}}}` when taken;
//! - tag names and values stored in lower case, as Librato does.
//!
//! It also holds requests to [`MAX_MEASUREMENTS`] measurements, Heapster's batch for this API. It keeps what it
//! took, and can be told to fail the next requests.

use crate::json_api::{JsonApi, Request, error};
use axum::http::Method;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub const MAX_MEASUREMENTS: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct StoredMeasurement {
    pub name: String,
    pub value: f64,
    pub time: Option<i64>,
    /// The request's tags and the measurement's own, in lower case.
    pub tags: BTreeMap<String, String>,
}

#[derive(Default)]
struct State {
    user: String,
    token: String,
    measurements: Vec<StoredMeasurement>,
    requests: usize,
    /// Requests to let through, then the status to answer and how many times.
    fail: (usize, u16, usize),
    refused: Vec<String>,
}

pub struct LibratoFake(JsonApi<State>);

impl LibratoFake {
    pub fn start(user: &str, token: &str) -> LibratoFake {
        let state = State { user: user.into(), token: token.into(), ..State::default() };
        LibratoFake(JsonApi::start("librato", state, handle))
    }

    pub fn url(&self) -> String {
        self.0.url()
    }

    pub fn measurements(&self) -> Vec<StoredMeasurement> {
        self.0.state().measurements.clone()
    }

    pub fn requests(&self) -> usize {
        self.0.state().requests
    }

    /// The 400s' bodies so far.
    pub fn refused(&self) -> Vec<String> {
        self.0.state().refused.clone()
    }

    /// After `skip` more requests, the next `count` are answered `status`.
    pub fn fail_after(&self, skip: usize, status: u16, count: usize) {
        self.0.state().fail = (skip, status, count);
    }
}

fn refuse(s: &mut State, field: &str, message: String) -> (u16, String) {
    let body = json!({"errors": {"params": {field: [message]}}}).to_string();
    s.refused.push(body.clone());
    (400, body)
}

fn handle(s: &mut State, r: &Request) -> (u16, String) {
    s.requests += 1;
    if r.path != "/v1/measurements" {
        return (404, error("not found"));
    }
    if r.method != Method::POST {
        return (405, error("method not allowed"));
    }
    if r.basic_auth() != Some((s.user.clone(), s.token.clone())) {
        return (401, json!({"errors": {"request": ["Authorization Required"]}}).to_string());
    }
    match &mut s.fail {
        (0, status, left) if *left > 0 => {
            *left -= 1;
            return (*status, error("injected failure"));
        }
        (skip, _, left) if *left > 0 => *skip -= 1,
        _ => {}
    }
    if !r.is_json() {
        return refuse(s, "request", "content type must be application/json".into());
    }
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&r.body) else {
        return refuse(s, "request", "body is not a JSON object".into());
    };
    if let Some(k) = body.keys().find(|k| !matches!(k.as_str(), "tags" | "measurements")) {
        return refuse(s, k, "is not a known parameter".into());
    }
    let global = match body.remove("tags") {
        None => Map::new(),
        Some(Value::Object(t)) => t,
        Some(_) => return refuse(s, "tags", "must be an object".into()),
    };
    let Some(Value::Array(ms)) = body.remove("measurements").filter(|m| m.as_array().is_some_and(|a| !a.is_empty()))
    else {
        return refuse(s, "measurements", "is not present".into());
    };
    if ms.len() > MAX_MEASUREMENTS {
        return refuse(s, "measurements", format!("more than {MAX_MEASUREMENTS} in one request"));
    }
    let global = match tags(&global) {
        Ok(t) => t,
        Err((f, m)) => return refuse(s, &f, m),
    };
    let mut took = Vec::with_capacity(ms.len());
    for m in ms {
        match measurement(m, &global) {
            Ok(m) => took.push(m),
            Err((f, msg)) => return refuse(s, &f, msg),
        }
    }
    let n = took.len();
    s.measurements.extend(took);
    (202, json!({"measurements": {"summary": {"total": n, "accepted": n, "failed": 0, "filtered": 0}}}).to_string())
}

type Refusal = (String, String);

fn word(ok: impl Fn(char) -> bool) -> impl Fn(&str, usize) -> bool {
    move |s: &str, max: usize| !s.is_empty() && s.chars().count() <= max && s.chars().all(&ok)
}

fn tags(t: &Map<String, Value>) -> Result<BTreeMap<String, String>, Refusal> {
    let name_ok = word(|c: char| c.is_ascii_alphanumeric() || "-.:_".contains(c));
    let value_ok = word(|c: char| c.is_ascii_alphanumeric() || "-.:_ ".contains(c));
    let mut out = BTreeMap::new();
    for (k, v) in t {
        if !name_ok(k, 64) {
            return Err(("tags".into(), format!("tag name {k:?} is invalid")));
        }
        let Some(v) = v.as_str().filter(|v| value_ok(v, 255)) else {
            return Err(("tags".into(), format!("tag value {v} of {k:?} is invalid")));
        };
        out.insert(k.to_lowercase(), v.to_lowercase());
    }
    Ok(out)
}

fn measurement(m: Value, global: &BTreeMap<String, String>) -> Result<StoredMeasurement, Refusal> {
    let Value::Object(mut m) = m else { return Err(("measurements".into(), "must be objects".into())) };
    if let Some(k) = m.keys().find(|k| !matches!(k.as_str(), "name" | "value" | "time" | "tags" | "period")) {
        return Err((k.clone(), "is not a known parameter".into()));
    }
    let name_ok = word(|c: char| c.is_ascii_alphanumeric() || ".:-_".contains(c));
    let name = match m.remove("name") {
        Some(Value::String(n)) if name_ok(&n, 255) => n,
        Some(n) => return Err(("name".into(), format!("{n} is invalid"))),
        None => return Err(("name".into(), "is not present".into())),
    };
    let value = match m.remove("value") {
        Some(Value::Number(v)) => v.as_f64().unwrap(),
        Some(v) => return Err(("value".into(), format!("{v} is not a number"))),
        None => return Err(("value".into(), "is not present".into())),
    };
    let time = match m.remove("time") {
        None => None,
        Some(t) => Some(t.as_i64().filter(|t| *t > 0).ok_or(("time".to_owned(), format!("{t} is invalid")))?),
    };
    let mut all = global.clone();
    match m.remove("tags") {
        None => {}
        Some(Value::Object(t)) => all.extend(tags(&t)?),
        Some(_) => return Err(("tags".into(), "must be an object".into())),
    }
    if all.is_empty() {
        return Err(("tags".into(), "is not present".into()));
    }
    Ok(StoredMeasurement { name, value, time, tags: all })
}
