//! Money that adds up: against a stand-in provider that reports chosen usage,
//! sleeps or fails, every answered request is booked what the provider reports
//! (even above its hold, then audited), holds bound everything the provider
//! bills, budgets clamp `max_tokens` before they refuse, abandoned and timed-out
//! requests are billed, and requests carry only what the gateway priced.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use app::{
    ids::WorkspaceId,
    money::token_cost,
    server::{
        actor::{Actor, Client},
        billing,
        gateway::{ledger::Scope, Upstream},
    },
};
use axum::{body::Body, response::IntoResponse};
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::{
    common::{Org, TestApp},
    gateway::billed,
};

crate::on_both_databases!(
    every_answered_request_is_booked_what_the_provider_reports,
    a_cost_above_the_hold_is_booked_and_audited,
    requests_carry_only_what_the_gateway_priced,
    abandoned_requests_are_billed_what_the_provider_reports,
    a_provider_that_never_answers_is_billed_the_hold,
    a_budget_lowers_max_tokens_before_it_refuses,
);

/// mistral-small-latest: $0.10 in, $0.30 out per million tokens.
const SMALL: (i64, i64) = (100_000, 300_000);

fn small_cost(input: i64, output: i64) -> i64 {
    token_cost(input, SMALL.0) + token_cost(output, SMALL.1)
}

/// A stand-in model provider, scripted by the words of the first message:
/// `report <in> <out>` (the usage it reports; otherwise a token per 4 bytes of
/// messages in and 5 per completion out), `nousage`, `negative`,
/// `sleep <ms>` (before answering), `pace <ms>` (between streamed words),
/// `fail <status>`. It keeps every body it receives.
pub struct Stub {
    pub upstream: Upstream,
    pub received: Arc<Mutex<Vec<Value>>>,
}

fn script(body: &Value) -> Vec<String> {
    let text = body["messages"][0]["content"].as_str().unwrap_or_default();
    text.split_whitespace().map(str::to_string).collect()
}

fn argument(words: &[String], name: &str) -> Option<i64> {
    let at = words.iter().position(|w| w == name)?;
    words.get(at + 1)?.parse().ok()
}

