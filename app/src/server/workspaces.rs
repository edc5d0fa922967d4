//! Workspaces of an organization: create, edit, archive, list, and their
//! members with workspace roles. Nobody leaves the Default workspace, and it
//! is never archived. Managed by the organization's administrators.

use sqlx::FromRow;

use super::{
    actor::{Actor, Client},
    audit::{self, AuditEvent},
    authz,
    db::{self, bind_all, Conditions, Db, Param},
    lifecycle, paging,
};
use crate::{
    error::{AppError, AppResult},
    ids::{OrgId, UserId, WorkspaceId},
    model::{MemberWorkspace, Page, WorkspaceMember, WorkspaceRole, WorkspaceSummary},
    time::Timestamp,
    validate,
};

#[derive(FromRow)]
pub(super) struct WorkspaceRow {
    id: WorkspaceId,
    name: String,
    description: String,
    icon: String,
    default_workspace_id: Option<WorkspaceId>,
    member_count: i64,
    archived_at: Option<Timestamp>,
}

/// Workspaces with the number of people who reach them: those granted it
/// directly (read from the index alone) plus those who reach it only through
/// a group. Grants and group places end when someone leaves the Organization
/// (`members::leave`), so every person counted is a member.
pub(super) const SELECT_WORKSPACES: &str =
    "SELECT w.id, w.name, w.description, w.icon, o.default_workspace_id, w.archived_at,
        (SELECT COUNT(*) FROM workspace_members d WHERE d.workspace_id = w.id)
        + (SELECT COUNT(DISTINCT gp.user_id)
           FROM user_group_workspaces gw JOIN group_people gp ON gp.group_id = gw.group_id
           WHERE gw.workspace_id = w.id
             AND NOT EXISTS (SELECT 1 FROM workspace_members d WHERE d.workspace_id = w.id AND d.user_id = gp.user_id)
        ) AS member_count
    FROM workspaces w JOIN organizations o ON o.id = w.org_id";

impl From<WorkspaceRow> for WorkspaceSummary {
    fn from(row: WorkspaceRow) -> Self {
        Self {
            is_default: row.default_workspace_id == Some(row.id),
            id: row.id,
            name: row.name,
            description: row.description,
            icon: row.icon,
            member_count: row.member_count,
            archived: row.archived_at.is_some(),
        }
    }
}

/// Which of the organization's workspaces a listing shows.
#[derive(Clone, Debug, Default)]
pub struct WorkspaceFilter {
    /// Keep those whose name contains this (any case).
    pub search: Option<String>,
    /// Archived workspaces instead of active ones.
    pub archived: bool,
}

/// The organization's workspaces (active ones, or archived ones), oldest
/// first, for its administrators.
#[tracing::instrument(name = "workspaces::workspaces_page", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn workspaces_page(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    filter: &WorkspaceFilter,
    page: Option<i64>,
    page_size: Option<i64>,
) -> AppResult<Page<WorkspaceSummary>> {
    let (page, page_size) = paging::page_bounds(page, page_size)?;
    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    let mut sql = Conditions::default();
    let org = sql.param(Param::Text(org_id.to_string()));
    sql.and(format!("w.org_id = {org}"));
    sql.and(if filter.archived { "w.archived_at IS NOT NULL" } else { "w.archived_at IS NULL" }.into());
    sql.contains(&["LOWER(w.name)"], filter.search.as_deref().unwrap_or_default());
    let count = format!("SELECT COUNT(*) FROM workspaces w WHERE {}", sql.text);
    let (total,): (i64,) = bind_all(sqlx::query_as(&count), sql.params.clone()).fetch_one(&mut *conn).await?;
    let limit = sql.param(Param::Int(page_size));
    let offset = sql.param(Param::Int((page - 1) * page_size));
    let list = format!(
        "{SELECT_WORKSPACES} WHERE {} ORDER BY w.created_at, w.id LIMIT {limit} OFFSET {offset}",
        sql.text
    );
    let rows: Vec<WorkspaceRow> = bind_all(sqlx::query_as(&list), sql.params).fetch_all(&mut *conn).await?;
    Ok(Page { items: rows.into_iter().map(Into::into).collect(), page, page_size, total })
}

/// How far an actor reaches into one workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// An organization Admin (or Admin API key): everything.
    Administers,
    /// Someone granted the workspace, directly or through a group.
    Works(WorkspaceRole),
}

