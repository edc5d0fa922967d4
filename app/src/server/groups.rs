//! User groups of an organization: create, rename, delete, members, and grants
//! on workspaces with a workspace role. Every member of a group reaches the
//! group's workspaces; a person's role in a workspace is the union of their
//! direct grant and their groups' grants (see `workspaces::access_role`).
//! Managed by the organization's administrators.

use sqlx::{AnyConnection, FromRow};

use super::{
    actor::{Actor, Client},
    audit::{self, AuditEvent},
    authz::{self, DirectorySync, OrgAdmin, OrgAuthority},
    db::{self, Db},
    lifecycle, paging, workspaces,
};
use crate::{
    error::{AppError, AppResult},
    ids::{GroupId, OrgId, UserId, WorkspaceId},
    model::{GroupGrant, GroupMember, GroupSummary, OrgRole, Page, WorkspaceRole},
    time::Timestamp,
    validate,
};

#[derive(FromRow)]
struct GroupRow {
    id: GroupId,
    name: String,
    description: String,
    created_at: Timestamp,
    member_count: i64,
    workspace_count: i64,
    scim_managed_at: Option<Timestamp>,
    organization_role: Option<String>,
}

impl From<GroupRow> for GroupSummary {
    fn from(row: GroupRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            description: row.description,
            member_count: row.member_count,
            workspace_count: row.workspace_count,
            created_at: row.created_at,
            managed_by_scim: row.scim_managed_at.is_some(),
            organization_role: row.organization_role.as_deref().and_then(OrgRole::parse),
        }
    }
}

const SELECT_GROUPS: &str =
    "SELECT g.id, g.name, g.description, g.created_at, g.scim_managed_at, g.organization_role,
        (SELECT COUNT(*) FROM user_group_members m WHERE m.group_id = g.id) AS member_count,
        (SELECT COUNT(*) FROM user_group_workspaces w JOIN workspaces ws ON ws.id = w.workspace_id
         WHERE w.group_id = g.id AND ws.archived_at IS NULL) AS workspace_count
    FROM user_groups g";

/// Name and description of a group, as created or edited.
#[derive(Clone, Debug, Default)]
pub struct GroupFields {
    pub name: String,
    pub description: String,
}

fn clean(fields: &GroupFields) -> AppResult<GroupFields> {
    let description = fields.description.trim().to_string();
    if fields.description.chars().count() > 500 {
        return Err(AppError::invalid("description", "Description must be at most 500 characters."));
    }
    Ok(GroupFields { name: validate::label("name", "Group name", &fields.name)?, description })
}

fn name_taken(name: &str) -> AppError {
    AppError::conflict("name", format!("A group named \"{name}\" already exists in this organization."))
}

/// The organization's groups by name; `search` keeps those whose name contains it.
pub async fn groups_page(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    search: Option<&str>,
    page: Option<i64>,
    page_size: Option<i64>,
) -> AppResult<Page<GroupSummary>> {
    let (page, page_size) = paging::page_bounds(page, page_size)?;
    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    let pattern = format!("%{}%", search.unwrap_or_default().trim().to_lowercase());
    let (total,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM user_groups WHERE org_id = $1 AND name_key LIKE $2")
            .bind(org_id)
            .bind(&pattern)
            .fetch_one(&mut *conn)
            .await?;
    let rows: Vec<GroupRow> = sqlx::query_as(&format!(
        "{SELECT_GROUPS} WHERE g.org_id = $1 AND g.name_key LIKE $2
         ORDER BY g.name_key, g.id LIMIT $3 OFFSET $4"
    ))
    .bind(org_id)
    .bind(&pattern)
    .bind(page_size)
    .bind((page - 1) * page_size)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Page { items: rows.into_iter().map(Into::into).collect(), page, page_size, total })
}

/// One group of the organization; another organization's is `NotFound`.
pub async fn group(db: &Db, actor: &Actor, org_id: OrgId, id: GroupId) -> AppResult<GroupSummary> {
    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    find(&mut conn, org_id, id).await
}

/// A group whose name and members Admins may change: not one the identity
/// provider manages through SCIM.
async fn find_editable(conn: &mut AnyConnection, org_id: OrgId, id: GroupId) -> AppResult<GroupSummary> {
    let group = find(conn, org_id, id).await?;
    if group.managed_by_scim {
        return Err(AppError::conflict(
            "group",
            format!(
                "\"{}\" is managed by your identity provider (SCIM): change its name and members there.",
                group.name
            ),
        ));
    }
    Ok(group)
}

pub(super) async fn find(conn: &mut AnyConnection, org_id: OrgId, id: GroupId) -> AppResult<GroupSummary> {
    let row: Option<GroupRow> = sqlx::query_as(&format!("{SELECT_GROUPS} WHERE g.id = $1 AND g.org_id = $2"))
        .bind(id)
        .bind(org_id)
        .fetch_optional(conn)
        .await?;
    row.map(Into::into).ok_or(AppError::NotFound)
}

