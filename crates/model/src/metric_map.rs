//! [`NameMap`]: a map by name in one sorted vector. A metric set's unlabelled values are one ([`MetricMap`]), its
//! labels another ([`crate::Labels`]).
//!
//! A set holds 10 to 40 metrics, and a round at 5,000 nodes keeps some 365,000 sets alive. As a `BTreeMap` each set
//! cost several separately allocated nodes (about 1.9 KB), and every insert or lookup walked them with a `memcmp`
//! call per name: at 500 simulated nodes string compares were an eighth of heapster's CPU and map inserts over a
//! quarter of the processor chain's instructions. One vector sorted by name is one allocation of 40 bytes per
//! metric. The kubelet source and the aggregators produce names in increasing order, so their inserts are an
//! append after one compare; processors that add several metrics to every set (rates, requests and limits) add
//! them together through [`Extend`], one merge; and names are compared a word at a time (see [`cmp_names`]).
//!
//! Labels went the same way for the same reasons: a set carries a dozen, and as a `BTreeMap<String, String>` they
//! were three separately allocated nodes (some 1.7 KB) plus an allocation per label name, per set and round; now
//! they are one vector, and well-known names (`labels::POD_NAME`, ...) are `&'static str`, not copied.
//!
//! The API is the part of `BTreeMap<MetricName, V>` that heapster uses, with the same semantics:
//! iteration in name order, an insert of a name already present replaces the value and keeps the stored name.

use crate::batch::{MetricName, MetricValue};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;

/// Orders metric names as `str`'s `Ord` does (byte-wise, then by length), faster for short names.
///
/// `str::cmp` calls `memcmp` for every compare; names here are short (6 to 40 bytes), so the call and its length
/// dispatch cost more than the compare. Eight bytes loaded as a big-endian word order as the bytes do; names of 8
/// to 24 bytes (nearly all of the catalog's: `ephemeral_storage/usage`, `network/rx_errors_rate`) are compared
/// inline in up to three words, others in a call. (With two words inline, the processors' merges of sets'
/// metrics called out for every rate and `ephemeral_storage/*` name: a tenth of the chain's instructions.)
/// A name copied from one set to another keeps its pointer (catalog names are `&'static str`), so the same pointer
/// and length answer "equal" without reading the bytes.
#[inline]
pub fn cmp_names(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() == b.len() && std::ptr::eq(a.as_ptr(), b.as_ptr()) {
        return Ordering::Equal;
    }
    let n = a.len().min(b.len());
    if n < 8 {
        return cmp_rest(a, b, 0);
    }
    let (x, y) = (word(a, 0), word(b, 0));
    if x != y {
        return x.cmp(&y);
    }
    if n > 16 {
        let (x, y) = (word(a, 8), word(b, 8));
        if x != y {
            return x.cmp(&y);
        }
        if n > 24 {
            return cmp_rest(a, b, 16);
        }
    }
    // The rest in one more word, which may overlap those compared (bytes found equal: no change in outcome).
    let (x, y) = (word(a, n - 8), word(b, n - 8));
    x.cmp(&y).then(a.len().cmp(&b.len()))
}

/// [`cmp_names`] of names longer than three words, whose first `from` bytes are equal, or shorter than one.
#[inline(never)]
fn cmp_rest(a: &[u8], b: &[u8], from: usize) -> Ordering {
    let n = a.len().min(b.len());
    let common = if n >= 8 {
        let mut at = from;
        loop {
            // The last word may overlap bytes already found equal, which does not change the outcome.
            let at_most = at.min(n - 8);
            let (x, y) = (word(a, at_most), word(b, at_most));
            if x != y {
                break x.cmp(&y);
            }
            if at_most == n - 8 {
                break Ordering::Equal;
            }
            at += 8;
        }
    } else {
        short_word(a, n).cmp(&short_word(b, n))
    };
    common.then(a.len().cmp(&b.len()))
}

/// Bytes `at..at + 8` of `s` as a big-endian word, so that words compare as their bytes do.
#[inline(always)]
fn word(s: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&s[at..at + 8]);
    u64::from_be_bytes(w)
}

