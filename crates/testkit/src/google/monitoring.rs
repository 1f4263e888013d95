//! Cloud Monitoring v3: `projects.timeSeries.create` and `projects.metricDescriptors.{create,list,get,delete}`,
//! with the service's rules (see the module above for the list) and the points kept for tests to read.
//!
//! Reasons counted for series refused one by one: `reserved_metric_type`, `resource_type`, `resource_labels`,
//! `resource_project`, `metric_kind`, `value_type`, `metric_labels`, `gauge_interval`, `non_gauge_interval`,
//! `out_of_order`, `too_frequent`, `cumulative_start`, `delta_overlap`. For requests refused whole: `invalid_json`,
//! `no_series`, `too_many_series`, `points_per_series`, `duplicate_series`, `metric_type`, `resource_type`,
//! `end_time`, `end_time_in_future`, `end_time_too_old`, `start_after_end`, `point_value`, `distribution`,
//! `permission_denied`, `invalid_descriptor`, and `unauthenticated` (both APIs).

use super::schema::Violation;
use super::{Labels, Refusal, Service, Shared, bad_request, check_resource, error, error_info, json_response};
use axum::http::{Method, Uri};
use axum::response::Response;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The most series one `timeSeries.create` takes (`CreateTimeSeriesRequest.timeSeries`: "The maximum number of
/// TimeSeries objects per Create request is 200").
pub const MAX_SERIES_PER_REQUEST: usize = 200;
/// Points of one series at least this far apart by default ("Rate at which data can be written to a single time
/// series: one point each 5 seconds", Cloud Monitoring quotas; older versions of the page said 10 seconds, hence
/// [`super::GoogleFake::set_min_point_spacing`]).
pub const MIN_POINT_SPACING: TimeDelta = TimeDelta::seconds(5);
/// Oldest and newest end time accepted (`TimeInterval`: "not more than 25 hours in the past or more than five
/// minutes in the future").
pub const MAX_PAST: TimeDelta = TimeDelta::hours(25);
pub const MAX_FUTURE: TimeDelta = TimeDelta::minutes(5);
/// Buckets of a custom distribution (Cloud Monitoring quotas: "Histogram buckets per custom distribution
/// metric: 200").
pub const MAX_HISTOGRAM_BUCKETS: i64 = 200;
/// Longest label key and value (Cloud Monitoring quotas: "String length for label key: 100", "... for label
/// value: 1024").
pub const MAX_LABEL_KEY: usize = 100;
pub const MAX_LABEL_VALUE: usize = 1024;
/// Labels a custom metric descriptor may have (Cloud Monitoring quotas: "Labels per metric descriptor: 30").
pub const MAX_METRIC_LABELS: usize = 30;

/// One point's value, as `TypedValue` has them.
#[derive(Debug, Clone, PartialEq)]
pub enum PointValue {
    Bool(bool),
    Int64(i64),
    Double(f64),
    String(String),
    /// The `Distribution` as sent (normalised JSON).
    Distribution(Value),
}

impl PointValue {
    /// The value as a double, for comparing numbers whatever their type.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            PointValue::Int64(i) => Some(*i as f64),
            PointValue::Double(d) => Some(*d),
            _ => None,
        }
    }
}

/// A point the fake stored, with its series.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSeriesPoint {
    /// As in the URL, `projects/{project}/timeSeries`.
    pub project: String,
    pub metric_type: String,
    pub metric_labels: BTreeMap<String, String>,
    pub resource_type: String,
    pub resource_labels: BTreeMap<String, String>,
    /// The descriptor's: `GAUGE`, `CUMULATIVE` or `DELTA`.
    pub metric_kind: String,
    /// The descriptor's: `BOOL`, `INT64`, `DOUBLE`, `STRING` or `DISTRIBUTION`.
    pub value_type: String,
    /// The end time for a GAUGE point.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub value: PointValue,
}

/// A metric descriptor, created or auto-created.
pub(crate) struct Descriptor {
    pub json: Value,
    kind: String,
    value_type: String,
    /// Key to `LabelDescriptor.valueType`.
    labels: BTreeMap<String, String>,
    /// Auto-created by a write: new labels are added to it instead of refused.
    auto: bool,
}

type SeriesKey = (String, String, Labels, String, Labels);

