//! Billing of an organization: its payment method, its monthly spending limit,
//! and each workspace's budget and limits (requests per minute, allowed models).
//!
//! Billing managers (Admins and Billing users, and the organization's Admin API
//! keys) manage payment and spending; rate limits and model allow-lists are
//! the Admins'. A workspace's budget is never above the organization's limit.

use std::collections::BTreeMap;

use chrono::{Datelike, TimeZone, Utc};
use sqlx::AnyConnection;

use super::{
    actor::{Actor, Client},
    audit::{self, AuditEvent},
    authz,
    db::Db,
    models, workspaces,
};
use crate::{
    error::{AppError, AppResult},
    ids::{OrgId, WorkspaceId},
    model::{BillingView, RateLimits, TokenLimits, WorkspaceLimits},
    money::format_usd,
    payment::{Marketplace, PaymentMethod},
    time::Timestamp,
};

/// The first millisecond of the calendar month (UTC) holding `at`: budgets run by calendar month.
pub fn month_start(at: Timestamp) -> Timestamp {
    let now = at.to_datetime();
    let first = Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0).single().unwrap_or(now);
    Timestamp(first.timestamp_millis())
}

/// The first millisecond of the calendar month after the one holding `at`.
pub fn next_month_start(at: Timestamp) -> Timestamp {
    const THIRTY_TWO_DAYS_MS: i64 = 32 * 24 * 60 * 60 * 1000;
    month_start(Timestamp(month_start(at).0 + THIRTY_TWO_DAYS_MS))
}

#[tracing::instrument(name = "billing::view", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn view(db: &Db, actor: &Actor, org_id: OrgId) -> AppResult<BillingView> {
    let mut conn = db.pool().acquire().await?;
    authz::billing_manager(&mut conn, actor, org_id).await?;
    let payment_method = payment_method(&mut conn, org_id).await?;
    let (monthly_limit_micros,): (Option<i64>,) =
        sqlx::query_as("SELECT monthly_limit_micros FROM organizations WHERE id = $1")
            .bind(org_id)
            .fetch_one(&mut *conn)
            .await?;
    let since = month_start(Timestamp::now());
    let (month_spend_micros,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) FROM usage_hourly WHERE org_id = $1 AND hour_start >= $2",
    )
    .bind(org_id)
    .bind(since)
    .fetch_one(&mut *conn)
    .await?;
    let workspaces = workspace_limits(&mut conn, org_id, None).await?;
    let working_keys = super::api_keys::working_count(&mut conn, org_id, None).await?;
    Ok(BillingView {
        working_keys,
        active: payment_method.is_some(),
        payment_method: payment_method.map(|(method, _)| method),
        monthly_limit_micros,
        month_spend_micros,
        workspaces,
    })
}

type BillingRow =
    (String, Option<String>, Option<String>, Option<i64>, Option<i64>, Option<String>, Timestamp);

async fn payment_method(
    conn: &mut AnyConnection,
    org_id: OrgId,
) -> AppResult<Option<(PaymentMethod, Timestamp)>> {
    let row: Option<BillingRow> = sqlx::query_as(
        "SELECT method, card_brand, card_last4, card_exp_month, card_exp_year, marketplace_account, activated_at
         FROM org_billing WHERE org_id = $1",
    )
    .bind(org_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.and_then(|(method, brand, last4, month, year, account, at)| {
        let kept = match Marketplace::parse(&method) {
            Some(marketplace) => PaymentMethod::Marketplace { marketplace, account_id: account? },
            None => PaymentMethod::Card {
                brand: brand?,
                last4: last4?,
                exp_month: u32::try_from(month?).ok()?,
                exp_year: i32::try_from(year?).ok()?,
            },
        };
        Some((kept, at))
    }))
}

