//! `--authentication_token_webhook`: bearer tokens checked by the Kubernetes API server (a TokenReview), so that
//! service-account and user tokens of the cluster work without a file to keep in sync.
//!
//! Answers are cached by token for `--authentication_token_webhook_cache_ttl` (refusals for at most 10s, so a
//! token created a moment too late is not locked out for long): `kubectl top` and the HPA poll every few seconds,
//! and one API call per request would put heapster's load on the API server.
//!
//! Every request with a new made-up token would otherwise become one TokenReview under heapster's service
//! account, so an anonymous client could make heapster flood the API server. Three guards: a token that cannot be
//! one the API server issues (neither a JWT nor a bootstrap token) is refused here; refusals are cached apart from
//! the users, so that a flood of refusals cannot push the users out; and reviews of tokens not in the cache are
//! rate-limited (`--authentication_token_webhook_rate`), the requests over it answered 429.

use super::Identity;
use super::metrics::AuthMetrics;
use base64::Engine;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a refusal is remembered, at most.
const NEGATIVE_TTL: Duration = Duration::from_secs(10);
/// Tokens remembered at once, per cache: a flood of made-up tokens must not grow memory without bound.
const MAX_CACHED: usize = 4096;
/// A TokenReview that takes longer fails the request (401) rather than holding it.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(10);

/// What the API server said about one token.
#[derive(Debug, Clone)]
pub enum Review {
    Authenticated(Identity),
    /// Not a valid token; the API server's reason when it gave one.
    Rejected(String),
}

/// Why a token was not reviewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReviewed {
    /// The API server could not be asked (not cached: the next request asks again).
    Failed(String),
    /// Over `--authentication_token_webhook_rate`: the client should retry later.
    RateLimited,
}

/// The answers remembered: users and refusals apart, each bounded.
#[derive(Default)]
struct Cache {
    users: HashMap<String, (Instant, Review)>,
    refused: HashMap<String, (Instant, Review)>,
}

/// Reviews of tokens not in the cache allowed per second, with a burst of twice as many.
struct Budget {
    rate: f64,
    available: f64,
    at: Instant,
}

impl Budget {
    fn new(rate: f64) -> Budget {
        Budget { rate, available: 2.0 * rate, at: Instant::now() }
    }

    /// Takes one review from the budget, if there is one left.
    fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * self.rate;
        self.available = (self.available + refill).min(2.0 * self.rate);
        self.at = now;
        if self.available < 1.0 {
            return false;
        }
        self.available -= 1.0;
        true
    }
}

/// Asks the API server about tokens, remembering its answers for a while.
pub struct TokenReviewer {
    api: kube::Api<TokenReview>,
    ttl: Duration,
    cache: Mutex<Cache>,
    budget: Mutex<Budget>,
    metrics: AuthMetrics,
    last_warning: Mutex<Option<Instant>>,
}

impl TokenReviewer {
    /// Reviews through `client`'s API server, at most `rate` reviews of new tokens a second.
    pub fn new(client: kube::Client, ttl: Duration, rate: f64, metrics: AuthMetrics) -> TokenReviewer {
        TokenReviewer {
            api: kube::Api::all(client),
            ttl,
            cache: Mutex::default(),
            budget: Mutex::new(Budget::new(rate)),
            metrics,
            last_warning: Mutex::default(),
        }
    }

