//! Usage metering. The request path appends each `UsageEvent` to the spool
//! (`spool.rs`) and hands it to a bounded queue (when the queue is full, the
//! spool alone keeps it); one task writes them in batches (raw rows, hourly
//! roll-ups, keys' last use), reads back what only the spool kept once it has
//! caught up,
//! audits requests that cost more than was held for them, and announces
//! spending alerts at 80% and 100% of a limit, by email and in the audit log.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::Duration,
};

use tokio::sync::{mpsc, oneshot};

use crate::{
    ids::{ApiKeyId, OrgId, WorkspaceId},
    money::format_usd,
    server::{
        actor::Client,
        audit::{self, AuditEvent},
        authz,
        billing::month_start,
        db::Db,
        gateway::{spool::Spool, Outcome},
        mail, observability,
    },
    time::Timestamp,
};

/// One request through the gateway.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct UsageEvent {
    /// Unique: an event written twice is counted once.
    pub id: uuid::Uuid,
    pub at: Timestamp,
    pub org_id: OrgId,
    pub workspace_id: WorkspaceId,
    pub key_id: ApiKeyId,
    pub model: String,
    /// The HTTP status the caller got.
    pub status: u16,
    pub outcome: Outcome,
    pub upstream_status: Option<u16>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// The tokens are Chancery's estimate: the provider reported none.
    pub usage_estimated: bool,
    pub held_micros: i64,
    pub cost_micros: i64,
    pub latency_ms: i64,
}

pub enum MeterMessage {
    /// A usage event, and the spool segment that holds it (`None`: not spooled).
    Usage { event: UsageEvent, segment: Option<u64> },
    /// A request was refused for lack of budget: the limit is reached (the 100% alert),
    /// even if the spend booked so far is a little under it.
    BudgetReached { org_id: OrgId, workspace_id: Option<WorkspaceId> },
    /// Write what is queued, then answer.
    Flush(oneshot::Sender<()>),
}

/// Usage events held in memory unless told otherwise (`Metering::queue`).
pub const QUEUE_CAPACITY: usize = 10_000;
const BATCH: usize = 500;
const BATCH_WAIT: Duration = Duration::from_millis(200);
/// Failed batches kept in memory for another try; beyond this the oldest is
/// left to the spool, to be read back from there.
const RETRIES_KEPT: usize = 20;
/// How often an idle meter retries a failed batch or reads back the spool.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// The limits alerts are measured against, looked up when a batch is written.
pub type LimitsOf = Box<dyn Fn(OrgId, WorkspaceId) -> (Option<i64>, Option<i64>) + Send + Sync>;

/// What one transaction writes: usage events and budget refusals.
#[derive(Default)]
pub struct Batch {
    events: Vec<UsageEvent>,
    /// The spool segment of each event.
    segments: Vec<Option<u64>>,
    reached: Vec<(OrgId, Option<WorkspaceId>)>,
}

impl Batch {
    /// Events replayed from the spool (their segments are forgotten as a whole).
    pub fn replayed(events: Vec<UsageEvent>) -> Self {
        Self { segments: vec![None; events.len()], events, reached: Vec::new() }
    }

    fn is_empty(&self) -> bool {
        self.events.is_empty() && self.reached.is_empty()
    }

    fn add(&mut self, message: MeterMessage) -> Option<oneshot::Sender<()>> {
        match message {
            MeterMessage::Usage { event, segment } => {
                self.events.push(event);
                self.segments.push(segment);
            }
            MeterMessage::BudgetReached { org_id, workspace_id } => {
                if !self.reached.contains(&(org_id, workspace_id)) {
                    self.reached.push((org_id, workspace_id));
                }
            }
            MeterMessage::Flush(done) => return Some(done),
        }
        None
    }

    /// Writes the batch; once written, its events leave the spool.
    pub async fn write(&self, db: &Db, limits_of: &LimitsOf, spool: &Spool) -> Result<(), sqlx::Error> {
        let started = std::time::Instant::now();
        write(db, &self.events, &self.reached, limits_of).await?;
        metrics::histogram!(observability::METER_FLUSH).record(started.elapsed());
        let mut written: HashMap<u64, u64> = HashMap::new();
        for segment in self.segments.iter().flatten() {
            *written.entry(*segment).or_default() += 1;
        }
        for (segment, count) in written {
            spool.written(segment, count);
        }
        Ok(())
    }
}

