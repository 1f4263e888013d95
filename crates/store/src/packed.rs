//! A set's labels, packed.
//!
//! The store keeps the labels of every set in its window: 365,000 sets on a 5,000-node cluster. As a
//! `BTreeMap<String, String>` a dozen labels cost a tree node plus two allocations each, about 1.5 KB; packed as
//! key and length-prefixed value bytes in key order they cost their text, and an unchanged set is recognised in one
//! pass over its labels, without copying them.
//!
//! Heapster's own label names (`labels::ALL`: `container_name`, `namespace_id`, ...) are a byte each: written out
//! they were about 130 of a container set's 290 bytes, 4 of the store's 70 bytes per series. A pod's labels are
//! kept once for the pod and its containers ([`PackedLabels`]).

use heapster_model::labels::{self, ALL as KNOWN};
use heapster_model::{Labels, varint};
use std::sync::Arc;

/// Labels each set has of its own: every other label of a container is its pod's, and every other label of a
/// node's system container is its node's.
const OWN: [&str; 3] = [labels::TYPE, labels::CONTAINER_NAME, labels::CONTAINER_BASE_IMAGE];

/// A set's labels as two packed parts: those it shares with the other sets of its pod (or node), which the store
/// keeps once for them all, and its own ([`OWN`]). Shared, a pod's labels (its UIDs, names, node and Kubernetes
/// labels) are kept once for the pod and its containers instead of once each: 66.0 -> 64.4 bytes per series on
/// the simulator's sets.
///
/// Each part is `[key][len][value]...` in key order, lengths as LEB128 varints. A key is `varint(id << 1 | 1)` for
/// `KNOWN[id]`, else `varint(len << 1)` and its bytes: one packing per labels, so equal labels are equal bytes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PackedLabels {
    shared: Arc<[u8]>,
    own: Box<[u8]>,
}

/// Labels packed, before the shared part is interned ([`PackedLabels::pack_into`]).
#[derive(Debug, Default)]
pub struct Parts {
    pub shared: Vec<u8>,
    pub own: Vec<u8>,
}

fn is_own(key: &str) -> bool {
    OWN.contains(&key)
}

fn put(out: &mut Vec<u8>, k: &str, v: &str) {
    match KNOWN.iter().position(|l| l.key == k) {
        Some(id) => varint::put(out, (id as u64) << 1 | 1),
        None => {
            varint::put(out, (k.len() as u64) << 1);
            out.extend_from_slice(k.as_bytes());
        }
    }
    varint::put(out, v.len() as u64);
    out.extend_from_slice(v.as_bytes());
}

impl PackedLabels {
    #[cfg(test)]
    pub fn pack(labels: &Labels) -> Self {
        let mut parts = Parts::default();
        Self::pack_into(labels, &mut parts);
        Self::from_parts(parts.shared.as_slice().into(), &parts.own)
    }

    /// Packs `labels` into `out` (cleared first): a set's labels when they changed ([`PackedLabels::matches`]).
    pub fn pack_into(labels: &Labels, out: &mut Parts) {
        out.shared.clear();
        out.own.clear();
        for (k, v) in labels {
            put(if is_own(k) { &mut out.own } else { &mut out.shared }, k, v);
        }
    }

    /// The labels of `shared`, interned by the caller, and of `own`.
    pub fn from_parts(shared: Arc<[u8]>, own: &[u8]) -> Self {
        PackedLabels { shared, own: own.into() }
    }

    /// Whether these are the labels packed in `parts`.
    #[cfg(test)]
    pub fn is(&self, parts: &Parts) -> bool {
        *self.shared == *parts.shared && *self.own == *parts.own
    }

    /// Whether these are `labels`, compared where they lie: the store asks this of every set of every batch and
    /// the answer is nearly always yes, so packing the set's labels first (a copy of all their bytes) only to
    /// compare was wasted. The same answer as a compare of the packed forms (a test checks).
    pub fn matches(&self, labels: &Labels) -> bool {
        // Packing is canonical (one encoding of each key and length), so equal pairs are equal bytes.
        let (mut shared, mut own) = (pairs(&self.shared), pairs(&self.own));
        labels.iter().all(|(k, v)| {
            let part = if is_own(k) { &mut own } else { &mut shared };
            part.next() == Some((&**k, &**v))
        }) && shared.next().is_none()
            && own.next().is_none()
    }

