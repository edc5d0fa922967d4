//! Enterprise Accounts, the Backoffice's rules, Admin API keys and the Admin API's foundation.

use app::{
    ids::{EnterpriseId, OrgId, UserId},
    model::CurrentUser,
    server::{
        actor::{Actor, Client},
        admin_keys::{self, NewAdminKey},
        enterprise, mail, overview,
    },
    AppError,
};
use axum::body::Body;
use http::{Request, StatusCode};

use crate::common::{TestApp, PASSWORD, PUBLIC_URL};

crate::on_both_databases!(
    operator_errors_are_clear_and_write_nothing,
    only_admins_of_linked_organizations_can_be_added,
    promote_to_admin_opens_the_admin_panel,
    admin_api_key_is_shown_once_and_scoped_to_its_organization,
    expired_and_revoked_keys_are_refused,
    admin_api_describes_itself,
    admin_api_reads_input_as_its_document_says,
    backoffice_server_functions_serve_enterprise_admins_only,
);

/// Signs `email` up through the web and names their first organization.
async fn org_admin(app: &TestApp, name: &str, email: &str, org: &str) -> (Actor, OrgId) {
    let mut client = app.client("203.0.113.7");
    client.sign_up(name, email, PASSWORD).await;
    client.create_organization(org).await;
    let overview = client.overview().await.json();
    let user_id: UserId = overview["user"]["id"].as_str().unwrap().parse().unwrap();
    let org_id: OrgId = overview["org"]["id"].as_str().unwrap().parse().unwrap();
    (Actor::User { id: user_id, email: email.to_string() }, org_id)
}

async fn enterprise_for(app: &TestApp, org: OrgId, admin_email: &str) -> EnterpriseId {
    enterprise::create(&app.db, &Actor::Operator, &Client::default(), "Acme Group", &[org], admin_email)
        .await
        .expect("operator creates the Enterprise Account")
        .id
}

fn user(actor: &Actor) -> CurrentUser {
    match actor {
        Actor::User { id, email } => CurrentUser { id: *id, name: String::new(), email: email.clone() },
        _ => unreachable!(),
    }
}

async fn operator_errors_are_clear_and_write_nothing(app: TestApp) {
    let (_, org) = org_admin(&app, "Ada", "ada@example.com", "Engines").await;
    let (_, other_org) = org_admin(&app, "Bob", "bob@example.com", "Looms").await;
    let operator = Actor::Operator;
    let client = Client::default();

    let missing = OrgId::new();
    let err = enterprise::create(&app.db, &operator, &client, "Acme", &[missing], "ada@example.com")
        .await
        .unwrap_err();
    assert_eq!(err, AppError::invalid("org", format!("No Organization has the id {missing}.")));
    let err =
        enterprise::create(&app.db, &operator, &client, "Acme", &[org], "bob@example.com").await.unwrap_err();
    assert_eq!(err.field(), Some("admin"), "Bob is no admin of Engines: {err}");
    assert!(err.to_string().contains("not an admin"), "{err}");
    assert_eq!(app.count("enterprise_accounts").await, 0, "a refused creation leaves nothing behind");

    let acme = enterprise_for(&app, org, "ADA@example.com").await;
    let err = enterprise::create(&app.db, &operator, &client, "Other", &[org], "ada@example.com")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already linked to another"), "{err}");
    let err =
        enterprise::link_org(&app.db, &operator, &client, EnterpriseId::new(), other_org).await.unwrap_err();
    assert_eq!(err.field(), Some("enterprise"));
    enterprise::link_org(&app.db, &operator, &client, acme, other_org).await.unwrap();
    let bob_as_user = Actor::User { id: UserId::new(), email: "bob@example.com".into() };
    let refused = enterprise::link_org(&app.db, &bob_as_user, &client, acme, other_org).await.unwrap_err();
    assert_eq!(refused, AppError::Forbidden, "only the operator links organizations");
}

