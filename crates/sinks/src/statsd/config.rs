//! The options of `--sink=statsd:udp://host:8125?...`, Heapster's names and defaults, checked once at start-up.

use crate::ConfigError;
use crate::util::transport::Endpoint;
use heapster_model::{OptionSpec, Options, SpecUri};
use std::collections::{BTreeSet, HashMap};

/// Which statsd dialect the lines are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Etsy's: everything is in the dotted name (`node.<node>.namespace.<ns>.pod.<pod>.<metric>`), as Graphite
    /// stores it behind the daemon.
    Etsy,
    /// Telegraf's and InfluxDB's: `<metric>,tag=value,...`, the labels as tags.
    Influx,
}

/// How label names are rewritten after renaming (Heapster's `labelStyle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelStyle {
    /// As they are (snake case: `namespace_name`).
    Snake,
    /// `namespaceName`.
    LowerCamel,
    /// `NamespaceName`.
    UpperCamel,
}

/// Everything the statsd sink needs to know, Heapster's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsdConfig {
    pub endpoint: Endpoint,
    /// Etsy: put before the name with a dot; influx: put before the name as it is (Heapster's doc example ends
    /// it with a dot).
    pub prefix: String,
    /// Lines per datagram at most; a datagram also stays under 1432 bytes.
    pub metrics_per_msg: usize,
    pub protocol: Protocol,
    /// Label name (as written, after `.`/`=`/`|` became `_`) -> the name to use instead.
    pub rename_labels: HashMap<String, String>,
    /// Labels kept as tags (influx) or user labels (`labels`, etsy); `None`: all.
    pub allowed_labels: Option<BTreeSet<String>>,
    pub label_style: LabelStyle,
}

/// Heapster's options and defaults; `--help` prints them, [`Options`] refuses any other.
pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("prefix", "", "put before every metric name"),
    OptionSpec::new("numMetricsPerMsg", "5", "metrics per UDP datagram at most (a datagram stays under 1432 bytes)"),
    OptionSpec::new("protocolType", "etsystatsd", "etsystatsd (names only) or influxstatsd (name,tag=value)"),
    OptionSpec::new("renameLabels", "", "old:new,old2:new2: label names to write differently"),
    OptionSpec::new("allowedLabels", "", "comma-separated labels to keep (default: all)"),
    OptionSpec::new("labelStyle", "", "lowerCamelCase or upperCamelCase label names (default: as they are)"),
];

impl StatsdConfig {
    pub fn from_uri(uri: &SpecUri) -> Result<Self, ConfigError> {
        let o = Options::new("--sink", uri, OPTIONS)?;
        let endpoint = Endpoint::from_target(&uri.target, &["udp"], "localhost", 8125).map_err(|e| o.error(e))?;
        let protocol = match o.string("protocolType", "etsystatsd").to_ascii_lowercase().as_str() {
            "etsystatsd" => Protocol::Etsy,
            "influxstatsd" => Protocol::Influx,
            other => {
                return Err(
                    o.error(format!("protocolType={other:?}: expected etsystatsd (the default) or influxstatsd"))
                );
            }
        };
        let mut rename_labels = HashMap::new();
        for pair in o.non_empty("renameLabels").into_iter().flat_map(|v| v.split(',')) {
            match pair.split_once(':') {
                Some((old, new)) if !old.is_empty() && !new.is_empty() => {
                    rename_labels.insert(old.to_owned(), new.to_owned());
                }
                _ => return Err(o.error(format!("renameLabels: {pair:?} is not old:new (pairs separated by commas)"))),
            }
        }
        let allowed_labels = o
            .non_empty("allowedLabels")
            .map(|v| v.split(',').filter(|l| !l.is_empty()).map(str::to_owned).collect::<BTreeSet<_>>())
            .filter(|l| !l.is_empty());
        let label_style = match o.non_empty("labelStyle") {
            None => LabelStyle::Snake,
            Some("lowerCamelCase") => LabelStyle::LowerCamel,
            Some("upperCamelCase") => LabelStyle::UpperCamel,
            Some(s) => return Err(o.error(format!("labelStyle={s:?}: expected lowerCamelCase or upperCamelCase"))),
        };
        Ok(StatsdConfig {
            endpoint,
            prefix: o.string("prefix", ""),
            metrics_per_msg: o.positive("numMetricsPerMsg", 5)?,
            protocol,
            rename_labels,
            allowed_labels,
            label_style,
        })
    }

