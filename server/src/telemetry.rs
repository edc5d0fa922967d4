//! What operators can follow of each request: an id, and a W3C trace context.
//!
//! - `x-request-id`: the caller's when it sent a sane one (what a load balancer
//!   or an SDK set), a new one otherwise; returned with the answer, and carried
//!   by every log line written while answering (the `request` span).
//! - `traceparent`: the gateway's call to the upstream continues the caller's
//!   trace (same trace id, a span id of its own), or starts one, so a provider's
//!   logs can be joined with ours.
//! - `/metrics`: what `app::server::observability` names, in Prometheus's text
//!   format, behind a bearer token or on an address of its own.
//! - Logs and traces (`install_subscriber`): text or JSON lines on stdout, and
//!   Chancery's spans sent to an OpenTelemetry collector when one is configured.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        OnceLock,
    },
    time::Instant,
};

use app::server::{observability, state::AppState};
use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use http::{header, HeaderName, HeaderValue, StatusCode};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::{SpanContext, TraceContextExt as _, TraceFlags, TraceState, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{
    filter::Targets, layer::SubscriberExt as _, util::SubscriberInitExt as _, EnvFilter, Layer as _,
};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Gives each request its id and trace context, and answers with the id.
pub async fn request_context(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| sane_request_id(id))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    let route = request.extensions().get::<MatchedPath>().map_or("-", MatchedPath::as_str).to_owned();
    // The id is sane (visible ASCII) and the route is one of ours: neither can forge a log line.
    let span = tracing::info_span!("request", id = %id, method = %request.method(), route = %route);
    let callers = || request.headers().get(&TRACEPARENT)?.to_str().ok().and_then(TraceContext::parse);
    if let Some(parent) = exporting_traces().then(callers).flatten() {
        // The caller's trace, continued by our spans.
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent.into()));
    }
    let method = request.method().clone();
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let (status, took) = (response.status().as_u16(), started.elapsed());
    span.in_scope(|| tracing::debug!(status, ms = took.as_millis() as u64, "answered"));
    observability::http_answered(route, method.as_str(), status, took);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    response
}

/// Time buckets for every histogram: 100 µs to 2 minutes.
const BUCKETS: [f64; 18] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 120.0,
];

/// The process's metrics recorder, installed on first use (what was recorded
/// before is dropped).
pub fn metrics_recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            observability::enable();
            let handle = PrometheusBuilder::new()
                .set_buckets(&BUCKETS)
                .expect("buckets are given")
                .install_recorder()
                .expect("no other metrics recorder in this process");
            observability::describe();
            handle
        })
        .clone()
}

/// Who may read `/metrics`.
#[derive(Clone, Debug)]
pub enum MetricsAccess {
    /// Whoever sends `Authorization: Bearer <token>`.
    Token(String),
    /// Anyone who reaches it: it listens on an address of its own.
    Open,
}

#[derive(Clone)]
struct Scrape {
    app: AppState,
    recorder: PrometheusHandle,
    access: MetricsAccess,
}

/// `GET /metrics`, for whoever `access` lets in.
pub fn metrics_routes(app: AppState, access: MetricsAccess) -> Router {
    let scrape = Scrape { app, recorder: metrics_recorder(), access };
    Router::new().route("/metrics", get(metrics)).with_state(scrape)
}

