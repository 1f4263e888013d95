//! What the Google sinks (`gcm`/`stackdriver` for metrics, `gcl` for events) share: credentials ([`auth`]), the
//! metadata server ([`metadata`]), which project, location and cluster they write for, their common options, and
//! the reading of Google's error documents (`{"error": {"code", "message", "status", "details"}}`) into a verdict
//! and one line that says what to do.
//!
//! The project comes as in Heapster (`common/gce/gce.go`): the `project=` option, else `GOOGLE_PROJECT_ID`, else
//! the key file's `project_id`, else the metadata server. The cluster's location and name come from the options,
//! else the metadata server's `cluster-location`/`cluster-name` attributes (set on GKE nodes), else the zone.

pub mod auth;
pub mod metadata;

use crate::SinkError;
use crate::self_metrics::SinkCounters;
use crate::util::http::{Answer, ClientSettings, HttpClient, Verdict};
use auth::{Provider, ServiceAccountKey, Tokens};
use heapster_model::{ConfigError, OptionSpec, Options};
use metadata::{Metadata, MetadataError};
use std::path::PathBuf;
use std::time::Duration;

/// `project=`: shared by every Google sink.
pub const PROJECT: OptionSpec = OptionSpec::new(
    "project",
    "",
    "Google Cloud project; else $GOOGLE_PROJECT_ID, the key file's project_id, the metadata server",
);
/// `cluster_name=`: the `cluster_name` label of the k8s_* monitored resources.
pub const CLUSTER_NAME: OptionSpec =
    OptionSpec::new("cluster_name", "", "cluster name of the k8s_* resources; else the metadata server's cluster-name");
/// `cluster_location=`: the `location` label of the k8s_* monitored resources.
pub const CLUSTER_LOCATION: OptionSpec = OptionSpec::new(
    "cluster_location",
    "",
    "cluster location (region or zone) of the k8s_* resources; else the metadata server's cluster-location, else \
     its zone",
);
/// `zone=`: Heapster's older spelling of the location.
pub const ZONE: OptionSpec = OptionSpec::new("zone", "", "the same as cluster_location (Heapster's older option)");
/// `timeout=`: every request's deadline.
pub const TIMEOUT: OptionSpec = OptionSpec::new("timeout", "10s", "deadline of each request");

/// What the process environment says about Google credentials, read once at start-up (tests build their own).
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `GOOGLE_APPLICATION_CREDENTIALS`: a service-account key file.
    pub credentials_file: Option<PathBuf>,
    /// `GOOGLE_PROJECT_ID`.
    pub project_id: Option<String>,
    /// `GCE_METADATA_HOST` (`host:port`), else `metadata.google.internal`.
    pub metadata_host: Option<String>,
}

impl Env {
    pub fn from_process() -> Env {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        Env {
            credentials_file: var("GOOGLE_APPLICATION_CREDENTIALS").map(PathBuf::from),
            project_id: var("GOOGLE_PROJECT_ID"),
            metadata_host: var("GCE_METADATA_HOST"),
        }
    }
}

/// Where one sink writes: a project, and for the k8s_* resources the cluster's location and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub project: String,
    /// Empty for a sink that writes no k8s_* resource (`gcm`).
    pub location: String,
    pub cluster_name: String,
}

/// One Google API as one sink sees it: the HTTP client and its counters, tokens, the identity (resolved at the
/// first export when the metadata server must be asked), and the service's name for messages.
pub struct GoogleApi {
    http: HttpClient,
    tokens: Tokens,
    metadata: Metadata,
    /// `Cloud Monitoring`, `Cloud Logging`.
    service: &'static str,
    /// The IAM role a 403 needs, for its message.
    role: &'static str,
    project: Option<String>,
    location: Option<String>,
    cluster_name: Option<String>,
    needs_cluster: bool,
    identity: tokio::sync::OnceCell<Identity>,
}

/// What [`GoogleApi::new`] needs besides the options.
pub struct ApiSpec {
    pub service: &'static str,
    pub scope: &'static str,
    pub role: &'static str,
    /// Whether the sink writes k8s_* resources and so needs a location and a cluster name.
    pub needs_cluster: bool,
}

