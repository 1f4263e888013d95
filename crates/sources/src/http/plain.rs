//! Plain-http GETs on hyper's HTTP/1 connection, with idle connections kept as bare sockets.
//!
//! A connection of hyper's pooled client holds about 35 KiB while it idles between rounds: its read buffer, its
//! header buffer and the blocks of its request channel, all kept for the next request. At 5,000 kubelets that was
//! a tenth of heapster's memory. Here a connection is handed to hyper for one request and taken back
//! ([`hyper::client::conn::http1::Connection::without_shutdown`]) when its response has been read: between rounds
//! only the socket is kept, and hyper's buffers live as long as the request.
//!
//! What a pool must get right is kept: a socket is reused only after a whole response that allowed it (HTTP/1.1, no
//! `Connection: close`, nothing read beyond it), not after 90 s idle, and not once the other side has closed it; a
//! GET that fails on a reused socket (the kubelet closed it as the request left, which the check before reuse
//! cannot see yet) is sent again on a new connection, as Go's client does for idempotent requests.

use super::{FetchError, IDLE_TIMEOUT, PLAIN_READ_BUFFER, unanswered};
use heapster_net::error_chain;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::Instant;

type Empty = http_body_util::Empty<Bytes>;

/// Plain-http connections to many targets, shared by the clones of one source's transport.
#[derive(Clone)]
pub(super) struct PlainClient {
    idle: Arc<Mutex<Idle>>,
    connect_timeout: Duration,
    keep_alive: bool,
}

/// Sockets idle between requests, by `host:port`.
#[derive(Default)]
struct Idle {
    by_target: HashMap<Box<str>, Vec<(TcpStream, Instant)>>,
    swept: Option<Instant>,
}

/// A response whose body is being read; the connection goes back to the pool when the body has ended.
pub(super) struct PlainResponse {
    pub head: hyper::Response<Incoming>,
    /// Told when the whole body has been read, if the connection may be reused; dropped otherwise.
    reuse: Option<oneshot::Sender<()>>,
    /// Dropped when the body has ended: hyper's connection task finishes once its sender is gone and no response is
    /// due, and gives the socket back.
    sender: Option<hyper::client::conn::http1::SendRequest<Empty>>,
    /// The task driving the connection, which puts its socket back in the pool when it finishes.
    conn: Option<tokio::task::JoinHandle<()>>,
}

impl PlainResponse {
    /// The body has been read to its end: the connection may serve the target's next request. Returns once the
    /// socket is back in the pool (a few microseconds), so that a request that follows at once finds it there.
    pub async fn ended(&mut self) {
        if let Some(reuse) = self.reuse.take() {
            let _ = reuse.send(());
        }
        self.sender = None;
        if let Some(conn) = self.conn.take() {
            let _ = conn.await;
        }
    }
}

impl PlainClient {
    /// `connect_timeout` bounds making a connection; without `keep_alive` each request has its own connection.
    pub fn new(connect_timeout: Duration, keep_alive: bool) -> Self {
        PlainClient { idle: Arc::default(), connect_timeout, keep_alive }
    }

    /// Sends a GET for `url` (`http://...`) with `headers`, on an idle connection to its target if one is alive.
    /// `close` asks for a connection of its own, closed after the response.
    pub async fn get(
        &self,
        url: &str,
        headers: &[(hyper::header::HeaderName, &str)],
        close: bool,
    ) -> Result<PlainResponse, FetchError> {
        let uri: hyper::Uri = url.parse().map_err(|e| FetchError::Connect(format!("bad URL {url}: {e}")))?;
        let (Some(host), Some(path)) = (uri.host(), uri.path_and_query()) else {
            return Err(FetchError::Connect(format!("bad URL {url}: no host")));
        };
        let target = format!("{host}:{}", uri.port_u16().unwrap_or(80));
        // The port only if the URL gives one, as Go's client and hyper's pooled one send it; never user info.
        let authority = match uri.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let keep = self.keep_alive && !close;
        let request = || {
            let mut request = hyper::Request::get(path.as_str()).header(hyper::header::HOST, &authority);
            for (name, value) in headers {
                request = request.header(name, *value);
            }
            if !keep {
                request = request.header(hyper::header::CONNECTION, "close");
            }
            request.body(Empty::new()).map_err(|e| FetchError::Connect(e.to_string()))
        };
        if let Some(socket) = keep.then(|| self.take(&target)).flatten() {
            // Sent again on a new connection below if the reused one fails.
            if let Ok(r) = self.exchange(socket, &target, request()?, keep).await {
                return Ok(r);
            }
        }
        let socket = self.connect(&target).await?;
        self.exchange(socket, &target, request()?, keep).await
    }

