//! A minimal Kubernetes API server for the simulated cluster: list and watch of nodes, pods and namespaces, in
//! the JSON a real one speaks, enough for a client-go or kube-rs reflector.
//!
//! Lists are paged when the client gives a `limit`, with `continue` tokens. Watches stream newline-delimited events: pods and nodes
//! are re-computed every second and ADDED/DELETED events sent as churn replaces pods or a test deletes a node
//! ([`crate::Simulation::delete_node`]); namespaces do not change, so their watch sends only a BOOKMARK. Every
//! watch ends at `timeoutSeconds`, as a real server's does.

use crate::kubelet::{NodeSpec, PodInstance, Template};
use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// What the API server knows: the same nodes and pods the kubelets serve, less the nodes deleted since and the
/// pods it is told not to list.
pub struct ClusterView {
    pub nodes: Vec<(NodeSpec, SocketAddr)>,
    pub template: Arc<Template>,
    /// Indexes into `nodes` of the nodes deleted (with their pods), with when (the resource version then).
    pub deleted: RwLock<HashMap<usize, i64>>,
    /// The last this many pod slots of every node are served by its kubelet but not listed here.
    pub unlisted_pods: AtomicUsize,
    /// Down for maintenance: nodes, pods, namespaces and `/version` answer 503, and open watches end.
    pub down: AtomicBool,
    /// Resource versions below this one are compacted away: a watch from one gets 410 Expired, as from etcd after
    /// a long outage.
    pub compacted_before: AtomicI64,
    /// Labels added to every pod (a test's way to change pods under a running watch: MODIFIED events).
    pub extra_pod_labels: RwLock<BTreeMap<String, String>>,
    /// The tokens TokenReviews accept.
    pub reviews: TokenReviews,
    /// What SubjectAccessReviews allow.
    pub access: AccessReviews,
    /// The `gitVersion` `/version` reports (`v1.33.0-sim`), settable so a test can make gcloud's kubectl
    /// dispatcher pick another kubectl.
    pub git_version: RwLock<String>,
    /// Pods are replaced over time ([`crate::SimConfig::churn`]): watches must look every second.
    pub churn: bool,
    /// Every pod carries a `build` label of its own ([`crate::SimConfig::pod_build_ids`]).
    pub pod_build_ids: bool,
    /// Bumped after every change tests make to nodes or pods (delete, label, list hidden pods): without churn, a
    /// watch re-computes its objects only when this moved, as computing 450,000 pods each second would take more
    /// than the machine's cores.
    pub changes: AtomicU64,
    /// When [`ClusterView::changes`] last moved, as a resource version (ms since the epoch).
    pub changed_at: AtomicI64,
    /// The objects of each watched kind as of a reading of [`ClusterView::changes`], shared by every watch: a
    /// client's watch ends every five minutes or so and starts again from where its list was, and building
    /// 450,000 pods at each start (twice: what the client knew, then the first look) took a core of the
    /// simulator's for some 40 s, the kubelets it serves answering late meanwhile.
    pub(crate) texts: std::sync::Mutex<HashMap<&'static str, (u64, Texts)>>,
    /// Pod objects built, for the tests that a page or an idle watch builds only what it needs.
    pub(crate) pods_built: AtomicU64,
}

/// `GET /version`: a version.Info whose major and minor come from [`ClusterView::git_version`].
async fn version(State(v): State<Arc<ClusterView>>) -> Response {
    if let Some(r) = unavailable(&v) {
        return r;
    }
    let git = v.git_version.read().unwrap_or_else(|p| p.into_inner()).clone();
    let mut parts = git.trim_start_matches('v').split(['.', '-', '+']);
    let (major, minor) = (parts.next().unwrap_or("1").to_owned(), parts.next().unwrap_or("0").to_owned());
    axum::Json(json!({"major": major, "minor": minor, "gitVersion": git, "platform": "linux/amd64"})).into_response()
}

