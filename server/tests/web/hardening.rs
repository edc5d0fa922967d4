//! What an attacker tries first: parallel password guesses, forged
//! `X-Forwarded-For`, absurd page numbers, oversized bodies, framing and caching.

use std::net::SocketAddr;

use axum::{body::Body, extract::ConnectInfo, Router};
use http::{header, Request, StatusCode};
use serde_json::json;
use tower::ServiceExt;

use crate::common::{TestApp, PASSWORD};

crate::on_both_databases!(
    parallel_wrong_passwords_get_at_most_five_checks,
    a_forged_forwarded_for_neither_escapes_the_throttle_nor_the_audit_log,
    absurd_pages_are_refused_naming_the_field,
    oversized_bodies_are_refused_in_json,
    responses_carry_security_headers,
    open_sign_ups_are_limited_per_address,
    the_bundle_is_sent_compressed_and_kept_for_good,
    readiness_says_what_it_checked,
    logs_are_json_lines_when_asked,
    every_answer_carries_a_request_id,
);

fn log_in_request(
    email: &str,
    password: &str,
    peer: SocketAddr,
    forwarded_for: Option<&str>,
) -> Request<Body> {
    let mut request = Request::post("/_fn/log_in")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin");
    if let Some(forwarded) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded);
    }
    let body = format!("email={}&password={}", email.replace('@', "%40"), password.replace(' ', "+"));
    let mut request = request.body(Body::from(body)).unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

/// Sends all requests at once; their statuses in order.
async fn all_at_once(router: &Router, requests: Vec<Request<Body>>) -> Vec<StatusCode> {
    let tasks: Vec<_> = requests.into_iter().map(|r| tokio::spawn(router.clone().oneshot(r))).collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap().unwrap().status());
    }
    statuses
}

