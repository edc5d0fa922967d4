//! Members of an organization, their roles, and invitations.
//!
//! Rules: an invitation goes to an address inside the allowed email domains
//! (if any are set), lasts 7 days, is single-use, and only the person owning
//! the invited address can accept it. The last Admin can be neither removed
//! nor demoted. A removed member's sessions end at once.

use std::collections::BTreeSet;

use sqlx::{AnyConnection, FromRow};

use super::{
    accounts,
    actor::{Actor, Client},
    audit::{self, AuditEvent},
    authz::{self, OrgAuthority},
    db::{self, bind_all, Conditions, Db, Param},
    domains, lifecycle, mail, paging, recovery, secret_key,
    session_store::DbSessionStore,
    throttle::Throttle,
    workspaces,
};
use crate::{
    error::{AppError, AppResult},
    ids::{OrgId, UserId, WorkspaceId},
    model::{
        AccessEnded, CurrentUser, Invitation, InvitationPreview, Member, OrgRole, Page, Slice, WorkspaceRole,
    },
    time::Timestamp,
    validate,
};

pub const INVITATION_TTL_MS: i64 = 7 * 24 * 3600 * 1000;
const TOKEN_PREFIX: &str = "inv";

/// `admin,billing` ⇄ roles, as the `invitations.roles` column keeps them.
fn roles_to_text(roles: &BTreeSet<OrgRole>) -> String {
    roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
}

fn workspaces_from_text(text: &str) -> Vec<WorkspaceId> {
    text.split(',').filter_map(|id| id.parse().ok()).collect()
}

fn roles_from_text(text: &str) -> Vec<OrgRole> {
    text.split(',').filter_map(OrgRole::parse).collect()
}

fn require_roles(roles: &[OrgRole]) -> AppResult<BTreeSet<OrgRole>> {
    let set: BTreeSet<OrgRole> = roles.iter().copied().collect();
    if set.is_empty() {
        return Err(AppError::invalid("roles", "Choose at least one role."));
    }
    Ok(set)
}

/// The member of the Organization with this email (in any case), for a form
/// that names people by email. Callers check first that the actor may know.
pub(super) async fn member_by_email(
    conn: &mut AnyConnection,
    org_id: OrgId,
    email: &str,
) -> AppResult<UserId> {
    let found: Option<(UserId,)> = sqlx::query_as(
        "SELECT m.user_id FROM org_members m JOIN users u ON u.id = m.user_id
         WHERE m.org_id = $1 AND u.email_normalized = $2",
    )
    .bind(org_id)
    .bind(email.trim().to_lowercase())
    .fetch_optional(conn)
    .await?;
    let (user,) = found.ok_or_else(|| {
        AppError::invalid("email", "No member of this Organization has this email: invite them first.")
    })?;
    Ok(user)
}

/// Which members a list shows: every one unless narrowed.
#[derive(Clone, Debug, Default)]
pub struct MemberFilter {
    /// Name or email containing this text, in any case.
    pub search: Option<String>,
    /// Exactly this email, in any case.
    pub email: Option<String>,
    /// Holding this role (their own, not through a group).
    pub role: Option<OrgRole>,
}

impl MemberFilter {
    /// The `WHERE` clause over `org_members m JOIN users u` keeping the
    /// Organization's members this filter keeps, and whether anything beyond
    /// the Organization narrows it.
    fn to_sql(&self, org_id: OrgId) -> (Conditions, bool) {
        let mut sql = Conditions::default();
        let org = sql.param(Param::Text(org_id.to_string()));
        sql.and(format!("m.org_id = {org}"));
        sql.contains(&["lower(u.name)", "u.email_normalized"], self.search.as_deref().unwrap_or_default());
        if let Some(email) = self.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
            let email = sql.param(Param::Text(email.to_lowercase()));
            sql.and(format!("u.email_normalized = {email}"));
        }
        if let Some(role) = self.role {
            let role = sql.param(Param::Text(role.as_str().to_string()));
            sql.and(format!(
                "EXISTS (SELECT 1 FROM org_member_roles r
                         WHERE r.org_id = m.org_id AND r.user_id = m.user_id AND r.role = {role})"
            ));
        }
        let narrowed = sql.params.len() > 1;
        (sql, narrowed)
    }
}

