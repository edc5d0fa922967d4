//! What the benchmarks share: an Organization to measure with.

// Each benchmark is its own crate and uses only part of this.
#![allow(dead_code)]

use app::{
    ids::{OrgId, WorkspaceId},
    model::TokenLimits,
    money::MICROS_PER_USD,
    payment,
    server::{
        accounts::{self, SignUp},
        actor::{Actor, Client},
        api_keys::{self, NewApiKey},
        billing,
        db::Db,
        orgs,
    },
    time::Timestamp,
};

/// Its Admin (as the actor of later changes), its id and its Default workspace.
pub struct BenchOrg {
    pub admin: Actor,
    pub client: Client,
    pub id: OrgId,
    pub workspace: WorkspaceId,
}

/// Signs up `bench@example.com`, who creates the Organization "Bench".
pub async fn organization(db: &Db) -> anyhow::Result<BenchOrg> {
    organization_of(db, "Bench", "bench@example.com", "bench password 1").await
}

/// Signs up `email` with `password`, who creates the Organization `name`.
pub async fn organization_of(db: &Db, name: &str, email: &str, password: &str) -> anyhow::Result<BenchOrg> {
    let client = Client { ip: Some("127.0.0.1".into()) };
    let signed_up = SignUp { name: name.into(), email: email.into(), password: password.into() };
    let user = accounts::sign_up(db, &client, signed_up).await?;
    let admin = Actor::User { id: user.id, email: user.email };
    let id = orgs::create_first_organization(db, &admin, &client, name).await?.id;
    let (workspace,): (WorkspaceId,) =
        sqlx::query_as("SELECT id FROM workspaces WHERE org_id = $1").bind(id).fetch_one(db.pool()).await?;
    Ok(BenchOrg { admin, client, id, workspace })
}

/// Runs `measure(engine, db)` on SQLite in a temporary file, then on
/// PostgreSQL in a temporary database when `CHANCERY_TEST_POSTGRES_URL`
/// (default `postgres://postgres@127.0.0.1:5432`) answers; both are removed after.
pub async fn on_both_engines(measure: impl AsyncFn(&str, &Db) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let path = std::env::temp_dir().join(format!("chancery-bench-{}.db", uuid::Uuid::new_v4().simple()));
    let sqlite = Db::connect_and_migrate(&format!("sqlite://{}?mode=rwc", path.display())).await?;
    let outcome = measure("SQLite", &sqlite).await;
    sqlite.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    outcome?;

    let server = std::env::var("CHANCERY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let Ok(admin) = Db::connect(&format!("{server}/postgres")).await else {
        println!("\nPostgreSQL not reachable at {server}: measured on SQLite only");
        return Ok(());
    };
    let name = format!("chancery_bench_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(admin.pool()).await?;
    let outcome = async {
        let postgres = Db::connect_and_migrate(&format!("{server}/{name}")).await?;
        let outcome = measure("PostgreSQL", &postgres).await;
        postgres.close().await;
        outcome
    }
    .await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(admin.pool()).await?;
    outcome
}

/// A billed organization whose Default workspace has a rate limit and a budget
/// high enough never to refuse, so each request runs every check; its key.
pub async fn workspace_key_with_limits(db: &Db) -> anyhow::Result<String> {
    let BenchOrg { admin: actor, client, id: org_id, workspace: workspace_id } = organization(db).await?;
    let today = chrono::Utc::now().date_naive();
    let expiry = format!("12/{}", (chrono::Datelike::year(&today) + 3) % 100);
    let card = payment::card("4242424242424242", &expiry, today)?;
    billing::activate(db, &actor, &client, org_id, card).await?;
    let ceiling = Some(1_000_000 * MICROS_PER_USD);
    billing::set_org_limit(db, &actor, &client, org_id, ceiling).await?;
    billing::set_workspace_budget(db, &actor, &client, org_id, workspace_id, ceiling).await?;
    // Every limit the gateway checks, set high enough never to refuse.
    billing::update_rate_limits(db, &actor, &client, org_id, workspace_id, |limits| {
        limits.requests_per_second = Some(billing::MAX_REQUESTS_PER_SECOND);
        limits.requests_per_minute = Some(billing::MAX_REQUESTS_PER_MINUTE);
        limits.allowed_models = Some(vec!["mistral-small-latest".into()]);
        let tokens = TokenLimits {
            tokens_per_minute: Some(billing::MAX_TOKENS_LIMIT),
            tokens_per_month: Some(billing::MAX_TOKENS_LIMIT),
        };
        limits.tokens_limits_by_model.insert("mistral-small-latest".into(), tokens);
    })
    .await?;
    let new_key = NewApiKey { name: "bench".into(), ..NewApiKey::default() };
    Ok(api_keys::create(db, &actor, &client, org_id, workspace_id, new_key).await?.key)
}

/// Makes the Bench Organization's Default workspace's budget one micro-dollar:
/// spent at once, so the gateway refuses its calls (429).
pub async fn exhaust_budget(db: &Db) -> anyhow::Result<()> {
    let BenchOrg { admin, client, id, workspace } = existing_organization(db).await?;
    billing::set_workspace_budget(db, &admin, &client, id, workspace, Some(1)).await?;
    Ok(())
}

/// The Bench Organization made by [`organization`] in an earlier run of the same database.
async fn existing_organization(db: &Db) -> anyhow::Result<BenchOrg> {
    let (user_id, email, id, workspace): (app::ids::UserId, String, OrgId, WorkspaceId) = sqlx::query_as(
        "SELECT u.id, u.email, o.id, w.id FROM users u JOIN org_members m ON m.user_id = u.id
         JOIN organizations o ON o.id = m.org_id JOIN workspaces w ON w.org_id = o.id
         WHERE u.email = 'bench@example.com'",
    )
    .fetch_one(db.pool())
    .await?;
    let client = Client { ip: Some("127.0.0.1".into()) };
    Ok(BenchOrg { admin: Actor::User { id: user_id, email }, client, id, workspace })
}

/// Keys are written this many to an INSERT.
const ROWS_PER_INSERT: usize = 500;

/// `count` keys in the shape the app writes; live ones are named `bench0...`.
pub async fn insert_keys(
    db: &Db,
    org: OrgId,
    workspace: WorkspaceId,
    count: usize,
    revoked_at: Option<Timestamp>,
) -> anyhow::Result<()> {
    let prefix = if revoked_at.is_some() { "gone" } else { "bench" };
    let mut tx = db.pool().begin().await?;
    for first in (0..count).step_by(ROWS_PER_INSERT) {
        let rows = ROWS_PER_INSERT.min(count - first);
        let values: Vec<String> = (0..rows)
            .map(|n| {
                let p = n * 7;
                format!(
                    "(${}, ${}, ${}, 'bench', ${}, ${}, 'abcd', 'bench', ${}, ${})",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6,
                    p + 7
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO workspace_api_keys (id, org_id, workspace_id, name, public_id, secret_sha256,
                 secret_last4, created_by_label, created_at, revoked_at)
             VALUES {}",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for n in first..first + rows {
            query = query
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(org)
                .bind(workspace)
                .bind(format!("{prefix}{n:020}"))
                .bind(format!("{:064x}", n))
                .bind(Timestamp::now())
                .bind(revoked_at);
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}
