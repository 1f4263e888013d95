//! Command-line flags, in Heapster's syntax so that an old deployment manifest starts this binary unchanged:
//! `--flag=value` or `--flag value`, one or two leading dashes (Go's flag package took both), and `_` or `-`
//! inside names (`--metric_resolution` and `--metric-resolution` are the same flag).

use clap::{CommandFactory, FromArgMatches, Parser};
use heapster_model::SpecUri;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// heapster: container-cluster monitoring, compatible with Kubernetes Heapster.
///
/// With no flags it monitors this host (every cgroup is a container) and serves the model API and dashboard on
/// port 8082.
#[derive(Debug, Parser)]
#[command(name = "heapster", version, about, long_about = None, max_term_width = 110, args_override_self = true)]
pub struct Flags {
    /// Where to read metrics: KEY[:URL][?options], repeatable; default local. --help lists the kinds.
    #[arg(long = "source", value_name = "KEY[:URL][?opts]", value_parser = parse_uri)]
    pub sources: Vec<SpecUri>,

    /// Where to write metrics: KEY[:URL][?options], repeatable. --help lists the kinds.
    #[arg(long = "sink", value_name = "KEY[:URL][?opts]", value_parser = parse_uri)]
    pub sinks: Vec<SpecUri>,

    /// Where /api/v1/historical/... reads: influxdb:URL?db=NAME (the sink's syntax; the default schema only).
    /// The historical API answers 404 without it.
    #[arg(long = "historical_source", value_name = "influxdb:URL?opts", value_parser = parse_uri)]
    pub historical_source: Option<SpecUri>,

    /// How often to scrape every source (Go duration syntax: 15s, 1m). Default: 60s as Heapster's, or 15s when
    /// heapster only watches this host (no --source, or only local ones).
    #[arg(long = "metric_resolution", value_name = "DURATION", value_parser = parse_duration)]
    metric_resolution_given: Option<Duration>,

    /// `--metric_resolution`, or its default for the sources given; set by [`Flags::try_parse_args`].
    #[arg(skip = Duration::ZERO)]
    pub metric_resolution: Duration,

    /// The flags of the original that only need to be accepted, or mean something else here.
    #[arg(skip)]
    pub compat: crate::compat_flags::Compat,

    /// How much history the embedded store keeps for the APIs and the dashboard.
    #[arg(long = "store_window", value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
    pub store_window: Duration,

    /// Port of the HTTP APIs and dashboard.
    #[arg(long = "heapster_port", value_name = "PORT", default_value_t = 8082)]
    pub heapster_port: u16,

    /// Address to listen on; all interfaces when empty.
    #[arg(long = "listen_ip", value_name = "IP", default_value = "", value_parser = parse_listen_ip)]
    pub listen_ip: ListenIp,

    /// Deadline of one export to one sink; a sink that misses it loses only that batch, and it is counted.
    #[arg(long = "sink_export_data_timeout", value_name = "DURATION", default_value = "20s", value_parser = parse_duration)]
    pub sink_export_data_timeout: Duration,

    /// Batches each sink may fall behind before its oldest is dropped (and counted).
    #[arg(long = "sink_queue_batches", value_name = "N", default_value_t = 8)]
    pub sink_queue_batches: usize,

    /// A directory for a durable spool per sink: every batch is on disk until its sink took it, so an outage
    /// longer than --sink_queue_batches, or a restart of heapster, loses nothing. Off when not given.
    #[arg(long = "sink_buffer_dir", value_name = "DIR")]
    pub sink_buffer_dir: Option<PathBuf>,

    /// Bytes each sink's spool may hold (suffixes K, M, G, Ki, Mi, Gi); beyond, the oldest batches are dropped,
    /// counted and logged.
    #[arg(long = "sink_buffer_max_bytes", value_name = "BYTES", default_value = "1Gi", value_parser = parse_bytes)]
    pub sink_buffer_max_bytes: u64,

    /// Scrapes in flight at once; the rest wait (within the round's deadline).
    #[arg(long = "max_concurrent_scrapes", value_name = "N", default_value_t = 512)]
    pub max_concurrent_scrapes: usize,

    /// Store each round whole, after its roll-ups, as Heapster did. Off, with no sink: each node's container
    /// and pod sets are stored as soon as its scrape is processed, not held in the round's batch (RSS 0.557 ->
    /// 0.481 MiB per node at 5,000 nodes for the containers alone), so during a round's scrape the newest
    /// containers and pods are a round ahead of their node, their namespace and the cluster (two when the last
    /// round's processors run past the tick).
    #[arg(long = "store_whole_rounds", value_name = "BOOL", num_args = 0..=1, default_value = "false",
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub store_whole_rounds: bool,

    /// Joins a pod's `key:value` labels in the `labels` label.
    #[arg(long = "label_separator", value_name = "SEP", default_value = ",")]
    pub label_separator: String,

