//! The gateway: keys, billing, allow-lists, rate limits and budgets enforced
//! with distinct refusals; usage metered; changes seen within a second;
//! concurrent requests never overspend; cut streams billed; upstream forwarding.

use std::time::Duration;

use app::{
    ids::WorkspaceId,
    server::{
        actor::{Actor, Client},
        billing,
        gateway::{ledger::Scope, shared::SharedCounters, snapshot::Snapshot},
    },
};
use axum::body::Body;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::common::{redis_url, Org, Replica, TestApp};

crate::on_both_databases!(
    keys_billing_models_and_rate_limits_are_enforced,
    concurrent_requests_never_overspend_a_budget,
    replicas_sharing_redis_count_one_budget_and_one_rate_limit,
    a_key_limit_binds_within_its_workspace_limit,
    the_configuration_version_moves_only_with_what_the_gateway_reads,
    streams_are_billed_even_when_the_caller_hangs_up,
    calls_are_forwarded_to_the_upstream_with_its_key,
    per_model_token_limits_and_requests_per_second_are_enforced,
);

/// An organization with billing active and a workspace key for its Default workspace.
pub async fn billed(app: &TestApp) -> (Org<'_>, String, String) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let admin_key = app.admin_key(&org, "ada@example.com").await;
    let card = [("card_number", "4242424242424242"), ("card_expiry", "12/30")];
    assert_eq!(org.admin.call("/_fn/billing/add_card", &card).await.status, StatusCode::OK);
    let body = json!({ "workspace_uuid": org.default_workspace, "user_id": org.admin_id, "name": "ci" });
    let key = app.api("POST", "/api/admin/api-keys", &admin_key, Some(body)).await.json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    app.state.gateway.refresh().await.unwrap();
    (org, admin_key, key)
}

pub fn chat(model: &str, text: &str) -> Value {
    json!({ "model": model, "messages": [{ "role": "user", "content": text }], "max_tokens": 64 })
}

/// Makes the first gateway call of a test and returns what it was billed.
pub async fn cost_of_first_call(app: &TestApp, key: &str, request: &Value) -> i64 {
    let answer = app.gateway("POST", "/v1/chat/completions", key, Some(request.clone())).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    app.state.gateway.flush().await;
    let (cost,): (i64,) =
        sqlx::query_as("SELECT cost_micros FROM usage_events").fetch_one(app.db.pool()).await.unwrap();
    cost
}

/// Waits out the snapshot's refresh: a change must show within one second.
async fn within_a_second() {
    tokio::time::sleep(Duration::from_millis(1_000)).await;
}

