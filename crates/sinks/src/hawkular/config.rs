//! The options of `--sink=hawkular:<URL>?tenant=&labelToTenant=&filter=...`, read once at start-up so that a typo
//! or a combination Heapster refused stops heapster with one line naming the option.

use crate::ConfigError;
use heapster_model::{OptionSpec, Options, SpecUri};
use std::path::PathBuf;
use std::time::Duration;

/// Heapster's path when the URL has none.
pub const DEFAULT_PATH: &str = "/hawkular/metrics";
pub const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("tenant", "heapster", "the Hawkular-Tenant of the data"),
    OptionSpec::new("labelToTenant", "", "a label whose value, when a metric set has it, is the tenant of its data"),
    OptionSpec::new("labelNodeId", "", "a label naming the node in node metric ids, instead of nodename"),
    OptionSpec::new("labelTagPrefix", "labels.", "the prefix of the tags made of the pod's labels"),
    OptionSpec::new("useServiceAccount", "false", "authorise with the pod's service account token (OpenShift)"),
    OptionSpec::new("tokenFile", SERVICE_ACCOUNT_TOKEN, "where useServiceAccount reads the token, at every export"),
    OptionSpec::new("insecure", "false", "skip the server certificate's checks"),
    OptionSpec::new("caCert", "", "a PEM file of CA certificates trusted for the server"),
    OptionSpec::new("auth", "", "a kubeconfig for the TLS settings (not supported: use caCert= and user=/pass=)"),
    OptionSpec::new("user", "", "basic auth user"),
    OptionSpec::secret("pass", "basic auth password"),
    OptionSpec::new("filter", "", "label(name:regexp) or name(regexp): metrics not to store; repeatable"),
    OptionSpec::new("batchSize", "1000", "metrics per write request (0: all in one)"),
    OptionSpec::new("concurrencyLimit", "5", "write requests in flight at most"),
    OptionSpec::new(
        "disablePreCache",
        "false",
        "do not read the tenant's definitions at start, to skip their tag updates",
    ),
    OptionSpec::new("timeout", "10s", "deadline of one HTTP request"),
];

/// A `filter=`: metrics it matches are not stored.
#[derive(Debug, Clone)]
pub enum Filter {
    /// `label(name:regexp)`: the set's label `name` matches.
    Label(String, regex::Regex),
    /// `name(regexp)`: the metric's name matches.
    Name(regex::Regex),
}

impl Filter {
    pub fn parse(s: &str) -> Result<Filter, String> {
        let (kind, rest) = s.split_once('(').ok_or("missing (")?;
        let arg = rest.strip_suffix(')').ok_or("missing ) at the end")?;
        // The regex crate's message spans lines (the pattern, a caret, the error): its last line says it.
        let re = |r: &str| {
            regex::Regex::new(r).map_err(|e| {
                let e = e.to_string();
                format!("bad regexp {r:?}: {}", e.lines().last().unwrap_or("").trim().trim_start_matches("error: "))
            })
        };
        match kind {
            "label" => {
                let (name, r) = arg.split_once(':').ok_or("missing : in label(name:regexp)")?;
                Ok(Filter::Label(name.to_owned(), re(r)?))
            }
            "name" => Ok(Filter::Name(re(arg)?)),
            other => Err(format!("unknown filter type {other:?} (label or name)")),
        }
    }

