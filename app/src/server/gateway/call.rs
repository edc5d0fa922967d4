//! What a gateway request may carry, and the most it can cost.
//!
//! A request body is checked before anything is held: only the fields each
//! endpoint documents (an unknown one is refused by name, so nothing reaches
//! the provider that the gateway did not price or allow), a trimmed model id,
//! `stream` a boolean, `n` and `max_tokens` in range, and content parts the
//! gateway can price. The hold is then a true upper bound of what the
//! provider can bill: every byte of input it reads counted as a token (a token
//! covers at least one byte, and the JSON around each message outweighs the
//! chat template's few tokens), each image at the model's largest, and `n`
//! completions of the `max_tokens` the gateway forwards.

use serde_json::{Map, Value};

use super::{GatewayError, Usage};
use crate::{
    model::{CatalogueModel, ModelKind},
    money::token_cost,
};

/// The output tokens held, and forwarded, when a request names no `max_tokens`.
pub const DEFAULT_MAX_TOKENS: i64 = 4_096;
/// The most output tokens a request may ask for per completion.
pub const MAX_TOKENS_CAP: i64 = 131_072;
/// The most completions (`n`) one request may ask for.
pub const MAX_CHOICES: i64 = 128;
/// A request whose budget cannot cover its `max_tokens` is forwarded with a
/// lower one, but never below this many (or what it asked, if less).
pub const CLAMP_FLOOR_TOKENS: i64 = 16;

/// The model-calling endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Embeddings,
}

/// Fields of `/v1/chat/completions` (Mistral's and OpenAI's documented ones).
const CHAT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "stream",
    "stream_options",
    "n",
    "temperature",
    "top_p",
    "stop",
    "random_seed",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "prediction",
    "prompt_mode",
    "safe_prompt",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "reasoning_effort",
    "user",
];
/// Fields of a chat request the provider reads as input, and bills.
const CHAT_INPUT_FIELDS: &[&str] = &["tools", "tool_choice", "response_format", "prediction"];
/// Fields of `/v1/embeddings`.
const EMBEDDING_FIELDS: &[&str] =
    &["model", "input", "encoding_format", "dimensions", "output_dimension", "output_dtype", "user"];

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Self::ChatCompletions => "chat/completions",
            Self::Embeddings => "embeddings",
        }
    }

    fn kind(self) -> ModelKind {
        match self {
            Self::ChatCompletions => ModelKind::Chat,
            Self::Embeddings => ModelKind::Embedding,
        }
    }

    fn fields(self) -> &'static [&'static str] {
        match self {
            Self::ChatCompletions => CHAT_FIELDS,
            Self::Embeddings => EMBEDDING_FIELDS,
        }
    }
}

/// A request body the gateway accepted, not yet priced.
#[derive(Clone, Debug)]
pub struct Call {
    pub endpoint: Endpoint,
    /// The model as the caller named it, trimmed.
    pub model: String,
    pub stream: bool,
    /// Completions asked for (`n`; 0 for embeddings, which write no output).
    pub choices: i64,
    /// Output tokens asked for per completion (`max_tokens`, or the default).
    pub max_tokens: i64,
    /// Bytes of everything billed as input, images aside.
    text_bytes: i64,
    images: i64,
    body: Map<String, Value>,
}

fn invalid(message: impl Into<String>) -> GatewayError {
    GatewayError::bad_request(message)
}

/// `body[field]` as a whole number within `range`, or `default` when absent or null.
fn whole_number(
    body: &Map<String, Value>,
    field: &str,
    range: std::ops::RangeInclusive<i64>,
    default: i64,
) -> Result<i64, GatewayError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value.as_i64().filter(|n| range.contains(n)).ok_or_else(|| {
            invalid(format!("`{field}` must be a whole number from {} to {}.", range.start(), range.end()))
        }),
    }
}

fn json_len(value: &Value) -> i64 {
    i64::try_from(value.to_string().len()).unwrap_or(i64::MAX)
}

