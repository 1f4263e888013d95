//! Prometheus pages in the kubelet's names, so the dashboards and recording rules written for kubelets work on
//! heapster unchanged:
//!
//! - `GET /metrics/cadvisor`: cAdvisor's families (`container_cpu_usage_seconds_total{cpu="total"}`,
//!   `container_memory_working_set_bytes`, `container_network_receive_bytes_total`, `container_fs_usage_bytes`, ...)
//!   with the labels `container`, `id`, `image`, `name`, `namespace`, `pod`, and `node`; a node is `id="/"`, a
//!   system container `id="/kubelet"`, a pod `container=""`, as on a kubelet;
//! - `GET /metrics/resource`: the kubelet's resource metrics (`node_`, `pod_`, `container_cpu_usage_seconds_total`
//!   and `..._memory_working_set_bytes`, `container_start_time_seconds`, `resource_scrape_error`), plus `node`.
//!
//! Only sets of the newest batch are served, each value stamped with its batch time (as the kubelet stamps
//! usage), so `rate()` divides by the collection interval rather than the scrape interval and a scrape between
//! two batches adds nothing. heapster's own metrics stay on `/metrics`.
//!
//! `?node=NAME` and `?namespace=NAME` (repeatable: any of the values) keep part of the page, so several Prometheus
//! servers can each scrape a share of a large cluster; node-level cgroups have no namespace and drop out under a
//! namespace filter. The page is written family by family into a streamed body ([`crate::chunked`]): memory is a
//! few chunks plus one label string per set, whatever the cluster's size.

mod families;
#[cfg(test)]
mod tests;

use crate::ApiState;
use crate::chunked::{ChunkWriter, chunked_response};
use crate::error::ApiError;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use families::{CFS_PERIOD_US, Conv, Family, Row, Source};
use heapster_model::{Labels, MetricSetType, MetricValue, Timestamp, labels as l};
use heapster_store::Store;
use std::io::Write;

/// The Prometheus text format, version 0.0.4, which the kubelet serves.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Prefix of the `id` label (a cgroup path) given to pods and their containers.
const PODS_ID: &str = "/kubepods";

pub fn routes() -> Router<ApiState> {
    Router::new().route("/metrics/cadvisor", get(cadvisor)).route("/metrics/resource", get(resource))
}

/// Which cgroup a set is; a family says which it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Node,
    System,
    Pod,
    Container,
}

/// Which page a label string is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Page {
    Cadvisor,
    Resource,
}

/// `?node=` and `?namespace=`; empty lists keep everything.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub nodes: Vec<String>,
    pub namespaces: Vec<String>,
}

impl Filter {
    /// Parses the query; an unknown parameter is an error naming it, so a mistyped shard does not silently take
    /// the whole cluster.
    pub fn parse(pairs: &[(String, String)]) -> Result<Filter, String> {
        let mut f = Filter::default();
        for (k, v) in pairs {
            match k.as_str() {
                "node" => f.nodes.push(v.clone()),
                "namespace" => f.namespaces.push(v.clone()),
                other => {
                    return Err(format!("unknown parameter {other:?}: only node= and namespace= filter this page"));
                }
            }
        }
        Ok(f)
    }

    fn keeps(&self, node: &str, namespace: Option<&str>) -> bool {
        let node_ok = self.nodes.is_empty() || self.nodes.iter().any(|n| n == node);
        let ns_ok = self.namespaces.is_empty() || namespace.is_some_and(|ns| self.namespaces.iter().any(|n| n == ns));
        node_ok && ns_ok
    }
}

async fn cadvisor(State(st): State<ApiState>, Query(q): Query<Vec<(String, String)>>) -> Response {
    serve(st, &q, Page::Cadvisor)
}

async fn resource(State(st): State<ApiState>, Query(q): Query<Vec<(String, String)>>) -> Response {
    serve(st, &q, Page::Resource)
}