async fn only_admins_of_linked_organizations_can_be_added(app: TestApp) {
    let (ada, engines) = org_admin(&app, "Ada", "ada@example.com", "Engines").await;
    let (bob, looms) = org_admin(&app, "Bob", "bob@example.com", "Looms").await;
    let (_, _) = org_admin(&app, "Eve", "eve@example.com", "Unlinked").await;
    let acme = enterprise_for(&app, engines, "ada@example.com").await;
    enterprise::link_org(&app.db, &Actor::Operator, &Client::default(), acme, looms).await.unwrap();
    let client = Client::default();

    for outsider in ["eve@example.com", "nobody@example.com"] {
        let err =
            enterprise::add_member(&app.db, &ada, &client, acme, PUBLIC_URL, outsider).await.unwrap_err();
        assert_eq!(err, AppError::invalid("email", enterprise::NOT_AN_ORG_ADMIN), "{outsider}");
    }
    enterprise::add_member(&app.db, &ada, &client, acme, PUBLIC_URL, "Bob@Example.com").await.unwrap();
    // Bob is told, with where to accept.
    let outbox = mail::outbox(&app.db, 10).await.unwrap();
    let told = outbox
        .iter()
        .find(|m| m.to_email == "bob@example.com" && m.subject == "You were added to Acme Group on Chancery")
        .expect("an email to Bob");
    assert!(told.body.contains(&format!("{PUBLIC_URL}/backoffice")), "{}", told.body);
    let members = enterprise::list_members(&app.db, &ada, acme).await.unwrap();
    let bob_row = members.iter().find(|m| m.email == "bob@example.com").unwrap();
    assert!(bob_row.pending, "Invite pending until Bob accepts");
    assert_eq!(bob_row.organizations, ["Looms"]);
    assert_eq!(
        enterprise::list_orgs(&app.db, &bob, acme).await.unwrap_err(),
        AppError::NotFound,
        "not yet a member"
    );

    enterprise::accept_invitation(&app.db, &bob, &client, acme).await.unwrap();
    let members = enterprise::list_members(&app.db, &bob, acme).await.unwrap();
    assert!(members.iter().all(|m| !m.pending));
    assert_eq!(members.len(), 2);

    enterprise::remove_member(&app.db, &ada, &client, acme, user(&bob).id).await.unwrap();
    let last = enterprise::remove_member(&app.db, &ada, &client, acme, user(&ada).id).await.unwrap_err();
    assert!(last.to_string().contains("last member"), "{last}");
}

async fn promote_to_admin_opens_the_admin_panel(app: TestApp) {
    let (ada, engines) = org_admin(&app, "Ada", "ada@example.com", "Engines").await;
    let acme = enterprise_for(&app, engines, "ada@example.com").await;
    let client = Client::default();

    let research = enterprise::create_org(&app.db, &ada, &client, acme, "Research").await.unwrap();
    let listed = enterprise::list_orgs(&app.db, &ada, acme).await.unwrap();
    let row = listed.iter().find(|o| o.id == research.id).unwrap();
    assert_eq!((row.member_count, row.viewer_is_admin), (0, false));
    let no_access = overview::admin_overview(&app.db, user(&ada), research.id).await.unwrap_err();
    assert_eq!(no_access, AppError::NotFound, "an EA admin has no Admin Panel access by default");

    let promoted = enterprise::promote_to_admin(&app.db, &ada, &client, acme, research.id).await.unwrap();
    assert_eq!(promoted.name, "Research");
    let home = overview::admin_overview(&app.db, user(&ada), research.id).await.unwrap();
    assert_eq!(home.workspaces.len(), 1, "the Default workspace came with the Organization");
    assert!(home.workspaces[0].is_default);
    let listed = enterprise::list_orgs(&app.db, &ada, acme).await.unwrap();
    assert!(listed.iter().find(|o| o.id == research.id).unwrap().viewer_is_admin);

    let (mallory, _) = org_admin(&app, "Mallory", "mallory@example.com", "Elsewhere").await;
    let refused = enterprise::promote_to_admin(&app.db, &mallory, &client, acme, engines).await.unwrap_err();
    assert_eq!(refused, AppError::NotFound, "a stranger cannot promote themself");
    let actions: Vec<String> = app.audit_trail().await.into_iter().map(|(action, ..)| action).collect();
    assert!(actions.contains(&"user.organization.role.update".to_string()));
}

