//! The database: one pool over SQLite (the embedded default) or PostgreSQL.
//!
//! Queries are written once, in the SQL both engines accept (`$1` parameters,
//! `RETURNING`, `ON CONFLICT`), and run through sqlx's `Any` driver. Each engine
//! keeps its own migrations folder for the few places where DDL differs.

use std::str::FromStr;

use sqlx::{
    any::{AnyConnectOptions, AnyPoolOptions},
    migrate::{MigrateError, Migrator},
    Any, AnyConnection, AnyPool, Transaction,
};

use crate::{error::AppResult, ids::OrgId, time::Timestamp};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    #[error("DATABASE_URL must start with sqlite: or postgres:, got {0:?}")]
    UnsupportedUrl(String),
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] MigrateError),
}

impl Db {
    /// Connects without migrating. A SQLite file is created if missing.
    pub async fn connect(url: &str) -> Result<Self, DbSetupError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url).ok_or_else(|| DbSetupError::UnsupportedUrl(redact(url)))?;
        if backend == Backend::Sqlite {
            create_parent_dir(url)?;
        }
        let options = AnyConnectOptions::from_str(url)?;
        let pool = match backend {
            // SQLite takes one writer at a time; a few connections serve the readers.
            Backend::Sqlite => AnyPoolOptions::new().max_connections(4),
            Backend::Postgres => AnyPoolOptions::new().max_connections(16),
        }
        .connect_with(options)
        .await?;
        if backend == Backend::Sqlite {
            // WAL lets readers run beside the writer; the setting persists in the file.
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        Ok(Self { pool, backend })
    }

    /// Connects and applies every pending migration.
    pub async fn connect_and_migrate(url: &str) -> Result<Self, DbSetupError> {
        let db = Self::connect(url).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Brings the database to this build's shape, audit events recorded
    /// before the log was chained linked into it.
    pub async fn migrate(&self) -> Result<(), MigrateError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        super::audit_chain::link_earlier_events(self).await.map_err(MigrateError::Execute)?;
        Ok(())
    }

    /// Migrations this build knows that the database has not applied (or
    /// applied and failed): none once `migrate` has run.
    pub async fn pending_migrations(&self) -> Result<usize, sqlx::Error> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        let applied: Vec<(i64,)> =
            sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_all(&self.pool)
                .await?;
        let applied: std::collections::HashSet<i64> = applied.into_iter().map(|(v,)| v).collect();
        Ok(migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
            .count())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so concurrent writers queue on the busy timeout
    /// instead of failing with "database is locked" when a reader upgrades; on
    /// PostgreSQL the guards in `authz` lock the rows their checks depend on.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The embedded default lives in a file under `data/`: make sure the folder exists.
fn create_parent_dir(sqlite_url: &str) -> Result<(), sqlx::Error> {
    let path = sqlite_url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(':') {
        return Ok(()); // in-memory
    }
    match std::path::Path::new(path).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir).map_err(sqlx::Error::Io),
        _ => Ok(()),
    }
}

/// A database URL fit for logs: the password, if any, replaced by `***`.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// True when the error is a unique-constraint violation, on either engine.
/// `$first, $first+1, ...`: `count` query parameters, for an `IN (...)` list.
pub fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_the_parameters_from_the_first() {
        assert_eq!(placeholders(2, 3), "$2, $3, $4");
        assert_eq!(placeholders(1, 1), "$1");
    }

    #[test]
    fn like_patterns_match_literally() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
    }

    #[test]
    fn a_blank_search_keeps_every_row_without_a_condition() {
        let mut sql = Conditions::default();
        sql.contains(&["name"], "  ");
        assert_eq!((sql.text.as_str(), sql.params.len()), ("", 0));
        sql.contains(&["name", "email"], " 50% ");
        assert_eq!(sql.text, "(name LIKE $1 ESCAPE '\\' OR email LIKE $1 ESCAPE '\\')");
        assert!(matches!(&sql.params[..], [Param::Text(p)] if p == "%50\\%%"));
    }

    #[test]
    fn passwords_never_reach_the_log() {
        assert_eq!(redact("postgres://app:s3cret@db:5432/x"), "postgres://app:***@db:5432/x");
        assert_eq!(redact("postgres://postgres@127.0.0.1/x"), "postgres://postgres@127.0.0.1/x");
        assert_eq!(redact("sqlite://data/chancery.db"), "sqlite://data/chancery.db");
    }

    #[test]
    fn backend_follows_the_url_scheme() {
        assert_eq!(Backend::from_url("sqlite://x.db"), Some(Backend::Sqlite));
        assert_eq!(Backend::from_url("postgresql://h/db"), Some(Backend::Postgres));
        assert_eq!(Backend::from_url("mysql://h/db"), None);
    }
}

