//! The refusal matrix: every Admin Panel server function, Backoffice server
//! function and Admin API endpoint that touches an Organization, called by
//! people who may not administer it: a Member, a Billing user, an Admin of
//! another Organization, and an Enterprise Account admin who was never
//! promoted in it. Each call is refused and nothing changes.

use app::server::{
    actor::{Actor, Client as Origin},
    admin_keys::{self, NewAdminKey},
    enterprise,
};
use axum::body::Body;
use http::{header, Request, StatusCode};
use serde_json::json;

use crate::common::{TestApp, PUBLIC_URL};

crate::on_both_databases!(nobody_but_an_admin_administers_an_organization);

/// Everything an administrative change would alter, as one comparable text.
async fn state_of(app: &TestApp) -> Vec<String> {
    let queries = [
        "SELECT org_id || ' ' || user_id || ' ' || role FROM org_member_roles",
        "SELECT id || ' ' || COALESCE(CAST(revoked_at AS TEXT), '-') FROM invitations",
        "SELECT id || ' ' || name || ' ' || description || ' ' || icon || ' ' || COALESCE(CAST(archived_at AS TEXT), '-') FROM workspaces",
        "SELECT workspace_id || ' ' || user_id || ' ' || role FROM workspace_members",
        "SELECT id || ' ' || name || ' ' || description FROM user_groups",
        "SELECT group_id || ' ' || user_id FROM user_group_members",
        "SELECT group_id || ' ' || workspace_id || ' ' || role FROM user_group_workspaces",
        "SELECT org_id || ' ' || domain FROM org_allowed_domains",
        "SELECT org_id || ' ' || method FROM org_billing",
        "SELECT id || ' ' || COALESCE(CAST(revoked_at AS TEXT), '-') || ' ' || COALESCE(rotated_to, '-') FROM workspace_api_keys",
        "SELECT id || ' ' || COALESCE(CAST(monthly_limit_micros AS TEXT), '-') FROM organizations",
        "SELECT workspace_id || ' ' || COALESCE(allowed_models, '-') || ' ' || COALESCE(CAST(requests_per_minute AS TEXT), '-') || ' ' || COALESCE(CAST(monthly_budget_micros AS TEXT), '-') FROM workspace_limits",
        "SELECT name FROM organizations",
        "SELECT enterprise_account_id || ' ' || user_id FROM enterprise_members",
        "SELECT id || ' ' || COALESCE(CAST(revoked_at AS TEXT), '-') FROM admin_api_keys",
        "SELECT CAST(COUNT(*) AS TEXT) FROM audit_events",
        "SELECT CAST(COUNT(*) AS TEXT) FROM outbox",
    ];
    let mut rows = Vec::new();
    for query in queries {
        let mut found: Vec<(String,)> =
            sqlx::query_as(query).fetch_all(app.db.pool()).await.unwrap_or_else(|e| panic!("{query}: {e}"));
        found.sort();
        rows.push(format!("{query}\n{}", found.into_iter().map(|(r,)| r).collect::<Vec<_>>().join("\n")));
    }
    rows
}

fn refused(status: StatusCode) -> bool {
    matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND)
}

