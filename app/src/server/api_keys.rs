//! Workspace API keys: what callers of the gateway present. Created, listed,
//! revoked and rotated by the organization's Admins (and its Admin API keys)
//! and by a workspace's Admins for that workspace; a workspace's Members make
//! and manage keys of their own there. A rotation makes a new key and lets the
//! old one work for a grace period.

use sqlx::{AnyConnection, FromRow};

use super::{
    actor::{Actor, Client},
    audit::{self, AuditEvent},
    authz,
    billing::{self, split_models},
    db::{bind_all, created_at_of, escape_like, Conditions, Db, Param},
    key_policy, lifecycle, mail, models, paging, secret_key, service_accounts,
    workspaces::{self, Access},
};
use crate::{
    error::{AppError, AppResult},
    ids::{ApiKeyId, OrgId, ServiceAccountId, UserId, WorkspaceId},
    model::{ApiKeyStatus, ApiKeyView, CreatedApiKey, KeyPolicy, Slice},
    time::Timestamp,
    validate,
};

pub const PREFIX: &str = "chy_ws";
/// A key unused for this long is flagged in lists.
pub const UNUSED_AFTER_MS: i64 = 30 * 24 * 3_600_000;
pub const DEFAULT_GRACE_HOURS: i64 = 24;
pub const MAX_GRACE_HOURS: i64 = 30 * 24;

#[derive(FromRow)]
struct KeyRow {
    id: ApiKeyId,
    workspace_id: WorkspaceId,
    workspace_name: String,
    name: String,
    public_id: String,
    secret_last4: String,
    allowed_models: Option<String>,
    requests_per_minute: Option<i64>,
    owner_user_id: Option<UserId>,
    owner_email: Option<String>,
    service_account_id: Option<ServiceAccountId>,
    service_account_name: Option<String>,
    created_by_label: String,
    created_at: Timestamp,
    last_used_at: Option<Timestamp>,
    expires_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
    rotated_to: Option<ApiKeyId>,
    org_max_days: Option<i64>,
    workspace_max_days: Option<i64>,
}

/// Where a key stands at `now`.
pub fn status(
    now: Timestamp,
    expires_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
    rotated: bool,
) -> ApiKeyStatus {
    if revoked_at.is_some() {
        ApiKeyStatus::Revoked
    } else if expires_at.is_some_and(|at| at <= now) {
        ApiKeyStatus::Expired
    } else if rotated {
        ApiKeyStatus::Rotating
    } else {
        ApiKeyStatus::Active
    }
}

/// Flagged when a working key has not been used for 30 days (counted from its
/// creation if it never was).
pub fn unused(
    now: Timestamp,
    status: ApiKeyStatus,
    created_at: Timestamp,
    last_used_at: Option<Timestamp>,
) -> bool {
    status == ApiKeyStatus::Active && now.0 - last_used_at.unwrap_or(created_at).0 >= UNUSED_AFTER_MS
}

impl KeyRow {
    fn view(self, now: Timestamp) -> ApiKeyView {
        let status = status(now, self.expires_at, self.revoked_at, self.rotated_to.is_some());
        let policy =
            KeyPolicy { org_max_days: self.org_max_days, workspace_max_days: self.workspace_max_days };
        ApiKeyView {
            beyond_policy: status == ApiKeyStatus::Active
                && policy.exceeded_by(self.created_at, self.expires_at),
            unused: unused(now, status, self.created_at, self.last_used_at),
            status,
            masked_key: secret_key::masked(PREFIX, &self.public_id, &self.secret_last4),
            id: self.id,
            workspace_id: self.workspace_id,
            workspace_name: self.workspace_name,
            name: self.name,
            allowed_models: self.allowed_models.map(|m| split_models(&m)),
            requests_per_minute: self.requests_per_minute,
            owner_email: self.owner_email,
            service_account: self.service_account_id.zip(self.service_account_name),
            created_by: self.created_by_label,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            rotated_to: self.rotated_to,
        }
    }
}

