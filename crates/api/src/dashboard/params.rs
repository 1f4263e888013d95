//! Query strings of the dashboard's endpoints, checked strictly: a misspelt parameter answers 400 naming the
//! parameters that exist, instead of being ignored and leaving the user wondering why the filter does nothing.

use crate::error::ApiError;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;

/// Rows one list request may ask for: a page of 200 rows stays a few tens of kilobytes whatever the cluster size.
pub const MAX_PER_PAGE: usize = 200;
/// Rows per page when the request does not say.
pub const DEFAULT_PER_PAGE: usize = 50;
/// Longest search text or filter value: longer than any Kubernetes name (253), short enough to bound the work.
pub const MAX_TEXT: usize = 256;
/// Highest page number accepted; far past the last page of any cluster, it only keeps the arithmetic small.
const MAX_PAGE: usize = 1_000_000;

/// The raw pairs of a query string, in order, duplicates kept (so that they can be refused).
pub type Pairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// The column a list is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// The set's key: namespace, then pod, then container; or node, then container.
    Name,
    /// Newest `cpu/usage_rate`.
    Cpu,
    /// Newest `memory/working_set`.
    Memory,
}

/// One list request: which page, how sorted, which rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// 1-based.
    pub page: usize,
    pub per_page: usize,
    /// Lowercased; a row matches when any of its names contains it.
    pub search: String,
    pub sort: SortBy,
    pub descending: bool,
    /// Exact filters, for drilling down from a namespace, node or pod to what it holds.
    pub namespace: Option<String>,
    pub node: Option<String>,
    pub pod: Option<String>,
}

impl ListQuery {
    /// Parses `page`, `per_page`, `q`, `sort`, `order`, `namespace`, `node` and `pod`. CPU and memory sort
    /// descending by default (a list sorted by usage is read for its top consumers), names ascending.
    pub fn parse(pairs: Pairs) -> Result<Self, ApiError> {
        Self::parse_up_to(pairs, MAX_PER_PAGE)
    }

    /// As [`ListQuery::parse`], with another cap on `per_page`: a replica asked for its first rows by another
    /// replica (which merges the lists of every replica) sends more than one page.
    pub fn parse_up_to(pairs: Pairs, max_per_page: usize) -> Result<Self, ApiError> {
        let pairs = checked(pairs, &["page", "per_page", "q", "sort", "order", "namespace", "node", "pod"])?;
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let page = number(get("page"), "page", 1, MAX_PAGE, 1)?;
        let per_page = number(get("per_page"), "per_page", 1, max_per_page, DEFAULT_PER_PAGE)?;
        let sort = match get("sort").unwrap_or("name") {
            "name" => SortBy::Name,
            "cpu" => SortBy::Cpu,
            "memory" => SortBy::Memory,
            other => {
                return Err(ApiError::bad_request(format!("sort: unknown column {other:?}, use name, cpu or memory")));
            }
        };
        let descending = match get("order") {
            None | Some("") => sort != SortBy::Name,
            Some("asc") => false,
            Some("desc") => true,
            Some(other) => return Err(ApiError::bad_request(format!("order: {other:?} is neither asc nor desc"))),
        };
        Ok(ListQuery {
            page,
            per_page,
            search: text(get("q"), "q")?.unwrap_or_default().to_lowercase(),
            sort,
            descending,
            namespace: text(get("namespace"), "namespace")?,
            node: text(get("node"), "node")?,
            pod: text(get("pod"), "pod")?,
        })
    }
}

/// The `key` parameter, the only one of `series` and `set`.
pub fn key(pairs: Pairs) -> Result<String, ApiError> {
    let pairs = checked(pairs, &["key"])?;
    match pairs.into_iter().next() {
        Some((_, k)) if !k.is_empty() && k.len() <= 4 * MAX_TEXT => Ok(k),
        Some(_) => Err(ApiError::bad_request(format!("key: must be 1 to {} bytes", 4 * MAX_TEXT))),
        None => Err(ApiError::bad_request("key: missing, e.g. ?key=cluster or ?key=node:NAME")),
    }
}

/// No parameters at all (`overview`).
pub fn none(pairs: Pairs) -> Result<(), ApiError> {
    checked(pairs, &[]).map(drop)
}

/// The pairs, once each parameter is known and given at most once.
pub(crate) fn checked(pairs: Pairs, known: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let Query(pairs) = pairs.map_err(|e| ApiError::bad_request(format!("query string: {}", e.body_text())))?;
    for (i, (name, _)) in pairs.iter().enumerate() {
        if !known.contains(&name.as_str()) {
            let list = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
            return Err(ApiError::bad_request(format!("unknown parameter {name:?}; this endpoint takes: {list}")));
        }
        if pairs[..i].iter().any(|(n, _)| n == name) {
            return Err(ApiError::bad_request(format!("{name}: given twice")));
        }
    }
    Ok(pairs)
}

fn number(raw: Option<&str>, name: &str, min: usize, max: usize, default: usize) -> Result<usize, ApiError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else { return Ok(default) };
    raw.parse::<usize>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| ApiError::bad_request(format!("{name}: {raw:?} is not a whole number from {min} to {max}")))
}

/// A free-text value: empty means absent; too long is refused rather than cut, so a result never silently
/// answers a different question.
fn text(raw: Option<&str>, name: &str) -> Result<Option<String>, ApiError> {
    match raw {
        None | Some("") => Ok(None),
        Some(s) if s.len() > MAX_TEXT => Err(ApiError::bad_request(format!("{name}: longer than {MAX_TEXT} bytes"))),
        Some(s) => Ok(Some(s.to_owned())),
    }
}