impl Access {
    /// Admins of the organization or of the workspace run it: its members, its
    /// name and all of its keys; its Members manage their own keys.
    pub fn runs_workspace(self) -> bool {
        matches!(self, Self::Administers | Self::Works(WorkspaceRole::Admin))
    }
}

/// `actor`'s access to a workspace of `org_id`; `NotFound` if none (or if the
/// workspace is another organization's).
#[tracing::instrument(name = "workspaces::access", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn access(db: &Db, actor: &Actor, org_id: OrgId, id: WorkspaceId) -> AppResult<Access> {
    let mut conn = db.pool().acquire().await?;
    let (exists,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM workspaces WHERE id = $1 AND org_id = $2")
        .bind(id)
        .bind(org_id)
        .fetch_one(&mut *conn)
        .await?;
    if exists == 0 {
        return Err(AppError::NotFound);
    }
    if authz::org_admin(&mut conn, actor, org_id).await.is_ok() {
        return Ok(Access::Administers);
    }
    drop(conn);
    let role = match actor.user_id() {
        Some(user) => access_role(db, user, id).await?,
        None => None,
    };
    role.map(Access::Works).ok_or(AppError::NotFound)
}

/// One workspace of the organization, for its Admins and the people granted
/// it; another organization's is `NotFound`.
#[tracing::instrument(name = "workspaces::workspace", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn workspace(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    id: WorkspaceId,
) -> AppResult<WorkspaceSummary> {
    access(db, actor, org_id, id).await?;
    let mut conn = db.pool().acquire().await?;
    let row: Option<WorkspaceRow> =
        sqlx::query_as(&format!("{SELECT_WORKSPACES} WHERE w.id = $1 AND w.org_id = $2"))
            .bind(id)
            .bind(org_id)
            .fetch_optional(&mut *conn)
            .await?;
    row.map(Into::into).ok_or(AppError::NotFound)
}

/// Name, description and icon of a workspace, as created or edited.
#[derive(Clone, Debug, Default)]
pub struct WorkspaceFields {
    pub name: String,
    pub description: String,
    pub icon: String,
}

fn clean(fields: &WorkspaceFields) -> AppResult<WorkspaceFields> {
    let description = fields.description.trim().to_string();
    if fields.description.chars().count() > 500 {
        return Err(AppError::invalid("description", "Description must be at most 500 characters."));
    }
    let icon = fields.icon.trim().to_string();
    if fields.icon.chars().count() > 16 {
        return Err(AppError::invalid(
            "icon",
            "Icon must be at most 16 characters (an emoji or a short name).",
        ));
    }
    Ok(WorkspaceFields { name: validate::label("name", "Workspace name", &fields.name)?, description, icon })
}

