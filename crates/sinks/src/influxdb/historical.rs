//! `--historical_source=influxdb:http://host:8086?db=k8s`: the historical API read back from the database the
//! InfluxDB sink writes, with InfluxQL over `GET /query` (Heapster's `influxdb_historical.go`).
//!
//! The URI takes the sink's syntax and options (the same value as `--sink` works; write-only options such as
//! `retention` or `gzip` are ignored). Only the default schema is read (measurement = metric name, field
//! `value`); `withfields=true`, `schema=legacy` and the 2.x/3.x write API (`token`/`org`/`bucket`) are refused at
//! start-up. With `cluster_name=` given, every query also selects that cluster's points.
//!
//! Unlike Heapster, which refused names outside `[a-zA-Z0-9_.-]` (so `system.slice/docker` could not be asked
//! for), names are quoted: identifiers in `"…"` and values in `'…'` with `\` escapes, which InfluxQL reads back
//! verbatim. Times are inclusive epoch milliseconds (`time >= 1700000000000ms`), the precision points are written
//! with, so the API's bounds are exact.

use super::config::{Api, InfluxdbConfig, OPTIONS, Schema};
use crate::ConfigError;
use crate::util::http;
use async_trait::async_trait;
use heapster_model::catalog::{self, ValueType};
use heapster_model::historical::{AggregatedBucket, Aggregation, Entity, HistoricalError, HistoricalSource, Sample};
use heapster_model::{Labels, MetricValue, Options, SpecUri, Timestamp, labels};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// The InfluxDB reader behind `/api/v1/historical`.
pub struct InfluxdbHistorical {
    client: reqwest::Client,
    config: InfluxdbConfig,
    name: String,
}

impl InfluxdbHistorical {
    /// Parses `--historical_source=influxdb:...`; contacts no server. Errors are one line naming the flag.
    pub fn from_uri(uri: &SpecUri) -> Result<Self, ConfigError> {
        let options = Options::new("--historical_source", uri, OPTIONS)?;
        let config = InfluxdbConfig::from_options(&options)?;
        if matches!(config.api, Api::V2 { .. }) {
            return Err(options.error(
                "the historical API reads with InfluxQL (InfluxDB 1.x /query, db=); token=/org=/bucket= are not \
                 supported",
            ));
        }
        match config.schema {
            Schema::Heapster => {}
            Schema::WithFields => {
                return Err(options.error("withfields=true is not supported: only the default schema is read"));
            }
            Schema::Legacy => {
                return Err(options.error("schema=legacy is not supported: only the default schema is read"));
            }
        }
        let client = http::client(&super::service::client_settings(&config)).map_err(|e| options.error(e))?;
        Ok(InfluxdbHistorical { client, name: config.name(), config })
    }

    fn cluster(&self) -> Option<&str> {
        self.config.cluster_name_set.then_some(self.config.cluster_name.as_str())
    }

    /// Runs `;`-separated statements; one result (its `series`) per statement, or the first error.
    async fn run(&self, q: &str) -> Result<Vec<Vec<Value>>, HistoricalError> {
        let mut url = self.config.url.clone();
        url.set_path(&format!("{}/query", self.config.url.path().trim_end_matches('/')));
        url.set_query(None);
        url.query_pairs_mut().append_pair("db", &self.config.db).append_pair("epoch", "ms").append_pair("q", q);
        let mut req = self.client.get(url);
        if !self.config.user.is_empty() {
            req = req.basic_auth(&self.config.user, Some(&self.config.password));
        }
        tracing::debug!(source = %self.name, "query: {q}");
        let resp = req.send().await.map_err(|e| HistoricalError(format!("InfluxDB unreachable: {e}")))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| HistoricalError(format!("InfluxDB answer cut short: {e}")))?;
        parse_results(status.as_u16(), &text)
    }

    async fn list(&self, q: String) -> Result<Vec<String>, HistoricalError> {
        let results = self.run(&q).await?;
        Ok(column_strings(results.first().map(Vec::as_slice).unwrap_or_default(), "value"))
    }
}

