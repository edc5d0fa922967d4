//! The gateway as its users pay for it, measured from outside. A load
//! generator in a process of its own (wrk) sends chat completions, plain and
//! streamed, to a minimal upstream (this program, started again as a separate
//! process) four ways, in alternating rounds of one run:
//!
//! - **direct**: the upstream itself;
//! - **hop**: nginx as a plain reverse proxy (keepalive to the upstream, no
//!   buffering), the floor for any gateway on this machine;
//! - **chancery**: the release `chancery` binary forwarding to the upstream
//!   with its governance on (key, allow-list, rate and token limits, budget
//!   hold and settlement, metering), counting in its process;
//! - **chancery, Redis**: the same, counting in Redis (`REDIS_URL`).
//!
//! It prints latency at concurrency 1 (p50, p99) and throughput at 64, with
//! ratios to the hop, and the time to a stream's first byte; then checks the
//! governance: every answered call was metered, and once the budget is spent
//! every call is refused with 429.
//!
//! One command: `scripts/bench-gateway.sh` (installs nginx and wrk, builds the
//! release binary, runs this). `BENCH_SECONDS` sets each measurement's length
//! (default 3), `CHANCERY_BIN` the binary (default `target/release/chancery`).
//!
//! It also prints each Chancery's resident memory idle and at its peak under
//! load; `BENCH_KEYS` adds that many live keys to the snapshot first.
//!
//! `BENCH_CALLGRIND=1` counts instructions per call instead, with valgrind's
//! callgrind: the same count for the same binary whatever else the machine
//! does, so a change's gain shows even where req/s is noise. The upstream alone
//! (one HTTP exchange on hyper: the floor for any server of this stack) and
//! Chancery forwarding to it (two exchanges and the governance), each under
//! callgrind in turn, `BENCH_CALLS` calls (default 1,000) one after another
//! after a warm-up; the ratio is Chancery's cost in upstreams.

use std::{
    convert::Infallible,
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

mod common;

use app::server::db::Db;
use axum::{body::Body, response::Response, routing::post, serve::ListenerExt, Router};
use bytes::Bytes;
use futures_util::StreamExt;

const MODEL: &str = "mistral-small-latest";
const ROUNDS: usize = 3;
const CONCURRENCY: usize = 64;
/// Streams timed to their first byte, per target.
const FIRST_BYTES: usize = 200;

fn main() -> anyhow::Result<()> {
    if let Ok(address) = std::env::var("BENCH_UPSTREAM_ADDR") {
        return upstream::serve(&address);
    }
    tokio::runtime::Runtime::new()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let chancery = std::env::var("CHANCERY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target/release/chancery"));
    anyhow::ensure!(
        chancery.is_file(),
        "no {}: build it first (scripts/bench-gateway.sh does)",
        chancery.display()
    );
    let callgrind = std::env::var("BENCH_CALLGRIND").is_ok_and(|v| v == "1");
    let tools: &[&str] = if callgrind { &["valgrind", "callgrind_control"] } else { &["wrk", "nginx"] };
    for tool in tools {
        anyhow::ensure!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()?
                .success(),
            "{tool} is not installed (scripts/bench-gateway.sh installs wrk and nginx; valgrind is Debian's)"
        );
    }
    let dir = std::env::temp_dir().join(format!("chancery-proxy-bench-{}", uuid::Uuid::new_v4().simple()));
    fs::create_dir_all(&dir)?;
    let outcome = measure(&dir, &chancery, seconds, callgrind).await;
    let _ = fs::remove_dir_all(&dir);
    outcome
}

