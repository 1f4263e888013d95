//! The governor on hand-made batches: options, the cut rule, merging, its self-metrics and its report, and the
//! manager handing a governed sink what its governor cut.

use crate::governor::{Governor, GovernorConfig, OPTIONS};
use crate::{DataSink, SinkError, SinkManager, SinkManagerConfig, SinkMetrics};
use heapster_model::{DataBatch, Labels, MetricSet, MetricSetType, MetricValue, SpecUri};
use prometheus_client::registry::Registry;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn config(query: &str) -> GovernorConfig {
    let uri: SpecUri = format!("log?{query}").parse().unwrap();
    GovernorConfig::take(&uri, &[]).unwrap().0.expect("governor options")
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A set of `kind` with `labels`, three metrics and one labelled filesystem metric: four series.
fn set(kind: MetricSetType, pairs: &[(&str, &str)]) -> MetricSet {
    let mut s = MetricSet { labels: labels(pairs), ..Default::default() };
    s.set_kind(kind);
    s.set("cpu/usage", MetricValue::Int(1));
    s.set("memory/usage", MetricValue::Int(2));
    s.set("uptime", MetricValue::Int(3));
    s.add_labeled("filesystem/usage", labels(&[("resource_id", "/")]), MetricValue::Int(4));
    s
}

/// A cluster, one node and pods `pods` (each with its own build id in `labels`), at time `ts`.
fn batch(ts: i64, pods: impl IntoIterator<Item = usize>) -> Arc<DataBatch> {
    let mut b = DataBatch { timestamp: ts, ..Default::default() };
    b.sets.insert("cluster".into(), set(MetricSetType::Cluster, &[]));
    b.sets.insert("node:n1".into(), set(MetricSetType::Node, &[("nodename", "n1")]));
    for p in pods {
        let (name, build) = (format!("p{p}"), format!("app:web,build:b{p}"));
        let pairs = [("pod_name", name.as_str()), ("namespace_name", "ns"), ("labels", build.as_str())];
        b.sets.insert(format!("namespace:ns/pod:{name}"), set(MetricSetType::Pod, &pairs));
    }
    Arc::new(b)
}

/// Every series of a batch as text: `metric{k=v,...}`, the set's labels then the metric's.
fn series(b: &DataBatch) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for s in b.sets.values() {
        let l = |x: &Labels| x.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        for (name, _) in &s.metrics {
            out.insert(format!("{name}{{{}}}", l(&s.labels)));
        }
        for m in &s.labeled_metrics {
            out.insert(format!("{}{{{},{}}}", m.name, l(&s.labels), l(&m.labels)));
        }
    }
    out
}

fn pods_of(b: &DataBatch) -> BTreeSet<String> {
    b.sets.keys().filter(|k| k.contains("/pod:")).cloned().collect()
}

/// A governor on a registry of the test's own, and the registry's text.
struct Fixture {
    governor: Governor,
    registry: Registry,
}

impl Fixture {
    fn new(query: &str) -> Fixture {
        let mut registry = Registry::default();
        let metrics = SinkMetrics::register(&mut registry);
        Fixture { governor: Governor::new("s", config(query), metrics), registry }
    }

    fn text(&self) -> String {
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, &self.registry).unwrap();
        s
    }

    /// The value of the sample named `series` exactly (name and labels); 0 when absent.
    fn sample(&self, series: &str) -> f64 {
        self.text()
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
            .map_or(0.0, |v| v.parse().unwrap())
    }

    /// The sum of every sample of family `name`.
    fn sum(&self, name: &str) -> f64 {
        self.text()
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    }
}

#[test]
fn options_are_taken_out_of_the_uri_and_checked() {
    let uri: SpecUri = "influxdb:http://h:8086?db=k8s&max_series=10&labels_deny=pod_id,+labels&pw=x".parse().unwrap();
    let (c, rest) = GovernorConfig::take(&uri, &[]).unwrap();
    let c = c.unwrap();
    assert_eq!(c.max_series, Some(10));
    assert_eq!(c.labels_deny, ["pod_id", "labels"]);
    assert_eq!((c.labels_allow, c.max_series_per_metric), (None, None));
    assert_eq!(rest.to_string(), "influxdb:http://h:8086?db=k8s&pw=x");
    assert_eq!(GovernorConfig::take(&"log?x=1".parse().unwrap(), &[]).unwrap().0, None);
    let secret = crate::influxdb::KIND.doc.options;
    let e = GovernorConfig::take(&"influxdb:http://h?pw=hunter2&max_series=0".parse().unwrap(), secret);
    let e = e.err().unwrap().to_string();
    assert_eq!(e, "--sink=influxdb:http://h?pw=***&max_series=0: max_series=\"0\": expected a whole number above 0");
    assert!(crate::build(&"log?max_series_per_metric=x".parse().unwrap(), &SinkMetrics::detached()).is_err());
}

