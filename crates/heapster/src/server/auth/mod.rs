//! Who may read heapster's API: a verified client certificate (its CN is the user, its O fields the groups) or a
//! bearer token (from `--token_auth_file` or a TokenReview), and, with `--allowed_users`, only the users named
//! there.
//!
//! As Kubernetes' union authenticator: any credential that authenticates an allowed user lets the request in, so a
//! client may hold a certificate and a token. `/healthz` stays open so that probes need no credentials. With no
//! way to authenticate configured, everything is open, as Heapster was.
//!
//! Denials are Kubernetes Status objects (401 without valid credentials, 403 for a user not allowed), so kubectl
//! and client-go print their message; each is logged at debug and counted on `/metrics`.

pub mod access_review;
pub mod metrics;
pub mod token_file;
pub mod token_review;

use access_review::Authorizer;
use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use metrics::AuthMetrics;
use std::collections::HashSet;
use std::net::SocketAddr;
use token_file::TokenFile;
use token_review::{NotReviewed, Review, TokenReviewer};

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// What `--allowed_users` lists: a certificate's CN, a token file's user column, a TokenReview's username.
    pub name: String,
    /// A certificate's organizations, the token file's or TokenReview's groups, a front proxy's group headers:
    /// sent in SubjectAccessReviews (`--authorization_webhook`), so that RBAC bindings to groups apply.
    /// `--allowed_users` names users only.
    pub groups: Vec<String>,
}

/// What one connection brought, found once at its handshake and seen by each of its requests.
#[derive(Debug, Clone)]
pub struct Peer {
    /// For the debug line of a denial.
    pub addr: SocketAddr,
    /// Whether a client certificate was presented (and so verified against `--tls_client_ca`).
    pub has_cert: bool,
    /// The user (CN) and groups (O) of a certificate signed by `--tls_client_ca`.
    pub cert_user: Option<Identity>,
    /// The CN of a certificate signed by `--requestheader_client_ca_file`: a front proxy, whose user headers are
    /// read if the CN is allowed.
    pub front_proxy: Option<String>,
}

/// `--requestheader_*`: the user a front proxy (kube-apiserver's aggregator) names in request headers, trusted
/// only on a connection whose certificate is signed by `--requestheader_client_ca_file`.
pub struct RequestHeaders {
    /// Empty: any CN.
    pub allowed_names: HashSet<String>,
    pub username_headers: Vec<String>,
    pub group_headers: Vec<String>,
}

impl RequestHeaders {
    pub fn from_flags(flags: &crate::flags::Flags) -> RequestHeaders {
        let clean = |v: &[String]| v.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect::<Vec<_>>();
        RequestHeaders {
            allowed_names: clean(&flags.requestheader_allowed_names).into_iter().collect(),
            username_headers: clean(&flags.requestheader_username_headers),
            group_headers: clean(&flags.requestheader_group_headers),
        }
    }

    /// The user the headers name, if the proxy `cn` is trusted and a user header is set.
    fn identity(&self, cn: &str, headers: &HeaderMap) -> Option<Identity> {
        if !self.allowed_names.is_empty() && !self.allowed_names.contains(cn) {
            return None;
        }
        let name = self
            .username_headers
            .iter()
            .find_map(|h| headers.get(h.as_str())?.to_str().ok().map(str::trim).filter(|v| !v.is_empty()))?;
        let groups = self
            .group_headers
            .iter()
            .flat_map(|h| headers.get_all(h.as_str()))
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect();
        Some(Identity { name: name.to_string(), groups })
    }
}

/// The access policy of heapster's server, built once from the flags.
pub struct Authenticator {
    /// `--tls_client_ca` is set: client certificates authenticate.
    pub client_certs: bool,
    /// `--requestheader_client_ca_file` is set: front proxies name users in headers.
    pub front_proxy: Option<RequestHeaders>,
    /// `--token_auth_file`, asked first: no round trip.
    pub token_file: Option<TokenFile>,
    /// `--authentication_token_webhook`, asked for tokens the file does not know.
    pub reviewer: Option<TokenReviewer>,
    /// Empty: every authenticated user is allowed.
    pub allowed_users: HashSet<String>,
    /// `--authorization_webhook`: the API server decides what an allowed user may read.
    pub authorizer: Option<Authorizer>,
    /// Counts every decision, for `/metrics`.
    pub metrics: AuthMetrics,
}

/// Why a token did not authenticate anyone.
enum TokenFailure {
    /// No configured authenticator knows it.
    Invalid(String),
    /// No authenticator could be asked (the API server is down, say).
    Unchecked(String),
    /// Too many new tokens to review: the client should retry later.
    Throttled,
}

impl Authenticator {
    /// Whether requests need credentials at all.
    pub fn enabled(&self) -> bool {
        self.client_certs || self.front_proxy.is_some() || self.token_file.is_some() || self.reviewer.is_some()
    }

