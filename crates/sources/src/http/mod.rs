//! Bounded HTTP GETs of JSON documents, shared by the kubelet and cAdvisor clients.
//!
//! A scrape target can be slow, dead, behind a proxy that answers with an HTML page, or (through a bug or an
//! attacker) send an endless body. Each request has its own deadline, the body is read in chunks up to a byte limit
//! (a declared `Content-Length` over the limit is refused before reading), and each failure has a [`FetchError`]
//! whose [`FetchError::cause`] the sources count per target.
//!
//! The byte limit bounds one target; a [`BodyBudget`] bounds them together, so that a dozen kubelets each sending
//! a body just under the limit cannot add up to hundreds of MB.
//!
//! Requests travel on a [`Transport`]: plain http on hyper's connections ([`plain`]), https through reqwest (see
//! there).

mod plain;

use heapster_net::{describe_tls, error_chain, tls_failure};
use http_body_util::BodyExt;
use hyper::body::Bytes;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes hyper reads from a plain-http connection at a time.
///
/// Left to itself (as under reqwest, which does not expose the setting) hyper grows a connection's read buffer to
/// the size of the bodies it reads: about 190 KB per kubelet in flight. With 8 KiB (Go's net/http, which the
/// original Heapster used, reads 4 KiB at a time) a 90 kB Summary takes a dozen reads.
pub const PLAIN_READ_BUFFER: usize = 8 << 10;

/// How long a kept connection may idle before it is closed rather than reused (Go's client: 90 s).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// What a source's requests travel on: one connection pool per source, shared by its clones.
///
/// Plain-http targets (kubelets on their read-only port, cAdvisor hosts) go through hyper's HTTP/1 connections
/// directly ([`plain`]), whose sockets are kept between rounds at the cost of a socket: connecting and closing was
/// about 7 % of heapster's CPU at 1,000 nodes, more on the kubelets' side.
/// https targets go through reqwest, which carries the TLS settings. When an http proxy is configured in the
/// environment (`http_proxy`, `HTTP_PROXY`, `all_proxy`, `ALL_PROXY`), plain http goes through reqwest too, which
/// honours it (and `no_proxy`) as the original Heapster's Go client did.
#[derive(Clone)]
pub struct Transport {
    reqwest: reqwest::Client,
    plain: Option<plain::PlainClient>,
}

impl Transport {
    /// Plain http through hyper unless a proxy is configured, everything else through `reqwest`. `connect_timeout`
    /// bounds making a plain connection; `keep_alive` keeps plain connections between requests (reqwest's own
    /// pool settings are the caller's).
    pub fn new(reqwest: reqwest::Client, connect_timeout: Duration, keep_alive: bool) -> Self {
        let proxied =
            ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"].iter().any(|v| std::env::var_os(v).is_some());
        let plain = (!proxied).then(|| plain::PlainClient::new(connect_timeout, keep_alive));
        Transport { reqwest, plain }
    }

    /// Whether plain-http requests go through hyper's connections (no proxy in the environment).
    pub fn plain_direct(&self) -> bool {
        self.plain.is_some()
    }
}

/// A zero timeout is a target never asked: the round's deadline came while its request waited for one of the
/// round's scrape permits, which "no complete answer within 0ns" did not say.
fn timeout_text(timeout: Duration) -> String {
    if timeout.is_zero() {
        "not asked: the round's deadline passed while it waited its turn (too many targets for the resolution and \
         --max_concurrent_scrapes)"
            .into()
    } else {
        format!("no complete answer within {timeout:?}")
    }
}