/// One page of the Organization's members by name, read from the database
/// page by page: an Organization of thousands sends what one page shows.
#[tracing::instrument(name = "members::members_page", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn members_page(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    filter: &MemberFilter,
    page: Option<i64>,
    page_size: Option<i64>,
) -> AppResult<Page<Member>> {
    let (page, page_size) = paging::page_bounds(page, page_size)?;
    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    let (mut kept, narrowed) = filter.to_sql(org_id);
    let count = if narrowed {
        format!("SELECT COUNT(*) FROM org_members m JOIN users u ON u.id = m.user_id WHERE {}", kept.text)
    } else {
        // Counted from the membership index alone, without reading each person.
        format!("SELECT COUNT(*) FROM org_members m WHERE {}", kept.text)
    };
    let (total,): (i64,) =
        bind_all(sqlx::query_as(&count), kept.params.clone()).fetch_one(&mut *conn).await?;
    let limit = kept.param(Param::Int(page_size));
    let offset = kept.param(Param::Int((page - 1) * page_size));
    let sql = format!(
        "SELECT u.id, u.name, u.email, u.last_login_at FROM org_members m JOIN users u ON u.id = m.user_id
         WHERE {} ORDER BY m.name_key, m.user_id LIMIT {limit} OFFSET {offset}",
        kept.text
    );
    let rows: Vec<(UserId, String, String, Option<Timestamp>)> =
        bind_all(sqlx::query_as(&sql), kept.params).fetch_all(&mut *conn).await?;
    let items = with_roles(&mut conn, org_id, rows).await?;
    Ok(Page { items, page, page_size, total })
}

/// One member of the Organization; `NotFound` for anyone else.
#[tracing::instrument(name = "members::member", skip_all, fields(actor = actor.kind(), org_id = %org_id, user = %user), err(level = "debug"))]
pub async fn member(db: &Db, actor: &Actor, org_id: OrgId, user: UserId) -> AppResult<Member> {
    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    let row: Option<(UserId, String, String, Option<Timestamp>)> = sqlx::query_as(
        "SELECT u.id, u.name, u.email, u.last_login_at FROM org_members m JOIN users u ON u.id = m.user_id
         WHERE m.org_id = $1 AND m.user_id = $2",
    )
    .bind(org_id)
    .bind(user)
    .fetch_optional(&mut *conn)
    .await?;
    let row = row.ok_or(AppError::NotFound)?;
    with_roles(&mut conn, org_id, vec![row]).await?.pop().ok_or(AppError::NotFound)
}

/// `rows` of members (id, name, email, last log-in) with their own roles, in order.
async fn with_roles(
    conn: &mut AnyConnection,
    org_id: OrgId,
    rows: Vec<(UserId, String, String, Option<Timestamp>)>,
) -> AppResult<Vec<Member>> {
    let mut roles: std::collections::HashMap<UserId, Vec<OrgRole>> = Default::default();
    if !rows.is_empty() {
        let sql = format!(
            "SELECT user_id, role FROM org_member_roles WHERE org_id = $1 AND user_id IN ({})",
            db::placeholders(2, rows.len())
        );
        let mut query = sqlx::query_as(&sql).bind(org_id);
        for (id, ..) in &rows {
            query = query.bind(*id);
        }
        let held: Vec<(UserId, String)> = query.fetch_all(&mut *conn).await?;
        for (user, role) in held {
            roles.entry(user).or_default().extend(OrgRole::parse(&role));
        }
    }
    Ok(rows
        .into_iter()
        .map(|(user_id, name, email, last_login_at)| {
            let mut theirs = roles.remove(&user_id).unwrap_or_default();
            theirs.sort();
            Member { user_id, name, email, roles: theirs, last_login_at }
        })
        .collect())
}

/// Invitations on one page of the Members page.
pub const INVITATIONS_PAGE_SIZE: i64 = 50;

