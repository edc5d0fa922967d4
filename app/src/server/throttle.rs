//! Throttles: failed log-ins per account and per client address, refused
//! single sign-ons per client address, password reset emails per account and
//! per client address, open sign-ups per client address, invitations per
//! Organization.
//!
//! An attempt is reserved before its password is checked and settled after:
//! attempts under way count against the allowance like failures, so 40
//! parallel guesses get at most `ACCOUNT_MAX_FAILURES` password checks, not
//! 40. A key whose failures fill the allowance inside `window` is refused
//! until its oldest counted failure leaves the window. A success clears the
//! account's record. State is in-process: enough for one replica.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures allowed per account email in the window.
pub const ACCOUNT_MAX_FAILURES: usize = 5;
/// Failures allowed per client address in the window; higher, since offices share addresses.
pub const CLIENT_MAX_FAILURES: usize = 50;
/// Refused single sign-ons allowed per client address in the window: each
/// costs a signature check (or a call to the provider) and an audit event, so
/// nobody can flood either with forged answers.
pub const SSO_REFUSALS_PER_CLIENT: usize = 20;
/// Password reset emails per account address, and per client address, in `RESET_WINDOW`.
pub const RESETS_PER_ACCOUNT: usize = 3;
pub const RESETS_PER_CLIENT: usize = 20;
pub const RESET_WINDOW: Duration = Duration::from_secs(3600);
/// Open sign-ups allowed per client address in `SIGN_UP_WINDOW` (sign-ups from an invitation are not counted).
pub const SIGN_UPS_PER_CLIENT: usize = 20;
pub const SIGN_UP_WINDOW: Duration = Duration::from_secs(3600);
/// Invitations an Organization may send in `INVITATION_WINDOW`: each one is an email.
pub const INVITATIONS_PER_ORG: usize = 1_000;
pub const INVITATION_WINDOW: Duration = Duration::from_secs(3600);
/// What a caller refused only because attempts are under way is told to wait.
const BUSY_WAIT: Duration = Duration::from_secs(1);
/// Bounds memory under a spray of distinct keys.
const MAX_KEYS: usize = 100_000;

#[derive(Debug)]
pub struct Throttle {
    accounts: FailureWindow,
    clients: FailureWindow,
    sso_clients: FailureWindow,
    reset_accounts: FailureWindow,
    reset_clients: FailureWindow,
    sign_ups: FailureWindow,
    invitations: FailureWindow,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            accounts: FailureWindow::new(ACCOUNT_MAX_FAILURES, WINDOW),
            clients: FailureWindow::new(CLIENT_MAX_FAILURES, WINDOW),
            sso_clients: FailureWindow::new(SSO_REFUSALS_PER_CLIENT, WINDOW),
            reset_accounts: FailureWindow::new(RESETS_PER_ACCOUNT, RESET_WINDOW),
            reset_clients: FailureWindow::new(RESETS_PER_CLIENT, RESET_WINDOW),
            sign_ups: FailureWindow::new(SIGN_UPS_PER_CLIENT, SIGN_UP_WINDOW),
            invitations: FailureWindow::new(INVITATIONS_PER_ORG, INVITATION_WINDOW),
        }
    }
}

/// One log-in attempt under way. Settle it with `failed` or `succeeded`; one
/// dropped unsettled (an error before the verdict) counts for nothing.
#[must_use]
pub struct Attempt<'a> {
    /// The account's record (password log-ins) and the client's, each in its window.
    account: Option<(&'a FailureWindow, String)>,
    client: Option<(&'a FailureWindow, String)>,
    settled: bool,
}

impl Throttle {
    /// Counts one open sign-up from `client`; `Err(wait)` once the address made its allowance.
    pub fn sign_up(&self, client: Option<&str>, now: Instant) -> Result<(), Duration> {
        client.map_or(Ok(()), |client| self.sign_ups.take(client, now))
    }

    /// Counts one password reset asked for `account` (whether or not it exists)
    /// from `client`; `Err(wait)` past either's allowance.
    pub fn password_reset(&self, account: &str, client: Option<&str>, now: Instant) -> Result<(), Duration> {
        if let Some(client) = client {
            self.reset_clients.take(client, now)?;
        }
        self.reset_accounts.take(account, now)
    }

    /// Counts one invitation sent by the Organization `org`; `Err(wait)` past its allowance.
    pub fn invitation(&self, org: &str, now: Instant) -> Result<(), Duration> {
        self.invitations.take(org, now)
    }

    /// Reserves an attempt for `account` from `client`; `Err(wait)` while the
    /// account or the client address has no allowance left.
    pub fn begin(&self, account: &str, client: Option<&str>, now: Instant) -> Result<Attempt<'_>, Duration> {
        self.accounts.reserve(account, now)?;
        if let Some(client) = client {
            if let Err(wait) = self.clients.reserve(client, now) {
                self.accounts.release(account, None);
                return Err(wait);
            }
        }
        Ok(Attempt {
            account: Some((&self.accounts, account.to_string())),
            client: client.map(|client| (&self.clients, client.to_string())),
            settled: false,
        })
    }

    /// Reserves the check of an identity provider's answer brought by
    /// `client`; `Err(wait)` while the address has no allowance of refusals left.
    pub fn begin_single_sign_on(&self, client: Option<&str>, now: Instant) -> Result<Attempt<'_>, Duration> {
        if let Some(client) = client {
            self.sso_clients.reserve(client, now)?;
        }
        Ok(Attempt {
            account: None,
            client: client.map(|client| (&self.sso_clients, client.to_string())),
            settled: false,
        })
    }
}

