//! The Kubernetes custom metrics API, `custom.metrics.k8s.io` (`v1beta2` and `v1beta1`), served from the store:
//! what the Horizontal Pod Autoscaler reads for `Pods` and `Object` metrics, so that it can scale on any metric
//! heapster collects (`network_rx_rate`, `cpu_usage_rate`, `memory_oom_kills`, ...), not only CPU and memory.
//!
//! Metric names are the model's with `_` for `/` (`network/rx_rate` is `network_rx_rate`), since a metric name is
//! one path segment. Routes, as `k8s.io/metrics/pkg/client/custom_metrics` asks them:
//!
//! | path under `/apis/custom.metrics.k8s.io/<version>` | answer |
//! |---|---|
//! | (none) | APIResourceList: `pods/<metric>`, `nodes/<metric>`, `namespaces/<metric>` of the metrics in the store |
//! | `/namespaces/NS/pods/NAME/METRIC` | MetricValueList with pod NAME's newest value |
//! | `/namespaces/NS/pods/*/METRIC?labelSelector=...` | every pod of NS whose labels match, with a fresh value |
//! | `/nodes/NAME/METRIC`, `/nodes/*/METRIC?labelSelector=...` | the same for nodes |
//! | `/namespaces/NS/metrics/METRIC` | namespace NS itself (its rollup of its pods) |
//!
//! A value is the newest point of the metric if no older than two resolutions (as metrics.k8s.io's usage), sent as
//! a Quantity in milli-units so that fractional rates survive (`1536500m`); CPU in millicores is sent in cores
//! (`250m`). `windowSeconds` is the resolution: rates are computed over one resolution. Errors are Kubernetes
//! `Status` objects, 404 when the metric or the object has no value: the HPA then reports the metric as missing
//! rather than scaling on a stale value.

pub mod discovery;
#[cfg(test)]
mod tests;

use crate::ApiState;
pub(crate) use crate::metrics_api::objects::time;
use crate::metrics_api::pods::parse_pod_labels;
use crate::metrics_api::selector::LabelSelector;
use crate::metrics_api::stream::list_response;
use crate::metrics_api::{Status, UsageReader, path_param};
use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use heapster_model::catalog::{self, Units};
use heapster_model::quantity::decimal_si;
use heapster_model::{Labels, MetricSetType, keys, labels as l};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The API group.
pub const GROUP: &str = "custom.metrics.k8s.io";

/// The name a selector request uses in place of an object name.
pub const ALL_OBJECTS: &str = "*";

/// The two versions served; they differ only in how a MetricValue names its metric and window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmVersion {
    /// `custom.metrics.k8s.io/v1beta2`: Kubernetes 1.12 and later (preferred).
    V1beta2,
    /// `custom.metrics.k8s.io/v1beta1`: older HPA controllers and adapters' clients.
    V1beta1,
}

impl CmVersion {
    /// Both versions, the preferred first.
    pub const ALL: [CmVersion; 2] = [CmVersion::V1beta2, CmVersion::V1beta1];

    pub fn version(self) -> &'static str {
        match self {
            CmVersion::V1beta2 => "v1beta2",
            CmVersion::V1beta1 => "v1beta1",
        }
    }

    /// `group/version`, the lists' `apiVersion`.
    pub fn api_version(self) -> &'static str {
        match self {
            CmVersion::V1beta2 => "custom.metrics.k8s.io/v1beta2",
            CmVersion::V1beta1 => "custom.metrics.k8s.io/v1beta1",
        }
    }

    /// Where the version's routes start.
    pub fn prefix(self) -> &'static str {
        match self {
            CmVersion::V1beta2 => "/apis/custom.metrics.k8s.io/v1beta2",
            CmVersion::V1beta1 => "/apis/custom.metrics.k8s.io/v1beta1",
        }
    }
}

