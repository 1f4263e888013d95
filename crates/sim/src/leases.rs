//! `coordination.k8s.io/v1` Leases on the simulated API server: get, list (by label too), create, update and
//! delete with the real server's optimistic concurrency (a PUT must name the stored resourceVersion, else `409
//! Conflict`), so that eventer replicas elect a leader, and heapster's shards find each other, as in a cluster.

use crate::events::{EventStore, now_rfc3339, status};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;

const GROUP: &str = "coordination.k8s.io";
const API_VERSION: &str = "coordination.k8s.io/v1";

fn details(name: &str) -> Value {
    json!({"name": name, "group": GROUP, "kind": "leases"})
}

fn not_found(name: &str) -> Response {
    status(StatusCode::NOT_FOUND, "NotFound", format!("leases.{GROUP} \"{name}\" not found"), details(name))
}

fn bad_request(message: String) -> Response {
    status(StatusCode::BAD_REQUEST, "BadRequest", message, Value::Null)
}

fn invalid(name: &str, field: &str, message: &str) -> Response {
    let mut d = details(name);
    d["kind"] = json!("Lease");
    d["causes"] = json!([{"reason": "FieldValueInvalid", "message": message, "field": field}]);
    status(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
        format!("Lease.{GROUP} \"{name}\" is invalid: {field}: {message}"),
        d,
    )
}

/// The body as a Lease: a JSON object of kind Lease whose spec fields have the types of `LeaseSpec`.
fn parse(body: &[u8], ns: &str) -> Result<Value, Box<Response>> {
    let mut lease: Value = serde_json::from_slice(body)
        .map_err(|e| Box::new(bad_request(format!("the body of the request was in an unknown format: {e}"))))?;
    if !lease.is_object() {
        return Err(Box::new(bad_request("the body of the request is not a Lease object".into())));
    }
    if let Some(kind) = lease.get("kind").and_then(Value::as_str).filter(|k| *k != "Lease") {
        return Err(Box::new(bad_request(format!("the kind of the object ({kind}) is not Lease"))));
    }
    match lease["metadata"]["namespace"].as_str() {
        Some(n) if !n.is_empty() && n != ns => {
            return Err(Box::new(bad_request(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            )));
        }
        _ => {}
    }
    let spec = &lease["spec"];
    let typed = |field: &str, ok: fn(&Value) -> bool| spec.get(field).is_none_or(|v| v.is_null() || ok(v));
    let micro_time = |v: &Value| v.as_str().is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok());
    for (field, ok) in [
        ("holderIdentity", Value::is_string as fn(&Value) -> bool),
        ("leaseDurationSeconds", |v: &Value| v.as_i64().is_some()),
        ("acquireTime", micro_time),
        ("renewTime", micro_time),
        ("leaseTransitions", |v: &Value| v.as_i64().is_some()),
    ] {
        if !typed(field, ok) {
            return Err(Box::new(bad_request(format!(
                "Lease in version \"v1\" cannot be handled as a Lease: spec.{field}"
            ))));
        }
    }
    if spec.get("leaseDurationSeconds").and_then(Value::as_i64).is_some_and(|d| d <= 0) {
        let name = lease["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        return Err(Box::new(invalid(&name, "spec.leaseDurationSeconds", "must be greater than 0")));
    }
    lease["kind"] = json!("Lease");
    lease["apiVersion"] = json!(API_VERSION);
    lease["metadata"]["namespace"] = json!(ns);
    Ok(lease)
}

fn object(code: StatusCode, lease: &Value) -> Response {
    (code, axum::Json(lease)).into_response()
}

/// One requirement of a `labelSelector`: `key=value` (or `==`), `key!=value`, `key` or `!key`, as the real server
/// reads the equality-based form; set-based forms (`in`, `notin`) are refused rather than misread.
enum Requirement {
    Equals(String, String),
    Differs(String, String),
    Exists(String),
    Absent(String),
}

fn parse_selector(selector: &str) -> Result<Vec<Requirement>, String> {
    let mut out = Vec::new();
    for part in selector.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part.contains(' ') || part.contains('(') {
            return Err(format!("unable to parse requirement {part:?}: only equality-based selectors are simulated"));
        }
        out.push(if let Some((k, v)) = part.split_once("!=") {
            Requirement::Differs(k.into(), v.into())
        } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
            Requirement::Equals(k.into(), v.into())
        } else if let Some(k) = part.strip_prefix('!') {
            Requirement::Absent(k.into())
        } else {
            Requirement::Exists(part.into())
        });
    }
    Ok(out)
}

