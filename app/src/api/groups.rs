//! Server functions of the Admin Panel's Groups pages.

use leptos::prelude::*;

use crate::{
    error::AppError,
    ids::{GroupId, UserId, WorkspaceId},
    model::{GroupDetail, GroupSummary, Page},
};

/// Groups shown on one page of the Groups page.
pub const GROUPS_PAGE_SIZE: i64 = 50;

/// One page of the Organization's groups, by name.
#[server(prefix = "/_fn", endpoint = "groups")]
pub async fn list_groups(page: Option<i64>) -> Result<Page<GroupSummary>, AppError> {
    use crate::server::{groups, request};
    let (state, me, org) = request::org_member().await?;
    groups::groups_page(&state.db, &me, org.id, None, page, Some(GROUPS_PAGE_SIZE)).await
}

/// `target_type`: `W` (workspace roles, the default) or `O` (an Organization role).
#[server(prefix = "/_fn", endpoint = "groups/create")]
pub async fn create_group(
    name: String,
    description: String,
    target_type: Option<String>,
) -> Result<GroupId, AppError> {
    use crate::server::{groups, request};
    let (state, me, org) = request::org_member().await?;
    let target = target_type.as_deref().map(target).transpose()?.unwrap_or_default();
    let fields = groups::GroupFields { name, description, target, parents: None };
    Ok(groups::create(&state.db, &me, &request::client(&state), org.id, fields).await?.id)
}

#[server(prefix = "/_fn", endpoint = "groups/update")]
pub async fn update_group(group_id: GroupId, name: String, description: String) -> Result<(), AppError> {
    use crate::server::{groups, request};
    let (state, me, org) = request::org_member().await?;
    let target = groups::group(&state.db, &me, org.id, group_id).await?.target;
    let fields = groups::GroupFields { name, description, target, parents: None };
    groups::update(&state.db, &me, &request::client(&state), org.id, group_id, fields).await.map(|_| ())
}

#[cfg(feature = "ssr")]
fn target(code: &str) -> Result<crate::model::GroupTarget, AppError> {
    crate::model::GroupTarget::parse(code).ok_or_else(|| {
        AppError::invalid(
            "target_type",
            "Choose what the group grants: workspace roles or an Organization role.",
        )
    })
}

/// What the group grants (`target_type` `W` or `O`); its name stays.
#[server(prefix = "/_fn", endpoint = "groups/set_target")]
pub async fn set_group_target(group_id: GroupId, target_type: String) -> Result<(), AppError> {
    use crate::server::{groups, request};
    let (state, me, org) = request::org_member().await?;
    let group = groups::group(&state.db, &me, org.id, group_id).await?;
    let fields = groups::GroupFields {
        name: group.name,
        description: group.description,
        target: target(&target_type)?,
        parents: None,
    };
    groups::update(&state.db, &me, &request::client(&state), org.id, group_id, fields).await.map(|_| ())
}

/// Nests `child_id` in the group (`nest`), or takes it out (`unnest`).
#[server(prefix = "/_fn", endpoint = "groups/nest")]
pub async fn nest_group(group_id: GroupId, child_id: GroupId) -> Result<(), AppError> {
    use crate::server::{groups, request};
    let (state, me, org) = request::org_member().await?;
    let client = request::client(&state);
    groups::set_nesting(&state.db, &me, &client, org.id, group_id, groups::Nesting::Children, |children| {
        children.insert(child_id);
    })
    .await
}

#[server(prefix = "/_fn", endpoint = "groups/unnest")]
pub async fn unnest_group(group_id: GroupId, child_id: GroupId) -> Result<(), AppError> {
    use crate::server::{groups, request};
    let (state, me, org) = request::org_member().await?;
    let client = request::client(&state);
    groups::set_nesting(&state.db, &me, &client, org.id, group_id, groups::Nesting::Children, |children| {
        children.remove(&child_id);
    })
    .await
}

