//! Events and leases of the simulated API server, checked with a real Kubernetes client (kube-rs) where one
//! exists, and on the wire where the exact bytes matter.

use super::*;
use crate::events::{ApiError, WatchKind, sample_event};
use futures_util::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Event as KubeEvent;
use kube::api::{Api, ListParams, PostParams, VersionMatch, WatchEvent, WatchParams};
use std::collections::HashMap;

async fn sim(bookmarks: Duration) -> Simulation {
    let config = SimConfig { nodes: 1, pods_per_node: 1, event_bookmark_interval: bookmarks, ..Default::default() };
    Simulation::start(config).await.unwrap()
}

fn client(sim: &Simulation) -> kube::Client {
    kube::Client::try_from(kube::Config::new(sim.api_url().parse().unwrap())).unwrap()
}

/// The next watch event that is not a BOOKMARK, within 5 s.
async fn next_change<S>(stream: &mut S) -> WatchEvent<KubeEvent>
where
    S: futures_util::Stream<Item = kube::Result<WatchEvent<KubeEvent>>> + Unpin,
{
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("a watch event within 5 s") {
            Some(Ok(WatchEvent::Bookmark(_))) => {}
            Some(Ok(e)) => return e,
            other => panic!("watch ended: {:?}", other.map(|r| r.map(|_| ()))),
        }
    }
}

fn name_count(e: &WatchEvent<KubeEvent>) -> (&'static str, String, i32, String) {
    let (kind, ev) = match e {
        WatchEvent::Added(ev) => ("ADDED", ev),
        WatchEvent::Modified(ev) => ("MODIFIED", ev),
        WatchEvent::Deleted(ev) => ("DELETED", ev),
        other => panic!("{other:?}"),
    };
    let rv = ev.metadata.resource_version.clone().unwrap();
    (kind, ev.metadata.name.clone().unwrap(), ev.count.unwrap_or(0), rv)
}