    /// A pod label key to leave out of the `labels` label; repeatable.
    #[arg(long = "ignore_label", value_name = "KEY")]
    pub ignore_label: Vec<String>,

    /// A pod label to copy into a label of its own (`name` or `newName=name`); repeatable.
    #[arg(long = "store_label", value_name = "[NEW=]KEY")]
    pub store_label: Vec<String>,

    /// Model and historical API values in their stored type (rates as fractions, `"value":677.70`) instead of
    /// Heapster's truncated `uint64`, which Go clients of the original expect.
    #[arg(long = "api_typed_values", value_name = "BOOL", num_args = 0..=1, default_value = "false",
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub api_typed_values: bool,

    /// What the `cluster` set sums with Kubernetes: `namespaces` (Heapster's: what pods use) or `nodes` (what the
    /// machines use, system containers included). Standalone, nodes are always summed.
    #[arg(long = "cluster_aggregation", value_name = "namespaces|nodes", default_value = "namespaces",
          value_parser = parse_cluster_aggregation)]
    pub cluster_aggregation: heapster_processors::ClusterFrom,

    /// Log filter, as RUST_LOG (error, warn, info, debug, or per module: heapster_sources=debug).
    /// Default: info, or what glog's --v stands for.
    #[arg(long = "log_level", value_name = "FILTER")]
    log_level_given: Option<String>,

    /// `--log_level`, else what `--v` stands for, else `info`; set by [`Flags::try_parse_args`].
    #[arg(skip)]
    pub log_level: String,

    /// Serve https with this PEM certificate (chain, server first); needs --tls_key. Plain http when not given.
    #[arg(long = "tls_cert", value_name = "PATH", value_parser = parse_path, help_heading = "Serving and access control")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls_cert.
    #[arg(long = "tls_key", value_name = "PATH", value_parser = parse_path, help_heading = "Serving and access control")]
    pub tls_key: Option<PathBuf>,

    /// Verify client certificates against this PEM CA bundle (needs --tls_cert); a verified certificate
    /// authenticates its subject CN, with its O fields as groups. Every path but /healthz then needs a certificate
    /// or a valid token. Read again when the file changes.
    #[arg(long = "tls_client_ca", value_name = "PATH", value_parser = parse_path, help_heading = "Serving and access control")]
    pub tls_client_ca: Option<PathBuf>,

    /// Comma-separated user names allowed in (client certificate CNs and token user names); others get 403.
    /// Empty: every authenticated user.
    #[arg(
        long = "allowed_users",
        value_name = "U1,U2",
        value_delimiter = ',',
        help_heading = "Serving and access control"
    )]
    pub allowed_users: Vec<String>,

    /// Accept bearer tokens listed in this file, in Kubernetes' static token format: one
    /// `token,user,uid,"group1,group2"` per line. Every path but /healthz then needs a valid token or certificate.
    /// Read again when the file changes.
    #[arg(long = "token_auth_file", value_name = "PATH", value_parser = parse_path, help_heading = "Serving and access control")]
    pub token_auth_file: Option<PathBuf>,

    /// Accept bearer tokens the Kubernetes API server of the kubernetes source vouches for (a TokenReview, which
    /// heapster's service account must be allowed to create).
    #[arg(long = "authentication_token_webhook", value_name = "BOOL", num_args = 0..=1, default_value = "false",
          default_missing_value = "true", action = clap::ArgAction::Set, help_heading = "Serving and access control")]
    pub authentication_token_webhook: bool,

    /// How long a TokenReview's answer is reused (refusals: at most 10s).
    #[arg(long = "authentication_token_webhook_cache_ttl", value_name = "DURATION", default_value = "2m",
          value_parser = parse_duration, help_heading = "Serving and access control")]
    pub authentication_token_webhook_cache_ttl: Duration,

    /// TokenReviews a second, at most, of bearer tokens not in the cache (bursts of twice as many); requests over
    /// it get 429. Tokens that are neither a JWT nor a bootstrap token are refused without a review.
    #[arg(long = "authentication_token_webhook_rate", value_name = "PER_SECOND", default_value = "10",
          value_parser = parse_rate, help_heading = "Serving and access control")]
    pub authentication_token_webhook_rate: f64,

    /// Trust the user named in request headers (--requestheader_username_headers) on connections whose client
    /// certificate is signed by this PEM CA (requests from kube-apiserver's aggregator, which presents its front-proxy
    /// certificate). Needs --tls_cert. Headers on other connections are ignored. Read again when the file changes.
    #[arg(long = "requestheader_client_ca_file", value_name = "PATH", value_parser = parse_path,
          help_heading = "Serving and access control")]
    pub requestheader_client_ca_file: Option<PathBuf>,

    /// Common names of front-proxy certificates trusted for the headers. Empty: any signed by
    /// --requestheader_client_ca_file.
    #[arg(
        long = "requestheader_allowed_names",
        value_name = "CN1,CN2",
        value_delimiter = ',',
        help_heading = "Serving and access control"
    )]
    pub requestheader_allowed_names: Vec<String>,

    /// Headers holding the user name, the first present wins.
    #[arg(
        long = "requestheader_username_headers",
        value_name = "H1,H2",
        value_delimiter = ',',
        default_value = "X-Remote-User",
        help_heading = "Serving and access control"
    )]
    pub requestheader_username_headers: Vec<String>,

    /// Headers holding the user's groups (each value one group).
    #[arg(
        long = "requestheader_group_headers",
        value_name = "H1,H2",
        value_delimiter = ',',
        default_value = "X-Remote-Group",
        help_heading = "Serving and access control"
    )]
    pub requestheader_group_headers: Vec<String>,

    /// Prefixes of headers holding the user's extra attributes (read, and ignored by every decision here).
    #[arg(
        long = "requestheader_extra_headers_prefix",
        value_name = "P1,P2",
        value_delimiter = ',',
        default_value = "X-Remote-Extra-",
        help_heading = "Serving and access control"
    )]
    pub requestheader_extra_headers_prefix: Vec<String>,

    /// Ask the Kubernetes API server of the kubernetes source whether each authenticated user may make its request
    /// (a SubjectAccessReview, which heapster's service account must be allowed to create): metrics.k8s.io pods and
    /// nodes as resources, other paths as non-resource URLs. Refusals are 403 with the API server's reason.
    #[arg(long = "authorization_webhook", value_name = "BOOL", num_args = 0..=1, default_value = "false",
          default_missing_value = "true", action = clap::ArgAction::Set, help_heading = "Serving and access control")]
    pub authorization_webhook: bool,

    /// How long a SubjectAccessReview that allowed a request is reused.
    #[arg(long = "authorization_webhook_cache_authorized_ttl", value_name = "DURATION", default_value = "10s",
          value_parser = parse_duration, help_heading = "Serving and access control")]
    pub authorization_webhook_cache_authorized_ttl: Duration,

    /// How long a SubjectAccessReview that denied a request is reused.
    #[arg(long = "authorization_webhook_cache_unauthorized_ttl", value_name = "DURATION", default_value = "10s",
          value_parser = parse_duration, help_heading = "Serving and access control")]
    pub authorization_webhook_cache_unauthorized_ttl: Duration,

    /// A client must send a whole request head within this, counted from when it connected or got its previous
    /// answer: a connection that is slow to send one (a byte a second) or idle for this long is closed
    /// (kube-apiserver's read-header timeout).
    #[arg(long = "http_header_timeout", value_name = "DURATION", default_value = "32s",
          value_parser = parse_duration, help_heading = "Serving and access control")]
    pub http_header_timeout: Duration,

    /// Client connections held at once; beyond it a new one closes the oldest with no request in flight, or is
    /// refused. 0: half the open-file limit (RLIMIT_NOFILE), at most 4096; kept kubelet connections use the rest,
    /// less 1,024, whatever is set here: a larger value wants a larger open-file limit.
    #[arg(
        long = "max_connections",
        value_name = "N",
        default_value = "0",
        help_heading = "Serving and access control"
    )]
    pub max_connections: usize,

    /// Connections held at once from one client address; more are refused. 0: a quarter of --max_connections.
    #[arg(
        long = "max_connections_per_client",
        value_name = "N",
        default_value = "0",
        help_heading = "Serving and access control"
    )]
    pub max_connections_per_client: usize,

    /// Base URLs (scheme://host:port, comma-separated) of the other replicas of a sharded heapster: the model API,
    /// metrics.k8s.io and the dashboard then answer for the whole cluster from this replica, asking the others
    /// for their part and merging. A replica that does not answer is left out (and counted).
    #[arg(long = "peers", value_name = "URL,URL", value_delimiter = ',', help_heading = "Sharding")]
    pub peers: Vec<String>,

    /// How long a read waits for the other replicas; one that has not answered by then is left out, so a replica
    /// that is down costs a request at most this.
    #[arg(long = "peers_timeout", value_name = "DURATION", default_value = "3s", value_parser = parse_duration,
          help_heading = "Sharding")]
    pub peers_timeout: Duration,

    /// A PEM CA bundle the https peers' serving certificates are verified against (the CA that signed
    /// --tls_cert; the system's roots otherwise). A certificate must name the address given in --peers.
    #[arg(long = "peers_ca_file", value_name = "PATH", value_parser = parse_path, help_heading = "Sharding")]
    pub peers_ca_file: Option<PathBuf>,

    /// A bearer token file sent to the peers, read at every request (the kubelet rotates it); none when it
    /// cannot be read. Default: the pod's service account token, so that peers that require a token
    /// (--authentication_token_webhook) let their siblings in.
    #[arg(long = "peers_token_file", value_name = "PATH", value_parser = parse_path,
          default_value = heapster_api::fanout::IN_CLUSTER_TOKEN, help_heading = "Sharding")]
    pub peers_token_file: PathBuf,

    /// Share the cluster's nodes with other replicas: each holds a coordination.k8s.io/v1 Lease in this
    /// namespace, the replicas whose Lease is renewed in time are the members, and each node is scraped by the
    /// --shard_replication members that rendezvous hashing of its name picks. Needs a kubernetes --source, and
    /// get, list, create, update and delete on leases. Off when empty: every node is scraped, as in Heapster.
    #[arg(long = "shard_lease_namespace", value_name = "NS", default_value = "", help_heading = "Sharding")]
    pub shard_lease_namespace: String,

    /// Prefix of each replica's Lease name (`PREFIX-IDENTITY`), and the value of its `heapster.k8s.io/shard`
    /// label, by which replicas list each other: two sets of shards in one namespace need two prefixes.
    #[arg(
        long = "shard_lease_prefix",
        value_name = "PREFIX",
        default_value = "heapster-shard",
        help_heading = "Sharding"
    )]
    pub shard_lease_prefix: String,

    /// This replica's name among the shards. Default: $POD_NAME, else the host name (a pod's name).
    #[arg(long = "shard_identity", value_name = "NAME", help_heading = "Sharding")]
    pub shard_identity: Option<String>,

    /// How long a replica's Lease holds without renewal (renewed every third of it): a replica that dies loses
    /// its nodes to the others within this. One that stops cleanly deletes its Lease, so they move at once.
    #[arg(long = "shard_lease_duration", value_name = "DURATION", default_value = "15s", value_parser = parse_duration,
          help_heading = "Sharding")]
    pub shard_lease_duration: Duration,

    /// Replicas that scrape each node: 1, or 2 so that a replica's death loses no round (for sinks that keep one
    /// copy of duplicate points, such as VictoriaMetrics or InfluxDB).
    #[arg(long = "shard_replication", value_name = "1|2", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=2), help_heading = "Sharding")]
    pub shard_replication: u8,

    /// This replica's base URL, which the others fan requests out to (kept in its Lease's
    /// `heapster.k8s.io/address` annotation). Default: http(s)://$POD_IP:--heapster_port.
    #[arg(long = "shard_advertise_address", value_name = "URL", help_heading = "Sharding")]
    pub shard_advertise_address: Option<String>,

    /// Write this replica's namespace and cluster roll-ups to the sinks, labelled `shard=` its --shard_identity
    /// (a dashboard sums them over shard). Off: a sharded replica's roll-ups, which sum only its own nodes, are
    /// not written, because every replica's would land under the same tags and overwrite the others'; the APIs
    /// serve them summed over the replicas either way. Needs --shard_lease_namespace.
    #[arg(long = "shard_export_rollups", value_name = "BOOL", num_args = 0..=1, default_value = "false",
          default_missing_value = "true", action = clap::ArgAction::Set, help_heading = "Sharding")]
    pub shard_export_rollups: bool,
}

