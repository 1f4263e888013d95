//! The simulated cluster set up as real ones are, and broken in the ways real ones break, for `heapster doctor`'s
//! tests: what each bearer token may do (answered to `SelfSubjectAccessReview`s as RBAC would), the
//! `apiregistration.k8s.io` APIService objects and their conditions, and an API server whose clock is off (its
//! `Date` header says so).
//!
//! A kubelet serving a certificate without the right SAN needs nothing here: give [`crate::SimConfig::kubelet_tls`]
//! a certificate made for other addresses ([`crate::tls::TestPki::sim_tls`]).

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, Ordering};

/// One RBAC `PolicyRule`: verbs on resources (`nodes`, `nodes/stats`) of API groups (`""` is the core group);
/// `*` matches anything, as in RBAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
}

impl Rule {
    pub fn new(api_groups: &[&str], resources: &[&str], verbs: &[&str]) -> Rule {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Rule { api_groups: owned(api_groups), resources: owned(resources), verbs: owned(verbs) }
    }

    /// Whether the rule allows `verb` on `group`/`resource` (`resource` with its subresource: `nodes/stats`).
    fn allows(&self, group: &str, resource: &str, verb: &str) -> bool {
        let any = |list: &[String], x: &str| list.iter().any(|e| e == "*" || e == x);
        any(&self.api_groups, group) && any(&self.resources, resource) && any(&self.verbs, verb)
    }
}

/// What tests set up; see the module doc.
#[derive(Default)]
pub struct Setup {
    /// Bearer token (`""`: none) -> what it may do. A token never permitted may do nothing.
    permits: RwLock<HashMap<String, Vec<Rule>>>,
    /// APIService name -> object.
    api_services: RwLock<HashMap<String, Value>>,
    /// How far the API server's clock is ahead of this host's (negative: behind), in milliseconds.
    clock_skew_ms: AtomicI64,
}

impl crate::Simulation {
    /// From now on, `SelfSubjectAccessReview`s made with bearer `token` (`""`: without one) are allowed what
    /// `rules` allow, and nothing else.
    pub fn permit(&self, token: &str, rules: Vec<Rule>) {
        self.setup.permits.write().unwrap_or_else(|p| p.into_inner()).insert(token.into(), rules);
    }

    /// Serves the APIService `name` (`v1beta1.metrics.k8s.io`) for the service `namespace/service`, with the
    /// condition `Available` at `status` (`"True"`, `"False"`) for `reason` with `message`, as kube-aggregator
    /// writes it.
    pub fn set_api_service(&self, name: &str, service: (&str, &str), status: &str, reason: &str, message: &str) {
        let (group, version) = match name.split_once('.') {
            Some((version, group)) => (group, version),
            None => (name, "v1"),
        };
        let object = json!({
            "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": name, "resourceVersion": "1"},
            "spec": {"group": group, "version": version,
                     "service": {"namespace": service.0, "name": service.1, "port": 443},
                     "groupPriorityMinimum": 100, "versionPriority": 100, "insecureSkipTLSVerify": true},
            "status": {"conditions": [{"type": "Available", "status": status, "reason": reason, "message": message,
                "lastTransitionTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}]},
        });
        self.setup.api_services.write().unwrap_or_else(|p| p.into_inner()).insert(name.into(), object);
    }

    /// From now on the API server's `Date` header is `skew` ahead of this host's clock (behind when negative).
    pub fn set_clock_skew(&self, skew: chrono::Duration) {
        self.setup.clock_skew_ms.store(skew.num_milliseconds(), Ordering::Relaxed);
    }
}

/// The routes of this module, on the API server.
pub(crate) fn router(setup: Arc<Setup>) -> Router {
    Router::new()
        .route(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            axum::routing::post(self_subject_access_review),
        )
        .route("/apis/apiregistration.k8s.io/v1/apiservices/{name}", axum::routing::get(api_service))
        .with_state(setup)
}

/// Sets every answer's `Date` to this host's time plus the skew (hyper adds a `Date` only where none is set).
pub(crate) async fn date_header(State(setup): State<Arc<Setup>>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let skew = chrono::Duration::milliseconds(setup.clock_skew_ms.load(Ordering::Relaxed));
    let date = (chrono::Utc::now() + skew).format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    if let Ok(v) = HeaderValue::from_str(&date) {
        response.headers_mut().insert(header::DATE, v);
    }
    response
}

/// `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`: the request's bearer token's rules decide, as a
/// real API server answers (201, the review echoed with its status).
async fn self_subject_access_review(State(setup): State<Arc<Setup>>, req: Request) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
    let review: Value = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("not a SelfSubjectAccessReview: {e}"), "reason": "BadRequest", "code": 400});
            return (StatusCode::BAD_REQUEST, axum::Json(status)).into_response();
        }
    };
    let r = &review["spec"]["resourceAttributes"];
    let (group, verb) = (r["group"].as_str().unwrap_or_default(), r["verb"].as_str().unwrap_or_default());
    let resource = match r["subresource"].as_str().filter(|s| !s.is_empty()) {
        Some(sub) => format!("{}/{sub}", r["resource"].as_str().unwrap_or_default()),
        None => r["resource"].as_str().unwrap_or_default().to_owned(),
    };
    let permits = setup.permits.read().unwrap_or_else(|p| p.into_inner());
    let allowed = permits.get(&token).is_some_and(|rules| rules.iter().any(|rule| rule.allows(group, &resource, verb)));
    let status = if allowed {
        json!({"allowed": true, "reason": "RBAC: allowed by a rule of the simulated API server"})
    } else {
        json!({"allowed": false})
    };
    let answer = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "metadata": {"creationTimestamp": null}, "spec": review["spec"], "status": status});
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

/// `GET /apis/apiregistration.k8s.io/v1/apiservices/{name}`: the object set, or NotFound.
async fn api_service(State(setup): State<Arc<Setup>>, Path(name): Path<String>) -> Response {
    match setup.api_services.read().unwrap_or_else(|p| p.into_inner()).get(&name) {
        Some(object) => axum::Json(object.clone()).into_response(),
        None => {
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("apiservices.apiregistration.k8s.io \"{name}\" not found"), "reason": "NotFound",
                "code": 404, "details": {"name": name, "group": "apiregistration.k8s.io", "kind": "apiservices"}});
            (StatusCode::NOT_FOUND, axum::Json(status)).into_response()
        }
    }
}
