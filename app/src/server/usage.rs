//! Usage reports from the hourly roll-ups: requests, tokens and cost over time,
//! in hourly or daily buckets, grouped by workspace, model or key. For billing
//! managers (Admins, Billing users, Admin API keys), and, for one workspace,
//! for everyone who works in it.

use std::collections::BTreeMap;

use super::{actor::Actor, audit::csv_cell, authz, db::Db, workspaces};
use crate::{
    error::{AppError, AppResult},
    ids::OrgId,
    model::{UsageBucket, UsageGroupBy, UsageReport, UsageRow, UsageWidth},
    time::Timestamp,
};

/// The longest range a report covers, so a request cannot ask for years of hours.
const MAX_BUCKETS: i64 = 24 * 92;

/// What to report: `[start, end)`, bucket width, grouping, and an optional workspace.
#[derive(Clone, Debug)]
pub struct UsageQuery {
    pub start: Timestamp,
    pub end: Timestamp,
    pub width: UsageWidth,
    pub group_by: Option<UsageGroupBy>,
    pub workspace_id: Option<String>,
}

impl UsageQuery {
    /// The Usage page's ranges, up to `now`: `24h` in hours, `7d` and `30d` in days.
    pub fn recent(range: &str, group_by: &str, now: Timestamp) -> AppResult<Self> {
        let (width, buckets) = match range {
            "" | "24h" => (UsageWidth::Hour, 24),
            "7d" => (UsageWidth::Day, 7),
            "30d" => (UsageWidth::Day, 30),
            _ => return Err(AppError::invalid("range", "Choose 24h, 7d or 30d.")),
        };
        let group_by = match group_by {
            "" | "none" => None,
            text => Some(
                UsageGroupBy::parse(text)
                    .ok_or_else(|| AppError::invalid("group", "Group by workspace, model or key."))?,
            ),
        };
        let width_ms = width.millis();
        let current = now.0 - now.0.rem_euclid(width_ms);
        Ok(Self {
            start: Timestamp(current - (buckets - 1) * width_ms),
            end: Timestamp(current + width_ms),
            width,
            group_by,
            workspace_id: None,
        })
    }
}

/// One bucket's sums for one group, as the database adds them up.
type GroupSums = (i64, String, i64, i64, i64, i64, i64);

