//! Flags the original Heapster accepted that heapster does not need: glog's, the generic Kubernetes API server's
//! (Heapster 1.3+ embedded one for `--api-server`), and a few of its own. Nearly every Heapster manifest passes some
//! of them (`--v=2`, `--logtostderr`), so refusing them would stop a drop-in swap at the first line.
//!
//! Each is either mapped to its meaning here ([`Compat::log_filter`] for `--v`, `--max_procs` for the runtime's
//! threads, `--disable_export`, `--disable_metric_sink` read by `main`) or accepted with one start-up line saying it
//! has no effect, why, and what to use instead ([`Compat::notices`]). They are hidden from `-h` and listed under
//! their own heading in `--help`.

use clap::{Arg, ArgAction, ArgMatches, Command};

/// How a flag takes its value, as Go's flag packages did.
#[derive(Clone, Copy)]
enum Arity {
    /// `--flag` or `--flag=true|false` (pflag booleans never take a separate value).
    Bool,
    /// `--flag=V` or `--flag V`.
    Value,
}

/// Flags with no effect here: name (with `_`, as [`crate::flags::normalize_args`] spells them), arity, and why.
const IGNORED: &[(&str, Arity, &str)] = &[
    ("logtostderr", Arity::Bool, "heapster always logs to standard error"),
    ("alsologtostderr", Arity::Bool, "heapster always logs to standard error"),
    ("stderrthreshold", Arity::Value, "every log line goes to standard error; --log_level filters them"),
    ("log_dir", Arity::Value, "heapster writes no log files; it logs to standard error"),
    ("log_file", Arity::Value, "heapster writes no log files; it logs to standard error"),
    ("log_backtrace_at", Arity::Value, "heapster prints no stack traces on log lines"),
    ("vmodule", Arity::Value, "use --log_level with per-module filters, e.g. info,heapster_sources=debug"),
    ("log_flush_frequency", Arity::Value, "log lines are written at once"),
    ("api_server", Arity::Bool, "the resource metrics API is always served on --heapster_port"),
    ("secure_port", Arity::Value, "the resource metrics API is served on --heapster_port (https with --tls_cert)"),
    ("bind_address", Arity::Value, "use --listen_ip"),
    ("cert_dir", Arity::Value, "use --tls_cert and --tls_key"),
    ("tls_cert_file", Arity::Value, "use --tls_cert"),
    ("tls_private_key_file", Arity::Value, "use --tls_key"),
    ("tls_ca_file", Arity::Value, "use --tls_cert with the whole chain"),
    ("tls_sni_cert_key", Arity::Value, "use --tls_cert and --tls_key"),
    ("client_ca_file", Arity::Value, "use --tls_client_ca"),
    (
        "authentication_kubeconfig",
        Arity::Value,
        "TokenReviews go to the kubernetes source's API server (--authentication_token_webhook)",
    ),
    ("authentication_skip_lookup", Arity::Bool, "no authentication configuration is read from the cluster"),
    (
        "authorization_kubeconfig",
        Arity::Value,
        "SubjectAccessReviews go to the kubernetes source's API server (--authorization_webhook)",
    ),
    ("profiling", Arity::Bool, "no profiling endpoints are served"),
    ("contention_profiling", Arity::Bool, "no profiling endpoints are served"),
    ("enable_swagger_ui", Arity::Bool, "no Swagger UI is served"),
    ("public_address_override", Arity::Value, "nothing is advertised to the API server"),
];

/// Flags with a meaning here, read from the matches by [`Compat::from_matches`].
const MAPPED: &[(&str, Arity, &str)] = &[
    ("v", Arity::Value, "glog verbosity: 0-1 info, 2-4 heapster's debug lines, 5+ its trace (unless --log_level)"),
    ("max_procs", Arity::Value, "threads that run heapster's work; 0 or less: one per core"),
    ("disable_export", Arity::Bool, "do not serve /api/v1/metric-export and its schema"),
    ("disable_metric_sink", Arity::Bool, "keep no history: the store holds only the newest batch (for /healthz)"),
];

const HEADING: &str = "Accepted from Heapster's manifests";

/// Adds every flag of [`IGNORED`] and [`MAPPED`] to `cmd`, hidden from `-h`.
pub fn add_to(mut cmd: Command) -> Command {
    for &(name, arity, help) in MAPPED.iter().chain(IGNORED) {
        let help = if IGNORED.iter().any(|(n, ..)| *n == name) { format!("no effect: {help}") } else { help.into() };
        let arg = Arg::new(name).long(name).help(help).hide_short_help(true).help_heading(HEADING);
        cmd = cmd.arg(match arity {
            Arity::Bool => arg
                .value_name("BOOL")
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true")
                .value_parser(clap::builder::BoolishValueParser::new())
                .action(ArgAction::Set),
            Arity::Value => arg.value_name("VALUE").action(ArgAction::Append),
        });
    }
    cmd
}

/// What the compatibility flags asked for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Compat {
    /// `--v`, glog's verbosity.
    pub verbosity: Option<u8>,
    /// `--max_procs` when above zero: the runtime's worker threads.
    pub max_procs: Option<usize>,
    pub disable_export: bool,
    pub disable_metric_sink: bool,
    /// One line per flag given that has no effect here.
    pub notices: Vec<String>,
}

