//! Kubernetes resource quantities (`100m`, `1.5`, `64Mi`, `1G`, `1e3`) as numbers.

/// The value of a quantity in base units (cores, bytes), or `None` when it is not a quantity.
pub fn parse(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let n: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
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
}