/// A kube-rs client lists events in pages at one revision and watches from it: the changes made after the list
/// arrive in order (ADDED, MODIFIED with the count bumped, DELETED) with their own resource versions, and then
/// BOOKMARKs at the current revision.
#[tokio::test]
async fn a_kube_client_lists_then_watches_events_with_bookmarks() {
    let sim = sim(Duration::from_millis(200)).await;
    let store = sim.events();
    let made: Vec<_> = (0..5).map(|i| store.create(sample_event(i)).unwrap()).collect();
    assert!(made.windows(2).all(|w| w[0].resource_version() < w[1].resource_version()));
    assert!(made.iter().all(|e| !e.metadata.uid.is_empty() && e.metadata.creation_timestamp.is_some()));
    let api = Api::<KubeEvent>::all(client(&sim));

    let (mut names, mut token, mut versions) = (Vec::new(), None::<String>, Vec::new());
    loop {
        let mut params = ListParams::default().limit(2);
        if let Some(t) = &token {
            params = params.continue_token(t);
        }
        let page = api.list(&params).await.unwrap();
        assert!(page.items.len() <= 2);
        versions.push(page.metadata.resource_version.clone().unwrap());
        names.extend(page.items.iter().map(|e| e.metadata.name.clone().unwrap()));
        // A change between pages must not show in later pages: they are cut from the first page's snapshot.
        if token.is_none() {
            store.create(sample_event(100)).unwrap();
        }
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    let mut expected: Vec<_> = made.iter().map(|e| e.metadata.name.clone()).collect();
    expected
        .sort_by_key(|n| (made.iter().find(|e| &e.metadata.name == n).unwrap().metadata.namespace.clone(), n.clone()));
    assert_eq!(names, expected, "every event once, in (namespace, name) order, without the one made meanwhile");
    assert_eq!(versions, vec![made[4].metadata.resource_version.clone(); 3], "3 pages at the first page's revision");
    let listed_at = versions[0].clone();

    let bumped = store.bump(&made[1].metadata.namespace, &made[1].metadata.name).unwrap();
    let deleted = store.delete(&made[2].metadata.namespace, &made[2].metadata.name).unwrap();
    assert_eq!(bumped.count, 2);
    assert_eq!(bumped.metadata.uid, made[1].metadata.uid, "an update keeps the event's identity");

    let mut watch = api.watch(&WatchParams::default().timeout(30), &listed_at).await.unwrap().boxed();
    let seen: Vec<_> = [next_change(&mut watch).await, next_change(&mut watch).await, next_change(&mut watch).await]
        .iter()
        .map(name_count)
        .collect();
    let rv = |e: &heapster_model::events::Event| e.metadata.resource_version.clone();
    let made100 = store.history().into_iter().find(|c| c.event.metadata.name.contains("000064")).unwrap().event;
    assert_eq!(
        seen,
        [
            ("ADDED", made100.metadata.name.clone(), 1, rv(&made100)),
            ("MODIFIED", made[1].metadata.name.clone(), 2, rv(&bumped)),
            ("DELETED", made[2].metadata.name.clone(), 1, rv(&deleted)),
        ]
    );
    // Then only bookmarks, at the revision of the last change.
    let bookmark = match tokio::time::timeout(Duration::from_secs(2), watch.next()).await.unwrap() {
        Some(Ok(WatchEvent::Bookmark(b))) => b,
        other => panic!("{:?}", other.map(|r| r.map(|_| ()))),
    };
    assert_eq!(bookmark.metadata.resource_version, store.revision().to_string());
    assert_eq!((bookmark.types.kind.as_str(), bookmark.types.api_version.as_str()), ("Event", "v1"));

    // A live change arrives on the same watch.
    let live = store.create(sample_event(7)).unwrap();
    assert_eq!(name_count(&next_change(&mut watch).await).1, live.metadata.name);

    // A namespaced list holds only its namespace's events.
    let system = Api::<KubeEvent>::namespaced(client(&sim), "kube-system").list(&ListParams::default()).await.unwrap();
    assert!(!system.items.is_empty());
    assert!(system.items.iter().all(|e| e.metadata.namespace.as_deref() == Some("kube-system")));
}

/// After `compact()`, a watch from an older resource version gets the real server's answer: HTTP 200 and one
/// ERROR event carrying a 410 Expired Status; an exact list at that version is a 410 Status; a watch from the
/// compacted revision itself still works.
#[tokio::test]
async fn compaction_expires_older_resource_versions() {
    let sim = sim(Duration::from_secs(1)).await;
    let store = sim.events();
    let first = store.create(sample_event(1)).unwrap().resource_version().unwrap();
    store.create(sample_event(2)).unwrap();
    let compacted = store.compact();
    assert_eq!(compacted, store.revision());
    let api = Api::<KubeEvent>::all(client(&sim));

    let mut watch = api.watch(&WatchParams::default(), &first.to_string()).await.unwrap().boxed();
    match tokio::time::timeout(Duration::from_secs(5), watch.next()).await.unwrap() {
        Some(Ok(WatchEvent::Error(status))) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
            assert_eq!(status.message, format!("too old resource version: {first} ({compacted})"));
        }
        other => panic!("{:?}", other.map(|r| r.map(|_| ()))),
    }
    assert!(tokio::time::timeout(Duration::from_secs(5), watch.next()).await.unwrap().is_none(), "then it ends");

    let raw = raw_lines(&sim, &format!("/api/v1/events?watch=1&resourceVersion={first}")).await;
    assert_eq!(raw.0, 200);
    let line: serde_json::Value = serde_json::from_str(raw.1.trim()).unwrap();
    assert_eq!(line["type"], "ERROR");
    assert_eq!(line["object"]["kind"], "Status");
    assert_eq!(line["object"]["code"], 410);

    let exact = ListParams::default().at(&first.to_string()).matching(VersionMatch::Exact);
    match api.list(&exact).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (410, "Expired")),
        other => panic!("{other:?}"),
    }

    let mut watch = api.watch(&WatchParams::default(), &compacted.to_string()).await.unwrap().boxed();
    let after = store.create(sample_event(3)).unwrap();
    assert_eq!(name_count(&next_change(&mut watch).await).1, after.metadata.name);
}

