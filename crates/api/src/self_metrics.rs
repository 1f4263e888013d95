//! `/metrics`: heapster's self-metrics in OpenMetrics text, plus the store's size read at scrape time.
//!
//! The registry is shared and immutable behind an `Arc`, so the store gauges live in a small registry built per
//! scrape and are appended before the final `# EOF`. That keeps the store free of any Prometheus dependency.

use crate::ApiState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The content type of OpenMetrics text, which `prometheus_client` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn store_registry(stats: heapster_store::StoreStats) -> Registry {
    let mut r = Registry::with_prefix("heapster_store");
    for (name, help, value) in [
        ("sets", "Metric sets (entities) in the store window", stats.sets),
        ("series", "Series (metric of a set, per label set) in the store window", stats.series),
        ("points", "Points in the store window", stats.points),
        ("bytes", "Estimated heap bytes used by the store", stats.bytes),
    ] {
        let g = Gauge::<i64>::default();
        g.set(i64::try_from(value).unwrap_or(i64::MAX));
        r.register(name, help, g);
    }
    r
}

/// Renders both registries as one OpenMetrics document.
pub fn render(st: &ApiState) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    encode(&mut out, &st.registry)?;
    if let Some(stripped) = out.strip_suffix("# EOF\n") {
        out.truncate(stripped.len());
    }
    encode(&mut out, &store_registry(st.store.stats()))?;
    Ok(out)
}

pub async fn scrape(State(st): State<ApiState>) -> Response {
    match render(&st) {
        Ok(body) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "encoding metrics failed").into_response(),
    }
}
