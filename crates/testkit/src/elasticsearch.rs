//! A strict stand-in for Elasticsearch (no Elasticsearch or OpenSearch package installs here), built from Elastic's
//! published REST specification (`rest-api-spec/api/*.json` in elastic/elasticsearch: `info`, `cluster.health`,
//! `indices.put_template`, `indices.put_index_template`, `bulk`) and the server's documented behaviour for the
//! major version it plays (2, 5, 6, 7 or 8):
//!
//! - paths and methods as the spec lists them, query parameters only those the spec declares for the endpoint;
//! - basic auth on every request when the fake has a user;
//! - `_bulk`: `Content-Type: application/x-ndjson`, a body of action lines each followed by its source line and
//!   ending in a newline, action metadata only the keys the version knows (`_type` refused by 8);
//! - templates: `template` (2, 5) or `index_patterns` (6+); mappings with a type per family (2, 5), exactly one
//!   type (6) or none (7, 8); field types of the version (`string` with `index: analyzed|not_analyzed` up to 5,
//!   refused from 6, which has `text` and `keyword`); composable `_index_template` from 7;
//! - an index made on the first write to it, with the mapping and aliases of the templates matching its name;
//! - each document checked against its index's mapping, field by field (a string where a `double` is mapped,
//!   a date that does not parse, an object where a value is mapped: `mapper_parsing_exception` for that item),
//!   unmapped fields mapped on first sight as Elasticsearch's dynamic mapping does and held to that afterwards;
//! - documents kept by index and `_id` (the same `_id` again replaces: `"result":"updated"`, status 200).
//!
//! Tests read back what was taken, and can make the next requests fail or the next items be refused as "too busy"
//! (429 `es_rejected_execution_exception`).

use base64::Engine as _;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// One document as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    pub index: String,
    /// The mapping type (`_doc` for 7 and 8, which have none).
    pub type_: String,
    pub id: String,
    pub source: Value,
    /// Times written (1, then 2 when the same `_id` came again).
    pub version: u64,
}

#[derive(Default)]
struct Index {
    /// Mapping per type; `_doc` for typeless versions.
    mappings: BTreeMap<String, Value>,
    aliases: Vec<String>,
    docs: BTreeMap<String, Doc>,
}

/// One request as received: method, path and query.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
}

#[derive(Default)]
struct State {
    legacy_templates: BTreeMap<String, Value>,
    index_templates: BTreeMap<String, Value>,
    indices: BTreeMap<String, Index>,
    seen: Vec<Seen>,
    /// The next requests answered with this status, whatever they are.
    fail_next: Vec<u16>,
    /// The next this many bulk items are refused as "too busy".
    busy_items: usize,
    /// Items refused, by error type.
    refused: BTreeMap<String, usize>,
    auto_id: u64,
}

