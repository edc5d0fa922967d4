//! Enterprise size: the Admin Panel's pages and the Admin API's lists of an
//! Organization with `BENCH_MEMBERS` members (10,000 unless told),
//! `BENCH_AUDIT` audit events (1,000,000) and `BENCH_KEYS` workspace keys
//! (200,000), and 5,000 hourly usage roll-ups over 30 days, against the same
//! requests to a small Organization (10 members, 1,000 events, 10 keys, 50
//! roll-ups) in the same run. Each request
//! runs through the real router, signed in or with an Admin API key; it prints
//! p50 and p95 of `ROUNDS` requests, the bytes answered, and p95's ratio to
//! the small Organization's.
//!
//! `cargo bench -p server --bench size`: SQLite in a temporary file, then
//! PostgreSQL in a temporary database when `CHANCERY_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432`) answers.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

mod common;

use app::{
    ids::{OrgId, UserId, WorkspaceId},
    server::{
        actor::{Actor, Client},
        admin_keys,
        db::Db,
        enterprise,
        gateway::{Gateway, Metering},
        sealed::SealingKey,
        state::AppState,
    },
    time::Timestamp,
};
use axum::{body::Body, extract::ConnectInfo, Router};
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use leptos::config::LeptosOptions;
use tower::ServiceExt;

const ROUNDS: usize = 20;
const ROWS_PER_INSERT: usize = 500;
const PASSWORD: &str = "bench password 1";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env =
        |name: &str, default: usize| std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    let size = Size {
        members: env("BENCH_MEMBERS", 10_000),
        audit_events: env("BENCH_AUDIT", 1_000_000),
        keys: env("BENCH_KEYS", 200_000),
        usage_rows: 5_000,
    };

    common::on_both_engines(async |engine, db| measure(engine, db, size).await).await
}

#[derive(Clone, Copy)]
struct Size {
    members: usize,
    audit_events: usize,
    keys: usize,
    /// Hourly roll-ups over the last 30 days.
    usage_rows: usize,
}

/// An Organization to ask about: its Admin's session cookie, an Admin API key,
/// one of its members and its Default workspace.
struct Seeded {
    cookie: String,
    key: String,
    member: UserId,
    workspace: WorkspaceId,
}

