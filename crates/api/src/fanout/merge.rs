//! Which answers are merged how: one rule per kind of route, applied to the JSON every replica sent.
//!
//! The answers arrive in a fixed order, this replica's first, so that "the first one that has it" prefers local
//! data and the merged answer does not flicker between replicas from one request to the next.

use crate::dashboard::params::{ListQuery, SortBy};
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// How the answers of one route combine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Merge {
    /// Name lists (nodes, namespaces, pods, containers, metric names, keys): the sorted union, each name once
    /// (with a replication factor of 2 the same node comes from two replicas).
    Names,
    /// One entity's points: each entity is scraped by one replica (or two with the same values), so the first
    /// answer with points.
    FirstPoints,
    /// Points of a namespace or of the cluster: each replica rolls up only its own pods or nodes, so the points of
    /// a summable metric are added per timestamp; any other metric is taken as [`Merge::FirstPoints`].
    SummedPoints { metric: String },
    /// `pod-list`: item by item, the first answer with points.
    PodList,
    /// A Kubernetes list (NodeMetrics, PodMetrics, Nodes, Pods): the union of items by namespace and name.
    Items,
    /// One object (a NodeMetrics, a PodMetrics, a dashboard set): the first replica that has it (200).
    FirstFound,
    /// The dashboard's figures at the top of the page.
    Overview,
    /// The dashboard's charts of the cluster or a namespace, rolled up per replica: summed per timestamp. (Charts
    /// of any other set are one replica's: [`Merge::FirstFound`].)
    SummedSeries,
    /// A custom metrics MetricValueList of pods or nodes by selector: the union of items by described object.
    MetricValues,
    /// The custom metric of a namespace, which each replica rolls up from its own pods: the values added up.
    /// (Metrics the namespace aggregator does not sum are [`Merge::FirstFound`].)
    SummedMetricValue,
    /// One page of a dashboard list: every replica is asked for its first `page × per_page` rows, which are merged
    /// in the list's order and cut to the page.
    Page(ListQuery),
}

/// The summable metrics: those the namespace and cluster aggregators add up, so the sum of each replica's sums
/// is the sum over the whole cluster.
pub(crate) fn summable(metric: &str) -> bool {
    heapster_processors::namespace_aggregator::DEFAULT_METRICS.contains(&metric)
        || heapster_processors::cluster_aggregator::AGGREGATED.contains(&metric)
}

/// The merged answer; `None` when this replica's answer is not what the rule expects (then it is sent as is).
pub(crate) fn merge(rule: &Merge, answers: Vec<Value>) -> Option<Value> {
    match rule {
        Merge::Names => names(answers),
        Merge::FirstPoints => first_points(answers),
        Merge::SummedPoints { metric } if summable(crate::params::metric_name(metric)) => summed_points(answers),
        Merge::SummedPoints { .. } => first_points(answers),
        Merge::PodList => pod_list(answers),
        Merge::Items => items(answers),
        Merge::FirstFound => answers.into_iter().next(),
        Merge::Overview => overview(answers),
        Merge::SummedSeries => summed_series(answers),
        Merge::Page(q) => page(answers, q),
        Merge::MetricValues => metric_values(answers),
        Merge::SummedMetricValue => summed_metric_value(answers),
    }
}

fn names(answers: Vec<Value>) -> Option<Value> {
    let mut all = BTreeSet::new();
    for a in answers {
        let Value::Array(list) = a else { continue };
        all.extend(list.into_iter().filter_map(|v| match v {
            Value::String(s) => Some(s),
            _ => None,
        }));
    }
    Some(Value::Array(all.into_iter().map(Value::String).collect()))
}

fn has_points(v: &Value) -> bool {
    v["metrics"].as_array().is_some_and(|m| !m.is_empty())
}

fn first_points(answers: Vec<Value>) -> Option<Value> {
    let mut answers = answers.into_iter();
    let local = answers.next()?;
    if has_points(&local) {
        return Some(local);
    }
    Some(answers.find(has_points).unwrap_or(local))
}

/// Milliseconds of an RFC 3339 time, for ordering (the text alone does not sort: `01.5Z` < `01Z`).
fn millis(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}

/// `a + b`, integers staying integers (Heapster's `uint64` values, byte counts).
fn add(a: &Value, b: &Value) -> Value {
    match (a.as_u64(), b.as_u64(), a.as_i64(), b.as_i64()) {
        (Some(x), Some(y), _, _) => Value::from(x.saturating_add(y)),
        (_, _, Some(x), Some(y)) => Value::from(x.saturating_add(y)),
        _ => Value::from(a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0)),
    }
}

