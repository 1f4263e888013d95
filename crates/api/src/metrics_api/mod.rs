//! The Kubernetes resource metrics API, served from the store: what `kubectl top` and the Horizontal Pod
//! Autoscaler read.
//!
//! - `/apis/metrics.k8s.io/v1beta1` (today's clients), `/apis/metrics.k8s.io/v1alpha1` and `/apis/metrics/v1alpha1`
//!   (Heapster 1.4 and 1.5): NodeMetrics and PodMetrics, list and get, per namespace and across namespaces, with
//!   `labelSelector` and `fieldSelector` ([`nodes`], [`pods`], [`selector`]).
//! - The discovery documents a client reads first, `/api`, `/apis`, the group and version documents, and
//!   `/version` ([`discovery`]).
//! - `/api/v1/nodes[/NAME]`, which `kubectl top node` reads for allocatable CPU and memory: passed through to the
//!   Kubernetes API server when a kubernetes source is configured ([`KubeApiProxy`]), this host (or the hosts in
//!   the store) as Nodes otherwise; and `/api/v1/pods`, which kubectl reads only when a list came back empty, to
//!   tell "no pods" from "no metrics yet".
//!
//! Usage is the newest `cpu/usage_rate` (sent in nanocores) and `memory/working_set` of each node and container,
//! if no older than two resolutions: a pod deleted a minute ago is not reported for the rest of the store window.
//! A pod is reported with those of its containers that have both values; Heapster dropped the whole pod when one
//! container lacked data, which hid busy pods from the HPA.
//!
//! Without a kubernetes source and with no pods in the store (standalone mode), cgroups are shown as pods: see
//! [`pods`] for how a cgroup path becomes a namespace, a pod name and labels.
//!
//! Every error is a Kubernetes `Status` object ([`status::Status`]), which client-go turns into kubectl's usual
//! `Error from server (NotFound): ...` line.

pub mod discovery;
pub mod nodes;
pub(crate) mod objects;
pub mod openapi;
pub mod pods;
pub mod quantity;
pub mod selector;
pub mod status;
pub(crate) mod stream;

#[cfg(test)]
mod tests;

pub use status::Status;

use crate::ApiState;
use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use heapster_model::{Labels, MetricValue, Timestamp};
use heapster_store::Store;
use selector::{FieldSelector, LabelSelector};
use serde::Deserialize;

/// Reads from the Kubernetes API server with the credentials of the kubernetes source, for the routes that pass
/// through (`/api/v1/nodes`, `/version`). Implemented in the binary, which owns the connection; the API crate
/// stays free of Kubernetes client code.
#[async_trait]
pub trait KubeApiProxy: Send + Sync {
    /// `GET path_and_query` on the API server. `Err` when it could not be reached at all (the message says why);
    /// any HTTP answer, error statuses included, is `Ok`.
    async fn get(&self, path_and_query: &str) -> Result<ProxyResponse, String>;
}

/// One answer of the API server, passed on unchanged.
#[derive(Debug, Clone)]
pub struct ProxyResponse {
    /// The API server's HTTP status, kept so kubectl sees its 404s and 403s as they are.
    pub status: u16,
    /// Its `Content-Type`; `None` is sent as `application/json`.
    pub content_type: Option<String>,
    /// Its body, unchanged (a NodeList, a version.Info or a Status).
    pub body: Bytes,
}

/// The API server's answer to `path_and_query`, or a 503 Status saying it could not be asked.
pub(crate) async fn pass_through(proxy: &dyn KubeApiProxy, path_and_query: &str) -> Response {
    match proxy.get(path_and_query).await {
        Ok(r) => {
            let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let content_type = r.content_type.unwrap_or_else(|| "application/json".to_owned());
            (status, [(header::CONTENT_TYPE, content_type)], r.body).into_response()
        }
        Err(e) => Status::unavailable(format!(
            "the Kubernetes API server could not be asked for {path_and_query}: {e}; check that it is reachable"
        ))
        .into_response(),
    }
}

/// The three spellings of the API, which differ only in their group and version strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// `metrics.k8s.io/v1beta1`: kubectl since 1.10 and the HPA.
    V1beta1,
    /// `metrics.k8s.io/v1alpha1`: Kubernetes 1.8 and 1.9 clients.
    V1alpha1,
    /// `metrics/v1alpha1`: Heapster 1.4 and 1.5's own group.
    LegacyV1alpha1,
}

impl ApiVersion {
    /// Every version, each routed under its own prefix.
    pub const ALL: [ApiVersion; 3] = [ApiVersion::V1beta1, ApiVersion::V1alpha1, ApiVersion::LegacyV1alpha1];

    /// The API group.
    pub fn group(self) -> &'static str {
        match self {
            ApiVersion::V1beta1 | ApiVersion::V1alpha1 => "metrics.k8s.io",
            ApiVersion::LegacyV1alpha1 => "metrics",
        }
    }

    /// The version within the group.
    pub fn version(self) -> &'static str {
        match self {
            ApiVersion::V1beta1 => "v1beta1",
            ApiVersion::V1alpha1 | ApiVersion::LegacyV1alpha1 => "v1alpha1",
        }
    }

    /// `group/version`, the objects' `apiVersion`.
    pub fn api_version(self) -> &'static str {
        match self {
            ApiVersion::V1beta1 => "metrics.k8s.io/v1beta1",
            ApiVersion::V1alpha1 => "metrics.k8s.io/v1alpha1",
            ApiVersion::LegacyV1alpha1 => "metrics/v1alpha1",
        }
    }

    /// Where the version's routes start.
    pub fn prefix(self) -> &'static str {
        match self {
            ApiVersion::V1beta1 => "/apis/metrics.k8s.io/v1beta1",
            ApiVersion::V1alpha1 => "/apis/metrics.k8s.io/v1alpha1",
            ApiVersion::LegacyV1alpha1 => "/apis/metrics/v1alpha1",
        }
    }

    /// `nodemetrics.metrics.k8s.io`-style names, as a real server words its NotFound messages.
    fn resource(self, plural: &str) -> String {
        format!("{plural}.{}", self.group())
    }
}

