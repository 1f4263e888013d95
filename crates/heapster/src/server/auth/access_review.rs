//! `--authorization_webhook`: who may read what is decided by the cluster's RBAC, with a SubjectAccessReview per
//! request (as metrics-server's delegated authorization), instead of one list of users for every path.
//!
//! Requests of the resource metrics API (`/apis/metrics.k8s.io/<version>/...` pods and nodes) are reviewed with
//! resource attributes, as kube-apiserver would (`list pods in namespace default`), so that the same Role that
//! lets a user `kubectl top` through the aggregator lets it here. Custom metrics (`/apis/custom.metrics.k8s.io/...`)
//! are reviewed as kube-apiserver's request info sees them before the aggregator proxies them: the object's
//! resource with the metric as subresource (`get pods/network_rx_rate` named `p1`, or `*` for a selector list), and
//! a namespace's own metric as `get metrics` named after the metric in that namespace; every other path is a
//! non-resource URL
//! (`get /api/v1/model/nodes/`). Answers are cached by user, groups and attributes, allowed and denied for their
//! own TTLs (kube-apiserver's `--authorization-webhook-cache-authorized-ttl` and `-unauthorized-ttl`).

use super::Identity;
use super::metrics::AuthMetrics;
use axum::http::Method;
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Answers remembered at once: many users times many paths must not grow memory without bound.
const MAX_CACHED: usize = 4096;
/// A review that takes longer refuses the request rather than holding it.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(10);

/// What a request asks to do, in RBAC's terms.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Attributes {
    NonResource {
        verb: String,
        path: String,
    },
    Resource {
        verb: String,
        group: String,
        version: String,
        resource: String,
        /// The metric, for custom metrics; empty otherwise.
        subresource: String,
        namespace: String,
        name: String,
    },
}

impl Attributes {
    /// The attributes of `method path`, as kube-apiserver's request info finds them for the metrics API.
    pub fn of(method: &Method, path: &str) -> Attributes {
        let verb = method.as_str().to_lowercase();
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let resource = |resource: &str, namespace: &str, name: Option<&&str>| {
            let verb = match (method, name) {
                (&Method::GET, None) => "list".to_string(),
                (&Method::GET, Some(_)) => "get".to_string(),
                _ => verb.clone(),
            };
            Attributes::Resource {
                verb,
                group: "metrics.k8s.io".into(),
                version: parts[2].into(),
                resource: resource.into(),
                subresource: String::new(),
                namespace: namespace.into(),
                name: name.map(|n| n.to_string()).unwrap_or_default(),
            }
        };
        // kube-apiserver's request info: a name is present, so `get`, even the selector lists' `*`.
        let custom = |resource: &str, namespace: &str, name: &str, metric: &str| Attributes::Resource {
            verb: verb.clone(),
            group: "custom.metrics.k8s.io".into(),
            version: parts[2].into(),
            resource: resource.into(),
            subresource: metric.into(),
            namespace: namespace.into(),
            name: name.into(),
        };
        match parts[..] {
            ["apis", "metrics.k8s.io", _, r @ ("nodes" | "pods"), ref name @ ..] if name.len() <= 1 => {
                resource(r, "", name.first())
            }
            ["apis", "metrics.k8s.io", _, "namespaces", ns, "pods", ref name @ ..] if name.len() <= 1 => {
                resource("pods", ns, name.first())
            }
            ["apis", "custom.metrics.k8s.io", _, "namespaces", ns, "pods", name, metric] => {
                custom("pods", ns, name, metric)
            }
            ["apis", "custom.metrics.k8s.io", _, "namespaces", ns, "metrics", metric] => {
                custom("metrics", ns, metric, "")
            }
            ["apis", "custom.metrics.k8s.io", _, "nodes", name, metric] => custom("nodes", "", name, metric),
            _ => Attributes::NonResource { verb, path: path.to_string() },
        }
    }

