//! The HTTP side of the InfluxDB sink: `/write` with line protocol, `CREATE DATABASE` when the database is
//! missing, and a verdict per request that the manager's retry loop acts on.
//!
//! Heapster's sink had no HTTP timeout (a hung server hung the sink) and dropped the batch on any error. Here
//! every request has a deadline, and an error is sorted into "try again" (server down, timeout, 5xx) — the batch
//! stays queued — and "retrying will not help" (InfluxDB rejected points: bad data, type conflicts, auth), which
//! is reported with InfluxDB's own words and counted per cause.

use super::config::InfluxdbConfig;
use crate::SinkError;
use crate::metrics::{self, SinkCauseLabels, SinkOutcomeLabels};
use reqwest::StatusCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// One InfluxDB 1.x server, as seen by one sink.
pub struct Transport {
    client: reqwest::Client,
    config: InfluxdbConfig,
    write_url: url::Url,
    /// The sink's name, for self-metrics and logs.
    name: String,
    /// Set once `CREATE DATABASE` answered; cleared by a "database not found" so that a database dropped
    /// mid-run is made again instead of failing every write (Heapster reset its connection for the same reason).
    db_ready: AtomicBool,
}

impl Transport {
    /// Builds the HTTP client. Fails only when TLS cannot be set up, which is a start-up error.
    pub fn new(config: InfluxdbConfig, name: String) -> Result<Self, String> {
        ensure_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .tls_danger_accept_invalid_certs(config.insecure_ssl)
            .user_agent(concat!("heapster-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let mut write_url = endpoint(&config.url, "write");
        write_url.query_pairs_mut().append_pair("db", &config.db).append_pair("precision", "ms");
        Ok(Transport { client, config, write_url, name, db_ready: AtomicBool::new(false) })
    }

    /// Writes every body of one batch, `concurrency` at a time. The batch fails as a whole if any body failed;
    /// a retry rewrites bodies that did arrive, which InfluxDB stores once (same series and timestamp overwrite).
    pub async fn write_all(self: &Arc<Self>, bodies: Vec<String>) -> Result<(), SinkError> {
        self.ensure_db().await?;
        let mut worst: Option<SinkError> = None;
        let mut bodies = bodies.into_iter().peekable();
        while bodies.peek().is_some() {
            let mut set = tokio::task::JoinSet::new();
            for body in bodies.by_ref().take(self.config.concurrency) {
                let me = self.clone();
                set.spawn(async move { me.write(body).await });
            }
            while let Some(r) = set.join_next().await {
                let r = r.unwrap_or_else(|e| Err(SinkError::Transient(format!("write task failed: {e}"))));
                if let Err(e) = r {
                    // "Try again" wins over "rejected": the batch must be written again either way.
                    worst = match (worst, e) {
                        (Some(SinkError::Transient(w)), _) => Some(SinkError::Transient(w)),
                        (_, e) => Some(e),
                    };
                }
            }
        }
        worst.map_or(Ok(()), Err)
    }

    /// One POST to `/write`; makes the database again and retries once if InfluxDB says it is gone.
    async fn write(&self, body: String) -> Result<(), SinkError> {
        let lines = body.lines().count() as u64;
        for attempt in 0..2 {
            let resp = self.post(self.write_url.clone(), body.clone()).await?;
            let status = resp.status();
            if status.is_success() {
                self.outcome("ok");
                metrics::INFLUXDB_POINTS.get_or_create(&metrics::sink(&self.name)).inc_by(lines);
                return Ok(());
            }
            let text = resp.text().await.unwrap_or_default();
            let message = error_message(&text);
            if message.contains("database not found") && attempt == 0 {
                tracing::warn!(sink = %self.name, "database {:?} not found: creating it again", self.config.db);
                self.outcome("database_not_found");
                self.db_ready.store(false, Ordering::SeqCst);
                self.ensure_db().await?;
                continue;
            }
            return Err(self.rejected(status, &message, lines));
        }
        Err(SinkError::Transient(format!("database {:?} vanished again right after being created", self.config.db)))
    }

    /// Sorts a non-2xx answer to `/write` into retry or report.
    fn rejected(&self, status: StatusCode, message: &str, lines: u64) -> SinkError {
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            self.outcome("server_error");
            return SinkError::Transient(format!("InfluxDB answered {status}: {message}"));
        }
        self.outcome("rejected");
        let cause = cause_of(status, message);
        // A partial write names how many points it dropped; anything else rejected the whole body.
        let dropped = partial_dropped(message).unwrap_or(lines);
        metrics::INFLUXDB_REJECTED
            .get_or_create(&SinkCauseLabels { sink: self.name.clone(), cause: cause.clone() })
            .inc_by(dropped);
        let written = lines.saturating_sub(dropped);
        if written > 0 {
            metrics::INFLUXDB_POINTS.get_or_create(&metrics::sink(&self.name)).inc_by(written);
        }
        let hint = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => " (check user= and pw=)",
            StatusCode::PAYLOAD_TOO_LARGE => " (lower batch_points=)",
            _ => "",
        };
        SinkError::Permanent(format!(
            "InfluxDB rejected {dropped} of {lines} points ({cause}){hint}: {status}: {message}"
        ))
    }