const SELECT_KEYS: &str =
    "SELECT k.id, k.workspace_id, w.name AS workspace_name, k.name, k.public_id, k.secret_last4,
        k.allowed_models, k.requests_per_minute, k.owner_user_id, u.email AS owner_email,
        k.service_account_id, s.name AS service_account_name, k.created_by_label, k.created_at, k.last_used_at,
        k.expires_at, k.revoked_at, k.rotated_to, o.api_key_max_days AS org_max_days,
        l.api_key_max_days AS workspace_max_days
    FROM workspace_api_keys k
    JOIN workspaces w ON w.id = k.workspace_id
    JOIN organizations o ON o.id = w.org_id
    LEFT JOIN workspace_limits l ON l.workspace_id = k.workspace_id
    LEFT JOIN users u ON u.id = k.owner_user_id
    LEFT JOIN service_accounts s ON s.id = k.service_account_id";

/// What a new key is made of.
#[derive(Clone, Debug, Default)]
pub struct NewApiKey {
    pub name: String,
    /// `YYYY-MM-DD` or empty for a key that never expires.
    pub expires_on: String,
    /// `None`: the models the workspace allows.
    pub allowed_models: Option<Vec<String>>,
    /// The key's own limit, within its workspace's; `None`: only the workspace's.
    pub requests_per_minute: Option<i64>,
    /// The person the key is for; an organization member.
    pub owner: Option<UserId>,
    /// Or the service account that owns it, of the key's workspace (Admins only).
    pub service_account: Option<ServiceAccountId>,
}

/// What a key is stored with; a rotation copies it to the new key.
struct KeyFields<'a> {
    name: &'a str,
    allowed_models: Option<&'a [String]>,
    requests_per_minute: Option<i64>,
    owner: Option<UserId>,
    service_account: Option<ServiceAccountId>,
    expires_at: Option<Timestamp>,
}

#[tracing::instrument(name = "api_keys::create", skip_all, fields(actor = actor.kind(), org_id = %org_id, workspace_id = %workspace_id), err(level = "debug"))]
pub async fn create(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    workspace_id: WorkspaceId,
    input: NewApiKey,
) -> AppResult<CreatedApiKey> {
    let name = validate::label("name", "Key name", &input.name)?;
    let expires_at = validate::expiry_date(&input.expires_on, chrono::Utc::now().date_naive())?;
    let allowed = match &input.allowed_models {
        Some(ids) => {
            Some(models::require_known(db, "allowed_models", ids).await?).filter(|ids| !ids.is_empty())
        }
        None => None,
    };
    billing::check_requests_per_minute(input.requests_per_minute)?;
    if input.owner.is_some() && input.service_account.is_some() {
        return Err(AppError::invalid(
            "service_account_id",
            "A key is for a person (user_id) or for a service account, not both.",
        ));
    }
    let (owner, service_account) = match workspaces::access(db, actor, org_id, workspace_id).await? {
        Access::Administers if input.service_account.is_some() => (None, input.service_account),
        Access::Administers => (input.owner.or(actor.user_id()), None),
        Access::Works(_) if input.service_account.is_some() => {
            return Err(AppError::invalid(
                "service_account_id",
                "Only the workspace's Admins make keys for its service accounts.",
            ));
        }
        // Someone working in the workspace makes keys for themself.
        Access::Works(_) => (actor.user_id(), None),
    };
    let maker = authz::workspace_keys(actor);
    let mut tx = db.begin().await?;
    // Under the Organization's lock, a removal either came first (and the owner
    // is refused here) or comes after (and revokes this key with the others).
    authz::lock_org(&mut tx, org_id).await?;
    workspaces::require_active(&mut tx, org_id, workspace_id).await?;
    let asked = expires_at;
    let expires_at =
        key_policy::of(&mut tx, org_id, Some(workspace_id)).await?.clamp(asked, Timestamp::now());
    if let Some(account) = service_account {
        service_accounts::require_live_in(&mut tx, org_id, workspace_id, account).await?;
    }
    if let Some(owner) = owner {
        workspaces::require_org_member(&mut tx, org_id, owner, "user_id").await?;
        if !lifecycle::may_use_workspace(&mut tx, org_id, workspace_id, owner).await? {
            return Err(AppError::invalid(
                "user_id",
                "This person does not work in this workspace: add them to it first, or choose someone who does.",
            ));
        }
    }
    let fields = KeyFields {
        name: &name,
        allowed_models: allowed.as_deref(),
        requests_per_minute: input.requests_per_minute,
        owner,
        service_account,
        expires_at,
    };
    let minted = insert(&mut tx, actor, org_id, workspace_id, &fields).await?;
    let event = AuditEvent::new("api_key.create", "api_key", minted.0).in_org(org_id).with_details(
        serde_json::json!({
            "name": name,
            "workspace_id": workspace_id,
            "allowed_models": allowed,
            "requests_per_minute": input.requests_per_minute,
            "service_account_id": service_account,
            "expires_at": expires_at.map(Timestamp::rfc3339),
            "expiry_clamped_by_policy": expires_at != asked,
        }),
    );
    audit::record(&mut tx, &maker, client, event).await?;
    let view = find(&mut tx, org_id, minted.0).await?;
    tx.commit().await?;
    Ok(CreatedApiKey { view, key: minted.1 })
}

