//! The sources' JSON decoding: simd-json first, serde_json for the verdict when it refuses a document.
//!
//! Kubelets send their Summary indented by one space (go-restful's default). simd-json decodes the 57 kB 1.28
//! fixture into the same types about 1.3x faster than serde_json (166 against 216 us on the 2026-12-05 machine,
//! with mimalloc), though only 1.05x on compact JSON: much of the gain is in skipping whitespace. But it rewrites
//! the bytes it decodes, and its errors say little ("Syntax at character 0" for a body cut short). So the body is
//! copied into a scratch buffer of this thread (about 1.5 us for 57 kB) and decoded there, and a document it
//! refuses is decoded again by serde_json, whose error names the line, the column and the field, and tells a
//! truncated body from a malformed one. serde_json has the last word: a document it accepts is never refused. The
//! other way there is one known difference: simd-json reads `-0` as the integer 0 where serde_json refuses it for
//! an integer field (and as +0.0 where serde_json reads -0.0 for a float one).
//!
//! simd-json holds several times a body's size while it decodes (the copy, its own padded copy, its string buffer,
//! 28 bytes per structural character), about 30 times for a body of nothing but brackets: bodies over
//! [`SIMD_MAX_BODY`] go to serde_json, which skips what it does not keep without holding it. Documents nested
//! deeper than serde_json allows go to serde_json too, for its answer.

use serde::de::DeserializeOwned;
use std::cell::RefCell;

/// The largest body simd-json is given: a kubelet Summary of 110 pods is about 0.4 MB, indented as kubelets send it.
const SIMD_MAX_BODY: usize = 2 << 20;

/// Above this, a decode's scratch is let go after it rather than held for as long as the thread lives.
const KEEP_SCRATCH: usize = 512 << 10;

/// Under serde_json's recursion limit (128), so that simd-json never takes a document serde_json would refuse as
/// nested too deep.
const MAX_DEPTH: usize = 127;

fn buffers() -> simd_json::Buffers {
    simd_json::Buffers::with_max_depth(0, MAX_DEPTH)
}

thread_local! {
    static SCRATCH: RefCell<(Vec<u8>, simd_json::Buffers)> = RefCell::new((Vec::new(), buffers()));
}

/// `bytes` decoded by simd-json, or `None` where it refuses them or they are larger than [`SIMD_MAX_BODY`] (the
/// caller then asks serde_json).
pub fn simd<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    if bytes.len() > SIMD_MAX_BODY {
        return None;
    }
    SCRATCH
        .try_with(|scratch| {
            let (copy, buffers) = &mut *scratch.try_borrow_mut().ok()?;
            copy.clear();
            copy.extend_from_slice(bytes);
            let decoded = simd_json::serde::from_slice_with_buffers(copy, buffers).ok();
            if bytes.len() > KEEP_SCRATCH {
                *copy = Vec::new();
                *buffers = self::buffers();
            }
            decoded
        })
        .ok()
        .flatten()
}

/// `bytes` decoded as [`simd`] does, with serde_json's answer where simd-json refuses them. JSON is UTF-8: the
/// whole body is checked once first, since serde_json does not check the strings it skips (and, given a `str`,
/// does not check again the strings it keeps).
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    if let Some(v) = simd(bytes) {
        return Ok(v);
    }
    let text =
        std::str::from_utf8(bytes).map_err(|e| serde::de::Error::custom(format!("the body is not UTF-8: {e}")))?;
    serde_json::from_str(text)
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
    /// the answer.
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
            let named = err.line() >= 1 && err.column() >= 1 || err.to_string().contains("not UTF-8");
            assert!(named, "serde_json's error names where, or the body is not UTF-8: {err}");
        }
        // Invalid UTF-8 in a field serde_json would skip is refused all the same.
        assert!(from_slice::<Doc>(b"{\"zz\": \"\xff\"}").is_err());
    }

    #[test]
    fn large_and_deep_documents_go_to_serde_json_and_a_large_scratch_is_let_go() {
        let over = format!("{{\"name\": \"{}\"}}", "x".repeat(SIMD_MAX_BODY));
        assert!(simd::<Doc>(over.as_bytes()).is_none());
        assert_eq!(from_slice::<Doc>(over.as_bytes()).unwrap().name.len(), SIMD_MAX_BODY);
        let big = format!("{{\"name\": \"{}\"}}", "x".repeat(KEEP_SCRATCH + 1));
        assert_eq!(simd::<Doc>(big.as_bytes()).unwrap().name.len(), KEEP_SCRATCH + 1);
        SCRATCH.with(|s| assert_eq!(s.borrow().0.capacity(), 0));
        assert_eq!(simd::<Doc>(b"{}"), Some(Doc::default()));
        let nested = |depth: usize| format!("{{\"zz\": {}{}}}", "[".repeat(depth), "]".repeat(depth));
        assert!(simd::<Doc>(nested(200).as_bytes()).is_none());
        let serde_json_says = serde_json::from_slice::<Doc>(nested(200).as_bytes()).map_err(|e| e.to_string());
        assert_eq!(from_slice::<Doc>(nested(200).as_bytes()).map_err(|e| e.to_string()), serde_json_says);
        assert_eq!(simd::<Doc>(nested(20).as_bytes()), Some(Doc::default()));
    }
}
