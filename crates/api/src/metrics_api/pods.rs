//! PodMetrics, and the core `/api/v1/pods` that kubectl reads when a PodMetrics list comes back empty (to say
//! "No resources found" or "metrics not available yet").
//!
//! # Where pods come from
//! With a kubernetes source, or whenever the store holds pod containers, a pod is every
//! `namespace:NS/pod:P/container:C` set grouped by NS and P; its labels are the pod labels in the `labels` label
//! (`app:web,tier:front`, pairs split on any separator that cannot occur in a label). Pod lists never come from
//! the API server: passing them through would hand out pod specs (environment variables and all) to anyone who
//! can reach heapster.
//!
//! Standalone (no kubernetes source, no pods in the store), every cgroup is shown as a pod with one container of
//! the same name, so that `kubectl top pod -A` works as a cgroup top on a plain host:
//!
//! | cgroup | namespace | pod | labels |
//! |---|---|---|---|
//! | `system.slice/docker.service` | `system.slice` | `docker.service` | `heapster.k8s.io/cgroup-parent=system.slice` |
//! | `user.slice/user-1000.slice/session-2.scope` | `user.slice.user-1000.slice` | `session-2.scope` | `...cgroup-parent=user.slice.user-1000.slice` |
//! | `init.scope` | `root` | `init.scope` | `...cgroup-parent=root` |
//!
//! plus `kubernetes.io/hostname=NODE` on every one. With several nodes in the store (cAdvisor mode) the namespace
//! starts with the node: `node-1.system.slice`.

use super::objects::{ContainerMetrics, Meta, PodMetrics, time};
use super::quantity::go_duration;
use super::stream::list_response;
use super::{ApiVersion, ListParams, Selectors, Status, UsageReader, path_param};
use crate::ApiState;
use axum::Json;
use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use heapster_model::{Labels, MetricSetType, labels as l};
use serde_json::{Value, json};

/// The label naming a cgroup pod's parent cgroup (standalone mode).
pub const CGROUP_PARENT_LABEL: &str = "heapster.k8s.io/cgroup-parent";

/// The namespace of cgroups directly under the root.
pub const ROOT_NAMESPACE: &str = "root";

pub(crate) fn core_routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/pods", get(core_list_all))
        .route("/api/v1/namespaces/{ns}/pods", get(core_list_namespace))
        .route("/api/v1/namespaces/{ns}/pods/{name}", get(core_get))
}

/// Which pods a request covers.
#[derive(Debug, Clone)]
pub(crate) enum Scope {
    All,
    Namespace(String),
    One(String, String),
}

impl Scope {
    fn covers(&self, namespace: &str, name: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Namespace(ns) => ns == namespace,
            Scope::One(ns, n) => ns == namespace && n == name,
        }
    }
}

/// One pod: its identity, its containers' store keys and where its labels are.
#[derive(Debug)]
pub(crate) struct PodRef {
    pub namespace: String,
    pub name: String,
    /// (container name, store key), in key order.
    pub containers: Vec<(String, String)>,
    /// The set whose labels and create time describe the pod.
    pub info_key: String,
    /// Labels known without a store lookup (cgroup pods); `None`: read them from `info_key`.
    pub labels: Option<Labels>,
}

impl PodRef {
    /// The pod's labels: computed (cgroup pods) or parsed from the `labels` label of its set.
    fn labels(&self, st: &ApiState) -> Labels {
        if let Some(l) = &self.labels {
            return l.clone();
        }
        let pod_set = st.store.set_info(&self.info_key);
        let info = pod_set.or_else(|| self.containers.first().and_then(|(_, k)| st.store.set_info(k)));
        info.and_then(|i| i.labels.get(l::LABELS).map(|s| parse_pod_labels(s))).unwrap_or_default()
    }
}