/// The Organization's invitations not yet accepted nor revoked (expired ones
/// too), oldest first: `size` (1 to 100) of them past the invitation `after`,
/// only those of `email` (any case) if given.
#[tracing::instrument(name = "members::invitations", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn invitations(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    email: Option<&str>,
    after: Option<uuid::Uuid>,
    size: i64,
) -> AppResult<Slice<Invitation>> {
    if !(1..=super::paging::MAX_PAGE_SIZE).contains(&size) {
        return Err(AppError::invalid("limit", "limit must be between 1 and 100."));
    }
    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    let mut sql = Conditions::default();
    let org = sql.param(Param::Text(org_id.to_string()));
    sql.and(format!("org_id = {org} AND accepted_at IS NULL AND revoked_at IS NULL"));
    if let Some(email) = email {
        let email = sql.param(Param::Text(email.trim().to_lowercase()));
        sql.and(format!("LOWER(email) = {email}"));
    }
    if let Some(after) = after {
        let at = db::created_at_of(&mut conn, "invitations", org_id, Param::Text(after.to_string()))
            .await?
            .ok_or_else(|| {
            AppError::invalid("after", "after is not an invitation of this Organization.")
        })?;
        sql.past(("created_at", "id"), false, (Param::Int(at.0), Param::Text(after.to_string())));
    }
    let limit = sql.param(Param::Int(size + 1));
    let query = format!(
        "SELECT id, email, roles, workspace_ids, invited_by_label, created_at, expires_at FROM invitations
         WHERE {} ORDER BY created_at, id LIMIT {limit}",
        sql.text
    );
    let rows: Vec<(String, String, String, String, String, Timestamp, Timestamp)> =
        bind_all(sqlx::query_as(&query), sql.params).fetch_all(&mut *conn).await?;
    let now = Timestamp::now();
    let invitations = rows
        .into_iter()
        .filter_map(|(id, email, roles, workspaces, invited_by, created_at, expires_at)| {
            Some(Invitation {
                id: id.parse().ok()?,
                email,
                roles: roles_from_text(&roles),
                workspaces: workspaces_from_text(&workspaces),
                invited_by,
                created_at,
                expires_at,
                expired: expires_at <= now,
            })
        })
        .collect();
    Ok(Slice::of(invitations, size, |invitation| invitation.id.to_string()))
}

/// Who is invited, with which roles, into which workspaces besides the Default one.
#[derive(Clone, Copy, Debug)]
pub struct Invitee<'a> {
    pub email: &'a str,
    pub roles: &'a [OrgRole],
    pub workspaces: &'a [WorkspaceId],
}

