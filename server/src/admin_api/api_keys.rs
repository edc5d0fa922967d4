//! Workspace API keys: `/api-keys`, shaped as Mistral's, with rotation.

use app::{
    ids::{ApiKeyId, ServiceAccountId, UserId, WorkspaceId},
    model::{ApiKeyStatus, ApiKeyView, CreatedApiKey, KeyPolicy},
    server::{api_keys, key_policy, state::AppState},
};
use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{path_id, AdminKey, ApiError, ApiJson, ApiQuery};

#[derive(Serialize, ToSchema)]
pub struct ActionOut {
    /// `available` or `unavailable`.
    pub status: &'static str,
    pub reason: Option<&'static str>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyActionsOut {
    pub delete: ActionOut,
    pub rotate: ActionOut,
}

/// The key lifetime policy of the Organization, or of one workspace.
#[derive(Serialize, ToSchema)]
pub struct KeyPolicyOut {
    /// The Organization's maximum, in days; null: none.
    pub organization_max_days: Option<i64>,
    /// The workspace's own maximum (only with `workspace_uuid`); null: none.
    pub workspace_max_days: Option<i64>,
    /// What applies to new keys: the stricter of the two.
    pub max_days: Option<i64>,
}

impl From<KeyPolicy> for KeyPolicyOut {
    fn from(p: KeyPolicy) -> Self {
        Self {
            organization_max_days: p.org_max_days,
            workspace_max_days: p.workspace_max_days,
            max_days: p.max_days(),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KeyPolicyQuery {
    /// A workspace: its policy, within the Organization's.
    pub workspace_uuid: Option<uuid::Uuid>,
}

/// The longest workspace API keys may live.
#[utoipa::path(get, path = "/api-key-policy", tag = "api-keys", params(KeyPolicyQuery),
    responses((status = 200, body = KeyPolicyOut), (status = 404, description = "No such workspace")))]
pub async fn get_key_policy(
    State(state): State<AppState>,
    key: AdminKey,
    ApiQuery(q): ApiQuery<KeyPolicyQuery>,
) -> Result<Json<KeyPolicyOut>, ApiError> {
    let workspace = q.workspace_uuid.map(WorkspaceId);
    Ok(Json(key_policy::get(&state.db, &key.actor, key.org_id, workspace).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyPolicyIn {
    /// Null or absent: the Organization's maximum.
    pub workspace_uuid: Option<uuid::Uuid>,
    /// Days, 1 to 3650; null: no maximum. A workspace's is at most the Organization's.
    #[schema(minimum = 1, maximum = 3650)]
    pub max_days: Option<i64>,
}

/// Set the longest workspace API keys may live, for the Organization or one
/// workspace. New keys asked without an expiry, or beyond it, expire on the
/// latest day allowed (rotations too); existing keys are unchanged and listed
/// with `beyond_policy`.
#[utoipa::path(post, path = "/api-key-policy", tag = "api-keys", request_body = KeyPolicyIn,
    responses((status = 200, body = KeyPolicyOut), (status = 400, description = "Out of bounds, or looser than the Organization's")))]
pub async fn set_key_policy(
    State(state): State<AppState>,
    key: AdminKey,
    ApiJson(body): ApiJson<KeyPolicyIn>,
) -> Result<Json<KeyPolicyOut>, ApiError> {
    let workspace = body.workspace_uuid.map(WorkspaceId);
    match workspace {
        Some(id) => {
            key_policy::set_for_workspace(&state.db, &key.actor, &key.client, key.org_id, id, body.max_days)
                .await?
        }
        None => {
            key_policy::set_for_org(&state.db, &key.actor, &key.client, key.org_id, body.max_days).await?
        }
    }
    Ok(Json(key_policy::get(&state.db, &key.actor, key.org_id, workspace).await?.into()))
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyOut {
    pub key_id: uuid::Uuid,
    pub name: String,
    /// The masked key: enough to recognise it, nothing to use it.
    pub hidden_key: String,
    /// The full key: only in the answer that creates or rotates it.
    pub key: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub created_by: String,
    /// RFC 3339, UTC: the moment the key stops working.
    pub expiration_date: Option<String>,
    pub last_used: Option<String>,
    pub product: &'static str,
    pub workspace_id: uuid::Uuid,
    pub workspace_name: String,
    /// Null: the models the workspace allows.
    pub allowed_models: Option<Vec<String>>,
    /// The key's own limit; null: only the workspace's.
    #[schema(minimum = 1, maximum = 1000000)]
    pub requests_per_minute: Option<i64>,
    pub owner_email: Option<String>,
    /// The service account that owns the key (its keys outlive any person).
    pub service_account_id: Option<uuid::Uuid>,
    /// `active`, `rotating` (replaced; works until `expiration_date`), `expired` or `revoked`.
    pub status: &'static str,
    /// Working but unused for 30 days.
    pub unused: bool,
    /// Active and living longer than the key lifetime policy now allows.
    pub beyond_policy: bool,
    /// The key that replaced this one.
    pub rotated_to: Option<uuid::Uuid>,
    pub can_delete: bool,
    pub actions: KeyActionsOut,
}

fn action(available: bool, reason: &'static str) -> ActionOut {
    if available {
        ActionOut { status: "available", reason: None }
    } else {
        ActionOut { status: "unavailable", reason: Some(reason) }
    }
}

fn out(view: ApiKeyView, key: Option<String>) -> ApiKeyOut {
    let working = matches!(view.status, ApiKeyStatus::Active | ApiKeyStatus::Rotating);
    ApiKeyOut {
        key_id: view.id.0,
        name: view.name,
        hidden_key: view.masked_key,
        key,
        created_at: view.created_at.rfc3339(),
        created_by: view.created_by,
        expiration_date: view.expires_at.map(|t| t.rfc3339()),
        last_used: view.last_used_at.map(|t| t.rfc3339()),
        product: "API",
        workspace_id: view.workspace_id.0,
        workspace_name: view.workspace_name,
        allowed_models: view.allowed_models,
        requests_per_minute: view.requests_per_minute,
        owner_email: view.owner_email,
        service_account_id: view.service_account.map(|(id, _)| id.0),
        status: view.status.as_str(),
        unused: view.unused,
        beyond_policy: view.beyond_policy,
        rotated_to: view.rotated_to.map(|id| id.0),
        can_delete: working,
        actions: KeyActionsOut {
            delete: action(working, "not_allowed"),
            rotate: action(view.status == ApiKeyStatus::Active, "key_expired"),
        },
    }
}

impl From<CreatedApiKey> for ApiKeyOut {
    fn from(created: CreatedApiKey) -> Self {
        out(created.view, Some(created.key))
    }
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeysOut {
    pub keys: Vec<ApiKeyOut>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KeysQuery {
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    #[param(minimum = 0, maximum = 1000000000)]
    pub offset: Option<i64>,
    /// Part of the name, or the key's last 4 characters.
    pub name: Option<String>,
    pub workspace_uuid: Option<uuid::Uuid>,
}

/// List the Organization's workspace API keys, newest first.
#[utoipa::path(get, path = "/api-keys", tag = "api-keys", params(KeysQuery),
    responses((status = 200, body = ApiKeysOut), (status = 400, description = "Bad limit or offset")))]
pub async fn list_keys(
    State(state): State<AppState>,
    key: AdminKey,
    ApiQuery(query): ApiQuery<KeysQuery>,
) -> Result<Json<ApiKeysOut>, ApiError> {
    let filter = api_keys::KeyFilter {
        workspace_id: query.workspace_uuid.map(WorkspaceId),
        search: query.name,
        after: None,
        offset: query.offset.unwrap_or(0),
        limit: query.limit.unwrap_or(20),
    };
    let keys = api_keys::list(&state.db, &key.actor, key.org_id, &filter).await?;
    Ok(Json(ApiKeysOut { keys: keys.into_iter().map(|k| out(k, None)).collect() }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyIn {
    pub workspace_uuid: uuid::Uuid,
    /// The Organization member the key is for (or give `service_account_id`).
    pub user_id: Option<uuid::Uuid>,
    /// The service account of the workspace that owns the key, instead of a person.
    pub service_account_id: Option<uuid::Uuid>,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    /// `YYYY-MM-DD`: the key works through that day (UTC).
    pub expiration: Option<String>,
    /// Narrower than the workspace's allow-list; null for the workspace's.
    pub allowed_models: Option<Vec<String>>,
    /// The key's own limit (1 to 1,000,000), within the workspace's; null for only the workspace's.
    #[schema(minimum = 1, maximum = 1000000)]
    pub requests_per_minute: Option<i64>,
}

/// Create a workspace API key; the full key is in this answer only.
#[utoipa::path(post, path = "/api-keys", tag = "api-keys", request_body = ApiKeyIn,
    responses((status = 201, body = ApiKeyOut), (status = 400, description = "Bad input"),
              (status = 404, description = "No such workspace")))]
pub async fn create_key(
    State(state): State<AppState>,
    key: AdminKey,
    ApiJson(body): ApiJson<ApiKeyIn>,
) -> Result<(StatusCode, Json<ApiKeyOut>), ApiError> {
    if body.user_id.is_none() && body.service_account_id.is_none() {
        let message = "Name whom the key is for: user_id (a member) or service_account_id.";
        return Err(app::AppError::invalid("user_id", message).into());
    }
    let input = api_keys::NewApiKey {
        name: body.name.unwrap_or_else(|| "API key".into()),
        expires_on: body.expiration.unwrap_or_default(),
        allowed_models: body.allowed_models,
        requests_per_minute: body.requests_per_minute,
        owner: body.user_id.map(UserId),
        service_account: body.service_account_id.map(ServiceAccountId),
    };
    let workspace = WorkspaceId(body.workspace_uuid);
    let created = api_keys::create(&state.db, &key.actor, &key.client, key.org_id, workspace, input).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[derive(Serialize, ToSchema)]
pub struct DeleteKeyOut {
    pub detail: String,
}

/// Revoke a workspace API key: the gateway refuses it within a second.
#[utoipa::path(delete, path = "/api-keys/{key_id}", tag = "api-keys",
    responses((status = 200, body = DeleteKeyOut), (status = 404, description = "No such key")))]
pub async fn revoke_key(
    State(state): State<AppState>,
    key: AdminKey,
    Path(key_id): Path<String>,
) -> Result<Json<DeleteKeyOut>, ApiError> {
    let id: ApiKeyId = path_id(&key_id)?;
    api_keys::revoke(&state.db, &key.actor, &key.client, key.org_id, id).await?;
    Ok(Json(DeleteKeyOut { detail: "API key revoked.".into() }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateIn {
    /// How long the old key keeps working: 0 to 720 hours (default 24).
    #[schema(minimum = 0, maximum = 720)]
    pub grace_hours: Option<i64>,
}

/// Rotate a key: a new key (in this answer only) replaces it; the old one works
/// for the grace period.
#[utoipa::path(post, path = "/api-keys/{key_id}/rotate", tag = "api-keys", request_body = RotateIn,
    responses((status = 201, body = ApiKeyOut), (status = 409, description = "The key is not active")))]
pub async fn rotate_key(
    State(state): State<AppState>,
    key: AdminKey,
    Path(key_id): Path<String>,
    ApiJson(body): ApiJson<RotateIn>,
) -> Result<(StatusCode, Json<ApiKeyOut>), ApiError> {
    let id: ApiKeyId = path_id(&key_id)?;
    let grace = body.grace_hours.unwrap_or(api_keys::DEFAULT_GRACE_HOURS);
    let rotated = api_keys::rotate(&state.db, &key.actor, &key.client, key.org_id, id, grace).await?;
    Ok((StatusCode::CREATED, Json(rotated.into())))
}
