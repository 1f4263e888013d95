//! The simulated API server's `core/v1` Events and `coordination.k8s.io/v1` Leases, with etcd's revision rules, so
//! that the eventer's list + watch, resume and election paths meet what a real cluster does to them.
//!
//! One revision counter numbers every change (of an event or a lease), as etcd's does. Watches replay the changes
//! after the client's resource version from an in-memory log, then stream live ones; [`EventStore::compact`]
//! forgets that log (a watch from before it then gets the real server's `410 Expired` ERROR event) and
//! [`EventStore::break_watches`] cuts every watch as a dropped connection would. Every version ever made stays in
//! [`EventStore::history`], so tests can check a sink against it.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{SecondsFormat, Utc};
use heapster_model::events::{Event, EventSource, ObjectMeta, ObjectReference};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What a change did to an event, as a watch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchKind {
    Added,
    Modified,
    Deleted,
}

impl WatchKind {
    fn wire(self) -> &'static str {
        match self {
            WatchKind::Added => "ADDED",
            WatchKind::Modified => "MODIFIED",
            WatchKind::Deleted => "DELETED",
        }
    }
}

/// One version of one event, as the API server made it. A deletion is a version too: a real server's DELETED
/// object carries the deletion's resource version.
#[derive(Debug, Clone)]
pub struct EventChange {
    pub revision: u64,
    pub kind: WatchKind,
    pub event: Arc<Event>,
}