/// Invites someone and emails them a link to `/invite/{token}`.
#[tracing::instrument(name = "members::invite", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn invite(
    db: &Db,
    throttle: &Throttle,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    public_url: &str,
    invitee: Invitee<'_>,
) -> AppResult<Invitation> {
    let email = validate::email(invitee.email)?;
    let roles = require_roles(invitee.roles)?;
    let workspaces: BTreeSet<WorkspaceId> = invitee.workspaces.iter().copied().collect();
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    for workspace in &workspaces {
        workspaces::require_active(&mut tx, org_id, *workspace).await?;
    }
    check_allowed_domain(&mut tx, org_id, &email.normalized).await?;
    if let Err(wait) = throttle.invitation(&org_id.to_string(), std::time::Instant::now()) {
        return Err(AppError::TooManyRequests {
            message: "This Organization sent too many invitations in the last hour. Try again later.".into(),
            retry_after_secs: wait.as_secs().max(1),
        });
    }
    let (members,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM org_members m JOIN users u ON u.id = m.user_id
         WHERE m.org_id = $1 AND u.email_normalized = $2",
    )
    .bind(org_id)
    .bind(&email.normalized)
    .fetch_one(&mut *tx)
    .await?;
    if members > 0 {
        return Err(AppError::conflict("email", "This person is already a member."));
    }
    let now = Timestamp::now();
    let (pending,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM invitations WHERE org_id = $1 AND email_normalized = $2
           AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $3",
    )
    .bind(org_id)
    .bind(&email.normalized)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    if pending > 0 {
        return Err(AppError::conflict(
            "email",
            "This person is already invited. Resend the invitation instead.",
        ));
    }
    let id = uuid::Uuid::new_v4();
    let token = secret_key::generate(TOKEN_PREFIX);
    let expires_at = Timestamp(now.0 + INVITATION_TTL_MS);
    sqlx::query(
        "INSERT INTO invitations (id, org_id, email, email_normalized, roles, workspace_ids, token_sha256,
                                  invited_by_label, invited_by_type, invited_by_id, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(id.to_string())
    .bind(org_id)
    .bind(&email.display)
    .bind(&email.normalized)
    .bind(roles_to_text(&roles))
    .bind(workspaces.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(","))
    .bind(&token.secret_sha256)
    .bind(actor.label())
    .bind(actor.kind())
    .bind(actor.id())
    .bind(now)
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    send_invitation_email(&mut tx, org_id, &email.display, public_url, &token.full).await?;
    let event = AuditEvent::new("organization.invite.send", "invitation", id).in_org(org_id).with_details(
        serde_json::json!({
            "email": email.display,
            "roles": roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            "workspaces": workspaces,
        }),
    );
    audit::record(&mut tx, &admin, client, event).await?;
    tx.commit().await?;
    Ok(Invitation {
        id,
        email: email.display,
        roles: roles.into_iter().collect(),
        workspaces: workspaces.into_iter().collect(),
        invited_by: actor.label(),
        created_at: now,
        expires_at,
        expired: false,
    })
}

async fn send_invitation_email(
    conn: &mut AnyConnection,
    org_id: OrgId,
    to: &str,
    public_url: &str,
    token: &str,
) -> AppResult<()> {
    let (org_name,): (String,) = sqlx::query_as("SELECT name FROM organizations WHERE id = $1")
        .bind(org_id)
        .fetch_one(&mut *conn)
        .await?;
    let body = format!(
        "You are invited to join {org_name} on Chancery.\n\nAccept within 7 days: {public_url}/invite/{token}\n\n\
         If you did not expect this invitation, ignore this email."
    );
    mail::queue(conn, to, &format!("Join {org_name} on Chancery"), &body).await?;
    Ok(())
}

async fn check_allowed_domain(
    conn: &mut AnyConnection,
    org_id: OrgId,
    email_normalized: &str,
) -> AppResult<()> {
    let domains: Vec<(String,)> =
        sqlx::query_as("SELECT domain FROM org_allowed_domains WHERE org_id = $1 ORDER BY domain")
            .bind(org_id)
            .fetch_all(conn)
            .await?;
    let domain = email_normalized.rsplit('@').next().unwrap_or_default();
    if domains.is_empty() || domains.iter().any(|(d,)| d == domain) {
        return Ok(());
    }
    let allowed = domains.into_iter().map(|(d,)| d).collect::<Vec<_>>().join(", ");
    Err(AppError::invalid("email", format!("Invitations are limited to these email domains: {allowed}.")))
}

/// Someone an Admin provisions directly, without an invitation.
#[derive(Clone, Debug)]
pub struct NewMember {
    pub email: String,
    /// Empty: the part of the address before `@`.
    pub name: String,
    pub roles: Vec<OrgRole>,
}

/// At most this many people in one provisioning call.
pub const MAX_PROVISIONED: usize = 100;

/// Who [`provision`] made (or found) a member, `(email, id)`, and who it
/// refused, `(email, reason)`.
pub type Provisioned = (Vec<(String, UserId)>, Vec<(String, String)>);

/// Makes each person a member at once, with their roles, as an identity
/// provider would: only addresses in a domain this Organization verified (it
/// owns those mailboxes); an account is made without a password where none
/// exists (its owner sets one through "Forgot password"), and an existing,
/// never-proven one is taken back for its owner. Already a member: listed with
/// their id, unchanged. Each person is written on their own; those refused come
/// back with the reason.
#[tracing::instrument(name = "members::provision", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn provision(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    people: &[NewMember],
) -> AppResult<Provisioned> {
    if people.len() > MAX_PROVISIONED {
        return Err(AppError::invalid("body", format!("At most {MAX_PROVISIONED} people at a time.")));
    }
    let (mut provisioned, mut refused) = (Vec::new(), Vec::new());
    for person in people {
        match provision_one(db, actor, client, org_id, person).await {
            Ok(id) => provisioned.push((person.email.trim().to_string(), id)),
            Err(AppError::Invalid { message, .. } | AppError::Conflict { message, .. }) => {
                refused.push((person.email.clone(), message))
            }
            Err(other) => return Err(other),
        }
    }
    Ok((provisioned, refused))
}

