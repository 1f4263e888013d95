//! The options of `--sink=kafka:?brokers=...`, shared by the metrics and the event sink as Heapster's
//! `common/kafka` shared them, with its names and defaults.

use crate::ConfigError;
use heapster_model::{OptionSpec, Options, SpecUri};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub cacert: Option<PathBuf>,
    /// The client certificate and its key, for brokers that ask for one (two-way TLS).
    pub cert_and_key: Option<(PathBuf, PathBuf)>,
    pub insecure: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `host:port` of each bootstrap broker; the rest of the cluster is learnt from their metadata.
    pub brokers: Vec<String>,
    pub metrics_topic: String,
    pub events_topic: String,
    pub compression: Compression,
    /// SASL PLAIN user and password.
    pub sasl: Option<(String, String)>,
    pub tls: Option<Tls>,
}

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("brokers", "", "a bootstrap broker HOST:PORT; repeat brokers= (or separate by commas) for several"),
    OptionSpec::new("timeseriestopic", "heapster-metrics", "the topic of the metrics sink"),
    OptionSpec::new("eventstopic", "heapster-events", "the topic of the event sink"),
    OptionSpec::new("compression", "none", "none, gzip or snappy (lz4 is not in this build)"),
    OptionSpec::new("format", "json", "the messages' format: json, Heapster's only one"),
    OptionSpec::new("user", "", "SASL PLAIN user; needs password="),
    OptionSpec::secret("password", "SASL PLAIN password; needs user="),
    OptionSpec::new("cacert", "", "PEM file of the CA that signed the brokers' certificates (turns TLS on)"),
    OptionSpec::new("cert", "", "PEM client certificate for two-way TLS; needs key="),
    OptionSpec::new("key", "", "PEM private key of cert="),
    OptionSpec::new("insecuressl", "false", "TLS without checking the brokers' certificates"),
];

