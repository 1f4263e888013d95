//! The https side of heapster's server: `--tls_cert`, `--tls_key` and `--tls_client_ca` loaded once at start-up
//! into a rustls configuration, and the client certificate's user read once per connection.
//!
//! The serving certificate is re-read when its files change ([`ReloadingCert`]); the client CAs are read once.
//!
//! A client certificate is requested, not required, at the handshake (as Heapster's `tls.RequestClientCert`): a
//! probe of `/healthz` or a client with a bearer token has none. One that is presented must chain to
//! `--tls_client_ca`, or the handshake fails; which requests it may make is decided per request (see
//! [`super::auth`]).

use rustls::pki_types::UnixTime;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Reads a PEM file, naming the flag it came from in the error.
fn read(flag: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{flag}={}: cannot read it: {e}", path.display()))
}

/// Every certificate of a PEM file; an error unless there is at least one.
fn certificates(flag: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(flag, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{flag}={}: not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{flag}={}: no certificate in the file (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The CA certificates of a PEM file, added to `roots`.
fn add_roots(flag: &str, ca: &Path, roots: &mut rustls::RootCertStore) -> Result<(), String> {
    for c in certificates(flag, ca)? {
        roots.add(c).map_err(|e| format!("{flag}={}: not a usable CA certificate: {e}", ca.display()))?;
    }
    Ok(())
}

fn verifier(flag: &str, ca: &Path, roots: rustls::RootCertStore) -> Result<Arc<dyn ClientCertVerifier>, String> {
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), ring())
        .allow_unauthenticated()
        .build()
        .map_err(|e| format!("{flag}={}: {e}", ca.display()))
}

/// Which of the two client CAs a connection's certificate chains to: `--tls_client_ca` (its CN is a user) or
/// `--requestheader_client_ca_file` (a front proxy, trusted for the user headers). The handshake accepts either;
/// this tells them apart afterwards.
#[derive(Debug, Default)]
pub struct ClientCas {
    client: Option<Arc<dyn ClientCertVerifier>>,
    front_proxy: Option<Arc<dyn ClientCertVerifier>>,
}

impl ClientCas {
    /// Whether `chain` (end entity first) is signed by `--tls_client_ca`, and by `--requestheader_client_ca_file`.
    pub fn signed_by(&self, chain: &[CertificateDer<'_>]) -> (bool, bool) {
        let Some((end_entity, intermediates)) = chain.split_first() else { return (false, false) };
        let verifies = |v: &Option<Arc<dyn ClientCertVerifier>>| {
            v.as_ref().is_some_and(|v| v.verify_client_cert(end_entity, intermediates, UnixTime::now()).is_ok())
        };
        (verifies(&self.client), verifies(&self.front_proxy))
    }
}

/// The server's TLS configuration from the flags' files: HTTP/1.1 only (hyper serves http1 here).
/// The serving certificate is re-read when `--tls_cert` or `--tls_key` change (see [`ReloadingCert`]).
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    front_proxy_ca: Option<&Path>,
) -> Result<(rustls::ServerConfig, ClientCas), String> {
    let resolver = ReloadingCert::load(cert, key)?;
    let builder = rustls::ServerConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let mut cas = ClientCas::default();
    let mut either = rustls::RootCertStore::empty();
    if let Some(ca) = client_ca {
        let mut roots = rustls::RootCertStore::empty();
        add_roots("--tls_client_ca", ca, &mut roots)?;
        add_roots("--tls_client_ca", ca, &mut either)?;
        cas.client = Some(verifier("--tls_client_ca", ca, roots)?);
    }
    if let Some(ca) = front_proxy_ca {
        let flag = "--requestheader_client_ca_file";
        let mut roots = rustls::RootCertStore::empty();
        add_roots(flag, ca, &mut roots)?;
        add_roots(flag, ca, &mut either)?;
        cas.front_proxy = Some(verifier(flag, ca, roots)?);
    }
    let builder = match client_ca.or(front_proxy_ca) {
        None => builder.with_no_client_auth(),
        Some(ca) => builder.with_client_cert_verifier(verifier("--tls_client_ca", ca, either)?),
    };
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((config, cas))
}

/// `--tls_cert` and `--tls_key` as rustls serves them; errors name the flag.
fn certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain = certificates("--tls_cert", cert)?;
    let key_pem = read("--tls_key", key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("--tls_key={}: not a PEM private key: {e}", key.display()))?;
    CertifiedKey::from_der(chain, key_der, &ring()).map_err(|e| {
        format!("--tls_cert={} and --tls_key={}: {e} (is the key the certificate's?)", cert.display(), key.display())
    })
}