async fn provision_one(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    person: &NewMember,
) -> AppResult<UserId> {
    let email = validate::email(&person.email)?;
    let roles = require_roles(&person.roles)?;
    let roles: Vec<OrgRole> = roles.into_iter().collect();
    let name = match person.name.trim() {
        "" => email.display.split('@').next().unwrap_or_default(),
        given => given,
    };
    let name = validate::person_name(name)?;
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    check_allowed_domain(&mut tx, org_id, &email.normalized).await?;
    if !domains::verified_for(&mut tx, org_id, &email).await? {
        return Err(AppError::invalid(
            "email",
            "Only addresses in a domain this Organization verified are provisioned directly: invite this person \
             instead (POST /users-invite).",
        ));
    }
    let existing: Option<(UserId,)> = sqlx::query_as("SELECT id FROM users WHERE email_normalized = $1")
        .bind(&email.normalized)
        .fetch_optional(&mut *tx)
        .await?;
    let user_id = match existing {
        Some((id,)) => {
            recovery::reclaim_for_owner(&mut tx, &admin, client, id, "admin_api").await?;
            id
        }
        None => {
            let user = accounts::create_without_password(&mut tx, client, name, &email, "admin_api").await?;
            recovery::mark_verified(&mut tx, &admin, client, user.id, "admin_api").await?;
            user.id
        }
    };
    if join(&mut tx, org_id, user_id, &roles).await? {
        let event = AuditEvent::new("user.organization.join", "user", user_id).in_org(org_id).with_details(
            serde_json::json!({ "roles": roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(), "via": "admin_api" }),
        );
        audit::record(&mut tx, &admin, client, event).await?;
    }
    tx.commit().await?;
    Ok(user_id)
}

