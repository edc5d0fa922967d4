//! Mistral's `/v1/service-accounts`, with an Admin API key (in `x-api-key`,
//! or as the `Authorization: Bearer` token the `mistralai` SDK sends):
//! service accounts of the key's Organization, and their workspace role.

use app::{
    ids::{ServiceAccountId, WorkspaceId},
    model::{ServiceAccountView, WorkspaceRole},
    server::{
        service_accounts::{self, NewServiceAccount, ServiceAccountQuery},
        state::AppState,
        workspaces,
    },
    time::Timestamp,
    validate,
};
use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use serde::{Deserialize, Serialize};

use super::{path_id, AdminKey, ApiError, ApiJson, ApiQuery};

#[derive(Serialize)]
pub struct ServiceAccountOut {
    pub id: ServiceAccountId,
    pub name: String,
    /// The Organization: Chancery bills each Organization as its own customer.
    pub customer_id: String,
    pub organization_id: String,
    pub workspace_id: WorkspaceId,
    pub description: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
}

impl From<ServiceAccountView> for ServiceAccountOut {
    fn from(account: ServiceAccountView) -> Self {
        Self {
            id: account.id,
            name: account.name,
            customer_id: account.org_id.to_string(),
            organization_id: account.org_id.to_string(),
            workspace_id: account.workspace_id,
            description: account.description,
            created_at: account.created_at.rfc3339(),
            updated_at: account.updated_at.rfc3339(),
            deleted_at: account.deleted_at.map(Timestamp::rfc3339),
        }
    }
}

#[derive(Serialize)]
pub struct Items<T> {
    pub items: Vec<T>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIn {
    pub name: String,
    pub workspace_id: uuid::Uuid,
    pub description: Option<String>,
    /// Workspace role UUIDs; none is Member.
    pub role_ids: Option<Vec<String>>,
}

pub async fn create(
    State(state): State<AppState>,
    key: AdminKey,
    ApiJson(body): ApiJson<CreateIn>,
) -> Result<(StatusCode, Json<ServiceAccountOut>), ApiError> {
    let input = NewServiceAccount {
        workspace_id: WorkspaceId(body.workspace_id),
        name: body.name,
        description: body.description,
        role: role_of(body.role_ids)?,
    };
    let account = service_accounts::create(&state.db, &key.actor, &key.client, key.org_id, input).await?;
    Ok((StatusCode::CREATED, Json(account.into())))
}

/// Roles by UUID (or name): several collapse to the strongest; none is Member.
fn role_of(role_ids: Option<Vec<String>>) -> Result<WorkspaceRole, ApiError> {
    let ids = role_ids.map(|ids| ids.into_iter().map(|id| id.trim().to_string()).collect());
    Ok(validate::workspace_role_selection(ids, None, None, None).map_err(|_| {
        app::AppError::invalid(
            "role_ids",
            "Unknown role: GET /v1/service-accounts/assignable-roles lists them.",
        )
    })?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    pub offset: i64,
    #[serde(default = "default_limit")]
    pub limit: i64,
    pub workspace_id: Option<uuid::Uuid>,
    #[serde(default)]
    pub include_deleted: bool,
    pub q: Option<String>,
    /// `asc` (default) or `desc`, by creation time.
    pub order: Option<String>,
}

fn default_limit() -> i64 {
    service_accounts::MAX_PAGE
}

pub async fn list(
    State(state): State<AppState>,
    key: AdminKey,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Items<ServiceAccountOut>>, ApiError> {
    let newest_first = match query.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(app::AppError::invalid("order", "order is asc or desc.").into()),
    };
    let query = ServiceAccountQuery {
        workspace_id: query.workspace_id.map(WorkspaceId),
        search: query.q,
        include_deleted: query.include_deleted,
        newest_first,
        offset: query.offset,
        limit: query.limit,
    };
    let accounts = service_accounts::list(&state.db, &key.actor, key.org_id, &query).await?;
    Ok(Json(Items { items: accounts.into_iter().map(Into::into).collect() }))
}

pub async fn get_one(
    State(state): State<AppState>,
    key: AdminKey,
    Path(id): Path<String>,
) -> Result<Json<ServiceAccountOut>, ApiError> {
    let account = service_accounts::get(&state.db, &key.actor, key.org_id, path_id(&id)?).await?;
    Ok(Json(account.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateIn {
    pub description: Option<String>,
}

pub async fn update(
    State(state): State<AppState>,
    key: AdminKey,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateIn>,
) -> Result<Json<ServiceAccountOut>, ApiError> {
    let id = path_id(&id)?;
    let account =
        service_accounts::update(&state.db, &key.actor, &key.client, key.org_id, id, body.description)
            .await?;
    Ok(Json(account.into()))
}

pub async fn delete(
    State(state): State<AppState>,
    key: AdminKey,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    service_accounts::delete(&state.db, &key.actor, &key.client, key.org_id, path_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub struct RoleOut {
    pub role_id: uuid::Uuid,
}

fn roles_out(account: &ServiceAccountView) -> Items<RoleOut> {
    Items { items: vec![RoleOut { role_id: account.role.uuid() }] }
}

pub async fn list_roles(
    State(state): State<AppState>,
    key: AdminKey,
    Path(id): Path<String>,
) -> Result<Json<Items<RoleOut>>, ApiError> {
    let account = service_accounts::get(&state.db, &key.actor, key.org_id, path_id(&id)?).await?;
    Ok(Json(roles_out(&account)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesIn {
    pub role_ids: Vec<String>,
}

/// Replaces the account's roles; `[]` leaves it a Member.
pub async fn set_roles(
    State(state): State<AppState>,
    key: AdminKey,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RolesIn>,
) -> Result<Json<Items<RoleOut>>, ApiError> {
    let role = role_of(Some(body.role_ids))?;
    let id = path_id(&id)?;
    let account =
        service_accounts::set_role(&state.db, &key.actor, &key.client, key.org_id, id, role).await?;
    Ok(Json(roles_out(&account)))
}

#[derive(Serialize)]
pub struct AssignableRoleOut {
    pub uuid: uuid::Uuid,
    pub name: &'static str,
    pub description: &'static str,
    pub is_custom_role: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignableQuery {
    /// The workspace the roles are for; it must be one the key may administer.
    pub workspace_id: Option<uuid::Uuid>,
}

/// The roles a service account may hold: every workspace offers the same.
pub async fn assignable_roles(
    State(state): State<AppState>,
    key: AdminKey,
    ApiQuery(query): ApiQuery<AssignableQuery>,
) -> Result<Json<Items<AssignableRoleOut>>, ApiError> {
    if let Some(workspace_id) = query.workspace_id {
        let access = workspaces::access(&state.db, &key.actor, key.org_id, WorkspaceId(workspace_id)).await?;
        if !matches!(access, workspaces::Access::Administers) {
            return Err(app::AppError::NotFound.into());
        }
    }
    let items = WorkspaceRole::ALL
        .into_iter()
        .map(|role| AssignableRoleOut {
            uuid: role.uuid(),
            name: role.api_name(),
            description: match role {
                WorkspaceRole::Admin => {
                    "Administers the workspace (on record: a service account has no sign-in)."
                }
                WorkspaceRole::Member => "Works in the workspace: its keys call models. The default.",
            },
            is_custom_role: false,
        })
        .collect();
    Ok(Json(Items { items }))
}
