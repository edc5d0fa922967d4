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

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
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
        let bad = |message: String| ApiError(AppError::BadRequest(message)).into_response();
        let mut value = match Json::<serde_json::Value>::from_request(request, state).await {
            Ok(Json(value)) => value,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(rejection.into_response())
            }
            Err(rejection) => return Err(bad(rejection.body_text())),
        };
        // serde would read a struct from an array too: every body here is an object.
        if !value.is_object() {
            return Err(bad("The body must be a JSON object.".into()));
        }
        whole_numbers_as_integers(&mut value);
        serde_json::from_value(value)
            .map(Self)
            .map_err(|err| bad(format!("Failed to deserialize the JSON body: {err}")))
    }
}

/// JSON Schema's `integer` includes `504.0`; serde's integers do not. Numbers
/// without a fraction become integers, so every integer field reads them.
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(number) => {
            if let Some(float) = number.as_f64().filter(|f| number.is_f64() && f.fract() == 0.0) {
                if (i64::MIN as f64..=i64::MAX as f64).contains(&float) {
                    *value = Value::from(float as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn whole_numbers_read_as_integers_and_fractions_stay() {
        let mut body = json!({"grace_hours": 504.0, "nested": [2.0, 2.5], "big": 1e300});
        super::whole_numbers_as_integers(&mut body);
        assert_eq!(body, json!({"grace_hours": 504, "nested": [2, 2.5], "big": 1e300}));
    }
}
