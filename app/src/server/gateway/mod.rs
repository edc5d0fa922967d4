//! The gateway's rules: who may call which model, within which limits, and what
//! it costs. The HTTP adapter (in the server crate) asks `authenticate` and
//! `admit` here, forwards what `admit` returns to a provider, then settles the
//! `Reservation` with how the request ended.
//!
//! Nothing here touches the database on a request: keys and limits come from a
//! snapshot brought up to date within 500 ms of a change; counters live in this process's
//! `Ledger`, or in Redis when several replicas share them; usage goes to the
//! meter's queue.

pub mod call;
pub mod ledger;
pub mod meter;
pub mod shared;
pub mod snapshot;
pub mod spool;

use std::{
    sync::{
        atomic::{AtomicI64, AtomicUsize, Ordering},
        Arc, Mutex, RwLock, RwLockReadGuard,
    },
    time::Duration,
};

use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot, Notify};

pub use self::{
    call::{Call, Endpoint, Quote, DEFAULT_MAX_TOKENS, MAX_TOKENS_CAP},
    ledger::{Headroom, Quota},
};
use self::{
    ledger::{
        headroom, Ask, Held, Hold, Ledger, RateScope, Refusal, Scope, Settlement, TokenWindow, Verdict,
    },
    meter::{MeterMessage, UsageEvent},
    shared::{Admission, SharedCounters},
    snapshot::{Changes, Snapshot},
    spool::Spool,
};
use super::{admin_keys, billing::month_start, db::Db, observability, secret_key};
use crate::{
    error::{AppError, AppResult},
    ids::{ApiKeyId, OrgId, WorkspaceId},
    model::CatalogueModel,
    time::Timestamp,
};

/// How often each replica checks whether keys, limits or prices changed.
pub const REFRESH_EVERY: Duration = Duration::from_millis(500);
/// How long a call may wait for calls in flight to give back what they hold,
/// when only their holds stand between it and the budget. Holds are worst
/// cases, so most of them come back: waiting admits what refusing would not.
pub const HELD_UP_WAIT: Duration = Duration::from_secs(5);
/// How often a held-up call looks again (settlements on other replicas are not announced here).
const HELD_UP_RECHECK: Duration = Duration::from_millis(20);

/// A refusal, in the OpenAI/Mistral error shape: status, `code`, message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub retry_after_secs: Option<u64>,
    /// For a budget or token refusal: the `max_tokens` that still fits (0: not even the input).
    pub affordable_max_tokens: Option<i64>,
    /// The caller's tightest limits, for the `x-ratelimit-*` headers (boxed: errors stay small).
    pub headroom: Option<Box<Headroom>>,
}

impl GatewayError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
            affordable_max_tokens: None,
            headroom: None,
        }
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
                ..match scope {
                    RateScope::WorkspaceSecond(_) => Self::new(
                        429,
                        "requests_per_second_exceeded",
                        "This workspace's requests-per-second limit is reached.",
                    ),
                    RateScope::Workspace(_) => Self::new(
                        429,
                        "rate_limit_exceeded",
                        "This workspace's requests-per-minute limit is reached.",
                    ),
                    RateScope::Key(_) => Self::new(
                        429,
                        "rate_limit_exceeded",
                        "This API key's requests-per-minute limit is reached.",
                    ),
                }
            },
            Refusal::Tokens { window, limit, left, retry_after_secs } => {
                let (code, per) = match window {
                    TokenWindow::Minute => ("tokens_per_minute_exceeded", "minute"),
                    TokenWindow::Month => ("tokens_per_month_exceeded", "month"),
                };
                Self {
                    retry_after_secs,
                    ..Self::new(
                        429,
                        code,
                        format!(
                            "This workspace may use {limit} tokens of this model per {per}; {left} are left, \
                             fewer than this request's input and max_tokens may use."
                        ),
                    )
                }
            }
            Refusal::WorkspaceBudget(_) => Self::new(
                429,
                "workspace_spend_limit_exceeded",
                "This workspace's monthly budget does not cover this request.",
            ),
            Refusal::OrgBudget(_) => Self::new(
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
    workspace_requests_per_second: Option<i64>,
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

/// Tokens a request used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: i64,
    pub output_tokens: i64,
}