impl GoogleApi {
    /// Reads the shared options ([`PROJECT`], [`CLUSTER_NAME`], [`CLUSTER_LOCATION`], [`ZONE`], [`TIMEOUT`]) and
    /// the key file. Contacts no server: what only the metadata server can say is asked at the first export.
    pub fn new(
        o: &Options,
        env: &Env,
        spec: ApiSpec,
        counters: SinkCounters,
        server: String,
    ) -> Result<Self, ConfigError> {
        let timeout = o.duration(TIMEOUT.name, Duration::from_secs(10))?;
        let settings = ClientSettings {
            timeout,
            insecure: false,
            ca_file: None,
            trust_hint: "the system's CA certificates",
            insecure_hint: "nothing (TLS to Google is always checked)",
        };
        let http = HttpClient::new(settings, counters, server).map_err(|e| o.error(e))?;
        let host = env.metadata_host.as_deref().unwrap_or(metadata::DEFAULT_HOST);
        let metadata = Metadata::new(host).map_err(|e| o.error(e))?;
        let provider = match &env.credentials_file {
            Some(path) => {
                let json = std::fs::read(path).map_err(|e| {
                    o.error(format!(
                        "GOOGLE_APPLICATION_CREDENTIALS={}: cannot read it ({e}); point it at a service-account key \
                         file, or unset it to use the metadata server's service account",
                        path.display()
                    ))
                })?;
                let key = ServiceAccountKey::from_json(&json)
                    .map_err(|e| o.error(format!("GOOGLE_APPLICATION_CREDENTIALS={} {e}", path.display())))?;
                Provider::Key(Box::new(key))
            }
            None => Provider::Metadata(metadata.clone()),
        };
        let key_project = match &provider {
            Provider::Key(k) => k.project_id.clone(),
            Provider::Metadata(_) => None,
        };
        let project = o.non_empty(PROJECT.name).map(str::to_owned).or_else(|| env.project_id.clone()).or(key_project);
        if let Some(p) = project.as_ref().filter(|p| !valid_project(p)) {
            return Err(o.error(format!(
                "project {p:?} is not a project ID (6-30 lower-case letters, digits and hyphens, starting with a \
                 letter): use the ID, not the project's display name or number"
            )));
        }
        // Only a sink that writes k8s_* resources declares the cluster's options.
        let cluster_option = |names: &[&str]| {
            names.iter().filter(|_| spec.needs_cluster).find_map(|n| o.non_empty(n)).map(str::to_owned)
        };
        let location = cluster_option(&[CLUSTER_LOCATION.name, ZONE.name]);
        let cluster_name = cluster_option(&[CLUSTER_NAME.name]);
        let tokens = Tokens::new(provider, spec.scope, http.client().clone());
        Ok(GoogleApi {
            http,
            tokens,
            metadata,
            service: spec.service,
            role: spec.role,
            project,
            location,
            cluster_name,
            needs_cluster: spec.needs_cluster,
            identity: tokio::sync::OnceCell::new(),
        })
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The project given at start-up (option, environment, key file), if any.
    pub fn configured_project(&self) -> Option<&str> {
        self.project.as_deref()
    }

    /// A bearer token valid for a while yet (cached, or fetched now).
    pub async fn token(&self) -> Result<std::sync::Arc<str>, SinkError> {
        self.tokens.token().await
    }

    /// Where this sink writes; what the options did not say is asked from the metadata server, once.
    pub async fn identity(&self) -> Result<&Identity, SinkError> {
        self.identity.get_or_try_init(|| self.resolve()).await
    }

    async fn resolve(&self) -> Result<Identity, SinkError> {
        let project = match &self.project {
            Some(p) => p.clone(),
            None => self.ask_metadata("project/project-id", "no project", "set project= or GOOGLE_PROJECT_ID").await?,
        };
        let (mut location, mut cluster_name) = (String::new(), String::new());
        if self.needs_cluster {
            location = match &self.location {
                Some(l) => l.clone(),
                None => match self.metadata.value("instance/attributes/cluster-location").await {
                    Ok(Some(l)) => l,
                    Ok(None) => match self.metadata.zone().await {
                        Ok(Some(z)) => z,
                        other => return Err(self.unresolved("no cluster location", "set cluster_location=", other)),
                    },
                    Err(e) => return Err(self.unresolved("no cluster location", "set cluster_location=", Err(e))),
                },
            };
            cluster_name = match &self.cluster_name {
                Some(c) => c.clone(),
                None => {
                    self.ask_metadata("instance/attributes/cluster-name", "no cluster name", "set cluster_name=")
                        .await?
                }
            };
        }
        tracing::info!(service = self.service, project, location, cluster_name, "writing to Google Cloud");
        Ok(Identity { project, location, cluster_name })
    }

    async fn ask_metadata(&self, path: &str, what: &str, fix: &str) -> Result<String, SinkError> {
        match self.metadata.value(path).await {
            Ok(Some(v)) => Ok(v),
            other => Err(self.unresolved(what, fix, other)),
        }
    }

    /// One line for what the options did not say and the metadata server could not: a retry when the server did
    /// not answer (a GKE node's may come up after heapster), a rejection when it answered without the value.
    fn unresolved(&self, what: &str, fix: &str, got: Result<Option<String>, MetadataError>) -> SinkError {
        match got {
            Err(MetadataError::Unreachable(why)) => SinkError::Retry(format!(
                "{} sink: {what}: {fix} ({why}: outside Google Cloud the options must say it)",
                self.service
            )),
            Err(MetadataError::Failed(why)) => SinkError::Retry(format!("{} sink: {what}: {why}", self.service)),
            Ok(_) => SinkError::Reject(format!(
                "{} sink: {what}: {fix} (the metadata server at {} does not know it)",
                self.service,
                self.metadata.address()
            )),
        }
    }

    /// POSTs a JSON document with a bearer token. A 401 (a token revoked, or a clock off) drops the cached token
    /// and tries once more with a new one.
    pub async fn post_json(&self, url: &str, body: &[u8]) -> Result<(Verdict, Answer), SinkError> {
        for attempt in 0..2 {
            let token = self.tokens.token().await?;
            let request = self
                .http
                .client()
                .post(url)
                .bearer_auth(&*token)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_vec());
            let (verdict, answer) = self.http.send(request, judge).await?;
            if answer.status == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
                self.tokens.forget().await;
                continue;
            }
            return Ok((verdict, answer));
        }
        unreachable!("the loop returns on its second pass")
    }

    /// The one line for an answer that is not a success: the service's status and message, and for the errors a
    /// user fixes (403, 404, 401) what to do.
    pub fn describe(&self, answer: &Answer, project: &str) -> String {
        let e = GoogleError::parse(&answer.text);
        let said = match &e {
            Some(e) => format!("{} {}: {}", answer.status.as_u16(), e.status, e.message),
            None => format!("{}: {}", answer.status, answer.text.trim().chars().take(200).collect::<String>()),
        };
        let fix = match answer.status.as_u16() {
            403 => format!(
                "; grant the service account {} in project {project} and enable the {} API there, or give a GCE/GKE \
                 node the scope {}",
                self.role,
                self.service,
                self.tokens.scope()
            ),
            404 => format!("; check project={project} (the project ID) and endpoint="),
            401 => match self.tokens.provider() {
                Provider::Key(k) => format!("; the key of {} was refused: create a new key", k.client_email),
                Provider::Metadata(_) => "; the metadata server's token was refused".to_owned(),
            },
            _ => String::new(),
        };
        format!("{} answered {said}{fix}", self.service).replace('\n', " ")
    }
}