fn selected(lease: &Value, requirements: &[Requirement]) -> bool {
    let label = |k: &str| lease["metadata"]["labels"][k].as_str();
    requirements.iter().all(|r| match r {
        Requirement::Equals(k, v) => label(k) == Some(v.as_str()),
        Requirement::Differs(k, v) => label(k) != Some(v.as_str()),
        Requirement::Exists(k) => label(k).is_some(),
        Requirement::Absent(k) => label(k).is_none(),
    })
}

async fn list(
    State(store): State<Arc<EventStore>>,
    Path(ns): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let requirements = match parse_selector(query.get("labelSelector").map(String::as_str).unwrap_or_default()) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    let inner = store.lock();
    let items: Vec<&Value> =
        inner.leases.iter().filter(|((n, _), l)| *n == ns && selected(l, &requirements)).map(|(_, l)| l).collect();
    let body = json!({"kind": "LeaseList", "apiVersion": API_VERSION,
        "metadata": {"resourceVersion": inner.revision.to_string()}, "items": items});
    axum::Json(body).into_response()
}

async fn create(State(store): State<Arc<EventStore>>, Path(ns): Path<String>, body: Bytes) -> Response {
    let mut lease = match parse(&body, &ns) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let mut inner = store.lock();
    let name = match lease["metadata"]["name"].as_str().filter(|n| !n.is_empty()) {
        Some(n) => n.to_owned(),
        None => match lease["metadata"]["generateName"].as_str().filter(|n| !n.is_empty()) {
            Some(g) => format!("{g}{:05x}", inner.revision + 1),
            None => return invalid("", "metadata.name", "Required value: name or generateName is required"),
        },
    };
    let key = (ns, name.clone());
    if inner.leases.contains_key(&key) {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("leases.{GROUP} \"{name}\" already exists"),
            details(&name),
        );
    }
    let meta = &mut lease["metadata"];
    meta["name"] = json!(name);
    meta["uid"] = json!(inner.new_uid());
    meta["creationTimestamp"] = json!(now_rfc3339());
    let revision = inner.next_revision();
    lease["metadata"]["resourceVersion"] = json!(revision.to_string());
    inner.leases.insert(key, lease.clone());
    drop(inner);
    store.changed(revision);
    object(StatusCode::CREATED, &lease)
}

async fn get_one(State(store): State<Arc<EventStore>>, Path((ns, name)): Path<(String, String)>) -> Response {
    match store.lease(&ns, &name) {
        Some(lease) => object(StatusCode::OK, &lease),
        None => not_found(&name),
    }
}

async fn replace(
    State(store): State<Arc<EventStore>>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let mut lease = match parse(&body, &ns) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    if let Some(n) = lease["metadata"]["name"].as_str().filter(|n| *n != name) {
        return bad_request(format!("the name of the object ({n}) does not match the name on the URL ({name})"));
    }
    let given = lease["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_owned();
    let mut inner = store.lock();
    let key = (ns, name.clone());
    let Some(stored) = inner.leases.get(&key) else {
        return not_found(&name);
    };
    if given.is_empty() {
        return invalid(&name, "metadata.resourceVersion", "Invalid value: 0x0: must be specified for an update");
    }
    if stored["metadata"]["resourceVersion"].as_str() != Some(given.as_str()) {
        return status(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on leases.{GROUP} \"{name}\": the object has been modified; please \
                 apply your changes to the latest version and try again"
            ),
            details(&name),
        );
    }
    let meta = &mut lease["metadata"];
    meta["name"] = json!(name);
    meta["uid"] = stored["metadata"]["uid"].clone();
    meta["creationTimestamp"] = stored["metadata"]["creationTimestamp"].clone();
    let revision = inner.next_revision();
    lease["metadata"]["resourceVersion"] = json!(revision.to_string());
    inner.leases.insert(key, lease.clone());
    drop(inner);
    store.changed(revision);
    object(StatusCode::OK, &lease)
}

async fn delete(State(store): State<Arc<EventStore>>, Path((ns, name)): Path<(String, String)>) -> Response {
    let mut inner = store.lock();
    let Some(gone) = inner.leases.remove(&(ns, name.clone())) else {
        return not_found(&name);
    };
    let revision = inner.next_revision();
    drop(inner);
    store.changed(revision);
    let mut d = details(&name);
    d["uid"] = gone["metadata"]["uid"].clone();
    axum::Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": d}))
        .into_response()
}

pub(crate) fn routes() -> Router<Arc<EventStore>> {
    Router::new()
        .route("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases", get(list).post(create))
        .route("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}", get(get_one).put(replace).delete(delete))
}
