//! Test harness: a fresh database per test (SQLite file or PostgreSQL
//! database), the real router, and a cookie-keeping client.

use std::{future::Future, net::SocketAddr, sync::mpsc::RecvTimeoutError, time::Duration};

use app::server::{
    db::Db,
    gateway::{shared::SharedCounters, Gateway},
    sealed::SealingKey,
    state::AppState,
};
use axum::{body::Body, extract::ConnectInfo, Router};
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use leptos::config::LeptosOptions;
use tower::ServiceExt;

/// Declares each listed test twice: `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    $crate::common::run(|| async { super::$name($crate::common::TestApp::sqlite().await).await })
                }
            )+
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    $crate::common::run(|| async { super::$name($crate::common::TestApp::postgres().await).await })
                }
            )+
        }
    };
}

/// The longest a test may take: the slowest takes about 20 s on 2 busy cores.
const TEST_LIMIT: Duration = Duration::from_secs(300);

/// Runs a test as `#[tokio::test]` would, on a thread of its own watched from
/// the harness's: a test that hangs (even blocked outside its runtime) fails by
/// name instead of holding the whole run until CI's limit, and blocking work it
/// leaves behind cannot keep it from ending.
pub fn run<F: Future<Output = ()>>(test: impl FnOnce() -> F + Send + 'static) {
    let (finished, outcome) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a test runtime");
        runtime.block_on(test());
        runtime.shutdown_timeout(Duration::from_secs(5));
        let _ = finished.send(());
    });
    match outcome.recv_timeout(TEST_LIMIT) {
        Ok(()) => {}
        // The test panicked: fail with its message.
        Err(RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the test thread ends by sending or by panicking"),
        },
        Err(RecvTimeoutError::Timeout) => panic!("the test did not finish within {TEST_LIMIT:?}"),
    }
}

pub struct TestApp {
    pub router: Router,
    pub db: Db,
    /// The database's URL, for a `chancery` process of the test's own.
    pub database_url: String,
    pub state: AppState,
    _database: TestDatabase,
}

