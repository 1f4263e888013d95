//! Local fakes of Google's OAuth2 token endpoint, the GCE metadata server, Cloud Monitoring v3 and Cloud Logging v2,
//! on one 127.0.0.1 port, for the Google sinks' tests: no emulator exists for these services, and the live ones were
//! not used. The fakes are strict: every request is checked against the services' *published* API, never against
//! what heapster happens to send. Field names, types and enums come from the discovery documents in
//! googleapis/google-api-go-client (`monitoring/v3/monitoring-api.json`, `logging/v2/logging-api.json`; the
//! schemas used are extracted, unchanged but for their descriptions, in `data/google/*.schemas.json`); the limits
//! and rules from the same documents' descriptions and Google's documentation. An unknown field, a wrong type or
//! enum value is answered as the service answers it: 400 `INVALID_ARGUMENT` with a `google.rpc.BadRequest` detail.
//!
//! # Public API
//! - [`GoogleFake::start`] (async) / [`GoogleFake::start_blocking`]: the server runs on its own thread and runtime,
//!   so either can be called from a test's runtime or outside one; dropping the fake stops it.
//! - Addresses: [`GoogleFake::url`] (base URL of all four services: the sinks' `endpoint=`),
//!   [`GoogleFake::token_uri`], [`GoogleFake::metadata_host`] (`127.0.0.1:PORT`, for `GCE_METADATA_HOST`).
//! - Credentials: [`GoogleFake::write_service_account_key`] writes a service-account key JSON (signed with the
//!   committed throwaway key `data/google/TEST-ONLY-service-account-key.pem`, `token_uri` pointing at the fake);
//!   `POST /token` exchanges a JWT signed with it (RS256, `iss`, `scope`, `aud` = token URI, `iat`/`exp` at most
//!   1 h apart) for a bearer token; the metadata server hands out tokens too
//!   (`/computeMetadata/v1/instance/service-accounts/default/token`, `Metadata-Flavor: Google` required).
//!   [`GoogleFake::set_token_lifetime`] makes tokens short-lived so that refresh can be tested;
//!   [`GoogleFake::tokens_issued`] counts them; [`GoogleFake::issue_token`] hands one out directly. A token's
//!   scopes must cover the API (cloud-platform, or monitoring / logging ones), or the call gets 403 "insufficient
//!   scopes". [`GoogleFake::set_metadata`] sets what the metadata server says.
//! - Knobs: [`GoogleFake::deny_project`] (403 `PERMISSION_DENIED` with the service's message),
//!   [`GoogleFake::allow_reserved_prefixes`] (metric types outside `custom.googleapis.com/` and
//!   `external.googleapis.com/`, e.g. `kubernetes.io/`), [`GoogleFake::set_min_point_spacing`] (5 s by default),
//!   [`GoogleFake::fail_next`] (the next `count` requests to a [`Service`] get Google's error for 429, 500, 503 or
//!   403).
//! - Readback: [`GoogleFake::time_series`] (every stored point), [`GoogleFake::metric_descriptors`],
//!   [`GoogleFake::rejected_series`] and [`GoogleFake::rejected_requests`] (counts by reason),
//!   [`GoogleFake::log_entries`] (stored, de-duplicated), [`GoogleFake::log_entries_received`] (including
//!   duplicates and rejected ones), [`GoogleFake::log_duplicates`], [`GoogleFake::requests`] (by the discovery
//!   method id, e.g. `"monitoring.projects.timeSeries.create"`, `"logging.entries.write"`, or `"token"`,
//!   `"metadata"`).
//!
//! # Rules enforced
//! Monitoring `projects.timeSeries.create`. The whole request is refused (400, nothing stored) for: a body that does
//! not parse against the schema; no series; more than 200 series; a series without exactly one point; the same series
//! (metric type and labels, resource type and labels) twice; a missing metric or resource type; a point whose value
//! does not set exactly one field; a distribution breaking its documented constraints (bucket options required, counts
//! adding up to `count`, at most 200 buckets); an end time missing, more than 25 h in the past or more than 5 min
//! ahead, or before the start time. Each series is then checked on its own, and the good ones are stored even when
//! others fail (the answer is then the service's 400 with a `google.monitoring.v3.CreateTimeSeriesSummary` detail): the
//! metric type under `custom.googleapis.com/` or `external.googleapis.com/` (unless reserved prefixes are allowed); the
//! resource one of `k8s_container`, `k8s_pod`, `k8s_node`, `k8s_cluster`, `gce_instance`, `global` with exactly its
//! labels and `project_id` the project written to; metric kind and value type matching the descriptor (created
//! automatically, as the service does, for a new custom metric: GAUGE or CUMULATIVE, value type from the point, labels
//! from the series); metric labels known to an explicitly created descriptor, keys of at most 100 and values of at most
//! 1,024 characters; BOOL and STRING only as GAUGE; a GAUGE start equal to the end (or absent); a CUMULATIVE or DELTA
//! start before the end; points of a series newer than its last point and at least 5 s after it (Google's "one point
//! each 5 seconds"); a CUMULATIVE series keeping its start time, or starting anew after the previous point's end.
//! `metricDescriptors.create` checks the type (prefix as above), kind and value type (not unspecified; BOOL and
//! STRING only as GAUGE), label keys (`[a-zA-Z][a-zA-Z0-9_]*`, at most 100 characters, unique, at most 30) and the
//! unit (the UCUM subset `MetricDescriptor.unit` documents); creating an existing type again replaces it unless its
//! kind or value type changes.
//!
//! Logging `entries.write`: a body over 10 MiB is refused ("Request payload size exceeds the limit"); the schema,
//! one payload of `jsonPayload`/`textPayload`/`protoPayload` (the latter with an `@type`) are checked for the whole
//! request; each entry, after the request's defaults are applied, needs a `logName` of the form
//! `projects/P/logs/ID` with `ID` URL-encoded (only `[A-Za-z0-9/_.-]` once decoded, under 512 characters), a
//! resource as above, a timestamp at most 24 h ahead and within the 30-day retention, and at most 256 KiB as JSON.
//! Without `partialSuccess` one bad entry fails the request and nothing is written; with it the good entries are
//! written; either way the answer carries a `google.logging.v2.WriteLogEntriesPartialErrors` detail. An entry with
//! the same project, `insertId` and timestamp as a stored one is a duplicate and stored once, as the service
//! documents. `dryRun` validates and stores nothing.

