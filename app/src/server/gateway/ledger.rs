//! In-process counters of the gateway: requests per second and per minute,
//! tokens per minute and per month of each model, and this month's spend per
//! workspace and organization with the holds of requests in flight. A request
//! reserves its worst-case cost and tokens before it is forwarded and settles
//! what it really used after, so concurrent requests cannot overspend. When
//! the budgets cannot cover all a request wants, it may take what is left, down
//! to the least it can use (the gateway then lowers its `max_tokens`); token
//! limits refuse instead, saying which `max_tokens` would fit.
//!
//! These counters belong to one process, right for one replica; several
//! replicas share theirs in Redis (`shared.rs`), under the same rules: both
//! read their counters into `Counts` and decide with `check_rates` and
//! `check_tokens` here.

use super::FastMap;
use crate::{
    ids::{ApiKeyId, OrgId, WorkspaceId},
    model::TokenLimits,
    server::billing::next_month_start,
    time::Timestamp,
};

/// Where money is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Org(OrgId),
    Workspace(WorkspaceId),
}

/// What a request-rate limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateScope {
    /// A workspace's requests in a second.
    WorkspaceSecond(WorkspaceId),
    /// A workspace's requests in a minute.
    Workspace(WorkspaceId),
    /// A key's requests in a minute.
    Key(ApiKeyId),
}

impl RateScope {
    /// The length of the fixed windows it counts in.
    pub fn window_ms(self) -> i64 {
        match self {
            Self::WorkspaceSecond(_) => SECOND_MS,
            Self::Workspace(_) | Self::Key(_) => MINUTE_MS,
        }
    }
}

/// Which token limit of a model refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenWindow {
    Minute,
    Month,
}

/// Why a request may not go. A budget refusal tells the room under the limit
/// that refused; a token refusal the limit and the tokens left under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    RateLimited {
        scope: RateScope,
        retry_after_secs: u64,
    },
    /// `retry_after_secs` is `None` when the request would not fit even in a fresh window.
    Tokens {
        window: TokenWindow,
        limit: i64,
        left: i64,
        retry_after_secs: Option<u64>,
    },
    WorkspaceBudget(Room),
    OrgBudget(Room),
}

impl Refusal {
    /// A budget refusal that calls in flight could lift when they settle
    /// (they rarely spend all they hold), for a request needing `least`.
    pub fn may_lift(&self, least: i64) -> bool {
        match self {
            Self::WorkspaceBudget(room) | Self::OrgBudget(room) => room.free + room.in_flight >= least,
            Self::RateLimited { .. } | Self::Tokens { .. } => false,
        }
    }
}

/// Money under one limit: `free` to hold now (negative once spend overran the
/// limit), and `in_flight`, held by calls not yet settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Room {
    pub free: i64,
    pub in_flight: i64,
}

/// What a request asks to hold: `want` (its worst case), or at least `least`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hold {
    pub want: i64,
    pub least: i64,
}

impl Hold {
    /// A hold of exactly `amount`.
    pub fn exactly(amount: i64) -> Self {
        Self { want: amount, least: amount }
    }

    /// What to hold under the workspace's and the organization's limits
    /// (`None`: no limit): all it wants, else all that is free down to `least`.
    pub fn within(self, workspace: Option<Room>, org: Option<Room>) -> Result<i64, Refusal> {
        let free = [workspace, org].into_iter().flatten().map(|room| room.free).min().unwrap_or(i64::MAX);
        if free >= self.want {
            return Ok(self.want);
        }
        if free >= self.least {
            return Ok(free);
        }
        let short = [workspace.map(Refusal::WorkspaceBudget), org.map(Refusal::OrgBudget)]
            .into_iter()
            .flatten()
            .filter(|refusal| matches!(refusal, Refusal::WorkspaceBudget(r) | Refusal::OrgBudget(r) if r.free < self.least));
        // A limit spent for good decides over one only held up by calls in flight.
        let (spent, held_up): (Vec<Refusal>, Vec<Refusal>) = short.partition(|r| !r.may_lift(self.least));
        Err(spent.into_iter().chain(held_up).next().expect("a limit is short"))
    }
}