/// `app:web,tier:front` (or with another `--label_separator`) as a map. Keys and values cannot contain `:` or
/// anything outside `[A-Za-z0-9._/-]`, so any other character separates pairs.
pub fn parse_pod_labels(text: &str) -> Labels {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':')))
        .filter_map(|pair| pair.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Namespace and pod name of cgroup `path` on `node` (see the module documentation).
pub fn cgroup_pod_name(node: &str, path: &str, several_nodes: bool) -> (String, String) {
    let (parent, leaf) = match path.rsplit_once('/') {
        Some((parent, leaf)) => (parent.replace('/', "."), leaf.to_owned()),
        None => (ROOT_NAMESPACE.to_owned(), path.to_owned()),
    };
    let namespace = if several_nodes { format!("{node}.{parent}") } else { parent };
    (namespace, leaf)
}

/// Calls `f` with every pod in `scope`, in key order, until it returns `false`.
pub(crate) fn for_each_pod(st: &ApiState, scope: &Scope, f: impl FnMut(PodRef) -> bool) {
    let containers = st.store.keys_of_type(MetricSetType::PodContainer);
    if !containers.is_empty() || st.kube_api.is_some() {
        kubernetes_pods(&containers, scope, f);
    } else {
        cgroup_pods(st, scope, f);
    }
}

/// (namespace, pod, container) of a `namespace:NS/pod:P/container:C` key.
fn split_container_key(key: &str) -> Option<(&str, &str, &str)> {
    let (ns, rest) = key.strip_prefix("namespace:")?.split_once("/pod:")?;
    let (pod, container) = rest.split_once("/container:")?;
    Some((ns, pod, container))
}

fn kubernetes_pods(keys: &[String], scope: &Scope, mut f: impl FnMut(PodRef) -> bool) {
    // Keys are sorted, so a namespace's or a pod's containers are one run: find it by binary search.
    let prefix = match scope {
        Scope::All => String::new(),
        Scope::Namespace(ns) if !ns.contains('/') => format!("namespace:{ns}/pod:"),
        Scope::One(ns, pod) if !ns.contains('/') && !pod.contains('/') => {
            format!("namespace:{ns}/pod:{pod}/container:")
        }
        _ => return,
    };
    let start = keys.partition_point(|k| k.as_str() < prefix.as_str());
    let mut current: Option<PodRef> = None;
    for key in keys[start..].iter().take_while(|k| k.starts_with(&prefix)) {
        let Some((ns, pod, container)) = split_container_key(key) else { continue };
        match &mut current {
            Some(p) if p.namespace == ns && p.name == pod => p.containers.push((container.to_owned(), key.clone())),
            _ => {
                if let Some(done) = current.take()
                    && !f(done)
                {
                    return;
                }
                current = Some(PodRef {
                    namespace: ns.to_owned(),
                    name: pod.to_owned(),
                    containers: vec![(container.to_owned(), key.clone())],
                    info_key: heapster_model::keys::pod_key(ns, pod),
                    labels: None,
                });
            }
        }
    }
    if let Some(done) = current {
        f(done);
    }
}

fn cgroup_pods(st: &ApiState, scope: &Scope, mut f: impl FnMut(PodRef) -> bool) {
    let several_nodes = st.store.keys_of_type(MetricSetType::Node).len() > 1;
    for key in st.store.keys_of_type(MetricSetType::SysContainer) {
        let Some((node, path)) = key.strip_prefix("node:").and_then(|k| k.split_once("/container:")) else {
            continue;
        };
        let (namespace, name) = cgroup_pod_name(node, path, several_nodes);
        if !scope.covers(&namespace, &name) {
            continue;
        }
        let parent = namespace.strip_prefix(&format!("{node}.")).filter(|_| several_nodes).unwrap_or(&namespace);
        let labels = Labels::from([
            (CGROUP_PARENT_LABEL.to_owned(), parent.to_owned()),
            ("kubernetes.io/hostname".to_owned(), node.to_owned()),
        ]);
        let pod = PodRef {
            containers: vec![(name.clone(), key.clone())],
            namespace,
            name,
            info_key: key.clone(),
            labels: Some(labels),
        };
        if !f(pod) {
            return;
        }
    }
}

/// The PodMetrics of `pod`: its containers with fresh usage; `None` when it has none.
fn pod_metrics<'a>(
    reader: &UsageReader,
    pod: &'a PodRef,
    window: &'a str,
    labels: Option<&'a Labels>,
    typed: Option<ApiVersion>,
) -> Option<PodMetrics<'a>> {
    let mut newest = None;
    let containers: Vec<ContainerMetrics> = pod
        .containers
        .iter()
        .filter_map(|(name, key)| {
            let u = reader.read(key)?;
            newest = newest.max(Some(u.timestamp));
            Some(ContainerMetrics { name, usage: u.into() })
        })
        .collect();
    let timestamp = time(newest?);
    Some(PodMetrics {
        kind: typed.map(|_| "PodMetrics"),
        api_version: typed.map(ApiVersion::api_version),
        metadata: Meta {
            name: &pod.name,
            namespace: Some(&pod.namespace),
            creation_timestamp: timestamp.clone(),
            labels,
        },
        timestamp,
        window,
        containers,
    })
}

/// Streams the PodMetricsList of `scope`.
fn list(st: ApiState, v: ApiVersion, scope: Scope, q: Result<Query<ListParams>, QueryRejection>) -> Response {
    let sel = match Selectors::from_query(q) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    list_response("PodMetricsList", v.api_version(), move |w| {
        let reader = UsageReader::new(&st);
        let window = go_duration(st.resolution);
        for_each_pod(&st, &scope, |pod| {
            if !sel.fields.matches(&pod.namespace, &pod.name) {
                return true;
            }
            // Every item carries its labels, as a single GET and metrics-server's lists do (clients such as
            // `kubectl top pod -l` and dashboards group by them).
            let labels = pod.labels(&st);
            if !sel.labels.matches(&labels) {
                return true;
            }
            match pod_metrics(&reader, &pod, &window, Some(&labels), None) {
                Some(item) => w.item(&item),
                None => true,
            }
        });
    })
}

