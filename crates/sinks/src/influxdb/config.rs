//! The user-facing options of `--sink=influxdb:...`, parsed and checked once at start-up so that a typo stops
//! heapster with one clear line instead of surfacing as write errors an hour later.

use crate::ConfigError;
use heapster_model::{OptionSpec, Options, SpecUri};
use std::time::Duration;

/// Which series layout the sink writes. Both are options of one sink so that a user can move dashboards from
/// one to the other by changing a flag, not a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Heapster 1.x: measurement = metric name, field `value`. What Heapster's Grafana dashboards query.
    Heapster,
    /// Heapster 1.x with `withfields=true`: measurement = the metric's group (`cpu`), field = the rest
    /// (`usage_rate`), so one row holds a whole group.
    WithFields,
    /// The seed's (Heapster before 1.0): measurement `<metric>_<units>_<type>`, units left out for counts.
    Legacy,
}

/// Which write API the sink speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Api {
    /// InfluxDB 1.x: `POST /write?db=`, basic auth (`user=`, `pw=`), the database created when missing.
    V1,
    /// InfluxDB 2.x/3.x, and servers that speak its write API (VictoriaMetrics): `POST
    /// /api/v2/write?org=&bucket=`, `Authorization: Token <token>`. Nothing is created: in 2.x a bucket belongs to
    /// an organisation and is made with its own retention by whoever administers the server.
    V2 {
        /// None for a server without authentication (InfluxDB 3 Core `--without-auth`, VictoriaMetrics).
        token: Option<String>,
        /// Required by InfluxDB 2 OSS; InfluxDB Cloud and 3.x take the token's organisation and ignore it.
        org: Option<String>,
        /// The bucket (InfluxDB 3: the database).
        bucket: String,
    },
}

/// Everything the InfluxDB sink needs to know, with Heapster's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct InfluxdbConfig {
    /// Base URL of the server (`http://host:8086`), with `https` when `secure=true`. A path is kept, for
    /// servers behind a prefixing proxy.
    pub url: url::Url,
    /// Heapster always sent `root`/`root`; a server without auth ignores them, so the default stays.
    pub user: String,
    pub password: String,
    pub db: String,
    /// The database's duration as InfluxQL spells it (`7d`, `168h`); `None` keeps the server's default
    /// (infinite). Heapster's `0` means the same.
    pub retention: Option<String>,
    /// Skip certificate checks, for self-signed test servers (Heapster's `insecuressl`).
    pub insecure_ssl: bool,
    pub schema: Schema,
    /// Added as a tag to every point (Heapster: `default`), so several clusters can share a database.
    pub cluster_name: String,
    /// True when `cluster_name` was given; the legacy schema only tags it then, as the seed had no such tag.
    pub cluster_name_set: bool,
    /// Leave out cumulative metrics (their `_rate` twins are kept), as Heapster's option did, to save series.
    pub disable_counter_metrics: bool,
    /// Requests of one batch in flight at once.
    pub concurrency: usize,
    /// Deadline of one HTTP request. Heapster had none, and a hung server hung the sink.
    pub timeout: Duration,
    /// Points per write request; InfluxDB recommends 5,000-10,000.
    pub batch_points: usize,
    /// 1.x (`db`, `user`, `pw`, `retention` apply) or the 2.x/3.x API (`token`, `org`, `bucket`).
    pub api: Api,
    /// Request bodies gzip-compressed (`Content-Encoding: gzip`); line protocol shrinks about tenfold.
    pub gzip: bool,
}

