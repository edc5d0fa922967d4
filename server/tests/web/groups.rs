//! User groups: members, workspace grants, and access as the union of direct
//! and group grants, through the Admin API and the Admin Panel's server functions.

use app::{model::WorkspaceRole, server::workspaces};
use http::StatusCode;
use serde_json::json;

use crate::common::TestApp;

crate::on_both_databases!(
    groups_grant_their_members_workspaces,
    groups_in_the_admin_panel,
    a_group_grants_its_members_an_organization_role,
    nested_groups_pass_on_what_their_parents_grant,
    nesting_in_the_admin_panel,
    a_group_lists_its_members_a_page_at_a_time_by_name
);

/// A group's members come a page at a time in order of name, on its page and
/// in the Admin API: no one twice, no one missed, with the whole count.
async fn a_group_lists_its_members_a_page_at_a_time_by_name(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let key = app.admin_key(&org, "ada@example.com").await;
    let mut ids = Vec::new();
    for email in ["zoe@example.com", "Bea@example.com", "mia@example.com"] {
        ids.push(app.join(&mut org, email, &["member"]).await.1);
    }
    let made = app.api("POST", "/api/admin/user-groups", &key, Some(json!({ "name": "Crew" }))).await.json();
    let group = made["uuid"].as_str().unwrap().to_string();
    let members_path = format!("/api/admin/user-groups/{group}/members");
    let added = app.api("POST", &members_path, &key, Some(json!({ "user_uuids": ids }))).await;
    assert_eq!(added.status, StatusCode::NO_CONTENT, "{}", added.body);

    let emails = |list: &serde_json::Value| -> Vec<String> {
        list.as_array().unwrap().iter().map(|m| m["email"].as_str().unwrap().to_string()).collect()
    };
    let first = app.api("GET", &format!("{members_path}?page=1&page_size=2"), &key, None).await.json();
    let second = app.api("GET", &format!("{members_path}?page=2&page_size=2"), &key, None).await.json();
    assert_eq!(
        (emails(&first["members"]), emails(&second["members"]), first["total"].as_i64()),
        (vec!["Bea@example.com".into(), "mia@example.com".into()], vec!["zoe@example.com".into()], Some(3))
    );
    let page = org.admin.call("/_fn/groups/detail", &[("group_id", &group)]).await.json();
    assert_eq!(emails(&page["members"]["items"]), ["Bea@example.com", "mia@example.com", "zoe@example.com"]);
    assert_eq!(page["members"]["total"], 3);
    let beyond = org.admin.call("/_fn/groups/detail", &[("group_id", &group), ("page", "2")]).await.json();
    assert_eq!(
        (beyond["members"]["items"].as_array().map(Vec::len), beyond["members"]["total"].as_i64()),
        (Some(0), Some(3))
    );
}

