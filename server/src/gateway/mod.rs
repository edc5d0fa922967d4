//! The gateway's HTTP side: `/v1/models`, `/v1/chat/completions` and
//! `/v1/embeddings` for workspace API keys. Each call is authenticated, checked
//! (`Call::parse`), admitted (model, rate limits, budget hold), forwarded to the
//! provider (an OpenAI-compatible upstream, or the built-in mock) and settled
//! with what the provider reports. Refusals are JSON in OpenAI's shape.
//!
//! Once forwarded, a call runs to its end in a task of its own: a caller who
//! hangs up does not stop the provider, so the answer is still waited for (up
//! to the upstream timeout) and billed.

mod identity;
mod metered;
mod provider;

use app::{
    model::{CatalogueModel, ModelKind},
    server::{
        gateway::{
            Call, Caller, Ending, Endpoint, GatewayError, Headroom, Metered, Outcome, Reservation, Upstream,
            Usage,
        },
        observability,
        state::AppState,
    },
    time::Timestamp,
};
use axum::{
    body::{Body, Bytes},
    extract::State,
    http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde_json::{json, Map, Value};
use tokio::{sync::oneshot, time::Instant};
use tracing::Instrument as _;

use self::{metered::MeteredStream, provider::Answer};
use crate::telemetry::TraceContext;

/// Set on an answer whose `max_tokens` was lowered to what the budget covers.
pub const CLAMPED_MAX_TOKENS: HeaderName = HeaderName::from_static("chancery-clamped-max-tokens");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/models", get(list_models))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/whoami", get(identity::whoami))
        .route("/v1/users/me/workspaces", get(identity::my_workspaces))
}

/// The mock provider alone, with no key, limits or metering: the baseline the
/// gateway benchmark (`server/benches/gateway.rs`) measures the gateway against.
pub fn bare_mock_routes() -> Router {
    Router::new().route("/v1/chat/completions", post(bare_mock_chat))
}

async fn bare_mock_chat(body: Bytes) -> Response {
    let request = match serde_json::from_slice::<Map<String, Value>>(&body) {
        Ok(request) => request,
        Err(err) => return Refused(GatewayError::bad_request(err.to_string())).into_response(),
    };
    match provider::send(None, Endpoint::ChatCompletions, request, false, None).await {
        Answer::Json { status, bytes, .. } => {
            written_json(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY), bytes)
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
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
        let mut error =
            json!({ "message": err.message, "type": err.kind(), "param": null, "code": err.code });
        if let Some(tokens) = err.affordable_max_tokens {
            error["affordable_max_tokens"] = json!(tokens);
        }
        let body = json!({ "error": error });
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = err.retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(headroom) = &err.headroom {
            announce(response.headers_mut(), headroom);
        }
        response
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))
}

