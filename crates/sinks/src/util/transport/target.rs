//! The `--sink` target of the socket sinks (`statsd:udp://host:8125`, `riemann:tcp://host:5555`): Heapster read
//! it with Go's `url.Parse` and used only the host and port, so any scheme the original's examples show is taken,
//! a bare `host:port` too, and a missing part falls back to the kind's default.

use super::Endpoint;

impl Endpoint {
    /// The host and port of `target`. `schemes` are the ones accepted (anything else is refused, naming them);
    /// an empty target is `default_host:default_port`. The error is the reason only, for `Options::error`.
    pub fn from_target(
        target: &str,
        schemes: &[&str],
        default_host: &str,
        default_port: u16,
    ) -> Result<Endpoint, String> {
        if target.is_empty() {
            return Ok(Endpoint::new(default_host, default_port));
        }
        let with_scheme = if target.contains("://") { target.to_owned() } else { format!("{}://{target}", schemes[0]) };
        let url = url::Url::parse(&with_scheme).map_err(|e| format!("{target:?} is not host:port or a URL ({e})"))?;
        let expected = || {
            let forms: Vec<String> = schemes.iter().map(|s| format!("{s}://HOST:{default_port}")).collect();
            forms.join(" or ")
        };
        if !schemes.contains(&url.scheme()) {
            return Err(format!("{target:?}: expected {}", expected()));
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || !url.username().is_empty() {
            return Err(format!("{target:?}: only a host and a port are used here; expected {}", expected()));
        }
        let host = match url.host_str() {
            Some("") | None => default_host.to_owned(),
            Some(h) => h.to_owned(),
        };
        Ok(Endpoint::new(host, url.port().unwrap_or(default_port)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<String, String> {
        Endpoint::from_target(t, &["udp"], "localhost", 8125).map(|e| e.to_string())
    }

    #[test]
    fn urls_bare_addresses_and_defaults() {
        assert_eq!(parse("udp://statsd.monitoring:9125").unwrap(), "statsd.monitoring:9125");
        assert_eq!(parse("udp://10.0.0.1").unwrap(), "10.0.0.1:8125");
        assert_eq!(parse("udp://[::1]:8126").unwrap(), "[::1]:8126");
        assert_eq!(parse("statsd:8126").unwrap(), "statsd:8126");
        assert_eq!(parse("").unwrap(), "localhost:8125");
        let two = Endpoint::from_target("tcp://r:5556", &["http", "tcp"], "localhost", 5555).unwrap();
        assert_eq!(two.to_string(), "r:5556");
    }

    #[test]
    fn what_cannot_be_an_address_is_refused() {
        for (t, says) in [
            ("http://h:8125", "expected udp://HOST:8125"),
            ("udp://h:99999", "not host:port or a URL"),
            ("udp://h:8125/path", "only a host and a port"),
            ("udp://user@h:8125", "only a host and a port"),
        ] {
            let e = parse(t).unwrap_err();
            assert!(e.contains(says), "{t}: {e}");
        }
    }
}
