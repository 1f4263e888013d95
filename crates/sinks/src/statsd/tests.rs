//! The statsd sink: Heapster's formatter tests in both layouts, then batches sent to Etsy's real statsd daemon
//! and read back from what it flushed (to carbon's whisper files, and as JSON).

use super::encoder::encode;
use super::*;
use heapster_model::{Labels, MetricSet, MetricValue};
use heapster_testkit::{Carbon, Statsd, StatsdSetup, wait};
use std::collections::BTreeMap;
use std::time::Duration;

fn config(uri: &str) -> StatsdConfig {
    StatsdConfig::from_uri(&uri.parse().unwrap()).unwrap()
}

fn lines(batch: &DataBatch, uri: &str) -> Vec<String> {
    encode(batch, &config(uri)).lines.lines().map(String::from).collect()
}

fn set(labels: &[(&'static str, &str)], metrics: &[(&'static str, MetricValue)]) -> MetricSet {
    let mut s = MetricSet::default();
    for (k, v) in labels {
        s.labels.insert(*k, (*v).to_owned());
    }
    for (n, v) in metrics {
        s.set(n, *v);
    }
    s
}

fn one(s: MetricSet) -> DataBatch {
    DataBatch { timestamp: 1_700_000_000_000, sets: [("k".to_owned(), s)].into() }
}

/// Heapster's etsystatsd_formatter_test.go, every set type with its user labels renamed and styled.
#[test]
fn etsy_names_as_heapster_wrote_them() {
    let user = "test_tag_1:val1,test_tag_2:val2,test_tag_3:val3";
    let common = [
        ("hostname", "testhost"),
        ("namespace_name", "testnamespace"),
        ("pod_name", "testpodname"),
        ("container_name", "testcontainername"),
        ("labels", user),
    ];
    let lower = "testTag1.val1.testTag2.val2.testTag3.val3";
    let upper = "TestTag1.val1.TestTag2.val2.TestTag3.val3";
    let uri = "statsd:udp://h?prefix=testprefix&renameLabels=old1:new1,old2:new_label_2&labelStyle=";
    for (kind, style, want) in [
        (
            "pod_container",
            "lowerCamelCase",
            format!(
                "testprefix.node.testhost.namespace.testnamespace.pod.testpodname.container.testcontainername.{lower}.testmetric:1000|g"
            ),
        ),
        (
            "sys_container",
            "upperCamelCase",
            format!("testprefix.node.testhost.sys-container.testcontainername.{upper}.testmetric:1000|g"),
        ),
        (
            "pod",
            "lowerCamelCase",
            format!("testprefix.node.testhost.namespace.testnamespace.pod.testpodname.{lower}.testmetric:1000|g"),
        ),
        ("ns", "upperCamelCase", format!("testprefix.namespace.testnamespace.{upper}.testmetric:1000|g")),
        ("node", "lowerCamelCase", format!("testprefix.node.testhost.{lower}.testmetric:1000|g")),
        ("cluster", "upperCamelCase", format!("testprefix.cluster.{upper}.testmetric:1000|g")),
    ] {
        let mut labels = common.to_vec();
        labels.push(("type", kind));
        let mut s = set(&labels, &[]);
        s.metrics.insert("testmetric".to_owned(), MetricValue::Int(1000));
        assert_eq!(lines(&one(s), &format!("{uri}{style}")), [want], "{kind}");
    }
    // Without a prefix, and with a resource id after the metric's name.
    let mut s = set(&[("type", "cluster"), ("labels", user)], &[]);
    let fs: Labels = [("resource_id".to_owned(), "testresource".to_owned())].into_iter().collect();
    s.add_labeled("filesystem/usage", fs, MetricValue::Int(1000));
    assert_eq!(
        lines(&one(s), "statsd:udp://h?labelStyle=upperCamelCase"),
        [format!("cluster.{upper}.filesystem/usage.testresource:1000|g")]
    );
    // A rename applies to the name as written, before the style.
    let s = set(&[("type", "node"), ("hostname", "n"), ("labels", "old_one:x")], &[("uptime", MetricValue::Int(1))]);
    assert_eq!(
        lines(&one(s), "statsd:udp://h?renameLabels=old_one:brand_new&labelStyle=upperCamelCase"),
        ["node.n.BrandNew.x.uptime:1|g"]
    );
}

