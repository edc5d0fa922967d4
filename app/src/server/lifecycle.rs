//! What ends when a person loses access: run inside the transaction of every
//! change that can take access away (removal from the Organization, a new set
//! of roles, removal from a workspace or a group, a group losing a workspace),
//! so the change and its consequences commit, or fail, together.
//!
//! The rules:
//! - A workspace API key works while its owner may still use its workspace:
//!   they are a member of the Organization and either one of its Admins or
//!   granted the workspace (directly or through a group). Otherwise it is
//!   revoked, one audit event per key; the gateway refuses it within a second.
//!   A person's key ends with their access: an Admin who makes a key for
//!   someone else makes it theirs. Automation that must outlive any person
//!   runs on a service account's keys (`service_accounts`), which end only
//!   with the account; a departing person's key can also be rotated before
//!   they go: the new key is the rotator's (see `api_keys::rotate`).
//! - Pending invitations end with their inviter's right to invite: an inviter
//!   who is no longer an Admin of the Organization has them revoked.
//! - Membership of an Enterprise Account requires being an Admin of one of its
//!   Organizations: it ends (audited) when the last such role goes. The last
//!   member of an Enterprise Account cannot lose it that way: the change is
//!   refused until someone else joins the Enterprise Account.

use sqlx::AnyConnection;

use super::{
    actor::Client,
    audit::{self, AuditEvent},
    authz::{self, Authority, OrgAuthority},
    enterprise,
};
use crate::{
    error::{AppError, AppResult},
    ids::{ApiKeyId, EnterpriseId, OrgId, UserId, WorkspaceId},
    model::{AccessEnded, OrgRole},
    time::Timestamp,
};

