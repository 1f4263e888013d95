//! The OAuth2 token endpoint (the JWT-bearer grant of service-account keys), the GCE metadata server, and the
//! bearer-token check in front of the APIs.

use super::{Service, Shared, error, error_info, json_response};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ring::signature::{self, KeyPair as _};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject as _;
use serde_json::{Value, json};
use std::time::Instant;

/// A throwaway RSA key generated for these tests only (`openssl genpkey -algorithm RSA`); it grants nothing anywhere.
const TEST_KEY_PEM: &str = include_str!("../../data/google/TEST-ONLY-service-account-key.pem");
/// The `private_key_id` of the keys written here, the `kid` a JWT header may name.
const KEY_ID: &str = "0000000000000000000000000000000000test";

/// base64url with or without `=` padding: Google's token endpoint takes both, and client libraries differ
/// (gcp_auth pads, most others do not).
const JWT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Scopes any of which lets a token call each service's write methods (the discovery documents' `scopes` lists).
const MONITORING_SCOPES: &[&str] = &[
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/monitoring",
    "https://www.googleapis.com/auth/monitoring.write",
    "https://www.googleapis.com/auth/monitoring.read",
];
const LOGGING_SCOPES: &[&str] = &[
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/logging.admin",
    "https://www.googleapis.com/auth/logging.write",
];

/// The test key, and the public half JWTs are verified with.
pub(crate) struct TestKey {
    pem: String,
    public: Vec<u8>,
}

/// An issued bearer token.
pub(crate) struct Token {
    pub expires: Instant,
    pub scopes: Vec<String>,
}

impl TestKey {
    pub fn load() -> TestKey {
        let der = PrivatePkcs8KeyDer::from_pem_slice(TEST_KEY_PEM.as_bytes()).expect("the test key is a PKCS#8 PEM");
        let pair = signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).expect("the test key is an RSA key");
        TestKey { pem: TEST_KEY_PEM.to_string(), public: pair.public_key().as_ref().to_vec() }
    }

    /// A key file as the Cloud console writes them.
    pub fn service_account_json(&self, project: &str, token_uri: &str) -> Value {
        let email = format!("heapster-test@{project}.iam.gserviceaccount.com");
        json!({
            "type": "service_account",
            "project_id": project,
            "private_key_id": KEY_ID,
            "private_key": self.pem,
            "client_email": email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": format!("https://www.googleapis.com/robot/v1/metadata/x509/{}", email.replace('@', "%40")),
            "universe_domain": "googleapis.com",
        })
    }

    /// Signs `claims` as a service-account JWT with the test key (for the tests of the token endpoint itself),
    /// its parts in base64url by `engine` (padded or not).
    #[cfg(test)]
    pub fn sign_with(&self, engine: &impl base64::Engine, header: &Value, claims: &Value) -> String {
        let der = PrivatePkcs8KeyDer::from_pem_slice(self.pem.as_bytes()).unwrap();
        let pair = signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap();
        let input = format!(
            "{}.{}",
            engine.encode(serde_json::to_vec(header).unwrap()),
            engine.encode(serde_json::to_vec(claims).unwrap())
        );
        let mut sig = vec![0; pair.public().modulus_len()];
        pair.sign(&signature::RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), input.as_bytes(), &mut sig).unwrap();
        format!("{input}.{}", engine.encode(sig))
    }

    #[cfg(test)]
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sign_with(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header, claims)
    }
}

fn oauth_error(error: &str, description: &str) -> Response {
    json_response(400, &json!({ "error": error, "error_description": description }))
}

/// A new bearer token with `scopes`, as both token sources answer it.
fn issue(shared: &Shared, scopes: Vec<String>) -> Response {
    let (token, lifetime) = new_token(shared, scopes);
    json_response(200, &json!({ "access_token": token, "expires_in": lifetime.as_secs(), "token_type": "Bearer" }))
}

