//! The group's discovery documents: `/apis/custom.metrics.k8s.io` and one APIResourceList per version listing
//! every metric of every kind of object as a resource (`pods/network_rx_rate`), as the HPA's client and
//! `kubectl get --raw` read them.

use super::{CmVersion, ObjectKind, api_metric_name};
use crate::ApiState;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};

pub(crate) fn routes() -> Router<ApiState> {
    Router::new().route("/apis/custom.metrics.k8s.io", get(|| async { Json(group()) }))
}

fn group_version(v: CmVersion) -> Value {
    json!({"groupVersion": v.api_version(), "version": v.version()})
}

/// The APIGroup, v1beta2 preferred; also an entry of `/apis` (without `kind` and `apiVersion`).
pub fn group() -> Value {
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": super::GROUP,
        "versions": CmVersion::ALL.iter().map(|v| group_version(*v)).collect::<Vec<_>>(),
        "preferredVersion": group_version(CmVersion::V1beta2),
    })
}

/// `/apis/custom.metrics.k8s.io/<version>`: `<resource>/<metric>` for every metric the store has of pods, nodes
/// and namespaces.
pub(crate) async fn resource_list(State(st): State<ApiState>, v: CmVersion) -> Json<Value> {
    let mut resources = Vec::new();
    for kind in ObjectKind::ALL {
        for name in st.store.metric_names_of_type(kind.set_type()) {
            resources.push(json!({
                "name": format!("{}/{}", kind.resource(), api_metric_name(&name)),
                "singularName": "",
                "namespaced": kind.namespaced(),
                "kind": "MetricValueList",
                "verbs": ["get"],
            }));
        }
    }
    Json(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": v.api_version(), "resources": resources}),
    )
}