/// The three kinds of object that have metrics here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Pod,
    Node,
    Namespace,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 3] = [ObjectKind::Pod, ObjectKind::Node, ObjectKind::Namespace];

    /// The resource, as in paths and discovery (`pods/network_rx_rate`).
    pub fn resource(self) -> &'static str {
        match self {
            ObjectKind::Pod => "pods",
            ObjectKind::Node => "nodes",
            ObjectKind::Namespace => "namespaces",
        }
    }

    /// The `kind` of a `describedObject`.
    pub fn kind(self) -> &'static str {
        match self {
            ObjectKind::Pod => "Pod",
            ObjectKind::Node => "Node",
            ObjectKind::Namespace => "Namespace",
        }
    }

    /// Whether objects of this kind live in a namespace (the discovery document's `namespaced`).
    pub fn namespaced(self) -> bool {
        self == ObjectKind::Pod
    }

    /// The type of the store's sets of this kind.
    pub fn set_type(self) -> MetricSetType {
        match self {
            ObjectKind::Pod => MetricSetType::Pod,
            ObjectKind::Node => MetricSetType::Node,
            ObjectKind::Namespace => MetricSetType::Namespace,
        }
    }
}

/// The API name of model metric `name`: `network/rx_rate` is `network_rx_rate`.
pub fn api_metric_name(name: &str) -> String {
    name.replace('/', "_")
}

/// The model metric an API name stands for, among `known` (the store's metric names of the object's kind); the
/// catalog's names are tried first, so the common case needs no scan of the store.
fn model_metric_name(api_name: &str, known: impl FnOnce() -> Vec<String>) -> Option<String> {
    let underscores: Vec<usize> = api_name.match_indices('_').map(|(i, _)| i).collect();
    if underscores.len() <= 8 {
        for mask in 0u32..1 << underscores.len() {
            let mut candidate = api_name.as_bytes().to_vec();
            for (bit, &at) in underscores.iter().enumerate() {
                if mask & 1 << bit != 0 {
                    candidate[at] = b'/';
                }
            }
            let candidate = String::from_utf8(candidate).ok()?;
            if catalog::find(&candidate).is_some() {
                return Some(candidate);
            }
        }
    }
    known().into_iter().find(|n| api_metric_name(n) == api_name)
}

/// A stored value as a Quantity string in milli-units (canonical form: `250m`, `1536500m`, `500k`); millicores are
/// sent in cores. Non-finite values read as zero rather than as a quantity no client can parse.
pub fn quantity(metric: &str, value: f64) -> String {
    let scale = match catalog::find(metric).map(|d| d.units) {
        Some(Units::Millicores) => 1e-3,
        _ => 1.0,
    };
    let milli = value * scale * 1000.0;
    let milli = if milli.is_finite() { milli.round().clamp(i64::MIN as f64, i64::MAX as f64) as i64 } else { 0 };
    decimal_si(milli, -3)
}

/// One metric's value of one object, in either version's shape.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum MetricValue {
    #[serde(rename_all = "camelCase")]
    V1beta2 { described_object: Value, metric: Value, timestamp: String, window_seconds: i64, value: String },
    #[serde(rename_all = "camelCase")]
    V1beta1 { described_object: Value, metric_name: String, timestamp: String, window: i64, value: String },
}

/// `labelSelector` selects objects, `metricLabelSelector` series of the metric (heapster's metrics are single
/// series: a selector that needs a label matches nothing).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CmParams {
    label_selector: Option<String>,
    metric_label_selector: Option<String>,
}

struct Request {
    labels: LabelSelector,
    metric_matches: bool,
}

fn parse_params(q: Result<Query<CmParams>, QueryRejection>) -> Result<Request, Status> {
    let Query(p) = q.map_err(|e| Status::bad_request(format!("bad query string: {}", e.body_text())))?;
    let parse = |name: &str, s: &Option<String>| match s.as_deref() {
        Some(s) => LabelSelector::parse(s).map_err(|e| Status::bad_request(format!("{name} {s:?}: {e}"))),
        None => Ok(LabelSelector::default()),
    };
    let labels = parse("labelSelector", &p.label_selector)?;
    let metric = parse("metricLabelSelector", &p.metric_label_selector)?;
    Ok(Request { labels, metric_matches: metric.matches(&Labels::new()) })
}

