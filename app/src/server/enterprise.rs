//! Enterprise Accounts: created by the platform operator, then managed in the
//! Backoffice by their members, who must be admins of a linked Organization.
//!
//! Every member of an Enterprise Account is one of its admins. Being one gives
//! no access to a linked Organization's Admin Panel: "Promote to admin" does.

use sqlx::{AnyConnection, FromRow};

use super::{
    actor::{Actor, Client},
    audit::{self, AuditEvent},
    authz::{self, Authority},
    db::Db,
    mail, orgs,
};
use crate::{
    error::{AppError, AppResult},
    ids::{EnterpriseId, OrgId, UserId, WorkspaceId},
    model::{EnterpriseMember, EnterpriseOrg, EnterpriseSummary, OrgRole, OrgSummary},
    time::Timestamp,
    validate,
};

pub const NOT_AN_ORG_ADMIN: &str =
    "Only an admin of an Organization linked to this Enterprise Account can be added.";

/// The operator creates an Enterprise Account for a company: it links `orgs`
/// and makes `admin_email` (an admin of one of them) its first member.
#[tracing::instrument(name = "enterprise::create", skip_all, fields(actor = actor.kind()), err(level = "debug"))]
pub async fn create(
    db: &Db,
    actor: &Actor,
    client: &Client,
    name: &str,
    org_ids: &[OrgId],
    admin_email: &str,
) -> AppResult<EnterpriseSummary> {
    let operator = authz::operator(actor)?;
    let name = validate::label("name", "Enterprise Account name", name)?;
    if org_ids.is_empty() {
        return Err(AppError::invalid("org", "Link at least one Organization."));
    }
    let email = validate::email(admin_email)?;

    let mut tx = db.begin().await?;
    let enterprise = EnterpriseSummary { id: EnterpriseId::new(), name };
    sqlx::query("INSERT INTO enterprise_accounts (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(enterprise.id)
        .bind(&enterprise.name)
        .bind(Timestamp::now())
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        &operator,
        client,
        AuditEvent::new("enterprise_account.create", "enterprise_account", enterprise.id)
            .with_details(serde_json::json!({ "name": enterprise.name })),
    )
    .await?;
    for org_id in org_ids {
        link(&mut tx, &operator, client, enterprise.id, *org_id).await?;
    }
    let admin: Option<(UserId,)> = sqlx::query_as("SELECT id FROM users WHERE email_normalized = $1")
        .bind(&email.normalized)
        .fetch_optional(&mut *tx)
        .await?;
    let Some((admin,)) = admin else {
        return Err(AppError::invalid("admin", format!("No account uses the email {}.", email.display)));
    };
    if !authz::is_admin_of_linked_org(&mut tx, enterprise.id, admin).await? {
        return Err(AppError::invalid(
            "admin",
            format!("{} is not an admin of a linked Organization.", email.display),
        ));
    }
    insert_member(&mut tx, &operator, client, enterprise.id, admin, None, true).await?;
    tx.commit().await?;
    Ok(enterprise)
}

/// The operator links one more Organization to an Enterprise Account.
#[tracing::instrument(name = "enterprise::link_org", skip_all, fields(actor = actor.kind(), enterprise = %enterprise, org_id = %org_id), err(level = "debug"))]
pub async fn link_org(
    db: &Db,
    actor: &Actor,
    client: &Client,
    enterprise: EnterpriseId,
    org_id: OrgId,
) -> AppResult<()> {
    let operator = authz::operator(actor)?;
    let mut tx = db.begin().await?;
    let exists: Option<(String,)> = sqlx::query_as("SELECT id FROM enterprise_accounts WHERE id = $1")
        .bind(enterprise)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Err(AppError::invalid(
            "enterprise",
            format!("No Enterprise Account has the id {enterprise}."),
        ));
    }
    link(&mut tx, &operator, client, enterprise, org_id).await?;
    tx.commit().await?;
    Ok(())
}

async fn link(
    conn: &mut AnyConnection,
    by: &impl Authority,
    client: &Client,
    enterprise: EnterpriseId,
    org_id: OrgId,
) -> AppResult<()> {
    let org: Option<(Option<EnterpriseId>,)> =
        sqlx::query_as("SELECT enterprise_account_id FROM organizations WHERE id = $1")
            .bind(org_id)
            .fetch_optional(&mut *conn)
            .await?;
    match org {
        None => return Err(AppError::invalid("org", format!("No Organization has the id {org_id}."))),
        Some((Some(current),)) if current == enterprise => {
            return Err(AppError::conflict("org", format!("Organization {org_id} is already linked here.")))
        }
        Some((Some(_),)) => {
            return Err(AppError::conflict(
                "org",
                format!("Organization {org_id} is already linked to another Enterprise Account."),
            ))
        }
        Some((None,)) => {}
    }
    sqlx::query("UPDATE organizations SET enterprise_account_id = $1 WHERE id = $2")
        .bind(enterprise)
        .bind(org_id)
        .execute(&mut *conn)
        .await?;
    let event = AuditEvent::new("organization.link", "organization", org_id)
        .in_org(org_id)
        .with_details(serde_json::json!({ "enterprise_account_id": enterprise }));
    audit::record(conn, by, client, event).await?;
    Ok(())
}