/// `GET /api/v1/nodes/{name}`: one live node, or a NotFound Status as a real API server answers.
async fn node(State(v): State<Arc<ClusterView>>, axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match v.node_objects(None).remove(&name) {
        Some(node) => ([(header::CONTENT_TYPE, "application/json")], node.to_string()).into_response(),
        None => {
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("nodes \"{name}\" not found"), "reason": "NotFound", "code": 404,
                "details": {"name": name, "kind": "nodes"}});
            (axum::http::StatusCode::NOT_FOUND, axum::Json(status)).into_response()
        }
    }
}

/// The bearer tokens the TokenReview endpoint vouches for, set by tests, and how many reviews it answered (to
/// check that heapster caches answers).
#[derive(Default)]
pub struct TokenReviews {
    tokens: RwLock<HashMap<String, (String, Vec<String>)>>,
    served: std::sync::atomic::AtomicU64,
}

impl TokenReviews {
    /// From now on, `token` authenticates `user` with `groups`.
    pub fn accept(&self, token: &str, user: &str, groups: &[&str]) {
        let groups = groups.iter().map(|g| g.to_string()).collect();
        self.tokens.write().unwrap_or_else(|p| p.into_inner()).insert(token.into(), (user.into(), groups));
    }

    /// TokenReviews answered so far.
    pub fn served(&self) -> u64 {
        self.served.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// `POST /apis/authentication.k8s.io/v1/tokenreviews`: authenticated when the token was [`TokenReviews::accept`]ed,
/// as a real API server answers (status 201, the review echoed with its status).
async fn token_review(State(v): State<Arc<ClusterView>>, body: axum::body::Bytes) -> Response {
    let review: Value = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("not a TokenReview: {e}"), "reason": "BadRequest", "code": 400});
            return (axum::http::StatusCode::BAD_REQUEST, axum::Json(status)).into_response();
        }
    };
    v.reviews.served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let token = review["spec"]["token"].as_str().unwrap_or_default();
    let known = v.reviews.tokens.read().unwrap_or_else(|p| p.into_inner()).get(token).cloned();
    let status = match known {
        Some((user, groups)) => {
            json!({"authenticated": true, "user": {"username": user, "uid": format!("uid-{user}"), "groups": groups}})
        }
        None => json!({"authenticated": false, "error": "token not known to the simulated API server"}),
    };
    let answer = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "metadata": {"creationTimestamp": null},
        "spec": review["spec"], "status": status});
    (axum::http::StatusCode::CREATED, axum::Json(answer)).into_response()
}

/// One rule of [`AccessReviews`]: what a user may do, with any verb.
#[derive(Debug, Clone)]
enum AccessRule {
    /// A non-resource URL: the path, or a prefix when it ends in `*` (as RBAC's nonResourceURLs).
    Path(String),
    /// A resource of an API group, in one namespace or (None) all.
    Resource { group: String, resource: String, namespace: Option<String> },
}

/// The rule table the SubjectAccessReview endpoint decides by, set by tests, and how many reviews it answered.
/// Members of `system:masters` may do anything, as kube-apiserver's privileged-group authorizer allows them.
#[derive(Default)]
pub struct AccessReviews {
    rules: RwLock<Vec<(Subject, AccessRule)>>,
    served: std::sync::atomic::AtomicU64,
}

/// Whom a rule of [`AccessReviews`] is for, as an RBAC binding's subject.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Subject {
    User(String),
    Group(String),
}

impl AccessReviews {
    /// `user` may request the non-resource `path` (a prefix when it ends in `*`).
    pub fn allow_path(&self, user: &str, path: &str) {
        self.push(Subject::User(user.into()), AccessRule::Path(path.into()));
    }

    /// Members of `group` may request the non-resource `path` (a prefix when it ends in `*`).
    pub fn allow_group_path(&self, group: &str, path: &str) {
        self.push(Subject::Group(group.into()), AccessRule::Path(path.into()));
    }

