//! The self-metrics the original Heapster served on `/metrics`, under its names, labels and units, so that
//! dashboards and alerts written for it keep working beside heapster-rs's own metrics:
//! `heapster_scraper_duration_milliseconds{source}`, `heapster_scraper_last_time_seconds{source}`,
//! `heapster_processor_duration_milliseconds{processor}`, `heapster_exporter_duration_milliseconds{exporter}`,
//! `heapster_exporter_last_time_seconds{exporter}` and `heapster_kubelet_summary_request_duration_milliseconds{node}`.
//!
//! Heapster's durations were client_golang Summaries: quantiles 0.5, 0.9 and 0.99 over the last ten minutes, plus
//! `_sum` and `_count`. prometheus-client has no summary type, so each is served as gauge families with exactly the
//! sample names and labels a Go summary has (`name{source="..",quantile="0.99"}`, `name_sum`, `name_count`); only
//! the `# TYPE` line says gauge. PromQL over them reads the same.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// client_golang's default objectives.
const QUANTILES: [(f64, &str); 3] = [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99")];

/// client_golang's default `MaxAge`: quantiles describe the last ten minutes.
const MAX_AGE: Duration = Duration::from_secs(600);

/// Observations kept per label value for the quantiles: a bound on memory whatever the rate.
const MAX_SAMPLES: usize = 2048;

type LabelPairs = Vec<(&'static str, String)>;

/// One summary family with one label.
#[derive(Debug, Clone)]
pub struct Summary {
    name: &'static str,
    help: &'static str,
    label: &'static str,
    windows: Arc<Mutex<Windows>>,
    /// Set for a summary that serves another's windows ([`Summary::view`]): only those whose label value starts
    /// with it, under the value without it.
    prefix: Option<&'static str>,
}

/// A summary's windows by label value.
#[derive(Debug)]
struct Windows {
    /// What [`Window::times`] count from.
    start: Instant,
    by_value: BTreeMap<String, Window>,
}

impl Default for Windows {
    fn default() -> Self {
        Windows { start: Instant::now(), by_value: BTreeMap::new() }
    }
}

impl Windows {
    /// Tenths of a second since `start` (saturating after 13 years): two windows a node (scrapes and Summary
    /// requests) of `(Instant, f64)` pairs held 2 KiB per node at 15 s rounds.
    fn tick(&self, at: Instant) -> u32 {
        u32::try_from(at.duration_since(self.start).as_millis() / 100).unwrap_or(u32::MAX)
    }
}

/// [`MAX_AGE`] in [`Windows::tick`]s.
const MAX_AGE_TICKS: u32 = (MAX_AGE.as_millis() / 100) as u32;

#[derive(Debug, Default)]
struct Window {
    /// When each recent observation was made ([`Windows::tick`]), oldest first, beside its value in `values`.
    times: VecDeque<u32>,
    values: VecDeque<f64>,
    sum: f64,
    count: u64,
}

impl Summary {
    fn new(name: &'static str, help: &'static str, label: &'static str) -> Self {
        Summary { name, help, label, windows: Default::default(), prefix: None }
    }

    /// A summary of this one's observations for label values starting with `prefix`, served under the values
    /// without it and `label`: Heapster's Summary API request durations are its kubelet sources' scrape
    /// durations, and kept twice they were a window more per node.
    fn view(&self, name: &'static str, help: &'static str, label: &'static str, prefix: &'static str) -> Self {
        Summary { name, help, label, windows: self.windows.clone(), prefix: Some(prefix) }
    }

    /// Records one duration for `label_value`, in milliseconds as Heapster did.
    pub fn observe(&self, label_value: &str, took: Duration) {
        self.observe_value(label_value, took.as_secs_f64() * 1000.0);
    }

    /// Records one value, in the summary's own unit.
    pub fn observe_value(&self, label_value: &str, ms: f64) {
        debug_assert!(self.prefix.is_none(), "{}: a view of another summary's windows is not observed", self.name);
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let now = windows.tick(Instant::now());
        // A label value seen before (every node, every round) is found without copying it first to ask.
        let w = match windows.by_value.get_mut(label_value) {
            Some(w) => w,
            None => windows.by_value.entry(label_value.to_owned()).or_default(),
        };
        w.sum += ms;
        w.count += 1;
        w.times.push_back(now);
        w.values.push_back(ms);
        while w.times.len() > MAX_SAMPLES || w.times.front().is_some_and(|t| now.saturating_sub(*t) > MAX_AGE_TICKS) {
            w.times.pop_front();
            w.values.pop_front();
        }
    }
}

/// The value at quantile `q` of `sorted` (nearest rank); NaN without observations, as client_golang reports.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Collector for Summary {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let now = windows.tick(Instant::now());
        let mut rows = Vec::with_capacity(windows.by_value.len());
        for (value, w) in windows.by_value.iter() {
            let value = match self.prefix {
                Some(prefix) => match value.strip_prefix(prefix) {
                    Some(rest) => rest,
                    None => continue,
                },
                None => value.as_str(),
            };
            let recent = w.times.iter().zip(&w.values).filter(|(t, _)| now.saturating_sub(**t) <= MAX_AGE_TICKS);
            let mut recent: Vec<f64> = recent.map(|(_, v)| *v).collect();
            recent.sort_by(f64::total_cmp);
            rows.push((value.to_owned(), recent, w.sum, w.count));
        }
        drop(windows);
        let mut family = encoder.encode_descriptor(self.name, self.help, None, MetricType::Gauge)?;
        for (value, recent, _, _) in &rows {
            for (q, q_text) in QUANTILES {
                let labels: LabelPairs = vec![(self.label, value.clone()), ("quantile", q_text.to_owned())];
                ConstGauge::new(quantile(recent, q)).encode(family.encode_family(&labels)?)?;
            }
        }
        let sum_name = format!("{}_sum", self.name);
        let mut family = encoder.encode_descriptor(&sum_name, self.help, None, MetricType::Gauge)?;
        for (value, _, sum, _) in &rows {
            let labels: LabelPairs = vec![(self.label, value.clone())];
            ConstGauge::new(*sum).encode(family.encode_family(&labels)?)?;
        }
        let count_name = format!("{}_count", self.name);
        let mut family = encoder.encode_descriptor(&count_name, self.help, None, MetricType::Gauge)?;
        for (value, _, _, count) in &rows {
            let labels: LabelPairs = vec![(self.label, value.clone())];
            ConstGauge::new(*count as i64).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// Heapster's `*_last_time_seconds` gauges: when something last happened, in Unix seconds.
pub type LastTime = Family<LabelPairs, Gauge<f64, AtomicU64>>;

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as f64).unwrap_or(0.0)
}

/// Every self-metric of the original, registered on `main`'s registry.
#[derive(Debug, Clone)]
pub struct HeapsterSummaries {
    pub scraper: Summary,
    scraper_last: LastTime,
    pub processor: Summary,
    pub exporter: Summary,
    exporter_last: LastTime,
    pub kubelet_summary: Summary,
    pub http: HttpMetrics,
}

/// go-restful's instrumentation of Heapster's model and historical routes (`metrics/util/metrics/http.go`):
/// `http_requests_total{handler,method,code}` and the summaries `http_request_duration_microseconds`,
/// `http_request_size_bytes` and `http_response_size_bytes`, each `{handler}` with the Go handler's name.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    requests: Family<LabelPairs, prometheus_client::metrics::counter::Counter>,
    duration: Summary,
    request_size: Summary,
    response_size: Summary,
}