/// Writes queued usage until every sender is gone. A batch that cannot be
/// written is kept aside and retried while the next ones are written; what
/// only the spool holds is read back when nothing else waits.
pub async fn run(db: Db, mut queue: mpsc::Receiver<MeterMessage>, limits_of: LimitsOf, spool: Arc<Spool>) {
    let mut behind = Behind { failed: VecDeque::new(), db, limits_of, spool };
    loop {
        let first = match tokio::time::timeout(RETRY_EVERY, queue.recv()).await {
            Ok(message) => message,
            Err(_idle) => {
                behind.catch_up_once().await;
                continue;
            }
        };
        let Some(first) = first else { return };
        let mut batch = Batch::default();
        let mut waiting: Vec<oneshot::Sender<()>> = batch.add(first).into_iter().collect();
        let deadline = tokio::time::sleep(BATCH_WAIT);
        tokio::pin!(deadline);
        while waiting.is_empty() && batch.events.len() < BATCH {
            tokio::select! {
                message = queue.recv() => match message {
                    Some(message) => waiting.extend(batch.add(message)),
                    None => break,
                },
                _ = &mut deadline => break,
            }
        }
        let written = batch.is_empty() || behind.write(batch).await;
        if !waiting.is_empty() {
            // A flush: everything the meter knows of is written, or cannot be now.
            while written && behind.catch_up_once().await {}
        } else if written && queue.is_empty() {
            behind.catch_up_once().await;
        }
        for done in waiting {
            let _ = done.send(());
        }
    }
}

/// What the meter has not written yet besides its queue: failed batches, and
/// the spool's spilled segments.
struct Behind {
    failed: VecDeque<Batch>,
    db: Db,
    limits_of: LimitsOf,
    spool: Arc<Spool>,
}

impl Behind {
    /// Writes `batch`, or keeps it aside (leaving the oldest kept to the spool
    /// beyond `RETRIES_KEPT`); true if written.
    async fn write(&mut self, batch: Batch) -> bool {
        let Err(error) = batch.write(&self.db, &self.limits_of, &self.spool).await else { return true };
        tracing::error!(%error, events = batch.events.len(), "cannot write usage; will retry");
        self.failed.push_back(batch);
        if self.failed.len() > RETRIES_KEPT {
            let oldest = self.failed.pop_front().unwrap_or_default();
            self.spill(&oldest);
        }
        false
    }

    fn spill(&self, batch: &Batch) {
        let mut lost = 0;
        for segment in &batch.segments {
            match segment {
                Some(segment) => self.spool.spill(*segment),
                None => lost += 1,
            }
        }
        if lost > 0 {
            tracing::error!(events = lost, "usage neither spooled nor written is lost");
        }
    }

    /// Retries the oldest failed batch, or else reads back the oldest spilled
    /// segment; true if it wrote something and more is left.
    async fn catch_up_once(&mut self) -> bool {
        if let Some(batch) = self.failed.front() {
            return match batch.write(&self.db, &self.limits_of, &self.spool).await {
                Ok(()) => {
                    self.failed.pop_front();
                    !self.failed.is_empty() || self.spool.has_spilled()
                }
                Err(error) => {
                    tracing::error!(%error, waiting = self.failed.len(), "usage still cannot be written");
                    false
                }
            };
        }
        let (segment, events) = match self.spool.oldest_spilled() {
            Ok(Some(spilled)) => spilled,
            Ok(None) => return false,
            Err(error) => {
                tracing::error!(%error, "the usage spool cannot be read back; the next start replays it");
                return false;
            }
        };
        for chunk in events.chunks(BATCH) {
            let batch = Batch::replayed(chunk.to_vec());
            if let Err(error) = batch.write(&self.db, &self.limits_of, &self.spool).await {
                tracing::error!(%error, segment, "spooled usage still cannot be written");
                return false;
            }
        }
        self.spool.read_back(segment);
        tracing::info!(
            segment,
            events = events.len(),
            "usage the meter had no room for is read back from the spool"
        );
        self.spool.has_spilled()
    }
}

fn hour_start(at: Timestamp) -> Timestamp {
    Timestamp(at.0 - at.0.rem_euclid(3_600_000))
}

/// An hourly roll-up's key: hour, workspace, key, model.
type HourKey<'a> = (Timestamp, WorkspaceId, ApiKeyId, &'a str);
/// Its organization and totals: requests, failed, input tokens, output tokens, cost.
type HourTotals = (OrgId, [i64; 5]);

