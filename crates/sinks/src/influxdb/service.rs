//! The HTTP side of the InfluxDB sink: `/write` with line protocol (or `/api/v2/write` for InfluxDB 2.x/3.x) and
//! `CREATE DATABASE` when a 1.x database is missing. The client, gzip and the retry-or-reject verdict are
//! [`crate::util::http`]'s; what is InfluxDB's own is here: its URLs and credentials, the answers that mean "make
//! the database again" or "the bucket is not made yet", and the cause and `dropped=N` of a rejection, reported in
//! InfluxDB's own words and counted per cause.

use super::config::{Api, InfluxdbConfig};
use crate::SinkError;
use crate::self_metrics::SinkCounters;
use crate::util::http::{self, Answer, ClientSettings, HttpClient, Verdict};
use reqwest::StatusCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The verdict cause of a write to a 1.x database that does not exist (any more).
const DATABASE_NOT_FOUND: &str = "database_not_found";
/// The verdict cause of a write to a 2.x/3.x bucket or organisation that does not exist (yet).
const BUCKET_NOT_FOUND: &str = "bucket_not_found";

/// One InfluxDB server (1.x, or 2.x/3.x through `/api/v2/write`), as seen by one sink.
pub struct Transport {
    http: HttpClient,
    config: InfluxdbConfig,
    write_url: url::Url,
    /// The sink's name, for logs.
    name: String,
    /// Set once `CREATE DATABASE` answered; cleared by a "database not found" so that a database dropped
    /// mid-run is made again instead of failing every write (Heapster reset its connection for the same reason).
    /// Always set with the 2.x/3.x API, which creates nothing.
    db_ready: AtomicBool,
}

impl Transport {
    /// Builds the HTTP client. Fails only when TLS cannot be set up, which is a start-up error.
    pub fn new(config: InfluxdbConfig, name: String, counters: SinkCounters) -> Result<Self, String> {
        let http = HttpClient::new(client_settings(&config), counters, format!("InfluxDB at {}", config.url))?;
        let write_url = write_url(&config);
        let db_ready = AtomicBool::new(matches!(config.api, Api::V2 { .. }));
        Ok(Transport { http, config, write_url, name, db_ready })
    }

