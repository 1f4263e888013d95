//! heapster's own HTTP server: plain http, or https with `--tls_cert`/`--tls_key`, with the access control of
//! [`auth`] in front of the API router.
//!
//! Connections are served one by one with hyper (rather than `axum::serve`) so that each request is decided with
//! the client certificate of its own connection, and so that connections are bounded before a request is read
//! (see [`connections`]): a request head must come within `--http_header_timeout` and fit in
//! [`MAX_REQUEST_HEAD`]. Shutdown is graceful: the listener closes, idle connections close, requests in flight
//! are answered.

pub mod auth;
pub mod connections;
mod reload;
mod tls;

use crate::flags::Flags;
use auth::access_review::Authorizer;
use auth::metrics::AuthMetrics;
use auth::token_file::TokenFile;
use auth::token_review::TokenReviewer;
use auth::{Authenticator, Peer, RequestHeaders};
use axum::Router;
use connections::{ConnectionLimits, ConnectionMetrics, Connections, Slot};
use heapster_sources::kubernetes::Cluster;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// A client that connects and does not finish its TLS handshake within this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The most a request head (request line and headers) may take; a longer one is answered 431 and the connection
/// closed. hyper's default, about 400 KiB, let each unauthenticated connection hold that much; a Kubernetes
/// client's head with a bearer token is 1 to 3 KiB.
pub const MAX_REQUEST_HEAD: usize = 32 * 1024;

/// The server's counters on `/metrics`.
pub struct ServerMetrics {
    pub auth: AuthMetrics,
    pub connections: ConnectionMetrics,
}

impl ServerMetrics {
    /// Registers the counters in heapster's registry.
    pub fn new(registry: &mut Registry) -> ServerMetrics {
        ServerMetrics { auth: AuthMetrics::new(registry), connections: ConnectionMetrics::new(registry) }
    }
}

/// How heapster serves: TLS or not, who may read, how many connections. Built once at start-up, where a bad file
/// stops heapster.
pub struct ServerSetup {
    tls: Option<(TlsAcceptor, Arc<tls::ClientCas>)>,
    auth: Arc<Authenticator>,
    connections: Arc<Connections>,
    http1: hyper::server::conn::http1::Builder,
}

impl ServerSetup {
    /// From the serving flags: loads the certificates and the token file, and reviews tokens through the client of
    /// the (first) kubernetes source's `cluster`. Errors name the flag to fix.
    pub fn from_flags(flags: &Flags, cluster: Option<&Cluster>, metrics: ServerMetrics) -> Result<ServerSetup, String> {
        let ServerMetrics { auth: metrics, connections } = metrics;
        let limits = ConnectionLimits::from_flags(flags.max_connections, flags.max_connections_per_client);
        tracing::info!(
            "serving at most {} connections, {} per client address; a request head must come within {:?}",
            limits.total,
            limits.per_client,
            flags.http_header_timeout
        );
        let mut http1 = hyper::server::conn::http1::Builder::new();
        // hyper runs this timeout from the connection's start and again after each answer, so it is also the idle
        // timeout of keep-alive connections.
        http1.timer(TokioTimer::new()).header_read_timeout(flags.http_header_timeout).max_buf_size(MAX_REQUEST_HEAD);
        let tls = match flags.tls_files() {
            Some((cert, key)) => {
                let (config, cas) = tls::server_config(
                    &cert,
                    &key,
                    flags.tls_client_ca().as_deref(),
                    flags.requestheader_client_ca().as_deref(),
                )?;
                Some((TlsAcceptor::from(Arc::new(config)), cas))
            }
            None => None,
        };
        let token_file = flags.token_auth_file().map(|p| TokenFile::load(&p)).transpose()?;
        let reviewer = match (flags.authentication_token_webhook, cluster) {
            (true, Some(c)) => Some(TokenReviewer::new(
                c.client.clone(),
                flags.authentication_token_webhook_cache_ttl,
                flags.authentication_token_webhook_rate,
                metrics.clone(),
            )),
            (true, None) => {
                return Err(
                    "--authentication_token_webhook needs a kubernetes source (--source=kubernetes.summary_api:...)"
                        .into(),
                );
            }
            (false, _) => None,
        };
        let authorizer = match (flags.authorization_webhook, cluster) {
            (true, Some(c)) => Some(Authorizer::new(
                c.client.clone(),
                flags.authorization_webhook_cache_authorized_ttl,
                flags.authorization_webhook_cache_unauthorized_ttl,
                metrics.clone(),
            )),
            (true, None) => {
                return Err(
                    "--authorization_webhook needs a kubernetes source (--source=kubernetes.summary_api:...)".into()
                );
            }
            (false, _) => None,
        };
        let auth = Authenticator {
            client_certs: flags.tls_client_ca().is_some(),
            front_proxy: flags.requestheader_client_ca().map(|_| RequestHeaders::from_flags(flags)),
            token_file,
            reviewer,
            authorizer,
            allowed_users: flags.allowed_users().into_iter().collect(),
            metrics,
        };
        let setup =
            ServerSetup { tls, auth: Arc::new(auth), connections: Connections::new(limits, connections), http1 };
        setup.log_policy();
        Ok(setup)
    }

