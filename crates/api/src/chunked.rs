//! Response bodies written chunk by chunk from a blocking thread, for pages too large to hold whole.
//!
//! A PodMetricsList or a `/metrics/cadvisor` page of 150,000 pods is tens of megabytes. Building it first and
//! sending it after would hold it whole; here the producer writes into a 64 KiB buffer that is sent as soon as it
//! fills, so memory stays at a few chunks plus what the producer indexes, and a client that hangs up stops the
//! work at the next chunk.

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

/// Bytes buffered before a chunk is sent.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Chunks in flight between the producer and the connection: enough to keep the socket busy, little memory.
const IN_FLIGHT: usize = 4;

/// The producer's side of a streamed body.
pub(crate) struct ChunkWriter {
    pub(crate) buf: Vec<u8>,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    closed: bool,
}

impl ChunkWriter {
    /// Sends the buffer if it is full; `false` once the client has gone, so the producer can stop early.
    pub(crate) fn maybe_flush(&mut self) -> bool {
        if self.buf.len() >= CHUNK {
            self.flush();
        }
        !self.closed
    }

    /// Whether the client has gone.
    pub(crate) fn closed(&self) -> bool {
        self.closed
    }

    pub(crate) fn flush(&mut self) {
        if self.buf.is_empty() || self.closed {
            return;
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + 1024)));
        if self.tx.blocking_send(Ok(chunk)).is_err() {
            self.closed = true;
        }
    }
}

/// A response of `content_type` whose body `produce` writes on a blocking thread (store reads take locks and cost
/// CPU: they must not stall the async workers). What is left in the buffer when `produce` returns is sent.
pub(crate) fn chunked_response<F>(content_type: &'static str, produce: F) -> Response
where
    F: FnOnce(&mut ChunkWriter) + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel(IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let _cpu = heapster_cost::API_STAGE.start();
        let mut w = ChunkWriter { buf: Vec::with_capacity(CHUNK + 1024), tx, closed: false };
        produce(&mut w);
        w.flush();
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    ([(header::CONTENT_TYPE, content_type)], Body::from_stream(stream)).into_response()
}