struct Shared {
    version: u8,
    auth: Option<String>,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A fake Elasticsearch of one major version on a free 127.0.0.1 port, until dropped.
pub struct ElasticsearchFake {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for ElasticsearchFake {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Answer = (u16, Value);

fn error(status: u16, type_: &str, reason: impl Into<String>) -> Answer {
    let reason = reason.into();
    (
        status,
        json!({"error": {"root_cause": [{"type": type_, "reason": reason}], "type": type_, "reason": reason}, "status": status}),
    )
}

impl ElasticsearchFake {
    /// Plays Elasticsearch `version` (2, 5, 6, 7 or 8); with `user`, every request needs its basic auth.
    pub fn start(version: u8, user: Option<(&str, &str)>) -> ElasticsearchFake {
        assert!(matches!(version, 2 | 5..=8), "the fake plays Elasticsearch 2, 5, 6, 7 or 8");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free 127.0.0.1 port");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let auth = user.map(|(u, p)| base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")));
        let shared = Arc::new(Shared { version, auth, state: Mutex::new(State::default()) });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new()
            .fallback(handle)
            .layer(axum::extract::DefaultBodyLimit::max(100 << 20))
            .with_state(shared.clone());
        let thread = std::thread::Builder::new()
            .name("elasticsearch-fake".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    tokio::select! {
                        r = axum::serve(listener, app) => r.expect("the Elasticsearch fake's server failed"),
                        _ = stopped => {}
                    }
                });
            })
            .unwrap();
        ElasticsearchFake { addr, shared, stop: Some(stop), thread: Some(thread) }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every document in the indices `name` names (an index or an alias), by index then `_id`.
    pub fn docs(&self, name: &str) -> Vec<Doc> {
        let st = self.shared.state();
        st.indices
            .iter()
            .filter(|(n, i)| *n == name || i.aliases.iter().any(|a| a == name))
            .flat_map(|(_, i)| i.docs.values().cloned())
            .collect()
    }

    /// The names of the indices made so far.
    pub fn indices(&self) -> Vec<String> {
        self.shared.state().indices.keys().cloned().collect()
    }

    /// An index's aliases.
    pub fn aliases(&self, index: &str) -> Vec<String> {
        self.shared.state().indices.get(index).map(|i| i.aliases.clone()).unwrap_or_default()
    }

    /// An index's mapping of `type_` (`_doc` for 7 and 8), with the fields dynamic mapping added.
    pub fn mapping(&self, index: &str, type_: &str) -> Option<Value> {
        self.shared.state().indices.get(index).and_then(|i| i.mappings.get(type_).cloned())
    }

    /// Names of the templates installed (legacy `_template` and composable `_index_template`).
    pub fn templates(&self) -> Vec<String> {
        let st = self.shared.state();
        st.legacy_templates.keys().chain(st.index_templates.keys()).cloned().collect()
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.state().seen.clone()
    }

    /// Items refused so far, by error type (`mapper_parsing_exception`, `es_rejected_execution_exception`).
    pub fn refused(&self) -> BTreeMap<String, usize> {
        self.shared.state().refused.clone()
    }

    /// Answers the next `n` requests with `status` (503: a cluster without a master, say).
    pub fn fail_next(&self, n: usize, status: u16) {
        self.shared.state().fail_next.extend(std::iter::repeat_n(status, n));
    }

    /// Refuses the next `n` bulk items with 429 `es_rejected_execution_exception`, as a node whose write queue is
    /// full does.
    pub fn busy_items(&self, n: usize) {
        self.shared.state().busy_items = n;
    }
}

async fn handle(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 100 << 20).await.unwrap_or_default();
    let (status, answer) = answer(&shared, &parts, &body);
    let mut resp = axum::response::IntoResponse::into_response(axum::Json(answer));
    *resp.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
    resp
}

/// The query parameters each endpoint declares in the spec (and `pretty`, `human`, `error_trace`,
/// `filter_path`, which every endpoint takes).
fn allowed_params(endpoint: &str, version: u8) -> Vec<&'static str> {
    let mut p = vec!["pretty", "human", "error_trace", "filter_path"];
    p.extend(match endpoint {
        "bulk" => vec![
            "wait_for_active_shards",
            "refresh",
            "routing",
            "timeout",
            "type",
            "_source",
            "_source_excludes",
            "_source_includes",
            "pipeline",
            "require_alias",
        ],
        "put_template" if version >= 7 => vec!["order", "create", "master_timeout", "include_type_name"],
        "put_template" => vec!["order", "create", "timeout", "master_timeout", "flat_settings"],
        "put_index_template" => vec!["create", "cause", "master_timeout"],
        "health" => vec!["level", "local", "master_timeout", "timeout", "wait_for_status", "wait_for_nodes"],
        _ => vec![],
    });
    p
}

