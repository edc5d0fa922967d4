//! Access that ends when it should: a person who loses access loses, in the
//! same change, the keys, invitations and Enterprise Account membership that
//! depended on it; concurrent demotions never leave an Organization (or an
//! Enterprise Account) without an Admin.

use std::time::{Duration, Instant};

use app::{
    ids::{EnterpriseId, OrgId, UserId, WorkspaceId},
    model::{CurrentUser, OrgRole},
    server::{
        actor::{Actor, Client},
        admin_keys::{self, NewAdminKey},
        api_keys, enterprise, members,
    },
    AppError,
};
use http::StatusCode;
use serde_json::json;

use crate::{
    common::{TestApp, TestResponse, PUBLIC_URL},
    gateway::billed,
};

crate::on_both_databases!(
    a_removed_members_keys_stop_working_within_a_second,
    losing_a_workspace_revokes_the_keys_held_there,
    invitations_end_with_their_inviters_right_to_invite,
    enterprise_membership_ends_with_the_last_admin_role,
    organization_admins_see_and_revoke_their_admin_api_keys,
    concurrent_demotions_never_leave_an_organization_without_an_admin,
    concurrent_removals_never_empty_an_enterprise_account,
    rotating_someone_elses_key_makes_it_the_rotators_and_tells_the_owner,
    a_key_made_while_its_owner_is_removed_does_not_survive,
    a_key_rotated_while_its_rotator_is_removed_does_not_survive,
);

fn code(response: &TestResponse) -> String {
    response.json()["error"]["code"].as_str().unwrap_or_default().to_string()
}

