//! The kubelet client against a raw TCP peer on 127.0.0.1 that misbehaves in each way a real one can.

use super::client::{ClientConfig, KubeletClient, ScrapeError};
use super::source::KubeletSource;
use crate::MetricsSource;
use crate::self_metrics::{KindLabels, KubeletCauseLabels, SourceMetrics};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const FIXTURE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/kubelet_stats_summary_k8s1.28_multicontainer.json"
));

/// What the fake kubelet does with each request.
#[derive(Clone)]
enum Behaviour {
    /// Status line, content type, body (Content-Length set).
    Answer(&'static str, &'static str, Vec<u8>),
    /// Declares this many bytes, sends what it has, then closes.
    ShortBody(usize, Vec<u8>),
    /// Chunked body of zeros, forever (until the client hangs up).
    Endless,
    /// Declares a 10 GB body.
    Declares10Gb,
    /// Reads the request and never answers.
    Silent,
    /// A status line, then headers forever.
    EndlessHead,
    /// Chunked: this many bytes of a JSON object's opening, then nothing more (the connection stays open).
    Stalls(usize),
}

/// Serves `b` on a free port; returns the summary URL. The task ends with the test's runtime.
async fn kubelet(b: Behaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let b = b.clone();
            tokio::spawn(async move {
                let mut req = [0u8; 4096];
                let _ = sock.read(&mut req).await;
                let _ = match b {
                    Behaviour::Answer(status, ctype, body) => {
                        let head = format!(
                            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
                            body.len()
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                        sock.write_all(&body).await
                    }
                    Behaviour::ShortBody(declared, body) => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                        sock.write_all(&body).await
                    }
                    Behaviour::Endless => {
                        let _ = sock.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").await;
                        let mut chunk = b"10000\r\n".to_vec();
                        chunk.extend(std::iter::repeat_n(b' ', 0x10000));
                        chunk.extend(b"\r\n");
                        loop {
                            if sock.write_all(&chunk).await.is_err() {
                                break Ok(());
                            }
                        }
                    }
                    Behaviour::Declares10Gb => {
                        let head = "HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n{";
                        sock.write_all(head.as_bytes()).await
                    }
                    Behaviour::Silent => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        Ok(())
                    }
                    Behaviour::EndlessHead => {
                        let _ = sock.write_all(b"HTTP/1.1 200 OK\r\n").await;
                        let mut n = 0u64;
                        loop {
                            n += 1;
                            if sock
                                .write_all(format!("X-Padding-{n}: {}\r\n", "y".repeat(64)).as_bytes())
                                .await
                                .is_err()
                            {
                                break Ok(());
                            }
                        }
                    }
                    Behaviour::Stalls(n) => {
                        let _ = sock.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").await;
                        let mut body = vec![b' '; n];
                        body[0] = b'{';
                        let _ = sock.write_all(format!("{n:x}\r\n").as_bytes()).await;
                        let _ = sock.write_all(&body).await;
                        let _ = sock.write_all(b"\r\n").await;
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        Ok(())
                    }
                };
            });
        }
    });
    format!("http://{addr}/stats/summary")
}

fn client(timeout_ms: u64, max_body: usize) -> KubeletClient {
    KubeletClient::new(ClientConfig {
        timeout: Duration::from_millis(timeout_ms),
        max_body,
        token: Some("t0k3n".into()),
        ..ClientConfig::default()
    })
    .unwrap()
}