fn answer(shared: &Shared, parts: &axum::http::request::Parts, body: &[u8]) -> Answer {
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    let mut st = shared.state();
    st.seen.push(Seen { method: method.clone(), path: path.clone(), query: query.clone() });
    if let Some(auth) = &shared.auth {
        let given = parts.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
        if given != format!("Basic {auth}") {
            return error(
                401,
                "security_exception",
                format!("missing authentication credentials for REST request [{path}]"),
            );
        }
    }
    if !st.fail_next.is_empty() {
        let status = st.fail_next.remove(0);
        return error(status, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no master];");
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let (endpoint, methods): (&str, &[&str]) = match segments.as_slice() {
        [] => ("info", &["GET", "HEAD"]),
        ["_cluster", "health"] => ("health", &["GET"]),
        ["_template", _] => ("put_template", &["PUT", "POST"]),
        ["_index_template", _] if shared.version >= 7 => ("put_index_template", &["PUT", "POST"]),
        ["_bulk"] | [_, "_bulk"] => ("bulk", &["POST", "PUT"]),
        [_, _, "_bulk"] if shared.version <= 6 => ("bulk", &["POST", "PUT"]),
        _ => {
            return error(
                400,
                "illegal_argument_exception",
                format!("no handler found for uri [{path}] and method [{method}]"),
            );
        }
    };
    if !methods.contains(&method.as_str()) {
        return error(
            405,
            "method_not_allowed",
            format!("Incorrect HTTP method for uri [{path}] and method [{method}], allowed: {methods:?}"),
        );
    }
    let allowed = allowed_params(endpoint, shared.version);
    for (k, _) in url::form_urlencoded::parse(query.as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            return error(
                400,
                "illegal_argument_exception",
                format!("request [{path}] contains unrecognized parameter: [{k}]"),
            );
        }
    }
    let content_type = parts.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    match endpoint {
        "info" => (
            200,
            json!({
                "name": "fake",
                "cluster_name": "elasticsearch",
                "version": {"number": format!("{}.{}.0", shared.version, if shared.version == 2 { 4 } else { 6 })},
                "tagline": "You Know, for Search",
            }),
        ),
        "health" => (200, json!({"cluster_name": "elasticsearch", "status": "green", "number_of_nodes": 1})),
        "put_template" | "put_index_template" => {
            if !content_type.starts_with("application/json") {
                return error(
                    406,
                    "illegal_argument_exception",
                    format!("Content-Type header [{content_type}] is not supported"),
                );
            }
            let Ok(Value::Object(t)) = serde_json::from_slice::<Value>(body) else {
                return error(400, "parse_exception", "request body is required and must be a JSON object");
            };
            let name = segments[1].to_owned();
            let checked = if endpoint == "put_template" {
                check_legacy_template(shared.version, &t)
            } else {
                check_index_template(&t)
            };
            if let Err(e) = checked {
                return e;
            }
            let store = if endpoint == "put_template" { &mut st.legacy_templates } else { &mut st.index_templates };
            store.insert(name, Value::Object(t));
            (200, json!({"acknowledged": true}))
        }
        _ => {
            if !content_type.starts_with("application/x-ndjson") {
                return error(
                    406,
                    "illegal_argument_exception",
                    format!("Content-Type header [{content_type}] is not supported for _bulk (application/x-ndjson)"),
                );
            }
            let default_index = match segments.as_slice() {
                [i, "_bulk"] | [i, _, "_bulk"] => Some((*i).to_owned()),
                _ => None,
            };
            bulk(shared.version, &mut st, body, default_index)
        }
    }
}

/// A mapping Elasticsearch cannot use, as it says so.
fn mapper(reason: impl Into<String>) -> Answer {
    error(400, "mapper_parsing_exception", reason)
}

