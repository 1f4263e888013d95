//! Batches and Kubernetes events as Riemann events, as Heapster's `metrics/sinks/riemann` and
//! `events/sinks/riemann` made them: one event per value (service = the metric's name, host = the set's
//! `hostname`, every label an attribute) and one per Kubernetes event (service = `<kind>.<reason>`, the count as
//! the metric, `ok` or `warning` as the state).

use super::config::RiemannConfig;
use super::proto::{Attribute, Event};
use heapster_model::events::EventBatch;
use heapster_model::{DataBatch, Labels, MetricValue, labels};

/// One batch's events, and the values that could not be one.
#[derive(Debug, Default)]
pub struct Encoded {
    pub events: Vec<Event>,
    /// NaN or infinite values: Riemann's streams compare metrics, and a NaN compares false to everything.
    pub unrepresentable: usize,
}

pub fn metrics(batch: &DataBatch, config: &RiemannConfig) -> Encoded {
    let mut out = Encoded::default();
    let time = batch.timestamp.div_euclid(1000);
    for set in batch.sets.values() {
        let host = set.labels.get(labels::HOSTNAME).filter(|h| !h.is_empty());
        let set_attributes = attributes(&set.labels, None);
        let mut push = |name: &str, value: MetricValue, attributes: Vec<Attribute>| {
            let mut e = Event {
                time: Some(time),
                service: Some(name.to_owned()),
                host: host.map(String::from),
                attributes,
                ..common(config)
            };
            match value {
                MetricValue::Int(i) => e.metric_sint64 = Some(i),
                MetricValue::Float(f) if f.is_finite() => e.metric_d = Some(f),
                MetricValue::Float(_) => {
                    out.unrepresentable += 1;
                    return;
                }
            }
            if !config.state.is_empty() {
                e.state = Some(config.state.clone());
            }
            out.events.push(e);
        };
        for (name, value) in &set.metrics {
            push(name, *value, set_attributes.clone());
        }
        for m in &set.labeled_metrics {
            push(&m.name, m.value, attributes(&set.labels, Some(&m.labels)));
        }
    }
    out
}

/// The ttl and tags every event carries.
fn common(config: &RiemannConfig) -> Event {
    Event { ttl: Some(config.ttl), tags: config.tags.clone(), ..Default::default() }
}

/// The set's labels and the metric's own (which win), sorted by name as riemann-go-client sorted them.
fn attributes(set: &Labels, own: Option<&Labels>) -> Vec<Attribute> {
    let mut all: Vec<Attribute> = set
        .iter()
        .filter(|(k, _)| own.is_none_or(|o| !o.contains_key(k)))
        .chain(own.into_iter().flat_map(|o| o.iter()))
        .map(|(k, v)| Attribute { key: k.to_string(), value: Some(v.to_string()) })
        .collect();
    all.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    all
}

pub fn events(batch: &EventBatch, config: &RiemannConfig) -> Vec<Event> {
    let time = batch.timestamp.div_euclid(1000);
    let seconds = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp().to_string())
            .unwrap_or_default()
    };
    batch
        .events
        .iter()
        .map(|v| {
            let e = &v.event;
            let o = &e.involved_object;
            let mut attributes: Vec<Attribute> = [
                ("namespace", o.namespace.clone()),
                ("uid", o.uid.clone()),
                ("name", o.name.clone()),
                ("api-version", o.api_version.clone()),
                ("resource-version", o.resource_version.clone()),
                ("field-path", o.field_path.clone()),
                ("component", e.source.component.clone()),
                ("last-timestamp", seconds(&e.last_timestamp)),
                ("first-timestamp", seconds(&e.first_timestamp)),
            ]
            .into_iter()
            .map(|(k, v)| Attribute { key: k.to_owned(), value: Some(v) })
            .collect();
            attributes.sort_unstable_by(|a, b| a.key.cmp(&b.key));
            Event {
                time: Some(time),
                service: Some(format!("{}.{}", o.kind, e.reason)),
                host: Some(e.source.host.clone()).filter(|h| !h.is_empty()),
                description: Some(e.message.clone()).filter(|m| !m.is_empty()),
                attributes,
                metric_sint64: Some(i64::from(e.count)),
                state: Some(if e.type_ == "Normal" { "ok" } else { "warning" }.to_owned()),
                ..common(config)
            }
        })
        .collect()
}
