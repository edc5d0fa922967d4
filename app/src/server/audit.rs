//! The audit log: append-only events, written in the transaction of the change
//! they describe, so a change and its record land together or not at all.

use sqlx::{AnyConnection, FromRow};

use super::{
    actor::{Actor, Client},
    authz,
    db::Db,
    paging,
};
use crate::{
    error::{AppError, AppResult},
    ids::OrgId,
    model::{AuditEntry, AuditQuery, Page},
    time::Timestamp,
};

/// One event. `action` follows `resource[.sub].verb`, e.g. `organization.create`.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    pub org_id: Option<OrgId>,
    pub action: &'static str,
    pub target_type: &'static str,
    pub target_id: Option<String>,
    /// Before/after values or other facts, as a JSON object.
    pub details: Option<serde_json::Value>,
}

impl AuditEvent {
    pub fn new(action: &'static str, target_type: &'static str, target_id: impl ToString) -> Self {
        Self { org_id: None, action, target_type, target_id: Some(target_id.to_string()), details: None }
    }

    pub fn in_org(mut self, org_id: OrgId) -> Self {
        self.org_id = Some(org_id);
        self
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

/// Records `event` as done by whoever `by` vouches for: no proof, no record,
/// and so no change (see `authz::Authority`).
pub async fn record(
    conn: &mut AnyConnection,
    by: &impl authz::Authority,
    client: &Client,
    event: AuditEvent,
) -> Result<(), sqlx::Error> {
    let actor = by.actor();
    sqlx::query(
        "INSERT INTO audit_events
             (org_id, actor_type, actor_id, actor_label, action, target_type, target_id, details, ip, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(event.org_id)
    .bind(actor.kind())
    .bind(actor.id())
    .bind(actor.label())
    .bind(event.action)
    .bind(event.target_type)
    .bind(event.target_id)
    .bind(event.details.map(|d| d.to_string()))
    .bind(client.ip.clone())
    .bind(Timestamp::now())
    .execute(conn)
    .await?;
    Ok(())
}

/// The audit log of one organization, newest first, filtered. For its
/// administrators only (Admins and its Admin API keys).
pub async fn search(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    query: &AuditQuery,
    page: Option<i64>,
    page_size: Option<i64>,
) -> AppResult<Page<AuditEntry>> {
    let (page, page_size) = paging::page_bounds(page, page_size)?;
    let day = |field: &str, input: &str| -> AppResult<Option<i64>> {
        let input = input.trim();
        if input.is_empty() {
            return Ok(None);
        }
        let date = chrono::NaiveDate::parse_from_str(input, "%Y-%m-%d")
            .map_err(|_| AppError::invalid(field, "Enter dates as YYYY-MM-DD."))?;
        Ok(date.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_millis()))
    };
    let from = day("from", &query.from)?.unwrap_or(0);
    // `to` is inclusive: up to the end of that day.
    let to = day("to", &query.to)?.map_or(i64::MAX, |start| start + 86_400_000);
    let actor_filter = query.actor.trim().to_lowercase();
    let action_filter = query.action.trim().to_string();

    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    let filters = "FROM audit_events
        WHERE org_id = $1
          AND ($2 = '' OR actor_id = $2 OR LOWER(actor_label) LIKE $3 ESCAPE '\\')
          AND ($4 = '' OR action = $4 OR action LIKE $5 ESCAPE '\\')
          AND created_at >= $6 AND created_at < $7";
    let actor_like = format!("%{}%", escape_like(&actor_filter));
    let action_like = format!("{}%", escape_like(&action_filter));
    let (total,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) {filters}"))
        .bind(org_id)
        .bind(&actor_filter)
        .bind(&actor_like)
        .bind(&action_filter)
        .bind(&action_like)
        .bind(from)
        .bind(to)
        .fetch_one(&mut *conn)
        .await?;
    let items: Vec<AuditRow> = sqlx::query_as(&format!(
        "SELECT id, created_at, actor_type, actor_id, actor_label, action, target_type, target_id, details, ip
         {filters} ORDER BY id DESC LIMIT $8 OFFSET $9"
    ))
    .bind(org_id)
    .bind(&actor_filter)
    .bind(&actor_like)
    .bind(&action_filter)
    .bind(&action_like)
    .bind(from)
    .bind(to)
    .bind(page_size)
    .bind((page - 1) * page_size)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Page { items: items.into_iter().map(Into::into).collect(), page, page_size, total })
}

/// Every matching event (newest first), for export; at most `EXPORT_MAX_ROWS`.
pub async fn export(db: &Db, actor: &Actor, org_id: OrgId, query: &AuditQuery) -> AppResult<Vec<AuditEntry>> {
    let mut all = Vec::new();
    for page in 1.. {
        let chunk = search(db, actor, org_id, query, Some(page), Some(paging::MAX_PAGE_SIZE)).await?;
        let more = chunk.has_next();
        all.extend(chunk.items);
        if !more || all.len() >= EXPORT_MAX_ROWS {
            break;
        }
    }
    all.truncate(EXPORT_MAX_ROWS);
    Ok(all)
}

pub const EXPORT_MAX_ROWS: usize = 100_000;

#[derive(FromRow)]
struct AuditRow {
    id: i64,
    created_at: Timestamp,
    actor_type: String,
    actor_id: Option<String>,
    actor_label: String,
    action: String,
    target_type: String,
    target_id: Option<String>,
    details: Option<String>,
    ip: Option<String>,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        Self {
            id: r.id,
            created_at: r.created_at,
            actor_type: r.actor_type,
            actor_id: r.actor_id,
            actor_label: r.actor_label,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            details: r.details,
            ip: r.ip,
        }
    }
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// The events as CSV (RFC 4180), with a header row. Cells that a spreadsheet
/// would run as formulas are prefixed with `'`.
pub fn to_csv(entries: &[AuditEntry]) -> String {
    let mut out = String::from("time,actor_type,actor,actor_id,action,target_type,target_id,ip,details\r\n");
    for e in entries {
        let cells = [
            e.created_at.rfc3339(),
            e.actor_type.clone(),
            e.actor_label.clone(),
            e.actor_id.clone().unwrap_or_default(),
            e.action.clone(),
            e.target_type.clone(),
            e.target_id.clone().unwrap_or_default(),
            e.ip.clone().unwrap_or_default(),
            e.details.clone().unwrap_or_default(),
        ];
        let line: Vec<String> = cells.iter().map(|cell| csv_cell(cell)).collect();
        out += &line.join(",");
        out += "\r\n";
    }
    out
}

pub(super) fn csv_cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting_and_defuses_formulas() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("-1"), "'-1");
    }

    #[test]
    fn like_patterns_match_literally() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
    }
}