/// The Enterprise Account `user` is an active member (admin) of, if any.
#[tracing::instrument(name = "enterprise::of_user", skip_all, fields(user = %user), err(level = "debug"))]
pub async fn of_user(db: &Db, user: UserId) -> AppResult<Option<EnterpriseSummary>> {
    let row: Option<(EnterpriseId, String)> = sqlx::query_as(
        "SELECT e.id, e.name FROM enterprise_members m JOIN enterprise_accounts e ON e.id = m.enterprise_account_id
         WHERE m.user_id = $1 AND m.accepted_at IS NOT NULL ORDER BY m.accepted_at LIMIT 1",
    )
    .bind(user)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(|(id, name)| EnterpriseSummary { id, name }))
}

/// Enterprise Accounts that invited `user` and wait for them to accept.
#[tracing::instrument(name = "enterprise::invitations_of", skip_all, fields(user = %user), err(level = "debug"))]
pub async fn invitations_of(db: &Db, user: UserId) -> AppResult<Vec<EnterpriseSummary>> {
    let rows: Vec<(EnterpriseId, String)> = sqlx::query_as(
        "SELECT e.id, e.name FROM enterprise_members m JOIN enterprise_accounts e ON e.id = m.enterprise_account_id
         WHERE m.user_id = $1 AND m.accepted_at IS NULL ORDER BY m.created_at",
    )
    .bind(user)
    .fetch_all(db.pool())
    .await?;
    Ok(rows.into_iter().map(|(id, name)| EnterpriseSummary { id, name }).collect())
}

/// How many people are active members of the Enterprise Account: never fewer
/// than one, which its removals and its members' demotions check.
pub(super) async fn active_members(conn: &mut AnyConnection, enterprise: EnterpriseId) -> AppResult<i64> {
    let (active,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM enterprise_members WHERE enterprise_account_id = $1 AND accepted_at IS NOT NULL",
    )
    .bind(enterprise)
    .fetch_one(conn)
    .await?;
    Ok(active)
}

async fn insert_member(
    conn: &mut AnyConnection,
    by: &impl Authority,
    client: &Client,
    enterprise: EnterpriseId,
    user: UserId,
    invited_by: Option<UserId>,
    accepted: bool,
) -> AppResult<()> {
    let now = Timestamp::now();
    let inserted = sqlx::query(
        "INSERT INTO enterprise_members (enterprise_account_id, user_id, invited_by, created_at, accepted_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(enterprise)
    .bind(user)
    .bind(invited_by)
    .bind(now)
    .bind(accepted.then_some(now))
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(AppError::conflict("email", "This person is already a member or invited."));
    }
    let event = AuditEvent::new("enterprise_account.member.add", "user", user)
        .with_details(serde_json::json!({ "enterprise_account_id": enterprise, "pending": !accepted }));
    audit::record(conn, by, client, event).await?;
    Ok(())
}

#[tracing::instrument(name = "enterprise::list_members", skip_all, fields(actor = actor.kind(), enterprise = %enterprise), err(level = "debug"))]
pub async fn list_members(
    db: &Db,
    actor: &Actor,
    enterprise: EnterpriseId,
) -> AppResult<Vec<EnterpriseMember>> {
    let mut conn = db.pool().acquire().await?;
    authz::enterprise_member(&mut conn, actor, enterprise).await?;
    #[derive(FromRow)]
    struct Row {
        user_id: UserId,
        name: String,
        email: String,
        last_login_at: Option<Timestamp>,
        accepted_at: Option<Timestamp>,
        org_name: Option<String>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT u.id AS user_id, u.name, u.email, u.last_login_at, m.accepted_at, o.name AS org_name
         FROM enterprise_members m
         JOIN users u ON u.id = m.user_id
         LEFT JOIN org_members om ON om.user_id = u.id
         LEFT JOIN organizations o ON o.id = om.org_id AND o.enterprise_account_id = m.enterprise_account_id
         WHERE m.enterprise_account_id = $1
         ORDER BY m.created_at, u.id, o.name",
    )
    .bind(enterprise)
    .fetch_all(&mut *conn)
    .await?;
    let mut members: Vec<EnterpriseMember> = Vec::new();
    for row in rows {
        if members.last().is_none_or(|m| m.user_id != row.user_id) {
            members.push(EnterpriseMember {
                user_id: row.user_id,
                name: row.name,
                email: row.email,
                organizations: Vec::new(),
                last_login_at: row.last_login_at,
                pending: row.accepted_at.is_none(),
            });
        }
        if let (Some(org), Some(member)) = (row.org_name, members.last_mut()) {
            member.organizations.push(org);
        }
    }
    Ok(members)
}