impl Call {
    /// Checks a request body for `endpoint`.
    pub fn parse(endpoint: Endpoint, body: &[u8]) -> Result<Self, GatewayError> {
        let mut body = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(invalid("The body must be a JSON object.")),
            Err(e) => return Err(invalid(format!("The body is not valid JSON: {e}"))),
        };
        if let Some(unknown) = body.keys().find(|k| !endpoint.fields().contains(&k.as_str())) {
            return Err(invalid(format!(
                "Unknown field `{unknown}` for /v1/{}. Accepted: {}.",
                endpoint.path(),
                endpoint.fields().join(", ")
            )));
        }
        let model = match body.get("model") {
            Some(Value::String(model)) if !model.trim().is_empty() => model.trim().to_string(),
            _ => return Err(invalid("`model` is required.")),
        };
        let stream = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(stream)) => *stream,
            Some(_) => return Err(invalid("`stream` must be true or false.")),
        };
        match endpoint {
            Endpoint::ChatCompletions => {
                if body.contains_key("max_tokens") && body.contains_key("max_completion_tokens") {
                    return Err(invalid("Send `max_tokens` or `max_completion_tokens`, not both."));
                }
                let field = if body.contains_key("max_completion_tokens") {
                    "max_completion_tokens"
                } else {
                    "max_tokens"
                };
                let max_tokens = whole_number(&body, field, 1..=MAX_TOKENS_CAP, DEFAULT_MAX_TOKENS)?;
                let choices = whole_number(&body, "n", 1..=MAX_CHOICES, 1)?;
                let (mut text_bytes, images) = match body.get("messages") {
                    Some(Value::Array(messages)) if !messages.is_empty() => messages_input(messages)?,
                    _ => return Err(invalid("`messages` must be a non-empty array.")),
                };
                for field in CHAT_INPUT_FIELDS {
                    text_bytes += body.get(*field).map(json_len).unwrap_or(0);
                }
                body.remove("max_completion_tokens");
                Ok(Self { endpoint, model, stream, choices, max_tokens, text_bytes, images, body })
            }
            Endpoint::Embeddings => {
                if stream {
                    return Err(invalid("Embeddings cannot be streamed."));
                }
                let text_bytes = match body.get("input") {
                    Some(input @ Value::String(_)) => json_len(input),
                    Some(input @ Value::Array(items))
                        if !items.is_empty() && items.iter().all(Value::is_string) =>
                    {
                        json_len(input)
                    }
                    _ => return Err(invalid("`input` must be a string or a non-empty array of strings.")),
                };
                Ok(Self { endpoint, model, stream, choices: 0, max_tokens: 0, text_bytes, images: 0, body })
            }
        }
    }

    /// The most this call can cost on `model`: the model must serve this
    /// endpoint, and price images if the call has any.
    pub fn quote(&self, model: &CatalogueModel) -> Result<Quote, GatewayError> {
        if model.kind != self.endpoint.kind() {
            let (what, other) = match model.kind {
                ModelKind::Chat => ("a chat model", "/v1/chat/completions"),
                ModelKind::Embedding => ("an embedding model", "/v1/embeddings"),
            };
            return Err(GatewayError::new(
                400,
                "wrong_model_kind",
                format!("{} is {what}: call it on {other}.", model.id),
            ));
        }
        let image_tokens = match (self.images, model.image_max_tokens) {
            (0, _) => 0,
            (images, Some(each)) => images.saturating_mul(each),
            (_, None) => {
                return Err(GatewayError::new(
                    400,
                    "images_not_supported",
                    format!("{} does not take images.", model.id),
                ))
            }
        };
        Ok(Quote {
            text_bytes: self.text_bytes,
            image_tokens,
            choices: self.choices,
            max_tokens: self.max_tokens,
            input_price: model.input_micros_per_mtok,
            output_price: model.output_micros_per_mtok,
        })
    }

    /// The body to send the provider: the catalogue's id for the model and,
    /// for chat, the `max_tokens` that was held.
    pub fn into_upstream_body(mut self, model_id: &str, max_tokens: i64) -> Map<String, Value> {
        self.body.insert("model".into(), Value::from(model_id));
        if self.endpoint == Endpoint::ChatCompletions {
            self.body.insert("max_tokens".into(), Value::from(max_tokens));
        }
        self.body
    }
}

