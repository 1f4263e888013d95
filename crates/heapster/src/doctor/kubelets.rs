//! A sample of kubelets, at the address heapster would scrape
//! ([`heapster_sources::kubernetes::KubernetesOptions::kubelet_endpoint`]): the port
//! reachable, and over https the serving certificate naming that address in its SANs (metrics-server's most
//! reported problem: `x509: cannot validate certificate for 10.0.0.3 because it doesn't contain any IP SANs`) and
//! signed by the CA heapster trusts. The handshake itself takes any certificate, to read it and say what is wrong.

use super::Report;
use heapster_sources::kubelet::KubeletTls;
use heapster_sources::kubernetes::{Cluster, KubeletEndpoint};
use k8s_openapi::api::core::v1::{Node, NodeAddress};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Kubelets checked: enough to see a pattern, few enough to stay quick on a large cluster.
const SAMPLE: usize = 5;

/// Deadline of one connection and handshake.
const TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn check(cluster: &Cluster, report: &mut Report) {
    let api: kube::Api<Node> = kube::Api::all(cluster.client.clone());
    let nodes =
        match tokio::time::timeout(Duration::from_secs(10), api.list(&kube::api::ListParams::default().limit(500)))
            .await
        {
            Ok(Ok(list)) => list.items,
            Ok(Err(e)) => {
                report.skip("kubelets", &format!("cannot list nodes: {e}"));
                return;
            }
            Err(_) => {
                report.skip("kubelets", "listing nodes took more than 10s");
                return;
            }
        };
    let ready: Vec<&Node> = nodes.iter().filter(|n| is_ready(n)).collect();
    if ready.is_empty() {
        report.skip("kubelets", &format!("no Ready node among {} listed", nodes.len()));
        return;
    }
    let options = &cluster.options;
    if !options.kubelet_https {
        report.skip(
            "kubelet TLS",
            "kubeletHttps=false: kubelets are read over plain http (their read-only port, off by default since \
             Kubernetes 1.16; kubeletHttps=true reads the https port 10250)",
        );
    }
    for node in ready.into_iter().take(SAMPLE) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let addresses = node.status.as_ref().and_then(|s| s.addresses.clone()).unwrap_or_default();
        let Some(endpoint) = options.kubelet_endpoint(&addresses) else {
            let types: Vec<&str> = addresses.iter().map(|a| a.type_.as_str()).collect();
            report.fail(
                &format!("kubelet address {name}"),
                &format!(
                    "the node has none of the address types kubeletPreferredAddressTypes= lists (it has {types:?})"
                ),
                &format!(
                    "add one of them to kubeletPreferredAddressTypes= in --source=kubernetes:...?, e.g. {}",
                    types.join(",")
                ),
            );
            continue;
        };
        let at = format!("{name} ({})", endpoint.authority());
        let tcp = match tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(endpoint.authority())).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                port_unreachable(report, &at, &endpoint, &e.to_string());
                continue;
            }
            Err(_) => {
                port_unreachable(report, &at, &endpoint, &format!("no answer within {TIMEOUT:?}"));
                continue;
            }
        };
        report.ok(&format!("kubelet port {at}"), "");
        if options.kubelet_https {
            tls(cluster, tcp, &endpoint, &addresses, &at, report).await;
        }
    }
}

fn is_ready(node: &Node) -> bool {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.into_iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True")
}

fn port_unreachable(report: &mut Report, at: &str, endpoint: &KubeletEndpoint, error: &str) {
    let scheme = if endpoint.https { "https" } else { "http" };
    report.fail(
        &format!("kubelet port {at}"),
        &format!("{scheme} port {} not reachable: {error}", endpoint.port),
        &format!(
            "let heapster's pod reach the nodes on TCP {} (firewall, security group, NetworkPolicy egress), or set \
             kubeletPort= to the port the kubelets serve (kubeletHttps=true&kubeletPort=10250 where the read-only \
             port 10255 is off)",
            endpoint.port
        ),
    );
}