fn count(statuses: &[StatusCode], status: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

async fn parallel_wrong_passwords_get_at_most_five_checks(app: TestApp) {
    app.client("203.0.113.7").sign_up("Ada", "ada@example.com", PASSWORD).await;
    let peer: SocketAddr = "198.51.100.7:40000".parse().unwrap();
    let guesses = (0..40)
        .map(|i| log_in_request("ada@example.com", &format!("guess number {i}"), peer, None))
        .collect();
    let statuses = all_at_once(&app.router, guesses).await;
    let (checked, throttled) =
        (count(&statuses, StatusCode::UNAUTHORIZED), count(&statuses, StatusCode::TOO_MANY_REQUESTS));
    println!("40 parallel wrong passwords: {checked} checked (401), {throttled} throttled (429)");
    assert!(checked <= 5, "at most 5 password checks, got {checked}: {statuses:?}");
    assert_eq!(checked + throttled, 40, "nothing else, no server error: {statuses:?}");
    let right =
        app.router.clone().oneshot(log_in_request("ada@example.com", PASSWORD, peer, None)).await.unwrap();
    assert_eq!(
        right.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "locked for the window, even with the right password"
    );
}

async fn a_forged_forwarded_for_neither_escapes_the_throttle_nor_the_audit_log(app: TestApp) {
    app.client("203.0.113.7").sign_up("Ada", "ada@example.com", PASSWORD).await;
    let mut state = app.state.clone();
    state.set().trusted_proxies = 1;
    let behind_proxy = server::router(state, false);
    let proxy: SocketAddr = "10.0.0.2:40000".parse().unwrap();
    // Each attempt forges a new left-most address; our proxy appended the real one.
    let mut statuses = Vec::new();
    for i in 0..52 {
        let forged = format!("192.0.2.{}, 203.0.113.99", i % 250);
        let request =
            log_in_request(&format!("nobody{i}@example.com"), "wrong password!", proxy, Some(&forged));
        statuses.push(behind_proxy.clone().oneshot(request).await.unwrap().status());
    }
    assert_eq!(count(&statuses[..50], StatusCode::UNAUTHORIZED), 50);
    assert_eq!(
        &statuses[50..],
        [StatusCode::TOO_MANY_REQUESTS; 2],
        "the real address is throttled: {statuses:?}"
    );

    let request = log_in_request("ada@example.com", PASSWORD, proxy, Some("6.6.6.6, 198.51.100.23"));
    assert_eq!(behind_proxy.clone().oneshot(request).await.unwrap().status(), StatusCode::OK);
    let (ip,): (Option<String>,) =
        sqlx::query_as("SELECT ip FROM audit_events WHERE action = 'user.log_in' ORDER BY id DESC LIMIT 1")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(ip.as_deref(), Some("198.51.100.23"), "the audit log records what our proxy saw");
}

async fn absurd_pages_are_refused_naming_the_field(app: TestApp) {
    let org = app.organization("ada@example.com", "Engines").await;
    let key = app.admin_key(&org, "ada@example.com").await;
    for path in ["/api/admin/workspaces", "/api/admin/users", "/api/admin/user-groups"] {
        for page in ["9223372036854775807", "4611686018427387905"] {
            let answer = app.api("GET", &format!("{path}?page={page}&page_size=2"), &key, None).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}?page={page}: {}", answer.body);
            assert_eq!(answer.json()["error"]["param"], "page", "{path}");
        }
        let far = app.api("GET", &format!("{path}?page=1000000&page_size=2"), &key, None).await;
        assert_eq!(far.status, StatusCode::OK, "{path}: a far page is just empty: {}", far.body);
    }
    // The audit log pages by cursor, an event of the log: no other number, and no huge limit.
    let far = app.api("GET", "/api/admin/audit-logs?cursor=9223372036854775807&sort=asc", &key, None).await;
    assert_eq!(
        (far.status, far.json()["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("cursor"))
    );
    let huge = app.api("GET", "/api/admin/audit-logs?limit=9223372036854775807", &key, None).await;
    assert_eq!(huge.status, StatusCode::BAD_REQUEST);
    assert_eq!(huge.json()["error"]["param"], "limit");
}

async fn oversized_bodies_are_refused_in_json(app: TestApp) {
    let org = app.organization("ada@example.com", "Engines").await;
    let key = app.admin_key(&org, "ada@example.com").await;
    let huge = "x".repeat(server::hardening::MAX_ADMIN_API_BODY + 1);
    let answer = app.api("POST", "/api/admin/user-groups", &key, Some(json!({ "name": huge }))).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.json()["error"]["code"], "request_too_large");

    let huge = "x".repeat(server::hardening::MAX_GATEWAY_BODY + 1);
    let body = json!({ "model": "mistral-small-latest", "messages": [{ "role": "user", "content": huge }] });
    let answer = app.gateway("POST", "/v1/chat/completions", "chy_ws_x", Some(body)).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.json()["error"]["code"], "request_too_large");
}

async fn responses_carry_security_headers(app: TestApp) {
    let mut ada = app.client("203.0.113.7");
    let page = ada.get("/login").await;
    assert_eq!(page.status, StatusCode::OK);
    let csp = page.header("content-security-policy").expect("pages have a CSP").to_string();
    let nonce = csp.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).expect("a script nonce");
    assert!(page.body.contains(&format!("nonce=\"{nonce}\"")), "the hydration script carries the nonce");
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("'wasm-unsafe-eval'"), "{csp}");
    for (name, value) in [
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(page.header(name), Some(value), "{name}");
    }
    assert_eq!(page.header("strict-transport-security"), None, "served over http");

    let signed_up = ada.sign_up("Ada", "ada@example.com", PASSWORD).await;
    assert_eq!(signed_up.header("cache-control"), Some("no-store"), "server functions are never cached");
    let org = app.organization("bob@example.com", "Looms").await;
    let key = app.admin_key(&org, "bob@example.com").await;
    let body = json!({ "workspace_uuid": org.default_workspace, "user_id": org.admin_id, "name": "ci" });
    let created = app.api("POST", "/api/admin/api-keys", &key, Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.header("cache-control"), Some("no-store"), "a new key's secret is never cached");

    let over_https = server::router(app.state.clone(), true);
    let request = Request::get("/healthz").body(Body::empty()).unwrap();
    let answer = over_https.oneshot(request).await.unwrap();
    assert!(answer.headers().contains_key("strict-transport-security"));
}

