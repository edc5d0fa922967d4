//! Workspaces: list, get, create, edit, archive, and their members.

use app::{
    ids::{UserId, WorkspaceId},
    model::{WorkspaceRole, WorkspaceSummary},
    server::{
        state::AppState,
        workspaces::{self, WorkspaceFields},
    },
    validate, AppError,
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
pub struct WorkspaceOut {
    pub uuid: uuid::Uuid,
    pub name: String,
    pub description: String,
    pub icon: String,
    pub is_default: bool,
    pub members_count: i64,
    /// Archived (`DELETE`): its keys are refused; `POST .../restore` brings it back.
    pub is_archived: bool,
}

impl From<WorkspaceSummary> for WorkspaceOut {
    fn from(w: WorkspaceSummary) -> Self {
        Self {
            uuid: w.id.0,
            name: w.name,
            description: w.description,
            icon: w.icon,
            is_default: w.is_default,
            members_count: w.member_count,
            is_archived: w.archived,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WorkspacesOut {
    pub items: Vec<WorkspaceOut>,
    /// Always `"list"`.
    pub object: &'static str,
    pub page: i64,
    pub page_size: i64,
    pub total: i64,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WorkspacesQuery {
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<i64>,
    /// Keep workspaces whose name contains this (any case).
    pub search: Option<String>,
    /// True: the archived workspaces instead of the active ones.
    pub is_archived: Option<bool>,
}

/// List the Organization's workspaces: the active ones, or with `is_archived=true` the archived ones.
#[utoipa::path(get, path = "/workspaces", tag = "workspaces", params(WorkspacesQuery),
    responses((status = 200, body = WorkspacesOut), (status = 400, description = "Bad paging"),
              (status = 401, description = "Missing, unknown, expired or revoked key")))]
pub async fn list_workspaces(
    State(state): State<AppState>,
    key: AdminKey,
    ApiQuery(query): ApiQuery<WorkspacesQuery>,
) -> Result<Json<WorkspacesOut>, ApiError> {
    let filter =
        workspaces::WorkspaceFilter { search: query.search, archived: query.is_archived.unwrap_or(false) };
    let page =
        workspaces::workspaces_page(&state.db, &key.actor, key.org_id, &filter, query.page, query.page_size)
            .await?;
    Ok(Json(WorkspacesOut {
        items: page.items.into_iter().map(Into::into).collect(),
        object: "list",
        page: page.page,
        page_size: page.page_size,
        total: page.total,
    }))
}

/// Get one workspace of the Organization.
#[utoipa::path(get, path = "/workspaces/{workspace_uuid}", tag = "workspaces",
    params(("workspace_uuid" = uuid::Uuid, Path, description = "The workspace's UUID")),
    responses((status = 200, body = WorkspaceOut), (status = 404, description = "No such workspace in this Organization")))]
pub async fn get_workspace(
    State(state): State<AppState>,
    key: AdminKey,
    Path(workspace_uuid): Path<String>,
) -> Result<Json<WorkspaceOut>, ApiError> {
    let id: WorkspaceId = path_id(&workspace_uuid)?;
    Ok(Json(workspaces::workspace(&state.db, &key.actor, key.org_id, id).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceIn {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// An Organization member who becomes the workspace's Admin. Null or absent:
    /// none (the Organization's Admins administer every workspace).
    pub admin_user_id: Option<uuid::Uuid>,
    /// Every member of the Organization joins the workspace as a Member.
    #[serde(default)]
    pub add_all_org_members: bool,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
    #[serde(default)]
    #[schema(max_length = 16)]
    pub icon: String,
}

/// Create a workspace.
#[utoipa::path(post, path = "/workspaces", tag = "workspaces", request_body = WorkspaceIn,
    responses((status = 201, body = WorkspaceOut), (status = 400, description = "Bad input"),
              (status = 409, description = "Another workspace has this name, whatever its case")))]
pub async fn create_workspace(
    State(state): State<AppState>,
    key: AdminKey,
    ApiJson(body): ApiJson<WorkspaceIn>,
) -> Result<(StatusCode, Json<WorkspaceOut>), ApiError> {
    let fields = WorkspaceFields { name: body.name, description: body.description, icon: body.icon };
    let admin = body.admin_user_id.map(UserId);
    let created = workspaces::create(
        &state.db,
        &key.actor,
        &key.client,
        key.org_id,
        fields,
        admin,
        body.add_all_org_members,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceUpdateIn {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    #[schema(max_length = 16)]
    pub icon: Option<String>,
}

/// Edit a workspace's name, description or icon.
#[utoipa::path(patch, path = "/workspaces/{workspace_uuid}", tag = "workspaces", request_body = WorkspaceUpdateIn,
    responses((status = 200, body = WorkspaceOut), (status = 404, description = "No such workspace"),
              (status = 409, description = "Another workspace has this name, whatever its case")))]
pub async fn update_workspace(
    State(state): State<AppState>,
    key: AdminKey,
    Path(workspace_uuid): Path<String>,
    ApiJson(body): ApiJson<WorkspaceUpdateIn>,
) -> Result<Json<WorkspaceOut>, ApiError> {
    let id: WorkspaceId = path_id(&workspace_uuid)?;
    let current = workspaces::workspace(&state.db, &key.actor, key.org_id, id).await?;
    let fields = WorkspaceFields {
        name: body.name.unwrap_or(current.name),
        description: body.description.unwrap_or(current.description),
        icon: body.icon.unwrap_or(current.icon),
    };
    Ok(Json(workspaces::update(&state.db, &key.actor, &key.client, key.org_id, id, fields).await?.into()))
}

/// Archive a workspace (never the Default one).
#[utoipa::path(delete, path = "/workspaces/{workspace_uuid}", tag = "workspaces",
    responses((status = 204, description = "Archived"), (status = 409, description = "The Default workspace")))]
