//! The Admin Panel's home: a read model over organizations, workspaces and
//! Enterprise Accounts (kept apart from them, so none of those depends on another).

use super::{authz, db::Db, enterprise, orgs, recovery, workspaces};
use crate::{
    error::{AppError, AppResult},
    ids::OrgId,
    model::{AdminOverview, CurrentUser, OrgRole},
};

/// The Admin Panel's home for `user` in `org_id`. Someone outside the
/// organization gets `NotFound`, as if it did not exist.
#[tracing::instrument(name = "overview::admin_overview", skip_all, fields(org_id = %org_id), err(level = "debug"))]
pub async fn admin_overview(db: &Db, user: CurrentUser, org_id: OrgId) -> AppResult<AdminOverview> {
    let (mut this, other_orgs): (Vec<_>, Vec<_>) =
        orgs::memberships(db, user.id).await?.into_iter().partition(|org| org.id == org_id);
    let org = this.pop().ok_or(AppError::NotFound)?;
    // Admins see every workspace; others only those they reach, directly or through a group.
    let sees_all = org.roles.contains(&OrgRole::Admin);
    let rows: Vec<workspaces::WorkspaceRow> = sqlx::query_as(&format!(
        "{}
         WHERE w.org_id = $1 AND w.archived_at IS NULL AND ($2 = 1 OR {})
         ORDER BY w.created_at, w.name",
        workspaces::SELECT_WORKSPACES,
        authz::reaches!("$3"),
    ))
    .bind(org_id)
    .bind(i64::from(sees_all))
    .bind(user.id)
    .fetch_all(db.pool())
    .await?;
    let workspaces = rows.into_iter().map(Into::into).collect();
    let backoffice_access = enterprise::of_user(db, user.id).await?.is_some();
    let email_verified = recovery::is_verified(&mut *db.pool().acquire().await?, user.id).await?;
    Ok(AdminOverview { user, org, workspaces, other_orgs, backoffice_access, email_verified })
}
