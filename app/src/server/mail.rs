//! Outgoing email. Messages are queued in the `outbox` table in the same
//! transaction as the change that sends them, so none is lost. When an SMTP
//! server is configured, `deliver_forever` sends them (retrying with back-off);
//! otherwise they stay in the outbox and the operator reads them with
//! `chancery outbox`.

use std::time::Duration;

use lettre::{message::Mailbox, AsyncSmtpTransport, AsyncTransport, Message as Email, Tokio1Executor};
use sqlx::AnyConnection;

use super::db::Db;
use crate::time::Timestamp;

pub async fn queue(conn: &mut AnyConnection, to: &str, subject: &str, body: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO outbox (id, to_email, subject, body, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(to)
        .bind(subject)
        .bind(body)
        .bind(Timestamp::now())
        .execute(conn)
        .await?;
    Ok(())
}

/// Paths of links that act as a secret (whoever holds one can use it).
const ONE_TIME_LINK_PATHS: [&str; 3] =
    ["/invite/", super::recovery::RESET_LINK_PATH, super::recovery::VERIFY_LINK_PATH];

/// The body as kept once delivered: one-time links are gone, so the outbox
/// holds no usable secret. (Without SMTP, the outbox is the delivery itself:
/// links stay until used, and stop working once accepted, revoked or resent.)
pub fn redact_one_time_links(body: &str) -> String {
    let mut kept = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
        kept.push_str(&rest[..start]);
        let word_end = rest[start..].find(char::is_whitespace).map_or(rest.len(), |end| start + end);
        let word = &rest[start..word_end];
        if ONE_TIME_LINK_PATHS.iter().any(|path| word.contains(path)) {
            kept.push_str("[link removed after delivery]");
        } else {
            kept.push_str(word);
        }
        rest = &rest[word_end..];
    }
    kept.push_str(rest);
    kept
}

/// A queued message and how its delivery went.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Message {
    pub to_email: String,
    pub subject: String,
    pub body: String,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// The newest messages first.
#[tracing::instrument(name = "mail::outbox", skip_all, err(level = "debug"))]
pub async fn outbox(db: &Db, limit: i64) -> Result<Vec<Message>, sqlx::Error> {
    sqlx::query_as(
        "SELECT to_email, subject, body, created_at, sent_at, attempts, last_error
         FROM outbox ORDER BY created_at DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db.pool())
    .await
}

#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("the SMTP URL is not valid (expected smtp://, smtps:// or smtp://...?tls=required): {0}")]
    Url(lettre::transport::smtp::Error),
    #[error("the sender address {0:?} is not a valid mailbox (e.g. \"Chancery <chancery@example.com>\")")]
    From(String),
}

/// Sends the outbox through one SMTP server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// `url` is lettre's form: `smtp://user:pass@host:587?tls=required` (STARTTLS),
    /// `smtps://user:pass@host:465` (TLS), or `smtp://host:25` (plain, for a local relay).
    pub fn new(url: &str, from: &str) -> Result<Self, MailerError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(MailerError::Url)?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from = from.parse().map_err(|_| MailerError::From(from.to_string()))?;
        Ok(Self { transport, from })
    }

    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), String> {
        let to: Mailbox = to.parse().map_err(|e| format!("bad recipient address: {e}"))?;
        let email = Email::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .body(body.to_string())
            .map_err(|e| format!("cannot build the message: {e}"))?;
        self.transport.send(email).await.map(|_| ()).map_err(|e| e.to_string())
    }
}

/// How long a server holds a message it is sending before another may try it.
const LEASE_MS: i64 = 60_000;
const BATCH: i64 = 20;

/// The wait before try number `attempts + 1`: 30 s, doubling, at most an hour.
pub fn retry_delay_ms(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.clamp(1, 8) - 1).unwrap_or(0);
    (30_000_i64 << doublings).min(3_600_000)
}

/// Sends the messages that are due. Returns how many were sent; failures are
/// kept for a later try with their error.
#[tracing::instrument(name = "mail::deliver_pending", skip_all, err(level = "debug"))]
pub async fn deliver_pending(db: &Db, mailer: &Mailer) -> Result<usize, sqlx::Error> {
    let now = Timestamp::now();
    let due: Vec<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT id, to_email, subject, body, attempts FROM outbox
         WHERE sent_at IS NULL AND (next_attempt_at IS NULL OR next_attempt_at <= $1)
         ORDER BY created_at LIMIT $2",
    )
    .bind(now)
    .bind(BATCH)
    .fetch_all(db.pool())
    .await?;
    let mut sent = 0;
    for (id, to, subject, body, attempts) in due {
        // Take a lease first, so a second server skips this message.
        let claimed = sqlx::query(
            "UPDATE outbox SET next_attempt_at = $1, attempts = attempts + 1
             WHERE id = $2 AND sent_at IS NULL AND attempts = $3",
        )
        .bind(now.0 + LEASE_MS)
        .bind(&id)
        .bind(attempts)
        .execute(db.pool())
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            continue;
        }
        match mailer.send(&to, &subject, &body).await {
            Ok(()) => {
                sqlx::query("UPDATE outbox SET sent_at = $1, last_error = NULL, body = $2 WHERE id = $3")
                    .bind(Timestamp::now())
                    .bind(redact_one_time_links(&body))
                    .bind(&id)
                    .execute(db.pool())
                    .await?;
                sent += 1;
            }
            Err(error) => {
                tracing::warn!(message_id = %id, attempt = attempts + 1, %error, "email not delivered; will retry");
                sqlx::query("UPDATE outbox SET last_error = $1, next_attempt_at = $2 WHERE id = $3")
                    .bind(&error)
                    .bind(Timestamp::now().0 + retry_delay_ms(attempts + 1))
                    .bind(&id)
                    .execute(db.pool())
                    .await?;
            }
        }
    }
    Ok(sent)
}

/// Delivers the outbox every few seconds, for as long as the server runs.
pub async fn deliver_forever(db: Db, mailer: Mailer) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tick.tick().await;
        match deliver_pending(&db, &mailer).await {
            Ok(0) => {}
            Ok(sent) => tracing::info!(sent, "emails delivered"),
            Err(error) => tracing::error!(%error, "cannot read the outbox"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{redact_one_time_links, retry_delay_ms};

    #[test]
    fn delivered_bodies_keep_no_one_time_link() {
        let body = "Join Engines.\n\nAccept within 7 days: https://c.example/invite/inv_AbC_s3cr3t\n\nBye.";
        assert_eq!(
            redact_one_time_links(body),
            "Join Engines.\n\nAccept within 7 days: [link removed after delivery]\n\nBye."
        );
        assert_eq!(redact_one_time_links("No link here. "), "No link here. ");
    }

    #[test]
    fn retries_back_off_to_an_hour() {
        let delays: Vec<i64> = (1..=9).map(retry_delay_ms).collect();
        assert_eq!(delays[..4], [30_000, 60_000, 120_000, 240_000]);
        assert_eq!(*delays.last().unwrap(), 3_600_000);
    }
}