/// How a forwarded request ended, as its usage row says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The provider answered and the caller took the answer.
    Ok,
    /// The caller hung up; the provider's answer was still waited for.
    ClientClosed,
    /// The provider did not finish within the upstream timeout.
    UpstreamTimeout,
    /// The provider answered with an error, or broke off.
    UpstreamError,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::ClientClosed => "client_closed",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::UpstreamError => "upstream_error",
        }
    }
}

/// What a forwarded request used, as far as the gateway can know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metered {
    /// The provider's own count.
    Reported(Usage),
    /// The provider answered without a usable count: Chancery's estimate.
    Estimated(Usage),
    /// Nothing to count from (no answer, or one cut off): the whole hold is billed.
    Unknown,
}

/// How a forwarded request ended: what it used, and what the caller was told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ending {
    pub metered: Metered,
    pub outcome: Outcome,
    /// The HTTP status the caller got (499 when they hung up first).
    pub status: u16,
    /// The provider's HTTP status, when it answered.
    pub upstream_status: Option<u16>,
}

/// An OpenAI-compatible API the gateway forwards to (Mistral's, vLLM, Ollama...).
#[derive(Clone)]
pub struct Upstream {
    /// Up to and including `/v1`, e.g. `https://api.mistral.ai/v1`.
    pub base_url: String,
    /// `base_url` and each endpoint's path, parsed once rather than on every
    /// call (`None`: `base_url` is not a URL).
    pub endpoint_urls: Option<Arc<[url::Url; 2]>>,
    pub api_key: String,
    /// The longest a whole answer may take.
    pub timeout: Duration,
    /// The longest a streamed answer may take, first byte to last.
    pub stream_timeout: Duration,
}

impl Upstream {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
    pub const DEFAULT_STREAM_TIMEOUT: Duration = Duration::from_secs(600);

    /// An upstream with the default timeouts.
    pub fn new(base_url: &str, api_key: &str) -> Self {
        let base_url = base_url.trim_end_matches('/').to_string();
        let url = |endpoint: Endpoint| url::Url::parse(&format!("{base_url}/{}", endpoint.path())).ok();
        let endpoint_urls = url(Endpoint::ChatCompletions)
            .zip(url(Endpoint::Embeddings))
            .map(|(chat, embeddings)| Arc::new([chat, embeddings]));
        Self {
            base_url,
            endpoint_urls,
            api_key: api_key.to_string(),
            timeout: Self::DEFAULT_TIMEOUT,
            stream_timeout: Self::DEFAULT_STREAM_TIMEOUT,
        }
    }
}

impl Upstream {
    /// Where `endpoint`'s calls go.
    pub fn url(&self, endpoint: Endpoint) -> Option<&url::Url> {
        let urls = self.endpoint_urls.as_deref()?;
        Some(match endpoint {
            Endpoint::ChatCompletions => &urls[0],
            Endpoint::Embeddings => &urls[1],
        })
    }
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("base_url", &self.base_url)
            .field("api_key", &"***")
            .field("timeout", &self.timeout)
            .field("stream_timeout", &self.stream_timeout)
            .finish()
    }
}

/// Where and how much usage waits before the database has it.
#[derive(Clone, Debug)]
pub struct Metering {
    /// The spool's directory: one per running process.
    pub spool_dir: std::path::PathBuf,
    /// Usage events held in memory for the database; beyond, the spool alone keeps them.
    pub queue: usize,
}

pub struct Gateway {
    db: Db,
    snapshot: RwLock<Snapshot>,
    /// One refresh at a time, so changes are applied in order.
    refreshing: tokio::sync::Mutex<()>,
    counters: Counters,
    meter: mpsc::Sender<MeterMessage>,
    spool: Arc<Spool>,
    /// Calls admitted and not yet settled, and settlements not yet counted in
    /// Redis: what `flush` waits for.
    unsettled: Unsettled,
    /// Announces each settlement of this replica to held-up calls.
    settled: Notify,
    /// When the snapshot was last found up to date (Unix ms): how stale it may be.
    refreshed_at: AtomicI64,
}

/// Where requests and money are counted.
enum Counters {
    /// One replica: in this process.
    Local(Mutex<Ledger>),
    /// Several replicas: in Redis (settlements run as tasks).
    Shared(SharedCounters),
}

