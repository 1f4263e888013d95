//! The HTTP side every HTTP sink shares: the client (timeouts, `insecure` TLS, an extra CA), gzip bodies, bodies
//! cut by points and bytes, and one place that turns an answer or a transport error into a [`Verdict`] and counts
//! it. A sink then says how to encode, where to send, and what its server's error messages mean.
//!
//! Heapster's sinks had no HTTP timeout (a hung server hung the sink) and dropped the batch on any error. Here every
//! request has a deadline, and every failure is sorted into "try again" (server down, slow, overloaded: the batch
//! stays queued) and "retrying will not help" (the server refused the data or the credentials), the same way for
//! every sink.

use crate::SinkError;
use crate::self_metrics::SinkCounters;
use reqwest::StatusCode;
use std::borrow::Cow;
use std::path::PathBuf;
use std::time::Duration;

/// How a sink's HTTP client is built, from the sink's options.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Deadline of connecting and of each whole request.
    pub timeout: Duration,
    /// Skip certificate checks, for self-signed test servers.
    pub insecure: bool,
    /// A PEM file of CA certificates trusted besides the system's.
    pub ca_file: Option<PathBuf>,
    /// What a user sets to trust the server's CA, and to skip checks, for TLS errors (`ca_file=`,
    /// `insecuressl=true`).
    pub trust_hint: &'static str,
    pub insecure_hint: &'static str,
}

impl ClientSettings {
    /// The settings of a sink whose options are `timeout=`, `insecure=true` and `ca_file=` (the names the sinks
    /// without an option set of Heapster's to keep use).
    pub fn new(timeout: Duration, insecure: bool, ca_file: Option<PathBuf>) -> Self {
        ClientSettings { timeout, insecure, ca_file, trust_hint: "ca_file=", insecure_hint: "insecure=true" }
    }
}

/// A reqwest client as `settings` say, with heapster's user agent and crypto provider.
pub fn client(settings: &ClientSettings) -> Result<reqwest::Client, String> {
    let mut builder = heapster_net::client_builder(settings.timeout).tls_danger_accept_invalid_certs(settings.insecure);
    if let Some(path) = &settings.ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| format!("{}: no PEM certificate in it", path.display()))?;
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(|e| format!("cannot build an HTTP client: {}", heapster_net::error_chain(&e)))
}

/// A request body gzip-compressed for `Content-Encoding: gzip`. Level 1 (fastest): metric text repeats its names
/// and labels on every line, so even the fastest level shrinks it many times (see `benches/influxdb_encode.rs`);
/// higher levels cost much more CPU for a few per cent less.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 8 + 64), flate2::Compression::fast());
    enc.write_all(body).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

/// Encoded lines cut into request bodies of at most `max_points` lines and `max_bytes` bytes (a single longer
/// line gets a body of its own), so that one batch never makes a request the server refuses as too large.
#[derive(Debug)]
pub struct Bodies {
    max_points: usize,
    max_bytes: usize,
    done: Vec<String>,
    body: String,
    in_body: usize,
    points: usize,
}

impl Bodies {
    pub fn new(max_points: usize, max_bytes: usize) -> Self {
        Bodies {
            max_points: max_points.max(1),
            max_bytes,
            done: Vec::new(),
            body: String::new(),
            in_body: 0,
            points: 0,
        }
    }

    /// Adds one line: `write` appends it (without its newline) to the body being filled.
    pub fn line(&mut self, write: impl FnOnce(&mut String)) {
        let start = self.body.len();
        write(&mut self.body);
        self.body.push('\n');
        self.points += 1;
        self.in_body += 1;
        if self.body.len() > self.max_bytes && start > 0 {
            // This line would take the body past its size: the body closes before it.
            let line = self.body.split_off(start);
            self.done.push(std::mem::replace(&mut self.body, line));
            self.in_body = 1;
        }
        if self.in_body >= self.max_points || self.body.len() >= self.max_bytes {
            self.done.push(std::mem::take(&mut self.body));
            self.in_body = 0;
        }
    }

