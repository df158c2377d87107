//! A JSON body extractor whose rejections speak the error envelope.

use crate::error::ApiError;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
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