/// Mistral's `organization_role` of a group: its members hold the role while
/// they are in it; leaving the role ends what came with it (a key made as an
/// Admin in a workspace they do not work in); the Organization keeps an Admin.
async fn a_group_grants_its_members_an_organization_role(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let key = app.admin_key(&org, "ada@example.com").await;
    let (mut leo, leo_id) = app.join(&mut org, "leo@example.com", &["member"]).await;
    let made =
        app.api("POST", "/api/admin/user-groups", &key, Some(json!({ "name": "Admins" }))).await.json();
    let group = made["uuid"].as_str().unwrap().to_string();
    assert_eq!(made["organization_role"], json!(null));
    let add = json!({ "user_uuids": [leo_id] });
    app.api("POST", &format!("/api/admin/user-groups/{group}/members"), &key, Some(add)).await;
    let lab = [("name", "Lab"), ("description", ""), ("icon", "")];
    assert!(
        leo.call("/_fn/workspaces/create", &lab).await.status.is_client_error(),
        "a Member makes no workspace"
    );

    let role_path = format!("/api/admin/user-groups/{group}/organization-role");
    let bogus = app.api("PATCH", &role_path, &key, Some(json!({ "organization_role": "owner" }))).await;
    assert_eq!(bogus.status, StatusCode::BAD_REQUEST);
    // A group grants one kind: made for workspaces (the default), it holds no Organization role.
    assert_eq!(made["target_type"], "W");
    let admin = json!({ "organization_role": "organization_admin" });
    let wrong = app.api("PATCH", &role_path, &key, Some(admin)).await;
    assert_eq!(
        (wrong.status, wrong.json()["error"]["param"].as_str()),
        (StatusCode::CONFLICT, Some("target_type"))
    );
    let group_path = format!("/api/admin/user-groups/{group}");
    let retarget = app.api("PATCH", &group_path, &key, Some(json!({ "target_type": "O" }))).await;
    assert_eq!((retarget.status, retarget.json()["target_type"].as_str()), (StatusCode::OK, Some("O")));
    let odd = app.api("PATCH", &group_path, &key, Some(json!({ "target_type": "X" }))).await;
    assert_eq!(odd.status, StatusCode::BAD_REQUEST);
    let set =
        app.api("PATCH", &role_path, &key, Some(json!({ "organization_role": "organization_admin" }))).await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{}", set.body);
    let read = app.api("GET", &format!("/api/admin/user-groups/{group}"), &key, None).await.json();
    assert_eq!(read["organization_role"], "organization_admin");
    let made = leo.call("/_fn/workspaces/create", &lab).await;
    assert_eq!(made.status, StatusCode::OK, "an Admin through the group: {}", made.body);
    let workspaces = app.api("GET", "/api/admin/workspaces?search=Lab", &key, None).await.json();
    let lab_id = workspaces["items"][0]["uuid"].as_str().unwrap().to_string();
    // As an Admin, Leo makes a key in a workspace he does not otherwise work in.
    let remove = json!({ "members": [{ "user_uuid": leo_id }] });
    let removed =
        app.api("DELETE", &format!("/api/admin/workspaces/{lab_id}/remove-users"), &key, Some(remove)).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    let form =
        [("workspace_id", lab_id.as_str()), ("name", "leo"), ("expires_on", ""), ("allowed_models", "")];
    let leo_key = leo.call("/_fn/api_keys/create", &form).await;
    assert_eq!(leo_key.status, StatusCode::OK, "{}", leo_key.body);
    let leo_key_id = leo_key.json()["view"]["id"].as_str().unwrap().to_string();

    let none = app.api("PATCH", &role_path, &key, Some(json!({ "organization_role": null }))).await;
    assert_eq!(none.status, StatusCode::NO_CONTENT, "{}", none.body);
    let (revoked,): (Option<i64>,) =
        sqlx::query_as("SELECT revoked_at FROM workspace_api_keys WHERE id = $1")
            .bind(&leo_key_id)
            .fetch_one(app.db.pool())
            .await
            .map(|(at,): (Option<app::time::Timestamp>,)| (at.map(|t| t.0),))
            .unwrap();
    assert!(revoked.is_some(), "no longer an Admin, Leo's key in a workspace he does not work in ends");
    // The same on the group's page.
    let panel = [("group_id", group.as_str()), ("role", "billing")];
    assert_eq!(org.admin.call("/_fn/groups/set_organization_role", &panel).await.status, StatusCode::OK);
    let detail = org.admin.call("/_fn/groups/detail", &[("group_id", &group)]).await.json();
    assert_eq!(detail["group"]["organization_role"], "billing");
    let panel = [("group_id", group.as_str()), ("role", "owner")];
    assert_eq!(
        org.admin.call("/_fn/groups/set_organization_role", &panel).await.status,
        StatusCode::BAD_REQUEST
    );
    let details = app.audit_details("user_group.update").await;
    assert!(details.iter().any(|d| d.contains("organization_admin")), "{details:?}");
    // While it grants a role, it cannot turn into a workspace group, nor be granted a workspace.
    let back = app.api("PATCH", &group_path, &key, Some(json!({ "target_type": "W" }))).await;
    assert_eq!(
        (back.status, back.json()["error"]["param"].as_str()),
        (StatusCode::CONFLICT, Some("target_type"))
    );
    let grant = json!({ "workspace_uuid": lab_id, "role_names": ["workspace_member"] });
    let granted = app.api("POST", &format!("{group_path}/workspaces"), &key, Some(grant)).await;
    assert_eq!(granted.status, StatusCode::CONFLICT, "{}", granted.body);
}