async fn open_sign_ups_are_limited_per_address(app: TestApp) {
    let limit = app::server::throttle::SIGN_UPS_PER_CLIENT;
    for i in 0..limit {
        let answer =
            app.client("203.0.113.80").sign_up("Bot", &format!("bot{i}@example.com"), PASSWORD).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    let refused = app.client("203.0.113.80").sign_up("Bot", "one-more@example.com", PASSWORD).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.body);
    assert!(refused.header("retry-after").is_some());
    assert_eq!(app.count("users").await, limit as i64, "the refused sign-up wrote nothing");
    let elsewhere = app.client("198.51.100.80").sign_up("Ada", "ada@example.com", PASSWORD).await;
    assert_eq!(elsewhere.status, StatusCode::OK, "another address signs up");
}

/// The release bundle: hashed names, a brotli and a gzip copy of each file.
async fn the_bundle_is_sent_compressed_and_kept_for_good(app: TestApp) {
    let site = std::env::temp_dir().join(format!("chancery-site-{}", uuid::Uuid::new_v4().simple()));
    let pkg = site.join("pkg");
    std::fs::create_dir_all(pkg.join("snippets/leptos")).unwrap();
    std::fs::write(pkg.join("chancery.Abc123.wasm"), b"\0asm plain").unwrap();
    std::fs::write(pkg.join("chancery.Abc123.wasm.br"), b"brotli bytes").unwrap();
    std::fs::write(pkg.join("chancery.Abc123.wasm.gz"), b"gzip bytes").unwrap();
    std::fs::write(pkg.join("snippets/leptos/inline0.js"), b"export {}").unwrap();
    let mut state = app.state.clone();
    state.set().leptos_options.site_root = site.to_string_lossy().into_owned().into();
    state.set().leptos_options.hash_files = true;
    let router = server::router(state, false);
    let get = |path: &str, encodings: Option<&str>| {
        let mut request = Request::get(path);
        if let Some(encodings) = encodings {
            request = request.header(header::ACCEPT_ENCODING, encodings);
        }
        router.clone().oneshot(request.body(Body::empty()).unwrap())
    };
    let body = |response: axum::response::Response| async {
        axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap().to_vec()
    };

    let brotli = get("/pkg/chancery.Abc123.wasm", Some("gzip, deflate, br")).await.unwrap();
    assert_eq!(brotli.status(), StatusCode::OK);
    assert_eq!(brotli.headers()[header::CONTENT_ENCODING], "br");
    assert_eq!(brotli.headers()[header::CONTENT_TYPE], "application/wasm");
    assert_eq!(brotli.headers()[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    assert_eq!(brotli.headers()[header::VARY], "accept-encoding");
    assert_eq!(body(brotli).await, b"brotli bytes");

    let gzip = get("/pkg/chancery.Abc123.wasm", Some("gzip")).await.unwrap();
    assert_eq!(gzip.headers()[header::CONTENT_ENCODING], "gzip");
    assert_eq!(body(gzip).await, b"gzip bytes");

    let plain = get("/pkg/chancery.Abc123.wasm", None).await.unwrap();
    assert!(!plain.headers().contains_key(header::CONTENT_ENCODING));
    assert_eq!(body(plain).await, b"\0asm plain");

    // A snippet keeps its name when its content changes: asked again each time.
    let snippet = get("/pkg/snippets/leptos/inline0.js", None).await.unwrap();
    assert_eq!(snippet.status(), StatusCode::OK);
    assert_eq!(snippet.headers()[header::CACHE_CONTROL], "no-cache");
    // What is not there is not remembered.
    let missing = get("/pkg/chancery.Other.wasm", Some("br")).await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(!missing.headers().contains_key(header::CACHE_CONTROL));
    std::fs::remove_dir_all(site).unwrap();
}

/// `/readyz`: the database migrated, the snapshot fresh, Redis not needed here;
/// a database missing a migration is not ready, and says so.
async fn readiness_says_what_it_checked(app: TestApp) {
    let readyz = || async {
        let request = Request::get("/readyz").body(Body::empty()).unwrap();
        let answer = app.router.clone().oneshot(request).await.unwrap();
        let status = answer.status();
        let body = axum::body::to_bytes(answer.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice::<serde_json::Value>(&body).unwrap())
    };
    let (status, ready) = readyz().await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["checks"]["database"], "ok");
    assert!(ready["checks"]["snapshot"].as_str().unwrap().starts_with("up to date"), "{ready}");
    assert_eq!(ready["checks"]["redis"], "not used (counters in this process)");

    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)")
        .execute(app.db.pool())
        .await
        .unwrap();
    let (status, not_ready) = readyz().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(not_ready["status"], "not ready");
    assert_eq!(not_ready["checks"]["database"], "1 of this build's migrations not applied");
}