/// `role`: `admin`, `billing`, `member`, or empty for none.
#[server(prefix = "/_fn", endpoint = "groups/set_organization_role")]
pub async fn set_group_organization_role(group_id: GroupId, role: String) -> Result<(), AppError> {
    use crate::{
        model::OrgRole,
        server::{groups, request},
    };
    let (state, me, org) = request::org_member().await?;
    let role = match role.trim() {
        "" => None,
        name => {
            Some(OrgRole::parse(name).ok_or_else(|| AppError::invalid("role", "Choose a role, or none."))?)
        }
    };
    groups::set_organization_role(&state.db, &me, &request::client(&state), org.id, group_id, role).await
}

#[server(prefix = "/_fn", endpoint = "groups/delete")]
pub async fn delete_group(group_id: GroupId) -> Result<(), AppError> {
    use crate::server::{groups, request};
    let (state, me, org) = request::org_member().await?;
    groups::delete(&state.db, &me, &request::client(&state), org.id, group_id).await?;
    leptos_axum::redirect("/admin/groups");
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "groups/detail")]
pub async fn get_group_detail(group_id: GroupId, page: Option<i64>) -> Result<GroupDetail, AppError> {
    use crate::server::{groups, paging, request, workspaces};
    let (state, me, org) = request::org_member().await?;
    let group = groups::group(&state.db, &me, org.id, group_id).await?;
    let page_size = Some(super::members::MEMBERS_PAGE_SIZE);
    let in_group = groups::members_page(&state.db, &me, org.id, group_id, page, page_size).await?;
    let granted = paging::all_pages(|page, size| {
        groups::grants_of_group(&state.db, &me, org.id, group_id, Some(page), Some(size))
    })
    .await?;
    let active = workspaces::WorkspaceFilter::default();
    let open_workspaces = paging::all_pages(|page, size| {
        workspaces::workspaces_page(&state.db, &me, org.id, &active, Some(page), Some(size))
    })
    .await?
    .into_iter()
    .filter(|w| !granted.iter().any(|g| g.workspace_id == w.id))
    .collect();
    let groups::Relatives { parents, children, nestable } =
        groups::relatives(&state.db, &me, org.id, group_id).await?;
    Ok(GroupDetail {
        group,
        members: in_group,
        workspaces: granted,
        open_workspaces,
        children,
        parents,
        nestable,
    })
}

/// Adds the Organization's member with `email` to the group.
#[server(prefix = "/_fn", endpoint = "groups/add_member")]
pub async fn add_group_member(group_id: GroupId, email: String) -> Result<(), AppError> {
    use crate::server::{groups, request};
    let (state, me, org) = request::org_member().await?;
    groups::add_member_by_email(&state.db, &me, &request::client(&state), org.id, group_id, &email).await
}

#[server(prefix = "/_fn", endpoint = "groups/remove_member")]
pub async fn remove_group_member(group_id: GroupId, user_id: UserId) -> Result<(), AppError> {
    use crate::server::{groups, request};
    let (state, me, org) = request::org_member().await?;
    groups::remove_members(&state.db, &me, &request::client(&state), org.id, group_id, &[user_id])
        .await
        .map(|_| ())
}

#[server(prefix = "/_fn", endpoint = "groups/grant_workspace")]
pub async fn grant_group_workspace(
    group_id: GroupId,
    workspace_id: WorkspaceId,
    role: String,
) -> Result<(), AppError> {
    use crate::server::{groups, request};
    let (state, me, org) = request::org_member().await?;
    let role = crate::model::WorkspaceRole::parse(&role)
        .ok_or_else(|| AppError::invalid("role", "Choose Admin or Member."))?;
    let client = request::client(&state);
    groups::grant_workspace(&state.db, &me, &client, org.id, group_id, workspace_id, role).await.map(|_| ())
}

#[server(prefix = "/_fn", endpoint = "groups/revoke_workspace")]
pub async fn revoke_group_workspace(group_id: GroupId, workspace_id: WorkspaceId) -> Result<(), AppError> {
    use crate::server::{groups, request};
    let (state, me, org) = request::org_member().await?;
    groups::revoke_workspace(&state.db, &me, &request::client(&state), org.id, group_id, workspace_id).await
}