    /// Lines added so far.
    pub fn points(&self) -> usize {
        self.points
    }

    /// The bodies, each newline-terminated.
    pub fn finish(mut self) -> Vec<String> {
        if !self.body.is_empty() {
            self.done.push(self.body);
        }
        self.done
    }
}

/// A server's answer: its status and its body as text.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub text: String,
}

/// What one request came to, as the manager will act on it. `cause` is a short, bounded label (it ends up in
/// self-metrics), never the server's free text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx.
    Accepted,
    /// Worth sending again later: the server is down, slow or overloaded.
    Retry { cause: Cow<'static, str> },
    /// Sending again will not help: the server refused the data or the credentials.
    Reject { cause: Cow<'static, str> },
}

impl Verdict {
    /// The reading of a status every HTTP API shares: 5xx, 408 and 429 are worth a retry, other 4xx are not.
    pub fn of_status(status: StatusCode) -> Verdict {
        let cause: &'static str = match status {
            s if s.is_success() => return Verdict::Accepted,
            s if s.is_server_error() => return Verdict::Retry { cause: "server_error".into() },
            StatusCode::TOO_MANY_REQUESTS => return Verdict::Retry { cause: "too_many_requests".into() },
            StatusCode::REQUEST_TIMEOUT => return Verdict::Retry { cause: "timeout".into() },
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => "unauthorized",
            StatusCode::PAYLOAD_TOO_LARGE => "request too large",
            s => return Verdict::Reject { cause: format!("http {}", s.as_u16()).into() },
        };
        Verdict::Reject { cause: cause.into() }
    }

    /// A request that got no answer: always worth a retry, as the server may be back by then.
    pub fn of_error(e: &reqwest::Error) -> Verdict {
        let cause = if heapster_net::tls_failure(e).is_some() {
            "tls"
        } else if e.is_timeout() {
            "timeout"
        } else if e.is_connect() {
            "connect"
        } else {
            "transport"
        };
        Verdict::Retry { cause: cause.into() }
    }

    /// The `outcome` label of `heapster_sink_<kind>_requests`: `ok`, the cause of a retry, or `rejected` (the
    /// cause of a rejection is counted with the points it cost).
    pub fn outcome(&self) -> &str {
        match self {
            Verdict::Accepted => "ok",
            Verdict::Retry { cause } => cause,
            Verdict::Reject { .. } => "rejected",
        }
    }
}

/// One sink's HTTP client with its counters: every request it sends is judged and counted here.
pub struct HttpClient {
    client: reqwest::Client,
    counters: SinkCounters,
    /// The server as messages name it (`InfluxDB at http://h:8086/`).
    server: String,
    settings: ClientSettings,
}

impl HttpClient {
    /// `server` names the server in messages. Fails when the client cannot be built (a CA file that cannot be
    /// read), which is a start-up error.
    pub fn new(settings: ClientSettings, counters: SinkCounters, server: String) -> Result<Self, String> {
        Ok(HttpClient { client: client(&settings)?, counters, server, settings })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn counters(&self) -> &SinkCounters {
        &self.counters
    }

    /// Sends `request`; `judge` may read the answer the service's way (a missing database, a missing bucket) and
    /// return its own verdict, else the status decides ([`Verdict::of_status`]). The verdict is counted once, by
    /// outcome. No answer at all (down, timeout, TLS) is a [`SinkError::Retry`] naming the cause.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
        judge: impl FnOnce(&Answer) -> Option<Verdict>,
    ) -> Result<(Verdict, Answer), SinkError> {
        self.send_for_bytes(request, judge).await.map(|(verdict, answer, _)| (verdict, answer))
    }

