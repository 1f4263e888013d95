//! The seam between sharding (who the other replicas are) and the APIs that answer for the whole cluster by
//! asking them ([`crate::fanout`]). Membership lives elsewhere (Leases, a headless Service, a fixed list); the API
//! only needs the other replicas' addresses at the moment a request comes in.

/// The other replicas of a sharded heapster, to fan reads out to.
pub trait Peers: Send + Sync + 'static {
    /// Base URLs (scheme://host:port) of the other live replicas, not this one.
    fn others(&self) -> Vec<String>;
}

/// A fixed set of replicas (`--peers=URL,URL`): enough for a StatefulSet whose pods have stable names, and what the
/// tests use. A replica that is down is simply not answered for (see [`crate::fanout`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticPeers(Vec<String>);

impl StaticPeers {
    /// Checks every URL once at start-up, so a typo is one clear line rather than an error per request.
    pub fn parse(urls: &[String]) -> Result<StaticPeers, String> {
        let mut out = Vec::with_capacity(urls.len());
        for url in urls.iter().map(|u| u.trim()).filter(|u| !u.is_empty()) {
            let Some(rest) = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")) else {
                return Err(format!("--peers: {url:?} is not an http:// or https:// URL (e.g. http://10.0.0.7:8082)"));
            };
            let host = rest.trim_end_matches('/');
            if host.is_empty() || host.contains(['/', '?', '#']) {
                return Err(format!(
                    "--peers: {url:?} must be a base URL, scheme://host:port without a path (e.g. https://heapster-1.heapster:8082)"
                ));
            }
            out.push(url.trim_end_matches('/').to_owned());
        }
        out.sort();
        out.dedup();
        Ok(StaticPeers(out))
    }
}

impl Peers for StaticPeers {
    fn others(&self) -> Vec<String> {
        self.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked_and_trimmed() {
        let p = StaticPeers::parse(&["http://a:1/".into(), " https://b:2".into(), "http://a:1".into()]).unwrap();
        assert_eq!(p.others(), ["http://a:1", "https://b:2"]);
        assert!(StaticPeers::parse(&["a:1".into()]).unwrap_err().contains("not an http:// or https:// URL"));
        assert!(StaticPeers::parse(&["http://a:1/api".into()]).unwrap_err().contains("without a path"));
    }
}