    /// The same transport writing timestamps in `precision` (`ns`, `u`, `ms`, `s`) instead of milliseconds: the
    /// event sink keys its points to the nanosecond.
    pub fn with_precision(mut self, precision: &str) -> Self {
        let pairs: Vec<(String, String)> = self
            .write_url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "precision" { precision.to_owned() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        self.write_url.query_pairs_mut().clear().extend_pairs(pairs);
        self
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
                let r = r.unwrap_or_else(|e| Err(SinkError::Retry(format!("write task failed: {e}"))));
                if let Err(e) = r {
                    // "Try again" wins over "rejected": the batch must be written again either way.
                    worst = match (worst, e) {
                        (Some(SinkError::Retry(w)), _) => Some(SinkError::Retry(w)),
                        (_, e) => Some(e),
                    };
                }
            }
        }
        worst.map_or(Ok(()), Err)
    }

    /// One POST to `/write` (or `/api/v2/write`); on 1.x, makes the database again and retries once if InfluxDB
    /// says it is gone.
    async fn write(&self, body: String) -> Result<(), SinkError> {
        // Every line ends in a newline, so this counts points without walking the lines.
        let lines = body.bytes().filter(|b| *b == b'\n').count() as u64;
        // Compressed once, whatever the number of attempts.
        let payload = if self.config.gzip { http::gzip(body.as_bytes()) } else { body.into_bytes() };
        for attempt in 0..2 {
            let request = self.request(self.write_url.clone(), payload.clone(), self.config.gzip);
            let (verdict, answer) = self.http.send(request, |a| self.judge_write(a)).await?;
            let (status, message) = (answer.status, error_message(&answer.text));
            match (verdict, &self.config.api) {
                (Verdict::Accepted, _) => {
                    self.http.counters().written(lines);
                    return Ok(());
                }
                (Verdict::Retry { cause }, _) if cause == DATABASE_NOT_FOUND && attempt == 0 => {
                    tracing::warn!(sink = %self.name, "database {:?} not found: creating it again", self.config.db);
                    self.db_ready.store(false, Ordering::SeqCst);
                    self.ensure_db().await?;
                }
                (Verdict::Retry { cause }, _) if cause == DATABASE_NOT_FOUND => break,
                (Verdict::Retry { cause }, Api::V2 { bucket, .. }) if cause == BUCKET_NOT_FOUND => {
                    // Heapster does not make buckets (they belong to an organisation and get their retention where
                    // they are made), but one made by an operator or a deployment job a little later should get
                    // the data: keep the batch and try again.
                    return Err(SinkError::Retry(format!(
                        "InfluxDB answered {status}: {message} (create bucket {bucket:?}, e.g. influx bucket create \
                         --name {bucket} --org <org>; batches are kept and retried meanwhile)"
                    )));
                }
                (Verdict::Retry { .. }, _) => {
                    return Err(SinkError::Retry(format!("InfluxDB answered {status}: {message}")));
                }
                (Verdict::Reject { cause }, _) => return Err(self.rejected(status, &cause, &message, lines)),
            }
        }
        Err(SinkError::Retry(format!("database {:?} vanished again right after being created", self.config.db)))
    }

    /// InfluxDB's reading of a failed write, where it differs from the status alone: a missing 1.x database or
    /// 2.x bucket is worth a retry, and a rejection's cause is named from InfluxDB's message.
    fn judge_write(&self, answer: &Answer) -> Option<Verdict> {
        if answer.status.is_success() {
            return None;
        }
        let message = error_message(&answer.text);
        match (&self.config.api, Verdict::of_status(answer.status)) {
            (Api::V2 { .. }, _) if answer.status == StatusCode::NOT_FOUND => {
                Some(Verdict::Retry { cause: BUCKET_NOT_FOUND.into() })
            }
            (Api::V1, _) if message.contains("database not found") => {
                Some(Verdict::Retry { cause: DATABASE_NOT_FOUND.into() })
            }
            (_, Verdict::Reject { cause }) => Some(Verdict::Reject { cause: known_cause(&message).unwrap_or(cause) }),
            _ => None,
        }
    }

    /// Counts and words a rejected write: the points InfluxDB dropped by `cause`, and those of a partial write
    /// that it did store.
    fn rejected(&self, status: StatusCode, cause: &str, message: &str, lines: u64) -> SinkError {
        // A partial write names how many points it dropped; anything else rejected the whole body.
        let dropped = partial_dropped(message).unwrap_or(lines);
        let counters = self.http.counters();
        counters.rejected(cause, dropped);
        let written = lines.saturating_sub(dropped);
        if written > 0 {
            counters.written(written);
        }
        let hint = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if self.config.api == Api::V1 => " (check user= and pw=)",
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => " (check token=: it needs write access to the bucket)",
            StatusCode::PAYLOAD_TOO_LARGE => " (lower batch_points=)",
            _ => "",
        };
        SinkError::Reject(format!("InfluxDB rejected {dropped} of {lines} points ({cause}){hint}: {status}: {message}"))
    }

    /// `CREATE DATABASE` with its default retention policy named `default`, as Heapster made it (queries and
    /// continuous queries that name `"default"` keep working), with the configured duration, once; InfluxDB
    /// answers success if it already exists with the same options. Heapster ignored `retention` on a fresh
    /// server; here it is the policy's duration.
    async fn ensure_db(&self) -> Result<(), SinkError> {
        if self.db_ready.load(Ordering::SeqCst) || self.config.api != Api::V1 {
            return Ok(());
        }
        let mut q = format!("CREATE DATABASE {} WITH", super::historical::ident(&self.config.db));
        if let Some(d) = &self.config.retention {
            q.push_str(&format!(" DURATION {d}"));
        }
        q.push_str(" NAME \"default\"");
        let mut url = endpoint(&self.config.url, "query");
        url.query_pairs_mut().append_pair("q", &q);
        let (verdict, answer) = self.http.send(self.request(url, Vec::new(), false), |_| None).await?;
        let (status, message) = (answer.status, error_message(&answer.text));
        match verdict {
            Verdict::Retry { .. } => {
                return Err(SinkError::Retry(format!("{q}: InfluxDB answered {status}: {message}")));
            }
            Verdict::Reject { cause } if cause == "unauthorized" => {
                // A user without admin rights cannot create databases; the database may exist anyway (made by an
                // admin). Writes tell: "database not found" comes back here.
                tracing::warn!(sink = %self.name, "{q}: {status}: {message}; writing to the database as it is");
            }
            Verdict::Reject { .. } => {
                return Err(SinkError::Reject(format!("{q}: InfluxDB answered {status}: {message}")));
            }
            // Most often "retention policy conflicts with an existing policy": the database exists with another
            // duration. Writing works; changing a user's retention behind their back would not be ours to do.
            Verdict::Accepted if !message.is_empty() => {
                tracing::warn!(sink = %self.name, "{q}: {message}; writing to the existing database");
            }
            Verdict::Accepted => tracing::info!(sink = %self.name, "{q}: done"),
        }
        self.db_ready.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// One POST with the API's credentials; `gzipped` says that `body` is compressed.
    fn request(&self, url: url::Url, body: Vec<u8>, gzipped: bool) -> reqwest::RequestBuilder {
        let mut req = self.http.client().post(url).body(body);
        if gzipped {
            req = req.header(reqwest::header::CONTENT_ENCODING, "gzip");
        }
        match &self.config.api {
            Api::V1 if !self.config.user.is_empty() => {
                req = req.basic_auth(&self.config.user, Some(&self.config.password));
            }
            Api::V1 | Api::V2 { token: None, .. } => {}
            Api::V2 { token: Some(token), .. } => {
                // The config checked that the token is printable ASCII, which a header value always takes.
                let mut value = reqwest::header::HeaderValue::from_str(&format!("Token {token}"))
                    .expect("token checked by the config");
                value.set_sensitive(true);
                req = req.header(reqwest::header::AUTHORIZATION, value);
            }
        }
        req
    }
}

