//! Cloud Monitoring v3 over REST: `projects.metricDescriptors.create` once before the first points, then
//! `projects.timeSeries.create` with at most 200 series a request, `workers` requests at a time.
//!
//! A request the service refuses in part (a `CreateTimeSeriesSummary` in the error's details) is counted per cause
//! and not sent again: the points it refused would be refused again. Its accepted points and the refused ones both
//! move their series on, so the next batch does not trip over them. A 429 or a 5xx keeps the batch for the
//! manager's retry; the series already written by then are left out of the resend by their state.

use super::config::GcmConfig;
use super::encoder::{self, Context, Schema, SeriesState};
use super::mapping::{self, Kind, Value};
use crate::SinkError;
use crate::util::google::{GoogleApi, GoogleError, Identity, now_millis, rpc_code_name};
use crate::util::http::Verdict;
use heapster_model::DataBatch;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The most series `timeSeries.create` takes in one request.
pub const MAX_SERIES_PER_REQUEST: usize = 200;

/// One Cloud Monitoring sink's connection and memory of its series.
pub struct Service {
    pub(super) api: GoogleApi,
    pub(super) config: GcmConfig,
    /// The last point of every series written in the last 25 hours, by series key.
    states: Mutex<HashMap<u64, SeriesState>>,
    descriptors_made: tokio::sync::Mutex<bool>,
    last_prune: Mutex<i64>,
}

/// A descriptor as `metricDescriptors.create` takes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescriptorDoc {
    #[serde(rename = "type")]
    pub kind: String,
    pub metric_kind: &'static str,
    pub value_type: &'static str,
    pub unit: &'static str,
    pub description: &'static str,
    pub display_name: String,
    pub labels: Vec<LabelDoc>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelDoc {
    pub key: &'static str,
    pub value_type: &'static str,
}

/// The descriptors of every metric the sink may write, one per metric type.
pub fn descriptors(config: &GcmConfig) -> Vec<DescriptorDoc> {
    let doc = |name: &str, kind: Kind, value: Value, unit, description, labels: Vec<&'static str>| DescriptorDoc {
        kind: format!("{}{name}", config.prefix),
        metric_kind: kind.as_str(),
        value_type: value.as_str(),
        unit,
        description,
        display_name: name.to_owned(),
        labels: labels.into_iter().map(|key| LabelDoc { key, value_type: "STRING" }).collect(),
    };
    let mut out: Vec<DescriptorDoc> = Vec::new();
    match config.schema {
        Schema::Stackdriver => {
            for m in mapping::STACKDRIVER {
                if !out.iter().any(|d| d.display_name == m.name) {
                    out.push(doc(
                        m.name,
                        m.kind,
                        m.value,
                        m.unit,
                        m.description,
                        mapping::stackdriver_label_keys(m.name),
                    ));
                }
            }
        }
        Schema::Gcm { autoscaling_only } => {
            for d in heapster_model::CATALOG {
                let autoscaling = mapping::NODE_AUTOSCALING.contains(&d.name);
                if autoscaling_only && !autoscaling {
                    continue;
                }
                let labels = if autoscaling { mapping::GCM_AUTOSCALING_LABELS } else { mapping::GCM_LABELS };
                let (kind, value) = mapping::gcm_kind(d);
                out.push(doc(d.name, kind, value, mapping::gcm_unit(d), d.description, labels.to_vec()));
            }
        }
    }
    out
}

impl Service {
    pub fn new(api: GoogleApi, config: GcmConfig) -> Self {
        Service {
            api,
            config,
            states: Mutex::default(),
            descriptors_made: tokio::sync::Mutex::new(false),
            last_prune: Mutex::new(0),
        }
    }

    fn states(&self) -> std::sync::MutexGuard<'_, HashMap<u64, SeriesState>> {
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Series remembered now, for tests and the sink's memory.
    pub fn series_known(&self) -> usize {
        self.states().len()
    }

