//! Fetching `/stats/summary` from one kubelet, with every way it can go wrong named.
//!
//! Requests go through [`crate::http`] (a deadline per request, a byte limit on the body, a cause per failure, counted
//! per kubelet in `heapster_kubelet_scrape_errors{cause}`).
//!
//! Over https (`kubeletHttps=true`) the kubelet's certificate is checked against the roots in [`KubeletTls`] and
//! each request carries the bearer token the API server connection uses; a failed handshake is its own cause
//! (`tls`), with a line that says which option fixes it.

use super::summary::Summary;
use crate::http::{self, BodyBudget, FetchError, Transport};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why one kubelet gave no summary this round.
pub type ScrapeError = FetchError;

/// Which kubelet certificates are trusted over https.
#[derive(Debug, Clone, Default)]
pub enum KubeletTls {
    /// The host's trust store: when nothing better is known (no cluster CA, no `kubeletCAFile=`).
    #[default]
    SystemRoots,
    /// Only these certificates, DER (the cluster CA, or `kubeletCAFile=`): kubelets with serving certificates
    /// signed by the cluster are verified without trusting anything else.
    Roots(Vec<Vec<u8>>),
    /// Any certificate (`kubeletInsecureTLS=true`): for kubelets with self-signed certificates, as metrics-server's
    /// `--kubelet-insecure-tls`. The connection is encrypted but not authenticated.
    Insecure,
}

/// Settings shared by every kubelet request.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Deadline of one whole request, body included.
    pub timeout: Duration,
    /// Largest body read (`kubeletMaxBody=`). See [`DEFAULT_MAX_BODY`].
    pub max_body: usize,
    /// Bytes of bodies held at once across all targets of the source, beyond the first MiB of each
    /// (`kubeletBytesInFlight=`): see [`BodyBudget`].
    pub bytes_in_flight: usize,
    /// Bearer token (service account) sent with each request.
    pub token: Option<String>,
    /// A file holding the bearer token, re-read every minute: projected service-account tokens are rotated
    /// while heapster runs. Used when `token` is `None`.
    pub token_file: Option<PathBuf>,
    /// Trust for https kubelets; plain http ignores it.
    pub tls: KubeletTls,
    /// Keep each kubelet's connection open between rounds: a connection made and closed per scrape costs both
    /// sides, and over https a TLS handshake more. An idle plain-http connection is only its socket
    /// ([`crate::http::Transport`]); over https (reqwest) it holds hyper's buffer, grown to the size of a Summary.
    pub keep_alive: bool,
    /// How many kubelets may keep their connection (a descriptor each, for good); the rest reconnect each round.
    /// See [`kept_connection_budget`].
    pub max_kept: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: Duration::from_secs(10),
            max_body: DEFAULT_MAX_BODY,
            bytes_in_flight: DEFAULT_BYTES_IN_FLIGHT,
            token: None,
            token_file: None,
            tls: KubeletTls::SystemRoots,
            keep_alive: true,
            max_kept: usize::MAX,
        }
    }
}

/// Descriptors kept for the kubelets' connections: the open-file limit (`open_files`, the soft RLIMIT_NOFILE) less
/// the server's share for its clients ([`heapster_net::server_connection_share`]: half, at most 4,096) and
/// [`KEPT_RESERVE`]. Under a limit of 20,000 that keeps 14,880 connections, where half the limit kept 8,976.
pub fn kept_connection_budget(open_files: u64) -> usize {
    let all = usize::try_from(open_files).unwrap_or(usize::MAX);
    all.saturating_sub(heapster_net::server_connection_share(open_files)).saturating_sub(KEPT_RESERVE)
}

/// Descriptors left beside the kept connections: the connections of kubelets beyond the budget while they are
/// scraped (at most `--max_concurrent_scrapes`, 512 by default), sinks, API server watches and files.
pub const KEPT_RESERVE: usize = 1024;

/// The default largest Summary read: 16 MiB.
///
/// Kubelets pretty-print their Summary; the recorded ones in `fixtures/` take 2.3 to 5.5 kB a pod (1.28 with 23
/// containers in 18 pods: 57 kB; 1.35 with cgroup v2 and PSI: 93 kB for 17 pods), so a 110-pod node (the
/// kubelet's default `maxPods`) sends about 0.6 MB and a 737-pod node (the largest `maxPods` a managed cluster
/// allows) about 4 MB. 16 MiB leaves four times that, and stops a kubelet that lists 20,000 pods (50 MB) before it
/// costs hundreds of MB decoded.
pub const DEFAULT_MAX_BODY: usize = 16 << 20;

/// The default [`BodyBudget`] of a source: four bodies of the largest default size at once (beyond each body's
/// first MiB), a sixteenth of the shipped Deployment's 1 GiB memory limit.
pub const DEFAULT_BYTES_IN_FLIGHT: usize = 64 << 20;

/// How long a token read from a file is used before the file is read again.
const TOKEN_REFRESH: Duration = Duration::from_secs(60);

/// One HTTP client (one connection pool) for all kubelets.
#[derive(Clone)]
pub struct KubeletClient {
    http: Transport,
    /// Shared by every clone: the provider clones the client for every node each round, and the settings hold the
    /// CA certificates and tokens.
    config: Arc<ClientConfig>,
    /// Shared by every clone, so by every kubelet of the source.
    budget: BodyBudget,
    /// The token last read from `config.token_file`, and when.
    file_token: Arc<Mutex<Option<(Instant, String)>>>,
    /// Ask the kubelet to close the connection after answering (`Connection: close`): a kubelet beyond
    /// [`ClientConfig::max_kept`].
    close: bool,
}

