//! A strict OTLP/HTTP metrics receiver for what a real one does not do on demand: refuse a request (400),
//! be overloaded (503, 429), or take a request and refuse part of it (`partial_success`), as the OTLP
//! specification's "OTLP/HTTP" section defines the answers. It holds requests to the spec's rules too: `POST
//! /v1/metrics` only (404), `Content-Type: application/x-protobuf` (415), `Content-Encoding` absent or `gzip`
//! (415 for others), a body that decodes as `ExportMetricsServiceRequest` (400 with a `google.rpc.Status`), and
//! the data model's rules a backend relies on: every metric named and holding data, every point timed, valued,
//! and starting no later than its time, attribute keys unique. It decodes with the sink's own proto definitions,
//! which the sink's tests against a real receiver pin to the published field numbers.

#[allow(dead_code, reason = "the fake reads the fields it checks; the sink uses the rest")]
#[path = "../../sinks/src/otlp/proto.rs"]
mod proto;

pub use proto::{
    Data, ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse, KeyValue,
    NumberDataPoint, Status,
};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use prost::Message as _;
use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// How the fake answers one of the next requests, instead of taking it.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// This status with a `google.rpc.Status` of this message; the request is not kept.
    Status(u16, String),
    /// 200 with `partial_success`: the request is kept, and this many of its points said refused.
    Partial { rejected: i64, message: String },
}

/// One request the fake took.
#[derive(Debug, Clone)]
pub struct Taken {
    pub content_encoding: Option<String>,
    pub request: ExportMetricsServiceRequest,
}

#[derive(Default)]
struct State {
    taken: Vec<Taken>,
    script: VecDeque<Reply>,
    /// Every request that reached the fake, taken or not.
    seen: usize,
    /// What the fake refused on its own (spec violations), in order.
    violations: Vec<String>,
}

/// The fake on a free 127.0.0.1 port, until dropped.
pub struct OtlpFake {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    _server: crate::AppThread,
}

impl OtlpFake {
    pub fn start() -> OtlpFake {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free 127.0.0.1 port");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let app = axum::Router::new()
            .fallback(handle)
            .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
            .with_state(state.clone());
        OtlpFake { addr, state, _server: crate::AppThread::serve("otlp-fake", listener, app) }
    }

    /// The base URL, `http://127.0.0.1:PORT`, as an exporter is given it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next requests with `replies`, in order, then takes requests again.
    pub fn reply_next(&self, replies: impl IntoIterator<Item = Reply>) {
        self.lock().script.extend(replies);
    }

    /// The requests taken so far (partial successes included), in order.
    pub fn taken(&self) -> Vec<Taken> {
        self.lock().taken.clone()
    }

    /// Requests that reached the fake so far, taken or not.
    pub fn seen(&self) -> usize {
        self.lock().seen
    }

    /// The fake's own refusals so far: which rule of the spec a request broke.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn answer(status: StatusCode, message: impl Into<Vec<u8>>) -> Response {
    let body = message.into();
    (status, [(header::CONTENT_TYPE, "application/x-protobuf")], body).into_response()
}

fn status(code: StatusCode, grpc_code: i32, message: String) -> Response {
    answer(code, Status { code: grpc_code, message }.encode_to_vec())
}

async fn handle(
    axum::extract::State(state): axum::extract::State<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    s.seen += 1;
    let header = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let checked = (|| {
        if method != Method::POST || uri.path() != "/v1/metrics" {
            return Err((StatusCode::NOT_FOUND, 5, format!("{method} {}: not an OTLP metrics endpoint", uri.path())));
        }
        let content_type = header(header::CONTENT_TYPE).unwrap_or_default();
        if content_type != "application/x-protobuf" {
            return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, 3, format!("content type {content_type:?}")));
        }
        let encoding = header(header::CONTENT_ENCODING);
        let raw = match encoding.as_deref() {
            None => body.to_vec(),
            Some("gzip") => {
                use std::io::Read as _;
                let mut raw = Vec::new();
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_end(&mut raw)
                    .map_err(|e| (StatusCode::BAD_REQUEST, 3, format!("gzip: {e}")))?;
                raw
            }
            Some(other) => return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, 3, format!("content encoding {other:?}"))),
        };
        let request = ExportMetricsServiceRequest::decode(raw.as_slice())
            .map_err(|e| (StatusCode::BAD_REQUEST, 3, format!("cannot decode ExportMetricsServiceRequest: {e}")))?;
        check(&request).map_err(|why| (StatusCode::BAD_REQUEST, 3, why))?;
        Ok(Taken { content_encoding: encoding, request })
    })();
    let taken = match checked {
        Ok(t) => t,
        Err((code, grpc_code, why)) => {
            s.violations.push(why.clone());
            return status(code, grpc_code, why);
        }
    };
    match s.script.pop_front() {
        Some(Reply::Status(code, message)) => status(StatusCode::from_u16(code).unwrap(), 14, message),
        Some(Reply::Partial { rejected, message }) => {
            s.taken.push(taken);
            let partial = ExportMetricsPartialSuccess { rejected_data_points: rejected, error_message: message };
            answer(StatusCode::OK, ExportMetricsServiceResponse { partial_success: Some(partial) }.encode_to_vec())
        }
        None => {
            s.taken.push(taken);
            answer(StatusCode::OK, ExportMetricsServiceResponse::default().encode_to_vec())
        }
    }
}

/// The data model's rules a backend relies on (see the module's doc).
fn check(request: &ExportMetricsServiceRequest) -> Result<(), String> {
    let unique = |attributes: &[KeyValue], what: &str| {
        let mut keys = HashSet::new();
        match attributes.iter().find(|kv| kv.key.is_empty() || !keys.insert(&kv.key)) {
            Some(kv) => Err(format!("{what}: attribute key {:?} empty or repeated", kv.key)),
            None => Ok(()),
        }
    };
    for rm in &request.resource_metrics {
        unique(rm.resource.as_ref().map_or(&[][..], |r| &r.attributes), "resource")?;
        for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
            if m.name.is_empty() {
                return Err("a metric without a name".into());
            }
            let points: &[NumberDataPoint] = match &m.data {
                Some(Data::Gauge(g)) => &g.data_points,
                Some(Data::Sum(s)) if s.aggregation_temporality == 0 => {
                    return Err(format!("{}: sum without aggregation temporality", m.name));
                }
                Some(Data::Sum(s)) => &s.data_points,
                None => return Err(format!("{}: no data", m.name)),
            };
            for p in points {
                unique(&p.attributes, &m.name)?;
                if p.time_unix_nano == 0 || p.value.is_none() {
                    return Err(format!("{}: a point without time or value", m.name));
                }
                if p.start_time_unix_nano > p.time_unix_nano {
                    return Err(format!("{}: a point starting after its time", m.name));
                }
            }
        }
    }
    Ok(())
}