/// The first `n < 8` bytes of `s` as a word that compares as those bytes do against another string's first `n`
/// (as in [`word`], two loads that may overlap: where the first halves are equal, so is the overlap).
#[inline(always)]
fn short_word(s: &[u8], n: usize) -> u64 {
    if n >= 4 {
        let (hi, lo) = (
            u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
            u32::from_be_bytes([s[n - 4], s[n - 3], s[n - 2], s[n - 1]]),
        );
        (u64::from(hi) << 32) | u64::from(lo)
    } else if n >= 2 {
        (u64::from(u16::from_be_bytes([s[0], s[1]])) << 16) | u64::from(u16::from_be_bytes([s[n - 2], s[n - 1]]))
    } else if n == 1 {
        u64::from(s[0])
    } else {
        0
    }
}

/// A sorted map from name to value, stored as one vector of pairs sorted by name (see the module docs).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NameMap<V> {
    /// Sorted by [`cmp_names`], names unique.
    entries: Vec<(MetricName, V)>,
}

/// A metric set's unlabelled values by metric name.
pub type MetricMap = NameMap<MetricValue>;

impl<V> Default for NameMap<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> NameMap<V> {
    pub const fn new() -> Self {
        NameMap { entries: Vec::new() }
    }

    /// A map with room for `n` metrics: a source that knows how many it will set allocates once.
    pub fn with_capacity(n: usize) -> Self {
        NameMap { entries: Vec::with_capacity(n) }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Room for `additional` more metrics, as [`Vec::reserve`].
    pub fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
    }

    /// Room for exactly `additional` more metrics, as [`Vec::reserve_exact`]: no more is kept than asked for.
    pub fn reserve_exact(&mut self, additional: usize) {
        self.entries.reserve_exact(additional);
    }

    /// How many metrics fit without growing.
    pub fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    /// Where `name` is (`Ok`) or would go (`Err`).
    #[inline]
    fn search(&self, name: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(n, _)| cmp_names(n, name))
    }

    /// Sets `name` to `value`, returning the value it replaces. As in a `BTreeMap`, a name already present keeps
    /// the stored name (a catalog `&'static str` stays borrowed). A name greater than every name present (the
    /// common case: sets are mostly filled in name order) is appended after a single compare.
    #[inline]
    pub fn insert(&mut self, name: impl Into<MetricName>, value: impl Into<V>) -> Option<V> {
        let (name, value) = (name.into(), value.into());
        if let Some((last, v)) = self.entries.last_mut() {
            match cmp_names(last, &name) {
                Ordering::Less => {}
                Ordering::Equal => return Some(std::mem::replace(v, value)),
                Ordering::Greater => return self.insert_inside(name, value),
            }
        }
        self.entries.push((name, value));
        None
    }

    /// [`NameMap::insert`] of a name that sorts before the last one.
    fn insert_inside(&mut self, name: MetricName, value: V) -> Option<V> {
        match self.search(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (name, value));
                None
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&V> {
        self.search(name).ok().map(|i| &self.entries[i].1)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut V> {
        self.search(name).ok().map(|i| &mut self.entries[i].1)
    }

    /// The stored name and value of `name`.
    pub fn get_key_value(&self, name: &str) -> Option<(&MetricName, &V)> {
        self.search(name).ok().map(|i| {
            let (n, v) = &self.entries[i];
            (n, v)
        })
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.search(name).is_ok()
    }

    /// Removes `name`, returning its value if it was present.
    pub fn remove(&mut self, name: &str) -> Option<V> {
        self.search(name).ok().map(|i| self.entries.remove(i).1)
    }

    /// Keeps only the metrics for which `keep` is true, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&MetricName, &mut V) -> bool) {
        self.entries.retain_mut(|(n, v)| keep(n, v));
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Name and value pairs in name order.
    pub fn iter(&self) -> Iter<'_, V> {
        Iter(self.entries.iter())
    }

    /// Name and mutable value pairs in name order (names cannot change: that could unsort the map).
    pub fn iter_mut(&mut self) -> IterMut<'_, V> {
        IterMut(self.entries.iter_mut())
    }

    /// Names in order.
    pub fn keys(&self) -> Keys<'_, V> {
        Keys(self.entries.iter())
    }

    /// Values in name order.
    pub fn values(&self) -> Values<'_, V> {
        Values(self.entries.iter())
    }

    /// Mutable values in name order.
    pub fn values_mut(&mut self) -> ValuesMut<'_, V> {
        ValuesMut(self.entries.iter_mut())
    }

    /// The pairs as a slice, sorted by name.
    pub fn as_slice(&self) -> &[(MetricName, V)] {
        &self.entries
    }
}