fn api(path: &str, key: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    request.body(Body::empty()).unwrap()
}

async fn admin_api_key_is_shown_once_and_scoped_to_its_organization(app: TestApp) {
    let (ada, engines) = org_admin(&app, "Ada", "ada@example.com", "Engines").await;
    let acme = enterprise_for(&app, engines, "ada@example.com").await;
    let client = Client::default();
    let research = enterprise::create_org(&app.db, &ada, &client, acme, "Research").await.unwrap();
    let new_key = |org_id, name: &str| NewAdminKey { name: name.into(), org_id, expires_on: String::new() };

    let created = admin_keys::create(&app.db, &ada, &client, acme, new_key(engines, "CI")).await.unwrap();
    assert!(created.key.starts_with("chy_admin_"));
    let listed = admin_keys::list(&app.db, &ada, acme).await.unwrap();
    let listed_json = serde_json::to_string(&listed).unwrap();
    let secret = created.key.rsplit('_').next().unwrap();
    assert!(!listed_json.contains(secret), "lists never carry the secret");
    assert_eq!(listed[0].masked_key, created.view.masked_key);
    assert!(listed[0].masked_key.ends_with(&secret[secret.len() - 4..]));
    let (stored,): (String,) =
        sqlx::query_as("SELECT secret_sha256 FROM admin_api_keys").fetch_one(app.db.pool()).await.unwrap();
    assert_ne!(stored, secret, "stored hashed");

    let mut machine = app.client("192.0.2.10");
    let roles = machine.send(api("/api/admin/roles", Some(&created.key))).await;
    assert_eq!(roles.status, StatusCode::OK, "{}", roles.body);
    let roles = roles.json();
    let names: Vec<&str> =
        roles["organization_roles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["organization_admin", "billing_manager", "member"]);
    assert_eq!(machine.send(api("/v1/admin/roles", Some(&created.key))).await.status, StatusCode::OK);
    let used = admin_keys::list(&app.db, &ada, acme).await.unwrap();
    assert!(used[0].last_used_at.is_some(), "last used is recorded");

    let workspaces = machine.send(api("/api/admin/workspaces", Some(&created.key))).await.json();
    assert_eq!(workspaces["total"], 1);
    let own = workspaces["items"][0]["uuid"].as_str().unwrap().to_string();
    assert_eq!(
        machine.send(api(&format!("/api/admin/workspaces/{own}"), Some(&created.key))).await.status,
        StatusCode::OK
    );
    let not_admin =
        admin_keys::create(&app.db, &ada, &client, acme, new_key(research.id, "R")).await.unwrap_err();
    assert_eq!(not_admin.field(), Some("org_id"), "only Research's Admins hand out its keys: {not_admin}");
    enterprise::promote_to_admin(&app.db, &ada, &client, acme, research.id).await.unwrap();
    let research_key =
        admin_keys::create(&app.db, &ada, &client, acme, new_key(research.id, "R")).await.unwrap();
    let foreign = machine.send(api(&format!("/api/admin/workspaces/{own}"), Some(&research_key.key))).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "a key of one Organization sees nothing of another");
    assert_eq!(foreign.json()["error"]["code"], "not_found");
    let bad_page = machine.send(api("/api/admin/workspaces?page_size=1000", Some(&created.key))).await;
    assert_eq!(bad_page.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_page.json()["error"]["param"], "page_size");

    // Neither a missing key, a session cookie nor a made-up key gets in.
    let anonymous = machine.send(api("/api/admin/roles", None)).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.json()["error"]["type"], "authentication_error");
    let mut browser = app.client("203.0.113.7");
    browser.log_in("ada@example.com", PASSWORD).await;
    assert!(browser.cookie.is_some());
    assert_eq!(browser.send(api("/api/admin/roles", None)).await.status, StatusCode::UNAUTHORIZED);
    let (kept, last) = created.key.split_at(created.key.len() - 1);
    let forged = format!("{kept}{}", if last == "x" { "y" } else { "x" });
    assert_eq!(machine.send(api("/api/admin/roles", Some(&forged))).await.status, StatusCode::UNAUTHORIZED);

    let outsider = Actor::User { id: UserId::new(), email: "x@example.com".into() };
    assert_eq!(admin_keys::list(&app.db, &outsider, acme).await.unwrap_err(), AppError::NotFound);
    let unlinked =
        admin_keys::create(&app.db, &ada, &client, acme, new_key(OrgId::new(), "X")).await.unwrap_err();
    assert_eq!(unlinked.field(), Some("org_id"));
}

