//! Summary documents of simulated nodes, rendered from a recorded kubelet response.
//!
//! The fixture's node and pods are the templates. Pod slot `i` of a node wears template pod `i % pods`, renamed to
//! be unique; counters start at zero when the pod starts and grow at the fixture's own rates (the recorded
//! `usageNanoCores` for CPU, the recorded value per hour for the others), gauges keep the recorded values. With
//! churn, every pod slot is replaced by a new pod (new name, uid, start time, counters from zero) once per churn
//! period, staggered across slots, so pods start and die all the time.
//!
//! Documents are laid out as kubelets send them: go-restful's `PrettyPrintResponses` default writes
//! `json.MarshalIndent(v, "", " ")`, one member per line indented by one space a level, 1.4 times the bytes of
//! compact JSON. A decoder's cost depends on that whitespace, so benchmarks against the simulator see what they
//! would see against real kubelets.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use std::fmt::Write;
use std::time::Duration;

/// Counters that grow with time; everything else numeric is a gauge.
const CUMULATIVE: &[&str] =
    &["usageCoreNanoSeconds", "rxBytes", "txBytes", "rxErrors", "txErrors", "pageFaults", "majorPageFaults"];

/// The recorded response every simulated node is built from.
pub struct Template {
    /// Kept for [`render_walking`], the reference the compiled rendering is tested against.
    #[cfg_attr(not(test), allow(dead_code))]
    node: Value,
    pods: Vec<Value>,
    /// The node object without `nodeName`, and each pod without `podRef`, compiled once: rendering then only
    /// copies text and writes numbers, so that the simulator's cost stays small beside heapster's in benchmarks.
    /// Indented for their depth in the document ([`NODE_MEMBERS`], [`POD_MEMBERS`]).
    node_segments: Vec<Segment>,
    pod_segments: Vec<Vec<Segment>>,
    /// Each template pod's name and namespace, escaped as in a JSON string: the start of every pod's `podRef`.
    pod_refs: Vec<(String, String)>,
    /// Bytes of a rendered node object and of each pod object, to size a document's buffer once.
    node_bytes: usize,
    pod_bytes: Vec<usize>,
}

/// A piece of a compiled template object: literal JSON text, or a value that depends on the clock.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Text(String),
    Now,
    Start,
    /// `usageCoreNanoSeconds` from the recorded `usageNanoCores`.
    CoreNanos(f64),
    /// A counter growing at the recorded value per hour.
    PerHour(f64),
}

/// Appends the members of `map` (all but `skip`) after an opening member that the caller writes.
fn compile_members(map: &serde_json::Map<String, Value>, skip: &str, out: &mut Vec<Segment>) {
    for (k, v) in map.iter().filter(|(k, _)| *k != skip) {
        let mut head = String::from(",");
        write_leaf(&mut head, &Value::String(k.clone()));
        head.push(':');
        text(out, &head);
        compile(v, out);
    }
}

fn text(out: &mut Vec<Segment>, t: &str) {
    match out.last_mut() {
        Some(Segment::Text(s)) => s.push_str(t),
        _ => out.push(Segment::Text(t.to_owned())),
    }
}

/// The segments of `v`: as [`write_value`] would write it, with the clock-dependent leaves left open.
fn compile(v: &Value, out: &mut Vec<Segment>) {
    match v {
        Value::Object(map) => {
            text(out, "{");
            let nano_cores = map.get("usageNanoCores").and_then(Value::as_f64);
            for (i, (k, val)) in map.iter().enumerate() {
                let mut head = String::from(if i > 0 { "," } else { "" });
                write_leaf(&mut head, &Value::String(k.clone()));
                head.push(':');
                text(out, &head);
                match (k.as_str(), val) {
                    ("time", Value::String(_)) => out.push(Segment::Now),
                    ("startTime", Value::String(_)) => out.push(Segment::Start),
                    ("usageCoreNanoSeconds", Value::Number(_)) if nano_cores.is_some() => {
                        out.push(Segment::CoreNanos(nano_cores.unwrap_or(0.0)))
                    }
                    (k, Value::Number(n)) if CUMULATIVE.contains(&k) => {
                        out.push(Segment::PerHour(n.as_f64().unwrap_or(0.0)))
                    }
                    _ => compile(val, out),
                }
            }
            text(out, "}");
        }
        Value::Array(items) => {
            text(out, "[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    text(out, ",");
                }
                compile(item, out);
            }
            text(out, "]");
        }
        leaf => {
            let mut t = String::new();
            write_leaf(&mut t, leaf);
            text(out, &t);
        }
    }
}

