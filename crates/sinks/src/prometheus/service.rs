//! The HTTP side of remote write: one POST per body with the spec's headers and the sink's credentials, and what
//! Prometheus' and VictoriaMetrics' refusals mean. The client and the retry-or-reject verdict are
//! [`crate::util::http`]'s.
//!
//! The spec: 5xx (and 429) are worth a retry, other 4xx must not be retried. Prometheus rolls back the whole
//! request when one sample is out of order, out of bounds or a duplicate with another value, and answers 400
//! naming it; the request's samples are counted as rejected under that cause.

use super::config::{Auth, PrometheusConfig};
use crate::SinkError;
use crate::self_metrics::SinkCounters;
use crate::util::http::{Answer, ClientSettings, HttpClient, Verdict};
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};

/// One remote-write receiver as one sink sees it.
pub struct Transport {
    http: HttpClient,
    config: PrometheusConfig,
    /// `Authorization`, built once, marked sensitive so that it never shows in debug output.
    authorization: Option<HeaderValue>,
}

impl Transport {
    /// Builds the HTTP client; fails only on a CA file that cannot be read, a start-up error.
    pub fn new(config: PrometheusConfig, counters: SinkCounters) -> Result<Self, String> {
        let settings = ClientSettings::new(config.timeout, config.insecure, config.ca_file.clone());
        let http = HttpClient::new(settings, counters, format!("remote write to {}", config.name()))?;
        let authorization = match &config.auth {
            Auth::None => None,
            Auth::Basic { user, password } => {
                use base64::Engine as _;
                let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Some(HeaderValue::from_str(&format!("Basic {b}")).expect("base64 is a valid header value"))
            }
            Auth::Bearer(token) => {
                Some(HeaderValue::from_str(&format!("Bearer {token}")).expect("token checked by the config"))
            }
        }
        .map(|mut v| {
            v.set_sensitive(true);
            v
        });
        Ok(Transport { http, config, authorization })
    }

    /// Sends every body of one batch in order. Stops at the first one worth retrying (the manager sends the batch
    /// again; receivers store a resent identical sample once); a refused body is counted and the rest still sent.
    pub async fn write_all(&self, bodies: Vec<(Vec<u8>, u64)>) -> Result<(), SinkError> {
        let mut refused: Option<SinkError> = None;
        for (body, samples) in bodies {
            let mut req = self
                .http
                .client()
                .post(self.config.url.clone())
                .header(CONTENT_ENCODING, "snappy")
                .header(CONTENT_TYPE, "application/x-protobuf")
                .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                .body(body);
            if let Some(auth) = &self.authorization {
                req = req.header(reqwest::header::AUTHORIZATION, auth.clone());
            }
            let (verdict, answer) = self.http.send(req, judge).await?;
            let message: String = answer.text.trim().chars().take(300).collect();
            match verdict {
                Verdict::Accepted => self.http.counters().written(samples),
                Verdict::Retry { cause } => {
                    return Err(SinkError::Retry(format!("receiver answered {} ({cause}): {message}", answer.status)));
                }
                Verdict::Reject { cause } => {
                    self.http.counters().rejected(&cause, samples);
                    let hint = match answer.status.as_u16() {
                        401 | 403 => " (check user=/pw= or token=)",
                        413 => " (lower batch_points=)",
                        _ => "",
                    };
                    refused = Some(SinkError::Reject(format!(
                        "receiver refused {samples} samples ({cause}){hint}: {}: {message}",
                        answer.status
                    )));
                }
            }
        }
        refused.map_or(Ok(()), Err)
    }
}

/// The cause of a 400, from the receiver's message: Prometheus names the TSDB error that rolled the request back.
fn judge(answer: &Answer) -> Option<Verdict> {
    if answer.status.as_u16() != 400 {
        return None;
    }
    let causes = [
        ("out of order sample", "out_of_order"),
        ("out of bounds", "out_of_bounds"),
        ("duplicate sample for timestamp", "duplicate_sample"),
        ("too old sample", "too_old"),
        ("invalid metric name", "invalid_labels"),
        ("invalid label", "invalid_labels"),
    ];
    let cause = causes.iter().find(|(says, _)| answer.text.contains(says)).map_or("http 400", |(_, c)| c);
    Some(Verdict::Reject { cause: cause.into() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn refusals_are_named_by_the_receivers_words() {
        let cause = |status: u16, text: &str| match judge(&Answer {
            status: StatusCode::from_u16(status).unwrap(),
            text: text.into(),
        }) {
            Some(Verdict::Reject { cause }) => cause.into_owned(),
            v => format!("{v:?}"),
        };
        assert_eq!(cause(400, "out of order sample\n"), "out_of_order");
        assert_eq!(cause(400, "duplicate sample for timestamp"), "duplicate_sample");
        assert_eq!(cause(400, "out of bounds"), "out_of_bounds");
        assert_eq!(cause(400, "cannot unmarshal"), "http 400");
        assert_eq!(cause(503, "busy"), "None");
    }
}
