//! The one reader of `--source` and `--sink` options (`influxdb:http://h:8086?db=k8s&withfields=true`).
//!
//! Every source and sink declares its options once, as [`OptionSpec`]s: that list refuses unknown options (with
//! the known ones named), masks secrets in every message, and is what `heapster --help` prints. Values are read in
//! the original's spellings, so old manifests keep working: Go's `strconv.ParseBool` for booleans (`1`, `t`,
//! `True`, ...) and Go's `time.ParseDuration` for durations (`10s`, `1m30s`, `1.5h`).

use crate::SpecUri;
use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::time::Duration;

/// One option a source or sink accepts.
#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    pub name: &'static str,
    /// The value used when the option is absent, as the user would write it; empty when there is none.
    pub default: &'static str,
    pub help: &'static str,
    /// Masked as `***` wherever the `--source`/`--sink` value is shown (passwords, tokens, keys).
    pub secret: bool,
}

impl OptionSpec {
    pub const fn new(name: &'static str, default: &'static str, help: &'static str) -> Self {
        OptionSpec { name, default, help, secret: false }
    }

    pub const fn secret(name: &'static str, help: &'static str) -> Self {
        OptionSpec { name, default: "", help, secret: true }
    }
}

/// One kind of source or sink as `--help` shows it; the sources' and sinks' tables hold one each.
#[derive(Debug, Clone, Copy)]
pub struct KindDoc {
    /// The key before `:` (`influxdb`), and other keys that mean the same kind (`kubernetes`).
    pub key: &'static str,
    pub aliases: &'static [&'static str],
    /// How the value is written, e.g. `influxdb:http://HOST:8086?opts`.
    pub usage: &'static str,
    pub summary: &'static str,
    pub options: &'static [OptionSpec],
}

impl KindDoc {
    /// Whether `key` names this kind.
    pub fn is(&self, key: &str) -> bool {
        self.key == key || self.aliases.contains(&key)
    }
}

/// The `--help` text of a table of kinds: each kind's usage and summary, then its options with their defaults.
pub fn render_help(kinds: &[KindDoc]) -> String {
    let mut s = String::new();
    for k in kinds {
        let _ = write!(s, "\n  {}", k.usage);
        if !k.aliases.is_empty() {
            let _ = write!(s, "  (also: {})", k.aliases.join(", "));
        }
        let _ = write!(s, "\n      {}", k.summary);
        for o in k.options {
            let _ = write!(s, "\n      {}=", o.name);
            if !o.default.is_empty() {
                let _ = write!(s, " [{}]", o.default);
            }
            let _ = write!(s, " {}", o.help);
        }
        s.push('\n');
    }
    s
}

/// Why a `--source`, `--sink` or `--historical_source` value could not be used. Reported at start-up, in one line
/// that names the flag and its value (secrets masked), before anything runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// `--source=...` or `--sink=...`, with secrets masked.
    pub flag: String,
    pub reason: String,
}

impl ConfigError {
    /// An error about `uri` given to `flag` (`--sink`), with the options in `secrets` masked.
    pub fn new(flag: &str, uri: &SpecUri, secrets: &[OptionSpec], reason: impl Into<String>) -> Self {
        ConfigError { flag: format!("{flag}={}", redacted(uri, secrets)), reason: reason.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.flag, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// `uri` as text with the values of secret options replaced by `***`.
pub fn redacted(uri: &SpecUri, specs: &[OptionSpec]) -> String {
    let mut u = uri.clone();
    for (k, v) in &mut u.options {
        if specs.iter().any(|s| s.secret && s.name == k) {
            *v = "***".into();
        }
    }
    u.to_string()
}

/// The options of one `--source`/`--sink` value, checked against the kind's [`OptionSpec`]s.
pub struct Options<'a> {
    flag: &'static str,
    uri: &'a SpecUri,
    specs: &'a [OptionSpec],
}

impl<'a> Options<'a> {
    /// Refuses any option not in `specs`, naming the known ones. `flag` is the flag the value came from
    /// (`--sink`), for messages.
    pub fn new(flag: &'static str, uri: &'a SpecUri, specs: &'a [OptionSpec]) -> Result<Self, ConfigError> {
        let o = Options { flag, uri, specs };
        if let Some((k, _)) = uri.options.iter().find(|(k, _)| !specs.iter().any(|s| s.name == k)) {
            let known: Vec<&str> = specs.iter().map(|s| s.name).collect();
            let known = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
            return Err(o.error(format!("unknown {} option {k:?}; known: {known}", uri.key)));
        }
        Ok(o)
    }

    pub fn uri(&self) -> &'a SpecUri {
        self.uri
    }

    /// An error about this value, in the one-line form every source and sink uses.
    pub fn error(&self, reason: impl Into<String>) -> ConfigError {
        ConfigError::new(self.flag, self.uri, self.specs, reason)
    }

    /// The value with secrets masked, for names in logs and self-metrics.
    pub fn redacted(&self) -> String {
        redacted(self.uri, self.specs)
    }

    /// The last value given for `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        debug_assert!(self.specs.iter().any(|s| s.name == name), "option {name} is not declared");
        self.uri.option(name)
    }

