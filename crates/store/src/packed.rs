//! A set's labels in one allocation.
//!
//! The store keeps the labels of every set in its window: 365,000 sets on a 5,000-node cluster. As a
//! `BTreeMap<String, String>` a dozen labels cost a tree node plus two allocations each, about 1.5 KB; packed as
//! length-prefixed key and value bytes in key order they cost their text and one allocation header, and an unchanged
//! set is recognised in one pass over its labels, without copying them.

use heapster_model::{Labels, varint};

/// Labels as `[len][key][len][value]...` in key order, lengths as LEB128 varints.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PackedLabels(Box<[u8]>);

impl PackedLabels {
    #[cfg(test)]
    pub fn pack(labels: &Labels) -> Self {
        let mut out = Vec::new();
        Self::pack_into(labels, &mut out);
        PackedLabels(out.into_boxed_slice())
    }

    /// Packs `labels` into `out` (cleared first): a set's labels when they changed ([`PackedLabels::matches`]).
    pub fn pack_into(labels: &Labels, out: &mut Vec<u8>) {
        out.clear();
        for (k, v) in labels {
            varint::put(out, k.len() as u64);
            out.extend_from_slice(k.as_bytes());
            varint::put(out, v.len() as u64);
            out.extend_from_slice(v.as_bytes());
        }
    }

    /// Whether these are the labels packed in `packed`.
    #[cfg(test)]
    pub fn is(&self, packed: &[u8]) -> bool {
        *self.0 == *packed
    }

    /// Whether these are `labels`, compared where they lie: the store asks this of every set of every batch and
    /// the answer is nearly always yes, so packing the set's labels first (a copy of all their bytes) only to
    /// compare was wasted. The same answer as a byte compare of the
    /// packed form (a test checks).
    pub fn matches(&self, labels: &Labels) -> bool {
        let data = &*self.0;
        let mut pos = 0;
        let mut same = |s: &str| {
            // Lengths are stored in the one (shortest) encoding, so equal numbers are equal bytes.
            let len = varint::get(data, &mut pos) as usize;
            if len != s.len() {
                return false;
            }
            let Some(stored) = data.get(pos..pos + len) else { return false };
            pos += len;
            stored == s.as_bytes()
        };
        labels.iter().all(|(k, v)| same(k) && same(v)) && pos == data.len()
    }

    pub fn from_packed(packed: &[u8]) -> Self {
        PackedLabels(packed.into())
    }

    /// (key, value) pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut pos = 0;
        let data = &self.0;
        std::iter::from_fn(move || {
            if pos >= data.len() {
                return None;
            }
            let mut next = || {
                let len = varint::get(data, &mut pos) as usize;
                let s = &data[pos..pos + len];
                pos += len;
                // Packed from `&str`s, cut at their boundaries: always valid UTF-8.
                std::str::from_utf8(s).unwrap_or_default()
            };
            let k = next();
            let v = next();
            Some((k, v))
        })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub fn unpack(&self) -> Labels {
        self.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
    }

    /// Heap bytes held.
    pub fn bytes(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_compare_without_unpacking() {
        let long = "x".repeat(300);
        let labels = Labels::from([
            ("type".to_owned(), "pod_container".to_owned()),
            ("labels".to_owned(), long.clone()),
            ("empty".to_owned(), String::new()),
            ("ünïcode".to_owned(), "välue".to_owned()),
        ]);
        let p = PackedLabels::pack(&labels);
        assert_eq!(p.unpack(), labels);
        assert!(p.is(&PackedLabels::pack(&labels).0));
        assert_eq!(p.get("labels"), Some(long.as_str()));
        assert_eq!(p.get("empty"), Some(""));
        assert_eq!(p.get("missing"), None);
        let mut other = labels.clone();
        other.insert("type", "pod");
        assert!(!p.is(&PackedLabels::pack(&other).0));
        other.remove("type");
        assert!(!p.is(&PackedLabels::pack(&other).0));
        let mut more = labels.clone();
        more.insert("zzz", String::new());
        assert!(!p.is(&PackedLabels::pack(&more).0));
        assert!(PackedLabels::pack(&Labels::new()).is(&[]));
        assert!(p.bytes() < 400);
        let mut buf = vec![1, 2, 3];
        PackedLabels::pack_into(&labels, &mut buf);
        assert!(p.is(&buf));
        assert_eq!(PackedLabels::from_packed(&buf), p);
        PackedLabels::pack_into(&other, &mut buf);
        assert!(!p.is(&buf));
    }

    #[test]
    fn matches_answers_as_a_compare_of_the_packed_form() {
        let long = "y".repeat(200);
        let base = Labels::from([
            ("type".to_owned(), "pod_container".to_owned()),
            ("labels".to_owned(), long.clone()),
            ("empty".to_owned(), String::new()),
        ]);
        let mut variants = vec![base.clone(), Labels::new()];
        let mut v = base.clone();
        v.insert("type", "pod");
        variants.push(v);
        let mut v = base.clone();
        v.remove("empty");
        variants.push(v);
        let mut v = base.clone();
        v.insert("zzz", "1");
        variants.push(v);
        let mut v = base.clone();
        v.insert("labels", "y".repeat(199) + "z");
        variants.push(v);
        let mut v = base.clone();
        v.insert("labels", "y".repeat(130));
        variants.push(v);
        for stored in &variants {
            let p = PackedLabels::pack(stored);
            for given in &variants {
                assert_eq!(p.matches(given), p.is(&PackedLabels::pack(given).0), "{stored:?} vs {given:?}");
            }
        }
    }
}
