//! The `/api/v1/historical` routes and what each asks the [`HistoricalSource`].

use super::{AggregatedBucket, Aggregation, HistoricalError, HistoricalSource, parse_aggregations, parse_bucket};
use crate::ApiState;
use crate::error::ApiError;
use crate::model_api::Entity;
use crate::params::{MetricQuery, metric_name, now_millis};
use crate::types::{
    AggregationValue, MetricAggregationBucket, MetricAggregationResult, MetricAggregationResultList, MetricResult,
    MetricResultList, Time,
};
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{MethodRouter, get};
use heapster_model::{Labels, Timestamp};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const BASE: &str = "/api/v1/historical";

type Params = Query<HashMap<String, String>>;
type Answer<T> = Result<Json<T>, ApiError>;

/// The configured source, or 404 saying how to configure one.
fn source(st: &ApiState) -> Result<Arc<dyn HistoricalSource>, ApiError> {
    st.historical.clone().ok_or_else(|| {
        ApiError::not_found(
            "the historical API is off: start heapster with --historical_source=influxdb:http://HOST:8086?db=k8s \
             (the database an InfluxDB --sink writes to)",
        )
    })
}

/// A failed query: the database, not the request, is at fault.
fn upstream(src: &dyn HistoricalSource, e: HistoricalError) -> ApiError {
    ApiError { status: StatusCode::BAD_GATEWAY, message: format!("historical source {}: {e}", src.name()) }
}

/// `start`, `end` and `labels`, with `start` required as in Heapster's `getStartEndTimeHistorical`.
struct Range {
    start: Timestamp,
    end: Timestamp,
    labels: Option<Labels>,
}

fn range(params: &HashMap<String, String>) -> Result<Range, ApiError> {
    let q = MetricQuery::parse(params, now_millis())?;
    let start = q.start.ok_or_else(|| {
        ApiError::bad_request(
            "start is required by the historical API (an RFC 3339 time such as 2024-01-01T00:00:00Z): a long-term \
             store asked for everything since 1970 could take minutes",
        )
    })?;
    Ok(Range { start, end: q.end, labels: q.labels })
}

/// After an empty answer: 404 when the entity or the metric is unknown to the source, so a typo is not mistaken
/// for "no data in this range"; Ok (an empty 200) otherwise.
async fn known(src: &dyn HistoricalSource, entity: &Entity, metric: &str) -> Result<(), ApiError> {
    let names = src.metric_names(entity).await.map_err(|e| upstream(src, e))?;
    if names.is_empty() {
        return Err(ApiError::not_found(format!("{entity} not found in {}", src.name())));
    }
    if !names.iter().any(|n| n == metric) {
        return Err(ApiError::not_found(format!("metric {metric:?} not found for {entity} in {}", src.name())));
    }
    Ok(())
}

async fn names(st: ApiState, entity: Entity) -> Answer<Vec<String>> {
    let src = source(&st)?;
    let names = src.metric_names(&entity).await.map_err(|e| upstream(&*src, e))?;
    if names.is_empty() {
        return Err(ApiError::not_found(format!("{entity} not found in {}", src.name())));
    }
    Ok(Json(names))
}

async fn metric(
    st: ApiState,
    entity: Entity,
    raw_metric: String,
    params: HashMap<String, String>,
) -> Answer<MetricResult> {
    let src = source(&st)?;
    let r = range(&params)?;
    let metric = metric_name(&raw_metric);
    let mut all = src
        .values(metric, r.labels.as_ref(), std::slice::from_ref(&entity), r.start, r.end)
        .await
        .map_err(|e| upstream(&*src, e))?;
    let points = all.pop().unwrap_or_default();
    if points.is_empty() {
        known(&*src, &entity, metric).await?;
    }
    Ok(Json(MetricResult::from_points(&points, st.values)))
}

