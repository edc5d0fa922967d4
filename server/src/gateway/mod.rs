//! The gateway's HTTP side: `/v1/models`, `/v1/chat/completions` and
//! `/v1/embeddings` for workspace API keys. Each handler authenticates, admits
//! the request (model, rate limit, budget hold), forwards it to the provider
//! (an OpenAI-compatible upstream, or the built-in mock), settles the real cost
//! and returns the provider's answer. Refusals are JSON in OpenAI's shape.

mod metered;
mod provider;

use app::{
    server::{
        gateway::{GatewayError, Usage, DEFAULT_MAX_TOKENS, MAX_TOKENS_CAP},
        state::AppState,
    },
    time::Timestamp,
};
use axum::{
    body::{Body, Bytes},
    extract::State,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde_json::{json, Value};

use self::{metered::MeteredStream, provider::Answer};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/models", get(list_models))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/embeddings", post(embeddings))
}

/// The mock provider alone, with no key, limits or metering: the baseline the
/// gateway benchmark (`server/benches/gateway.rs`) measures the gateway against.
pub fn bare_mock_routes() -> Router {
    Router::new().route("/v1/chat/completions", post(bare_mock_chat))
}

async fn bare_mock_chat(body: Bytes) -> Response {
    let request = match parse_body(&body) {
        Ok(request) => request,
        Err(err) => return Refused(err).into_response(),
    };
    match provider::chat(None, request, false).await {
        Answer::Json { status, body } => {
            (StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY), Json(body)).into_response()
        }
        Answer::Stream(_) | Answer::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A refusal on its way out.
pub struct Refused(pub GatewayError);

impl From<GatewayError> for Refused {
    fn from(err: GatewayError) -> Self {
        Self(err)
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let err = self.0;
        let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({ "error": { "message": err.message, "type": err.kind(), "param": null, "code": err.code } });
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = err.retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))
}

/// The models this key may use, in OpenAI's list shape.
async fn list_models(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, Refused> {
    let caller = state.gateway.authenticate(bearer(&headers), Timestamp::now())?;
    let data: Vec<Value> = state
        .gateway
        .models_for(&caller)
        .into_iter()
        .map(|m| json!({ "id": m.id, "object": "model", "created": 0, "owned_by": "chancery", "type": m.kind.as_str() }))
        .collect();
    Ok(Json(json!({ "object": "list", "data": data })))
}

fn parse_body(body: &Bytes) -> Result<serde_json::Map<String, Value>, GatewayError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(GatewayError::bad_request("The body must be a JSON object.")),
        Err(e) => Err(GatewayError::bad_request(format!("The body is not valid JSON: {e}"))),
    }
}

fn model_of(body: &serde_json::Map<String, Value>) -> Result<String, GatewayError> {
    match body.get("model") {
        Some(Value::String(model)) if !model.trim().is_empty() => Ok(model.trim().to_string()),
        _ => Err(GatewayError::bad_request("`model` is required.")),
    }
}

/// An upper bound on the input's tokens: a token covers at least one byte.
fn worst_input_tokens(input: Option<&Value>) -> i64 {
    input.map(|v| v.to_string().len() as i64).unwrap_or(0)
}

async fn chat_completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refused> {
    let now = Timestamp::now();
    let caller = state.gateway.authenticate(bearer(&headers), now)?;
    let mut request = parse_body(&body)?;
    let model = model_of(&request)?;
    if !matches!(request.get("messages"), Some(Value::Array(messages)) if !messages.is_empty()) {
        return Err(GatewayError::bad_request("`messages` must be a non-empty array.").into());
    }
    let max_tokens = match request.get("max_tokens").or_else(|| request.get("max_completion_tokens")) {
        None | Some(Value::Null) => DEFAULT_MAX_TOKENS,
        Some(value) => match value.as_i64() {
            Some(n) if (1..=MAX_TOKENS_CAP).contains(&n) => n,
            _ => {
                return Err(
                    GatewayError::bad_request(format!("`max_tokens` must be 1 to {MAX_TOKENS_CAP}.")).into()
                )
            }
        },
    };
    let stream = request.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let worst_input = worst_input_tokens(request.get("messages"));
    let reservation = state.gateway.admit(&caller, &model, worst_input, max_tokens, now).await?;
    // Reserve and forward the same ceiling: the provider never writes more than was held.
    request.insert("max_tokens".into(), json!(max_tokens));
    request.remove("max_completion_tokens");
    let answer = provider::chat(state.upstream.as_ref(), request, stream).await;
    Ok(respond(answer, reservation, worst_input))
}

async fn embeddings(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refused> {
    let now = Timestamp::now();
    let caller = state.gateway.authenticate(bearer(&headers), now)?;
    let request = parse_body(&body)?;
    let model = model_of(&request)?;
    let input = match request.get("input") {
        Some(Value::String(_)) => request.get("input"),
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => {
            request.get("input")
        }
        _ => {
            return Err(GatewayError::bad_request(
                "`input` must be a string or a non-empty array of strings.",
            )
            .into())
        }
    };
    let worst_input = worst_input_tokens(input);
    let reservation = state.gateway.admit(&caller, &model, worst_input, 0, now).await?;
    let answer = provider::embeddings(state.upstream.as_ref(), request).await;
    Ok(respond(answer, reservation, worst_input))
}

/// Settles the hold and turns the provider's answer into the response.
fn respond(answer: Answer, reservation: app::server::gateway::Reservation, worst_input: i64) -> Response {
    match answer {
        Answer::Json { status, body } => {
            let usage = usage_of(&body);
            reservation.settle(usage, status);
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, Json(body)).into_response()
        }
        Answer::Stream(chunks) => {
            let metered = MeteredStream::new(chunks, reservation, worst_input);
            Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream")
                .header(header::CACHE_CONTROL, "no-cache")
                .body(Body::from_stream(metered))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        Answer::Failed(message) => {
            drop(reservation);
            Refused(GatewayError { status: 502, code: "upstream_error", message, retry_after_secs: None })
                .into_response()
        }
    }
}

/// `usage` of an OpenAI-shaped answer.
pub(crate) fn usage_of(body: &Value) -> Usage {
    let usage = &body["usage"];
    Usage {
        input_tokens: usage["prompt_tokens"].as_i64().unwrap_or(0),
        output_tokens: usage["completion_tokens"].as_i64().unwrap_or(0),
    }
}