/// Creates a workspace; `admin` (an organization member) becomes its workspace
/// Admin, and with `all_members` every member of the organization joins it as
/// a workspace Member.
#[tracing::instrument(name = "workspaces::create", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn create(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    fields: WorkspaceFields,
    admin: Option<UserId>,
    all_members: bool,
) -> AppResult<WorkspaceSummary> {
    let fields = clean(&fields)?;
    let admin = admin.or(actor.user_id());
    let mut tx = db.begin().await?;
    let org_admin = authz::org_admin(&mut tx, actor, org_id).await?;
    let id = WorkspaceId::new();
    let now = Timestamp::now();
    let inserted = sqlx::query(
        "INSERT INTO workspaces (id, org_id, name, name_key, description, icon, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(org_id)
    .bind(&fields.name)
    .bind(name_key(&fields.name))
    .bind(&fields.description)
    .bind(&fields.icon)
    .bind(now)
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(err) if db::is_unique_violation(&err) => return Err(name_taken(&fields.name)),
        other => other?,
    };
    if let Some(admin) = admin {
        require_org_member(&mut tx, org_id, admin, "admin_user_id").await?;
        upsert_member(&mut tx, id, admin, WorkspaceRole::Admin).await?;
    }
    let members_added = if all_members {
        sqlx::query(
            "INSERT INTO workspace_members (workspace_id, user_id, role, created_at)
             SELECT $1, m.user_id, $2, $3 FROM org_members m WHERE m.org_id = $4
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(WorkspaceRole::Member.as_str())
        .bind(now)
        .bind(org_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
    } else {
        0
    };
    let event = AuditEvent::new("workspace.create", "workspace", id).in_org(org_id).with_details(
        serde_json::json!({ "name": fields.name, "admin_user_id": admin, "members_added": members_added }),
    );
    audit::record(&mut tx, &org_admin, client, event).await?;
    tx.commit().await?;
    workspace(db, actor, org_id, id).await
}

/// Changes name, description and icon; the event keeps the values before and after.
#[tracing::instrument(name = "workspaces::update", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn update(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: WorkspaceId,
    fields: WorkspaceFields,
) -> AppResult<WorkspaceSummary> {
    let fields = clean(&fields)?;
    let before = workspace(db, actor, org_id, id).await?;
    let mut tx = db.begin().await?;
    let admin = authz::workspace_admin(&mut tx, actor, org_id, id).await?;
    // Saving what is already there changes nothing, and is not logged.
    if (&before.name, &before.description, &before.icon) == (&fields.name, &fields.description, &fields.icon)
    {
        return Ok(before);
    }
    let updated = sqlx::query(
        "UPDATE workspaces SET name = $1, name_key = $2, description = $3, icon = $4 WHERE id = $5 AND org_id = $6",
    )
    .bind(&fields.name)
    .bind(name_key(&fields.name))
    .bind(&fields.description)
    .bind(&fields.icon)
    .bind(id)
    .bind(org_id)
    .execute(&mut *tx)
    .await;
    match updated {
        Err(err) if db::is_unique_violation(&err) => return Err(name_taken(&fields.name)),
        other => other?,
    };
    let event =
        AuditEvent::new("workspace.update", "workspace", id).in_org(org_id).with_details(serde_json::json!({
            "before": { "name": before.name, "description": before.description, "icon": before.icon },
            "after": { "name": fields.name, "description": fields.description, "icon": fields.icon },
        }));
    audit::record(&mut tx, &admin, client, event).await?;
    tx.commit().await?;
    workspace(db, actor, org_id, id).await
}

/// Workspace names are compared whatever their case: an Organization has one "Staging".
pub(super) fn name_key(name: &str) -> String {
    name.to_lowercase()
}

fn name_taken(name: &str) -> AppError {
    AppError::conflict(
        "name",
        format!(
            "A workspace named \"{name}\" already exists in this Organization (archived ones count too)."
        ),
    )
}

/// Archives a workspace (never the Default one). Its data stays; it leaves the lists.
#[tracing::instrument(name = "workspaces::archive", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn archive(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: WorkspaceId,
) -> AppResult<()> {
    let target = workspace(db, actor, org_id, id).await?;
    if target.is_default {
        return Err(AppError::conflict("workspace", "The Default workspace cannot be archived."));
    }
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    sqlx::query(
        "UPDATE workspaces SET archived_at = $1 WHERE id = $2 AND org_id = $3 AND archived_at IS NULL",
    )
    .bind(Timestamp::now())
    .bind(id)
    .bind(org_id)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        &admin,
        client,
        AuditEvent::new("workspace.delete", "workspace", id).in_org(org_id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Brings an archived workspace back as it was: its members, grants, limits and
/// keys (those not revoked or expired work again).
#[tracing::instrument(name = "workspaces::restore", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn restore(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: WorkspaceId,
) -> AppResult<WorkspaceSummary> {
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    let restored = sqlx::query(
        "UPDATE workspaces SET archived_at = NULL WHERE id = $1 AND org_id = $2 AND archived_at IS NOT NULL",
    )
    .bind(id)
    .bind(org_id)
    .execute(&mut *tx)
    .await?;
    if restored.rows_affected() == 0 {
        let (known,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM workspaces WHERE id = $1 AND org_id = $2")
                .bind(id)
                .bind(org_id)
                .fetch_one(&mut *tx)
                .await?;
        return Err(if known == 0 {
            AppError::NotFound
        } else {
            AppError::conflict("workspace", "This workspace is not archived.")
        });
    }
    let event = AuditEvent::new("workspace.restore", "workspace", id).in_org(org_id);
    audit::record(&mut tx, &admin, client, event).await?;
    tx.commit().await?;
    workspace(db, actor, org_id, id).await
}

/// One page of a workspace's direct members by name, read from the database
/// page by page (a Default workspace holds everyone).
#[tracing::instrument(name = "workspaces::members_page", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn members_page(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    id: WorkspaceId,
    page: Option<i64>,
    page_size: Option<i64>,
) -> AppResult<Page<WorkspaceMember>> {
    let (page, page_size) = super::paging::page_bounds(page, page_size)?;
    workspace(db, actor, org_id, id).await?;
    let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM workspace_members WHERE workspace_id = $1")
        .bind(id)
        .fetch_one(db.pool())
        .await?;
    // In the Organization's order by name (its index), keeping this workspace's
    // members: no page sorts the whole workspace.
    let rows: Vec<(UserId, String, String, String)> = sqlx::query_as(
        "SELECT u.id, u.name, u.email, wm.role FROM org_members m
         JOIN workspace_members wm ON wm.workspace_id = $1 AND wm.user_id = m.user_id
         JOIN users u ON u.id = m.user_id
         WHERE m.org_id = $4 ORDER BY m.name_key, m.user_id LIMIT $2 OFFSET $3",
    )
    .bind(id)
    .bind(page_size)
    .bind((page - 1) * page_size)
    .bind(org_id)
    .fetch_all(db.pool())
    .await?;
    let items = rows
        .into_iter()
        .map(|(user_id, name, email, role)| WorkspaceMember {
            user_id,
            name,
            email,
            role: WorkspaceRole::parse(&role).unwrap_or(WorkspaceRole::Member),
        })
        .collect();
    Ok(Page { items, page, page_size, total })
}

/// The role `user` holds in a workspace: the union of their direct grant and
/// their groups' grants. `None` if they reach it neither way.
#[tracing::instrument(name = "workspaces::access_role", skip_all, fields(user = %user, id = %id), err(level = "debug"))]
pub async fn access_role(db: &Db, user: UserId, id: WorkspaceId) -> AppResult<Option<WorkspaceRole>> {
    let roles: Vec<(String,)> = sqlx::query_as(
        "SELECT role FROM workspace_members WHERE workspace_id = $1 AND user_id = $2
         UNION ALL
         SELECT gw.role FROM user_group_workspaces gw JOIN group_people gm ON gm.group_id = gw.group_id
         WHERE gw.workspace_id = $1 AND gm.user_id = $2",
    )
    .bind(id)
    .bind(user)
    .fetch_all(db.pool())
    .await?;
    Ok(WorkspaceRole::union(roles.iter().filter_map(|(r,)| WorkspaceRole::parse(r))))
}

/// The active workspaces each of `people` reaches, directly or through groups,
/// oldest first, with the role they hold there. For the organization's Admins.
#[tracing::instrument(name = "workspaces::reached_by", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn reached_by(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    people: &[UserId],
) -> AppResult<std::collections::HashMap<UserId, Vec<MemberWorkspace>>> {
    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    let mut reached: std::collections::HashMap<UserId, Vec<MemberWorkspace>> = Default::default();
    for chunk in people.chunks(500) {
        let sql = format!(
            "SELECT x.user_id, w.id, w.name, o.default_workspace_id, x.role FROM (
                 SELECT user_id, workspace_id, role FROM workspace_members
                 UNION ALL
                 SELECT gm.user_id, gw.workspace_id, gw.role
                 FROM user_group_workspaces gw JOIN group_people gm ON gm.group_id = gw.group_id
             ) x
             JOIN workspaces w ON w.id = x.workspace_id JOIN organizations o ON o.id = w.org_id
             WHERE w.org_id = $1 AND w.archived_at IS NULL AND x.user_id IN ({})
             ORDER BY w.created_at, w.id",
            super::db::placeholders(2, chunk.len())
        );
        let mut query = sqlx::query_as(&sql).bind(org_id);
        for id in chunk {
            query = query.bind(*id);
        }
        let rows: Vec<(UserId, WorkspaceId, String, Option<WorkspaceId>, String)> =
            query.fetch_all(&mut *conn).await?;
        for (user, id, name, default_id, role) in rows {
            let Some(role) = WorkspaceRole::parse(&role) else { continue };
            let theirs = reached.entry(user).or_default();
            match theirs.iter_mut().find(|w| w.id == id) {
                Some(seen) => seen.role = WorkspaceRole::union([seen.role, role]).unwrap_or(role),
                None => theirs.push(MemberWorkspace { id, name, is_default: default_id == Some(id), role }),
            }
        }
    }
    Ok(reached)
}