/// Why one target gave no document this round.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The TLS handshake failed (untrusted or mismatched certificate, not a TLS server): retrying will not help,
    /// an option must change, so it is told apart from `Connect`.
    #[error("{0}")]
    Tls(String),
    #[error("{}", timeout_text(*.0))]
    Timeout(Duration),
    #[error("answered HTTP {status}: {snippet}")]
    Status { status: u16, snippet: String },
    /// The response head (status line and headers) did not parse or never ended: a server that is not what the
    /// URL says, or one misbehaving on purpose. Not a connection failure: the connection worked.
    #[error("the response head is malformed or too large: {0}")]
    BadHead(String),
    #[error(
        "body larger than {limit} bytes: not read further (raise {option} on --source if this target's documents are \
         really this big)"
    )]
    TooLarge { limit: usize, option: &'static str },
    #[error("body is not JSON (an HTML error page or a proxy?): {0}")]
    NotJson(String),
    #[error("body ended early ({got} bytes): {err}")]
    Truncated { got: usize, err: String },
    #[error("malformed {what}: {err}")]
    Decode { what: &'static str, err: serde_json::Error },
}

impl FetchError {
    /// The `cause` label of the error counters: one per way of failing, few enough to graph.
    pub fn cause(&self) -> &'static str {
        match self {
            FetchError::Connect(_) => "connect",
            FetchError::Tls(_) => "tls",
            FetchError::BadHead(_) => "bad_head",
            FetchError::Timeout(_) => "timeout",
            FetchError::Status { .. } => "http_status",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::NotJson(_) => "not_json",
            FetchError::Truncated { .. } => "truncated",
            FetchError::Decode { .. } => "malformed",
        }
    }
}

/// One GET's settings.
pub(crate) struct Get<'a> {
    pub url: &'a str,
    pub bearer: Option<String>,
    /// Deadline of the whole request, body included.
    pub timeout: Duration,
    pub max_body: usize,
    /// The option that sets `max_body` (`kubeletMaxBody=`), named when a body is over it.
    pub max_body_option: &'static str,
    /// Shared by every request of one source: bytes of bodies held at once.
    pub budget: &'a BodyBudget,
    /// The options a user sets to trust the target's certificate, and to stop verifying it: named in TLS errors.
    pub tls_options: (&'a str, &'a str),
    /// Send `Connection: close`: neither side keeps the connection after the answer (a target beyond the budget
    /// of kept connections).
    pub close: bool,
}

/// Bytes of response bodies held at once across every concurrent request of one source, beyond the first
/// [`BodyBudget::FREE_PER_BODY`] of each.
///
/// Each body takes permits (one per byte) as it is read and gives them back when the caller drops the [`Body`],
/// after decoding. The first MiB of every body is free, so that the bodies of healthy nodes (a 110-pod Summary is
/// about 0.6 MB) never wait on each other: only big bodies share the budget. A body of known length takes its
/// permits in one go, holding none before; a chunked one takes them chunk by chunk and may wait while holding
/// some: if big bodies ever wait on each other, the request deadline ends the wait.
#[derive(Clone)]
pub struct BodyBudget {
    permits: Arc<Semaphore>,
    total: usize,
}

impl BodyBudget {
    /// Bytes of each body not counted against the budget.
    pub const FREE_PER_BODY: usize = 1 << 20;

    /// A budget of `total` bytes; it must hold at least one body of the largest size allowed.
    pub fn new(total: usize) -> Self {
        BodyBudget { permits: Arc::new(Semaphore::new(total.min(Semaphore::MAX_PERMITS))), total }
    }

    /// The budget's size in bytes.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes counted now (tests).
    pub fn in_use(&self) -> usize {
        self.total.min(Semaphore::MAX_PERMITS) - self.permits.available_permits()
    }

    /// Takes the permits for a body growing from `had` to `has` bytes.
    async fn grow(&self, held: &mut Option<OwnedSemaphorePermit>, had: usize, has: usize) {
        let free = Self::FREE_PER_BODY;
        let more = has.saturating_sub(free) - had.saturating_sub(free);
        if more == 0 {
            return;
        }
        // More than `u32::MAX` at once cannot happen: bodies are far below 4 GiB and chunks smaller still.
        let more = u32::try_from(more).unwrap_or(u32::MAX);
        let Ok(p) = self.permits.clone().acquire_many_owned(more).await else { return };
        match held {
            Some(h) => h.merge(p),
            None => *held = Some(p),
        }
    }
}