struct SeriesState {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

#[derive(Default)]
pub(crate) struct Store {
    pub descriptors: BTreeMap<(String, String), Descriptor>,
    series: HashMap<SeriesKey, SeriesState>,
    pub points: Vec<TimeSeriesPoint>,
    pub rejected_series: BTreeMap<String, u64>,
    pub rejected_requests: BTreeMap<String, u64>,
}

/// One series of a request, checked for what does not depend on the stored data.
struct Parsed {
    metric_type: String,
    metric_labels: Labels,
    resource: Value,
    metric_kind: Option<String>,
    value_type: Option<String>,
    unit: Option<String>,
    description: Option<String>,
    start: Option<DateTime<Utc>>,
    end: DateTime<Utc>,
    value: PointValue,
    point_type: &'static str,
}

pub(crate) fn handle(shared: &Shared, method: &Method, uri: &Uri, id: &str, body: &[u8]) -> Response {
    let rest = uri.path().strip_prefix("/v3/projects/").unwrap_or_default();
    let (project, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let project = decode(project);
    if shared.state().denied.contains(&project) {
        let permission = match id {
            "monitoring.projects.timeSeries.create" => "monitoring.timeSeries.create",
            "monitoring.projects.metricDescriptors.create" => "monitoring.metricDescriptors.create",
            "monitoring.projects.metricDescriptors.list" => "monitoring.metricDescriptors.list",
            "monitoring.projects.metricDescriptors.get" => "monitoring.metricDescriptors.get",
            _ => "monitoring.metricDescriptors.delete",
        };
        return refuse_request(
            shared,
            "permission_denied",
            error(
                403,
                &format!("Permission {permission} denied (or the resource may not exist)."),
                vec![error_info("IAM_PERMISSION_DENIED", Service::Monitoring)],
            ),
        );
    }
    let parse = || -> Result<Value, Box<Response>> {
        serde_json::from_slice(body).map_err(|e| {
            Box::new(refuse_request(
                shared,
                "invalid_json",
                bad_request(&[Violation {
                    field: String::new(),
                    description: format!("Invalid JSON payload received. {e}"),
                }]),
            ))
        })
    };
    let type_in_path = tail.strip_prefix("metricDescriptors/").map(decode).unwrap_or_default();
    let result = match *method {
        Method::POST if tail == "timeSeries" => parse().map(|b| create_time_series(shared, &project, b)),
        Method::POST => parse().map(|b| create_descriptor(shared, &project, b)),
        Method::GET if tail == "metricDescriptors" => Ok(list_descriptors(shared, &project, uri.query())),
        Method::GET => Ok(get_descriptor(shared, &project, &type_in_path, false)),
        _ => Ok(get_descriptor(shared, &project, &type_in_path, true)),
    };
    result.unwrap_or_else(|e| *e)
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn refuse_request(shared: &Shared, reason: &str, response: Response) -> Response {
    *shared.state().monitoring.rejected_requests.entry(reason.to_string()).or_default() += 1;
    response
}

fn violation(field: String, description: String) -> Violation {
    Violation { field, description }
}

fn create_time_series(shared: &Shared, project: &str, body: Value) -> Response {
    let request = match shared.monitoring_schemas.check("CreateTimeSeriesRequest", body) {
        Ok(v) => v,
        Err(v) => return refuse_request(shared, "invalid_json", bad_request(&v)),
    };
    let series = request.get("timeSeries").and_then(Value::as_array).cloned().unwrap_or_default();
    if series.is_empty() {
        let v = violation(
            "time_series".into(),
            "Field timeSeries had an invalid value: At least one TimeSeries is required.".into(),
        );
        return refuse_request(shared, "no_series", bad_request(&[v]));
    }
    if series.len() > MAX_SERIES_PER_REQUEST {
        let v = violation(
            "time_series".into(),
            format!(
                "Field timeSeries had an invalid value: A maximum of {MAX_SERIES_PER_REQUEST} TimeSeries can be written in a single request; this one has {}.",
                series.len()
            ),
        );
        return refuse_request(shared, "too_many_series", bad_request(&[v]));
    }
    let now = Utc::now();
    let mut violations = Vec::new();
    let mut first_reason = None;
    let mut parsed = Vec::with_capacity(series.len());
    let mut seen = HashSet::new();
    for (i, ts) in series.iter().enumerate() {
        match parse_series(i, ts, now) {
            Ok(p) => {
                let resource_labels = labels_of(p.resource.get("labels"));
                let key = (
                    p.metric_type.clone(),
                    p.metric_labels.clone(),
                    p.resource.get("type").and_then(Value::as_str).unwrap_or_default().to_string(),
                    resource_labels,
                );
                if !seen.insert(key) {
                    first_reason.get_or_insert("duplicate_series");
                    violations.push(violation(
                        format!("time_series[{i}]"),
                        format!(
                            "Field timeSeries[{i}] had an invalid value: Duplicate TimeSeries encountered. Only one point can be written per TimeSeries per request."
                        ),
                    ));
                }
                parsed.push(p);
            }
            Err((reason, v)) => {
                first_reason.get_or_insert(reason);
                violations.push(v);
            }
        }
    }
    if let Some(reason) = first_reason {
        return refuse_request(shared, reason, bad_request(&violations));
    }
    let total = parsed.len();
    let mut errors: Vec<(usize, &'static str, String)> = Vec::new();
    {
        let mut state = shared.state();
        let (allow_reserved, spacing) = (state.allow_reserved, state.min_point_spacing);
        let store = &mut state.monitoring;
        for (i, p) in parsed.into_iter().enumerate() {
            if let Err((reason, message)) = store.write(project, p, allow_reserved, spacing) {
                *store.rejected_series.entry(reason.to_string()).or_default() += 1;
                errors.push((i, reason, message));
            }
        }
    }
    if errors.is_empty() {
        return json_response(200, &json!({}));
    }
    let mut groups: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, _, message) in &errors {
        *groups.entry(message).or_default() += 1;
    }
    let summary = json!({
        "@type": "type.googleapis.com/google.monitoring.v3.CreateTimeSeriesSummary",
        "totalPointCount": total,
        "successPointCount": total - errors.len(),
        "errors": groups.iter().map(|(m, n)| json!({ "status": { "code": 3, "message": m }, "pointCount": n })).collect::<Vec<_>>(),
    });
    let listed: Vec<String> = errors.iter().map(|(i, _, m)| format!("{m}: timeSeries[{i}]")).collect();
    error(400, &format!("One or more TimeSeries could not be written: {}", listed.join("; ")), vec![summary])
}

fn labels_of(v: Option<&Value>) -> Labels {
    v.and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default()
}

fn time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    v.and_then(Value::as_str).and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc))
}