mod auth;
mod logging;
mod monitoring;
mod schema;
#[cfg(test)]
mod tests;

pub use logging::StoredLogEntry;
pub use monitoring::{PointValue, TimeSeriesPoint};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The four services, for [`GoogleFake::fail_next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// `POST /token`.
    Token,
    /// `GET /computeMetadata/v1/...`.
    Metadata,
    /// `/v3/projects/...`.
    Monitoring,
    /// `/v2/entries:write`.
    Logging,
}

/// What the metadata server answers: a GKE node by default; `None` attributes answer 404, as on a plain VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataConfig {
    pub project_id: String,
    pub numeric_project_id: String,
    pub zone: String,
    pub hostname: String,
    pub instance_id: String,
    pub instance_name: String,
    pub cluster_name: Option<String>,
    pub cluster_location: Option<String>,
    pub service_account_email: String,
    /// Scopes of the default service account's tokens when the request names none.
    pub scopes: Vec<String>,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            project_id: "heapster-test".into(),
            numeric_project_id: "123456789012".into(),
            zone: "us-central1-a".into(),
            hostname: "gke-test-cluster-default-pool-1a2b3c4d-xyz1.c.heapster-test.internal".into(),
            instance_id: "4520031799277581759".into(),
            instance_name: "gke-test-cluster-default-pool-1a2b3c4d-xyz1".into(),
            cluster_name: Some("test-cluster".into()),
            cluster_location: Some("us-central1-a".into()),
            service_account_email: "123456789012-compute@developer.gserviceaccount.com".into(),
            scopes: vec!["https://www.googleapis.com/auth/cloud-platform".into()],
        }
    }
}

/// The fakes, running on their own thread; dropped, they stop.
pub struct GoogleFake {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _server: crate::AppThread,
}

/// What the handlers share.
pub(crate) struct Shared {
    pub addr: SocketAddr,
    pub key: auth::TestKey,
    pub monitoring_schemas: schema::Schemas,
    pub logging_schemas: schema::Schemas,
    pub state: Mutex<State>,
}

/// Everything that changes.
pub(crate) struct State {
    pub tokens: HashMap<String, auth::Token>,
    pub token_lifetime: Duration,
    pub tokens_issued: u64,
    pub accounts: HashSet<String>,
    pub denied: HashSet<String>,
    pub allow_reserved: bool,
    pub min_point_spacing: chrono::TimeDelta,
    pub faults: HashMap<Service, (u16, usize)>,
    pub requests: BTreeMap<String, u64>,
    pub metadata: MetadataConfig,
    pub monitoring: monitoring::Store,
    pub logging: logging::Store,
}

impl Shared {
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn token_uri(&self) -> String {
        format!("http://{}/token", self.addr)
    }
}

impl GoogleFake {
    /// Starts the fakes on a free 127.0.0.1 port. Binding is synchronous, so this returns at once; it is `async`
    /// for tests that await their servers.
    pub async fn start() -> GoogleFake {
        GoogleFake::start_blocking()
    }

    /// Starts the fakes on a free 127.0.0.1 port, from inside a runtime or outside one.
    pub fn start_blocking() -> GoogleFake {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free 127.0.0.1 port");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            addr,
            key: auth::TestKey::load(),
            monitoring_schemas: schema::Schemas::load(include_str!("../../data/google/monitoring-v3.schemas.json")),
            logging_schemas: schema::Schemas::load(include_str!("../../data/google/logging-v2.schemas.json")),
            state: Mutex::new(State {
                tokens: HashMap::new(),
                token_lifetime: Duration::from_secs(3600),
                tokens_issued: 0,
                accounts: HashSet::new(),
                denied: HashSet::new(),
                allow_reserved: false,
                min_point_spacing: monitoring::MIN_POINT_SPACING,
                faults: HashMap::new(),
                requests: BTreeMap::new(),
                metadata: MetadataConfig::default(),
                monitoring: monitoring::Store::default(),
                logging: logging::Store::default(),
            }),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
            .with_state(shared.clone());
        GoogleFake { addr, shared, _server: crate::AppThread::serve("google-fake", listener, app) }
    }

    /// `http://127.0.0.1:PORT`: the base URL of every service here (Monitoring's `/v3/...`, Logging's
    /// `/v2/...`, `/token`, `/computeMetadata/v1/...`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The OAuth2 token endpoint, `http://127.0.0.1:PORT/token`: the `token_uri` of the keys written here and the
    /// `aud` a JWT must carry.
    pub fn token_uri(&self) -> String {
        self.shared.token_uri()
    }

    /// `127.0.0.1:PORT`, the value of `GCE_METADATA_HOST` that points Google's client libraries at this fake.
    pub fn metadata_host(&self) -> String {
        self.addr.to_string()
    }

    /// Writes `dir/service-account-<project>.json`, a service-account key as the Cloud console makes them, with
    /// the committed test-only private key and `token_uri` pointing here; tokens are granted to its account only.
    pub fn write_service_account_key(&self, dir: &Path, project: &str) -> PathBuf {
        let key = self.shared.key.service_account_json(project, &self.token_uri());
        self.shared.state().accounts.insert(key["client_email"].as_str().unwrap().to_string());
        let path = dir.join(format!("service-account-{project}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(&key).unwrap()).expect("writing the service-account key");
        path
    }

    /// How long tokens issued from now on live (1 h by default, as Google's).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.shared.state().token_lifetime = lifetime;
    }

    /// A bearer token for `scopes`, as if got from the token endpoint: for tests of what comes after
    /// authentication. Counts in [`GoogleFake::tokens_issued`].
    pub fn issue_token(&self, scopes: &[&str]) -> String {
        auth::new_token(&self.shared, scopes.iter().map(|s| s.to_string()).collect()).0
    }

    /// Bearer tokens issued so far, by the token endpoint and the metadata server.
    pub fn tokens_issued(&self) -> u64 {
        self.shared.state().tokens_issued
    }

    /// What the metadata server answers from now on.
    pub fn set_metadata(&self, metadata: MetadataConfig) {
        self.shared.state().metadata = metadata;
    }

    pub fn metadata(&self) -> MetadataConfig {
        self.shared.state().metadata.clone()
    }

    /// Requests for `project` (by the id or number in the URL or log name) get 403 `PERMISSION_DENIED`, as when
    /// the account lacks the role or the project does not exist.
    pub fn deny_project(&self, project: &str) {
        self.shared.state().denied.insert(project.to_string());
    }

    /// Lets metric types outside `custom.googleapis.com/` and `external.googleapis.com/` be written and
    /// described, as for Google's own agents (`kubernetes.io/`, `container.googleapis.com/`).
    pub fn allow_reserved_prefixes(&self, allow: bool) {
        self.shared.state().allow_reserved = allow;
    }

    /// How far apart the points of one series must be (5 s by default, the documented sampling limit).
    pub fn set_min_point_spacing(&self, spacing: Duration) {
        self.shared.state().min_point_spacing = chrono::TimeDelta::from_std(spacing).expect("a spacing of sane size");
    }

    /// The next `count` requests to `service` get Google's answer for `http_status` (429 `RESOURCE_EXHAUSTED`,
    /// 500 `INTERNAL`, 503 `UNAVAILABLE`, 403 `PERMISSION_DENIED`, or another status) instead of being served.
    pub fn fail_next(&self, service: Service, http_status: u16, count: usize) {
        self.shared.state().faults.insert(service, (http_status, count));
    }

    /// Requests received for a method (the discovery id, e.g. `"monitoring.projects.timeSeries.create"`,
    /// `"monitoring.projects.metricDescriptors.create"`, `"logging.entries.write"`; or `"token"`, `"metadata"`),
    /// whatever their answer.
    pub fn requests(&self, method: &str) -> u64 {
        self.shared.state().requests.get(method).copied().unwrap_or(0)
    }

    /// Every point stored, in the order written.
    pub fn time_series(&self) -> Vec<TimeSeriesPoint> {
        self.shared.state().monitoring.points.clone()
    }

    /// The metric descriptors of a project, as `metricDescriptors.get` returns them.
    pub fn metric_descriptors(&self, project: &str) -> Vec<Value> {
        let state = self.shared.state();
        state.monitoring.descriptors.iter().filter(|((p, _), _)| p == project).map(|(_, d)| d.json.clone()).collect()
    }

    /// Series refused one by one inside otherwise accepted requests, by reason (e.g. `"out_of_order"`,
    /// `"too_frequent"`, `"resource_labels"`; see the names in `monitoring.rs`).
    pub fn rejected_series(&self) -> BTreeMap<String, u64> {
        self.shared.state().monitoring.rejected_series.clone()
    }

    /// Requests refused whole (nothing stored), by reason (e.g. `"too_many_series"`, `"invalid_json"`,
    /// `"end_time_too_old"`, `"unauthenticated"`, `"insufficient_scopes"`, `"permission_denied"`), and log entries
    /// refused (`"entry_too_large"`, `"log_name"`, ...); the names are listed in `monitoring.rs` and `logging.rs`.
    pub fn rejected_requests(&self) -> BTreeMap<String, u64> {
        let state = self.shared.state();
        let mut all = state.monitoring.rejected_requests.clone();
        for (k, v) in &state.logging.rejected {
            *all.entry(k.clone()).or_default() += v;
        }
        all
    }

    /// The log entries stored, once each, in the order written.
    pub fn log_entries(&self) -> Vec<StoredLogEntry> {
        self.shared.state().logging.entries.clone()
    }

    /// Log entries received in `entries.write` requests, counting duplicates and refused ones.
    pub fn log_entries_received(&self) -> u64 {
        self.shared.state().logging.received
    }

    /// Log entries received again (same project, `insertId` and timestamp as a stored one) and stored once.
    pub fn log_duplicates(&self) -> u64 {
        self.shared.state().logging.duplicates
    }
}

/// Which service and method a request is for.
fn route(method: &Method, path: &str) -> Option<(Service, &'static str)> {
    if path == "/token" {
        return (method == Method::POST).then_some((Service::Token, "token"));
    }
    if path.starts_with("/computeMetadata/") {
        return Some((Service::Metadata, "metadata"));
    }
    if path == "/v2/entries:write" {
        return (method == Method::POST).then_some((Service::Logging, "logging.entries.write"));
    }
    let rest = path.strip_prefix("/v3/projects/")?;
    let (_, tail) = rest.split_once('/')?;
    let id = match (method.as_str(), tail) {
        ("POST", "timeSeries") => "monitoring.projects.timeSeries.create",
        ("POST", "metricDescriptors") => "monitoring.projects.metricDescriptors.create",
        ("GET", "metricDescriptors") => "monitoring.projects.metricDescriptors.list",
        ("GET", t) if t.starts_with("metricDescriptors/") => "monitoring.projects.metricDescriptors.get",
        ("DELETE", t) if t.starts_with("metricDescriptors/") => "monitoring.projects.metricDescriptors.delete",
        _ => return None,
    };
    Some((Service::Monitoring, id))
}

async fn handle(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((service, id)) = route(&method, uri.path()) else {
        return (StatusCode::NOT_FOUND, format!("The requested URL {} was not found on this server.", uri.path()))
            .into_response();
    };
    let fault = {
        let mut state = shared.state();
        *state.requests.entry(id.to_string()).or_default() += 1;
        match state.faults.get_mut(&service) {
            Some((status, left)) if *left > 0 => {
                *left -= 1;
                Some(*status)
            }
            _ => None,
        }
    };
    if let Some(status) = fault {
        return fault_response(service, status);
    }
    match service {
        Service::Token => auth::token(&shared, &headers, &body),
        Service::Metadata => auth::metadata(&shared, uri.path(), uri.query(), &headers),
        Service::Monitoring | Service::Logging => {
            if let Some(refusal) = auth::authorize(&shared, &headers, service) {
                return refusal;
            }
            let body = match decode_body(&headers, &body) {
                Ok(b) => b,
                Err(e) => return *e,
            };
            if service == Service::Logging {
                logging::write(&shared, &body)
            } else {
                monitoring::handle(&shared, &method, &uri, id, &body)
            }
        }
    }
}

/// The request body, gunzipped when sent with `Content-Encoding: gzip` (Google's front end takes gzip bodies).
fn decode_body(headers: &HeaderMap, body: &Bytes) -> Result<Vec<u8>, Box<Response>> {
    match headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()) {
        None | Some("identity") => Ok(body.to_vec()),
        Some(e) if e.eq_ignore_ascii_case("gzip") => {
            use std::io::Read as _;
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut out)
                .map_err(|e| Box::new(error(400, &format!("Invalid gzip request body: {e}"), vec![])))?;
            Ok(out)
        }
        Some(e) => Err(Box::new(error(400, &format!("Unsupported Content-Encoding: {e}"), vec![]))),
    }
}

