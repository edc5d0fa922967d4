//! Members, invitations, roles and allowed email domains.

use http::StatusCode;

use crate::common::{Client, TestApp, PASSWORD};

crate::on_both_databases!(
    a_newcomer_accepts_an_invitation_and_joins_with_its_roles,
    an_existing_user_accepts_and_nobody_else_can,
    invitations_expire_can_be_revoked_and_resent,
    allowed_email_domains_limit_invitations,
    the_last_admin_stays_and_removal_ends_sessions,
    members_and_billing_users_cannot_administer,
    members_are_paged_searched_and_filtered,
);

/// Ada, Admin of Engines.
async fn ada(app: &TestApp) -> Client<'_> {
    let mut ada = app.client("203.0.113.7");
    ada.sign_up("Ada", "ada@example.com", PASSWORD).await;
    ada.create_organization("Engines").await;
    ada
}

async fn invite(admin: &mut Client<'_>, email: &str, roles: &[&str]) -> crate::common::TestResponse {
    let mut form = vec![("email", email)];
    let fields: Vec<String> = roles.iter().map(|r| format!("role_{r}")).collect();
    form.extend(fields.iter().map(|f| (f.as_str(), "on")));
    admin.call("/_fn/members/invite", &form).await
}

async fn a_newcomer_accepts_an_invitation_and_joins_with_its_roles(app: TestApp) {
    let mut ada = ada(&app).await;
    let sent = invite(&mut ada, "Grace@Example.com", &["member", "billing"]).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let listed = ada.call("/_fn/members/invitations", &[]).await.json()["items"].clone();
    assert_eq!(listed[0]["email"], "Grace@Example.com");
    assert_eq!(listed[0]["roles"], serde_json::json!(["billing", "member"]));
    let token = app.emailed_token("Grace@Example.com").await;
    let (stored,): (String,) =
        sqlx::query_as("SELECT token_sha256 FROM invitations").fetch_one(app.db.pool()).await.unwrap();
    assert!(!token.contains(&stored) && !stored.contains(&token), "only a hash of the token is stored");

    let mut grace = app.client("198.51.100.20");
    let preview = grace.call("/_fn/invitation", &[("token", &token)]).await.json();
    assert_eq!(
        (preview["org_name"].as_str(), preview["account_exists"].as_bool()),
        (Some("Engines"), Some(false))
    );
    let joined = grace
        .call(
            "/_fn/invitation/sign_up",
            &[("token", &token), ("name", "Grace Hopper"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.body);
    assert_eq!(joined.header("location"), Some("/admin"));
    let overview = grace.overview().await.json();
    assert_eq!(overview["org"]["name"], "Engines");
    assert_eq!(overview["org"]["roles"], serde_json::json!(["billing", "member"]));
    assert_eq!(overview["workspaces"][0]["name"], "Default", "members join the Default workspace");

    let listed = ada.call("/_fn/members", &[]).await.json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    let pending = ada.call("/_fn/members/invitations", &[]).await.json();
    assert_eq!(pending["items"].as_array().unwrap().len(), 0, "no longer pending");
    let again = app.client("198.51.100.21").call("/_fn/invitation", &[("token", &token)]).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "single-use");
    assert!(again.body.contains("already been accepted"));
    let actions: Vec<String> = app.audit_trail().await.into_iter().map(|(a, ..)| a).collect();
    assert!(
        actions.contains(&"organization.invite.send".into())
            && actions.contains(&"organization.invite.accepted".into())
    );
}

async fn an_existing_user_accepts_and_nobody_else_can(app: TestApp) {
    let mut ada = ada(&app).await;
    let mut bob = app.client("198.51.100.4");
    bob.sign_up("Bob", "bob@example.com", PASSWORD).await;
    bob.create_organization("Looms").await;
    let mut carol = app.client("198.51.100.5");
    carol.sign_up("Carol", "carol@example.com", PASSWORD).await;

    assert_eq!(invite(&mut ada, "bob@example.com", &["admin"]).await.status, StatusCode::OK);
    let token = app.emailed_token("bob@example.com").await;
    let stolen = carol.call("/_fn/invitation/accept", &[("token", &token)]).await;
    assert_eq!(stolen.status, StatusCode::BAD_REQUEST, "{}", stolen.body);
    assert!(stolen.body.contains("This invitation is for bob@example.com"));

    let preview = bob.call("/_fn/invitation", &[("token", &token)]).await.json();
    assert_eq!(preview["account_exists"], true);
    assert_eq!(preview["signed_in_as"]["email"], "bob@example.com");
    let accepted = bob.call("/_fn/invitation/accept", &[("token", &token)]).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    assert_eq!(
        bob.overview().await.json()["org"]["name"],
        "Engines",
        "the Admin Panel opens on the new organization"
    );
    assert_eq!(
        invite(&mut ada, "bob@example.com", &["member"]).await.status,
        StatusCode::CONFLICT,
        "already a member"
    );

    // Logging in from the invitation page accepts in one step.
    invite(&mut ada, "carol@example.com", &["member"]).await;
    let token = app.emailed_token("carol@example.com").await;
    let mut carol_elsewhere = app.client("198.51.100.6");
    let wrong = carol_elsewhere
        .call("/_fn/invitation/log_in", &[("token", &token), ("password", "wrong password!")])
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let joined =
        carol_elsewhere.call("/_fn/invitation/log_in", &[("token", &token), ("password", PASSWORD)]).await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.body);
    assert_eq!(carol_elsewhere.overview().await.json()["org"]["name"], "Engines");
}

