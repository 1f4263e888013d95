//! `/openapi/v2` and `/openapi/v3`: the schemas of the metrics APIs, as metrics-server serves them.
//!
//! kube-apiserver's aggregator fetches `/openapi/v2` from every APIService's backend and merges it into its own
//! (without it, it logs "OpenAPI spec does not exist" for the APIService every minute), and proxies the backend's
//! `/openapi/v3/apis/<group>/<version>`; `kubectl explain nodemetrics` reads the latter. One table of schemas makes
//! both documents; the types are named as in `k8s.io/metrics` and `k8s.io/apimachinery`, so that merged specs
//! line up with the API server's own definitions.

use super::ApiVersion;
use crate::ApiState;
use axum::Json;
use axum::Router;
use axum::routing::get;
use serde_json::{Map, Value, json};

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

pub(crate) fn routes() -> Router<ApiState> {
    let mut r = Router::new()
        .route("/openapi/v2", get(|| async { Json(v2()) }))
        .route("/openapi/v3", get(|| async { Json(v3_root()) }));
    for v in [ApiVersion::V1beta1, ApiVersion::V1alpha1] {
        r = r.route(
            &format!("/openapi/v3/{}", v.prefix().trim_start_matches('/')),
            get(move || async move { Json(v3(v)) }),
        );
    }
    r
}

/// `metrics.k8s.io/v1beta1` -> `io.k8s.metrics.pkg.apis.metrics.v1beta1`, the Go package's OpenAPI name.
fn package(v: ApiVersion) -> String {
    format!("io.k8s.metrics.pkg.apis.metrics.{}", v.version())
}

/// The metrics API's versions with OpenAPI schemas (the legacy `metrics/v1alpha1` group has none in
/// metrics-server either).
const VERSIONS: [ApiVersion; 2] = [ApiVersion::V1beta1, ApiVersion::V1alpha1];

/// Every schema, with references under `refs` (`#/definitions/` or `#/components/schemas/`).
fn schemas(versions: &[ApiVersion], refs: &str) -> Map<String, Value> {
    let r = |name: &str| json!({"$ref": format!("{refs}{name}")});
    let mut out = Map::new();
    out.insert(
        format!("{META}.Time"),
        json!({"type": "string", "format": "date-time",
        "description": "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON."}),
    );
    out.insert(
        QUANTITY.into(),
        json!({"type": "string",
        "description": "Quantity is a fixed-point representation of a number (100m, 128Mi)."}),
    );
    out.insert(format!("{META}.ObjectMeta"), json!({
        "type": "object",
        "description": "ObjectMeta is metadata that all persisted resources must have.",
        "properties": {
            "name": {"type": "string", "description": "Name must be unique within a namespace."},
            "namespace": {"type": "string", "description": "Namespace defines the space within which each name must be unique."},
            "labels": {"type": "object", "additionalProperties": {"type": "string"},
                "description": "Map of string keys and values that can be used to organize and categorize objects."},
            "creationTimestamp": r(&format!("{META}.Time")),
        },
    }));
    out.insert(
        format!("{META}.ListMeta"),
        json!({
            "type": "object",
            "description": "ListMeta describes metadata that synthetic resources must have.",
            "properties": {"resourceVersion": {"type": "string"}, "selfLink": {"type": "string"}},
        }),
    );
    for &v in versions {
        let pkg = package(v);
        let gvk = |kind: &str| json!([{"group": v.group(), "version": v.version(), "kind": kind}]);
        let usage = json!({"type": "object", "additionalProperties": r(QUANTITY),
            "description": "The memory and CPU usage."});
        let object = |kind: &str, what: &str, extra: Value| {
            let mut properties = json!({
                "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."},
                "kind": {"type": "string", "description": "Kind is a string value representing the REST resource this object represents."},
                "metadata": r(&format!("{META}.ObjectMeta")),
                "timestamp": r(&format!("{META}.Time")),
                "window": {"type": "string", "description": "The interval the usage was calculated over."},
            });
            if let (Some(p), Value::Object(extra)) = (properties.as_object_mut(), extra) {
                p.extend(extra);
            }
            json!({"type": "object", "description": what, "required": ["timestamp", "window"],
                "properties": properties, "x-kubernetes-group-version-kind": gvk(kind)})
        };
        out.insert(format!("{pkg}.ContainerMetrics"), json!({
            "type": "object", "description": "ContainerMetrics sets resource usage metrics of a container.",
            "required": ["name", "usage"],
            "properties": {"name": {"type": "string", "description": "Container name corresponding to the one from pod.spec.containers."},
                "usage": usage},
        }));
        out.insert(
            format!("{pkg}.NodeMetrics"),
            object("NodeMetrics", "NodeMetrics sets resource usage metrics of a node.", json!({"usage": usage})),
        );
        out.insert(
            format!("{pkg}.PodMetrics"),
            object(
                "PodMetrics",
                "PodMetrics sets resource usage metrics of a pod.",
                json!({"containers": {"type": "array", "items": r(&format!("{pkg}.ContainerMetrics")),
                "description": "Metrics for all containers are collected within the same time window."}}),
            ),
        );
        for kind in ["NodeMetrics", "PodMetrics"] {
            out.insert(format!("{pkg}.{kind}List"), json!({
                "type": "object", "description": format!("{kind}List is a list of {kind}."), "required": ["items"],
                "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                    "metadata": r(&format!("{META}.ListMeta")),
                    "items": {"type": "array", "items": r(&format!("{pkg}.{kind}")), "description": format!("List of {kind}.")},
                },
                "x-kubernetes-group-version-kind": gvk(&format!("{kind}List")),
            }));
        }
    }
    out
}

