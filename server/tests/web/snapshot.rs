//! The gateway's snapshot: kept up to date change by change, it always equals
//! one loaded whole; keys revoked or expired long ago are not held at all.

use app::{server::gateway::snapshot::Snapshot, time::Timestamp};
use http::StatusCode;
use serde_json::json;

use crate::{common::TestApp, gateway::billed};

crate::on_both_databases!(
    a_snapshot_kept_up_by_changes_equals_one_loaded_whole,
    keys_revoked_or_expired_before_the_grace_are_not_held,
);

/// Refreshes the gateway and checks its snapshot against a fresh load.
async fn agrees_with_a_fresh_load(app: &TestApp, after: &str) {
    app.state.gateway.refresh().await.unwrap();
    let fresh = Snapshot::load(&app.db, Timestamp::now()).await.unwrap();
    let kept = app.state.gateway.snapshot();
    assert_eq!(kept.version, fresh.version, "after {after}");
    assert!(*kept == fresh, "after {after}: kept {kept:#?}\nloaded whole {fresh:#?}");
}

async fn a_snapshot_kept_up_by_changes_equals_one_loaded_whole(app: TestApp) {
    let (mut org, admin_key, key) = billed(&app).await;
    agrees_with_a_fresh_load(&app, "the first key").await;
    let api = |method: &'static str, path: String, body: Option<serde_json::Value>| {
        let admin_key = admin_key.clone();
        let app = &app;
        async move {
            let answer = app.api(method, &path, &admin_key, body).await;
            assert!(answer.status.is_success(), "{method} {path}: {}", answer.body);
            if answer.body.is_empty() {
                serde_json::Value::Null
            } else {
                answer.json()
            }
        }
    };
    let workspace = org.default_workspace.clone();

    let second = api(
        "POST",
        "/api/admin/api-keys".into(),
        Some(json!({ "workspace_uuid": workspace, "user_id": org.admin_id, "name": "second" })),
    )
    .await;
    agrees_with_a_fresh_load(&app, "a second key").await;
    assert_eq!(app.state.gateway.snapshot().keys.len(), 2);

    let limits = json!({ "workspace_uuid": workspace, "requests_per_minute": 7, "allowed_models": ["mistral-small-latest"] });
    api("POST", "/api/admin/rate-limit".into(), Some(limits)).await;
    agrees_with_a_fresh_load(&app, "workspace limits").await;

    api("POST", "/api/admin/spend-limit".into(), Some(json!({ "amount": 5 }))).await;
    agrees_with_a_fresh_load(&app, "an organization limit").await;

    let staging = api(
        "POST",
        "/api/admin/workspaces".into(),
        Some(json!({ "name": "Staging", "admin_user_id": org.admin_id })),
    )
    .await;
    let staging = staging["uuid"].as_str().unwrap().to_string();
    agrees_with_a_fresh_load(&app, "a new workspace").await;
    api("DELETE", format!("/api/admin/workspaces/{staging}"), None).await;
    agrees_with_a_fresh_load(&app, "an archived workspace").await;

    api("DELETE", format!("/api/admin/api-keys/{}", second["key_id"].as_str().unwrap()), None).await;
    agrees_with_a_fresh_load(&app, "a revoked key").await;

    sqlx::query("UPDATE models SET output_micros_per_mtok = output_micros_per_mtok + 1 WHERE id = 'mistral-small-latest'")
        .execute(app.db.pool())
        .await
        .unwrap();
    agrees_with_a_fresh_load(&app, "a price change").await;

    assert_eq!(org.admin.call("/_fn/billing/remove_payment_method", &[]).await.status, StatusCode::OK);
    agrees_with_a_fresh_load(&app, "billing removed").await;
    let refused = app.gateway("GET", "/v1/models", &key, None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);

    sqlx::query("DELETE FROM workspace_api_keys").execute(app.db.pool()).await.unwrap();
    agrees_with_a_fresh_load(&app, "keys deleted").await;
    assert!(app.state.gateway.snapshot().keys.is_empty());

    // A replica further behind than the log reaches reloads whole.
    let card = [("card_number", "4242424242424242"), ("card_expiry", "12/30")];
    assert_eq!(org.admin.call("/_fn/billing/add_card", &card).await.status, StatusCode::OK);
    sqlx::query("DELETE FROM gateway_changes").execute(app.db.pool()).await.unwrap();
    agrees_with_a_fresh_load(&app, "a change no longer logged").await;
    assert!(app.state.gateway.snapshot().orgs[&org.id].billing_active);
}

async fn keys_revoked_or_expired_before_the_grace_are_not_held(app: TestApp) {
    let (org, admin_key, _) = billed(&app).await;
    let day = 24 * 60 * 60 * 1000;
    let now = Timestamp::now().0;
    let mut keys = Vec::new();
    for name in ["revoked today", "revoked long ago", "expired yesterday", "expired long ago"] {
        let body = json!({ "workspace_uuid": org.default_workspace, "user_id": org.admin_id, "name": name });
        let created = app.api("POST", "/api/admin/api-keys", &admin_key, Some(body)).await.json();
        keys.push((
            created["key_id"].as_str().unwrap().to_string(),
            created["key"].as_str().unwrap().to_string(),
        ));
    }
    for (column, when, (id, _)) in [
        ("revoked_at", now, &keys[0]),
        ("revoked_at", now - 31 * day, &keys[1]),
        ("expires_at", now - day, &keys[2]),
        ("expires_at", now - 31 * day, &keys[3]),
    ] {
        sqlx::query(&format!("UPDATE workspace_api_keys SET {column} = $1 WHERE id = $2"))
            .bind(when)
            .bind(id)
            .execute(app.db.pool())
            .await
            .unwrap();
    }
    app.state.gateway.refresh().await.unwrap();
    let code = |key: String| {
        let app = &app;
        async move {
            let answer = app.gateway("GET", "/v1/models", &key, None).await;
            (answer.status, answer.json()["error"]["code"].as_str().unwrap_or_default().to_string())
        }
    };
    let answers = [
        code(keys[0].1.clone()).await,
        code(keys[1].1.clone()).await,
        code(keys[2].1.clone()).await,
        code(keys[3].1.clone()).await,
    ];
    let expected = [
        (StatusCode::UNAUTHORIZED, "api_key_revoked"),
        (StatusCode::UNAUTHORIZED, "invalid_api_key"),
        (StatusCode::FORBIDDEN, "api_key_expired"),
        (StatusCode::UNAUTHORIZED, "invalid_api_key"),
    ];
    for (answer, (status, code)) in answers.iter().zip(expected) {
        assert_eq!((answer.0, answer.1.as_str()), (status, code));
    }
    // The first key and the two within the grace.
    assert_eq!(app.state.gateway.snapshot().keys.len(), 3);
    // Loaded whole, the same.
    let fresh = Snapshot::load(&app.db, Timestamp::now()).await.unwrap();
    assert_eq!(fresh.keys.len(), 3);
}
