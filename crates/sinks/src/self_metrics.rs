//! The sinks' own metrics on heapster's `/metrics`: the manager's families (batches exported, failed, dropped,
//! queued, retried, timed) and each sink kind's own (points written, rejected and dropped, requests by outcome).
//!
//! They live on the registry that `main` owns and hands in through [`SinkMetrics::register`], never in statics:
//! a test makes its own registry and reads its own counters, and two managers in one process do not share them.
//! A sink kind gets its families with [`SinkMetrics::for_kind`] when its first sink is built, after the registry
//! may already be serving; they are encoded through a [`Collector`], so adding a sink kind edits no shared file
//! and a second sink of a kind shares the families of the first.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Labels of a per-sink self-metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    pub sink: String,
}

/// Labels of failed exports: `kind` is `transient`, `permanent` or `timeout`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkErrorLabels {
    pub sink: String,
    pub kind: String,
}

/// Labels of points a server rejected or a sink left out, by a short reason (`field type conflict`, `unable to
/// parse`, `not a finite number`, ...), so that an operator sees which kind of data is lost without reading logs.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkCauseLabels {
    pub sink: String,
    pub cause: String,
}

/// Labels of one request's outcome (`ok`, `timeout`, `connect`, `tls`, `server_error`, `rejected`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkOutcomeLabels {
    pub sink: String,
    pub outcome: String,
}

/// Labels of series a sink's cardinality governor cut: the metric, and the label whose distinct values grew most
/// among the cut series of that metric (see [`crate::governor`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkCutLabels {
    pub sink: String,
    pub metric: String,
    pub label: String,
}

/// The labels of sink `name`.
pub fn sink(name: &str) -> SinkLabels {
    SinkLabels { sink: name.to_owned() }
}

/// The manager's families and the per-kind ones, on one registry. Cheap to clone: every field is shared.
#[derive(Clone, Debug)]
pub struct SinkMetrics {
    /// Batches each sink accepted.
    pub exported: Family<SinkLabels, Counter>,
    /// Failed exports by sink and kind.
    pub errors: Family<SinkErrorLabels, Counter>,
    /// Batches dropped because a sink's queue or spool was full: data lost, oldest first.
    pub dropped: Family<SinkLabels, Counter>,
    /// Batches the spool could not store (its disk full or failing), sent from memory only: lost if heapster stops
    /// before the sink takes them, and dropped (counted there) when memory is full too.
    pub unspooled: Family<SinkLabels, Counter>,
    /// Batches found damaged in a sink's spool at start, by `cause`: `corrupt` (lost, also in `dropped`) and
    /// `ack_ahead` (the acknowledgement is ahead of every batch kept, so it is not trusted: they are sent again).
    pub spool_damaged: Family<SinkCauseLabels, Counter>,
    /// Batches waiting per sink; growing means the sink is behind or down.
    pub queued: Family<SinkLabels, Gauge>,
    /// Exports that failed and were tried again with the batch kept at the head of the queue.
    pub retries: Family<SinkLabels, Counter>,
    /// How long exports take, per sink.
    pub export_seconds: Family<SinkLabels, Histogram>,
    /// Series a sink's governor cut (over `max_series=` or `max_series_per_metric=`), per round, by metric and
    /// the label that grew most.
    pub series_cut: Family<SinkCutLabels, Counter>,
    /// Series that became one once the governor dropped labels (`labels_allow=`/`labels_deny=`), per round.
    pub series_merged: Family<SinkLabels, Counter>,
    /// Series offered to a governed sink in its last round (after the label lists).
    pub series_offered: Family<SinkLabels, Gauge>,
    /// Series a governed sink was handed in its last round.
    pub series_written: Family<SinkLabels, Gauge>,
    /// Rounds (batches) a sink's governor has seen, so the counters above can be read per round.
    pub governor_rounds: Family<SinkLabels, Counter>,
    kinds: Arc<Mutex<BTreeMap<&'static str, KindMetrics>>>,
    /// Told of every export's sink and duration, for metrics kept outside this crate (Heapster's own
    /// `heapster_exporter_*` names, which the binary serves).
    export_observer: Option<ExportObserver>,
}

/// What [`SinkMetrics::observe_exports`] calls: the sink's name and the export's duration.
type ObserveExport = dyn Fn(&str, std::time::Duration) + Send + Sync;

/// See [`SinkMetrics::observe_exports`].
#[derive(Clone)]
pub struct ExportObserver(Arc<ObserveExport>);

impl std::fmt::Debug for ExportObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExportObserver")
    }
}

impl SinkMetrics {
    /// Self-metrics on a registry of their own, served nowhere: for sinks built by tests and benchmarks.
    pub fn detached() -> SinkMetrics {
        SinkMetrics::register(&mut Registry::default())
    }

