//! A real OTLP/HTTP receiver: `otelsink` of the PyPI package `oteltest` (OpenTelemetry's Python tester), which
//! parses `/v1/metrics` requests with the official generated protobuf classes (`opentelemetry-proto`). Its
//! command always listens on 4318 of every interface, so it is started through its own Python API
//! (`oteltest.sink.HttpSink`, which takes a port) on a free 127.0.0.1 port, with a handler that saves every
//! metrics request as the protobuf JSON mapping (`MessageToDict`: camelCase fields, 64-bit integers as strings,
//! enums by name) for the tests to read back.
//!
//! It answers 200 `OK` to whatever it could parse and drops the connection on what it could not (including gzip
//! bodies, which it does not decompress); the failure answers of the spec are the OTLP fake's
//! ([`crate::OtlpFake`]).

use crate::{Probe, Server, find_program, free_port};
use std::path::PathBuf;
use std::time::Duration;

/// oteltest's HTTP sink on a port of ours, saving each metrics request to `OUT/NNNNNN.json` (written whole, then
/// renamed, so a reader never sees half of one).
const SCRIPT: &str = r#"import http.server, json, logging, os, sys
from google.protobuf.json_format import MessageToDict
import oteltest.sink as sink
from oteltest.sink.handler import RequestHandler

port, out = int(sys.argv[1]), sys.argv[2]

class Loopback(http.server.HTTPServer):
    def __init__(self, address, handler):
        super().__init__(("127.0.0.1", address[1]), handler)

sink.HTTPServer = Loopback

class Save(RequestHandler):
    def __init__(self):
        self.n = 0
    def handle_metrics(self, request, headers):
        self.n += 1
        path = os.path.join(out, "%06d.json" % self.n)
        with open(path + ".tmp", "w") as f:
            json.dump({"headers": {k.lower(): v for k, v in headers.items()}, "request": MessageToDict(request)}, f)
        os.rename(path + ".tmp", path)
    def handle_logs(self, request, headers):
        pass
    def handle_trace(self, request, headers):
        pass

sink.HttpSink(Save(), logging.getLogger("otelsink"), port=port, daemon=False).start()
"#;

/// One metrics request as otelsink parsed it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Request headers, names lower-cased.
    pub headers: serde_json::Map<String, serde_json::Value>,
    /// The `ExportMetricsServiceRequest` in the protobuf JSON mapping.
    pub request: serde_json::Value,
}

/// otelsink on a free 127.0.0.1 port, until dropped.
pub struct Otelsink {
    _server: Server,
    pub port: u16,
    out: PathBuf,
}

impl Otelsink {
    pub fn start() -> Otelsink {
        if find_program(&["otelsink"]).is_none() {
            panic!("otelsink is not on the PATH: install the PyPI package oteltest (scripts/test does)");
        }
        let server = Server::new(&["python3"], "python3");
        let port = free_port();
        let script = server.dir().join("otelsink_json.py");
        std::fs::write(&script, SCRIPT).unwrap();
        let out = server.dir().join("requests");
        std::fs::create_dir(&out).unwrap();
        let args = [script.into_os_string(), port.to_string().into(), out.clone().into_os_string()];
        Otelsink { _server: server.start(args, Probe::Tcp(port)), port, out }
    }

    /// The base URL an OTLP exporter is given (`/v1/metrics` is added by the exporter).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every metrics request received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(f).unwrap();
                let mut v: serde_json::Value =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", f.display()));
                let headers = v["headers"].as_object().cloned().unwrap_or_default();
                Received { headers, request: v["request"].take() }
            })
            .collect()
    }

    /// Waits until `n` requests have been saved (otelsink answers before its handler's file is renamed into
    /// place only in theory, but a test should not depend on it) and returns them.
    pub fn wait_received(&self, n: usize) -> Vec<Received> {
        crate::wait(&format!("{n} requests at otelsink"), Duration::from_secs(10), || self.received().len() >= n);
        self.received()
    }
}