pub async fn create(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    fields: GroupFields,
) -> AppResult<GroupSummary> {
    let fields = clean(&fields)?;
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    let id = GroupId::new();
    let inserted = sqlx::query(
        "INSERT INTO user_groups (id, org_id, name, name_key, description, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(org_id)
    .bind(&fields.name)
    .bind(fields.name.to_lowercase())
    .bind(&fields.description)
    .bind(Timestamp::now())
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => return Err(name_taken(&fields.name)),
        other => other?,
    };
    let event = AuditEvent::new("user_group.create", "user_group", id)
        .in_org(org_id)
        .with_details(serde_json::json!({ "name": fields.name, "description": fields.description }));
    audit::record(&mut tx, &admin, client, event).await?;
    let created = find(&mut tx, org_id, id).await?;
    tx.commit().await?;
    Ok(created)
}

/// Renames a group or changes its description; the event keeps before and after.
pub async fn update(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: GroupId,
    fields: GroupFields,
) -> AppResult<GroupSummary> {
    let fields = clean(&fields)?;
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    let before = find_editable(&mut tx, org_id, id).await?;
    let updated = sqlx::query(
        "UPDATE user_groups SET name = $1, name_key = $2, description = $3 WHERE id = $4 AND org_id = $5",
    )
    .bind(&fields.name)
    .bind(fields.name.to_lowercase())
    .bind(&fields.description)
    .bind(id)
    .bind(org_id)
    .execute(&mut *tx)
    .await;
    match updated {
        Err(e) if db::is_unique_violation(&e) => return Err(name_taken(&fields.name)),
        other => other?,
    };
    let event = AuditEvent::new("user_group.update", "user_group", id).in_org(org_id).with_details(
        serde_json::json!({
            "before": { "name": before.name, "description": before.description },
            "after": { "name": fields.name, "description": fields.description },
        }),
    );
    audit::record(&mut tx, &admin, client, event).await?;
    let after = find(&mut tx, org_id, id).await?;
    tx.commit().await?;
    Ok(after)
}

