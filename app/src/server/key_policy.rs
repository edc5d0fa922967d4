//! How long workspace API keys may live: an Organization's maximum lifetime,
//! and a stricter one per workspace. Every way a key is made goes through
//! [`clamp`]: a key asked without an expiry, or beyond the policy, expires on the
//! latest day allowed. Existing keys are never changed; those beyond the policy
//! are flagged in the lists.

use sqlx::AnyConnection;

use super::{
    actor::{Actor, Client},
    audit::{self, AuditEvent},
    authz,
    db::Db,
    workspaces,
};
use crate::{
    error::{AppError, AppResult},
    ids::{OrgId, WorkspaceId},
    model::KeyPolicy,
    time::Timestamp,
};

/// The longest lifetime a policy may set: ten years.
pub const MAX_DAYS: i64 = 3650;

const DAY_MS: i64 = 86_400_000;

impl KeyPolicy {
    /// The days a key of the workspace may live: the stricter of the two.
    pub fn max_days(&self) -> Option<i64> {
        match (self.org_max_days, self.workspace_max_days) {
            (Some(org), Some(workspace)) => Some(org.min(workspace)),
            (org, workspace) => org.or(workspace),
        }
    }

    /// The latest expiry a key made at `now` may have (the end of its last day).
    pub fn latest_expiry(&self, now: Timestamp) -> Option<Timestamp> {
        self.max_days().map(|days| Timestamp(now.0 + days * DAY_MS))
    }

    /// The expiry a key asked with `requested` gets at `now`: at most the latest allowed.
    pub fn clamp(&self, requested: Option<Timestamp>, now: Timestamp) -> Option<Timestamp> {
        match (requested, self.latest_expiry(now)) {
            (Some(asked), Some(latest)) => Some(asked.min(latest)),
            (asked, latest) => asked.or(latest),
        }
    }

    /// A key made at `created_at`, expiring at `expires_at`, outlives the policy
    /// as it stands (it was made before it, or before it tightened).
    pub fn exceeded_by(&self, created_at: Timestamp, expires_at: Option<Timestamp>) -> bool {
        match self.latest_expiry(created_at) {
            Some(latest) => expires_at.is_none_or(|at| at > latest),
            None => false,
        }
    }
}

/// The policy over a workspace's keys (or, without one, the Organization's alone).
pub(super) async fn of(
    conn: &mut AnyConnection,
    org_id: OrgId,
    workspace_id: Option<WorkspaceId>,
) -> AppResult<KeyPolicy> {
    let (org_max_days,): (Option<i64>,) =
        sqlx::query_as("SELECT api_key_max_days FROM organizations WHERE id = $1")
            .bind(org_id)
            .fetch_one(&mut *conn)
            .await?;
    let workspace_max_days = match workspace_id {
        Some(id) => {
            let row: Option<(Option<i64>,)> =
                sqlx::query_as("SELECT api_key_max_days FROM workspace_limits WHERE workspace_id = $1")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
            row.and_then(|(days,)| days)
        }
        None => None,
    };
    Ok(KeyPolicy { org_max_days, workspace_max_days })
}

/// The policy for its Admins and Billing managers to read.
#[tracing::instrument(name = "key_policy::get", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn get(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    workspace_id: Option<WorkspaceId>,
) -> AppResult<KeyPolicy> {
    let mut conn = db.pool().acquire().await?;
    authz::billing_manager(&mut conn, actor, org_id).await?;
    if let Some(id) = workspace_id {
        workspaces::require_active(&mut conn, org_id, id).await?;
    }
    of(&mut conn, org_id, workspace_id).await
}

fn check_days(days: Option<i64>) -> AppResult<()> {
    match days {
        Some(days) if !(1..=MAX_DAYS).contains(&days) => Err(AppError::invalid(
            "max_days",
            format!("A key's maximum lifetime is 1 to {MAX_DAYS} days, or none."),
        )),
        _ => Ok(()),
    }
}

