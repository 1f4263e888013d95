//! The Grafana dashboards under `deploy/grafana/dashboards/`: generated here, and run against a real InfluxDB.
//!
//! The eight dashboard files (cluster, nodes, namespaces and pods, for heapster's default InfluxDB schema and for
//! `withfields=true`) are rendered from one description in this file, so the two schemas cannot drift apart:
//! a test fails when a file differs from what this file renders, and `UPDATE_DOCS=1 cargo test -p heapster --test
//! grafana` rewrites them.
//!
//! The end-to-end test fills a real `influxd` from two heapsters, one standalone on this host (cluster
//! `standalone`: a node and its cgroups) and one scraping the simulated Kubernetes cluster (cluster `sim`: nodes,
//! namespaces, pods, containers), each with two sinks (the default schema into `k8s`, `withfields=true` into
//! `k8s_wf`). Then it does what Grafana does with every shipped dashboard: resolves the template variables with
//! their own `SHOW TAG VALUES` queries, substitutes them and `$timeFilter`/`$__interval` into every panel query,
//! and runs the InfluxQL. Every query must answer at least one series, every series a non-null value, and every
//! tag it groups by a value: a measurement, field or tag heapster does not write fails the test.

mod common;

use common::Heapster;
use heapster_testkit::Influxd;
use heapster_sim::{SimConfig, Simulation};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------------------------
// What the dashboards show
// ---------------------------------------------------------------------------------------------------------------

/// The InfluxDB schemas heapster writes that the dashboards are made for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Schema {
    /// Heapster 1.x: measurement = metric name (`cpu/usage_rate`), field `value`.
    Heapster,
    /// `withfields=true`: measurement = the part before the first `/` (`cpu`), field = the rest (`usage_rate`).
    WithFields,
}

impl Schema {
    const ALL: [Schema; 2] = [Schema::Heapster, Schema::WithFields];

    /// Directory under `deploy/grafana/dashboards/`, which Grafana's provisioning shows as a folder.
    fn folder(self) -> &'static str {
        match self {
            Schema::Heapster => "heapster",
            Schema::WithFields => "heapster-withfields",
        }
    }

    /// Measurement and field of `metric`, as the sink writes them (`crates/sinks/src/influxdb/encoder.rs`).
    fn measurement_field(self, metric: &str) -> (&str, &str) {
        match self {
            Schema::Heapster => (metric, "value"),
            Schema::WithFields => metric.split_once('/').unwrap_or((metric, "value")),
        }
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
const PROVISIONED_DATASOURCE: &str = "heapster-influxdb";

const CLUSTER_FILTER: &str = r#""cluster_name" =~ /^$cluster$/"#;

fn variable_query(schema: Schema, v: &Var) -> String {
    let (m, _) = schema.measurement_field(VARIABLE_METRIC);
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
    let (m, f) = schema.measurement_field(l.metric);
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
        Schema::WithFields => {
            (format!("Heapster / {} (withfields)", d.title), format!("heapster-wf-{}", d.file), "influxdb-withfields")
        }
    };
    let schema_note = match schema {
        Schema::Heapster => "For heapster's default InfluxDB schema (measurement cpu/usage_rate, field value).",
        Schema::WithFields => "For heapster's InfluxDB sink with withfields=true (measurement cpu, field usage_rate).",
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

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `deploy/grafana/dashboards/<folder>/<file>.json` of every dashboard, with what this file renders for it.
fn rendered() -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    for schema in Schema::ALL {
        for d in dashboards() {
            let path =
                repo_root().join("deploy/grafana/dashboards").join(schema.folder()).join(format!("{}.json", d.file));
            out.push((path, render(&d, schema)));
        }
    }
    out
}

/// The shipped dashboards as Grafana reads them: (schema, file name, JSON).
fn shipped() -> Vec<(Schema, String, Value)> {
    let mut out = Vec::new();
    for schema in Schema::ALL {
        let dir = repo_root().join("deploy/grafana/dashboards").join(schema.folder());
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for p in files {
            let text = std::fs::read_to_string(&p).unwrap();
            let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            out.push((schema, p.file_name().unwrap().to_string_lossy().into_owned(), v));
        }
    }
    out
}

#[test]
fn the_shipped_dashboards_are_the_rendered_ones() {
    let update = std::env::var_os("UPDATE_DOCS").is_some() || std::env::var_os("UPDATE_DASHBOARDS").is_some();
    let rendered = rendered();
    for (path, want) in &rendered {
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, serde_json::to_string_pretty(want).unwrap() + "\n").unwrap();
        }
        let have: Value =
            std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null);
        assert!(
            &have == want,
            "{} is out of date: run UPDATE_DOCS=1 cargo test -p heapster --test grafana",
            path.display()
        );
    }
    // No stray dashboard beside the rendered ones, and no two with one uid.
    let shipped = shipped();
    assert_eq!(shipped.len(), rendered.len(), "deploy/grafana/dashboards holds other files than the rendered ones");
    let uids: BTreeSet<&str> = shipped.iter().map(|(_, _, d)| d["uid"].as_str().unwrap()).collect();
    assert_eq!(uids.len(), shipped.len(), "uids are unique");
}