impl HttpMetrics {
    /// One answered request of the route whose Go handler is `handler`.
    pub fn observe(&self, handler: &str, method: &str, code: u16, took: Duration, request: u64, response: u64) {
        let labels =
            vec![("handler", handler.to_owned()), ("method", method.to_lowercase()), ("code", code.to_string())];
        self.requests.get_or_create(&labels).inc();
        self.duration.observe_value(handler, took.as_secs_f64() * 1e6);
        self.request_size.observe_value(handler, request as f64);
        self.response_size.observe_value(handler, response as f64);
    }
}

/// The name Heapster's router gave the handler of a model or historical route, from axum's route pattern
/// (`/api/v1/model/nodes/{node}/metrics/{*metric}` -> `nodeMetrics`); `None` for routes Heapster did not
/// instrument.
pub fn go_handler(pattern: &str) -> Option<&'static str> {
    let rest = pattern.strip_prefix("/api/v1/model").or_else(|| pattern.strip_prefix("/api/v1/historical"))?;
    let shape: Vec<&str> =
        rest.split('/').filter(|s| !s.is_empty()).map(|s| if s.starts_with('{') { "*" } else { s }).collect();
    // A value route and its metrics-aggregated twin share a handler name, as in Heapster.
    let (entity, tail) = match shape.iter().position(|s| *s == "metrics" || *s == "metrics-aggregated") {
        Some(i) => (&shape[..i], &shape[i..]),
        None => (&shape[..], &[][..]),
    };
    let values = matches!(tail, ["metrics", "*"] | ["metrics-aggregated", "*", "*"]);
    let names = tail == ["metrics"];
    Some(match (entity, values, names) {
        ([], true, _) => "clusterMetrics",
        ([], _, true) => "availableClusterMetrics",
        (["nodes"], ..) if tail.is_empty() => "nodeList",
        (["nodes", "*"], true, _) => "nodeMetrics",
        (["nodes", "*"], _, true) => "availableNodeMetrics",
        (["nodes", "*", "freecontainers"], ..) if tail.is_empty() => "systemContainerList",
        (["nodes", "*", "freecontainers", "*"], true, _) => "freeContainerMetrics",
        (["nodes", "*", "freecontainers", "*"], _, true) => "availableMetrics",
        (["namespaces"], ..) if tail.is_empty() => "namespaceList",
        (["namespaces", "*"], true, _) => "namespaceMetrics",
        (["namespaces", "*"], _, true) => "availableNamespaceMetrics",
        (["namespaces", "*", "pods"], ..) if tail.is_empty() => "namespacePodList",
        (["namespaces", "*", "pods", "*"] | ["pod-id", "*"], true, _) => "podMetrics",
        (["namespaces", "*", "pods", "*"], _, true) => "availablePodMetrics",
        (["namespaces", "*", "pods", "*", "containers"], ..) if tail.is_empty() => "podContainerList",
        (["namespaces", "*", "pods", "*", "containers", "*"] | ["pod-id", "*", "containers", "*"], true, _) => {
            "podContainerMetrics"
        }
        (["namespaces", "*", "pods", "*", "containers", "*"], _, true) => "availableContainerMetrics",
        (["namespaces", "*", "pod-list", "*"], true, _) if tail[0] == "metrics" => "podListMetric",
        (["namespaces", "*", "pod-list", "*"] | ["pod-id-list", "*"], true, _) => "podListAggregations",
        (["debug", "allkeys"], ..) => "debugAllKeys",
        _ => return None,
    })
}

