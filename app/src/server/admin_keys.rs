//! Admin API keys: made in the Backoffice, each administering one Organization
//! of the Enterprise Account, sent by machines as `x-api-key`.

use sqlx::{AnyConnection, FromRow};

use super::{
    actor::{Actor, Client},
    audit::{self, AuditEvent},
    authz::{self, Authority},
    db::Db,
    lifecycle, secret_key,
};
use crate::{
    error::{AppError, AppResult},
    ids::{AdminKeyId, EnterpriseId, OrgId},
    model::{AdminKeyView, CreatedAdminKey},
    time::Timestamp,
    validate,
};

pub const PREFIX: &str = "chy_admin";

#[derive(Clone, Debug)]
pub struct NewAdminKey {
    pub name: String,
    pub org_id: OrgId,
    /// `YYYY-MM-DD` or empty for a key that never expires.
    pub expires_on: String,
}

#[derive(FromRow)]
struct KeyRow {
    id: AdminKeyId,
    name: String,
    org_id: OrgId,
    org_name: String,
    public_id: String,
    secret_last4: String,
    created_at: Timestamp,
    last_used_at: Option<Timestamp>,
    expires_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
    creator_left: i64,
}

impl From<KeyRow> for AdminKeyView {
    fn from(row: KeyRow) -> Self {
        Self {
            masked_key: secret_key::masked(PREFIX, &row.public_id, &row.secret_last4),
            id: row.id,
            name: row.name,
            org_id: row.org_id,
            org_name: row.org_name,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            creator_left: row.creator_left != 0,
        }
    }
}

/// `creator_left`: whoever made the key is no longer an active member of its Enterprise Account.
const SELECT_KEYS: &str = "SELECT k.id, k.name, k.org_id, o.name AS org_name, k.public_id, k.secret_last4,
        k.created_at, k.last_used_at, k.expires_at, k.revoked_at,
        CASE WHEN EXISTS (SELECT 1 FROM enterprise_members m WHERE m.enterprise_account_id = k.enterprise_account_id
                          AND m.user_id = k.created_by AND m.accepted_at IS NOT NULL) THEN 0 ELSE 1 END AS creator_left
    FROM admin_api_keys k JOIN organizations o ON o.id = k.org_id";