impl TestApp {
    /// Calls the Admin API with `key`, sending `body` as JSON.
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<serde_json::Value>,
    ) -> TestResponse {
        let request = Request::builder().method(method).uri(path).header("x-api-key", key);
        let request = match body {
            Some(body) => {
                request.header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string()))
            }
            None => request.body(Body::empty()),
        };
        self.client("192.0.2.50").send(request.unwrap()).await
    }

    pub async fn sqlite() -> Self {
        let path = std::env::temp_dir().join(format!("chancery-test-{}.db", uuid::Uuid::new_v4().simple()));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::start(&url, TestDatabase::SqliteFile(path)).await
    }

    pub async fn postgres() -> Self {
        let server = postgres_server_url();
        let name = format!("chancery_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Db::connect(&format!("{server}/postgres"))
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL must be reachable at {server} for these tests: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(admin.pool())
            .await
            .expect("create test database");
        admin.close().await;
        Self::start(&format!("{server}/{name}"), TestDatabase::Postgres { server, name }).await
    }

    async fn start(url: &str, database: TestDatabase) -> Self {
        let db = Db::connect_and_migrate(url).await.expect("connect and migrate");
        let state = app_state(&db, None).await;
        Self {
            router: server::router(state.clone(), false),
            db,
            database_url: url.to_string(),
            state,
            _database: database,
        }
    }

    /// Another replica of this Chancery: the same database, a gateway of its own
    /// whose counters live in Redis under `counters`.
    pub async fn replica(&self, counters: SharedCounters) -> Replica {
        let state = app_state(&self.db, Some(counters)).await;
        Replica { router: server::router(state.clone(), false), state }
    }

    /// Another replica of this Chancery counting in its own process, whose
    /// meter holds at most `queue` usage events in memory.
    pub async fn replica_metering(&self, queue: usize) -> Replica {
        let state = app_state_metering(&self.db, None, queue).await;
        Replica { router: server::router(state.clone(), false), state }
    }

    /// From now on the gateway forwards to `upstream` instead of its mock.
    pub fn use_upstream(&mut self, upstream: app::server::gateway::Upstream) {
        self.state = self.state.clone().with_upstream(Some(upstream));
        self.router = server::router(self.state.clone(), false);
    }

    /// The details of every `action` event, oldest first (empty text for none).
    pub async fn audit_details(&self, action: &str) -> Vec<String> {
        let rows: Vec<(Option<String>,)> =
            sqlx::query_as("SELECT details FROM audit_events WHERE action = $1 ORDER BY id")
                .bind(action)
                .fetch_all(self.db.pool())
                .await
                .unwrap();
        rows.into_iter().map(|(details,)| details.unwrap_or_default()).collect()
    }

    /// From now on `/metrics` answers whoever sends `token`.
    pub fn use_metrics_token(&mut self, token: &str) {
        let metrics = server::telemetry::metrics_routes(
            self.state.clone(),
            server::telemetry::MetricsAccess::Token(token.into()),
        );
        self.router = server::router(self.state.clone(), false).merge(metrics);
    }

    /// From now on audit checkpoints are verified with the public half of `signer`.
    pub fn use_audit_signer(&mut self, signer: &app::server::audit_chain::AuditSigner) {
        self.state = self.state.clone().with_audit_key(Some(signer.verifying_key()));
        self.router = server::router(self.state.clone(), false);
    }

    /// From now on people may sign up on their own as `policy` says.
    pub fn use_sign_up_policy(&mut self, policy: app::model::SignUpPolicy) {
        self.state = self.state.clone().with_sign_up_policy(policy);
        self.router = server::router(self.state.clone(), false);
    }

    /// Calls the gateway with `key` as the bearer token.
    pub async fn gateway(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<serde_json::Value>,
    ) -> TestResponse {
        self.client("192.0.2.60").send(gateway_request(method, path, key, body)).await
    }

    /// A new client with an empty cookie jar, seen as coming from `ip`.
    pub fn client(&self, ip: &str) -> Client<'_> {
        Client { app: self, cookie: None, ip: format!("{ip}:40000").parse().expect("ip") }
    }

    pub async fn count(&self, table: &str) -> i64 {
        let (n,): (i64,) =
            sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(self.db.pool()).await.unwrap();
        n
    }

    /// `(action, actor_label, target_type, ip)` of every audit event, oldest first.
    pub async fn audit_trail(&self) -> Vec<(String, String, String, Option<String>)> {
        sqlx::query_as("SELECT action, actor_label, target_type, ip FROM audit_events ORDER BY id")
            .fetch_all(self.db.pool())
            .await
            .unwrap()
    }
}

async fn app_state(db: &Db, counters: Option<SharedCounters>) -> AppState {
    app_state_metering(db, counters, app::server::gateway::meter::QUEUE_CAPACITY).await
}

async fn app_state_metering(db: &Db, counters: Option<SharedCounters>, queue: usize) -> AppState {
    let options = LeptosOptions::builder().output_name("chancery").site_root("target/site").build();
    let spool_dir = std::env::temp_dir().join(format!("chancery-spool-{}", uuid::Uuid::new_v4().simple()));
    let metering = app::server::gateway::Metering { spool_dir, queue };
    let gateway = Gateway::start(db.clone(), counters, &metering).await.expect("gateway");
    AppState::new(options, db.clone(), gateway, 0, PUBLIC_URL.into(), SealingKey::random())
}

fn gateway_request(method: &str, path: &str, key: &str, body: Option<serde_json::Value>) -> Request<Body> {
    let request =
        Request::builder().method(method).uri(path).header(header::AUTHORIZATION, format!("Bearer {key}"));
    match body {
        Some(body) => {
            request.header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string()))
        }
        None => request.body(Body::empty()),
    }
    .unwrap()
}

/// A second Chancery process on the same database (see `TestApp::replica`).
pub struct Replica {
    pub router: Router,
    pub state: AppState,
}

impl Replica {
    /// From now on this replica forwards to `upstream` instead of its mock.
    pub fn use_upstream(&mut self, upstream: app::server::gateway::Upstream) {
        self.state = self.state.clone().with_upstream(Some(upstream));
        self.router = server::router(self.state.clone(), false);
    }

