//! Server functions of the Admin Panel's Billing page and of a workspace's limits.

use leptos::prelude::*;

use crate::{
    error::AppError,
    ids::WorkspaceId,
    model::{BillingView, CatalogueModel, WorkspaceLimits},
};

/// An amount field: empty means "no limit".
#[cfg(feature = "ssr")]
fn optional_usd(field: &str, text: &str) -> Result<Option<i64>, AppError> {
    let text = text.trim();
    if text.is_empty() {
        Ok(None)
    } else {
        crate::money::parse_usd(field, text).map(Some)
    }
}

#[server(prefix = "/_fn", endpoint = "billing")]
pub async fn get_billing() -> Result<BillingView, AppError> {
    use crate::server::{billing, request};
    let (state, me, org) = request::org_member().await?;
    billing::view(&state.db, &me, org.id).await
}

#[server(prefix = "/_fn", endpoint = "billing/add_card")]
pub async fn add_card(card_number: String, card_expiry: String) -> Result<(), AppError> {
    use crate::server::{billing, request};
    let (state, me, org) = request::org_member().await?;
    let card = crate::payment::card(&card_number, &card_expiry, chrono::Utc::now().date_naive())?;
    billing::activate(&state.db, &me, &request::client(&state), org.id, card).await
}

#[server(prefix = "/_fn", endpoint = "billing/add_marketplace")]
pub async fn add_marketplace(marketplace: String, account_id: String) -> Result<(), AppError> {
    use crate::{
        payment::{self, Marketplace},
        server::{billing, request},
    };
    let (state, me, org) = request::org_member().await?;
    let marketplace = Marketplace::parse(&marketplace)
        .ok_or_else(|| AppError::invalid("marketplace", "Choose AWS or Azure."))?;
    let method = payment::marketplace(marketplace, &account_id)?;
    billing::activate(&state.db, &me, &request::client(&state), org.id, method).await
}

#[server(prefix = "/_fn", endpoint = "billing/remove_payment_method")]
pub async fn remove_payment_method() -> Result<(), AppError> {
    use crate::server::{billing, request};
    let (state, me, org) = request::org_member().await?;
    billing::deactivate(&state.db, &me, &request::client(&state), org.id).await
}

#[server(prefix = "/_fn", endpoint = "billing/set_limit")]
pub async fn set_org_limit(amount: String) -> Result<(), AppError> {
    use crate::server::{billing, request};
    let (state, me, org) = request::org_member().await?;
    let limit = optional_usd("amount", &amount)?;
    billing::set_org_limit(&state.db, &me, &request::client(&state), org.id, limit).await
}

#[server(prefix = "/_fn", endpoint = "billing/set_workspace_budget")]
pub async fn set_workspace_budget(workspace_id: WorkspaceId, amount: String) -> Result<(), AppError> {
    use crate::server::{billing, request};
    let (state, me, org) = request::org_member().await?;
    let budget = optional_usd("amount", &amount)?;
    billing::set_workspace_budget(&state.db, &me, &request::client(&state), org.id, workspace_id, budget)
        .await
}

#[server(prefix = "/_fn", endpoint = "workspaces/limits")]
pub async fn get_workspace_limits(
    workspace_id: WorkspaceId,
) -> Result<(WorkspaceLimits, Vec<CatalogueModel>), AppError> {
    use crate::server::{billing, models, request};
    let (state, me, org) = request::org_member().await?;
    let limits = billing::limits_of(&state.db, &me, org.id, Some(workspace_id)).await?;
    Ok((limits, models::list(&state.db).await?))
}

/// `allowed_models`: model ids separated by commas or spaces; empty allows every model.
/// `requests_per_second` and `requests_per_minute`: empty for no limit. Per-model
/// token limits are kept.
#[server(prefix = "/_fn", endpoint = "workspaces/set_rate_limits")]
pub async fn set_rate_limits(
    workspace_id: WorkspaceId,
    #[server(default)] requests_per_second: String,
    requests_per_minute: String,
    allowed_models: String,
) -> Result<(), AppError> {
    use crate::{
        server::{billing, request},
        validate,
    };
    let (state, me, org) = request::org_member().await?;
    let requests_per_second = validate::optional_count("requests_per_second", &requests_per_second)?;
    let requests_per_minute = validate::optional_count("requests_per_minute", &requests_per_minute)?;
    let allowed_models = validate::model_list(&allowed_models);
    billing::update_rate_limits(&state.db, &me, &request::client(&state), org.id, workspace_id, |limits| {
        limits.requests_per_second = requests_per_second;
        limits.requests_per_minute = requests_per_minute;
        limits.allowed_models = allowed_models;
    })
    .await
    .map(drop)
}

/// One model's token limits in a workspace; both empty removes them.
#[server(prefix = "/_fn", endpoint = "workspaces/set_model_limits")]
pub async fn set_model_limits(
    workspace_id: WorkspaceId,
    model: String,
    tokens_per_minute: String,
    tokens_per_month: String,
) -> Result<(), AppError> {
    use crate::{
        model::TokenLimits,
        server::{billing, request},
        validate,
    };
    let (state, me, org) = request::org_member().await?;
    let tokens = TokenLimits {
        tokens_per_minute: validate::optional_count("tokens_per_minute", &tokens_per_minute)?,
        tokens_per_month: validate::optional_count("tokens_per_month", &tokens_per_month)?,
    };
    billing::update_rate_limits(&state.db, &me, &request::client(&state), org.id, workspace_id, |limits| {
        limits.tokens_limits_by_model.insert(model.trim().to_string(), tokens);
    })
    .await
    .map(drop)
}

/// A workspace's usage over the last 30 days by model, on its page: for everyone
/// who works in it.
#[server(prefix = "/_fn", endpoint = "workspaces/usage")]
pub async fn get_workspace_usage(workspace_id: WorkspaceId) -> Result<crate::model::UsageReport, AppError> {
    use crate::{
        server::{request, usage},
        time::Timestamp,
    };
    let (state, me, org) = request::org_member().await?;
    let mut query = usage::UsageQuery::recent("30d", "model", Timestamp::now())?;
    query.workspace_id = Some(workspace_id.to_string());
    usage::report(&state.db, &me, org.id, &query).await
}

/// The Usage page: a report for `range` (`24h`, `7d`, `30d`) grouped by `group`
/// (`workspace`, `model`, `key` or empty), summarized as the page shows it,
/// and the limits it is measured against.
#[server(prefix = "/_fn", endpoint = "usage")]
pub async fn get_usage(
    range: String,
    group: String,
) -> Result<(crate::model::UsageReport, BillingView), AppError> {
    use crate::{
        server::{billing, request, usage},
        time::Timestamp,
    };
    let (state, me, org) = request::org_member().await?;
    let query = usage::UsageQuery::recent(&range, &group, Timestamp::now())?;
    let report = usage::report(&state.db, &me, org.id, &query).await?;
    let report = report.summarized(USAGE_CHART_GROUPS, USAGE_TABLE_GROUPS);
    Ok((report, billing::view(&state.db, &me, org.id).await?))
}

/// Groups the Usage page's chart draws in colours of their own, and lists in
/// its table; the others are summed into one row (the CSV export has them all).
pub const USAGE_CHART_GROUPS: usize = 5;
pub const USAGE_TABLE_GROUPS: usize = 20;