/// A bearer token with `scopes`, valid for the current token lifetime, and that lifetime.
pub(crate) fn new_token(shared: &Shared, scopes: Vec<String>) -> (String, std::time::Duration) {
    let mut state = shared.state();
    state.tokens_issued += 1;
    let lifetime = state.token_lifetime;
    let token = format!("ya29.fake-{}-{:016x}", state.tokens_issued, rand_u64());
    state.tokens.insert(token.clone(), Token { expires: Instant::now() + lifetime, scopes });
    (token, lifetime)
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    u64::from_le_bytes(b)
}

/// `POST /token` with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT`.
pub(crate) fn token(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    let form_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !form_type.starts_with("application/x-www-form-urlencoded") {
        return oauth_error("invalid_request", "Invalid request: the body must be application/x-www-form-urlencoded.");
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match field("grant_type") {
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {}
        Some(other) => return oauth_error("unsupported_grant_type", &format!("Invalid grant_type: {other}")),
        None => return oauth_error("invalid_request", "Missing required parameter: grant_type"),
    }
    let Some(assertion) = field("assertion") else {
        return oauth_error("invalid_request", "Missing required parameter: assertion");
    };
    match verify_jwt(shared, assertion) {
        Ok(scopes) => issue(shared, scopes),
        Err((error, description)) => oauth_error(error, &description),
    }
}

/// The scopes a valid JWT asks for, or the OAuth error Google gives for it.
fn verify_jwt(shared: &Shared, jwt: &str) -> Result<Vec<String>, (&'static str, String)> {
    let invalid = |d: &str| ("invalid_grant", d.to_string());
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return Err(invalid("Invalid JWT: the assertion is not three base64url parts."));
    }
    let decode = |p: &str| JWT_BASE64.decode(p).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let (Some(head), Some(claims), Ok(sig)) = (decode(parts[0]), decode(parts[1]), JWT_BASE64.decode(parts[2])) else {
        return Err(invalid("Invalid JWT: the header, claims or signature is not base64url JSON."));
    };
    if head.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(invalid("Invalid JWT Signature."));
    }
    if let Some(kid) = head.get("kid")
        && kid != KEY_ID
    {
        return Err(invalid("Invalid JWT Signature."));
    }
    let signed = &jwt[..parts[0].len() + 1 + parts[1].len()];
    signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &shared.key.public)
        .verify(signed.as_bytes(), &sig)
        .map_err(|_| invalid("Invalid JWT Signature."))?;
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or_default();
    if !shared.state().accounts.contains(iss) {
        return Err(invalid("Invalid grant: account not found"));
    }
    if claims.get("aud").and_then(Value::as_str) != Some(&shared.token_uri()) {
        return Err(invalid(&format!(
            "Invalid JWT: Failed audience check. The right audience is {}",
            shared.token_uri()
        )));
    }
    let now = chrono::Utc::now().timestamp();
    let (iat, exp) = (claims.get("iat").and_then(Value::as_i64), claims.get("exp").and_then(Value::as_i64));
    let timely = match (iat, exp) {
        // Google allows a little clock skew either way; a token lives at most an hour.
        (Some(iat), Some(exp)) => iat < exp && exp - iat <= 3600 && iat <= now + 300 && exp > now,
        _ => false,
    };
    if !timely {
        return Err(invalid(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        ));
    }
    let scopes: Vec<String> =
        claims.get("scope").and_then(Value::as_str).unwrap_or_default().split_whitespace().map(String::from).collect();
    if scopes.is_empty() {
        return Err(("invalid_scope", "Invalid OAuth scope or ID token audience provided.".to_string()));
    }
    Ok(scopes)
}