pub async fn archive_workspace(
    State(state): State<AppState>,
    key: AdminKey,
    Path(workspace_uuid): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: WorkspaceId = path_id(&workspace_uuid)?;
    workspaces::archive(&state.db, &key.actor, &key.client, key.org_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Restore an archived workspace as it was: members, grants, limits, and its
/// keys that were neither revoked nor expired.
#[utoipa::path(post, path = "/workspaces/{workspace_uuid}/restore", tag = "workspaces",
    responses((status = 200, body = WorkspaceOut), (status = 409, description = "Not archived")))]
pub async fn restore_workspace(
    State(state): State<AppState>,
    key: AdminKey,
    Path(workspace_uuid): Path<String>,
) -> Result<Json<WorkspaceOut>, ApiError> {
    let id: WorkspaceId = path_id(&workspace_uuid)?;
    Ok(Json(workspaces::restore(&state.db, &key.actor, &key.client, key.org_id, id).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberGrantIn {
    pub user_uuid: uuid::Uuid,
    pub roles: Option<Vec<String>>,
    pub role_names: Option<Vec<String>>,
    #[schema(deprecated)]
    pub role: Option<String>,
    #[schema(deprecated)]
    pub role_name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembersIn {
    pub members: Vec<MemberGrantIn>,
}

#[derive(Serialize, ToSchema)]
pub struct MembersChangedOut {
    pub added_members_count: i64,
    pub updated_members_count: i64,
}

fn grants(body: MembersIn) -> Result<Vec<(UserId, WorkspaceRole)>, AppError> {
    body.members
        .into_iter()
        .map(|m| {
            let role = validate::workspace_role_selection(m.roles, m.role_names, m.role, m.role_name)?;
            Ok((UserId(m.user_uuid), role))
        })
        .collect()
}

/// Add members (or change their role) in a workspace.
#[utoipa::path(patch, path = "/workspaces/{workspace_uuid}/users", tag = "workspaces", request_body = MembersIn,
    responses((status = 200, body = MembersChangedOut)))]
pub async fn put_workspace_users(
    State(state): State<AppState>,
    key: AdminKey,
    Path(workspace_uuid): Path<String>,
    ApiJson(body): ApiJson<MembersIn>,
) -> Result<Json<MembersChangedOut>, ApiError> {
    let id: WorkspaceId = path_id(&workspace_uuid)?;
    let grants = grants(body)?;
    let (added, updated) =
        workspaces::put_members(&state.db, &key.actor, &key.client, key.org_id, id, &grants).await?;
    Ok(Json(MembersChangedOut { added_members_count: added, updated_members_count: updated }))
}

/// Add members to a workspace (`/add-users`, as Mistral names it).
#[utoipa::path(post, path = "/workspaces/{workspace_uuid}/add-users", tag = "workspaces", request_body = MembersIn,
    responses((status = 200, body = MembersChangedOut)))]
pub async fn add_workspace_users(
    state: State<AppState>,
    key: AdminKey,
    workspace_uuid: Path<String>,
    body: ApiJson<MembersIn>,
) -> Result<Json<MembersChangedOut>, ApiError> {
    put_workspace_users(state, key, workspace_uuid, body).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRefIn {
    pub user_uuid: uuid::Uuid,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveMembersIn {
    pub members: Vec<MemberRefIn>,
}

#[derive(Serialize, ToSchema)]
pub struct MembersRemovedOut {
    pub deleted_members_count: i64,
    /// Users that were not members of the workspace.
    pub not_deleted_members: Vec<uuid::Uuid>,
}

/// Remove members from a workspace (never from the Default one).
#[utoipa::path(delete, path = "/workspaces/{workspace_uuid}/remove-users", tag = "workspaces", request_body = RemoveMembersIn,
    responses((status = 200, body = MembersRemovedOut), (status = 409, description = "The Default workspace")))]
pub async fn remove_workspace_users(
    State(state): State<AppState>,
    key: AdminKey,
    Path(workspace_uuid): Path<String>,
    ApiJson(body): ApiJson<RemoveMembersIn>,
) -> Result<Json<MembersRemovedOut>, ApiError> {
    let id: WorkspaceId = path_id(&workspace_uuid)?;
    let users: Vec<UserId> = body.members.iter().map(|m| UserId(m.user_uuid)).collect();
    let (removed, not_removed) =
        workspaces::remove_members(&state.db, &key.actor, &key.client, key.org_id, id, &users).await?;
    Ok(Json(MembersRemovedOut {
        deleted_members_count: removed,
        not_deleted_members: not_removed.into_iter().map(|u| u.0).collect(),
    }))
}
