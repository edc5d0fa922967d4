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
    random_mixes_on_two_replicas_book_what_the_provider_reports_within_the_budget,
    usage_the_meter_has_no_room_for_is_read_back_from_the_spool,
);

/// mistral-small-latest: $0.10 in, $0.30 out per million tokens.
const SMALL: (i64, i64) = (100_000, 300_000);

fn small_cost(input: i64, output: i64) -> i64 {
    token_cost(input, SMALL.0) + token_cost(output, SMALL.1)
}

/// A stand-in model provider, scripted by the words of the first message:
/// `report <in> <out>` (the usage it reports; otherwise a token per 4 bytes of
/// messages in and 5 per completion out), `within` (reports no more output
/// than `n` × `max_tokens` allow, as a real provider), `nousage`, `negative`,
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
    let completion =
        if words.iter().any(|w| w == "within") { completion.min(max_tokens * choices) } else { completion };
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
    // Requests within one millisecond have no order between them: find each by what it was.
    let (failed, answered): (Vec<Row>, Vec<Row>) =
        rows.into_iter().partition(|(_, outcome, ..)| outcome == "upstream_error");
    let [(status, _, upstream_status, .., cost)] = failed.as_slice() else { panic!("{failed:?}") };
    assert_eq!((*status, *upstream_status, *cost), (502, Some(500), 0));
    let guessed: Vec<&Row> = answered.iter().filter(|(.., estimated, _, _)| *estimated == 1).collect();
    assert_eq!(guessed.len(), 2, "{answered:?}");
    for (_, outcome, _, input, output, estimated, _, cost) in guessed {
        assert_eq!((outcome.as_str(), *estimated), ("ok", 1));
        assert!(*input > 0 && *output > 0 && *cost > 0, "estimated from the request and the answer");
    }
}

/// Sends `request` and hangs up after `patience`, as `curl --max-time` does.
async fn hang_up_after(app: &TestApp, key: &str, request: &Value, patience: Duration) {
    assert!(!answered_within(&app.router, key, request, patience).await, "the answer came too soon");
}

/// Sends `request` to `router`; false if the answer took longer than `patience` (the caller hung up).
async fn answered_within(router: &axum::Router, key: &str, request: &Value, patience: Duration) -> bool {
    let call = Request::post("/v1/chat/completions")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from(([192, 0, 2, 1], 1))))
        .body(Body::from(request.to_string()))
        .unwrap();
    let reading = async {
        let response = router.clone().oneshot(call).await.unwrap();
        response.into_body().collect().await.unwrap();
    };
    tokio::time::timeout(patience, reading).await.is_ok()
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

/// A small deterministic generator (xorshift64*): a failing mix is replayed
/// by running the test again with the seed it printed in `CHANCERY_TEST_SEED`.
struct Dice(u64);

impl Dice {
    fn seeded() -> Self {
        let seed =
            std::env::var("CHANCERY_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
                    | 1
            });
        println!("CHANCERY_TEST_SEED={seed}");
        Self(seed)
    }

    /// A number in `range`.
    fn roll(&mut self, range: std::ops::RangeInclusive<i64>) -> i64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let n = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        range.start() + (n % (range.end() - range.start() + 1) as u64) as i64
    }
}

/// How one random request goes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fate {
    /// Answered with usage within what was forwarded.
    Answered,
    /// Answered with more output than was forwarded: an overrun.
    Overran,
    /// The caller hangs up before the provider answers.
    HungUp,
    /// The provider answers after the gateway stopped waiting.
    TimedOut,
}

const PROPERTY_TIMEOUT: Duration = Duration::from_millis(1_000);