/// `google.rpc.Code` name and number of an HTTP status, as Google's REST front end maps them.
pub(crate) fn rpc_status(http: u16) -> (&'static str, u16) {
    match http {
        400 => ("INVALID_ARGUMENT", 3),
        401 => ("UNAUTHENTICATED", 16),
        403 => ("PERMISSION_DENIED", 7),
        404 => ("NOT_FOUND", 5),
        409 => ("ALREADY_EXISTS", 6),
        429 => ("RESOURCE_EXHAUSTED", 8),
        499 => ("CANCELLED", 1),
        500 => ("INTERNAL", 13),
        501 => ("UNIMPLEMENTED", 12),
        503 => ("UNAVAILABLE", 14),
        504 => ("DEADLINE_EXCEEDED", 4),
        _ => ("UNKNOWN", 2),
    }
}

/// Google's JSON error: `{"error": {"code", "message", "status", "details"}}`.
pub(crate) fn error(http: u16, message: &str, details: Vec<Value>) -> Response {
    let (status, _) = rpc_status(http);
    let mut body = json!({ "error": { "code": http, "message": message, "status": status } });
    if !details.is_empty() {
        body["error"]["details"] = Value::Array(details);
    }
    json_response(http, &body)
}

pub(crate) fn json_response(http: u16, body: &Value) -> Response {
    (
        StatusCode::from_u16(http).unwrap(),
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        serde_json::to_vec(body).unwrap(),
    )
        .into_response()
}

