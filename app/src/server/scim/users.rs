//! The people an Organization's identity provider knows: its members, and
//! those it deprovisioned and has not deleted. A SCIM User's id is the
//! account's id; `active` is membership of the Organization.

use sqlx::{AnyConnection, FromRow};

use super::{external_id, Listed, Window};
use crate::{
    error::{AppError, AppResult},
    ids::{OrgId, UserId},
    model::OrgRole,
    server::{
        accounts,
        actor::{Actor, Client},
        audit::{self, AuditEvent},
        authz::{self, OrgAuthority, Provisioner},
        db::Db,
        domains, members, recovery,
        session_store::DbSessionStore,
    },
    time::Timestamp,
    validate,
};

/// The role of the people the provider makes members.
const PROVISIONED_ROLE: OrgRole = OrgRole::Member;
const USER_NAME_MAX_CHARS: usize = 256;

/// A person as the provider sees them in one Organization.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct ScimUser {
    pub id: UserId,
    pub user_name: String,
    pub external_id: Option<String>,
    /// What the provider calls them (the account's name for members it never touched).
    pub display_name: Option<String>,
    pub email: String,
    pub active: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What the provider sets on a person: a new one, a replacement, or the
/// current one with a PATCH applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserFields {
    pub user_name: String,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    /// The account's address first (the primary one). Accounts are global and
    /// log in by address: the provider changes it only for accounts that are
    /// its Organization's.
    pub emails: Vec<String>,
    pub active: bool,
}

impl From<&ScimUser> for UserFields {
    fn from(user: &ScimUser) -> Self {
        Self {
            user_name: user.user_name.clone(),
            external_id: user.external_id.clone(),
            display_name: user.display_name.clone(),
            emails: vec![user.email.clone()],
            active: user.active,
        }
    }
}

/// The equality filters identity providers look people up by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserFilter {
    UserName(String),
    ExternalId(String),
    Email(String),
}

#[derive(FromRow)]
struct UserRow {
    id: UserId,
    user_name: String,
    external_id: Option<String>,
    display_name: Option<String>,
    email: String,
    active: i64,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl From<UserRow> for ScimUser {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            user_name: row.user_name,
            external_id: row.external_id,
            display_name: row.display_name,
            email: row.email,
            active: row.active != 0,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// The Organization's (`$1`) people: members, and whoever the provider knows there.
const FROM_PEOPLE: &str = "FROM (SELECT user_id FROM org_members WHERE org_id = $1
                 UNION SELECT user_id FROM scim_users WHERE org_id = $1) p
     JOIN users u ON u.id = p.user_id
     LEFT JOIN org_members m ON m.org_id = $1 AND m.user_id = u.id
     LEFT JOIN scim_users s ON s.org_id = $1 AND s.user_id = u.id";
const COLUMNS: &str = "SELECT u.id, COALESCE(s.user_name, u.email) AS user_name, s.external_id,
        CASE WHEN s.user_id IS NULL THEN u.name ELSE s.display_name END AS display_name, u.email,
        CASE WHEN m.user_id IS NULL THEN 0 ELSE 1 END AS active,
        COALESCE(s.created_at, m.created_at) AS created_at, COALESCE(s.updated_at, m.created_at) AS updated_at";

impl UserFilter {
    /// The condition on `FROM_PEOPLE` and its value (`$2`).
    fn condition(&self) -> (&'static str, String) {
        match self {
            Self::UserName(name) => {
                ("COALESCE(s.user_name_key, u.email_normalized) = $2", name.to_lowercase())
            }
            Self::ExternalId(id) => ("s.external_id = $2", id.clone()),
            Self::Email(email) => ("u.email_normalized = $2", email.trim().to_lowercase()),
        }
    }
}

#[tracing::instrument(name = "scim::users::list", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn list(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    filter: Option<&UserFilter>,
    window: Window,
) -> AppResult<Listed<ScimUser>> {
    let mut conn = db.pool().acquire().await?;
    authz::provisioner(&mut conn, actor, org_id).await?;
    let (condition, value) = filter.map(UserFilter::condition).unwrap_or(("$2 = $2", String::new()));
    let (total,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) {FROM_PEOPLE} WHERE {condition}"))
        .bind(org_id)
        .bind(&value)
        .fetch_one(&mut *conn)
        .await?;
    let rows: Vec<UserRow> = sqlx::query_as(&format!(
        "{COLUMNS} {FROM_PEOPLE} WHERE {condition}
         ORDER BY COALESCE(s.created_at, m.created_at), u.id LIMIT $3 OFFSET $4"
    ))
    .bind(org_id)
    .bind(&value)
    .bind(window.count)
    .bind(window.offset())
    .fetch_all(&mut *conn)
    .await?;
    Ok(Listed { total, resources: rows.into_iter().map(Into::into).collect() })
}