/// axum middleware: times and counts every model and historical request under its Go handler's name.
pub async fn instrument(
    axum::extract::State(metrics): axum::extract::State<HttpMetrics>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let handler = request.extensions().get::<axum::extract::MatchedPath>().and_then(|p| go_handler(p.as_str()));
    let Some(handler) = handler else { return next.run(request).await };
    let method = request.method().as_str().to_owned();
    // As client_golang's approximation: the URL, the method, the headers and the declared body.
    let headers: usize = request.headers().iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    let declared = |h: &axum::http::HeaderMap| {
        h.get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok()).unwrap_or(0)
    };
    let request_size = (request.uri().to_string().len() + method.len() + headers) as u64 + declared(request.headers());
    let started = Instant::now();
    let response = next.run(request).await;
    let body = axum::body::HttpBody::size_hint(response.body()).exact().unwrap_or_else(|| declared(response.headers()));
    metrics.observe(handler, &method, response.status().as_u16(), started.elapsed(), request_size, body);
    response
}

impl HeapsterSummaries {
    pub fn register(registry: &mut Registry) -> Self {
        let scraper = Summary::new(
            "heapster_scraper_duration_milliseconds",
            "Time spent scraping sources in milliseconds.",
            "source",
        );
        let m = HeapsterSummaries {
            scraper_last: LastTime::default(),
            processor: Summary::new(
                "heapster_processor_duration_milliseconds",
                "The Time spent in a processor in milliseconds.",
                "processor",
            ),
            exporter: Summary::new(
                "heapster_exporter_duration_milliseconds",
                "Time spent exporting data to sink in milliseconds.",
                "exporter",
            ),
            exporter_last: LastTime::default(),
            kubelet_summary: scraper.view(
                "heapster_kubelet_summary_request_duration_milliseconds",
                "The Kubelet summary request latencies in milliseconds.",
                "node",
                "kubelet:",
            ),
            scraper,
            http: HttpMetrics {
                requests: Family::default(),
                duration: Summary::new(
                    "http_request_duration_microseconds",
                    "The HTTP request latencies in microseconds.",
                    "handler",
                ),
                request_size: Summary::new("http_request_size_bytes", "The HTTP request sizes in bytes.", "handler"),
                response_size: Summary::new("http_response_size_bytes", "The HTTP response sizes in bytes.", "handler"),
            },
        };
        let h = &m.http;
        for s in
            [&m.scraper, &m.processor, &m.exporter, &m.kubelet_summary, &h.duration, &h.request_size, &h.response_size]
        {
            registry.register_collector(Box::new(s.clone()));
        }
        registry.register("http_requests", "Total number of HTTP requests made.", h.requests.clone());
        registry.register(
            "heapster_scraper_last_time_seconds",
            "Last time Heapster performed a scrape since unix epoch in seconds.",
            m.scraper_last.clone(),
        );
        registry.register(
            "heapster_exporter_last_time_seconds",
            "Last time Heapster exported data since unix epoch in seconds.",
            m.exporter_last.clone(),
        );
        m
    }

