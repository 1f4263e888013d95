//! The options of `--source=kubernetes.summary_api:URL?...`, as Heapster and metrics-server spelled them.

use crate::kubelet::client::read_token_file;
use crate::kubelet::{ClientConfig, KubeletTls};
use heapster_model::SpecUri;
use heapster_model::options::{ConfigError, OptionSpec, Options};
use k8s_openapi::api::core::v1::NodeAddress;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A node address type, in the order a user prefers them (`kubeletPreferredAddressTypes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressType {
    Hostname,
    InternalDns,
    InternalIp,
    ExternalDns,
    ExternalIp,
}

impl AddressType {
    fn parse(s: &str) -> Option<AddressType> {
        Some(match s {
            "Hostname" => AddressType::Hostname,
            "InternalDNS" => AddressType::InternalDns,
            "InternalIP" => AddressType::InternalIp,
            "ExternalDNS" => AddressType::ExternalDns,
            "ExternalIP" => AddressType::ExternalIp,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            AddressType::Hostname => "Hostname",
            AddressType::InternalDns => "InternalDNS",
            AddressType::InternalIp => "InternalIP",
            AddressType::ExternalDns => "ExternalDNS",
            AddressType::ExternalIp => "ExternalIP",
        }
    }
}

/// Where a pod's service account is mounted (token, ca.crt, namespace), as client-go and kube-rs read it.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Heapster's order of node address types (`GetNodeHostnameAndIP`: the InternalIP, else the ExternalIP), then the
/// names, for nodes that have no IP address at all (Heapster skipped those).
const DEFAULT_ADDRESS_TYPES: &str = "InternalIP,ExternalIP,Hostname,InternalDNS,ExternalDNS";

/// The options of `--source=kubernetes.summary_api:...`, as `--help` lists them.
pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("inClusterConfig", "true", "reach the API server with the pod's service account"),
    OptionSpec::new("auth", "", "a kubeconfig file to connect with (implies inClusterConfig=false)"),
    OptionSpec::new("insecure", "false", "accept any API server certificate"),
    OptionSpec::new("useServiceAccount", "false", "authenticate with the pod's service account token"),
    OptionSpec::new("kubeletPort", "10255", "the kubelets' port (10250 with kubeletHttps=true)"),
    OptionSpec::new("kubeletHttps", "false", "scrape kubelets over https"),
    OptionSpec::new("kubeletTimeout", "10s", "deadline of one kubelet request"),
    OptionSpec::new("kubeletMaxBody", "16Mi", "largest Summary read from one kubelet (a 110-pod node sends ~0.6 MB)"),
    OptionSpec::new(
        "kubeletBytesInFlight",
        "64Mi",
        "bytes of Summaries held at once across all kubelets, beyond the first MiB of each",
    ),
    OptionSpec::new("kubeletCAFile", "", "PEM roots for the kubelets' certificates (default: the cluster CA)"),
    OptionSpec::new("kubeletInsecureTLS", "false", "accept any kubelet certificate"),
    OptionSpec::new("host_id_annotation", "", "a node annotation whose value becomes the host_id label"),
    OptionSpec::new("kubeletPreferredAddressTypes", DEFAULT_ADDRESS_TYPES, "which node address to scrape, first found"),
];

/// Parsed and checked once at start-up.
///
/// How the API server is reached, in order of precedence (Heapster 1.5's options, with its silent surprises
/// turned into errors):
/// 1. `auth=KUBECONFIG`: server, CA and credentials of the file's current context. Implies `inClusterConfig=false`
///    (Heapster ignored `auth=` unless `inClusterConfig=false` was also given; giving `inClusterConfig=true`
///    explicitly with `auth=` is an error here).
/// 2. `inClusterConfig=true` (the default): the pod's service account (`KUBERNETES_SERVICE_HOST`/`_PORT`, its
///    `ca.crt` and rotating `token`).
/// 3. `inClusterConfig=false` without `auth=`: the URL alone, no credentials.
///
/// Then, whichever was chosen: a URL with a host replaces the server (so `https://proxy:6443?auth=...` works);
/// `insecure=true` accepts any API server certificate; `useServiceAccount=true` authenticates with the pod's
/// service account token instead of the kubeconfig user's. Kubelets (`kubeletHttps=true`) get the same bearer token
/// and are verified against the cluster CA unless `kubeletCAFile=` or `kubeletInsecureTLS=true` says otherwise.
#[derive(Debug, Clone)]
pub struct KubernetesOptions {
    /// The URL given after `kubernetes.summary_api:`, if any.
    pub api_server: Option<String>,
    /// Use the pod's service account (Heapster's default, for heapster running in the cluster it watches).
    pub in_cluster_config: bool,
    /// A kubeconfig file to connect with (`auth=`).
    pub auth: Option<PathBuf>,
    /// Accept any API server certificate (`insecure=true`), for test clusters with self-signed certificates.
    pub insecure: bool,
    /// Authenticate with the service account token even when not in-cluster (`useServiceAccount=true`).
    pub use_service_account: bool,
    /// The kubelets' port (`kubeletPort=`): 10255 (read-only http) or, with https, 10250.
    pub kubelet_port: u16,
    /// Scrape kubelets over https (`kubeletHttps=true`), as clusters without the read-only port need.
    pub kubelet_https: bool,
    /// Deadline of one kubelet request (`kubeletTimeout=`), so one dead node cannot hold up a round.
    pub kubelet_timeout: Duration,
    /// Largest Summary read (`kubeletMaxBody=`), so that one kubelet cannot cost hundreds of MB.
    pub kubelet_max_body: usize,
    /// Bytes of Summaries held at once across all kubelets (`kubeletBytesInFlight=`).
    pub kubelet_bytes_in_flight: usize,
    /// A fixed kubelet bearer token, overriding the one derived from the API server connection.
    pub kubelet_token: Option<String>,
    /// PEM roots for kubelet serving certificates (`kubeletCAFile=`), when they are not signed by the cluster CA.
    pub kubelet_ca_file: Option<PathBuf>,
    /// Accept any kubelet certificate (`kubeletInsecureTLS=true`): kubelets' default certificates are self-signed.
    pub kubelet_insecure_tls: bool,
    /// A node annotation whose value becomes the `host_id` label (`host_id_annotation=`), as in Heapster.
    pub host_id_annotation: Option<String>,
    /// Which node address to scrape, most preferred first (`kubeletPreferredAddressTypes=`).
    pub preferred_address_types: Vec<AddressType>,
    /// Where the service account is mounted; [`SERVICE_ACCOUNT_DIR`] except in tests.
    pub service_account_dir: PathBuf,
}

/// How to reach the API server and the kubelets, resolved from the options and the files they name.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The API server connection.
    pub kube: kube::Config,
    /// The kubelet client's settings: the bearer token and trust that go with `kube`.
    pub kubelet: ClientConfig,
}

