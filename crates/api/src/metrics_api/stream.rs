//! JSON lists written straight into the response body, item by item (see [`crate::chunked`]).

use crate::chunked::{ChunkWriter, chunked_response};
use axum::response::Response;
use serde::Serialize;

/// Collects one list's items and hands full chunks to the response body.
pub(crate) struct ItemWriter<'a> {
    out: &'a mut ChunkWriter,
    first: bool,
}

impl ItemWriter<'_> {
    /// Appends one item; `false` once the client has gone, so the producer can stop early.
    pub(crate) fn item<T: Serialize>(&mut self, item: &T) -> bool {
        if self.out.closed() {
            return false;
        }
        let buf = &mut self.out.buf;
        let mark = buf.len();
        if !self.first {
            buf.push(b',');
        }
        match serde_json::to_writer(&mut *buf, item) {
            Ok(()) => self.first = false,
            Err(e) => {
                // Our own types always serialize; should one not, drop the item rather than corrupt the list.
                tracing::warn!("metrics API: an item could not be serialized ({e}); left out");
                buf.truncate(mark);
            }
        }
        self.out.maybe_flush()
    }
}

/// A `{"kind":..,"apiVersion":..,"metadata":{},"items":[...]}` response whose items `produce` writes.
pub(crate) fn list_response<F>(kind: &'static str, api_version: &'static str, produce: F) -> Response
where
    F: FnOnce(&mut ItemWriter) + Send + 'static,
{
    chunked_response("application/json", move |out| {
        let head = format!(r#"{{"kind":"{kind}","apiVersion":"{api_version}","metadata":{{}},"items":["#);
        out.buf.extend_from_slice(head.as_bytes());
        let mut w = ItemWriter { out, first: true };
        produce(&mut w);
        w.out.buf.extend_from_slice(b"]}");
    })
}
