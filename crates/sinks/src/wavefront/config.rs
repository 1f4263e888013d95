//! The options of `--sink=wavefront:HOST:2878?clusterName=&prefix=&includeLabels=&includeContainers=&testMode=`,
//! read once at start-up so that a typo stops heapster with one line naming the option.

use crate::ConfigError;
use crate::util::transport::Endpoint;
use heapster_model::{OptionSpec, Options, SpecUri};
use std::time::Duration;

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("clusterName", "k8s-cluster", "the cluster tag of every point, and the source of cluster metrics"),
    OptionSpec::new("prefix", "heapster.", "what every metric name starts with"),
    OptionSpec::new("includeLabels", "false", "pod labels as point tags label.KEY=VALUE"),
    OptionSpec::new("includeContainers", "true", "container metrics too (false: pods and above)"),
    OptionSpec::new("testMode", "false", "log the lines instead of sending them"),
    OptionSpec::new("timeout", "10s", "deadline of one write, connecting included"),
];

#[derive(Debug, Clone, PartialEq)]
pub struct WavefrontConfig {
    pub endpoint: Endpoint,
    pub cluster_name: String,
    pub prefix: String,
    pub include_labels: bool,
    pub include_containers: bool,
    pub test_mode: bool,
    pub timeout: Duration,
}

impl WavefrontConfig {
    pub fn from_uri(uri: &SpecUri) -> Result<Self, ConfigError> {
        Self::from_options(&Options::new("--sink", uri, OPTIONS)?)
    }

    pub fn from_options(o: &Options) -> Result<Self, ConfigError> {
        let target = o.uri().target.as_str();
        let (host, port) = match target.rsplit_once(':') {
            _ if target.is_empty() => return Err(o.error("no proxy address: expected wavefront:HOST:2878")),
            Some((h, p)) if !h.is_empty() && !h.contains('/') => {
                let port = p.parse::<u16>().map_err(|_| o.error(format!("{p:?} is not a port: expected HOST:2878")))?;
                (h, port)
            }
            _ => return Err(o.error(format!("{target:?}: expected HOST:PORT, e.g. wavefront-proxy:2878"))),
        };
        let cluster_name = o.string("clusterName", "k8s-cluster");
        if cluster_name.is_empty() {
            return Err(o.error("clusterName= is empty: it is the source of cluster metrics, which cannot be empty"));
        }
        Ok(WavefrontConfig {
            endpoint: Endpoint::new(host, port),
            cluster_name,
            prefix: o.string("prefix", "heapster."),
            include_labels: o.bool("includeLabels", false)?,
            include_containers: o.bool("includeContainers", true)?,
            test_mode: o.bool("testMode", false)?,
            timeout: o.duration("timeout", Duration::from_secs(10))?,
        })
    }

    pub fn name(&self) -> String {
        format!("wavefront:{}?clusterName={}", self.endpoint, self.cluster_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<WavefrontConfig, ConfigError> {
        WavefrontConfig::from_uri(&s.parse().unwrap())
    }

    #[test]
    fn heapster_defaults_and_every_option() {
        let c = parse("wavefront:proxy:2878").unwrap();
        assert_eq!(
            (c.endpoint.to_string(), c.cluster_name.as_str(), c.prefix.as_str()),
            ("proxy:2878".into(), "k8s-cluster", "heapster.")
        );
        assert!(!c.include_labels && c.include_containers && !c.test_mode);
        let c = parse("wavefront:10.0.0.1:2879?clusterName=prod&prefix=k8s.&includeLabels=true&includeContainers=false&testMode=1").unwrap();
        assert_eq!(
            (c.endpoint.to_string(), c.cluster_name.as_str(), c.prefix.as_str()),
            ("10.0.0.1:2879".into(), "prod", "k8s.")
        );
        assert!(c.include_labels && !c.include_containers && c.test_mode);
        assert_eq!(c.name(), "wavefront:10.0.0.1:2879?clusterName=prod");
    }

    #[test]
    fn bad_options_are_one_line_naming_them() {
        for (uri, says) in [
            ("wavefront:proxy:2878?cluster=a", "unknown wavefront option \"cluster\""),
            ("wavefront:proxy:2878?includeLabels=yes", "includeLabels=\"yes\": expected true or false"),
            ("wavefront:proxy:2878?includeContainers=2", "includeContainers=\"2\""),
            ("wavefront:proxy:2878?testMode=on", "testMode=\"on\""),
            ("wavefront:proxy:2878?clusterName=", "clusterName= is empty"),
            ("wavefront:proxy", "expected HOST:PORT"),
            ("wavefront:proxy:x", "\"x\" is not a port"),
            ("wavefront", "no proxy address"),
        ] {
            let e = parse(uri).unwrap_err().to_string();
            assert!(e.contains(says), "{uri}: {e}");
            assert!(e.starts_with("--sink=wavefront"), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
