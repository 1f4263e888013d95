//! cAdvisor's REST API (`/api/v1.3/subcontainers/`, `/api/v1.3/machine/`) as a metric source: Heapster's CoreOS
//! mode, for hosts that run cAdvisor (or another heapster, which serves the same endpoints) but no kubelet.
//!
//! - `--source=cadvisor:external?hostsFile=PATH&cadvisorPort=8080`: every host listed in the hosts file
//!   ([`hosts`]) is one source, named after the host; the file is re-read when it changes.
//! - `--source=cadvisor:?standalone=true&cadvisorPort=8080` (or `cadvisor:standalone`): this host's cAdvisor on
//!   127.0.0.1, named after this host (`hostname=NAME` overrides).
//!
//! The documents' types live in [`heapster_model::cadvisor`], shared with the HTTP API that serves them;
//! [`client`] fetches and decodes them, [`convert`] turns them into metric sets, [`source`] glues the two.

pub mod client;
pub mod convert;
pub mod hosts;
pub mod source;

pub use client::{CadvisorClient, FetchError, decode_machine, decode_subcontainers};
pub use convert::containers_to_sets;
pub use hosts::HostsProvider;
pub use source::CadvisorSource;

use crate::kubelet::ClientConfig;
use heapster_model::SpecUri;
use std::path::PathBuf;
use std::time::Duration;

/// cAdvisor's default port when run on its own (Heapster's default `cadvisorPort`, too).
pub const DEFAULT_PORT: u16 = 8080;

/// Which hosts a `cadvisor` source scrapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hosts {
    /// The hosts listed in this file.
    External { hosts_file: PathBuf },
    /// This host only, under this name.
    Standalone { hostname: String },
}

/// The options of one `--source=cadvisor:...`, checked once at start-up.
#[derive(Debug, Clone)]
pub struct CadvisorOptions {
    pub hosts: Hosts,
    /// cAdvisor's port on every host.
    pub port: u16,
    /// Deadline and body limit of each request.
    pub client: ClientConfig,
}

const USAGE: &str = "use cadvisor:external?hostsFile=PATH[&cadvisorPort=8080] or cadvisor:?standalone=true";

impl CadvisorOptions {
    /// Parses `cadvisor:external?hostsFile=...`, `cadvisor:?standalone=true` or `cadvisor:standalone`, rejecting
    /// options it does not know so that a typo is not silently ignored.
    pub fn parse(uri: &SpecUri) -> Result<Self, String> {
        let mut hosts_file = None;
        let mut standalone = uri.target == "standalone";
        let mut hostname = None;
        let mut port = DEFAULT_PORT;
        let mut client = ClientConfig::default();
        for (k, v) in &uri.options {
            match k.as_str() {
                "hostsFile" if !v.is_empty() => hosts_file = Some(PathBuf::from(v)),
                "cadvisorPort" => {
                    port = v.parse().ok().filter(|&p| p > 0).ok_or(format!("cadvisorPort={v:?} is not a port"))?
                }
                "standalone" => {
                    standalone = v.parse().map_err(|_| format!("standalone={v:?}: expected true or false"))?
                }
                "hostname" if !v.is_empty() => hostname = Some(v.clone()),
                "cadvisorTimeout" => {
                    client.timeout = humantime::parse_duration(v)
                        .ok()
                        .filter(|d| *d > Duration::ZERO)
                        .ok_or(format!("cadvisorTimeout={v:?} is not a duration like 10s"))?
                }
                _ => {
                    return Err(format!(
                        "unknown option {k:?}; the cadvisor source takes hostsFile, cadvisorPort, standalone, \
                         hostname and cadvisorTimeout"
                    ));
                }
            }
        }
        let hosts = match (uri.target.as_str(), standalone, hosts_file) {
            ("external" | "", false, Some(hosts_file)) => Hosts::External { hosts_file },
            ("external", _, None) => return Err(format!("cadvisor:external needs hostsFile=PATH; {USAGE}")),
            ("" | "standalone", true, None) => Hosts::Standalone {
                hostname: hostname.unwrap_or_else(|| rustix::system::uname().nodename().to_string_lossy().into_owned()),
            },
            (_, true, Some(_)) => return Err(format!("standalone=true and hostsFile exclude each other; {USAGE}")),
            (other, _, _) => return Err(format!("{other:?} is not a cAdvisor mode; {USAGE}")),
        };
        Ok(CadvisorOptions { hosts, port, client })
    }
}

#[cfg(test)]
mod tests;
