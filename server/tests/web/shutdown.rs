//! No usage lost when the process stops: the `chancery` binary, stopped by
//! SIGTERM right after a burst of answered calls, writes every one before it
//! exits; killed by SIGKILL, it replays its spool at the next start.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use futures_util::{stream, StreamExt};
use serde_json::json;

use crate::{common::TestApp, gateway::billed};

crate::on_both_databases!(sigterm_writes_every_answered_call, sigkill_loses_nothing_once_restarted);

const BURST: usize = 400;

/// A `chancery serve` of the test's own, on `app`'s database.
pub struct Process {
    child: Child,
    pub url: String,
}

impl Process {
    async fn start(app: &TestApp, spool: &Path) -> Self {
        Self::start_with(app, spool, &[]).await
    }

    /// Started with these environment variables besides the database's and the spool's.
    pub async fn start_with(app: &TestApp, spool: &Path, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(env!("CARGO_BIN_EXE_chancery"))
            .arg("serve")
            .envs(env.iter().copied())
            .env("DATABASE_URL", &app.database_url)
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .env("LEPTOS_OUTPUT_NAME", "chancery")
            .env("CHANCERY_SPOOL_DIR", spool)
            .env("CHANCERY_SECRET_KEY_FILE", spool.with_extension("key"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("the chancery binary starts");
        // Owned at once, so a panic below still stops it (see `Drop`).
        let process = Self { child, url: format!("http://127.0.0.1:{port}") };
        for _ in 0..200 {
            let health = reqwest::get(format!("{}/healthz", process.url)).await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return process;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("chancery did not start");
    }

    /// Makes `BURST` chat calls, 50 at a time, and returns how many were answered.
    async fn burst(&self, key: &str) -> usize {
        let client = reqwest::Client::new();
        let body = json!({ "model": "mistral-small-latest", "messages": [{ "role": "user", "content": "Count me" }], "max_tokens": 16 });
        stream::iter(0..BURST)
            .map(|_| {
                let request =
                    client.post(format!("{}/v1/chat/completions", self.url)).bearer_auth(key).json(&body);
                async move { request.send().await.is_ok_and(|r| r.status().is_success()) }
            })
            .buffer_unordered(50)
            .filter(|answered| std::future::ready(*answered))
            .count()
            .await
    }

    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status();
        assert!(sent.unwrap().success());
    }

    /// Waits for the process to end by itself.
    pub async fn exit(mut self) {
        for _ in 0..200 {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("chancery did not stop");
    }
}

impl Drop for Process {
    /// A failed test leaves no server behind.
    fn drop(&mut self) {
        if self.child.try_wait().is_ok_and(|status| status.is_none()) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

pub fn spool_dir() -> PathBuf {
    std::env::temp_dir().join(format!("chancery-spool-{}", uuid::Uuid::new_v4().simple()))
}

/// Usage rows and the spend they record.
async fn recorded(app: &TestApp) -> (i64, i64) {
    sqlx::query_as("SELECT COUNT(*), CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) FROM usage_events")
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

async fn sigterm_writes_every_answered_call(app: TestApp) {
    let (_org, _admin_key, key) = billed(&app).await;
    let spool = spool_dir();
    let process = Process::start(&app, &spool).await;
    let answered = process.burst(&key).await;
    assert_eq!(answered, BURST);
    process.signal("TERM");
    process.exit().await;
    let (rows, _) = recorded(&app).await;
    assert_eq!(rows, BURST as i64, "every answered call written before exit");
    assert!(
        std::fs::read_dir(&spool).unwrap().all(|f| f.unwrap().file_name() == "spool.lock"),
        "spool emptied"
    );
    println!("SIGTERM after {BURST} answered calls: {rows} usage rows");
}

async fn sigkill_loses_nothing_once_restarted(app: TestApp) {
    let (_org, _admin_key, key) = billed(&app).await;
    let spool = spool_dir();
    let process = Process::start(&app, &spool).await;
    let answered = process.burst(&key).await;
    assert_eq!(answered, BURST);
    process.signal("KILL");
    process.exit().await;
    let (written_before, _) = recorded(&app).await;
    // The next start replays the spool before it counts the month's spend.
    let restarted = Process::start(&app, &spool).await;
    let (rows, spent) = recorded(&app).await;
    assert_eq!(rows, BURST as i64, "{written_before} written before the kill, the rest replayed");
    let answer = restarted.burst(&key).await;
    assert_eq!(answer, BURST);
    restarted.signal("TERM");
    restarted.exit().await;
    let (rows_after, spent_after) = recorded(&app).await;
    assert_eq!(rows_after, 2 * BURST as i64, "nothing counted twice");
    assert_eq!(spent_after, 2 * spent);
    println!(
        "SIGKILL after {BURST} answered calls: {written_before} rows written before, {rows} after restart"
    );
}