#[tracing::instrument(name = "admin_keys::create", skip_all, fields(actor = actor.kind(), enterprise = %enterprise), err(level = "debug"))]
pub async fn create(
    db: &Db,
    actor: &Actor,
    client: &Client,
    enterprise: EnterpriseId,
    input: NewAdminKey,
) -> AppResult<CreatedAdminKey> {
    let name = validate::label("name", "Key name", &input.name)?;
    let expires_at = validate::expiry_date(&input.expires_on, chrono::Utc::now().date_naive())?;
    let mut tx = db.begin().await?;
    // The Organization's lock first, then the Enterprise Account's (see `authz`).
    authz::lock_org(&mut tx, input.org_id).await?;
    let member = authz::enterprise_member(&mut tx, actor, enterprise).await?;
    let creator = member.user();
    let linked: Option<(String,)> =
        sqlx::query_as("SELECT id FROM organizations WHERE id = $1 AND enterprise_account_id = $2")
            .bind(input.org_id)
            .bind(enterprise)
            .fetch_optional(&mut *tx)
            .await?;
    if linked.is_none() {
        return Err(AppError::invalid("org_id", "Choose an Organization linked to this Enterprise Account."));
    }
    // A key administers the Organization as its Admins do: only they may hand one out.
    if authz::org_admin(&mut tx, actor, input.org_id).await.is_err() {
        return Err(AppError::invalid(
            "org_id",
            "Only an Admin of this Organization can create its Admin API keys. Promote yourself to admin first.",
        ));
    }
    let key = secret_key::generate(PREFIX);
    let id = AdminKeyId::new();
    sqlx::query(
        "INSERT INTO admin_api_keys (id, enterprise_account_id, org_id, name, public_id, secret_sha256, secret_last4,
                                     created_by, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(id)
    .bind(enterprise)
    .bind(input.org_id)
    .bind(&name)
    .bind(&key.public_id)
    .bind(&key.secret_sha256)
    .bind(&key.secret_last4)
    .bind(creator)
    .bind(Timestamp::now())
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    let event = AuditEvent::new("admin_api_key.created", "admin_api_key", id)
        .in_org(input.org_id)
        .with_details(serde_json::json!({ "name": name, "expires_at": expires_at.map(Timestamp::rfc3339) }));
    audit::record(&mut tx, &member, client, event).await?;
    let row: KeyRow =
        sqlx::query_as(&format!("{SELECT_KEYS} WHERE k.id = $1")).bind(id).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(CreatedAdminKey { view: row.into(), key: key.full })
}

#[tracing::instrument(name = "admin_keys::list", skip_all, fields(actor = actor.kind(), enterprise = %enterprise), err(level = "debug"))]
pub async fn list(db: &Db, actor: &Actor, enterprise: EnterpriseId) -> AppResult<Vec<AdminKeyView>> {
    let mut conn = db.pool().acquire().await?;
    authz::enterprise_member(&mut conn, actor, enterprise).await?;
    let rows: Vec<KeyRow> = sqlx::query_as(&format!(
        "{SELECT_KEYS} WHERE k.enterprise_account_id = $1 ORDER BY k.created_at DESC, k.id"
    ))
    .bind(enterprise)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

#[tracing::instrument(name = "admin_keys::revoke", skip_all, fields(actor = actor.kind(), enterprise = %enterprise, key = %key), err(level = "debug"))]
pub async fn revoke(
    db: &Db,
    actor: &Actor,
    client: &Client,
    enterprise: EnterpriseId,
    key: AdminKeyId,
) -> AppResult<()> {
    let mut tx = db.begin().await?;
    let member = authz::enterprise_member(&mut tx, actor, enterprise).await?;
    let row: Option<(OrgId,)> =
        sqlx::query_as("SELECT org_id FROM admin_api_keys WHERE id = $1 AND enterprise_account_id = $2")
            .bind(key)
            .bind(enterprise)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((org_id,)) = row else {
        return Err(AppError::NotFound);
    };
    mark_revoked(&mut tx, &member, client, org_id, key).await?;
    tx.commit().await?;
    Ok(())
}

/// The Admin API keys that administer an Organization, for its Admins: they
/// see who can act on their Organization from outside, and can cut it off.
#[tracing::instrument(name = "admin_keys::list_for_org", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn list_for_org(db: &Db, actor: &Actor, org_id: OrgId) -> AppResult<Vec<AdminKeyView>> {
    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    let rows: Vec<KeyRow> =
        sqlx::query_as(&format!("{SELECT_KEYS} WHERE k.org_id = $1 ORDER BY k.created_at DESC, k.id"))
            .bind(org_id)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// An Organization's Admin revokes an Admin API key that administers it.
#[tracing::instrument(name = "admin_keys::revoke_for_org", skip_all, fields(actor = actor.kind(), org_id = %org_id, key = %key), err(level = "debug"))]
pub async fn revoke_for_org(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    key: AdminKeyId,
) -> AppResult<()> {
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    let row: Option<(String,)> =
        sqlx::query_as("SELECT id FROM admin_api_keys WHERE id = $1 AND org_id = $2")
            .bind(key)
            .bind(org_id)
            .fetch_optional(&mut *tx)
            .await?;
    if row.is_none() {
        return Err(AppError::NotFound);
    }
    mark_revoked(&mut tx, &admin, client, org_id, key).await?;
    tx.commit().await?;
    Ok(())
}

/// Revokes the key and the invitations it sent that are still pending (an
/// invitation does not outlive its inviter's right to invite). Revoking twice
/// changes nothing.
async fn mark_revoked(
    conn: &mut AnyConnection,
    by: &impl Authority,
    client: &Client,
    org_id: OrgId,
    key: AdminKeyId,
) -> AppResult<()> {
    let now = Timestamp::now();
    let done = sqlx::query("UPDATE admin_api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Ok(());
    }
    audit::record(
        &mut *conn,
        by,
        client,
        AuditEvent::new("admin_api_key.delete", "admin_api_key", key).in_org(org_id),
    )
    .await?;
    lifecycle::revoke_invitations_sent_by(conn, by, client, org_id, ("admin_api_key", &key.to_string()))
        .await?;
    Ok(())
}

/// The actor behind a presented `x-api-key`. Unknown, malformed, revoked and
/// expired keys are all `Unauthenticated`.
#[tracing::instrument(name = "admin_keys::authenticate", skip_all, err(level = "debug"))]
pub async fn authenticate(db: &Db, presented: Option<&str>) -> AppResult<Actor> {
    let invalid = || {
        AppError::Unauthenticated(
            "Invalid or missing Admin API key (in x-api-key, or as the Authorization: Bearer token).".into(),
        )
    };
    let (public_id, secret) =
        presented.and_then(|k| secret_key::parse(PREFIX, k.trim())).ok_or_else(invalid)?;
    #[derive(FromRow)]
    struct StoredKey {
        id: AdminKeyId,
        org_id: OrgId,
        name: String,
        secret_sha256: String,
        expires_at: Option<Timestamp>,
        revoked_at: Option<Timestamp>,
        last_used_at: Option<Timestamp>,
    }
    let stored: Option<StoredKey> = sqlx::query_as(
        "SELECT id, org_id, name, secret_sha256, expires_at, revoked_at, last_used_at
         FROM admin_api_keys WHERE public_id = $1",
    )
    .bind(public_id)
    .fetch_optional(db.pool())
    .await?;
    let Some(StoredKey { id, org_id, name, secret_sha256, expires_at, revoked_at, last_used_at }) = stored
    else {
        return Err(invalid());
    };
    if !secret_key::secret_matches(secret, &secret_sha256) {
        return Err(invalid());
    }
    let now = Timestamp::now();
    if revoked_at.is_some() {
        return Err(AppError::Unauthenticated("This Admin API key has been revoked.".into()));
    }
    if expires_at.is_some_and(|at| at <= now) {
        return Err(AppError::Unauthenticated("This Admin API key has expired.".into()));
    }
    if secret_key::last_use_is_stale(last_used_at, now) {
        sqlx::query("UPDATE admin_api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(db.pool())
            .await?;
    }
    Ok(Actor::AdminApiKey { id, org_id, name })
}
