//! Fetching `/stats/summary` from one kubelet, with every way it can go wrong named.
//!
//! A kubelet can be slow, dead, behind a proxy that answers with an HTML page, or (through a bug or an attacker)
//! send an endless body. Each request has its own deadline, the body is read in chunks up to a byte limit (a
//! declared `Content-Length` over the limit is refused before reading), and each failure has a cause that the
//! scrape loop counts per kubelet in `heapster_kubelet_scrape_errors{cause}`.

use super::summary::{Summary, decode};
use std::time::Duration;

/// Why one kubelet gave no summary this round.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    #[error("answered HTTP {status}: {snippet}")]
    Status { status: u16, snippet: String },
    #[error("body larger than {limit} bytes: not read further (raise the limit if real summaries are this big)")]
    TooLarge { limit: usize },
    #[error("body is not JSON (an HTML error page or a proxy?): {0}")]
    NotJson(String),
    #[error("body ended early ({got} bytes): {err}")]
    Truncated { got: usize, err: String },
    #[error("malformed summary: {0}")]
    Decode(serde_json::Error),
}

impl ScrapeError {
    /// The `cause` label of the error counter: one per way of failing, few enough to graph.
    pub fn cause(&self) -> &'static str {
        match self {
            ScrapeError::Connect(_) => "connect",
            ScrapeError::Timeout(_) => "timeout",
            ScrapeError::Status { .. } => "http_status",
            ScrapeError::TooLarge { .. } => "too_large",
            ScrapeError::NotJson(_) => "not_json",
            ScrapeError::Truncated { .. } => "truncated",
            ScrapeError::Decode(_) => "malformed",
        }
    }
}

/// Settings shared by every kubelet request.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Deadline of one whole request, body included.
    pub timeout: Duration,
    /// Largest body read. A 5,000-pod node's summary is about 20 MB; the default leaves room for that.
    pub max_body: usize,
    /// Bearer token (service account) sent with each request.
    pub token: Option<String>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig { timeout: Duration::from_secs(10), max_body: 64 << 20, token: None }
    }
}

/// One HTTP client (one connection pool) for all kubelets.
#[derive(Clone)]
pub struct KubeletClient {
    http: reqwest::Client,
    config: ClientConfig,
}

/// The first bytes of a body, printable, for an error line.
fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(120)]);
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl KubeletClient {
    pub fn new(config: ClientConfig) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| format!("kubelet client: {e}"))?;
        Ok(KubeletClient { http, config })
    }

    /// GETs and decodes a summary from `url` (`http://10.0.0.1:10255/stats/summary`).
    pub async fn summary(&self, url: &str) -> Result<Summary, ScrapeError> {
        let deadline = self.config.timeout;
        match tokio::time::timeout(deadline, self.fetch(url)).await {
            Ok(r) => r,
            Err(_) => Err(ScrapeError::Timeout(deadline)),
        }
    }

    async fn fetch(&self, url: &str) -> Result<Summary, ScrapeError> {
        let mut req = self.http.get(url).header("accept", "application/json");
        if let Some(t) = &self.config.token {
            req = req.bearer_auth(t);
        }
        let mut resp = req.send().await.map_err(|e| {
            if e.is_timeout() { ScrapeError::Timeout(self.config.timeout) } else { ScrapeError::Connect(e.to_string()) }
        })?;
        let limit = self.config.max_body;
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(ScrapeError::TooLarge { limit });
        }
        let status = resp.status();
        let mut body = Vec::with_capacity(resp.content_length().map_or(64 << 10, |n| n as usize));
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > limit {
                        return Err(ScrapeError::TooLarge { limit });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(ScrapeError::Truncated { got: body.len(), err: e.to_string() }),
            }
        }
        if !status.is_success() {
            return Err(ScrapeError::Status { status: status.as_u16(), snippet: snippet(&body) });
        }
        match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => {}
            _ => return Err(ScrapeError::NotJson(snippet(&body))),
        }
        decode(&body).map_err(|e| {
            if e.is_eof() {
                ScrapeError::Truncated { got: body.len(), err: e.to_string() }
            } else {
                ScrapeError::Decode(e)
            }
        })
    }
}
