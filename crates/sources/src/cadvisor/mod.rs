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
use heapster_model::options::{ConfigError, OptionSpec, Options};
use std::num::NonZeroU16;
use std::path::PathBuf;

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

/// The options of `--source=cadvisor:...`, as `--help` lists them.
pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new(
        "hostsFile",
        "",
        "a JSON file listing the hosts ({\"Items\":[{\"Name\":..,\"IP\":..}]}), re-read on change",
    ),
    OptionSpec::new("cadvisorPort", "8080", "cAdvisor's port on every host"),
    OptionSpec::new("standalone", "false", "scrape this host's cAdvisor on 127.0.0.1 only"),
    OptionSpec::new("hostname", "", "this host's name in standalone mode (default: the system's)"),
    OptionSpec::new("cadvisorTimeout", "10s", "deadline of one request"),
    OptionSpec::new("cadvisorMaxBody", "64Mi", "largest document read from one host (~38 kB a container)"),
    OptionSpec::new(
        "cadvisorBytesInFlight",
        "128Mi",
        "bytes of documents held at once across all hosts, beyond the first MiB of each",
    ),
];

/// The default largest cAdvisor document: the subcontainers list carries each container's recent stats (the
/// recorded one, `fixtures/cadvisor_v1.3_subcontainers_k8s1.2.json`, 38 kB a container), so a host with 110 pods
/// (about 300 containers with the pause containers and system cgroups) sends about 11 MB; 64 MiB is six times
/// that.
pub const DEFAULT_MAX_BODY: usize = 64 << 20;

/// The default bytes-in-flight budget: two documents of the largest default size.
pub const DEFAULT_BYTES_IN_FLIGHT: usize = 128 << 20;

impl CadvisorOptions {
    /// Parses `cadvisor:external?hostsFile=...`, `cadvisor:?standalone=true` or `cadvisor:standalone`, rejecting
    /// options it does not know so that a typo is not silently ignored.
    pub fn parse(uri: &SpecUri) -> Result<Self, ConfigError> {
        Self::from_options(&Options::new("--source", uri, OPTIONS)?)
    }

    /// As [`Self::parse`], from options already checked against [`OPTIONS`].
    pub fn from_options(o: &Options) -> Result<Self, ConfigError> {
        let target = o.uri().target.as_str();
        let hosts_file = o.non_empty("hostsFile").map(PathBuf::from);
        let standalone = o.bool("standalone", target == "standalone")?;
        let port = o.parse::<NonZeroU16>("cadvisorPort", NonZeroU16::new(DEFAULT_PORT).expect("not 0"), "a port")?;
        let defaults = ClientConfig::default();
        let (max_body, bytes_in_flight) = crate::http::body_limits(
            o,
            ("cadvisorMaxBody", "cadvisorBytesInFlight"),
            (DEFAULT_MAX_BODY, DEFAULT_BYTES_IN_FLIGHT),
        )?;
        let client = ClientConfig {
            timeout: o.duration("cadvisorTimeout", defaults.timeout)?,
            max_body,
            bytes_in_flight,
            ..defaults
        };
        let hosts = match (target, standalone, hosts_file) {
            ("external" | "", false, Some(hosts_file)) => Hosts::External { hosts_file },
            ("external", _, None) => return Err(o.error(format!("cadvisor:external needs hostsFile=PATH; {USAGE}"))),
            ("" | "standalone", true, None) => Hosts::Standalone {
                hostname: o
                    .non_empty("hostname")
                    .map(str::to_owned)
                    .unwrap_or_else(|| rustix::system::uname().nodename().to_string_lossy().into_owned()),
            },
            (_, true, Some(_)) => {
                return Err(o.error(format!("standalone=true and hostsFile exclude each other; {USAGE}")));
            }
            (other, _, _) => return Err(o.error(format!("{other:?} is not a cAdvisor mode; {USAGE}"))),
        };
        Ok(CadvisorOptions { hosts, port: port.get(), client })
    }
}

#[cfg(test)]
mod tests;
