//! What server functions need from the request they serve: state, session,
//! client address and the signed-in user.

use leptos::prelude::use_context;
use tower_sessions::Session;

use super::{
    accounts,
    actor::{Actor, Client},
    session, sso,
    state::AppState,
};
use crate::{
    error::{AppError, AppResult},
    model::{CurrentUser, NewSecret, OrgSummary},
};

pub fn state() -> AppResult<AppState> {
    use_context::<AppState>().ok_or_else(|| {
        tracing::error!("AppState missing from the server function context");
        AppError::Internal
    })
}

pub async fn session() -> AppResult<Session> {
    leptos_axum::extract::<Session>().await.map_err(|err| {
        tracing::error!(error = %err, "session layer missing");
        AppError::Internal
    })
}

pub fn client(state: &AppState) -> Client {
    use_context::<http::request::Parts>()
        .map(|parts| Client::of_request(&parts, state.trusted_proxies))
        .unwrap_or_default()
}

/// Whether a request asks for a page: a browser's own navigation or form post.
pub fn asks_for_html(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// Whether this request is a form the browser posted itself (the page had no
/// JavaScript yet, or none): it is answered with a redirect back to its page,
/// not with the server function's value.
fn is_plain_form_post() -> bool {
    use_context::<http::request::Parts>().is_some_and(|parts| asks_for_html(&parts.headers))
}

/// A secret just made is shown once by the page that asked for it: a
/// hydrated page shows the server function's answer; after a plain form post
/// the session holds it for the page the browser is sent back to.
pub async fn show_once(state: &AppState, name: &str, secret: &str) -> AppResult<()> {
    if !is_plain_form_post() {
        return Ok(());
    }
    let new = NewSecret { name: name.to_string(), secret: secret.to_string() };
    session::hold_shown_once(&session().await?, &state.sealing, &new).await
}

/// A secret a plain form post made, taken from the session for the page the
/// browser came back to (see `server::show_once_after_form_post`): taken once
/// per request before Leptos renders, since Leptos may render a part of a page
/// twice (once to start its data early).
#[derive(Clone)]
pub struct ShownOnce(pub NewSecret);

/// The secret this page is to show once, if a plain form post left one.
pub fn shown_once() -> Option<NewSecret> {
    use_context::<http::request::Parts>()?.extensions.get::<ShownOnce>().map(|shown| shown.0.clone())
}

/// The signed-in user, or `Unauthenticated`. A session whose user is gone is
/// ended, and so is a password session of someone who must now use single
/// sign-on (the log-in page then says why).
pub async fn signed_in_user(state: &AppState, session: &Session) -> AppResult<CurrentUser> {
    let signed_out = || AppError::Unauthenticated("Please log in.".into());
    let Some(user_id) = session::user_id(session).await? else {
        return Err(signed_out());
    };
    let Some(user) = accounts::find_user(&state.db, user_id).await? else {
        session::log_out(session).await?;
        return Err(signed_out());
    };
    if !sso::session_may_continue(&state.db, user.id, session::signed_in_via(session).await?).await? {
        session::log_out(session).await?;
        session::set_log_in_notice(session, sso::SSO_REQUIRED).await?;
        return Err(AppError::Unauthenticated(sso::SSO_REQUIRED.into()));
    }
    Ok(user)
}

/// The signed-in person as an actor, and the Enterprise Account they administer.
/// Someone in none gets `NotFound`.
pub async fn enterprise_admin() -> AppResult<(AppState, Actor, crate::ids::EnterpriseId)> {
    let state = state()?;
    let user = signed_in_user(&state, &session().await?).await?;
    let enterprise = super::enterprise::of_user(&state.db, user.id).await?.ok_or(AppError::NotFound)?;
    Ok((state, Actor::User { id: user.id, email: user.email }, enterprise.id))
}

/// The organization `user` is looking at: the one picked in this session if
/// they still belong to it, else their first. `NotFound` when in none.
pub async fn current_org(state: &AppState, session: &Session, user: &CurrentUser) -> AppResult<OrgSummary> {
    let memberships = super::orgs::memberships(&state.db, user.id).await?;
    let chosen = session::current_org(session).await?;
    let position = memberships.iter().position(|org| Some(org.id) == chosen).unwrap_or(0);
    memberships.into_iter().nth(position).ok_or(AppError::NotFound)
}

/// The signed-in person as an actor, and their current organization.
pub async fn org_member() -> AppResult<(AppState, Actor, OrgSummary)> {
    let state = state()?;
    let session = session().await?;
    let user = signed_in_user(&state, &session).await?;
    let org = current_org(&state, &session, &user).await?;
    Ok((state, Actor::User { id: user.id, email: user.email }, org))
}

/// The page's Content-Security-Policy: scripts only from this site or inline
/// with this response's nonce (the hydration and streaming scripts carry it),
/// WebAssembly allowed to compile, nothing framed, forms posted here only.
/// `cargo leptos watch` adds its reload socket.
pub fn set_content_security_policy() {
    let (Some(nonce), Some(response)) =
        (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>())
    else {
        return;
    };
    let reload = if std::env::var_os("LEPTOS_WATCH").is_some() { " ws: wss:" } else { "" };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'{reload}; \
         object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(value) = http::HeaderValue::from_str(&policy) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}
