//! The Chancery server: HTTP routing and start-up around the `app` crate.

pub mod admin_api;
pub mod assets;
pub mod config;
pub mod gateway;
pub mod hardening;
mod html;
pub mod scim;
pub mod sso;
pub mod telemetry;

use std::{net::SocketAddr, sync::OnceLock, time::Duration};

use admin_api::ApiError;
use app::{
    model::AuditQuery,
    server::{
        actor::Actor,
        audit,
        audit_chain::{self, AuditSigner},
        db::redact,
        gateway::{shared::SharedCounters, Gateway, Metering},
        housekeeping, request,
        sealed::SealingKey,
        state::AppState,
        usage,
    },
    shell, App, AppError,
};
use axum::{
    body::Body,
    extract::{DefaultBodyLimit, Query, Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{any, get, post},
    serve::ListenerExt,
    Router,
};
use futures_util::{StreamExt, TryStreamExt};
use http::{header, HeaderValue, StatusCode};
use leptos::config::LeptosOptions;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use tower_http_csrf::csrf::CsrfLayer;
use tower_sessions::{cookie::SameSite, Expiry, Session, SessionManagerLayer};

pub use app::server::db::Db;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "chancery_session";
/// A session ends after this long without a request.
const SESSION_IDLE: time::Duration = time::Duration::days(7);

/// The pages' routes, found once per process by rendering the app with its
/// data loading held back. The hold is process-wide (leptos_server's
/// `SuppressResourceLoad`): a page another router of this process rendered
/// meanwhile would wait forever for its data (leptos issue #4773), so a second
/// router must not find them again.
fn page_routes() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// Every route of the application. Pages and server functions sit behind the
/// session and cross-origin (CSRF) layers; machine APIs will not.
pub fn router(state: AppState, secure_cookies: bool) -> Router {
    let routes = page_routes();
    let sessions = SessionManagerLayer::new(state.sessions.clone())
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(secure_cookies)
        .with_expiry(Expiry::OnInactivity(SESSION_IDLE));
    let web = Router::new()
        .leptos_routes(&state, routes, {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .route("/admin/audit-log.csv", get(audit_log_csv))
        .route("/admin/usage.csv", get(usage_csv))
        .route(app::server::oidc::CALLBACK_PATH, get(sso::oidc_callback))
        .route("/sso/saml/{org_id}/metadata", get(sso::saml_metadata))
        .route("/sso/saml/{org_id}/continue", post(sso::saml_continue))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(middleware::from_fn(server_fn_error_status))
        .layer(middleware::from_fn_with_state(state.clone(), hand_shown_once_to_page))
        // Refuses cross-site POSTs (by Origin / Sec-Fetch-Site) before they reach a server function...
        .layer(CsrfLayer::new())
        // ...and, first, those that say nothing of where they come from.
        .layer(middleware::from_fn(hardening::require_origin_on_writes))
        .layer(sessions);
    let admin_api = || {
        admin_api::router().layer(DefaultBodyLimit::max(hardening::MAX_ADMIN_API_BODY)).layer(
            middleware::from_fn(|request, next| {
                hardening::json_payload_too_large(hardening::MAX_ADMIN_API_BODY, request, next)
            }),
        )
    };
    let gateway = gateway::routes().layer(DefaultBodyLimit::max(hardening::MAX_GATEWAY_BODY)).layer(
        middleware::from_fn(|request, next| {
            hardening::json_payload_too_large(hardening::MAX_GATEWAY_BODY, request, next)
        }),
    );
    Router::new()
        // Liveness: the process answers. Readiness: it can do its work.
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        // Machine APIs: no session, no cookies; their own authentication.
        .nest("/api/admin", admin_api())
        .nest("/v1/admin", admin_api())
        .nest("/scim/v2", scim::router().layer(DefaultBodyLimit::max(hardening::MAX_ADMIN_API_BODY)))
        // Posted to from the identity provider's site: no session, no same-origin check (see `sso::saml_acs`).
        .route("/sso/saml/{org_id}/acs", post(sso::saml_acs))
        .merge(gateway)
        .merge(
            admin_api::service_account_routes().layer(DefaultBodyLimit::max(hardening::MAX_ADMIN_API_BODY)),
        )
        // Machine paths that name nothing answer a JSON 404, not the web app's page.
        .nest("/pkg", assets::bundle(&state.leptos_options))
        .route("/v1/{*rest}", any(api_not_found))
        .route("/api/{*rest}", any(api_not_found))
        .merge(web)
        .layer(middleware::from_fn(move |request, next| {
            hardening::security_headers(secure_cookies, request, next)
        }))
        .layer(middleware::from_fn(telemetry::request_context))
        .with_state(state)
}

/// The snapshot may lag the database by a refresh or two; beyond this the
/// gateway is deciding on stale keys and limits.
const STALE_SNAPSHOT: Duration = Duration::from_secs(5);
/// How long a readiness check waits on the database or Redis.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// Ready to serve: the database answers with every migration applied, the
/// gateway's snapshot was found up to date within `STALE_SNAPSHOT`, and Redis
/// answers where the counters are shared. 503 naming each check that failed.
async fn readyz(State(state): State<AppState>) -> Response {
    let database = match tokio::time::timeout(READINESS_TIMEOUT, state.db.pending_migrations()).await {
        Ok(Ok(0)) => Ok("ok".to_string()),
        Ok(Ok(pending)) => Err(format!("{pending} of this build's migrations not applied")),
        Ok(Err(_)) | Err(_) => Err("unreachable".to_string()),
    };
    let age = state.gateway.snapshot_age(app::time::Timestamp::now());
    let snapshot = if age <= STALE_SNAPSHOT {
        Ok(format!("up to date {} ms ago", age.as_millis()))
    } else {
        Err(format!("not refreshed for {} s", age.as_secs()))
    };
    let redis = match tokio::time::timeout(READINESS_TIMEOUT, state.gateway.shared_counters_answer()).await {
        Ok(None) => Ok("not used (counters in this process)".to_string()),
        Ok(Some(true)) => Ok("ok".to_string()),
        Ok(Some(false)) | Err(_) => Err("unreachable".to_string()),
    };
    let checks = [("database", database), ("snapshot", snapshot), ("redis", redis)];
    let ready = checks.iter().all(|(_, outcome)| outcome.is_ok());
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not ready" },
        "checks": checks.into_iter().map(|(name, outcome)| (name, outcome.unwrap_or_else(|e| e))).collect::<std::collections::BTreeMap<_, _>>(),
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body)).into_response()
}

/// A path under `/v1` or `/api` that no API serves, in the APIs' error shape.
async fn api_not_found() -> ApiError {
    ApiError(AppError::NotFound)
}

/// Server functions answer every error with 500; this gives each `AppError`
/// its own status (and `Retry-After`), in one place for all of them.
async fn server_fn_error_status(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let is_server_fn_error = response.headers().contains_key("serverfnerror");
    if !is_server_fn_error || response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return Response::from_parts(parts, Body::empty());
    };
    if let Ok(err) = serde_json::from_slice::<AppError>(&bytes) {
        parts.status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let AppError::TooManyRequests { retry_after_secs, .. } = err {
            parts.headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// A page the browser is sent back to after a plain form post shows the
/// secret that post made (see `request::show_once`): it is taken from the
/// session here, once, for the page's render to find (`request::shown_once`).
async fn hand_shown_once_to_page(
    State(state): State<AppState>,
    session: Session,
    mut request: Request,
    next: Next,
) -> Response {
    if request.method() == http::Method::GET && request::asks_for_html(request.headers()) {
        match app::server::session::take_shown_once(&session, &state.sealing).await {
            Ok(Some(new)) => {
                request.extensions_mut().insert(request::ShownOnce(new));
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "could not read the session for a secret to show"),
        }
    }
    next.run(request).await
}

/// The audit log as a CSV download, with the Admin Panel's filters.
async fn audit_log_csv(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let user = request::signed_in_user(&state, &session).await?;
    let org = request::current_org(&state, &session, &user).await?;
    let actor = Actor::User { id: user.id, email: user.email };
    let filter = audit::AuditFilter::from_panel(&query)?;
    let export = audit::Export::start(&state.db, &actor, org.id, filter).await?;
    // Sent as it is read: a window of events at a time, however long the log.
    let lines = futures_util::stream::try_unfold(export, |mut export| async move {
        let events = export.next().await?;
        Ok::<_, AppError>((!events.is_empty()).then(|| (audit::to_csv(&events), export)))
    });
    let csv = futures_util::stream::once(async { Ok(audit::CSV_HEADER.to_string()) }).chain(lines);
    let filename = format!("attachment; filename=\"audit-log-{}.csv\"", org.id);
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(header::CONTENT_DISPOSITION, filename)
        .body(Body::from_stream(csv.inspect_err(|err| tracing::error!(%err, "audit log export stopped"))))
        .map_err(|_| AppError::Internal)?)
}

#[derive(serde::Deserialize)]
struct UsageCsvQuery {
    #[serde(default)]
    range: String,
    #[serde(default)]
    group: String,
}

/// The Usage page's report as CSV, for the signed-in billing manager.
async fn usage_csv(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<UsageCsvQuery>,
) -> Result<Response, ApiError> {
    let user = request::signed_in_user(&state, &session).await?;
    let org = request::current_org(&state, &session, &user).await?;
    let actor = Actor::User { id: user.id, email: user.email };
    let query = usage::UsageQuery::recent(&query.range, &query.group, app::time::Timestamp::now())?;
    let report = usage::report(&state.db, &actor, org.id, &query).await?;
    let filename = format!("attachment; filename=\"usage-{}.csv\"", org.id);
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(header::CONTENT_DISPOSITION, filename)
        .body(Body::from(usage::to_csv(&report)))
        .map_err(|_| AppError::Internal)?)
}

/// The resolver for verified domains: `server`, or the system's; none (domains
/// are then verified by the operator only) if the system has no resolver.
fn dns(server: Option<SocketAddr>) -> Option<app::server::dns::Dns> {
    match app::server::dns::Dns::new(server) {
        Ok(dns) => Some(dns),
        Err(error) => {
            tracing::warn!(%error, "no DNS resolver: domains can be verified only with `chancery domains verify`");
            None
        }
    }
}

/// Binds, serves until Ctrl-C or SIGTERM, and removes expired sessions meanwhile.
pub async fn serve(args: config::ServeArgs) -> anyhow::Result<()> {
    let db = Db::connect_and_migrate(&args.database.database_url).await?;
    let leptos_options = leptos_options(args.listen)?;
    let shared = match &args.redis_url {
        Some(url) => {
            let counters = SharedCounters::connect(url, "chancery")
                .await
                .map_err(|_| anyhow::anyhow!("cannot reach Redis at {}", redact(url)))?;
            tracing::info!(redis = %redact(url), "the gateway's counters are shared in Redis");
            Some(counters)
        }
        None => {
            tracing::info!("the gateway counts in this process (one replica; set REDIS_URL for several)");
            None
        }
    };
    let metering = Metering { spool_dir: args.spool_dir.clone(), queue: args.meter_queue };
    let gateway = Gateway::start(db.clone(), shared, &metering).await?;
    match args.upstream() {
        Some(upstream) => {
            tracing::info!(upstream = %upstream.base_url, "the gateway forwards to an upstream")
        }
        None => tracing::info!("no upstream configured: the gateway answers with its mock provider"),
    }
    let sealing = SealingKey::load_or_create(&args.secret_key_file).map_err(|err| {
        anyhow::anyhow!("cannot read or create the secret key {}: {err}", args.secret_key_file.display())
    })?;
    let state = AppState::new(
        leptos_options,
        db.clone(),
        gateway.clone(),
        args.trusted_proxies,
        args.public_url(),
        sealing,
    )
    .with_upstream(args.upstream())
    .with_dns(dns(args.dns_server))
    .with_sign_up_policy(args.sign_up.clone())
    .with_audit_key(args.audit_signing_key.as_ref().map(AuditSigner::verifying_key));
    tokio::spawn(sweep_forever(db.clone(), args.usage_retention_days));
    match &args.audit_signing_key {
        Some(signer) => {
            tracing::info!(public_key = %signer.public_key(), "the audit log's chains are signed at intervals");
            tokio::spawn(sign_audit_checkpoints(db.clone(), signer.clone(), args.audit_checkpoint_every()));
        }
        None => tracing::warn!(
            "no CHANCERY_AUDIT_SIGNING_KEY: the audit log is chained but not signed (`chancery audit keygen`)"
        ),
    }
    match &args.smtp_url {
        Some(url) => {
            let mailer = app::server::mail::Mailer::new(url, &args.mail_from)?;
            tracing::info!(smtp = %redact(url), "emails are delivered by SMTP");
            tokio::spawn(app::server::mail::deliver_forever(db.clone(), mailer));
        }
        None => tracing::info!("no SMTP server configured: emails stay in the outbox (`chancery outbox`)"),
    }
    let mut app = router(state.clone(), args.secure_cookies());
    if let Some(token) = args.metrics_token.clone().filter(|token| !token.is_empty()) {
        app = app.merge(telemetry::metrics_routes(state.clone(), telemetry::MetricsAccess::Token(token)));
    }
    if let Some(address) = args.metrics_listen {
        let listener = tokio::net::TcpListener::bind(address).await?;
        tracing::info!(address = %listener.local_addr()?, "metrics are served on their own address");
        let metrics = telemetry::metrics_routes(state.clone(), telemetry::MetricsAccess::Open);
        tokio::spawn(async move { axum::serve(listener, metrics).await });
    }

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let address = listener.local_addr()?;
    // A streamed answer goes out chunk by chunk as it comes: with Nagle's
    // algorithm on, the kernel held each small write until the last was
    // acknowledged, and clients that delay acknowledgements (40 ms) stalled
    // every stream (44 ms for a 6-chunk answer; see benches/proxy.rs).
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(%err, "could not set TCP_NODELAY on a connection");
        }
    });
    tracing::info!(%address, database = %redact(&args.database.database_url), "Chancery is listening");
    println!("Chancery is running at {} (listening on http://{address})", args.public_url());
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    // No new call comes now: let the ones under way finish, and write their usage.
    gateway.shut_down().await;
    tracing::info!("usage written; stopped");
    if let Some(signer) = &args.audit_signing_key {
        sign_audit_heads(&db, signer).await;
    }
    db.close().await;
    Ok(())
}

