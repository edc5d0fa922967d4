//! User groups: `/user-groups`, their members, their workspace grants and
//! their nesting.

use app::{
    ids::{GroupId, UserId, WorkspaceId},
    model::{GroupGrant, GroupSummary, GroupTarget, Page, WorkspaceRole},
    server::{
        groups::{self, GroupFields, Nesting},
        state::AppState,
    },
    validate,
};
use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{path_id, workspaces::PageQuery, AdminKey, ApiError, ApiJson, ApiQuery};

/// What a group grants: `W`, roles on workspaces (`/workspaces`), or `O`, an
/// Organization role (`/organization-role`). One kind per group.
#[derive(Clone, Copy, Serialize, Deserialize, ToSchema)]
pub enum TargetType {
    W,
    O,
}

impl From<TargetType> for GroupTarget {
    fn from(target: TargetType) -> Self {
        match target {
            TargetType::W => GroupTarget::Workspaces,
            TargetType::O => GroupTarget::Organization,
        }
    }
}

impl From<GroupTarget> for TargetType {
    fn from(target: GroupTarget) -> Self {
        match target {
            GroupTarget::Workspaces => TargetType::W,
            GroupTarget::Organization => TargetType::O,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserGroupOut {
    pub uuid: uuid::Uuid,
    pub name: String,
    pub description: String,
    pub members_count: i64,
    /// Active workspaces the group grants.
    pub workspaces_count: i64,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// The Organization role every member holds through the group
    /// (`organization_admin`, `billing_manager`, `member`), or null.
    pub organization_role: Option<&'static str>,
    pub target_type: TargetType,
    /// The groups this one is nested in: its members are in those too.
    pub parent_group_ids: Vec<uuid::Uuid>,
    /// Its name and members come from the identity provider (SCIM).
    pub externally_managed: bool,
}

impl From<GroupSummary> for UserGroupOut {
    fn from(g: GroupSummary) -> Self {
        Self {
            uuid: g.id.0,
            name: g.name,
            description: g.description,
            members_count: g.member_count,
            workspaces_count: g.workspace_count,
            created_at: g.created_at.rfc3339(),
            organization_role: g.organization_role.map(|role| role.api_name()),
            target_type: g.target.into(),
            parent_group_ids: g.parent_ids.into_iter().map(|id| id.0).collect(),
            externally_managed: g.managed_by_scim,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserGroupsOut {
    pub items: Vec<UserGroupOut>,
    pub page: i64,
    pub page_size: i64,
    pub total: i64,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GroupsQuery {
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<i64>,
    /// Keep groups whose name contains this text (any case).
    pub search: Option<String>,
}

/// List the Organization's user groups by name.
#[utoipa::path(get, path = "/user-groups", tag = "user-groups", params(GroupsQuery),
    responses((status = 200, body = UserGroupsOut), (status = 400, description = "Bad paging")))]
pub async fn list_groups(
    State(state): State<AppState>,
    key: AdminKey,
    ApiQuery(query): ApiQuery<GroupsQuery>,
) -> Result<Json<UserGroupsOut>, ApiError> {
    let page = groups::groups_page(
        &state.db,
        &key.actor,
        key.org_id,
        query.search.as_deref(),
        query.page,
        query.page_size,
    )
    .await?;
    Ok(Json(UserGroupsOut {
        items: page.items.into_iter().map(Into::into).collect(),
        page: page.page,
        page_size: page.page_size,
        total: page.total,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserGroupIn {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
    /// `W` (the default) or `O`.
    pub target_type: Option<TargetType>,
    /// Groups of the Organization to nest this one in.
    pub parent_group_ids: Option<Vec<uuid::Uuid>>,
}

fn group_ids(ids: Option<Vec<uuid::Uuid>>) -> Option<Vec<GroupId>> {
    ids.map(|ids| ids.into_iter().map(GroupId).collect())
}

/// Create a user group.
#[utoipa::path(post, path = "/user-groups", tag = "user-groups", request_body = UserGroupIn,
    responses((status = 201, body = UserGroupOut),
              (status = 400, description = "Bad input, or a parent that is no group of the Organization"),
              (status = 409, description = "A group with this name exists")))]
pub async fn create_group(
    State(state): State<AppState>,
    key: AdminKey,
    ApiJson(body): ApiJson<UserGroupIn>,
) -> Result<(StatusCode, Json<UserGroupOut>), ApiError> {
    let fields = GroupFields {
        name: body.name,
        description: body.description,
        target: body.target_type.map(Into::into).unwrap_or_default(),
        parents: group_ids(body.parent_group_ids),
    };
    let created = groups::create(&state.db, &key.actor, &key.client, key.org_id, fields).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Get one user group.
#[utoipa::path(get, path = "/user-groups/{group_uuid}", tag = "user-groups",
    params(("group_uuid" = uuid::Uuid, Path, description = "The group's UUID")),
    responses((status = 200, body = UserGroupOut), (status = 404, description = "No such group in this Organization")))]
pub async fn get_group(
    State(state): State<AppState>,
    key: AdminKey,
    Path(group_uuid): Path<String>,
) -> Result<Json<UserGroupOut>, ApiError> {
    let id: GroupId = path_id(&group_uuid)?;
    Ok(Json(groups::group(&state.db, &key.actor, key.org_id, id).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserGroupUpdateIn {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// A group's target changes only while it grants nothing of its present kind.
    pub target_type: Option<TargetType>,
    /// The groups it is nested in, replaced whole (`[]`: none). A nesting
    /// that would put a group inside itself is a 400.
    pub parent_group_ids: Option<Vec<uuid::Uuid>>,
}

/// Change a user group: name, description, target, the groups it is nested in.
#[utoipa::path(patch, path = "/user-groups/{group_uuid}", tag = "user-groups", request_body = UserGroupUpdateIn,
    responses((status = 200, body = UserGroupOut), (status = 400, description = "Bad input or a nesting cycle"),
              (status = 404, description = "No such group"),
              (status = 409, description = "A group with this name exists, the identity provider manages its name, or it still grants something of its present target")))]
pub async fn update_group(
    State(state): State<AppState>,
    key: AdminKey,
    Path(group_uuid): Path<String>,
    ApiJson(body): ApiJson<UserGroupUpdateIn>,
) -> Result<Json<UserGroupOut>, ApiError> {
    let id: GroupId = path_id(&group_uuid)?;
    let current = groups::group(&state.db, &key.actor, key.org_id, id).await?;
    let fields = GroupFields {
        name: body.name.unwrap_or(current.name),
        description: body.description.unwrap_or(current.description),
        target: body.target_type.map(Into::into).unwrap_or(current.target),
        parents: group_ids(body.parent_group_ids),
    };
    Ok(Json(groups::update(&state.db, &key.actor, &key.client, key.org_id, id, fields).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationRoleIn {
    /// A role's API name, short name, UUID or legacy code (`A`, `B`, `M`); null: none.
    pub organization_role: Option<String>,
}

/// Grant every member of a group an Organization role, or none. Members who
/// lose a role lose what came with it; the Organization keeps an Admin.
#[utoipa::path(patch, path = "/user-groups/{group_uuid}/organization-role", tag = "user-groups",
    request_body = OrganizationRoleIn,
    responses((status = 204, description = "Set"), (status = 400, description = "Unknown role"),
              (status = 404, description = "No such group"),
              (status = 409, description = "The Organization would have no Admin left, or the group's target_type is W")))]
pub async fn set_organization_role(
    State(state): State<AppState>,
    key: AdminKey,
    Path(group_uuid): Path<String>,
    ApiJson(body): ApiJson<OrganizationRoleIn>,
) -> Result<StatusCode, ApiError> {
    let id: GroupId = path_id(&group_uuid)?;
    let role = match body.organization_role {
        None => None,
        Some(name) => {
            let field = |_| app::AppError::invalid("organization_role", format!("Unknown role {name}."));
            let (by_uuid, by_name) = match name.parse::<uuid::Uuid>() {
                Ok(_) => (Some(vec![name.clone()]), None),
                Err(_) => (None, Some(vec![name.clone()])),
            };
            let roles = validate::org_role_selection(by_uuid, by_name, None, None).map_err(field)?;
            roles.into_iter().next()
        }
    };
    groups::set_organization_role(&state.db, &key.actor, &key.client, key.org_id, id, role).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a user group: its members keep only the access they hold otherwise.
#[utoipa::path(delete, path = "/user-groups/{group_uuid}", tag = "user-groups",
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such group")))]
pub async fn delete_group(
    State(state): State<AppState>,
    key: AdminKey,
    Path(group_uuid): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: GroupId = path_id(&group_uuid)?;
    groups::delete(&state.db, &key.actor, &key.client, key.org_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct GroupMemberOut {
    pub user_uuid: uuid::Uuid,
    pub email: String,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct GroupMembersOut {
    pub members: Vec<GroupMemberOut>,
    pub page: i64,
    pub page_size: i64,
    pub total: i64,
}

/// List a group's members by name.
#[utoipa::path(get, path = "/user-groups/{group_uuid}/members", tag = "user-groups", params(PageQuery),
    responses((status = 200, body = GroupMembersOut), (status = 404, description = "No such group")))]
pub async fn list_members(
    State(state): State<AppState>,
    key: AdminKey,
    Path(group_uuid): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<GroupMembersOut>, ApiError> {
    let id: GroupId = path_id(&group_uuid)?;
    let Page { items, page, page_size, total } =
        groups::members_page(&state.db, &key.actor, key.org_id, id, query.page, query.page_size).await?;
    let members = items
        .into_iter()
        .map(|m| GroupMemberOut { user_uuid: m.user_id.0, email: m.email, name: m.name })
        .collect();
    Ok(Json(GroupMembersOut { members, page, page_size, total }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupMembersIn {
    pub user_uuids: Vec<uuid::Uuid>,
}

/// Add Organization members to a group.
#[utoipa::path(post, path = "/user-groups/{group_uuid}/members", tag = "user-groups", request_body = GroupMembersIn,
    responses((status = 204, description = "Added"), (status = 400, description = "Someone is not a member of the Organization")))]
pub async fn add_members(
    State(state): State<AppState>,
    key: AdminKey,
    Path(group_uuid): Path<String>,
    ApiJson(body): ApiJson<GroupMembersIn>,
) -> Result<StatusCode, ApiError> {
    let id: GroupId = path_id(&group_uuid)?;
    let users: Vec<UserId> = body.user_uuids.into_iter().map(UserId).collect();
    groups::add_members(&state.db, &key.actor, &key.client, key.org_id, id, &users).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove people from a group.
#[utoipa::path(delete, path = "/user-groups/{group_uuid}/members", tag = "user-groups", request_body = GroupMembersIn,
    responses((status = 204, description = "Removed")))]
pub async fn remove_members(
    State(state): State<AppState>,
    key: AdminKey,
    Path(group_uuid): Path<String>,
    ApiJson(body): ApiJson<GroupMembersIn>,
) -> Result<StatusCode, ApiError> {
    let id: GroupId = path_id(&group_uuid)?;
    let users: Vec<UserId> = body.user_uuids.into_iter().map(UserId).collect();
    groups::remove_members(&state.db, &key.actor, &key.client, key.org_id, id, &users).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct GroupWorkspaceOut {
    pub workspace_uuid: uuid::Uuid,
    pub workspace_name: String,
    pub role_names: Vec<&'static str>,
    pub roles: Vec<uuid::Uuid>,
}

impl From<GroupGrant> for GroupWorkspaceOut {
    fn from(g: GroupGrant) -> Self {
        Self {
            workspace_uuid: g.workspace_id.0,
            workspace_name: g.workspace_name,
            role_names: vec![g.role.api_name()],
            roles: vec![g.role.uuid()],
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct GroupWorkspacesOut {
    pub items: Vec<GroupWorkspaceOut>,
    pub page: i64,
    pub page_size: i64,
    pub total: i64,
}

/// List the workspaces a group grants, with the role its members hold there.
#[utoipa::path(get, path = "/user-groups/{group_uuid}/workspaces", tag = "user-groups", params(PageQuery),
    responses((status = 200, body = GroupWorkspacesOut), (status = 404, description = "No such group")))]
pub async fn list_workspaces(
    State(state): State<AppState>,
    key: AdminKey,
    Path(group_uuid): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<GroupWorkspacesOut>, ApiError> {
    let id: GroupId = path_id(&group_uuid)?;
    let Page { items, page, page_size, total } =
        groups::grants_of_group(&state.db, &key.actor, key.org_id, id, query.page, query.page_size).await?;
    Ok(Json(GroupWorkspacesOut {
        items: items.into_iter().map(Into::into).collect(),
        page,
        page_size,
        total,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupRoleIn {
    pub roles: Option<Vec<String>>,
    pub role_names: Option<Vec<String>>,
    #[schema(deprecated)]
    pub role: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupWorkspaceIn {
    pub workspace_uuid: uuid::Uuid,
    pub roles: Option<Vec<String>>,
    pub role_names: Option<Vec<String>>,
    #[schema(deprecated)]
    pub role: Option<String>,
}

impl GroupRoleIn {
    fn parse(self) -> Result<WorkspaceRole, app::AppError> {
        validate::workspace_role_selection(self.roles, self.role_names, self.role, None)
    }
}

/// Grant a group a role on a workspace (Member when no role is given).
#[utoipa::path(post, path = "/user-groups/{group_uuid}/workspaces", tag = "user-groups", request_body = GroupWorkspaceIn,
    responses((status = 201, description = "Granted"), (status = 404, description = "No such group or workspace"),
              (status = 409, description = "The group's target_type is O")))]
pub async fn add_workspace(
    State(state): State<AppState>,
    key: AdminKey,
    Path(group_uuid): Path<String>,
    ApiJson(body): ApiJson<GroupWorkspaceIn>,
) -> Result<StatusCode, ApiError> {
    let id: GroupId = path_id(&group_uuid)?;
    let role = validate::workspace_role_selection(body.roles, body.role_names, body.role, None)?;
    let workspace = WorkspaceId(body.workspace_uuid);
    groups::grant_workspace(&state.db, &key.actor, &key.client, key.org_id, id, workspace, role).await?;
    Ok(StatusCode::CREATED)
}

/// Change the role a group grants on a workspace.
#[utoipa::path(patch, path = "/user-groups/{group_uuid}/workspaces/{workspace_uuid}", tag = "user-groups",
    request_body = GroupRoleIn, responses((status = 204, description = "Updated"),
              (status = 409, description = "The group's target_type is O")))]
pub async fn update_workspace(
    State(state): State<AppState>,
    key: AdminKey,
    Path((group_uuid, workspace_uuid)): Path<(String, String)>,
    ApiJson(body): ApiJson<GroupRoleIn>,
) -> Result<StatusCode, ApiError> {
    let id: GroupId = path_id(&group_uuid)?;
    let workspace: WorkspaceId = path_id(&workspace_uuid)?;
    let role = body.parse()?;
    groups::grant_workspace(&state.db, &key.actor, &key.client, key.org_id, id, workspace, role).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End a group's grant on a workspace.
#[utoipa::path(delete, path = "/user-groups/{group_uuid}/workspaces/{workspace_uuid}", tag = "user-groups",
    responses((status = 204, description = "Removed"), (status = 404, description = "The group has no grant there")))]
pub async fn remove_workspace(
    State(state): State<AppState>,
    key: AdminKey,
    Path((group_uuid, workspace_uuid)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id: GroupId = path_id(&group_uuid)?;
    let workspace: WorkspaceId = path_id(&workspace_uuid)?;
    groups::revoke_workspace(&state.db, &key.actor, &key.client, key.org_id, id, workspace).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionWorkspaceIn {
    pub user_group_uuid: uuid::Uuid,
    pub workspace_uuid: uuid::Uuid,
    /// The workspace role's UUID.
    pub workspace_role: Option<String>,
    /// The workspace role's name (`workspace_admin`, `workspace_member`).
    pub workspace_role_name: Option<String>,
}

/// Grant a group a role on a workspace in one call (`workspace_role` or `workspace_role_name`).
#[utoipa::path(post, path = "/user-groups/provision-workspace", tag = "user-groups", request_body = ProvisionWorkspaceIn,
    responses((status = 204, description = "Granted"), (status = 400, description = "Both or an unknown role"),
              (status = 409, description = "The group's target_type is O")))]
pub async fn provision_workspace(
    State(state): State<AppState>,
    key: AdminKey,
    ApiJson(body): ApiJson<ProvisionWorkspaceIn>,
) -> Result<StatusCode, ApiError> {
    let role = validate::workspace_role_selection(None, None, body.workspace_role, body.workspace_role_name)?;
    let (id, workspace) = (GroupId(body.user_group_uuid), WorkspaceId(body.workspace_uuid));
    groups::grant_workspace(&state.db, &key.actor, &key.client, key.org_id, id, workspace, role).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct NestedGroupsOut {
    /// The groups nested in this one, by name: their members are in it too.
    pub items: Vec<UserGroupOut>,
}

async fn nested_of(state: &AppState, key: &AdminKey, id: GroupId) -> Result<Json<NestedGroupsOut>, ApiError> {
    let children = groups::relatives(&state.db, &key.actor, key.org_id, id).await?.children;
    Ok(Json(NestedGroupsOut { items: children.into_iter().map(Into::into).collect() }))
}

/// List the groups nested in a group.
#[utoipa::path(get, path = "/user-groups/{group_uuid}/nested", tag = "user-groups",
    params(("group_uuid" = uuid::Uuid, Path, description = "The group's UUID")),
    responses((status = 200, body = NestedGroupsOut), (status = 404, description = "No such group")))]
pub async fn list_nested(
    State(state): State<AppState>,
    key: AdminKey,
    Path(group_uuid): Path<String>,
) -> Result<Json<NestedGroupsOut>, ApiError> {
    let id: GroupId = path_id(&group_uuid)?;
    nested_of(&state, &key, id).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NestedGroupsIn {
    /// The groups to nest in this one, replacing the whole set (`[]`: none).
    pub child_group_uuids: Vec<uuid::Uuid>,
}

/// Replace the groups nested in a group. People who leave it this way lose
/// what it gave them; a nesting that would put a group inside itself is a 400.
#[utoipa::path(patch, path = "/user-groups/{group_uuid}/nested", tag = "user-groups",
    params(("group_uuid" = uuid::Uuid, Path, description = "The group's UUID")), request_body = NestedGroupsIn,
    responses((status = 200, body = NestedGroupsOut),
              (status = 400, description = "A cycle, or a group that is no group of the Organization"),
              (status = 404, description = "No such group"),
              (status = 409, description = "The Organization would have no Admin left")))]
pub async fn set_nested(
    State(state): State<AppState>,
    key: AdminKey,
    Path(group_uuid): Path<String>,
    ApiJson(body): ApiJson<NestedGroupsIn>,
) -> Result<Json<NestedGroupsOut>, ApiError> {
    let id: GroupId = path_id(&group_uuid)?;
    let wanted: std::collections::BTreeSet<GroupId> =
        body.child_group_uuids.into_iter().map(GroupId).collect();
    groups::set_nesting(&state.db, &key.actor, &key.client, key.org_id, id, Nesting::Children, |children| {
        *children = wanted
    })
    .await?;
    nested_of(&state, &key, id).await
}
