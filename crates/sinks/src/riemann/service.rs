//! Riemann events to the server in messages of `batchsize`, each answered: `ok` counts them written, `ok=false`
//! counts them refused with the server's reason (not retried: the same events would be refused again).

use super::proto::{Event, Msg};
use crate::SinkError;
use crate::self_metrics::SinkCounters;
use crate::util::transport::{Endpoint, FramedWriter, TcpConfig};
use prost::Message as _;

pub struct Client {
    writer: FramedWriter,
    batch_size: usize,
    counters: SinkCounters,
}

impl Client {
    pub fn new(endpoint: Endpoint, config: TcpConfig, batch_size: usize, counters: SinkCounters) -> Self {
        Client { writer: FramedWriter::new(endpoint, config), batch_size, counters }
    }

    /// Sends every event. A transport failure stops at once and is worth a retry of the whole batch (Riemann
    /// takes an event again as the same state of the same host and service); messages the server refused are
    /// counted, the others still sent, and the batch then rejected.
    pub async fn send(&self, events: Vec<Event>) -> Result<(), SinkError> {
        let mut refused = Vec::new();
        let mut events = events.into_iter().peekable();
        while events.peek().is_some() {
            let msg = Msg { events: events.by_ref().take(self.batch_size).collect(), ..Default::default() };
            let n = msg.events.len() as u64;
            let reply = match self.writer.request(&msg.encode_to_vec()).await {
                Ok(r) => r,
                Err(e) => {
                    self.counters.request(e.cause().label());
                    return Err(e.into());
                }
            };
            let reply = match Msg::decode(reply.as_slice()) {
                Ok(r) => r,
                Err(e) => {
                    self.counters.request("protocol");
                    let at = self.writer.endpoint();
                    return Err(SinkError::Retry(format!("{at}: the answer is not a Riemann Msg ({e})")));
                }
            };
            if reply.ok == Some(true) {
                self.counters.request("ok");
                self.counters.written(n);
            } else {
                let why = reply.error.unwrap_or_else(|| "ok=false without an error".to_owned());
                self.counters.request("rejected");
                self.counters.rejected(&cause(&why), n);
                refused.push(why);
            }
        }
        match refused.first() {
            None => Ok(()),
            Some(first) => Err(SinkError::Reject(format!(
                "{}: {} message(s) refused: {first}",
                self.writer.endpoint(),
                refused.len()
            ))),
        }
    }
}

/// A bounded label for the self-metrics: the server's reason up to its first `:` or 40 characters, as the
/// rest tends to name the event (which would make a series per event).
fn cause(error: &str) -> String {
    let head = error.split(':').next().unwrap_or(error).trim();
    head.chars().take(40).collect()
}
