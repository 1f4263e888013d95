//! The TCP connection that the line writer and the framed writer share: lazy connect, a check for a closed peer
//! before each use, reconnect with exponential backoff, and one deadline per call.

use super::{Cause, Endpoint, TcpConfig, TransportError};
use std::io::{self, Read};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::time::{Instant, timeout_at};

/// What to do with bytes the server sent without being asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unsolicited {
    /// Log and discard them: line protocols never answer, except OpenTSDB, which writes its errors back
    /// (`put: illegal argument: ...`), and those are worth showing.
    Discard,
    /// Drop the connection: in a request/reply protocol, an extra reply would be taken as the next request's.
    Reconnect,
}

/// Why one exchange on a connected stream failed.
pub(super) enum Failure {
    Io(io::Error),
    /// The server's answer is not valid for the protocol; the text says what was wrong.
    Protocol(String),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

/// One endpoint's connection, made when first needed and again after it broke; one call uses it at a time.
pub(super) struct Link {
    endpoint: Endpoint,
    config: TcpConfig,
    unsolicited: Unsolicited,
    state: Mutex<State>,
}

struct State {
    live: Option<Live>,
    /// Wait before the next connect after failures, doubled per failure.
    backoff: std::time::Duration,
    /// No connect before this (set by a failure, cleared by a success).
    not_before: Option<Instant>,
    /// Why the last attempt failed, repeated while backing off so each error says what is wrong.
    last_failure: String,
}

struct Live {
    stream: TcpStream,
    /// The same socket through std, for [`Live::check`]: tokio answers readiness from its own cache, which may
    /// not have seen the server's FIN yet, while `peek` here asks the kernel.
    probe: std::net::TcpStream,
    /// Set while a call uses the stream, cleared when it completes. Still set at the next call means the caller
    /// dropped the previous one midway (an outer timeout): half a line or an unread reply may be on the wire, so
    /// the connection cannot be reused.
    busy: bool,
}

enum Health {
    Open,
    Closed(String),
}

impl Link {
    pub(super) fn new(endpoint: Endpoint, config: TcpConfig, unsolicited: Unsolicited) -> Self {
        let state = State { live: None, backoff: config.min_backoff, not_before: None, last_failure: String::new() };
        Link { endpoint, config, unsolicited, state: Mutex::new(state) }
    }

    pub(super) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Runs `op` on a connected stream within the call's deadline (`config.timeout`, connecting included).
    ///
    /// Any failure drops the connection: after a timeout or an error, how much of the data reached the server is
    /// unknown, and writing more after a partial line would corrupt the next line. Sending the same data again
    /// may therefore repeat some of it; metric stores take a repeated point as the same point.
    pub(super) async fn run<T>(
        &self,
        op: impl AsyncFnOnce(&mut TcpStream) -> Result<T, Failure>,
    ) -> Result<T, TransportError> {
        let deadline = Instant::now() + self.config.timeout;
        let Ok(mut state) = timeout_at(deadline, self.state.lock()).await else {
            return Err(self.error(Cause::Timeout, "the previous call still holds the connection"));
        };
        let live = self.ready(&mut state, deadline).await?;
        live.busy = true;
        let outcome = timeout_at(deadline, op(&mut live.stream)).await;
        live.busy = false;
        let failure = match outcome {
            Ok(Ok(v)) => {
                state.backoff = self.config.min_backoff;
                state.not_before = None;
                return Ok(v);
            }
            Ok(Err(Failure::Io(e))) => self.error(Cause::Transport, e),
            Ok(Err(Failure::Protocol(what))) => self.error(Cause::Protocol, what),
            Err(_) => self.error(
                Cause::Timeout,
                format!(
                    "not done within {:?}: the server stopped reading or answering, or is too slow",
                    self.config.timeout
                ),
            ),
        };
        state.live = None;
        self.back_off(&mut state, &failure.detail);
        Err(failure)
    }