fn check_mapping_fields(version: u8, props: &Map<String, Value>, at: &str) -> Result<(), Answer> {
    for (name, field) in props {
        let path = if at.is_empty() { name.clone() } else { format!("{at}.{name}") };
        let Some(f) = field.as_object() else {
            return Err(mapper(format!("Expected map for property [fields] on field [{path}]")));
        };
        if let Some(Value::Object(inner)) = f.get("properties") {
            check_mapping_fields(version, inner, &path)?;
            continue;
        }
        let t = f.get("type").and_then(Value::as_str).unwrap_or("object");
        let known: &[&str] = match version {
            2 => &["string", "long", "integer", "double", "float", "date", "boolean", "object"],
            5 => &["string", "text", "keyword", "long", "integer", "double", "float", "date", "boolean", "object"],
            _ => &["text", "keyword", "long", "integer", "double", "float", "date", "boolean", "object"],
        };
        if !known.contains(&t) {
            return Err(mapper(format!("No handler for type [{t}] declared on field [{path}]")));
        }
        match f.get("index") {
            None => {}
            Some(Value::String(s))
                if version <= 5 && t == "string" && ["analyzed", "not_analyzed", "no"].contains(&s.as_str()) => {}
            Some(Value::Bool(_)) if version >= 5 && t != "string" => {}
            Some(v) => {
                return Err(mapper(format!("Could not convert [{path}.index] to boolean: {v}")));
            }
        }
        for key in f.keys() {
            if !["type", "index", "fields", "format", "properties"].contains(&key.as_str()) {
                return Err(mapper(format!("unknown parameter [{key}] on mapper [{path}]")));
            }
        }
        if let Some(Value::Object(sub)) = f.get("fields") {
            check_mapping_fields(version, sub, &path)?;
        }
    }
    Ok(())
}

/// A mapping of one type: `{"properties": {...}}` (and `_all` up to 5).
fn check_type_mapping(version: u8, m: &Value, type_: &str) -> Result<(), Answer> {
    let Some(m) = m.as_object() else {
        return Err(mapper(format!("mapping [{type_}] is not an object")));
    };
    for key in m.keys() {
        let ok = key == "properties" || (key == "_all" && version <= 5) || key == "dynamic";
        if !ok {
            return Err(mapper(format!("Root mapping definition has unsupported parameters:  [{key}]")));
        }
    }
    match m.get("properties") {
        Some(Value::Object(p)) => check_mapping_fields(version, p, ""),
        None => Ok(()),
        Some(_) => Err(mapper("[properties] must be an object")),
    }
}

/// `mappings` of a template: types (2, 5), one type (6) or typeless (7, 8).
fn check_mappings(version: u8, mappings: &Value) -> Result<(), Answer> {
    let Some(m) = mappings.as_object() else {
        return Err(mapper("[mappings] must be an object"));
    };
    match version {
        2 | 5 => m.iter().try_for_each(|(t, tm)| check_type_mapping(version, tm, t)),
        6 => {
            if m.len() > 1 {
                return Err(error(
                    400,
                    "illegal_argument_exception",
                    "Rejecting mapping update as the final mapping would have more than 1 type",
                ));
            }
            m.iter().try_for_each(|(t, tm)| check_type_mapping(version, tm, t))
        }
        _ => check_type_mapping(version, mappings, "_doc"),
    }
}

fn check_aliases(a: Option<&Value>) -> Result<(), Answer> {
    match a {
        None => Ok(()),
        Some(Value::Object(m)) if m.values().all(Value::is_object) => Ok(()),
        Some(_) => Err(error(400, "x_content_parse_exception", "[aliases] must be an object of alias objects")),
    }
}

fn check_legacy_template(version: u8, t: &Map<String, Value>) -> Result<(), Answer> {
    let allowed: &[&str] = if version <= 5 {
        &["template", "order", "settings", "mappings", "aliases", "version"]
    } else {
        &["index_patterns", "order", "settings", "mappings", "aliases", "version"]
    };
    if let Some(k) = t.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(error(400, "illegal_argument_exception", format!("unknown key [{k}] in the template")));
    }
    let patterns = legacy_patterns(version, t.get("template"), t.get("index_patterns"));
    if patterns.is_none_or(|p| p.is_empty()) {
        return Err(error(
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: index patterns are missing;",
        ));
    }
    if let Some(m) = t.get("mappings") {
        check_mappings(version, m)?;
    }
    check_aliases(t.get("aliases"))
}