async fn fails(b: Behaviour, timeout_ms: u64, max_body: usize) -> ScrapeError {
    let url = kubelet(b).await;
    match client(timeout_ms, max_body).summary(&url).await {
        Ok(_) => panic!("accepted"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_good_kubelet_gives_its_nodes_pods_and_containers() {
    let url = kubelet(Behaviour::Answer("200 OK", "application/json", FIXTURE.as_bytes().to_vec())).await;
    let source = KubeletSource {
        node: "n1".into(),
        host_id: None,
        url,
        client: client(5000, 1 << 20),
        metrics: SourceMetrics::default(),
        api_pods: None,
    };
    let batch = source.scrape(1_700_000_000_000).await.unwrap();
    assert!(batch.sets.contains_key("node:n1"));
    assert_eq!(batch.sets.keys().filter(|k| k.contains("/pod:") && !k.contains("/container:")).count(), 18);
}

#[tokio::test]
async fn each_bad_answer_has_its_own_cause() {
    let html = b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec();
    let e = fails(Behaviour::Answer("502 Bad Gateway", "text/html", html.clone()), 5000, 1 << 20).await;
    assert_eq!(e.cause(), "http_status", "{e}");
    assert!(e.to_string().contains("502") && e.to_string().contains("Bad Gateway"), "{e}");

    let e = fails(Behaviour::Answer("200 OK", "text/html", html), 5000, 1 << 20).await;
    assert_eq!(e.cause(), "not_json", "{e}");

    let e = fails(
        Behaviour::Answer(
            "200 OK",
            "application/json",
            b"{\"node\": {\"nodeName\": \"n1\", \"cpu\": {\"usageCoreNano".to_vec(),
        ),
        5000,
        1 << 20,
    )
    .await;
    assert_eq!(e.cause(), "truncated", "{e}");

    let e = fails(Behaviour::Answer("200 OK", "application/json", b"{\"node\": 5}".to_vec()), 5000, 1 << 20).await;
    assert_eq!(e.cause(), "malformed", "{e}");

    // JSON is UTF-8: a Latin-1 node name is malformed, and the line says so.
    let latin1 = b"{\"node\": {\"nodeName\": \"n\xe9\"}, \"pods\": []}".to_vec();
    let e = fails(Behaviour::Answer("200 OK", "application/json", latin1), 5000, 1 << 20).await;
    assert_eq!(e.cause(), "malformed", "{e}");
    assert!(e.to_string().contains("not UTF-8"), "{e}");

    let half = FIXTURE.as_bytes()[..FIXTURE.len() / 2].to_vec();
    let e = fails(Behaviour::ShortBody(FIXTURE.len(), half), 5000, 1 << 20).await;
    assert_eq!(e.cause(), "truncated", "{e}");

    let e = fails(Behaviour::Declares10Gb, 5000, 1 << 20).await;
    assert_eq!(e.cause(), "too_large", "{e}");

    let e = fails(Behaviour::Silent, 300, 1 << 20).await;
    assert_eq!(e.cause(), "timeout", "{e}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let e = client(2000, 1 << 20).summary(&format!("http://{closed}/stats/summary")).await.unwrap_err();
    assert_eq!(e.cause(), "connect", "{e}");
}

/// Issue 16, finding 7: a kubelet whose headers never end is its own cause, not a failed connection.
#[tokio::test]
async fn an_endless_header_block_is_a_bad_head() {
    let e = fails(Behaviour::EndlessHead, 10_000, 1 << 20).await;
    assert_eq!(e.cause(), "bad_head", "{e}");
}

/// Issue 16, finding 4: bodies beyond their first MiB share one budget. Two kubelets stalling in the middle of a
/// body, each after 3 MiB, hold the whole budget (3 MiB) and no more, while a healthy kubelet (a 57 kB Summary) is
/// scraped as if nothing happened; when the stalled requests reach their deadline the budget is whole again.
#[tokio::test]
async fn big_bodies_share_one_budget_and_small_ones_do_not_wait() {
    let c = KubeletClient::new(ClientConfig {
        timeout: Duration::from_secs(4),
        max_body: 4 << 20,
        bytes_in_flight: 3 << 20,
        ..ClientConfig::default()
    })
    .unwrap();
    let budget = c.budget().clone();
    let stalled = [kubelet(Behaviour::Stalls(3 << 20)).await, kubelet(Behaviour::Stalls(3 << 20)).await];
    let pending: Vec<_> = stalled
        .iter()
        .map(|url| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move { c.summary(&url).await })
        })
        .collect();
    let until = std::time::Instant::now() + Duration::from_secs(3);
    while budget.in_use() < budget.total() {
        assert!(std::time::Instant::now() < until, "the stalled bodies hold {} bytes", budget.in_use());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let good = kubelet(Behaviour::Answer("200 OK", "application/json", FIXTURE.as_bytes().to_vec())).await;
    c.summary(&good).await.expect("a small body does not wait for the budget");
    assert_eq!(budget.in_use(), budget.total(), "never more than the budget");
    for p in pending {
        assert_eq!(p.await.unwrap().unwrap_err().cause(), "timeout");
    }
    assert_eq!(budget.in_use(), 0, "the permits of failed requests are given back");
}

#[tokio::test]
async fn an_endless_body_is_cut_at_the_limit_with_bounded_memory() {
    let e = fails(Behaviour::Endless, 10_000, 4 << 20).await;
    assert_eq!(e.cause(), "too_large", "{e}");
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let mut doc: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
    doc["node"]["somethingNew"] = serde_json::json!({"x": 1});
    doc["extra"] = serde_json::json!([1, 2, 3]);
    let body = serde_json::to_vec(&doc).unwrap();
    let url = kubelet(Behaviour::Answer("200 OK", "application/json", body)).await;
    assert!(client(5000, 1 << 20).summary(&url).await.is_ok());
}

/// A Summary listing a recreated pod under both its uids, one pod twice verbatim, a restarted container next to
/// its predecessor and a system container twice.
const DUPLICATES: &str = r#"{
  "node": {"nodeName": "n1", "systemContainers": [
    {"name": "kubelet", "startTime": "2020-01-01T00:00:00Z", "cpu": {"usageCoreNanoSeconds": 1}},
    {"name": "kubelet", "startTime": "2020-01-02T00:00:00Z", "cpu": {"usageCoreNanoSeconds": 2}}]},
  "pods": [
    {"podRef": {"name": "web", "namespace": "shop", "uid": "old"}, "startTime": "2020-01-01T00:00:00Z",
     "cpu": {"usageCoreNanoSeconds": 100}, "containers": [{"name": "app", "cpu": {"usageCoreNanoSeconds": 100}}]},
    {"podRef": {"name": "web", "namespace": "shop", "uid": "new"}, "startTime": "2020-01-03T00:00:00Z",
     "cpu": {"usageCoreNanoSeconds": 7}, "containers": [{"name": "app", "cpu": {"usageCoreNanoSeconds": 7}}]},
    {"podRef": {"name": "db", "namespace": "shop", "uid": "db-1"}, "startTime": "2020-01-01T00:00:00Z",
     "containers": [{"name": "pg", "cpu": {"usageCoreNanoSeconds": 5}}]},
    {"podRef": {"name": "db", "namespace": "shop", "uid": "db-1"}, "startTime": "2020-01-01T00:00:00Z",
     "containers": [{"name": "pg", "cpu": {"usageCoreNanoSeconds": 5}}]},
    {"podRef": {"name": "job", "namespace": "ops", "uid": "job-1"}, "startTime": "2020-01-01T00:00:00Z",
     "containers": [
       {"name": "run", "startTime": "2020-01-02T00:00:00Z", "cpu": {"usageCoreNanoSeconds": 30}},
       {"name": "run", "startTime": "2020-01-01T00:00:00Z", "cpu": {"usageCoreNanoSeconds": 900}}]}
  ]
}"#;

fn dropped(metrics: &SourceMetrics, kind: &str) -> u64 {
    metrics.kubelet_duplicates_dropped.get_or_create(&KindLabels { kind: kind.into() }).get()
}

/// Issue 3, "duplicate pods": one set per key, the newest entry's values, and what was dropped counted by kind.
#[tokio::test]
async fn duplicate_pods_and_containers_keep_the_newest_and_are_counted() {
    use heapster_model::{MetricValue, labels};
    let url = kubelet(Behaviour::Answer("200 OK", "application/json", DUPLICATES.as_bytes().to_vec())).await;
    let m = SourceMetrics::default();
    let source = KubeletSource {
        node: "dup-node".into(),
        host_id: None,
        url,
        client: client(5000, 1 << 20),
        metrics: m.clone(),
        api_pods: None,
    };
    let before = [dropped(&m, "pod"), dropped(&m, "container"), dropped(&m, "system_container")];
    let batch = source.scrape(1_700_000_000_000).await.unwrap();
    let after = [dropped(&m, "pod"), dropped(&m, "container"), dropped(&m, "system_container")];
    assert_eq!([after[0] - before[0], after[1] - before[1], after[2] - before[2]], [2, 1, 1]);

    let mut want = vec![
        "node:dup-node",
        "node:dup-node/container:kubelet",
        "namespace:shop/pod:web",
        "namespace:shop/pod:web/container:app",
        "namespace:shop/pod:db",
        "namespace:shop/pod:db/container:pg",
        "namespace:ops/pod:job",
        "namespace:ops/pod:job/container:run",
    ];
    want.sort();
    let mut got: Vec<&str> = batch.sets.keys().map(String::as_str).collect();
    got.sort();
    assert_eq!(got, want, "one set per key");
    let cpu = |k: &str| batch.sets[k].get("cpu/usage");
    let web = &batch.sets["namespace:shop/pod:web"];
    assert_eq!(web.labels[labels::POD_ID], "new", "the recreated pod, not its predecessor");
    assert_eq!(cpu("namespace:shop/pod:web"), Some(MetricValue::Int(7)));
    assert_eq!(cpu("namespace:shop/pod:web/container:app"), Some(MetricValue::Int(7)));
    assert_eq!(cpu("namespace:ops/pod:job/container:run"), Some(MetricValue::Int(30)), "the restarted container");
    assert_eq!(cpu("node:dup-node/container:kubelet"), Some(MetricValue::Int(2)));
    assert_eq!(cpu("namespace:shop/pod:db/container:pg"), Some(MetricValue::Int(5)));

    // Scraped again with the same duplicates: counted again (they were dropped again), logged at warn only once.
    source.scrape(1_700_000_015_000).await.unwrap();
    assert_eq!(dropped(&m, "pod") - after[0], 2);
}

#[test]
fn duplicates_are_logged_at_warn_only_when_they_change() {
    use super::convert::Duplicates;
    let m = SourceMetrics::default();
    let count_duplicates = |node, d| m.count_duplicates(node, d);
    let node = "log-once-node";
    let some = Duplicates { pods: 1, containers: 0, system_containers: 0 };
    let more = Duplicates { pods: 1, containers: 2, system_containers: 0 };
    assert!(!count_duplicates(node, Duplicates::default()), "nothing to say");
    assert!(count_duplicates(node, some), "first time: warn");
    assert!(!count_duplicates(node, some), "same again: debug only");
    assert!(count_duplicates(node, more), "changed: warn");
    assert!(!count_duplicates(node, more));
    assert!(!count_duplicates(node, Duplicates::default()), "gone: info");
    assert!(count_duplicates(node, some), "back: warn again");
    assert!(!count_duplicates("another-node", Duplicates::default()));
}

/// Issue 3, "a 10 GB body": through a `KubeletSource`, as the scrape loop calls it, a declared 10 GB body and an
/// endless one both end with no batch and count under `too_large`, reading no more than the limit.
#[tokio::test]
async fn a_source_refuses_huge_and_endless_bodies_and_counts_them() {
    let m = SourceMetrics::default();
    let too_large = || m.kubelet_scrape_errors.get_or_create(&KubeletCauseLabels { cause: "too_large".into() }).get();
    for b in [Behaviour::Declares10Gb, Behaviour::Endless] {
        let url = kubelet(b).await;
        let source = KubeletSource {
            node: "big".into(),
            host_id: None,
            url,
            client: client(10_000, 1 << 20),
            metrics: m.clone(),
            api_pods: None,
        };
        let before = too_large();
        let e = source.scrape(1).await.unwrap_err();
        assert!(e.to_string().contains("kubelet big") && e.to_string().contains("kubeletMaxBody="), "{e}");
        assert!(too_large() > before, "{e}");
    }
}

/// How a test kubelet treats the requests of one connection.
#[derive(Clone, Copy)]
enum Conn {
    /// Answers each until the client closes.
    Keeps,
    /// Answers the first, then closes the connection.
    ClosesAfterOne,
    /// Answers the first; reads the second and closes without answering (a close that crossed the request).
    DropsTheSecond,
    /// Answers each with this status line and headers, keeping the connection open whatever they say.
    Head(&'static str),
    /// Answers each, and a moment later sends a few bytes more (after the client has kept the connection).
    Trails,
}

/// Connections accepted and requests read by a test kubelet so far.
#[derive(Default)]
struct Counts {
    accepted: std::sync::atomic::AtomicUsize,
    requests: std::sync::atomic::AtomicUsize,
}

impl Counts {
    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Serves the fixture as `conn` says; returns the URL and what it counts.
async fn counting_kubelet_with(conn: Conn) -> (String, std::sync::Arc<Counts>) {
    use std::sync::atomic::Ordering;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = std::sync::Arc::new(Counts::default());
    let count = counts.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            count.accepted.fetch_add(1, Ordering::SeqCst);
            let count = count.clone();
            tokio::spawn(async move {
                let mut req = [0u8; 4096];
                // One small GET per read.
                for n in 0.. {
                    if !sock.read(&mut req).await.is_ok_and(|n| n > 0) {
                        return;
                    }
                    count.requests.fetch_add(1, Ordering::SeqCst);
                    if n == 1 && matches!(conn, Conn::DropsTheSecond) {
                        return;
                    }
                    let status = if let Conn::Head(head) = conn { head } else { "HTTP/1.1 200 OK" };
                    let head = format!(
                        "{status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                        FIXTURE.len()
                    );
                    if sock.write_all(head.as_bytes()).await.is_err()
                        || sock.write_all(FIXTURE.as_bytes()).await.is_err()
                        || matches!(conn, Conn::ClosesAfterOne)
                    {
                        return;
                    }
                    if matches!(conn, Conn::Trails) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        let _ = sock.write_all(b"HTTP/1.1 2").await;
                    }
                }
            });
        }
    });
    (format!("http://{addr}/stats/summary"), counts)
}