/// Heapster's `--metric_resolution` default, kept so that a swapped image scrapes and writes as often as before.
pub const HEAPSTER_RESOLUTION: Duration = Duration::from_secs(60);

/// The default when heapster only watches this host: a dashboard wants fresher points than a cluster's sinks.
pub const STANDALONE_RESOLUTION: Duration = Duration::from_secs(15);

/// `--listen_ip`: empty means every interface, as in Heapster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenIp(pub Option<IpAddr>);

fn parse_listen_ip(s: &str) -> Result<ListenIp, String> {
    if s.is_empty() {
        return Ok(ListenIp(None));
    }
    s.parse().map(|ip| ListenIp(Some(ip))).map_err(|_| format!("{s:?} is not an IP address"))
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!("{s:?}: expected a number of reviews a second, more than 0 (e.g. 10 or 0.5)")),
    }
}

fn parse_cluster_aggregation(s: &str) -> Result<heapster_processors::ClusterFrom, String> {
    match s {
        "namespaces" => Ok(heapster_processors::ClusterFrom::Namespaces),
        "nodes" => Ok(heapster_processors::ClusterFrom::Nodes),
        _ => Err(format!("{s:?}: expected namespaces (Heapster's) or nodes")),
    }
}

/// A path that may be empty: Heapster's manifests pass `--tls_cert=` for "none" (clap's own parser refuses it).
fn parse_path(s: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(s))
}

