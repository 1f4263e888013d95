//! Cloud Logging v2 `entries.write`, with the service's limits, partial success and de-duplication, and the
//! entries kept for tests to read.
//!
//! Reasons counted (in [`super::GoogleFake::rejected_requests`], per refused request, or per refused entry for the
//! entry checks): `request_too_large`, `invalid_json`, `permission_denied`, `log_name`, `resource_type`,
//! `resource_labels`, `timestamp`, `proto_payload`, `entry_too_large`.

use super::schema::Violation;
use super::{
    Refusal, Service, Shared, bad_request, check_resource, error, error_info, json_response, permission_message,
};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};

/// The largest `entries.write` body ("Request payload size exceeds the limit: 10485760 bytes").
pub const MAX_REQUEST_BYTES: usize = 10 << 20;
/// The largest log entry (Cloud Logging quotas: "Size of a LogEntry: 256 KB"), measured here as its JSON.
pub const MAX_ENTRY_BYTES: usize = 256 << 10;
/// How far ahead and back a timestamp may be (`LogEntry.timestamp`: "don't exceed the logs retention period in
/// the past, and ... 24 hours in the future"; the default retention is 30 days).
pub const MAX_FUTURE: TimeDelta = TimeDelta::hours(24);
pub const RETENTION: TimeDelta = TimeDelta::days(30);

/// A log entry the fake stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLogEntry {
    /// The project of the log name.
    pub project: String,
    /// As sent (after the request's default): `projects/P/logs/kubernetes.io%2Fevents`.
    pub log_name: String,
    /// The log id URL-decoded: `kubernetes.io/events`.
    pub log_id: String,
    pub resource_type: String,
    pub resource_labels: BTreeMap<String, String>,
    /// As sent, or the time of receipt when none was.
    pub timestamp: DateTime<Utc>,
    /// `DEFAULT` when none was sent.
    pub severity: String,
    /// As sent, or one assigned by the fake.
    pub insert_id: String,
    pub labels: BTreeMap<String, String>,
    pub json_payload: Option<Value>,
    pub text_payload: Option<String>,
    pub proto_payload: Option<Value>,
    pub operation: Option<Value>,
    /// The whole entry as stored (defaults applied, `receiveTimestamp` set), normalised JSON.
    pub entry: Value,
}

#[derive(Default)]
pub(crate) struct Store {
    pub entries: Vec<StoredLogEntry>,
    keys: HashSet<(String, String, DateTime<Utc>)>,
    pub received: u64,
    pub duplicates: u64,
    pub rejected: BTreeMap<String, u64>,
    assigned_ids: u64,
}

fn refuse(shared: &Shared, reason: &str, response: axum::response::Response) -> axum::response::Response {
    *shared.state().logging.rejected.entry(reason.to_string()).or_default() += 1;
    response
}

pub(crate) fn write(shared: &Shared, body: &[u8]) -> axum::response::Response {
    if body.len() > MAX_REQUEST_BYTES {
        let message = format!("Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes.");
        return refuse(shared, "request_too_large", error(400, &message, vec![]));
    }
    let parsed = serde_json::from_slice::<Value>(body).map_err(|e| {
        vec![Violation { field: String::new(), description: format!("Invalid JSON payload received. {e}") }]
    });
    let request = match parsed.and_then(|b| shared.logging_schemas.check("WriteLogEntriesRequest", b)) {
        Ok(v) => v,
        Err(v) => return refuse(shared, "invalid_json", bad_request(&v)),
    };
    let entries = request.get("entries").and_then(Value::as_array).cloned().unwrap_or_default();
    // What the proto3 JSON parser itself refuses: two members of the `payload` oneof, an `Any` without `@type`.
    let mut violations = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let payloads: Vec<&str> =
            ["protoPayload", "textPayload", "jsonPayload"].into_iter().filter(|p| e.get(*p).is_some()).collect();
        if payloads.len() > 1 {
            violations.push(Violation {
                field: format!("entries[{i}]"),
                description: format!(
                    "Invalid JSON payload received. Oneof field 'payload' is already set. Cannot set '{}'",
                    payloads[1]
                ),
            });
        }
        if let Some(p) = e.get("protoPayload")
            && p.get("@type").and_then(Value::as_str).is_none()
        {
            violations.push(Violation {
                field: format!("entries[{i}].proto_payload"),
                description: "Invalid JSON payload received. Any JSON doesn't have '@type'.".into(),
            });
        }
    }
    if !violations.is_empty() {
        return refuse(shared, "invalid_json", bad_request(&violations));
    }
    let now = Utc::now();
    let partial = request.get("partialSuccess").and_then(Value::as_bool).unwrap_or(false);
    let dry_run = request.get("dryRun").and_then(Value::as_bool).unwrap_or(false);
    let mut state = shared.state();
    state.logging.received += entries.len() as u64;
    let mut good = Vec::new();
    let mut errors: BTreeMap<usize, Refusal> = BTreeMap::new();
    let mut projects = HashSet::new();
    for (i, e) in entries.into_iter().enumerate() {
        let Value::Object(mut e) = e else { continue };
        for field in ["logName", "resource"] {
            if !e.contains_key(field)
                && let Some(v) = request.get(field)
            {
                e.insert(field.into(), v.clone());
            }
        }
        if let Some(Value::Object(defaults)) = request.get("labels") {
            let labels = e.entry("labels").or_insert_with(|| json!({}));
            for (k, v) in defaults {
                if labels.get(k).is_none() {
                    labels[k] = v.clone();
                }
            }
        }
        if e.get("insertId").and_then(Value::as_str).is_none_or(str::is_empty) {
            state.logging.assigned_ids += 1;
            e.insert("insertId".into(), json!(format!("fake-{:012}", state.logging.assigned_ids)));
        }
        match prepare(e, now) {
            Ok(entry) => {
                projects.insert(entry.project.clone());
                good.push(entry);
            }
            Err((reason, message)) => {
                errors.insert(i, (reason, message));
            }
        }
    }
    if projects.iter().any(|p| state.denied.contains(p)) {
        drop(state);
        let response = error(
            403,
            permission_message(Service::Logging),
            vec![error_info("IAM_PERMISSION_DENIED", Service::Logging)],
        );
        return refuse(shared, "permission_denied", response);
    }
    for (reason, _) in errors.values() {
        *state.logging.rejected.entry(reason.to_string()).or_default() += 1;
    }
    if !dry_run && (errors.is_empty() || partial) {
        let store = &mut state.logging;
        for entry in good {
            if store.keys.insert((entry.project.clone(), entry.insert_id.clone(), entry.timestamp)) {
                store.entries.push(entry);
            } else {
                store.duplicates += 1;
            }
        }
    }
    drop(state);
    match errors.values().next() {
        None => json_response(200, &json!({})),
        Some((_, first)) => {
            let per_entry: Map<String, Value> =
                errors.iter().map(|(i, (_, m))| (i.to_string(), json!({ "code": 3, "message": m }))).collect();
            let detail = json!({
                "@type": "type.googleapis.com/google.logging.v2.WriteLogEntriesPartialErrors",
                "logEntryErrors": per_entry,
            });
            error(400, first, vec![detail])
        }
    }
}

