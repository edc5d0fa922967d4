//! The audit log: append-only events, written in the transaction of the change
//! they describe, so a change and its record land together or not at all.

use std::collections::{BTreeSet, HashMap};

use sqlx::{AnyConnection, FromRow};

use super::{
    actor::{Actor, Client},
    audit_chain, authz,
    db::{bind_all, created_at_of, escape_like, Conditions, Db, Param},
    paging,
};
use crate::{
    audit_events,
    error::{AppError, AppResult},
    ids::OrgId,
    model::{AuditEntry, AuditQuery, AuditSlice},
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
    debug_assert!(
        audit_events::find(event.action)
            .is_some_and(|known| known.targets.iter().any(|t| t.eq_ignore_ascii_case(event.target_type))),
        "{} on {} is not in the catalogue (audit_events::EVENT_TYPES)",
        event.action,
        event.target_type
    );
    let actor = by.actor();
    let content = audit_chain::Content {
        org_id: event.org_id.map(|id| id.to_string()),
        actor_type: actor.kind().to_string(),
        actor_id: actor.id(),
        actor_label: actor.label(),
        action: event.action.to_string(),
        target_type: event.target_type.to_string(),
        target_id: event.target_id,
        details: event.details.map(|d| d.to_string()),
        ip: client.ip.clone(),
        created_at: Timestamp::now().0,
    };
    let (seq, hash) = audit_chain::link(conn, &content).await?;
    sqlx::query(
        "INSERT INTO audit_events
             (org_id, actor_type, actor_id, actor_label, action, target_type, target_id, details, ip, created_at,
              chain_seq, chain_hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(content.org_id)
    .bind(content.actor_type)
    .bind(content.actor_id)
    .bind(content.actor_label)
    .bind(content.action)
    .bind(content.target_type)
    .bind(content.target_id)
    .bind(content.details)
    .bind(content.ip)
    .bind(content.created_at)
    .bind(seq)
    .bind(hash)
    .execute(conn)
    .await?;
    Ok(())
}

/// Which events to list. Every field narrows the list; an empty one means any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// `HUMAN`, `API_KEY` or `OTHER` (see [`actor_type`]).
    pub actor_types: Vec<String>,
    /// Part of the actor's email or key name, or an actor's id.
    pub actor: String,
    /// Exactly this actor.
    pub actor_id: Option<String>,
    /// Event types: a type of the catalogue matches itself (and its old names);
    /// anything else matches the types it begins (`organization.`, `user.log`).
    pub event_types: Vec<String>,
    /// Target types, as the API writes them (`USER`, `WORKSPACE`).
    pub target_types: Vec<String>,
    /// At or after this time.
    pub after: Option<Timestamp>,
    /// Strictly before this time.
    pub before: Option<Timestamp>,
}

impl AuditFilter {
    /// The Admin Panel's form: free text for the actor, one event type or
    /// prefix, and whole days (`to` inclusive).
    pub fn from_panel(query: &AuditQuery) -> AppResult<Self> {
        let day = |field: &str, input: &str| -> AppResult<Option<Timestamp>> {
            let input = input.trim();
            if input.is_empty() {
                return Ok(None);
            }
            let date = chrono::NaiveDate::parse_from_str(input, "%Y-%m-%d")
                .map_err(|_| AppError::invalid(field, "Enter dates as YYYY-MM-DD."))?;
            Ok(date.and_hms_opt(0, 0, 0).map(|t| Timestamp(t.and_utc().timestamp_millis())))
        };
        let action = query.action.trim();
        let (from, to) = (day("from", &query.from)?, day("to", &query.to)?);
        if from.zip(to).is_some_and(|(from, to)| from > to) {
            return Err(AppError::invalid("to", "The end date is before the start date."));
        }
        Ok(Self {
            actor: query.actor.trim().to_string(),
            event_types: if action.is_empty() { vec![] } else { vec![action.to_string()] },
            after: from,
            before: to.map(|start| Timestamp(start.0 + 86_400_000)),
            ..Self::default()
        })
    }

    fn check(&self) -> AppResult<()> {
        if let Some(bad) = self.actor_types.iter().find(|t| !ACTOR_TYPES.contains(&t.as_str())) {
            return Err(AppError::invalid(
                "actor_type",
                format!("{bad:?} is not one of HUMAN, API_KEY, OTHER."),
            ));
        }
        let shaped = |text: &str, allowed: fn(char) -> bool| {
            (1..=100).contains(&text.len()) && text.chars().all(allowed)
        };
        if let Some(bad) =
            self.event_types.iter().find(|t| !shaped(t, |c| c.is_ascii_lowercase() || c == '.' || c == '_'))
        {
            return Err(AppError::invalid(
                "event_type",
                format!("{bad:?} is not an event type, e.g. user.log_in."),
            ));
        }
        if let Some(bad) =
            self.target_types.iter().find(|t| !shaped(t, |c| c.is_ascii_alphabetic() || c == '_'))
        {
            return Err(AppError::invalid(
                "target_type",
                format!("{bad:?} is not a target type, e.g. USER."),
            ));
        }
        Ok(())
    }

    /// The SQL condition (after `WHERE`) and its parameters, numbered from `$1`.
    fn to_sql(&self, org_id: OrgId) -> Conditions {
        let mut sql = Conditions::default();
        let org = sql.param(Param::Text(org_id.to_string()));
        sql.and(format!("org_id = {org}"));
        if !self.actor_types.is_empty() {
            let humans = placeholders(&mut sql, HUMAN_KINDS);
            let keys = placeholders(&mut sql, &["admin_api_key"]);
            let any: Vec<String> = self
                .actor_types
                .iter()
                .map(|t| match t.as_str() {
                    "HUMAN" => format!("actor_type IN ({humans})"),
                    "API_KEY" => format!("actor_type IN ({keys})"),
                    _ => format!("actor_type NOT IN ({humans}, {keys})"),
                })
                .collect();
            sql.and(any.join(" OR "));
        }
        let actor = self.actor.to_lowercase();
        if !actor.is_empty() {
            let id = sql.param(Param::Text(self.actor.clone()));
            let like = sql.param(Param::Text(format!("%{}%", escape_like(&actor))));
            sql.and(format!("actor_id = {id} OR LOWER(actor_label) LIKE {like} ESCAPE '\\'"));
        }
        if let Some(actor_id) = &self.actor_id {
            let id = sql.param(Param::Text(actor_id.clone()));
            sql.and(format!("actor_id = {id}"));
        }
        if !self.event_types.is_empty() {
            let mut any = Vec::new();
            for name in &self.event_types {
                if audit_events::find(audit_events::current_name(name)).is_none() {
                    let like = sql.param(Param::Text(format!("{}%", escape_like(name))));
                    any.push(format!("action LIKE {like} ESCAPE '\\'"));
                } else {
                    let names: Vec<&str> = audit_events::stored_names(name);
                    any.push(format!("action IN ({})", placeholders(&mut sql, &names)));
                }
            }
            sql.and(any.join(" OR "));
        }
        if !self.target_types.is_empty() {
            let lower: Vec<String> = self.target_types.iter().map(|t| t.to_lowercase()).collect();
            let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
            let targets = placeholders(&mut sql, &lower);
            sql.and(format!("target_type IN ({targets})"));
        }
        if let Some(after) = self.after {
            let at = sql.param(Param::Int(after.0));
            sql.and(format!("created_at >= {at}"));
        }
        if let Some(before) = self.before {
            let at = sql.param(Param::Int(before.0));
            sql.and(format!("created_at < {at}"));
        }
        sql
    }
}

/// The Admin API's actor types and the actor kinds each covers (the rest is `OTHER`).
const ACTOR_TYPES: [&str; 3] = ["HUMAN", "API_KEY", "OTHER"];
const HUMAN_KINDS: &[&str] = &["user", "unauthenticated"];

/// `HUMAN` (people, signed in or signing in), `API_KEY` (Admin API keys) or
/// `OTHER` (the platform operator, SCIM tokens): Mistral's actor types.
pub fn actor_type(kind: &str) -> &'static str {
    match kind {
        kind if HUMAN_KINDS.contains(&kind) => "HUMAN",
        "admin_api_key" => "API_KEY",
        _ => "OTHER",
    }
}