/// A plain GET's status and JSON lines: kube-rs would decode the ERROR line for us, which is what must be checked
/// raw.
async fn raw_lines(sim: &Simulation, path: &str) -> (u16, String) {
    let answer = String::from_utf8(raw_get(sim.api_server, path.to_owned()).await).unwrap();
    let code = answer[9..12].parse().unwrap();
    let body = answer.split_once("\r\n\r\n").unwrap().1;
    // Chunked: keep the JSON lines, drop the chunk sizes.
    let lines: Vec<&str> = body.lines().filter(|l| l.starts_with('{')).collect();
    (code, lines.join("\n"))
}

/// An exact list at an older, uncompacted revision shows the events as they were then.
#[tokio::test]
async fn an_exact_list_shows_an_older_revision() {
    let sim = sim(Duration::from_secs(1)).await;
    let store = sim.events();
    let a = store.create(sample_event(1)).unwrap();
    let then = store.revision();
    store.bump(&a.metadata.namespace, &a.metadata.name).unwrap();
    store.create(sample_event(2)).unwrap();
    let api = Api::<KubeEvent>::all(client(&sim));
    let old = api.list(&ListParams::default().at(&then.to_string()).matching(VersionMatch::Exact)).await.unwrap();
    assert_eq!(old.metadata.resource_version, Some(then.to_string()));
    assert_eq!(old.items.len(), 1);
    assert_eq!(old.items[0].count, Some(1));
    let now = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(now.items.len(), 2);
    assert_eq!(now.metadata.resource_version, Some(store.revision().to_string()));
}