/// The GET paths of `versions`, answering with the schemas under `refs`; `v3` wraps answers in `content`.
fn paths(versions: &[ApiVersion], refs: &str, v3: bool) -> Map<String, Value> {
    let mut out = Map::new();
    for &v in versions {
        let pkg = package(v);
        let routes = [
            ("nodes", "NodeMetricsList", "list", false, false),
            ("nodes/{name}", "NodeMetrics", "get", false, true),
            ("pods", "PodMetricsList", "list", false, false),
            ("namespaces/{namespace}/pods", "PodMetricsList", "list", true, false),
            ("namespaces/{namespace}/pods/{name}", "PodMetrics", "get", true, true),
        ];
        for (path, kind, action, namespaced, named) in routes {
            let schema = json!({"$ref": format!("{refs}{pkg}.{kind}")});
            let ok = if v3 {
                json!({"description": "OK", "content": {"application/json": {"schema": schema}}})
            } else {
                json!({"description": "OK", "schema": schema})
            };
            let param = |name: &str| {
                if v3 {
                    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
                } else {
                    json!({"name": name, "in": "path", "required": true, "type": "string"})
                }
            };
            let mut params = Vec::new();
            if namespaced {
                params.push(param("namespace"));
            }
            if named {
                params.push(param("name"));
            }
            let base_kind = kind.trim_end_matches("List");
            out.insert(
                format!("{}/{path}", v.prefix()),
                json!({"get": {
                    "operationId": format!("{action}{}{}", v.version(), kind),
                    "produces": if v3 { Value::Null } else { json!(["application/json"]) },
                    "parameters": params,
                    "responses": {"200": ok},
                    "x-kubernetes-action": action,
                    "x-kubernetes-group-version-kind": {"group": v.group(), "version": v.version(), "kind": base_kind},
                }}),
            );
        }
    }
    // `produces` is a v2 field: drop the nulls left for v3.
    for op in out.values_mut() {
        if let Some(get) = op.get_mut("get").and_then(Value::as_object_mut) {
            get.retain(|_, v| !v.is_null());
        }
    }
    out
}

fn info() -> Value {
    json!({"title": "heapster", "version": env!("CARGO_PKG_VERSION")})
}

/// `/openapi/v2`: every version in one Swagger 2.0 document.
fn v2() -> Value {
    json!({
        "swagger": "2.0",
        "info": info(),
        "paths": paths(&VERSIONS, "#/definitions/", false),
        "definitions": schemas(&VERSIONS, "#/definitions/"),
    })
}

/// `/openapi/v3`: where each group-version's document is.
fn v3_root() -> Value {
    let paths: Map<String, Value> = VERSIONS
        .iter()
        .map(|v| {
            let path = v.prefix().trim_start_matches('/').to_owned();
            (path.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{path}")}))
        })
        .collect();
    json!({"paths": paths})
}

/// `/openapi/v3/apis/metrics.k8s.io/<version>`: one version as an OpenAPI 3.0 document.
fn v3(v: ApiVersion) -> Value {
    json!({
        "openapi": "3.0.0",
        "info": info(),
        "paths": paths(&[v], "#/components/schemas/", true),
        "components": {"schemas": schemas(&[v], "#/components/schemas/")},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` in `doc`, found anywhere.
    fn refs(doc: &Value, out: &mut Vec<String>) {
        match doc {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_and_kinds_are_tagged() {
        let docs = [
            (v2(), "#/definitions/", "/definitions"),
            (v3(ApiVersion::V1beta1), "#/components/schemas/", "/components/schemas"),
        ];
        for (doc, prefix, at) in docs {
            let mut all = Vec::new();
            refs(&doc, &mut all);
            assert!(all.len() > 10, "{all:?}");
            for r in all {
                let name = r.strip_prefix(prefix).unwrap_or_else(|| panic!("{r}"));
                assert!(doc.pointer(at).unwrap().get(name).is_some(), "{r} does not resolve");
            }
            let node = &doc.pointer(at).unwrap()["io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics"];
            assert_eq!(
                node["x-kubernetes-group-version-kind"],
                json!([{"group": "metrics.k8s.io", "version": "v1beta1", "kind": "NodeMetrics"}])
            );
        }
        let root = v3_root();
        assert_eq!(
            root["paths"]["apis/metrics.k8s.io/v1beta1"]["serverRelativeURL"],
            "/openapi/v3/apis/metrics.k8s.io/v1beta1"
        );
    }
}
