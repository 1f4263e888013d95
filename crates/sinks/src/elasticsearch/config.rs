//! The options of `--sink=elasticsearch:...`, shared by the metrics and the event sink as Heapster's
//! `common/elasticsearch` shared them, read once so that a typo stops heapster with one line naming the option.

use crate::ConfigError;
use heapster_model::{OptionSpec, Options, SpecUri};
use std::time::Duration;

/// How documents are laid out in indices, which follows what the server's major version allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Elasticsearch 2 and 5, as Heapster wrote them: one index a day (`heapster-2026.12.03`) holding every
    /// family as its own mapping type (`cpu`, `memory`, ..., `events`), with `string` fields.
    Typed,
    /// Elasticsearch 6: one mapping type per index, so one index a day per family (`heapster-cpu-2026.12.03`),
    /// whose single type keeps the family's name; `text`/`keyword` fields.
    OneTypePerIndex,
    /// Elasticsearch 7 and 8: no mapping types at all; indices as for 6.
    Typeless,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ElasticsearchConfig {
    /// The base URL of each node, tried in turn.
    pub nodes: Vec<url::Url>,
    /// Basic auth, when both `esUserName` and `esUserSecret` are given (as Heapster required both).
    pub auth: Option<(String, String)>,
    /// How many more times one export sends what failed for now (a node down: to the next node; items the
    /// server was too busy for: those items) before leaving the batch to the sink's queue.
    pub max_retries: usize,
    /// Ask the server its version before the first write, and say so when it is not `ver`.
    pub health_check: bool,
    /// Accepted for Heapster's manifests; the nodes given are the ones written to.
    pub sniff: bool,
    pub startup_healthcheck_timeout: Duration,
    /// The prefix of every index, template and alias.
    pub index: String,
    /// Bulk requests of one batch in flight at once.
    pub bulk_workers: usize,
    /// `cluster_name` in every document's tags, so that several clusters can share indices.
    pub cluster_name: String,
    /// An ingest pipeline every document goes through (Elasticsearch 5 and later).
    pub pipeline: Option<String>,
    /// The server's major version.
    pub version: u8,
    pub timeout: Duration,
    pub insecure: bool,
    pub ca_file: Option<std::path::PathBuf>,
}

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("nodes", "", "a node's URL (http://host:9200); repeat for several; overrides the sink's URL"),
    OptionSpec::new("esUserName", "", "user for basic auth (with esUserSecret)"),
    OptionSpec { name: "esUserSecret", default: "", help: "password for basic auth", secret: true },
    OptionSpec::new("maxRetries", "0", "times one export retries what failed for now before queueing the batch"),
    OptionSpec::new("healthCheck", "true", "check the server's version before the first write"),
    OptionSpec::new("sniff", "true", "accepted for compatibility; only the nodes given are used"),
    OptionSpec::new("startupHealthcheckTimeout", "1", "seconds the start-up health check waits for an answer"),
    OptionSpec::new("index", "heapster", "prefix of the indices, templates and aliases"),
    OptionSpec::new("bulkWorkers", "5", "bulk requests in flight at once"),
    OptionSpec::new("cluster_name", "default", "cluster_name tag of every document"),
    OptionSpec::new("pipeline", "", "ingest pipeline for every document (Elasticsearch 5 and later)"),
    OptionSpec::new("ver", "5", "the server's major version: 2, 5, 6, 7 or 8"),
    OptionSpec::new("timeout", "10s", "deadline of each request"),
    OptionSpec::new("insecure", "false", "skip TLS certificate checks"),
    OptionSpec::new("ca_file", "", "PEM file of a CA to trust besides the system's (Elasticsearch 8's own CA)"),
];

