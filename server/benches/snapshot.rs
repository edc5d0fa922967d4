//! The gateway's snapshot at enterprise size. With `BENCH_KEYS` live keys
//! (200,000 unless told) and as many revoked 60 days ago, it measures in one run:
//! loading the snapshot whole as it was loaded before (every key ever made) —
//! the baseline — against loading only the keys that can still answer, and
//! applying one change against reloading whole; the time, and the memory the
//! snapshot holds (counted by this binary's allocator).
//!
//! `cargo bench -p server --bench snapshot`: SQLite in a temporary file, then
//! PostgreSQL in a temporary database when `CHANCERY_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432`) answers.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicIsize, Ordering},
    time::{Duration, Instant},
};

mod common;

use app::{
    server::{
        db::Db,
        gateway::snapshot::{Changes, Snapshot},
    },
    time::Timestamp,
};

/// Counts the bytes this process holds, to weigh a snapshot.
struct Counting;

static HELD: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ROUNDS: usize = 5;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let keys: usize = std::env::var("BENCH_KEYS").ok().and_then(|s| s.parse().ok()).unwrap_or(200_000);

    common::on_both_engines(async |engine, db| measure(engine, db, keys).await).await
}

async fn measure(engine: &str, db: &Db, keys: usize) -> anyhow::Result<()> {
    let org = common::organization(db).await?;
    let (org_id, workspace_id) = (org.id, org.workspace);
    let now = Timestamp::now();
    let started = Instant::now();
    common::insert_keys(db, org_id, workspace_id, keys, None).await?;
    common::insert_keys(db, org_id, workspace_id, keys, Some(Timestamp(now.0 - 60 * DAY_MS))).await?;
    println!(
        "\n{engine}: {keys} live keys and {keys} revoked 60 days ago, inserted in {}",
        shown(started.elapsed())
    );

    // As of the epoch every key is within its grace: what was loaded before.
    let every_key = load_whole(db, Timestamp(0)).await?;
    let still_answering = load_whole(db, now).await?;
    println!("{:<44} {:>10} {:>8} {:>10} {:>8}", "", "time", "ratio", "memory", "keys");
    every_key.print("whole, every key ever made (baseline)", &every_key);
    still_answering.print("whole, keys that can still answer", &every_key);

    // One key revoked, applied change by change.
    let mut snapshot = Snapshot::load(db, now).await?;
    let mut applying = Vec::new();
    for round in 0..ROUNDS * 4 {
        sqlx::query("UPDATE workspace_api_keys SET revoked_at = $1 WHERE public_id = $2")
            .bind(now)
            .bind(format!("bench{round:020}"))
            .execute(db.pool())
            .await?;
        let started = Instant::now();
        let changes = Changes::since(db, snapshot.version, now).await?.expect("the change is logged");
        snapshot.apply(changes);
        applying.push(started.elapsed());
    }
    let one_change = median(applying);
    println!(
        "{:<44} {:>10} {:>8}",
        "one key revoked, applied",
        shown(one_change),
        ratio(one_change, every_key.time)
    );
    let mut idle = Vec::new();
    for _ in 0..ROUNDS * 4 {
        let started = Instant::now();
        let changes = Changes::since(db, snapshot.version, now).await?.expect("nothing to apply");
        snapshot.apply(changes);
        idle.push(started.elapsed());
    }
    let idle = median(idle);
    println!(
        "{:<44} {:>10} {:>8}",
        "nothing changed (each half second)",
        shown(idle),
        ratio(idle, every_key.time)
    );

    // A bulk change logs one row per key without slowing down per row.
    let started = Instant::now();
    let bulk = sqlx::query(
        "UPDATE workspace_api_keys SET revoked_at = $1 WHERE revoked_at IS NULL AND public_id < $2",
    )
    .bind(now)
    .bind(format!("bench{:020}", keys / 10))
    .execute(db.pool())
    .await?
    .rows_affected();
    println!("{:<44} {:>10}", format!("{bulk} keys revoked in one statement"), shown(started.elapsed()));
    Ok(())
}

struct Loaded {
    time: Duration,
    bytes: isize,
    keys: usize,
}

impl Loaded {
    fn print(&self, what: &str, baseline: &Loaded) {
        println!(
            "{what:<44} {:>10} {:>8} {:>7.1} MB {:>8}",
            shown(self.time),
            ratio(self.time, baseline.time),
            self.bytes as f64 / 1e6,
            self.keys
        );
    }
}

/// Loads whole `ROUNDS` times: the median time, and what one snapshot holds.
async fn load_whole(db: &Db, now: Timestamp) -> anyhow::Result<Loaded> {
    let mut times = Vec::new();
    let mut bytes = 0;
    let mut keys = 0;
    for _ in 0..ROUNDS {
        let before = HELD.load(Ordering::Relaxed);
        let started = Instant::now();
        let snapshot = Snapshot::load(db, now).await?;
        times.push(started.elapsed());
        bytes = HELD.load(Ordering::Relaxed) - before;
        keys = snapshot.keys.len();
    }
    Ok(Loaded { time: median(times), bytes, keys })
}

/// `time` against `baseline`: `0.36x`, or `1/2900x` when far below.
fn ratio(time: Duration, baseline: Duration) -> String {
    let ratio = time.as_secs_f64() / baseline.as_secs_f64();
    if ratio >= 0.01 {
        format!("{ratio:.2}x")
    } else {
        format!("1/{:.0}x", 1.0 / ratio)
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn shown(time: Duration) -> String {
    let ms = time.as_secs_f64() * 1e3;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.2} ms")
    }
}