/// Deletes a group: its members lose the access they had only through it.
/// Grants every member of a group an Organization role (`None`: none; Mistral's
/// `organization_role`); a member who loses what it gave loses what came with
/// it (see `lifecycle`), and the Organization keeps at least one Admin. Groups
/// the identity provider manages too: Admins decide what a group grants.
pub async fn set_organization_role(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: GroupId,
    role: Option<OrgRole>,
) -> AppResult<()> {
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    let group = find(&mut tx, org_id, id).await?;
    sqlx::query("UPDATE user_groups SET organization_role = $1 WHERE id = $2 AND org_id = $3")
        .bind(role.map(OrgRole::as_str))
        .bind(id)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    let shown = |role: Option<OrgRole>| role.map(OrgRole::api_name);
    let event = AuditEvent::new("user_group.update", "user_group", id).in_org(org_id).with_details(
        serde_json::json!({ "organization_role": { "before": shown(group.organization_role), "after": shown(role) } }),
    );
    audit::record(&mut tx, &admin, client, event).await?;
    for user in member_ids(&mut tx, id).await? {
        lifecycle::end_lost_access(&mut tx, &admin, client, user).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn delete(db: &Db, actor: &Actor, client: &Client, org_id: OrgId, id: GroupId) -> AppResult<()> {
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    let group = find_editable(&mut tx, org_id, id).await?;
    erase(&mut tx, &admin, client, &group).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes `group` of `by`'s Organization, audited, and ends what its members
/// had only through it.
pub(super) async fn erase(
    conn: &mut AnyConnection,
    by: &impl OrgAuthority,
    client: &Client,
    group: &GroupSummary,
) -> AppResult<()> {
    let id = group.id;
    let members = member_ids(conn, id).await?;
    for table in ["user_group_members", "user_group_workspaces"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE group_id = $1")).bind(id).execute(&mut *conn).await?;
    }
    sqlx::query("DELETE FROM user_groups WHERE id = $1 AND org_id = $2")
        .bind(id)
        .bind(by.org_id())
        .execute(&mut *conn)
        .await?;
    let event = AuditEvent::new("user_group.delete", "user_group", id).in_org(by.org_id()).with_details(
        serde_json::json!({ "name": group.name, "members": group.member_count, "workspaces": group.workspace_count }),
    );
    audit::record(&mut *conn, by, client, event).await?;
    for user in members {
        lifecycle::end_lost_access(conn, by, client, user).await?;
    }
    Ok(())
}

/// A group's members by name.
pub async fn members(db: &Db, actor: &Actor, org_id: OrgId, id: GroupId) -> AppResult<Vec<GroupMember>> {
    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    find(&mut conn, org_id, id).await?;
    let rows: Vec<(UserId, String, String)> = sqlx::query_as(
        "SELECT u.id, u.name, u.email FROM user_group_members m JOIN users u ON u.id = m.user_id
         WHERE m.group_id = $1 ORDER BY u.name, u.id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|(user_id, name, email)| GroupMember { user_id, name, email }).collect())
}

/// Adds organization members to a group; those already in are left as they are.
/// Returns how many joined.
pub async fn add_members(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: GroupId,
    users: &[UserId],
) -> AppResult<i64> {
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    find_editable(&mut tx, org_id, id).await?;
    let mut added = 0;
    for user in users {
        workspaces::require_org_member(&mut tx, org_id, *user, "user_uuids").await?;
        if join(&mut tx, &admin, client, id, *user, None).await? {
            added += 1;
        }
    }
    tx.commit().await?;
    Ok(added)
}

/// Removes people from a group. Returns how many left it.
pub async fn remove_members(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: GroupId,
    users: &[UserId],
) -> AppResult<i64> {
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    find_editable(&mut tx, org_id, id).await?;
    let mut removed = 0;
    for user in users {
        if leave(&mut tx, &admin, client, id, *user, None).await? {
            removed += 1;
        }
    }
    tx.commit().await?;
    Ok(removed)
}

fn membership_details(id: GroupId, via: Option<&str>) -> serde_json::Value {
    match via {
        Some(via) => serde_json::json!({ "group_id": id, "via": via }),
        None => serde_json::json!({ "group_id": id }),
    }
}

/// Puts `user` in group `id`, audited (`via` says which directory did it);
/// false if they were in it already.
pub(super) async fn join(
    conn: &mut AnyConnection,
    by: &impl OrgAuthority,
    client: &Client,
    id: GroupId,
    user: UserId,
    via: Option<&str>,
) -> AppResult<bool> {
    let done = sqlx::query(
        "INSERT INTO user_group_members (group_id, user_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(user)
    .bind(Timestamp::now())
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    let event = AuditEvent::new("user_group.member.add", "user", user)
        .in_org(by.org_id())
        .with_details(membership_details(id, via));
    audit::record(&mut *conn, by, client, event).await?;
    Ok(true)
}

/// Takes `user` out of group `id`, audited, and ends what only the group gave
/// them; false if they were not in it.
pub(super) async fn leave(
    conn: &mut AnyConnection,
    by: &impl OrgAuthority,
    client: &Client,
    id: GroupId,
    user: UserId,
    via: Option<&str>,
) -> AppResult<bool> {
    let done = sqlx::query("DELETE FROM user_group_members WHERE group_id = $1 AND user_id = $2")
        .bind(id)
        .bind(user)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    let event = AuditEvent::new("user_group.member.remove", "user", user)
        .in_org(by.org_id())
        .with_details(membership_details(id, via));
    audit::record(&mut *conn, by, client, event).await?;
    lifecycle::end_lost_access(conn, by, client, user).await?;
    Ok(true)
}

/// Makes `user`'s groups in the Organization exactly those of `names` that
/// exist there (compared without regard to case): their identity provider
/// lists them at each log-in. Leaving a group ends what it gave. Names of no
/// group are ignored: groups are made in Chancery.
pub(super) async fn follow_directory(
    conn: &mut AnyConnection,
    by: &DirectorySync,
    client: &Client,
    user: UserId,
    names: &[String],
) -> AppResult<()> {
    let wanted: std::collections::BTreeSet<String> =
        names.iter().map(|name| name.trim().to_lowercase()).collect();
    // Groups SCIM manages follow SCIM alone.
    let groups: Vec<(GroupId, String, i64)> = sqlx::query_as(
        "SELECT g.id, g.name_key,
                (SELECT COUNT(*) FROM user_group_members m WHERE m.group_id = g.id AND m.user_id = $2)
         FROM user_groups g WHERE g.org_id = $1 AND g.scim_managed_at IS NULL ORDER BY g.name_key, g.id",
    )
    .bind(by.org_id())
    .bind(user)
    .fetch_all(&mut *conn)
    .await?;
    for (id, name_key, member) in groups {
        match (wanted.contains(&name_key), member > 0) {
            (true, false) => join(conn, by, client, id, user, Some("oidc")).await?,
            (false, true) => leave(conn, by, client, id, user, Some("oidc")).await?,
            _ => continue,
        };
    }
    Ok(())
}

const SELECT_GRANTS: &str = "SELECT g.id, g.name, w.id, w.name, gw.role
    FROM user_group_workspaces gw
    JOIN user_groups g ON g.id = gw.group_id
    JOIN workspaces w ON w.id = gw.workspace_id";

type GrantRow = (GroupId, String, WorkspaceId, String, String);

fn grant(row: GrantRow) -> GroupGrant {
    let (group_id, group_name, workspace_id, workspace_name, role) = row;
    GroupGrant {
        group_id,
        group_name,
        workspace_id,
        workspace_name,
        role: WorkspaceRole::parse(&role).unwrap_or(WorkspaceRole::Member),
    }
}

/// The active workspaces a group grants, by workspace name.
pub async fn grants_of_group(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    id: GroupId,
) -> AppResult<Vec<GroupGrant>> {
    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    find(&mut conn, org_id, id).await?;
    let rows: Vec<GrantRow> = sqlx::query_as(&format!(
        "{SELECT_GRANTS} WHERE gw.group_id = $1 AND w.archived_at IS NULL ORDER BY w.name, w.id"
    ))
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(grant).collect())
}

/// The groups that grant a workspace, by group name.
pub async fn grants_on_workspace(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    workspace_id: WorkspaceId,
) -> AppResult<Vec<GroupGrant>> {
    if workspaces::access(db, actor, org_id, workspace_id).await? != workspaces::Access::Administers {
        return Err(AppError::NotFound);
    }
    let rows: Vec<GrantRow> =
        sqlx::query_as(&format!("{SELECT_GRANTS} WHERE gw.workspace_id = $1 ORDER BY g.name_key, g.id"))
            .bind(workspace_id)
            .fetch_all(db.pool())
            .await?;
    Ok(rows.into_iter().map(grant).collect())
}

/// Grants a group a role on a workspace, or changes the role it grants.
/// True if the grant is new.
pub async fn grant_workspace(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: GroupId,
    workspace_id: WorkspaceId,
    role: WorkspaceRole,
) -> AppResult<bool> {
    let target = workspaces::workspace(db, actor, org_id, workspace_id).await?;
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    workspaces::require_active(&mut tx, org_id, workspace_id).await?;
    find(&mut tx, org_id, id).await?;
    let before: Option<(String,)> =
        sqlx::query_as("SELECT role FROM user_group_workspaces WHERE group_id = $1 AND workspace_id = $2")
            .bind(id)
            .bind(workspace_id)
            .fetch_optional(&mut *tx)
            .await?;
    if before.as_ref().is_some_and(|(r,)| r == role.as_str()) {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO user_group_workspaces (group_id, workspace_id, role, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (group_id, workspace_id) DO UPDATE SET role = excluded.role",
    )
    .bind(id)
    .bind(workspace_id)
    .bind(role.as_str())
    .bind(Timestamp::now())
    .execute(&mut *tx)
    .await?;
    let action =
        if before.is_some() { "user_group.workspace.update" } else { "user_group.workspace.provision" };
    let event = AuditEvent::new(action, "user_group", id).in_org(org_id).with_details(serde_json::json!({
        "workspace_id": workspace_id,
        "workspace_name": target.name,
        "before": before.as_ref().map(|(r,)| r),
        "after": role.as_str(),
    }));
    audit::record(&mut tx, &admin, client, event).await?;
    tx.commit().await?;
    Ok(before.is_none())
}

/// Ends a group's grant on a workspace; `NotFound` if it had none.
pub async fn revoke_workspace(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: GroupId,
    workspace_id: WorkspaceId,
) -> AppResult<()> {
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    find(&mut tx, org_id, id).await?;
    let done = sqlx::query("DELETE FROM user_group_workspaces WHERE group_id = $1 AND workspace_id = $2")
        .bind(id)
        .bind(workspace_id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(AppError::NotFound);
    }
    let event = AuditEvent::new("user_group.workspace.deprovision", "user_group", id)
        .in_org(org_id)
        .with_details(serde_json::json!({ "workspace_id": workspace_id }));
    audit::record(&mut tx, &admin, client, event).await?;
    end_members_lost_access(&mut tx, &admin, client, id).await?;
    tx.commit().await?;
    Ok(())
}

async fn member_ids(conn: &mut AnyConnection, id: GroupId) -> AppResult<Vec<UserId>> {
    let rows: Vec<(UserId,)> = sqlx::query_as("SELECT user_id FROM user_group_members WHERE group_id = $1")
        .bind(id)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(|(user,)| user).collect())
}

/// After the group lost a grant: its members may have lost a workspace with it.
async fn end_members_lost_access(
    conn: &mut AnyConnection,
    admin: &OrgAdmin,
    client: &Client,
    id: GroupId,
) -> AppResult<()> {
    for user in member_ids(conn, id).await? {
        lifecycle::end_lost_access(conn, admin, client, user).await?;
    }
    Ok(())
}
