//! The cAdvisor source against recorded responses (values read by hand from the JSON and asserted exactly), a
//! misbehaving peer on 127.0.0.1, the hosts file and the `--source` options.

use super::client::{CadvisorClient, FetchError, decode_machine, decode_subcontainers};
use super::convert::containers_to_sets;
use super::hosts::{HostsProvider, base_url, parse_hosts};
use super::source::CadvisorSource;
use super::{CadvisorOptions, Hosts};
use crate::kubelet::ClientConfig;
use crate::self_metrics::{CadvisorCauseLabels, SourceMetrics};
use crate::{MetricsSource, MetricsSourceProvider};
use heapster_model::{MetricSet, MetricValue, labels};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SUBCONTAINERS: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/cadvisor_v1.3_subcontainers_k8s1.2.json"));
const MACHINE: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/cadvisor_v1.3_machine_k8s1.2.json"));

const POD: &str = "namespace:default/pod:dd-agent-1rxlh";
const CONTAINER: &str = "namespace:default/pod:dd-agent-1rxlh/container:dd-agent";

type Sets = Vec<(String, MetricSet)>;

fn fixture_sets() -> Sets {
    let containers = decode_subcontainers(SUBCONTAINERS).unwrap();
    let machine = decode_machine(MACHINE).unwrap();
    containers_to_sets(&containers, Some(&machine), "node-1", 1)
}

fn get<'a>(sets: &'a Sets, key: &str) -> &'a MetricSet {
    sets.iter().find(|(k, _)| k == key).map(|(_, s)| s).unwrap_or_else(|| panic!("no set {key}"))
}

fn int(v: i64) -> Option<MetricValue> {
    Some(MetricValue::Int(v))
}

fn labeled(set: &MetricSet, name: &str, resource_id: &str) -> Option<MetricValue> {
    let mut found = set
        .labeled_metrics
        .iter()
        .filter(|m| m.name == name && m.labels.get_str(labels::RESOURCE_ID) == Some(resource_id));
    let first = found.next().map(|m| m.value);
    assert!(found.next().is_none(), "{name} {resource_id} twice");
    first
}

#[test]
fn fixtures_decode() {
    let containers = decode_subcontainers(SUBCONTAINERS).unwrap();
    assert_eq!(containers.len(), 5);
    assert!(containers.iter().all(|c| c.stats.len() >= 8), "every sample decoded");
    let m = decode_machine(MACHINE).unwrap();
    assert_eq!((m.num_cores, m.memory_capacity), (Some(2), Some(8_391_204_864)));
    assert_eq!(m.machine_id, "abcabcabcabcabcabcabcabcabcabcab");
}

#[test]
fn fixture_containers_land_in_heapsters_sets() {
    let s = fixture_sets();
    let keys: Vec<&str> = s.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["node:node-1", POD, CONTAINER, "node:node-1/container:kubelet", "node:node-1/container:system"]);
    for (key, set) in &s {
        assert_eq!(set.labels[labels::NODENAME], "node-1", "{key}");
        assert_eq!(set.labels[labels::HOSTNAME], "node-1", "{key}");
    }
    let c = get(&s, CONTAINER);
    assert_eq!(c.set_type(), Some("pod_container"));
    assert_eq!(c.labels[labels::POD_NAME], "dd-agent-1rxlh");
    assert_eq!(c.labels[labels::NAMESPACE_NAME], "default");
    assert_eq!(c.labels[labels::POD_ID], "12c7be82-33ca-11e6-ac8f-42010af00003");
    assert_eq!(c.labels[labels::CONTAINER_NAME], "dd-agent");
    assert_eq!(c.labels[labels::CONTAINER_BASE_IMAGE], "datadog/docker-dd-agent:massi_ingest_k8s_events");
    assert_eq!(get(&s, POD).set_type(), Some("pod"));
    assert_eq!(get(&s, "node:node-1/container:system").set_type(), Some("sys_container"));
    assert_eq!(get(&s, "node:node-1").labels[labels::HOST_ID], "i-abcabcab");
}

