//! Quantities and Go durations as metrics-server prints them, so clients that compare strings (and people reading
//! `kubectl get --raw`) see the same forms.
//!
//! CPU is sent in nanocores (`80666400n`) and memory in bytes with a binary suffix (`1875376Ki`), both in the
//! canonical form of `k8s.io/apimachinery/pkg/api/resource` ([`heapster_model::quantity`]).

use heapster_model::quantity::decimal_si;
use std::time::Duration;

/// CPU: millicores (heapster's `cpu/usage_rate`) as nanocores, as metrics-server reports them. Negative or
/// non-finite rates (never expected) read as zero rather than as a quantity no client can parse.
pub fn cpu_from_millicores(millicores: f64) -> String {
    decimal_si(nanocores(millicores), -9)
}

/// The nanocores a millicore rate is rounded to: what [`cpu_from_millicores`] prints.
pub fn nanocores(millicores: f64) -> i64 {
    if millicores.is_finite() && millicores > 0.0 { (millicores * 1e6).round().min(i64::MAX as f64) as i64 } else { 0 }
}

/// A duration as Go's `time.Duration.String()` (`15s`, `1m0s`, `1.5s`, `500ms`): the form of `metav1.Duration`
/// in the metrics API's `window`.
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let secs = if frac == 0 { format!("{s}s") } else { format!("{s}.{}s", format!("{frac:03}").trim_end_matches('0')) };
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_rounds_to_nanocores() {
        assert_eq!(cpu_from_millicores(80.6664), "80666400n");
        assert_eq!(cpu_from_millicores(250.0), "250m");
        assert_eq!(cpu_from_millicores(0.0000004), "0");
        assert_eq!(cpu_from_millicores(-3.0), "0");
        assert_eq!(cpu_from_millicores(f64::NAN), "0");
        assert_eq!(cpu_from_millicores(2000.0), "2");
    }

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(15)), "15s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(60)), "1m0s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_millis(61_250)), "1m1.25s");
    }
}