/// A value bound to a numbered parameter of SQL built at run time.
#[derive(Clone, Debug)]
pub enum Param {
    Text(String),
    Int(i64),
}

/// A `WHERE` clause built up with numbered parameters, holding only the
/// conditions that apply: a catch-all such as `$2 = '' OR ...` would leave
/// PostgreSQL's reused plan guessing (it expects one row and joins one by one).
#[derive(Default)]
pub struct Conditions {
    pub text: String,
    pub params: Vec<Param>,
}

impl Conditions {
    /// Adds a parameter; returns its placeholder.
    pub fn param(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }

    pub fn and(&mut self, condition: String) {
        if !self.text.is_empty() {
            self.text += " AND ";
        }
        self.text += &format!("({condition})");
    }

    /// Keeps the rows where any of `columns` (lower-cased text) contains
    /// `search` as typed, in any case (`%` and `_` stand for themselves);
    /// keeps all when `search` is blank.
    pub fn contains(&mut self, columns: &[&str], search: &str) {
        let search = search.trim().to_lowercase();
        if search.is_empty() {
            return;
        }
        let like = self.param(Param::Text(format!("%{}%", escape_like(&search))));
        let any: Vec<String> =
            columns.iter().map(|column| format!("{column} LIKE {like} ESCAPE '\\'")).collect();
        self.and(any.join(" OR "));
    }

    /// Keeps the rows of a keyset order on (`sort`, `id`) that come after the
    /// row with these values: older ones when `newest_first`. Written as a
    /// range on `sort` so an index on (.., `sort`, `id`) finds the first of
    /// them directly, on both engines.
    pub fn past(
        &mut self,
        (sort, id): (&str, &str),
        newest_first: bool,
        (sort_value, id_value): (Param, Param),
    ) {
        let beyond = if newest_first { "<" } else { ">" };
        let at = self.param(sort_value);
        let row = self.param(id_value);
        self.and(format!("{sort} {beyond}= {at} AND ({sort} {beyond} {at} OR {id} {beyond} {row})"));
    }
}

/// When row `id` of `table` in Organization `org_id` was made, where a keyset
/// page past it starts; `None` if the Organization has no such row.
pub async fn created_at_of(
    conn: &mut AnyConnection,
    table: &str,
    org_id: OrgId,
    id: Param,
) -> AppResult<Option<Timestamp>> {
    let sql = format!("SELECT created_at FROM {table} WHERE id = $1 AND org_id = $2");
    let found: Option<(Timestamp,)> =
        bind_all(sqlx::query_as(&sql), vec![id, Param::Text(org_id.to_string())])
            .fetch_optional(conn)
            .await?;
    Ok(found.map(|(at,)| at))
}

/// `text` for a LIKE pattern with `ESCAPE '\\'`: its `%`, `_` and `\\` match themselves.
pub fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// `query` with `params` bound in order.
pub fn bind_all<'q, T>(
    mut query: sqlx::query::QueryAs<'q, sqlx::Any, T, sqlx::any::AnyArguments<'q>>,
    params: Vec<Param>,
) -> sqlx::query::QueryAs<'q, sqlx::Any, T, sqlx::any::AnyArguments<'q>> {
    for param in params {
        query = match param {
            Param::Text(text) => query.bind(text),
            Param::Int(int) => query.bind(int),
        };
    }
    query
}