fn check_index_template(t: &Map<String, Value>) -> Result<(), Answer> {
    let allowed = ["index_patterns", "template", "composed_of", "priority", "version", "_meta", "data_stream"];
    if let Some(k) = t.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(error(400, "x_content_parse_exception", format!("[index_template] unknown field [{k}]")));
    }
    if string_list(t.get("index_patterns")).is_none_or(|p| p.is_empty()) {
        return Err(error(
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: index patterns are missing;",
        ));
    }
    if let Some(inner) = t.get("template") {
        let Some(inner) = inner.as_object() else {
            return Err(error(400, "x_content_parse_exception", "[template] must be an object"));
        };
        if let Some(k) = inner.keys().find(|k| !["settings", "mappings", "aliases", "lifecycle"].contains(&k.as_str()))
        {
            return Err(error(400, "x_content_parse_exception", format!("[template] unknown field [{k}]")));
        }
        if let Some(m) = inner.get("mappings") {
            check_mappings(8, m)?;
        }
        check_aliases(inner.get("aliases"))?;
    }
    Ok(())
}

/// A legacy template's index patterns: `template` up to 5, `index_patterns` from 6.
fn legacy_patterns<'a>(version: u8, template: Option<&'a Value>, patterns: Option<&'a Value>) -> Option<Vec<&'a str>> {
    if version <= 5 { template.and_then(Value::as_str).map(|p| vec![p]) } else { string_list(patterns) }
}

fn string_list(v: Option<&Value>) -> Option<Vec<&str>> {
    match v? {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(a) => a.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

/// Elasticsearch's index patterns: `*` matches any run of characters.
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.starts_with(head) && (0..=name.len() - head.len()).any(|i| matches(tail, &name[head.len() + i..]))
        }
    }
}

/// A new index as the templates matching its name make it: the composable template of highest priority if one
/// matches (8 and 7.8+), else every legacy template by `order`.
fn new_index(version: u8, st: &State, name: &str) -> Index {
    let mut index = Index::default();
    let composable = st
        .index_templates
        .values()
        .filter(|t| string_list(t.get("index_patterns")).unwrap_or_default().iter().any(|p| matches(p, name)))
        .max_by_key(|t| t["priority"].as_i64().unwrap_or(0));
    let mut apply = |mappings: Option<&Value>, aliases: Option<&Value>| {
        if let Some(Value::Object(m)) = mappings {
            if version >= 7 {
                index.mappings.insert("_doc".into(), Value::Object(m.clone()));
            } else {
                for (t, tm) in m {
                    index.mappings.insert(t.clone(), tm.clone());
                }
            }
        }
        if let Some(Value::Object(a)) = aliases {
            index.aliases.extend(a.keys().cloned());
        }
    };
    if let Some(t) = composable {
        apply(t["template"].get("mappings"), t["template"].get("aliases"));
    } else {
        let mut legacy: Vec<&Value> = st
            .legacy_templates
            .values()
            .filter(|t| {
                legacy_patterns(version, t.get("template"), t.get("index_patterns"))
                    .unwrap_or_default()
                    .iter()
                    .any(|p| matches(p, name))
            })
            .collect();
        legacy.sort_by_key(|t| t["order"].as_i64().unwrap_or(0));
        for t in legacy {
            apply(t.get("mappings"), t.get("aliases"));
        }
    }
    index
}

/// The keys of a bulk action's metadata, with the first and last major version that take each.
const META_KEYS: &[(&str, u8, u8)] = &[
    ("_index", 2, 8),
    ("_type", 2, 7),
    ("_id", 2, 8),
    ("routing", 2, 8),
    ("pipeline", 5, 8),
    ("version", 2, 8),
    ("version_type", 2, 8),
    ("if_seq_no", 7, 8),
    ("if_primary_term", 7, 8),
    ("require_alias", 7, 8),
    ("dynamic_templates", 8, 8),
];

