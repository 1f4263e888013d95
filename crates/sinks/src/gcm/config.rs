//! The options of `--sink=gcm` and `--sink=stackdriver`, checked once at start-up.

use super::encoder::{MIN_SPACING_MS, Schema};
use crate::ConfigError;
use crate::util::google::{self, CLUSTER_LOCATION, CLUSTER_NAME, PROJECT, TIMEOUT, ZONE};
use heapster_model::{OptionSpec, Options};

/// Where Cloud Monitoring answers.
pub const DEFAULT_ENDPOINT: &str = "https://monitoring.googleapis.com";
/// Metric types of user-defined metrics live under `custom.googleapis.com/`; the rest is Heapster's name.
pub const DEFAULT_PREFIX: &str = "custom.googleapis.com/kubernetes.io/";
/// Prefixes of Google's own agents: their descriptors exist already and only Google's agents should write them.
pub const RESERVED_PREFIXES: &[&str] = &["kubernetes.io/", "container.googleapis.com/"];
/// Prefixes under which a project may define its own metrics.
pub const USER_PREFIXES: &[&str] = &["custom.googleapis.com/", "workload.googleapis.com/", "external.googleapis.com/"];

const METRIC_PREFIX: OptionSpec = OptionSpec::new(
    "metric_prefix",
    DEFAULT_PREFIX,
    "put before every metric name; kubernetes.io/ and container.googleapis.com/ are reserved for Google's own \
     agents (GKE's) and need allow_reserved_prefix=true",
);
const ALLOW_RESERVED: OptionSpec = OptionSpec::new(
    "allow_reserved_prefix",
    "false",
    "allow metric_prefix=kubernetes.io/ (Heapster's names) where Google's agents do not write; no descriptors are \
     created then",
);
const ENDPOINT: OptionSpec = OptionSpec::new("endpoint", DEFAULT_ENDPOINT, "Cloud Monitoring API base URL");

/// `--sink=gcm`'s options.
pub const GCM_OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("metrics", "all", "all, or autoscaling (the node autoscaling metrics only)"),
    PROJECT,
    METRIC_PREFIX,
    ALLOW_RESERVED,
    ENDPOINT,
    TIMEOUT,
];

/// `--sink=stackdriver`'s options.
pub const STACKDRIVER_OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("workers", "1", "requests of one batch in flight at once"),
    CLUSTER_NAME,
    CLUSTER_LOCATION,
    ZONE,
    PROJECT,
    METRIC_PREFIX,
    ALLOW_RESERVED,
    ENDPOINT,
    TIMEOUT,
    OptionSpec::new("min_interval_sec", "", "points of a series at least this many seconds apart (at least 5)"),
    OptionSpec::new("use_new_resources", "", "accepted for Heapster's manifests: the k8s_* resources are always used"),
    OptionSpec::new("use_old_resources", "", "accepted for Heapster's manifests: gke_container is retired by Google"),
    OptionSpec::new(
        "batch_export_timeout_sec",
        "",
        "accepted for Heapster's manifests: --sink_export_data_timeout applies",
    ),
    OptionSpec::new("initial_delay_sec", "", "accepted for Heapster's manifests; ignored"),
];

/// What the two Cloud Monitoring sinks need to know besides credentials and identity.
#[derive(Debug, Clone, PartialEq)]
pub struct GcmConfig {
    pub schema: Schema,
    pub prefix: String,
    /// False under a reserved prefix, whose descriptors are Google's.
    pub create_descriptors: bool,
    pub endpoint: String,
    pub workers: usize,
    pub min_spacing_ms: i64,
}

