//! `--source` and `--sink` values, in Heapster's syntax: `KEY[:VALUE]`, where VALUE is a URL or a bare word with
//! an optional `?query` (`kubernetes.summary_api:https://kubernetes.default?kubeletPort=10250`,
//! `cadvisor:external?hostsFile=/etc/hosts.json`, `log`).

use std::fmt;
use std::str::FromStr;

/// A parsed `--source`/`--sink` value. Options are kept in order, repeated keys included, so each source or sink
/// can reject what it does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecUri {
    /// What kind of source or sink (`local`, `kubernetes.summary_api`, `influxdb`, `log`).
    pub key: String,
    /// The part between `:` and `?`: a URL (`http://host:8086`) or a bare word (`external`); empty when absent.
    pub target: String,
    /// The `?a=b&c=d` options, percent-decoded.
    pub options: Vec<(String, String)>,
}

impl SpecUri {
    /// The last value given for option `name`.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The target as an absolute URL, for sources and sinks that talk to a server.
    pub fn url(&self) -> Result<url::Url, String> {
        url::Url::parse(&self.target).map_err(|e| format!("{}: {:?} is not a URL ({e})", self.key, self.target))
    }
}

impl FromStr for SpecUri {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        // The key ends at the first `:` or, with no target (`log?opt=1`, `gcm?endpoint=http://...`), at the `?`.
        let (key, rest) = match s.find([':', '?']) {
            Some(i) if s.as_bytes()[i] == b':' => (&s[..i], &s[i + 1..]),
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        };
        if key.is_empty() {
            return Err(format!("{s:?} has no key: expected KEY[:URL][?options], e.g. influxdb:http://127.0.0.1:8086"));
        }
        if !key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return Err(format!("{s:?}: {key:?} is not a valid key (letters, digits, '.', '_' and '-')"));
        }
        let (target, query) = match rest.split_once('?') {
            Some((t, q)) => (t, q),
            None => (rest, ""),
        };
        let options =
            url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        Ok(SpecUri { key: key.to_owned(), target: target.to_owned(), options })
    }
}

impl fmt::Display for SpecUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)?;
        if !self.target.is_empty() {
            write!(f, ":{}", self.target)?;
        }
        if !self.options.is_empty() {
            let q: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&self.options).finish();
            write!(f, "?{q}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heapster_examples() {
        let u: SpecUri =
            "kubernetes.summary_api:https://kubernetes.default?kubeletHttps=true&kubeletPort=10250".parse().unwrap();
        assert_eq!(u.key, "kubernetes.summary_api");
        assert_eq!(u.target, "https://kubernetes.default");
        assert_eq!(u.option("kubeletPort"), Some("10250"));
        assert_eq!(u.url().unwrap().host_str(), Some("kubernetes.default"));

        let u: SpecUri = "cadvisor:external?hostsFile=/var/run/hosts.json&cadvisorPort=8080".parse().unwrap();
        assert_eq!((u.key.as_str(), u.target.as_str()), ("cadvisor", "external"));
        assert_eq!(u.option("hostsFile"), Some("/var/run/hosts.json"));
        assert!(u.url().is_err());

        let u: SpecUri = "log".parse().unwrap();
        assert_eq!((u.key.as_str(), u.target.as_str(), u.options.len()), ("log", "", 0));
        let u: SpecUri = "influxdb:http://h:8086?db=k8s&pw=a%26b".parse().unwrap();
        assert_eq!(u.option("pw"), Some("a&b"));
        assert_eq!(u.to_string(), "influxdb:http://h:8086?db=k8s&pw=a%26b");

        // No target, options holding a URL: the key ends at the `?`, not at the URL's `:`.
        let u: SpecUri = "gcm?metrics=all&endpoint=http://127.0.0.1:9".parse().unwrap();
        assert_eq!((u.key.as_str(), u.target.as_str()), ("gcm", ""));
        assert_eq!(u.option("endpoint"), Some("http://127.0.0.1:9"));
        let u: SpecUri = "stackdriver:?cluster_name=c".parse().unwrap();
        assert_eq!((u.key.as_str(), u.target.as_str(), u.option("cluster_name")), ("stackdriver", "", Some("c")));
    }

    #[test]
    fn rejects_missing_or_odd_keys() {
        assert!(":http://x".parse::<SpecUri>().is_err());
        assert!("".parse::<SpecUri>().is_err());
        assert!("in flux:http://x".parse::<SpecUri>().is_err());
    }
}
