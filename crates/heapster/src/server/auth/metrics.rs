//! Counters of access decisions and TokenReviews on `/metrics`, so that an operator sees refused clients (a
//! rotated certificate, an expired token) without turning on debug logs.

use super::token_review::Review;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Labels of one access decision.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// `allowed`, `unauthorized` (401), `forbidden` (403) or `throttled` (429: too many new tokens to review).
    pub outcome: String,
    /// What the request was decided on: `client_cert`, `token` or `none`.
    pub credential: String,
}

/// Labels of one TokenReview answer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReviewLabels {
    /// `authenticated`, `rejected`, `error` (the API server could not be asked), or not asked: `malformed` (not a
    /// JWT or bootstrap token) or `rate_limited` (over --authentication_token_webhook_rate).
    pub result: String,
    /// Whether the answer came from the cache.
    pub cached: String,
}

/// The counters; clones share them.
#[derive(Clone, Default)]
pub struct AuthMetrics {
    decisions: Family<DecisionLabels, Counter>,
    reviews: Family<ReviewLabels, Counter>,
    access_reviews: Family<ReviewLabels, Counter>,
}

impl AuthMetrics {
    /// Registers the counters in heapster's registry.
    pub fn new(registry: &mut Registry) -> AuthMetrics {
        let m = AuthMetrics::default();
        registry.register(
            "heapster_http_auth_decisions",
            "Requests to heapster's API decided by authentication (not /healthz, not when no auth is configured), by \
             outcome and the credential decided on",
            m.decisions.clone(),
        );
        registry.register(
            "heapster_token_reviews",
            "Bearer tokens checked with the API server (TokenReview), by result and whether the answer was cached",
            m.reviews.clone(),
        );
        registry.register(
            "heapster_access_reviews",
            "Requests checked with the API server (SubjectAccessReview, --authorization_webhook), by result \
             (allowed, denied or error) and whether the answer was cached",
            m.access_reviews.clone(),
        );
        m
    }

    /// Counts one access decision.
    pub fn decision(&self, outcome: &str, credential: &str) {
        self.decisions.get_or_create(&DecisionLabels { outcome: outcome.into(), credential: credential.into() }).inc();
    }

    pub(super) fn token_review(&self, review: &Review, cached: bool) {
        let result = match review {
            Review::Authenticated(_) => "authenticated",
            Review::Rejected(_) => "rejected",
        };
        self.reviews.get_or_create(&ReviewLabels { result: result.into(), cached: cached.to_string() }).inc();
    }

    pub(super) fn token_review_skipped(&self, why: &str) {
        self.reviews.get_or_create(&ReviewLabels { result: why.into(), cached: "false".into() }).inc();
    }

    pub(super) fn access_review(&self, allowed: bool, cached: bool) {
        let result = if allowed { "allowed" } else { "denied" };
        self.access_reviews.get_or_create(&ReviewLabels { result: result.into(), cached: cached.to_string() }).inc();
    }

    pub(super) fn access_review_error(&self) {
        self.access_reviews.get_or_create(&ReviewLabels { result: "error".into(), cached: "false".into() }).inc();
    }

    pub(super) fn token_review_error(&self) {
        self.reviews.get_or_create(&ReviewLabels { result: "error".into(), cached: "false".into() }).inc();
    }
}
