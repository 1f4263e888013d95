//! Batches as statsd gauge lines, in Heapster's two layouts (`metrics/sinks/statsd/*_formatter.go`).
//!
//! Every value is a gauge (`|g`), as Heapster sent them: statsd keeps the last gauge of a flush interval, where a
//! counter (`|c`) would be summed and turned into a per-second rate, which a cumulative value already read from
//! the kubelet is not. statsd reads a gauge that starts with `-` or `+` as a change of the previous value, so a
//! negative value goes as `name:0|g:-5|g`: statsd and Telegraf both take several values on one line, in order,
//! and the reset to zero cannot be lost or reordered apart from the value.

use super::config::{LabelStyle, Protocol, StatsdConfig};
use heapster_model::{DataBatch, Labels, MetricValue, labels};
use std::fmt::Write as _;

/// One batch as newline-terminated lines, one metric per line.
#[derive(Debug, Default)]
pub struct Encoded {
    pub lines: String,
    /// Lines in `lines`.
    pub points: usize,
    /// Values left out because statsd cannot carry them (NaN or infinite; statsd counts them as bad lines).
    pub unrepresentable: usize,
    /// Values left out by the etsy layout because their set has no `type` label, or one it has no path for.
    pub untyped: usize,
}

/// Labels that make up the etsy layout's path, read from every set whatever `allowedLabels` says: without them
/// the name means nothing (and Heapster refused every metric of a set whose `type` was not allowed).
const PATH_LABELS: &[&str] =
    &[labels::TYPE, labels::HOSTNAME, labels::NAMESPACE_NAME, labels::POD_NAME, labels::CONTAINER_NAME];

pub fn encode(batch: &DataBatch, config: &StatsdConfig) -> Encoded {
    let mut out = Encoded::default();
    let mut enc = Encoder { config, line: String::new() };
    for set in batch.sets.values() {
        let set_labels = |k: &str| set.labels.get_str(k);
        match config.protocol {
            Protocol::Etsy => {
                let Some(head) = enc.etsy_head(&set_labels) else {
                    out.untyped += set.metrics.len() + set.labeled_metrics.len();
                    continue;
                };
                for (name, value) in &set.metrics {
                    enc.etsy_line(&mut out, &head, name, None, *value);
                }
                for m in &set.labeled_metrics {
                    let own = |k: &str| m.labels.get(k).or_else(|| set.labels.get(k)).map(|v| v.as_str());
                    let head = if m.labels.keys().any(|k| PATH_LABELS.contains(&&**k) || &**k == labels::LABELS) {
                        match enc.etsy_head(&own) {
                            Some(h) => h,
                            None => {
                                out.untyped += 1;
                                continue;
                            }
                        }
                    } else {
                        head.clone()
                    };
                    enc.etsy_line(&mut out, &head, &m.name, m.labels.get_str(labels::RESOURCE_ID), m.value);
                }
            }
            Protocol::Influx => {
                let tags = enc.influx_tags(&set.labels, None);
                for (name, value) in &set.metrics {
                    enc.influx_line(&mut out, name, &tags, *value);
                }
                for m in &set.labeled_metrics {
                    let tags = enc.influx_tags(&set.labels, Some(&m.labels));
                    enc.influx_line(&mut out, &m.name, &tags, m.value);
                }
            }
        }
    }
    out
}

struct Encoder<'a> {
    config: &'a StatsdConfig,
    /// The line being made, reused.
    line: String,
}