/// A fresh link (the old one stops working) and seven more days.
#[tracing::instrument(name = "members::resend", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn resend(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    public_url: &str,
    invitation: uuid::Uuid,
) -> AppResult<()> {
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT email FROM invitations WHERE id = $1 AND org_id = $2 AND accepted_at IS NULL AND revoked_at IS NULL",
    )
    .bind(invitation.to_string())
    .bind(org_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((email,)) = row else {
        return Err(AppError::NotFound);
    };
    let token = secret_key::generate(TOKEN_PREFIX);
    sqlx::query("UPDATE invitations SET token_sha256 = $1, expires_at = $2 WHERE id = $3")
        .bind(&token.secret_sha256)
        .bind(Timestamp(Timestamp::now().0 + INVITATION_TTL_MS))
        .bind(invitation.to_string())
        .execute(&mut *tx)
        .await?;
    send_invitation_email(&mut tx, org_id, &email, public_url, &token.full).await?;
    audit::record(
        &mut tx,
        &admin,
        client,
        AuditEvent::new("organization.invite.resend", "invitation", invitation).in_org(org_id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[tracing::instrument(name = "members::revoke", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn revoke(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    invitation: uuid::Uuid,
) -> AppResult<()> {
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    let done = sqlx::query(
        "UPDATE invitations SET revoked_at = $1 WHERE id = $2 AND org_id = $3 AND accepted_at IS NULL AND revoked_at IS NULL",
    )
    .bind(Timestamp::now())
    .bind(invitation.to_string())
    .bind(org_id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(AppError::NotFound);
    }
    audit::record(
        &mut tx,
        &admin,
        client,
        AuditEvent::new("organization.invite.revoked", "invitation", invitation).in_org(org_id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[derive(FromRow)]
struct InvitationRow {
    id: String,
    org_id: OrgId,
    org_name: String,
    email: String,
    email_normalized: String,
    roles: String,
    workspace_ids: String,
    expires_at: Timestamp,
    accepted_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
}

/// The invitation behind a link, if it can still be accepted.
async fn usable_invitation(conn: &mut AnyConnection, token: &str) -> AppResult<InvitationRow> {
    let unusable = || AppError::invalid("token", "This invitation link is invalid or has been replaced.");
    let (_, secret) = secret_key::parse(TOKEN_PREFIX, token).ok_or_else(unusable)?;
    let row: Option<InvitationRow> = sqlx::query_as(
        "SELECT i.id, i.org_id, o.name AS org_name, i.email, i.email_normalized, i.roles, i.workspace_ids,
                i.expires_at,
                i.accepted_at, i.revoked_at
         FROM invitations i JOIN organizations o ON o.id = i.org_id WHERE i.token_sha256 = $1",
    )
    .bind(secret_key::sha256_hex(secret))
    .fetch_optional(conn)
    .await?;
    let row = row.ok_or_else(unusable)?;
    if row.accepted_at.is_some() {
        return Err(AppError::invalid("token", "This invitation has already been accepted."));
    }
    if row.revoked_at.is_some() {
        return Err(AppError::invalid("token", "This invitation has been revoked."));
    }
    if row.expires_at <= Timestamp::now() {
        return Err(AppError::invalid("token", "This invitation has expired. Ask for a new one."));
    }
    Ok(row)
}

#[tracing::instrument(name = "members::preview", skip_all, err(level = "debug"))]
pub async fn preview(
    db: &Db,
    token: &str,
    signed_in_as: Option<CurrentUser>,
) -> AppResult<InvitationPreview> {
    let mut conn = db.pool().acquire().await?;
    let row = usable_invitation(&mut conn, token).await?;
    let (accounts,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE email_normalized = $1")
        .bind(&row.email_normalized)
        .fetch_one(&mut *conn)
        .await?;
    Ok(InvitationPreview {
        org_name: row.org_name,
        email: row.email,
        roles: roles_from_text(&row.roles),
        account_exists: accounts > 0,
        signed_in_as,
    })
}

/// `user` accepts the invitation behind `token`: they join with its roles and
/// become a member of the Default workspace.
#[tracing::instrument(name = "members::accept", skip_all, err(level = "debug"))]
pub async fn accept(db: &Db, client: &Client, token: &str, user: &CurrentUser) -> AppResult<OrgId> {
    let mut tx = db.begin().await?;
    let row = usable_invitation(&mut tx, token).await?;
    if validate::email(&user.email)?.normalized != row.email_normalized {
        return Err(AppError::invalid(
            "token",
            format!("This invitation is for {}. Log in with that address to accept it.", row.email),
        ));
    }
    if !join(&mut tx, row.org_id, user.id, &roles_from_text(&row.roles)).await? {
        return Err(AppError::conflict("token", "You are already a member of this organization."));
    }
    let now = Timestamp::now();
    sqlx::query("UPDATE invitations SET accepted_at = $1, accepted_by = $2 WHERE id = $3")
        .bind(now)
        .bind(user.id)
        .bind(&row.id)
        .execute(&mut *tx)
        .await?;
    let invitee = authz::own_account(user.id, &user.email);
    let event = AuditEvent::new("organization.invite.accepted", "invitation", &row.id).in_org(row.org_id);
    audit::record(&mut tx, &invitee, client, event).await?;
    for workspace in workspaces_from_text(&row.workspace_ids) {
        // One archived since the invitation was sent is passed over.
        if workspaces::require_active(&mut tx, row.org_id, workspace).await.is_ok() {
            workspaces::upsert_member(&mut tx, workspace, user.id, WorkspaceRole::Member).await?;
            let event =
                AuditEvent::new("workspace.member.add", "user", user.id).in_org(row.org_id).with_details(
                    serde_json::json!({ "workspace_id": workspace, "after": "member", "via": "invitation" }),
                );
            audit::record(&mut tx, &invitee, client, event).await?;
        }
    }
    // The invitation came to that address: whoever opened it there owns it.
    recovery::mark_verified(&mut tx, &invitee, client, user.id, "invitation").await?;
    tx.commit().await?;
    Ok(row.org_id)
}

/// `user` joins the Organization with `roles` and becomes a member of its
/// Default workspace; `false` (and nothing written) if they already belong.
pub(super) async fn join(
    conn: &mut AnyConnection,
    org_id: OrgId,
    user_id: UserId,
    roles: &[OrgRole],
) -> AppResult<bool> {
    let now = Timestamp::now();
    let joined = sqlx::query(
        "INSERT INTO org_members (org_id, user_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if joined.rows_affected() == 0 {
        return Ok(false);
    }
    for role in roles {
        sqlx::query("INSERT INTO org_member_roles (org_id, user_id, role) VALUES ($1, $2, $3)")
            .bind(org_id)
            .bind(user_id)
            .bind(role.as_str())
            .execute(&mut *conn)
            .await?;
    }
    let default_workspace = workspaces::default_of(conn, org_id).await?;
    sqlx::query(
        "INSERT INTO workspace_members (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
    )
    .bind(default_workspace)
    .bind(user_id)
    .bind(WorkspaceRole::Member.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// A newcomer creates their account from the invitation (its email, their name
/// and password) and accepts it.
#[tracing::instrument(name = "members::sign_up_and_accept", skip_all, err(level = "debug"))]
pub async fn sign_up_and_accept(
    db: &Db,
    client: &Client,
    token: &str,
    name: String,
    password: String,
) -> AppResult<(CurrentUser, OrgId)> {
    let invited = preview(db, token, None).await?;
    if invited.account_exists {
        return Err(AppError::conflict("email", "An account with this email exists. Log in to accept."));
    }
    let user =
        accounts::sign_up(db, client, accounts::SignUp { name, email: invited.email, password }).await?;
    let org = accept(db, client, token, &user).await?;
    Ok((user, org))
}

/// Replaces a member's roles. The last Admin keeps the Admin role. Losing the
/// Admin role ends what depended on it (see `lifecycle`).
#[tracing::instrument(name = "members::set_roles", skip_all, fields(actor = actor.kind(), org_id = %org_id, user_id = %user_id), err(level = "debug"))]
pub async fn set_roles(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    user_id: UserId,
    roles: &[OrgRole],
) -> AppResult<(Vec<OrgRole>, AccessEnded)> {
    let roles = require_roles(roles)?;
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    let before = member_roles(&mut tx, org_id, user_id).await?;
    // Saving what is already there changes nothing, and is not logged.
    if before == roles {
        return Ok((roles.into_iter().collect(), AccessEnded::default()));
    }
    if before.contains(&OrgRole::Admin) && !roles.contains(&OrgRole::Admin) {
        refuse_if_last_admin(&mut tx, org_id, "demoted").await?;
    }
    sqlx::query("DELETE FROM org_member_roles WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    for role in &roles {
        sqlx::query("INSERT INTO org_member_roles (org_id, user_id, role) VALUES ($1, $2, $3)")
            .bind(org_id)
            .bind(user_id)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?;
    }
    let names = |roles: &BTreeSet<OrgRole>| roles.iter().map(|r| r.as_str()).collect::<Vec<_>>();
    let event = AuditEvent::new("user.organization.role.update", "user", user_id)
        .in_org(org_id)
        .with_details(serde_json::json!({ "before": names(&before), "after": names(&roles) }));
    audit::record(&mut tx, &admin, client, event).await?;
    let ended = lifecycle::end_lost_access(&mut tx, &admin, client, user_id).await?;
    tx.commit().await?;
    Ok((roles.into_iter().collect(), ended))
}

/// Removes a member from the organization, its workspaces and groups, and ends
/// their sessions and what they may no longer use (see `lifecycle`).
#[tracing::instrument(name = "members::remove", skip_all, fields(actor = actor.kind(), org_id = %org_id, user_id = %user_id), err(level = "debug"))]
pub async fn remove(
    db: &Db,
    sessions: &DbSessionStore,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    user_id: UserId,
) -> AppResult<AccessEnded> {
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    let ended = leave(&mut tx, &admin, client, user_id, "removed").await?;
    tx.commit().await?;
    sessions.delete_for_user(user_id).await?;
    Ok(ended)
}

/// Takes a member out of `by`'s Organization, its workspaces and groups, audited
/// as `user.organization.delete`, and ends what they may no longer use. The
/// last Admin stays (`what` says how they would have gone). The caller ends
/// their sessions once the change commits.
pub(super) async fn leave(
    conn: &mut AnyConnection,
    by: &impl OrgAuthority,
    client: &Client,
    user_id: UserId,
    what: &str,
) -> AppResult<AccessEnded> {
    let org_id = by.org_id();
    let before = member_roles(conn, org_id, user_id).await?;
    if before.contains(&OrgRole::Admin) {
        refuse_if_last_admin(conn, org_id, what).await?;
    }
    sqlx::query(
        "DELETE FROM workspace_members WHERE user_id = $1
           AND workspace_id IN (SELECT id FROM workspaces WHERE org_id = $2)",
    )
    .bind(user_id)
    .bind(org_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM user_group_members WHERE user_id = $1
           AND group_id IN (SELECT id FROM user_groups WHERE org_id = $2)",
    )
    .bind(user_id)
    .bind(org_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM org_member_roles WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM org_members WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    let names: Vec<&str> = before.iter().map(|r| r.as_str()).collect();
    let event = AuditEvent::new("user.organization.delete", "user", user_id)
        .in_org(org_id)
        .with_details(serde_json::json!({ "roles": names }));
    audit::record(&mut *conn, by, client, event).await?;
    lifecycle::end_lost_access(conn, by, client, user_id).await
}

/// A member's roles; `NotFound` for someone who is not a member.
async fn member_roles(
    conn: &mut AnyConnection,
    org_id: OrgId,
    user_id: UserId,
) -> AppResult<BTreeSet<OrgRole>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT role FROM org_member_roles WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(user_id)
            .fetch_all(conn)
            .await?;
    if rows.is_empty() {
        return Err(AppError::NotFound);
    }
    Ok(rows.iter().filter_map(|(r,)| OrgRole::parse(r)).collect())
}

/// Refuses to take the Admin role from the Organization's last Admin. Sound
/// under concurrency because the caller's guard holds the Organization's lock.
async fn refuse_if_last_admin(conn: &mut AnyConnection, org_id: OrgId, what: &str) -> AppResult<()> {
    let (admins,): (i64,) = sqlx::query_as(
        "SELECT COUNT(DISTINCT user_id) FROM effective_org_roles WHERE org_id = $1 AND role = $2",
    )
    .bind(org_id)
    .bind(OrgRole::Admin.as_str())
    .fetch_one(conn)
    .await?;
    if admins <= 1 {
        return Err(AppError::conflict(
            "roles",
            format!("The last Admin cannot be {what}. Make someone else an Admin first."),
        ));
    }
    Ok(())
}

#[tracing::instrument(name = "members::allowed_domains", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn allowed_domains(db: &Db, actor: &Actor, org_id: OrgId) -> AppResult<Vec<String>> {
    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT domain FROM org_allowed_domains WHERE org_id = $1 ORDER BY domain")
            .bind(org_id)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.into_iter().map(|(d,)| d).collect())
}

/// Replaces the allowed email domains; an empty list allows any domain.
#[tracing::instrument(name = "members::set_allowed_domains", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn set_allowed_domains(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    domains: &[String],
) -> AppResult<Vec<String>> {
    let mut clean = BTreeSet::new();
    for domain in
        domains.iter().map(|d| d.trim().trim_start_matches('@').to_lowercase()).filter(|d| !d.is_empty())
    {
        validate::email(&format!("x@{domain}"))
            .map_err(|_| AppError::invalid("domains", format!("{domain} is not a valid domain.")))?;
        clean.insert(domain);
    }
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    let before: Vec<(String,)> =
        sqlx::query_as("SELECT domain FROM org_allowed_domains WHERE org_id = $1 ORDER BY domain")
            .bind(org_id)
            .fetch_all(&mut *tx)
            .await?;
    let before: Vec<String> = before.into_iter().map(|(d,)| d).collect();
    // Saving what is already there changes nothing, and is not logged.
    if before.iter().eq(clean.iter()) {
        return Ok(before);
    }
    sqlx::query("DELETE FROM org_allowed_domains WHERE org_id = $1").bind(org_id).execute(&mut *tx).await?;
    for domain in &clean {
        sqlx::query("INSERT INTO org_allowed_domains (org_id, domain) VALUES ($1, $2)")
            .bind(org_id)
            .bind(domain)
            .execute(&mut *tx)
            .await?;
    }
    let event = AuditEvent::new("organization.allowed_domains.update", "organization", org_id)
        .in_org(org_id)
        .with_details(serde_json::json!({ "before": before, "after": clean }));
    audit::record(&mut tx, &admin, client, event).await?;
    tx.commit().await?;
    Ok(clean.into_iter().collect())
}