/// `heapster doctor`'s request.
impl Transport {
    /// Whether the sink names no user of its own: none, or Heapster's default `root`/`root`.
    fn default_credentials(&self) -> bool {
        let c = &self.config;
        c.user.is_empty() || (c.user == "root" && c.password == "root")
    }

    /// 1.x: `SHOW DATABASES` with the sink's credentials (reachable, credentials taken, database there or to be
    /// made); 2.x/3.x: `/ping` (the token is only checked by a write, which this must not make).
    pub async fn check(&self) -> crate::SinkCheck {
        use crate::SinkCheck;
        let base = &self.config.url;
        let v1 = self.config.api == Api::V1;
        let url = if v1 {
            let mut u = endpoint(base, "query");
            u.query_pairs_mut().append_pair("q", "SHOW DATABASES");
            u
        } else {
            endpoint(base, "ping")
        };
        let mut req = self.http.client().get(url);
        if v1 && !self.config.user.is_empty() {
            req = req.basic_auth(&self.config.user, Some(&self.config.password));
        }
        let response = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                if let Some(tls) = heapster_net::tls_failure(&e) {
                    return SinkCheck::Fail {
                        problem: format!("InfluxDB at {base}: {}", heapster_net::describe_tls(&tls, "SSL_CERT_FILE", "insecuressl=true")),
                        fix: "give the server a certificate this host trusts (SSL_CERT_FILE=CA bundle), or add insecuressl=true to --sink=influxdb:...".into(),
                    };
                }
                return SinkCheck::Fail {
                    problem: format!("InfluxDB at {base} not reachable: {}", heapster_net::error_chain(&e)),
                    fix: format!(
                        "start InfluxDB at {base}, or correct the URL in --sink=influxdb:URL (host, port, http/https)"
                    ),
                };
            }
        };
        let status = response.status();
        let version = response
            .headers()
            .get("x-influxdb-version")
            .and_then(|v| v.to_str().ok())
            .map(|v| format!("InfluxDB {v}"))
            .unwrap_or_else(|| "InfluxDB".into());
        let text = response.text().await.unwrap_or_default();
        let message = error_message(&text);
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let (user, db) = (&self.config.user, &self.config.db);
            let fix = if self.default_credentials() {
                format!(
                    "the server requires authentication: add user=NAME&pw=PASSWORD of an InfluxDB user with WRITE \
                     on {db} (ALL PRIVILEGES to let heapster create it) to --sink=influxdb:..."
                )
            } else {
                format!(
                    "correct user= and pw= in --sink=influxdb:... (the user {user:?} and its password), or create \
                     the user: CREATE USER \"{user}\" WITH PASSWORD '...'; GRANT WRITE ON \"{db}\" TO \"{user}\""
                )
            };
            return SinkCheck::Fail {
                problem: format!("{version} at {base} refused the credentials ({status}: {message})"),
                fix,
            };
        }
        if !status.is_success() {
            return SinkCheck::Fail {
                problem: format!("{version} at {base} answered {status}: {message}"),
                fix: "check that the URL of --sink=influxdb:URL is InfluxDB's HTTP API (1.x; for 2.x/3.x give \
                      token= and bucket=)"
                    .into(),
            };
        }
        if !v1 {
            return SinkCheck::Ok(format!(
                "{version} at {base} answers /ping (the token is checked by the first write)"
            ));
        }
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let db = &self.config.db;
        let exists = doc["results"][0]["series"][0]["values"]
            .as_array()
            .is_some_and(|rows| rows.iter().any(|r| r[0].as_str() == Some(db)));
        let who = if self.default_credentials() {
            "no credentials needed (Heapster's default root/root sent)".to_owned()
        } else {
            format!("user {} accepted", self.config.user)
        };
        let database =
            if exists { format!("database {db} exists") } else { format!("database {db} made at the first write") };
        SinkCheck::Ok(format!("{version} at {base}: {who}, {database}"))
    }
}

