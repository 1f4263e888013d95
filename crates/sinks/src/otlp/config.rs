//! The options of `--sink=otlp:http://HOST:4318?...`, checked once at start-up so that a typo stops heapster with
//! one line instead of surfacing as refused exports later.

use crate::ConfigError;
use heapster_model::{OptionSpec, Options};
use std::time::Duration;

/// Everything the OTLP sink needs, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    /// Where requests go: the given URL with `/v1/metrics` appended, as OpenTelemetry's exporters treat
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL), unless it already ends in `/v1/metrics`.
    pub url: url::Url,
    /// Put before every metric name (`heapster.` + `cpu.usage`): keeps heapster's series apart from the kubelet
    /// stats receiver's `k8s.pod.*` ones in the same backend.
    pub prefix: String,
    /// The `k8s.cluster.name` resource attribute of every set; empty leaves it out.
    pub cluster_name: String,
    /// Data points per request: the collector's batch processor sends 8192 at most by default.
    pub batch_points: usize,
    /// Protobuf bytes per request before compression, so that no receiver refuses a request as too large (the
    /// collector's default limit is 20 MiB; gRPC's message limit, which some gateways apply, 4 MiB).
    pub max_body_bytes: usize,
    /// Deadline of one request.
    pub timeout: Duration,
    /// `Content-Encoding: gzip`, which OTLP/HTTP receivers must accept; off by default, as in OpenTelemetry's
    /// exporters.
    pub gzip: bool,
    pub insecure: bool,
    pub ca_file: Option<std::path::PathBuf>,
}

/// The options this sink accepts; `--help` prints them, [`Options`] refuses any other.
pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("prefix", "heapster.", "put before every metric name"),
    OptionSpec::new("cluster_name", "default", "the k8s.cluster.name resource attribute (empty: none)"),
    OptionSpec::new("batch_points", "8192", "data points per export request"),
    OptionSpec::new("timeout", "10s", "deadline of one request"),
    OptionSpec::new("gzip", "false", "gzip request bodies (Content-Encoding: gzip)"),
    OptionSpec::new("insecure", "false", "skip certificate checks (self-signed test servers)"),
    OptionSpec::new("ca_file", "", "PEM file of CA certificates trusted besides the system's"),
];

/// The request size bound of [`OtlpConfig::max_body_bytes`].
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// The path OTLP/HTTP receivers take metrics on.
pub const METRICS_PATH: &str = "v1/metrics";

impl OtlpConfig {
    pub fn from_options(o: &Options) -> Result<Self, ConfigError> {
        let target = o.uri().target.as_str();
        if target.is_empty() {
            return Err(o.error("no URL: give the receiver's OTLP/HTTP address, e.g. otlp:http://collector:4318"));
        }
        let mut url = url::Url::parse(target).map_err(|e| o.error(format!("{target:?} is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(o.error(format!(
                "{target:?}: expected http://host:port or https://host:port (OTLP/HTTP; gRPC is not supported)"
            )));
        }
        if !url.path().trim_end_matches('/').ends_with(METRICS_PATH) {
            let path = format!("{}/{METRICS_PATH}", url.path().trim_end_matches('/'));
            url.set_path(&path);
        }
        let prefix = o.string("prefix", "heapster.");
        if !prefix.is_empty() && super::encoder::metric_name(&prefix, "") != prefix {
            return Err(o.error(format!(
                "prefix={prefix:?}: a metric name starts with a letter and holds only letters, digits and _.-/"
            )));
        }
        Ok(OtlpConfig {
            url,
            prefix,
            cluster_name: o.string("cluster_name", "default"),
            batch_points: o.positive("batch_points", 8192)?,
            max_body_bytes: MAX_BODY_BYTES,
            timeout: o.duration("timeout", Duration::from_secs(10))?,
            gzip: o.bool("gzip", false)?,
            insecure: o.bool("insecure", false)?,
            ca_file: o.non_empty("ca_file").map(std::path::PathBuf::from),
        })
    }

    /// The sink's name in logs and on `/metrics`: the URL without credentials.
    pub fn name(&self) -> String {
        let mut shown = self.url.clone();
        let _ = shown.set_password(None);
        let _ = shown.set_username("");
        format!("otlp:{shown}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<OtlpConfig, ConfigError> {
        let uri = s.parse().unwrap();
        OtlpConfig::from_options(&Options::new("--sink", &uri, OPTIONS)?)
    }

    #[test]
    fn defaults_and_every_option() {
        let c = parse("otlp:http://collector:4318").unwrap();
        assert_eq!(c.url.as_str(), "http://collector:4318/v1/metrics");
        assert_eq!((c.prefix.as_str(), c.cluster_name.as_str(), c.batch_points), ("heapster.", "default", 8192));
        assert_eq!((c.timeout, c.gzip, c.insecure, c.ca_file), (Duration::from_secs(10), false, false, None));
        let c = parse(
            "otlp:https://gw:443/otlp/?prefix=k8s.heapster.&cluster_name=&batch_points=10&timeout=2s&gzip=true\
             &insecure=true&ca_file=/etc/ca.pem",
        )
        .unwrap();
        assert_eq!(c.url.as_str(), "https://gw/otlp/v1/metrics");
        assert_eq!((c.prefix.as_str(), c.cluster_name.as_str(), c.batch_points), ("k8s.heapster.", "", 10));
        assert_eq!((c.timeout, c.gzip, c.insecure), (Duration::from_secs(2), true, true));
        assert_eq!(c.ca_file, Some("/etc/ca.pem".into()));
        assert_eq!(parse("otlp:http://h:4318/v1/metrics").unwrap().url.as_str(), "http://h:4318/v1/metrics");
        assert_eq!(parse("otlp:http://u:s3cret@h:4318").unwrap().name(), "otlp:http://h:4318/v1/metrics");
    }

    #[test]
    fn bad_options_are_one_line_naming_the_option() {
        for (uri, says) in [
            ("otlp:", "no URL"),
            ("otlp:grpc://h:4317", "expected http://"),
            ("otlp:h:4318", "expected http://"),
            ("otlp:http://h?batch_points=0", "batch_points=\"0\""),
            ("otlp:http://h?timeout=soon", "timeout=\"soon\""),
            ("otlp:http://h?gzip=yes", "gzip=\"yes\""),
            ("otlp:http://h?prefix=9x", "prefix=\"9x\""),
            ("otlp:http://h?prefix=a%20b", "prefix=\"a b\""),
            ("otlp:http://h?insecure=maybe", "insecure=\"maybe\""),
            ("otlp:http://h?headers=x", "unknown otlp option \"headers\""),
        ] {
            let e = parse(uri).unwrap_err().to_string();
            assert!(e.contains(says), "{uri}: {e}");
            assert!(e.starts_with("--sink=otlp:") && !e.contains('\n'), "{e}");
        }
    }
}
