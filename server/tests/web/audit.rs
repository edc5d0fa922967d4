//! The audit log: filters, pages, CSV export and the Admin API, each scoped to one organization.

use app::server::{
    actor::{Actor, Client},
    admin_keys::{self, NewAdminKey},
    enterprise,
};
use axum::body::Body;
use http::{header, Request, StatusCode};

use crate::common::{TestApp, PASSWORD};

crate::on_both_databases!(audit_log_is_filtered_exported_and_scoped_to_the_organization);

async fn audit_log_is_filtered_exported_and_scoped_to_the_organization(app: TestApp) {
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

    let search = |actor: &'static str, action: &'static str, from: &'static str, to: &'static str| {
        [("actor", actor), ("action", action), ("from", from), ("to", to), ("page", "1")]
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
    assert_eq!(logins["total"], 2);
    let by_prefix = ada.call("/_fn/audit_log", &search("", "organization.", "", "")).await.json();
    assert_eq!(by_prefix["total"], 1);
    let by_actor = ada.call("/_fn/audit_log", &search("ADA@", "", "", "")).await.json();
    assert_eq!(by_actor["total"], 4);
    let nobody = ada.call("/_fn/audit_log", &search("bob", "", "", "")).await.json();
    assert_eq!(nobody["total"], 0, "Bob's events belong to Looms, not Engines");
    let future = ada.call("/_fn/audit_log", &search("", "", "2999-01-01", "")).await.json();
    assert_eq!(future["total"], 0);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let today_only = ada
        .call(
            "/_fn/audit_log",
            &[("actor", ""), ("action", ""), ("from", &today), ("to", &today), ("page", "1")],
        )
        .await
        .json();
    assert_eq!(today_only["total"], 4);
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

    // The Admin API: the same log, as its Organization's key sees it.
    let org_id = ada.overview().await.json()["org"]["id"].as_str().unwrap().parse().unwrap();
    let ada_actor = Actor::User {
        id: all["items"][0]["actor_id"].as_str().unwrap().parse().unwrap(),
        email: "ada@example.com".into(),
    };
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
    let request = Request::get("/api/admin/audit-logs?event_type=admin_api_key.&page_size=5")
        .header("x-api-key", &key)
        .header(header::ACCEPT, "application/json")
        .body(Body::empty())
        .unwrap();
    let listed = app.client("192.0.2.1").send(request).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let listed = listed.json();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["event_type"], "admin_api_key.create");
    assert_eq!(listed["items"][0]["actor_type"], "HUMAN");
    assert_eq!(listed["items"][0]["target_type"], "ADMIN_API_KEY");
    assert_eq!(listed["items"][0]["event_metadata"]["name"], "Auditor");
}
