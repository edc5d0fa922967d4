//! `GET /roles`: the role catalogue, with the fixed UUIDs other endpoints accept.

use app::model::{OrgRole, WorkspaceRole};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::{AdminKey, ApiError};

#[derive(Serialize, ToSchema)]
pub struct RoleOut {
    pub uuid: uuid::Uuid,
    pub name: String,
    pub description: String,
    pub is_custom_role: bool,
}

#[derive(Serialize, ToSchema)]
pub struct RolesOut {
    pub organization_roles: Vec<RoleOut>,
    pub workspace_roles: Vec<RoleOut>,
}

/// List organization and workspace roles.
#[utoipa::path(get, path = "/roles", tag = "roles",
    responses((status = 200, body = RolesOut), (status = 401, description = "Missing, unknown, expired or revoked key")))]
pub async fn list_roles(_key: AdminKey) -> Result<Json<RolesOut>, ApiError> {
    let role = |uuid, name: &str, description: &str| RoleOut {
        uuid,
        name: name.to_string(),
        description: description.to_string(),
        is_custom_role: false,
    };
    Ok(Json(RolesOut {
        organization_roles: OrgRole::ALL
            .iter()
            .map(|r| role(r.uuid(), r.api_name(), r.description()))
            .collect(),
        workspace_roles: WorkspaceRole::ALL
            .iter()
            .map(|r| role(r.uuid(), r.api_name(), r.description()))
            .collect(),
    }))
}
