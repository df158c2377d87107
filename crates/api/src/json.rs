//! Request extractors whose rejections speak the error envelope: a JSON body and a
//! query string.

use crate::error::ApiError;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// Like `axum::Json`, but malformed JSON is a 400, a wrong shape (unknown field, wrong
/// type, missing field) a 422 naming the problem, and a body over 1 MiB a 413.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::BadRequest(
                "malformed_json",
                format!("the body is not valid JSON: {}", inner(&e.body_text())),
            )),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::invalid("body", inner(&e.body_text()))),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::BadRequest(
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json".into(),
            )),
            Err(JsonRejection::BytesRejection(_)) => Err(ApiError::TooLarge),
            Err(other) => Err(ApiError::BadRequest("bad_request", other.body_text())),
        }
    }
}

/// serde's own message, without axum's prefix.
fn inner(text: &str) -> String {
    text.split_once(": ").map(|(_, rest)| rest).unwrap_or(text).to_string()
}

/// Like `axum::extract::Query`, but a query string that does not fit (`?page=abc`,
/// `?all=1` for a boolean) is a 422 `invalid_request` naming the parameter when serde
/// names it (`"field": "page"`), else `"field": "query"`.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                let text = inner(&e.body_text());
                // serde_path_to_error puts the parameter's name first: "page: invalid digit…".
                match text.split_once(": ") {
                    Some((name, why)) if is_parameter(name) => Err(ApiError::invalid(name, why.trim())),
                    _ => Err(ApiError::invalid("query", text)),
                }
            }
            Err(other) => Err(ApiError::invalid("query", other.body_text())),
        }
    }
}

/// Whether `name` looks like a query parameter's name (not a sentence).
fn is_parameter(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