/// Bytes of text and the number of images across `messages`; refuses content
/// parts the gateway cannot price.
fn messages_input(messages: &[Value]) -> Result<(i64, i64), GatewayError> {
    let (mut text_bytes, mut images) = (0, 0);
    for message in messages {
        let Some(fields) = message.as_object() else {
            return Err(invalid("Each message must be an object with a `role`."));
        };
        if !fields.get("role").is_some_and(Value::is_string) {
            return Err(invalid("Each message must be an object with a `role`."));
        }
        for (name, value) in fields {
            let Value::Array(parts) = value else {
                text_bytes += json_len(value) + i64::try_from(name.len()).unwrap_or(0);
                continue;
            };
            if name != "content" {
                text_bytes += json_len(value);
                continue;
            }
            for part in parts {
                match part.get("type").and_then(Value::as_str) {
                    Some("image_url") => images += 1,
                    Some("text") => text_bytes += json_len(part),
                    Some(other) => {
                        return Err(invalid(format!("Content parts of type `{other}` are not supported.")))
                    }
                    None => return Err(invalid("Each content part needs a `type`.")),
                }
            }
        }
    }
    Ok((text_bytes, images))
}

/// The most a call can cost, and what it costs with fewer output tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote {
    text_bytes: i64,
    image_tokens: i64,
    choices: i64,
    /// Output tokens asked for per completion.
    pub max_tokens: i64,
    input_price: i64,
    output_price: i64,
}

impl Quote {
    /// The most input tokens the provider can count.
    pub fn input_bound(&self) -> i64 {
        self.text_bytes.saturating_add(self.image_tokens)
    }

    /// The most output tokens the provider can write with `max_tokens` per completion.
    pub fn output_bound(&self, max_tokens: i64) -> i64 {
        self.choices.saturating_mul(max_tokens)
    }

    /// The most tokens, input and output, the provider can count with `max_tokens` per completion.
    pub fn tokens(&self, max_tokens: i64) -> i64 {
        self.input_bound().saturating_add(self.output_bound(max_tokens))
    }

    /// The most output tokens per completion, up to what was asked, whose
    /// worst case fits in `tokens`; 0 when not even the input does.
    pub fn max_tokens_within(&self, tokens: i64) -> i64 {
        let output = tokens - self.input_bound();
        if output <= 0 || self.choices == 0 {
            return 0;
        }
        (output / self.choices).min(self.max_tokens)
    }

    /// The price of `usage` on this model.
    pub fn price(&self, usage: Usage) -> i64 {
        token_cost(usage.input_tokens, self.input_price)
            .saturating_add(token_cost(usage.output_tokens, self.output_price))
    }

    /// The worst case with `max_tokens` per completion.
    pub fn cost(&self, max_tokens: i64) -> i64 {
        self.price(Usage { input_tokens: self.input_bound(), output_tokens: self.output_bound(max_tokens) })
    }

    /// The worst case as asked.
    pub fn wanted(&self) -> i64 {
        self.cost(self.max_tokens)
    }

    /// The least hold worth forwarding: the input and the clamp floor.
    pub fn least(&self) -> i64 {
        self.cost(self.max_tokens.min(CLAMP_FLOOR_TOKENS))
    }

    /// The most output tokens per completion, up to what was asked, whose
    /// worst case fits in `money`; 0 when not even the input does.
    pub fn affordable_max_tokens(&self, money: i64) -> i64 {
        if self.cost(0) > money {
            return 0;
        }
        // The cost grows with the tokens: search for the last that fits.
        let (mut fits, mut too_many) = (0, self.max_tokens + 1);
        while too_many - fits > 1 {
            let mid = fits + (too_many - fits) / 2;
            if self.cost(mid) <= money {
                fits = mid;
            } else {
                too_many = mid;
            }
        }
        fits
    }

