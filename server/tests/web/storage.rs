//! Bounded storage: raw usage rows past their retention, expired sessions,
//! sent emails, ended invitations and spent tokens are swept; what reports
//! and budgets read (the hourly roll-ups) stays.

use app::{server::housekeeping, time::Timestamp};
use http::StatusCode;

use crate::common::TestApp;

crate::on_both_databases!(rows_past_their_use_are_swept_and_roll_ups_stay);

const DAY_MS: i64 = 86_400_000;

async fn rows_past_their_use_are_swept_and_roll_ups_stay(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let now = Timestamp::now();
    let (org_id, workspace) = (org.id.to_string(), org.default_workspace.clone());

    // 12,000 usage rows 91 days old (more than two batches) and 2 from today.
    let blob = if app.database_url.starts_with("postgres") { "BYTEA" } else { "BLOB" };
    for (prefix, count, at) in [("old", 12_000, now.0 - 91 * DAY_MS), ("new", 2, now.0)] {
        sqlx::query(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
             INSERT INTO usage_events (id, at, key_id, model, status, outcome, input_tokens, output_tokens,
                                       usage_estimated, held_micros, cost_micros, latency_ms)
             SELECT CAST($2 || i AS {blob}), $3, CAST('key' AS {blob}), 'mistral-small-latest', 200, 'ok', 10, 8,
                    0, 7, 7, 1
             FROM n"
        ))
        .bind(count)
        .bind(format!("{prefix}-"))
        .bind(at)
        .execute(app.db.pool())
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO usage_hourly (hour_start, org_id, workspace_id, key_id, model, requests, failed,
                                   input_tokens, output_tokens, cost_micros)
         VALUES ($1, $2, $3, 'key', 'mistral-small-latest', 12000, 0, 120000, 96000, 84000)",
    )
    .bind(now.0 - 91 * DAY_MS)
    .bind(&org_id)
    .bind(&workspace)
    .execute(app.db.pool())
    .await
    .unwrap();

    // An invitation that expired 31 days ago, and one still open.
    for email in ["gone@example.com", "open@example.com"] {
        let invited = org.admin.call("/_fn/members/invite", &[("email", email), ("role_member", "on")]).await;
        assert_eq!(invited.status, StatusCode::OK, "{}", invited.body);
    }
    let ended = now.0 - 31 * DAY_MS;
    let exec = |sql: &'static str, at: i64| {
        let db = app.db.clone();
        async move { sqlx::query(sql).bind(at).execute(db.pool()).await.unwrap() }
    };
    exec(
        "UPDATE invitations SET created_at = $1 - 7, expires_at = $1 WHERE email = 'gone@example.com'",
        ended,
    )
    .await;
    // Ada's sign-up email was sent 31 days ago; the invitations' emails are waiting.
    exec("UPDATE outbox SET sent_at = $1 WHERE to_email = 'ada@example.com'", ended).await;
    exec(
        "INSERT INTO sessions (id, user_id, data, expires_at) VALUES ('expired', NULL, '{}', $1)",
        now.0 - 1,
    )
    .await;
    exec(
        "INSERT INTO saml_assertions_used (org_id, assertion_id, expires_at)
         SELECT id, 'used-once', $1 FROM organizations",
        now.0 - 1,
    )
    .await;
    let sessions = app.count("sessions").await;
    let (sent,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert!(sent >= 1, "Ada's email");

    let swept = housekeeping::sweep(&app.db, 90, now).await.unwrap();
    assert_eq!(
        swept,
        housekeeping::Swept {
            usage_events: 12_000,
            sessions: 1,
            outbox: sent as u64,
            invitations: 1,
            tokens: 0,
            saml_assertions: 1,
        }
    );
    assert_eq!(app.count("outbox").await, 2, "the invitations' emails, not sent yet, stay");
    assert_eq!(app.count("usage_events").await, 2, "today's rows stay");
    assert_eq!(app.count("usage_hourly").await, 1, "roll-ups stay");
    assert_eq!(app.count("sessions").await, sessions - 1, "live sessions stay");
    let pending = org.admin.call("/_fn/members/invitations", &[]).await;
    assert!(
        pending.body.contains("open@example.com") && !pending.body.contains("gone@example.com"),
        "{}",
        pending.body
    );

    // Nothing more to do at once.
    assert_eq!(housekeeping::sweep(&app.db, 90, now).await.unwrap().total(), 0);
}