/// Invites an admin of a linked Organization; they show as "Invite pending" until
/// they accept, and are told by email where to accept.
#[tracing::instrument(name = "enterprise::add_member", skip_all, fields(actor = actor.kind(), enterprise = %enterprise), err(level = "debug"))]
pub async fn add_member(
    db: &Db,
    actor: &Actor,
    client: &Client,
    enterprise: EnterpriseId,
    public_url: &str,
    email: &str,
) -> AppResult<()> {
    let email = validate::email(email)?;
    let mut tx = db.begin().await?;
    let member = authz::enterprise_member(&mut tx, actor, enterprise).await?;
    let inviter = member.user();
    let user: Option<(UserId, String)> =
        sqlx::query_as("SELECT id, email FROM users WHERE email_normalized = $1")
            .bind(&email.normalized)
            .fetch_optional(&mut *tx)
            .await?;
    // The same answer whether the account is unknown or not an admin: no probing for accounts.
    let Some((user, address)) = user else {
        return Err(AppError::invalid("email", NOT_AN_ORG_ADMIN));
    };
    if !authz::is_admin_of_linked_org(&mut tx, enterprise, user).await? {
        return Err(AppError::invalid("email", NOT_AN_ORG_ADMIN));
    }
    insert_member(&mut tx, &member, client, enterprise, user, Some(inviter), false).await?;
    let (name,): (String,) = sqlx::query_as("SELECT name FROM enterprise_accounts WHERE id = $1")
        .bind(enterprise)
        .fetch_one(&mut *tx)
        .await?;
    let body = format!(
        "You were added to the Enterprise Account {name} on Chancery: its Backoffice runs its Organizations \
         and their Admin API keys.\n\nLog in and accept: {}/backoffice\n\n\
         If you did not expect this, ignore this email: nothing changes until you accept.",
        public_url.trim_end_matches('/')
    );
    mail::queue(&mut tx, &address, &format!("You were added to {name} on Chancery"), &body).await?;
    tx.commit().await?;
    Ok(())
}

#[tracing::instrument(name = "enterprise::accept_invitation", skip_all, fields(actor = actor.kind(), enterprise = %enterprise), err(level = "debug"))]
pub async fn accept_invitation(
    db: &Db,
    actor: &Actor,
    client: &Client,
    enterprise: EnterpriseId,
) -> AppResult<()> {
    let user = actor.user_id().ok_or(AppError::Forbidden)?;
    let person = authz::own_account(user, &actor.label());
    let mut tx = db.begin().await?;
    let accepted = sqlx::query(
        "UPDATE enterprise_members SET accepted_at = $1
         WHERE enterprise_account_id = $2 AND user_id = $3 AND accepted_at IS NULL",
    )
    .bind(Timestamp::now())
    .bind(enterprise)
    .bind(user)
    .execute(&mut *tx)
    .await?;
    if accepted.rows_affected() == 0 {
        return Err(AppError::NotFound);
    }
    let event = AuditEvent::new("enterprise_account.member.accept", "user", user)
        .with_details(serde_json::json!({ "enterprise_account_id": enterprise }));
    audit::record(&mut tx, &person, client, event).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes a member or withdraws an invitation. The last active member stays.
#[tracing::instrument(name = "enterprise::remove_member", skip_all, fields(actor = actor.kind(), enterprise = %enterprise, user = %user), err(level = "debug"))]
pub async fn remove_member(
    db: &Db,
    actor: &Actor,
    client: &Client,
    enterprise: EnterpriseId,
    user: UserId,
) -> AppResult<()> {
    let mut tx = db.begin().await?;
    let member = authz::enterprise_member(&mut tx, actor, enterprise).await?;
    let target: Option<(Option<Timestamp>,)> = sqlx::query_as(
        "SELECT accepted_at FROM enterprise_members WHERE enterprise_account_id = $1 AND user_id = $2",
    )
    .bind(enterprise)
    .bind(user)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((accepted_at,)) = target else {
        return Err(AppError::NotFound);
    };
    if accepted_at.is_some() && active_members(&mut tx, enterprise).await? <= 1 {
        return Err(AppError::conflict(
            "user",
            "The last member of an Enterprise Account cannot be removed.",
        ));
    }
    sqlx::query("DELETE FROM enterprise_members WHERE enterprise_account_id = $1 AND user_id = $2")
        .bind(enterprise)
        .bind(user)
        .execute(&mut *tx)
        .await?;
    let event = AuditEvent::new("enterprise_account.member.remove", "user", user)
        .with_details(serde_json::json!({ "enterprise_account_id": enterprise }));
    audit::record(&mut tx, &member, client, event).await?;
    tx.commit().await?;
    Ok(())
}

#[tracing::instrument(name = "enterprise::list_orgs", skip_all, fields(actor = actor.kind(), enterprise = %enterprise), err(level = "debug"))]
pub async fn list_orgs(db: &Db, actor: &Actor, enterprise: EnterpriseId) -> AppResult<Vec<EnterpriseOrg>> {
    let mut conn = db.pool().acquire().await?;
    let viewer = authz::enterprise_member(&mut conn, actor, enterprise).await?.user();
    let rows: Vec<(OrgId, String, i64, i64)> = sqlx::query_as(
        "SELECT o.id, o.name,
                (SELECT COUNT(*) FROM org_members m WHERE m.org_id = o.id),
                (SELECT COUNT(*) FROM effective_org_roles r WHERE r.org_id = o.id AND r.user_id = $2 AND r.role = $3)
         FROM organizations o WHERE o.enterprise_account_id = $1 ORDER BY o.created_at, o.name",
    )
    .bind(enterprise)
    .bind(viewer)
    .bind(OrgRole::Admin.as_str())
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, member_count, admin)| EnterpriseOrg {
            id,
            name,
            member_count,
            viewer_is_admin: admin > 0,
        })
        .collect())
}