async fn write(
    db: &Db,
    batch: &[UsageEvent],
    reached: &[(OrgId, Option<WorkspaceId>)],
    limits_of: &LimitsOf,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    let mut hourly: HashMap<HourKey, HourTotals> = HashMap::new();
    let mut last_used: HashMap<ApiKeyId, Timestamp> = HashMap::new();
    for e in batch {
        let inserted = sqlx::query(
            "INSERT INTO usage_events (id, at, key_id, model, status, outcome, upstream_status, input_tokens,
                 output_tokens, usage_estimated, held_micros, cost_micros, latency_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(e.id.as_bytes().to_vec())
        .bind(e.at)
        .bind(e.key_id.0.as_bytes().to_vec())
        .bind(&e.model)
        .bind(i64::from(e.status))
        .bind(e.outcome.as_str())
        .bind(e.upstream_status.map(i64::from))
        .bind(e.input_tokens)
        .bind(e.output_tokens)
        .bind(i64::from(e.usage_estimated))
        .bind(e.held_micros)
        .bind(e.cost_micros)
        .bind(e.latency_ms)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            // Written before (a replayed spool): already counted.
            continue;
        }
        if e.cost_micros > e.held_micros {
            audit_overrun(&mut tx, e).await?;
        }
        let row = hourly
            .entry((hour_start(e.at), e.workspace_id, e.key_id, &e.model))
            .or_insert((e.org_id, [0; 5]));
        let failed = i64::from(e.status >= 400);
        for (total, add) in row.1.iter_mut().zip([1, failed, e.input_tokens, e.output_tokens, e.cost_micros])
        {
            *total += add;
        }
        let used = last_used.entry(e.key_id).or_insert(e.at);
        *used = (*used).max(e.at);
    }
    for ((hour, workspace, key, model), (org, [requests, failed, input, output, cost])) in &hourly {
        sqlx::query(
            "INSERT INTO usage_hourly (hour_start, org_id, workspace_id, key_id, model, requests, failed,
                 input_tokens, output_tokens, cost_micros)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (hour_start, workspace_id, key_id, model) DO UPDATE SET
                 requests = usage_hourly.requests + excluded.requests,
                 failed = usage_hourly.failed + excluded.failed,
                 input_tokens = usage_hourly.input_tokens + excluded.input_tokens,
                 output_tokens = usage_hourly.output_tokens + excluded.output_tokens,
                 cost_micros = usage_hourly.cost_micros + excluded.cost_micros",
        )
        .bind(*hour)
        .bind(*org)
        .bind(*workspace)
        .bind(key.to_string())
        .bind(*model)
        .bind(requests)
        .bind(failed)
        .bind(input)
        .bind(output)
        .bind(cost)
        .execute(&mut *tx)
        .await?;
    }
    for (key, at) in &last_used {
        sqlx::query(
            "UPDATE workspace_api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
        )
        .bind(*at)
        .bind(*key)
        .execute(&mut *tx)
        .await?;
    }
    let mut scopes: Vec<(OrgId, WorkspaceId)> =
        hourly.iter().map(|((_, ws, ..), (org, _))| (*org, *ws)).collect();
    scopes.sort();
    scopes.dedup();
    for (org, workspace) in scopes {
        let (org_limit, ws_limit) = limits_of(org, workspace);
        alert_if_crossed(&mut tx, org, None, org_limit, false).await?;
        alert_if_crossed(&mut tx, org, Some(workspace), ws_limit, false).await?;
    }
    for (org, workspace) in reached {
        let (org_limit, ws_limit) = limits_of(*org, workspace.unwrap_or(WorkspaceId(uuid::Uuid::nil())));
        let limit = if workspace.is_some() { ws_limit } else { org_limit };
        alert_if_crossed(&mut tx, *org, *workspace, limit, true).await?;
    }
    tx.commit().await
}

/// A request cost more than was held for it: the provider reported more than
/// the gateway's bound. It is booked all the same, and said here.
async fn audit_overrun(conn: &mut sqlx::AnyConnection, e: &UsageEvent) -> Result<(), sqlx::Error> {
    tracing::warn!(key = %e.key_id, model = %e.model, held = e.held_micros, booked = e.cost_micros, "usage overran its hold");
    let event = AuditEvent::new("gateway.overrun", "api_key", e.key_id.to_string())
        .in_org(e.org_id)
        .with_details(serde_json::json!({
            "workspace_id": e.workspace_id,
            "model": e.model,
            "held": format_usd(e.held_micros),
            "booked": format_usd(e.cost_micros),
            "held_micros": e.held_micros,
            "booked_micros": e.cost_micros,
            "input_tokens": e.input_tokens,
            "output_tokens": e.output_tokens,
        }));
    audit::record(conn, &authz::automatic(), &Client::default(), event).await
}

