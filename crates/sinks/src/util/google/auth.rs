//! OAuth access tokens for Google's APIs, from a service-account key (a JWT signed with the key, exchanged at the
//! key's `token_uri`) or from the metadata server's service account; cached and fetched again before they expire.
//!
//! Signed here with ring rather than through `gcp_auth`: the JWT is a dozen lines over crates the tree already has
//! (ring for RS256, rustls' PEM reader), while `gcp_auth` brings a second HTTP client and ignores
//! `GCE_METADATA_HOST`, which we would have to work around with a metadata provider of our own anyway.

use super::metadata::{Metadata, MetadataError};
use crate::SinkError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject as _;
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The scope that lets a token write metrics (Cloud Monitoring).
pub const MONITORING_WRITE: &str = "https://www.googleapis.com/auth/monitoring.write";
/// The scope that lets a token write log entries (Cloud Logging).
pub const LOGGING_WRITE: &str = "https://www.googleapis.com/auth/logging.write";

/// How long a signed assertion asks the token to live; Google's maximum.
const ASSERTION_LIFETIME: u64 = 3600;
/// A token is fetched again this long before it expires (Google's libraries: 3 min 45 s), so that no request
/// leaves with a token that expires on the way.
const REFRESH_MARGIN: Duration = Duration::from_secs(225);

/// A service-account key file (`gcloud iam service-accounts keys create`), with its key parsed once.
pub struct ServiceAccountKey {
    pub client_email: String,
    pub private_key_id: String,
    pub token_uri: String,
    pub project_id: Option<String>,
    key: RsaKeyPair,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey").field("client_email", &self.client_email).finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct KeyJson {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    #[serde(default)]
    private_key_id: String,
    private_key: Option<String>,
    token_uri: Option<String>,
    project_id: Option<String>,
}

impl ServiceAccountKey {
    /// Reads the key file's JSON. The message of an error says what is wrong with the file, not where it is.
    pub fn from_json(json: &[u8]) -> Result<Self, String> {
        let k: KeyJson = serde_json::from_slice(json).map_err(|e| format!("not a service-account key JSON ({e})"))?;
        match k.kind.as_deref() {
            Some("service_account") => {}
            Some(other) => {
                return Err(format!(
                    "holds credentials of type {other:?}; only service-account keys (\"type\": \"service_account\") \
                     are supported: create one with gcloud iam service-accounts keys create"
                ));
            }
            None => return Err("has no \"type\": expected a service-account key JSON".into()),
        }
        let missing = |f: &str| format!("has no {f:?}: expected a service-account key JSON");
        let pem = k.private_key.ok_or_else(|| missing("private_key"))?;
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| format!("private_key is not a PKCS#8 PEM key ({e:?})"))?;
        let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
            .map_err(|e| format!("private_key is not an RSA key ring accepts ({e})"))?;
        Ok(ServiceAccountKey {
            client_email: k.client_email.ok_or_else(|| missing("client_email"))?,
            private_key_id: k.private_key_id,
            token_uri: k.token_uri.unwrap_or_else(|| "https://oauth2.googleapis.com/token".into()),
            project_id: k.project_id.filter(|p| !p.is_empty()),
            key,
        })
    }

    /// The signed JWT (RFC 7523) that the token endpoint exchanges for an access token of `scope`, issued at `now`
    /// (seconds since the epoch).
    pub fn assertion(&self, scope: &str, now: u64) -> Result<String, String> {
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": self.private_key_id});
        let claims = serde_json::json!({
            "iss": self.client_email,
            "scope": scope,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        });
        let mut jwt =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), jwt.as_bytes(), &mut signature)
            .map_err(|_| "cannot sign the token request with the service-account key".to_owned())?;
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(jwt)
    }
}

/// Where tokens come from.
pub enum Provider {
    /// `GOOGLE_APPLICATION_CREDENTIALS`: the key file, read at start-up.
    Key(Box<ServiceAccountKey>),
    /// The metadata server's default service account (GCE, GKE).
    Metadata(Metadata),
}

/// The token endpoint's and the metadata server's answer.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

struct Cached {
    token: Arc<str>,
    refresh_at: Instant,
}

/// Access tokens of one scope, cached until shortly before they expire. Concurrent requests wait for one fetch.
pub struct Tokens {
    provider: Provider,
    scope: &'static str,
    client: reqwest::Client,
    cached: tokio::sync::Mutex<Option<Cached>>,
}

impl Tokens {
    /// `client` posts to the key's token endpoint (its deadline is the sink's).
    pub fn new(provider: Provider, scope: &'static str, client: reqwest::Client) -> Self {
        Tokens { provider, scope, client, cached: tokio::sync::Mutex::new(None) }
    }