    /// Kubernetes' wording of a refusal: `cannot list resource "pods" in API group "metrics.k8s.io" in the
    /// namespace "default"` (`resource "pods/network_rx_rate"` with a subresource).
    fn describe(&self) -> String {
        match self {
            Attributes::NonResource { verb, path } => format!("cannot {verb} path {path:?}"),
            Attributes::Resource { verb, group, resource, subresource, namespace, .. } => {
                let resource =
                    if subresource.is_empty() { resource.clone() } else { format!("{resource}/{subresource}") };
                if namespace.is_empty() {
                    format!("cannot {verb} resource {resource:?} in API group {group:?} at the cluster scope")
                } else {
                    format!("cannot {verb} resource {resource:?} in API group {group:?} in the namespace {namespace:?}")
                }
            }
        }
    }
}

type Key = (String, Vec<String>, Attributes);
/// Allowed, or denied with the 403's message, and until when that answer holds.
type Cached = HashMap<Key, (Instant, Result<(), String>)>;

/// Asks the API server whether users may do what they ask, remembering its answers for a while.
pub struct Authorizer {
    api: kube::Api<SubjectAccessReview>,
    allowed_ttl: Duration,
    denied_ttl: Duration,
    cache: Mutex<Cached>,
    metrics: AuthMetrics,
}

impl Authorizer {
    /// Reviews through `client`'s API server.
    pub fn new(client: kube::Client, allowed_ttl: Duration, denied_ttl: Duration, metrics: AuthMetrics) -> Authorizer {
        Authorizer { api: kube::Api::all(client), allowed_ttl, denied_ttl, cache: Mutex::default(), metrics }
    }