    pub async fn export(self: &Arc<Self>, batch: &DataBatch) -> Result<(), SinkError> {
        let identity = self.api.identity().await?.clone();
        self.ensure_descriptors(&identity).await?;
        let now = now_millis();
        self.prune(now);
        let encoded = {
            let states = self.states();
            let cx = Context {
                identity: &identity,
                prefix: &self.config.prefix,
                schema: self.config.schema,
                now,
                min_spacing: self.config.min_spacing_ms,
                states: &states,
            };
            encoder::encode(batch, &cx)
        };
        let counters = self.api.http().counters();
        for (cause, n) in &encoded.dropped {
            counters.dropped(cause, *n);
        }
        let requests: Vec<(String, Vec<(u64, SeriesState)>)> =
            encoder::requests(&encoded.series, MAX_SERIES_PER_REQUEST)
                .into_iter()
                .map(|(body, series)| (body, series.iter().map(|s| (s.key, s.state)).collect()))
                .collect();
        let url = Arc::new(format!("{}/v3/projects/{}/timeSeries", self.config.endpoint, identity.project));
        let mut worst: Option<SinkError> = None;
        let mut requests = requests.into_iter().peekable();
        while requests.peek().is_some() {
            let mut set = tokio::task::JoinSet::new();
            for (body, series) in requests.by_ref().take(self.config.workers) {
                let (me, url, project) = (self.clone(), url.clone(), identity.project.clone());
                set.spawn(async move { me.write(&url, &project, body, series).await });
            }
            while let Some(r) = set.join_next().await {
                if let Err(e) = r.unwrap_or_else(|e| Err(SinkError::Retry(format!("write task failed: {e}")))) {
                    worst = match (worst, e) {
                        (Some(SinkError::Retry(w)), _) => Some(SinkError::Retry(w)),
                        (_, e) => Some(e),
                    };
                }
            }
        }
        worst.map_or(Ok(()), Err)
    }

    fn commit(&self, series: &[(u64, SeriesState)]) {
        self.states().extend(series.iter().copied());
    }

    /// Forgets series not written for 25 hours: no point of theirs could be written any more anyway.
    fn prune(&self, now: i64) {
        let mut last = self.last_prune.lock().unwrap_or_else(|e| e.into_inner());
        if now - *last < 3_600_000 {
            return;
        }
        *last = now;
        self.states().retain(|_, s| s.end >= now - encoder::MAX_AGE_MS);
    }

    async fn write(
        &self,
        url: &str,
        project: &str,
        body: String,
        series: Vec<(u64, SeriesState)>,
    ) -> Result<(), SinkError> {
        let n = series.len() as u64;
        let (verdict, answer) = self.api.post_json(url, body.as_bytes()).await?;
        let counters = self.api.http().counters();
        match verdict {
            Verdict::Accepted => {
                counters.written(n);
                self.commit(&series);
                Ok(())
            }
            Verdict::Retry { .. } => Err(SinkError::Retry(self.api.describe(&answer, project))),
            Verdict::Reject { cause } => {
                let summary = GoogleError::parse(&answer.text)
                    .and_then(|e| e.detail("google.monitoring.v3.CreateTimeSeriesSummary").cloned());
                match summary {
                    Some(summary) => {
                        let mut refused = 0;
                        for e in summary["errors"].as_array().into_iter().flatten() {
                            let points = e["pointCount"].as_u64().unwrap_or(0);
                            counters.rejected(rpc_code_name(e["status"]["code"].as_i64().unwrap_or(2)), points);
                            refused += points;
                        }
                        let ok = summary["successPointCount"].as_u64().unwrap_or(n.saturating_sub(refused));
                        counters.written(ok);
                        self.commit(&series);
                        tracing::warn!(
                            "{}: {ok} of {n} points written, the rest refused (counted, not retried)",
                            self.api.describe(&answer, project)
                        );
                        Ok(())
                    }
                    None => {
                        counters.rejected(&cause, n);
                        Err(SinkError::Reject(self.api.describe(&answer, project)))
                    }
                }
            }
        }
    }

    /// Creates the descriptors once, before the first points (not under a reserved prefix, whose descriptors
    /// are Google's). One that exists already (409) is fine.
    async fn ensure_descriptors(&self, identity: &Identity) -> Result<(), SinkError> {
        let mut made = self.descriptors_made.lock().await;
        if *made || !self.config.create_descriptors {
            return Ok(());
        }
        let url = format!("{}/v3/projects/{}/metricDescriptors", self.config.endpoint, identity.project);
        for d in descriptors(&self.config) {
            let body = serde_json::to_vec(&d).expect("a descriptor always serializes");
            let (verdict, answer) = self.api.post_json(&url, &body).await?;
            match verdict {
                Verdict::Accepted => {}
                Verdict::Retry { .. } => {
                    return Err(SinkError::Retry(format!(
                        "creating metric descriptor {}: {}",
                        d.kind,
                        self.api.describe(&answer, &identity.project)
                    )));
                }
                Verdict::Reject { .. } => {
                    return Err(SinkError::Reject(format!(
                        "creating metric descriptor {}: {}",
                        d.kind,
                        self.api.describe(&answer, &identity.project)
                    )));
                }
            }
        }
        *made = true;
        Ok(())
    }
}
