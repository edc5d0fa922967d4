//! In-process counters of the gateway: requests per minute per workspace and
//! per key, and
//! this month's spend per workspace and organization with the holds of requests
//! in flight. A request reserves its worst-case cost before it is forwarded and
//! settles its real cost after, so concurrent requests cannot overspend. When
//! the budgets cannot cover all a request wants, it may take what is left, down
//! to the least it can use (the gateway then lowers its `max_tokens`).
//!
//! These counters belong to one process, right for one replica; several
//! replicas share theirs in Redis (`shared.rs`), under the same rules.

use std::collections::HashMap;

use crate::{
    ids::{ApiKeyId, OrgId, WorkspaceId},
    time::Timestamp,
};

/// Where money is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Org(OrgId),
    Workspace(WorkspaceId),
}

/// What a requests-per-minute limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateScope {
    Workspace(WorkspaceId),
    Key(ApiKeyId),
}

/// Why a request may not spend. A budget refusal tells the room under the
/// limit that refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    RateLimited { scope: RateScope, retry_after_secs: u64 },
    WorkspaceBudget(Room),
    OrgBudget(Room),
}

impl Refusal {
    /// A budget refusal that calls in flight could lift when they settle
    /// (they rarely spend all they hold), for a request needing `least`.
    pub fn may_lift(&self, least: i64) -> bool {
        match self {
            Self::WorkspaceBudget(room) | Self::OrgBudget(room) => room.free + room.in_flight >= least,
            Self::RateLimited { .. } => false,
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

#[derive(Debug, Default)]
pub struct Ledger {
    /// The calendar month the spend counts belong to.
    month: Timestamp,
    spent: HashMap<Scope, i64>,
    held: HashMap<Scope, i64>,
    /// Per limited workspace or key: the minute (Unix minutes) and the requests counted in it.
    windows: HashMap<RateScope, (i64, i64)>,
}

const MINUTE_MS: i64 = 60_000;

/// The Unix minute of `now`: limits count in fixed one-minute windows.
pub fn minute_of(now: Timestamp) -> i64 {
    now.0.div_euclid(MINUTE_MS)
}

/// A `Retry-After` for a full window: the seconds until the next minute, at least 1.
pub fn seconds_to_next_minute(now: Timestamp) -> u64 {
    let next_minute_ms = (minute_of(now) + 1) * MINUTE_MS - now.0;
    u64::try_from((next_minute_ms + 999) / 1000).unwrap_or(60).max(1)
}

impl Ledger {
    /// Starts a month with the spend already recorded for it.
    pub fn new(month: Timestamp, spent: HashMap<Scope, i64>) -> Self {
        Self { month, spent, ..Self::default() }
    }

    pub fn month(&self) -> Timestamp {
        self.month
    }

    /// A new month starts from nothing spent; holds in flight stay.
    pub fn roll_over(&mut self, month: Timestamp) {
        if month != self.month {
            self.month = month;
            self.spent.clear();
        }
    }

    /// Admits a request: under each per-minute limit (`None`: no limit) and
    /// within both budgets, it is counted and what the budgets allow of `hold`
    /// is held and returned; refused, nothing changes.
    pub fn admit(
        &mut self,
        rates: &[(RateScope, Option<i64>)],
        org: (OrgId, Option<i64>),
        workspace: (WorkspaceId, Option<i64>),
        hold: Hold,
        now: Timestamp,
    ) -> Result<i64, Refusal> {
        let minute = minute_of(now);
        for &(scope, limit) in rates {
            let Some(limit) = limit else { continue };
            let counted = match self.windows.get(&scope) {
                Some(&(at, count)) if at == minute => count,
                _ => 0,
            };
            if counted >= limit {
                return Err(Refusal::RateLimited { scope, retry_after_secs: seconds_to_next_minute(now) });
            }
        }
        let held = self.reserve(org, workspace, hold)?;
        for &(scope, limit) in rates {
            if limit.is_some() {
                let window = self.windows.entry(scope).or_insert((minute, 0));
                if window.0 != minute {
                    *window = (minute, 0);
                }
                window.1 += 1;
            }
        }
        Ok(held)
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

    /// Releases a hold and books the real cost (zero to release only), which
    /// may be more than the hold: what the provider reports is what was spent.
    pub fn settle(&mut self, org: OrgId, workspace: WorkspaceId, held: i64, cost: i64) {
        for scope in [Scope::Org(org), Scope::Workspace(workspace)] {
            let hold = self.held.entry(scope).or_default();
            *hold = (*hold - held).max(0);
            *self.spent.entry(scope).or_default() += cost;
        }
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

    #[test]
    fn holds_count_against_budgets_until_settled() {
        let (org, ws) = ids();
        let mut ledger = Ledger::new(Timestamp(0), HashMap::new());
        let forty = Hold::exactly(40);
        // Budget 100: two holds of 40 fit, a third does not, whatever they will really cost.
        assert_eq!(ledger.reserve((org, None), (ws, Some(100)), forty), Ok(40));
        assert_eq!(ledger.reserve((org, None), (ws, Some(100)), forty), Ok(40));
        assert_eq!(
            ledger.reserve((org, None), (ws, Some(100)), forty),
            Err(Refusal::WorkspaceBudget(Room { free: 20, in_flight: 80 }))
        );
        // Settling at the real cost frees the rest of the hold.
        ledger.settle(org, ws, 40, 10);
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
        ledger.settle(org, ws, 40, 55);
        assert_eq!(ledger.spent(Scope::Workspace(ws)), 55);
        let refused = ledger.reserve((org, Some(1_000)), (ws, Some(100)), hold).unwrap_err();
        assert_eq!(refused, Refusal::WorkspaceBudget(Room { free: -15, in_flight: 60 }));
        assert!(refused.may_lift(15), "the call in flight may spend less than its 60");
        ledger.settle(org, ws, 60, 60);
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
        let mut spent = HashMap::new();
        spent.insert(Scope::Workspace(ws), 100);
        let mut ledger = Ledger::new(Timestamp(0), spent);
        let one = Hold::exactly(1);
        assert_eq!(
            ledger.reserve((org, None), (ws, Some(100)), one),
            Err(Refusal::WorkspaceBudget(Room { free: 0, in_flight: 0 }))
        );
        ledger.roll_over(Timestamp(1));
        assert_eq!(ledger.reserve((org, None), (ws, Some(100)), one), Ok(1));
    }

    #[test]
    fn requests_per_minute_reset_each_minute_and_say_when() {
        let (org, ws) = ids();
        let mut ledger = Ledger::default();
        let at = |ms: i64| Timestamp(10 * MINUTE_MS + ms);
        let scope = RateScope::Workspace(ws);
        let mut admit = |limit: Option<i64>, now| {
            ledger.admit(&[(scope, limit)], (org, None), (ws, None), Hold::exactly(0), now)
        };
        assert_eq!(admit(Some(2), at(0)), Ok(0));
        assert_eq!(admit(Some(2), at(1_000)), Ok(0));
        assert_eq!(admit(Some(2), at(15_500)), Err(Refusal::RateLimited { scope, retry_after_secs: 45 }));
        assert_eq!(admit(Some(2), at(MINUTE_MS)), Ok(0), "the next minute");
        assert_eq!(admit(None, at(MINUTE_MS + 1)), Ok(0), "no limit");
    }

    #[test]
    fn a_key_limit_binds_within_its_workspace_and_refusals_count_nothing() {
        let (org, ws) = ids();
        let key = RateScope::Key(ApiKeyId(uuid::Uuid::from_u128(3)));
        let mut ledger = Ledger::default();
        let now = Timestamp(0);
        let rates = [(RateScope::Workspace(ws), Some(3)), (key, Some(1))];
        let nothing = Hold::exactly(0);
        assert_eq!(ledger.admit(&rates, (org, None), (ws, None), nothing, now), Ok(0));
        assert!(matches!(
            ledger.admit(&rates, (org, None), (ws, None), nothing, now),
            Err(Refusal::RateLimited { scope, .. }) if scope == key
        ));
        // Another key of the workspace still has the workspace's two left.
        let other =
            [(RateScope::Workspace(ws), Some(3)), (RateScope::Key(ApiKeyId(uuid::Uuid::from_u128(4))), None)];
        assert_eq!(ledger.admit(&other, (org, None), (ws, None), nothing, now), Ok(0));
        // A budget refusal leaves the minute's count alone.
        assert_eq!(
            ledger.admit(&other, (org, None), (ws, Some(0)), Hold::exactly(1), now),
            Err(Refusal::WorkspaceBudget(Room { free: 0, in_flight: 0 }))
        );
        assert_eq!(ledger.admit(&other, (org, None), (ws, None), nothing, now), Ok(0));
        assert!(
            ledger.admit(&other, (org, None), (ws, None), nothing, now).is_err(),
            "3 in all for the workspace"
        );
    }
}