/// Heapster's `exportTimestampedAggregationValue`.
pub fn aggregation_result(buckets: &[AggregatedBucket], bucket: Option<Duration>) -> MetricAggregationResult {
    let value = |b: &AggregatedBucket, a: Aggregation| b.values.get(&a).map(|v| AggregationValue::from(*v));
    MetricAggregationResult {
        buckets: buckets
            .iter()
            .map(|b| MetricAggregationBucket {
                timestamp: Time(Some(b.timestamp)),
                count: b.count,
                average: value(b, Aggregation::Average),
                maximum: value(b, Aggregation::Max),
                minimum: value(b, Aggregation::Min),
                median: value(b, Aggregation::Median),
                percentiles: b
                    .values
                    .iter()
                    .filter_map(|(a, v)| Some((a.percentile()?.to_string(), AggregationValue::from(*v))))
                    .collect(),
            })
            .collect(),
        bucket_size: bucket.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
    }
}

async fn aggregated(
    st: ApiState,
    entity: Entity,
    raw_aggs: String,
    raw_metric: String,
    params: HashMap<String, String>,
) -> Answer<MetricAggregationResult> {
    let src = source(&st)?;
    let r = range(&params)?;
    let bucket = parse_bucket(params.get("bucket").map(String::as_str))?;
    let aggs = parse_aggregations(&raw_aggs)?;
    let metric = metric_name(&raw_metric);
    let mut all = src
        .aggregations(metric, r.labels.as_ref(), &aggs, std::slice::from_ref(&entity), r.start, r.end, bucket)
        .await
        .map_err(|e| upstream(&*src, e))?;
    let buckets = all.pop().unwrap_or_default();
    if buckets.is_empty() {
        known(&*src, &entity, metric).await?;
    }
    Ok(Json(aggregation_result(&buckets, bucket)))
}

fn pods(ns: &str, list: &str) -> Vec<Entity> {
    list.split(',').map(|p| Entity::Pod(ns.to_owned(), p.to_owned())).collect()
}

/// One result per listed pod, in the listed order; a pod without points gets an empty one.
async fn pod_list_metric(
    st: ApiState,
    ns: String,
    list: String,
    raw_metric: String,
    params: Params,
) -> Answer<MetricResultList> {
    let src = source(&st)?;
    let r = range(&params)?;
    let entities = pods(&ns, &list);
    let all = src
        .values(metric_name(&raw_metric), r.labels.as_ref(), &entities, r.start, r.end)
        .await
        .map_err(|e| upstream(&*src, e))?;
    Ok(Json(MetricResultList { items: all.iter().map(|p| MetricResult::from_points(p, st.values)).collect() }))
}

async fn pod_list_aggregated(
    st: ApiState,
    (ns, list, raw_aggs, raw_metric): (String, String, String, String),
    params: Params,
) -> Answer<MetricAggregationResultList> {
    let src = source(&st)?;
    let r = range(&params)?;
    let bucket = parse_bucket(params.get("bucket").map(String::as_str))?;
    let aggs = parse_aggregations(&raw_aggs)?;
    let entities = pods(&ns, &list);
    let all = src
        .aggregations(metric_name(&raw_metric), r.labels.as_ref(), &aggs, &entities, r.start, r.end, bucket)
        .await
        .map_err(|e| upstream(&*src, e))?;
    Ok(Json(MetricAggregationResultList { items: all.iter().map(|b| aggregation_result(b, bucket)).collect() }))
}

/// Heapster's `pod-id` routes select by the `pod_id` tag, which Heapster's InfluxDB sink (and this one) never
/// writes: answered with the reason instead of an empty result.
async fn pod_id() -> ApiError {
    ApiError::not_found(
        "the pod-id routes need the pod_id tag, which the InfluxDB sink leaves out (Heapster's tag blacklist): use \
         /api/v1/historical/namespaces/{namespace}/pods/{pod}/...",
    )
}

