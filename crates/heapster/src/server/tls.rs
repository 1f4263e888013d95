//! The https side of heapster's server: `--tls_cert`, `--tls_key`, `--tls_client_ca` and
//! `--requestheader_client_ca_file` as a rustls configuration, and the client certificate's user read once per
//! connection.
//!
//! Every one of these files is read again when it changes ([`ReloadingCert`], [`ClientCas`]).
//!
//! A client certificate is requested, not required, at the handshake (as Heapster's `tls.RequestClientCert`): a
//! probe of `/healthz` or a client with a bearer token has none. One that is presented must chain to
//! `--tls_client_ca` or `--requestheader_client_ca_file`, or the handshake fails; which requests it may make is decided per request (see
//! [`super::auth`]).

use super::auth::Identity;
use super::reload::Reloading;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::UnixTime;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

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

/// A verifier of client certificates signed by the CAs of `ca`; one without a certificate is let through to be
/// decided per request.
fn verifier(flag: &'static str, ca: &Path) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let mut roots = rustls::RootCertStore::empty();
    add_roots(flag, ca, &mut roots)?;
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), ring())
        .allow_unauthenticated()
        .build()
        .map_err(|e| format!("{flag}={}: {e}", ca.display()))
}

/// A verifier of the CAs of `ca`, rebuilt when the file changes.
fn reloading_verifier(flag: &'static str, ca: &Path, what: &'static str) -> Result<ReloadingVerifier, String> {
    let path = ca.to_path_buf();
    Reloading::load(&[ca], what, move || verifier(flag, &path))
}

type ReloadingVerifier = Reloading<Arc<dyn ClientCertVerifier>>;

/// The two client CAs: `--tls_client_ca` (a certificate's CN is a user) and `--requestheader_client_ca_file` (a
/// front proxy, trusted for the user headers), each read again when its file changes so that a rotated CA is
/// trusted, and the old one no longer, without a restart. The handshake accepts a certificate of either; which
/// one signed it is told apart afterwards ([`ClientCas::signed_by`]).
///
/// No CA names are sent to the client at the handshake: rustls lends them from the verifier, which a swapped set of
/// roots cannot do. A client then sends the certificate it has (RFC 8446 4.2.4; Go's and rustls' clients do),
/// which is what kube-apiserver's aggregator and kubectl present anyway.
#[derive(Debug)]
pub struct ClientCas {
    client: Option<ReloadingVerifier>,
    front_proxy: Option<ReloadingVerifier>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ClientCas {
    /// The CAs of `--tls_client_ca` and `--requestheader_client_ca_file`, when given; errors name the flag.
    fn load(client_ca: Option<&Path>, front_proxy_ca: Option<&Path>) -> Result<ClientCas, String> {
        Ok(ClientCas {
            client: client_ca.map(|ca| reloading_verifier("--tls_client_ca", ca, "client CAs")).transpose()?,
            front_proxy: front_proxy_ca
                .map(|ca| reloading_verifier("--requestheader_client_ca_file", ca, "front-proxy CAs"))
                .transpose()?,
            provider: ring(),
        })
    }

    fn verifiers(&self) -> impl Iterator<Item = Arc<dyn ClientCertVerifier>> + '_ {
        self.client.iter().chain(&self.front_proxy).map(|v| v.get().as_ref().clone())
    }

    /// Whether `chain` (end entity first) is signed by `--tls_client_ca`, and by `--requestheader_client_ca_file`.
    pub fn signed_by(&self, chain: &[CertificateDer<'_>]) -> (bool, bool) {
        let Some((end_entity, intermediates)) = chain.split_first() else { return (false, false) };
        let verifies = |v: &Option<ReloadingVerifier>| {
            v.as_ref().is_some_and(|v| v.get().verify_client_cert(end_entity, intermediates, UnixTime::now()).is_ok())
        };
        (verifies(&self.client), verifies(&self.front_proxy))
    }
}

impl ClientCertVerifier for ClientCas {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let mut first_error = None;
        for v in self.verifiers() {
            match v.verify_client_cert(end_entity, intermediates, now) {
                Ok(ok) => return Ok(ok),
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        Err(first_error.unwrap_or(rustls::Error::General("no client CA is configured".into())))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The server's TLS configuration from the flags' files: HTTP/1.1 only (hyper serves http1 here). Every file is
/// read again when it changes (see [`super::reload`]).
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    front_proxy_ca: Option<&Path>,
) -> Result<(rustls::ServerConfig, Arc<ClientCas>), String> {
    let resolver = ReloadingCert::load(cert, key)?;
    let builder = rustls::ServerConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let cas = Arc::new(ClientCas::load(client_ca, front_proxy_ca)?);
    let builder = match client_ca.or(front_proxy_ca) {
        None => builder.with_no_client_auth(),
        Some(_) => builder.with_client_cert_verifier(cas.clone()),
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

/// The serving certificate, re-read when its files change, so that a certificate renewed in place (cert-manager
/// updating the Secret, an operator replacing the files) is served without a restart. Checked at each handshake.
#[derive(Debug)]
pub struct ReloadingCert(Reloading<CertifiedKey>);

impl ReloadingCert {
    /// Loads the files once; at start-up a bad pair is an error.
    pub fn load(cert: &Path, key: &Path) -> Result<ReloadingCert, String> {
        let (c, k) = (cert.to_path_buf(), key.to_path_buf());
        Ok(ReloadingCert(Reloading::load(&[cert, key], "serving certificate", move || certified_key(&c, &k))?))
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.get())
    }
}

/// The user a verified client certificate names, as Kubernetes' x509 authenticator reads it: the subject's common
/// name is the user and each organization (O) a group, so that a certificate for `O=system:masters` or for a group
/// an RBAC binding names is authorized as the API server would. `None` when the certificate has no CN.
pub fn certificate_user(cert: &CertificateDer<'_>) -> Option<Identity> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let subject = parsed.subject();
    let name = subject.iter_common_name().next()?.as_str().ok().filter(|cn| !cn.is_empty())?.to_string();
    let groups = subject.iter_organization().filter_map(|o| o.as_str().ok()).map(str::to_string).collect();
    Some(Identity { name, groups })
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
    fn user_and_groups_of_a_certificate() {
        let user = certificate_user(&cert_with_cn(Some("front-proxy-client"))).unwrap();
        assert_eq!((user.name.as_str(), user.groups), ("front-proxy-client", vec!["system:masters".to_string()]));
        assert_eq!(certificate_user(&cert_with_cn(None)), None);
        assert_eq!(certificate_user(&cert_with_cn(Some(""))), None, "an empty CN is no user");
        let garbage = CertificateDer::from(vec![0x30, 0x03, 1, 2, 3]);
        assert_eq!(certificate_user(&garbage), None, "garbage is no user");
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
