//! The sources' JSON decoding: simd-json first, serde_json for the verdict when it refuses a document.
//!
//! simd-json decodes a kubelet Summary into the same types about 1.3x faster than serde_json (176 against 257 us
//! for the 57 kB 1.28 fixture on the 2026-12-05 machine; the Summary decode is most of heapster's `decode` stage).
//! But it rewrites the bytes it decodes, and its errors say little ("Syntax at character 0" for a body cut
//! short). So the body is copied into a scratch buffer of this thread (about 1.5 us for 57 kB) and decoded there,
//! and a document it refuses is decoded again by serde_json, whose error names the line, the column and the
//! field, and tells a truncated body from a malformed one. serde_json has the last word: a document it accepts is
//! never refused.

use serde::de::DeserializeOwned;
use std::cell::RefCell;

/// A scratch buffer held after a larger document would keep that document's size for as long as the thread
/// lives; above this it is let go.
const KEEP_SCRATCH: usize = 4 << 20;

thread_local! {
    static SCRATCH: RefCell<(Vec<u8>, simd_json::Buffers)> = RefCell::new((Vec::new(), simd_json::Buffers::default()));
}

/// `bytes` decoded by simd-json, or `None` where it refuses them (the caller then asks serde_json, for the error).
pub fn simd<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    SCRATCH.with(|scratch| {
        let (copy, buffers) = &mut *scratch.try_borrow_mut().ok()?;
        copy.clear();
        copy.extend_from_slice(bytes);
        let decoded = simd_json::serde::from_slice_with_buffers(copy, buffers).ok();
        if copy.capacity() > KEEP_SCRATCH {
            *copy = Vec::new();
            *buffers = simd_json::Buffers::default();
        }
        decoded
    })
}

/// `bytes` decoded as [`simd`] does, with serde_json's answer where simd-json refuses them.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    match simd(bytes) {
        Some(v) => Ok(v),
        None => serde_json::from_slice(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(default)]
    struct Doc {
        name: String,
        count: Option<u64>,
        value: Option<f64>,
        items: Vec<Doc>,
    }

    /// What simd-json decodes is what serde_json decodes, and where it refuses a document serde_json's error is
    /// the answer, or serde_json's value where serde_json takes what simd-json does not.
    #[test]
    fn simd_json_and_serde_json_agree_and_serde_json_has_the_last_word() {
        let docs: &[&[u8]] = &[
            br#"{"name": "a\u00e9\n\"b\"", "count": 18446744073709551615, "value": 0.30000000000000004}"#,
            br#"{"items": [{"name": "x", "value": 5e-324}, {"value": 1.7976931348623157e308}], "unknown": [1, {}]}"#,
            br#"{"count": null, "value": null, "items": []}"#,
        ];
        for doc in docs {
            let want: Doc = serde_json::from_slice(doc).unwrap();
            assert_eq!(simd::<Doc>(doc).as_ref(), Some(&want), "{}", String::from_utf8_lossy(doc));
            assert_eq!(from_slice::<Doc>(doc).unwrap(), want);
        }
        for (doc, eof) in [
            (&br#"{"name": "a", "items": [{"na"#[..], true),
            (br#"{"count": -1}"#, false),
            (br#"{"count": 1.5}"#, false),
            (b"{\"name\": \"\xe9\"}", false),
            (br#"{"name": "a"} x"#, false),
        ] {
            assert!(simd::<Doc>(doc).is_none(), "{}", String::from_utf8_lossy(doc));
            let err = from_slice::<Doc>(doc).unwrap_err();
            assert_eq!(err.is_eof(), eof, "{err}");
            assert!(err.line() >= 1 && err.column() >= 1, "serde_json's error names where: {err}");
        }
        // The scratch buffer is reused, and a document larger than it is kept for is let go after.
        let big = format!("{{\"name\": \"{}\"}}", "x".repeat(KEEP_SCRATCH + 1));
        assert_eq!(simd::<Doc>(big.as_bytes()).unwrap().name.len(), KEEP_SCRATCH + 1);
        SCRATCH.with(|s| assert_eq!(s.borrow().0.capacity(), 0));
        assert_eq!(simd::<Doc>(docs[2]), Some(Doc::default()));
    }
}
