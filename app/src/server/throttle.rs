//! Throttling of failed log-ins, per account and per client address.
//!
//! A key that failed `max_failures` times inside `window` is refused until its
//! oldest counted failure leaves the window. A success clears the account's
//! record. State is in-process: enough for one replica.

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
/// Bounds memory under a spray of distinct keys.
const MAX_KEYS: usize = 100_000;

#[derive(Debug)]
pub struct LoginThrottle {
    accounts: FailureWindow,
    clients: FailureWindow,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            accounts: FailureWindow::new(ACCOUNT_MAX_FAILURES, WINDOW),
            clients: FailureWindow::new(CLIENT_MAX_FAILURES, WINDOW),
        }
    }
}

impl LoginThrottle {
    /// `Err(wait)` while the account or the client address is locked out.
    pub fn check(&self, account: &str, client: Option<&str>, now: Instant) -> Result<(), Duration> {
        let wait = self
            .accounts
            .wait(account, now)
            .max(client.map_or(Duration::ZERO, |c| self.clients.wait(c, now)));
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait)
        }
    }

    pub fn record_failure(&self, account: &str, client: Option<&str>, now: Instant) {
        self.accounts.record(account, now);
        if let Some(client) = client {
            self.clients.record(client, now);
        }
    }

    pub fn record_success(&self, account: &str) {
        self.accounts.clear(account);
    }
}

#[derive(Debug)]
struct FailureWindow {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl FailureWindow {
    fn new(max_failures: usize, window: Duration) -> Self {
        Self { max_failures, window, failures: Mutex::default() }
    }

    fn wait(&self, key: &str, now: Instant) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let Some(times) = failures.get_mut(key) else {
            return Duration::ZERO;
        };
        self.prune(times, now);
        if times.len() < self.max_failures {
            return Duration::ZERO;
        }
        let oldest_counted = times[times.len() - self.max_failures];
        self.window.saturating_sub(now.duration_since(oldest_counted))
    }

    fn record(&self, key: &str, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_KEYS {
            failures.retain(|_, times| {
                self.prune(times, now);
                !times.is_empty()
            });
        }
        let times = failures.entry(key.to_string()).or_default();
        self.prune(times, now);
        times.push_back(now);
        // Only the newest `max_failures` can matter.
        while times.len() > self.max_failures {
            times.pop_front();
        }
    }

    fn clear(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    fn prune(&self, times: &mut VecDeque<Instant>, now: Instant) {
        while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            times.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_the_account_until_the_window_passes() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        for i in 0..ACCOUNT_MAX_FAILURES {
            assert!(throttle.check("ada@example.com", None, start).is_ok(), "attempt {i} allowed");
            throttle.record_failure("ada@example.com", None, start);
        }
        let later = start + Duration::from_secs(60);
        assert_eq!(throttle.check("ada@example.com", None, later), Err(WINDOW - Duration::from_secs(60)));
        assert!(throttle.check("bob@example.com", None, later).is_ok(), "other accounts unaffected");
        assert!(throttle.check("ada@example.com", None, start + WINDOW).is_ok());
    }

    #[test]
    fn success_clears_the_account() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..ACCOUNT_MAX_FAILURES {
            throttle.record_failure("ada@example.com", None, now);
        }
        throttle.record_success("ada@example.com");
        assert!(throttle.check("ada@example.com", None, now).is_ok());
    }

    #[test]
    fn a_client_guessing_across_accounts_is_locked_out() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..CLIENT_MAX_FAILURES {
            throttle.record_failure(&format!("user{i}@example.com"), Some("203.0.113.9"), now);
        }
        assert!(throttle.check("new@example.com", Some("203.0.113.9"), now).is_err());
        assert!(throttle.check("new@example.com", Some("198.51.100.1"), now).is_ok());
    }
}