    /// Registers the manager's families on `registry`, and a collector for the families of the sink kinds that
    /// [`SinkMetrics::for_kind`] adds later.
    pub fn register(registry: &mut Registry) -> SinkMetrics {
        let m = SinkMetrics {
            exported: Family::default(),
            errors: Family::default(),
            dropped: Family::default(),
            unspooled: Family::default(),
            spool_damaged: Family::default(),
            queued: Family::default(),
            retries: Family::default(),
            export_seconds: Family::new_with_constructor(|| {
                Histogram::new([0.001, 0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 20.0, 60.0])
            }),
            series_cut: Family::default(),
            series_merged: Family::default(),
            series_offered: Family::default(),
            series_written: Family::default(),
            governor_rounds: Family::default(),
            kinds: Arc::default(),
            export_observer: None,
        };
        registry.register(
            "heapster_sink_series_cut",
            "Series a sink's cardinality governor left out (over max_series or max_series_per_metric), by metric and \
             the label whose distinct values grew most",
            m.series_cut.clone(),
        );
        registry.register(
            "heapster_sink_series_merged",
            "Series that became equal once a sink's governor dropped labels (labels_allow, labels_deny), written as one",
            m.series_merged.clone(),
        );
        registry.register(
            "heapster_sink_series_offered",
            "Series offered to a governed sink in its last round",
            m.series_offered.clone(),
        );
        registry.register(
            "heapster_sink_series_written",
            "Series a governed sink was handed in its last round",
            m.series_written.clone(),
        );
        registry.register(
            "heapster_sink_governor_rounds",
            "Batches a sink's cardinality governor has seen",
            m.governor_rounds.clone(),
        );
        registry.register("heapster_sink_batches_exported", "Batches a sink accepted", m.exported.clone());
        registry.register("heapster_sink_export_errors", "Failed exports by sink and kind", m.errors.clone());
        registry.register(
            "heapster_sink_batches_dropped",
            "Batches dropped because a sink's queue or spool was full or damaged (oldest first)",
            m.dropped.clone(),
        );
        registry.register(
            "heapster_sink_batches_unspooled",
            "Batches a sink's spool could not store (disk full or failing), sent from memory only",
            m.unspooled.clone(),
        );
        registry.register(
            "heapster_sink_spool_damaged_batches",
            "Batches found damaged in a sink's spool at start, by cause: corrupt (lost) or ack_ahead (sent again)",
            m.spool_damaged.clone(),
        );
        registry.register("heapster_sink_queue_batches", "Batches waiting in a sink's queue", m.queued.clone());
        registry.register("heapster_sink_export_duration_seconds", "Time one export took", m.export_seconds.clone());
        registry.register(
            "heapster_sink_export_retries",
            "Exports tried again after a failure worth retrying (server down, timeout, 5xx)",
            m.retries.clone(),
        );
        registry.register_collector(Box::new(KindCollector(m.kinds.clone())));
        m
    }

    /// Calls `observe(sink, duration)` after every export attempt, whatever its outcome.
    pub fn observe_exports(mut self, observe: impl Fn(&str, std::time::Duration) + Send + Sync + 'static) -> Self {
        self.export_observer = Some(ExportObserver(Arc::new(observe)));
        self
    }

    /// Times one export: the histogram, and the observer if there is one.
    pub(crate) fn exported_in(&self, labels: &SinkLabels, took: std::time::Duration) {
        self.export_seconds.get_or_create(labels).observe(took.as_secs_f64());
        if let Some(ExportObserver(observe)) = &self.export_observer {
            observe(&labels.sink, took);
        }
    }

    /// The families of sink kind `kind` (`influxdb`): `heapster_sink_<kind>_points_written{sink}`,
    /// `_points_rejected{sink,cause}`, `_points_dropped{sink,cause}` and `_requests{sink,outcome}`. Made on the
    /// first call for a kind; later calls share them.
    pub fn for_kind(&self, kind: &'static str) -> KindMetrics {
        let mut kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        kinds.entry(kind).or_insert_with(|| KindMetrics { kind, ..KindMetrics::default() }).clone()
    }
}

/// One sink kind's families. Cheap to clone: every field is shared.
#[derive(Clone, Debug, Default)]
pub struct KindMetrics {
    kind: &'static str,
    /// Points the server accepted.
    pub points_written: Family<SinkLabels, Counter>,
    /// Points the server refused, by cause; these are not retried.
    pub points_rejected: Family<SinkCauseLabels, Counter>,
    /// Points the sink left out before sending, by cause (values its format cannot carry).
    pub points_dropped: Family<SinkCauseLabels, Counter>,
    /// Requests by outcome.
    pub requests: Family<SinkOutcomeLabels, Counter>,
}

