//! Kubernetes quantities and Go durations as metrics-server prints them, so clients that compare strings (and
//! people reading `kubectl get --raw`) see the same canonical forms.
//!
//! CPU is sent in nanocores (`80666400n`) and memory in bytes with a binary suffix (`1875376Ki`), both in the
//! canonical form of `k8s.io/apimachinery/pkg/api/resource`: the largest suffix that keeps the number an integer.

use std::time::Duration;

/// Decimal suffixes by power of ten, from nano to exa.
const DECIMAL: [(i32, &str); 10] =
    [(-9, "n"), (-6, "u"), (-3, "m"), (0, ""), (3, "k"), (6, "M"), (9, "G"), (12, "T"), (15, "P"), (18, "E")];

/// Binary suffixes by power of 1024.
const BINARY: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];

/// `mantissa * 10^exponent` in canonical DecimalSI form (`1500m`, `123m`, `2`, `12k`, `80666400n`).
pub fn decimal_si(mut mantissa: i64, mut exponent: i32) -> String {
    if mantissa == 0 {
        return "0".to_owned();
    }
    while mantissa % 10 == 0 && exponent < 18 {
        mantissa /= 10;
        exponent += 1;
    }
    // The largest suffix power at or below the exponent; below nano there is nothing to print.
    let (power, suffix) = DECIMAL.iter().rev().find(|(p, _)| *p <= exponent).copied().unwrap_or(DECIMAL[0]);
    let mut digits = i128::from(mantissa);
    for _ in power..exponent {
        digits *= 10;
    }
    format!("{digits}{suffix}")
}

/// CPU: millicores (heapster's `cpu/usage_rate`) as nanocores, as metrics-server reports them. Negative or
/// non-finite rates (never expected) read as zero rather than as a quantity no client can parse.
pub fn cpu_from_millicores(millicores: f64) -> String {
    decimal_si(nanocores(millicores), -9)
}

/// The nanocores a millicore rate is rounded to: what [`cpu_from_millicores`] prints.
pub fn nanocores(millicores: f64) -> i64 {
    if millicores.is_finite() && millicores > 0.0 { (millicores * 1e6).round().min(i64::MAX as f64) as i64 } else { 0 }
}

/// Memory: bytes in canonical BinarySI form (`1875376Ki`, `16Gi`, `1536`); below 1024 Kubernetes switches to
/// the decimal form (`1k` for 1000), and so do we.
pub fn binary_si(bytes: i64) -> String {
    let bytes = bytes.max(0);
    if bytes < 1024 {
        return decimal_si(bytes, 0);
    }
    let (mut n, mut i) = (bytes, 0);
    while n % 1024 == 0 && i + 1 < BINARY.len() {
        n /= 1024;
        i += 1;
    }
    format!("{n}{}", BINARY[i])
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
    fn decimal_quantities_are_canonical() {
        assert_eq!(decimal_si(0, -9), "0");
        assert_eq!(decimal_si(80_666_400, -9), "80666400n");
        assert_eq!(decimal_si(123_000_000, -9), "123m");
        assert_eq!(decimal_si(1_000_000_000, -9), "1");
        assert_eq!(decimal_si(1_500_000_000, -9), "1500m");
        assert_eq!(decimal_si(1_500, 0), "1500");
        assert_eq!(decimal_si(12_000, 0), "12k");
        assert_eq!(decimal_si(4_000, -3), "4");
        assert_eq!(decimal_si(3_800, -3), "3800m");
        assert_eq!(decimal_si(1_000_000, -6), "1");
        assert_eq!(decimal_si(1_234_000, -9), "1234u");
    }

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
    fn memory_uses_binary_suffixes() {
        assert_eq!(binary_si(0), "0");
        assert_eq!(binary_si(500), "500");
        assert_eq!(binary_si(1000), "1k");
        assert_eq!(binary_si(1024), "1Ki");
        assert_eq!(binary_si(1536), "1536");
        assert_eq!(binary_si(1_920_385_024), "1875376Ki");
        assert_eq!(binary_si(16 << 30), "16Gi");
        assert_eq!(binary_si(-5), "0");
        assert_eq!(binary_si(i64::MAX), "9223372036854775807");
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
