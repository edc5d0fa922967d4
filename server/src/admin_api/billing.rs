//! Billing status, spending limits, workspace rate limits and the model catalogue:
//! `/billing`, `/spend-limit`, `/rate-limit`, `/models`.
//!
//! Money: Mistral's `amount` and `usage_limit` are whole US dollars; the
//! `*_micros` fields carry exact micro-USD (1 USD = 1 000 000).

use std::collections::BTreeMap;

use app::{
    ids::WorkspaceId,
    model::{BillingView, RateLimits, TokenLimits, WorkspaceLimits},
    money::MICROS_PER_USD,
    payment::PaymentMethod,
    server::{billing, models, state::AppState},
    AppError,
};
use axum::{extract::State, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{AdminKey, ApiError, ApiJson, ApiQuery};

#[derive(Serialize, ToSchema)]
pub struct PaymentMethodOut {
    /// `card`, `aws` or `azure`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub brand: Option<String>,
    pub last4: Option<String>,
    pub exp_month: Option<u32>,
    pub exp_year: Option<i32>,
    pub account_id: Option<String>,
}

impl From<PaymentMethod> for PaymentMethodOut {
    fn from(method: PaymentMethod) -> Self {
        match method {
            PaymentMethod::Card { brand, last4, exp_month, exp_year } => Self {
                kind: "card",
                brand: Some(brand),
                last4: Some(last4),
                exp_month: Some(exp_month),
                exp_year: Some(exp_year),
                account_id: None,
            },
            PaymentMethod::Marketplace { marketplace, account_id } => Self {
                kind: marketplace.as_str(),
                brand: None,
                last4: None,
                exp_month: None,
                exp_year: None,
                account_id: Some(account_id),
            },
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct BillingOut {
    /// False until a payment method is on file; the gateway refuses keys meanwhile.
    pub active: bool,
    pub payment_method: Option<PaymentMethodOut>,
    pub currency: &'static str,
}

/// Whether billing is active, and with which payment method.
#[utoipa::path(get, path = "/billing", tag = "billing", responses((status = 200, body = BillingOut)))]
pub async fn get_billing(State(state): State<AppState>, key: AdminKey) -> Result<Json<BillingOut>, ApiError> {
    let view = billing::view(&state.db, &key.actor, key.org_id).await?;
    Ok(Json(BillingOut {
        active: view.active,
        payment_method: view.payment_method.map(Into::into),
        currency: "USD",
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LimitQuery {
    /// A workspace; without it, the Organization.
    pub workspace_uuid: Option<uuid::Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct UsageLimitsOut {
    pub monthly_limit_reached: bool,
    pub no_monthly_limit: bool,
    /// Whole US dollars (null without a limit).
    pub usage_limit: Option<i64>,
    pub usage_limit_micros: Option<i64>,
    /// This calendar month's spend, micro-USD.
    pub usage_micros: i64,
}

#[derive(Serialize, ToSchema)]
pub struct LimitsBody {
    pub completion: UsageLimitsOut,
    pub currency: &'static str,
    pub workspace_uuid: Option<uuid::Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct LimitsOut {
    pub limits: LimitsBody,
}

fn limits_out(limit: Option<i64>, spend: i64, workspace: Option<WorkspaceId>) -> LimitsOut {
    LimitsOut {
        limits: LimitsBody {
            completion: UsageLimitsOut {
                monthly_limit_reached: limit.is_some_and(|l| spend >= l),
                no_monthly_limit: limit.is_none(),
                usage_limit: limit.map(|l| l / MICROS_PER_USD),
                usage_limit_micros: limit,
                usage_micros: spend,
            },
            currency: "USD",
            workspace_uuid: workspace.map(|w| w.0),
        },
    }
}

async fn current(
    state: &AppState,
    key: &AdminKey,
    workspace: Option<WorkspaceId>,
) -> Result<LimitsOut, ApiError> {
    Ok(match workspace {
        Some(id) => {
            let w = billing::limits_of(&state.db, &key.actor, key.org_id, Some(id)).await?;
            limits_out(w.monthly_budget_micros, w.month_spend_micros, Some(id))
        }
        None => {
            let BillingView { monthly_limit_micros, month_spend_micros, .. } =
                billing::view(&state.db, &key.actor, key.org_id).await?;
            limits_out(monthly_limit_micros, month_spend_micros, None)
        }
    })
}

/// The monthly spending limit and this month's spend, of the Organization or of a workspace.
#[utoipa::path(get, path = "/spend-limit", tag = "billing", params(LimitQuery),
    responses((status = 200, body = LimitsOut), (status = 404, description = "No such workspace")))]
pub async fn get_spend_limit(
    State(state): State<AppState>,
    key: AdminKey,
    ApiQuery(query): ApiQuery<LimitQuery>,
) -> Result<Json<LimitsOut>, ApiError> {
    Ok(Json(current(&state, &key, query.workspace_uuid.map(WorkspaceId)).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpendLimitIn {
    /// Whole US dollars.
    pub amount: Option<i64>,
    /// True removes the limit (`amount` is then ignored).
    #[serde(default)]
    pub no_monthly_limit: bool,
    /// A workspace's budget; without it, the Organization's limit.
    pub workspace_uuid: Option<uuid::Uuid>,
}

/// Set the monthly spending limit of the Organization, or a workspace's budget
/// (never above the Organization's).
#[utoipa::path(post, path = "/spend-limit", tag = "billing", request_body = SpendLimitIn,
    responses((status = 200, body = LimitsOut), (status = 400, description = "Bad amount, or above the Organization's limit")))]
pub async fn set_spend_limit(
    State(state): State<AppState>,
    key: AdminKey,
    ApiJson(body): ApiJson<SpendLimitIn>,
) -> Result<Json<LimitsOut>, ApiError> {
    let limit = if body.no_monthly_limit {
        None
    } else {
        let amount = body
            .amount
            .ok_or_else(|| AppError::invalid("amount", "Give amount, or no_monthly_limit: true."))?;
        if !(0..=1_000_000_000).contains(&amount) {
            return Err(
                AppError::invalid("amount", "amount is whole US dollars, from 0 to 1,000,000,000.").into()
            );
        }
        Some(amount * MICROS_PER_USD)
    };
    let workspace = body.workspace_uuid.map(WorkspaceId);
    match workspace {
        Some(id) => {
            billing::set_workspace_budget(&state.db, &key.actor, &key.client, key.org_id, id, limit).await?
        }
        None => billing::set_org_limit(&state.db, &key.actor, &key.client, key.org_id, limit).await?,
    }
    Ok(Json(current(&state, &key, workspace).await?))
}

/// One model's token limits in a workspace (Mistral's shape). Null: no limit.
#[derive(Serialize, ToSchema)]
pub struct TokenLimitsOut {
    #[schema(minimum = 1, maximum = 1000000000000_i64)]
    pub tokens_per_minute: Option<i64>,
    #[schema(minimum = 1, maximum = 1000000000000_i64)]
    pub tokens_per_month: Option<i64>,
}

/// A workspace's rate limits: Mistral's `RateLimitsOUT` (`requests_per_second`,
/// `tokens_limits_by_model`) and Chancery's requests per minute and allow-list.
#[derive(Serialize, ToSchema)]
pub struct RateLimitOut {
    pub workspace_uuid: uuid::Uuid,
    /// Null: no limit.
    pub requests_per_second: Option<i64>,
    /// Null: no limit.
    pub requests_per_minute: Option<i64>,
    /// Null: every model of the catalogue.
    pub allowed_models: Option<Vec<String>>,
    /// By model id; a model not named has no token limit.
    pub tokens_limits_by_model: BTreeMap<String, TokenLimitsOut>,
}

impl From<WorkspaceLimits> for RateLimitOut {
    fn from(w: WorkspaceLimits) -> Self {
        let limits = w.rate_limits;
        Self {
            workspace_uuid: w.workspace_id.0,
            requests_per_second: limits.requests_per_second,
            requests_per_minute: limits.requests_per_minute,
            allowed_models: limits.allowed_models,
            tokens_limits_by_model: limits
                .tokens_limits_by_model
                .into_iter()
                .map(|(model, t)| {
                    (
                        model,
                        TokenLimitsOut {
                            tokens_per_minute: t.tokens_per_minute,
                            tokens_per_month: t.tokens_per_month,
                        },
                    )
                })
                .collect(),
        }
    }
}

/// One model's token limits, as set. Null or absent: no limit.
#[derive(ToSchema)]
pub struct TokenLimitsIn {
    #[schema(minimum = 1, maximum = 1000000000000_i64)]
    pub tokens_per_minute: Option<i64>,
    #[schema(minimum = 1, maximum = 1000000000000_i64)]
    pub tokens_per_month: Option<i64>,
}

/// Read from a JSON object only (serde would take an array for a struct too),
/// and no field it does not know.
impl<'de> Deserialize<'de> for TokenLimitsIn {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Fields {
            tokens_per_minute: Option<i64>,
            tokens_per_month: Option<i64>,
        }
        let object = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let fields: Fields =
            serde_json::from_value(serde_json::Value::Object(object)).map_err(serde::de::Error::custom)?;
        Ok(Self { tokens_per_minute: fields.tokens_per_minute, tokens_per_month: fields.tokens_per_month })
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RateLimitQuery {
    /// Absent: the Organization's default workspace.
    pub workspace_uuid: Option<uuid::Uuid>,
}

/// A workspace's rate limits, model allow-list and per-model token limits.
#[utoipa::path(get, path = "/rate-limit", tag = "billing", params(RateLimitQuery),
    responses((status = 200, body = RateLimitOut), (status = 404, description = "No such workspace")))]
pub async fn get_rate_limit(
    State(state): State<AppState>,
    key: AdminKey,
    ApiQuery(query): ApiQuery<RateLimitQuery>,
) -> Result<Json<RateLimitOut>, ApiError> {
    let id = query.workspace_uuid.map(WorkspaceId);
    Ok(Json(billing::limits_of(&state.db, &key.actor, key.org_id, id).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitIn {
    /// Absent: the Organization's default workspace.
    pub workspace_uuid: Option<uuid::Uuid>,
    /// Null or absent: no limit.
    #[schema(minimum = 1, maximum = 100000)]
    pub requests_per_second: Option<i64>,
    /// Null or absent: no limit.
    #[schema(minimum = 1, maximum = 1000000)]
    pub requests_per_minute: Option<i64>,
    /// Null or absent: every model.
    pub allowed_models: Option<Vec<String>>,
    /// By model id (each of the catalogue); absent: no token limit.
    #[serde(default)]
    pub tokens_limits_by_model: BTreeMap<String, TokenLimitsIn>,
}

/// Set a workspace's rate limits, model allow-list and per-model token limits:
/// all are replaced, so a field left out is no limit.
#[utoipa::path(post, path = "/rate-limit", tag = "billing", request_body = RateLimitIn,
    responses((status = 200, body = RateLimitOut), (status = 400, description = "Bad limit or unknown model"),
        (status = 404, description = "No such workspace, or it is archived")))]
pub async fn set_rate_limit(
    State(state): State<AppState>,
    key: AdminKey,
    ApiJson(body): ApiJson<RateLimitIn>,
) -> Result<Json<RateLimitOut>, ApiError> {
    let id = match body.workspace_uuid {
        Some(id) => WorkspaceId(id),
        None => billing::limits_of(&state.db, &key.actor, key.org_id, None).await?.workspace_id,
    };
    let limits = RateLimits {
        requests_per_second: body.requests_per_second,
        requests_per_minute: body.requests_per_minute,
        allowed_models: body.allowed_models,
        tokens_limits_by_model: body
            .tokens_limits_by_model
            .into_iter()
            .map(|(model, t)| {
                (
                    model,
                    TokenLimits {
                        tokens_per_minute: t.tokens_per_minute,
                        tokens_per_month: t.tokens_per_month,
                    },
                )
            })
            .collect(),
    };
    billing::update_rate_limits(&state.db, &key.actor, &key.client, key.org_id, id, |current| {
        *current = limits
    })
    .await?;
    Ok(Json(billing::limits_of(&state.db, &key.actor, key.org_id, Some(id)).await?.into()))
}

#[derive(Serialize, ToSchema)]
pub struct ModelPriceOut {
    pub id: String,
    /// `chat` or `embedding`.
    pub kind: &'static str,
    /// Micro-USD per million input tokens.
    pub input_micros_per_mtok: i64,
    /// Micro-USD per million output tokens.
    pub output_micros_per_mtok: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ModelsOut {
    pub data: Vec<ModelPriceOut>,
}

/// The model catalogue and its prices, as the operator set them.
#[utoipa::path(get, path = "/models", tag = "billing", responses((status = 200, body = ModelsOut)))]
pub async fn list_models(State(state): State<AppState>, _key: AdminKey) -> Result<Json<ModelsOut>, ApiError> {
    let data = models::list(&state.db)
        .await?
        .into_iter()
        .map(|m| ModelPriceOut {
            id: m.id,
            kind: m.kind.as_str(),
            input_micros_per_mtok: m.input_micros_per_mtok,
            output_micros_per_mtok: m.output_micros_per_mtok,
        })
        .collect();
    Ok(Json(ModelsOut { data }))
}