/// Where a list of events starts and how long it is: keyset paging in time
/// order (then id), so no event is listed twice or skipped while others are
/// written, and a page deep in a long log costs what the first one does.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Events past this id, in the list's order (the last id of the previous page).
    pub cursor: Option<i64>,
    pub limit: i64,
    pub oldest_first: bool,
}

/// Events of one organization for its administrators (Admins and its Admin API
/// keys), in time order (newest first unless asked otherwise).
#[tracing::instrument(name = "audit::list", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn list(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    filter: &AuditFilter,
    window: Window,
) -> AppResult<Vec<AuditEntry>> {
    filter.check()?;
    if window.cursor.is_some_and(|cursor| cursor < 0) {
        return Err(AppError::invalid("cursor", "cursor is a log_id, 0 or more."));
    }
    if !(1..=paging::MAX_PAGE_SIZE).contains(&window.limit) {
        let message = format!("limit must be between 1 and {}.", paging::MAX_PAGE_SIZE);
        return Err(AppError::invalid("limit", message));
    }
    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    read(&mut conn, org_id, filter, window).await
}

/// The events of `window`, for a caller that has checked who asks.
async fn read(
    conn: &mut AnyConnection,
    org_id: OrgId,
    filter: &AuditFilter,
    window: Window,
) -> AppResult<Vec<AuditEntry>> {
    let mut sql = filter.to_sql(org_id);
    let order = if window.oldest_first { "ASC" } else { "DESC" };
    if let Some(cursor) = window.cursor {
        let at = created_at_of(&mut *conn, "audit_events", org_id, Param::Int(cursor))
            .await?
            .ok_or_else(|| AppError::invalid("cursor", "cursor is not an event of this log."))?;
        sql.past(("created_at", "id"), !window.oldest_first, (Param::Int(at.0), Param::Int(cursor)));
    }
    let limit = sql.param(Param::Int(window.limit));
    let query = format!(
        "SELECT {COLUMNS} FROM audit_events WHERE {} ORDER BY created_at {order}, id {order} LIMIT {limit}",
        sql.text
    );
    let rows: Vec<AuditRow> = bind_all(sqlx::query_as(&query), sql.params).fetch_all(&mut *conn).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// One page of the audit log, newest first, starting past `cursor`: the
/// Admin Panel's list, and where the next (older) page starts, if any.
#[tracing::instrument(name = "audit::page", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn page(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    filter: &AuditFilter,
    cursor: Option<i64>,
    page_size: i64,
) -> AppResult<AuditSlice> {
    // One more than shown says whether an older page exists, without counting the log.
    let window = Window { cursor, limit: page_size + 1, oldest_first: false };
    let mut items = list(db, actor, org_id, filter, window).await?;
    name_targets(&mut *db.pool().acquire().await?, org_id, &mut items).await?;
    for event in &mut items {
        event.facts = event.details.as_deref().map(facts).unwrap_or_default();
    }
    Ok(AuditSlice::of(items, page_size, |event| event.id))
}