fn parse_uri(s: &str) -> Result<SpecUri, String> {
    s.parse()
}

/// Go's duration syntax as far as users write it (`60s`, `1m30s`, `500ms`, `2h`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration like 15s or 1m ({e})"))?;
    if d.is_zero() {
        return Err(format!("{s:?}: must be longer than zero"));
    }
    Ok(d)
}

/// A size in bytes: a number with an optional suffix K, M, G (powers of 1000) or Ki, Mi, Gi (of 1024), and an
/// optional `B`.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    heapster_model::quantity::parse_size(s)
}

/// Rewrites Heapster-style arguments into what clap parses: `-flag` becomes `--flag`, and `-` inside a flag name
/// becomes `_`. Values are left alone, and so is everything after a bare `--`.
pub fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut passthrough = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || passthrough || arg == "--" || !arg.starts_with('-') || arg == "-" {
            passthrough |= arg == "--";
            out.push(arg);
            continue;
        }
        let body = arg.trim_start_matches('-');
        if arg.len() - body.len() == 1 && body.len() == 1 {
            out.push(arg); // a short flag such as -h or -V
            continue;
        }
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let name = name.replace('-', "_");
        out.push(match value {
            Some(v) => format!("--{name}={v}"),
            None => format!("--{name}"),
        });
    }
    out
}

