//! The audit log: filters, pages, CSV export and the Admin API, each scoped to one organization.

use app::server::{
    actor::{Actor, Client},
    admin_keys::{self, NewAdminKey},
    enterprise,
};
use http::StatusCode;

use crate::common::{TestApp, PASSWORD};

crate::on_both_databases!(
    audit_log_is_filtered_exported_and_scoped_to_the_organization,
    admin_api_lists_the_audit_log_as_mistral_does,
    renaming_the_organization_is_for_its_admins_and_audited,
    saving_what_is_already_there_is_not_logged,
    the_panel_names_targets_and_reads_details_as_words,
);

/// Ada's Engines, where she logged in twice more, and Bob's Looms: Ada's client.
async fn engines_and_looms(app: &TestApp) -> crate::common::Client<'_> {
    let mut ada = app.client("203.0.113.7");
    ada.sign_up("Ada", "ada@example.com", PASSWORD).await;
    ada.create_organization("Engines").await;
    for _ in 0..2 {
        ada.call("/_fn/log_out", &[]).await;
        ada.log_in("ada@example.com", PASSWORD).await;
    }
    let mut bob = app.client("198.51.100.4");
    bob.sign_up("Bob", "bob@example.com", PASSWORD).await;
    bob.create_organization("Looms").await;
    ada
}