    /// Chancery's estimate when the provider reported no usage: a token per 4
    /// bytes of text in and out, images at their worst case.
    pub fn estimate(&self, output_bytes: usize, max_tokens: i64) -> Usage {
        let output = i64::try_from(output_bytes.div_ceil(4)).unwrap_or(i64::MAX);
        Usage {
            input_tokens: (self.text_bytes + 3) / 4 + self.image_tokens,
            output_tokens: output.min(self.output_bound(max_tokens)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn chat_model(images: Option<i64>) -> CatalogueModel {
        CatalogueModel {
            id: "vision-small".into(),
            kind: ModelKind::Chat,
            input_micros_per_mtok: 1_000_000,
            output_micros_per_mtok: 2_000_000,
            image_max_tokens: images,
        }
    }

    fn parse(body: Value) -> Result<Call, GatewayError> {
        Call::parse(Endpoint::ChatCompletions, body.to_string().as_bytes())
    }

    #[test]
    fn every_billed_input_counts_and_n_multiplies_the_output() {
        let small =
            parse(json!({ "model": "m", "messages": [{ "role": "user", "content": "hi" }] })).unwrap();
        let tools = json!([{ "type": "function", "function": { "name": "f", "parameters": { "x": "y".repeat(1000) } } }]);
        let big = parse(json!({
            "model": "m", "messages": [{ "role": "user", "content": "hi" }], "tools": tools,
            "response_format": { "type": "json_object" }, "n": 8, "max_tokens": 1000,
        }))
        .unwrap();
        let (small, big) = (small.quote(&chat_model(None)).unwrap(), big.quote(&chat_model(None)).unwrap());
        assert!(big.input_bound() > small.input_bound() + 1000, "the tools count");
        assert_eq!(small.output_bound(small.max_tokens), DEFAULT_MAX_TOKENS);
        assert_eq!(big.output_bound(big.max_tokens), 8_000);
        // 1 µUSD a token in, 2 out: 8,000 output tokens are 16,000 µUSD.
        assert_eq!(big.wanted(), big.input_bound() + 16_000);
    }

    #[test]
    fn images_cost_the_models_worst_case_or_are_refused() {
        let call = parse(json!({ "model": "m", "messages": [{ "role": "user", "content": [
            { "type": "text", "text": "What is this?" },
            { "type": "image_url", "image_url": { "url": format!("data:image/png;base64,{}", "A".repeat(100_000)) } },
            { "type": "image_url", "image_url": "https://example.com/cat.png" },
        ] }] }))
        .unwrap();
        let quote = call.quote(&chat_model(Some(4_160))).unwrap();
        assert!(quote.input_bound() >= 2 * 4_160 && quote.input_bound() < 2 * 4_160 + 200, "not the base64");
        let refused = call.quote(&chat_model(None)).unwrap_err();
        assert_eq!((refused.status, refused.code), (400, "images_not_supported"));
        let audio = parse(json!({ "model": "m", "messages": [{ "role": "user", "content": [
            { "type": "input_audio", "input_audio": { "data": "AAAA" } }] }] }));
        assert!(audio.unwrap_err().message.contains("`input_audio`"));
    }

    #[test]
    fn requests_carry_only_documented_well_typed_fields() {
        let base = || json!({ "model": " m ", "messages": [{ "role": "user", "content": "hi" }] });
        let mut unknown = base();
        unknown["models"] = json!(["other"]);
        assert!(parse(unknown).unwrap_err().message.starts_with("Unknown field `models`"));
        let mut stream = base();
        stream["stream"] = json!(1);
        assert_eq!(parse(stream).unwrap_err().message, "`stream` must be true or false.");
        let mut n = base();
        n["n"] = json!(0);
        assert!(parse(n).is_err());
        let mut both = base();
        both["max_tokens"] = json!(5);
        both["max_completion_tokens"] = json!(5);
        assert!(parse(both).is_err());
        let mut completion = base();
        completion["max_completion_tokens"] = json!(7);
        let call = parse(completion).unwrap();
        assert_eq!((call.model.as_str(), call.max_tokens), ("m", 7));
        let body = call.into_upstream_body("canonical", 5);
        assert_eq!((body["model"].as_str(), body["max_tokens"].as_i64()), (Some("canonical"), Some(5)));
        assert!(!body.contains_key("max_completion_tokens"));
        let embedding = Call::parse(Endpoint::Embeddings, br#"{"model":"m","input":"x"}"#)
            .unwrap()
            .quote(&chat_model(None));
        assert_eq!(embedding.unwrap_err().code, "wrong_model_kind");
    }

    #[test]
    fn the_affordable_ceiling_is_the_largest_that_fits() {
        let call = parse(json!({ "model": "m", "messages": [{ "role": "user", "content": "hi" }], "n": 2, "max_tokens": 100 }))
            .unwrap();
        let quote = call.quote(&chat_model(None)).unwrap();
        assert_eq!(quote.affordable_max_tokens(quote.wanted()), 100);
        assert_eq!(quote.affordable_max_tokens(quote.cost(0) - 1), 0);
        // Each output token costs 2 µUSD and there are 2 completions: 40 µUSD over the input buys 10.
        assert_eq!(quote.affordable_max_tokens(quote.cost(0) + 40), 10);
        assert_eq!(quote.affordable_max_tokens(quote.cost(0) + 43), 10);
        assert_eq!(quote.least(), quote.cost(CLAMP_FLOOR_TOKENS));
    }
}