/// Google's error document.
#[derive(Debug, Clone, PartialEq)]
pub struct GoogleError {
    pub code: u16,
    /// `INVALID_ARGUMENT`, `PERMISSION_DENIED`, ...
    pub status: String,
    pub message: String,
    /// `details[]`, each with its `@type`.
    pub details: Vec<serde_json::Value>,
}

impl GoogleError {
    pub fn parse(text: &str) -> Option<GoogleError> {
        let doc: serde_json::Value = serde_json::from_str(text).ok()?;
        let e = doc.get("error")?;
        Some(GoogleError {
            code: e["code"].as_u64().unwrap_or(0) as u16,
            status: e["status"].as_str().unwrap_or("").to_owned(),
            message: e["message"].as_str().unwrap_or("").to_owned(),
            details: e["details"].as_array().cloned().unwrap_or_default(),
        })
    }

    /// The detail of type `google.xxx.Name` (`@type` is `type.googleapis.com/google.xxx.Name`).
    pub fn detail(&self, name: &str) -> Option<&serde_json::Value> {
        self.details.iter().find(|d| d["@type"].as_str().is_some_and(|t| t.rsplit('/').next() == Some(name)))
    }
}

/// Google's reading of an answer where it adds to the status: a 401 is a token to fetch again (worth a retry),
/// a 403 and a 404 are settings to fix (named by Google's status), a 409 `ALREADY_EXISTS` is no error for a
/// request that creates something once.
pub fn judge(answer: &Answer) -> Option<Verdict> {
    match answer.status.as_u16() {
        401 => Some(Verdict::Retry { cause: "unauthenticated".into() }),
        403 => Some(Verdict::Reject { cause: "permission_denied".into() }),
        404 => Some(Verdict::Reject { cause: "not_found".into() }),
        409 => Some(Verdict::Accepted),
        _ => None,
    }
}

