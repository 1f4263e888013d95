//! Heapster's model API, `/api/v1/model/...`: what entities exist, which metrics each has, and their points.
//!
//! Every entity is addressed by the same key the pipeline stores it under ([`heapster_model::keys`]), so a path
//! maps to one store lookup. Metric names contain `/` (`cpu/usage_rate`), hence the catch-all `{*metric}` segment,
//! as Heapster's `{metric-name:*}`. Names that contain `/` themselves (system containers such as
//! `system.slice/docker`) are sent percent-encoded (`system.slice%2Fdocker`).
//!
//! Heapster registered list routes with a trailing slash (`/nodes/`) and some metric-list routes without one
//! (`/namespaces/{ns}/metrics`); clients used both spellings, so both are routed everywhere.

mod entity;
mod lists;
mod values;

pub use entity::Entity;

use crate::ApiState;
use axum::Router;
use axum::routing::{MethodRouter, get};

const BASE: &str = "/api/v1/model";

/// Routes `path` and `path/` (or `path` without its trailing `/`) to the same handler.
fn both(router: Router<ApiState>, path: &str, handler: MethodRouter<ApiState>) -> Router<ApiState> {
    let bare = path.trim_end_matches('/');
    router.route(&format!("{BASE}{bare}"), handler.clone()).route(&format!("{BASE}{bare}/"), handler)
}

/// Every `/api/v1/model` route.
pub fn routes() -> Router<ApiState> {
    let mut r = Router::new();
    // Cluster.
    r = both(r, "/metrics/", get(values::cluster_metric_names));
    r = r.route(&format!("{BASE}/metrics/{{*metric}}"), get(values::cluster_metric));
    // Nodes and their free (system) containers.
    r = both(r, "/nodes/", get(lists::nodes));
    r = both(r, "/nodes/{node}/metrics/", get(values::node_metric_names));
    r = r.route(&format!("{BASE}/nodes/{{node}}/metrics/{{*metric}}"), get(values::node_metric));
    r = both(r, "/nodes/{node}/pods/", get(lists::node_pods));
    r = both(r, "/nodes/{node}/freecontainers/", get(lists::free_containers));
    r = both(r, "/nodes/{node}/freecontainers/{container}/metrics/", get(values::free_container_metric_names));
    r = r.route(
        &format!("{BASE}/nodes/{{node}}/freecontainers/{{container}}/metrics/{{*metric}}"),
        get(values::free_container_metric),
    );
    // Namespaces, pods and pod containers.
    r = both(r, "/namespaces/", get(lists::namespaces));
    r = both(r, "/namespaces/{ns}/metrics/", get(values::namespace_metric_names));
    r = r.route(&format!("{BASE}/namespaces/{{ns}}/metrics/{{*metric}}"), get(values::namespace_metric));
    r = both(r, "/namespaces/{ns}/pods/", get(lists::namespace_pods));
    r = both(r, "/namespaces/{ns}/pods/{pod}/metrics/", get(values::pod_metric_names));
    r = r.route(&format!("{BASE}/namespaces/{{ns}}/pods/{{pod}}/metrics/{{*metric}}"), get(values::pod_metric));
    r = both(r, "/namespaces/{ns}/pods/{pod}/containers/", get(lists::pod_containers));
    r = both(r, "/namespaces/{ns}/pods/{pod}/containers/{container}/metrics/", get(values::pod_container_metric_names));
    r = r.route(
        &format!("{BASE}/namespaces/{{ns}}/pods/{{pod}}/containers/{{container}}/metrics/{{*metric}}"),
        get(values::pod_container_metric),
    );
    r = r.route(
        &format!("{BASE}/namespaces/{{ns}}/pod-list/{{pods}}/metrics/{{*metric}}"),
        get(values::pod_list_metric),
    );
    // Debugging.
    r = both(r, "/debug/allkeys", get(lists::all_keys));
    r
}