/// Heapster's influxstatsd_formatter_test.go and driver_test.go (allowedLabels).
#[test]
fn influx_tags_as_heapster_wrote_them() {
    let labels = [("test_tag_1", "value1"), ("test_tag_2", "value2"), ("test_tag_3", "value3")];
    let mut s = set(&labels, &[]);
    s.metrics.insert("testmetric".to_owned(), MetricValue::Int(1000));
    let b = one(s);
    let uri = "statsd:udp://h?protocolType=influxstatsd";
    assert_eq!(
        lines(&b, &format!("{uri}&prefix=testprefix.&labelStyle=lowerCamelCase")),
        ["testprefix.testmetric,testTag1=value1,testTag2=value2,testTag3=value3:1000|g"]
    );
    assert_eq!(
        lines(&b, &format!("{uri}&labelStyle=upperCamelCase")),
        ["testmetric,TestTag1=value1,TestTag2=value2,TestTag3=value3:1000|g"]
    );
    assert_eq!(lines(&one(set(&[], &[("uptime", MetricValue::Int(7))])), uri), ["uptime:7|g"]);

    let tags = [("tag1", "value1"), ("tag2", "value2"), ("tag3", "value3")];
    let b = one(set(&tags, &[("cpu/usage", MetricValue::Int(1)), ("uptime", MetricValue::Int(2))]));
    assert_eq!(
        lines(&b, &format!("{uri}&allowedLabels=tag1,tag3")),
        ["cpu/usage,tag1=value1,tag3=value3:1|g", "uptime,tag1=value1,tag3=value3:2|g"]
    );

    // User labels become tags of their own (they win over a set label of the same name); the separators are
    // replaced; empty values are left out; a labelled metric's labels join the set's.
    let mut s = set(
        &[("type", "pod"), ("pod_name", "web:1"), ("labels", "app:web,type:x"), ("container_base_image", "")],
        &[("memory/usage", MetricValue::Int(5))],
    );
    let fs: Labels = [("resource_id".to_owned(), "/dev/sda1".to_owned())].into_iter().collect();
    s.add_labeled("filesystem/usage", fs, MetricValue::Int(9));
    assert_eq!(
        lines(&one(s), uri),
        [
            "memory/usage,app=web,pod_name=web_1,type=x:5|g",
            "filesystem/usage,app=web,pod_name=web_1,resource_id=/dev/sda1,type=x:9|g"
        ]
    );
}

#[test]
fn values_statsd_reads_as_the_value_and_not_as_a_change() {
    let b = one(set(
        &[("type", "node"), ("hostname", "n")],
        &[
            ("cpu/usage", MetricValue::Int(-5)),
            ("cpu/usage_rate", MetricValue::Float(-0.0)),
            ("memory/usage", MetricValue::Float(-2.5)),
            ("memory/rss", MetricValue::Float(0.25)),
            ("memory/cache", MetricValue::Float(f64::NAN)),
            ("memory/working_set", MetricValue::Float(f64::INFINITY)),
            ("uptime", MetricValue::Int(i64::MAX)),
        ],
    ));
    let e = encode(&b, &config("statsd:udp://h"));
    assert_eq!(
        e.lines.lines().collect::<Vec<_>>(),
        [
            "node.n.cpu/usage:0|g:-5|g",
            "node.n.cpu/usage_rate:0|g",
            "node.n.memory/rss:0.25|g",
            "node.n.memory/usage:0|g:-2.5|g",
            "node.n.uptime:9223372036854775807|g",
        ]
    );
    assert_eq!((e.points, e.unrepresentable, e.untyped), (5, 2, 0));
}

