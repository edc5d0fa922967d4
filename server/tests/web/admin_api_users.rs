//! The Admin API's members and invitations, acting as an Admin API key.

use app::{
    ids::OrgId,
    server::{
        actor::{Actor, Client},
        admin_keys::{self, NewAdminKey},
        domains, enterprise,
    },
};
use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::json;

use crate::common::{TestApp, PASSWORD, PUBLIC_URL};

crate::on_both_databases!(
    admin_api_manages_members_and_invitations_of_its_organization_only,
    admin_api_provisions_people_of_its_verified_domains_at_once,
    invitations_are_listed_a_page_at_a_time_oldest_first
);

/// Pending invitations come a page at a time, oldest first, past the last one
/// shown (`limit` and `after`); page 1 of `/users` lists a page's worth and
/// says where the rest begin.
async fn invitations_are_listed_a_page_at_a_time_oldest_first(app: TestApp) {
    let (key, _, _) = setup(&app).await;
    let emails: Vec<String> = (1..=5).map(|n| format!("guest{n}@example.com")).collect();
    for email in &emails {
        let invited = app
            .api(
                "POST",
                "/api/admin/users-invite",
                &key,
                Some(json!({ "email": email, "role_names": ["member"] })),
            )
            .await;
        assert_eq!(invited.status, StatusCode::OK, "{}", invited.body);
    }
    let listed = |answer: &serde_json::Value| -> Vec<String> {
        answer["invites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["email"].as_str().unwrap().to_string())
            .collect()
    };
    let first = app.api("GET", "/api/admin/users-invite?limit=2", &key, None).await.json();
    let next = first["next"].as_str().unwrap().to_string();
    // An invitation revoked between pages moves no one across the page boundary.
    let revoked = first["invites"][0]["uuid"].as_str().unwrap();
    app.api("DELETE", &format!("/api/admin/users-invite/{revoked}"), &key, None).await;
    let second =
        app.api("GET", &format!("/api/admin/users-invite?limit=2&after={next}"), &key, None).await.json();
    let next = second["next"].as_str().unwrap().to_string();
    let last =
        app.api("GET", &format!("/api/admin/users-invite?limit=2&after={next}"), &key, None).await.json();
    assert_eq!(last["next"], json!(null));
    let mut seen = [listed(&first), listed(&second), listed(&last)].concat();
    assert_eq!(seen.len(), 5, "{seen:?}");
    seen.sort();
    assert_eq!(seen, emails);

    let stranger = uuid::Uuid::new_v4();
    let unknown = app.api("GET", &format!("/api/admin/users-invite?after={stranger}"), &key, None).await;
    assert_eq!(
        (unknown.status, unknown.json()["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("after"))
    );
    let none = app.api("GET", "/api/admin/users-invite?limit=0", &key, None).await;
    assert_eq!(
        (none.status, none.json()["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("limit"))
    );

    // Four are pending now: /users lists a page's worth and where the rest begin.
    let users = app.api("GET", "/api/admin/users?page_size=3", &key, None).await.json();
    assert_eq!(listed(&users).len(), 3);
    let rest = users["invites_next"].as_str().unwrap();
    let after = app.api("GET", &format!("/api/admin/users-invite?after={rest}"), &key, None).await.json();
    assert_eq!((listed(&after).len(), after["next"].clone()), (1, json!(null)));
    let one = app.api("GET", "/api/admin/users?email=GUEST5@example.com", &key, None).await.json();
    assert_eq!(listed(&one), ["guest5@example.com"]);
}

/// Ada's organization Engines and Bob's Looms in one Enterprise Account, with a key for each.
async fn setup(app: &TestApp) -> (String, String, String) {
    let mut ada = app.client("203.0.113.7");
    ada.sign_up("Ada", "ada@example.com", PASSWORD).await;
    ada.create_organization("Engines").await;
    let overview = ada.overview().await.json();
    let engines: OrgId = overview["org"]["id"].as_str().unwrap().parse().unwrap();
    let ada_id = overview["user"]["id"].as_str().unwrap().to_string();
    let mut bob = app.client("198.51.100.4");
    bob.sign_up("Bob", "bob@example.com", PASSWORD).await;
    bob.create_organization("Looms").await;
    let bob_overview = bob.overview().await.json();
    let looms: OrgId = bob_overview["org"]["id"].as_str().unwrap().parse().unwrap();
    let bob_actor = Actor::User {
        id: bob_overview["user"]["id"].as_str().unwrap().parse().unwrap(),
        email: "bob@example.com".into(),
    };

    let (operator, client) = (Actor::Operator, Client::default());
    let acme = enterprise::create(&app.db, &operator, &client, "Acme", &[engines], "ada@example.com")
        .await
        .unwrap()
        .id;
    enterprise::link_org(&app.db, &operator, &client, acme, looms).await.unwrap();
    let ada_actor = Actor::User { id: ada_id.parse().unwrap(), email: "ada@example.com".into() };
    let key = |org_id| NewAdminKey { name: "automation".into(), org_id, expires_on: String::new() };
    let engines_key = admin_keys::create(&app.db, &ada_actor, &client, acme, key(engines)).await.unwrap().key;
    // Only an Organization's Admins hand out its keys: Bob joins the Enterprise Account for Looms'.
    enterprise::add_member(&app.db, &ada_actor, &client, acme, PUBLIC_URL, "bob@example.com").await.unwrap();
    enterprise::accept_invitation(&app.db, &bob_actor, &client, acme).await.unwrap();
    let looms_key = admin_keys::create(&app.db, &bob_actor, &client, acme, key(looms)).await.unwrap().key;
    (engines_key, looms_key, ada_id)
}

async fn admin_api_manages_members_and_invitations_of_its_organization_only(app: TestApp) {
    let (key, other_key, ada_id) = setup(&app).await;

    let invited = app.api(
        "POST",
        "/api/admin/users-invite",
        &key,
        Some(json!({ "email": "grace@example.com, not-an-email\nada@example.com", "role_names": ["member", "billing_manager"] })),
    )
    .await;
    assert_eq!(invited.status, StatusCode::OK, "{}", invited.body);
    let invited = invited.json();
    assert_eq!(invited["invited_members_count"], 1);
    assert_eq!(invited["already_members"], json!(["ada@example.com"]));
    assert!(invited["invalid_emails"][0].as_str().unwrap().starts_with("not-an-email:"));

    let both = app.api( "POST", "/v1/admin/users-invite", &key,
        Some(json!({ "email": "x@example.com", "roles": ["00000000-0000-0000-0000-000000000000"], "role_names": ["member"] }))).await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
    assert_eq!(both.json()["error"]["param"], "roles");
    let not_json = app
        .client("192.0.2.50")
        .send(
            Request::post("/api/admin/users-invite")
                .header("x-api-key", &key)
                .body(Body::from("email=x"))
                .unwrap(),
        )
        .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(not_json.json()["error"]["type"], "invalid_request_error");

    let users = app.api("GET", "/api/admin/users", &key, None).await.json();
    assert_eq!(users["total"], 1);
    assert_eq!(users["members"][0]["email"], "ada@example.com");
    assert_eq!(users["members"][0]["role_names"], json!(["organization_admin"]));
    assert_eq!(users["invites"][0]["email"], "grace@example.com");
    assert_eq!(users["invites"][0]["role_names"], json!(["billing_manager", "member"]));
    let invite_id = users["invites"][0]["uuid"].as_str().unwrap().to_string();
    let pending = app.api("GET", "/api/admin/users-invite", &key, None).await.json();
    assert_eq!(pending["invites"].as_array().unwrap().len(), 1);

    let demote = app
        .api("PATCH", &format!("/api/admin/users/{ada_id}"), &key, Some(json!({ "role_name": "member" })))
        .await;
    assert_eq!(demote.status, StatusCode::CONFLICT, "the last Admin: {}", demote.body);
    let same = app
        .api(
            "PATCH",
            &format!("/api/admin/users/{ada_id}"),
            &key,
            Some(json!({ "role_names": ["organization_admin", "billing_manager"] })),
        )
        .await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.body);
    assert_eq!(same.json()["role_names"], json!(["organization_admin", "billing_manager"]));

    // Another Organization's key sees none of it.
    for (method, path) in [
        ("GET", format!("/api/admin/users/{ada_id}")),
        ("DELETE", format!("/api/admin/users/{ada_id}")),
        ("DELETE", format!("/api/admin/users-invite/{invite_id}")),
    ] {
        let response = app.api(method, &path, &other_key, None).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{method} {path}: {}", response.body);
    }
    let theirs = app.api("GET", "/api/admin/users", &other_key, None).await.json();
    assert_eq!(theirs["members"][0]["email"], "bob@example.com");
    assert_eq!(theirs["invites"], json!([]));

    let revoked = app.api("DELETE", &format!("/api/admin/users-invite/{invite_id}"), &key, None).await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(
        app.api("DELETE", &format!("/api/admin/users-invite/{invite_id}"), &key, None).await.status,
        StatusCode::NOT_FOUND
    );

    let by_key: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, actor_type FROM audit_events WHERE actor_type = 'admin_api_key' ORDER BY id",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    let actions: Vec<&str> = by_key.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        ["organization.invite.send", "user.organization.role.update", "organization.invite.revoked"]
    );
}

/// Mistral's bulk `POST /users`: people of the Organization's verified domains
/// become members at once (accounts made without a password, which their owners
/// set through "Forgot password"); anyone else is listed as invalid, to invite.
async fn admin_api_provisions_people_of_its_verified_domains_at_once(app: TestApp) {
    let org = app.organization("ada@example.com", "Engines").await;
    let key = app.admin_key(&org, "ada@example.com").await;
    domains::verify_by_operator(&app.db, &Actor::Operator, org.id, "engines.example").await.unwrap();
    // Someone signed up with a company address before the company claimed it.
    app.client("198.51.100.40").sign_up("Squatter", "lin@engines.example", PASSWORD).await;

    let body = json!([
        { "email": "grace@engines.example", "first_name": "Grace", "last_name": "Hopper", "role_names": ["member", "billing_manager"] },
        { "email": "Lin@Engines.example", "first_name": "Lin", "last_name": "", "role": "M" },
        { "email": "ada@example.com", "first_name": "Ada", "last_name": "L", "role_names": ["member"] },
        { "email": "mallory@elsewhere.net", "first_name": "Mal", "last_name": "Lory", "role_names": ["organization_admin"] },
        { "email": "not an address", "first_name": "X", "last_name": "Y", "role_names": ["member"] }
    ]);
    let made = app.api("POST", "/api/admin/users", &key, Some(body.clone())).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let made = made.json();
    let ids = made["email_to_user_id"].as_object().unwrap();
    assert_eq!(ids.keys().collect::<Vec<_>>(), ["Lin@Engines.example", "grace@engines.example"], "{made}");
    let invalid: Vec<&str> =
        made["invalid_emails"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    assert_eq!(invalid.len(), 3, "{invalid:?}");
    assert!(invalid[0].starts_with("ada@example.com: ") && invalid[0].contains("verified"), "{}", invalid[0]);
    assert!(invalid[1].starts_with("mallory@elsewhere.net: "), "{}", invalid[1]);
    assert!(invalid[2].starts_with("not an address: "), "{}", invalid[2]);

    let grace_id = ids["grace@engines.example"].as_str().unwrap();
    let grace = app.api("GET", &format!("/api/admin/users/{grace_id}"), &key, None).await.json();
    assert_eq!(grace["name"], "Grace Hopper");
    assert_eq!(grace["role_names"], json!(["billing_manager", "member"]));
    assert_eq!(grace["workspaces"][0]["name"], "Default");
    // The squatter's password no longer opens the account: its owner sets one by email.
    assert_eq!(
        app.client("198.51.100.41").log_in("lin@engines.example", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let mut owner = app.client("198.51.100.42");
    owner.call("/_fn/password/forgot", &[("email", "grace@engines.example")]).await;
    let token = app.emailed_token("grace@engines.example").await;
    let reset =
        owner.call("/_fn/password/reset", &[("token", &token), ("password", "a brand new passphrase")]).await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
    assert_eq!(owner.overview().await.json()["org"]["name"], "Engines");

    // Again: already members, listed with their ids, nothing changed.
    let again = app.api("POST", "/api/admin/users", &key, Some(body)).await.json();
    assert_eq!(again["email_to_user_id"], made["email_to_user_id"]);
    let joins =
        app.audit_trail().await.into_iter().filter(|(action, ..)| action == "user.organization.join").count();
    assert_eq!(joins, 2);

    for (body, param) in [
        (
            json!([{ "email": "x@engines.example", "first_name": "X", "last_name": "Y", "role_names": ["member"], "subscription_types": ["CHAT"] }]),
            "subscription_types",
        ),
        (
            json!([{ "email": "x@engines.example", "first_name": "X", "last_name": "Y", "role_names": ["member"], "role": "M" }]),
            "roles",
        ),
    ] {
        let refused = app.api("POST", "/api/admin/users", &key, Some(body)).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert_eq!(refused.json()["error"]["param"], param);
    }
    let object =
        app.api("POST", "/api/admin/users", &key, Some(json!({ "email": "x@engines.example" }))).await;
    assert_eq!(object.status, StatusCode::BAD_REQUEST);
    let many: Vec<_> = (0..101).map(|n| json!({ "email": format!("p{n}@engines.example"), "first_name": "P", "last_name": "Q", "role_names": ["member"] })).collect();
    let too_many = app.api("POST", "/api/admin/users", &key, Some(json!(many))).await;
    assert_eq!(too_many.status, StatusCode::BAD_REQUEST, "{}", too_many.body);
    assert_eq!(app.count("org_members").await, 3, "Ada, Grace and Lin");
}