async fn expired_and_revoked_keys_are_refused(app: TestApp) {
    let (ada, engines) = org_admin(&app, "Ada", "ada@example.com", "Engines").await;
    let acme = enterprise_for(&app, engines, "ada@example.com").await;
    let client = Client::default();
    let today = chrono::Utc::now().date_naive().format("%Y-%m-%d").to_string();
    let input = NewAdminKey { name: "Nightly".into(), org_id: engines, expires_on: today };
    let key = admin_keys::create(&app.db, &ada, &client, acme, input.clone()).await.unwrap();
    let mut machine = app.client("192.0.2.10");
    assert_eq!(
        machine.send(api("/api/admin/roles", Some(&key.key))).await.status,
        StatusCode::OK,
        "valid all day"
    );

    let past = NewAdminKey { expires_on: "2020-01-01".into(), ..input };
    assert_eq!(
        admin_keys::create(&app.db, &ada, &client, acme, past).await.unwrap_err().field(),
        Some("expires_on")
    );

    sqlx::query("UPDATE admin_api_keys SET expires_at = 1").execute(app.db.pool()).await.unwrap();
    let expired = machine.send(api("/api/admin/roles", Some(&key.key))).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert!(expired.json()["error"]["message"].as_str().unwrap().contains("expired"));

    sqlx::query("UPDATE admin_api_keys SET expires_at = NULL").execute(app.db.pool()).await.unwrap();
    admin_keys::revoke(&app.db, &ada, &client, acme, key.view.id).await.unwrap();
    let revoked = machine.send(api("/api/admin/roles", Some(&key.key))).await;
    assert_eq!(revoked.status, StatusCode::UNAUTHORIZED);
    assert!(revoked.json()["error"]["message"].as_str().unwrap().contains("revoked"));
    let actions: Vec<String> = app.audit_trail().await.into_iter().map(|(action, ..)| action).collect();
    assert!(actions.ends_with(&["admin_api_key.delete".to_string()]), "{actions:?}");
}