/// The name of a google.rpc.Code, as `status` spells it, for the cause label of a partial failure.
pub fn rpc_code_name(code: i64) -> &'static str {
    match code {
        0 => "ok",
        1 => "cancelled",
        2 => "unknown",
        3 => "invalid_argument",
        4 => "deadline_exceeded",
        5 => "not_found",
        6 => "already_exists",
        7 => "permission_denied",
        8 => "resource_exhausted",
        9 => "failed_precondition",
        10 => "aborted",
        11 => "out_of_range",
        12 => "unimplemented",
        13 => "internal",
        14 => "unavailable",
        15 => "data_loss",
        16 => "unauthenticated",
        _ => "other",
    }
}

/// A project ID as Google allows them (6-30 characters); a display name or a number is the common mistake. The
/// `google.com:` domain prefix of old internal projects is allowed.
fn valid_project(p: &str) -> bool {
    let id = p.rsplit(':').next().unwrap_or(p);
    (6..=30).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.ends_with('-')
}

/// The Google sinks name no server before `?` (`gcm`, `stackdriver:?...`): the API's base URL is `endpoint=`.
pub fn no_target(o: &Options) -> Result<(), ConfigError> {
    let uri = o.uri();
    if uri.target.is_empty() {
        return Ok(());
    }
    Err(o.error(format!("{} takes no address (got {:?}): give the API's base URL as endpoint=", uri.key, uri.target)))
}

/// An `endpoint=` option: an http(s) base URL without a trailing slash.
pub fn endpoint(o: &Options, name: &str, default: &str) -> Result<String, ConfigError> {
    let raw = o.non_empty(name).unwrap_or(default);
    let url = url::Url::parse(raw).map_err(|e| o.error(format!("{name}={raw:?} is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(o.error(format!("{name}={raw:?}: expected https://host[:port] (the API's base URL)")));
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

/// RFC 3339 with milliseconds, UTC (`2026-12-03T10:00:00.000Z`), as the APIs take timestamps.
pub fn rfc3339_millis(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The wall clock in milliseconds since the epoch.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
pub(crate) mod fake_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_errors_and_their_details() {
        let text = r#"{"error":{"code":400,"message":"One or more TimeSeries could not be written","status":"INVALID_ARGUMENT",
            "details":[{"@type":"type.googleapis.com/google.monitoring.v3.CreateTimeSeriesSummary","totalPointCount":3}]}}"#;
        let e = GoogleError::parse(text).unwrap();
        assert_eq!((e.code, e.status.as_str()), (400, "INVALID_ARGUMENT"));
        assert_eq!(e.detail("google.monitoring.v3.CreateTimeSeriesSummary").unwrap()["totalPointCount"], 3);
        assert!(e.detail("google.rpc.BadRequest").is_none());
        assert!(GoogleError::parse("<html>").is_none());
    }

    #[test]
    fn project_ids() {
        for ok in ["my-project", "p-123456", "google.com:my-proj"] {
            assert!(valid_project(ok), "{ok}");
        }
        for bad in ["My Project", "12345678", "abc", "proj-", "a_b_c_d_e"] {
            assert!(!valid_project(bad), "{bad}");
        }
    }

    #[test]
    fn times_are_rfc3339_with_millis() {
        assert_eq!(rfc3339_millis(1_796_292_300_123), "2026-12-03T10:05:00.123Z");
    }
}