impl ElasticsearchConfig {
    pub fn from_uri(uri: &SpecUri) -> Result<Self, ConfigError> {
        let o = Options::new("--sink", uri, OPTIONS)?;
        let given: Vec<&str> = uri.options.iter().filter(|(k, _)| k == "nodes").map(|(_, v)| v.as_str()).collect();
        let given = if given.is_empty() && !uri.target.is_empty() { vec![uri.target.as_str()] } else { given };
        if given.is_empty() {
            return Err(o.error("no node: give elasticsearch:http://HOST:9200 or nodes=http://HOST:9200"));
        }
        let nodes = given
            .iter()
            .map(|n| {
                url::Url::parse(n)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                    .map(|mut u| {
                        // A path prefix (a proxy's) stays the base of every request.
                        let path = format!("{}/", u.path().trim_end_matches('/'));
                        u.set_path(&path);
                        u
                    })
                    .ok_or_else(|| o.error(format!("node {n:?}: expected http://HOST:9200 or https://HOST:9200")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let auth = match (o.non_empty("esUserName"), o.non_empty("esUserSecret")) {
            (Some(u), Some(p)) => Some((u.to_owned(), p.to_owned())),
            (None, None) => None,
            _ => return Err(o.error("esUserName= and esUserSecret= go together: give both or neither")),
        };
        let version: u8 = o.parse("ver", 5, "2, 5, 6, 7 or 8")?;
        if !matches!(version, 2 | 5..=8) {
            return Err(o.error(format!("ver={version}: expected 2, 5, 6, 7 or 8")));
        }
        let pipeline = o.non_empty("pipeline").map(str::to_owned);
        if pipeline.is_some() && version == 2 {
            return Err(o.error("pipeline= needs Elasticsearch 5 or later (ver=2 has no ingest pipelines)"));
        }
        let index = o.string("index", "heapster");
        // Elasticsearch's own rules for index names, so that a bad one fails here rather than at every write.
        if index.is_empty()
            || index.starts_with(['-', '_', '+'])
            || index.chars().any(|c| c.is_uppercase() || " \"*\\<|,>/?#:".contains(c))
        {
            return Err(o.error(format!(
                "index={index:?}: expected a lower-case index name without spaces or any of \"*\\<|,>/?#: and not \
                 starting with -, _ or +"
            )));
        }
        // Heapster appended "s" and parsed a Go duration: a number of seconds, fractions allowed.
        let secs: f64 = o.parse("startupHealthcheckTimeout", 1.0, "a number of seconds")?;
        if !(secs.is_finite() && secs > 0.0) {
            return Err(o.error(format!("startupHealthcheckTimeout={secs}: expected a number of seconds above 0")));
        }
        Ok(ElasticsearchConfig {
            nodes,
            auth,
            max_retries: o.parse("maxRetries", 0, "a whole number (0: no retry within an export)")?,
            health_check: o.bool("healthCheck", true)?,
            sniff: o.bool("sniff", true)?,
            startup_healthcheck_timeout: Duration::from_secs_f64(secs),
            index,
            bulk_workers: o.positive("bulkWorkers", 5)?,
            cluster_name: o.string("cluster_name", "default"),
            pipeline,
            version,
            timeout: o.duration("timeout", Duration::from_secs(10))?,
            insecure: o.bool("insecure", false)?,
            ca_file: o.non_empty("ca_file").map(Into::into),
        })
    }

    pub fn layout(&self) -> Layout {
        match self.version {
            2 | 5 => Layout::Typed,
            6 => Layout::OneTypePerIndex,
            _ => Layout::Typeless,
        }
    }

    /// The sink's name in logs and self-metrics: its nodes and index, never its credentials.
    pub fn name(&self) -> String {
        let nodes: Vec<&str> = self.nodes.iter().map(|u| u.as_str().trim_end_matches('/')).collect();
        format!("elasticsearch:{}?index={}", nodes.join(","), self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ElasticsearchConfig, ConfigError> {
        ElasticsearchConfig::from_uri(&s.parse().unwrap())
    }

    #[test]
    fn heapster_defaults_and_its_documented_examples() {
        let c = parse("elasticsearch:?nodes=http://foo.com:9200&nodes=http://bar.com:9200").unwrap();
        assert_eq!(
            c.nodes.iter().map(url::Url::as_str).collect::<Vec<_>>(),
            ["http://foo.com:9200/", "http://bar.com:9200/"]
        );
        assert_eq!(
            (c.index.as_str(), c.cluster_name.as_str(), c.version, c.bulk_workers),
            ("heapster", "default", 5, 5)
        );
        assert_eq!(
            (c.max_retries, c.health_check, c.sniff, c.auth.clone(), c.pipeline.clone()),
            (0, true, true, None, None)
        );
        assert_eq!(c.startup_healthcheck_timeout, Duration::from_secs(1));
        assert_eq!(c.layout(), Layout::Typed);
        let c = parse("elasticsearch:http://es.example.com:9200?sniff=false&ver=7&esUserName=u&esUserSecret=p&index=k8s&maxRetries=3&bulkWorkers=2&cluster_name=prod&pipeline=geo&healthCheck=0&startupHealthcheckTimeout=5").unwrap();
        assert_eq!(c.nodes[0].as_str(), "http://es.example.com:9200/");
        assert_eq!(
            (c.sniff, c.version, c.layout(), c.auth.clone()),
            (false, 7, Layout::Typeless, Some(("u".into(), "p".into())))
        );
        assert_eq!((c.index.as_str(), c.max_retries, c.bulk_workers, c.cluster_name.as_str()), ("k8s", 3, 2, "prod"));
        assert_eq!(
            (c.pipeline.as_deref(), c.health_check, c.startup_healthcheck_timeout),
            (Some("geo"), false, Duration::from_secs(5))
        );
        assert_eq!(c.name(), "elasticsearch:http://es.example.com:9200?index=k8s");
        assert_eq!(parse("elasticsearch:http://h:9200?ver=6").unwrap().layout(), Layout::OneTypePerIndex);
        let half = parse("elasticsearch:http://h:9200?startupHealthcheckTimeout=0.5").unwrap();
        assert_eq!(half.startup_healthcheck_timeout, Duration::from_millis(500));
        // nodes= overrides the sink's URL, as Heapster's docs say.
        assert_eq!(
            parse("elasticsearch:http://dummy?nodes=https://n:9200").unwrap().nodes[0].as_str(),
            "https://n:9200/"
        );
    }

    #[test]
    fn bad_options_are_one_clear_line() {
        for (uri, says) in [
            ("elasticsearch", "no node"),
            ("elasticsearch:?nodes=foo:9200", "node \"foo:9200\""),
            ("elasticsearch:http://h?ver=3", "ver=3"),
            ("elasticsearch:http://h?ver=five", "ver=\"five\""),
            ("elasticsearch:http://h?esUserName=u", "esUserName= and esUserSecret="),
            ("elasticsearch:http://h?maxRetries=-1", "maxRetries=\"-1\""),
            ("elasticsearch:http://h?bulkWorkers=0", "bulkWorkers=\"0\""),
            ("elasticsearch:http://h?sniff=maybe", "sniff=\"maybe\""),
            ("elasticsearch:http://h?healthCheck=x", "healthCheck=\"x\""),
            ("elasticsearch:http://h?startupHealthcheckTimeout=1s", "startupHealthcheckTimeout=\"1s\""),
            ("elasticsearch:http://h?startupHealthcheckTimeout=0", "startupHealthcheckTimeout=0"),
            ("elasticsearch:http://h?index=Heapster", "index=\"Heapster\""),
            ("elasticsearch:http://h?ver=2&pipeline=p", "pipeline= needs Elasticsearch 5"),
            ("elasticsearch:http://h?idx=x", "unknown elasticsearch option \"idx\""),
        ] {
            let e = parse(uri).unwrap_err().to_string();
            assert!(e.contains(says), "{uri}: {e}");
            assert!(e.starts_with("--sink=elasticsearch") && !e.contains('\n'), "{e}");
        }
        let e = parse("elasticsearch:http://h?esUserName=u&esUserSecret=hunter2&ver=9").unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