/// A `google.rpc.BadRequest` detail listing `violations`, and the message Google's front end puts above it.
pub(crate) fn bad_request(violations: &[schema::Violation]) -> Response {
    let message = violations.iter().map(|v| v.description.as_str()).collect::<Vec<_>>().join("\n");
    let fields: Vec<Value> =
        violations.iter().map(|v| json!({ "field": v.field, "description": v.description })).collect();
    error(
        400,
        &message,
        vec![json!({ "@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": fields })],
    )
}

/// An `ErrorInfo` detail, which Google's errors carry for auth and quota failures.
pub(crate) fn error_info(reason: &str, service: Service) -> Value {
    let name = match service {
        Service::Logging => "logging.googleapis.com",
        _ => "monitoring.googleapis.com",
    };
    json!({
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": { "service": name },
    })
}

/// What a service answers for an injected failure.
fn fault_response(service: Service, status: u16) -> Response {
    match service {
        Service::Token => {
            let (error, description) = match status {
                429 => ("rate_limit_exceeded", "Rate Limit Exceeded"),
                403 => ("access_denied", "Access denied."),
                400 => ("invalid_request", "Bad Request"),
                _ => ("internal_failure", "Backend Error"),
            };
            json_response(status, &json!({ "error": error, "error_description": description }))
        }
        Service::Metadata => {
            (StatusCode::from_u16(status).unwrap(), "injected metadata server failure").into_response()
        }
        Service::Monitoring | Service::Logging => {
            let project = "project_number:123456789012";
            match status {
                429 => {
                    let message = if service == Service::Logging {
                        format!(
                            "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute' of service 'logging.googleapis.com' for consumer '{project}'."
                        )
                    } else {
                        format!(
                            "Quota exceeded for quota metric 'Time series ingestion requests' and limit 'Time series ingestion requests per minute' of service 'monitoring.googleapis.com' for consumer '{project}'."
                        )
                    };
                    error(429, &message, vec![error_info("RATE_LIMIT_EXCEEDED", service)])
                }
                403 => error(403, permission_message(service), vec![error_info("IAM_PERMISSION_DENIED", service)]),
                500 => error(500, "Internal error encountered.", vec![]),
                503 => error(503, "The service is currently unavailable.", vec![]),
                other => error(other, "Injected failure.", vec![]),
            }
        }
    }
}

