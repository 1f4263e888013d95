//! A simulated cluster on loopback, so that heapster's tests and benchmarks need no real one.
//!
//! Each simulated node is a kubelet answering `GET /stats/summary` on its own loopback address (`127.1.x.y`, port
//! shared), so address handling is exercised for real and thousands of nodes need no port juggling. Documents
//! are rendered from a recorded kubelet response (see [`kubelet`]), with counters that grow with time and pods
//! that start and die.
//!
//! The API server (127.0.0.1) lists and watches nodes, pods and namespaces derived from the kubelets
//! ([`apiserver`]), and stores Events and Leases that tests drive through [`Simulation::events`] ([`events`]).
//!
//! What `heapster doctor` checks can be set up right or broken through [`setup`]: what each token may do
//! (SelfSubjectAccessReview), the APIService objects and their conditions, and a clock skew in the `Date` header.
//!
//! Servers speak plain http unless [`SimConfig`] gives them a certificate ([`tls::SimTls`], made with
//! [`tls::TestPki`]) and, optionally, a bearer token they require.

pub mod apiserver;
pub mod events;
pub mod kubelet;
mod leases;
pub mod setup;
pub mod tls;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{DateTime, Utc};
use kubelet::{NodeSpec, Template};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub nodes: usize,
    pub pods_per_node: usize,
    /// Port every kubelet listens on (each on its own address); 0 picks a free one.
    pub kubelet_port: u16,
    /// Every pod is replaced this often (staggered); `None`: pods live forever.
    pub churn: Option<Duration>,
    /// Port of the API server on 127.0.0.1; 0 picks a free one.
    pub api_port: u16,
    /// Serve the API server over https with this certificate (it must name 127.0.0.1); `None`: plain http.
    pub api_tls: Option<tls::SimTls>,
    /// The bearer token the API server requires (401 without it); `None`: anyone may read.
    pub api_token: Option<String>,
    /// Serve every kubelet over https with this certificate (it must name every [`node_ip`]); `None`: plain http.
    pub kubelet_tls: Option<tls::SimTls>,
    /// The bearer token every kubelet requires; `None`: anyone may read.
    pub kubelet_token: Option<String>,
    /// The last this many pods of every node are reported by its kubelet but not listed by the API server (as pods
    /// whose creation the watch has not delivered yet), so that enrichment finds nothing for them.
    pub unlisted_pods: usize,
    /// How often an event watch that allows bookmarks gets one (a real server sends one about every minute; the
    /// simulation's tests want them sooner).
    pub event_bookmark_interval: Duration,
    /// Every pod carries a label `build` with a value of its own (a build id, as CI pipelines stamp on pods), so
    /// that heapster's `labels` label has one value per pod: the high-cardinality label of a governor's tests.
    pub pod_build_ids: bool,
    /// Serve only these nodes' kubelets (the API server still lists every node): the others are served by other
    /// processes started with the same configuration (`kubelet_port` set), template and epoch, so that a simulation
    /// larger than one process's open-file limit (a listener and a connection per kubelet) can be spread over
    /// several. The methods that act on one node's kubelet panic for a node served elsewhere. `None`: all.
    pub kubelets: Option<std::ops::Range<usize>>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 3,
            pods_per_node: 30,
            kubelet_port: 0,
            churn: None,
            api_port: 0,
            api_tls: None,
            api_token: None,
            kubelet_tls: None,
            kubelet_token: None,
            unlisted_pods: 0,
            event_bookmark_interval: Duration::from_secs(1),
            pod_build_ids: false,
            kubelets: None,
        }
    }
}

/// A simulated node as heapster sees it.
#[derive(Debug, Clone)]
pub struct SimNode {
    pub spec: NodeSpec,
    pub addr: SocketAddr,
}