async fn keys_billing_models_and_rate_limits_are_enforced(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let admin_key = app.admin_key(&org, "ada@example.com").await;
    let body = json!({ "workspace_uuid": org.default_workspace, "user_id": org.admin_id, "name": "ci" });
    let created = app.api("POST", "/api/admin/api-keys", &admin_key, Some(body)).await.json();
    let key = created["key"].as_str().unwrap().to_string();
    let key_id = created["key_id"].as_str().unwrap().to_string();
    within_a_second().await;

    let code =
        |r: &crate::common::TestResponse| r.json()["error"]["code"].as_str().unwrap_or_default().to_string();
    let inactive = app.gateway("GET", "/v1/models", &key, None).await;
    assert_eq!((inactive.status, code(&inactive).as_str()), (StatusCode::FORBIDDEN, "billing_inactive"));
    let card = [("card_number", "4242424242424242"), ("card_expiry", "12/30")];
    org.admin.call("/_fn/billing/add_card", &card).await;
    within_a_second().await;

    let models = app.gateway("GET", "/v1/models", &key, None).await;
    assert_eq!(models.status, StatusCode::OK, "{}", models.body);
    let listed = models.json();
    let card = |id: &str| listed["data"].as_array().unwrap().iter().find(|m| m["id"] == id).cloned().unwrap();
    // OpenAI's list of models, each a Mistral model card too (what the mistralai SDK reads).
    assert_eq!(card("mistral-large-latest")["object"], "model");
    assert_eq!(card("mistral-large-latest")["type"], "base");
    assert_eq!(card("mistral-large-latest")["capabilities"]["completion_chat"], true);
    assert_eq!(card("mistral-embed")["capabilities"]["completion_chat"], false);
    // Machine paths that name nothing are JSON 404s, not the web app's page.
    for path in ["/v1/nothing-here", "/api/nothing-here", "/v1/admin/nothing-here"] {
        let missing = app.gateway("GET", path, &key, None).await;
        assert_eq!(
            (missing.status, missing.json()["error"]["type"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found_error")),
            "{path}"
        );
    }
    for (bearer, expected) in [
        (admin_key.as_str(), "admin_key_not_allowed"),
        ("chy_ws_AAAAAAAAAAAA_0000000000000000000000000000000000000000000", "invalid_api_key"),
        ("", "invalid_api_key"),
    ] {
        let refused = app.gateway("GET", "/v1/models", bearer, None).await;
        assert_eq!(
            (refused.status, code(&refused)),
            (StatusCode::UNAUTHORIZED, expected.to_string()),
            "{bearer}"
        );
    }

    let answer =
        app.gateway("POST", "/v1/chat/completions", &key, Some(chat("mistral-small-latest", "Hello"))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let answer = answer.json();
    assert_eq!(answer["provider"], "mock");
    assert!(answer["choices"][0]["message"]["content"].as_str().unwrap().contains("mock provider"));
    let embedded = app
        .gateway(
            "POST",
            "/v1/embeddings",
            &key,
            Some(json!({ "model": "mistral-embed", "input": ["a", "b"] })),
        )
        .await;
    assert_eq!(
        (embedded.status, embedded.json()["data"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(2))
    );
    assert!(embedded.json()["id"].as_str().is_some_and(|id| !id.is_empty()), "the mistralai SDK needs an id");
    let unknown = app.gateway("POST", "/v1/chat/completions", &key, Some(chat("gpt-9", "Hi"))).await;
    assert_eq!((unknown.status, code(&unknown).as_str()), (StatusCode::NOT_FOUND, "model_not_found"));
    let bad = app
        .gateway("POST", "/v1/chat/completions", &key, Some(json!({ "model": "mistral-small-latest" })))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // Allow-list and requests per minute, set in the Admin API, apply within a second.
    let limits = json!({ "workspace_uuid": org.default_workspace, "requests_per_minute": 2, "allowed_models": ["mistral-small-latest"] });
    assert_eq!(
        app.api("POST", "/api/admin/rate-limit", &admin_key, Some(limits)).await.status,
        StatusCode::OK
    );
    within_a_second().await;
    let listed = app.gateway("GET", "/v1/models", &key, None).await.json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    let large =
        app.gateway("POST", "/v1/chat/completions", &key, Some(chat("mistral-large-latest", "Hi"))).await;
    assert_eq!((large.status, code(&large).as_str()), (StatusCode::FORBIDDEN, "model_not_allowed"));
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r =
            app.gateway("POST", "/v1/chat/completions", &key, Some(chat("mistral-small-latest", "Hi"))).await;
        statuses.push((r.status, code(&r), r.header("retry-after").map(str::to_string)));
    }
    let limited =
        statuses.iter().find(|(s, ..)| *s == StatusCode::TOO_MANY_REQUESTS).expect("the third is refused");
    assert_eq!(limited.1, "rate_limit_exceeded");
    let retry: u64 = limited.2.as_deref().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");

    // Revocation applies within a second.
    assert_eq!(
        app.api("DELETE", &format!("/api/admin/api-keys/{key_id}"), &admin_key, None).await.status,
        StatusCode::OK
    );
    within_a_second().await;
    let revoked = app.gateway("GET", "/v1/models", &key, None).await;
    assert_eq!((revoked.status, code(&revoked).as_str()), (StatusCode::UNAUTHORIZED, "api_key_revoked"));

    // Metered: one row per admitted request, rolled up by hour, and the key's last use.
    app.state.gateway.flush().await;
    let (events, cost): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) FROM usage_events")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    let admitted = 2 + statuses.iter().filter(|(s, ..)| *s == StatusCode::OK).count() as i64;
    assert_eq!(events, admitted, "chat + embeddings + the calls under the rate limit");
    assert!(cost > 0);
    let (rolled,): (i64,) = sqlx::query_as("SELECT CAST(SUM(cost_micros) AS BIGINT) FROM usage_hourly")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(rolled, cost);
    let (last_used,): (Option<i64>,) =
        sqlx::query_as("SELECT last_used_at FROM workspace_api_keys").fetch_one(app.db.pool()).await.unwrap();
    assert!(last_used.is_some(), "last used is recorded");
}

async fn concurrent_requests_never_overspend_a_budget(app: TestApp) {
    let (org, _admin_key, key) = billed(&app).await;
    let request = chat("mistral-large-latest", "How much is enough?");
    // What one such request really costs (the mock answers alike every time)...
    let each = cost_of_first_call(&app, &key, &request).await;
    // A budget for 50 more such requests.
    let budget = each + 50 * each;
    let workspace: WorkspaceId = org.default_workspace.parse().unwrap();
    crate::money::set_budget(&app, &org, budget).await;

    let calls = (0..200).map(|_| {
        let router = app.router.clone();
        let body = request.to_string();
        let key = key.clone();
        tokio::spawn(async move {
            let request = Request::post("/v1/chat/completions")
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .header(header::CONTENT_TYPE, "application/json")
                .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from(([192, 0, 2, 1], 1))))
                .body(Body::from(body))
                .unwrap();
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice::<Value>(&body).unwrap())
        })
    });
    let mut ok = 0;
    for call in calls.collect::<Vec<_>>() {
        let (status, body) = call.await.unwrap();
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(body["error"]["code"], "workspace_spend_limit_exceeded")
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    app.state.gateway.flush().await;
    let (spent,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) FROM usage_events WHERE status = 200",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert!(spent <= budget, "spent {spent} of a budget of {budget}");
    let (billed,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM usage_events WHERE status = 200")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(billed, ok + 1, "every admitted request billed");
    // Calls held up by others' holds wait for them to settle, so nearly the whole budget is used.
    assert!(ok >= 45, "{ok} admitted");
    println!("200 concurrent requests, budget for 50: {ok} admitted, {spent} of {budget} micro-USD spent");
    assert_eq!(spent, app.state.gateway.spent(Scope::Workspace(workspace)).await.unwrap());
    assert_eq!(spent, app.state.gateway.spent(Scope::Org(org.id)).await.unwrap());
}

/// Two replicas counting in one Redis: a rate limit of 10 lets 10 through in
/// all, not 10 each, and 200 concurrent requests spread over both spend no
/// more than one budget. Counters start from the spend the database recorded.
async fn replicas_sharing_redis_count_one_budget_and_one_rate_limit(app: TestApp) {
    let (org, _admin_key, key) = billed(&app).await;
    let request = chat("mistral-large-latest", "How much is enough?");
    let each = cost_of_first_call(&app, &key, &request).await;
    let ada = Actor::User { id: org.admin_id.parse().unwrap(), email: "ada@example.com".into() };
    let workspace: WorkspaceId = org.default_workspace.parse().unwrap();
    billing::update_rate_limits(&app.db, &ada, &Client::default(), org.id, workspace, |limits| {
        limits.requests_per_minute = Some(10);
    })
    .await
    .unwrap();

    let prefix = format!("chancery-test-{}", uuid::Uuid::new_v4().simple());
    let counters = SharedCounters::connect(&redis_url(), &prefix)
        .await
        .expect("Redis must be reachable for the shared-counter tests (CHANCERY_TEST_REDIS_URL)");
    let replicas = [app.replica(counters.clone()).await, app.replica(counters).await];

    clear_of_the_minute_end().await;
    let mut statuses = Vec::new();
    for i in 0..20 {
        let answer =
            replicas[i % 2].gateway("POST", "/v1/chat/completions", &key, Some(request.clone())).await;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(answer.json()["error"]["code"], "rate_limit_exceeded");
            assert!(answer.header("retry-after").is_some());
        }
        statuses.push(answer.status);
    }
    let passed = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(passed, 10, "one limit of 10 for both replicas: {statuses:?}");

    // Now a budget for 50 more requests than spent so far, and no rate limit.
    for replica in &replicas {
        replica.state.gateway.flush().await;
    }
    let spent_before = spent_in_database(&app).await;
    assert_eq!(spent_before, each * 11, "the first call (recorded before Redis) and 10 more");
    let budget = spent_before + 50 * each;
    billing::update_rate_limits(&app.db, &ada, &Client::default(), org.id, workspace, |limits| {
        limits.requests_per_minute = None;
    })
    .await
    .unwrap();
    billing::set_workspace_budget(&app.db, &ada, &Client::default(), org.id, workspace, Some(budget))
        .await
        .unwrap();
    for replica in &replicas {
        replica.state.gateway.refresh().await.unwrap();
    }
    let calls = (0..200).map(|i| {
        let router = replicas[i % 2].router.clone();
        let replica = Replica { router, state: replicas[i % 2].state.clone() };
        let (key, request) = (key.clone(), request.clone());
        tokio::spawn(
            async move { replica.gateway("POST", "/v1/chat/completions", &key, Some(request)).await },
        )
    });
    let mut ok = 0;
    for call in calls.collect::<Vec<_>>() {
        let answer = call.await.unwrap();
        match answer.status {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(answer.json()["error"]["code"], "workspace_spend_limit_exceeded")
            }
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
    for replica in &replicas {
        replica.state.gateway.flush().await;
    }
    let spent = spent_in_database(&app).await;
    assert!(ok >= 40, "{ok} admitted by two replicas for a budget of 50");
    assert!(spent <= budget, "spent {spent} of a budget of {budget}");
    println!(
        "two replicas, 200 concurrent requests, budget for 50: {ok} admitted, {spent} of {budget} micro-USD"
    );
    // Redis counts what the database recorded, whichever replica served.
    for replica in &replicas {
        assert_eq!(replica.state.gateway.spent(Scope::Workspace(workspace)).await.unwrap(), spent);
        assert_eq!(replica.state.gateway.spent(Scope::Org(org.id)).await.unwrap(), spent);
    }
    forget_redis_keys(&prefix).await;
}

/// Replicas reload their snapshot when `gateway_config.version` moves: every
/// change the gateway reads moves it; a key's last use (written all the time) does not.
async fn the_configuration_version_moves_only_with_what_the_gateway_reads(app: TestApp) {
    let (org, admin_key, key) = billed(&app).await;
    let version = || Snapshot::latest_version(&app.db);
    let before = version().await.unwrap();
    assert_eq!(app.gateway("GET", "/v1/models", &key, None).await.status, StatusCode::OK);
    sqlx::query("UPDATE workspace_api_keys SET last_used_at = $1")
        .bind(1_i64)
        .execute(app.db.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE organizations SET name = 'Renamed'").execute(app.db.pool()).await.unwrap();
    assert_eq!(version().await.unwrap(), before, "uses and names do not reload anything");

    let mut seen = before;
    let limits = json!({ "workspace_uuid": org.default_workspace, "requests_per_minute": 100 });
    let spend = json!({ "amount": 5 });
    let changes = [
        ("POST", "/api/admin/rate-limit", Some(limits)),
        ("POST", "/api/admin/spend-limit", Some(spend)),
        (
            "POST",
            "/api/admin/api-keys",
            Some(json!({ "workspace_uuid": org.default_workspace, "user_id": org.admin_id })),
        ),
    ];
    for (method, path, body) in changes {
        let answer = app.api(method, path, &admin_key, body).await;
        assert!(answer.status.is_success(), "{path}: {}", answer.body);
        let now = version().await.unwrap();
        assert!(now > seen, "{path} moves the version");
        seen = now;
    }
}

/// Limits count in fixed minutes: waits, if need be, so that the next few
/// seconds of calls fall in one.
async fn clear_of_the_minute_end() {
    let into_minute = app::time::Timestamp::now().0 % 60_000;
    if into_minute > 55_000 {
        tokio::time::sleep(Duration::from_millis((60_000 - into_minute + 100) as u64)).await;
    }
}

/// A key limited to 2 requests a minute in a workspace limited to 5: the key
/// stops at 2, another key goes on to the workspace's 5, each refusal naming
/// its limit. Counted in this process, then the same through Redis.
async fn a_key_limit_binds_within_its_workspace_limit(app: TestApp) {
    let (org, admin_key, unlimited_key) = billed(&app).await;
    let body = json!({ "workspace_uuid": org.default_workspace, "user_id": org.admin_id, "name": "batch",
                       "requests_per_minute": 0 });
    let refused = app.api("POST", "/api/admin/api-keys", &admin_key, Some(body.clone())).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    let mut body = body;
    body["requests_per_minute"] = json!(2);
    let created = app.api("POST", "/api/admin/api-keys", &admin_key, Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.json()["requests_per_minute"], 2);
    let limited_key = created.json()["key"].as_str().unwrap().to_string();
    let limits = json!({ "workspace_uuid": org.default_workspace, "requests_per_minute": 5 });
    assert_eq!(
        app.api("POST", "/api/admin/rate-limit", &admin_key, Some(limits)).await.status,
        StatusCode::OK
    );
    app.state.gateway.refresh().await.unwrap();

    let prefix = format!("chancery-test-{}", uuid::Uuid::new_v4().simple());
    let counters = SharedCounters::connect(&redis_url(), &prefix).await.expect("Redis for shared counters");
    let through_redis = app.replica(counters).await;
    clear_of_the_minute_end().await;
    for redis in [false, true] {
        let call = |key: &str| {
            let (key, body) = (key.to_string(), chat("mistral-small-latest", "Hi"));
            let (app, through_redis) = (&app, &through_redis);
            async move {
                let answer = if redis {
                    through_redis.gateway("POST", "/v1/chat/completions", &key, Some(body)).await
                } else {
                    app.gateway("POST", "/v1/chat/completions", &key, Some(body)).await
                };
                let message = answer.json()["error"]["message"].as_str().unwrap_or_default().to_string();
                (answer.status, message)
            }
        };
        assert_eq!(call(&limited_key).await.0, StatusCode::OK);
        assert_eq!(call(&limited_key).await.0, StatusCode::OK);
        let (status, message) = call(&limited_key).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "redis: {redis}");
        assert_eq!(message, "This API key's requests-per-minute limit is reached.");
        for _ in 0..3 {
            assert_eq!(
                call(&unlimited_key).await.0,
                StatusCode::OK,
                "the workspace has 3 left; redis: {redis}"
            );
        }
        let (status, message) = call(&unlimited_key).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(message, "This workspace's requests-per-minute limit is reached.");
    }
    forget_redis_keys(&prefix).await;
}

async fn spent_in_database(app: &TestApp) -> i64 {
    let (spent,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) FROM usage_events WHERE status = 200",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    spent
}

pub async fn forget_redis_keys(prefix: &str) {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut redis).await.unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL").arg(keys).query_async(&mut redis).await.unwrap();
    }
}