/// A watch ends at `timeoutSeconds` with a last BOOKMARK; `break_watches` cuts every watch without one, as a
/// dropped connection.
#[tokio::test]
async fn watches_end_by_timeout_with_a_bookmark_and_break_without() {
    let sim = sim(Duration::from_secs(60)).await;
    let store = sim.events();
    store.create(sample_event(1)).unwrap();
    let rv = store.revision().to_string();
    let api = Api::<KubeEvent>::all(client(&sim));

    let mut timed = api.watch(&WatchParams::default().timeout(1), &rv).await.unwrap().boxed();
    let mut rest = Vec::new();
    while let Some(e) = tokio::time::timeout(Duration::from_secs(5), timed.next()).await.unwrap() {
        rest.push(e.unwrap());
    }
    assert!(matches!(rest.as_slice(), [WatchEvent::Bookmark(b)] if b.metadata.resource_version == rv), "{rest:?}");

    let mut broken = api.watch(&WatchParams::default(), &rv).await.unwrap().boxed();
    let raw = tokio::spawn(raw_get(
        sim.api_server,
        format!("/api/v1/events?watch=1&resourceVersion={rv}&allowWatchBookmarks=true"),
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    store.break_watches();
    // kube-rs ends the stream quietly on a cut chunked body (it takes it for the server's idle timeout); long
    // before the 290 s it asked for, and without a BOOKMARK.
    let mut got = Vec::new();
    while let Some(e) = tokio::time::timeout(Duration::from_secs(5), broken.next()).await.unwrap() {
        got.push(e.map(|_| ()));
    }
    assert!(got.iter().all(|e| e.is_err()), "no BOOKMARK nor event: {got:?}");
    // On the wire: the chunked body is left without its terminating chunk, as a dropped connection leaves it.
    let raw = String::from_utf8(raw.await.unwrap()).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200") && raw.contains("chunked"), "{raw}");
    assert!(!raw.ends_with("0\r\n\r\n"), "{raw:?}");
    assert!(!raw.contains("BOOKMARK"), "{raw}");

    let timed =
        raw_get(sim.api_server, format!("/api/v1/events?watch=true&resourceVersion={rv}&timeoutSeconds=1")).await;
    let timed = String::from_utf8(timed).unwrap();
    assert!(timed.ends_with("0\r\n\r\n"), "a timeout ends the body properly: {timed:?}");
    assert!(!timed.contains("BOOKMARK"), "without allowWatchBookmarks no bookmark at the end: {timed}");
}

/// Everything a plain `GET` reads on loopback until the server closes or cuts the connection.
async fn raw_get(addr: std::net::SocketAddr, path: String) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await.expect("closed within 5 s") {
            Ok(0) | Err(_) => return answer,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
}

/// 10,000 events created, bumped and deleted take well under the few seconds a test can spend, and a watch from
/// the start replays all 30,000 changes in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_are_cheap_and_replayed_in_order() {
    let sim = sim(Duration::from_secs(1)).await;
    let store = sim.events();
    let start = store.revision();
    let began = std::time::Instant::now();
    let made: Vec<_> = (0..10_000).map(|i| store.create(sample_event(i)).unwrap()).collect();
    for e in &made {
        store.bump(&e.metadata.namespace, &e.metadata.name).unwrap();
    }
    for e in &made {
        store.delete(&e.metadata.namespace, &e.metadata.name).unwrap();
    }
    let took = began.elapsed();
    println!("30,000 event changes in {took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(store.history().len(), 30_000);
    assert!(store.events().is_empty());

    let api = Api::<KubeEvent>::all(client(&sim));
    let mut watch = api.watch(&WatchParams::default(), &start.to_string()).await.unwrap().boxed();
    let mut last = start;
    let mut kinds = HashMap::new();
    let began = std::time::Instant::now();
    for _ in 0..30_000 {
        let (kind, _, _, rv) = name_count(&next_change(&mut watch).await);
        let rv: u64 = rv.parse().unwrap();
        assert!(rv > last, "{rv} after {last}");
        last = rv;
        *kinds.entry(kind).or_insert(0) += 1;
    }
    println!("30,000 watch events replayed in {:?}", began.elapsed());
    assert_eq!(kinds, HashMap::from([("ADDED", 10_000), ("MODIFIED", 10_000), ("DELETED", 10_000)]));
    assert_eq!(last, store.revision());
    let history = store.history();
    assert_eq!(history.iter().filter(|c| c.kind == WatchKind::Deleted).count(), 10_000);
}

/// Leases: create, get, update with optimistic concurrency, as client-go's leader election uses them.
#[tokio::test]
async fn leases_have_optimistic_concurrency() {
    let sim = sim(Duration::from_secs(1)).await;
    let api = Api::<Lease>::namespaced(client(&sim), "kube-system");
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(k8s_openapi::jiff::Timestamp::now());
    let mut lease = Lease {
        metadata: kube::api::ObjectMeta { name: Some("heapster-eventer".into()), ..Default::default() },
        spec: Some(LeaseSpec {
            holder_identity: Some("replica-a".into()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: Some(0),
            ..Default::default()
        }),
    };
    let created = api.create(&PostParams::default(), &lease).await.unwrap();
    let rv_a = created.metadata.resource_version.clone().unwrap();
    assert!(created.metadata.uid.is_some());
    assert_eq!(created.spec.as_ref().unwrap().holder_identity.as_deref(), Some("replica-a"));
    match api.create(&PostParams::default(), &lease).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists")),
        other => panic!("{other:?}"),
    }

    // Replica b takes it over from the version it read...
    let mut read = api.get("heapster-eventer").await.unwrap();
    assert_eq!(read.metadata.resource_version.as_deref(), Some(rv_a.as_str()));
    read.spec.as_mut().unwrap().holder_identity = Some("replica-b".into());
    read.spec.as_mut().unwrap().lease_transitions = Some(1);
    let b = api.replace("heapster-eventer", &PostParams::default(), &read).await.unwrap();
    assert_ne!(b.metadata.resource_version.as_deref(), Some(rv_a.as_str()));
    assert_eq!(b.metadata.uid, created.metadata.uid);
    // ...so replica a's renewal from the older version conflicts.
    lease.metadata.resource_version = Some(rv_a);
    match api.replace("heapster-eventer", &PostParams::default(), &lease).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
            assert!(s.message.contains("the object has been modified"), "{}", s.message);
        }
        other => panic!("{other:?}"),
    }
    let held = sim.events().lease("kube-system", "heapster-eventer").unwrap();
    assert_eq!(held["spec"]["holderIdentity"], "replica-b");
    assert_eq!(held["spec"]["leaseTransitions"], 1);

    match api.get("nobody").await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
            assert_eq!(s.message, "leases.coordination.k8s.io \"nobody\" not found");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(api.list(&ListParams::default()).await.unwrap().items.len(), 1);
    api.delete("heapster-eventer", &Default::default()).await.unwrap();
    assert!(matches!(api.get("heapster-eventer").await, Err(kube::Error::Api(s)) if s.code == 404));
}