/// The running simulation. Servers run on the caller's tokio runtime until it ends.
pub struct Simulation {
    pub nodes: Vec<SimNode>,
    pub template: Arc<Template>,
    /// The minimal Kubernetes API server (on 127.0.0.1) listing these nodes and their pods.
    pub api_server: SocketAddr,
    /// Whether the API server speaks https.
    pub api_https: bool,
    view: Arc<apiserver::ClusterView>,
    events: Arc<events::EventStore>,
    /// Stops node `i`'s kubelet when set (`i` counted from the first node served here, as in `node_states`).
    kubelet_stops: Vec<watch::Sender<bool>>,
    node_states: Vec<Arc<NodeState>>,
    /// The first node whose kubelet this process serves ([`SimConfig::kubelets`]).
    first_served: usize,
    /// Permissions, APIServices and clock skew that tests set ([`setup`]).
    setup: Arc<setup::Setup>,
}

impl Simulation {
    /// The API server's URL, `http://` or `https://` as configured.
    pub fn api_url(&self) -> String {
        let scheme = if self.api_https { "https" } else { "http" };
        format!("{scheme}://{}", self.api_server)
    }

    /// From now on `/version` reports `git_version` (`v1.27.3`), major and minor taken from it.
    pub fn set_version(&self, git_version: &str) {
        *self.view.git_version.write().unwrap_or_else(|p| p.into_inner()) = git_version.to_owned();
    }

    /// The API server's events and leases: the handle tests create, update, delete and compact events with.
    pub fn events(&self) -> &Arc<events::EventStore> {
        &self.events
    }

    /// The API server's TokenReview endpoint: which tokens it accepts, how many reviews it answered.
    pub fn token_reviews(&self) -> &apiserver::TokenReviews {
        &self.view.reviews
    }

    /// The API server's SubjectAccessReview endpoint: what it allows, how many reviews it answered.
    pub fn access_reviews(&self) -> &apiserver::AccessReviews {
        &self.view.access
    }

    /// Node `i`'s kubelet keeps accepting connections and reading requests, and never answers `/stats/summary`
    /// again.
    pub fn silence_kubelet(&self, i: usize) {
        self.node_states[self.served(i)].silent.store(true, Ordering::Relaxed);
    }

    /// The API server goes down (`true`: nodes, pods, namespaces and `/version` answer 503, open watches end
    /// within a second) or comes back (`false`).
    pub fn set_api_down(&self, down: bool) {
        self.view.down.store(down, Ordering::Relaxed);
    }

    /// The API server forgets every resource version until now, as etcd compacts during a long outage: watches
    /// resuming from one get 410 Expired and must list again.
    pub fn compact_api(&self) {
        let now = Utc::now().timestamp_millis();
        self.view.compacted_before.store(now, Ordering::Relaxed);
    }

    /// From now on the API server lists every pod the kubelets serve (the pods [`SimConfig::unlisted_pods`] kept
    /// back appear, as new pods do).
    pub fn list_all_pods(&self) {
        self.view.unlisted_pods.store(0, Ordering::Relaxed);
        self.view.changed();
    }

    /// From now on every pod the API server lists carries the label `key=value` (MODIFIED on open watches).
    pub fn label_pods(&self, key: &str, value: &str) {
        self.view.extra_pod_labels.write().unwrap_or_else(|p| p.into_inner()).insert(key.into(), value.into());
        self.view.changed();
    }

    /// Node `i`'s kubelet turns hostile: from now on its Summary also lists `phantom_pods` pods the API server never
    /// heard of (renamed copies of its real ones, about 3 kB each), sent chunked without a `Content-Length`, as real
    /// kubelets send theirs. 20,000 make a 60 MB body.
    pub fn add_phantom_pods(&self, i: usize, phantom_pods: usize) {
        self.node_states[self.served(i)].phantom_pods.store(phantom_pods, Ordering::Relaxed);
    }

    /// Node `i`'s kubelet stops: it no longer accepts connections and closes idle ones (a request in flight is
    /// still answered). The API server keeps listing the node as Ready, as it does for a while after a node dies.
    pub fn stop_kubelet(&self, i: usize) {
        let _ = self.kubelet_stops[self.served(i)].send(true);
    }

