//! Graphite's carbon-cache (`carbon-cache`, Debian package `graphite-carbon`) for the Graphite sink: it takes the
//! plaintext protocol (`path value timestamp\n`) on a TCP port and writes one whisper file per metric path, read
//! back with `whisper-fetch` (Debian package `python3-whisper`, a dependency of graphite-carbon).

use crate::{Probe, Server, free_port};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One carbon-cache with its own storage, configured in its directory; stopped and removed on drop.
pub struct Carbon {
    server: Server,
    /// The plaintext (line) receiver's port.
    pub port: u16,
}

impl Carbon {
    /// Starts carbon-cache in the foreground on free ports and waits until all three accept.
    pub fn start() -> Carbon {
        let server = Server::new(&["carbon-cache"], "the Debian package graphite-carbon");
        let (port, pickle, query) = (free_port(), free_port(), free_port());
        let d = server.dir().display().to_string();
        // Every path below the directory; no throttling of creates or updates, so that a test sees its points
        // on disk within a second; one-second resolution, kept for a day; no tag database (graphite-web's, not here).
        let config = format!(
            "[cache]\nSTORAGE_DIR = {d}/storage/\nLOCAL_DATA_DIR = {d}/storage/whisper/\n\
             WHITELISTS_DIR = {d}/storage/lists/\nCONF_DIR = {d}/\nLOG_DIR = {d}/log/\nPID_DIR = {d}/\n\
             USER =\nMAX_CACHE_SIZE = inf\nMAX_UPDATES_PER_SECOND = inf\nMAX_CREATES_PER_MINUTE = inf\n\
             CACHE_WRITE_STRATEGY = sorted\nWHISPER_AUTOFLUSH = True\n\
             LINE_RECEIVER_INTERFACE = 127.0.0.1\nLINE_RECEIVER_PORT = {port}\nENABLE_UDP_LISTENER = False\n\
             PICKLE_RECEIVER_INTERFACE = 127.0.0.1\nPICKLE_RECEIVER_PORT = {pickle}\n\
             CACHE_QUERY_INTERFACE = 127.0.0.1\nCACHE_QUERY_PORT = {query}\n\
             LOG_LISTENER_CONN_SUCCESS = False\nENABLE_TAGS = False\n"
        );
        std::fs::write(server.dir().join("carbon.conf"), config).unwrap();
        std::fs::write(server.dir().join("storage-schemas.conf"), "[all]\npattern = .*\nretentions = 1s:1d\n").unwrap();
        let args = [
            format!("--config={d}/carbon.conf"),
            format!("--pidfile={d}/carbon-cache.pid"),
            "--debug".to_owned(),
            "start".to_owned(),
        ];
        Carbon { server: server.start(args, Probe::TcpAll(vec![port, pickle, query])), port }
    }

    /// `host:port` of the plaintext receiver, as a Graphite sink is configured.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Where carbon keeps `path`'s whisper file (dots are directories).
    pub fn whisper_file(&self, path: &str) -> PathBuf {
        self.server.dir().join("storage/whisper").join(format!("{}.wsp", path.replace('.', "/")))
    }

    /// The points carbon has written to disk for `path`: timestamp (s) -> value; empty while it has none.
    pub fn values(&self, path: &str) -> BTreeMap<i64, f64> {
        let file = self.whisper_file(path);
        if !file.exists() {
            return BTreeMap::new();
        }
        // The whole day the file keeps; empty slots are "None", dropped here (whisper-fetch's own --drop=nulls
        // shifts the timestamps of what it keeps).
        let out = std::process::Command::new("whisper-fetch")
            .arg(&file)
            .output()
            .expect("whisper-fetch (Debian package python3-whisper)");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (t, v) = l.split_once('\t')?;
                Some((t.trim().parse().ok()?, v.trim().parse().ok()?))
            })
            .collect()
    }
}
