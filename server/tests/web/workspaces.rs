//! Workspaces and their members, through the Admin API, as members see them.

use app::{
    ids::OrgId,
    model::OrgRole,
    server::{
        actor::{Actor, Client},
        admin_keys::{self, NewAdminKey},
        enterprise, members,
    },
};
use http::StatusCode;
use serde_json::json;

use crate::common::{TestApp, PASSWORD, PUBLIC_URL};

crate::on_both_databases!(
    a_workspace_page_shows_its_members_a_page_at_a_time,
    workspaces_are_created_edited_staffed_and_archived,
    mistrals_workspace_options_are_honoured_or_refused,
    an_archived_workspace_is_restored_as_it_was,
    a_workspace_admin_runs_their_workspace_and_no_other,
    double_submits_and_names_differing_by_case_make_one,
);

/// A double-click, or two admins at once, make one Organization and one
/// "Staging"; "staging" is the same name; saving a workspace unchanged is no event.
async fn double_submits_and_names_differing_by_case_make_one(app: TestApp) {
    let mut bea = app.client("203.0.113.9");
    bea.sign_up("Bea", "bea@example.com", PASSWORD).await;
    let mut again = app.client("203.0.113.9");
    again.cookie = bea.cookie.clone();
    let (first, second) = tokio::join!(bea.create_organization("Looms"), again.create_organization("Looms"));
    assert_eq!(app.count("organizations").await, 1, "{} / {}", first.body, second.body);

    let mut org = app.organization("ada@example.com", "Engines").await;
    let create = |name: &'static str| [("name", name), ("description", ""), ("icon", "")];
    let (first, second) = {
        let mut other = app.client("203.0.113.7");
        other.cookie = org.admin.cookie.clone();
        let staging = create("Staging");
        let (first, second) = tokio::join!(
            org.admin.call("/_fn/workspaces/create", &staging),
            other.call("/_fn/workspaces/create", &staging)
        );
        (first, second)
    };
    let mut statuses = [first.status, second.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT], "{} / {}", first.body, second.body);
    let refused = org.admin.call("/_fn/workspaces/create", &create("sTAGING")).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.json()["Conflict"]["field"], "name", "{}", refused.body);
    assert!(refused.body.contains("already exists"), "{}", refused.body);
    let stagings: Vec<(String,)> = sqlx::query_as("SELECT name FROM workspaces WHERE name_key = 'staging'")
        .fetch_all(app.db.pool())
        .await
        .unwrap();
    assert_eq!(stagings, [("Staging".to_string(),)]);

    let renamed = [
        ("workspace_id", org.default_workspace.as_str()),
        ("name", "STAGING"),
        ("description", ""),
        ("icon", ""),
    ];
    assert_eq!(org.admin.call("/_fn/workspaces/update", &renamed).await.status, StatusCode::CONFLICT);
    let events = app.audit_details("workspace.update").await.len();
    let unchanged = [
        ("workspace_id", org.default_workspace.as_str()),
        ("name", "Default"),
        ("description", ""),
        ("icon", ""),
    ];
    assert_eq!(org.admin.call("/_fn/workspaces/update", &unchanged).await.status, StatusCode::OK);
    assert_eq!(app.audit_details("workspace.update").await.len(), events, "an unchanged save is not logged");
    let recased = [
        ("workspace_id", org.default_workspace.as_str()),
        ("name", "DEFAULT"),
        ("description", ""),
        ("icon", ""),
    ];
    assert_eq!(
        org.admin.call("/_fn/workspaces/update", &recased).await.status,
        StatusCode::OK,
        "its own name, recased"
    );
}