async fn metrics(State(scrape): State<Scrape>, request: Request) -> Response {
    if let MetricsAccess::Token(token) = &scrape.access {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        let matches = presented.is_some_and(|presented| {
            use subtle::ConstantTimeEq as _;
            bool::from(presented.as_bytes().ct_eq(token.as_bytes()))
        });
        if !matches {
            return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")]).into_response();
        }
    }
    // Levels are read now; events were counted as they happened.
    let (app, now) = (&scrape.app, app::time::Timestamp::now());
    let pool = app.db.pool();
    let idle = pool.num_idle() as f64;
    metrics::gauge!(observability::DB_CONNECTIONS, "state" => "idle").set(idle);
    metrics::gauge!(observability::DB_CONNECTIONS, "state" => "in_use").set(f64::from(pool.size()) - idle);
    metrics::gauge!(observability::SNAPSHOT_VERSION).set(app.gateway.snapshot_version() as f64);
    metrics::gauge!(observability::SNAPSHOT_AGE).set(app.gateway.snapshot_age(now).as_secs_f64());
    metrics::gauge!(observability::GATEWAY_CALLS_IN_FLIGHT).set(app.gateway.calls_in_flight() as f64);
    metrics::gauge!(observability::METER_QUEUE).set(app.gateway.meter_queue_depth() as f64);
    // Drains the histograms' buffers: scrapes keep them small.
    scrape.recorder.run_upkeep();
    let text = scrape.recorder.render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// Set once the subscriber sends spans to a collector.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans go to an OpenTelemetry collector: spans made only for it
/// (the gateway's `gen_ai` span) are not made otherwise.
pub fn exporting_traces() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// What `install_subscriber` set up; dropping it sends the spans still buffered.
#[must_use = "dropping it stops sending traces"]
pub struct Tracing {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Tracing {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(err) = provider.shutdown() {
                eprintln!("warning: the last traces could not be sent: {err}");
            }
        }
    }
}

/// Installs the process's subscriber: log lines on stdout, as text or as JSON
/// objects (`CHANCERY_LOG_FORMAT=json`), filtered by `RUST_LOG` (`info` by
/// default); and, when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) names a collector, Chancery's own
/// spans (info and above, whatever `RUST_LOG` says) sent to it over OTLP/HTTP
/// with protobuf. The other `OTEL_*` variables (headers, timeout, sampler,
/// batching, service name and resource attributes) are honoured.
pub fn install_subscriber() -> anyhow::Result<Tracing> {
    use tracing_subscriber::fmt;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = match std::env::var("CHANCERY_LOG_FORMAT").as_deref() {
        Ok("json") => fmt::layer().json().boxed(),
        Ok("text") | Ok("") | Err(_) => fmt::layer().boxed(),
        Ok(other) => anyhow::bail!("CHANCERY_LOG_FORMAT is text or json, not {other:?}"),
    };
    let provider = otlp_provider()?;
    let traces = provider.as_ref().map(|provider| {
        let ours = Targets::new()
            .with_target("app", tracing::Level::INFO)
            .with_target("server", tracing::Level::INFO);
        tracing_opentelemetry::layer().with_tracer(provider.tracer("chancery")).with_filter(ours)
    });
    tracing_subscriber::registry().with(logs.with_filter(filter)).with(traces).init();
    EXPORTING.store(provider.is_some(), Ordering::Relaxed);
    Ok(Tracing { provider })
}

