//! `GET /workspaces` and `GET /workspaces/{workspace_uuid}`.

use app::{model::WorkspaceSummary, server::orgs, AppError};
use axum::{
    extract::{Path, State},
    Json,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{AdminKey, ApiError, ApiQuery};
use app::server::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct WorkspaceOut {
    pub uuid: uuid::Uuid,
    pub name: String,
    pub description: String,
    pub icon: String,
    pub is_default: bool,
    pub members_count: i64,
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
pub struct PageQuery {
    /// Page number, from 1.
    pub page: Option<i64>,
    /// Items per page, 1 to 100 (default 20).
    pub page_size: Option<i64>,
}

/// List the Organization's active workspaces.
#[utoipa::path(get, path = "/workspaces", tag = "workspaces", params(PageQuery),
    responses((status = 200, body = WorkspacesOut), (status = 400, description = "Bad paging"),
              (status = 401, description = "Missing, unknown, expired or revoked key")))]
pub async fn list_workspaces(
    State(state): State<AppState>,
    key: AdminKey,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<WorkspacesOut>, ApiError> {
    let page = orgs::workspaces_page(&state.db, &key.actor, key.org_id, query.page, query.page_size).await?;
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
    // A malformed id names no workspace.
    let id = workspace_uuid.parse().map_err(|_| AppError::NotFound)?;
    Ok(Json(orgs::workspace(&state.db, &key.actor, key.org_id, id).await?.into()))
}
