//! [`LabelValue`]: the value of one label, shared rather than copied.
//!
//! A pod's name, namespace, UID, node and user labels appear on the pod's set and on each of its containers' sets,
//! and the enrichers copy the same cached strings (`labels`, `namespace_id`, `container_base_image`) onto every
//! one of them. As `String`s that was about a dozen allocations per set and round, and as many frees when the
//! batch went: at 5,000 nodes the allocator was a fifth of heapster's CPU, and label values were most of a set's
//! allocations and a sixth of a batch's memory. A value made once per pod (or once per cached pod) and cloned onto
//! each set costs a reference-count increment instead.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::{Borrow, Cow};
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// An immutable, cheaply cloned string: a label's value. Compares, orders and hashes as its `str` does, and
/// serializes as one.
#[derive(Clone, Eq, PartialOrd, Ord)]
pub struct LabelValue(Arc<str>);

impl LabelValue {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether both are the same shared string (not only equal text).
    pub fn ptr_eq(&self, other: &LabelValue) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Default for LabelValue {
    /// The empty value, one per thread rather than an allocation each: sources default missing fields to it.
    fn default() -> Self {
        thread_local! {
            static EMPTY: LabelValue = LabelValue(Arc::from(""));
        }
        EMPTY.with(LabelValue::clone)
    }
}

impl PartialEq for LabelValue {
    /// The same shared string is equal without reading it: values cloned from one pod's are the usual case.
    #[inline]
    fn eq(&self, other: &LabelValue) -> bool {
        self.ptr_eq(other) || *self.0 == *other.0
    }
}

impl std::hash::Hash for LabelValue {
    /// As the `str` does, so that maps keyed by values are searched by `&str` ([`Borrow`]).
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        (*self.0).hash(h);
    }
}

impl Deref for LabelValue {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for LabelValue {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for LabelValue {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LabelValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl fmt::Debug for LabelValue {
    /// As a `String` prints, so that test output and logs read as before.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<&str> for LabelValue {
    fn from(s: &str) -> Self {
        LabelValue(Arc::from(s))
    }
}

impl From<&String> for LabelValue {
    fn from(s: &String) -> Self {
        LabelValue(Arc::from(s.as_str()))
    }
}

impl From<String> for LabelValue {
    fn from(s: String) -> Self {
        LabelValue(Arc::from(s))
    }
}

impl From<Arc<str>> for LabelValue {
    fn from(s: Arc<str>) -> Self {
        LabelValue(s)
    }
}

impl From<Cow<'_, str>> for LabelValue {
    fn from(s: Cow<'_, str>) -> Self {
        LabelValue(Arc::from(s))
    }
}

impl From<&LabelValue> for String {
    fn from(v: &LabelValue) -> Self {
        v.0.as_ref().to_owned()
    }
}

impl PartialEq<str> for LabelValue {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for LabelValue {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for LabelValue {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<LabelValue> for str {
    fn eq(&self, other: &LabelValue) -> bool {
        *self == *other.0
    }
}

impl PartialEq<LabelValue> for &str {
    fn eq(&self, other: &LabelValue) -> bool {
        **self == *other.0
    }
}

impl PartialEq<LabelValue> for String {
    fn eq(&self, other: &LabelValue) -> bool {
        **self == *other.0
    }
}

impl Serialize for LabelValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for LabelValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(LabelValue::from(<Cow<'de, str>>::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_and_serializes_as_its_text() {
        let a = LabelValue::from("web-1");
        let b = LabelValue::from(String::from("web-1"));
        assert!(!a.ptr_eq(&b));
        assert_eq!(a, b, "equal text, different allocations");
        assert_eq!(a, a.clone());
        assert!(a.ptr_eq(&a.clone()), "a clone shares the text");
        let later = LabelValue::from("web-2");
        assert!(a < later);
        assert_eq!(a, "web-1");
        assert_eq!(serde_json::to_string(&a).unwrap(), r#""web-1""#);
        let back: LabelValue = serde_json::from_str(r#""w\"eb""#).unwrap();
        assert_eq!(back, "w\"eb");
        assert_eq!(format!("{a:?} {a}"), r#""web-1" web-1"#);
        assert!(LabelValue::default().is_empty());
    }
}