    /// Whether `name` was given at all (even empty).
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The value of `name`, or `default` when absent.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or(default).to_owned()
    }

    /// The value of `name` when given and not empty (Heapster's manifests write `opt=` for "none").
    pub fn non_empty(&self, name: &str) -> Option<&'a str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// The value of `name`, which must be given and not empty; `what` says what it names, for the message.
    pub fn required(&self, name: &str, what: &str) -> Result<&'a str, ConfigError> {
        self.non_empty(name).ok_or_else(|| self.error(format!("{name}= is required: {what}")))
    }

    /// A boolean in Go's spellings (`1`, `t`, `T`, `true`, `TRUE`, `True` and their false twins).
    pub fn bool(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => parse_go_bool(v).ok_or_else(|| self.error(format!("{name}={v:?}: expected true or false"))),
        }
    }

    /// A duration in Go's syntax (`10s`, `1m30s`, `500ms`), longer than zero.
    pub fn duration(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => parse_go_duration(v)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| self.error(format!("{name}={v:?}: expected a duration like 10s or 1m30s"))),
        }
    }

    /// A whole number above zero.
    pub fn positive(&self, name: &str, default: usize) -> Result<usize, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| self.error(format!("{name}={v:?}: expected a whole number above 0"))),
        }
    }

    /// Any value `FromStr` reads (a port, a float); `expected` describes it for the message (`a port`).
    pub fn parse<T: FromStr>(&self, name: &str, default: T, expected: &str) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| self.error(format!("{name}={v:?}: expected {expected}"))),
        }
    }
}

