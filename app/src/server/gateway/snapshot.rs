//! What the gateway knows without asking the database: the keys that can still
//! answer, workspaces and their limits, organizations' billing and limits, and
//! the model catalogue.
//!
//! Database triggers log every change of what it holds in `gateway_changes`,
//! numbered by the version they bump. Each replica checks that version every
//! half second and applies the logged changes (re-reading only the rows they
//! name), so a change takes effect within a second; it reloads whole only at
//! start or when it has fallen further behind than the log reaches.

use std::collections::{BTreeMap, HashSet};

use super::FastMap;
use crate::{
    error::AppResult,
    ids::{ApiKeyId, OrgId, WorkspaceId},
    model::{CatalogueModel, TokenLimits},
    server::{
        billing::{read_token_limits, split_models},
        db::{placeholders, Db},
        models,
    },
    time::Timestamp,
};

/// How long a revoked or expired key stays in the snapshot, so that it answers
/// `api_key_revoked` or `api_key_expired` rather than `invalid_api_key`.
pub const KEY_GRACE_MS: i64 = 30 * 24 * 60 * 60 * 1000;
/// Further behind than this many changes, a replica reloads whole: re-reading
/// the rows one by one would cost more.
const MOST_CHANGES_APPLIED: i64 = 5_000;
/// How many changes the log keeps for replicas that fell behind.
const CHANGES_KEPT: i64 = 20_000;
/// Rows re-read by one query (well under both engines' parameter limits).
const IDS_PER_QUERY: usize = 500;

#[derive(Clone, Debug, PartialEq)]
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

#[derive(Clone, Debug, PartialEq)]
pub struct WorkspaceEntry {
    pub org_id: OrgId,
    pub archived: bool,
    pub allowed_models: Option<Vec<String>>,
    pub requests_per_second: Option<i64>,
    pub requests_per_minute: Option<i64>,
    /// By model id: only models with a limit.
    pub token_limits: BTreeMap<String, TokenLimits>,
    pub monthly_budget_micros: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OrgEntry {
    pub billing_active: bool,
    pub monthly_limit_micros: Option<i64>,
}

#[derive(Debug, Default, PartialEq)]
pub struct Snapshot {
    /// `gateway_config.version` this snapshot is up to.
    pub version: i64,
    /// By the key's public id: only keys not revoked or expired before the grace.
    pub keys: FastMap<String, KeyEntry>,
    pub workspaces: FastMap<WorkspaceId, WorkspaceEntry>,
    pub orgs: FastMap<OrgId, OrgEntry>,
    pub models: FastMap<String, CatalogueModel>,
}

/// What changed between two versions: each named entity as it is now, or
/// `None` where it is gone (deleted, or a key past its grace).
#[derive(Debug, Default)]
pub struct Changes {
    /// The version these changes bring a snapshot to.
    pub version: i64,
    pub keys: FastMap<String, Option<KeyEntry>>,
    pub workspaces: FastMap<WorkspaceId, Option<WorkspaceEntry>>,
    pub orgs: FastMap<OrgId, Option<OrgEntry>>,
    /// The whole catalogue, when any model changed (it is small).
    pub models: Option<FastMap<String, CatalogueModel>>,
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

impl KeyRow {
    fn entry(self) -> (String, KeyEntry) {
        let entry = KeyEntry {
            id: self.id,
            org_id: self.org_id,
            workspace_id: self.workspace_id,
            secret_sha256: self.secret_sha256,
            allowed_models: self.allowed_models.map(|m| split_models(&m)),
            requests_per_minute: self.requests_per_minute,
            expires_at: self.expires_at,
            revoked: self.revoked_at.is_some(),
        };
        (self.public_id, entry)
    }
}

#[derive(sqlx::FromRow)]
struct WorkspaceRow {
    id: WorkspaceId,
    org_id: OrgId,
    archived_at: Option<Timestamp>,
    allowed_models: Option<String>,
    requests_per_second: Option<i64>,
    requests_per_minute: Option<i64>,
    model_token_limits: Option<String>,
    monthly_budget_micros: Option<i64>,
}

impl WorkspaceRow {
    fn entry(self) -> (WorkspaceId, WorkspaceEntry) {
        let entry = WorkspaceEntry {
            org_id: self.org_id,
            archived: self.archived_at.is_some(),
            allowed_models: self.allowed_models.map(|m| split_models(&m)),
            requests_per_second: self.requests_per_second,
            requests_per_minute: self.requests_per_minute,
            token_limits: read_token_limits(self.model_token_limits.as_deref()),
            monthly_budget_micros: self.monthly_budget_micros,
        };
        (self.id, entry)
    }
}

#[derive(sqlx::FromRow)]
struct OrgRow {
    id: OrgId,
    monthly_limit_micros: Option<i64>,
    method: Option<String>,
}

impl OrgRow {
    fn entry(self) -> (OrgId, OrgEntry) {
        let entry = OrgEntry {
            billing_active: self.method.is_some(),
            monthly_limit_micros: self.monthly_limit_micros,
        };
        (self.id, entry)
    }
}

/// Keys that still answer: neither revoked nor expired before `$1`, the grace's start.
const KEYS: &str =
    "SELECT public_id, id, org_id, workspace_id, secret_sha256, allowed_models, requests_per_minute,
        expires_at, revoked_at
    FROM workspace_api_keys
    WHERE (revoked_at IS NULL OR revoked_at > $1) AND (expires_at IS NULL OR expires_at > $1)";
const WORKSPACES: &str = "SELECT w.id, w.org_id, w.archived_at, l.allowed_models, l.requests_per_second,
        l.requests_per_minute, l.model_token_limits, l.monthly_budget_micros
    FROM workspaces w LEFT JOIN workspace_limits l ON l.workspace_id = w.id";
const ORGS: &str = "SELECT o.id, o.monthly_limit_micros, b.method
    FROM organizations o LEFT JOIN org_billing b ON b.org_id = o.id";

impl Snapshot {
    /// The configuration's version now (bumped by triggers on every change).
    pub async fn latest_version(db: &Db) -> AppResult<i64> {
        let (version,): (i64,) =
            sqlx::query_as("SELECT version FROM gateway_config WHERE id = 1").fetch_one(db.pool()).await?;
        Ok(version)
    }