fn bulk(version: u8, st: &mut State, body: &[u8], default_index: Option<String>) -> Answer {
    if body.is_empty() {
        return error(400, "action_request_validation_exception", "Validation Failed: 1: no requests added;");
    }
    if !body.ends_with(b"\n") {
        return error(400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]");
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return error(400, "parse_exception", "the body is not UTF-8");
    };
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    let mut items = Vec::new();
    let mut errors = false;
    let mut i = 0;
    let meta_keys: Vec<&str> =
        META_KEYS.iter().filter(|(_, from, to)| (*from..=*to).contains(&version)).map(|(k, _, _)| *k).collect();
    while i < lines.len() {
        let line_no = i + 1;
        let Ok(Value::Object(action)) = serde_json::from_str::<Value>(lines[i]) else {
            return error(
                400,
                "illegal_argument_exception",
                format!("Malformed action/metadata line [{line_no}], expected START_OBJECT"),
            );
        };
        let Some((op, meta)) = action.iter().next().filter(|_| action.len() == 1) else {
            return error(
                400,
                "illegal_argument_exception",
                format!("Malformed action/metadata line [{line_no}], expected one action"),
            );
        };
        if !["index", "create"].contains(&op.as_str()) {
            return error(
                400,
                "illegal_argument_exception",
                format!("the fake takes index and create actions only, not [{op}]"),
            );
        }
        let Some(meta) = meta.as_object() else {
            return error(400, "illegal_argument_exception", format!("Malformed action/metadata line [{line_no}]"));
        };
        if let Some(k) = meta.keys().find(|k| !meta_keys.contains(&k.as_str())) {
            return error(
                400,
                "illegal_argument_exception",
                format!("Action/metadata line [{line_no}] contains an unknown parameter [{k}]"),
            );
        }
        let Some(source_line) = lines.get(i + 1) else {
            return error(
                400,
                "illegal_argument_exception",
                format!("the action on line [{line_no}] has no source line"),
            );
        };
        i += 2;
        let index = meta.get("_index").and_then(Value::as_str).map(str::to_owned).or(default_index.clone());
        let Some(index) = index else {
            return error(400, "action_request_validation_exception", "Validation Failed: 1: index is missing;");
        };
        let type_ = match (version, meta.get("_type").and_then(Value::as_str)) {
            (..=6, Some(t)) => t.to_owned(),
            (..=6, None) => {
                return error(400, "action_request_validation_exception", "Validation Failed: 1: type is missing;");
            }
            _ => "_doc".to_owned(),
        };
        let mut id = meta.get("_id").and_then(Value::as_str).map(str::to_owned);
        let result = if st.busy_items > 0 {
            st.busy_items -= 1;
            Err((429, "es_rejected_execution_exception", "rejected execution of coordinating operation".to_owned()))
        } else {
            match serde_json::from_str::<Value>(source_line) {
                Ok(Value::Object(source)) => store(version, st, &index, &type_, &mut id, source),
                _ => Err((
                    400,
                    "mapper_parsing_exception",
                    "failed to parse: the source is not a JSON object".to_owned(),
                )),
            }
        };
        let id = id.unwrap_or_default();
        let mut item = json!({"_index": index, "_id": id});
        if version <= 7 {
            item["_type"] = json!(type_);
        }
        match result {
            Ok((status, result, v)) => {
                item["status"] = json!(status);
                item["result"] = json!(result);
                item["_version"] = json!(v);
            }
            Err((status, type_, reason)) => {
                errors = true;
                *st.refused.entry(type_.to_owned()).or_default() += 1;
                item["status"] = json!(status);
                item["error"] = json!({"type": type_, "reason": reason});
            }
        }
        items.push(json!({ op.as_str(): item }));
    }
    (200, json!({"took": 1, "errors": errors, "items": items}))
}

type ItemResult = Result<(u16, &'static str, u64), (u16, &'static str, String)>;

