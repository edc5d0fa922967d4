//! Usage reports (Admin Panel and Admin API, CSV) and spending alerts at 80%
//! and 100% of a budget, by email and in the audit log.

use app::{
    ids::WorkspaceId,
    server::{
        actor::{Actor, Client},
        billing,
    },
};
use http::StatusCode;
use serde_json::json;

use crate::{
    common::TestApp,
    gateway::{billed, chat, cost_of_first_call},
};

crate::on_both_databases!(
    usage_is_reported_by_workspace_model_and_key,
    budgets_send_alerts_at_80_and_100_percent,
    a_workspace_member_sees_that_workspace_usage_only,
    the_usage_page_sends_the_costliest_groups_and_the_rest_summed
);

/// 30 keys' usage in the last hour: the page's report names the 20 costliest
/// in its table and 5 in each bucket, and sums the others; the CSV keeps all.
async fn the_usage_page_sends_the_costliest_groups_and_the_rest_summed(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let hour = chrono::Utc::now().timestamp_millis() / 3_600_000 * 3_600_000;
    let (org_id,): (String,) = sqlx::query_as("SELECT org_id FROM workspaces WHERE id = $1")
        .bind(&org.default_workspace)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    for n in 1..=30_i64 {
        sqlx::query(
            "INSERT INTO usage_hourly (hour_start, org_id, workspace_id, key_id, model, requests, failed,
             input_tokens, output_tokens, cost_micros) VALUES ($1, $2, $3, $4, 'mistral-small-latest', 1, 0, 10, 10, $5)",
        )
        .bind(hour)
        .bind(&org_id)
        .bind(&org.default_workspace)
        .bind(format!("key-{n:02}"))
        .bind(n * 1_000)
        .execute(app.db.pool())
        .await
        .unwrap();
    }
    let page = org.admin.call("/_fn/usage", &[("range", "24h"), ("group", "key")]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let report = &page.json()[0];
    let totals = report["totals"].as_array().unwrap();
    let ids: Vec<&str> = totals.iter().map(|r| r["group_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 21);
    assert_eq!((ids[0], ids[19], ids[20]), ("key-30", "key-11", "others"));
    assert_eq!(totals[20]["group_name"], "10 others");
    assert_eq!(totals[20]["cost_micros"], (1..=10).sum::<i64>() * 1_000);
    let costs: i64 = totals.iter().map(|r| r["cost_micros"].as_i64().unwrap()).sum();
    assert_eq!(costs, (1..=30).sum::<i64>() * 1_000, "nothing lost");
    let drawn = report["buckets"].as_array().unwrap().last().unwrap()["rows"].as_array().unwrap().len();
    assert_eq!(drawn, 6, "five keys and the others");
    let csv = org.admin.get("/admin/usage.csv?range=24h&group=key").await;
    assert_eq!(csv.body.lines().count(), 31, "the CSV lists every key");
}

/// Seed 004: a workspace Member "views usage": their workspace's, on its page;
/// not another workspace's, and not the Organization's Usage page.
async fn a_workspace_member_sees_that_workspace_usage_only(app: TestApp) {
    let (mut org, admin_key, key) = billed(&app).await;
    for model in ["mistral-small-latest", "mistral-large-latest", "mistral-large-latest"] {
        let r = app.gateway("POST", "/v1/chat/completions", &key, Some(chat(model, "Hello there"))).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    app.state.gateway.flush().await;
    let (mut leo, _) = app.join(&mut org, "leo@example.com", &["member"]).await;
    let default = org.default_workspace.clone();
    let theirs = leo.call("/_fn/workspaces/usage", &[("workspace_id", default.as_str())]).await;
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.body);
    let totals = theirs.json()["totals"].clone();
    let large = totals.as_array().unwrap().iter().find(|r| r["group_id"] == "mistral-large-latest").unwrap();
    assert_eq!(large["requests"], 2);
    assert_eq!(totals.as_array().unwrap().len(), 2, "by model");

    let ws = json!({ "name": "Lab", "admin_user_id": org.admin_id });
    let lab = app.api("POST", "/api/admin/workspaces", &admin_key, Some(ws)).await.json()["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let elsewhere = leo.call("/_fn/workspaces/usage", &[("workspace_id", lab.as_str())]).await;
    assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
    let everything = leo.call("/_fn/usage", &[("range", "30d"), ("group", "workspace")]).await;
    assert!(
        everything.status.is_client_error(),
        "the Usage page is for billing managers: {}",
        everything.status
    );
    let mine = org.admin.call("/_fn/workspaces/usage", &[("workspace_id", lab.as_str())]).await;
    assert_eq!(mine.json()["totals"], json!([]), "an Admin sees any workspace's, here none");

    // Many at once, as a workspace page's panels ask: none holds a database
    // connection while it waits for another, so none waits for the pool to time out.
    let started = std::time::Instant::now();
    let calls = (0..12).map(|n| {
        let mut tab = app.client(&format!("198.51.100.{}", 100 + n));
        tab.cookie = leo.cookie.clone();
        let default = default.clone();
        async move {
            let usage = tab.call("/_fn/workspaces/usage", &[("workspace_id", default.as_str())]).await;
            let keys = tab.call("/_fn/api_keys", &[("workspace_id", default.as_str())]).await;
            (usage.status, keys.status)
        }
    });
    for answered in futures_util::future::join_all(calls).await {
        assert_eq!(answered, (StatusCode::OK, StatusCode::OK));
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
}

async fn usage_is_reported_by_workspace_model_and_key(app: TestApp) {
    let (mut org, admin_key, key) = billed(&app).await;
    for model in ["mistral-small-latest", "mistral-small-latest", "mistral-large-latest"] {
        let r = app.gateway("POST", "/v1/chat/completions", &key, Some(chat(model, "Hello there"))).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    app.state.gateway.flush().await;
    let (total,): (i64,) = sqlx::query_as("SELECT CAST(SUM(cost_micros) AS BIGINT) FROM usage_events")
        .fetch_one(app.db.pool())
        .await
        .unwrap();

    // The Usage page's data: grouped by model, totals and a bucket per hour.
    let page = org.admin.call("/_fn/usage", &[("range", "24h"), ("group", "model")]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let (report, billing) = (&page.json()[0], &page.json()[1]);
    assert_eq!(report["buckets"].as_array().unwrap().len(), 24);
    let totals = report["totals"].as_array().unwrap();
    let small = totals.iter().find(|r| r["group_id"] == "mistral-small-latest").unwrap();
    assert_eq!(small["requests"], 2);
    assert_eq!(totals.iter().map(|r| r["cost_micros"].as_i64().unwrap()).sum::<i64>(), total);
    assert_eq!(billing["month_spend_micros"], total);
    let by_key = org.admin.call("/_fn/usage", &[("range", "7d"), ("group", "key")]).await.json();
    assert_eq!(by_key[0]["totals"][0]["group_name"], "ci");
    assert_eq!(
        org.admin.call("/_fn/usage", &[("range", "1y"), ("group", "")]).await.status,
        StatusCode::BAD_REQUEST
    );

    let csv = org.admin.get("/admin/usage.csv?range=24h&group=workspace").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.body.starts_with("bucket_start,bucket_end,group_id,group,requests"), "{}", csv.body);
    assert!(csv.body.contains(",Default,3,0,"), "{}", csv.body);

    // The Admin API: OpenAI-style buckets, and Mistral's month per model.
    let start = chrono::Utc::now().timestamp() - 3_600;
    let buckets = app
        .api(
            "GET",
            &format!("/api/admin/usage?start_time={start}&bucket_width=1h&group_by=model"),
            &admin_key,
            None,
        )
        .await;
    assert_eq!(buckets.status, StatusCode::OK, "{}", buckets.body);
    let results: Vec<serde_json::Value> = buckets.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["results"].as_array().unwrap().clone())
        .collect();
    assert_eq!(results.iter().map(|r| r["num_model_requests"].as_i64().unwrap()).sum::<i64>(), 3);
    assert!(results.iter().all(|r| r["currency"] == "USD" && r["model"].is_string()));
    let bad = app.api("GET", "/api/admin/usage?start_time=yesterday", &admin_key, None).await;
    assert_eq!(
        (bad.status, bad.json()["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("start_time"))
    );
    let now = chrono::Utc::now();
    use chrono::Datelike;
    let month = app
        .api("GET", &format!("/api/admin/usage?month={}&year={}", now.month(), now.year()), &admin_key, None)
        .await
        .json();
    assert_eq!(month["completion"]["models"]["mistral-large-latest"]["num_requests"], 1);
    assert_eq!(month["currency"], "USD");
}

async fn budgets_send_alerts_at_80_and_100_percent(app: TestApp) {
    let (org, _admin_key, key) = billed(&app).await;
    let request = chat("mistral-small-latest", "Hi");
    let each = cost_of_first_call(&app, &key, &request).await;
    let ada = Actor::User { id: org.admin_id.parse().unwrap(), email: "ada@example.com".into() };
    let workspace: WorkspaceId = org.default_workspace.parse().unwrap();
    billing::set_workspace_budget(&app.db, &ada, &Client::default(), org.id, workspace, Some(each * 40))
        .await
        .unwrap();
    app.state.gateway.refresh().await.unwrap();

    // Spend until refused.
    let mut refused = None;
    for _ in 0..60 {
        let r = app.gateway("POST", "/v1/chat/completions", &key, Some(request.clone())).await;
        if r.status != StatusCode::OK {
            refused = Some(r);
            break;
        }
    }
    let refused = refused.expect("the budget runs out");
    assert_eq!(
        (refused.status, refused.json()["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("workspace_spend_limit_exceeded"))
    );
    app.state.gateway.flush().await;

    let alerts: Vec<(i64,)> = sqlx::query_as("SELECT threshold FROM spend_alerts ORDER BY threshold")
        .fetch_all(app.db.pool())
        .await
        .unwrap();
    assert_eq!(alerts, [(80,), (100,)]);
    let emails: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT to_email, subject, body FROM outbox WHERE subject LIKE '%spending limit%' ORDER BY subject",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    assert_eq!(emails.len(), 2, "{emails:?}");
    assert!(emails.iter().all(|(to, ..)| to == "ada@example.com"));
    // Refused for costing more than is left, short of 100%: the subject does not claim 100%.
    let (_, subject, body) = &emails[0];
    assert_eq!(subject, "Workspace Default of Engines has too little of its monthly spending limit left");
    let percent: i64 =
        body.split(" this month (").nth(1).and_then(|rest| rest.split('%').next()).unwrap().parse().unwrap();
    assert!((80..100).contains(&percent), "{body}");
    assert!(emails[1].1.contains("reached 80%"), "{emails:?}");
    let audited =
        app.audit_trail().await.into_iter().filter(|(action, ..)| action == "billing.spend_alert").count();
    assert_eq!(audited, 2);

    // Once per month: more refusals announce nothing new.
    app.gateway("POST", "/v1/chat/completions", &key, Some(json!(request))).await;
    app.state.gateway.flush().await;
    assert_eq!(app.count("spend_alerts").await, 2);
}
