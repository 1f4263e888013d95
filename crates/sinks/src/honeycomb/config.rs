//! The options of `--sink=honeycomb:?dataset=&writekey=&apihost=`, shared by the metrics and the event sink as
//! Heapster's `common/honeycomb` shared them, read once at start-up so that a typo stops heapster with one line.

use crate::ConfigError;
use heapster_model::{OptionSpec, Options, SpecUri};
use std::time::Duration;

/// Where Honeycomb's API answers (Heapster's default).
pub const DEFAULT_API_HOST: &str = "https://api.honeycomb.io/";
/// Heapster's dataset.
pub const DEFAULT_DATASET: &str = "heapster";
/// The environment variable Heapster read the write key from when `writekey=` is not given.
pub const WRITEKEY_ENV: &str = "HONEYCOMB_WRITEKEY";
/// Honeycomb refuses a batch request over 5 MB (uncompressed).
pub const MAX_REQUEST_BYTES: usize = 5_000_000;

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("dataset", DEFAULT_DATASET, "the Honeycomb dataset the events go to"),
    OptionSpec::secret("writekey", "the team's API (ingest) key; default: $HONEYCOMB_WRITEKEY"),
    OptionSpec::new("apihost", DEFAULT_API_HOST, "Honeycomb's API base URL"),
    OptionSpec::new("batch_events", "100", "events per /1/batch request (Heapster's 100)"),
    OptionSpec::new("gzip", "true", "gzip request bodies"),
    OptionSpec::new("timeout", "10s", "deadline of one HTTP request"),
];

#[derive(Debug, Clone, PartialEq)]
pub struct HoneycombConfig {
    /// `<apihost>/1/batch/<dataset>`, the dataset percent-encoded as one path segment.
    pub batch_url: url::Url,
    pub dataset: String,
    pub write_key: String,
    pub batch_events: usize,
    pub gzip: bool,
    pub timeout: Duration,
}

impl HoneycombConfig {
    /// `env_key` is `$HONEYCOMB_WRITEKEY` (passed in, so tests do not depend on the process's environment).
    pub fn from_uri(uri: &SpecUri, env_key: Option<String>) -> Result<Self, ConfigError> {
        let o = Options::new("--sink", uri, OPTIONS)?;
        if !uri.target.is_empty() {
            return Err(o.error(format!("honeycomb takes no address ({:?}): give the API's with apihost=", uri.target)));
        }
        let dataset = o.string("dataset", DEFAULT_DATASET);
        if dataset.trim().is_empty() || dataset.contains('/') {
            return Err(o.error(format!("dataset={dataset:?}: expected a dataset name without '/'")));
        }
        let write_key = match o.non_empty("writekey") {
            Some(k) => k.to_owned(),
            None => env_key
                .filter(|k| !k.is_empty())
                .ok_or_else(|| o.error(format!("writekey= is required (or ${WRITEKEY_ENV}): the team's API key")))?,
        };
        let host = o.non_empty("apihost").unwrap_or(DEFAULT_API_HOST);
        let mut batch_url =
            url::Url::parse(host).map_err(|e| o.error(format!("apihost={host:?} is not a URL ({e})")))?;
        if !matches!(batch_url.scheme(), "http" | "https") || batch_url.host().is_none() {
            return Err(o.error(format!("apihost={host:?}: expected https://host[:port]")));
        }
        batch_url.set_query(None);
        batch_url.path_segments_mut().expect("an http URL has a path").pop_if_empty().extend(["1", "batch", &dataset]);
        Ok(HoneycombConfig {
            batch_url,
            dataset,
            write_key,
            batch_events: o.positive("batch_events", 100)?,
            gzip: o.bool("gzip", true)?,
            timeout: o.duration("timeout", Duration::from_secs(10))?,
        })
    }

    /// The name in logs and self-metrics: the URL without the key.
    pub fn name(&self) -> String {
        format!("honeycomb:{}", self.batch_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str, env: Option<&str>) -> Result<HoneycombConfig, ConfigError> {
        HoneycombConfig::from_uri(&s.parse().unwrap(), env.map(str::to_owned))
    }

    #[test]
    fn heapster_defaults_and_every_option() {
        let c = parse("honeycomb:?dataset=mydataset&writekey=secretwritekey", None).unwrap();
        assert_eq!(c.batch_url.as_str(), "https://api.honeycomb.io/1/batch/mydataset");
        assert_eq!((c.write_key.as_str(), c.batch_events, c.gzip), ("secretwritekey", 100, true));
        assert_eq!(c.name(), "honeycomb:https://api.honeycomb.io/1/batch/mydataset");
        // The key from the environment, the default dataset; a key given wins over the environment's.
        let c = parse("honeycomb", Some("envkey")).unwrap();
        assert_eq!(
            (c.batch_url.as_str(), c.write_key.as_str()),
            ("https://api.honeycomb.io/1/batch/heapster", "envkey")
        );
        assert_eq!(parse("honeycomb:?writekey=k", Some("envkey")).unwrap().write_key, "k");
        let c = parse(
            "honeycomb:?writekey=k&dataset=My Dataset&apihost=http://127.0.0.1:9/proxy/&batch_events=7&gzip=false&timeout=2s",
            None,
        )
        .unwrap();
        assert_eq!(c.batch_url.as_str(), "http://127.0.0.1:9/proxy/1/batch/My%20Dataset");
        assert_eq!((c.batch_events, c.gzip, c.timeout), (7, false, Duration::from_secs(2)));
    }

    #[test]
    fn bad_options_are_one_line_naming_them_and_never_the_key() {
        for (uri, says) in [
            ("honeycomb:?dataset=x", "writekey= is required (or $HONEYCOMB_WRITEKEY)"),
            ("honeycomb:?writekey=secret&datset=x", "unknown honeycomb option \"datset\""),
            ("honeycomb:http://h?writekey=secret", "honeycomb takes no address"),
            ("honeycomb:?writekey=secret&dataset=a/b", "dataset=\"a/b\""),
            ("honeycomb:?writekey=secret&apihost=ftp://h", "apihost=\"ftp://h\""),
            ("honeycomb:?writekey=secret&batch_events=0", "batch_events=\"0\""),
            ("honeycomb:?writekey=secret&gzip=maybe", "gzip=\"maybe\""),
        ] {
            let e = parse(uri, None).unwrap_err().to_string();
            assert!(e.contains(says), "{uri}: {e}");
            assert!(e.starts_with("--sink=honeycomb"), "{e}");
            assert!(!e.contains('\n') && !e.contains("secret"), "{e}");
        }
    }
}