/// An object a request covers: its store key and how it is described.
struct Object {
    key: String,
    namespace: Option<String>,
    name: String,
}

/// Reads the newest values of one metric and writes them as MetricValues.
struct ValueReader<'a> {
    st: &'a ApiState,
    fresh: UsageReader<'a>,
    version: CmVersion,
    kind: ObjectKind,
    model_name: String,
    api_name: String,
    window_seconds: i64,
}

impl<'a> ValueReader<'a> {
    /// A 404 naming the metric when it is neither in the catalog nor in the store for objects of `kind`.
    fn new(st: &'a ApiState, version: CmVersion, kind: ObjectKind, api_name: &str) -> Result<Self, Status> {
        let model_name = model_metric_name(api_name, || st.store.metric_names_of_type(kind.set_type()))
            .ok_or_else(|| metric_not_found(api_name, kind))?;
        Ok(ValueReader {
            st,
            fresh: UsageReader::new(st),
            version,
            kind,
            model_name,
            api_name: api_name.to_owned(),
            window_seconds: st.resolution.as_secs().max(1) as i64,
        })
    }

    fn value(&self, o: &Object) -> Option<MetricValue> {
        let p = self
            .st
            .store
            .latest(&o.key, &self.model_name, &Labels::new())
            .filter(|p| self.fresh.is_fresh(p.timestamp))?;
        let mut described = json!({"kind": self.kind.kind(), "name": o.name, "apiVersion": "v1"});
        if let Some(ns) = &o.namespace {
            described["namespace"] = json!(ns);
        }
        let value = quantity(&self.model_name, p.value.as_f64());
        let timestamp = time(p.timestamp);
        Some(match self.version {
            CmVersion::V1beta2 => MetricValue::V1beta2 {
                described_object: described,
                metric: json!({"name": self.api_name}),
                timestamp,
                window_seconds: self.window_seconds,
                value,
            },
            CmVersion::V1beta1 => MetricValue::V1beta1 {
                described_object: described,
                metric_name: self.api_name.clone(),
                timestamp,
                window: self.window_seconds,
                value,
            },
        })
    }

    fn labels(&self, key: &str) -> Labels {
        self.st.store.label(key, l::LABELS).map(|s| parse_pod_labels(&s)).unwrap_or_default()
    }
}

fn metric_not_found(api_name: &str, kind: ObjectKind) -> Status {
    Status::not_found(format!(
        "the server could not find the metric {api_name} for {}: see /apis/custom.metrics.k8s.io/v1beta2 for the \
         metrics there are",
        kind.resource()
    ))
}

/// The MetricValueList of one object (what the client's `GetForObject` expects: exactly one item), or a 404.
fn one(reader: &ValueReader, o: Object, metric_matches: bool) -> Response {
    let item = reader.value(&o).filter(|_| metric_matches);
    let Some(item) = item else {
        let what = match &o.namespace {
            Some(ns) => format!("{}/{}", ns, o.name),
            None => o.name.clone(),
        };
        return Status::not_found(format!(
            "the server could not find the metric {} for {} {what}: it has no value in the last two resolutions",
            reader.api_name,
            reader.kind.resource().trim_end_matches('s')
        ))
        .into_response();
    };
    list_response("MetricValueList", reader.version.api_version(), move |w| {
        w.item(&item);
    })
}

/// The MetricValueList of every object in `objects` whose labels match and that has a fresh value.
fn many(
    st: ApiState,
    v: CmVersion,
    kind: ObjectKind,
    api_name: String,
    objects: Vec<Object>,
    req: Request,
) -> Response {
    if let Err(e) = ValueReader::new(&st, v, kind, &api_name) {
        return e.into_response();
    }
    list_response("MetricValueList", v.api_version(), move |w| {
        let Ok(reader) = ValueReader::new(&st, v, kind, &api_name) else { return };
        if !req.metric_matches {
            return;
        }
        for o in &objects {
            if !req.labels.is_empty() && !req.labels.matches(&reader.labels(&o.key)) {
                continue;
            }
            if let Some(item) = reader.value(o)
                && !w.item(&item)
            {
                return;
            }
        }
    })
}