    /// [`HttpClient::send`], also handing back the answer's body as it came: a protobuf answer (OTLP's
    /// `ExportMetricsServiceResponse`) does not survive being read as text.
    pub async fn send_for_bytes(
        &self,
        request: reqwest::RequestBuilder,
        judge: impl FnOnce(&Answer) -> Option<Verdict>,
    ) -> Result<(Verdict, Answer, Vec<u8>), SinkError> {
        let answer = match request.send().await {
            Ok(resp) => {
                let status = resp.status();
                resp.bytes()
                    .await
                    .map(|body| (Answer { status, text: String::from_utf8_lossy(&body).into_owned() }, body.to_vec()))
            }
            Err(e) => Err(e),
        };
        let answer = answer.map_err(|e| {
            let verdict = Verdict::of_error(&e);
            self.counters.request(verdict.outcome());
            let why = match heapster_net::tls_failure(&e) {
                Some(tls) => heapster_net::describe_tls(&tls, self.settings.trust_hint, self.settings.insecure_hint),
                None => heapster_net::error_chain(&e),
            };
            SinkError::Retry(format!("{}: {}: {why}", self.server, verdict.outcome()))
        })?;
        let (answer, body) = answer;
        let verdict = judge(&answer).unwrap_or_else(|| Verdict::of_status(answer.status));
        self.counters.request(verdict.outcome());
        Ok((verdict, answer, body))
    }
}

/// What the HTTP sinks' tests share.
#[cfg(test)]
pub mod test_support {
    /// One request as a fake server saw it: the request line and headers (lower-cased), and the body.
    pub struct Seen {
        pub head: String,
        pub body: Vec<u8>,
    }

