//! What the gateway costs: `POST /v1/chat/completions` through Chancery's
//! gateway (key check, model allow-list, requests-per-minute count, budget hold
//! and settlement, metering) against the same mock provider served bare. Both
//! run in this process behind axum on loopback TCP and are measured in the same
//! run, in alternating rounds, so the ratios compare like with like.
//!
//! `cargo bench -p server --bench gateway` (release build, SQLite in a temporary
//! file). `BENCH_SCALE=4` runs four times as many requests.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

mod common;

use app::server::{
    db::Db,
    gateway::{meter, shared::SharedCounters, Gateway, Metering},
    state::AppState,
};
use axum::Router;
use leptos::config::LeptosOptions;
use serde_json::json;

const CONCURRENCY: usize = 64;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let scale: usize = std::env::var("BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let sequential_per_round = 500 * scale;
    let rounds = 4;
    let concurrent_total = 10_000 * scale;

    let path = std::env::temp_dir().join(format!("chancery-bench-{}.db", uuid::Uuid::new_v4().simple()));
    let db = Db::connect_and_migrate(&format!("sqlite://{}?mode=rwc", path.display())).await?;
    let key = common::workspace_key_with_limits(&db).await?;

    let mut targets = vec![
        Target::serve("bare mock", server::gateway::bare_mock_routes(), None, None).await?,
        Target::gateway("gateway", &db, None, &key).await?,
    ];
    let redis_url = std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("chancery-bench-{}", uuid::Uuid::new_v4().simple());
    match SharedCounters::connect(&redis_url, &prefix).await {
        Ok(counters) => {
            targets.push(Target::gateway("gateway, Redis counters", &db, Some(counters), &key).await?)
        }
        Err(_) => println!("(no Redis at {redis_url}: the shared-counter gateway is not measured)"),
    }
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build()?;

    for target in &targets {
        target.sequential(&client, 200).await?; // warm-up: connections, caches, allocator
    }
    let mut latencies = vec![Vec::new(); targets.len()];
    for _ in 0..rounds {
        for (i, target) in targets.iter().enumerate() {
            latencies[i].extend(target.sequential(&client, sequential_per_round).await?);
        }
    }
    let mut throughput = vec![0.0; targets.len()];
    for _ in 0..2 {
        for (i, target) in targets.iter().enumerate() {
            throughput[i] += target.concurrent(&client, concurrent_total / 2).await? / 2.0;
        }
    }

    let percentiles: Vec<(Duration, Duration)> = latencies
        .into_iter()
        .map(|mut l| {
            l.sort();
            (percentile(&l, 50), percentile(&l, 99))
        })
        .collect();
    let requests = sequential_per_round * rounds;
    println!("gateway benchmark: {requests} sequential requests per target, {concurrent_total} at concurrency {CONCURRENCY}");
    println!(
        "{:<26}{:>10}{:>10}{:>12}{:>10}{:>10}{:>10}",
        "", "p50", "p99", "req/s c=64", "p50 ×", "p99 ×", "req/s ×"
    );
    let (bare, bare_rps) = (percentiles[0], throughput[0]);
    for ((target, (p50, p99)), rps) in targets.iter().zip(&percentiles).zip(&throughput) {
        println!(
            "{:<26}{:>10}{:>10}{:>12.0}{:>10.2}{:>10.2}{:>10.2}",
            target.name,
            micros(*p50),
            micros(*p99),
            rps,
            p50.as_secs_f64() / bare.0.as_secs_f64(),
            p99.as_secs_f64() / bare.1.as_secs_f64(),
            rps / bare_rps
        );
    }
    for (target, (p50, p99)) in targets.iter().zip(&percentiles).skip(1) {
        println!(
            "added by {}: {} at p50, {} at p99",
            target.name,
            micros(p50.saturating_sub(bare.0)),
            micros(p99.saturating_sub(bare.1))
        );
    }

    // Metering must have kept every request the gateways answered.
    let mut answered = 0;
    for target in &targets[1..] {
        if let Some(gateway) = &target.gateway {
            gateway.flush().await;
        }
        answered += target.answered.load(Ordering::Relaxed);
    }
    let (metered,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM usage_events").fetch_one(db.pool()).await?;
    println!("metered: {metered} usage events for {answered} answered gateway requests");
    db.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    forget_redis_keys(&redis_url, &prefix).await;
    anyhow::ensure!(metered as usize == answered, "the meter lost {} requests", answered - metered as usize);
    Ok(())
}

async fn forget_redis_keys(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else { return };
    let Ok(mut redis) = client.get_multiplexed_async_connection().await else { return };
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut redis).await.unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut redis).await;
    }
}