    /// (key, value) pairs in key order: the two parts' merged.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut shared = pairs(&self.shared).peekable();
        let mut own = pairs(&self.own).peekable();
        std::iter::from_fn(move || match (shared.peek(), own.peek()) {
            (Some(s), Some(o)) if o.0 < s.0 => own.next(),
            (Some(_), _) => shared.next(),
            (None, _) => own.next(),
        })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        let part = if is_own(key) { &self.own } else { &*self.shared };
        pairs(part).find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub fn unpack(&self) -> Labels {
        self.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
    }

    /// Heap bytes held of its own (the shared part is counted where it is interned).
    pub fn bytes(&self) -> usize {
        self.own.len()
    }
}

/// The (key, value) pairs of one packed part, in order.
fn pairs(data: &[u8]) -> impl Iterator<Item = (&str, &str)> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= data.len() {
            return None;
        }
        let k = key(data, &mut pos).unwrap_or_default();
        let len = varint::get(data, &mut pos) as usize;
        let v = text(data.get(pos..pos + len).unwrap_or_default());
        pos += len;
        Some((k, v))
    })
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

    fn parts(labels: &Labels) -> Parts {
        let mut out = Parts::default();
        PackedLabels::pack_into(labels, &mut out);
        out
    }

    /// A pod's sets share one part: a container's labels but its own are its pod's, packed alike.
    #[test]
    fn a_pod_and_its_containers_pack_the_same_shared_part_and_iterate_in_key_order() {
        let pod = Labels::from([
            ("type".to_owned(), "pod".to_owned()),
            ("pod_name".to_owned(), "web-1".to_owned()),
            ("namespace_name".to_owned(), "default".to_owned()),
            ("app".to_owned(), "web".to_owned()),
        ]);
        let mut container = pod.clone();
        container.insert("type", "pod_container");
        container.insert("container_name", "nginx");
        container.insert("container_base_image", "nginx:1.27");
        let (p, c) = (parts(&pod), parts(&container));
        assert_eq!(p.shared, c.shared);
        assert_ne!(p.own, c.own);
        let packed = PackedLabels::pack(&container);
        let keys: Vec<&str> = packed.iter().map(|(k, _)| k).collect();
        let want: Vec<&str> = container.iter().map(|(k, _)| &**k).collect();
        assert_eq!(keys, want);
        assert_eq!(packed.get("container_name"), Some("nginx"));
        assert_eq!(packed.get("pod_name"), Some("web-1"));
        assert!(packed.matches(&container) && !packed.matches(&pod));
    }

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
        assert!(p.is(&parts(&labels)));
        assert_eq!(p.get("labels"), Some(long.as_str()));
        assert_eq!(p.get("empty"), Some(""));
        assert_eq!(p.get("missing"), None);
        let mut other = labels.clone();
        other.insert("type", "pod");
        assert!(!p.is(&parts(&other)));
        other.remove("type");
        assert!(!p.is(&parts(&other)));
        let mut more = labels.clone();
        more.insert("zzz", String::new());
        assert!(!p.is(&parts(&more)));
        assert!(PackedLabels::pack(&Labels::new()).is(&Parts::default()));
        // "type" and "labels" are Heapster's own: a byte each, the other two keys written out after their lengths;
        // the values' lengths take a byte each but the 300-byte one's, two. Only "type" is the set's own.
        let text: usize = labels.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert_eq!(p.shared.len() + p.own.len(), text - "type".len() - "labels".len() + 2 + 2 + 5);
        assert_eq!(p.bytes(), 2 + "pod_container".len());
        let mut buf = Parts { shared: vec![1, 2, 3], own: vec![4] };
        PackedLabels::pack_into(&labels, &mut buf);
        assert!(p.is(&buf));
        assert_eq!(PackedLabels::from_parts(buf.shared.as_slice().into(), &buf.own), p);
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
                assert_eq!(p.matches(given), p.is(&parts(given)), "{stored:?} vs {given:?}");
            }
        }
    }
}