/// The organization's default workspace.
pub async fn default_of(conn: &mut sqlx::AnyConnection, org_id: OrgId) -> AppResult<WorkspaceId> {
    let (id,): (WorkspaceId,) =
        sqlx::query_as("SELECT default_workspace_id FROM organizations WHERE id = $1")
            .bind(org_id)
            .fetch_one(conn)
            .await?;
    Ok(id)
}

/// Refuses a change to an archived workspace (or one of another organization).
pub(super) async fn require_active(
    conn: &mut sqlx::AnyConnection,
    org_id: OrgId,
    id: WorkspaceId,
) -> AppResult<()> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM workspaces WHERE id = $1 AND org_id = $2 AND archived_at IS NULL",
    )
    .bind(id)
    .bind(org_id)
    .fetch_one(conn)
    .await?;
    if n == 0 {
        return Err(AppError::NotFound);
    }
    Ok(())
}

/// Adds the Organization's member with this email to workspace `id` in
/// `role`, for whoever runs the workspace.
#[tracing::instrument(name = "workspaces::add_member_by_email", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn add_member_by_email(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: WorkspaceId,
    email: &str,
    role: WorkspaceRole,
) -> AppResult<()> {
    let user = {
        let mut conn = db.pool().acquire().await?;
        // Only those who run the workspace learn who is a member.
        authz::workspace_admin(&mut conn, actor, org_id, id).await?;
        super::members::member_by_email(&mut conn, org_id, email).await?
    };
    put_members(db, actor, client, org_id, id, &[(user, role)]).await.map(|_| ())
}