/// Shards list each other's Leases by label: the selector keeps only the Leases carrying it.
#[tokio::test]
async fn leases_are_listed_by_label() {
    let sim = sim(Duration::from_secs(1)).await;
    let api = Api::<Lease>::namespaced(client(&sim), "monitoring");
    for (name, shard) in [("a-0", Some("a")), ("a-1", Some("a")), ("b-0", Some("b")), ("plain", None)] {
        let mut meta = kube::api::ObjectMeta { name: Some(name.into()), ..Default::default() };
        meta.labels = shard.map(|s| [("heapster.k8s.io/shard".to_owned(), s.to_owned())].into());
        api.create(&PostParams::default(), &Lease { metadata: meta, spec: None }).await.unwrap();
    }
    let names = |selector: &str| {
        let api = api.clone();
        let params = ListParams::default().labels(selector);
        async move {
            let mut n: Vec<String> =
                api.list(&params).await.unwrap().items.into_iter().map(|l| l.metadata.name.unwrap()).collect();
            n.sort();
            n
        }
    };
    assert_eq!(names("heapster.k8s.io/shard=a").await, ["a-0", "a-1"]);
    assert_eq!(names("heapster.k8s.io/shard==b").await, ["b-0"]);
    assert_eq!(names("heapster.k8s.io/shard!=a").await, ["b-0", "plain"]);
    assert_eq!(names("heapster.k8s.io/shard").await, ["a-0", "a-1", "b-0"]);
    assert_eq!(names("!heapster.k8s.io/shard").await, ["plain"]);
    assert_eq!(names("").await.len(), 4);
    match api.list(&ListParams::default().labels("heapster.k8s.io/shard in (a)")).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 400, "{}", s.message),
        other => panic!("a set-based selector must be refused, not misread: {other:?}"),
    }
}

/// The handle refuses what the API server would: a duplicate name, a missing event.
#[test]
fn the_handle_refuses_duplicates_and_missing_events() {
    let store = events::EventStore::new(Duration::from_secs(1));
    let e = store.create(sample_event(1)).unwrap();
    assert!(matches!(store.create(sample_event(1)), Err(ApiError::AlreadyExists(_))));
    assert!(matches!(store.bump("default", "none"), Err(ApiError::NotFound(_))));
    store.delete(&e.metadata.namespace, &e.metadata.name).unwrap();
    assert!(matches!(store.delete(&e.metadata.namespace, &e.metadata.name), Err(ApiError::NotFound(_))));
    let kinds: Vec<_> = store.history().iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [WatchKind::Added, WatchKind::Deleted]);
}
