//! Organizations and what their members see of them.

use sqlx::AnyConnection;

use super::{
    actor::{Actor, Client},
    audit::{self, AuditEvent},
    authz::{self, Authority},
    db::Db,
};
use crate::{
    error::{AppError, AppResult},
    ids::{EnterpriseId, OrgId, UserId, WorkspaceId},
    model::{OrgRole, OrgSummary, WorkspaceRole},
    time::Timestamp,
    validate,
};

pub const DEFAULT_WORKSPACE_NAME: &str = "Default";

/// Creates a person's first organization: they become its Admin, and its
/// Default workspace is created with them as workspace Admin.
#[tracing::instrument(name = "orgs::create_first_organization", skip_all, fields(actor = actor.kind()), err(level = "debug"))]
pub async fn create_first_organization(
    db: &Db,
    actor: &Actor,
    client: &Client,
    name: &str,
) -> AppResult<OrgSummary> {
    let Some(user_id) = actor.user_id() else {
        return Err(AppError::Forbidden);
    };
    let founder = authz::own_account(user_id, &actor.label());
    let name = validate::org_name(name)?;

    let mut tx = db.begin().await?;
    // Two clicks at once make one organization: the second waits, then finds it.
    authz::lock_user(&mut tx, user_id).await?;
    let (existing,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM org_members WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
    if existing > 0 {
        return Err(AppError::conflict("name", "You already belong to an organization."));
    }

    let (org_id, workspace_id) = insert_organization(&mut tx, &name, None, Some(user_id)).await?;
    join_as_admin(&mut tx, org_id, workspace_id, user_id).await?;
    audit_creation(&mut tx, &founder, client, org_id, workspace_id, &name).await?;
    tx.commit().await?;

    tracing::info!(%org_id, %user_id, "organization created");
    Ok(OrgSummary { id: org_id, name, roles: vec![OrgRole::Admin] })
}

/// An organization's name, for whoever already proved they act in it.
#[tracing::instrument(name = "orgs::name_of", skip_all, fields(org_id = %org_id), err(level = "debug"))]
pub async fn name_of(db: &Db, org_id: OrgId) -> AppResult<String> {
    let row: Option<(String,)> = sqlx::query_as("SELECT name FROM organizations WHERE id = $1")
        .bind(org_id)
        .fetch_optional(db.pool())
        .await?;
    row.map(|(name,)| name).ok_or(AppError::NotFound)
}

/// Renames an organization (its Admins only).
#[tracing::instrument(name = "orgs::rename", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn rename(db: &Db, actor: &Actor, client: &Client, org_id: OrgId, name: &str) -> AppResult<()> {
    let name = validate::org_name(name)?;
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    let (before,): (String,) = sqlx::query_as("SELECT name FROM organizations WHERE id = $1")
        .bind(org_id)
        .fetch_one(&mut *tx)
        .await?;
    if before == name {
        return Ok(());
    }
    sqlx::query("UPDATE organizations SET name = $1 WHERE id = $2")
        .bind(&name)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    let event = AuditEvent::new("organization.update", "organization", org_id)
        .in_org(org_id)
        .with_details(serde_json::json!({ "before": { "name": before }, "after": { "name": name } }));
    audit::record(&mut tx, &admin, client, event).await?;
    tx.commit().await?;
    Ok(())
}

/// Inserts an organization and its Default workspace, with no members yet.
pub(super) async fn insert_organization(
    conn: &mut AnyConnection,
    name: &str,
    enterprise: Option<EnterpriseId>,
    created_by: Option<UserId>,
) -> Result<(OrgId, WorkspaceId), sqlx::Error> {
    let now = Timestamp::now();
    let org_id = OrgId::new();
    let workspace_id = WorkspaceId::new();
    sqlx::query(
        "INSERT INTO organizations (id, name, default_workspace_id, enterprise_account_id, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(org_id)
    .bind(name)
    .bind(workspace_id)
    .bind(enterprise)
    .bind(created_by)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO workspaces (id, org_id, name, name_key, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(workspace_id)
    .bind(org_id)
    .bind(DEFAULT_WORKSPACE_NAME)
    .bind(super::workspaces::name_key(DEFAULT_WORKSPACE_NAME))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok((org_id, workspace_id))
}

pub(super) async fn audit_creation(
    conn: &mut AnyConnection,
    by: &impl Authority,
    client: &Client,
    org_id: OrgId,
    workspace_id: WorkspaceId,
    name: &str,
) -> Result<(), sqlx::Error> {
    let created = AuditEvent::new("organization.create", "organization", org_id)
        .in_org(org_id)
        .with_details(serde_json::json!({ "name": name }));
    audit::record(&mut *conn, by, client, created).await?;
    let workspace = AuditEvent::new("workspace.create", "workspace", workspace_id)
        .in_org(org_id)
        .with_details(serde_json::json!({ "name": DEFAULT_WORKSPACE_NAME, "is_default": true }));
    audit::record(conn, by, client, workspace).await
}

/// Makes `user_id` an Admin of the organization (adding the role if already a
/// member) and an Admin of its Default workspace. True if they were not a member.
pub(super) async fn join_as_admin(
    conn: &mut AnyConnection,
    org_id: OrgId,
    default_workspace: WorkspaceId,
    user_id: UserId,
) -> Result<bool, sqlx::Error> {
    let now = Timestamp::now();
    let joined = sqlx::query(
        "INSERT INTO org_members (org_id, user_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    sqlx::query(
        "INSERT INTO org_member_roles (org_id, user_id, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(OrgRole::Admin.as_str())
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO workspace_members (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role",
    )
    .bind(default_workspace)
    .bind(user_id)
    .bind(WorkspaceRole::Admin.as_str())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(joined)
}

/// The organizations a person belongs to, with their roles in each, oldest membership first.
#[tracing::instrument(name = "orgs::memberships", skip_all, fields(user_id = %user_id), err(level = "debug"))]
pub async fn memberships(db: &Db, user_id: UserId) -> AppResult<Vec<OrgSummary>> {
    let rows: Vec<(OrgId, String, String)> = sqlx::query_as(
        "SELECT o.id, o.name, r.role
         FROM org_members m
         JOIN organizations o ON o.id = m.org_id
         JOIN effective_org_roles r ON r.org_id = m.org_id AND r.user_id = m.user_id
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
        // A role held directly and through a group is read twice.
        org.roles.sort();
        org.roles.dedup();
    }
    Ok(orgs)
}
