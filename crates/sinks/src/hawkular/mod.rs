//! `--sink=hawkular:<URL>?tenant=&labelToTenant=&filter=...`: batches to Hawkular Metrics' REST API
//! (`/hawkular/metrics` unless the URL has a path): data by `POST /gauges/raw` and `/counters/raw` per tenant
//! (`Hawkular-Tenant`), at most `batchSize` metrics a request and `concurrencyLimit` requests at once, and each
//! catalog metric's definition tags by `PUT /<type>s/<id>/tags` when they are new or changed (see [`encoder`]).
//!
//! Heapster logged every failure and moved on. Here a write that is refused (4xx) is counted by Hawkular's
//! `errorMsg` and not retried; a server that is down or answers 5xx keeps the batch queued, and the retry sends
//! only the requests not yet taken. Tag updates that fail are tried again at the next export, as in Heapster.

pub mod config;
pub mod encoder;
#[cfg(test)]
mod tests;

pub use config::HawkularConfig;

use crate::self_metrics::SinkCounters;
use crate::util::http::{Answer, ClientSettings, HttpClient, Verdict};
use crate::util::json_batch::{self, Delivered, JsonArrays, Posted, Refusals, batch_identity};
use crate::{ConfigError, DataSink, SinkError, SinkKind, SinkMetrics};
use async_trait::async_trait;
use config::Auth;
use encoder::{Definition, Kind};
use heapster_model::{DataBatch, KindDoc, SpecUri};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub const KIND: SinkKind = SinkKind {
    doc: KindDoc {
        key: "hawkular",
        aliases: &[],
        usage: "hawkular:http://HOST:8080[/path]?opts",
        summary: "Hawkular Metrics: gauges and counters per tenant, Heapster's ids (machine/<node>/cpu/usage) and definition tags.",
        options: config::OPTIONS,
    },
    build: |uri, metrics| Ok(Arc::new(HawkularSink::new(uri, metrics)?)),
    historical: None,
};

/// Definitions not seen for this many exports are forgotten, so a series that comes back gets its tags again
/// (Heapster's cacheAge), and the cache does not grow with every pod ever seen.
const CACHE_AGE: u64 = 2;

/// What the sink knows the server has of one definition.
enum Known {
    /// The tags of the definition with this fingerprint, sent by this sink.
    Fingerprint(u64),
    /// The tags read from the server at start (pre-cache), compared once with the tags the sink would send.
    Tags(BTreeMap<String, String>),
}

/// One tenant's definitions by id: what the server has, and the export that last saw it.
type TenantCache = HashMap<String, (Known, u64)>;

/// One definition whose tags are to be sent.
struct TagUpdate {
    tenant: String,
    kind: Kind,
    id: String,
    tags: BTreeMap<String, String>,
    fingerprint: u64,
}

struct Inner {
    config: HawkularConfig,
    http: HttpClient,
    server: String,
    delivered: Delivered,
    /// tenant -> id -> (what the server has, export that last saw it).
    cache: Mutex<HashMap<String, TenantCache>>,
    run: AtomicU64,
    pre_cached: AtomicBool,
}

pub struct HawkularSink {
    inner: Arc<Inner>,
    name: String,
}

impl HawkularSink {
    /// Contacts no server.
    pub fn new(uri: &SpecUri, metrics: &SinkMetrics) -> Result<Self, ConfigError> {
        let config = HawkularConfig::from_uri(uri)?;
        let name = config.name();
        let counters = metrics.for_kind(KIND.doc.key).sink(&name);
        let settings = ClientSettings {
            timeout: config.timeout,
            insecure: config.insecure,
            ca_file: config.ca_cert.clone(),
            trust_hint: "caCert=",
            insecure_hint: "insecure=true",
        };
        let server = format!("Hawkular Metrics at {}", config.base);
        let http = HttpClient::new(settings, counters, server.clone())
            .map_err(|e| ConfigError::new("--sink", uri, config::OPTIONS, e))?;
        let pre_cached = AtomicBool::new(!config.pre_cache);
        let inner = Inner {
            config,
            http,
            server,
            delivered: Delivered::default(),
            cache: Mutex::default(),
            run: AtomicU64::new(0),
            pre_cached,
        };
        Ok(HawkularSink { inner: Arc::new(inner), name })
    }
}

/// Hawkular's `{"errorMsg":".."}` as a bounded cause: the words before the first `:`, lower case.
fn cause_of(answer: &Answer) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(&answer.text).ok()?;
    let msg = v.get("errorMsg")?.as_str()?;
    Some(msg.split(':').next().unwrap_or(msg).trim().chars().take(60).collect::<String>().to_lowercase())
}