    /// The live connection, after checking that it still is one; a new one otherwise.
    async fn ready<'s>(&self, state: &'s mut State, deadline: Instant) -> Result<&'s mut Live, TransportError> {
        if let Some(live) = &state.live {
            let health = if live.busy {
                Health::Closed("the previous call was cancelled midway".into())
            } else {
                live.check(&self.endpoint, self.unsolicited)
            };
            if let Health::Closed(why) = health {
                // Not a failure: a server closing idle connections, or restarting between batches, is normal.
                tracing::debug!(endpoint = %self.endpoint, "reconnecting: {why}");
                state.live = None;
            }
        }
        if state.live.is_none() {
            let live = self.connect(state, deadline).await?;
            state.live = Some(live);
        }
        Ok(state.live.as_mut().expect("connected above"))
    }

    /// One connection attempt, after waiting out the backoff if it ends before `deadline`; an error at once if it
    /// does not, so the caller is never held past its deadline and decides itself when to come back.
    async fn connect(&self, state: &mut State, deadline: Instant) -> Result<Live, TransportError> {
        if let Some(at) = state.not_before {
            if at > deadline {
                let wait = at.saturating_duration_since(Instant::now());
                let detail = format!("{} (next attempt in {wait:.1?})", state.last_failure);
                return Err(self.error(Cause::Connect, detail));
            }
            tokio::time::sleep_until(at).await;
        }
        let failure = match timeout_at(deadline, open(&self.endpoint)).await {
            Ok(Ok(live)) => return Ok(live),
            Ok(Err(e)) => e.to_string(),
            // Still "connect": nothing was sent, what is wrong is reaching the server (a dropped SYN, a slow DNS).
            Err(_) => format!("no connection within {:?}", self.config.timeout),
        };
        self.back_off(state, &failure);
        Err(self.error(Cause::Connect, failure))
    }

    fn back_off(&self, state: &mut State, why: &str) {
        state.not_before = Some(Instant::now() + state.backoff);
        state.backoff = (state.backoff * 2).min(self.config.max_backoff);
        state.last_failure = why.to_string();
    }

    fn error(&self, cause: Cause, detail: impl std::fmt::Display) -> TransportError {
        TransportError::new(cause, &self.endpoint, detail)
    }
}

/// Resolves the name again and connects to the first address that accepts.
async fn open(endpoint: &Endpoint) -> io::Result<Live> {
    let mut last = None;
    for addr in endpoint.resolve().await? {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Live::new(stream),
            Err(e) => last = Some(io::Error::new(e.kind(), format!("{addr}: {e}"))),
        }
    }
    Err(last.expect("resolve returns at least one address"))
}

impl Live {
    fn new(stream: TcpStream) -> io::Result<Live> {
        // Whole buffers are written at once: Nagle would only hold back their tails (and a framed request, which
        // waits for its reply, by up to the peer's delayed ACK).
        stream.set_nodelay(true)?;
        let std = stream.into_std()?;
        let probe = std.try_clone()?;
        Ok(Live { stream: TcpStream::from_std(std)?, probe, busy: false })
    }

    /// Whether the server closed the connection, asked of the kernel without blocking.
    ///
    /// A write to a connection the server has closed succeeds once: the kernel takes the bytes and only the RST
    /// that comes back fails the next write. A server restarting between two batches would so silently lose the
    /// first batch after the restart. The FIN it sent when closing is already here, though, and a zero-byte peek
    /// sees it.
    fn check(&self, endpoint: &Endpoint, unsolicited: Unsolicited) -> Health {
        // What is shown of the server's words, and how much of them is read before giving up on the connection.
        const SHOWN: usize = 4096;
        const DRAINED: usize = 1 << 20;
        let mut buf = [0u8; 4096];
        let mut got = Vec::new();
        let mut drained = 0;
        loop {
            match self.probe.peek(&mut buf) {
                Ok(0) => return Health::Closed("the server closed the connection".into()),
                Ok(_) if unsolicited == Unsolicited::Reconnect => {
                    tracing::warn!(%endpoint, "the server sent data nobody asked for: reconnecting");
                    return Health::Closed("unexpected data from the server".into());
                }
                Ok(_) if drained >= DRAINED => return Health::Closed("the server keeps sending".into()),
                Ok(_) => match (&self.probe).read(&mut buf) {
                    Ok(n) => {
                        drained += n;
                        got.extend_from_slice(&buf[..n.min(SHOWN.saturating_sub(got.len()))]);
                    }
                    Err(e) => return Health::Closed(format!("reading from the connection failed: {e}")),
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Health::Closed(format!("the connection failed: {e}")),
            }
        }
        if !got.is_empty() {
            let text = String::from_utf8_lossy(&got);
            tracing::warn!(%endpoint, "the server answered: {}", text.trim_end());
        }
        Health::Open
    }
}