/// An event's details as (what, value) pairs a person reads: a change first,
/// as "before → after" (field by field, for the fields that changed); lists
/// joined by commas; nothing in JSON but what has no plainer form.
fn facts(details: &str) -> Vec<(String, String)> {
    use serde_json::Value;
    fn plain(value: &Value) -> String {
        match value {
            Value::String(text) if !text.is_empty() => text.clone(),
            Value::String(_) | Value::Null => "none".into(),
            Value::Array(items) if items.is_empty() => "none".into(),
            Value::Array(items) if !items.iter().any(|i| i.is_array() || i.is_object()) => {
                items.iter().map(plain).collect::<Vec<_>>().join(", ")
            }
            other => other.to_string(),
        }
    }
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(details) else {
        return vec![("details".into(), details.to_string())];
    };
    let mut out = Vec::new();
    let change = map.get("before").zip(map.get("after"));
    match change {
        // Several fields: the ones that changed, each on its own.
        Some((Value::Object(before), Value::Object(after))) => {
            let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
            for key in keys {
                let (old, new) =
                    (before.get(key).unwrap_or(&Value::Null), after.get(key).unwrap_or(&Value::Null));
                if old != new {
                    out.push((key.replace('_', " "), format!("{} → {}", plain(old), plain(new))));
                }
            }
        }
        Some((before, after)) => {
            out.push(("changed".into(), format!("{} → {}", plain(before), plain(after))))
        }
        None => {}
    }
    for (key, value) in &map {
        if change.is_some() && matches!(key.as_str(), "before" | "after") {
            continue;
        }
        out.push((key.replace('_', " "), plain(value)));
    }
    out
}

