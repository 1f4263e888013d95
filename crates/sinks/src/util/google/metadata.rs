//! The GCE/GKE metadata server: the instance's project, zone and cluster attributes, and its service account's
//! tokens. `GCE_METADATA_HOST` moves it (`host:port`), as in Google's own client libraries, which is how tests and
//! unusual networks point heapster at another one.

use std::time::Duration;

/// Where the metadata server answers on every GCE VM and GKE node.
pub const DEFAULT_HOST: &str = "metadata.google.internal";

/// The metadata server at one address. Every request carries `Metadata-Flavor: Google`, without which the server
/// refuses to answer (a guard against requests forged through a proxy).
#[derive(Clone, Debug)]
pub struct Metadata {
    base: String,
    client: reqwest::Client,
}

/// Why the metadata server gave no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataError {
    /// No answer at all: not on GCE/GKE (or the server is unreachable from here).
    Unreachable(String),
    /// The server answered, but not with a value (5xx, or an unexpected status).
    Failed(String),
}

impl std::fmt::Display for MetadataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetadataError::Unreachable(m) | MetadataError::Failed(m) => f.write_str(m),
        }
    }
}

impl Metadata {
    /// The server at `host` (`metadata.google.internal`, or `GCE_METADATA_HOST`'s `127.0.0.1:8080`). Its own
    /// short deadline: on a machine outside Google Cloud the name does not resolve or nothing answers, and that
    /// must not hold a sink for the API's whole timeout.
    pub fn new(host: &str) -> Result<Self, String> {
        let client = heapster_net::client_builder(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {}", heapster_net::error_chain(&e)))?;
        Ok(Metadata { base: format!("http://{host}/computeMetadata/v1/"), client })
    }

    /// `http://host/`, for messages.
    pub fn address(&self) -> &str {
        self.base.strip_suffix("computeMetadata/v1/").unwrap_or(&self.base)
    }

    /// The value at `path` (`project/project-id`), or `None` when the server has no such entry (404).
    pub async fn get(&self, path: &str) -> Result<Option<String>, MetadataError> {
        let url = format!("{}{path}", self.base);
        let resp = self.client.get(&url).header("Metadata-Flavor", "Google").send().await.map_err(|e| {
            MetadataError::Unreachable(format!(
                "the metadata server at {} did not answer ({})",
                self.address(),
                heapster_net::error_chain(&e)
            ))
        })?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let text = resp
            .text()
            .await
            .map_err(|e| MetadataError::Failed(format!("the metadata server's answer to {path} broke off: {e}")))?;
        if !status.is_success() {
            return Err(MetadataError::Failed(format!(
                "the metadata server answered {status} to {path}: {}",
                text.trim().chars().take(200).collect::<String>()
            )));
        }
        Ok(Some(text.trim().to_owned()))
    }

    /// A non-empty value at `path`, or `None`.
    pub async fn value(&self, path: &str) -> Result<Option<String>, MetadataError> {
        Ok(self.get(path).await?.filter(|v| !v.is_empty()))
    }

    /// The instance's zone (`us-central1-a`): the server says `projects/123/zones/us-central1-a`.
    pub async fn zone(&self) -> Result<Option<String>, MetadataError> {
        Ok(self.value("instance/zone").await?.map(|z| z.rsplit('/').next().unwrap_or_default().to_owned()))
    }
}
