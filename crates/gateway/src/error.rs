//! The gateway's refusals: a JSON-RPC error body (code -32000 unless the request itself is
//! malformed), the right HTTP status, and the headers that go with it.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The `Retry-After` of an over-capacity 503, in seconds.
pub const OVER_CAPACITY_RETRY_SECS: u64 = 1;

/// Why a call was refused or failed before reaching the agent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Gone(String),
    /// A rate limit (`rate_limited`), the key's daily limit (`daily_limit`) or the org's
    /// monthly budget (`budget_reached`).
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_secs: u64, code: &'static str },
    #[error("insufficient credits")]
    InsufficientCredits,
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    GatewayTimeout(String),
    /// The agent version has as many calls in flight as the operator allows.
    #[error("this agent is over capacity right now ({0} calls in flight); try again shortly")]
    OverCapacity(usize),
    /// The upstream's address is one the operator does not let the gateway reach.
    #[error("{0}")]
    AddressRefused(String),
    #[error("the request body is larger than the gateway accepts ({0} bytes)")]
    TooLarge(usize),
    /// JSON-RPC parse error (-32700).
    #[error("{0}")]
    ParseError(String),
    /// JSON-RPC invalid request (-32600).
    #[error("{0}")]
    InvalidRequest(String),
    #[error("internal error")]
    Internal(String),
}

impl GatewayError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            GatewayError::Forbidden(_) => StatusCode::FORBIDDEN,
            GatewayError::NotFound(_) => StatusCode::NOT_FOUND,
            GatewayError::Gone(_) => StatusCode::GONE,
            GatewayError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::InsufficientCredits => StatusCode::PAYMENT_REQUIRED,
            GatewayError::Unavailable(_) | GatewayError::OverCapacity(_) | GatewayError::AddressRefused(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            GatewayError::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::ParseError(_) | GatewayError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON-RPC error code.
    pub fn rpc_code(&self) -> i64 {
        match self {
            GatewayError::ParseError(_) => -32700,
            GatewayError::InvalidRequest(_) => -32600,
            _ => -32000,
        }
    }

    /// The short code stored on the usage record.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::Unauthorized(_) => "unauthorized",
            GatewayError::Forbidden(_) => "forbidden",
            GatewayError::NotFound(_) => "not_found",
            GatewayError::Gone(_) => "version_retired",
            GatewayError::TooManyRequests { code, .. } => code,
            GatewayError::InsufficientCredits => "insufficient_credits",
            GatewayError::Unavailable(_) => "upstream_unavailable",
            GatewayError::GatewayTimeout(_) => "upstream_timeout",
            GatewayError::OverCapacity(_) => "over_capacity",
            GatewayError::AddressRefused(_) => "upstream_address_refused",
            GatewayError::TooLarge(_) => "body_too_large",
            GatewayError::ParseError(_) => "parse_error",
            GatewayError::InvalidRequest(_) => "invalid_request",
            GatewayError::Internal(_) => "internal",
        }
    }

    /// The response, answering JSON-RPC request `id` (null when unknown).
    pub fn into_response_for(self, id: Option<&serde_json::Value>) -> Response {
        let message = match &self {
            GatewayError::Internal(detail) => {
                tracing::error!(error = %detail, "gateway internal error");
                "something went wrong in the gateway; try again".to_string()
            }
            other => other.to_string(),
        };
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "id": id.cloned().unwrap_or(serde_json::Value::Null),
            "error": {"code": self.rpc_code(), "message": message},
        });
        let mut response = (self.status(), axum::Json(body)).into_response();
        match self {
            GatewayError::TooManyRequests { retry_after_secs, .. } => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            GatewayError::OverCapacity(_) => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(OVER_CAPACITY_RETRY_SECS));
            }
            _ => {}
        }
        response
    }
}

impl From<tollgate_metering::RpcError> for GatewayError {
    /// -32700 / -32600 as the gateway's 400 refusals.
    fn from(error: tollgate_metering::RpcError) -> Self {
        match error {
            tollgate_metering::RpcError::Parse(message) => GatewayError::ParseError(message),
            tollgate_metering::RpcError::Invalid { message, .. } => GatewayError::InvalidRequest(message),
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        self.into_response_for(None)
    }
}

/// Adds `(name, value)` pairs to a response's headers, skipping any that are not valid.
pub(crate) fn add_headers(response: &mut Response, headers: &[(&'static str, String)]) {
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            response.headers_mut().insert(name, value);
        }
    }
}