/// One call's limits (`None`: no limit) and what it asks to hold.
#[derive(Clone, Copy, Debug)]
pub struct Ask<'a> {
    pub org: OrgId,
    pub org_limit: Option<i64>,
    pub workspace: WorkspaceId,
    pub workspace_budget: Option<i64>,
    /// The request-rate limits, checked in this order.
    pub rates: [(RateScope, Option<i64>); 3],
    /// The catalogue's id of the model called.
    pub model: &'a str,
    pub token_limits: TokenLimits,
    /// The most tokens the call can use, input and output.
    pub tokens: i64,
    /// Money.
    pub hold: Hold,
}

/// Where the counters of a call's limits stand: before it when it is refused,
/// with it once admitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests in the current window of each of `Ask::rates` (0 where unlimited).
    pub requests: [i64; 3],
    /// The model's tokens in this minute (0 when unlimited), used or held.
    pub minute_tokens: i64,
    /// The model's tokens this month in the workspace, used or held.
    pub month_tokens: i64,
}

/// What an admitted call holds: money, and tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    pub money: i64,
    pub tokens: i64,
}

/// An admission's answer, with the counts its response headers report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Result<Held, Refusal>,
    pub counts: Counts,
}

/// What a call gives back when it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    pub org: OrgId,
    pub workspace: WorkspaceId,
    pub model: String,
    pub held: Held,
    /// What it cost (0 when nothing was forwarded).
    pub cost: i64,
    /// The tokens it used, input and output.
    pub tokens: i64,
    /// The minute whose token count holds it, when the model has a tokens-per-minute limit.
    pub tokens_minute: Option<i64>,
}

/// How much of one limit is left: what `x-ratelimit-*` headers report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub limit: i64,
    pub remaining: i64,
    /// Until the window resets.
    pub reset_ms: i64,
}

/// The tightest request and token limits of a call, where it has some.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Headroom {
    pub requests: Option<Quota>,
    pub tokens: Option<Quota>,
}

const SECOND_MS: i64 = 1_000;
const MINUTE_MS: i64 = 60_000;

/// The Unix minute of `now`: limits count in fixed one-minute windows.
pub fn minute_of(now: Timestamp) -> i64 {
    now.0.div_euclid(MINUTE_MS)
}

/// The window of `window_ms` holding `now` (Unix seconds or minutes).
pub fn window_of(now: Timestamp, window_ms: i64) -> i64 {
    now.0.div_euclid(window_ms)
}

/// Milliseconds until the window of `window_ms` holding `now` ends.
fn ms_to_next(now: Timestamp, window_ms: i64) -> i64 {
    (window_of(now, window_ms) + 1) * window_ms - now.0
}

/// A `Retry-After`: whole seconds, rounded up, at least 1.
fn retry_after(ms: i64) -> u64 {
    u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1)
}

/// Refuses a request over one of its rate limits: none of it is counted yet.
pub fn check_rates(ask: &Ask, counts: &Counts, now: Timestamp) -> Result<(), Refusal> {
    for (&(scope, limit), &counted) in ask.rates.iter().zip(&counts.requests) {
        if limit.is_some_and(|limit| counted >= limit) {
            let retry_after_secs = retry_after(ms_to_next(now, scope.window_ms()));
            return Err(Refusal::RateLimited { scope, retry_after_secs });
        }
    }
    Ok(())
}