#[tracing::instrument(name = "usage::report", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn report(db: &Db, actor: &Actor, org_id: OrgId, query: &UsageQuery) -> AppResult<UsageReport> {
    let width_ms = query.width.millis();
    let start = Timestamp(query.start.0 - query.start.0.rem_euclid(width_ms));
    if query.end <= query.start {
        return Err(AppError::invalid("end_time", "end_time must be after start_time."));
    }
    if (query.end.0 - start.0) / 3_600_000 > MAX_BUCKETS {
        return Err(AppError::invalid("start_time", "A report covers at most 92 days."));
    }
    // The connection goes back before `workspaces::access` takes one: holding
    // it meanwhile, a few such requests at once would wait on each other.
    let billing = authz::billing_manager(&mut *db.pool().acquire().await?, actor, org_id).await;
    if let Err(refused) = billing {
        // Anyone working in a workspace sees its usage (seed 004: Members "view usage").
        let workspace = query.workspace_id.as_deref().and_then(|id| id.parse().ok()).ok_or(refused)?;
        workspaces::access(db, actor, org_id, workspace).await?;
    }
    let mut conn = db.pool().acquire().await?;
    // The database sums the hours into buckets and groups: a month of a large
    // Organization is thousands of roll-ups but a few hundred sums.
    let group = match query.group_by {
        None => "CAST('' AS TEXT)",
        Some(UsageGroupBy::Workspace) => "u.workspace_id",
        Some(UsageGroupBy::Model) => "u.model",
        Some(UsageGroupBy::Key) => "u.key_id",
    };
    // One workspace's only when asked: a catch-all (`$5 = '' OR ...`) would
    // leave PostgreSQL's reused plan guessing.
    let one_workspace = if query.workspace_id.is_some() { " AND u.workspace_id = $5" } else { "" };
    let sql = format!(
        "SELECT u.hour_start - u.hour_start % $4, {group},
                CAST(SUM(u.requests) AS BIGINT), CAST(SUM(u.failed) AS BIGINT),
                CAST(SUM(u.input_tokens) AS BIGINT), CAST(SUM(u.output_tokens) AS BIGINT),
                CAST(SUM(u.cost_micros) AS BIGINT)
         FROM usage_hourly u
         WHERE u.org_id = $1 AND u.hour_start >= $2 AND u.hour_start < $3{one_workspace}
         GROUP BY 1, 2"
    );
    let mut sums = sqlx::query_as(&sql).bind(org_id).bind(start).bind(query.end).bind(width_ms);
    if let Some(workspace) = &query.workspace_id {
        sums = sums.bind(workspace.clone());
    }
    let sums: Vec<GroupSums> = sums.fetch_all(&mut *conn).await?;
    // Names are read once per group used, not joined to every hour
    // (PostgreSQL hashed all 200,000 keys of a large Organization for it).
    let group_ids = || sums.iter().map(|row| row.1.as_str()).collect::<std::collections::BTreeSet<_>>();
    let names = match query.group_by {
        Some(UsageGroupBy::Workspace) => names_of(&mut conn, "workspaces", org_id, group_ids()).await?,
        Some(UsageGroupBy::Key) => names_of(&mut conn, "workspace_api_keys", org_id, group_ids()).await?,
        _ => Default::default(),
    };
    let group_name = |id: &str| match query.group_by {
        None => "All usage".to_string(),
        Some(UsageGroupBy::Model) => id.to_string(),
        Some(_) => names.get(id).cloned().unwrap_or_else(|| "(deleted key)".into()),
    };

    // Every bucket of the range appears, empty ones too, so charts keep their time axis.
    let mut buckets: BTreeMap<i64, Vec<UsageRow>> = BTreeMap::new();
    let mut at = start.0;
    while at < query.end.0 {
        buckets.insert(at, Vec::new());
        at += width_ms;
    }
    let mut totals: BTreeMap<String, UsageRow> = BTreeMap::new();
    for (bucket, group_id, requests, failed, input_tokens, output_tokens, cost_micros) in sums {
        let row = UsageRow {
            group_name: group_name(&group_id),
            group_id,
            requests,
            failed,
            input_tokens,
            output_tokens,
            cost_micros,
        };
        let total = totals.entry(row.group_id.clone()).or_insert_with(|| UsageRow {
            group_id: row.group_id.clone(),
            group_name: row.group_name.clone(),
            ..UsageRow::default()
        });
        total.add(&row);
        buckets.entry(bucket).or_default().push(row);
    }
    let by_cost = |mut rows: Vec<UsageRow>| {
        rows.sort_by(|a, b| b.cost_micros.cmp(&a.cost_micros).then(a.group_name.cmp(&b.group_name)));
        rows
    };
    Ok(UsageReport {
        buckets: buckets
            .into_iter()
            .map(|(start, rows)| UsageBucket {
                start: Timestamp(start),
                end: Timestamp(start + width_ms),
                rows: by_cost(rows),
            })
            .collect(),
        totals: by_cost(totals.into_values().collect()),
    })
}

/// The names of the Organization's workspaces or keys with these ids (a
/// deleted key has none).
async fn names_of(
    conn: &mut sqlx::AnyConnection,
    table: &str,
    org_id: OrgId,
    ids: std::collections::BTreeSet<&str>,
) -> AppResult<std::collections::HashMap<String, String>> {
    let ids: Vec<&str> = ids.into_iter().collect();
    let mut names = std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT id, name FROM {table} WHERE org_id = $1 AND id IN ({})",
            super::db::placeholders(2, chunk.len())
        );
        let query = sqlx::query_as(&sql).bind(org_id);
        let found: Vec<(String, String)> =
            chunk.iter().fold(query, |q, id| q.bind(*id)).fetch_all(&mut *conn).await?;
        names.extend(found);
    }
    Ok(names)
}

/// Micro-USD as plain dollars with 6 decimals, for spreadsheets.
struct Dollars(i64);

impl std::fmt::Display for Dollars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// A report as CSV: one line per bucket and group.
pub fn to_csv(report: &UsageReport) -> String {
    let mut out = String::from(
        "bucket_start,bucket_end,group_id,group,requests,failed,input_tokens,output_tokens,cost_usd\r\n",
    );
    for bucket in &report.buckets {
        for row in &bucket.rows {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{}\r\n",
                bucket.start.rfc3339(),
                bucket.end.rfc3339(),
                csv_cell(&row.group_id),
                csv_cell(&row.group_name),
                row.requests,
                row.failed,
                row.input_tokens,
                row.output_tokens,
                Dollars(row.cost_micros),
            ));
        }
    }
    out
}
