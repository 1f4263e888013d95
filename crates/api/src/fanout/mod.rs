//! Reading a sharded heapster from any replica: the model API, metrics.k8s.io, custom.metrics.k8s.io and the
//! dashboard's data answer for the whole cluster by asking the other replicas ([`Peers`]) for their own part and
//! merging ([`merge`]).
//!
//! - A request that reaches a replica from outside is answered here and by every other replica at once; the other
//!   replicas are asked with [`LOCAL_HEADER`], which makes them answer from their own store only, so a request
//!   fans out once and never loops.
//! - Each replica gets the same deadline (the client's timeout). One that fails, times out or answers an error is
//!   left out: the answer is what the others had, never an error because one replica is down. Each such failure
//!   is counted (`heapster_fanout_errors_total{peer}`) and logged at most once a minute per replica.
//! - Peers serving https are verified against the CA the client was built with; a bearer token (the pod's service
//!   account token, read at every fan-out because the kubelet rotates it) is sent when its file is readable, so
//!   peers that require authentication let their siblings in.
//!
//! Routes that read a shared long-term store (`/api/v1/historical`), the export routes and `/metrics` are not
//! fanned out: each replica's self-metrics and export are its own, and the historical store is already whole.

mod merge;

use crate::ApiState;
use crate::metrics_api::ApiVersion;
use crate::peers::Peers;
use axum::body::Body;
use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use merge::Merge;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Marks a request from another replica: answer from this replica's store only.
pub const LOCAL_HEADER: &str = "x-heapster-local";

/// Where a pod finds its service account token.
pub const IN_CLUSTER_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Rows a dashboard list asks each replica for at most (`page × per_page`); deeper pages are this replica's own.
pub const MAX_FANOUT_ROWS: usize = 10_000;

/// Largest answer read from this replica's own handler: a PodMetrics list of 150,000 pods is about 60 MB.
const MAX_LOCAL_BODY: usize = 512 << 20;

/// A failed replica is logged at most this often; the counter has every failure.
const LOG_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    peer: String,
}

/// The other replicas and how to ask them. Built once by the binary and shared by every request.
pub struct FanOut {
    peers: Arc<dyn Peers>,
    /// The project's HTTP client, with the deadline as its timeout and the peers' CA.
    client: reqwest::Client,
    /// The bearer token's file; unreadable (outside a pod) means no token.
    token_file: Option<PathBuf>,
    errors: Family<PeerLabels, Counter>,
    last_logged: Mutex<HashMap<String, Instant>>,
}

impl FanOut {
    /// `client` should carry the deadline as its timeout (every replica is waited for at most that long) and
    /// trust the peers' serving certificates. Registers `heapster_fanout_errors_total{peer}` in `registry`.
    pub fn new(
        peers: Arc<dyn Peers>,
        client: reqwest::Client,
        token_file: Option<PathBuf>,
        registry: &mut Registry,
    ) -> FanOut {
        let errors = Family::<PeerLabels, Counter>::default();
        registry.register(
            "heapster_fanout_errors",
            "Requests to another replica that failed, timed out or answered an error, by replica",
            errors.clone(),
        );
        FanOut { peers, client, token_file, errors, last_logged: Mutex::new(HashMap::new()) }
    }

    async fn token(&self) -> Option<String> {
        let text = tokio::fs::read_to_string(self.token_file.as_ref()?).await.ok()?;
        Some(text.trim().to_owned()).filter(|t| !t.is_empty())
    }

    /// Every peer's JSON answer to `path_and_query`, in peer order; `None` for a peer without one.
    async fn ask_all(&self, peers: &[String], path_and_query: &str) -> Vec<Option<Value>> {
        let token = self.token().await;
        let asks = peers.iter().map(|base| self.ask(base, path_and_query, token.as_deref()));
        futures_util::future::join_all(asks).await
    }

