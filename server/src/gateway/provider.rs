//! Providers: an OpenAI-compatible upstream reached over HTTP, or the built-in
//! mock, which answers at once, says it is a mock, and counts tokens roughly
//! (a token per 4 bytes of input, a token per word of output).

use std::{sync::OnceLock, time::Duration};

use app::server::gateway::{Endpoint, Upstream};
use axum::body::Bytes;
use futures_util::{stream::BoxStream, StreamExt};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::telemetry::{TraceContext, TRACEPARENT};

pub enum Answer {
    /// A whole answer, success or error, with the provider's status: read
    /// for its usage, and passed on as the provider wrote it.
    Json { status: u16, body: Value, bytes: Bytes },
    /// A successful answer as server-sent events, passed on as they come.
    Stream(BoxStream<'static, Result<Bytes, std::io::Error>>),
    /// The provider could not be reached: nothing was forwarded.
    Unreachable,
    /// The request was sent but no usable answer came back (the connection
    /// broke, or the answer was not JSON).
    Broken { status: Option<u16> },
}

/// Shared by every upstream call: connections are pooled. Each call's overall
/// deadline is the caller's (`Upstream::timeout`, `stream_timeout`).
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client with rustls")
    })
}

/// Sends `request` to the provider of `endpoint`: the upstream, or the mock without one.
pub async fn send(
    upstream: Option<&Upstream>,
    endpoint: Endpoint,
    mut request: Map<String, Value>,
    stream: bool,
    trace: Option<TraceContext>,
) -> Answer {
    let Some(upstream) = upstream else {
        return match endpoint {
            Endpoint::ChatCompletions => mock_chat(&request, stream),
            Endpoint::Embeddings => mock_embeddings(&request),
        };
    };
    if stream {
        // Ask for the final usage chunk, so a stream is billed what it used.
        request.insert("stream_options".into(), json!({ "include_usage": true }));
    }
    let Some(url) = upstream.url(endpoint) else {
        tracing::warn!(base_url = %upstream.base_url, "the upstream's address is not a URL");
        return Answer::Unreachable;
    };
    let mut sending = client().post(url.clone()).bearer_auth(&upstream.api_key).json(&request);
    if let Some(trace) = trace {
        sending = sending.header(TRACEPARENT, trace.header_value());
    }
    let sent = sending.send().await;
    let response = match sent {
        Ok(response) => response,
        Err(error) if error.is_connect() => {
            tracing::warn!(%url, %error, "upstream unreachable");
            return Answer::Unreachable;
        }
        Err(error) => {
            tracing::warn!(%url, %error, "upstream request failed after it was sent");
            return Answer::Broken { status: None };
        }
    };
    let status = response.status().as_u16();
    if stream && response.status().is_success() {
        let chunks = response.bytes_stream().map(|chunk| chunk.map_err(std::io::Error::other));
        return Answer::Stream(chunks.boxed());
    }
    let bytes = match response.bytes().await {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::warn!(%url, status, %error, "upstream answer broke off");
            return Answer::Broken { status: Some(status) };
        }
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(body) => Answer::Json { status, body, bytes },
        Err(error) => {
            tracing::warn!(%url, status, %error, "upstream answer is not JSON");
            Answer::Broken { status: Some(status) }
        }
    }
}

/// The mock's whole answers, written as a provider would send them.
fn mock_answer(body: Value) -> Answer {
    let bytes = Bytes::from(body.to_string());
    Answer::Json { status: 200, body, bytes }
}

fn estimate_tokens(bytes: usize) -> i64 {
    (bytes as u64).div_ceil(4).max(1) as i64
}

/// The text of every message, joined: plain strings and `{"type":"text"}` parts.
fn message_text(messages: &[Value]) -> String {
    let mut text = String::new();
    for message in messages {
        match &message["content"] {
            Value::String(s) => text.push_str(s),
            Value::Array(parts) => {
                parts.iter().filter_map(|p| p["text"].as_str()).for_each(|s| text.push_str(s))
            }
            _ => {}
        }
        text.push('\n');
    }
    text
}

fn mock_chat(request: &Map<String, Value>, stream: bool) -> Answer {
    let model = request.get("model").and_then(Value::as_str).unwrap_or_default().to_string();
    let messages = request.get("messages").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let prompt = message_text(messages);
    let max_tokens = request.get("max_tokens").and_then(Value::as_i64).unwrap_or(i64::MAX);
    let reply = format!(
        "This is Chancery's mock provider: no model was called. You sent {} message(s), {} characters in all.",
        messages.len(),
        prompt.trim_end().chars().count()
    );
    let words: Vec<&str> =
        reply.split_whitespace().take(usize::try_from(max_tokens).unwrap_or(usize::MAX)).collect();
    let (prompt_tokens, completion_tokens) = (estimate_tokens(prompt.len()), words.len() as i64);
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    });
    let id = format!("chatcmpl-mock-{}", uuid::Uuid::new_v4().simple());
    let created = chrono::Utc::now().timestamp();
    let finish = if (words.len() as i64) < max_tokens { "stop" } else { "length" };
    if !stream {
        return mock_answer(json!({
            "id": id, "object": "chat.completion", "created": created, "model": model, "provider": "mock",
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": words.join(" ") }, "finish_reason": finish }],
            "usage": usage,
        }));
    }
    let chunk = |delta: Value, finish: Value, usage: Value| {
        let chunk = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model, "provider": "mock",
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }], "usage": usage,
        });
        Bytes::from(format!("data: {chunk}\n\n"))
    };
    let mut events: Vec<Bytes> =
        vec![chunk(json!({ "role": "assistant", "content": "" }), Value::Null, Value::Null)];
    let last = words.len().saturating_sub(1);
    for (i, word) in words.iter().enumerate() {
        let text = if i == last { word.to_string() } else { format!("{word} ") };
        events.push(chunk(json!({ "content": text }), Value::Null, Value::Null));
    }
    events.push(chunk(json!({}), json!(finish), usage));
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    // A short pause between words, as a model streams; lets a caller hang up mid-answer.
    let paced = futures_util::stream::iter(events).then(|event| async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok::<_, std::io::Error>(event)
    });
    Answer::Stream(paced.boxed())
}

fn mock_embeddings(request: &Map<String, Value>) -> Answer {
    let model = request.get("model").and_then(Value::as_str).unwrap_or_default();
    let inputs: Vec<&str> = match request.get("input") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            // A deterministic vector from the text's hash: the same text, the same embedding.
            let digest = Sha256::digest(text.as_bytes());
            let vector: Vec<f32> = digest.iter().take(8).map(|b| f32::from(*b) / 255.0).collect();
            json!({ "object": "embedding", "index": index, "embedding": vector })
        })
        .collect();
    let tokens: i64 = inputs.iter().map(|t| estimate_tokens(t.len())).sum();
    mock_answer(json!({
        "id": format!("embd-mock-{}", uuid::Uuid::new_v4().simple()),
        "object": "list", "model": model, "provider": "mock", "data": data,
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
    }))
}