/// Whether `user` may use `workspace_id` of `org_id` now: what a key for them
/// there needs, checked where the key is made, under the Organization's lock.
pub(super) async fn may_use_workspace(
    conn: &mut AnyConnection,
    org_id: OrgId,
    workspace_id: WorkspaceId,
    user: UserId,
) -> AppResult<bool> {
    let (n,): (i64,) = sqlx::query_as(concat!(
        "SELECT COUNT(*) FROM workspaces w WHERE w.id = $1 AND w.org_id = $2 AND ",
        authz::may_use_workspace!("$3")
    ))
    .bind(workspace_id)
    .bind(org_id)
    .bind(user)
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// Ends what `user` may no longer use in the Organization `admin` acts in. Call it after
/// the change, in the same transaction.
pub async fn end_lost_access(
    conn: &mut AnyConnection,
    admin: &impl OrgAuthority,
    client: &Client,
    user: UserId,
) -> AppResult<AccessEnded> {
    let still_admin = is_org_admin(conn, admin, user).await?;
    if !still_admin {
        require_an_admin(conn, admin.org_id()).await?;
    }
    let api_keys_revoked = revoke_unreachable_keys(conn, admin, client, user).await?;
    let invitations_revoked = if still_admin {
        0
    } else {
        revoke_invitations_sent_by(conn, admin, client, admin.org_id(), ("user", &user.to_string())).await?
    };
    let left_enterprise = if still_admin {
        false
    } else {
        leave_enterprise_if_no_longer_admin(conn, admin, client, user).await?
    };
    Ok(AccessEnded { api_keys_revoked, invitations_revoked, left_enterprise })
}

/// Refuses a change that leaves the Organization without an Admin (directly
/// or through a group): whatever took the role, someone must keep it.
async fn require_an_admin(conn: &mut AnyConnection, org_id: OrgId) -> AppResult<()> {
    let (admins,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM effective_org_roles WHERE org_id = $1 AND role = $2")
            .bind(org_id)
            .bind(OrgRole::Admin.as_str())
            .fetch_one(&mut *conn)
            .await?;
    if admins == 0 {
        return Err(AppError::conflict(
            "organization_role",
            "This would leave the Organization without an Admin: make someone else an Admin first.",
        ));
    }
    Ok(())
}

async fn is_org_admin(conn: &mut AnyConnection, admin: &impl OrgAuthority, user: UserId) -> AppResult<bool> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM effective_org_roles WHERE org_id = $1 AND user_id = $2 AND role = $3",
    )
    .bind(admin.org_id())
    .bind(user)
    .bind(OrgRole::Admin.as_str())
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

async fn revoke_unreachable_keys(
    conn: &mut AnyConnection,
    admin: &impl OrgAuthority,
    client: &Client,
    user: UserId,
) -> AppResult<i64> {
    let keys: Vec<(ApiKeyId, String, WorkspaceId)> = sqlx::query_as(concat!(
        "SELECT k.id, k.name, k.workspace_id FROM workspace_api_keys k JOIN workspaces w ON w.id = k.workspace_id
         WHERE k.org_id = $1 AND k.owner_user_id = $2 AND k.revoked_at IS NULL AND NOT ",
        authz::may_use_workspace!("$2"),
        " ORDER BY k.created_at, k.id"
    ))
    .bind(admin.org_id())
    .bind(user)
    .fetch_all(&mut *conn)
    .await?;
    let now = Timestamp::now();
    for (id, name, workspace_id) in &keys {
        sqlx::query("UPDATE workspace_api_keys SET revoked_at = $1 WHERE id = $2")
            .bind(now)
            .bind(*id)
            .execute(&mut *conn)
            .await?;
        let event = AuditEvent::new("api_key.delete", "api_key", id).in_org(admin.org_id()).with_details(
            serde_json::json!({
                "name": name,
                "workspace_id": workspace_id,
                "owner_user_id": user,
                "reason": "owner_lost_access",
            }),
        );
        audit::record(&mut *conn, &admin, client, event).await?;
    }
    Ok(keys.len() as i64)
}

/// Revokes the pending invitations `inviter` (an actor's kind and id, as
/// `invitations.invited_by_*` keep them) sent in `org_id`: they do not outlive
/// its right to invite. Used for people and for Admin API keys alike.
pub(super) async fn revoke_invitations_sent_by(
    conn: &mut AnyConnection,
    by: &impl Authority,
    client: &Client,
    org_id: OrgId,
    inviter: (&str, &str),
) -> AppResult<i64> {
    let pending: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, email FROM invitations
         WHERE org_id = $1 AND invited_by_type = $2 AND invited_by_id = $3
           AND accepted_at IS NULL AND revoked_at IS NULL ORDER BY created_at, id",
    )
    .bind(org_id)
    .bind(inviter.0)
    .bind(inviter.1)
    .fetch_all(&mut *conn)
    .await?;
    let now = Timestamp::now();
    for (id, email) in &pending {
        sqlx::query("UPDATE invitations SET revoked_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        let event = AuditEvent::new("organization.invite.revoked", "invitation", id)
            .in_org(org_id)
            .with_details(serde_json::json!({ "email": email, "reason": "inviter_lost_admin_role" }));
        audit::record(&mut *conn, by, client, event).await?;
    }
    Ok(pending.len() as i64)
}

/// True if `user` was a member (or invitee) of the Organization's Enterprise
/// Account and no longer may be.
async fn leave_enterprise_if_no_longer_admin(
    conn: &mut AnyConnection,
    admin: &impl OrgAuthority,
    client: &Client,
    user: UserId,
) -> AppResult<bool> {
    let (enterprise,): (Option<EnterpriseId>,) =
        sqlx::query_as("SELECT enterprise_account_id FROM organizations WHERE id = $1")
            .bind(admin.org_id())
            .fetch_one(&mut *conn)
            .await?;
    let Some(enterprise) = enterprise else {
        return Ok(false);
    };
    authz::lock_enterprise(conn, enterprise).await?;
    let membership: Option<(Option<Timestamp>,)> = sqlx::query_as(
        "SELECT accepted_at FROM enterprise_members WHERE enterprise_account_id = $1 AND user_id = $2",
    )
    .bind(enterprise)
    .bind(user)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((accepted_at,)) = membership else {
        return Ok(false);
    };
    if authz::is_admin_of_linked_org(conn, enterprise, user).await? {
        return Ok(false);
    }
    if accepted_at.is_some() && enterprise::active_members(conn, enterprise).await? <= 1 {
        return Err(AppError::conflict(
            "user_id",
            "This person is the last member of the Enterprise Account, which requires being an Admin \
             of one of its Organizations. Add another member in the Backoffice first.",
        ));
    }
    sqlx::query("DELETE FROM enterprise_members WHERE enterprise_account_id = $1 AND user_id = $2")
        .bind(enterprise)
        .bind(user)
        .execute(&mut *conn)
        .await?;
    let event = AuditEvent::new("enterprise_account.member.remove", "user", user).in_org(admin.org_id()).with_details(
        serde_json::json!({ "enterprise_account_id": enterprise, "reason": "no_longer_admin_of_a_linked_organization" }),
    );
    audit::record(&mut *conn, &admin, client, event).await?;
    Ok(true)
}
