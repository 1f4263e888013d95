//! The options of `--sink=riemann:http://host:5555?...`, shared by the metrics and the event sink as Heapster's
//! `common/riemann` shared them.

use crate::ConfigError;
use crate::util::transport::Endpoint;
use heapster_model::{OptionSpec, Options, SpecUri};

#[derive(Debug, Clone, PartialEq)]
pub struct RiemannConfig {
    pub endpoint: Endpoint,
    /// Seconds each event stays valid in Riemann's index.
    pub ttl: f32,
    /// The metrics' `state`; empty: none (events carry their own: `ok` for Normal, `warning` otherwise).
    pub state: String,
    pub tags: Vec<String>,
    /// Events per message.
    pub batch_size: usize,
    /// Whether the event sink forwards Kubernetes events (Heapster's docs; its code ignored the option).
    pub store_events: bool,
}

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("ttl", "60", "seconds each event stays valid in Riemann's index"),
    OptionSpec::new("state", "", "the state of every metric event (default: none)"),
    OptionSpec::new("tags", "heapster", "a tag of every event; repeat tags= for several"),
    OptionSpec::new("batchsize", "1000", "events per message"),
    OptionSpec::new("storeEvents", "true", "whether the event sink forwards Kubernetes events"),
];

impl RiemannConfig {
    pub fn from_uri(uri: &SpecUri) -> Result<Self, ConfigError> {
        let o = Options::new("--sink", uri, OPTIONS)?;
        // Heapster's examples write http://; Riemann's TCP port speaks protobuf, not HTTP, whatever the scheme.
        let endpoint = Endpoint::from_target(&uri.target, &["http", "tcp", "riemann"], "riemann-heapster", 5555)
            .map_err(|e| o.error(e))?;
        let ttl: f32 = o.parse("ttl", 60.0, "a number of seconds above 0")?;
        if !(ttl.is_finite() && ttl > 0.0) {
            return Err(o.error(format!("ttl={ttl}: expected a number of seconds above 0")));
        }
        let state = o.string("state", "");
        if state.len() > 255 {
            return Err(o.error("state= is longer than the 255 bytes Riemann takes"));
        }
        let tags: Vec<String> = uri.options.iter().filter(|(k, _)| k == "tags").map(|(_, v)| v.clone()).collect();
        if tags.iter().any(String::is_empty) {
            return Err(o.error("tags= is empty: give a tag, or leave tags out for the default heapster"));
        }
        let tags = if tags.is_empty() { vec!["heapster".to_owned()] } else { tags };
        Ok(RiemannConfig {
            endpoint,
            ttl,
            state,
            tags,
            batch_size: o.positive("batchsize", 1000)?,
            store_events: o.bool("storeEvents", true)?,
        })
    }

    pub fn name(&self) -> String {
        format!("riemann:tcp://{}", self.endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<RiemannConfig, ConfigError> {
        RiemannConfig::from_uri(&s.parse().unwrap())
    }

    #[test]
    fn heapster_defaults_and_its_documented_example() {
        let c = parse("riemann:http://localhost:5555?ttl=120&state=ok&tags=foobar&batchsize=150").unwrap();
        assert_eq!(c.endpoint.to_string(), "localhost:5555");
        assert_eq!((c.ttl, c.state.as_str(), c.tags.clone(), c.batch_size), (120.0, "ok", vec!["foobar".into()], 150));
        let d = parse("riemann").unwrap();
        assert_eq!(d.endpoint.to_string(), "riemann-heapster:5555");
        assert_eq!(
            (d.ttl, d.state.as_str(), d.tags, d.batch_size, d.store_events),
            (60.0, "", vec!["heapster".into()], 1000, true)
        );
        assert_eq!(parse("riemann:r:5556?tags=a&tags=b&storeEvents=false").unwrap().tags, ["a", "b"]);
        assert!(!parse("riemann:tcp://r?storeEvents=false").unwrap().store_events);
    }

    #[test]
    fn bad_options_are_one_clear_line() {
        for (uri, says) in [
            ("riemann:http://h?ttl=soon", "ttl=\"soon\""),
            ("riemann:http://h?ttl=-1", "ttl=-1"),
            ("riemann:http://h?batchsize=0", "batchsize=\"0\""),
            ("riemann:http://h?tags=", "tags= is empty"),
            ("riemann:http://h?storeEvents=maybe", "storeEvents=\"maybe\""),
            ("riemann:udp://h", "expected http://HOST:5555"),
            ("riemann:http://h?host=x", "unknown riemann option \"host\""),
        ] {
            let e = parse(uri).unwrap_err().to_string();
            assert!(e.contains(says), "{uri}: {e}");
            assert!(e.starts_with("--sink=riemann") && !e.contains('\n'), "{e}");
        }
    }
}
