//! Lines packed into UDP datagrams: statsd (`name:value|g`, port 8125), which takes several lines per datagram
//! separated by newlines.
//!
//! UDP acknowledges nothing and a datagram is lost whole, so lines are never split across datagrams: a half line
//! would be stored as a wrong metric. Datagrams stay under a size limit so that they are not fragmented on the
//! way (one lost fragment loses the datagram).

use super::{Cause, Endpoint, TransportError};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::Mutex;
use tokio::time::{Instant, timeout_at};

/// statsd's usual datagram size: what fits an Ethernet frame (1500) after IP and UDP headers, with room for
/// IP options and tunnels.
pub const STATSD_DATAGRAM: usize = 1432;

/// The most a UDP datagram over IPv4 can carry; a line longer than this cannot be sent at all.
const MAX_UDP_PAYLOAD: usize = 65_507;

/// Datagram size and deadline of a [`UdpWriter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpConfig {
    /// Largest datagram made of several lines; a single line longer than this is sent alone.
    pub max_datagram: usize,
    /// Most lines in one datagram (statsd's `numMetricsPerMsg`): some receivers read only so many per packet.
    pub max_lines: usize,
    /// Longest one call may take. Sending only blocks while the socket's buffer is full, but a sink must still
    /// never be held past its deadline.
    pub timeout: Duration,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig { max_datagram: STATSD_DATAGRAM, max_lines: usize::MAX, timeout: Duration::from_secs(5) }
    }
}

/// What one [`UdpWriter::send`] did, for the sink's self-metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Datagrams handed to the kernel (UDP says no more than that).
    pub datagrams: usize,
    /// Lines longer than `max_datagram`, sent alone in a datagram that may be fragmented (or dropped) on the way.
    pub oversized: usize,
    /// Lines longer than any UDP datagram can be, not sent.
    pub dropped: usize,
}

/// Sends buffers of lines to one UDP endpoint, packed into as few datagrams as the size limit allows.
pub struct UdpWriter {
    endpoint: Endpoint,
    config: UdpConfig,
    /// Connected to one address of the endpoint; replaced after an error, which resolves the name again (a
    /// statsd behind a DNS name may have moved, and an error is the only sign UDP gives of that).
    socket: Mutex<Option<UdpSocket>>,
}

impl UdpWriter {
    /// Does not resolve: the first send does.
    pub fn new(endpoint: Endpoint, config: UdpConfig) -> Self {
        UdpWriter { endpoint, config, socket: Mutex::new(None) }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends the newline-separated lines of `lines` (a final newline is optional), each datagram holding as many
    /// whole lines as fit in `max_datagram`, joined by newlines.
    ///
    /// An error stops at the datagram that failed: the ones before it were sent, and sending the same lines again
    /// repeats them (harmless for gauges, which is what heapster sends; the error says how many).
    pub async fn send(&self, lines: &[u8]) -> Result<Sent, TransportError> {
        let deadline = Instant::now() + self.config.timeout;
        let mut sent = Sent::default();
        let Ok(mut socket) = timeout_at(deadline, self.socket.lock()).await else {
            return Err(self.error(Cause::Timeout, "the previous call still holds the socket", sent));
        };
        for datagram in Datagrams::new(lines, self.config.max_datagram, self.config.max_lines) {
            if datagram.len() > MAX_UDP_PAYLOAD {
                sent.dropped += 1;
                continue;
            }
            let s = match &*socket {
                Some(s) => s,
                None => {
                    let opened = match timeout_at(deadline, self.open()).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => return Err(self.error(Cause::Connect, e, sent)),
                        Err(_) => return Err(self.error(Cause::Connect, "the name did not resolve in time", sent)),
                    };
                    socket.insert(opened)
                }
            };
            let (cause, detail) = match timeout_at(deadline, s.send(datagram)).await {
                Ok(Ok(_)) => {
                    sent.datagrams += 1;
                    sent.oversized += usize::from(datagram.len() > self.config.max_datagram);
                    continue;
                }
                // The ICMP "port unreachable" that an earlier datagram caused, reported on this send.
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => (Cause::Connect, e.to_string()),
                Ok(Err(e)) => (Cause::Transport, e.to_string()),
                Err(_) => (Cause::Timeout, format!("the socket took nothing for {:?}", self.config.timeout)),
            };
            *socket = None;
            return Err(self.error(cause, detail, sent));
        }
        Ok(sent)
    }