impl Flags {
    /// Parses the process arguments, exiting with one clear line (and clap's usage hint) on a bad one.
    pub fn from_env() -> Flags {
        Flags::try_parse_args(normalize_args(std::env::args())).unwrap_or_else(|e| e.exit())
    }

    /// Parses arguments already normalized by [`normalize_args`].
    pub fn try_parse_args(args: Vec<String>) -> Result<Flags, clap::Error> {
        let cmd = Flags::command_with_kinds();
        let matches = cmd.clone().try_get_matches_from(args)?;
        let mut flags = Flags::from_arg_matches(&matches)?;
        (flags.compat, flags.log_level) =
            crate::compat_flags::Compat::read(&cmd, &matches, flags.log_level_given.as_ref())?;
        flags.metric_resolution = flags.metric_resolution_given.unwrap_or(if flags.standalone() {
            STANDALONE_RESOLUTION
        } else {
            HEAPSTER_RESOLUTION
        });
        Ok(flags)
    }

    /// Whether heapster only watches this host: no `--source`, or only `local` ones.
    pub fn standalone(&self) -> bool {
        self.sources.iter().all(|s| s.key == "local")
    }

    /// The flags' command, whose `--help` (not `-h`) lists every source and sink kind with its options, from the
    /// sources' and sinks' own tables.
    pub fn command_with_kinds() -> clap::Command {
        let kinds = |arg: clap::Arg, list: String| {
            let short = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            arg.long_help(format!("{short}\n\nKinds and their options ([default]):{list}"))
        };
        crate::compat_flags::add_to(Flags::command())
            .mut_arg("sources", |a| kinds(a, heapster_sources::help()))
            .mut_arg("sinks", |a| kinds(a, heapster_sinks::help()))
    }

    /// The sources to use: `--source` values, or `local` when none was given.
    pub fn sources_or_default(&self) -> Vec<SpecUri> {
        if self.sources.is_empty() { vec!["local".parse().expect("valid")] } else { self.sources.clone() }
    }

    /// The spool directory, when `--sink_buffer_dir` is set.
    pub fn sink_buffer_dir(&self) -> Option<PathBuf> {
        self.sink_buffer_dir.clone().filter(|d| !d.as_os_str().is_empty())
    }

    /// Checks what clap cannot: relations between flags.
    pub fn validate(&self) -> Result<(), String> {
        self.validate_serving()?;
        if self.store_window < self.metric_resolution {
            return Err(format!(
                "--store_window={:?} is shorter than --metric_resolution={:?}: the store would keep nothing",
                self.store_window, self.metric_resolution
            ));
        }
        if self.sink_queue_batches == 0 {
            return Err("--sink_queue_batches must be at least 1".into());
        }
        if self.max_concurrent_scrapes == 0 {
            return Err("--max_concurrent_scrapes must be at least 1".into());
        }
        self.validate_shard()?;
        Ok(())
    }
}

/// Sharding flags.
impl Flags {
    /// This replica's part in the shards, when `--shard_lease_namespace` is given.
    pub fn shard(&self) -> Option<heapster_sources::kubernetes::shard::ShardConfig> {
        if self.shard_lease_namespace.is_empty() {
            return None;
        }
        let identity = self.shard_identity.clone().unwrap_or_else(default_identity);
        let address = self.shard_advertise_address.clone().unwrap_or_else(|| {
            let scheme = if self.tls_files().is_some() { "https" } else { "http" };
            let host = std::env::var("POD_IP")
                .ok()
                .filter(|ip| !ip.is_empty())
                .or_else(|| self.listen_ip.0.filter(|ip| !ip.is_unspecified()).map(|ip| ip.to_string()));
            let host = host.unwrap_or_else(default_identity);
            let host = if host.contains(':') { format!("[{host}]") } else { host };
            format!("{scheme}://{host}:{}", self.heapster_port)
        });
        Some(heapster_sources::kubernetes::shard::ShardConfig {
            namespace: self.shard_lease_namespace.clone(),
            prefix: self.shard_lease_prefix.clone(),
            identity,
            address,
            duration: self.shard_lease_duration,
            replication: usize::from(self.shard_replication),
        })
    }

