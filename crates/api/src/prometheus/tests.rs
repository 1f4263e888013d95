use super::*;
use crate::tests::{batch, get, state, times};
use axum::http::StatusCode;
use std::sync::Arc;

/// Runs `promtool check metrics` (Prometheus' own parser and linter, from the Debian package `prometheus`) on
/// `page`; panics with its complaints.
fn promtool_accepts(page: &str) {
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is needed to check the exposition format");
    child.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool: {said}\n---\n{page}");
}

/// Every family's HELP and TYPE once, before all of its samples, which are contiguous.
fn families_grouped(page: &str) {
    let mut seen: Vec<&str> = Vec::new();
    for line in page.lines() {
        let name = match line.strip_prefix("# TYPE ") {
            Some(rest) => rest.split(' ').next().unwrap(),
            None if line.starts_with('#') => continue,
            None => line.split(['{', ' ']).next().unwrap(),
        };
        if seen.last() != Some(&name) {
            assert!(!seen.contains(&name), "{name} is split in two groups:\n{page}");
            assert!(line.starts_with("# TYPE "), "{name} has samples before its TYPE:\n{page}");
            seen.push(name);
        }
    }
}

#[tokio::test]
async fn cadvisor_page_has_the_kubelets_names_labels_and_units() {
    let st = state();
    let r = get(&st, "/metrics/cadvisor").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.content_type, CONTENT_TYPE);
    promtool_accepts(&r.body);
    families_grouped(&r.body);
    let ts = times()[2];
    let c1 = r#"container="c1",id="/kubepods/ns1/p1/c1",image="",name="",namespace="ns1",node="n1",pod="p1""#;
    for want in [
        "# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.\n\
         # TYPE container_cpu_usage_seconds_total counter\n"
            .to_owned(),
        // 15,000 ns in the third batch.
        format!("container_cpu_usage_seconds_total{{{c1},cpu=\"total\"}} 0.000015 {ts}\n"),
        format!(
            "container_cpu_usage_seconds_total{{container=\"\",id=\"/\",image=\"\",name=\"\",namespace=\"\",node=\"n1\",\
             pod=\"\",cpu=\"total\"}} 0.003 {ts}\n"
        ),
        format!("container_memory_usage_bytes{{{c1}}} 202 {ts}\n"),
        format!("container_fs_usage_bytes{{{c1},device=\"/\"}} 4098 {ts}\n"),
        format!(
            "container_fs_usage_bytes{{container=\"\",id=\"/\",image=\"\",name=\"\",namespace=\"\",node=\"n1\",pod=\"\",\
             device=\"/dev/sdb1\"}} 22 {ts}\n"
        ),
        // A pod is its cgroup, without a container name, as on a kubelet.
        format!(
            "container_memory_usage_bytes{{container=\"\",id=\"/kubepods/ns1/p2\",image=\"\",name=\"\",\
             namespace=\"ns1\",node=\"n2\",pod=\"p2\"}} 402 {ts}\n"
        ),
        format!(
            "container_memory_usage_bytes{{container=\"\",id=\"/system.slice/docker\",image=\"\",name=\"\",\
             namespace=\"\",node=\"n1\",pod=\"\"}} 502 {ts}\n"
        ),
        // Start times are not stamped (the kubelet does not stamp them either).
        format!("container_start_time_seconds{{{c1}}} {}\n", (ts - 2 * 60_000 - 3_600_000) / 1000),
        "container_scrape_error 0\n".to_owned(),
    ] {
        assert!(r.body.contains(&want), "missing {want:?} in\n{}", r.body);
    }
    // heapster has no cpu/limit for c1: no quota line, rather than a quota of 0.
    assert!(!r.body.contains("container_spec_cpu_quota"), "{}", r.body);
}

#[tokio::test]
async fn resource_page_is_the_kubelets_resource_metrics() {
    let st = state();
    let r = get(&st, "/metrics/resource").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    promtool_accepts(&r.body);
    families_grouped(&r.body);
    let ts = times()[2];
    let start = ts - 2 * 60_000 - 3_600_000;
    for want in [
        "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in \
         core-seconds\n"
            .to_owned(),
        format!(
            "container_cpu_usage_seconds_total{{container=\"c1\",namespace=\"ns1\",node=\"n1\",pod=\"p1\"}} 0.000015 {ts}\n"
        ),
        format!("node_cpu_usage_seconds_total{{node=\"n1\"}} 0.003 {ts}\n"),
        format!(
            "container_start_time_seconds{{container=\"c1\",namespace=\"ns1\",node=\"n1\",pod=\"p1\"}} {} {start}\n",
            start / 1000
        ),
        "resource_scrape_error 0\n".to_owned(),
        "scrape_error 0\n".to_owned(),
    ] {
        assert!(r.body.contains(&want), "missing {want:?} in\n{}", r.body);
    }
    // Only resource metrics: no memory usage, no filesystems.
    assert!(!r.body.contains("container_memory_usage_bytes") && !r.body.contains("device="), "{}", r.body);
}