struct Target {
    name: &'static str,
    url: String,
    bearer: Option<String>,
    /// Absent for the bare mock.
    gateway: Option<Arc<Gateway>>,
    answered: AtomicUsize,
}

impl Target {
    async fn serve(
        name: &'static str,
        router: Router,
        bearer: Option<String>,
        gateway: Option<Arc<Gateway>>,
    ) -> anyhow::Result<Arc<Self>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/v1/chat/completions", listener.local_addr()?);
        tokio::spawn(async move {
            axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await
        });
        Ok(Arc::new(Self { name, url, bearer, gateway, answered: AtomicUsize::new(0) }))
    }

    /// Chancery's whole router, its gateway counting in this process or in Redis.
    async fn gateway(
        name: &'static str,
        db: &Db,
        counters: Option<SharedCounters>,
        key: &str,
    ) -> anyhow::Result<Arc<Self>> {
        let spool_dir =
            std::env::temp_dir().join(format!("chancery-bench-spool-{}", uuid::Uuid::new_v4().simple()));
        let metering = Metering { spool_dir, queue: meter::QUEUE_CAPACITY };
        let gateway = Gateway::start(db.clone(), counters, &metering).await?;
        let options = LeptosOptions::builder().output_name("chancery").site_root("target/site").build();
        let state = AppState::new(
            options,
            db.clone(),
            gateway.clone(),
            0,
            "http://localhost".into(),
            app::server::sealed::SealingKey::random(),
        );
        Self::serve(name, server::router(state, false), Some(key.to_string()), Some(gateway)).await
    }

    async fn call(&self, client: &reqwest::Client) -> anyhow::Result<()> {
        let body = json!({
            "model": "mistral-small-latest",
            "messages": [{ "role": "user", "content": "Summarise the quarterly report in three bullet points." }],
            "max_tokens": 64,
        });
        let mut request = client.post(&self.url).json(&body);
        if let Some(bearer) = &self.bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        anyhow::ensure!(status.is_success(), "{} answered {status}: {text}", self.name);
        self.answered.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// One request at a time; each one's latency.
    async fn sequential(&self, client: &reqwest::Client, n: usize) -> anyhow::Result<Vec<Duration>> {
        let mut latencies = Vec::with_capacity(n);
        for _ in 0..n {
            let started = Instant::now();
            self.call(client).await?;
            latencies.push(started.elapsed());
        }
        Ok(latencies)
    }

    /// `total` requests from `CONCURRENCY` callers; requests per second.
    async fn concurrent(self: &Arc<Self>, client: &reqwest::Client, total: usize) -> anyhow::Result<f64> {
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let callers: Vec<_> = (0..CONCURRENCY)
            .map(|_| {
                let (target, client, next) = (self.clone(), client.clone(), next.clone());
                tokio::spawn(async move {
                    while next.fetch_add(1, Ordering::Relaxed) < total {
                        target.call(&client).await?;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for caller in callers {
            caller.await??;
        }
        Ok(total as f64 / started.elapsed().as_secs_f64())
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn micros(d: Duration) -> String {
    format!("{} µs", d.as_micros())
}
