//! The user-facing options of `--sink=influxdb:...`, parsed and checked once at start-up so that a typo stops
//! heapster with one clear line instead of surfacing as write errors an hour later.

use crate::ConfigError;
use heapster_model::SpecUri;
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

/// The options this sink accepts, for the error message of an unknown one.
const OPTIONS: &[&str] = &[
    "user",
    "pw",
    "db",
    "retention",
    "secure",
    "insecuressl",
    "withfields",
    "cluster_name",
    "disable_counter_metrics",
    "concurrency",
    "schema",
    "timeout",
    "batch_points",
    "token",
    "org",
    "bucket",
    "gzip",
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
        let err = |reason: String| ConfigError { uri: redacted(uri), reason };
        for (k, _) in &uri.options {
            if !OPTIONS.contains(&k.as_str()) {
                return Err(err(format!("unknown influxdb option {k:?}; known: {}", OPTIONS.join(", "))));
            }
        }
        let target = if uri.target.is_empty() { "http://localhost:8086" } else { uri.target.as_str() };
        // Heapster took a bare `host:port`; accept it too.
        let target = if target.contains("://") { target.to_owned() } else { format!("http://{target}") };
        let mut url = url::Url::parse(&target).map_err(|e| err(format!("{target:?} is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(err(format!("{target:?}: expected http://host:port or https://host:port")));
        }
        let flag = |name: &str| -> Result<bool, ConfigError> {
            match uri.option(name) {
                None => Ok(false),
                Some(v) => parse_bool(v).ok_or_else(|| err(format!("{name}={v:?}: expected true or false"))),
            }
        };
        if flag("secure")? && url.scheme() == "http" {
            url.set_scheme("https").expect("http -> https");
        }
        let retention = match uri.option("retention") {
            None | Some("") | Some("0") => None,
            Some(r) if valid_duration(r) => Some(r.to_owned()),
            Some(r) => {
                return Err(err(format!(
                    "retention={r:?}: expected an InfluxQL duration such as 7d, 168h or 2w (or INF, or 0 for the \
                     server's default)"
                )));
            }
        };
        let with_fields = flag("withfields")?;
        let schema = match (uri.option("schema"), with_fields) {
            (None | Some("") | Some("heapster"), false) => Schema::Heapster,
            (None | Some("") | Some("heapster"), true) => Schema::WithFields,
            (Some("legacy"), false) => Schema::Legacy,
            (Some("legacy"), true) => return Err(err("schema=legacy and withfields=true exclude each other".into())),
            (Some(s), _) => return Err(err(format!("schema={s:?}: expected heapster (the default) or legacy"))),
        };
        let positive = |name: &str, default: usize| -> Result<usize, ConfigError> {
            match uri.option(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| err(format!("{name}={v:?}: expected a whole number above 0"))),
            }
        };
        let timeout = match uri.option("timeout") {
            None => Duration::from_secs(10),
            Some(v) => humantime_like(v).ok_or_else(|| err(format!("timeout={v:?}: expected a duration like 10s")))?,
        };
        let db = uri.option("db").unwrap_or("k8s").to_owned();
        if db.is_empty() {
            return Err(err("db= is empty: name the database (Heapster's default is k8s)".into()));
        }
        let api = if ["token", "org", "bucket"].iter().any(|o| uri.option(o).is_some()) {
            if let Some((o, instead)) = V1_ONLY.iter().find(|(o, _)| uri.option(o).is_some()) {
                return Err(err(format!(
                    "{o}= is an InfluxDB 1.x option, but token=/org=/bucket= select the 2.x/3.x write API: {instead}"
                )));
            }
            let bucket = match uri.option("bucket") {
                Some(b) if !b.is_empty() => b.to_owned(),
                Some(_) => return Err(err("bucket= is empty: name the bucket to write to".into())),
                None => {
                    return Err(err(
                        "the 2.x/3.x write API (selected by token= or org=) needs bucket=: name the bucket to write \
                         to (InfluxDB 3: the database)"
                            .into(),
                    ));
                }
            };
            let token = match uri.option("token") {
                Some("") => {
                    return Err(err("token= is empty: give the API token, or leave token out for a server without \
                         authentication"
                        .into()));
                }
                Some(t) if !t.bytes().all(|b| b.is_ascii_graphic()) => {
                    return Err(err("token= holds spaces or characters an HTTP header cannot carry".into()));
                }
                t => t.map(str::to_owned),
            };
            let org = match uri.option("org") {
                Some("") => return Err(err("org= is empty: name the organisation, or leave org out".into())),
                o => o.map(str::to_owned),
            };
            Api::V2 { token, org, bucket }
        } else {
            Api::V1
        };
        let gzip = match uri.option("gzip") {
            None => true,
            Some(v) => parse_bool(v).ok_or_else(|| err(format!("gzip={v:?}: expected true or false")))?,
        };
        Ok(InfluxdbConfig {
            url,
            user: uri.option("user").unwrap_or("root").to_owned(),
            password: uri.option("pw").unwrap_or("root").to_owned(),
            db,
            retention,
            insecure_ssl: flag("insecuressl")?,
            schema,
            cluster_name: uri.option("cluster_name").unwrap_or("default").to_owned(),
            cluster_name_set: uri.option("cluster_name").is_some(),
            disable_counter_metrics: flag("disable_counter_metrics")?,
            concurrency: positive("concurrency", 1)?,
            timeout,
            batch_points: positive("batch_points", 10_000)?,
            api,
            gzip,
        })
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

/// The `--sink` value with secrets (`pw`, `token`) masked, for error messages that end up in logs.
fn redacted(uri: &SpecUri) -> String {
    let mut u = uri.clone();
    for (k, v) in &mut u.options {
        if k == "pw" || k == "token" {
            *v = "***".into();
        }
    }
    u.to_string()
}

/// Go's `strconv.ParseBool`, which Heapster used, so old manifests keep working.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
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

/// A duration such as `500ms`, `10s` or `1m` for the request timeout.
fn humantime_like(v: &str) -> Option<Duration> {
    let (num, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        _ => return None,
    };
    (!d.is_zero()).then_some(d)
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
    fn durations() {
        for ok in ["7d", "168h", "1h30m", "2w", "INF", "500ms"] {
            assert!(valid_duration(ok), "{ok}");
        }
        for bad in ["7", "d", "7days", "-1h", "1.5h"] {
            assert!(!valid_duration(bad), "{bad}");
        }
    }
}