async fn admin_api_describes_itself(app: TestApp) {
    let mut machine = app.client("192.0.2.10");
    let spec = machine.send(api("/api/admin/openapi.json", None)).await.json();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"), "{}", spec["openapi"]);
    assert!(spec["paths"]["/roles"]["get"].is_object());
    assert!(spec["paths"]["/workspaces/{workspace_uuid}"]["get"].is_object());
    assert_eq!(spec["components"]["securitySchemes"]["api_key"]["name"], "x-api-key");
    // Every operation declares the parameters of its path, and only those, as path
    // parameters; query parameters are query parameters; a bad key's 401 is documented.
    for (path, item) in spec["paths"].as_object().unwrap() {
        let named: Vec<&str> =
            path.split('/').filter_map(|p| p.strip_prefix('{')?.strip_suffix('}')).collect();
        for (method, operation) in item.as_object().unwrap() {
            let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
            let in_path: Vec<&str> = parameters
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(in_path.len(), named.len(), "{method} {path}: {in_path:?}");
            assert!(named.iter().all(|n| in_path.contains(n)), "{method} {path}: {in_path:?}");
            assert!(operation["responses"]["401"].is_object(), "{method} {path}");
        }
    }
    let paged = &spec["paths"]["/users"]["get"]["parameters"];
    let page = paged.as_array().unwrap().iter().find(|p| p["name"] == "page").unwrap();
    assert_eq!((page["in"].as_str(), page["required"].as_bool()), (Some("query"), Some(false)));
    assert_eq!(page["schema"]["minimum"], 1);
    let docs = machine.send(api("/api/admin/docs", None)).await;
    assert_eq!(docs.status, StatusCode::OK);
    assert!(docs.body.contains("GET /workspaces/{workspace_uuid}"));
    // The audit log's event types are published, each once, with the old names they replace.
    for event in app::audit_events::EVENT_TYPES {
        assert_eq!(
            docs.body.matches(&format!("<tr><td><code>{}</code>", event.name)).count(),
            1,
            "{}",
            event.name
        );
    }
    assert!(docs
        .body
        .contains("<li><code>workspace.archive</code> is now <code>workspace.delete</code></li>"));
    let unknown = machine.send(api("/api/admin/nothing-here", None)).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["error"]["type"], "not_found_error");
}

/// What schemathesis found: input the document allows is read, input it
/// forbids is refused, and rules it cannot express are 400s naming the field.
async fn admin_api_reads_input_as_its_document_says(app: TestApp) {
    let org = app.organization("ada@example.com", "Engines").await;
    let key = app.admin_key(&org, "ada@example.com").await;
    let field = |r: &crate::common::TestResponse| r.json()["error"]["param"].as_str().map(String::from);
    // A field an operation does not read is refused, naming it, not accepted and ignored.
    for (path, body, unknown) in [
        (
            "/api/admin/users-invite",
            serde_json::json!({"email": "x@example.com", "role": "M", "email_language": "fr"}),
            "email_language",
        ),
        ("/api/admin/workspaces", serde_json::json!({"name": "W", "budget": 5}), "budget"),
        (
            "/api/admin/users",
            serde_json::json!([{"email": "x@example.com", "first_name": "X", "last_name": "Y", "role": "M", "seat": true}]),
            "seat",
        ),
        ("/api/admin/spend-limit", serde_json::json!({"amount": 5, "currency": "EUR"}), "currency"),
    ] {
        let refused = app.api("POST", path, &key, Some(body)).await;
        assert_eq!(
            (refused.status, field(&refused).as_deref()),
            (StatusCode::BAD_REQUEST, Some(unknown)),
            "{path}: {}",
            refused.body
        );
    }
    assert_eq!(app.count("invitations").await, 0);
    for (query, unknown) in
        [("/api/admin/users?page=1&sort=name", "sort"), ("/api/admin/workspaces?archived=true", "archived")]
    {
        let refused = app.api("GET", query, &key, None).await;
        assert_eq!(
            (refused.status, field(&refused).as_deref()),
            (StatusCode::BAD_REQUEST, Some(unknown)),
            "{query}"
        );
    }
    // A JSON Schema integer may be written 2.0; a body is an object, never an array.
    let group =
        app.api("POST", "/api/admin/user-groups", &key, Some(serde_json::json!({"name": "Ops"}))).await;
    let id = group.json()["uuid"].as_str().unwrap().to_string();
    let body =
        serde_json::json!({"workspace_uuid": org.default_workspace, "user_id": org.admin_id, "name": "k"});
    let made = app.api("POST", "/api/admin/api-keys", &key, Some(body)).await.json();
    let rotate = format!("/api/admin/api-keys/{}/rotate", made["key_id"].as_str().unwrap());
    let rotated = app.api("POST", &rotate, &key, Some(serde_json::json!({"grace_hours": 2.0}))).await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{}", rotated.body);
    let array = app
        .api("PATCH", &format!("/api/admin/user-groups/{id}"), &key, Some(serde_json::json!([null, null])))
        .await;
    assert_eq!(array.status, StatusCode::BAD_REQUEST, "{}", array.body);
    // Bounds the document states hold; a period is a month or times, not both; a date given is a date.
    let beyond = app.api("GET", "/api/admin/users?page=1000001", &key, None).await;
    assert_eq!((beyond.status, field(&beyond).as_deref()), (StatusCode::BAD_REQUEST, Some("page")));
    let far = app.api("GET", "/api/admin/api-keys?offset=1000000001", &key, None).await;
    assert_eq!(far.status, StatusCode::BAD_REQUEST);
    let buckets = app.api("GET", "/api/admin/usage?month=5&year=2026&bucket_width=1w", &key, None).await;
    assert_eq!((buckets.status, field(&buckets).as_deref()), (StatusCode::BAD_REQUEST, Some("bucket_width")));
    let both = app.api("GET", "/api/admin/usage?month=5&year=2026&start_time=0", &key, None).await;
    assert_eq!((both.status, field(&both).as_deref()), (StatusCode::BAD_REQUEST, Some("start_time")));
    let empty = app.api("GET", "/api/admin/audit-logs?before=", &key, None).await;
    assert_eq!((empty.status, field(&empty).as_deref()), (StatusCode::BAD_REQUEST, Some("before")));
    // A malformed domain in a path names nothing.
    assert_eq!(app.api("DELETE", "/api/admin/domains/0", &key, None).await.status, StatusCode::NOT_FOUND);
}