async fn renaming_the_organization_is_for_its_admins_and_audited(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let (mut grace, _) = app.join(&mut org, "grace@example.com", &["member", "billing"]).await;
    let refused = grace.call("/_fn/settings/rename_organization", &[("name", "Grace's")]).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "Admins only: {}", refused.body);
    let empty = org.admin.call("/_fn/settings/rename_organization", &[("name", "  ")]).await;
    assert_eq!(
        (empty.status, empty.json()["Invalid"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("name"))
    );
    let renamed =
        org.admin.call("/_fn/settings/rename_organization", &[("name", " Analytical Engines ")]).await;
    assert!(renamed.status.is_success() || renamed.status.is_redirection(), "{}", renamed.body);
    assert_eq!(org.admin.overview().await.json()["org"]["name"], "Analytical Engines");
    assert_eq!(grace.overview().await.json()["org"]["name"], "Analytical Engines");
    assert_eq!(
        app.audit_details("organization.update").await,
        [r#"{"after":{"name":"Analytical Engines"},"before":{"name":"Engines"}}"#]
    );
}

async fn audit_log_is_filtered_exported_and_scoped_to_the_organization(app: TestApp) {
    let mut ada = engines_and_looms(&app).await;

    let search = |actor: &'static str, action: &'static str, from: &'static str, to: &'static str| {
        [("actor", actor), ("action", action), ("from", from), ("to", to)]
    };
    let all = ada.call("/_fn/audit_log", &search("", "", "", "")).await.json();
    let actions: Vec<&str> =
        all["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["user.log_in", "user.log_in", "workspace.create", "organization.create"],
        "newest first"
    );
    assert_eq!(all["items"][0]["ip"], "203.0.113.7");

    let logins = ada.call("/_fn/audit_log", &search("", "user.log_in", "", "")).await.json();
    assert_eq!(logins["items"].as_array().unwrap().len(), 2);
    let by_prefix = ada.call("/_fn/audit_log", &search("", "organization.", "", "")).await.json();
    assert_eq!(by_prefix["items"].as_array().unwrap().len(), 1);
    let by_actor = ada.call("/_fn/audit_log", &search("ADA@", "", "", "")).await.json();
    assert_eq!(by_actor["items"].as_array().unwrap().len(), 4);
    let nobody = ada.call("/_fn/audit_log", &search("bob", "", "", "")).await.json();
    assert_eq!(nobody["items"].as_array().unwrap().len(), 0, "Bob's events belong to Looms, not Engines");
    let future = ada.call("/_fn/audit_log", &search("", "", "2999-01-01", "")).await.json();
    assert_eq!(future["items"].as_array().unwrap().len(), 0);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let today_only = ada
        .call("/_fn/audit_log", &[("actor", ""), ("action", ""), ("from", &today), ("to", &today)])
        .await
        .json();
    assert_eq!(today_only["items"].as_array().unwrap().len(), 4);
    let bad_date = ada.call("/_fn/audit_log", &search("", "", "yesterday", "")).await;
    assert_eq!(bad_date.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_date.json()["Invalid"]["field"], "from");
    let mut anonymous = app.client("198.51.100.9");
    assert_eq!(
        anonymous.call("/_fn/audit_log", &search("", "", "", "")).await.status,
        StatusCode::UNAUTHORIZED
    );

    let csv = ada.get("/admin/audit-log.csv?action=organization.").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(csv.header("content-disposition").unwrap().starts_with("attachment"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines[0], "time,actor_type,actor,actor_id,action,target_type,target_id,ip,details");
    assert_eq!(lines.len(), 2, "{}", csv.body);
    assert!(lines[1].contains(",organization.create,organization,"), "{}", lines[1]);
    assert!(lines[1].contains("\"{\"\"name\"\":\"\"Engines\"\"}\""), "details quoted: {}", lines[1]);
    assert_eq!(anonymous.get("/admin/audit-log.csv").await.status, StatusCode::UNAUTHORIZED);

    assert_eq!(
        ada.get("/admin/audit-log.csv?action=workspace.delete").await.body.lines().count(),
        1,
        "header only"
    );

    // A log longer than the export reads at once comes whole, newest first, each event once.
    let (org,): (String,) = sqlx::query_as("SELECT id FROM organizations WHERE name = 'Engines'")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    for first in (0..2_500).step_by(500) {
        let rows: Vec<String> = (first..first + 500)
            .map(|n| {
                format!(
                    "('{org}', 'user', 'someone', 'someone', 'workspace.update', 'workspace', 'w{n}', {})",
                    now - 10_000_000 + n
                )
            })
            .collect();
        sqlx::query(&format!(
            "INSERT INTO audit_events (org_id, actor_type, actor_id, actor_label, action, target_type, target_id, \
             created_at) VALUES {}",
            rows.join(", ")
        ))
        .execute(app.db.pool())
        .await
        .unwrap();
    }
    let csv = ada.get("/admin/audit-log.csv?action=workspace.update").await;
    let targets: Vec<&str> = csv.body.lines().skip(1).map(|line| line.split(',').nth(6).unwrap()).collect();
    let expected: Vec<String> = (0..2_500).rev().map(|n| format!("w{n}")).collect();
    assert_eq!(targets, expected, "2,500 events over three windows, in order");
}

/// Mistral's `GET /audit-logs`: a bare array, filters by actor, event and target
/// type, actor, time bounds and order; keyset pages linked by `Link: rel="next"`.
async fn admin_api_lists_the_audit_log_as_mistral_does(app: TestApp) {
    let mut ada = engines_and_looms(&app).await;

    let overview = ada.overview().await.json();
    let org_id: app::ids::OrgId = overview["org"]["id"].as_str().unwrap().parse().unwrap();
    let ada_id = overview["user"]["id"].as_str().unwrap().to_string();
    let ada_actor = Actor::User { id: ada_id.parse().unwrap(), email: "ada@example.com".into() };
    let acme = enterprise::create(
        &app.db,
        &Actor::Operator,
        &Client::default(),
        "Acme",
        &[org_id],
        "ada@example.com",
    )
    .await
    .unwrap()
    .id;
    let input = NewAdminKey { name: "Auditor".into(), org_id, expires_on: String::new() };
    let key = admin_keys::create(&app.db, &ada_actor, &Client::default(), acme, input).await.unwrap().key;
    let made = app.api("POST", "/api/admin/workspaces", &key, Some(serde_json::json!({"name": "Lab"}))).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    // An event recorded under a name Chancery used before it took Mistral's.
    sqlx::query(
        "INSERT INTO audit_events (org_id, actor_type, actor_id, actor_label, action, target_type, target_id, created_at)
         VALUES ($1, 'user', $2, 'ada@example.com', 'workspace.archive', 'workspace', 'w-old', $3)",
    )
    .bind(org_id.to_string())
    .bind(&ada_id)
    .bind(chrono::Utc::now().timestamp_millis())
    .execute(app.db.pool())
    .await
    .unwrap();

    let list = |query: &str| {
        let path = format!("/api/admin/audit-logs{query}");
        let key = key.clone();
        let app = &app;
        async move {
            let listed = app.api("GET", &path, &key, None).await;
            assert_eq!(listed.status, StatusCode::OK, "{path}: {}", listed.body);
            let link = listed.header("link").map(str::to_string);
            (listed.json().as_array().expect("a bare array").clone(), link)
        }
    };
    let names = |events: &[serde_json::Value]| -> Vec<String> {
        events.iter().map(|e| e["event_type"].as_str().unwrap().to_string()).collect()
    };

    let (all, link) = list("").await;
    assert_eq!(
        names(&all),
        [
            "workspace.delete",
            "workspace.create",
            "admin_api_key.created",
            "organization.link",
            "user.log_in",
            "user.log_in",
            "workspace.create",
            "organization.create"
        ],
        "newest first, the old name read as the new one, Looms's events not among them"
    );
    assert_eq!(link, None, "nothing more to list");
    let created = &all[2];
    assert_eq!(created["actor_type"], "HUMAN");
    assert_eq!(created["actor_metadata"]["user_uuid"], ada_id.as_str());
    assert_eq!(created["actor_metadata"]["email"], "ada@example.com");
    assert_eq!(created["target_type"], "ADMIN_API_KEY");
    assert_eq!(created["event_metadata"]["name"], "Auditor");
    assert_eq!(created["organization_uuid"], org_id.to_string());
    let by_key = &all[1];
    assert_eq!(by_key["actor_type"], "API_KEY");
    assert_eq!(by_key["actor_metadata"]["name"], serde_json::Value::Null);
    assert_eq!(by_key["actor_metadata"]["label"], "Admin API key Auditor");
    assert_eq!(by_key["workspace_uuid"], made.json()["uuid"]);
    assert_eq!(by_key["target_metadata"]["workspace_uuid"], made.json()["uuid"]);

    let (keys, _) = list("?actor_type[]=API_KEY").await;
    assert_eq!(names(&keys), ["workspace.create"]);
    let (others, _) = list("?actor_type=OTHER").await;
    assert_eq!(names(&others), ["organization.link"], "the platform operator");
    let (people, _) = list("?actor_type[]=HUMAN&actor_type[]=OTHER").await;
    assert_eq!(people.len(), 7);
    let (chosen, _) = list("?event_type[]=user.log_in&event_type[]=organization.create").await;
    assert_eq!(names(&chosen), ["user.log_in", "user.log_in", "organization.create"]);
    let (archived, _) = list("?event_type=workspace.delete").await;
    assert_eq!(archived.len(), 1, "the new name finds the old events");
    let (by_old_name, _) = list("?event_type=workspace.archive").await;
    assert_eq!(names(&by_old_name), ["workspace.delete"], "and so does the old one");
    let (prefix, _) = list("?event_type=organization.").await;
    assert_eq!(names(&prefix), ["organization.link", "organization.create"]);
    let (begun, _) = list("?event_type=organization.li").await;
    assert_eq!(names(&begun), ["organization.link"], "what is not an event type begins some");
    let (workspaces, _) = list("?target_type[]=WORKSPACE").await;
    assert_eq!(names(&workspaces), ["workspace.delete", "workspace.create", "workspace.create"]);
    let (by_ada, _) = list(&format!("?actor_user_uuid={ada_id}")).await;
    assert_eq!(by_ada.len(), 6);
    let (oldest, _) = list("?sort=asc&limit=2").await;
    assert_eq!(names(&oldest), ["organization.create", "workspace.create"]);
    let (later, _) = list("?after=2999-01-01T00:00:00Z").await;
    assert!(later.is_empty());
    let (earlier, _) = list("?before=2000-01-01T00:00:00%2B02:00").await;
    assert!(earlier.is_empty());

    // Keyset pages: follow `Link: rel="next"`; every event once, in order.
    let mut paged = Vec::new();
    let mut next =
        Some("/api/admin/audit-logs?limit=3&target_type[]=USER&target_type[]=WORKSPACE".to_string());
    while let Some(path) = next.take() {
        let page = app.api("GET", &path, &key, None).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        paged.extend(page.json().as_array().unwrap().clone());
        next = page.header("link").map(|link| {
            assert!(link.ends_with(">; rel=\"next\""), "{link}");
            link.trim_start_matches('<').split('>').next().unwrap().to_string()
        });
    }
    let expected: Vec<_> =
        all.iter().filter(|e| ["USER", "WORKSPACE"].contains(&e["target_type"].as_str().unwrap())).collect();
    assert_eq!(paged.iter().collect::<Vec<_>>(), expected);
    assert_eq!(paged.len(), 5);

    for (query, param) in [
        ("?actor_type[]=ROBOT", "actor_type"),
        ("?event_type=User.Log_In", "event_type"),
        ("?after=yesterday", "after"),
        ("?before=", "before"),
        ("?sort=up", "sort"),
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?cursor=-1", "cursor"),
        // A cursor is an event of this log (the last of a page): its time says where to go on.
        ("?cursor=0", "cursor"),
        ("?actor_user_uuid=ada", "actor_user_uuid"),
    ] {
        let refused = app.api("GET", &format!("/api/admin/audit-logs{query}"), &key, None).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{query}: {}", refused.body);
        assert_eq!(refused.json()["error"]["param"], param, "{query}");
    }
    let unknown = app.api("GET", "/api/admin/audit-logs?page=2", &key, None).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "an unknown parameter is not ignored");
    assert!(unknown.body.contains("page"), "{}", unknown.body);
}

/// A save that changes nothing writes no event: settings, roles, limits.
async fn saving_what_is_already_there_is_not_logged(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let (_, grace_id) = app.join(&mut org, "grace@example.com", &["member"]).await;
    let saves = [
        (
            "organization.allowed_domains.update",
            "/_fn/settings/set_allowed_domains",
            vec![("domains", "example.com")],
        ),
        (
            "user.organization.role.update",
            "/_fn/members/set_roles",
            vec![("user_id", &grace_id), ("role_billing", "on")],
        ),
        ("billing.monthly_limit.updated", "/_fn/billing/set_limit", vec![("amount", "500")]),
        ("api_key_policy.update", "/_fn/settings/set_key_policy", vec![("max_days", "90")]),
    ];
    for (action, path, form) in saves {
        for _ in 0..2 {
            let saved = org.admin.call(path, &form).await;
            assert!(saved.status.is_success() || saved.status.is_redirection(), "{path}: {}", saved.body);
        }
        assert_eq!(
            app.audit_details(action).await.len(),
            1,
            "{action}: the second, unchanged save is not logged"
        );
    }
}

/// The Admin Panel's page of the log: targets by their names now, details as (what, value).
async fn the_panel_names_targets_and_reads_details_as_words(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    org.admin.call("/_fn/settings/rename_organization", &[("name", "Analytical Engines")]).await;
    org.admin.call("/_fn/log_out", &[]).await;
    org.admin.log_in("ada@example.com", PASSWORD).await;
    let page =
        org.admin.call("/_fn/audit_log", &[("actor", ""), ("action", ""), ("from", ""), ("to", "")]).await;
    let items = page.json()["items"].as_array().unwrap().clone();
    let event =
        |action: &str| items.iter().find(|e| e["action"] == action).unwrap_or_else(|| panic!("{action}"));
    let renamed = event("organization.update");
    assert_eq!(renamed["target_name"], "Analytical Engines");
    assert_eq!(renamed["facts"], serde_json::json!([["name", "Engines → Analytical Engines"]]));
    assert_eq!(event("workspace.create")["target_name"], "Default");
    assert_eq!(event("user.log_in")["target_name"], "ada@example.com");

    // A range that ends before it starts is refused, naming the field.
    let inverted = org
        .admin
        .call(
            "/_fn/audit_log",
            &[("actor", ""), ("action", ""), ("from", "2026-03-02"), ("to", "2026-03-01")],
        )
        .await;
    assert_eq!(
        (inverted.status, inverted.json()["Invalid"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("to"))
    );
}