    /// One source scraped: Heapster's scraper summary and time; a kubelet (`kubelet:NODE`) also counts as one
    /// Summary API request of that node (the kubelet summary serves the scraper's windows).
    pub fn scraped(&self, source: &str, took: Duration) {
        self.scraper.observe(source, took);
        self.scraper_last.get_or_create(&vec![("source", source.to_owned())]).set(unix_now());
    }

    /// One export to a sink, whatever its outcome, as Heapster timed it.
    pub fn exported(&self, sink: &str, took: Duration) {
        self.exporter.observe(sink, took);
        self.exporter_last.get_or_create(&vec![("exporter", sink.to_owned())]).set(unix_now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_with_heapsters_names_labels_and_units() {
        let mut registry = Registry::default();
        let m = HeapsterSummaries::register(&mut registry);
        for ms in 1..=100 {
            m.scraped("kubelet:node-1", Duration::from_millis(ms));
        }
        m.scraped("cadvisor:host-1", Duration::from_millis(7));
        m.processor.observe("rate_calculator", Duration::from_micros(2500));
        m.exported("influxdb:http://h:8086/?db=k8s", Duration::from_millis(40));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let sample = |line: &str| -> f64 {
            let l = text.lines().find(|l| l.starts_with(line)).unwrap_or_else(|| panic!("no {line}: {text}"));
            l[line.len()..].trim().parse().unwrap()
        };
        let s = "heapster_scraper_duration_milliseconds";
        assert_eq!(sample(&format!("{s}{{source=\"kubelet:node-1\",quantile=\"0.5\"}}")), 50.0);
        assert_eq!(sample(&format!("{s}{{source=\"kubelet:node-1\",quantile=\"0.9\"}}")), 90.0);
        assert_eq!(sample(&format!("{s}{{source=\"kubelet:node-1\",quantile=\"0.99\"}}")), 99.0);
        assert_eq!(sample(&format!("{s}_sum{{source=\"kubelet:node-1\"}}")), 5050.0);
        assert_eq!(sample(&format!("{s}_count{{source=\"kubelet:node-1\"}}")), 100.0);
        let k = "heapster_kubelet_summary_request_duration_milliseconds";
        assert_eq!(sample(&format!("{k}_count{{node=\"node-1\"}}")), 100.0);
        assert_eq!(sample(&format!("{k}{{node=\"node-1\",quantile=\"0.9\"}}")), 90.0);
        assert_eq!(sample(&format!("{s}_count{{source=\"cadvisor:host-1\"}}")), 1.0);
        assert!(!text.lines().any(|l| l.starts_with(k) && l.contains("host-1")), "only kubelets' requests: {text}");
        let p = "heapster_processor_duration_milliseconds";
        assert_eq!(sample(&format!("{p}{{processor=\"rate_calculator\",quantile=\"0.5\"}}")), 2.5);
        let e = "heapster_exporter_duration_milliseconds";
        assert_eq!(sample(&format!("{e}_count{{exporter=\"influxdb:http://h:8086/?db=k8s\"}}")), 1.0);
        let last = sample("heapster_exporter_last_time_seconds{exporter=\"influxdb:http://h:8086/?db=k8s\"}");
        assert!((last - unix_now()).abs() < 5.0, "{last}");
        assert!(sample("heapster_scraper_last_time_seconds{source=\"kubelet:node-1\"}") > 1.7e9);
    }

    #[test]
    fn go_restful_handler_names() {
        for (pattern, want) in [
            ("/api/v1/model/metrics/", Some("availableClusterMetrics")),
            ("/api/v1/model/metrics/{*metric}", Some("clusterMetrics")),
            ("/api/v1/historical/metrics-aggregated/{aggregations}/{*metric}", Some("clusterMetrics")),
            ("/api/v1/model/nodes/", Some("nodeList")),
            ("/api/v1/model/nodes/{node}/metrics/{*metric}", Some("nodeMetrics")),
            ("/api/v1/model/nodes/{node}/freecontainers/{c}/metrics/", Some("availableMetrics")),
            ("/api/v1/model/namespaces/{ns}/pods/{pod}/containers/{c}/metrics/{*m}", Some("podContainerMetrics")),
            ("/api/v1/model/namespaces/{ns}/pod-list/{pods}/metrics/{*m}", Some("podListMetric")),
            (
                "/api/v1/historical/namespaces/{ns}/pod-list/{pods}/metrics-aggregated/{a}/{*m}",
                Some("podListAggregations"),
            ),
            ("/api/v1/historical/pod-id/{id}/metrics/{*m}", Some("podMetrics")),
            ("/api/v1/model/debug/allkeys", Some("debugAllKeys")),
            ("/api/v1/model/nodes/{node}/pods/", None),
            ("/apis/metrics.k8s.io/v1beta1/nodes", None),
        ] {
            assert_eq!(go_handler(pattern), want, "{pattern}");
        }
        let mut registry = Registry::default();
        let m = HeapsterSummaries::register(&mut registry);
        m.http.observe("nodeMetrics", "GET", 200, Duration::from_micros(1500), 120, 300);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("http_requests_total{handler=\"nodeMetrics\",method=\"get\",code=\"200\"} 1"), "{text}");
        assert!(
            text.contains("http_request_duration_microseconds{handler=\"nodeMetrics\",quantile=\"0.5\"} 1500"),
            "{text}"
        );
        assert!(text.contains("http_response_size_bytes_sum{handler=\"nodeMetrics\"} 300"), "{text}");
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        assert!(quantile(&[], 0.5).is_nan());
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.0);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.9), 4.0);
    }

    /// Quantiles describe the last ten minutes; `_sum` and `_count` everything.
    #[test]
    fn observations_older_than_ten_minutes_leave_the_quantiles() {
        let summary = Summary::new("s", "h", "node");
        {
            let mut windows = summary.windows.lock().unwrap();
            windows.start = Instant::now().checked_sub(Duration::from_secs(700)).expect("a clock 700 s old");
            let w = windows.by_value.entry("n1".into()).or_default();
            // One observation at the start, 700 s ago, and one 200 s ago.
            w.times.extend([0, 5000]);
            w.values.extend([100.0, 3.0]);
            (w.sum, w.count) = (103.0, 2);
        }
        summary.observe_value("n1", 1.0);
        let mut registry = Registry::default();
        registry.register_collector(Box::new(summary));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("s{node=\"n1\",quantile=\"0.99\"} 3.0"), "{text}");
        assert!(text.contains("s{node=\"n1\",quantile=\"0.5\"} 1.0"), "{text}");
        assert!(text.contains("s_sum{node=\"n1\"} 104.0") && text.contains("s_count{node=\"n1\"} 3"), "{text}");
    }
}