/// A request measured, by name, as it is made to either Organization.
type Case = (&'static str, fn(&Seeded) -> Request<Body>);

/// What one request costs: p50, p95, and the bytes of its answer.
struct Cost {
    p50: Duration,
    p95: Duration,
    bytes: usize,
}

async fn measure(engine: &str, db: &Db, size: Size) -> anyhow::Result<()> {
    let router = router(db).await?;
    let started = Instant::now();
    let small = Size { members: 10, audit_events: 1_000, keys: 10, usage_rows: 50 };
    let small = seed(db, &router, "small", small).await?;
    let large = seed(db, &router, "large", size).await?;
    // As a database that has been running would have: statistics for the planner.
    sqlx::query("ANALYZE").execute(db.pool()).await?;
    println!(
        "\n{engine}: {} members, {} audit events, {} keys, {} usage roll-ups seeded in {:.1} s \
         (small: 10, 1,000, 10, 50)",
        size.members,
        size.audit_events,
        size.keys,
        size.usage_rows,
        started.elapsed().as_secs_f64()
    );
    println!("{:<46} {:>21} {:>29} {:>7}", "", "small p50 / p95, size", "at size p50 / p95, size", "p95 x");
    let cases: [Case; 13] = [
        ("/admin/members (page)", |s| page(s, "/admin/members")),
        ("GET /api/admin/users?page=1&page_size=50", |s| api(s, "/api/admin/users?page=1&page_size=50")),
        ("GET /api/admin/users/{id}", |s| api(s, &format!("/api/admin/users/{}", s.member))),
        ("workspace page, Default (page)", |s| page(s, &format!("/admin/workspaces/{}", s.workspace))),
        ("/admin/audit-log (page)", |s| page(s, "/admin/audit-log")),
        ("GET /api/admin/audit-logs?limit=50", |s| api(s, "/api/admin/audit-logs?limit=50")),
        ("GET /api/admin/audit-logs, one actor", |s| {
            api(s, &format!("/api/admin/audit-logs?limit=50&actor_user_uuid={}", s.member))
        }),
        ("GET /api/admin/audit-logs, one event type", |s| {
            api(s, "/api/admin/audit-logs?limit=50&event_type=workspace.update")
        }),
        ("GET /api/admin/api-keys?limit=50", |s| api(s, "/api/admin/api-keys?limit=50")),
        ("GET /api/admin/api-keys, one workspace", |s| {
            api(s, &format!("/api/admin/api-keys?limit=50&workspace_uuid={}", s.workspace))
        }),
        ("/_fn/api_keys (a workspace page's keys)", |s| {
            function(s, "/_fn/api_keys", &format!("workspace_id={}", s.workspace))
        }),
        ("/admin/usage, 30 days by key (page)", |s| page(s, "/admin/usage?range=30d&group=key")),
        ("/_fn/usage, 30 days by key (its data)", |s| function(s, "/_fn/usage", "range=30d&group=key")),
    ];
    for (what, request) in cases {
        let baseline = cost(&router, || request(&small)).await?;
        let at_size = cost(&router, || request(&large)).await?;
        println!(
            "{what:<46} {:>7} / {:>7}, {:>6} {:>9} / {:>9}, {:>8} {:>7.1}",
            shown(baseline.p50),
            shown(baseline.p95),
            bytes(baseline.bytes),
            shown(at_size.p50),
            shown(at_size.p95),
            bytes(at_size.bytes),
            at_size.p95.as_secs_f64() / baseline.p95.as_secs_f64()
        );
    }
    Ok(())
}

async fn router(db: &Db) -> anyhow::Result<Router> {
    let options = LeptosOptions::builder().output_name("chancery").site_root("target/site").build();
    let spool_dir = std::env::temp_dir().join(format!("chancery-spool-{}", uuid::Uuid::new_v4().simple()));
    let metering = Metering { spool_dir, queue: app::server::gateway::meter::QUEUE_CAPACITY };
    let gateway = Gateway::start(db.clone(), None, &metering).await?;
    let state =
        AppState::new(options, db.clone(), gateway, 0, "http://bench.test".into(), SealingKey::random());
    Ok(server::router(state, false))
}

/// An Organization named `name` of `size`: its Admin signed in, an Admin API
/// key, members in the Default workspace, and audit events, inserted in the
/// shapes the app writes.
async fn seed(db: &Db, router: &Router, name: &str, size: Size) -> anyhow::Result<Seeded> {
    let email = format!("{name}@bench.test");
    let org = common::organization_of(db, name, &email, PASSWORD).await?;
    let client = Client::default();
    let ea =
        enterprise::create(db, &Actor::Operator, &client, &format!("{name} EA"), &[org.id], &email).await?.id;
    let new = admin_keys::NewAdminKey { name: "bench".into(), org_id: org.id, expires_on: String::new() };
    let key = admin_keys::create(db, &org.admin, &client, ea, new).await?.key;
    let member = insert_members(db, org.id, org.workspace, name, size.members).await?;
    insert_audit_events(db, org.id, member, size.audit_events).await?;
    insert_keys(db, org.id, org.workspace, member, size.keys).await?;
    insert_usage(db, org.id, org.workspace, size.usage_rows).await?;
    let form = format!("email={}&password={}", email.replace('@', "%40"), PASSWORD.replace(' ', "+"));
    let log_in = Request::post("/_fn/log_in")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body(Body::from(form))?;
    let response = send(router, log_in).await?;
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow::anyhow!("log-in set no cookie: {}", response.status()))?
        .to_string();
    Ok(Seeded { cookie, key, member, workspace: org.workspace })
}

