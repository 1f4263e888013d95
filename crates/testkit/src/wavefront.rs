//! A strict stand-in for a Wavefront proxy's metrics port (2878), for the Wavefront sink: no proxy can be
//! installed here. It accepts TCP connections and checks every line against Wavefront's published data format
//! (`<metricName> <metricValue> [<timestamp>] source=<source> [pointTags]`, docs.wavefront.com
//! "Wavefront Data Format"), keeping the points it would accept and the lines it would refuse with the reason:
//!
//! - metricName: `a-z A-Z 0-9 - _ .`, plus `/` and `,` when the name is in double quotes; at most 256 characters;
//!   may start with `~` (internal metrics) or a delta sign (`∆`, `Δ`);
//! - metricValue: a number a double or a long parses;
//! - timestamp: optional, whole epoch seconds;
//! - `source=` (or `host=`) required, once: `a-z A-Z 0-9 - _ .`, at most 128 characters, quotes allowed;
//! - point tags `key=value` or `key="value"`: keys `a-z A-Z 0-9 - _ .`, values anything inside double quotes
//!   with `\"` for a quote (unquoted: no spaces, no quotes), key and value together at most 254 characters, no
//!   key twice.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// One point the proxy would accept.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub metric: String,
    pub value: f64,
    pub timestamp: Option<i64>,
    pub source: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Default)]
struct Seen {
    points: Vec<Point>,
    /// (line, why it is refused)
    refused: Vec<(String, String)>,
    connections: usize,
}

/// The fake proxy, listening on a free 127.0.0.1 port until dropped (its thread then stays parked on accept,
/// which ends with the test process).
pub struct WavefrontProxy {
    pub port: u16,
    seen: Arc<Mutex<Seen>>,
}

impl WavefrontProxy {
    pub fn start() -> WavefrontProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                shared.lock().unwrap().connections += 1;
                let shared = shared.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(conn).lines() {
                        let Ok(line) = line else { return };
                        if line.trim().is_empty() {
                            continue;
                        }
                        let mut s = shared.lock().unwrap();
                        match parse(&line) {
                            Ok(p) => s.points.push(p),
                            Err(why) => s.refused.push((line, why)),
                        }
                    }
                });
            }
        });
        WavefrontProxy { port, seen }
    }

    /// `host:port`, as the Wavefront sink is configured.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn points(&self) -> Vec<Point> {
        self.seen.lock().unwrap().points.clone()
    }

    /// Lines refused, with the reason.
    pub fn refused(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().refused.clone()
    }

    pub fn connections(&self) -> usize {
        self.seen.lock().unwrap().connections
    }
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Splits a line at spaces outside double quotes; quoted parts keep their quotes and escapes.
fn tokens(line: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (None, false, false);
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => {
                if let Some(s) = start.take() {
                    out.push(&line[s..i]);
                }
                continue;
            }
            _ => {}
        }
        start.get_or_insert(i);
    }
    if quoted {
        return Err("an unterminated quote".into());
    }
    if let Some(s) = start {
        out.push(&line[s..]);
    }
    Ok(out)
}

/// The text of a possibly quoted token, unescaped; whether it was quoted.
fn unquote(t: &str) -> Result<(String, bool), String> {
    let Some(inner) = t.strip_prefix('"') else {
        if t.contains('"') {
            return Err(format!("a quote inside the unquoted {t:?}"));
        }
        return Ok((t.to_owned(), false));
    };
    let inner = inner.strip_suffix('"').ok_or_else(|| format!("{t:?} does not end its quote"))?;
    let mut s = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => s.push(chars.next().ok_or("a backslash at the end of a quoted string")?),
            '"' => return Err(format!("an unescaped quote inside {t:?}")),
            c => s.push(c),
        }
    }
    Ok((s, true))
}

