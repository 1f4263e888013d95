//! The options of `--source=kubernetes.summary_api:URL?...`, as Heapster and metrics-server spelled them.

use heapster_model::SpecUri;
use k8s_openapi::api::core::v1::Node;
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

/// Parsed and checked once at start-up.
#[derive(Debug, Clone)]
pub struct KubernetesOptions {
    pub api_server: Option<String>,
    pub in_cluster_config: bool,
    pub kubelet_port: u16,
    pub kubelet_https: bool,
    pub kubelet_timeout: Duration,
    pub kubelet_token: Option<String>,
    pub host_id_annotation: Option<String>,
    pub preferred_address_types: Vec<AddressType>,
}

fn flag(uri: &SpecUri, name: &str, v: &str) -> Result<bool, String> {
    v.parse().map_err(|_| format!("{}: option {name}={v:?} must be true or false", uri.key))
}

impl KubernetesOptions {
    pub fn parse(uri: &SpecUri) -> Result<Self, String> {
        let mut o = KubernetesOptions {
            api_server: (!uri.target.is_empty()).then(|| uri.target.clone()),
            in_cluster_config: true,
            kubelet_port: 10255,
            kubelet_https: false,
            kubelet_timeout: Duration::from_secs(10),
            kubelet_token: None,
            host_id_annotation: None,
            // metrics-server's default order.
            preferred_address_types: vec![
                AddressType::Hostname,
                AddressType::InternalDns,
                AddressType::InternalIp,
                AddressType::ExternalDns,
                AddressType::ExternalIp,
            ],
        };
        let mut port_given = false;
        for (k, v) in &uri.options {
            match k.as_str() {
                "inClusterConfig" => o.in_cluster_config = flag(uri, k, v)?,
                "kubeletPort" => {
                    o.kubelet_port = v.parse().map_err(|_| format!("{}: kubeletPort={v:?} is not a port", uri.key))?;
                    port_given = true;
                }
                "kubeletHttps" => o.kubelet_https = flag(uri, k, v)?,
                "kubeletTimeout" => {
                    o.kubelet_timeout = humantime::parse_duration(v)
                        .map_err(|_| format!("{}: kubeletTimeout={v:?} is not a duration like 10s", uri.key))?
                }
                "host_id_annotation" => o.host_id_annotation = Some(v.clone()),
                "kubeletPreferredAddressTypes" => {
                    o.preferred_address_types = v
                        .split(',')
                        .map(|t| {
                            AddressType::parse(t.trim()).ok_or_else(|| {
                                format!("{}: unknown address type {t:?} (Hostname, InternalDNS, InternalIP, ExternalDNS, ExternalIP)", uri.key)
                            })
                        })
                        .collect::<Result<_, _>>()?
                }
                "insecure" | "auth" | "useServiceAccount" | "kubeletCA" | "kubeletInsecureTLS" => {
                    return Err(format!(
                        "{}: option {k} needs TLS or kubeconfig support, which this build does not have yet",
                        uri.key
                    ));
                }
                _ => return Err(format!("{}: unknown option {k:?}", uri.key)),
            }
        }
        if o.kubelet_https {
            return Err(format!(
                "{}: kubeletHttps=true needs TLS support, which this build does not have yet",
                uri.key
            ));
        }
        if !port_given && o.kubelet_https {
            o.kubelet_port = 10250;
        }
        Ok(o)
    }

    /// The client configuration for the API server.
    pub async fn kube_config(&self) -> Result<kube::Config, String> {
        if self.in_cluster_config {
            return Err("inClusterConfig=true needs TLS support, which this build does not have yet: \
                        give the API server's http URL and inClusterConfig=false"
                .into());
        }
        let url =
            self.api_server.as_deref().ok_or("no API server URL given (kubernetes.summary_api:http://HOST:PORT)")?;
        if !url.starts_with("http://") {
            return Err(format!("{url}: only http:// API servers are supported by this build so far"));
        }
        let uri = url.parse().map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        Ok(kube::Config::new(uri))
    }

    /// The node's address of the most preferred type it has.
    pub fn address_of(&self, node: &Node) -> Option<String> {
        let addresses = node.status.as_ref()?.addresses.as_ref()?;
        self.preferred_address_types
            .iter()
            .find_map(|t| addresses.iter().find(|a| a.type_ == t.as_str()).map(|a| a.address.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<KubernetesOptions, String> {
        KubernetesOptions::parse(&s.parse().unwrap())
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
        assert!(parse("kubernetes:?bogus=1").unwrap_err().contains("unknown option"));
        assert!(parse("kubernetes:?kubeletPreferredAddressTypes=Nope").unwrap_err().contains("unknown address type"));
        assert!(parse("kubernetes:?kubeletHttps=true").unwrap_err().contains("TLS"));
    }
}