/// A workspace key owned by `owner`, made through the Admin API.
async fn key_for(app: &TestApp, admin_key: &str, workspace: &str, owner: &str) -> (String, String) {
    let body = json!({ "workspace_uuid": workspace, "name": "work", "user_id": owner });
    let created = app.api("POST", "/api/admin/api-keys", admin_key, Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let created = created.json();
    (created["key"].as_str().unwrap().to_string(), created["key_id"].as_str().unwrap().to_string())
}

/// A new workspace "Research", administered by `admin_id`; its id.
async fn research_workspace(app: &TestApp, admin_key: &str, admin_id: &str) -> String {
    let body = json!({ "name": "Research", "admin_user_id": admin_id });
    let created = app.api("POST", "/api/admin/workspaces", admin_key, Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    created.json()["uuid"].as_str().unwrap().to_string()
}

async fn is_revoked(app: &TestApp, key_id: &str) -> bool {
    let (revoked_at,): (Option<i64>,) =
        sqlx::query_as("SELECT revoked_at FROM workspace_api_keys WHERE id = $1")
            .bind(key_id)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    revoked_at.is_some()
}

async fn a_removed_members_keys_stop_working_within_a_second(app: TestApp) {
    let (mut org, admin_key, _) = billed(&app).await;
    let (_grace, grace_id) = app.join(&mut org, "grace@example.com", &["member"]).await;
    // Grace's own key, and one an Admin made for her: both are hers.
    let (grace_key, grace_key_id) = key_for(&app, &admin_key, &org.default_workspace, &grace_id).await;
    let (for_grace, _) = key_for(&app, &admin_key, &org.default_workspace, &grace_id).await;
    let (adas_key, _) = key_for(&app, &admin_key, &org.default_workspace, &org.admin_id).await;
    app.state.gateway.refresh().await.unwrap();
    assert_eq!(app.gateway("GET", "/v1/models", &grace_key, None).await.status, StatusCode::OK);

    let removed = org.admin.call("/_fn/members/remove", &[("user_id", &grace_id)]).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(removed.json()["api_keys_revoked"], 2, "the Admin Panel is told how many keys ended");
    assert!(is_revoked(&app, &grace_key_id).await, "revoked in the removal's transaction");

    let started = Instant::now();
    let refused = loop {
        let answer = app.gateway("GET", "/v1/models", &grace_key, None).await;
        if answer.status != StatusCode::OK || started.elapsed() > Duration::from_secs(3) {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let elapsed = started.elapsed();
    println!("a removed member's key was refused {} ms after the removal", elapsed.as_millis());
    assert_eq!((refused.status, code(&refused).as_str()), (StatusCode::UNAUTHORIZED, "api_key_revoked"));
    assert!(elapsed < Duration::from_secs(1), "refused within a second, took {elapsed:?}");
    let other = app.gateway("GET", "/v1/models", &for_grace, None).await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED, "the key an Admin made for her ended too");
    let adas = app.gateway("GET", "/v1/models", &adas_key, None).await;
    assert_eq!(adas.status, StatusCode::OK, "the keys of those who stay keep working");

    let (revocations,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_events WHERE action = 'api_key.delete' AND details LIKE '%owner_lost_access%'",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(revocations, 2, "one audit event per revoked key");

    // The same through the Admin API, which says so too.
    let (_mia, mia_id) = app.join(&mut org, "mia@example.com", &["member"]).await;
    key_for(&app, &admin_key, &org.default_workspace, &mia_id).await;
    let removed = app.api("DELETE", &format!("/api/admin/users/{mia_id}"), &admin_key, None).await.json();
    assert_eq!(removed["api_keys_revoked"], 1, "{removed}");
}

async fn losing_a_workspace_revokes_the_keys_held_there(app: TestApp) {
    let (mut org, admin_key, _) = billed(&app).await;
    let (_grace, grace_id) = app.join(&mut org, "grace@example.com", &["member"]).await;
    let research = research_workspace(&app, &admin_key, &org.admin_id).await;
    let add = json!({ "members": [{ "user_uuid": grace_id, "role_names": ["workspace_member"] }] });
    app.api("POST", &format!("/api/admin/workspaces/{research}/add-users"), &admin_key, Some(add)).await;
    let (_, in_research) = key_for(&app, &admin_key, &research, &grace_id).await;
    let (_, in_default) = key_for(&app, &admin_key, &org.default_workspace, &grace_id).await;

    let remove = json!({ "members": [{ "user_uuid": grace_id }] });
    let removed = app
        .api("DELETE", &format!("/api/admin/workspaces/{research}/remove-users"), &admin_key, Some(remove))
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert!(is_revoked(&app, &in_research).await, "she no longer reaches Research");
    assert!(!is_revoked(&app, &in_default).await, "she still works in Default");

    // Through a group: leaving the group, or the group losing the workspace, ends her keys there.
    let ada = &mut org.admin;
    let group: String = serde_json::from_str(
        &ada.call("/_fn/groups/create", &[("name", "Lab"), ("description", "")]).await.body,
    )
    .unwrap();
    ada.call("/_fn/groups/add_member", &[("group_id", &group), ("email", "grace@example.com")]).await;
    let grant = [("group_id", group.as_str()), ("workspace_id", research.as_str()), ("role", "member")];
    assert_eq!(ada.call("/_fn/groups/grant_workspace", &grant).await.status, StatusCode::OK);
    let (_, via_group) = key_for(&app, &admin_key, &research, &grace_id).await;
    let left = ada.call("/_fn/groups/remove_member", &[("group_id", &group), ("user_id", &grace_id)]).await;
    assert_eq!(left.status, StatusCode::OK, "{}", left.body);
    assert!(is_revoked(&app, &via_group).await, "leaving the group left Research");

    ada.call("/_fn/groups/add_member", &[("group_id", &group), ("email", "grace@example.com")]).await;
    let (_, via_grant) = key_for(&app, &admin_key, &research, &grace_id).await;
    let ungrant = [("group_id", group.as_str()), ("workspace_id", research.as_str())];
    assert_eq!(ada.call("/_fn/groups/revoke_workspace", &ungrant).await.status, StatusCode::OK);
    assert!(is_revoked(&app, &via_grant).await, "the group no longer grants Research");
    assert!(!is_revoked(&app, &in_default).await);

    // An Admin reaches every workspace: an Admin's keys stay while they are one.
    let (_, admins_key) = key_for(&app, &admin_key, &research, &org.admin_id).await;
    let remove = json!({ "members": [{ "user_uuid": org.admin_id }] });
    app.api("DELETE", &format!("/api/admin/workspaces/{research}/remove-users"), &admin_key, Some(remove))
        .await;
    assert!(!is_revoked(&app, &admins_key).await);
}

async fn invitations_end_with_their_inviters_right_to_invite(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let (mut bob, bob_id) = app.join(&mut org, "bob@example.com", &["admin"]).await;
    // Bob, about to be removed, invites a personal address as Admin.
    let sent =
        bob.call("/_fn/members/invite", &[("email", "bob.personal@example.net"), ("role_admin", "on")]).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let token = app.emailed_token("bob.personal@example.net").await;
    let sent =
        bob.call("/_fn/members/invite", &[("email", "carol@example.com"), ("role_member", "on")]).await;
    assert_eq!(sent.status, StatusCode::OK);

    let demoted =
        org.admin.call("/_fn/members/set_roles", &[("user_id", &bob_id), ("role_member", "on")]).await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.body);
    assert_eq!(demoted.json()["invitations_revoked"], 2);
    let listed = org.admin.call("/_fn/members/invitations", &[]).await.json();
    assert_eq!(listed["items"], json!([]), "no pending invitation of Bob's is left");

    let mut stranger = app.client("198.51.100.99");
    let accepted = stranger
        .call(
            "/_fn/invitation/sign_up",
            &[("token", &token), ("name", "Bob"), ("password", crate::common::PASSWORD)],
        )
        .await;
    assert_eq!(accepted.status, StatusCode::BAD_REQUEST, "{}", accepted.body);
    assert!(accepted.body.contains("revoked"), "{}", accepted.body);
    assert_eq!(app.count("org_members").await, 2, "nobody joined");

    // Invitations an Admin API key sent end when the key is revoked.
    let admin_key = app.admin_key(&org, "ada@example.com").await;
    let invited = app
        .api(
            "POST",
            "/api/admin/users-invite",
            &admin_key,
            Some(json!({ "email": "dan@example.com", "role_names": ["member"] })),
        )
        .await;
    assert!(invited.status.is_success(), "{}", invited.body);
    let listed = app.api("GET", "/api/admin/admin-api-keys", &admin_key, None).await.json();
    let key_id = listed["data"][0]["key_id"].as_str().unwrap().to_string();
    let revoked = org.admin.call("/_fn/settings/revoke_admin_key", &[("key_id", &key_id)]).await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    assert_eq!(org.admin.call("/_fn/members/invitations", &[]).await.json()["items"], json!([]));
}

async fn enterprise_membership_ends_with_the_last_admin_role(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let (_bob, bob_id) = app.join(&mut org, "bob@example.com", &["admin"]).await;
    let client = Client::default();
    let ea = enterprise::create(&app.db, &Actor::Operator, &client, "Acme", &[org.id], "ada@example.com")
        .await
        .unwrap()
        .id;
    let ada = Actor::User { id: org.admin_id.parse().unwrap(), email: "ada@example.com".into() };
    let bob = Actor::User { id: bob_id.parse().unwrap(), email: "bob@example.com".into() };
    enterprise::add_member(&app.db, &ada, &client, ea, PUBLIC_URL, "bob@example.com").await.unwrap();
    enterprise::accept_invitation(&app.db, &bob, &client, ea).await.unwrap();
    let looms = enterprise::create_org(&app.db, &bob, &client, ea, "Looms").await.unwrap().id;

    // Creating an Admin API key for an Organization takes being its Admin.
    let key = |org_id| NewAdminKey { name: "ci".into(), org_id, expires_on: String::new() };
    let refused = admin_keys::create(&app.db, &bob, &client, ea, key(looms)).await.unwrap_err();
    assert_eq!(refused.field(), Some("org_id"), "{refused}");
    assert!(refused.to_string().contains("Promote yourself"), "{refused}");
    let bobs_key = admin_keys::create(&app.db, &bob, &client, ea, key(org.id)).await.unwrap();

    // Demoted in Engines, Bob is an Admin of no linked Organization: his membership ends with it.
    let (_, ended) =
        members::set_roles(&app.db, &ada, &client, org.id, bob_id.parse().unwrap(), &[OrgRole::Member])
            .await
            .unwrap();
    assert!(ended.left_enterprise);
    assert_eq!(enterprise::of_user(&app.db, bob_id.parse().unwrap()).await.unwrap(), None);
    let promote = enterprise::promote_to_admin(&app.db, &bob, &client, ea, looms).await.unwrap_err();
    assert_eq!(promote, AppError::NotFound, "no longer a member: nothing to act on");
    assert_eq!(
        admin_keys::create(&app.db, &bob, &client, ea, key(org.id)).await.unwrap_err(),
        AppError::NotFound
    );
    let trail = app.audit_trail().await;
    assert!(trail.iter().any(|(action, ..)| action == "enterprise_account.member.remove"));

    // The Backoffice flags the key he made.
    let keys = admin_keys::list(&app.db, &ada, ea).await.unwrap();
    let flagged = keys.iter().find(|k| k.id == bobs_key.view.id).unwrap();
    assert!(flagged.creator_left, "the creator of this key left the Enterprise Account");

    // The Enterprise Account's last member keeps the Admin role that membership needs.
    let bob_id: UserId = bob_id.parse().unwrap();
    members::set_roles(&app.db, &ada, &client, org.id, bob_id, &[OrgRole::Admin]).await.unwrap();
    let ada_id: UserId = org.admin_id.parse().unwrap();
    let refused =
        members::set_roles(&app.db, &bob, &client, org.id, ada_id, &[OrgRole::Member]).await.unwrap_err();
    assert!(matches!(refused, AppError::Conflict { .. }), "{refused:?}");
    assert!(refused.to_string().contains("last member of the Enterprise Account"), "{refused}");
    assert!(enterprise::of_user(&app.db, ada_id).await.unwrap().is_some(), "nothing changed");

    // Membership checked when used, not only when granted: a role removed behind the rules' back.
    sqlx::query("DELETE FROM org_member_roles WHERE user_id = $1 AND role = 'admin'")
        .bind(&org.admin_id)
        .execute(app.db.pool())
        .await
        .unwrap();
    assert_eq!(enterprise::list_orgs(&app.db, &ada, ea).await.unwrap_err(), AppError::NotFound);
}

async fn organization_admins_see_and_revoke_their_admin_api_keys(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let admin_key = app.admin_key(&org, "ada@example.com").await;
    let (mut grace, _) = app.join(&mut org, "grace@example.com", &["member"]).await;

    let listed = org.admin.call("/_fn/settings/admin_keys", &[]).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let keys = listed.json();
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert!(!keys[0]["masked_key"].as_str().unwrap().contains(&admin_key[admin_key.len() - 12..]));
    let via_api = app.api("GET", "/api/admin/admin-api-keys", &admin_key, None).await.json();
    assert_eq!(via_api["data"][0]["key_id"], keys[0]["id"]);
    assert_eq!(
        grace.call("/_fn/settings/admin_keys", &[]).await.status,
        StatusCode::NOT_FOUND,
        "Admins only"
    );

    let key_id = keys[0]["id"].as_str().unwrap();
    let refused = grace.call("/_fn/settings/revoke_admin_key", &[("key_id", key_id)]).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    let other = app.organization("bob@example.com", "Looms").await;
    let others_key = app.admin_key(&other, "bob@example.com").await;
    let foreign = app.api("DELETE", &format!("/api/admin/admin-api-keys/{key_id}"), &others_key, None).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "another Organization's key cannot touch it");
    let revoked = app.api("DELETE", &format!("/api/admin/admin-api-keys/{key_id}"), &admin_key, None).await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    assert_eq!(app.api("GET", "/api/admin/roles", &admin_key, None).await.status, StatusCode::UNAUTHORIZED);
}

/// Both Admins demote each other at the same moment, 100 times: one wins, the
/// other is refused, and the Organization always keeps an Admin.
async fn concurrent_demotions_never_leave_an_organization_without_an_admin(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let (_bob, bob_id) = app.join(&mut org, "bob@example.com", &["admin"]).await;
    let ada_id: UserId = org.admin_id.parse().unwrap();
    let bob_id: UserId = bob_id.parse().unwrap();
    let ada = Actor::User { id: ada_id, email: "ada@example.com".into() };
    let bob = Actor::User { id: bob_id, email: "bob@example.com".into() };
    let (mut without_admin, mut server_errors) = (0, 0);
    for _ in 0..100 {
        let demote = |actor: Actor, target: UserId| {
            let db = app.db.clone();
            tokio::spawn(async move {
                members::set_roles(&db, &actor, &Client::default(), org.id, target, &[OrgRole::Member]).await
            })
        };
        let (a, b) = (demote(ada.clone(), bob_id), demote(bob.clone(), ada_id));
        for outcome in [a.await.unwrap(), b.await.unwrap()] {
            if let Err(AppError::Internal) = outcome {
                server_errors += 1;
            }
        }
        let admins = admins_of(&app, org.id).await;
        if admins.is_empty() {
            without_admin += 1;
            break;
        }
        // The survivor makes the other an Admin again.
        let (survivor, other) = if admins.contains(&ada_id) { (&ada, bob_id) } else { (&bob, ada_id) };
        members::set_roles(&app.db, survivor, &Client::default(), org.id, other, &[OrgRole::Admin])
            .await
            .unwrap();
    }
    println!("concurrent demotions: {without_admin} of 100 left no Admin, {server_errors} server errors");
    assert_eq!((without_admin, server_errors), (0, 0));
}

async fn admins_of(app: &TestApp, org: OrgId) -> Vec<UserId> {
    let rows: Vec<(UserId,)> =
        sqlx::query_as("SELECT user_id FROM org_member_roles WHERE org_id = $1 AND role = 'admin'")
            .bind(org)
            .fetch_all(app.db.pool())
            .await
            .unwrap();
    rows.into_iter().map(|(id,)| id).collect()
}

/// The two members of an Enterprise Account remove each other at once, 100 times.
async fn concurrent_removals_never_empty_an_enterprise_account(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let (_bob, bob_id) = app.join(&mut org, "bob@example.com", &["admin"]).await;
    let client = Client::default();
    let ea = enterprise::create(&app.db, &Actor::Operator, &client, "Acme", &[org.id], "ada@example.com")
        .await
        .unwrap()
        .id;
    let ada_id: UserId = org.admin_id.parse().unwrap();
    let bob_id: UserId = bob_id.parse().unwrap();
    let ada = Actor::User { id: ada_id, email: "ada@example.com".into() };
    let bob = Actor::User { id: bob_id, email: "bob@example.com".into() };
    let (mut emptied, mut server_errors) = (0, 0);
    for _ in 0..100 {
        let remove = |actor: Actor, target: UserId| {
            let db = app.db.clone();
            tokio::spawn(async move {
                enterprise::remove_member(&db, &actor, &Client::default(), ea, target).await
            })
        };
        // Bob joins (again), then both remove each other at the same moment.
        enterprise::add_member(&app.db, &ada, &client, ea, PUBLIC_URL, "bob@example.com").await.unwrap();
        enterprise::accept_invitation(&app.db, &bob, &client, ea).await.unwrap();
        let (a, b) = (remove(ada.clone(), bob_id), remove(bob.clone(), ada_id));
        for outcome in [a.await.unwrap(), b.await.unwrap()] {
            if let Err(AppError::Internal) = outcome {
                server_errors += 1;
            }
        }
        let members = active_members(&app, ea).await;
        if members == 0 {
            emptied += 1;
            break;
        }
        if enterprise::of_user(&app.db, ada_id).await.unwrap().is_none() {
            // Bob won: he brings Ada back for the next round, and she removes him.
            enterprise::add_member(&app.db, &bob, &client, ea, PUBLIC_URL, "ada@example.com").await.unwrap();
            enterprise::accept_invitation(&app.db, &ada, &client, ea).await.unwrap();
            enterprise::remove_member(&app.db, &ada, &client, ea, bob_id).await.unwrap();
        }
    }
    println!(
        "concurrent Enterprise Account removals: {emptied} of 100 emptied it, {server_errors} server errors"
    );
    assert_eq!((emptied, server_errors), (0, 0));
}

async fn active_members(app: &TestApp, ea: EnterpriseId) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM enterprise_members WHERE enterprise_account_id = $1 AND accepted_at IS NOT NULL",
    )
    .bind(ea)
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    n
}

