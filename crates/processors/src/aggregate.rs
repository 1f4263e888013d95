//! Sums shared by the aggregators (pod, namespace, node). Crate-private: each aggregator documents what it sums.
//!
//! One rule holds for all of them, as in Heapster 1.6's pod aggregator: a value the target set already carries
//! (from its source, or from an earlier processor) is kept, never added to or replaced. The kubelet reports
//! pod-level CPU and memory measured on the pod's cgroup, which is more exact than the sum of its containers
//! (it includes the pause container and pod overhead); summing into it would count usage twice.

use heapster_model::batch::MetricName;
use heapster_model::metric_map::cmp_names;
use heapster_model::{MetricSet, MetricValue};
use std::cmp::Ordering;

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
    /// Sorted by name. The sets summed into one target carry the same metrics, in the same (sorted) order, so
    /// adding one is a merge that compares each name once, where a map costs a search and its string compares
    /// per metric; a new name is inserted in place, which is rare after the first set.
    values: Vec<(MetricName, MetricValue)>,
    /// Oldest non-zero `create_time` among the summed sets (0 if none), newest `scrape_time`.
    pub(crate) create_time: i64,
    pub(crate) scrape_time: i64,
}

/// The metrics an aggregator sums, sorted by name as a set's metrics are, so that one merge of the two finds
/// them in a set: the merge compares each name about once, where a hash or a search per metric cost more than the
/// adding.
#[derive(Debug, Clone)]
pub(crate) struct Wanted {
    names: Vec<MetricName>,
}

impl Wanted {
    pub(crate) fn new(names: impl IntoIterator<Item = MetricName>) -> Self {
        let mut names: Vec<MetricName> = names.into_iter().collect();
        names.sort_unstable();
        names.dedup();
        Wanted { names }
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.names.binary_search_by(|n| cmp_names(n, name)).is_ok()
    }
}

impl Sums {
    /// Adds `set`'s values of the metrics `wanted` accepts. Absent metrics stay absent: no zeros stand in.
    /// The aggregators use [`Sums::add_wanted`]; this is what it is tested against.
    #[cfg(test)]
    pub(crate) fn add_set(&mut self, set: &MetricSet, wanted: impl Fn(&str) -> bool) {
        let mut i = 0;
        for (name, &v) in &set.metrics {
            if wanted(name) {
                self.add_value(&mut i, name, v);
            }
        }
        self.add_times(set);
    }

    /// [`Sums::add_set`] for the metrics in `wanted`.
    pub(crate) fn add_wanted(&mut self, set: &MetricSet, wanted: &Wanted) {
        let mut i = 0;
        let mut names = wanted.names.iter().peekable();
        'metrics: for (name, &v) in &set.metrics {
            loop {
                let Some(w) = names.peek() else { break 'metrics };
                match cmp_names(w, name) {
                    Ordering::Less => {
                        names.next();
                    }
                    Ordering::Equal => {
                        names.next();
                        self.add_value(&mut i, name, v);
                        break;
                    }
                    Ordering::Greater => break,
                }
            }
        }
        self.add_times(set);
    }

    /// Adds `v` to the sum of `name`, given names in increasing order; `i` is where the previous one was.
    fn add_value(&mut self, i: &mut usize, name: &MetricName, v: MetricValue) {
        while let Some((have, sum)) = self.values.get_mut(*i) {
            match cmp_names(have, name) {
                Ordering::Less => *i += 1,
                Ordering::Equal => {
                    *sum = add(*sum, v);
                    *i += 1;
                    return;
                }
                Ordering::Greater => break,
            }
        }
        self.values.insert(*i, (name.clone(), v));
        *i += 1;
    }

    fn add_times(&mut self, set: &MetricSet) {
        Sums::merge_times(&mut self.create_time, &mut self.scrape_time, set);
    }

    /// The oldest non-zero create time and the newest scrape time of a sum's and `set`'s.
    pub(crate) fn merge_times(create_time: &mut i64, scrape_time: &mut i64, set: &MetricSet) {
        if set.create_time != 0 && (*create_time == 0 || set.create_time < *create_time) {
            *create_time = set.create_time;
        }
        *scrape_time = (*scrape_time).max(set.scrape_time);
    }

    /// Writes the sums into `dst`, except where `dst` already has a value.
    pub(crate) fn fill(mut self, dst: &mut MetricSet) {
        // Both are sorted by name: one merge finds what `dst` lacks (kubelet pod sets have most of it already),
        // where a map search per sum cost a dozen string compares.
        let mut have = dst.metrics.keys().peekable();
        self.values.retain(|(name, _)| {
            while have.next_if(|h| cmp_names(h, name).is_lt()).is_some() {}
            have.peek().is_none_or(|h| cmp_names(h, name).is_ne())
        });
        dst.metrics.extend(self.values);
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

    /// Sets with different metrics, in any mix, sum as a map of sums would: each name on its own, absent ones
    /// absent; and the wanted list and a predicate choose alike.
    #[test]
    fn sums_of_sets_with_different_metrics() {
        let names = ["a", "b/x", "b", "c", "d", "e/y"];
        let sets: Vec<MetricSet> = (0..6usize)
            .map(|k| {
                let mut s = MetricSet { create_time: 10 - k as i64, scrape_time: k as i64, ..Default::default() };
                for (j, n) in names.iter().enumerate().filter(|(j, _)| (j + k) % 3 != 0) {
                    s.set(n, MetricValue::Int((10 * k + j) as i64));
                }
                s
            })
            .collect();
        let wanted = Wanted::new(["e/y", "b", "a", "b/x", "zz"].map(std::borrow::Cow::Borrowed));
        let (mut by_list, mut by_predicate) = (Sums::default(), Sums::default());
        for s in &sets {
            by_list.add_wanted(s, &wanted);
            by_predicate.add_set(s, |n| wanted.contains(n));
        }
        let mut expected = std::collections::BTreeMap::new();
        for s in &sets {
            for (n, &v) in s.metrics.iter().filter(|(n, _)| wanted.contains(n)) {
                expected.entry(n.clone()).and_modify(|sum| *sum = add(*sum, v)).or_insert(v);
            }
        }
        assert_eq!((by_list.create_time, by_list.scrape_time), (5, 5));
        for sums in [by_list, by_predicate] {
            let mut dst = MetricSet::default();
            sums.fill(&mut dst);
            assert_eq!(dst.metrics.iter().collect::<Vec<_>>(), expected.iter().collect::<Vec<_>>());
        }
    }
}
