//! The gateway's counters in Redis, for several replicas: each replica counting
//! on its own would let N replicas spend N budgets. The same rules as the
//! in-process `Ledger` (fixed one-second and one-minute windows; holds of the
//! worst case, settled at the real cost), each check-and-hold one atomic Lua script.
//!
//! A month's spend lives in one hash per workspace and organization
//! (`spent`, `held`); a workspace's hash also counts each model's tokens
//! (`tokens:<model>`, `tokens_held:<model>`). A cold hash (a new month, or a
//! Redis that lost its data) is seeded from the database with HSETNX, so
//! replicas seeding at once agree.

use redis::{aio::ConnectionManager, Script};

use super::ledger::{
    check_rates, check_tokens, minute_of, window_of, Ask, Counts, Held, RateScope, Refusal, Room, Scope,
    Settlement, Verdict,
};
use crate::{
    error::{AppError, AppResult},
    ids::WorkspaceId,
    time::Timestamp,
};
/// Spend hashes outlive their month long enough for late settlements.
const MONTH_KEY_TTL_MS: i64 = 40 * 24 * 60 * 60 * 1000;

/// Counts one request and holds what the budgets leave of what it wants, or
/// refuses with nothing changed. Answers `{status, amount, in_flight, counts...}`:
/// 'ok' and the amount held; 'cold' (seed, then ask again); 'limited' (a rate
/// or token limit: `check_rates`/`check_tokens` say which, from the counts);
/// 'workspace' or 'org' (budgets) with the room free and held by calls in
/// flight under that limit (as `Hold::within` chooses it). Then the counts:
/// requests in each rate window, the model's tokens this minute and this month.
/// A limit of -1 is no limit.
/// KEYS: workspace second, workspace minute, key minute, workspace spend,
///       organization spend, the model's tokens this minute.
/// ARGV: workspace rps, workspace rpm, key rpm, workspace budget, organization
///       limit, want, least, tokens per minute, tokens per month, tokens, model.
const ADMIT: &str = r"
if redis.call('EXISTS', KEYS[4]) == 0 or redis.call('EXISTS', KEYS[5]) == 0 then return {'cold', 0, 0, 0, 0, 0, 0, 0} end
local rates = {tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])}
local counts = {0, 0, 0}
for i = 1, 3 do
  if rates[i] >= 0 then counts[i] = tonumber(redis.call('GET', KEYS[i]) or '0') end
end
local tpm, tokens_per_month, tokens = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local used_field, held_field = 'tokens:' .. ARGV[11], 'tokens_held:' .. ARGV[11]
local minute_tokens = 0
if tpm >= 0 then minute_tokens = tonumber(redis.call('GET', KEYS[6]) or '0') end
local month_tokens = tonumber(redis.call('HGET', KEYS[4], used_field) or '0')
  + tonumber(redis.call('HGET', KEYS[4], held_field) or '0')
local function answer(status, amount, in_flight)
  return {status, amount, in_flight, counts[1], counts[2], counts[3], minute_tokens, month_tokens}
end
for i = 1, 3 do
  if rates[i] >= 0 and counts[i] >= rates[i] then return answer('limited', 0, 0) end
end
if tpm >= 0 and minute_tokens + tokens > tpm then return answer('limited', 0, 0) end
if tokens_per_month >= 0 and month_tokens + tokens > tokens_per_month then return answer('limited', 0, 0) end
local want, least = tonumber(ARGV[6]), tonumber(ARGV[7])
local function room(key, limit)
  if limit < 0 then return nil end
  local held = tonumber(redis.call('HGET', key, 'held') or '0')
  return {limit - tonumber(redis.call('HGET', key, 'spent') or '0') - held, held}
end
local ws, org = room(KEYS[4], tonumber(ARGV[4])), room(KEYS[5], tonumber(ARGV[5]))
local held = want
if ws and ws[1] < held then held = ws[1] end
if org and org[1] < held then held = org[1] end
if held < least then
  local function short(r) return r and r[1] < least end
  local function spent(r) return short(r) and r[1] + r[2] < least end
  if spent(org) and not spent(ws) then return answer('org', org[1], org[2]) end
  if short(ws) then return answer('workspace', ws[1], ws[2]) end
  return answer('org', org[1], org[2])
end
local windows_ms = {2000, 120000, 120000}
for i = 1, 3 do
  if rates[i] >= 0 then
    counts[i] = redis.call('INCR', KEYS[i])
    if counts[i] == 1 then redis.call('PEXPIRE', KEYS[i], windows_ms[i]) end
  end
end
if tpm >= 0 then
  minute_tokens = redis.call('INCRBY', KEYS[6], tokens)
  redis.call('PEXPIRE', KEYS[6], 120000)
end
redis.call('HINCRBY', KEYS[4], held_field, tokens)
month_tokens = month_tokens + tokens
redis.call('HINCRBY', KEYS[4], 'held', string.format('%.0f', held))
redis.call('HINCRBY', KEYS[5], 'held', string.format('%.0f', held))
return answer('ok', held, 0)
";

/// Releases a hold of ARGV[1] and books a cost of ARGV[2] in both spend
/// hashes; releases ARGV[3] tokens held and books ARGV[4] used for the model
/// ARGV[5], in the month and, when ARGV[6] is 1, in the minute KEYS[3].
const SETTLE: &str = r"
for i = 1, 2 do
  if redis.call('HINCRBY', KEYS[i], 'held', -tonumber(ARGV[1])) < 0 then redis.call('HSET', KEYS[i], 'held', 0) end
  redis.call('HINCRBY', KEYS[i], 'spent', ARGV[2])
