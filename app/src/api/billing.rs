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
    let limits = billing::limits_of(&state.db, &me, org.id, workspace_id).await?;
    Ok((limits, models::list(&state.db).await?))
}

/// `allowed_models`: model ids separated by commas or spaces; empty allows every model.
/// `requests_per_minute`: empty for no limit.
#[server(prefix = "/_fn", endpoint = "workspaces/set_rate_limits")]
pub async fn set_rate_limits(
    workspace_id: WorkspaceId,
    requests_per_minute: String,
    allowed_models: String,
) -> Result<(), AppError> {
    use crate::{
        server::{billing, request},
        validate,
    };
    let (state, me, org) = request::org_member().await?;
    let limits = billing::RateLimits {
        requests_per_minute: validate::requests_per_minute(&requests_per_minute)?,
        allowed_models: validate::model_list(&allowed_models),
    };
    billing::set_rate_limits(&state.db, &me, &request::client(&state), org.id, workspace_id, limits).await
}

/// The Usage page: a report for `range` (`24h`, `7d`, `30d`) grouped by `group`
/// (`workspace`, `model`, `key` or empty), and the limits it is measured against.
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
    Ok((report, billing::view(&state.db, &me, org.id).await?))
}