/// `count` members (the first an Admin, the others Members) of the Default
/// workspace; returns the last one.
async fn insert_members(
    db: &Db,
    org: OrgId,
    workspace: WorkspaceId,
    name: &str,
    count: usize,
) -> anyhow::Result<UserId> {
    let now = Timestamp::now().0;
    let ids: Vec<UserId> = (0..count).map(|_| UserId::new()).collect();
    let mut tx = db.pool().begin().await?;
    for chunk in ids.chunks(ROWS_PER_INSERT) {
        let list = |row: &dyn Fn(usize, &UserId) -> String| {
            chunk.iter().enumerate().map(|(n, id)| row(n, id)).collect::<Vec<_>>().join(", ")
        };
        let user = |n: usize, id: &UserId| {
            let email = format!("{name}-{}-{n}@bench.test", id.0.simple());
            format!(
                "('{id}', 'Person {n} {}', '{email}', '{email}', 'unused', {now}, NULL)",
                &id.0.simple().to_string()[..6]
            )
        };
        let statements = [
            format!("INSERT INTO users (id, name, email, email_normalized, password_hash, created_at, last_login_at) VALUES {}", list(&user)),
            format!("INSERT INTO org_members (org_id, user_id, created_at) VALUES {}", list(&|_, id| format!("('{org}', '{id}', {now})"))),
            format!("INSERT INTO org_member_roles (org_id, user_id, role) VALUES {}", list(&|_, id| format!("('{org}', '{id}', 'member')"))),
            format!("INSERT INTO workspace_members (workspace_id, user_id, role, created_at) VALUES {}", list(&|_, id| format!("('{workspace}', '{id}', 'member', {now})"))),
        ];
        for statement in statements {
            sqlx::query(&statement).execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;
    Ok(*ids.last().expect("at least one member"))
}

/// `count` events of the kinds admins cause, a second apart, ending now; one
/// in ten by `actor`, the others by the Admin API key.
async fn insert_audit_events(db: &Db, org: OrgId, actor: UserId, count: usize) -> anyhow::Result<()> {
    let now = Timestamp::now().0;
    let actions =
        ["workspace.update", "user.organization.role.update", "api_key.create", "rate_limit.rule.update"];
    let mut tx = db.pool().begin().await?;
    for first in (0..count).step_by(ROWS_PER_INSERT) {
        let rows = ROWS_PER_INSERT.min(count - first);
        let values: Vec<String> = (first..first + rows)
            .map(|n| {
                let at = now - (count - n) as i64 * 1000;
                let action = actions[n % actions.len()];
                let (actor_type, actor_id, label) = if n % 10 == 0 {
                    ("user", actor.to_string(), "someone@bench.test".to_string())
                } else {
                    ("admin_api_key", "bench-key".to_string(), "bench".to_string())
                };
                format!(
                    "('{org}', '{actor_type}', '{actor_id}', '{label}', '{action}', 'workspace', '{org}', \
                     '{{\"before\":{{\"name\":\"a\"}},\"after\":{{\"name\":\"b\"}}}}', '127.0.0.1', {at})"
                )
            })
            .collect();
        sqlx::query(&format!(
            "INSERT INTO audit_events (org_id, actor_type, actor_id, actor_label, action, target_type, target_id, \
             details, ip, created_at) VALUES {}",
            values.join(", ")
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// `count` keys of the Default workspace, made a second apart up to now, for `owner`.
async fn insert_keys(
    db: &Db,
    org: OrgId,
    workspace: WorkspaceId,
    owner: UserId,
    count: usize,
) -> anyhow::Result<()> {
    let now = Timestamp::now().0;
    let mut tx = db.pool().begin().await?;
    for first in (0..count).step_by(ROWS_PER_INSERT) {
        let values: Vec<String> = (first..count.min(first + ROWS_PER_INSERT))
            .map(|n| {
                let (id, public) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4().simple());
                let at = now - (count - n) as i64 * 1000;
                format!(
                    "('{id}', '{org}', '{workspace}', 'key {n}', '{public}', '{:064}', '{:04}', '{owner}', 'bench', {at})",
                    n,
                    n % 10_000
                )
            })
            .collect();
        sqlx::query(&format!(
            "INSERT INTO workspace_api_keys (id, org_id, workspace_id, name, public_id, secret_sha256, secret_last4, \
             owner_user_id, created_by_label, created_at) VALUES {}",
            values.join(", ")
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// `count` hourly roll-ups over the last 30 days: 50 keys (their usage, not
/// their rows) and 3 models, as many calls a day as the count makes.
async fn insert_usage(db: &Db, org: OrgId, workspace: WorkspaceId, count: usize) -> anyhow::Result<()> {
    let hour = 3_600_000;
    let now = Timestamp::now().0 / hour * hour;
    let models = ["mistral-small-latest", "mistral-large-latest", "codestral-latest"];
    let keys: Vec<uuid::Uuid> = (0..50).map(|_| uuid::Uuid::new_v4()).collect();
    let per_hour = count.div_ceil(30 * 24).max(1);
    let mut tx = db.pool().begin().await?;
    let rows: Vec<String> = (0..count)
        .map(|n| {
            let at = now - (n / per_hour) as i64 * hour;
            let (key, model) = (keys[n % keys.len()], models[n % models.len()]);
            let (input, output) = (1_000 + n as i64 % 700, 200 + n as i64 % 300);
            format!(
                "({at}, '{org}', '{workspace}', '{key}', '{model}', 3, 0, {input}, {output}, {})",
                input + output
            )
        })
        .collect();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        sqlx::query(&format!(
            "INSERT INTO usage_hourly (hour_start, org_id, workspace_id, key_id, model, requests, failed, \
             input_tokens, output_tokens, cost_micros) VALUES {}",
            chunk.join(", ")
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn page(seeded: &Seeded, path: &str) -> Request<Body> {
    Request::get(path)
        .header(header::ACCEPT, "text/html")
        .header(header::COOKIE, &seeded.cookie)
        .body(Body::empty())
        .expect("a request")
}

/// A server function called as a hydrated page calls it.
fn function(seeded: &Seeded, path: &str, form: &str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .header("sec-fetch-site", "same-origin")
        .header(header::COOKIE, &seeded.cookie)
        .body(Body::from(form.to_string()))
        .expect("a request")
}

fn api(seeded: &Seeded, path: &str) -> Request<Body> {
    Request::get(path).header("x-api-key", &seeded.key).body(Body::empty()).expect("a request")
}

async fn send(router: &Router, mut request: Request<Body>) -> anyhow::Result<http::Response<Body>> {
    request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 4000))));
    Ok(router.clone().oneshot(request).await?)
}

/// `ROUNDS` requests after one to warm up: p50, p95 and the answer's size.
async fn cost(router: &Router, request: impl Fn() -> Request<Body>) -> anyhow::Result<Cost> {
    let mut times = Vec::with_capacity(ROUNDS);
    let mut bytes = 0;
    for round in 0..=ROUNDS {
        let started = Instant::now();
        let response = send(router, request()).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if status != StatusCode::OK {
            anyhow::bail!("{status}: {}", String::from_utf8_lossy(&body));
        }
        if round > 0 {
            times.push(started.elapsed());
        }
        bytes = body.len();
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    Ok(Cost { p50: at(0.5), p95: at(0.95), bytes })
}

fn shown(d: Duration) -> String {
    match d.as_secs_f64() {
        s if s >= 1.0 => format!("{s:.2} s"),
        s if s >= 0.001 => format!("{:.1} ms", s * 1e3),
        s => format!("{:.0} µs", s * 1e6),
    }
}

fn bytes(n: usize) -> String {
    match n {
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.0} KB", n as f64 / 1e3),
        n => format!("{n} B"),
    }
}