    /// Whether the metric `name` of a set with `labels` is left out.
    pub fn drops(&self, labels: &heapster_model::Labels, name: &str) -> bool {
        match self {
            Filter::Label(k, r) => labels.get(k.as_str()).is_some_and(|v| r.is_match(v)),
            Filter::Name(r) => r.is_match(name),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic {
        user: String,
        pass: String,
    },
    /// A bearer token read from this file at every export (service account tokens are rotated).
    TokenFile(PathBuf),
}

#[derive(Debug, Clone)]
pub struct HawkularConfig {
    /// The API's base, `http://host:8080/hawkular/metrics`, without a trailing `/`.
    pub base: url::Url,
    pub tenant: String,
    pub label_to_tenant: Option<String>,
    pub label_node_id: Option<String>,
    pub label_tag_prefix: String,
    pub auth: Auth,
    pub insecure: bool,
    pub ca_cert: Option<PathBuf>,
    pub filters: Vec<Filter>,
    /// 0: no limit.
    pub batch_size: usize,
    pub concurrency: usize,
    pub pre_cache: bool,
    pub timeout: Duration,
}

impl HawkularConfig {
    pub fn from_uri(uri: &SpecUri) -> Result<Self, ConfigError> {
        let o = Options::new("--sink", uri, OPTIONS)?;
        let target = uri.target.as_str();
        let mut base = url::Url::parse(target).map_err(|e| o.error(format!("{target:?} is not a URL ({e})")))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(o.error(format!("{target:?}: expected http(s)://host:8080[/path]")));
        }
        base.set_query(None);
        if base.path() == "/" || base.path().is_empty() {
            base.set_path(DEFAULT_PATH);
        }
        let trimmed = base.path().trim_end_matches('/').to_owned();
        base.set_path(&trimmed);
        if o.non_empty("auth").is_some() {
            return Err(o.error("auth= (a kubeconfig for TLS) is not supported: give caCert= and user=/pass= instead"));
        }
        let ca_cert = o.non_empty("caCert").map(PathBuf::from);
        let insecure = o.bool("insecure", false)?;
        if o.has("insecure") && ca_cert.is_some() {
            return Err(o.error("insecure= cannot be combined with caCert= (as in Heapster)"));
        }
        let use_sa = o.bool("useServiceAccount", false)?;
        let auth = match (o.non_empty("user"), o.non_empty("pass")) {
            (Some(_), _) if use_sa => {
                return Err(o.error("user=/pass= cannot be combined with useServiceAccount=true (as in Heapster)"));
            }
            (Some(user), Some(pass)) => Auth::Basic { user: user.into(), pass: pass.into() },
            (Some(_), None) => return Err(o.error("user= needs pass=")),
            (None, Some(_)) => return Err(o.error("pass= needs user=")),
            (None, None) if use_sa => Auth::TokenFile(o.string("tokenFile", SERVICE_ACCOUNT_TOKEN).into()),
            (None, None) => Auth::None,
        };
        let filters = uri
            .options
            .iter()
            .filter(|(k, _)| k == "filter")
            .map(|(_, v)| Filter::parse(v).map_err(|e| o.error(format!("filter={v:?}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let tenant = o.string("tenant", "heapster");
        if tenant.is_empty() {
            return Err(o.error("tenant= is empty: Hawkular needs a tenant"));
        }
        Ok(HawkularConfig {
            base,
            tenant,
            label_to_tenant: o.non_empty("labelToTenant").map(str::to_owned),
            label_node_id: o.non_empty("labelNodeId").map(str::to_owned),
            label_tag_prefix: o.string("labelTagPrefix", "labels."),
            auth,
            insecure,
            ca_cert,
            filters,
            batch_size: o.parse("batchSize", 1000, "a number of metrics (0: no limit)")?,
            concurrency: o.positive("concurrencyLimit", 5)?,
            pre_cache: !o.bool("disablePreCache", false)?,
            timeout: o.duration("timeout", Duration::from_secs(10))?,
        })
    }

    pub fn name(&self) -> String {
        format!("hawkular:{}?tenant={}", self.base, self.tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<HawkularConfig, ConfigError> {
        HawkularConfig::from_uri(&s.parse().unwrap())
    }

    #[test]
    fn heapster_defaults_and_every_option() {
        let c = parse("hawkular:http://hawkular:8080").unwrap();
        assert_eq!(c.base.as_str(), "http://hawkular:8080/hawkular/metrics");
        assert_eq!(
            (c.tenant.as_str(), c.label_tag_prefix.as_str(), c.batch_size, c.concurrency),
            ("heapster", "labels.", 1000, 5)
        );
        assert!(c.pre_cache && c.auth == Auth::None && c.filters.is_empty());
        assert_eq!(c.name(), "hawkular:http://hawkular:8080/hawkular/metrics?tenant=heapster");
        let c = parse(
            "hawkular:https://h/custom/?tenant=t&labelToTenant=namespace_name&labelNodeId=host_id&labelTagPrefix=l_\
             &user=u&pass=secret&caCert=/ca.pem&filter=label(container_name:^system.slice.*)&filter=name(^cpu/)\
             &batchSize=0&concurrencyLimit=2&disablePreCache=true&timeout=3s",
        )
        .unwrap();
        assert_eq!(c.base.as_str(), "https://h/custom");
        assert_eq!(
            (c.label_to_tenant.as_deref(), c.label_node_id.as_deref()),
            (Some("namespace_name"), Some("host_id"))
        );
        assert_eq!(c.auth, Auth::Basic { user: "u".into(), pass: "secret".into() });
        assert_eq!(
            (c.batch_size, c.concurrency, c.pre_cache, c.ca_cert.as_deref()),
            (0, 2, false, Some("/ca.pem".as_ref()))
        );
        assert_eq!(c.filters.len(), 2);
        let labels = heapster_model::Labels::from([("container_name", "system.slice/docker".to_owned())]);
        assert!(c.filters[0].drops(&labels, "memory/usage") && !c.filters[1].drops(&labels, "memory/usage"));
        assert!(c.filters[1].drops(&heapster_model::Labels::default(), "cpu/usage"));
        let c = parse("hawkular:http://h?useServiceAccount=true&tokenFile=/t").unwrap();
        assert_eq!(c.auth, Auth::TokenFile("/t".into()));
    }

    #[test]
    fn bad_options_and_heapsters_refused_combinations_are_one_line() {
        for (uri, says) in [
            ("hawkular:ftp://h", "expected http(s)://host"),
            ("hawkular:http://h?tenat=x", "unknown hawkular option \"tenat\""),
            ("hawkular:http://h?filter=label(x)", "filter=\"label(x)\": missing : in label(name:regexp)"),
            ("hawkular:http://h?filter=size(1)", "unknown filter type \"size\""),
            ("hawkular:http://h?filter=name((", "missing ) at the end"),
            ("hawkular:http://h?filter=name(()", "bad regexp \"(\": unclosed group"),
            ("hawkular:http://h?insecure=true&caCert=/c", "insecure= cannot be combined with caCert="),
            (
                "hawkular:http://h?user=u&pass=secret&useServiceAccount=true",
                "cannot be combined with useServiceAccount",
            ),
            ("hawkular:http://h?user=u", "user= needs pass="),
            ("hawkular:http://h?auth=/kubeconfig", "auth= (a kubeconfig for TLS) is not supported"),
            ("hawkular:http://h?batchSize=-1", "batchSize=\"-1\""),
            ("hawkular:http://h?concurrencyLimit=0", "concurrencyLimit=\"0\""),
            ("hawkular:http://h?disablePreCache=x", "disablePreCache=\"x\""),
        ] {
            let e = parse(uri).unwrap_err().to_string();
            assert!(e.contains(says), "{uri}: {e}");
            assert!(e.starts_with("--sink=hawkular"), "{e}");
            assert!(!e.contains('\n') && !e.contains("secret"), "{e}");
        }
    }
}