    /// A socket connected to the endpoint's first address, resolved now. Connected so that the kernel reports
    /// an ICMP "port unreachable" as an error on a later send (an unconnected socket never hears of it).
    async fn open(&self) -> std::io::Result<UdpSocket> {
        let addr = self.endpoint.resolve().await?[0];
        let local: SocketAddr = match addr {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(local).await?;
        socket.connect(addr).await?;
        Ok(socket)
    }

    fn error(&self, cause: Cause, detail: impl std::fmt::Display, sent: Sent) -> TransportError {
        let detail = format!("{detail} (after {} datagrams of this call were sent)", sent.datagrams);
        TransportError::new(cause, &self.endpoint, detail)
    }
}

/// The datagrams of a buffer of lines: each the longest run of at most `max_lines` whole lines, joined by their
/// newlines, that fits in `max` bytes, or one line alone when it is longer. Slices of the buffer, so nothing is copied. Empty lines
/// at either end of a datagram are left out.
struct Datagrams<'a> {
    rest: &'a [u8],
    max: usize,
    max_lines: usize,
}

impl<'a> Datagrams<'a> {
    fn new(lines: &'a [u8], max: usize, max_lines: usize) -> Self {
        Datagrams { rest: lines, max, max_lines: max_lines.max(1) }
    }
}

