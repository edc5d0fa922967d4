//! Service accounts (Mistral's `/v1/service-accounts`): non-human members of
//! one workspace that own API keys, so automation keeps working whoever
//! leaves. A name is a slug (lowercase letters, digits and hyphens, 2 to 63),
//! unique among the workspace's live accounts and never changed; the
//! description may be. Deleting an account revokes its keys at once.
//!
//! The workspace's Admins manage its accounts (the Organization's Admins and
//! its Admin API keys manage all); listing the whole Organization's is for its
//! Admins. An account's role is its workspace role on record (Member unless
//! set): Chancery gives service accounts no sign-in, so the role grants their
//! keys nothing beyond calling models.

use sqlx::{AnyConnection, FromRow};

use super::{
    actor::{Actor, Client},
    audit::{self, AuditEvent},
    authz,
    db::{bind_all, Conditions, Db, Param},
    workspaces,
};
use crate::{
    error::{AppError, AppResult},
    ids::{OrgId, ServiceAccountId, WorkspaceId},
    model::{ServiceAccountView, WorkspaceRole},
    time::Timestamp,
};

/// A description is at most this many characters.
pub const DESCRIPTION_MAX_CHARS: usize = 1_000;
/// The most accounts one page lists.
pub const MAX_PAGE: i64 = 100;

#[derive(FromRow)]
struct AccountRow {
    id: ServiceAccountId,
    org_id: OrgId,
    workspace_id: WorkspaceId,
    name: String,
    description: Option<String>,
    role: String,
    created_at: Timestamp,
    updated_at: Timestamp,
    deleted_at: Option<Timestamp>,
}

impl AccountRow {
    fn view(self) -> ServiceAccountView {
        ServiceAccountView {
            id: self.id,
            org_id: self.org_id,
            workspace_id: self.workspace_id,
            name: self.name,
            description: self.description,
            role: WorkspaceRole::parse(&self.role).unwrap_or(WorkspaceRole::Member),
            created_at: self.created_at,
            updated_at: self.updated_at,
            deleted_at: self.deleted_at,
        }
    }
}

const SELECT: &str =
    "SELECT id, org_id, workspace_id, name, description, role, created_at, updated_at, deleted_at
    FROM service_accounts";

