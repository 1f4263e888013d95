//! `/api/v1/cardinality?top=N`: per sink with a cardinality governor (`max_series=`, `labels_deny=`, ... in its
//! `--sink` URI), the budget, the series offered, written, cut and merged in its last round, and the `top` metrics
//! by series and labels by distinct values (default 10). The numbers come from the sinks' governors through
//! [`heapster_model::cardinality::CardinalityReport`]; with no governed sink the list is empty.

use crate::ApiState;
use crate::error::ApiError;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use heapster_model::cardinality::SinkCardinality;
use serde::Serialize;
use std::collections::HashMap;

/// Metrics and labels listed per sink when `top` is not given.
const DEFAULT_TOP: usize = 10;

pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/cardinality", get(cardinality)).route("/api/v1/cardinality/", get(cardinality))
}

#[derive(Serialize)]
struct Answer {
    sinks: Vec<SinkCardinality>,
}

async fn cardinality(
    State(st): State<ApiState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Answer>, ApiError> {
    let top = match q.get("top") {
        None => DEFAULT_TOP,
        Some(t) => t.parse().map_err(|_| ApiError::bad_request(format!("top={t:?}: expected a whole number")))?,
    };
    let sinks = st.cardinality.as_ref().map(|c| c.cardinality(top)).unwrap_or_default();
    Ok(Json(Answer { sinks }))
}