    fn validate_shard(&self) -> Result<(), String> {
        let Some(shard) = self.shard() else {
            if self.shard_export_rollups {
                return Err("--shard_export_rollups labels a shard's roll-ups: it needs --shard_lease_namespace".into());
            }
            return Ok(());
        };
        if !self.sources.iter().any(heapster_sources::kubernetes::is_kubernetes) {
            return Err("--shard_lease_namespace shares a cluster's nodes: it needs a kubernetes --source".into());
        }
        let name = shard.lease_name();
        let dns = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
        if name.len() > 253 || !name.chars().all(dns) || !name.ends_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "the shard Lease name {name:?} (--shard_lease_prefix-identity) is not a Kubernetes object name: use \
                 lower-case letters, digits, '-' and '.', or give --shard_identity"
            ));
        }
        if self.shard_lease_duration < Duration::from_secs(3) {
            return Err(
                "--shard_lease_duration must be at least 3s (Leases count whole seconds, renewed every third)".into()
            );
        }
        Ok(())
    }
}

/// `$POD_NAME`, else the host name: in a pod, the pod's name.
fn default_identity() -> String {
    let from_env = ["POD_NAME", "HOSTNAME"].iter().find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()));
    from_env
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_owned()))
        .unwrap_or_else(|| "heapster".into())
        .to_lowercase()
}

/// Serving and access-control flags. Heapster's manifests pass `--tls_cert=` (empty) for "none".
impl Flags {
    /// A path flag's value, `None` when absent or empty.
    fn path(p: &Option<PathBuf>) -> Option<PathBuf> {
        p.clone().filter(|p| !p.as_os_str().is_empty())
    }

    /// `--tls_cert` and `--tls_key`, when both are given.
    pub fn tls_files(&self) -> Option<(PathBuf, PathBuf)> {
        Some((Self::path(&self.tls_cert)?, Self::path(&self.tls_key)?))
    }

    /// `--tls_client_ca`, when given.
    pub fn tls_client_ca(&self) -> Option<PathBuf> {
        Self::path(&self.tls_client_ca)
    }

    /// `--requestheader_client_ca_file`, when given.
    pub fn requestheader_client_ca(&self) -> Option<PathBuf> {
        Self::path(&self.requestheader_client_ca_file)
    }

    /// `--token_auth_file`, when given.
    pub fn token_auth_file(&self) -> Option<PathBuf> {
        Self::path(&self.token_auth_file)
    }

    /// `--allowed_users` without empty entries.
    pub fn allowed_users(&self) -> Vec<String> {
        self.allowed_users.iter().map(|u| u.trim().to_string()).filter(|u| !u.is_empty()).collect()
    }

    /// Whether any way to authenticate is configured (then every path but /healthz needs credentials).
    pub fn auth_configured(&self) -> bool {
        self.tls_client_ca().is_some()
            || self.requestheader_client_ca().is_some()
            || self.token_auth_file().is_some()
            || self.authentication_token_webhook
    }

