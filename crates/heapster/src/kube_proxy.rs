//! The Kubernetes API server behind heapster's pass-through routes (`/api/v1/nodes[/NAME]`, `/version`), reached
//! with the same credentials as the kubernetes source, so `kubectl top node` pointed at heapster sees the
//! cluster's real nodes (their allocatable CPU and memory) and its real version.

use heapster_api::metrics_api::{KubeApiProxy, ProxyResponse};
use heapster_sources::kubernetes::Cluster;
use std::sync::Arc;
use std::time::Duration;

/// How long one pass-through request may take; kubectl's own default timeout is longer, the HPA's is 30s.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Largest answer passed on (a NodeList of 5,000 nodes is about 50 MB).
const MAX_BODY: usize = 256 * 1024 * 1024;

/// The API server of one `--source=kubernetes...`, through the client its source uses.
pub struct KubeProxy {
    client: kube::Client,
    server: String,
}

/// The pass-through to `cluster`'s API server.
pub fn for_cluster(cluster: &Cluster) -> Arc<dyn KubeApiProxy> {
    Arc::new(KubeProxy { client: cluster.client.clone(), server: cluster.server.clone() })
}

#[async_trait::async_trait]
impl KubeApiProxy for KubeProxy {
    async fn get(&self, path_and_query: &str) -> Result<ProxyResponse, String> {
        let request = axum::http::Request::get(path_and_query)
            .header(axum::http::header::ACCEPT, "application/json")
            .body(kube::client::Body::empty())
            .map_err(|e| format!("{path_and_query:?} is not a request path: {e}"))?;
        let response = tokio::time::timeout(TIMEOUT, self.client.send(request))
            .await
            .map_err(|_| format!("{} did not answer within {TIMEOUT:?}", self.server))?
            .map_err(|e| format!("{}: {e}", self.server))?;
        let status = response.status().as_u16();
        let content_type =
            response.headers().get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = axum::body::to_bytes(axum::body::Body::new(response.into_body()), MAX_BODY)
            .await
            .map_err(|e| format!("{}: reading the answer: {e}", self.server))?;
        Ok(ProxyResponse { status, content_type, body })
    }
}