/// Activates billing with `method` (checked by `payment::card` or
/// `payment::marketplace`), replacing any earlier one.
#[tracing::instrument(name = "billing::activate", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn activate(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    method: PaymentMethod,
) -> AppResult<()> {
    let mut tx = db.begin().await?;
    let manager = authz::billing_manager(&mut tx, actor, org_id).await?;
    let before = payment_method(&mut tx, org_id).await?.map(|(m, _)| m.describe());
    let (kind, brand, last4, month, year, account) = match &method {
        PaymentMethod::Card { brand, last4, exp_month, exp_year } => (
            "card",
            Some(brand.clone()),
            Some(last4.clone()),
            Some(i64::from(*exp_month)),
            Some(i64::from(*exp_year)),
            None,
        ),
        PaymentMethod::Marketplace { marketplace, account_id } => {
            (marketplace.as_str(), None, None, None, None, Some(account_id.clone()))
        }
    };
    sqlx::query("DELETE FROM org_billing WHERE org_id = $1").bind(org_id).execute(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO org_billing (org_id, method, card_brand, card_last4, card_exp_month, card_exp_year,
                                  marketplace_account, activated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(org_id)
    .bind(kind)
    .bind(brand)
    .bind(last4)
    .bind(month)
    .bind(year)
    .bind(account)
    .bind(Timestamp::now())
    .execute(&mut *tx)
    .await?;
    let event = AuditEvent::new("billing.payment_method.added", "payment_method", org_id)
        .in_org(org_id)
        .with_details(serde_json::json!({ "before": before, "after": method.describe() }));
    audit::record(&mut tx, &manager, client, event).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes the payment method: billing becomes inactive and the gateway refuses the keys.
#[tracing::instrument(name = "billing::deactivate", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn deactivate(db: &Db, actor: &Actor, client: &Client, org_id: OrgId) -> AppResult<()> {
    let mut tx = db.begin().await?;
    let manager = authz::billing_manager(&mut tx, actor, org_id).await?;
    let Some((before, _)) = payment_method(&mut tx, org_id).await? else {
        return Err(AppError::conflict("payment_method", "Billing is not active."));
    };
    sqlx::query("DELETE FROM org_billing WHERE org_id = $1").bind(org_id).execute(&mut *tx).await?;
    let event = AuditEvent::new("billing.payment_method.removed", "payment_method", org_id)
        .in_org(org_id)
        .with_details(serde_json::json!({ "before": before.describe() }));
    audit::record(&mut tx, &manager, client, event).await?;
    tx.commit().await?;
    Ok(())
}

fn shown(limit: Option<i64>) -> String {
    limit.map(format_usd).unwrap_or_else(|| "no limit".into())
}

/// Sets (or with `None`, removes) the organization's monthly spending limit.
/// It cannot go below a workspace's budget.
#[tracing::instrument(name = "billing::set_org_limit", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn set_org_limit(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    limit: Option<i64>,
) -> AppResult<()> {
    let mut tx = db.begin().await?;
    let manager = authz::billing_manager(&mut tx, actor, org_id).await?;
    if let Some(limit) = limit {
        let above: Option<(String, i64)> = sqlx::query_as(
            "SELECT w.name, l.monthly_budget_micros FROM workspace_limits l JOIN workspaces w ON w.id = l.workspace_id
             WHERE w.org_id = $1 AND w.archived_at IS NULL AND l.monthly_budget_micros > $2
             ORDER BY l.monthly_budget_micros DESC LIMIT 1",
        )
        .bind(org_id)
        .bind(limit)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((name, budget)) = above {
            return Err(AppError::invalid(
                "amount",
                format!(
                    "Workspace {name} has a budget of {}; lower it first, or keep the organization's limit at least that.",
                    format_usd(budget)
                ),
            ));
        }
    }
    let (before,): (Option<i64>,) =
        sqlx::query_as("SELECT monthly_limit_micros FROM organizations WHERE id = $1")
            .bind(org_id)
            .fetch_one(&mut *tx)
            .await?;
    // Saving what is already there changes nothing, and is not logged.
    if before == limit {
        return Ok(());
    }
    sqlx::query("UPDATE organizations SET monthly_limit_micros = $1 WHERE id = $2")
        .bind(limit)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    let event = AuditEvent::new("billing.monthly_limit.updated", "monthly_limit", org_id)
        .in_org(org_id)
        .with_details(serde_json::json!({ "before": shown(before), "after": shown(limit) }));
    audit::record(&mut tx, &manager, client, event).await?;
    tx.commit().await?;
    Ok(())
}

/// Sets (or with `None`, removes) a workspace's monthly budget, at most the organization's limit.
#[tracing::instrument(name = "billing::set_workspace_budget", skip_all, fields(actor = actor.kind(), org_id = %org_id, workspace_id = %workspace_id), err(level = "debug"))]
pub async fn set_workspace_budget(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    workspace_id: WorkspaceId,
    budget: Option<i64>,
) -> AppResult<()> {
    let mut tx = db.begin().await?;
    let manager = authz::billing_manager(&mut tx, actor, org_id).await?;
    workspaces::require_active(&mut tx, org_id, workspace_id).await?;
    let (org_limit,): (Option<i64>,) =
        sqlx::query_as("SELECT monthly_limit_micros FROM organizations WHERE id = $1")
            .bind(org_id)
            .fetch_one(&mut *tx)
            .await?;
    if let (Some(budget), Some(org_limit)) = (budget, org_limit) {
        if budget > org_limit {
            return Err(AppError::invalid(
                "amount",
                format!(
                    "A workspace's budget cannot exceed the organization's monthly limit of {}.",
                    format_usd(org_limit)
                ),
            ));
        }
    }
    let before = current_limits(&mut tx, workspace_id).await?.1;
    // Saving what is already there changes nothing, and is not logged.
    if before == budget {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO workspace_limits (workspace_id, monthly_budget_micros) VALUES ($1, $2)
         ON CONFLICT (workspace_id) DO UPDATE SET monthly_budget_micros = excluded.monthly_budget_micros",
    )
    .bind(workspace_id)
    .bind(budget)
    .execute(&mut *tx)
    .await?;
    let event =
        AuditEvent::new("billing.workspace_monthly_limit.updated", "workspace_monthly_limit", workspace_id)
            .in_org(org_id)
            .with_details(serde_json::json!({ "before": shown(before), "after": shown(budget) }));
    audit::record(&mut tx, &manager, client, event).await?;
    tx.commit().await?;
    Ok(())
}

pub const MAX_REQUESTS_PER_MINUTE: i64 = 1_000_000;
pub const MAX_REQUESTS_PER_SECOND: i64 = 100_000;
/// Tokens per minute or per month: up to a trillion.
pub const MAX_TOKENS_LIMIT: i64 = 1_000_000_000_000;

/// A requests-per-minute limit (a workspace's or a key's) is 1 to a million; `None` is no limit.
pub fn check_requests_per_minute(limit: Option<i64>) -> AppResult<()> {
    check_range("requests_per_minute", "Requests per minute", limit, MAX_REQUESTS_PER_MINUTE)
}

fn check_range(field: &str, what: &str, limit: Option<i64>, most: i64) -> AppResult<()> {
    match limit {
        Some(n) if !(1..=most).contains(&n) => {
            Err(AppError::invalid(field, format!("{what} must be between 1 and {most}.")))
        }
        _ => Ok(()),
    }
}

/// Checks every limit's range and that every model named is in the catalogue;
/// drops per-model entries without a limit.
async fn checked(db: &Db, mut limits: RateLimits) -> AppResult<RateLimits> {
    check_requests_per_minute(limits.requests_per_minute)?;
    check_range(
        "requests_per_second",
        "Requests per second",
        limits.requests_per_second,
        MAX_REQUESTS_PER_SECOND,
    )?;
    let named: Vec<String> = limits.tokens_limits_by_model.keys().cloned().collect();
    models::require_known(db, "tokens_limits_by_model", &named).await?;
    limits.tokens_limits_by_model = std::mem::take(&mut limits.tokens_limits_by_model)
        .into_iter()
        .filter(|(_, tokens)| !tokens.is_unlimited())
        .map(|(model, tokens)| (model.trim().to_string(), tokens))
        .collect();
    for tokens in limits.tokens_limits_by_model.values() {
        check_range("tokens_per_minute", "Tokens per minute", tokens.tokens_per_minute, MAX_TOKENS_LIMIT)?;
        check_range("tokens_per_month", "Tokens per month", tokens.tokens_per_month, MAX_TOKENS_LIMIT)?;
    }
    if let Some(ids) = &limits.allowed_models {
        limits.allowed_models = Some(models::require_known(db, "allowed_models", ids).await?);
    }
    Ok(limits)
}

/// Changes a workspace's rate limits, model allow-list and per-model token
/// limits (Admins only): `change` edits the current ones, which are then
/// checked, stored and audited with their before and after.
#[tracing::instrument(name = "billing::update_rate_limits", skip_all, fields(actor = actor.kind(), org_id = %org_id, workspace_id = %workspace_id), err(level = "debug"))]
pub async fn update_rate_limits(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    workspace_id: WorkspaceId,
    change: impl FnOnce(&mut RateLimits) + Send,
) -> AppResult<RateLimits> {
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    workspaces::require_active(&mut tx, org_id, workspace_id).await?;
    let before = current_limits(&mut tx, workspace_id).await?.0;
    let mut after = before.clone();
    change(&mut after);
    let after = checked(db, after).await?;
    // Saving what is already there changes nothing, and is not logged.
    if before == after {
        return Ok(after);
    }
    sqlx::query(
        "INSERT INTO workspace_limits
            (workspace_id, allowed_models, requests_per_minute, requests_per_second, model_token_limits)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (workspace_id) DO UPDATE
         SET allowed_models = excluded.allowed_models, requests_per_minute = excluded.requests_per_minute,
             requests_per_second = excluded.requests_per_second, model_token_limits = excluded.model_token_limits",
    )
    .bind(workspace_id)
    .bind(after.allowed_models.as_ref().map(|ids| ids.join(",")))
    .bind(after.requests_per_minute)
    .bind(after.requests_per_second)
    .bind(stored_token_limits(&after.tokens_limits_by_model))
    .execute(&mut *tx)
    .await?;
    let event = AuditEvent::new("rate_limit.rule.update", "workspace", workspace_id)
        .in_org(org_id)
        .with_details(serde_json::json!({ "before": before, "after": after }));
    audit::record(&mut tx, &admin, client, event).await?;
    tx.commit().await?;
    Ok(after)
}

/// Per-model token limits as `workspace_limits.model_token_limits` keeps them (NULL: none).
fn stored_token_limits(limits: &BTreeMap<String, TokenLimits>) -> Option<String> {
    (!limits.is_empty()).then(|| serde_json::to_string(limits).unwrap_or_default())
}

/// Per-model token limits from `workspace_limits.model_token_limits`.
pub(super) fn read_token_limits(stored: Option<&str>) -> BTreeMap<String, TokenLimits> {
    stored.and_then(|json| serde_json::from_str(json).ok()).unwrap_or_default()
}

type CurrentRow = (Option<String>, Option<i64>, Option<i64>, Option<String>, Option<i64>);

/// A workspace's rate limits and monthly budget.
async fn current_limits(
    conn: &mut AnyConnection,
    workspace_id: WorkspaceId,
) -> AppResult<(RateLimits, Option<i64>)> {
    let row: Option<CurrentRow> = sqlx::query_as(
        "SELECT allowed_models, requests_per_minute, requests_per_second, model_token_limits, monthly_budget_micros
         FROM workspace_limits WHERE workspace_id = $1",
    )
    .bind(workspace_id)
    .fetch_optional(conn)
    .await?;
    Ok(row
        .map(|(models, rpm, rps, tokens, budget)| (rate_limits(models, rpm, rps, tokens), budget))
        .unwrap_or_default())
}

fn rate_limits(
    models: Option<String>,
    requests_per_minute: Option<i64>,
    requests_per_second: Option<i64>,
    tokens: Option<String>,
) -> RateLimits {
    RateLimits {
        requests_per_second,
        requests_per_minute,
        allowed_models: models.map(|m| split_models(&m)),
        tokens_limits_by_model: read_token_limits(tokens.as_deref()),
    }
}

pub(super) fn split_models(stored: &str) -> Vec<String> {
    stored.split(',').filter(|m| !m.is_empty()).map(str::to_string).collect()
}

type LimitsRow =
    (WorkspaceId, String, Option<String>, Option<i64>, Option<i64>, Option<String>, Option<i64>, i64);

/// The limits and this month's spend of the organization's active workspaces
/// (or of one), by name.
async fn workspace_limits(
    conn: &mut AnyConnection,
    org_id: OrgId,
    only: Option<WorkspaceId>,
) -> AppResult<Vec<WorkspaceLimits>> {
    let just_one = if only.is_some() { " AND w.id = $3" } else { "" };
    let sql = format!(
        "SELECT w.id, w.name, l.allowed_models, l.requests_per_minute, l.requests_per_second,
                l.model_token_limits, l.monthly_budget_micros,
                CAST(COALESCE((SELECT SUM(u.cost_micros) FROM usage_hourly u
                               WHERE u.workspace_id = w.id AND u.hour_start >= $2), 0) AS BIGINT)
         FROM workspaces w LEFT JOIN workspace_limits l ON l.workspace_id = w.id
         WHERE w.org_id = $1 AND w.archived_at IS NULL{just_one}
         ORDER BY w.created_at, w.id"
    );
    let mut rows = sqlx::query_as(&sql).bind(org_id).bind(month_start(Timestamp::now()));
    if let Some(id) = only {
        rows = rows.bind(id.to_string());
    }
    let rows: Vec<LimitsRow> = rows.fetch_all(conn).await?;
    Ok(rows
        .into_iter()
        .map(|(workspace_id, workspace_name, models, rpm, rps, tokens, budget, spend)| WorkspaceLimits {
            workspace_id,
            workspace_name,
            rate_limits: rate_limits(models, rpm, rps, tokens),
            monthly_budget_micros: budget,
            month_spend_micros: spend,
        })
        .collect())
}

/// One workspace's limits and spend (the default workspace's without one), for
/// its Admins and the billing managers.
#[tracing::instrument(name = "billing::limits_of", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn limits_of(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    workspace_id: Option<WorkspaceId>,
) -> AppResult<WorkspaceLimits> {
    let mut conn = db.pool().acquire().await?;
    authz::billing_manager(&mut conn, actor, org_id).await?;
    let workspace_id = match workspace_id {
        Some(id) => id,
        None => workspaces::default_of(&mut conn, org_id).await?,
    };
    workspace_limits(&mut conn, org_id, Some(workspace_id)).await?.pop().ok_or(AppError::NotFound)
}