/// Routes `path` and `path/` to the same handler.
fn both(router: Router<ApiState>, path: &str, handler: MethodRouter<ApiState>) -> Router<ApiState> {
    let bare = path.trim_end_matches('/');
    router.route(&format!("{BASE}{bare}"), handler.clone()).route(&format!("{BASE}{bare}/"), handler)
}

fn at(router: Router<ApiState>, path: &str, handler: MethodRouter<ApiState>) -> Router<ApiState> {
    router.route(&format!("{BASE}{path}"), handler)
}

macro_rules! list {
    ($method:ident $(, $arg:ident)*) => {
        |State(st): State<ApiState>, Path(($($arg,)*)): Path<($(list!(@ty $arg),)*)>| async move {
            let src = source(&st)?;
            let names = src.$method($(&$arg),*).await.map_err(|e| upstream(&*src, e))?;
            Ok::<_, ApiError>(Json(names))
        }
    };
    (@ty $arg:ident) => { String };
}

pub fn routes() -> Router<ApiState> {
    let mut r = Router::new();
    // Cluster.
    r = both(r, "/metrics/", get(|State(st): State<ApiState>| names(st, Entity::Cluster)));
    r = at(
        r,
        "/metrics/{*metric}",
        get(|State(st): State<ApiState>, Path(m): Path<String>, Query(p): Params| metric(st, Entity::Cluster, m, p)),
    );
    r = at(
        r,
        "/metrics-aggregated/{aggregations}/{*metric}",
        get(|State(st): State<ApiState>, Path((a, m)): Path<(String, String)>, Query(p): Params| {
            aggregated(st, Entity::Cluster, a, m, p)
        }),
    );
    // Nodes and their free (system) containers.
    r = both(
        r,
        "/nodes/",
        get(|State(st): State<ApiState>| async move {
            let src = source(&st)?;
            let names = src.nodes().await.map_err(|e| upstream(&*src, e))?;
            Ok::<_, ApiError>(Json(names))
        }),
    );
    r = both(
        r,
        "/nodes/{node}/metrics/",
        get(|State(st): State<ApiState>, Path(n): Path<String>| names(st, Entity::Node(n))),
    );
    r = at(
        r,
        "/nodes/{node}/metrics/{*metric}",
        get(|State(st): State<ApiState>, Path((n, m)): Path<(String, String)>, Query(p): Params| {
            metric(st, Entity::Node(n), m, p)
        }),
    );
    r = at(
        r,
        "/nodes/{node}/metrics-aggregated/{aggregations}/{*metric}",
        get(|State(st): State<ApiState>, Path((n, a, m)): Path<(String, String, String)>, Query(p): Params| {
            aggregated(st, Entity::Node(n), a, m, p)
        }),
    );
    r = both(r, "/nodes/{node}/freecontainers/", get(list!(free_containers_of_node, node)));
    r = both(
        r,
        "/nodes/{node}/freecontainers/{container}/metrics/",
        get(|State(st): State<ApiState>, Path((n, c)): Path<(String, String)>| names(st, Entity::FreeContainer(n, c))),
    );
    r = at(
        r,
        "/nodes/{node}/freecontainers/{container}/metrics/{*metric}",
        get(|State(st): State<ApiState>, Path((n, c, m)): Path<(String, String, String)>, Query(p): Params| {
            metric(st, Entity::FreeContainer(n, c), m, p)
        }),
    );
    r = at(
        r,
        "/nodes/{node}/freecontainers/{container}/metrics-aggregated/{aggregations}/{*metric}",
        get(
            |State(st): State<ApiState>,
             Path((n, c, a, m)): Path<(String, String, String, String)>,
             Query(p): Params| { aggregated(st, Entity::FreeContainer(n, c), a, m, p) },
        ),
    );
    // Namespaces, pods and pod containers.
    r = both(
        r,
        "/namespaces/",
        get(|State(st): State<ApiState>| async move {
            let src = source(&st)?;
            let names = src.namespaces().await.map_err(|e| upstream(&*src, e))?;
            Ok::<_, ApiError>(Json(names))
        }),
    );
    r = both(
        r,
        "/namespaces/{ns}/metrics/",
        get(|State(st): State<ApiState>, Path(ns): Path<String>| names(st, Entity::Namespace(ns))),
    );
    r = at(
        r,
        "/namespaces/{ns}/metrics/{*metric}",
        get(|State(st): State<ApiState>, Path((ns, m)): Path<(String, String)>, Query(p): Params| {
            metric(st, Entity::Namespace(ns), m, p)
        }),
    );
    r = at(
        r,
        "/namespaces/{ns}/metrics-aggregated/{aggregations}/{*metric}",
        get(|State(st): State<ApiState>, Path((ns, a, m)): Path<(String, String, String)>, Query(p): Params| {
            aggregated(st, Entity::Namespace(ns), a, m, p)
        }),
    );
    r = both(r, "/namespaces/{ns}/pods/", get(list!(pods_of_namespace, ns)));
    r = both(
        r,
        "/namespaces/{ns}/pods/{pod}/metrics/",
        get(|State(st): State<ApiState>, Path((ns, pod)): Path<(String, String)>| names(st, Entity::Pod(ns, pod))),
    );
    r = at(
        r,
        "/namespaces/{ns}/pods/{pod}/metrics/{*metric}",
        get(|State(st): State<ApiState>, Path((ns, pod, m)): Path<(String, String, String)>, Query(p): Params| {
            metric(st, Entity::Pod(ns, pod), m, p)
        }),
    );
    r = at(
        r,
        "/namespaces/{ns}/pods/{pod}/metrics-aggregated/{aggregations}/{*metric}",
        get(
            |State(st): State<ApiState>,
             Path((ns, pod, a, m)): Path<(String, String, String, String)>,
             Query(p): Params| { aggregated(st, Entity::Pod(ns, pod), a, m, p) },
        ),
    );
    r = both(r, "/namespaces/{ns}/pods/{pod}/containers/", get(list!(containers_of_pod, ns, pod)));
    r = both(
        r,
        "/namespaces/{ns}/pods/{pod}/containers/{container}/metrics/",
        get(|State(st): State<ApiState>, Path((ns, pod, c)): Path<(String, String, String)>| {
            names(st, Entity::PodContainer(ns, pod, c))
        }),
    );
    r = at(
        r,
        "/namespaces/{ns}/pods/{pod}/containers/{container}/metrics/{*metric}",
        get(
            |State(st): State<ApiState>,
             Path((ns, pod, c, m)): Path<(String, String, String, String)>,
             Query(p): Params| { metric(st, Entity::PodContainer(ns, pod, c), m, p) },
        ),
    );
    r = at(
        r,
        "/namespaces/{ns}/pods/{pod}/containers/{container}/metrics-aggregated/{aggregations}/{*metric}",
        get(
            |State(st): State<ApiState>,
             Path((ns, pod, c, a, m)): Path<(String, String, String, String, String)>,
             Query(p): Params| { aggregated(st, Entity::PodContainer(ns, pod, c), a, m, p) },
        ),
    );
    r = at(
        r,
        "/namespaces/{ns}/pod-list/{pods}/metrics/{*metric}",
        get(|State(st): State<ApiState>, Path((ns, pods, m)): Path<(String, String, String)>, p: Params| {
            pod_list_metric(st, ns, pods, m, p)
        }),
    );
    r = at(
        r,
        "/namespaces/{ns}/pod-list/{pods}/metrics-aggregated/{aggregations}/{*metric}",
        get(|State(st): State<ApiState>, Path(path): Path<(String, String, String, String)>, p: Params| {
            pod_list_aggregated(st, path, p)
        }),
    );
    // Heapster's pod-id routes: explained, not served.
    for path in ["/pod-id/{id}/{*rest}", "/pod-id-list/{ids}/{*rest}"] {
        r = at(r, path, get(pod_id));
    }
    r
}