/// Inserts a fresh key; returns its id and the full key (shown once).
async fn insert(
    conn: &mut AnyConnection,
    actor: &Actor,
    org_id: OrgId,
    workspace_id: WorkspaceId,
    fields: &KeyFields<'_>,
) -> AppResult<(ApiKeyId, String)> {
    let id = ApiKeyId::new();
    let minted = secret_key::generate(PREFIX);
    sqlx::query(
        "INSERT INTO workspace_api_keys (id, org_id, workspace_id, name, public_id, secret_sha256, secret_last4,
             allowed_models, requests_per_minute, owner_user_id, service_account_id, created_by_label, created_at,
             expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(id)
    .bind(org_id)
    .bind(workspace_id)
    .bind(fields.name)
    .bind(&minted.public_id)
    .bind(&minted.secret_sha256)
    .bind(&minted.secret_last4)
    .bind(fields.allowed_models.map(|m| m.join(",")))
    .bind(fields.requests_per_minute)
    .bind(fields.owner)
    .bind(fields.service_account)
    .bind(actor.label())
    .bind(Timestamp::now())
    .bind(fields.expires_at)
    .execute(conn)
    .await?;
    Ok((id, minted.full))
}

async fn find_row(conn: &mut AnyConnection, org_id: OrgId, id: ApiKeyId) -> AppResult<KeyRow> {
    let row: Option<KeyRow> = sqlx::query_as(&format!("{SELECT_KEYS} WHERE k.id = $1 AND k.org_id = $2"))
        .bind(id)
        .bind(org_id)
        .fetch_optional(conn)
        .await?;
    row.ok_or(AppError::NotFound)
}

async fn find(conn: &mut AnyConnection, org_id: OrgId, id: ApiKeyId) -> AppResult<ApiKeyView> {
    Ok(find_row(conn, org_id, id).await?.view(Timestamp::now()))
}

/// Whether `actor` may revoke or rotate key `id`: Admins of its organization or
/// workspace, or its owner while they still work in the workspace. Others are
/// told it does not exist.
async fn require_key_manager(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    id: ApiKeyId,
) -> AppResult<authz::WorkspaceKeys> {
    let row = find_row(&mut *db.pool().acquire().await?, org_id, id).await?;
    let access = workspaces::access(db, actor, org_id, row.workspace_id).await?;
    let owns = actor.user_id().is_some() && actor.user_id() == row.owner_user_id;
    if access.runs_workspace() || owns {
        Ok(authz::workspace_keys(actor))
    } else {
        Err(AppError::NotFound)
    }
}

/// Which keys to list: one workspace's or all, and a search on the name or the
/// key's last 4 characters; newest first, past `after` (the last key of the
/// page before). `offset` skips further, for the Admin API's `offset`.
#[derive(Clone, Debug, Default)]
pub struct KeyFilter {
    pub workspace_id: Option<WorkspaceId>,
    pub search: Option<String>,
    pub after: Option<ApiKeyId>,
    pub offset: i64,
    pub limit: i64,
}

/// The organization's keys, newest first.
#[tracing::instrument(name = "api_keys::list", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn list(db: &Db, actor: &Actor, org_id: OrgId, filter: &KeyFilter) -> AppResult<Vec<ApiKeyView>> {
    if !(1..=paging::MAX_PAGE_SIZE).contains(&filter.limit)
        || !(0..=paging::MAX_OFFSET).contains(&filter.offset)
    {
        return Err(AppError::invalid(
            "limit",
            format!("limit is 1 to {}, offset 0 to {}.", paging::MAX_PAGE_SIZE, paging::MAX_OFFSET),
        ));
    }
    // Within one workspace, its Members see their own keys; across workspaces, only Admins look.
    // (No connection is held while `workspaces::access` takes one: see `usage::report`.)
    let owner = match filter.workspace_id {
        Some(workspace_id) => match workspaces::access(db, actor, org_id, workspace_id).await? {
            access if access.runs_workspace() => None,
            _ => Some(actor.user_id().ok_or(AppError::NotFound)?),
        },
        None => {
            authz::org_admin(&mut *db.pool().acquire().await?, actor, org_id).await?;
            None
        }
    };
    let mut conn = db.pool().acquire().await?;
    let mut sql = Conditions::default();
    let org = sql.param(Param::Text(org_id.to_string()));
    sql.and(format!("k.org_id = {org}"));
    if let Some(workspace) = filter.workspace_id {
        let workspace = sql.param(Param::Text(workspace.to_string()));
        sql.and(format!("k.workspace_id = {workspace}"));
    }
    let search = filter.search.as_deref().unwrap_or_default().trim().to_lowercase();
    if !search.is_empty() {
        let like = sql.param(Param::Text(format!("%{}%", escape_like(&search))));
        let last4 = sql.param(Param::Text(search));
        sql.and(format!("LOWER(k.name) LIKE {like} ESCAPE '\\' OR LOWER(k.secret_last4) = {last4}"));
    }
    if let Some(owner) = owner {
        let owner = sql.param(Param::Text(owner.to_string()));
        sql.and(format!("k.owner_user_id = {owner}"));
    }
    if let Some(after) = filter.after {
        let at = created_at_of(&mut conn, "workspace_api_keys", org_id, Param::Text(after.to_string()))
            .await?
            .ok_or_else(|| AppError::invalid("after", "after is not a key of this Organization."))?;
        sql.past(("k.created_at", "k.id"), true, (Param::Int(at.0), Param::Text(after.to_string())));
    }
    let limit = sql.param(Param::Int(filter.limit));
    let offset = sql.param(Param::Int(filter.offset));
    let query = format!(
        "{SELECT_KEYS} WHERE {} ORDER BY k.created_at DESC, k.id DESC LIMIT {limit} OFFSET {offset}",
        sql.text
    );
    let rows: Vec<KeyRow> = bind_all(sqlx::query_as(&query), sql.params).fetch_all(&mut *conn).await?;
    let now = Timestamp::now();
    Ok(rows.into_iter().map(|r| r.view(now)).collect())
}