/// The bearer-token check in front of the APIs: Google's 401 for no, unknown or expired token, 403 for a token
/// without a scope the service takes; `None` lets the request through.
pub(crate) fn authorize(shared: &Shared, headers: &HeaderMap, service: Service) -> Option<Response> {
    let unauthenticated = |message: &str, reason: &str| {
        let mut state = shared.state();
        *state.monitoring.rejected_requests.entry("unauthenticated".into()).or_default() += 1;
        error(401, message, vec![error_info(reason, service)])
    };
    let missing = "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
    let invalid = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Some(unauthenticated(missing, "CREDENTIALS_MISSING"));
    };
    let Some(token) = value.strip_prefix("Bearer ") else {
        return Some(unauthenticated(invalid, "ACCESS_TOKEN_TYPE_UNSUPPORTED"));
    };
    let scopes = {
        let state = shared.state();
        match state.tokens.get(token.trim()) {
            None => None,
            Some(t) if t.expires <= Instant::now() => Some(None),
            Some(t) => Some(Some(t.scopes.clone())),
        }
    };
    let scopes = match scopes {
        None => return Some(unauthenticated(invalid, "ACCESS_TOKEN_TYPE_UNSUPPORTED")),
        Some(None) => return Some(unauthenticated(invalid, "ACCESS_TOKEN_EXPIRED")),
        Some(Some(s)) => s,
    };
    let wanted = if service == Service::Logging { LOGGING_SCOPES } else { MONITORING_SCOPES };
    if !scopes.iter().any(|s| wanted.contains(&s.as_str())) {
        *shared.state().monitoring.rejected_requests.entry("insufficient_scopes".into()).or_default() += 1;
        return Some(error(
            403,
            "Request had insufficient authentication scopes.",
            vec![error_info("ACCESS_TOKEN_SCOPE_INSUFFICIENT", service)],
        ));
    }
    None
}

/// `GET /computeMetadata/v1/...`, as a GKE node's metadata server answers.
pub(crate) fn metadata(shared: &Shared, path: &str, query: Option<&str>, headers: &HeaderMap) -> Response {
    let flavor = headers.get("metadata-flavor").and_then(|v| v.to_str().ok());
    if flavor != Some("Google") || headers.contains_key("x-forwarded-for") {
        return (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
            format!(
                "Your client does not have permission to get URL <code>{path}</code> from this server. Missing Metadata-Flavor:Google header."
            ),
        )
            .into_response();
    }
    let md = shared.state().metadata.clone();
    let text = |s: String| {
        (StatusCode::OK, [("content-type", "application/text"), ("metadata-flavor", "Google")], s).into_response()
    };
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            [("content-type", "text/html; charset=UTF-8"), ("metadata-flavor", "Google")],
            "Not Found",
        )
            .into_response()
    };
    let Some(rest) = path.strip_prefix("/computeMetadata/v1/") else {
        return not_found();
    };
    match rest {
        "project/project-id" => text(md.project_id),
        "project/numeric-project-id" => text(md.numeric_project_id),
        "instance/zone" => text(format!("projects/{}/zones/{}", md.numeric_project_id, md.zone)),
        "instance/hostname" => text(md.hostname),
        "instance/id" => text(md.instance_id),
        "instance/name" => text(md.instance_name),
        "instance/attributes/cluster-name" => md.cluster_name.map(text).unwrap_or_else(not_found),
        "instance/attributes/cluster-location" => md.cluster_location.map(text).unwrap_or_else(not_found),
        "instance/service-accounts/default/email" => text(md.service_account_email),
        "instance/service-accounts/default/scopes" => text(md.scopes.join("\n") + "\n"),
        "instance/service-accounts/default/token" => {
            let asked: Option<Vec<String>> = query.and_then(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "scopes")
                    .map(|(_, v)| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            });
            let mut response = issue(shared, asked.unwrap_or(md.scopes));
            response.headers_mut().insert("metadata-flavor", "Google".parse().unwrap());
            response
        }
        _ => not_found(),
    }
}

/// The `kid` of the keys written here, for the tests that sign JWTs themselves.
#[cfg(test)]
pub(crate) fn tests_key_id() -> &'static str {
    KEY_ID
}