/// Every certificate in a PEM file, DER-encoded, or why there is none.
fn read_pem_certs(path: &Path, what: &str) -> Result<Vec<Vec<u8>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what} {} is not PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{what} {} holds no certificate", path.display()));
    }
    Ok(certs)
}

impl KubernetesOptions {
    /// Reads the options of a `--source=kubernetes...` value; files are read later, by [`Self::connection`].
    pub fn parse(uri: &SpecUri) -> Result<Self, ConfigError> {
        Self::from_options(&Options::new("--source", uri, OPTIONS)?)
    }

    /// As [`Self::parse`], from options already checked against [`OPTIONS`].
    pub fn from_options(opts: &Options) -> Result<Self, ConfigError> {
        let uri = opts.uri();
        // Heapster treated `auth=` (empty) as "no kubeconfig".
        let auth = opts.non_empty("auth").map(PathBuf::from);
        let kubelet_https = opts.bool("kubeletHttps", false)?;
        let preferred = opts.string("kubeletPreferredAddressTypes", DEFAULT_ADDRESS_TYPES);
        let preferred_address_types = preferred
            .split(',')
            .map(|t| {
                AddressType::parse(t.trim()).ok_or_else(|| {
                    opts.error(format!(
                        "unknown address type {t:?} (Hostname, InternalDNS, InternalIP, ExternalDNS, ExternalIP)"
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        let (kubelet_max_body, kubelet_bytes_in_flight) = crate::http::body_limits(
            opts,
            ("kubeletMaxBody", "kubeletBytesInFlight"),
            (crate::kubelet::client::DEFAULT_MAX_BODY, crate::kubelet::client::DEFAULT_BYTES_IN_FLIGHT),
        )?;
        let o = KubernetesOptions {
            // Heapster's docs and manifests write `kubernetes.summary_api:''` for "the in-cluster API server".
            api_server: (!matches!(uri.target.as_str(), "" | "''" | "\"\"")).then(|| uri.target.clone()),
            in_cluster_config: opts.bool("inClusterConfig", true)? && auth.is_none(),
            insecure: opts.bool("insecure", false)?,
            use_service_account: opts.bool("useServiceAccount", false)?,
            kubelet_port: opts.parse("kubeletPort", if kubelet_https { 10250 } else { 10255 }, "a port")?,
            kubelet_https,
            kubelet_timeout: opts.duration("kubeletTimeout", Duration::from_secs(10))?,
            kubelet_max_body,
            kubelet_bytes_in_flight,
            kubelet_token: None,
            kubelet_ca_file: opts.non_empty("kubeletCAFile").map(PathBuf::from),
            kubelet_insecure_tls: opts.bool("kubeletInsecureTLS", false)?,
            host_id_annotation: opts.get("host_id_annotation").map(str::to_owned),
            preferred_address_types,
            service_account_dir: PathBuf::from(SERVICE_ACCOUNT_DIR),
            auth,
        };
        if o.auth.is_some() && opts.bool("inClusterConfig", false)? {
            return Err(
                opts.error("auth= (a kubeconfig) and inClusterConfig=true exclude each other: drop one of them")
            );
        }
        if !o.kubelet_https && (o.kubelet_ca_file.is_some() || o.kubelet_insecure_tls) {
            return Err(opts
                .error("kubeletCAFile= and kubeletInsecureTLS= apply to https kubelets only: add kubeletHttps=true"));
        }
        if o.kubelet_ca_file.is_some() && o.kubelet_insecure_tls {
            return Err(opts.error("kubeletCAFile= and kubeletInsecureTLS=true contradict each other: keep one"));
        }
        if let Some(url) = &o.api_server
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(opts.error(format!("{url:?} is not an http:// or https:// URL")));
        }
        Ok(o)
    }

    /// Reads the kubeconfig, service account files and CA files the options name. Errors say which file and which
    /// option to change.
    pub async fn connection(&self) -> Result<Connection, String> {
        self.connection_with_env(&|k| std::env::var(k).ok()).await
    }

    /// As [`Self::connection`], with the environment given (tests).
    pub async fn connection_with_env(
        &self,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<Connection, String> {
        let url = match &self.api_server {
            Some(u) => Some(u.parse::<http::Uri>().map_err(|e| format!("{u:?} is not a URL: {e}"))?),
            None => None,
        };
        let sa = &self.service_account_dir;
        let sa_token = sa.join("token");
        let mut config = if let Some(path) = &self.auth {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("auth={}: cannot use this kubeconfig: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| format!("auth={}: cannot use this kubeconfig: {e}", path.display()))?
        } else if self.in_cluster_config {
            let not_in_pod = "not running in a pod? give inClusterConfig=false with the API server's URL, \
                              or auth=KUBECONFIG";
            let cluster_url = match &url {
                Some(u) => u.clone(),
                None => {
                    let (Some(host), Some(port)) = (env("KUBERNETES_SERVICE_HOST"), env("KUBERNETES_SERVICE_PORT"))
                    else {
                        return Err(format!(
                            "inClusterConfig=true (the default) but KUBERNETES_SERVICE_HOST/PORT are not set: {not_in_pod}"
                        ));
                    };
                    let host = if host.contains(':') { format!("[{host}]") } else { host };
                    format!("https://{host}:{port}")
                        .parse()
                        .map_err(|e| format!("KUBERNETES_SERVICE_HOST/PORT do not make a URL: {e}"))?
                }
            };
            let ca = read_pem_certs(&sa.join("ca.crt"), "the service account CA")
                .map_err(|e| format!("inClusterConfig=true (the default): {e}: {not_in_pod}"))?;
            read_token_file(&sa_token).map_err(|e| format!("inClusterConfig=true (the default): {e}: {not_in_pod}"))?;
            let mut c = kube::Config::new(cluster_url);
            c.root_cert = Some(ca);
            c.auth_info.token_file = Some(sa_token.to_string_lossy().into_owned());
            if let Ok(ns) = std::fs::read_to_string(sa.join("namespace")) {
                c.default_namespace = ns.trim().to_owned();
            }
            c
        } else {
            let Some(u) = &url else {
                return Err("no API server URL given: use kubernetes.summary_api:https://HOST:PORT, \
                            or inClusterConfig=true inside a pod, or auth=KUBECONFIG"
                    .into());
            };
            kube::Config::new(u.clone())
        };
        if let Some(u) = url {
            config.cluster_url = u;
        }
        if self.insecure {
            config.accept_invalid_certs = true;
        }
        if self.use_service_account {
            read_token_file(&sa_token).map_err(|e| format!("useServiceAccount=true: {e}"))?;
            config.auth_info = kube::config::AuthInfo {
                token_file: Some(sa_token.to_string_lossy().into_owned()),
                ..Default::default()
            };
        }
        let kubelet = self.kubelet_config(&config)?;
        Ok(Connection { kube: config, kubelet })
    }

    /// The kubelet client's settings for an API server connection: same bearer token, trust per the options.
    fn kubelet_config(&self, api: &kube::Config) -> Result<ClientConfig, String> {
        let auth = &api.auth_info;
        let mut token = self.kubelet_token.clone();
        if token.is_none() {
            token = auth.token.as_ref().map(|t| secrecy::ExposeSecret::expose_secret(t).to_owned());
        }
        let token_file = match (&token, &auth.token_file) {
            (None, Some(f)) => Some(PathBuf::from(f)),
            _ => None,
        };
        if self.kubelet_https
            && token.is_none()
            && token_file.is_none()
            && (auth.exec.is_some()
                || auth.auth_provider.is_some()
                || auth.client_certificate.is_some()
                || auth.client_certificate_data.is_some())
        {
            tracing::warn!(
                "kubelets get no credentials: only a bearer token (kubeconfig token, useServiceAccount=true or \
                 in-cluster) is passed on to them, not client certificates or exec/auth-provider plugins"
            );
        }
        let tls = if self.kubelet_insecure_tls {
            KubeletTls::Insecure
        } else if let Some(path) = &self.kubelet_ca_file {
            KubeletTls::Roots(read_pem_certs(path, "kubeletCAFile")?)
        } else if let Some(ca) = api.root_cert.as_ref().filter(|c| !c.is_empty()) {
            KubeletTls::Roots(ca.clone())
        } else {
            KubeletTls::SystemRoots
        };
        Ok(ClientConfig {
            timeout: self.kubelet_timeout,
            token,
            token_file,
            tls,
            keep_alive: true,
            // A kept connection is a descriptor per kubelet for good: beyond the budget the open-file limit allows
            // (read now, after heapster raised it to its hard limit), kubelets reconnect each round.
            max_kept: crate::kubelet::kept_connection_budget(
                rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(u64::MAX),
            ),
            max_body: self.kubelet_max_body,
            bytes_in_flight: self.kubelet_bytes_in_flight,
        })
    }

    /// The node's address of the most preferred type it has.
    pub fn address_of(&self, addresses: &[NodeAddress]) -> Option<String> {
        self.preferred_address_types
            .iter()
            .find_map(|t| addresses.iter().find(|a| a.type_ == t.as_str()).map(|a| a.address.clone()))
    }

    /// Where heapster reaches the kubelet of a node with these addresses: the address of the most preferred type,
    /// the options' port and scheme. The scrapes and `heapster doctor` both ask here, so that the doctor checks
    /// the very address a scrape would use.
    pub fn kubelet_endpoint(&self, addresses: &[NodeAddress]) -> Option<KubeletEndpoint> {
        let host = self.address_of(addresses)?;
        Some(KubeletEndpoint { host, port: self.kubelet_port, https: self.kubelet_https })
    }
}

/// A kubelet as heapster reaches it ([`KubernetesOptions::kubelet_endpoint`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletEndpoint {
    /// The node address chosen: an IP address or a DNS name.
    pub host: String,
    pub port: u16,
    pub https: bool,
}

impl KubeletEndpoint {
    /// `host:port`, an IPv6 address in brackets.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The URL of `path` (`/stats/summary`) on this kubelet.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", if self.https { "https" } else { "http" }, self.authority())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Node;

    fn addresses(n: &Node) -> &[NodeAddress] {
        n.status.as_ref().and_then(|s| s.addresses.as_deref()).unwrap_or_default()
    }

    fn parse(s: &str) -> Result<KubernetesOptions, String> {
        KubernetesOptions::parse(&s.parse().unwrap()).map_err(|e| e.to_string())
    }

    #[test]
    fn heapster_options() {
        let o = parse("kubernetes.summary_api:http://127.0.0.1:8001?inClusterConfig=false&kubeletPort=10266&kubeletPreferredAddressTypes=InternalIP,Hostname&host_id_annotation=x/id").unwrap();
        assert_eq!(o.api_server.as_deref(), Some("http://127.0.0.1:8001"));
        assert!(!o.in_cluster_config);
        assert_eq!(o.kubelet_port, 10266);
        assert_eq!(o.preferred_address_types, vec![AddressType::InternalIp, AddressType::Hostname]);
        assert_eq!(o.host_id_annotation.as_deref(), Some("x/id"));
        assert!(parse("kubernetes:?kubeletPort=x").unwrap_err().contains("kubeletPort"));
        assert!(parse("kubernetes:?bogus=1").unwrap_err().contains("unknown kubernetes option"));
        assert!(parse("kubernetes:?kubeletPreferredAddressTypes=Nope").unwrap_err().contains("unknown address type"));
        let o = parse("kubernetes:?kubeletHttps=true").unwrap();
        assert_eq!(o.kubelet_port, 10250, "https kubelets default to 10250");
        assert!(parse("kubernetes:?kubeletInsecureTLS=true").unwrap_err().contains("kubeletHttps=true"));
        let both = "kubernetes:?kubeletHttps=true&kubeletInsecureTLS=true&kubeletCAFile=/x";
        assert!(parse(both).unwrap_err().contains("contradict"));
        assert!(parse("kubernetes:?auth=/k&inClusterConfig=true").unwrap_err().contains("exclude"));
        assert!(!parse("kubernetes:?auth=/k").unwrap().in_cluster_config, "auth= implies inClusterConfig=false");
        assert!(parse("kubernetes:ftp://x").unwrap_err().contains("http"));
    }

    /// What the original's docs and manifests write, and which address it scrapes.
    #[test]
    fn heapster_spellings_and_address_order() {
        for s in ["kubernetes.summary_api:''", "kubernetes.summary_api:\"\"", "kubernetes.summary_api:", "kubernetes"] {
            let o = parse(s).unwrap();
            assert_eq!(o.api_server, None, "{s}: the in-cluster API server");
            assert!(o.in_cluster_config, "{s}");
        }
        let node: Node = serde_json::from_value(serde_json::json!({"status": {"addresses": [
            {"type": "Hostname", "address": "node-1"},
            {"type": "ExternalIP", "address": "203.0.113.7"},
            {"type": "InternalIP", "address": "10.0.0.3"},
        ]}}))
        .unwrap();
        let o = parse("kubernetes:''").unwrap();
        assert_eq!(o.address_of(addresses(&node)).as_deref(), Some("10.0.0.3"), "InternalIP first, as Heapster");
        let external: Node = serde_json::from_value(serde_json::json!({"status": {"addresses": [
            {"type": "Hostname", "address": "node-1"}, {"type": "ExternalIP", "address": "203.0.113.7"},
        ]}}))
        .unwrap();
        assert_eq!(o.address_of(addresses(&external)).as_deref(), Some("203.0.113.7"), "then ExternalIP");
        let named: Node = serde_json::from_value(
            serde_json::json!({"status": {"addresses": [{"type": "Hostname", "address": "n"}]}}),
        )
        .unwrap();
        assert_eq!(
            o.address_of(addresses(&named)).as_deref(),
            Some("n"),
            "a node with no IP: its name (Heapster skipped it)"
        );
    }
}