    /// How many times each node's Summary was asked for in `[from_ms, to_ms)` (ms since the epoch): element `k`
    /// is node `first + k`, where `first` is the first node served here ([`SimConfig::kubelets`]).
    pub fn scrapes_between(&self, from_ms: i64, to_ms: i64) -> Vec<usize> {
        let count = |s: &NodeState| {
            s.scrapes.lock().unwrap_or_else(|p| p.into_inner()).iter().filter(|t| (from_ms..to_ms).contains(*t)).count()
        };
        self.node_states.iter().map(|s| count(s)).collect()
    }

    /// How many connections node `i`'s Summaries were asked on so far (distinct client addresses): as many as
    /// scrapes when the client reconnects each time, one when it keeps its connection.
    pub fn connections_used(&self, i: usize) -> usize {
        self.node_states[self.served(i)].peers.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Node `i` vanishes: its kubelet stops and the API server deletes it and its pods (DELETED events on the node
    /// and pod watches within a second; lists leave them out). A node served by another process is deleted from the
    /// API server only: that process stops its kubelet.
    pub fn delete_node(&self, i: usize) {
        assert!(i < self.nodes.len(), "no node {i}");
        if self.serves(i) {
            self.stop_kubelet(i);
        }
        let now = chrono::Utc::now().timestamp_millis();
        self.view.deleted.write().unwrap_or_else(|p| p.into_inner()).insert(i, now);
        self.view.changed();
    }
}

impl Simulation {
    /// Whether node `i`'s kubelet is served by this process.
    fn serves(&self, i: usize) -> bool {
        (self.first_served..self.first_served + self.node_states.len()).contains(&i)
    }

    /// Where node `i`'s kubelet is among those served here.
    fn served(&self, i: usize) -> usize {
        assert!(self.serves(i), "node {i}'s kubelet is not served by this process");
        i - self.first_served
    }
}

/// `127.1.0.1`, `127.1.0.2`, ... : node `i`'s loopback address (250 per third octet).
pub fn node_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 1 + (i / 62_500) as u8, ((i / 250) % 250) as u8, (i % 250) as u8 + 1))
}

struct NodeState {
    spec: NodeSpec,
    template: Arc<Template>,
    /// Accept requests and never answer them (a kubelet stuck, or a node half gone).
    silent: AtomicBool,
    /// Pods listed beyond the node's own, unknown to the API server (a hostile or broken kubelet).
    phantom_pods: AtomicUsize,
    /// When each Summary was asked for (ms since the epoch), so that tests of several heapsters sharing the nodes
    /// can count how often each node was scraped in a round.
    scrapes: std::sync::Mutex<Vec<i64>>,
    /// The client addresses Summaries were asked from: one per connection, so that tests can tell kept
    /// connections from new ones.
    peers: std::sync::Mutex<std::collections::HashSet<SocketAddr>>,
}

