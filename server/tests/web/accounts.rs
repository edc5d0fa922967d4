//! Sign-up, the first organization, log-in and log-out.

use app::{
    ids::OrgId,
    server::{accounts, overview},
};
use http::StatusCode;
use serde_json::json;

use crate::common::{TestApp, PASSWORD};

crate::on_both_databases!(
    sign_up_then_name_organization_lands_in_admin_panel_with_default_workspace,
    log_out_ends_the_session_and_log_in_starts_a_new_one,
    a_second_user_cannot_see_the_first_users_organization,
    bad_sign_up_input_is_refused_naming_the_field_and_writes_nothing,
    duplicate_email_is_refused_whatever_its_case,
    organization_name_is_validated_and_needs_a_session,
    wrong_password_and_unknown_email_get_the_same_answer_then_throttling,
    log_in_goes_back_to_the_page_of_this_site_it_was_asked_from,
    the_operators_sign_up_policy_decides_who_may_sign_up_alone,
);

async fn the_operators_sign_up_policy_decides_who_may_sign_up_alone(mut app: TestApp) {
    use app::model::SignUpPolicy;
    let mut ada = app.client("203.0.113.7");
    ada.sign_up("Ada", "ada@acme.test", PASSWORD).await;
    ada.create_organization("Acme").await;

    app.use_sign_up_policy("invite-only".parse().unwrap());
    assert_eq!(
        app.client("198.51.100.1").call("/_fn/sign_up_policy", &[]).await.json(),
        serde_json::json!("InviteOnly")
    );
    let refused = app.client("198.51.100.1").sign_up("Eve", "eve@acme.test", PASSWORD).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("made by invitation"), "{}", refused.body);
    // Invitations still make accounts.
    let mut ada = app.client("203.0.113.7");
    ada.log_in("ada@acme.test", PASSWORD).await;
    let invited =
        ada.call("/_fn/members/invite", &[("email", "grace@acme.test"), ("role_member", "on")]).await;
    assert_eq!(invited.status, StatusCode::OK, "{}", invited.body);
    let token = app.emailed_token("grace@acme.test").await;
    let joined = app
        .client("198.51.100.2")
        .call("/_fn/invitation/sign_up", &[("token", &token), ("name", "Grace"), ("password", PASSWORD)])
        .await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.body);

    app.use_sign_up_policy(SignUpPolicy::Domains(vec!["acme.test".into()]));
    let elsewhere = app.client("198.51.100.3").sign_up("Eve", "eve@elsewhere.test", PASSWORD).await;
    assert_eq!(elsewhere.status, StatusCode::BAD_REQUEST);
    assert!(
        elsewhere.body.contains("\"email\"") && elsewhere.body.contains("acme.test"),
        "{}",
        elsewhere.body
    );
    let here = app.client("198.51.100.3").sign_up("Bob", "Bob@ACME.test", PASSWORD).await;
    assert_eq!(here.header("location"), Some("/onboarding"), "{}", here.body);
    assert_eq!(app.count("users").await, 3, "Ada, Grace, Bob");
}

async fn log_in_goes_back_to_the_page_of_this_site_it_was_asked_from(app: TestApp) {
    let mut ada = app.client("203.0.113.7");
    ada.sign_up("Ada", "ada@example.com", PASSWORD).await;
    ada.create_organization("Engines").await;
    // Pages of this site are gone back to; anything else lands in the Admin Panel.
    for (next, lands) in [
        ("/admin/usage?range=7d", "/admin/usage?range=7d"),
        ("https://evil.test/admin", "/admin"),
        ("//evil.test/admin", "/admin"),
        ("/\\evil.test", "/admin"),
        ("", "/admin"),
    ] {
        let mut browser = app.client("203.0.113.8");
        let form = [("email", "ada@example.com"), ("password", PASSWORD), ("next", next)];
        let logged_in = browser.call("/_fn/log_in", &form).await;
        assert_eq!(logged_in.header("location"), Some(lands), "{next:?}: {}", logged_in.body);
    }
}