    /// `user` may read `resource` of API `group` in `namespace` (None: every namespace and cluster-scoped).
    /// `resource` is matched as RBAC does: `*`, `pods`, `pods/network_rx_rate` (a subresource), `*/network_rx_rate`.
    pub fn allow_resource(&self, user: &str, group: &str, resource: &str, namespace: Option<&str>) {
        let rule = AccessRule::Resource {
            group: group.into(),
            resource: resource.into(),
            namespace: namespace.map(Into::into),
        };
        self.push(Subject::User(user.into()), rule);
    }

    fn push(&self, subject: Subject, rule: AccessRule) {
        self.rules.write().unwrap_or_else(|p| p.into_inner()).push((subject, rule));
    }

    /// SubjectAccessReviews answered so far.
    pub fn served(&self) -> u64 {
        self.served.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn allows(&self, spec: &Value) -> bool {
        let user = spec["user"].as_str().unwrap_or_default();
        let groups: Vec<&str> = spec["groups"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if groups.contains(&"system:masters") {
            return true;
        }
        let rules = self.rules.read().unwrap_or_else(|p| p.into_inner());
        let applies = |s: &Subject| match s {
            Subject::User(u) => u == user,
            Subject::Group(g) => groups.contains(&g.as_str()),
        };
        rules.iter().filter(|(s, _)| applies(s)).any(|(_, rule)| match rule {
            AccessRule::Path(p) => {
                spec["nonResourceAttributes"]["path"].as_str().is_some_and(|path| match p.strip_suffix('*') {
                    Some(prefix) => path.starts_with(prefix),
                    None => path == p,
                })
            }
            AccessRule::Resource { group, resource, namespace } => {
                let r = &spec["resourceAttributes"];
                // As RBAC matches: `*`, the resource with its subresource (`pods/network_rx_rate`), or
                // `*/<subresource>`; a bare `pods` does not cover a subresource.
                let requested = r["resource"].as_str().unwrap_or_default();
                let sub = r["subresource"].as_str().filter(|s| !s.is_empty());
                let resource_matches = resource == "*"
                    || match sub {
                        Some(sub) => *resource == format!("{requested}/{sub}") || *resource == format!("*/{sub}"),
                        None => resource == requested,
                    };
                r["group"].as_str() == Some(group)
                    && resource_matches
                    && namespace.as_ref().is_none_or(|ns| r["namespace"].as_str() == Some(ns))
            }
        })
    }
}

/// `POST /apis/authorization.k8s.io/v1/subjectaccessreviews`: allowed when a rule of [`AccessReviews`] matches,
/// as a real API server answers (status 201, the review echoed with its status and a reason).
async fn subject_access_review(State(v): State<Arc<ClusterView>>, body: axum::body::Bytes) -> Response {
    let review: Value = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("not a SubjectAccessReview: {e}"), "reason": "BadRequest", "code": 400});
            return (axum::http::StatusCode::BAD_REQUEST, axum::Json(status)).into_response();
        }
    };
    v.access.served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let status = if v.access.allows(&review["spec"]) {
        json!({"allowed": true, "reason": "allowed by a rule of the simulated API server"})
    } else {
        json!({"allowed": false, "reason": "no rule of the simulated API server allows it"})
    };
    let answer = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "metadata": {"creationTimestamp": null}, "spec": review["spec"], "status": status});
    (axum::http::StatusCode::CREATED, axum::Json(answer)).into_response()
}

fn rv_now() -> String {
    Utc::now().timestamp_millis().to_string()
}

fn node_json(spec: &NodeSpec, addr: SocketAddr) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": spec.name, "uid": format!("node-uid-{}", spec.index), "resourceVersion": "1",
            "labels": {"kubernetes.io/hostname": spec.name, "kubernetes.io/os": "linux"},
            "creationTimestamp": (spec.epoch - chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
        "spec": {},
        "status": {
            "addresses": [{"type": "InternalIP", "address": addr.ip().to_string()}, {"type": "Hostname", "address": spec.name}],
            "capacity": {"cpu": "4", "memory": "16Gi", "ephemeral-storage": "100Gi", "pods": "110"},
            "allocatable": {"cpu": "3800m", "memory": "15Gi", "ephemeral-storage": "90Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": addr.port()}},
        }
    })
}

