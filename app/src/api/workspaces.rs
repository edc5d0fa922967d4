//! Server functions of the Admin Panel's Workspaces pages.

use leptos::prelude::*;

use crate::{
    error::AppError,
    ids::{UserId, WorkspaceId},
    model::WorkspaceDetail,
};

#[server(prefix = "/_fn", endpoint = "workspaces/create")]
pub async fn create_workspace(name: String, description: String, icon: String) -> Result<(), AppError> {
    use crate::server::{request, workspaces};
    let (state, me, org) = request::org_member().await?;
    let fields = workspaces::WorkspaceFields { name, description, icon };
    workspaces::create(&state.db, &me, &request::client(&state), org.id, fields, None, false)
        .await
        .map(|_| ())
}

#[server(prefix = "/_fn", endpoint = "workspaces/update")]
pub async fn update_workspace(
    workspace_id: WorkspaceId,
    name: String,
    description: String,
    icon: String,
) -> Result<(), AppError> {
    use crate::server::{request, workspaces};
    let (state, me, org) = request::org_member().await?;
    let fields = workspaces::WorkspaceFields { name, description, icon };
    workspaces::update(&state.db, &me, &request::client(&state), org.id, workspace_id, fields)
        .await
        .map(|_| ())
}

#[server(prefix = "/_fn", endpoint = "workspaces/archive")]
pub async fn archive_workspace(workspace_id: WorkspaceId) -> Result<(), AppError> {
    use crate::server::{request, workspaces};
    let (state, me, org) = request::org_member().await?;
    workspaces::archive(&state.db, &me, &request::client(&state), org.id, workspace_id).await?;
    leptos_axum::redirect("/admin");
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "workspaces/restore")]
pub async fn restore_workspace(workspace_id: WorkspaceId) -> Result<(), AppError> {
    use crate::server::{request, workspaces};
    let (state, me, org) = request::org_member().await?;
    workspaces::restore(&state.db, &me, &request::client(&state), org.id, workspace_id).await?;
    Ok(())
}

/// The organization's archived workspaces, for its Admins (empty for anyone else).
#[server(prefix = "/_fn", endpoint = "workspaces/archived")]
pub async fn archived_workspaces() -> Result<Vec<crate::model::WorkspaceSummary>, AppError> {
    use crate::server::{request, workspaces};
    let (state, me, org) = request::org_member().await?;
    let filter = workspaces::WorkspaceFilter { archived: true, ..Default::default() };
    let mut all = Vec::new();
    for page in 1.. {
        match workspaces::workspaces_page(&state.db, &me, org.id, &filter, Some(page), Some(100)).await {
            Ok(chunk) => {
                let more = chunk.has_next();
                all.extend(chunk.items);
                if !more {
                    break;
                }
            }
            Err(AppError::Forbidden | AppError::NotFound) => break,
            Err(other) => return Err(other),
        }
    }
    Ok(all)
}

#[server(prefix = "/_fn", endpoint = "workspaces/detail")]
pub async fn get_workspace_detail(
    workspace_id: WorkspaceId,
    page: Option<i64>,
) -> Result<WorkspaceDetail, AppError> {
    use crate::server::{api_keys, groups, request, workspaces};
    let (state, me, org) = request::org_member().await?;
    let access = workspaces::access(&state.db, &me, org.id, workspace_id).await?;
    let workspace = workspaces::workspace(&state.db, &me, org.id, workspace_id).await?;
    let in_workspace = workspaces::members_page(
        &state.db,
        &me,
        org.id,
        workspace_id,
        page,
        Some(super::members::MEMBERS_PAGE_SIZE),
    )
    .await?;
    let administers = access == workspaces::Access::Administers;
    // Whoever runs the workspace (an Organization Admin or a workspace Admin)
    // staffs and edits it; group grants stay with the Organization's Admins.
    let manages = access.runs_workspace() && !workspace.archived;
    let groups = if administers {
        groups::grants_on_workspace(&state.db, &me, org.id, workspace_id).await?
    } else {
        Vec::new()
    };
    let mut conn = state.db.pool().acquire().await?;
    let working_keys = api_keys::working_count(&mut conn, org.id, Some(workspace_id)).await?;
    Ok(WorkspaceDetail { workspace, members: in_workspace, groups, administers, manages, working_keys })
}

/// Adds the Organization's member with `email` to the workspace in `role`.
#[server(prefix = "/_fn", endpoint = "workspaces/add_member")]
pub async fn add_workspace_member(
    workspace_id: WorkspaceId,
    email: String,
    role: String,
) -> Result<(), AppError> {
    use crate::server::{request, workspaces};
    let (state, me, org) = request::org_member().await?;
    let role = crate::model::WorkspaceRole::parse(&role)
        .ok_or_else(|| AppError::invalid("role", "Choose Admin or Member."))?;
    workspaces::add_member_by_email(
        &state.db,
        &me,
        &request::client(&state),
        org.id,
        workspace_id,
        &email,
        role,
    )
    .await
}

#[server(prefix = "/_fn", endpoint = "workspaces/put_member")]
pub async fn put_workspace_member(
    workspace_id: WorkspaceId,
    user_id: UserId,
    role: String,
) -> Result<(), AppError> {
    use crate::server::{request, workspaces};
    let (state, me, org) = request::org_member().await?;
    let role = crate::model::WorkspaceRole::parse(&role)
        .ok_or_else(|| AppError::invalid("role", "Choose Admin or Member."))?;
    let client = request::client(&state);
    workspaces::put_members(&state.db, &me, &client, org.id, workspace_id, &[(user_id, role)])
        .await
        .map(|_| ())
}

#[server(prefix = "/_fn", endpoint = "workspaces/remove_member")]
pub async fn remove_workspace_member(workspace_id: WorkspaceId, user_id: UserId) -> Result<(), AppError> {
    use crate::server::{request, workspaces};
    let (state, me, org) = request::org_member().await?;
    let client = request::client(&state);
    workspaces::remove_members(&state.db, &me, &client, org.id, workspace_id, &[user_id]).await.map(|_| ())
}
