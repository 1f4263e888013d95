//! The options of `--sink=graphite:tcp://HOST:2003?prefix=`, read once at start-up so that a typo stops heapster
//! with one line naming the option.

use crate::ConfigError;
use crate::util::transport::Endpoint;
use heapster_model::{OptionSpec, Options, SpecUri};
use std::time::Duration;

/// Heapster's: every path starts with it, and an empty `prefix=` means this one too.
pub const DEFAULT_PREFIX: &str = "kubernetes";
/// Carbon's plaintext port.
pub const DEFAULT_PORT: u16 = 2003;

/// The options this sink accepts; `--help` prints them, [`Options`] refuses any other.
pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("prefix", DEFAULT_PREFIX, "first component of every metric path (empty: kubernetes)"),
    OptionSpec::new("timeout", "10s", "deadline of one write, connecting included"),
];

/// How the lines travel: Heapster's client took both of carbon's plaintext listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// Everything the Graphite sink needs, with Heapster's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphiteConfig {
    pub protocol: Protocol,
    pub endpoint: Endpoint,
    pub prefix: String,
    pub timeout: Duration,
}

impl GraphiteConfig {
    pub fn from_uri(uri: &SpecUri) -> Result<Self, ConfigError> {
        Self::from_options(&Options::new("--sink", uri, OPTIONS)?)
    }

    pub fn from_options(o: &Options) -> Result<Self, ConfigError> {
        let target = o.uri().target.as_str();
        let target = if target.is_empty() { "tcp://localhost:2003" } else { target };
        let url = url::Url::parse(target).map_err(|e| {
            o.error(format!("{target:?} is not a URL ({e}): expected tcp://host:2003 or udp://host:2003"))
        })?;
        let protocol = match url.scheme() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            s => return Err(o.error(format!("{s:?}: expected tcp://host:port or udp://host:port"))),
        };
        if !matches!(url.path(), "" | "/") {
            return Err(o.error(format!("{target:?}: a Graphite address has no path ({:?})", url.path())));
        }
        let host = url.host_str().filter(|h| !h.is_empty()).unwrap_or("localhost");
        let prefix = o.non_empty("prefix").unwrap_or(DEFAULT_PREFIX).to_owned();
        if prefix.contains(char::is_whitespace) {
            return Err(o.error(format!("prefix={prefix:?}: a metric path cannot hold spaces")));
        }
        Ok(GraphiteConfig {
            protocol,
            endpoint: Endpoint::new(host, url.port().unwrap_or(DEFAULT_PORT)),
            prefix,
            timeout: o.duration("timeout", Duration::from_secs(10))?,
        })
    }

    /// The sink's name in logs and on `/metrics`.
    pub fn name(&self) -> String {
        let scheme = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        format!("graphite:{scheme}://{}?prefix={}", self.endpoint, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<GraphiteConfig, ConfigError> {
        GraphiteConfig::from_uri(&s.parse().unwrap())
    }

    #[test]
    fn heapster_defaults_and_every_option() {
        let c = parse("graphite:tcp://carbon:2003").unwrap();
        assert_eq!(
            (c.protocol, c.endpoint.to_string(), c.prefix.as_str()),
            (Protocol::Tcp, "carbon:2003".into(), "kubernetes")
        );
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.name(), "graphite:tcp://carbon:2003?prefix=kubernetes");
        // Heapster: an empty prefix is the default one.
        assert_eq!(parse("graphite:tcp://carbon:2003?prefix=").unwrap().prefix, "kubernetes");
        let c = parse("graphite:udp://[::1]?prefix=k8s.prod&timeout=3s").unwrap();
        assert_eq!(
            (c.protocol, c.endpoint.to_string(), c.prefix.as_str()),
            (Protocol::Udp, "[::1]:2003".into(), "k8s.prod")
        );
        assert_eq!(c.timeout, Duration::from_secs(3));
        assert_eq!(parse("graphite").unwrap().endpoint.to_string(), "localhost:2003");
    }

    #[test]
    fn bad_options_are_one_line_naming_them() {
        for (uri, says) in [
            ("graphite:tcp://h:2003?prefx=a", "unknown graphite option \"prefx\""),
            ("graphite:http://h:2003", "expected tcp://host:port or udp://host:port"),
            ("graphite:tcp://h:2003?timeout=soon", "timeout=\"soon\""),
            ("graphite:tcp://h:2003?prefix=a%20b", "prefix=\"a b\""),
            ("graphite:tcp://h:99999", "not a URL"),
            ("graphite:tcp://h:2003/x", "has no path"),
        ] {
            let e = parse(uri).unwrap_err().to_string();
            assert!(e.contains(says), "{uri}: {e}");
            assert!(e.starts_with("--sink=graphite"), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
