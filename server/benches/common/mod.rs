//! What the benchmarks share: an Organization to measure with.

// Each benchmark is its own crate and uses only part of this.
#![allow(dead_code)]

use app::{
    ids::{OrgId, WorkspaceId},
    server::{
        accounts::{self, SignUp},
        actor::{Actor, Client},
        db::Db,
        orgs,
    },
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
