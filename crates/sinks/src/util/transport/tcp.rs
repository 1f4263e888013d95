//! Newline-terminated lines over TCP: Graphite's plaintext protocol (`path value timestamp\n`, port 2003) and
//! OpenTSDB's telnet interface (`put metric timestamp value tags\n`, port 4242).
//!
//! Neither protocol acknowledges anything, so a successful write means the kernel took the bytes, not that the
//! server stored them. What can be done is done: the connection is checked for a server that went away before
//! each write (see `connection`), and any failure drops the connection so that a line is never continued by the
//! next buffer.

use super::connection::{Failure, Link, Unsolicited};
use super::{Cause, Endpoint, TcpConfig, TransportError};
use tokio::io::AsyncWriteExt;

/// Writes buffers of lines to one TCP endpoint, connecting when needed. Calls are serialised; one at a time is
/// what the sink manager makes anyway.
pub struct TcpLineWriter {
    link: Link,
}

impl TcpLineWriter {
    /// Does not connect: the first write does, so a server that is down at start-up only delays the data.
    pub fn new(endpoint: Endpoint, config: TcpConfig) -> Self {
        TcpLineWriter { link: Link::new(endpoint, config, Unsolicited::Discard) }
    }

    pub fn endpoint(&self) -> &Endpoint {
        self.link.endpoint()
    }