fn render_segments(out: &mut String, segments: &[Segment], clock: &Clock) {
    let mut digits = itoa::Buffer::new();
    for seg in segments {
        match seg {
            Segment::Text(t) => out.push_str(t),
            Segment::Now => push_quoted(out, clock.now),
            Segment::Start => push_quoted(out, clock.start),
            Segment::CoreNanos(n) => out.push_str(digits.format((n * clock.age_s) as u64)),
            Segment::PerHour(h) => out.push_str(digits.format((h * clock.age_s / 3600.0) as u64)),
        }
    }
}

fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    out.push_str(s);
    out.push('"');
}

/// The contents of `s` as a JSON string, without the quotes.
fn escaped(s: &str) -> String {
    let quoted = Value::String(s.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// Bytes the segments render to, with clocks and counters at their widest.
fn rendered_bytes(segments: &[Segment]) -> usize {
    segments.iter().map(|s| if let Segment::Text(t) = s { t.len() } else { 32 }).sum()
}

/// Nesting depth of the node object's members (`{"node": {` here) and of a pod object's (`{"pods": [{` here).
const NODE_MEMBERS: usize = 2;
const POD_MEMBERS: usize = 3;

/// Lays compact JSON out as Go's `json.MarshalIndent(v, "", " ")` does, a piece at a time: a newline and one space
/// per level after `{`, `[` and `,` and before a closing bracket, `": "` after a key, `{}` and `[]` for empty ones.
pub(crate) struct Indenter {
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// A bracket was just opened: whether it is empty is known at the next character.
    opened: bool,
}

impl Indenter {
    /// Text that continues inside `depth` levels of brackets.
    pub(crate) fn at(depth: usize) -> Indenter {
        Indenter { depth, in_string: false, escaped: false, opened: false }
    }

    fn newline(&self, out: &mut String) {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', self.depth));
    }

    /// Before a piece that is a whole value rather than text: a bracket just opened is not empty.
    fn value(&mut self, out: &mut String) {
        if std::mem::take(&mut self.opened) {
            self.newline(out);
        }
    }

    pub(crate) fn text(&mut self, compact: &str, out: &mut String) {
        for c in compact.chars() {
            if self.in_string {
                out.push(c);
                match c {
                    _ if self.escaped => self.escaped = false,
                    '\\' => self.escaped = true,
                    '"' => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            if std::mem::take(&mut self.opened) {
                if matches!(c, '}' | ']') {
                    self.depth = self.depth.saturating_sub(1);
                    out.push(c);
                    continue;
                }
                self.newline(out);
            }
            match c {
                '{' | '[' => {
                    out.push(c);
                    self.depth += 1;
                    self.opened = true;
                }
                '}' | ']' => {
                    self.depth = self.depth.saturating_sub(1);
                    self.newline(out);
                    out.push(c);
                }
                ',' => {
                    out.push(',');
                    self.newline(out);
                }
                ':' => out.push_str(": "),
                '"' => {
                    out.push('"');
                    self.in_string = true;
                }
                c => out.push(c),
            }
        }
    }
}

/// `segments` (compact, as compiled) laid out at `depth`, as kubelets write their documents.
fn indented(segments: Vec<Segment>, depth: usize) -> Vec<Segment> {
    let mut indenter = Indenter::at(depth);
    let mut out = Vec::with_capacity(segments.len());
    for seg in segments {
        let mut t = String::new();
        match seg {
            Segment::Text(compact) => {
                indenter.text(&compact, &mut t);
                text(&mut out, &t);
            }
            value => {
                indenter.value(&mut t);
                if !t.is_empty() {
                    text(&mut out, &t);
                }
                out.push(value);
            }
        }
    }
    out
}

impl Template {
    pub fn from_json(text: &str) -> Result<Template, String> {
        let mut doc: Value = serde_json::from_str(text).map_err(|e| format!("template: {e}"))?;
        let pods = match doc.get_mut("pods").map(Value::take) {
            Some(Value::Array(p)) if !p.is_empty() => p,
            _ => return Err("template: no pods".into()),
        };
        let node = doc.get_mut("node").map(Value::take).ok_or("template: no node")?;
        let mut node_segments = Vec::new();
        if let Value::Object(map) = &node {
            compile_members(map, "nodeName", &mut node_segments);
        }
        let node_segments = indented(node_segments, NODE_MEMBERS);
        let pod_segments: Vec<Vec<Segment>> = pods
            .iter()
            .map(|p| {
                let mut segs = Vec::new();
                if let Value::Object(map) = p {
                    compile_members(map, "podRef", &mut segs);
                }
                indented(segs, POD_MEMBERS)
            })
            .collect();
        let pod_refs = pods
            .iter()
            .map(|p| {
                let name = p["podRef"]["name"].as_str().unwrap_or("pod");
                (escaped(name), escaped(p["podRef"]["namespace"].as_str().unwrap_or("default")))
            })
            .collect();
        let node_bytes = rendered_bytes(&node_segments);
        let pod_bytes = pod_segments.iter().map(|s| rendered_bytes(s) + 256).collect();
        Ok(Template { node, pods, node_segments, pod_segments, pod_refs, node_bytes, pod_bytes })
    }

    /// The Kubernetes 1.28 multi-container fixture (18 pods, 23 containers), the default template.
    pub fn builtin() -> Template {
        Template::from_json(include_str!("../fixtures/kubelet_stats_summary_k8s1.28_multicontainer.json"))
            .expect("the built-in template parses")
    }

    /// A template of one pod per `(app, rate)` in `namespace`: the pod in slot `i` is named after its app
    /// (`app-NODE-SLOT-gN`, label `app=<app>`; an app name has no `-`) and receives exactly `rate` bytes a second:
    /// its `rxBytes` counter (and its interface's) grows at that rate from the pod's start, every other
    /// interface's stays 0. Built from the built-in fixture's first single-container pod; for tests that check
    /// rates end to end, such as the replica counts an HPA computes from them.
    pub fn with_network_rates(namespace: &str, pods: &[(&str, f64)]) -> Template {
        let mut doc: Value =
            serde_json::from_str(include_str!("../fixtures/kubelet_stats_summary_k8s1.28_multicontainer.json"))
                .expect("the built-in template parses");
        let base = doc["pods"]
            .as_array()
            .and_then(|pods| pods.iter().find(|p| p["containers"].as_array().is_some_and(|c| c.len() == 1)))
            .cloned()
            .expect("the fixture has a single-container pod");
        let pods: Vec<Value> = pods
            .iter()
            .map(|(app, rate)| {
                let mut p = base.clone();
                p["podRef"]["name"] = Value::from(*app);
                p["podRef"]["namespace"] = Value::from(namespace);
                // Counters are written as the recorded value per hour times the pod's age in hours.
                let per_hour = Value::from(rate * 3600.0);
                let net = &mut p["network"];
                let eth = net["name"].as_str().unwrap_or("eth0").to_owned();
                net["rxBytes"] = per_hour.clone();
                for iface in net["interfaces"].as_array_mut().into_iter().flatten() {
                    iface["rxBytes"] = if iface["name"] == eth.as_str() { per_hour.clone() } else { Value::from(0) };
                }
                p
            })
            .collect();
        doc["pods"] = Value::Array(pods);
        Template::from_json(&doc.to_string()).expect("a template built from the fixture parses")
    }

    pub fn pod_templates(&self) -> usize {
        self.pods.len()
    }
}

/// One pod slot at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInstance {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub start: DateTime<Utc>,
    /// Names of the containers, from the template.
    pub containers: Vec<String>,
}

/// The simulated node's layout and clock.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub index: usize,
    pub pods: usize,
    /// When the simulation started: counters of the first generation of pods start there.
    pub epoch: DateTime<Utc>,
    /// Every slot gets a new pod this often; `None` keeps the first pods forever.
    pub churn: Option<Duration>,
}

impl NodeSpec {
    /// The pod in `slot` at `now`.
    pub fn pod(&self, template: &Template, slot: usize, now: DateTime<Utc>) -> PodInstance {
        let t = &template.pods[slot % template.pods.len()];
        let (generation, start) = self.slot_life(slot, now);
        let base = t["podRef"]["name"].as_str().unwrap_or("pod");
        let namespace = t["podRef"]["namespace"].as_str().unwrap_or("default").to_owned();
        let containers = t["containers"]
            .as_array()
            .map(|cs| cs.iter().filter_map(|c| c["name"].as_str().map(String::from)).collect())
            .unwrap_or_default();
        PodInstance {
            name: format!("{base}-{}-{slot}-g{generation}", self.index),
            namespace,
            uid: format!("{:08x}-0000-4000-8000-{:012x}", self.index, slot_bits(slot, generation)),
            start,
            containers,
        }
    }

    /// The generation of the pod in `slot` at `now` (how many times the slot's pod was replaced) and its start.
    fn slot_life(&self, slot: usize, now: DateTime<Utc>) -> (i64, DateTime<Utc>) {
        match self.churn {
            Some(churn) if churn.as_millis() > 0 => {
                let period = churn.as_millis() as i64;
                // Stagger slots across the period so that replacements are spread out, not all at once.
                let offset = (slot as i64 * 7919 + self.index as i64 * 104_729) % period;
                let since = (now - self.epoch).num_milliseconds() + offset;
                let generation = since.div_euclid(period);
                let start = self.epoch + chrono::Duration::milliseconds(generation * period - offset);
                (generation, start.max(self.epoch - chrono::Duration::hours(1)))
            }
            _ => (0, self.epoch),
        }
    }

    /// Every pod of the node at `now`.
    pub fn pods(&self, template: &Template, now: DateTime<Utc>) -> Vec<PodInstance> {
        (0..self.pods).map(|slot| self.pod(template, slot, now)).collect()
    }
}

/// `t` without its sub-millisecond part. Documents carry their reading time in milliseconds; counters computed
/// from the same truncated instant grow by exactly rate × the difference of two reading times, whatever the
/// fraction of a millisecond the epoch has (otherwise a rate over 2 s could be off by 1 ms in 2,000, 0.05 %).
fn whole_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// The reading time of a document at `now`, the node's start (an hour before the epoch) and its age in seconds.
fn node_times(node: &NodeSpec, now: DateTime<Utc>) -> (String, String, f64) {
    let start = node.epoch - chrono::Duration::hours(1);
    let age_s = (now - start).num_milliseconds() as f64 / 1000.0;
    (now.to_rfc3339_opts(SecondsFormat::Millis, true), rfc3339(start), age_s)
}

/// The last part of a pod's uid: its slot and generation.
fn slot_bits(slot: usize, generation: i64) -> u64 {
    (slot as u64) << 24 | generation as u64 & 0xff_ffff
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// How values are rewritten while a template object is written out.
struct Clock<'a> {
    now: &'a str,
    start: &'a str,
    age_s: f64,
}

fn write_leaf(out: &mut String, v: &Value) {
    let _ = write!(out, "{v}");
}

/// Writes `v` as JSON, laid out at `depth` as Go's `json.MarshalIndent(v, "", " ")` does (a member or element
/// per line), with counters grown to `clock.age_s`, `time` set to now and `startTime` to the start.
#[cfg(test)]
fn write_value(out: &mut String, v: &Value, clock: &Clock, depth: usize) {
    match v {
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            out.push('{');
            let nano_cores = map.get("usageNanoCores").and_then(Value::as_f64);
            for (i, (k, val)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_key(out, k, depth + 1);
                match (k.as_str(), val) {
                    ("time", Value::String(_)) => {
                        let _ = write!(out, "\"{}\"", clock.now);
                    }
                    ("startTime", Value::String(_)) => {
                        let _ = write!(out, "\"{}\"", clock.start);
                    }
                    ("usageCoreNanoSeconds", Value::Number(_)) if nano_cores.is_some() => {
                        let _ = write!(out, "{}", (nano_cores.unwrap_or(0.0) * clock.age_s) as u64);
                    }
                    (k, Value::Number(n)) if CUMULATIVE.contains(&k) => {
                        let per_hour = n.as_f64().unwrap_or(0.0);
                        let _ = write!(out, "{}", (per_hour * clock.age_s / 3600.0) as u64);
                    }
                    _ => write_value(out, val, clock, depth + 1),
                }
            }
            newline(out, depth);
            out.push('}');
        }
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_value(out, item, clock, depth + 1);
            }
            newline(out, depth);
            out.push(']');
        }
        leaf => write_leaf(out, leaf),
    }
}

