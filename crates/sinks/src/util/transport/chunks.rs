//! What a line sink does with its chunks of lines, whatever carries them (TCP lines, UDP datagrams): send them
//! in order, count each outcome, and turn the first failure into the manager's verdict.

use super::{TransportError, Verdict};
use crate::SinkError;
use crate::self_metrics::SinkCounters;

/// The outcomes of one batch's chunks, sent in order by the sink: `for c in chunks { log.record(c, send(c).await)?
/// } log.finish()`.
///
/// A failure worth retrying stops at once ([`Chunks::record`] returns it): the manager sends the whole batch
/// again, and the chunks before it are rewritten, which metric stores keep once (same series and timestamp). A
/// chunk refused as it is (too large, malformed) would be refused again: its lines are counted as rejected under
/// the transport's cause, the chunks after it are still sent, and [`Chunks::finish`] then ends the batch as
/// rejected so that the manager drops it instead of retrying.
pub struct Chunks<'a> {
    counters: &'a SinkCounters,
    refused: Option<TransportError>,
}

impl<'a> Chunks<'a> {
    pub fn new(counters: &'a SinkCounters) -> Self {
        Chunks { counters, refused: None }
    }

    /// Counts one newline-terminated chunk's outcome: `Ok(n)` when sent with `n` lines the transport could not
    /// send at all (longer than a UDP datagram).
    pub fn record(&mut self, chunk: &str, outcome: Result<u64, TransportError>) -> Result<(), SinkError> {
        let lines = chunk.bytes().filter(|b| *b == b'\n').count() as u64;
        match outcome {
            Ok(dropped) => {
                self.counters.request("ok");
                self.counters.written(lines - dropped.min(lines));
                if dropped > 0 {
                    self.counters.dropped("longer than a UDP datagram", dropped);
                }
            }
            Err(e) => {
                self.counters.request(e.cause().label());
                if e.verdict() == Verdict::Retry {
                    return Err(e.into());
                }
                self.counters.rejected(e.cause().label(), lines);
                self.refused.get_or_insert(e);
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Result<(), SinkError> {
        self.refused.map_or(Ok(()), |e| Err(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SinkMetrics;
    use crate::util::transport::{Cause, Endpoint};

    #[test]
    fn a_refused_chunk_is_counted_and_the_rest_still_sent_a_retry_stops_at_once() {
        let mut registry = prometheus_client::registry::Registry::default();
        let counters = SinkMetrics::register(&mut registry).for_kind("test").sink("s");
        let refuse = || Err(TransportError::new(Cause::TooLarge, &Endpoint::new("h", 1), "too big"));
        let mut log = Chunks::new(&counters);
        log.record("a\nb\n", Ok(0)).unwrap();
        log.record("big\n", refuse()).expect("the next chunk is still sent");
        log.record("c\n", Ok(0)).unwrap();
        assert!(matches!(log.finish(), Err(SinkError::Reject(_))));

        let mut log = Chunks::new(&counters);
        let e = log.record("d\n", Err(TransportError::new(Cause::Connect, &Endpoint::new("h", 1), "refused")));
        assert!(matches!(e, Err(SinkError::Retry(_))), "{e:?}");
        assert!(log.finish().is_ok(), "nothing was refused");

        let mut t = String::new();
        prometheus_client::encoding::text::encode(&mut t, &registry).unwrap();
        for want in [
            "heapster_sink_test_points_written_total{sink=\"s\"} 3",
            "heapster_sink_test_points_rejected_total{sink=\"s\",cause=\"too_large\"} 1",
            "heapster_sink_test_requests_total{sink=\"s\",outcome=\"connect\"} 1",
            "heapster_sink_test_requests_total{sink=\"s\",outcome=\"ok\"} 2",
        ] {
            assert!(t.contains(want), "{want}\n{t}");
        }
    }
}