/// `.../pods`: every namespace.
pub(crate) async fn list_all(
    State(st): State<ApiState>,
    v: ApiVersion,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    list(st, v, Scope::All, q)
}

/// `.../namespaces/{ns}/pods`.
pub(crate) async fn list_namespace(
    State(st): State<ApiState>,
    v: ApiVersion,
    ns: Result<Path<String>, PathRejection>,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    match path_param(ns) {
        Ok(ns) => list(st, v, Scope::Namespace(ns), q),
        Err(e) => e.into_response(),
    }
}

/// `.../namespaces/{ns}/pods/{name}`: one pod, 404 when none of its containers has fresh usage.
pub(crate) async fn get_one(
    State(st): State<ApiState>,
    v: ApiVersion,
    path: Result<Path<(String, String)>, PathRejection>,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    let (ns, name) = match path_param(path) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = Selectors::from_query(q) {
        return e.into_response();
    }
    let window = go_duration(st.resolution);
    let reader = UsageReader::new(&st);
    let mut found = None;
    for_each_pod(&st, &Scope::One(ns, name.clone()), |pod| {
        found = Some(pod);
        false
    });
    let Some(pod) = found else {
        return Status::object_not_found(&v.resource("podmetrics"), &name).into_response();
    };
    let labels = pod.labels(&st);
    match pod_metrics(&reader, &pod, &window, Some(&labels), Some(v)) {
        Some(m) => Json(m).into_response(),
        None => Status::object_not_found(&v.resource("podmetrics"), &name).into_response(),
    }
}

/// A Pod as much as the store knows of it: name, namespace, labels, creation time, node and container names.
/// `None` for a pod not seen in the last two resolutions (deleted, most likely).
fn core_pod(st: &ApiState, reader: &UsageReader, pod: &PodRef, labels: &Labels) -> Option<Value> {
    let info = st.store.set_info(&pod.info_key);
    let info = info.or_else(|| pod.containers.first().and_then(|(_, k)| st.store.set_info(k)));
    if !info.as_ref().is_some_and(|i| reader.is_fresh(i.last_seen)) {
        return None;
    }
    let created = info.as_ref().map(|i| time(i.create_time)).unwrap_or_else(|| time(0));
    let node = info.as_ref().and_then(|i| i.labels.get(l::NODENAME).or(i.labels.get(l::HOSTNAME)).cloned());
    let containers: Vec<Value> = pod.containers.iter().map(|(c, _)| json!({"name": c})).collect();
    Some(json!({
        "metadata": {"name": pod.name, "namespace": pod.namespace, "labels": labels, "creationTimestamp": created},
        "spec": {"nodeName": node, "containers": containers},
        "status": {"phase": "Running"},
    }))
}

fn core_list(st: ApiState, scope: Scope, q: Result<Query<ListParams>, QueryRejection>) -> Response {
    let sel = match Selectors::from_query(q) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    list_response("PodList", "v1", move |w| {
        let reader = UsageReader::new(&st);
        for_each_pod(&st, &scope, |pod| {
            if !sel.fields.matches(&pod.namespace, &pod.name) {
                return true;
            }
            let labels = pod.labels(&st);
            if !sel.labels.matches(&labels) {
                return true;
            }
            match core_pod(&st, &reader, &pod, &labels) {
                Some(p) => w.item(&p),
                None => true,
            }
        });
    })
}

/// `/api/v1/pods`.
async fn core_list_all(State(st): State<ApiState>, q: Result<Query<ListParams>, QueryRejection>) -> Response {
    core_list(st, Scope::All, q)
}

/// `/api/v1/namespaces/{ns}/pods`.
async fn core_list_namespace(
    State(st): State<ApiState>,
    ns: Result<Path<String>, PathRejection>,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    match path_param(ns) {
        Ok(ns) => core_list(st, Scope::Namespace(ns), q),
        Err(e) => e.into_response(),
    }
}

/// `/api/v1/namespaces/{ns}/pods/{name}`.
async fn core_get(State(st): State<ApiState>, path: Result<Path<(String, String)>, PathRejection>) -> Response {
    let (ns, name) = match path_param(path) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let reader = UsageReader::new(&st);
    let mut found = None;
    for_each_pod(&st, &Scope::One(ns, name.clone()), |pod| {
        found = Some(pod);
        false
    });
    match found.and_then(|pod| core_pod(&st, &reader, &pod, &pod.labels(&st))) {
        Some(mut v) => {
            if let Some(o) = v.as_object_mut() {
                o.insert("kind".into(), "Pod".into());
                o.insert("apiVersion".into(), "v1".into());
            }
            Json(v).into_response()
        }
        None => Status::object_not_found("pods", &name).into_response(),
    }
}