async fn measure(dir: &Path, chancery: &Path, seconds: u64, callgrind: bool) -> anyhow::Result<()> {
    let database_url = format!("sqlite://{}?mode=rwc", dir.join("chancery.db").display());
    let db = Db::connect_and_migrate(&database_url).await?;
    let key = common::workspace_key_with_limits(&db).await?;
    let extra_keys: usize = std::env::var("BENCH_KEYS").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    if extra_keys > 0 {
        // An enterprise's worth of keys in the snapshot every call looks in.
        let (org, workspace): (app::ids::OrgId, app::ids::WorkspaceId) =
            sqlx::query_as("SELECT org_id, workspace_id FROM workspace_api_keys LIMIT 1")
                .fetch_one(db.pool())
                .await?;
        common::insert_keys(&db, org, workspace, extra_keys, None).await?;
    }
    db.close().await;

    let upstream_port = free_port()?;
    let _upstream = Process::spawn(
        Command::new(std::env::current_exe()?)
            .env("BENCH_UPSTREAM_ADDR", format!("127.0.0.1:{upstream_port}")),
        &dir.join("upstream.log"),
    )?;
    let upstream_url = format!("http://127.0.0.1:{upstream_port}/v1");
    if callgrind {
        return instructions(dir, chancery, &database_url, &upstream_url, &key).await;
    }
    let hop_port = free_port()?;
    let _nginx = nginx(dir, upstream_port, hop_port)?;
    let mut targets =
        vec![Target::new("direct", upstream_port, None), Target::new("hop (nginx)", hop_port, None)];
    let port = free_port()?;
    let local = chancery_process(chancery, dir, &database_url, &upstream_url, port, None)?;
    targets.push(Target::new("chancery", port, Some(local)));
    let redis_url = std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    if redis_answers(&redis_url).await {
        let port = free_port()?;
        let shared = chancery_process(chancery, dir, &database_url, &upstream_url, port, Some(&redis_url))?;
        targets.push(Target::new("chancery, Redis", port, Some(shared)));
    } else {
        println!("(no Redis at {redis_url}: Chancery with shared counters is not measured)");
    }
    let client = reqwest::Client::new();
    for target in &targets {
        target.wait_until_up(&client).await?;
        // Chancery answers with the upstream's words, not its own mock's.
        let answer = client.post(&target.url).bearer_auth(&key).json(&body(false, false)).send().await?;
        let text = answer.text().await?;
        anyhow::ensure!(
            text.contains(upstream::MARKER),
            "{} did not forward to the upstream: {text}",
            target.name
        );
    }

    let idle: Vec<_> = targets.iter().map(|t| t.process.as_ref().map(Process::memory)).collect();
    let scripts = Scripts::write(dir, &key)?;
    let mut answered_by_chancery = 0_u64;
    let mut in_flight_at_ends = 0_u64;
    let mut count = |target: &Target, run: &Wrk, connections: usize| {
        if target.process.is_some() {
            answered_by_chancery += run.requests - run.refused;
            in_flight_at_ends += connections as u64;
        }
    };
    for target in &targets {
        for stream in [false, true] {
            count(target, &wrk(&target.url, scripts.of(stream), CONCURRENCY, 1)?, CONCURRENCY);
            // warm-up
        }
    }
    // results[kind][target]: one measurement per round.
    let mut latency = vec![vec![Vec::new(); targets.len()]; 2];
    let mut throughput = vec![vec![Vec::new(); targets.len()]; 2];
    for _ in 0..ROUNDS {
        for (kind, stream) in [false, true].into_iter().enumerate() {
            for (i, target) in targets.iter().enumerate() {
                let one = wrk(&target.url, scripts.of(stream), 1, seconds)?;
                count(target, &one, 1);
                let many = wrk(&target.url, scripts.of(stream), CONCURRENCY, seconds)?;
                count(target, &many, CONCURRENCY);
                anyhow::ensure!(
                    one.refused == 0 && many.refused == 0,
                    "{} refused calls it should have answered",
                    target.name
                );
                latency[kind][i].push((one.p50_us, one.p99_us));
                throughput[kind][i].push(many.requests_per_sec);
            }
        }
    }

    println!(
        "\ngateway from outside: wrk (1 thread), {ROUNDS} alternating rounds of {seconds} s per measurement; medians"
    );
    for (kind, name) in ["chat completion", "streamed chat completion"].into_iter().enumerate() {
        println!("\n{name}");
        println!(
            "{:<18}{:>12}{:>12}{:>14}{:>14}{:>14}",
            "", "c=1 p50", "c=1 p99", "c=64 req/s", "req/s ÷ hop", "p50 − hop"
        );
        let hop_p50 = median(latency[kind][1].iter().map(|l| l.0));
        let hop_rps = median(throughput[kind][1].iter().copied());
        for (i, target) in targets.iter().enumerate() {
            let p50 = median(latency[kind][i].iter().map(|l| l.0));
            let p99 = median(latency[kind][i].iter().map(|l| l.1));
            let rps = median(throughput[kind][i].iter().copied());
            println!(
                "{:<18}{:>10.0}µs{:>10.0}µs{:>14.0}{:>14.2}{:>12.0}µs",
                target.name,
                p50,
                p99,
                rps,
                rps / hop_rps,
                p50 - hop_p50
            );
        }
    }

    println!("\ntime to a stream's first byte, concurrency 1, {FIRST_BYTES} streams (chunks 2 ms apart)");
    let mut first = Vec::with_capacity(targets.len());
    for target in &targets {
        first.push(first_bytes(&client, &target.url, &key).await?);
    }
    for (target, p50) in targets.iter().zip(&first) {
        println!("{:<18}{:>10.0}µs  ({:+.0}µs over direct)", target.name, p50, p50 - first[0]);
    }

    // Governance on: every answered call metered, and a spent budget refuses.
    let db = Db::connect(&database_url).await?;
    common::exhaust_budget(&db).await?;
    tokio::time::sleep(Duration::from_millis(1_500)).await; // the gateways' snapshots follow within a second
    for target in targets.iter().filter(|t| t.process.is_some()) {
        let refused = client.post(&target.url).bearer_auth(&key).json(&body(false, false)).send().await?;
        anyhow::ensure!(
            refused.status() == 429,
            "{}: a spent budget answered {}",
            target.name,
            refused.status()
        );
        let run = wrk(&target.url, scripts.of(false), 8, 1)?;
        anyhow::ensure!(
            run.requests > 0 && run.refused == run.requests,
            "{}: a spent budget let calls through",
            target.name
        );
        println!("spent budget, {}: {} of {} calls refused with 429", target.name, run.refused, run.requests);
    }
    println!("\nmemory ({extra_keys} more live keys than the one measured with; BENCH_KEYS sets it)");
    for (target, idle) in targets.iter().zip(&idle) {
        if let (Some(process), Some(Ok((idle, _)))) = (&target.process, idle) {
            let (_, peak) = process.memory()?;
            println!(
                "{:<18} RSS {:>6.1} MB idle, {:>6.1} MB at its peak under load",
                target.name,
                mb(*idle),
                mb(peak)
            );
        }
    }
    for target in &mut targets {
        if let Some(process) = &mut target.process {
            process.terminate()?; // SIGTERM: what is metered is written before it exits
        }
    }
    let (metered,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM usage_events WHERE status < 400").fetch_one(db.pool()).await?;
    db.close().await;
    // Less this program's own calls: one to check each Chancery forwards, and the streams timed.
    let chanceries = targets.iter().filter(|t| t.process.is_some()).count() as u64;
    let metered = metered as u64 - chanceries * (1 + FIRST_BYTES as u64);
    println!(
        "metered: {metered} answered calls written as usage; wrk counted {answered_by_chancery} answered \
         (and up to {in_flight_at_ends} more in flight when its runs ended)"
    );
    anyhow::ensure!(
        (answered_by_chancery..=answered_by_chancery + in_flight_at_ends).contains(&metered),
        "the meter does not match what was answered"
    );
    Ok(())
}

/// Instructions per call of the upstream alone and of Chancery, plain and
/// streamed, counted by callgrind (see the module's comment).
async fn instructions(
    dir: &Path,
    chancery: &Path,
    database_url: &str,
    upstream_url: &str,
    key: &str,
) -> anyhow::Result<()> {
    let calls: usize = std::env::var("BENCH_CALLS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000);
    let client = reqwest::Client::new();
    // Where the profiles stay, for `callgrind_annotate --inclusive=yes`.
    let kept = std::env::temp_dir().join("chancery-callgrind");
    fs::create_dir_all(&kept)?;
    let mut counted = Vec::new();
    for name in ["upstream alone", "chancery"] {
        let port = free_port()?;
        let mut command = Command::new("valgrind");
        command
            .args(["--tool=callgrind", "--instr-atstart=no", "--compress-strings=no"])
            .arg(format!("--callgrind-out-file={}", dir.join(format!("{port}.callgrind")).display()));
        if name == "chancery" {
            command.arg(chancery).arg("serve").envs([
                ("DATABASE_URL", database_url.to_string()),
                ("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}")),
                ("CHANCERY_UPSTREAM_URL", upstream_url.to_string()),
                ("CHANCERY_SPOOL_DIR", dir.join("callgrind-spool").display().to_string()),
                ("CHANCERY_SECRET_KEY_FILE", dir.join("secret.key").display().to_string()),
                ("RUST_LOG", "warn".into()),
            ]);
        } else {
            command.arg(std::env::current_exe()?).env("BENCH_UPSTREAM_ADDR", format!("127.0.0.1:{port}"));
        }
        let process = Process::spawn(&mut command, &dir.join(format!("{port}.log")))?;
        let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
        let target = Target { name, url: url.clone(), process: None };
        target.wait_until_up_within(&client, Duration::from_secs(120)).await?;
        let pid = process.0.id().to_string();
        let control = |args: &[&str]| -> anyhow::Result<String> {
            let output = Command::new("callgrind_control").args(args).arg(&pid).output()?;
            anyhow::ensure!(output.status.success(), "callgrind_control {args:?} failed");
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        };
        let mut per_call = [0.0; 2];
        for (i, stream) in [false, true].into_iter().enumerate() {
            let send = || async {
                let answer = client.post(&url).bearer_auth(key).json(&body(stream, false)).send().await?;
                anyhow::ensure!(answer.status().is_success(), "{name}: {}", answer.status());
                answer.bytes().await?;
                Ok(())
            };
            for _ in 0..calls / 5 {
                send().await?; // warm-up: connections, caches, the allocator's pools
            }
            control(&["--zero"])?;
            control(&["--instr=on"])?;
            for _ in 0..calls {
                send().await?;
            }
            control(&["--instr=off"])?;
            control(&["--dump"])?;
            let dump = last_dump(dir, port)?;
            per_call[i] = dump_total(&dump)? as f64 / calls as f64;
            let kind = if stream { "stream" } else { "chat" };
            fs::copy(&dump, kept.join(format!("{}-{kind}.callgrind", name.replace(' ', "-"))))?;
        }
        drop(process);
        counted.push((name, per_call));
    }
    println!(
        "\ninstructions per call (callgrind, {calls} calls one after another, after a warm-up; profiles in {})",
        kept.display()
    );
    println!("{:<18}{:>16}{:>10}{:>18}{:>10}", "", "chat", "÷ floor", "streamed chat", "÷ floor");
    let floor = counted[0].1;
    for (name, [chat, streamed]) in &counted {
        println!(
            "{name:<18}{chat:>16.0}{:>10.2}{streamed:>18.0}{:>10.2}",
            chat / floor[0],
            streamed / floor[1]
        );
    }
    Ok(())
}

/// The newest callgrind dump of the process on `port`.
fn last_dump(dir: &Path, port: u16) -> anyhow::Result<PathBuf> {
    let prefix = format!("{port}.callgrind.");
    let newest = fs::read_dir(dir)?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|name| Some((name.strip_prefix(&prefix)?.parse::<u32>().ok()?, name)))
        .max()
        .ok_or_else(|| anyhow::anyhow!("no callgrind dump"))?;
    Ok(dir.join(newest.1))
}

