//! `/api/v1/dashboard/{nodes,namespaces,pods,containers}`: one page of a list, searched, filtered and sorted on the
//! server, so the browser receives at most [`MAX_PER_PAGE`](super::params::MAX_PER_PAGE) rows whatever the size of
//! the cluster.

use super::params::{ListQuery, Pairs, SortBy};
use super::rows::{self, Kind, Row, Rows};
use crate::ApiState;
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use heapster_model::{Labels, MetricSetType, MetricValue, Timestamp};
use heapster_store::Store;
use serde::Serialize;
use std::cmp::Ordering;
use std::sync::Arc;

/// One page of a list.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    /// Which list: the page checks it answers the request it made.
    pub kind: &'static str,
    /// The store's newest batch the values come from; `null` before the first batch.
    pub timestamp: Option<Timestamp>,
    /// Rows matching the search and filters (all pages).
    pub total: usize,
    /// Rows of this kind before searching and filtering.
    pub all: usize,
    /// The request's page and page size, echoed so the pager needs no state of its own.
    pub page: usize,
    pub per_page: usize,
    pub items: Vec<Item>,
}

/// One row of a page: names for display and links, the newest values for the columns.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// The store key: what the page links to and asks `series` and `set` about.
    pub key: String,
    #[serde(rename = "type")]
    pub set_type: &'static str,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Newest `cpu/usage_rate`, millicores.
    pub cpu: Option<MetricValue>,
    /// Newest `memory/working_set`, bytes.
    pub memory: Option<MetricValue>,
    /// Newest `network/rx_rate` and `network/tx_rate`, bytes per second.
    pub rx_rate: Option<MetricValue>,
    pub tx_rate: Option<MetricValue>,
    /// Newest `filesystem/usage`, summed over the set's filesystems, bytes.
    pub filesystem: Option<MetricValue>,
}

/// `/api/v1/dashboard/nodes`: one handler per list, so a misspelt list is the router's 404, not a parameter.
pub async fn nodes(st: State<ApiState>, h: HeaderMap, q: Pairs) -> Result<Json<Page>, ApiError> {
    list(st, h, q, Kind::Nodes).await
}

/// `/api/v1/dashboard/namespaces`.
pub async fn namespaces(st: State<ApiState>, h: HeaderMap, q: Pairs) -> Result<Json<Page>, ApiError> {
    list(st, h, q, Kind::Namespaces).await
}

/// `/api/v1/dashboard/pods`.
pub async fn pods(st: State<ApiState>, h: HeaderMap, q: Pairs) -> Result<Json<Page>, ApiError> {
    list(st, h, q, Kind::Pods).await
}

/// `/api/v1/dashboard/containers`: pod containers and system containers together, as a standalone heapster has
/// only the latter.
pub async fn containers(st: State<ApiState>, h: HeaderMap, q: Pairs) -> Result<Json<Page>, ApiError> {
    list(st, h, q, Kind::Containers).await
}

async fn list(State(st): State<ApiState>, headers: HeaderMap, q: Pairs, kind: Kind) -> Result<Json<Page>, ApiError> {
    // Another replica merging every replica's rows asks for its first `page × per_page` at once.
    let max = match headers.contains_key(crate::fanout::LOCAL_HEADER) {
        true => crate::fanout::MAX_FANOUT_ROWS,
        false => super::params::MAX_PER_PAGE,
    };
    let query = ListQuery::parse_up_to(q, max)?;
    Ok(Json(super::blocking(move || page(&st.store, kind, &query)).await?))
}

/// The page `query` asks for, from the rows of the store's newest batch.
pub fn page(store: &Arc<Store>, kind: Kind, query: &ListQuery) -> Page {
    let snapshot = rows::snapshot(store);
    let rows = snapshot.rows(kind);
    let picked = select(store, rows, query);
    Page {
        kind: kind.as_str(),
        timestamp: snapshot.timestamp,
        total: picked.total,
        all: rows.rows.len(),
        page: query.page,
        per_page: query.per_page,
        items: picked.rows.into_iter().map(|i| item(store, rows, i)).collect(),
    }
}

/// The row indices of one page and how many rows matched in all.
pub struct Selection {
    pub total: usize,
    /// Indices into the list's rows, in page order.
    pub rows: Vec<usize>,
}

