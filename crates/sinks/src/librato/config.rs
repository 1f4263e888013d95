//! The options of `--sink=librato:?username=&token=&prefix=&tags=&tag_<name>=`, read once at start-up so that a
//! typo stops heapster with one line naming the option.

use crate::ConfigError;
use heapster_model::{OptionSpec, Options, SpecUri};
use std::collections::BTreeMap;
use std::time::Duration;

/// Heapster's API base URL.
pub const DEFAULT_API: &str = "https://metrics-api.librato.com";

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("username", "", "the Librato user (e-mail address); required"),
    OptionSpec::secret("token", "the Librato API token; required"),
    OptionSpec::new("api", DEFAULT_API, "Librato's API base URL"),
    OptionSpec::new("prefix", "", "a prefix of every measurement name ('.' added when missing)"),
    OptionSpec::new("tags", "", "comma-separated names of tags every measurement carries, each valued by tag_<name>="),
    OptionSpec::new("batch_points", "1000", "measurements per /v1/measurements request (Heapster's 1000)"),
    OptionSpec::new("timeout", "10s", "deadline of one HTTP request"),
];

#[derive(Debug, Clone, PartialEq)]
pub struct LibratoConfig {
    /// `<api>/v1/measurements`.
    pub measurements_url: url::Url,
    pub username: String,
    pub token: String,
    /// Empty, or ending in `.`.
    pub prefix: String,
    /// Tags of every measurement (the request's top-level `tags`).
    pub tags: BTreeMap<String, String>,
    pub batch_points: usize,
    pub timeout: Duration,
}

impl LibratoConfig {
    /// `tag_<name>=` options are taken for the names `tags=` lists; any other `tag_` option is refused.
    pub fn from_uri(uri: &SpecUri) -> Result<Self, ConfigError> {
        let mut rest = uri.clone();
        let tag_values: Vec<(String, String)> = {
            let (tags, others) = uri.options.iter().cloned().partition(|(k, _)| k.starts_with("tag_"));
            rest.options = others;
            tags
        };
        let o = Options::new("--sink", &rest, OPTIONS)?;
        if !uri.target.is_empty() {
            return Err(o.error(format!("librato takes no address ({:?}): give the API's with api=", uri.target)));
        }
        let username = o.required("username", "the Librato user")?.to_owned();
        let token = o.required("token", "the Librato API token")?.to_owned();
        let api = o.non_empty("api").unwrap_or(DEFAULT_API);
        let mut measurements_url =
            url::Url::parse(api).map_err(|e| o.error(format!("api={api:?} is not a URL ({e})")))?;
        if !matches!(measurements_url.scheme(), "http" | "https") || measurements_url.host().is_none() {
            return Err(o.error(format!("api={api:?}: expected https://host[:port]")));
        }
        measurements_url
            .path_segments_mut()
            .expect("an http URL has a path")
            .pop_if_empty()
            .extend(["v1", "measurements"]);
        let mut prefix = o.string("prefix", "");
        if !prefix.is_empty() && !prefix.ends_with('.') {
            prefix.push('.');
        }
        let names: Vec<&str> = o.non_empty("tags").map(|t| t.split(',').map(str::trim).collect()).unwrap_or_default();
        let mut tags = BTreeMap::new();
        for (key, value) in tag_values {
            let name = &key["tag_".len()..];
            if !names.contains(&name) {
                return Err(o.error(format!("{key}= given but {name:?} is not in tags= ({})", names.join(","))));
            }
            tags.insert(name.to_owned(), value);
        }
        Ok(LibratoConfig {
            measurements_url,
            username,
            token,
            prefix,
            tags,
            batch_points: o.positive("batch_points", 1000)?,
            timeout: o.duration("timeout", Duration::from_secs(10))?,
        })
    }

    pub fn name(&self) -> String {
        format!("librato:{}?username={}", self.measurements_url, self.username)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<LibratoConfig, ConfigError> {
        LibratoConfig::from_uri(&s.parse().unwrap())
    }

    #[test]
    fn heapster_defaults_and_every_option() {
        let c = parse("librato:?username=xyz&token=secret&prefix=k8s&tags=cluster&tag_cluster=staging").unwrap();
        assert_eq!(c.measurements_url.as_str(), "https://metrics-api.librato.com/v1/measurements");
        assert_eq!((c.username.as_str(), c.token.as_str(), c.prefix.as_str()), ("xyz", "secret", "k8s."));
        assert_eq!(c.tags, BTreeMap::from([("cluster".to_owned(), "staging".to_owned())]));
        assert_eq!((c.batch_points, c.timeout), (1000, Duration::from_secs(10)));
        assert_eq!(c.name(), "librato:https://metrics-api.librato.com/v1/measurements?username=xyz");
        // A tag listed without a value is not sent, as in Heapster.
        let c = parse("librato:?username=u&token=t&api=http://127.0.0.1:9/&prefix=a.&tags=x,y&tag_y=2&batch_points=5")
            .unwrap();
        assert_eq!(c.measurements_url.as_str(), "http://127.0.0.1:9/v1/measurements");
        assert_eq!((c.prefix.as_str(), c.batch_points), ("a.", 5));
        assert_eq!(c.tags, BTreeMap::from([("y".to_owned(), "2".to_owned())]));
    }

    #[test]
    fn bad_options_are_one_line_naming_them_and_never_the_token() {
        for (uri, says) in [
            ("librato:?token=secret", "username= is required"),
            ("librato:?username=u", "token= is required"),
            ("librato:?username=u&token=secret&prefx=a", "unknown librato option \"prefx\""),
            ("librato:?username=u&token=secret&tag_zone=a", "tag_zone= given but \"zone\" is not in tags="),
            ("librato:?username=u&token=secret&api=ftp://h", "api=\"ftp://h\""),
            ("librato:http://h?username=u&token=secret", "librato takes no address"),
            ("librato:?username=u&token=secret&batch_points=0", "batch_points=\"0\""),
        ] {
            let e = parse(uri).unwrap_err().to_string();
            assert!(e.contains(says), "{uri}: {e}");
            assert!(e.starts_with("--sink=librato"), "{e}");
            assert!(!e.contains('\n') && !e.contains("secret"), "{e}");
        }
    }
}