#[test]
fn etsy_paths_survive_allowed_labels_and_colons() {
    let s = set(
        &[
            ("type", "pod_container"),
            ("hostname", "n.example"),
            ("namespace_name", "ns"),
            ("pod_name", "p"),
            ("container_name", "c"),
        ],
        &[("uptime", MetricValue::Int(1))],
    );
    let mut nfs = s.clone();
    let fs: Labels = [("resource_id".to_owned(), "10.0.0.1:/export".to_owned())].into_iter().collect();
    nfs.add_labeled("filesystem/usage", fs, MetricValue::Int(2));
    // Heapster failed every metric of a set whose `type` was not allowed.
    assert_eq!(
        lines(&one(nfs), "statsd:udp://h?allowedLabels=pod_name"),
        [
            "node.n_example.namespace.ns.pod.p.container.c.uptime:1|g",
            "node.n_example.namespace.ns.pod.p.container.c.filesystem/usage.10_0_0_1_/export:2|g"
        ]
    );
    let e = encode(&one(set(&[("type", "martian")], &[("uptime", MetricValue::Int(1))])), &config("statsd:udp://h"));
    assert_eq!((e.points, e.untyped), (0, 1));
    assert_eq!(encode(&one(set(&[], &[("uptime", MetricValue::Int(1))])), &config("statsd:udp://h")).untyped, 1);
}