/// `CHANCERY_LOG_FORMAT=json`: each log line of `chancery serve` is a JSON object.
async fn logs_are_json_lines_when_asked(app: TestApp) {
    use std::{
        io::{BufRead, BufReader},
        process::{Command, Stdio},
    };
    let dir = std::env::temp_dir().join(format!("chancery-json-logs-{}", uuid::Uuid::new_v4().simple()));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chancery"))
        .arg("serve")
        .env("DATABASE_URL", &app.database_url)
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env("LEPTOS_OUTPUT_NAME", "chancery")
        .env("CHANCERY_SPOOL_DIR", dir.join("spool"))
        .env("CHANCERY_SECRET_KEY_FILE", dir.join("secret.key"))
        .env("RUST_LOG", "info,server::telemetry=debug")
        .env("CHANCERY_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the chancery binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok);
    let next_line_with = move |text: &'static str| {
        let found = lines.by_ref().find(|line| line.contains(text));
        (found, lines)
    };
    let seconds = std::time::Duration::from_secs(30);
    let (listening, lines) = tokio::time::timeout(
        seconds,
        tokio::task::spawn_blocking(move || next_line_with("Chancery is listening")),
    )
    .await
    .expect("it started within 30 s")
    .unwrap();
    // A request with an id of the caller's: the lines written while answering carry it.
    let answer = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .header("x-request-id", "json-logs-1")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.headers()["x-request-id"], "json-logs-1");
    let mut lines = lines;
    let answered = tokio::time::timeout(
        seconds,
        tokio::task::spawn_blocking(move || lines.find(|line| line.contains("json-logs-1"))),
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let line = listening.expect("it logged where it listens");
    let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(event["level"], "INFO", "{line}");
    assert_eq!(event["fields"]["message"], "Chancery is listening", "{line}");
    assert_eq!(event["fields"]["address"], format!("127.0.0.1:{port}"), "{line}");
    let line = answered.expect("answered within 30 s").unwrap().expect("a line about the request");
    let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(event["fields"]["message"], "answered", "{line}");
    assert_eq!(event["fields"]["status"], 200, "{line}");
    assert_eq!(event["span"]["id"], "json-logs-1", "{line}");
    assert_eq!(event["span"]["route"], "/healthz", "{line}");
}

/// Every answer carries a request id: the caller's when sane, a new one otherwise.
async fn every_answer_carries_a_request_id(app: TestApp) {
    let get = |id: Option<String>| {
        let mut request = http::Request::builder().uri("/healthz");
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        let request = request.body(axum::body::Body::empty()).unwrap();
        let mut client = app.client("192.0.2.70");
        async move { client.send(request).await.header("x-request-id").map(str::to_owned) }
    };
    let fresh = get(None).await.expect("an id");
    assert!(fresh.len() == 32 && fresh.bytes().all(|b| b.is_ascii_hexdigit()), "{fresh}");
    assert_ne!(get(None).await.unwrap(), fresh, "one per request");
    assert_eq!(get(Some("lb-7f3a".into())).await.as_deref(), Some("lb-7f3a"));
    let too_long = get(Some("x".repeat(200))).await.unwrap();
    assert_eq!(too_long.len(), 32, "replaced: {too_long}");
}