impl NameMap<crate::LabelValue> {
    /// The value of label `name` as text.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).map(crate::LabelValue::as_str)
    }
}

impl<V: fmt::Debug> fmt::Debug for NameMap<V> {
    /// As a `BTreeMap` prints: `{"cpu/usage": Int(1), ...}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V> std::ops::Index<&str> for NameMap<V> {
    type Output = V;

    /// The value of `name`; panics if there is none, as `BTreeMap`'s index does.
    fn index(&self, name: &str) -> &V {
        self.get(name).unwrap_or_else(|| panic!("no entry {name:?}"))
    }
}

/// Declares a borrowing iterator of [`NameMap`] over its slice iterator: concrete types rather than
/// `impl Iterator`, so that a caller may let one go before changing the map (an opaque type is assumed to use its
/// borrow until dropped).
macro_rules! slice_iterator {
    ($(#[$doc:meta])* $name:ident, $slice_iter:ident, $item:ty, |$pair:pat_param| $project:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name<'a, V>(std::slice::$slice_iter<'a, (MetricName, V)>);

        impl<'a, V> Iterator for $name<'a, V> {
            type Item = $item;

            #[inline]
            fn next(&mut self) -> Option<Self::Item> {
                self.0.next().map(|$pair| $project)
            }

            fn size_hint(&self) -> (usize, Option<usize>) {
                self.0.size_hint()
            }
        }

        impl<V> DoubleEndedIterator for $name<'_, V> {
            #[inline]
            fn next_back(&mut self) -> Option<Self::Item> {
                self.0.next_back().map(|$pair| $project)
            }
        }

        impl<V> ExactSizeIterator for $name<'_, V> {}
    };
}

slice_iterator!(
    /// Borrowing iterator of [`NameMap`], yielding `(&name, &value)` as a `BTreeMap`'s does.
    Iter, Iter, (&'a MetricName, &'a V), |(n, v)| (n, v)
);
slice_iterator!(
    /// Mutably borrowing iterator of [`NameMap`]: `(&name, &mut value)`.
    IterMut, IterMut, (&'a MetricName, &'a mut V), |(n, v)| (&*n, v)
);
slice_iterator!(
    /// [`NameMap::keys`].
    Keys, Iter, &'a MetricName, |(n, _)| n
);
slice_iterator!(
    /// [`NameMap::values`].
    Values, Iter, &'a V, |(_, v)| v
);
slice_iterator!(
    /// [`NameMap::values_mut`].
    ValuesMut, IterMut, &'a mut V, |(_, v)| v
);

impl<V> Clone for Iter<'_, V> {
    fn clone(&self) -> Self {
        Iter(self.0.clone())
    }
}

impl<V> Clone for Keys<'_, V> {
    fn clone(&self) -> Self {
        Keys(self.0.clone())
    }
}

impl<V> Clone for Values<'_, V> {
    fn clone(&self) -> Self {
        Values(self.0.clone())
    }
}

impl<'a, V> IntoIterator for &'a NameMap<V> {
    type Item = (&'a MetricName, &'a V);
    type IntoIter = Iter<'a, V>;

    fn into_iter(self) -> Iter<'a, V> {
        self.iter()
    }
}

impl<'a, V> IntoIterator for &'a mut NameMap<V> {
    type Item = (&'a MetricName, &'a mut V);
    type IntoIter = IterMut<'a, V>;

    fn into_iter(self) -> IterMut<'a, V> {
        self.iter_mut()
    }
}

impl<V> IntoIterator for NameMap<V> {
    type Item = (MetricName, V);
    type IntoIter = std::vec::IntoIter<(MetricName, V)>;