#[test]
fn every_sink_takes_the_options_and_keeps_its_name() {
    let m = SinkMetrics::detached();
    let s = crate::build(&"influxdb:http://h:8086?max_series=5&labels_allow=type".parse().unwrap(), &m).unwrap();
    assert_eq!(s.name(), "influxdb:http://h:8086/?db=k8s");
    let c = s.governor().unwrap();
    assert_eq!((c.max_series, c.labels_allow.clone()), (Some(5), Some(vec!["type".to_owned()])));
    assert!(crate::build(&"log".parse().unwrap(), &m).unwrap().governor().is_none());
    // The sink's own options are still checked: an unknown one is refused.
    assert!(crate::build(&"log?max_series=5&nope=1".parse().unwrap(), &m).is_err());
    let h = crate::help();
    for o in OPTIONS {
        assert!(h.contains(&format!("{}=", o.name)), "{h}");
    }
}

#[test]
fn under_budget_the_batch_passes_untouched() {
    let mut f = Fixture::new("max_series=1000");
    let b = batch(1, 0..5);
    let out = f.governor.govern(&b);
    assert!(Arc::ptr_eq(&b, &out));
    assert_eq!(f.sample("heapster_sink_series_offered{sink=\"s\"}"), 28.0);
    assert_eq!(f.sample("heapster_sink_series_written{sink=\"s\"}"), 28.0);
    assert_eq!(f.sum("heapster_sink_series_cut_total"), 0.0);
}

/// The budget keeps the cluster and node first, then whole pods; the same ones every round, and a new pod (a new
/// build id) does not evict an old one.
#[test]
fn over_budget_the_same_series_are_cut_every_round() {
    let mut f = Fixture::new("max_series=20");
    let first = f.governor.govern(&batch(1, 0..10));
    assert_eq!(series(&first).len(), 20);
    assert!(first.sets.contains_key("cluster") && first.sets.contains_key("node:n1"));
    assert_eq!(first.sets["cluster"].metrics.len() + first.sets["cluster"].labeled_metrics.len(), 4);
    // 8 series of cluster and node, then 3 whole pods of 4 series.
    let pods = pods_of(&first);
    assert_eq!(pods.len(), 3, "{pods:?}");
    for p in &pods {
        assert_eq!(first.sets[p].metrics.len() + first.sets[p].labeled_metrics.len(), 4, "{p}");
    }
    assert_eq!(f.sum("heapster_sink_series_cut_total"), 28.0);
    for round in 2..5 {
        let out = f.governor.govern(&batch(round, 0..10));
        assert_eq!(series(&out), series(&first), "round {round}");
        assert_eq!(f.sum("heapster_sink_series_cut_total"), 28.0 * round as f64);
    }
    // Ten new pods come (new build ids): the admitted ones stay.
    let out = f.governor.govern(&batch(9, 0..20));
    assert_eq!(pods_of(&out), pods);
    // One admitted pod goes: its place goes to a pod of the same level, and the others stay.
    let gone = pods.iter().next().unwrap().clone();
    let rest: Vec<usize> = (0..20).filter(|i| format!("namespace:ns/pod:p{i}") != gone).collect();
    let out = f.governor.govern(&batch(10, rest.clone()));
    let now = pods_of(&out);
    assert_eq!(now.len(), 3);
    assert!(pods.iter().filter(|p| **p != gone).all(|p| now.contains(p)), "{now:?}");
    // And it stays chosen.
    assert_eq!(pods_of(&f.governor.govern(&batch(11, rest))), now);
    assert_eq!(f.sample("heapster_sink_governor_rounds_total{sink=\"s\"}"), 7.0);
}

/// The choice depends on the series only, not on the round or the order they arrive in.
#[test]
fn two_governors_cut_alike() {
    let mut a = Fixture::new("max_series=30");
    let mut b = Fixture::new("max_series=30");
    let x = a.governor.govern(&batch(1, 0..40));
    let y = b.governor.govern(&batch(7, (0..40).rev()));
    assert_eq!(series(&x), series(&y));
}

/// A node that joins takes the place of a pod: levels rank above what was written before.
#[test]
fn a_new_node_evicts_a_pod_not_the_other_way() {
    let mut f = Fixture::new("max_series=12");
    let out = f.governor.govern(&batch(1, 0..4));
    assert_eq!(pods_of(&out).len(), 1);
    let mut b = (*batch(2, 0..4)).clone();
    b.sets.insert("node:n2".into(), set(MetricSetType::Node, &[("nodename", "n2")]));
    let out = f.governor.govern(&Arc::new(b));
    assert!(out.sets.contains_key("node:n2"));
    assert_eq!(pods_of(&out).len(), 0);
}

#[test]
fn the_per_metric_budget_cuts_each_metric_alone() {
    let mut f = Fixture::new("max_series_per_metric=3");
    let out = f.governor.govern(&batch(1, 0..5));
    // Cluster, node and one pod per metric: 4 metrics x 3.
    assert_eq!(series(&out).len(), 12);
    assert_eq!(f.sample("heapster_sink_series_written{sink=\"s\"}"), 12.0);
    assert_eq!(f.sum("heapster_sink_series_cut_total"), 16.0);
    assert_eq!(f.sample("heapster_sink_series_cut_total{sink=\"s\",metric=\"uptime\",label=\"labels\"}"), 4.0);
}