/// `labelSelector` and `fieldSelector`; other list options (`limit`, `resourceVersion`, ...) are accepted and
/// ignored, as metrics-server does.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListParams {
    label_selector: Option<String>,
    field_selector: Option<String>,
}

/// Parsed selectors of one request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selectors {
    /// The label selector as sent, for passing on to the API server.
    pub label_text: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selectors {
    /// The request's selectors, or a 400 Status naming the bad one.
    pub(crate) fn from_query(q: Result<Query<ListParams>, QueryRejection>) -> Result<Selectors, Status> {
        let Query(p) = q.map_err(|e| Status::bad_request(format!("bad query string: {}", e.body_text())))?;
        let labels = match p.label_selector.as_deref() {
            Some(s) => LabelSelector::parse(s).map_err(|e| Status::bad_request(format!("labelSelector {s:?}: {e}")))?,
            None => LabelSelector::default(),
        };
        let fields = match p.field_selector.as_deref() {
            Some(s) => FieldSelector::parse(s).map_err(|e| Status::bad_request(format!("fieldSelector {s:?}: {e}")))?,
            None => FieldSelector::default(),
        };
        Ok(Selectors { label_text: p.label_selector, labels, fields })
    }
}

/// One entity's newest usage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Usage {
    /// The newer of the two values' timestamps.
    pub timestamp: Timestamp,
    /// `cpu/usage_rate` (millicores) in the unit the API sends.
    pub cpu_nanocores: i64,
    /// `memory/working_set`.
    pub memory_bytes: i64,
}

/// Reads usage from the store, ignoring values older than two resolutions before the newest batch.
pub(crate) struct UsageReader<'a> {
    store: &'a Store,
    oldest: Timestamp,
}

impl<'a> UsageReader<'a> {
    pub(crate) fn new(st: &'a ApiState) -> Self {
        let horizon = 2 * st.resolution.as_millis().min(i64::MAX as u128) as i64;
        let oldest = st.store.latest_timestamp().map_or(Timestamp::MAX, |t| t.saturating_sub(horizon));
        UsageReader { store: &st.store, oldest }
    }

    /// Whether a set last seen at `ts` still counts as present.
    pub(crate) fn is_fresh(&self, ts: Timestamp) -> bool {
        ts >= self.oldest
    }

    /// CPU and memory of set `key`, if both are fresh.
    pub(crate) fn read(&self, key: &str) -> Option<Usage> {
        let none = Labels::new();
        let cpu = self.store.latest(key, "cpu/usage_rate", &none).filter(|p| p.timestamp >= self.oldest)?;
        let mem = self.store.latest(key, "memory/working_set", &none).filter(|p| p.timestamp >= self.oldest)?;
        Some(Usage {
            timestamp: cpu.timestamp.max(mem.timestamp),
            cpu_nanocores: quantity::nanocores(cpu.value.as_f64()),
            memory_bytes: int(mem.value),
        })
    }
}

/// A path segment, or a 400 Status when it is not UTF-8 (axum's own rejection is plain text).
pub(crate) fn path_param<T>(
    p: Result<axum::extract::Path<T>, axum::extract::rejection::PathRejection>,
) -> Result<T, Status> {
    p.map(|axum::extract::Path(v)| v).map_err(|e| Status::bad_request(format!("bad path: {}", e.body_text())))
}

/// A gauge as an integer (bytes are stored as integers; a float from a custom source is rounded).
pub(crate) fn int(v: MetricValue) -> i64 {
    match v {
        MetricValue::Int(i) => i,
        MetricValue::Float(f) => f.round() as i64,
    }
}

/// The metrics API, the discovery documents and the core routes kubectl needs. Every metrics route also answers
/// with a trailing slash (`.../nodes/`), as Heapster's go-restful router did.
pub fn routes() -> Router<ApiState> {
    let mut r = discovery::routes().merge(openapi::routes()).merge(nodes::core_routes()).merge(pods::core_routes());
    for v in ApiVersion::ALL {
        let p = v.prefix();
        let routes: [(String, MethodRouter<ApiState>); 6] = [
            (p.to_owned(), get(move || discovery::resource_list(v))),
            (format!("{p}/nodes"), get(move |st, q| nodes::list(st, v, q))),
            (format!("{p}/nodes/{{name}}"), get(move |st, name, q| nodes::get_one(st, v, name, q))),
            (format!("{p}/pods"), get(move |st, q| pods::list_all(st, v, q))),
            (format!("{p}/namespaces/{{ns}}/pods"), get(move |st, ns, q| pods::list_namespace(st, v, ns, q))),
            (format!("{p}/namespaces/{{ns}}/pods/{{name}}"), get(move |st, path, q| pods::get_one(st, v, path, q))),
        ];
        for (path, handler) in routes {
            r = r.route(&format!("{path}/"), handler.clone()).route(&path, handler);
        }
    }
    r
}