/// Adds `value` to the point at `t`, keeping the first answer's spelling of the time.
fn add_point(sums: &mut BTreeMap<i64, (Value, Value)>, t: i64, time: &Value, value: &Value) {
    sums.entry(t).and_modify(|(_, v)| *v = add(v, value)).or_insert_with(|| (time.clone(), value.clone()));
}

fn summed_points(answers: Vec<Value>) -> Option<Value> {
    let mut answers = answers.into_iter();
    let mut out = answers.next()?;
    let mut sums: BTreeMap<i64, (Value, Value)> = BTreeMap::new();
    for a in std::iter::once(&out).chain(answers.as_slice()) {
        for p in a["metrics"].as_array().into_iter().flatten() {
            if let Some(t) = p["timestamp"].as_str().and_then(millis) {
                add_point(&mut sums, t, &p["timestamp"], &p["value"]);
            }
        }
    }
    let latest = sums.values().next_back().map(|(time, _)| time.clone());
    let points: Vec<Value> = sums
        .into_values()
        .map(|(timestamp, value)| {
            Value::Object(Map::from_iter([("timestamp".into(), timestamp), ("value".into(), value)]))
        })
        .collect();
    let o = out.as_object_mut()?;
    o.insert("metrics".into(), Value::Array(points));
    if let Some(latest) = latest {
        o.insert("latestTimestamp".into(), latest);
    }
    Some(out)
}

fn pod_list(answers: Vec<Value>) -> Option<Value> {
    let mut answers = answers.into_iter();
    let mut out = answers.next()?;
    let rest: Vec<Value> = answers.collect();
    let items = out["items"].as_array_mut()?;
    for (i, item) in items.iter_mut().enumerate() {
        if has_points(item) {
            continue;
        }
        if let Some(found) = rest.iter().filter_map(|a| a["items"].get(i)).find(|v| has_points(v)) {
            *item = found.clone();
        }
    }
    Some(out)
}

fn items(answers: Vec<Value>) -> Option<Value> {
    union_by(answers, "metadata")
}

fn metric_values(answers: Vec<Value>) -> Option<Value> {
    union_by(answers, "describedObject")
}

/// The first answer with its `items` replaced by every answer's items, each `(namespace, name)` of the object
/// under `field` once (the first replica's copy), sorted.
fn union_by(answers: Vec<Value>, field: &str) -> Option<Value> {
    let mut answers = answers.into_iter();
    let mut out = answers.next()?;
    out.get("items")?.as_array()?;
    let mut all: BTreeMap<(String, String), Value> = BTreeMap::new();
    for a in std::iter::once(out["items"].take()).chain(answers.map(|mut a| a["items"].take())) {
        let Value::Array(list) = a else { continue };
        for item in list {
            let o = &item[field];
            let id = (o["namespace"].as_str().unwrap_or("").to_owned(), o["name"].as_str().unwrap_or("").to_owned());
            all.entry(id).or_insert(item);
        }
    }
    out["items"] = Value::Array(all.into_values().collect());
    Some(out)
}

/// The sum of each answer's one item's `value` (a Quantity), the newest timestamp; milli-units as every replica
/// sends them.
fn summed_metric_value(answers: Vec<Value>) -> Option<Value> {
    let mut answers = answers.into_iter();
    let mut out = answers.next()?;
    let mut sum = heapster_model::quantity::parse(out["items"].get(0)?["value"].as_str()?)?;
    let mut newest = out["items"][0]["timestamp"].as_str().unwrap_or("").to_owned();
    for a in answers {
        let Some(item) = a["items"].get(0) else { continue };
        sum += item["value"].as_str().and_then(heapster_model::quantity::parse).unwrap_or(0.0);
        newest = newest.max(item["timestamp"].as_str().unwrap_or("").to_owned());
    }
    let milli = (sum * 1000.0).round();
    let milli = if milli.is_finite() { milli as i64 } else { 0 };
    out["items"][0]["value"] = Value::from(heapster_model::quantity::decimal_si(milli, -3));
    out["items"][0]["timestamp"] = Value::from(newest);
    Some(out)
}

