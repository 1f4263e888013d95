//! One error type for the model API's handlers, so every failure is a status plus one line of JSON; unknown
//! paths answer a Kubernetes `Status` instead (see [`not_found_fallback`]).

use axum::Json;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A failed request: 400 for bad parameters, 404 for unknown entities and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::NOT_FOUND, message: message.into() }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { error: &self.message })).into_response()
    }
}

/// Answers paths no route matches, naming the path so a client sees which part was wrong. The body is a
/// Kubernetes `Status` object: heapster is also a Kubernetes API endpoint (`kubectl top`), and client-go only
/// shows a reason it can parse.
pub async fn not_found_fallback(uri: Uri) -> crate::metrics_api::Status {
    crate::metrics_api::Status::not_found(format!("no such path: {}", uri.path()))
}
