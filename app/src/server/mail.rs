//! Outgoing email. Messages are queued in the `outbox` table in the same
//! transaction as the change that sends them; the operator reads undelivered
//! ones with `chancery outbox` (no SMTP delivery yet).

use sqlx::AnyConnection;

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

/// A queued message.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Message {
    pub to_email: String,
    pub subject: String,
    pub body: String,
    pub created_at: Timestamp,
}

/// The newest messages first.
pub async fn outbox(db: &super::db::Db, limit: i64) -> Result<Vec<Message>, sqlx::Error> {
    sqlx::query_as("SELECT to_email, subject, body, created_at FROM outbox ORDER BY created_at DESC LIMIT $1")
        .bind(limit)
        .fetch_all(db.pool())
        .await
}