end
local held_field = 'tokens_held:' .. ARGV[5]
if redis.call('HINCRBY', KEYS[1], held_field, -tonumber(ARGV[3])) < 0 then redis.call('HSET', KEYS[1], held_field, 0) end
redis.call('HINCRBY', KEYS[1], 'tokens:' .. ARGV[5], ARGV[4])
if ARGV[6] == '1' and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('INCRBY', KEYS[3], tonumber(ARGV[4]) - tonumber(ARGV[3]))
end
";

/// Seeds a cold hash with the spend the database has recorded (ARGV[1]) and,
/// for a workspace, each model's tokens (ARGV[3..], model and tokens in turn),
/// unless another replica seeded it first.
const SEED: &str = r"
if redis.call('HSETNX', KEYS[1], 'spent', ARGV[1]) == 1 then
  for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], 'tokens:' .. ARGV[i], ARGV[i + 1]) end
end
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
    Decided(Verdict),
    /// No counters for this month yet: seed them, then ask again.
    Cold,
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

    /// Whether Redis answers a PING.
    pub async fn ping(&self) -> bool {
        let mut redis = self.redis.clone();
        redis::cmd("PING").query_async::<String>(&mut redis).await.is_ok()
    }

    fn spend_key(&self, month: Timestamp, scope: Scope) -> String {
        match scope {
            Scope::Org(id) => format!("{}:spend:{}:org:{id}", self.prefix, month.0),
            Scope::Workspace(id) => format!("{}:spend:{}:ws:{id}", self.prefix, month.0),
        }
    }

    fn rate_key(&self, scope: RateScope, now: Timestamp) -> String {
        let window = window_of(now, scope.window_ms());
        match scope {
            RateScope::WorkspaceSecond(id) => format!("{}:rps:{window}:ws:{id}", self.prefix),
            RateScope::Workspace(id) => format!("{}:rpm:{window}:ws:{id}", self.prefix),
            RateScope::Key(id) => format!("{}:rpm:{window}:key:{id}", self.prefix),
        }
    }

    fn minute_tokens_key(&self, workspace: WorkspaceId, model: &str, minute: i64) -> String {
        format!("{}:tpm:{minute}:ws:{workspace}:{model}", self.prefix)
    }

    /// `Ledger::admit` in Redis, atomically.
    pub async fn admit(&self, month: Timestamp, ask: &Ask<'_>, now: Timestamp) -> AppResult<Admission> {
        let limit = |limit: Option<i64>| limit.unwrap_or(-1);
        let mut script = self.admit_script.prepare_invoke();
        for (scope, _) in ask.rates {
            script.key(self.rate_key(scope, now));
        }
        script
            .key(self.spend_key(month, Scope::Workspace(ask.workspace)))
            .key(self.spend_key(month, Scope::Org(ask.org)))
            .key(self.minute_tokens_key(ask.workspace, ask.model, minute_of(now)));
        for (_, rate) in ask.rates {
            script.arg(limit(rate));
        }
        script
            .arg(limit(ask.workspace_budget))
            .arg(limit(ask.org_limit))
            .arg(ask.hold.want)
            .arg(ask.hold.least)
            .arg(limit(ask.token_limits.tokens_per_minute))
            .arg(limit(ask.token_limits.tokens_per_month))
            .arg(ask.tokens)
            .arg(ask.model);
        let answer: (String, i64, i64, i64, i64, i64, i64, i64) =
            script.invoke_async(&mut self.redis.clone()).await.map_err(unavailable)?;
        let (status, amount, in_flight, second, minute, key_minute, minute_tokens, month_tokens) = answer;
        let counts = Counts { requests: [second, minute, key_minute], minute_tokens, month_tokens };
        let decision = match status.as_str() {
            "cold" => return Ok(Admission::Cold),
            "ok" => Ok(Held { money: amount, tokens: ask.tokens }),
            "workspace" => Err(Refusal::WorkspaceBudget(Room { free: amount, in_flight })),
            "org" => Err(Refusal::OrgBudget(Room { free: amount, in_flight })),
            // The script and the ledger refuse by the same rules: these name the limit.
            _ => match check_rates(ask, &counts, now).and_then(|()| check_tokens(ask, &counts, now)) {
                Err(refusal) => Err(refusal),
                Ok(()) => {
                    tracing::error!(status, "the admission script refused a call the rules admit");
                    return Err(AppError::Internal);
                }
            },
        };
        Ok(Admission::Decided(Verdict { decision, counts }))
    }

    /// Seeds a scope's month with what the database recorded (and a
    /// workspace's tokens per model), unless a replica already did.
    pub async fn seed(
        &self,
        month: Timestamp,
        scope: Scope,
        recorded: i64,
        tokens: &[(String, i64)],
    ) -> AppResult<()> {
        let mut script = self.seed_script.key(self.spend_key(month, scope));
        script.arg(recorded).arg(MONTH_KEY_TTL_MS);
        for (model, used) in tokens {
            script.arg(model).arg(used);
        }
        script.invoke_async::<()>(&mut self.redis.clone()).await.map_err(unavailable)
    }

    /// Releases a call's holds and books what it cost and used.
    pub async fn settle(&self, month: Timestamp, settlement: &Settlement) -> AppResult<()> {
        let minute = settlement.tokens_minute.unwrap_or_default();
        self.settle_script
            .key(self.spend_key(month, Scope::Workspace(settlement.workspace)))
            .key(self.spend_key(month, Scope::Org(settlement.org)))
            .key(self.minute_tokens_key(settlement.workspace, &settlement.model, minute))
            .arg(settlement.held.money)
            .arg(settlement.cost)
            .arg(settlement.held.tokens)
            .arg(settlement.tokens)
            .arg(&settlement.model)
            .arg(i32::from(settlement.tokens_minute.is_some()))
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
