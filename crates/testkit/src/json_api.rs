//! The HTTP side of the strict fakes of JSON APIs no server of installs here (Honeycomb, Librato, Hawkular
//! Metrics): a server on a free 127.0.0.1 port on its own thread, bodies gunzipped as `Content-Encoding: gzip`
//! says (any other encoding refused), HTTP basic credentials decoded, and every request handed, whole, to the
//! fake's own handler with its state. Each fake says what its API accepts; this only carries requests to it.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// One request as the fake's handler sees it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// The path, percent-encoded as sent.
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// The body, gunzipped.
    pub body: Vec<u8>,
    /// Whether it came gzip-compressed.
    pub gzipped: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `Authorization: Basic` user and password.
    pub fn basic_auth(&self) -> Option<(String, String)> {
        let v = self.header("authorization")?.strip_prefix("Basic ")?;
        let raw = base64::engine::general_purpose::STANDARD.decode(v.trim()).ok()?;
        let (user, pass) = std::str::from_utf8(&raw).ok()?.split_once(':')?;
        Some((user.to_owned(), pass.to_owned()))
    }

    /// Whether `Content-Type` is JSON (with or without a charset).
    pub fn is_json(&self) -> bool {
        self.header("content-type").is_some_and(|c| c.split(';').next().unwrap().trim() == "application/json")
    }
}

/// A handler's answer: status and JSON body.
pub type Reply = (u16, String);

type Handler<S> = dyn Fn(&mut S, &Request) -> Reply + Send + Sync;

/// A fake's server with its state `S`, until dropped.
pub struct JsonApi<S> {
    addr: SocketAddr,
    state: Arc<Mutex<S>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<S: Send + 'static> JsonApi<S> {
    /// Starts serving at once; `handle` answers every request (after gunzipping) with the state locked.
    pub fn start(name: &str, state: S, handle: impl Fn(&mut S, &Request) -> Reply + Send + Sync + 'static) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free 127.0.0.1 port");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(state));
        let handler: Arc<Handler<S>> = Arc::new(handle);
        let (s, h) = (state.clone(), handler);
        let app = axum::Router::new()
            .fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (s, h) = (s.clone(), h.clone());
                async move { serve(&s, &*h, method, uri, headers, body) }
            })
            .layer(axum::extract::DefaultBodyLimit::max(64 << 20));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("{name}-fake"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    tokio::select! {
                        r = axum::serve(listener, app) => r.expect("the fake's server failed"),
                        _ = stopped => {}
                    }
                });
            })
            .unwrap();
        JsonApi { addr, state, stop: Some(stop), thread: Some(thread) }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<S> Drop for JsonApi<S> {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve<S>(
    state: &Mutex<S>,
    handle: &Handler<S>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (body, gzipped) = match headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()) {
        None => (body.to_vec(), false),
        Some(e) if e.eq_ignore_ascii_case("gzip") => {
            let mut out = Vec::new();
            if flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out).is_err() {
                return reply((400, r#"{"error":"request body is not valid gzip"}"#.into()));
            }
            (out, true)
        }
        Some(e) => return reply((415, format!(r#"{{"error":"unsupported content encoding {e:?}"}}"#))),
    };
    let request =
        Request { method, path: uri.path().to_owned(), query: uri.query().map(str::to_owned), headers, body, gzipped };
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    reply(handle(&mut s, &request))
}

fn reply((status, body): Reply) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `{"error":"<message>"}` with the message escaped.
pub fn error(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}