/// The `series` of each statement of an InfluxDB `/query` answer, or its error.
pub fn parse_results(status: u16, text: &str) -> Result<Vec<Vec<Value>>, HistoricalError> {
    let v: Value = serde_json::from_str(text).map_err(|_| {
        HistoricalError(format!("InfluxDB answered {status}: {}", text.trim().chars().take(300).collect::<String>()))
    })?;
    if let Some(e) = v["error"].as_str() {
        return Err(HistoricalError(format!("InfluxDB answered {status}: {e}")));
    }
    let results = v["results"].as_array().ok_or_else(|| HistoricalError(format!("InfluxDB answered {status}: {v}")))?;
    results
        .iter()
        .map(|r| match r["error"].as_str() {
            Some(e) if e.starts_with("database not found") => Ok(Vec::new()),
            Some(e) => Err(HistoricalError(format!("InfluxDB: {e}"))),
            None => Ok(r["series"].as_array().cloned().unwrap_or_default()),
        })
        .collect()
}

/// Every string in column `name` of every series, sorted and without duplicates. Public for the fuzzer
/// (`crates/fuzz`) only.
#[doc(hidden)]
pub fn column_strings(series: &[Value], name: &str) -> Vec<String> {
    let mut out: Vec<String> = series
        .iter()
        .flat_map(|s| {
            let col = s["columns"].as_array().and_then(|c| c.iter().position(|c| c == name));
            let rows = s["values"].as_array().cloned().unwrap_or_default();
            rows.into_iter().filter_map(move |r| r.get(col?)?.as_str().map(str::to_owned))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `"name"`: an InfluxQL identifier, quoted so that names with dashes, dots or slashes work (the sink's
/// `CREATE DATABASE` quotes the database's name with it too).
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `'value'`: an InfluxQL string literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn eq(key: &str, value: &str) -> String {
    format!("{} = {}", ident(key), literal(value))
}

/// The tags that select one entity's own series, as the sink writes them (Heapster's `keyToSelector`).
pub fn selector(entity: &Entity, cluster: Option<&str>) -> String {
    let mut parts = vec![eq(labels::TYPE, entity.set_type().as_str())];
    match entity {
        Entity::Cluster => {}
        Entity::Node(n) => parts.push(eq(labels::NODENAME, n)),
        Entity::FreeContainer(n, c) => {
            parts.push(eq(labels::NODENAME, n));
            parts.push(eq(labels::CONTAINER_NAME, c));
        }
        Entity::Namespace(ns) => parts.push(eq(labels::NAMESPACE_NAME, ns)),
        Entity::Pod(ns, p) => {
            parts.push(eq(labels::NAMESPACE_NAME, ns));
            parts.push(eq(labels::POD_NAME, p));
        }
        Entity::PodContainer(ns, p, c) => {
            parts.push(eq(labels::NAMESPACE_NAME, ns));
            parts.push(eq(labels::POD_NAME, p));
            parts.push(eq(labels::CONTAINER_NAME, c));
        }
    }
    if let Some(c) = cluster {
        parts.push(eq(labels::CLUSTER_NAME, c));
    }
    parts.join(" AND ")
}

/// The `WHERE` of a metric query: entity, labels, inclusive time range.
fn predicate(
    entity: &Entity,
    labels: Option<&Labels>,
    cluster: Option<&str>,
    start: Timestamp,
    end: Timestamp,
) -> String {
    let mut p = selector(entity, cluster);
    for (k, v) in labels.into_iter().flatten() {
        p.push_str(" AND ");
        p.push_str(&eq(k, v));
    }
    p.push_str(&format!(" AND time >= {start}ms AND time <= {end}ms"));
    p
}

/// The raw values of `metric` for `entity` (Heapster's `composeRawQuery`).
pub fn raw_query(
    metric: &str,
    labels: Option<&Labels>,
    entity: &Entity,
    cluster: Option<&str>,
    start: Timestamp,
    end: Timestamp,
) -> String {
    format!("SELECT \"value\" FROM {} WHERE {}", ident(metric), predicate(entity, labels, cluster, start, end))
}

/// The InfluxQL call of one aggregation (Heapster's `aggregationFunc`).
pub fn aggregation_call(a: Aggregation) -> &'static str {
    match a {
        Aggregation::Average => "MEAN(\"value\")",
        Aggregation::Max => "MAX(\"value\")",
        Aggregation::Min => "MIN(\"value\")",
        Aggregation::Median => "MEDIAN(\"value\")",
        Aggregation::Count => "COUNT(\"value\")",
        Aggregation::Percentile50 => "PERCENTILE(\"value\", 50)",
        Aggregation::Percentile95 => "PERCENTILE(\"value\", 95)",
        Aggregation::Percentile99 => "PERCENTILE(\"value\", 99)",
    }
}

/// Aggregations of `metric` for `entity`, per bucket (Heapster's `composeAggregateQuery`). `fill(none)` leaves out
/// buckets without points; InfluxDB aligns buckets to multiples of their size since the epoch.
#[allow(clippy::too_many_arguments)]
pub fn aggregate_query(
    metric: &str,
    labels: Option<&Labels>,
    aggregations: &[Aggregation],
    entity: &Entity,
    cluster: Option<&str>,
    start: Timestamp,
    end: Timestamp,
    bucket: Option<Duration>,
) -> String {
    let calls: Vec<&str> = aggregations.iter().map(|a| aggregation_call(*a)).collect();
    let mut q = format!(
        "SELECT {} FROM {} WHERE {}",
        calls.join(", "),
        ident(metric),
        predicate(entity, labels, cluster, start, end)
    );
    if let Some(b) = bucket {
        q.push_str(&format!(" GROUP BY time({}ms) fill(none)", b.as_millis()));
    }
    q
}

/// The measurements holding points of `entity` (Heapster's `GetMetricNames`).
pub fn names_query(entity: &Entity, cluster: Option<&str>) -> String {
    format!("SHOW MEASUREMENTS WHERE {}", selector(entity, cluster))
}

/// Whether `metric`'s values are integers: the catalog says (as it does for the sink, which writes `42i` for
/// integer metrics); for a metric outside it, the JSON number does.
fn int_metric(metric: &str) -> Option<bool> {
    catalog::find(metric).map(|d| d.value_type == ValueType::Int64)
}

fn value_of(v: &Value, int: Option<bool>) -> Option<MetricValue> {
    match int {
        Some(true) => v.as_i64().or_else(|| v.as_f64().map(|f| f.round() as i64)).map(MetricValue::Int),
        Some(false) => v.as_f64().map(MetricValue::Float),
        None => v.as_i64().map(MetricValue::Int).or_else(|| v.as_f64().map(MetricValue::Float)),
    }
}

/// The rows of every series of one statement: `[time_ms, columns...]`, sorted by time.
fn rows(series: &[Value]) -> Vec<Vec<Value>> {
    let mut out: Vec<Vec<Value>> = series
        .iter()
        .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r.as_array().cloned())
        .filter(|r| r.first().is_some_and(Value::is_i64))
        .collect();
    out.sort_by_key(|r| r[0].as_i64());
    out
}

/// Raw values of one statement's series.
pub fn parse_samples(series: &[Value], metric: &str) -> Vec<Sample> {
    let int = int_metric(metric);
    rows(series)
        .into_iter()
        .filter_map(|r| Some(Sample { timestamp: r[0].as_i64()?, value: value_of(r.get(1)?, int)? }))
        .collect()
}

/// Aggregation rows of one statement's series: column `i + 1` holds `aggregations[i]`. Average and median are
/// fractions; count a whole number; max, min and percentiles pick stored values and keep the metric's type.
/// Without a bucket, the single bucket starts at `start` (InfluxDB reports the time of the selected point when
/// one selector is asked alone).
pub fn parse_buckets(
    series: &[Value],
    metric: &str,
    aggregations: &[Aggregation],
    start: Timestamp,
    bucket: Option<Duration>,
) -> Vec<AggregatedBucket> {
    let int = int_metric(metric);
    rows(series)
        .into_iter()
        .map(|r| {
            let mut b = AggregatedBucket {
                timestamp: if bucket.is_some() { r[0].as_i64().unwrap_or(start) } else { start },
                count: None,
                values: BTreeMap::new(),
            };
            for (i, a) in aggregations.iter().enumerate() {
                let Some(v) = r.get(i + 1).filter(|v| !v.is_null()) else { continue };
                match a {
                    Aggregation::Count => b.count = v.as_u64(),
                    Aggregation::Average | Aggregation::Median => {
                        if let Some(f) = v.as_f64() {
                            b.values.insert(*a, MetricValue::Float(f));
                        }
                    }
                    _ => {
                        if let Some(mv) = value_of(v, int) {
                            b.values.insert(*a, mv);
                        }
                    }
                }
            }
            b
        })
        .collect()
}

#[async_trait]
impl HistoricalSource for InfluxdbHistorical {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn metric_names(&self, entity: &Entity) -> Result<Vec<String>, HistoricalError> {
        let results = self.run(&names_query(entity, self.cluster())).await?;
        Ok(column_strings(results.first().map(Vec::as_slice).unwrap_or_default(), "name"))
    }

    async fn values(
        &self,
        metric: &str,
        labels: Option<&Labels>,
        entities: &[Entity],
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<Vec<Sample>>, HistoricalError> {
        let q: Vec<String> =
            entities.iter().map(|e| raw_query(metric, labels, e, self.cluster(), start, end)).collect();
        let results = self.run(&q.join("; ")).await?;
        Ok((0..entities.len()).map(|i| results.get(i).map(|s| parse_samples(s, metric)).unwrap_or_default()).collect())
    }

    async fn aggregations(
        &self,
        metric: &str,
        labels: Option<&Labels>,
        aggregations: &[Aggregation],
        entities: &[Entity],
        start: Timestamp,
        end: Timestamp,
        bucket: Option<Duration>,
    ) -> Result<Vec<Vec<AggregatedBucket>>, HistoricalError> {
        let q: Vec<String> = entities
            .iter()
            .map(|e| aggregate_query(metric, labels, aggregations, e, self.cluster(), start, end, bucket))
            .collect();
        let results = self.run(&q.join("; ")).await?;
        Ok((0..entities.len())
            .map(|i| results.get(i).map(|s| parse_buckets(s, metric, aggregations, start, bucket)).unwrap_or_default())
            .collect())
    }

    async fn nodes(&self) -> Result<Vec<String>, HistoricalError> {
        let q = format!(
            "SHOW TAG VALUES WITH KEY = {} WHERE {}",
            ident(labels::NODENAME),
            type_selector("node", self.cluster())
        );
        self.list(q).await
    }

    async fn namespaces(&self) -> Result<Vec<String>, HistoricalError> {
        let q = format!(
            "SHOW TAG VALUES WITH KEY = {} WHERE {}",
            ident(labels::NAMESPACE_NAME),
            type_selector("ns", self.cluster())
        );
        self.list(q).await
    }

    async fn pods_of_namespace(&self, namespace: &str) -> Result<Vec<String>, HistoricalError> {
        let q = format!(
            "SHOW TAG VALUES WITH KEY = {} WHERE {} AND {}",
            ident(labels::POD_NAME),
            type_selector("pod", self.cluster()),
            eq(labels::NAMESPACE_NAME, namespace)
        );
        self.list(q).await
    }

    async fn containers_of_pod(&self, namespace: &str, pod: &str) -> Result<Vec<String>, HistoricalError> {
        let q = format!(
            "SHOW TAG VALUES WITH KEY = {} WHERE {} AND {} AND {}",
            ident(labels::CONTAINER_NAME),
            type_selector("pod_container", self.cluster()),
            eq(labels::NAMESPACE_NAME, namespace),
            eq(labels::POD_NAME, pod)
        );
        self.list(q).await
    }

    async fn free_containers_of_node(&self, node: &str) -> Result<Vec<String>, HistoricalError> {
        let q = format!(
            "SHOW TAG VALUES WITH KEY = {} WHERE {} AND {}",
            ident(labels::CONTAINER_NAME),
            type_selector("sys_container", self.cluster()),
            eq(labels::NODENAME, node)
        );
        self.list(q).await
    }
}

/// `"type" = 't'`, and the cluster when one is selected.
fn type_selector(set_type: &str, cluster: Option<&str>) -> String {
    let mut s = eq(labels::TYPE, set_type);
    if let Some(c) = cluster {
        s.push_str(" AND ");
        s.push_str(&eq(labels::CLUSTER_NAME, c));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node() -> Entity {
        Entity::Node("n1".into())
    }

    #[test]
    fn raw_queries_select_the_entity_its_labels_and_an_inclusive_range() {
        assert_eq!(
            raw_query("memory/usage", None, &node(), None, 1_000, 2_500),
            "SELECT \"value\" FROM \"memory/usage\" WHERE \"type\" = 'node' AND \"nodename\" = 'n1' \
             AND time >= 1000ms AND time <= 2500ms"
        );
        let labels: Labels = [("resource_id".to_owned(), "/dev/sda1".to_owned())].into();
        let c = Entity::PodContainer("kube-system".into(), "dns-1".into(), "dns".into());
        assert_eq!(
            raw_query("filesystem/usage", Some(&labels), &c, Some("prod"), 0, 1),
            "SELECT \"value\" FROM \"filesystem/usage\" WHERE \"type\" = 'pod_container' \
             AND \"namespace_name\" = 'kube-system' AND \"pod_name\" = 'dns-1' AND \"container_name\" = 'dns' \
             AND \"cluster_name\" = 'prod' AND \"resource_id\" = '/dev/sda1' AND time >= 0ms AND time <= 1ms"
        );
    }

    #[test]
    fn every_entity_has_its_selector() {
        assert_eq!(selector(&Entity::Cluster, None), "\"type\" = 'cluster'");
        assert_eq!(selector(&Entity::Namespace("a".into()), None), "\"type\" = 'ns' AND \"namespace_name\" = 'a'");
        assert_eq!(
            selector(&Entity::Pod("a".into(), "p".into()), None),
            "\"type\" = 'pod' AND \"namespace_name\" = 'a' AND \"pod_name\" = 'p'"
        );
        assert_eq!(
            selector(&Entity::FreeContainer("n".into(), "system.slice/docker".into()), None),
            "\"type\" = 'sys_container' AND \"nodename\" = 'n' AND \"container_name\" = 'system.slice/docker'"
        );
    }

    #[test]
    fn names_are_quoted_not_refused() {
        // An attempt to close the string and add a statement stays inside the literal.
        let evil = Entity::Node("x' OR 1=1; DROP DATABASE \"k8s\" --\\".into());
        assert_eq!(selector(&evil, None), r#""type" = 'node' AND "nodename" = 'x\' OR 1=1; DROP DATABASE "k8s" --\\'"#);
        assert_eq!(ident("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            raw_query("m\"; DROP", None, &Entity::Cluster, None, 0, 0),
            r#"SELECT "value" FROM "m\"; DROP" WHERE "type" = 'cluster' AND time >= 0ms AND time <= 0ms"#
        );
    }

    #[test]
    fn aggregate_queries_as_heapster_composed_them() {
        assert_eq!(
            aggregate_query(
                "cpu/usage_rate",
                None,
                &Aggregation::ALL,
                &node(),
                None,
                60_000,
                120_000,
                Some(Duration::from_secs(10))
            ),
            "SELECT MEAN(\"value\"), MAX(\"value\"), MIN(\"value\"), MEDIAN(\"value\"), COUNT(\"value\"), \
             PERCENTILE(\"value\", 50), PERCENTILE(\"value\", 95), PERCENTILE(\"value\", 99) FROM \"cpu/usage_rate\" \
             WHERE \"type\" = 'node' AND \"nodename\" = 'n1' AND time >= 60000ms AND time <= 120000ms \
             GROUP BY time(10000ms) fill(none)"
        );
        assert_eq!(
            aggregate_query("uptime", None, &[Aggregation::Count], &Entity::Cluster, None, 5, 6, None),
            "SELECT COUNT(\"value\") FROM \"uptime\" WHERE \"type\" = 'cluster' AND time >= 5ms AND time <= 6ms"
        );
        assert_eq!(
            names_query(&node(), Some("c")),
            "SHOW MEASUREMENTS WHERE \"type\" = 'node' AND \"nodename\" = 'n1' AND \"cluster_name\" = 'c'"
        );
    }

    #[test]
    fn answers_parse_with_the_metric_types() {
        let answer = json!({"results": [
            {"statement_id": 0, "series": [{"name": "memory/usage", "columns": ["time", "value"],
                "values": [[2000, 7], [1000, 5]]}]},
            {"statement_id": 1},
            {"statement_id": 2, "error": "database not found: k8s"}
        ]});
        let r = parse_results(200, &answer.to_string()).unwrap();
        assert_eq!(r.len(), 3);
        let s = parse_samples(&r[0], "memory/usage");
        assert_eq!(
            s,
            [
                Sample { timestamp: 1000, value: MetricValue::Int(5) },
                Sample { timestamp: 2000, value: MetricValue::Int(7) }
            ]
        );
        // A float metric whose value happens to be whole comes back as a JSON integer: still a float.
        assert_eq!(parse_samples(&r[0], "network/rx_rate")[0].value, MetricValue::Float(5.0));
        assert_eq!(parse_samples(&r[0], "custom/x")[0].value, MetricValue::Int(5));
        assert!(r[1].is_empty() && r[2].is_empty());

        let e = parse_results(200, r#"{"results":[{"statement_id":0,"error":"error parsing query: bad"}]}"#);
        assert_eq!(e.unwrap_err().0, "InfluxDB: error parsing query: bad");
        let e = parse_results(401, r#"{"error":"authorization failed"}"#).unwrap_err();
        assert_eq!(e.0, "InfluxDB answered 401: authorization failed");
        assert!(parse_results(502, "<html>bad gateway</html>").unwrap_err().0.contains("502"));
    }

    #[test]
    fn buckets_parse_by_column_position() {
        let aggs = [Aggregation::Average, Aggregation::Max, Aggregation::Count, Aggregation::Percentile95];
        let series = json!([{"name": "memory/usage", "columns": ["time", "mean", "max", "count", "percentile"],
            "values": [[4000, 6.5, 8, 2, 8], [0, 5, 5, 1, null]]}]);
        let series = series.as_array().unwrap();
        let b = parse_buckets(series, "memory/usage", &aggs, 1, Some(Duration::from_secs(4)));
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].timestamp, b[0].count), (0, Some(1)));
        assert_eq!(b[0].values[&Aggregation::Average], MetricValue::Float(5.0));
        assert!(!b[0].values.contains_key(&Aggregation::Percentile95), "null is absent");
        assert_eq!((b[1].timestamp, b[1].count), (4000, Some(2)));
        assert_eq!(b[1].values[&Aggregation::Max], MetricValue::Int(8));
        assert_eq!(b[1].values[&Aggregation::Percentile95], MetricValue::Int(8));
        // One bucket: it starts at the range's start, whatever time InfluxDB reports.
        let one = parse_buckets(&series[..], "memory/usage", &aggs, 1234, None);
        assert_eq!(one[0].timestamp, 1234);
    }

    #[test]
    fn only_the_default_1x_schema_is_read() {
        let build = |s: &str| InfluxdbHistorical::from_uri(&s.parse().unwrap());
        let ok = build("influxdb:http://h:8086?db=k8s&pw=secret&retention=7d&cluster_name=prod").ok().unwrap();
        assert_eq!(ok.name(), "influxdb:http://h:8086/?db=k8s");
        assert_eq!(ok.cluster(), Some("prod"));
        assert_eq!(build("influxdb:http://h:8086").ok().unwrap().cluster(), None);
        for (uri, says) in [
            ("influxdb:http://h?withfields=true", "withfields=true is not supported"),
            ("influxdb:http://h?schema=legacy", "schema=legacy is not supported"),
            ("influxdb:http://h?token=t&bucket=b", "token=/org=/bucket= are not supported"),
            ("influxdb:http://h?dbname=x&pw=hunter2", "unknown influxdb option"),
        ] {
            let e = build(uri).err().unwrap().to_string();
            assert!(e.starts_with("--historical_source=influxdb:") && e.contains(says), "{uri}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