/// The HTTP client settings of the sink and of the historical source: per-request timeout, `insecuressl`.
pub(crate) fn client_settings(config: &InfluxdbConfig) -> ClientSettings {
    ClientSettings {
        timeout: config.timeout,
        insecure: config.insecure_ssl,
        ca_file: None,
        trust_hint: "SSL_CERT_FILE",
        insecure_hint: "insecuressl=true",
    }
}

/// `/write?db=&precision=ms` (1.x) or `/api/v2/write?org=&bucket=&precision=ms` (2.x/3.x).
fn write_url(config: &InfluxdbConfig) -> url::Url {
    match &config.api {
        Api::V1 => {
            let mut u = endpoint(&config.url, "write");
            u.query_pairs_mut().append_pair("db", &config.db).append_pair("precision", "ms");
            u
        }
        Api::V2 { org, bucket, .. } => {
            let mut u = endpoint(&config.url, "api/v2/write");
            {
                let mut q = u.query_pairs_mut();
                if let Some(org) = org {
                    q.append_pair("org", org);
                }
                q.append_pair("bucket", bucket).append_pair("precision", "ms");
            }
            u
        }
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

/// The `error` of InfluxDB's JSON answer (1.x: `{"error": ...}` or `{"results":[{"error": ...}]}`; 2.x:
/// `{"code": ..., "message": ...}`), or the text.
fn error_message(text: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return text.trim().chars().take(500).collect();
    };
    let e = v["error"]
        .as_str()
        .or_else(|| v["results"][0]["error"].as_str())
        .or_else(|| v["message"].as_str())
        .unwrap_or_default();
    e.chars().take(500).collect()
}

/// A short, bounded name for why InfluxDB rejected points, when its message names one: `field type conflict`,
/// `unable to parse`, `points beyond retention policy`, `max-values-per-tag`. Other rejections keep the cause the
/// status gives (`unauthorized`, `request too large`, `http 400`).
fn known_cause(message: &str) -> Option<std::borrow::Cow<'static, str>> {
    // Looked for anywhere in the message: 1.x starts with the cause (`partial write: field type conflict: ...`),
    // 2.x wraps it (`failure writing points to database: partial write: ...`).
    let known = ["field type conflict", "unable to parse", "points beyond retention policy", "max-values-per-tag"];
    known.iter().find(|k| message.contains(**k)).map(|k| (*k).into())
}