/// A build id of a pod's own, from its uid: the same for the pod's life, new when churn replaces it.
pub fn build_id(uid: &str) -> String {
    // FNV-1a: stable across runs and versions, unlike std's hasher.
    let h = uid.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("b{:012x}", h & 0xffff_ffff_ffff)
}

fn pod_json(node: &str, pod: &PodInstance, extra_labels: &BTreeMap<String, String>, build_ids: bool) -> Value {
    let start = pod.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let app = pod.name.split('-').next().unwrap_or("app");
    let containers: Vec<Value> = pod
        .containers
        .iter()
        .map(|c| {
            json!({
                "name": c, "image": format!("registry.invalid/{c}:1.0"),
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
            })
        })
        .collect();
    let statuses: Vec<Value> = pod
        .containers
        .iter()
        .map(|c| {
            json!({"name": c, "image": format!("registry.invalid/{c}:1.0"), "imageID": "", "ready": true,
                   "restartCount": 0, "started": true, "state": {"running": {"startedAt": start}}})
        })
        .collect();
    let mut labels = json!({"app": app, "sim": "true"});
    if build_ids {
        labels["build"] = json!(build_id(&pod.uid));
    }
    for (k, v) in extra_labels {
        labels[k] = json!(v);
    }
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid, "resourceVersion": "1",
                     "labels": labels, "creationTimestamp": start},
        "spec": {"nodeName": node, "containers": containers},
        // Ready, as the HPA counts only Ready pods when it turns an Object metric into replicas.
        "status": {"phase": "Running", "startTime": start, "containerStatuses": statuses,
                   "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": start},
                                  {"type": "ContainersReady", "status": "True", "lastTransitionTime": start}]},
    })
}

impl ClusterView {
    /// The nodes not deleted, or (`as_of`, a resource version) not deleted yet then: a watch from an older
    /// resource version still has a deletion to report.
    fn live_nodes(&self, as_of: Option<i64>) -> Vec<&(NodeSpec, SocketAddr)> {
        let deleted = self.deleted.read().unwrap_or_else(|p| p.into_inner());
        let live = |i: usize| deleted.get(&i).is_none_or(|&at| as_of.is_some_and(|rv| at > rv));
        self.nodes.iter().enumerate().filter(|(i, _)| live(*i)).map(|(_, n)| n).collect()
    }

    /// Live nodes by name.
    fn node_objects(&self, as_of: Option<i64>) -> BTreeMap<String, Value> {
        self.live_nodes(as_of).into_iter().map(|(s, a)| (s.name.clone(), node_json(s, *a))).collect()
    }

    /// Live nodes by name, as JSON text (what a watch keeps).
    fn node_texts(&self, as_of: Option<i64>) -> BTreeMap<String, String> {
        self.live_nodes(as_of).into_iter().map(|(s, a)| (s.name.clone(), node_json(s, *a).to_string())).collect()
    }

    /// Listed pods of live nodes by uid, as JSON text: a watch keeps every pod between its looks, and 450,000 pods
    /// take 0.7 GB so against some 3 GB as values.
    fn pod_texts(&self, as_of: Option<i64>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        self.each_pod(as_of, 0, usize::MAX, |p| {
            out.insert(p["metadata"]["uid"].as_str().unwrap_or_default().to_owned(), p.to_string());
        });
        out
    }

    /// How many pods are listed, and the pods from the `offset`th on, at most `limit`, in uid order: a page of a
    /// list is built alone, not cut from all of them (900 pages of 500 over 450,000 pods would otherwise build
    /// 400 million pod objects).
    fn pods_page(&self, as_of: Option<i64>, offset: usize, limit: usize) -> (usize, Vec<Value>) {
        let mut out = Vec::new();
        let total = self.each_pod(as_of, offset, limit, |p| out.push(p));
        (total, out)
    }