/// Refuses a request whose worst case in tokens does not fit under the model's limits.
pub fn check_tokens(ask: &Ask, counts: &Counts, now: Timestamp) -> Result<(), Refusal> {
    let windows = [
        (TokenWindow::Minute, ask.token_limits.tokens_per_minute, counts.minute_tokens),
        (TokenWindow::Month, ask.token_limits.tokens_per_month, counts.month_tokens),
    ];
    for (window, limit, counted) in windows {
        let Some(limit) = limit else { continue };
        if counted.saturating_add(ask.tokens) > limit {
            let reset_ms = match window {
                TokenWindow::Minute => ms_to_next(now, MINUTE_MS),
                TokenWindow::Month => next_month_start(now).0 - now.0,
            };
            let retry_after_secs = (ask.tokens <= limit).then(|| retry_after(reset_ms));
            return Err(Refusal::Tokens { window, limit, left: (limit - counted).max(0), retry_after_secs });
        }
    }
    Ok(())
}

/// The call's tightest limits, as its counts leave them.
pub fn headroom(ask: &Ask, counts: &Counts, now: Timestamp) -> Headroom {
    let requests = ask
        .rates
        .iter()
        .zip(counts.requests)
        .filter_map(|(&(scope, limit), counted)| {
            limit.map(|limit| Quota {
                limit,
                remaining: (limit - counted).max(0),
                reset_ms: ms_to_next(now, scope.window_ms()),
            })
        })
        .min_by_key(|quota| quota.remaining);
    let minute = ask.token_limits.tokens_per_minute.map(|limit| Quota {
        limit,
        remaining: (limit - counts.minute_tokens).max(0),
        reset_ms: ms_to_next(now, MINUTE_MS),
    });
    let month = ask.token_limits.tokens_per_month.map(|limit| Quota {
        limit,
        remaining: (limit - counts.month_tokens).max(0),
        reset_ms: next_month_start(now).0 - now.0,
    });
    let tokens = [minute, month].into_iter().flatten().min_by_key(|quota| quota.remaining);
    Headroom { requests, tokens }
}

type ModelKey = (WorkspaceId, String);

#[derive(Debug, Default)]
pub struct Ledger {
    /// The calendar month the spend counts belong to.
    month: Timestamp,
    spent: FastMap<Scope, i64>,
    held: FastMap<Scope, i64>,
    /// Per limited workspace or key: the window and the requests counted in it.
    windows: FastMap<RateScope, (i64, i64)>,
    /// Per workspace and model with a tokens-per-minute limit: the minute and its tokens, used or held.
    minute_tokens: FastMap<ModelKey, (i64, i64)>,
    /// Per workspace and model: this month's tokens used, and held by calls in flight.
    month_tokens: FastMap<ModelKey, (i64, i64)>,
}

impl Ledger {
    /// Starts a month with the spend and tokens already recorded for it.
    pub fn new(month: Timestamp, spent: FastMap<Scope, i64>, tokens: FastMap<ModelKey, i64>) -> Self {
        let month_tokens = tokens.into_iter().map(|(key, used)| (key, (used, 0))).collect();
        Self { month, spent, month_tokens, ..Self::default() }
    }

    pub fn month(&self) -> Timestamp {
        self.month
    }

    /// A new month starts from nothing spent; holds in flight stay.
    pub fn roll_over(&mut self, month: Timestamp) {
        if month != self.month {
            self.month = month;
            self.spent.clear();
            for (used, _held) in self.month_tokens.values_mut() {
                *used = 0;
            }
        }
    }

    /// Where the call's counters stand now.
    fn counts(&self, ask: &Ask, key: &ModelKey, now: Timestamp) -> Counts {
        let mut requests = [0; 3];
        for (counted, &(scope, limit)) in requests.iter_mut().zip(&ask.rates) {
            if limit.is_some() {
                *counted = match self.windows.get(&scope) {
                    Some(&(at, count)) if at == window_of(now, scope.window_ms()) => count,
                    _ => 0,
                };
            }
        }
        let minute_tokens = match self.minute_tokens.get(key) {
            Some(&(at, tokens)) if ask.token_limits.tokens_per_minute.is_some() && at == minute_of(now) => {
                tokens
            }
            _ => 0,
        };
        let month_tokens = self.month_tokens.get(key).map_or(0, |(used, held)| used + held);
        Counts { requests, minute_tokens, month_tokens }
    }

