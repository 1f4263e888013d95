//! Length-framed requests and replies over TCP: a 4-byte big-endian length, then that many bytes, each way.
//! Riemann's TCP protocol (port 5555) frames its protobuf `Msg` so, and answers every message with one whose
//! `ok` field says whether the events were taken.
//!
//! Unlike the line protocols, every request is acknowledged, so a successful [`FramedWriter::request`] means the
//! server received it. The reply's bytes go back to the caller, which decodes them.

use super::connection::{Failure, Link, Unsolicited};
use super::{Cause, Endpoint, TcpConfig, TransportError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest reply accepted unless [`FramedWriter::with_max_reply`] says otherwise. Riemann answers an event
/// message with a few bytes; a length this large means the other end is not speaking the protocol (an HTTP port,
/// a TLS listener), and the bytes it announced are not worth allocating.
pub const DEFAULT_MAX_REPLY: usize = 1 << 20;

/// Sends framed requests to one TCP endpoint and reads their framed replies, connecting when needed. Calls are
/// serialised, so each reply is read by the call that sent its request.
pub struct FramedWriter {
    link: Link,
    max_reply: usize,
}

impl FramedWriter {
    /// Does not connect: the first request does.
    pub fn new(endpoint: Endpoint, config: TcpConfig) -> Self {
        // Bytes before a request are an answer to nothing; taking them as the next reply would shift every reply
        // by one, so such a connection is replaced.
        FramedWriter { link: Link::new(endpoint, config, Unsolicited::Reconnect), max_reply: DEFAULT_MAX_REPLY }
    }

    /// Replies announcing more than `bytes` fail the request (as [`Cause::Protocol`]) without being read.
    pub fn with_max_reply(mut self, bytes: usize) -> Self {
        self.max_reply = bytes;
        self
    }

    pub fn endpoint(&self) -> &Endpoint {
        self.link.endpoint()
    }

    /// Sends `payload` as one frame and returns the payload of the server's reply, all within the configured
    /// timeout (connecting included). A payload a 4-byte length cannot announce is refused unsent.
    pub async fn request(&self, payload: &[u8]) -> Result<Vec<u8>, TransportError> {
        let Ok(len) = u32::try_from(payload.len()) else {
            let detail = format!("a frame of {} bytes is more than a 4-byte length can announce", payload.len());
            return Err(TransportError::new(Cause::TooLarge, self.endpoint(), detail));
        };
        let max_reply = self.max_reply;
        self.link.run(async |stream| exchange(stream, len, payload, max_reply).await).await
    }
}

async fn exchange(stream: &mut TcpStream, len: u32, payload: &[u8], max_reply: usize) -> Result<Vec<u8>, Failure> {
    stream.write_all(&len.to_be_bytes()).await?;
    stream.write_all(payload).await?;
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).await?;
    let n = u32::from_be_bytes(head) as usize;
    if n > max_reply {
        return Err(Failure::Protocol(format!(
            "the reply announces {n} bytes, more than the {max_reply} accepted: is this port speaking length-framed \
             messages?"
        )));
    }
    let mut reply = vec![0; n];
    stream.read_exact(&mut reply).await?;
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::transport::Verdict;
    use crate::util::transport::test_support::{config, listener, unused_port, within};
    use std::time::{Duration, Instant};
    use tokio::net::TcpListener;
    use tokio::sync::oneshot;

    async fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
        let mut head = [0u8; 4];
        s.read_exact(&mut head).await.ok()?;
        let mut body = vec![0; u32::from_be_bytes(head) as usize];
        s.read_exact(&mut body).await.ok()?;
        Some(body)
    }

    async fn write_frame(s: &mut TcpStream, body: &[u8]) {
        s.write_all(&(body.len() as u32).to_be_bytes()).await.unwrap();
        s.write_all(body).await.unwrap();
    }

    /// Answers every frame on every connection with `ok:` and the frame, until aborted.
    fn echo(l: TcpListener) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    while let Some(body) = read_frame(&mut s).await {
                        write_frame(&mut s, &[b"ok:".as_slice(), &body].concat()).await;
                    }
                });
            }
        })
    }

    #[tokio::test]
    async fn each_request_gets_its_own_reply() {
        let (l, port) = listener().await;
        let server = echo(l);
        let w = FramedWriter::new(Endpoint::new("127.0.0.1", port), config(Duration::from_secs(5)));
        for i in 0..20 {
            let payload = format!("event {i}").repeat(i + 1);
            assert_eq!(w.request(payload.as_bytes()).await.unwrap(), format!("ok:{payload}").into_bytes());
        }
        assert_eq!(w.request(b"").await.unwrap(), b"ok:");
        server.abort();
    }

    /// Answers `n` frames on one connection, then closes it and stops listening: a server that stops.
    fn answer(l: TcpListener, n: usize) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            for _ in 0..n {
                let body = read_frame(&mut s).await.unwrap();
                write_frame(&mut s, &[b"ok:".as_slice(), &body].concat()).await;
            }
        })
    }

    #[tokio::test]
    async fn a_restarted_server_is_reconnected_to_and_answers() {
        let (l, port) = listener().await;
        let w = FramedWriter::new(Endpoint::new("127.0.0.1", port), config(Duration::from_secs(5)));
        let first = answer(l, 1);
        assert_eq!(w.request(b"a").await.unwrap(), b"ok:a");
        within("the first server to stop", first).await.unwrap();

        // Back on the same port before the next request: the closed connection is noticed and replaced.
        let second = answer(TcpListener::bind(("127.0.0.1", port)).await.unwrap(), 2);
        assert_eq!(w.request(b"b").await.expect("sent to the new server"), b"ok:b");
        assert_eq!(w.request(b"c").await.unwrap(), b"ok:c");
        within("the second server to stop", second).await.unwrap();

        // Down for a while: requests fail as worth retrying, and the first one after it is back is answered.
        let e = w.request(b"d").await.unwrap_err();
        assert_eq!((e.cause(), e.verdict()), (Cause::Connect, Verdict::Retry), "{e}");
        let third = answer(TcpListener::bind(("127.0.0.1", port)).await.unwrap(), 1);
        assert_eq!(w.request(b"d").await.unwrap(), b"ok:d");
        within("the third server to stop", third).await.unwrap();
    }

    #[tokio::test]
    async fn a_reply_that_comes_too_late_is_never_taken_for_the_next_one() {
        let (l, port) = listener().await;
        let (late_tx, late_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let (mut slow, _) = l.accept().await.unwrap();
            let body = read_frame(&mut slow).await.unwrap();
            let _ = late_rx.await;
            // Answers after the writer gave up, on the old connection (which the writer may have closed by now).
            let _ = slow.write_all(&[&[0, 0, 0, 6], b"late:".as_slice(), &body].concat()).await;
            let (mut s, _) = l.accept().await.unwrap();
            while let Some(body) = read_frame(&mut s).await {
                write_frame(&mut s, &[b"ok:".as_slice(), &body].concat()).await;
            }
            drop(slow);
        });
        let deadline = Duration::from_millis(300);
        let w = FramedWriter::new(Endpoint::new("127.0.0.1", port), config(deadline));
        let start = Instant::now();
        let e = w.request(b"a").await.unwrap_err();
        let took = start.elapsed();
        assert_eq!((e.cause(), e.verdict()), (Cause::Timeout, Verdict::Retry), "{e}");
        assert!(took >= deadline && took < deadline + Duration::from_secs(1), "failed after {took:?}");
        late_tx.send(()).unwrap();
        assert_eq!(w.request(b"b").await.unwrap(), b"ok:b");
        server.abort();
    }

    #[tokio::test]
    async fn a_reply_larger_than_accepted_is_a_protocol_error_and_the_connection_is_replaced() {
        let (l, port) = listener().await;
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            read_frame(&mut s).await.unwrap();
            s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await.unwrap();
            let (mut s, _) = l.accept().await.unwrap();
            while let Some(body) = read_frame(&mut s).await {
                write_frame(&mut s, &[b"ok:".as_slice(), &body].concat()).await;
            }
        });
        let w = FramedWriter::new(Endpoint::new("127.0.0.1", port), config(Duration::from_secs(5))).with_max_reply(64);
        let e = w.request(b"a").await.unwrap_err();
        assert_eq!((e.cause(), e.verdict()), (Cause::Protocol, Verdict::Retry), "{e}");
        assert_eq!(w.request(b"b").await.unwrap(), b"ok:b");
        server.abort();
    }

    #[tokio::test]
    async fn nothing_listening_is_worth_a_retry_and_reported_within_the_deadline() {
        let deadline = Duration::from_secs(3);
        let w = FramedWriter::new(Endpoint::new("127.0.0.1", unused_port()), config(deadline));
        let start = Instant::now();
        let e = w.request(b"a").await.unwrap_err();
        assert!(start.elapsed() <= deadline, "took {:?}", start.elapsed());
        assert_eq!((e.cause(), e.verdict()), (Cause::Connect, Verdict::Retry), "{e}");
    }
}