    /// Calls `f` with the pods [`ClusterView::pods_page`] would list, one at a time; returns how many are listed.
    fn each_pod(&self, as_of: Option<i64>, offset: usize, limit: usize, mut f: impl FnMut(Value)) -> usize {
        let now = Utc::now();
        let extra_labels = self.extra_pod_labels.read().unwrap_or_else(|p| p.into_inner()).clone();
        let unlisted = self.unlisted_pods.load(Ordering::Relaxed);
        let (mut total, mut built) = (0, 0);
        // uids start with the node's index and go on with the slot, both fixed-width hex: nodes in order, slots in
        // order is uid order.
        for (spec, _) in self.live_nodes(as_of) {
            let listed = spec.pods.saturating_sub(unlisted);
            let end = offset.saturating_add(limit);
            let (from, to) = (offset.max(total), end.min(total + listed));
            for slot in from.saturating_sub(total)..to.saturating_sub(total) {
                f(pod_json(&spec.name, &spec.pod(&self.template, slot, now), &extra_labels, self.pod_build_ids));
                built += 1;
            }
            total += listed;
        }
        self.pods_built.fetch_add(built, Ordering::Relaxed);
        total
    }

    /// Whether a watch that last computed its objects at `seen` (a reading of [`ClusterView::changes`]) must
    /// compute them again.
    fn may_have_changed(&self, seen: Option<u64>) -> bool {
        self.churn || seen != Some(self.changes.load(Ordering::Acquire))
    }

    /// Called after a test changed nodes or pods, so that watches look again.
    pub fn changed(&self) {
        self.changed_at.store(Utc::now().timestamp_millis(), Ordering::Release);
        self.changes.fetch_add(1, Ordering::Release);
    }

    /// The objects of `kind` now, built by `objects` only when something changed since they were last built
    /// (without churn; with it, always).
    fn texts_now(&self, kind: &'static str, objects: ObjectsFn) -> Texts {
        if !self.churn
            && let Some(texts) = self.texts_at(kind, objects, self.changes.load(Ordering::Acquire))
        {
            return texts;
        }
        Arc::new(objects(self, None))
    }

    /// The objects of `kind` as they were at the change count `at`, shared by every watch, or `None` if something
    /// changed since (the caller then builds its own).
    fn texts_at(&self, kind: &'static str, objects: ObjectsFn, at: u64) -> Option<Texts> {
        let mut texts = self.texts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((built_at, built)) = texts.get(kind)
            && *built_at == at
        {
            return Some(built.clone());
        }
        if self.changes.load(Ordering::Acquire) != at {
            return None;
        }
        let built = Arc::new(objects(self, None));
        // A change made while building may be in what was built, or not.
        if self.changes.load(Ordering::Acquire) != at {
            return None;
        }
        texts.insert(kind, (at, built.clone()));
        Some(built)
    }