/// `dropped=N` of a partial write.
fn partial_dropped(message: &str) -> Option<u64> {
    let at = message.rfind("dropped=")?;
    let digits: String = message[at + 8..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SinkMetrics;
    use crate::self_metrics::{self, SinkCauseLabels, SinkOutcomeLabels};
    use crate::util::http::test_support::fake_server;

    /// The cause a rejected write is counted under.
    fn cause_of(status: StatusCode, message: &str) -> String {
        match transport("influxdb:http://h").judge_write(&Answer { status, text: message.into() }) {
            Some(Verdict::Reject { cause }) => cause.into_owned(),
            v => panic!("{status} {message}: {v:?}"),
        }
    }

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
        let v2 = "failure writing points to database: partial write: points beyond retention policy dropped=4";
        assert_eq!(cause_of(StatusCode::BAD_REQUEST, v2), "points beyond retention policy");
        assert_eq!(partial_dropped(v2), Some(4));
    }

    #[test]
    fn error_bodies() {
        assert_eq!(error_message(r#"{"error":"database not found: \"k8s\""}"#), "database not found: \"k8s\"");
        assert_eq!(error_message(r#"{"results":[{"statement_id":0,"error":"boom"}]}"#), "boom");
        assert_eq!(error_message(r#"{"results":[{"statement_id":0}]}"#), "");
        assert_eq!(error_message("plain\n"), "plain");
        assert_eq!(
            error_message(r#"{"code":"not found","message":"bucket \"x\" not found"}"#),
            "bucket \"x\" not found"
        );
    }

    fn transport(sink: &str) -> Arc<Transport> {
        transport_counted(sink, &SinkMetrics::detached())
    }

    fn transport_counted(sink: &str, metrics: &SinkMetrics) -> Arc<Transport> {
        let config = InfluxdbConfig::from_uri(&sink.parse().unwrap()).unwrap();
        let name = format!("test:{sink}");
        Arc::new(Transport::new(config, name.clone(), metrics.for_kind("influxdb").sink(&name)).unwrap())
    }

    fn gunzip(b: &[u8]) -> String {
        use std::io::Read as _;
        let mut s = String::new();
        flate2::read::GzDecoder::new(b).read_to_string(&mut s).unwrap();
        s
    }

    const BODY: &str = "uptime,type=node value=5i 1700000000000\nmemory/usage,type=node value=7i 1700000000000\n";

    #[tokio::test]
    async fn the_2x_api_posts_gzip_with_the_token_and_creates_nothing() {
        let (url, server) = fake_server(vec![(204, "")]);
        let t = transport(&format!("influxdb:{url}?token=T0k%2Fen&org=acme&bucket=k8s"));
        t.write_all(vec![BODY.to_owned()]).await.unwrap();
        let seen = server.join().unwrap();
        assert_eq!(seen.len(), 1, "one write, no CREATE DATABASE");
        let head = &seen[0].head;
        assert!(head.starts_with("post /api/v2/write?org=acme&bucket=k8s&precision=ms http/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nauthorization: token t0k/en\r\n"), "{head}");
        assert!(head.contains("\r\ncontent-encoding: gzip\r\n"), "{head}");
        assert_eq!(gunzip(&seen[0].body), BODY);
    }

    #[tokio::test]
    async fn the_1x_api_creates_the_database_and_posts_plain_text_with_gzip_off() {
        let (url, server) = fake_server(vec![(200, r#"{"results":[{"statement_id":0}]}"#), (204, "")]);
        let t = transport(&format!("influxdb:{url}?db=k8s&gzip=false&user=u&pw=p"));
        t.write_all(vec![BODY.to_owned()]).await.unwrap();
        let seen = server.join().unwrap();
        let q = "post /query?q=create+database+%22k8s%22+with+name+%22default%22 ";
        assert!(seen[0].head.starts_with(q), "{}", seen[0].head);
        let head = &seen[1].head;
        assert!(head.starts_with("post /write?db=k8s&precision=ms http/1.1\r\n"), "{head}");
        // Basic auth u:p.
        assert!(head.contains("\r\nauthorization: basic dtpw\r\n"), "{head}");
        assert!(!head.contains("content-encoding"), "{head}");
        assert_eq!(seen[1].body, BODY.as_bytes());
    }

    #[tokio::test]
    async fn the_2x_api_sorts_errors_into_retry_or_report() {
        let (url, server) = fake_server(vec![
            (404, r#"{"code":"not found","message":"bucket \"k8s\" not found"}"#),
            (401, r#"{"code":"unauthorized","message":"unauthorized access"}"#),
            (
                400,
                r#"{"code":"invalid","message":"failure writing points to database: partial write: field type conflict: input field \"value\" on measurement \"uptime\" is type integer, already exists as type float dropped=1"}"#,
            ),
            (503, r#"{"code":"unavailable","message":"service unavailable"}"#),
        ]);
        let metrics = SinkMetrics::detached();
        let sink = format!("influxdb:{url}?token=t&bucket=k8s");
        let t = transport_counted(&sink, &metrics);
        let mut verdicts = Vec::new();
        for _ in 0..4 {
            verdicts.push(t.write_all(vec![BODY.to_owned()]).await.unwrap_err());
        }
        server.join().unwrap();
        let [missing, auth, conflict, busy] = &verdicts[..] else { unreachable!() };
        assert!(matches!(missing, SinkError::Retry(m) if m.contains("influx bucket create")), "{missing:?}");
        assert!(matches!(auth, SinkError::Reject(m) if m.contains("check token=")), "{auth:?}");
        assert!(
            matches!(conflict, SinkError::Reject(m) if m.contains("rejected 1 of 2 points (field type conflict)")),
            "{conflict:?}"
        );
        assert!(matches!(busy, SinkError::Retry(_)), "{busy:?}");
        // Counted on the test's own registry: the points each rejection cost, the partial write's stored point,
        // and every request by outcome.
        let kind = metrics.for_kind("influxdb");
        let name = format!("test:{sink}");
        let rejected = |cause: &str| {
            kind.points_rejected.get_or_create(&SinkCauseLabels { sink: name.clone(), cause: cause.into() }).get()
        };
        assert_eq!((rejected("unauthorized"), rejected("field type conflict")), (2, 1));
        assert_eq!(kind.points_written.get_or_create(&self_metrics::sink(&name)).get(), 1);
        let requests = |outcome: &str| {
            kind.requests.get_or_create(&SinkOutcomeLabels { sink: name.clone(), outcome: outcome.into() }).get()
        };
        assert_eq!([requests("bucket_not_found"), requests("rejected"), requests("server_error")], [1, 2, 1]);
    }

    #[test]
    fn endpoints_keep_a_proxy_prefix() {
        let u = url::Url::parse("http://h:8086/influx/").unwrap();
        assert_eq!(endpoint(&u, "write").as_str(), "http://h:8086/influx/write");
        let u = url::Url::parse("http://h:8086").unwrap();
        assert_eq!(endpoint(&u, "query").as_str(), "http://h:8086/query");
        let v2 = |sink: &str| write_url(&InfluxdbConfig::from_uri(&sink.parse().unwrap()).unwrap()).to_string();
        assert_eq!(v2("influxdb:http://h:8086/p/?bucket=b"), "http://h:8086/p/api/v2/write?bucket=b&precision=ms");
        assert_eq!(v2("influxdb:http://h?org=o&bucket=a+b"), "http://h/api/v2/write?org=o&bucket=a+b&precision=ms");
        assert_eq!(v2("influxdb:http://h?db=x"), "http://h/write?db=x&precision=ms");
        assert_eq!(crate::influxdb::historical::ident("k8s-\"x\""), r#""k8s-\"x\"""#);
    }
}
