//! SCIM tokens: an Organization's Admins make them in Settings for its identity
//! provider, which sends one as `Authorization: Bearer`. Shown once, kept as a
//! SHA-256 (like every key, see `secret_key`), revocable, audited.

use sqlx::FromRow;

use crate::{
    error::{AppError, AppResult},
    ids::{OrgId, ScimTokenId},
    model::{CreatedScimToken, ScimTokenView},
    server::{
        actor::{Actor, Client},
        audit::{self, AuditEvent},
        authz,
        db::Db,
        secret_key,
    },
    time::Timestamp,
    validate,
};

pub const PREFIX: &str = "chy_scim";

#[derive(FromRow)]
struct TokenRow {
    id: ScimTokenId,
    name: String,
    public_id: String,
    secret_last4: String,
    created_by: String,
    created_at: Timestamp,
    last_used_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
}

impl From<TokenRow> for ScimTokenView {
    fn from(row: TokenRow) -> Self {
        Self {
            masked_token: secret_key::masked(PREFIX, &row.public_id, &row.secret_last4),
            id: row.id,
            name: row.name,
            created_by: row.created_by,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        }
    }
}

const SELECT_TOKENS: &str = "SELECT t.id, t.name, t.public_id, t.secret_last4,
        COALESCE(u.email, '') AS created_by, t.created_at, t.last_used_at, t.revoked_at
    FROM scim_tokens t LEFT JOIN users u ON u.id = t.created_by";

#[tracing::instrument(name = "scim::tokens::create", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn create(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    name: &str,
) -> AppResult<CreatedScimToken> {
    let name = validate::label("name", "Token name", name)?;
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    // Made by a person in the Admin Panel: what the list shows as its maker.
    let creator = actor.user_id().ok_or(AppError::Forbidden)?;
    let key = secret_key::generate(PREFIX);
    let id = ScimTokenId::new();
    sqlx::query(
        "INSERT INTO scim_tokens (id, org_id, name, public_id, secret_sha256, secret_last4, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(org_id)
    .bind(&name)
    .bind(&key.public_id)
    .bind(&key.secret_sha256)
    .bind(&key.secret_last4)
    .bind(creator)
    .bind(Timestamp::now())
    .execute(&mut *tx)
    .await?;
    let event = AuditEvent::new("scim_token.create", "scim_token", id)
        .in_org(org_id)
        .with_details(serde_json::json!({ "name": name }));
    audit::record(&mut tx, &admin, client, event).await?;
    let row: TokenRow =
        sqlx::query_as(&format!("{SELECT_TOKENS} WHERE t.id = $1")).bind(id).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(CreatedScimToken { view: row.into(), token: key.full })
}

#[tracing::instrument(name = "scim::tokens::list", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn list(db: &Db, actor: &Actor, org_id: OrgId) -> AppResult<Vec<ScimTokenView>> {
    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    let rows: Vec<TokenRow> =
        sqlx::query_as(&format!("{SELECT_TOKENS} WHERE t.org_id = $1 ORDER BY t.created_at DESC, t.id"))
            .bind(org_id)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Revokes a token: its next request is refused. Revoking twice changes nothing.
#[tracing::instrument(name = "scim::tokens::revoke", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn revoke(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: ScimTokenId,
) -> AppResult<()> {
    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    let row: Option<(String,)> = sqlx::query_as("SELECT name FROM scim_tokens WHERE id = $1 AND org_id = $2")
        .bind(id)
        .bind(org_id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some((name,)) = row else {
        return Err(AppError::NotFound);
    };
    let done = sqlx::query("UPDATE scim_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(Timestamp::now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 1 {
        let event = AuditEvent::new("scim_token.revoke", "scim_token", id)
            .in_org(org_id)
            .with_details(serde_json::json!({ "name": name }));
        audit::record(&mut tx, &admin, client, event).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The identity provider behind a presented bearer token. Unknown, malformed
/// and revoked tokens are all `Unauthenticated`.
#[tracing::instrument(name = "scim::tokens::authenticate", skip_all, err(level = "debug"))]
pub async fn authenticate(db: &Db, presented: Option<&str>) -> AppResult<Actor> {
    let invalid =
        || AppError::Unauthenticated("Invalid or missing SCIM token (Authorization: Bearer).".into());
    let (public_id, secret) =
        presented.and_then(|token| secret_key::parse(PREFIX, token.trim())).ok_or_else(invalid)?;
    #[derive(FromRow)]
    struct StoredToken {
        id: ScimTokenId,
        org_id: OrgId,
        name: String,
        secret_sha256: String,
        revoked_at: Option<Timestamp>,
        last_used_at: Option<Timestamp>,
    }
    let stored: Option<StoredToken> = sqlx::query_as(
        "SELECT id, org_id, name, secret_sha256, revoked_at, last_used_at FROM scim_tokens WHERE public_id = $1",
    )
    .bind(public_id)
    .fetch_optional(db.pool())
    .await?;
    let Some(StoredToken { id, org_id, name, secret_sha256, revoked_at, last_used_at }) = stored else {
        return Err(invalid());
    };
    if !secret_key::secret_matches(secret, &secret_sha256) {
        return Err(invalid());
    }
    if revoked_at.is_some() {
        return Err(AppError::Unauthenticated("This SCIM token has been revoked.".into()));
    }
    let now = Timestamp::now();
    if secret_key::last_use_is_stale(last_used_at, now) {
        sqlx::query("UPDATE scim_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(db.pool())
            .await?;
    }
    Ok(Actor::ScimToken { id, org_id, name })
}