/// Seed 004: a workspace Admin has full control of the workspace (members,
/// settings, keys); a workspace Member uses it. Neither reaches other workspaces.
async fn a_workspace_admin_runs_their_workspace_and_no_other(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let (mut mia, mia_id) = app.join(&mut org, "mia@example.com", &["member"]).await;
    let (mut leo, leo_id) = app.join(&mut org, "leo@example.com", &["member"]).await;
    let key = app.admin_key(&org, "ada@example.com").await;
    let make = |name: &str, admin: &str| {
        let body = json!({ "name": name, "admin_user_id": admin });
        app.api("POST", "/api/admin/workspaces", &key, Some(body))
    };
    let lab = make("Lab", &mia_id).await.json()["uuid"].as_str().unwrap().to_string();
    let ops = make("Ops", &org.admin_id).await.json()["uuid"].as_str().unwrap().to_string();
    let add = json!({ "members": [{ "user_uuid": leo_id, "role_names": ["workspace_member"] }] });
    app.api("POST", &format!("/api/admin/workspaces/{ops}/add-users"), &key, Some(add)).await;

    // Mia runs Lab: she adds Leo by his email, renames it, makes him Admin, removes him.
    let detail = mia.call("/_fn/workspaces/detail", &[("workspace_id", &lab)]).await.json();
    assert_eq!((detail["manages"].clone(), detail["administers"].clone()), (json!(true), json!(false)));
    let stranger = [("workspace_id", lab.as_str()), ("email", "nobody@example.com"), ("role", "member")];
    let refused = mia.call("/_fn/workspaces/add_member", &stranger).await;
    assert_eq!(
        (refused.status, refused.json()["Invalid"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("email"))
    );
    let add = [("workspace_id", lab.as_str()), ("email", " Leo@Example.com "), ("role", "member")];
    assert_eq!(mia.call("/_fn/workspaces/add_member", &add).await.status, StatusCode::OK);
    let rename = [("workspace_id", lab.as_str()), ("name", "Lab 2"), ("description", "Ours"), ("icon", "")];
    assert_eq!(mia.call("/_fn/workspaces/update", &rename).await.status, StatusCode::OK);
    let promote = [("workspace_id", lab.as_str()), ("user_id", leo_id.as_str()), ("role", "admin")];
    assert_eq!(mia.call("/_fn/workspaces/put_member", &promote).await.status, StatusCode::OK);
    let remove = [("workspace_id", lab.as_str()), ("user_id", leo_id.as_str())];
    assert_eq!(mia.call("/_fn/workspaces/remove_member", &remove).await.status, StatusCode::OK);
    let lab_now = app.api("GET", &format!("/api/admin/workspaces/{lab}"), &key, None).await.json();
    assert_eq!((lab_now["name"].as_str(), lab_now["members_count"].as_i64()), (Some("Lab 2"), Some(1)));
    // What stays with the Organization's Admins: archiving.
    let archive = mia.call("/_fn/workspaces/archive", &[("workspace_id", &lab)]).await;
    assert_eq!(archive.status, StatusCode::NOT_FOUND);

    // Leo, a workspace Member of Ops, uses it: he sees it, he does not run it.
    let detail = leo.call("/_fn/workspaces/detail", &[("workspace_id", &ops)]).await.json();
    assert_eq!(detail["manages"].clone(), json!(false));
    let rename = [("workspace_id", ops.as_str()), ("name", "Mine"), ("description", ""), ("icon", "")];
    assert_eq!(leo.call("/_fn/workspaces/update", &rename).await.status, StatusCode::NOT_FOUND);
    let put = [("workspace_id", ops.as_str()), ("user_id", mia_id.as_str()), ("role", "member")];
    assert_eq!(leo.call("/_fn/workspaces/put_member", &put).await.status, StatusCode::NOT_FOUND);
    // Nor does Mia run Ops: she cannot add anyone, nor learn who is a member.
    assert_eq!(mia.call("/_fn/workspaces/put_member", &put).await.status, StatusCode::NOT_FOUND);
    for email in ["ada@example.com", "nobody@example.com"] {
        let add = [("workspace_id", ops.as_str()), ("email", email), ("role", "member")];
        assert_eq!(
            mia.call("/_fn/workspaces/add_member", &add).await.status,
            StatusCode::NOT_FOUND,
            "{email}"
        );
    }
    let actors: Vec<String> = app
        .audit_trail()
        .await
        .into_iter()
        .filter(|(action, ..)| action == "workspace.update")
        .map(|(_, actor, ..)| actor)
        .collect();
    assert_eq!(actors, ["mia@example.com"], "her changes are audited as hers");
}

/// Archiving refuses a workspace's keys at the gateway; restoring brings it
/// back with its members and keys, audited; only archived workspaces restore.
async fn an_archived_workspace_is_restored_as_it_was(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let card = [("card_number", "4242 4242 4242 4242"), ("card_expiry", "12/30")];
    assert_eq!(org.admin.call("/_fn/billing/add_card", &card).await.status, StatusCode::OK);
    let key = app.admin_key(&org, "ada@example.com").await;
    let body = json!({ "name": "Lab", "admin_user_id": org.admin_id });
    let lab = app.api("POST", "/api/admin/workspaces", &key, Some(body)).await.json()["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let body = json!({ "workspace_uuid": lab, "name": "work", "user_id": org.admin_id });
    let made = app.api("POST", "/api/admin/api-keys", &key, Some(body)).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let workspace_key = made.json()["key"].as_str().unwrap().to_string();
    let models = || app.gateway("GET", "/v1/models", &workspace_key, None);
    app.state.gateway.refresh().await.unwrap();
    let first = models().await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);

    assert_eq!(
        app.api("DELETE", &format!("/api/admin/workspaces/{lab}"), &key, None).await.status,
        StatusCode::NO_CONTENT
    );
    app.state.gateway.refresh().await.unwrap();
    let refused = models().await;
    assert_eq!(
        (refused.status, refused.json()["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("workspace_archived"))
    );
    let archived = app.api("GET", &format!("/api/admin/workspaces/{lab}"), &key, None).await.json();
    assert_eq!(archived["is_archived"], true);

    let restored = app.api("POST", &format!("/api/admin/workspaces/{lab}/restore"), &key, None).await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.body);
    assert_eq!(
        (restored.json()["is_archived"].clone(), restored.json()["members_count"].clone()),
        (json!(false), json!(1))
    );
    app.state.gateway.refresh().await.unwrap();
    assert_eq!(models().await.status, StatusCode::OK, "its key works again");
    let again = app.api("POST", &format!("/api/admin/workspaces/{lab}/restore"), &key, None).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let unknown = app
        .api("POST", "/api/admin/workspaces/9f0c1b5e-6c1d-4f5e-9a8b-000000000000/restore", &key, None)
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let restores =
        app.audit_trail().await.into_iter().filter(|(action, ..)| action == "workspace.restore").count();
    assert_eq!(restores, 1);
}

/// What Mistral's Admin API documents for workspaces and invitations is done,
/// or refused naming the field, never accepted and ignored.
async fn mistrals_workspace_options_are_honoured_or_refused(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    app.join(&mut org, "grace@example.com", &["member"]).await;
    let key = app.admin_key(&org, "ada@example.com").await;
    let create = |body: serde_json::Value| app.api("POST", "/api/admin/workspaces", &key, Some(body));
    // Without an admin_user_id: no workspace Admin (the Organization's Admins administer it).
    let bare = create(serde_json::json!({"name": "Research"})).await;
    assert_eq!(
        (bare.status, bare.json()["members_count"].as_i64()),
        (StatusCode::CREATED, Some(0)),
        "{}",
        bare.body
    );
    let everyone = create(serde_json::json!({"name": "Everyone", "add_all_org_members": true})).await;
    assert_eq!(everyone.json()["members_count"], 2, "{}", everyone.body);
    let found = app.api("GET", "/api/admin/workspaces?search=RES", &key, None).await.json();
    let names: Vec<&str> =
        found["items"].as_array().unwrap().iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Research"]);
    let research = bare.json()["uuid"].as_str().unwrap().to_string();
    let archived = app.api("DELETE", &format!("/api/admin/workspaces/{research}"), &key, None).await;
    assert!(archived.status.is_success(), "{}", archived.body);
    let listed = |query: &'static str| app.api("GET", query, &key, None);
    let archive = listed("/api/admin/workspaces?is_archived=true").await.json();
    assert_eq!(
        (archive["total"].clone(), archive["items"][0]["uuid"].clone()),
        (serde_json::json!(1), serde_json::json!(research))
    );
    assert_eq!(listed("/api/admin/workspaces").await.json()["total"], 2, "Default and Everyone");
    // An invitation carries workspaces: archived or unknown ones are refused, the others joined on acceptance.
    let invite = |workspaces: serde_json::Value| {
        let body = serde_json::json!({"email": "bob@example.com", "role_names": ["member"], "workspace_uuids": workspaces});
        app.api("POST", "/api/admin/users-invite", &key, Some(body))
    };
    assert_eq!(invite(serde_json::json!([research])).await.status, StatusCode::NOT_FOUND);
    let everyone_id = everyone.json()["uuid"].as_str().unwrap().to_string();
    let sent = invite(serde_json::json!([everyone_id, everyone_id])).await;
    assert_eq!(sent.json()["invited_members_count"], 1, "{}", sent.body);
    let pending = app.api("GET", "/api/admin/users-invite", &key, None).await.json();
    assert_eq!(pending["invites"][0]["workspace_uuids"], serde_json::json!([everyone_id]));
    assert_eq!(pending["invites"][0]["expired"], false);
    let token = app.emailed_token("bob@example.com").await;
    let mut bob = app.client("198.51.100.31");
    let joined = bob
        .call("/_fn/invitation/sign_up", &[("token", &token), ("name", "Bob"), ("password", PASSWORD)])
        .await;
    assert!(joined.status.is_success() || joined.status.is_redirection(), "{}", joined.body);
    let bob_id = bob.overview().await.json()["user"]["id"].as_str().unwrap().to_string();

    // Members are listed with Mistral's `uuid` and the workspaces they reach.
    let users = app.api("GET", "/api/admin/users?email=BOB@example.com", &key, None).await.json();
    let listed = &users["members"][0];
    assert_eq!(
        (listed["uuid"].as_str(), listed["user_id"].as_str()),
        (Some(bob_id.as_str()), Some(bob_id.as_str()))
    );
    let reached: Vec<(&str, bool, &str)> = listed["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["name"].as_str().unwrap(),
                w["is_default"].as_bool().unwrap(),
                w["role_names"][0].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(reached, [("Default", true, "workspace_member"), ("Everyone", false, "workspace_member")]);
    let one = app.api("GET", &format!("/api/admin/users/{bob_id}"), &key, None).await.json();
    assert_eq!(one["workspaces"], listed["workspaces"]);
    assert!(app.audit_trail().await.iter().any(|(action, ..)| action == "workspace.member.add"));
}

async fn workspaces_are_created_edited_staffed_and_archived(app: TestApp) {
    let mut ada = app.client("203.0.113.7");
    ada.sign_up("Ada", "ada@example.com", PASSWORD).await;
    ada.create_organization("Engines").await;
    let overview = ada.overview().await.json();
    let org: OrgId = overview["org"]["id"].as_str().unwrap().parse().unwrap();
    let ada_id = overview["user"]["id"].as_str().unwrap().to_string();
    let default_id = overview["workspaces"][0]["id"].as_str().unwrap().to_string();
    let ada_actor = Actor::User { id: ada_id.parse().unwrap(), email: "ada@example.com".into() };
    let client = Client::default();
    members::invite(
        &app.db,
        &app.state.throttle,
        &ada_actor,
        &client,
        org,
        PUBLIC_URL,
        members::Invitee { email: "grace@example.com", roles: &[OrgRole::Member], workspaces: &[] },
    )
    .await
    .unwrap();
    let token = app.emailed_token("grace@example.com").await;
    let mut grace = app.client("198.51.100.20");
    grace
        .call("/_fn/invitation/sign_up", &[("token", &token), ("name", "Grace"), ("password", PASSWORD)])
        .await;
    let grace_id = grace.overview().await.json()["user"]["id"].as_str().unwrap().to_string();

    let acme = enterprise::create(&app.db, &Actor::Operator, &client, "Acme", &[org], "ada@example.com")
        .await
        .unwrap()
        .id;
    let key = |name: &str| NewAdminKey { name: name.into(), org_id: org, expires_on: String::new() };
    let key = admin_keys::create(&app.db, &ada_actor, &client, acme, key("ops")).await.unwrap().key;

    let stranger = uuid::Uuid::new_v4();
    let refused = app
        .api("POST", "/api/admin/workspaces", &key, Some(json!({ "name": "X", "admin_user_id": stranger })))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.json()["error"]["param"], "admin_user_id");
    assert_eq!(app.count("workspaces").await, 1, "nothing half-written");

    let created = app.api( "POST", "/api/admin/workspaces", &key,
        Some(json!({ "name": "Research", "admin_user_id": ada_id, "icon": "🔬", "description": "Experiments" }))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let research = created.json();
    assert_eq!(
        (research["members_count"].as_i64(), research["is_default"].as_bool()),
        (Some(1), Some(false))
    );
    let research_id = research["uuid"].as_str().unwrap().to_string();
    let path = |tail: &str| format!("/api/admin/workspaces/{research_id}{tail}");

    let renamed = app.api("PATCH", &path(""), &key, Some(json!({ "name": "Research Lab" }))).await.json();
    assert_eq!((renamed["name"].as_str(), renamed["icon"].as_str()), (Some("Research Lab"), Some("🔬")));
    let (details,): (String,) =
        sqlx::query_as("SELECT details FROM audit_events WHERE action = 'workspace.update'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert!(details.contains("\"before\":{") && details.contains("Research Lab"), "{details}");

    assert_eq!(
        grace.overview().await.json()["workspaces"].as_array().unwrap().len(),
        1,
        "a Member sees only their own"
    );
    let added = app
        .api(
            "POST",
            &path("/add-users"),
            &key,
            Some(json!({ "members": [{ "user_uuid": grace_id, "role_names": ["workspace_admin"] }] })),
        )
        .await;
    assert_eq!(added.json()["added_members_count"], 1, "{}", added.body);
    assert_eq!(grace.overview().await.json()["workspaces"].as_array().unwrap().len(), 2);
    let changed = app
        .api(
            "PATCH",
            &path("/users"),
            &key,
            Some(json!({ "members": [{ "user_uuid": grace_id, "role_name": "workspace_member" }] })),
        )
        .await
        .json();
    assert_eq!(
        (changed["added_members_count"].as_i64(), changed["updated_members_count"].as_i64()),
        (Some(0), Some(1))
    );
    let outsider = app
        .api("POST", &path("/add-users"), &key, Some(json!({ "members": [{ "user_uuid": stranger }] })))
        .await;
    assert_eq!(outsider.status, StatusCode::BAD_REQUEST, "only organization members join workspaces");

    let removed = app
        .api(
            "DELETE",
            &path("/remove-users"),
            &key,
            Some(json!({ "members": [{ "user_uuid": grace_id }, { "user_uuid": stranger }] })),
        )
        .await
        .json();
    assert_eq!(removed["deleted_members_count"], 1);
    assert_eq!(removed["not_deleted_members"], json!([stranger]));
    assert_eq!(grace.overview().await.json()["workspaces"].as_array().unwrap().len(), 1);
    let from_default = app
        .api(
            "DELETE",
            &format!("/api/admin/workspaces/{default_id}/remove-users"),
            &key,
            Some(json!({ "members": [{ "user_uuid": grace_id }] })),
        )
        .await;
    assert_eq!(from_default.status, StatusCode::CONFLICT, "nobody leaves the Default workspace");

    assert_eq!(
        app.api("DELETE", &format!("/api/admin/workspaces/{default_id}"), &key, None).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(app.api("DELETE", &path(""), &key, None).await.status, StatusCode::NO_CONTENT);
    let listed = app.api("GET", "/api/admin/workspaces", &key, None).await.json();
    assert_eq!(listed["total"], 1, "archived workspaces leave the list");
    let actions: Vec<String> = app.audit_trail().await.into_iter().map(|(a, ..)| a).collect();
    for expected in [
        "workspace.create",
        "workspace.update",
        "workspace.member.add",
        "workspace.member.remove",
        "workspace.delete",
    ] {
        assert!(actions.iter().any(|a| a == expected), "{expected} audited: {actions:?}");
    }
}

/// A Default workspace holds everyone: its page sends 50 members at a time.
async fn a_workspace_page_shows_its_members_a_page_at_a_time(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let now = chrono::Utc::now().timestamp_millis();
    for n in 0..60 {
        let id = uuid::Uuid::new_v4().to_string();
        let email = format!("person{n:02}@example.com");
        for (sql, values) in [
            (
                "INSERT INTO users (id, name, email, email_normalized, password_hash, created_at) VALUES ($1, $2, $3, $3, 'x', $4)",
                vec![id.clone(), format!("Person {n:02}"), email.clone()],
            ),
            ("INSERT INTO org_members (org_id, user_id, created_at) VALUES ($2, $1, $4)", vec![id.clone(), org.id.to_string()]),
            ("INSERT INTO org_member_roles (org_id, user_id, role) VALUES ($2, $1, 'member')", vec![id.clone(), org.id.to_string()]),
            (
                "INSERT INTO workspace_members (workspace_id, user_id, role, created_at) VALUES ($2, $1, 'member', $4)",
                vec![id.clone(), org.default_workspace.clone()],
            ),
        ] {
            let mut query = sqlx::query(sql);
            for value in &values {
                query = query.bind(value);
            }
            if values.len() < 3 {
                query = query.bind("unused");
            }
            query.bind(now).execute(app.db.pool()).await.unwrap();
        }
    }
    let workspace = org.default_workspace.clone();
    let first =
        org.admin.call("/_fn/workspaces/detail", &[("workspace_id", &workspace), ("page", "1")]).await.json();
    let count = |page: &serde_json::Value| page["members"]["items"].as_array().map(Vec::len);
    assert_eq!((first["members"]["total"].as_i64(), count(&first)), (Some(61), Some(50)));
    assert_eq!(first["members"]["items"][0]["email"], "ada@example.com", "by name, in any case: Ada first");
    let second =
        org.admin.call("/_fn/workspaces/detail", &[("workspace_id", &workspace), ("page", "2")]).await.json();
    let emails: Vec<&str> =
        second["members"]["items"].as_array().unwrap().iter().map(|m| m["email"].as_str().unwrap()).collect();
    assert_eq!(emails.len(), 11);
    assert_eq!(emails.last(), Some(&"person59@example.com"));
}
