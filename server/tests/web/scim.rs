//! SCIM 2.0 provisioning at `/scim/v2`, as identity providers drive it: tokens
//! an Admin makes, people provisioned and deprovisioned (everything they had
//! ends at once), groups only the provider edits, errors in SCIM's shape.

use std::time::{Duration, Instant};

use app::server::{actor::Actor, domains};
use axum::body::Body;
use http::{header, Request, StatusCode};
use serde_json::{json, Value};

use crate::{
    common::{Org, TestApp, TestResponse, PASSWORD},
    gateway::billed,
};

crate::on_both_databases!(
    tokens_are_shown_once_scoped_to_their_organization_and_revocable,
    provisioning_makes_members_and_refuses_duplicates,
    deprovisioning_ends_sessions_keys_and_groups_at_once,
    groups_the_provider_manages_are_not_edited_in_the_admin_panel,
    the_last_admin_is_not_deprovisioned,
    bad_requests_get_scim_errors,
);

/// A SCIM call with `token` as the bearer.
async fn scim(app: &TestApp, method: &str, path: &str, token: &str, body: Option<Value>) -> TestResponse {
    let request = Request::builder()
        .method(method)
        .uri(format!("/scim/v2{path}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    let request = match body {
        Some(body) => {
            request.header(header::CONTENT_TYPE, "application/scim+json").body(Body::from(body.to_string()))
        }
        None => request.body(Body::empty()),
    };
    app.client("192.0.2.80").send(request.unwrap()).await
}

/// A token the Organization's Admin makes in Settings.
async fn scim_token(org: &mut Org<'_>) -> String {
    let created = org.admin.call("/_fn/settings/create_scim_token", &[("name", "Okta")]).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    created.json()["token"].as_str().unwrap().to_string()
}

fn okta_user(email: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": email,
        "name": {"givenName": "Grace", "familyName": "Hopper"},
        "emails": [{"primary": true, "value": email, "type": "work"}],
        "active": true,
    })
}

async fn create_user(app: &TestApp, token: &str, email: &str) -> String {
    let created = scim(app, "POST", "/Users", token, Some(okta_user(email))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    created.json()["id"].as_str().unwrap().to_string()
}

async fn deactivate_like_okta(app: &TestApp, token: &str, id: &str) -> TestResponse {
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": false}}],
    });
    scim(app, "PATCH", &format!("/Users/{id}"), token, Some(body)).await
}