    async fn ask(&self, base: &str, path_and_query: &str, token: Option<&str>) -> Option<Value> {
        let mut request = self.client.get(format!("{base}{path_and_query}")).header(LOCAL_HEADER, "1");
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let why = format!("{} (is it running, and is the address right?)", heapster_net::error_chain(&e));
                return self.failed(base, path_and_query, why);
            }
        };
        match response.status().as_u16() {
            200 => {}
            // Not there: a NodeMetrics of a node another replica scrapes.
            404 => return None,
            s @ (401 | 403) => {
                let why = format!("answered HTTP {s} (does it accept this replica's token? see --peers_token_file)");
                return self.failed(base, path_and_query, why);
            }
            s => return self.failed(base, path_and_query, format!("answered HTTP {s}")),
        }
        match response.bytes().await.map(|b| serde_json::from_slice(&b)) {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => self.failed(base, path_and_query, format!("answered something not JSON ({e})")),
            Err(e) => self.failed(base, path_and_query, heapster_net::error_chain(&e)),
        }
    }

    fn failed(&self, peer: &str, path: &str, why: String) -> Option<Value> {
        self.errors.get_or_create(&PeerLabels { peer: peer.to_owned() }).inc();
        let now = Instant::now();
        let mut last = self.last_logged.lock().unwrap_or_else(PoisonError::into_inner);
        if last.get(peer).is_none_or(|t| now.duration_since(*t) >= LOG_EVERY) {
            last.insert(peer.to_owned(), now);
            tracing::warn!(
                "replica {peer} could not be read for {path}: {why}; answering without its part \
                 (heapster_fanout_errors_total counts every failure; this line repeats at most once a minute)"
            );
        }
        None
    }
}

/// What the middleware needs: the peers, and whether `/api/v1/nodes` passes through to the API server (then every
/// replica would answer the same list and asking them is wasted).
#[derive(Clone)]
pub(crate) struct Layer {
    pub fanout: Arc<FanOut>,
    pub core_passthrough: bool,
}

/// The rule of the route `template` (axum's matched path), or `None` for routes answered locally.
fn classify(template: &str, uri: &Uri, core_passthrough: bool) -> Option<Merge> {
    if let Some(rest) = template.strip_prefix("/api/v1/model") {
        if !rest.ends_with("{*metric}") {
            return Some(Merge::Names);
        }
        if rest.contains("/pod-list/") {
            return Some(Merge::PodList);
        }
        if rest == "/metrics/{*metric}" || rest == "/namespaces/{ns}/metrics/{*metric}" {
            let metric = uri.path().split_once("/metrics/")?.1.to_owned();
            return Some(Merge::SummedPoints { metric });
        }
        return Some(Merge::FirstPoints);
    }
    for v in ApiVersion::ALL {
        if let Some(rest) = template.strip_prefix(v.prefix()) {
            return match rest.trim_end_matches('/') {
                "/nodes" | "/pods" | "/namespaces/{ns}/pods" => Some(Merge::Items),
                "/nodes/{name}" | "/namespaces/{ns}/pods/{name}" => Some(Merge::FirstFound),
                _ => None,
            };
        }
    }
    for v in crate::custom_metrics_api::CmVersion::ALL {
        if let Some(rest) = template.strip_prefix(v.prefix()) {
            let mut segments = uri.path().rsplit('/');
            let metric = segments.next().unwrap_or("");
            let name = segments.next().unwrap_or("");
            return match rest {
                "/namespaces/{ns}/pods/{name}/{metric}" | "/nodes/{name}/{metric}" => {
                    Some(if name == crate::custom_metrics_api::ALL_OBJECTS {
                        Merge::MetricValues
                    } else {
                        Merge::FirstFound
                    })
                }
                "/namespaces/{ns}/metrics/{metric}" => {
                    let summed = heapster_processors::namespace_aggregator::DEFAULT_METRICS
                        .iter()
                        .any(|m| crate::custom_metrics_api::api_metric_name(m) == metric);
                    Some(if summed { Merge::SummedMetricValue } else { Merge::FirstFound })
                }
                _ => None,
            };
        }
    }
    let dashboard = |path: &str| format!("{}/{path}", crate::dashboard::API_BASE);
    let query = || Query::<Vec<(String, String)>>::try_from_uri(uri);
    match template {
        "/api/v1/nodes" if !core_passthrough => Some(Merge::Items),
        "/api/v1/nodes/{name}" if !core_passthrough => Some(Merge::FirstFound),
        "/api/v1/pods" | "/api/v1/namespaces/{ns}/pods" => Some(Merge::Items),
        "/api/v1/namespaces/{ns}/pods/{name}" => Some(Merge::FirstFound),
        t if t == dashboard("overview") => Some(Merge::Overview),
        t if t == dashboard("set") => Some(Merge::FirstFound),
        t if t == dashboard("series") => {
            let key = crate::dashboard::params::key(query()).ok()?;
            // The cluster and namespaces are rolled up per replica; every other set is one replica's.
            let summed = key == "cluster" || (key.starts_with("namespace:") && !key.contains('/'));
            Some(if summed { Merge::SummedSeries } else { Merge::FirstFound })
        }
        t if ["nodes", "namespaces", "pods", "containers"].iter().any(|l| t == dashboard(l)) => {
            let q = crate::dashboard::params::ListQuery::parse(query()).ok()?;
            (q.page.saturating_mul(q.per_page) <= MAX_FANOUT_ROWS).then_some(Merge::Page(q))
        }
        _ => None,
    }
}