impl Attempt<'_> {
    pub fn failed(mut self, now: Instant) {
        self.settle(Some(now));
    }

    pub fn succeeded(mut self) {
        self.settle(None);
        if let Some((window, account)) = &self.account {
            window.clear(account);
        }
    }

    fn settle(&mut self, failed_at: Option<Instant>) {
        self.settled = true;
        for (window, key) in self.account.iter().chain(&self.client) {
            window.release(key, failed_at);
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.settle(None);
        }
    }
}

#[derive(Debug, Default)]
struct Record {
    failures: VecDeque<Instant>,
    in_flight: usize,
}

#[derive(Debug)]
struct FailureWindow {
    max_failures: usize,
    window: Duration,
    records: Mutex<HashMap<String, Record>>,
}

impl FailureWindow {
    fn new(max_failures: usize, window: Duration) -> Self {
        Self { max_failures, window, records: Mutex::default() }
    }

    /// Counts one more attempt under way, if the allowance has room for it.
    fn reserve(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if records.len() >= MAX_KEYS {
            records.retain(|_, record| {
                self.prune(record, now);
                !record.failures.is_empty() || record.in_flight > 0
            });
        }
        let record = records.entry(key.to_string()).or_default();
        self.prune(record, now);
        if record.failures.len() >= self.max_failures {
            let oldest_counted = record.failures[record.failures.len() - self.max_failures];
            return Err(self.window.saturating_sub(now.duration_since(oldest_counted)).max(BUSY_WAIT));
        }
        if record.failures.len() + record.in_flight >= self.max_failures {
            return Err(BUSY_WAIT);
        }
        record.in_flight += 1;
        Ok(())
    }

