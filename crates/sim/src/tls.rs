//! https and bearer tokens for the simulated API server and kubelets, so that heapster's TLS and authentication
//! paths are tested against real certificates, and a small certificate authority ([`TestPki`]) to make them.
//!
//! Only ring is used (as in the rest of the workspace): the server config names its provider, so nothing here
//! depends on a process-wide default.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A server certificate and key to serve https with.
#[derive(Clone)]
pub struct SimTls {
    config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for SimTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimTls")
    }
}

impl SimTls {
    /// From a PEM certificate chain (server certificate first) and a PEM private key.
    pub fn from_pem(cert_chain: &str, key: &str) -> Result<SimTls, String> {
        let certs = CertificateDer::pem_slice_iter(cert_chain.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("TLS certificate: {e}"))?;
        if certs.is_empty() {
            return Err("TLS certificate: no certificate in the PEM".into());
        }
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| format!("TLS key: {e}"))?;
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS: {e}"))?
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .map_err(|e| format!("TLS certificate and key: {e}"))?;
        // axum serves HTTP/1 only here.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(SimTls { config: Arc::new(config) })
    }
}

/// A certificate authority made on the spot, for tests and `heapster-sim --tls`: real certificates, no files to
/// keep around.
pub struct TestPki {
    /// The CA certificate, PEM: what a client must trust.
    pub ca_pem: String,
    ca_params: rcgen::CertificateParams,
    ca_key: rcgen::KeyPair,
}

impl TestPki {
    /// A new CA named `name`.
    pub fn new(name: &str) -> TestPki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let key = rcgen::KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        TestPki { ca_pem: cert.pem(), ca_params: params, ca_key: key }
    }

    /// A server certificate signed by this CA, valid for `ips` (as IP SANs) and `localhost`: (cert PEM, key PEM).
    pub fn server_cert(&self, ips: &[IpAddr]) -> (String, String) {
        let mut names: Vec<String> = ips.iter().map(|ip| ip.to_string()).collect();
        names.push("localhost".into());
        self.server_cert_naming(names)
    }

    /// A server certificate of this CA whose SANs are exactly `names` (IPs as IP SANs): (cert PEM, key PEM).
    fn server_cert_naming(&self, names: Vec<String>) -> (String, String) {
        let mut params = rcgen::CertificateParams::new(names).expect("server certificate parameters");
        params.distinguished_name.push(rcgen::DnType::CommonName, "heapster-sim");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().expect("server key");
        let issuer = rcgen::Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).expect("server certificate");
        (cert.pem(), key.serialize_pem())
    }

    /// A client certificate signed by this CA whose subject CN is `user` (and O each of `groups`), as Kubernetes
    /// reads users from certificates: (cert PEM, key PEM).
    pub fn client_cert(&self, user: &str, groups: &[&str]) -> (String, String) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("client certificate parameters");
        params.distinguished_name.push(rcgen::DnType::CommonName, user);
        for g in groups {
            params.distinguished_name.push(rcgen::DnType::OrganizationName, *g);
        }
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().expect("client key");
        let issuer = rcgen::Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).expect("client certificate");
        (cert.pem(), key.serialize_pem())
    }

    /// [`SimTls`] serving a certificate of this CA naming exactly `names`: IP addresses become IP SANs, others DNS
    /// SANs (a kubelet certificate that lacks the address scraped, or names the node by its host name only).
    pub fn sim_tls_named(&self, names: &[&str]) -> SimTls {
        let (cert, key) = self.server_cert_naming(names.iter().map(|n| n.to_string()).collect());
        SimTls::from_pem(&cert, &key).expect("a generated certificate loads")
    }

    /// [`SimTls`] serving a certificate of this CA for `ips`.
    pub fn sim_tls(&self, ips: &[IpAddr]) -> SimTls {
        let (cert, key) = self.server_cert(ips);
        SimTls::from_pem(&cert, &key).expect("a generated certificate loads")
    }
}

/// TCP connections after their TLS handshake, as axum's listener. Handshakes run on their own tasks, so a slow or
/// failing client does not hold up the others.
pub struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `listener`. Must be called inside a tokio runtime.
    pub fn new(listener: TcpListener, tls: &SimTls) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(tls.config.clone());
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                // Once the server stops (drops its end), stop accepting: connections are refused from then on.
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = tx.closed() => return,
                };
                let (tcp, peer) = match accepted {
                    Ok(x) => x,
                    Err(_) => {
                        // Out of file descriptors, say: wait rather than spin.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    // A client that distrusts the certificate aborts the handshake: nothing to serve.
                    if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                        let _ = tx.send((stream, peer)).await;
                    }
                });
            }
        });
        Ok(TlsListener { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

async fn require_token(State(token): State<Arc<str>>, req: Request, next: Next) -> Response {
    let given = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if given.and_then(|v| v.strip_prefix("Bearer ")) == Some(&*token) {
        return next.run(req).await;
    }
    // The Status object a real API server (and kubelet) answers with.
    let status = serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Unauthorized", "reason": "Unauthorized", "code": 401});
    (StatusCode::UNAUTHORIZED, [(header::CONTENT_TYPE, "application/json")], status.to_string()).into_response()
}

/// A client's address, as handlers take it (`ConnectInfo<Peer>`), over plain http and https alike.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TcpListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

/// Serves `app` on `listener` until the runtime ends: https when `tls` is given, and answering 401 to requests
/// without `Authorization: Bearer <token>` when `token` is given. Handlers may take the client's address
/// (`ConnectInfo<Peer>`): the kubelets count connections by it.
pub fn serve(listener: TcpListener, app: Router, tls: Option<&SimTls>, token: Option<&str>) -> std::io::Result<()> {
    serve_until(listener, app, tls, token, std::future::pending())
}

/// As [`serve`], until `stop` completes: then the listener is closed (new connections are refused), idle
/// connections are closed and requests in flight are answered.
pub fn serve_until(
    listener: TcpListener,
    app: Router,
    tls: Option<&SimTls>,
    token: Option<&str>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = match token {
        Some(t) => app.layer(axum::middleware::from_fn_with_state(Arc::<str>::from(t), require_token)),
        None => app,
    };
    match tls {
        Some(tls) => {
            let listener = TlsListener::new(listener, tls)?;
            tokio::spawn(async move {
                let app = app.into_make_service_with_connect_info::<Peer>();
                let _ = axum::serve(listener, app).with_graceful_shutdown(stop).await;
            });
        }
        None => {
            tokio::spawn(async move {
                let app = app.into_make_service_with_connect_info::<Peer>();
                let _ = axum::serve(listener, app).with_graceful_shutdown(stop).await;
            });
        }
    }
    Ok(())
}