async fn answer(body: Value) -> axum::response::Response {
    let words = script(&body);
    if let Some(ms) = argument(&words, "sleep") {
        tokio::time::sleep(Duration::from_millis(ms as u64)).await;
    }
    if let Some(status) = argument(&words, "fail") {
        let status = StatusCode::from_u16(status as u16).unwrap();
        let error = json!({ "error": { "message": "Account acct_8812 (billing@provider.example) is over quota", "code": "quota" } });
        return (status, axum::Json(error)).into_response();
    }
    let choices = body["n"].as_i64().unwrap_or(1);
    let max_tokens = body["max_tokens"].as_i64().unwrap_or(i64::MAX);
    let (prompt, completion) = match (argument(&words, "report"), words.iter().position(|w| w == "report")) {
        (Some(input), Some(at)) => (input, words[at + 2].parse::<i64>().unwrap()),
        _ => ((body["messages"].to_string().len() as i64 + 3) / 4, 5.min(max_tokens) * choices),
    };
    let usage = if words.iter().any(|w| w == "negative") {
        json!({ "prompt_tokens": -5, "completion_tokens": -100 })
    } else {
        json!({ "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion })
    };
    let with_usage = !words.iter().any(|w| w == "nousage");
    if body["stream"] == json!(true) {
        let pace = Duration::from_millis(argument(&words, "pace").unwrap_or(0) as u64);
        let mut events: Vec<String> = (0..5)
            .map(|i| {
                format!(
                    "data: {}\n\n",
                    json!({ "choices": [{ "index": 0, "delta": { "content": format!("word{i} ") } }] })
                )
            })
            .collect();
        if with_usage {
            events.push(format!("data: {}\n\n", json!({ "choices": [], "usage": usage })));
        }
        events.push("data: [DONE]\n\n".into());
        let paced =
            futures_util::StreamExt::then(futures_util::stream::iter(events), move |event| async move {
                tokio::time::sleep(pace).await;
                Ok::<_, std::io::Error>(event)
            });
        return ([(header::CONTENT_TYPE, "text/event-stream")], Body::from_stream(paced)).into_response();
    }
    let mut answer = json!({
        "id": "cmpl-stub", "object": "chat.completion", "model": body["model"],
        "choices": (0..choices).map(|i| json!({ "index": i, "message": { "role": "assistant", "content": "Five words of an answer." }, "finish_reason": "stop" })).collect::<Vec<_>>(),
    });
    if with_usage {
        answer["usage"] = usage;
    }
    axum::Json(answer).into_response()
}

pub async fn stub() -> Stub {
    let received = Arc::new(Mutex::new(Vec::new()));
    let kept = received.clone();
    let router = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            kept.lock().unwrap().push(body.clone());
            answer(body)
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Stub { upstream: Upstream::new(&format!("http://{address}/v1"), ""), received }
}

/// From now on the gateway forwards to a fresh stub.
async fn use_stub(app: &mut TestApp) -> Stub {
    let stub = stub().await;
    app.use_upstream(stub.upstream.clone());
    stub
}

/// Sets `org`'s Default workspace budget, as its Admin, and reloads the gateway.
pub async fn set_budget(app: &TestApp, org: &Org<'_>, budget: i64) {
    let ada = Actor::User { id: org.admin_id.parse().unwrap(), email: "ada@example.com".into() };
    let workspace: WorkspaceId = org.default_workspace.parse().unwrap();
    billing::set_workspace_budget(&app.db, &ada, &Client::default(), org.id, workspace, Some(budget))
        .await
        .unwrap();
    app.state.gateway.refresh().await.unwrap();
}

fn chat(script: &str) -> Value {
    json!({ "model": "mistral-small-latest", "messages": [{ "role": "user", "content": script }] })
}

/// `(status, outcome, upstream_status, input, output, estimated, held, cost)` of every usage row.
type Row = (i64, String, Option<i64>, i64, i64, i64, i64, i64);

async fn usage_rows(app: &TestApp) -> Vec<Row> {
    app.state.gateway.flush().await;
    sqlx::query_as(
        "SELECT status, outcome, upstream_status, input_tokens, output_tokens, usage_estimated, held_micros,
             cost_micros
         FROM usage_events ORDER BY at, id",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap()
}

async fn every_answered_request_is_booked_what_the_provider_reports(mut app: TestApp) {
    let stub = use_stub(&mut app).await;
    let (_org, _admin_key, key) = billed(&app).await;
    // Eight completions of up to 1,000 tokens: held for all eight, forwarded as asked.
    let mut eight = chat("report 40 8000");
    eight["n"] = json!(8);
    eight["max_tokens"] = json!(1000);
    // A megabyte of tools and one output token: the tools are input too.
    let mut tools = chat("report 262144 1");
    tools["max_tokens"] = json!(1);
    let schema = json!({ "type": "object", "description": "x".repeat(1_000_000) });
    tools["tools"] = json!([{ "type": "function", "function": { "name": "lookup", "parameters": schema } }]);
    for request in [&eight, &tools] {
        let answer = app.gateway("POST", "/v1/chat/completions", &key, Some(request.clone())).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    let forwarded = stub.received.lock().unwrap().clone();
    assert_eq!((forwarded[0]["n"].as_i64(), forwarded[0]["max_tokens"].as_i64()), (Some(8), Some(1000)));
    assert_eq!(forwarded[1]["max_tokens"], 1);
    let rows = usage_rows(&app).await;
    assert_eq!(rows.len(), 2);
    for ((.., input, output, estimated, held, cost), expected) in
        rows.iter().zip([small_cost(40, 8000), small_cost(262_144, 1)])
    {
        assert_eq!(*cost, expected, "booked what the provider reported ({input} in, {output} out)");
        assert_eq!(*estimated, 0);
        assert!(held >= cost, "the hold bounded it: {held} >= {cost}");
    }
    println!("n=8 × 1000: booked {} µUSD; 1 MB of tools: booked {} µUSD", rows[0].7, rows[1].7);
}

async fn a_cost_above_the_hold_is_booked_and_audited(mut app: TestApp) {
    let _stub = use_stub(&mut app).await;
    let (org, _admin_key, key) = billed(&app).await;
    let mut request = chat("report 1000000 1000000");
    request["max_tokens"] = json!(10);
    let answer = app.gateway("POST", "/v1/chat/completions", &key, Some(request)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let rows = usage_rows(&app).await;
    let (.., held, cost) = rows[0].clone();
    assert_eq!(cost, 400_000, "a million tokens each way at $0.10 and $0.30");
    assert!(held < 1_000, "{held}");
    let workspace: WorkspaceId = org.default_workspace.parse().unwrap();
    assert_eq!(app.state.gateway.spent(Scope::Workspace(workspace)).await.unwrap(), 400_000);
    let (details,): (String,) =
        sqlx::query_as("SELECT details FROM audit_events WHERE action = 'gateway.overrun'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    let details: Value = serde_json::from_str(&details).unwrap();
    assert_eq!(
        (details["held_micros"].as_i64(), details["booked_micros"].as_i64()),
        (Some(held), Some(cost))
    );
    assert_eq!(details["booked"], "$0.40");
}

async fn requests_carry_only_what_the_gateway_priced(mut app: TestApp) {
    let stub = use_stub(&mut app).await;
    let (_org, _admin_key, key) = billed(&app).await;
    let code = |r: &crate::common::TestResponse| r.json()["error"]["code"].as_str().unwrap_or("").to_string();
    let message =
        |r: &crate::common::TestResponse| r.json()["error"]["message"].as_str().unwrap_or("").to_string();

    let mut padded = chat("hello");
    padded["model"] = json!("  mistral-small-latest ");
    assert_eq!(app.gateway("POST", "/v1/chat/completions", &key, Some(padded)).await.status, StatusCode::OK);
    assert_eq!(stub.received.lock().unwrap()[0]["model"], "mistral-small-latest", "the catalogue's id");

    let mut routed = chat("hello");
    routed["models"] = json!(["mistral-large-latest"]);
    let refused = app.gateway("POST", "/v1/chat/completions", &key, Some(routed)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(message(&refused).starts_with("Unknown field `models`"), "{}", refused.body);
    let mut streamed = chat("hello");
    streamed["stream"] = json!(1);
    let refused = app.gateway("POST", "/v1/chat/completions", &key, Some(streamed)).await;
    assert_eq!(message(&refused), "`stream` must be true or false.");
    let embedding = json!({ "model": "mistral-small-latest", "input": "hello" });
    let refused = app.gateway("POST", "/v1/embeddings", &key, Some(embedding)).await;
    assert_eq!((refused.status, code(&refused).as_str()), (StatusCode::BAD_REQUEST, "wrong_model_kind"));
    let image = json!({ "model": "ministral-8b-latest", "messages": [{ "role": "user", "content": [
        { "type": "image_url", "image_url": "https://example.com/cat.png" }] }] });
    let refused = app.gateway("POST", "/v1/chat/completions", &key, Some(image)).await;
    assert_eq!(code(&refused), "images_not_supported");
    assert_eq!(stub.received.lock().unwrap().len(), 1, "no refused request reached the provider");

    // The provider's error stays here; its status is kept in the usage row.
    let failed = app.gateway("POST", "/v1/chat/completions", &key, Some(chat("fail 500"))).await;
    assert_eq!((failed.status, code(&failed).as_str()), (StatusCode::BAD_GATEWAY, "upstream_error"));
    assert!(!failed.body.contains("acct_8812") && !failed.body.contains("billing@"), "{}", failed.body);
    // Nonsense or missing usage: estimated, and marked so.
    for script in ["negative", "nousage"] {
        let answer = app.gateway("POST", "/v1/chat/completions", &key, Some(chat(script))).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    let rows = usage_rows(&app).await;
    assert_eq!(rows.len(), 4, "{rows:?}");
    let (status, outcome, upstream_status, .., cost) = rows[1].clone();
    assert_eq!((status, outcome.as_str(), upstream_status, cost), (502, "upstream_error", Some(500), 0));
    for (_, outcome, _, input, output, estimated, _, cost) in &rows[2..] {
        assert_eq!((outcome.as_str(), *estimated), ("ok", 1));
        assert!(*input > 0 && *output > 0 && *cost > 0, "estimated from the request and the answer");
    }
}

/// Sends `request` and hangs up after `patience`, as `curl --max-time` does.
async fn hang_up_after(app: &TestApp, key: &str, request: &Value, patience: Duration) {
    let call = Request::post("/v1/chat/completions")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from(([192, 0, 2, 1], 1))))
        .body(Body::from(request.to_string()))
        .unwrap();
    let reading = async {
        let response = app.router.clone().oneshot(call).await.unwrap();
        response.into_body().collect().await.unwrap();
    };
    assert!(tokio::time::timeout(patience, reading).await.is_err(), "the answer came too soon");
}

async fn abandoned_requests_are_billed_what_the_provider_reports(mut app: TestApp) {
    let _stub = use_stub(&mut app).await;
    let (_org, _admin_key, key) = billed(&app).await;
    let whole = chat("report 300 5 sleep 800");
    let mut streamed = chat("report 300 5 pace 200");
    streamed["stream"] = json!(true);
    for request in [&whole, &streamed] {
        hang_up_after(&app, &key, request, Duration::from_millis(300)).await;
    }
    let rows = usage_rows(&app).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (status, outcome, _, input, output, estimated, _, cost) in rows {
        assert_eq!((status, outcome.as_str()), (499, "client_closed"));
        assert_eq!((input, output, estimated, cost), (300, 5, 0, small_cost(300, 5)));
    }
}

async fn a_provider_that_never_answers_is_billed_the_hold(mut app: TestApp) {
    let stub = stub().await;
    app.use_upstream(Upstream { timeout: Duration::from_millis(500), ..stub.upstream.clone() });
    let (_org, _admin_key, key) = billed(&app).await;
    let started = std::time::Instant::now();
    let answer = app.gateway("POST", "/v1/chat/completions", &key, Some(chat("sleep 5000"))).await;
    assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT, "{}", answer.body);
    assert_eq!(answer.json()["error"]["code"], "upstream_timeout");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    let rows = usage_rows(&app).await;
    let (status, outcome, upstream_status, .., held, cost) = rows[0].clone();
    assert_eq!((status, outcome.as_str(), upstream_status), (504, "upstream_timeout", None));
    assert!(cost > 0 && cost <= held, "the whole hold: {cost} of {held}");
}

async fn a_budget_lowers_max_tokens_before_it_refuses(mut app: TestApp) {
    let stub = use_stub(&mut app).await;
    let (org, _admin_key, key) = billed(&app).await;
    let workspace: WorkspaceId = org.default_workspace.parse().unwrap();
    // Room for the input and about 1,000 output tokens ($0.30 per million: 300 µUSD).
    set_budget(&app, &org, 310).await;
    let mut request = chat("report 10 5");
    request["max_tokens"] = json!(100_000);
    let answer = app.gateway("POST", "/v1/chat/completions", &key, Some(request.clone())).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let clamped: i64 = answer.header("chancery-clamped-max-tokens").expect("clamped").parse().unwrap();
    assert!((900..1_030).contains(&clamped), "{clamped}");
    assert_eq!(stub.received.lock().unwrap()[0]["max_tokens"], clamped, "forwarded as held");
    // Below the floor: refused, saying what is still affordable.
    let spent = app.state.gateway.spent(Scope::Workspace(workspace)).await.unwrap();
    set_budget(&app, &org, spent + 3).await;
    let refused = app.gateway("POST", "/v1/chat/completions", &key, Some(request)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let error = &refused.json()["error"];
    assert_eq!(error["code"], "workspace_spend_limit_exceeded");
    let affordable = error["affordable_max_tokens"].as_i64().unwrap();
    assert!(affordable < 16, "{affordable}");
    assert_eq!(stub.received.lock().unwrap().len(), 1);
}