#[tracing::instrument(name = "scim::users::get", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn get(db: &Db, actor: &Actor, org_id: OrgId, id: UserId) -> AppResult<ScimUser> {
    let mut conn = db.pool().acquire().await?;
    authz::provisioner(&mut conn, actor, org_id).await?;
    find(&mut conn, org_id, id).await?.ok_or(AppError::NotFound)
}

async fn find(conn: &mut AnyConnection, org_id: OrgId, id: UserId) -> AppResult<Option<ScimUser>> {
    let row: Option<UserRow> = sqlx::query_as(&format!("{COLUMNS} {FROM_PEOPLE} WHERE u.id = $2"))
        .bind(org_id)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(Into::into))
}

/// Fields as the rules want them: a user name, the display name trimmed.
fn checked(fields: UserFields) -> AppResult<UserFields> {
    let user_name = fields.user_name.trim().to_string();
    if user_name.is_empty() {
        return Err(AppError::invalid("userName", "userName is required."));
    }
    if user_name.chars().count() > USER_NAME_MAX_CHARS || user_name.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "userName",
            format!("userName must be at most {USER_NAME_MAX_CHARS} characters, without control characters."),
        ));
    }
    let display_name = match fields.display_name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => Some(validate::label("displayName", "displayName", name)?),
        None => None,
    };
    Ok(UserFields {
        user_name,
        external_id: external_id(fields.external_id.as_deref())?,
        display_name,
        ..fields
    })
}