impl KindMetrics {
    /// The counters of one sink of this kind, named as in logs and the manager's metrics.
    pub fn sink(&self, name: &str) -> SinkCounters {
        SinkCounters {
            name: name.to_owned(),
            written: self.points_written.get_or_create(&sink(name)).clone(),
            kind: self.clone(),
        }
    }
}

/// What one sink counts about its points and requests.
#[derive(Clone, Debug)]
pub struct SinkCounters {
    name: String,
    written: Counter,
    kind: KindMetrics,
}

impl SinkCounters {
    pub fn written(&self, points: u64) {
        self.written.inc_by(points);
    }

    pub fn rejected(&self, cause: &str, points: u64) {
        let labels = SinkCauseLabels { sink: self.name.clone(), cause: cause.to_owned() };
        self.kind.points_rejected.get_or_create(&labels).inc_by(points);
    }

    pub fn dropped(&self, cause: &str, points: u64) {
        let labels = SinkCauseLabels { sink: self.name.clone(), cause: cause.to_owned() };
        self.kind.points_dropped.get_or_create(&labels).inc_by(points);
    }

    pub fn request(&self, outcome: &str) {
        let labels = SinkOutcomeLabels { sink: self.name.clone(), outcome: outcome.to_owned() };
        self.kind.requests.get_or_create(&labels).inc();
    }
}

/// Encodes the sink kinds' families at each scrape, so kinds can be added after the registry was handed out.
#[derive(Debug)]
struct KindCollector(Arc<Mutex<BTreeMap<&'static str, KindMetrics>>>);

impl Collector for KindCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let kinds: Vec<KindMetrics> = self.0.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        for k in kinds {
            let kind = k.kind;
            let families: [(&str, String, &dyn EncodeMetric); 4] = [
                ("points_written", format!("Points the {kind} sinks' servers accepted"), &k.points_written),
                (
                    "points_rejected",
                    format!("Points the {kind} sinks' servers refused (not retried), by cause"),
                    &k.points_rejected,
                ),
                (
                    "points_dropped",
                    format!("Points the {kind} sinks left out before sending, by cause"),
                    &k.points_dropped,
                ),
                ("requests", format!("Requests of the {kind} sinks by outcome"), &k.requests),
            ];
            for (name, help, family) in families {
                // As the registry does for its own metrics: a family without series is not shown.
                if family.is_empty() {
                    continue;
                }
                let name = format!("heapster_sink_{kind}_{name}");
                family.encode(encoder.encode_descriptor(&name, &help, None, family.metric_type())?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(registry: &Registry) -> String {
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, registry).unwrap();
        s
    }

    #[test]
    fn kinds_register_their_families_once_and_after_the_registry_was_made() {
        let mut registry = Registry::default();
        let metrics = SinkMetrics::register(&mut registry);
        metrics.exported.get_or_create(&sink("a")).inc();
        let a = metrics.for_kind("influxdb").sink("influxdb:http://a");
        let b = metrics.clone().for_kind("influxdb").sink("influxdb:http://b");
        a.written(3);
        b.written(4);
        a.rejected("field type conflict", 2);
        b.request("ok");
        b.dropped("not a finite number", 1);
        let t = text(&registry);
        assert!(t.contains("heapster_sink_batches_exported_total{sink=\"a\"} 1"), "{t}");
        assert!(t.contains("heapster_sink_influxdb_points_written_total{sink=\"influxdb:http://a\"} 3"), "{t}");
        assert!(t.contains("heapster_sink_influxdb_points_written_total{sink=\"influxdb:http://b\"} 4"), "{t}");
        assert!(t.contains("heapster_sink_influxdb_points_rejected_total{sink=\"influxdb:http://a\",cause=\"field type conflict\"} 2"), "{t}");
        assert!(
            t.contains("heapster_sink_influxdb_requests_total{sink=\"influxdb:http://b\",outcome=\"ok\"} 1"),
            "{t}"
        );
        assert!(t.contains("heapster_sink_influxdb_points_dropped_total{sink=\"influxdb:http://b\",cause=\"not a finite number\"} 1"), "{t}");
        assert_eq!(t.matches("# TYPE heapster_sink_influxdb_points_written counter").count(), 1, "{t}");
    }

    #[test]
    fn families_without_series_are_not_shown() {
        let mut registry = Registry::default();
        let metrics = SinkMetrics::register(&mut registry);
        metrics.for_kind("influxdb").sink("x").request("ok");
        let t = text(&registry);
        assert!(!t.contains("points_rejected"), "{t}");
        assert!(t.contains("heapster_sink_influxdb_requests_total"), "{t}");
    }
}
