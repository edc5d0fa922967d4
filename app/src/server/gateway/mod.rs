//! The gateway's rules: who may call which model, within which limits, and what
//! it costs. The HTTP adapter (in the server crate) reads the request, asks
//! `authorize` and `reserve` here, forwards to a provider, then settles.
//!
//! Nothing here touches the database on a request: keys and limits come from a
//! snapshot reloaded within 500 ms of a change; counters live in this process's
//! `Ledger`, or in Redis when several replicas share them; usage goes to the
//! meter's queue.

pub mod ledger;
pub mod meter;
pub mod shared;
pub mod snapshot;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, RwLock,
    },
    time::Duration,
};

use tokio::sync::{mpsc, oneshot, Notify};

use self::{
    ledger::{Ledger, RateScope, Refusal, Scope},
    meter::{MeterMessage, UsageEvent},
    shared::{Admission, SharedCounters},
    snapshot::Snapshot,
};
use super::{admin_keys, billing::month_start, db::Db, secret_key};
use crate::{
    error::{AppError, AppResult},
    ids::{ApiKeyId, OrgId, WorkspaceId},
    model::CatalogueModel,
    money::token_cost,
    time::Timestamp,
};

/// How often each replica checks whether keys, limits or prices changed.
pub const REFRESH_EVERY: Duration = Duration::from_millis(500);
/// The output tokens reserved when a request names no `max_tokens`.
pub const DEFAULT_MAX_TOKENS: i64 = 4_096;
/// The most output tokens a request may ask for (and so reserve).
pub const MAX_TOKENS_CAP: i64 = 131_072;

/// A refusal, in the OpenAI/Mistral error shape: status, `code`, message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub retry_after_secs: Option<u64>,
}

impl GatewayError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after_secs: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", message)
    }

    /// The OpenAI `type` of the error.
    pub fn kind(&self) -> &'static str {
        match self.status {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            500.. => "api_error",
            _ => "invalid_request_error",
        }
    }
}

impl From<Refusal> for GatewayError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::RateLimited { scope, retry_after_secs } => Self {
                retry_after_secs: Some(retry_after_secs),
                ..Self::new(
                    429,
                    "rate_limit_exceeded",
                    match scope {
                        RateScope::Workspace(_) => "This workspace's requests-per-minute limit is reached.",
                        RateScope::Key(_) => "This API key's requests-per-minute limit is reached.",
                    },
                )
            },
            Refusal::WorkspaceBudget => Self::new(
                429,
                "workspace_spend_limit_exceeded",
                "This workspace's monthly budget does not cover this request.",
            ),
            Refusal::OrgBudget => Self::new(
                429,
                "organization_spend_limit_exceeded",
                "The organization's monthly spending limit does not cover this request.",
            ),
        }
    }
}

/// The workspace key a request came with, once accepted.
#[derive(Clone, Debug)]
pub struct Caller {
    pub key_id: ApiKeyId,
    pub org_id: OrgId,
    pub workspace_id: WorkspaceId,
    allowed_models: Option<Vec<String>>,
    workspace_models: Option<Vec<String>>,
    key_requests_per_minute: Option<i64>,
    workspace_requests_per_minute: Option<i64>,
    workspace_budget: Option<i64>,
    org_limit: Option<i64>,
}

impl Caller {
    fn may_use(&self, model: &str) -> bool {
        let allows = |list: &Option<Vec<String>>| list.as_ref().is_none_or(|l| l.iter().any(|m| m == model));
        allows(&self.allowed_models) && allows(&self.workspace_models)
    }
}

/// Tokens a request used (or, for a cut stream, had used when it was cut).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: i64,
    pub output_tokens: i64,
}

/// An OpenAI-compatible API the gateway forwards to (Mistral's, vLLM, Ollama...).
#[derive(Clone)]
pub struct Upstream {
    /// Up to and including `/v1`, e.g. `https://api.mistral.ai/v1`.
    pub base_url: String,
    pub api_key: String,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream").field("base_url", &self.base_url).field("api_key", &"***").finish()
    }
}

pub struct Gateway {
    db: Db,
    snapshot: RwLock<Arc<Snapshot>>,
    counters: Counters,
    meter: mpsc::Sender<MeterMessage>,
}

