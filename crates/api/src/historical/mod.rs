//! Heapster's historical API, `/api/v1/historical/...` (Heapster's "Oldtimer", `metrics/api/v1/historical_handlers.go`):
//! the model API's routes answered from a long-term store instead of the embedded 15-minute window, plus
//! `metrics-aggregated/{aggregations}/{metric}` (average, max, min, median, count, 50/95/99-perc, over `bucket=`
//! sized buckets).
//!
//! The store is behind [`HistoricalSource`], as Heapster's `core.HistoricalSource` was, so this crate knows no
//! database: the trait and its types live in the model ([`heapster_model::historical`]), the InfluxDB implementation
//! with the InfluxDB sink (`heapster_sinks::influxdb::historical`), and the binary wires it in with
//! `--historical_source`. Without one, every historical route answers 404 saying so.
//!
//! As in Heapster, `start` is required (a sink asked for "everything since 1970" can take minutes), `end` defaults
//! to now, both inclusive here (Heapster's InfluxQL used `>`/`<` on whole seconds, which dropped the points at the
//! bounds). Raw values come back as the model API's `MetricResult`, aggregations as Heapster's
//! `MetricAggregationResult`: `{"buckets":[{"timestamp":..,"count":..,"average":{"floatValue":..},
//! "maximum":{"intValue":..},"percentiles":{"95":{..}}}],"bucketSize":<nanoseconds>}`.

mod handlers;
pub mod params;

/// For the fuzzer (`crates/fuzz`), which writes decoded InfluxDB answers out as the API does.
#[doc(hidden)]
pub use handlers::aggregation_result;
pub use heapster_model::historical::{AggregatedBucket, Aggregation, HistoricalError, HistoricalSource, Sample};
pub use params::{parse_aggregations, parse_bucket};

use crate::ApiState;
use axum::Router;

/// Every `/api/v1/historical` route.
pub fn routes() -> Router<ApiState> {
    handlers::routes()
}
