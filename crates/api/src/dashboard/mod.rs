//! The web dashboard at `/`: what a new user sees after `cargo run` and opening http://localhost:8082.
//!
//! A single page of plain JavaScript ([`assets`]) drawn with the vendored uPlot, reading small JSON answers made for
//! it under `/api/v1/dashboard/`:
//!
//! - `overview`: counts of nodes, namespaces, pods and containers, the cluster's newest CPU and memory,
//! - `nodes`, `namespaces`, `pods`, `containers`: one page of a list, searched, filtered and sorted on the server
//!   ([`list`]), so 150,000 pods cost the browser one page of rows, never the whole list,
//! - `series?key=`: one metric set's CPU, memory, network and filesystem over the store's window ([`series`]),
//! - `set?key=`: one metric set's labels and metric names.
//!
//! Everything is embedded in the binary: no build step outside cargo, nothing fetched from elsewhere at run time.

mod assets;
mod list;
mod overview;
pub(crate) mod params;
mod rows;
mod series;

#[cfg(test)]
mod tests;

use crate::ApiState;
use crate::error::ApiError;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

/// Where the dashboard's JSON lives, beside the model API it complements.
pub const API_BASE: &str = "/api/v1/dashboard";

/// The page at `/`, its static files under `/dashboard/`, and its JSON endpoints.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(assets::index))
        .route("/dashboard/{*file}", get(assets::file))
        .route(&format!("{API_BASE}/overview"), get(overview::overview))
        .route(&format!("{API_BASE}/nodes"), get(list::nodes))
        .route(&format!("{API_BASE}/namespaces"), get(list::namespaces))
        .route(&format!("{API_BASE}/pods"), get(list::pods))
        .route(&format!("{API_BASE}/containers"), get(list::containers))
        .route(&format!("{API_BASE}/series"), get(series::series))
        .route(&format!("{API_BASE}/set"), get(series::set))
}

/// Runs `f` on tokio's blocking pool: the first request after a batch reads every set of the store, which must
/// not stall the workers serving `/healthz` and the other APIs meanwhile.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || {
        let _cpu = heapster_cost::API_STAGE.start();
        f()
    })
    .await
    .map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("dashboard request failed: {e}; heapster's log has the details"),
    })
}