impl Encoder<'_> {
    /// `prefix.node.N.namespace.NS.pod.P.container.C.[k.v.]` for a set, as `labels` finds its labels; `None`
    /// when the set has no type the layout knows.
    fn etsy_head<'l>(&self, labels: &impl Fn(&str) -> Option<&'l str>) -> Option<String> {
        let mut h = String::new();
        if !self.config.prefix.is_empty() {
            replace_into(&mut h, &self.config.prefix, ETSY);
            h.push('.');
        }
        let part = |h: &mut String, name: &str, label: &str| {
            h.push_str(name);
            h.push('.');
            replace_into(h, labels(label).unwrap_or(""), ETSY);
            h.push('.');
        };
        match labels(labels::TYPE)? {
            "pod_container" => {
                part(&mut h, "node", labels::HOSTNAME);
                part(&mut h, "namespace", labels::NAMESPACE_NAME);
                part(&mut h, "pod", labels::POD_NAME);
                part(&mut h, "container", labels::CONTAINER_NAME);
            }
            "sys_container" => {
                part(&mut h, "node", labels::HOSTNAME);
                part(&mut h, "sys-container", labels::CONTAINER_NAME);
            }
            "pod" => {
                part(&mut h, "node", labels::HOSTNAME);
                part(&mut h, "namespace", labels::NAMESPACE_NAME);
                part(&mut h, "pod", labels::POD_NAME);
            }
            "ns" => part(&mut h, "namespace", labels::NAMESPACE_NAME),
            "node" => part(&mut h, "node", labels::HOSTNAME),
            "cluster" => h.push_str("cluster."),
            _ => return None,
        }
        if self.config.allowed(labels::LABELS) {
            let user = user_labels(labels(labels::LABELS).unwrap_or(""));
            for (k, v) in user.iter().filter(|(_, v)| !v.is_empty()) {
                self.label_name(&mut h, k, ETSY);
                h.push('.');
                replace_into(&mut h, v, ETSY);
                h.push('.');
            }
        }
        Some(h)
    }

    fn etsy_line(&mut self, out: &mut Encoded, head: &str, name: &str, resource: Option<&str>, v: MetricValue) {
        self.line.clear();
        self.line.push_str(head);
        replace_into(&mut self.line, name, ETSY);
        if let Some(id) = resource {
            self.line.push('.');
            replace_into(&mut self.line, id, ETSY);
        }
        self.finish(out, v);
    }

    /// `,k=v,...` of a set (and of one of its labelled metrics), allowed labels only, the user labels of
    /// `labels` expanded into tags of their own, sorted by name.
    fn influx_tags(&self, set: &Labels, own: Option<&Labels>) -> String {
        let mut tags: Vec<(&str, &str)> = set
            .iter()
            .filter(|(k, _)| self.config.allowed(k))
            .filter(|(k, _)| own.is_none_or(|o| !o.contains_key(k)))
            .chain(own.into_iter().flat_map(|o| o.iter()).filter(|(k, _)| self.config.allowed(k)))
            .map(|(k, v)| (&**k, v.as_str()))
            .collect();
        let user = tags.iter().position(|(k, _)| *k == labels::LABELS).map(|i| tags.remove(i).1);
        let user = user.map(user_labels).unwrap_or_default();
        for (k, v) in &user {
            match tags.iter_mut().find(|(n, _)| n == k) {
                Some(e) => e.1 = v,
                None => tags.push((k, v)),
            }
        }
        tags.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut s = String::new();
        for (k, v) in tags.into_iter().filter(|(_, v)| !v.is_empty()) {
            s.push(',');
            self.label_name(&mut s, k, INFLUX);
            s.push('=');
            replace_into(&mut s, v, INFLUX);
        }
        s
    }

    fn influx_line(&mut self, out: &mut Encoded, name: &str, tags: &str, v: MetricValue) {
        self.line.clear();
        replace_into(&mut self.line, &self.config.prefix, INFLUX);
        replace_into(&mut self.line, name, INFLUX);
        self.line.push_str(tags);
        self.finish(out, v);
    }

    /// Ends the line with its value and moves it to `out`, or leaves it out when statsd cannot carry the value.
    fn finish(&mut self, out: &mut Encoded, v: MetricValue) {
        self.line.push(':');
        let ok = match v {
            MetricValue::Int(i) if i < 0 => write!(self.line, "0|g:{i}").is_ok(),
            MetricValue::Int(i) => write!(self.line, "{i}").is_ok(),
            MetricValue::Float(f) if !f.is_finite() => false,
            // Also -0.0, which would print as `-0`: a change by zero, not a zero.
            MetricValue::Float(0.0) => write!(self.line, "0").is_ok(),
            MetricValue::Float(f) if f < 0.0 => write!(self.line, "0|g:{f}").is_ok(),
            MetricValue::Float(f) => write!(self.line, "{f}").is_ok(),
        };
        if !ok {
            out.unrepresentable += 1;
            return;
        }
        self.line.push_str("|g\n");
        out.lines.push_str(&self.line);
        out.points += 1;
    }

    /// A label name as written: the layout's separators replaced, renamed, then in the configured style.
    fn label_name(&self, out: &mut String, name: &str, special: &[char]) {
        let mut replaced = String::with_capacity(name.len());
        replace_into(&mut replaced, name, special);
        let renamed = self.config.rename_labels.get(&replaced).unwrap_or(&replaced);
        match self.config.label_style {
            LabelStyle::Snake => out.push_str(renamed),
            LabelStyle::LowerCamel => camel(out, renamed, false),
            LabelStyle::UpperCamel => camel(out, renamed, true),
        }
    }
}

/// What the etsy layout replaces by `_` in every part of a name: Heapster's `.`, `=`, `|`, and also `:` (which
/// ends the name for statsd: an NFS filesystem's `host:/export` made Heapster's line unreadable) and line breaks.
const ETSY: &[char] = &['.', '=', '|', ':', '\n', '\r'];

/// The same for the influx layout: Heapster's `,`, `:`, `=`, `|`, and line breaks.
const INFLUX: &[char] = &[',', ':', '=', '|', '\n', '\r'];

fn replace_into(out: &mut String, s: &str, special: &[char]) {
    out.extend(s.chars().map(|c| if special.contains(&c) { '_' } else { c }));
}

/// Kubernetes labels in heapster's `labels` label (`app:web,tier:front`), by name, sorted, last one of a name
/// winning.
fn user_labels(s: &str) -> Vec<(&str, &str)> {
    let mut pairs: Vec<(&str, &str)> = s.split(',').filter_map(|kv| kv.split_once(':')).collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    pairs.reverse();
    pairs.dedup_by(|a, b| a.0 == b.0);
    pairs.reverse();
    pairs
}

/// `snake_case` as `SnakeCase` (`upper`) or `snakeCase`: Heapster split on `_` and applied Go's `strings.Title`
/// to each word, which also capitalises a letter after any other separator (`app-name` -> `App-Name`).
fn camel(out: &mut String, name: &str, upper: bool) {
    let start = out.len();
    for word in name.split('_') {
        let mut after_separator = true;
        for c in word.chars() {
            if after_separator {
                out.extend(c.to_uppercase());
            } else {
                out.push(c);
            }
            after_separator = !(c.is_alphanumeric() || c == '_');
        }
    }
    if !upper && let Some(first) = out[start..].chars().next() {
        let lower: String = first.to_lowercase().collect();
        out.replace_range(start..start + first.len_utf8(), &lower);
    }
}