async fn summary(
    State(st): State<Arc<NodeState>>,
    ConnectInfo(tls::Peer(peer)): ConnectInfo<tls::Peer>,
) -> axum::response::Response {
    st.scrapes.lock().unwrap_or_else(|p| p.into_inner()).push(Utc::now().timestamp_millis());
    st.peers.lock().unwrap_or_else(|p| p.into_inner()).insert(peer);
    if st.silent.load(Ordering::Relaxed) {
        std::future::pending::<()>().await;
    }
    let phantom = st.phantom_pods.load(Ordering::Relaxed);
    if phantom > 0 {
        // Slots past the node's own pods get names the API server does not list.
        let spec = NodeSpec { pods: st.spec.pods + phantom, ..st.spec.clone() };
        let body = axum::body::Bytes::from(kubelet::render(&st.template, &spec, Utc::now()));
        let chunks = (0..body.len())
            .step_by(64 << 10)
            .map(move |at| Ok::<_, std::io::Error>(body.slice(at..(at + (64 << 10)).min(body.len()))));
        let stream = futures_util::stream::iter(chunks.collect::<Vec<_>>());
        return ([(header::CONTENT_TYPE, "application/json")], axum::body::Body::from_stream(stream)).into_response();
    }
    let body = kubelet::render(&st.template, &st.spec, Utc::now());
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

impl Simulation {
    /// Binds every node's kubelet and starts serving.
    pub async fn start(config: SimConfig) -> std::io::Result<Simulation> {
        Self::start_with(config, Template::builtin(), Utc::now()).await
    }

    /// As [`Simulation::start`], with another template and epoch (tests pin the clock's origin).
    pub async fn start_with(
        config: SimConfig,
        template: Template,
        epoch: DateTime<Utc>,
    ) -> std::io::Result<Simulation> {
        let template = Arc::new(template);
        let mut port = config.kubelet_port;
        let mut nodes = Vec::with_capacity(config.nodes);
        let mut kubelet_stops = Vec::with_capacity(config.nodes);
        let mut node_states = Vec::with_capacity(config.nodes);
        let served = config.kubelets.clone().unwrap_or(0..config.nodes);
        if config.kubelets.is_some() && (served.is_empty() || served.end > config.nodes) {
            return Err(std::io::Error::other(format!("kubelets {served:?} are not among {} nodes", config.nodes)));
        }
        if port == 0 && served.start > 0 {
            return Err(std::io::Error::other("kubelets served apart (SimConfig::kubelets) need a fixed kubelet_port"));
        }
        for i in 0..config.nodes {
            let spec = NodeSpec {
                name: format!("sim-node-{i}"),
                index: i,
                pods: config.pods_per_node,
                epoch,
                churn: config.churn,
            };
            if !served.contains(&i) {
                // Listed by the API server, served by another process.
                nodes.push(SimNode { spec, addr: SocketAddr::new(node_ip(i), port) });
                continue;
            }
            let listener = tokio::net::TcpListener::bind(SocketAddr::new(node_ip(i), port)).await.map_err(|e| {
                std::io::Error::new(e.kind(), format!("simulated node {i} on {}:{port}: {e}", node_ip(i)))
            })?;
            let addr = listener.local_addr()?;
            port = addr.port();
            let state = Arc::new(NodeState {
                spec: spec.clone(),
                template: template.clone(),
                silent: AtomicBool::new(false),
                phantom_pods: AtomicUsize::new(0),
                scrapes: Default::default(),
                peers: Default::default(),
            });
            node_states.push(state.clone());
            let app = Router::new()
                .route("/stats/summary", get(summary))
                .route("/healthz", get(|| async { "ok" }))
                .with_state(state);
            let (stop_tx, mut stop_rx) = watch::channel(false);
            let stop = async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            };
            tls::serve_until(listener, app, config.kubelet_tls.as_ref(), config.kubelet_token.as_deref(), stop)?;
            kubelet_stops.push(stop_tx);
            nodes.push(SimNode { spec, addr });
        }
        let view = Arc::new(apiserver::ClusterView {
            nodes: nodes.iter().map(|n| (n.spec.clone(), n.addr)).collect(),
            template: template.clone(),
            deleted: Default::default(),
            unlisted_pods: AtomicUsize::new(config.unlisted_pods),
            down: AtomicBool::new(false),
            compacted_before: Default::default(),
            extra_pod_labels: Default::default(),
            reviews: Default::default(),
            access: Default::default(),
            git_version: std::sync::RwLock::new("v1.33.0-sim".to_owned()),
            churn: config.churn.is_some(),
            pod_build_ids: config.pod_build_ids,
            changes: Default::default(),
            changed_at: Default::default(),
            texts: Default::default(),
            pods_built: Default::default(),
        });
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, config.api_port)).await?;
        let api_server = listener.local_addr()?;
        let events = Arc::new(events::EventStore::new(config.event_bookmark_interval));
        let setup = Arc::new(setup::Setup::default());
        let app = apiserver::router(view.clone())
            .merge(events::router(events.clone()))
            .merge(setup::router(setup.clone()))
            .layer(axum::middleware::from_fn_with_state(setup.clone(), setup::date_header));
        tls::serve(listener, app, config.api_tls.as_ref(), config.api_token.as_deref())?;
        Ok(Simulation {
            nodes,
            template,
            api_server,
            api_https: config.api_tls.is_some(),
            view,
            events,
            kubelet_stops,
            node_states,
            first_served: served.start,
            setup,
        })
    }
}

#[cfg(test)]
mod events_tests;
#[cfg(test)]
mod tests;