    /// `Ok` when `id` may `method path`; `Err` is the 403's message, with the API server's reason.
    pub async fn authorize(&self, id: &Identity, method: &Method, path: &str) -> Result<(), String> {
        let attributes = Attributes::of(method, path);
        let key = (id.name.clone(), id.groups.clone(), attributes);
        let now = Instant::now();
        if let Some((until, answer)) = self.lock().get(&key)
            && *until > now
        {
            self.metrics.access_review(answer.is_ok(), true);
            return answer.clone();
        }
        let asked = tokio::time::timeout(REVIEW_TIMEOUT, self.ask(&key)).await;
        let answer = match asked {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                self.metrics.access_review_error();
                return Err(format!("the request could not be authorized: {e}"));
            }
            Err(_) => {
                self.metrics.access_review_error();
                return Err(format!("no SubjectAccessReview answer from the API server within {REVIEW_TIMEOUT:?}"));
            }
        };
        self.metrics.access_review(answer.is_ok(), false);
        let ttl = if answer.is_ok() { self.allowed_ttl } else { self.denied_ttl };
        let mut cache = self.lock();
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, (until, _)| *until > now);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(key, (now + ttl, answer.clone()));
        answer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Ok(Ok)`: allowed; `Ok(Err)`: denied, with the message; `Err`: the API server could not be asked.
    async fn ask(&self, (user, groups, attributes): &Key) -> Result<Result<(), String>, String> {
        let mut spec =
            SubjectAccessReviewSpec { user: Some(user.clone()), groups: Some(groups.clone()), ..Default::default() };
        match attributes {
            Attributes::NonResource { verb, path } => {
                spec.non_resource_attributes =
                    Some(NonResourceAttributes { verb: Some(verb.clone()), path: Some(path.clone()) });
            }
            Attributes::Resource { verb, group, version, resource, subresource, namespace, name } => {
                spec.resource_attributes = Some(ResourceAttributes {
                    verb: Some(verb.clone()),
                    group: Some(group.clone()),
                    version: Some(version.clone()),
                    resource: Some(resource.clone()),
                    subresource: Some(subresource.clone()).filter(|s| !s.is_empty()),
                    namespace: Some(namespace.clone()).filter(|n| !n.is_empty()),
                    name: Some(name.clone()).filter(|n| !n.is_empty()),
                    ..Default::default()
                });
            }
        }
        let request = SubjectAccessReview { spec, ..Default::default() };
        let answer = self.api.create(&kube::api::PostParams::default(), &request).await.map_err(|e| match e {
            kube::Error::Api(s) if s.code == 403 => format!(
                "the API server refused the SubjectAccessReview ({}): heapster's service account needs `create` on \
                 subjectaccessreviews.authorization.k8s.io (see deploy/kubernetes/rbac.yaml)",
                s.message
            ),
            e => format!("SubjectAccessReview: {e}"),
        })?;
        let status = answer.status.unwrap_or_default();
        if status.allowed && !status.denied.unwrap_or(false) {
            return Ok(Ok(()));
        }
        let reason = status.reason.filter(|r| !r.is_empty()).or(status.evaluation_error).unwrap_or_default();
        let mut message = format!("User {user:?} {}", attributes.describe());
        if !reason.is_empty() {
            message.push_str(&format!(": {reason}"));
        }
        Ok(Err(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_api_requests_are_resources_the_rest_paths() {
        let r = |verb: &str, resource: &str, namespace: &str, name: &str| Attributes::Resource {
            verb: verb.into(),
            group: "metrics.k8s.io".into(),
            version: "v1beta1".into(),
            resource: resource.into(),
            subresource: String::new(),
            namespace: namespace.into(),
            name: name.into(),
        };
        let get = |p: &str| Attributes::of(&Method::GET, p);
        assert_eq!(get("/apis/metrics.k8s.io/v1beta1/nodes"), r("list", "nodes", "", ""));
        assert_eq!(get("/apis/metrics.k8s.io/v1beta1/nodes/n1"), r("get", "nodes", "", "n1"));
        assert_eq!(get("/apis/metrics.k8s.io/v1beta1/pods"), r("list", "pods", "", ""));
        assert_eq!(get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods"), r("list", "pods", "default", ""));
        assert_eq!(get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/p"), r("get", "pods", "default", "p"));
        for path in ["/apis/metrics.k8s.io/v1beta1", "/apis/metrics.k8s.io", "/api/v1/model/nodes/", "/metrics"] {
            assert_eq!(get(path), Attributes::NonResource { verb: "get".into(), path: path.into() });
        }
        let custom = |verb: &str, resource: &str, metric: &str, namespace: &str, name: &str| Attributes::Resource {
            verb: verb.into(),
            group: "custom.metrics.k8s.io".into(),
            version: "v1beta2".into(),
            resource: resource.into(),
            subresource: metric.into(),
            namespace: namespace.into(),
            name: name.into(),
        };
        let cm = "/apis/custom.metrics.k8s.io/v1beta2";
        assert_eq!(
            get(&format!("{cm}/namespaces/web/pods/p1/network_rx_rate")),
            custom("get", "pods", "network_rx_rate", "web", "p1")
        );
        assert_eq!(
            get(&format!("{cm}/namespaces/web/pods/*/network_rx_rate")),
            custom("get", "pods", "network_rx_rate", "web", "*")
        );
        assert_eq!(get(&format!("{cm}/nodes/n1/cpu_usage_rate")), custom("get", "nodes", "cpu_usage_rate", "", "n1"));
        assert_eq!(get(&format!("{cm}/nodes/*/cpu_usage_rate")), custom("get", "nodes", "cpu_usage_rate", "", "*"));
        assert_eq!(
            get(&format!("{cm}/namespaces/web/metrics/network_rx_rate")),
            custom("get", "metrics", "", "web", "network_rx_rate")
        );
        for path in [cm.to_string(), "/apis/custom.metrics.k8s.io".into()] {
            assert_eq!(get(&path), Attributes::NonResource { verb: "get".into(), path });
        }
        assert_eq!(
            custom("get", "pods", "network_rx_rate", "web", "p1").describe(),
            "cannot get resource \"pods/network_rx_rate\" in API group \"custom.metrics.k8s.io\" in the namespace \"web\""
        );
        assert_eq!(
            r("list", "pods", "default", "").describe(),
            "cannot list resource \"pods\" in API group \"metrics.k8s.io\" in the namespace \"default\""
        );
    }
}