/// Random requests (sizes, `n`, `max_tokens`, streamed or not, answered, hung
/// up on, timed out, overrunning) on two replicas sharing Redis counters,
/// against a budget for about half of them. Every forwarded request has one
/// usage row, booked what the provider reported (the worst case it held for
/// when the gateway stopped waiting); spend stays within the budget but for audited overruns;
/// both replicas' counters agree with the database.
async fn random_mixes_on_two_replicas_book_what_the_provider_reports_within_the_budget(app: TestApp) {
    let stub = stub().await;
    let (org, _admin_key, key) = billed(&app).await;
    let prefix = format!("chancery-test-{}", uuid::Uuid::new_v4().simple());
    let counters =
        app::server::gateway::shared::SharedCounters::connect(&crate::common::redis_url(), &prefix)
            .await
            .expect("Redis must be reachable for the shared-counter tests (CHANCERY_TEST_REDIS_URL)");
    let upstream =
        Upstream { timeout: PROPERTY_TIMEOUT, stream_timeout: PROPERTY_TIMEOUT, ..stub.upstream.clone() };
    let mut replicas = [app.replica(counters.clone()).await, app.replica(counters).await];
    for replica in &mut replicas {
        replica.use_upstream(upstream.clone());
    }

    let mut dice = Dice::seeded();
    let seed = format!("(replay with CHANCERY_TEST_SEED={})", dice.0);
    let mut requests = Vec::new();
    let mut worth = 0;
    for _ in 0..60 {
        let fate = match dice.roll(1..=10) {
            1..=6 => Fate::Answered,
            7 => Fate::Overran,
            8 | 9 => Fate::HungUp,
            _ => Fate::TimedOut,
        };
        let filler = "lorem ".repeat(dice.roll(0..=2_000) as usize);
        let (n, max_tokens) = (dice.roll(1..=4), dice.roll(1..=2_000));
        let input = dice.roll(1..=(filler.len() as i64 / 4).max(1));
        let output = match fate {
            Fate::Overran => n * max_tokens * 2,
            _ => dice.roll(0..=n * max_tokens),
        };
        let mut script = format!("report {input} {output}");
        match fate {
            Fate::Overran => {}
            Fate::HungUp => script.push_str(" within sleep 400"),
            Fate::TimedOut => script.push_str(" within sleep 1500"),
            Fate::Answered => script.push_str(" within"),
        }
        let mut request = chat(&format!("{script} {filler}"));
        request["n"] = json!(n);
        request["max_tokens"] = json!(max_tokens);
        request["stream"] = json!(dice.roll(0..=1) == 1);
        worth += small_cost(input, output.min(n * max_tokens));
        requests.push((fate, dice.roll(0..=1) as usize, request));
    }
    let budget = worth / 2;
    set_budget(&app, &org, budget).await;
    for replica in &replicas {
        replica.state.gateway.refresh().await.unwrap();
    }

    let calls = requests.iter().map(|(fate, replica, request)| {
        let router = &replicas[*replica].router;
        let patience =
            if *fate == Fate::HungUp { Duration::from_millis(150) } else { Duration::from_secs(30) };
        answered_within(router, &key, request, patience)
    });
    futures_util::future::join_all(calls).await;
    // The hung-up requests' answers, and the timed-out ones', come later.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    for replica in &replicas {
        replica.state.gateway.flush().await;
    }

    let received = stub.received.lock().unwrap().clone();
    let rows = usage_rows(&app).await;
    assert_eq!(rows.len(), received.len(), "one usage row per forwarded request {seed}");
    let reported: i64 = received
        .iter()
        // Not the timed-out ones (billed their hold, checked below); 1500 may also be a token count.
        .filter(|body| argument(&script(body), "sleep") != Some(1500))
        .map(|body| {
            let words = script(body);
            let (input, output) = (argument(&words, "report").unwrap(), words[2].parse::<i64>().unwrap());
            let forwarded = body["n"].as_i64().unwrap_or(1) * body["max_tokens"].as_i64().unwrap();
            small_cost(
                input,
                if words.iter().any(|w| w == "within") { output.min(forwarded) } else { output },
            )
        })
        .sum();
    let mut booked_answered = 0;
    let (mut overran, mut overruns) = (0, 0);
    for (_, outcome, _, input, output, _, held, cost) in &rows {
        if outcome == "upstream_timeout" {
            // The worst case of what was forwarded (a clamped hold may keep a
            // few micro-USD more than the clamped `max_tokens` can cost).
            assert_eq!(*cost, small_cost(*input, *output), "billed the worst case {seed}");
            assert!(cost <= held, "within its hold {seed}");
        } else {
            booked_answered += cost;
        }
        if cost > held {
            overruns += 1;
            overran += cost - held;
        }
    }
    assert_eq!(booked_answered, reported, "booked what the provider reported {seed}");
    let audited =
        app.audit_trail().await.into_iter().filter(|(action, ..)| action == "gateway.overrun").count();
    assert_eq!(audited, overruns, "every overrun audited {seed}");
    let spent: i64 = rows.iter().map(|row| row.7).sum();
    assert!(spent <= budget + overran, "spent {spent} of {budget}, overruns {overran} {seed}");
    let workspace: WorkspaceId = org.default_workspace.parse().unwrap();
    for replica in &replicas {
        assert_eq!(replica.state.gateway.spent(Scope::Workspace(workspace)).await.unwrap(), spent, "{seed}");
    }
    println!(
        "{} requests, {} forwarded, {} overruns: booked {spent} µUSD of a budget of {budget} (+{overran} overrun)",
        requests.len(),
        received.len(),
        overruns
    );
    crate::gateway::forget_redis_keys(&prefix).await;
}

/// The meter holds 4 events in memory; while the database makes it wait, 40
/// calls are answered: what it has no room for stays in the spool alone, and
/// is read back once the database answers. None is lost, none counted twice.
async fn usage_the_meter_has_no_room_for_is_read_back_from_the_spool(app: TestApp) {
    let (org, _admin_key, key) = billed(&app).await;
    let replica = app.replica_metering(4).await;
    let request = chat("Count me once");

    // Another connection holds the lock every usage write needs.
    let mut blocker = app.db.begin().await.unwrap();
    let lock = match app.db.backend() {
        app::server::db::Backend::Postgres => "LOCK TABLE usage_events IN EXCLUSIVE MODE",
        app::server::db::Backend::Sqlite => "UPDATE gateway_config SET version = version WHERE id = 1",
    };
    sqlx::query(lock).execute(&mut *blocker).await.unwrap();
    let mut calls = 0;
    for round in 0..2 {
        for _ in 0..[10, 30][round] {
            let answer = replica.gateway("POST", "/v1/chat/completions", &key, Some(request.clone())).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            calls += 1;
        }
        // The meter takes the first calls into a batch and waits on the lock.
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    blocker.rollback().await.unwrap();
    replica.state.gateway.flush().await;

    assert_eq!(app.count("usage_events").await, calls);
    let (requests, cost): (i64, i64) = sqlx::query_as(
        "SELECT CAST(SUM(requests) AS BIGINT), CAST(SUM(cost_micros) AS BIGINT) FROM usage_hourly",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(requests, calls, "each call rolled up once");
    let workspace: WorkspaceId = org.default_workspace.parse().unwrap();
    assert_eq!(replica.state.gateway.spent(Scope::Workspace(workspace)).await.unwrap(), cost);
}