    fn namespaces(&self) -> Vec<Value> {
        // A pod's namespace is its template's: the slots of the node listing the most pods have them all.
        let unlisted = self.unlisted_pods.load(Ordering::Relaxed);
        let now = Utc::now();
        let widest = self.live_nodes(None).into_iter().max_by_key(|(spec, _)| spec.pods);
        let mut names: Vec<String> = widest
            .map(|(spec, _)| {
                let slots = spec.pods.saturating_sub(unlisted).min(self.template.pod_templates());
                (0..slots).map(|slot| spec.pod(&self.template, slot, now).namespace).collect()
            })
            .unwrap_or_default();
        names.sort();
        names.dedup();
        names.iter().map(|n| json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": n, "uid": format!("ns-uid-{n}"), "resourceVersion": "1"}, "status": {"phase": "Active"}}))
            .collect()
    }
}

/// The page of `items` from `offset`, at most `limit` long, for [`list`].
fn page_of(items: Vec<Value>, offset: usize, limit: usize) -> (usize, Vec<Value>) {
    (items.len(), items.into_iter().skip(offset).take(limit).collect())
}

/// A list, in pages of `limit` items when the client asks for them (kube-rs's watcher asks for 500), with a
/// `continue` token as a real API server: a client decoding 150,000 pods in one answer would hold them all at
/// once, which a real cluster never makes it do. The token holds the offset and the first page's resource
/// version, which every page reports, so a watch from it sees what changed since the list began.
/// `page(offset, limit)` gives how many items there are in all and the page's.
fn list(
    kind: &str,
    page: impl FnOnce(usize, usize) -> (usize, Vec<Value>),
    params: &HashMap<String, String>,
) -> Response {
    let (offset, rv) = params
        .get("continue")
        .and_then(|c| c.split_once('-'))
        .and_then(|(o, rv)| Some((o.parse::<usize>().ok()?, rv.to_owned())))
        .unwrap_or_else(|| (0, rv_now()));
    let limit = params.get("limit").and_then(|l| l.parse::<usize>().ok()).filter(|&l| l > 0).unwrap_or(usize::MAX);
    let (total, page) = page(offset, limit);
    let end = offset.saturating_add(page.len());
    let mut metadata = json!({"resourceVersion": rv});
    if end < total {
        metadata["continue"] = json!(format!("{end}-{rv}"));
        metadata["remainingItemCount"] = json!(total - end);
    }
    let body = json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": metadata, "items": page});
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn event(kind: &str, object: &Value) -> Vec<u8> {
    event_of_text(kind, &object.to_string())
}

/// A watch event line around an object already written as JSON.
fn event_of_text(kind: &str, object: &str) -> Vec<u8> {
    format!("{{\"type\":\"{kind}\",\"object\":{object}}}\n").into_bytes()
}

fn bookmark(kind: &str) -> Value {
    json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": rv_now()}})
}

/// The objects a watch compares each second (by name or uid), as of a resource version or now.
type ObjectsFn = fn(&ClusterView, Option<i64>) -> BTreeMap<String, String>;

/// What [`ObjectsFn`] built, shared.
type Texts = Arc<BTreeMap<String, String>>;

/// [`ObjectsFn`], or `None`: the kind never changes.
type Objects = Option<ObjectsFn>;

/// A watch: a BOOKMARK first, then, each second, ADDED, MODIFIED and DELETED events for what `objects` added,
/// changed or lost since, until `timeoutSeconds` (or the server goes [`ClusterView::down`]). A resource version
/// older than [`ClusterView::compacted_before`] gets one ERROR event, 410 Expired, as a real server sends it.
fn watch(params: &HashMap<String, String>, kind: &'static str, view: Arc<ClusterView>, objects: Objects) -> Response {
    // What the client knew at its resource version (a timestamp here), so that what changed since it listed is
    // reported even when the watch starts later.
    let since: Option<i64> = params.get("resourceVersion").and_then(|rv| rv.parse().ok());
    let timeout = params.get("timeoutSeconds").and_then(|t| t.parse().ok()).unwrap_or(300u64).min(600);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(16);
    if let Some(rv) = since.filter(|rv| *rv < view.compacted_before.load(Ordering::Relaxed)) {
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("too old resource version: {rv}"), "reason": "Expired", "code": 410});
        let line = event("ERROR", &status);
        return ([(header::CONTENT_TYPE, "application/json")], line).into_response();
    }
    tokio::spawn(async move {
        if tx.send(Ok(event("BOOKMARK", &bookmark(kind)))).await.is_err() {
            return;
        }
        let until = tokio::time::Instant::now() + Duration::from_secs(timeout);
        // Without churn, what the client knew is what there was at the change count `at` if the last change came
        // before its list. The count is read first: `changed` stores the time before it counts the change.
        let at = view.changes.load(Ordering::Acquire);
        let unchanged = since.is_some_and(|rv| !view.churn && rv > view.changed_at.load(Ordering::Acquire));
        let mut known = match objects {
            Some(f) => {
                let view = view.clone();
                let built = off_runtime(move || {
                    unchanged.then(|| view.texts_at(kind, f, at)).flatten().unwrap_or_else(|| Arc::new(f(&view, since)))
                });
                match built.await {
                    Some(built) => built,
                    None => return,
                }
            }
            None => Arc::default(),
        };
        // Unknown at first: what changed between `since` and now is reported at the first look.
        let mut seen = None;
        while tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if view.down.load(Ordering::Relaxed) {
                return;
            }
            let Some(objects) = objects else {
                if tx.is_closed() {
                    return;
                }
                continue;
            };
            if !view.may_have_changed(seen) {
                if tx.is_closed() {
                    return;
                }
                continue;
            }
            seen = Some(view.changes.load(Ordering::Acquire));
            let look = view.clone();
            let Some(now) = off_runtime(move || look.texts_now(kind, objects)).await else {
                return;
            };
            if Arc::ptr_eq(&now, &known) {
                continue;
            }
            for (uid, pod) in known.iter() {
                if !now.contains_key(uid) && tx.send(Ok(event_of_text("DELETED", pod))).await.is_err() {
                    return;
                }
            }
            for (uid, pod) in now.iter() {
                let change = match known.get(uid) {
                    None => "ADDED",
                    Some(before) if before != pod => "MODIFIED",
                    Some(_) => continue,
                };
                if tx.send(Ok(event_of_text(change, pod))).await.is_err() {
                    return;
                }
            }
            known = now;
        }
    });
    let stream = tokio_stream_from(rx);
    ([(header::CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response()
}

/// Runs `build` on a blocking thread: 450,000 pods take seconds to build, and on a runtime worker they held up
/// the kubelets that worker serves. `None` if it panicked (the panic's message went to stderr).
async fn off_runtime<T: Send + 'static>(build: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(build).await.ok()
}

/// An mpsc receiver as a stream of body chunks.
pub(crate) fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

pub(crate) fn is_watch(p: &HashMap<String, String>) -> bool {
    p.get("watch").is_some_and(|w| w == "true" || w == "1")
}

/// 503, as an API server whose etcd is gone answers, while the simulated one is [`ClusterView::down`].
fn unavailable(v: &ClusterView) -> Option<Response> {
    v.down.load(Ordering::Relaxed).then(|| {
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "the simulated API server is down", "reason": "ServiceUnavailable", "code": 503});
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, axum::Json(status)).into_response()
    })
}