async fn counting_kubelet() -> (String, std::sync::Arc<Counts>) {
    counting_kubelet_with(Conn::Keeps).await
}

/// A kubelet that restarted (or a proxy that drops idle connections) closed the connection kept from the last
/// round, without saying so: the next scrape connects afresh instead of failing.
#[tokio::test]
async fn a_kept_connection_closed_by_the_kubelet_is_replaced_not_an_error() {
    let (url, counts) = counting_kubelet_with(Conn::ClosesAfterOne).await;
    let c = KubeletClient::new(ClientConfig::default()).unwrap();
    for round in 0..3 {
        c.summary(&url).await.unwrap_or_else(|e| panic!("round {round}: {e}"));
        // The close reaches the client between rounds, as it would between two scrapes 15 s apart.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(counts.accepted(), 3);
}

/// A body far larger than the fixed read buffer arrives whole through a kept connection, twice, on one connection.
#[tokio::test]
async fn bodies_larger_than_the_read_buffer_arrive_whole_on_a_kept_connection() {
    let (url, counts) = counting_kubelet().await;
    assert!(FIXTURE.len() > 2 * crate::http::PLAIN_READ_BUFFER, "the fixture must span several reads");
    let c = KubeletClient::new(ClientConfig::default()).unwrap();
    assert!(c.plain_direct(), "plain http goes through hyper's connections unless a proxy is configured");
    let want = crate::kubelet::decode(FIXTURE.as_bytes()).unwrap().pods.len();
    for _ in 0..2 {
        assert_eq!(c.summary(&url).await.unwrap().pods.len(), want);
    }
    assert_eq!(counts.accepted(), 1);
}

/// A kubelet beyond the budget of kept connections: each scrape asks for `Connection: close` and connects afresh,
/// while the client it was made from keeps its connection.
#[tokio::test]
async fn a_reconnecting_client_connects_for_each_scrape() {
    let c = KubeletClient::new(ClientConfig::default()).unwrap();
    for (client, want) in [(c.reconnecting(), 3), (c.clone(), 1)] {
        let (url, counts) = counting_kubelet().await;
        for _ in 0..3 {
            client.summary(&url).await.expect("scrape");
        }
        assert_eq!(counts.accepted(), want, "keeps_connection={}", client.keeps_connection());
    }
}

#[tokio::test]
async fn connections_are_kept_between_scrapes_only_when_asked() {
    for (keep_alive, want) in [(true, 1), (false, 3)] {
        let (url, counts) = counting_kubelet().await;
        let c = KubeletClient::new(ClientConfig { keep_alive, ..ClientConfig::default() }).unwrap();
        for _ in 0..3 {
            c.summary(&url).await.expect("scrape");
        }
        assert_eq!(counts.accepted(), want, "keep_alive={keep_alive}");
    }
}

/// The kubelet closed the kept connection just as the next request reached it: the request is sent again on a
/// new connection (as Go's client does for an idempotent GET), not counted as a failed scrape.
#[tokio::test]
async fn a_request_crossing_the_kubelets_close_is_sent_again_on_a_new_connection() {
    let (url, counts) = counting_kubelet_with(Conn::DropsTheSecond).await;
    let c = KubeletClient::new(ClientConfig::default()).unwrap();
    assert!(c.plain_direct(), "plain http goes through hyper's connections unless a proxy is configured");
    for round in 0..3 {
        c.summary(&url).await.unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    // Rounds 1 and 2 each tried the kept connection, which the kubelet closed under their request, then a new one.
    assert_eq!((counts.accepted(), counts.requests()), (3, 5));
}

/// Bytes after a response's body (a kubelet out of step with its client) leave its connection unused after: the
/// check before reuse finds them, so the next request is not sent on it.
#[tokio::test]
async fn a_connection_with_bytes_beyond_the_response_is_not_reused() {
    let (url, counts) = counting_kubelet_with(Conn::Trails).await;
    let c = KubeletClient::new(ClientConfig::default()).unwrap();
    assert!(c.plain_direct());
    for round in 0..3 {
        c.summary(&url).await.unwrap_or_else(|e| panic!("round {round}: {e}"));
        // The trailing bytes reach the client between rounds, as they would between two scrapes 15 s apart.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!((counts.accepted(), counts.requests()), (3, 3));
}

/// A response that does not allow keeping its connection (`Connection: close`, or HTTP/1.0 without keep-alive)
/// leaves it unused after, even if the kubelet leaves it open.
#[tokio::test]
async fn a_connection_the_response_does_not_allow_is_not_reused() {
    for (head, want) in [
        ("HTTP/1.1 200 OK\r\nConnection: keep-alive, close", 3),
        ("HTTP/1.0 200 OK", 3),
        ("HTTP/1.1 200 OK\r\nConnection: keep-alive", 1),
    ] {
        let (url, counts) = counting_kubelet_with(Conn::Head(head)).await;
        let c = KubeletClient::new(ClientConfig::default()).unwrap();
        assert!(c.plain_direct());
        for _ in 0..3 {
            c.summary(&url).await.expect("scrape");
        }
        assert_eq!(counts.accepted(), want, "{head:?}");
    }
}

/// A connection idle for longer than the idle timeout (90 s) is closed, not reused.
#[tokio::test]
async fn a_connection_idle_past_the_timeout_is_not_reused() {
    let (url, counts) = counting_kubelet().await;
    let c = KubeletClient::new(ClientConfig::default()).unwrap();
    c.summary(&url).await.expect("scrape");
    c.summary(&url).await.expect("scrape");
    assert_eq!(counts.accepted(), 1);
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(91)).await;
    tokio::time::resume();
    c.summary(&url).await.expect("scrape");
    assert_eq!(counts.accepted(), 2);
}
