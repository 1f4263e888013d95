//! One request per `--sink`, through the sink's own [`heapster_sinks::DataSink::check`]: built from the same
//! option table as the server's, so a sink the server would refuse to build fails here with the same words.

use super::Report;
use crate::flags::Flags;
use std::time::Duration;

/// Deadline of one sink's check (its own client's timeout usually ends it first).
const TIMEOUT: Duration = Duration::from_secs(20);

pub(super) async fn check(flags: &Flags, report: &mut Report) {
    if flags.sinks.is_empty() {
        report.skip("sinks", "no --sink: metrics stay in heapster's own store and APIs");
        return;
    }
    let metrics = heapster_sinks::SinkMetrics::detached();
    for uri in &flags.sinks {
        let sink = match heapster_sinks::build(uri, &metrics) {
            Ok(s) => s,
            Err(e) => {
                report.fail(
                    &format!("sink {}", uri.key),
                    &e.to_string(),
                    "correct the --sink value as the problem says",
                );
                continue;
            }
        };
        let check = format!("sink {}", sink.name());
        match tokio::time::timeout(TIMEOUT, sink.check()).await {
            Ok(heapster_sinks::SinkCheck::Ok(seen)) => report.ok(&check, &seen),
            Ok(heapster_sinks::SinkCheck::Fail { problem, fix }) => report.fail(&check, &problem, &fix),
            Ok(heapster_sinks::SinkCheck::Skip(why)) => report.skip(&check, &why),
            Err(_) => report.fail(
                &check,
                &format!("no answer within {TIMEOUT:?}"),
                "check that the sink's server runs and this host can reach it",
            ),
        }
    }
}