impl Compat {
    /// Reads the flags [`add_to`] added. Errors are one line naming the flag.
    pub fn from_matches(m: &ArgMatches) -> Result<Compat, String> {
        let last = |name: &str| m.get_many::<String>(name).and_then(|mut v| v.next_back().cloned());
        let verbosity = match last("v") {
            None => None,
            Some(v) => Some(v.parse::<u8>().map_err(|_| format!("--v={v:?}: expected a verbosity level like 2"))?),
        };
        let max_procs = match last("max_procs") {
            None => None,
            Some(v) => {
                let n: i64 = v.parse().map_err(|_| format!("--max_procs={v:?}: expected a whole number"))?;
                usize::try_from(n).ok().filter(|n| *n > 0)
            }
        };
        let flag = |name: &str| m.get_one::<bool>(name).copied().unwrap_or(false);
        let notices = IGNORED
            .iter()
            .filter(|(name, ..)| m.value_source(name) == Some(clap::parser::ValueSource::CommandLine))
            .map(|(name, _, why)| format!("--{name} has no effect in heapster-rs: {why}"))
            .collect();
        Ok(Compat {
            verbosity,
            max_procs,
            disable_export: flag("disable_export"),
            disable_metric_sink: flag("disable_metric_sink"),
            notices,
        })
    }

    /// Reads the compatibility flags of `matches` (errors in clap's form, for `cmd`) and the log filter that
    /// `--log_level` (when `given`), else `--v`, else `info` asks for. Shared by heapster's and the eventer's flags.
    pub fn read(cmd: &Command, matches: &ArgMatches, given: Option<&String>) -> Result<(Compat, String), clap::Error> {
        let compat =
            Compat::from_matches(matches).map_err(|e| cmd.clone().error(clap::error::ErrorKind::InvalidValue, e))?;
        let level = match (given, compat.log_filter()) {
            (Some(l), _) => l.clone(),
            (None, Some(v)) => v.to_owned(),
            (None, None) => "info".to_owned(),
        };
        Ok((compat, level))
    }

    /// The log filter `--v` stands for, when `--log_level` was not given.
    pub fn log_filter(&self) -> Option<&'static str> {
        Some(match self.verbosity? {
            0..=1 => "info",
            2..=4 => "info,heapster=debug",
            _ => "info,heapster=trace",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Compat, String> {
        let argv = std::iter::once("heapster").chain(args.iter().copied()).map(String::from);
        let m = add_to(Command::new("heapster"))
            .try_get_matches_from(crate::flags::normalize_args(argv))
            .map_err(|e| e.to_string())?;
        Compat::from_matches(&m)
    }

    /// Flags seen in Heapster's own manifests and the Kubernetes addon manifests.
    #[test]
    fn manifest_flags_are_accepted() {
        let c = parse(&[
            "--logtostderr",
            "--alsologtostderr=false",
            "--v=2",
            "--stderrthreshold=INFO",
            "--log_dir=/var/log",
            "--log-file=/var/log/heapster.log",
            "--vmodule=manager=4",
            "--api-server",
            "--secure-port",
            "6443",
            "--tls-cert-file=/srv/kubernetes/server.cert",
            "--tls-private-key-file=/srv/kubernetes/server.key",
            "--client-ca-file=/srv/kubernetes/ca.crt",
            "--bind-address=0.0.0.0",
            "--max_procs=2",
            "--disable_export",
        ])
        .unwrap();
        assert_eq!(c.verbosity, Some(2));
        assert_eq!(c.log_filter(), Some("info,heapster=debug"));
        assert_eq!(c.max_procs, Some(2));
        assert!(c.disable_export && !c.disable_metric_sink);
        let flags: Vec<&str> = c.notices.iter().map(|n| n.split_whitespace().next().unwrap()).collect();
        assert_eq!(
            flags,
            [
                "--logtostderr",
                "--alsologtostderr",
                "--stderrthreshold",
                "--log_dir",
                "--log_file",
                "--vmodule",
                "--api_server",
                "--secure_port",
                "--bind_address",
                "--tls_cert_file",
                "--tls_private_key_file",
                "--client_ca_file",
            ]
        );
        assert!(c.notices.iter().all(|n| n.contains("has no effect") && !n.contains('\n')));
    }

    #[test]
    fn nothing_given_means_nothing_changes() {
        let c = parse(&[]).unwrap();
        assert_eq!(c, Compat::default());
        assert_eq!(c.log_filter(), None);
        assert_eq!(parse(&["--max_procs=0"]).unwrap().max_procs, None, "0: one thread per core, as GOMAXPROCS");
        assert_eq!(parse(&["--v=7"]).unwrap().log_filter(), Some("info,heapster=trace"));
    }

    #[test]
    fn bad_values_are_one_line() {
        assert!(parse(&["--v=loud"]).unwrap_err().contains("--v=\"loud\""));
        assert!(parse(&["--max_procs=many"]).unwrap_err().contains("--max_procs"));
        assert!(parse(&["--logtostderr=maybe"]).is_err());
    }
}
