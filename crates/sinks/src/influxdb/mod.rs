//! `--sink=influxdb:http://host:8086?db=k8s&...`: batches as line protocol to InfluxDB 1.x, in Heapster 1.x's
//! schema (the default), its `withfields=true` variant, or the seed's `schema=legacy`; with `token=`/`bucket=`,
//! to the InfluxDB 2.x/3.x write API (`/api/v2/write`) instead. Bodies are gzip-compressed unless `gzip=false`.
//!
//! The parts, as in every sink folder: [`config`] (the options, checked once), [`encoder`] (bytes on the wire),
//! [`service`] (HTTP, database creation, the retry-or-report verdict). Retrying itself is the manager's: a batch
//! that failed for a reason worth retrying stays at the head of this sink's queue.

pub mod config;
pub mod encoder;
pub mod historical;
pub mod service;

pub use config::{Api, InfluxdbConfig, Schema};

use crate::{ConfigError, DataSink, SinkError};
use async_trait::async_trait;
use heapster_model::{DataBatch, SpecUri};
use std::sync::Arc;

/// The InfluxDB sink: encodes on the manager's task, writes through [`service::Transport`].
pub struct InfluxdbSink {
    config: Arc<InfluxdbConfig>,
    transport: Arc<service::Transport>,
    name: String,
}

impl InfluxdbSink {
    /// Parses the `--sink` value and builds the HTTP client; contacts no server (InfluxDB may start later).
    pub fn from_uri(uri: &SpecUri) -> Result<Self, ConfigError> {
        let config = InfluxdbConfig::from_uri(uri)?;
        // Credentials stay out of the name, which appears in logs and on /metrics.
        let mut shown = config.url.clone();
        shown.set_query(Some(&config.destination()));
        let name = format!("influxdb:{shown}");
        let transport = service::Transport::new(config.clone(), name.clone())
            .map_err(|reason| ConfigError { uri: uri.to_string(), reason })?;
        Ok(InfluxdbSink { config: Arc::new(config), transport: Arc::new(transport), name })
    }
}

#[async_trait]
impl DataSink for InfluxdbSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError> {
        let encoded = encoder::encode(&batch, &self.config);
        if encoded.unrepresentable > 0 {
            tracing::debug!(sink = %self.name, "{} NaN or infinite values left out", encoded.unrepresentable);
        }
        if encoded.bodies.is_empty() {
            return Ok(());
        }
        self.transport.write_all(encoded.bodies).await
    }
}