/// Go's `strconv.ParseBool`, which Heapster used for every boolean option.
pub fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `time.ParseDuration`: a sequence of decimal numbers, each with a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`,
/// `h`), such as `300ms`, `1.5h` or `2h45m`; `0` alone is zero. Negative durations are refused (no option wants
/// one).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        if number.is_empty() || number == "." {
            return None;
        }
        let n: f64 = number.parse().ok()?;
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        nanos += n * scale;
        rest = tail;
    }
    (nanos.is_finite() && nanos < u64::MAX as f64).then(|| Duration::from_nanos(nanos.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[OptionSpec] = &[
        OptionSpec::new("db", "k8s", "the database"),
        OptionSpec::new("gzip", "true", "compress bodies"),
        OptionSpec::new("timeout", "10s", "request deadline"),
        OptionSpec::new("workers", "1", "requests in flight"),
        OptionSpec::new("port", "8080", "the port"),
        OptionSpec::secret("pw", "the password"),
    ];

    fn uri(s: &str) -> SpecUri {
        s.parse().unwrap()
    }

    #[test]
    fn unknown_options_are_refused_with_the_known_ones_and_secrets_masked() {
        let u = uri("influxdb:http://h?pw=hunter2&dbname=x");
        let e = Options::new("--sink", &u, SPECS).err().unwrap().to_string();
        assert_eq!(
            e,
            "--sink=influxdb:http://h?pw=***&dbname=x: unknown influxdb option \"dbname\"; known: db, gzip, timeout, \
             workers, port, pw"
        );
        let u = uri("log?x=1");
        assert!(Options::new("--sink", &u, &[]).err().unwrap().to_string().ends_with("known: none"));
    }

    #[test]
    fn typed_values_in_go_spellings() {
        let u = uri("x:?gzip=F&timeout=1m30s&workers=4&port=9&db=");
        let o = Options::new("--sink", &u, SPECS).unwrap();
        assert!(!o.bool("gzip", true).unwrap());
        assert_eq!(o.duration("timeout", Duration::ZERO).unwrap(), Duration::from_secs(90));
        assert_eq!(o.positive("workers", 1).unwrap(), 4);
        assert_eq!(o.parse::<u16>("port", 1, "a port").unwrap(), 9);
        assert_eq!(o.non_empty("db"), None);
        assert_eq!(o.string("db", "k8s"), "");
        assert!(o.required("db", "name the database").unwrap_err().reason.contains("db= is required"));
        let u = uri("x:");
        let o = Options::new("--sink", &u, SPECS).unwrap();
        assert!(o.bool("gzip", true).unwrap());
        assert_eq!(o.string("db", "k8s"), "k8s");
        assert_eq!(o.positive("workers", 3).unwrap(), 3);
    }

    #[test]
    fn bad_values_are_one_line_naming_the_option() {
        for (s, name, says) in [
            ("x:?gzip=yes", "gzip", "gzip=\"yes\": expected true or false"),
            ("x:?timeout=10", "timeout", "timeout=\"10\": expected a duration"),
            ("x:?timeout=0s", "timeout", "timeout=\"0s\""),
            ("x:?workers=0", "workers", "workers=\"0\": expected a whole number above 0"),
            ("x:?port=http", "port", "port=\"http\": expected a port"),
        ] {
            let u = uri(s);
            let o = Options::new("--sink", &u, SPECS).unwrap();
            let e = match name {
                "gzip" => o.bool(name, true).unwrap_err(),
                "timeout" => o.duration(name, Duration::ZERO).unwrap_err(),
                "workers" => o.positive(name, 1).unwrap_err(),
                _ => o.parse::<u16>(name, 1, "a port").unwrap_err(),
            };
            assert!(e.to_string().contains(says), "{s}: {e}");
            assert!(e.to_string().starts_with(&format!("--sink={u}: ")), "{e}");
        }
    }

    #[test]
    fn go_booleans_and_durations() {
        for t in ["1", "t", "T", "true", "TRUE", "True"] {
            assert_eq!(parse_go_bool(t), Some(true));
        }
        for f in ["0", "f", "F", "false", "FALSE", "False"] {
            assert_eq!(parse_go_bool(f), Some(false));
        }
        assert_eq!(parse_go_bool("yes"), None);
        let d = |s| parse_go_duration(s);
        assert_eq!(d("0"), Some(Duration::ZERO));
        assert_eq!(d("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(d("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(d("2h45m"), Some(Duration::from_secs(9900)));
        assert_eq!(d("10us"), Some(Duration::from_micros(10)));
        assert_eq!(d("10µs"), Some(Duration::from_micros(10)));
        assert_eq!(d("+5s"), Some(Duration::from_secs(5)));
        for bad in ["", "10", "1d", "s", "-1s", "1.2.3s", "1 s"] {
            assert_eq!(d(bad), None, "{bad}");
        }
    }

    #[test]
    fn help_lists_every_kind_and_option() {
        let kinds = [KindDoc {
            key: "influxdb",
            aliases: &[],
            usage: "influxdb:http://HOST:8086?opts",
            summary: "InfluxDB.",
            options: SPECS,
        }];
        let h = render_help(&kinds);
        assert!(h.contains("influxdb:http://HOST:8086?opts"), "{h}");
        assert!(h.contains("db= [k8s] the database"), "{h}");
        assert!(h.contains("pw= the password"), "{h}");
        assert!(kinds[0].is("influxdb") && !kinds[0].is("log"));
    }
}