    /// Admits a request: under each rate limit and the model's token limits
    /// and within both budgets, it is counted and what the budgets allow of
    /// its hold is held; refused, nothing changes.
    pub fn admit(&mut self, ask: &Ask, now: Timestamp) -> Verdict {
        // One key for the model's counters, made once per call (this runs under the lock).
        let key = (ask.workspace, ask.model.to_string());
        let mut counts = self.counts(ask, &key, now);
        let decision =
            check_rates(ask, &counts, now).and_then(|()| check_tokens(ask, &counts, now)).and_then(|()| {
                self.reserve((ask.org, ask.org_limit), (ask.workspace, ask.workspace_budget), ask.hold)
            });
        let money = match decision {
            Ok(money) => money,
            Err(refusal) => return Verdict { decision: Err(refusal), counts },
        };
        for (counted, &(scope, limit)) in counts.requests.iter_mut().zip(&ask.rates) {
            if limit.is_some() {
                let window = window_of(now, scope.window_ms());
                *counted += 1;
                self.windows.insert(scope, (window, *counted));
            }
        }
        if ask.token_limits.tokens_per_minute.is_some() {
            counts.minute_tokens += ask.tokens;
            self.minute_tokens.insert(key.clone(), (minute_of(now), counts.minute_tokens));
        }
        self.month_tokens.entry(key).or_default().1 += ask.tokens;
        counts.month_tokens += ask.tokens;
        Verdict { decision: Ok(Held { money, tokens: ask.tokens }), counts }
    }

    fn committed(&self, scope: Scope) -> i64 {
        self.spent.get(&scope).copied().unwrap_or(0) + self.held.get(&scope).copied().unwrap_or(0)
    }

    /// Holds what both limits leave room for of `hold` in the workspace and its
    /// organization, and returns it; otherwise holds nothing.
    pub fn reserve(
        &mut self,
        org: (OrgId, Option<i64>),
        workspace: (WorkspaceId, Option<i64>),
        hold: Hold,
    ) -> Result<i64, Refusal> {
        let (org_scope, ws_scope) = (Scope::Org(org.0), Scope::Workspace(workspace.0));
        let room = |scope, limit: Option<i64>| {
            let in_flight = self.held.get(&scope).copied().unwrap_or(0);
            limit.map(|limit| Room { free: limit - self.committed(scope), in_flight })
        };
        let held = hold.within(room(ws_scope, workspace.1), room(org_scope, org.1))?;
        for scope in [org_scope, ws_scope] {
            *self.held.entry(scope).or_default() += held;
        }
        Ok(held)
    }

    /// Releases a call's holds and books what it really cost and used, which
    /// may be more than it held: what the provider reports is what was spent.
    pub fn settle(&mut self, settlement: &Settlement) {
        for scope in [Scope::Org(settlement.org), Scope::Workspace(settlement.workspace)] {
            let hold = self.held.entry(scope).or_default();
            *hold = (*hold - settlement.held.money).max(0);
            *self.spent.entry(scope).or_default() += settlement.cost;
        }
        let key = (settlement.workspace, settlement.model.clone());
        if let Some(minute) = settlement.tokens_minute {
            if let Some((at, tokens)) = self.minute_tokens.get_mut(&key) {
                if *at == minute {
                    *tokens = (*tokens - settlement.held.tokens + settlement.tokens).max(0);
                }
            }
        }
        let (used, held) = self.month_tokens.entry(key).or_default();
        *held = (*held - settlement.held.tokens).max(0);
        *used += settlement.tokens;
    }

