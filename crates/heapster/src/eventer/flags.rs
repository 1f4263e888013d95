//! `heapster eventer` flags: the original eventer's (`--source`, `--sink`, `--frequency`, `--healthz-ip`,
//! `--healthz-port`, glog's), in the same Go-flag syntax as heapster's, plus what makes delivery exactly once.

use crate::flags::{normalize_args, parse_duration};
use clap::{CommandFactory, FromArgMatches, Parser};
use heapster_model::SpecUri;
use std::path::PathBuf;
use std::time::Duration;

/// heapster eventer: ships every Kubernetes event to its sinks, compatible with Heapster's eventer.
#[derive(Debug, Parser)]
#[command(name = "eventer", version, about = "heapster eventer: ships every Kubernetes event to its sinks, compatible with Heapster's eventer.", long_about = None, max_term_width = 110, args_override_self = true)]
pub struct EventerFlags {
    /// Where to read events: kubernetes[:URL][?options] (the options of heapster's kubernetes source). Exactly one.
    #[arg(long = "source", value_name = "kubernetes[:URL][?opts]", value_parser = parse_uri)]
    pub sources: Vec<SpecUri>,

    /// Where to ship events: KEY[:URL][?options], repeatable. --help lists the kinds.
    #[arg(long = "sink", value_name = "KEY[:URL][?opts]", value_parser = parse_uri)]
    pub sinks: Vec<SpecUri>,

    /// How often events are pushed to the sinks (5s to 3m).
    #[arg(long = "frequency", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub frequency: Duration,

    /// Address of /healthz and /metrics.
    #[arg(long = "healthz_ip", value_name = "IP", default_value = "0.0.0.0")]
    pub healthz_ip: std::net::IpAddr,

    /// Port of /healthz and /metrics.
    #[arg(long = "healthz_port", value_name = "PORT", default_value_t = 8084)]
    pub healthz_port: u16,

    /// A directory where the resource version each sink holds is kept, so that a restart resumes where the last
    /// run stopped instead of losing what happened in between. Off when not given: a restart starts from now,
    /// as Heapster's eventer did.
    #[arg(long = "events_state_dir", value_name = "DIR")]
    pub events_state_dir: Option<PathBuf>,

    /// Ship only while holding a coordination.k8s.io/v1 Lease, so that two replicas never both ship. Where the
    /// service account may not use Leases, the eventer says so once and ships alone, as Heapster's did.
    #[arg(long = "leader_elect", value_name = "BOOL", default_value_t = true, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub leader_elect: bool,

    /// The Lease: NAMESPACE/NAME. The namespace defaults to the pod's (POD_NAMESPACE) or kube-system.
    #[arg(long = "leader_elect_lease", value_name = "[NS/]NAME", default_value = "heapster-eventer")]
    pub leader_elect_lease: String,

    /// How long a Lease holds without renewal before another replica may take it.
    #[arg(long = "leader_elect_lease_duration", value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,

    /// How often the Lease is renewed (and how often a waiting replica tries to take it).
    #[arg(long = "leader_elect_retry_period", value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub lease_retry: Duration,

    /// Log filter (tracing-subscriber syntax: info, debug, heapster=trace). --v sets it as glog's verbosity did.
    #[arg(long = "log_level", value_name = "FILTER")]
    log_level_given: Option<String>,

    #[arg(skip = String::new())]
    pub log_level: String,

    #[arg(skip)]
    pub compat: crate::compat_flags::Compat,
}

fn parse_uri(s: &str) -> Result<SpecUri, String> {
    s.parse()
}

/// The original's bounds: faster than 5 s is needless load, slower than /healthz's 3 minutes reads as dead.
const MIN_FREQUENCY: Duration = Duration::from_secs(5);
pub const MAX_SCRAPE_DELAY: Duration = Duration::from_secs(180);

impl EventerFlags {
    /// Parses the arguments after `eventer` (or of a binary started as `eventer`), exiting with one line on a bad one.
    pub fn from_args(args: Vec<String>) -> EventerFlags {
        Self::try_parse_args(normalize_args(args)).unwrap_or_else(|e| e.exit())
    }

