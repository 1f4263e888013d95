//! Lists written straight into the response body, chunk by chunk, from a blocking thread.
//!
//! A PodMetricsList of 150,000 pods is tens of megabytes of JSON. Building the items first and serializing them
//! after would hold it twice; here each item is read from the store and serialized into a 64 KiB buffer that is
//! sent as soon as it fills, so memory stays at one chunk plus the list of keys, and a client that hangs up stops
//! the work at the next chunk.

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::mpsc;

/// Bytes buffered before a chunk is sent.
const CHUNK: usize = 64 * 1024;

/// Chunks in flight between the producer and the connection: enough to keep the socket busy, little memory.
const IN_FLIGHT: usize = 4;

/// Collects one list's items and hands full chunks to the response body.
pub(crate) struct ItemWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    first: bool,
    closed: bool,
}

impl ItemWriter {
    /// Appends one item; `false` once the client has gone, so the producer can stop early.
    pub(crate) fn item<T: Serialize>(&mut self, item: &T) -> bool {
        if self.closed {
            return false;
        }
        let mark = self.buf.len();
        if !self.first {
            self.buf.push(b',');
        }
        match serde_json::to_writer(&mut self.buf, item) {
            Ok(()) => self.first = false,
            Err(e) => {
                // Our own types always serialize; should one not, drop the item rather than corrupt the list.
                tracing::warn!("metrics API: an item could not be serialized ({e}); left out");
                self.buf.truncate(mark);
            }
        }
        if self.buf.len() >= CHUNK {
            self.flush();
        }
        !self.closed
    }

    fn flush(&mut self) {
        if self.buf.is_empty() || self.closed {
            return;
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + 1024)));
        if self.tx.blocking_send(Ok(chunk)).is_err() {
            self.closed = true;
        }
    }
}

/// A `{"kind":..,"apiVersion":..,"metadata":{},"items":[...]}` response whose items `produce` writes on a blocking
/// thread (store reads take locks and cost CPU: they must not stall the async workers).
pub(crate) fn list_response<F>(kind: &'static str, api_version: &'static str, produce: F) -> Response
where
    F: FnOnce(&mut ItemWriter) + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel(IN_FLIGHT);
    let head = format!(r#"{{"kind":"{kind}","apiVersion":"{api_version}","metadata":{{}},"items":["#);
    tokio::task::spawn_blocking(move || {
        let mut w = ItemWriter { buf: head.into_bytes(), tx, first: true, closed: false };
        w.buf.reserve(CHUNK);
        produce(&mut w);
        w.buf.extend_from_slice(b"]}");
        w.flush();
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    ([(header::CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response()
}
