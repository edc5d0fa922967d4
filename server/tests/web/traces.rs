//! Traces for an OpenTelemetry collector: `chancery serve` with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` sends a fake collector (OTLP over HTTP with
//! protobuf, as a collector's receiver takes it) the gateway's GenAI span in
//! the caller's trace, and the spans of the domain's entry points, with ids and
//! never a secret.

use std::time::Duration;

use axum::{body::Bytes, routing::post, Router};
use http::{header, StatusCode};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{any_value::Value as Attribute, KeyValue},
    trace::v1::{span::SpanKind, status::StatusCode as SpanStatus, Span},
};
use prost::Message as _;
use serde_json::{json, Value};

use crate::{
    common::TestApp,
    gateway::{billed, chat},
    shutdown::{spool_dir, Process},
};

crate::on_both_databases!(the_collector_gets_the_gateway_and_domain_spans);

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// A stand-in for an OpenAI-compatible API: it reports 12 + 3 tokens, and says
/// which trace context it was sent (as the answer's id).
async fn upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let api = Router::new().route(
        "/v1/chat/completions",
        post(|headers: http::HeaderMap, body: String| async move {
            let trace = headers.get("traceparent").map(|v| v.to_str().unwrap().to_string());
            let sent: Value = serde_json::from_str(&body).unwrap();
            axum::Json(json!({
                "id": trace, "object": "chat.completion", "model": sent["model"],
                "choices": [{ "index": 0, "message": { "role": "assistant", "content": "Hi" }, "finish_reason": "stop" }],
                "usage": { "prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15 },
            }))
        }),
    );
    tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });
    format!("http://{address}/v1")
}

/// A fake collector: what it received, raw, on a channel.
async fn collector() -> (String, tokio::sync::mpsc::UnboundedReceiver<Bytes>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (sent, received) = tokio::sync::mpsc::unbounded_channel();
    let receiver = Router::new().route(
        "/v1/traces",
        post(move |headers: http::HeaderMap, body: Bytes| {
            let sent = sent.clone();
            async move {
                assert_eq!(headers[header::CONTENT_TYPE], "application/x-protobuf");
                let _ = sent.send(body);
                StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    (format!("http://{address}"), received)
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Attribute> {
    attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()
}

fn text(attributes: &[KeyValue], key: &str) -> String {
    match attribute(attributes, key) {
        Some(Attribute::StringValue(value)) => value.clone(),
        other => panic!("{key}: {other:?}"),
    }
}

fn number(attributes: &[KeyValue], key: &str) -> i64 {
    match attribute(attributes, key) {
        Some(Attribute::IntValue(value)) => *value,
        other => panic!("{key}: {other:?}"),
    }
}

async fn the_collector_gets_the_gateway_and_domain_spans(app: TestApp) {
    let (org, admin_key, key) = billed(&app).await;
    let (collector, mut received) = collector().await;
    let upstream = upstream().await;
    let spool = spool_dir();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ("CHANCERY_UPSTREAM_URL", upstream.as_str()),
        ("CHANCERY_UPSTREAM_KEY", "upstream-secret"),
    ];
    let process = Process::start_with(&app, &spool, &env).await;
    let client = reqwest::Client::new();
    let answer = client
        .post(format!("{}/v1/chat/completions", process.url))
        .bearer_auth(&key)
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .json(&chat("mistral-small-latest", "Hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let sent_upstream = answer.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let created = client
        .post(format!("{}/api/admin/workspaces", process.url))
        .header("x-api-key", &admin_key)
        .json(&json!({ "name": "Traced", "admin_user_id": org.admin_id }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);

    // Batches arrive every 50 ms; wait for both spans (10 s at most).
    let (mut spans, mut raw, mut resources) = (Vec::<Span>::new(), Vec::<u8>::new(), Vec::new());
    let wanted = |spans: &[Span]| {
        ["chat mistral-small-latest", "workspaces::create"]
            .iter()
            .all(|name| spans.iter().any(|s| s.name == *name))
    };
    while !wanted(&spans) {
        let body = tokio::time::timeout(Duration::from_secs(10), received.recv())
            .await
            .unwrap_or_else(|_| {
                panic!("spans sent within 10 s: {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>())
            })
            .unwrap();
        raw.extend_from_slice(&body);
        let export = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
        for batch in export.resource_spans {
            resources.extend(batch.resource.map(|r| r.attributes).unwrap_or_default());
            spans.extend(batch.scope_spans.into_iter().flat_map(|scope| scope.spans));
        }
    }
    process.signal("TERM");
    process.exit().await;

    assert_eq!(text(&resources, "service.name"), "chancery");
    let named = |name: &str| spans.iter().find(|s| s.name == name).unwrap().clone();
    let gen_ai = named("chat mistral-small-latest");
    assert_eq!(gen_ai.kind, SpanKind::Client as i32);
    let attributes = &gen_ai.attributes;
    assert_eq!(text(attributes, "gen_ai.operation.name"), "chat");
    assert_eq!(text(attributes, "gen_ai.request.model"), "mistral-small-latest");
    assert_eq!(number(attributes, "gen_ai.usage.input_tokens"), 12);
    assert_eq!(number(attributes, "gen_ai.usage.output_tokens"), 3);
    assert_eq!(text(attributes, "server.address"), "127.0.0.1");
    assert_eq!(text(attributes, "chancery.org.id"), org.id.to_string());
    // 12 input tokens at $0.10 and 3 output at $0.30 per million, rounded up.
    assert_eq!(number(attributes, "chancery.cost.usd_micros"), 3);
    assert_ne!(gen_ai.status.as_ref().map(|s| s.code), Some(SpanStatus::Error as i32));

    // In the caller's trace: caller → request → gen_ai → the upstream's call.
    assert_eq!(hex::encode(&gen_ai.trace_id), CALLER_TRACE);
    let request = spans.iter().find(|s| s.span_id == gen_ai.parent_span_id).expect("the request's span");
    assert_eq!(request.name, "request");
    assert_eq!(hex::encode(&request.parent_span_id), CALLER_SPAN);
    assert_eq!(text(&request.attributes, "route"), "/v1/chat/completions");
    assert_eq!(sent_upstream, format!("00-{CALLER_TRACE}-{}-01", hex::encode(&gen_ai.span_id)));

    // A domain entry point: its name, the Organization it acted in, and who acted.
    let create = named("workspaces::create");
    assert_eq!(text(&create.attributes, "org_id"), org.id.to_string());
    assert_eq!(text(&create.attributes, "actor"), "admin_api_key");

    // Ids, never secrets.
    let raw = String::from_utf8_lossy(&raw);
    for secret in [key.as_str(), admin_key.as_str(), "upstream-secret"] {
        assert!(!raw.contains(secret), "a secret was exported");
    }
}
