//! Organizations and what their members see of them.

use sqlx::FromRow;

use super::{
    actor::{Actor, Client},
    audit::{self, AuditEvent},
    db::Db,
};
use crate::{
    error::{AppError, AppResult},
    ids::{OrgId, UserId, WorkspaceId},
    model::{AdminOverview, CurrentUser, OrgRole, OrgSummary, WorkspaceRole, WorkspaceSummary},
    time::Timestamp,
    validate,
};

pub const DEFAULT_WORKSPACE_NAME: &str = "Default";

/// Creates a person's first organization: they become its Admin, and its
/// Default workspace is created with them as workspace Admin.
pub async fn create_first_organization(
    db: &Db,
    actor: &Actor,
    client: &Client,
    name: &str,
) -> AppResult<OrgSummary> {
    let Some(user_id) = actor.user_id() else {
        return Err(AppError::Forbidden);
    };
    let name = validate::org_name(name)?;

    let mut tx = db.begin().await?;
    let (existing,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM org_members WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
    if existing > 0 {
        return Err(AppError::conflict("name", "You already belong to an organization."));
    }

    let now = Timestamp::now();
    let org_id = OrgId::new();
    let workspace_id = WorkspaceId::new();
    sqlx::query(
        "INSERT INTO organizations (id, name, default_workspace_id, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(org_id)
    .bind(&name)
    .bind(workspace_id)
    .bind(user_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO workspaces (id, org_id, name, created_at) VALUES ($1, $2, $3, $4)")
        .bind(workspace_id)
        .bind(org_id)
        .bind(DEFAULT_WORKSPACE_NAME)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO org_members (org_id, user_id, created_at) VALUES ($1, $2, $3)")
        .bind(org_id)
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO org_member_roles (org_id, user_id, role) VALUES ($1, $2, $3)")
        .bind(org_id)
        .bind(user_id)
        .bind(OrgRole::Admin.as_str())
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO workspace_members (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(workspace_id)
    .bind(user_id)
    .bind(WorkspaceRole::Admin.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await?;

    let created = AuditEvent::new("organization.create", "organization", org_id)
        .in_org(org_id)
        .with_details(serde_json::json!({ "name": name }));
    audit::record(&mut tx, actor, client, created).await?;
    let workspace = AuditEvent::new("workspace.create", "workspace", workspace_id)
        .in_org(org_id)
        .with_details(serde_json::json!({ "name": DEFAULT_WORKSPACE_NAME, "is_default": true }));
    audit::record(&mut tx, actor, client, workspace).await?;
    tx.commit().await?;

    tracing::info!(%org_id, %user_id, "organization created");
    Ok(OrgSummary { id: org_id, name, roles: vec![OrgRole::Admin] })
}

/// The organizations a person belongs to, with their roles in each, oldest membership first.
pub async fn memberships(db: &Db, user_id: UserId) -> AppResult<Vec<OrgSummary>> {
    let rows: Vec<(OrgId, String, String)> = sqlx::query_as(
        "SELECT o.id, o.name, r.role
         FROM org_members m
         JOIN organizations o ON o.id = m.org_id
         JOIN org_member_roles r ON r.org_id = m.org_id AND r.user_id = m.user_id
         WHERE m.user_id = $1
         ORDER BY m.created_at, o.id, r.role",
    )
    .bind(user_id)
    .fetch_all(db.pool())
    .await?;
    let mut orgs: Vec<OrgSummary> = Vec::new();
    for (id, name, role) in rows {
        let role = OrgRole::parse(&role);
        match orgs.last_mut() {
            Some(org) if org.id == id => org.roles.extend(role),
            _ => orgs.push(OrgSummary { id, name, roles: role.into_iter().collect() }),
        }
    }
    for org in &mut orgs {
        org.roles.sort();
    }
    Ok(orgs)
}

#[derive(FromRow)]
struct WorkspaceRow {
    id: WorkspaceId,
    name: String,
    description: String,
    icon: String,
    default_workspace_id: Option<WorkspaceId>,
    member_count: i64,
}

/// The Admin Panel's home for `user` in `org_id`. Someone outside the
/// organization gets `NotFound`, as if it did not exist.
pub async fn admin_overview(db: &Db, user: CurrentUser, org_id: OrgId) -> AppResult<AdminOverview> {
    let org =
        memberships(db, user.id).await?.into_iter().find(|org| org.id == org_id).ok_or(AppError::NotFound)?;
    // Admins see every workspace; others only those they are members of.
    let sees_all = org.roles.contains(&OrgRole::Admin);
    let rows: Vec<WorkspaceRow> = sqlx::query_as(
        "SELECT w.id, w.name, w.description, w.icon, o.default_workspace_id,
                (SELECT COUNT(*) FROM workspace_members c WHERE c.workspace_id = w.id) AS member_count
         FROM workspaces w
         JOIN organizations o ON o.id = w.org_id
         WHERE w.org_id = $1 AND w.archived_at IS NULL
           AND ($2 = 1 OR EXISTS (SELECT 1 FROM workspace_members m WHERE m.workspace_id = w.id AND m.user_id = $3))
         ORDER BY w.created_at, w.name",
    )
    .bind(org_id)
    .bind(i64::from(sees_all))
    .bind(user.id)
    .fetch_all(db.pool())
    .await?;
    let workspaces = rows
        .into_iter()
        .map(|row| WorkspaceSummary {
            is_default: row.default_workspace_id == Some(row.id),
            id: row.id,
            name: row.name,
            description: row.description,
            icon: row.icon,
            member_count: row.member_count,
        })
        .collect();
    Ok(AdminOverview { user, org, workspaces })
}
