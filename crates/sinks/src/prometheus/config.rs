//! The options of `--sink=prometheus:URL?...`, checked once at start-up so that a typo stops heapster with one line
//! instead of surfacing as refused writes later.

use crate::ConfigError;
use heapster_model::{OptionSpec, Options};
use std::time::Duration;

/// How requests authenticate; receivers behind a gateway take one or the other, never both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic { user: String, password: String },
    Bearer(String),
}

/// Everything the remote-write sink needs, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusConfig {
    /// The receiver's write endpoint as given (`http://prom:9090/api/v1/write`, VictoriaMetrics' `/api/v1/write`):
    /// receivers disagree on the path, so none is added.
    pub url: url::Url,
    pub auth: Auth,
    /// Put before every metric name: Prometheus' naming guide asks for an application prefix, and it keeps
    /// heapster's `memory_usage_bytes` apart from the kubelet's and cAdvisor's own series in the same server.
    pub prefix: String,
    /// The `cluster_name` label of every series (as the InfluxDB sink tags it); empty leaves it out.
    pub cluster_name: String,
    /// Labels added to every series after sanitising, e.g. the `replica` label an HA pair deduplicates on.
    pub extra_labels: Vec<(String, String)>,
    /// Samples per request. Prometheus' own sender sends 2,000 at most; receivers cap request size.
    pub batch_points: usize,
    /// Deadline of one request.
    pub timeout: Duration,
    pub insecure: bool,
    pub ca_file: Option<std::path::PathBuf>,
}

/// The options this sink accepts; `--help` prints them, [`Options`] refuses any other.
pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("prefix", "heapster_", "put before every metric name"),
    OptionSpec::new("cluster_name", "default", "the cluster_name label of every series (empty: none)"),
    OptionSpec::new("labels", "", "more labels on every series: name:value,name:value"),
    OptionSpec::new("batch_points", "2000", "samples per write request"),
    OptionSpec::new("timeout", "10s", "deadline of one request"),
    OptionSpec::new("user", "", "basic auth user"),
    OptionSpec { name: "pw", default: "", help: "basic auth password", secret: true },
    OptionSpec::secret("token", "bearer token (Authorization: Bearer)"),
    OptionSpec::new("insecure", "false", "skip certificate checks (self-signed test servers)"),
    OptionSpec::new("ca_file", "", "PEM file of CA certificates trusted besides the system's"),
];