    fn validate_serving(&self) -> Result<(), String> {
        match (Self::path(&self.tls_cert), Self::path(&self.tls_key)) {
            (Some(_), None) => return Err("--tls_cert needs --tls_key (the certificate's private key)".into()),
            (None, Some(_)) => return Err("--tls_key needs --tls_cert (the certificate to serve)".into()),
            _ => {}
        }
        if self.requestheader_client_ca().is_some() && self.tls_files().is_none() {
            return Err(
                "--requestheader_client_ca_file needs --tls_cert and --tls_key: front-proxy certificates come \
                        with https"
                    .into(),
            );
        }
        if self.tls_client_ca().is_some() && self.tls_files().is_none() {
            return Err("--tls_client_ca needs --tls_cert and --tls_key: client certificates come with https".into());
        }
        if !self.allowed_users().is_empty() && !self.auth_configured() {
            return Err("--allowed_users needs a way to authenticate users: --tls_client_ca, --token_auth_file or \
                        --authentication_token_webhook"
                .into());
        }
        if self.http_header_timeout.is_zero() {
            return Err("--http_header_timeout must be more than 0 (every connection would close at once)".into());
        }
        let kubernetes = self.sources.iter().any(heapster_sources::kubernetes::is_kubernetes);
        if self.authorization_webhook && !kubernetes {
            return Err("--authorization_webhook asks the API server of a kubernetes source: add \
                        --source=kubernetes.summary_api:..."
                .into());
        }
        if self.authorization_webhook && !self.auth_configured() {
            return Err("--authorization_webhook needs a way to authenticate users: --tls_client_ca, \
                        --token_auth_file or --authentication_token_webhook"
                .into());
        }
        if self.authentication_token_webhook && !kubernetes {
            return Err("--authentication_token_webhook asks the API server of a kubernetes source: add \
                        --source=kubernetes.summary_api:... or use --token_auth_file"
                .into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        let argv = std::iter::once("heapster").chain(args.iter().copied()).map(String::from);
        Flags::try_parse_args(normalize_args(argv))
    }

    /// Off by default; Heapster's spellings turn it on.
    #[test]
    fn whole_rounds_are_stored_only_when_asked() {
        assert!(!parse(&[]).unwrap().store_whole_rounds);
        for on in [&["--store_whole_rounds"][..], &["--store-whole-rounds=true"], &["-store_whole_rounds", "true"]] {
            assert!(parse(on).unwrap().store_whole_rounds, "{on:?}");
        }
        assert!(!parse(&["--store_whole_rounds=false"]).unwrap().store_whole_rounds);
    }

    /// Off unless a namespace is given; on, it needs a kubernetes source, a Lease name the API server accepts and
    /// a replication of 1 or 2; the advertised address defaults to where this replica listens.
    #[test]
    fn shard_flags() {
        assert!(parse(&["--source=kubernetes"]).unwrap().shard().is_none());
        let k = "--source=kubernetes:http://127.0.0.1:8001";
        let f = parse(&[k, "--shard_lease_namespace=mon", "--shard_identity=web-0", "--listen_ip=10.0.0.7"]).unwrap();
        f.validate().unwrap();
        let s = f.shard().unwrap();
        assert_eq!(
            (s.lease_name().as_str(), s.replication, s.duration),
            ("heapster-shard-web-0", 1, Duration::from_secs(15))
        );
        if std::env::var_os("POD_IP").is_none() {
            assert_eq!(s.address, "http://10.0.0.7:8082");
        }
        let e = parse(&["--shard_lease_namespace=mon", "--shard_identity=a"]).unwrap().validate().unwrap_err();
        assert!(e.contains("needs a kubernetes --source"), "{e}");
        let e = parse(&[k, "--shard_lease_namespace=mon", "--shard_identity=Web_0"]).unwrap().validate().unwrap_err();
        assert!(e.contains("not a Kubernetes object name"), "{e}");
        assert!(parse(&[k, "--shard_lease_namespace=mon", "--shard_replication=3"]).is_err());
        assert!(!f.shard_export_rollups, "off by default");
        let f = parse(&[k, "--shard_lease_namespace=mon", "--shard_identity=a", "--shard-export-rollups"]).unwrap();
        f.validate().unwrap();
        assert!(f.shard_export_rollups);
        let e = parse(&[k, "--shard_export_rollups=true"]).unwrap().validate().unwrap_err();
        assert!(e.contains("needs --shard_lease_namespace"), "{e}");
    }

    #[test]
    fn defaults() {
        let f = parse(&[]).unwrap();
        assert_eq!(f.metric_resolution, Duration::from_secs(15), "standalone: this host only");
        assert_eq!(f.store_window, Duration::from_secs(900));
        assert_eq!(f.heapster_port, 8082);
        assert_eq!(f.listen_ip, ListenIp(None));
        assert_eq!(f.sources_or_default()[0].key, "local");
        let k = parse(&["--source=kubernetes.summary_api:''"]).unwrap();
        assert_eq!(k.metric_resolution, Duration::from_secs(60), "Heapster's default with a cluster");
        let c = parse(&["--source=cadvisor:external?hostsFile=/h", "--metric_resolution=30s"]).unwrap();
        assert_eq!(c.metric_resolution, Duration::from_secs(30));
    }

    #[test]
    fn heapster_manifest_spellings() {
        let f = parse(&[
            "--source=local",
            "-metric_resolution=60s",
            "--metric-resolution",
            "30s",
            "--sink=log",
            "--heapster-port=9090",
            "--listen_ip=127.0.0.1",
        ])
        .unwrap();
        assert_eq!(f.metric_resolution, Duration::from_secs(30), "the last one wins");
        assert_eq!(f.heapster_port, 9090);
        assert_eq!(f.sinks[0].key, "log");
        assert_eq!(f.listen_ip, ListenIp(Some("127.0.0.1".parse().unwrap())));
        let f = parse(&["--sink=log", "--sink=log"]).unwrap();
        assert_eq!(f.sinks.len(), 2);
        assert!(f.historical_source.is_none());
        let f = parse(&["--historical-source=influxdb:http://h:8086?db=k8s"]).unwrap();
        let h = f.historical_source.unwrap();
        assert_eq!((h.key.as_str(), h.target.as_str(), h.option("db")), ("influxdb", "http://h:8086", Some("k8s")));
    }

    #[test]
    fn bad_values_are_rejected_with_the_reason() {
        let e = parse(&["--metric_resolution=often"]).unwrap_err().to_string();
        assert!(e.contains("is not a duration"), "{e}");
        let e = parse(&["--no_such_flag=1"]).unwrap_err().to_string();
        assert!(e.contains("no_such_flag"), "{e}");
        let e = parse(&["--sink=:http://x"]).unwrap_err().to_string();
        assert!(e.contains("has no key"), "{e}");
        let e = parse(&["--listen_ip=localhost:1"]).unwrap_err().to_string();
        assert!(e.contains("not an IP"), "{e}");
        assert!(parse(&["--metric_resolution=0s"]).is_err());
        let f = parse(&["--store_window=10s", "--metric_resolution=15s"]).unwrap();
        assert!(f.validate().unwrap_err().contains("shorter than"));
    }

    #[test]
    fn sink_buffer_flags() {
        let f = parse(&[]).unwrap();
        assert_eq!(f.sink_buffer_dir(), None);
        assert_eq!(f.sink_buffer_max_bytes, 1 << 30);
        let f = parse(&["--sink-buffer-dir=/var/lib/heapster", "--sink_buffer_max_bytes=500Mi"]).unwrap();
        assert_eq!(f.sink_buffer_dir(), Some(PathBuf::from("/var/lib/heapster")));
        assert_eq!(f.sink_buffer_max_bytes, 500 << 20);
        assert_eq!(parse_bytes("2G"), Ok(2_000_000_000));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert!(parse_bytes("lots").is_err() && parse_bytes("0").is_err() && parse_bytes("1Ti").is_err());
    }

    #[test]
    fn serving_flags() {
        let f = parse(&["--tls_cert=", "--tls_key=", "--allowed_users="]).unwrap();
        assert_eq!((f.tls_files(), f.auth_configured()), (None, false), "Heapster's empty defaults mean none");
        f.validate().unwrap();
        let f = parse(&[
            "--tls-cert=/c.pem",
            "--tls_key=/k.pem",
            "--tls_client_ca=/ca.pem",
            "--allowed_users=front-proxy-client, admin",
            "--token-auth-file=/tokens.csv",
        ])
        .unwrap();
        f.validate().unwrap();
        assert_eq!(f.tls_files(), Some(("/c.pem".into(), "/k.pem".into())));
        assert_eq!(f.allowed_users(), ["front-proxy-client", "admin"]);
        assert!(!f.authentication_token_webhook);
        assert_eq!(f.authentication_token_webhook_cache_ttl, Duration::from_secs(120));
        let f =
            parse(&["--source=kubernetes.summary_api:https://kubernetes.default", "--authentication_token_webhook"])
                .unwrap();
        assert!(f.authentication_token_webhook && f.auth_configured());
        f.validate().unwrap();
        let f =
            parse(&["--authentication_token_webhook=true", "--authentication_token_webhook_cache_ttl=30s"]).unwrap();
        assert_eq!(f.authentication_token_webhook_cache_ttl, Duration::from_secs(30));
        assert!(f.validate().unwrap_err().contains("kubernetes source"));
        let bad = |args: &[&str], want: &str| {
            let e = parse(args).unwrap().validate().unwrap_err();
            assert!(e.contains(want), "{args:?}: {e}");
        };
        bad(&["--tls_cert=/c.pem"], "needs --tls_key");
        bad(&["--tls_key=/k.pem"], "needs --tls_cert");
        bad(&["--tls_client_ca=/ca.pem"], "needs --tls_cert");
        bad(&["--allowed_users=a"], "needs a way to authenticate");
        assert!(parse(&["--authentication_token_webhook=maybe"]).is_err());
    }

    #[test]
    fn long_help_lists_every_source_and_sink_kind_with_its_options() {
        let help = Flags::command_with_kinds().render_long_help().to_string();
        for kind in heapster_sources::SOURCES {
            for key in std::iter::once(&kind.doc.key).chain(kind.doc.aliases) {
                assert!(help.contains(key), "--help lacks the source {key}");
            }
            for o in kind.doc.options {
                assert!(help.contains(&format!("{}=", o.name)), "--help lacks {}'s option {}", kind.doc.key, o.name);
            }
        }
        for line in heapster_sinks::help().lines().map(str::trim).filter(|l| !l.is_empty()) {
            assert!(help.contains(line), "--help lacks the sinks' {line:?}");
        }
        assert!(["log", "influxdb:", "batch_points="].iter().all(|s| help.contains(s)), "{help}");
        let short = Flags::command_with_kinds().render_help().to_string();
        assert!(!short.contains("kubeletPreferredAddressTypes"), "-h stays short: {short}");
    }

    #[test]
    fn values_and_short_flags_are_left_alone() {
        let argv = ["heapster", "-h", "--sink", "log-x", "--", "--a-b"].map(String::from);
        assert_eq!(normalize_args(argv), ["heapster", "-h", "--sink", "log-x", "--", "--a-b"]);
    }
}
