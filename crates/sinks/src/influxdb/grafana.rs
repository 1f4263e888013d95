//! The Grafana dashboards shipped in `deploy/grafana/dashboards/`: cluster, nodes, namespaces and pods, for the
//! sink's default schema and for `withfields=true`, rendered from one description so that the two cannot drift
//! apart. They are product files, so the product makes them:
//! `cargo run -p heapster-sinks --example grafana-dashboards -- deploy/grafana` rewrites them, and
//! `crates/heapster/tests/grafana.rs` checks that the shipped files are these and runs every query of every
//! dashboard against a real InfluxDB filled by heapster.

use super::Schema;
use serde_json::{Value, json};

/// One dashboard file.
pub struct DashboardFile {
    /// Relative to `deploy/grafana/`: `dashboards/<schema folder>/<name>.json`.
    pub path: String,
    /// The schema its queries read, and so the database it needs.
    pub schema: Schema,
    /// The file's whole text.
    pub json: String,
}

/// Every dashboard of every schema, as the files under `deploy/grafana/` hold them.
pub fn dashboard_files() -> Vec<DashboardFile> {
    let mut out = Vec::new();
    for schema in SCHEMAS {
        for d in dashboards() {
            let json = serde_json::to_string_pretty(&render(&d, schema)).expect("JSON values serialise") + "\n";
            out.push(DashboardFile { path: format!("dashboards/{}/{}.json", folder(schema), d.file), schema, json });
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// What the dashboards show
// ---------------------------------------------------------------------------------------------------------------

/// The schemas the dashboards are made for, each in its own folder (Grafana's provisioning shows folders); the
/// seed's `schema=legacy` has none.
const SCHEMAS: [Schema; 2] = [Schema::Heapster, Schema::WithFields];

/// Directory under `deploy/grafana/dashboards/`.
fn folder(schema: Schema) -> &'static str {
    match schema {
        Schema::Heapster => "heapster",
        Schema::WithFields => "heapster-withfields",
        Schema::Legacy => unreachable!("no dashboards for schema=legacy"),
    }
}

/// Measurement and field of `metric`, as the sink writes them ([`super::encoder`]).
fn measurement_field(schema: Schema, metric: &str) -> (&str, &str) {
    match schema {
        Schema::WithFields => metric.split_once('/').unwrap_or((metric, "value")),
        Schema::Heapster | Schema::Legacy => (metric, "value"),
    }
}

/// One line of a panel: `metric`'s mean per interval, for the metric sets `filter` selects, one line per value of
/// the `group_by` tags.
struct Line {
    metric: &'static str,
    /// InfluxQL conditions on tags (template variables allowed); the cluster and time filters are added.
    filter: &'static str,
    group_by: &'static [&'static str],
    /// Grafana's legend: `$tag_<key>` names a group.
    alias: &'static str,
}

const fn line(
    metric: &'static str,
    filter: &'static str,
    group_by: &'static [&'static str],
    alias: &'static str,
) -> Line {
    Line { metric, filter, group_by, alias }
}

#[derive(Clone, Copy)]
enum Unit {
    Millicores,
    Bytes,
    BytesPerSecond,
    Count,
}

impl Unit {
    /// Grafana's unit id and the axis label.
    fn grafana(self) -> (&'static str, &'static str) {
        match self {
            Unit::Millicores => ("short", "millicores"),
            Unit::Bytes => ("bytes", ""),
            Unit::BytesPerSecond => ("Bps", ""),
            Unit::Count => ("short", ""),
        }
    }
}

struct Panel {
    title: &'static str,
    description: &'static str,
    unit: Unit,
    lines: Vec<Line>,
}

/// A template variable: the values of tag `key` among the metric sets `filter` selects.
struct Var {
    name: &'static str,
    label: &'static str,
    key: &'static str,
    /// InfluxQL conditions (earlier variables allowed); the cluster filter is added for every variable but the
    /// cluster itself.
    filter: &'static str,
}

struct Dashboard {
    /// File name without `.json`, and part of the uid.
    file: &'static str,
    title: &'static str,
    description: &'static str,
    vars: Vec<Var>,
    panels: Vec<Panel>,
}