    /// A server on a free 127.0.0.1 port that answers one request per entry of `answers` (status, JSON body),
    /// closing each connection, and hands back what it saw.
    pub fn fake_server(answers: Vec<(u16, &'static str)>) -> (String, std::thread::JoinHandle<Vec<Seen>>) {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for (status, answer) in answers {
                let (mut conn, _) = listener.accept().unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let n = conn.read(&mut chunk).unwrap();
                    assert!(n > 0, "connection closed before the request's head");
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                while buf.len() < head_end + length {
                    let n = conn.read(&mut chunk).unwrap();
                    assert!(n > 0, "connection closed before the request's body");
                    buf.extend_from_slice(&chunk[..n]);
                }
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{answer}",
                    answer.len()
                );
                conn.write_all(reply.as_bytes()).unwrap();
                seen.push(Seen { head, body: buf[head_end..head_end + length].to_vec() });
            }
            seen
        });
        (url, server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn bodies_are_cut_by_points_and_bytes() {
        let cut = |max_points, max_bytes, lines: &[&str]| {
            let mut b = Bodies::new(max_points, max_bytes);
            for l in lines {
                b.line(|s| s.push_str(l));
            }
            assert_eq!(b.points(), lines.len());
            b.finish()
        };
        assert_eq!(cut(2, usize::MAX, &["a", "b", "c"]), ["a\nb\n", "c\n"]);
        // 8 bytes at most: "aaa\nbbb\n" fits exactly, "ccc\n" opens the next.
        assert_eq!(cut(10, 8, &["aaa", "bbb", "ccc"]), ["aaa\nbbb\n", "ccc\n"]);
        // A line longer than the bound alone in its body, whatever comes before or after.
        assert_eq!(cut(10, 6, &["a", "long line", "b"]), ["a\n", "long line\n", "b\n"]);
        assert!(cut(10, 6, &[]).is_empty());
    }

    #[test]
    fn statuses_sort_into_retry_or_reject() {
        let v = |s: u16| Verdict::of_status(StatusCode::from_u16(s).unwrap());
        assert_eq!(v(204), Verdict::Accepted);
        for (s, cause) in [(500, "server_error"), (503, "server_error"), (429, "too_many_requests"), (408, "timeout")] {
            assert_eq!(v(s), Verdict::Retry { cause: cause.into() }, "{s}");
            assert_eq!(v(s).outcome(), cause);
        }
        for (s, cause) in [(400, "http 400"), (401, "unauthorized"), (403, "unauthorized"), (413, "request too large")]
        {
            assert_eq!(v(s), Verdict::Reject { cause: cause.into() }, "{s}");
            assert_eq!(v(s).outcome(), "rejected");
        }
    }

    fn settings(ca_file: Option<PathBuf>) -> ClientSettings {
        ClientSettings {
            timeout: Duration::from_secs(5),
            insecure: false,
            ca_file,
            trust_hint: "ca_file=",
            insecure_hint: "insecure=true",
        }
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let e = client(&settings(Some("/nonexistent/ca.pem".into()))).unwrap_err();
        assert!(e.contains("cannot read the CA file /nonexistent/ca.pem"), "{e}");
        let path = std::env::temp_dir().join(format!("heapster-sinks-ca-{}.pem", std::process::id()));
        std::fs::write(&path, "not a certificate").unwrap();
        let e = client(&settings(Some(path.clone()))).unwrap_err();
        assert!(e.contains("no PEM certificate"), "{e}");
        let _ = std::fs::remove_file(&path);
    }

    #[tokio::test]
    async fn no_answer_is_a_retry_named_by_its_cause_and_counted() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/write", listener.local_addr().unwrap());
        drop(listener);
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = crate::SinkMetrics::register(&mut registry);
        let kind = metrics.for_kind("test");
        let http = HttpClient::new(settings(None), kind.sink("t"), "Test at here".into()).unwrap();
        let e = http.send(http.client().post(&url), |_| None).await.unwrap_err();
        assert!(matches!(&e, SinkError::Retry(m) if m.starts_with("Test at here: connect: ")), "{e:?}");
        let labels = crate::self_metrics::SinkOutcomeLabels { sink: "t".into(), outcome: "connect".into() };
        assert_eq!(kind.requests.get_or_create(&labels).get(), 1);
    }

    /// An https server on 127.0.0.1 with a certificate of a CA made on the spot, answering `204` to every request
    /// on one connection each; and the CA's PEM.
    async fn https_server() -> (String, String) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let cert =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&key, &issuer).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key.serialize_der().try_into().unwrap())
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/write", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A handshake the client refused ends here.
                    let Ok(mut tls) = acceptor.accept(conn).await else { return };
                    let mut buf = [0u8; 4096];
                    let _ = tls.read(&mut buf).await;
                    let _ = tls.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n").await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        (url, ca.pem())
    }

    #[tokio::test]
    async fn tls_is_trusted_through_the_extra_ca_or_insecure_and_else_a_retry_naming_the_options() {
        let (url, ca_pem) = https_server().await;
        let kind = crate::SinkMetrics::detached().for_kind("test");
        let send = |settings: ClientSettings| {
            let (url, http) = (url.clone(), HttpClient::new(settings, kind.sink("t"), "Test".into()).unwrap());
            async move { http.send(http.client().post(url), |_| None).await.map(|(v, _)| v) }
        };
        let e = send(settings(None)).await.unwrap_err();
        assert!(
            matches!(&e, SinkError::Retry(m) if m.starts_with("Test: tls: certificate not trusted (set ca_file= or insecure=true)")),
            "{e:?}"
        );
        let ca_file = std::env::temp_dir().join(format!("heapster-sinks-test-ca-{}.pem", std::process::id()));
        std::fs::write(&ca_file, ca_pem).unwrap();
        assert_eq!(send(settings(Some(ca_file.clone()))).await.unwrap(), Verdict::Accepted);
        let _ = std::fs::remove_file(&ca_file);
        assert_eq!(send(ClientSettings { insecure: true, ..settings(None) }).await.unwrap(), Verdict::Accepted);
        let outcome = |o: &str| {
            kind.requests
                .get_or_create(&crate::self_metrics::SinkOutcomeLabels { sink: "t".into(), outcome: o.into() })
                .get()
        };
        assert_eq!((outcome("tls"), outcome("ok")), (1, 2));
    }
}