    pub fn spent(&self, scope: Scope) -> i64 {
        self.spent.get(&scope).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (OrgId, WorkspaceId) {
        (OrgId(uuid::Uuid::from_u128(1)), WorkspaceId(uuid::Uuid::from_u128(2)))
    }

    fn key(n: u128) -> RateScope {
        RateScope::Key(ApiKeyId(uuid::Uuid::from_u128(n)))
    }

    /// A call of `tokens` tokens holding nothing, under no limit.
    fn ask(tokens: i64) -> Ask<'static> {
        let (org, ws) = ids();
        Ask {
            org,
            org_limit: None,
            workspace: ws,
            workspace_budget: None,
            rates: [(RateScope::WorkspaceSecond(ws), None), (RateScope::Workspace(ws), None), (key(3), None)],
            model: "m",
            token_limits: TokenLimits::default(),
            tokens,
            hold: Hold::exactly(0),
        }
    }

    fn settlement(held: Held, cost: i64, tokens: i64, tokens_minute: Option<i64>) -> Settlement {
        let (org, workspace) = ids();
        Settlement { org, workspace, model: "m".into(), held, cost, tokens, tokens_minute }
    }

    #[test]
    fn holds_count_against_budgets_until_settled() {
        let (org, ws) = ids();
        let mut ledger = Ledger::default();
        let forty = Hold::exactly(40);
        // Budget 100: two holds of 40 fit, a third does not, whatever they will really cost.
        assert_eq!(ledger.reserve((org, None), (ws, Some(100)), forty), Ok(40));
        assert_eq!(ledger.reserve((org, None), (ws, Some(100)), forty), Ok(40));
        assert_eq!(
            ledger.reserve((org, None), (ws, Some(100)), forty),
            Err(Refusal::WorkspaceBudget(Room { free: 20, in_flight: 80 }))
        );
        // Settling at the real cost frees the rest of the hold.
        ledger.settle(&settlement(Held { money: 40, tokens: 0 }, 10, 0, None));
        assert_eq!(ledger.reserve((org, None), (ws, Some(100)), forty), Ok(40));
        assert_eq!(ledger.spent(Scope::Workspace(ws)), 10);
        assert_eq!(ledger.spent(Scope::Org(org)), 10);
        // The organization's limit binds too.
        assert_eq!(
            ledger.reserve((org, Some(50)), (ws, None), Hold::exactly(1)),
            Err(Refusal::OrgBudget(Room { free: -40, in_flight: 80 }))
        );
    }

    #[test]
    fn a_request_takes_what_is_left_down_to_its_least() {
        let (org, ws) = ids();
        let mut ledger = Ledger::default();
        let hold = Hold { want: 60, least: 15 };
        assert_eq!(ledger.reserve((org, Some(1_000)), (ws, Some(100)), hold), Ok(60));
        assert_eq!(ledger.reserve((org, Some(1_000)), (ws, Some(100)), hold), Ok(40), "what is left");
        // A cost above the hold is booked as reported: the budget then reads above its limit.
        ledger.settle(&settlement(Held { money: 40, tokens: 0 }, 55, 0, None));
        assert_eq!(ledger.spent(Scope::Workspace(ws)), 55);
        let refused = ledger.reserve((org, Some(1_000)), (ws, Some(100)), hold).unwrap_err();
        assert_eq!(refused, Refusal::WorkspaceBudget(Room { free: -15, in_flight: 60 }));
        assert!(refused.may_lift(15), "the call in flight may spend less than its 60");
        ledger.settle(&settlement(Held { money: 60, tokens: 0 }, 60, 0, None));
        let refused = ledger.reserve((org, Some(1_000)), (ws, Some(100)), hold).unwrap_err();
        assert!(!refused.may_lift(15), "spent for good");
        // The tighter limit decides, and one spent for good over one held up.
        let room = |free, in_flight| Some(Room { free, in_flight });
        assert_eq!(hold.within(room(50, 0), room(20, 0)), Ok(20));
        assert_eq!(
            hold.within(room(50, 0), room(10, 0)),
            Err(Refusal::OrgBudget(Room { free: 10, in_flight: 0 }))
        );
        assert_eq!(
            hold.within(room(5, 100), room(10, 0)),
            Err(Refusal::OrgBudget(Room { free: 10, in_flight: 0 }))
        );
        assert_eq!(hold.within(None, None), Ok(60));
    }