/// The checks of one series that refuse the whole request.
fn parse_series(i: usize, ts: &Value, now: DateTime<Utc>) -> Result<Parsed, (&'static str, Violation)> {
    let refuse = |reason, field: String, description: String| Err((reason, violation(field, description)));
    let points = ts.get("points").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    if points.len() != 1 {
        return refuse(
            "points_per_series",
            format!("time_series[{i}].points"),
            format!(
                "Field timeSeries[{i}].points had an invalid value: Only one point can be written per TimeSeries per request; this one has {}.",
                points.len()
            ),
        );
    }
    let metric_type = ts.pointer("/metric/type").and_then(Value::as_str).unwrap_or_default().to_string();
    if metric_type.is_empty() {
        return refuse(
            "metric_type",
            format!("time_series[{i}].metric.type"),
            format!("Field timeSeries[{i}].metric.type had an invalid value: The metric type is required."),
        );
    }
    let resource = ts.get("resource").cloned().unwrap_or(Value::Null);
    if resource.get("type").and_then(Value::as_str).unwrap_or_default().is_empty() {
        return refuse(
            "resource_type",
            format!("time_series[{i}].resource.type"),
            format!(
                "Field timeSeries[{i}].resource.type had an invalid value: The monitored resource type is required."
            ),
        );
    }
    let point = &points[0];
    let field = |name: &str| format!("time_series[{i}].points[0].interval.{name}");
    let Some(end) = time(point.pointer("/interval/endTime")) else {
        return refuse(
            "end_time",
            field("end_time"),
            format!(
                "Field timeSeries[{i}].points[0].interval.end_time had an invalid value: The end time is required."
            ),
        );
    };
    let end_text = point.pointer("/interval/endTime").and_then(Value::as_str).unwrap_or_default();
    if end > now + MAX_FUTURE {
        return refuse(
            "end_time_in_future",
            field("end_time"),
            format!(
                "Field timeSeries[{i}].points[0].interval.end_time had an invalid value of \"{end_text}\": Data points cannot be written more than 5m in the future."
            ),
        );
    }
    if end < now - MAX_PAST {
        return refuse(
            "end_time_too_old",
            field("end_time"),
            format!(
                "Field timeSeries[{i}].points[0].interval.end_time had an invalid value of \"{end_text}\": Data points cannot be written more than 25h in the past."
            ),
        );
    }
    let start = time(point.pointer("/interval/startTime"));
    if let Some(start) = start
        && start > end
    {
        let start_text = point.pointer("/interval/startTime").and_then(Value::as_str).unwrap_or_default();
        return refuse(
            "start_after_end",
            field("start_time"),
            format!(
                "Field timeSeries[{i}].points[0].interval.start_time had an invalid value of \"{start_text}\": The start time must not be later than the end time (\"{end_text}\")."
            ),
        );
    }
    let value = point.get("value").and_then(Value::as_object).cloned().unwrap_or_default();
    let Some((value, point_type)) = point_value(&value) else {
        return refuse(
            "point_value",
            format!("time_series[{i}].points[0].value"),
            format!(
                "Field timeSeries[{i}].points[0].value had an invalid value: exactly one of bool_value, int64_value, double_value, string_value or distribution_value must be set."
            ),
        );
    };
    if let PointValue::Distribution(d) = &value
        && let Err(why) = check_distribution(d)
    {
        return refuse(
            "distribution",
            format!("time_series[{i}].points[0].value.distribution_value"),
            format!("Field timeSeries[{i}].points[0].value.distributionValue had an invalid value: {why}"),
        );
    }
    let enum_field = |name: &str, unspecified: &str| {
        ts.get(name).and_then(Value::as_str).filter(|k| *k != unspecified).map(str::to_string)
    };
    Ok(Parsed {
        metric_type,
        metric_labels: labels_of(ts.pointer("/metric/labels")),
        resource,
        metric_kind: enum_field("metricKind", "METRIC_KIND_UNSPECIFIED"),
        value_type: enum_field("valueType", "VALUE_TYPE_UNSPECIFIED"),
        unit: ts.get("unit").and_then(Value::as_str).filter(|u| !u.is_empty()).map(str::to_string),
        description: ts.get("description").and_then(Value::as_str).filter(|u| !u.is_empty()).map(str::to_string),
        start,
        end,
        value,
        point_type,
    })
}