/// The options this sink accepts, with Heapster's defaults; `--help` prints them, [`Options`] refuses any other.
pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("user", "root", "1.x user (basic auth; a server without auth ignores it)"),
    OptionSpec { name: "pw", default: "root", help: "1.x password", secret: true },
    OptionSpec::new("db", "k8s", "1.x database, created when missing"),
    OptionSpec::new(
        "retention",
        "",
        "the database's duration when heapster creates it (InfluxQL: 7d, 168h, INF; 0: the server's default)",
    ),
    OptionSpec::new("secure", "false", "https instead of http"),
    OptionSpec::new("insecuressl", "false", "skip certificate checks (self-signed test servers)"),
    OptionSpec::new("withfields", "false", "one measurement per metric group, one field per metric (Heapster 1.x)"),
    OptionSpec::new("cluster_name", "default", "the cluster_name tag of every point"),
    OptionSpec::new("disable_counter_metrics", "false", "leave out cumulative metrics (their rates are kept)"),
    OptionSpec::new("concurrency", "1", "requests of one batch in flight at once"),
    OptionSpec::new("schema", "heapster", "heapster (Heapster 1.x's series) or legacy (before Heapster 1.0)"),
    OptionSpec::new("timeout", "10s", "deadline of one HTTP request"),
    OptionSpec::new("batch_points", "10000", "points per write request"),
    OptionSpec::secret("token", "2.x/3.x API token (selects the /api/v2/write API)"),
    OptionSpec::new("org", "", "2.x organisation (selects the /api/v2/write API)"),
    OptionSpec::new("bucket", "", "2.x/3.x bucket, or InfluxDB 3's database (selects the /api/v2/write API)"),
    OptionSpec::new("gzip", "true", "gzip-compressed request bodies"),
];

/// Options that only the 1.x API has, and what to use with the 2.x/3.x API instead.
const V1_ONLY: &[(&str, &str)] = &[
    ("db", "the 2.x/3.x API writes to bucket= (InfluxDB 3: the database's name)"),
    ("user", "the 2.x/3.x API authenticates with token="),
    ("pw", "the 2.x/3.x API authenticates with token="),
    (
        "retention",
        "heapster creates nothing through the 2.x/3.x API: give the bucket its retention where it is made \
         (influx bucket create --retention 7d)",
    ),
];

impl InfluxdbConfig {
    /// Parses `--sink=influxdb:URL?options`. Any unknown option or bad value is an error naming it.
    pub fn from_uri(uri: &SpecUri) -> Result<Self, ConfigError> {
        Self::from_options(&Options::new("--sink", uri, OPTIONS)?)
    }

