//! The Admin API's error body and the query extractor that reports bad input in it.

use app::AppError;
use axum::{
    extract::{FromRequest, FromRequestParts, Query, Request},
    response::{IntoResponse, Response},
    Json,
};
use http::{header, request::Parts, HeaderValue, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::json;

/// An `AppError` on its way out of the Admin API.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        Self(err)
    }
}

/// The OpenAI/Mistral-style `type` of an error.
fn error_type(err: &AppError) -> &'static str {
    match err {
        AppError::Unauthenticated(_) => "authentication_error",
        AppError::Forbidden => "permission_error",
        AppError::NotFound => "not_found_error",
        AppError::TooManyRequests { .. } => "rate_limit_error",
        AppError::Internal => "api_error",
        _ => "invalid_request_error",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let err = self.0;
        let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({
            "error": {
                "type": error_type(&err),
                "code": err.code(),
                "message": err.to_string(),
                "param": err.field(),
            }
        });
        let mut response = (status, Json(body)).into_response();
        if let AppError::TooManyRequests { retry_after_secs, .. } = err {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

/// `Query<T>` whose failures are 400s in the Admin API's error shape.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // `?name=` says nothing: the parameter is absent, not an empty value to validate.
        let given: Vec<&str> = parts
            .uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty() && !pair.ends_with('='))
            .collect();
        let uri: http::Uri = format!("/?{}", given.join("&"))
            .parse()
            .map_err(|_| ApiError(AppError::BadRequest("The query string cannot be read.".into())))?;
        match Query::<T>::try_from_uri(&uri) {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError(AppError::BadRequest(rejection.body_text()))),
        }
    }
}

/// `Json<T>` whose failures (wrong content type, bad JSON, missing fields) are
/// 400s in the Admin API's error shape; a body over the limit stays a 413
/// (shaped by `hardening::json_payload_too_large`).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(rejection.into_response())
            }
            Err(rejection) => Err(ApiError(AppError::BadRequest(rejection.body_text())).into_response()),
        }
    }
}
