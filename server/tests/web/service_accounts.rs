//! Service accounts (`/v1/service-accounts`), the keys they own, and whom a key
//! speaks for (`/v1/whoami`, `/v1/users/me/workspaces`).

use http::StatusCode;
use serde_json::json;

use crate::{common::TestApp, gateway::billed};

crate::on_both_databases!(
    service_accounts_own_keys_that_outlive_the_people_who_made_them,
    a_key_says_whom_it_speaks_for,
);

/// An Admin makes a service account and a key for it; the Admin leaves (their
/// own key stops), the service account's key goes on; deleting the account
/// stops its key. Names are slugs, unique per workspace; every change is audited.
async fn service_accounts_own_keys_that_outlive_the_people_who_made_them(app: TestApp) {
    let (mut org, admin_key, _) = billed(&app).await;
    let (mut mia, mia_id) = app.join(&mut org, "mia@example.com", &["admin"]).await;
    let workspace = org.default_workspace.clone();

    let bad = json!({ "name": "Nightly Batch", "workspace_id": workspace });
    let refused = app.api("POST", "/v1/service-accounts", &admin_key, Some(bad)).await;
    assert_eq!(
        (refused.status, refused.json()["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("name"))
    );
    let body = json!({ "name": "nightly-batch", "workspace_id": workspace, "description": "ETL" });
    let created = app.api("POST", "/v1/service-accounts", &admin_key, Some(body.clone())).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let account = created.json();
    let account_id = account["id"].as_str().unwrap().to_string();
    assert_eq!(account["workspace_id"], workspace);
    assert_eq!(account["organization_id"], org.id.to_string());
    assert_eq!(account["deleted_at"], json!(null));
    let taken = app.api("POST", "/v1/service-accounts", &admin_key, Some(body)).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "unique in the workspace");

    // Mia (an Admin) makes the key for the account on the workspace page, and her own.
    let form = [
        ("workspace_id", workspace.as_str()),
        ("name", "etl"),
        ("expires_on", ""),
        ("allowed_models", ""),
        ("service_account_id", account_id.as_str()),
    ];
    let made = mia.call("/_fn/api_keys/create", &form).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let account_key = made.json()["key"].as_str().unwrap().to_string();
    let listed = app.api("GET", "/api/admin/api-keys", &admin_key, None).await.json();
    assert!(listed.to_string().contains(&format!("\"service_account_id\":\"{account_id}\"")), "{listed}");
    let both = json!({ "workspace_uuid": workspace, "service_account_id": account_id, "user_id": mia_id });
    let refused = app.api("POST", "/api/admin/api-keys", &admin_key, Some(both)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "a person or an account, not both");
    let mias = json!({ "workspace_uuid": workspace, "user_id": mia_id, "name": "mine" });
    let mia_key = app.api("POST", "/api/admin/api-keys", &admin_key, Some(mias)).await.json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    app.state.gateway.refresh().await.unwrap();
    let chat = crate::gateway::chat("mistral-small-latest", "Hi");
    assert_eq!(
        app.gateway("POST", "/v1/chat/completions", &account_key, Some(chat.clone())).await.status,
        StatusCode::OK
    );

    // Mia leaves: her key stops, the account's goes on.
    let removed = app.api("DELETE", &format!("/api/admin/users/{mia_id}"), &admin_key, None).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    app.state.gateway.refresh().await.unwrap();
    assert_eq!(
        app.gateway("POST", "/v1/chat/completions", &mia_key, Some(chat.clone())).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.gateway("POST", "/v1/chat/completions", &account_key, Some(chat.clone())).await.status,
        StatusCode::OK
    );

    // Listed, searched, read and described, with the SDK's bearer token too.
    let listed =
        app.api("GET", "/v1/service-accounts?offset=0&limit=10&q=batch", &admin_key, None).await.json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let elsewhere = format!("/v1/service-accounts?workspace_id={}", uuid::Uuid::new_v4());
    assert_eq!(app.api("GET", &elsewhere, &admin_key, None).await.status, StatusCode::NOT_FOUND);
    let none =
        app.api("GET", "/v1/service-accounts?offset=0&limit=10&q=nothing", &admin_key, None).await.json();
    assert_eq!(none["items"], json!([]));
    let by_bearer = app.gateway("GET", &format!("/v1/service-accounts/{account_id}"), &admin_key, None).await;
    assert_eq!(by_bearer.status, StatusCode::OK, "{}", by_bearer.body);
    assert_eq!(by_bearer.json()["name"], "nightly-batch");
    let unknown = app.api("GET", "/v1/service-accounts?offset=0&limit=10&colour=red", &admin_key, None).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "unknown parameters are named");
    let patched = json!({ "description": "Nightly ETL" });
    let updated =
        app.api("PATCH", &format!("/v1/service-accounts/{account_id}"), &admin_key, Some(patched)).await;
    assert_eq!(updated.json()["description"], "Nightly ETL");
    let renamed = json!({ "name": "other" });
    let refused =
        app.api("PATCH", &format!("/v1/service-accounts/{account_id}"), &admin_key, Some(renamed)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "a name never changes");

    // Roles: assignable ones listed, replaced whole, [] back to Member.
    let path = format!("/v1/service-accounts/assignable-roles?workspace_id={workspace}");
    let assignable = app.api("GET", &path, &admin_key, None).await.json();
    let elsewhere = format!("/v1/service-accounts/assignable-roles?workspace_id={}", uuid::Uuid::new_v4());
    assert_eq!(app.api("GET", &elsewhere, &admin_key, None).await.status, StatusCode::NOT_FOUND);
    let admin_role = assignable["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "workspace_admin")
        .map(|r| r["uuid"].as_str().unwrap().to_string())
        .unwrap();
    let roles_path = format!("/v1/service-accounts/{account_id}/roles");
    let set = app.api("PUT", &roles_path, &admin_key, Some(json!({ "role_ids": [admin_role] }))).await.json();
    assert_eq!(set["items"], json!([{ "role_id": admin_role }]));
    let bogus = app.api("PUT", &roles_path, &admin_key, Some(json!({ "role_ids": ["nope"] }))).await;
    assert_eq!(bogus.status, StatusCode::BAD_REQUEST);
    app.api("PUT", &roles_path, &admin_key, Some(json!({ "role_ids": [] }))).await;
    let read = app.api("GET", &roles_path, &admin_key, None).await.json();
    assert_ne!(read["items"], json!([{ "role_id": admin_role }]), "back to Member");

    // Deleted: its key stops; it is listed only when asked for.
    let deleted = app.api("DELETE", &format!("/v1/service-accounts/{account_id}"), &admin_key, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    app.state.gateway.refresh().await.unwrap();
    let stopped = app.gateway("POST", "/v1/chat/completions", &account_key, Some(chat)).await;
    assert_eq!(stopped.status, StatusCode::UNAUTHORIZED);
    let live = app.api("GET", "/v1/service-accounts?offset=0&limit=10", &admin_key, None).await.json();
    assert_eq!(live["items"], json!([]));
    let all =
        app.api("GET", "/v1/service-accounts?offset=0&limit=10&include_deleted=true", &admin_key, None).await;
    assert!(all.json()["items"][0]["deleted_at"].is_string());
    let again = app.api("DELETE", &format!("/v1/service-accounts/{account_id}"), &admin_key, None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);

    let trail = app.audit_trail().await;
    for action in [
        "service_account.create",
        "service_account.update",
        "service_account.roles.set",
        "service_account.delete",
    ] {
        assert!(trail.iter().any(|e| e.0 == action), "{action} audited");
    }
    let revoked = app.audit_details("service_account.delete").await;
    assert!(revoked[0].contains("\"keys_revoked\":1"), "{revoked:?}");
}

/// `/v1/whoami` names a person, a service account, or an Admin API key;
/// `/v1/users/me/workspaces` lists a person's workspaces in the key's Organization.
async fn a_key_says_whom_it_speaks_for(app: TestApp) {
    let (org, admin_key, key) = billed(&app).await;
    let me = app.gateway("GET", "/v1/whoami", &key, None).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    let me = me.json();
    assert_eq!(me["principal"]["principal_type"], "user");
    assert_eq!(me["principal"]["id"], org.admin_id);
    assert_eq!(me["principal"]["email"], "ada@example.com");
    assert_eq!(me["organization"]["name"], "Engines");
    assert_eq!(me["workspace"]["id"], org.default_workspace);

    let ws = json!({ "name": "Lab", "admin_user_id": org.admin_id });
    let lab = app.api("POST", "/api/admin/workspaces", &admin_key, Some(ws)).await.json()["uuid"].clone();
    let ws = json!({ "name": "Elsewhere", "admin_user_id": org.admin_id });
    app.api("POST", "/api/admin/workspaces", &admin_key, Some(ws)).await;
    let mine = app.gateway("GET", "/v1/users/me/workspaces", &key, None).await.json();
    let names: Vec<&str> =
        mine["workspaces"].as_array().unwrap().iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Default", "Lab", "Elsewhere"], "the Admin made them and works in them");
    let paged = app.gateway("GET", "/v1/users/me/workspaces?offset=1&limit=1", &key, None).await.json();
    assert_eq!(paged["workspaces"][0]["id"], lab);
    assert_eq!(paged["workspaces"][0]["organization_id"], org.id.to_string());

    let body = json!({ "name": "ci-bot", "workspace_id": lab });
    let account = app.api("POST", "/v1/service-accounts", &admin_key, Some(body)).await.json();
    let body = json!({ "workspace_uuid": lab, "service_account_id": account["id"], "name": "bot" });
    let bot_key = app.api("POST", "/api/admin/api-keys", &admin_key, Some(body)).await.json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    app.state.gateway.refresh().await.unwrap();
    let bot = app.gateway("GET", "/v1/whoami", &bot_key, None).await.json();
    assert_eq!(
        bot["principal"],
        json!({ "principal_type": "service_account", "service_account_id": account["id"], "name": "ci-bot" })
    );
    assert_eq!(bot["workspace"]["name"], "Lab");
    let theirs = app.gateway("GET", "/v1/users/me/workspaces", &bot_key, None).await.json();
    assert_eq!(
        theirs["workspaces"].as_array().unwrap().len(),
        1,
        "a service account works in its own workspace"
    );

    let by_admin_key = app.api("GET", "/v1/whoami", &admin_key, None).await.json();
    assert_eq!(by_admin_key["principal"]["principal_type"], "api_key");
    assert_eq!(by_admin_key["organization"]["id"], org.id.to_string());
    assert_eq!(app.gateway("GET", "/v1/whoami", "chy_ws_nope", None).await.status, StatusCode::UNAUTHORIZED);
}