/// One page of a workspace's keys as its page lists them, newest first past
/// `after`: all of them for whoever runs the workspace, their own for others.
#[tracing::instrument(name = "api_keys::workspace_page", skip_all, fields(actor = actor.kind(), org_id = %org_id, workspace_id = %workspace_id), err(level = "debug"))]
pub async fn workspace_page(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    workspace_id: WorkspaceId,
    after: Option<ApiKeyId>,
) -> AppResult<Slice<ApiKeyView>> {
    let filter = KeyFilter {
        workspace_id: Some(workspace_id),
        after,
        limit: KEYS_PAGE_SIZE + 1,
        ..KeyFilter::default()
    };
    let keys = list(db, actor, org_id, &filter).await?;
    Ok(Slice::of(keys, KEYS_PAGE_SIZE, |key| key.id.to_string()))
}

/// How many of the Organization's keys (or one workspace's) work now: what
/// removing its payment method or archiving the workspace would stop.
/// For whoever already proved they may see them.
pub async fn working_count(
    conn: &mut AnyConnection,
    org_id: OrgId,
    workspace: Option<WorkspaceId>,
) -> AppResult<i64> {
    let mut sql = Conditions::default();
    let org = sql.param(Param::Text(org_id.to_string()));
    let now = sql.param(Param::Int(Timestamp::now().0));
    sql.and(format!("org_id = {org} AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > {now})"));
    if let Some(workspace) = workspace {
        let workspace = sql.param(Param::Text(workspace.to_string()));
        sql.and(format!("workspace_id = {workspace}"));
    }
    let count = format!("SELECT COUNT(*) FROM workspace_api_keys WHERE {}", sql.text);
    let (n,): (i64,) = bind_all(sqlx::query_as(&count), sql.params).fetch_one(conn).await?;
    Ok(n)
}