/// A batch of every set type, with values of both kinds, a negative one and a filesystem.
fn cluster_batch(round: i64) -> DataBatch {
    let host = [("hostname", "node-1.example.com")];
    let pod = [("namespace_name", "kube-system"), ("pod_name", "dns-7d9f"), ("labels", "app:dns,tier:infra")];
    let mut sets = BTreeMap::new();
    let mut node = set(&[("type", "node"), host[0]], &[("cpu/usage_rate", MetricValue::Int(1500 + round))]);
    node.set("memory/usage", MetricValue::Int(3_000_000_000 + round));
    let fs: Labels = [("resource_id".to_owned(), "/dev/vda1".to_owned())].into_iter().collect();
    node.add_labeled("filesystem/usage", fs, MetricValue::Int(40_000_000_000 + round));
    sets.insert("node:node-1".to_owned(), node);
    let mut p = set(
        &[&[("type", "pod"), host[0]][..], &pod[..]].concat(),
        &[("memory/usage", MetricValue::Int(7_000 + round))],
    );
    p.set("network/rx_rate", MetricValue::Float(12.5 + round as f64));
    sets.insert("pod".to_owned(), p);
    let c = [&[("type", "pod_container"), host[0], ("container_name", "coredns")][..], &pod[..]].concat();
    sets.insert("container".to_owned(), set(&c, &[("cpu/usage", MetricValue::Int(123_456_789 + round))]));
    let sys = [("type", "sys_container"), host[0], ("container_name", "kubelet")];
    sets.insert("sys".to_owned(), set(&sys, &[("memory/working_set", MetricValue::Int(99 + round))]));
    sets.insert(
        "ns".to_owned(),
        set(&[("type", "ns"), ("namespace_name", "kube-system")], &[("cpu/request", MetricValue::Int(-3 - round))]),
    );
    sets.insert(
        "cluster".to_owned(),
        set(&[("type", "cluster")], &[("memory/limit", MetricValue::Float(-0.5 - round as f64))]),
    );
    DataBatch { timestamp: 1_700_000_000_000, sets }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// What statsd writes to Graphite for the etsy layout: its own key rules applied (`/` -> `-`), under
/// `stats.gauges.`, with the value the batch held.
#[test]
fn etsy_gauges_reach_carbon_through_the_real_statsd_with_the_batch_values() {
    let carbon = Carbon::start();
    let statsd = Statsd::start_with(&StatsdSetup { graphite_port: Some(carbon.port), raw_names: false });
    let sink = StatsdSink::from_uri(
        &format!("statsd:udp://{}?prefix=k8s&numMetricsPerMsg=3", statsd.address()).parse().unwrap(),
    )
    .unwrap();
    let rt = runtime();
    // Two rounds: the second's values must replace the first's (gauges, and the negatives not taken as changes).
    for round in [0, 1] {
        rt.block_on(sink.export(Arc::new(cluster_batch(round)))).unwrap();
    }
    let n = "stats.gauges.k8s.node.node-1_example_com";
    let pod = "namespace.kube-system.pod.dns-7d9f";
    let want: BTreeMap<String, f64> = [
        (format!("{n}.cpu-usage_rate"), 1501.0),
        (format!("{n}.memory-usage"), 3_000_000_001.0),
        (format!("{n}.filesystem-usage.-dev-vda1"), 40_000_000_001.0),
        (format!("{n}.{pod}.app.dns.tier.infra.memory-usage"), 7_001.0),
        (format!("{n}.{pod}.app.dns.tier.infra.network-rx_rate"), 13.5),
        (format!("{n}.{pod}.container.coredns.app.dns.tier.infra.cpu-usage"), 123_456_790.0),
        (format!("{n}.sys-container.kubelet.memory-working_set"), 100.0),
        ("stats.gauges.k8s.namespace.kube-system.cpu-request".to_owned(), -4.0),
        ("stats.gauges.k8s.cluster.memory-limit".to_owned(), -1.5),
    ]
    .into_iter()
    .collect();
    let latest = |path: &str| carbon.values(path).values().last().copied();
    wait("every gauge in carbon with the second round's value", Duration::from_secs(30), || {
        want.iter().all(|(path, v)| latest(path) == Some(*v))
    });
    let flush = statsd.flushed().unwrap();
    assert_eq!(flush.bad_lines, 0.0, "statsd refused lines");
    // 9 metrics per round in datagrams of at most 3 lines.
    assert_eq!((flush.metrics_received, flush.packets_received), (18.0, 6.0));
}

/// The influx layout keeps its tags in the name; statsd with `keyNameSanitize: false` stores them as sent.
#[test]
fn influx_lines_are_read_by_the_real_statsd_as_sent() {
    let statsd = Statsd::start_with(&StatsdSetup { graphite_port: None, raw_names: true });
    let uri = format!(
        "statsd:udp://{}?protocolType=influxstatsd&prefix=k8s.&allowedLabels=type,namespace_name,container_name,labels,resource_id&renameLabels=namespace_name:ns&labelStyle=upperCamelCase&numMetricsPerMsg=50",
        statsd.address()
    );
    let sink = StatsdSink::from_uri(&uri.parse().unwrap()).unwrap();
    let rt = runtime();
    for round in [0, 1] {
        rt.block_on(sink.export(Arc::new(cluster_batch(round)))).unwrap();
    }
    let pod = "App=dns,Ns=kube-system,Tier=infra";
    let want: BTreeMap<String, f64> = [
        ("k8s.cpu/usage_rate,Type=node", 1501.0),
        ("k8s.memory/usage,Type=node", 3_000_000_001.0),
        ("k8s.filesystem/usage,ResourceId=/dev/vda1,Type=node", 40_000_000_001.0),
        (&format!("k8s.memory/usage,{pod},Type=pod"), 7_001.0),
        (&format!("k8s.network/rx_rate,{pod},Type=pod"), 13.5),
        ("k8s.cpu/usage,App=dns,ContainerName=coredns,Ns=kube-system,Tier=infra,Type=pod_container", 123_456_790.0),
        ("k8s.memory/working_set,ContainerName=kubelet,Type=sys_container", 100.0),
        ("k8s.cpu/request,Ns=kube-system,Type=ns", -4.0),
        ("k8s.memory/limit,Type=cluster", -1.5),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    wait("statsd to flush both rounds", Duration::from_secs(20), || {
        statsd.flushed().is_some_and(|f| f.metrics_received == 18.0)
    });
    let flush = statsd.flushed().unwrap();
    assert_eq!(flush.gauges, want);
    assert_eq!((flush.bad_lines, flush.packets_received), (0.0, 2.0));
}

#[test]
fn a_statsd_that_is_not_listening_is_retried_and_counted() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = SinkMetrics::register(&mut registry);
    let sink = StatsdSink::new(&format!("statsd:udp://127.0.0.1:{port}").parse().unwrap(), &metrics).unwrap();
    let rt = runtime();
    // The first datagram goes out; the kernel's "port unreachable" fails one of the next sends.
    let errors: Vec<SinkError> =
        (0..20).filter_map(|_| rt.block_on(sink.export(Arc::new(cluster_batch(0)))).err()).collect();
    assert!(!errors.is_empty(), "no send failed");
    assert!(errors.iter().all(|e| matches!(e, SinkError::Retry(m) if m.contains("connect"))), "{errors:?}");
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(&format!("heapster_sink_statsd_requests_total{{sink=\"{}\",outcome=\"connect\"}}", sink.name())),
        "{text}"
    );
}