/// The two files' inodes, change times and sizes (following symlinks, as Kubernetes swaps a Secret volume's
/// files by replacing a symlink): any difference means they were rewritten.
type Stamp = Option<[(u64, SystemTime, u64); 2]>;

fn stamp(cert: &Path, key: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let one = |p: &Path| std::fs::metadata(p).and_then(|m| Ok((m.ino(), m.modified()?, m.len()))).ok();
    Some([one(cert)?, one(key)?])
}

/// The serving certificate, re-read when its files change, so that a certificate renewed in place (cert-manager
/// updating the Secret, an operator replacing the files) is served without a restart. Checked at each handshake:
/// two `stat`s, little next to the handshake's own cost. A pair that does not load (the key written before the
/// certificate, say) is logged and the previous certificate kept until the files change again.
#[derive(Debug)]
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    current: Mutex<(Stamp, Arc<CertifiedKey>)>,
}

impl ReloadingCert {
    /// Loads the files once; at start-up a bad pair is an error.
    pub fn load(cert: &Path, key: &Path) -> Result<ReloadingCert, String> {
        let stamp = stamp(cert, key);
        let loaded = Arc::new(certified_key(cert, key)?);
        Ok(ReloadingCert { cert: cert.into(), key: key.into(), current: Mutex::new((stamp, loaded)) })
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let now = stamp(&self.cert, &self.key);
        if now.is_some() && now != current.0 {
            current.0 = now;
            match certified_key(&self.cert, &self.key) {
                Ok(k) => {
                    tracing::info!("serving the renewed certificate of --tls_cert={}", self.cert.display());
                    current.1 = Arc::new(k);
                }
                Err(e) => tracing::warn!("{e}; still serving the previous certificate"),
            }
        }
        Some(current.1.clone())
    }
}

/// The user a verified client certificate names: its subject's common name (as Kubernetes' x509 authenticator).
/// `None` when the certificate has no CN.
pub fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_with_cn(cn: Option<&str>) -> CertificateDer<'static> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        }
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "system:masters");
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn common_name_of_a_certificate() {
        assert_eq!(common_name(&cert_with_cn(Some("front-proxy-client"))).as_deref(), Some("front-proxy-client"));
        assert_eq!(common_name(&cert_with_cn(None)), None);
        assert_eq!(common_name(&CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])), None, "garbage is no user");
    }

    #[test]
    fn bad_files_name_the_flag() {
        let dir = std::env::temp_dir().join(format!("heapster-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not pem at all").unwrap();
        let missing = dir.join("missing.pem");
        let e = server_config(&missing, &junk, None, None).unwrap_err();
        assert!(e.starts_with("--tls_cert=") && e.contains("cannot read it"), "{e}");
        let e = server_config(&junk, &junk, None, None).unwrap_err();
        assert!(e.starts_with("--tls_cert=") && e.contains("no certificate"), "{e}");
        let pki = heapster_sim::tls::TestPki::new("unit");
        let (cert, key) = pki.server_cert(&[]);
        std::fs::write(dir.join("c.pem"), &cert).unwrap();
        std::fs::write(dir.join("k.pem"), &key).unwrap();
        let e = server_config(&dir.join("c.pem"), &junk, None, None).unwrap_err();
        assert!(e.starts_with("--tls_key=") && e.contains("not a PEM private key"), "{e}");
        let (_, other_key) = pki.server_cert(&[]);
        std::fs::write(dir.join("other.pem"), &other_key).unwrap();
        let e = server_config(&dir.join("c.pem"), &dir.join("other.pem"), None, None).unwrap_err();
        assert!(e.contains("is the key the certificate's?"), "{e}");
        let e = server_config(&dir.join("c.pem"), &dir.join("k.pem"), Some(&junk), None).unwrap_err();
        assert!(e.starts_with("--tls_client_ca="), "{e}");
        std::fs::write(dir.join("ca.pem"), &pki.ca_pem).unwrap();
        server_config(&dir.join("c.pem"), &dir.join("k.pem"), Some(&dir.join("ca.pem")), None).unwrap();
        let e = server_config(&dir.join("c.pem"), &dir.join("k.pem"), None, Some(&junk)).unwrap_err();
        assert!(e.starts_with("--requestheader_client_ca_file="), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