/// Labels of a metric or monitored resource.
pub(crate) type Labels = BTreeMap<String, String>;
/// Why one series or entry is refused: a reason (for the counts) and the service's words.
pub(crate) type Refusal = (&'static str, String);

/// The service's own words for a missing permission.
pub(crate) fn permission_message(service: Service) -> &'static str {
    match service {
        Service::Logging => "Permission 'logging.logEntries.create' denied on resource (or it may not exist).",
        _ => "Permission monitoring.timeSeries.create denied (or the resource may not exist).",
    }
}

/// Monitored resource types accepted here and their labels, from Google's monitored-resource list
/// (cloud.google.com/monitoring/api/resources); the same types serve Logging.
pub(crate) fn resource_labels(resource_type: &str) -> Option<&'static [&'static str]> {
    Some(match resource_type {
        "k8s_container" => &["project_id", "location", "cluster_name", "namespace_name", "pod_name", "container_name"],
        "k8s_pod" => &["project_id", "location", "cluster_name", "namespace_name", "pod_name"],
        "k8s_node" => &["project_id", "location", "cluster_name", "node_name"],
        "k8s_cluster" => &["project_id", "location", "cluster_name"],
        "gce_instance" => &["project_id", "instance_id", "zone"],
        "global" => &["project_id"],
        _ => return None,
    })
}

/// Why a monitored resource is not one of the accepted types with exactly its labels: a reason (for the counts)
/// and the service's words.
pub(crate) fn check_resource(resource: Option<&Value>) -> Result<(String, Labels), Refusal> {
    let ty = resource.and_then(|r| r.get("type")).and_then(Value::as_str).unwrap_or_default();
    if ty.is_empty() {
        return Err(("resource_type", "The monitored resource type is required.".into()));
    }
    let Some(wanted) = resource_labels(ty) else {
        return Err(("resource_type", format!("Unrecognized resource type: {ty}")));
    };
    let labels: BTreeMap<String, String> = resource
        .and_then(|r| r.get("labels"))
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default();
    if let Some(extra) = labels.keys().find(|k| !wanted.contains(&k.as_str())) {
        return Err(("resource_labels", format!("Unrecognized resource label: {extra}")));
    }
    let missing: Vec<&str> = wanted.iter().copied().filter(|k| labels.get(*k).is_none_or(String::is_empty)).collect();
    if !missing.is_empty() {
        let missing = missing.join(" ");
        return Err((
            "resource_labels",
            format!("The set of resource labels is incomplete. Missing labels: ({missing})."),
        ));
    }
    Ok((ty.to_string(), labels))
}