    /// The sink's name in logs and on `/metrics`.
    pub fn name(&self) -> String {
        let protocol = match self.protocol {
            Protocol::Etsy => "etsystatsd",
            Protocol::Influx => "influxstatsd",
        };
        format!("statsd:udp://{}?protocolType={protocol}", self.endpoint)
    }

    /// Whether label `name` may be written.
    pub fn allowed(&self, name: &str) -> bool {
        self.allowed_labels.as_ref().is_none_or(|a| a.contains(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<StatsdConfig, ConfigError> {
        StatsdConfig::from_uri(&s.parse().unwrap())
    }

    #[test]
    fn heapster_defaults_and_its_documented_example() {
        let c = parse("statsd:udp://127.0.0.1:4125").unwrap();
        assert_eq!((c.prefix.as_str(), c.metrics_per_msg, c.protocol), ("", 5, Protocol::Etsy));
        assert_eq!((c.allowed_labels.clone(), c.label_style), (None, LabelStyle::Snake));
        assert_eq!(c.name(), "statsd:udp://127.0.0.1:4125?protocolType=etsystatsd");
        assert_eq!(parse("statsd").unwrap().endpoint.to_string(), "localhost:8125");

        let c = parse(
            "statsd:udp://127.0.0.1:4125?prefix=kubernetes.example.&protocolType=influxstatsd&numMetricsPerMsg=10\
             &renameLabels=type:k8s_type,host_name:k8s_host_name&allowedLabels=container_name,namespace_name,type,\
             host_name&labelStyle=lowerCamelCase",
        )
        .unwrap();
        assert_eq!((c.prefix.as_str(), c.metrics_per_msg, c.protocol), ("kubernetes.example.", 10, Protocol::Influx));
        assert_eq!(c.rename_labels["type"], "k8s_type");
        assert_eq!(c.rename_labels["host_name"], "k8s_host_name");
        assert!(c.allowed("type") && c.allowed("host_name") && !c.allowed("pod_name"));
        assert_eq!(c.label_style, LabelStyle::LowerCamel);
        assert_eq!(parse("statsd:udp://h?protocolType=InfluxStatsD").unwrap().protocol, Protocol::Influx);
        assert_eq!(parse("statsd:udp://h?labelStyle=upperCamelCase").unwrap().label_style, LabelStyle::UpperCamel);
    }

    #[test]
    fn bad_options_are_one_clear_line() {
        for (uri, says) in [
            ("statsd:udp://h?numMetricsPerMsg=0", "numMetricsPerMsg=\"0\""),
            ("statsd:udp://h?numMetricsPerMsg=many", "numMetricsPerMsg=\"many\""),
            ("statsd:udp://h?protocolType=dogstatsd", "protocolType=\"dogstatsd\""),
            ("statsd:udp://h?renameLabels=type", "renameLabels: \"type\" is not old:new"),
            ("statsd:udp://h?renameLabels=a:b,:c", "renameLabels: \":c\""),
            ("statsd:udp://h?labelStyle=kebab", "labelStyle=\"kebab\""),
            ("statsd:udp://h?prefixx=a", "unknown statsd option \"prefixx\""),
            ("statsd:tcp://h:8125", "expected udp://HOST:8125"),
        ] {
            let e = parse(uri).unwrap_err().to_string();
            assert!(e.contains(says), "{uri}: {e}");
            assert!(e.starts_with("--sink=statsd"), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