    /// Loads everything, as of `now` for the keys' grace.
    pub async fn load(db: &Db, now: Timestamp) -> AppResult<Self> {
        // Read first: a change committed while the tables are read is applied
        // again at the next check, which changes nothing.
        let version = Self::latest_version(db).await?;
        let keys: Vec<KeyRow> = sqlx::query_as(KEYS).bind(grace_start(now)).fetch_all(db.pool()).await?;
        let workspaces: Vec<WorkspaceRow> = sqlx::query_as(WORKSPACES).fetch_all(db.pool()).await?;
        let orgs: Vec<OrgRow> = sqlx::query_as(ORGS).fetch_all(db.pool()).await?;
        Ok(Self {
            version,
            keys: keys.into_iter().map(KeyRow::entry).collect(),
            workspaces: workspaces.into_iter().map(WorkspaceRow::entry).collect(),
            orgs: orgs.into_iter().map(OrgRow::entry).collect(),
            models: catalogue(db).await?,
        })
    }

    /// Brings this snapshot to the version of `changes`.
    pub fn apply(&mut self, changes: Changes) {
        fn put<K: Eq + std::hash::Hash, V>(map: &mut FastMap<K, V>, changed: FastMap<K, Option<V>>) {
            for (id, entry) in changed {
                match entry {
                    Some(entry) => map.insert(id, entry),
                    None => map.remove(&id),
                };
            }
        }
        put(&mut self.keys, changes.keys);
        put(&mut self.workspaces, changes.workspaces);
        put(&mut self.orgs, changes.orgs);
        if let Some(models) = changes.models {
            self.models = models;
        }
        self.version = changes.version;
    }
}

impl Changes {
    /// What changed after version `since`, read as of `now`; `None` when the
    /// log no longer reaches back that far, or it is cheaper to reload whole.
    pub async fn since(db: &Db, since: i64, now: Timestamp) -> AppResult<Option<Self>> {
        let version = Snapshot::latest_version(db).await?;
        let mut changes = Self { version, ..Self::default() };
        if version == since {
            return Ok(Some(changes));
        }
        if version - since > MOST_CHANGES_APPLIED || version < since {
            return Ok(None);
        }
        let logged: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT version, kind, entity_id FROM gateway_changes WHERE version > $1 AND version <= $2",
        )
        .bind(since)
        .bind(version)
        .fetch_all(db.pool())
        .await?;
        // Versions are committed without gaps: a missing one was pruned.
        if logged.len() as i64 != version - since {
            return Ok(None);
        }
        let mut named: FastMap<&str, HashSet<String>> = FastMap::default();
        for (_, kind, id) in logged.iter() {
            named.entry(kind.as_str()).or_default().insert(id.clone());
        }
        let ids =
            |kind| named.get(kind).map(|ids| ids.iter().cloned().collect::<Vec<_>>()).unwrap_or_default();