fn judge(a: &Answer) -> Option<Verdict> {
    (a.status.is_client_error() && !matches!(a.status.as_u16(), 401 | 403 | 408 | 429))
        .then(|| cause_of(a))
        .flatten()
        .map(|c| Verdict::Reject { cause: c.into() })
}

impl Inner {
    fn counters(&self) -> &SinkCounters {
        self.http.counters()
    }

    /// A request to `path` under the base URL for `tenant`, with the credentials (a service account token is read
    /// at each request: they are rotated).
    fn request(&self, method: reqwest::Method, path: &str, tenant: &str) -> Result<reqwest::RequestBuilder, SinkError> {
        let url = format!("{}/{path}", self.config.base);
        let r = self
            .http
            .client()
            .request(method, url)
            .header("Hawkular-Tenant", tenant)
            .header("Content-Type", "application/json");
        Ok(match &self.config.auth {
            Auth::None => r,
            Auth::Basic { user, pass } => r.basic_auth(user, Some(pass)),
            Auth::TokenFile(path) => {
                let token = std::fs::read_to_string(path)
                    .map_err(|e| SinkError::Retry(format!("cannot read the token file {}: {e}", path.display())))?;
                r.bearer_auth(token.trim())
            }
        })
    }

    /// Reads the default tenant's definitions once, so that a restart does not send every definition's tags
    /// again. Failing is not an error: the tags are then sent as for new metrics.
    async fn pre_cache(&self) {
        if self.pre_cached.load(Ordering::Relaxed) {
            return;
        }
        let Ok(request) = self.request(reqwest::Method::GET, "metrics", &self.config.tenant) else { return };
        let answer = match self.http.send(request, |_| None).await {
            Ok((Verdict::Accepted, a)) => a,
            Ok((_, a)) => {
                return tracing::warn!(
                    "{}: definitions not read: {} {}",
                    self.server,
                    a.status,
                    json_batch::short(&a.text)
                );
            }
            Err(e) => return tracing::warn!("definitions not read: {e}"),
        };
        // 204: no definitions yet.
        let defs: Vec<serde_json::Value> = serde_json::from_str(&answer.text).unwrap_or_default();
        let run = self.run.load(Ordering::Relaxed);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        for d in defs {
            if !matches!(d["type"].as_str(), Some("counter" | "gauge")) {
                continue;
            }
            let Some(id) = d["id"].as_str() else { continue };
            let tags = d["tags"]
                .as_object()
                .map(|t| t.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
                .unwrap_or_default();
            cache.entry(self.config.tenant.clone()).or_default().insert(id.to_owned(), (Known::Tags(tags), run));
        }
        self.pre_cached.store(true, Ordering::Relaxed);
    }

    /// Sends the tags of the definitions the server does not have as they are; returns how many failed.
    async fn update_tags(self: &Arc<Self>, definitions: Vec<Definition<'_>>) -> usize {
        let run = self.run.load(Ordering::Relaxed);
        let todo: Vec<TagUpdate> = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            let mut todo = Vec::new();
            for d in definitions {
                let known = cache.get_mut(d.tenant).and_then(|t| t.get_mut(&d.id));
                let tags = match known {
                    Some((Known::Fingerprint(f), seen)) if *f == d.fingerprint => {
                        *seen = run;
                        continue;
                    }
                    Some((known, seen)) => {
                        let tags = d.tags(&self.config);
                        if matches!(known, Known::Tags(t) if *t == tags) {
                            (*known, *seen) = (Known::Fingerprint(d.fingerprint), run);
                            continue;
                        }
                        tags
                    }
                    None => d.tags(&self.config),
                };
                let fingerprint = d.fingerprint;
                todo.push(TagUpdate { tenant: d.tenant.to_owned(), kind: d.kind, id: d.id, tags, fingerprint });
            }
            todo
        };
        let results = self
            .clone()
            .limited(todo, move |inner, u| async move {
                let path = format!("{}/{}/tags", u.kind.path(), urlencode(&u.id));
                let request = inner.request(reqwest::Method::PUT, &path, &u.tenant)?;
                let body = serde_json::to_string(&u.tags).expect("strings serialise");
                match inner.http.send(request.body(body), judge).await? {
                    (Verdict::Accepted, _) => {
                        let mut cache = inner.cache.lock().unwrap_or_else(|e| e.into_inner());
                        cache.entry(u.tenant).or_default().insert(u.id, (Known::Fingerprint(u.fingerprint), run));
                        Ok(())
                    }
                    (_, a) => Err(SinkError::Reject(format!("{} {}", a.status, json_batch::short(&a.text)))),
                }
            })
            .await;
        let failed: Vec<SinkError> = results.into_iter().filter_map(Result::err).collect();
        if let Some(e) = failed.first() {
            tracing::warn!(
                "{}: tags of {} definitions not updated (tried again next time): {e}",
                self.server,
                failed.len()
            );
        }
        failed.len()
    }