/// Keys on one page of a workspace's page.
pub const KEYS_PAGE_SIZE: i64 = 50;

/// Revokes a key at once (the gateway refuses it within a second).
#[tracing::instrument(name = "api_keys::revoke", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn revoke(db: &Db, actor: &Actor, client: &Client, org_id: OrgId, id: ApiKeyId) -> AppResult<()> {
    let manager = require_key_manager(db, actor, org_id, id).await?;
    let mut tx = db.begin().await?;
    let key = find(&mut tx, org_id, id).await?;
    if key.status == ApiKeyStatus::Revoked {
        return Ok(());
    }
    sqlx::query("UPDATE workspace_api_keys SET revoked_at = $1 WHERE id = $2 AND org_id = $3")
        .bind(Timestamp::now())
        .bind(id)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    let event = AuditEvent::new("api_key.delete", "api_key", id)
        .in_org(org_id)
        .with_details(serde_json::json!({ "name": key.name, "workspace_id": key.workspace_id }));
    audit::record(&mut tx, &manager, client, event).await?;
    tx.commit().await?;
    Ok(())
}

/// Replaces a working key with a new one (same workspace, name, models, rate
/// limit and expiry). The old key keeps working for `grace_hours` (0 to 720), then expires.
///
/// Whoever holds a secret answers for it: when a person rotates someone
/// else's key, the new key is theirs (it ends with their access, see
/// `lifecycle`). An Admin API key acts for the Organization and can make keys
/// for anyone, so it rotates a key without taking it. Either way, an owner who
/// did not rotate their own key is told by email, and the audit event names both.
#[tracing::instrument(name = "api_keys::rotate", skip_all, fields(actor = actor.kind(), org_id = %org_id, id = %id), err(level = "debug"))]
pub async fn rotate(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    id: ApiKeyId,
    grace_hours: i64,
) -> AppResult<CreatedApiKey> {
    if !(0..=MAX_GRACE_HOURS).contains(&grace_hours) {
        return Err(AppError::invalid(
            "grace_hours",
            format!("The grace period is 0 to {MAX_GRACE_HOURS} hours."),
        ));
    }
    let manager = require_key_manager(db, actor, org_id, id).await?;
    let mut tx = db.begin().await?;
    authz::lock_org(&mut tx, org_id).await?;
    let old = find(&mut tx, org_id, id).await?;
    if old.status != ApiKeyStatus::Active {
        return Err(AppError::conflict(
            "key",
            format!("Only an active key can be rotated; this one is {}.", old.status.as_str()),
        ));
    }
    let (owner, service_account): (Option<UserId>, Option<ServiceAccountId>) =
        sqlx::query_as("SELECT owner_user_id, service_account_id FROM workspace_api_keys WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    // A service account's key stays its own, whoever rotates it.
    let new_owner = if service_account.is_some() { None } else { actor.user_id().or(owner) };
    if let Some(account) = service_account {
        service_accounts::require_live_in(&mut tx, org_id, old.workspace_id, account).await?;
    }
    // Checked again under the lock: a rotator removed meanwhile gets no new key.
    if let Some(user) = new_owner {
        if !lifecycle::may_use_workspace(&mut tx, org_id, old.workspace_id, user).await? {
            return Err(AppError::NotFound);
        }
    }
    let fields = KeyFields {
        name: &old.name,
        allowed_models: old.allowed_models.as_deref(),
        requests_per_minute: old.requests_per_minute,
        owner: new_owner,
        service_account,
        // The new key lives no longer than the policy allows now.
        expires_at: key_policy::of(&mut tx, org_id, Some(old.workspace_id))
            .await?
            .clamp(old.expires_at, Timestamp::now()),
    };
    let (new_id, full) = insert(&mut tx, actor, org_id, old.workspace_id, &fields).await?;
    let grace_end = Timestamp(Timestamp::now().0 + grace_hours * 3_600_000);
    let old_expiry = old.expires_at.map_or(grace_end, |at| at.min(grace_end));
    sqlx::query("UPDATE workspace_api_keys SET rotated_to = $1, expires_at = $2 WHERE id = $3")
        .bind(new_id)
        .bind(old_expiry)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let event =
        AuditEvent::new("api_key.rotate", "api_key", id).in_org(org_id).with_details(serde_json::json!({
            "name": old.name,
            "new_key_id": new_id,
            "old_key_works_until": old_expiry.rfc3339(),
            "previous_owner_user_id": owner,
            "new_owner_user_id": new_owner,
        }));
    audit::record(&mut tx, &manager, client, event).await?;
    if let (Some(previous), Some(email)) = (owner, &old.owner_email) {
        if actor.user_id() != Some(previous) {
            let taken =
                if new_owner == Some(previous) { "It is still yours" } else { "The new key belongs to them" };
            let body = format!(
                "Your API key \"{}\" in the workspace {} was rotated by {}. {taken}.\n\n\
                 Your old key keeps working until {} (UTC), then stops.\n\n\
                 If you did not expect this, ask your organization's Admins.",
                old.name,
                old.workspace_name,
                actor.label(),
                old_expiry.display(),
            );
            mail::queue(&mut tx, email, &format!("Your API key {} was rotated", old.name), &body).await?;
        }
    }
    let view = find(&mut tx, org_id, new_id).await?;
    tx.commit().await?;
    Ok(CreatedApiKey { view, key: full })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 3_600_000;

    #[test]
    fn a_key_is_revoked_expired_rotating_or_active() {
        let now = Timestamp(100 * DAY);
        assert_eq!(status(now, None, None, false), ApiKeyStatus::Active);
        assert_eq!(status(now, Some(Timestamp(now.0 + 1)), None, true), ApiKeyStatus::Rotating);
        assert_eq!(status(now, Some(now), None, true), ApiKeyStatus::Expired, "the grace period ended");
        assert_eq!(status(now, None, Some(now), false), ApiKeyStatus::Revoked);
    }

    #[test]
    fn keys_unused_for_thirty_days_are_flagged() {
        let now = Timestamp(100 * DAY);
        let created = Timestamp(10 * DAY);
        assert!(unused(now, ApiKeyStatus::Active, created, None), "never used in 90 days");
        assert!(unused(now, ApiKeyStatus::Active, created, Some(Timestamp(70 * DAY))));
        assert!(!unused(now, ApiKeyStatus::Active, created, Some(Timestamp(71 * DAY))));
        assert!(!unused(now, ApiKeyStatus::Revoked, created, None), "only working keys are flagged");
        assert!(!unused(now, ApiKeyStatus::Active, Timestamp(80 * DAY), None), "new");
    }
}