/// A service account's name: a slug of 2 to 63 lowercase letters, digits and
/// hyphens, starting with a letter and not ending with a hyphen.
pub fn check_name(name: &str) -> AppResult<()> {
    let slug = (2..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if slug {
        Ok(())
    } else {
        Err(AppError::invalid(
            "name",
            "A service account's name is 2 to 63 lowercase letters, digits and hyphens, starting with a letter.",
        ))
    }
}

fn checked_description(description: Option<String>) -> AppResult<Option<String>> {
    let description = description.map(|d| d.trim().to_string()).filter(|d| !d.is_empty());
    if description.as_ref().is_some_and(|d| d.chars().count() > DESCRIPTION_MAX_CHARS) {
        return Err(AppError::invalid(
            "description",
            format!("A description is at most {DESCRIPTION_MAX_CHARS} characters."),
        ));
    }
    Ok(description)
}

/// What a new service account is made with.
#[derive(Clone, Debug)]
pub struct NewServiceAccount {
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub description: Option<String>,
    pub role: WorkspaceRole,
}

#[tracing::instrument(name = "service_accounts::create", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn create(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    input: NewServiceAccount,
) -> AppResult<ServiceAccountView> {
    check_name(&input.name)?;
    let description = checked_description(input.description)?;
    let mut tx = db.begin().await?;
    let admin = authz::workspace_admin(&mut tx, actor, org_id, input.workspace_id).await?;
    workspaces::require_active(&mut tx, org_id, input.workspace_id).await?;
    let (taken,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM service_accounts WHERE workspace_id = $1 AND name = $2 AND deleted_at IS NULL",
    )
    .bind(input.workspace_id)
    .bind(&input.name)
    .fetch_one(&mut *tx)
    .await?;
    if taken > 0 {
        return Err(AppError::conflict(
            "name",
            format!("This workspace already has a service account named {}.", input.name),
        ));
    }
    let (id, now) = (ServiceAccountId::new(), Timestamp::now());
    sqlx::query(
        "INSERT INTO service_accounts (id, org_id, workspace_id, name, description, role, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(id)
    .bind(org_id)
    .bind(input.workspace_id)
    .bind(&input.name)
    .bind(&description)
    .bind(input.role.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let event = AuditEvent::new("service_account.create", "service_account", id).in_org(org_id).with_details(
        serde_json::json!({
            "name": input.name, "role": input.role.api_name(), "workspace_id": input.workspace_id,
        }),
    );
    audit::record(&mut tx, &admin, client, event).await?;
    let view = find(&mut tx, org_id, id).await?;
    tx.commit().await?;
    Ok(view)
}

async fn find(
    conn: &mut AnyConnection,
    org_id: OrgId,
    id: ServiceAccountId,
) -> AppResult<ServiceAccountView> {
    let row: Option<AccountRow> = sqlx::query_as(&format!("{SELECT} WHERE id = $1 AND org_id = $2"))
        .bind(id)
        .bind(org_id)
        .fetch_optional(conn)
        .await?;
    row.map(AccountRow::view).ok_or(AppError::NotFound)
}

/// A live account, for someone who administers its workspace; `NotFound` otherwise.
async fn administered(
    conn: &mut AnyConnection,
    actor: &Actor,
    org_id: OrgId,
    id: ServiceAccountId,
) -> AppResult<(authz::WorkspaceAdmin, ServiceAccountView)> {
    let account = find(conn, org_id, id).await?;
    let admin = authz::workspace_admin(conn, actor, org_id, account.workspace_id).await?;
    if account.deleted_at.is_some() {
        return Err(AppError::NotFound);
    }
    Ok((admin, account))
}

/// One account, deleted ones included, for those who administer its workspace.
#[tracing::instrument(name = "service_accounts::get", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn get(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    id: ServiceAccountId,
) -> AppResult<ServiceAccountView> {
    let mut tx = db.begin().await?;
    let account = find(&mut tx, org_id, id).await?;
    authz::workspace_admin(&mut tx, actor, org_id, account.workspace_id).await?;
    tx.commit().await?;
    Ok(account)
}

/// Which accounts a list shows.
#[derive(Clone, Debug, Default)]
pub struct ServiceAccountQuery {
    /// `None`: the whole Organization (its Admins only).
    pub workspace_id: Option<WorkspaceId>,
    /// In the name or the description.
    pub search: Option<String>,
    pub include_deleted: bool,
    pub newest_first: bool,
    pub offset: i64,
    pub limit: i64,
}

#[tracing::instrument(name = "service_accounts::list", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn list(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    query: &ServiceAccountQuery,
) -> AppResult<Vec<ServiceAccountView>> {
    if query.offset < 0 {
        return Err(AppError::invalid("offset", "offset must be 0 or more."));
    }
    if !(1..=MAX_PAGE).contains(&query.limit) {
        return Err(AppError::invalid("limit", format!("limit must be between 1 and {MAX_PAGE}.")));
    }
    let mut tx = db.begin().await?;
    match query.workspace_id {
        Some(workspace_id) => drop(authz::workspace_admin(&mut tx, actor, org_id, workspace_id).await?),
        None => drop(authz::org_admin(&mut tx, actor, org_id).await?),
    }
    let mut sql = Conditions::default();
    let org = sql.param(Param::Text(org_id.to_string()));
    sql.and(format!("org_id = {org}"));
    if let Some(workspace) = query.workspace_id {
        let workspace = sql.param(Param::Text(workspace.to_string()));
        sql.and(format!("workspace_id = {workspace}"));
    }
    if !query.include_deleted {
        sql.and("deleted_at IS NULL".into());
    }
    sql.contains(
        &["LOWER(name)", "LOWER(COALESCE(description, ''))"],
        query.search.as_deref().unwrap_or_default(),
    );
    let order = if query.newest_first { "DESC" } else { "ASC" };
    let limit = sql.param(Param::Int(query.limit));
    let offset = sql.param(Param::Int(query.offset));
    let rows: Vec<AccountRow> = bind_all(
        sqlx::query_as(&format!(
            "{SELECT} WHERE {} ORDER BY created_at {order}, id {order} LIMIT {limit} OFFSET {offset}",
            sql.text
        )),
        sql.params,
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(AccountRow::view).collect())
}

