//! What the gateway knows without asking the database: keys, workspaces and
//! their limits, organizations' billing and limits, and the model catalogue.
//! Database triggers bump a version on every change of what it holds; each
//! replica checks that version every half second and reloads on a change, so a
//! change takes effect within a second.

use std::collections::HashMap;

use crate::{
    error::AppResult,
    ids::{ApiKeyId, OrgId, WorkspaceId},
    model::CatalogueModel,
    server::{billing::split_models, db::Db, models},
    time::Timestamp,
};

#[derive(Clone, Debug)]
pub struct KeyEntry {
    pub id: ApiKeyId,
    pub org_id: OrgId,
    pub workspace_id: WorkspaceId,
    pub secret_sha256: String,
    pub allowed_models: Option<Vec<String>>,
    pub requests_per_minute: Option<i64>,
    pub expires_at: Option<Timestamp>,
    pub revoked: bool,
}

#[derive(Clone, Debug)]
pub struct WorkspaceEntry {
    pub org_id: OrgId,
    pub archived: bool,
    pub allowed_models: Option<Vec<String>>,
    pub requests_per_minute: Option<i64>,
    pub monthly_budget_micros: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct OrgEntry {
    pub billing_active: bool,
    pub monthly_limit_micros: Option<i64>,
}

#[derive(Debug, Default)]
pub struct Snapshot {
    /// `gateway_config.version` when this was loaded.
    pub version: i64,
    /// By the key's public id.
    pub keys: HashMap<String, KeyEntry>,
    pub workspaces: HashMap<WorkspaceId, WorkspaceEntry>,
    pub orgs: HashMap<OrgId, OrgEntry>,
    pub models: HashMap<String, CatalogueModel>,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    public_id: String,
    id: ApiKeyId,
    org_id: OrgId,
    workspace_id: WorkspaceId,
    secret_sha256: String,
    allowed_models: Option<String>,
    requests_per_minute: Option<i64>,
    expires_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
}
type WorkspaceRow = (WorkspaceId, OrgId, Option<Timestamp>, Option<String>, Option<i64>, Option<i64>);

impl Snapshot {
    /// The configuration's version now (bumped by triggers on every change).
    pub async fn latest_version(db: &Db) -> AppResult<i64> {
        let (version,): (i64,) =
            sqlx::query_as("SELECT version FROM gateway_config WHERE id = 1").fetch_one(db.pool()).await?;
        Ok(version)
    }

    pub async fn load(db: &Db) -> AppResult<Self> {
        // Read first: a change committed while the tables are read shows as a newer
        // version at the next check, and is loaded then.
        let version = Self::latest_version(db).await?;
        let keys: Vec<KeyRow> = sqlx::query_as(
            "SELECT public_id, id, org_id, workspace_id, secret_sha256, allowed_models, requests_per_minute,
                 expires_at, revoked_at
             FROM workspace_api_keys",
        )
        .fetch_all(db.pool())
        .await?;
        let workspaces: Vec<WorkspaceRow> = sqlx::query_as(
            "SELECT w.id, w.org_id, w.archived_at, l.allowed_models, l.requests_per_minute, l.monthly_budget_micros
             FROM workspaces w LEFT JOIN workspace_limits l ON l.workspace_id = w.id",
        )
        .fetch_all(db.pool())
        .await?;
        let orgs: Vec<(OrgId, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT o.id, o.monthly_limit_micros, b.method
             FROM organizations o LEFT JOIN org_billing b ON b.org_id = o.id",
        )
        .fetch_all(db.pool())
        .await?;
        Ok(Self {
            version,
            keys: keys
                .into_iter()
                .map(|row| {
                    let entry = KeyEntry {
                        id: row.id,
                        org_id: row.org_id,
                        workspace_id: row.workspace_id,
                        secret_sha256: row.secret_sha256,
                        allowed_models: row.allowed_models.map(|m| split_models(&m)),
                        requests_per_minute: row.requests_per_minute,
                        expires_at: row.expires_at,
                        revoked: row.revoked_at.is_some(),
                    };
                    (row.public_id, entry)
                })
                .collect(),
            workspaces: workspaces
                .into_iter()
                .map(|(id, org_id, archived_at, models, rpm, budget)| {
                    let entry = WorkspaceEntry {
                        org_id,
                        archived: archived_at.is_some(),
                        allowed_models: models.map(|m| split_models(&m)),
                        requests_per_minute: rpm,
                        monthly_budget_micros: budget,
                    };
                    (id, entry)
                })
                .collect(),
            orgs: orgs
                .into_iter()
                .map(|(id, limit, method)| {
                    (id, OrgEntry { billing_active: method.is_some(), monthly_limit_micros: limit })
                })
                .collect(),
            models: models::list(db).await?.into_iter().map(|m| (m.id.clone(), m)).collect(),
        })
    }
}