impl GcmConfig {
    pub fn from_options(o: &Options, stackdriver: bool) -> Result<Self, ConfigError> {
        google::no_target(o)?;
        let schema = if stackdriver {
            Schema::Stackdriver
        } else {
            match o.get("metrics") {
                None | Some("all") => Schema::Gcm { autoscaling_only: false },
                Some("autoscaling") => Schema::Gcm { autoscaling_only: true },
                Some(m) => return Err(o.error(format!("metrics={m:?}: expected all or autoscaling"))),
            }
        };
        let prefix = o.string(METRIC_PREFIX.name, DEFAULT_PREFIX);
        if !prefix.ends_with('/') {
            return Err(o.error(format!("metric_prefix={prefix:?}: end it with / (custom.googleapis.com/heapster/)")));
        }
        let reserved = RESERVED_PREFIXES.iter().any(|p| prefix.starts_with(p));
        if reserved && !o.bool(ALLOW_RESERVED.name, false)? {
            return Err(o.error(format!(
                "metric_prefix={prefix:?} is reserved for Google's own agents (GKE writes those metrics itself); use \
                 the default {DEFAULT_PREFIX:?}, or add allow_reserved_prefix=true where no Google agent writes them"
            )));
        }
        if !reserved && !USER_PREFIXES.iter().any(|p| prefix.starts_with(p)) {
            return Err(o.error(format!(
                "metric_prefix={prefix:?}: user-defined metrics live under {}",
                USER_PREFIXES.join(", ")
            )));
        }
        let min_interval = if stackdriver {
            o.parse::<i64>("min_interval_sec", 0, "a number of seconds")?.saturating_mul(1000)
        } else {
            0
        };
        Ok(GcmConfig {
            schema,
            prefix,
            create_descriptors: !reserved,
            endpoint: google::endpoint(o, ENDPOINT.name, DEFAULT_ENDPOINT)?,
            workers: if stackdriver { o.positive("workers", 1)? } else { 1 },
            min_spacing_ms: min_interval.max(MIN_SPACING_MS),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<GcmConfig, ConfigError> {
        let uri = s.parse().unwrap();
        let specs = if s.starts_with("stackdriver") { STACKDRIVER_OPTIONS } else { GCM_OPTIONS };
        GcmConfig::from_options(&Options::new("--sink", &uri, specs)?, s.starts_with("stackdriver"))
    }

    #[test]
    fn defaults_and_heapsters_options() {
        let c = parse("gcm").unwrap();
        assert_eq!(c.schema, Schema::Gcm { autoscaling_only: false });
        assert_eq!((c.prefix.as_str(), c.endpoint.as_str()), (DEFAULT_PREFIX, DEFAULT_ENDPOINT));
        assert!(c.create_descriptors);
        assert_eq!(parse("gcm?metrics=autoscaling").unwrap().schema, Schema::Gcm { autoscaling_only: true });
        let c = parse(
            "stackdriver:?cluster_name=prod&use_old_resources=false&use_new_resources=true&min_interval_sec=100\
             &batch_export_timeout_sec=110&workers=4&endpoint=http://127.0.0.1:9/",
        )
        .unwrap();
        assert_eq!((c.workers, c.min_spacing_ms, c.endpoint.as_str()), (4, 100_000, "http://127.0.0.1:9"));
        let c = parse("stackdriver?metric_prefix=kubernetes.io/&allow_reserved_prefix=true").unwrap();
        assert!(!c.create_descriptors);
    }

    #[test]
    fn what_cannot_work_is_one_line() {
        for (uri, says) in [
            ("gcm?metrics=some", "expected all or autoscaling"),
            ("gcm:http://h", "takes no address"),
            ("stackdriver?metric_prefix=kubernetes.io/", "reserved for Google's own agents"),
            ("gcm?metric_prefix=container.googleapis.com/", "allow_reserved_prefix=true"),
            ("gcm?metric_prefix=custom.googleapis.com/x", "end it with /"),
            ("gcm?metric_prefix=my.domain/", "user-defined metrics live under"),
            ("gcm:?endpoint=ftp://x", "expected https://host"),
            ("gcm?workers=2", "unknown gcm option \"workers\""),
            ("stackdriver?workers=0", "workers=\"0\""),
        ] {
            let e = parse(uri).unwrap_err().to_string();
            assert!(e.contains(says), "{uri}: {e}");
            assert!(!e.contains('\n'));
        }
    }
}