/// Where requests and money are counted.
enum Counters {
    /// One replica: in this process.
    Local(Mutex<Ledger>),
    /// Several replicas: in Redis. Settlements run as tasks; `pending` counts
    /// them so `flush` can wait for them.
    Shared { redis: SharedCounters, pending: AtomicUsize, settled: Notify },
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

impl Gateway {
    /// Loads the snapshot and this month's spend, and starts the refresher and
    /// the meter. With `shared`, counters live in Redis instead of this process.
    pub async fn start(db: Db, shared: Option<SharedCounters>) -> AppResult<Arc<Self>> {
        let snapshot = Arc::new(Snapshot::load(&db).await?);
        let counters = match shared {
            Some(redis) => Counters::Shared { redis, pending: AtomicUsize::new(0), settled: Notify::new() },
            None => {
                let month = month_start(Timestamp::now());
                Counters::Local(Mutex::new(Ledger::new(month, month_spend(&db, month).await?)))
            }
        };
        let (meter, queue) = mpsc::channel(meter::QUEUE_CAPACITY);
        let gateway = Arc::new(Self { db: db.clone(), snapshot: RwLock::new(snapshot), counters, meter });
        let weak = Arc::downgrade(&gateway);
        let limits_of: meter::LimitsOf = Box::new(move |org, workspace| match weak.upgrade() {
            Some(gateway) => {
                let snapshot = gateway.current();
                let org_limit = snapshot.orgs.get(&org).and_then(|o| o.monthly_limit_micros);
                (org_limit, snapshot.workspaces.get(&workspace).and_then(|w| w.monthly_budget_micros))
            }
            None => (None, None),
        });
        tokio::spawn(meter::run(db, queue, limits_of));
        tokio::spawn(refresh_forever(Arc::downgrade(&gateway)));
        Ok(gateway)
    }