async fn invitations_expire_can_be_revoked_and_resent(app: TestApp) {
    let mut ada = ada(&app).await;
    invite(&mut ada, "dan@example.com", &["member"]).await;
    let first = app.emailed_token("dan@example.com").await;
    let id = ada.call("/_fn/members/invitations", &[]).await.json()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (expires, created): (i64, i64) = sqlx::query_as("SELECT expires_at, created_at FROM invitations")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(expires - created, 7 * 24 * 3600 * 1000, "seven days");

    sqlx::query("UPDATE invitations SET expires_at = 1").execute(app.db.pool()).await.unwrap();
    let mut dan = app.client("198.51.100.7");
    let expired = dan.call("/_fn/invitation", &[("token", &first)]).await;
    assert!(expired.body.contains("expired"), "{}", expired.body);
    assert_eq!(ada.call("/_fn/members/invitations", &[]).await.json()["items"][0]["expired"], true);

    assert_eq!(
        ada.call("/_fn/members/resend_invitation", &[("invitation_id", &id)]).await.status,
        StatusCode::OK
    );
    let second = app.emailed_token("dan@example.com").await;
    assert_ne!(first, second);
    assert_eq!(
        dan.call("/_fn/invitation", &[("token", &first)]).await.status,
        StatusCode::BAD_REQUEST,
        "old link dead"
    );
    assert_eq!(dan.call("/_fn/invitation", &[("token", &second)]).await.status, StatusCode::OK);

    assert_eq!(
        ada.call("/_fn/members/revoke_invitation", &[("invitation_id", &id)]).await.status,
        StatusCode::OK
    );
    let revoked = dan.call("/_fn/invitation", &[("token", &second)]).await;
    assert!(revoked.body.contains("revoked"), "{}", revoked.body);
    assert_eq!(
        ada.call("/_fn/members/revoke_invitation", &[("invitation_id", &id)]).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn allowed_email_domains_limit_invitations(app: TestApp) {
    let mut ada = ada(&app).await;
    let bad =
        ada.call("/_fn/settings/set_allowed_domains", &[("domains", "example.com, not a domain")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["Invalid"]["field"], "domains");
    let set =
        ada.call("/_fn/settings/set_allowed_domains", &[("domains", "Example.com\n@engines.test")]).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let domains = ada.call("/_fn/settings/allowed_domains", &[]).await.json();
    assert_eq!(domains, serde_json::json!(["engines.test", "example.com"]));

    let outside = invite(&mut ada, "eve@elsewhere.org", &["member"]).await;
    assert_eq!(outside.status, StatusCode::BAD_REQUEST);
    assert!(outside.json()["Invalid"]["message"].as_str().unwrap().contains("engines.test, example.com"));
    assert_eq!(invite(&mut ada, "eve@engines.test", &["member"]).await.status, StatusCode::OK);
    let no_role = invite(&mut ada, "frank@example.com", &[]).await;
    assert_eq!(no_role.json()["Invalid"]["field"], "roles");
    assert_eq!(app.count("invitations").await, 1);
}

async fn the_last_admin_stays_and_removal_ends_sessions(app: TestApp) {
    let mut ada = ada(&app).await;
    let ada_id = ada.overview().await.json()["user"]["id"].as_str().unwrap().to_string();
    let demote = ada.call("/_fn/members/set_roles", &[("user_id", &ada_id), ("role_member", "on")]).await;
    assert_eq!(demote.status, StatusCode::CONFLICT, "{}", demote.body);
    assert_eq!(ada.call("/_fn/members/remove", &[("user_id", &ada_id)]).await.status, StatusCode::CONFLICT);

    invite(&mut ada, "grace@example.com", &["member"]).await;
    let token = app.emailed_token("grace@example.com").await;
    let mut grace = app.client("198.51.100.20");
    grace
        .call("/_fn/invitation/sign_up", &[("token", &token), ("name", "Grace"), ("password", PASSWORD)])
        .await;
    let grace_id = grace.overview().await.json()["user"]["id"].as_str().unwrap().to_string();

    let promoted = ada
        .call(
            "/_fn/members/set_roles",
            &[("user_id", &grace_id), ("role_admin", "on"), ("role_billing", "on")],
        )
        .await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.body);
    assert_eq!(grace.overview().await.json()["org"]["roles"], serde_json::json!(["admin", "billing"]));
    let demoted = ada.call("/_fn/members/set_roles", &[("user_id", &ada_id), ("role_member", "on")]).await;
    assert_eq!(demoted.status, StatusCode::OK, "another Admin exists now");

    let removed = grace.call("/_fn/members/remove", &[("user_id", &ada_id)]).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(ada.overview().await.status, StatusCode::UNAUTHORIZED, "Ada's session ended at once");
    let trail = app.audit_trail().await;
    assert!(trail
        .iter()
        .any(|(action, actor, ..)| action == "user.organization.delete" && actor == "grace@example.com"));
}

async fn members_and_billing_users_cannot_administer(app: TestApp) {
    let mut ada = ada(&app).await;
    let ada_id = ada.overview().await.json()["user"]["id"].as_str().unwrap().to_string();
    for (email, role) in [("mia@example.com", "member"), ("bill@example.com", "billing")] {
        invite(&mut ada, email, &[role]).await;
        let token = app.emailed_token(email).await;
        let mut user = app.client("198.51.100.30");
        user.call("/_fn/invitation/sign_up", &[("token", &token), ("name", role), ("password", PASSWORD)])
            .await;
        let calls: [(&str, Vec<(&str, &str)>); 8] = [
            ("/_fn/members", vec![]),
            ("/_fn/members/invitations", vec![]),
            ("/_fn/members/invite", vec![("email", "x@example.com"), ("role_admin", "on")]),
            ("/_fn/members/set_roles", vec![("user_id", &ada_id), ("role_member", "on")]),
            ("/_fn/members/remove", vec![("user_id", &ada_id)]),
            ("/_fn/settings/allowed_domains", vec![]),
            ("/_fn/settings/set_allowed_domains", vec![("domains", "evil.test")]),
            ("/_fn/audit_log", vec![("actor", ""), ("action", ""), ("from", ""), ("to", "")]),
        ];
        for (path, form) in calls {
            let response = user.call(path, &form).await;
            assert_eq!(response.status, StatusCode::NOT_FOUND, "{role} calling {path}: {}", response.body);
        }
    }
    // An Admin of another organization reaches nothing of this one either.
    let mut bob = app.client("198.51.100.4");
    bob.sign_up("Bob", "bob@example.com", PASSWORD).await;
    bob.create_organization("Looms").await;
    assert_eq!(bob.call("/_fn/members/remove", &[("user_id", &ada_id)]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        bob.call("/_fn/members/set_roles", &[("user_id", &ada_id), ("role_member", "on")]).await.status,
        StatusCode::NOT_FOUND
    );
    let listed = ada.call("/_fn/members", &[]).await.json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 3, "nothing changed: {listed}");
    assert_eq!(app.count("org_allowed_domains").await, 0);
}

/// The Members page and `GET /users` read one page from the database: by
/// name, searched in names and emails, filtered by role, counted whole.
async fn members_are_paged_searched_and_filtered(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let key = app.admin_key(&org, "ada@example.com").await;
    for (email, roles) in [
        ("grace@example.com", &["member"][..]),
        ("linus@example.com", &["billing"][..]),
        ("margaret@example.com", &["member", "billing"][..]),
    ] {
        app.join(&mut org, email, roles).await;
    }
    let emails = |page: &serde_json::Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|m| m["email"].as_str().unwrap().to_string()).collect()
    };
    let all = org.admin.call("/_fn/members", &[]).await.json();
    assert_eq!(all["total"], 4);
    let found = org.admin.call("/_fn/members", &[("search", "GRACE")]).await.json();
    assert_eq!((emails(&found), found["total"].clone()), (vec!["grace@example.com".to_string()], 1.into()));
    let billing = org.admin.call("/_fn/members", &[("role", "billing")]).await.json();
    assert_eq!(emails(&billing), ["linus@example.com", "margaret@example.com"]);
    let both = org.admin.call("/_fn/members", &[("search", "mar"), ("role", "billing")]).await.json();
    assert_eq!(emails(&both), ["margaret@example.com"]);
    // What is typed is searched as typed: `%` and `_` are no wildcards.
    for typed in ["%", "_"] {
        let literal = org.admin.call("/_fn/members", &[("search", typed)]).await.json();
        assert_eq!(literal["total"], 0, "{typed}");
    }
    let odd = org.admin.call("/_fn/members", &[("role", "owner")]).await;
    assert_eq!(odd.status, StatusCode::BAD_REQUEST);

    // The Admin API pages the same list: page 2 of 2-member pages, with the whole count.
    let second = app.api("GET", "/api/admin/users?page=2&page_size=2", &key, None).await.json();
    let names: Vec<&str> =
        second["members"].as_array().unwrap().iter().map(|m| m["email"].as_str().unwrap()).collect();
    assert_eq!((names.len(), second["total"].as_i64()), (2, Some(4)));
    let first = app.api("GET", "/api/admin/users?page=1&page_size=2", &key, None).await.json();
    let before: Vec<&str> =
        first["members"].as_array().unwrap().iter().map(|m| m["email"].as_str().unwrap()).collect();
    assert!(before.iter().all(|e| !names.contains(e)), "no one on both pages: {before:?} {names:?}");
    let one = app.api("GET", "/api/admin/users?email=LINUS@example.com", &key, None).await.json();
    assert_eq!(
        (one["total"].as_i64(), one["members"][0]["role_names"].clone()),
        (Some(1), serde_json::json!(["billing_manager"]))
    );

    // By name in any case; someone renamed (here as a provider's SCIM update
    // would) moves to their new place.
    let names = |page: &serde_json::Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap().to_lowercase()).collect()
    };
    let listed = names(&all);
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted);
    sqlx::query("UPDATE users SET name = 'aaron' WHERE email_normalized = 'margaret@example.com'")
        .execute(app.db.pool())
        .await
        .unwrap();
    let renamed = org.admin.call("/_fn/members", &[]).await.json();
    assert_eq!(emails(&renamed)[0], "margaret@example.com", "{:?}", names(&renamed));
}