    pub fn try_parse_args(args: Vec<String>) -> Result<EventerFlags, clap::Error> {
        let cmd = Self::command_with_kinds();
        let matches = cmd.clone().try_get_matches_from(args)?;
        let mut flags = EventerFlags::from_arg_matches(&matches)?;
        (flags.compat, flags.log_level) =
            crate::compat_flags::Compat::read(&cmd, &matches, flags.log_level_given.as_ref())?;
        Ok(flags)
    }

    fn command_with_kinds() -> clap::Command {
        crate::compat_flags::add_to(EventerFlags::command()).mut_arg("sinks", |a| {
            let short = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            a.long_help(format!("{short}\n\nKinds and their options ([default]):{}", heapster_sinks::events::help()))
        })
    }

    /// What clap cannot check: the original's rules, in its words where it had them.
    pub fn validate(&self) -> Result<(), String> {
        if self.frequency < MIN_FREQUENCY {
            return Err(format!("frequency needs to be no less than {MIN_FREQUENCY:?}, supplied {:?}", self.frequency));
        }
        if self.frequency > MAX_SCRAPE_DELAY {
            return Err(format!(
                "frequency needs to be no greater than {MAX_SCRAPE_DELAY:?}, supplied {:?}",
                self.frequency
            ));
        }
        if self.sources.len() != 1 {
            return Err(format!(
                "--source: exactly one is needed (kubernetes:URL?options), {} given",
                self.sources.len()
            ));
        }
        if self.lease_retry >= self.lease_duration {
            return Err("--leader_elect_retry_period must be shorter than --leader_elect_lease_duration".into());
        }
        Ok(())
    }

    /// The Lease's namespace and name.
    pub fn lease(&self) -> (String, String) {
        match self.leader_elect_lease.split_once('/') {
            Some((ns, name)) => (ns.to_owned(), name.to_owned()),
            None => {
                let ns = std::env::var("POD_NAMESPACE").ok().filter(|n| !n.is_empty());
                (ns.unwrap_or_else(|| "kube-system".into()), self.leader_elect_lease.clone())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<EventerFlags, String> {
        let argv = std::iter::once("eventer").chain(args.iter().copied()).map(String::from);
        let flags = EventerFlags::try_parse_args(normalize_args(argv)).map_err(|e| e.to_string())?;
        flags.validate()?;
        Ok(flags)
    }

    /// The eventer's manifest in Heapster's deploy/ and the addon manifests.
    #[test]
    fn the_originals_manifest_flags_parse() {
        let f = parse(&[
            "--source=kubernetes:''",
            "--sink=gcl",
            "--sink=influxdb:http://monitoring-influxdb:8086",
            "--frequency=1m",
            "--healthz-port=8085",
            "--healthz-ip=127.0.0.1",
            "--logtostderr",
            "--v=2",
        ])
        .unwrap();
        assert_eq!(f.sinks.len(), 2);
        assert_eq!(f.frequency, Duration::from_secs(60));
        assert_eq!(f.healthz_port, 8085);
        assert_eq!(f.log_level, "info,heapster=debug");
        assert!(f.leader_elect);
        assert_eq!(parse(&["--source=kubernetes"]).unwrap().frequency, Duration::from_secs(30));
    }

    #[test]
    fn the_originals_bounds_are_kept() {
        assert_eq!(
            parse(&["--source=kubernetes", "--frequency=1s"]).unwrap_err(),
            "frequency needs to be no less than 5s, supplied 1s"
        );
        assert!(parse(&["--source=kubernetes", "--frequency=4m"]).unwrap_err().contains("no greater than 180s"));
        assert!(parse(&[]).unwrap_err().contains("exactly one"));
        assert!(!parse(&["--source=kubernetes", "--leader-elect=false"]).unwrap().leader_elect);
    }

    #[test]
    fn the_lease_defaults_to_the_pods_namespace() {
        let f = parse(&["--source=kubernetes", "--leader_elect_lease=monitoring/ev"]).unwrap();
        assert_eq!(f.lease(), ("monitoring".to_owned(), "ev".to_owned()));
    }
}