impl<'a> Iterator for Datagrams<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.rest.iter().position(|&b| b != b'\n')?;
        let rest = &self.rest[start..];
        // `end`: the end of the last line taken so far; the next line starts after its newline.
        let mut end = 0;
        let mut taken = 0;
        while (end == 0 || end < rest.len()) && taken < self.max_lines {
            let from = if end == 0 { 0 } else { end + 1 };
            let line_end = rest[from..].iter().position(|&b| b == b'\n').map_or(rest.len(), |p| from + p);
            if end > 0 && line_end > self.max {
                break;
            }
            end = line_end;
            taken += 1;
            if end > self.max {
                break;
            }
        }
        self.rest = rest.get(end + 1..).unwrap_or_default();
        let mut datagram = &rest[..end];
        while let Some(d) = datagram.strip_suffix(b"\n") {
            datagram = d;
        }
        Some(datagram)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::transport::Verdict;
    use crate::util::transport::test_support::within;

    fn pack(lines: &str, max: usize) -> Vec<String> {
        pack_n(lines, max, usize::MAX)
    }

    fn pack_n(lines: &str, max: usize, max_lines: usize) -> Vec<String> {
        Datagrams::new(lines.as_bytes(), max, max_lines).map(|d| String::from_utf8(d.to_vec()).unwrap()).collect()
    }

    #[test]
    fn datagrams_hold_whole_lines_up_to_the_limit() {
        assert_eq!(pack("a:1|g\nb:2|g\nc:3|g\n", 11), ["a:1|g\nb:2|g", "c:3|g"]);
        assert_eq!(pack("a:1|g\nb:2|g\nc:3|g", 100), ["a:1|g\nb:2|g\nc:3|g"]);
        assert_eq!(pack("a:1|g\nlonger:22|g\nb:2|g\n", 8), ["a:1|g", "longer:22|g", "b:2|g"]);
        assert_eq!(pack("\n\na:1|g\n\n", 100), ["a:1|g"], "empty lines are not worth a datagram");
        assert!(pack("", 10).is_empty() && pack("\n", 10).is_empty());
        assert_eq!(pack_n("a:1|g\nb:2|g\nc:3|g\n", 100, 2), ["a:1|g\nb:2|g", "c:3|g"]);
        assert_eq!(pack_n("a:1|g\n\nb:2|g\n", 100, 1), ["a:1|g", "b:2|g"], "empty lines make no datagram");
        assert_eq!(pack_n("a:1|g\nb:2|g\nc:3|g\n", 11, 5), ["a:1|g\nb:2|g", "c:3|g"], "bytes still bound");

        // Every mix of line lengths around the limit: whole lines, in order, none lost, none over the limit but
        // those alone.
        let max = 16;
        for seed in 0..500u64 {
            let mut x = seed;
            let lines: Vec<String> = (0..20)
                .map(|i| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let len = 1 + (x >> 33) as usize % (max + 4);
                    format!("{i:x}").repeat(len)[..len].to_string()
                })
                .collect();
            let datagrams = pack(&(lines.join("\n") + "\n"), max);
            for d in &datagrams {
                assert!(d.len() <= max || !d.contains('\n'), "{d:?} over {max} bytes with several lines");
            }
            assert_eq!(datagrams.iter().flat_map(|d| d.split('\n')).collect::<Vec<_>>(), lines);
        }
    }

    async fn server() -> (UdpSocket, u16) {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = s.local_addr().unwrap().port();
        (s, port)
    }

    async fn receive(s: &UdpSocket) -> (String, SocketAddr) {
        let mut buf = vec![0; 65_536];
        let (n, from) = within("a datagram", s.recv_from(&mut buf)).await.unwrap();
        (String::from_utf8(buf[..n].to_vec()).unwrap(), from)
    }

    #[tokio::test]
    async fn lines_arrive_whole_in_order_and_in_datagrams_under_the_limit() {
        let (server, port) = server().await;
        let w = UdpWriter::new(Endpoint::new("127.0.0.1", port), UdpConfig::default());
        let lines: Vec<String> = (0..400).map(|i| format!("heapster.node{i}.cpu.usage:{}|g", i * 7)).collect();
        let sent = w.send((lines.join("\n") + "\n").as_bytes()).await.unwrap();
        assert_eq!((sent.oversized, sent.dropped), (0, 0));
        let mut got = Vec::new();
        for _ in 0..sent.datagrams {
            let (d, _) = receive(&server).await;
            assert!(d.len() <= STATSD_DATAGRAM, "a datagram of {} bytes", d.len());
            got.extend(d.split('\n').map(String::from));
        }
        assert_eq!(got, lines);
        assert!(sent.datagrams < 20, "{} datagrams for 12 kB: not packed", sent.datagrams);
    }

    #[tokio::test]
    async fn a_line_longer_than_the_limit_goes_alone_and_is_counted() {
        let (server, port) = server().await;
        let w = UdpWriter::new(Endpoint::new("127.0.0.1", port), UdpConfig { max_datagram: 32, ..Default::default() });
        let long = format!("heapster.{}:1|g", "x".repeat(40));
        let huge = format!("h:{}|g", "9".repeat(MAX_UDP_PAYLOAD));
        let sent = w.send(format!("a:1|g\n{long}\n{huge}\nb:2|g\n").as_bytes()).await.unwrap();
        assert_eq!(sent, Sent { datagrams: 3, oversized: 1, dropped: 1 });
        assert_eq!(receive(&server).await.0, "a:1|g");
        assert_eq!(receive(&server).await.0, long);
        assert_eq!(receive(&server).await.0, "b:2|g");
    }

    #[tokio::test]
    async fn after_an_error_a_new_socket_is_made_and_the_name_resolved_again() {
        let (server, port) = server().await;
        let w = UdpWriter::new(Endpoint::new("127.0.0.1", port), UdpConfig::default());
        w.send(b"a:1|g\n").await.unwrap();
        let (_, first) = receive(&server).await;

        // Nothing listens any more: the kernel's "port unreachable" fails a later send as worth retrying.
        drop(server);
        let mut error = None;
        for _ in 0..100 {
            if let Err(e) = w.send(b"b:2|g\n").await {
                error = Some(e);
                break;
            }
            tokio::task::yield_now().await;
        }
        let e = error.expect("sending to a closed port fails within 100 sends");
        assert_eq!((e.cause(), e.verdict()), (Cause::Connect, Verdict::Retry), "{e}");

        let server = UdpSocket::bind(("127.0.0.1", port)).await.unwrap();
        w.send(b"c:3|g\n").await.unwrap();
        let (got, second) = receive(&server).await;
        assert_eq!(got, "c:3|g");
        assert_ne!(first, second, "the failed socket is still in use");
    }
}