/// A count of work under way that can be waited out.
#[derive(Default)]
struct Unsettled {
    count: AtomicUsize,
    none_left: Notify,
}

impl Unsettled {
    fn begin(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    fn end(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.none_left.notify_waiters();
        }
    }

    async fn none_left(&self) {
        loop {
            let notified = self.none_left.notified();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

impl Gateway {
    /// Writes what an earlier process left in the usage spool, loads the
    /// snapshot and this month's spend, and starts the refresher and the meter.
    /// With `shared`, counters live in Redis instead of this process.
    pub async fn start(db: Db, shared: Option<SharedCounters>, metering: &Metering) -> AppResult<Arc<Self>> {
        let spool_dir = &metering.spool_dir;
        let (spool, leftovers) = Spool::open(spool_dir).map_err(|error| {
            tracing::error!(%error, dir = %spool_dir.display(), "the usage spool cannot be opened");
            AppError::Internal
        })?;
        if !leftovers.events.is_empty() {
            let events = leftovers.events.len();
            let no_alerts: meter::LimitsOf = Box::new(|_, _| (None, None));
            for chunk in leftovers.events.chunks(500) {
                meter::Batch::replayed(chunk.to_vec()).write(&db, &no_alerts, &spool).await?;
            }
            tracing::info!(events, "usage an earlier process had not written is replayed from the spool");
        }
        spool.forget(leftovers);
        let spool = Arc::new(spool);
        let snapshot = Snapshot::load(&db, Timestamp::now()).await?;
        let counters = match shared {
            Some(redis) => Counters::Shared(redis),
            None => {
                let month = month_start(Timestamp::now());
                let (spent, tokens) = month_spend(&db, month).await?;
                Counters::Local(Mutex::new(Ledger::new(month, spent, tokens)))
            }
        };
        let (meter, queue) = mpsc::channel(metering.queue.max(1));
        let gateway = Arc::new(Self {
            db: db.clone(),
            snapshot: RwLock::new(snapshot),
            refreshing: tokio::sync::Mutex::new(()),
            counters,
            meter,
            spool: spool.clone(),
            unsettled: Unsettled::default(),
            settled: Notify::new(),
            refreshed_at: AtomicI64::new(Timestamp::now().0),
        });
        let weak = Arc::downgrade(&gateway);
        let limits_of: meter::LimitsOf = Box::new(move |org, workspace| match weak.upgrade() {
            Some(gateway) => {
                let snapshot = gateway.snapshot();
                let org_limit = snapshot.orgs.get(&org).and_then(|o| o.monthly_limit_micros);
                (org_limit, snapshot.workspaces.get(&workspace).and_then(|w| w.monthly_budget_micros))
            }
            None => (None, None),
        });
        tokio::spawn(meter::run(db, queue, limits_of, spool));
        tokio::spawn(refresh_forever(Arc::downgrade(&gateway)));
        Ok(gateway)
    }

    /// The snapshot, read-locked: hold it for lookups only, never across an await.
    pub fn snapshot(&self) -> RwLockReadGuard<'_, Snapshot> {
        self.snapshot.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Brings the snapshot up to date now (the refresher does it every 500 ms):
    /// applies the changes logged since its version, or reloads it whole when
    /// the log no longer reaches back that far.
    pub async fn refresh(&self) -> AppResult<()> {
        let _one_at_a_time = self.refreshing.lock().await;
        let since = self.snapshot().version;
        let now = Timestamp::now();
        let started = std::time::Instant::now();
        let version = match Changes::since(&self.db, since, now).await? {
            Some(changes) if changes.version == since => {
                self.refreshed_at.store(now.0, Ordering::Release);
                return Ok(());
            }
            Some(changes) => {
                let version = changes.version;
                self.snapshot.write().unwrap_or_else(|poisoned| poisoned.into_inner()).apply(changes);
                version
            }
            None => {
                let fresh = Snapshot::load(&self.db, now).await?;
                let version = fresh.version;
                *self.snapshot.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
                version
            }
        };
        Changes::prune(&self.db, version).await?;
        self.refreshed_at.store(now.0, Ordering::Release);
        metrics::histogram!(observability::SNAPSHOT_RELOAD).record(started.elapsed());
        Ok(())
    }

    /// The change-log version the snapshot is at.
    pub fn snapshot_version(&self) -> i64 {
        self.snapshot().version
    }

    /// Calls admitted whose holds are not settled yet (and settlements not yet counted in Redis).
    pub fn calls_in_flight(&self) -> usize {
        self.unsettled.count.load(Ordering::Acquire)
    }

    /// Usage events waiting in memory for the database.
    pub fn meter_queue_depth(&self) -> usize {
        self.meter.max_capacity() - self.meter.capacity()
    }

    /// How long ago the snapshot was last found up to date.
    pub fn snapshot_age(&self, now: Timestamp) -> Duration {
        Duration::from_millis((now.0 - self.refreshed_at.load(Ordering::Acquire)).max(0) as u64)
    }

    /// Whether the shared counters answer: `None` when this replica counts alone.
    pub async fn shared_counters_answer(&self) -> Option<bool> {
        match &self.counters {
            Counters::Local(_) => None,
            Counters::Shared(redis) => Some(redis.ping().await),
        }
    }

    /// Waits until every call admitted so far is settled (those still at the
    /// provider included) and its usage written.
    pub async fn flush(&self) {
        self.unsettled.none_left().await;
        let (done, written) = oneshot::channel();
        if self.meter.send(MeterMessage::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }

    /// At shutdown, once no new call comes: waits for the calls under way to
    /// settle and their usage to be written, then empties the spool.
    pub async fn shut_down(&self) {
        self.flush().await;
        self.spool.close();
    }

    /// Spools a usage event, then queues it for the database if there is room.
    fn record(&self, event: UsageEvent) {
        let segment = match self.spool.append(&event) {
            Ok(segment) => Some(segment),
            Err(error) => {
                tracing::error!(%error, "a usage event could not be spooled; it is written from memory only");
                None
            }
        };
        if let Err(mpsc::error::TrySendError::Full(_)) =
            self.meter.try_send(MeterMessage::Usage { event, segment })
        {
            // The queue is full: the spool alone keeps it, and the meter reads it back.
            match segment {
                Some(segment) => self.spool.spill(segment),
                None => tracing::error!("a usage event neither spooled nor queued is lost"),
            }
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
        let snapshot = self.snapshot();
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
            workspace_requests_per_second: workspace.requests_per_second,
            workspace_requests_per_minute: workspace.requests_per_minute,
            workspace_budget: workspace.monthly_budget_micros,
            org_limit: org.monthly_limit_micros,
        })
    }

    /// The catalogue models this caller may use, by id.
    pub fn models_for(&self, caller: &Caller) -> Vec<CatalogueModel> {
        let mut models: Vec<CatalogueModel> =
            self.snapshot().models.values().filter(|m| caller.may_use(&m.id)).cloned().collect();
        models.sort_by(|a, b| a.id.cmp(&b.id));
        models
    }

    /// Admits one call: the model is known, serves the call's endpoint and is
    /// allowed; the workspace and key are under their request-rate limits;
    /// the call's worst case in tokens fits under the model's token limits;
    /// and the budgets hold the call's worst case, or, when they cannot, as
    /// much as they have left down to the clamp floor, with `max_tokens`
    /// lowered to what that covers. A call held up only by the holds of calls
    /// in flight waits for them (up to `HELD_UP_WAIT`) before it is refused.
    /// The hold is settled by the `Reservation`.
    pub async fn admit(
        self: &Arc<Self>,
        caller: &Caller,
        call: Call,
        now: Timestamp,
    ) -> Result<Admitted, GatewayError> {
        let (model, token_limits) = {
            let snapshot = self.snapshot();
            let model = snapshot.models.get(&call.model).cloned();
            let workspace = snapshot.workspaces.get(&caller.workspace_id);
            let token_limits =
                workspace.and_then(|w| w.token_limits.get(&call.model).copied()).unwrap_or_default();
            (model, token_limits)
        };
        let model = model.ok_or_else(|| {
            GatewayError::new(
                404,
                "model_not_found",
                format!("The model {} does not exist. GET /v1/models lists yours.", call.model),
            )
        })?;
        if !caller.may_use(&model.id) {
            return Err(GatewayError::new(
                403,
                "model_not_allowed",
                format!("This API key may not use {}.", model.id),
            ));
        }
        let quote = call.quote(&model)?;
        let ask = Ask {
            org: caller.org_id,
            org_limit: caller.org_limit,
            workspace: caller.workspace_id,
            workspace_budget: caller.workspace_budget,
            rates: [
                (RateScope::WorkspaceSecond(caller.workspace_id), caller.workspace_requests_per_second),
                (RateScope::Workspace(caller.workspace_id), caller.workspace_requests_per_minute),
                (RateScope::Key(caller.key_id), caller.key_requests_per_minute),
            ],
            model: &model.id,
            token_limits,
            tokens: quote.tokens(quote.max_tokens),
            hold: Hold { want: quote.wanted(), least: quote.least() },
        };
        let month = month_start(now);
        let held_up_until = tokio::time::Instant::now() + HELD_UP_WAIT;
        let (held, counts) = loop {
            let verdict = self.hold(&ask, month, now).await?;
            match verdict.decision {
                Ok(held) => break (held, verdict.counts),
                Err(refusal)
                    if refusal.may_lift(ask.hold.least) && tokio::time::Instant::now() < held_up_until =>
                {
                    let _ = tokio::time::timeout(HELD_UP_RECHECK, self.settled.notified()).await;
                }
                Err(refusal) => {
                    let mut error = self.refused(caller, &quote, refusal);
                    error.headroom = Some(Box::new(headroom(&ask, &verdict.counts, now)));
                    return Err(error);
                }
            }
        };
        let max_tokens = if held.money >= ask.hold.want {
            quote.max_tokens
        } else {
            quote.affordable_max_tokens(held.money)
        };
        let clamped_to = (max_tokens < quote.max_tokens).then_some(max_tokens);
        let headroom = headroom(&ask, &counts, now);
        self.unsettled.begin();
        let reservation = Reservation {
            // Time-ordered: usage rows are appended in order (see migration 0035).
            id: uuid::Uuid::now_v7(),
            gateway: self.clone(),
            caller: caller.clone(),
            model: model.id.clone(),
            quote,
            max_tokens,
            held,
            tokens_minute: token_limits.tokens_per_minute.map(|_| ledger::minute_of(now)),
            month,
            started: now,
            settled: false,
            span: tracing::Span::none(),
        };
        Ok(Admitted {
            body: call.into_upstream_body(&model.id, max_tokens),
            reservation,
            clamped_to,
            headroom,
        })
    }

    /// Counts the call against its limits and holds what the budgets allow of its hold.
    async fn hold(&self, ask: &Ask<'_>, month: Timestamp, now: Timestamp) -> Result<Verdict, GatewayError> {
        match &self.counters {
            Counters::Local(ledger) => {
                let mut ledger = ledger.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                ledger.roll_over(month);
                Ok(ledger.admit(ask, now))
            }
            Counters::Shared(redis) => self.admit_shared(redis, ask, month, now).await,
        }
    }

    /// The refusal for the caller; a budget refusal also raises the 100% alert;
    /// a budget or token refusal says which `max_tokens` still fits.
    fn refused(&self, caller: &Caller, quote: &Quote, refusal: Refusal) -> GatewayError {
        let (alert, affordable) = match refusal {
            Refusal::WorkspaceBudget(room) => {
                (Some(Some(caller.workspace_id)), quote.affordable_max_tokens(room.free.max(0)))
            }
            Refusal::OrgBudget(room) => (Some(None), quote.affordable_max_tokens(room.free.max(0))),
            Refusal::Tokens { left, .. } => (None, quote.max_tokens_within(left)),
            Refusal::RateLimited { .. } => return refusal.into(),
        };
        if let Some(workspace_id) = alert {
            // The alert is written off the request path; a full queue only delays it to the next refusal.
            let _ = self.meter.try_send(MeterMessage::BudgetReached { org_id: caller.org_id, workspace_id });
        }
        let mut error = GatewayError::from(refusal);
        if quote.max_tokens > 0 {
            error.affordable_max_tokens = Some(affordable);
            error.message = match affordable {
                0 => format!("{} Not even the input fits in what is left.", error.message),
                n => format!("{} What is left covers `max_tokens` up to {n}.", error.message),
            };
        }
        error
    }

    /// `admit`'s check and hold in Redis; a month not counted there yet is
    /// first seeded with the spend (and tokens) the database recorded.
    async fn admit_shared(
        &self,
        redis: &SharedCounters,
        ask: &Ask<'_>,
        month: Timestamp,
        now: Timestamp,
    ) -> Result<Verdict, GatewayError> {
        let unavailable = |_| {
            observability::redis_failed();
            GatewayError::new(
                503,
                "limits_unavailable",
                "Limits cannot be checked right now; try again shortly.",
            )
        };
        for _ in 0..2 {
            match redis.admit(month, ask, now).await.map_err(unavailable)? {
                Admission::Decided(verdict) => return Ok(verdict),
                Admission::Cold => {
                    for scope in [Scope::Org(ask.org), Scope::Workspace(ask.workspace)] {
                        let recorded = recorded_spend(&self.db, month, scope).await.map_err(unavailable)?;
                        let tokens = match scope {
                            Scope::Workspace(id) => {
                                recorded_tokens(&self.db, month, id).await.map_err(unavailable)?
                            }
                            Scope::Org(_) => Vec::new(),
                        };
                        redis.seed(month, scope, recorded, &tokens).await.map_err(unavailable)?;
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
            Counters::Shared(redis) => redis.spent(month_start(Timestamp::now()), scope).await,
        }
    }

    /// Releases a call's holds and books what it cost and used: at once in
    /// this process, or in a task for Redis.
    fn settle_counters(self: &Arc<Self>, month: Timestamp, settlement: Settlement) {
        match &self.counters {
            Counters::Local(ledger) => {
                ledger.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).settle(&settlement);
                self.settled.notify_waiters();
            }
            Counters::Shared(redis) => {
                self.unsettled.begin();
                let redis = redis.clone();
                let gateway = self.clone();
                tokio::spawn(async move {
                    // A lost settlement would pin its hold until the month ends: retry a while.
                    let mut attempt = 0;
                    while let Err(error) = redis.settle(month, &settlement).await {
                        observability::redis_failed();
                        attempt += 1;
                        if attempt == 5 {
                            tracing::error!(%error, workspace = %settlement.workspace, held = settlement.held.money,
                                cost = settlement.cost, "a settlement was lost; its hold stays");
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                    }
                    gateway.settled.notify_waiters();
                    gateway.unsettled.end();
                });
            }
        }
    }
}

/// The gateway's maps, read on every call. Their keys are ids and key digests
/// that a caller cannot choose, so a fast hash with a random seed is enough:
/// SipHash's strength against chosen keys bought nothing here but 4% of a call.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// What `admit` let through: the body to forward and its hold.
pub struct Admitted {
    pub reservation: Reservation,
    /// The request for the provider, with the catalogue's model id and the held `max_tokens`.
    pub body: Map<String, Value>,
    /// The `max_tokens` forwarded, when the budget covered less than was asked.
    pub clamped_to: Option<i64>,
    /// The caller's tightest limits once this call is counted.
    pub headroom: Headroom,
}

/// A request's hold on the budgets. `settle` books what the request used and
/// meters it; dropped unsettled (nothing was forwarded), it releases the hold
/// and bills nothing.
pub struct Reservation {
    /// The usage event's id.
    id: uuid::Uuid,
    gateway: Arc<Gateway>,
    caller: Caller,
    /// The catalogue's id of the model.
    model: String,
    quote: Quote,
    /// The `max_tokens` forwarded (per completion).
    max_tokens: i64,
    held: Held,
    /// The minute whose token count holds it, when the model has a tokens-per-minute limit.
    tokens_minute: Option<i64>,
    /// The month whose budgets hold it.
    month: Timestamp,
    started: Timestamp,
    settled: bool,
    /// The call's span for an OpenTelemetry collector; told what was booked.
    span: tracing::Span,
}

impl Reservation {
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Has `span` told what the call used and cost when it is settled: the
    /// GenAI semantic conventions' `gen_ai.usage.*`, and Chancery's
    /// `chancery.cost.usd_micros` and `chancery.usage.estimated`.
    pub fn traced_by(&mut self, span: tracing::Span) {
        self.span = span;
    }

    /// What this call gives back, having cost `cost` and used `tokens`.
    fn settlement(&self, cost: i64, tokens: i64) -> Settlement {
        Settlement {
            org: self.caller.org_id,
            workspace: self.caller.workspace_id,
            model: self.model.clone(),
            held: self.held,
            cost,
            tokens,
            tokens_minute: self.tokens_minute,
        }
    }

    /// Chancery's estimate of a call's usage, for an answer of `output_bytes`
    /// that came without the provider's count.
    pub fn estimate(&self, output_bytes: usize) -> Usage {
        self.quote.estimate(output_bytes, self.max_tokens)
    }

    /// Books what the request used, as reported even above the hold (then
    /// audited as an overrun), or the whole hold when nothing can be counted;
    /// queues the usage event and returns the cost booked.
    pub fn settle(mut self, ending: Ending) -> i64 {
        self.settled = true;
        let (usage, estimated) = match ending.metered {
            Metered::Reported(usage) => (usage, false),
            Metered::Estimated(usage) => (usage, true),
            Metered::Unknown => (
                Usage {
                    input_tokens: self.quote.input_bound(),
                    output_tokens: self.quote.output_bound(self.max_tokens),
                },
                false,
            ),
        };
        let cost = self.quote.price(usage);
        observability::booked(&self.model, usage.input_tokens, usage.output_tokens, cost);
        self.span.record("gen_ai.usage.input_tokens", usage.input_tokens);
        self.span.record("gen_ai.usage.output_tokens", usage.output_tokens);
        self.span.record("chancery.cost.usd_micros", cost);
        self.span.record("chancery.usage.estimated", estimated || ending.metered == Metered::Unknown);
        let gateway = &self.gateway;
        gateway.settle_counters(self.month, self.settlement(cost, usage.input_tokens + usage.output_tokens));
        let now = Timestamp::now();
        let event = UsageEvent {
            id: self.id,
            at: now,
            org_id: self.caller.org_id,
            workspace_id: self.caller.workspace_id,
            key_id: self.caller.key_id,
            model: self.model.clone(),
            status: ending.status,
            outcome: ending.outcome,
            upstream_status: ending.upstream_status,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            usage_estimated: estimated,
            held_micros: self.held.money,
            cost_micros: cost,
            latency_ms: now.0 - self.started.0,
        };
        gateway.record(event);
        cost
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.settled {
            self.gateway.settle_counters(self.month, self.settlement(0, 0));
        }
        self.gateway.unsettled.end();
    }
}

async fn refresh_forever(gateway: std::sync::Weak<Gateway>) {
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    loop {
        tick.tick().await;
        let Some(gateway) = gateway.upgrade() else { return };
        if let Err(error) = gateway.refresh().await {
            tracing::warn!(%error, "gateway snapshot not refreshed; serving the previous one");
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

/// The tokens the database recorded for each model of a workspace since `month` began.
async fn recorded_tokens(db: &Db, month: Timestamp, workspace: WorkspaceId) -> AppResult<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT model, CAST(SUM(input_tokens + output_tokens) AS BIGINT) FROM usage_hourly
         WHERE hour_start >= $1 AND workspace_id = $2 GROUP BY model",
    )
    .bind(month)
    .bind(workspace)
    .fetch_all(db.pool())
    .await?)
}

type MonthSpend = (FastMap<Scope, i64>, FastMap<(WorkspaceId, String), i64>);

/// This month's recorded spend per workspace and organization, and tokens per workspace and model.
async fn month_spend(db: &Db, month: Timestamp) -> AppResult<MonthSpend> {
    let rows: Vec<(OrgId, WorkspaceId, String, i64, i64)> = sqlx::query_as(
        "SELECT org_id, workspace_id, model, CAST(SUM(cost_micros) AS BIGINT),
                CAST(SUM(input_tokens + output_tokens) AS BIGINT)
         FROM usage_hourly WHERE hour_start >= $1 GROUP BY org_id, workspace_id, model",
    )
    .bind(month)
    .fetch_all(db.pool())
    .await?;
    let (mut spent, mut tokens) = (FastMap::default(), FastMap::default());
    for (org, workspace, model, cost, used) in rows {
        *spent.entry(Scope::Org(org)).or_default() += cost;
        *spent.entry(Scope::Workspace(workspace)).or_default() += cost;
        tokens.insert((workspace, model), used);
    }
    Ok((spent, tokens))
}