    /// Counts an event (a sign-up, an invitation) if the allowance has room for it.
    fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        self.reserve(key, now)?;
        self.release(key, Some(now));
        Ok(())
    }

    /// Ends an attempt under way, counting it as a failure at `failed_at` if given.
    fn release(&self, key: &str, failed_at: Option<Instant>) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let Some(record) = records.get_mut(key) else {
            return;
        };
        record.in_flight = record.in_flight.saturating_sub(1);
        if let Some(at) = failed_at {
            record.failures.push_back(at);
            // Only the newest `max_failures` can matter.
            while record.failures.len() > self.max_failures {
                record.failures.pop_front();
            }
        }
    }

    fn clear(&self, key: &str) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(record) = records.get_mut(key) {
            record.failures.clear();
        }
    }

    fn prune(&self, record: &mut Record, now: Instant) {
        while record.failures.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            record.failures.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_the_account_until_the_window_passes() {
        let throttle = Throttle::default();
        let start = Instant::now();
        for i in 0..ACCOUNT_MAX_FAILURES {
            throttle
                .begin("ada@example.com", None, start)
                .unwrap_or_else(|_| panic!("attempt {i}"))
                .failed(start);
        }
        let later = start + Duration::from_secs(60);
        assert_eq!(
            throttle.begin("ada@example.com", None, later).err(),
            Some(WINDOW - Duration::from_secs(60))
        );
        assert!(throttle.begin("bob@example.com", None, later).is_ok(), "other accounts unaffected");
        assert!(throttle.begin("ada@example.com", None, start + WINDOW).is_ok());
    }

    #[test]
    fn attempts_under_way_count_before_their_verdict() {
        let throttle = Throttle::default();
        let now = Instant::now();
        let under_way: Vec<Attempt> = (0..ACCOUNT_MAX_FAILURES)
            .map(|_| throttle.begin("ada@example.com", None, now).unwrap())
            .collect();
        assert_eq!(
            throttle.begin("ada@example.com", None, now).err(),
            Some(BUSY_WAIT),
            "no sixth check in parallel"
        );
        drop(under_way);
        assert!(
            throttle.begin("ada@example.com", None, now).is_ok(),
            "attempts that ended on an error free their place"
        );
    }

    #[test]
    fn success_clears_the_account() {
        let throttle = Throttle::default();
        let now = Instant::now();
        for _ in 0..ACCOUNT_MAX_FAILURES - 1 {
            throttle.begin("ada@example.com", None, now).unwrap().failed(now);
        }
        throttle.begin("ada@example.com", None, now).unwrap().succeeded();
        for _ in 0..ACCOUNT_MAX_FAILURES {
            throttle.begin("ada@example.com", None, now).unwrap().failed(now);
        }
    }

    #[test]
    fn sign_ups_and_invitations_have_an_allowance_per_window() {
        let throttle = Throttle::default();
        let now = Instant::now();
        for _ in 0..SIGN_UPS_PER_CLIENT {
            throttle.sign_up(Some("203.0.113.9"), now).unwrap();
        }
        assert!(throttle.sign_up(Some("203.0.113.9"), now).is_err());
        assert!(throttle.sign_up(Some("198.51.100.1"), now).is_ok(), "per address");
        assert!(throttle.sign_up(Some("203.0.113.9"), now + SIGN_UP_WINDOW).is_ok(), "the window passes");
        for _ in 0..INVITATIONS_PER_ORG {
            throttle.invitation("org-a", now).unwrap();
        }
        assert!(throttle.invitation("org-a", now).is_err());
        assert!(throttle.invitation("org-b", now).is_ok());
    }

    #[test]
    fn a_client_guessing_across_accounts_is_locked_out() {
        let throttle = Throttle::default();
        let now = Instant::now();
        for i in 0..CLIENT_MAX_FAILURES {
            throttle.begin(&format!("user{i}@example.com"), Some("203.0.113.9"), now).unwrap().failed(now);
        }
        assert!(throttle.begin("new@example.com", Some("203.0.113.9"), now).is_err());
        assert!(throttle.begin("new@example.com", Some("198.51.100.1"), now).is_ok());
    }

    #[test]
    fn refused_single_sign_ons_lock_out_their_address_not_password_log_ins() {
        let throttle = Throttle::default();
        let now = Instant::now();
        throttle.begin_single_sign_on(Some("203.0.113.9"), now).unwrap().succeeded();
        for _ in 0..SSO_REFUSALS_PER_CLIENT {
            throttle.begin_single_sign_on(Some("203.0.113.9"), now).unwrap().failed(now);
        }
        assert!(throttle.begin_single_sign_on(Some("203.0.113.9"), now).is_err());
        assert!(throttle.begin_single_sign_on(Some("198.51.100.1"), now).is_ok(), "per address");
        assert!(throttle.begin("ada@example.com", Some("203.0.113.9"), now).is_ok(), "passwords count apart");
        assert!(
            throttle.begin_single_sign_on(Some("203.0.113.9"), now + WINDOW).is_ok(),
            "the window passes"
        );
    }

    #[test]
    fn password_resets_are_counted_per_account_and_per_address() {
        let throttle = Throttle::default();
        let now = Instant::now();
        for _ in 0..RESETS_PER_ACCOUNT {
            throttle.password_reset("ada@example.com", Some("203.0.113.9"), now).unwrap();
        }
        assert!(throttle.password_reset("ada@example.com", Some("198.51.100.1"), now).is_err());
        assert!(throttle.password_reset("bob@example.com", Some("203.0.113.9"), now).is_ok());
        for i in 0..RESETS_PER_CLIENT - RESETS_PER_ACCOUNT - 1 {
            throttle.password_reset(&format!("user{i}@example.com"), Some("203.0.113.9"), now).unwrap();
        }
        assert!(
            throttle.password_reset("new@example.com", Some("203.0.113.9"), now).is_err(),
            "the address's 21st"
        );
        assert!(throttle.password_reset("ada@example.com", None, now + RESET_WINDOW).is_ok());
    }
}
