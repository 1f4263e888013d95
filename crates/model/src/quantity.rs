//! Kubernetes resource quantities (`100m`, `1.5`, `64Mi`, `1G`, `1e3`), read and written as
//! `k8s.io/apimachinery/pkg/api/resource` does, and byte sizes in flags (`500Mi`, `1G`). One suffix table serves
//! the sources (requests and capacities from the API server), the resource metrics API (canonical forms that
//! clients compare as strings) and the flags.

/// Decimal suffixes by power of ten, from nano to exa.
const DECIMAL: [(i32, &str); 10] =
    [(-9, "n"), (-6, "u"), (-3, "m"), (0, ""), (3, "k"), (6, "M"), (9, "G"), (12, "T"), (15, "P"), (18, "E")];

/// Binary suffixes by power of 1024.
const BINARY: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];

/// The factor of a suffix of either table. Both are exact in f64: powers of 1024 and of ten up to 10^18 are
/// representable, and `powi` takes a negative power as one correctly rounded division.
fn suffix_factor(suffix: &str) -> Option<f64> {
    if let Some(i) = BINARY.iter().position(|s| *s == suffix) {
        return Some(1024f64.powi(i as i32));
    }
    DECIMAL.iter().find(|(_, s)| *s == suffix).map(|(p, _)| 10f64.powi(*p))
}

/// The value of a quantity in base units (cores, bytes), or `None` when it is not a quantity.
pub fn parse(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let n: f64 = number.parse().ok()?;
    let factor = match suffix_factor(suffix) {
        Some(f) => f,
        // `E` alone is exa, found above; `e3` and `E3` are exponents.
        None if suffix.starts_with(['e', 'E']) => 10f64.powi(suffix[1..].parse().ok()?),
        None => return None,
    };
    Some(n * factor)
}

/// CPU quantity in millicores (`250m` -> 250, `2` -> 2000), rounded up as Kubernetes does.
pub fn millicores(q: &str) -> Option<i64> {
    parse(q).map(|c| (c * 1000.0 - 1e-9).ceil() as i64)
}

/// Memory or storage quantity in bytes.
pub fn bytes(q: &str) -> Option<i64> {
    parse(q).map(|b| b.round() as i64)
}

/// A size in bytes, as flags take it: a whole number with an optional suffix K (or k), M, G (powers of 1000) or
/// Ki, Mi, Gi (of 1024), and an optional `B`; zero is refused. Nothing finer or larger: a spool size in
/// milli-bytes or terabytes is a typo.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().trim_end_matches(['B', 'b']);
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    let unit = suffix_factor(if suffix == "K" { "k" } else { suffix })
        .filter(|f| (1.0..=f64::from(1u32 << 30)).contains(f))
        .ok_or_else(|| format!("{s:?} is not a size like 500Mi or 1G"))? as u64;
    let n: u64 = digits.parse().map_err(|_| format!("{s:?} is not a size like 500Mi or 1G"))?;
    n.checked_mul(unit).filter(|n| *n > 0).ok_or_else(|| format!("{s:?}: must be more than zero and fit 64 bits"))
}

/// `mantissa * 10^exponent` in canonical DecimalSI form (`1500m`, `123m`, `2`, `12k`, `80666400n`): the largest
/// suffix that keeps the number an integer.
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

/// Bytes in canonical BinarySI form (`1875376Ki`, `16Gi`, `1536`); below 1024 Kubernetes switches to the decimal
/// form (`1k` for 1000), and so do we.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(millicores("100m"), Some(100));
        assert_eq!(millicores("2"), Some(2000));
        assert_eq!(millicores("1.5"), Some(1500));
        assert_eq!(millicores("3800m"), Some(3800));
        assert_eq!(bytes("64Mi"), Some(64 << 20));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("128974848"), Some(128_974_848));
        assert_eq!(bytes("129e6"), Some(129_000_000));
        assert_eq!(bytes("16Gi"), Some(16 << 30));
        assert_eq!(bytes("lots"), None);
        assert_eq!(bytes("12Qi"), None);
    }

    #[test]
    fn every_suffix_and_exponent() {
        // Each factor is the exact literal, so a value is the same product it always was.
        let factors = [("n", 1e-9), ("u", 1e-6), ("m", 1e-3), ("", 1.0), ("k", 1e3), ("M", 1e6), ("G", 1e9)];
        let factors = factors.into_iter().chain([("T", 1e12), ("P", 1e15), ("E", 1e18), ("Ki", 1024.0)]);
        for (suffix, factor) in factors.chain([("Mi", 1048576.0), ("Gi", 1073741824.0)]) {
            assert_eq!(suffix_factor(suffix), Some(factor), "{suffix}");
            assert_eq!(parse(&format!("5{suffix}")), Some(5.0 * factor), "{suffix}");
        }
        assert_eq!(parse("2E"), Some(2e18));
        assert_eq!(parse("2E3"), Some(2e3));
        assert_eq!(parse("2e-3"), Some(2e-3));
        assert_eq!(parse("1Ei"), Some(1024f64.powi(6)));
        assert_eq!(parse(" 1.5Ti "), Some(1.5 * 1024f64.powi(4)));
        assert_eq!(parse("1e"), None);
        assert_eq!(parse("1K"), None, "Kubernetes spells kilo k");
        assert_eq!(parse("Mi"), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2G"), Ok(2_000_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("3K"), Ok(3000));
        assert_eq!(parse_size("3kb"), Ok(3000));
        assert_eq!(parse_size("500Mi"), Ok(500 << 20));
        for bad in ["lots", "0", "0Gi", "1Ti", "1T", "1m", "1.5G", "-1", "", "99999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

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
}
