//! Sums shared by the aggregators (pod, namespace, node). Crate-private: each aggregator documents what it sums.
//!
//! One rule holds for all of them, as in Heapster 1.6's pod aggregator: a value the target set already carries
//! (from its source, or from an earlier processor) is kept, never added to or replaced. The kubelet reports
//! pod-level CPU and memory measured on the pod's cgroup, which is more exact than the sum of its containers
//! (it includes the pause container and pod overhead); summing into it would count usage twice.

use heapster_model::batch::MetricName;
use heapster_model::{MetricSet, MetricValue};
use std::collections::BTreeMap;

/// `a + b`, integer when both are (saturating), fractional otherwise.
pub(crate) fn add(a: MetricValue, b: MetricValue) -> MetricValue {
    match (a, b) {
        (MetricValue::Int(a), MetricValue::Int(b)) => MetricValue::Int(a.saturating_add(b)),
        (a, b) => MetricValue::Float(a.as_f64() + b.as_f64()),
    }
}

/// Per-metric running sums for one target set.
#[derive(Debug, Default)]
pub(crate) struct Sums {
    pub(crate) values: BTreeMap<MetricName, MetricValue>,
    /// Oldest non-zero `create_time` among the summed sets (0 if none), newest `scrape_time`.
    pub(crate) create_time: i64,
    pub(crate) scrape_time: i64,
}

impl Sums {
    /// Adds `set`'s values of the metrics `wanted` accepts. Absent metrics stay absent: no zeros stand in.
    pub(crate) fn add_set(&mut self, set: &MetricSet, wanted: impl Fn(&str) -> bool) {
        for (name, &v) in &set.metrics {
            if wanted(name) {
                self.values.entry(name.clone()).and_modify(|sum| *sum = add(*sum, v)).or_insert(v);
            }
        }
        if set.create_time != 0 && (self.create_time == 0 || set.create_time < self.create_time) {
            self.create_time = set.create_time;
        }
        self.scrape_time = self.scrape_time.max(set.scrape_time);
    }

    /// Writes the sums into `dst`, except where `dst` already has a value.
    pub(crate) fn fill(self, dst: &mut MetricSet) {
        for (name, v) in self.values {
            dst.metrics.entry(name).or_insert(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_plus_int_stays_int_and_saturates() {
        assert_eq!(add(MetricValue::Int(2), MetricValue::Int(3)), MetricValue::Int(5));
        assert_eq!(add(MetricValue::Int(i64::MAX), MetricValue::Int(1)), MetricValue::Int(i64::MAX));
        assert_eq!(add(MetricValue::Int(2), MetricValue::Float(0.5)), MetricValue::Float(2.5));
    }

    #[test]
    fn fill_keeps_what_the_target_has() {
        let mut a = MetricSet::default();
        a.set("memory/usage", MetricValue::Int(10));
        a.set("cpu/usage_rate", MetricValue::Float(1.0));
        let mut sums = Sums::default();
        sums.add_set(&a, |_| true);
        sums.add_set(&a, |n| n == "memory/usage");
        let mut dst = MetricSet::default();
        dst.set("memory/usage", MetricValue::Int(7));
        sums.fill(&mut dst);
        assert_eq!(dst.get("memory/usage"), Some(MetricValue::Int(7)));
        assert_eq!(dst.get("cpu/usage_rate"), Some(MetricValue::Float(1.0)));
    }
}