async fn streams_are_billed_even_when_the_caller_hangs_up(app: TestApp) {
    let (_org, _admin_key, key) = billed(&app).await;
    let mut request = chat("mistral-small-latest", "Tell me a long story");
    request["stream"] = json!(true);
    let send = || {
        Request::post("/v1/chat/completions")
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header(header::CONTENT_TYPE, "application/json")
            .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from(([192, 0, 2, 1], 1))))
            .body(Body::from(request.to_string()))
            .unwrap()
    };
    // Read to the end: billed the provider's own count.
    let whole = app.router.clone().oneshot(send()).await.unwrap();
    assert_eq!(whole.headers()[header::CONTENT_TYPE], "text/event-stream");
    let text = String::from_utf8(whole.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let final_usage: Value = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|v| v["usage"].is_object())
        .unwrap();
    // Hang up after two events: the provider writes on all the same, so the
    // rest is read off the request and billed as the provider counts it.
    let mut cut = app.router.clone().oneshot(send()).await.unwrap().into_body();
    for _ in 0..3 {
        cut.frame().await.unwrap().unwrap();
    }
    drop(cut);
    app.state.gateway.flush().await;
    let rows: Vec<(i64, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT status, outcome, output_tokens, usage_estimated, cost_micros FROM usage_events ORDER BY status",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let provider_count = final_usage["usage"]["completion_tokens"].as_i64().unwrap();
    assert_eq!((rows[0].0, rows[0].1.as_str(), rows[0].2), (200, "ok", provider_count));
    assert_eq!(rows[1].0, 499, "the caller went away");
    assert_eq!(rows[1].1, "client_closed");
    assert_eq!((rows[1].2, rows[1].3), (provider_count, 0), "the provider's own count");
    assert_eq!(rows[1].4, rows[0].4);
}

