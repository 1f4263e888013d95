//! The statsd daemon (`statsd`, npm package `statsd`, Etsy's reference implementation) for the statsd sink: it
//! takes datagrams (`name:value|type`) on a UDP port, and its management port answers what it aggregated.

use crate::{Probe, Server, free_port};
use std::io::{BufRead as _, BufReader, Write as _};
use std::time::Duration;

/// One statsd without backends, flushing once an hour, so that what it received stays readable through the
/// management interface for the whole test; stopped and removed on drop.
pub struct Statsd {
    _server: Server,
    /// The UDP port metrics go to.
    pub port: u16,
    /// The TCP management port.
    pub mgmt_port: u16,
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
        Statsd { _server: server.start([conf], Probe::Tcp(mgmt_port)), port, mgmt_port }
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