/// Leptos options from the environment (set by cargo-leptos), listening where we were told.
pub fn leptos_options(listen: SocketAddr) -> anyhow::Result<LeptosOptions> {
    let mut options = leptos::config::get_configuration(None)?.leptos_options;
    options.site_addr = listen;
    options.hash_files = options.hash_files || assets::names_are_hashed(&options);
    Ok(options)
}

/// Deletes what has outlived its use (see `housekeeping`), now and every `SWEEP_EVERY`.
async fn sweep_forever(db: Db, usage_retention_days: u32) {
    let mut tick = tokio::time::interval(housekeeping::SWEEP_EVERY);
    loop {
        tick.tick().await;
        match housekeeping::sweep(&db, usage_retention_days, app::time::Timestamp::now()).await {
            Ok(swept) if swept.total() == 0 => {}
            Ok(swept) => tracing::info!(?swept, "rows past their use deleted"),
            Err(err) => tracing::warn!(error = %err, "could not delete rows past their use"),
        }
    }
}

/// Signs each audit chain's newest event every `every`.
async fn sign_audit_checkpoints(db: Db, signer: AuditSigner, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        sign_audit_heads(&db, &signer).await;
    }
}

async fn sign_audit_heads(db: &Db, signer: &AuditSigner) {
    match audit_chain::sign_checkpoints(db, signer, app::time::Timestamp::now()).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(n, "audit chains checkpointed"),
        Err(err) => tracing::warn!(error = %err, "could not sign the audit log's checkpoints"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