/// Sets the Organization's maximum key lifetime (`None`: keys may live forever).
/// Admins only; audited as `api_key_policy.update`.
#[tracing::instrument(name = "key_policy::set_for_org", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn set_for_org(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    days: Option<i64>,
) -> AppResult<()> {
    check_days(days)?;
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    let before = of(&mut tx, org_id, None).await?.org_max_days;
    // Saving what is already there changes nothing, and is not logged.
    if before == days {
        return Ok(());
    }
    sqlx::query("UPDATE organizations SET api_key_max_days = $1 WHERE id = $2")
        .bind(days)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    let event = AuditEvent::new("api_key_policy.update", "organization", org_id)
        .in_org(org_id)
        .with_details(serde_json::json!({ "before": { "max_days": before }, "after": { "max_days": days } }));
    audit::record(&mut tx, &admin, client, event).await?;
    tx.commit().await?;
    Ok(())
}

/// Sets a workspace's maximum key lifetime, at most the Organization's
/// (`None`: the Organization's applies). Admins only; audited.
#[tracing::instrument(name = "key_policy::set_for_workspace", skip_all, fields(actor = actor.kind(), org_id = %org_id, workspace_id = %workspace_id), err(level = "debug"))]
pub async fn set_for_workspace(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    workspace_id: WorkspaceId,
    days: Option<i64>,
) -> AppResult<()> {
    check_days(days)?;
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    workspaces::require_active(&mut tx, org_id, workspace_id).await?;
    let before = of(&mut tx, org_id, Some(workspace_id)).await?;
    if let (Some(days), Some(org_days)) = (days, before.org_max_days) {
        if days > org_days {
            return Err(AppError::invalid(
                "max_days",
                format!("A workspace may be stricter than its Organization ({org_days} days), not looser."),
            ));
        }
    }
    // Saving what is already there changes nothing, and is not logged.
    if before.workspace_max_days == days {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO workspace_limits (workspace_id, api_key_max_days) VALUES ($1, $2)
         ON CONFLICT (workspace_id) DO UPDATE SET api_key_max_days = excluded.api_key_max_days",
    )
    .bind(workspace_id)
    .bind(days)
    .execute(&mut *tx)
    .await?;
    let event = AuditEvent::new("api_key_policy.update", "workspace", workspace_id).in_org(org_id).with_details(
        serde_json::json!({ "before": { "max_days": before.workspace_max_days }, "after": { "max_days": days } }),
    );
    audit::record(&mut tx, &admin, client, event).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000_000);

    fn policy(org: Option<i64>, workspace: Option<i64>) -> KeyPolicy {
        KeyPolicy { org_max_days: org, workspace_max_days: workspace }
    }

    #[test]
    fn the_stricter_maximum_applies() {
        assert_eq!(policy(Some(90), Some(30)).max_days(), Some(30));
        assert_eq!(policy(Some(30), Some(90)).max_days(), Some(30));
        assert_eq!(policy(None, Some(7)).max_days(), Some(7));
        assert_eq!(policy(None, None).max_days(), None);
    }

    #[test]
    fn a_missing_or_too_late_expiry_is_clamped_an_earlier_one_kept() {
        let thirty = policy(Some(30), None);
        let latest = Timestamp(NOW.0 + 30 * DAY_MS);
        assert_eq!(thirty.clamp(None, NOW), Some(latest));
        assert_eq!(thirty.clamp(Some(Timestamp(NOW.0 + 400 * DAY_MS)), NOW), Some(latest));
        let soon = Timestamp(NOW.0 + DAY_MS);
        assert_eq!(thirty.clamp(Some(soon), NOW), Some(soon));
        assert_eq!(policy(None, None).clamp(None, NOW), None);
    }

    #[test]
    fn keys_made_before_a_stricter_policy_are_flagged() {
        let thirty = policy(Some(30), None);
        assert!(thirty.exceeded_by(NOW, None), "never expires");
        assert!(thirty.exceeded_by(NOW, Some(Timestamp(NOW.0 + 31 * DAY_MS))));
        assert!(!thirty.exceeded_by(NOW, Some(Timestamp(NOW.0 + 30 * DAY_MS))));
        assert!(!policy(None, None).exceeded_by(NOW, None));
    }
}