/// The instructions a callgrind dump counted.
fn dump_total(dump: &Path) -> anyhow::Result<u64> {
    let text = fs::read_to_string(dump)?;
    text.lines()
        .find_map(|line| line.strip_prefix("totals:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no totals in the callgrind dump"))
}

/// A request body: a short chat, streamed or not; `paced` asks the upstream to
/// space its chunks (see [`first_bytes`]).
fn body(stream: bool, paced: bool) -> serde_json::Value {
    let mut body = serde_json::json!({
        "model": MODEL,
        "messages": [{ "role": "user", "content": "Hello" }],
        "max_tokens": 16,
        "stream": stream,
    });
    if paced {
        body["user"] = "paced".into();
    }
    body
}

/// Median time to the first byte of a stream whose chunks the upstream sends
/// 2 ms apart: a gateway that buffered the answer would add at least 8 ms.
async fn first_bytes(client: &reqwest::Client, url: &str, key: &str) -> anyhow::Result<f64> {
    let mut times = Vec::with_capacity(FIRST_BYTES);
    for _ in 0..FIRST_BYTES {
        let start = Instant::now();
        let response = client.post(url).bearer_auth(key).json(&body(true, true)).send().await?;
        anyhow::ensure!(response.status().is_success(), "{url}: {}", response.status());
        let mut chunks = response.bytes_stream();
        chunks.next().await.transpose()?;
        times.push(start.elapsed().as_secs_f64() * 1e6);
        while chunks.next().await.transpose()?.is_some() {}
    }
    Ok(median(times.into_iter()))
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

struct Target {
    name: &'static str,
    url: String,
    /// Chancery's process; none for the upstream and nginx.
    process: Option<Process>,
}

impl Target {
    fn new(name: &'static str, port: u16, process: Option<Process>) -> Self {
        Self { name, url: format!("http://127.0.0.1:{port}/v1/chat/completions"), process }
    }

    async fn wait_until_up(&self, client: &reqwest::Client) -> anyhow::Result<()> {
        self.wait_until_up_within(client, Duration::from_secs(10)).await
    }

    async fn wait_until_up_within(&self, client: &reqwest::Client, limit: Duration) -> anyhow::Result<()> {
        let health = self.url.replace("/v1/chat/completions", "/healthz");
        let started = Instant::now();
        while started.elapsed() < limit {
            // The upstream and nginx answer anything; Chancery its health check.
            if client.get(&health).send().await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("{} did not start", self.name)
    }
}

/// The wrk scripts: a chat completion, plain or streamed, with the key.
struct Scripts {
    chat: PathBuf,
    stream: PathBuf,
}

impl Scripts {
    fn write(dir: &Path, key: &str) -> anyhow::Result<Self> {
        let script = |stream: bool| {
            format!(
                "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n\
                 wrk.headers[\"Authorization\"] = \"Bearer {key}\"\nwrk.body = '{}'\n",
                body(stream, false)
            )
        };
        let (chat, stream) = (dir.join("chat.lua"), dir.join("stream.lua"));
        fs::write(&chat, script(false))?;
        fs::write(&stream, script(true))?;
        Ok(Self { chat, stream })
    }

    fn of(&self, stream: bool) -> &Path {
        if stream {
            &self.stream
        } else {
            &self.chat
        }
    }
}

/// What one wrk run measured.
struct Wrk {
    requests: u64,
    /// Answers that were not 2xx.
    refused: u64,
    requests_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
}

fn wrk(url: &str, script: &Path, connections: usize, seconds: u64) -> anyhow::Result<Wrk> {
    let output = Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{seconds}s"), "--latency", "-s"])
        .arg(script)
        .arg(url)
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(output.status.success(), "wrk failed: {text}{}", String::from_utf8_lossy(&output.stderr));
    let after = |label: &str| {
        text.lines().find_map(|line| line.trim().strip_prefix(label).map(|rest| rest.trim().to_string()))
    };
    let number = |label: &str| after(label).and_then(|v| v.parse::<f64>().ok());
    let duration = |label: &str| after(label).and_then(|v| micros(&v));
    let requests = text
        .lines()
        .find_map(|line| line.trim().split_once(" requests in ").and_then(|(n, _)| n.parse().ok()))
        .ok_or_else(|| anyhow::anyhow!("no request count in wrk's output: {text}"))?;
    Ok(Wrk {
        requests,
        refused: number("Non-2xx or 3xx responses:").unwrap_or(0.0) as u64,
        requests_per_sec: number("Requests/sec:").unwrap_or(0.0),
        p50_us: duration("50%").unwrap_or(f64::NAN),
        p99_us: duration("99%").unwrap_or(f64::NAN),
    })
}

/// wrk's `43.00us`, `1.20ms` or `2.00s`, in microseconds.
fn micros(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (value, unit) = text.split_at(split);
    let value: f64 = value.parse().ok()?;
    Some(match unit {
        "us" => value,
        "ms" => value * 1e3,
        "s" => value * 1e6,
        _ => return None,
    })
}

/// A child process, ended when dropped.
struct Process(Child);

impl Process {
    fn spawn(command: &mut Command, log: &Path) -> anyhow::Result<Self> {
        let log = fs::File::create(log)?;
        Ok(Self(command.stdout(log.try_clone()?).stderr(log).spawn()?))
    }

    /// Its resident memory now and at its peak (`VmRSS`, `VmHWM`), in bytes.
    fn memory(&self) -> anyhow::Result<(u64, u64)> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.0.id()))?;
        let kb = |field: &str| {
            status
                .lines()
                .find_map(|line| {
                    line.strip_prefix(field)?.trim().strip_suffix(" kB")?.trim().parse::<u64>().ok()
                })
                .map(|kb| kb * 1024)
                .ok_or_else(|| anyhow::anyhow!("no {field} in /proc/.../status"))
        };
        Ok((kb("VmRSS:")?, kb("VmHWM:")?))
    }

    /// Asks it to stop (SIGTERM) and waits until it has.
    fn terminate(&mut self) -> anyhow::Result<()> {
        Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status()?;
        self.0.wait()?;
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SIGTERM first, for up to 2 s: nginx's master then ends its workers
        // too, where SIGKILL would leave them running.
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
            for _ in 0..40 {
                if !matches!(self.0.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn chancery_process(
    binary: &Path,
    dir: &Path,
    database_url: &str,
    upstream_url: &str,
    port: u16,
    redis_url: Option<&str>,
) -> anyhow::Result<Process> {
    let name = if redis_url.is_some() { "chancery-redis" } else { "chancery" };
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env("CHANCERY_UPSTREAM_URL", upstream_url)
        .env("CHANCERY_SPOOL_DIR", dir.join(format!("{name}-spool")))
        .env("CHANCERY_SECRET_KEY_FILE", dir.join("secret.key"))
        .env("RUST_LOG", "warn")
        .env_remove("REDIS_URL");
    if let Some(url) = redis_url {
        command.env("REDIS_URL", url);
    }
    Process::spawn(&mut command, &dir.join(format!("{name}.log")))
}

/// nginx as a plain reverse proxy on `hop_port` to the upstream, keeping its
/// connections open and passing streams on as they come.
fn nginx(dir: &Path, upstream_port: u16, hop_port: u16) -> anyhow::Result<Process> {
    let d = dir.display();
    let conf = format!(
        "worker_processes auto;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/nginx-body;\n  proxy_temp_path {d}/nginx-proxy;\n\
           fastcgi_temp_path {d}/nginx-fastcgi;\n  uwsgi_temp_path {d}/nginx-uwsgi;\n  scgi_temp_path {d}/nginx-scgi;\n\
           upstream bench_upstream {{ server 127.0.0.1:{upstream_port}; keepalive 128; }}\n\
           server {{\n    listen 127.0.0.1:{hop_port};\n    location / {{\n      proxy_pass http://bench_upstream;\n\
               proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_buffering off;\n    }}\n  }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    fs::write(&path, conf)?;
    Process::spawn(
        Command::new("nginx").arg("-c").arg(&path).arg("-p").arg(dir).args(["-g", "daemon off;"]),
        &dir.join("nginx.log"),
    )
}

async fn redis_answers(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else { return false };
    client.get_multiplexed_async_connection().await.is_ok()
}

/// The upstream: an OpenAI-compatible chat completion, the same words every
/// time, as JSON or as a stream of server-sent events with usage at the end.
mod upstream {
    use super::*;

    /// In every answer, so the benchmark can tell the upstream answered.
    pub const MARKER: &str = "chatcmpl-bench-upstream";

    const CHAT: &str = r#"{"id":"chatcmpl-bench-upstream","object":"chat.completion","created":0,"model":"mistral-small-latest","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the bench upstream."},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":8,"total_tokens":18}}"#;

    const EVENTS: [&str; 6] = [
        "data: {\"id\":\"chatcmpl-bench-upstream\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"mistral-small-latest\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hello\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-bench-upstream\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"mistral-small-latest\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" from the\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-bench-upstream\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"mistral-small-latest\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" bench upstream.\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-bench-upstream\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"mistral-small-latest\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"chatcmpl-bench-upstream\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"mistral-small-latest\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":8,\"total_tokens\":18}}\n\n",
        "data: [DONE]\n\n",
    ];

    pub fn serve(address: &str) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Runtime::new()?;
        runtime.block_on(async {
            // As real upstreams (nginx's tcp_nodelay): each chunk goes out when written.
            let listener = tokio::net::TcpListener::bind(address).await?.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let app = Router::new().fallback(post(answer));
            axum::serve(listener, app).await?;
            Ok(())
        })
    }

    async fn answer(body: Bytes) -> Response {
        let text = std::str::from_utf8(&body).unwrap_or_default();
        if !text.contains("\"stream\":true") {
            return Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(CHAT))
                .unwrap();
        }
        let paced = text.contains("\"paced\"");
        let events =
            futures_util::stream::iter(EVENTS.into_iter().enumerate()).then(move |(i, event)| async move {
                if paced && i > 0 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Ok::<_, Infallible>(Bytes::from_static(event.as_bytes()))
            });
        Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(events))
            .unwrap()
    }
}