/// A body read within the limits; its bytes count against the [`BodyBudget`] until it is dropped.
pub(crate) struct Body {
    pub bytes: Vec<u8>,
    _permits: Option<OwnedSemaphorePermit>,
}

impl std::ops::Deref for Body {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// `max_body` and `bytes_in_flight` from the options `max_name` and `flight_name` (sizes like `16Mi`), checked
/// together: a budget smaller than one body of the largest size would stall every large body until its deadline.
pub(crate) fn body_limits(
    o: &heapster_model::options::Options,
    (max_name, flight_name): (&str, &str),
    (max_default, flight_default): (usize, usize),
) -> Result<(usize, usize), heapster_model::options::ConfigError> {
    let size = |name: &str, default: usize| -> Result<usize, _> {
        match o.get(name) {
            None => Ok(default),
            Some(v) => heapster_model::quantity::parse_size(v)
                .ok()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| o.error(format!("{name}={v:?}: expected a size like 16Mi or 64M"))),
        }
    };
    let max_body = size(max_name, max_default)?;
    let flight = size(flight_name, flight_default.max(max_body.saturating_sub(BodyBudget::FREE_PER_BODY)))?;
    if flight < max_body.saturating_sub(BodyBudget::FREE_PER_BODY) {
        return Err(o.error(format!(
            "{flight_name}={flight} is smaller than one body of {max_name}={max_body} (less its first MiB, which is \
             not counted): raise {flight_name} or lower {max_name}"
        )));
    }
    Ok((max_body, flight))
}

/// Whether a request failed because the response head did not parse or was too large (hyper's parse errors).
fn bad_head(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_parse) {
            return true;
        }
        cause = c.source();
    }
    false
}

/// A request that got no response: the head did not parse, or no connection carried it.
fn unanswered(e: &(dyn std::error::Error + 'static)) -> FetchError {
    if bad_head(e) { FetchError::BadHead(error_chain(e)) } else { FetchError::Connect(error_chain(e)) }
}

/// The body of a successful GET, within the deadline and the byte limit.
pub(crate) async fn get(transport: &Transport, req: Get<'_>) -> Result<Body, FetchError> {
    let timeout = req.timeout;
    match tokio::time::timeout(timeout, fetch(transport, req)).await {
        Ok(r) => r,
        Err(_) => Err(FetchError::Timeout(timeout)),
    }
}

/// A response whose body is still to be read, from either client of a [`Transport`].
enum Response {
    Reqwest(reqwest::Response),
    Plain(plain::PlainResponse),
}

impl Response {
    fn status(&self) -> u16 {
        match self {
            Response::Reqwest(r) => r.status().as_u16(),
            Response::Plain(r) => r.head.status().as_u16(),
        }
    }

    /// The body's declared length (`Content-Length`).
    fn content_length(&self) -> Option<u64> {
        match self {
            Response::Reqwest(r) => r.content_length(),
            Response::Plain(r) => hyper::body::Body::size_hint(r.head.body()).exact(),
        }
    }

    /// The body's next chunk; `None` at its end.
    async fn chunk(&mut self) -> Result<Option<Bytes>, String> {
        match self {
            Response::Reqwest(r) => r.chunk().await.map_err(|e| e.to_string()),
            Response::Plain(r) => loop {
                match r.head.body_mut().frame().await {
                    None => {
                        r.ended().await;
                        return Ok(None);
                    }
                    Some(Err(e)) => return Err(error_chain(&e)),
                    // Trailers carry no body bytes.
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => return Ok(Some(data)),
                        Err(_) => continue,
                    },
                }
            },
        }
    }
}