/// The one value a `TypedValue` sets, and its value type.
fn point_value(value: &Map<String, Value>) -> Option<(PointValue, &'static str)> {
    if value.len() != 1 {
        return None;
    }
    let (key, v) = value.iter().next()?;
    Some(match key.as_str() {
        "boolValue" => (PointValue::Bool(v.as_bool()?), "BOOL"),
        "int64Value" => (PointValue::Int64(v.as_str()?.parse().ok()?), "INT64"),
        "doubleValue" => (PointValue::Double(double(v)?), "DOUBLE"),
        "stringValue" => (PointValue::String(v.as_str()?.to_string()), "STRING"),
        "distributionValue" => (PointValue::Distribution(v.clone()), "DISTRIBUTION"),
        _ => return None,
    })
}

/// The constraints the `Distribution` schema's descriptions state for Cloud Monitoring v3.
fn check_distribution(d: &Value) -> Result<(), String> {
    let int = |v: &Value| v.as_str().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    let num = |v: Option<&Value>| v.and_then(double).unwrap_or(0.0);
    let count = d.get("count").map(int).unwrap_or(0);
    if count < 0 {
        return Err(format!("count must be non-negative, not {count}."));
    }
    if count == 0 && (num(d.get("mean")) != 0.0 || num(d.get("sumOfSquaredDeviation")) != 0.0) {
        return Err("mean and sum_of_squared_deviation must be zero when count is zero.".into());
    }
    let options = d.get("bucketOptions").ok_or("bucket_options is required in the Cloud Monitoring API v3.")?;
    let buckets = if let Some(l) = options.get("linearBuckets") {
        let n = l.get("numFiniteBuckets").and_then(Value::as_i64).unwrap_or(0);
        if n <= 0 || num(l.get("width")) <= 0.0 {
            return Err("linear buckets need num_finite_buckets > 0 and width > 0.".into());
        }
        n + 2
    } else if let Some(e) = options.get("exponentialBuckets") {
        let n = e.get("numFiniteBuckets").and_then(Value::as_i64).unwrap_or(0);
        if n <= 0 || num(e.get("growthFactor")) <= 1.0 || num(e.get("scale")) <= 0.0 {
            return Err("exponential buckets need num_finite_buckets > 0, growth_factor > 1 and scale > 0.".into());
        }
        n + 2
    } else if let Some(x) = options.get("explicitBuckets") {
        let bounds: Vec<f64> = x
            .get("bounds")
            .and_then(Value::as_array)
            .map(|b| b.iter().filter_map(double).collect())
            .unwrap_or_default();
        if bounds.is_empty() || bounds.windows(2).any(|w| w[0] >= w[1]) {
            return Err("explicit bucket bounds must be at least one value, monotonically increasing.".into());
        }
        bounds.len() as i64 + 1
    } else {
        return Err("bucket_options sets none of linear_buckets, exponential_buckets, explicit_buckets.".into());
    };
    if buckets > MAX_HISTOGRAM_BUCKETS {
        return Err(format!("{buckets} buckets; a distribution metric may have at most {MAX_HISTOGRAM_BUCKETS}."));
    }
    let counts: Vec<i64> =
        d.get("bucketCounts").and_then(Value::as_array).map(|c| c.iter().map(int).collect()).unwrap_or_default();
    if counts.len() as i64 > buckets {
        return Err(format!("{} bucket counts for {buckets} buckets.", counts.len()));
    }
    let sum: i64 = counts.iter().sum();
    if sum != count {
        return Err(format!("the bucket counts add up to {sum}, not to count ({count})."));
    }
    Ok(())
}