#[test]
fn fixture_node_values() {
    let s = fixture_sets();
    let n = get(&s, "node:node-1");
    // The newest of 9 samples: 2016-06-17T16:07:50.026851815Z; created 2016-06-03T18:08:06.908607Z.
    assert_eq!((n.scrape_time, n.create_time), (1_466_179_670_026, 1_464_977_286_908));
    assert_eq!(n.get("uptime"), int(1_466_179_670_026 - 1_464_977_286_908));
    assert_eq!(n.get("cpu/usage"), int(179_058_059_341_746));
    assert_eq!(n.get("cpu/load"), int(0));
    assert_eq!(n.get("memory/usage"), int(3_854_888_960));
    assert_eq!(n.get("memory/working_set"), int(1_953_751_040));
    assert_eq!(n.get("memory/rss"), int(26_042_368));
    assert_eq!(n.get("memory/cache"), int(1_538_514_944));
    assert_eq!(n.get("memory/page_faults"), int(606_358));
    assert_eq!(n.get("memory/major_page_faults"), int(888));
    // eth0 (the default interface), not eth0 + the cbr0 bridge.
    assert_eq!(n.get("network/rx"), int(15_012_305_689));
    assert_eq!(n.get("network/tx"), int(10_488_381_037));
    assert_eq!(n.get("network/rx_errors"), int(0));
    // Machine info: 2 cores, 8391204864 bytes (not the root cgroup's 7864135680).
    assert_eq!(n.get("cpu/limit"), int(2000));
    assert_eq!(n.get("memory/limit"), int(8_391_204_864));
    assert_eq!(labeled(n, "filesystem/usage", "/dev/sda1"), int(4_037_660_672));
    assert_eq!(labeled(n, "filesystem/limit", "/dev/sda1"), int(105_553_100_800));
    assert_eq!(labeled(n, "filesystem/available", "/dev/sda1"), int(97_096_605_696));
    assert_eq!(labeled(n, "filesystem/inodes_free", "/dev/sda1"), int(6_452_350));
    assert_eq!(labeled(n, "filesystem/inodes", "/dev/sda1"), None, "not in this cAdvisor's document");
    assert_eq!(labeled(n, "disk/io_read_bytes", "8:0"), int(196_163_584));
    assert_eq!(labeled(n, "disk/io_write_bytes", "8:0"), int(78_901_051_392));
}

#[test]
fn fixture_container_values() {
    let s = fixture_sets();
    let c = get(&s, CONTAINER);
    assert_eq!((c.scrape_time, c.create_time), (1_466_179_673_544, 1_466_085_368_429));
    assert_eq!(c.get("cpu/usage"), int(1_636_943_556_502));
    assert_eq!(c.get("memory/usage"), int(101_560_320));
    assert_eq!(c.get("memory/working_set"), int(94_449_664));
    assert_eq!(c.get("memory/rss"), int(78_155_776));
    assert_eq!(c.get("memory/cache"), int(23_179_264));
    assert_eq!(c.get("memory/page_faults"), int(17_755_275));
    assert_eq!(c.get("memory/major_page_faults"), int(55));
    assert_eq!(c.get("memory/limit"), int(134_217_728));
    assert_eq!(c.get("cpu/request"), int(250), "256 shares");
    assert_eq!(c.get("cpu/limit"), None, "shares are no limit, and there is no quota");
    assert_eq!(c.get("network/rx"), None, "has_network is false: the zeros are not readings");
    assert_eq!(labeled(c, "filesystem/usage", "/dev/sda1"), int(57_970_688));
    assert_eq!(labeled(c, "filesystem/available", "/dev/sda1"), None, "cAdvisor's zero is an unknown here");
    assert_eq!(labeled(c, "disk/io_read_bytes", "8:0"), int(18_366_464));
    assert_eq!(labeled(c, "disk/io_write_bytes", "8:0"), int(3_379_200));

    // The infrastructure container is the pod, with its network namespace's counters only.
    let p = get(&s, POD);
    assert_eq!(p.get("network/rx"), int(1_217_092_163));
    assert_eq!(p.get("network/tx"), int(86_040_599));
    assert_eq!(p.get("cpu/usage"), None);
    assert_eq!(p.get("memory/usage"), None);
    assert_eq!(p.create_time, 1_466_085_367_429);

    // /system's memory limit is cAdvisor's "unlimited" (2^64-1): no limit.
    let sys = get(&s, "node:node-1/container:system");
    assert_eq!(sys.get("memory/limit"), None);
    assert_eq!(sys.get("memory/usage"), int(1_068_773_376));
    assert_eq!(sys.get("cpu/usage"), int(9_192_616_604_693));
}

