//! The tamper-evident audit log: rows edited, deleted, inserted or reordered
//! directly in SQL (as someone with the database's keys could) are named by
//! `GET /api/admin/audit-logs/verify`, by an export checked offline and by
//! `chancery audit verify`.

use app::{
    server::audit_chain::{self, AuditSigner, ChainRecord, TamperKind},
    time::Timestamp,
};
use http::StatusCode;

use crate::common::{Org, TestApp};

crate::on_both_databases!(
    an_untouched_chain_verifies_here_and_offline,
    an_edited_event_is_named,
    a_deleted_event_is_named,
    an_inserted_event_is_named,
    reordered_events_are_named,
    a_chain_rebuilt_with_fresh_hashes_misses_its_signed_checkpoint,
    the_application_cannot_change_or_empty_the_log,
    events_recorded_before_chaining_are_linked_once,
    the_command_line_verifies_and_names_the_break,
    changes_made_at_once_take_consecutive_places,
);

/// A key for the operator, whose public half the app verifies checkpoints with.
fn operator_key(app: &mut TestApp) -> AuditSigner {
    let signer = AuditSigner::generate();
    app.use_audit_signer(&signer);
    signer
}

/// Engines with a few events, its Admin API key, and a checkpoint signed
/// before one more change: the chain runs past its last checkpoint.
async fn chained<'a>(app: &'a TestApp, signer: &AuditSigner) -> (Org<'a>, String) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let key = app.admin_key(&org, "ada@example.com").await;
    let created = org
        .admin
        .call("/_fn/workspaces/create", &[("name", "Research"), ("description", ""), ("icon", "")])
        .await;
    assert!(created.status.is_success() || created.status.is_redirection(), "{}", created.body);
    // The Organization's chain and the one of events of none (sign-ups...).
    assert!(audit_chain::sign_checkpoints(&app.db, signer, Timestamp::now()).await.unwrap() >= 2);
    let renamed =
        org.admin.call("/_fn/settings/rename_organization", &[("name", "Analytical Engines")]).await;
    assert!(renamed.status.is_success() || renamed.status.is_redirection(), "{}", renamed.body);
    (org, key)
}

/// `(id, chain_seq)` of the Organization's events, in their places.
async fn places(app: &TestApp, org: &Org<'_>) -> Vec<(i64, i64)> {
    sqlx::query_as("SELECT id, chain_seq FROM audit_events WHERE org_id = $1 ORDER BY chain_seq")
        .bind(org.id.to_string())
        .fetch_all(app.db.pool())
        .await
        .unwrap()
}

/// What someone with the database's keys does first: switch the append-only guards off.
async fn lift_guards(app: &TestApp) {
    let statements: &[&str] = if app.database_url.starts_with("postgres") {
        &["ALTER TABLE audit_events DISABLE TRIGGER USER"]
    } else {
        &["DROP TRIGGER audit_events_no_update", "DROP TRIGGER audit_events_no_delete"]
    };
    for sql in statements {
        sqlx::query(sql).execute(app.db.pool()).await.unwrap();
    }
}