    fn accepts_tokens(&self) -> bool {
        self.token_file.is_some() || self.reviewer.is_some()
    }

    fn allowed(&self, user: &str) -> bool {
        self.allowed_users.is_empty() || self.allowed_users.contains(user)
    }

    /// `Ok` lets the request through; `Err` is the answer to send instead.
    pub async fn check(&self, method: &Method, path: &str, headers: &HeaderMap, peer: &Peer) -> Result<(), Response> {
        if !self.enabled() || path == "/healthz" {
            return Ok(());
        }
        // The first authenticated user that is not allowed, for the 403's message.
        let mut refused: Option<(String, &str)> = None;
        if let (Some(cn), Some(front_proxy)) = (&peer.front_proxy, &self.front_proxy)
            && let Some(id) = front_proxy.identity(cn, headers)
        {
            if self.allowed(&id.name) {
                return self.authorize(&id, "front_proxy", method, path, peer).await;
            }
            refused = Some((id.name, "front_proxy"));
        }
        if let Some(id) = peer.cert_user.as_ref().filter(|_| self.client_certs) {
            if self.allowed(&id.name) {
                return self.authorize(id, "client_cert", method, path, peer).await;
            }
            refused = Some((id.name.clone(), "client_cert"));
        }
        let token = bearer_token(headers);
        let mut token_failure = None;
        if let Some(token) = token.filter(|_| self.accepts_tokens()) {
            match self.authenticate_token(token).await {
                Ok(id) if self.allowed(&id.name) => return self.authorize(&id, "token", method, path, peer).await,
                Ok(id) => refused = refused.or(Some((id.name, "token"))),
                Err(e) => token_failure = Some(e),
            }
        }
        let (status, credential, message) = match (refused, token_failure) {
            (Some((user, credential)), _) => {
                (StatusCode::FORBIDDEN, credential, format!("user {user:?} is not in heapster's --allowed_users"))
            }
            (None, Some(TokenFailure::Invalid(why))) => (StatusCode::UNAUTHORIZED, "token", why),
            (None, Some(TokenFailure::Unchecked(why))) => (StatusCode::UNAUTHORIZED, "token", why),
            (None, Some(TokenFailure::Throttled)) => (
                StatusCode::TOO_MANY_REQUESTS,
                "token",
                "too many new bearer tokens to check with the API server; retry in a second".into(),
            ),
            (None, None) => (StatusCode::UNAUTHORIZED, "none", self.no_credentials(peer, token.is_some())),
        };
        let outcome = match status {
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::TOO_MANY_REQUESTS => "throttled",
            _ => "unauthorized",
        };
        self.metrics.decision(outcome, credential);
        tracing::debug!("denied {method} {path} from {}: {} {message}", peer.addr, status.as_u16());
        Err(status_response(status, &message))
    }

    /// Lets `id` in, unless `--authorization_webhook` says it may not make this request (403 with the API
    /// server's reason).
    async fn authorize(
        &self,
        id: &Identity,
        credential: &str,
        method: &Method,
        path: &str,
        peer: &Peer,
    ) -> Result<(), Response> {
        if let Some(authorizer) = &self.authorizer
            && let Err(message) = authorizer.authorize(id, method, path).await
        {
            self.metrics.decision("forbidden", credential);
            tracing::debug!("denied {method} {path} from {}: 403 {message}", peer.addr);
            return Err(status_response(StatusCode::FORBIDDEN, &message));
        }
        self.metrics.decision("allowed", credential);
        Ok(())
    }

    /// The user a bearer token belongs to: the token file first (no round trip), then the API server.
    async fn authenticate_token(&self, token: &str) -> Result<Identity, TokenFailure> {
        if let Some(id) = self.token_file.as_ref().and_then(|f| f.authenticate(token)) {
            return Ok(id);
        }
        let Some(reviewer) = &self.reviewer else {
            return Err(TokenFailure::Invalid("invalid bearer token".into()));
        };
        match reviewer.review(token).await {
            Ok(Review::Authenticated(id)) => Ok(id),
            Ok(Review::Rejected(why)) => Err(TokenFailure::Invalid(format!("invalid bearer token: {why}"))),
            Err(NotReviewed::Failed(e)) => {
                Err(TokenFailure::Unchecked(format!("the bearer token could not be checked: {e}")))
            }
            Err(NotReviewed::RateLimited) => Err(TokenFailure::Throttled),
        }
    }