        let keys = ids("key");
        changes.keys = keys.iter().map(|id| (id.clone(), None)).collect();
        for chunk in keys.chunks(IDS_PER_QUERY) {
            let sql = format!("{KEYS} AND public_id IN ({})", placeholders(2, chunk.len()));
            let mut query = sqlx::query_as::<_, KeyRow>(&sql).bind(grace_start(now));
            for id in chunk {
                query = query.bind(id);
            }
            for row in query.fetch_all(db.pool()).await? {
                let (public_id, entry) = row.entry();
                changes.keys.insert(public_id, Some(entry));
            }
        }

        let workspaces: Vec<WorkspaceId> = ids("workspace").iter().filter_map(|id| id.parse().ok()).collect();
        changes.workspaces = workspaces.iter().map(|id| (*id, None)).collect();
        for chunk in workspaces.chunks(IDS_PER_QUERY) {
            let sql = format!("{WORKSPACES} WHERE w.id IN ({})", placeholders(1, chunk.len()));
            let mut query = sqlx::query_as::<_, WorkspaceRow>(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(db.pool()).await? {
                let (id, entry) = row.entry();
                changes.workspaces.insert(id, Some(entry));
            }
        }

        let orgs: Vec<OrgId> = ids("org").iter().filter_map(|id| id.parse().ok()).collect();
        changes.orgs = orgs.iter().map(|id| (*id, None)).collect();
        for chunk in orgs.chunks(IDS_PER_QUERY) {
            let sql = format!("{ORGS} WHERE o.id IN ({})", placeholders(1, chunk.len()));
            let mut query = sqlx::query_as::<_, OrgRow>(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(db.pool()).await? {
                let (id, entry) = row.entry();
                changes.orgs.insert(id, Some(entry));
            }
        }

        if named.contains_key("model") {
            changes.models = Some(catalogue(db).await?);
        }
        Ok(Some(changes))
    }

    /// Forgets the changes older than the ones kept for replicas behind `version`.
    pub async fn prune(db: &Db, version: i64) -> AppResult<()> {
        sqlx::query("DELETE FROM gateway_changes WHERE version <= $1")
            .bind(version - CHANGES_KEPT)
            .execute(db.pool())
            .await?;
        Ok(())
    }
}

fn grace_start(now: Timestamp) -> Timestamp {
    Timestamp(now.0 - KEY_GRACE_MS)
}

async fn catalogue(db: &Db) -> AppResult<FastMap<String, CatalogueModel>> {
    Ok(models::list(db).await?.into_iter().map(|m| (m.id.clone(), m)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applying_changes_replaces_and_removes_entries_and_moves_the_version() {
        let org = OrgId::new();
        let mut snapshot = Snapshot::default();
        snapshot.orgs.insert(org, OrgEntry { billing_active: false, monthly_limit_micros: None });
        let gone = OrgId::new();
        snapshot.orgs.insert(gone, OrgEntry { billing_active: true, monthly_limit_micros: None });
        let changes = Changes {
            version: 7,
            orgs: FastMap::from_iter([
                (org, Some(OrgEntry { billing_active: true, monthly_limit_micros: Some(5) })),
                (gone, None),
            ]),
            ..Changes::default()
        };
        snapshot.apply(changes);
        assert_eq!(snapshot.version, 7);
        assert!(snapshot.orgs[&org].billing_active);
        assert!(!snapshot.orgs.contains_key(&gone));
    }
}