async fn sign_up_then_name_organization_lands_in_admin_panel_with_default_workspace(app: TestApp) {
    let mut ada = app.client("203.0.113.7");
    let signed_up = ada.sign_up("Ada Lovelace", "Ada@Example.com", PASSWORD).await;
    assert_eq!(signed_up.status, StatusCode::OK, "{}", signed_up.body);
    assert_eq!(signed_up.header("location"), Some("/onboarding"));
    assert!(ada.cookie.is_some(), "signed in after sign-up");
    assert_eq!(ada.landing().await.json()["NameOrganization"]["email"], "Ada@Example.com");

    let created = ada.create_organization("  Analytical Engines  ").await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_eq!(created.header("location"), Some("/admin"));

    let overview = ada.overview().await.json();
    assert_eq!(overview["org"]["name"], "Analytical Engines");
    assert_eq!(overview["org"]["roles"], json!(["admin"]));
    assert_eq!(overview["user"]["name"], "Ada Lovelace");
    let workspaces = overview["workspaces"].as_array().unwrap();
    assert_eq!(workspaces.len(), 1);
    assert_eq!(workspaces[0]["name"], "Default");
    assert_eq!(workspaces[0]["is_default"], true);
    assert_eq!(workspaces[0]["member_count"], 1);

    let trail = app.audit_trail().await;
    let actions: Vec<&str> = trail.iter().map(|(action, ..)| action.as_str()).collect();
    assert_eq!(actions, ["user.create", "organization.create", "workspace.create"]);
    for (action, actor, _, ip) in &trail {
        assert_eq!(actor, "Ada@Example.com", "{action} names its actor");
        assert_eq!(ip.as_deref(), Some("203.0.113.7"), "{action} records the client address");
    }
}