async fn backoffice_server_functions_serve_enterprise_admins_only(app: TestApp) {
    let (_, engines) = org_admin(&app, "Ada", "ada@example.com", "Engines").await;
    let (_, _) = org_admin(&app, "Bob", "bob@example.com", "Looms").await;
    enterprise_for(&app, engines, "ada@example.com").await;

    // Bob administers an Organization, but no Enterprise Account: every Backoffice call is refused.
    let mut bob = app.client("198.51.100.4");
    bob.log_in("bob@example.com", PASSWORD).await;
    let engines_id = engines.to_string();
    let refused: [(&str, &[(&str, &str)]); 6] = [
        ("/_fn/backoffice/members", &[]),
        ("/_fn/backoffice/organizations", &[]),
        ("/_fn/backoffice/api_keys", &[]),
        ("/_fn/backoffice/create_organization", &[("name", "Sneaky")]),
        ("/_fn/backoffice/promote_to_admin", &[("org_id", &engines_id)]),
        ("/_fn/backoffice/create_api_key", &[("name", "k"), ("org_id", &engines_id), ("expires_on", "")]),
    ];
    for (path, form) in refused {
        let response = bob.call(path, form).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}: {}", response.body);
    }
    assert_eq!(app.count("admin_api_keys").await, 0);
    assert_eq!(app.count("organizations").await, 2);
    let mut anonymous = app.client("198.51.100.5");
    assert_eq!(anonymous.call("/_fn/backoffice/members", &[]).await.status, StatusCode::UNAUTHORIZED);

    // Ada is its admin: the key comes back once, and never again.
    let mut ada = app.client("203.0.113.7");
    ada.log_in("ada@example.com", PASSWORD).await;
    let home = ada.call("/_fn/backoffice/home", &[]).await.json();
    assert_eq!(home["enterprise"]["name"], "Acme Group");
    let created = ada
        .call(
            "/_fn/backoffice/create_api_key",
            &[("name", "CI"), ("org_id", &engines_id), ("expires_on", "")],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let key = created.json()["key"].as_str().unwrap().to_string();
    let listed = ada.call("/_fn/backoffice/api_keys", &[]).await;
    assert!(!listed.body.contains(&key[key.len() - 20..]), "the list never repeats the secret");
    assert_eq!(listed.json()[0]["name"], "CI");
    let no_org = ada
        .call("/_fn/backoffice/create_api_key", &[("name", "CI"), ("org_id", ""), ("expires_on", "")])
        .await;
    assert_eq!(no_org.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_org.json()["Invalid"]["field"], "org_id");
}