    /// The 401 message when no credential authenticated anyone: what this server would accept.
    fn no_credentials(&self, peer: &Peer, token_given: bool) -> String {
        if peer.has_cert && self.client_certs && peer.cert_user.is_none() {
            return "the client certificate names no user (no subject CN)".into();
        }
        let accepted = match (self.client_certs, self.accepts_tokens()) {
            (true, true) => "a client certificate signed by --tls_client_ca or a bearer token",
            (true, false) => "a client certificate signed by --tls_client_ca",
            _ => "a bearer token",
        };
        if token_given {
            format!("bearer tokens are not accepted here; send {accepted}")
        } else {
            format!("no credentials: send {accepted}")
        }
    }
}

/// The token of `Authorization: Bearer <token>` (the scheme in any case).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A Kubernetes `Status` failure, as the API server answers denials.
pub fn status_response(status: StatusCode, message: &str) -> Response {
    let reason = match status {
        StatusCode::UNAUTHORIZED => "Unauthorized",
        StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::TOO_MANY_REQUESTS => "TooManyRequests",
        _ => status.canonical_reason().unwrap_or("Failure"),
    };
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": status.as_u16(),
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    if status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(cert_user: Option<&str>) -> Peer {
        Peer {
            addr: "127.0.0.1:1".parse().unwrap(),
            has_cert: cert_user.is_some(),
            cert_user: cert_user.map(|name| Identity { name: name.into(), groups: Vec::new() }),
            front_proxy: None,
        }
    }

    /// A token file holding `text`, in a file of its own (the file is read again only when it changes).
    fn token_file(text: &str) -> TokenFile {
        static FILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("heapster-auth-unit-{}-{n}.csv", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let file = TokenFile::load(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }

    fn auth(client_certs: bool, tokens: Option<&str>, allowed: &[&str]) -> Authenticator {
        Authenticator {
            client_certs,
            front_proxy: None,
            token_file: tokens.map(token_file),
            reviewer: None,
            allowed_users: allowed.iter().map(|s| s.to_string()).collect(),
            authorizer: None,
            metrics: AuthMetrics::default(),
        }
    }

    fn headers(token: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(t) = token {
            h.insert(header::AUTHORIZATION, format!("Bearer {t}").parse().unwrap());
        }
        h
    }

    async fn code(a: &Authenticator, path: &str, token: Option<&str>, cert: Option<&str>) -> u16 {
        match a.check(&Method::GET, path, &headers(token), &peer(cert)).await {
            Ok(()) => 200,
            Err(r) => r.status().as_u16(),
        }
    }

    #[tokio::test]
    async fn decisions() {
        let open = auth(false, None, &[]);
        assert_eq!(code(&open, "/api/v1/model/nodes/", None, None).await, 200);
        let a = auth(true, Some("good,alice,1\nother,mallory,2\n"), &["alice", "front-proxy-client"]);
        assert_eq!(code(&a, "/healthz", None, None).await, 200);
        assert_eq!(code(&a, "/metrics", None, None).await, 401);
        assert_eq!(code(&a, "/metrics", None, Some("front-proxy-client")).await, 200);
        assert_eq!(code(&a, "/metrics", None, Some("eve")).await, 403);
        assert_eq!(code(&a, "/metrics", Some("good"), Some("eve")).await, 200, "any allowed credential will do");
        assert_eq!(code(&a, "/metrics", Some("good"), None).await, 200);
        assert_eq!(code(&a, "/metrics", Some("other"), None).await, 403);
        assert_eq!(code(&a, "/metrics", Some("bad"), None).await, 401);
        assert_eq!(code(&a, "/metrics", Some("bad"), Some("eve")).await, 403, "authenticated by its certificate");
        let certs_only = auth(true, None, &[]);
        assert_eq!(code(&certs_only, "/", Some("good"), None).await, 401);
        assert_eq!(code(&certs_only, "/", None, Some("anyone")).await, 200);
        let tokens_only = auth(false, Some("good,alice,1"), &[]);
        assert_eq!(code(&tokens_only, "/", None, Some("alice")).await, 401, "certificates are not trusted here");
    }

    #[tokio::test]
    async fn denials_are_kubernetes_status_objects() {
        let a = auth(true, Some("good,alice,1"), &["alice"]);
        let r = a.check(&Method::GET, "/x", &headers(Some("nope")), &peer(None)).await.unwrap_err();
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["kind"], "Status");
        assert_eq!((v["reason"].as_str(), v["code"].as_u64()), (Some("Unauthorized"), Some(401)));
        assert_eq!(v["message"], "invalid bearer token");
        let r = a.check(&Method::GET, "/x", &headers(None), &peer(Some("bob"))).await.unwrap_err();
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((v["reason"].as_str(), v["code"].as_u64()), (Some("Forbidden"), Some(403)));
        assert!(v["message"].as_str().unwrap().contains("\"bob\""), "{v}");
    }

    #[test]
    fn bearer_header() {
        let h = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, v.parse().unwrap());
            h
        };
        assert_eq!(bearer_token(&h("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&h("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(&h("Basic abc")), None);
        assert_eq!(bearer_token(&h("Bearer ")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