/// The models this key may use, in OpenAI's list shape; each entry is also a
/// Mistral model card (`type: "base"`, `capabilities`), which the `mistralai`
/// SDK requires.
async fn list_models(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, Refused> {
    let caller = state.gateway.authenticate(bearer(&headers), Timestamp::now())?;
    let data: Vec<Value> = state.gateway.models_for(&caller).iter().map(model_card).collect();
    Ok(Json(json!({ "object": "list", "data": data })))
}

fn model_card(model: &CatalogueModel) -> Value {
    let chat = model.kind == ModelKind::Chat;
    json!({
        "id": model.id,
        "object": "model",
        "created": 0,
        "owned_by": "chancery",
        "name": model.id,
        "type": "base",
        "capabilities": {
            "completion_chat": chat,
            "vision": chat && model.image_max_tokens.is_some(),
        },
    })
}

async fn chat_completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refused> {
    call(state, &headers, Endpoint::ChatCompletions, &body).await
}

async fn embeddings(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refused> {
    call(state, &headers, Endpoint::Embeddings, &body).await
}

/// One gateway call, counted and timed (see `observability`).
async fn call(
    state: AppState,
    headers: &HeaderMap,
    endpoint: Endpoint,
    body: &[u8],
) -> Result<Response, Refused> {
    let started = Instant::now();
    let answered = admit_and_forward(state, headers, endpoint, body).await;
    let upstream =
        answered.as_ref().ok().and_then(|(response, _)| response.extensions().get::<UpstreamTime>());
    let upstream = upstream.map(|waited| waited.0);
    observability::gateway_timed(started.elapsed().saturating_sub(upstream.unwrap_or_default()), upstream);
    match answered {
        Ok((response, model)) => {
            let code = response.extensions().get::<FailureCode>().map_or("ok", |code| code.0);
            observability::gateway_answered(response.status().as_u16(), code, &model);
            Ok(response)
        }
        Err(Refused(err)) => {
            observability::gateway_answered(err.status, err.code, "-");
            Err(Refused(err))
        }
    }
}

/// How long the upstream took to answer a call (a stream: to its headers).
#[derive(Clone, Copy)]
struct UpstreamTime(std::time::Duration);

/// Why Chancery answered a forwarded call with an error of its own (`upstream_timeout`...).
#[derive(Clone, Copy)]
struct FailureCode(&'static str);

/// Admits the call and forwards it: the answer, and the model it was admitted for.
async fn admit_and_forward(
    state: AppState,
    headers: &HeaderMap,
    endpoint: Endpoint,
    body: &[u8],
) -> Result<(Response, String), Refused> {
    let now = Timestamp::now();
    let caller = state.gateway.authenticate(bearer(headers), now)?;
    let call = Call::parse(endpoint, body)?;
    let stream = call.stream;
    let mut admitted = state.gateway.admit(&caller, call, now).await?;
    let headroom = admitted.headroom;
    let model = admitted.reservation.model().to_owned();
    let span = gen_ai_span(endpoint, &model, &caller, state.upstream.as_ref());
    admitted.reservation.traced_by(span.clone());
    let exchange = Exchange {
        upstream: state.upstream.clone(),
        endpoint,
        stream,
        // Only a real upstream is told which trace the call belongs to.
        trace: state.upstream.is_some().then(|| TraceContext::of_span(&span, headers)),
        reservation: admitted.reservation,
    };
    let mut response = exchange.run(admitted.body).instrument(span.clone()).await;
    if let Some(FailureCode(code)) = response.extensions().get::<FailureCode>() {
        span.record("error.type", *code);
        span.record("otel.status_code", "error");
    }
    if let Some(tokens) = admitted.clamped_to {
        response.headers_mut().insert(CLAMPED_MAX_TOKENS, HeaderValue::from(tokens));
    }
    announce(response.headers_mut(), &headroom);
    Ok((response, model))
}

/// An admitted call's span for an OpenTelemetry collector, named and described
/// as the GenAI semantic conventions say (`chat mistral-small-latest`, a client
/// span with `gen_ai.*` attributes); its usage is recorded when the call is
/// settled. No span when traces are not exported: logs carry the request's.
fn gen_ai_span(
    endpoint: Endpoint,
    model: &str,
    caller: &Caller,
    upstream: Option<&Upstream>,
) -> tracing::Span {
    use tracing::field::Empty;
    if !crate::telemetry::exporting_traces() {
        return tracing::Span::none();
    }
    let operation = match endpoint {
        Endpoint::ChatCompletions => "chat",
        Endpoint::Embeddings => "embeddings",
    };
    let url = upstream.and_then(|upstream| upstream.url(endpoint));
    let (address, port) =
        (url.and_then(|url| url.host_str()), url.and_then(|url| url.port_or_known_default()));
    tracing::info_span!(
        "gen_ai",
        "otel.name" = %format_args!("{operation} {model}"),
        "otel.kind" = "client",
        "otel.status_code" = Empty,
        "gen_ai.operation.name" = operation,
        "gen_ai.request.model" = model,
        "gen_ai.usage.input_tokens" = Empty,
        "gen_ai.usage.output_tokens" = Empty,
        "server.address" = address,
        "server.port" = port,
        "error.type" = Empty,
        "chancery.org.id" = %caller.org_id,
        "chancery.workspace.id" = %caller.workspace_id,
        "chancery.api_key.id" = %caller.key_id,
        "chancery.cost.usd_micros" = Empty,
        "chancery.usage.estimated" = Empty,
    )
}

/// OpenAI's `x-ratelimit-*` headers for the caller's tightest request and
/// token limits (none for a dimension without a limit): the limit, what is
/// left of it, and when it resets (`1.5s`, as OpenAI writes durations).
fn announce(headers: &mut HeaderMap, headroom: &Headroom) {
    const REQUESTS: [HeaderName; 3] = [
        HeaderName::from_static("x-ratelimit-limit-requests"),
        HeaderName::from_static("x-ratelimit-remaining-requests"),
        HeaderName::from_static("x-ratelimit-reset-requests"),
    ];
    const TOKENS: [HeaderName; 3] = [
        HeaderName::from_static("x-ratelimit-limit-tokens"),
        HeaderName::from_static("x-ratelimit-remaining-tokens"),
        HeaderName::from_static("x-ratelimit-reset-tokens"),
    ];
    for ([limit, remaining, reset], quota) in [(REQUESTS, headroom.requests), (TOKENS, headroom.tokens)] {
        let Some(quota) = quota else { continue };
        headers.insert(limit, HeaderValue::from(quota.limit));
        headers.insert(remaining, HeaderValue::from(quota.remaining));
        if let Ok(value) = HeaderValue::try_from(duration(quota.reset_ms)) {
            headers.insert(reset, value);
        }
    }
}

/// Milliseconds as a duration: `250ms`, `1.5s`, `42s`.
fn duration(ms: i64) -> String {
    match ms {
        ..1_000 => format!("{}ms", ms.max(0)),
        _ if ms % 1_000 == 0 => format!("{}s", ms / 1_000),
        _ => format!("{}s", (format!("{:.3}", ms as f64 / 1_000.0)).trim_end_matches('0')),
    }
}

/// One admitted call on its way to the provider and back.
struct Exchange {
    upstream: Option<Upstream>,
    endpoint: Endpoint,
    stream: bool,
    /// The trace the call to the upstream continues.
    trace: Option<TraceContext>,
    reservation: Reservation,
}

impl Exchange {
    /// Forwards `body` in a task of its own and waits for the response; if the
    /// caller hangs up meanwhile, the task still settles the call.
    async fn run(self, body: Map<String, Value>) -> Response {
        let (respond, response) = oneshot::channel();
        // In the request's span: what the exchange logs carries the request's id.
        let exchange = async move {
            let response = self.forward(body, &respond).await;
            let _ = respond.send(response);
        };
        tokio::spawn(exchange.in_current_span());
        response.await.unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }

    /// Sends `body` and settles the call by how it ended; `respond` is where
    /// the response goes, closed if the caller hung up.
    async fn forward(self, body: Map<String, Value>, respond: &oneshot::Sender<Response>) -> Response {
        let Self { upstream, endpoint, stream, trace, reservation } = self;
        let hung_up = || respond.is_closed();
        let timeout = match (&upstream, stream) {
            (Some(upstream), true) => upstream.stream_timeout,
            (Some(upstream), false) => upstream.timeout,
            (None, _) => Upstream::DEFAULT_TIMEOUT,
        };
        let sent_at = Instant::now();
        let deadline = sent_at + timeout;
        let sent = tokio::time::timeout_at(
            deadline,
            provider::send(upstream.as_ref(), endpoint, body, stream, trace),
        );
        let answered = sent.await;
        let waited = UpstreamTime(sent_at.elapsed());
        let mut response = Self::respond(answered, reservation, deadline, hung_up);
        response.extensions_mut().insert(waited);
        response
    }

    /// Settles the call by how the provider answered, and makes the caller's response.
    fn respond(
        answered: Result<Answer, tokio::time::error::Elapsed>,
        reservation: Reservation,
        deadline: Instant,
        hung_up: impl Fn() -> bool,
    ) -> Response {
        let answer = match answered {
            Ok(answer) => answer,
            Err(_elapsed) => {
                let status = if hung_up() { 499 } else { 504 };
                let ending = Ending {
                    metered: Metered::Unknown,
                    outcome: Outcome::UpstreamTimeout,
                    status,
                    upstream_status: None,
                };
                reservation.settle(ending);
                return upstream_failed(
                    504,
                    "upstream_timeout",
                    "The model provider took too long to answer.",
                );
            }
        };
        match answer {
            Answer::Unreachable => {
                // Nothing was forwarded: the hold is released, nothing billed.
                drop(reservation);
                upstream_failed(502, "upstream_unreachable", "The model provider could not be reached.")
            }
            Answer::Broken { status } => {
                let ending = Ending {
                    metered: Metered::Unknown,
                    outcome: Outcome::UpstreamError,
                    status: if hung_up() { 499 } else { 502 },
                    upstream_status: status,
                };
                reservation.settle(ending);
                upstream_failed(502, "upstream_error", "The model provider's answer could not be read.")
            }
            Answer::Json { status, body, bytes } if (200..300).contains(&status) => {
                let metered = match usage_of(&body) {
                    Some(usage) => Metered::Reported(usage),
                    None => Metered::Estimated(reservation.estimate(answer_bytes(&body))),
                };
                let (outcome, caller_status) =
                    if hung_up() { (Outcome::ClientClosed, 499) } else { (Outcome::Ok, 200) };
                reservation.settle(Ending {
                    metered,
                    outcome,
                    status: caller_status,
                    upstream_status: Some(status),
                });
                written_json(StatusCode::OK, bytes)
            }
            Answer::Json { status, body, .. } => {
                // The provider's error stays here (it may name its account); the caller learns its kind only.
                let code = body["error"]["code"].as_str().or(body["error"]["type"].as_str()).unwrap_or("");
                tracing::warn!(status, code, model = reservation.model(), "upstream answered with an error");
                // A provider bills what it reports, and an error usually reports nothing.
                let metered = Metered::Reported(usage_of(&body).unwrap_or_default());
                let ending = Ending {
                    metered,
                    outcome: Outcome::UpstreamError,
                    status: if hung_up() { 499 } else { 502 },
                    upstream_status: Some(status),
                };
                reservation.settle(ending);
                upstream_failed(502, "upstream_error", "The model provider could not complete this request.")
            }
            Answer::Stream(chunks) => Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream")
                .header(header::CACHE_CONTROL, "no-cache")
                .body(Body::from_stream(MeteredStream::new(chunks, reservation, deadline)))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
        }
    }
}

/// A provider's JSON answer, passed on as it was written: no second
/// serialisation on the hot path.
fn written_json(status: StatusCode, bytes: Bytes) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response()
}

fn upstream_failed(status: u16, code: &'static str, message: &str) -> Response {
    let mut response = Refused(GatewayError::new(status, code, message)).into_response();
    response.extensions_mut().insert(FailureCode(code));
    response
}

/// `usage` of an OpenAI-shaped answer or chunk, if it is a count at all:
/// whole, non-negative `prompt_tokens` (and `completion_tokens`, when given).
pub(crate) fn usage_of(body: &Value) -> Option<Usage> {
    let usage = body.get("usage")?;
    let input_tokens = usage.get("prompt_tokens")?.as_i64().filter(|n| *n >= 0)?;
    let output_tokens = match usage.get("completion_tokens") {
        None | Some(Value::Null) => 0,
        Some(value) => value.as_i64().filter(|n| *n >= 0)?,
    };
    Some(Usage { input_tokens, output_tokens })
}

/// Bytes a completion wrote: its text and tool calls (a message or a stream's delta).
pub(crate) fn output_bytes(message: &Value) -> usize {
    let text = message["content"].as_str().map_or(0, str::len);
    let tools = message.get("tool_calls").map_or(0, |calls| calls.to_string().len());
    text + tools
}

/// Bytes of every completion in a whole answer.
fn answer_bytes(body: &Value) -> usize {
    body["choices"].as_array().map_or(0, |choices| choices.iter().map(|c| output_bytes(&c["message"])).sum())
}
