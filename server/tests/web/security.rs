//! Cross-site requests, cookies and the append-only audit log.

use axum::body::Body;
use http::{header, Request, StatusCode};

use crate::common::{TestApp, PASSWORD};

crate::on_both_databases!(
    cross_site_posts_to_server_functions_are_refused,
    session_cookie_is_http_only_and_same_site_lax,
    audit_events_cannot_be_changed_or_deleted,
    admin_panel_redirects_visitors_without_a_session_to_log_in,
);

fn sign_up_request(origin_headers: &[(&str, &str)]) -> Request<Body> {
    let mut request = Request::post("/_fn/sign_up")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "chancery.example");
    for (name, value) in origin_headers {
        request = request.header(*name, *value);
    }
    request
        .body(Body::from(format!("name=Mallory&email=mallory%40example.com&password={}", "p".repeat(16))))
        .unwrap()
}

async fn cross_site_posts_to_server_functions_are_refused(app: TestApp) {
    let mut client = app.client("203.0.113.66");
    let cross_site = client.send(sign_up_request(&[("sec-fetch-site", "cross-site")])).await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    let foreign_origin = client.send(sign_up_request(&[("origin", "https://evil.example")])).await;
    assert_eq!(foreign_origin.status, StatusCode::FORBIDDEN);
    let says_nothing = client.send(sign_up_request(&[])).await;
    assert_eq!(says_nothing.status, StatusCode::FORBIDDEN, "browsers always say where a POST comes from");
    assert_eq!(app.count("users").await, 0, "nothing written by a refused request");

    let same_origin = client.send(sign_up_request(&[("origin", "http://chancery.example")])).await;
    assert_eq!(same_origin.status, StatusCode::OK, "{}", same_origin.body);
    assert_eq!(app.count("users").await, 1);
}

async fn session_cookie_is_http_only_and_same_site_lax(app: TestApp) {
    let mut ada = app.client("203.0.113.7");
    let response = ada.sign_up("Ada", "ada@example.com", PASSWORD).await;
    let cookie = response.header("set-cookie").unwrap().to_string();
    assert!(cookie.starts_with("chancery_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    let (stored,): (String,) =
        sqlx::query_as("SELECT data FROM sessions").fetch_one(app.db.pool()).await.unwrap();
    assert!(!stored.contains(PASSWORD), "the session holds ids, never the password");
    let session_id = cookie.split(';').next().unwrap().trim_start_matches("chancery_session=");
    let (ids,): (String,) = sqlx::query_as("SELECT id FROM sessions").fetch_one(app.db.pool()).await.unwrap();
    assert!(!ids.contains(session_id), "only a hash of the session id is stored");
}

async fn audit_events_cannot_be_changed_or_deleted(app: TestApp) {
    app.client("203.0.113.7").sign_up("Ada", "ada@example.com", PASSWORD).await;
    let update = sqlx::query("UPDATE audit_events SET action = 'nothing'").execute(app.db.pool()).await;
    assert!(update.is_err(), "UPDATE must be refused");
    let delete = sqlx::query("DELETE FROM audit_events").execute(app.db.pool()).await;
    assert!(delete.is_err(), "DELETE must be refused");
    assert_eq!(app.audit_trail().await[0].0, "user.create");
}

async fn admin_panel_redirects_visitors_without_a_session_to_log_in(app: TestApp) {
    let mut visitor = app.client("203.0.113.7");
    let page = visitor.get("/admin").await;
    assert!(page.status.is_redirection(), "status {}", page.status);
    assert_eq!(page.header("location"), Some("/login"));

    let login = visitor.get("/login").await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.body.contains("Log in"), "server-rendered log-in form");
    assert_eq!(visitor.get("/no-such-page").await.status, StatusCode::NOT_FOUND);
}