fn assert_scim_error(response: &TestResponse, status: StatusCode, scim_type: Option<&str>) {
    assert_eq!(response.status, status, "{}", response.body);
    assert_eq!(response.header("content-type"), Some("application/scim+json"));
    let error = response.json();
    assert_eq!(error["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]));
    assert_eq!(error["status"], json!(status.as_u16().to_string()));
    assert_eq!(error["scimType"].as_str(), scim_type, "{error}");
    assert!(!error["detail"].as_str().unwrap_or_default().is_empty());
}

async fn tokens_are_shown_once_scoped_to_their_organization_and_revocable(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let token = scim_token(&mut org).await;
    assert!(token.starts_with("chy_scim_"));
    let panel = org.admin.call("/_fn/settings/scim", &[]).await.json();
    assert_eq!(panel["base_url"], "http://chancery.test/scim/v2");
    let listed = &panel["tokens"];
    assert_eq!(listed[0]["name"], "Okta");
    assert_eq!(listed[0]["created_by"], "ada@example.com");
    let masked = listed[0]["masked_token"].as_str().unwrap();
    assert!(masked.contains('…') && !masked.contains(&token[token.len() - 8..token.len() - 4]), "{masked}");
    let (stored,): (String,) =
        sqlx::query_as("SELECT secret_sha256 FROM scim_tokens").fetch_one(app.db.pool()).await.unwrap();
    assert!(!token.contains(&stored) && stored.len() == 64, "only a hash is kept");

    let people = scim(&app, "GET", "/Users", &token, None).await;
    assert_eq!(people.status, StatusCode::OK, "{}", people.body);
    assert_eq!(people.json()["totalResults"], 1, "Ada, the Admin");
    assert_eq!(people.json()["Resources"][0]["userName"], "ada@example.com");

    // Another Organization's token sees nothing of this one.
    let mut other = app.organization("eve@example.net", "Other").await;
    let others = scim_token(&mut other).await;
    let ada = &org.admin_id;
    assert_scim_error(
        &scim(&app, "GET", &format!("/Users/{ada}"), &others, None).await,
        StatusCode::NOT_FOUND,
        None,
    );
    assert_eq!(scim(&app, "GET", "/Users", &others, None).await.json()["totalResults"], 1);

    // Only Admins make tokens; Admin API keys and made-up tokens are not SCIM tokens.
    let (mut member, _) = app.join(&mut org, "bob@example.com", &["member", "billing"]).await;
    let refused = member.call("/_fn/settings/create_scim_token", &[("name", "mine")]).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    let admin_key = app.admin_key(&org, "ada@example.com").await;
    for wrong in [admin_key.as_str(), "chy_scim_abcdefghijkl_0000000000000000000000000000000000000000000", ""]
    {
        assert_scim_error(&scim(&app, "GET", "/Users", wrong, None).await, StatusCode::UNAUTHORIZED, None);
    }

    let id = listed[0]["id"].as_str().unwrap();
    let revoked = org.admin.call("/_fn/settings/revoke_scim_token", &[("id", id)]).await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    assert_scim_error(&scim(&app, "GET", "/Users", &token, None).await, StatusCode::UNAUTHORIZED, None);
    let audited = app.audit_details("scim_token.create").await.len()
        + app.audit_details("scim_token.revoke").await.len();
    assert_eq!(audited, 3, "two tokens made, one revoked");
}

async fn provisioning_makes_members_and_refuses_duplicates(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let token = scim_token(&mut org).await;
    let created = scim(&app, "POST", "/Users", &token, Some(okta_user("Grace@Example.org"))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let grace = created.json();
    let id = grace["id"].as_str().unwrap();
    assert_eq!(created.header("location"), Some(format!("http://chancery.test/scim/v2/Users/{id}").as_str()));
    assert_eq!((grace["active"].clone(), grace["displayName"].clone()), (json!(true), json!("Grace Hopper")));
    assert_eq!(grace["meta"]["resourceType"], "User");

    // She is a Member of the Organization, in its Default workspace.
    let members = org.admin.call("/_fn/members", &[]).await.json();
    let row = members["items"].as_array().unwrap().iter().find(|m| m["user_id"] == id).cloned().unwrap();
    assert_eq!((row["name"].clone(), row["roles"].clone()), (json!("Grace Hopper"), json!(["member"])));

    // Identity providers look people up before they create them.
    for filter in ["userName eq \"grace@example.org\"", "emails.value eq \"GRACE@example.org\""] {
        let query = format!("/Users?filter={}", urlencoding(filter));
        let found = scim(&app, "GET", &query, &token, None).await.json();
        assert_eq!(
            (found["totalResults"].clone(), found["Resources"][0]["id"].clone()),
            (json!(1), json!(id)),
            "{filter}"
        );
    }
    let page = scim(&app, "GET", "/Users?startIndex=2&count=1", &token, None).await.json();
    assert_eq!(
        (page["totalResults"].clone(), page["itemsPerPage"].clone(), page["startIndex"].clone()),
        (json!(2), json!(1), json!(2))
    );
    assert_eq!(page["Resources"][0]["id"], json!(id), "oldest first: Ada, then Grace");

    assert_scim_error(
        &scim(&app, "POST", "/Users", &token, Some(okta_user("grace@example.org"))).await,
        StatusCode::CONFLICT,
        Some("uniqueness"),
    );
    // Someone else's account, outside the domains the Organization verified, is not taken in.
    let mut eve = app.client("198.51.100.9");
    eve.sign_up("Eve", "eve@elsewhere.net", PASSWORD).await;
    let refused = scim(&app, "POST", "/Users", &token, Some(okta_user("eve@elsewhere.net"))).await;
    assert_scim_error(&refused, StatusCode::CONFLICT, Some("uniqueness"));
    assert!(refused.json()["detail"].as_str().unwrap().contains("verify the domain"));
    // Once the domain is the Organization's, its provider speaks for the address.
    domains::verify_by_operator(&app.db, &Actor::Operator, org.id, "elsewhere.net").await.unwrap();
    assert_eq!(
        scim(&app, "POST", "/Users", &token, Some(okta_user("eve@elsewhere.net"))).await.status,
        StatusCode::CREATED
    );
    assert_eq!(app.audit_details("scim_user.create").await.len(), 2);
    assert_eq!(app.audit_details("user.organization.join").await.len(), 2);
}

fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn deprovisioning_ends_sessions_keys_and_groups_at_once(app: TestApp) {
    let (mut org, admin_key, _) = billed(&app).await;
    let token = scim_token(&mut org).await;
    let (mut grace, grace_id) = app.join(&mut org, "grace@example.com", &["member"]).await;
    // A workspace only a group reaches, a key of Grace's there, and the group the provider manages.
    let body = json!({ "name": "Research", "admin_user_id": org.admin_id });
    let research = app.api("POST", "/api/admin/workspaces", &admin_key, Some(body)).await.json()["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let group = json!({"displayName": "Researchers", "members": [{"value": grace_id}]});
    let group = scim(&app, "POST", "/Groups", &token, Some(group)).await;
    assert_eq!(group.status, StatusCode::CREATED, "{}", group.body);
    let group_id = group.json()["id"].as_str().unwrap().to_string();
    let granted = org
        .admin
        .call(
            "/_fn/groups/grant_workspace",
            &[("group_id", &group_id), ("workspace_id", &research), ("role", "member")],
        )
        .await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.body);
    let body = json!({ "workspace_uuid": research, "name": "work", "user_id": grace_id });
    let key = app.api("POST", "/api/admin/api-keys", &admin_key, Some(body)).await.json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    app.state.gateway.refresh().await.unwrap();
    assert_eq!(app.gateway("GET", "/v1/models", &key, None).await.status, StatusCode::OK);
    assert_eq!(grace.overview().await.status, StatusCode::OK);

    let deactivated = deactivate_like_okta(&app, &token, &grace_id).await;
    assert_eq!(deactivated.status, StatusCode::OK, "{}", deactivated.body);
    assert_eq!(deactivated.json()["active"], false);
    let started = Instant::now();
    let refused = loop {
        let answer = app.gateway("GET", "/v1/models", &key, None).await;
        if answer.status != StatusCode::OK || started.elapsed() > Duration::from_secs(3) {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!("a deprovisioned person's key was refused {} ms after the PATCH", started.elapsed().as_millis());
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(grace.overview().await.status, StatusCode::UNAUTHORIZED, "her session ended");
    let (in_group,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM user_group_members WHERE user_id = $1")
        .bind(&grace_id)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(in_group, 0, "out of the group");
    let trail = app.audit_trail().await;
    let removal = trail.iter().find(|(action, ..)| action == "user.organization.delete").expect("audited");
    assert_eq!(removal.1, "SCIM token Okta", "the token is the actor: {trail:?}");
    // She stays known to the provider, inactive; her group still lists her.
    let listed = scim(&app, "GET", &format!("/Users/{grace_id}"), &token, None).await.json();
    assert_eq!(listed["active"], false);
    assert_eq!(
        scim(&app, "GET", &format!("/Groups/{group_id}"), &token, None).await.json()["members"][0]["value"],
        json!(grace_id)
    );

    // Entra's way back: `Replace` with a string. She is a Member again, in her group again.
    let body = json!({"Operations": [{"op": "Replace", "path": "active", "value": "True"}]});
    let back = scim(&app, "PATCH", &format!("/Users/{grace_id}"), &token, Some(body)).await;
    assert_eq!((back.status, back.json()["active"].clone()), (StatusCode::OK, json!(true)), "{}", back.body);
    let (in_group,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM user_group_members WHERE user_id = $1")
        .bind(&grace_id)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(in_group, 1);
    let mut again = app.client("198.51.100.31");
    assert_eq!(again.log_in("grace@example.com", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(again.overview().await.status, StatusCode::OK);

    // DELETE deprovisions and forgets her; her account is hers and stays.
    assert_eq!(
        scim(&app, "DELETE", &format!("/Users/{grace_id}"), &token, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(again.overview().await.status, StatusCode::UNAUTHORIZED);
    assert_scim_error(
        &scim(&app, "GET", &format!("/Users/{grace_id}"), &token, None).await,
        StatusCode::NOT_FOUND,
        None,
    );
    assert!(scim(&app, "GET", &format!("/Groups/{group_id}"), &token, None)
        .await
        .json()
        .get("members")
        .is_none());
    assert_eq!(app.count("users").await, 2);
}

async fn groups_the_provider_manages_are_not_edited_in_the_admin_panel(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let token = scim_token(&mut org).await;
    let grace = create_user(&app, &token, "grace@example.org").await;
    let alan = create_user(&app, &token, "alan@example.org").await;
    let created =
        scim(&app, "POST", "/Groups", &token, Some(json!({"displayName": "Eng", "externalId": "g1"}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_string();

    // Okta adds and removes members; Entra removes them by value.
    let add = json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": grace}, {"value": alan}]}]});
    let group = scim(&app, "PATCH", &format!("/Groups/{id}"), &token, Some(add)).await;
    assert_eq!(group.json()["members"].as_array().map(Vec::len), Some(2), "{}", group.body);
    let remove = json!({"Operations": [{"op": "Remove", "path": "members", "value": [{"value": alan}]}]});
    let group = scim(&app, "PATCH", &format!("/Groups/{id}"), &token, Some(remove)).await.json();
    assert_eq!(
        group["members"],
        json!([{"value": grace, "$ref": format!("http://chancery.test/scim/v2/Users/{grace}")}])
    );
    let found = scim(&app, "GET", "/Groups?filter=displayName%20eq%20%22eng%22", &token, None).await.json();
    assert_eq!(found["Resources"][0]["externalId"], "g1");

    // The Admin Panel shows it as managed, and its name and members are the provider's to change.
    let detail = org.admin.call("/_fn/groups/detail", &[("group_id", &id)]).await.json();
    assert_eq!(detail["group"]["managed_by_scim"], true);
    assert_eq!(detail["members"]["items"].as_array().map(Vec::len), Some(1));
    for (path, form) in [
        ("/_fn/groups/update", vec![("group_id", id.as_str()), ("name", "Mine"), ("description", "")]),
        ("/_fn/groups/add_member", vec![("group_id", id.as_str()), ("email", "alan@example.org")]),
        ("/_fn/groups/remove_member", vec![("group_id", id.as_str()), ("user_id", grace.as_str())]),
        ("/_fn/groups/delete", vec![("group_id", id.as_str())]),
    ] {
        let refused = org.admin.call(path, &form).await;
        assert_eq!(refused.status, StatusCode::CONFLICT, "{path}: {}", refused.body);
        assert!(refused.body.contains("identity provider"), "{}", refused.body);
    }
    // An Admin's own group keeps its name: the provider cannot take it.
    let made = org.admin.call("/_fn/groups/create", &[("name", "Ops"), ("description", "")]).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    assert_scim_error(
        &scim(&app, "POST", "/Groups", &token, Some(json!({"displayName": "ops"}))).await,
        StatusCode::CONFLICT,
        Some("uniqueness"),
    );
    let listed = scim(&app, "GET", "/Groups", &token, None).await.json();
    assert_eq!(listed["totalResults"], 1, "the provider sees only its groups");
    assert_eq!(
        scim(&app, "DELETE", &format!("/Groups/{id}"), &token, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.count("user_groups").await, 1);
}

async fn the_last_admin_is_not_deprovisioned(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let token = scim_token(&mut org).await;
    let refused = deactivate_like_okta(&app, &token, &org.admin_id).await;
    assert_scim_error(&refused, StatusCode::CONFLICT, None);
    assert!(refused.json()["detail"].as_str().unwrap().contains("last Admin"));
    assert_eq!(org.admin.overview().await.status, StatusCode::OK);
}

async fn bad_requests_get_scim_errors(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let token = scim_token(&mut org).await;
    let ada = org.admin_id.clone();
    let request = Request::post("/scim/v2/Users")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/scim+json")
        .body(Body::from("{not json"))
        .unwrap();
    assert_scim_error(
        &app.client("192.0.2.80").send(request).await,
        StatusCode::BAD_REQUEST,
        Some("invalidSyntax"),
    );
    let cases = [
        ("GET", "/Users?filter=userName%20sw%20%22a%22".to_string(), None, "invalidFilter"),
        ("GET", "/Users?count=many".to_string(), None, "invalidValue"),
        ("POST", "/Users".to_string(), Some(json!({"emails": [{"value": "x@example.org"}]})), "invalidValue"),
        ("POST", "/Users".to_string(), Some(json!({"userName": "not-an-address"})), "invalidValue"),
        ("PATCH", format!("/Users/{ada}"), Some(json!({"Operations": [{"op": "jump"}]})), "invalidSyntax"),
        ("PATCH", format!("/Users/{ada}"), Some(json!({"Operations": [{"op": "remove"}]})), "invalidPath"),
        (
            "PATCH",
            format!("/Users/{ada}"),
            Some(json!({"Operations": [{"op": "replace", "path": "active", "value": 3}]})),
            "invalidValue",
        ),
        (
            "POST",
            "/Groups".to_string(),
            Some(json!({"displayName": "g", "members": [{"value": "nobody"}]})),
            "invalidValue",
        ),
    ];
    for (method, path, body, scim_type) in cases {
        let answer = scim(&app, method, &path, &token, body).await;
        assert_scim_error(&answer, StatusCode::BAD_REQUEST, Some(scim_type));
    }
    // Ada's address is hers: a provider that does not own her domain cannot move her account.
    let body = json!({"Operations": [{"op": "replace", "path": "emails", "value": [{"value": "ada@evil.test", "primary": true}]}]});
    assert_scim_error(
        &scim(&app, "PATCH", &format!("/Users/{ada}"), &token, Some(body)).await,
        StatusCode::BAD_REQUEST,
        Some("mutability"),
    );
    assert_scim_error(
        &scim(&app, "GET", "/Users/not-an-id", &token, None).await,
        StatusCode::NOT_FOUND,
        None,
    );
    assert_scim_error(&scim(&app, "GET", "/Nothing", &token, None).await, StatusCode::NOT_FOUND, None);
    assert_eq!(app.count("scim_users").await, 0, "nothing half-written");
}