/// Sends the request head; the body is read by the caller.
async fn send(transport: &Transport, req: &Get<'_>) -> Result<Response, FetchError> {
    if let (Some(plain), true) = (&transport.plain, req.url.starts_with("http://")) {
        use hyper::header::{ACCEPT, AUTHORIZATION, USER_AGENT};
        let bearer = req.bearer.as_ref().map(|t| format!("Bearer {t}"));
        let mut headers = vec![(ACCEPT, "application/json"), (USER_AGENT, heapster_net::USER_AGENT)];
        headers.extend(bearer.as_deref().map(|b| (AUTHORIZATION, b)));
        return plain.get(req.url, &headers, req.close).await.map(Response::Plain);
    }
    let mut builder = transport.reqwest.get(req.url).header("accept", "application/json");
    if let Some(t) = &req.bearer {
        builder = builder.bearer_auth(t);
    }
    if req.close {
        builder = builder.header("connection", "close");
    }
    builder.send().await.map(Response::Reqwest).map_err(|e| {
        if e.is_timeout() {
            FetchError::Timeout(req.timeout)
        } else if let Some(tls) = tls_failure(&e) {
            FetchError::Tls(describe_tls(&tls, req.tls_options.0, req.tls_options.1))
        } else {
            unanswered(&e)
        }
    })
}

async fn fetch(transport: &Transport, req: Get<'_>) -> Result<Body, FetchError> {
    let mut resp = send(transport, &req).await?;
    let limit = req.max_body;
    let too_large = || FetchError::TooLarge { limit, option: req.max_body_option };
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let status = resp.status();
    let mut permits = None;
    let declared = resp.content_length().map(|n| n as usize);
    if let Some(n) = declared {
        req.budget.grow(&mut permits, 0, n).await;
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(64 << 10));
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let has = body.len() + chunk.len();
                if has > limit {
                    return Err(too_large());
                }
                if declared.is_none_or(|n| has > n) {
                    req.budget.grow(&mut permits, body.len().max(declared.unwrap_or(0)), has).await;
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(err) => return Err(FetchError::Truncated { got: body.len(), err }),
        }
    }
    if !(200..300).contains(&status) {
        return Err(FetchError::Status { status, snippet: snippet(&body) });
    }
    Ok(Body { bytes: body, _permits: permits })
}

/// Decodes a JSON document whose first byte must be `open` (`{` for an object, `[` for a list).
///
/// Checking that byte first names an HTML page as such rather than as a JSON syntax error, and a document of the
/// wrong shape as malformed: serde would otherwise accept an array for a struct whose fields all have defaults. An
/// early end is named as truncation. simd-json decodes, serde_json explains a refusal ([`crate::json`]).
pub(crate) fn decode_json<T: DeserializeOwned>(body: &[u8], open: u8, what: &'static str) -> Result<T, FetchError> {
    let _cpu = heapster_cost::DECODE_STAGE.start();
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(&b) if b == open => {}
        Some(b'{' | b'[') => {
            let err =
                serde::de::Error::custom(format!("expected a JSON {}", if open == b'[' { "array" } else { "object" }));
            return Err(FetchError::Decode { what, err });
        }
        _ => return Err(FetchError::NotJson(snippet(body))),
    }
    crate::json::from_slice(body).map_err(|err| {
        if err.is_eof() {
            FetchError::Truncated { got: body.len(), err: err.to_string() }
        } else {
            FetchError::Decode { what, err }
        }
    })
}

/// The first bytes of a body, printable, for an error line.
fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(120)]);
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_never_asked_says_so_rather_than_timing_out_in_0ns() {
        let never = FetchError::Timeout(Duration::ZERO).to_string();
        assert!(never.starts_with("not asked: the round's deadline passed"), "{never}");
        assert_eq!(FetchError::Timeout(Duration::from_secs(10)).to_string(), "no complete answer within 10s");
    }
}