/// A tracer provider batching spans to the configured OTLP collector, if any.
fn otlp_provider() -> anyhow::Result<Option<SdkTracerProvider>> {
    let set = |name: &str| std::env::var(name).is_ok_and(|value| !value.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    if disabled || !(set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|err| anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT: {err}"))?;
    let mut resource = opentelemetry_sdk::Resource::builder()
        .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if !set("OTEL_SERVICE_NAME") {
        resource = resource.with_service_name("chancery");
    }
    let provider =
        SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build();
    Ok(Some(provider))
}

/// Up to 128 visible ASCII characters, no spaces: enough for any id scheme,
/// nothing that could forge a log line.
fn sane_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// A W3C trace context (`traceparent`): the trace a request belongs to, and
/// the span that calls onwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// Bit 0: sampled.
    pub flags: u8,
}

impl TraceContext {
    /// A span of our own in the trace of a request with these `headers`, or in
    /// a new (sampled) trace when it sent none, or one that does not parse.
    pub fn child_of(headers: &http::HeaderMap) -> Self {
        let span_id = random_nonzero();
        match headers.get(&TRACEPARENT).and_then(|v| v.to_str().ok()).and_then(Self::parse) {
            Some(parent) => Self { span_id, ..parent },
            None => Self { trace_id: random_nonzero(), span_id, flags: 1 },
        }
    }

    /// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`; all-zero ids
    /// are invalid. A later version's header is read by its first four fields.
    pub fn parse(text: &str) -> Option<Self> {
        let mut fields = text.trim().split('-');
        let version = u8::from_str_radix(fields.next().filter(|v| v.len() == 2)?, 16).ok()?;
        let trace_id: [u8; 16] = hex_bytes(fields.next()?)?;
        let span_id: [u8; 8] = hex_bytes(fields.next()?)?;
        let flags = hex_bytes::<1>(fields.next()?)?[0];
        let well_formed = version != 0xff
            && (version > 0 || fields.next().is_none())
            && trace_id != [0; 16]
            && span_id != [0; 8];
        well_formed.then_some(Self { trace_id, span_id, flags })
    }

    /// The trace context of `span`, when it is sent to a collector (its own
    /// id, in the caller's trace); else a span of our own in the trace of a
    /// request with these `headers` (see `child_of`).
    pub fn of_span(span: &tracing::Span, headers: &http::HeaderMap) -> Self {
        if exporting_traces() {
            let context = span.context();
            let ours = context.span().span_context().clone();
            if ours.is_valid() {
                return Self {
                    trace_id: ours.trace_id().to_bytes(),
                    span_id: ours.span_id().to_bytes(),
                    flags: ours.trace_flags().to_u8(),
                };
            }
        }
        Self::child_of(headers)
    }

    pub fn header_value(&self) -> String {
        format!("00-{}-{}-{:02x}", hex::encode(self.trace_id), hex::encode(self.span_id), self.flags)
    }
}

impl From<TraceContext> for SpanContext {
    /// The context of a span in another process (the caller's).
    fn from(trace: TraceContext) -> Self {
        SpanContext::new(
            opentelemetry::trace::TraceId::from_bytes(trace.trace_id),
            opentelemetry::trace::SpanId::from_bytes(trace.span_id),
            TraceFlags::new(trace.flags),
            true,
            TraceState::default(),
        )
    }
}

fn random_nonzero<const N: usize>() -> [u8; N] {
    loop {
        let mut bytes = [0_u8; N];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
        if bytes != [0; N] {
            return bytes;
        }
    }
}

/// Lower-case hex of exactly `N` bytes (W3C refuses upper case).
fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut bytes = [0_u8; N];
    let lower = text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (lower && hex::decode_to_slice(text, &mut bytes).is_ok()).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn sent(traceparent: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_str(traceparent).unwrap());
        headers
    }

    #[test]
    fn a_callers_trace_is_continued_with_a_span_of_our_own() {
        let child = TraceContext::child_of(&sent(PARENT));
        let header = child.header_value();
        assert!(header.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{header}");
        assert!(header.ends_with("-01"), "{header}");
        assert_ne!(&header[36..52], "00f067aa0ba902b7", "a new span id");
        assert_eq!(TraceContext::parse(&header), Some(child));
    }

    #[test]
    fn malformed_parents_start_a_new_trace() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
            let fresh = TraceContext::child_of(&sent(bad));
            assert_eq!(fresh.flags, 1);
            assert_ne!(fresh.trace_id, [0; 16]);
        }
        // A later version may add fields.
        assert!(TraceContext::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more").is_some());
    }

    #[test]
    fn request_ids_are_taken_only_when_sane() {
        assert!(sane_request_id("req_01HZX-42.a"));
        assert!(!sane_request_id(""));
        assert!(!sane_request_id("two words"));
        assert!(!sane_request_id(&"x".repeat(129)));
        assert!(!sane_request_id("é"));
    }
}
