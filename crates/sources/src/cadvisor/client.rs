//! Fetching cAdvisor documents from one host, with every way it can go wrong named.
//!
//! The same rules as the kubelet client ([`crate::kubelet::client`]): one deadline per request, body included; the
//! body read in chunks up to a byte limit; a cause per failure, counted in `heapster_cadvisor_scrape_errors{cause}`.
//! Both go through [`crate::http`]; the settings ([`ClientConfig`]) are shared.

pub use crate::http::FetchError;
use crate::http::{self, BodyBudget, Transport};
use crate::kubelet::ClientConfig;
use heapster_model::cadvisor::{ContainerInfo, MachineInfo};
use std::time::Duration;

/// One HTTP client (one connection pool) for every cAdvisor host.
#[derive(Clone)]
pub struct CadvisorClient {
    http: Transport,
    config: ClientConfig,
    /// Shared by every clone, so by every host of the source.
    budget: BodyBudget,
}

/// Decodes `/api/v1.3/subcontainers/`: a JSON array of containers.
pub fn decode_subcontainers(body: &[u8]) -> Result<Vec<ContainerInfo>, FetchError> {
    http::decode_json(body, b'[', "cAdvisor subcontainers list")
}

/// Decodes `/api/v1.3/machine/`.
pub fn decode_machine(body: &[u8]) -> Result<MachineInfo, FetchError> {
    http::decode_json(body, b'{', "cAdvisor machine info")
}

impl CadvisorClient {
    /// A client with the kubelet client's settings (timeout, body limit; the token is not sent to cAdvisor).
    pub fn new(config: ClientConfig) -> Result<Self, String> {
        crate::ensure_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .pool_idle_timeout(crate::http::IDLE_TIMEOUT)
            .build()
            .map_err(|e| format!("cadvisor client: {e}"))?;
        let http = Transport::new(http, config.timeout, config.keep_alive);
        let budget = BodyBudget::new(config.bytes_in_flight);
        Ok(CadvisorClient { http, config, budget })
    }

    /// GETs and decodes `http://IP:PORT/api/v1.3/subcontainers/`.
    pub async fn subcontainers(&self, base: &str) -> Result<Vec<ContainerInfo>, FetchError> {
        let body = self.get(&format!("{base}/api/v1.3/subcontainers/"), self.config.timeout).await?;
        decode_subcontainers(&body)
    }

    /// As [`Self::subcontainers`], ending at `deadline` if that comes before the request's own timeout, so that a
    /// slow host fails as `timeout` rather than being cut off by the round.
    pub async fn subcontainers_until(
        &self,
        base: &str,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<ContainerInfo>, FetchError> {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let body = self.get(&format!("{base}/api/v1.3/subcontainers/"), self.config.timeout.min(left)).await?;
        decode_subcontainers(&body)
    }

    /// GETs and decodes `http://IP:PORT/api/v1.3/machine/`.
    pub async fn machine(&self, base: &str) -> Result<MachineInfo, FetchError> {
        let body = self.get(&format!("{base}/api/v1.3/machine/"), self.config.timeout).await?;
        decode_machine(&body)
    }

    /// The body of a successful GET, within `timeout` and the byte limit.
    async fn get(&self, url: &str, timeout: Duration) -> Result<http::Body, FetchError> {
        if timeout.is_zero() {
            return Err(FetchError::Timeout(timeout));
        }
        http::get(
            &self.http,
            http::Get {
                url,
                bearer: None,
                timeout,
                max_body: self.config.max_body,
                max_body_option: "cadvisorMaxBody=",
                budget: &self.budget,
                tls_options: ("", ""),
                close: false,
            },
        )
        .await
    }
}