fn double(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            s => s.parse().ok(),
        },
        _ => None,
    }
}

fn is_user_defined(metric_type: &str) -> bool {
    metric_type.starts_with("custom.googleapis.com/") || metric_type.starts_with("external.googleapis.com/")
}

impl Store {
    /// Stores one series' point, or says why the service would refuse it.
    fn write(&mut self, project: &str, p: Parsed, allow_reserved: bool, spacing: TimeDelta) -> Result<(), Refusal> {
        let t = &p.metric_type;
        if !is_user_defined(t) && !allow_reserved {
            return Err((
                "reserved_metric_type",
                format!(
                    "Field timeSeries.metric.type had an invalid value of \"{t}\": The metric type is not under custom.googleapis.com/ or external.googleapis.com/; other prefixes are reserved for Google's own metrics."
                ),
            ));
        }
        let (resource_type, resource_labels) = check_resource(Some(&p.resource))?;
        if resource_labels.get("project_id").map(String::as_str) != Some(project) {
            return Err((
                "resource_project",
                format!(
                    "The resource label project_id ({}) is not the project written to ({project}).",
                    resource_labels["project_id"]
                ),
            ));
        }
        if let Some(v) = &p.value_type
            && v != p.point_type
        {
            return Err((
                "value_type",
                format!("The value type of the time series ({v}) is not the type of its point ({}).", p.point_type),
            ));
        }
        if let Some((key, value)) =
            p.metric_labels.iter().find(|(k, v)| k.len() > MAX_LABEL_KEY || v.chars().count() > MAX_LABEL_VALUE)
        {
            return Err((
                "metric_labels",
                format!(
                    "Metric label {key:?} of {t} is too long: keys take at most {MAX_LABEL_KEY} characters, values {MAX_LABEL_VALUE} ({} given).",
                    value.chars().count()
                ),
            ));
        }
        let descriptor = self.descriptors.get(&(project.to_string(), t.clone()));
        let (kind, value_type) = match descriptor {
            Some(d) => {
                if let Some(k) = &p.metric_kind
                    && *k != d.kind
                {
                    return Err(("metric_kind", format!("Metric kind for metric {t} must be {}, but is {k}.", d.kind)));
                }
                if p.point_type != d.value_type {
                    return Err((
                        "value_type",
                        format!("Value type for metric {t} must be {}, but is {}.", d.value_type, p.point_type),
                    ));
                }
                for (key, value) in &p.metric_labels {
                    match d.labels.get(key).map(String::as_str) {
                        None if !d.auto => {
                            return Err((
                                "metric_labels",
                                format!("Unrecognized metric label key \"{key}\" for metric {t}."),
                            ));
                        }
                        Some("INT64") if value.parse::<i64>().is_err() => {
                            return Err((
                                "metric_labels",
                                format!("Metric label {key} of {t} must be an INT64: {value:?}."),
                            ));
                        }
                        Some("BOOL") if value != "true" && value != "false" => {
                            return Err((
                                "metric_labels",
                                format!("Metric label {key} of {t} must be a BOOL: {value:?}."),
                            ));
                        }
                        _ => {}
                    }
                }
                (d.kind.clone(), d.value_type.clone())
            }
            None => {
                let kind = p.metric_kind.clone().unwrap_or_else(|| "GAUGE".into());
                if kind == "DELTA" {
                    return Err((
                        "metric_kind",
                        format!(
                            "Metric {t} has no descriptor, and only GAUGE and CUMULATIVE descriptors are created automatically; create it first."
                        ),
                    ));
                }
                if p.point_type == "STRING" {
                    return Err((
                        "value_type",
                        format!(
                            "Metric {t} has no descriptor, and STRING descriptors are not created automatically; create it first."
                        ),
                    ));
                }
                (kind, p.point_type.to_string())
            }
        };
        if kind != "GAUGE" && (value_type == "BOOL" || value_type == "STRING") {
            return Err((
                "value_type",
                format!("{value_type} values can be written only to GAUGE metrics; {t} is {kind}."),
            ));
        }
        let end = p.end;
        let start = match (kind.as_str(), p.start) {
            ("GAUGE", Some(s)) if s != end => {
                return Err((
                    "gauge_interval",
                    format!(
                        "Field points[0].interval.start_time had an invalid value of \"{}\": The start time must be equal to the end time ({}) for the gauge metric '{t}'.",
                        rfc3339(s),
                        rfc3339(end)
                    ),
                ));
            }
            ("GAUGE", _) => end,
            (_, Some(s)) if s < end => s,
            (_, s) => {
                return Err((
                    "non_gauge_interval",
                    format!(
                        "Field points[0].interval.start_time had an invalid value of \"{}\": The start time must be before the end time ({}) for the non-gauge metric '{t}'.",
                        s.map(rfc3339).unwrap_or_default(),
                        rfc3339(end)
                    ),
                ));
            }
        };
        let key: SeriesKey =
            (project.to_string(), t.clone(), p.metric_labels.clone(), resource_type.clone(), resource_labels.clone());
        if let Some(last) = self.series.get(&key) {
            if end <= last.end {
                return Err((
                    "out_of_order",
                    "Points must be written in order. One or more of the points specified had an older start time than the most recent point.".into(),
                ));
            }
            if end - last.end < spacing {
                return Err((
                    "too_frequent",
                    "One or more points were written more frequently than the maximum sampling period configured for the metric.".into(),
                ));
            }
            if kind == "CUMULATIVE" && start != last.start && start <= last.end {
                return Err((
                    "cumulative_start",
                    format!(
                        "The start time ({}) of a CUMULATIVE point must be its series' start time ({}), or after the previous point's end time ({}) when the value was reset.",
                        rfc3339(start),
                        rfc3339(last.start),
                        rfc3339(last.end)
                    ),
                ));
            }
            if kind == "DELTA" && start <= last.end {
                return Err((
                    "delta_overlap",
                    format!(
                        "The start time ({}) of a DELTA point must be after the previous point's end time ({}).",
                        rfc3339(start),
                        rfc3339(last.end)
                    ),
                ));
            }
        }
        // Accepted: the descriptor is created or grows its labels, as the service does for custom metrics.
        let descriptor_key = (project.to_string(), t.clone());
        let d = self.descriptors.entry(descriptor_key).or_insert_with(|| {
            let mut json = json!({
                "name": format!("projects/{project}/metricDescriptors/{t}"),
                "type": t,
                "metricKind": kind,
                "valueType": value_type,
                "description": p.description.clone().unwrap_or_else(|| "Auto created custom metric.".into()),
            });
            if let Some(unit) = &p.unit {
                json["unit"] = json!(unit);
            }
            Descriptor { json, kind: kind.clone(), value_type: value_type.clone(), labels: BTreeMap::new(), auto: true }
        });
        if d.auto {
            for key in p.metric_labels.keys() {
                if !d.labels.contains_key(key) {
                    d.labels.insert(key.clone(), "STRING".into());
                }
            }
            d.json["labels"] = d.labels.keys().map(|k| json!({ "key": k })).collect();
        }
        self.series.insert(key, SeriesState { start, end });
        self.points.push(TimeSeriesPoint {
            project: project.to_string(),
            metric_type: p.metric_type,
            metric_labels: p.metric_labels,
            resource_type,
            resource_labels,
            metric_kind: kind,
            value_type,
            start,
            end,
            value: p.value,
        });
        Ok(())
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// `projects.metricDescriptors.create`.
fn create_descriptor(shared: &Shared, project: &str, body: Value) -> Response {
    let d = match shared.monitoring_schemas.check("MetricDescriptor", body) {
        Ok(v) => v,
        Err(v) => return refuse_request(shared, "invalid_json", bad_request(&v)),
    };
    let allow_reserved = shared.state().allow_reserved;
    let invalid = |field: &str, description: String| {
        refuse_request(
            shared,
            "invalid_descriptor",
            bad_request(&[violation(format!("metric_descriptor.{field}"), description)]),
        )
    };
    let t = d.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
    if t.is_empty() {
        return invalid(
            "type",
            "Field metricDescriptor.type had an invalid value: The metric type is required.".into(),
        );
    }
    let path = t.split_once('/').map(|(_, p)| p).unwrap_or_default();
    if path.is_empty() || !path.chars().all(|c| c.is_ascii_alphanumeric() || "_/.-".contains(c)) {
        return invalid(
            "type",
            format!(
                "Field metricDescriptor.type had an invalid value of \"{t}\": A metric type is a DNS name, '/' and a path of letters, digits, '_', '.', '-' and '/'."
            ),
        );
    }
    if !is_user_defined(&t) && !allow_reserved {
        return invalid(
            "type",
            format!(
                "Field metricDescriptor.type had an invalid value of \"{t}\": User-defined metric types must begin with custom.googleapis.com/ or external.googleapis.com/."
            ),
        );
    }
    let name = format!("projects/{project}/metricDescriptors/{t}");
    if let Some(given) = d.get("name").and_then(Value::as_str)
        && given != name
    {
        return invalid(
            "name",
            format!("Field metricDescriptor.name had an invalid value of \"{given}\": It must be \"{name}\"."),
        );
    }
    let enum_value = |f: &str| d.get(f).and_then(Value::as_str).unwrap_or_default().to_string();
    let kind = enum_value("metricKind");
    if kind.is_empty() || kind == "METRIC_KIND_UNSPECIFIED" {
        return invalid(
            "metric_kind",
            "Field metricDescriptor.metricKind had an invalid value: The metric kind is required.".into(),
        );
    }
    let value_type = enum_value("valueType");
    if value_type.is_empty() || value_type == "VALUE_TYPE_UNSPECIFIED" {
        return invalid(
            "value_type",
            "Field metricDescriptor.valueType had an invalid value: The value type is required.".into(),
        );
    }
    if kind != "GAUGE" && (value_type == "BOOL" || value_type == "STRING") {
        return invalid(
            "value_type",
            format!(
                "Field metricDescriptor.valueType had an invalid value of \"{value_type}\": It can be used only if the metric kind is GAUGE, not {kind}."
            ),
        );
    }
    let mut labels = BTreeMap::new();
    for (i, l) in d.get("labels").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default().iter().enumerate() {
        let key = l.get("key").and_then(Value::as_str).unwrap_or_default();
        let valid = key.len() <= MAX_LABEL_KEY
            && key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return invalid(
                &format!("labels[{i}].key"),
                format!(
                    "Field metricDescriptor.labels[{i}].key had an invalid value of \"{key}\": A label key matches [a-zA-Z][a-zA-Z0-9_]* and has at most 100 characters."
                ),
            );
        }
        let vt = l.get("valueType").and_then(Value::as_str).unwrap_or("STRING").to_string();
        if labels.insert(key.to_string(), vt).is_some() {
            return invalid(
                &format!("labels[{i}].key"),
                format!(
                    "Field metricDescriptor.labels[{i}].key had an invalid value of \"{key}\": Duplicate label key."
                ),
            );
        }
    }
    if labels.len() > MAX_METRIC_LABELS {
        return invalid(
            "labels",
            format!("The new labels would cause the metric {t} to have over {MAX_METRIC_LABELS} labels."),
        );
    }
    if let Some(unit) = d.get("unit").and_then(Value::as_str)
        && !valid_unit(unit)
    {
        return invalid(
            "unit",
            format!(
                "Field metricDescriptor.unit had an invalid value of \"{unit}\": The unit is not of the UCUM subset the API documents."
            ),
        );
    }
    let mut json = d.clone();
    json["name"] = json!(name);
    let mut state = shared.state();
    let key = (project.to_string(), t.clone());
    if let Some(old) = state.monitoring.descriptors.get(&key)
        && (old.kind != kind || old.value_type != value_type)
    {
        let message = format!(
            "Metric descriptor {t} exists with metric kind {} and value type {}; delete it before changing them.",
            old.kind, old.value_type
        );
        drop(state);
        return invalid("type", message);
    }
    state.monitoring.descriptors.insert(key, Descriptor { json: json.clone(), kind, value_type, labels, auto: false });
    json_response(200, &json)
}

/// `projects.metricDescriptors.list`, with the filters `metric.type = "T"` and
/// `metric.type = starts_with("P")`.
fn list_descriptors(shared: &Shared, project: &str, query: Option<&str>) -> Response {
    let filter = query
        .and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "filter").map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default();
    let matcher: Box<dyn Fn(&str) -> bool> = if filter.trim().is_empty() {
        Box::new(|_| true)
    } else {
        let rhs = filter.trim().strip_prefix("metric.type").map(str::trim_start).and_then(|r| r.strip_prefix('='));
        let rhs = rhs.map(str::trim).unwrap_or_default();
        if let Some(p) = rhs.strip_prefix("starts_with(\"").and_then(|r| r.strip_suffix("\")")) {
            let p = p.to_string();
            Box::new(move |t| t.starts_with(&p))
        } else if let Some(t) = rhs.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            let t = t.to_string();
            Box::new(move |x| x == t)
        } else {
            return bad_request(&[violation(
                "filter".into(),
                format!(
                    "Field filter had an invalid value of \"{filter}\": this fake understands only metric.type = \"T\" and metric.type = starts_with(\"P\")."
                ),
            )]);
        }
    };
    let state = shared.state();
    let list: Vec<Value> = state
        .monitoring
        .descriptors
        .iter()
        .filter(|((p, t), _)| p == project && matcher(t))
        .map(|(_, d)| d.json.clone())
        .collect();
    // proto3 JSON leaves out an empty repeated field.
    json_response(200, &if list.is_empty() { json!({}) } else { json!({ "metricDescriptors": list }) })
}