    /// Writes `lines` whole, within the configured timeout (connecting included).
    ///
    /// `lines` must end with a newline: the server would otherwise join its last line with the first line of the
    /// next buffer. Such a buffer is refused without being sent. An empty buffer is a no-op.
    pub async fn write(&self, lines: &[u8]) -> Result<(), TransportError> {
        if lines.is_empty() {
            return Ok(());
        }
        if lines.last() != Some(&b'\n') {
            let detail = format!("a buffer of {} bytes does not end with a newline", lines.len());
            return Err(TransportError::new(Cause::Invalid, self.endpoint(), detail));
        }
        self.link.run(async |stream| stream.write_all(lines).await.map_err(Failure::from)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::transport::Verdict;
    use crate::util::transport::test_support::{config, listener, unused_port, within};
    use std::time::{Duration, Instant};
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    async fn accept(l: &TcpListener) -> TcpStream {
        within("a connection", l.accept()).await.unwrap().0
    }

    async fn read_exactly(s: &mut TcpStream, n: usize) -> String {
        let mut buf = vec![0; n];
        within("the lines", s.read_exact(&mut buf)).await.unwrap();
        String::from_utf8(buf).unwrap()
    }

    /// A writer to `l`'s port whose first write, `line`, has arrived; the server's end of its connection.
    async fn connected(l: &TcpListener, line: &str) -> (TcpLineWriter, TcpStream) {
        let port = l.local_addr().unwrap().port();
        let w = TcpLineWriter::new(Endpoint::new("127.0.0.1", port), config(Duration::from_secs(5)));
        w.write(line.as_bytes()).await.unwrap();
        let mut s = accept(l).await;
        assert_eq!(read_exactly(&mut s, line.len()).await, line);
        (w, s)
    }

    /// Megabyte buffers written until one cannot be taken: the server does not read, so the socket buffers on
    /// both sides fill (a few megabytes on loopback). `write` is each attempt, the result its failure.
    async fn write_until_stuck<E>(mut write: impl AsyncFnMut(&[u8]) -> Result<(), E>) -> (E, Duration) {
        let chunk = "x 1 1700000000\n".repeat(1 << 16).into_bytes();
        for _ in 0..256 {
            let start = Instant::now();
            if let Err(e) = write(&chunk).await {
                return (e, start.elapsed());
            }
        }
        panic!("256 MB taken by a server that does not read");
    }

    #[tokio::test]
    async fn lines_arrive_intact_and_in_order() {
        let (l, port) = listener().await;
        let server = tokio::spawn(async move {
            let mut s = accept(&l).await;
            let mut got = String::new();
            within("the writer to hang up", s.read_to_string(&mut got)).await.unwrap();
            got
        });
        let w = TcpLineWriter::new(Endpoint::new("127.0.0.1", port), config(Duration::from_secs(5)));
        let mut sent = String::new();
        for i in 0..200 {
            let buf: String = (0..50).map(|j| format!("heapster.node{i}.metric{j} {} 1700000000\n", i * j)).collect();
            w.write(buf.as_bytes()).await.unwrap();
            sent.push_str(&buf);
        }
        drop(w);
        assert!(within("the server", server).await.unwrap() == sent, "lines lost, reordered or changed");
    }

    #[tokio::test]
    async fn a_restarted_server_gets_every_buffer_written_after_it_is_back() {
        let (l, port) = listener().await;
        let (w, s) = connected(&l, "a 1 1\n").await;

        // Restarted between two batches: the connection is closed, the new server listens on the same port.
        drop(s);
        drop(l);
        let l = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        w.write(b"b 2 2\n").await.expect("written to the new server");
        w.write(b"c 3 3\n").await.unwrap();
        let mut s = accept(&l).await;
        assert_eq!(read_exactly(&mut s, 12).await, "b 2 2\nc 3 3\n", "the first buffer after the restart was lost");

        // Down for a while: writes fail as worth retrying, and the first one after it is back arrives.
        drop(s);
        drop(l);
        let e = w.write(b"d 4 4\n").await.unwrap_err();
        assert_eq!((e.cause(), e.verdict()), (Cause::Connect, Verdict::Retry), "{e}");
        let l = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        w.write(b"d 4 4\n").await.expect("written once the server is back");
        let mut s = accept(&l).await;
        assert_eq!(read_exactly(&mut s, 6).await, "d 4 4\n");
    }

    #[tokio::test]
    async fn what_the_server_says_is_read_out_and_the_connection_kept() {
        let (l, _) = listener().await;
        let (w, mut s) = connected(&l, "put a 1 1\n").await;
        // OpenTSDB answers bad lines with an error on the same connection, and keeps it open.
        tokio::io::AsyncWriteExt::write_all(&mut s, b"put: illegal argument: no tags\n").await.unwrap();
        w.write(b"put b 2 2 host=x\n").await.unwrap();
        assert_eq!(read_exactly(&mut s, 17).await, "put b 2 2 host=x\n", "sent on the same connection");
    }

    #[tokio::test]
    async fn a_server_that_never_reads_fails_the_write_at_its_deadline() {
        let (l, port) = listener().await;
        let server = tokio::spawn(async move {
            let _s = accept(&l).await;
            std::future::pending::<()>().await;
        });
        let deadline = Duration::from_millis(300);
        let w = TcpLineWriter::new(Endpoint::new("127.0.0.1", port), config(deadline));
        let (e, took) = write_until_stuck(async |buf| w.write(buf).await).await;
        server.abort();
        assert_eq!((e.cause(), e.verdict()), (Cause::Timeout, Verdict::Retry), "{e}");
        assert!(took >= deadline, "failed before its deadline: {took:?}");
        assert!(took < deadline + Duration::from_secs(1), "failed long after its deadline: {took:?}");
    }

    #[tokio::test]
    async fn nothing_listening_is_worth_a_retry_and_reported_within_the_deadline() {
        let deadline = Duration::from_secs(3);
        let w = TcpLineWriter::new(Endpoint::new("127.0.0.1", unused_port()), config(deadline));
        for _ in 0..3 {
            let start = Instant::now();
            let e = w.write(b"a 1 1\n").await.unwrap_err();
            assert!(start.elapsed() <= deadline, "took {:?}", start.elapsed());
            assert_eq!((e.cause(), e.verdict()), (Cause::Connect, Verdict::Retry), "{e}");
            assert!(e.to_string().contains("refused"), "{e}");
        }
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_worth_a_retry() {
        let deadline = Duration::from_secs(3);
        let w = TcpLineWriter::new(Endpoint::new("no-such-host.invalid", 2003), config(deadline));
        let start = Instant::now();
        let e = w.write(b"a 1 1\n").await.unwrap_err();
        // A resolver that does not answer in time is still a failure to connect.
        assert!(start.elapsed() < deadline + Duration::from_millis(500), "took {:?}", start.elapsed());
        assert_eq!((e.cause(), e.verdict()), (Cause::Connect, Verdict::Retry), "{e}");
    }

    #[tokio::test]
    async fn a_write_cancelled_midway_is_not_continued_on_the_same_connection() {
        let (l, port) = listener().await;
        let w = TcpLineWriter::new(Endpoint::new("127.0.0.1", port), config(Duration::from_secs(5)));
        // An outer deadline (the manager's) cancels a write that the server does not take.
        let server = tokio::spawn(async move {
            let stuck = accept(&l).await;
            let mut next = accept(&l).await;
            let line = read_exactly(&mut next, 6).await;
            drop(stuck);
            line
        });
        let short = Duration::from_millis(200);
        write_until_stuck(async |buf| tokio::time::timeout(short, w.write(buf)).await.map(|r| r.unwrap())).await;
        w.write(b"a 1 1\n").await.expect("written on a new connection");
        assert_eq!(within("the server", server).await.unwrap(), "a 1 1\n");
    }

    #[tokio::test]
    async fn a_buffer_without_its_final_newline_is_refused_unsent() {
        let w = TcpLineWriter::new(Endpoint::new("127.0.0.1", unused_port()), config(Duration::from_secs(1)));
        let e = w.write(b"a 1 1\nb 2").await.unwrap_err();
        assert_eq!((e.cause(), e.verdict()), (Cause::Invalid, Verdict::Refuse), "{e}");
        w.write(b"").await.expect("nothing to write");
    }

    #[test]
    fn writes_can_be_awaited_in_a_sink() {
        fn send<T: Send>(_: T) {}
        let w = TcpLineWriter::new(Endpoint::new("127.0.0.1", 1), TcpConfig::default());
        send(w.write(b"a\n"));
    }
}