    /// Owned pairs in name order.
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<N: Into<MetricName>, W: Into<V>, V> FromIterator<(N, W)> for NameMap<V> {
    /// As `BTreeMap::from_iter`: of pairs with the same name, the last one is kept (name and value).
    fn from_iter<I: IntoIterator<Item = (N, W)>>(iter: I) -> Self {
        let mut entries: Vec<(MetricName, V)> = iter.into_iter().map(|(n, v)| (n.into(), v.into())).collect();
        if !entries.is_sorted_by(|(a, _), (b, _)| cmp_names(a, b) == Ordering::Less) {
            // Stable, so that of equal names the last one given is last, and kept below.
            entries.sort_by(|(a, _), (b, _)| cmp_names(a, b));
            entries.dedup_by(|later, earlier| {
                let same = cmp_names(&later.0, &earlier.0) == Ordering::Equal;
                if same {
                    std::mem::swap(later, earlier);
                }
                same
            });
        }
        NameMap { entries }
    }
}

impl<N: Into<MetricName>, W: Into<V>, V> Extend<(N, W)> for NameMap<V> {
    /// As `BTreeMap::extend` (each pair inserted in turn: a name present keeps its stored name and takes the new
    /// value; of names given twice the first keeps its name, the last its value), in one merge rather than a
    /// search and a shift of the vector per pair. Processors add several metrics to every set (rates, requests
    /// and limits), spread among the names the set has; inserting them one by one moved half the set each time.
    /// Grows the vector to the exact size needed, not to the next power of two: sets are many, and each holds on
    /// to its capacity until the batch is gone.
    fn extend<I: IntoIterator<Item = (N, W)>>(&mut self, iter: I) {
        let iter = iter.into_iter();
        let old = self.entries.len();
        let lower = iter.size_hint().0;
        if self.entries.capacity() - old < lower {
            self.entries.reserve_exact(lower);
        }
        self.entries.extend(iter.map(|(n, v)| (n.into(), v.into())));
        self.merge_tail(old);
    }
}

impl<V> NameMap<V> {
    /// Sets the pairs given, as [`NameMap::insert`] of each in turn would (see [`Extend`]).
    pub fn insert_all(&mut self, pairs: impl IntoIterator<Item = (&'static str, V)>) {
        self.extend(pairs.into_iter().map(|(n, v)| (MetricName::Borrowed(n), v)));
    }

    /// Puts the pairs pushed at `old..` in place among the sorted ones before them.
    fn merge_tail(&mut self, old: usize) {
        let entries = &mut self.entries;
        let n = entries.len();
        if n == old {
            return;
        }
        let less = |a: &(MetricName, V), b: &(MetricName, V)| cmp_names(&a.0, &b.0).is_lt();
        let tail_sorted = entries[old..].is_sorted_by(less);
        if tail_sorted && (old == 0 || less(&entries[old - 1], &entries[old])) {
            return; // Appended in order: the common case for sources and for sets built from scratch.
        }
        if !tail_sorted {
            // Stable: of equal names, the first given stays first.
            entries[old..].sort_by(|a, b| cmp_names(&a.0, &b.0));
            if !entries[old..].is_sorted_by(less) {
                // A name given twice: rare enough to take one at a time.
                for (name, value) in entries.split_off(old) {
                    self.insert(name, value);
                }
                return;
            }
        }
        // From the back: the greatest pair of the tail left goes before the pairs of the sorted part greater than
        // it, and those move past the rest of the tail in one rotation (a `memmove`), so that each pair of the
        // sorted part moves once. `..i` is the sorted part still to place, `i..t` the tail, `t..` placed.
        let (mut i, mut t) = (old, n);
        while i > 0 && t > i {
            let last = &entries[t - 1].0;
            match entries[..i].binary_search_by(|(name, _)| cmp_names(name, last)) {
                Ok(p) => {
                    // Present: the stored name stays, with the new value.
                    entries[p].1 = entries.remove(t - 1).1;
                    t -= 1;
                }
                Err(p) => {
                    entries[p..t].rotate_left(i - p);
                    t = p + (t - i) - 1;
                    i = p;
                }
            }
        }
    }
}

impl<N: Into<MetricName>, W: Into<V>, V, const K: usize> From<[(N, W); K]> for NameMap<V> {
    fn from(pairs: [(N, W); K]) -> Self {
        pairs.into_iter().collect()
    }
}

impl<V: Serialize> Serialize for NameMap<V> {
    /// As a map, as a `BTreeMap` would be.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter().map(|(n, v)| (&**n, v)))
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for NameMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(std::collections::BTreeMap::<String, V>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::borrow::Cow;
    use std::collections::BTreeMap;

    fn int(v: i64) -> MetricValue {
        MetricValue::Int(v)
    }

    #[test]
    fn iterates_in_name_order_whatever_the_insert_order() {
        let mut m = MetricMap::new();
        for (i, n) in ["uptime", "cpu/usage", "memory/usage", "cpu/usage_rate", "memory/rss", "a"].iter().enumerate() {
            assert_eq!(m.insert(Cow::Borrowed(*n), int(i as i64)), None);
        }
        let names: Vec<&str> = m.keys().map(|n| n.as_ref()).collect();
        assert_eq!(names, ["a", "cpu/usage", "cpu/usage_rate", "memory/rss", "memory/usage", "uptime"]);
        assert_eq!(m.get("memory/usage"), Some(&int(2)));
        assert_eq!(m["uptime"], int(0));
        assert_eq!(m.get("memory"), None);
        assert_eq!(m.len(), 6);
    }

    #[test]
    fn an_insert_of_a_present_name_replaces_the_value_and_keeps_the_stored_name() {
        let mut m = MetricMap::new();
        m.insert(Cow::Borrowed("custom/qps"), int(1));
        m.insert(Cow::Borrowed("z"), int(1));
        assert_eq!(m.insert(Cow::Owned("custom/qps".to_owned()), int(2)), Some(int(1)));
        assert!(matches!(m.get_key_value("custom/qps"), Some((Cow::Borrowed(_), &MetricValue::Int(2)))));
        // The same at the end, where the append path decides.
        assert_eq!(m.insert(Cow::Owned("z".to_owned()), int(3)), Some(int(1)));
        assert!(matches!(m.get_key_value("z"), Some((Cow::Borrowed(_), &MetricValue::Int(3)))));
    }

    #[test]
    fn from_iter_keeps_the_last_pair_of_a_name_as_btreemap_does() {
        let pairs =
            [("b", 1), ("a", 2), ("b", 3), ("a", 4), ("c", 5)].map(|(n, v)| (Cow::Owned::<str>(n.to_owned()), int(v)));
        let m: MetricMap = pairs.clone().into_iter().collect();
        let b: BTreeMap<MetricName, MetricValue> = pairs.into_iter().collect();
        assert_eq!(m.iter().collect::<Vec<_>>(), b.iter().collect::<Vec<_>>());
    }

    /// Names given to `extend` keep the name already stored, as a `BTreeMap`'s do: catalog names stay borrowed.
    #[test]
    fn extend_keeps_stored_names() {
        let mut m = MetricMap::from([(Cow::Borrowed("b"), int(1)), (Cow::Borrowed("d"), int(1))]);
        m.extend([("a", 2), ("b", 2), ("c", 2), ("b", 3)].map(|(n, v)| (Cow::Owned::<str>(n.to_owned()), int(v))));
        let got: Vec<_> = m.iter().map(|(n, v)| (n.as_ref(), matches!(n, Cow::Borrowed(_)), *v)).collect();
        assert_eq!(got, [("a", false, int(2)), ("b", true, int(3)), ("c", false, int(2)), ("d", true, int(1))]);
        // Each name once: the merge rather than inserts one by one.
        m.extend([("b", 4), ("e", 4)].map(|(n, v)| (Cow::Owned::<str>(n.to_owned()), int(v))));
        assert!(matches!(m.get_key_value("b"), Some((Cow::Borrowed(_), &MetricValue::Int(4)))));
        assert_eq!(m.keys().map(|n| n.as_ref()).collect::<Vec<_>>(), ["a", "b", "c", "d", "e"]);
    }

    /// Labels are a `NameMap` too: to JSON and back as an object, as a `BTreeMap<String, String>` was, and
    /// well-known names stay borrowed (a set's dozen labels are not a dozen allocations).
    #[test]
    fn labels_read_and_write_json_objects_and_keep_catalog_names_borrowed() {
        let mut l = crate::Labels::from([(crate::labels::TYPE, "pod".to_owned())]);
        l.insert("app.kubernetes.io/name".to_owned(), "web".to_owned());
        l.insert(crate::labels::POD_NAME, "web-1".to_owned());
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(json, r#"{"app.kubernetes.io/name":"web","pod_name":"web-1","type":"pod"}"#);
        let back: crate::Labels = serde_json::from_str(&json).unwrap();
        assert_eq!(back, l);
        assert!(matches!(l.get_key_value("type"), Some((Cow::Borrowed(_), _))));
        assert!(matches!(l.get_key_value("app.kubernetes.io/name"), Some((Cow::Owned(_), _))));
        assert_eq!(l["pod_name"], "web-1");
    }

    #[test]
    fn debug_prints_as_a_map() {
        let m = MetricMap::from([(Cow::Borrowed("b"), int(2)), (Cow::Borrowed("a"), MetricValue::Float(0.5))]);
        assert_eq!(format!("{m:?}"), r#"{"a": Float(0.5), "b": Int(2)}"#);
    }

    #[test]
    fn the_same_pointer_with_another_length_is_another_name() {
        let s = "memory/usage_rate";
        assert_eq!(cmp_names(&s[..12], s), Ordering::Less);
        assert_eq!(cmp_names(s, &s[..12]), Ordering::Greater);
        assert_eq!(cmp_names(&s[..3], &s[..3]), Ordering::Equal);
        assert_eq!(cmp_names("", ""), Ordering::Equal);
        assert_eq!(cmp_names("", "a"), Ordering::Less);
    }

    /// Names that share prefixes and lengths around the word size, where a compare of words could go wrong.
    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "",
                "a",
                "uptime",
                "cpu/usage",
                "cpu/usage_rate",
                "memory/usage",
                "memory/usage_rate",
                "memory/rss",
                "network/rx",
                "network/rx_errors",
                "custom/a",
                "custom/ab",
                "abcdefgh",
                "abcdefghi",
                "abcdefgh\0",
                "ephemeral_storage/usage",
                "ephemeral_storage/request",
                "ephemeral_storage/requests",
                "memory/major_page_faults_rate",
            ])
            .prop_map(str::to_owned),
            "[a-c/\u{0}\u{7f}\u{e9}]{0,40}",
        ]
    }

