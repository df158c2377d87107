//! The one error envelope: `{"error": {"code": "snake_case", "message": "…"}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tollgate_domain::Invalid;
use tollgate_store::StoreError;

/// An API error, rendered with its status and the envelope.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be parsed.
    #[error("{1}")]
    BadRequest(&'static str, String),
    /// 422: a field's value is not acceptable.
    #[error("{0}")]
    Invalid(Invalid),
    /// 401: who are you?
    #[error("{0}")]
    Unauthorized(String),
    /// 401 `session_expired`: the session cookie names a session that has ended (expired,
    /// logged out, or the account closed), so a client can tell "log in again" apart
    /// from "never logged in".
    #[error("your session has ended; log in again")]
    SessionExpired,
    /// 403 `csrf_token`: a cookie-authenticated mutation without the session's
    /// `X-CSRF-Token`.
    #[error("missing or wrong X-CSRF-Token header")]
    CsrfToken,
    /// 403: known, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such thing (or not yours).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409: the request conflicts with the current state.
    #[error("{1}")]
    Conflict(&'static str, String),
    /// 410: the thing existed and is gone for good (a retired version).
    #[error("{1}")]
    Gone(&'static str, String),
    /// 413: the body is over the limit.
    #[error("the request body is larger than 1 MiB")]
    TooLarge,
    /// 429 with `Retry-After`.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_secs: u64 },
    /// 402: not enough credits.
    #[error("insufficient credits")]
    InsufficientCredits,
    /// 502: a service Tollgate depends on (the payment provider) failed; the message says
    /// what it means for the caller, never the service's own words.
    #[error("{1}")]
    BadGateway(&'static str, String),
    /// 500: logged once here, never described to the client.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A 422 for `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::Invalid(Invalid::new(field, message))
    }

    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(code, _) => (StatusCode::BAD_REQUEST, code),
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::SessionExpired => (StatusCode::UNAUTHORIZED, "session_expired"),
            ApiError::CsrfToken => (StatusCode::FORBIDDEN, "csrf_token"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(code, _) => (StatusCode::CONFLICT, code),
            ApiError::Gone(code, _) => (StatusCode::GONE, code),
            ApiError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            ApiError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::InsufficientCredits => (StatusCode::PAYMENT_REQUIRED, "insufficient_credits"),
            ApiError::BadGateway(code, _) => (StatusCode::BAD_GATEWAY, code),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        ApiError::Invalid(invalid)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiError::NotFound("resource"),
            StoreError::Conflict(what) => {
                tracing::info!(conflict = %what, "refused: conflicts with existing data");
                ApiError::Conflict("conflict", "this conflicts with something that already exists".into())
            }
            StoreError::Insufficient => ApiError::InsufficientCredits,
            StoreError::Overflow => ApiError::Conflict(
                "balance_limit",
                "this would take a balance past the largest amount the ledger holds (about 9.2 billion USD)".into(),
            ),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<tollgate_domain::secret::SecretError> for ApiError {
    fn from(err: tollgate_domain::secret::SecretError) -> Self {
        ApiError::Internal(err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "something went wrong on our side; try again".to_string()
            }
            ApiError::Invalid(invalid) => invalid.to_string(),
            other => other.to_string(),
        };
        let mut error = serde_json::json!({"code": code, "message": message});
        if let ApiError::Invalid(invalid) = &self {
            error["field"] = invalid.field.clone().into();
        }
        let mut response = (status, axum::Json(serde_json::json!({ "error": error }))).into_response();
        if let ApiError::TooManyRequests { retry_after_secs, .. } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