    #[test]
    fn a_new_month_starts_from_nothing_spent() {
        let (org, ws) = ids();
        let mut spent = FastMap::default();
        spent.insert(Scope::Workspace(ws), 100);
        let mut tokens = FastMap::default();
        tokens.insert((ws, "m".to_string()), 900);
        let mut ledger = Ledger::new(Timestamp(0), spent, tokens);
        let one = Hold::exactly(1);
        assert_eq!(
            ledger.reserve((org, None), (ws, Some(100)), one),
            Err(Refusal::WorkspaceBudget(Room { free: 0, in_flight: 0 }))
        );
        let monthly = Ask {
            token_limits: TokenLimits { tokens_per_minute: None, tokens_per_month: Some(1_000) },
            ..ask(200)
        };
        assert!(matches!(
            ledger.admit(&monthly, Timestamp(0)).decision,
            Err(Refusal::Tokens {
                window: TokenWindow::Month,
                limit: 1_000,
                left: 100,
                retry_after_secs: Some(_)
            })
        ));
        ledger.roll_over(Timestamp(1));
        assert_eq!(ledger.reserve((org, None), (ws, Some(100)), one), Ok(1));
        assert!(ledger.admit(&monthly, Timestamp(1)).decision.is_ok());
    }

    #[test]
    fn requests_per_minute_reset_each_minute_and_say_when() {
        let (_, ws) = ids();
        let mut ledger = Ledger::default();
        let at = |ms: i64| Timestamp(10 * MINUTE_MS + ms);
        let scope = RateScope::Workspace(ws);
        let mut admit = |limit: Option<i64>, now| {
            let ask = Ask {
                rates: [(RateScope::WorkspaceSecond(ws), None), (scope, limit), (key(3), None)],
                ..ask(0)
            };
            ledger.admit(&ask, now).decision
        };
        let held = Ok(Held { money: 0, tokens: 0 });
        assert_eq!(admit(Some(2), at(0)), held);
        assert_eq!(admit(Some(2), at(1_000)), held);
        assert_eq!(admit(Some(2), at(15_500)), Err(Refusal::RateLimited { scope, retry_after_secs: 45 }));
        assert_eq!(admit(Some(2), at(MINUTE_MS)), held, "the next minute");
        assert_eq!(admit(None, at(MINUTE_MS + 1)), held, "no limit");
    }

    #[test]
    fn requests_per_second_count_in_whole_seconds() {
        let (_, ws) = ids();
        let mut ledger = Ledger::default();
        let second = RateScope::WorkspaceSecond(ws);
        let ask = Ask {
            rates: [(second, Some(2)), (RateScope::Workspace(ws), Some(100)), (key(3), None)],
            ..ask(0)
        };
        assert!(ledger.admit(&ask, Timestamp(5_000)).decision.is_ok());
        let verdict = ledger.admit(&ask, Timestamp(5_100));
        assert_eq!(verdict.counts.requests, [2, 2, 0]);
        assert_eq!(
            headroom(&ask, &verdict.counts, Timestamp(5_100)).requests,
            Some(Quota { limit: 2, remaining: 0, reset_ms: 900 }),
            "the tighter limit is reported"
        );
        assert_eq!(
            ledger.admit(&ask, Timestamp(5_900)).decision,
            Err(Refusal::RateLimited { scope: second, retry_after_secs: 1 })
        );
        assert!(ledger.admit(&ask, Timestamp(6_000)).decision.is_ok(), "the next second");
    }