impl KafkaConfig {
    pub fn from_uri(uri: &SpecUri) -> Result<Self, ConfigError> {
        let o = Options::new("--sink", uri, OPTIONS)?;
        if !uri.target.is_empty() {
            return Err(o.error(format!(
                "{:?} before `?` is not read: give the brokers as brokers=HOST:PORT (kafka:?brokers=...)",
                uri.target
            )));
        }
        let mut brokers = Vec::new();
        for (_, v) in uri.options.iter().filter(|(k, _)| k == "brokers") {
            for b in v.split(',').map(str::trim) {
                match b.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>())) {
                    Some((h, Ok(p))) if !h.is_empty() && p > 0 => brokers.push(b.to_owned()),
                    _ => return Err(o.error(format!("brokers={b:?}: expected HOST:PORT"))),
                }
            }
        }
        if brokers.is_empty() {
            return Err(o.error("brokers= is missing: there is no broker to connect to"));
        }
        let topic = |name: &str, default: &str| -> Result<String, ConfigError> {
            let t = o.string(name, default);
            // Kafka's own rule for topic names (Topic.validate): 1-249 of [a-zA-Z0-9._-], not `.` or `..`.
            let legal = t.bytes().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c));
            if t.is_empty() || t.len() > 249 || !legal || t == "." || t == ".." {
                return Err(o.error(format!("{name}={t:?}: Kafka topic names are 1-249 of a-z A-Z 0-9 . _ -")));
            }
            Ok(t)
        };
        let compression = match o.string("compression", "none").as_str() {
            "none" => Compression::None,
            "gzip" => Compression::Gzip,
            "snappy" => Compression::Snappy,
            "lz4" => {
                return Err(o.error(
                    "compression=lz4 is not in this build (its codec is a C library); use none, gzip or snappy",
                ));
            }
            c => return Err(o.error(format!("compression={c:?}: use none, gzip or snappy"))),
        };
        let format = o.string("format", "json");
        if format != "json" {
            return Err(o.error(format!("format={format:?}: json is the only format (Heapster's)")));
        }
        let sasl = match (o.non_empty("user"), o.non_empty("password")) {
            (None, None) => None,
            (Some(u), Some(p)) => Some((u.to_owned(), p.to_owned())),
            (Some(_), None) => return Err(o.error("user= needs password= (SASL PLAIN)")),
            (None, Some(_)) => return Err(o.error("password= needs user= (SASL PLAIN)")),
        };
        let path = |name: &str| o.non_empty(name).map(PathBuf::from);
        let cert_and_key = match (path("cert"), path("key")) {
            (None, None) => None,
            (Some(c), Some(k)) => Some((c, k)),
            (Some(_), None) => return Err(o.error("cert= needs key= (two-way TLS)")),
            (None, Some(_)) => return Err(o.error("key= needs cert= (two-way TLS)")),
        };
        let insecure = o.bool("insecuressl", false)?;
        let cacert = path("cacert");
        let tls =
            (cacert.is_some() || cert_and_key.is_some() || insecure).then_some(Tls { cacert, cert_and_key, insecure });
        Ok(KafkaConfig {
            brokers,
            metrics_topic: topic("timeseriestopic", "heapster-metrics")?,
            events_topic: topic("eventstopic", "heapster-events")?,
            compression,
            sasl,
            tls,
        })
    }

    /// The sink's name in logs and self-metrics: brokers and topic, never credentials.
    pub fn name(&self, topic: &str) -> String {
        format!("kafka:?brokers={}&topic={topic}", self.brokers.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<KafkaConfig, ConfigError> {
        KafkaConfig::from_uri(&s.parse().unwrap())
    }

    #[test]
    fn heapster_defaults_and_its_documented_examples() {
        let c = parse("kafka:?brokers=localhost:9092&brokers=localhost:9093&timeseriestopic=testseries").unwrap();
        assert_eq!(c.brokers, ["localhost:9092", "localhost:9093"]);
        assert_eq!((c.metrics_topic.as_str(), c.events_topic.as_str()), ("testseries", "heapster-events"));
        assert_eq!((c.compression, c.sasl, c.tls), (Compression::None, None, None));
        let e = parse("kafka:?brokers=localhost:9092&brokers=localhost:9093&eventstopic=testtopic").unwrap();
        assert_eq!((e.metrics_topic.as_str(), e.events_topic.as_str()), ("heapster-metrics", "testtopic"));
        assert_eq!(parse("kafka:?brokers=a:1,b:2").unwrap().brokers, ["a:1", "b:2"]);
    }

    #[test]
    fn compression_sasl_and_tls() {
        let c = parse("kafka:?brokers=k:9093&compression=gzip&user=u&password=p&cacert=/ca.pem&cert=/c.pem&key=/k.pem")
            .unwrap();
        assert_eq!(c.compression, Compression::Gzip);
        assert_eq!(c.sasl, Some(("u".into(), "p".into())));
        let tls = c.tls.unwrap();
        assert_eq!(tls.cacert, Some(PathBuf::from("/ca.pem")));
        assert_eq!(tls.cert_and_key, Some((PathBuf::from("/c.pem"), PathBuf::from("/k.pem"))));
        assert!(!tls.insecure);
        assert_eq!(parse("kafka:?brokers=k:1&compression=snappy").unwrap().compression, Compression::Snappy);
        assert!(parse("kafka:?brokers=k:1&insecuressl=true").unwrap().tls.unwrap().insecure);
        assert_eq!(parse("kafka:?brokers=k:1&insecuressl=false").unwrap().tls, None);
    }

    #[test]
    fn bad_options_are_one_clear_line_with_secrets_masked() {
        for (uri, says) in [
            ("kafka:?timeseriestopic=x", "brokers= is missing"),
            ("kafka:?brokers=k", "brokers=\"k\": expected HOST:PORT"),
            ("kafka:?brokers=k:0", "brokers=\"k:0\""),
            ("kafka:k:9092?brokers=k:1", "\"k:9092\" before `?` is not read"),
            ("kafka:?brokers=k:1&compression=lz4", "compression=lz4 is not in this build"),
            ("kafka:?brokers=k:1&compression=zstd", "compression=\"zstd\": use none, gzip or snappy"),
            ("kafka:?brokers=k:1&user=u", "user= needs password="),
            ("kafka:?brokers=k:1&password=hunter2", "password= needs user="),
            ("kafka:?brokers=k:1&cert=/c", "cert= needs key="),
            ("kafka:?brokers=k:1&key=/k", "key= needs cert="),
            ("kafka:?brokers=k:1&insecuressl=maybe", "insecuressl=\"maybe\""),
            ("kafka:?brokers=k:1&eventstopic=a/b", "eventstopic=\"a/b\": Kafka topic names"),
            ("kafka:?brokers=k:1&format=avro", "format=\"avro\": json is the only format"),
            ("kafka:?brokers=k:1&topic=x", "unknown kafka option \"topic\""),
        ] {
            let e = parse(uri).unwrap_err().to_string();
            assert!(e.contains(says), "{uri}: {e}");
            assert!(e.starts_with("--sink=kafka") && !e.contains('\n') && !e.contains("hunter2"), "{e}");
        }
    }
}