fn store(
    version: u8,
    st: &mut State,
    index: &str,
    type_: &str,
    id: &mut Option<String>,
    source: Map<String, Value>,
) -> ItemResult {
    if !st.indices.contains_key(index) {
        let made = new_index(version, st, index);
        st.indices.insert(index.to_owned(), made);
    }
    let ix = st.indices.get_mut(index).unwrap();
    if version == 6 && !ix.mappings.is_empty() && !ix.mappings.contains_key(type_) {
        return Err((
            400,
            "illegal_argument_exception",
            format!(
                "Rejecting mapping update to [{index}] as the final mapping would have more than 1 type: [{}, {type_}]",
                ix.mappings.keys().next().unwrap()
            ),
        ));
    }
    let mapping = ix.mappings.entry(type_.to_owned()).or_insert_with(|| json!({"properties": {}}));
    let mut props = mapping["properties"].as_object().cloned().unwrap_or_default();
    check_object(version, &mut props, &source, "").map_err(|r| (400, "mapper_parsing_exception", r))?;
    mapping["properties"] = Value::Object(props);
    let id = id.get_or_insert_with(|| {
        st.auto_id += 1;
        format!("auto-{}", st.auto_id)
    });
    let ix = st.indices.get_mut(index).unwrap();
    let version_n = ix.docs.get(id.as_str()).map_or(1, |d| d.version + 1);
    ix.docs.insert(
        id.clone(),
        Doc {
            index: index.to_owned(),
            type_: type_.to_owned(),
            id: id.clone(),
            source: Value::Object(source),
            version: version_n,
        },
    );
    Ok(if version_n == 1 { (201, "created", 1) } else { (200, "updated", version_n) })
}

fn is_date(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_i64(),
        Value::String(s) => {
            chrono::DateTime::parse_from_rfc3339(s).is_ok() || chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
        }
        _ => false,
    }
}

/// Checks `doc` against `props`, adding what dynamic mapping would for fields not mapped yet.
fn check_object(version: u8, props: &mut Map<String, Value>, doc: &Map<String, Value>, at: &str) -> Result<(), String> {
    for (name, value) in doc {
        let path = if at.is_empty() { name.clone() } else { format!("{at}.{name}") };
        if value.is_null() {
            continue;
        }
        let Some(field) = props.get_mut(name) else {
            props.insert(name.clone(), dynamic(version, value));
            if let (Value::Object(inner), Some(Value::Object(p))) =
                (value, props.get_mut(name).and_then(|f| f.get_mut("properties")))
            {
                check_object(version, p, inner, &path)?;
            }
            continue;
        };
        let t = field.get("type").and_then(Value::as_str).unwrap_or("object").to_owned();
        let ok = match t.as_str() {
            "object" => {
                let Value::Object(inner) = value else {
                    return Err(format!(
                        "object mapping for [{path}] tried to parse field [{name}] as object, but found a concrete value"
                    ));
                };
                let p = field.as_object_mut().unwrap().entry("properties").or_insert_with(|| json!({}));
                check_object(version, p.as_object_mut().unwrap(), inner, &path)?;
                true
            }
            "double" | "float" => value.is_number(),
            "long" | "integer" => value.is_i64() || value.is_u64(),
            "date" => is_date(value),
            "boolean" => value.is_boolean(),
            _ => value.is_string(),
        };
        if !ok {
            return Err(format!("failed to parse field [{path}] of type [{t}]: {value}"));
        }
    }
    Ok(())
}