    /// Runs `f` on every item, at most `concurrencyLimit` at once.
    async fn limited<T, F, Fut>(self: Arc<Self>, items: Vec<T>, f: F) -> Vec<Result<(), SinkError>>
    where
        T: Send + 'static,
        F: Fn(Arc<Self>, T) -> Fut,
        Fut: std::future::Future<Output = Result<(), SinkError>> + Send + 'static,
    {
        let mut set = tokio::task::JoinSet::new();
        let mut results = Vec::with_capacity(items.len());
        for item in items {
            if set.len() >= self.config.concurrency
                && let Some(r) = set.join_next().await
            {
                results.push(r.unwrap_or_else(|e| Err(SinkError::Retry(format!("a request task failed: {e}")))));
            }
            set.spawn(f(self.clone(), item));
        }
        while let Some(r) = set.join_next().await {
            results.push(r.unwrap_or_else(|e| Err(SinkError::Retry(format!("a request task failed: {e}")))));
        }
        results
    }
}

/// A metric id as one path segment (ids hold `/`).
fn urlencode(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>().replace('+', "%20")
}

#[async_trait]
impl DataSink for HawkularSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError> {
        let inner = &self.inner;
        let run = inner.run.fetch_add(1, Ordering::Relaxed) + 1;
        let encoded = encoder::encode(&batch, &inner.config);
        let counters = inner.counters();
        if encoded.unrepresentable > 0 {
            counters.dropped("not a finite number", encoded.unrepresentable as u64);
        }
        if encoded.filtered > 0 {
            counters.dropped("filter=", encoded.filtered as u64);
        }
        let ts = batch.timestamp.to_string();
        let progress = inner
            .delivered
            .begin(batch_identity(std::iter::once(ts.as_str()).chain(batch.sets.keys().map(String::as_str))));
        let max = if inner.config.batch_size == 0 { usize::MAX } else { inner.config.batch_size };
        let mut bodies = Vec::new();
        for ((tenant, kind), items) in encoded.data {
            let mut arrays = JsonArrays::new(max, usize::MAX, "[", "]");
            for (id, json) in items {
                arrays.push(id, &json);
            }
            for body in arrays.finish() {
                let key = format!("{tenant}\u{0}{}\u{0}{}\u{0}{}", kind.path(), body.keys[0], body.items);
                if !progress.done(&key) {
                    bodies.push((key, tenant.clone(), kind, body));
                }
            }
        }
        let refusals = Arc::new(Mutex::new(Refusals::default()));
        let done = Arc::new(Mutex::new(Vec::new()));
        let (r, d) = (refusals.clone(), done.clone());
        let results = inner
            .clone()
            .limited(bodies, move |inner, (key, tenant, kind, body)| {
                let (refusals, done) = (r.clone(), d.clone());
                async move {
                    let n = body.items as u64;
                    let request = inner.request(reqwest::Method::POST, &format!("{}/raw", kind.path()), &tenant)?;
                    match json_batch::post(&inner.http, request.body(body.text), &inner.server, judge).await? {
                        Posted::Accepted(_) => inner.counters().written(n),
                        Posted::Refused { cause, answer } => {
                            inner.counters().rejected(&cause, n);
                            let why = format!("{}: {}", answer.status, answer.text);
                            refusals.lock().unwrap_or_else(|e| e.into_inner()).add(&cause, n, &why);
                        }
                    }
                    done.lock().unwrap_or_else(|e| e.into_inner()).push(key);
                    Ok(())
                }
            })
            .await;
        progress.mark(std::mem::take(&mut *done.lock().unwrap_or_else(|e| e.into_inner())));
        for ids in inner.cache.lock().unwrap_or_else(|e| e.into_inner()).values_mut() {
            ids.retain(|_, (_, seen)| *seen + CACHE_AGE > run);
        }
        if let Some(e) = results.into_iter().find_map(Result::err) {
            return Err(e);
        }
        // After the data: a server that is down costs one failed request per body, not one per definition.
        inner.pre_cache().await;
        inner.update_tags(encoded.definitions).await;
        let refusals = std::mem::take(&mut *refusals.lock().unwrap_or_else(|e| e.into_inner()));
        refusals.into_result(&inner.server)
    }
}