    /// The API server's answer for `token`, from the cache when fresh; a token that cannot be the API server's is
    /// refused without asking.
    pub async fn review(&self, token: &str) -> Result<Review, NotReviewed> {
        let now = Instant::now();
        {
            let cache = self.lock();
            if let Some((until, review)) = cache.users.get(token).or_else(|| cache.refused.get(token))
                && *until > now
            {
                self.metrics.token_review(review, true);
                return Ok(review.clone());
            }
        }
        if !issued_by_kubernetes(token) {
            self.metrics.token_review_skipped("malformed");
            return Ok(Review::Rejected("not a JWT or bootstrap token, not sent to the API server".into()));
        }
        if !self.budget.lock().unwrap_or_else(|p| p.into_inner()).take(now) {
            self.metrics.token_review_skipped("rate_limited");
            return Err(NotReviewed::RateLimited);
        }
        let answer = match tokio::time::timeout(REVIEW_TIMEOUT, self.ask(token)).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("no TokenReview answer from the API server within {REVIEW_TIMEOUT:?}")),
        };
        let review = match answer {
            Ok(review) => review,
            Err(e) => {
                self.metrics.token_review_error();
                self.warn_now_and_then(&e);
                return Err(NotReviewed::Failed(e));
            }
        };
        self.metrics.token_review(&review, false);
        let mut cache = self.lock();
        let (map, ttl) = match review {
            Review::Authenticated(_) => (&mut cache.users, self.ttl),
            Review::Rejected(_) => (&mut cache.refused, self.ttl.min(NEGATIVE_TTL)),
        };
        if map.len() >= MAX_CACHED {
            map.retain(|_, (until, _)| *until > now);
            if map.len() >= MAX_CACHED {
                map.clear();
            }
        }
        map.insert(token.to_string(), (now + ttl, review.clone()));
        Ok(review)
    }

    /// Logs a failed review at warn, once a minute at most: during an API server outage every request with a token
    /// fails, and the counter already says how many.
    fn warn_now_and_then(&self, e: &str) {
        let mut last = self.last_warning.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            *last = Some(Instant::now());
            tracing::warn!("checking bearer tokens with the API server: {e} (requests with tokens get 401 meanwhile)");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn ask(&self, token: &str) -> Result<Review, String> {
        let request = TokenReview {
            spec: TokenReviewSpec { token: Some(token.to_string()), audiences: None },
            ..Default::default()
        };
        let answer = self.api.create(&kube::api::PostParams::default(), &request).await.map_err(|e| match e {
            kube::Error::Api(s) if s.code == 403 => format!(
                "the API server refused the TokenReview ({}): heapster's service account needs `create` on \
                 tokenreviews.authentication.k8s.io (see deploy/kubernetes/rbac.yaml)",
                s.message
            ),
            e => format!("TokenReview: {e}"),
        })?;
        let status = answer.status.unwrap_or_default();
        let user = status.user.unwrap_or_default();
        match (status.authenticated, user.username) {
            (Some(true), Some(name)) if !name.is_empty() => {
                Ok(Review::Authenticated(Identity { name, groups: user.groups.unwrap_or_default() }))
            }
            _ => Ok(Review::Rejected(status.error.unwrap_or_else(|| "token not authenticated".into()))),
        }
    }
}

/// Whether `token` has the form of a token the API server can vouch for: a JWT (service-account and OIDC tokens)
/// whose header and claims are JSON objects, or a bootstrap token (`[a-z0-9]{6}.[a-z0-9]{16}`). Other tokens would
/// only cost a TokenReview to be refused.
pub fn issued_by_kubernetes(token: &str) -> bool {
    let lower_alnum = |s: &str| s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if let Some((id, secret)) = token.split_once('.')
        && id.len() == 6
        && secret.len() == 16
        && lower_alnum(id)
        && lower_alnum(secret)
    {
        return true;
    }
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let object = |part: &str| {
        b64.decode(part)
            .ok()
            .and_then(|json| serde_json::from_slice::<serde_json::Value>(&json).ok())
            .is_some_and(|v| v.is_object())
    };
    let parts: Vec<&str> = token.split('.').collect();
    matches!(parts[..], [header, claims, signature]
        if object(header) && object(claims) && !signature.is_empty() && b64.decode(signature).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_the_api_server_can_vouch_for() {
        let jwt =
            "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6a3ViZS1zeXN0ZW06aHBhIn0.c2ln";
        assert!(issued_by_kubernetes(jwt));
        assert!(issued_by_kubernetes("abcdef.0123456789abcdef"), "a bootstrap token");
        for made_up in ["made-up", "a.b.c", "abcdef.0123456789ABCDEF", "", "..", &format!("{jwt}.x"), "e30.e30."] {
            assert!(!issued_by_kubernetes(made_up), "{made_up}");
        }
        assert!(issued_by_kubernetes("e30.e30.c2ln"), "{{}} and {{}} are JSON objects");
    }

    #[test]
    fn the_budget_refills_at_its_rate() {
        let mut b = Budget::new(2.0);
        let t0 = b.at;
        assert_eq!((0..10).filter(|_| b.take(t0)).count(), 4, "a burst of twice the rate");
        assert!(b.take(t0 + Duration::from_millis(500)), "one more after half a second");
        assert!(!b.take(t0 + Duration::from_millis(500)));
        assert_eq!((0..10).filter(|_| b.take(t0 + Duration::from_secs(60))).count(), 4, "the burst is the cap");
    }

    #[tokio::test]
    async fn an_unreachable_api_server_is_an_error_not_a_refusal() {
        heapster_sources::ensure_crypto_provider();
        // A port nothing listens on: bind one, then free it.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = kube::Config::new(format!("http://127.0.0.1:{port}").parse().unwrap());
        let reviewer = TokenReviewer::new(
            kube::Client::try_from(config).unwrap(),
            Duration::from_secs(60),
            100.0,
            AuthMetrics::default(),
        );
        for _ in 0..2 {
            let e = reviewer.review("e30.e30.c2ln").await.unwrap_err();
            assert!(matches!(&e, NotReviewed::Failed(e) if e.starts_with("TokenReview:")), "{e:?}");
        }
        let cache = reviewer.lock();
        assert!(cache.users.is_empty() && cache.refused.is_empty(), "failures to ask are not cached");
    }
}