/// A member's key on its own line at `depth`, and the `": "` before its value.
#[cfg(test)]
fn write_key(out: &mut String, key: &str, depth: usize) {
    newline(out, depth);
    write_leaf(out, &Value::String(key.to_owned()));
    out.push_str(": ");
}

#[cfg(test)]
fn newline(out: &mut String, depth: usize) {
    out.push('\n');
    out.extend(std::iter::repeat_n(' ', depth));
}

/// The node's `/stats/summary` at `now`. Reading times carry milliseconds, as the counters do, so that rates
/// computed from two documents are exact.
///
/// Written straight into one buffer sized beforehand: the pod references from pre-escaped template names and
/// numbers written with `itoa`, no value built per pod, as 15,000 simulated nodes make 1,000 documents a second
/// on the cores heapster uses too. [`render_walking`] is the reference it is tested against.
pub fn render(template: &Template, node: &NodeSpec, now: DateTime<Utc>) -> String {
    let now = whole_millis(now);
    let templates = template.pod_segments.len();
    let bytes: usize =
        template.node_bytes + 64 + (0..node.pods).map(|s| template.pod_bytes[s % templates]).sum::<usize>();
    let mut out = String::with_capacity(bytes);
    let (now_s, node_start, node_age_s) = node_times(node, now);
    let node_clock = Clock { now: &now_s, start: &node_start, age_s: node_age_s };
    out.push_str("{\n \"node\": {\n  \"nodeName\": \"");
    out.push_str(&escaped(&node.name));
    out.push('"');
    render_segments(&mut out, &template.node_segments, &node_clock);
    out.push_str("\n },\n \"pods\": [");
    let epoch_s = rfc3339(node.epoch);
    let mut digits = itoa::Buffer::new();
    for slot in 0..node.pods {
        if slot > 0 {
            out.push(',');
        }
        let (generation, start) = node.slot_life(slot, now);
        let start_s = if start == node.epoch { None } else { Some(rfc3339(start)) };
        let clock = Clock {
            now: &now_s,
            start: start_s.as_deref().unwrap_or(&epoch_s),
            age_s: ((now - start).num_milliseconds() as f64 / 1000.0).max(0.0),
        };
        let (name, namespace) = &template.pod_refs[slot % templates];
        out.push_str("\n  {\n   \"podRef\": {\n    \"name\": \"");
        out.push_str(name);
        for part in [node.index as i64, slot as i64] {
            out.push('-');
            out.push_str(digits.format(part));
        }
        out.push_str("-g");
        out.push_str(digits.format(generation));
        out.push_str("\",\n    \"namespace\": \"");
        out.push_str(namespace);
        let uid = slot_bits(slot, generation);
        let _ = write!(out, "\",\n    \"uid\": \"{:08x}-0000-4000-8000-{uid:012x}\"\n   }}", node.index);
        render_segments(&mut out, &template.pod_segments[slot % templates], &clock);
        out.push_str("\n  }");
    }
    out.push_str(if node.pods > 0 { "\n ]\n}" } else { "]\n}" });
    out
}

