//! Getting back in: a forgotten password reset by a one-time emailed link,
//! the same answer whether or not an account exists, throttled; and changing
//! one's password, which needs the current one and ends one's other sessions.

use app::server::{
    actor::Actor,
    domains,
    throttle::{RESETS_PER_ACCOUNT, RESETS_PER_CLIENT},
};
use http::StatusCode;

use crate::common::{TestApp, PASSWORD};

crate::on_both_databases!(
    a_forgotten_password_is_reset_by_a_one_time_link,
    asking_tells_nothing_is_throttled_and_spares_people_who_must_use_sso,
    changing_a_password_needs_the_current_one_and_ends_other_sessions,
    an_address_is_proven_by_its_emailed_link_or_an_invitation,
);

async fn an_address_is_proven_by_its_emailed_link_or_an_invitation(app: TestApp) {
    let mut grace = app.client("198.51.100.50");
    grace.sign_up("Grace", "grace@example.com", PASSWORD).await;
    grace.create_organization("Compilers").await;
    assert_eq!(grace.overview().await.json()["email_verified"], false);
    let (subject, body) = sqlx::query_as::<_, (String, String)>(
        "SELECT subject, body FROM outbox WHERE to_email = 'grace@example.com'",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(subject, "Confirm your email address for Chancery");
    let token = app.emailed_token("grace@example.com").await;
    assert!(body.contains(&format!("/verify-email/{token}")), "{body}");
    // The link works from any browser, once.
    let confirmed = app.client("198.51.100.51").call("/_fn/email/verify", &[("token", &token)]).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert_eq!(grace.overview().await.json()["email_verified"], true);
    let again = app.client("198.51.100.51").call("/_fn/email/verify", &[("token", &token)]).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);

    // An invitation accepted through its emailed link proves the address too.
    let mut bob = app.client("198.51.100.52");
    bob.sign_up("Bob", "bob@example.com", PASSWORD).await;
    let resent = bob.call("/_fn/email/resend", &[]).await;
    assert_eq!(resent.status, StatusCode::OK, "{}", resent.body);
    let invited =
        grace.call("/_fn/members/invite", &[("email", "bob@example.com"), ("role_member", "on")]).await;
    assert_eq!(invited.status, StatusCode::OK, "{}", invited.body);
    let invitation = app.emailed_token("bob@example.com").await;
    let accepted = bob.call("/_fn/invitation/accept", &[("token", &invitation)]).await;
    assert!(accepted.status.is_success() || accepted.status.is_redirection(), "{}", accepted.body);
    assert_eq!(bob.overview().await.json()["email_verified"], true);
    assert_eq!(app.audit_details("user.email.verify").await, [r#"{"by":"link"}"#, r#"{"by":"invitation"}"#]);
}

const NEW_PASSWORD: &str = "a brand new long passphrase";

/// The emails to `email` but the one asking to confirm the address at sign-up.
async fn outbox_to(app: &TestApp, email: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT subject, body FROM outbox WHERE to_email = $1 AND subject NOT LIKE 'Confirm your email%'
         ORDER BY created_at, id",
    )
    .bind(email)
    .fetch_all(app.db.pool())
    .await
    .unwrap()
}

async fn a_forgotten_password_is_reset_by_a_one_time_link(app: TestApp) {
    let mut ada = app.client("203.0.113.7");
    ada.sign_up("Ada", "ada@example.com", PASSWORD).await;
    ada.create_organization("Engines").await;

    // From another browser, Ada asks for a link; the email carries it, the database only its hash.
    let mut browser = app.client("198.51.100.7");
    let asked = browser.call("/_fn/password/forgot", &[("email", "ADA@example.com")]).await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    assert!(asked.body.contains("If an account uses that address"), "{}", asked.body);
    let token = app.emailed_token("ada@example.com").await;
    let (subject, body) = outbox_to(&app, "ada@example.com").await.pop().unwrap();
    assert_eq!(subject, "Reset your Chancery password");
    assert!(body.contains(&format!("/reset-password/{token}")), "{body}");
    let (stored,): (String,) =
        sqlx::query_as("SELECT token_sha256 FROM password_resets").fetch_one(app.db.pool()).await.unwrap();
    assert_ne!(stored, token, "only a hash is kept");

    // A short password is refused and spends nothing; then the new one signs her in.
    let short = browser.call("/_fn/password/reset", &[("token", &token), ("password", "short")]).await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    let reset = browser.call("/_fn/password/reset", &[("token", &token), ("password", NEW_PASSWORD)]).await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
    assert_eq!(reset.header("location"), Some("/admin"));
    assert_eq!(browser.overview().await.json()["user"]["email"], "ada@example.com");
    // Every earlier session ended (whoever had her password is out), and the old password is dead.
    assert_eq!(ada.overview().await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.client("198.51.100.8").log_in("ada@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.client("198.51.100.8").log_in("ada@example.com", NEW_PASSWORD).await.status,
        StatusCode::OK
    );

    // The link works once.
    let again = app
        .client("198.51.100.9")
        .call("/_fn/password/reset", &[("token", &token), ("password", "yet another passphrase")])
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.body.contains("already used"), "{}", again.body);
    // An hour later, an unused link no longer works; asking again replaces the older link.
    app.client("198.51.100.10").call("/_fn/password/forgot", &[("email", "ada@example.com")]).await;
    let stale = app.emailed_token("ada@example.com").await;
    sqlx::query("UPDATE password_resets SET expires_at = expires_at - 3600001")
        .execute(app.db.pool())
        .await
        .unwrap();
    let expired = app
        .client("198.51.100.10")
        .call("/_fn/password/reset", &[("token", &stale), ("password", "yet another passphrase")])
        .await;
    assert!(expired.body.contains("expired"), "{}", expired.body);
    app.client("198.51.100.10").call("/_fn/password/forgot", &[("email", "ada@example.com")]).await;
    assert_eq!(app.count("password_resets").await, 1, "one link at a time");

    let actions: Vec<String> = app.audit_trail().await.into_iter().map(|(action, _, _, _)| action).collect();
    let resets: Vec<&str> =
        actions.iter().map(String::as_str).filter(|a| a.starts_with("user.password")).collect();
    assert_eq!(
        resets,
        [
            "user.password_reset_request",
            "user.password.update",
            "user.password_reset_request",
            "user.password_reset_request"
        ]
    );
    // Once delivered, the outbox keeps no usable link.
    assert!(app::server::mail::redact_one_time_links(&format!(
        "http://x{}{token}",
        app::server::recovery::RESET_LINK_PATH
    ))
    .contains("[link removed"));
}

async fn asking_tells_nothing_is_throttled_and_spares_people_who_must_use_sso(app: TestApp) {
    let mut ada = app.client("203.0.113.7");
    ada.sign_up("Ada", "ada@acme.test", PASSWORD).await;
    ada.create_organization("Acme").await;

    // An address without an account gets the same answer, and no email is sent.
    let known = app.client("198.51.100.20").call("/_fn/password/forgot", &[("email", "ada@acme.test")]).await;
    let unknown =
        app.client("198.51.100.21").call("/_fn/password/forgot", &[("email", "nobody@acme.test")]).await;
    assert_eq!((known.status, known.body.clone()), (unknown.status, unknown.body.clone()));
    assert!(outbox_to(&app, "nobody@acme.test").await.is_empty());

    // Per address asked for (whether or not it exists), then per client address.
    for _ in 1..RESETS_PER_ACCOUNT {
        let asked =
            app.client("198.51.100.22").call("/_fn/password/forgot", &[("email", "ada@acme.test")]).await;
        assert_eq!(asked.status, StatusCode::OK);
    }
    let throttled =
        app.client("198.51.100.23").call("/_fn/password/forgot", &[("email", "ada@acme.test")]).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        outbox_to(&app, "ada@acme.test").await.len(),
        RESETS_PER_ACCOUNT,
        "no more emails than the allowance"
    );
    for i in 0..RESETS_PER_CLIENT {
        app.client("198.51.100.24")
            .call("/_fn/password/forgot", &[("email", &format!("n{i}@elsewhere.test"))])
            .await;
    }
    let spray =
        app.client("198.51.100.24").call("/_fn/password/forgot", &[("email", "last@elsewhere.test")]).await;
    assert_eq!(spray.status, StatusCode::TOO_MANY_REQUESTS);

    // Someone whose Organization requires single sign-on is told to use it; links made before stop working.
    let mut org_admin = app.client("203.0.113.7");
    org_admin.log_in("ada@acme.test", PASSWORD).await;
    let org_id: app::ids::OrgId =
        org_admin.overview().await.json()["org"]["id"].as_str().unwrap().parse().unwrap();
    domains::verify_by_operator(&app.db, &Actor::Operator, org_id, "acme.test").await.unwrap();
    let token = app.emailed_token("ada@acme.test").await;
    sqlx::query("UPDATE organizations SET sso_enforced_at = 1 WHERE id = $1")
        .bind(org_id)
        .execute(app.db.pool())
        .await
        .unwrap();
    let refused = app
        .client("198.51.100.25")
        .call("/_fn/password/reset", &[("token", &token), ("password", NEW_PASSWORD)])
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("requires single sign-on"), "{}", refused.body);
    // A member of theirs, covered too, asks: the email points at single sign-on, no link.
    app.client("203.0.113.30").sign_up("Bob", "bob@acme.test", PASSWORD).await;
    sqlx::query("INSERT INTO org_members (org_id, user_id, created_at) SELECT $1, id, 0 FROM users WHERE email_normalized = 'bob@acme.test'")
        .bind(org_id)
        .execute(app.db.pool())
        .await
        .unwrap();
    let asked = app.client("198.51.100.26").call("/_fn/password/forgot", &[("email", "bob@acme.test")]).await;
    assert_eq!(asked.status, StatusCode::OK);
    let (subject, body) = outbox_to(&app, "bob@acme.test").await.pop().unwrap();
    assert_eq!(subject, "Log in to Chancery with single sign-on");
    assert!(!body.contains("/reset-password/"), "{body}");
}