async fn rotating_someone_elses_key_makes_it_the_rotators_and_tells_the_owner(app: TestApp) {
    let (mut org, admin_key, _) = billed(&app).await;
    let (_grace, grace_id) = app.join(&mut org, "grace@example.com", &["member"]).await;
    let (_, grace_key_id) = key_for(&app, &admin_key, &org.default_workspace, &grace_id).await;

    let rotated =
        org.admin.call("/_fn/api_keys/rotate", &[("key_id", &grace_key_id), ("grace_hours", "1")]).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let rotated = rotated.json();
    assert_eq!(
        rotated["view"]["owner_email"], "ada@example.com",
        "the rotator holds the secret, so owns the key"
    );
    let (subject, body): (String, String) = sqlx::query_as(
        "SELECT subject, body FROM outbox WHERE to_email = 'grace@example.com' AND subject LIKE '%rotated%'",
    )
    .fetch_one(app.db.pool())
    .await
    .expect("Grace is told");
    assert!(subject.contains("work") && body.contains("ada@example.com"), "{subject}: {body}");
    let (details,): (String,) =
        sqlx::query_as("SELECT details FROM audit_events WHERE action = 'api_key.rotate'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert!(details.contains(&grace_id) && details.contains(&org.admin_id), "{details}");

    // Removing Grace now leaves the new key working: it is Ada's.
    let new_key = rotated["key"].as_str().unwrap().to_string();
    let removed = org.admin.call("/_fn/members/remove", &[("user_id", &grace_id)]).await.json();
    assert_eq!(removed["api_keys_revoked"], 1, "only her old key, still in its grace period");
    app.state.gateway.refresh().await.unwrap();
    assert_eq!(app.gateway("GET", "/v1/models", &new_key, None).await.status, StatusCode::OK);

    // An Admin API key rotates without taking the key; the owner is told all the same.
    let (_, adas_key_id) = key_for(&app, &admin_key, &org.default_workspace, &org.admin_id).await;
    let by_api = app
        .api("POST", &format!("/api/admin/api-keys/{adas_key_id}/rotate"), &admin_key, Some(json!({})))
        .await
        .json();
    assert_eq!(by_api["owner_email"], "ada@example.com");
    let (told,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM outbox WHERE to_email = 'ada@example.com' AND subject LIKE '%rotated%'",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(told, 1);
}

/// Removing someone while an Admin makes them a key, 30 times: either the key
/// is refused (the removal came first) or it is revoked with the removal.
async fn a_key_made_while_its_owner_is_removed_does_not_survive(app: TestApp) {
    let (mut org, admin_key, _) = billed(&app).await;
    let (_grace, grace_id) = app.join(&mut org, "grace@example.com", &["member"]).await;
    let grace = CurrentUser {
        id: grace_id.parse().unwrap(),
        name: "grace".into(),
        email: "grace@example.com".into(),
    };
    let ada = Actor::User { id: org.admin_id.parse().unwrap(), email: "ada@example.com".into() };
    let default: WorkspaceId = org.default_workspace.parse().unwrap();

    // Someone outside a workspace gets no key there.
    let research = research_workspace(&app, &admin_key, &org.admin_id).await;
    let body = json!({ "workspace_uuid": research, "user_id": grace_id, "name": "x" });
    let refused = app.api("POST", "/api/admin/api-keys", &admin_key, Some(body)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.json()["error"]["param"], "user_id");

    for round in 0..30 {
        if round > 0 {
            rejoin(&app, &ada, org.id, &grace, OrgRole::Member).await;
        }
        let create = {
            let (db, ada) = (app.db.clone(), ada.clone());
            let input = api_keys::NewApiKey {
                name: format!("k{round}"),
                owner: Some(grace.id),
                ..Default::default()
            };
            tokio::spawn(async move {
                api_keys::create(&db, &ada, &Client::default(), org.id, default, input).await
            })
        };
        let remove = {
            let (db, sessions, ada) = (app.db.clone(), app.state.sessions.clone(), ada.clone());
            tokio::spawn(async move {
                members::remove(&db, &sessions, &ada, &Client::default(), org.id, grace.id).await
            })
        };
        remove.await.unwrap().unwrap();
        if let Err(err) = create.await.unwrap() {
            assert!(matches!(err, AppError::Invalid { .. }), "refused as input, not a server error: {err:?}");
        }
    }
    let (working,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM workspace_api_keys WHERE owner_user_id = $1 AND revoked_at IS NULL",
    )
    .bind(&grace_id)
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(working, 0, "no key outlived its owner's removal");
}

/// An Admin rotates a colleague's key while being removed, 30 times: the new
/// key (theirs) never outlives the removal.
async fn a_key_rotated_while_its_rotator_is_removed_does_not_survive(app: TestApp) {
    let (mut org, admin_key, _) = billed(&app).await;
    let (_grace, grace_id) = app.join(&mut org, "grace@example.com", &["member"]).await;
    let (_bob, bob_id) = app.join(&mut org, "bob@example.com", &["admin"]).await;
    let bob =
        CurrentUser { id: bob_id.parse().unwrap(), name: "bob".into(), email: "bob@example.com".into() };
    let bob_actor = Actor::User { id: bob.id, email: bob.email.clone() };
    let ada = Actor::User { id: org.admin_id.parse().unwrap(), email: "ada@example.com".into() };
    for round in 0..30 {
        if round > 0 {
            rejoin(&app, &ada, org.id, &bob, OrgRole::Admin).await;
        }
        let (_, graces_key) = key_for(&app, &admin_key, &org.default_workspace, &grace_id).await;
        let rotate = {
            let (db, bob_actor) = (app.db.clone(), bob_actor.clone());
            let key = graces_key.parse().unwrap();
            tokio::spawn(async move {
                api_keys::rotate(&db, &bob_actor, &Client::default(), org.id, key, 1).await
            })
        };
        let remove = {
            let (db, sessions, ada) = (app.db.clone(), app.state.sessions.clone(), ada.clone());
            tokio::spawn(async move {
                members::remove(&db, &sessions, &ada, &Client::default(), org.id, bob.id).await
            })
        };
        remove.await.unwrap().unwrap();
        if let Err(err) = rotate.await.unwrap() {
            assert_eq!(err, AppError::NotFound, "refused as gone, not a server error");
        }
    }
    let (working,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM workspace_api_keys WHERE owner_user_id = $1 AND revoked_at IS NULL",
    )
    .bind(&bob_id)
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(working, 0, "no rotated key outlived its rotator's removal");
}

/// `person`, removed, is invited back by `admin` with `role` and accepts.
async fn rejoin(app: &TestApp, admin: &Actor, org: OrgId, person: &CurrentUser, role: OrgRole) {
    let invitee = members::Invitee { email: &person.email, roles: &[role], workspaces: &[] };
    members::invite(
        &app.db,
        &app.state.throttle,
        admin,
        &Client::default(),
        org,
        "http://chancery.test",
        invitee,
    )
    .await
    .unwrap();
    let token = app.emailed_token(&person.email).await;
    members::accept(&app.db, &Client::default(), &token, person).await.unwrap();
}