fn serve(st: ApiState, q: &[(String, String)], page: Page) -> Response {
    let filter = match Filter::parse(q) {
        Ok(f) => f,
        Err(e) => return ApiError::bad_request(e).into_response(),
    };
    chunked_response(CONTENT_TYPE, move |out| render(&st.store, &filter, page, out))
}

/// One set to render: its store key and the labels every one of its lines starts with.
pub(crate) struct Target {
    key: String,
    kind: Kind,
    /// `name="value",...`, escaped, without braces.
    labels: String,
    create_time: Timestamp,
}

/// The sets of the newest batch that `filter` keeps, by kind, in key order.
pub(crate) fn targets(store: &Store, filter: &Filter, page: Page) -> (Vec<Target>, Timestamp) {
    let Some(newest) = store.latest_timestamp() else { return (Vec::new(), 0) };
    let mut out = Vec::new();
    for (set_type, kind) in [
        (MetricSetType::Node, Kind::Node),
        (MetricSetType::SysContainer, Kind::System),
        (MetricSetType::Pod, Kind::Pod),
        (MetricSetType::PodContainer, Kind::Container),
    ] {
        for key in store.keys_of_type(set_type) {
            // A shard skips the other sets on two label reads, without set_info's walk over the set's series.
            if !filter.nodes.is_empty() || !filter.namespaces.is_empty() {
                let node = match kind {
                    Kind::Node => key.strip_prefix("node:").map(str::to_owned),
                    _ => store
                        .label(&key, l::NODENAME)
                        .filter(|n| !n.is_empty())
                        .or_else(|| store.label(&key, l::HOSTNAME)),
                };
                let namespace =
                    matches!(kind, Kind::Pod | Kind::Container).then(|| store.label(&key, l::NAMESPACE_NAME));
                if !filter.keeps(node.as_deref().unwrap_or(""), namespace.as_ref().map(|n| n.as_deref().unwrap_or("")))
                {
                    continue;
                }
            }
            let Some(info) = store.set_info(&key) else { continue };
            if info.last_seen < newest {
                continue; // Gone from the newest batch: a kubelet would no longer list it either.
            }
            let get = |name: &str| info.labels.get_str(name).unwrap_or("");
            let node = match kind {
                Kind::Node => key.strip_prefix("node:").unwrap_or(""),
                _ if !get(l::NODENAME).is_empty() => get(l::NODENAME),
                _ => get(l::HOSTNAME),
            };
            let namespace = matches!(kind, Kind::Pod | Kind::Container).then(|| get(l::NAMESPACE_NAME));
            if !filter.keeps(node, namespace) {
                continue;
            }
            let (ns, pod, container) = (namespace.unwrap_or(""), get(l::POD_NAME), get(l::CONTAINER_NAME));
            let labels = match page {
                Page::Cadvisor => {
                    let id = match kind {
                        Kind::Node => "/".to_owned(),
                        Kind::System => format!("/{}", container.trim_start_matches('/')),
                        Kind::Pod => format!("{PODS_ID}/{ns}/{pod}"),
                        Kind::Container => format!("{PODS_ID}/{ns}/{pod}/{container}"),
                    };
                    let container = if kind == Kind::Container { container } else { "" };
                    let image = if kind == Kind::Container { get(l::CONTAINER_BASE_IMAGE) } else { "" };
                    label_text(&[
                        ("container", container),
                        ("id", &id),
                        ("image", image),
                        ("name", ""),
                        ("namespace", ns),
                        ("node", node),
                        ("pod", pod),
                    ])
                }
                Page::Resource => match kind {
                    Kind::Container => {
                        label_text(&[("container", container), ("namespace", ns), ("node", node), ("pod", pod)])
                    }
                    Kind::Pod => label_text(&[("namespace", ns), ("node", node), ("pod", pod)]),
                    _ => label_text(&[("node", node)]),
                },
            };
            out.push(Target { key, kind, labels, create_time: info.create_time });
        }
    }
    (out, newest)
}

/// `a="x",b="y"` with the text format's escapes (`\\`, `\"`, `\n`).
fn label_text(pairs: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '"' => s.push_str("\\\""),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    s
}