/// Where targets are named: the kinds of target a table names, its column
/// that names them, and whether the table belongs to one Organization (it is
/// then read only within the log's own; the others are named only as this log
/// references them). A domain or a model is its own name.
const TARGET_NAMES: &[(&[&str], &str, &str, bool)] = &[
    (&["user"], "users", "email", false),
    // The Organization's own settings are named by it.
    (&["organization", "payment_method", "monthly_limit"], "organizations", "name", false),
    (&["workspace", "workspace_monthly_limit"], "workspaces", "name", true),
    (&["api_key"], "workspace_api_keys", "name", true),
    (&["service_account"], "service_accounts", "name", true),
    (&["invitation"], "invitations", "email", true),
    (&["user_group"], "user_groups", "name", true),
    (&["admin_api_key"], "admin_api_keys", "name", true),
    (&["scim_token"], "scim_tokens", "name", true),
    (&["enterprise_account"], "enterprise_accounts", "name", false),
];

/// Names the targets of `events` as they are called now: one query per table
/// that names a target on the page, by primary key.
async fn name_targets(conn: &mut AnyConnection, org_id: OrgId, events: &mut [AuditEntry]) -> AppResult<()> {
    for event in events.iter_mut() {
        event.target_name = match event.target_type.as_str() {
            "domain" | "model" => event.target_id.clone(),
            _ => None,
        };
    }
    for &(kinds, table, column, per_org) in TARGET_NAMES {
        let named = |event: &AuditEntry| kinds.contains(&event.target_type.as_str());
        let ids: BTreeSet<&str> =
            events.iter().filter(|e| named(e)).filter_map(|e| e.target_id.as_deref()).collect();
        if ids.is_empty() {
            continue;
        }
        let mut sql = Conditions::default();
        let ids = placeholders(&mut sql, &ids.into_iter().collect::<Vec<_>>());
        sql.and(format!("id IN ({ids})"));
        if per_org {
            let org = sql.param(Param::Text(org_id.to_string()));
            sql.and(format!("org_id = {org}"));
        }
        let query = format!("SELECT id, {column} FROM {table} WHERE {}", sql.text);
        let names: HashMap<String, String> =
            bind_all(sqlx::query_as(&query), sql.params).fetch_all(&mut *conn).await?.into_iter().collect();
        for event in events.iter_mut().filter(|e| named(e)) {
            event.target_name = event.target_id.as_ref().and_then(|id| names.get(id).cloned());
        }
    }
    Ok(())
}

/// An export of an Organization's log, newest first, read a window at a time
/// as the download is sent: memory holds one window however long the log, and
/// keyset windows neither repeat nor skip events written meanwhile.
pub struct Export {
    db: Db,
    org_id: OrgId,
    filter: AuditFilter,
    /// The last event read; `None` before the first window.
    cursor: Option<i64>,
    done: bool,
}

/// Events read per window of an export.
const EXPORT_WINDOW: i64 = 1_000;

impl Export {
    /// An export for `actor`, who must administer the Organization.
    #[tracing::instrument(name = "audit::start", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
    pub async fn start(db: &Db, actor: &Actor, org_id: OrgId, filter: AuditFilter) -> AppResult<Self> {
        filter.check()?;
        authz::org_admin(&mut *db.pool().acquire().await?, actor, org_id).await?;
        Ok(Self { db: db.clone(), org_id, filter, cursor: None, done: false })
    }