#[test]
fn the_provisioning_files_point_at_the_dashboards_and_the_database() {
    let root = repo_root().join("deploy/grafana/provisioning");
    let ds = std::fs::read_to_string(root.join("datasources/heapster-influxdb.yaml")).unwrap();
    for want in [
        format!("name: {PROVISIONED_DATASOURCE}"),
        format!("uid: {PROVISIONED_DATASOURCE}"),
        "type: influxdb".to_owned(),
        "url: http://influxdb:8086".to_owned(),
        "dbName: k8s".to_owned(),
    ] {
        assert!(ds.contains(&want), "datasource provisioning lacks {want:?}:\n{ds}");
    }
    let dashboards = std::fs::read_to_string(root.join("dashboards/heapster.yaml")).unwrap();
    assert!(
        dashboards.contains("type: file") && dashboards.contains("foldersFromFilesStructure: true"),
        "{dashboards}"
    );
    // Every dashboard's datasource variable defaults to the provisioned data source.
    for (_, file, d) in shipped() {
        let var = &d["templating"]["list"][0];
        assert_eq!(var["type"], "datasource", "{file}");
        assert_eq!(var["current"]["value"], PROVISIONED_DATASOURCE, "{file}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Every query against a real InfluxDB
// ---------------------------------------------------------------------------------------------------------------

/// What Grafana puts in for `$timeFilter` (the time picker's range) and `$__interval` (range / panel width).
const TIME_FILTER: &str = "time > now() - 5m";
const INTERVAL: &str = "10s";

/// `q` with Grafana's variables replaced as Grafana finds them (`$name` with `name` of word characters, and
/// `${name}`): the built-ins and `vars`. Fails on any other variable, which would be one the dashboard does not
/// define. A `$` before anything else (the regex anchor in `/^value$/`) stays.
fn substitute(q: &str, vars: &[(String, String)]) -> Result<String, String> {
    let lookup = |name: &str| match name {
        "timeFilter" => Some(TIME_FILTER),
        "__interval" | "interval" => Some(INTERVAL),
        _ => vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()),
    };
    let mut out = String::with_capacity(q.len());
    let mut rest = q;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced.find('}').ok_or_else(|| format!("unclosed ${{ in {q}"))?;
            (&braced[..end], end + 2)
        } else {
            let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() {
            out.push('$');
        } else {
            out.push_str(lookup(name).ok_or_else(|| format!("undefined variable ${name} in {q}"))?);
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    Ok(out)
}

#[test]
fn variables_are_substituted_as_grafana_finds_them() {
    let vars = [("pod".to_owned(), "web-1".to_owned())];
    let q = r#""pod_name" =~ /^$pod$/ AND "x" = '${pod}' AND $timeFilter GROUP BY time($__interval)"#;
    assert_eq!(
        substitute(q, &vars).unwrap(),
        r#""pod_name" =~ /^web-1$/ AND "x" = 'web-1' AND time > now() - 5m GROUP BY time(10s)"#
    );
    assert!(substitute("$pod_name", &vars).is_err(), "a longer name is another variable");
    assert!(substitute("/^$nodename$/", &vars).is_err(), "undefined");
}

/// Why one query of a dashboard fails, if it does: an InfluxDB error, no series, a series without a non-null
/// value, or a group whose tag is empty (a GROUP BY on a tag heapster does not write).
fn check_query(influx: &Influxd, db: &str, q: &str) -> Result<usize, String> {
    let v = influx.query_json(db, q);
    let r = &v["results"][0];
    if let Some(e) = v["error"].as_str().or(r["error"].as_str()) {
        return Err(format!("error {e}"));
    }
    let series = r["series"].as_array().filter(|s| !s.is_empty()).ok_or("no series")?;
    for s in series {
        let rows = s["values"].as_array().cloned().unwrap_or_default();
        let non_null = rows.iter().any(|row| row.as_array().is_some_and(|c| c.iter().skip(1).any(|x| !x.is_null())));
        if !non_null {
            return Err(format!("only null values in {s}"));
        }
        if let Some(tags) = s["tags"].as_object()
            && let Some((k, _)) = tags.iter().find(|(_, v)| v.as_str().is_none_or(str::is_empty))
        {
            return Err(format!("empty tag {k} in {s}"));
        }
    }
    Ok(series.len())
}

/// The values of a `SHOW TAG VALUES` query (its second column).
fn tag_values(influx: &Influxd, db: &str, q: &str) -> Result<Vec<String>, String> {
    let v = influx.query_json(db, q);
    if let Some(e) = v["error"].as_str().or(v["results"][0]["error"].as_str()) {
        return Err(format!("{q}: error {e}"));
    }
    let mut out = Vec::new();
    for s in v["results"][0]["series"].as_array().into_iter().flatten() {
        for row in s["values"].as_array().into_iter().flatten() {
            if let Some(x) = row[1].as_str() {
                out.push(x.to_owned());
            }
        }
    }
    Ok(out)
}

/// The outcome of one dashboard for one value of `$cluster`.
enum Outcome {
    /// Every query returned rows: how many queries.
    Ok(usize),
    /// A variable has no value in this cluster (no namespaces in standalone mode): nothing to show.
    NoValues(String),
    Failed(Vec<String>),
}

/// Resolves `dashboard`'s variables as Grafana does on load (the first value of each, in order, each query with
/// the variables before it substituted; `$cluster` set to `cluster`) and runs every panel query.
fn check_dashboard(influx: &Influxd, db: &str, dashboard: &Value, cluster: &str) -> Outcome {
    let mut vars = vec![("cluster".to_owned(), cluster.to_owned())];
    let mut failures = Vec::new();
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        match v["type"].as_str().unwrap() {
            "datasource" => assert!(v["query"] == "influxdb", "{name}: an InfluxDB data source"),
            // The cluster is chosen by the caller; its variable must offer it.
            "query" if name == "cluster" => match tag_values(influx, db, v["query"].as_str().unwrap()) {
                Ok(values) if values.iter().any(|c| c == cluster) => {}
                Ok(values) => return Outcome::Failed(vec![format!("variable cluster: {cluster} not in {values:?}")]),
                Err(e) => return Outcome::Failed(vec![format!("variable cluster: {e}")]),
            },
            "query" => {
                let q = match substitute(v["query"].as_str().unwrap(), &vars) {
                    Ok(q) => q,
                    Err(e) => return Outcome::Failed(vec![format!("variable {name}: {e}")]),
                };
                match tag_values(influx, db, &q) {
                    Ok(values) if values.is_empty() => return Outcome::NoValues(format!("{name}: {q}")),
                    Ok(values) => vars.push((name.to_owned(), values[0].clone())),
                    Err(e) => return Outcome::Failed(vec![format!("variable {name}: {e}")]),
                }
            }
            other => panic!("variable {name} of type {other}: only query variables are resolved here"),
        }
    }
    let mut ran = 0;
    for p in dashboard["panels"].as_array().unwrap() {
        let title = p["title"].as_str().unwrap_or_default();
        for t in p["targets"].as_array().unwrap() {
            // Raw InfluxQL only: Grafana runs exactly this text, and so does this test.
            assert_eq!(t["rawQuery"], true, "{title}: every target is raw InfluxQL");
            let q = match substitute(t["query"].as_str().unwrap(), &vars) {
                Ok(q) => q,
                Err(e) => {
                    failures.push(format!("{title}: {e}"));
                    continue;
                }
            };
            ran += 1;
            if let Err(e) = check_query(influx, db, &q) {
                failures.push(format!("{title} [{q}]: {e}"));
            }
        }
    }
    if failures.is_empty() { Outcome::Ok(ran) } else { Outcome::Failed(failures) }
}

/// Every dashboard in every cluster: `(schema folder/file, cluster, outcome)`.
fn check_all(influx: &Influxd, clusters: &[&str]) -> Vec<(String, String, Outcome)> {
    let mut out = Vec::new();
    for (schema, file, d) in shipped() {
        let db = match schema {
            Schema::Heapster => "k8s",
            Schema::WithFields => "k8s_wf",
        };
        for cluster in clusters {
            let outcome = check_dashboard(influx, db, &d, cluster);
            out.push((format!("{}/{file}", schema.folder()), cluster.to_string(), outcome));
        }
    }
    out
}

/// A cgroup of this test's own with CPU and memory accounting, removed on drop: standalone heapster's system
/// containers are this host's cgroups, and a host (a container) whose only cgroups lack the cpuacct controller
/// would leave "CPU usage by system container" empty. Needs root, as the other standalone tests.
struct Cgroup(Vec<PathBuf>);

impl Cgroup {
    fn create(name: &str) -> Cgroup {
        let root = PathBuf::from("/sys/fs/cgroup");
        let dirs: Vec<PathBuf> = if root.join("cpuacct").is_dir() {
            ["cpu", "cpuacct", "memory"]
                .iter()
                .map(|c| root.join(c))
                .filter(|d| d.is_dir())
                .map(|d| d.join(name))
                .collect()
        } else {
            vec![root.join(name)]
        };
        for d in &dirs {
            std::fs::create_dir_all(d).unwrap_or_else(|e| {
                panic!("cannot create cgroup {}: {e}. This test needs root and a writable cgroupfs.", d.display())
            });
        }
        Cgroup(dirs)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[test]
fn every_dashboard_query_returns_rows_from_heapster_in_a_real_influxdb() {
    let _cgroup = Cgroup::create(&format!("heapster-grafana-{}", std::process::id()));
    let influx = Influxd::start();
    let base = influx.url();
    let sinks = |cluster: &str| {
        [
            format!("--sink=influxdb:{base}?db=k8s&cluster_name={cluster}"),
            format!("--sink=influxdb:{base}?db=k8s_wf&withfields=true&cluster_name={cluster}"),
        ]
    };
    // Standalone on this host: one node and its cgroups (sys_container), no pods.
    let [a, b] = sinks("standalone");
    let _standalone =
        Heapster::start(&["--metric_resolution=2s", "--source=local?hostname=grafana-standalone", &a, &b]);
    // The simulated Kubernetes cluster: nodes, pods in two namespaces, containers.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let sim = rt.block_on(Simulation::start(SimConfig { nodes: 2, pods_per_node: 8, ..Default::default() })).unwrap();
    let [a, b] = sinks("sim");
    let _kube = Heapster::start(&[
        "--metric_resolution=2s",
        &format!(
            "--source=kubernetes.summary_api:{}?inClusterConfig=false&kubeletPort={}\
             &kubeletPreferredAddressTypes=InternalIP",
            sim.api_url(),
            sim.nodes[0].addr.port()
        ),
        &a,
        &b,
    ]);

    // The dashboards Grafana can show nothing in: namespaces and pods of a cluster without Kubernetes.
    let inapplicable: BTreeSet<(String, String)> = Schema::ALL
        .iter()
        .flat_map(|s| {
            ["namespaces.json", "pods.json"].map(|f| (format!("{}/{f}", s.folder()), "standalone".to_owned()))
        })
        .collect();
    // Rates need two rounds and the namespace sets need the pods' enrichment: poll until every query answers.
    let until = Instant::now() + Duration::from_secs(60);
    let results = loop {
        // `$cluster` as Grafana lists it: each cluster's dashboards are checked.
        let clusters = tag_values(&influx, "k8s", r#"SHOW TAG VALUES FROM "memory/usage" WITH KEY = "cluster_name""#)
            .unwrap_or_default();
        let results = check_all(&influx, &clusters.iter().map(String::as_str).collect::<Vec<_>>());
        let mut problems = Vec::new();
        if clusters != ["sim", "standalone"] {
            problems.push(format!("clusters {clusters:?}"));
        }
        for (file, cluster, outcome) in &results {
            let expected_empty = inapplicable.contains(&(file.clone(), cluster.clone()));
            let problem = match outcome {
                Outcome::Ok(_) if !expected_empty => continue,
                Outcome::NoValues(_) if expected_empty => continue,
                Outcome::Ok(n) => format!("{n} queries answered, but nothing was expected"),
                Outcome::NoValues(var) => format!("no value for {var}"),
                Outcome::Failed(why) => why.join("\n  "),
            };
            problems.push(format!("{file} in cluster {cluster}:\n  {problem}"));
        }
        if problems.is_empty() {
            break results;
        }
        assert!(Instant::now() < until, "dashboard queries without rows after 60 s:\n{}", problems.join("\n"));
        std::thread::sleep(Duration::from_secs(2));
    };
    let queries: usize = results.iter().map(|(_, _, o)| if let Outcome::Ok(n) = o { *n } else { 0 }).sum();
    let dashboards = results.iter().filter(|(_, _, o)| matches!(o, Outcome::Ok(_))).count();
    eprintln!("{queries} panel queries of {dashboards} dashboard/cluster pairs returned rows");
    assert_eq!(dashboards, 12, "cluster and nodes in both clusters, namespaces and pods in sim, both schemas");
    drop(sim);
}