async fn changing_a_password_needs_the_current_one_and_ends_other_sessions(app: TestApp) {
    let mut ada = app.client("203.0.113.7");
    ada.sign_up("Ada", "ada@example.com", PASSWORD).await;
    ada.create_organization("Engines").await;
    let mut laptop = app.client("198.51.100.40");
    laptop.log_in("ada@example.com", PASSWORD).await;

    let wrong = ada
        .call(
            "/_fn/password/change",
            &[("current_password", "not my password at all"), ("new_password", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(wrong.body.contains("current_password"), "{}", wrong.body);
    let short =
        ada.call("/_fn/password/change", &[("current_password", PASSWORD), ("new_password", "short")]).await;
    assert!(short.body.contains("new_password"), "{}", short.body);
    assert_eq!(laptop.overview().await.status, StatusCode::OK, "nothing changed yet");

    let changed = ada
        .call("/_fn/password/change", &[("current_password", PASSWORD), ("new_password", NEW_PASSWORD)])
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(
        ada.overview().await.json()["org"]["name"],
        "Engines",
        "this browser goes on, in its organization"
    );
    assert_eq!(laptop.overview().await.status, StatusCode::UNAUTHORIZED, "the other browser's session ended");
    assert_eq!(
        app.client("198.51.100.41").log_in("ada@example.com", NEW_PASSWORD).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.audit_details("user.password.update").await,
        [r#"{"other_sessions_ended":1,"via":"change"}"#]
    );
    // Signed out, there is nothing to change.
    let stranger = app
        .client("198.51.100.42")
        .call("/_fn/password/change", &[("current_password", PASSWORD), ("new_password", NEW_PASSWORD)])
        .await;
    assert_eq!(stranger.status, StatusCode::UNAUTHORIZED);
}