async fn nobody_but_an_admin_administers_an_organization(app: TestApp) {
    // Engines: Ada (Admin), Mia (Member), Bill (Billing), a pending invitation,
    // a Lab workspace and a group (with Mia) granted it, a Vault workspace.
    let mut engines = app.organization("ada@example.com", "Engines").await;
    let (mut mia, mia_id) = app.join(&mut engines, "mia@example.com", &["member"]).await;
    let (mut bill, _) = app.join(&mut engines, "bill@example.com", &["billing"]).await;
    let ada = &mut engines.admin;
    ada.call("/_fn/members/invite", &[("email", "pending@example.com"), ("role_member", "on")]).await;
    let invitation = ada.call("/_fn/members/invitations", &[]).await.json()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    ada.call("/_fn/workspaces/create", &[("name", "Lab"), ("description", ""), ("icon", "")]).await;
    let overview = ada.overview().await.json();
    let lab = overview["workspaces"][1]["id"].as_str().unwrap().to_string();
    ada.call("/_fn/workspaces/create", &[("name", "Vault"), ("description", ""), ("icon", "")]).await;
    let vault = ada.overview().await.json()["workspaces"][2]["id"].as_str().unwrap().to_string();
    let group: String = serde_json::from_str(
        &ada.call("/_fn/groups/create", &[("name", "Lab crew"), ("description", "")]).await.body,
    )
    .unwrap();
    ada.call("/_fn/groups/add_member", &[("group_id", &group), ("email", "mia@example.com")]).await;
    ada.call(
        "/_fn/groups/grant_workspace",
        &[("group_id", &group), ("workspace_id", &lab), ("role", "member")],
    )
    .await;
    let ada_id = engines.admin_id.clone();
    let key_form =
        [("workspace_id", lab.as_str()), ("name", "ci"), ("expires_on", ""), ("allowed_models", "")];
    let ws_key =
        ada.call("/_fn/api_keys/create", &key_form).await.json()["view"]["id"].as_str().unwrap().to_string();

    // Bob administers Looms, with an Admin API key of his own.
    let looms = app.organization("bob@example.com", "Looms").await;
    let looms_key = app.admin_key(&looms, "bob@example.com").await;
    let mut bob = looms.admin;
    // Eve administers Mills and the Enterprise Account that links Mills and Engines,
    // but was never promoted in Engines.
    let mills = app.organization("eve@example.com", "Mills").await;
    let mut eve = mills.admin;
    let origin = Origin::default();
    let acme = enterprise::create(
        &app.db,
        &Actor::Operator,
        &origin,
        "Acme",
        &[engines.id, mills.id],
        "eve@example.com",
    )
    .await
    .unwrap()
    .id;
    let eve_actor = Actor::User { id: mills.admin_id.parse().unwrap(), email: "eve@example.com".into() };
    // Engines' keys come from Engines' Admin, who joins the Enterprise Account for it.
    let ada_actor = Actor::User { id: engines.admin_id.parse().unwrap(), email: "ada@example.com".into() };
    enterprise::add_member(&app.db, &eve_actor, &origin, acme, PUBLIC_URL, "ada@example.com").await.unwrap();
    enterprise::accept_invitation(&app.db, &ada_actor, &origin, acme).await.unwrap();
    let new_key =
        |name: &str| NewAdminKey { name: name.into(), org_id: engines.id, expires_on: String::new() };
    let live = admin_keys::create(&app.db, &ada_actor, &origin, acme, new_key("live")).await.unwrap();
    let revoked = admin_keys::create(&app.db, &ada_actor, &origin, acme, new_key("old")).await.unwrap();
    admin_keys::revoke(&app.db, &ada_actor, &origin, acme, revoked.view.id).await.unwrap();

    let before = state_of(&app).await;
    let (engines_id, revoked_id) = (engines.id.to_string(), revoked.view.id.to_string());
    let live_id = live.view.id.to_string();

    // Calls naming Engines' people, invitations, workspaces and groups.
    let targeted: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/_fn/members/resend_invitation", vec![("invitation_id", &invitation)]),
        ("/_fn/members/revoke_invitation", vec![("invitation_id", &invitation)]),
        ("/_fn/members/set_roles", vec![("user_id", &ada_id), ("role_member", "on")]),
        ("/_fn/members/remove", vec![("user_id", &mia_id)]),
        // Mia works in Lab (and sees it and her own keys there), not in Vault.
        ("/_fn/workspaces/detail", vec![("workspace_id", &vault)]),
        (
            "/_fn/workspaces/update",
            vec![("workspace_id", &lab), ("name", "Mine"), ("description", ""), ("icon", "")],
        ),
        ("/_fn/workspaces/archive", vec![("workspace_id", &lab)]),
        ("/_fn/workspaces/restore", vec![("workspace_id", &lab)]),
        ("/_fn/workspaces/put_member", vec![("workspace_id", &lab), ("user_id", &mia_id), ("role", "admin")]),
        ("/_fn/workspaces/remove_member", vec![("workspace_id", &lab), ("user_id", &ada_id)]),
        ("/_fn/groups/detail", vec![("group_id", &group)]),
        ("/_fn/groups/update", vec![("group_id", &group), ("name", "Mine"), ("description", "")]),
        ("/_fn/groups/delete", vec![("group_id", &group)]),
        ("/_fn/groups/add_member", vec![("group_id", &group), ("email", "ada@example.com")]),
        (
            "/_fn/workspaces/add_member",
            vec![("workspace_id", &lab), ("email", "mia@example.com"), ("role", "member")],
        ),
        ("/_fn/groups/remove_member", vec![("group_id", &group), ("user_id", &mia_id)]),
        (
            "/_fn/groups/grant_workspace",
            vec![("group_id", &group), ("workspace_id", &lab), ("role", "admin")],
        ),
        ("/_fn/groups/revoke_workspace", vec![("group_id", &group), ("workspace_id", &lab)]),
        (
            "/_fn/workspaces/set_rate_limits",
            vec![("workspace_id", &lab), ("requests_per_minute", "1"), ("allowed_models", "")],
        ),
        ("/_fn/api_keys", vec![("workspace_id", &vault)]),
        (
            "/_fn/api_keys/create",
            vec![("workspace_id", &vault), ("name", "mine"), ("expires_on", ""), ("allowed_models", "")],
        ),
        ("/_fn/api_keys/revoke", vec![("key_id", &ws_key)]),
        ("/_fn/api_keys/rotate", vec![("key_id", &ws_key), ("grace_hours", "1")]),
        ("/_fn/settings/revoke_admin_key", vec![("key_id", &live_id)]),
    ];
    // Billing: a Billing user's own work, refused to everyone else.
    let billing_targeted: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/_fn/workspaces/limits", vec![("workspace_id", &lab)]),
        ("/_fn/billing/set_workspace_budget", vec![("workspace_id", &lab), ("amount", "1")]),
    ];
    let billing_own_org: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/_fn/billing", vec![]),
        ("/_fn/billing/add_card", vec![("card_number", "4242424242424242"), ("card_expiry", "12/30")]),
        ("/_fn/billing/add_marketplace", vec![("marketplace", "aws"), ("account_id", "123456789012")]),
        ("/_fn/billing/remove_payment_method", vec![]),
        ("/_fn/billing/set_limit", vec![("amount", "1")]),
        ("/_fn/usage", vec![("range", "24h"), ("group", "model")]),
    ];
    // Calls on the caller's current Organization: refused to Engines' Member and Billing user.
    let own_org: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/_fn/members", vec![]),
        ("/_fn/members/invitations", vec![]),
        ("/_fn/members/invite", vec![("email", "x@example.com"), ("role_admin", "on")]),
        ("/_fn/settings/allowed_domains", vec![]),
        ("/_fn/settings/set_allowed_domains", vec![("domains", "evil.test")]),
        ("/_fn/settings/admin_keys", vec![]),
        ("/_fn/audit_log", vec![("actor", ""), ("action", ""), ("from", ""), ("to", "")]),
        ("/_fn/groups", vec![]),
        ("/_fn/groups/create", vec![("name", "Mine"), ("description", "")]),
        ("/_fn/workspaces/create", vec![("name", "Mine"), ("description", ""), ("icon", "")]),
    ];
    // The Backoffice, to anyone who administers no Enterprise Account...
    let backoffice: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/_fn/backoffice/members", vec![]),
        ("/_fn/backoffice/add_member", vec![("email", "ada@example.com")]),
        ("/_fn/backoffice/organizations", vec![]),
        ("/_fn/backoffice/create_organization", vec![("name", "Mine")]),
        ("/_fn/backoffice/api_keys", vec![]),
    ];
    // ...and what belongs to Acme, to the admin of another Enterprise Account.
    let acme_targeted: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/_fn/backoffice/remove_member", vec![("user_id", &mills.admin_id)]),
        ("/_fn/backoffice/promote_to_admin", vec![("org_id", &engines_id)]),
        ("/_fn/backoffice/create_api_key", vec![("name", "k"), ("org_id", &engines_id), ("expires_on", "")]),
        ("/_fn/backoffice/revoke_api_key", vec![("key_id", &revoked_id)]),
    ];

    let mut checked = 0;
    let mut check = |who: &str, path: &str, status: StatusCode, body: &str| {
        // A key's Organization is picked from a list: one outside the list is a form error.
        let picked_elsewhere = path.ends_with("create_api_key") && status == StatusCode::BAD_REQUEST;
        assert!(refused(status) || picked_elsewhere, "{who} calling {path} got {status}: {body}");
        checked += 1;
    };
    for (who, client) in [("Member", &mut mia), ("Billing", &mut bill)] {
        for (path, form) in targeted.iter().chain(&own_org).chain(&backoffice).chain(&acme_targeted) {
            let response = client.call(path, form).await;
            check(who, path, response.status, &response.body);
        }
        if who == "Member" {
            for (path, form) in billing_targeted.iter().chain(&billing_own_org) {
                let response = client.call(path, form).await;
                check(who, path, response.status, &response.body);
            }
        }
        let csv = client.get("/admin/audit-log.csv").await;
        check(who, "/admin/audit-log.csv", csv.status, &csv.body);
        if who == "Member" {
            let csv = client.get("/admin/usage.csv").await;
            check(who, "/admin/usage.csv", csv.status, &csv.body);
        }
    }
    for (who, client) in [("another Organization's Admin", &mut bob), ("an unpromoted EA admin", &mut eve)] {
        let opened = client.call("/_fn/open_organization", &[("org_id", &engines_id)]).await;
        check(who, "/_fn/open_organization", opened.status, &opened.body);
        for (path, form) in targeted.iter().chain(&billing_targeted) {
            let response = client.call(path, form).await;
            check(who, path, response.status, &response.body);
        }
        // What they list is their own Organization's, never Engines'.
        let listed = format!(
            "{}{}",
            client.call("/_fn/members", &[]).await.body,
            client.call("/_fn/groups", &[]).await.body
        );
        assert!(
            !listed.contains("mia@example.com") && !listed.contains("Lab crew"),
            "{who} sees Engines: {listed}"
        );
    }
    for (path, form) in &acme_targeted {
        let response = bob.call(path, form).await;
        check("another Organization's Admin", path, response.status, &response.body);
    }

    // The Admin API: every endpoint, with no key (even with a signed-in session),
    // with a revoked key, and with another Organization's key.
    let g = |tail: &str| format!("/api/admin/user-groups/{group}{tail}");
    let w = |tail: &str| format!("/api/admin/workspaces/{lab}{tail}");
    let users = json!({ "user_uuids": [ada_id] });
    let members = json!({ "members": [{ "user_uuid": ada_id }] });
    let api_targeted: Vec<(&str, String, Option<serde_json::Value>)> = vec![
        ("GET", format!("/api/admin/api-keys?workspace_uuid={lab}"), None),
        ("POST", "/api/admin/api-keys".into(), Some(json!({ "workspace_uuid": lab, "user_id": ada_id }))),
        ("DELETE", format!("/api/admin/api-keys/{ws_key}"), None),
        ("POST", format!("/api/admin/api-keys/{ws_key}/rotate"), Some(json!({}))),
        ("GET", format!("/api/admin/users/{ada_id}"), None),
        ("PATCH", format!("/api/admin/users/{ada_id}"), Some(json!({ "role_names": ["member"] }))),
        ("DELETE", format!("/api/admin/users/{mia_id}"), None),
        ("DELETE", format!("/api/admin/users-invite/{invitation}"), None),
        ("DELETE", format!("/api/admin/admin-api-keys/{live_id}"), None),
        ("GET", w(""), None),
        ("PATCH", w(""), Some(json!({ "name": "Mine" }))),
        ("DELETE", w(""), None),
        ("POST", w("/add-users"), Some(members.clone())),
        ("PATCH", w("/users"), Some(members.clone())),
        ("DELETE", w("/remove-users"), Some(members)),
        ("GET", g(""), None),
        ("PATCH", g(""), Some(json!({ "name": "Mine" }))),
        ("DELETE", g(""), None),
        ("GET", g("/members"), None),
        ("POST", g("/members"), Some(users.clone())),
        ("DELETE", g("/members"), Some(users)),
        ("GET", g("/workspaces"), None),
        ("POST", g("/workspaces"), Some(json!({ "workspace_uuid": lab }))),
        ("PATCH", g(&format!("/workspaces/{lab}")), Some(json!({ "role_names": ["workspace_admin"] }))),
        ("DELETE", g(&format!("/workspaces/{lab}")), None),
        (
            "POST",
            "/api/admin/user-groups/provision-workspace".into(),
            Some(
                json!({ "user_group_uuid": group, "workspace_uuid": lab, "workspace_role_name": "workspace_admin" }),
            ),
        ),
    ];
    let api_collections: Vec<(&str, String, Option<serde_json::Value>)> = vec![
        ("GET", "/api/admin/roles".into(), None),
        ("GET", "/api/admin/admin-api-keys".into(), None),
        ("GET", "/api/admin/users".into(), None),
        ("GET", "/api/admin/users-invite".into(), None),
        (
            "POST",
            "/api/admin/users-invite".into(),
            Some(json!({ "email": "x@example.com", "role_names": ["admin"] })),
        ),
        ("GET", "/api/admin/workspaces".into(), None),
        ("POST", "/api/admin/workspaces".into(), Some(json!({ "name": "Mine", "admin_user_id": ada_id }))),
        ("GET", "/api/admin/user-groups".into(), None),
        ("POST", "/api/admin/user-groups".into(), Some(json!({ "name": "Mine" }))),
        ("GET", "/api/admin/audit-logs".into(), None),
        ("GET", "/api/admin/billing".into(), None),
        ("GET", "/api/admin/spend-limit".into(), None),
        ("POST", "/api/admin/spend-limit".into(), Some(json!({ "amount": 1 }))),
        ("GET", "/api/admin/models".into(), None),
        ("GET", "/api/admin/usage?start_time=0".into(), None),
    ];
    for (method, path, body) in api_targeted.iter().chain(&api_collections) {
        let signed_in_without_key = with_json(Request::builder().method(*method).uri(path.as_str()), body);
        let response = engines.admin.send(signed_in_without_key).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "Admin session, no key: {method} {path}");
        let response = app.api(method, path, &revoked.key, body.clone()).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "revoked key: {method} {path}");
        checked += 2;
    }
    for (method, path, body) in &api_targeted {
        let response = app.api(method, path, &looms_key, body.clone()).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "Looms' key: {method} {path}: {}", response.body);
        checked += 1;
    }
    let listed = app.api("GET", "/api/admin/users", &looms_key, None).await.body;
    assert!(!listed.contains("mia@example.com"), "{listed}");
    let listed = app.api("GET", "/api/admin/admin-api-keys", &looms_key, None).await.body;
    assert!(!listed.contains(&live_id), "Looms' key lists only Looms' Admin API keys: {listed}");

    assert_eq!(state_of(&app).await, before, "nothing changed");
    assert!(checked > 150, "{checked} refusals checked");
}

fn with_json(request: http::request::Builder, body: &Option<serde_json::Value>) -> Request<Body> {
    match body {
        Some(body) => {
            request.header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string()))
        }
        None => request.body(Body::empty()),
    }
    .unwrap()
}