/// Filters, then sorts only as far as the page needs: the rows on the near side of the page are partitioned from
/// the rest in linear time and only they are sorted, so page 1 (or the last page) of 150,000 pods sorts 50 rows,
/// not 150,000.
pub fn select(store: &Store, rows: &Rows, q: &ListQuery) -> Selection {
    let mut hits: Vec<usize> = (0..rows.rows.len()).filter(|&i| matches(&rows.rows[i], q)).collect();
    let total = hits.len();
    let start = (q.page - 1).saturating_mul(q.per_page);
    if start >= total {
        return Selection { total, rows: Vec::new() };
    }
    let end = start.saturating_add(q.per_page).min(total);
    let column = match q.sort {
        SortBy::Name => None,
        SortBy::Cpu => Some(rows.cpu(store)),
        SortBy::Memory => Some(rows.memory(store)),
    };
    let cmp = |&a: &usize, &b: &usize| order(column, a, b, q.descending);
    if end <= total - start {
        if end < total {
            hits.select_nth_unstable_by(end, cmp);
            hits.truncate(end);
        }
        hits.sort_unstable_by(cmp);
        hits.drain(..start);
    } else {
        if start > 0 {
            hits.select_nth_unstable_by(start, cmp);
            hits.drain(..start);
        }
        hits.sort_unstable_by(cmp);
        hits.truncate(end - start);
    }
    Selection { total, rows: hits }
}

fn matches(r: &Row, q: &ListQuery) -> bool {
    let eq = |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| have == Some(w));
    eq(&q.namespace, r.namespace()) && eq(&q.node, r.node()) && eq(&q.pod, r.pod()) && r.mentions(&q.search)
}

/// A total order on row indices: the column, rows without a value last in either direction, then the key
/// ascending so that equal values page stably. Rows are sorted by key, so the key order is the index order.
fn order(column: Option<&[Option<MetricValue>]>, a: usize, b: usize, descending: bool) -> Ordering {
    let Some(column) = column else {
        return if descending { b.cmp(&a) } else { a.cmp(&b) };
    };
    let by_value = match (column[a], column[b]) {
        (Some(x), Some(y)) => {
            let o = x.as_f64().total_cmp(&y.as_f64());
            if descending { o.reverse() } else { o }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    by_value.then(a.cmp(&b))
}

/// A row with what is read only for the rows shown: network, filesystem, a pod's node as labelled now, and CPU
/// and memory unless the page was sorted by them (then the values it was sorted by).
fn item(store: &Store, rows: &Rows, i: usize) -> Item {
    let r = &rows.rows[i];
    let none = Labels::new();
    let latest = |metric: &str| store.latest(&r.key, metric, &none).map(|p| p.value);
    let node = match r.set_type {
        MetricSetType::Pod | MetricSetType::PodContainer => rows::node_label(store, &r.key),
        _ => None,
    };
    Item {
        key: r.key.to_string(),
        set_type: r.set_type.as_str(),
        name: r.name().to_owned(),
        namespace: r.namespace().map(str::to_owned),
        pod: r.pod().map(str::to_owned),
        node: node.or_else(|| r.node().map(str::to_owned)),
        cpu: rows.cpu_if_read().map_or_else(|| latest(rows::CPU), |c| c[i]),
        memory: rows.memory_if_read().map_or_else(|| latest(rows::MEMORY), |c| c[i]),
        rx_rate: latest("network/rx_rate"),
        tx_rate: latest("network/tx_rate"),
        filesystem: filesystem(store, &r.key),
    }
}

/// Newest `filesystem/usage` over every filesystem (`resource_id`) of the set, so a node with two disks shows one
/// figure; the charts show the same sum.
fn filesystem(store: &Store, key: &str) -> Option<MetricValue> {
    let newest: Vec<_> = store
        .series_labels(key, "filesystem/usage")
        .iter()
        .filter_map(|labels| store.latest(key, "filesystem/usage", labels))
        .collect();
    let last = newest.iter().map(|p| p.timestamp).max()?;
    Some(super::series::sum(newest.iter().filter(|p| p.timestamp == last).map(|p| p.value)))
}