#[test]
fn broken_documents_name_their_cause() {
    let cases: [(&[u8], &str); 5] = [
        (b"<html><body>502 Bad Gateway</body></html>", "not_json"),
        (b"", "not_json"),
        (&SUBCONTAINERS[..SUBCONTAINERS.len() / 2], "truncated"),
        (br#"[{"name":"/","stats":[{"timestamp":"yesterday"}]}]"#, "malformed"),
        (br#"{"name":"/"}"#, "malformed"),
    ];
    for (body, cause) in cases {
        let e = decode_subcontainers(body).unwrap_err();
        assert_eq!(e.cause(), cause, "{e}");
    }
    let e = decode_subcontainers(br#"[{"name":"/","stats":[{"timestamp":"yesterday"}]}]"#).unwrap_err();
    assert!(e.to_string().starts_with("malformed cAdvisor subcontainers list"), "{e}");
    assert_eq!(decode_machine(b"[]").unwrap_err().cause(), "malformed");
}

/// Serves `status` and `body` for every request on a free port; returns the base URL.
async fn serve(status: &'static str, body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let body = body.clone();
            tokio::spawn(async move {
                let mut req = [0u8; 4096];
                let n = sock.read(&mut req).await.unwrap_or(0);
                let path = String::from_utf8_lossy(&req[..n]).split_whitespace().nth(1).unwrap_or("").to_owned();
                // Machine info is served from the fixture; everything else gets the test's answer.
                let (status, body) =
                    if path == "/api/v1.3/machine/" { ("200 OK", MACHINE.to_vec()) } else { (status, body) };
                let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
            });
        }
    });
    format!("http://{addr}")
}

/// A peer that accepts connections and never answers.
async fn silent_peer() -> std::net::SocketAddr {
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    addr
}

fn client(timeout: Duration) -> CadvisorClient {
    CadvisorClient::new(ClientConfig { timeout, max_body: 1 << 20, ..ClientConfig::default() }).unwrap()
}

#[tokio::test]
async fn a_host_is_scraped_over_http() {
    let base = serve("200 OK", SUBCONTAINERS.to_vec()).await;
    let source = CadvisorSource::new("node-1".into(), base, client(Duration::from_secs(5)), SourceMetrics::default());
    assert_eq!(source.name(), "cadvisor:node-1");
    let batch = source.scrape(7).await.unwrap();
    assert_eq!(batch.timestamp, 7);
    assert_eq!(batch.sets.len(), 5);
    let node = &batch.sets["node:node-1"];
    assert_eq!(node.get("memory/limit"), int(8_391_204_864), "machine info fetched too");
    assert_eq!(node.get("cpu/usage"), int(179_058_059_341_746));
}