    /// Calls this replica's gateway with `key` as the bearer token.
    pub async fn gateway(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<serde_json::Value>,
    ) -> TestResponse {
        let mut request = gateway_request(method, path, key, body);
        request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 61], 40000))));
        TestResponse::read(self.router.clone().oneshot(request).await.expect("router is infallible")).await
    }
}

/// Redis for the tests of shared counters; each test names its own key prefix.
pub fn redis_url() -> String {
    std::env::var("CHANCERY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn postgres_server_url() -> String {
    std::env::var("CHANCERY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
        .trim_end_matches('/')
        .to_string()
}

enum TestDatabase {
    SqliteFile(std::path::PathBuf),
    Postgres { server: String, name: String },
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match self {
            Self::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Self::Postgres { server, name } => {
                let (server, name) = (server.clone(), name.clone());
                // Drop runs inside the test's runtime; drop the database from a thread of its own.
                let _ = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                    runtime.block_on(async {
                        if let Ok(admin) = Db::connect(&format!("{server}/postgres")).await {
                            let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                            let _ = sqlx::query(&drop).execute(admin.pool()).await;
                            admin.close().await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// A browser-like client: keeps the session cookie between requests.
pub struct Client<'a> {
    app: &'a TestApp,
    pub cookie: Option<String>,
    ip: SocketAddr,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl TestResponse {
    async fn read(response: http::Response<Body>) -> Self {
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Self { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Client<'_> {
    /// Calls a server function the way the hydrated page does (form-encoded POST, same origin).
    pub async fn call(&mut self, path: &str, form: &[(&str, &str)]) -> TestResponse {
        let body = serde_urlencoded(form);
        let request = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin")
            .body(Body::from(body))
            .unwrap();
        self.send(request).await
    }

    /// Posts a form the way a browser does before the page is interactive (or
    /// with JavaScript off): asking for HTML, from `page` of this site.
    pub async fn post_form(&mut self, path: &str, page: &str, form: &[(&str, &str)]) -> TestResponse {
        let request = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "text/html,application/xhtml+xml")
            .header(header::ORIGIN, PUBLIC_URL)
            .header(header::REFERER, format!("{PUBLIC_URL}{page}"))
            .header("sec-fetch-site", "same-origin")
            .body(Body::from(serde_urlencoded(form)))
            .unwrap();
        self.send(request).await
    }

    pub async fn get(&mut self, path: &str) -> TestResponse {
        self.send(Request::get(path).header(header::ACCEPT, "text/html").body(Body::empty()).unwrap()).await
    }

    pub async fn send(&mut self, mut request: Request<Body>) -> TestResponse {
        request.extensions_mut().insert(ConnectInfo(self.ip));
        if let Some(cookie) = &self.cookie {
            request.headers_mut().insert(header::COOKIE, cookie.parse().unwrap());
        }
        let response = self.app.router.clone().oneshot(request).await.expect("router is infallible");
        if let Some(set_cookie) = response.headers().get(header::SET_COOKIE) {
            let pair = set_cookie.to_str().unwrap().split(';').next().unwrap().to_string();
            // An emptied cookie (log-out) leaves the jar empty.
            self.cookie = pair.split_once('=').filter(|(_, v)| !v.is_empty()).map(|_| pair.clone());
        }
        TestResponse::read(response).await
    }

    pub async fn sign_up(&mut self, name: &str, email: &str, password: &str) -> TestResponse {
        self.call("/_fn/sign_up", &[("name", name), ("email", email), ("password", password)]).await
    }

    pub async fn log_in(&mut self, email: &str, password: &str) -> TestResponse {
        self.call("/_fn/log_in", &[("email", email), ("password", password)]).await
    }

    pub async fn create_organization(&mut self, name: &str) -> TestResponse {
        self.call("/_fn/create_organization", &[("name", name)]).await
    }

    pub async fn overview(&mut self) -> TestResponse {
        self.call("/_fn/get_admin_overview", &[]).await
    }

    pub async fn landing(&mut self) -> TestResponse {
        self.call("/_fn/get_landing", &[]).await
    }
}

fn serde_urlencoded(form: &[(&str, &str)]) -> String {
    form.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub const PUBLIC_URL: &str = "http://chancery.test";
pub const PASSWORD: &str = "correct horse battery staple";

/// An organization with its first Admin signed in, for tests that need people in it.
pub struct Org<'a> {
    pub admin: Client<'a>,
    pub id: app::ids::OrgId,
    pub admin_id: String,
    pub default_workspace: String,
}

impl TestApp {
    /// `admin_email` signs up and creates `name`; the first name is the email's local part.
    pub async fn organization(&self, admin_email: &str, name: &str) -> Org<'_> {
        let mut admin = self.client("203.0.113.7");
        admin.sign_up(admin_email.split('@').next().unwrap(), admin_email, PASSWORD).await;
        // As people do, the Admin opens the link that confirms their address.
        let token = self.emailed_token(admin_email).await;
        let confirmed = admin.call("/_fn/email/verify", &[("token", &token)]).await;
        assert_eq!(confirmed.status, http::StatusCode::OK, "{}", confirmed.body);
        admin.create_organization(name).await;
        let overview = admin.overview().await.json();
        Org {
            id: overview["org"]["id"].as_str().unwrap().parse().unwrap(),
            admin_id: overview["user"]["id"].as_str().unwrap().to_string(),
            default_workspace: overview["workspaces"][0]["id"].as_str().unwrap().to_string(),
            admin,
        }
    }

    /// The token of the newest invitation emailed to `email`, from the outbox.
    pub async fn emailed_token(&self, email: &str) -> String {
        let (body,): (String,) = sqlx::query_as(
            "SELECT body FROM outbox WHERE to_email = $1 ORDER BY created_at DESC, id LIMIT 1",
        )
        .bind(email)
        .fetch_one(self.db.pool())
        .await
        .expect("an email was queued");
        let link = body.split_whitespace().find(|w| w.starts_with(PUBLIC_URL)).expect("a link in the email");
        link.rsplit('/').next().unwrap().to_string()
    }

    /// Invites `email` into `org` with `roles` (`admin`, `billing`, `member`) and
    /// accepts as a newcomer. Returns their signed-in client and user id.
    pub async fn join(&self, org: &mut Org<'_>, email: &str, roles: &[&str]) -> (Client<'_>, String) {
        let fields: Vec<String> = roles.iter().map(|r| format!("role_{r}")).collect();
        let mut form = vec![("email", email)];
        form.extend(fields.iter().map(|f| (f.as_str(), "on")));
        let invited = org.admin.call("/_fn/members/invite", &form).await;
        assert_eq!(invited.status, StatusCode::OK, "{}", invited.body);
        let token = self.emailed_token(email).await;
        let mut person = self.client("198.51.100.30");
        let name = email.split('@').next().unwrap();
        let joined = person
            .call("/_fn/invitation/sign_up", &[("token", &token), ("name", name), ("password", PASSWORD)])
            .await;
        assert!(joined.status.is_success() || joined.status.is_redirection(), "{}", joined.body);
        let id = person.overview().await.json()["user"]["id"].as_str().unwrap().to_string();
        (person, id)
    }

    /// An Admin API key of `org`, made by its admin through a new Enterprise Account.
    pub async fn admin_key(&self, org: &Org<'_>, admin_email: &str) -> String {
        use app::server::{
            actor::{Actor, Client},
            admin_keys, enterprise,
        };
        let admin = Actor::User { id: org.admin_id.parse().unwrap(), email: admin_email.into() };
        let client = Client::default();
        let ea =
            enterprise::create(&self.db, &Actor::Operator, &client, "Enterprise", &[org.id], admin_email)
                .await
                .expect("enterprise account")
                .id;
        let new = admin_keys::NewAdminKey { name: "tests".into(), org_id: org.id, expires_on: String::new() };
        admin_keys::create(&self.db, &admin, &client, ea, new).await.expect("admin key").key
    }
}