    proptest! {
        #[test]
        fn cmp_names_orders_as_str_does(a in name(), b in name()) {
            prop_assert_eq!(cmp_names(&a, &b), a.as_str().cmp(b.as_str()));
            prop_assert_eq!(cmp_names(&a, &a.clone()), Ordering::Equal);
        }

        /// Any sequence of operations leaves the map as a `BTreeMap` would be, and answers as it would. Extends
        /// of up to 40 pairs cover both merge buffers, names given twice, and pairs in and out of order.
        #[test]
        fn behaves_as_a_btreemap(
            ops in prop::collection::vec(
                (0..7u8, name(), any::<i64>(), prop::collection::vec((name(), any::<i64>()), 0..40)),
                0..40,
            )
        ) {
            let mut m = MetricMap::new();
            let mut model: BTreeMap<MetricName, MetricValue> = BTreeMap::new();
            for (op, n, v, more) in ops {
                match op {
                    0..=2 => {
                        // Borrowed or owned, to check which name is kept.
                        let name: MetricName =
                            if v % 2 == 0 { Cow::Borrowed(Box::leak(n.clone().into_boxed_str())) } else { Cow::Owned(n.clone()) };
                        prop_assert_eq!(m.insert(name.clone(), int(v)), model.insert(name, int(v)));
                    }
                    3 => prop_assert_eq!(m.remove(&n), model.remove(n.as_str())),
                    4 => {
                        if let (Some(a), Some(b)) = (m.get_mut(&n), model.get_mut(n.as_str())) {
                            *a = int(v);
                            *b = int(v);
                        }
                        prop_assert_eq!(m.contains_key(&n), model.contains_key(n.as_str()));
                    }
                    5 => {
                        let mut more: Vec<(MetricName, MetricValue)> =
                            more.into_iter().map(|(n, v)| (Cow::Owned(n), int(v))).collect();
                        more.sort_by(|a, b| a.0.cmp(&b.0));
                        m.extend(more.clone());
                        model.extend(more);
                    }
                    _ => {
                        let more: Vec<(MetricName, MetricValue)> =
                            more.into_iter().map(|(n, v)| (Cow::Owned(n), int(v))).collect();
                        m.extend(more.clone());
                        model.extend(more);
                    }
                }
                prop_assert_eq!(m.get(&n), model.get(n.as_str()));
                prop_assert_eq!(m.len(), model.len());
            }
            let kept = |(n, v): (&MetricName, &MetricValue)| (n.clone(), matches!(n, Cow::Borrowed(_)), *v);
            prop_assert_eq!(m.iter().map(kept).collect::<Vec<_>>(), model.iter().map(kept).collect::<Vec<_>>());
            prop_assert!(m.keys().eq(model.keys()) && m.values().eq(model.values()));
            let rebuilt: MetricMap = model.clone().into_iter().rev().collect();
            prop_assert_eq!(&rebuilt, &m);
            prop_assert_eq!(m.into_iter().collect::<Vec<_>>(), model.into_iter().collect::<Vec<_>>());
        }
    }
}