#[tokio::test]
async fn http_failures_have_causes() {
    let c = client(Duration::from_secs(5));
    let html = serve("502 Bad Gateway", b"<html>bad gateway</html>".to_vec()).await;
    let e = c.subcontainers(&html).await.unwrap_err();
    assert!(matches!(e, FetchError::Status { status: 502, .. }), "{e}");
    assert!(e.to_string().contains("bad gateway"), "{e}");
    let page = serve("200 OK", b"<!DOCTYPE html><p>login</p>".to_vec()).await;
    assert_eq!(c.subcontainers(&page).await.unwrap_err().cause(), "not_json");
    let big = serve("200 OK", vec![b' '; 2 << 20]).await;
    assert_eq!(c.subcontainers(&big).await.unwrap_err().cause(), "too_large");

    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let e = c.subcontainers(&format!("http://{closed}")).await.unwrap_err();
    assert_eq!(e.cause(), "connect", "{e}");

    let addr = silent_peer().await;
    let e = client(Duration::from_millis(300)).subcontainers(&format!("http://{addr}")).await.unwrap_err();
    assert_eq!(e.cause(), "timeout", "{e}");
}

/// At short resolutions the round's deadline comes before the client's timeout: the source must give up at the
/// deadline itself and count a `timeout`, rather than be dropped by the round with nothing counted.
#[tokio::test]
async fn a_silent_host_times_out_at_the_scrape_deadline() {
    let addr = silent_peer().await;
    let metrics = SourceMetrics::default();
    let source = CadvisorSource::new(
        "node-1".into(),
        format!("http://{addr}"),
        client(Duration::from_secs(60)),
        metrics.clone(),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    let scraped = tokio::time::timeout(Duration::from_secs(20), source.scrape_until(7, deadline)).await;
    let e = scraped.expect("the scrape ended at its deadline, not the client's 60 s timeout").unwrap_err();
    assert!(e.to_string().contains("subcontainers"), "{e}");
    let labels = CadvisorCauseLabels { document: "subcontainers".into(), cause: "timeout".into() };
    assert_eq!(metrics.cadvisor_scrape_errors.get_or_create(&labels).get(), 1);
}

#[test]
fn hosts_files_in_heapsters_format_and_go_spellings() {
    let h =
        parse_hosts(br#"{"Items":[{"Name":"a","IP":"10.0.0.1"},{"name":"b","ip":"10.0.0.2"},{"IP":"::1"}]}"#).unwrap();
    let pairs: Vec<(&str, &str)> = h.iter().map(|h| (h.name.as_str(), h.ip.as_str())).collect();
    assert_eq!(pairs, [("a", "10.0.0.1"), ("b", "10.0.0.2"), ("::1", "::1")]);
    assert_eq!(base_url("::1", 8080), "http://[::1]:8080");
    assert_eq!(base_url("10.0.0.1", 4194), "http://10.0.0.1:4194");
    assert!(parse_hosts(br#"{"items":[]}"#).unwrap().is_empty());
    assert!(parse_hosts(br#"{"Items":null}"#).unwrap().is_empty());
    let e = parse_hosts(br#"{"Items":[{"Name":"a","IP":"1.1.1.1"},{"Name":"a","IP":"1.1.1.2"}]}"#).unwrap_err();
    assert!(e.contains("listed twice"), "{e}");
    let e = parse_hosts(br#"{"Items":[{"Name":"a","IP":""}]}"#).unwrap_err();
    assert!(e.contains("no IP"), "{e}");
    let e = parse_hosts(b"Items: [a]").unwrap_err();
    assert!(e.contains(r#"expected JSON like {"Items""#), "{e}");
}

#[test]
fn the_hosts_file_is_re_read_when_it_changes_and_kept_when_broken() {
    let path = std::env::temp_dir().join(format!("heapster-hosts-{}.json", std::process::id()));
    std::fs::write(&path, br#"{"Items":[{"Name":"a","IP":"127.0.0.1"}]}"#).unwrap();
    let p = HostsProvider::new(path.clone(), 8080, client(Duration::from_secs(1)), SourceMetrics::default()).unwrap();
    let names = |p: &HostsProvider| p.sources().iter().map(|s| s.name()).collect::<Vec<_>>();
    assert_eq!(names(&p), ["cadvisor:a"]);

    std::fs::write(&path, br#"{"Items":[{"Name":"a","IP":"127.0.0.1"},{"Name":"b","IP":"127.0.0.2"}]}"#).unwrap();
    assert_eq!(names(&p), ["cadvisor:a", "cadvisor:b"]);
    assert_eq!(p.hosts()[1], ("b".to_owned(), "http://127.0.0.2:8080".to_owned()));

    std::fs::write(&path, b"{\"Items\":[{\"Name\":\"a\"").unwrap();
    assert_eq!(names(&p), ["cadvisor:a", "cadvisor:b"], "a broken file keeps the previous list");
    std::fs::remove_file(&path).unwrap();
    assert_eq!(names(&p), ["cadvisor:a", "cadvisor:b"], "so does a missing one");
    std::fs::write(&path, br#"{"Items":[{"Name":"b","IP":"127.0.0.2"}]}"#).unwrap();
    assert_eq!(names(&p), ["cadvisor:b"]);
    std::fs::remove_file(&path).unwrap();

    let e =
        HostsProvider::new(path.clone(), 8080, client(Duration::from_secs(1)), SourceMetrics::default()).err().unwrap();
    assert!(e.contains("hosts file") && e.contains(&path.display().to_string()), "{e}");
}

#[test]
fn source_options() {
    let parse = |s: &str| CadvisorOptions::parse(&s.parse().unwrap()).map_err(|e| e.to_string());
    let o = parse("cadvisor:external?hostsFile=/etc/h.json&cadvisorPort=4194").unwrap();
    assert_eq!(o.hosts, Hosts::External { hosts_file: "/etc/h.json".into() });
    assert_eq!(o.port, 4194);
    let o = parse("cadvisor:?standalone=true&hostname=me").unwrap();
    assert_eq!((o.hosts, o.port), (Hosts::Standalone { hostname: "me".into() }, 8080));
    assert!(matches!(parse("cadvisor:standalone").unwrap().hosts, Hosts::Standalone { .. }));
    let o = parse("cadvisor:external?hostsFile=/h&cadvisorTimeout=3s").unwrap();
    assert_eq!(o.client.timeout, Duration::from_secs(3));
    for (bad, says) in [
        ("cadvisor:external", "needs hostsFile"),
        ("cadvisor:external?hostsFile=/h&cadvisorPort=x", "expected a port"),
        ("cadvisor:external?hostsfile=/h", "unknown cadvisor option"),
        ("cadvisor:coreos?fleetEndpoint=x", "unknown cadvisor option"),
        ("cadvisor:coreos", "not a cAdvisor mode"),
        ("cadvisor:", "not a cAdvisor mode"),
        ("cadvisor:?standalone=true&hostsFile=/h", "exclude each other"),
    ] {
        let e = parse(bad).unwrap_err();
        assert!(e.contains(says), "{bad}: {e}");
    }
}

#[tokio::test]
async fn the_factory_builds_both_modes() {
    let metrics = SourceMetrics::default();
    let built = crate::build(&"cadvisor:?standalone=true&hostname=me&cadvisorPort=4194".parse().unwrap(), &metrics)
        .await
        .unwrap();
    assert!(built.metadata.is_none());
    let names: Vec<String> = built.provider.sources().iter().map(|s| s.name()).collect();
    assert_eq!(names, ["cadvisor:me"]);
    let e = crate::build(&"cadvisor:external?hostsFile=/nonexistent/hosts.json".parse().unwrap(), &metrics)
        .await
        .err()
        .unwrap();
    let e = e.to_string();
    assert!(e.starts_with("--source=cadvisor:external") && e.contains("/nonexistent/hosts.json"), "{e}");
    assert!(crate::kind("cadvisor").is_some());
}
