//! Bounded storage: rows whose use has passed are deleted by a periodic sweep.
//!
//! - Raw usage rows (`usage_events`) after the retention the operator sets:
//!   the hourly roll-ups (`usage_hourly`) that reports and budgets read stay.
//! - Expired sessions.
//! - Emails sent, invitations ended (accepted, revoked or expired), and
//!   one-time tokens (password resets, email proofs) once `ENDED_KEPT` has
//!   passed since they ended: long enough to answer "did it reach me?".
//! - SAML assertion ids once they expired (they are kept only to refuse replays).
//!
//! Usage rows go in batches, so a sweep never holds the database for long.

use std::time::Duration;

use super::db::Db;
use crate::time::Timestamp;

/// How often the sweep runs.
pub const SWEEP_EVERY: Duration = Duration::from_secs(600);
/// The default retention of raw usage rows, in days.
pub const USAGE_RETENTION_DAYS: u32 = 90;
/// How long an ended invitation, a sent email or a spent token is kept.
pub const ENDED_KEPT: Duration = Duration::from_secs(30 * 86_400);
/// Usage rows deleted per statement.
const BATCH: i64 = 5_000;

/// What the sweep deleted, per kind of row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub usage_events: u64,
    pub sessions: u64,
    pub outbox: u64,
    pub invitations: u64,
    pub tokens: u64,
    pub saml_assertions: u64,
}

impl Swept {
    pub fn total(&self) -> u64 {
        self.usage_events
            + self.sessions
            + self.outbox
            + self.invitations
            + self.tokens
            + self.saml_assertions
    }
}

/// Deletes what has outlived its use at `now`, raw usage rows older than
/// `usage_retention_days`.
#[tracing::instrument(name = "housekeeping::sweep", skip_all, err(level = "debug"))]
pub async fn sweep(db: &Db, usage_retention_days: u32, now: Timestamp) -> Result<Swept, sqlx::Error> {
    let days = |n: u64| Duration::from_secs(n * 86_400);
    let before = |age: Duration| Timestamp(now.0 - age.as_millis() as i64);
    let usage_horizon = before(days(u64::from(usage_retention_days)));
    let ended = before(ENDED_KEPT);

    let mut usage_events = 0;
    loop {
        let deleted = sqlx::query(
            "DELETE FROM usage_events WHERE id IN (SELECT id FROM usage_events WHERE at < $1 LIMIT $2)",
        )
        .bind(usage_horizon)
        .bind(BATCH)
        .execute(db.pool())
        .await?
        .rows_affected();
        usage_events += deleted;
        if deleted < BATCH as u64 {
            break;
        }
    }
    let delete = |sql: &'static str, at: Timestamp| async move {
        Ok::<u64, sqlx::Error>(sqlx::query(sql).bind(at).execute(db.pool()).await?.rows_affected())
    };
    Ok(Swept {
        usage_events,
        sessions: delete("DELETE FROM sessions WHERE expires_at <= $1", now).await?,
        outbox: delete("DELETE FROM outbox WHERE sent_at < $1", ended).await?,
        invitations: delete(
            "DELETE FROM invitations WHERE COALESCE(accepted_at, revoked_at, expires_at) < $1",
            ended,
        )
        .await?,
        tokens: delete("DELETE FROM password_resets WHERE COALESCE(used_at, expires_at) < $1", ended).await?
            + delete("DELETE FROM email_verifications WHERE expires_at < $1", ended).await?,
        saml_assertions: delete("DELETE FROM saml_assertions_used WHERE expires_at <= $1", now).await?,
    })
}