/// The metric whose tags the variables list: a gauge every metric set has in every source, written even with
/// `disable_counter_metrics=true`.
const VARIABLE_METRIC: &str = "memory/usage";

const NODE: &str = r#""type" = 'node' AND "nodename" =~ /^$nodename$/"#;
const NODE_SYS: &str = r#""type" = 'sys_container' AND "nodename" =~ /^$nodename$/"#;
const NS: &str = r#""type" = 'ns' AND "namespace_name" =~ /^$namespace$/"#;
const NS_PODS: &str = r#""type" = 'pod' AND "namespace_name" =~ /^$namespace$/"#;
const POD: &str = r#""type" = 'pod' AND "namespace_name" =~ /^$namespace$/ AND "pod_name" =~ /^$pod$/"#;
const POD_CONTAINERS: &str =
    r#""type" = 'pod_container' AND "namespace_name" =~ /^$namespace$/ AND "pod_name" =~ /^$pod$/"#;

fn dashboards() -> Vec<Dashboard> {
    use Unit::*;
    let cluster = r#""type" = 'cluster'"#;
    let nodes = r#""type" = 'node'"#;
    vec![
        Dashboard {
            file: "cluster",
            title: "Cluster",
            description: "The whole cluster (heapster's cluster set: the sum of its nodes) and each node side by side.",
            vars: vec![],
            panels: vec![
                Panel {
                    title: "CPU usage",
                    description: "CPU used by all nodes together, in millicores (1000 = one core).",
                    unit: Millicores,
                    lines: vec![line("cpu/usage_rate", cluster, &[], "usage")],
                },
                Panel {
                    title: "Memory",
                    description: "Memory used by all nodes together; the working set is what cannot be dropped.",
                    unit: Bytes,
                    lines: vec![
                        line("memory/usage", cluster, &[], "usage"),
                        line("memory/working_set", cluster, &[], "working set"),
                    ],
                },
                Panel {
                    title: "Network",
                    description: "Bytes per second received and sent by all nodes together.",
                    unit: BytesPerSecond,
                    lines: vec![
                        line("network/rx_rate", cluster, &[], "received"),
                        line("network/tx_rate", cluster, &[], "sent"),
                    ],
                },
                Panel {
                    title: "Filesystem usage by node",
                    description: "Bytes used on each node's filesystems (resource_id: the device).",
                    unit: Bytes,
                    lines: vec![line(
                        "filesystem/usage",
                        nodes,
                        &["nodename", "resource_id"],
                        "$tag_nodename $tag_resource_id",
                    )],
                },
                Panel {
                    title: "CPU usage by node",
                    description: "CPU used by each node, in millicores.",
                    unit: Millicores,
                    lines: vec![line("cpu/usage_rate", nodes, &["nodename"], "$tag_nodename")],
                },
                Panel {
                    title: "Memory working set by node",
                    description: "Working set of each node.",
                    unit: Bytes,
                    lines: vec![line("memory/working_set", nodes, &["nodename"], "$tag_nodename")],
                },
                Panel {
                    title: "Network received by node",
                    description: "Bytes per second received by each node.",
                    unit: BytesPerSecond,
                    lines: vec![line("network/rx_rate", nodes, &["nodename"], "$tag_nodename")],
                },
                Panel {
                    title: "Network sent by node",
                    description: "Bytes per second sent by each node.",
                    unit: BytesPerSecond,
                    lines: vec![line("network/tx_rate", nodes, &["nodename"], "$tag_nodename")],
                },
            ],
        },
        Dashboard {
            file: "nodes",
            title: "Nodes",
            description: "One node: its own usage, its filesystems and its system containers (cgroups outside pods).",
            vars: vec![Var { name: "nodename", label: "Node", key: "nodename", filter: r#""type" = 'node'"# }],
            panels: vec![
                Panel {
                    title: "CPU usage",
                    description: "CPU used by the node, in millicores; the limit is its CPUs (standalone) or the \
                                  sum of its pods' limits (Kubernetes).",
                    unit: Millicores,
                    lines: vec![line("cpu/usage_rate", NODE, &[], "usage"), line("cpu/limit", NODE, &[], "limit")],
                },
                Panel {
                    title: "Memory",
                    description: "Memory used by the node, and its working set (what cannot be dropped).",
                    unit: Bytes,
                    lines: vec![
                        line("memory/usage", NODE, &[], "usage"),
                        line("memory/working_set", NODE, &[], "working set"),
                    ],
                },
                Panel {
                    title: "Network",
                    description: "Bytes per second received and sent by the node.",
                    unit: BytesPerSecond,
                    lines: vec![
                        line("network/rx_rate", NODE, &[], "received"),
                        line("network/tx_rate", NODE, &[], "sent"),
                    ],
                },
                Panel {
                    title: "Filesystems",
                    description: "Bytes used and total size of each of the node's filesystems (resource_id).",
                    unit: Bytes,
                    lines: vec![
                        line("filesystem/usage", NODE, &["resource_id"], "usage $tag_resource_id"),
                        line("filesystem/limit", NODE, &["resource_id"], "size $tag_resource_id"),
                    ],
                },
                Panel {
                    title: "CPU usage by system container",
                    description: "CPU used by each system container (kubelet, runtime; every cgroup in standalone \
                                  mode), in millicores.",
                    unit: Millicores,
                    lines: vec![line("cpu/usage_rate", NODE_SYS, &["container_name"], "$tag_container_name")],
                },
                Panel {
                    title: "Memory working set by system container",
                    description: "Working set of each system container.",
                    unit: Bytes,
                    lines: vec![line("memory/working_set", NODE_SYS, &["container_name"], "$tag_container_name")],
                },
            ],
        },
        Dashboard {
            file: "namespaces",
            title: "Namespaces",
            description: "One namespace (the sum of its pods) and each of its pods.",
            vars: vec![Var {
                name: "namespace",
                label: "Namespace",
                key: "namespace_name",
                filter: r#""type" = 'ns'"#,
            }],
            panels: vec![
                Panel {
                    title: "CPU usage",
                    description: "CPU used by the namespace's pods, with their requests and limits, in millicores.",
                    unit: Millicores,
                    lines: vec![
                        line("cpu/usage_rate", NS, &[], "usage"),
                        line("cpu/request", NS, &[], "request"),
                        line("cpu/limit", NS, &[], "limit"),
                    ],
                },
                Panel {
                    title: "Memory",
                    description: "Memory used by the namespace's pods, with their requests and limits.",
                    unit: Bytes,
                    lines: vec![
                        line("memory/usage", NS, &[], "usage"),
                        line("memory/working_set", NS, &[], "working set"),
                        line("memory/request", NS, &[], "request"),
                        line("memory/limit", NS, &[], "limit"),
                    ],
                },
                Panel {
                    title: "Network",
                    description: "Bytes per second received and sent by the namespace's pods.",
                    unit: BytesPerSecond,
                    lines: vec![line("network/rx_rate", NS, &[], "received"), line("network/tx_rate", NS, &[], "sent")],
                },
                Panel {
                    title: "Ephemeral storage",
                    description: "Local disk used by the namespace's pods (writable layers, logs, emptyDir volumes).",
                    unit: Bytes,
                    lines: vec![line("ephemeral_storage/usage", NS, &[], "usage")],
                },
                Panel {
                    title: "CPU usage by pod",
                    description: "CPU used by each pod of the namespace, in millicores.",
                    unit: Millicores,
                    lines: vec![line("cpu/usage_rate", NS_PODS, &["pod_name"], "$tag_pod_name")],
                },
                Panel {
                    title: "Memory working set by pod",
                    description: "Working set of each pod of the namespace.",
                    unit: Bytes,
                    lines: vec![line("memory/working_set", NS_PODS, &["pod_name"], "$tag_pod_name")],
                },
                Panel {
                    title: "Network by pod",
                    description: "Bytes per second received and sent by each pod of the namespace.",
                    unit: BytesPerSecond,
                    lines: vec![
                        line("network/rx_rate", NS_PODS, &["pod_name"], "$tag_pod_name received"),
                        line("network/tx_rate", NS_PODS, &["pod_name"], "$tag_pod_name sent"),
                    ],
                },
                Panel {
                    title: "Ephemeral storage by pod",
                    description: "Local disk used by each pod of the namespace.",
                    unit: Bytes,
                    lines: vec![line("ephemeral_storage/usage", NS_PODS, &["pod_name"], "$tag_pod_name")],
                },
            ],
        },
        Dashboard {
            file: "pods",
            title: "Pods",
            description: "One pod and each of its containers.",
            vars: vec![
                Var { name: "namespace", label: "Namespace", key: "namespace_name", filter: r#""type" = 'pod'"# },
                Var {
                    name: "pod",
                    label: "Pod",
                    key: "pod_name",
                    filter: r#""type" = 'pod' AND "namespace_name" =~ /^$namespace$/"#,
                },
            ],
            panels: vec![
                Panel {
                    title: "CPU usage by container",
                    description: "CPU used by each container of the pod, with its request and limit, in millicores.",
                    unit: Millicores,
                    lines: vec![
                        line("cpu/usage_rate", POD_CONTAINERS, &["container_name"], "$tag_container_name usage"),
                        line("cpu/request", POD_CONTAINERS, &["container_name"], "$tag_container_name request"),
                        line("cpu/limit", POD_CONTAINERS, &["container_name"], "$tag_container_name limit"),
                    ],
                },
                Panel {
                    title: "Memory by container",
                    description: "Memory used by each container of the pod, its working set, request and limit.",
                    unit: Bytes,
                    lines: vec![
                        line("memory/usage", POD_CONTAINERS, &["container_name"], "$tag_container_name usage"),
                        line(
                            "memory/working_set",
                            POD_CONTAINERS,
                            &["container_name"],
                            "$tag_container_name working set",
                        ),
                        line("memory/request", POD_CONTAINERS, &["container_name"], "$tag_container_name request"),
                        line("memory/limit", POD_CONTAINERS, &["container_name"], "$tag_container_name limit"),
                    ],
                },
                Panel {
                    title: "Network",
                    description: "Bytes per second received and sent by the pod (its containers share one \
                                  network namespace).",
                    unit: BytesPerSecond,
                    lines: vec![
                        line("network/rx_rate", POD, &[], "received"),
                        line("network/tx_rate", POD, &[], "sent"),
                    ],
                },
                Panel {
                    title: "Filesystem usage by container",
                    description: "Bytes each container uses on its filesystems (resource_id: the writable layer \
                                  `/`, `logs`, or a volume).",
                    unit: Bytes,
                    lines: vec![line(
                        "filesystem/usage",
                        POD_CONTAINERS,
                        &["container_name", "resource_id"],
                        "$tag_container_name $tag_resource_id",
                    )],
                },
                Panel {
                    title: "Ephemeral storage",
                    description: "Local disk used by the pod (writable layers, logs, emptyDir volumes).",
                    unit: Bytes,
                    lines: vec![line("ephemeral_storage/usage", POD, &[], "usage")],
                },
                Panel {
                    title: "Container restarts",
                    description: "How often each container of the pod was restarted.",
                    unit: Count,
                    lines: vec![line("restart_count", POD_CONTAINERS, &["container_name"], "$tag_container_name")],
                },
            ],
        },
    ]
}

// ---------------------------------------------------------------------------------------------------------------
// Grafana's dashboard JSON
// ---------------------------------------------------------------------------------------------------------------

/// The data source every panel and variable uses: the dashboard's `datasource` variable, so that the same file
/// works provisioned (with `deploy/grafana/provisioning/`) and imported by hand into a Grafana with any InfluxDB
/// data source.
fn datasource() -> Value {
    json!({"type": "influxdb", "uid": "${datasource}"})
}

/// The data source provisioned by `deploy/grafana/provisioning/datasources/heapster-influxdb.yaml`.
pub const PROVISIONED_DATASOURCE: &str = "heapster-influxdb";

const CLUSTER_FILTER: &str = r#""cluster_name" =~ /^$cluster$/"#;

fn variable_query(schema: Schema, v: &Var) -> String {
    let (m, _) = measurement_field(schema, VARIABLE_METRIC);
    let mut q = format!(r#"SHOW TAG VALUES FROM "{m}" WITH KEY = "{}""#, v.key);
    if v.name != "cluster" {
        q.push_str(&format!(" WHERE {CLUSTER_FILTER}"));
        if !v.filter.is_empty() {
            q.push_str(&format!(" AND {}", v.filter));
        }
    }
    q
}

fn line_query(schema: Schema, l: &Line) -> String {
    let (m, f) = measurement_field(schema, l.metric);
    let mut group = String::from("time($__interval)");
    for t in l.group_by {
        group.push_str(&format!(r#", "{t}""#));
    }
    format!(
        r#"SELECT mean("{f}") FROM "{m}" WHERE {CLUSTER_FILTER} AND {} AND $timeFilter GROUP BY {group} fill(null)"#,
        l.filter
    )
}

fn render(d: &Dashboard, schema: Schema) -> Value {
    let cluster = Var { name: "cluster", label: "Cluster", key: "cluster_name", filter: "" };
    let mut templating = vec![json!({
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "influxdb",
        "current": {"selected": false, "text": PROVISIONED_DATASOURCE, "value": PROVISIONED_DATASOURCE},
        "hide": 0,
        "includeAll": false,
        "multi": false,
        "options": [],
        "refresh": 1,
        "regex": "",
        "skipUrlSync": false,
    })];
    for v in std::iter::once(&cluster).chain(&d.vars) {
        let q = variable_query(schema, v);
        templating.push(json!({
            "name": v.name,
            "label": v.label,
            "type": "query",
            "datasource": datasource(),
            "query": q,
            "definition": q,
            "current": {},
            "hide": 0,
            "includeAll": false,
            "multi": false,
            "options": [],
            "refresh": 1,
            "regex": "",
            "skipUrlSync": false,
            "sort": 1,
        }));
    }
    let panels: Vec<Value> = d
        .panels
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (unit, axis) = p.unit.grafana();
            let targets: Vec<Value> = p
                .lines
                .iter()
                .enumerate()
                .map(|(j, l)| {
                    json!({
                        "refId": char::from(b'A' + j as u8).to_string(),
                        "datasource": datasource(),
                        "alias": l.alias,
                        "query": line_query(schema, l),
                        "rawQuery": true,
                        "resultFormat": "time_series",
                    })
                })
                .collect();
            json!({
                "id": i + 1,
                "type": "timeseries",
                "title": p.title,
                "description": p.description,
                "datasource": datasource(),
                "gridPos": {"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i / 2) * 8},
                "fieldConfig": {
                    "defaults": {
                        "unit": unit,
                        "min": 0,
                        "custom": {
                            "axisLabel": axis,
                            "drawStyle": "line",
                            "fillOpacity": 10,
                            "lineWidth": 1,
                            "showPoints": "never",
                            "spanNulls": true,
                        },
                    },
                    "overrides": [],
                },
                "options": {
                    "legend": {
                        "calcs": ["lastNotNull"],
                        "displayMode": "list",
                        "placement": "bottom",
                        "showLegend": true,
                    },
                    "tooltip": {"mode": "multi", "sort": "desc"},
                },
                "targets": targets,
            })
        })
        .collect();
    let (title, uid, schema_tag) = match schema {
        Schema::Heapster => (format!("Heapster / {}", d.title), format!("heapster-{}", d.file), "influxdb"),
        Schema::WithFields | Schema::Legacy => {
            (format!("Heapster / {} (withfields)", d.title), format!("heapster-wf-{}", d.file), "influxdb-withfields")
        }
    };
    let schema_note = match schema {
        Schema::Heapster => "For heapster's default InfluxDB schema (measurement cpu/usage_rate, field value).",
        Schema::WithFields | Schema::Legacy => {
            "For heapster's InfluxDB sink with withfields=true (measurement cpu, field usage_rate)."
        }
    };
    json!({
        "id": null,
        "uid": uid,
        "title": title,
        "description": format!("{} {schema_note}", d.description),
        "tags": ["heapster", "kubernetes", schema_tag],
        "annotations": {"list": []},
        "editable": true,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "links": [],
        "liveNow": false,
        "panels": panels,
        "refresh": "1m",
        "schemaVersion": 36,
        "style": "dark",
        "templating": {"list": templating},
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "version": 1,
        "weekStart": "",
    })
}