/// The query of a dashboard page asked of every replica: the first `page × per_page` rows, same filters and order.
fn first_rows_uri(uri: &Uri, q: &crate::dashboard::params::ListQuery) -> Option<Uri> {
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri).ok()?;
    let enc = crate::metrics_api::nodes::percent_encode;
    let mut query: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k != "page" && k != "per_page")
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    query.push(format!("page=1&per_page={}", q.page * q.per_page));
    format!("{}?{}", uri.path(), query.join("&")).parse().ok()
}

/// Axum middleware: answers a request of a fanned-out route with the merge of every replica's answer.
pub(crate) async fn handle(State(layer): State<Layer>, mut req: Request, next: Next) -> Response {
    if req.method() != Method::GET || req.headers().contains_key(LOCAL_HEADER) {
        return next.run(req).await;
    }
    let Some(template) = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()) else {
        return next.run(req).await;
    };
    let Some(rule) = classify(&template, req.uri(), layer.core_passthrough) else {
        return next.run(req).await;
    };
    let peers = layer.fanout.peers.others();
    if peers.is_empty() {
        return next.run(req).await;
    }
    if let Merge::Page(q) = &rule
        && let Some(uri) = first_rows_uri(req.uri(), q)
    {
        *req.uri_mut() = uri;
    }
    // The local handler sees the marker too: a dashboard list then allows the larger first-rows page.
    req.headers_mut().insert(LOCAL_HEADER, HeaderValue::from_static("1"));
    let path_and_query = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let fanout = &layer.fanout;
    let (local, remote) = if rule == Merge::FirstFound {
        // Most objects are local or nowhere: only a miss asks the others.
        let local = next.run(req).await;
        if local.status() == StatusCode::OK {
            return local;
        }
        (local, fanout.ask_all(&peers, &path_and_query).await)
    } else {
        futures_util::future::join(next.run(req), fanout.ask_all(&peers, &path_and_query)).await
    };
    let remote: Vec<Value> = remote.into_iter().flatten().collect();
    if rule == Merge::FirstFound {
        return match remote.into_iter().next() {
            Some(v) => axum::Json(v).into_response(),
            None => local,
        };
    }
    if local.status() == StatusCode::NOT_FOUND && !remote.is_empty() {
        // A namespace whose pods all run on other replicas' nodes.
        return merge::merge(&rule, remote).map_or(local, |v| axum::Json(v).into_response());
    }
    if local.status() != StatusCode::OK {
        return local;
    }
    let (parts, body) = local.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_LOCAL_BODY).await {
        Ok(b) => b,
        Err(e) => {
            let msg = format!("reading this replica's own answer failed: {e}");
            return crate::error::ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: msg }.into_response();
        }
    };
    let Ok(mine) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let answers: Vec<Value> = std::iter::once(mine).chain(remote).collect();
    match merge::merge(&rule, answers) {
        Some(v) => {
            let mut out = axum::Json(v).into_response();
            out.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            out
        }
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}

/// Wraps `router`'s routes in the fan-out when the state has peers.
pub(crate) fn wrap(router: axum::Router<ApiState>, state: &ApiState) -> axum::Router<ApiState> {
    match &state.fanout {
        Some(fanout) => {
            let layer = Layer { fanout: fanout.clone(), core_passthrough: state.kube_api.is_some() };
            router.layer(axum::middleware::from_fn_with_state(layer, handle))
        }
        None => router,
    }
}