/// One entry, its request's defaults applied, checked and made ready to store.
fn prepare(mut e: Map<String, Value>, now: DateTime<Utc>) -> Result<StoredLogEntry, Refusal> {
    let log_name = e.get("logName").and_then(Value::as_str).unwrap_or_default().to_string();
    if log_name.is_empty() {
        return Err(("log_name", "The log entry has no logName, and the request names no default logName.".into()));
    }
    // "if log_name begins with a forward-slash ... the forward-slash is removed".
    let log_name = log_name.strip_prefix('/').unwrap_or(&log_name).to_string();
    let bad_name = || {
        (
            "log_name",
            format!(
                "Invalid log name \"{log_name}\": it must be projects/[PROJECT_ID]/logs/[LOG_ID], [LOG_ID] URL-encoded, shorter than 512 characters, of letters, digits, '/', '_', '-' and '.'."
            ),
        )
    };
    let (project, raw_id) =
        log_name.strip_prefix("projects/").and_then(|r| r.split_once("/logs/")).ok_or_else(bad_name)?;
    let log_id = percent_encoding::percent_decode_str(raw_id).decode_utf8().map_err(|_| bad_name())?.into_owned();
    let valid_id = !raw_id.contains('/')
        && !log_id.is_empty()
        && log_id.len() < 512
        && log_id.chars().all(|c| c.is_ascii_alphanumeric() || "/_-.".contains(c));
    if project.is_empty() || project.contains('/') || !valid_id {
        return Err(bad_name());
    }
    let (resource_type, resource_labels) = check_resource(e.get("resource"))?;
    let timestamp = match e.get("timestamp").and_then(Value::as_str) {
        Some(t) => {
            DateTime::parse_from_rfc3339(t).map_err(|_| ("timestamp", format!("Invalid timestamp {t:?}.")))?.to_utc()
        }
        None => {
            e.insert("timestamp".into(), json!(now.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)));
            now
        }
    };
    if timestamp > now + MAX_FUTURE {
        return Err((
            "timestamp",
            format!("The log entry's timestamp {timestamp} is more than 24 hours in the future."),
        ));
    }
    if timestamp < now - RETENTION {
        return Err((
            "timestamp",
            format!("The log entry's timestamp {timestamp} is older than the logs retention period."),
        ));
    }
    if let Some(t) = e.get("protoPayload").and_then(|p| p.get("@type")).and_then(Value::as_str)
        && !matches!(
            t,
            "type.googleapis.com/google.cloud.audit.AuditLog"
                | "type.googleapis.com/google.appengine.logging.v1.RequestLog"
        )
    {
        return Err((
            "proto_payload",
            format!("Unsupported protoPayload type {t}: user-defined types are not supported."),
        ));
    }
    // Output-only fields: "Any value written to it is cleared" (metadata); receiveTimestamp is the service's.
    e.remove("metadata");
    e.insert("receiveTimestamp".into(), json!(now.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)));
    let entry = Value::Object(e);
    let size = serde_json::to_vec(&entry).map(|b| b.len()).unwrap_or(0);
    if size > MAX_ENTRY_BYTES {
        return Err((
            "entry_too_large",
            format!("Log entry with size {:.1}K exceeds maximum size of 256.0K", size as f64 / 1024.0),
        ));
    }
    let labels = |v: Option<&Value>| -> BTreeMap<String, String> {
        v.and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
            .unwrap_or_default()
    };
    Ok(StoredLogEntry {
        project: project.to_string(),
        log_id,
        log_name: log_name.clone(),
        resource_type,
        resource_labels,
        timestamp,
        severity: entry.get("severity").and_then(Value::as_str).unwrap_or("DEFAULT").to_string(),
        insert_id: entry["insertId"].as_str().unwrap_or_default().to_string(),
        labels: labels(entry.get("labels")),
        json_payload: entry.get("jsonPayload").cloned(),
        text_payload: entry.get("textPayload").and_then(Value::as_str).map(str::to_string),
        proto_payload: entry.get("protoPayload").cloned(),
        operation: entry.get("operation").cloned(),
        entry,
    })
}
