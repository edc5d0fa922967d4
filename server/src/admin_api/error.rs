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
///
/// A list is sent as a repeated parameter, written `name` or `name[]`
/// (`event_type[]=a&event_type[]=b`); it reaches `T` as one value, `a,b`, which
/// [`comma_list`] reads back.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = joined_lists(parts.uri.query().unwrap_or_default());
        let uri: http::Uri = format!("/?{query}")
            .parse()
            .map_err(|_| ApiError(AppError::BadRequest("The query string cannot be read.".into())))?;
        match Query::<T>::try_from_uri(&uri) {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => {
                let text = rejection.body_text();
                let unknown = text.split("unknown field `").nth(1).and_then(|rest| rest.split('`').next());
                Err(ApiError(match unknown {
                    Some(name) => {
                        AppError::invalid(name, format!("{name} is not a parameter of this operation."))
                    }
                    None => AppError::BadRequest(text),
                }))
            }
        }
    }
}

/// The query with `name[]` read as `name` and each repeated name given once,
/// its values joined by commas, in the order first seen.
fn joined_lists(query: &str) -> String {
    let mut joined: Vec<(String, String)> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let name = name.strip_suffix("[]").unwrap_or(&name).to_string();
        match joined.iter_mut().find(|(seen, _)| *seen == name) {
            Some((_, values)) => {
                values.push(',');
                values.push_str(&value);
            }
            None => joined.push((name, value.into_owned())),
        }
    }
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(joined).finish()
}

/// Reads a list parameter of an [`ApiQuery`] (`#[serde(default, deserialize_with = "comma_list")]`).
pub fn comma_list<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let joined = <String as serde::Deserialize>::deserialize(deserializer)?;
    Ok(joined.split(',').map(str::to_string).collect())
}

/// `Json<T>` whose failures (wrong content type, bad JSON, missing fields) are
/// 400s in the Admin API's error shape; a body over the limit stays a 413
/// (shaped by `hardening::json_payload_too_large`). The body is an object.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        // serde would read a struct from an array too: such a body is an object.
        read_body(request, state, serde_json::Value::is_object, "The body must be a JSON object.")
            .await
            .map(Self)
    }
}

/// As [`ApiJson`], for the operations whose body is a JSON array of `T`.
pub struct ApiJsonArray<T>(pub Vec<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJsonArray<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        read_body(request, state, serde_json::Value::is_array, "The body must be a JSON array.")
            .await
            .map(Self)
    }
}

async fn read_body<S: Send + Sync, T: DeserializeOwned>(
    request: Request,
    state: &S,
    shaped: fn(&serde_json::Value) -> bool,
    shape: &str,
) -> Result<T, Response> {
    let bad = |message: String| ApiError(AppError::BadRequest(message)).into_response();
    let mut value = match Json::<serde_json::Value>::from_request(request, state).await {
        Ok(Json(value)) => value,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(rejection.into_response())
        }
        Err(rejection) => return Err(bad(rejection.body_text())),
    };
    if !shaped(&value) {
        return Err(bad(shape.into()));
    }
    whole_numbers_as_integers(&mut value);
    serde_json::from_value(value).map_err(|err| {
        let text = err.to_string();
        match text.split("unknown field `").nth(1).and_then(|rest| rest.split('`').next()) {
            // Accepted and ignored would be a lie: a field this operation does not read is refused.
            Some(name) => {
                ApiError(AppError::invalid(name, format!("{name} is not a field of this operation.")))
                    .into_response()
            }
            None => bad(format!("Failed to deserialize the JSON body: {text}")),
        }
    })
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
    fn repeated_parameters_arrive_joined_and_brackets_are_dropped() {
        assert_eq!(super::joined_lists("a[]=1&b=x&a[]=2&a=3"), "a=1%2C2%2C3&b=x");
        assert_eq!(super::joined_lists("page=2&search=a%2Cb"), "page=2&search=a%2Cb");
        assert_eq!(super::joined_lists("page="), "page=");
        assert_eq!(super::joined_lists(""), "");
    }

    #[test]
    fn whole_numbers_read_as_integers_and_fractions_stay() {
        let mut body = json!({"grace_hours": 504.0, "nested": [2.0, 2.5], "big": 1e300});
        super::whole_numbers_as_integers(&mut body);
        assert_eq!(body, json!({"grace_hours": 504, "nested": [2, 2.5], "big": 1e300}));
    }
}
