//! The statsd daemon (`statsd`, npm package `statsd`, Etsy's reference implementation) for the statsd sink: it
//! takes datagrams (`name:value|type`) on a UDP port, and its management port answers what it aggregated.
//! [`Statsd::start_with`] also flushes every second to a carbon-cache (its graphite backend) and to a file of
//! JSON that [`Statsd::flushed`] reads.

use crate::{Probe, Server, free_port};
use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::time::Duration;

/// How [`Statsd::start_with`] sets the daemon up.
#[derive(Debug, Clone, Default)]
pub struct StatsdSetup {
    /// The carbon plaintext port its graphite backend writes to (`stats.gauges.<name>`), if any.
    pub graphite_port: Option<u16>,
    /// statsd's `keyNameSanitize: false`: names kept as received (an influxstatsd `name,tag=v` keeps its commas)
    /// instead of `/` becoming `-` and anything but letters, digits and `_-.;=` being dropped.
    pub raw_names: bool,
}

/// What statsd held at its last flush.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Flush {
    /// Gauges by name (statsd keeps a gauge until a new value comes).
    pub gauges: BTreeMap<String, f64>,
    /// Lines statsd refused as malformed since it started.
    pub bad_lines: f64,
    /// Lines (metrics) received since it started.
    pub metrics_received: f64,
    /// Datagrams received since it started.
    pub packets_received: f64,
}

/// A statsd backend (a module with `init`, as statsd's own are) that writes each flush's gauges, and counts summed
/// over flushes (statsd zeroes counters at every flush), to the file in `config.jsonFile`, replaced whole.
const JSON_BACKEND: &str = r#"const fs = require('fs');
exports.init = function (startup, config, events) {
  let bad = 0, received = 0, packets = 0;
  events.on('flush', function (ts, metrics) {
    bad += metrics.counters['statsd.bad_lines_seen'] || 0;
    received += metrics.counters['statsd.metrics_received'] || 0;
    packets += metrics.counters['statsd.packets_received'] || 0;
    const out = JSON.stringify({
      gauges: metrics.gauges, bad_lines: bad, metrics_received: received, packets_received: packets,
    });
    fs.writeFileSync(config.jsonFile + '.tmp', out);
    fs.renameSync(config.jsonFile + '.tmp', config.jsonFile);
  });
  return true;
};
"#;

/// One statsd without backends, flushing once an hour, so that what it received stays readable through the
/// management interface for the whole test; stopped and removed on drop.
pub struct Statsd {
    _server: Server,
    /// The UDP port metrics go to.
    pub port: u16,
    /// The TCP management port.
    pub mgmt_port: u16,
    /// Where the JSON backend writes, when started with [`Statsd::start_with`].
    json_file: Option<PathBuf>,
}

impl Statsd {
    /// Starts statsd on free ports and waits until the management port accepts (it opens after the UDP one).
    pub fn start() -> Statsd {
        let server = Server::new(&["statsd"], "the npm package statsd (npm install -g statsd)");
        let (port, mgmt_port) = (free_port(), free_port());
        let config = format!(
            "{{\n  address: \"127.0.0.1\",\n  port: {port},\n  mgmt_address: \"127.0.0.1\",\n  mgmt_port: {mgmt_port},\n  \
             backends: [],\n  flushInterval: 3600000\n}}\n"
        );
        let conf = server.dir().join("statsd.js");
        std::fs::write(&conf, config).unwrap();
        Statsd { _server: server.start([conf], Probe::Tcp(mgmt_port)), port, mgmt_port, json_file: None }
    }

    /// Starts statsd flushing every second to the JSON backend (read with [`Statsd::flushed`]) and, as `setup`
    /// says, to carbon.
    pub fn start_with(setup: &StatsdSetup) -> Statsd {
        let server = Server::new(&["statsd"], "the npm package statsd (npm install -g statsd)");
        let (port, mgmt_port) = (free_port(), free_port());
        let backend = server.dir().join("json_backend.js");
        std::fs::write(&backend, JSON_BACKEND).unwrap();
        let json_file = server.dir().join("flush.json");
        let mut backends = vec![format!("{:?}", backend.display().to_string())];
        let mut extra = String::new();
        if let Some(g) = setup.graphite_port {
            backends.push("\"./backends/graphite\"".into());
            extra.push_str(&format!("  graphiteHost: \"127.0.0.1\",\n  graphitePort: {g},\n"));
        }
        let config = format!(
            "{{\n  address: \"127.0.0.1\",\n  port: {port},\n  mgmt_address: \"127.0.0.1\",\n  mgmt_port: {mgmt_port},\n  \
             backends: [{}],\n  flushInterval: 1000,\n  keyNameSanitize: {},\n  jsonFile: {:?},\n{extra}}}\n",
            backends.join(", "),
            !setup.raw_names,
            json_file.display().to_string(),
        );
        let conf = server.dir().join("statsd.js");
        std::fs::write(&conf, config).unwrap();
        let server = server.start([conf], Probe::Tcp(mgmt_port));
        Statsd { _server: server, port, mgmt_port, json_file: Some(json_file) }
    }

    /// What statsd held at its last flush to the JSON backend; `None` before the first flush.
    pub fn flushed(&self) -> Option<Flush> {
        let file = self.json_file.as_ref().expect("started with Statsd::start_with");
        let text = std::fs::read_to_string(file).ok()?;
        Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", file.display())))
    }

    /// `host:port` of the UDP receiver, as a statsd sink is configured.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// One management command (`counters`, `gauges`, `timers`, `stats`): its answer up to the closing `END`.
    pub fn mgmt(&self, command: &str) -> String {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", self.mgmt_port)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        conn.write_all(format!("{command}\n").as_bytes()).unwrap();
        let mut out = String::new();
        for line in BufReader::new(conn).lines() {
            let line = line.unwrap_or_else(|e| panic!("statsd {command}: {e}; so far: {out}"));
            if line == "END" {
                break;
            }
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}