    /// `https` or `http`, for the start-up line.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    fn log_policy(&self) {
        let a = &self.auth;
        if !a.enabled() {
            return;
        }
        let mut ways = Vec::new();
        if a.client_certs {
            ways.push("client certificates".to_string());
        }
        if a.front_proxy.is_some() {
            ways.push("users named by a front proxy's certificate and headers".to_string());
        }
        if let Some(f) = &a.token_file {
            ways.push(format!("{} static tokens", f.len()));
        }
        if a.reviewer.is_some() {
            ways.push("tokens reviewed by the API server".into());
        }
        let mut users: Vec<&str> = a.allowed_users.iter().map(String::as_str).collect();
        users.sort();
        let mut who = if users.is_empty() { "every authenticated user".into() } else { users.join(", ") };
        if a.authorizer.is_some() {
            who.push_str(", as the API server's SubjectAccessReviews decide");
        }
        tracing::info!("access control: {} (all paths but /healthz); allowed: {who}", ways.join(", "));
        if self.tls.is_none() {
            tracing::warn!(
                "bearer tokens are accepted over plain http, readable on the network path: set --tls_cert and --tls_key"
            );
        }
    }
}

/// Serves `app` on `listener` until `stop` completes, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    setup: ServerSetup,
    stop: impl std::future::Future<Output = ()> + Send,
) {
    let connections = setup.connections.clone();
    let mut stop = std::pin::pin!(stop);
    loop {
        let (tcp, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::debug!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        // Refused: the socket closes at once, before any of its bytes is read.
        let admitted = match connections.admit(addr.ip()) {
            Ok(a) => a,
            Err(why) => {
                tracing::debug!("refused a connection from {addr}: {why}");
                continue;
            }
        };
        let (app, auth, tls, http1) = (app.clone(), setup.auth.clone(), setup.tls.clone(), setup.http1.clone());
        tokio::spawn(async move {
            let held = admitted;
            let slot = held.slot.clone();
            let Some((tls, cas)) = tls else {
                let peer = Peer { addr, has_cert: false, cert_user: None, front_proxy: None };
                return serve_connection(tcp, peer, app, auth, http1, &slot).await;
            };
            let handshake = async {
                if !starts_with_tls(&tcp).await {
                    refuse_plain_http(tcp).await;
                    return None;
                }
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)).await {
                    Ok(Ok(s)) => Some(s),
                    // A client that distrusts our certificate, or whose certificate we distrust, aborts here.
                    Ok(Err(e)) => {
                        tracing::debug!("TLS handshake with {addr}: {e}");
                        None
                    }
                    Err(_) => {
                        tracing::debug!("TLS handshake with {addr}: no handshake within {HANDSHAKE_TIMEOUT:?}");
                        None
                    }
                }
            };
            let stream = tokio::select! {
                s = handshake => s,
                _ = slot.closed() => None,
            };
            let Some(stream) = stream else { return };
            let chain = stream.get_ref().1.peer_certificates().unwrap_or_default();
            let (client, front_proxy) = cas.signed_by(chain);
            let user = chain.first().and_then(tls::certificate_user);
            let peer = Peer {
                addr,
                has_cert: !chain.is_empty(),
                front_proxy: user.as_ref().filter(|_| front_proxy).map(|u| u.name.clone()),
                cert_user: user.filter(|_| client),
            };
            serve_connection(stream, peer, app, auth, http1, &slot).await;
            drop(held);
        });
    }
    drop(listener);
    connections.close_all();
    while connections.alive() > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Serves one connection's requests (HTTP/1.1, keep-alive), each past [`Authenticator::check`] first, until the
/// client closes, hyper's timeouts close it or `slot` asks it to close (then after the request in flight).
async fn serve_connection<S>(
    io: S,
    peer: Peer,
    app: Router,
    auth: Arc<Authenticator>,
    http1: hyper::server::conn::http1::Builder,
    slot: &Arc<Slot>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let addr = peer.addr;
    let peer = Arc::new(peer);
    let busy = slot.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let (app, auth, peer, busy) = (app.clone(), auth.clone(), peer.clone(), busy.clone());
        async move {
            busy.set_busy(true);
            let answer = match auth.check(req.method(), req.uri().path(), req.headers(), &peer).await {
                Err(denied) => denied,
                Ok(()) => app.oneshot(req).await.unwrap_or_else(|never| match never {}),
            };
            busy.set_busy(false);
            Ok::<_, Infallible>(answer)
        }
    });
    let conn = http1.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = slot.closed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!("connection with {addr}: {e}");
    }
}

/// Whether the client's first byte opens a TLS handshake record (0x16); a plain http request starts with a letter.
async fn starts_with_tls(tcp: &TcpStream) -> bool {
    let mut first = [0u8; 1];
    matches!(tokio::time::timeout(HANDSHAKE_TIMEOUT, tcp.peek(&mut first)).await, Ok(Ok(1)) if first[0] == 0x16)
}

/// Answers a plain http request on the https port with a 400 saying so (as Go's servers do), instead of a
/// connection dropped without a word.
async fn refuse_plain_http(mut tcp: TcpStream) {
    // Read the request first: closing with unread data would reset the connection before the client reads.
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(1), tcp.read(&mut buf)).await;
    let body = "Client sent an HTTP request to an HTTPS server: use https://\n";
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tcp.write_all(response.as_bytes()).await;
    let _ = tcp.shutdown().await;
    let _ =
        tokio::time::timeout(Duration::from_secs(1), async { while let Ok(1..) = tcp.read(&mut buf).await {} }).await;
}