    /// `CREATE DATABASE` with the configured duration, once; InfluxDB answers success if it already exists
    /// with the same options. Heapster ignored `retention` on a fresh server; here it is the database's default.
    async fn ensure_db(&self) -> Result<(), SinkError> {
        if self.db_ready.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut q = format!("CREATE DATABASE {}", quote_ident(&self.config.db));
        if let Some(d) = &self.config.retention {
            q.push_str(&format!(" WITH DURATION {d}"));
        }
        let mut url = endpoint(&self.config.url, "query");
        url.query_pairs_mut().append_pair("q", &q);
        let resp = self.post(url, String::new()).await?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let message = error_message(&text);
        if status.is_server_error() {
            return Err(SinkError::Transient(format!("{q}: InfluxDB answered {status}: {message}")));
        }
        if status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED {
            // A user without admin rights cannot create databases; the database may exist anyway (made by an
            // admin). Writes tell: "database not found" comes back here.
            tracing::warn!(sink = %self.name, "{q}: {status}: {message}; writing to the database as it is");
        } else if !status.is_success() {
            return Err(SinkError::Permanent(format!("{q}: InfluxDB answered {status}: {message}")));
        } else if !message.is_empty() {
            // Most often "retention policy conflicts with an existing policy": the database exists with another
            // duration. Writing works; changing a user's retention behind their back would not be ours to do.
            tracing::warn!(sink = %self.name, "{q}: {message}; writing to the existing database");
        } else {
            tracing::info!(sink = %self.name, "{q}: done");
        }
        self.db_ready.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn post(&self, url: url::Url, body: String) -> Result<reqwest::Response, SinkError> {
        let mut req = self.client.post(url).body(body);
        if !self.config.user.is_empty() {
            req = req.basic_auth(&self.config.user, Some(&self.config.password));
        }
        req.send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connect"
            } else {
                "transport"
            };
            self.outcome(kind);
            // Down, slow or unreachable: all worth another try once the server is back.
            SinkError::Transient(format!("InfluxDB at {}: {kind}: {}", self.config.url, error_chain(&e)))
        })
    }

    fn outcome(&self, outcome: &str) {
        metrics::INFLUXDB_REQUESTS
            .get_or_create(&SinkOutcomeLabels { sink: self.name.clone(), outcome: outcome.into() })
            .inc();
    }
}

/// `base` with `name` appended to its path, keeping a proxy prefix (`http://h/influx/` -> `/influx/write`).
fn endpoint(base: &url::Url, name: &str) -> url::Url {
    let mut u = base.clone();
    let path = format!("{}/{name}", base.path().trim_end_matches('/'));
    u.set_path(&path);
    u.set_query(None);
    u
}

/// InfluxQL identifier in double quotes, so database names with dashes or dots work.
fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The `error` of InfluxDB's JSON answer (`{"error": ...}` or `{"results":[{"error": ...}]}`), or the text.
fn error_message(text: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return text.trim().chars().take(500).collect();
    };
    let e = v["error"].as_str().or_else(|| v["results"][0]["error"].as_str()).unwrap_or_default();
    e.chars().take(500).collect()
}

/// A short, bounded name for why points were rejected, for the self-metric's label: `field type conflict`,
/// `unable to parse`, `points beyond retention policy`, `unauthorized`...
fn cause_of(status: StatusCode, message: &str) -> String {
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return "unauthorized".into();
    }
    let m = message.strip_prefix("partial write: ").unwrap_or(message);
    let head = m.split([':', '"']).next().unwrap_or("").trim();
    let head = head.split(" dropped=").next().unwrap_or(head).trim();
    let known = ["field type conflict", "unable to parse", "points beyond retention policy", "max-values-per-tag"];
    match known.iter().find(|k| head.starts_with(**k)) {
        Some(k) => (*k).into(),
        None if status == StatusCode::PAYLOAD_TOO_LARGE => "request too large".into(),
        None => format!("http {}", status.as_u16()),
    }
}

/// `dropped=N` of a partial write.
fn partial_dropped(message: &str) -> Option<u64> {
    let at = message.rfind("dropped=")?;
    let digits: String = message[at + 8..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// reqwest here is built without a TLS provider of its own (see NOTES-ECOSYSTEM.md): install ring before the
/// first client, as the sources crate does, so that the sink works in any binary or test that uses it.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_of_influxdb_errors() {
        let partial = "partial write: field type conflict: input field \"value\" on measurement \"cpu/usage\" is \
                       type float, already exists as type integer dropped=3";
        assert_eq!(cause_of(StatusCode::BAD_REQUEST, partial), "field type conflict");
        assert_eq!(partial_dropped(partial), Some(3));
        let parse = "unable to parse 'x y': invalid field format";
        assert_eq!(cause_of(StatusCode::BAD_REQUEST, parse), "unable to parse");
        assert_eq!(partial_dropped(parse), None);
        assert_eq!(
            cause_of(StatusCode::BAD_REQUEST, "partial write: points beyond retention policy dropped=2"),
            "points beyond retention policy"
        );
        assert_eq!(cause_of(StatusCode::UNAUTHORIZED, "authorization failed"), "unauthorized");
        assert_eq!(cause_of(StatusCode::NOT_FOUND, "nope"), "http 404");
    }

    #[test]
    fn error_bodies() {
        assert_eq!(error_message(r#"{"error":"database not found: \"k8s\""}"#), "database not found: \"k8s\"");
        assert_eq!(error_message(r#"{"results":[{"statement_id":0,"error":"boom"}]}"#), "boom");
        assert_eq!(error_message(r#"{"results":[{"statement_id":0}]}"#), "");
        assert_eq!(error_message("plain\n"), "plain");
    }

    #[test]
    fn endpoints_keep_a_proxy_prefix() {
        let u = url::Url::parse("http://h:8086/influx/").unwrap();
        assert_eq!(endpoint(&u, "write").as_str(), "http://h:8086/influx/write");
        let u = url::Url::parse("http://h:8086").unwrap();
        assert_eq!(endpoint(&u, "query").as_str(), "http://h:8086/query");
        assert_eq!(quote_ident("k8s-\"x\""), r#""k8s-\"x\"""#);
    }
}