    fn current(&self) -> Arc<Snapshot> {
        self.snapshot.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Reloads the snapshot now (the refresher does it within 500 ms of a change).
    pub async fn refresh(&self) -> AppResult<()> {
        let fresh = Arc::new(Snapshot::load(&self.db).await?);
        *self.snapshot.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        Ok(())
    }

    /// Waits until every settlement and usage event so far is written.
    pub async fn flush(&self) {
        if let Counters::Shared { pending, settled, .. } = &self.counters {
            loop {
                let notified = settled.notified();
                if pending.load(Ordering::Acquire) == 0 {
                    break;
                }
                notified.await;
            }
        }
        let (done, written) = oneshot::channel();
        if self.meter.send(MeterMessage::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }

    /// Checks the `Authorization` bearer token: a working workspace key of an
    /// organization whose billing is active.
    pub fn authenticate(&self, bearer: Option<&str>, now: Timestamp) -> Result<Caller, GatewayError> {
        let unknown = || {
            GatewayError::new(
                401,
                "invalid_api_key",
                "Unknown API key. Send a workspace API key as `Authorization: Bearer <key>`.",
            )
        };
        let presented = bearer.map(str::trim).filter(|k| !k.is_empty()).ok_or_else(unknown)?;
        if secret_key::parse(admin_keys::PREFIX, presented).is_some() {
            return Err(GatewayError::new(
                401,
                "admin_key_not_allowed",
                "Admin API keys administer an organization and cannot call models; use a workspace API key.",
            ));
        }
        let (public_id, secret) =
            secret_key::parse(super::api_keys::PREFIX, presented).ok_or_else(unknown)?;
        let snapshot = self.current();
        let key = snapshot.keys.get(public_id).ok_or_else(unknown)?;
        if !secret_key::secret_matches(secret, &key.secret_sha256) {
            return Err(unknown());
        }
        if key.revoked {
            return Err(GatewayError::new(401, "api_key_revoked", "This API key has been revoked."));
        }
        if key.expires_at.is_some_and(|at| at <= now) {
            return Err(GatewayError::new(403, "api_key_expired", "This API key has expired."));
        }
        let workspace = snapshot.workspaces.get(&key.workspace_id).ok_or_else(unknown)?;
        if workspace.archived {
            return Err(GatewayError::new(
                403,
                "workspace_archived",
                "This API key's workspace is archived.",
            ));
        }
        let org = snapshot.orgs.get(&key.org_id).ok_or_else(unknown)?;
        if !org.billing_active {
            return Err(GatewayError::new(
                403,
                "billing_inactive",
                "Billing is not active for this organization: an Admin or Billing user must add a payment method.",
            ));
        }
        Ok(Caller {
            key_id: key.id,
            org_id: key.org_id,
            workspace_id: key.workspace_id,
            allowed_models: key.allowed_models.clone(),
            workspace_models: workspace.allowed_models.clone(),
            key_requests_per_minute: key.requests_per_minute,
            workspace_requests_per_minute: workspace.requests_per_minute,
            workspace_budget: workspace.monthly_budget_micros,
            org_limit: org.monthly_limit_micros,
        })
    }

    /// The catalogue models this caller may use, by id.
    pub fn models_for(&self, caller: &Caller) -> Vec<CatalogueModel> {
        let mut models: Vec<CatalogueModel> =
            self.current().models.values().filter(|m| caller.may_use(&m.id)).cloned().collect();
        models.sort_by(|a, b| a.id.cmp(&b.id));
        models
    }

    /// Admits one request for `model`: the model is known and allowed, the
    /// workspace is under its requests-per-minute limit, and the worst case
    /// (every input byte a token, and `max_output_tokens`) fits the budgets.
    /// The hold is released or settled by the returned `Reservation`.
    pub async fn admit(
        self: &Arc<Self>,
        caller: &Caller,
        model: &str,
        worst_input_tokens: i64,
        max_output_tokens: i64,
        now: Timestamp,
    ) -> Result<Reservation, GatewayError> {
        let snapshot = self.current();
        let price = snapshot.models.get(model).cloned().ok_or_else(|| {
            GatewayError::new(
                404,
                "model_not_found",
                format!("The model {model} does not exist. GET /v1/models lists yours."),
            )
        })?;
        if !caller.may_use(model) {
            return Err(GatewayError::new(
                403,
                "model_not_allowed",
                format!("This API key may not use {model}."),
            ));
        }
        let worst = token_cost(worst_input_tokens, price.input_micros_per_mtok)
            + token_cost(max_output_tokens, price.output_micros_per_mtok);
        let month = month_start(now);
        let admitted = match &self.counters {
            Counters::Local(ledger) => {
                let mut ledger = ledger.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                ledger.roll_over(month);
                let rates = [
                    (RateScope::Workspace(caller.workspace_id), caller.workspace_requests_per_minute),
                    (RateScope::Key(caller.key_id), caller.key_requests_per_minute),
                ];
                ledger.admit(
                    &rates,
                    (caller.org_id, caller.org_limit),
                    (caller.workspace_id, caller.workspace_budget),
                    worst,
                    now,
                )
            }
            Counters::Shared { redis, .. } => self.admit_shared(redis, caller, worst, month, now).await?,
        };
        if let Err(refusal) = admitted {
            let budget_of = match refusal {
                Refusal::WorkspaceBudget => Some(Some(caller.workspace_id)),
                Refusal::OrgBudget => Some(None),
                Refusal::RateLimited { .. } => None,
            };
            if let Some(workspace_id) = budget_of {
                // The alert is written off the request path; a full queue only delays it to the next refusal.
                let _ =
                    self.meter.try_send(MeterMessage::BudgetReached { org_id: caller.org_id, workspace_id });
            }
            return Err(refusal.into());
        }
        Ok(Reservation {
            gateway: self.clone(),
            caller: caller.clone(),
            price,
            held: worst,
            month,
            started: now,
            settled: false,
        })
    }

    /// `admit`'s check and hold in Redis; a month not counted there yet is
    /// first seeded with the spend the database recorded.
    async fn admit_shared(
        &self,
        redis: &SharedCounters,
        caller: &Caller,
        worst: i64,
        month: Timestamp,
        now: Timestamp,
    ) -> Result<Result<(), Refusal>, GatewayError> {
        let unavailable = |_| {
            GatewayError::new(
                503,
                "limits_unavailable",
                "Limits cannot be checked right now; try again shortly.",
            )
        };
        for _ in 0..2 {
            let admission = redis
                .admit(
                    month,
                    (caller.org_id, caller.org_limit),
                    (caller.workspace_id, caller.workspace_requests_per_minute, caller.workspace_budget),
                    (caller.key_id, caller.key_requests_per_minute),
                    worst,
                    now,
                )
                .await
                .map_err(unavailable)?;
            match admission {
                Admission::Admitted => return Ok(Ok(())),
                Admission::Refused(refusal) => return Ok(Err(refusal)),
                Admission::Cold => {
                    for scope in [Scope::Org(caller.org_id), Scope::Workspace(caller.workspace_id)] {
                        let recorded = recorded_spend(&self.db, month, scope).await.map_err(unavailable)?;
                        redis.seed(month, scope, recorded).await.map_err(unavailable)?;
                    }
                }
            }
        }
        Err(unavailable(AppError::Internal))
    }

    /// This month's spend of a scope, as the gateway counts it.
    pub async fn spent(&self, scope: Scope) -> AppResult<i64> {
        match &self.counters {
            Counters::Local(ledger) => {
                Ok(ledger.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).spent(scope))
            }
            Counters::Shared { redis, .. } => redis.spent(month_start(Timestamp::now()), scope).await,
        }
    }

    /// Releases a hold and books `cost`: at once in this process, or in a task for Redis.
    fn settle_counters(self: &Arc<Self>, caller: &Caller, month: Timestamp, held: i64, cost: i64) {
        match &self.counters {
            Counters::Local(ledger) => ledger.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).settle(
                caller.org_id,
                caller.workspace_id,
                held,
                cost,
            ),
            Counters::Shared { redis, pending, .. } => {
                pending.fetch_add(1, Ordering::AcqRel);
                let (redis, org, workspace) = (redis.clone(), caller.org_id, caller.workspace_id);
                let gateway = self.clone();
                tokio::spawn(async move {
                    // A lost settlement would pin its hold until the month ends: retry a while.
                    let mut attempt = 0;
                    while let Err(error) = redis.settle(month, org, workspace, held, cost).await {
                        attempt += 1;
                        if attempt == 5 {
                            tracing::error!(%error, %workspace, held, cost, "a settlement was lost; its hold stays");
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                    }
                    if let Counters::Shared { pending, settled, .. } = &gateway.counters {
                        pending.fetch_sub(1, Ordering::AcqRel);
                        settled.notify_waiters();
                    }
                });
            }
        }
    }
}

/// A request's hold on the budgets. `settle` books the real cost and meters the
/// request; dropped unsettled (the handler failed before a provider answered),
/// it releases the hold and bills nothing.
pub struct Reservation {
    gateway: Arc<Gateway>,
    caller: Caller,
    price: CatalogueModel,
    held: i64,
    /// The month whose budgets hold it.
    month: Timestamp,
    started: Timestamp,
    settled: bool,
}

impl Reservation {
    pub fn model(&self) -> &str {
        &self.price.id
    }