/// Why the handle refused a change; the HTTP routes answer the matching Status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No object of that namespace and name.
    NotFound(String),
    /// An object of that namespace and name exists already.
    AlreadyExists(String),
    /// The object changed since the resource version the caller gave.
    Conflict(String),
    /// The request is malformed (`422 Invalid` or `400 BadRequest` over HTTP).
    Invalid(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::NotFound(m) | ApiError::AlreadyExists(m) | ApiError::Conflict(m) | ApiError::Invalid(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for ApiError {}

/// A stored event version; its JSON is made once, when a list or watch first sends it, and shared by every client
/// (a test making 10,000 changes nobody watches pays nothing for it).
#[derive(Clone)]
struct Stored(Arc<Version>);

struct Version {
    event: Arc<Event>,
    /// The event as Go marshals it, without `kind` and `apiVersion` (list items carry none; watch objects get
    /// them prepended).
    json: std::sync::OnceLock<String>,
}

impl Stored {
    fn new(event: Event) -> Stored {
        Stored::shared(Arc::new(event))
    }

    fn shared(event: Arc<Event>) -> Stored {
        Stored(Arc::new(Version { event, json: std::sync::OnceLock::new() }))
    }

    fn event(&self) -> &Arc<Event> {
        &self.0.event
    }

    fn json(&self) -> &str {
        self.0.json.get_or_init(|| serde_json::to_string(&*self.0.event).expect("an Event always serializes"))
    }
}

struct Logged {
    revision: u64,
    kind: WatchKind,
    stored: Stored,
}

type Key = (String, String);

pub(crate) struct Inner {
    /// etcd's revision: the last change's number, of an event or a lease.
    pub(crate) revision: u64,
    /// Changes up to this revision are forgotten; a watch from before it is expired.
    compacted: u64,
    /// Objects made so far, for uids.
    made: u64,
    events: BTreeMap<Key, Stored>,
    /// The changes after `compacted`, in revision order, that watches replay.
    log: VecDeque<Logged>,
    history: Vec<EventChange>,
    pub(crate) leases: BTreeMap<Key, Value>,
}

impl Inner {
    pub(crate) fn next_revision(&mut self) -> u64 {
        self.revision += 1;
        self.revision
    }

    /// A fresh uid in the UUID form a real server gives.
    pub(crate) fn new_uid(&mut self) -> String {
        self.made += 1;
        format!("5a1e0000-0000-4000-8000-{:012x}", self.made)
    }

    fn record(&mut self, kind: WatchKind, event: Event) -> Arc<Event> {
        let stored = Stored::new(event);
        let key = (stored.event().metadata.namespace.clone(), stored.event().metadata.name.clone());
        let revision = self.revision;
        self.history.push(EventChange { revision, kind, event: stored.event().clone() });
        self.log.push_back(Logged { revision, kind, stored: stored.clone() });
        let event = stored.event().clone();
        if kind == WatchKind::Deleted {
            self.events.remove(&key);
        } else {
            self.events.insert(key, stored);
        }
        event
    }

    /// The events as they were at `revision` (from the full history), in key order.
    fn events_at(&self, revision: u64) -> Vec<Stored> {
        if revision >= self.revision {
            return self.events.values().cloned().collect();
        }
        let mut at: BTreeMap<Key, Option<Arc<Event>>> = BTreeMap::new();
        for c in self.history.iter().take_while(|c| c.revision <= revision) {
            let key = (c.event.metadata.namespace.clone(), c.event.metadata.name.clone());
            at.insert(key, (c.kind != WatchKind::Deleted).then(|| c.event.clone()));
        }
        at.into_values().flatten().map(Stored::shared).collect()
    }
}

/// The simulated API server's events and leases, and the handle tests drive them with.
pub struct EventStore {
    pub(crate) inner: Mutex<Inner>,
    /// The revision after each change, which wakes the watches.
    revision: watch::Sender<u64>,
    /// Bumped by [`EventStore::break_watches`].
    breaks: watch::Sender<u64>,
    bookmark_every: Duration,
}

/// RFC 3339 in seconds, as a `metav1.Time`.
pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl EventStore {
    /// An empty store whose watches send a BOOKMARK every `bookmark_every` when the client allows them.
    pub fn new(bookmark_every: Duration) -> EventStore {
        EventStore {
            inner: Mutex::new(Inner {
                revision: 1,
                compacted: 0,
                made: 0,
                events: BTreeMap::new(),
                log: VecDeque::new(),
                history: Vec::new(),
                leases: BTreeMap::new(),
            }),
            revision: watch::Sender::new(1),
            breaks: watch::Sender::new(0),
            bookmark_every,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the watches after a change made under `inner` (which the caller has released or is about to).
    pub(crate) fn changed(&self, revision: u64) {
        self.revision.send_replace(revision);
    }

    /// Stores a new event, as `POST .../events` would: the server sets uid, resourceVersion and
    /// creationTimestamp (and the name from `generateName`, and namespace `default` when none is given).
    pub fn create(&self, mut event: Event) -> Result<Arc<Event>, ApiError> {
        let mut inner = self.lock();
        let meta = &mut event.metadata;
        if meta.namespace.is_empty() {
            meta.namespace = "default".into();
        }
        if meta.name.is_empty() {
            if meta.generate_name.is_empty() {
                return Err(ApiError::Invalid("Event \"\" is invalid: metadata.name: Required value".into()));
            }
            meta.name = format!("{}{:05x}", meta.generate_name, inner.made + 1);
        }
        let key = (meta.namespace.clone(), meta.name.clone());
        if inner.events.contains_key(&key) {
            return Err(ApiError::AlreadyExists(format!("events \"{}\" already exists", key.1)));
        }
        meta.uid = inner.new_uid();
        meta.resource_version = inner.next_revision().to_string();
        meta.creation_timestamp = Some(now_rfc3339());
        meta.deletion_timestamp = None;
        let event = inner.record(WatchKind::Added, event);
        let revision = inner.revision;
        drop(inner);
        self.changed(revision);
        Ok(event)
    }

    /// Changes a stored event with `change` (as a reporter bumping `count` and `lastTimestamp` does) and gives
    /// it a new resource version. Identity fields (name, namespace, uid, creationTimestamp) are kept.
    pub fn update(&self, namespace: &str, name: &str, change: impl FnOnce(&mut Event)) -> Result<Arc<Event>, ApiError> {
        let mut inner = self.lock();
        let key = (namespace.to_owned(), name.to_owned());
        let Some(current) = inner.events.get(&key) else {
            return Err(ApiError::NotFound(format!("events \"{name}\" not found")));
        };
        let mut event = (**current.event()).clone();
        let meta = current.event().metadata.clone();
        change(&mut event);
        event.metadata.name = meta.name;
        event.metadata.namespace = meta.namespace;
        event.metadata.uid = meta.uid;
        event.metadata.creation_timestamp = meta.creation_timestamp;
        event.metadata.resource_version = inner.next_revision().to_string();
        let event = inner.record(WatchKind::Modified, event);
        let revision = inner.revision;
        drop(inner);
        self.changed(revision);
        Ok(event)
    }

    /// One more occurrence of a stored event: `count` + 1 and `lastTimestamp` now, as the kubelet's event
    /// correlator does.
    pub fn bump(&self, namespace: &str, name: &str) -> Result<Arc<Event>, ApiError> {
        self.update(namespace, name, |e| {
            e.count = e.count.max(1) + 1;
            e.last_timestamp = Some(now_rfc3339());
        })
    }

    /// Deletes a stored event (as its TTL running out does); the DELETED version carries a new resource version.
    pub fn delete(&self, namespace: &str, name: &str) -> Result<Arc<Event>, ApiError> {
        let mut inner = self.lock();
        let key = (namespace.to_owned(), name.to_owned());
        let Some(current) = inner.events.get(&key) else {
            return Err(ApiError::NotFound(format!("events \"{name}\" not found")));
        };
        let mut event = (**current.event()).clone();
        event.metadata.resource_version = inner.next_revision().to_string();
        let event = inner.record(WatchKind::Deleted, event);
        let revision = inner.revision;
        drop(inner);
        self.changed(revision);
        Ok(event)
    }

    /// Forgets the changes up to the current revision, as etcd's compaction: a watch or an exact list from an
    /// older resource version is then `410 Expired`. Returns the compacted revision.
    pub fn compact(&self) -> u64 {
        let mut inner = self.lock();
        inner.compacted = inner.revision;
        inner.log.clear();
        inner.compacted
    }

    /// Ends every open watch abruptly (the response is cut without its last chunk, and without a final
    /// BOOKMARK), as a dropped connection or a restarted API server does.
    pub fn break_watches(&self) {
        self.breaks.send_modify(|n| *n += 1);
    }

    /// Every event version ever made, in revision order (compaction does not touch it).
    pub fn history(&self) -> Vec<EventChange> {
        self.lock().history.clone()
    }

    /// The current revision (the newest resource version of anything stored).
    pub fn revision(&self) -> u64 {
        self.lock().revision
    }

    /// The events stored now, in the order a list gives them.
    pub fn events(&self) -> Vec<Arc<Event>> {
        self.lock().events.values().map(|s| s.event().clone()).collect()
    }

    /// The lease stored now, as its JSON.
    pub fn lease(&self, namespace: &str, name: &str) -> Option<Value> {
        self.lock().leases.get(&(namespace.to_owned(), name.to_owned())).cloned()
    }
}

/// A plausible event: the `i`-th of a cluster whose kubelets report pod lifecycle, on the simulated nodes, so
/// tests and `heapster-sim --events` need not invent one. Its name is unique per `i`.
pub fn sample_event(i: u64) -> Event {
    const REASONS: [(&str, &str, &str); 4] = [
        ("Scheduled", "Normal", "Successfully assigned {pod} to {node}"),
        ("Pulled", "Normal", "Container image \"registry.invalid/web:1.0\" already present on machine"),
        ("Started", "Normal", "Started container web"),
        ("BackOff", "Warning", "Back-off restarting failed container web in pod {pod}"),
    ];
    let (reason, type_, message) = REASONS[(i % 4) as usize];
    // One event in five is a system pod's.
    let namespace = match i % 5 {
        0 => "kube-system",
        _ => "default",
    };
    let pod = format!("web-{}", i % 97);
    let node = format!("sim-node-{}", i % 3);
    let now = now_rfc3339();
    let component = if reason == "Scheduled" { "default-scheduler" } else { "kubelet" };
    Event {
        metadata: ObjectMeta {
            name: format!("{pod}.{:016x}", 0x17f3_0000_0000_0000 + i),
            namespace: namespace.into(),
            ..Default::default()
        },
        involved_object: ObjectReference {
            kind: "Pod".into(),
            namespace: namespace.into(),
            name: pod.clone(),
            uid: format!("pod-uid-{}", i % 97),
            api_version: "v1".into(),
            resource_version: "1".into(),
            field_path: if component == "kubelet" { "spec.containers{web}".into() } else { String::new() },
        },
        reason: reason.into(),
        message: message.replace("{pod}", &format!("{namespace}/{pod}")).replace("{node}", &node),
        source: EventSource {
            component: component.into(),
            host: if component == "kubelet" { node.clone() } else { String::new() },
        },
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: 1,
        type_: type_.into(),
        reporting_component: component.into(),
        reporting_instance: if component == "kubelet" { node } else { String::new() },
        ..Default::default()
    }
}

/// A `metav1.Status` failure, as the real server answers.
pub(crate) fn status(code: StatusCode, reason: &str, message: String, details: Value) -> Response {
    let mut body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16()});
    if !details.is_null() {
        body["details"] = details;
    }
    (code, axum::Json(body)).into_response()
}

fn expired_message(asked: u64, compacted: u64) -> String {
    format!("too old resource version: {asked} ({compacted})")
}

/// The query parameters of a list or watch.
type Params = HashMap<String, String>;

fn json_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `GET /api/v1/events` and `/api/v1/namespaces/{ns}/events`: a list (paged with `limit` and `continue`, at a
/// resource version as `resourceVersion` and `resourceVersionMatch` ask) or, with `watch`, a watch.
fn list_or_watch(store: Arc<EventStore>, namespace: Option<String>, p: Params) -> Response {
    if crate::apiserver::is_watch(&p) {
        return watch(store, namespace, &p);
    }
    let inner = store.lock();
    let current = inner.revision;
    // The continue token is "revision:offset": every page is cut from the list as it was at the first page's
    // revision, as etcd serves a paged list from one snapshot.
    let (at, offset): (u64, usize) = match p.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => match token.split_once(':').and_then(|(r, o)| Some((r.parse::<u64>().ok()?, o.parse().ok()?))) {
            Some((rev, _)) if rev < inner.compacted => {
                return status(
                    StatusCode::GONE,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent list result. You can start a \
                     new list without the continue parameter."
                        .into(),
                    Value::Null,
                );
            }
            Some(t) => t,
            None => {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!("continue key is not valid: {token}"),
                    Value::Null,
                );
            }
        },
        None => {
            let asked = p.get("resourceVersion").and_then(|r| r.parse::<u64>().ok()).filter(|&r| r > 0);
            let exact = p.get("resourceVersionMatch").is_some_and(|m| m == "Exact");
            match asked {
                Some(rv) if rv > current => {
                    return status(
                        StatusCode::GATEWAY_TIMEOUT,
                        "Timeout",
                        format!("Too large resource version: {rv}, current: {current}"),
                        json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                               "retryAfterSeconds": 1}),
                    );
                }
                Some(rv) if exact && rv < inner.compacted => {
                    return status(StatusCode::GONE, "Expired", expired_message(rv, inner.compacted), Value::Null);
                }
                Some(rv) if exact => (rv, 0),
                _ => (current, 0),
            }
        }
    };
    let items: Vec<Stored> = inner
        .events_at(at)
        .into_iter()
        .filter(|s| namespace.as_ref().is_none_or(|ns| &s.event().metadata.namespace == ns))
        .collect();
    drop(inner);
    let limit = p.get("limit").and_then(|l| l.parse::<usize>().ok()).filter(|&l| l > 0).unwrap_or(usize::MAX);
    let end = offset.saturating_add(limit).min(items.len());
    let mut metadata = json!({"resourceVersion": at.to_string()});
    if end < items.len() {
        metadata["continue"] = json!(format!("{at}:{end}"));
        metadata["remainingItemCount"] = json!(items.len() - end);
    }
    let mut body = format!(r#"{{"kind":"EventList","apiVersion":"v1","metadata":{metadata},"items":["#);
    for (i, s) in items[offset.min(end)..end].iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(s.json());
    }
    body.push_str("]}");
    json_response(body)
}