/// Provisions a person: their account (made if there is none), and, if
/// active, membership of the Organization as a Member.
#[tracing::instrument(name = "scim::users::create", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn create(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    fields: UserFields,
) -> AppResult<ScimUser> {
    let fields = checked(fields)?;
    let address = fields.emails.first().unwrap_or(&fields.user_name);
    let email = validate::email(address).map_err(|_| {
        AppError::invalid("emails", "Give the person's email address in emails, or as their userName.")
    })?;
    let mut tx = db.begin().await?;
    let by = authz::provisioner(&mut tx, actor, org_id).await?;
    refuse_taken_user_name(&mut tx, org_id, &fields.user_name, None).await?;
    let ours = domains::verified_for(&mut tx, org_id, &email).await?;
    let existing: Option<(UserId,)> = sqlx::query_as("SELECT id FROM users WHERE email_normalized = $1")
        .bind(&email.normalized)
        .fetch_optional(&mut *tx)
        .await?;
    let (user_id, account_created) = match existing {
        Some((id,)) => {
            if find(&mut tx, org_id, id).await?.is_some() {
                return Err(AppError::conflict(
                    "userName",
                    format!("{} is already provisioned here.", email.display),
                ));
            }
            if !ours {
                return Err(AppError::conflict(
                    "emails",
                    format!(
                        "An account with {} exists, outside the domains this Organization verified: verify \
                         the domain, or invite the person from the Admin Panel.",
                        email.display
                    ),
                ));
            }
            // The Organization owns the address: an unproven account made with it is taken back.
            recovery::reclaim_for_owner(&mut tx, &by, client, id, "scim").await?;
            (id, false)
        }
        None => {
            let name = match &fields.display_name {
                Some(name) => name.clone(),
                None => validate::person_name(email.display.split('@').next().unwrap_or_default())?,
            };
            let user = accounts::create_without_password(&mut tx, client, name, &email, "scim").await?;
            if ours {
                recovery::mark_verified(&mut tx, &by, client, user.id, "scim").await?;
            }
            (user.id, true)
        }
    };
    let now = Timestamp::now();
    sqlx::query(
        "INSERT INTO scim_users (org_id, user_id, user_name, user_name_key, external_id, display_name,
                                 account_created, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(&fields.user_name)
    .bind(fields.user_name.to_lowercase())
    .bind(&fields.external_id)
    .bind(&fields.display_name)
    .bind(i64::from(account_created))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let event =
        AuditEvent::new("scim_user.create", "user", user_id).in_org(org_id).with_details(serde_json::json!({
            "user_name": fields.user_name,
            "external_id": fields.external_id,
            "account_created": account_created,
        }));
    audit::record(&mut tx, &by, client, event).await?;
    if fields.active {
        activate(&mut tx, &by, client, user_id).await?;
    }
    let created = find(&mut tx, org_id, user_id).await?.ok_or(AppError::Internal)?;
    tx.commit().await?;
    Ok(created)
}

/// Applies `change` to the person as the provider sees them now, under the
/// Organization's lock: a replacement (PUT) or a PATCH. Deactivating ends
/// their access as removing a member does, sessions included.
#[tracing::instrument(name = "scim::users::change", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn change(
    db: &Db,
    sessions: &DbSessionStore,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: UserId,
    change: impl FnOnce(&mut UserFields) -> AppResult<()>,
) -> AppResult<ScimUser> {
    let mut tx = db.begin().await?;
    let by = authz::provisioner(&mut tx, actor, org_id).await?;
    let before = find(&mut tx, org_id, id).await?.ok_or(AppError::NotFound)?;
    let mut fields = UserFields::from(&before);
    change(&mut fields)?;
    let after = checked(fields)?;
    if let Some(address) = after.emails.first() {
        let email = validate::email(address)
            .map_err(|_| AppError::invalid("emails", format!("{address} is not an email address.")))?;
        if email.normalized != before.email.to_lowercase() {
            change_address(&mut tx, &by, client, id, &before.email, &email).await?;
        }
    }
    if after.user_name.to_lowercase() != before.user_name.to_lowercase() {
        refuse_taken_user_name(&mut tx, org_id, &after.user_name, Some(id)).await?;
    }
    let now = Timestamp::now();
    // Every person the provider touched has its row: their names are the provider's from now on.
    sqlx::query(
        "INSERT INTO scim_users (org_id, user_id, user_name, user_name_key, external_id, display_name,
                                 account_created, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7)
         ON CONFLICT (org_id, user_id) DO UPDATE SET user_name = $3, user_name_key = $4, external_id = $5,
                                                   display_name = $6, updated_at = $7",
    )
    .bind(org_id)
    .bind(id)
    .bind(&after.user_name)
    .bind(after.user_name.to_lowercase())
    .bind(&after.external_id)
    .bind(&after.display_name)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if let Some(name) =
        after.display_name.as_deref().filter(|name| Some(*name) != before.display_name.as_deref())
    {
        rename_if_ours(&mut tx, org_id, id, &before.email, name).await?;
    }
    let changed = changes(&before, &after);
    if !changed.is_empty() {
        let event = AuditEvent::new("scim_user.update", "user", id)
            .in_org(org_id)
            .with_details(serde_json::json!(changed));
        audit::record(&mut tx, &by, client, event).await?;
    }
    let deactivated = before.active && !after.active;
    match (before.active, after.active) {
        (false, true) => activate(&mut tx, &by, client, id).await?,
        (true, false) => {
            members::leave(&mut tx, &by, client, id, "deprovisioned").await?;
        }
        _ => {}
    }
    let user = find(&mut tx, org_id, id).await?.ok_or(AppError::Internal)?;
    tx.commit().await?;
    if deactivated {
        sessions.delete_for_user(id).await?;
    }
    Ok(user)
}

/// Deprovisions the person if active, and forgets them: their account stays
/// (it is theirs, and may belong to other Organizations).
#[tracing::instrument(name = "scim::users::delete", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn delete(
    db: &Db,
    sessions: &DbSessionStore,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: UserId,
) -> AppResult<()> {
    let mut tx = db.begin().await?;
    let by = authz::provisioner(&mut tx, actor, org_id).await?;
    let user = find(&mut tx, org_id, id).await?.ok_or(AppError::NotFound)?;
    if user.active {
        members::leave(&mut tx, &by, client, id, "deprovisioned").await?;
    }
    sqlx::query("DELETE FROM scim_users WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "DELETE FROM scim_group_members WHERE user_id = $1
           AND group_id IN (SELECT id FROM user_groups WHERE org_id = $2)",
    )
    .bind(id)
    .bind(org_id)
    .execute(&mut *tx)
    .await?;
    let event = AuditEvent::new("scim_user.delete", "user", id)
        .in_org(org_id)
        .with_details(serde_json::json!({ "user_name": user.user_name }));
    audit::record(&mut tx, &by, client, event).await?;
    tx.commit().await?;
    sessions.delete_for_user(id).await?;
    Ok(())
}

