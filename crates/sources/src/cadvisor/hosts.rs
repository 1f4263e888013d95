//! The hosts file of `--source=cadvisor:external?hostsFile=PATH`: which hosts to scrape, re-read when it changes.
//!
//! The format is Heapster's: `{"Items":[{"Name":"node-a","IP":"10.0.0.1"}, ...]}` (Go decoded it
//! case-insensitively, so `items`, `name` and `ip` are accepted too). Something else (a configuration manager, a
//! cron job) keeps it up to date; heapster checks its modification time, size and inode each round, which costs one
//! `stat`, and re-reads it when any changed. A file that cannot be read or parsed leaves the previous host list in
//! place, and heapster says so once per version of the file.

use super::client::CadvisorClient;
use super::source::CadvisorSource;
use crate::self_metrics::SourceMetrics;
use crate::{MetricsSource, MetricsSourceProvider};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// One line of the hosts file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Host {
    /// The node's name in keys and labels.
    #[serde(rename = "Name", alias = "name", default)]
    pub name: String,
    /// Address of its cAdvisor: an IP or a DNS name.
    #[serde(rename = "IP", alias = "ip", alias = "Ip")]
    pub ip: String,
}

#[derive(Deserialize)]
struct HostsFile {
    #[serde(rename = "Items", alias = "items")]
    items: Option<Vec<Host>>,
}

/// What the hosts file should look like, for error messages.
pub const EXAMPLE: &str = r#"{"Items":[{"Name":"node-a","IP":"10.0.0.1"}]}"#;

/// Parses a hosts file. A host without a name is named by its IP; an empty list is allowed (nothing to scrape
/// yet); a name listed twice is an error, since both would write the same metric sets.
pub fn parse_hosts(text: &[u8]) -> Result<Vec<Host>, String> {
    let file: HostsFile =
        serde_json::from_slice(text).map_err(|e| format!("not a hosts file ({e}); expected JSON like {EXAMPLE}"))?;
    let mut hosts = file.items.unwrap_or_default();
    let mut seen = BTreeSet::new();
    for (i, h) in hosts.iter_mut().enumerate() {
        h.ip = h.ip.trim().to_owned();
        h.name = h.name.trim().to_owned();
        if h.ip.is_empty() {
            return Err(format!("item {i} ({:?}) has no IP; expected JSON like {EXAMPLE}", h.name));
        }
        if h.name.is_empty() {
            h.name = h.ip.clone();
        }
        if !seen.insert(h.name.clone()) {
            return Err(format!("host {:?} is listed twice", h.name));
        }
    }
    Ok(hosts)
}

/// `http://IP:PORT`, with brackets around an IPv6 address.
pub fn base_url(ip: &str, port: u16) -> String {
    if ip.parse::<Ipv6Addr>().is_ok() { format!("http://[{ip}]:{port}") } else { format!("http://{ip}:{port}") }
}

/// Identifies one version of the file: a rewrite in place changes mtime or size, a replace-by-rename the inode.
type Stamp = (Option<SystemTime>, u64, u64);

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((m.modified().ok(), m.len(), m.ino()))
}

/// The sources listed in a hosts file, one [`CadvisorSource`] per host.
pub struct HostsProvider {
    path: PathBuf,
    port: u16,
    client: CadvisorClient,
    metrics: SourceMetrics,
    state: Mutex<State>,
}

struct State {
    /// The version the current list was read from, or the last version that failed (so it is reported once).
    seen: Option<Stamp>,
    /// By host name. Kept across re-reads when name and IP are unchanged, so cached machine info survives.
    sources: Vec<Arc<CadvisorSource>>,
}

impl HostsProvider {
    /// Reads the file once; unlike later re-reads, a file that is missing or malformed now is a start-up error,
    /// because there is no previous list to fall back on.
    pub fn new(path: PathBuf, port: u16, client: CadvisorClient, metrics: SourceMetrics) -> Result<Self, String> {
        let seen = stamp(&path).map_err(|e| format!("hosts file {}: {e}", path.display()))?;
        let text = std::fs::read(&path).map_err(|e| format!("hosts file {}: {e}", path.display()))?;
        let hosts = parse_hosts(&text).map_err(|e| format!("hosts file {}: {e}", path.display()))?;
        let p =
            HostsProvider { path, port, client, metrics, state: Mutex::new(State { seen: None, sources: Vec::new() }) };
        p.replace(&mut p.state.lock().unwrap(), hosts, seen);
        Ok(p)
    }

    /// Re-reads the file if it changed since it was last looked at.
    fn refresh(&self) {
        let mut state = self.state.lock().unwrap();
        let now = match stamp(&self.path) {
            Ok(s) => s,
            Err(e) => {
                // Stamp "missing" once, so the line is not repeated every round.
                let missing = (None, 0, 0);
                if state.seen != Some(missing) {
                    state.seen = Some(missing);
                    tracing::warn!(
                        "hosts file {}: {e}; still scraping the {} hosts read before. Restore the file to change the \
                         list",
                        self.path.display(),
                        state.sources.len()
                    );
                }
                return;
            }
        };
        if state.seen == Some(now) {
            return;
        }
        let parsed = std::fs::read(&self.path).map_err(|e| e.to_string()).and_then(|t| parse_hosts(&t));
        match parsed {
            Ok(hosts) => self.replace(&mut state, hosts, now),
            Err(e) => {
                state.seen = Some(now);
                tracing::warn!(
                    "hosts file {}: {e}; still scraping the {} hosts read before. Fix the file and heapster re-reads \
                     it within a round",
                    self.path.display(),
                    state.sources.len()
                );
            }
        }
    }

    fn replace(&self, state: &mut State, hosts: Vec<Host>, seen: Stamp) {
        let mut old: HashMap<(String, String), Arc<CadvisorSource>> =
            state.sources.drain(..).map(|s| ((s.host.clone(), s.base.clone()), s)).collect();
        let before = old.len();
        let mut kept = 0;
        for h in hosts {
            let base = base_url(&h.ip, self.port);
            let source = match old.remove(&(h.name.clone(), base.clone())) {
                Some(s) => {
                    kept += 1;
                    s
                }
                None => Arc::new(CadvisorSource::new(h.name, base, self.client.clone(), self.metrics.clone())),
            };
            state.sources.push(source);
        }
        state.seen = Some(seen);
        tracing::info!(
            "hosts file {}: {} cAdvisor hosts (was {before}: {} added, {} removed)",
            self.path.display(),
            state.sources.len(),
            state.sources.len() - kept,
            old.len()
        );
    }

    /// The hosts as last read: (name, base URL). For tests and logs.
    pub fn hosts(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().sources.iter().map(|s| (s.host.clone(), s.base.clone())).collect()
    }
}

impl MetricsSourceProvider for HostsProvider {
    fn sources(&self) -> Vec<Arc<dyn MetricsSource>> {
        self.refresh();
        self.state.lock().unwrap().sources.iter().map(|s| s.clone() as Arc<dyn MetricsSource>).collect()
    }
}
