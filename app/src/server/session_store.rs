//! tower-sessions records kept in our own database.
//!
//! Our own store (rather than one per engine) serves both backends through the
//! one pool, and records the signed-in user beside each session (and how it
//! was signed in), so that all of a person's sessions, or their password ones,
//! can be ended at once. Rows are keyed by a SHA-256 of the session id: the id
//! is a bearer secret, and a copy of the table must not let anyone sign in as
//! the people in it.

use async_trait::async_trait;
use tower_sessions::{
    session::{Id, Record},
    session_store::{self, SessionStore},
};

use super::{
    db::Db,
    secret_key::sha256_hex,
    session::{USER_KEY, VIA_KEY},
};
use crate::{ids::UserId, time::Timestamp};

#[derive(Clone, Debug)]
pub struct DbSessionStore {
    db: Db,
}

impl DbSessionStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Ends every session of `user_id` (removal, password change).
    pub async fn delete_for_user(&self, user_id: UserId) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected())
    }
}

/// What the `sessions` table keeps of a session id.
fn stored_id(id: &Id) -> String {
    sha256_hex(&id.to_string())
}

fn backend(err: sqlx::Error) -> session_store::Error {
    session_store::Error::Backend(err.to_string())
}

fn expiry_millis(record: &Record) -> i64 {
    (record.expiry_date.unix_timestamp_nanos() / 1_000_000) as i64
}

fn user_of(record: &Record) -> Option<String> {
    record.data.get(USER_KEY).and_then(|v| v.as_str()).map(str::to_string)
}

fn via_of(record: &Record) -> Option<String> {
    record.data.get(VIA_KEY).and_then(|v| v.as_str()).map(str::to_string)
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let data =
            serde_json::to_string(&record.data).map_err(|e| session_store::Error::Encode(e.to_string()))?;
        // A fresh id on the (astronomically rare) collision, never an overwrite.
        loop {
            let inserted = sqlx::query(
                "INSERT INTO sessions (id, user_id, via, data, expires_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(stored_id(&record.id))
            .bind(user_of(record))
            .bind(via_of(record))
            .bind(&data)
            .bind(expiry_millis(record))
            .execute(self.db.pool())
            .await
            .map_err(backend)?;
            if inserted.rows_affected() == 1 {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let data =
            serde_json::to_string(&record.data).map_err(|e| session_store::Error::Encode(e.to_string()))?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, via, data, expires_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, via = excluded.via,
                                            data = excluded.data, expires_at = excluded.expires_at",
        )
        .bind(stored_id(&record.id))
        .bind(user_of(record))
        .bind(via_of(record))
        .bind(data)
        .bind(expiry_millis(record))
        .execute(self.db.pool())
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT data, expires_at FROM sessions WHERE id = $1 AND expires_at > $2")
                .bind(stored_id(id))
                .bind(Timestamp::now())
                .fetch_optional(self.db.pool())
                .await
                .map_err(backend)?;
        let Some((data, expires_at)) = row else {
            return Ok(None);
        };
        let data = serde_json::from_str(&data).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(expires_at) * 1_000_000)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record { id: *id, data, expiry_date }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(stored_id(id))
            .execute(self.db.pool())
            .await
            .map_err(backend)?;
        Ok(())
    }
}