/// Makes the person a member (with the provisioned role) and puts them back
/// in the managed groups the provider lists them in.
async fn activate(conn: &mut AnyConnection, by: &Provisioner, client: &Client, id: UserId) -> AppResult<()> {
    if !members::join(conn, by.org_id(), id, &[PROVISIONED_ROLE]).await? {
        return Ok(());
    }
    let event = AuditEvent::new("user.organization.join", "user", id)
        .in_org(by.org_id())
        .with_details(serde_json::json!({ "roles": [PROVISIONED_ROLE.as_str()], "via": "scim" }));
    audit::record(&mut *conn, by, client, event).await?;
    super::groups::restore_memberships(conn, by, client, id).await
}

async fn refuse_taken_user_name(
    conn: &mut AnyConnection,
    org_id: OrgId,
    user_name: &str,
    other_than: Option<UserId>,
) -> AppResult<()> {
    let (condition, value) = UserFilter::UserName(user_name.to_string()).condition();
    let taken: Vec<(UserId,)> = sqlx::query_as(&format!("SELECT u.id {FROM_PEOPLE} WHERE {condition}"))
        .bind(org_id)
        .bind(&value)
        .fetch_all(conn)
        .await?;
    if taken.iter().any(|(id,)| Some(*id) != other_than) {
        return Err(AppError::conflict(
            "userName",
            format!("userName {user_name} is taken in this Organization."),
        ));
    }
    Ok(())
}

/// Whether the account is the Organization's, so that its provider speaks
/// for it (names it, changes its address): made by this provisioning, or in
/// one of the Organization's verified domains.
async fn is_ours(conn: &mut AnyConnection, org_id: OrgId, id: UserId, email: &str) -> AppResult<bool> {
    let made_here: Option<(i64,)> =
        sqlx::query_as("SELECT account_created FROM scim_users WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    if made_here.is_some_and(|(made,)| made != 0) {
        return Ok(true);
    }
    domains::verified_for(conn, org_id, &validate::email(email)?).await
}

async fn rename_if_ours(
    conn: &mut AnyConnection,
    org_id: OrgId,
    id: UserId,
    email: &str,
    name: &str,
) -> AppResult<()> {
    if is_ours(conn, org_id, id, email).await? {
        let name =
            validate::person_name(name).map_err(|e| AppError::invalid("displayName", e.to_string()))?;
        sqlx::query("UPDATE users SET name = $1 WHERE id = $2").bind(name).bind(id).execute(conn).await?;
    }
    Ok(())
}

/// The provider moves an account of its Organization to a new address, which
/// counts as proven only in one of the Organization's verified domains.
async fn change_address(
    conn: &mut AnyConnection,
    by: &Provisioner,
    client: &Client,
    id: UserId,
    before: &str,
    email: &validate::Email,
) -> AppResult<()> {
    if !is_ours(conn, by.org_id(), id, before).await? {
        return Err(AppError::invalid(
            "emails",
            format!(
                "{before} is its owner's address: an identity provider changes addresses only of accounts it \
                 created or in the domains its Organization verified."
            ),
        ));
    }
    let taken: Option<(UserId,)> = sqlx::query_as("SELECT id FROM users WHERE email_normalized = $1")
        .bind(&email.normalized)
        .fetch_optional(&mut *conn)
        .await?;
    if taken.is_some() {
        return Err(AppError::conflict(
            "emails",
            format!("An account with {} already exists.", email.display),
        ));
    }
    let proven = domains::verified_for(conn, by.org_id(), email).await?.then(Timestamp::now);
    sqlx::query("UPDATE users SET email = $1, email_normalized = $2, email_verified_at = $3 WHERE id = $4")
        .bind(&email.display)
        .bind(&email.normalized)
        .bind(proven)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let event = AuditEvent::new("user.info.update", "user", id)
        .in_org(by.org_id())
        .with_details(serde_json::json!({ "before": before, "after": email.display, "via": "scim" }));
    audit::record(&mut *conn, by, client, event).await?;
    Ok(())
}

/// The fields that changed, before and after, for the audit log.
fn changes(before: &ScimUser, after: &UserFields) -> serde_json::Map<String, serde_json::Value> {
    let mut changed = serde_json::Map::new();
    let mut note = |field: &str, was: serde_json::Value, is: serde_json::Value| {
        if was != is {
            changed.insert(field.to_string(), serde_json::json!({ "before": was, "after": is }));
        }
    };
    note("user_name", before.user_name.clone().into(), after.user_name.clone().into());
    note("external_id", before.external_id.clone().into(), after.external_id.clone().into());
    note("display_name", before.display_name.clone().into(), after.display_name.clone().into());
    note("active", before.active.into(), after.active.into());
    changed
}
