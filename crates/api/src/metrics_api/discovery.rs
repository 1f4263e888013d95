//! Discovery: the documents a Kubernetes client reads before it makes a request, and `/version`.
//!
//! client-go's discovery reads `/api` and `/apis` (kubectl then checks that `metrics.k8s.io/v1beta1` is listed,
//! or prints "Metrics API not available"), and the group and version documents to map resources to paths. Newer
//! clients first ask for aggregated discovery (`application/json;g=apidiscovery.k8s.io;v=v2`); answering with
//! plain `application/json` makes them fall back to these documents, as an older API server would.

use super::ApiVersion;
use crate::ApiState;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// The Kubernetes minor version `/version` reports without an API server: the newest whose kubectl was tested
/// against this API, so that gcloud's kubectl dispatcher picks that kubectl.
pub const KUBERNETES_MINOR: u32 = 33;

pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api", get(api_versions))
        .route("/api/v1", get(core_resources))
        .route("/apis", get(group_list))
        .route("/apis/metrics.k8s.io", get(|| async { Json(group(&[ApiVersion::V1beta1, ApiVersion::V1alpha1])) }))
        .route("/apis/metrics", get(|| async { Json(group(&[ApiVersion::LegacyV1alpha1])) }))
        .route("/version", get(version))
}

/// `/api`: the core group's versions (APIVersions).
async fn api_versions() -> Json<Value> {
    Json(json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    }))
}

/// `/api/v1`: the two core resources served here (nodes passed through or synthesized, pods from the store).
async fn core_resources() -> Json<Value> {
    Json(json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {"name": "nodes", "singularName": "node", "namespaced": false, "kind": "Node", "verbs": ["get", "list"], "shortNames": ["no"]},
            {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod", "verbs": ["get", "list"], "shortNames": ["po"]},
        ],
    }))
}

fn group_version(v: ApiVersion) -> Value {
    json!({"groupVersion": v.api_version(), "version": v.version()})
}

/// An APIGroup with `versions`, the first preferred.
fn group(versions: &[ApiVersion]) -> Value {
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": versions[0].group(),
        "versions": versions.iter().map(|v| group_version(*v)).collect::<Vec<_>>(),
        "preferredVersion": group_version(versions[0]),
    })
}

/// `/apis`: the resource metrics groups and custom.metrics.k8s.io (APIGroupList).
async fn group_list() -> Json<Value> {
    let mut metrics_k8s = group(&[ApiVersion::V1beta1, ApiVersion::V1alpha1]);
    let mut legacy = group(&[ApiVersion::LegacyV1alpha1]);
    let mut custom = crate::custom_metrics_api::discovery::group();
    for g in [&mut metrics_k8s, &mut legacy, &mut custom] {
        if let Some(o) = g.as_object_mut() {
            o.remove("kind");
            o.remove("apiVersion");
        }
    }
    Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [metrics_k8s, legacy, custom]}))
}

/// `/apis/<group>/<version>`: the NodeMetrics and PodMetrics resources (APIResourceList).
pub(crate) async fn resource_list(v: ApiVersion) -> Json<Value> {
    Json(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": v.api_version(),
        "resources": [
            {"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": ["get", "list"]},
            {"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]},
        ],
    }))
}

/// `/version`: the API server's own when a kubernetes source is configured (kubectl and its dispatcher read the
/// cluster's version from here), otherwise a version.Info naming heapster.
async fn version(State(st): State<ApiState>) -> Response {
    if let Some(proxy) = &st.kube_api {
        return super::pass_through(proxy.as_ref(), "/version").await;
    }
    let arch = go_arch();
    Json(json!({
        "major": "1",
        "minor": KUBERNETES_MINOR.to_string(),
        "gitVersion": format!("v1.{KUBERNETES_MINOR}.0+heapster-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{arch}", std::env::consts::OS),
    }))
    .into_response()
}

/// Go's name for this machine's architecture (`amd64`, `arm64`), as Kubernetes labels and versions spell it.
pub(crate) fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
