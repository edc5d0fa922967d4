//! Server functions: the browser's entry points. Each is a thin adapter that
//! reads the request (session, client address) and calls one domain function;
//! the server maps a returned `AppError` to its HTTP status in one place. They
//! live under `/_fn`, so `/api` and `/v1` belong to the machine APIs alone.

pub mod account;
pub mod api_keys;
pub mod backoffice;
pub mod billing;
pub mod domains;
pub mod groups;
pub mod members;
pub mod scim;
pub mod service_accounts;
pub mod sso;
pub mod workspaces;

use leptos::prelude::*;

use crate::{
    error::AppError,
    ids::OrgId,
    model::{AdminOverview, AuditSlice, Landing},
};

/// Who may create an account here on their own (the sign-up page says so first).
#[server(prefix = "/_fn", endpoint = "sign_up_policy")]
pub async fn get_sign_up_policy() -> Result<crate::model::SignUpPolicy, AppError> {
    Ok(crate::server::request::state()?.sign_up.clone())
}

/// Creates an account, signs it in, and goes on to naming the first organization.
#[server(prefix = "/_fn", endpoint = "sign_up")]
pub async fn sign_up(name: String, email: String, password: String) -> Result<(), AppError> {
    use crate::server::{accounts, request, session, sso};
    let state = request::state()?;
    let session = request::session().await?;
    let input = accounts::SignUp { name, email, password };
    let client = request::client(&state);
    let user =
        accounts::open_sign_up(&state.db, &state.throttle, &state.sign_up, &client, &state.public_url, input)
            .await?;
    session::log_in(&session, user.id, sso::SignInMethod::Password).await?;
    leptos_axum::redirect(Landing::NameOrganization(user).path());
    Ok(())
}

/// Signs in and opens where the person belongs: `next` (a page of this site
/// they were sent to log in from) once they are in an organization.
#[server(prefix = "/_fn", endpoint = "log_in")]
pub async fn log_in(email: String, password: String, next: Option<String>) -> Result<(), AppError> {
    use crate::{
        server::{accounts, request, session, sso},
        validate,
    };
    let state = request::state()?;
    let session = request::session().await?;
    let client = request::client(&state);
    let user = accounts::log_in(&state.db, &state.throttle, &client, &email, password).await?;
    session::log_in(&session, user.id, sso::SignInMethod::Password).await?;
    let landing = landing_of(&state, user).await?;
    let next = next.as_deref().and_then(validate::local_path);
    match (landing, next) {
        (Landing::AdminPanel(_), Some(next)) => leptos_axum::redirect(&next),
        (landing, _) => leptos_axum::redirect(landing.path()),
    }
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "log_out")]
pub async fn log_out() -> Result<(), AppError> {
    use crate::server::{request, session};
    session::log_out(&request::session().await?).await?;
    leptos_axum::redirect(Landing::LogIn.path());
    Ok(())
}

/// Where the visitor belongs: log-in, naming a first organization, or the Admin Panel.
#[server(prefix = "/_fn", endpoint = "get_landing")]
pub async fn get_landing() -> Result<Landing, AppError> {
    use crate::server::request;
    let state = request::state()?;
    let session = request::session().await?;
    match request::signed_in_user(&state, &session).await {
        Ok(user) => landing_of(&state, user).await,
        Err(AppError::Unauthenticated(_)) => Ok(Landing::LogIn),
        Err(err) => Err(err),
    }
}

#[cfg(feature = "ssr")]
async fn landing_of(
    state: &crate::server::state::AppState,
    user: crate::model::CurrentUser,
) -> Result<Landing, AppError> {
    let orgs = crate::server::orgs::memberships(&state.db, user.id).await?;
    Ok(if orgs.is_empty() { Landing::NameOrganization(user) } else { Landing::AdminPanel(user) })
}

/// Names the signed-in person's first organization (with its Default workspace).
#[server(prefix = "/_fn", endpoint = "create_organization")]
pub async fn create_organization(name: String) -> Result<(), AppError> {
    use crate::server::{actor::Actor, orgs, request, session};
    let state = request::state()?;
    let session = request::session().await?;
    let user = request::signed_in_user(&state, &session).await?;
    let actor = Actor::User { id: user.id, email: user.email };
    let org = orgs::create_first_organization(&state.db, &actor, &request::client(&state), &name).await?;
    session::set_current_org(&session, org.id).await?;
    leptos_axum::redirect("/admin");
    Ok(())
}

/// The Admin Panel's home: the current organization and its workspaces.
/// `Unauthenticated` when signed out; `NotFound` when in no organization yet.
#[server(prefix = "/_fn", endpoint = "get_admin_overview")]
pub async fn get_admin_overview() -> Result<AdminOverview, AppError> {
    use crate::server::{overview, request};
    let state = request::state()?;
    let session = request::session().await?;
    let user = request::signed_in_user(&state, &session).await?;
    let org = request::current_org(&state, &session, &user).await?;
    overview::admin_overview(&state.db, user, org.id).await
}

/// One page of the current organization's audit log, filtered, newest
/// first from `cursor` (the last event of the page before).
#[server(prefix = "/_fn", endpoint = "audit_log")]
pub async fn get_audit_log(
    actor: String,
    action: String,
    from: String,
    to: String,
    cursor: Option<i64>,
) -> Result<AuditSlice, AppError> {
    use crate::server::{audit, request};
    let (state, me, org) = request::org_member().await?;
    let filter = audit::AuditFilter::from_panel(&crate::model::AuditQuery { actor, action, from, to })?;
    audit::page(&state.db, &me, org.id, &filter, cursor, AUDIT_PAGE_SIZE).await
}

pub const AUDIT_PAGE_SIZE: i64 = 50;

/// Opens the Admin Panel on one of the signed-in person's organizations.
#[server(prefix = "/_fn", endpoint = "open_organization")]
pub async fn open_organization(org_id: OrgId) -> Result<(), AppError> {
    use crate::server::{orgs, request, session};
    let state = request::state()?;
    let session = request::session().await?;
    let user = request::signed_in_user(&state, &session).await?;
    let member = orgs::memberships(&state.db, user.id).await?.iter().any(|org| org.id == org_id);
    if !member {
        return Err(AppError::NotFound);
    }
    session::set_current_org(&session, org_id).await?;
    leptos_axum::redirect("/admin");
    Ok(())
}