async fn log_out_ends_the_session_and_log_in_starts_a_new_one(app: TestApp) {
    let mut ada = app.client("203.0.113.7");
    ada.sign_up("Ada", "ada@example.com", PASSWORD).await;
    ada.create_organization("Engines").await;
    let signed_up_cookie = ada.cookie.clone().unwrap();

    let out = ada.call("/_fn/log_out", &[]).await;
    assert_eq!(out.header("location"), Some("/login"));
    assert!(ada.cookie.is_none(), "the cookie is cleared");
    ada.cookie = Some(signed_up_cookie.clone());
    assert_eq!(ada.overview().await.status, StatusCode::UNAUTHORIZED, "the old session is gone server-side");
    assert_eq!(app.count("sessions").await, 0);

    // Log in over the stale cookie: the session id must change (no fixation).
    let logged_in = ada.log_in("ADA@example.com", PASSWORD).await;
    assert_eq!(logged_in.status, StatusCode::OK, "{}", logged_in.body);
    assert_eq!(logged_in.header("location"), Some("/admin"));
    let new_cookie = ada.cookie.clone().unwrap();
    assert_ne!(new_cookie, signed_up_cookie);
    assert_eq!(ada.overview().await.json()["org"]["name"], "Engines");

    let (action, _, target, _) = app.audit_trail().await.pop().unwrap();
    assert_eq!((action.as_str(), target.as_str()), ("user.log_in", "user"));
    let (org_of_login,): (Option<String>,) =
        sqlx::query_as("SELECT org_id FROM audit_events WHERE action = 'user.log_in'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert!(org_of_login.is_some(), "the log-in shows in the organization's log");
}

async fn a_second_user_cannot_see_the_first_users_organization(app: TestApp) {
    let mut ada = app.client("203.0.113.7");
    ada.sign_up("Ada", "ada@example.com", PASSWORD).await;
    ada.create_organization("Engines").await;
    let ada_org: OrgId = ada.overview().await.json()["org"]["id"].as_str().unwrap().parse().unwrap();

    let mut bob = app.client("198.51.100.4");
    bob.sign_up("Bob", "bob@example.com", PASSWORD).await;
    assert_eq!(bob.overview().await.status, StatusCode::NOT_FOUND, "Bob is in no organization");
    bob.create_organization("Babbage & Co").await;
    let bobs_view = bob.overview().await.json();
    assert_eq!(bobs_view["org"]["name"], "Babbage & Co");
    assert_ne!(bobs_view["org"]["id"].as_str().unwrap(), ada_org.to_string());

    // Even asked directly by id, the domain answers as if Ada's organization did not exist.
    let bob_user = accounts::find_user(&app.db, bobs_view["user"]["id"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let refused = overview::admin_overview(&app.db, bob_user, ada_org).await.unwrap_err();
    assert_eq!(refused, app::AppError::NotFound);
}

async fn bad_sign_up_input_is_refused_naming_the_field_and_writes_nothing(app: TestApp) {
    let mut visitor = app.client("203.0.113.7");
    let cases = [
        ("", "ada@example.com", PASSWORD, "name"),
        ("Ada", "not-an-email", PASSWORD, "email"),
        ("Ada", "ada@example", PASSWORD, "email"),
        ("Ada", "ada@example.com", "short", "password"),
        ("Ada", "ada@example.com", &"x".repeat(300), "password"),
    ];
    for (name, email, password, field) in cases {
        let response = visitor.sign_up(name, email, password).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{field}: {}", response.body);
        assert_eq!(response.json()["Invalid"]["field"], field, "{}", response.body);
        assert!(visitor.cookie.is_none(), "no session for a refused sign-up");
    }
    let missing = visitor.call("/_fn/sign_up", &[("name", "Ada")]).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "missing fields: {}", missing.body);

    assert_eq!(app.count("users").await, 0);
    assert_eq!(app.count("audit_events").await, 0);
    assert_eq!(app.count("sessions").await, 0);
}

async fn duplicate_email_is_refused_whatever_its_case(app: TestApp) {
    app.client("203.0.113.7").sign_up("Ada", "ada@example.com", PASSWORD).await;
    let mut impostor = app.client("198.51.100.4");
    let again = impostor.sign_up("Not Ada", "  ADA@Example.COM ", PASSWORD).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert_eq!(again.json()["Conflict"]["field"], "email");
    assert!(again.json()["Conflict"]["message"].as_str().unwrap().contains("already exists"));
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("audit_events").await, 1);
}

async fn organization_name_is_validated_and_needs_a_session(app: TestApp) {
    let mut stranger = app.client("203.0.113.9");
    assert_eq!(stranger.create_organization("Sneaky").await.status, StatusCode::UNAUTHORIZED);

    let mut ada = app.client("203.0.113.7");
    ada.sign_up("Ada", "ada@example.com", PASSWORD).await;
    for bad in ["", "   ", &"x".repeat(101)] {
        let refused = ada.create_organization(bad).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad:?}: {}", refused.body);
        assert_eq!(refused.json()["Invalid"]["field"], "name");
    }
    assert_eq!(app.count("organizations").await, 0);
    assert_eq!(app.count("workspaces").await, 0);

    assert_eq!(ada.create_organization("Engines").await.status, StatusCode::OK);
    let second = ada.create_organization("Another").await;
    assert_eq!(second.status, StatusCode::CONFLICT, "one first organization only: {}", second.body);
    assert_eq!(app.count("organizations").await, 1);
}

async fn wrong_password_and_unknown_email_get_the_same_answer_then_throttling(app: TestApp) {
    app.client("203.0.113.7").sign_up("Ada", "ada@example.com", PASSWORD).await;
    let mut guesser = app.client("198.51.100.4");
    let wrong_password = guesser.log_in("ada@example.com", "not the password").await;
    let unknown_email = guesser.log_in("nobody@example.com", PASSWORD).await;
    assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_email.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_password.body, unknown_email.body, "no hint which of email or password was wrong");
    assert!(guesser.cookie.is_none());

    for _ in 0..4 {
        guesser.log_in("ada@example.com", "still not it").await;
    }
    let throttled = guesser.log_in("ada@example.com", PASSWORD).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS, "{}", throttled.body);
    let retry_after: u64 = throttled.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "Retry-After {retry_after}");
    assert!(guesser.cookie.is_none(), "even the right password waits out the lock");

    let failures: Vec<_> =
        app.audit_trail().await.into_iter().filter(|(action, ..)| action == "user.log_in_failed").collect();
    assert_eq!(failures.len(), 5, "each failed attempt on a real account is audited");
}
