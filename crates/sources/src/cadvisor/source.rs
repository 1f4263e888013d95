//! One cAdvisor host as a [`MetricsSource`]: fetch its containers (and, rarely, its machine info), convert them,
//! count what went wrong.

use super::client::{CadvisorClient, FetchError};
use super::convert::containers_to_sets;
use crate::self_metrics::{CadvisorCauseLabels, SourceMetrics};
use crate::{MetricsSource, SourceError};
use async_trait::async_trait;
use heapster_model::cadvisor::MachineInfo;
use heapster_model::{DataBatch, Timestamp};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long machine info (cores, memory size, instance ID) is trusted: it changes only with the hardware, and
/// asking each round would double the requests.
pub const MACHINE_REFRESH: Duration = Duration::from_secs(600);

/// A host's cAdvisor, reached at `base` (`http://10.0.0.1:8080`).
pub struct CadvisorSource {
    /// The node's name in keys and labels.
    pub host: String,
    /// `http://IP:PORT`, to which the API paths are appended.
    pub base: String,
    client: CadvisorClient,
    metrics: SourceMetrics,
    /// The last machine info and when it was last asked for (asked again after [`MACHINE_REFRESH`], also after a
    /// failure, so a cAdvisor without `/machine/` is not asked every round).
    machine: Mutex<(Option<MachineInfo>, Option<Instant>)>,
}

impl CadvisorSource {
    /// A source for one host; machine info is fetched at its first scrape. `client` is shared by all hosts, so they
    /// share one connection pool.
    pub fn new(host: String, base: String, client: CadvisorClient, metrics: SourceMetrics) -> Self {
        CadvisorSource { host, base, client, metrics, machine: Mutex::new((None, None)) }
    }

    fn count(&self, document: &str, e: &FetchError) {
        let labels = CadvisorCauseLabels { document: document.into(), cause: e.cause().into() };
        self.metrics.cadvisor_scrape_errors.get_or_create(&labels).inc();
    }

    /// Machine info, fetched when due. A failure leaves the node without `cpu/limit` and `memory/limit` from it,
    /// which is no reason to drop the containers' figures.
    async fn machine(&self) -> Option<MachineInfo> {
        let (cached, due) = {
            let m = self.machine.lock().unwrap();
            (m.0.clone(), m.1.is_none_or(|at| at.elapsed() >= MACHINE_REFRESH))
        };
        if !due {
            return cached;
        }
        let fetched = self.client.machine(&self.base).await;
        let mut m = self.machine.lock().unwrap();
        m.1 = Some(Instant::now());
        match fetched {
            Ok(info) => m.0 = Some(info),
            Err(e) => {
                self.count("machine", &e);
                tracing::warn!(
                    "cadvisor {} ({}/api/v1.3/machine/): {e}; the node's cpu/limit and memory/limit are left out, \
                     asking again in {MACHINE_REFRESH:?}",
                    self.host,
                    self.base
                );
            }
        }
        m.0.clone()
    }
}

#[async_trait]
impl MetricsSource for CadvisorSource {
    fn name(&self) -> String {
        format!("cadvisor:{}", self.host)
    }

    async fn scrape(&self, timestamp: Timestamp) -> Result<DataBatch, SourceError> {
        self.scrape_until(timestamp, crate::no_deadline()).await
    }

    async fn scrape_until(
        &self,
        timestamp: Timestamp,
        deadline: tokio::time::Instant,
    ) -> Result<DataBatch, SourceError> {
        let containers = self.client.subcontainers_until(&self.base, deadline).await;
        let containers = containers.map_err(|e| {
            self.count("subcontainers", &e);
            SourceError::Other(format!("cadvisor {} ({}/api/v1.3/subcontainers/): {e}", self.host, self.base))
        })?;
        let machine = self.machine().await;
        let _cpu = heapster_cost::DECODE_STAGE.start();
        let sets = containers_to_sets(&containers, machine.as_ref(), &self.host, timestamp);
        Ok(DataBatch { timestamp, sets: sets.into_iter().collect() })
    }
}