/// Adds members, or changes the role of those already in. Returns `(added, updated)`.
#[tracing::instrument(name = "workspaces::put_members", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn put_members(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: WorkspaceId,
    grants: &[(UserId, WorkspaceRole)],
) -> AppResult<(i64, i64)> {
    let mut tx = db.begin().await?;
    let admin = authz::workspace_admin(&mut tx, actor, org_id, id).await?;
    require_active(&mut tx, org_id, id).await?;
    let (mut added, mut updated) = (0, 0);
    for (user, role) in grants {
        require_org_member(&mut tx, org_id, *user, "members").await?;
        let before: Option<(String,)> =
            sqlx::query_as("SELECT role FROM workspace_members WHERE workspace_id = $1 AND user_id = $2")
                .bind(id)
                .bind(*user)
                .fetch_optional(&mut *tx)
                .await?;
        if before.as_ref().is_some_and(|(r,)| r == role.as_str()) {
            continue;
        }
        upsert_member(&mut tx, id, *user, *role).await?;
        let action = if before.is_some() {
            updated += 1;
            "workspace.member.role.update"
        } else {
            added += 1;
            "workspace.member.add"
        };
        let event = AuditEvent::new(action, "user", user).in_org(org_id).with_details(
            serde_json::json!({ "workspace_id": id, "before": before.map(|(r,)| r), "after": role.as_str() }),
        );
        audit::record(&mut tx, &admin, client, event).await?;
    }
    tx.commit().await?;
    Ok((added, updated))
}

/// Removes members; nobody leaves the Default workspace. Returns `(removed, not_removed)`.
#[tracing::instrument(name = "workspaces::remove_members", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn remove_members(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: WorkspaceId,
    users: &[UserId],
) -> AppResult<(i64, Vec<UserId>)> {
    let target = workspace(db, actor, org_id, id).await?;
    if target.is_default {
        return Err(AppError::conflict("workspace", "Nobody can be removed from the Default workspace."));
    }
    let mut tx = db.begin().await?;
    let admin = authz::workspace_admin(&mut tx, actor, org_id, id).await?;
    let (mut removed, mut not_removed) = (0, Vec::new());
    for user in users {
        let done = sqlx::query("DELETE FROM workspace_members WHERE workspace_id = $1 AND user_id = $2")
            .bind(id)
            .bind(*user)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            not_removed.push(*user);
            continue;
        }
        removed += 1;
        let event = AuditEvent::new("workspace.member.remove", "user", user)
            .in_org(org_id)
            .with_details(serde_json::json!({ "workspace_id": id }));
        audit::record(&mut tx, &admin, client, event).await?;
        lifecycle::end_lost_access(&mut tx, &admin, client, *user).await?;
    }
    tx.commit().await?;
    Ok((removed, not_removed))
}

pub(super) async fn require_org_member(
    conn: &mut sqlx::AnyConnection,
    org_id: OrgId,
    user: UserId,
    field: &str,
) -> AppResult<()> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM org_members WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user)
        .fetch_one(conn)
        .await?;
    if n == 0 {
        return Err(AppError::invalid(field, format!("User {user} is not a member of this organization.")));
    }
    Ok(())
}

pub(super) async fn upsert_member(
    conn: &mut sqlx::AnyConnection,
    id: WorkspaceId,
    user: UserId,
    role: WorkspaceRole,
) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO workspace_members (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role",
    )
    .bind(id)
    .bind(user)
    .bind(role.as_str())
    .bind(Timestamp::now())
    .execute(conn)
    .await?;
    Ok(())
}
