//! The options of `--sink=opentsdb:http://HOST:4242?cluster=`, read once at start-up so that a typo stops heapster
//! with one line naming the option.

use crate::ConfigError;
use heapster_model::{OptionSpec, Options, SpecUri};
use std::time::Duration;

/// Heapster's value of the `cluster` tag.
pub const DEFAULT_CLUSTER: &str = "k8s-cluster";

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("cluster", DEFAULT_CLUSTER, "the cluster tag of every point"),
    OptionSpec::new(
        "max_tags",
        "8",
        "tags per point at most, as the server's tsd.storage.max_tags (0: every label, as Heapster sent)",
    ),
    OptionSpec::new("batch_points", "1000", "points per /api/put request"),
    OptionSpec::new("timeout", "10s", "deadline of one HTTP request"),
];

#[derive(Debug, Clone, PartialEq)]
pub struct OpentsdbConfig {
    /// `/api/put` on the server given.
    pub put_url: url::Url,
    pub cluster: String,
    /// 0: no limit.
    pub max_tags: usize,
    pub batch_points: usize,
    pub timeout: Duration,
}

impl OpentsdbConfig {
    pub fn from_uri(uri: &SpecUri) -> Result<Self, ConfigError> {
        Self::from_options(&Options::new("--sink", uri, OPTIONS)?)
    }

    pub fn from_options(o: &Options) -> Result<Self, ConfigError> {
        let target = o.uri().target.as_str();
        // Heapster's default, and its bare `host:port`.
        let target = if target.is_empty() { "127.0.0.1:4242" } else { target };
        let target = if target.contains("://") { target.to_owned() } else { format!("http://{target}") };
        let url = url::Url::parse(&target).map_err(|e| o.error(format!("{target:?} is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(o.error(format!("{target:?}: expected http://host:4242")));
        }
        let mut put_url = url.clone();
        put_url.set_path(&format!("{}/api/put", url.path().trim_end_matches('/')));
        // Per-point errors in the answer, so that refusals are counted by cause.
        put_url.set_query(Some("details"));
        let cluster = o.string("cluster", DEFAULT_CLUSTER);
        if super::encoder::sanitize(&cluster).is_empty() {
            return Err(o.error("cluster= is empty: OpenTSDB refuses a tag without a value"));
        }
        Ok(OpentsdbConfig {
            put_url,
            cluster,
            max_tags: o.parse("max_tags", 8, "a number of tags (0: no limit)")?,
            batch_points: o.positive("batch_points", 1000)?,
            timeout: o.duration("timeout", Duration::from_secs(10))?,
        })
    }

    pub fn name(&self) -> String {
        let mut u = self.put_url.clone();
        let base = u.path().trim_end_matches("/api/put").to_owned();
        u.set_path(&base);
        u.set_query(Some(&format!("cluster={}", self.cluster)));
        format!("opentsdb:{u}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<OpentsdbConfig, ConfigError> {
        OpentsdbConfig::from_uri(&s.parse().unwrap())
    }

    #[test]
    fn heapster_defaults_and_every_option() {
        let c = parse("opentsdb:http://192.168.1.8:4242?cluster=k8s-cluster").unwrap();
        assert_eq!(c.put_url.as_str(), "http://192.168.1.8:4242/api/put?details");
        assert_eq!((c.cluster.as_str(), c.max_tags, c.batch_points), ("k8s-cluster", 8, 1000));
        assert_eq!(c.name(), "opentsdb:http://192.168.1.8:4242/?cluster=k8s-cluster");
        let c = parse("opentsdb").unwrap();
        assert_eq!((c.put_url.as_str(), c.cluster.as_str()), ("http://127.0.0.1:4242/api/put?details", "k8s-cluster"));
        let c = parse("opentsdb:tsdb:4242?cluster=prod&max_tags=0&batch_points=50&timeout=2s").unwrap();
        assert_eq!(c.put_url.as_str(), "http://tsdb:4242/api/put?details");
        assert_eq!(
            (c.cluster.as_str(), c.max_tags, c.batch_points, c.timeout),
            ("prod", 0, 50, Duration::from_secs(2))
        );
    }

    #[test]
    fn bad_options_are_one_line_naming_them() {
        for (uri, says) in [
            ("opentsdb:http://h:4242?clustr=a", "unknown opentsdb option \"clustr\""),
            ("opentsdb:ftp://h:4242", "expected http://host:4242"),
            ("opentsdb:http://h:4242?cluster=", "cluster= is empty"),
            ("opentsdb:http://h:4242?max_tags=-1", "max_tags=\"-1\""),
            ("opentsdb:http://h:4242?batch_points=0", "batch_points=\"0\""),
            ("opentsdb:http://h:4242?timeout=x", "timeout=\"x\""),
        ] {
            let e = parse(uri).unwrap_err().to_string();
            assert!(e.contains(says), "{uri}: {e}");
            assert!(e.starts_with("--sink=opentsdb"), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
