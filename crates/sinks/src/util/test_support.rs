//! What the sinks' tests share: a runtime outside the test servers' blocking helpers, metric sets from label
//! pairs, and the self-metrics as `/metrics` shows them.

use heapster_model::{Labels, MetricSet};
use std::sync::Arc;

/// A runtime for `block_on(sink.export(..))`: the testkit's helpers block, so tests are plain `#[test]`s.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A metric set with these labels and no metrics.
pub fn set(pairs: &[(&str, &str)]) -> MetricSet {
    let mut s = MetricSet::default();
    for (k, v) in pairs {
        s.labels.insert(k.to_string(), v.to_string());
    }
    s
}

/// The label map of a filesystem's metrics.
pub fn fs(dev: &str) -> Arc<Labels> {
    Arc::new(Labels::from([("resource_id", dev.to_owned())]))
}

/// `registry` in the text format, for assertions on counters.
pub fn metrics_text(registry: &prometheus_client::registry::Registry) -> String {
    let mut s = String::new();
    prometheus_client::encoding::text::encode(&mut s, registry).unwrap();
    s
}
