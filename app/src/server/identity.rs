//! Who a workspace API key speaks for (Mistral's `/v1/whoami` and
//! `/v1/users/me/workspaces`): the person it is for, the service account that
//! owns it, or, for a key made for neither, the key itself; with its
//! Organization and workspace. Answers stay inside the key's Organization.

use super::db::Db;
use crate::{
    error::{AppError, AppResult},
    ids::{ApiKeyId, OrgId, ServiceAccountId, UserId, WorkspaceId},
};

/// Whom a key acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    User {
        id: UserId,
        email: String,
        name: String,
    },
    ServiceAccount {
        id: ServiceAccountId,
        name: String,
    },
    /// A key made for no one in particular.
    ApiKey {
        id: ApiKeyId,
        name: String,
    },
}

/// A key's principal and where it works.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub principal: Principal,
    pub org: (OrgId, String),
    pub workspace: (WorkspaceId, String),
}

type IdentityRow = (
    String,
    OrgId,
    String,
    WorkspaceId,
    String,
    Option<UserId>,
    Option<String>,
    Option<String>,
    Option<ServiceAccountId>,
    Option<String>,
);

/// The identity behind a workspace key the gateway accepted.
#[tracing::instrument(name = "identity::of_key", skip_all, fields(key_id = %key_id), err(level = "debug"))]
pub async fn of_key(db: &Db, key_id: ApiKeyId) -> AppResult<Identity> {
    let row: Option<IdentityRow> = sqlx::query_as(
        "SELECT k.name, o.id, o.name, w.id, w.name, u.id, u.email, u.name, s.id, s.name
         FROM workspace_api_keys k
         JOIN organizations o ON o.id = k.org_id
         JOIN workspaces w ON w.id = k.workspace_id
         LEFT JOIN users u ON u.id = k.owner_user_id
         LEFT JOIN service_accounts s ON s.id = k.service_account_id
         WHERE k.id = $1",
    )
    .bind(key_id)
    .fetch_optional(db.pool())
    .await?;
    let (
        key_name,
        org_id,
        org_name,
        workspace_id,
        workspace_name,
        user,
        email,
        user_name,
        account,
        account_name,
    ) = row.ok_or(AppError::NotFound)?;
    let principal = match (user, account) {
        (_, Some(id)) => Principal::ServiceAccount { id, name: account_name.unwrap_or_default() },
        (Some(id), None) => {
            Principal::User { id, email: email.unwrap_or_default(), name: user_name.unwrap_or_default() }
        }
        (None, None) => Principal::ApiKey { id: key_id, name: key_name },
    };
    Ok(Identity { principal, org: (org_id, org_name), workspace: (workspace_id, workspace_name) })
}

/// The active workspaces of the key's Organization its principal works in,
/// oldest first: a person's (directly or through groups, while a member), a
/// service account's own, a key's own for a key made for no one.
#[tracing::instrument(name = "identity::workspaces_of", skip_all, err(level = "debug"))]
pub async fn workspaces_of(
    db: &Db,
    identity: &Identity,
    offset: i64,
    limit: i64,
) -> AppResult<Vec<(WorkspaceId, String)>> {
    let user = match &identity.principal {
        Principal::User { id, .. } => *id,
        Principal::ServiceAccount { .. } | Principal::ApiKey { .. } => {
            return Ok(if offset == 0 && limit > 0 { vec![identity.workspace.clone()] } else { Vec::new() });
        }
    };
    Ok(sqlx::query_as(
        "SELECT w.id, w.name FROM workspaces w
         WHERE w.org_id = $1 AND w.archived_at IS NULL
           AND EXISTS (SELECT 1 FROM org_members m WHERE m.org_id = w.org_id AND m.user_id = $2)
           AND (EXISTS (SELECT 1 FROM workspace_members d WHERE d.workspace_id = w.id AND d.user_id = $2)
                OR EXISTS (SELECT 1 FROM user_group_workspaces gw JOIN group_people gm ON gm.group_id = gw.group_id
                           WHERE gw.workspace_id = w.id AND gm.user_id = $2))
         ORDER BY w.created_at, w.id LIMIT $3 OFFSET $4",
    )
    .bind(identity.org.0)
    .bind(user)
    .bind(limit)
    .bind(offset)
    .fetch_all(db.pool())
    .await?)
}