/// What [`render`] wrote before templates were compiled: walks the JSON values each time. Kept for the test that
/// the compiled rendering is byte for byte the same.
#[cfg(test)]
pub fn render_walking(template: &Template, node: &NodeSpec, now: DateTime<Utc>) -> String {
    let now = whole_millis(now);
    let members = |out: &mut String, v: &Value, skip: &str, clock: &Clock, depth: usize| {
        if let Value::Object(map) = v {
            for (k, v) in map.iter().filter(|(k, _)| *k != skip) {
                out.push(',');
                write_key(out, k, depth);
                write_value(out, v, clock, depth);
            }
        }
    };
    render_with(
        template,
        node,
        now,
        |out, clock| members(out, &template.node, "nodeName", clock, NODE_MEMBERS),
        |out, slot, clock| members(out, &template.pods[slot % template.pods.len()], "podRef", clock, POD_MEMBERS),
    )
}

/// The document's frame (node name, pod references, clocks); `node_body` and `pod_body` write the rest of the node
/// object and of each pod object.
#[cfg(test)]
fn render_with(
    template: &Template,
    node: &NodeSpec,
    now: DateTime<Utc>,
    node_body: impl Fn(&mut String, &Clock),
    pod_body: impl Fn(&mut String, usize, &Clock),
) -> String {
    let mut out = String::with_capacity(4096 * (node.pods + 4));
    let (now_s, node_start, node_age_s) = node_times(node, now);
    let node_clock = Clock { now: &now_s, start: &node_start, age_s: node_age_s };
    out.push('{');
    write_key(&mut out, "node", 1);
    out.push('{');
    write_key(&mut out, "nodeName", NODE_MEMBERS);
    write_leaf(&mut out, &Value::String(node.name.clone()));
    node_body(&mut out, &node_clock);
    newline(&mut out, 1);
    out.push_str("},");
    write_key(&mut out, "pods", 1);
    out.push('[');
    for slot in 0..node.pods {
        if slot > 0 {
            out.push(',');
        }
        newline(&mut out, POD_MEMBERS - 1);
        let pod = node.pod(template, slot, now);
        let start = rfc3339(pod.start);
        let clock = Clock {
            now: &now_s,
            start: &start,
            age_s: ((now - pod.start).num_milliseconds() as f64 / 1000.0).max(0.0),
        };
        out.push('{');
        write_key(&mut out, "podRef", POD_MEMBERS);
        let pod_ref = serde_json::json!({"name": pod.name, "namespace": pod.namespace, "uid": pod.uid});
        write_value(&mut out, &pod_ref, &clock, POD_MEMBERS);
        pod_body(&mut out, slot, &clock);
        newline(&mut out, POD_MEMBERS - 1);
        out.push('}');
    }
    if node.pods > 0 {
        newline(&mut out, 1);
    }
    out.push_str("]\n}");
    out
}
