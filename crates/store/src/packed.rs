//! A set's labels in one allocation.
//!
//! The store keeps the labels of every set in its window: 365,000 sets on a 5,000-node cluster. As a
//! `BTreeMap<String, String>` a dozen labels cost a tree node plus two allocations each, about 1.5 KB; packed as
//! length-prefixed key and value bytes in key order they cost their text and one allocation header, and an unchanged
//! set is recognised in one pass over its labels, without copying them.
//!
//! Heapster's own label names (`labels::ALL`: `container_name`, `namespace_id`, ...) are a byte each: written out
//! they were about 130 of a container set's 290 bytes, 4 of the store's 70 bytes per series.

use heapster_model::labels::ALL as KNOWN;
use heapster_model::{Labels, varint};

/// Labels as `[key][len][value]...` in key order, lengths as LEB128 varints. A key is `varint(id << 1 | 1)` for
/// `KNOWN[id]`, else `varint(len << 1)` and its bytes: one packing per labels, so equal labels are equal bytes.
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
            match KNOWN.iter().position(|l| l.key == &**k) {
                Some(id) => varint::put(out, (id as u64) << 1 | 1),
                None => {
                    varint::put(out, (k.len() as u64) << 1);
                    out.extend_from_slice(k.as_bytes());
                }
            }
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
        labels.iter().all(|(k, v)| {
            pos < data.len() && key(data, &mut pos).is_some_and(|stored| stored == &**k) && {
                // Lengths are stored in the one (shortest) encoding, so equal numbers are equal bytes.
                let len = varint::get(data, &mut pos) as usize;
                let stored = data.get(pos..pos + len);
                pos += len;
                stored == Some(v.as_bytes())
            }
        }) && pos == data.len()
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
            let k = key(data, &mut pos).unwrap_or_default();
            let len = varint::get(data, &mut pos) as usize;
            let v = text(&data[pos..pos + len]);
            pos += len;
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

/// The key at `pos`, moved past it; `None` when it is cut short.
fn key<'a>(data: &'a [u8], pos: &mut usize) -> Option<&'a str> {
    let code = varint::get(data, pos) as usize;
    if code & 1 == 1 {
        return KNOWN.get(code >> 1).map(|l| l.key);
    }
    let s = data.get(*pos..*pos + (code >> 1))?;
    *pos += code >> 1;
    Some(text(s))
}

/// Packed from `&str`s, cut at their boundaries: always valid UTF-8.
fn text(s: &[u8]) -> &str {
    std::str::from_utf8(s).unwrap_or_default()
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
        // "type" and "labels" are Heapster's own: a byte each, the other two keys written out after their lengths;
        // the values' lengths take a byte each but the 300-byte one's, two.
        let text: usize = labels.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert_eq!(p.bytes(), text - "type".len() - "labels".len() + 2 + 2 + 5);
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
        // An empty key and value pack to two bytes, which a store of no labels must not be taken for.
        variants.push(Labels::from([(String::new(), String::new())]));
        let mut v = base.clone();
        v.insert("container_name", "c");
        variants.push(v);
        for stored in &variants {
            let p = PackedLabels::pack(stored);
            for given in &variants {
                assert_eq!(p.matches(given), p.is(&PackedLabels::pack(given).0), "{stored:?} vs {given:?}");
            }
        }
    }
}