    /// The next events, newest first; none once every event was read.
    pub async fn next(&mut self) -> AppResult<Vec<AuditEntry>> {
        if self.done {
            return Ok(Vec::new());
        }
        let window = Window { cursor: self.cursor, limit: EXPORT_WINDOW, oldest_first: false };
        let events = read(&mut *self.db.pool().acquire().await?, self.org_id, &self.filter, window).await?;
        self.done = (events.len() as i64) < EXPORT_WINDOW;
        self.cursor = events.last().map(|e| e.id);
        Ok(events)
    }
}

const COLUMNS: &str =
    "id, created_at, actor_type, actor_id, actor_label, action, target_type, target_id, details, ip";

fn placeholders(sql: &mut Conditions, values: &[&str]) -> String {
    values.iter().map(|v| sql.param(Param::Text(v.to_string()))).collect::<Vec<_>>().join(", ")
}

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
            action: audit_events::current_name(&r.action).to_string(),
            target_type: r.target_type,
            target_id: r.target_id,
            target_name: None,
            facts: Vec::new(),
            details: r.details,
            ip: r.ip,
        }
    }
}

/// The events as lines of CSV (RFC 4180), under [`CSV_HEADER`]. Cells that a
/// spreadsheet would run as formulas are prefixed with `'`.
pub fn to_csv(entries: &[AuditEntry]) -> String {
    let mut out = String::new();
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

/// The first line of the CSV export, naming the columns of [`to_csv`]'s lines.
pub const CSV_HEADER: &str = "time,actor_type,actor,actor_id,action,target_type,target_id,ip,details\r\n";

/// A CSV cell. A text a spreadsheet would run as a formula is prefixed with
/// `'`, as is one that starts with `'`, so [`csv_text`] gives back exactly what
/// was written.
pub(super) fn csv_cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) {
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

/// The text [`csv_cell`] wrote (once the CSV reader has undone the quoting).
pub(super) fn csv_text(cell: &str) -> &str {
    cell.strip_prefix('\'').unwrap_or(cell)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_read_as_facts() {
        let pairs = |list: &[(&str, &str)]| {
            list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>()
        };
        assert_eq!(
            facts(r#"{"before":["member"],"after":["admin","billing"],"via":"scim"}"#),
            pairs(&[("changed", "member → admin, billing"), ("via", "scim")])
        );
        assert_eq!(
            facts(r#"{"keys_revoked":3,"pending":false,"limit":null,"extra":{"a":1}}"#),
            pairs(&[("extra", r#"{"a":1}"#), ("keys revoked", "3"), ("limit", "none"), ("pending", "false")])
        );
        assert_eq!(
            facts(r#"{"before":{"name":"Lab","icon":""},"after":{"name":"Research","icon":""}}"#),
            pairs(&[("name", "Lab → Research")])
        );
        assert_eq!(facts("not json"), pairs(&[("details", "not json")]));
    }

    #[test]
    fn the_panel_refuses_a_range_that_ends_before_it_starts() {
        let query =
            |from: &str, to: &str| AuditQuery { from: from.into(), to: to.into(), ..AuditQuery::default() };
        let err = AuditFilter::from_panel(&query("2026-03-02", "2026-03-01")).unwrap_err();
        assert_eq!(err.field(), Some("to"));
        let one_day = AuditFilter::from_panel(&query("2026-03-01", "2026-03-01")).unwrap();
        assert_eq!(one_day.before.unwrap().0 - one_day.after.unwrap().0, 86_400_000);
    }

    #[test]
    fn csv_quotes_what_needs_quoting_and_defuses_formulas() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("'quoted"), "''quoted");
        for text in ["plain", "-1", "'quoted", "''", "=1+1", ""] {
            assert_eq!(csv_text(csv_cell(text).trim_matches('"')), text);
        }
    }
}