/// Checks one line against the data format: the point, or why the proxy refuses the line.
pub fn parse(line: &str) -> Result<Point, String> {
    let toks = tokens(line)?;
    let mut it = toks.iter().copied().peekable();
    let (metric, quoted) = unquote(it.next().ok_or("an empty line")?)?;
    let body = metric.trim_start_matches(['~', '∆', 'Δ']);
    let ok = |c: char| name_char(c) || (quoted && matches!(c, '/' | ','));
    if body.is_empty() || !body.chars().all(ok) {
        return Err(format!("metric name {metric:?}: invalid characters"));
    }
    if metric.chars().count() > 256 {
        return Err(format!("metric name longer than 256 characters ({})", metric.chars().count()));
    }
    let v = it.next().ok_or("no value")?;
    let value: f64 = v.parse().map_err(|_| format!("value {v:?} is not a number"))?;
    if !value.is_finite() {
        return Err(format!("value {v:?} is not a finite number"));
    }
    let mut timestamp = None;
    if let Some(t) = it.peek().filter(|t| !t.contains('=')) {
        timestamp = Some(t.parse::<i64>().map_err(|_| format!("timestamp {t:?} is not whole epoch seconds"))?);
        it.next();
    }
    let mut source = None;
    let mut tags = BTreeMap::new();
    for t in it {
        let (k, v) = t.split_once('=').ok_or_else(|| format!("{t:?} is not key=value"))?;
        let (key, _) = unquote(k)?;
        let (value, _) = unquote(v)?;
        if key.is_empty() || !key.chars().all(name_char) {
            return Err(format!("point tag key {key:?}: invalid characters"));
        }
        if key == "source" || key == "host" {
            if source.is_some() {
                return Err("source given twice".into());
            }
            if value.is_empty() || !value.chars().all(name_char) || value.chars().count() > 128 {
                return Err(format!("source {value:?}: empty, invalid characters or longer than 128"));
            }
            source = Some(value);
            continue;
        }
        if key.chars().count() + value.chars().count() > 254 {
            return Err(format!("point tag {key}: key and value longer than 254 characters"));
        }
        if value.is_empty() {
            return Err(format!("point tag {key}: empty value"));
        }
        if tags.insert(key.clone(), value).is_some() {
            return Err(format!("point tag {key} given twice"));
        }
    }
    let source = source.ok_or("no source= (or host=)")?;
    Ok(Point { metric, value, timestamp, source, tags })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_examples_and_what_the_format_refuses() {
        let p = parse(r#"system.cpu.loadavg.1m 0.03 1382754475 source=test1.wavefront.com"#).unwrap();
        assert_eq!(
            (p.metric.as_str(), p.value, p.timestamp, p.source.as_str()),
            ("system.cpu.loadavg.1m", 0.03, Some(1382754475), "test1.wavefront.com")
        );
        let p = parse(r#""disk/space.total,x" 1e3 source="h-1" mount="/var/lib \"x\"" dev=sda"#).unwrap();
        assert_eq!(p.tags["mount"], "/var/lib \"x\"");
        assert_eq!((p.timestamp, p.tags["dev"].as_str()), (None, "sda"));
        for (line, why) in [
            ("a.b 1 1", "no source"),
            ("a/b 1 source=h", "invalid characters"),
            ("a.b x source=h", "not a number"),
            ("a.b 1 source=h source=g", "twice"),
            ("a.b 1 source=h k=\"v", "unterminated"),
            ("a.b 1 source=h app/name=x", "point tag key"),
            ("a.b 1 source=h k=v\"x\"", "quote inside"),
            ("a.b 1 source=a:b", "source"),
        ] {
            let e = parse(line).unwrap_err();
            assert!(e.contains(why), "{line}: {e}");
        }
        let long = format!("a.b 1 source=h k=\"{}\"", "v".repeat(254));
        assert!(parse(&long).unwrap_err().contains("254"));
        assert!(parse(&format!("{} 1 source=h", "m".repeat(257))).unwrap_err().contains("256"));
    }
}