    /// The options of `--sink` or `--historical_source`, which take the same ones; errors name the flag given.
    pub fn from_options(o: &Options) -> Result<Self, ConfigError> {
        let uri = o.uri();
        let target = if uri.target.is_empty() { "http://localhost:8086" } else { uri.target.as_str() };
        // Heapster took a bare `host:port`; accept it too.
        let target = if target.contains("://") { target.to_owned() } else { format!("http://{target}") };
        let mut url = url::Url::parse(&target).map_err(|e| o.error(format!("{target:?} is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(o.error(format!("{target:?}: expected http://host:port or https://host:port")));
        }
        if o.bool("secure", false)? && url.scheme() == "http" {
            url.set_scheme("https").expect("http -> https");
        }
        let retention = match o.get("retention") {
            None | Some("") | Some("0") => None,
            Some(r) if valid_duration(r) => Some(r.to_owned()),
            Some(r) => {
                return Err(o.error(format!(
                    "retention={r:?}: expected an InfluxQL duration such as 7d, 168h or 2w (or INF, or 0 for the \
                     server's default)"
                )));
            }
        };
        let with_fields = o.bool("withfields", false)?;
        let schema = match (o.get("schema"), with_fields) {
            (None | Some("") | Some("heapster"), false) => Schema::Heapster,
            (None | Some("") | Some("heapster"), true) => Schema::WithFields,
            (Some("legacy"), false) => Schema::Legacy,
            (Some("legacy"), true) => return Err(o.error("schema=legacy and withfields=true exclude each other")),
            (Some(s), _) => return Err(o.error(format!("schema={s:?}: expected heapster (the default) or legacy"))),
        };
        let db = o.string("db", "k8s");
        if db.is_empty() {
            return Err(o.error("db= is empty: name the database (Heapster's default is k8s)"));
        }
        let api = if ["token", "org", "bucket"].iter().any(|n| o.has(n)) {
            if let Some((n, instead)) = V1_ONLY.iter().find(|(n, _)| o.has(n)) {
                return Err(o.error(format!(
                    "{n}= is an InfluxDB 1.x option, but token=/org=/bucket= select the 2.x/3.x write API: {instead}"
                )));
            }
            let bucket = match o.get("bucket") {
                Some(b) if !b.is_empty() => b.to_owned(),
                Some(_) => return Err(o.error("bucket= is empty: name the bucket to write to")),
                None => {
                    return Err(o.error(
                        "the 2.x/3.x write API (selected by token= or org=) needs bucket=: name the bucket to write \
                         to (InfluxDB 3: the database)",
                    ));
                }
            };
            let token = match o.get("token") {
                Some("") => {
                    return Err(o.error(
                        "token= is empty: give the API token, or leave token out for a server without authentication",
                    ));
                }
                Some(t) if !t.bytes().all(|b| b.is_ascii_graphic()) => {
                    return Err(o.error("token= holds spaces or characters an HTTP header cannot carry"));
                }
                t => t.map(str::to_owned),
            };
            let org = match o.get("org") {
                Some("") => return Err(o.error("org= is empty: name the organisation, or leave org out")),
                org => org.map(str::to_owned),
            };
            Api::V2 { token, org, bucket }
        } else {
            Api::V1
        };
        Ok(InfluxdbConfig {
            url,
            user: o.string("user", "root"),
            password: o.string("pw", "root"),
            db,
            retention,
            insecure_ssl: o.bool("insecuressl", false)?,
            schema,
            cluster_name: o.string("cluster_name", "default"),
            cluster_name_set: o.has("cluster_name"),
            disable_counter_metrics: o.bool("disable_counter_metrics", false)?,
            concurrency: o.positive("concurrency", 1)?,
            timeout: o.duration("timeout", Duration::from_secs(10))?,
            batch_points: o.positive("batch_points", 10_000)?,
            api,
            gzip: o.bool("gzip", true)?,
        })
    }

    /// The sink's name in logs and on `/metrics`: `influxdb:` with the URL and [`InfluxdbConfig::destination`],
    /// without credentials.
    pub fn name(&self) -> String {
        let mut shown = self.url.clone();
        shown.set_query(Some(&self.destination()));
        format!("influxdb:{shown}")
    }

    /// Where the points go, for the sink's name in logs and on `/metrics`: `db=k8s`, or `org=o&bucket=b`.
    /// Credentials never appear in it.
    pub fn destination(&self) -> String {
        match &self.api {
            Api::V1 => format!("db={}", self.db),
            Api::V2 { org: Some(org), bucket, .. } => format!("org={org}&bucket={bucket}"),
            Api::V2 { org: None, bucket, .. } => format!("bucket={bucket}"),
        }
    }
}

/// An InfluxQL duration literal (`1h30m`, `7d`) or `INF`: checked here so that a bad one fails at start-up, not
/// at the first `CREATE DATABASE`.
fn valid_duration(s: &str) -> bool {
    if s.eq_ignore_ascii_case("inf") {
        return true;
    }
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ns", "ms", "u", "µ", "s", "m", "h", "d", "w"].iter().find(|u| rest.starts_with(**u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<InfluxdbConfig, ConfigError> {
        InfluxdbConfig::from_uri(&s.parse().unwrap())
    }

    #[test]
    fn heapster_defaults() {
        let c = parse("influxdb:http://monitoring-influxdb:8086").unwrap();
        assert_eq!(c.url.as_str(), "http://monitoring-influxdb:8086/");
        assert_eq!((c.user.as_str(), c.password.as_str(), c.db.as_str()), ("root", "root", "k8s"));
        assert_eq!(c.schema, Schema::Heapster);
        assert_eq!(c.cluster_name, "default");
        assert_eq!(c.retention, None);
        assert_eq!(c.concurrency, 1);
        assert_eq!(c.api, Api::V1);
        assert!(c.gzip, "gzip is on by default");
        assert!(!parse("influxdb:http://h?gzip=false").unwrap().gzip);
    }

    #[test]
    fn the_2x_write_api() {
        let c = parse("influxdb:http://h:8086?token=s3cr%2Bt&org=acme&bucket=k8s%2Fautogen&cluster_name=prod").unwrap();
        let want = Api::V2 { token: Some("s3cr+t".into()), org: Some("acme".into()), bucket: "k8s/autogen".into() };
        assert_eq!(c.api, want);
        assert_eq!(c.destination(), "org=acme&bucket=k8s/autogen");
        assert!(c.gzip);
        // A server without authentication (VictoriaMetrics, InfluxDB 3 Core --without-auth) needs only a bucket.
        let c = parse("influxdb:http://h:8428?bucket=k8s&gzip=0").unwrap();
        assert_eq!(c.api, Api::V2 { token: None, org: None, bucket: "k8s".into() });
        assert_eq!(c.destination(), "bucket=k8s");
        assert!(!c.gzip);
        assert_eq!(parse("influxdb:http://h").unwrap().destination(), "db=k8s");
    }

    #[test]
    fn the_2x_write_api_refuses_what_it_cannot_honour() {
        for (uri, says) in [
            ("influxdb:http://h?token=t", "needs bucket="),
            ("influxdb:http://h?org=o", "needs bucket="),
            ("influxdb:http://h?token=t&bucket=", "bucket= is empty"),
            ("influxdb:http://h?token=&bucket=b", "token= is empty"),
            ("influxdb:http://h?token=a%0Ab&bucket=b", "cannot carry"),
            ("influxdb:http://h?org=&bucket=b", "org= is empty"),
            ("influxdb:http://h?bucket=b&db=k8s", "db= is an InfluxDB 1.x option"),
            ("influxdb:http://h?bucket=b&user=u", "authenticates with token="),
            ("influxdb:http://h?token=t&bucket=b&pw=p", "authenticates with token="),
            ("influxdb:http://h?bucket=b&retention=7d", "influx bucket create --retention"),
            ("influxdb:http://h?bucket=b&gzip=yes", "gzip=\"yes\""),
        ] {
            let e = parse(uri).unwrap_err().to_string();
            assert!(e.contains(says), "{uri}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        // Secrets stay out of error messages, which end up in logs.
        let e = parse("influxdb:http://h?token=s3cret&pw=hunter2").unwrap_err().to_string();
        assert!(!e.contains("s3cret") && !e.contains("hunter2") && e.contains("token=***"), "{e}");
    }

    #[test]
    fn every_heapster_option() {
        let c = parse(
            "influxdb:http://h:8086?user=u&pw=p&db=metrics&retention=7d&secure=true&insecuressl=1&withfields=true\
             &cluster_name=prod&disable_counter_metrics=true&concurrency=4",
        )
        .unwrap();
        assert_eq!(c.url.as_str(), "https://h:8086/");
        assert_eq!((c.user.as_str(), c.password.as_str(), c.db.as_str()), ("u", "p", "metrics"));
        assert_eq!(c.retention.as_deref(), Some("7d"));
        assert!(c.insecure_ssl && c.disable_counter_metrics && c.cluster_name_set);
        assert_eq!(c.schema, Schema::WithFields);
        assert_eq!(c.cluster_name, "prod");
        assert_eq!(c.concurrency, 4);
        assert_eq!(parse("influxdb:http://h:8086?schema=legacy").unwrap().schema, Schema::Legacy);
        assert_eq!(parse("influxdb:h:8086?retention=0").unwrap().url.as_str(), "http://h:8086/");
    }

    #[test]
    fn bad_options_are_one_clear_line() {
        for (uri, says) in [
            ("influxdb:http://h?dbname=x", "unknown influxdb option \"dbname\""),
            ("influxdb:http://h?secure=yes", "secure=\"yes\": expected true or false"),
            ("influxdb:http://h?retention=7days", "retention=\"7days\""),
            ("influxdb:http://h?concurrency=0", "concurrency=\"0\""),
            ("influxdb:http://h?schema=v2", "schema=\"v2\""),
            ("influxdb:http://h?schema=legacy&withfields=true", "exclude each other"),
            ("influxdb:ftp://h", "expected http://host:port"),
        ] {
            let e = parse(uri).unwrap_err().to_string();
            assert!(e.contains(says), "{uri}: {e}");
            assert!(e.starts_with("--sink=influxdb:"), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn the_defaults_help_shows_are_the_ones_parsing_uses() {
        let given: Vec<String> =
            OPTIONS.iter().filter(|o| !o.default.is_empty()).map(|o| format!("{}={}", o.name, o.default)).collect();
        let mut explicit = parse(&format!("influxdb:http://h?{}", given.join("&"))).unwrap();
        assert!(explicit.cluster_name_set);
        explicit.cluster_name_set = false;
        assert_eq!(explicit, parse("influxdb:http://h").unwrap());
    }

    #[test]
    fn durations() {
        for ok in ["7d", "168h", "1h30m", "2w", "INF", "500ms"] {
            assert!(valid_duration(ok), "{ok}");
        }
        for bad in ["7", "d", "7days", "-1h", "1.5h"] {
            assert!(!valid_duration(bad), "{bad}");
        }
    }
}
