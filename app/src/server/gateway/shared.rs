//! The gateway's counters in Redis, for several replicas: each replica counting
//! on its own would let N replicas spend N budgets. The same rules as the
//! in-process `Ledger` (fixed one-minute windows; holds of the worst case,
//! settled at the real cost), each check-and-hold one atomic Lua script.
//!
//! A month's spend lives in one hash per workspace and organization
//! (`spent`, `held`). A cold hash (a new month, or a Redis that lost its data)
//! is seeded from the database with HSETNX, so replicas seeding at once agree.

use redis::{aio::ConnectionManager, Script};

use super::ledger::{minute_of, seconds_to_next_minute, Hold, RateScope, Refusal, Room, Scope};
use crate::{
    error::{AppError, AppResult},
    ids::{ApiKeyId, OrgId, WorkspaceId},
    time::Timestamp,
};
/// Spend hashes outlive their month long enough for late settlements.
const MONTH_KEY_TTL_MS: i64 = 40 * 24 * 60 * 60 * 1000;

/// Counts one request and holds what the budgets leave of what it wants, or
/// refuses with nothing changed. Answers `{status, amount, in_flight}`: 'ok'
/// and the amount held; 'cold' (seed, then ask again); 'workspace_rate' or
/// 'key_rate'; 'workspace' or 'org' (budgets) with the room free and held by
/// calls in flight under that limit (as `Hold::within` chooses it).
/// A limit of -1 is no limit.
/// KEYS: workspace minute, workspace spend, organization spend, key minute.
/// ARGV: workspace rpm, workspace budget, organization limit, want, key rpm, least.
const ADMIT: &str = r"
if redis.call('EXISTS', KEYS[2]) == 0 or redis.call('EXISTS', KEYS[3]) == 0 then return {'cold', 0, 0} end
local workspace_rpm, key_rpm = tonumber(ARGV[1]), tonumber(ARGV[5])
local function full(key, limit)
  return limit >= 0 and tonumber(redis.call('GET', key) or '0') >= limit
end
if full(KEYS[1], workspace_rpm) then return {'workspace_rate', 0, 0} end
if full(KEYS[4], key_rpm) then return {'key_rate', 0, 0} end
local want, least = tonumber(ARGV[4]), tonumber(ARGV[6])
local function room(key, limit)
  if limit < 0 then return nil end
  local held = tonumber(redis.call('HGET', key, 'held') or '0')
  return {limit - tonumber(redis.call('HGET', key, 'spent') or '0') - held, held}
end
local ws, org = room(KEYS[2], tonumber(ARGV[2])), room(KEYS[3], tonumber(ARGV[3]))
local held = want
if ws and ws[1] < held then held = ws[1] end
if org and org[1] < held then held = org[1] end
if held < least then
  local function short(r) return r and r[1] < least end
  local function spent(r) return short(r) and r[1] + r[2] < least end
  if spent(org) and not spent(ws) then return {'org', org[1], org[2]} end
  if short(ws) then return {'workspace', ws[1], ws[2]} end
  return {'org', org[1], org[2]}
end
local function count(key, limit)
  if limit >= 0 and redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, 120000) end
end
count(KEYS[1], workspace_rpm)
count(KEYS[4], key_rpm)
redis.call('HINCRBY', KEYS[2], 'held', string.format('%.0f', held))
redis.call('HINCRBY', KEYS[3], 'held', string.format('%.0f', held))
return {'ok', held, 0}
";

/// Releases a hold of ARGV[1] and books a cost of ARGV[2] in both hashes.
const SETTLE: &str = r"
for i = 1, 2 do
  if redis.call('HINCRBY', KEYS[i], 'held', -tonumber(ARGV[1])) < 0 then redis.call('HSET', KEYS[i], 'held', 0) end
  redis.call('HINCRBY', KEYS[i], 'spent', ARGV[2])
end
";

