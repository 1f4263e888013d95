//! `/`: a plain overview page, so that `cargo run` followed by opening http://localhost:8082 shows this host at
//! once. Server-rendered, no script, refreshed every resolution. (The charting dashboard replaces it.)

use crate::ApiState;
use axum::extract::State;
use axum::response::Html;
use heapster_model::{Labels, MetricSetType, MetricValue};
use std::fmt::Write;

/// Rows shown per table: a host with thousands of cgroups still renders in a blink.
const TOP: usize = 50;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn latest(st: &ApiState, key: &str, metric: &str) -> Option<f64> {
    st.store.latest(key, metric, &Labels::new()).map(|p| match p.value {
        MetricValue::Int(v) => v as f64,
        MetricValue::Float(v) => v,
    })
}

fn mib(v: Option<f64>) -> String {
    v.map_or("-".into(), |b| format!("{:.1} MiB", b / 1048576.0))
}

fn mcores(v: Option<f64>) -> String {
    v.map_or("-".into(), |m| format!("{m:.0} m"))
}

pub async fn index(State(st): State<ApiState>) -> Html<String> {
    let mut h = String::new();
    let refresh = st.resolution.as_secs().max(1);
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=utf-8><meta http-equiv=refresh content={refresh}>\
         <title>heapster</title><style>body{{font:14px system-ui,sans-serif;margin:2em}}\
         table{{border-collapse:collapse}}td,th{{padding:2px 12px;text-align:right}}td:first-child,th:first-child\
         {{text-align:left}}tr:nth-child(even){{background:#f3f3f3}}</style></head><body><h1>heapster</h1>"
    );
    let stats = st.store.stats();
    let _ = write!(
        h,
        "<p>{} metric sets, {} series, {} points in the store. API: <a href=/api/v1/model/nodes/>nodes</a>, \
         <a href=/api/v1/model/debug/allkeys>all keys</a>, <a href=/api/v1/metric-export-schema>schema</a>, \
         <a href=/metrics>self-metrics</a>, <a href=/healthz>health</a>.</p>",
        stats.sets, stats.series, stats.points
    );
    for (title, set_type) in [("Nodes", MetricSetType::Node), ("Containers (top CPU)", MetricSetType::SysContainer)] {
        let mut rows: Vec<(String, Option<f64>, Option<f64>)> = st
            .store
            .keys_of_type(set_type)
            .into_iter()
            .map(|k| {
                let cpu = latest(&st, &k, "cpu/usage_rate");
                let mem = latest(&st, &k, "memory/working_set");
                (k, cpu, mem)
            })
            .collect();
        rows.sort_by(|a, b| b.1.unwrap_or(-1.0).total_cmp(&a.1.unwrap_or(-1.0)));
        let _ = write!(h, "<h2>{title}</h2><table><tr><th>set</th><th>CPU</th><th>working set</th></tr>");
        for (k, cpu, mem) in rows.iter().take(TOP) {
            let _ = write!(h, "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", escape(k), mcores(*cpu), mib(*mem));
        }
        let _ = write!(h, "</table>");
        if rows.len() > TOP {
            let _ = write!(h, "<p>and {} more</p>", rows.len() - TOP);
        }
    }
    h.push_str("</body></html>");
    Html(h)
}
