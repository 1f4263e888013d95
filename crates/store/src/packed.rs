//! A set's labels in one allocation.
//!
//! The store keeps the labels of every set in its window: 365,000 sets on a 5,000-node cluster. As a
//! `BTreeMap<String, String>` a dozen labels cost a tree node plus two allocations each, about 1.5 KB; packed as
//! length-prefixed key and value bytes in key order they cost their text and one allocation header, and an unchanged
//! set is recognised with one byte compare.

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

    /// Packs `labels` into `out` (cleared first), so that an unchanged set is recognised with one byte compare
    /// ([`PackedLabels::is`]) instead of a string compare per label: the store checks every set of every batch.
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
    pub fn is(&self, packed: &[u8]) -> bool {
        *self.0 == *packed
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
        other.insert("type", "pod".into());
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
}