async fn groups_grant_their_members_workspaces(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let key = app.admin_key(&org, "ada@example.com").await;
    let (mut grace, grace_id) = app.join(&mut org, "grace@example.com", &["member"]).await;
    let sees = |overview: serde_json::Value| -> Vec<String> {
        overview["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["name"].as_str().unwrap().to_string())
            .collect()
    };

    let created = app
        .api(
            "POST",
            "/api/admin/user-groups",
            &key,
            Some(json!({ "name": "Researchers", "description": "Lab people" })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let group = created.json()["uuid"].as_str().unwrap().to_string();
    let again =
        app.api("POST", "/api/admin/user-groups", &key, Some(json!({ "name": "researchers " }))).await;
    assert_eq!((again.status, again.json()["error"]["param"].as_str()), (StatusCode::CONFLICT, Some("name")));
    let blank = app.api("POST", "/api/admin/user-groups", &key, Some(json!({ "name": "  " }))).await;
    assert_eq!(blank.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.count("user_groups").await, 1);

    let lab = app
        .api(
            "POST",
            "/api/admin/workspaces",
            &key,
            Some(json!({ "name": "Lab", "admin_user_id": org.admin_id })),
        )
        .await
        .json()["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let lab_id = lab.parse().unwrap();
    let grace_user = grace_id.parse().unwrap();
    assert_eq!(sees(grace.overview().await.json()), ["Default"]);

    let g = |tail: &str| format!("/api/admin/user-groups/{group}{tail}");
    let added = app.api("POST", &g("/members"), &key, Some(json!({ "user_uuids": [grace_id] }))).await;
    assert_eq!(added.status, StatusCode::NO_CONTENT, "{}", added.body);
    let stranger =
        app.api("POST", &g("/members"), &key, Some(json!({ "user_uuids": [uuid::Uuid::new_v4()] }))).await;
    assert_eq!(stranger.status, StatusCode::BAD_REQUEST, "only Organization members join groups");
    let both = json!({ "user_group_uuid": group, "workspace_uuid": lab,
                       "workspace_role": WorkspaceRole::Admin.uuid(), "workspace_role_name": "workspace_member" });
    let both = app.api("POST", "/api/admin/user-groups/provision-workspace", &key, Some(both)).await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST, "{}", both.body);
    let provision =
        json!({ "user_group_uuid": group, "workspace_uuid": lab, "workspace_role_name": "workspace_member" });
    let provisioned =
        app.api("POST", "/api/admin/user-groups/provision-workspace", &key, Some(provision)).await;
    assert_eq!(provisioned.status, StatusCode::NO_CONTENT, "{}", provisioned.body);

    // Grace reaches Lab through the group, as a Member.
    assert_eq!(sees(grace.overview().await.json()), ["Default", "Lab"]);
    assert_eq!(
        workspaces::access_role(&app.db, grace_user, lab_id).await.unwrap(),
        Some(WorkspaceRole::Member)
    );
    let lab_out = app.api("GET", &format!("/api/admin/workspaces/{lab}"), &key, None).await.json();
    assert_eq!(lab_out["members_count"], 2, "Ada directly, Grace through the group");
    let listed = app.api("GET", &g("/workspaces"), &key, None).await.json();
    assert_eq!(listed["items"][0]["workspace_name"], "Lab");
    assert_eq!(listed["items"][0]["role_names"], json!(["workspace_member"]));
    let members = app.api("GET", &g("/members"), &key, None).await.json();
    assert_eq!(
        (members["total"].as_i64(), members["members"][0]["email"].as_str()),
        (Some(1), Some("grace@example.com"))
    );

    // Direct and group grants add up: the stronger one wins, and each stands alone.
    let direct = json!({ "members": [{ "user_uuid": grace_id, "role_names": ["workspace_admin"] }] });
    app.api("PATCH", &format!("/api/admin/workspaces/{lab}/users"), &key, Some(direct)).await;
    assert_eq!(
        workspaces::access_role(&app.db, grace_user, lab_id).await.unwrap(),
        Some(WorkspaceRole::Admin)
    );
    let undirect = json!({ "members": [{ "user_uuid": grace_id }] });
    app.api("DELETE", &format!("/api/admin/workspaces/{lab}/remove-users"), &key, Some(undirect)).await;
    assert_eq!(
        workspaces::access_role(&app.db, grace_user, lab_id).await.unwrap(),
        Some(WorkspaceRole::Member)
    );
    let promote = json!({ "role_names": ["workspace_admin"] });
    let promoted = app.api("PATCH", &g(&format!("/workspaces/{lab}")), &key, Some(promote)).await;
    assert_eq!(promoted.status, StatusCode::NO_CONTENT, "{}", promoted.body);
    assert_eq!(
        workspaces::access_role(&app.db, grace_user, lab_id).await.unwrap(),
        Some(WorkspaceRole::Admin)
    );

    // Another organization's key sees no such group.
    let other = app.organization("bob@example.com", "Looms").await;
    let other_key = app.admin_key(&other, "bob@example.com").await;
    for (method, path) in [("GET", g("")), ("DELETE", g("")), ("GET", g("/members"))] {
        let response = app.api(method, &path, &other_key, None).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{method} {path}");
    }

    // Leaving the group ends the access it gave; so does deleting the group.
    let left = app.api("DELETE", &g("/members"), &key, Some(json!({ "user_uuids": [grace_id] }))).await;
    assert_eq!(left.status, StatusCode::NO_CONTENT);
    assert_eq!(sees(grace.overview().await.json()), ["Default"]);
    app.api("POST", &g("/members"), &key, Some(json!({ "user_uuids": [grace_id] }))).await;
    assert_eq!(sees(grace.overview().await.json()), ["Default", "Lab"]);
    let deleted = app.api("DELETE", &g(""), &key, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(sees(grace.overview().await.json()), ["Default"]);
    assert_eq!((app.count("user_group_members").await, app.count("user_group_workspaces").await), (0, 0));
    assert_eq!(app.api("GET", &g(""), &key, None).await.status, StatusCode::NOT_FOUND);

    let actions: Vec<String> = app.audit_trail().await.into_iter().map(|(action, ..)| action).collect();
    for action in [
        "user_group.create",
        "user_group.member.add",
        "user_group.workspace.provision",
        "user_group.workspace.update",
        "user_group.member.remove",
        "user_group.delete",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action} audited");
    }
}

async fn groups_in_the_admin_panel(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let (mut mia, _) = app.join(&mut org, "mia@example.com", &["member"]).await;
    let ada = &mut org.admin;
    let created = ada.call("/_fn/groups/create", &[("name", "Support"), ("description", "")]).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let group: String = serde_json::from_str(&created.body).unwrap();
    let taken = ada.call("/_fn/groups/create", &[("name", "SUPPORT"), ("description", "")]).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    assert!(taken.body.contains("already exists"), "{}", taken.body);

    ada.call("/_fn/groups/add_member", &[("group_id", &group), ("email", "MIA@example.com")]).await;
    let granted = ada
        .call(
            "/_fn/groups/grant_workspace",
            &[("group_id", &group), ("workspace_id", &org.default_workspace), ("role", "admin")],
        )
        .await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.body);
    let detail = ada.call("/_fn/groups/detail", &[("group_id", &group)]).await.json();
    assert_eq!(detail["members"]["items"][0]["email"], "mia@example.com");
    assert_eq!(detail["workspaces"][0]["workspace_name"], "Default");
    assert_eq!(detail["workspaces"][0]["role"], "admin");
    assert_eq!(detail["open_workspaces"].as_array().unwrap().len(), 0);
    let workspace =
        ada.call("/_fn/workspaces/detail", &[("workspace_id", &org.default_workspace)]).await.json();
    assert_eq!(workspace["groups"][0]["group_name"], "Support");

    let renamed = ada
        .call("/_fn/groups/update", &[("group_id", &group), ("name", "Help desk"), ("description", "Tier 1")])
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    let groups = ada.call("/_fn/groups", &[]).await.json();
    assert_eq!(
        (
            groups["items"][0]["name"].as_str(),
            groups["items"][0]["member_count"].as_i64(),
            groups["total"].as_i64()
        ),
        (Some("Help desk"), Some(1), Some(1))
    );
    let beyond = ada.call("/_fn/groups", &[("page", "2")]).await.json();
    assert_eq!(beyond["items"], serde_json::json!([]), "one page of 50 holds them all");

    // Mia, a Member, reaches the group's workspace but administers no group.
    let refused = mia.call("/_fn/groups/create", &[("name", "Mine"), ("description", "")]).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(mia.call("/_fn/groups/delete", &[("group_id", &group)]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.count("user_groups").await, 1);

    let deleted = ada.call("/_fn/groups/delete", &[("group_id", &group)]).await;
    assert!(deleted.status.is_success() || deleted.status.is_redirection(), "{}", deleted.status);
    assert_eq!(app.count("user_groups").await, 0);
}

fn sees(overview: serde_json::Value) -> Vec<String> {
    overview["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap().to_string())
        .collect()
}

/// Mistral's nested groups: the people of a group nested in another are in
/// that one too, at any depth; never in a cycle; taking a group out (or
/// deleting the one between) ends what came through it.
async fn nested_groups_pass_on_what_their_parents_grant(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let key = app.admin_key(&org, "ada@example.com").await;
    let (mut leo, leo_id) = app.join(&mut org, "leo@example.com", &["member"]).await;
    let make = |body: serde_json::Value| {
        let (app, key) = (&app, &key);
        async move {
            let made = app.api("POST", "/api/admin/user-groups", key, Some(body)).await;
            assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
            made.json()
        }
    };
    let lab = app
        .api(
            "POST",
            "/api/admin/workspaces",
            &key,
            Some(json!({ "name": "Lab", "admin_user_id": org.admin_id })),
        )
        .await
        .json()["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let engineering = make(json!({ "name": "Engineering" })).await["uuid"].as_str().unwrap().to_string();
    let lab_people = make(json!({ "name": "Lab people", "parent_group_ids": [engineering] })).await;
    assert_eq!(lab_people["parent_group_ids"], json!([engineering]));
    let lab_people = lab_people["uuid"].as_str().unwrap().to_string();
    let interns = make(json!({ "name": "Interns", "parent_group_ids": [lab_people] })).await;
    let interns = interns["uuid"].as_str().unwrap().to_string();
    let path = |group: &str, tail: &str| format!("/api/admin/user-groups/{group}{tail}");
    let grant = json!({ "workspace_uuid": lab, "role_names": ["workspace_member"] });
    let granted = app.api("POST", &path(&engineering, "/workspaces"), &key, Some(grant)).await;
    assert_eq!(granted.status, StatusCode::CREATED, "{}", granted.body);
    app.api("POST", &path(&interns, "/members"), &key, Some(json!({ "user_uuids": [leo_id] }))).await;

    // Two levels down, Leo reaches what Engineering grants, and makes a key there.
    assert_eq!(sees(leo.overview().await.json()), ["Default", "Lab"]);
    let form = [("workspace_id", lab.as_str()), ("name", "leo"), ("expires_on", ""), ("allowed_models", "")];
    let made = leo.call("/_fn/api_keys/create", &form).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let leo_key = made.json()["view"]["id"].as_str().unwrap().to_string();
    let nested = app.api("GET", &path(&engineering, "/nested"), &key, None).await.json();
    assert_eq!(nested["items"][0]["name"], "Lab people");
    let members = app.api("GET", &path(&engineering, "/members"), &key, None).await.json();
    assert_eq!(members["total"], 0, "members listed are the group's own");

    // No cycles, no self, no stranger: each a 400 naming the field.
    let cycle = json!({ "child_group_uuids": [engineering] });
    let refused = app.api("PATCH", &path(&interns, "/nested"), &key, Some(cycle)).await;
    assert_eq!(
        (refused.status, refused.json()["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("child_group_uuids")),
        "{}",
        refused.body
    );
    let own =
        app.api("PATCH", &path(&interns, ""), &key, Some(json!({ "parent_group_ids": [interns] }))).await;
    assert_eq!(
        (own.status, own.json()["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("parent_group_ids"))
    );
    let other = app.organization("bob@example.com", "Looms").await;
    let other_key = app.admin_key(&other, "bob@example.com").await;
    let theirs =
        app.api("POST", "/api/admin/user-groups", &other_key, Some(json!({ "name": "Theirs" }))).await;
    let theirs = theirs.json()["uuid"].as_str().unwrap().to_string();
    for stranger in [theirs.clone(), uuid::Uuid::new_v4().to_string()] {
        let body = json!({ "child_group_uuids": [stranger] });
        let refused = app.api("PATCH", &path(&engineering, "/nested"), &key, Some(body)).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    }
    assert_eq!(
        app.api("GET", &path(&engineering, "/nested"), &other_key, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.count("user_group_nesting").await, 2, "refusals change nothing");

    // Through an Organization group, nesting passes on an Organization role too.
    let finance =
        make(json!({ "name": "Finance", "target_type": "O" })).await["uuid"].as_str().unwrap().to_string();
    let billing = json!({ "organization_role": "billing_manager" });
    assert_eq!(
        app.api("PATCH", &path(&finance, "/organization-role"), &key, Some(billing)).await.status,
        StatusCode::NO_CONTENT
    );
    let set = app
        .api("PATCH", &path(&finance, "/nested"), &key, Some(json!({ "child_group_uuids": [interns] })))
        .await;
    assert_eq!(set.json()["items"][0]["name"], "Interns");
    let roles = || async {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT role FROM effective_org_roles WHERE user_id = $1 ORDER BY role")
                .bind(&leo_id)
                .fetch_all(app.db.pool())
                .await
                .unwrap();
        rows.into_iter().map(|(role,)| role).collect::<Vec<_>>()
    };
    assert_eq!(roles().await, ["billing", "member"]);
    let interns_out = app.api("GET", &path(&interns, ""), &key, None).await.json();
    let mut parents: Vec<&str> =
        interns_out["parent_group_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    parents.sort();
    let mut expected = [finance.as_str(), lab_people.as_str()];
    expected.sort();
    assert_eq!(parents, expected);

    // Taking Interns out of Lab people ends Lab for Leo, and his key there.
    let out =
        app.api("PATCH", &path(&interns, ""), &key, Some(json!({ "parent_group_ids": [finance] }))).await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.body);
    assert_eq!(sees(leo.overview().await.json()), ["Default"]);
    let (revoked,): (Option<app::time::Timestamp>,) =
        sqlx::query_as("SELECT revoked_at FROM workspace_api_keys WHERE id = $1")
            .bind(&leo_key)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert!(revoked.is_some(), "a key in a workspace Leo no longer reaches ends");
    let details = app.audit_details("user_group.update").await;
    assert!(details.iter().any(|d| d.contains("parent_group_ids") && d.contains(&lab_people)), "{details:?}");

    // Deleting the group between two others unlinks them: nothing reaches through it.
    let back = json!({ "parent_group_ids": [finance, lab_people] });
    app.api("PATCH", &path(&interns, ""), &key, Some(back)).await;
    assert_eq!(sees(leo.overview().await.json()), ["Default", "Lab"]);
    assert_eq!(app.api("DELETE", &path(&lab_people, ""), &key, None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(sees(leo.overview().await.json()), ["Default"]);
    assert_eq!(roles().await, ["billing", "member"], "Finance still holds Interns");
    let nested = app.api("GET", &path(&engineering, "/nested"), &key, None).await.json();
    assert_eq!(nested["items"], json!([]));
    assert_eq!(app.count("user_group_closure").await, 1, "Finance > Interns only");
    // And the Organization role ends with the nesting that gave it.
    app.api("PATCH", &path(&finance, "/nested"), &key, Some(json!({ "child_group_uuids": [] }))).await;
    assert_eq!(roles().await, ["member"]);
}

/// The group page nests and unnests groups, changes what a group grants,
/// and offers only groups that make no cycle.
async fn nesting_in_the_admin_panel(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let mut made = Vec::new();
    for (name, target) in [("Outer", "W"), ("Inner", "O")] {
        let form = [("name", name), ("description", ""), ("target_type", target)];
        let response = org.admin.call("/_fn/groups/create", &form).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        made.push(response.json().as_str().unwrap().to_string());
    }
    let [outer, inner] = [made[0].clone(), made[1].clone()];
    let odd = org
        .admin
        .call("/_fn/groups/create", &[("name", "Odd"), ("description", ""), ("target_type", "Z")])
        .await;
    assert_eq!(odd.status, StatusCode::BAD_REQUEST);

    let nest = [("group_id", outer.as_str()), ("child_id", inner.as_str())];
    assert_eq!(org.admin.call("/_fn/groups/nest", &nest).await.status, StatusCode::OK);
    let outer_page = org.admin.call("/_fn/groups/detail", &[("group_id", &outer)]).await.json();
    assert_eq!(outer_page["children"][0]["name"], "Inner");
    assert_eq!(outer_page["nestable"], json!([]));
    let inner_page = org.admin.call("/_fn/groups/detail", &[("group_id", &inner)]).await.json();
    assert_eq!(inner_page["parents"][0]["name"], "Outer");
    assert_eq!(inner_page["nestable"], json!([]), "Outer holds Inner: nesting it back would be a cycle");
    assert_eq!(inner_page["group"]["target"], "Organization");
    let back = [("group_id", inner.as_str()), ("child_id", outer.as_str())];
    assert_eq!(org.admin.call("/_fn/groups/nest", &back).await.status, StatusCode::BAD_REQUEST);

    let retarget = [("group_id", inner.as_str()), ("target_type", "W")];
    assert_eq!(org.admin.call("/_fn/groups/set_target", &retarget).await.status, StatusCode::OK);
    let inner_page = org.admin.call("/_fn/groups/detail", &[("group_id", &inner)]).await.json();
    assert_eq!(inner_page["group"]["target"], "Workspaces");
    assert_eq!(org.admin.call("/_fn/groups/unnest", &nest).await.status, StatusCode::OK);
    let outer_page = org.admin.call("/_fn/groups/detail", &[("group_id", &outer)]).await.json();
    assert_eq!(
        (outer_page["children"].clone(), outer_page["nestable"][0]["name"].clone()),
        (json!([]), json!("Inner"))
    );
}