/// Seeds a cold hash with the spend the database has recorded.
const SEED: &str = r"
redis.call('HSETNX', KEYS[1], 'spent', ARGV[1])
redis.call('HSETNX', KEYS[1], 'held', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
";

#[derive(Clone)]
pub struct SharedCounters {
    redis: ConnectionManager,
    admit_script: Script,
    settle_script: Script,
    seed_script: Script,
    /// Namespaces the keys: `chancery` in production, one per test.
    prefix: String,
}

impl std::fmt::Debug for SharedCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCounters").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// What the admission script answered.
pub enum Admission {
    /// Counted, and this much held.
    Admitted(i64),
    /// No counters for this month yet: seed them, then ask again.
    Cold,
    Refused(Refusal),
}

fn unavailable(error: redis::RedisError) -> AppError {
    tracing::error!(%error, "the gateway's shared counters (Redis) failed");
    AppError::Internal
}

impl SharedCounters {
    /// Connects to `redis://…`; the connection reconnects by itself.
    pub async fn connect(url: &str, prefix: &str) -> AppResult<Self> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let redis = ConnectionManager::new(client).await.map_err(unavailable)?;
        Ok(Self {
            redis,
            admit_script: Script::new(ADMIT),
            settle_script: Script::new(SETTLE),
            seed_script: Script::new(SEED),
            prefix: prefix.to_string(),
        })
    }

    fn spend_key(&self, month: Timestamp, scope: Scope) -> String {
        match scope {
            Scope::Org(id) => format!("{}:spend:{}:org:{id}", self.prefix, month.0),
            Scope::Workspace(id) => format!("{}:spend:{}:ws:{id}", self.prefix, month.0),
        }
    }

    fn minute_key(&self, scope: RateScope, now: Timestamp) -> String {
        let minute = minute_of(now);
        match scope {
            RateScope::Workspace(id) => format!("{}:rpm:{minute}:ws:{id}", self.prefix),
            RateScope::Key(id) => format!("{}:rpm:{minute}:key:{id}", self.prefix),
        }
    }

    /// `Ledger::admit` in Redis: counts a request under the workspace's and the
    /// key's per-minute limits and holds what both budgets allow of `hold`, atomically.
    pub async fn admit(
        &self,
        month: Timestamp,
        org: (OrgId, Option<i64>),
        workspace: (WorkspaceId, Option<i64>, Option<i64>),
        key: (ApiKeyId, Option<i64>),
        hold: Hold,
        now: Timestamp,
    ) -> AppResult<Admission> {
        let (workspace_id, workspace_rpm, budget) = workspace;
        let (answer, amount, in_flight): (String, i64, i64) = self
            .admit_script
            .key(self.minute_key(RateScope::Workspace(workspace_id), now))
            .key(self.spend_key(month, Scope::Workspace(workspace_id)))
            .key(self.spend_key(month, Scope::Org(org.0)))
            .key(self.minute_key(RateScope::Key(key.0), now))
            .arg(workspace_rpm.unwrap_or(-1))
            .arg(budget.unwrap_or(-1))
            .arg(org.1.unwrap_or(-1))
            .arg(hold.want)
            .arg(key.1.unwrap_or(-1))
            .arg(hold.least)
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(unavailable)?;
        let rate_limited =
            |scope| Refusal::RateLimited { scope, retry_after_secs: seconds_to_next_minute(now) };
        Ok(match answer.as_str() {
            "ok" => Admission::Admitted(amount),
            "cold" => Admission::Cold,
            "workspace_rate" => Admission::Refused(rate_limited(RateScope::Workspace(workspace_id))),
            "key_rate" => Admission::Refused(rate_limited(RateScope::Key(key.0))),
            "workspace" => Admission::Refused(Refusal::WorkspaceBudget(Room { free: amount, in_flight })),
            _ => Admission::Refused(Refusal::OrgBudget(Room { free: amount, in_flight })),
        })
    }

    /// Seeds a scope's month with what the database recorded, unless a replica already did.
    pub async fn seed(&self, month: Timestamp, scope: Scope, recorded: i64) -> AppResult<()> {
        self.seed_script
            .key(self.spend_key(month, scope))
            .arg(recorded)
            .arg(MONTH_KEY_TTL_MS)
            .invoke_async::<()>(&mut self.redis.clone())
            .await
            .map_err(unavailable)
    }

    /// Releases a hold and books the real cost.
    pub async fn settle(
        &self,
        month: Timestamp,
        org: OrgId,
        workspace: WorkspaceId,
        held: i64,
        cost: i64,
    ) -> AppResult<()> {
        self.settle_script
            .key(self.spend_key(month, Scope::Workspace(workspace)))
            .key(self.spend_key(month, Scope::Org(org)))
            .arg(held)
            .arg(cost)
            .invoke_async::<()>(&mut self.redis.clone())
            .await
            .map_err(unavailable)
    }

    pub async fn spent(&self, month: Timestamp, scope: Scope) -> AppResult<i64> {
        let spent: Option<i64> = redis::cmd("HGET")
            .arg(self.spend_key(month, scope))
            .arg("spent")
            .query_async(&mut self.redis.clone())
            .await
            .map_err(unavailable)?;
        Ok(spent.unwrap_or(0))
    }
}
