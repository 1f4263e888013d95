//! heapster's HTTP API, served from the embedded store.
//!
//! Routes follow Heapster 1.x (`metrics/api/v1/model_handlers.go` and `api.go`) so that dashboards, scripts and
//! the old Kubernetes dashboard keep working unchanged:
//!
//! - `/api/v1/model/...`: entity lists, metric-name lists and metric time series ([`model_api`]),
//! - `/api/v1/historical/...`: the same routes and aggregations, read back from a long-term store ([`historical`]),
//! - `/api/v1/metric-export` and `/api/v1/metric-export-schema` ([`export`]),
//! - `/healthz` ([`health`]) and `/metrics` ([`self_metrics`]),
//! - `/metrics/cadvisor` and `/metrics/resource`, the kubelet's Prometheus pages rebuilt from the store
//!   ([`prometheus`]),
//! - cAdvisor's `/api/v1.3/{subcontainers,containers,machine}/` ([`cadvisor`]), so one heapster can scrape another.
//! - the Kubernetes resource metrics API, `/apis/metrics.k8s.io/v1beta1/...` and its discovery documents, which
//!   `kubectl top` and the HPA read ([`metrics_api`]).
//! - the Kubernetes custom metrics API, `/apis/custom.metrics.k8s.io/{v1beta2,v1beta1}/...`, which the HPA reads to
//!   scale on any collected metric ([`custom_metrics_api`]).
//! - `/api/v1/cardinality`: what each sink's cardinality governor offered, wrote and cut ([`cardinality`]).
//! - `/`: the web dashboard, with its JSON under `/api/v1/dashboard/...` ([`dashboard`]).
//! - `/api/v1/cost`: heapster's own bill, CPU per stage and per node, memory per series ([`cost`]).
//!
//! Where Heapster answered an unknown entity or metric with an empty 200, this API answers 404 with a one-line JSON
//! error, so a typo is not mistaken for "no data yet". Values keep their type: integers stay JSON integers and rates
//! stay fractional (Heapster truncated every value to an unsigned integer).

pub mod cadvisor;
pub mod cardinality;
mod chunked;
pub mod cost;
pub mod custom_metrics_api;
pub mod dashboard;
pub mod error;
pub mod export;
pub mod fanout;
pub mod health;
pub mod historical;
pub mod metrics_api;
pub mod model_api;
pub mod params;
pub mod peers;
pub mod prometheus;
pub mod self_metrics;
pub mod types;

#[cfg(test)]
mod tests;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use heapster_cost::CostExt;
use heapster_store::Store;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

/// Everything the handlers read. Cheap to clone: one per request.
#[derive(Clone)]
pub struct ApiState {
    /// Where every answer comes from; the API never talks to sources or sinks.
    pub store: Arc<Store>,
    /// heapster's self-metrics, rendered at `/metrics` together with the store's size.
    pub registry: Arc<Registry>,
    /// `--metric_resolution`: how often a batch is expected.
    pub resolution: Duration,
    /// `/healthz` fails when the newest batch is older than this, so a wedged scrape loop restarts the pod.
    pub max_staleness: Duration,
    /// `--historical_source`: where `/api/v1/historical/...` reads; those routes answer 404 without one.
    pub historical: Option<Arc<dyn historical::HistoricalSource>>,
    /// The Kubernetes API server, when a kubernetes source is configured: `/api/v1/nodes` and `/version` pass
    /// through to it (see [`metrics_api`]); `None` answers them from the store (standalone).
    pub kube_api: Option<Arc<dyn metrics_api::KubeApiProxy>>,
    /// How the model and historical APIs write values: Heapster's `uint64` unless `--api_typed_values`.
    pub values: types::ValueStyle,
    /// A check `/healthz` makes before the batches' freshness: the sources' readiness (a kubernetes source is
    /// ready once it listed a node), with the reason in the body when not.
    pub ready: Option<Arc<dyn Fn() -> Result<(), String> + Send + Sync>>,
    /// Serve `/api/v1/metric-export` and its schema (Heapster's `--disable_export` turns them off: 404).
    pub export: bool,
    /// The other replicas of a sharded heapster: the model API, metrics.k8s.io and the dashboard's data then
    /// answer for the whole cluster ([`fanout`]). `None`: this replica's store only.
    pub fanout: Option<Arc<fanout::FanOut>>,
    /// heapster's own bill, marked at every round's end: `/api/v1/cost` answers 404 without one.
    pub cost: Option<Arc<heapster_cost::Ledger>>,
    /// The sinks' cardinality governors, for `/api/v1/cardinality`; `None` when no sink has governor options.
    pub cardinality: Option<Arc<dyn heapster_model::cardinality::CardinalityReport>>,
}

impl ApiState {
    /// The usual staleness bound is a few resolutions; callers with a different policy set the field directly.
    pub fn new(store: Arc<Store>, registry: Arc<Registry>, resolution: Duration, max_staleness: Duration) -> Self {
        ApiState {
            store,
            registry,
            resolution,
            max_staleness,
            historical: None,
            kube_api: None,
            values: Default::default(),
            ready: None,
            export: true,
            fanout: None,
            cost: None,
            cardinality: None,
        }
    }
}

/// The whole HTTP surface. Unknown paths get a JSON 404 rather than an empty body, like every other error here.
pub fn router(state: ApiState) -> Router {
    let export = if state.export { export::routes() } else { Router::new() };
    let read = Router::new()
        .merge(model_api::routes())
        .merge(metrics_api::routes())
        .merge(custom_metrics_api::routes())
        .merge(dashboard::routes());
    fanout::wrap(read, &state)
        .merge(historical::routes())
        .merge(export)
        .merge(cadvisor::routes())
        .merge(prometheus::routes())
        .merge(cardinality::routes())
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(self_metrics::scrape))
        .route("/api/v1/cost", get(cost::cost))
        .fallback(error::not_found_fallback)
        .layer(axum::middleware::from_fn(count_cpu))
        .with_state(state)
}

/// Counts every request's handling (on the async workers) into the `api` stage of heapster's bill; the work a
/// handler moves to the blocking pool counts itself there ([`chunked`], the dashboard's `blocking`).
async fn count_cpu(req: Request, next: Next) -> Response {
    next.run(req).costed(&heapster_cost::API_STAGE).await
}