/// One watch event line for a stored version.
fn push_event(out: &mut Vec<u8>, kind: WatchKind, s: &Stored) {
    out.extend_from_slice(br#"{"type":""#);
    out.extend_from_slice(kind.wire().as_bytes());
    out.extend_from_slice(br#"","object":{"kind":"Event","apiVersion":"v1","#);
    out.extend_from_slice(&s.json().as_bytes()[1..]);
    out.extend_from_slice(b"}\n");
}

/// A BOOKMARK line: an otherwise empty Event carrying the revision the watch has sent everything up to, marshaled
/// as Go marshals it.
fn bookmark(revision: u64, initial_events_end: bool) -> Vec<u8> {
    let mut event = Event {
        metadata: ObjectMeta { resource_version: revision.to_string(), ..Default::default() },
        ..Default::default()
    };
    if initial_events_end {
        event.metadata.annotations.insert("k8s.io/initial-events-end".into(), "true".into());
    }
    let s = Stored::new(event);
    let mut out = br#"{"type":"BOOKMARK","object":{"kind":"Event","apiVersion":"v1","#.to_vec();
    out.extend_from_slice(&s.json().as_bytes()[1..]);
    out.extend_from_slice(b"}\n");
    out
}

fn expired_event(asked: u64, compacted: u64) -> Vec<u8> {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": expired_message(asked, compacted), "reason": "Expired", "code": 410});
    let mut line = serde_json::to_vec(&json!({"type": "ERROR", "object": status})).unwrap_or_default();
    line.push(b'\n');
    line
}

/// At most this many events go in one chunk of a watch, so a client far behind is fed in bounded pieces.
const CHUNK_EVENTS: usize = 500;

type Chunks = mpsc::Sender<Result<Vec<u8>, std::io::Error>>;

fn watch(store: Arc<EventStore>, namespace: Option<String>, p: &Params) -> Response {
    let since = p.get("resourceVersion").and_then(|r| r.parse::<u64>().ok()).filter(|&r| r > 0);
    let bookmarks = p.get("allowWatchBookmarks").is_some_and(|b| b == "true" || b == "1");
    // Streaming lists (`sendInitialEvents`) start with the current objects whatever the resource version.
    let initial = p.get("sendInitialEvents").is_some_and(|b| b == "true" || b == "1");
    let since = since.filter(|_| !initial);
    let timeout = p.get("timeoutSeconds").and_then(|t| t.parse().ok()).unwrap_or(1800u64);
    let (tx, rx) = mpsc::channel(4);
    let start = Start { since, bookmarks, initial, timeout: Duration::from_secs(timeout) };
    tokio::spawn(run_watch(store, namespace, start, tx));
    let stream = crate::apiserver::tokio_stream_from(rx);
    ([(header::CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response()
}

/// What a watch request asked for.
struct Start {
    /// The resource version to replay from; `None`: the current objects as ADDED first.
    since: Option<u64>,
    bookmarks: bool,
    /// A streaming list: a BOOKMARK annotated `k8s.io/initial-events-end` after the current objects.
    initial: bool,
    timeout: Duration,
}

async fn run_watch(store: Arc<EventStore>, namespace: Option<String>, start: Start, tx: Chunks) {
    let Start { since, bookmarks, initial, timeout } = start;
    let mut woken = store.revision.subscribe();
    let mut breaks = store.breaks.subscribe();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + store.bookmark_every, store.bookmark_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ours = |s: &Stored| namespace.as_ref().is_none_or(|ns| &s.event().metadata.namespace == ns);
    // Without a resource version a watch starts with the current objects as ADDED, as a real server's does.
    let mut pos = match since {
        Some(rv) => rv,
        None => {
            woken.borrow_and_update();
            let (current, revision) = {
                let inner = store.lock();
                (inner.events.values().filter(|s| ours(s)).cloned().collect::<Vec<_>>(), inner.revision)
            };
            for part in current.chunks(CHUNK_EVENTS) {
                let mut out = Vec::new();
                part.iter().for_each(|s| push_event(&mut out, WatchKind::Added, s));
                if tx.send(Ok(out)).await.is_err() {
                    return;
                }
            }
            if initial && tx.send(Ok(bookmark(revision, true))).await.is_err() {
                return;
            }
            revision
        }
    };
    loop {
        woken.borrow_and_update();
        let mut out = Vec::new();
        let (next, more) = {
            let inner = store.lock();
            if pos < inner.compacted {
                (None, false)
            } else {
                let start = inner.log.partition_point(|l| l.revision <= pos);
                let mut taken = 0;
                let mut last = pos;
                for l in inner.log.range(start..).take(CHUNK_EVENTS) {
                    if ours(&l.stored) {
                        push_event(&mut out, l.kind, &l.stored);
                    }
                    taken += 1;
                    last = l.revision;
                }
                let more = start + taken < inner.log.len();
                (Some(if more { last } else { inner.revision.max(pos) }), more)
            }
        };
        // A watch behind the compacted revision (never started, or fallen behind) is expired, as etcd's.
        let Some(next) = next else {
            let compacted = store.lock().compacted;
            let _ = tx.send(Ok(expired_event(pos, compacted))).await;
            return;
        };
        if !out.is_empty() && tx.send(Ok(out)).await.is_err() {
            return;
        }
        pos = next;
        if more {
            continue;
        }
        tokio::select! {
            _ = woken.changed() => {}
            _ = tick.tick(), if bookmarks => {
                if tx.send(Ok(bookmark(pos, false))).await.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                if bookmarks {
                    let _ = tx.send(Ok(bookmark(pos, false))).await;
                }
                return;
            }
            _ = breaks.changed() => {
                let cut = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "watch broken by the simulation");
                let _ = tx.send(Err(cut)).await;
                return;
            }
            _ = tx.closed() => return,
        }
    }
}

async fn all_events(State(store): State<Arc<EventStore>>, Query(p): Query<Params>) -> Response {
    list_or_watch(store, None, p)
}

async fn namespace_events(
    State(store): State<Arc<EventStore>>,
    Path(ns): Path<String>,
    Query(p): Query<Params>,
) -> Response {
    list_or_watch(store, Some(ns), p)
}

/// `GET .../namespaces/{ns}/events/{name}`.
async fn one_event(State(store): State<Arc<EventStore>>, Path((ns, name)): Path<(String, String)>) -> Response {
    let found = store.lock().events.get(&(ns, name.clone())).map(|s| s.json().to_owned());
    match found {
        Some(json) => json_response(format!(r#"{{"kind":"Event","apiVersion":"v1",{}"#, &json[1..])),
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("events \"{name}\" not found"),
            json!({"name": name, "kind": "events"}),
        ),
    }
}

/// The routes of events and leases.
pub fn router(store: Arc<EventStore>) -> Router {
    Router::new()
        .route("/api/v1/events", get(all_events))
        .route("/api/v1/namespaces/{ns}/events", get(namespace_events))
        .route("/api/v1/namespaces/{ns}/events/{name}", get(one_event))
        .merge(crate::leases::routes())
        .with_state(store)
}