    pub fn scope(&self) -> &'static str {
        self.scope
    }

    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// A token valid for a while yet: the cached one, or a new one.
    pub async fn token(&self) -> Result<Arc<str>, SinkError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| Instant::now() < c.refresh_at) {
            return Ok(c.token.clone());
        }
        let fetched_at = Instant::now();
        let answer = self.fetch().await?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(ASSERTION_LIFETIME));
        // A short-lived token (tests, an exotic endpoint) is refreshed at half its life instead.
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        let token: Arc<str> = answer.access_token.into();
        *cached = Some(Cached { token: token.clone(), refresh_at: fetched_at + lifetime - margin });
        Ok(token)
    }

    /// Drops the cached token, after an API refused it (revoked, or the clock was wrong).
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    async fn fetch(&self) -> Result<TokenAnswer, SinkError> {
        match &self.provider {
            Provider::Key(key) => self.exchange(key).await,
            Provider::Metadata(m) => {
                let path = "instance/service-accounts/default/token";
                let text = match m.get(path).await {
                    Ok(Some(t)) => t,
                    Ok(None) => {
                        return Err(SinkError::Reject(format!(
                            "no credentials: the metadata server at {} has no default service account; give the \
                             VM or node pool a service account, or set GOOGLE_APPLICATION_CREDENTIALS to a key file",
                            m.address()
                        )));
                    }
                    Err(MetadataError::Unreachable(why)) => {
                        return Err(SinkError::Retry(format!(
                            "no credentials: GOOGLE_APPLICATION_CREDENTIALS is not set and {why}; outside Google \
                             Cloud, set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file"
                        )));
                    }
                    Err(MetadataError::Failed(why)) => return Err(SinkError::Retry(format!("no token: {why}"))),
                };
                serde_json::from_str(&text).map_err(|e| {
                    SinkError::Retry(format!("the metadata server's token answer is not the expected JSON ({e})"))
                })
            }
        }
    }

    async fn exchange(&self, key: &ServiceAccountKey) -> Result<TokenAnswer, SinkError> {
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
        let assertion = key.assertion(self.scope, now).map_err(SinkError::Reject)?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
            .append_pair("assertion", &assertion)
            .finish();
        let resp = self
            .client
            .post(&key.token_uri)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                SinkError::Retry(format!(
                    "the token endpoint {} did not answer: {}",
                    key.token_uri,
                    heapster_net::error_chain(&e)
                ))
            })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status.is_success() {
            return serde_json::from_str(&text)
                .map_err(|e| SinkError::Retry(format!("the token endpoint's answer is not the expected JSON ({e})")));
        }
        // OAuth's error document: {"error": "invalid_grant", "error_description": "..."}.
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let what = [doc["error"].as_str(), doc["error_description"].as_str()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": ");
        let what = if what.is_empty() { text.trim().chars().take(200).collect() } else { what };
        let message = format!("the token endpoint {} answered {status}: {what}", key.token_uri);
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(SinkError::Retry(message))
        } else {
            Err(SinkError::Reject(format!(
                "{message}; the key of {} may be deleted or disabled, or this machine's clock is wrong: create a new \
                 key (gcloud iam service-accounts keys create) and point GOOGLE_APPLICATION_CREDENTIALS at it",
                key.client_email
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key file as the Cloud console writes them, from the Google fakes (their test-only key).
    fn key() -> ServiceAccountKey {
        let fake = heapster_testkit::google::GoogleFake::start_blocking();
        let path = fake.write_service_account_key(&crate::util::google::fake_tests::temp_dir("jwt"), "p-jwt");
        ServiceAccountKey::from_json(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn the_assertion_is_a_jwt_signed_with_the_key() {
        let key = key();
        assert_eq!(key.project_id.as_deref(), Some("p-jwt"));
        let jwt = key.assertion(MONITORING_WRITE, 1_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": key.private_key_id}));
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["aud"], key.token_uri);
        assert_eq!(claims["scope"], MONITORING_WRITE);
        assert_eq!((claims["iat"].as_u64(), claims["exp"].as_u64()), (Some(1_000), Some(4_600)));
        // The signature verifies with the key's public half, over the first two parts.
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            key.key.public().as_ref().to_vec(),
        );
        let signed = &jwt[..jwt.rfind('.').unwrap()];
        public.verify(signed.as_bytes(), &URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
        assert!(public.verify(b"something else", &URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).is_err());
    }

    #[test]
    fn key_files_that_cannot_work_say_why() {
        for (json, says) in [
            ("{", "not a service-account key JSON"),
            (r#"{"type":"authorized_user"}"#, "only service-account keys"),
            (r#"{"type":"service_account","client_email":"a"}"#, "no \"private_key\""),
            (r#"{"type":"service_account","private_key":"x","client_email":"a"}"#, "not a PKCS#8 PEM key"),
        ] {
            let e = ServiceAccountKey::from_json(json.as_bytes()).unwrap_err();
            assert!(e.contains(says), "{json}: {e}");
        }
    }
}
