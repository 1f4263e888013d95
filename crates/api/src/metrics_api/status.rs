//! Kubernetes `Status` objects: what client-go (and so kubectl and the HPA controller) parses out of a failed
//! request. A plain-text or `{"error":...}` body would surface in kubectl as "unknown (get nodes.metrics.k8s.io)"
//! instead of the reason.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A failed request, rendered as `{"kind":"Status","apiVersion":"v1",...}` with the matching HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The HTTP status, repeated in the body's `code` as Kubernetes does.
    pub code: StatusCode,
    /// Kubernetes' machine-readable reason (`NotFound`, `BadRequest`, ...), which clients switch on.
    pub reason: &'static str,
    /// One line for a human: what went wrong and, where it helps, what to do.
    pub message: String,
}

impl Status {
    /// 404 `NotFound`: unknown path, or an object the store has no data for.
    pub fn not_found(message: impl Into<String>) -> Self {
        Status { code: StatusCode::NOT_FOUND, reason: "NotFound", message: message.into() }
    }

    /// 400 `BadRequest`: a selector or parameter that cannot be parsed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Status { code: StatusCode::BAD_REQUEST, reason: "BadRequest", message: message.into() }
    }

    /// 503 `ServiceUnavailable`: the Kubernetes API server behind a pass-through route did not answer.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Status { code: StatusCode::SERVICE_UNAVAILABLE, reason: "ServiceUnavailable", message: message.into() }
    }

    /// The `NotFound` a real API server gives for a missing object, so kubectl prints its usual line:
    /// `Error from server (NotFound): nodemetrics.metrics.k8s.io "n9" not found`.
    pub fn object_not_found(resource: &str, name: &str) -> Self {
        Status::not_found(format!("{resource} \"{name}\" not found"))
    }
}

impl IntoResponse for Status {
    fn into_response(self) -> Response {
        let body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        (self.code, Json(body)).into_response()
    }
}