    /// Books `usage` (its cost never above the hold: the hold was the worst case)
    /// and queues the usage event.
    pub fn settle(mut self, usage: Usage, status: u16) -> i64 {
        self.settled = true;
        let cost = (token_cost(usage.input_tokens, self.price.input_micros_per_mtok)
            + token_cost(usage.output_tokens, self.price.output_micros_per_mtok))
        .min(self.held);
        let gateway = &self.gateway;
        gateway.settle_counters(&self.caller, self.month, self.held, cost);
        let now = Timestamp::now();
        let event = UsageEvent {
            at: now,
            org_id: self.caller.org_id,
            workspace_id: self.caller.workspace_id,
            key_id: self.caller.key_id,
            model: self.price.id.clone(),
            status,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cost_micros: cost,
            latency_ms: now.0 - self.started.0,
        };
        if let Err(mpsc::error::TrySendError::Full(message)) =
            gateway.meter.try_send(MeterMessage::Usage(event))
        {
            // The queue is full: wait for room rather than lose the event.
            let meter = gateway.meter.clone();
            tokio::spawn(async move {
                let _ = meter.send(message).await;
            });
        }
        cost
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.settled {
            self.gateway.settle_counters(&self.caller, self.month, self.held, 0);
        }
    }
}

async fn refresh_forever(gateway: std::sync::Weak<Gateway>) {
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    loop {
        tick.tick().await;
        let Some(gateway) = gateway.upgrade() else { return };
        let changed = match Snapshot::latest_version(&gateway.db).await {
            Ok(version) => version != gateway.current().version,
            Err(error) => {
                tracing::warn!(%error, "gateway configuration version not read; serving the previous snapshot");
                continue;
            }
        };
        if changed {
            if let Err(error) = gateway.refresh().await {
                tracing::warn!(%error, "gateway snapshot not refreshed; serving the previous one");
            }
        }
    }
}

/// The spend the database recorded for one scope since `month` began.
async fn recorded_spend(db: &Db, month: Timestamp, scope: Scope) -> AppResult<i64> {
    let (column, id) = match scope {
        Scope::Org(id) => ("org_id", id.to_string()),
        Scope::Workspace(id) => ("workspace_id", id.to_string()),
    };
    let (spent,): (Option<i64>,) = sqlx::query_as(&format!(
        "SELECT CAST(SUM(cost_micros) AS BIGINT) FROM usage_hourly WHERE hour_start >= $1 AND {column} = $2"
    ))
    .bind(month)
    .bind(id)
    .fetch_one(db.pool())
    .await?;
    Ok(spent.unwrap_or(0))
}

/// This month's recorded spend per workspace and organization.
async fn month_spend(db: &Db, month: Timestamp) -> AppResult<HashMap<Scope, i64>> {
    let rows: Vec<(OrgId, WorkspaceId, i64)> = sqlx::query_as(
        "SELECT org_id, workspace_id, CAST(SUM(cost_micros) AS BIGINT) FROM usage_hourly
         WHERE hour_start >= $1 GROUP BY org_id, workspace_id",
    )
    .bind(month)
    .fetch_all(db.pool())
    .await?;
    let mut spent = HashMap::new();
    for (org, workspace, cost) in rows {
        *spent.entry(Scope::Org(org)).or_default() += cost;
        *spent.entry(Scope::Workspace(workspace)).or_default() += cost;
    }
    Ok(spent)
}