    async fn connect(&self, target: &str) -> Result<TcpStream, FetchError> {
        let socket = match tokio::time::timeout(self.connect_timeout, TcpStream::connect(target)).await {
            Ok(Ok(socket)) => socket,
            Ok(Err(e)) => return Err(FetchError::Connect(format!("tcp connect to {target}: {e}"))),
            Err(_) => {
                return Err(FetchError::Connect(format!(
                    "tcp connect to {target}: no connection within {:?}",
                    self.connect_timeout
                )));
            }
        };
        // Requests are one small write each; Nagle's algorithm would only delay them.
        let _ = socket.set_nodelay(true);
        Ok(socket)
    }

    /// One request on `socket`; the socket returns to the pool after the body's end if `keep` and the response
    /// allow it.
    async fn exchange(
        &self,
        socket: TcpStream,
        target: &str,
        request: hyper::Request<Empty>,
        keep: bool,
    ) -> Result<PlainResponse, FetchError> {
        let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
            .read_buf_exact_size(Some(PLAIN_READ_BUFFER))
            .handshake::<_, Empty>(TokioIo::new(socket))
            .await
            .map_err(|e| FetchError::Connect(error_chain(&e)))?;
        let (reuse, reused) = oneshot::channel();
        let idle = keep.then(|| (self.idle.clone(), Box::<str>::from(target)));
        let conn = tokio::spawn(async move {
            let parts = conn.without_shutdown().await;
            if let (Ok(parts), Some((idle, target)), Ok(())) = (parts, idle, reused.await)
                && parts.read_buf.is_empty()
            {
                put(&idle, target, parts.io.into_inner());
            }
        });
        let head = sender.send_request(request).await.map_err(|e| unanswered(&e))?;
        let reusable = keep && head.version() == hyper::Version::HTTP_11 && !says_close(head.headers());
        Ok(PlainResponse { head, reuse: reusable.then_some(reuse), sender: Some(sender), conn: Some(conn) })
    }

    /// The most recently idle socket to `target` that is still open and not too old.
    fn take(&self, target: &str) -> Option<TcpStream> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let sockets = idle.by_target.get_mut(target)?;
        while let Some((socket, since)) = sockets.pop() {
            // tokio's clock, which tests can move.
            if since.elapsed() < IDLE_TIMEOUT && open(&socket) {
                return Some(socket);
            }
        }
        None
    }
}

/// Keeps `socket` for `target`'s next request; once per idle timeout, drops the sockets idle longer (targets that
/// were removed or not asked since).
fn put(idle: &Mutex<Idle>, target: Box<str>, socket: TcpStream) {
    let now = Instant::now();
    let mut idle = idle.lock().unwrap_or_else(|e| e.into_inner());
    if idle.swept.is_none_or(|t| now.duration_since(t) >= IDLE_TIMEOUT) {
        idle.swept = Some(now);
        idle.by_target.retain(|_, sockets| {
            sockets.retain(|(_, since)| now.duration_since(*since) < IDLE_TIMEOUT);
            !sockets.is_empty()
        });
    }
    idle.by_target.entry(target).or_default().push((socket, now));
}

/// Whether an idle socket is still open: the other side has neither closed it nor sent anything unasked. Reads
/// nothing from the kernel until the reactor has seen the socket readable (a close that has just arrived may not
/// show yet: the retry in [`PlainClient::get`] covers that).
fn open(socket: &TcpStream) -> bool {
    matches!(socket.try_read(&mut [0; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// Whether a `Connection` header lists `close`.
fn says_close(headers: &hyper::HeaderMap) -> bool {
    headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|token| token.trim().eq_ignore_ascii_case("close"))))
}
