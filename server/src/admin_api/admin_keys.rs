//! `/admin-api-keys`: the Admin API keys that administer this Organization, so
//! its Admins see who can act on it from outside and can cut any of them off.
//! Keys are made in the Backoffice.

use app::{
    ids::AdminKeyId,
    model::AdminKeyView,
    server::{admin_keys, state::AppState},
    time::Timestamp,
};
use axum::{
    extract::{Path, State},
    Json,
};
use serde::Serialize;
use utoipa::ToSchema;

use super::{api_keys::DeleteKeyOut, path_id, AdminKey, ApiError};

#[derive(Serialize, ToSchema)]
pub struct AdminKeyOut {
    pub key_id: uuid::Uuid,
    pub name: String,
    /// The masked key: enough to recognise it, nothing to use it.
    pub hidden_key: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub last_used: Option<String>,
    pub expiration_date: Option<String>,
    pub revoked_at: Option<String>,
    /// Its creator is no longer a member of the Enterprise Account.
    pub creator_left: bool,
}

impl From<AdminKeyView> for AdminKeyOut {
    fn from(key: AdminKeyView) -> Self {
        Self {
            key_id: key.id.0,
            name: key.name,
            hidden_key: key.masked_key,
            created_at: key.created_at.rfc3339(),
            last_used: key.last_used_at.map(Timestamp::rfc3339),
            expiration_date: key.expires_at.map(Timestamp::rfc3339),
            revoked_at: key.revoked_at.map(Timestamp::rfc3339),
            creator_left: key.creator_left,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AdminKeysOut {
    pub data: Vec<AdminKeyOut>,
}

/// List the Admin API keys that administer this Organization, newest first.
#[utoipa::path(get, path = "/admin-api-keys", tag = "admin-api-keys",
    responses((status = 200, body = AdminKeysOut), (status = 401, description = "Missing, unknown, expired or revoked key")))]
pub async fn list_admin_keys(
    State(state): State<AppState>,
    key: AdminKey,
) -> Result<Json<AdminKeysOut>, ApiError> {
    let keys = admin_keys::list_for_org(&state.db, &key.actor, key.org_id).await?;
    Ok(Json(AdminKeysOut { data: keys.into_iter().map(Into::into).collect() }))
}

/// Revoke an Admin API key of this Organization (this one too, if named); the
/// invitations it sent that are still pending are revoked with it.
#[utoipa::path(delete, path = "/admin-api-keys/{key_id}", tag = "admin-api-keys",
    params(("key_id" = String, Path, description = "The Admin API key's id")),
    responses((status = 200, body = DeleteKeyOut), (status = 404, description = "No such key in this Organization")))]
pub async fn revoke_admin_key(
    State(state): State<AppState>,
    key: AdminKey,
    Path(key_id): Path<String>,
) -> Result<Json<DeleteKeyOut>, ApiError> {
    let id: AdminKeyId = path_id(&key_id)?;
    admin_keys::revoke_for_org(&state.db, &key.actor, &key.client, key.org_id, id).await?;
    Ok(Json(DeleteKeyOut { detail: "Admin API key revoked.".into() }))
}