/// Writes the whole page into `out`, family by family (the text format wants a family's lines together).
pub(crate) fn render(store: &Store, filter: &Filter, page: Page, out: &mut ChunkWriter) {
    let (targets, newest) = targets(store, filter, page);
    let families = match page {
        Page::Cadvisor => families::CADVISOR,
        Page::Resource => families::RESOURCE,
    };
    for family in families {
        if !write_family(store, family, &targets, newest, out) {
            return;
        }
    }
}

/// One family; `false` once the client has gone.
fn write_family(store: &Store, f: &Family, targets: &[Target], newest: Timestamp, out: &mut ChunkWriter) -> bool {
    let mut started = false;
    let mut line = |out: &mut ChunkWriter, labels: &str, extra: &str, value: f64, ts: Option<Timestamp>| {
        if !value.is_finite() {
            return true;
        }
        let buf = &mut out.buf;
        if !started {
            started = true;
            let _ = writeln!(buf, "# HELP {} {}\n# TYPE {} {}", f.name, f.help, f.name, f.typ.as_str());
        }
        buf.extend_from_slice(f.name.as_bytes());
        if !labels.is_empty() || !extra.is_empty() {
            buf.push(b'{');
            buf.extend_from_slice(labels.as_bytes());
            if !labels.is_empty() && !extra.is_empty() {
                buf.push(b',');
            }
            buf.extend_from_slice(extra.as_bytes());
            buf.push(b'}');
        }
        let _ = match ts.filter(|_| f.stamped) {
            Some(ts) => writeln!(buf, " {value} {ts}"),
            None => writeln!(buf, " {value}"),
        };
        out.maybe_flush()
    };
    if let Source::Zero = f.source {
        return line(out, "", "", 0.0, None);
    }
    let no_labels = Labels::new();
    for t in targets.iter().filter(|t| f.kinds.contains(&t.kind)) {
        let alive = match f.source {
            Source::Metrics(rows) => rows.iter().all(|r: &Row| {
                let Some(p) = store.latest(&t.key, r.metric, &no_labels).filter(|p| p.timestamp >= newest) else {
                    return true;
                };
                match convert(p.value, r.conv) {
                    Some(v) => line(out, &t.labels, r.extra, v, Some(p.timestamp)),
                    None => true,
                }
            }),
            Source::PerDevice(metric) => store.series_labels(&t.key, metric).iter().all(|series| {
                let Some(device) = series.get(l::RESOURCE_ID) else { return true };
                let Some(p) = store.latest(&t.key, metric, series).filter(|p| p.timestamp >= newest) else {
                    return true;
                };
                let extra = label_text(&[("device", device)]);
                line(out, &t.labels, &extra, as_f64(p.value), Some(p.timestamp))
            }),
            Source::StartTime if t.create_time > 0 => {
                line(out, &t.labels, "", t.create_time as f64 / 1000.0, Some(t.create_time))
            }
            Source::StartTime | Source::Zero => true,
        };
        if !alive {
            return false;
        }
    }
    !out.closed()
}

fn as_f64(v: MetricValue) -> f64 {
    match v {
        MetricValue::Int(i) => i as f64,
        MetricValue::Float(f) => f,
    }
}

/// The exposed value, or `None` where the kubelet would show nothing (no CPU limit: no quota).
fn convert(v: MetricValue, conv: Conv) -> Option<f64> {
    let x = as_f64(v);
    Some(match conv {
        Conv::Same => x,
        Conv::Seconds => x / 1e9,
        Conv::Units => x / 1000.0,
        Conv::CfsQuota if x > 0.0 => (x * (CFS_PERIOD_US as f64) / 1000.0).round(),
        Conv::CfsPeriod if x > 0.0 => CFS_PERIOD_US as f64,
        Conv::CfsQuota | Conv::CfsPeriod => return None,
        // MilliCPUToShares: 1024 per core, at least 2.
        Conv::Shares => (x * 1024.0 / 1000.0).floor().max(2.0),
    })
}