/// `projects.metricDescriptors.get` or `.delete`.
fn get_descriptor(shared: &Shared, project: &str, t: &str, delete: bool) -> Response {
    let mut state = shared.state();
    let key = (project.to_string(), t.to_string());
    let found = if delete {
        state.monitoring.descriptors.remove(&key).map(|_| json!({}))
    } else {
        state.monitoring.descriptors.get(&key).map(|d| d.json.clone())
    };
    match found {
        Some(v) => json_response(200, &v),
        None => error(404, &format!("Could not find descriptor for metric '{t}'."), vec![]),
    }
}

/// A unit of the UCUM subset `MetricDescriptor.unit` documents: components joined by `.`, then `/` components;
/// a component is an optional number (`10^2`, `1000`), a `[PREFIX]UNIT` or `%`, and an optional `{annotation}`.
fn valid_unit(unit: &str) -> bool {
    const UNITS: &[&str] = &["bit", "By", "s", "min", "h", "d", "1", "%"];
    const PREFIXES: &[&str] =
        &["Ki", "Mi", "Gi", "Ti", "Pi", "k", "M", "G", "T", "P", "E", "Z", "Y", "m", "u", "n", "p", "f", "a", "z", "y"];
    if unit.is_empty() {
        return true;
    }
    let component = |c: &str| -> bool {
        let (body, annotation) = match c.find('{') {
            Some(i) => (&c[..i], Some(&c[i..])),
            None => (c, None),
        };
        if let Some(a) = annotation
            && !(a.ends_with('}')
                && a[1..a.len() - 1].chars().all(|ch| ch.is_ascii_graphic() && ch != '{' && ch != '}'))
        {
            return false;
        }
        let digits = body.trim_start_matches(|ch: char| ch.is_ascii_digit() || ch == '^');
        let rest = if digits.len() < body.len() { digits } else { body };
        if rest.is_empty() {
            return annotation.is_some() || !body.is_empty();
        }
        // "k{page_views}/d" is one of the API's own examples: a prefix may scale an annotation.
        (annotation.is_some() && PREFIXES.contains(&rest))
            || UNITS.contains(&rest)
            || PREFIXES.iter().any(|p| rest.strip_prefix(p).is_some_and(|u| UNITS.contains(&u) && u != "%"))
    };
    let mut parts = unit.split('/');
    let numerator = parts.next().unwrap_or_default();
    numerator.split('.').all(component) && parts.all(component)
}