    #[test]
    fn tokens_per_minute_hold_the_worst_case_and_settle_the_real_count() {
        let mut ledger = Ledger::default();
        let limits = TokenLimits { tokens_per_minute: Some(1_000), tokens_per_month: None };
        let big = Ask { token_limits: limits, ..ask(600) };
        let now = Timestamp(0);
        let verdict = ledger.admit(&big, now);
        assert_eq!(verdict.decision, Ok(Held { money: 0, tokens: 600 }));
        let refused = ledger.admit(&big, now);
        assert_eq!(
            refused.decision,
            Err(Refusal::Tokens {
                window: TokenWindow::Minute,
                limit: 1_000,
                left: 400,
                retry_after_secs: Some(60)
            })
        );
        assert_eq!(refused.counts.minute_tokens, 600, "a refusal counts nothing");
        // The first call used 100 of its 600: the rest comes back within the minute.
        ledger.settle(&settlement(Held { money: 0, tokens: 600 }, 0, 100, Some(0)));
        let verdict = ledger.admit(&big, now);
        assert!(verdict.decision.is_ok());
        assert_eq!(
            headroom(&big, &verdict.counts, now).tokens,
            Some(Quota { limit: 1_000, remaining: 300, reset_ms: 60_000 })
        );
        // More than the limit can ever hold says so: no point retrying.
        assert!(matches!(
            ledger.admit(&Ask { token_limits: limits, ..ask(1_001) }, now).decision,
            Err(Refusal::Tokens { retry_after_secs: None, .. })
        ));
        assert!(ledger.admit(&big, Timestamp(MINUTE_MS)).decision.is_ok(), "the next minute");
    }

    #[test]
    fn month_tokens_are_counted_even_without_a_limit() {
        let mut ledger = Ledger::default();
        let now = Timestamp(0);
        let free = ask(500);
        let held = ledger.admit(&free, now).decision.unwrap();
        ledger.settle(&settlement(held, 0, 450, None));
        let limited = Ask {
            token_limits: TokenLimits { tokens_per_minute: None, tokens_per_month: Some(1_000) },
            ..ask(600)
        };
        let verdict = ledger.admit(&limited, now);
        assert_eq!(
            verdict.decision,
            Err(Refusal::Tokens {
                window: TokenWindow::Month,
                limit: 1_000,
                left: 550,
                retry_after_secs: Some(2_678_400)
            })
        );
        assert!(ledger.admit(&Ask { tokens: 550, ..limited }, now).decision.is_ok());
    }

    #[test]
    fn a_key_limit_binds_within_its_workspace_and_refusals_count_nothing() {
        let (_, ws) = ids();
        let mut ledger = Ledger::default();
        let now = Timestamp(0);
        let second = RateScope::WorkspaceSecond(ws);
        let limited =
            Ask { rates: [(second, None), (RateScope::Workspace(ws), Some(3)), (key(3), Some(1))], ..ask(0) };
        assert!(ledger.admit(&limited, now).decision.is_ok());
        assert!(matches!(
            ledger.admit(&limited, now).decision,
            Err(Refusal::RateLimited { scope, .. }) if scope == key(3)
        ));
        // Another key of the workspace still has the workspace's two left.
        let other =
            Ask { rates: [(second, None), (RateScope::Workspace(ws), Some(3)), (key(4), None)], ..ask(0) };
        assert!(ledger.admit(&other, now).decision.is_ok());
        // A budget refusal leaves the minute's count alone.
        assert_eq!(
            ledger.admit(&Ask { workspace_budget: Some(0), hold: Hold::exactly(1), ..other }, now).decision,
            Err(Refusal::WorkspaceBudget(Room { free: 0, in_flight: 0 }))
        );
        assert!(ledger.admit(&other, now).decision.is_ok());
        assert!(ledger.admit(&other, now).decision.is_err(), "3 in all for the workspace");
    }
}