/// `.../namespaces/{ns}/pods/{name}/{metric}`, `name` `*` for a selector list.
async fn pod_metric(
    State(st): State<ApiState>,
    v: CmVersion,
    path: Result<Path<(String, String, String)>, PathRejection>,
    q: Result<Query<CmParams>, QueryRejection>,
) -> Response {
    let ((ns, name, metric), req) = match (path_param(path), parse_params(q)) {
        (Ok(p), Ok(r)) => (p, r),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    if name == ALL_OBJECTS {
        let prefix = format!("namespace:{ns}/pod:");
        let objects = st
            .store
            .keys_of_type(MetricSetType::Pod)
            .into_iter()
            .filter_map(|key| {
                let pod = key.strip_prefix(&prefix)?.to_owned();
                (!pod.contains('/')).then(|| Object { key, namespace: Some(ns.clone()), name: pod })
            })
            .collect();
        return many(st, v, ObjectKind::Pod, metric, objects, req);
    }
    match ValueReader::new(&st, v, ObjectKind::Pod, &metric) {
        Ok(r) => one(&r, Object { key: keys::pod_key(&ns, &name), namespace: Some(ns), name }, req.metric_matches),
        Err(e) => e.into_response(),
    }
}

/// `.../nodes/{name}/{metric}`, `name` `*` for a selector list.
async fn node_metric(
    State(st): State<ApiState>,
    v: CmVersion,
    path: Result<Path<(String, String)>, PathRejection>,
    q: Result<Query<CmParams>, QueryRejection>,
) -> Response {
    let ((name, metric), req) = match (path_param(path), parse_params(q)) {
        (Ok(p), Ok(r)) => (p, r),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    if name == ALL_OBJECTS {
        let objects = st
            .store
            .keys_of_type(MetricSetType::Node)
            .into_iter()
            .filter_map(|key| {
                let node = key.strip_prefix("node:")?.to_owned();
                Some(Object { key, namespace: None, name: node })
            })
            .collect();
        return many(st, v, ObjectKind::Node, metric, objects, req);
    }
    match ValueReader::new(&st, v, ObjectKind::Node, &metric) {
        Ok(r) => one(&r, Object { key: keys::node_key(&name), namespace: None, name }, req.metric_matches),
        Err(e) => e.into_response(),
    }
}

/// `.../namespaces/{ns}/metrics/{metric}`: the namespace object itself, as the client asks for a root-scoped
/// Namespace (its `Resource("metrics").Namespace(ns).Name(metric)`).
async fn namespace_metric(
    State(st): State<ApiState>,
    v: CmVersion,
    path: Result<Path<(String, String)>, PathRejection>,
    q: Result<Query<CmParams>, QueryRejection>,
) -> Response {
    let ((ns, metric), req) = match (path_param(path), parse_params(q)) {
        (Ok(p), Ok(r)) => (p, r),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    match ValueReader::new(&st, v, ObjectKind::Namespace, &metric) {
        Ok(r) => one(&r, Object { key: keys::namespace_key(&ns), namespace: None, name: ns }, req.metric_matches),
        Err(e) => e.into_response(),
    }
}

/// Both versions' routes and the group's discovery documents.
pub fn routes() -> Router<ApiState> {
    let mut r = discovery::routes();
    for v in CmVersion::ALL {
        let p = v.prefix();
        r = r
            .route(p, get(move |st| discovery::resource_list(st, v)))
            .route(
                &format!("{p}/namespaces/{{ns}}/pods/{{name}}/{{metric}}"),
                get(move |st, path, q| pod_metric(st, v, path, q)),
            )
            .route(&format!("{p}/nodes/{{name}}/{{metric}}"), get(move |st, path, q| node_metric(st, v, path, q)))
            .route(
                &format!("{p}/namespaces/{{ns}}/metrics/{{metric}}"),
                get(move |st, path, q| namespace_metric(st, v, path, q)),
            );
    }
    r
}
