//! The HTTP side of OTLP: one `POST /v1/metrics` per body, and what the answer means as the OTLP/HTTP spec says.
//! The client and the retry-or-reject verdict are [`crate::util::http`]'s.
//!
//! - 200 with an empty `ExportMetricsServiceResponse`: all taken. 200 with `partial_success`: the receiver took
//!   the request but refused `rejected_data_points` of it; those are counted as rejected (`partial_success`) and
//!   not sent again, as the spec says a client must not retry them.
//! - 429, 408 and 5xx: retried by the manager (the collector answers 503 when its queue is full). Connect errors
//!   and timeouts alike.
//! - Any other 4xx: the request is refused for good and its points counted by cause; the `google.rpc.Status`
//!   message of the answer is logged.

use super::config::OtlpConfig;
use super::proto::{ExportMetricsServiceResponse, Status};
use crate::SinkError;
use crate::self_metrics::SinkCounters;
use crate::util::http::{self, ClientSettings, HttpClient, Verdict};
use prost::Message as _;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};

/// The cause under which the points a receiver refused in a partial success are counted.
pub const PARTIAL_SUCCESS: &str = "partial_success";

/// One OTLP/HTTP receiver as one sink sees it.
pub struct Transport {
    http: HttpClient,
    config: OtlpConfig,
}

impl Transport {
    /// Builds the HTTP client; fails only on a CA file that cannot be read, a start-up error.
    pub fn new(config: OtlpConfig, counters: SinkCounters) -> Result<Self, String> {
        let settings = ClientSettings::new(config.timeout, config.insecure, config.ca_file.clone());
        let http = HttpClient::new(settings, counters, format!("OTLP receiver at {}", config.url))?;
        Ok(Transport { http, config })
    }

    /// Sends every body of one batch in order. Stops at the first one worth retrying (the manager sends the batch
    /// again; a repeated point has the same series, time and value, which backends store once); a refused body is
    /// counted and the rest still sent.
    pub async fn write_all(&self, bodies: Vec<(Vec<u8>, u64)>) -> Result<(), SinkError> {
        let mut refused: Option<SinkError> = None;
        for (body, points) in bodies {
            let mut request = self.http.client().post(self.config.url.clone()).header(CONTENT_TYPE, PROTOBUF);
            request = if self.config.gzip {
                request.header(CONTENT_ENCODING, "gzip").body(http::gzip(&body))
            } else {
                request.body(body)
            };
            let (verdict, answer, reply) = self.http.send_for_bytes(request, |_| None).await?;
            let counters = self.http.counters();
            match verdict {
                Verdict::Accepted => {
                    // A 200 whose body is no response message (a receiver answering "OK") took everything.
                    let partial =
                        ExportMetricsServiceResponse::decode(reply.as_slice()).ok().and_then(|r| r.partial_success);
                    let rejected =
                        partial.as_ref().map_or(0, |p| p.rejected_data_points.clamp(0, points as i64) as u64);
                    counters.written(points - rejected);
                    if let Some(p) = partial.filter(|p| rejected > 0 || !p.error_message.is_empty()) {
                        let message: String = p.error_message.chars().take(300).collect();
                        if rejected == 0 {
                            tracing::warn!(sink = %self.config.name(), "receiver took every point but warned: {message}");
                            continue;
                        }
                        counters.rejected(PARTIAL_SUCCESS, rejected);
                        refused = Some(SinkError::Reject(format!(
                            "receiver refused {rejected} of {points} data points (partial success): {message}"
                        )));
                    }
                }
                Verdict::Retry { cause } => {
                    return Err(SinkError::Retry(format!(
                        "receiver answered {} ({cause}): {}",
                        answer.status,
                        status_message(&reply, &answer.text)
                    )));
                }
                Verdict::Reject { cause } => {
                    counters.rejected(&cause, points);
                    let hint = match answer.status.as_u16() {
                        401 | 403 => " (the receiver wants credentials this sink does not send)",
                        404 => " (is this an OTLP/HTTP receiver? the sink posts to /v1/metrics)",
                        413 => " (lower batch_points=)",
                        415 => " (the receiver takes no protobuf; or, with gzip=true, no gzip)",
                        _ => "",
                    };
                    refused = Some(SinkError::Reject(format!(
                        "receiver refused {points} data points ({cause}){hint}: {}: {}",
                        answer.status,
                        status_message(&reply, &answer.text)
                    )));
                }
            }
        }
        refused.map_or(Ok(()), Err)
    }
}

/// OTLP/HTTP's content type for binary protobuf, of requests and of answers.
pub const PROTOBUF: &str = "application/x-protobuf";

/// The message of an error answer: a `google.rpc.Status`, as the spec asks of receivers, or else its text.
fn status_message(reply: &[u8], text: &str) -> String {
    let message = match Status::decode(reply) {
        Ok(s) if !s.message.is_empty() => s.message,
        _ => text.trim().to_owned(),
    };
    message.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_read_from_a_status_or_else_the_text() {
        let status = Status { code: 3, message: "bad metric name".into() }.encode_to_vec();
        assert_eq!(status_message(&status, "ignored"), "bad metric name");
        assert_eq!(
            status_message(b"<html>Bad Gateway</html>\xff", " <html>Bad Gateway</html> "),
            "<html>Bad Gateway</html>"
        );
    }
}