/// Announces, once per month each, that spend reached 80% or 100% of a limit
/// (`reached`: a request was refused for lack of budget, which is 100%).
async fn alert_if_crossed(
    conn: &mut sqlx::AnyConnection,
    org: OrgId,
    workspace: Option<WorkspaceId>,
    limit: Option<i64>,
    reached: bool,
) -> Result<(), sqlx::Error> {
    let Some(limit) = limit.filter(|l| *l > 0) else { return Ok(()) };
    let month = month_start(Timestamp::now());
    let scope_id = workspace.map(|w| w.to_string()).unwrap_or_else(|| org.to_string());
    // One workspace's spend only when asked: no catch-all condition for
    // PostgreSQL's reused plan to guess about.
    let one_workspace = if workspace.is_some() { " AND workspace_id = $3" } else { "" };
    let sql = format!(
        "SELECT CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) FROM usage_hourly
         WHERE org_id = $1 AND hour_start >= $2{one_workspace}"
    );
    let mut spent = sqlx::query_as(&sql).bind(org).bind(month);
    if let Some(workspace) = workspace {
        spent = spent.bind(workspace.to_string());
    }
    let (spent,): (i64,) = spent.fetch_one(&mut *conn).await?;
    for threshold in [80_i64, 100] {
        let forced = reached && threshold == 100;
        if spent.saturating_mul(100) < limit.saturating_mul(threshold) && !forced {
            continue;
        }
        let new = sqlx::query(
            "INSERT INTO spend_alerts (scope_id, month_start, threshold, sent_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(&scope_id)
        .bind(month)
        .bind(threshold)
        .bind(Timestamp::now())
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 1;
        if new {
            announce(conn, org, workspace, threshold, spent, limit).await?;
        }
    }
    Ok(())
}

async fn announce(
    conn: &mut sqlx::AnyConnection,
    org: OrgId,
    workspace: Option<WorkspaceId>,
    threshold: i64,
    spent: i64,
    limit: i64,
) -> Result<(), sqlx::Error> {
    let (org_name,): (String,) = sqlx::query_as("SELECT name FROM organizations WHERE id = $1")
        .bind(org)
        .fetch_one(&mut *conn)
        .await?;
    let what = match workspace {
        Some(ws) => {
            let (name,): (String,) = sqlx::query_as("SELECT name FROM workspaces WHERE id = $1")
                .bind(ws)
                .fetch_one(&mut *conn)
                .await?;
            format!("Workspace {name} of {org_name}")
        }
        None => format!("The organization {org_name}"),
    };
    let consequence = if threshold >= 100 {
        "Requests that would spend more are refused (429) until the limit is raised or the month ends."
    } else {
        "Requests are refused once the limit is reached."
    };
    let percent = spent.saturating_mul(100) / limit;
    // The 100% alert also comes when a request was refused for costing more
    // than is left: the subject then says so, not a percentage not reached.
    let subject = if percent < threshold {
        format!("{what} has too little of its monthly spending limit left")
    } else {
        format!("{what} reached {threshold}% of its monthly spending limit")
    };
    let body = format!(
        "{what} has spent {} of its {} monthly limit this month ({percent}%).\n\n{consequence}\n",
        format_usd(spent),
        format_usd(limit),
    );
    let recipients: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT u.email FROM org_member_roles r JOIN users u ON u.id = r.user_id
         WHERE r.org_id = $1 AND r.role IN ('admin', 'billing') ORDER BY u.email",
    )
    .bind(org)
    .fetch_all(&mut *conn)
    .await?;
    for (email,) in &recipients {
        mail::queue(&mut *conn, email, &subject, &body).await?;
    }
    let target = workspace.map(|w| ("workspace", w.to_string())).unwrap_or(("organization", org.to_string()));
    let event = AuditEvent::new("billing.spend_alert", target.0, target.1).in_org(org).with_details(
        serde_json::json!({
            "threshold_percent": threshold,
            "spent": format_usd(spent),
            "limit": format_usd(limit),
            "emailed": recipients.len(),
        }),
    );
    // Chancery itself raises the alert, on the limits people set.
    audit::record(conn, &authz::automatic(), &Client::default(), event).await
}