#[tokio::test]
async fn node_and_namespace_filters_split_the_page() {
    let st = state();
    let all = get(&st, "/metrics/cadvisor").await.body;
    let n1 = get(&st, "/metrics/cadvisor?node=n1").await.body;
    let n2 = get(&st, "/metrics/cadvisor?node=n2").await.body;
    let both = get(&st, "/metrics/cadvisor?node=n1&node=n2").await.body;
    let samples = |page: &str| -> Vec<String> {
        let mut v: Vec<String> = page.lines().filter(|l| !l.starts_with('#')).map(str::to_owned).collect();
        v.sort();
        v
    };
    assert!(n2.contains("pod=\"p2\"") && !n2.contains("pod=\"p1\"") && !n2.contains("id=\"/\""), "{n2}");
    assert!(!n1.contains("pod=\"p2\""), "{n1}");
    // Two shards by node hold every line of the whole page once (the unlabelled scrape error in each).
    let mut shards = samples(&n1);
    shards.extend(samples(&n2).into_iter().filter(|l| l != "container_scrape_error 0"));
    shards.sort();
    assert_eq!(shards, samples(&all));
    assert_eq!(samples(&both), samples(&all));
    // Node-level cgroups have no namespace.
    let ns = get(&st, "/metrics/cadvisor?namespace=ns1").await.body;
    assert!(ns.contains("pod=\"p1\"") && ns.contains("pod=\"p2\"") && !ns.contains("id=\"/\""), "{ns}");
    let none = get(&st, "/metrics/resource?namespace=other").await.body;
    assert_eq!(samples(&none), ["resource_scrape_error 0", "scrape_error 0"], "{none}");
    let r = get(&st, "/metrics/cadvisor?nodes=n1").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("\\\"nodes\\\""), "{}", r.body);
}

#[tokio::test]
async fn sets_gone_from_the_newest_batch_are_not_served() {
    let st = state();
    let mut b = batch(times()[2] + 60_000, 3);
    b.sets.remove("namespace:ns1/pod:p1/container:c1");
    st.store.ingest(Arc::new(b));
    let page = get(&st, "/metrics/cadvisor").await.body;
    assert!(!page.contains("container=\"c1\""), "{page}");
    assert!(page.contains("pod=\"p1\""), "{page}");
}

#[test]
fn label_values_are_escaped() {
    assert_eq!(label_text(&[("a", "x\"y\\z\nw"), ("b", "")]), r#"a="x\"y\\z\nw",b="""#);
    assert_eq!(convert(MetricValue::Int(500), Conv::CfsQuota), Some(50_000.0));
    assert_eq!(convert(MetricValue::Int(0), Conv::CfsQuota), None);
    assert_eq!(convert(MetricValue::Int(1), Conv::Shares), Some(2.0));
    assert_eq!(convert(MetricValue::Int(250), Conv::Shares), Some(256.0));
}

/// A page of many containers goes out in several chunks, and each container is in it once.
#[tokio::test]
async fn large_pages_are_streamed() {
    let st = crate::tests::empty_state(std::time::Duration::from_secs(300));
    let ts = times()[2];
    let mut b = heapster_model::DataBatch { timestamp: ts, ..Default::default() };
    for i in 0..3000 {
        let mut c = heapster_model::MetricSet::default();
        for (k, v) in [
            (l::TYPE, "pod_container".to_owned()),
            (l::NAMESPACE_NAME, "ns".to_owned()),
            (l::POD_NAME, format!("pod-{i}")),
            (l::CONTAINER_NAME, "app".to_owned()),
            (l::NODENAME, "n".to_owned()),
        ] {
            c.labels.insert(k.to_owned(), v);
        }
        c.set("cpu/usage", MetricValue::Int(i));
        c.set("memory/working_set", MetricValue::Int(i));
        b.sets.insert(heapster_model::keys::pod_container_key("ns", &format!("pod-{i}"), "app"), c);
    }
    st.store.ingest(Arc::new(b));
    let req = axum::http::Request::builder().uri("/metrics/cadvisor").body(axum::body::Body::empty()).unwrap();
    let resp = tower::ServiceExt::oneshot(crate::router(st), req).await.unwrap();
    let mut chunks = 0;
    let mut page = Vec::new();
    let mut stream = resp.into_body().into_data_stream();
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        let chunk = chunk.unwrap();
        assert!(chunk.len() < 2 * crate::chunked::CHUNK, "a chunk of {} bytes", chunk.len());
        page.extend_from_slice(&chunk);
        chunks += 1;
    }
    let page = String::from_utf8(page).unwrap();
    assert!(chunks > 3, "{chunks} chunks for {} bytes", page.len());
    assert_eq!(page.matches("container_cpu_usage_seconds_total{").count(), 3000);
    promtool_accepts(&page);
}