/// What dynamic mapping makes of a field on first sight (date detection on, as by default).
fn dynamic(version: u8, v: &Value) -> Value {
    match v {
        Value::Object(_) => json!({"properties": {}}),
        Value::Bool(_) => json!({"type": "boolean"}),
        Value::Number(n) if n.is_f64() => json!({"type": "float"}),
        Value::Number(_) => json!({"type": "long"}),
        Value::String(_) if is_date(v) => json!({"type": "date"}),
        _ if version <= 2 => json!({"type": "string"}),
        _ => json!({"type": "text", "fields": {"keyword": {"type": "keyword"}}}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Status and JSON answer of one request with a content type.
    async fn send(fake: &ElasticsearchFake, method: &str, path: &str, ct: &str, body: &str) -> (u16, Value) {
        let client = heapster_net::client_builder(std::time::Duration::from_secs(10)).build().unwrap();
        let r = client
            .request(method.parse().unwrap(), format!("{}{path}", fake.url()))
            .header("content-type", ct)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or_default())
    }

    const ND: &str = "application/x-ndjson";
    const JS: &str = "application/json";

    #[tokio::test]
    async fn the_fake_refuses_what_elasticsearch_refuses() {
        let v7 = ElasticsearchFake::start(7, None);
        let doc = "{\"index\":{\"_index\":\"i\"}}\n{\"a\":1}\n";
        assert_eq!(send(&v7, "POST", "/_bulk", ND, doc).await.0, 200);
        // No trailing newline, the wrong content type, a parameter the spec does not declare, a wrong method.
        assert_eq!(send(&v7, "POST", "/_bulk", ND, doc.trim_end()).await.0, 400);
        assert_eq!(send(&v7, "POST", "/_bulk", JS, doc).await.0, 406);
        assert_eq!(send(&v7, "POST", "/_bulk?refresh_interval=1", ND, doc).await.0, 400);
        assert_eq!(send(&v7, "GET", "/_bulk", ND, doc).await.0, 405);
        // 7 has no `string`; 6 wants exactly one type; 5 has no index_patterns; 8 has no `_type`.
        let string = r#"{"index_patterns":["x-*"],"mappings":{"properties":{"f":{"type":"string"}}}}"#;
        assert_eq!(send(&v7, "PUT", "/_template/x", JS, string).await.0, 400);
        let v6 = ElasticsearchFake::start(6, None);
        let two = r#"{"index_patterns":["x-*"],"mappings":{"a":{"properties":{}},"b":{"properties":{}}}}"#;
        assert_eq!(send(&v6, "PUT", "/_template/x", JS, two).await.0, 400);
        let v5 = ElasticsearchFake::start(5, None);
        assert_eq!(send(&v5, "PUT", "/_template/x", JS, r#"{"index_patterns":["x-*"]}"#).await.0, 400);
        let v8 = ElasticsearchFake::start(8, None);
        let typed = "{\"index\":{\"_index\":\"i\",\"_type\":\"t\"}}\n{\"a\":1}\n";
        assert_eq!(send(&v8, "POST", "/_bulk", ND, typed).await.0, 400);
    }

    #[tokio::test]
    async fn documents_are_held_to_the_mapping_and_the_same_id_replaces() {
        let fake = ElasticsearchFake::start(7, None);
        let t = r#"{"index_patterns":["m-*"],"mappings":{"properties":{"v":{"type":"double"},"t":{"type":"date"}}},"aliases":{"m":{}}}"#;
        assert_eq!(send(&fake, "PUT", "/_template/m", JS, t).await.0, 200);
        let body = concat!(
            "{\"index\":{\"_index\":\"m-1\",\"_id\":\"a\"}}\n{\"v\":1.5,\"t\":\"2026-12-03T10:00:00Z\",\"n\":2}\n",
            "{\"index\":{\"_index\":\"m-1\",\"_id\":\"b\"}}\n{\"v\":\"x\"}\n",
            "{\"index\":{\"_index\":\"m-1\",\"_id\":\"c\"}}\n{\"t\":\"yesterday\"}\n",
            "{\"index\":{\"_index\":\"m-1\",\"_id\":\"d\"}}\n{\"n\":\"now a string\"}\n",
            "{\"index\":{\"_index\":\"m-1\",\"_id\":\"a\"}}\n{\"v\":2}\n",
        );
        let (status, answer) = send(&fake, "POST", "/_bulk", ND, body).await;
        assert_eq!(status, 200);
        assert_eq!(answer["errors"], true);
        let statuses: Vec<u64> =
            answer["items"].as_array().unwrap().iter().map(|i| i["index"]["status"].as_u64().unwrap()).collect();
        assert_eq!(statuses, [201, 400, 400, 400, 200]);
        assert_eq!(fake.refused(), [("mapper_parsing_exception".to_owned(), 3)].into());
        let docs = fake.docs("m");
        assert_eq!(docs.len(), 1);
        assert_eq!((docs[0].version, &docs[0].source), (2, &json!({"v": 2})));
        fake.busy_items(1);
        let (_, answer) = send(&fake, "POST", "/_bulk", ND, "{\"index\":{\"_index\":\"m-1\"}}\n{}\n").await;
        assert_eq!(answer["items"][0]["index"]["error"]["type"], "es_rejected_execution_exception");
        let secured = ElasticsearchFake::start(8, Some(("u", "p")));
        assert_eq!(send(&secured, "GET", "/", JS, "").await.0, 401);
    }
}