/// Changes an account's description (`None` clears it); its name never changes.
#[tracing::instrument(name = "service_accounts::update", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn update(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: ServiceAccountId,
    description: Option<String>,
) -> AppResult<ServiceAccountView> {
    let description = checked_description(description)?;
    let mut tx = db.begin().await?;
    let (admin, before) = administered(&mut tx, actor, org_id, id).await?;
    sqlx::query("UPDATE service_accounts SET description = $1, updated_at = $2 WHERE id = $3")
        .bind(&description)
        .bind(Timestamp::now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let event = AuditEvent::new("service_account.update", "service_account", id).in_org(org_id).with_details(
        serde_json::json!({
            "before": before.description, "after": description, "workspace_id": before.workspace_id,
        }),
    );
    audit::record(&mut tx, &admin, client, event).await?;
    let view = find(&mut tx, org_id, id).await?;
    tx.commit().await?;
    Ok(view)
}

/// Replaces an account's workspace role.
#[tracing::instrument(name = "service_accounts::set_role", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn set_role(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: ServiceAccountId,
    role: WorkspaceRole,
) -> AppResult<ServiceAccountView> {
    let mut tx = db.begin().await?;
    let (admin, before) = administered(&mut tx, actor, org_id, id).await?;
    sqlx::query("UPDATE service_accounts SET role = $1, updated_at = $2 WHERE id = $3")
        .bind(role.as_str())
        .bind(Timestamp::now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let event = AuditEvent::new("service_account.roles.set", "service_account", id)
        .in_org(org_id)
        .with_details(serde_json::json!({
            "before": before.role.api_name(), "after": role.api_name(), "workspace_id": before.workspace_id,
        }));
    audit::record(&mut tx, &admin, client, event).await?;
    let view = find(&mut tx, org_id, id).await?;
    tx.commit().await?;
    Ok(view)
}

/// Deletes an account and revokes its keys; returns how many were revoked.
#[tracing::instrument(name = "service_accounts::delete", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn delete(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: ServiceAccountId,
) -> AppResult<u64> {
    let mut tx = db.begin().await?;
    let (admin, account) = administered(&mut tx, actor, org_id, id).await?;
    let now = Timestamp::now();
    sqlx::query("UPDATE service_accounts SET deleted_at = $1, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let revoked = sqlx::query(
        "UPDATE workspace_api_keys SET revoked_at = $1
         WHERE service_account_id = $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let event = AuditEvent::new("service_account.delete", "service_account", id).in_org(org_id).with_details(
        serde_json::json!({
            "name": account.name, "keys_revoked": revoked, "workspace_id": account.workspace_id,
        }),
    );
    audit::record(&mut tx, &admin, client, event).await?;
    tx.commit().await?;
    Ok(revoked)
}

/// A live service account of `workspace_id`, for a key made for it.
pub(super) async fn require_live_in(
    conn: &mut AnyConnection,
    org_id: OrgId,
    workspace_id: WorkspaceId,
    id: ServiceAccountId,
) -> AppResult<()> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM service_accounts
         WHERE id = $1 AND org_id = $2 AND workspace_id = $3 AND deleted_at IS NULL",
    )
    .bind(id)
    .bind(org_id)
    .bind(workspace_id)
    .fetch_one(conn)
    .await?;
    if n == 0 {
        return Err(AppError::invalid(
            "service_account_id",
            "No such service account in this workspace: a key's service account must be of its workspace.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_slugs() {
        for good in ["ci", "nightly-batch", "etl2", &format!("a{}", "b".repeat(62))] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a", "CI", "2fast", "batch-", "with space", "under_score", "é-t-é", &"a".repeat(64)]
        {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