fn overview(answers: Vec<Value>) -> Option<Value> {
    let mut answers = answers.into_iter();
    let mut out = answers.next()?;
    out.as_object()?;
    for a in answers {
        // Every replica sees pods of most namespaces: the largest count is closer than the sum.
        out["namespaces"] = Value::from(out["namespaces"].as_u64().max(a["namespaces"].as_u64()).unwrap_or(0));
        for field in ["nodes", "pods", "containers"] {
            out[field] = add(&out[field], &a[field]);
        }
        for field in ["cpu", "memory", "cpuLimit", "memoryLimit"] {
            let theirs = &a["cluster"][field];
            if !theirs.is_null() {
                let mine = &out["cluster"][field];
                out["cluster"][field] = if mine.is_null() { theirs.clone() } else { add(mine, theirs) };
            }
        }
        if a["timestamp"].as_i64() > out["timestamp"].as_i64() {
            out["timestamp"] = a["timestamp"].clone();
        }
    }
    Some(out)
}

fn summed_series(answers: Vec<Value>) -> Option<Value> {
    let mut answers = answers.into_iter();
    let mut out = answers.next()?;
    out.as_object()?;
    let mut per_metric: BTreeMap<String, BTreeMap<i64, (Value, Value)>> = BTreeMap::new();
    let mut from_nodes = BTreeSet::new();
    for a in std::iter::once(&out).chain(answers.as_slice()) {
        let times = a["timestamps"].as_array().map(Vec::as_slice).unwrap_or_default();
        for (metric, values) in a["series"].as_object().into_iter().flatten() {
            let sums = per_metric.entry(metric.clone()).or_default();
            for (t, v) in times.iter().zip(values.as_array().into_iter().flatten()) {
                if let (Some(ms), false) = (t.as_i64(), v.is_null()) {
                    add_point(sums, ms, t, v);
                }
            }
        }
        let named = a["summedFromNodes"].as_array().into_iter().flatten();
        from_nodes.extend(named.filter_map(|v| v.as_str().map(str::to_owned)));
    }
    let timestamps: BTreeSet<i64> = per_metric.values().flat_map(|p| p.keys().copied()).collect();
    let series: Map<String, Value> = per_metric
        .into_iter()
        .map(|(metric, points)| {
            let column = timestamps.iter().map(|t| points.get(t).map_or(Value::Null, |(_, v)| v.clone())).collect();
            (metric, Value::Array(column))
        })
        .collect();
    out["timestamps"] = Value::Array(timestamps.into_iter().map(Value::from).collect());
    out["series"] = Value::Object(series);
    out["summedFromNodes"] = Value::Array(from_nodes.into_iter().map(Value::String).collect());
    Some(out)
}