impl PrometheusConfig {
    pub fn from_options(o: &Options) -> Result<Self, ConfigError> {
        let target = o.uri().target.as_str();
        if target.is_empty() {
            return Err(
                o.error("no URL: give the receiver's write endpoint, e.g. prometheus:http://prom:9090/api/v1/write")
            );
        }
        let url = url::Url::parse(target).map_err(|e| o.error(format!("{target:?} is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(o.error(format!("{target:?}: expected http://host:port/path or https://host:port/path")));
        }
        let auth = match (o.non_empty("user"), o.get("pw"), o.get("token")) {
            (_, _, Some("")) => return Err(o.error("token= is empty: give the bearer token or leave token out")),
            (Some(_), _, Some(_)) | (None, Some(_), Some(_)) => {
                return Err(o.error("token= and user=/pw= exclude each other: a request carries one Authorization"));
            }
            (None, Some(_), None) => return Err(o.error("pw= without user=: name the basic auth user")),
            (_, _, Some(t)) if !t.bytes().all(|b| b.is_ascii_graphic()) => {
                return Err(o.error("token= holds spaces or characters an HTTP header cannot carry"));
            }
            (_, _, Some(t)) => Auth::Bearer(t.to_owned()),
            (Some(u), pw, None) => Auth::Basic { user: u.to_owned(), password: pw.unwrap_or_default().to_owned() },
            (None, None, None) => Auth::None,
        };
        let prefix = o.string("prefix", "heapster_");
        if !prefix.is_empty() && super::encoder::metric_name(&prefix, "") != prefix {
            return Err(o.error(format!(
                "prefix={prefix:?}: a metric name takes only letters, digits, _ and :, not first a digit"
            )));
        }
        let mut extra_labels = Vec::new();
        for pair in o.string("labels", "").split(',').filter(|p| !p.is_empty()) {
            let Some((name, value)) = pair.split_once(':') else {
                return Err(o.error(format!("labels=: {pair:?} is not name:value")));
            };
            let clean = super::encoder::label_name(name);
            if clean != name || name.starts_with("__") || name == "cluster_name" {
                return Err(o.error(format!(
                    "labels=: {name:?} is not a label name of its own (letters, digits and _, not first a digit, not \
                     __reserved, not cluster_name, which cluster_name= sets)"
                )));
            }
            extra_labels.push((name.to_owned(), value.to_owned()));
        }
        let ca_file = o.non_empty("ca_file").map(std::path::PathBuf::from);
        Ok(PrometheusConfig {
            url,
            auth,
            prefix,
            cluster_name: o.string("cluster_name", "default"),
            extra_labels,
            batch_points: o.positive("batch_points", 2000)?,
            timeout: o.duration("timeout", Duration::from_secs(10))?,
            insecure: o.bool("insecure", false)?,
            ca_file,
        })
    }

    /// The sink's name in logs and on `/metrics`: the URL without credentials.
    pub fn name(&self) -> String {
        let mut shown = self.url.clone();
        let _ = shown.set_password(None);
        let _ = shown.set_username("");
        format!("prometheus:{shown}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<PrometheusConfig, ConfigError> {
        let uri = s.parse().unwrap();
        PrometheusConfig::from_options(&Options::new("--sink", &uri, OPTIONS)?)
    }

    #[test]
    fn defaults_and_every_option() {
        let c = parse("prometheus:http://prom:9090/api/v1/write").unwrap();
        assert_eq!(c.url.as_str(), "http://prom:9090/api/v1/write");
        assert_eq!((c.prefix.as_str(), c.cluster_name.as_str(), c.batch_points), ("heapster_", "default", 2000));
        assert_eq!((c.auth, c.timeout, c.insecure), (Auth::None, Duration::from_secs(10), false));
        let c = parse(
            "prometheus:https://vm:8428/api/v1/write?prefix=k8s:&cluster_name=&labels=replica:a,env:prod%20eu\
             &batch_points=10&timeout=2s&user=u&pw=p&insecure=true",
        )
        .unwrap();
        assert_eq!((c.prefix.as_str(), c.cluster_name.as_str(), c.batch_points), ("k8s:", "", 10));
        assert_eq!(c.extra_labels, [("replica".into(), "a".into()), ("env".into(), "prod eu".into())]);
        assert_eq!(c.auth, Auth::Basic { user: "u".into(), password: "p".into() });
        assert!(c.insecure);
        assert_eq!(parse("prometheus:http://h/w?token=abc").unwrap().auth, Auth::Bearer("abc".into()));
        assert_eq!(parse("prometheus:http://u:s3cret@h/w").unwrap().name(), "prometheus:http://h/w");
    }

    #[test]
    fn bad_options_are_one_line_naming_the_option() {
        for (uri, says) in [
            ("prometheus:", "no URL"),
            ("prometheus:ftp://h/w", "expected http://"),
            ("prometheus:http://h/w?batch_points=0", "batch_points=\"0\""),
            ("prometheus:http://h/w?timeout=soon", "timeout=\"soon\""),
            ("prometheus:http://h/w?token=t&user=u", "exclude each other"),
            ("prometheus:http://h/w?token=", "token= is empty"),
            ("prometheus:http://h/w?token=a%20b", "cannot carry"),
            ("prometheus:http://h/w?pw=x", "pw= without user="),
            ("prometheus:http://h/w?labels=replica", "labels=: \"replica\" is not name:value"),
            ("prometheus:http://h/w?labels=a-b:1", "labels=: \"a-b\""),
            ("prometheus:http://h/w?labels=__name__:x", "labels=: \"__name__\""),
            ("prometheus:http://h/w?prefix=1x", "prefix=\"1x\""),
            ("prometheus:http://h/w?insecure=maybe", "insecure=\"maybe\""),
            ("prometheus:http://h/w?namespace=x", "unknown prometheus option \"namespace\""),
        ] {
            let e = parse(uri).unwrap_err().to_string();
            assert!(e.contains(says), "{uri}: {e}");
            assert!(e.starts_with("--sink=prometheus:") && !e.contains('\n'), "{e}");
        }
        let e = parse("prometheus:http://h/w?token=s3cret&user=u").unwrap_err().to_string();
        assert!(!e.contains("s3cret"), "{e}");
    }
}