async fn calls_are_forwarded_to_the_upstream_with_its_key(mut app: TestApp) {
    // A stand-in for an OpenAI-compatible API that says what it received, in
    // an answer laid out its own way (indented), kept to compare.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let written = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let upstream = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post({
            let written = written.clone();
            move |headers: http::HeaderMap, body: String| async move {
                let auth = headers[header::AUTHORIZATION].to_str().unwrap().to_string();
                let trace = headers.get("traceparent").map(|v| v.to_str().unwrap().to_string());
                let sent: Value = serde_json::from_str(&body).unwrap();
                let answer = serde_json::to_string_pretty(&json!({
                    "id": trace, "object": "chat.completion", "model": sent["model"],
                    "choices": [{ "index": 0, "message": { "role": "assistant", "content": auth }, "finish_reason": "stop" }],
                    "usage": { "prompt_tokens": 1_000_000, "completion_tokens": 3, "total_tokens": 1_000_003 },
                }))
                .unwrap();
                *written.lock().unwrap() = answer.clone();
                ([(header::CONTENT_TYPE, "application/json")], answer)
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, upstream).await.unwrap() });
    let (_org, _admin_key, key) = billed(&app).await;
    app.use_upstream(app::server::gateway::Upstream::new(&format!("http://{address}/v1"), "upstream-secret"));
    let answer = app
        .gateway("POST", "/v1/chat/completions", &key, Some(json!({ "model": "mistral-small-latest", "messages": [{ "role": "user", "content": "x".repeat(2_000_000) }] })))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        answer.json()["choices"][0]["message"]["content"],
        "Bearer upstream-secret",
        "the caller's key stays here"
    );
    assert_eq!(answer.body, *written.lock().unwrap(), "passed on as the provider wrote it");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    // The upstream call starts a trace of its own, the caller sent none.
    let started = answer.json()["id"].as_str().unwrap().to_string();
    assert!(server::telemetry::TraceContext::parse(&started).is_some(), "{started}");
    app.state.gateway.flush().await;
    let (cost,): (i64,) =
        sqlx::query_as("SELECT cost_micros FROM usage_events").fetch_one(app.db.pool()).await.unwrap();
    // 1M input tokens at $0.10 and 3 output tokens at $0.30 per million, rounded up.
    assert_eq!(cost, 100_000 + 1);

    // A caller's trace is continued: same trace, a span of the gateway's own.
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let request = http::Request::builder()
        .method("POST")
        .uri("/v1/chat/completions")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header("traceparent", parent)
        .header("x-request-id", "req-42")
        .body(axum::body::Body::from(chat("mistral-small-latest", "Hello").to_string()))
        .unwrap();
    let answer = app.client("192.0.2.60").send(request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.header("x-request-id"), Some("req-42"));
    let sent_on = answer.json()["id"].as_str().unwrap().to_string();
    assert!(
        sent_on.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && sent_on.ends_with("-01"),
        "{sent_on}"
    );
    assert!(!sent_on.contains("00f067aa0ba902b7"), "{sent_on}");
}