/// Creates an Organization linked to the Enterprise Account, with its Default
/// workspace and no members: its creator still has to promote themself.
#[tracing::instrument(name = "enterprise::create_org", skip_all, fields(actor = actor.kind(), enterprise = %enterprise), err(level = "debug"))]
pub async fn create_org(
    db: &Db,
    actor: &Actor,
    client: &Client,
    enterprise: EnterpriseId,
    name: &str,
) -> AppResult<EnterpriseOrg> {
    let name = validate::org_name(name)?;
    let mut tx = db.begin().await?;
    let member = authz::enterprise_member(&mut tx, actor, enterprise).await?;
    let creator = member.user();
    let (org_id, workspace_id) =
        orgs::insert_organization(&mut tx, &name, Some(enterprise), Some(creator)).await?;
    orgs::audit_creation(&mut tx, &member, client, org_id, workspace_id, &name).await?;
    tx.commit().await?;
    Ok(EnterpriseOrg { id: org_id, name, member_count: 0, viewer_is_admin: false })
}

/// "Promote to admin": the acting Enterprise Account admin becomes an Admin of a linked Organization.
#[tracing::instrument(name = "enterprise::promote_to_admin", skip_all, fields(actor = actor.kind(), enterprise = %enterprise, org_id = %org_id), err(level = "debug"))]
pub async fn promote_to_admin(
    db: &Db,
    actor: &Actor,
    client: &Client,
    enterprise: EnterpriseId,
    org_id: OrgId,
) -> AppResult<OrgSummary> {
    let mut tx = db.begin().await?;
    // The Organization's lock first, then the Enterprise Account's (see `authz`).
    authz::lock_org(&mut tx, org_id).await?;
    let member = authz::enterprise_member(&mut tx, actor, enterprise).await?;
    let user = member.user();
    let org: Option<(String, WorkspaceId)> = sqlx::query_as(
        "SELECT name, default_workspace_id FROM organizations WHERE id = $1 AND enterprise_account_id = $2",
    )
    .bind(org_id)
    .bind(enterprise)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((name, default_workspace)) = org else {
        return Err(AppError::NotFound);
    };
    let joined = orgs::join_as_admin(&mut tx, org_id, default_workspace, user).await?;
    let event = AuditEvent::new("user.organization.role.update", "user", user).in_org(org_id).with_details(
        serde_json::json!({ "added_roles": ["admin"], "joined": joined, "via": "enterprise_account" }),
    );
    audit::record(&mut tx, &member, client, event).await?;
    tx.commit().await?;
    let summary = orgs::memberships(db, user).await?.into_iter().find(|o| o.id == org_id);
    Ok(summary.unwrap_or(OrgSummary { id: org_id, name, roles: vec![OrgRole::Admin] }))
}