async fn verify(app: &TestApp, key: &str) -> serde_json::Value {
    let answer = app.api("GET", "/api/admin/audit-logs/verify", key, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.json()
}

fn problem(report: &serde_json::Value) -> (&str, i64, Option<i64>) {
    assert_eq!(report["intact"], false, "{report}");
    let problem = &report["problem"];
    (problem["kind"].as_str().unwrap(), problem["seq"].as_i64().unwrap(), problem["log_id"].as_i64())
}

async fn an_untouched_chain_verifies_here_and_offline(mut app: TestApp) {
    let signer = operator_key(&mut app);
    let (org, key) = chained(&app, &signer).await;
    let events = places(&app, &org).await;
    assert_eq!(
        events.iter().map(|(_, seq)| *seq).collect::<Vec<_>>(),
        (1..=events.len() as i64).collect::<Vec<_>>()
    );

    let report = verify(&app, &key).await;
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["organization_uuid"], org.id.to_string());
    assert_eq!(report["events"], events.len());
    assert_eq!(
        (report["checkpoints_verified"].as_i64(), report["signatures_checked"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(report["last_checkpoint_log_seq"], events.len() - 1, "the rename came after the checkpoint");

    // The export verifies offline with the public key, and shows an edit made to it.
    let export = app.api("GET", "/api/admin/audit-logs/export", &key, None).await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.body);
    let record: ChainRecord = serde_json::from_str(&export.body).unwrap();
    assert_eq!(record.events.len(), events.len());
    assert_eq!(record.verify(Some(&signer.verifying_key())).problem, None);
    let mut forged = record.clone();
    forged.events[1].content.actor_label = "mallory@example.com".into();
    let found = forged.verify(Some(&signer.verifying_key())).problem.unwrap();
    assert_eq!((found.kind, found.seq), (TamperKind::Modified, 2));
}

async fn an_edited_event_is_named(mut app: TestApp) {
    let signer = operator_key(&mut app);
    let (org, key) = chained(&app, &signer).await;
    let events = places(&app, &org).await;
    lift_guards(&app).await;
    sqlx::query("UPDATE audit_events SET details = '{\"forged\":true}' WHERE id = $1")
        .bind(events[1].0)
        .execute(app.db.pool())
        .await
        .unwrap();
    assert_eq!(problem(&verify(&app, &key).await), ("modified", 2, Some(events[1].0)));
}

async fn a_deleted_event_is_named(mut app: TestApp) {
    let signer = operator_key(&mut app);
    let (org, key) = chained(&app, &signer).await;
    let events = places(&app, &org).await;
    lift_guards(&app).await;
    // The newest event, though it came after the last checkpoint: the chain's head remembers it.
    let (last, last_seq) = *events.last().unwrap();
    sqlx::query("DELETE FROM audit_events WHERE id = $1").bind(last).execute(app.db.pool()).await.unwrap();
    assert_eq!(problem(&verify(&app, &key).await), ("deleted", last_seq, None));
    // One in the middle: named first.
    sqlx::query("DELETE FROM audit_events WHERE id = $1")
        .bind(events[1].0)
        .execute(app.db.pool())
        .await
        .unwrap();
    assert_eq!(problem(&verify(&app, &key).await), ("deleted", 2, None));
}

async fn an_inserted_event_is_named(mut app: TestApp) {
    let signer = operator_key(&mut app);
    let (org, key) = chained(&app, &signer).await;
    let linked = places(&app, &org).await.len() as i64;
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO audit_events (org_id, actor_type, actor_id, actor_label, action, target_type, target_id, created_at)
         VALUES ($1, 'user', NULL, 'ada@example.com', 'api_key.create', 'api_key', 'forged', $2) RETURNING id",
    )
    .bind(org.id.to_string())
    .bind(Timestamp::now())
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(problem(&verify(&app, &key).await), ("inserted", linked + 1, Some(id)));
}

async fn reordered_events_are_named(mut app: TestApp) {
    let signer = operator_key(&mut app);
    let (org, key) = chained(&app, &signer).await;
    let events = places(&app, &org).await;
    lift_guards(&app).await;
    // Events 2 and 3 swap places (through a free one: places are unique).
    for (id, seq) in [(events[1].0, -1), (events[2].0, 2), (events[1].0, 3)] {
        sqlx::query("UPDATE audit_events SET chain_seq = $1 WHERE id = $2")
            .bind(seq)
            .bind(id)
            .execute(app.db.pool())
            .await
            .unwrap();
    }
    assert_eq!(problem(&verify(&app, &key).await), ("reordered", 2, Some(events[2].0)));
}

async fn a_chain_rebuilt_with_fresh_hashes_misses_its_signed_checkpoint(mut app: TestApp) {
    let signer = operator_key(&mut app);
    let (org, key) = chained(&app, &signer).await;
    lift_guards(&app).await;
    // Event 2 forged and every hash from there recomputed, the head's too: each link holds.
    let mut record = ChainRecord::load(&app.db, Some(&org.id.to_string())).await.unwrap();
    record.events[1].content.actor_label = "mallory@example.com".into();
    let mut prev = record.events[0].chain_hash.clone().unwrap();
    for event in &mut record.events[1..] {
        let hash = event.content.link_hash(event.chain_seq.unwrap(), &prev);
        sqlx::query("UPDATE audit_events SET actor_label = $1, chain_hash = $2 WHERE id = $3")
            .bind(&event.content.actor_label)
            .bind(&hash)
            .bind(event.id)
            .execute(app.db.pool())
            .await
            .unwrap();
        prev = hash;
    }
    sqlx::query("UPDATE audit_chain_heads SET hash = $1 WHERE chain = $2")
        .bind(&prev)
        .bind(org.id.to_string())
        .execute(app.db.pool())
        .await
        .unwrap();
    let report = verify(&app, &key).await;
    assert_eq!(problem(&report), ("rewritten", 1, None));
    assert!(report["problem"]["message"].as_str().unwrap().contains("rewritten"), "{report}");
}

async fn the_application_cannot_change_or_empty_the_log(mut app: TestApp) {
    let signer = operator_key(&mut app);
    let (org, _) = chained(&app, &signer).await;
    let id = places(&app, &org).await[0].0;
    let refused = [
        format!("UPDATE audit_events SET details = 'x' WHERE id = {id}"),
        format!("UPDATE audit_events SET chain_hash = NULL WHERE id = {id}"),
        format!("DELETE FROM audit_events WHERE id = {id}"),
        "UPDATE audit_checkpoints SET seq = 99".to_string(),
        "DELETE FROM audit_checkpoints".to_string(),
    ];
    for sql in refused {
        let err = sqlx::query(&sql).execute(app.db.pool()).await.expect_err(&sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    if app.database_url.starts_with("postgres") {
        for table in ["audit_events", "audit_checkpoints"] {
            let err =
                sqlx::query(&format!("TRUNCATE {table}")).execute(app.db.pool()).await.expect_err(table);
            assert!(err.to_string().contains("append-only"), "TRUNCATE {table}: {err}");
        }
    }
}

async fn events_recorded_before_chaining_are_linked_once(mut app: TestApp) {
    let signer = operator_key(&mut app);
    let (org, key) = chained(&app, &signer).await;
    // An event as an earlier version recorded it: no place, no hash; the upgrade names it.
    let insert_unlinked = || async {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO audit_events (org_id, actor_type, actor_label, action, target_type, target_id, created_at)
             VALUES ($1, 'operator', 'operator', 'organization.update', 'organization', $1, $2) RETURNING id",
        )
        .bind(org.id.to_string())
        .bind(Timestamp::now())
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        id
    };
    let earlier = insert_unlinked().await;
    sqlx::query("INSERT INTO audit_chain_backfill (up_to_id) VALUES ($1)")
        .bind(earlier)
        .execute(app.db.pool())
        .await
        .unwrap();
    app.db.migrate().await.unwrap();
    assert_eq!(verify(&app, &key).await["intact"], true);
    assert_eq!(places(&app, &org).await.last().unwrap().0, earlier, "linked last, in its place");

    // Only once: a row slipped in later is not linked by the next start.
    let later = insert_unlinked().await;
    app.db.migrate().await.unwrap();
    let report = verify(&app, &key).await;
    assert_eq!(problem(&report).0, "inserted");
    assert_eq!(problem(&report).2, Some(later));
}

/// `chancery audit ...` on the test's database. Run asynchronously: the test's
/// runtime also runs the gateway's background tasks, which must go on meanwhile.
async fn chancery_audit(app: &TestApp, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_chancery"))
        .arg("audit")
        .args(args)
        .env("DATABASE_URL", &app.database_url)
        .env_remove("CHANCERY_AUDIT_SIGNING_KEY")
        .output()
        .await
        .unwrap()
}

async fn the_command_line_verifies_and_names_the_break(mut app: TestApp) {
    let keygen = chancery_audit(&app, &["keygen"]).await;
    let printed = String::from_utf8(keygen.stdout).unwrap();
    let value = |name: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{printed}"))
            .to_string()
    };
    let signer = AuditSigner::parse(&value("CHANCERY_AUDIT_SIGNING_KEY")).expect("a key");
    assert_eq!(signer.public_key(), value("CHANCERY_AUDIT_PUBLIC_KEY"));

    app.use_audit_signer(&signer);
    let (org, key) = chained(&app, &signer).await;
    let public_key = signer.public_key();

    // The CSV export verifies offline; an edited copy does not.
    let export = app.api("GET", "/api/admin/audit-logs/export?format=csv", &key, None).await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.body);
    assert_eq!(export.header("content-type"), Some("text/csv; charset=utf-8"));
    let file = std::env::temp_dir().join(format!("audit-{}.csv", uuid::Uuid::new_v4().simple()));
    let offline = ["verify", "--file", file.to_str().unwrap(), "--public-key", &public_key];
    std::fs::write(&file, &export.body).unwrap();
    let intact = chancery_audit(&app, &offline).await;
    let said = String::from_utf8_lossy(&intact.stdout).to_string();
    assert!(intact.status.success(), "{said}{}", String::from_utf8_lossy(&intact.stderr));
    assert!(said.contains(&format!("Organization {}: intact", org.id)), "{said}");
    std::fs::write(&file, export.body.replacen("workspace.", "workspace.x", 1)).unwrap();
    let edited = chancery_audit(&app, &offline).await;
    assert_eq!(edited.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&edited.stdout).contains("TAMPERED (Modified)"));
    let _ = std::fs::remove_file(&file);
    let refused = app.api("GET", "/api/admin/audit-logs/export?format=xml", &key, None).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);

    let intact = chancery_audit(&app, &["verify", "--public-key", &public_key]).await;
    let said = String::from_utf8_lossy(&intact.stdout).to_string();
    assert!(intact.status.success(), "{said}{}", String::from_utf8_lossy(&intact.stderr));
    assert!(said.contains(&format!("Organization {}: intact", org.id)), "{said}");

    // Checked against another key, the checkpoints are refused: exit 1.
    let other =
        chancery_audit(&app, &["verify", "--public-key", &AuditSigner::generate().public_key()]).await;
    assert_eq!(other.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&other.stdout).contains("TAMPERED (BadCheckpoint)"));

    lift_guards(&app).await;
    let id = places(&app, &org).await[2].0;
    sqlx::query("UPDATE audit_events SET target_id = 'elsewhere' WHERE id = $1")
        .bind(id)
        .execute(app.db.pool())
        .await
        .unwrap();
    let tampered = chancery_audit(&app, &["verify", "--public-key", &public_key]).await;
    let said = String::from_utf8_lossy(&tampered.stdout).to_string();
    assert_eq!(tampered.status.code(), Some(1), "{said}");
    assert!(said.contains("TAMPERED (Modified): Event 3"), "{said}");
}

/// Twenty audited changes sent at once: each takes its own place, the chain holds.
async fn changes_made_at_once_take_consecutive_places(mut app: TestApp) {
    let signer = operator_key(&mut app);
    let (org, key) = chained(&app, &signer).await;
    let before = places(&app, &org).await.len();
    let made = futures_util::future::join_all((0..20).map(|i| {
        let body = serde_json::json!({ "name": format!("Lab {i}"), "admin_user_id": org.admin_id });
        app.api("POST", "/api/admin/workspaces", &key, Some(body))
    }))
    .await;
    assert!(
        made.iter().all(|answer| answer.status.is_success()),
        "{:?}",
        made.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    let events = places(&app, &org).await;
    assert!(events.len() >= before + 20, "{} then {}", before, events.len());
    let seqs: Vec<i64> = events.iter().map(|(_, seq)| *seq).collect();
    assert_eq!(seqs, (1..=events.len() as i64).collect::<Vec<_>>());
    let report = verify(&app, &key).await;
    assert_eq!(report["intact"], true, "{report}");
}