/// The handshake with any certificate, then the certificate judged as the scrape would judge it.
async fn tls(
    cluster: &Cluster,
    tcp: tokio::net::TcpStream,
    endpoint: &KubeletEndpoint,
    addresses: &[NodeAddress],
    at: &str,
    report: &mut Report,
) {
    let check = format!("kubelet TLS {at}");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring's protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(heapster_net::AnyCertificate(provider.clone())))
        .with_no_client_auth();
    let Ok(server_name) = ServerName::try_from(endpoint.host.clone()) else {
        report.skip(&check, &format!("{:?} is neither an IP address nor a DNS name", endpoint.host));
        return;
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let stream = match tokio::time::timeout(TIMEOUT, connector.connect(server_name.clone(), tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            report.fail(
                &check,
                &format!("no TLS handshake: {e}"),
                "the port does not speak https: set kubeletHttps=false for the read-only port, or kubeletPort= to \
                 the kubelets' https port (10250)",
            );
            return;
        }
        Err(_) => {
            report.fail(&check, &format!("no TLS handshake within {TIMEOUT:?}"), "check the kubelet on that node");
            return;
        }
    };
    let chain: Vec<CertificateDer<'static>> = stream
        .get_ref()
        .1
        .peer_certificates()
        .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
        .unwrap_or_default();
    let Some(leaf) = chain.first() else {
        report.fail(&check, "the kubelet sent no certificate", "check the kubelet's --tls-cert-file");
        return;
    };
    let names = match sans(leaf) {
        Ok(n) => n,
        Err(e) => {
            report.fail(
                &check,
                &format!("the kubelet's certificate does not parse: {e}"),
                "renew the kubelet's serving certificate",
            );
            return;
        }
    };
    let insecure = matches!(cluster.kubelet.tls, KubeletTls::Insecure);
    if !names.iter().any(|n| n.matches(&endpoint.host)) {
        let listed = names.iter().map(San::to_string).collect::<Vec<_>>().join(", ");
        let listed = if listed.is_empty() { "no SAN at all".to_owned() } else { listed };
        if insecure {
            report.ok(
                &check,
                &format!(
                    "kubeletInsecureTLS=true: not verified (the certificate names {listed}, not {})",
                    endpoint.host
                ),
            );
            return;
        }
        report.fail(
            &check,
            &format!(
                "the kubelet's certificate names {listed}, not {} that heapster scrapes (x509: certificate is not \
                 valid for {})",
                endpoint.host, endpoint.host
            ),
            &san_fix(addresses, &names),
        );
        return;
    }
    let verdict = match &cluster.kubelet.tls {
        KubeletTls::Insecure => {
            report.ok(&check, "kubeletInsecureTLS=true: the certificate is not verified");
            return;
        }
        KubeletTls::SystemRoots => {
            report.ok(&check, &format!("the certificate names {}; signer not checked (no cluster CA)", endpoint.host));
            return;
        }
        KubeletTls::Roots(ders) => verify(ders, &chain, &server_name, provider),
    };
    match verdict {
        Ok(()) => report
            .ok(&check, &format!("the certificate names {} and is signed by the CA heapster trusts", endpoint.host)),
        Err(e) => {
            let fix = match &e {
                rustls::Error::InvalidCertificate(
                    rustls::CertificateError::Expired
                    | rustls::CertificateError::ExpiredContext { .. }
                    | rustls::CertificateError::NotValidYet
                    | rustls::CertificateError::NotValidYetContext { .. },
                ) => "renew the kubelet's serving certificate (rotateCertificates / serverTLSBootstrap in the kubelet \
                      configuration), and check both clocks"
                    .to_owned(),
                _ => "give kubeletCAFile= the CA that signed the kubelets' serving certificates (self-signed kubelet \
                      certificates: enable serverTLSBootstrap: true and approve the kubelet-serving CSRs, or \
                      kubeletInsecureTLS=true) in --source=kubernetes:..."
                    .to_owned(),
            };
            report.fail(&check, &heapster_net::describe_tls(&e, "kubeletCAFile=", "kubeletInsecureTLS=true"), &fix);
        }
    }
}

/// The chain checked against `roots` for `server_name`, as the scrape's client would check it.
fn verify(
    roots: &[Vec<u8>],
    chain: &[CertificateDer<'static>],
    server_name: &ServerName<'static>,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<(), rustls::Error> {
    let mut store = rustls::RootCertStore::empty();
    store.add_parsable_certificates(roots.iter().map(|d| CertificateDer::from(d.clone())));
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
    use rustls::client::danger::ServerCertVerifier;
    verifier.verify_server_cert(&chain[0], &chain[1..], server_name, &[], UnixTime::now()).map(|_| ())
}

/// A subject alternative name of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
enum San {
    Dns(String),
    Ip(IpAddr),
}

impl San {
    /// Whether a TLS client connecting to `host` accepts this name for it (an IP only by an IP SAN, a name by
    /// its DNS SAN, `*.` covering one label).
    fn matches(&self, host: &str) -> bool {
        match (self, host.parse::<IpAddr>()) {
            (San::Ip(ip), Ok(h)) => *ip == h,
            (San::Dns(name), Err(_)) => {
                let (name, host) = (name.to_ascii_lowercase(), host.to_ascii_lowercase());
                match name.strip_prefix("*.") {
                    Some(suffix) => host.split_once('.').is_some_and(|(_, rest)| rest == suffix),
                    None => name == host,
                }
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for San {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            San::Dns(n) => write!(f, "DNS:{n}"),
            San::Ip(ip) => write!(f, "IP:{ip}"),
        }
    }
}

fn sans(der: &CertificateDer<'_>) -> Result<Vec<San>, String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let Some(ext) = cert.subject_alternative_name().map_err(|e| e.to_string())? else {
        return Ok(Vec::new());
    };
    Ok(ext
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(San::Dns(d.to_string())),
            GeneralName::IPAddress(b) => match b.len() {
                4 => Some(San::Ip(IpAddr::from(<[u8; 4]>::try_from(*b).ok()?))),
                16 => Some(San::Ip(IpAddr::from(<[u8; 16]>::try_from(*b).ok()?))),
                _ => None,
            },
            _ => None,
        })
        .collect())
}

/// The fix for a certificate without the scraped address: another address type of the node that the
/// certificate does name, if there is one; else new certificates, or not verifying.
fn san_fix(addresses: &[NodeAddress], names: &[San]) -> String {
    let named = addresses.iter().find(|a| names.iter().any(|n| n.matches(&a.address)));
    let certificates = "have the kubelets serve certificates that name their addresses (serverTLSBootstrap: true \
                        in the kubelet configuration, then approve the kubelet-serving CSRs)";
    match named {
        Some(a) => format!(
            "scrape the {} the certificate names: kubeletPreferredAddressTypes={} in --source=kubernetes:...; or {certificates}; \
             or accept any kubelet certificate with kubeletInsecureTLS=true",
            a.type_, a.type_
        ),
        None => format!(
            "{certificates}; or accept any kubelet certificate with kubeletInsecureTLS=true in --source=kubernetes:..."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As rustls and Go's crypto/x509 match: an IP only by an IP SAN, a name by its DNS SAN, `*.` one label.
    #[test]
    fn sans_match_as_tls_clients_match_them() {
        let ip = San::Ip("10.0.0.3".parse().unwrap());
        assert!(ip.matches("10.0.0.3") && !ip.matches("10.0.0.4"));
        assert!(!San::Dns("10.0.0.3".into()).matches("10.0.0.3"), "an IP in a DNS SAN does not count");
        let wild = San::Dns("*.nodes.example".into());
        assert!(
            wild.matches("n1.nodes.example") && !wild.matches("a.n1.nodes.example") && !wild.matches("nodes.example")
        );
        assert!(San::Dns("Node-1".into()).matches("node-1"));
        assert_eq!(San::Ip("::1".parse().unwrap()).to_string(), "IP:::1");
    }

    /// The fix names the node's address type that the certificate does carry, when it has one.
    #[test]
    fn the_san_fix_points_at_an_address_type_the_certificate_names() {
        let addresses = [
            NodeAddress { type_: "InternalIP".into(), address: "10.0.0.3".into() },
            NodeAddress { type_: "Hostname".into(), address: "node-1".into() },
        ];
        let fix = san_fix(&addresses, &[San::Dns("node-1".into())]);
        assert!(fix.starts_with("scrape the Hostname the certificate names: kubeletPreferredAddressTypes=Hostname"));
        let fix = san_fix(&addresses, &[San::Dns("other".into())]);
        assert!(fix.starts_with("have the kubelets serve certificates that name their addresses"), "{fix}");
    }
}
