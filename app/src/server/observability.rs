//! The metrics Chancery records, named in one place. Events are counted where
//! they happen through the `metrics` facade (a no-op until the server installs
//! a recorder); levels (pool, queue, snapshot) are read when scraped.
//!
//! Labels are bounded: models come from the catalogue, codes from Chancery's
//! own refusals, routes from its own routes, never from what a caller sent.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

pub const GATEWAY_REQUESTS: &str = "chancery_gateway_requests_total";
pub const GATEWAY_OVERHEAD: &str = "chancery_gateway_overhead_seconds";
pub const GATEWAY_UPSTREAM: &str = "chancery_gateway_upstream_seconds";
pub const GATEWAY_TOKENS: &str = "chancery_gateway_tokens_total";
pub const GATEWAY_COST: &str = "chancery_gateway_cost_usd_micros_total";
pub const GATEWAY_CALLS_IN_FLIGHT: &str = "chancery_gateway_calls_in_flight";
pub const SNAPSHOT_VERSION: &str = "chancery_gateway_snapshot_version";
pub const SNAPSHOT_AGE: &str = "chancery_gateway_snapshot_age_seconds";
pub const SNAPSHOT_RELOAD: &str = "chancery_gateway_snapshot_reload_seconds";
pub const METER_QUEUE: &str = "chancery_meter_queue_depth";
pub const METER_FLUSH: &str = "chancery_meter_flush_seconds";
pub const REDIS_ERRORS: &str = "chancery_redis_errors_total";
pub const DB_CONNECTIONS: &str = "chancery_db_pool_connections";
pub const HTTP_REQUESTS: &str = "chancery_http_requests_total";
pub const HTTP_DURATION: &str = "chancery_http_request_duration_seconds";

/// Whether a recorder is installed: without one, labels are not even built.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns recording on (the server does it when it installs its recorder).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Says what each metric means (shown as `# HELP` lines).
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        GATEWAY_REQUESTS,
        "Gateway calls answered, by HTTP status, code (ok or why not) and model"
    );
    describe_histogram!(
        GATEWAY_OVERHEAD,
        Unit::Seconds,
        "Time a gateway call spent in Chancery, upstream excluded"
    );
    describe_histogram!(
        GATEWAY_UPSTREAM,
        Unit::Seconds,
        "Time the upstream took to answer (a stream: to its headers)"
    );
    describe_counter!(GATEWAY_TOKENS, "Tokens booked, by model and kind (input, output)");
    describe_counter!(GATEWAY_COST, "Money booked, in millionths of a dollar, by model");
    describe_gauge!(GATEWAY_CALLS_IN_FLIGHT, "Calls admitted whose budget holds are not settled yet");
    describe_gauge!(
        SNAPSHOT_VERSION,
        "The change-log version the gateway's snapshot of keys and limits is at"
    );
    describe_gauge!(SNAPSHOT_AGE, Unit::Seconds, "Since the snapshot was last found up to date");
    describe_histogram!(
        SNAPSHOT_RELOAD,
        Unit::Seconds,
        "Time to bring the snapshot up to date when it changed"
    );
    describe_gauge!(METER_QUEUE, "Usage events waiting in memory for the database");
    describe_histogram!(METER_FLUSH, Unit::Seconds, "Time to write one batch of usage to the database");
    describe_counter!(REDIS_ERRORS, "Failed calls to Redis for the shared counters");
    describe_gauge!(DB_CONNECTIONS, "Database pool connections, by state (idle, in_use)");
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by route, method and status");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "Time to answer an HTTP request, by route");
}

/// A gateway call answered: `code` is `ok` or the refusal's code; `model` is
/// the catalogue model it was admitted for (`-` when refused before).
pub fn gateway_answered(status: u16, code: &'static str, model: &str) {
    if !enabled() {
        return;
    }
    metrics::counter!(GATEWAY_REQUESTS, "status" => status.to_string(), "code" => code, "model" => model.to_owned())
        .increment(1);
}

pub fn gateway_timed(overhead: Duration, upstream: Option<Duration>) {
    if !enabled() {
        return;
    }
    metrics::histogram!(GATEWAY_OVERHEAD).record(overhead);
    if let Some(upstream) = upstream {
        metrics::histogram!(GATEWAY_UPSTREAM).record(upstream);
    }
}

/// What a settled call booked.
pub fn booked(model: &str, input_tokens: i64, output_tokens: i64, cost_micros: i64) {
    if !enabled() {
        return;
    }
    let count = |n: i64| n.max(0) as u64;
    metrics::counter!(GATEWAY_TOKENS, "model" => model.to_owned(), "kind" => "input")
        .increment(count(input_tokens));
    metrics::counter!(GATEWAY_TOKENS, "model" => model.to_owned(), "kind" => "output")
        .increment(count(output_tokens));
    metrics::counter!(GATEWAY_COST, "model" => model.to_owned()).increment(count(cost_micros));
}

/// An HTTP request answered, by route template.
pub fn http_answered(route: String, method: &str, status: u16, took: Duration) {
    if !enabled() {
        return;
    }
    let labels = [("route", route.clone()), ("method", method.to_owned()), ("status", status.to_string())];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_DURATION, "route" => route).record(took);
}

pub fn redis_failed() {
    metrics::counter!(REDIS_ERRORS).increment(1);
}
