//! `/api/v1/cost`: what heapster itself costs, per stage and per unit of work, over the newest rounds.
//!
//! CPU comes from [`heapster_cost`]: each stage's thread CPU time, with `other` the rest of the process's, so the
//! stages sum to what `/proc/<pid>/stat` says the process used in the interval. Per round and per node are that
//! divided by the interval's rounds and the nodes they scraped on average. Memory is the store's own count of its
//! heap bytes, per series and per node of the newest round; the sinks' figures are points taken per second and
//! what waits in each sink's queue (and spool).
//!
//! `?rounds=N` takes the newest N rounds (at most as many as the ledger keeps; default [`DEFAULT_ROUNDS`]),
//! `?rounds=all` everything since heapster started.

use crate::ApiState;
use crate::dashboard::params::{Pairs, checked};
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use serde::Serialize;

/// Rounds the figures cover unless asked otherwise: a few minutes at the default resolution.
pub const DEFAULT_ROUNDS: usize = 20;

/// The answer of `/api/v1/cost`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    /// Rounds the figures cover (0 before the first round ended: then per-round figures are 0).
    pub rounds: u64,
    /// Whether they cover every round since heapster started (`?rounds=all`, or fewer rounds than asked).
    pub since_start: bool,
    /// Seconds between the interval's first and last mark.
    pub seconds: f64,
    /// Nodes the newest round scraped, and on average per round of the interval.
    pub nodes: u64,
    pub nodes_mean: f64,
    /// The process's CPU seconds in the interval, per round, and the cores that is on average.
    pub cpu_seconds: f64,
    pub cpu_seconds_per_round: f64,
    pub cores: f64,
    /// By stage, `other` last; their `cpuSeconds` sum to [`Cost::cpu_seconds`].
    pub stages: Vec<StageCost>,
    pub store: StoreCost,
    pub sinks: Vec<SinkCost>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageCost {
    pub stage: String,
    pub cpu_seconds: f64,
    /// Of the process's CPU in the interval, 0 to 1.
    pub share: f64,
    pub cpu_ms_per_round: f64,
    /// Per node scraped, per round: what a cluster's size multiplies.
    pub cpu_ms_per_node_per_round: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreCost {
    pub series: usize,
    pub points: usize,
    /// The store's count of its heap bytes (allocator overhead not included).
    pub bytes: usize,
    pub bytes_per_series: f64,
    /// Per node of the newest round: what the store's memory grows by per node of a cluster.
    pub bytes_per_node: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SinkCost {
    pub sink: String,
    pub points_per_second: f64,
    /// Batches waiting now: in memory, or with a spool, not yet acknowledged in it.
    pub queued_batches: u64,
    pub spooled: bool,
    /// Bytes of its spool on disk, when it has one.
    pub spool_bytes: Option<u64>,
}

/// `/api/v1/cost`.
pub async fn cost(State(st): State<ApiState>, q: Pairs) -> Result<Json<Cost>, ApiError> {
    let Some(ledger) = st.cost.clone() else {
        return Err(ApiError::not_found("this server keeps no record of heapster's costs"));
    };
    let rounds = match checked(q, &["rounds"])?.first().map(|(_, v)| v.as_str()) {
        None | Some("") => Some(DEFAULT_ROUNDS),
        Some("all") => None,
        Some(n) => match n.parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(ApiError::bad_request(format!("rounds: {n:?} is not a number of rounds above 0, or all"))),
        },
    };
    let report = ledger.report(rounds);
    let stats = st.store.stats();
    Ok(Json(build(&report, rounds, ledger.keep(), &stats)))
}

/// The figures of `report`, with the store's.
pub fn build(
    report: &heapster_cost::Report,
    asked: Option<usize>,
    kept: usize,
    stats: &heapster_store::StoreStats,
) -> Cost {
    let cpu_seconds = report.cpu_seconds();
    let per_round = |x: f64| if report.rounds > 0 { x / report.rounds as f64 } else { 0.0 };
    let per_node = |x: f64| if report.nodes_mean > 0.0 { per_round(x) / report.nodes_mean } else { 0.0 };
    let stages = report
        .cpu
        .iter()
        .map(|(stage, ns)| {
            let s = *ns as f64 / 1e9;
            StageCost {
                stage: stage.clone(),
                cpu_seconds: s,
                share: if cpu_seconds > 0.0 { s / cpu_seconds } else { 0.0 },
                cpu_ms_per_round: per_round(s * 1e3),
                cpu_ms_per_node_per_round: per_node(s * 1e3),
            }
        })
        .collect();
    let ratio = |a: usize, b: f64| if b > 0.0 { a as f64 / b } else { 0.0 };
    Cost {
        rounds: report.rounds,
        // Fewer rounds than asked (and none dropped from the ledger yet) means since start too.
        since_start: asked.is_none_or(|n| (report.rounds as usize) < n && (report.rounds as usize) < kept),
        seconds: report.seconds,
        nodes: report.nodes_last,
        nodes_mean: report.nodes_mean,
        cpu_seconds,
        cpu_seconds_per_round: per_round(cpu_seconds),
        cores: if report.seconds > 0.0 { cpu_seconds / report.seconds } else { 0.0 },
        stages,
        store: StoreCost {
            series: stats.series,
            points: stats.points,
            bytes: stats.bytes,
            bytes_per_series: ratio(stats.bytes, stats.series as f64),
            bytes_per_node: ratio(stats.bytes, report.nodes_last as f64),
        },
        sinks: report
            .sinks
            .iter()
            .map(|s| SinkCost {
                sink: s.reading.name.clone(),
                points_per_second: s.points_per_second,
                queued_batches: s.reading.queued_batches,
                spooled: s.reading.spooled,
                spool_bytes: s.reading.spool_bytes,
            })
            .collect(),
    }
}
