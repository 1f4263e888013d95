//! The HTTP and TLS plumbing that several stages share: sources (kubelets, cAdvisor, the API server), sinks
//! (InfluxDB and every HTTP backend after it) and the binary (its own https server). One home, so that the crypto
//! provider is installed one way, every client says who it is, and every network error reads the same.

use std::time::Duration;

/// Makes ring the process's TLS crypto provider, once.
///
/// reqwest is built without a provider of its own (its default would compile aws-lc-rs, minutes on a small
/// machine) and panics at the first `Client` it builds unless a process-wide provider is installed. Every client
/// built through [`client_builder`] calls this; programs call it at start-up for the other TLS users (kube-rs,
/// the server). Calling it again, or after someone else installed a provider, does nothing.
pub fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another thread installing one is fine: a provider is installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// The `User-Agent` of every request heapster makes, so server logs tell its requests apart.
pub const USER_AGENT: &str = concat!("heapster-rs/", env!("CARGO_PKG_VERSION"));

/// A reqwest client builder with the crypto provider installed, heapster's user agent, and `timeout` as the
/// deadline of both the connection and the whole request. Callers add what is theirs (trust, pools).
pub fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    ensure_crypto_provider();
    reqwest::Client::builder().user_agent(USER_AGENT).timeout(timeout).connect_timeout(timeout)
}

/// The open-file limit's share that heapster's server takes for client connections unless `--max_connections`
/// says otherwise: half the limit, at most [`SERVER_CONNECTIONS_MAX`]. The kubelet sources keep their connections
/// within what it leaves, so the two are derived in one place and neither side can starve the other.
pub fn server_connection_share(open_files: u64) -> usize {
    usize::try_from(open_files / 2).unwrap_or(usize::MAX).clamp(1, SERVER_CONNECTIONS_MAX)
}

/// The cap of [`server_connection_share`]: more would hold memory (request buffers, TLS state) for little gain,
/// and on a large cluster the descriptors are worth more as kept kubelet connections.
pub const SERVER_CONNECTIONS_MAX: usize = 4096;

/// An error and its causes on one line: reqwest's own message is only "error sending request", the reason
/// (refused, reset, certificate) is in the chain. A cause whose text is already shown is not repeated.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(err) = cur {
        let s = err.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = err.source();
    }
    out
}

/// The TLS failure inside a request error, if the request failed in the handshake (rustls' error, wherever it sits
/// in the chain of causes).
pub fn tls_failure(e: &(dyn std::error::Error + 'static)) -> Option<rustls::Error> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r.clone());
        }
        // io::Error::source skips the error it wraps (often another io::Error), so step into it instead.
        cur = match err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// What went wrong in a handshake, in words a user can act on: `trust` names the option that adds the right CA,
/// `insecure` the one that turns verification off (kubelet, API server and sink options differ).
pub fn describe_tls(e: &rustls::Error, trust: &str, insecure: &str) -> String {
    use rustls::CertificateError as C;
    let what = match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            format!("certificate not trusted (set {trust} or {insecure})")
        }
        rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            format!("certificate not valid for this address (connect by a name it carries, or set {insecure})")
        }
        rustls::Error::InvalidCertificate(
            C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
        ) => "certificate expired or not yet valid (check the certificate and both clocks)".into(),
        rustls::Error::AlertReceived(_) => {
            "the server refused the TLS handshake (does it require a client certificate?)".into()
        }
        rustls::Error::InvalidMessage(_) => "not a TLS server (is https right for this port?)".into(),
        _ => "TLS handshake failed".into(),
    };
    format!("{what}: {e}")
}

/// A certificate verifier that takes any certificate: the handshake's signatures are still checked (so the
/// session is encrypted, just not authenticated). For the Kafka sink's `insecuressl=true`, and for `heapster
/// doctor`, which shakes hands with every kubelet whatever its certificate in order to read it and say what is
/// wrong with it.
#[derive(Debug)]
pub struct AnyCertificate(pub std::sync::Arc<rustls::crypto::CryptoProvider>);

impl AnyCertificate {
    /// With ring's algorithms, as everywhere in heapster.
    pub fn ring() -> AnyCertificate {
        AnyCertificate(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
    }
}

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn error_chains_are_one_line_without_repeats() {
        let e = E("error sending request", Some(Box::new(E("connection refused", Some(Box::new(E("refused", None)))))));
        assert_eq!(error_chain(&e), "error sending request: connection refused");
    }

    #[tokio::test]
    async fn clients_say_who_they_are_and_refused_connections_read_as_such() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = client_builder(Duration::from_secs(5)).build().unwrap();
        let e = client.get(format!("http://127.0.0.1:{port}/")).send().await.unwrap_err();
        let text = error_chain(&e);
        assert!(text.contains("refused") || text.contains("connect"), "{text}");
        assert!(tls_failure(&e).is_none());
        assert!(USER_AGENT.starts_with("heapster-rs/"));
    }

    #[test]
    fn tls_failures_name_the_options() {
        let e = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let s = describe_tls(&e, "kubeletCAFile=", "kubeletInsecureTLS=true");
        assert!(s.starts_with("certificate not trusted (set kubeletCAFile= or kubeletInsecureTLS=true)"), "{s}");
    }
}