/// The cut counter names the label whose values the written series do not have: here only `build` differs.
#[test]
fn the_cut_counter_names_the_label_that_grew() {
    let mut f = Fixture::new("max_series=3");
    let mut b = DataBatch { timestamp: 1, ..Default::default() };
    for i in 0..10 {
        let mut s =
            MetricSet { labels: labels(&[("pod_name", "p"), ("build", &format!("b{i}"))]), ..Default::default() };
        s.set("custom/x", MetricValue::Int(i));
        b.sets.insert(format!("k{i}"), s);
    }
    let b = Arc::new(b);
    f.governor.govern(&b);
    f.governor.govern(&b);
    assert_eq!(f.sample("heapster_sink_series_cut_total{sink=\"s\",metric=\"custom/x\",label=\"build\"}"), 14.0);
}

/// Dropping the build id makes the pods of one name one series each: merged, counted, written once, without the
/// label.
#[test]
fn labels_deny_drops_labels_and_merges_what_became_equal() {
    let mut f = Fixture::new("labels_deny=labels,pod_name,resource_id");
    let out = f.governor.govern(&batch(1, 0..5));
    // Cluster and node keep their 4 series; the 5 pods become one entity of 4.
    assert_eq!(series(&out).len(), 12);
    assert_eq!(f.sample("heapster_sink_series_merged_total{sink=\"s\"}"), 16.0);
    assert_eq!(f.sample("heapster_sink_series_offered{sink=\"s\"}"), 12.0);
    for s in out.sets.values() {
        assert!(!s.labels.contains_key("labels") && !s.labels.contains_key("pod_name"), "{s:?}");
        assert!(s.labeled_metrics.iter().all(|m| m.labels.is_empty()));
    }
    // The first in key order is the one written.
    assert_eq!(pods_of(&out), BTreeSet::from(["namespace:ns/pod:p0".to_owned()]));
    // labels_allow: only what is listed.
    let mut f = Fixture::new("labels_allow=type,nodename");
    let out = f.governor.govern(&batch(1, 0..5));
    assert!(out.sets.values().all(|s| s.labels.keys().all(|k| k == "type" || k == "nodename")));
    assert_eq!(out.sets["node:n1"].kind, Some(MetricSetType::Node));
}

#[test]
fn the_report_names_the_top_metrics_and_labels() {
    let mut f = Fixture::new("max_series=20&labels_deny=labels");
    f.governor.govern(&batch(1000, 0..10));
    let r = f.governor.view().report(2);
    assert_eq!((r.sink.as_str(), r.timestamp, r.offered, r.written, r.cut, r.merged), ("s", 1000, 48, 20, 28, 0));
    assert_eq!(r.budget.max_series, Some(20));
    assert_eq!(r.top_metrics.len(), 2);
    // Every metric has 12 series (cluster, node, 10 pods): ties go by name.
    assert_eq!(r.top_metrics[0].metric, "cpu/usage");
    assert_eq!((r.top_metrics[0].offered, r.top_metrics[0].written, r.top_metrics[0].cut), (12, 5, 7));
    // labels (10 build ids) ties pod_name (10): by name; both counted before the lists, `labels` marked dropped.
    assert_eq!(r.top_labels[0].label, "labels");
    assert_eq!((r.top_labels[0].values, r.top_labels[0].dropped), (10, true));
    assert_eq!(
        (r.top_labels[1].label.as_str(), r.top_labels[1].values, r.top_labels[1].dropped),
        ("pod_name", 10, false)
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["budget"], serde_json::json!({"max_series": 20, "labels_deny": ["labels"]}));
}

/// Records the batches it exported.
#[derive(Default)]
struct Recorder(Mutex<Vec<Arc<DataBatch>>>);

#[async_trait::async_trait]
impl DataSink for Recorder {
    fn name(&self) -> String {
        "recorder".into()
    }

    async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError> {
        self.0.lock().unwrap().push(batch);
        Ok(())
    }
}

/// What the manager hands a governed sink is what its governor cut; an ungoverned sink gets the whole batch.
#[tokio::test]
async fn the_manager_governs_each_sink_on_its_own() {
    let governed = Arc::new(Recorder::default());
    let plain = Arc::new(Recorder::default());
    let sink: Arc<dyn DataSink> = Arc::new(crate::Governed { sink: governed.clone(), config: config("max_series=12") });
    let config = SinkManagerConfig { queue_batches: 4, export_timeout: Duration::from_secs(5), spool: None };
    let m = SinkManager::start(vec![sink, plain.clone()], config, SinkMetrics::detached());
    m.push(batch(1, 0..5));
    let report = m.cardinality().expect("a governed sink");
    m.shutdown(Duration::from_secs(5)).await;
    assert_eq!(series(&governed.0.lock().unwrap()[0]).len(), 12);
    assert_eq!(series(&plain.0.lock().unwrap()[0]).len(), 28);
    let r = report.cardinality(5);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].sink.as_str(), r[0].offered, r[0].written, r[0].cut), ("recorder", 28, 12, 16));
}
