//! The two engines' migrations define the same schema: the same tables and
//! views, columns, primary keys, unique constraints and indexes (by name and
//! columns). Types are left out: each engine spells them its own way.
//! Differences by design are listed, with why, in [`ONLY_POSTGRES`] and [`ONLY_SQLITE`].

use std::collections::BTreeSet;

use app::server::db::Db;

use crate::common::TestApp;

/// PostgreSQL numbers the gateway's change log at commit, from rows logged
/// unnumbered under an id of their own (many writers at once); SQLite, one
/// writer at a time, numbers each row as it is written (migration 0014).
const ONLY_POSTGRES: [&str; 3] =
    ["column gateway_changes.id", "primary key gateway_changes(id)", "unique gateway_changes(version)"];
const ONLY_SQLITE: [&str; 1] = ["primary key gateway_changes(version)"];

/// One line per fact of the schema, e.g. `index users.users_email_normalized(email_normalized) unique`.
type Schema = BTreeSet<String>;

#[tokio::test]
async fn both_engines_define_the_same_schema() {
    let (sqlite, postgres) = (TestApp::sqlite().await, TestApp::postgres().await);
    let (sqlite, postgres) = (sqlite_schema(&sqlite.db).await, postgres_schema(&postgres.db).await);
    assert!(sqlite.len() > 200, "the schema was read: {} facts", sqlite.len());
    let only_sqlite: Vec<_> =
        sqlite.difference(&postgres).filter(|f| !ONLY_SQLITE.contains(&f.as_str())).collect();
    let only_postgres: Vec<_> =
        postgres.difference(&sqlite).filter(|f| !ONLY_POSTGRES.contains(&f.as_str())).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "only in SQLite's migrations: {only_sqlite:#?}\nonly in PostgreSQL's: {only_postgres:#?}"
    );
}

async fn rows<T>(db: &Db, sql: &str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    sqlx::query_as(sql).fetch_all(db.pool()).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Index facts from rows of (table, index, unique, kind, columns in order):
/// kind `pk` is the primary key, `u` a UNIQUE constraint (named by each
/// engine its own way, so known by its columns), anything else a named index.
fn index_facts(indexes: Vec<(String, String, i64, String, String)>) -> Schema {
    indexes
        .into_iter()
        .map(|(table, index, unique, kind, columns)| match kind.as_str() {
            "pk" => format!("primary key {table}({columns})"),
            "u" => format!("unique {table}({columns})"),
            _ => format!("index {table}.{index}({columns}){}", if unique == 1 { " unique" } else { "" }),
        })
        .collect()
}

async fn sqlite_schema(db: &Db) -> Schema {
    let relations: Vec<(String, String)> = rows(
        db,
        "SELECT type, name FROM sqlite_master
         WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .await;
    let mut schema: Schema = relations.iter().map(|(kind, name)| format!("{kind} {name}")).collect();
    let columns: Vec<(String, String)> = rows(
        db,
        "SELECT m.name, c.name FROM sqlite_master m JOIN pragma_table_info(m.name) c
         WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
    )
    .await;
    schema.extend(columns.into_iter().map(|(table, column)| format!("column {table}.{column}")));
    // A rowid table's INTEGER PRIMARY KEY has no index of its own: read keys from the columns.
    let keys: Vec<(String, i64, String)> = rows(
        db,
        "SELECT m.name, c.pk, c.name FROM sqlite_master m JOIN pragma_table_info(m.name) c
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations' AND c.pk > 0
         ORDER BY m.name, c.pk",
    )
    .await;
    let mut primary: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (table, _, column) in keys {
        primary.entry(table).or_default().push(column);
    }
    schema.extend(
        primary.into_iter().map(|(table, columns)| format!("primary key {table}({})", columns.join(","))),
    );
    let indexes: Vec<(String, String, i64, String)> = rows(
        db,
        "SELECT m.name, l.name, l.\"unique\", l.origin FROM sqlite_master m JOIN pragma_index_list(m.name) l
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations' AND l.origin <> 'pk'",
    )
    .await;
    let mut described = Vec::new();
    for (table, index, unique, origin) in indexes {
        let columns: Vec<(Option<String>,)> =
            rows(db, &format!("SELECT name FROM pragma_index_info('{index}') ORDER BY seqno")).await;
        let columns: Vec<String> =
            columns.into_iter().map(|(name,)| name.unwrap_or_else(|| "<expression>".into())).collect();
        described.push((table, index, unique, origin, columns.join(",")));
    }
    schema.extend(index_facts(described));
    schema
}

async fn postgres_schema(db: &Db) -> Schema {
    let relations: Vec<(String, String)> = rows(
        db,
        "SELECT CASE table_type WHEN 'VIEW' THEN 'view' ELSE 'table' END, table_name::text
         FROM information_schema.tables WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
    )
    .await;
    let mut schema: Schema = relations.iter().map(|(kind, name)| format!("{kind} {name}")).collect();
    let columns: Vec<(String, String)> = rows(
        db,
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
    )
    .await;
    schema.extend(columns.into_iter().map(|(table, column)| format!("column {table}.{column}")));
    let indexes: Vec<(String, String, i64, String, String)> = rows(
        db,
        "SELECT t.relname::text, i.relname::text, CAST(ix.indisunique AS INTEGER)::BIGINT,
                CASE WHEN ix.indisprimary THEN 'pk'
                     WHEN EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid AND c.contype = 'u') THEN 'u'
                     ELSE 'c' END,
                (SELECT string_agg(COALESCE(a.attname::text, '<expression>'), ',' ORDER BY k.n)
                 FROM unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                 LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum)
         FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class t ON t.oid = ix.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         WHERE n.nspname = current_schema() AND t.relname <> '_sqlx_migrations'",
    )
    .await;
    schema.extend(index_facts(indexes));
    schema
}
