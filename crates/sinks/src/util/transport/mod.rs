//! Non-HTTP transports for the sinks that speak plain sockets, so that each of them only encodes:
//!
//! - [`tcp::TcpLineWriter`]: newline-terminated lines over TCP (Graphite's plaintext protocol, OpenTSDB's telnet
//!   `put`);
//! - [`udp::UdpWriter`]: lines packed into datagrams (statsd);
//! - [`framed::FramedWriter`]: 4-byte length-framed requests over TCP, each answered by a framed reply (Riemann).
//!
//! The two TCP writers share one connection manager: it connects lazily, resolves the name again at every connect
//! (a server behind a DNS name may move), notices a server that closed the connection before data is written to
//! it, and backs off exponentially between failed attempts. Every call has a deadline and never blocks past it.
//!
//! Every failure is a [`TransportError`] with a [`Cause`] (a bounded label for self-metrics) and a [`Verdict`]:
//! whether sending the same data again later can succeed. It converts into [`SinkError`], so a sink's `export` can
//! use `?` and the manager keeps and retries the batch exactly when that is worth it.

mod chunks;
mod connection;
pub mod framed;
mod target;
pub mod tcp;
pub mod udp;

pub use chunks::Chunks;
pub use framed::FramedWriter;
pub use tcp::TcpLineWriter;
pub use udp::{Sent, UdpConfig, UdpWriter};

use crate::SinkError;
use std::fmt;
use std::time::Duration;

/// Where a transport sends: a host name or address and a port.
///
/// The name is kept, not its addresses, so that each new connection (or, for UDP, each new socket after an error)
/// looks it up again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    host: String,
    port: u16,
}

impl Endpoint {
    /// `host` may be a name, an IPv4 address or an IPv6 address with or without brackets (`url` gives `[::1]`).
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        let host = host.into();
        let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(inner) => inner.to_string(),
            None => host,
        };
        Endpoint { host, port }
    }

    /// The host without brackets, as the resolver takes it.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Resolves the name now: called at every connect, never cached.
    async fn resolve(&self) -> std::io::Result<Vec<std::net::SocketAddr>> {
        let addrs: Vec<_> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot resolve {}: {e}", self.host)))?
            .collect();
        if addrs.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{} has no address", self.host)));
        }
        Ok(addrs)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Deadline and reconnect pacing of the TCP writers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    /// Longest one call may take, connecting included. A server that stops reading makes writes fail at this
    /// deadline instead of holding the sink forever.
    pub timeout: Duration,
    /// Wait before reconnecting after the first failure; doubled per failure up to `max_backoff`, back to this
    /// after a success. Keeps a down server from being hammered with connects at every batch.
    pub min_backoff: Duration,
    /// Longest wait between connection attempts, so a server that comes back is written to soon.
    pub max_backoff: Duration,
}

impl Default for TcpConfig {
    /// Ten seconds leaves room under the manager's export deadline (20 s by default) for the error to be reported
    /// rather than the export being cancelled.
    fn default() -> Self {
        TcpConfig {
            timeout: Duration::from_secs(10),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Whether sending the same data again later can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The server was unreachable, slow or went away: keep the data and try again.
    Retry,
    /// The data itself cannot be sent: trying again would fail the same way.
    Refuse,
}

/// Why a transport call failed, as a short label for logs and self-metrics (the same words as the HTTP sinks'
/// request outcomes where they mean the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// No connection: the name did not resolve, nothing listens, or connecting did not finish in time.
    Connect,
    /// Connected, but the server did not take the data (or answer) before the deadline.
    Timeout,
    /// The connection broke while in use (reset, closed mid-reply).
    Transport,
    /// The server answered something that is not a valid reply.
    Protocol,
    /// The data is larger than the protocol can carry.
    TooLarge,
    /// The data is not in the shape the transport needs (a line buffer without its final newline).
    Invalid,
}

impl Cause {
    /// The label for self-metrics: `connect`, `timeout`, `transport`, `protocol`, `too_large`, `invalid`.
    pub fn label(self) -> &'static str {
        match self {
            Cause::Connect => "connect",
            Cause::Timeout => "timeout",
            Cause::Transport => "transport",
            Cause::Protocol => "protocol",
            Cause::TooLarge => "too_large",
            Cause::Invalid => "invalid",
        }
    }

    /// A malformed reply is retried too: it usually means a server restarting or a proxy in between, and
    /// refusing would drop data that a healthy server takes.
    pub fn verdict(self) -> Verdict {
        match self {
            Cause::Connect | Cause::Timeout | Cause::Transport | Cause::Protocol => Verdict::Retry,
            Cause::TooLarge | Cause::Invalid => Verdict::Refuse,
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A failed transport call: where, why (as a [`Cause`]) and the details in words.
#[derive(Debug, thiserror::Error)]
#[error("{endpoint}: {cause}: {detail}")]
pub struct TransportError {
    cause: Cause,
    endpoint: String,
    detail: String,
}

impl TransportError {
    fn new(cause: Cause, endpoint: &Endpoint, detail: impl fmt::Display) -> Self {
        TransportError { cause, endpoint: endpoint.to_string(), detail: detail.to_string() }
    }

    /// Why, for the sink's self-metrics (`cause().label()`).
    pub fn cause(&self) -> Cause {
        self.cause
    }

    /// Whether the data should be kept and sent again; also what the conversion into [`SinkError`] follows.
    pub fn verdict(&self) -> Verdict {
        self.cause.verdict()
    }
}

impl From<TransportError> for SinkError {
    fn from(e: TransportError) -> Self {
        match e.verdict() {
            Verdict::Retry => SinkError::Retry(e.to_string()),
            Verdict::Refuse => SinkError::Reject(e.to_string()),
        }
    }
}

#[cfg(test)]
mod test_support {
    //! What the transport tests share: free ports and bounded waits.

    use std::time::Duration;

    /// Longest any test waits for something that should happen at once; far above what a loaded machine needs,
    /// and still a failure rather than a hang when it does not happen.
    pub const PATIENCE: Duration = Duration::from_secs(10);

    /// `fut`, or a test failure naming `what` after [`PATIENCE`].
    pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
        tokio::time::timeout(PATIENCE, fut).await.unwrap_or_else(|_| panic!("{what}: not within {PATIENCE:?}"))
    }

    /// A deadline of `timeout` and backoffs short enough for tests.
    pub fn config(timeout: Duration) -> super::TcpConfig {
        super::TcpConfig { timeout, min_backoff: Duration::from_millis(10), max_backoff: Duration::from_millis(100) }
    }

    /// A TCP listener on a free 127.0.0.1 port, and the port.
    pub async fn listener() -> (tokio::net::TcpListener, u16) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        (l, port)
    }

    /// A 127.0.0.1 port nothing listens on (bound, then released).
    pub fn unused_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_take_ipv6_with_or_without_brackets() {
        assert_eq!(Endpoint::new("[::1]", 2003), Endpoint::new("::1", 2003));
        assert_eq!(Endpoint::new("::1", 2003).to_string(), "[::1]:2003");
        assert_eq!(Endpoint::new("graphite", 2003).to_string(), "graphite:2003");
    }

    #[test]
    fn verdicts_become_sink_errors() {
        let e = TransportError::new(Cause::Connect, &Endpoint::new("h", 1), "refused");
        assert!(matches!(SinkError::from(e), SinkError::Retry(m) if m == "h:1: connect: refused"));
        let e = TransportError::new(Cause::TooLarge, &Endpoint::new("h", 1), "5 GB");
        assert!(matches!(SinkError::from(e), SinkError::Reject(_)));
    }
}