/// The list's order (see `dashboard::list::order`): the sorted column with rows lacking it last, then the key.
fn page_order(q: &ListQuery, a: &Value, b: &Value) -> Ordering {
    let key = |v: &Value| v["key"].as_str().unwrap_or("").to_owned();
    let column = match q.sort {
        SortBy::Name => {
            let o = key(a).cmp(&key(b));
            return if q.descending { o.reverse() } else { o };
        }
        SortBy::Cpu => "cpu",
        SortBy::Memory => "memory",
    };
    let by_value = match (a[column].as_f64(), b[column].as_f64()) {
        (Some(x), Some(y)) => {
            let o = x.total_cmp(&y);
            if q.descending { o.reverse() } else { o }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    by_value.then_with(|| key(a).cmp(&key(b)))
}

fn page(answers: Vec<Value>, q: &ListQuery) -> Option<Value> {
    let mut answers = answers.into_iter();
    let mut out = answers.next()?;
    out.as_object()?;
    let mut rows: Vec<Value> = Vec::new();
    let mut seen = BTreeSet::new();
    let (mut total, mut all) = (0u64, 0u64);
    let mut timestamp = out["timestamp"].as_i64();
    for mut a in std::iter::once(out.take()).chain(answers) {
        total += a["total"].as_u64().unwrap_or(0);
        all += a["all"].as_u64().unwrap_or(0);
        timestamp = timestamp.max(a["timestamp"].as_i64());
        if let Value::Array(items) = a["items"].take() {
            rows.extend(items.into_iter().filter(|i| seen.insert(i["key"].as_str().unwrap_or("").to_owned())));
        }
        if out.is_null() {
            out = a;
        }
    }
    rows.sort_by(|a, b| page_order(q, a, b));
    let start = (q.page - 1).saturating_mul(q.per_page);
    let items: Vec<Value> = rows.into_iter().skip(start).take(q.per_page).collect();
    out["items"] = Value::Array(items);
    out["total"] = Value::from(total);
    out["all"] = Value::from(all);
    out["timestamp"] = timestamp.map_or(Value::Null, Value::from);
    out["page"] = Value::from(q.page);
    out["perPage"] = Value::from(q.per_page);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_a_sorted_union() {
        let m = merge(&Merge::Names, vec![json!(["b", "a"]), json!(["c", "a"])]).unwrap();
        assert_eq!(m, json!(["a", "b", "c"]));
    }

    #[test]
    fn summable_points_add_per_timestamp_and_others_come_from_the_first_replica_that_has_them() {
        let a = json!({"metrics": [{"timestamp": "2026-01-01T00:00:00Z", "value": 5},
                                   {"timestamp": "2026-01-01T00:00:01.500Z", "value": 1}],
                       "latestTimestamp": "2026-01-01T00:00:01.500Z"});
        let b = json!({"metrics": [{"timestamp": "2026-01-01T00:00:00Z", "value": 7},
                                   {"timestamp": "2026-01-01T00:00:02Z", "value": 2.5}],
                       "latestTimestamp": "2026-01-01T00:00:02Z"});
        let rule = Merge::SummedPoints { metric: "cpu/usage_rate".into() };
        let m = merge(&rule, vec![a.clone(), b.clone()]).unwrap();
        let values: Vec<&Value> = m["metrics"].as_array().unwrap().iter().map(|p| &p["value"]).collect();
        assert_eq!(values, [&json!(12), &json!(1), &json!(2.5)]);
        assert_eq!(m["latestTimestamp"], "2026-01-01T00:00:02Z");
        let other = Merge::SummedPoints { metric: "uptime".into() };
        assert_eq!(merge(&other, vec![json!({"metrics": []}), b.clone()]).unwrap(), b);
    }

    #[test]
    fn items_are_a_union_by_namespace_and_name() {
        let a = json!({"kind": "PodMetricsList", "items": [{"metadata": {"namespace": "x", "name": "p"}, "v": 1}]});
        let b = json!({"kind": "?", "items": [{"metadata": {"namespace": "x", "name": "p"}, "v": 2},
                                               {"metadata": {"namespace": "a", "name": "q"}, "v": 3}]});
        let m = merge(&Merge::Items, vec![a, b]).unwrap();
        assert_eq!(m["kind"], "PodMetricsList");
        assert_eq!(m["items"].as_array().unwrap().iter().map(|i| i["v"].as_i64().unwrap()).collect::<Vec<_>>(), [3, 1]);
    }

    #[test]
    fn metric_values_are_a_union_by_object_and_namespace_values_add_up() {
        let item = |ns: &str, name: &str, v: &str, t: &str| json!({"describedObject": {"kind": "Pod", "namespace": ns, "name": name}, "value": v, "timestamp": t});
        let a = json!({"kind": "MetricValueList", "items": [item("x", "p", "1", "t1")]});
        let b = json!({"kind": "MetricValueList", "items": [item("x", "p", "2", "t1"), item("x", "q", "3", "t1")]});
        let m = merge(&Merge::MetricValues, vec![a.clone(), b.clone()]).unwrap();
        let values: Vec<&str> = m["items"].as_array().unwrap().iter().map(|i| i["value"].as_str().unwrap()).collect();
        assert_eq!(values, ["1", "3"]);
        let ns = |v: &str, t: &str| json!({"kind": "MetricValueList", "items": [item("", "x", v, t)]});
        let m = merge(&Merge::SummedMetricValue, vec![ns("1500m", "t1"), ns("250k", "t2"), ns("2", "t0")]).unwrap();
        assert_eq!(m["items"][0]["value"], "250003500m");
        assert_eq!(m["items"][0]["timestamp"], "t2");
    }

    #[test]
    fn pages_merge_in_the_lists_order() {
        let q = ListQuery::parse(Ok(axum::extract::Query(vec![
            ("sort".into(), "cpu".into()),
            ("per_page".into(), "2".into()),
            ("page".into(), "2".into()),
        ])))
        .unwrap();
        let row = |k: &str, cpu: Option<i64>| json!({"key": k, "cpu": cpu});
        let a = json!({"total": 3, "all": 3, "timestamp": 1, "items": [row("a", Some(5)), row("b", Some(1)), row("c", None)]});
        let b = json!({"total": 2, "all": 2, "timestamp": 2, "items": [row("d", Some(3)), row("a", Some(5))]});
        let m = merge(&Merge::Page(q), vec![a, b]).unwrap();
        let keys: Vec<&str> = m["items"].as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap()).collect();
        assert_eq!(keys, ["b", "c"]);
        assert_eq!((m["total"].as_u64(), m["timestamp"].as_i64(), m["page"].as_u64()), (Some(5), Some(2), Some(2)));
    }
}