/// Reads a bearer token file. Whitespace around the token is refused rather than trimmed: the API server client
/// (kube-rs) re-reads the same file itself and would send it as is, failing every request.
pub fn read_token_file(path: &std::path::Path) -> Result<String, String> {
    let t = std::fs::read_to_string(path).map_err(|e| format!("cannot read token file {}: {e}", path.display()))?;
    if t.trim().is_empty() {
        return Err(format!("token file {} is empty", path.display()));
    }
    if t.trim() != t {
        return Err(format!(
            "token file {} has a newline or spaces around the token: write the token alone (printf %s TOKEN > FILE)",
            path.display()
        ));
    }
    Ok(t)
}

impl KubeletClient {
    /// One client for every kubelet, trusting what `config.tls` says.
    pub fn new(config: ClientConfig) -> Result<Self, String> {
        crate::ensure_crypto_provider();
        let mut builder =
            reqwest::Client::builder().connect_timeout(config.timeout).pool_idle_timeout(crate::http::IDLE_TIMEOUT);
        if !config.keep_alive {
            builder = builder.pool_max_idle_per_host(0);
        }
        builder = match &config.tls {
            KubeletTls::SystemRoots => builder,
            KubeletTls::Roots(ders) => {
                let certs = ders
                    .iter()
                    .map(|d| reqwest::Certificate::from_der(d))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("kubelet CA certificate: {e}"))?;
                if certs.is_empty() {
                    return Err("no certificate in the kubelet CA bundle".into());
                }
                builder.tls_certs_only(certs)
            }
            KubeletTls::Insecure => builder.tls_danger_accept_invalid_certs(true),
        };
        let http = builder.build().map_err(|e| format!("kubelet client: {e}"))?;
        Ok(Self::with_http(http, config))
    }

    /// A client on a reqwest client built elsewhere, for https (its TLS settings are used; `config.tls` is not);
    /// timeout, body limit, keep-alive and token still come from `config`.
    pub fn with_http(http: reqwest::Client, config: ClientConfig) -> Self {
        let budget = BodyBudget::new(config.bytes_in_flight);
        let http = Transport::new(http, config.timeout, config.keep_alive);
        KubeletClient { http, config: Arc::new(config), budget, file_token: Arc::new(Mutex::new(None)), close: false }
    }

    /// The bearer token for the next request: the fixed one, or the token file's, re-read once a minute. A file
    /// that became unreadable keeps the last token (the request then says 401 if it is no longer good).
    fn bearer(&self) -> Option<String> {
        if let Some(t) = &self.config.token {
            return Some(t.clone());
        }
        let path = self.config.token_file.as_ref()?;
        let mut cached = self.file_token.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((read_at, t)) = cached.as_ref()
            && read_at.elapsed() < TOKEN_REFRESH
        {
            return Some(t.clone());
        }
        match read_token_file(path) {
            Ok(t) => {
                *cached = Some((Instant::now(), t.clone()));
                Some(t)
            }
            Err(e) => {
                tracing::warn!("kubelet bearer token: {e}; using the last one read");
                cached.as_ref().map(|(_, t)| t.clone())
            }
        }
    }

    /// GETs and decodes a summary from `url` (`http://10.0.0.1:10255/stats/summary`).
    pub async fn summary(&self, url: &str) -> Result<Summary, ScrapeError> {
        self.summary_within(url, self.config.timeout).await
    }

    /// As [`Self::summary`], ending at `deadline` if that comes before the request's own timeout.
    pub async fn summary_until(&self, url: &str, deadline: tokio::time::Instant) -> Result<Summary, ScrapeError> {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        self.summary_within(url, self.config.timeout.min(left)).await
    }

    async fn summary_within(&self, url: &str, timeout: Duration) -> Result<Summary, ScrapeError> {
        if timeout.is_zero() {
            return Err(FetchError::Timeout(timeout));
        }
        let body = http::get(
            &self.http,
            http::Get {
                url,
                bearer: self.bearer(),
                timeout,
                max_body: self.config.max_body,
                max_body_option: "kubeletMaxBody=",
                budget: &self.budget,
                tls_options: ("kubeletCAFile=", "kubeletInsecureTLS=true"),
                close: self.close,
            },
        )
        .await?;
        // The body's bytes stay counted until it is decoded: the decoded summary is about as big again.
        http::decode_json(&body, b'{', "summary")
    }

    /// This client for a kubelet beyond [`ClientConfig::max_kept`]: its connection is closed after each answer.
    /// Clones share the pool, budget and token.
    pub fn reconnecting(&self) -> KubeletClient {
        KubeletClient { close: true, ..self.clone() }
    }

    /// Whether this client's kubelet keeps its connection between scrapes.
    pub fn keeps_connection(&self) -> bool {
        self.config.keep_alive && !self.close
    }

    /// How many kubelets may keep their connection ([`ClientConfig::max_kept`]).
    pub fn max_kept(&self) -> usize {
        self.config.max_kept
    }

    /// Whether plain-http kubelets are asked on hyper's connections directly (no proxy configured).
    pub fn plain_direct(&self) -> bool {
        self.http.plain_direct()
    }

    /// The bytes-in-flight budget all kubelets of this client share (tests).
    pub fn budget(&self) -> &BodyBudget {
        &self.budget
    }
}