/// Mistral's workspace limits through the Admin API: requests per second and,
/// per model, tokens per minute and per month. Each refusal has its own code;
/// answers carry `x-ratelimit-*` headers. Counted in this process for the
/// default workspace, then through Redis for another.
async fn per_model_token_limits_and_requests_per_second_are_enforced(app: TestApp) {
    let (org, admin_key, key) = billed(&app).await;
    let unknown = json!({ "tokens_limits_by_model": { "no-such-model": { "tokens_per_minute": 10 } } });
    let refused = app.api("POST", "/api/admin/rate-limit", &admin_key, Some(unknown)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("tokens_limits_by_model"), "{}", refused.body);
    let not_an_object = json!({ "tokens_limits_by_model": { "mistral-small-latest": [] } });
    let refused = app.api("POST", "/api/admin/rate-limit", &admin_key, Some(not_an_object)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    let zero = json!({ "tokens_limits_by_model": { "mistral-small-latest": { "tokens_per_month": 0 } } });
    assert_eq!(
        app.api("POST", "/api/admin/rate-limit", &admin_key, Some(zero)).await.status,
        StatusCode::BAD_REQUEST
    );
    let ws = json!({ "name": "Batch", "admin_user_id": org.admin_id });
    let batch = app.api("POST", "/api/admin/workspaces", &admin_key, Some(ws)).await.json()["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let body = json!({ "workspace_uuid": batch, "user_id": org.admin_id, "name": "batch" });
    let batch_key = app.api("POST", "/api/admin/api-keys", &admin_key, Some(body)).await.json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    app.state.gateway.refresh().await.unwrap();

    let prefix = format!("chancery-test-{}", uuid::Uuid::new_v4().simple());
    let counters = SharedCounters::connect(&redis_url(), &prefix).await.expect("Redis for shared counters");
    let through_redis = app.replica(counters).await;
    clear_of_the_minute_end().await;
    model_limits_hold(&app, None, &admin_key, None, &key).await;
    model_limits_hold(&app, Some(&through_redis), &admin_key, Some(&batch), &batch_key).await;
    // Without workspace_uuid, GET /rate-limit answers for the default workspace, in Mistral's shape.
    let got = app.api("GET", "/api/admin/rate-limit", &admin_key, None).await.json();
    assert_eq!(got["workspace_uuid"], org.default_workspace);
    assert_eq!(got["requests_per_second"], 2);
    assert_eq!(got["tokens_limits_by_model"]["mistral-small-latest"]["tokens_per_minute"], 2_000);
    assert_eq!(got["tokens_limits_by_model"]["mistral-large-latest"]["tokens_per_month"], 600);
    let audited = app.audit_details("rate_limit.rule.update").await;
    let after: Value = serde_json::from_str(audited.last().unwrap()).unwrap();
    assert_eq!(after["after"]["tokens_limits_by_model"]["mistral-large-latest"]["tokens_per_month"], 600);
}

/// One workspace's pass of the test above, through `replica` or `app`.
async fn model_limits_hold(
    app: &TestApp,
    replica: Option<&Replica>,
    admin_key: &str,
    workspace: Option<&str>,
    key: &str,
) {
    let call = |body: Value| async move {
        match replica {
            Some(replica) => replica.gateway("POST", "/v1/chat/completions", key, Some(body)).await,
            None => app.gateway("POST", "/v1/chat/completions", key, Some(body)).await,
        }
    };
    let small = |max_tokens: i64| {
        let mut body = chat("mistral-small-latest", "Hi");
        body["max_tokens"] = json!(max_tokens);
        body
    };
    let large = |words: usize| {
        let mut body = chat("mistral-large-latest", &"words ".repeat(words));
        body["max_tokens"] = json!(16);
        body
    };
    // Tokens used before a limit exists count against this month's.
    let before = call(large(10)).await;
    assert_eq!(before.status, StatusCode::OK);
    assert!(before.header("x-ratelimit-limit-tokens").is_none(), "no limit, no header");
    let mut limits = json!({
        "requests_per_second": 50,
        "tokens_limits_by_model": {
            "mistral-small-latest": { "tokens_per_minute": 2_000, "tokens_per_month": null },
            "mistral-large-latest": { "tokens_per_month": 600 },
        },
    });
    if let Some(workspace) = workspace {
        limits["workspace_uuid"] = json!(workspace);
    }
    let set = app.api("POST", "/api/admin/rate-limit", admin_key, Some(limits.clone())).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let gateway = &replica.map_or(&app.state, |r| &r.state).gateway;
    gateway.refresh().await.unwrap();

    let first = call(small(100)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.header("x-ratelimit-limit-tokens"), Some("2000"));
    let remaining: i64 = first.header("x-ratelimit-remaining-tokens").unwrap().parse().unwrap();
    assert!((1_800..1_900).contains(&remaining), "the worst case is held: {remaining}");
    assert!(first.header("x-ratelimit-reset-tokens").unwrap().ends_with('s'));
    assert_eq!(first.header("x-ratelimit-limit-requests"), Some("50"), "per second");
    assert_eq!(first.header("x-ratelimit-remaining-requests"), Some("49"));

    // More than the limit can ever hold: refused, no point retrying, and what would fit.
    let too_big = call(small(5_000)).await;
    assert_eq!(too_big.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(too_big.json()["error"]["code"], "tokens_per_minute_exceeded");
    assert!(too_big.header("retry-after").is_none());
    assert_eq!(too_big.header("x-ratelimit-limit-tokens"), Some("2000"));
    let fits = too_big.json()["error"]["affordable_max_tokens"].as_i64().unwrap();
    assert!(fits > remaining - 100, "the first call's unused hold came back: {fits} after {remaining}");
    // What fits goes through once; the same again waits for the next minute.
    assert_eq!(call(small(fits)).await.status, StatusCode::OK);
    let again = call(small(fits)).await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(again.json()["error"]["code"], "tokens_per_minute_exceeded");
    assert!(again.header("retry-after").is_some());

    // Tokens per month on another model run out, and wait for the next month.
    let mut refusal = None;
    for _ in 0..40 {
        let answer = call(large(10)).await;
        assert_eq!(answer.header("x-ratelimit-limit-tokens"), Some("600"));
        if answer.status != StatusCode::OK {
            refusal = Some(answer);
            break;
        }
    }
    let refusal = refusal.expect("600 tokens a month run out");
    assert_eq!(refusal.status, StatusCode::TOO_MANY_REQUESTS, "{}", refusal.body);
    assert_eq!(refusal.json()["error"]["code"], "tokens_per_month_exceeded");
    let retry: u64 = refusal.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 31 * 24 * 3600, "until the month ends: {retry}");
    gateway.flush().await;
    let workspace_id = match workspace {
        Some(id) => id.to_string(),
        None => app.api("GET", "/api/admin/rate-limit", admin_key, None).await.json()["workspace_uuid"]
            .as_str()
            .unwrap()
            .to_string(),
    };
    let (used,): (i64,) = sqlx::query_as(
        "SELECT CAST(SUM(input_tokens + output_tokens) AS BIGINT) FROM usage_hourly
         WHERE model = 'mistral-large-latest' AND workspace_id = $1",
    )
    .bind(&workspace_id)
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert!((450..=600).contains(&used), "up to the month's 600, the call before the limit included: {used}");

    // Requests per second: 2 in a second, then the next second.
    limits["requests_per_second"] = json!(2);
    assert_eq!(
        app.api("POST", "/api/admin/rate-limit", admin_key, Some(limits)).await.status,
        StatusCode::OK
    );
    gateway.refresh().await.unwrap();
    let into_second = app::time::Timestamp::now().0 % 1_000;
    tokio::time::sleep(Duration::from_millis((1_000 - into_second) as u64)).await;
    let answers = [call(small(8)).await, call(small(8)).await, call(small(8)).await];
    assert_eq!(
        answers.iter().map(|a| a.status).collect::<Vec<_>>(),
        [StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS]
    );
    assert_eq!(answers[2].json()["error"]["code"], "requests_per_second_exceeded");
    assert_eq!(answers[2].header("retry-after"), Some("1"));
    assert_eq!(answers[2].header("x-ratelimit-remaining-requests"), Some("0"));
    assert_eq!(answers[1].header("x-ratelimit-limit-requests"), Some("2"));
}