async fn nodes(State(v): State<Arc<ClusterView>>, Query(p): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = unavailable(&v) {
        return r;
    }
    if is_watch(&p) {
        return watch(&p, "Node", v, Some(ClusterView::node_texts));
    }
    let nodes = v.live_nodes(None).into_iter().map(|(s, a)| node_json(s, *a)).collect();
    list("Node", |offset, limit| page_of(nodes, offset, limit), &p)
}

async fn pods(State(v): State<Arc<ClusterView>>, Query(p): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = unavailable(&v) {
        return r;
    }
    if is_watch(&p) {
        return watch(&p, "Pod", v, Some(ClusterView::pod_texts));
    }
    list("Pod", |offset, limit| v.pods_page(None, offset, limit), &p)
}

async fn namespaces(State(v): State<Arc<ClusterView>>, Query(p): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = unavailable(&v) {
        return r;
    }
    if is_watch(&p) {
        return watch(&p, "Namespace", v, None);
    }
    list("Namespace", |offset, limit| page_of(v.namespaces(), offset, limit), &p)
}

/// The API server's routes.
pub fn router(view: Arc<ClusterView>) -> Router {
    Router::new()
        .route("/api/v1/nodes", get(nodes))
        .route("/api/v1/pods", get(pods))
        .route("/api/v1/namespaces", get(namespaces))
        .route("/apis/authentication.k8s.io/v1/tokenreviews", axum::routing::post(token_review))
        .route("/apis/authorization.k8s.io/v1/subjectaccessreviews", axum::routing::post(subject_access_review))
        .route("/api/v1/nodes/{name}", get(node))
        .route("/version", get(version))
        .with_state(view)
}
