//! `--authentication_token_webhook`: bearer tokens checked by the Kubernetes API server (a TokenReview), so that
//! service-account and user tokens of the cluster work without a file to keep in sync.
//!
//! Answers are cached by token for `--authentication_token_webhook_cache_ttl` (refusals for at most 10s, so a
//! token created a moment too late is not locked out for long): `kubectl top` and the HPA poll every few seconds,
//! and one API call per request would put heapster's load on the API server.

use super::Identity;
use super::metrics::AuthMetrics;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a refusal is remembered, at most.
const NEGATIVE_TTL: Duration = Duration::from_secs(10);
/// Tokens remembered at once: a flood of made-up tokens must not grow memory without bound.
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

/// Asks the API server about tokens, remembering its answers for a while.
pub struct TokenReviewer {
    api: kube::Api<TokenReview>,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Review)>>,
    metrics: AuthMetrics,
    last_warning: Mutex<Option<Instant>>,
}

impl TokenReviewer {
    /// Reviews through `client`'s API server.
    pub fn new(client: kube::Client, ttl: Duration, metrics: AuthMetrics) -> TokenReviewer {
        TokenReviewer {
            api: kube::Api::all(client),
            ttl,
            cache: Mutex::default(),
            metrics,
            last_warning: Mutex::default(),
        }
    }

    /// The API server's answer for `token`, from the cache when fresh. `Err`: the API server could not be asked
    /// (not cached: the next request asks again).
    pub async fn review(&self, token: &str) -> Result<Review, String> {
        let now = Instant::now();
        if let Some((until, review)) = self.lock().get(token)
            && *until > now
        {
            self.metrics.token_review(review, true);
            return Ok(review.clone());
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
                return Err(e);
            }
        };
        self.metrics.token_review(&review, false);
        let ttl = match review {
            Review::Authenticated(_) => self.ttl,
            Review::Rejected(_) => self.ttl.min(NEGATIVE_TTL),
        };
        let mut cache = self.lock();
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, (until, _)| *until > now);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(token.to_string(), (now + ttl, review.clone()));
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Review)>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_api_server_is_an_error_not_a_refusal() {
        heapster_sources::ensure_crypto_provider();
        // A port nothing listens on: bind one, then free it.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = kube::Config::new(format!("http://127.0.0.1:{port}").parse().unwrap());
        let reviewer = TokenReviewer::new(
            kube::Client::try_from(config).unwrap(),
            Duration::from_secs(60),
            AuthMetrics::default(),
        );
        for _ in 0..2 {
            let e = reviewer.review("some-token").await.unwrap_err();
            assert!(e.starts_with("TokenReview:"), "{e}");
        }
        assert!(reviewer.lock().is_empty(), "failures to ask are not cached: the next request asks again");
    }
}
